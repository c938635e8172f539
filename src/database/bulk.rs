//! The generic catalog and ratings files a site imports (`movierec import`, `POST
//! /api/admin/ratings`, `POST /api/admin/movies`): CSV with a header row, or JSON Lines (one
//! object per line). Every row is checked with the rules of the MovieLens loader, and the first
//! bad one is reported as `FILE:LINE: field: what is wrong`; nothing is written unless every row
//! is good.
//!
//! Ratings: `userId,movieId,rating[,timestamp]` (JSON: the same names; `timestamp` in seconds
//! since the Unix epoch, default: now). Movies: `movieId,title[,year][,genres][,imdbId][,tmdbId]`
//! (`genres` separated by `|` in CSV, a list or a `|`-separated string in JSON).

use super::{check_rating, MovieRecord};
use crate::data::Rating;
use crate::{Error, Result};
use serde::Deserialize;

/// How a file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated with a header row.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl Format {
    /// The format a file name says (`.jsonl`, `.ndjson`, `.json`: JSON Lines; else CSV).
    pub fn of_path(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson" | "json") => Format::JsonLines,
            _ => Format::Csv,
        }
    }
}

/// Most genres a movie may list, and longest genre name and title, in characters.
pub const MAX_GENRES: usize = 20;
const MAX_GENRE_CHARS: usize = 60;
const MAX_TITLE_CHARS: usize = 500;
/// The years a movie may have.
pub const YEARS: std::ops::RangeInclusive<i32> = 1870..=2200;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RatingRow {
    user_id: u32,
    movie_id: u32,
    rating: f64,
    #[serde(default)]
    timestamp: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Genres {
    List(Vec<String>),
    Text(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MovieRow {
    movie_id: u32,
    title: String,
    #[serde(default)]
    year: Option<i32>,
    #[serde(default)]
    genres: Option<Genres>,
    #[serde(default)]
    imdb_id: Option<u32>,
    #[serde(default)]
    tmdb_id: Option<u32>,
}

/// Reads every row of `bytes` as `T`, naming `label:line` in errors; `line` counts from 1 and
/// includes a CSV file's header.
fn rows<T: for<'de> Deserialize<'de>>(
    label: &str,
    bytes: &[u8],
    format: Format,
    mut each: impl FnMut(T, usize) -> Result<()>,
) -> Result<usize> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        Error::data(format!("{label}:{line}"), "not UTF-8 text")
    })?;
    let mut count = 0;
    match format {
        Format::JsonLines => {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let row: T = serde_json::from_str(line)
                    .map_err(|e| Error::data(format!("{label}:{}", i + 1), e.to_string()))?;
                each(row, i + 1)?;
                count += 1;
            }
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_reader(text.as_bytes());
            let headers = reader
                .headers()
                .map_err(|e| Error::data(format!("{label}:1"), e.to_string()))?
                .clone();
            for record in reader.records() {
                let record = record.map_err(|e| {
                    let line = e.position().map_or(0, |p| p.line());
                    Error::data(format!("{label}:{line}"), e.to_string())
                })?;
                let line = record.position().map_or(0, |p| p.line()) as usize;
                // Empty cells are missing values.
                let row: T = record
                    .deserialize(Some(&headers))
                    .or_else(|_| {
                        let mut cleaned = csv::StringRecord::new();
                        let mut names = csv::StringRecord::new();
                        for (name, value) in headers.iter().zip(record.iter()) {
                            if !value.is_empty() {
                                names.push_field(name);
                                cleaned.push_field(value);
                            }
                        }
                        cleaned.deserialize(Some(&names))
                    })
                    .map_err(|e| Error::data(format!("{label}:{line}"), e.to_string()))?;
                each(row, line)?;
                count += 1;
            }
        }
    }
    Ok(count)
}

fn row_error(label: &str, line: usize, e: Error) -> Error {
    match e {
        Error::InvalidArgument { message, .. } => Error::data(format!("{label}:{line}"), message),
        other => other,
    }
}

/// Reads a ratings file; a rating without a timestamp gets `now`.
pub fn parse_ratings(label: &str, bytes: &[u8], format: Format, now: i64) -> Result<Vec<Rating>> {
    let mut ratings = Vec::new();
    rows(label, bytes, format, |row: RatingRow, line| {
        let rating = check_rating(row.rating).map_err(|e| row_error(label, line, e))?;
        if row.user_id == 0 || row.movie_id == 0 {
            return Err(Error::data(
                format!("{label}:{line}"),
                "userId and movieId must be positive integers",
            ));
        }
        let timestamp = row.timestamp.unwrap_or(now);
        let timestamp = u32::try_from(timestamp).map_err(|_| {
            Error::data(
                format!("{label}:{line}"),
                format!("timestamp must be seconds since 1970 up to 2106, got {timestamp}"),
            )
        })?;
        ratings.push(Rating {
            user_id: row.user_id,
            movie_id: row.movie_id,
            rating,
            timestamp,
        });
        Ok(())
    })?;
    Ok(ratings)
}

/// Checks one movie's fields (the title, year range, genres), naming the field.
pub fn check_movie(movie: &MovieRecord) -> Result<()> {
    if movie.movie_id == 0 {
        return Err(Error::invalid(
            "movieId",
            "movieId must be a positive integer",
        ));
    }
    let title = movie.title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(Error::invalid(
            "title",
            format!("title must have 1 to {MAX_TITLE_CHARS} characters"),
        ));
    }
    if let Some(year) = movie.year.filter(|y| !YEARS.contains(y)) {
        return Err(Error::invalid(
            "year",
            format!(
                "year must be between {} and {}, got {year}",
                YEARS.start(),
                YEARS.end()
            ),
        ));
    }
    if movie.genres.len() > MAX_GENRES {
        return Err(Error::invalid(
            "genres",
            format!("at most {MAX_GENRES} genres, got {}", movie.genres.len()),
        ));
    }
    if let Some(bad) = movie.genres.iter().find(|g| {
        g.trim().is_empty() || g.chars().count() > MAX_GENRE_CHARS || g.contains(['|', '\n'])
    }) {
        return Err(Error::invalid(
            "genres",
            format!(
                "genre {} must have 1 to {MAX_GENRE_CHARS} characters and no `|`",
                crate::data::text::show(bad.as_bytes())
            ),
        ));
    }
    Ok(())
}

/// Splits a `|`-separated genre list (`(no genres listed)` and empty: none).
pub fn split_genres(text: &str) -> Vec<String> {
    if text.trim() == "(no genres listed)" {
        return Vec::new();
    }
    text.split('|')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(String::from)
        .collect()
}

/// Reads a movies file.
pub fn parse_movies(label: &str, bytes: &[u8], format: Format) -> Result<Vec<MovieRecord>> {
    let mut movies = Vec::new();
    rows(label, bytes, format, |row: MovieRow, line| {
        let movie = MovieRecord {
            movie_id: row.movie_id,
            title: row.title,
            year: row.year,
            genres: match row.genres {
                None => Vec::new(),
                Some(Genres::Text(text)) => split_genres(&text),
                Some(Genres::List(list)) => list,
            },
            imdb_id: row.imdb_id,
            tmdb_id: row.tmdb_id,
        };
        check_movie(&movie).map_err(|e| row_error(label, line, e))?;
        movies.push(movie);
        Ok(())
    })?;
    Ok(movies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_are_read_from_csv_and_json_lines_with_defaults() {
        let csv = b"userId,movieId,rating,timestamp\n7,1,4.5,100\n8,2,3,\n";
        let ratings = parse_ratings("r.csv", csv, Format::Csv, 999).unwrap();
        assert_eq!(ratings.len(), 2);
        assert_eq!(
            (ratings[0].user_id, ratings[0].rating, ratings[0].timestamp),
            (7, 4.5, 100)
        );
        assert_eq!(ratings[1].timestamp, 999);
        let jsonl = b"{\"userId\": 7, \"movieId\": 1, \"rating\": 5}\n\n{\"userId\": 9, \"movieId\": 3, \"rating\": 0.5, \"timestamp\": 5}\n";
        let ratings = parse_ratings("r.jsonl", jsonl, Format::JsonLines, 1).unwrap();
        assert_eq!(ratings.len(), 2);
        assert_eq!(ratings[1].rating, 0.5);
    }

    #[test]
    fn a_bad_row_names_the_file_line_and_problem() {
        let cases: [(&[u8], Format, &str); 5] = [
            (
                b"userId,movieId,rating\n1,1,4\n1,2,4.25\n",
                Format::Csv,
                "r:3: rating must be in half stars",
            ),
            (
                b"userId,movieId,rating\n1,1,6\n",
                Format::Csv,
                "r:2: rating must be between 0.5 and 5",
            ),
            (b"userId,movieId,rating\n1,x,4\n", Format::Csv, "r:2:"),
            (
                b"{\"userId\":1,\"movieId\":1,\"rating\":4}\n{\"userId\":1}\n",
                Format::JsonLines,
                "r:2:",
            ),
            (
                b"{\"userId\":1,\"movieId\":1,\"rating\":4,\"extra\":1}\n",
                Format::JsonLines,
                "unknown field",
            ),
        ];
        for (bytes, format, expected) in cases {
            let error = parse_ratings("r", bytes, format, 0)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }

    #[test]
    fn movies_are_read_and_checked() {
        let csv = b"movieId,title,year,genres,imdbId,tmdbId\n900001,Our Film,2026,Drama|Comedy,,\n900002,Another,,,,77\n";
        let movies = parse_movies("m.csv", csv, Format::Csv).unwrap();
        assert_eq!(movies[0].genres, vec!["Drama", "Comedy"]);
        assert_eq!(movies[0].movielens_title(), "Our Film (2026)");
        assert_eq!(movies[1].year, None);
        assert_eq!(movies[1].tmdb_id, Some(77));
        let bad = b"movieId,title,year\n5,Old,1200\n";
        let error = parse_movies("m.csv", bad, Format::Csv)
            .unwrap_err()
            .to_string();
        assert!(error.contains("m.csv:2: year must be between"), "{error}");
        let jsonl = b"{\"movieId\": 3, \"title\": \"X\", \"genres\": [\"A\", \"B\"]}\n";
        let movies = parse_movies("m.jsonl", jsonl, Format::JsonLines).unwrap();
        assert_eq!(movies[0].genres, vec!["A", "B"]);
    }
}
