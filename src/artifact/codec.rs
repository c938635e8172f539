//! Little-endian readers and writers shared by the artifact encodings: every decode is bounds
//! checked and reports what is wrong instead of panicking.

use crate::{Error, Result};

/// Appends little-endian values.
#[derive(Default)]
pub struct Writer {
    /// The bytes written so far.
    pub bytes: Vec<u8>,
}

impl Writer {
    /// Starts a file with an 8-byte magic and a format version.
    pub fn new(magic: &[u8; 8], version: u32) -> Writer {
        let mut w = Writer::default();
        w.bytes.extend_from_slice(magic);
        w.u32(version);
        w
    }

    /// Appends a `u32`.
    pub fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a `u64`.
    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends an `f32`.
    pub fn f32(&mut self, v: f32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads little-endian values from a byte slice; reads past the end fail (naming what was being
/// read) instead of panicking.
pub struct Reader<'a> {
    name: &'a str,
    bytes: &'a [u8],
    at: usize,
    index_errors: bool,
}

impl<'a> Reader<'a> {
    /// Checks the magic and version and positions after them; errors are [`Error::Data`] naming
    /// the file `name`.
    pub fn new(name: &'a str, bytes: &'a [u8], magic: &[u8; 8], version: u32) -> Result<Self> {
        if bytes.len() < 12 || &bytes[..8] != magic {
            return Err(Error::data(
                name,
                "bad magic: not the expected kind of file",
            ));
        }
        let mut r = Reader {
            name,
            bytes,
            at: 8,
            index_errors: false,
        };
        let found = r.u32("version")?;
        if found != version {
            return Err(Error::data(
                name,
                format!("format version {found} is not supported (this build reads {version})"),
            ));
        }
        Ok(r)
    }

    /// A reader at the start of an index's bytes, with no header check; errors are
    /// [`Error::Index`] prefixed with `name` (e.g. `forest bytes`).
    pub fn for_index(name: &'a str, bytes: &'a [u8]) -> Self {
        Reader {
            name,
            bytes,
            at: 0,
            index_errors: true,
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let rest = self.bytes.len() - self.at;
        if rest < n {
            return Err(self.invalid(format!(
                "truncated: {what} needs {n} bytes at offset {} but only {rest} remain",
                self.at
            )));
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    /// Reads an `f32`.
    pub fn f32(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }

    /// Reads a `u32`.
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }

    /// Reads a `u64`.
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }

    /// Reads a count that must fit in memory (at most the remaining bytes / `unit`).
    pub fn count(&mut self, what: &str, unit: usize) -> Result<usize> {
        let n = self.u64(what)?;
        let remaining = (self.bytes.len() - self.at) / unit.max(1);
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= remaining)
            .ok_or_else(|| self.invalid(format!("{what} {n} exceeds the file's size")))
    }

    /// Reads `n` `u32`s.
    pub fn u32s(&mut self, n: usize, what: &str) -> Result<Vec<u32>> {
        let bytes = self.take(n.saturating_mul(4), what)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }

    /// Reads `n` `u64`s.
    pub fn u64s(&mut self, n: usize, what: &str) -> Result<Vec<u64>> {
        let bytes = self.take(n.saturating_mul(8), what)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    /// Reads `n` `f32`s.
    pub fn f32s(&mut self, n: usize, what: &str) -> Result<Vec<f32>> {
        let bytes = self.take(n.saturating_mul(4), what)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }

    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<()> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(self.invalid(format!(
                "{} unexpected trailing bytes",
                self.bytes.len() - self.at
            )))
        }
    }

    /// An error about these bytes, of the reader's kind.
    pub fn invalid(&self, message: impl Into<String>) -> Error {
        if self.index_errors {
            Error::Index(format!("{}: {}", self.name, message.into()))
        } else {
            Error::data(self.name, message)
        }
    }
}

/// Checks a CSR offsets array: starts at 0, never decreases, ends at `total`.
pub fn check_offsets(r: &Reader<'_>, indptr: &[u64], total: usize) -> Result<Vec<usize>> {
    if indptr.first() != Some(&0)
        || indptr.last().map(|&l| l as usize) != Some(total)
        || indptr.windows(2).any(|w| w[0] > w[1])
    {
        return Err(r.invalid("row offsets are not a valid range partition"));
    }
    Ok(indptr.iter().map(|&o| o as usize).collect())
}
