//! `movierec profile`: tables on the terminal, a self-contained HTML report, JSON.

use crate::common;

use common::{bundled_data, movierec, stderr, stdout};
use serde_json::Value;

#[test]
fn profile_prints_tables_and_writes_a_self_contained_report() {
    let root = tempfile::tempdir().unwrap();
    let html = root.path().join("report.html");
    let data = bundled_data();
    let output = movierec(&[
        "profile",
        "--data",
        data.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for needle in [
        "movies.csv — 9,739 rows",
        "ratings.csv — 100,835 rows",
        "userId",
        "most frequent",
        "4.0 (26.6%)",
        "Ratings per user — 610 users",
        "Ratings per movie — 9,739 movies, 18 without ratings",
        "Drama",
        "1990s",
        "Ratings per year",
        "in netflix queue",
        "Same title and year under two ids",
        "movies.csv: same title and year listed under two ids (merged): 3",
        "Saturn 3 (1980): movieId 2851 (merged: 168358)",
    ] {
        assert!(text.contains(needle), "{needle}\n{text}");
    }
    assert!(stderr(&output).contains("loaded in"), "{}", stderr(&output));

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
    assert!(page.matches("<svg").count() >= 7);
    assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("url("));
    // Every text is escaped: no bare ampersand anywhere.
    assert!(!page.contains(" & "), "an unescaped ampersand");
    // Written atomically: nothing else left in the directory.
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
}

#[test]
fn profile_json_has_every_view() {
    let output = movierec(&["profile", "--data", "tests/fixtures/tiny", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let profile: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    for key in [
        "files",
        "skipped",
        "ratings",
        "per_user",
        "per_movie",
        "genres",
        "decades",
        "years",
        "tags",
    ] {
        assert!(profile.get(key).is_some(), "{key}");
    }
    let files: Vec<&str> = profile["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        ["movies.csv", "links.csv", "ratings.csv", "tags.csv"]
    );
    assert_eq!(profile["ratings"]["count"], 4);
}

#[test]
fn profile_of_a_missing_directory_names_it() {
    let output = movierec(&["profile", "--data", "no/such/release"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no/such/release"),
        "{}",
        stderr(&output)
    );
}
