//! The data stage on small hand-written fixtures (tests/fixtures/tiny, written from the
//! documented ml-latest CSV format) and on variations of them.

use movierec::catalog::Catalog;
use movierec::data::load;
use std::path::{Path, PathBuf};

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny")
}

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
    assert_eq!(dataset.report.skipped_rows(), 2);
    let (reason, count, examples) = &dataset.report.skipped[0];
    assert_eq!(
        (reason.as_str(), *count),
        ("rating of a movie not in movies.csv", 1)
    );
    assert!(examples[0].contains("ratings.csv:6"), "{examples:?}");

    let catalog = Catalog::from_dataset(&dataset);
    assert_eq!(
        catalog.len(),
        4,
        "movies without a year, links or genres are kept"
    );
    let president = catalog.movie(catalog.item_of(2).unwrap());
    assert_eq!(president.title, "The American President");
    assert_eq!(president.year, Some(1995));
    assert_eq!(president.tmdb_url(), None);
    assert_eq!(
        president.imdb_url().as_deref(),
        Some("https://www.imdb.com/title/tt0112346/")
    );
    let babylon = catalog.movie(catalog.item_of(3).unwrap());
    assert_eq!((babylon.title.as_str(), babylon.year), ("Babylon 5", None));
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
}

#[test]
fn a_malformed_row_is_reported_with_file_and_line() {
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "ratings.csv",
            b"userId,movieId,rating,timestamp\n1,1,4.0,9\n1,2,four,9\n",
            "ratings.csv:3: rating: cannot parse \"four\"",
        ),
        (
            "ratings.csv",
            b"userId,movieId,rating,timestamp\n1,1,4.0,9\n1,2,7.5,9\n",
            "ratings.csv:3: rating 7.5 is outside the allowed range 0.5 to 5.0",
        ),
        (
            "ratings.csv",
            b"userId,movieId,rating,timestamp\n1,1,4.0\n",
            "ratings.csv:2: expected 4 fields, found 3",
        ),
        (
            "movies.csv",
            b"movieId,title,genres\n1,A (1990),Drama\n1,B (1991),Drama\n",
            "movies.csv:3: movieId 1 appears twice",
        ),
    ];
    for (file, contents, needle) in cases {
        let dir = variant(file, Some(contents));
        let message = error_of(dir.path());
        assert!(
            message.ends_with(needle) || message.contains(needle),
            "{message}"
        );
    }
}

#[test]
fn bom_crlf_and_quoted_commas_are_handled() {
    let movies = "\u{feff}movieId,title,genres\r\n1,\"Matrix, The (1999)\",Action|Sci-Fi\r\n2,\"Bug's Life, A (1998)\",Animation\r\n";
    let dir = variant("movies.csv", Some(movies.as_bytes()));
    std::fs::write(
        dir.path().join("ratings.csv"),
        "userId,movieId,rating,timestamp\r\n1,1,5.0,1\r\n1,2,3.0,2\r\n",
    )
    .unwrap();
    let catalog = Catalog::from_dataset(&load(dir.path()).unwrap());
    let matrix = catalog.movie(catalog.item_of(1).unwrap());
    assert_eq!(
        (matrix.title.as_str(), matrix.year),
        ("The Matrix", Some(1999))
    );
    assert_eq!(matrix.genres, vec!["Action", "Sci-Fi"]);
    assert_eq!(
        catalog.movie(catalog.item_of(2).unwrap()).title,
        "A Bug's Life"
    );
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
fn a_broken_tag_genome_is_an_error_naming_the_file_and_line() {
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
            Some(format!("{scores}1.5\n")),
            "genome-scores.csv:4: relevance 1.5 is outside 0–1",
        ),
        (
            "genome-scores.csv",
            Some(format!("{scores}0.5\n2,9,0.5\n")),
            "genome-scores.csv:5: tagId 9 is not in genome-tags.csv",
        ),
        (
            "genome-scores.csv",
            Some(format!("{scores}0.5\n2,1,0.5\n")),
            "movieId 2 has scores for 1 of the 3 genome tags",
        ),
        (
            "genome-tags.csv",
            Some("tagId,tag\n2,dark\n1,007\n".to_string()),
            "genome-tags.csv:3: tagId 1 is not above the previous one",
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
}
