//! The request and response bodies and query strings of the API, as types: handlers read and
//! answer these, and the OpenAPI document (`openapi.rs`) derives its schemas from the same
//! types (`ToSchema`, `IntoParams`), so the document describes what the server actually does.
//! Doc comments on fields become the schema descriptions.

use crate::catalog::{MovieFilter, MovieView};
use crate::engine::Recommendations;
use crate::index::IndexKind;
use crate::models::ModelKind;
use crate::tracking::RunRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use utoipa::{IntoParams, ToSchema};

/// A movie named by title (matched fuzzily; the best-known match wins) or by MovieLens id.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(example = "toy story")]
pub enum MovieField {
    /// A MovieLens `movieId`.
    Id(u64),
    /// A title, or part of one (not blank).
    Title(String),
}

/// `POST /api/recommendations`: movies like one movie (`movie`) or like several together
/// (`movies`); exactly one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecommendationBody {
    /// The query movie.
    pub movie: Option<MovieField>,
    /// Several query movies (1–100): results near all of them, none of them returned.
    #[schema(min_items = 1, max_items = 100)]
    pub movies: Option<Vec<MovieField>>,
    /// How many results (default 10).
    #[schema(minimum = 1, maximum = 100, example = 10)]
    pub k: Option<i64>,
    /// Which model: `similar` ("more like this": films a person would call similar; the
    /// default) or `collaborative` ("fans also liked": what people who liked it watched next),
    /// or any other model by name.
    #[schema(value_type = Option<ModelKind>)]
    pub model: Option<String>,
    /// Which index (default `exact`) searches an embedding model; a neighbour-list model
    /// (`similar`, `item_knn`, `ease`, or a `collaborative` that stands for one of them)
    /// answers from its lists whatever is asked and reports `lists`; `lists` with an
    /// embedding model is an error.
    #[schema(value_type = Option<IndexKind>)]
    pub index: Option<String>,
    /// Which movies may be returned (default: any).
    #[serde(default)]
    pub filter: MovieFilter,
}

/// `POST /api/recommendations/for-likes`: recommendations for a list of liked (and disliked)
/// movies.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LikesBody {
    /// Movies the person liked (1–100).
    #[schema(min_items = 1, max_items = 100)]
    pub likes: Vec<MovieField>,
    /// Movies the person disliked (excluded, and their neighbours count against; at most 100).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub dislikes: Vec<MovieField>,
    /// How many results (default 10).
    #[schema(minimum = 1, maximum = 100, example = 10)]
    pub k: Option<i64>,
    /// Which movies may be returned (default: any).
    #[serde(default)]
    pub filter: MovieFilter,
}

/// `POST /recommendation`: the seed demo's request, kept so its clients keep working (an
/// unknown field is an error, as everywhere).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedBody {
    /// `FAISS` (exact index) or `ANNOY` (annoy index), both answered by "more like this"; the
    /// server also accepts them in lower case.
    #[schema(value_type = SeedModel)]
    pub model: String,
    /// How many results.
    #[schema(minimum = 1, maximum = 100, example = 5)]
    pub n_recommendations: i64,
    /// The query movie's title (not blank).
    #[schema(example = "Toy Story", pattern = "\\S")]
    pub movie_title: String,
}

/// The seed demo's two choices of model and index (the document's name for them: the body
/// field is read as a string, case-insensitively).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum SeedModel {
    /// "More like this" with the exact index.
    Faiss,
    /// "More like this" with the annoy index.
    Annoy,
}

/// `POST /api/admin/reload`: which model directory to swap in.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadBody {
    /// A model directory on the server (default: the one being served).
    #[schema(value_type = Option<String>)]
    pub model_dir: Option<PathBuf>,
}

/// `GET /api/movies/search` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The text typed so far (default: empty, which finds nothing).
    pub q: Option<String>,
    /// How many results (default 10).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<usize>,
}

/// `GET /api/runs` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsParams {
    /// Only runs of this command.
    #[param(value_type = Option<crate::tracking::RunKind>)]
    pub kind: Option<String>,
    /// At most this many runs, newest first.
    #[param(minimum = 1)]
    pub limit: Option<usize>,
}

/// `GET /api/projection` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectionParams {
    /// An embedding model (default `hybrid`); a neighbour-list model has no map.
    #[param(value_type = Option<ModelKind>)]
    pub model: Option<String>,
}

/// `GET /api/users/{userId}/recommendations` query: `k` and the filter in query-string form (lists
/// comma-separated, `genres=Comedy,Drama`). Unknown parameters are refused.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PersonalParams {
    /// How many results (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub k: Option<i64>,
    /// Keep movies having at least one of these genres (comma-separated).
    #[param(example = "Comedy,Drama")]
    pub genres: Option<String>,
    /// Drop movies having any of these genres (comma-separated).
    pub exclude_genres: Option<String>,
    /// Earliest release year (inclusive).
    pub year_min: Option<u16>,
    /// Latest release year (inclusive).
    pub year_max: Option<u16>,
    /// Keep movies with at least this many ratings.
    pub min_ratings: Option<u32>,
    /// MovieLens ids never to return (comma-separated).
    #[param(example = "1,2")]
    pub exclude: Option<String>,
}

/// `GET /api/health`: the served model and the choices it offers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: String,
    /// Movies in the catalog.
    pub movies: usize,
    /// The model names a request may use.
    pub models: Vec<ModelKind>,
    /// Each model name, with the stored model it names and how it answers.
    pub model_shapes: BTreeMap<String, ModelShapeView>,
    /// The index names a request may use.
    pub indexes: Vec<IndexKind>,
    /// The catalog's genres, for filters.
    pub genres: Vec<String>,
    /// What a request gets when it names none.
    pub defaults: Defaults,
    /// The latest release year among the catalog's movies (the data's last year), when any has
    /// one.
    pub latest_year: Option<u16>,
    /// When the model was trained (RFC 3339).
    pub trained_at: String,
    /// The fingerprint of the data set it was trained on.
    pub dataset: String,
}

/// A model name resolved: which stored model, and its shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelShapeView {
    /// The stored model the name stands for.
    pub model: ModelKind,
    /// Embeddings (any index) or neighbour lists (no index applies: `lists`).
    pub shape: ShapeName,
}

/// How a model answers "movies like X".
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShapeName {
    /// One vector per movie, searched by any index.
    Embeddings,
    /// Neighbour lists computed exactly at training time.
    NeighbourLists,
}

/// The defaults of a request.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Defaults {
    /// The model of `POST /api/recommendations`.
    pub model: ModelKind,
    /// The index of `POST /api/recommendations`.
    pub index: IndexKind,
    /// The number of results.
    pub k: usize,
    /// The model of `GET /api/projection`.
    pub plot_model: ModelKind,
}

/// `GET /api/movies/search`: the movies whose titles match, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MovieSearch {
    /// The query as received.
    pub query: String,
    /// The matches.
    pub results: Vec<MovieView>,
}

/// `GET /api/movies/titles`: every movie's id, title and year, in three parallel lists.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MovieTitles {
    /// MovieLens ids.
    pub movie_ids: Vec<u32>,
    /// Titles.
    #[schema(value_type = Vec<String>)]
    pub titles: Vec<std::sync::Arc<str>>,
    /// Release years (null when unknown).
    pub years: Vec<Option<u16>>,
}

/// `GET /api/projection`: the 2-D map of an embedding model, one point per movie.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Projection {
    /// The model mapped.
    pub model: ModelKind,
    /// MovieLens ids, parallel to `x` and `y`.
    pub movie_ids: Vec<u32>,
    /// Horizontal coordinates (three decimals).
    pub x: Vec<f32>,
    /// Vertical coordinates (three decimals).
    pub y: Vec<f32>,
}

/// `GET /api/runs`: the recorded runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunListing {
    /// The runs.
    pub runs: Vec<RunRecord>,
    /// Lines of the store that could not be read (`runs.jsonl:LINE: reason`).
    pub skipped: Vec<String>,
}

/// `POST /api/admin/reload`: the model now served.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reloaded {
    /// Always `reloaded`.
    #[schema(example = "reloaded")]
    pub status: String,
    /// The directory now served.
    pub model_dir: String,
    /// When that model was trained (RFC 3339).
    pub trained_at: String,
    /// Movies in its catalog.
    pub movies: usize,
    /// How long opening and verifying it took.
    pub seconds: f64,
}

/// `POST /recommendation`: the answer of `POST /api/recommendations`, plus the seed demo's
/// fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeedRecommendations {
    /// The full answer.
    #[serde(flatten)]
    pub answer: Recommendations,
    /// The title of the movie the query resolved to.
    pub movie_title: String,
    /// The results in the seed's shape.
    pub recommendations: Vec<SeedMovie>,
}

/// A result in the seed demo's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeedMovie {
    /// The title.
    pub title: String,
    /// The release year.
    pub year: Option<u16>,
    /// IMDb page, else MovieLens page.
    pub url: String,
}
