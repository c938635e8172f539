//! Byte-level helpers shared by every layout: hand-written number parsing (no allocation, no
//! panics), text decoding (UTF-8, or Latin-1 for the releases documented as such) and a line
//! reader that strips `\r\n` and a UTF-8 byte-order mark.

use std::io::{BufRead, BufReader, Read};

/// The UTF-8 byte-order mark some editors put in front of a CSV file.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `bytes` without leading and trailing ASCII whitespace.
pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// A non-negative whole number written in decimal digits only (surrounding whitespace allowed).
pub(crate) fn parse_u32(bytes: &[u8]) -> Option<u32> {
    let digits = trim(bytes);
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value * 10 + u64::from(d);
    }
    u32::try_from(value).ok()
}

/// A whole number, possibly negative (surrounding whitespace allowed).
pub(crate) fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let text = trim(bytes);
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut value: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value * 10 + i64::from(d);
    }
    Some(if negative { -value } else { value })
}

/// A finite decimal number such as `0.02875` or `1` (surrounding whitespace allowed).
pub(crate) fn parse_f32(bytes: &[u8]) -> Option<f32> {
    let text = std::str::from_utf8(trim(bytes)).ok()?;
    // Only plain decimals: `inf`, `NaN` and exponents are not how MovieLens writes numbers.
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return None;
    }
    text.parse::<f32>().ok().filter(|v| v.is_finite())
}

/// A star rating as written: how many half stars it is, when it is a whole number of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Stars {
    /// Exactly this many half stars (`3.5` is 7).
    Halves(u32),
    /// A number that is not a multiple of 0.5 (`3.7`), or too large to count.
    Other(f64),
}

impl Stars {
    /// The value in stars.
    pub(crate) fn value(self) -> f64 {
        match self {
            Stars::Halves(h) => f64::from(h) / 2.0,
            Stars::Other(v) => v,
        }
    }
}

/// Reads a rating such as `4`, `4.0`, `3.5` or `3.50` exactly (no floating-point rounding decides
/// whether it is a multiple of 0.5). Signs and exponents are not accepted.
pub(crate) fn parse_stars(bytes: &[u8]) -> Option<Stars> {
    let text = trim(bytes);
    let (whole, fraction) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &text[text.len()..]),
    };
    if whole.is_empty() || whole.len() > 9 || fraction.len() > 9 {
        return None;
    }
    let digits = |part: &[u8]| -> Option<u64> {
        part.iter().try_fold(0u64, |acc, &b| {
            let d = b.wrapping_sub(b'0');
            (d <= 9).then_some(acc * 10 + u64::from(d))
        })
    };
    let whole = digits(whole)?;
    let numerator = digits(fraction)?;
    let scale = 10u64.pow(fraction.len() as u32);
    // value = whole + numerator / scale; a multiple of 0.5 iff 2 · numerator is a multiple of scale.
    if (2 * numerator) % scale == 0 {
        let halves = 2 * whole + 2 * numerator / scale;
        if let Ok(h) = u32::try_from(halves) {
            return Some(Stars::Halves(h));
        }
    }
    Some(Stars::Other(whole as f64 + numerator as f64 / scale as f64))
}

/// How a release encodes its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// UTF-8 (the CSV releases, ml-10m). Text that is not valid UTF-8 is read as Latin-1 and
    /// reported.
    Utf8,
    /// ISO-8859-1, one byte per character (ml-1m and ml-100k, as their READMEs say).
    Latin1,
}

/// Decodes a text field; the flag says the bytes were not valid UTF-8 where UTF-8 was expected
/// (they were then read as Latin-1, which recovers the usual accented letters).
pub(crate) fn decode(bytes: &[u8], encoding: Encoding) -> (String, bool) {
    match encoding {
        Encoding::Utf8 => match std::str::from_utf8(bytes) {
            Ok(text) => (text.to_string(), false),
            Err(_) => (latin1(bytes), true),
        },
        Encoding::Latin1 => (latin1(bytes), false),
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// A field as shown in a message: quoted, bytes that are not UTF-8 as `\xNN`, long values cut
/// to their first 40 bytes and their length given (`"abc…" (52428800 bytes)`), so that no
/// message grows with its input.
pub(crate) fn show(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let total = bytes.len();
    let (bytes, cut) = if total > MAX {
        (&bytes[..MAX], format!("… ({total} bytes)"))
    } else {
        (bytes, String::new())
    };
    match std::str::from_utf8(bytes) {
        Ok(text) => format!("{text:?}{cut}"),
        Err(_) => format!("\"{}\"{cut}", bytes.escape_ascii()),
    }
}

/// Splits `line` on `sep` (one or more bytes) into at most `N` leading fields and returns the
/// total number of fields.
pub(crate) fn split_fields<'l, const N: usize>(
    line: &'l [u8],
    sep: &[u8],
    out: &mut [&'l [u8]; N],
) -> usize {
    let mut count = 0;
    let mut start = 0;
    let mut i = 0;
    let first = sep[0];
    while i < line.len() {
        if line[i] == first && line[i..].starts_with(sep) {
            if count < N {
                out[count] = &line[start..i];
            }
            count += 1;
            i += sep.len();
            start = i;
        } else {
            i += 1;
        }
    }
    if count < N {
        out[count] = &line[start..];
    }
    count + 1
}

/// Reads a small text file line by line, counting lines from 1, without the line terminator
/// (`\n` or `\r\n`) and without a UTF-8 byte-order mark on the first line.
pub(crate) struct Lines<R: Read> {
    reader: BufReader<R>,
    buf: Vec<u8>,
    line: u64,
}

impl<R: Read> Lines<R> {
    pub(crate) fn new(reader: R) -> Self {
        Lines {
            reader: BufReader::with_capacity(1 << 16, reader),
            buf: Vec::new(),
            line: 0,
        }
    }

    /// The next line and its number, or `None` at the end.
    pub(crate) fn next_line(&mut self) -> std::io::Result<Option<(u64, &[u8])>> {
        self.buf.clear();
        if self.reader.read_until(b'\n', &mut self.buf)? == 0 {
            return Ok(None);
        }
        self.line += 1;
        let mut line: &[u8] = &self.buf;
        if self.line == 1 {
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        line = line.strip_suffix(b"\n").unwrap_or(line);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        Ok(Some((self.line, line)))
    }
}

/// One CSV record: its fields, unquoted.
#[derive(Debug, Default)]
pub(crate) struct Record {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// The line the record ends on (after its first when a quoted field spans lines).
    pub(crate) last_line: u64,
}

impl Record {
    /// Number of fields.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Field `i` (empty when out of range).
    pub(crate) fn field(&self, i: usize) -> &[u8] {
        let Some(&end) = self.ends.get(i) else {
            return &[];
        };
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..end]
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

/// Reads CSV records as RFC 4180 writes them: fields separated by `,`, optionally quoted with
/// `"` (a quoted field may hold `,`, `""` for a quote, and line ends), records ending in `\n` or
/// `\r\n`, a UTF-8 byte-order mark ignored. Lines that are empty or only whitespace are skipped.
/// Each record comes with the line it starts on, counted exactly from 1.
pub(crate) struct CsvReader<R: Read> {
    lines: Lines<R>,
    record: Record,
}

impl<R: Read> CsvReader<R> {
    pub(crate) fn new(reader: R) -> Self {
        CsvReader {
            lines: Lines::new(reader),
            record: Record::default(),
        }
    }

    /// The next record and the line it starts on, or `None` at the end.
    pub(crate) fn next_record(&mut self) -> std::io::Result<Option<(u64, &Record)>> {
        self.record.clear();
        let start = loop {
            match self.lines.next_line()? {
                None => return Ok(None),
                Some((_, line)) if trim(line).is_empty() => continue,
                Some((number, line)) => {
                    let open = split_csv(line, false, &mut self.record);
                    self.record.last_line = number;
                    if !open {
                        return Ok(Some((number, &self.record)));
                    }
                    break number;
                }
            }
        };
        // A quoted field goes on over the next lines until its closing quote (or the end).
        let mut open = true;
        while open {
            let Some((number, line)) = self.lines.next_line()? else {
                self.record.ends.push(self.record.bytes.len());
                break;
            };
            self.record.last_line = number;
            self.record.bytes.push(b'\n');
            open = split_csv(line, true, &mut self.record);
        }
        Ok(Some((start, &self.record)))
    }
}

/// Appends the fields of one line to `record`; `in_quotes` when the line continues a quoted
/// field. Returns whether the line ends inside a quoted field (its field is then left open).
fn split_csv(line: &[u8], mut in_quotes: bool, record: &mut Record) -> bool {
    let mut i = 0;
    let mut field_start = !in_quotes;
    while i < line.len() {
        let b = line[i];
        if in_quotes {
            if b == b'"' {
                if line.get(i + 1) == Some(&b'"') {
                    record.bytes.push(b'"');
                    i += 2;
                    continue;
                }
                in_quotes = false;
            } else {
                record.bytes.push(b);
            }
        } else if b == b',' {
            record.ends.push(record.bytes.len());
            field_start = true;
            i += 1;
            continue;
        } else if b == b'"' && field_start {
            in_quotes = true;
        } else {
            record.bytes.push(b);
        }
        field_start = false;
        i += 1;
    }
    if !in_quotes {
        record.ends.push(record.bytes.len());
    }
    in_quotes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_are_read_exactly_and_anything_else_is_refused() {
        assert_eq!(parse_u32(b"0"), Some(0));
        assert_eq!(parse_u32(b" 4294967295 "), Some(u32::MAX));
        for bad in [
            &b""[..],
            b"4294967296",
            b"-1",
            b"1.0",
            b"1e3",
            b"12a",
            b"99999999999",
        ] {
            assert_eq!(parse_u32(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_i64(b"-1445714994"), Some(-1_445_714_994));
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b"1999999999999999999"), None);
    }

    #[test]
    fn ratings_are_counted_in_half_stars_without_rounding() {
        assert_eq!(parse_stars(b"4"), Some(Stars::Halves(8)));
        assert_eq!(parse_stars(b"4.0"), Some(Stars::Halves(8)));
        assert_eq!(parse_stars(b"3.5"), Some(Stars::Halves(7)));
        assert_eq!(parse_stars(b"0.50"), Some(Stars::Halves(1)));
        assert_eq!(parse_stars(b"4."), Some(Stars::Halves(8)));
        assert_eq!(parse_stars(b"3.7"), Some(Stars::Other(3.7)));
        // 3.500000001 is not 3.5, although an f32 would round it there.
        assert!(matches!(parse_stars(b"3.500000001"), Some(Stars::Other(_))));
        for bad in [&b""[..], b".5", b"-1", b"four", b"1e1", b"3,5", b"1.2.3"] {
            assert_eq!(parse_stars(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn latin1_maps_bytes_to_characters_and_invalid_utf8_falls_back_to_it() {
        assert_eq!(
            decode(b"Cit\xe9", Encoding::Latin1),
            ("Cité".to_string(), false)
        );
        assert_eq!(
            decode(b"Cit\xe9", Encoding::Utf8),
            ("Cité".to_string(), true)
        );
        assert_eq!(
            decode("Cité".as_bytes(), Encoding::Utf8),
            ("Cité".to_string(), false)
        );
    }

    #[test]
    fn fields_split_on_single_and_double_separators() {
        let mut out = [&b""[..]; 4];
        assert_eq!(split_fields(b"1::2::3.5::9", b"::", &mut out), 4);
        assert_eq!(out, [&b"1"[..], b"2", b"3.5", b"9"]);
        assert_eq!(split_fields(b"1,2", b",", &mut out), 2);
        assert_eq!(split_fields(b"1,2,3,4,5,6", b",", &mut out), 6);
        assert_eq!(split_fields(b"", b"\t", &mut out), 1);
        assert_eq!(split_fields(b"1:2::3", b"::", &mut out), 2);
        assert_eq!(out[0], b"1:2");
    }

    fn records(input: &[u8]) -> Vec<(u64, Vec<String>)> {
        let mut reader = CsvReader::new(input);
        let mut out = Vec::new();
        while let Some((line, record)) = reader.next_record().unwrap() {
            let fields = (0..record.len())
                .map(|i| String::from_utf8_lossy(record.field(i)).into_owned())
                .collect();
            out.push((line, fields));
        }
        out
    }

    #[test]
    fn csv_records_unquote_fields_and_count_lines_exactly() {
        let input = b"\xEF\xBB\xBFa,b\r\n1,\"Matrix, The (1999)\"\r\n\r\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n4,\n,\n5,x\"y\n6,\"open";
        assert_eq!(
            records(input),
            vec![
                (1, vec!["a".into(), "b".into()]),
                (2, vec!["1".into(), "Matrix, The (1999)".into()]),
                (4, vec!["2".into(), "say \"hi\"".into()]),
                (5, vec!["3".into(), "two\nlines".into()]),
                (7, vec!["4".into(), "".into()]),
                (8, vec!["".into(), "".into()]),
                (9, vec!["5".into(), "x\"y".into()]),
                (10, vec!["6".into(), "open".into()]),
            ]
        );
    }

    #[test]
    fn lines_lose_their_terminators_and_the_byte_order_mark() {
        let mut lines = Lines::new(&b"\xEF\xBB\xBFa|1\r\nb|2\n\nc"[..]);
        let mut seen = Vec::new();
        while let Some((n, line)) = lines.next_line().unwrap() {
            seen.push((n, line.to_vec()));
        }
        assert_eq!(
            seen,
            vec![
                (1, b"a|1".to_vec()),
                (2, b"b|2".to_vec()),
                (3, b"".to_vec()),
                (4, b"c".to_vec())
            ]
        );
    }
}
