//! Reader for the CSV releases (`movies.csv`, `ratings.csv`, `links.csv`, `tags.csv`).

use super::{Dataset, Link, LoadReport, Rating, RawMovie, Tag, TagGenome};
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

    let genome = read_genome(dir, &known, &mut fingerprint, &mut report)?;

    Ok(Dataset {
        dir: dir.to_path_buf(),
        movies,
        links,
        ratings,
        tags,
        genome,
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

/// Reads the tag genome when the release has one: `genome-tags.csv` (`tagId,tag`) names the tags,
/// `genome-scores.csv` (`movieId,tagId,relevance`) gives every genome movie a relevance in 0–1 for
/// every tag. One file without the other, an unknown `tagId`, a relevance outside 0–1 or a movie
/// missing some tags is an error naming the file and line; scores of movies not in `movies.csv`
/// are skipped and counted.
fn read_genome(
    dir: &Path,
    known: &HashSet<u32>,
    fingerprint: &mut Xxh3,
    report: &mut LoadReport,
) -> Result<Option<TagGenome>> {
    let tags_path = dir.join("genome-tags.csv");
    let scores_path = dir.join("genome-scores.csv");
    match (tags_path.exists(), scores_path.exists()) {
        (false, false) => return Ok(None),
        (true, false) => {
            return Err(Error::data(
                scores_path.display().to_string(),
                "is missing, but genome-tags.csv is present (the tag genome needs both)",
            ))
        }
        (false, true) => {
            return Err(Error::data(
                tags_path.display().to_string(),
                "is missing, but genome-scores.csv is present (the tag genome needs both)",
            ))
        }
        (true, true) => {}
    }
    let bytes = read_checked(&tags_path, &["tagId", "tag"], fingerprint)?;
    let mut tag_ids: Vec<u32> = Vec::new();
    let mut tags: Vec<String> = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut rdr = reader(&bytes);
    while rdr
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(&tags_path, e))?
    {
        let id: u32 = parse(&tags_path, &record, 0, 2, "tagId")?;
        if tag_ids.last().is_some_and(|&last| id <= last) {
            return Err(Error::data(
                at(&tags_path, &record),
                format!("tagId {id} is not above the previous one (tagIds must ascend)"),
            ));
        }
        tag_ids.push(id);
        tags.push(String::from_utf8_lossy(&record[1]).trim().to_string());
    }
    let n = tags.len();
    let bytes = read_checked(
        &scores_path,
        &["movieId", "tagId", "relevance"],
        fingerprint,
    )?;
    let mut rows: std::collections::BTreeMap<u32, (Vec<f32>, usize)> = Default::default();
    let mut rdr = reader(&bytes);
    while rdr
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(&scores_path, e))?
    {
        let movie_id: u32 = parse(&scores_path, &record, 0, 3, "movieId")?;
        let tag_id: u32 = parse(&scores_path, &record, 1, 3, "tagId")?;
        let relevance: f32 = parse(&scores_path, &record, 2, 3, "relevance")?;
        if !known.contains(&movie_id) {
            report.skip(
                "genome score of a movie not in movies.csv",
                format!(
                    "{}: movieId {movie_id} is not in movies.csv",
                    at(&scores_path, &record)
                ),
            );
            continue;
        }
        let Ok(column) = tag_ids.binary_search(&tag_id) else {
            return Err(Error::data(
                at(&scores_path, &record),
                format!("tagId {tag_id} is not in genome-tags.csv"),
            ));
        };
        if !(0.0..=1.0).contains(&relevance) {
            return Err(Error::data(
                at(&scores_path, &record),
                format!("relevance {relevance} is outside 0–1"),
            ));
        }
        let (row, filled) = rows
            .entry(movie_id)
            .or_insert_with(|| (vec![f32::NAN; n], 0));
        if row[column].is_nan() {
            *filled += 1;
        }
        row[column] = relevance;
    }
    let mut movie_ids = Vec::with_capacity(rows.len());
    let mut relevance = Vec::with_capacity(rows.len() * n);
    for (movie_id, (row, filled)) in rows {
        if filled != n {
            return Err(Error::data(
                scores_path.display().to_string(),
                format!("movieId {movie_id} has scores for {filled} of the {n} genome tags"),
            ));
        }
        movie_ids.push(movie_id);
        relevance.extend(row);
    }
    Ok(Some(TagGenome {
        tags,
        movie_ids,
        relevance,
    }))
}
