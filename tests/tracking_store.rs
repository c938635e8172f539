//! The JSON Lines run store, on real files, threads and processes.

use movierec::tracking::{record, RunFilter, RunKind, RunRecord, RunStatus, RunStore, SkippedLine};
use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn run(kind: RunKind, started_at: &str) -> RunRecord {
    let mut run = RunRecord::start(
        kind,
        "0.1.0 (git abc1234)",
        "data/ml-latest-small",
        "xxh3:42",
    )
    .param("dim", 32)
    .param("model", "als")
    .metric("ndcg@10", 0.25)
    .metric("nan", f64::NAN)
    .tag("note", "a \"quoted\"\nmulti-line tag")
    .finish(RunStatus::Finished);
    run.started_at = started_at.to_string();
    run
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn append_list_get_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("runs");
    let store = RunStore::open(&dir).unwrap();
    assert!(!dir.exists(), "open must not create anything");
    assert!(store.list(&RunFilter::default()).unwrap().runs.is_empty());

    let a = run(RunKind::Train, "2026-05-01T10:00:00.000Z");
    store.append(&a).unwrap();
    assert_eq!(store.path(), dir.join("runs.jsonl"));
    assert_eq!(lines(store.path()).len(), 1);

    let listing = store.list(&RunFilter::default()).unwrap();
    assert!(listing.skipped.is_empty());
    assert_eq!(listing.runs.len(), 1);
    let back = &listing.runs[0];
    assert_eq!(back.id, a.id);
    assert_eq!(back.kind, RunKind::Train);
    assert_eq!(back.status, RunStatus::Finished);
    assert_eq!(back.params, a.params);
    assert_eq!(back.tags, a.tags);
    assert_eq!(back.dataset, a.dataset);
    assert_eq!(back.code_version, "0.1.0 (git abc1234)");
    assert_eq!(back.metrics["ndcg@10"], 0.25);
    assert!(back.metrics["nan"].is_nan());
    assert_eq!(back.mlflow, None);

    let line: serde_json::Value = serde_json::from_str(&lines(store.path())[0]).unwrap();
    assert_eq!(line["kind"], "train");
    assert_eq!(line["status"], "finished");
    assert_eq!(line["dataset"]["fingerprint"], "xxh3:42");

    assert_eq!(store.get(&a.id).unwrap().unwrap().id, a.id);
    assert!(store.get("0123").unwrap().is_none());
}

#[test]
fn list_is_newest_first_filtered_and_limited() {
    let tmp = tempfile::tempdir().unwrap();
    let store = RunStore::open(tmp.path()).unwrap();
    // Appended out of start order, as when a long training finishes after a later evaluation.
    let times = [
        ("2026-05-01T10:00:00.000Z", RunKind::Train),
        ("2026-05-03T10:00:00.000Z", RunKind::Evaluate),
        ("2026-05-02T10:00:00Z", RunKind::Train),
        ("2026-05-02T10:00:00.500Z", RunKind::Evaluate),
    ];
    let ids: Vec<String> = times
        .iter()
        .map(|(t, kind)| {
            let r = run(*kind, t);
            store.append(&r).unwrap();
            r.id
        })
        .collect();

    let all = store.list(&RunFilter::default()).unwrap().runs;
    let order: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(order, [&ids[1], &ids[3], &ids[2], &ids[0]]);

    let two = store
        .list(&RunFilter {
            kind: None,
            limit: Some(2),
        })
        .unwrap()
        .runs;
    assert_eq!(two.len(), 2);
    assert_eq!(two[0].id, ids[1]);

    let trains = store
        .list(&RunFilter {
            kind: Some(RunKind::Train),
            limit: Some(5),
        })
        .unwrap()
        .runs;
    let order: Vec<&str> = trains.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(order, [&ids[2], &ids[0]]);
}

#[test]
fn torn_last_line_is_skipped_and_the_next_append_starts_a_new_line() {
    let tmp = tempfile::tempdir().unwrap();
    let store = RunStore::open(tmp.path()).unwrap();
    let first = run(RunKind::Train, "2026-05-01T10:00:00.000Z");
    store.append(&first).unwrap();
    // A writer killed mid-line.
    let whole = serde_json::to_string(&run(RunKind::Train, "2026-05-01T11:00:00.000Z")).unwrap();
    let mut file = OpenOptions::new().append(true).open(store.path()).unwrap();
    file.write_all(&whole.as_bytes()[..whole.len() / 2])
        .unwrap();
    drop(file);

    let listing = store.list(&RunFilter::default()).unwrap();
    assert_eq!(listing.runs.len(), 1);
    assert_eq!(listing.skipped.len(), 1);
    let warning = listing.skipped[0].to_string();
    assert!(
        warning.ends_with(&format!(
            "runs.jsonl:2: invalid record: incomplete last line ({} bytes, no newline): a write \
             was cut off",
            whole.len() / 2
        )),
        "{warning}"
    );

    let second = run(RunKind::Evaluate, "2026-05-01T12:00:00.000Z");
    store.append(&second).unwrap();
    assert_eq!(lines(store.path()).len(), 3);
    let listing = store.list(&RunFilter::default()).unwrap();
    let ids: Vec<&str> = listing.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [second.id.as_str(), first.id.as_str()]);
    assert_eq!(listing.skipped.len(), 1);
    assert_eq!(listing.skipped[0].line, 2);
    assert!(
        listing.skipped[0].message.contains("EOF"),
        "{:?}",
        listing.skipped[0]
    );
}

#[test]
fn corrupt_middle_lines_are_skipped_and_named_by_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let store = RunStore::open(tmp.path()).unwrap();
    let good = serde_json::to_string(&run(RunKind::Train, "2026-05-01T10:00:00.000Z")).unwrap();
    let wrong_kind = good.replacen("\"train\"", "\"fit\"", 1);
    let content = [
        good.as_str(),
        "{not json",
        "",
        "\u{0}\u{1}binary",
        wrong_kind.as_str(),
        "{\"id\": \"x\"}",
        good.as_str(),
    ]
    .join("\n");
    let mut bytes = content.into_bytes();
    bytes.extend_from_slice(b"\n\xff\xfe\n");
    fs::write(store.path(), bytes).unwrap();

    let listing = store.list(&RunFilter::default()).unwrap();
    assert_eq!(listing.runs.len(), 2);
    let skipped: Vec<usize> = listing.skipped.iter().map(|s| s.line).collect();
    assert_eq!(skipped, [2, 4, 5, 6, 8]);
    let path = store.path().display().to_string();
    let messages: Vec<String> = listing.skipped.iter().map(SkippedLine::to_string).collect();
    assert!(
        messages[0].starts_with(&format!("{path}:2: invalid record: ")),
        "{messages:?}"
    );
    assert!(
        messages[2].contains("unknown variant `fit`"),
        "{}",
        messages[2]
    );
    assert!(messages[3].contains("missing field"), "{}", messages[3]);
}

#[test]
fn open_refuses_a_file_where_the_directory_should_be() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("runs");
    fs::write(&file, "x").unwrap();
    let err = RunStore::open(&file).unwrap_err().to_string();
    assert!(err.contains("not a directory"), "{err}");

    fs::create_dir_all(tmp.path().join("d/runs.jsonl")).unwrap();
    let err = RunStore::open(&tmp.path().join("d"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("runs.jsonl: exists but is not a regular file"),
        "{err}"
    );
}

#[test]
fn appending_into_an_unwritable_place_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("blocker"), "x").unwrap();
    // The directory cannot be created: a file is in the way.
    let store = RunStore::open(&tmp.path().join("blocker/runs")).unwrap();
    let mut warnings = Vec::new();
    let err = record(
        &store,
        None,
        run(RunKind::Train, "2026-05-01T10:00:00.000Z"),
        &mut |w| warnings.push(w),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("blocker/runs"), "{err}");
}

fn big_run(writer: &str, n: usize) -> RunRecord {
    // Large enough (about 70 KB) that a non-atomic write would show interleaving.
    RunRecord::start(RunKind::Train, "v", "d", "f")
        .param("writer", writer)
        .param("n", n)
        .param("padding", "x".repeat(70_000))
        .finish(RunStatus::Finished)
}

fn check_whole_lines(store: &RunStore, expected: usize) {
    let text = fs::read_to_string(store.path()).unwrap();
    assert!(text.ends_with('\n'));
    let listing = store.list(&RunFilter::default()).unwrap();
    assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
    assert_eq!(text.lines().count(), expected);
    assert_eq!(listing.runs.len(), expected);
    let ids: HashSet<&str> = listing.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), expected, "ids must be unique");
}

#[test]
fn concurrent_appends_from_threads_write_whole_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                // Each thread opens its own store handle, as separate commands would.
                let store = RunStore::open(&dir).unwrap();
                for n in 0..25 {
                    store.append(&big_run(&format!("thread-{t}"), n)).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    check_whole_lines(&RunStore::open(&dir).unwrap(), 100);
}

const CHILD_DIR_ENV: &str = "TRACKING_TEST_APPEND_DIR";

/// Not a test on its own: the body of each child process of
/// `concurrent_appends_from_processes_write_whole_lines`. Does nothing unless that test set
/// the environment.
#[test]
fn child_process_appender() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let store = RunStore::open(Path::new(&dir)).unwrap();
    for n in 0..40 {
        store
            .append(&big_run(&format!("process-{}", std::process::id()), n))
            .unwrap();
    }
}

#[test]
fn concurrent_appends_from_processes_write_whole_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(&exe)
                // The test's full name in the one integration-test binary (tests/integration.rs).
                .args([
                    "tracking_store::child_process_appender",
                    "--exact",
                    "--test-threads=1",
                ])
                .env(CHILD_DIR_ENV, tmp.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "child appender failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let store = RunStore::open(tmp.path()).unwrap();
    check_whole_lines(&store, 120);
    let writers: HashSet<String> = store
        .list(&RunFilter::default())
        .unwrap()
        .runs
        .iter()
        .map(|r| r.params["writer"].clone())
        .collect();
    assert_eq!(writers.len(), 3);
}
