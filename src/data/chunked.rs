//! The parallel parser of the big files (ratings: 33.8M rows in ml-latest; genome scores).
//!
//! The file is streamed in blocks of [`BLOCK`] bytes, never read whole: each block is cut at its
//! last line end (the partial line is carried into the next block), split into pieces at line
//! boundaries, and the pieces are parsed on all cores (rayon) while the calling thread reads the
//! next block, so reading (and decompressing a zip entry) overlaps parsing. Pieces are then merged
//! in file order, so rows come out in file order, line numbers are exact, and the first examples
//! of each problem are the first in the file. A row parser allocates nothing for a good row; a
//! problem's message is only written for the examples that are kept.

use super::report::{Checker, FileRef, Reason, Tally};
use super::text::{self, BOM};
use crate::{Error, Result};
use rayon::prelude::*;
use std::io::Read;

/// Bytes read at a time. Two blocks are alive at once (one parsed, one being read).
pub(crate) const BLOCK: usize = 16 << 20;

/// Pieces smaller than this are not worth a thread.
const MIN_PIECE: usize = 256 << 10;

/// Parses one line of a file into a row.
pub(crate) trait RowParser: Sync {
    /// What a good line becomes.
    type Row: Send;

    /// Parses `line` (without its line end; never blank). On a problem, returns its reason and,
    /// only when `explain` is set, a message saying what is wrong (`String::new()` otherwise:
    /// bad rows cost no allocation either, unless their example is kept).
    fn parse(&self, line: &[u8], explain: bool)
        -> std::result::Result<Self::Row, (Reason, String)>;

    /// Reads the line at the start of `bytes` if it has the format's plain, valid shape, returning
    /// the row and the length of the line with its line end (`\n`, `\r\n`, or none at the end);
    /// `None` leaves the line to [`RowParser::parse`], which must give the same row for any line
    /// accepted here. Saves finding the line end first for the bulk of a big file.
    #[inline(always)]
    fn parse_plain(&self, bytes: &[u8]) -> Option<(Self::Row, usize)> {
        let _ = bytes;
        None
    }
}

/// The length of the line end at `p` of `bytes` (0 at the end), if there is one.
#[inline(always)]
pub(crate) fn line_end(bytes: &[u8], p: usize) -> Option<usize> {
    match bytes.get(p..).unwrap_or_default() {
        [] => Some(0),
        [b'\n', ..] | [b'\r'] => Some(1),
        [b'\r', b'\n', ..] => Some(2),
        _ => None,
    }
}

/// Returns the problem `reason`, with the message from `what` when `explain` is set.
pub(crate) fn bad<T>(
    reason: Reason,
    explain: bool,
    what: impl FnOnce() -> String,
) -> std::result::Result<T, (Reason, String)> {
    Err((reason, if explain { what() } else { String::new() }))
}

/// The shape of a file, for the header check and the empty-file message.
pub(crate) struct Format<'a> {
    /// The header's fields, for files that have one.
    pub header: Option<&'a [&'a str]>,
    /// A line of the expected shape, for files without a header.
    pub example: &'a str,
}

/// Receives the rows of each piece in file order, with the checker to count problems it finds.
pub(crate) type Sink<'a, R> = dyn FnMut(&Rows<R>, &mut Checker) -> Result<()> + 'a;

/// Rows parsed from one piece, in file order.
pub(crate) struct Rows<R> {
    pub rows: Vec<R>,
    /// The line of each row, when asked for (empty otherwise).
    pub lines: Vec<u64>,
}

struct Piece<R> {
    rows: Vec<R>,
    /// Line of each row counted from the piece's start (1 = its first line), when asked for.
    row_lines: Vec<u64>,
    /// Lines in the piece.
    lines: u64,
    /// Non-blank lines.
    read: u64,
    tally: Tally,
}

/// A buffer of up to [`BLOCK`] bytes and how much of it holds data. It grows as data comes
/// (a small file never costs a whole block) and is reused from block to block.
struct Block {
    buf: Vec<u8>,
    len: usize,
}

impl Block {
    fn new() -> Block {
        Block {
            buf: Vec::new(),
            len: 0,
        }
    }

    /// Makes room for `len` bytes.
    fn reserve(&mut self, len: usize) {
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
    }

    /// Reads until [`BLOCK`] bytes are held or the reader ends; `true` at the end.
    fn fill(&mut self, reader: &mut dyn Read) -> std::io::Result<bool> {
        while self.len < BLOCK {
            if self.len == self.buf.len() {
                self.reserve((2 * self.len).clamp(1 << 16, BLOCK));
            }
            match reader.read(&mut self.buf[self.len..]) {
                Ok(0) => return Ok(true),
                Ok(n) => self.len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}

/// Streams `reader` through `parser`, handing each piece's rows to `sink` in file order (with
/// their lines when `with_lines`). Checks the header (or that a header-less file is not empty),
/// counts problems into `check` (the first one is an error in strict mode). Returns the number of
/// non-blank data lines read.
pub(crate) fn parse_rows<P: RowParser>(
    reader: &mut dyn Read,
    file: &FileRef,
    format: &Format,
    parser: &P,
    check: &mut Checker,
    with_lines: bool,
    sink: &mut Sink<P::Row>,
) -> Result<u64> {
    let fail = |e: std::io::Error| super::loader::read_error(file, e);
    let mut cur = Block::new();
    let mut next = Block::new();
    let mut eof = cur.fill(reader).map_err(fail)?;
    let mut start = if cur.buf[..cur.len].starts_with(BOM) {
        BOM.len()
    } else {
        0
    };
    if eof && text::trim(&cur.buf[start..cur.len]).is_empty() {
        let expected = match format.header {
            Some(header) => format!("the header {:?}", header.join(",")),
            None => format!("lines like {:?}", format.example),
        };
        return Err(Error::data(
            file.location.clone(),
            format!("file is empty (expected {expected})"),
        ));
    }
    let mut line_base = 0u64;
    if let Some(header) = format.header {
        let data = &cur.buf[start..cur.len];
        let end = memchr::memchr(b'\n', data).unwrap_or(data.len());
        let first = String::from_utf8_lossy(&data[..end]);
        let found: Vec<&str> = first
            .trim_end_matches('\r')
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .collect();
        if found != header {
            return Err(Error::data(
                file.at(1),
                format!(
                    "unexpected header {} (expected {:?})",
                    text::show(found.join(",").as_bytes()),
                    header.join(",")
                ),
            ));
        }
        start += (end + 1).min(data.len());
        line_base = 1;
    }
    let mut read = 0u64;
    // Row buffers of the pieces, reused from block to block.
    let mut pool: Vec<Vec<P::Row>> = Vec::new();
    loop {
        let data = &cur.buf[start..cur.len];
        let complete = if eof {
            data.len()
        } else {
            memchr::memrchr(b'\n', data).map_or(0, |i| i + 1)
        };
        if complete == 0 && !eof {
            if start > 0 {
                // A partial line behind the header: move it to the front and read on.
                cur.buf.copy_within(start..cur.len, 0);
                cur.len -= start;
                start = 0;
                eof = cur.fill(reader).map_err(fail)?;
                continue;
            }
            // A whole block without a line end: no row of any format is that long.
            line_base += 1;
            read += 1;
            check.problem(
                file,
                line_base,
                Reason::LongLine,
                format!("line longer than {} MiB", BLOCK >> 20),
            )?;
            loop {
                cur.len = 0;
                eof = cur.fill(reader).map_err(fail)?;
                if let Some(i) = memchr::memchr(b'\n', &cur.buf[..cur.len]) {
                    start = i + 1;
                    break;
                }
                if eof {
                    start = cur.len;
                    break;
                }
            }
            continue;
        }
        let (done, rest) = data.split_at(complete);
        next.reserve(rest.len());
        next.buf[..rest.len()].copy_from_slice(rest);
        next.len = rest.len();
        let (pieces, next_eof) = if eof {
            (parse_block(done, parser, with_lines, &mut pool), true)
        } else {
            let (pieces, filled) = std::thread::scope(|scope| {
                let parsing = scope.spawn(|| parse_block(done, parser, with_lines, &mut pool));
                let filled = next.fill(reader);
                let pieces = parsing
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (pieces, filled)
            });
            (pieces, filled.map_err(fail)?)
        };
        for mut piece in pieces {
            piece.tally.offset_lines(line_base);
            check.merge(file, piece.tally)?;
            read += piece.read;
            let lines = if with_lines {
                piece.row_lines.iter().map(|l| l + line_base).collect()
            } else {
                Vec::new()
            };
            line_base += piece.lines;
            let rows = Rows {
                rows: piece.rows,
                lines,
            };
            sink(&rows, check)?;
            pool.push(rows.rows);
        }
        if eof {
            return Ok(read);
        }
        std::mem::swap(&mut cur, &mut next);
        start = 0;
        eof = next_eof;
    }
}

/// Splits `bytes` (whole lines) into pieces at line ends and parses them on all cores, into
/// row buffers taken from `pool`.
fn parse_block<P: RowParser>(
    bytes: &[u8],
    parser: &P,
    with_lines: bool,
    pool: &mut Vec<Vec<P::Row>>,
) -> Vec<Piece<P::Row>> {
    let wanted = (rayon::current_num_threads() * 4).min(bytes.len() / MIN_PIECE);
    if wanted <= 1 {
        let buffer = pool.pop().unwrap_or_default();
        return vec![parse_piece(bytes, parser, with_lines, buffer)];
    }
    let mut cuts = vec![0];
    for k in 1..wanted {
        let from = (bytes.len() * k / wanted).max(*cuts.last().unwrap_or(&0));
        match memchr::memchr(b'\n', &bytes[from..]) {
            Some(i) if from + i + 1 < bytes.len() => cuts.push(from + i + 1),
            _ => break,
        }
    }
    cuts.push(bytes.len());
    cuts.dedup();
    let buffers: Vec<Vec<P::Row>> = (1..cuts.len())
        .map(|_| pool.pop().unwrap_or_default())
        .collect();
    cuts.par_windows(2)
        .zip(buffers)
        .map(|(w, buffer)| parse_piece(&bytes[w[0]..w[1]], parser, with_lines, buffer))
        .collect()
}

fn parse_piece<P: RowParser>(
    bytes: &[u8],
    parser: &P,
    with_lines: bool,
    mut rows: Vec<P::Row>,
) -> Piece<P::Row> {
    rows.clear();
    rows.reserve(bytes.len() / 20);
    let mut piece = Piece {
        rows,
        row_lines: Vec::new(),
        lines: 0,
        read: 0,
        tally: Tally::default(),
    };
    let mut pos = 0;
    while pos < bytes.len() {
        if let Some((row, used)) = parser.parse_plain(&bytes[pos..]) {
            piece.lines += 1;
            piece.read += 1;
            piece.rows.push(row);
            if with_lines {
                piece.row_lines.push(piece.lines);
            }
            pos += used;
            continue;
        }
        let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
        let mut line = &bytes[pos..end];
        pos = end + 1;
        piece.lines += 1;
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        piece.read += 1;
        match parser.parse(line, false) {
            Ok(row) => {
                piece.rows.push(row);
                if with_lines {
                    piece.row_lines.push(piece.lines);
                }
            }
            Err((reason, _)) => piece.tally.add(piece.lines, reason, || {
                parser
                    .parse(line, true)
                    .err()
                    .map(|e| e.1)
                    .unwrap_or_default()
            }),
        }
    }
    piece
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::report::LoadReport;
    use crate::data::Layout;

    /// Rows of one number each; `x` is a problem.
    struct Numbers;

    impl RowParser for Numbers {
        type Row = u32;
        fn parse(&self, line: &[u8], explain: bool) -> std::result::Result<u32, (Reason, String)> {
            match text::parse_u32(line) {
                Some(n) => Ok(n),
                None => bad(Reason::BadNumber, explain, || {
                    format!("not a number: {}", text::show(line))
                }),
            }
        }
    }

    fn run(input: &[u8], strict: bool) -> (Result<u64>, Vec<u32>, Vec<u64>, LoadReport) {
        let file = FileRef {
            name: "n.txt".into(),
            location: "d/n.txt".into(),
        };
        let mut report = LoadReport::new("d".into(), Layout::Csv);
        let mut check = Checker {
            report: &mut report,
            strict,
        };
        let (mut rows, mut lines) = (Vec::new(), Vec::new());
        let format = Format {
            header: Some(&["n"]),
            example: "",
        };
        let result = parse_rows(
            &mut &input[..],
            &file,
            &format,
            &Numbers,
            &mut check,
            true,
            &mut |r, _| {
                rows.extend_from_slice(&r.rows);
                lines.extend_from_slice(&r.lines);
                Ok(())
            },
        );
        (result, rows, lines, report)
    }

    #[test]
    fn rows_and_lines_come_out_in_file_order_across_blocks_and_pieces() {
        // About 3 blocks of lines, with a bad line every 100,000 and CRLF line ends.
        let mut input = b"\xEF\xBB\xBFn\r\n".to_vec();
        let n = 5_000_000u32;
        for i in 0..n {
            if i % 100_000 == 7 {
                input.extend_from_slice(b"x\r\n");
            } else {
                input.extend_from_slice(format!("{i}\r\n").as_bytes());
            }
        }
        input.extend_from_slice(b"\n  \n42"); // blank lines, and no line end at the end
        assert!(input.len() > 2 * BLOCK);
        let (result, rows, lines, report) = run(&input, false);
        assert_eq!(result.unwrap(), u64::from(n) + 1);
        assert_eq!(rows.len(), n as usize - 50 + 1);
        let mut expected = 0;
        for (row, line) in rows.iter().zip(&lines) {
            if expected % 100_000 == 7 {
                expected += 1;
            }
            if expected == n {
                assert_eq!((*row, *line), (42, u64::from(n) + 4));
                continue;
            }
            assert_eq!((*row, *line), (expected, u64::from(expected) + 2));
            expected += 1;
        }
        let issue = report.issue("n.txt", Reason::BadNumber).unwrap();
        assert_eq!(issue.count, 50);
        assert_eq!(
            issue.examples,
            vec![
                "d/n.txt:9: not a number: \"x\"",
                "d/n.txt:100009: not a number: \"x\"",
                "d/n.txt:200009: not a number: \"x\""
            ]
        );
        let (result, ..) = run(&input, true);
        assert_eq!(
            result.unwrap_err().to_string(),
            "d/n.txt:9: not a number: \"x\""
        );
    }

    #[test]
    fn a_line_longer_than_a_block_is_one_problem_and_reading_goes_on() {
        let mut input = b"n\n1\n".to_vec();
        input.extend(std::iter::repeat_n(b'7', BLOCK + 10));
        input.extend_from_slice(b"\n2\n");
        let (result, rows, lines, report) = run(&input, false);
        assert_eq!(result.unwrap(), 3);
        assert_eq!((rows, lines), (vec![1, 2], vec![2, 4]));
        assert_eq!(report.issue("n.txt", Reason::LongLine).unwrap().count, 1);
    }

    #[test]
    fn an_empty_file_or_a_wrong_header_is_an_error_naming_the_file() {
        let (result, ..) = run(b" \r\n", false);
        assert_eq!(
            result.unwrap_err().to_string(),
            "d/n.txt: file is empty (expected the header \"n\")"
        );
        let (result, ..) = run(b"m\n1\n", false);
        assert_eq!(
            result.unwrap_err().to_string(),
            "d/n.txt:1: unexpected header \"m\" (expected \"n\")"
        );
        let (result, rows, ..) = run(b"n", false);
        assert_eq!((result.unwrap(), rows), (0, vec![]));
    }
}
