//! Loading a MovieLens release into typed tables ([`Dataset`]), with validation that loses
//! nothing silently.
//!
//! **Layouts.** Every MovieLens layout is read, told apart by the files present ([`Layout`]):
//! the CSV releases (ml-latest, ml-latest-small, ml-20m/25m/32m; `csv_release.rs` and the tag
//! genome in `genome.rs`), the `::`-separated ml-10m and ml-1m (`dat_release.rs`) and ml-100k
//! (`ml100k.rs`). A release is a directory or the `.zip` as downloaded, read in place
//! (`source.rs`). A release without links has no IMDb/TMDb URLs and works all the same.
//!
//! **Validation.** A missing required file, a wrong header or an empty file is one error naming
//! the file and what was expected. A malformed row is skipped and counted by [`Reason`] (wrong
//! field count, unparsable number, rating outside the release's scale or between its steps,
//! unknown movie, duplicate rating — the latest kept), with the first examples as
//! `file:line: what`, in the [`LoadReport`]; with [`LoadOptions::strict`] the first one is an
//! error instead. A UTF-8 byte-order mark, `\r\n` line ends and quoted CSV fields are read as
//! meant; text that is not valid UTF-8 is read as Latin-1 and counted. No input panics (see the
//! fuzz target in `fuzz/` and the robustness test in `tests/data.rs`).
//!
//! **One film, one entry.** A film listed under two ids with the same title and year is merged
//! into one movie under the id with the most ratings, the other ids kept in
//! [`RawMovie::merged_ids`]; ratings, tags, links, genres and genome follow, and the merge is
//! counted in the report. Pairs whose TMDb links name two different films stay apart, counted
//! too (ml-latest-small has five pairs: three merged, and two pairs of different films such as
//! Spielberg's and The Asylum's *War of the Worlds (2005)*). See `merge.rs`.
//!
//! **Speed.** Ratings, the bulk of a release (33.8M rows in ml-latest), are streamed in blocks
//! and parsed on all cores (`chunked.rs`, `ratings.rs`) into 16-byte [`Rating`]s; the other files
//! are small and read sequentially. See docs/BENCHMARKS.md for the figures.
//!
//! `movierec synth` (in `devtools/`) writes made-up releases of ml-latest's shape and size, for
//! benchmarks.

pub mod title;

mod chunked;
mod csv_release;
mod dat_release;
mod genome;
pub mod genres;
mod layout;
mod loader;
mod merge;
mod ml100k;
mod ratings;
mod report;
pub(crate) use report::thousands;
mod source;
pub(crate) mod text;

pub use layout::Layout;
pub use report::{FileSummary, Issue, LoadReport, Reason};

use crate::progress::Progress;
use crate::Result;
use loader::{Loader, Parts};
use source::Source;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use xxhash_rust::xxh3::Xxh3;

/// A movie as listed in `movies.csv`, before cleaning.
#[derive(Clone, Debug, PartialEq)]
pub struct RawMovie {
    /// MovieLens id.
    pub movie_id: u32,
    /// The title as written, e.g. `Matrix, The (1999)`.
    pub title: String,
    /// Genres, `(no genres listed)` already turned into none.
    pub genres: Vec<String>,
    /// Other ids the same film is listed under, merged into this one (ascending; see
    /// "One film, one entry" in the module docs). Empty for almost every movie.
    pub merged_ids: Vec<u32>,
}

/// External ids of a movie from `links.csv`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    /// IMDb numeric id (`tt` + zero-padded digits in URLs).
    pub imdb_id: Option<u32>,
    /// TMDb id.
    pub tmdb_id: Option<u32>,
}

/// One rating (16 bytes: the 33.8M ratings of ml-latest take 541 MB).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rating {
    /// MovieLens user id.
    pub user_id: u32,
    /// MovieLens movie id.
    pub movie_id: u32,
    /// Stars: 0.5 to 5 in halves, or 1 to 5 whole in ml-1m and ml-100k.
    pub rating: f32,
    /// Seconds since the Unix epoch (MovieLens timestamps fit 32 bits until 2106).
    pub timestamp: u32,
}

/// One tag from `tags.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tag {
    /// MovieLens user id.
    pub user_id: u32,
    /// MovieLens movie id.
    pub movie_id: u32,
    /// The tag text.
    pub tag: String,
    /// Seconds since the Unix epoch.
    pub timestamp: i64,
}

/// The tag genome: for each movie that has one, the relevance (0–1) of every genome tag.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TagGenome {
    /// Tag names, in `tagId` order (the columns of `relevance`).
    pub tags: Vec<String>,
    /// Movies with a genome, ascending.
    pub movie_ids: Vec<u32>,
    /// Row-major `movie_ids.len() × tags.len()` relevances.
    pub relevance: Vec<f32>,
}

impl TagGenome {
    /// The relevance row of `movie_id`, if it has a genome.
    pub fn row(&self, movie_id: u32) -> Option<&[f32]> {
        let i = self.movie_ids.binary_search(&movie_id).ok()?;
        let n = self.tags.len();
        Some(&self.relevance[i * n..(i + 1) * n])
    }
}

/// A whole MovieLens release in memory.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Where it was read from (a directory or a zip file).
    pub dir: PathBuf,
    /// Movies in file order.
    pub movies: Vec<RawMovie>,
    /// Links by movie id (empty when the release has no links file).
    pub links: HashMap<u32, Link>,
    /// Ratings whose movie is in `movies`.
    pub ratings: Vec<Rating>,
    /// Tags whose movie is in `movies`.
    pub tags: Vec<Tag>,
    /// The tag genome, when the release has one.
    pub genome: Option<TagGenome>,
    /// A hash of the files' contents: identical data gives an identical fingerprint.
    pub fingerprint: String,
    /// What loading found: rows per file, problems by reason with examples.
    pub report: LoadReport,
}

impl Dataset {
    /// The same release with `ratings` in place of its own (for training on a hold-out split);
    /// the original ratings are not copied.
    pub fn with_ratings(&self, ratings: Vec<Rating>) -> Dataset {
        Dataset {
            dir: self.dir.clone(),
            movies: self.movies.clone(),
            links: self.links.clone(),
            ratings,
            tags: self.tags.clone(),
            genome: self.genome.clone(),
            fingerprint: self.fingerprint.clone(),
            report: self.report.clone(),
        }
    }
}

/// How to load a release.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Make the first malformed row an error (naming `file:line`) instead of skipping and
    /// counting it.
    pub strict: bool,
    /// Show a progress bar on stderr while loading (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Print the [`LoadReport`] to stderr when done (what the commands that load data do).
    pub summary: bool,
}

/// The bundled release, `data/ml-latest-small`, loaded: what unit tests train on.
#[cfg(test)]
pub(crate) fn bundled() -> Dataset {
    load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/ml-latest-small")).expect("bundled data")
}

/// Loads the release at `path` (a directory or a `.zip`) with default options: problems are
/// counted in [`Dataset::report`], nothing is printed.
pub fn load(path: &Path) -> Result<Dataset> {
    load_with(path, &LoadOptions::default())
}

/// Loads the release at `path` (a directory or a `.zip`, any [`Layout`]).
pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Dataset> {
    let source = Source::open(path)?;
    load_source(&source, path.to_path_buf(), options)
}

/// Loads a release from files held in memory, `(name, contents)` (`ratings.csv`, …), shown as
/// `label/name` in messages. For tests and fuzzing.
pub fn load_from_memory(
    label: &str,
    files: impl IntoIterator<Item = (String, Vec<u8>)>,
    options: &LoadOptions,
) -> Result<Dataset> {
    let source = Source::memory(label, files);
    load_source(&source, PathBuf::from(label), options)
}

fn load_source(source: &Source, dir: PathBuf, options: &LoadOptions) -> Result<Dataset> {
    let started = Instant::now();
    let layout = layout::detect(source)?;
    let total = layout
        .files()
        .iter()
        .filter(|name| source.has(name))
        .map(|name| source.size(name))
        .sum();
    let mut loader = Loader {
        source,
        fingerprint: Xxh3::new(),
        progress: Progress::bytes(total, "loading", options.progress),
        report: LoadReport::new(source.label(), layout),
        strict: options.strict,
        file_started: Instant::now(),
    };
    let mut parts = match layout {
        Layout::Csv => csv_release::load(&mut loader)?,
        Layout::Ml10m | Layout::Ml1m => dat_release::load(&mut loader, layout)?,
        Layout::Ml100k => ml100k::load(&mut loader)?,
    };
    loader.progress.finish();
    let (movies_file, ratings_file) = (
        loader.file(layout.movies_file()),
        loader.file(layout.ratings_file()),
    );
    merge::merge_same_films(&mut parts, &movies_file, &ratings_file, &mut loader.report);
    genres::cap_vocabulary(&mut parts, &movies_file, &mut loader.report);
    let Parts {
        movies,
        links,
        ratings,
        tags,
        genome,
        ..
    } = parts;
    let mut report = loader.report;
    report.seconds = started.elapsed().as_secs_f64();
    if options.summary {
        eprintln!("{report}");
    }
    Ok(Dataset {
        dir,
        movies,
        links,
        ratings,
        tags,
        genome,
        fingerprint: format!("xxh3:{:032x}", loader.fingerprint.digest128()),
        report,
    })
}
