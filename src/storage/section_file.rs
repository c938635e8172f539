//! The section file: the container every binary file of a model directory uses, built to be
//! memory-mapped and read in place.
//!
//! ```text
//! offset    size     field
//! 0         8        magic: what the file holds (b"MREMBEDS", b"MRFOREST", …)
//! 8         4        format version of that content (u32)
//! 12        4        section count N (u32)
//! 16        8        header checksum: XXH3-64 of bytes 0..16 followed by the section table
//! 24        N × 40   section table, one entry per section:
//!                      name      16 bytes, ASCII, zero-padded
//!                      offset    u64, from the start of the file, a multiple of 64
//!                      length    u64, in bytes
//!                      checksum  u64, XXH3-64 of the section's bytes
//! …                  sections, each starting at its 64-byte aligned offset, zero padding between
//! ```
//!
//! All integers are little-endian. Sections hold plain arrays (`u8`, `u32`, `f32`, …), viewed in
//! place through [`SharedSlice::cast`]: the 64-byte alignment makes every such view aligned (and
//! keeps SIMD loads on cache lines), and a `meta` section holds the small JSON description of the
//! rest (counts, parameters).
//!
//! Opening ([`SectionFile::open`]) checks the magic, version, header checksum and that every
//! section lies inside the file without overlapping another: a torn or truncated file, or one of
//! another kind or version, is refused before anything is read from it. It does not hash the
//! sections, which would read every byte of every vector and defeat mapping: [`SectionFile::verify`]
//! does, and `movierec verify` and serving's start-up call it (see `docs/MODEL_FORMAT.md`).

use crate::storage::shared_slice::{Pod, SharedSlice};
use rayon::prelude::*;
use std::borrow::Cow;
use xxhash_rust::xxh3::xxh3_64;

const HEADER: usize = 24;
const ENTRY: usize = 40;
const NAME: usize = 16;
/// Sections start at multiples of this.
pub const ALIGN: usize = 64;

/// Builds a section file: in memory ([`SectionWriter::finish`]) or straight into a writer
/// ([`SectionWriter::write_to`]). Array sections are borrowed, not copied, so streaming a file
/// to disk holds no second copy of its contents (at ml-latest's size the user histories alone
/// are 400 MB).
pub struct SectionWriter<'a> {
    magic: [u8; 8],
    version: u32,
    sections: Vec<(String, Cow<'a, [u8]>)>,
}

impl<'a> SectionWriter<'a> {
    /// Starts a file of kind `magic`, content version `version`.
    pub fn new(magic: &[u8; 8], version: u32) -> SectionWriter<'a> {
        SectionWriter {
            magic: *magic,
            version,
            sections: Vec::new(),
        }
    }

    fn push(&mut self, name: &str, bytes: Cow<'a, [u8]>) -> &mut Self {
        assert!(
            name.len() <= NAME && name.is_ascii(),
            "bad section name {name:?}"
        );
        assert!(
            self.sections.iter().all(|(n, _)| n != name),
            "section {name:?} added twice"
        );
        self.sections.push((name.to_string(), bytes));
        self
    }

    /// Adds section `name` holding `values` (borrowed until the file is written).
    ///
    /// # Panics
    /// If `name` is longer than 16 bytes or not ASCII, or repeats an earlier name (caller bugs).
    pub fn add<T: Pod>(&mut self, name: &str, values: &'a [T]) -> &mut Self {
        self.push(name, Cow::Borrowed(bytemuck::cast_slice(values)))
    }

    /// Adds section `name` holding `value` as JSON.
    pub fn add_json<M: serde::Serialize>(&mut self, name: &str, value: &M) -> &mut Self {
        let json = serde_json::to_vec(value).expect("plain structs serialise");
        self.push(name, Cow::Owned(json))
    }

    /// The header and section table, and each section's offset; the file's length.
    fn layout(&self) -> (Vec<u8>, Vec<usize>, usize) {
        let table_end = HEADER + ENTRY * self.sections.len();
        let mut offsets = Vec::with_capacity(self.sections.len());
        let mut end = table_end;
        for (_, bytes) in &self.sections {
            let offset = end.next_multiple_of(ALIGN);
            offsets.push(offset);
            end = offset + bytes.len();
        }
        let mut head = vec![0u8; table_end];
        head[..8].copy_from_slice(&self.magic);
        head[8..12].copy_from_slice(&self.version.to_le_bytes());
        let count = u32::try_from(self.sections.len()).expect("a handful of sections");
        head[12..16].copy_from_slice(&count.to_le_bytes());
        // The sections' checksums are independent: computed side by side.
        let checksums: Vec<u64> = self
            .sections
            .par_iter()
            .map(|(_, bytes)| xxh3_64(bytes))
            .collect();
        for (i, (((name, bytes), &offset), checksum)) in self
            .sections
            .iter()
            .zip(&offsets)
            .zip(checksums)
            .enumerate()
        {
            let entry = &mut head[HEADER + ENTRY * i..HEADER + ENTRY * (i + 1)];
            entry[..name.len()].copy_from_slice(name.as_bytes());
            entry[16..24].copy_from_slice(&(offset as u64).to_le_bytes());
            entry[24..32].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            entry[32..40].copy_from_slice(&checksum.to_le_bytes());
        }
        let checksum = header_checksum(&head);
        head[16..24].copy_from_slice(&checksum.to_le_bytes());
        (head, offsets, end)
    }

    /// The file's bytes.
    pub fn finish(&self) -> Vec<u8> {
        let (head, offsets, end) = self.layout();
        let mut out = vec![0u8; end];
        out[..head.len()].copy_from_slice(&head);
        for ((_, bytes), &offset) in self.sections.iter().zip(&offsets) {
            out[offset..offset + bytes.len()].copy_from_slice(bytes);
        }
        out
    }

    /// Writes the file's bytes (the same as [`SectionWriter::finish`]'s) to `out`, section by
    /// section, without assembling them; returns how many were written.
    pub fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<u64> {
        let (head, offsets, end) = self.layout();
        out.write_all(&head)?;
        let mut at = head.len();
        for ((_, bytes), &offset) in self.sections.iter().zip(&offsets) {
            out.write_all(&[0u8; ALIGN][..offset - at])?;
            out.write_all(bytes)?;
            at = offset + bytes.len();
        }
        debug_assert_eq!(at, end);
        Ok(end as u64)
    }
}

/// XXH3 of the header's first 16 bytes and the table (the checksum field itself excluded).
fn header_checksum(header_and_table: &[u8]) -> u64 {
    let mut hashed = header_and_table[..16].to_vec();
    hashed.extend_from_slice(&header_and_table[HEADER..]);
    xxh3_64(&hashed)
}

#[derive(Clone, Debug)]
struct Section {
    name: String,
    range: std::ops::Range<usize>,
    checksum: u64,
}

/// An opened section file: its bytes (usually mapped) and its checked section table.
#[derive(Clone, Debug)]
pub struct SectionFile {
    bytes: SharedSlice<u8>,
    sections: Vec<Section>,
}

impl SectionFile {
    /// Checks the header of `bytes` (see the module doc); `magic`, `version` and `what` (a noun
    /// for messages: "HNSW index") say what the caller expects. Errors say what is wrong, for
    /// the caller to prefix with the file name.
    pub fn open(
        bytes: SharedSlice<u8>,
        magic: &[u8; 8],
        version: u32,
        what: &str,
    ) -> Result<SectionFile, String> {
        if bytes.len() < HEADER {
            return Err(format!(
                "truncated: {} bytes, shorter than any {what} file",
                bytes.len()
            ));
        }
        if &bytes[..8] != magic {
            return Err(format!("not a movierec {what} file (bad magic)"));
        }
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
        let found = u32_at(8);
        if found != version {
            return Err(format!(
                "{what} format version {found} is not supported (this build reads version \
                 {version}); retrain with `movierec train`"
            ));
        }
        let count = u32_at(12) as usize;
        let table_end = count
            .checked_mul(ENTRY)
            .and_then(|n| n.checked_add(HEADER))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| format!("truncated: the header lists {count} sections"))?;
        if header_checksum(&bytes[..table_end]) != u64_at(16) {
            return Err("corrupt: the header checksum does not match".to_string());
        }
        let mut sections: Vec<Section> = Vec::with_capacity(count);
        for i in 0..count {
            let at = HEADER + ENTRY * i;
            let raw_name = &bytes[at..at + NAME];
            let name_len = raw_name.iter().position(|&b| b == 0).unwrap_or(NAME);
            let name = String::from_utf8_lossy(&raw_name[..name_len]).into_owned();
            let (offset, len) = (u64_at(at + 16), u64_at(at + 24));
            let range = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(len).ok())
                .and_then(|(o, l)| Some(o..o.checked_add(l)?))
                .filter(|r| r.start >= table_end && r.end <= bytes.len())
                .ok_or_else(|| {
                    format!(
                        "truncated or corrupt: section {name:?} ({len} bytes at {offset}) is not \
                         inside the file's {} bytes",
                        bytes.len()
                    )
                })?;
            if !range.start.is_multiple_of(ALIGN) {
                return Err(format!("corrupt: section {name:?} is not aligned"));
            }
            if sections.iter().any(|s| s.name == name) {
                return Err(format!("corrupt: section {name:?} appears twice"));
            }
            if let Some(other) = sections
                .iter()
                .find(|s| s.range.start < range.end && range.start < s.range.end)
            {
                return Err(format!(
                    "corrupt: sections {:?} and {name:?} overlap",
                    other.name
                ));
            }
            sections.push(Section {
                name,
                range,
                checksum: u64_at(at + 32),
            });
        }
        Ok(SectionFile { bytes, sections })
    }

    /// Whether the file has a section `name` (a section added in a later release is optional
    /// for readers).
    pub fn has(&self, name: &str) -> bool {
        self.sections.iter().any(|s| s.name == name)
    }

    fn find(&self, name: &str) -> Result<&Section, String> {
        self.sections
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| format!("corrupt: the {name:?} section is missing"))
    }

    /// Section `name` viewed as `[T]` in place.
    pub fn section<T: Pod>(&self, name: &str) -> Result<SharedSlice<T>, String> {
        let section = self.find(name)?;
        self.bytes.cast(section.range.clone()).ok_or_else(|| {
            format!(
                "corrupt: the {name:?} section's {} bytes are not a whole number of {}-byte values",
                section.range.len(),
                std::mem::size_of::<T>()
            )
        })
    }

    /// Section `name` viewed as `[T]`, which must hold exactly `len` values.
    pub fn section_of_len<T: Pod>(&self, name: &str, len: usize) -> Result<SharedSlice<T>, String> {
        let values = self.section::<T>(name)?;
        if values.len() != len {
            return Err(format!(
                "corrupt: the {name:?} section holds {} values where {len} were expected",
                values.len()
            ));
        }
        Ok(values)
    }

    /// Section `name` parsed as JSON; its checksum is verified first (it is small, and a value
    /// read from it steers how the rest is read).
    pub fn json<M: serde::de::DeserializeOwned>(&self, name: &str) -> Result<M, String> {
        let section = self.find(name)?;
        let bytes = &self.bytes[section.range.clone()];
        if xxh3_64(bytes) != section.checksum {
            return Err(format!("corrupt: the {name:?} section fails its checksum"));
        }
        serde_json::from_slice(bytes).map_err(|e| format!("corrupt: the {name:?} section: {e}"))
    }

    /// Hashes every section (in parallel) and reports the first that does not match its
    /// checksum. This reads the whole file.
    pub fn verify(&self) -> Result<(), String> {
        self.sections.par_iter().try_for_each(|s| {
            if xxh3_64(&self.bytes[s.range.clone()]) == s.checksum {
                Ok(())
            } else {
                Err(format!(
                    "corrupt: the {:?} section fails its checksum",
                    s.name
                ))
            }
        })
    }

    /// The size of the file in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for an empty file (which [`SectionFile::open`] never accepts).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Checks that an offsets section (`indptr`) partitions `0..total` entries into consecutive
/// ranges, as the neighbour-list and user-history files store them.
pub fn check_partition(indptr: &[u64], total: usize) -> std::result::Result<(), String> {
    if indptr.first() != Some(&0)
        || indptr.last().map(|&l| l as usize) != Some(total)
        || indptr.windows(2).any(|w| w[0] > w[1])
    {
        return Err("corrupt: the row offsets are not a valid range partition".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = SectionWriter::new(b"MRTEST01", 3);
        w.add_json("meta", &serde_json::json!({"rows": 3}))
            .add("values", &[1.0f32, 2.0, 3.0])
            .add("ids", &[7u32, 8, 9]);
        w.finish()
    }

    fn open(bytes: &[u8]) -> Result<SectionFile, String> {
        SectionFile::open(SharedSlice::copy_aligned(bytes), b"MRTEST01", 3, "test")
    }

    #[test]
    fn streaming_writes_the_bytes_finish_assembles() {
        // Sections of lengths around the alignment, so that every padding length is written.
        for lengths in [[0usize, 1, 63], [64, 65, 127], [5, 0, 200]] {
            let arrays: Vec<Vec<u8>> = lengths
                .iter()
                .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
                .collect();
            let mut w = SectionWriter::new(b"MRTEST01", 3);
            w.add_json("meta", &serde_json::json!({"lengths": lengths}));
            for (i, a) in arrays.iter().enumerate() {
                w.add(&format!("s{i}"), a);
            }
            let mut streamed = Vec::new();
            let n = w.write_to(&mut streamed).unwrap();
            assert_eq!(streamed, w.finish(), "{lengths:?}");
            assert_eq!(n as usize, streamed.len());
            let file = open(&streamed).unwrap();
            file.verify().unwrap();
            for (i, a) in arrays.iter().enumerate() {
                assert_eq!(&file.section::<u8>(&format!("s{i}")).unwrap()[..], &a[..]);
            }
        }
    }

    #[test]
    fn sections_round_trip_aligned() {
        let file = open(&sample()).unwrap();
        let meta: serde_json::Value = file.json("meta").unwrap();
        assert_eq!(meta["rows"], 3);
        assert_eq!(&*file.section::<f32>("values").unwrap(), &[1.0, 2.0, 3.0]);
        assert_eq!(&*file.section_of_len::<u32>("ids", 3).unwrap(), &[7, 8, 9]);
        assert!(file.section_of_len::<u32>("ids", 4).is_err());
        assert!(file
            .section::<u32>("missing")
            .unwrap_err()
            .contains("missing"));
        file.verify().unwrap();
    }

    #[test]
    fn every_truncation_is_refused_or_fails_verification() {
        let bytes = sample();
        for len in 0..bytes.len() {
            let opened = open(&bytes[..len]);
            assert!(
                opened.is_err() || opened.unwrap().verify().is_err(),
                "length {len}"
            );
        }
    }

    #[test]
    fn flipped_bits_are_caught_by_open_or_verify_and_named() {
        let bytes = sample();
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            let Ok(file) = open(&bad) else { continue };
            // Only padding may differ undetected.
            if let Err(e) = file.verify() {
                assert!(e.contains("fails its checksum"), "{e}");
            } else {
                assert!(
                    file.sections.iter().all(|s| !s.range.contains(&at)),
                    "byte {at}"
                );
            }
        }
    }

    #[test]
    fn wrong_magic_and_version_are_named() {
        let bytes = sample();
        let other = SectionFile::open(SharedSlice::copy_aligned(&bytes), b"MRTEST02", 3, "test");
        assert!(other.unwrap_err().contains("bad magic"));
        let newer = SectionFile::open(SharedSlice::copy_aligned(&bytes), b"MRTEST01", 2, "test");
        assert!(newer.unwrap_err().contains("version 3 is not supported"));
    }
}
