//! The local run store: an append-only JSON Lines file, `runs.jsonl`, one [`RunRecord`] a line.
//!
//! # Writing
//!
//! [`RunStore::append`] serialises the record to one line (compact JSON never contains a raw
//! newline), takes an exclusive `flock` on the file, and writes the whole line with a single
//! `write_all` on a file opened in append mode, then `fsync`s it. Concurrent appends from threads
//! or processes therefore never interleave. If the file does not end with a newline (a writer
//! was killed mid-line), the append first ends that torn line, so the new record starts on a
//! line of its own and stays readable.
//!
//! # Reading
//!
//! Readers take a shared lock, so they never see a line being written. A line that is not a
//! valid record — a torn last line left by a crash, or a line damaged later, wherever it is —
//! is **skipped, not fatal**: one bad line must not hide every other run. Each skipped line is
//! returned in [`Listing::skipped`] as a [`SkippedLine`] whose `Display` names the file and line
//! (`…/runs.jsonl:17: invalid record: …`), for the caller to print as a warning. Blank lines are
//! ignored. The whole file is read on every listing, which is fine for the few thousand runs a
//! store holds.

use super::{Error, Result, RunKind, RunRecord};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The file name of the store inside its directory.
pub const RUNS_FILE: &str = "runs.jsonl";

/// Which runs [`RunStore::list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs of this kind; all kinds when `None`.
    pub kind: Option<RunKind>,
    /// At most this many (the newest); all when `None`.
    pub limit: Option<usize>,
}

/// A line of the store that could not be read as a record, and was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// The store file.
    pub path: PathBuf,
    /// The 1-based line number.
    pub line: usize,
    /// Why it is not a record.
    pub message: String,
}

impl fmt::Display for SkippedLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: invalid record: {}",
            self.path.display(),
            self.line,
            self.message
        )
    }
}

/// The result of reading the store: runs, and the lines that were skipped.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The runs, newest first (by `started_at`; ties and unparsable times by position in the
    /// file, later first).
    pub runs: Vec<RunRecord>,
    /// Lines that are not valid records, in file order. Print them as warnings.
    pub skipped: Vec<SkippedLine>,
}

/// A directory holding `runs.jsonl`.
#[derive(Debug, Clone)]
pub struct RunStore {
    dir: PathBuf,
    file: PathBuf,
}

impl RunStore {
    /// The store in `dir`. Nothing is created until the first [`append`](RunStore::append);
    /// a missing directory is an empty store. Fails if `dir` or its `runs.jsonl` exists but is
    /// not a directory or a file respectively.
    pub fn open(dir: &Path) -> Result<Self> {
        if dir.exists() && !dir.is_dir() {
            return Err(Error::store(
                dir.display().to_string(),
                "the runs directory exists but is not a directory",
            ));
        }
        let file = dir.join(RUNS_FILE);
        if file.exists() && !file.is_file() {
            return Err(Error::store(
                file.display().to_string(),
                "exists but is not a regular file",
            ));
        }
        Ok(RunStore {
            dir: dir.to_path_buf(),
            file,
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store's file, `<dir>/runs.jsonl`.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Appends `record` as one line, creating the directory and file if needed.
    pub fn append(&self, record: &RunRecord) -> Result<()> {
        if !record.duration_seconds.is_finite() {
            return Err(Error::store(
                self.file.display().to_string(),
                format!(
                    "run {} has duration {}, which cannot be stored",
                    record.id, record.duration_seconds
                ),
            ));
        }
        let json = serde_json::to_string(record).map_err(|e| {
            Error::store(
                self.file.display().to_string(),
                format!("run {} cannot be serialised: {e}", record.id),
            )
        })?;
        debug_assert!(!json.contains('\n'));

        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let io = |e| Error::io(&self.file, e);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.file)
            .map_err(io)?;
        lock(&file, true).map_err(io)?;

        let mut line = Vec::with_capacity(json.len() + 2);
        if ends_mid_line(&mut file).map_err(io)? {
            line.push(b'\n');
        }
        line.extend_from_slice(json.as_bytes());
        line.push(b'\n');
        file.write_all(&line).map_err(io)?;
        file.sync_data().map_err(io)?;
        // The lock is released when `file` is closed.
        Ok(())
    }

    /// Every readable record in file order (oldest append first), and the skipped lines.
    pub fn scan(&self) -> Result<Listing> {
        let io = |e| Error::io(&self.file, e);
        let mut file = match File::open(&self.file) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Listing::default()),
            Err(e) => return Err(io(e)),
        };
        lock(&file, false).map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        drop(file);

        let mut listing = Listing::default();
        let complete = bytes.last().is_none_or(|&b| b == b'\n');
        let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        // `split` yields an empty piece after the final newline; a torn tail is the last piece.
        let last = lines.len() - 1;
        for (index, line) in lines.into_iter().enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let skip = |message: String| SkippedLine {
                path: self.file.clone(),
                line: index + 1,
                message,
            };
            if index == last && !complete {
                listing.skipped.push(skip(format!(
                    "incomplete last line ({} bytes, no newline): a write was cut off",
                    line.len()
                )));
                continue;
            }
            match serde_json::from_slice::<RunRecord>(line) {
                Ok(record) => listing.runs.push(record),
                Err(e) => listing.skipped.push(skip(e.to_string())),
            }
        }
        Ok(listing)
    }

    /// The runs matching `filter`, newest first, and the lines that were skipped.
    pub fn list(&self, filter: &RunFilter) -> Result<Listing> {
        let Listing { runs, skipped } = self.scan()?;
        let mut runs: Vec<(Option<i64>, usize, RunRecord)> = runs
            .into_iter()
            .enumerate()
            .filter(|(_, run)| filter.kind.is_none_or(|kind| run.kind == kind))
            .map(|(position, run)| (run.started_at_unix_ms(), position, run))
            .collect();
        runs.sort_by_key(|(started, position, _)| std::cmp::Reverse((*started, *position)));
        let limit = filter.limit.unwrap_or(usize::MAX);
        Ok(Listing {
            runs: runs
                .into_iter()
                .take(limit)
                .map(|(_, _, run)| run)
                .collect(),
            skipped,
        })
    }

    /// The run with id `id` (the last one appended, should the id occur twice), if any.
    pub fn get(&self, id: &str) -> Result<Option<RunRecord>> {
        Ok(self.scan()?.runs.into_iter().rev().find(|run| run.id == id))
    }
}

/// Whether the file's last byte is not a newline (it is non-empty and its last line is torn).
fn ends_mid_line(file: &mut File) -> std::io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Takes an advisory lock on the whole file (`flock` on Unix), waiting for it; released when
/// the file is closed.
fn lock(file: &File, exclusive: bool) -> std::io::Result<()> {
    if exclusive {
        file.lock()
    } else {
        file.lock_shared()
    }
}
