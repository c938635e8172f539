//! The recommender a model directory becomes once loaded: catalog, embeddings, indexes and 2-D
//! maps in memory, answering "movies like X" for the CLI and the server alike.

pub use crate::artifact::Verify;
use crate::artifact::{self, CoLikes, EmbeddingModel, Manifest, PersonalLists};
use crate::catalog::{Catalog, CompiledFilter, MatchKind, MovieFilter, MovieQuery, MovieView};
use crate::embeddings::ItemEmbeddings;
use crate::index::{IndexKind, VectorIndex};
use crate::models::item_knn::NeighbourLists;
use crate::models::personal::{pick_balanced, score_history, HistoryEntry, Pick};
use crate::models::ModelKind;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Smallest number of recommendations one may ask for.
pub const MIN_K: usize = 1;
/// Largest number of recommendations one may ask for.
pub const MAX_K: usize = 100;

/// Most results [`popular_ties_first`] fetches to complete a tie at the cut: bounded work per
/// request, enough for the largest groups of identical content vectors on the bundled data
/// (about 240 untagged dramas of the 2000s).
pub const MAX_TIE_FETCH: usize = 1_000;

/// The best `k` results of a best-first search, equal scores (to the four decimals answers
/// show) ordered by popularity, then by row. `search(n)` gives the best `n`; it is asked for a
/// few more than `k` and then for twice as many until the results tied with the `k`-th are all
/// in (the last fetched scores below it), or [`MAX_TIE_FETCH`] are. Without this, a group of
/// movies with identical vectors (untagged films of one genre and decade have the same content
/// vector) would always answer with its lowest ids, obscure or unrated as they may be.
pub fn popular_ties_first<T>(
    k: usize,
    mut search: impl FnMut(usize) -> Vec<T>,
    scored: impl Fn(&T) -> (u32, f32),
    popularity: impl Fn(u32) -> u32,
) -> Vec<T> {
    let shown = |s: f32| (s * 10_000.0).round() as i64;
    let most = MAX_TIE_FETCH.max(k);
    let mut want = (k + k / 2 + 5).min(most);
    let mut found = loop {
        let found = search(want);
        let complete = k == 0
            || found.len() < want
            || want >= most
            || shown(scored(&found[k.min(found.len()) - 1]).1)
                > shown(scored(&found[found.len() - 1]).1);
        if complete {
            break found;
        }
        want = (want * 2).min(most);
    };
    found.sort_by(|a, b| {
        let ((ia, sa), (ib, sb)) = (scored(a), scored(b));
        shown(sb)
            .cmp(&shown(sa))
            .then(popularity(ib).cmp(&popularity(ia)))
            .then(ia.cmp(&ib))
    });
    found.truncate(k);
    found
}
/// Number of recommendations when none is given.
pub const DEFAULT_K: usize = 10;
/// Model used when none is given: "more like this" (films a person would call similar). The
/// next-liked answer, "fans also liked", is `collaborative`.
pub const DEFAULT_MODEL: ModelKind = ModelKind::Similar;
/// A query movie with at least this many ratings is well known: unless the request sets
/// `min_ratings` itself, its results must have at least [`KNOWN_MIN_RATINGS`] ratings, so that
/// obscure films never fill the list of a well-known one by accident.
pub const KNOWN_QUERY_RATINGS: u32 = 20;
/// See [`KNOWN_QUERY_RATINGS`].
pub const KNOWN_MIN_RATINGS: u32 = 5;
/// Model whose 2-D map the plot shows when none is asked for (an embedding model).
pub const DEFAULT_PLOT_MODEL: ModelKind = ModelKind::Hybrid;
/// Index used when none is given.
pub const DEFAULT_INDEX: IndexKind = IndexKind::Exact;

/// "Movies like this one".
#[derive(Clone, Debug, PartialEq)]
pub struct SimilarRequest {
    /// The query movie.
    pub movie: MovieQuery,
    /// Further query movies (at most [`MAX_QUERY_MOVIES`] in all): the results are near all of
    /// them. Embedding models search from the mean of the movies' unit vectors; neighbour-list
    /// models add up the movies' lists. None of the query movies is returned.
    pub also: Vec<MovieQuery>,
    /// How many results (`MIN_K..=MAX_K`).
    pub k: usize,
    /// Which embeddings.
    pub model: ModelKind,
    /// Which index.
    pub index: IndexKind,
    /// Which movies may be returned (applied inside the search, so `k` still come back when
    /// most movies are filtered out; neighbour-list models can only return movies on their
    /// stored lists).
    pub filter: MovieFilter,
}

/// A result movie with its similarity to the query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoredMovie {
    /// The movie.
    #[serde(flatten)]
    pub movie: MovieView,
    /// Cosine similarity to the query (higher is closer).
    pub score: f32,
    /// Why it was picked (absent when there is nothing to say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<Explanation>,
}

/// Why a movie was recommended: what it shares with the query movie (or, for a person, with the
/// liked movie that explains it best).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// The movie it is compared with (the query, or one the person liked).
    pub because_of: u32,
    /// Genres both have.
    #[schema(value_type = Vec<String>)]
    pub shared_genres: Vec<Arc<str>>,
    /// The decade both were released in, if the same.
    pub shared_decade: Option<String>,
    /// How many users liked both (rated both at least 4 stars), when the movie is among the
    /// other's collaborative neighbours.
    pub co_likes: Option<u32>,
    /// Cosine similarity of the two movies' content embeddings (genres, decade, tags).
    pub content_similarity: f32,
    /// The same in a short sentence.
    pub text: String,
}

/// The answer to a [`SimilarRequest`]: the JSON shape of `recommend --json` and the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recommendations {
    /// The movie the query resolved to.
    pub query: MovieView,
    /// The model used (`collaborative` resolved to the model it stands for).
    pub model: ModelKind,
    /// The index used (`lists` when a neighbour-list model answered: no index applies).
    pub index: IndexKind,
    /// The index's recall@10 against exact search, measured when it was built.
    pub recall: f32,
    /// The further query movies, when several were asked for (`movies`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<MovieView>,
    /// The results, most similar first.
    pub results: Vec<ScoredMovie>,
    /// Other movies that matched the query text as well as the chosen one.
    pub alternatives: Vec<MovieView>,
    /// How the query text matched `query`: `exact`, `close` or `loose` (a guess, to be shown as
    /// one with the `alternatives`); `exact` for an id.
    #[serde(rename = "match")]
    pub r#match: MatchKind,
}

/// Most query movies one similar-movies request may name.
pub const MAX_QUERY_MOVIES: usize = 100;

/// Who to recommend for.
#[derive(Clone, Debug, PartialEq)]
pub enum PersonalTarget {
    /// A MovieLens user of the training data (their rated movies are excluded).
    User(u32),
    /// An ad-hoc list of liked and disliked movies (both excluded).
    Likes {
        /// Movies the person liked.
        likes: Vec<MovieQuery>,
        /// Movies the person disliked.
        dislikes: Vec<MovieQuery>,
    },
}

/// The answer to a personalised request: the JSON shape of `recommend --user/--likes` and the
/// API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PersonalRecommendations {
    /// The MovieLens user, when asked for one.
    pub user: Option<u32>,
    /// How many movies the user has rated (excluded from the results).
    pub rated: usize,
    /// The liked movies the request resolved to.
    pub liked: Vec<MovieView>,
    /// The disliked movies the request resolved to.
    pub disliked: Vec<MovieView>,
    /// The model that scored them.
    pub model: ModelKind,
    /// The results, best first; `score` is the summed neighbour similarity.
    pub results: Vec<ScoredMovie>,
}

/// A loaded model directory.
pub struct Engine {
    dir: PathBuf,
    manifest: Manifest,
    catalog: Catalog,
    models: BTreeMap<ModelKind, EmbeddingModel>,
    lists: BTreeMap<ModelKind, NeighbourLists>,
    personal: PersonalLists,
    co_likes: CoLikes,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("dir", &self.dir).finish()
    }
}

impl Engine {
    /// Opens the model directory `dir` and verifies every file's checksum (reading the whole
    /// directory once).
    pub fn open(dir: &Path) -> Result<Engine> {
        Engine::open_with(dir, Verify::Checksums)
    }

    /// Opens the model directory `dir`, checking its checksums or not (see [`Verify`]).
    pub fn open_with(dir: &Path, verify: Verify) -> Result<Engine> {
        let loaded = artifact::open(dir, verify)?;
        Ok(Engine {
            dir: loaded.dir,
            manifest: loaded.manifest,
            catalog: loaded.catalog,
            models: loaded.models,
            lists: loaded.lists,
            personal: loaded.personal,
            co_likes: loaded.co_likes,
        })
    }

    /// The directory this engine was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The model directory's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The movie catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The stored model `model` names (`collaborative` becomes the default collaborative model).
    pub fn resolve_model(&self, model: ModelKind) -> ModelKind {
        model.resolve(self.manifest.default_collaborative)
    }

    /// The 2-D map of an embedding model: `(model, [x, y] per catalog movie, flattened)`.
    pub fn projection(&self, model: ModelKind) -> Result<(ModelKind, &[f32])> {
        let resolved = self.resolve_model(model);
        match self.models.get(&resolved) {
            Some(served) => Ok((resolved, &served.projection)),
            None => Err(Error::invalid(
                "model",
                format!(
                    "{} has no embedding to plot (it is a neighbour-list model); choose one of: {}",
                    describe(model, resolved),
                    ModelKind::EMBEDDINGS.map(ModelKind::as_str).join(", ")
                ),
            )),
        }
    }

    /// The searcher for `model` (already resolved) and `index`, and the index that answers: an
    /// index over its embeddings, or its neighbour lists whatever index was asked for (they
    /// were computed exactly at training time, so no index applies: reported as `lists`).
    fn searcher(&self, model: ModelKind, index: IndexKind) -> Result<(Searcher<'_>, IndexKind)> {
        if let Some(lists) = self.lists.get(&model) {
            return Ok((Searcher::Lists(lists), IndexKind::Lists));
        }
        let served = &self.models[&model];
        let found: &dyn VectorIndex = match index {
            IndexKind::Exact => &served.exact,
            IndexKind::Lists => {
                return Err(Error::invalid(
                    "index",
                    format!(
                        "{model} is an embedding model: choose its index among {} (lists is what \
                         neighbour-list models answer from)",
                        IndexKind::ALL.map(IndexKind::as_str).join(", ")
                    ),
                ))
            }
            other => served
                .approximate
                .get(&other)
                .map(Box::as_ref)
                .ok_or_else(|| Error::invalid("index", format!("no {other} index for {model}")))?,
        };
        Ok((Searcher::Index(found), index))
    }

    /// The recall@10 of `index` over `model`, as measured at build time (1 for exact search and
    /// neighbour lists).
    pub fn recall(&self, model: ModelKind, index: IndexKind) -> f32 {
        self.manifest
            .models
            .get(&self.resolve_model(model))
            .and_then(|m| m.indexes.get(&index))
            .map_or(1.0, |i| i.recall_at_10)
    }

    /// Validates `k` against `MIN_K..=MAX_K`.
    pub fn check_k(k: usize) -> Result<usize> {
        if (MIN_K..=MAX_K).contains(&k) {
            Ok(k)
        } else {
            Err(Error::invalid(
                "k",
                format!("k must be between {MIN_K} and {MAX_K}, got {k}"),
            ))
        }
    }

    /// Movies most similar to the requested one (or ones), never including them, most similar
    /// first.
    pub fn similar(&self, request: &SimilarRequest) -> Result<Recommendations> {
        let k = Engine::check_k(request.k)?;
        if request.also.len() >= MAX_QUERY_MOVIES {
            return Err(Error::invalid(
                "movies",
                format!(
                    "movies: at most {MAX_QUERY_MOVIES} query movies, got {}",
                    request.also.len() + 1
                ),
            ));
        }
        let model = self.resolve_model(request.model);
        let (searcher, index) = self.searcher(model, request.index)?;
        let resolved = self.catalog.resolve(&request.movie)?;
        let mut queries = vec![resolved.item];
        for query in &request.also {
            let item = self.catalog.resolve(query)?.item;
            if !queries.contains(&item) {
                queries.push(item);
            }
        }
        let mut filter = request.filter.clone();
        let known = queries
            .iter()
            .any(|&q| self.catalog.movie(q).rating_count >= KNOWN_QUERY_RATINGS);
        if known && filter.min_ratings.is_none() {
            filter.min_ratings = Some(KNOWN_MIN_RATINGS);
        }
        let filter = CompiledFilter::new(&self.catalog, &filter)?;
        let view = |item: u32| self.catalog.movie(item).view();
        let allow = |row: u32| filter.allows(row) && !queries.contains(&row);
        // Equal scores at the cut are ordered by popularity (never by id): more results are
        // fetched until the tie at the k-th score is whole.
        let popularity = |item: u32| self.catalog.movie(item).rating_count;
        // Several movies: each result's reason (the query it is nearest) explains it.
        let mut reasons = BTreeMap::new();
        let found: Vec<(u32, f32)> = if queries.len() == 1 {
            popular_ties_first(
                k,
                |n| searcher.neighbours(resolved.item, n, &allow),
                |&found| found,
                popularity,
            )
        } else {
            let picks = popular_ties_first(
                k,
                |n| searcher.near_all(&queries, n, &allow),
                |p| (p.item, p.score),
                popularity,
            );
            reasons.extend(picks.iter().map(|p| (p.item, p.reason)));
            picks.into_iter().map(|p| (p.item, p.score)).collect()
        };
        Ok(Recommendations {
            query: view(resolved.item),
            model,
            index,
            recall: self.recall(model, index),
            also: queries[1..].iter().map(|&i| view(i)).collect(),
            results: found
                .into_iter()
                .map(|(item, score)| ScoredMovie {
                    movie: view(item),
                    score: (score * 10_000.0).round() / 10_000.0,
                    why: match reasons.get(&item) {
                        _ if queries.len() == 1 => Some(self.explain(resolved.item, item)),
                        Some(&reason) => Some(self.explain(reason, item)),
                        None => self.explain_personal(&queries, item),
                    },
                })
                .collect(),
            alternatives: resolved.alternatives.iter().map(|&i| view(i)).collect(),
            r#match: resolved.kind,
        })
    }

    /// How many users liked both `a` and `b`, if `b` is among `a`'s collaborative neighbours
    /// (or `a` among `b`'s).
    fn co_likes(&self, a: u32, b: u32) -> Option<u32> {
        let lists = &self.lists[&self.co_likes.lists];
        let find = |from: u32, to: u32| {
            let start = lists.span(from).start;
            lists
                .of(from)
                .position(|(j, _)| j == to)
                .map(|p| self.co_likes.counts[start + p])
        };
        find(a, b).or_else(|| find(b, a))
    }

    /// Why `item` goes with `because_of`: shared genres and decade, co-likes, content match.
    pub fn explain(&self, because_of: u32, item: u32) -> Explanation {
        let (a, b) = (self.catalog.movie(because_of), self.catalog.movie(item));
        let shared_genres: Vec<Arc<str>> = b
            .genres
            .iter()
            .filter(|g| a.genres.contains(g))
            .cloned()
            .collect();
        let shared_decade = match (a.year, b.year) {
            (Some(x), Some(y)) if x / 10 == y / 10 => a.decade(),
            _ => None,
        };
        let co_likes = self.co_likes(because_of, item);
        let content = &self.models[&ModelKind::Content].exact;
        let content_similarity = (content.similarity(because_of, item) * 100.0).round() / 100.0;
        // One string written in place: this runs for every result of every answer.
        let mut text = String::with_capacity(160);
        let part = |text: &mut String| {
            if !text.is_empty() {
                text.push_str(" · ");
            }
        };
        for (i, genre) in shared_genres.iter().enumerate() {
            text.push_str(if i == 0 { "" } else { ", " });
            text.push_str(genre);
        }
        if let Some(decade) = &shared_decade {
            part(&mut text);
            let _ = write!(text, "both from the {decade}");
        }
        match co_likes {
            Some(1) => {
                part(&mut text);
                let _ = write!(text, "1 person who liked {} also liked it", a.title);
            }
            Some(n) if n > 1 => {
                part(&mut text);
                let _ = write!(text, "{n} people who liked {} also liked it", a.title);
            }
            _ => {}
        }
        part(&mut text);
        let _ = write!(text, "content match {content_similarity:.2}");
        Explanation {
            because_of: a.movie_id,
            shared_genres,
            shared_decade,
            co_likes,
            content_similarity,
            text,
        }
    }

    /// Item-to-item neighbours of many movies at once (all cores): for each MovieLens id, in
    /// order, its `k` most similar movies as `(movieId, score)`.
    pub fn similar_batch(
        &self,
        movie_ids: &[u32],
        k: usize,
        model: ModelKind,
        index: IndexKind,
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        use rayon::prelude::*;
        let k = Engine::check_k(k)?;
        let items: Vec<u32> = movie_ids
            .iter()
            .map(|&id| {
                self.catalog
                    .item_of(id)
                    .ok_or_else(|| Error::MovieNotFound {
                        query: format!("movieId {id}"),
                        suggestions: Vec::new(),
                    })
            })
            .collect::<Result<_>>()?;
        let model = self.resolve_model(model);
        let (searcher, index) = self.searcher(model, index)?;
        if let (Some(served), IndexKind::Exact) = (self.models.get(&model), index) {
            // Many exact queries at once: one matrix product per block of rows.
            let embeddings = served.exact.embeddings();
            let rows: Vec<f32> = items
                .iter()
                .flat_map(|&i| embeddings.row(i as usize).iter().copied())
                .collect();
            let queries = ItemEmbeddings::new(embeddings.dim(), rows)?;
            let found = served
                .exact
                .search_batch(&queries, k, &|q, row| row == items[q]);
            return Ok(found
                .into_iter()
                .map(|neighbours| {
                    neighbours
                        .iter()
                        .map(|n| (self.catalog.movie(n.item).movie_id, n.score))
                        .collect()
                })
                .collect());
        }
        Ok(items
            .par_iter()
            .map(|&item| {
                searcher
                    .neighbours(item, k, &|_| true)
                    .into_iter()
                    .map(|(j, score)| (self.catalog.movie(j).movie_id, score))
                    .collect()
            })
            .collect())
    }

    /// Personalised recommendations for a user of the training data or a list of liked (and
    /// disliked) movies; movies the user rated, liked or disliked are never recommended.
    pub fn personal(
        &self,
        target: &PersonalTarget,
        k: usize,
        filter: &MovieFilter,
    ) -> Result<PersonalRecommendations> {
        let k = Engine::check_k(k)?;
        let filter = CompiledFilter::new(&self.catalog, filter)?;
        let personal = &self.personal;
        let (history, user, liked, disliked) = match target {
            PersonalTarget::User(user_id) => {
                let history: Vec<HistoryEntry> = personal
                    .users
                    .history(*user_id)
                    .ok_or(Error::UserNotFound { user_id: *user_id })?
                    .collect();
                (history, Some(*user_id), Vec::new(), Vec::new())
            }
            PersonalTarget::Likes { likes, dislikes } => {
                if likes.is_empty() {
                    return Err(Error::invalid(
                        "likes",
                        "likes: name at least one movie the person liked",
                    ));
                }
                // Bounded work: each movie named costs a title search and a list walk.
                for (field, named) in [("likes", likes), ("dislikes", dislikes)] {
                    if named.len() > MAX_QUERY_MOVIES {
                        return Err(Error::invalid(
                            field,
                            format!(
                                "{field}: at most {MAX_QUERY_MOVIES} movies, got {}",
                                named.len()
                            ),
                        ));
                    }
                }
                let resolve = |queries: &[MovieQuery]| -> Result<Vec<u32>> {
                    queries
                        .iter()
                        .map(|q| self.catalog.resolve(q).map(|r| r.item))
                        .collect()
                };
                let (liked, disliked) = (resolve(likes)?, resolve(dislikes)?);
                // A like votes for its neighbours and a dislike against them, equally strongly
                // and all equally recent: ratings two stars either side of the scoring's pivot.
                let pivot = personal.scoring.pivot;
                let history = liked
                    .iter()
                    .map(|&item| (item, pivot + 2.0))
                    .chain(disliked.iter().map(|&item| (item, pivot - 2.0)))
                    .map(|(item, rating)| HistoryEntry {
                        item,
                        rating,
                        position: 0,
                    })
                    .collect();
                (history, None, liked, disliked)
            }
        };
        self.recommend_from(history, user, liked, disliked, k, &filter)
    }

    /// Personalised recommendations for a profile of the live database from its current
    /// ratings, `(movieId, stars)` oldest first: the same scoring as for a user of the training
    /// data, so a rating given a moment ago counts at once. Movies not in the served model's
    /// catalog (added since it was trained) are skipped.
    pub fn personal_ratings(
        &self,
        user: u32,
        ratings: &[(u32, f32)],
        k: usize,
        filter: &MovieFilter,
    ) -> Result<PersonalRecommendations> {
        let k = Engine::check_k(k)?;
        let filter = CompiledFilter::new(&self.catalog, filter)?;
        let history = ratings
            .iter()
            .filter_map(|&(movie_id, rating)| Some((self.catalog.item_of(movie_id)?, rating)))
            .enumerate()
            .map(|(position, (item, rating))| HistoryEntry {
                item,
                rating,
                position: position as u32,
            })
            .collect();
        self.recommend_from(history, Some(user), Vec::new(), Vec::new(), k, &filter)
    }

    /// Scores `history` and explains the picks: the common end of the personal requests.
    fn recommend_from(
        &self,
        history: Vec<HistoryEntry>,
        user: Option<u32>,
        liked: Vec<u32>,
        disliked: Vec<u32>,
        k: usize,
        filter: &CompiledFilter,
    ) -> Result<PersonalRecommendations> {
        let personal = &self.personal;
        let view = |item: u32| self.catalog.movie(item).view();
        // The liked movies results are explained by: the most recent 200 rated at least the
        // explanations' "liked" rating (or the likes given).
        let liked_rating = self.manifest.explanations.liked_rating;
        let mut explaining: Vec<(u32, u32)> = history
            .iter()
            .filter(|h| user.is_none() || h.rating >= liked_rating)
            .filter(|h| user.is_some() || liked.contains(&h.item))
            .map(|h| (h.position, h.item))
            .collect();
        explaining.sort_unstable_by(|a, b| b.cmp(a));
        let explaining: Vec<u32> = explaining.iter().take(200).map(|&(_, item)| item).collect();
        let scored = score_history(
            &self.lists[&personal.model],
            &history,
            &personal.scoring,
            k,
            &|row| filter.allows(row),
        );
        Ok(PersonalRecommendations {
            user,
            rated: if user.is_some() { history.len() } else { 0 },
            liked: liked.iter().map(|&i| view(i)).collect(),
            disliked: disliked.iter().map(|&i| view(i)).collect(),
            model: personal.model,
            results: scored
                .iter()
                .map(|pick| ScoredMovie {
                    movie: view(pick.item),
                    score: (pick.score * 10_000.0).round() / 10_000.0,
                    // The movie whose vote was the largest (what the balance counted), if it is
                    // among the liked ones; else the liked movie it is most co-liked with.
                    why: if explaining.contains(&pick.reason) {
                        Some(self.explain(pick.reason, pick.item))
                    } else {
                        self.explain_personal(&explaining, pick.item)
                    },
                })
                .collect(),
        })
    }

    /// Explains `item` by the liked movie with the most co-likes with it (then the closest in
    /// content).
    fn explain_personal(&self, liked: &[u32], item: u32) -> Option<Explanation> {
        let content = &self.models[&ModelKind::Content].exact;
        let best = liked.iter().copied().max_by(|&a, &b| {
            let key = |h: u32| {
                (
                    self.co_likes(h, item).unwrap_or(0),
                    content.similarity(h, item),
                )
            };
            let (ka, kb) = (key(a), key(b));
            ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
        })?;
        Some(self.explain(best, item))
    }
}

/// How "movies like X" is answered for one model.
enum Searcher<'a> {
    Index(&'a dyn VectorIndex),
    Lists(&'a NeighbourLists),
}

impl Searcher<'_> {
    /// The `k` nearest movies to `item` (never itself) among those `allow` passes, best first,
    /// as `(row, score)`.
    fn neighbours(&self, item: u32, k: usize, allow: &dyn Fn(u32) -> bool) -> Vec<(u32, f32)> {
        match self {
            Searcher::Index(index) => index
                .search_item(item, k, allow)
                .iter()
                .map(|n| (n.item, n.score))
                .collect(),
            Searcher::Lists(lists) => lists.of(item).filter(|&(j, _)| allow(j)).take(k).collect(),
        }
    }

    /// The `k` movies nearest to all of `items` together, best first, each with its reason (the
    /// query it is nearest): from the mean of their unit vectors (the score is the cosine to that
    /// mean; the reason the query of highest cosine), or the mean of their list scores, each list
    /// divided by its best score (a movie missing from a list scores 0 there; the reason is the
    /// list giving it the most). Then balanced as personal recommendations are
    /// ([`pick_balanced`], discount [`NEAR_ALL_BALANCE`]), so that every query explains some.
    fn near_all(&self, items: &[u32], k: usize, allow: &dyn Fn(u32) -> bool) -> Vec<Pick> {
        let n = items.len() as f32;
        let candidates = match self {
            Searcher::Index(index) => {
                let embeddings = index.embeddings();
                let unit = |item: u32| {
                    let row = embeddings.row(item as usize);
                    let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                    (row, if norm > 0.0 { 1.0 / norm } else { 0.0 })
                };
                let mut mean = vec![0f32; embeddings.dim()];
                for &item in items {
                    let (row, scale) = unit(item);
                    mean.iter_mut()
                        .zip(row)
                        .for_each(|(m, x)| *m += x * scale / n);
                }
                // A larger pool than asked for, for the balance to choose from.
                index
                    .search(&mean, k * NEAR_ALL_POOL, allow)
                    .iter()
                    .map(|found| {
                        let (row, scale) = unit(found.item);
                        let cosine = |&q: &u32| {
                            let (query, q_scale) = unit(q);
                            row.iter().zip(query).map(|(a, b)| a * b).sum::<f32>() * scale * q_scale
                        };
                        let reason = items
                            .iter()
                            .max_by(|a, b| cosine(a).total_cmp(&cosine(b)))
                            .copied()
                            .unwrap_or(items[0]);
                        Pick {
                            item: found.item,
                            score: found.score,
                            reason,
                        }
                    })
                    .collect()
            }
            Searcher::Lists(lists) => {
                let mut scores: BTreeMap<u32, (f32, f32, u32)> = BTreeMap::new();
                for &item in items {
                    let top = lists.of(item).map(|(_, s)| s).fold(0.0, f32::max);
                    let scale = if top > 0.0 { 1.0 / (top * n) } else { 1.0 / n };
                    for (j, s) in lists.of(item).filter(|&(j, _)| allow(j)) {
                        let entry = scores.entry(j).or_insert((0.0, f32::NEG_INFINITY, item));
                        entry.0 += s * scale;
                        if s * scale > entry.1 {
                            (entry.1, entry.2) = (s * scale, item);
                        }
                    }
                }
                scores
                    .into_iter()
                    .map(|(item, (score, _, reason))| Pick {
                        item,
                        score,
                        reason,
                    })
                    .collect()
            }
        };
        pick_balanced(candidates, NEAR_ALL_BALANCE, k)
    }
}

/// The discount of a movie whose reason (the query movie it is nearest) already explains results
/// of a several-movie "more like this" request ([`pick_balanced`]). No held-out metric judges
/// such requests, so it is a rule of thumb: a second result explained by the same query movie
/// must score 1/0.6 ≈ 1.7 times as much as one explained by a query movie not yet used.
pub const NEAR_ALL_BALANCE: f32 = 0.6;

/// How many times `k` candidates the embedding models' several-movie search draws for the
/// balance to choose from.
const NEAR_ALL_POOL: usize = 3;

/// `collaborative (item_knn)` for an alias, the model's name otherwise.
fn describe(asked: ModelKind, resolved: ModelKind) -> String {
    if asked == resolved {
        resolved.to_string()
    } else {
        format!("{asked} ({resolved})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A best-first search over `scores` (row = index), counting how many results it was asked
    /// for in all.
    fn search<'a>(
        scores: &'a [f32],
        asked: &'a std::cell::Cell<usize>,
    ) -> impl FnMut(usize) -> Vec<(u32, f32)> + 'a {
        move |n| {
            asked.set(asked.get() + n);
            let mut all: Vec<(u32, f32)> = (0u32..).zip(scores.iter().copied()).collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            all.truncate(n);
            all
        }
    }

    #[test]
    fn a_tie_at_the_cut_is_fetched_whole_and_ordered_by_popularity() {
        // 300 movies with one score (a group of identical vectors); the most popular of them is
        // row 250, then 140; row 0 is unrated.
        let mut scores = vec![0.5f32; 300];
        scores.extend([0.9, 0.8]);
        let popularity = |row: u32| match row {
            250 => 90,
            140 => 40,
            0 => 0,
            300 | 301 => 1,
            _ => 3,
        };
        let asked = std::cell::Cell::new(0);
        let top = popular_ties_first(4, search(&scores, &asked), |&f| f, popularity);
        let rows: Vec<u32> = top.iter().map(|f| f.0).collect();
        // The better scores first whatever their popularity, then the tie by popularity, then
        // by row: never the unrated row 0 just because its id is lowest.
        assert_eq!(rows, vec![300, 301, 250, 140]);
        assert!(asked.get() <= 4 * 302, "bounded: asked for {}", asked.get());

        // No tie at the cut: one search of a few more than k.
        let distinct: Vec<f32> = (0..50).map(|i| i as f32 / 50.0).collect();
        let asked = std::cell::Cell::new(0);
        let top = popular_ties_first(5, search(&distinct, &asked), |&f| f, |_| 0);
        assert_eq!(
            top.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![49, 48, 47, 46, 45]
        );
        assert_eq!(asked.get(), 5 + 2 + 5);

        // A tie larger than the bound stops at the bound.
        let flat = vec![0.25f32; 5_000];
        let asked = std::cell::Cell::new(0);
        let top = popular_ties_first(10, search(&flat, &asked), |&f| f, |row| row % 7);
        assert_eq!(top.len(), 10);
        assert!(top.iter().all(|f| f.0 % 7 == 6));
        assert!(asked.get() < 3 * MAX_TIE_FETCH, "asked for {}", asked.get());
    }
}
