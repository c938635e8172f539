//! The state of one load shared by the layout readers: the source, the fingerprint every byte
//! read goes into, the progress bar, the report and strictness; plus the two readers of the
//! small files (CSV records, and plain lines for the header-less layouts).

use super::report::{Checker, FileRef, FileSummary, LoadReport, Reason};
use super::source::Source;
use super::text::{self, CsvReader, Encoding, Lines, Record};
use super::{Link, Rating, RawMovie, Tag, TagGenome};
use crate::progress::Progress;
use crate::{Error, Result};
use std::collections::HashMap;
use std::io::Read;
use xxhash_rust::xxh3::Xxh3;

/// What a layout reader hands back.
#[derive(Default)]
pub(crate) struct Parts {
    pub movies: Vec<RawMovie>,
    /// The line of each movie in the movies file (for the report's examples).
    pub movie_lines: HashMap<u32, u64>,
    pub links: HashMap<u32, Link>,
    pub ratings: Vec<Rating>,
    pub tags: Vec<Tag>,
    pub genome: Option<TagGenome>,
}

/// One load in progress.
pub(crate) struct Loader<'s> {
    pub source: &'s Source,
    pub fingerprint: Xxh3,
    pub progress: Progress,
    pub report: LoadReport,
    pub strict: bool,
    /// When the file being read was opened.
    pub file_started: std::time::Instant,
}

impl Loader<'_> {
    /// The file `name` as named in the report and in messages.
    pub(crate) fn file(&self, name: &str) -> FileRef {
        FileRef {
            name: name.to_string(),
            location: self.source.location(name),
        }
    }

    /// Reads file `name` once through: its bytes go into the fingerprint and the progress bar,
    /// its problems into the report (or an error, in strict mode).
    pub(crate) fn read<T>(
        &mut self,
        name: &str,
        read: impl FnOnce(&mut dyn Read, &mut Checker) -> Result<T>,
    ) -> Result<T> {
        self.progress.set_label(name);
        self.file_started = std::time::Instant::now();
        self.fingerprint.update(name.as_bytes());
        let source = self.source;
        let mut bytes = 0u64;
        let out = source.read(name, |inner| {
            let mut tracked = Tracked {
                inner,
                fingerprint: Some(&mut self.fingerprint),
                progress: &self.progress,
                bytes: &mut bytes,
            };
            let mut check = Checker {
                report: &mut self.report,
                strict: self.strict,
            };
            read(&mut tracked, &mut check)
        })?;
        self.fingerprint.update(&bytes.to_le_bytes());
        Ok(out)
    }

    /// Reads file `name` again, for facts only found after a first pass (the lines of duplicate
    /// ratings): not fingerprinted, not shown, problems not reported again.
    pub(crate) fn reread<T>(
        &self,
        name: &str,
        read: impl FnOnce(&mut dyn Read, &mut Checker) -> Result<T>,
    ) -> Result<T> {
        let mut scratch = LoadReport::new(String::new(), self.report.layout);
        self.source.read(name, |inner| {
            let mut check = Checker {
                report: &mut scratch,
                strict: false,
            };
            read(inner, &mut check)
        })
    }

    /// Adds a file's row counts to the report, and the time since it was opened.
    pub(crate) fn summary(&mut self, name: &str, rows: u64, kept: u64) {
        self.report.files.push(FileSummary {
            file: name.to_string(),
            rows,
            kept,
            seconds: self.file_started.elapsed().as_secs_f64(),
        });
    }
}

/// A reader that feeds the fingerprint and the progress bar with every byte read.
struct Tracked<'a> {
    inner: &'a mut dyn Read,
    fingerprint: Option<&'a mut Xxh3>,
    progress: &'a Progress,
    bytes: &'a mut u64,
}

impl Read for Tracked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(fingerprint) = self.fingerprint.as_deref_mut() {
            fingerprint.update(&buf[..n]);
        }
        self.progress.inc(n as u64);
        *self.bytes += n as u64;
        Ok(n)
    }
}

/// A read failure in the middle of a file (a disk error, a corrupt zip entry).
pub(crate) fn read_error(file: &FileRef, e: impl std::fmt::Display) -> Error {
    Error::data(file.location.clone(), format!("cannot be read: {e}"))
}

/// The movie ids of the movies file, for the "unknown movie" check of every other file.
pub(crate) enum KnownMovies {
    /// One bit per id up to the largest (MovieLens ids stay below a few hundred thousand).
    Bits(Vec<u64>),
    /// Sorted ids, when some id is too large for a bitmap.
    Sorted(Vec<u32>),
}

impl KnownMovies {
    pub(crate) fn new(movies: &[RawMovie]) -> KnownMovies {
        KnownMovies::of_ids(movies.iter().map(|m| m.movie_id))
    }

    /// The set of `ids`.
    pub(crate) fn of_ids(ids: impl Iterator<Item = u32> + Clone) -> KnownMovies {
        let max = ids.clone().max().unwrap_or(0);
        if max < 1 << 26 {
            let mut bits = vec![0u64; max as usize / 64 + 1];
            for id in ids {
                bits[id as usize / 64] |= 1 << (id % 64);
            }
            KnownMovies::Bits(bits)
        } else {
            let mut ids: Vec<u32> = ids.collect();
            ids.sort_unstable();
            KnownMovies::Sorted(ids)
        }
    }

    #[inline(always)]
    pub(crate) fn contains(&self, id: u32) -> bool {
        match self {
            KnownMovies::Bits(bits) => bits
                .get(id as usize / 64)
                .is_some_and(|word| word & (1 << (id % 64)) != 0),
            KnownMovies::Sorted(ids) => ids.binary_search(&id).is_ok(),
        }
    }
}

/// Reads a CSV file with a header (quoted fields, `\r\n`, a byte-order mark all handled),
/// handing each record with the header's number of fields and its line to `row`; records with
/// another number of fields are counted as problems. A missing or different header, or an empty
/// file, is an error naming the file. Returns the number of records read.
pub(crate) fn read_csv(
    reader: &mut dyn Read,
    file: &FileRef,
    header: &[&str],
    check: &mut Checker,
    mut row: impl FnMut(u64, &Record, &mut Checker) -> Result<()>,
) -> Result<u64> {
    let mut records = CsvReader::new(reader);
    let expected = header.join(",");
    let (line, first) = match records.next_record().map_err(|e| read_error(file, e))? {
        Some(first) => first,
        None => {
            return Err(Error::data(
                file.location.clone(),
                format!("file is empty (expected the header {expected:?})"),
            ))
        }
    };
    let found: Vec<String> = (0..first.len())
        .map(|i| String::from_utf8_lossy(text::trim(first.field(i))).into_owned())
        .collect();
    if found != header {
        return Err(Error::data(
            file.at(line),
            format!(
                "unexpected header {} (expected {expected:?})",
                text::show(found.join(",").as_bytes())
            ),
        ));
    }
    let mut rows = 0;
    while let Some((line, record)) = records.next_record().map_err(|e| read_error(file, e))? {
        rows += 1;
        if record.len() != header.len() {
            let last = record.last_line;
            let mut what = format!("expected {} fields, found {}", header.len(), record.len());
            if last > line {
                what += &format!(" (a quoted field runs on to line {last})");
            }
            check.problem(file, line, Reason::FieldCount, what)?;
            continue;
        }
        row(line, record, check)?;
    }
    Ok(rows)
}

/// Reads a header-less text file line by line, handing each non-blank line and its number to
/// `row`. A file without any is an error naming the file and showing `example`, a line of the
/// expected shape. Returns the number of non-blank lines.
pub(crate) fn read_lines(
    reader: &mut dyn Read,
    file: &FileRef,
    example: &str,
    check: &mut Checker,
    mut row: impl FnMut(u64, &[u8], &mut Checker) -> Result<()>,
) -> Result<u64> {
    let mut lines = Lines::new(reader);
    let mut rows = 0;
    while let Some((number, line)) = lines.next_line().map_err(|e| read_error(file, e))? {
        if text::trim(line).is_empty() {
            continue;
        }
        rows += 1;
        row(number, line, check)?;
    }
    if rows == 0 {
        return Err(Error::data(
            file.location.clone(),
            format!("file is empty (expected lines like {example:?})"),
        ));
    }
    Ok(rows)
}

/// A text field, trimmed. Where UTF-8 is expected, bytes that are not valid UTF-8 are read as
/// Latin-1 and counted (the row is kept).
pub(crate) fn text_field(
    file: &FileRef,
    line: u64,
    bytes: &[u8],
    encoding: Encoding,
    check: &mut Checker,
) -> Result<String> {
    let (value, repaired) = text::decode(text::trim(bytes), encoding);
    if repaired {
        check.problem(
            file,
            line,
            Reason::NotUtf8,
            format!("{} is not valid UTF-8", text::show(bytes)),
        )?;
    }
    Ok(value)
}

/// Genres as MovieLens writes them (`Adventure|Animation`), `(no genres listed)` being none.
pub(crate) fn genres(text: &str) -> Vec<String> {
    text.split('|')
        .map(str::trim)
        .filter(|g| !g.is_empty() && *g != "(no genres listed)")
        .map(str::to_string)
        .collect()
}

/// A whole-number id field (`name` in messages), or `None` with the problem counted.
pub(crate) fn id(
    file: &FileRef,
    line: u64,
    name: &str,
    bytes: &[u8],
    check: &mut Checker,
) -> Result<Option<u32>> {
    match text::parse_u32(bytes) {
        Some(id) => Ok(Some(id)),
        None => {
            let what = format!("{name}: cannot read {} as an id", text::show(bytes));
            check.problem(file, line, Reason::BadNumber, what)?;
            Ok(None)
        }
    }
}
