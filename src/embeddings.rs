//! Item embeddings: one dense row of `f32` per movie, in catalog order.
//!
//! Row `i` always belongs to the catalog's movie `i` (the one internal index used by every table),
//! so a model's embeddings, its indexes and its 2-D projection can never disagree on row order.

use crate::storage::shared_slice::SharedSlice;

/// A row-major `rows × dim` matrix of item vectors, cheap to clone (shared storage: owned, or
/// a view into a memory-mapped model file).
#[derive(Clone, Debug, PartialEq)]
pub struct ItemEmbeddings {
    dim: usize,
    data: SharedSlice<f32>,
}

impl ItemEmbeddings {
    /// Wraps row-major data; `data.len()` must be a multiple of `dim` (and `dim > 0`).
    pub fn new(dim: usize, data: Vec<f32>) -> crate::Result<Self> {
        Self::from_shared(dim, data.into())
    }

    /// Wraps shared row-major data (e.g. a mapped file section); the same checks as [`Self::new`].
    pub fn from_shared(dim: usize, data: SharedSlice<f32>) -> crate::Result<Self> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(crate::Error::Index(format!(
                "embedding data of length {} is not a whole number of rows of dimension {dim}",
                data.len()
            )));
        }
        Ok(ItemEmbeddings { dim, data })
    }

    /// The dimension of each row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of rows (movies).
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// All rows, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The shared storage of the rows.
    pub fn shared(&self) -> &SharedSlice<f32> {
        &self.data
    }

    /// A copy with every non-zero row scaled to unit length (zero rows stay zero), so that the
    /// inner product of two rows is their cosine similarity.
    pub fn normalized(&self) -> ItemEmbeddings {
        let mut data = self.data.to_vec();
        for row in data.chunks_mut(self.dim) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|x| *x /= norm);
            }
        }
        ItemEmbeddings {
            dim: self.dim,
            data: data.into(),
        }
    }
}
