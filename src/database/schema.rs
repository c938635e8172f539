//! The database's schema as numbered migrations. `PRAGMA user_version` holds how many are
//! applied; [`migrate`] applies the rest, each in its own transaction. Never edit a released
//! migration: add the next one.

use super::db_error;
use crate::Result;
use rusqlite::Connection;
use std::path::Path;

/// The migrations, in order: migration `i + 1` is `MIGRATIONS[i]`.
pub const MIGRATIONS: &[&str] = &[
    // 1: movies, links, users (profiles), ratings, tags, and a key-value table for what the
    // database knows about itself (what was imported). Ratings are one b-tree keyed by user and
    // movie (WITHOUT ROWID: a write touches one tree, not a table and an index); `seq` orders a
    // user's ratings written in the same second (microseconds of the write; 0 when imported).
    "CREATE TABLE movies (
        movie_id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        genres TEXT NOT NULL,
        imdb_id INTEGER,
        tmdb_id INTEGER,
        added_at INTEGER
     );
     CREATE TABLE users (
        user_id INTEGER PRIMARY KEY,
        token_hash BLOB UNIQUE,
        created_at INTEGER NOT NULL
     );
     CREATE TABLE ratings (
        user_id INTEGER NOT NULL REFERENCES users (user_id),
        movie_id INTEGER NOT NULL REFERENCES movies (movie_id),
        rating REAL NOT NULL CHECK (rating >= 0.5 AND rating <= 5.0),
        timestamp INTEGER NOT NULL,
        seq INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (user_id, movie_id)
     ) WITHOUT ROWID;
     CREATE TABLE tags (
        user_id INTEGER NOT NULL,
        movie_id INTEGER NOT NULL REFERENCES movies (movie_id),
        tag TEXT NOT NULL,
        timestamp INTEGER NOT NULL
     );
     CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 2: impressions, what was recommended to whom by which model, first shown when (a movie
    // shown again to the same person by the same model keeps its first time): the online
    // evaluation joins them with the ratings given afterwards.
    "CREATE TABLE impressions (
        user_id INTEGER NOT NULL,
        movie_id INTEGER NOT NULL,
        model TEXT NOT NULL,
        shown_at INTEGER NOT NULL,
        PRIMARY KEY (user_id, movie_id, model)
     ) WITHOUT ROWID;
     CREATE INDEX impressions_by_time ON impressions (shown_at);",
    // 3: the models published into a shared model store (`serve --model-store`), newest last,
    // and the lease that lets one server at a time train (`holder` NULL: free; an `expires_at`
    // in the past with a holder: that trainer died, and another may take over).
    "CREATE TABLE models (
        model_id TEXT PRIMARY KEY,
        published_at INTEGER NOT NULL,
        published_by TEXT NOT NULL
     );
     CREATE TABLE trainer_lease (
        name TEXT PRIMARY KEY,
        holder TEXT,
        expires_at INTEGER NOT NULL,
        trigger TEXT,
        started_at INTEGER
     );",
    // 4: the runs of the trainings servers sharing a database make (their records as JSON, as
    // the run store writes them), so that every server lists every server's runs.
    "CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        started_at TEXT NOT NULL,
        record TEXT NOT NULL
     );
     CREATE INDEX runs_by_start ON runs (started_at);",
];

/// The same migrations for PostgreSQL ([`super::postgres`]): the same tables, columns and keys
/// in PostgreSQL's types (ids are `BIGINT` to hold every `u32`; hashes `BYTEA`). Tags get an
/// `id` to keep their order (SQLite's `rowid`), and `rating_seq` numbers the ratings written
/// through any server (SQLite's writer takes the clock's microseconds). Migration `i + 1` here
/// is `MIGRATIONS[i]` there; the version is the one row of `movierec_schema`.
pub const POSTGRES_MIGRATIONS: &[&str] = &[
    "CREATE TABLE movies (
        movie_id BIGINT PRIMARY KEY,
        title TEXT NOT NULL,
        genres TEXT NOT NULL,
        imdb_id BIGINT,
        tmdb_id BIGINT,
        added_at BIGINT
     );
     CREATE TABLE users (
        user_id BIGINT PRIMARY KEY,
        token_hash BYTEA UNIQUE,
        created_at BIGINT NOT NULL
     );
     CREATE TABLE ratings (
        user_id BIGINT NOT NULL REFERENCES users (user_id),
        movie_id BIGINT NOT NULL REFERENCES movies (movie_id),
        rating DOUBLE PRECISION NOT NULL CHECK (rating >= 0.5 AND rating <= 5.0),
        timestamp BIGINT NOT NULL,
        seq BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (user_id, movie_id)
     );
     CREATE SEQUENCE rating_seq;
     CREATE TABLE tags (
        id BIGSERIAL PRIMARY KEY,
        user_id BIGINT NOT NULL,
        movie_id BIGINT NOT NULL REFERENCES movies (movie_id),
        tag TEXT NOT NULL,
        timestamp BIGINT NOT NULL
     );
     CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    "CREATE TABLE impressions (
        user_id BIGINT NOT NULL,
        movie_id BIGINT NOT NULL,
        model TEXT NOT NULL,
        shown_at BIGINT NOT NULL,
        PRIMARY KEY (user_id, movie_id, model)
     );
     CREATE INDEX impressions_by_time ON impressions (shown_at);",
    "CREATE TABLE models (
        model_id TEXT PRIMARY KEY,
        published_at BIGINT NOT NULL,
        published_by TEXT NOT NULL
     );
     CREATE TABLE trainer_lease (
        name TEXT PRIMARY KEY,
        holder TEXT,
        expires_at BIGINT NOT NULL,
        trigger TEXT,
        started_at BIGINT
     );",
    "CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        started_at TEXT NOT NULL,
        record TEXT NOT NULL
     );
     CREATE INDEX runs_by_start ON runs (started_at);",
];

/// The schema version this movierec writes.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// The database's schema version (`PRAGMA user_version`).
pub fn version(conn: &Connection, path: &Path) -> Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| db_error(path, e))
}

/// Applies the migrations `conn` lacks, each in one transaction with its version bump; refuses a
/// database of a newer schema.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let current = version(conn, path)?;
    if current > VERSION {
        return Err(db_error(
            path,
            format!(
                "schema version {current} was written by a newer movierec (this one knows up to \
                 {VERSION}); upgrade movierec or use another --database"
            ),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let next = i as u32 + 1;
        let tx = conn.transaction().map_err(|e| db_error(path, e))?;
        tx.execute_batch(sql)
            .and_then(|_| tx.pragma_update(None, "user_version", next))
            .map_err(|e| db_error(path, format!("migration {next}: {e}")))?;
        tx.commit().map_err(|e| db_error(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migrations() {
        assert_eq!(MIGRATIONS.len(), POSTGRES_MIGRATIONS.len());
        for (sqlite, postgres) in MIGRATIONS.iter().zip(POSTGRES_MIGRATIONS) {
            let tables = |sql: &str| {
                sql.split("CREATE TABLE ")
                    .skip(1)
                    .map(|t| t.split_whitespace().next().unwrap_or("").to_string())
                    .collect::<Vec<_>>()
            };
            assert_eq!(tables(sqlite), tables(postgres));
        }
    }

    #[test]
    fn migrations_apply_once_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut conn = Connection::open(&path).unwrap();
        assert_eq!(version(&conn, &path).unwrap(), 0);
        migrate(&mut conn, &path).unwrap();
        assert_eq!(version(&conn, &path).unwrap(), VERSION);
        // Applying again changes nothing (and does not fail on existing tables).
        migrate(&mut conn, &path).unwrap();
        assert_eq!(version(&conn, &path).unwrap(), VERSION);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 9);
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        let error = migrate(&mut conn, &path).unwrap_err().to_string();
        assert!(error.contains("newer movierec"), "{error}");
    }

    #[test]
    fn a_failing_migration_leaves_the_version_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut conn = Connection::open(&path).unwrap();
        // A table in the way of migration 1: it fails, and nothing of it is kept.
        conn.execute_batch("CREATE TABLE users (x)").unwrap();
        let error = migrate(&mut conn, &path).unwrap_err().to_string();
        assert!(error.contains("migration 1"), "{error}");
        assert_eq!(version(&conn, &path).unwrap(), 0);
        let movies: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'movies'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(movies, 0);
    }
}
