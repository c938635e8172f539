//! The live recommender's database: profiles, their ratings, the movies a site adds and the
//! impressions of what was recommended. One storage API ([`Store`]) with two backends:
//!
//! - **SQLite** ([`sqlite`], the default, `--database sqlite:PATH`): one file on one machine,
//!   nothing to install, group commit through one writer thread.
//! - **PostgreSQL** ([`postgres`], `--database postgres://USER@HOST:PORT/DB`): the shared
//!   database of many `serve` processes behind a load balancer (docs/DATABASE.md, "When one
//!   machine is not enough").
//!
//! Both hold the same tables under the same numbered migrations ([`schema`]), and one test
//! suite (`tests/store.rs`) runs against both. On first start the MovieLens release is imported
//! ([`Store::import_release`]); from then on every rating, profile and added movie is a row
//! here, and training reads a consistent snapshot of it ([`Store::export`]).

pub mod bulk;
pub mod import;
pub mod online;
pub mod postgres;
pub mod schema;
pub mod sqlite;

use crate::data::{Dataset, Rating};
use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use import::{Exported, FilesImported, Imported};
pub use online::OnlineDay;

/// The lowest and highest rating, in stars; ratings are in half stars.
pub const RATING_RANGE: (f32, f32) = (0.5, 5.0);

/// The database `serve` uses by default: `state/movierec.db` in the model directory's parent
/// (`models/state/movierec.db` for `models/default`), shared by the models trained there.
pub fn default_path(model_dir: &Path) -> PathBuf {
    model_dir
        .parent()
        .unwrap_or(Path::new("."))
        .join("state")
        .join("movierec.db")
}

/// A database error, naming the file.
pub(crate) fn db_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Database {
        path: path.to_path_buf(),
        message: crate::error::bounded(e.to_string()),
    }
}

/// A profile as stored: its id and, for a profile created through the API, its token's hash
/// (the release's own users have none and are readable by anyone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// The user id.
    pub user_id: u32,
    /// SHA-256 of the profile's token; `None` for a user of the imported release.
    pub token_hash: Option<[u8; 32]>,
}

/// One stored rating of a profile.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredRating {
    /// The profile.
    pub user_id: u32,
    /// The movie rated.
    pub movie_id: u32,
    /// Stars, 0.5–5 in halves.
    pub rating: f32,
    /// When it was given, seconds since the Unix epoch.
    pub timestamp: i64,
}

/// A movie as the admin API adds or changes it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct MovieRecord {
    /// MovieLens-style id.
    pub movie_id: u32,
    /// The title without its year (`Toy Story`).
    pub title: String,
    /// The release year, when known.
    pub year: Option<i32>,
    /// Genres.
    pub genres: Vec<String>,
    /// IMDb numeric id.
    pub imdb_id: Option<u32>,
    /// TMDb id.
    pub tmdb_id: Option<u32>,
}

impl MovieRecord {
    /// The title as MovieLens writes it in `movies.csv`: `Toy Story (1995)`.
    pub fn movielens_title(&self) -> String {
        match self.year {
            Some(year) => format!("{} ({year})", self.title.trim()),
            None => self.title.trim().to_string(),
        }
    }
}

/// A MovieLens title split into the title and its trailing `(YEAR)`: `Heat (1995)` gives
/// `Heat` and 1995.
pub fn split_year(raw: &str) -> (String, Option<i32>) {
    let trimmed = raw.trim();
    if let Some(open) = trimmed
        .strip_suffix(')')
        .and_then(|t| t.rfind('(').map(|i| (t, i)))
    {
        let (text, i) = open;
        let digits = &text[i + 1..];
        if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()) {
            let title = text[..i].trim_end();
            if !title.is_empty() {
                return (title.to_string(), digits.parse().ok());
            }
        }
    }
    (trimmed.to_string(), None)
}

/// SHA-256 of a token: what is stored and compared.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new secret token: 32 bytes from the operating system's random source, as 64 hex digits.
pub fn new_token() -> String {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that `rating` is on the scale: 0.5 to 5 in half stars.
pub fn check_rating(rating: f64) -> Result<f32> {
    let (low, high) = RATING_RANGE;
    if !rating.is_finite() || rating < f64::from(low) || rating > f64::from(high) {
        return Err(Error::invalid(
            "rating",
            format!("rating must be between {low} and {high} stars, got {rating}"),
        ));
    }
    if (rating * 2.0).fract() != 0.0 {
        return Err(Error::invalid(
            "rating",
            format!("rating must be in half stars (0.5, 1, 1.5, …, 5), got {rating}"),
        ));
    }
    Ok(rating as f32)
}

/// The error for a movie id not in the catalog.
pub fn unknown_movie(movie_id: u32) -> Error {
    Error::MovieNotFound {
        query: format!("movieId {movie_id}"),
        suggestions: Vec::new(),
    }
}

/// A change to a stored movie: given the movie as stored, returns it as it should be (or an
/// error, and nothing changes). Runs inside the backend's transaction.
pub type MovieChange = Box<dyn FnOnce(MovieRecord) -> Result<MovieRecord> + Send>;

/// What a backend stores and answers: every read and write the server, the importer and the
/// trainer make. Writes return once they are durable (committed); each is atomic.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Where the data is, for messages: the file, or the URL without its password.
    fn location(&self) -> &Path;

    /// Whether many servers may share this database (PostgreSQL), rather than one process
    /// owning it (SQLite).
    fn is_shared(&self) -> bool {
        false
    }

    /// Counts of what is stored: `(movies, users, ratings)`.
    async fn counts(&self) -> Result<(u64, u64, u64)>;

    /// Imports `dataset` (a loaded, validated release) into an empty database in one
    /// transaction; does nothing if a release or a catalog is there already (the database is
    /// the source of truth from then on). Safe when several servers start at once.
    async fn import_release(&self, dataset: Dataset) -> Result<Imported>;

    /// Adds or replaces `movies`, then adds or replaces `ratings` (creating their users, without
    /// a token, when they do not exist), all in one transaction: every rated movie must be in
    /// the catalog, else nothing is written.
    async fn import_rows(
        &self,
        movies: Vec<MovieRecord>,
        ratings: Vec<Rating>,
        now: i64,
    ) -> Result<FilesImported>;

    /// Creates a profile with the token hash `token_hash`: its id is one above every user id
    /// stored (the release's users included).
    async fn insert_user(&self, token_hash: [u8; 32], now: i64) -> Result<u32>;

    /// The profile `user_id`, if it exists.
    async fn user(&self, user_id: u32) -> Result<Option<UserRecord>>;

    /// The profile whose token hashes to `hash`, if any.
    async fn user_of_token(&self, hash: [u8; 32]) -> Result<Option<u32>>;

    /// `user_id`'s ratings, newest first (ties: the one written last first).
    async fn ratings_of(&self, user_id: u32) -> Result<Vec<StoredRating>>;

    /// Stores (or replaces) a rating. Fails with [`Error::MovieNotFound`] for a movie not in the
    /// catalog and [`Error::UserNotFound`] for a user that does not exist.
    async fn put_rating(&self, rating: StoredRating) -> Result<StoredRating>;

    /// Removes `user_id`'s rating of `movie_id`; true if there was one.
    async fn delete_rating(&self, user_id: u32, movie_id: u32) -> Result<bool>;

    /// Adds `movie`; false (and nothing written) if its id is taken.
    async fn add_movie(&self, movie: MovieRecord, now: i64) -> Result<bool>;

    /// Changes the movie `movie_id` by `change` (read and written in one transaction); fails
    /// with [`Error::MovieNotFound`] if there is no such movie.
    async fn change_movie(&self, movie_id: u32, change: MovieChange) -> Result<MovieRecord>;

    /// Records that `movies` were recommended to `user_id` by `model` at `now` (seconds),
    /// without waiting: an impression lost to a crash or dropped under load costs the online
    /// metric one row, not a request its latency. A movie already shown to the person by the
    /// model keeps its first time.
    fn record_impressions(&self, user_id: u32, model: &str, movies: Vec<u32>, now: i64);

    /// Per model and day, for impressions of the last `days` days before `now`: impressions,
    /// and how many were rated (liked) within [`online::WINDOW_DAYS`] days after. Newest first.
    async fn online_metrics(&self, days: u32, now: i64) -> Result<Vec<OnlineDay>>;

    /// Takes the trainer's lease for `holder` for `seconds` (by the database's clock) if it is
    /// free, expired (its trainer died) or already `holder`'s; otherwise says who holds it.
    async fn acquire_lease(&self, holder: &str, seconds: u32, trigger: &str) -> Result<Lease>;

    /// Extends `holder`'s lease to `seconds` from now; false if another server holds it.
    async fn renew_lease(&self, holder: &str, seconds: u32) -> Result<bool>;

    /// Frees the lease if `holder` holds it.
    async fn release_lease(&self, holder: &str) -> Result<()>;

    /// The lease as it is.
    async fn lease(&self) -> Result<Lease>;

    /// Records `model_id` as the newest published model, if `holder` still holds the lease
    /// (false, and nothing recorded, if not), and announces it to the other servers.
    async fn publish_model(&self, holder: &str, model_id: &str) -> Result<bool>;

    /// The newest published model, if any.
    async fn latest_model(&self) -> Result<Option<Published>>;

    /// The models published before the newest `keep`, oldest first (the store prunes them).
    async fn older_models(&self, keep: u32) -> Result<Vec<String>>;

    /// Stores a run's record (`record`: its JSON, as the run store writes it), replacing one of
    /// the same id.
    async fn put_run(&self, run: &StoredRun) -> Result<()>;

    /// The runs' records (JSON), newest first by start (ties: the larger id first), of `kind`
    /// only when given, at most `limit`.
    async fn runs(&self, kind: Option<&str>, limit: usize) -> Result<Vec<String>>;

    /// A stream of announcements of newly published model ids (PostgreSQL's `LISTEN`), or
    /// `None` where there is none (SQLite: servers poll [`Store::latest_model`]).
    fn announcements(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
        None
    }

    /// Writes the database as a MovieLens CSV release (`movies.csv`, `links.csv`, `ratings.csv`,
    /// `tags.csv`) into the directory `out`, atomically (a staged directory renamed into place),
    /// from one consistent snapshot: what `train --data OUT` reads.
    async fn export(&self, out: &Path) -> Result<Exported>;
}

/// The trainer's lease, as [`Store::acquire_lease`] and [`Store::lease`] see it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// Whether the caller holds it now (after `acquire_lease`: took it).
    pub acquired: bool,
    /// Who holds it (`host:pid:nonce`), or `None` when free.
    pub holder: Option<String>,
    /// Seconds until it expires (negative: expired, its trainer presumably dead).
    pub expires_in: i64,
    /// What started the training under it.
    pub trigger: Option<String>,
}

impl Lease {
    /// Held by a trainer that stopped renewing it: another server should take over.
    pub fn abandoned(&self) -> bool {
        self.holder.is_some() && self.expires_in <= 0
    }
}

/// A model published into the shared model store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    /// The model's directory name in the store.
    pub model_id: String,
    /// When (seconds since the epoch, by the database's clock).
    pub published_at: i64,
    /// The server that trained it.
    pub published_by: String,
}

/// A run's record as the database keeps it: its id, kind and start time (to find and order it)
/// and the whole record as JSON (the database does not read it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRun {
    /// The run's id.
    pub run_id: String,
    /// `train` or `evaluate`.
    pub kind: String,
    /// RFC 3339, as the record has it (sortable as text).
    pub started_at: String,
    /// The record, as JSON.
    pub record: String,
}

/// Where the live database is (`--database`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`).
    Postgres(String),
}

impl Location {
    /// Reads `--database`: `sqlite:PATH` or a path, `postgres://…` (or `postgresql://…`), or
    /// `none` (`Ok(None)`); without one, [`default_path`] of `model_dir`.
    pub fn parse(text: Option<&str>, model_dir: &Path) -> Result<Option<Location>> {
        match text.map(str::trim) {
            None => Ok(Some(Location::Sqlite(default_path(model_dir)))),
            Some("none") => Ok(None),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Some(Location::Postgres(url.to_string())))
            }
            Some(text) => {
                let path = text.strip_prefix("sqlite:").unwrap_or(text);
                if path.is_empty() || path.contains("://") {
                    return Err(Error::invalid(
                        "--database",
                        format!(
                            "--database: {:?} is not `sqlite:PATH`, a path, `postgres://USER@HOST:PORT/DB` \
                             or `none`",
                            crate::error::bounded(text.to_string())
                        ),
                    ));
                }
                Ok(Some(Location::Sqlite(PathBuf::from(path))))
            }
        }
    }
}

/// An open database (cheap to clone: clones share the backend's connections).
#[derive(Clone)]
pub struct Database {
    store: Arc<dyn Store>,
    /// Users read so far, by id: a user's token never changes and users are never removed, so
    /// an entry never goes stale. Spares each authenticated request a database read.
    users: Arc<Mutex<std::collections::HashMap<u32, UserRecord>>>,
}

/// Most users [`Database::user_cached`] keeps (about 60 MB); the cache starts over beyond.
const USER_CACHE: usize = 1_000_000;

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("location", &self.store.location())
            .finish()
    }
}

impl std::ops::Deref for Database {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}

impl Database {
    /// Opens the database at `location`, creating it (and applying the migrations it lacks).
    pub async fn open(location: &Location) -> Result<Database> {
        Ok(match location {
            Location::Sqlite(path) => Database::sqlite(path)?,
            Location::Postgres(url) => {
                Database::from_store(Arc::new(postgres::Postgres::connect(url).await?))
            }
        })
    }

    /// Opens (creating if needed) the SQLite database at `path`.
    pub fn sqlite(path: &Path) -> Result<Database> {
        Ok(Database::from_store(Arc::new(sqlite::Sqlite::open(path)?)))
    }

    /// Whether many servers may share this database (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.store.is_shared()
    }

    fn from_store(store: Arc<dyn Store>) -> Database {
        Database {
            store,
            users: Arc::new(Mutex::new(std::collections::HashMap::new())),
        }
    }

    /// A directory for the database's snapshots (what a retraining exports): beside the
    /// SQLite file, or `state/` beside the model directory for a database elsewhere.
    pub fn scratch_dir(&self, model_dir: &Path) -> PathBuf {
        if self.store.is_shared() {
            model_dir.parent().unwrap_or(Path::new(".")).join("state")
        } else {
            self.store
                .location()
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf()
        }
    }

    /// Creates a profile with a new token. Returns the id and the token (shown once; only its
    /// hash is kept).
    pub async fn create_user(&self, now: i64) -> Result<(u32, String)> {
        let token = new_token();
        let user_id = self.store.insert_user(token_hash(&token), now).await?;
        Ok((user_id, token))
    }

    /// The user `user_id`, if it exists, from memory when it was read before.
    pub async fn user_cached(&self, user_id: u32) -> Result<Option<UserRecord>> {
        if let Some(user) = self
            .users
            .lock()
            .ok()
            .and_then(|users| users.get(&user_id).cloned())
        {
            return Ok(Some(user));
        }
        let user = self.store.user(user_id).await?;
        if let (Some(user), Ok(mut users)) = (&user, self.users.lock()) {
            if users.len() >= USER_CACHE {
                users.clear();
            }
            users.insert(user_id, user.clone());
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_outside_the_scale_or_between_half_stars_are_refused() {
        for ok in [0.5, 1.0, 4.5, 5.0] {
            assert_eq!(check_rating(ok).unwrap(), ok as f32);
        }
        for bad in [0.0, 0.25, 5.5, 3.3, f64::NAN, -1.0] {
            assert!(check_rating(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_title_splits_from_its_year() {
        assert_eq!(split_year("Heat (1995)"), ("Heat".to_string(), Some(1995)));
        assert_eq!(
            split_year("Matrix, The (1999) "),
            ("Matrix, The".to_string(), Some(1999))
        );
        assert_eq!(split_year("(1995)"), ("(1995)".to_string(), None));
        assert_eq!(split_year("Babylon 5"), ("Babylon 5".to_string(), None));
        assert_eq!(split_year("Big (film)"), ("Big (film)".to_string(), None));
    }

    #[test]
    fn tokens_are_random_and_stored_as_their_hash() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn the_database_flag_reads_sqlite_postgres_and_none() {
        let models = Path::new("models/default");
        assert_eq!(
            Location::parse(None, models).unwrap(),
            Some(Location::Sqlite(PathBuf::from("models/state/movierec.db")))
        );
        assert_eq!(
            Location::parse(Some("sqlite:/tmp/x.db"), models).unwrap(),
            Some(Location::Sqlite(PathBuf::from("/tmp/x.db")))
        );
        assert_eq!(
            Location::parse(Some("state/y.db"), models).unwrap(),
            Some(Location::Sqlite(PathBuf::from("state/y.db")))
        );
        assert_eq!(
            Location::parse(Some("postgres://u@h:5432/db"), models).unwrap(),
            Some(Location::Postgres("postgres://u@h:5432/db".into()))
        );
        assert_eq!(Location::parse(Some("none"), models).unwrap(), None);
        for bad in ["", "sqlite:", "mysql://h/db"] {
            let error = Location::parse(Some(bad), models).unwrap_err().to_string();
            assert!(error.contains("--database"), "{bad}: {error}");
        }
    }
}
