//! Reader for the CSV releases (`movies.csv`, `ratings.csv`, `links.csv`, `tags.csv`).

use super::{Dataset, Link, LoadReport, Rating, RawMovie, Tag};
use crate::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use xxhash_rust::xxh3::Xxh3;

/// Loads a CSV MovieLens release from `dir`.
///
/// A missing required file, a wrong header or an empty file is an error naming the file; a
/// malformed row is an error naming `file:line`. Ratings and tags of movies that are not in
/// `movies.csv` are skipped and counted in [`Dataset::report`].
pub fn load(dir: &Path) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(Error::data(
            dir.display().to_string(),
            "is not a directory (expected a MovieLens release with movies.csv and ratings.csv)",
        ));
    }
    let mut fingerprint = Xxh3::new();
    let mut report = LoadReport::default();

    let movies_path = dir.join("movies.csv");
    let movies = read_movies(&movies_path, &mut fingerprint)?;
    let known: HashSet<u32> = movies.iter().map(|m| m.movie_id).collect();

    let links_path = dir.join("links.csv");
    let links = if links_path.exists() {
        read_links(&links_path, &mut fingerprint)?
    } else {
        HashMap::new()
    };

    let ratings_path = dir.join("ratings.csv");
    let ratings = read_ratings(&ratings_path, &known, &mut fingerprint, &mut report)?;

    let tags_path = dir.join("tags.csv");
    let tags = if tags_path.exists() {
        read_tags(&tags_path, &known, &mut fingerprint, &mut report)?
    } else {
        Vec::new()
    };

    Ok(Dataset {
        dir: dir.to_path_buf(),
        movies,
        links,
        ratings,
        tags,
        fingerprint: format!("xxh3:{:032x}", fingerprint.digest128()),
        report,
    })
}

/// Reads a whole file, feeds it to the fingerprint and checks its header line.
fn read_checked(path: &Path, header: &[&str], fingerprint: &mut Xxh3) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    fingerprint.update(file_name(path).as_bytes());
    fingerprint.update(&(bytes.len() as u64).to_le_bytes());
    fingerprint.update(&bytes);
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let first = body.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    let first = first.trim_end_matches('\r');
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::data(
            path.display().to_string(),
            format!("file is empty (expected the header {:?})", header.join(",")),
        ));
    }
    let found: Vec<&str> = first.split(',').map(str::trim).collect();
    if found != header {
        return Err(Error::data(
            format!("{}:1", path.display()),
            format!(
                "unexpected header {first:?} (expected {:?})",
                header.join(",")
            ),
        ));
    }
    Ok(body.to_vec())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes)
}

/// `file:line` of a CSV record (1-based, header is line 1).
fn at(path: &Path, record: &csv::ByteRecord) -> String {
    let line = record.position().map(|p| p.line()).unwrap_or(0);
    format!("{}:{line}", path.display())
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    Error::data(format!("{}:{line}", path.display()), e.to_string())
}

fn field<'r>(
    path: &Path,
    record: &'r csv::ByteRecord,
    index: usize,
    expected: usize,
) -> Result<&'r [u8]> {
    if record.len() != expected {
        return Err(Error::data(
            at(path, record),
            format!("expected {expected} fields, found {}", record.len()),
        ));
    }
    Ok(&record[index])
}

fn parse<T: std::str::FromStr>(
    path: &Path,
    record: &csv::ByteRecord,
    index: usize,
    expected: usize,
    name: &str,
) -> Result<T> {
    let raw = field(path, record, index, expected)?;
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            Error::data(
                at(path, record),
                format!(
                    "{name}: cannot parse {:?} as a number",
                    String::from_utf8_lossy(raw)
                ),
            )
        })
}

fn read_movies(path: &Path, fingerprint: &mut Xxh3) -> Result<Vec<RawMovie>> {
    let bytes = read_checked(path, &["movieId", "title", "genres"], fingerprint)?;
    let mut movies = Vec::new();
    let mut seen = HashSet::new();
    let mut record = csv::ByteRecord::new();
    let mut rdr = reader(&bytes);
    while rdr
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        let movie_id: u32 = parse(path, &record, 0, 3, "movieId")?;
        if !seen.insert(movie_id) {
            return Err(Error::data(
                at(path, &record),
                format!("movieId {movie_id} appears twice"),
            ));
        }
        let title = String::from_utf8_lossy(&record[1]).trim().to_string();
        let genres = String::from_utf8_lossy(&record[2]);
        let genres = genres
            .split('|')
            .map(str::trim)
            .filter(|g| !g.is_empty() && *g != "(no genres listed)")
            .map(str::to_string)
            .collect();
        movies.push(RawMovie {
            movie_id,
            title,
            genres,
        });
    }
    Ok(movies)
}

fn read_links(path: &Path, fingerprint: &mut Xxh3) -> Result<HashMap<u32, Link>> {
    let bytes = read_checked(path, &["movieId", "imdbId", "tmdbId"], fingerprint)?;
    let mut links = HashMap::new();
    let mut record = csv::ByteRecord::new();
    let mut rdr = reader(&bytes);
    while rdr
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        let movie_id: u32 = parse(path, &record, 0, 3, "movieId")?;
        let optional = |index: usize, name: &str| -> Result<Option<u32>> {
            if record[index].iter().all(u8::is_ascii_whitespace) {
                Ok(None)
            } else {
                parse(path, &record, index, 3, name).map(Some)
            }
        };
        let link = Link {
            imdb_id: optional(1, "imdbId")?,
            tmdb_id: optional(2, "tmdbId")?,
        };
        links.insert(movie_id, link);
    }
    Ok(links)
}

fn read_ratings(
    path: &Path,
    known: &HashSet<u32>,
    fingerprint: &mut Xxh3,
    report: &mut LoadReport,
) -> Result<Vec<Rating>> {
    let bytes = read_checked(
        path,
        &["userId", "movieId", "rating", "timestamp"],
        fingerprint,
    )?;
    let mut ratings = Vec::with_capacity(bytes.len() / 24);
    let mut record = csv::ByteRecord::new();
    let mut rdr = reader(&bytes);
    while rdr
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        let user_id: u32 = parse(path, &record, 0, 4, "userId")?;
        let movie_id: u32 = parse(path, &record, 1, 4, "movieId")?;
        let rating: f32 = parse(path, &record, 2, 4, "rating")?;
        let timestamp: i64 = parse(path, &record, 3, 4, "timestamp")?;
        if !(0.5..=5.0).contains(&rating) {
            return Err(Error::data(
                at(path, &record),
                format!("rating {rating} is outside the allowed range 0.5 to 5.0"),
            ));
        }
        if !known.contains(&movie_id) {
            report.skip(
                "rating of a movie not in movies.csv",
                format!(
                    "{}: movieId {movie_id} is not in movies.csv",
                    at(path, &record)
                ),
            );
            continue;
        }
        ratings.push(Rating {
            user_id,
            movie_id,
            rating,
            timestamp,
        });
    }
    if ratings.is_empty() {
        return Err(Error::data(
            path.display().to_string(),
            "no ratings of known movies (the collaborative model needs ratings)",
        ));
    }
    Ok(ratings)
}

fn read_tags(
    path: &Path,
    known: &HashSet<u32>,
    fingerprint: &mut Xxh3,
    report: &mut LoadReport,
) -> Result<Vec<Tag>> {
    let bytes = read_checked(
        path,
        &["userId", "movieId", "tag", "timestamp"],
        fingerprint,
    )?;
    let mut tags = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut rdr = reader(&bytes);
    while rdr
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        let user_id: u32 = parse(path, &record, 0, 4, "userId")?;
        let movie_id: u32 = parse(path, &record, 1, 4, "movieId")?;
        let timestamp: i64 = parse(path, &record, 3, 4, "timestamp")?;
        if !known.contains(&movie_id) {
            report.skip(
                "tag of a movie not in movies.csv",
                format!(
                    "{}: movieId {movie_id} is not in movies.csv",
                    at(path, &record)
                ),
            );
            continue;
        }
        tags.push(Tag {
            user_id,
            movie_id,
            tag: String::from_utf8_lossy(&record[2]).trim().to_string(),
            timestamp,
        });
    }
    Ok(tags)
}
