//! `movierec download` against a local HTTP server (no internet): a small server on a thread
//! serves a zip of `tests/fixtures/tiny` made at test time, its `.md5`, and `Range` requests.

use crate::common;

use common::{movierec, stderr, stdout};
use md5::{Digest, Md5};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const NAME: &str = "ml-latest-small";
const FILES: [&str; 4] = ["movies.csv", "ratings.csv", "links.csv", "tags.csv"];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny")
}

/// A zip laid out as GroupLens's: a top folder `NAME/` holding the CSV files, deflated.
fn release_zip() -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    writer.add_directory(format!("{NAME}/"), options).unwrap();
    for file in FILES {
        writer
            .start_file(format!("{NAME}/{file}"), options)
            .unwrap();
        writer
            .write_all(&std::fs::read(fixture().join(file)).unwrap())
            .unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How the server behaves; changed between runs of the binary.
#[derive(Clone, Default)]
struct Behaviour {
    /// `(path, body)` served with 200 (206 for a range); anything else is 404.
    files: Vec<(String, Vec<u8>)>,
    /// Answer range requests with the whole file (200), as some servers do.
    ignore_ranges: bool,
    /// Close the connection after this many body bytes (announcing the full length).
    cut_after: Option<usize>,
}

/// What the server saw: `(path, Range header, body bytes sent)` per request.
type Log = Arc<Mutex<Vec<(String, Option<String>, usize)>>>;

struct Server {
    base: String,
    behaviour: Arc<Mutex<Behaviour>>,
    log: Log,
}

impl Server {
    fn start(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let behaviour = Arc::new(Mutex::new(behaviour));
        let log: Log = Arc::default();
        let (b, l) = (behaviour.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let behaviour = b.lock().unwrap().clone();
                let _ = serve(stream, &behaviour, &l);
            }
        });
        Server {
            base,
            behaviour,
            log,
        }
    }

    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    fn requests(&self) -> Vec<(String, Option<String>, usize)> {
        self.log.lock().unwrap().clone()
    }

    fn download(&self, dir: &Path, name: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_movierec"))
            .args(["download", name, "--dir", dir.to_str().unwrap()])
            .env("MOVIEREC_DOWNLOAD_BASE", &self.base)
            .env("MOVIEREC_RUNS_DIR", dir.join("runs"))
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .output()
            .unwrap()
    }
}

/// Answers one HTTP/1.1 request and closes the connection.
fn serve(mut stream: TcpStream, behaviour: &Behaviour, log: &Log) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_string());
            }
        }
    }
    let Some((_, body)) = behaviour.files.iter().find(|(p, _)| *p == path) else {
        stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
        )?;
        log.lock().unwrap().push((path, range, 0));
        return Ok(());
    };
    let start = range
        .as_deref()
        .filter(|_| !behaviour.ignore_ranges)
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse::<usize>().ok());
    let head = match start {
        Some(start) if start >= body.len() => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes())?;
            log.lock().unwrap().push((path, range, 0));
            return Ok(());
        }
        Some(start) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len() - 1,
            body.len(),
            body.len() - start
        ),
        None => format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ),
    };
    let body = &body[start.unwrap_or(0)..];
    let sent = behaviour.cut_after.unwrap_or(body.len()).min(body.len());
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body[..sent])?;
    stream.flush()?;
    log.lock().unwrap().push((path, range, sent));
    Ok(())
}

fn serving(zip: &[u8], md5: Option<String>) -> Behaviour {
    let mut files = vec![(format!("/{NAME}.zip"), zip.to_vec())];
    if let Some(md5) = md5 {
        files.push((
            format!("/{NAME}.zip.md5"),
            format!("{md5}  {NAME}.zip\n").into_bytes(),
        ));
    }
    Behaviour {
        files,
        ..Behaviour::default()
    }
}

/// The release was unpacked completely, and nothing else is left in `dir`.
fn assert_unpacked(dir: &Path) {
    for file in FILES {
        assert_eq!(
            std::fs::read(dir.join(NAME).join(file)).unwrap(),
            std::fs::read(fixture().join(file)).unwrap(),
            "{file}"
        );
    }
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, [NAME], "{left:?}");
    movierec::data::load(&dir.join(NAME)).expect("the unpacked release loads");
}

#[test]
fn download_verifies_and_unpacks_atomically() {
    let zip = release_zip();
    let server = Server::start(serving(&zip, Some(md5_hex(&zip))));
    let root = tempfile::tempdir().unwrap();
    let output = server.download(root.path(), NAME);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!("MD5 {} verified", md5_hex(&zip))),
        "{}",
        stdout(&output)
    );
    assert_unpacked(root.path());
    // No progress bar when stderr is not a terminal.
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));

    // A second time: nothing is fetched.
    let requests = server.requests().len();
    let output = server.download(root.path(), NAME);
    assert!(output.status.success());
    assert!(
        stdout(&output).contains("already there"),
        "{}",
        stdout(&output)
    );
    assert_eq!(server.requests().len(), requests);
}

#[test]
fn download_resumes_a_truncated_part_with_a_range_request() {
    let zip = release_zip();
    let server = Server::start(serving(&zip, Some(md5_hex(&zip))));
    let root = tempfile::tempdir().unwrap();
    let half = zip.len() / 2;
    std::fs::write(root.path().join(format!(".{NAME}.zip.part")), &zip[..half]).unwrap();
    let output = server.download(root.path(), NAME);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("resumed"), "{}", stdout(&output));
    let zip_requests: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.0.ends_with(".zip"))
        .collect();
    assert_eq!(
        zip_requests,
        [(
            format!("/{NAME}.zip"),
            Some(format!("bytes={half}-")),
            zip.len() - half
        )]
    );
    assert_unpacked(root.path());
}

#[test]
fn an_interrupted_download_is_resumed_by_the_next_run() {
    let zip = release_zip();
    let server = Server::start(Behaviour {
        cut_after: Some(300),
        ..serving(&zip, Some(md5_hex(&zip)))
    });
    let root = tempfile::tempdir().unwrap();
    let output = server.download(root.path(), NAME);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("resume"), "{}", stderr(&output));
    let part = root.path().join(format!(".{NAME}.zip.part"));
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 300);
    assert!(!root.path().join(NAME).exists());

    server.set(serving(&zip, Some(md5_hex(&zip))));
    let output = server.download(root.path(), NAME);
    assert!(output.status.success(), "{}", stderr(&output));
    let last = server.requests().pop().unwrap();
    assert_eq!(last.1.as_deref(), Some("bytes=300-"));
    assert_unpacked(root.path());
}

#[test]
fn a_server_ignoring_ranges_replaces_the_part() {
    let zip = release_zip();
    let server = Server::start(Behaviour {
        ignore_ranges: true,
        ..serving(&zip, Some(md5_hex(&zip)))
    });
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join(format!(".{NAME}.zip.part")),
        b"stale bytes",
    )
    .unwrap();
    let output = server.download(root.path(), NAME);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stdout(&output).contains("resumed"), "{}", stdout(&output));
    assert_unpacked(root.path());
}

#[test]
fn a_checksum_mismatch_is_refused_and_leaves_nothing() {
    let zip = release_zip();
    let wrong = md5_hex(b"something else");
    let server = Server::start(serving(&zip, Some(wrong.clone())));
    let root = tempfile::tempdir().unwrap();
    let output = server.download(root.path(), NAME);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(
        err.contains(&wrong) && err.contains(&md5_hex(&zip)),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
}

#[test]
fn without_a_published_checksum_the_download_says_it_is_unverified() {
    let zip = release_zip();
    let server = Server::start(serving(&zip, None));
    let root = tempfile::tempdir().unwrap();
    let output = server.download(root.path(), NAME);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("not verified"),
        "{}",
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("not verified"),
        "{}",
        stdout(&output)
    );
    assert_unpacked(root.path());
}

#[test]
fn a_missing_zip_is_an_error_naming_the_url() {
    let server = Server::start(Behaviour::default());
    let root = tempfile::tempdir().unwrap();
    let output = server.download(root.path(), "ml-25m");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("/ml-25m.zip: HTTP 404"),
        "{}",
        stderr(&output)
    );
    assert!(!root.path().join("ml-25m").exists());
}

#[test]
fn an_unknown_release_lists_the_known_ones() {
    let output = movierec(&["download", "ml-10m", "--dir", "unused"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("unknown MovieLens release \"ml-10m\""),
        "{err}"
    );
    for name in [
        "ml-latest-small",
        "ml-latest",
        "ml-32m",
        "ml-25m",
        "ml-20m",
        "ml-1m",
        "ml-100k",
    ] {
        assert!(err.contains(name), "{name}: {err}");
    }
    assert!(!Path::new("unused").exists());
}

#[test]
fn a_zip_entry_escaping_the_release_is_refused_with_its_name() {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    writer.start_file("../evil.csv", options).unwrap();
    writer.write_all(b"userId,movieId\n").unwrap();
    let zip = writer.finish().unwrap().into_inner();
    let server = Server::start(serving(&zip, Some(md5_hex(&zip))));
    let root = tempfile::tempdir().unwrap();
    let output = server.download(root.path(), NAME);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains(r#"entry "../evil.csv" would be written outside"#),
        "{err}"
    );
    assert!(!err.contains("Ok("), "{err}");
    assert!(
        !root.path().join("evil.csv").exists()
            && !root.path().parent().unwrap().join("evil.csv").exists()
    );
}
