//! The CSV layout (ml-latest, ml-latest-small, ml-20m, ml-25m, ml-32m): `movies.csv`
//! (`movieId,title,genres`) and `ratings.csv` (`userId,movieId,rating,timestamp`, half stars)
//! are required; `links.csv` (`movieId,imdbId,tmdbId`), `tags.csv`
//! (`userId,movieId,tag,timestamp`) and the tag genome ([`genome`](super::genome)) are read when
//! present. Every file has a header; fields may be quoted (`"Matrix, The (1999)"`); text is UTF-8.

use super::loader::{genres, id, read_csv, text_field, KnownMovies, Loader, Parts};
use super::ratings::{self, RatingFormat, Scale};
use super::report::Reason;
use super::text::{self, Encoding};
use super::{genome, Link, RawMovie, Tag};
use crate::Result;
use std::collections::HashMap;

/// `ratings.csv`.
pub(crate) const RATINGS: RatingFormat = RatingFormat {
    file: "ratings.csv",
    separator: b",",
    header: Some(&["userId", "movieId", "rating", "timestamp"]),
    names: ["userId", "movieId", "rating", "timestamp"],
    example: "",
    scale: Scale::HalfStars,
};

/// Reads a CSV release.
pub(crate) fn load(loader: &mut Loader) -> Result<Parts> {
    let (movies, movie_lines) = read_movies(loader)?;
    let known = KnownMovies::new(&movies);
    let links = if loader.source.has("links.csv") {
        read_links(loader, &known)?
    } else {
        HashMap::new()
    };
    let ratings = ratings::read(loader, &RATINGS, &known, "movies.csv")?;
    let tags = if loader.source.has("tags.csv") {
        read_tags(loader, &known)?
    } else {
        Vec::new()
    };
    let genome = genome::read(loader, &known)?;
    Ok(Parts {
        movies,
        movie_lines,
        links,
        ratings,
        tags,
        genome,
    })
}

/// The movies, and the line of each.
fn read_movies(loader: &mut Loader) -> Result<(Vec<RawMovie>, HashMap<u32, u64>)> {
    let file = loader.file("movies.csv");
    let mut movies = Vec::new();
    let mut first_line: HashMap<u32, u64> = HashMap::new();
    let read = loader.read("movies.csv", |reader, check| {
        let header = ["movieId", "title", "genres"];
        read_csv(reader, &file, &header, check, |line, r, check| {
            let Some(movie_id) = id(&file, line, "movieId", r.field(0), check)? else {
                return Ok(());
            };
            if let Some(first) = first_line.get(&movie_id) {
                let what = format!("movieId {movie_id} was listed at line {first}, which is kept");
                return check.problem(&file, line, Reason::DuplicateMovie, what);
            }
            first_line.insert(movie_id, line);
            let title = text_field(&file, line, r.field(1), Encoding::Utf8, check)?;
            let genre_text = text_field(&file, line, r.field(2), Encoding::Utf8, check)?;
            movies.push(RawMovie {
                movie_id,
                title,
                genres: genres(&genre_text),
                merged_ids: Vec::new(),
            });
            Ok(())
        })
    })?;
    loader.summary("movies.csv", read, movies.len() as u64);
    Ok((movies, first_line))
}

fn read_links(loader: &mut Loader, known: &KnownMovies) -> Result<HashMap<u32, Link>> {
    let file = loader.file("links.csv");
    let mut links = HashMap::new();
    let mut first_line: HashMap<u32, u64> = HashMap::new();
    let read = loader.read("links.csv", |reader, check| {
        let header = ["movieId", "imdbId", "tmdbId"];
        read_csv(reader, &file, &header, check, |line, r, check| {
            let Some(movie_id) = id(&file, line, "movieId", r.field(0), check)? else {
                return Ok(());
            };
            let mut optional = |index: usize, name: &str| -> Result<Option<Option<u32>>> {
                if text::trim(r.field(index)).is_empty() {
                    return Ok(Some(None));
                }
                Ok(id(&file, line, name, r.field(index), check)?.map(Some))
            };
            let (Some(imdb_id), Some(tmdb_id)) = (optional(1, "imdbId")?, optional(2, "tmdbId")?)
            else {
                return Ok(());
            };
            if !known.contains(movie_id) {
                let what = format!("movieId {movie_id} is not in movies.csv");
                return check.problem(&file, line, Reason::UnknownMovie, what);
            }
            if let Some(first) = first_line.get(&movie_id) {
                let what = format!("movieId {movie_id} was listed at line {first}, which is kept");
                return check.problem(&file, line, Reason::DuplicateMovie, what);
            }
            first_line.insert(movie_id, line);
            links.insert(movie_id, Link { imdb_id, tmdb_id });
            Ok(())
        })
    })?;
    loader.summary("links.csv", read, links.len() as u64);
    Ok(links)
}

fn read_tags(loader: &mut Loader, known: &KnownMovies) -> Result<Vec<Tag>> {
    let file = loader.file("tags.csv");
    let mut tags = Vec::new();
    let read = loader.read("tags.csv", |reader, check| {
        let header = ["userId", "movieId", "tag", "timestamp"];
        read_csv(reader, &file, &header, check, |line, r, check| {
            let Some(user_id) = id(&file, line, "userId", r.field(0), check)? else {
                return Ok(());
            };
            let Some(movie_id) = id(&file, line, "movieId", r.field(1), check)? else {
                return Ok(());
            };
            let Some(timestamp) = text::parse_i64(r.field(3)) else {
                let what = format!(
                    "timestamp: cannot read {} as a number",
                    text::show(r.field(3))
                );
                return check.problem(&file, line, Reason::BadNumber, what);
            };
            if !known.contains(movie_id) {
                let what = format!("movieId {movie_id} is not in movies.csv");
                return check.problem(&file, line, Reason::UnknownMovie, what);
            }
            let tag = text_field(&file, line, r.field(2), Encoding::Utf8, check)?;
            tags.push(Tag {
                user_id,
                movie_id,
                tag,
                timestamp,
            });
            Ok(())
        })
    })?;
    loader.summary("tags.csv", read, tags.len() as u64);
    Ok(tags)
}
