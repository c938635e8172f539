//! The live recommender through real HTTP: profiles, ratings, their effect on recommendations
//! at once, the admin's bulk writes and movies, rate limits, and acknowledged writes surviving
//! `kill -9` of the server (a real `movierec serve` on a real SQLite file).

use crate::common;

use common::http::{call, send, Answer};
use common::server::Server;
use common::trained_model;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ADMIN: &str = "live-admin-token";

fn code(answer: &Answer) -> &str {
    answer.body["error"]["code"].as_str().unwrap_or("")
}

fn start(args: &[&str]) -> Server {
    Server::start_command(
        trained_model(),
        args,
        &[(movierec::server::reload::ADMIN_TOKEN_ENV, ADMIN)],
        None,
    )
}

fn new_profile(server: &Server) -> (u64, String) {
    let created = send("POST", &format!("{}/api/users", server.url), None, None);
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["userId"].as_u64().unwrap();
    let token = created.body["token"].as_str().unwrap().to_string();
    (id, token)
}

fn rate(server: &Server, user: u64, token: &str, movie: u32, stars: f64) -> Answer {
    send(
        "PUT",
        &format!("{}/api/users/{user}/ratings/{movie}", server.url),
        Some(token),
        Some(json!({ "rating": stars })),
    )
}

fn recommendations(server: &Server, user: u64, token: Option<&str>, k: usize) -> Answer {
    send(
        "GET",
        &format!("{}/api/users/{user}/recommendations?k={k}", server.url),
        token,
        None,
    )
}

fn result_ids(answer: &Answer) -> Vec<u64> {
    answer.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["movieId"].as_u64().unwrap())
        .collect()
}

/// Toy Story, Toy Story 2, Finding Nemo, Monsters Inc., The Incredibles: five animated films.
const ANIMATED: [u32; 5] = [1, 3114, 6377, 4886, 8961];

#[test]
fn a_new_profile_rates_and_its_recommendations_follow_with_its_token_only() {
    let server = start(&[]);
    let (user, token) = new_profile(&server);
    let (_, other_token) = new_profile(&server);
    assert!(
        user > 610,
        "a profile's id is above the release's users: {user}"
    );
    assert_eq!(token.len(), 64);
    for movie in ANIMATED {
        let answer = rate(&server, user, &token, movie, 5.0);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["movieId"], movie);
        assert_eq!(answer.body["rating"], 5.0);
        assert!(answer.body["timestamp"].as_i64().unwrap() > 1_700_000_000);
    }
    // Recommendations reflect the five ratings: they turn towards animation (against a profile
    // that rated five crime films instead), and none of the rated films comes back.
    let answer = recommendations(&server, user, Some(&token), 10);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["rated"], 5);
    let (crime_fan, crime_token) = new_profile(&server);
    for movie in [858, 1213, 296, 6, 16] {
        assert_eq!(
            rate(&server, crime_fan, &crime_token, movie, 5.0).status,
            200
        );
    }
    let crime = recommendations(&server, crime_fan, Some(&crime_token), 10);
    let (animated, animated_for_crime) = (animated_count(&answer), animated_count(&crime));
    assert!(
        animated >= 3 && animated > animated_for_crime + 2,
        "{animated} of 10 animated after rating animated films, {animated_for_crime} after crime films: {}",
        answer.body
    );
    assert!(result_ids(&answer)
        .iter()
        .all(|id| !ANIMATED.contains(&(*id as u32))));
    // The ratings, newest first.
    let listed = send(
        "GET",
        &format!("{}/api/users/{user}/ratings", server.url),
        Some(&token),
        None,
    );
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["total"], 5);
    let order: Vec<u64> = listed.body["ratings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["movieId"].as_u64().unwrap())
        .collect();
    assert_eq!(order, vec![8961, 4886, 6377, 3114, 1]);

    // Who may read and write.
    let base = format!("{}/api/users/{user}", server.url);
    for (method, path) in [
        ("GET", "/recommendations"),
        ("GET", "/ratings"),
        ("DELETE", "/ratings/1"),
    ] {
        let url = format!("{base}{path}");
        let none = send(method, &url, None, None);
        assert_eq!((none.status, code(&none)), (401, "unauthorized"), "{url}");
        let stranger = send(method, &url, Some(&other_token), None);
        assert_eq!(
            (stranger.status, code(&stranger)),
            (403, "forbidden"),
            "{url}"
        );
        let forged = send(method, &url, Some(&"0".repeat(64)), None);
        assert_eq!(
            (forged.status, code(&forged)),
            (401, "unauthorized"),
            "{url}"
        );
    }
    let put_other = rate(&server, user, &other_token, 2, 4.0);
    assert_eq!(put_other.status, 403);
    // The admin token may do anything.
    assert_eq!(recommendations(&server, user, Some(ADMIN), 3).status, 200);
    // The release's users: readable by anyone, changed only by the admin.
    assert_eq!(recommendations(&server, 1, None, 3).status, 200);
    let release = rate(&server, 1, &token, 2, 4.0);
    assert_eq!((release.status, code(&release)), (403, "forbidden"));
    assert_eq!(rate(&server, 1, ADMIN, 2, 4.0).status, 200);
    let missing = recommendations(&server, 9_999_999, None, 3);
    assert_eq!((missing.status, code(&missing)), (404, "user_not_found"));

    // Bad input, the field named.
    for (stars, expected) in [
        (4.25, "half stars"),
        (6.0, "between 0.5 and 5"),
        (0.0, "between"),
    ] {
        let answer = rate(&server, user, &token, 2, stars);
        assert_eq!(answer.status, 400, "{stars}");
        assert_eq!(answer.body["error"]["field"], "rating");
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{}",
            answer.body
        );
    }
    let unknown = rate(&server, user, &token, 999_999_999, 4.0);
    assert_eq!((unknown.status, code(&unknown)), (404, "movie_not_found"));
    assert_eq!(unknown.body["error"]["field"], "movieId");
    let not_a_number = send(
        "PUT",
        &format!("{base}/ratings/abc"),
        Some(&token),
        Some(json!({"rating": 4})),
    );
    assert_eq!(not_a_number.status, 400);
    assert_eq!(not_a_number.body["error"]["field"], "movieId");
    let malformed = call(
        "PUT",
        &format!("{base}/ratings/2"),
        Some(&token),
        Some(("application/json", "{\"rating\": ".into())),
    )
    .unwrap();
    assert_eq!(
        (malformed.status, code(&malformed)),
        (400, "malformed_body")
    );
    let extra = rate_body(&server, user, &token, json!({"rating": 4, "stars": 4}));
    assert_eq!(extra.status, 400);

    // Undo: deleted, gone from the list, back among the candidates.
    let deleted = send(
        "DELETE",
        &format!("{base}/ratings/8961"),
        Some(&token),
        None,
    );
    assert_eq!(deleted.status, 204);
    assert_eq!(
        send(
            "DELETE",
            &format!("{base}/ratings/8961"),
            Some(&token),
            None
        )
        .status,
        204,
        "deleting is idempotent"
    );
    let listed = send("GET", &format!("{base}/ratings"), Some(&token), None);
    assert_eq!(listed.body["total"], 4);
    assert_eq!(
        recommendations(&server, user, Some(&token), 3).body["rated"],
        4
    );
}

/// How many of the results are animated films.
fn animated_count(answer: &Answer) -> usize {
    answer.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["genres"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == "Animation")
        })
        .count()
}

fn rate_body(server: &Server, user: u64, token: &str, body: Value) -> Answer {
    send(
        "PUT",
        &format!("{}/api/users/{user}/ratings/2", server.url),
        Some(token),
        Some(body),
    )
}

#[test]
fn the_next_recommendation_after_an_acknowledged_rating_reflects_it() {
    let server = start(&[]);
    let (user, token) = new_profile(&server);
    rate(&server, user, &token, 1, 5.0);
    let mut stale = Vec::new();
    // Each round rates the current top recommendation, then asks again: it must be gone (rated
    // movies are never recommended) and the count of ratings one higher.
    for round in 0..30 {
        let before = recommendations(&server, user, Some(&token), 10);
        let top = result_ids(&before)[0] as u32;
        let stars = if round % 3 == 0 { 1.0 } else { 4.5 };
        assert_eq!(rate(&server, user, &token, top, stars).status, 200);
        let after = recommendations(&server, user, Some(&token), 10);
        if result_ids(&after).contains(&u64::from(top)) || after.body["rated"] != round + 2 {
            stale.push((round, top));
        }
    }
    assert_eq!(stale, vec![], "stale answers (round, movie)");
}

#[test]
fn the_admin_writes_ratings_in_bulk_and_adds_movies() {
    let server = start(&[]);
    let url = |path: &str| format!("{}{path}", server.url);
    let csv = "userId,movieId,rating,timestamp\n700001,1,4.5,1700000000\n700001,2,3,1700000001\n700002,1,5,\n";
    let no_token = call(
        "POST",
        &url("/api/admin/ratings"),
        None,
        Some(("text/csv", csv.into())),
    )
    .unwrap();
    assert_eq!(no_token.status, 401);
    let written = call(
        "POST",
        &url("/api/admin/ratings"),
        Some(ADMIN),
        Some(("text/csv", csv.into())),
    )
    .unwrap();
    assert_eq!(written.status, 200, "{}", written.body);
    assert_eq!(written.body, json!({"ratings": 3, "usersCreated": 2}));
    // Written users are readable, like the release's, and their ratings count at once.
    let answer = recommendations(&server, 700001, None, 5);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["rated"], 2);
    let jsonl = "{\"userId\": 700001, \"movieId\": 3, \"rating\": 2}\n";
    let written = call(
        "POST",
        &url("/api/admin/ratings"),
        Some(ADMIN),
        Some(("application/x-ndjson", jsonl.into())),
    )
    .unwrap();
    assert_eq!(written.body["ratings"], 1);
    // A bad row is named and nothing of the body is written.
    let bad = "userId,movieId,rating\n700003,1,4\n700003,2,7\n";
    let refused = call(
        "POST",
        &url("/api/admin/ratings"),
        Some(ADMIN),
        Some(("text/csv", bad.into())),
    )
    .unwrap();
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("body:3:"));
    let unknown_movie = "userId,movieId,rating\n700003,1,4\n700003,999999999,4\n";
    let refused = call(
        "POST",
        &url("/api/admin/ratings"),
        Some(ADMIN),
        Some(("text/csv", unknown_movie.into())),
    )
    .unwrap();
    assert_eq!((refused.status, code(&refused)), (404, "movie_not_found"));
    assert_eq!(
        recommendations(&server, 700003, None, 5).status,
        404,
        "all or nothing: user 700003 was not created"
    );
    let wrong_type = call(
        "POST",
        &url("/api/admin/ratings"),
        Some(ADMIN),
        Some(("application/xml", "<x/>".into())),
    )
    .unwrap();
    assert_eq!(wrong_type.status, 415);

    // A movie added, refused twice, corrected, then rated by a profile.
    let movie = json!({"movieId": 1_000_001, "title": "Our Own Film", "year": 2026, "genres": ["Drama"], "imdbId": 1234567});
    let added = send(
        "POST",
        &url("/api/admin/movies"),
        Some(ADMIN),
        Some(movie.clone()),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body["title"], "Our Own Film");
    let again = send("POST", &url("/api/admin/movies"), Some(ADMIN), Some(movie));
    assert_eq!((again.status, code(&again)), (409, "movie_exists"));
    let bad_year = send(
        "POST",
        &url("/api/admin/movies"),
        Some(ADMIN),
        Some(json!({"movieId": 1_000_002, "title": "X", "year": 1200})),
    );
    assert_eq!(bad_year.status, 400);
    assert_eq!(bad_year.body["error"]["field"], "year");
    let patched = send(
        "PATCH",
        &url("/api/admin/movies/1000001"),
        Some(ADMIN),
        Some(json!({"title": "Our Own Film: Director's Cut", "genres": ["Drama", "Comedy"]})),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        patched.body,
        json!({"movieId": 1_000_001, "title": "Our Own Film: Director's Cut", "year": 2026, "genres": ["Drama", "Comedy"], "imdbId": 1234567, "tmdbId": null})
    );
    let missing = send(
        "PATCH",
        &url("/api/admin/movies/999999999"),
        Some(ADMIN),
        Some(json!({"title": "X"})),
    );
    assert_eq!(missing.status, 404);
    let (user, token) = new_profile(&server);
    assert_eq!(rate(&server, user, &token, 1_000_001, 4.0).status, 200);
    // Not in the served model yet: the recommendations still answer (it counts after training).
    let answer = recommendations(&server, user, Some(&token), 5);
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[test]
fn writes_over_the_rate_limit_get_429_with_retry_after() {
    let server = start(&["--write-rate", "1"]);
    let (user, token) = new_profile(&server);
    // A burst of five seconds' worth, then refused.
    let statuses: Vec<(u16, Option<String>)> = (0..8)
        .map(|i| {
            let a = rate(&server, user, &token, 1 + i, 4.0);
            (a.status, a.retry_after)
        })
        .collect();
    assert!(statuses[..5].iter().all(|(s, _)| *s == 200), "{statuses:?}");
    let (status, retry) = &statuses[7];
    assert_eq!(*status, 429, "{statuses:?}");
    assert_eq!(retry.as_deref(), Some("1"));
    // Another profile has its own allowance; reads are not limited.
    let (other, other_token) = new_profile(&server);
    assert_eq!(rate(&server, other, &other_token, 1, 4.0).status, 200);
    assert_eq!(recommendations(&server, user, Some(&token), 3).status, 200);
}

#[test]
fn no_acknowledged_rating_is_lost_over_ten_kills_of_the_server() {
    let state = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", state.path().join("movierec.db").display());
    let args = ["--database", database.as_str(), "--write-rate", "0"];
    // What the server acknowledged: (user, movie) → stars.
    let acknowledged: Arc<Mutex<HashMap<(u64, u32), f64>>> = Arc::default();
    let total = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut profiles = Vec::new();
    let mut kills = 0;
    while kills < 10 {
        let mut server = start(&args);
        if profiles.is_empty() {
            profiles = (0..4).map(|_| new_profile(&server)).collect();
        }
        // Everything acknowledged before is there after the restart.
        check_stored(&server, &profiles, &acknowledged.lock().unwrap());
        // Four writers rate as fast as they can; the server is killed mid-stream.
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = profiles
            .iter()
            .cloned()
            .enumerate()
            .map(|(w, (user, token))| {
                let (url, stop, acknowledged, total) = (
                    server.url.clone(),
                    stop.clone(),
                    acknowledged.clone(),
                    total.clone(),
                );
                std::thread::spawn(move || {
                    let mut i: u32 = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let movie = [1, 2, 3, 5, 6, 7, 10, 32, 47, 50][(i as usize + w) % 10];
                        let stars = f64::from(1 + (i + 3 * w as u32) % 10) / 2.0;
                        let put = call(
                            "PUT",
                            &format!("{url}/api/users/{user}/ratings/{movie}"),
                            Some(&token),
                            Some(("application/json", json!({ "rating": stars }).to_string())),
                        );
                        match put {
                            Ok(answer) if answer.status == 200 => {
                                acknowledged.lock().unwrap().insert((user, movie), stars);
                                total.fetch_add(1, Ordering::Relaxed);
                            }
                            // Killed mid-request: not acknowledged, may or may not be stored.
                            _ => {
                                // The ratings this writer may have left unacknowledged.
                                acknowledged.lock().unwrap().remove(&(user, movie));
                                break;
                            }
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(400));
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        kills += 1;
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.join().unwrap();
        }
    }
    let server = start(&args);
    check_stored(&server, &profiles, &acknowledged.lock().unwrap());
    let total = total.load(Ordering::Relaxed);
    eprintln!("{total} ratings acknowledged over {kills} kills; none lost");
    assert!(
        total >= 100,
        "too few acknowledged ratings to judge: {total}"
    );
}

/// Checks that every acknowledged rating is stored with its value (the last acknowledged one of
/// each user and movie).
fn check_stored(
    server: &Server,
    profiles: &[(u64, String)],
    acknowledged: &HashMap<(u64, u32), f64>,
) {
    let mut missing = Vec::new();
    for (user, token) in profiles {
        let listed = send(
            "GET",
            &format!("{}/api/users/{user}/ratings", server.url),
            Some(token),
            None,
        );
        assert_eq!(listed.status, 200, "{}", listed.body);
        let stored: HashMap<u32, f64> = listed.body["ratings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["movieId"].as_u64().unwrap() as u32,
                    r["rating"].as_f64().unwrap(),
                )
            })
            .collect();
        for ((u, movie), stars) in acknowledged {
            if u == user && stored.get(movie) != Some(stars) {
                missing.push((*u, *movie, *stars, stored.get(movie).copied()));
            }
        }
    }
    assert_eq!(
        missing,
        vec![],
        "acknowledged but not stored (user, movie, stars, stored)"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Waits for the background training under way to end and returns `/api/admin/training`.
fn wait_for_training(server: &Server) -> Value {
    let started = std::time::Instant::now();
    loop {
        let status = send(
            "GET",
            &format!("{}/api/admin/training", server.url),
            Some(ADMIN),
            None,
        );
        assert_eq!(status.status, 200, "{}", status.body);
        if status.body["state"] != "training" && !status.body["last"].is_null() {
            return status.body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no training ended in 300 s: {}\n{}",
            status.body,
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_server_retrains_itself_and_swaps_the_model_in_without_a_failed_request() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    copy_dir(trained_model(), &model);
    let database = work.path().join("state/movierec.db");
    let server = Server::start_command(
        &model,
        &[
            "--retrain-after",
            "30",
            "--retrain-every",
            "0",
            "--write-rate",
            "0",
            "--database",
            &format!("sqlite:{}", database.display()),
        ],
        &[(movierec::server::reload::ADMIN_TOKEN_ENV, ADMIN)],
        None,
    );
    let health = |server: &Server| send("GET", &format!("{}/api/health", server.url), None, None);
    let trained_before = health(&server).body["trainedAt"].clone();
    let idle = send(
        "GET",
        &format!("{}/api/admin/training", server.url),
        Some(ADMIN),
        None,
    );
    assert_eq!(idle.body["state"], "idle");
    assert_eq!(idle.body["retrainAfter"], 30);

    // Recommendations asked all along, by two clients.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|i| {
            let (url, stop) = (server.url.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut answered, mut failed) = (0, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let answer = if i == 0 {
                        call(
                            "POST",
                            &format!("{url}/api/recommendations"),
                            None,
                            Some((
                                "application/json",
                                json!({"movie": "toy story"}).to_string(),
                            )),
                        )
                    } else {
                        call(
                            "GET",
                            &format!("{url}/api/users/1/recommendations"),
                            None,
                            None,
                        )
                    };
                    match answer {
                        Ok(a) if a.status == 200 => answered += 1,
                        Ok(a) => failed.push(format!("{}: {}", a.status, a.body)),
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                (answered, failed)
            })
        })
        .collect();

    // Thirty ratings start a training; the new model is served when it ends.
    let (user, token) = new_profile(&server);
    let popular = [
        1, 2, 6, 10, 32, 47, 50, 110, 150, 260, 296, 318, 356, 364, 367, 377, 380, 457, 480, 500,
        527, 539, 586, 587, 588, 589, 590, 592, 593, 597,
    ];
    for movie in popular {
        assert_eq!(rate(&server, user, &token, movie, 4.0).status, 200);
    }
    // Never two at once: one asked for while it runs is refused.
    let url = format!("{}/api/admin/training", server.url);
    let again = send("POST", &url, Some(ADMIN), None);
    assert_eq!((again.status, code(&again)), (409, "training_running"));
    let status = wait_for_training(&server);
    assert_eq!(
        status["last"]["status"],
        "finished",
        "{status}\n{}",
        server.log()
    );
    assert_eq!(status["last"]["trigger"], "changes");
    assert!(status["changes"].as_u64().unwrap() < 30, "{status}");
    let run_id = status["last"]["runId"].as_str().unwrap().to_string();
    let now = health(&server).body;
    assert_ne!(now["trainedAt"], trained_before, "a new model is served");
    // Trained incrementally from the model it replaced: 30 new ratings of one new user.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(model.join("manifest.json")).unwrap()).unwrap();
    let record = &manifest["incremental"];
    assert_eq!(record["incremental"], true, "{record}");
    assert_eq!(record["delta"]["added"], 30, "{record}");
    assert_eq!(record["delta"]["users_changed"], 1, "{record}");

    // A failed training (its snapshot cannot be written) leaves the model serving.
    std::fs::write(database.parent().unwrap().join("snapshot"), "in the way").unwrap();
    let started = send("POST", &url, Some(ADMIN), None);
    assert_eq!(started.status, 202, "{}", started.body);
    let status = wait_for_training(&server);
    assert_eq!(status["last"]["status"], "failed", "{status}");
    assert!(
        status["last"]["error"]
            .as_str()
            .unwrap()
            .contains("snapshot"),
        "{status}"
    );
    assert_eq!(health(&server).body["trainedAt"], now["trainedAt"]);

    stop.store(true, Ordering::Relaxed);
    let mut answered = 0;
    for thread in load {
        let (n, failed) = thread.join().unwrap();
        assert_eq!(
            failed,
            Vec::<String>::new(),
            "failed requests across the swap"
        );
        answered += n;
    }
    assert!(answered > 50, "only {answered} requests during the test");
    eprintln!("{answered} recommendation requests across a retraining and its swap; 0 failed");

    // Both trainings are recorded runs, the failed one as failed.
    let runs = send(
        "GET",
        &format!("{}/api/runs?kind=train", server.url),
        None,
        None,
    );
    let runs = runs.body["runs"].as_array().unwrap();
    let finished = runs
        .iter()
        .find(|r| r["id"] == run_id.as_str())
        .expect("the run");
    assert_eq!(finished["params"]["trigger"], "serve: changes");
    assert!(runs
        .iter()
        .any(|r| r["params"]["trigger"] == "serve: request" && r["status"] == "failed"));
}

#[test]
fn a_site_imports_its_own_catalog_and_exports_the_database_as_a_release() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let database = format!("sqlite:{}", dir.join("site.db").display());
    std::fs::write(
        dir.join("movies.csv"),
        "movieId,title,year,genres,imdbId,tmdbId\n1,Our First Film,2024,Drama|Comedy,1234567,\n2,\"Second, The\",2025,Animation,,99\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("ratings.jsonl"),
        "{\"userId\": 1, \"movieId\": 1, \"rating\": 4.5, \"timestamp\": 1700000000}\n{\"userId\": 2, \"movieId\": 2, \"rating\": 3}\n",
    )
    .unwrap();
    // A bad row: named by file and line, and nothing of either file is written.
    std::fs::write(
        dir.join("bad.csv"),
        "userId,movieId,rating\n1,1,4\n1,2,4.3\n",
    )
    .unwrap();
    let path = |name: &str| dir.join(name).display().to_string();
    let refused = common::movierec(&[
        "import",
        "--movies",
        &path("movies.csv"),
        "--ratings",
        &path("bad.csv"),
        "--database",
        &database,
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:3: rating must be in half stars",
            path("bad.csv")
        )),
        "{stderr}"
    );
    let imported = common::movierec(&[
        "import",
        "--movies",
        &path("movies.csv"),
        "--ratings",
        &path("ratings.jsonl"),
        "--database",
        &database,
    ]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let exported =
        common::movierec(&["export", "--out", &path("release"), "--database", &database]);
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    // The export is a MovieLens release the loader reads: the failed import left nothing.
    let release = movierec::data::load(&dir.join("release")).unwrap();
    assert_eq!(release.movies.len(), 2);
    assert_eq!(release.movies[1].title, "Second, The (2025)");
    assert_eq!(release.movies[0].genres, vec!["Drama", "Comedy"]);
    assert_eq!(release.ratings.len(), 2);
    assert_eq!(release.links[&1].imdb_id, Some(1234567));
    assert_eq!(release.links[&2].tmdb_id, Some(99));
    let first = release.ratings.iter().find(|r| r.user_id == 1).unwrap();
    assert_eq!(
        (first.movie_id, first.rating, first.timestamp),
        (1, 4.5, 1_700_000_000)
    );
    // No database, no export; `none` is refused.
    let missing = common::movierec(&[
        "export",
        "--out",
        &path("x"),
        "--database",
        &format!("sqlite:{}", path("missing.db")),
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no database at"));
}

#[test]
fn online_metrics_count_recommended_movies_the_person_then_rated() {
    let server = start(&[]);
    let (user, token) = new_profile(&server);
    rate(&server, user, &token, 1, 5.0);
    let shown = recommendations(&server, user, Some(&token), 10);
    let ids = result_ids(&shown);
    // Two of the ten shown are rated: one liked, one not.
    assert_eq!(rate(&server, user, &token, ids[0] as u32, 4.5).status, 200);
    assert_eq!(rate(&server, user, &token, ids[1] as u32, 2.0).status, 200);
    let url = format!("{}/api/admin/online-metrics", server.url);
    assert_eq!(send("GET", &url, None, None).status, 401);
    let bad = send("GET", &format!("{url}?days=0"), Some(ADMIN), None);
    assert_eq!(
        (bad.status, bad.body["error"]["field"].as_str()),
        (400, Some("days"))
    );
    let metrics = send("GET", &url, Some(ADMIN), None);
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    assert_eq!(metrics.body["windowDays"], 7);
    let days = metrics.body["days"].as_array().unwrap();
    let today = days
        .iter()
        .find(|d| d["model"] == shown.body["model"])
        .unwrap_or_else(|| panic!("{}", metrics.body));
    assert_eq!(today["impressions"], 10, "{today}");
    assert_eq!(today["rated"], 2, "{today}");
    assert_eq!(today["liked"], 1, "{today}");
    assert_eq!(today["hitRate"], 0.1);
}
