//! The SQLite backend of the live database (the default; `--database sqlite:PATH`): one file,
//! through `rusqlite` with SQLite compiled in, so nothing is installed.
//!
//! - **Durable writes.** WAL mode with `synchronous = FULL`: a write is acknowledged only after
//!   its transaction is committed and the WAL synced, so neither `kill -9` nor a power cut loses
//!   an acknowledged rating.
//! - **Group commit.** One writer thread owns the only writing connection. It takes every write
//!   waiting in its queue (up to [`MAX_BATCH`]), runs each in a savepoint of one transaction (a
//!   failing write rolls back alone) and commits them with one sync, then answers them all: many
//!   concurrent writers cost one fsync per batch, not one each.
//! - **Readers** take a connection from a small pool ([`Sqlite::read`]); in WAL mode they
//!   never wait for the writer and always see a committed state.
//! - **Migrations** ([`super::schema`]) are numbered; `PRAGMA user_version` says how many are
//!   applied. A database made by a newer movierec is refused rather than misread.

use super::{
    bulk, db_error, import, schema, split_year, unknown_movie, Lease, MovieChange, MovieRecord,
    Published, Store, StoredRating, StoredRun, UserRecord,
};
use crate::data::{Dataset, Rating};
use crate::{Error, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Most writes committed together by one transaction of the writer thread.
pub const MAX_BATCH: usize = 512;
/// Writes queued for the writer thread at most.
pub const QUEUE_LENGTH: usize = MAX_BATCH * 4;
/// How long a connection waits for a lock another process holds before failing.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Reader connections kept open for reuse (more are opened when needed and closed after).
const READER_POOL: usize = 16;

/// What a finished write tells its caller: the write's own result once the batch it was part of
/// is committed, or the commit's failure.
type Finish = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
/// A write: given the writer's connection (inside a savepoint), runs and returns whether it
/// succeeded and how to answer once the batch is committed; given `None` (the transaction could
/// not begin), does nothing and returns how to answer.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Finish) + Send>;

/// An open SQLite database (cheap to clone: clones share the writer and the readers).
#[derive(Clone)]
pub struct Sqlite {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    jobs: Mutex<Option<mpsc::SyncSender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer thread once it has committed what it holds.
        self.jobs.lock().map(|mut j| j.take()).ok();
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn configure(conn: &Connection, path: &Path) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| db_error(path, e))?;
    // WAL: readers never block the writer nor see a half-committed state; FULL syncs the WAL
    // at every commit, so an acknowledged write survives a crash of the process or machine.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| db_error(path, e))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| db_error(path, e))?;
    // A thread of its own checkpoints when the writer asks ([`write_loop`], [`checkpointer`]);
    // the automatic checkpoint (inside some commit, stalling the commits queued behind it) is
    // only the bound for when that thread falls behind: every 40,000 pages (160 MB) rather than
    // SQLite's 1,000, which put the p99 of a rating's write at 39 ms (docs/BENCHMARKS.md). The
    // file is cut back to 64 MiB after a checkpoint.
    conn.pragma_update(None, "wal_autocheckpoint", 40_000)
        .map_err(|e| db_error(path, e))?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(|e| db_error(path, e))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| db_error(path, e))?;
    Ok(())
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path`, applies the migrations it lacks and
    /// starts its writer thread. The parent directory is created.
    pub fn open(path: &Path) -> Result<Sqlite> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        if path.is_dir() {
            return Err(db_error(path, "is a directory, not a database file"));
        }
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| db_error(path, e))?;
        configure(&conn, path)?;
        schema::migrate(&mut conn, path)?;
        let checkpointer = checkpointer(path)?;
        let (jobs, queue) = mpsc::sync_channel::<Job>(QUEUE_LENGTH);
        let writer_path = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("movierec-db-writer".into())
            .spawn(move || write_loop(conn, &writer_path, queue, checkpointer))
            .map_err(|e| db_error(path, format!("cannot start the writer thread: {e}")))?;
        Ok(Sqlite {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                jobs: Mutex::new(Some(jobs)),
                writer: Mutex::new(Some(writer)),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Runs `write` on the writer's connection, inside a transaction shared with the other
    /// writes waiting, and returns its result once that transaction is committed. Blocks: call
    /// from a blocking thread (async code calls [`Sqlite::write_async`]). For tests.
    #[cfg(test)]
    pub fn write<R: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(
            write,
            move |r| {
                let _ = tx.send(r);
            },
            true,
        )?;
        rx.recv()
            .map_err(|_| db_error(&self.inner.path, "the writer thread stopped"))?
    }

    /// [`Sqlite::write`] for async code: waits without holding a thread.
    pub async fn write_async<R: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(
            write,
            move |r| {
                let _ = tx.send(r);
            },
            true,
        )?;
        rx.await
            .map_err(|_| db_error(&self.inner.path, "the writer thread stopped"))?
    }

    /// Queues `write` for the writer thread; `answer` gets its result after the commit. With
    /// `wait`, a full queue (the writer behind by [`QUEUE_LENGTH`] writes) makes the caller wait
    /// for room; without, the write is dropped and the call fails.
    pub(crate) fn submit<R: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
        answer: impl FnOnce(Result<R>) + Send + 'static,
        wait: bool,
    ) -> Result<()> {
        let path = self.inner.path.clone();
        let job: Job = Box::new(move |conn: Option<&Connection>| {
            let result = conn.map(write);
            let ok = matches!(result, Some(Ok(_)));
            let finish: Finish = Box::new(move |committed: std::result::Result<(), String>| {
                answer(match (committed, result) {
                    (Ok(()), Some(result)) => result,
                    (Err(e), _) => Err(db_error(&path, format!("the write failed: {e}"))),
                    (Ok(()), None) => Err(db_error(&path, "the write was not run")),
                })
            });
            (ok, finish)
        });
        let sender = self
            .inner
            .jobs
            .lock()
            .map_err(|_| db_error(&self.inner.path, "the writer queue is poisoned"))?
            .clone()
            .ok_or_else(|| db_error(&self.inner.path, "the database is closed"))?;
        if wait {
            sender
                .send(job)
                .map_err(|_| db_error(&self.inner.path, "the writer thread stopped"))
        } else {
            sender.try_send(job).map_err(|e| match e {
                mpsc::TrySendError::Full(_) => db_error(&self.inner.path, "the writer is busy"),
                mpsc::TrySendError::Disconnected(_) => {
                    db_error(&self.inner.path, "the writer thread stopped")
                }
            })
        }
    }

    /// Runs `read` on a reader connection (a committed state of the database). Blocks.
    pub fn read<R>(&self, read: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let path = &self.inner.path;
        let pooled = self.inner.readers.lock().ok().and_then(|mut p| p.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| db_error(path, e))?;
                conn.busy_timeout(BUSY_TIMEOUT)
                    .map_err(|e| db_error(path, e))?;
                conn.pragma_update(None, "query_only", "ON")
                    .map_err(|e| db_error(path, e))?;
                conn
            }
        };
        let result = read(&conn);
        if let Ok(mut pool) = self.inner.readers.lock() {
            if pool.len() < READER_POOL {
                pool.push(conn);
            }
        }
        result
    }

    /// [`Sqlite::read`] on a blocking thread, for async code.
    pub async fn read_async<R: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.read(read))
            .await
            .map_err(|e| db_error(&self.inner.path, format!("a read failed: {e}")))?
    }

    /// The profile `user_id`, if it exists.
    pub fn user_row(conn: &Connection, path: &Path, user_id: u32) -> Result<Option<UserRecord>> {
        conn.prepare_cached("SELECT token_hash FROM users WHERE user_id = ?1")
            .and_then(|mut s| {
                s.query_row([user_id], |r| r.get::<_, Option<Vec<u8>>>(0))
                    .optional()
            })
            .map_err(|e| db_error(path, e))
            .map(|found| {
                found.map(|hash| UserRecord {
                    user_id,
                    token_hash: hash.and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok()),
                })
            })
    }

    /// The movie `movie_id`, if it is in the catalog.
    pub fn movie(conn: &Connection, path: &Path, movie_id: u32) -> Result<Option<MovieRecord>> {
        conn.prepare_cached(
            "SELECT title, genres, imdb_id, tmdb_id FROM movies WHERE movie_id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([movie_id], |r| {
                let raw: String = r.get(0)?;
                let (title, year) = split_year(&raw);
                Ok(MovieRecord {
                    movie_id,
                    title,
                    year,
                    genres: bulk::split_genres(&r.get::<_, String>(1)?),
                    imdb_id: r.get(2)?,
                    tmdb_id: r.get(3)?,
                })
            })
            .optional()
        })
        .map_err(|e| db_error(path, e))
    }

    /// Whether `movie_id` is in the catalog.
    pub fn movie_exists(conn: &Connection, path: &Path, movie_id: u32) -> Result<bool> {
        conn.prepare_cached("SELECT 1 FROM movies WHERE movie_id = ?1")
            .and_then(|mut s| s.exists([movie_id]))
            .map_err(|e| db_error(path, e))
    }

    /// `user_id`'s ratings, newest first (ties: the one written last first).
    pub fn ratings_rows(conn: &Connection, path: &Path, user_id: u32) -> Result<Vec<StoredRating>> {
        let mut statement = conn
            .prepare_cached(
                "SELECT movie_id, rating, timestamp FROM ratings WHERE user_id = ?1 \
                 ORDER BY timestamp DESC, seq DESC, movie_id DESC",
            )
            .map_err(|e| db_error(path, e))?;
        let rows = statement
            .query_map([user_id], |r| {
                Ok(StoredRating {
                    user_id,
                    movie_id: r.get(0)?,
                    rating: r.get::<_, f64>(1)? as f32,
                    timestamp: r.get(2)?,
                })
            })
            .map_err(|e| db_error(path, e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| db_error(path, e))
    }
}

#[async_trait::async_trait]
impl Store for Sqlite {
    fn location(&self) -> &Path {
        &self.inner.path
    }

    async fn counts(&self) -> Result<(u64, u64, u64)> {
        let path = self.inner.path.clone();
        self.read_async(move |conn| {
            let count = |table: &str| -> Result<u64> {
                conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n.max(0) as u64)
                .map_err(|e| db_error(&path, e))
            };
            Ok((count("movies")?, count("users")?, count("ratings")?))
        })
        .await
    }

    async fn import_release(&self, dataset: Dataset) -> Result<import::Imported> {
        let path = self.inner.path.clone();
        self.write_async(move |conn| import::import_release(conn, &path, &dataset))
            .await
    }

    async fn import_rows(
        &self,
        movies: Vec<MovieRecord>,
        ratings: Vec<Rating>,
        now: i64,
    ) -> Result<import::FilesImported> {
        let path = self.inner.path.clone();
        self.write_async(move |conn| {
            for movie in &movies {
                import::upsert_movie(conn, &path, movie, now)?;
            }
            let users_created = import::insert_ratings(conn, &path, &ratings, true)?;
            Ok(import::FilesImported {
                movies: movies.len(),
                ratings: ratings.len(),
                users_created,
            })
        })
        .await
    }

    async fn insert_user(&self, token_hash: [u8; 32], now: i64) -> Result<u32> {
        let path = self.inner.path.clone();
        self.write_async(move |conn| {
            let max: Option<i64> = conn
                .query_row("SELECT max(user_id) FROM users", [], |r| r.get(0))
                .map_err(|e| db_error(&path, e))?;
            let next = max.unwrap_or(0) + 1;
            let user_id = u32::try_from(next)
                .map_err(|_| db_error(&path, "user ids are exhausted (over 2^32)"))?;
            conn.execute(
                "INSERT INTO users (user_id, token_hash, created_at) VALUES (?1, ?2, ?3)",
                params![user_id, &token_hash[..], now],
            )
            .map_err(|e| db_error(&path, e))?;
            Ok(user_id)
        })
        .await
    }

    async fn user(&self, user_id: u32) -> Result<Option<UserRecord>> {
        let path = self.inner.path.clone();
        self.read_async(move |c| Sqlite::user_row(c, &path, user_id))
            .await
    }

    async fn user_of_token(&self, hash: [u8; 32]) -> Result<Option<u32>> {
        let path = self.inner.path.clone();
        self.read_async(move |conn| {
            conn.prepare_cached("SELECT user_id FROM users WHERE token_hash = ?1")
                .and_then(|mut s| s.query_row([&hash[..]], |r| r.get(0)).optional())
                .map_err(|e| db_error(&path, e))
        })
        .await
    }

    async fn ratings_of(&self, user_id: u32) -> Result<Vec<StoredRating>> {
        let path = self.inner.path.clone();
        self.read_async(move |c| Sqlite::ratings_rows(c, &path, user_id))
            .await
    }

    async fn put_rating(&self, rating: StoredRating) -> Result<StoredRating> {
        let path = self.inner.path.clone();
        self.write_async(move |conn| {
            if !Sqlite::movie_exists(conn, &path, rating.movie_id)? {
                return Err(unknown_movie(rating.movie_id));
            }
            if Sqlite::user_row(conn, &path, rating.user_id)?.is_none() {
                return Err(Error::UserNotFound {
                    user_id: rating.user_id,
                });
            }
            put_rating_row(conn, &path, &rating)?;
            Ok(rating)
        })
        .await
    }

    async fn delete_rating(&self, user_id: u32, movie_id: u32) -> Result<bool> {
        let path = self.inner.path.clone();
        self.write_async(move |conn| {
            conn.prepare_cached("DELETE FROM ratings WHERE user_id = ?1 AND movie_id = ?2")
                .and_then(|mut s| s.execute(params![user_id, movie_id]))
                .map(|n| n > 0)
                .map_err(|e| db_error(&path, e))
        })
        .await
    }

    async fn add_movie(&self, movie: MovieRecord, now: i64) -> Result<bool> {
        let path = self.inner.path.clone();
        self.write_async(move |conn| {
            if Sqlite::movie(conn, &path, movie.movie_id)?.is_some() {
                return Ok(false);
            }
            import::upsert_movie(conn, &path, &movie, now)?;
            Ok(true)
        })
        .await
    }

    async fn change_movie(&self, movie_id: u32, change: MovieChange) -> Result<MovieRecord> {
        let path = self.inner.path.clone();
        self.write_async(move |conn| {
            let Some(movie) = Sqlite::movie(conn, &path, movie_id)? else {
                return Err(unknown_movie(movie_id));
            };
            let movie = change(movie)?;
            import::upsert_movie(conn, &path, &movie, crate::clock::unix_seconds())?;
            Ok(movie)
        })
        .await
    }

    fn record_impressions(&self, user_id: u32, model: &str, movies: Vec<u32>, now: i64) {
        self.record_impression_rows(user_id, model, movies, now);
    }

    async fn online_metrics(&self, days: u32, now: i64) -> Result<Vec<super::OnlineDay>> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.online_rows(days, now))
            .await
            .map_err(|e| db_error(&self.inner.path, format!("a read failed: {e}")))?
    }

    async fn acquire_lease(&self, holder: &str, seconds: u32, trigger: &str) -> Result<Lease> {
        let (path, holder, trigger) = (
            self.inner.path.clone(),
            holder.to_string(),
            trigger.to_string(),
        );
        self.write_async(move |conn| {
            let took = conn
                .query_row(
                    &format!(
                        "INSERT INTO trainer_lease (name, holder, expires_at, trigger, started_at) \
                         VALUES ('trainer', ?1, {EPOCH} + ?2, ?3, {EPOCH}) \
                         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                         expires_at = excluded.expires_at, trigger = excluded.trigger, \
                         started_at = excluded.started_at \
                         WHERE trainer_lease.holder IS NULL OR trainer_lease.expires_at <= {EPOCH} \
                         OR trainer_lease.holder = excluded.holder RETURNING holder"
                    ),
                    params![holder, seconds, trigger],
                    |_| Ok(()),
                )
                .optional()
                .map_err(|e| db_error(&path, e))?
                .is_some();
            let mut lease = lease_row(conn, &path)?;
            lease.acquired = took;
            Ok(lease)
        })
        .await
    }

    async fn renew_lease(&self, holder: &str, seconds: u32) -> Result<bool> {
        let (path, holder) = (self.inner.path.clone(), holder.to_string());
        self.write_async(move |conn| {
            conn.execute(
                &format!(
                    "UPDATE trainer_lease SET expires_at = {EPOCH} + ?2 \
                     WHERE name = 'trainer' AND holder = ?1"
                ),
                params![holder, seconds],
            )
            .map(|n| n == 1)
            .map_err(|e| db_error(&path, e))
        })
        .await
    }

    async fn release_lease(&self, holder: &str) -> Result<()> {
        let (path, holder) = (self.inner.path.clone(), holder.to_string());
        self.write_async(move |conn| {
            conn.execute(
                "UPDATE trainer_lease SET holder = NULL, expires_at = 0 \
                 WHERE name = 'trainer' AND holder = ?1",
                [holder],
            )
            .map(|_| ())
            .map_err(|e| db_error(&path, e))
        })
        .await
    }

    async fn lease(&self) -> Result<Lease> {
        let path = self.inner.path.clone();
        self.read_async(move |conn| lease_row(conn, &path)).await
    }

    async fn publish_model(&self, holder: &str, model_id: &str) -> Result<bool> {
        let (path, holder, model_id) = (
            self.inner.path.clone(),
            holder.to_string(),
            model_id.to_string(),
        );
        self.write_async(move |conn| {
            let holds = conn
                .query_row(
                    "SELECT 1 FROM trainer_lease WHERE name = 'trainer' AND holder = ?1",
                    [&holder],
                    |_| Ok(()),
                )
                .optional()
                .map_err(|e| db_error(&path, e))?
                .is_some();
            if !holds {
                return Ok(false);
            }
            conn.execute(
                &format!(
                    "INSERT INTO models (model_id, published_at, published_by) \
                     VALUES (?1, {EPOCH}, ?2)"
                ),
                params![model_id, holder],
            )
            .map_err(|e| db_error(&path, e))?;
            Ok(true)
        })
        .await
    }

    async fn latest_model(&self) -> Result<Option<Published>> {
        let path = self.inner.path.clone();
        self.read_async(move |conn| {
            conn.query_row(
                "SELECT model_id, published_at, published_by FROM models \
                 ORDER BY published_at DESC, model_id DESC LIMIT 1",
                [],
                |r| {
                    Ok(Published {
                        model_id: r.get(0)?,
                        published_at: r.get(1)?,
                        published_by: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| db_error(&path, e))
        })
        .await
    }

    async fn older_models(&self, keep: u32) -> Result<Vec<String>> {
        let path = self.inner.path.clone();
        self.read_async(move |conn| {
            let mut statement = conn
                .prepare(
                    "SELECT model_id FROM models ORDER BY published_at DESC, model_id DESC \
                     LIMIT -1 OFFSET ?1",
                )
                .map_err(|e| db_error(&path, e))?;
            let rows = statement
                .query_map([keep], |r| r.get::<_, String>(0))
                .map_err(|e| db_error(&path, e))?;
            let mut ids = rows
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| db_error(&path, e))?;
            ids.reverse();
            Ok(ids)
        })
        .await
    }

    async fn put_run(&self, run: &StoredRun) -> Result<()> {
        let (path, run) = (self.inner.path.clone(), run.clone());
        self.write_async(move |conn| {
            conn.execute(
                "INSERT INTO runs (run_id, kind, started_at, record) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (run_id) DO UPDATE SET kind = excluded.kind, \
                 started_at = excluded.started_at, record = excluded.record",
                params![run.run_id, run.kind, run.started_at, run.record],
            )
            .map(|_| ())
            .map_err(|e| db_error(&path, e))
        })
        .await
    }

    async fn runs(&self, kind: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let (path, kind) = (self.inner.path.clone(), kind.map(str::to_string));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_async(move |conn| {
            let mut statement = conn
                .prepare(
                    "SELECT record FROM runs WHERE ?1 IS NULL OR kind = ?1 \
                     ORDER BY started_at DESC, run_id DESC LIMIT ?2",
                )
                .map_err(|e| db_error(&path, e))?;
            let rows = statement
                .query_map(params![kind, limit], |r| r.get::<_, String>(0))
                .map_err(|e| db_error(&path, e))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| db_error(&path, e))
        })
        .await
    }

    async fn export(&self, out: &Path) -> Result<import::Exported> {
        let (db, out) = (self.clone(), out.to_path_buf());
        tokio::task::spawn_blocking(move || db.export_now(&out))
            .await
            .map_err(|e| db_error(&self.inner.path, format!("the export failed: {e}")))?
    }
}

/// The database's clock, in seconds since the epoch.
const EPOCH: &str = "CAST(strftime('%s', 'now') AS INTEGER)";

/// The trainer's lease row (free when there is none yet).
fn lease_row(conn: &Connection, path: &Path) -> Result<Lease> {
    conn.query_row(
        &format!(
            "SELECT holder, expires_at - {EPOCH}, trigger FROM trainer_lease \
             WHERE name = 'trainer'"
        ),
        [],
        |r| {
            Ok(Lease {
                acquired: false,
                holder: r.get(0)?,
                expires_in: r.get(1)?,
                trigger: r.get(2)?,
            })
        },
    )
    .optional()
    .map(|row| {
        row.unwrap_or(Lease {
            acquired: false,
            holder: None,
            expires_in: 0,
            trigger: None,
        })
    })
    .map_err(|e| db_error(path, e))
}

/// A number above every one it returned before in this process, from the clock's
/// microseconds: the order of writes within a second.
fn next_seq() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// Inserts or replaces one rating row, stamped with [`next_seq`] (newest last).
pub(crate) fn put_rating_row(conn: &Connection, path: &Path, r: &StoredRating) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO ratings (user_id, movie_id, rating, timestamp, seq) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            r.user_id,
            r.movie_id,
            f64::from(r.rating),
            r.timestamp,
            next_seq()
        ])
    })
    .map(|_| ())
    .map_err(|e| db_error(path, e))
}

/// Starts the checkpointer: a thread with a connection of its own that copies the WAL into the
/// database file whenever the writer asks ([`write_loop`]). A `PASSIVE` checkpoint takes no
/// lock the writer needs, so commits go on while pages are copied and the file is synced.
fn checkpointer(path: &Path) -> Result<Checkpointer> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| db_error(path, e))?;
    configure(&conn, path)?;
    let (ask, asked) = mpsc::sync_channel::<()>(1);
    let at = path.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("movierec-db-checkpoint".into())
        .spawn(move || {
            // Ends when the writer (holding the other end) does.
            while asked.recv().is_ok() {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!("database {}: checkpoint: {e}", at.display());
                }
            }
        })
        .map_err(|e| db_error(path, format!("cannot start the checkpoint thread: {e}")))?;
    Ok(Checkpointer { ask, thread })
}

/// The writer's handle on the checkpointer thread.
struct Checkpointer {
    ask: mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    /// Asks for a checkpoint without waiting (if one is still asked for, that request stands).
    fn ask(&self) {
        let _ = self.ask.try_send(());
    }

    /// Lets the thread finish its checkpoint and waits for it to end.
    fn stop(self) {
        drop(self.ask);
        let _ = self.thread.join();
    }
}

/// Commits after which the writer asks the checkpointer for a checkpoint the next time its
/// queue is empty. Asking after every few commits whatever the queue holds made the paced p99
/// worse (15–72 ms against 11–15 ms): the syncs of the database file and of the WAL then
/// overlap all the time.
const IDLE_CHECKPOINT_COMMITS: u32 = 20;

/// Commits after which the writer asks for a checkpoint even though its queue never emptied.
const BUSY_CHECKPOINT_COMMITS: u32 = 1_000;

/// The writer thread: takes the waiting writes in batches, each batch one transaction with a
/// savepoint per write, and answers each write after the commit.
fn write_loop(
    conn: Connection,
    path: &Path,
    queue: mpsc::Receiver<Job>,
    checkpointer: Checkpointer,
) {
    let mut commits_since_checkpoint = 0u32;
    loop {
        let first = match queue.try_recv() {
            Ok(job) => job,
            Err(mpsc::TryRecvError::Disconnected) => break,
            Err(mpsc::TryRecvError::Empty) => {
                // Nothing waits: a good moment for the checkpointer to copy the WAL into the
                // database file, in small steps.
                if commits_since_checkpoint >= IDLE_CHECKPOINT_COMMITS {
                    checkpointer.ask();
                    commits_since_checkpoint = 0;
                }
                match queue.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                }
            }
        };
        commits_since_checkpoint += 1;
        if commits_since_checkpoint >= BUSY_CHECKPOINT_COMMITS {
            // A load that never lets the queue empty: ask anyway, so that the WAL does not
            // grow to the automatic checkpoint inside a commit.
            checkpointer.ask();
            commits_since_checkpoint = 0;
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut finishes: Vec<Finish> = Vec::with_capacity(batch.len());
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let message = format!("cannot begin a transaction: {e}");
            tracing::error!("database {}: {message}", path.display());
            for job in batch {
                let (_, finish) = job(None);
                finish(Err(message.clone()));
            }
            continue;
        }
        for job in batch {
            if conn.execute_batch("SAVEPOINT write").is_err() {
                // Without a savepoint a failing write could not be undone alone: not run.
                finishes.push(job(None).1);
                continue;
            }
            let (ok, finish) = job(Some(&conn));
            if !ok {
                // A failed write is undone alone; the others of the batch still commit.
                let _ = conn.execute_batch("ROLLBACK TO write");
            }
            let _ = conn.execute_batch("RELEASE write");
            finishes.push(finish);
        }
        let committed = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for finish in finishes {
            finish(committed.clone());
        }
    }
    // The checkpointer's connection closes first; the writer's, closing last, checkpoints what
    // is left and removes the WAL.
    checkpointer.stop();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened() -> (tempfile::TempDir, Sqlite) {
        let dir = tempfile::tempdir().unwrap();
        let db = Sqlite::open(&dir.path().join("state/movierec.db")).unwrap();
        let movies: Vec<MovieRecord> = (1..=3)
            .map(|movie_id| MovieRecord {
                movie_id,
                title: format!("Movie {movie_id}"),
                ..MovieRecord::default()
            })
            .collect();
        let path = db.inner.path.clone();
        db.write(move |conn| {
            for movie in &movies {
                import::upsert_movie(conn, &path, movie, 0)?;
            }
            Ok(())
        })
        .unwrap();
        (dir, db)
    }

    fn rating(user_id: u32, movie_id: u32, rating: f32, timestamp: i64) -> StoredRating {
        StoredRating {
            user_id,
            movie_id,
            rating,
            timestamp,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_checkpointer_copies_the_log_into_the_database_file_while_it_stays_open() {
        let (dir, db) = opened();
        let user = db.insert_user([7; 32], 0).await.unwrap();
        for i in 0..40u32 {
            db.put_rating(rating(user, 1 + i % 3, 4.0, i64::from(i)))
                .await
                .unwrap();
        }
        // The database file alone (a copy without its WAL) holds the writes once the
        // checkpointer has run; without it they would stay in the WAL until the WAL reached
        // 40,000 pages or the database closed.
        let newest_in_file = || -> Option<i64> {
            let copy = dir.path().join("copy.db");
            std::fs::copy(db.location(), &copy).ok()?;
            let conn = Connection::open(&copy).ok()?;
            conn.query_row(
                "SELECT max(timestamp) FROM ratings WHERE user_id = ?1",
                [user],
                |r| r.get::<_, Option<i64>>(0),
            )
            .ok()
            .flatten()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if newest_in_file().is_some_and(|t| t >= 19) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint within 10 s: the file alone has {:?}",
                newest_in_file()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        drop(db);
    }

    #[test]
    fn a_directory_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let error = Sqlite::open(dir.path()).unwrap_err().to_string();
        assert!(error.contains("is a directory"), "{error}");
    }
}
