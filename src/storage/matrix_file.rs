//! The matrix file: a dense `rows × cols` table of `f32` (embeddings, 2-D projections), as a
//! [section file](super::section_file) read in place.
//!
//! | section  | content                                   |
//! |----------|-------------------------------------------|
//! | `meta`   | JSON `{"rows": R, "cols": C}`             |
//! | `values` | R × C `f32`, row-major                    |

use super::section_file::{SectionFile, SectionWriter};
use super::shared_slice::SharedSlice;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"MRMATRIX";
/// Version 2: the section-file layout (version 1 was a fixed header followed by the values).
const VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
struct Meta {
    rows: usize,
    cols: usize,
}

/// Encodes a row-major matrix.
pub fn encode_matrix(rows: usize, cols: usize, values: &[f32]) -> Vec<u8> {
    debug_assert_eq!(rows * cols, values.len());
    let mut w = SectionWriter::new(MAGIC, VERSION);
    w.add_json("meta", &Meta { rows, cols })
        .add("values", values);
    w.finish()
}

/// Opens a matrix file in place as `(rows, cols, values)`; `name` is used in error messages.
pub fn open_matrix(name: &str, bytes: SharedSlice<u8>) -> Result<(usize, usize, SharedSlice<f32>)> {
    let bad = |message: String| Error::data(name, message);
    let file = SectionFile::open(bytes, MAGIC, VERSION, "matrix").map_err(bad)?;
    let meta: Meta = file.json("meta").map_err(bad)?;
    let len = meta
        .rows
        .checked_mul(meta.cols)
        .ok_or_else(|| bad(format!("corrupt: {}×{} overflows", meta.rows, meta.cols)))?;
    let values = file.section_of_len("values", len).map_err(bad)?;
    Ok((meta.rows, meta.cols, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_round_trips_and_rejects_every_truncation() {
        let values: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        let bytes = encode_matrix(4, 3, &values);
        let open = |b: &[u8]| open_matrix("m", SharedSlice::copy_aligned(b));
        let (rows, cols, read) = open(&bytes).unwrap();
        assert_eq!((rows, cols, &*read), (4, 3, &values[..]));
        for len in 0..bytes.len() {
            assert!(open(&bytes[..len]).is_err(), "length {len}");
        }
        let mut future = bytes.clone();
        future[8] = 9;
        let err = open(&future).unwrap_err().to_string();
        assert!(err.contains("version 9"), "{err}");
    }
}
