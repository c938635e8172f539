//! The MLflow client against a real `mlflow server`, and its failures against closed ports and
//! servers that answer garbage.

use crate::common;

use common::mlflow::MlflowServer;
use movierec::tracking::{
    record, MlflowClient, RunFilter, RunKind, RunRecord, RunStatus, RunStore,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

/// `GET <uri>/api/2.0/mlflow/<endpoint>` with a plain HTTP client, to check what the server
/// stored independently of the code under test.
fn rest_get(uri: &str, endpoint: &str, query: (&str, &str)) -> Value {
    let mut response = ureq::get(format!("{uri}/api/2.0/mlflow/{endpoint}"))
        .query(query.0, query.1)
        .call()
        .unwrap_or_else(|e| panic!("GET {endpoint}: {e}"));
    serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap()
}

fn key_values(list: &Value) -> BTreeMap<String, Value> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|kv| (kv["key"].as_str().unwrap().to_string(), kv["value"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn logs_runs_to_a_real_mlflow_server_and_reads_them_back() {
    let Some(server) = MlflowServer::start_or_skip() else {
        return;
    };
    let client = MlflowClient::new(&server.uri)
        .unwrap()
        .with_experiment("movierec-tests");
    let tmp = tempfile::tempdir().unwrap();
    let store = RunStore::open(&tmp.path().join("runs")).unwrap();

    let mut run = RunRecord::start(
        RunKind::Train,
        "0.1.0 (git abc1234)",
        "data/ml-latest-small",
        "xxh3:00ff",
    )
    .param("model", "als")
    .param("dim", 64)
    .param("long", "y".repeat(7000))
    .param("weird key@v2", 1)
    .metric("ndcg@10", 0.3125)
    .metric("recall/20", 0.5)
    .metric("nan", f64::NAN)
    .tag("note", "hello")
    .tag("movierec.kind", "spoofed");
    // More params than one log-batch request may carry.
    for i in 0..150 {
        run = run.param(format!("p{i:03}"), i);
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    let run = run.finish(RunStatus::Finished);

    let mut warnings = Vec::new();
    let stored = record(&store, Some(&client), run.clone(), &mut |w| {
        warnings.push(w)
    })
    .unwrap();
    assert!(
        warnings.is_empty(),
        "{warnings:?}\nserver log:\n{}",
        server.log_tail()
    );
    let logged = stored.mlflow.clone().expect("record.mlflow is filled");
    assert_eq!(logged.tracking_uri, server.uri);
    assert_eq!(logged.run_id.len(), 32);
    let local = store.get(&stored.id).unwrap().expect("stored locally");
    assert_eq!(local.mlflow.as_ref(), Some(&logged));

    let experiment = rest_get(
        &server.uri,
        "experiments/get-by-name",
        ("experiment_name", "movierec-tests"),
    );
    assert_eq!(
        experiment["experiment"]["experiment_id"].as_str(),
        Some(logged.experiment_id.as_str())
    );

    let got = rest_get(&server.uri, "runs/get", ("run_id", &logged.run_id));
    let info = &got["run"]["info"];
    assert_eq!(info["status"], "FINISHED");
    assert_eq!(
        info["experiment_id"].as_str(),
        Some(logged.experiment_id.as_str())
    );
    let start = info["start_time"].as_i64().unwrap();
    let end = info["end_time"].as_i64().unwrap();
    assert_eq!(Some(start), run.started_at_unix_ms());
    assert_eq!(end - start, (run.duration_seconds * 1000.0).round() as i64);
    assert!(end - start >= 30);

    let params = key_values(&got["run"]["data"]["params"]);
    assert_eq!(params.len(), 154, "{:?}", params.keys());
    assert_eq!(params["model"], "als");
    assert_eq!(params["dim"], "64");
    assert_eq!(params["weird key_v2"], "1");
    assert_eq!(params["p149"], "149");
    assert_eq!(params["long"].as_str().unwrap().len(), 6000);

    let metrics = key_values(&got["run"]["data"]["metrics"]);
    assert_eq!(metrics.len(), 3, "{metrics:?}");
    assert_eq!(metrics["ndcg_10"].as_f64(), Some(0.3125));
    assert_eq!(metrics["recall/20"].as_f64(), Some(0.5));
    assert_eq!(metrics["nan"], "NaN");

    let tags = key_values(&got["run"]["data"]["tags"]);
    let run_name = format!("train-{}", run.id);
    for (key, value) in [
        ("mlflow.source.name", "movierec"),
        ("mlflow.runName", run_name.as_str()),
        ("movierec.run_id", run.id.as_str()),
        ("movierec.kind", "train"),
        ("movierec.dataset.path", "data/ml-latest-small"),
        ("movierec.dataset.fingerprint", "xxh3:00ff"),
        ("movierec.code_version", "0.1.0 (git abc1234)"),
        ("movierec.host", run.host.as_str()),
        ("note", "hello"),
    ] {
        assert_eq!(
            tags.get(key).and_then(Value::as_str),
            Some(value),
            "tag {key}: {tags:?}"
        );
    }

    // A second, failed run goes to the same (now existing) experiment, marked FAILED.
    let failed = RunRecord::start(RunKind::Evaluate, "0.1.0", "data/x", "xxh3:1")
        .metric("ndcg@10", 0.0)
        .finish(RunStatus::Failed);
    let failed = record(&store, Some(&client), failed, &mut |w| warnings.push(w)).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let failed_ref = failed.mlflow.unwrap();
    assert_eq!(failed_ref.experiment_id, logged.experiment_id);
    let got = rest_get(&server.uri, "runs/get", ("run_id", &failed_ref.run_id));
    assert_eq!(got["run"]["info"]["status"], "FAILED");
    assert_eq!(
        key_values(&got["run"]["data"]["tags"])["movierec.kind"],
        "evaluate"
    );
    assert_eq!(store.list(&RunFilter::default()).unwrap().runs.len(), 2);

    // MLflow's own errors come back with its error code and the endpoint.
    let err = client
        .get_run("0123456789abcdef0123456789abcdef")
        .unwrap_err();
    assert_eq!(err.mlflow_error_code(), Some("RESOURCE_DOES_NOT_EXIST"));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "MLflow {}/api/2.0/mlflow/runs/get: RESOURCE_DOES_NOT_EXIST: ",
            server.uri
        )),
        "{text}"
    );

    // Several commands creating the same new experiment at once all end up in it.
    let racing = MlflowClient::new(&server.uri)
        .unwrap()
        .with_experiment("movierec-race");
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let run =
                        RunRecord::start(RunKind::Train, "v", "d", "f").finish(RunStatus::Finished);
                    racing.log_run(&run).map(|r| r.experiment_id)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap_or_else(|e| panic!("{e}")))
            .collect()
    });
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_ne!(ids[0], logged.experiment_id);

    // The real command: `movierec train --mlflow URI` logs its run there too.
    let runs = tmp.path().join("cli-runs");
    let tiny = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
    let output = common::movierec(&[
        "train",
        "--data",
        tiny.to_str().unwrap(),
        "--out",
        tmp.path().join("model").to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
        "--mlflow",
        &server.uri,
        "--experiment",
        "movierec-cli",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("warning: run"), "{stderr}");
    let stored = RunStore::open(&runs)
        .unwrap()
        .list(&RunFilter::default())
        .unwrap()
        .runs;
    assert_eq!(stored.len(), 1);
    let mlflow_run = stored[0].mlflow.clone().expect("logged to MLflow");
    let got = rest_get(&server.uri, "runs/get", ("run_id", &mlflow_run.run_id));
    assert_eq!(got["run"]["info"]["status"], "FINISHED");
    let params = key_values(&got["run"]["data"]["params"]);
    assert_eq!(params["default_collaborative"], "item_knn");
    let metrics = key_values(&got["run"]["data"]["metrics"]);
    assert_eq!(metrics["movies"], 4.0);
    assert!(metrics["training_seconds"].as_f64().unwrap() > 0.0);
    let tags = key_values(&got["run"]["data"]["tags"]);
    assert_eq!(
        tags["movierec.dataset.fingerprint"],
        stored[0].dataset.fingerprint.as_str()
    );
    let experiment = rest_get(
        &server.uri,
        "experiments/get-by-name",
        ("experiment_name", "movierec-cli"),
    );
    assert_eq!(
        experiment["experiment"]["experiment_id"],
        mlflow_run.experiment_id.as_str()
    );
    eprintln!("server: {}", server.command_line);
}

#[test]
fn an_unreachable_server_is_one_warning_and_the_run_is_still_stored() {
    let port = common::mlflow::free_port();
    let uri = format!("http://127.0.0.1:{port}");
    let client = MlflowClient::new(&uri).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let store = RunStore::open(tmp.path()).unwrap();
    let run = RunRecord::start(RunKind::Train, "0.1.0", "d", "f").finish(RunStatus::Finished);

    let mut warnings = Vec::new();
    let stored = record(&store, Some(&client), run.clone(), &mut |w| {
        warnings.push(w)
    })
    .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(&uri), "{}", warnings[0]);
    assert!(
        warnings[0].contains("recorded locally only"),
        "{}",
        warnings[0]
    );
    assert_eq!(stored.mlflow, None);
    let listed = store.list(&RunFilter::default()).unwrap().runs;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, run.id);
    assert_eq!(listed[0].mlflow, None);
}

/// A one-answer-fits-all HTTP server on 127.0.0.1; returns its URI.
fn fake_server(status_line: &'static str, headers: &'static str, body: &'static str) -> String {
    fake_server_seeing_requests(status_line, headers, body).0
}

/// [`fake_server`], also returning the head of each request it receives.
fn fake_server_seeing_requests(
    status_line: &'static str,
    headers: &'static str,
    body: &'static str,
) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    let (heads, received) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut request_body = vec![0; length];
            let _ = reader.read_exact(&mut request_body);
            let _ = write!(
                stream,
                "HTTP/1.1 {status_line}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = heads.send(head);
        }
    });
    (uri, received)
}

#[test]
fn garbage_answers_are_errors_naming_the_endpoint_not_panics() {
    let cases = [
        (
            fake_server(
                "200 OK",
                "Content-Type: text/html\r\n",
                "<html><body>Please log in</body></html>",
            ),
            None,
            "HTTP 200 with an answer that is not a JSON object (\"<html><body>Please log in</body></html>\")",
        ),
        (
            fake_server(
                "500 Internal Server Error",
                "Content-Type: application/json\r\n",
                r#"{"error_code": "INTERNAL_ERROR", "message": "database is locked"}"#,
            ),
            Some("INTERNAL_ERROR"),
            "INTERNAL_ERROR: database is locked (HTTP 500)",
        ),
        (
            fake_server(
                "502 Bad Gateway",
                "Content-Type: text/html\r\n",
                "<html>\n  <h1>502 Bad Gateway</h1>\n</html>",
            ),
            None,
            "HTTP 502: \"<html> <h1>502 Bad Gateway</h1> </html>\"",
        ),
        (
            fake_server(
                "301 Moved Permanently",
                "Location: https://mlflow.example/\r\n",
                "",
            ),
            None,
            "redirected to https://mlflow.example/: use that as the tracking URI",
        ),
        (
            fake_server("401 Unauthorized", "", ""),
            None,
            "HTTP 401: empty; set MLFLOW_TRACKING_USERNAME",
        ),
    ];
    for (uri, code, expected) in cases {
        let client = MlflowClient::new(&uri).unwrap();
        let run = RunRecord::start(RunKind::Train, "v", "d", "f").finish(RunStatus::Finished);
        let err = client.log_run(&run).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "MLflow {uri}/api/2.0/mlflow/experiments/get-by-name: "
            )),
            "{text}"
        );
        assert!(text.contains(expected), "{text}\nexpected: {expected}");
        assert_eq!(err.mlflow_error_code(), code);
    }
}

#[test]
fn a_server_that_hangs_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    // Accepts (the backlog does) but never answers.
    let client = MlflowClient::new(&uri)
        .unwrap()
        .with_timeout(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    let err = client.experiment_id().unwrap_err().to_string();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        err.contains("request failed") && err.contains("timeout"),
        "{err}"
    );
    drop(listener);
}

#[test]
fn credentials_are_sent_but_never_shown() {
    let (uri, heads) = fake_server_seeing_requests("401 Unauthorized", "", "");
    let with_userinfo = uri.replace("http://", "http://user:s3cret@");
    let client = MlflowClient::new(&with_userinfo).unwrap();
    assert_eq!(client.tracking_uri(), uri);
    assert!(!format!("{client:?}").contains("s3cret"));
    let err = client.experiment_id().unwrap_err().to_string();
    assert!(!err.contains("s3cret") && err.contains(&uri), "{err}");
    let head = heads.recv().unwrap();
    // base64("user:s3cret")
    assert!(
        head.contains("authorization: Basic dXNlcjpzM2NyZXQ=\r\n"),
        "{head}"
    );
    assert!(
        head.starts_with("GET /api/2.0/mlflow/experiments/get-by-name?experiment_name=movierec "),
        "{head}"
    );

    let client = MlflowClient::new(&uri).unwrap().with_bearer_token("tok");
    client.experiment_id().unwrap_err();
    assert!(heads
        .recv()
        .unwrap()
        .contains("authorization: Bearer tok\r\n"));
}
