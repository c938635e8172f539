//! Moving data in and out of the database: the MovieLens release imported on first start
//! ([`super::Store::import_release`]), a site's own files ([`import_files`]), and the database
//! written back out as a MovieLens CSV directory ([`super::Store::export`], through
//! [`ReleaseWriter`]) — what training reads, so that it trains on one consistent snapshot. The
//! SQLite backend's statements are here too ([`insert_ratings`], [`upsert_movie`]).

use super::sqlite::Sqlite;
use super::{db_error, Database, MovieRecord};
use crate::data::{Dataset, Rating};
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeSet;
use std::path::Path;

/// The `meta` key recording the release imported on first start.
pub const IMPORTED_KEY: &str = "imported_release";

/// What [`import_release`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// The release's fingerprint, as recorded in the database.
    pub fingerprint: String,
    /// Whether this call imported it (false: the database already held a release).
    pub now: bool,
    /// Movies, users and ratings written by this call.
    pub counts: (usize, usize, usize),
}

/// Imports `dataset` (a loaded, validated release) into an empty SQLite database, inside the
/// caller's transaction; does nothing if a release was imported before (whichever it was: the
/// database is the source of truth from then on).
pub(crate) fn import_release(
    conn: &Connection,
    path: &Path,
    dataset: &Dataset,
) -> Result<Imported> {
    let path = path.to_path_buf();
    {
        let before: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [IMPORTED_KEY],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db_error(&path, e))?;
        let has_movies: bool = conn
            .query_row("SELECT EXISTS (SELECT 1 FROM movies)", [], |r| r.get(0))
            .map_err(|e| db_error(&path, e))?;
        if before.is_some() || has_movies {
            // A release imported before, or a site's own catalog (`movierec import`).
            return Ok(Imported {
                fingerprint: before.unwrap_or_default(),
                now: false,
                counts: (0, 0, 0),
            });
        }
        for movie in &dataset.movies {
            let link = dataset
                .links
                .get(&movie.movie_id)
                .copied()
                .unwrap_or_default();
            conn.prepare_cached(
                "INSERT OR REPLACE INTO movies (movie_id, title, genres, imdb_id, tmdb_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    movie.movie_id,
                    movie.title,
                    movie.genres.join("|"),
                    link.imdb_id,
                    link.tmdb_id
                ])
            })
            .map_err(|e| db_error(&path, e))?;
        }
        let users = insert_ratings(conn, &path, &dataset.ratings, true)?;
        for tag in &dataset.tags {
            conn.prepare_cached(
                "INSERT INTO tags (user_id, movie_id, tag, timestamp) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![tag.user_id, tag.movie_id, tag.tag, tag.timestamp]))
            .map_err(|e| db_error(&path, e))?;
        }
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![IMPORTED_KEY, dataset.fingerprint],
        )
        .map_err(|e| db_error(&path, e))?;
        Ok(Imported {
            fingerprint: dataset.fingerprint.clone(),
            now: true,
            counts: (dataset.movies.len(), users, dataset.ratings.len()),
        })
    }
}

/// What [`import_files`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilesImported {
    /// Movies added or changed.
    pub movies: usize,
    /// Ratings added or replaced.
    pub ratings: usize,
    /// Users created (without a token).
    pub users_created: usize,
}

/// Imports a site's own movies and ratings files ([`super::bulk`]'s schema; CSV, or JSON Lines
/// for `.jsonl`/`.ndjson`/`.json`) in one transaction: every row is checked first and nothing is
/// written unless all are good. Movies come first, so the ratings may name them.
pub async fn import_files(
    db: &Database,
    movies: Option<&Path>,
    ratings: Option<&Path>,
) -> Result<FilesImported> {
    let now = crate::clock::unix_seconds();
    let read = |path: &Path| std::fs::read(path).map_err(|e| Error::io(path, e));
    let label = |path: &Path| path.display().to_string();
    let movies = match movies {
        Some(path) => super::bulk::parse_movies(
            &label(path),
            &read(path)?,
            super::bulk::Format::of_path(path),
        )?,
        None => Vec::new(),
    };
    let ratings = match ratings {
        Some(path) => super::bulk::parse_ratings(
            &label(path),
            &read(path)?,
            super::bulk::Format::of_path(path),
            now,
        )?,
        None => Vec::new(),
    };
    db.import_rows(movies, ratings, now).await
}

/// Inserts (or replaces) `ratings`; with `create_users`, the users that do not exist yet are
/// created without a token. Every movie must exist. Returns how many users were created.
pub fn insert_ratings(
    conn: &Connection,
    path: &Path,
    ratings: &[Rating],
    create_users: bool,
) -> Result<usize> {
    let mut created = 0;
    if create_users {
        let users: BTreeSet<u32> = ratings.iter().map(|r| r.user_id).collect();
        let mut insert = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO users (user_id, token_hash, created_at) VALUES (?1, NULL, 0)",
            )
            .map_err(|e| db_error(path, e))?;
        for user in users {
            created += insert.execute([user]).map_err(|e| db_error(path, e))?;
        }
    }
    let mut movie_exists = conn
        .prepare_cached("SELECT 1 FROM movies WHERE movie_id = ?1")
        .map_err(|e| db_error(path, e))?;
    let mut insert = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO ratings (user_id, movie_id, rating, timestamp) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(|e| db_error(path, e))?;
    let mut last_movie = None;
    for r in ratings {
        if last_movie != Some(r.movie_id) {
            if !movie_exists
                .exists([r.movie_id])
                .map_err(|e| db_error(path, e))?
            {
                return Err(super::unknown_movie(r.movie_id));
            }
            last_movie = Some(r.movie_id);
        }
        insert
            .execute(params![
                r.user_id,
                r.movie_id,
                f64::from(r.rating),
                i64::from(r.timestamp)
            ])
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Error::UserNotFound { user_id: r.user_id }
                }
                other => db_error(path, other),
            })?;
    }
    Ok(created)
}

/// Adds `movie` (or replaces the one with its id), stamped `now`.
pub fn upsert_movie(conn: &Connection, path: &Path, movie: &MovieRecord, now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO movies (movie_id, title, genres, imdb_id, tmdb_id, added_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (movie_id) DO UPDATE SET title = excluded.title, genres = excluded.genres, \
         imdb_id = excluded.imdb_id, tmdb_id = excluded.tmdb_id",
    )
    .and_then(|mut s| {
        s.execute(params![
            movie.movie_id,
            movie.movielens_title(),
            movie.genres.join("|"),
            movie.imdb_id,
            movie.tmdb_id,
            now
        ])
    })
    .map(|_| ())
    .map_err(|e| db_error(path, e))
}

/// What [`Database::export`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exported {
    /// Rows of movies.csv.
    pub movies: usize,
    /// Rows of ratings.csv.
    pub ratings: usize,
    /// Rows of tags.csv.
    pub tags: usize,
}

impl Sqlite {
    /// [`super::Store::export`]: one read transaction streamed into a [`ReleaseWriter`]. Blocks.
    pub(crate) fn export_now(&self, out: &Path) -> Result<Exported> {
        let path = super::Store::location(self).to_path_buf();
        let staged = crate::atomic::StagedDir::new(out, |dir| {
            dir.join("ratings.csv").is_file() && dir.join("movies.csv").is_file()
        })?;
        let written = self.read(|conn| {
            let db = |e: rusqlite::Error| db_error(&path, e);
            conn.execute_batch("BEGIN").map_err(db)?;
            let result = write_release(conn, &path, staged.path());
            let _ = conn.execute_batch("COMMIT");
            result
        })?;
        staged.publish()?;
        Ok(written)
    }
}

fn write_release(conn: &Connection, path: &Path, dir: &Path) -> Result<Exported> {
    let db = |e: rusqlite::Error| db_error(path, e);
    let mut out = ReleaseWriter::create(dir)?;
    let mut statement = conn
        .prepare("SELECT movie_id, title, genres, imdb_id, tmdb_id FROM movies ORDER BY movie_id")
        .map_err(db)?;
    let mut rows = statement.query([]).map_err(db)?;
    while let Some(row) = rows.next().map_err(db)? {
        out.movie(
            row.get(0).map_err(db)?,
            &row.get::<_, String>(1).map_err(db)?,
            &row.get::<_, String>(2).map_err(db)?,
            row.get(3).map_err(db)?,
            row.get(4).map_err(db)?,
        )?;
    }
    drop(rows);
    out.movies_done()?;
    let mut statement = conn
        .prepare(
            "SELECT user_id, movie_id, rating, timestamp FROM ratings ORDER BY user_id, movie_id",
        )
        .map_err(db)?;
    let mut rows = statement.query([]).map_err(db)?;
    while let Some(row) = rows.next().map_err(db)? {
        out.rating(
            row.get(0).map_err(db)?,
            row.get(1).map_err(db)?,
            row.get(2).map_err(db)?,
            row.get(3).map_err(db)?,
        )?;
    }
    drop(rows);
    out.ratings_done()?;
    let mut statement = conn
        .prepare("SELECT user_id, movie_id, tag, timestamp FROM tags ORDER BY rowid")
        .map_err(db)?;
    let mut rows = statement.query([]).map_err(db)?;
    while let Some(row) = rows.next().map_err(db)? {
        out.tag(
            row.get(0).map_err(db)?,
            row.get(1).map_err(db)?,
            &row.get::<_, String>(2).map_err(db)?,
            row.get(3).map_err(db)?,
        )?;
    }
    drop(rows);
    out.finish()
}

/// Writes a MovieLens CSV release into a directory, the way both backends export: movies (with
/// their links) in id order, then ratings, then tags, each file synced when done.
pub(crate) struct ReleaseWriter {
    dir: std::path::PathBuf,
    movies: Option<csv::Writer<std::fs::File>>,
    links: Option<csv::Writer<std::fs::File>>,
    ratings: Option<csv::Writer<std::fs::File>>,
    tags: Option<csv::Writer<std::fs::File>>,
    counts: Exported,
}

fn csv_error(name: &str, e: csv::Error) -> Error {
    Error::data(name, e.to_string())
}

impl ReleaseWriter {
    /// Creates the four files in `dir` with their header rows.
    pub(crate) fn create(dir: &Path) -> Result<ReleaseWriter> {
        let file = |name: &str, header: [&str; 4]| -> Result<csv::Writer<std::fs::File>> {
            let p = dir.join(name);
            let f = std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?;
            let mut w = csv::Writer::from_writer(f);
            let header: Vec<&str> = header.into_iter().filter(|h| !h.is_empty()).collect();
            w.write_record(&header).map_err(|e| csv_error(name, e))?;
            Ok(w)
        };
        Ok(ReleaseWriter {
            dir: dir.to_path_buf(),
            movies: Some(file("movies.csv", ["movieId", "title", "genres", ""])?),
            links: Some(file("links.csv", ["movieId", "imdbId", "tmdbId", ""])?),
            ratings: Some(file(
                "ratings.csv",
                ["userId", "movieId", "rating", "timestamp"],
            )?),
            tags: Some(file("tags.csv", ["userId", "movieId", "tag", "timestamp"])?),
            counts: Exported {
                movies: 0,
                ratings: 0,
                tags: 0,
            },
        })
    }

    /// One movie (its MovieLens title, `|`-separated genres) and its links.
    pub(crate) fn movie(
        &mut self,
        id: u32,
        title: &str,
        genres: &str,
        imdb: Option<u32>,
        tmdb: Option<u32>,
    ) -> Result<()> {
        let genres = if genres.is_empty() {
            "(no genres listed)"
        } else {
            genres
        };
        if let (Some(movies), Some(links)) = (&mut self.movies, &mut self.links) {
            movies
                .write_record([id.to_string().as_str(), title, genres])
                .map_err(|e| csv_error("movies.csv", e))?;
            links
                .write_record([
                    id.to_string(),
                    imdb.map(|i| format!("{i:07}")).unwrap_or_default(),
                    tmdb.map(|i| i.to_string()).unwrap_or_default(),
                ])
                .map_err(|e| csv_error("links.csv", e))?;
        }
        self.counts.movies += 1;
        Ok(())
    }

    /// Closes and syncs movies.csv and links.csv.
    pub(crate) fn movies_done(&mut self) -> Result<()> {
        if let Some(w) = self.movies.take() {
            finish(w, &self.dir.join("movies.csv"))?;
        }
        if let Some(w) = self.links.take() {
            finish(w, &self.dir.join("links.csv"))?;
        }
        Ok(())
    }

    /// One rating.
    pub(crate) fn rating(
        &mut self,
        user: u32,
        movie: u32,
        rating: f64,
        timestamp: i64,
    ) -> Result<()> {
        if let Some(ratings) = &mut self.ratings {
            ratings
                .write_record([
                    user.to_string(),
                    movie.to_string(),
                    format!("{rating:.1}"),
                    timestamp.to_string(),
                ])
                .map_err(|e| csv_error("ratings.csv", e))?;
        }
        self.counts.ratings += 1;
        Ok(())
    }

    /// Closes and syncs ratings.csv.
    pub(crate) fn ratings_done(&mut self) -> Result<()> {
        self.movies_done()?;
        if let Some(w) = self.ratings.take() {
            finish(w, &self.dir.join("ratings.csv"))?;
        }
        Ok(())
    }

    /// One tag.
    pub(crate) fn tag(&mut self, user: u32, movie: u32, tag: &str, timestamp: i64) -> Result<()> {
        if let Some(tags) = &mut self.tags {
            tags.write_record([
                user.to_string().as_str(),
                movie.to_string().as_str(),
                tag,
                timestamp.to_string().as_str(),
            ])
            .map_err(|e| csv_error("tags.csv", e))?;
        }
        self.counts.tags += 1;
        Ok(())
    }

    /// Closes and syncs every file; what was written.
    pub(crate) fn finish(mut self) -> Result<Exported> {
        self.ratings_done()?;
        if let Some(w) = self.tags.take() {
            finish(w, &self.dir.join("tags.csv"))?;
        }
        Ok(self.counts)
    }
}

fn finish(writer: csv::Writer<std::fs::File>, path: &Path) -> Result<()> {
    let file = writer
        .into_inner()
        .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}
