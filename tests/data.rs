//! The data stage on small hand-written fixtures, each written from a release's documented
//! format (tests/fixtures: tiny and genome in ml-latest's CSV layout, messy-csv with a byte-order
//! mark, CRLF, quoted commas, a Latin-1 title and one bad row of every kind, ml-10m, ml-1m and
//! ml-100k), on variations of them, on zips built from them, and on random and mutated inputs.

use movierec::catalog::{Catalog, CompiledFilter, Movie, MovieFilter, MovieQuery};
use movierec::data::{load, load_from_memory, load_with, Dataset, Layout, LoadOptions, Reason};
use std::io::Write;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn tiny() -> PathBuf {
    fixture("tiny")
}

const STRICT: LoadOptions = LoadOptions {
    strict: true,
    progress: false,
    summary: false,
};

/// A copy of the tiny fixture with `file` replaced by `contents` (or removed when `None`).
fn variant(file: &str, contents: Option<&[u8]>) -> tempfile::TempDir {
    variant_of(&tiny(), file, contents)
}

/// A copy of `fixture` with `file` replaced by `contents` (or removed when `None`).
fn variant_of(fixture: &Path, file: &str, contents: Option<&[u8]>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    match contents {
        Some(bytes) => std::fs::write(dir.path().join(file), bytes).unwrap(),
        None => std::fs::remove_file(dir.path().join(file)).unwrap(),
    }
    dir
}

fn error_of(dir: &Path) -> String {
    load(dir).expect_err("load should fail").to_string()
}

#[test]
fn the_tiny_release_loads_with_every_movie_kept() {
    let dataset = load(&tiny()).unwrap();
    assert_eq!(dataset.movies.len(), 4);
    assert_eq!(
        dataset.ratings.len(),
        4,
        "the rating of unknown movie 77 is skipped"
    );
    assert_eq!(dataset.tags.len(), 1);
    assert_eq!(dataset.report.layout, Layout::Csv);
    assert_eq!(dataset.report.skipped_rows(), 2);
    let unknown = dataset
        .report
        .issue("ratings.csv", Reason::UnknownMovie)
        .unwrap();
    assert_eq!(unknown.count, 1);
    assert!(
        unknown.examples[0].ends_with("ratings.csv:6: movieId 77 is not in movies.csv"),
        "{unknown:?}"
    );

    let catalog = Catalog::from_dataset(&dataset);
    assert_eq!(
        catalog.len(),
        4,
        "movies without a year, links or genres are kept"
    );
    let president = catalog.movie(catalog.item_of(2).unwrap());
    assert_eq!(&*president.title, "The American President");
    assert_eq!(president.year, Some(1995));
    assert_eq!(president.tmdb_url(), None);
    assert_eq!(
        president.imdb_url().as_deref(),
        Some("https://www.imdb.com/title/tt0112346/")
    );
    let babylon = catalog.movie(catalog.item_of(3).unwrap());
    assert_eq!((&*babylon.title, babylon.year), ("Babylon 5", None));
    let obscure = catalog.movie(catalog.item_of(4).unwrap());
    assert!(obscure.genres.is_empty());
    assert_eq!(obscure.imdb_url(), None);
    assert_eq!(obscure.movielens_url(), "https://movielens.org/movies/4");
    assert_eq!(obscure.decade().as_deref(), Some("2000s"));
    let toy = catalog.movie(catalog.item_of(1).unwrap());
    assert_eq!(toy.rating_count, 2);
    assert!((toy.rating_mean - 4.5).abs() < 1e-6);
}

#[test]
fn imdb_ids_are_zero_padded_to_seven_digits_but_not_truncated() {
    let links = b"movieId,imdbId,tmdbId\n1,114709,862\n2,12345678,8844\n";
    let dir = variant("links.csv", Some(links));
    let catalog = Catalog::from_dataset(&load(dir.path()).unwrap());
    let url = |id| {
        catalog
            .movie(catalog.item_of(id).unwrap())
            .imdb_url()
            .unwrap()
    };
    assert_eq!(url(1), "https://www.imdb.com/title/tt0114709/");
    assert_eq!(url(2), "https://www.imdb.com/title/tt12345678/");
}

#[test]
fn a_release_without_links_or_tags_still_loads() {
    let dir = variant("links.csv", None);
    std::fs::remove_file(dir.path().join("tags.csv")).unwrap();
    let dataset = load(dir.path()).unwrap();
    assert!(dataset.links.is_empty() && dataset.tags.is_empty());
    let catalog = Catalog::from_dataset(&dataset);
    assert!(catalog.movies().iter().all(|m| m.imdb_url().is_none()));
}

#[test]
fn a_missing_required_file_is_named() {
    let dir = variant("ratings.csv", None);
    let message = error_of(dir.path());
    assert!(message.contains("ratings.csv"), "{message}");
    let dir = variant("movies.csv", None);
    assert!(error_of(dir.path()).contains("movies.csv"));
    assert!(error_of(Path::new("/nonexistent/dir")).contains("is not a directory"));
    let dir = variant_of(&fixture("ml-100k"), "u.genre", None);
    let message = error_of(dir.path());
    assert!(
        message.contains("u.genre: is missing (a release of the ml-100k layout needs"),
        "{message}"
    );
    let empty = tempfile::tempdir().unwrap();
    assert!(error_of(empty.path()).contains("holds no MovieLens release"));
}

#[test]
fn a_wrong_header_or_an_empty_file_is_named_with_what_was_expected() {
    let dir = variant("ratings.csv", Some(b"user,movie,stars,time\n1,1,4.0,1\n"));
    let message = error_of(dir.path());
    assert!(message.contains("ratings.csv:1"), "{message}");
    assert!(
        message.contains("userId,movieId,rating,timestamp"),
        "{message}"
    );
    let dir = variant("movies.csv", Some(b""));
    let message = error_of(dir.path());
    assert!(
        message.contains("movies.csv") && message.contains("empty"),
        "{message}"
    );
    let dir = variant("ratings.csv", Some(b"\xEF\xBB\xBF\r\n"));
    assert!(error_of(dir.path()).ends_with(
        "ratings.csv: file is empty (expected the header \"userId,movieId,rating,timestamp\")"
    ));
    let dir = variant_of(&fixture("ml-1m"), "ratings.dat", Some(b"\n\n"));
    assert!(error_of(dir.path()).ends_with(
        "ratings.dat: file is empty (expected lines like \"UserID::MovieID::Rating::Timestamp\")"
    ));
}

#[test]
fn every_bad_row_kind_is_skipped_and_counted_with_its_first_line() {
    let dataset = load(&fixture("messy-csv")).unwrap();
    let report = &dataset.report;
    let example = |file: &str, reason: Reason| {
        let issue = report
            .issue(file, reason)
            .unwrap_or_else(|| panic!("{reason:?}"));
        assert_eq!(issue.count, 1, "{issue:?}");
        let (_, tail) = issue.examples[0].split_once("messy-csv/").unwrap();
        tail.to_string()
    };
    assert_eq!(
        example("ratings.csv", Reason::FieldCount),
        "ratings.csv:11: expected 4 fields, found 3"
    );
    assert_eq!(
        example("ratings.csv", Reason::BadNumber),
        "ratings.csv:12: movieId: cannot read \"x\" as an id"
    );
    assert_eq!(
        example("ratings.csv", Reason::RatingRange),
        "ratings.csv:13: rating 7.5 is outside 0.5–5"
    );
    assert_eq!(
        example("ratings.csv", Reason::RatingStep),
        "ratings.csv:14: rating 3.7 is not a multiple of 0.5"
    );
    assert_eq!(
        example("ratings.csv", Reason::UnknownMovie),
        "ratings.csv:15: movieId 99 is not in movies.csv"
    );
    assert_eq!(
        example("ratings.csv", Reason::DuplicateRating),
        "ratings.csv:16: userId 1 also rated movieId 2 at line 3; that rating is kept (the \
         latest by timestamp, then by line)"
    );
    assert_eq!(
        example("movies.csv", Reason::DuplicateMovie),
        "movies.csv:7: movieId 2 was listed at line 3, which is kept"
    );
    assert_eq!(
        example("movies.csv", Reason::NotUtf8),
        "movies.csv:5: \"Am\\xe9lie (2001)\" is not valid UTF-8"
    );
    // 15 rating rows: 10 well-formed, one of which (line 16) an older duplicate of line 3.
    let ratings = report
        .files
        .iter()
        .find(|f| f.file == "ratings.csv")
        .unwrap();
    assert_eq!((ratings.rows, ratings.kept), (15, 9));
    assert_eq!(dataset.ratings.len(), 9);
    assert_eq!(
        report.skipped_rows(),
        7,
        "six ratings and a movie; Amélie is kept"
    );
    let kept = dataset
        .ratings
        .iter()
        .find(|r| (r.user_id, r.movie_id) == (1, 2))
        .unwrap();
    assert_eq!((kept.rating, kept.timestamp), (3.5, 964981247));
    let summary = report.to_string();
    assert!(
        summary.contains("ratings.csv            15 rows, 6 skipped"),
        "{summary}"
    );
    assert!(summary.contains("\n  7 rows skipped\n"), "{summary}");
}

#[test]
fn strict_makes_the_first_bad_row_an_error_naming_file_and_line() {
    let message = load_with(&fixture("messy-csv"), &STRICT)
        .unwrap_err()
        .to_string();
    assert!(
        message.ends_with("messy-csv/movies.csv:5: \"Am\\xe9lie (2001)\" is not valid UTF-8"),
        "{message}"
    );
    let cases: [(&str, &[u8], &str); 5] = [
        (
            "ratings.csv",
            b"userId,movieId,rating,timestamp\n1,1,4.0,9\n1,2,four,9\n1,2,7.5,9\n",
            "ratings.csv:3: rating: cannot read \"four\" as a number",
        ),
        (
            "ratings.csv",
            b"userId,movieId,rating,timestamp\n1,1,4.0,9\n1,2,7.5,9\n",
            "ratings.csv:3: rating 7.5 is outside 0.5–5",
        ),
        (
            "ratings.csv",
            b"userId,movieId,rating,timestamp\n1,1,4.0\n1,2,4.0,9\n",
            "ratings.csv:2: expected 4 fields, found 3",
        ),
        (
            "ratings.csv",
            b"userId,movieId,rating,timestamp\n2,1,4.0,9\n1,1,3.0,5\n2,1,4.5,9\n",
            "ratings.csv:2: userId 2 also rated movieId 1 at line 4",
        ),
        (
            "movies.csv",
            b"movieId,title,genres\n1,A (1990),Drama\n1,B (1991),Drama\n2,C (1992),Drama\n",
            "movies.csv:3: movieId 1 was listed at line 2, which is kept",
        ),
    ];
    for (file, contents, needle) in cases {
        let dir = variant(file, Some(contents));
        let message = load_with(dir.path(), &STRICT).unwrap_err().to_string();
        assert!(message.contains(needle), "{message}");
        assert!(
            load(dir.path()).is_ok(),
            "{needle}: skipped without --strict"
        );
    }
}

#[test]
fn duplicate_ratings_keep_the_latest_by_timestamp_then_by_line() {
    let ratings = b"userId,movieId,rating,timestamp\n\
        1,1,1.0,20\n\
        1,1,2.0,30\n\
        1,1,3.0,10\n\
        2,1,1.5,5\n\
        2,1,2.5,5\n\
        1,2,4.0,7\n";
    let dataset = load(variant("ratings.csv", Some(ratings)).path()).unwrap();
    let kept: Vec<(u32, u32, f32, u32)> = dataset
        .ratings
        .iter()
        .map(|r| (r.user_id, r.movie_id, r.rating, r.timestamp))
        .collect();
    assert_eq!(
        kept,
        vec![(1, 1, 2.0, 30), (2, 1, 2.5, 5), (1, 2, 4.0, 7)],
        "file order is kept"
    );
    let issue = dataset
        .report
        .issue("ratings.csv", Reason::DuplicateRating)
        .unwrap();
    assert_eq!(issue.count, 3);
    let lines: Vec<&str> = issue
        .examples
        .iter()
        .map(|e| e.split("ratings.csv:").nth(1).unwrap())
        .collect();
    assert!(lines[0].starts_with("2: userId 1 also rated movieId 1 at line 3"));
    assert!(lines[1].starts_with("4: userId 1 also rated movieId 1 at line 3"));
    assert!(lines[2].starts_with("5: userId 2 also rated movieId 1 at line 6"));
}

#[test]
fn bom_crlf_quoted_commas_and_latin1_titles_are_read_as_meant() {
    let dataset = load(&fixture("messy-csv")).unwrap();
    assert!(dataset.links.is_empty(), "the release has no links.csv");
    let catalog = Catalog::from_dataset(&dataset);
    let title = |id| {
        let m = catalog.movie(catalog.item_of(id).unwrap());
        (m.title.clone(), m.year, m.imdb_url())
    };
    assert_eq!(title(1), ("Toy Story".into(), Some(1995), None));
    assert_eq!(title(2), ("The Matrix".into(), Some(1999), None));
    assert_eq!(title(4), ("Amélie".into(), Some(2001), None));
    let good = catalog.movie(catalog.item_of(5).unwrap());
    assert_eq!(&*good.title, "The Good, the Bad and the Ugly");
    assert_eq!(good.aliases, vec!["Il Buono, il brutto, il cattivo"]);
    assert_eq!(dataset.tags[0].tag, "dystopia, cyberpunk");
    assert_eq!(dataset.movies.len(), 5);
}

#[test]
fn the_fingerprint_changes_with_the_data_and_only_then() {
    let a = load(&tiny()).unwrap().fingerprint;
    let b = load(&tiny()).unwrap().fingerprint;
    assert_eq!(a, b);
    let dir = variant(
        "ratings.csv",
        Some(b"userId,movieId,rating,timestamp\n1,1,3.0,964982703\n"),
    );
    assert_ne!(a, load(dir.path()).unwrap().fingerprint);
}

fn genome() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/genome")
}

#[test]
fn the_tag_genome_is_read_when_present_and_unknown_movies_are_skipped() {
    let dataset = load(&genome()).unwrap();
    let g = dataset.genome.as_ref().expect("genome");
    assert_eq!(g.tags, vec!["007", "dark", "funny"]);
    assert_eq!(g.movie_ids, vec![1, 2, 3]);
    assert_eq!(g.row(3).unwrap(), &[0.6, 0.9, 0.05]);
    assert!(g.row(4).is_none());
    assert_eq!(
        dataset.report.skipped_rows(),
        4,
        "three genome scores of movie 99 and the rating of movie 77"
    );
    assert!(load(&tiny()).unwrap().genome.is_none());
}

#[test]
fn a_broken_tag_genome_row_is_counted_and_a_missing_genome_file_is_an_error() {
    let scores = "movieId,tagId,relevance\n1,1,0.5\n1,2,0.5\n1,3,";
    for (file, contents, needle) in [
        (
            "genome-scores.csv",
            None,
            "genome-scores.csv: is missing, but genome-tags.csv is present",
        ),
        (
            "genome-tags.csv",
            None,
            "genome-tags.csv: is missing, but genome-scores.csv is present",
        ),
        (
            "genome-scores.csv",
            Some("movieId,tag,relevance\n".to_string()),
            "genome-scores.csv:1: unexpected header",
        ),
    ] {
        let dir = variant_of(&genome(), file, contents.as_deref().map(str::as_bytes));
        let err = load(dir.path()).expect_err("load should fail").to_string();
        assert!(err.contains(needle), "{file}: {err}");
    }
    for (file, contents, reason, needle, genome_movies) in [
        (
            "genome-scores.csv",
            format!("{scores}1.5\n2,1,0.1\n2,2,0.1\n2,3,0.1\n"),
            Reason::RelevanceRange,
            "genome-scores.csv:4: relevance 1.5 is outside 0–1",
            1,
        ),
        (
            "genome-scores.csv",
            format!("{scores}0.5\n2,9,0.5\n"),
            Reason::UnknownGenomeTag,
            "genome-scores.csv:5: tagId 9 is not in genome-tags.csv",
            1,
        ),
        (
            "genome-scores.csv",
            format!("{scores}0.5\n2,1,0.5\n"),
            Reason::IncompleteGenome,
            "genome-scores.csv: movieId 2 has scores for 1 of the 3 genome tags",
            1,
        ),
        (
            "genome-scores.csv",
            format!("{scores}0.5\n1,3,0.25\n"),
            Reason::DuplicateGenome,
            "genome-scores.csv:5: movieId 1 has a second score for tagId 3",
            1,
        ),
        (
            "genome-tags.csv",
            "tagId,tag\n2,dark\n1,007\n3,funny\n2,grim\n".to_string(),
            Reason::DuplicateGenome,
            "genome-tags.csv:5: tagId 2 was listed at line 2, which is kept",
            3,
        ),
    ] {
        let dir = variant_of(&genome(), file, Some(contents.as_bytes()));
        let dataset = load(dir.path()).unwrap();
        let issue = dataset.report.issue(file, reason).unwrap();
        assert!(issue.examples[0].contains(needle), "{issue:?}");
        let g = dataset.genome.as_ref().unwrap();
        assert_eq!(g.movie_ids.len(), genome_movies, "{needle}");
        assert_eq!(g.tags, vec!["007", "dark", "funny"], "tags in tagId order");
        // Strict, with the fixture's one unknown-movie rating taken out.
        let ratings = std::fs::read_to_string(genome().join("ratings.csv")).unwrap();
        let clean: String = ratings
            .lines()
            .filter(|l| !l.contains(",77,"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(dir.path().join("ratings.csv"), clean).unwrap();
        let strict = load_with(dir.path(), &STRICT).unwrap_err().to_string();
        assert!(strict.contains(needle), "{strict}");
    }
}

fn ratings_of(dataset: &Dataset) -> Vec<(u32, u32, f32)> {
    dataset
        .ratings
        .iter()
        .map(|r| (r.user_id, r.movie_id, r.rating))
        .collect()
}

#[test]
fn ml_1m_reads_latin1_titles_and_whole_stars() {
    let dataset = load(&fixture("ml-1m")).unwrap();
    assert_eq!(dataset.report.layout, Layout::Ml1m);
    assert_eq!((dataset.movies.len(), dataset.ratings.len()), (6, 15));
    assert!(dataset.links.is_empty() && dataset.tags.is_empty() && dataset.genome.is_none());
    assert_eq!(ratings_of(&dataset)[..2], [(1, 1, 5.0), (1, 2, 3.0)]);
    let catalog = Catalog::from_dataset(&dataset);
    let les = catalog.movie(catalog.item_of(1873).unwrap());
    assert_eq!((&*les.title, les.year), ("Les Misérables", Some(1998)));
    assert_eq!(les.imdb_url(), None);
    let toy = catalog.movie(catalog.item_of(1).unwrap());
    assert_eq!(
        names(&toy.genres),
        vec!["Animation", "Children's", "Comedy"]
    );
    assert_eq!(dataset.report.issues, vec![]);

    // Half stars are not on ml-1m's scale.
    let mut changed = std::fs::read(fixture("ml-1m/ratings.dat")).unwrap();
    changed.extend_from_slice(b"4::2::3.5::978294300\n5::2::6::978294301\n");
    let dir = variant_of(&fixture("ml-1m"), "ratings.dat", Some(&changed));
    let dataset = load(dir.path()).unwrap();
    let step = dataset
        .report
        .issue("ratings.dat", Reason::RatingStep)
        .unwrap();
    assert!(
        step.examples[0].ends_with("ratings.dat:16: rating 3.5 is not a whole number of stars"),
        "{step:?}"
    );
    let range = dataset
        .report
        .issue("ratings.dat", Reason::RatingRange)
        .unwrap();
    assert!(range.examples[0].ends_with("ratings.dat:17: rating 6 is outside 1–5"));
}

#[test]
fn ml_10m_reads_half_stars_tags_and_titles_holding_the_separator() {
    let dataset = load(&fixture("ml-10m")).unwrap();
    assert_eq!(dataset.report.layout, Layout::Ml10m);
    assert_eq!((dataset.movies.len(), dataset.ratings.len()), (5, 12));
    assert!(ratings_of(&dataset).contains(&(3, 4399, 0.5)));
    assert!(ratings_of(&dataset).contains(&(1, 2, 3.5)));
    let tags: Vec<(u32, &str)> = dataset
        .tags
        .iter()
        .map(|t| (t.movie_id, t.tag.as_str()))
        .collect();
    assert_eq!(
        tags,
        vec![(29, "steampunk"), (1210, "space opera"), (4399, "a::b tag")]
    );
    let orphan = dataset
        .report
        .issue("tags.dat", Reason::UnknownMovie)
        .unwrap();
    assert!(orphan.examples[0].ends_with("tags.dat:4: MovieID 77 is not in movies.dat"));
    let catalog = Catalog::from_dataset(&dataset);
    let lost = catalog.movie(catalog.item_of(29).unwrap());
    assert_eq!(&*lost.title, "The City of Lost Children");
    assert_eq!(lost.aliases, vec!["La Cité des enfants perdus"]);
    let face = catalog.movie(catalog.item_of(4399).unwrap());
    assert_eq!(
        (&*face.title, face.year),
        ("Face::Off Pastiche", Some(2001))
    );
    assert!(face.genres.is_empty());
}

#[test]
fn ml_100k_reads_genre_flags_and_takes_a_missing_year_from_the_release_date() {
    let dataset = load(&fixture("ml-100k")).unwrap();
    assert_eq!(dataset.report.layout, Layout::Ml100k);
    assert_eq!((dataset.movies.len(), dataset.ratings.len()), (6, 13));
    assert!(
        dataset.links.is_empty(),
        "u.item has IMDb search URLs, not ids"
    );
    assert_eq!(ratings_of(&dataset)[0], (196, 1, 3.0));
    let catalog = Catalog::from_dataset(&dataset);
    let movie = |id| catalog.movie(catalog.item_of(id).unwrap());
    assert_eq!(
        names(&movie(1).genres),
        vec!["Animation", "Children's", "Comedy"]
    );
    assert_eq!(
        names(&movie(50).genres),
        vec!["Action", "Adventure", "Romance", "Sci-Fi", "War"]
    );
    assert!(movie(267).genres.is_empty(), "the unknown genre is none");
    assert_eq!(
        (&*movie(1300).title, movie(1300).year),
        ("Les Misérables", Some(1998))
    );
    assert_eq!(&*movie(127).title, "The Godfather");
    assert_eq!(movie(2).imdb_url(), None);

    let mut changed = std::fs::read(fixture("ml-100k/u.item")).unwrap();
    changed.extend_from_slice(b"1400|Short|01-Jan-1990||url|0|1\n");
    changed
        .extend_from_slice(b"1401|Flags|01-Jan-1990||url|0|0|0|0|0|0|0|0|2|0|0|0|0|0|0|0|0|0|0\n");
    let dir = variant_of(&fixture("ml-100k"), "u.item", Some(&changed));
    let dataset = load(dir.path()).unwrap();
    let count = dataset.report.issue("u.item", Reason::FieldCount).unwrap();
    assert!(
        count.examples[0].ends_with("u.item:7: expected 24 fields (5 and 19 genre flags), found 7")
    );
    let flag = dataset.report.issue("u.item", Reason::BadGenre).unwrap();
    assert!(flag.examples[0].ends_with("u.item:8: genre flag Drama: \"2\" is neither 0 nor 1"));
}

/// A zip of `fixture_dir`'s files under `top/`, as GroupLens packs a release.
fn zip_of(fixture_dir: &Path, top: &str, zip_path: &Path) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(zip_path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.add_directory(format!("{top}/"), options).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(fixture_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        zip.start_file(format!("{top}/{name}"), options).unwrap();
        zip.write_all(&std::fs::read(fixture_dir.join(&name)).unwrap())
            .unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn a_zip_as_downloaded_reads_like_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["ml-1m", "ml-10m", "ml-100k", "messy-csv", "genome"] {
        let zip_path = dir.path().join(format!("{name}.zip"));
        zip_of(&fixture(name), name, &zip_path);
        let (from_zip, from_dir) = (load(&zip_path).unwrap(), load(&fixture(name)).unwrap());
        assert_eq!(from_zip.ratings, from_dir.ratings, "{name}");
        assert_eq!(from_zip.movies, from_dir.movies, "{name}");
        assert_eq!(from_zip.tags, from_dir.tags, "{name}");
        assert_eq!(from_zip.genome, from_dir.genome, "{name}");
        assert_eq!(from_zip.fingerprint, from_dir.fingerprint, "{name}");
        assert_eq!(from_zip.report.layout, from_dir.report.layout, "{name}");
        assert_eq!(
            from_zip.report.skipped_rows(),
            from_dir.report.skipped_rows()
        );
    }
    // Messages name the entry inside the zip.
    let dataset = load(&dir.path().join("messy-csv.zip")).unwrap();
    let issue = dataset
        .report
        .issue("ratings.csv", Reason::RatingRange)
        .unwrap();
    assert!(
        issue.examples[0]
            .ends_with("messy-csv.zip/messy-csv/ratings.csv:13: rating 7.5 is outside 0.5–5"),
        "{issue:?}"
    );

    // Not a zip, a damaged zip, a zip without a release: errors, not panics.
    let not_zip = dir.path().join("notes.txt");
    std::fs::write(&not_zip, "hello").unwrap();
    assert!(error_of(&not_zip).contains("is not a directory or a .zip file"));
    let bytes = std::fs::read(dir.path().join("ml-1m.zip")).unwrap();
    for cut in [10, bytes.len() / 2, bytes.len() - 30] {
        let damaged = dir.path().join("damaged.zip");
        std::fs::write(&damaged, &bytes[..cut]).unwrap();
        assert!(load(&damaged).is_err(), "cut at {cut}");
    }
    for seed in 0..50usize {
        let mut flipped = bytes.clone();
        for b in flipped.iter_mut().skip(30 + seed).step_by(97 + seed) {
            *b ^= 0x5a;
        }
        let damaged = dir.path().join("flipped.zip");
        std::fs::write(&damaged, &flipped).unwrap();
        let _ = load(&damaged);
    }
    let other = dir.path().join("other.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&other).unwrap());
    zip.start_file("readme.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"nothing here").unwrap();
    zip.finish().unwrap();
    assert!(error_of(&other).contains("holds no MovieLens release"));
}

/// The files of a fixture, in memory.
fn files_of(name: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixture(name))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Random and mutated inputs through every parser (as the fuzz target in fuzz/ does, here in a
/// few seconds on every machine): loading never panics, and what it keeps is valid.
#[test]
fn no_input_makes_any_parser_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let fixtures: Vec<Vec<(String, Vec<u8>)>> =
        ["tiny", "genome", "messy-csv", "ml-10m", "ml-1m", "ml-100k"]
            .iter()
            .map(|name| files_of(name))
            .collect();
    let pieces: [&[u8]; 12] = [
        b",",
        b"::",
        b"\t",
        b"|",
        b"\n",
        b"\r\n",
        b"\"",
        b"\xEF\xBB\xBF",
        b"\xff\xfe",
        b"4294967296",
        b"-1",
        b"0.5",
    ];
    let mut loaded = 0;
    for case in 0..10_000usize {
        let mut files = fixtures[case % fixtures.len()].clone();
        for _ in 0..rng.random_range(1..4) {
            let k = rng.random_range(0..files.len());
            let bytes = &mut files[k].1;
            match rng.random_range(0..6) {
                // Overwrite, insert or delete bytes.
                0 if !bytes.is_empty() => {
                    for _ in 0..rng.random_range(1..8) {
                        let i = rng.random_range(0..bytes.len());
                        bytes[i] = rng.random();
                    }
                }
                1 => {
                    let i = rng.random_range(0..=bytes.len());
                    let piece = pieces[rng.random_range(0..pieces.len())];
                    bytes.splice(i..i, piece.iter().copied());
                }
                2 if !bytes.is_empty() => {
                    let i = rng.random_range(0..bytes.len());
                    let j = rng.random_range(i..=bytes.len().min(i + 20));
                    bytes.drain(i..j);
                }
                3 => {
                    let cut = rng.random_range(0..=bytes.len());
                    bytes.truncate(cut);
                }
                4 => {
                    let n = rng.random_range(0..200);
                    *bytes = (0..n).map(|_| rng.random()).collect();
                }
                _ => {
                    // A line repeated at the end.
                    let text = bytes.clone();
                    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
                    bytes.extend_from_slice(lines[rng.random_range(0..lines.len())]);
                    bytes.push(b'\n');
                }
            }
        }
        if rng.random_range(0..10) == 0 {
            files.remove(rng.random_range(0..files.len()));
        }
        let strict = rng.random_range(0..4) == 0;
        let options = LoadOptions {
            strict,
            ..LoadOptions::default()
        };
        if let Ok(dataset) = load_from_memory("case", files, &options) {
            loaded += 1;
            let report = &dataset.report;
            assert!(report.files.iter().all(|f| f.kept <= f.rows), "{report}");
            if strict {
                assert_eq!(report.skipped_rows(), 0, "{report}");
            }
            let movies: std::collections::HashSet<u32> =
                dataset.movies.iter().map(|m| m.movie_id).collect();
            let mut pairs = std::collections::HashSet::new();
            for r in &dataset.ratings {
                assert!(movies.contains(&r.movie_id));
                assert!((0.5..=5.0).contains(&r.rating) && (r.rating * 2.0).fract() == 0.0);
                assert!(
                    pairs.insert((r.user_id, r.movie_id)),
                    "a duplicate was kept"
                );
            }
            let _ = report.to_string();
        }
    }
    assert!(
        loaded > 1_000,
        "only {loaded} cases loaded: the mutations are too harsh"
    );
}

/// A movie's genres as plain strings, to compare with a list.
fn names(genres: &[std::sync::Arc<str>]) -> Vec<&str> {
    genres.iter().map(|g| &**g).collect()
}

#[test]
fn one_film_listed_under_two_ids_is_merged_into_the_best_rated_with_the_latest_rating_kept() {
    let dataset = load(&fixture("same-film")).unwrap();
    let ids: Vec<u32> = dataset.movies.iter().map(|m| m.movie_id).collect();
    // 7 is folded into 2 (three ratings against two); War of the Worlds 8 and 9 are two films
    // by their TMDb ids; the Hamlets of 1990, 1996 and no year are three.
    assert_eq!(ids, [1, 2, 3, 4, 5, 6, 8, 9]);
    let amy = &dataset.movies[1];
    assert_eq!(amy.merged_ids, [7]);
    assert_eq!(amy.genres, ["Comedy", "Romance", "Drama"]);
    let link = dataset.links[&2];
    assert_eq!((link.imdb_id, link.tmdb_id), (Some(118842), Some(2255)));
    assert!(!dataset.links.contains_key(&7));

    assert!(dataset.ratings.iter().all(|r| r.movie_id != 7));
    let of_amy: Vec<(u32, f32)> = dataset
        .ratings
        .iter()
        .filter(|r| r.movie_id == 2)
        .map(|r| (r.user_id, r.rating))
        .collect();
    // User 1 rated 2 (3.0) and later 7 (5.0): the latest counts, once.
    assert_eq!(of_amy, [(1, 5.0), (2, 4.0), (3, 2.5), (4, 4.5)]);
    assert_eq!(dataset.ratings.len(), 10);
    let tags: Vec<(u32, u32, &str)> = dataset
        .tags
        .iter()
        .map(|t| (t.user_id, t.movie_id, t.tag.as_str()))
        .collect();
    assert_eq!(
        tags,
        [
            (1, 2, "kevin smith"),
            (2, 2, "comic books"),
            (5, 3, "heist")
        ]
    );

    let report = &dataset.report;
    let merged = report.issue("movies.csv", Reason::MergedMovie).unwrap();
    assert_eq!(merged.count, 1);
    let location = fixture("same-film").join("movies.csv");
    assert_eq!(
        merged.examples,
        [format!(
            "{}:8: \"Chasing Amy (1997)\" movieId 2 and 7 merged into 2",
            location.display()
        )]
    );
    let apart = report
        .issue("movies.csv", Reason::SameTitleKeptApart)
        .unwrap();
    assert_eq!(apart.count, 1);
    assert!(
        apart.examples[0].ends_with(
            ":10: \"War of the Worlds (2005)\" movieId 8 and 9 kept apart: different films by \
             their TMDb ids 74 and 34812"
        ),
        "{:?}",
        apart.examples
    );
    let twice = report
        .issue("ratings.csv", Reason::DuplicateRating)
        .unwrap();
    assert_eq!(twice.count, 1);
    assert!(twice.examples[0].contains("userId 1 rated movieId 2 and 7, one film"));
    let ratings_file = report
        .files
        .iter()
        .find(|f| f.file == "ratings.csv")
        .unwrap();
    assert_eq!((ratings_file.rows, ratings_file.kept), (11, 10));
    // Merging is not a skipped row, and not an error in strict mode; the rating of both is.
    assert_eq!(report.skipped_rows(), 1);
    let text = report.to_string();
    assert!(
        text.contains("movies.csv: 1 × same title and year listed under two ids (merged)"),
        "{text}"
    );
    assert!(load_with(&fixture("same-film"), &STRICT).is_ok());

    // The merged id still names the film, in the catalog and in a saved catalog.json.
    let catalog = Catalog::from_dataset(&dataset);
    assert_eq!(catalog.len(), 8);
    let item = catalog.item_of(2).unwrap();
    assert_eq!(catalog.item_of(7), Some(item));
    let resolved = catalog.resolve(&MovieQuery::Id(7)).unwrap();
    assert_eq!(resolved.item, item);
    assert_eq!(catalog.movie(item).rating_count, 4);
    let json = serde_json::to_value(catalog.movies()).unwrap();
    assert_eq!(json[1]["mergedIds"], serde_json::json!([7]));
    assert!(json[0].get("mergedIds").is_none(), "absent when empty");
    let movies: Vec<Movie> = serde_json::from_value(json).unwrap();
    let reopened = Catalog::from_movies(movies);
    assert_eq!(reopened.item_of(7), Some(item));
    let exclude = MovieFilter {
        exclude: vec![7],
        ..MovieFilter::default()
    };
    let compiled = CompiledFilter::new(&reopened, &exclude).unwrap();
    assert!(!compiled.allows(item));
}

#[test]
fn the_bundled_release_merges_its_three_films_listed_twice_and_keeps_two_pairs_apart() {
    let dataset =
        load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/ml-latest-small")).unwrap();
    assert_eq!(dataset.movies.len(), 9_739);
    let merged: Vec<(u32, &[u32])> = dataset
        .movies
        .iter()
        .filter(|m| !m.merged_ids.is_empty())
        .map(|m| (m.movie_id, m.merged_ids.as_slice()))
        .collect();
    assert_eq!(
        merged,
        [
            (2851, &[168358][..]),
            (6003, &[144606][..]),
            (32600, &[147002][..])
        ]
    );
    let report = &dataset.report;
    assert_eq!(
        report
            .issue("movies.csv", Reason::MergedMovie)
            .unwrap()
            .count,
        3
    );
    // Emma (1996): the film and the TV film; War of the Worlds (2005): Spielberg's and The
    // Asylum's.
    let apart = report
        .issue("movies.csv", Reason::SameTitleKeptApart)
        .unwrap();
    assert_eq!(apart.count, 2);
    assert!(apart.examples[0].contains("\"Emma (1996)\" movieId 838 and 26958"));
    assert!(apart.examples[1].contains("\"War of the Worlds (2005)\" movieId 34048 and 64997"));
    // User 111 rated both listings of Confessions of a Dangerous Mind.
    assert_eq!(dataset.ratings.len(), 100_835);
}

#[test]
fn a_huge_header_line_or_field_is_quoted_cut_with_its_length() {
    // A 5 MB header line (of either loader: movies.csv is read whole, ratings.csv in blocks).
    for file in ["movies.csv", "ratings.csv"] {
        let mut line = "x".repeat(5 << 20);
        line.push('\n');
        let dir = variant(file, Some(line.as_bytes()));
        let message = error_of(dir.path());
        assert!(
            message.len() < 1_200,
            "{file}: a {}-byte message",
            message.len()
        );
        assert!(
            message.contains(&format!("({} bytes)", 5 << 20)),
            "{message}"
        );
        assert!(message.contains(&format!("{file}:1")), "{message}");
    }
    // A 2 MB field in a skipped row: the report's example is cut as well.
    let mut ratings = std::fs::read_to_string(tiny().join("ratings.csv")).unwrap();
    ratings.push_str(&format!("1,{},4.0,1\n", "9".repeat(2 << 20)));
    let dir = variant("ratings.csv", Some(ratings.as_bytes()));
    let dataset = load_with(dir.path(), &LoadOptions::default()).expect("loads");
    let examples: Vec<&String> = dataset
        .report
        .issues
        .iter()
        .flat_map(|i| i.examples.iter())
        .collect();
    assert!(!examples.is_empty());
    assert!(examples.iter().all(|e| e.len() < 1_200), "{examples:?}");
}

#[test]
fn a_movie_with_thousands_of_genres_keeps_the_most_common_hundred_and_counts_the_rest() {
    let mut movies = std::fs::read_to_string(tiny().join("movies.csv")).unwrap();
    let many: Vec<String> = (0..6_000).map(|i| format!("Genre{i}")).collect();
    movies.push_str(&format!(
        "999,Many Genres (2001),Comedy|{}\n",
        many.join("|")
    ));
    let dir = variant("movies.csv", Some(movies.as_bytes()));
    let dataset = load(dir.path()).expect("loads");
    let mut vocabulary: Vec<&str> = dataset
        .movies
        .iter()
        .flat_map(|m| m.genres.iter().map(String::as_str))
        .collect();
    vocabulary.sort_unstable();
    vocabulary.dedup();
    assert_eq!(vocabulary.len(), movierec::data::genres::MAX_GENRES);
    // The tiny release's own genres are more common than any of the one movie's, so all stay.
    for genre in ["Comedy", "Animation", "Drama", "Romance"] {
        assert!(vocabulary.contains(&genre), "{genre}");
    }
    let movie = dataset.movies.iter().find(|m| m.movie_id == 999).unwrap();
    assert!(movie.genres.contains(&"Comedy".to_string()));
    let issue = dataset
        .report
        .issues
        .iter()
        .find(|i| i.reason == Reason::RareGenre)
        .expect("the dropped genres are counted");
    let kept = movie.genres.len() as u64;
    assert_eq!(issue.count, 6_001 - kept);
    assert!(
        issue.examples[0].contains("movies.csv:"),
        "{:?}",
        issue.examples
    );
}
