//! The PostgreSQL backend of the live database (`--database postgres://USER@HOST:PORT/DB`): the
//! database many `serve` processes share when one machine is not enough.
//!
//! - **Client.** `tokio-postgres` through a `deadpool-postgres` pool of [`POOL_SIZE`]
//!   connections per server, with timeouts on connecting and on waiting for a connection, and a
//!   `statement_timeout` on every statement (lifted only inside imports and exports, which are
//!   bounded by their input). The password comes from the URL or from `PGPASSWORD`.
//! - **Durability** is PostgreSQL's: a write returns after its transaction commits (with the
//!   server's default `synchronous_commit = on`, after the WAL is flushed). PostgreSQL groups
//!   the flushes of concurrent commits itself, so there is no writer thread here.
//! - **Concurrency.** Single-statement writes (a rating, a deletion, a movie) run in autocommit;
//!   the few read-modify-writes take a row lock (`SELECT … FOR UPDATE`) or a transaction-scoped
//!   advisory lock: creating a profile (its id is one above every other), importing the release
//!   on first start (several servers may start at once) and migrating the schema.
//! - **Migrations** are [`schema::POSTGRES_MIGRATIONS`], the SQLite ones in PostgreSQL's types;
//!   `movierec_schema` holds the version. A database of a newer schema is refused.

use super::import::{Exported, FilesImported, Imported, ReleaseWriter, IMPORTED_KEY};
use super::online::{OnlineDay, LIKED_RATING, MAX_DAYS, WINDOW_DAYS};
use super::{
    bulk, db_error, schema, split_year, unknown_movie, Lease, MovieChange, MovieRecord, Published,
    Store, StoredRating, StoredRun, UserRecord,
};
use crate::data::{Dataset, Rating};
use crate::{Error, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use futures_util::{SinkExt, StreamExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Config, NoTls, Transaction};

/// Connections each server keeps to the database at most.
pub const POOL_SIZE: usize = 16;
/// How long opening a connection, or waiting for a free one, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest any statement of a request may run (milliseconds).
const STATEMENT_TIMEOUT_MS: u32 = 30_000;
/// Impression writes in flight at most; more are dropped (the metric is sampled under load).
const IMPRESSION_WRITES: usize = 32;
/// Rows per `COPY` chunk and per bulk `INSERT`.
const CHUNK: usize = 100_000;

/// The channel on which new models are announced (`NOTIFY movierec_models, 'MODEL_ID'`).
pub const MODELS_CHANNEL: &str = "movierec_models";
/// The database's clock, in seconds since the epoch (the lease is timed by it, so the servers'
/// clocks need not agree).
const EPOCH: &str = "extract(epoch from clock_timestamp())::bigint";

/// Advisory lock keys (`pg_advisory_xact_lock`), one per serialised operation.
const LOCK_SCHEMA: i64 = 0x6d76_7200_0001;
const LOCK_IMPORT: i64 = 0x6d76_7200_0002;
const LOCK_USERS: i64 = 0x6d76_7200_0003;

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
    /// How to connect (for the `LISTEN` connection, outside the pool).
    config: Config,
    /// The URL without its password, for messages.
    location: PathBuf,
    impressions: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("location", &self.location)
            .finish()
    }
}

/// `postgres://USER@HOST:PORT/DB` for `config`: the URL without its password.
fn describe(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// A database error's full text: PostgreSQL's message and detail, or the client's error and
/// its cause (a refused connection, a timeout).
fn message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn id(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn opt_id(value: Option<i64>) -> Option<u32> {
    value.and_then(|v| u32::try_from(v).ok())
}

impl Postgres {
    /// Connects to the database at `url` and applies the migrations it lacks.
    pub async fn connect(url: &str) -> Result<Postgres> {
        let mut config: Config = url.parse().map_err(|e| {
            db_error(
                Path::new("--database"),
                format!("not a PostgreSQL URL (postgres://USER@HOST:PORT/DB): {e}"),
            )
        })?;
        if config.get_password().is_none() {
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
        }
        if config.get_user().is_none() {
            if let Ok(user) = std::env::var("PGUSER") {
                config.user(user);
            }
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("movierec");
        config.options(format!("-c statement_timeout={STATEMENT_TIMEOUT_MS}"));
        let location = PathBuf::from(describe(&config));
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(CONNECT_TIMEOUT),
                create: Some(CONNECT_TIMEOUT),
                recycle: Some(CONNECT_TIMEOUT),
            })
            .build()
            .map_err(|e| db_error(&location, e))?;
        let store = Postgres {
            pool,
            config,
            location,
            impressions: Arc::new(tokio::sync::Semaphore::new(IMPRESSION_WRITES)),
        };
        store.migrate().await?;
        Ok(store)
    }

    fn error(&self, e: &tokio_postgres::Error) -> Error {
        db_error(&self.location, message(e))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| {
            let text = match &e {
                deadpool_postgres::PoolError::Backend(e) => message(e),
                other => other.to_string(),
            };
            db_error(&self.location, format!("cannot connect: {text}"))
        })
    }

    /// Applies the migrations the database lacks, each in one transaction with its version
    /// bump, under an advisory lock (servers starting together migrate once).
    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let known = schema::POSTGRES_MIGRATIONS.len() as i32;
        loop {
            let tx = client.transaction().await.map_err(|e| self.error(&e))?;
            tx.batch_execute("SET LOCAL statement_timeout = 0")
                .await
                .map_err(|e| self.error(&e))?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_SCHEMA])
                .await
                .map_err(|e| self.error(&e))?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS movierec_schema (version INTEGER NOT NULL);
                 INSERT INTO movierec_schema (version)
                   SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM movierec_schema);",
            )
            .await
            .map_err(|e| self.error(&e))?;
            let current: i32 = tx
                .query_one("SELECT version FROM movierec_schema", &[])
                .await
                .map_err(|e| self.error(&e))?
                .get(0);
            if current > known {
                return Err(db_error(
                    &self.location,
                    format!(
                        "schema version {current} was written by a newer movierec (this one \
                         knows up to {known}); upgrade movierec or use another --database"
                    ),
                ));
            }
            if current == known {
                tx.commit().await.map_err(|e| self.error(&e))?;
                return Ok(());
            }
            let next = current + 1;
            tx.batch_execute(schema::POSTGRES_MIGRATIONS[current as usize])
                .await
                .map_err(|e| {
                    db_error(&self.location, format!("migration {next}: {}", message(&e)))
                })?;
            tx.execute("UPDATE movierec_schema SET version = $1", &[&next])
                .await
                .map_err(|e| self.error(&e))?;
            tx.commit().await.map_err(|e| self.error(&e))?;
        }
    }

    /// Streams `rows` into `COPY … FROM STDIN (FORMAT csv)` in chunks.
    async fn copy_in<T>(
        &self,
        tx: &Transaction<'_>,
        sql: &str,
        rows: impl Iterator<Item = T>,
        mut write: impl FnMut(&mut csv::Writer<Vec<u8>>, T) -> csv::Result<()>,
    ) -> Result<()> {
        let sink = tx.copy_in(sql).await.map_err(|e| self.error(&e))?;
        futures_util::pin_mut!(sink);
        // Every field quoted: an empty text stays an empty text (unquoted, COPY reads NULL);
        // the nullable columns say FORCE_NULL.
        let new_writer = || {
            csv::WriterBuilder::new()
                .has_headers(false)
                .quote_style(csv::QuoteStyle::Always)
                .from_writer(Vec::with_capacity(1 << 20))
        };
        let failed = |e: &dyn std::fmt::Display| db_error(&self.location, format!("COPY: {e}"));
        let mut writer = new_writer();
        let mut in_chunk = 0;
        for row in rows {
            write(&mut writer, row).map_err(|e| failed(&e))?;
            in_chunk += 1;
            if in_chunk == CHUNK {
                let chunk = std::mem::replace(&mut writer, new_writer())
                    .into_inner()
                    .map_err(|e| failed(e.error()))?;
                sink.send(bytes::Bytes::from(chunk))
                    .await
                    .map_err(|e| self.error(&e))?;
                in_chunk = 0;
            }
        }
        let rest = writer.into_inner().map_err(|e| failed(e.error()))?;
        if !rest.is_empty() {
            sink.send(bytes::Bytes::from(rest))
                .await
                .map_err(|e| self.error(&e))?;
        }
        sink.finish().await.map_err(|e| self.error(&e))?;
        Ok(())
    }

    fn movie_of(movie_id: u32, row: &tokio_postgres::Row) -> MovieRecord {
        let raw: String = row.get(0);
        let (title, year) = split_year(&raw);
        MovieRecord {
            movie_id,
            title,
            year,
            genres: bulk::split_genres(&row.get::<_, String>(1)),
            imdb_id: opt_id(row.get(2)),
            tmdb_id: opt_id(row.get(3)),
        }
    }

    async fn upsert_movie(
        &self,
        tx: &Transaction<'_>,
        movie: &MovieRecord,
        now: i64,
    ) -> Result<()> {
        tx.execute(
            "INSERT INTO movies (movie_id, title, genres, imdb_id, tmdb_id, added_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (movie_id) DO UPDATE SET title = excluded.title, \
             genres = excluded.genres, imdb_id = excluded.imdb_id, tmdb_id = excluded.tmdb_id",
            &MovieRow::of(movie).params(&now),
        )
        .await
        .map(|_| ())
        .map_err(|e| self.error(&e))
    }

    /// Writes the export inside one repeatable-read transaction. Runs on a blocking thread
    /// (the files are written synchronously), driving the queries through `handle`.
    fn export_blocking(&self, handle: &tokio::runtime::Handle, dir: &Path) -> Result<Exported> {
        handle.block_on(async {
            let mut client = self.client().await?;
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(|e| self.error(&e))?;
            tx.batch_execute("SET LOCAL statement_timeout = 0")
                .await
                .map_err(|e| self.error(&e))?;
            let mut out = ReleaseWriter::create(dir)?;
            let none: [&(dyn ToSql + Sync); 0] = [];
            let rows = tx
                .query_raw(
                    "SELECT movie_id, title, genres, imdb_id, tmdb_id FROM movies \
                     ORDER BY movie_id",
                    none,
                )
                .await
                .map_err(|e| self.error(&e))?;
            futures_util::pin_mut!(rows);
            while let Some(row) = rows.next().await {
                let row = row.map_err(|e| self.error(&e))?;
                out.movie(
                    id(row.get(0)),
                    row.get(1),
                    row.get(2),
                    opt_id(row.get(3)),
                    opt_id(row.get(4)),
                )?;
            }
            out.movies_done()?;
            let rows = tx
                .query_raw(
                    "SELECT user_id, movie_id, rating, timestamp FROM ratings \
                     ORDER BY user_id, movie_id",
                    none,
                )
                .await
                .map_err(|e| self.error(&e))?;
            futures_util::pin_mut!(rows);
            while let Some(row) = rows.next().await {
                let row = row.map_err(|e| self.error(&e))?;
                out.rating(id(row.get(0)), id(row.get(1)), row.get(2), row.get(3))?;
            }
            out.ratings_done()?;
            let rows = tx
                .query_raw(
                    "SELECT user_id, movie_id, tag, timestamp FROM tags ORDER BY id",
                    none,
                )
                .await
                .map_err(|e| self.error(&e))?;
            futures_util::pin_mut!(rows);
            while let Some(row) = rows.next().await {
                let row = row.map_err(|e| self.error(&e))?;
                out.tag(id(row.get(0)), id(row.get(1)), row.get(2), row.get(3))?;
            }
            tx.commit().await.map_err(|e| self.error(&e))?;
            out.finish()
        })
    }
}

impl Postgres {
    async fn lease_row(&self, client: &tokio_postgres::Client) -> Result<Lease> {
        let row = client
            .query_opt(
                &format!(
                    "SELECT holder, expires_at - {EPOCH}, trigger FROM trainer_lease \
                     WHERE name = 'trainer'"
                ),
                &[],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(match row {
            Some(r) => Lease {
                acquired: false,
                holder: r.get(0),
                expires_in: r.get(1),
                trigger: r.get(2),
            },
            None => Lease {
                acquired: false,
                holder: None,
                expires_in: 0,
                trigger: None,
            },
        })
    }

    /// Keeps a connection that `LISTEN`s on [`MODELS_CHANNEL`] and forwards each announced
    /// model id to `tx`, reconnecting (after a second) when the connection drops, until `tx`'s
    /// receiver is gone.
    async fn listen(config: Config, location: PathBuf, tx: tokio::sync::mpsc::Sender<String>) {
        loop {
            match config.connect(NoTls).await {
                Ok((client, mut connection)) => {
                    let (notes, mut received) = tokio::sync::mpsc::unbounded_channel();
                    // The connection delivers notifications only while it is polled.
                    let driver = tokio::spawn(async move {
                        let mut messages =
                            futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                        while let Some(message) = messages.next().await {
                            match message {
                                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                                    let _ = notes.send(n.payload().to_string());
                                }
                                Ok(_) => {}
                                Err(_) => break,
                            }
                        }
                    });
                    match client
                        .batch_execute(&format!("LISTEN {MODELS_CHANNEL}"))
                        .await
                    {
                        Ok(()) => {
                            // A model published while this connection was down: say so now
                            // (the follower checks the newest model on any announcement).
                            if tx.send(String::new()).await.is_err() {
                                driver.abort();
                                return;
                            }
                            while let Some(id) = received.recv().await {
                                if tx.send(id).await.is_err() {
                                    driver.abort();
                                    return;
                                }
                            }
                        }
                        Err(e) => tracing::warn!(
                            "database {}: LISTEN {MODELS_CHANNEL}: {}",
                            location.display(),
                            message(&e)
                        ),
                    }
                    driver.abort();
                }
                Err(e) => tracing::warn!(
                    "database {}: the LISTEN connection: {}",
                    location.display(),
                    message(&e)
                ),
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// A movie as the `movies` table's columns hold it.
struct MovieRow {
    movie_id: i64,
    title: String,
    genres: String,
    imdb_id: Option<i64>,
    tmdb_id: Option<i64>,
}

impl MovieRow {
    fn of(movie: &MovieRecord) -> MovieRow {
        MovieRow {
            movie_id: i64::from(movie.movie_id),
            title: movie.movielens_title(),
            genres: movie.genres.join("|"),
            imdb_id: movie.imdb_id.map(i64::from),
            tmdb_id: movie.tmdb_id.map(i64::from),
        }
    }

    /// `movie_id, title, genres, imdb_id, tmdb_id, added_at` as statement parameters.
    fn params<'a>(&'a self, added_at: &'a i64) -> [&'a (dyn ToSql + Sync); 6] {
        [
            &self.movie_id,
            &self.title,
            &self.genres,
            &self.imdb_id,
            &self.tmdb_id,
            added_at,
        ]
    }
}

/// The first of `ids` (in their order) that is not in the catalog.
async fn first_unknown_movie(
    tx: &Transaction<'_>,
    ids: &[i64],
) -> std::result::Result<Option<i64>, tokio_postgres::Error> {
    Ok(tx
        .query_opt(
            "SELECT t.m FROM unnest($1::bigint[]) WITH ORDINALITY AS t(m, o) \
             WHERE NOT EXISTS (SELECT 1 FROM movies WHERE movie_id = t.m) ORDER BY t.o LIMIT 1",
            &[&ids],
        )
        .await?
        .map(|r| r.get(0)))
}

#[async_trait::async_trait]
impl Store for Postgres {
    fn location(&self) -> &Path {
        &self.location
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn counts(&self) -> Result<(u64, u64, u64)> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT (SELECT count(*) FROM movies), (SELECT count(*) FROM users), \
                 (SELECT count(*) FROM ratings)",
                &[],
            )
            .await
            .map_err(|e| self.error(&e))?;
        let n = |i: usize| row.get::<_, i64>(i).max(0) as u64;
        Ok((n(0), n(1), n(2)))
    }

    async fn import_release(&self, dataset: Dataset) -> Result<Imported> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.error(&e))?;
        tx.batch_execute("SET LOCAL statement_timeout = 0")
            .await
            .map_err(|e| self.error(&e))?;
        // Servers starting together: the first imports, the others then find it done.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_IMPORT])
            .await
            .map_err(|e| self.error(&e))?;
        let before: Option<String> = tx
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&IMPORTED_KEY])
            .await
            .map_err(|e| self.error(&e))?
            .map(|r| r.get(0));
        let has_movies: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM movies)", &[])
            .await
            .map_err(|e| self.error(&e))?
            .get(0);
        if before.is_some() || has_movies {
            return Ok(Imported {
                fingerprint: before.unwrap_or_default(),
                now: false,
                counts: (0, 0, 0),
            });
        }
        let links = &dataset.links;
        self.copy_in(
            &tx,
            "COPY movies (movie_id, title, genres, imdb_id, tmdb_id) FROM STDIN \
             (FORMAT csv, FORCE_NULL (imdb_id, tmdb_id))",
            dataset.movies.iter(),
            |w, movie| {
                let link = links.get(&movie.movie_id).copied().unwrap_or_default();
                w.write_record([
                    movie.movie_id.to_string(),
                    movie.title.clone(),
                    movie.genres.join("|"),
                    link.imdb_id.map(|i| i.to_string()).unwrap_or_default(),
                    link.tmdb_id.map(|i| i.to_string()).unwrap_or_default(),
                ])
            },
        )
        .await?;
        let users: std::collections::BTreeSet<u32> =
            dataset.ratings.iter().map(|r| r.user_id).collect();
        self.copy_in(
            &tx,
            "COPY users (user_id, created_at) FROM STDIN (FORMAT csv)",
            users.iter(),
            |w, user| w.write_record([user.to_string().as_str(), "0"]),
        )
        .await?;
        self.copy_in(
            &tx,
            "COPY ratings (user_id, movie_id, rating, timestamp) FROM STDIN (FORMAT csv)",
            dataset.ratings.iter(),
            |w, r| {
                w.write_record([
                    r.user_id.to_string(),
                    r.movie_id.to_string(),
                    format!("{:.1}", r.rating),
                    r.timestamp.to_string(),
                ])
            },
        )
        .await?;
        self.copy_in(
            &tx,
            "COPY tags (user_id, movie_id, tag, timestamp) FROM STDIN (FORMAT csv)",
            dataset.tags.iter(),
            |w, t| {
                w.write_record([
                    t.user_id.to_string(),
                    t.movie_id.to_string(),
                    t.tag.clone(),
                    t.timestamp.to_string(),
                ])
            },
        )
        .await?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)",
            &[&IMPORTED_KEY, &dataset.fingerprint],
        )
        .await
        .map_err(|e| self.error(&e))?;
        tx.commit().await.map_err(|e| self.error(&e))?;
        Ok(Imported {
            fingerprint: dataset.fingerprint.clone(),
            now: true,
            counts: (dataset.movies.len(), users.len(), dataset.ratings.len()),
        })
    }

    async fn import_rows(
        &self,
        movies: Vec<MovieRecord>,
        ratings: Vec<Rating>,
        now: i64,
    ) -> Result<FilesImported> {
        // The last of several ratings of one movie by one user wins (as SQLite's INSERT OR
        // REPLACE does row by row); one INSERT … ON CONFLICT may not touch a row twice.
        let mut last = std::collections::HashMap::with_capacity(ratings.len());
        for (i, r) in ratings.iter().enumerate() {
            last.insert((r.user_id, r.movie_id), i);
        }
        let kept: Vec<&Rating> = ratings
            .iter()
            .enumerate()
            .filter(|(i, r)| last.get(&(r.user_id, r.movie_id)) == Some(i))
            .map(|(_, r)| r)
            .collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.error(&e))?;
        tx.batch_execute("SET LOCAL statement_timeout = 0")
            .await
            .map_err(|e| self.error(&e))?;
        for movie in &movies {
            self.upsert_movie(&tx, movie, now).await?;
        }
        let mut users_created = 0usize;
        for chunk in kept.chunks(CHUNK) {
            let users: Vec<i64> = chunk
                .iter()
                .map(|r| i64::from(r.user_id))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let created: i64 = tx
                .query_one(
                    "WITH added AS (INSERT INTO users (user_id, token_hash, created_at) \
                     SELECT u, NULL, 0 FROM unnest($1::bigint[]) AS t(u) \
                     ON CONFLICT (user_id) DO NOTHING RETURNING 1) SELECT count(*) FROM added",
                    &[&users],
                )
                .await
                .map_err(|e| self.error(&e))?
                .get(0);
            users_created += created.max(0) as usize;
            let movie_ids: Vec<i64> = chunk.iter().map(|r| i64::from(r.movie_id)).collect();
            if let Some(unknown) = first_unknown_movie(&tx, &movie_ids)
                .await
                .map_err(|e| self.error(&e))?
            {
                return Err(unknown_movie(id(unknown)));
            }
            let user_ids: Vec<i64> = chunk.iter().map(|r| i64::from(r.user_id)).collect();
            let stars: Vec<f64> = chunk.iter().map(|r| f64::from(r.rating)).collect();
            let times: Vec<i64> = chunk.iter().map(|r| i64::from(r.timestamp)).collect();
            tx.execute(
                "INSERT INTO ratings (user_id, movie_id, rating, timestamp, seq) \
                 SELECT u, m, r, ts, 0 FROM unnest($1::bigint[], $2::bigint[], \
                 $3::float8[], $4::bigint[]) AS t(u, m, r, ts) \
                 ON CONFLICT (user_id, movie_id) DO UPDATE SET rating = excluded.rating, \
                 timestamp = excluded.timestamp, seq = excluded.seq",
                &[&user_ids, &movie_ids, &stars, &times],
            )
            .await
            .map_err(|e| self.error(&e))?;
        }
        tx.commit().await.map_err(|e| self.error(&e))?;
        Ok(FilesImported {
            movies: movies.len(),
            ratings: ratings.len(),
            users_created,
        })
    }

    async fn insert_user(&self, token_hash: [u8; 32], now: i64) -> Result<u32> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.error(&e))?;
        // One above every id: creations through any server are serialised here.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_USERS])
            .await
            .map_err(|e| self.error(&e))?;
        let next: i64 = tx
            .query_one("SELECT coalesce(max(user_id), 0) + 1 FROM users", &[])
            .await
            .map_err(|e| self.error(&e))?
            .get(0);
        let user_id = u32::try_from(next)
            .map_err(|_| db_error(&self.location, "user ids are exhausted (over 2^32)"))?;
        tx.execute(
            "INSERT INTO users (user_id, token_hash, created_at) VALUES ($1, $2, $3)",
            &[&next, &&token_hash[..], &now],
        )
        .await
        .map_err(|e| self.error(&e))?;
        tx.commit().await.map_err(|e| self.error(&e))?;
        Ok(user_id)
    }

    async fn user(&self, user_id: u32) -> Result<Option<UserRecord>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT token_hash FROM users WHERE user_id = $1")
            .await
            .map_err(|e| self.error(&e))?;
        let row = client
            .query_opt(&statement, &[&i64::from(user_id)])
            .await
            .map_err(|e| self.error(&e))?;
        Ok(row.map(|r| UserRecord {
            user_id,
            token_hash: r
                .get::<_, Option<Vec<u8>>>(0)
                .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok()),
        }))
    }

    async fn user_of_token(&self, hash: [u8; 32]) -> Result<Option<u32>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT user_id FROM users WHERE token_hash = $1")
            .await
            .map_err(|e| self.error(&e))?;
        let row = client
            .query_opt(&statement, &[&&hash[..]])
            .await
            .map_err(|e| self.error(&e))?;
        Ok(row.map(|r| id(r.get(0))))
    }

    async fn ratings_of(&self, user_id: u32) -> Result<Vec<StoredRating>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT movie_id, rating, timestamp FROM ratings WHERE user_id = $1 \
                 ORDER BY timestamp DESC, seq DESC, movie_id DESC",
            )
            .await
            .map_err(|e| self.error(&e))?;
        let rows = client
            .query(&statement, &[&i64::from(user_id)])
            .await
            .map_err(|e| self.error(&e))?;
        Ok(rows
            .iter()
            .map(|r| StoredRating {
                user_id,
                movie_id: id(r.get(0)),
                rating: r.get::<_, f64>(1) as f32,
                timestamp: r.get(2),
            })
            .collect())
    }

    async fn put_rating(&self, rating: StoredRating) -> Result<StoredRating> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "INSERT INTO ratings (user_id, movie_id, rating, timestamp, seq) \
                 VALUES ($1, $2, $3, $4, nextval('rating_seq')) \
                 ON CONFLICT (user_id, movie_id) DO UPDATE SET rating = excluded.rating, \
                 timestamp = excluded.timestamp, seq = excluded.seq",
            )
            .await
            .map_err(|e| self.error(&e))?;
        let written = client
            .execute(
                &statement,
                &[
                    &i64::from(rating.user_id),
                    &i64::from(rating.movie_id),
                    &f64::from(rating.rating),
                    &rating.timestamp,
                ],
            )
            .await;
        match written {
            Ok(_) => Ok(rating),
            Err(e) => match e.as_db_error() {
                Some(db) if db.code() == &SqlState::FOREIGN_KEY_VIOLATION => {
                    if db.constraint() == Some("ratings_user_id_fkey") {
                        Err(Error::UserNotFound {
                            user_id: rating.user_id,
                        })
                    } else {
                        Err(unknown_movie(rating.movie_id))
                    }
                }
                _ => Err(self.error(&e)),
            },
        }
    }

    async fn delete_rating(&self, user_id: u32, movie_id: u32) -> Result<bool> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("DELETE FROM ratings WHERE user_id = $1 AND movie_id = $2")
            .await
            .map_err(|e| self.error(&e))?;
        let n = client
            .execute(&statement, &[&i64::from(user_id), &i64::from(movie_id)])
            .await
            .map_err(|e| self.error(&e))?;
        Ok(n > 0)
    }

    async fn add_movie(&self, movie: MovieRecord, now: i64) -> Result<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO movies (movie_id, title, genres, imdb_id, tmdb_id, added_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (movie_id) DO NOTHING",
                &MovieRow::of(&movie).params(&now),
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(n == 1)
    }

    async fn change_movie(&self, movie_id: u32, change: MovieChange) -> Result<MovieRecord> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.error(&e))?;
        let Some(row) = tx
            .query_opt(
                "SELECT title, genres, imdb_id, tmdb_id FROM movies WHERE movie_id = $1 \
                 FOR UPDATE",
                &[&i64::from(movie_id)],
            )
            .await
            .map_err(|e| self.error(&e))?
        else {
            return Err(unknown_movie(movie_id));
        };
        let movie = change(Postgres::movie_of(movie_id, &row))?;
        self.upsert_movie(&tx, &movie, crate::clock::unix_seconds())
            .await?;
        tx.commit().await.map_err(|e| self.error(&e))?;
        Ok(movie)
    }

    fn record_impressions(&self, user_id: u32, model: &str, movies: Vec<u32>, now: i64) {
        // Under a load that keeps IMPRESSION_WRITES inserts in flight, impressions are dropped
        // (sampled) rather than queued without bound.
        let Ok(permit) = self.impressions.clone().try_acquire_owned() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (pool, location, model) = (self.pool.clone(), self.location.clone(), model.to_string());
        let movies: Vec<i64> = movies.into_iter().map(i64::from).collect();
        handle.spawn(async move {
            let _permit = permit;
            let written = async {
                let client = pool.get().await.map_err(|e| e.to_string())?;
                client
                    .execute(
                        "INSERT INTO impressions (user_id, movie_id, model, shown_at) \
                         SELECT $1, m, $2, $3 FROM unnest($4::bigint[]) AS t(m) \
                         ON CONFLICT DO NOTHING",
                        &[&i64::from(user_id), &model, &now, &movies],
                    )
                    .await
                    .map_err(|e| message(&e))
            }
            .await;
            if let Err(e) = written {
                tracing::warn!("database {}: impressions: {e}", location.display());
            }
        });
    }

    async fn online_metrics(&self, days: u32, now: i64) -> Result<Vec<OnlineDay>> {
        let since = now - i64::from(days.min(MAX_DAYS)) * 86_400;
        let rows = self
            .client()
            .await?
            .query(
                "SELECT to_char(to_timestamp(i.shown_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, \
                   i.model, count(*), count(r.rating), \
                   coalesce(sum(CASE WHEN r.rating >= $3 THEN 1 ELSE 0 END), 0)::bigint \
                 FROM impressions i LEFT JOIN ratings r \
                   ON r.user_id = i.user_id AND r.movie_id = i.movie_id \
                  AND r.timestamp >= i.shown_at AND r.timestamp < i.shown_at + $2 \
                 WHERE i.shown_at >= $1 \
                 GROUP BY day, i.model ORDER BY day DESC, i.model",
                &[&since, &(WINDOW_DAYS * 86_400), &LIKED_RATING],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let impressions = r.get::<_, i64>(2).max(0) as u64;
                let rated = r.get::<_, i64>(3).max(0) as u64;
                let liked = r.get::<_, i64>(4).max(0) as u64;
                let share = |n: u64| {
                    if impressions == 0 {
                        0.0
                    } else {
                        n as f64 / impressions as f64
                    }
                };
                OnlineDay {
                    day: r.get(0),
                    model: r.get(1),
                    impressions,
                    rated,
                    liked,
                    hit_rate: share(liked),
                    rated_rate: share(rated),
                }
            })
            .collect())
    }

    async fn acquire_lease(&self, holder: &str, seconds: u32, trigger: &str) -> Result<Lease> {
        let client = self.client().await?;
        let took = client
            .query_opt(
                &format!(
                    "INSERT INTO trainer_lease (name, holder, expires_at, trigger, started_at) \
                     VALUES ('trainer', $1, {EPOCH} + $2, $3, {EPOCH}) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                     expires_at = excluded.expires_at, trigger = excluded.trigger, \
                     started_at = excluded.started_at \
                     WHERE trainer_lease.holder IS NULL OR trainer_lease.expires_at <= {EPOCH} \
                     OR trainer_lease.holder = excluded.holder RETURNING holder"
                ),
                &[&holder, &i64::from(seconds), &trigger],
            )
            .await
            .map_err(|e| self.error(&e))?
            .is_some();
        let mut lease = self.lease_row(&client).await?;
        lease.acquired = took && lease.holder.as_deref() == Some(holder);
        Ok(lease)
    }

    async fn renew_lease(&self, holder: &str, seconds: u32) -> Result<bool> {
        let n = self
            .client()
            .await?
            .execute(
                &format!(
                    "UPDATE trainer_lease SET expires_at = {EPOCH} + $2 \
                     WHERE name = 'trainer' AND holder = $1"
                ),
                &[&holder, &i64::from(seconds)],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(n == 1)
    }

    async fn release_lease(&self, holder: &str) -> Result<()> {
        self.client()
            .await?
            .execute(
                "UPDATE trainer_lease SET holder = NULL, expires_at = 0 \
                 WHERE name = 'trainer' AND holder = $1",
                &[&holder],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.error(&e))
    }

    async fn lease(&self) -> Result<Lease> {
        let client = self.client().await?;
        self.lease_row(&client).await
    }

    async fn publish_model(&self, holder: &str, model_id: &str) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.error(&e))?;
        // The lease row stays locked until the commit: no other server can take it between
        // the check and the publication.
        let holds = tx
            .query_opt(
                "SELECT 1 FROM trainer_lease WHERE name = 'trainer' AND holder = $1 FOR UPDATE",
                &[&holder],
            )
            .await
            .map_err(|e| self.error(&e))?
            .is_some();
        if !holds {
            return Ok(false);
        }
        tx.execute(
            &format!(
                "INSERT INTO models (model_id, published_at, published_by) \
                 VALUES ($1, {EPOCH}, $2)"
            ),
            &[&model_id, &holder],
        )
        .await
        .map_err(|e| self.error(&e))?;
        // Delivered to every listener when (and only if) the transaction commits.
        tx.execute("SELECT pg_notify($1, $2)", &[&MODELS_CHANNEL, &model_id])
            .await
            .map_err(|e| self.error(&e))?;
        tx.commit().await.map_err(|e| self.error(&e))?;
        Ok(true)
    }

    async fn latest_model(&self) -> Result<Option<Published>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT model_id, published_at, published_by FROM models \
                 ORDER BY published_at DESC, model_id DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(row.map(|r| Published {
            model_id: r.get(0),
            published_at: r.get(1),
            published_by: r.get(2),
        }))
    }

    async fn older_models(&self, keep: u32) -> Result<Vec<String>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT model_id FROM models ORDER BY published_at DESC, model_id DESC \
                 OFFSET $1",
                &[&i64::from(keep)],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(rows.iter().rev().map(|r| r.get(0)).collect())
    }

    async fn put_run(&self, run: &StoredRun) -> Result<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO runs (run_id, kind, started_at, record) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (run_id) DO UPDATE SET kind = excluded.kind, \
                 started_at = excluded.started_at, record = excluded.record",
                &[&run.run_id, &run.kind, &run.started_at, &run.record],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.error(&e))
    }

    async fn runs(&self, kind: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .await?
            .query(
                "SELECT record FROM runs WHERE $1::text IS NULL OR kind = $1 \
                 ORDER BY started_at DESC, run_id DESC LIMIT $2",
                &[&kind, &limit],
            )
            .await
            .map_err(|e| self.error(&e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn announcements(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        handle.spawn(Postgres::listen(
            self.config.clone(),
            self.location.clone(),
            tx,
        ));
        Some(rx)
    }

    async fn export(&self, out: &Path) -> Result<Exported> {
        let staged = crate::atomic::StagedDir::new(out, |dir| {
            dir.join("ratings.csv").is_file() && dir.join("movies.csv").is_file()
        })?;
        let handle = tokio::runtime::Handle::current();
        let store = self.clone();
        let dir = staged.path().to_path_buf();
        let written = tokio::task::spawn_blocking(move || store.export_blocking(&handle, &dir))
            .await
            .map_err(|e| db_error(&self.location, format!("the export failed: {e}")))??;
        staged.publish()?;
        Ok(written)
    }
}
