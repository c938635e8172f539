//! Many `movierec serve` processes sharing one real PostgreSQL database and one model store
//! (`--database postgres://… --model-store DIR`): a write through one server is read through
//! another at once; exactly one server trains at a time and the others reload what it
//! publishes; `kill -9` of a server under load loses no acknowledged rating and the others keep
//! answering; `kill -9` of the trainer mid-training and another server finishes the job.

use crate::common;

use common::http::{send, Answer};
use common::server::Server;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "scale-out-admin-token";

/// A server of the cluster: the shared database and store, the bundled data for the first
/// training, a short trainer lease.
fn cluster_server(url: &str, store: &Path, lease: &str) -> Server {
    let data = common::bundled_data();
    // A run store of its own (not the shared store's): each server's runs reach the others
    // only through the database.
    let runs = tempfile::tempdir().unwrap().keep();
    Server::start_command(
        // Not used with --model-store.
        Path::new("unused-model-dir"),
        &[
            "--database",
            url,
            "--model-store",
            store.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--trainer-lease",
            lease,
            "--write-rate",
            "0",
            "--runs-dir",
            runs.to_str().unwrap(),
        ],
        &[("MOVIEREC_ADMIN_TOKEN", ADMIN)],
        None,
    )
}

/// `n` servers started at once (they race for the first training).
fn start_cluster(n: usize, url: &str, store: &Path, lease: &str) -> Vec<Server> {
    std::thread::scope(|scope| {
        let started: Vec<_> = (0..n)
            .map(|_| scope.spawn(|| cluster_server(url, store, lease)))
            .collect();
        started.into_iter().map(|s| s.join().unwrap()).collect()
    })
}

fn training(server: &Server) -> Value {
    let answer = send(
        "GET",
        &format!("{}/api/admin/training", server.url),
        Some(ADMIN),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

fn served_model(server: &Server) -> String {
    training(server)["modelId"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Published model directories in the store (model ids start with their date; staging
/// directories and `runs/` aside).
fn published(store: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(store)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    ids.sort();
    ids
}

/// Waits until `check` holds, up to `limit`; panics with `what` and the servers' logs.
fn wait_until(limit: Duration, what: &str, servers: &[&Server], mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        if Instant::now() > deadline {
            let logs: Vec<String> = servers.iter().map(|s| s.log()).collect();
            panic!("{what} within {limit:?}; logs:\n{}", logs.join("\n---\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn new_profile(server: &Server) -> (u64, String) {
    let created = send("POST", &format!("{}/api/users", server.url), None, None);
    assert_eq!(created.status, 201, "{}", created.body);
    (
        created.body["userId"].as_u64().unwrap(),
        created.body["token"].as_str().unwrap().to_string(),
    )
}

fn rate(server: &Server, user: u64, token: &str, movie: u64, stars: f64) -> Answer {
    send(
        "PUT",
        &format!("{}/api/users/{user}/ratings/{movie}", server.url),
        Some(token),
        Some(json!({ "rating": stars })),
    )
}

fn ratings_of(server: &Server, user: u64, token: &str) -> Vec<(u64, f64)> {
    let answer = send(
        "GET",
        &format!("{}/api/users/{user}/ratings?limit=1000", server.url),
        Some(token),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["ratings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["movieId"].as_u64().unwrap(),
                r["rating"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn three_servers_share_profiles_ratings_and_the_model_one_of_them_publishes() {
    let Some(postgres) = common::postgres::shared() else {
        return;
    };
    let url = postgres.create_database();
    let store = tempfile::tempdir().unwrap();
    let servers = start_cluster(3, &url, store.path(), "10s");
    let all: Vec<&Server> = servers.iter().collect();
    // One server trained the first model, the others waited for it: one model in the store,
    // served by all three.
    assert_eq!(
        published(store.path()).len(),
        1,
        "{:?}",
        published(store.path())
    );
    let first = served_model(&servers[0]);
    for server in &servers {
        assert_eq!(served_model(server), first);
    }
    let waited = servers
        .iter()
        .filter(|s| s.log().contains("to publish the first model"))
        .count();
    assert!(waited <= 2, "{waited} servers waited: no server trained?");
    assert!(training(&servers[0])["lease"]["holder"].is_null());

    // A profile made through A, rated through B, read through C at once.
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let (user, token) = new_profile(a);
    let mut slowest = Duration::ZERO;
    for (i, movie) in [1u64, 2, 3, 6, 10, 32, 47, 50, 110, 150].iter().enumerate() {
        let stars = if i % 2 == 0 { 4.5 } else { 2.0 };
        let written = Instant::now();
        let answer = rate(b, user, &token, *movie, stars);
        assert_eq!(answer.status, 200, "{}", answer.body);
        // Visible through C in its very next answer (waited for up to 1 s, the target).
        loop {
            if ratings_of(c, user, &token).contains(&(*movie, stars)) {
                break;
            }
            assert!(
                written.elapsed() < Duration::from_secs(1),
                "not visible within 1 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        slowest = slowest.max(written.elapsed());
        // C's recommendations for the profile leave out what was rated through B.
        let recommended = send(
            "GET",
            &format!("{}/api/users/{user}/recommendations?k=20", c.url),
            Some(&token),
            None,
        );
        assert_eq!(recommended.status, 200, "{}", recommended.body);
        let ids: Vec<u64> = recommended.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["movieId"].as_u64().unwrap())
            .collect();
        assert!(
            !ids.contains(movie),
            "{movie} rated through B came back from C"
        );
    }
    eprintln!("slowest write-through-B, read-through-C: {slowest:?}");
    // The token made through A works through C, and another profile's token does not.
    let (other, other_token) = new_profile(c);
    assert_ne!(other, user);
    let refused = send(
        "GET",
        &format!("{}/api/users/{user}/ratings", a.url),
        Some(&other_token),
        None,
    );
    assert_eq!(refused.status, 403, "{}", refused.body);

    // A training asked of B: B takes the lease; C is told B is training; all three then serve
    // B's model.
    let started = send(
        "POST",
        &format!("{}/api/admin/training", b.url),
        Some(ADMIN),
        None,
    );
    assert_eq!(started.status, 202, "{}", started.body);
    wait_until(Duration::from_secs(10), "B holds the lease", &all, || {
        training(b)["lease"]["holder"] == training(b)["server"]
    });
    let refused = send(
        "POST",
        &format!("{}/api/admin/training", c.url),
        Some(ADMIN),
        None,
    );
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "training_running");
    wait_until(
        Duration::from_secs(120),
        "all three serve B's new model",
        &all,
        || {
            let served: Vec<String> = servers.iter().map(served_model).collect();
            served[0] != first && served.iter().all(|m| *m == served[0])
        },
    );
    let status = training(b);
    assert_eq!(status["last"]["status"], "finished", "{status}");
    assert_eq!(status["last"]["trigger"], "request", "{status}");
    assert_eq!(published(store.path()).len(), 2);
    // Every server lists every server's trainings, the first start's and B's, though each
    // records runs in a run store of its own: through the database.
    let runs = send("GET", &format!("{}/api/runs", a.url), None, None);
    assert_eq!(runs.status, 200, "{}", runs.body);
    let triggers: Vec<String> = runs.body["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["params"]["trigger"].as_str().map(str::to_string))
        .collect();
    assert!(
        triggers.contains(&"serve: first start".to_string())
            && triggers.contains(&"serve: request".to_string()),
        "{triggers:?}"
    );
    drop(servers);
}

#[test]
fn a_server_killed_under_write_load_loses_no_acknowledged_rating_and_the_others_keep_answering() {
    let Some(postgres) = common::postgres::shared() else {
        return;
    };
    let url = postgres.create_database();
    let store = tempfile::tempdir().unwrap();
    let mut servers = start_cluster(3, &url, store.path(), "10s");
    let (user, token) = new_profile(&servers[0]);
    // 300 movies of the catalog.
    let movies: Vec<u64> = std::fs::read_to_string(common::bundled_data().join("movies.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .take(300)
        .map(|line| line.split(',').next().unwrap().parse().unwrap())
        .collect();
    // Every attempt in order: (movie, stars, acknowledged).
    let attempts: Arc<Mutex<Vec<(u64, f64, bool)>>> = Arc::default();
    let failures_on_survivors = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let (url, token) = (urls[w % 3].clone(), token.clone());
            let (attempts, failures, stop) = (
                attempts.clone(),
                failures_on_survivors.clone(),
                stop.clone(),
            );
            let movies = movies.clone();
            std::thread::spawn(move || {
                let mut i = w;
                while !stop.load(Ordering::SeqCst) && i < 1_000_000 {
                    let movie = movies[i % movies.len()];
                    let stars = 0.5 + (i % 10) as f64 * 0.5;
                    let answer = common::http::call(
                        "PUT",
                        &format!("{url}/api/users/{user}/ratings/{movie}"),
                        Some(&token),
                        Some(("application/json", json!({ "rating": stars }).to_string())),
                    );
                    let acked = matches!(&answer, Ok(a) if a.status == 200);
                    attempts.lock().unwrap().push((movie, stars, acked));
                    match answer {
                        Ok(a) if a.status == 200 => {}
                        Ok(a) if w % 3 != 0 => failures.lock().unwrap().push(a.body.to_string()),
                        Err(e) if w % 3 != 0 => failures.lock().unwrap().push(e.to_string()),
                        _ => {}
                    }
                    i += 6;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    servers[0].child.kill().unwrap(); // SIGKILL
    servers[0].child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().unwrap();
    }
    let failures = failures_on_survivors.lock().unwrap().clone();
    assert!(failures.is_empty(), "the survivors failed: {failures:?}");
    // Every acknowledged rating is stored (the last write of each movie wins; writers of one
    // movie never overlap, as each movie belongs to one writer's sequence).
    let stored: std::collections::HashMap<u64, f64> =
        ratings_of(&servers[1], user, &token).into_iter().collect();
    let attempts = attempts.lock().unwrap().clone();
    let acknowledged = attempts.iter().filter(|a| a.2).count();
    assert!(acknowledged > 100, "only {acknowledged} writes");
    // Per movie, what may be stored: its last acknowledged rating, or one tried after it that
    // the killed server never answered (it may have committed it before dying).
    let mut allowed: std::collections::HashMap<u64, Vec<f64>> = Default::default();
    for &(movie, stars, acked) in &attempts {
        let values = allowed.entry(movie).or_default();
        if acked {
            values.clear();
        }
        values.push(stars);
    }
    let mut lost = 0;
    for (movie, values) in &allowed {
        let first_acked = attempts.iter().any(|a| a.0 == *movie && a.2);
        if first_acked && !stored.get(movie).is_some_and(|s| values.contains(s)) {
            lost += 1;
        }
    }
    assert_eq!(lost, 0, "{lost} acknowledged ratings lost");
    eprintln!("{acknowledged} acknowledged ratings through three servers, one killed: 0 lost");
    // The survivors keep answering.
    for server in &servers[1..] {
        let health = send("GET", &format!("{}/api/health", server.url), None, None);
        assert_eq!(health.status, 200);
    }
    drop(servers.remove(0));
}

#[test]
fn when_the_trainer_is_killed_mid_training_another_server_finishes_the_job() {
    let Some(postgres) = common::postgres::shared() else {
        return;
    };
    let url = postgres.create_database();
    let store = tempfile::tempdir().unwrap();
    let mut servers = start_cluster(2, &url, store.path(), "3s");
    let first = served_model(&servers[0]);
    let started = send(
        "POST",
        &format!("{}/api/admin/training", servers[0].url),
        Some(ADMIN),
        None,
    );
    assert_eq!(started.status, 202, "{}", started.body);
    let all: Vec<&Server> = servers.iter().collect();
    wait_until(Duration::from_secs(10), "A holds the lease", &all, || {
        let status = training(&servers[1]);
        status["lease"]["holder"].is_string() && status["lease"]["holder"] != status["server"]
    });
    std::thread::sleep(Duration::from_millis(500));
    let killed = Instant::now();
    servers[0].child.kill().unwrap(); // SIGKILL, mid-training
    servers[0].child.wait().unwrap();
    let survivor = &servers[1];
    wait_until(
        Duration::from_secs(120),
        "the survivor took the training over and serves its model",
        &[survivor],
        || {
            let status = training(survivor);
            status["last"]["trigger"] == "takeover"
                && status["last"]["status"] == "finished"
                && status["modelId"] != first
        },
    );
    let took = killed.elapsed();
    eprintln!("trainer killed → a new model published and served by another in {took:?}");
    let status = training(survivor);
    assert_eq!(published(store.path()).len(), 2, "{status}");
    assert!(status["lease"]["holder"].is_null(), "{status}");
    assert!(survivor.log().contains("taking its training over"));
    drop(servers.remove(0));
}

#[test]
fn a_model_store_needs_a_database_and_a_lease_the_trainer_can_renew() {
    let store = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (
            vec!["--database", "none"],
            "the servers sharing a model store need a shared --database",
        ),
        (
            vec!["--trainer-lease", "2s"],
            "--trainer-lease: at least 3 s",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_movierec"))
            .args(["serve", "--port", "0", "--model-store"])
            .arg(store.path())
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
