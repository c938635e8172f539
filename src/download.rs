//! Downloading a MovieLens release from GroupLens (`movierec download NAME`).
//!
//! [`RELEASES`] lists the releases GroupLens serves at `BASE/NAME.zip` (base
//! [`DEFAULT_BASE_URL`], overridable with `--base-url` or [`BASE_URL_ENV`], which the tests
//! point at a local server). [`download`]:
//! 1. fetches `BASE/NAME.zip.md5`, the checksum GroupLens publishes beside each zip (when it
//!    answers 404 there is none, and the download goes ahead unverified, saying so);
//! 2. downloads the zip into `DIR/.NAME.zip.part`, resuming a part left by an interrupted
//!    download with an HTTP `Range` request (a server that ignores it sends the whole file,
//!    which then replaces the part); a progress bar is drawn when asked (on a terminal);
//! 3. checks the whole file's MD5 against the published one: a mismatch removes the part
//!    (so the next attempt starts afresh) and fails, naming both checksums;
//! 4. unpacks it into a temporary sibling of `DIR/NAME` and renames that into place, so
//!    `DIR/NAME` is either absent or complete (the zip's single top folder, `NAME/`, is not
//!    repeated: files land in `DIR/NAME/movies.csv`, …); entries that would escape the
//!    directory are refused. The part is removed once unpacked.
//!
//! An existing `DIR/NAME` is left alone (remove it to download again).

use crate::atomic::StagedDir;
use crate::{Error, Result};
use md5::{Digest, Md5};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// Where GroupLens serves the releases.
pub const DEFAULT_BASE_URL: &str = "https://files.grouplens.org/datasets/movielens";
/// Environment variable overriding [`DEFAULT_BASE_URL`].
pub const BASE_URL_ENV: &str = "MOVIEREC_DOWNLOAD_BASE";

/// A MovieLens release GroupLens publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Release {
    /// The name, also the zip's name without `.zip`.
    pub name: &'static str,
    /// What it holds, for `--help` and error messages.
    pub description: &'static str,
}

/// The releases `movierec download` knows.
pub const RELEASES: &[Release] = &[
    Release {
        name: "ml-latest-small",
        description: "100,836 ratings of 9,742 movies by 610 users, with tags (2018; about 1 MB; bundled in data/)",
    },
    Release {
        name: "ml-latest",
        description: "about 33.8M ratings of 86,537 movies by 330,975 users, with tags and the tag genome (2023; about 335 MB)",
    },
    Release {
        name: "ml-32m",
        description: "about 32M ratings of 87,585 movies by 200,948 users, with tags (2024; about 239 MB)",
    },
    Release {
        name: "ml-25m",
        description: "about 25M ratings of 62,423 movies by 162,541 users, with tags and the tag genome (2019; about 250 MB)",
    },
    Release {
        name: "ml-20m",
        description: "about 20M ratings of 27,278 movies by 138,493 users, with tags and the tag genome (2015; about 190 MB)",
    },
    Release {
        name: "ml-1m",
        description: "1M ratings of 3,883 movies by 6,040 users, in the older .dat layout (2003; about 6 MB)",
    },
    Release {
        name: "ml-100k",
        description: "100,000 ratings of 1,682 movies by 943 users, in the older u.data layout (1998; about 5 MB)",
    },
];

/// How to download.
#[derive(Clone, Debug)]
pub struct DownloadOptions {
    /// Base URL without the trailing slash: the zip is `{base_url}/{name}.zip`.
    pub base_url: String,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            base_url: DEFAULT_BASE_URL.to_string(),
            progress: false,
        }
    }
}

/// What [`download`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct DownloadSummary {
    /// The release directory, `DIR/NAME`.
    pub dir: PathBuf,
    /// It was there already: nothing was downloaded.
    pub already_present: bool,
    /// Bytes of the zip (0 when already present).
    pub zip_bytes: u64,
    /// Bytes that came from an earlier, interrupted download.
    pub resumed_bytes: u64,
    /// The MD5 the zip was checked against, or `None` when GroupLens publishes none.
    pub md5: Option<String>,
    /// Files unpacked.
    pub files: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// The release called `name`; an unknown name is an error listing the known ones.
pub fn release(name: &str) -> Result<&'static Release> {
    RELEASES.iter().find(|r| r.name == name).ok_or_else(|| {
        let known: Vec<&str> = RELEASES.iter().map(|r| r.name).collect();
        Error::invalid(
            "name",
            format!(
                "unknown MovieLens release {name:?}; known: {}",
                known.join(", ")
            ),
        )
    })
}

/// Downloads, checks and unpacks the release `name` into `dir/name` (see the module docs).
pub fn download(name: &str, dir: &Path, options: &DownloadOptions) -> Result<DownloadSummary> {
    let started = Instant::now();
    let release = release(name)?;
    let dest = dir.join(release.name);
    if dest.exists() && fs::read_dir(&dest).is_ok_and(|mut d| d.next().is_some()) {
        return Ok(DownloadSummary {
            dir: dest,
            already_present: true,
            zip_bytes: 0,
            resumed_bytes: 0,
            md5: None,
            files: 0,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let base = options.base_url.trim_end_matches('/');
    let zip_url = format!("{base}/{}.zip", release.name);
    let agent = agent();

    let expected = published_md5(&agent, &format!("{zip_url}.md5"))?;
    if expected.is_none() {
        eprintln!(
            "warning: GroupLens publishes no checksum for {}.zip ({zip_url}.md5 is missing): \
             the download is not verified",
            release.name
        );
    }
    let part = dir.join(format!(".{}.zip.part", release.name));
    let resumed_bytes = fetch_resumable(&agent, &zip_url, &part, options.progress)?;

    let actual = md5_of(&part)?;
    if let Some(expected) = &expected {
        if !expected.eq_ignore_ascii_case(&actual) {
            let _ = fs::remove_file(&part);
            return Err(Error::Download {
                url: zip_url,
                message: format!(
                    "checksum mismatch: GroupLens publishes MD5 {expected}, the download has \
                     {actual}; the download was removed, run the command again to retry"
                ),
            });
        }
    }
    let zip_bytes = fs::metadata(&part).map_err(|e| Error::io(&part, e))?.len();
    let files = unpack(&part, &dest, release.name)?;
    fs::remove_file(&part).map_err(|e| Error::io(&part, e))?;
    Ok(DownloadSummary {
        dir: dest,
        already_present: false,
        zip_bytes,
        resumed_bytes,
        md5: expected,
        files,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        // A stalled transfer fails (and can be resumed) instead of hanging.
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .user_agent(concat!("movierec/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn http_error(url: &str, e: impl std::fmt::Display) -> Error {
    Error::Download {
        url: url.to_string(),
        message: e.to_string(),
    }
}

/// The MD5 published at `url`, `None` if the server has none (404).
fn published_md5(agent: &ureq::Agent, url: &str) -> Result<Option<String>> {
    let mut response = agent.get(url).call().map_err(|e| http_error(url, e))?;
    match response.status().as_u16() {
        200 => {}
        404 => return Ok(None),
        status => return Err(http_error(url, format!("HTTP {status}"))),
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .map_err(|e| http_error(url, e))?;
    parse_md5(&text).map(Some).ok_or_else(|| {
        http_error(
            url,
            format!(
                "no MD5 checksum (32 hexadecimal digits) in {:?}",
                snippet(&text)
            ),
        )
    })
}

/// The first 32-hex-digit word of a `.md5` file (`md5sum`'s `HASH  NAME` or BSD's
/// `MD5 (NAME) = HASH`), lower case.
fn parse_md5(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.len() == 32 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
}

fn snippet(text: &str) -> String {
    text.chars().take(80).collect()
}

/// Downloads `url` into `part`, continuing what is already there; returns the bytes that were
/// already there and kept.
fn fetch_resumable(agent: &ureq::Agent, url: &str, part: &Path, progress: bool) -> Result<u64> {
    let have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let mut response = request.call().map_err(|e| http_error(url, e))?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let length: Option<u64> = header("content-length").and_then(|v| v.trim().parse().ok());
    let (append, kept) = match status {
        206 if have > 0 => {
            let range = header("content-range").unwrap_or_default();
            if content_range_start(&range) != Some(have) {
                return Err(http_error(
                    url,
                    format!("asked for bytes from {have}, the server sent {range:?}"),
                ));
            }
            (true, have)
        }
        200 => (false, 0),
        // The part is already whole (or longer than the file): the checksum will tell.
        416 if have > 0 => return Ok(have),
        status => return Err(http_error(url, format!("HTTP {status}"))),
    };
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .map_err(|e| Error::io(part, e))?;
    let bar = progress_bar(progress, length.map(|l| l + kept), kept);
    let mut reader = response.body_mut().as_reader();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(http_error(
                    url,
                    format!(
                        "{e} after {} bytes; run the command again to resume",
                        kept + received
                    ),
                ));
            }
        };
        file.write_all(&buffer[..n])
            .map_err(|e| Error::io(part, e))?;
        received += n as u64;
        bar.inc(n as u64);
    }
    file.sync_all().map_err(|e| Error::io(part, e))?;
    bar.finish_and_clear();
    if let Some(length) = length {
        if received != length {
            return Err(http_error(
                url,
                format!(
                    "expected {length} bytes, received {received}; run the command again to resume"
                ),
            ));
        }
    }
    Ok(kept)
}

/// The first byte of `bytes FIRST-LAST/TOTAL`.
fn content_range_start(value: &str) -> Option<u64> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    rest.split('-').next()?.trim().parse().ok()
}

fn progress_bar(show: bool, total: Option<u64>, done: u64) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => indicatif::ProgressBar::new(total).with_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        ),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_position(done);
    bar
}

fn md5_of(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Unpacks the zip at `zip_path` into `dest` atomically; returns the number of files. When
/// every entry is inside one top folder (GroupLens's `NAME/`), that folder is `dest`.
fn unpack(zip_path: &Path, dest: &Path, name: &str) -> Result<usize> {
    let bad_zip = |message: String| Error::data(zip_path.display().to_string(), message);
    let file = File::open(zip_path).map_err(|e| Error::io(zip_path, e))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| bad_zip(format!("not a readable zip: {e}")))?;
    let mut paths = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let entry = archive
            .by_index(i)
            .map_err(|e| bad_zip(format!("entry {i}: {e}")))?;
        let path = entry.enclosed_name().ok_or_else(|| {
            bad_zip(format!(
                "entry {:?} would be written outside the release directory",
                String::from_utf8_lossy(entry.name_raw())
            ))
        })?;
        paths.push((path, entry.is_dir()));
    }
    let top = common_top_folder(&paths);
    let staged = StagedDir::new(dest, |_| false)?;
    let mut files = 0;
    for (i, (path, is_dir)) in paths.iter().enumerate() {
        let relative = match &top {
            Some(top) => path.strip_prefix(top).unwrap_or(path),
            None => path.as_path(),
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = staged.path().join(relative);
        if *is_dir {
            fs::create_dir_all(&target).map_err(|e| Error::io(&target, e))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut entry = archive
            .by_index(i)
            .map_err(|e| bad_zip(format!("entry {i}: {e}")))?;
        let mut out = File::create(&target).map_err(|e| Error::io(&target, e))?;
        std::io::copy(&mut entry, &mut out)
            .map_err(|e| bad_zip(format!("{}: {e}", path.display())))?;
        out.sync_all().map_err(|e| Error::io(&target, e))?;
        files += 1;
    }
    if files == 0 {
        return Err(bad_zip(format!("holds no files of {name}")));
    }
    staged.publish()?;
    Ok(files)
}

/// The one folder every entry is in, if there is one.
fn common_top_folder(paths: &[(PathBuf, bool)]) -> Option<PathBuf> {
    let first = |p: &Path| match p.components().next() {
        Some(Component::Normal(c)) => Some(PathBuf::from(c)),
        _ => None,
    };
    let top = first(&paths.first()?.0)?;
    let all_inside = paths
        .iter()
        .all(|(p, is_dir)| p.starts_with(&top) && (p != &top || *is_dir));
    all_inside.then_some(top)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_files_in_both_formats() {
        let hash = "6a4a3a1d4bff3b1e37b1d0a4d2d6c1f0";
        assert_eq!(
            parse_md5(&format!("{hash}  ml-latest-small.zip\n")).as_deref(),
            Some(hash)
        );
        assert_eq!(
            parse_md5(&format!("MD5 (ml-25m.zip) = {}\n", hash.to_uppercase())).as_deref(),
            Some(hash)
        );
        assert_eq!(parse_md5("<html>Not found</html>"), None);
    }

    #[test]
    fn content_ranges() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes 0-0/*"), Some(0));
        assert_eq!(content_range_start("items 1-2/3"), None);
    }

    #[test]
    fn unknown_release_lists_the_known_ones() {
        let e = release("ml-10m").unwrap_err().to_string();
        for r in RELEASES {
            assert!(e.contains(r.name), "{e}");
        }
        assert_eq!(release("ml-25m").unwrap().name, "ml-25m");
    }

    #[test]
    fn top_folder_is_found_only_when_shared() {
        let p = |s: &str, d: bool| (PathBuf::from(s), d);
        assert_eq!(
            common_top_folder(&[p("ml/", true), p("ml/a.csv", false)]),
            Some(PathBuf::from("ml"))
        );
        assert_eq!(
            common_top_folder(&[p("ml/a.csv", false), p("b.csv", false)]),
            None
        );
        assert_eq!(common_top_folder(&[p("a.csv", false)]), None);
    }
}
