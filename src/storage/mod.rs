//! The bottom layer: bytes on disk and in memory, knowing nothing of movies, models or indexes.
//!
//! - [`shared_slice`]: a typed, reference-counted view of bytes, owned or memory-mapped, so a
//!   loaded file is read in place.
//! - [`section_file`]: the container every binary file of a model directory uses: a header,
//!   named and checksummed sections, read in place through [`shared_slice`].
//! - [`matrix_file`]: a dense `f32` matrix (embeddings, the 2-D map) as a section file.
//!
//! Above it, `index/`, `models/` and `interactions.rs` write and read their own files through
//! these, and `artifact/` assembles them into a model directory.

pub mod matrix_file;
pub mod section_file;
pub mod shared_slice;

pub use matrix_file::{encode_matrix, open_matrix};
