//! Reading a model directory into typed values: the catalog, every embedding model with its
//! indexes, the neighbour lists, the user histories and the co-like counts, every file's
//! structure checked (and its checksum, unless asked not to). The engine serves what this
//! returns and knows no file of the directory.

use super::{load, open_matrix, Manifest, SavedModel, CATALOG_FILE};
use crate::catalog::{Catalog, Movie};
use crate::embeddings::ItemEmbeddings;
use crate::index::{backend, ExactIndex, IndexKind, VectorIndex};
use crate::interactions::UserHistories;
use crate::models::item_knn::NeighbourLists;
use crate::models::personal::PersonalParams;
use crate::models::{ModelKind, ModelShape};
use crate::storage::section_file::SectionFile;
use crate::storage::shared_slice::SharedSlice;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A model directory, read and checked.
pub struct LoadedModel {
    /// The directory it was read from.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The catalog.
    pub catalog: Catalog,
    /// Every embedding model, with its indexes.
    pub models: BTreeMap<ModelKind, EmbeddingModel>,
    /// Every neighbour-list model's lists.
    pub lists: BTreeMap<ModelKind, NeighbourLists>,
    /// What scores users.
    pub personal: PersonalLists,
    /// The co-like counts explanations read.
    pub co_likes: CoLikes,
}

/// How much of a model directory [`open`] reads before serving from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Hash every file against the manifest (reads everything once; about 0.1 s per GB).
    Checksums,
    /// Only the manifest, file sizes, headers and index structures: files are mapped and pages
    /// are read as searches touch them. For benchmarks of opening, and for callers that have
    /// verified the directory already.
    StructureOnly,
}

/// The personalised recommender: which neighbour lists, and user histories.
pub struct PersonalLists {
    /// The neighbour-list model that scores users.
    pub model: ModelKind,
    /// Every user's ratings, in history order.
    pub users: UserHistories,
    /// How a history is scored.
    pub scoring: PersonalParams,
}

/// The per-entry co-like counts of one neighbour-list model's lists (see
/// [`crate::models::item_knn::co_likes`]).
pub struct CoLikes {
    /// The neighbour-list model whose entries they count.
    pub lists: ModelKind,
    /// One count per entry of those lists.
    pub counts: SharedSlice<u32>,
}

/// An embedding model as served: its exact index (which holds its embeddings), every
/// approximate index, and its 2-D map.
pub struct EmbeddingModel {
    /// Exact search (and the embeddings).
    pub exact: ExactIndex,
    /// Every approximate backend of [`backend::APPROXIMATE`], by kind.
    pub approximate: BTreeMap<IndexKind, Box<dyn VectorIndex>>,
    /// Two values per movie.
    pub projection: SharedSlice<f32>,
}

/// Opens the model directory `dir`, checking its checksums or not (see [`Verify`]), every
/// file's structure checked: what a served engine is made of.
pub fn open(dir: &Path, verify: Verify) -> Result<LoadedModel> {
    let saved = load(dir)?;
    if verify == Verify::StructureOnly {
        let catalog = decode_catalog(dir, &saved)?;
        return assemble(dir, &saved, catalog);
    }
    // Hashing the files waits on the disk, decoding the catalog (and building its title
    // index) on the CPU: both at once. The index structures are checked afterwards, on
    // pages the hashing has just read (checking them during it made a cold start slower:
    // their scattered page faults competed with its sequential reads).
    let (verified, catalog) = rayon::join(|| saved.verify(dir), || decode_catalog(dir, &saved));
    verified?;
    assemble(dir, &saved, catalog?)
}

/// The catalog, decoded from `catalog.json` (read front to back once: its mapping is told
/// so, else on a cold page cache it would fault in page by page).
fn decode_catalog(dir: &Path, saved: &SavedModel) -> Result<Catalog> {
    let bytes = saved.file(dir, CATALOG_FILE)?;
    bytes.advise_sequential();
    let movies: Vec<Movie> = serde_json::from_slice(&bytes).map_err(|e| Error::Artifact {
        dir: dir.to_path_buf(),
        message: format!("{CATALOG_FILE} is malformed: {e}"),
    })?;
    Ok(Catalog::from_movies(movies))
}

/// The model over the files of `saved` and their `catalog`, their structures checked.
fn assemble(dir: &Path, saved: &SavedModel, catalog: Catalog) -> Result<LoadedModel> {
    let bad = |message: String| Error::Artifact {
        dir: dir.to_path_buf(),
        message,
    };
    let mut models = BTreeMap::new();
    for kind in ModelKind::EMBEDDINGS {
        let entry = saved
            .manifest
            .models
            .get(&kind)
            .ok_or_else(|| bad(format!("the manifest has no {kind} model")))?;
        let matrix = |name: &str, cols: Option<usize>| -> Result<(usize, SharedSlice<f32>)> {
            let (rows, c, values) =
                open_matrix(name, saved.file(dir, name)?).map_err(|e| bad(e.to_string()))?;
            if rows != catalog.len() || cols.is_some_and(|want| want != c) || c == 0 {
                return Err(bad(format!(
                    "{name} has {rows}×{c} values but the catalog has {} movies",
                    catalog.len()
                )));
            }
            Ok((c, values))
        };
        let (dim, values) = matrix(&entry.embeddings_file, Some(entry.dim))?;
        let embeddings = ItemEmbeddings::from_shared(dim, values)?;
        let (_, projection) = matrix(&entry.projection_file, Some(2))?;
        // The file of an index and its bytes, or the reason there are none.
        let index_file = |index: IndexKind| -> Result<(&str, SharedSlice<u8>)> {
            let file = entry
                .indexes
                .get(&index)
                .and_then(|i| i.file.as_deref())
                .ok_or_else(|| bad(format!("the manifest has no {index} index for {kind}")))?;
            Ok((file, saved.file(dir, file)?))
        };
        let (exact_file, bytes) = index_file(IndexKind::Exact)?;
        let exact =
            ExactIndex::open(bytes, &embeddings).map_err(|e| bad(format!("{exact_file}: {e}")))?;
        let mut approximate = BTreeMap::new();
        for backend in backend::APPROXIMATE {
            let (file, bytes) = index_file(backend.kind())?;
            let index = backend
                .open(bytes, &exact)
                .map_err(|e| bad(format!("{file}: {e}")))?;
            approximate.insert(backend.kind(), index);
        }
        models.insert(
            kind,
            EmbeddingModel {
                exact,
                approximate,
                projection,
            },
        );
    }
    let mut lists = BTreeMap::new();
    for kind in ModelKind::ALL
        .into_iter()
        .filter(|k| k.shape() == ModelShape::NeighbourLists)
    {
        let entry = saved
            .manifest
            .neighbour_lists
            .get(&kind)
            .ok_or_else(|| bad(format!("the manifest has no {kind} model")))?;
        let decoded =
            NeighbourLists::from_bytes(&entry.file, saved.file(dir, &entry.file)?, catalog.len())
                .map_err(|e| bad(e.to_string()))?;

        lists.insert(kind, decoded);
    }
    for kind in [
        saved.manifest.default_collaborative,
        saved.manifest.personal.model,
    ] {
        if kind == ModelKind::Collaborative
            || !(models.contains_key(&kind) || lists.contains_key(&kind))
        {
            return Err(bad(format!(
                "the manifest names {kind}, which it does not store"
            )));
        }
    }
    if saved.manifest.personal.model.shape() != ModelShape::NeighbourLists {
        return Err(bad(format!(
            "personal recommendations need a neighbour-list model, not {}",
            saved.manifest.personal.model
        )));
    }
    let entry = &saved.manifest.personal;
    let personal = PersonalLists {
        model: entry.model,
        users: UserHistories::from_bytes(
            &entry.users_file,
            saved.file(dir, &entry.users_file)?,
            catalog.len(),
        )
        .map_err(|e| bad(e.to_string()))?,
        scoring: entry.scoring,
    };
    let explanations = &saved.manifest.explanations;
    let entries = lists
        .get(&explanations.lists)
        .ok_or_else(|| {
            bad(format!(
                "explanations count on {}, which the manifest does not store",
                explanations.lists
            ))
        })?
        .items
        .len();
    let file = SectionFile::open(
        saved.file(dir, &explanations.file)?,
        crate::models::item_knn::CO_LIKES_MAGIC,
        1,
        "co-like counts",
    )
    .map_err(|e| bad(format!("{}: {e}", explanations.file)))?;
    let co_likes = CoLikes {
        lists: explanations.lists,
        counts: file
            .section_of_len("counts", entries)
            .map_err(|e| bad(format!("{}: {e}", explanations.file)))?,
    };
    for kind in ModelKind::EMBEDDINGS {
        if !models.contains_key(&kind) {
            return Err(bad(format!("the manifest has no {kind} model")));
        }
    }
    // Checking the structures paged in whole graphs and forests: give those pages back.
    for bytes in saved.files.values() {
        bytes.release_resident();
    }
    Ok(LoadedModel {
        dir: dir.to_path_buf(),
        manifest: saved.manifest.clone(),
        catalog,
        models,
        lists,
        personal,
        co_likes,
    })
}
