//! End-to-end tests of the `movierec` binary on the bundled data: train, recommend, and the
//! guarantees of the model directory.

use crate::common;

use common::{bundled_data, movierec, stderr, stdout, trained_model};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn recommend_json(args: &[&str]) -> Value {
    let model = trained_model().to_str().unwrap().to_string();
    let mut all = vec!["recommend", "--model-dir", &model, "--json"];
    all.extend_from_slice(args);
    let output = movierec(&all);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).expect("JSON output")
}

/// Equal JSON, numbers compared as the f32 settings they were written from.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-6 * x.abs().max(1.0)
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same_json(v, w))
        }
        _ => a == b,
    }
}

fn titles(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn recommend_filters_by_genre_years_ratings_and_exclusions() {
    let answer = recommend_json(&[
        "toy story",
        "--model",
        "hybrid",
        "--index",
        "hnsw",
        "-k",
        "8",
        "--genre",
        "Horror,Crime",
        "--exclude-genre",
        "Comedy",
        "--year-min",
        "1990",
        "--year-max",
        "1999",
        "--min-ratings",
        "10",
        "--exclude",
        "1,2",
    ]);
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 8, "{answer}");
    for movie in results {
        let genres = movie["genres"].as_array().unwrap();
        assert!(
            genres.iter().any(|g| g == "Horror" || g == "Crime"),
            "{movie}"
        );
        assert!(genres.iter().all(|g| g != "Comedy"), "{movie}");
        let year = movie["year"].as_u64().unwrap();
        assert!((1990..=1999).contains(&year), "{movie}");
        assert!(movie["ratingCount"].as_u64().unwrap() >= 10, "{movie}");
    }

    let model = trained_model().to_str().unwrap().to_string();
    let output = movierec(&[
        "recommend",
        "heat",
        "--model-dir",
        &model,
        "--genre",
        "Kung Fu",
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("unknown genre \"Kung Fu\"")
            && stderr(&output).contains("Documentary"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn toy_story_2_is_a_collaborative_neighbour_of_toy_story() {
    let answer = recommend_json(&["toy", "story", "--model", "collaborative", "-k", "10"]);
    assert_eq!(answer["query"]["title"], "Toy Story");
    assert_eq!(answer["query"]["year"], 1995);
    assert!(
        titles(&answer).contains(&"Toy Story 2".to_string()),
        "{answer}"
    );
}

#[test]
fn the_godfather_part_ii_is_a_neighbour_of_the_godfather_in_every_model() {
    for (model, indexes) in [
        ("similar", &["exact", "annoy", "hnsw"][..]),
        ("collaborative", &["exact", "annoy"]),
        ("item_knn", &["exact"]),
        ("ease", &["exact"]),
        ("content", &["exact", "annoy", "hnsw"]),
        ("svd", &["exact", "annoy", "hnsw"]),
        ("als", &["exact", "annoy", "hnsw"]),
        ("hybrid", &["exact", "annoy", "hnsw"]),
    ] {
        for &index in indexes {
            let answer = recommend_json(&["godfather", "--model", model, "--index", index]);
            assert_eq!(answer["query"]["title"], "The Godfather", "{model}/{index}");
            assert!(
                titles(&answer)
                    .iter()
                    .any(|t| t == "The Godfather: Part II"),
                "{model}/{index}: {:?}",
                titles(&answer)
            );
        }
    }
}

#[test]
fn json_output_has_the_documented_shape_and_k_results_ordered_by_score() {
    let answer = recommend_json(&["toy stroy", "-k", "7", "--model", "als", "--index", "annoy"]);
    assert_eq!(answer["model"], "als");
    assert_eq!(answer["index"], "annoy");
    let query = &answer["query"];
    for field in [
        "movieId",
        "title",
        "year",
        "genres",
        "imdbUrl",
        "tmdbUrl",
        "movielensUrl",
    ] {
        assert!(query.get(field).is_some(), "query lacks {field}: {query}");
    }
    assert_eq!(query["movieId"], 1);
    assert_eq!(query["imdbUrl"], "https://www.imdb.com/title/tt0114709/");
    assert_eq!(query["tmdbUrl"], "https://www.themoviedb.org/movie/862");
    assert_eq!(query["movielensUrl"], "https://movielens.org/movies/1");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 7);
    let scores: Vec<f64> = results
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(
        results.iter().all(|r| r["movieId"] != 1),
        "query in its own results"
    );
}

#[test]
fn a_trailing_year_picks_that_years_film_and_names_the_others() {
    let answer = recommend_json(&["hamlet", "1996", "--model", "content"]);
    assert_eq!(answer["query"]["title"], "Hamlet");
    assert_eq!(answer["query"]["year"], 1996);
    let plain = recommend_json(&["hamlet", "--model", "content"]);
    let alternatives = plain["alternatives"].as_array().unwrap();
    assert!(
        !alternatives.is_empty(),
        "other Hamlets should be named: {plain}"
    );
}

#[test]
fn text_output_lists_imdb_links() {
    let model = trained_model().to_str().unwrap();
    let output = movierec(&["recommend", "heat", "-k", "3", "--model-dir", model]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("Movies like Heat (1995)"), "{text}");
    assert_eq!(
        text.matches("https://www.imdb.com/title/tt").count(),
        3,
        "{text}"
    );
}

#[test]
fn an_unknown_title_fails_with_close_suggestions() {
    let model = trained_model().to_str().unwrap();
    let output = movierec(&["recommend", "xqzwvk", "--model-dir", model]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no movie matches \"xqzwvk\""),
        "{}",
        stderr(&output)
    );
    let output = movierec(&["recommend", "godfather xqzwvk", "--model-dir", model]);
    if !output.status.success() {
        assert!(stderr(&output).contains("Godfather"), "{}", stderr(&output));
    }
}

#[test]
fn bad_arguments_are_refused_with_the_allowed_values() {
    let model = trained_model().to_str().unwrap();
    for (args, needle) in [
        (vec!["-k", "0"], "k must be between 1 and 100"),
        (vec!["-k", "101"], "k must be between 1 and 100"),
        (
            vec!["--model", "faiss"],
            "expected one of: similar, collaborative, content, hybrid, item_knn, ease, als, svd",
        ),
        (
            vec!["--index", "hnsw9"],
            "expected one of: exact, annoy, hnsw, lists",
        ),
        (
            vec!["--model", "content", "--index", "lists"],
            "content is an embedding model",
        ),
    ] {
        let mut all = vec!["recommend", "toy story", "--model-dir", model];
        all.extend(args);
        let output = movierec(&all);
        assert!(!output.status.success());
        assert!(stderr(&output).contains(needle), "{}", stderr(&output));
    }
}

#[test]
fn a_missing_model_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let output = movierec(&[
        "recommend",
        "heat",
        "--model-dir",
        missing.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("does not exist"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_corrupt_or_foreign_model_directory_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("model");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(trained_model()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let run = || movierec(&["recommend", "heat", "--model-dir", copy.to_str().unwrap()]);
    let verify = || movierec(&["verify", "--model-dir", copy.to_str().unwrap()]);
    assert!(run().status.success());
    let verified = verify();
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert!(
        stdout(&verified).starts_with("ok: "),
        "{}",
        stdout(&verified)
    );

    // A flipped byte in the embeddings.
    let path = copy.join("svd.embeddings");
    let mut bytes = std::fs::read(&path).unwrap();
    let original = bytes.clone();
    bytes[100] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let output = run();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("svd.embeddings is corrupt"),
        "{}",
        stderr(&output)
    );
    let output = verify();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("svd.embeddings is corrupt"),
        "{}",
        stderr(&output)
    );
    std::fs::write(&path, &original).unwrap();
    // A catalog that no longer parses (it is decoded while the files are hashed): the checksum
    // names the file, not the JSON error.
    let catalog = copy.join("catalog.json");
    let catalog_bytes = std::fs::read(&catalog).unwrap();
    let mut broken = catalog_bytes.clone();
    broken[0] = b'!';
    std::fs::write(&catalog, &broken).unwrap();
    let output = run();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("catalog.json is corrupt"),
        "{}",
        stderr(&output)
    );
    std::fs::write(&catalog, &catalog_bytes).unwrap();
    // A truncated index is refused by its size alone.
    let hnsw = copy.join("svd.hnsw");
    let hnsw_bytes = std::fs::read(&hnsw).unwrap();
    std::fs::write(&hnsw, &hnsw_bytes[..hnsw_bytes.len() - 1]).unwrap();
    let output = run();
    assert!(
        stderr(&output).contains("svd.hnsw is corrupt: expected"),
        "{}",
        stderr(&output)
    );
    std::fs::write(&hnsw, &hnsw_bytes).unwrap();

    // A manifest from a future version.
    let manifest_path = copy.join("manifest.json");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    let future = manifest.replace(
        &format!("\"format_version\": {}", movierec::artifact::FORMAT_VERSION),
        "\"format_version\": 99",
    );
    assert_ne!(future, manifest);
    std::fs::write(&manifest_path, future).unwrap();
    let output = run();
    assert!(
        stderr(&output).contains("format version 99 is not supported"),
        "{}",
        stderr(&output)
    );

    // Not a manifest at all.
    std::fs::write(&manifest_path, "{\"hello\": 1}").unwrap();
    let output = run();
    assert!(
        stderr(&output).contains("expected \"movierec-model\""),
        "{}",
        stderr(&output)
    );
    std::fs::remove_file(&manifest_path).unwrap();
    let output = run();
    assert!(
        stderr(&output).contains("has no manifest.json"),
        "{}",
        stderr(&output)
    );
}

#[cfg(unix)]
#[test]
fn a_model_directory_from_a_killed_training_is_never_loaded() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    let mut child = Command::new(env!("CARGO_BIN_EXE_movierec"))
        .args(["train", "--data", bundled_data().to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .env("MOVIEREC_TEST_PAUSE_BEFORE_PUBLISH", "120")
        .env("MOVIEREC_RUNS_DIR", common::runs_dir())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until every file is written but not yet published, then kill it hard.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let paused = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("paused before publishing"));
    assert!(paused.is_some(), "training never reached the pause");
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(!out.exists(), "a killed training left {}", out.display());
    let output = movierec(&["recommend", "heat", "--model-dir", out.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("does not exist"),
        "{}",
        stderr(&output)
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(
        leftovers.len(),
        1,
        "the killed training's temporary directory is there"
    );

    // The next training cleans up after the dead one and publishes a complete model.
    let output = movierec(&[
        "train",
        "--data",
        bundled_data().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["model".to_string()]);
    let output = movierec(&["recommend", "heat", "--model-dir", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn training_the_same_data_twice_gives_the_same_fingerprint_and_replaces_the_model() {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(trained_model().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["format"], "movierec-model");
    assert_eq!(manifest["dataset"]["movies"], 9739);
    assert_eq!(manifest["dataset"]["ratings"], 100835);
    assert_eq!(manifest["dataset"]["users"], 610);
    let fingerprint = manifest["dataset"]["fingerprint"].as_str().unwrap();
    assert!(fingerprint.starts_with("xxh3:"));
    let svd_dim = manifest["models"]["svd"]["dim"].as_u64().unwrap();
    assert!(svd_dim >= 8, "SVD embedding collapsed to {svd_dim}");
    assert_eq!(manifest["default_collaborative"], "item_knn");
    assert_eq!(manifest["personal"]["model"], "item_knn");
    for lists in ["item_knn", "ease"] {
        assert_eq!(manifest["neighbour_lists"][lists]["neighbours"], 100);
    }
    // Content: 95% of the variance or the 32-component cap, whichever comes first; the tags
    // (512 features on the bundled data) push it to the cap.
    let content = &manifest["models"]["content"]["details"];
    let variance = content["variance_explained"].as_f64().unwrap();
    let components = content["components"].as_u64().unwrap();
    assert!(variance >= 0.95 || components == 32, "{content}");
    assert_eq!(content["tag_features"], 512);
    assert!(
        content["tagged_movies"].as_u64().unwrap() > 1000,
        "{content}"
    );
    for model in ["content", "svd", "als", "hybrid"] {
        let recall = |index: &str| {
            manifest["models"][model]["indexes"][index]["recall_at_10"]
                .as_f64()
                .unwrap()
        };
        assert!(
            recall("annoy") >= 0.9,
            "{model}: annoy recall@10 {}",
            recall("annoy")
        );
        assert!(
            recall("hnsw") >= 0.95,
            "{model}: hnsw recall@10 {}",
            recall("hnsw")
        );
    }
}

#[test]
fn evaluate_reports_every_model_against_popularity_with_parameters_tuned_on_validation() {
    let output = movierec(&[
        "evaluate",
        "--data",
        bundled_data().to_str().unwrap(),
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["users"], 599);
    assert_eq!(report["pairs"], 2995);
    let models = report["models"].as_array().unwrap();
    let hr = |name: &str| {
        models
            .iter()
            .find(|m| m["model"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {report}"))["hr_at_10"]
            .as_f64()
            .unwrap()
    };
    // Regression guards, a little under the figures in docs/EVALUATION.md.
    assert!(hr("popularity") > 0.03);
    assert!(hr("svd") >= 0.075, "svd HR@10 {}", hr("svd"));
    assert!(hr("als") >= 0.07, "als HR@10 {}", hr("als"));
    assert!(hr("ease") >= 0.085, "ease HR@10 {}", hr("ease"));
    assert!(hr("item_knn") >= 0.095, "item_knn HR@10 {}", hr("item_knn"));
    assert!(hr("item_knn") > hr("popularity") && hr("svd") > hr("content"));
    // 72 item-kNN settings, 5 EASE regularisations, 6 ALS settings, 4 content tag weights.
    assert_eq!(report["validation"].as_array().unwrap().len(), 87);
    // Per list model: 8 pivot and half-life settings, then 6 balance settings.
    assert_eq!(report["validation_personal"].as_array().unwrap().len(), 28);
    let user_recall = |name: &str| {
        models.iter().find(|m| m["model"] == name).unwrap()["user_recall_at_10"]
            .as_f64()
            .unwrap()
    };
    assert!(
        user_recall("item_knn") >= 0.095,
        "item_knn user Recall@10 {}",
        user_recall("item_knn")
    );
    assert!(user_recall("item_knn") > user_recall("popularity"));

    // 95% paired-bootstrap intervals, differences from "fans also liked" and "more like this".
    assert_eq!(report["bootstrap"]["reference"], "item_knn");
    assert_eq!(report["bootstrap"]["similarity_reference"], "similar");
    assert_eq!(report["bootstrap"]["user_units"], 599);
    assert_eq!(report["bootstrap"]["draws"], 1000);
    assert_intervals(&report, "item_knn", "similar");
    // Popularity is far below item-kNN: the paired interval of the difference says so.
    let popularity = models.iter().find(|m| m["model"] == "popularity").unwrap();
    let gap = &popularity["vs_default"]["hr_at_10"];
    assert!(gap["ci"][1].as_f64().unwrap() < 0.0, "{gap}");
    let width = |m: &Value, metric: &str| {
        m["intervals"][metric][1].as_f64().unwrap() - m["intervals"][metric][0].as_f64().unwrap()
    };
    let knn = models.iter().find(|m| m["model"] == "item_knn").unwrap();
    // About ±2 standard errors of an HR near 0.1 over 2,995 pairs (0.0055 each).
    assert!(
        (0.012..0.04).contains(&width(knn, "hr_at_10")),
        "{}",
        knn["intervals"]
    );

    // `train` tunes as `evaluate` does: trained on evaluate's training part (the ratings before
    // the test cut), it carves the same validation split from it and must choose the same
    // settings, and train its models with them.
    let dataset = movierec::data::load(&bundled_data()).unwrap();
    let split = movierec::eval::hold_out(&dataset.ratings);
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("training-part");
    std::fs::create_dir(&part).unwrap();
    for file in ["movies.csv", "links.csv", "tags.csv"] {
        std::fs::copy(bundled_data().join(file), part.join(file)).unwrap();
    }
    let mut ratings = String::from("userId,movieId,rating,timestamp\n");
    for r in &split.train {
        ratings += &format!(
            "{},{},{},{}\n",
            r.user_id, r.movie_id, r.rating, r.timestamp
        );
    }
    std::fs::write(part.join("ratings.csv"), ratings).unwrap();
    let out = dir.path().join("model");
    let output = movierec(&[
        "train",
        "--data",
        part.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--tune-budget",
        "86400",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("settings tuned on a validation split"));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let tuning = &manifest["tuning"];
    assert!(
        same_json(&tuning["settings"], &report["settings"]),
        "{tuning}\n{report}"
    );
    let stages = tuning["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 7);
    assert!(stages.iter().all(|s| s["tuned"] == true), "{tuning}");
    assert_eq!(report["tuning"].as_array().unwrap().len(), 7);
    // The trained models are the chosen ones.
    let settings = &report["settings"];
    let lists = &manifest["neighbour_lists"];
    let mut knn = settings["item_knn"].clone();
    knn["neighbours"] = json!(100);
    assert!(same_json(&lists["item_knn"]["details"]["params"], &knn));
    assert!(same_json(
        &lists["similar"]["details"]["params"],
        &settings["similar"]
    ));
    assert!(same_json(
        &lists["ease"]["details"]["params"]["lambda"],
        &settings["ease"]["lambda"]
    ));
    assert_eq!(manifest["personal"]["model"], settings["personal_model"]);
    assert!(same_json(
        &manifest["personal"]["scoring"],
        &settings["personal"]
    ));
    assert_eq!(
        manifest["models"]["als"]["dim"], settings["als"]["factors"],
        "ALS trained with the chosen factors"
    );
}

/// Every model of `report` has a 95% interval around each metric, and a difference from the
/// reference model of its section inside its own interval; the reference's from itself is 0.
fn assert_intervals(report: &Value, reference: &str, similarity_reference: &str) {
    let sections = [
        (
            "models",
            reference,
            &[
                "hr_at_10",
                "ndcg_at_10",
                "user_recall_at_10",
                "user_ndcg_at_10",
                "mean_popularity",
            ][..],
        ),
        (
            "similarity",
            similarity_reference,
            &["franchise_recall_at_10", "judged_auc", "judged_auc_matched"][..],
        ),
    ];
    for (section, reference, metrics) in sections {
        for row in report[section].as_array().unwrap() {
            let model = &row["model"];
            for &metric in metrics {
                let point = row[metric].as_f64().unwrap();
                let ci = &row["intervals"][metric];
                let (low, high) = (ci[0].as_f64().unwrap(), ci[1].as_f64().unwrap());
                assert!(
                    low <= point + 1e-9 && point <= high + 1e-9,
                    "{model} {metric}: {point} outside {ci}"
                );
                let d = &row["vs_default"][metric];
                let diff = d["diff"].as_f64().unwrap();
                let (low, high) = (d["ci"][0].as_f64().unwrap(), d["ci"][1].as_f64().unwrap());
                assert!(
                    low <= diff + 1e-9 && diff <= high + 1e-9,
                    "{model} {metric}: {d}"
                );
                if row["model"] == reference {
                    assert_eq!((diff, low, high), (0.0, 0.0, 0.0), "{model} {metric}");
                }
            }
            assert!(row["intervals"].get("coverage").is_none());
        }
    }
}

#[test]
fn recommendations_for_a_user_exclude_what_they_rated() {
    let model = trained_model().to_str().unwrap();
    let output = movierec(&[
        "recommend",
        "--user",
        "1",
        "-k",
        "15",
        "--json",
        "--model-dir",
        model,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let answer: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(answer["user"], 1);
    assert_eq!(answer["model"], "item_knn");
    assert_eq!(
        answer["rated"], 232,
        "user 1 rated 232 movies in ml-latest-small"
    );
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 15);
    // User 1's ratings, straight from the bundled ratings.csv.
    let ratings = std::fs::read_to_string(bundled_data().join("ratings.csv")).unwrap();
    let rated: Vec<u64> = ratings
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("1,"))
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(rated.len(), 232);
    for r in results {
        assert!(
            !rated.contains(&r["movieId"].as_u64().unwrap()),
            "{r} was rated by user 1"
        );
    }
    let output = movierec(&["recommend", "--user", "999999", "--model-dir", model]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("no user 999999 in the training data"));
}

#[test]
fn recommendations_for_liked_movies_exclude_them_and_follow_the_likes() {
    let model = trained_model().to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["recommend", "--json", "-k", "10", "--model-dir", model];
        all.extend_from_slice(args);
        let output = movierec(&all);
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_str::<Value>(&stdout(&output)).unwrap()
    };
    let answer = run(&["--likes", "toy story", "--likes", "toy story 2"]);
    let liked: Vec<&str> = answer["liked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["title"].as_str().unwrap())
        .collect();
    assert_eq!(liked, vec!["Toy Story", "Toy Story 2"]);
    let shown = titles(&answer);
    assert_eq!(shown.len(), 10);
    assert!(!shown.iter().any(|t| t == "Toy Story" || t == "Toy Story 2"));
    // Two animated children's films liked: many of what follows them are too (they are 6% of
    // the catalog).
    let family = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            let genres = r["genres"].as_array().unwrap();
            genres.contains(&json!("Animation")) || genres.contains(&json!("Children"))
        })
        .count();
    assert!(family >= 3, "{shown:?}");
    // A dislike pushes its neighbours down.
    let with_dislike = run(&["--likes", "toy story", "--dislikes", "toy story 2"]);
    let plain = run(&["--likes", "toy story"]);
    assert_ne!(with_dislike["results"], plain["results"]);
    assert!(!titles(&with_dislike).contains(&"Toy Story 2".to_string()));
}

#[test]
fn exactly_one_way_of_asking_is_accepted() {
    let model = trained_model().to_str().unwrap();
    for args in [
        vec!["recommend", "--model-dir", model],
        vec!["recommend", "heat", "--user", "1", "--model-dir", model],
        vec!["recommend", "--dislikes", "heat", "--model-dir", model],
    ] {
        let output = movierec(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn batch_scoring_prints_every_querys_neighbours_as_csv_and_names_bad_lines() {
    let model = trained_model().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ids.txt");
    std::fs::write(&file, "# queries\n1\n\n2571\n").unwrap();
    let output = movierec(&[
        "recommend",
        "--batch",
        file.to_str().unwrap(),
        "-k",
        "5",
        "--model",
        "svd",
        "--index",
        "annoy",
        "--model-dir",
        model,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "queryMovieId,rank,movieId,score");
    assert_eq!(lines.len(), 1 + 2 * 5, "{text}");
    // The same neighbours, in the same order, as one recommendation by id.
    let single = recommend_json(&["toy story", "-k", "5", "--model", "svd", "--index", "annoy"]);
    for (row, expected) in lines[1..6]
        .iter()
        .zip(single["results"].as_array().unwrap())
    {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(fields[0], "1");
        assert_eq!(fields[2], expected["movieId"].to_string());
    }
    assert!(lines[6].starts_with("2571,1,"), "{}", lines[6]);

    // The exact index answers a batch with matrix products: the same neighbours as one by one.
    let output = movierec(&[
        "recommend",
        "--batch",
        file.to_str().unwrap(),
        "-k",
        "5",
        "--model",
        "svd",
        "--model-dir",
        model,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let single = recommend_json(&["toy story", "-k", "5", "--model", "svd"]);
    let batch_ids: Vec<&str> = text
        .lines()
        .skip(1)
        .take(5)
        .map(|row| row.split(',').nth(2).unwrap())
        .collect();
    let single_ids: Vec<String> = single["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["movieId"].to_string())
        .collect();
    assert_eq!(batch_ids, single_ids, "{text}");

    std::fs::write(&file, "1\nforty-two\n").unwrap();
    let output = movierec(&[
        "recommend",
        "--batch",
        file.to_str().unwrap(),
        "--model-dir",
        model,
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("ids.txt:2: \"forty-two\" is not a movieId"),
        "{}",
        stderr(&output)
    );
    std::fs::write(&file, "1\n99999999\n").unwrap();
    let output = movierec(&[
        "recommend",
        "--batch",
        file.to_str().unwrap(),
        "--model-dir",
        model,
    ]);
    assert!(
        stderr(&output).contains("ids.txt:2: no movie has movieId 99999999"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn every_train_and_evaluate_run_is_recorded_and_listed_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let runs_arg = runs.to_str().unwrap();
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
    let out = dir.path().join("model");
    let trained = movierec(&[
        "train",
        "--data",
        tiny.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--runs-dir",
        runs_arg,
    ]);
    assert!(trained.status.success(), "{}", stderr(&trained));
    assert!(
        stderr(&trained).contains("movierec: run "),
        "{}",
        stderr(&trained)
    );
    let failed = movierec(&["evaluate", "--data", "/no/such/dir", "--runs-dir", runs_arg]);
    assert!(!failed.status.success());

    let listed = movierec(&["runs", "--json", "--runs-dir", runs_arg]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let listed: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    // Newest first: the failed evaluation, then the training.
    assert_eq!(listed[0]["kind"], "evaluate");
    assert_eq!(listed[0]["status"], "failed");
    assert!(listed[0]["tags"]["error"]
        .as_str()
        .unwrap()
        .contains("/no/such/dir"));
    let train = &listed[1];
    assert_eq!(train["kind"], "train");
    assert_eq!(train["status"], "finished");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        train["dataset"]["fingerprint"],
        manifest["dataset"]["fingerprint"]
    );
    assert_eq!(train["metrics"]["movies"], 4.0);
    assert_eq!(train["params"]["default_collaborative"], "item_knn");
    assert!(train["metrics"]["training_seconds"].as_f64().unwrap() > 0.0);
    // Each stage's time and the peak memory, in the manifest and the run record alike.
    for stage in ["load", "embeddings", "lists", "explanations"] {
        let seconds = train["metrics"][format!("stage.{stage}.seconds")].as_f64();
        assert!(seconds.is_some_and(|s| s >= 0.0), "{stage}: {seconds:?}");
        assert_eq!(manifest["stages"][stage].as_f64(), seconds, "{stage}");
    }
    let peak = train["metrics"]["peak_memory_mb"].as_f64().unwrap();
    assert!(peak > 1.0, "peak memory {peak} MB");
    assert_eq!(
        manifest["peak_memory_bytes"]
            .as_u64()
            .map(|b| b as f64 / (1024.0 * 1024.0)),
        Some(peak)
    );
    assert!(train["code_version"]
        .as_str()
        .unwrap()
        .starts_with(env!("CARGO_PKG_VERSION")));

    let only_train = movierec(&["runs", "--kind", "train", "--runs-dir", runs_arg]);
    let text = stdout(&only_train);
    assert!(
        text.contains("finished") && !text.contains("evaluate"),
        "{text}"
    );
    let bad = movierec(&["runs", "--kind", "serve", "--runs-dir", runs_arg]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("--kind"), "{}", stderr(&bad));
}

#[test]
fn an_unreachable_mlflow_server_is_a_warning_and_the_run_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
    // Nothing listens on a port just bound and released.
    let port = common::mlflow::free_port();
    let uri = format!("http://127.0.0.1:{port}");
    let output = movierec(&[
        "train",
        "--data",
        tiny.to_str().unwrap(),
        "--out",
        dir.path().join("model").to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
        "--mlflow",
        &uri,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("was not logged to MLflow at {uri}")),
        "{}",
        stderr(&output)
    );
    let listed = movierec(&["runs", "--json", "--runs-dir", runs.to_str().unwrap()]);
    let listed: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0]["mlflow"].is_null());
}

#[test]
fn evaluate_models_restricts_what_is_trained_tuned_and_reported() {
    let output = movierec(&[
        "evaluate",
        "--data",
        bundled_data().to_str().unwrap(),
        "--models",
        "ease,content",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let names: Vec<&str> = report["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["popularity", "content", "ease"]);
    let validation = report["validation"].as_array().unwrap();
    let tuned = |name: &str| validation.iter().filter(|v| v["model"] == name).count();
    assert_eq!(
        (tuned("ease"), tuned("content"), validation.len()),
        (5, 4, 9),
        "only EASE's λ grid and the content tag weights"
    );
    assert_eq!(report["personal_model"], "ease");
    // Neither default was evaluated: the differences are from popularity.
    assert_eq!(report["bootstrap"]["reference"], "popularity");
    assert_eq!(report["bootstrap"]["similarity_reference"], "popularity");
    assert_intervals(&report, "popularity", "popularity");

    let bad = movierec(&["evaluate", "--models", "ease,faiss"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("--models: unknown model \"faiss\""),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn a_release_with_a_tag_genome_trains_a_content_model_that_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/genome");
    let out = dir.path().join("model");
    let output = movierec(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let content = &manifest["models"]["content"]["details"];
    assert_eq!(content["genome_tags"], 3, "{content}");
    assert_eq!(content["genome_movies"], 3, "{content}");
}

#[test]
fn bench_index_prints_a_json_line_per_backend_setting_and_names_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, rows: usize| {
        let path = dir.path().join(name);
        let bytes: Vec<u8> = (0..rows * 8)
            .flat_map(|i| (((i * 7919) % 101) as f32 / 101.0 - 0.5).to_le_bytes())
            .collect();
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let (base, queries) = (write("base.f32", 3_000), write("queries.f32", 20));
    let output = movierec(&[
        "bench-index",
        "--base",
        base.to_str().unwrap(),
        "--queries",
        queries.to_str().unwrap(),
        "--dim",
        "8",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 13);
    for row in &rows {
        for field in [
            "backend",
            "params",
            "build_s",
            "qps",
            "recall_at_10",
            "memory_bytes",
        ] {
            assert!(row.get(field).is_some(), "{row} lacks {field}");
        }
    }
    assert_eq!(rows[0]["backend"], "exact");
    assert_eq!(rows[0]["recall_at_10"], 1.0);
    let bad = movierec(&[
        "bench-index",
        "--base",
        base.to_str().unwrap(),
        "--queries",
        queries.to_str().unwrap(),
        "--dim",
        "7",
    ]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("not a whole number of rows of 7 little-endian f32"),
        "{}",
        stderr(&bad)
    );
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn train_works_on_every_layout_and_prints_the_loading_summary_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    // The ml-1m fixture as GroupLens ships it: a zip holding ml-1m/.
    let zip_path = dir.path().join("ml-1m.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    for name in ["movies.dat", "ratings.dat", "users.dat"] {
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file(format!("ml-1m/{name}"), options).unwrap();
        std::io::Write::write_all(
            &mut zip,
            &std::fs::read(fixture("ml-1m").join(name)).unwrap(),
        )
        .unwrap();
    }
    zip.finish().unwrap();
    for (data, layout, ratings_line, movies) in [
        (fixture("ml-1m"), "ml-1m", "ratings.dat 15 rows", 6),
        (zip_path, "ml-1m", "ratings.dat 15 rows", 6),
        (fixture("ml-10m"), "ml-10m", "ratings.dat 12 rows", 5),
        (fixture("ml-100k"), "ml-100k", "u.data 13 rows", 6),
        (
            fixture("messy-csv"),
            "CSV",
            "ratings.csv 15 rows, 6 skipped",
            5,
        ),
    ] {
        let out = dir.path().join(format!("model-{layout}"));
        let output = movierec(&[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = stderr(&output);
        assert!(output.status.success(), "{}: {err}", data.display());
        assert!(
            err.contains(&format!("loaded {} ({layout} layout", data.display())),
            "{err}"
        );
        // The summary's line of the ratings file, spaces aside.
        assert!(
            err.lines().any(|l| l
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .starts_with(&format!("{ratings_line} in "))),
            "{err}"
        );
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["dataset"]["movies"], movies, "{}", data.display());
    }
    let output = movierec(&[
        "train",
        "--data",
        fixture("messy-csv").to_str().unwrap(),
        "--out",
        dir.path().join("messy").to_str().unwrap(),
    ]);
    let err = stderr(&output);
    assert!(
        err.contains("ratings.csv: 1 × rating outside the scale")
            && err.contains("messy-csv/ratings.csv:13: rating 7.5 is outside 0.5–5"),
        "{err}"
    );
}

#[test]
fn strict_fails_on_the_first_bad_row_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let messy = fixture("messy-csv");
    let out = dir.path().join("model");
    for args in [
        vec!["train", "--out", out.to_str().unwrap()],
        vec!["evaluate"],
        vec!["load"],
    ] {
        let mut all = args.clone();
        all.extend(["--data", messy.to_str().unwrap(), "--strict"]);
        let output = movierec(&all);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr(&output)
                .contains("messy-csv/movies.csv:5: \"Am\\xe9lie (2001)\" is not valid UTF-8"),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert!(!out.exists(), "no model is written from rejected data");
    let output = movierec(&[
        "load",
        "--data",
        fixture("ml-1m").to_str().unwrap(),
        "--strict",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn load_prints_the_report_as_text_or_json() {
    let output = movierec(&["load", "--data", fixture("ml-10m").to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.lines().any(|l| l
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .starts_with("tags.dat 4 rows, 1 skipped in ")),
        "{text}"
    );
    assert!(
        text.contains("tags.dat: 1 × movie not in the movies file"),
        "{text}"
    );
    let output = movierec(&[
        "load",
        "--data",
        fixture("ml-100k").to_str().unwrap(),
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["layout"], "ml-100k");
    let files: Vec<(&str, u64)> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["file"].as_str().unwrap(), f["kept"].as_u64().unwrap()))
        .collect();
    assert_eq!(files, vec![("u.genre", 19), ("u.item", 6), ("u.data", 13)]);
    assert_eq!(report["issues"], json!([]));
    let missing = movierec(&["load", "--data", "/no/such/release.zip"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("/no/such/release.zip: is not a directory or a .zip file"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn more_like_this_is_the_default_answer_and_puts_the_franchise_first() {
    for (query, title, expected) in [
        (
            "toy story",
            "Toy Story",
            &["Toy Story 2", "Toy Story 3"][..],
        ),
        ("rocky", "Rocky", &["Rocky II", "Rocky III", "Rocky IV"]),
        ("alien", "Alien", &["Aliens"]),
    ] {
        let answer = recommend_json(&[query, "-k", "10"]);
        assert_eq!(answer["model"], "similar");
        assert_eq!(answer["index"], "lists");
        assert_eq!(answer["query"]["title"], title);
        let found = titles(&answer);
        for want in expected {
            let rank = found.iter().position(|t| t == want);
            assert!(rank.is_some_and(|r| r < 5), "{want} in {found:?}");
        }
    }
    // "Fans also liked" keeps its name.
    let answer = recommend_json(&["toy story", "--model", "collaborative"]);
    assert_eq!(answer["model"], "item_knn");
}

#[test]
fn well_known_movies_get_no_obscure_results_unless_asked_for() {
    let count = |r: &Value| r["ratingCount"].as_u64().unwrap();
    for model in [
        "similar",
        "collaborative",
        "ease",
        "content",
        "svd",
        "als",
        "hybrid",
    ] {
        for query in ["rocky", "heat", "toy story", "amelie", "jaws", "the matrix"] {
            let answer = recommend_json(&[query, "--model", model, "-k", "20"]);
            assert!(count(&answer["query"]) >= 20, "{query}");
            let results = answer["results"].as_array().unwrap();
            assert_eq!(results.len(), 20, "{model}/{query}");
            assert!(
                results.iter().all(|r| count(r) >= 5),
                "{model}/{query}: {answer}"
            );
        }
    }
    // Hidden gems on request: the content model's closest films to Rocky include rarely rated
    // ones, and equal scores come most-rated first.
    let answer = recommend_json(&[
        "rocky",
        "--model",
        "content",
        "--min-ratings",
        "0",
        "-k",
        "30",
    ]);
    let results = answer["results"].as_array().unwrap();
    assert!(results.iter().any(|r| count(r) < 5), "{answer}");
    for pair in results.windows(2) {
        if pair[0]["score"] == pair[1]["score"] {
            assert!(count(&pair[0]) >= count(&pair[1]), "{pair:?}");
        }
    }
}

#[test]
fn a_film_listed_under_two_ids_is_one_movie_that_either_id_asks_for_and_never_its_own_neighbour() {
    let model = trained_model();
    let catalog: Value =
        serde_json::from_slice(&std::fs::read(model.join("catalog.json")).unwrap()).unwrap();
    let movies = catalog.as_array().unwrap();
    assert_eq!(movies.len(), 9_739);
    let merged: Vec<(u64, Vec<u64>)> = movies
        .iter()
        .filter_map(|m| {
            let ids = m.get("mergedIds")?.as_array()?;
            let ids = ids.iter().map(|id| id.as_u64().unwrap()).collect();
            Some((m["movieId"].as_u64().unwrap(), ids))
        })
        .collect();
    assert_eq!(
        merged,
        [
            (2851, vec![168358]),
            (6003, vec![144606]),
            (32600, vec![147002])
        ]
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ids.txt");
    let queries = ["2851", "168358", "6003", "144606", "32600", "147002"];
    std::fs::write(&file, queries.join("\n")).unwrap();
    let output = movierec(&[
        "recommend",
        "--batch",
        file.to_str().unwrap(),
        "-k",
        "20",
        "--model-dir",
        model.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let mut answers: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    for row in text.lines().skip(1) {
        let fields: Vec<&str> = row.split(',').collect();
        answers.entry(fields[0]).or_default().push(fields[2]);
    }
    for pair in queries.chunks(2) {
        let (kept, merged) = (pair[0], pair[1]);
        assert_eq!(answers[kept].len(), 20, "{text}");
        // The merged id asks for the same film, and neither id is among its neighbours.
        assert_eq!(answers[kept], answers[merged], "{kept} and {merged}");
        for id in pair {
            assert!(
                !answers[kept].contains(id),
                "{kept}'s answer holds {id}: {text}"
            );
        }
    }

    // By title too: Saturn 3's answer has no Saturn 3.
    let answer = recommend_json(&["Saturn 3 (1980)", "-k", "20"]);
    assert_eq!(answer["query"]["movieId"], 2851, "{answer}");
    assert!(!titles(&answer).iter().any(|t| t == "Saturn 3"), "{answer}");
}

#[test]
fn serve_trains_again_a_model_of_an_older_format_from_the_same_data_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("model");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(trained_model()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let manifest_path = copy.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let older = movierec::artifact::FORMAT_VERSION - 1;
    manifest["format_version"] = json!(older);
    let write = |manifest: &Value| {
        std::fs::write(&manifest_path, serde_json::to_vec(manifest).unwrap()).unwrap()
    };
    // Trained by an older movierec from other data: refused, naming the version.
    manifest["dataset"]["path"] = json!("/some/other/release");
    write(&manifest);
    let refused = movierec(&[
        "serve",
        "--port",
        "0",
        "--model-dir",
        copy.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains(&format!("format version {older} is not supported")),
        "{}",
        stderr(&refused)
    );
    // From the data `serve` would train on: trained again, then served.
    manifest["dataset"]["path"] = json!(bundled_data().to_str().unwrap());
    write(&manifest);
    // Training first takes a few seconds: wait for the address line longer than the shared
    // server helper does.
    let mut child = Command::new(env!("CARGO_BIN_EXE_movierec"))
        .args(["serve", "--port", "0", "--model-dir"])
        .arg(&copy)
        .env("MOVIEREC_RUNS_DIR", common::runs_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut log = String::new();
        for line in std::io::BufReader::new(stderr_pipe)
            .lines()
            .map_while(Result::ok)
        {
            log.push_str(&line);
            log.push('\n');
            if line.contains("serving on") {
                tx.send(log.clone()).ok();
            }
        }
        tx.send(log).ok();
    });
    let log = rx.recv_timeout(std::time::Duration::from_secs(180));
    child.kill().ok();
    child.wait().ok();
    let log = log.expect("movierec serve reported nothing");
    assert!(
        log.contains("a model of an older format at") && log.contains("serving on"),
        "{log}"
    );
    let retrained: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    assert_eq!(
        retrained["format_version"],
        json!(movierec::artifact::FORMAT_VERSION)
    );
}

#[test]
fn train_tunes_only_what_its_data_and_budget_allow_and_no_tune_keeps_the_defaults() {
    let small = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/browser");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            small.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let output = movierec(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        (stderr(&output), manifest)
    };
    // Too few validation pairs to choose on: every stage keeps its default, and says why.
    let (text, manifest) = train(&[]);
    let stages = manifest["tuning"]["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 7);
    for stage in stages {
        assert_eq!(stage["tuned"], false, "{stage}");
        assert!(stage["skipped"]
            .as_str()
            .unwrap()
            .contains("fewer than 200"));
    }
    assert!(text.contains("default kept"), "{text}");
    // --no-tune: no tuning at all, the stored defaults.
    let (text, manifest) = train(&["--no-tune"]);
    assert!(manifest.get("tuning").is_none(), "{manifest}");
    assert!(text.contains("--no-tune"), "{text}");
    assert_eq!(
        manifest["neighbour_lists"]["similar"]["details"]["params"]["confidence"],
        150.0
    );
    // A budget outside its range is refused with the range named.
    for bad in ["-1", "abc", "100000"] {
        let output = movierec(&["train", "--tune-budget", bad, "--out", "/nonexistent/x"]);
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains("--tune-budget"),
            "{}",
            stderr(&output)
        );
    }
    let both = movierec(&["train", "--tune-budget", "2", "--no-tune"]);
    assert!(!both.status.success());
    // A budget shorter than 8 times what building the rating matrix took (0 s): no validation
    // split is prepared, every stage keeps its default and says why.
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/ml-latest-small");
    let output = movierec(&[
        "train",
        "--data",
        bundled.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--tune-budget",
        "0",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let tuning = &manifest["tuning"];
    assert_eq!(tuning["stages"].as_array().unwrap().len(), 7, "{tuning}");
    for stage in tuning["stages"].as_array().unwrap() {
        assert_eq!(stage["tuned"], false, "{stage}");
        assert!(
            stage["skipped"]
                .as_str()
                .unwrap()
                .contains("is shorter than 8 times the time building the rating matrix took"),
            "{stage}"
        );
    }
    assert_eq!(tuning["validation_pairs"], 0, "{tuning}");
}

#[test]
fn a_closed_pipe_ends_quietly_and_a_full_disk_is_a_one_line_error() {
    let model = trained_model().to_str().unwrap();
    for args in [
        vec!["recommend", "heat", "--model-dir", model, "--json"],
        vec!["recommend", "toy story", "--model-dir", model],
        vec!["runs", "--json"],
    ] {
        // The reader goes away before anything is written (`| head -0`).
        let mut child = Command::new(env!("CARGO_BIN_EXE_movierec"))
            .args(&args)
            .env("MOVIEREC_RUNS_DIR", common::runs_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let text = stderr(&output);
        assert!(!text.contains("panicked"), "{args:?}: {text}");
        assert_eq!(output.status.code(), Some(0), "{args:?}: {text}");

        #[cfg(target_os = "linux")]
        {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            let output = Command::new(env!("CARGO_BIN_EXE_movierec"))
                .args(&args)
                .env("MOVIEREC_RUNS_DIR", common::runs_dir())
                .stdout(full)
                .output()
                .unwrap();
            let text = stderr(&output);
            assert!(!text.contains("panicked"), "{args:?}: {text}");
            assert!(!output.status.success(), "{args:?}");
            assert!(
                text.contains("error: writing to standard output"),
                "{args:?}: {text}"
            );
        }
    }
}

#[test]
fn serve_says_what_to_do_about_a_taken_port_and_missing_data() {
    // A taken port: named once, with the way out.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let model = trained_model().to_str().unwrap();
    let output = movierec(&["serve", "--model-dir", model, "--port", &port]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("the port is taken") && text.contains("--port"),
        "{text}"
    );
    assert!(text.matches("os error").count() <= 1, "{text}");
    // No model and no data: what to give or fetch.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none");
    let output = movierec(&[
        "serve",
        "--model-dir",
        missing.to_str().unwrap(),
        "--data",
        missing.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("movierec download ml-latest-small") && text.contains("--data"),
        "{text}"
    );
    // An OS error is said once.
    let output = movierec(&[
        "recommend",
        "heat",
        "--model-dir",
        missing.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).matches("os error").count() <= 1,
        "{}",
        stderr(&output)
    );
    // The index options' defaults are in the help.
    let help = stdout(&movierec(&["train", "--help"]));
    for default in [
        "[default: 20]",
        "[default: 2000",
        "[default: 16]",
        "[default: 100]",
        "[default: 64",
    ] {
        assert!(help.contains(default), "{default} missing from {help}");
    }
    assert!(!stdout(&movierec(&["bench-index", "--help"])).contains("issue 5"));
}

#[test]
fn a_training_killed_between_its_renames_or_failing_to_write_leaves_a_usable_model_and_no_litter() {
    // Killed between the renames: the previous model sits aside under a dead process's id; the
    // next open puts it back.
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    copy_dir(trained_model(), &model);
    let aside = dir.path().join(".model.old-4194303");
    std::fs::rename(&model, &aside).unwrap();
    let output = movierec(&["recommend", "heat", "--model-dir", model.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(model.join("manifest.json").is_file() && !aside.exists());

    // A write that fails half-way: an error, the previous model untouched, no temporary left.
    let saved = movierec::artifact::load(&model).unwrap();
    let files = vec![
        ("catalog.json".to_string(), b"[]".to_vec()),
        ("missing/dir/file".to_string(), vec![0u8; 16]),
    ];
    let failed = movierec::artifact::save(&model, saved.manifest.clone(), files);
    assert!(failed.is_err());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["model".to_string()], "left behind: {names:?}");
    let output = movierec(&["recommend", "heat", "--model-dir", model.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_failed_run_that_cannot_be_recorded_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("runs");
    std::fs::write(&not_a_dir, "a file where the run store should be").unwrap();
    let output = movierec(&[
        "train",
        "--data",
        "/no/such/release",
        "--out",
        dir.path().join("model").to_str().unwrap(),
        "--runs-dir",
        not_a_dir.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("/no/such/release"), "{text}");
    assert!(
        text.contains("the failed run could not be recorded either"),
        "{text}"
    );
    assert!(!dir.path().join("model").exists());
}

#[test]
fn a_file_given_as_the_model_directory_is_named_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model");
    std::fs::write(&file, "not a directory").unwrap();
    let output = movierec(&["recommend", "heat", "--model-dir", file.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("is a file, not a model directory"),
        "{}",
        stderr(&output)
    );
}

/// A copy of the bundled release whose ratings.csv keeps the rows `keep` accepts (by their
/// timestamp rank: 0 the oldest) and whose movies.csv has `extra_movies` appended.
fn bundled_copy(dir: &Path, keep_share: f64, extra_movies: &str) -> (PathBuf, usize) {
    std::fs::create_dir_all(dir).unwrap();
    for file in ["movies.csv", "links.csv", "tags.csv", "README.txt"] {
        std::fs::copy(bundled_data().join(file), dir.join(file)).unwrap();
    }
    let text = std::fs::read_to_string(bundled_data().join("ratings.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let mut times: Vec<u64> = rows
        .iter()
        .map(|r| r.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    times.sort_unstable();
    let cut = times[((rows.len() as f64 * keep_share) as usize).min(rows.len() - 1)];
    let kept: Vec<&str> = rows
        .iter()
        .copied()
        .filter(|r| {
            keep_share >= 1.0 || r.rsplit(',').next().unwrap().parse::<u64>().unwrap() < cut
        })
        .collect();
    let dropped = rows.len() - kept.len();
    std::fs::write(
        dir.join("ratings.csv"),
        format!("{header}\n{}\n", kept.join("\n")),
    )
    .unwrap();
    if !extra_movies.is_empty() {
        let mut movies = std::fs::read_to_string(dir.join("movies.csv")).unwrap();
        movies.push_str(extra_movies);
        std::fs::write(dir.join("movies.csv"), movies).unwrap();
    }
    (dir.to_path_buf(), dropped)
}

fn manifest_of(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn train_incremental_starts_from_a_model_of_fewer_ratings_and_trains_in_full_when_it_cannot() {
    let root = tempfile::tempdir().unwrap();
    let path = |name: &str| root.path().join(name);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let train = |data: &Path, out: &Path, from: Option<&Path>| {
        let mut args = vec![
            "train".to_string(),
            "--data".into(),
            s(data),
            "--out".into(),
        ];
        args.push(s(out));
        args.push("--no-tune".into());
        args.extend(["--runs-dir".to_string(), s(&path("runs"))]);
        if let Some(from) = from {
            args.extend(["--incremental".to_string(), s(from)]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = movierec(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        stderr(&output)
    };
    // The bundled release without its latest 3% of ratings, then all of it.
    let (older, dropped) = bundled_copy(&path("older"), 0.97, "");
    assert!(dropped > 2000, "{dropped}");
    let before = movierec(&[
        "train",
        "--data",
        &s(&older),
        "--out",
        &s(&path("before")),
        "--tune-budget",
        "0",
    ]);
    assert!(before.status.success(), "{}", stderr(&before));
    // Its settings, as if the tuning had chosen 16 ALS factors: the incremental training keeps
    // them (and still starts from the rest).
    let mut manifest = manifest_of(&path("before"));
    assert_eq!(manifest["tuning"]["settings"]["als"]["factors"], 32);
    manifest["tuning"]["settings"]["als"]["factors"] = json!(16);
    std::fs::write(
        path("before").join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let summary = train(&bundled_data(), &path("after"), Some(&path("before")));
    assert!(summary.contains("incremental from"), "{summary}");
    // The run record says so too.
    let runs = movierec(&["runs", "--json", "--runs-dir", &s(&path("runs"))]);
    let runs: Value = serde_json::from_str(&stdout(&runs)).unwrap();
    let run = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["params"]["out"] == s(&path("after")))
        .expect("the incremental training's run");
    assert_eq!(run["params"]["incremental"], "true", "{run}");
    assert_eq!(run["metrics"]["incremental.added"], dropped as f64, "{run}");
    let manifest = manifest_of(&path("after"));
    let record = &manifest["incremental"];
    assert_eq!(record["incremental"], true, "{record}");
    assert_eq!(record["chain"], 1);
    assert_eq!(record["delta"]["added"], dropped as u64, "{record}");
    assert_eq!(record["delta"]["removed"], 0);
    assert_eq!(record["content_reused"], true);
    assert_eq!(record["item_knn"], "updated");
    assert_eq!(record["co_likes"], "updated");
    // "More like this": only the movies that moved searched again, the rest updated.
    assert_eq!(record["similar"], "updated", "{record}");
    let moved = record["similar_moved_movies"].as_u64().unwrap();
    assert!(moved > 0 && moved * 2 <= 9739, "{record}");
    assert_eq!(manifest["dataset"]["ratings"], 100835);
    assert_eq!(manifest["models"]["als"]["dim"], 16);
    assert_eq!(manifest["tuning"]["settings"]["als"]["factors"], 16);
    // The content model's files are the previous ones; the lists moved with the new ratings.
    let bytes = |dir: &str, file: &str| std::fs::read(path(dir).join(file)).unwrap();
    for file in ["content.embeddings", "content.hnsw"] {
        assert_eq!(bytes("before", file), bytes("after", file), "{file}");
    }
    assert_ne!(
        bytes("before", "item_knn.neighbours"),
        bytes("after", "item_knn.neighbours")
    );
    // It serves.
    let answer = movierec(&[
        "recommend",
        "--model-dir",
        &s(&path("after")),
        "--json",
        "toy story",
        "--model",
        "collaborative",
    ]);
    assert!(answer.status.success(), "{}", stderr(&answer));
    let answer: Value = serde_json::from_str(&stdout(&answer)).unwrap();
    assert_eq!(answer["results"].as_array().unwrap().len(), 10, "{answer}");
    // Again from it, nothing new, with another forest: the chain grows; the content model is
    // the same but its forest is built again.
    let again = movierec(&[
        "train",
        "--no-tune",
        "--trees",
        "7",
        "--out",
        &s(&path("again")),
        "--incremental",
        &s(&path("after")),
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    let record = &manifest_of(&path("again"))["incremental"];
    assert_eq!(
        (record["chain"].as_u64(), record["delta"]["added"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(record["content_reused"], true);
    assert_eq!(
        bytes("after", "content.embeddings"),
        bytes("again", "content.embeddings")
    );
    assert_ne!(
        bytes("after", "content.annoy"),
        bytes("again", "content.annoy")
    );
    let forest = &manifest_of(&path("again"))["models"]["content"]["indexes"]["annoy"]["params"];
    assert_eq!(forest["forest"]["n_trees"], 7, "{forest}");

    // Another catalog, or too many new ratings: a full training, saying why.
    let (more_movies, _) = bundled_copy(
        &path("more_movies"),
        1.0,
        "999999,A Film Added Today (2026),Drama\n",
    );
    let summary = train(&more_movies, &path("full1"), Some(&path("after")));
    assert!(
        summary.contains("training in full, not incrementally from")
            && summary
                .contains("the catalog changed (9739 movies before, 9740 now: 1 added, 0 removed)"),
        "{summary}"
    );
    let record = &manifest_of(&path("full1"))["incremental"];
    assert_eq!(record["incremental"], false, "{record}");
    let (fewer, _) = bundled_copy(&path("fewer"), 0.9, "");
    train(&fewer, &path("full2"), Some(&path("after")));
    let reason = manifest_of(&path("full2"))["incremental"]["reason"].clone();
    assert!(
        reason
            .as_str()
            .unwrap()
            .contains("more than the 5% an incremental training allows"),
        "{reason}"
    );
    // A directory that holds no model is an error, not a silent full training.
    let missing = movierec(&[
        "train",
        "--no-tune",
        "--out",
        &s(&path("x")),
        "--incremental",
        &s(&path("nothing here")),
    ]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("nothing here"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn evaluate_incremental_scores_each_model_trained_incrementally_beside_its_full_training() {
    let output = movierec(&[
        "evaluate",
        "--models",
        "item_knn,content",
        "--incremental",
        "0.03",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let incremental = &report["incremental"];
    assert_eq!(incremental["share"], 0.03);
    let train_ratings = report["train_ratings"].as_u64().unwrap();
    let added = incremental["delta"]["added"].as_u64().unwrap();
    assert_eq!(
        added,
        (train_ratings as f64 * 0.03).floor() as u64,
        "{incremental}"
    );
    let rows = incremental["models"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|m| m["model"].as_str().unwrap()).collect();
    assert_eq!(names, ["content incremental", "item_knn incremental"]);
    for row in rows {
        // Each against its own full training, with the paired interval of the difference.
        let d = &row["vs_default"]["ndcg_at_10"];
        let (low, high) = (d["ci"][0].as_f64().unwrap(), d["ci"][1].as_f64().unwrap());
        assert!(low <= d["diff"].as_f64().unwrap() && d["diff"].as_f64().unwrap() <= high);
        let full = report["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| {
                Some(m["model"].as_str().unwrap())
                    == row["model"].as_str().unwrap().strip_suffix(" incremental")
            })
            .unwrap();
        let gap = row["ndcg_at_10"].as_f64().unwrap() - full["ndcg_at_10"].as_f64().unwrap();
        assert!((gap - d["diff"].as_f64().unwrap()).abs() < 1e-9, "{row}");
    }
    // The content model is the previous one, which read the same movies and tags.
    assert_eq!(rows[0]["vs_default"]["ndcg_at_10"]["diff"], 0.0);
    let text = movierec(&["evaluate", "--models", "content", "--incremental", "0.2"]);
    assert!(!text.status.success());
    assert!(
        stderr(&text).contains("at most 0.05, got 0.2"),
        "{}",
        stderr(&text)
    );
}
