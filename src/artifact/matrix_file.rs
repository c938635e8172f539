//! The matrix file: a dense `rows × cols` table of `f32`, little-endian.
//!
//! ```text
//! offset  size  field
//! 0       8     magic  b"MRMATRIX"
//! 8       4     format version (u32, currently 1)
//! 12      4     reserved (0)
//! 16      8     rows (u64)
//! 24      8     cols (u64)
//! 32      4·rows·cols  values, row-major f32 LE
//! ```

use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"MRMATRIX";
const VERSION: u32 = 1;
const HEADER: usize = 32;

/// Encodes a row-major matrix.
pub fn encode_matrix(rows: usize, cols: usize, values: &[f32]) -> Vec<u8> {
    debug_assert_eq!(rows * cols, values.len());
    let mut out = Vec::with_capacity(HEADER + values.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(rows as u64).to_le_bytes());
    out.extend_from_slice(&(cols as u64).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Decodes a matrix file into `(rows, cols, values)`; `name` is used in error messages.
pub fn decode_matrix(name: &str, bytes: &[u8]) -> Result<(usize, usize, Vec<f32>)> {
    let bad = |message: String| Error::data(name, message);
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(bad("not a movierec matrix file (bad magic)".into()));
    }
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
    let version = u32_at(8);
    if version != VERSION {
        return Err(bad(format!(
            "matrix format version {version} is not supported (this build reads {VERSION})"
        )));
    }
    let (rows, cols) = (u64_at(16), u64_at(24));
    let expected = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| n.checked_add(HEADER as u64));
    if expected != Some(bytes.len() as u64) {
        return Err(bad(format!(
            "a {rows}×{cols} matrix needs {} bytes but the file has {}",
            expected.map_or("too many".to_string(), |n| n.to_string()),
            bytes.len()
        )));
    }
    let values = bytes[HEADER..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    Ok((rows as usize, cols as usize, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_round_trips_and_rejects_every_truncation() {
        let values: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        let bytes = encode_matrix(4, 3, &values);
        assert_eq!(decode_matrix("m", &bytes).unwrap(), (4, 3, values));
        for len in 0..bytes.len() {
            assert!(decode_matrix("m", &bytes[..len]).is_err(), "length {len}");
        }
        let mut future = bytes.clone();
        future[8] = 9;
        let err = decode_matrix("m", &future).unwrap_err().to_string();
        assert!(err.contains("version 9"), "{err}");
        let mut huge = bytes;
        huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_matrix("m", &huge).is_err());
    }
}
