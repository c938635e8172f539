//! Profiling a MovieLens release: what is in each file and column, and the views that matter
//! for recommendations (`movierec profile`).
//!
//! [`profile`] takes a loaded [`Dataset`] (read by [`crate::data::load`]) and computes a
//! [`Profile`]:
//! - **per file and column** (as pandas-profiling or funModeling's `status`): type, values
//!   present, missing share, distinct values, minimum, maximum, mean and most frequent values.
//!   A column is read as the loader typed it: `(no genres listed)` is a missing genre list, a
//!   title without a year a missing `year (from title)`, an empty link a missing id;
//! - **MovieLens views**: the ratings histogram; ratings per user and per movie (quantiles, the
//!   share of ratings taken by the most active 1% and 10%, a log-binned histogram of the long
//!   tail); genres (movies, ratings, mean rating); movies per decade; ratings per year (with
//!   the mean rating and the users who rated for the first time); tags (most used, taggers).
//!
//! [`text::render`] prints it as tables for a terminal, [`html::render`] as one self-contained
//! HTML page with inline SVG charts (no script, nothing fetched). Rows the loader skipped are
//! listed from its report. Heavy passes over the ratings run in parallel on rayon's threads.

pub mod html;
mod svg;
pub mod text;

use crate::data::title::clean_title;
use crate::data::{Dataset, Rating, Reason};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

/// Most frequent values kept per column.
const TOP_VALUES: usize = 5;
/// Most used tags kept.
const TOP_TAGS: usize = 20;
/// Ids up to this are counted in a dense array; larger ones by sorting.
const DENSE_ID_LIMIT: u64 = 1 << 26;
/// Quantiles reported for activity distributions.
const QUANTILES: [f64; 7] = [0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0];

/// The profile of a whole release.
#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    /// The directory profiled.
    pub dir: PathBuf,
    /// The dataset fingerprint (as recorded by training).
    pub fingerprint: String,
    /// One entry per file present.
    pub files: Vec<FileProfile>,
    /// Rows the loader skipped: `(reason, count)`.
    pub skipped: Vec<(String, usize)>,
    /// Titles and years listed under two ids: `(what, count)`, merged and kept apart.
    pub same_title: Vec<(String, usize)>,
    /// Every film merged from several listings, by kept id.
    pub merged: Vec<MergedFilm>,
    /// Ratings by value.
    pub ratings: RatingsView,
    /// How many ratings each user gave.
    pub per_user: ActivityView,
    /// How many ratings each movie received (movies without any counted).
    pub per_movie: ActivityView,
    /// Per genre, most movies first.
    pub genres: Vec<GenreRow>,
    /// Movies per release decade, oldest first; the last row is movies without a year.
    pub decades: Vec<DecadeRow>,
    /// Ratings per calendar year (UTC), oldest first.
    pub years: Vec<YearRow>,
    /// Tags, when the release has `tags.csv`.
    pub tags: Option<TagsView>,
}

/// A film the release listed under several ids, merged into one movie when loading.
#[derive(Clone, Debug, Serialize)]
pub struct MergedFilm {
    /// The id kept (the listing with the most ratings).
    pub movie_id: u32,
    /// The title as listed.
    pub title: String,
    /// The other ids, merged into it.
    pub merged_ids: Vec<u32>,
}

/// One file's columns.
#[derive(Clone, Debug, Serialize)]
pub struct FileProfile {
    /// File name, e.g. `ratings.csv`.
    pub file: String,
    /// Rows loaded (skipped rows are not counted).
    pub rows: u64,
    /// Its columns, in file order (derived columns last).
    pub columns: Vec<ColumnProfile>,
}

/// What kind of values a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// Whole numbers (ids, years).
    Integer,
    /// Real numbers (ratings, relevances).
    Decimal,
    /// Free text.
    Text,
    /// `|`-separated names (genres); counted per name.
    List,
    /// Seconds since the Unix epoch; minimum and maximum shown as dates.
    Timestamp,
}

impl ColumnKind {
    /// The name shown in tables.
    pub fn label(self) -> &'static str {
        match self {
            ColumnKind::Integer => "integer",
            ColumnKind::Decimal => "decimal",
            ColumnKind::Text => "text",
            ColumnKind::List => "list",
            ColumnKind::Timestamp => "timestamp",
        }
    }
}

/// One column's summary.
#[derive(Clone, Debug, Serialize)]
pub struct ColumnProfile {
    /// Column name as in the header (derived columns say where they come from).
    pub name: String,
    /// Kind of values.
    pub kind: ColumnKind,
    /// Values present (for a list column: rows with at least one name).
    pub count: u64,
    /// Values missing.
    pub missing: u64,
    /// Distinct values (for a list column: distinct names).
    pub distinct: u64,
    /// Smallest value, formatted (dates for timestamps); none for text and lists.
    pub min: Option<String>,
    /// Largest value, formatted.
    pub max: Option<String>,
    /// Mean of numeric values.
    pub mean: Option<f64>,
    /// Most frequent values with their counts, most frequent first (ties: smaller value
    /// first); empty when every value is distinct.
    pub top: Vec<(String, u64)>,
}

impl ColumnProfile {
    /// Share of rows with the value missing, 0–1.
    pub fn missing_share(&self) -> f64 {
        share(self.missing, self.count + self.missing)
    }

    /// Whether every present value occurs once.
    pub fn all_distinct(&self) -> bool {
        self.count > 0 && self.distinct == self.count && self.kind != ColumnKind::List
    }
}

/// The ratings by value.
#[derive(Clone, Debug, Serialize)]
pub struct RatingsView {
    /// Number of ratings.
    pub count: u64,
    /// Mean rating.
    pub mean: f64,
    /// `(value, count)`, ascending by value.
    pub histogram: Vec<(f32, u64)>,
}

/// How ratings spread over users or movies.
#[derive(Clone, Debug, Serialize)]
pub struct ActivityView {
    /// Users (who rated) or movies (in `movies.csv`).
    pub entities: u64,
    /// Of them, with no rating (movies only).
    pub without_ratings: u64,
    /// Mean ratings per entity.
    pub mean: f64,
    /// `(quantile, ratings)` for 10%, 25%, 50%, 75%, 90%, 99%, 100% (the maximum).
    pub quantiles: Vec<(f64, u64)>,
    /// The fewest ratings of an entity.
    pub min: u64,
    /// Share of all ratings given to (or by) the most active 1% of entities.
    pub top_1_percent_share: f64,
    /// Same for the most active 10%.
    pub top_10_percent_share: f64,
    /// Log-binned histogram: `(lowest, highest, entities)` for 0, 1, 2–3, 4–7, 8–15, …
    pub bins: Vec<(u64, u64, u64)>,
}

impl ActivityView {
    /// The histogram without the empty bins below the least active entity (MovieLens users
    /// have at least 20 ratings, so bins 1 to 8–15 would be empty).
    pub fn shown_bins(&self) -> &[(u64, u64, u64)] {
        let first = self.bins.iter().position(|b| b.2 > 0).unwrap_or(0);
        &self.bins[first..]
    }
}

/// One genre.
#[derive(Clone, Debug, Serialize)]
pub struct GenreRow {
    /// Genre name.
    pub genre: String,
    /// Movies with it.
    pub movies: u64,
    /// Ratings of those movies.
    pub ratings: u64,
    /// Their mean rating (0 without ratings).
    pub mean_rating: f64,
}

/// Movies of one release decade.
#[derive(Clone, Debug, Serialize)]
pub struct DecadeRow {
    /// First year of the decade (1990 for the 1990s); none for movies without a year.
    pub decade: Option<u16>,
    /// Movies.
    pub movies: u64,
}

/// Ratings of one calendar year.
#[derive(Clone, Debug, Serialize)]
pub struct YearRow {
    /// The year (UTC).
    pub year: i32,
    /// Ratings given.
    pub ratings: u64,
    /// Their mean.
    pub mean_rating: f64,
    /// Users whose first rating falls in this year.
    pub new_users: u64,
}

/// The tags.
#[derive(Clone, Debug, Serialize)]
pub struct TagsView {
    /// Tag rows.
    pub count: u64,
    /// Distinct tags, compared without case and surrounding spaces.
    pub distinct: u64,
    /// Users who tagged.
    pub users: u64,
    /// Movies tagged.
    pub movies: u64,
    /// Most used tags (lower case), most used first.
    pub top: Vec<(String, u64)>,
}

/// Profiles `dataset` (see the module docs).
pub fn profile(dataset: &Dataset) -> Profile {
    let timed =
        |name: &str, stage: Instant| tracing::info!("profile: {name} in {:.2?}", stage.elapsed());
    let stage = Instant::now();
    let movies = MovieTable::new(dataset);
    timed("movies", stage);
    let ratings = &dataset.ratings;

    let stage = Instant::now();
    let mut pass = RatingsPass::run(ratings, &movies);
    timed("ratings pass", stage);
    let stage = Instant::now();
    let user_counts = pass.user_counts(ratings);
    let movie_counts = pass.movie_counts(ratings, &movies);
    let timestamps = pass.sorted_timestamps();
    timed("timestamps sorted", stage);
    let stage = Instant::now();

    let mut files = vec![movies_file(dataset, &movies)];
    if !dataset.links.is_empty() || dataset.dir.join("links.csv").is_file() {
        files.push(links_file(dataset));
    }
    files.push(FileProfile {
        file: "ratings.csv".into(),
        rows: ratings.len() as u64,
        columns: vec![
            id_column("userId", &user_counts, ratings.len() as u64),
            id_column("movieId", &movie_counts, ratings.len() as u64),
            pass.rating_column(),
            sorted_column("timestamp", ColumnKind::Timestamp, &timestamps, 0),
        ],
    });
    drop(timestamps);
    let tags = (!dataset.tags.is_empty() || dataset.dir.join("tags.csv").is_file()).then(|| {
        files.push(tags_file(dataset));
        tags_view(dataset)
    });
    if let Some(genome) = &dataset.genome {
        files.push(genome_file(genome));
    }

    timed("files", stage);
    let stage = Instant::now();
    let user_activity: Vec<u64> = user_counts.counts.iter().map(|&c| u64::from(c)).collect();
    let mut movie_activity: Vec<u64> = movie_counts.counts.iter().map(|&c| u64::from(c)).collect();
    let without_ratings = (movies.ids.len() as u64).saturating_sub(movie_activity.len() as u64);
    movie_activity.extend(std::iter::repeat_n(0, without_ratings as usize));

    let years = pass.year_rows(ratings);
    timed("views", stage);
    Profile {
        dir: dataset.dir.clone(),
        fingerprint: dataset.fingerprint.clone(),
        files,
        skipped: issues(dataset, false),
        same_title: issues(dataset, true),
        merged: dataset
            .movies
            .iter()
            .filter(|m| !m.merged_ids.is_empty())
            .map(|m| MergedFilm {
                movie_id: m.movie_id,
                title: m.title.clone(),
                merged_ids: m.merged_ids.clone(),
            })
            .collect(),
        ratings: pass.ratings_view(),
        per_user: activity(user_activity, 0),
        per_movie: activity(movie_activity, without_ratings),
        genres: pass.genre_rows(&movies),
        decades: decades(&movies),
        years,
        tags,
    }
}

/// The loader's findings as `(file: reason, count)`: titles listed under two ids (`same_title`),
/// or the others.
fn issues(dataset: &Dataset, same_title: bool) -> Vec<(String, usize)> {
    dataset
        .report
        .issues
        .iter()
        .filter(|issue| {
            matches!(
                issue.reason,
                Reason::MergedMovie | Reason::SameTitleKeptApart
            ) == same_title
        })
        .map(|issue| {
            let what = format!("{}: {}", issue.file, issue.reason.describe());
            (what, issue.count as usize)
        })
        .collect()
}

/// `part / whole`, 0 when `whole` is 0.
fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The movies as the profile needs them: ids, years, genre masks, and a fast id lookup.
struct MovieTable {
    ids: Vec<u32>,
    years: Vec<Option<u16>>,
    /// Genre names, most frequent first after counting (bit `g` of a mask is `genres[g]`).
    genres: Vec<String>,
    masks: Vec<u64>,
    index: IdIndex,
}

impl MovieTable {
    fn new(dataset: &Dataset) -> MovieTable {
        let ids: Vec<u32> = dataset.movies.iter().map(|m| m.movie_id).collect();
        let years = dataset
            .movies
            .par_iter()
            .map(|m| clean_title(&m.title).year)
            .collect();
        let mut genres: Vec<String> = Vec::new();
        let masks = dataset
            .movies
            .iter()
            .map(|m| {
                m.genres.iter().fold(0u64, |mask, genre| {
                    let g = genres.iter().position(|x| x == genre).unwrap_or_else(|| {
                        genres.push(genre.clone());
                        genres.len() - 1
                    });
                    // MovieLens has 19 genres; any beyond 64 are not broken down.
                    mask | 1u64.checked_shl(g as u32).unwrap_or(0)
                })
            })
            .collect();
        let index = IdIndex::new(&ids);
        MovieTable {
            ids,
            years,
            genres,
            masks,
            index,
        }
    }
}

/// Movie id -> position in `movies.csv`.
enum IdIndex {
    /// `slots[id]` = position + 1 (0: not a movie).
    Dense(Vec<u32>),
    Sparse(HashMap<u32, u32>),
}

impl IdIndex {
    fn new(ids: &[u32]) -> IdIndex {
        let max = ids.iter().copied().max().unwrap_or(0);
        if u64::from(max) < DENSE_ID_LIMIT {
            let mut slots = vec![0u32; max as usize + 1];
            for (i, &id) in ids.iter().enumerate() {
                slots[id as usize] = i as u32 + 1;
            }
            IdIndex::Dense(slots)
        } else {
            IdIndex::Sparse(
                ids.iter()
                    .enumerate()
                    .map(|(i, &id)| (id, i as u32))
                    .collect(),
            )
        }
    }

    fn get(&self, id: u32) -> Option<usize> {
        match self {
            IdIndex::Dense(slots) => slots
                .get(id as usize)
                .and_then(|&s| s.checked_sub(1))
                .map(|s| s as usize),
            IdIndex::Sparse(map) => map.get(&id).map(|&s| s as usize),
        }
    }
}

/// Distinct ids (ascending) and how often each occurs.
struct IdCounts {
    ids: Vec<u32>,
    counts: Vec<u32>,
}

/// Counts the ids `id(0..n)`: in per-thread dense arrays when they are small (MovieLens ids
/// are), else by sorting.
fn count_ids(n: usize, id: impl Fn(usize) -> u32 + Sync) -> IdCounts {
    let max = (0..n).into_par_iter().map(&id).max().unwrap_or(0);
    if u64::from(max) < DENSE_ID_LIMIT {
        let chunk = n.div_ceil(4 * rayon::current_num_threads()).max(1 << 16);
        let dense = (0..n.div_ceil(chunk))
            .into_par_iter()
            .map(|c| {
                let mut counts = vec![0u32; max as usize + 1];
                for i in c * chunk..((c + 1) * chunk).min(n) {
                    counts[id(i) as usize] += 1;
                }
                counts
            })
            .reduce_with(|mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            })
            .unwrap_or_default();
        let (ids, counts) = dense
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (i as u32, c))
            .unzip();
        IdCounts { ids, counts }
    } else {
        let mut all: Vec<u32> = (0..n).into_par_iter().map(&id).collect();
        all.par_sort_unstable();
        let mut result = IdCounts {
            ids: Vec::new(),
            counts: Vec::new(),
        };
        for run in all.chunk_by(|a, b| a == b) {
            result.ids.push(run[0]);
            result.counts.push(run.len() as u32);
        }
        result
    }
}

/// The most frequent `(value, count)` pairs, most frequent first, ties by value order.
fn top_by_count<T: Clone + Ord>(items: impl Iterator<Item = (T, u64)>, k: usize) -> Vec<(T, u64)> {
    // A min-heap of the k best so far, by (count, reversed value).
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut heap: BinaryHeap<Reverse<(u64, Reverse<T>)>> = BinaryHeap::with_capacity(k + 1);
    for (value, count) in items {
        let entry = Reverse((count, Reverse(value)));
        if heap.len() < k {
            heap.push(entry);
        } else if heap.peek().is_some_and(|least| entry < *least) {
            heap.pop();
            heap.push(entry);
        }
    }
    let mut top: Vec<(T, u64)> = heap
        .into_iter()
        .map(|Reverse((count, Reverse(value)))| (value, count))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top
}

/// An id column from its counts.
fn id_column(name: &str, counts: &IdCounts, rows: u64) -> ColumnProfile {
    let sum: f64 = counts
        .ids
        .iter()
        .zip(&counts.counts)
        .map(|(&id, &c)| f64::from(id) * f64::from(c))
        .sum();
    let distinct = counts.ids.len() as u64;
    let top = if distinct == rows {
        Vec::new()
    } else {
        top_by_count(
            counts
                .ids
                .iter()
                .zip(&counts.counts)
                .map(|(&id, &c)| (id, u64::from(c))),
            TOP_VALUES,
        )
        .into_iter()
        .map(|(id, c)| (id.to_string(), c))
        .collect()
    };
    ColumnProfile {
        name: name.into(),
        kind: ColumnKind::Integer,
        count: rows,
        missing: 0,
        distinct,
        min: counts.ids.first().map(u32::to_string),
        max: counts.ids.last().map(u32::to_string),
        mean: (rows > 0).then(|| sum / rows as f64),
        top,
    }
}

/// An integer or timestamp column from its sorted present values.
fn sorted_column(name: &str, kind: ColumnKind, sorted: &[i64], missing: u64) -> ColumnProfile {
    let format = |v: i64| match kind {
        ColumnKind::Timestamp => format_timestamp(v),
        _ => v.to_string(),
    };
    // Frequent timestamps are told apart to the second.
    let format_top = |v: i64| match kind {
        ColumnKind::Timestamp => format_time_of_day(v),
        _ => v.to_string(),
    };
    let distinct = if sorted.is_empty() {
        0
    } else {
        1 + sorted.windows(2).filter(|w| w[0] != w[1]).count() as u64
    };
    let top = if distinct == sorted.len() as u64 {
        Vec::new()
    } else {
        top_by_count(
            sorted
                .chunk_by(|a, b| a == b)
                .map(|run| (run[0], run.len() as u64)),
            TOP_VALUES,
        )
        .into_iter()
        .map(|(v, c)| (format_top(v), c))
        .collect()
    };
    let sum: f64 = sorted.par_iter().map(|&v| v as f64).sum();
    ColumnProfile {
        name: name.into(),
        kind,
        count: sorted.len() as u64,
        missing,
        distinct,
        min: sorted.first().map(|&v| format(v)),
        max: sorted.last().map(|&v| format(v)),
        mean: (!sorted.is_empty() && kind != ColumnKind::Timestamp)
            .then(|| sum / sorted.len() as f64),
        top,
    }
}

/// The timestamps sorted: by a radix sort on 32 bits when they all fit (1970 to 2106, as
/// MovieLens's do: three passes of 11 bits, far quicker than comparing), else by comparison.
fn sorted_timestamps(times: impl Iterator<Item = i64>, n: usize) -> Vec<i64> {
    let mut keys: Vec<u32> = Vec::with_capacity(n);
    let mut wide: Vec<i64> = Vec::new();
    for t in times {
        match u32::try_from(t) {
            Ok(k) if wide.is_empty() => keys.push(k),
            _ => {
                if wide.is_empty() {
                    wide = keys.iter().map(|&k| i64::from(k)).collect();
                    keys = Vec::new();
                }
                wide.push(t);
            }
        }
    }
    if !wide.is_empty() {
        wide.par_sort_unstable();
        return wide;
    }
    radix_sort(&mut keys);
    keys.into_iter().map(i64::from).collect()
}

/// Least-significant-digit radix sort, 11 bits a pass.
fn radix_sort(keys: &mut Vec<u32>) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    let mut other = vec![0u32; keys.len()];
    // The three digits' histograms in one read.
    let mut histograms = vec![[0usize; BUCKETS + 1]; 3];
    for &k in keys.iter() {
        for (pass, histogram) in histograms.iter_mut().enumerate() {
            histogram[((k >> (pass as u32 * BITS)) as usize & (BUCKETS - 1)) + 1] += 1;
        }
    }
    for (pass, offsets) in histograms.iter_mut().enumerate() {
        let shift = pass as u32 * BITS;
        if offsets.contains(&keys.len()) {
            continue; // Every key has the same digit here: nothing moves.
        }
        for b in 1..=BUCKETS {
            offsets[b] += offsets[b - 1];
        }
        for &k in keys.iter() {
            let slot = &mut offsets[(k >> shift) as usize & (BUCKETS - 1)];
            other[*slot] = k;
            *slot += 1;
        }
        std::mem::swap(keys, &mut other);
    }
}

/// An integer column from unsorted values (`None` = missing).
fn integer_column(name: &str, values: impl Iterator<Item = Option<i64>>) -> ColumnProfile {
    let mut present = Vec::new();
    let mut missing = 0u64;
    for v in values {
        match v {
            Some(v) => present.push(v),
            None => missing += 1,
        }
    }
    present.par_sort_unstable();
    sorted_column(name, ColumnKind::Integer, &present, missing)
}

/// A decimal column (no missing values possible in MovieLens's typed data).
fn decimal_column(name: &str, values: &[f32]) -> ColumnProfile {
    let mut sorted: Vec<f32> = values.to_vec();
    sorted.par_sort_unstable_by(f32::total_cmp);
    let distinct = if sorted.is_empty() {
        0
    } else {
        1 + sorted.windows(2).filter(|w| w[0] != w[1]).count() as u64
    };
    let top = top_by_count(
        sorted
            .chunk_by(|a, b| a == b)
            .map(|run| (OrderedF32(run[0]), run.len() as u64)),
        TOP_VALUES,
    );
    let sum: f64 = sorted.par_iter().map(|&v| f64::from(v)).sum();
    ColumnProfile {
        name: name.into(),
        kind: ColumnKind::Decimal,
        count: sorted.len() as u64,
        missing: 0,
        distinct,
        min: sorted.first().map(|v| format_decimal(*v)),
        max: sorted.last().map(|v| format_decimal(*v)),
        mean: (!sorted.is_empty()).then(|| sum / sorted.len() as f64),
        top: if distinct == sorted.len() as u64 {
            Vec::new()
        } else {
            top.into_iter()
                .map(|(v, c)| (format_decimal(v.0), c))
                .collect()
        },
    }
}

/// `f32` ordered by `total_cmp`, for [`top_by_count`].
#[derive(Clone, Copy, PartialEq)]
struct OrderedF32(f32);
impl Eq for OrderedF32 {}
impl PartialOrd for OrderedF32 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrderedF32 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A text column (`None` or blank = missing).
fn text_column<'a>(name: &str, values: impl Iterator<Item = Option<&'a str>>) -> ColumnProfile {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    let (mut count, mut missing) = (0u64, 0u64);
    for v in values {
        match v.filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                count += 1;
                *counts.entry(s).or_default() += 1;
            }
            None => missing += 1,
        }
    }
    let distinct = counts.len() as u64;
    ColumnProfile {
        name: name.into(),
        kind: ColumnKind::Text,
        count,
        missing,
        distinct,
        min: None,
        max: None,
        mean: None,
        top: if distinct == count {
            Vec::new()
        } else {
            top_by_count(counts.into_iter(), TOP_VALUES)
                .into_iter()
                .map(|(s, c)| (s.to_string(), c))
                .collect()
        },
    }
}

/// `2023-07-20` (UTC); the number itself if out of the calendar's range.
pub fn format_timestamp(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

/// `2023-07-20 14:03:09` (UTC); the number itself if out of the calendar's range.
fn format_time_of_day(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .map(|t| {
            let (h, m, s) = t.to_hms();
            format!("{} {h:02}:{m:02}:{s:02}", t.date())
        })
        .unwrap_or_else(|_| seconds.to_string())
}

/// A decimal without trailing noise: `4.5`, `0.0275`.
fn format_decimal(v: f32) -> String {
    let s = format!("{v}");
    if s.contains('.') || s.contains('e') || !v.is_finite() {
        s
    } else {
        format!("{s}.0")
    }
}

fn movies_file(dataset: &Dataset, movies: &MovieTable) -> FileProfile {
    let mut genre_counts = vec![0u64; movies.genres.len()];
    for mask in &movies.masks {
        for (g, count) in genre_counts.iter_mut().enumerate().take(64) {
            *count += (mask >> g) & 1;
        }
    }
    let with_genres = dataset
        .movies
        .iter()
        .filter(|m| !m.genres.is_empty())
        .count() as u64;
    let genres = ColumnProfile {
        name: "genres".into(),
        kind: ColumnKind::List,
        count: with_genres,
        missing: dataset.movies.len() as u64 - with_genres,
        distinct: movies.genres.len() as u64,
        min: None,
        max: None,
        mean: Some(share(genre_counts.iter().sum(), with_genres)).filter(|_| with_genres > 0),
        top: top_by_count(
            movies
                .genres
                .iter()
                .cloned()
                .zip(genre_counts.iter().copied()),
            TOP_VALUES,
        ),
    };
    FileProfile {
        file: "movies.csv".into(),
        rows: dataset.movies.len() as u64,
        columns: vec![
            integer_column("movieId", movies.ids.iter().map(|&id| Some(i64::from(id)))),
            text_column(
                "title",
                dataset.movies.iter().map(|m| Some(m.title.as_str())),
            ),
            genres,
            integer_column(
                "year (from title)",
                movies.years.iter().map(|y| y.map(i64::from)),
            ),
        ],
    }
}

fn links_file(dataset: &Dataset) -> FileProfile {
    let mut links: Vec<(u32, crate::data::Link)> =
        dataset.links.iter().map(|(&id, &l)| (id, l)).collect();
    links.sort_unstable_by_key(|l| l.0);
    FileProfile {
        file: "links.csv".into(),
        rows: links.len() as u64,
        columns: vec![
            integer_column("movieId", links.iter().map(|l| Some(i64::from(l.0)))),
            integer_column("imdbId", links.iter().map(|l| l.1.imdb_id.map(i64::from))),
            integer_column("tmdbId", links.iter().map(|l| l.1.tmdb_id.map(i64::from))),
        ],
    }
}

fn tags_file(dataset: &Dataset) -> FileProfile {
    let tags = &dataset.tags;
    FileProfile {
        file: "tags.csv".into(),
        rows: tags.len() as u64,
        columns: vec![
            integer_column("userId", tags.iter().map(|t| Some(i64::from(t.user_id)))),
            integer_column("movieId", tags.iter().map(|t| Some(i64::from(t.movie_id)))),
            text_column("tag", tags.iter().map(|t| Some(t.tag.as_str()))),
            {
                let times = sorted_timestamps(tags.iter().map(|t| t.timestamp), tags.len());
                sorted_column("timestamp", ColumnKind::Timestamp, &times, 0)
            },
        ],
    }
}

fn genome_file(genome: &crate::data::TagGenome) -> FileProfile {
    let rows = genome.relevance.len() as u64;
    let per_movie = genome.tags.len() as u64;
    let mut movie_column = integer_column(
        "movieId",
        genome.movie_ids.iter().map(|&id| Some(i64::from(id))),
    );
    // Each movie has one row per genome tag.
    movie_column.count = rows;
    movie_column.top = Vec::new();
    let mut tag_column = integer_column("tagId", (1..=per_movie).map(|t| Some(t as i64)));
    tag_column.count = rows;
    FileProfile {
        file: "genome-scores.csv".into(),
        rows,
        columns: vec![
            movie_column,
            tag_column,
            decimal_column("relevance", &genome.relevance),
        ],
    }
}

fn tags_view(dataset: &Dataset) -> TagsView {
    let mut counts: HashMap<std::borrow::Cow<str>, u64> = HashMap::new();
    for t in &dataset.tags {
        let tag = t.tag.trim();
        // Most tags are lower case already: only the others are copied.
        let key = if tag.chars().any(char::is_uppercase) {
            std::borrow::Cow::Owned(tag.to_lowercase())
        } else {
            std::borrow::Cow::Borrowed(tag)
        };
        if !key.is_empty() {
            *counts.entry(key).or_default() += 1;
        }
    }
    let mut users: Vec<u32> = dataset.tags.iter().map(|t| t.user_id).collect();
    users.sort_unstable();
    users.dedup();
    let mut movies: Vec<u32> = dataset.tags.iter().map(|t| t.movie_id).collect();
    movies.sort_unstable();
    movies.dedup();
    TagsView {
        count: dataset.tags.len() as u64,
        distinct: counts.len() as u64,
        users: users.len() as u64,
        movies: movies.len() as u64,
        top: top_by_count(counts.into_iter(), TOP_TAGS)
            .into_iter()
            .map(|(tag, n)| (tag.into_owned(), n))
            .collect(),
    }
}

/// Quantiles, shares and the log-binned histogram of per-entity rating counts.
fn activity(mut counts: Vec<u64>, without_ratings: u64) -> ActivityView {
    counts.par_sort_unstable();
    let n = counts.len();
    let total: u64 = counts.iter().sum();
    let quantile = |q: f64| -> u64 {
        if n == 0 {
            0
        } else {
            counts[((q * n as f64).ceil() as usize).clamp(1, n) - 1]
        }
    };
    let top_share = |fraction: f64| {
        let k = ((n as f64 * fraction).ceil() as usize).min(n);
        share(counts[n - k..].iter().sum(), total)
    };
    let mut bins: Vec<(u64, u64, u64)> = Vec::new();
    if without_ratings > 0 {
        bins.push((0, 0, 0));
    }
    let max = counts.last().copied().unwrap_or(0);
    let mut lo = 1u64;
    while lo <= max {
        bins.push((lo, lo * 2 - 1, 0));
        lo *= 2;
    }
    for &c in &counts {
        let bin = if c == 0 {
            0
        } else {
            usize::from(without_ratings > 0) + c.ilog2() as usize
        };
        bins[bin].2 += 1;
    }
    ActivityView {
        entities: n as u64,
        without_ratings,
        mean: share(total, n as u64),
        quantiles: QUANTILES.iter().map(|&q| (q, quantile(q))).collect(),
        min: counts.first().copied().unwrap_or(0),
        top_1_percent_share: top_share(0.01),
        top_10_percent_share: top_share(0.10),
        bins,
    }
}

fn decades(movies: &MovieTable) -> Vec<DecadeRow> {
    let mut by_decade: std::collections::BTreeMap<u16, u64> = Default::default();
    let mut without = 0u64;
    for year in &movies.years {
        match year {
            Some(y) => *by_decade.entry(y / 10 * 10).or_default() += 1,
            None => without += 1,
        }
    }
    let mut rows: Vec<DecadeRow> = by_decade
        .into_iter()
        .map(|(decade, movies)| DecadeRow {
            decade: Some(decade),
            movies,
        })
        .collect();
    if without > 0 {
        rows.push(DecadeRow {
            decade: None,
            movies: without,
        });
    }
    rows
}

/// Calendar years covered by [`RatingsPass`]'s per-year counts.
const FIRST_YEAR: i32 = 1900;
const LAST_YEAR: i32 = 2100;

/// Start of each year from [`FIRST_YEAR`] to [`LAST_YEAR`] + 1, seconds since the epoch (UTC).
fn year_starts() -> Vec<i64> {
    (FIRST_YEAR..=LAST_YEAR + 1)
        .map(|y| {
            time::Date::from_calendar_date(y, time::Month::January, 1)
                .map(|d| d.midnight().assume_utc().unix_timestamp())
                .unwrap_or(i64::MAX)
        })
        .collect()
}

/// Year index (0 = [`FIRST_YEAR`]) of a timestamp, if within the covered years: a guess from
/// the mean year length, corrected by at most a step or two.
fn year_index(starts: &[i64], t: i64) -> Option<usize> {
    const MEAN_YEAR: i64 = 31_556_952;
    let last = starts.len().checked_sub(2)?;
    if t < starts[0] || t >= starts[last + 1] {
        return None;
    }
    let mut i = ((t - starts[0]) / MEAN_YEAR).clamp(0, last as i64) as usize;
    while starts[i] > t {
        i -= 1;
    }
    while starts[i + 1] <= t {
        i += 1;
    }
    Some(i)
}

/// What one parallel pass over the ratings gathers: values, per-movie and per-year sums, each
/// user's count and first rating, and the timestamps (for their column). The ratings are read
/// once: at ml-latest's size they are 800 MB, and reading them is most of the work.
struct RatingsPass {
    count: u64,
    sum: f64,
    /// Counts of `k / 2` stars for k = 0..=10.
    half_stars: [u64; 11],
    /// Values that are not half stars.
    other: HashMap<u32, u64>,
    /// Per movie (position in `movies.csv`): (ratings, sum); genres are summed from these.
    movies: Vec<(u32, f64)>,
    /// Ratings of movies not in `movies.csv` (none after loading).
    unknown_movies: u64,
    /// Per year index: (ratings, sum).
    years: Vec<(u64, f64)>,
    /// Ratings per user id, and each user's first timestamp (`i64::MAX`: no rating), grown as
    /// ids come; empty with `sparse_users` when an id is too large for an array.
    users: Vec<u32>,
    first_rated: Vec<i64>,
    sparse_users: bool,
    /// The timestamps (32-bit, as the loader keeps them), for the radix sort.
    timestamps: Vec<u32>,
}

impl RatingsPass {
    fn empty(movies: usize, years: usize) -> RatingsPass {
        RatingsPass {
            count: 0,
            sum: 0.0,
            half_stars: [0; 11],
            other: HashMap::new(),
            movies: vec![(0, 0.0); movies],
            unknown_movies: 0,
            years: vec![(0, 0.0); years],
            users: Vec::new(),
            first_rated: Vec::new(),
            sparse_users: false,
            timestamps: Vec::new(),
        }
    }

    fn run(ratings: &[Rating], movies: &MovieTable) -> RatingsPass {
        let starts = year_starts();
        let n_movies = movies.ids.len();
        let years = starts.len() - 1;
        // A few large parts, each with its own arrays, merged at the end.
        let part = ratings
            .len()
            .div_ceil(2 * rayon::current_num_threads())
            .max(1 << 16);
        ratings
            .par_chunks(part)
            .map(|part| {
                let mut acc = RatingsPass::empty(n_movies, years);
                acc.timestamps.reserve(part.len());
                for r in part {
                    acc.add(r, movies, &starts);
                }
                acc
            })
            .reduce_with(RatingsPass::merge)
            .unwrap_or_else(|| RatingsPass::empty(n_movies, years))
    }

    fn add(&mut self, r: &Rating, movies: &MovieTable, starts: &[i64]) {
        self.count += 1;
        let value = f64::from(r.rating);
        self.sum += value;
        let doubled = r.rating * 2.0;
        if doubled.fract() == 0.0 && (0.0..=10.0).contains(&doubled) {
            self.half_stars[doubled as usize] += 1;
        } else {
            *self.other.entry(r.rating.to_bits()).or_default() += 1;
        }
        match movies.index.get(r.movie_id) {
            Some(m) => {
                self.movies[m].0 += 1;
                self.movies[m].1 += value;
            }
            None => self.unknown_movies += 1,
        }
        if let Some(y) = year_index(starts, i64::from(r.timestamp)) {
            self.years[y].0 += 1;
            self.years[y].1 += value;
        }
        let user = r.user_id as usize;
        if !self.sparse_users {
            if u64::from(r.user_id) >= DENSE_ID_LIMIT {
                self.sparse_users = true;
                self.users = Vec::new();
                self.first_rated = Vec::new();
            } else {
                if user >= self.users.len() {
                    let len = (user + 1).max(2 * self.users.len());
                    self.users.resize(len, 0);
                    self.first_rated.resize(len, i64::MAX);
                }
                self.users[user] += 1;
                self.first_rated[user] = self.first_rated[user].min(i64::from(r.timestamp));
            }
        }
        self.timestamps.push(r.timestamp);
    }

    fn merge(mut a: RatingsPass, mut b: RatingsPass) -> RatingsPass {
        a.count += b.count;
        a.sum += b.sum;
        for (x, y) in a.half_stars.iter_mut().zip(b.half_stars) {
            *x += y;
        }
        for (k, v) in b.other {
            *a.other.entry(k).or_default() += v;
        }
        for (x, y) in a.movies.iter_mut().zip(&b.movies) {
            x.0 += y.0;
            x.1 += y.1;
        }
        a.unknown_movies += b.unknown_movies;
        for (x, y) in a.years.iter_mut().zip(&b.years) {
            x.0 += y.0;
            x.1 += y.1;
        }
        a.sparse_users |= b.sparse_users;
        if a.sparse_users {
            a.users = Vec::new();
            a.first_rated = Vec::new();
        } else {
            if a.users.len() < b.users.len() {
                std::mem::swap(&mut a.users, &mut b.users);
                std::mem::swap(&mut a.first_rated, &mut b.first_rated);
            }
            for (x, y) in a.users.iter_mut().zip(&b.users) {
                *x += y;
            }
            for (x, y) in a.first_rated.iter_mut().zip(&b.first_rated) {
                *x = (*x).min(*y);
            }
        }
        a.timestamps.extend_from_slice(&b.timestamps);
        a
    }

    /// Ratings per user id (counted again by sorting if an id was too large for an array).
    fn user_counts(&self, ratings: &[Rating]) -> IdCounts {
        if self.sparse_users {
            return count_ids(ratings.len(), |i| ratings[i].user_id);
        }
        let (ids, counts) = self
            .users
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(id, &c)| (id as u32, c))
            .unzip();
        IdCounts { ids, counts }
    }

    /// Ratings per movie id (counted again if some rating's movie is not in `movies.csv`).
    fn movie_counts(&self, ratings: &[Rating], movies: &MovieTable) -> IdCounts {
        if self.unknown_movies > 0 {
            return count_ids(ratings.len(), |i| ratings[i].movie_id);
        }
        let mut pairs: Vec<(u32, u32)> = movies
            .ids
            .iter()
            .zip(&self.movies)
            .filter(|(_, m)| m.0 > 0)
            .map(|(&id, m)| (id, m.0))
            .collect();
        pairs.sort_unstable();
        let (ids, counts) = pairs.into_iter().unzip();
        IdCounts { ids, counts }
    }

    /// The timestamps, sorted.
    fn sorted_timestamps(&mut self) -> Vec<i64> {
        let mut keys = std::mem::take(&mut self.timestamps);
        radix_sort(&mut keys);
        keys.into_iter().map(i64::from).collect()
    }

    fn histogram(&self) -> Vec<(f32, u64)> {
        let mut histogram: Vec<(f32, u64)> = self
            .half_stars
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(k, &c)| (k as f32 / 2.0, c))
            .chain(
                self.other
                    .iter()
                    .map(|(&bits, &c)| (f32::from_bits(bits), c)),
            )
            .collect();
        histogram.sort_by(|a, b| a.0.total_cmp(&b.0));
        histogram
    }

    fn ratings_view(&self) -> RatingsView {
        RatingsView {
            count: self.count,
            mean: if self.count > 0 {
                self.sum / self.count as f64
            } else {
                0.0
            },
            histogram: self.histogram(),
        }
    }

    fn rating_column(&self) -> ColumnProfile {
        let histogram = self.histogram();
        let top = top_by_count(
            histogram.iter().map(|&(v, c)| (OrderedF32(v), c)),
            TOP_VALUES,
        );
        ColumnProfile {
            name: "rating".into(),
            kind: ColumnKind::Decimal,
            count: self.count,
            missing: 0,
            distinct: histogram.len() as u64,
            min: histogram.first().map(|h| format_decimal(h.0)),
            max: histogram.last().map(|h| format_decimal(h.0)),
            mean: (self.count > 0).then(|| self.sum / self.count as f64),
            top: top
                .into_iter()
                .map(|(v, c)| (format_decimal(v.0), c))
                .collect(),
        }
    }

    fn genre_rows(&self, movies: &MovieTable) -> Vec<GenreRow> {
        let mut per_genre = vec![(0u64, 0.0f64); movies.genres.len().min(64)];
        for (&mask, &(ratings, sum)) in movies.masks.iter().zip(&self.movies) {
            let mut mask = mask;
            while mask != 0 {
                let g = mask.trailing_zeros() as usize;
                per_genre[g].0 += u64::from(ratings);
                per_genre[g].1 += sum;
                mask &= mask - 1;
            }
        }
        let mut rows: Vec<GenreRow> = movies
            .genres
            .iter()
            .take(64)
            .enumerate()
            .map(|(g, genre)| {
                let (ratings, sum) = per_genre[g];
                GenreRow {
                    genre: genre.clone(),
                    movies: movies.masks.iter().filter(|m| (*m >> g) & 1 == 1).count() as u64,
                    ratings,
                    mean_rating: if ratings > 0 {
                        sum / ratings as f64
                    } else {
                        0.0
                    },
                }
            })
            .collect();
        rows.sort_by(|a, b| b.movies.cmp(&a.movies).then_with(|| a.genre.cmp(&b.genre)));
        rows
    }

    fn year_rows(&self, ratings: &[Rating]) -> Vec<YearRow> {
        let starts = year_starts();
        let mut new_users = vec![0u64; self.years.len()];
        let firsts = if self.sparse_users {
            first_rating_times(ratings)
        } else {
            self.first_rated
                .iter()
                .copied()
                .filter(|&t| t != i64::MAX)
                .collect()
        };
        for t in firsts {
            if let Some(y) = year_index(&starts, t) {
                new_users[y] += 1;
            }
        }
        self.years
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| *n > 0)
            .map(|(y, &(ratings, sum))| YearRow {
                year: FIRST_YEAR + y as i32,
                ratings,
                mean_rating: sum / ratings as f64,
                new_users: new_users[y],
            })
            .collect()
    }
}

/// The time of each user's first rating (in no particular order), for user ids too large for
/// [`RatingsPass`]'s arrays.
fn first_rating_times(ratings: &[Rating]) -> Vec<i64> {
    let mut firsts: HashMap<u32, i64> = HashMap::new();
    for r in ratings {
        let e = firsts.entry(r.user_id).or_insert(i64::MAX);
        *e = (*e).min(i64::from(r.timestamp));
    }
    firsts.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Profile {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
        profile(&crate::data::load(&dir).unwrap())
    }

    fn column<'p>(p: &'p Profile, file: &str, name: &str) -> &'p ColumnProfile {
        p.files
            .iter()
            .find(|f| f.file == file)
            .and_then(|f| f.columns.iter().find(|c| c.name == name))
            .unwrap_or_else(|| panic!("{file} {name}"))
    }

    #[test]
    fn columns_of_the_tiny_release() {
        let p = tiny();
        let files: Vec<&str> = p.files.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(
            files,
            ["movies.csv", "links.csv", "ratings.csv", "tags.csv"]
        );

        let genres = column(&p, "movies.csv", "genres");
        assert_eq!((genres.count, genres.missing), (3, 1));
        let year = column(&p, "movies.csv", "year (from title)");
        assert_eq!((year.count, year.missing), (3, 1));
        assert_eq!(year.min.as_deref(), Some("1995"));

        let user = column(&p, "ratings.csv", "userId");
        assert_eq!(user.kind, ColumnKind::Integer);
        assert_eq!(user.missing_share(), 0.0);
        let rating = column(&p, "ratings.csv", "rating");
        assert_eq!(rating.kind, ColumnKind::Decimal);
        assert!(rating.mean.unwrap() > 0.5);
        let time = column(&p, "ratings.csv", "timestamp");
        assert!(time.min.as_deref().unwrap().starts_with("20"), "{time:?}");

        let tmdb = column(&p, "links.csv", "tmdbId");
        assert!(tmdb.missing > 0, "{tmdb:?}");
        // The tag of an unknown movie was skipped and is reported.
        assert!(p
            .skipped
            .iter()
            .any(|(reason, n)| reason.contains("tag") && *n == 1));
    }

    #[test]
    fn counting_helpers() {
        let counts = count_ids(6, |i| [5, 3, 5, 5, 9, 3][i]);
        assert_eq!(counts.ids, [3, 5, 9]);
        assert_eq!(counts.counts, [2, 3, 1]);
        let column = id_column("userId", &counts, 6);
        assert_eq!(column.top[0], ("5".to_string(), 3));
        assert_eq!(column.top[1], ("3".to_string(), 2));
        assert_eq!(column.distinct, 3);
        assert_eq!(column.mean, Some(5.0));

        let top = top_by_count([("b", 2), ("a", 2), ("c", 5), ("d", 1)].into_iter(), 3);
        assert_eq!(top, [("c", 5), ("a", 2), ("b", 2)]);

        let view = activity(vec![1, 1, 2, 3, 100, 0], 1);
        assert_eq!(view.entities, 6);
        assert_eq!(view.without_ratings, 1);
        assert_eq!(view.quantiles.last().unwrap().1, 100);
        assert_eq!(view.bins[0], (0, 0, 1));
        assert_eq!(view.bins[1], (1, 1, 2));
        assert_eq!(view.bins[2], (2, 3, 2));
        assert_eq!(view.bins.last().unwrap(), &(64, 127, 1));
        assert!((view.top_1_percent_share - 100.0 / 107.0).abs() < 1e-9);

        let mut keys: Vec<u32> = (0..50_000u32)
            .map(|i| i.wrapping_mul(2_654_435_761) ^ (i >> 3))
            .collect();
        let mut expected = keys.clone();
        expected.sort_unstable();
        radix_sort(&mut keys);
        assert_eq!(keys, expected);
        assert_eq!(
            sorted_timestamps([5, -3, 1 << 40, 2].into_iter(), 4),
            [-3, 2, 5, 1 << 40]
        );
        assert_eq!(sorted_timestamps([7, 1, 4].into_iter(), 3), [1, 4, 7]);

        let starts = year_starts();
        for (i, &start) in starts[..starts.len() - 1].iter().enumerate() {
            assert_eq!(year_index(&starts, start), Some(i));
            assert_eq!(year_index(&starts, start - 1), i.checked_sub(1));
        }
        assert_eq!(year_index(&starts, starts[starts.len() - 1]), None);
        assert_eq!(
            year_index(&starts, 964_982_703).map(|y| FIRST_YEAR + y as i32),
            Some(2000)
        );
        assert_eq!(
            year_index(&starts, 946_684_800).map(|y| FIRST_YEAR + y as i32),
            Some(2000)
        );
        assert_eq!(
            year_index(&starts, 946_684_799).map(|y| FIRST_YEAR + y as i32),
            Some(1999)
        );
    }

    #[test]
    fn views_of_a_synthetic_release() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("synth");
        let params = crate::data::synth::SynthParams {
            scale: 0.01,
            seed: 5,
        };
        crate::data::synth::write_release(&dir, &params).unwrap();
        let dataset = crate::data::load(&dir).unwrap();
        let p = profile(&dataset);
        assert_eq!(p.ratings.count, dataset.ratings.len() as u64);
        let histogram_total: u64 = p.ratings.histogram.iter().map(|h| h.1).sum();
        assert_eq!(histogram_total, p.ratings.count);
        assert_eq!(p.per_user.entities, params.users() as u64);
        assert_eq!(p.per_movie.entities, params.movies() as u64);
        let binned: u64 = p.per_movie.bins.iter().map(|b| b.2).sum();
        assert_eq!(binned, p.per_movie.entities);
        assert!(p.per_movie.top_10_percent_share > 0.3, "{:?}", p.per_movie);
        assert!(
            p.genres.len() <= 19 && p.genres[0].genre == "Drama",
            "{:?}",
            p.genres
        );
        let per_year: u64 = p.years.iter().map(|y| y.ratings).sum();
        assert_eq!(per_year, p.ratings.count);
        let new_users: u64 = p.years.iter().map(|y| y.new_users).sum();
        assert_eq!(new_users, p.per_user.entities);
        let decades: u64 = p.decades.iter().map(|d| d.movies).sum();
        assert_eq!(decades, params.movies() as u64);
        let tags = p.tags.as_ref().unwrap();
        assert_eq!(tags.count, dataset.tags.len() as u64);
        assert!(tags.top.len() > 5);
    }
}
