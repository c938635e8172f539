//! Incremental training: a new model directory from a previous one of the same catalog when few
//! ratings changed (`movierec train --incremental FROM_DIR`; `movierec evaluate --incremental
//! SHARE` measures what it costs in quality).
//!
//! What is reused or updated, model by model (the rest is fitted as in a full training):
//! - content: the previous model as it is (embeddings, 2-D map and indexes, whose files are
//!   copied) when everything it reads is unchanged ([`crate::models::content::inputs_fingerprint`]);
//! - item-kNN: the previous lists updated by the co-ratings of the users whose histories
//!   changed ([`crate::models::item_knn::update_lists`]); under a BM25 weighting, the lists of
//!   the movies those users rated are built again ([`crate::models::item_knn::rebuild_changed`]);
//! - "more like this": when the content model was reused, only the movies whose collaborative
//!   row or confidence moved are searched against every movie; the others' previous lists are
//!   rescored with the moved movies that found them inside their candidate pool
//!   ([`crate::models::similar::SimilarScorer::update_lists`]; a model directory written
//!   before the lists kept their pools' floors is searched in full).
//!
//! ALS and the SVD are trained from scratch: started from the previous factors, ALS scored lower
//! than a fresh training on the validation split of the bundled data whatever the iterations (1
//! to 15: NDCG@10 0.006–0.008 below, the interval excluding 0), and the randomized SVD started
//! from the previous singular vectors (1 to 3 subspace iterations) scored 0.0010–0.0014 below a
//! fresh one at a fifth of ml-latest's size, its neighbours another model's (docs/EVALUATION.md).
//! The co-like counts of explanations are updated like the item-kNN lists (`train`).
//!
//! The settings are the previous training's (no tuning). The previous directory must hold the
//! same movies in the same order, and at most [`MAX_NEW_SHARE`] of the ratings may differ from
//! its own (added, changed or removed); otherwise [`open`] says why and `train` trains in full.

use crate::artifact::{self, Manifest, SavedModel, CATALOG_FILE};
use crate::catalog::{Catalog, Movie};
use crate::embeddings::ItemEmbeddings;
use crate::interactions::{RatingMatrix, UserHistories};
use crate::models::item_knn::{ChangedHistory, NeighbourLists};
use crate::models::{ModelKind, Settings, TrainedLists, TrainedModel};
use crate::storage::matrix_file::open_matrix;
use crate::{Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// The largest share of the ratings that may be new, changed or removed for an incremental
/// training (the rest of the lists and factors are then close to what they were).
pub const MAX_NEW_SHARE: f64 = 0.05;

/// How the ratings differ from those of the previous training.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// Ratings of the previous training.
    pub previous_ratings: usize,
    /// Ratings now.
    pub ratings: usize,
    /// (user, movie) pairs rated now and not before.
    pub added: usize,
    /// Pairs rated both times, with another rating.
    pub changed: usize,
    /// Pairs rated before and not now.
    pub removed: usize,
    /// Users with any of these, or whose ratings moved in their history (a rating dated
    /// before others they had).
    pub users_changed: usize,
    /// Movies whose co-ratings changed: those any of these users rated, before or now.
    pub movies_changed: usize,
}

impl Delta {
    /// The share of today's ratings that are added or changed, with the removed ones counted
    /// too.
    pub fn new_share(&self) -> f64 {
        (self.added + self.changed + self.removed) as f64 / self.ratings.max(1) as f64
    }
}

/// A previous training to start from (see the module doc).
pub struct Previous {
    /// Its embedding models that an incremental fit reads (content).
    pub models: Vec<TrainedModel>,
    /// Its neighbour lists that an incremental fit reads (item-kNN).
    pub lists: Vec<TrainedLists>,
    /// How its ratings differ from today's.
    pub changes: Comparison,
    /// The co-like counts of its item-kNN lists (per entry), when it has them with the liked
    /// rating of this build.
    pub co_likes: Option<Vec<u32>>,
    /// The settings it was trained with (and the incremental training keeps).
    pub settings: Settings,
    /// Its directory and files, when it was read from disk (files may be copied from there).
    pub source: Option<(PathBuf, SavedModel)>,
    /// Incremental trainings in a row that made it ([`chain_of`]).
    pub chain: u64,
}

impl Previous {
    /// Its embedding model `kind`, if kept.
    pub fn model(&self, kind: ModelKind) -> Option<&TrainedModel> {
        self.models.iter().find(|m| m.kind == kind)
    }

    /// The neighbour lists of `kind`, if kept.
    pub fn lists(&self, kind: ModelKind) -> Option<&NeighbourLists> {
        self.lists.iter().find(|l| l.kind == kind).map(|l| &l.lists)
    }

    /// Its embeddings of `kind`: those it holds, else read from its directory (the
    /// collaborative rows "more like this" compares with today's are read only when it is
    /// fitted, not held through the training before it). `None` when it has no such model.
    pub fn embeddings(&self, kind: ModelKind) -> Result<Option<Cow<'_, ItemEmbeddings>>> {
        if let Some(model) = self.model(kind) {
            return Ok(Some(Cow::Borrowed(&model.embeddings)));
        }
        let Some((dir, saved)) = &self.source else {
            return Ok(None);
        };
        let read = saved_embeddings(dir, saved, kind)?;
        Ok(read.map(|(_, embeddings)| Cow::Owned(embeddings)))
    }

    /// The "more like this" lists with their candidate pools' floors, if kept with them.
    pub fn similar_lists(&self) -> Option<(&NeighbourLists, &[f32])> {
        let trained = self.lists.iter().find(|l| l.kind == ModelKind::Similar)?;
        Some((&trained.lists, trained.pool_floors.as_deref()?))
    }

    /// A previous training held in memory (what `evaluate --incremental` fits first), against
    /// the catalog and matrix of the new one; `Err` says why it cannot be started from.
    pub fn in_memory(
        previous: crate::fit::TrainedModels,
        settings: Settings,
        catalog: &Catalog,
        matrix: &RatingMatrix,
    ) -> std::result::Result<Previous, String> {
        same_movies(previous.catalog.movies(), catalog)?;
        let changes = compared(&UserHistories::from_matrix(&previous.matrix), matrix)?;
        let keep = [ModelKind::Content, settings.similar.collaborative];
        Ok(Previous {
            models: (previous.models.into_iter())
                .filter(|m| keep.contains(&m.kind))
                .collect(),
            lists: (previous.lists.into_iter())
                .filter(|l| matches!(l.kind, ModelKind::ItemKnn | ModelKind::Similar))
                .collect(),
            changes,
            co_likes: None,
            settings,
            source: None,
            chain: 0,
        })
    }
}

/// Incremental trainings in a row after which background retraining trains in full again (and
/// tunes): an item-kNN update ranks a candidate that was outside a previous list by its new
/// co-ratings alone, and a "more like this" update keeps the pool floors of the movies it did not
/// search, which adds up over updates; and settings chosen on older data drift from the best.
pub const MAX_CHAIN: u64 = 8;

/// How many incremental trainings in a row made the model directory of `manifest` (0 for a full
/// training).
pub fn chain_of(manifest: &Manifest) -> u64 {
    let record = &manifest.incremental;
    if record.get("incremental").and_then(|v| v.as_bool()) == Some(true) {
        record.get("chain").and_then(|v| v.as_u64()).unwrap_or(1)
    } else {
        0
    }
}

/// `dir`, when background retraining should start from it: it holds a model whose chain of
/// incremental trainings is shorter than [`MAX_CHAIN`].
pub fn worth_starting_from(dir: &Path) -> Option<PathBuf> {
    let saved = artifact::load(dir).ok()?;
    (chain_of(&saved.manifest) < MAX_CHAIN).then(|| dir.to_path_buf())
}

/// Reads what an incremental training needs of the model directory `dir` (checksums checked),
/// against the catalog and rating matrix of the new training. `Ok(Err(reason))` when it cannot
/// be started from (another catalog, too many new ratings, an older format); `Err` when the
/// directory cannot be read.
pub fn open(
    dir: &Path,
    catalog: &Catalog,
    matrix: &RatingMatrix,
) -> Result<std::result::Result<Previous, String>> {
    if artifact::outdated_dataset(dir).is_some() {
        return Ok(Err(format!(
            "{} holds a model of an older format version",
            dir.display()
        )));
    }
    let saved = artifact::load(dir)?;
    saved.verify(dir)?;
    let manifest = &saved.manifest;
    let bad = |message: String| Error::Artifact {
        dir: dir.to_path_buf(),
        message,
    };
    let movies: Vec<Movie> = serde_json::from_slice(&saved.file(dir, CATALOG_FILE)?)
        .map_err(|e| bad(format!("{CATALOG_FILE} is malformed: {e}")))?;
    if let Err(reason) = same_movies(&movies, catalog) {
        return Ok(Err(reason));
    }
    drop(movies);
    let n = catalog.len();
    let users = UserHistories::from_bytes(
        &manifest.personal.users_file,
        saved.file(dir, &manifest.personal.users_file)?,
        n,
    )?;
    let changes = compared(&users, matrix);
    drop(users);
    let changes = match changes {
        Ok(changes) => changes,
        Err(reason) => return Ok(Err(reason)),
    };
    let settings = settings_of(manifest).map_err(bad)?;
    let mut models = Vec::new();
    for kind in [ModelKind::Content] {
        let Some((file, embeddings)) = saved_embeddings(dir, &saved, kind)? else {
            continue;
        };
        if embeddings.len() != n {
            return Err(bad(format!(
                "{file} has {} rows for {n} movies",
                embeddings.len()
            )));
        }
        models.push(TrainedModel {
            kind,
            embeddings,
            details: manifest.models[&kind].details.clone(),
        });
    }
    let mut lists = Vec::new();
    for kind in [ModelKind::ItemKnn, ModelKind::Similar] {
        let Some(entry) = manifest.neighbour_lists.get(&kind) else {
            continue;
        };
        let file = &entry.file;
        let bytes = saved.file(dir, file)?;
        let pool_floors = match kind {
            ModelKind::Similar => {
                crate::models::item_knn::pool_floors_from_bytes(file, bytes.clone(), n)?
                    .map(|f| f.to_vec())
            }
            _ => None,
        };
        lists.push(TrainedLists {
            kind,
            lists: NeighbourLists::from_bytes(file, bytes, n)?,
            neighbours: entry.neighbours,
            details: entry.details.clone(),
            pool_floors,
        });
    }
    let explanations = &manifest.explanations;
    let co_likes = if explanations.lists == ModelKind::ItemKnn
        && explanations.liked_rating == crate::train::LIKED_RATING
    {
        let entries = (lists.iter().find(|l| l.kind == ModelKind::ItemKnn))
            .map_or(0, |l| l.lists.items.len());
        let file = crate::storage::section_file::SectionFile::open(
            saved.file(dir, &explanations.file)?,
            crate::models::item_knn::CO_LIKES_MAGIC,
            1,
            "co-like counts",
        )
        .map_err(|e| bad(format!("{}: {e}", explanations.file)))?;
        let counts: crate::storage::shared_slice::SharedSlice<u32> = file
            .section_of_len("counts", entries)
            .map_err(|e| bad(format!("{}: {e}", explanations.file)))?;
        Some(counts.to_vec())
    } else {
        None
    };
    // What was read above is either copied (content rows, co-like counts) or read again only
    // when a model is fitted (the lists): the pages the comparison and the checks touched (the
    // previous user histories alone are 12 bytes a rating, 400 MB at ml-latest's size) would
    // otherwise stay resident in this process through the SVD, and set the run's peak there
    // (2.6 GB against 2.2 GB at ml-latest's size, docs/BENCHMARKS.md).
    for file in saved.files.values() {
        file.release_resident();
    }
    Ok(Ok(Previous {
        models,
        lists,
        changes,
        co_likes,
        settings,
        chain: chain_of(&saved.manifest),
        source: Some((dir.to_path_buf(), saved)),
    }))
}

/// The embeddings of model `kind` in the model directory `dir` (read into memory), with their
/// file's name; `None` when it has no such model.
fn saved_embeddings(
    dir: &Path,
    saved: &SavedModel,
    kind: ModelKind,
) -> Result<Option<(String, ItemEmbeddings)>> {
    let Some(entry) = saved.manifest.models.get(&kind) else {
        return Ok(None);
    };
    let file = &entry.embeddings_file;
    let (_, dim, values) = open_matrix(file, saved.file(dir, file)?)?;
    Ok(Some((
        file.clone(),
        ItemEmbeddings::new(dim, values.to_vec())?,
    )))
}

/// The settings a model directory was trained with: its tuning's choice, or the defaults when
/// it was trained with `--no-tune`.
fn settings_of(manifest: &Manifest) -> std::result::Result<Settings, String> {
    match manifest.tuning.get("settings") {
        None => Ok(Settings::default()),
        Some(settings) => serde_json::from_value(settings.clone())
            .map_err(|e| format!("the manifest's tuning settings cannot be read: {e}")),
    }
}

/// Whether `previous` lists the movies of `catalog`, in its order.
fn same_movies(previous: &[Movie], catalog: &Catalog) -> std::result::Result<(), String> {
    let now = catalog.movies();
    if previous.len() == now.len()
        && previous
            .iter()
            .zip(now)
            .all(|(a, b)| a.movie_id == b.movie_id)
    {
        return Ok(());
    }
    let before: std::collections::HashSet<u32> = previous.iter().map(|m| m.movie_id).collect();
    let after: std::collections::HashSet<u32> = now.iter().map(|m| m.movie_id).collect();
    Err(format!(
        "the catalog changed ({} movies before, {} now: {} added, {} removed{})",
        previous.len(),
        now.len(),
        after.difference(&before).count(),
        before.difference(&after).count(),
        if before == after {
            ", in another order"
        } else {
            ""
        }
    ))
}

/// How the ratings of `matrix` differ from the histories `before` ([`compare`]); `Err` with the
/// reason when more than [`MAX_NEW_SHARE`] of them do.
fn compared(
    before: &UserHistories,
    matrix: &RatingMatrix,
) -> std::result::Result<Comparison, String> {
    // Today's histories are built again when `train` writes them: holding these 12 bytes a
    // rating (400 MB at ml-latest's size) until then would raise the run's peak more than the
    // 0.5 s the second transpose costs.
    let changes = compare(before, &UserHistories::from_matrix(matrix));
    let delta = &changes.delta;
    if delta.new_share() <= MAX_NEW_SHARE {
        return Ok(changes);
    }
    Err(format!(
        "{:.1}% of the ratings differ from the previous training's ({} added, {} changed, {} \
         removed of {}), more than the {:.0}% an incremental training allows",
        100.0 * delta.new_share(),
        delta.added,
        delta.changed,
        delta.removed,
        delta.ratings,
        100.0 * MAX_NEW_SHARE
    ))
}

/// What [`compare`] finds.
pub struct Comparison {
    /// The counts.
    pub delta: Delta,
    /// Per movie, whether its co-ratings changed: every movie a changed user rated, before or
    /// after.
    pub changed: Vec<bool>,
    /// Each changed user's history before and after (in user order; a user who is gone has an
    /// empty one after, a new user an empty one before).
    pub histories: Vec<ChangedHistory>,
    /// Each movie's sum of squared ratings before.
    pub before_sq_norms: Vec<f32>,
    /// Each movie's number of ratings before.
    pub before_counts: Vec<u32>,
}

/// How the histories `after` differ from `before` (both of one catalog).
pub fn compare(before: &UserHistories, after: &UserHistories) -> Comparison {
    let n_movies = after.movies.max(before.movies);
    // One user's entries: (movie, rating bits, position), sorted by movie.
    let entries = |h: &UserHistories, u: usize| -> Vec<(u32, u32, u32)> {
        let span = h.indptr[u] as usize..h.indptr[u + 1] as usize;
        let mut v: Vec<(u32, u32, u32)> = span
            .map(|e| (h.items[e], h.ratings[e].to_bits(), h.positions[e]))
            .collect();
        v.sort_unstable();
        v
    };
    // Per user of `after`: (added, changed, removed, moved) against the same user before.
    let per_user: Vec<(usize, usize, usize, bool)> = (0..after.user_ids.len())
        .into_par_iter()
        .map(|u| {
            let Ok(b) = before.user_ids.binary_search(&after.user_ids[u]) else {
                return (
                    (after.indptr[u + 1] - after.indptr[u]) as usize,
                    0,
                    0,
                    false,
                );
            };
            let (a_span, b_span) = (
                after.indptr[u] as usize..after.indptr[u + 1] as usize,
                before.indptr[b] as usize..before.indptr[b + 1] as usize,
            );
            // The common case first: the same history, entry by entry.
            if a_span.len() == b_span.len()
                && a_span.clone().zip(b_span.clone()).all(|(x, y)| {
                    after.items[x] == before.items[y]
                        && after.ratings[x].to_bits() == before.ratings[y].to_bits()
                })
            {
                return (0, 0, 0, false);
            }
            let (now, then) = (entries(after, u), entries(before, b));
            let (mut i, mut j) = (0, 0);
            let (mut added, mut changed, mut removed, mut moved) = (0, 0, 0, false);
            while i < now.len() || j < then.len() {
                match (now.get(i), then.get(j)) {
                    (Some(x), Some(y)) if x.0 == y.0 => {
                        changed += usize::from(x.1 != y.1);
                        moved |= x.2 != y.2;
                        i += 1;
                        j += 1;
                    }
                    (Some(x), Some(y)) if x.0 < y.0 => {
                        added += 1;
                        i += 1;
                    }
                    (Some(_), None) => {
                        added += 1;
                        i += 1;
                    }
                    _ => {
                        removed += 1;
                        j += 1;
                    }
                }
            }
            (added, changed, removed, moved)
        })
        .collect();
    let mut changed_movies = vec![false; n_movies];
    let mut mark = |h: &UserHistories, u: usize| {
        for e in h.indptr[u] as usize..h.indptr[u + 1] as usize {
            if let Some(flag) = changed_movies.get_mut(h.items[e] as usize) {
                *flag = true;
            }
        }
    };
    let mut delta = Delta {
        previous_ratings: before.items.len(),
        ratings: after.items.len(),
        ..Delta::default()
    };
    let history = |h: &UserHistories, u: Option<usize>| -> Vec<(u32, f32)> {
        u.map_or_else(Vec::new, |u| {
            (h.indptr[u] as usize..h.indptr[u + 1] as usize)
                .map(|e| (h.items[e], h.ratings[e]))
                .collect()
        })
    };
    let mut histories = Vec::new();
    for (u, &(added, changed, removed, moved)) in per_user.iter().enumerate() {
        if added + changed + removed == 0 && !moved {
            continue;
        }
        delta.added += added;
        delta.changed += changed;
        delta.removed += removed;
        delta.users_changed += 1;
        mark(after, u);
        let b = before.user_ids.binary_search(&after.user_ids[u]).ok();
        if let Some(b) = b {
            mark(before, b);
        }
        histories.push(ChangedHistory {
            before: history(before, b),
            after: history(after, Some(u)),
        });
    }
    // Users who are gone.
    for b in 0..before.user_ids.len() {
        if after.user_ids.binary_search(&before.user_ids[b]).is_err() {
            delta.removed += (before.indptr[b + 1] - before.indptr[b]) as usize;
            delta.users_changed += 1;
            mark(before, b);
            histories.push(ChangedHistory {
                before: history(before, Some(b)),
                after: Vec::new(),
            });
        }
    }
    changed_movies.truncate(after.movies);
    delta.movies_changed = changed_movies.iter().filter(|&&c| c).count();
    let mut before_sq_norms = vec![0f32; after.movies];
    let mut before_counts = vec![0u32; after.movies];
    for (&item, &rating) in before.items.iter().zip(before.ratings.iter()) {
        if let Some(sum) = before_sq_norms.get_mut(item as usize) {
            *sum += rating * rating;
            before_counts[item as usize] += 1;
        }
    }
    Comparison {
        delta,
        changed: changed_movies,
        histories,
        before_sq_norms,
        before_counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::numbered_catalog;
    use crate::data::Rating;
    use crate::interactions::tests::rating;

    fn histories(catalog: &Catalog, ratings: &[Rating]) -> UserHistories {
        UserHistories::from_matrix(&RatingMatrix::build(catalog, ratings))
    }

    #[test]
    fn comparing_histories_counts_added_changed_and_removed_ratings_and_marks_their_users_movies() {
        let catalog = numbered_catalog(6);
        let before = vec![
            rating(1, 1, 4.0, 1),
            rating(1, 2, 3.0, 2),
            rating(2, 3, 5.0, 1),
            rating(3, 4, 2.0, 1),
            rating(4, 5, 1.0, 1),
        ];
        // User 1 rates movie 6 after the rest; user 2 changes its rating; user 3 is unchanged;
        // user 4 is gone; user 5 is new.
        let after = vec![
            rating(1, 1, 4.0, 1),
            rating(1, 2, 3.0, 2),
            rating(1, 6, 5.0, 3),
            rating(2, 3, 4.0, 1),
            rating(3, 4, 2.0, 1),
            rating(5, 4, 3.0, 1),
        ];
        let Comparison {
            delta,
            changed,
            histories: changed_histories,
            ..
        } = compare(&histories(&catalog, &before), &histories(&catalog, &after));
        assert_eq!(changed_histories.len(), 4);
        assert_eq!(
            changed_histories[0],
            ChangedHistory {
                before: vec![(0, 4.0), (1, 3.0)],
                after: vec![(0, 4.0), (1, 3.0), (5, 5.0)],
            }
        );
        assert_eq!(
            delta,
            Delta {
                previous_ratings: 5,
                ratings: 6,
                added: 2,
                changed: 1,
                removed: 1,
                users_changed: 4,
                movies_changed: 6,
            }
        );
        assert_eq!(
            changed,
            vec![true; 6],
            "movie 4 through user 5, 5 through user 4"
        );
        // Only user 1's new rating: movies 1, 2 and 6.
        let after = [&before[..], &[rating(1, 6, 5.0, 3)]].concat();
        let Comparison {
            delta,
            changed,
            before_sq_norms,
            before_counts,
            ..
        } = compare(&histories(&catalog, &before), &histories(&catalog, &after));
        assert_eq!(before_sq_norms, [16.0, 9.0, 25.0, 4.0, 1.0, 0.0]);
        assert_eq!(before_counts, [1, 1, 1, 1, 1, 0]);
        assert_eq!((delta.added, delta.changed, delta.removed), (1, 0, 0));
        assert_eq!(changed, [true, true, false, false, false, true]);
        assert!((delta.new_share() - 1.0 / 6.0).abs() < 1e-12);
        let same = compare(&histories(&catalog, &before), &histories(&catalog, &before));
        assert_eq!(same.delta.new_share(), 0.0);
        assert!(same.changed.iter().all(|&c| !c) && same.histories.is_empty());
    }
}
