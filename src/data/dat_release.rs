//! The `::`-separated layouts, without headers: ml-10m (`movies.dat`, `ratings.dat`, optional
//! `tags.dat`; UTF-8, half stars) and ml-1m (`movies.dat`, `ratings.dat`, `users.dat`; Latin-1,
//! whole stars 1–5).
//!
//! `movies.dat` is `MovieID::Title::Genres` and `tags.dat` is `UserID::MovieID::Tag::Timestamp`;
//! a title or tag containing `::` stays whole (the id is before the first separator, genres or
//! timestamp after the last). `users.dat` (gender, age, occupation, zip code) is not needed by any
//! model and not read. Neither release has links, so its movies have no IMDb or TMDb URLs.

use super::loader::{genres, id, read_lines, text_field, KnownMovies, Loader, Parts};
use super::ratings::{self, RatingFormat, Scale};
use super::report::Reason;
use super::text::{self, Encoding};
use super::{Layout, RawMovie, Tag};
use crate::Result;
use std::collections::HashMap;

const NAMES: [&str; 4] = ["UserID", "MovieID", "Rating", "Timestamp"];
const EXAMPLE: &str = "UserID::MovieID::Rating::Timestamp";

/// ml-10m's `ratings.dat`.
pub(crate) const RATINGS_10M: RatingFormat = RatingFormat {
    file: "ratings.dat",
    separator: b"::",
    header: None,
    names: NAMES,
    example: EXAMPLE,
    scale: Scale::HalfStars,
};

/// ml-1m's `ratings.dat`.
pub(crate) const RATINGS_1M: RatingFormat = RatingFormat {
    scale: Scale::WholeStars,
    ..RATINGS_10M
};

/// Reads an ml-10m or ml-1m release.
pub(crate) fn load(loader: &mut Loader, layout: Layout) -> Result<Parts> {
    let (encoding, format) = match layout {
        Layout::Ml1m => (Encoding::Latin1, &RATINGS_1M),
        _ => (Encoding::Utf8, &RATINGS_10M),
    };
    let (movies, movie_lines) = read_movies(loader, encoding)?;
    let known = KnownMovies::new(&movies);
    let ratings = ratings::read(loader, format, &known, "movies.dat")?;
    let tags = if layout == Layout::Ml10m && loader.source.has("tags.dat") {
        read_tags(loader, &known, encoding)?
    } else {
        Vec::new()
    };
    Ok(Parts {
        movies,
        movie_lines,
        ratings,
        tags,
        ..Parts::default()
    })
}

/// Splits a line at the first and last `::` (`None` if there is at most one).
fn outer_fields(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let first = line.windows(2).position(|w| w == b"::")?;
    let last = line.windows(2).rposition(|w| w == b"::")?;
    (last >= first + 2).then(|| (&line[..first], &line[first + 2..last], &line[last + 2..]))
}

fn separators(line: &[u8]) -> usize {
    let mut fields = [&[][..]; 1];
    text::split_fields(line, b"::", &mut fields)
}

/// The movies, and the line of each.
fn read_movies(
    loader: &mut Loader,
    encoding: Encoding,
) -> Result<(Vec<RawMovie>, HashMap<u32, u64>)> {
    let file = loader.file("movies.dat");
    let mut movies = Vec::new();
    let mut first_line: HashMap<u32, u64> = HashMap::new();
    let read = loader.read("movies.dat", |reader, check| {
        let example = "MovieID::Title::Genres";
        read_lines(reader, &file, example, check, |line, bytes, check| {
            let Some((movie_id, title, genre_text)) = outer_fields(bytes) else {
                let what = format!(
                    "expected 3 fields separated by ::, found {}",
                    separators(bytes)
                );
                return check.problem(&file, line, Reason::FieldCount, what);
            };
            let Some(movie_id) = id(&file, line, "MovieID", movie_id, check)? else {
                return Ok(());
            };
            if let Some(first) = first_line.get(&movie_id) {
                let what = format!("MovieID {movie_id} was listed at line {first}, which is kept");
                return check.problem(&file, line, Reason::DuplicateMovie, what);
            }
            first_line.insert(movie_id, line);
            let title = text_field(&file, line, title, encoding, check)?;
            let genre_text = text_field(&file, line, genre_text, encoding, check)?;
            movies.push(RawMovie {
                movie_id,
                title,
                genres: genres(&genre_text),
                merged_ids: Vec::new(),
            });
            Ok(())
        })
    })?;
    loader.summary("movies.dat", read, movies.len() as u64);
    Ok((movies, first_line))
}

fn read_tags(loader: &mut Loader, known: &KnownMovies, encoding: Encoding) -> Result<Vec<Tag>> {
    let file = loader.file("tags.dat");
    let mut tags = Vec::new();
    let read = loader.read("tags.dat", |reader, check| {
        read_lines(reader, &file, EXAMPLE, check, |line, bytes, check| {
            let split = outer_fields(bytes).and_then(|(user, middle, timestamp)| {
                let (movie, tag) = outer_fields_first(middle)?;
                Some((user, movie, tag, timestamp))
            });
            let Some((user, movie, tag, timestamp)) = split else {
                let what = format!(
                    "expected 4 fields separated by ::, found {}",
                    separators(bytes)
                );
                return check.problem(&file, line, Reason::FieldCount, what);
            };
            let Some(user_id) = id(&file, line, "UserID", user, check)? else {
                return Ok(());
            };
            let Some(movie_id) = id(&file, line, "MovieID", movie, check)? else {
                return Ok(());
            };
            let Some(timestamp) = text::parse_i64(timestamp) else {
                let what = format!(
                    "Timestamp: cannot read {} as a number",
                    text::show(timestamp)
                );
                return check.problem(&file, line, Reason::BadNumber, what);
            };
            if !known.contains(movie_id) {
                let what = format!("MovieID {movie_id} is not in movies.dat");
                return check.problem(&file, line, Reason::UnknownMovie, what);
            }
            let tag = text_field(&file, line, tag, encoding, check)?;
            tags.push(Tag {
                user_id,
                movie_id,
                tag,
                timestamp,
            });
            Ok(())
        })
    })?;
    loader.summary("tags.dat", read, tags.len() as u64);
    Ok(tags)
}

/// Splits at the first `::` only.
fn outer_fields_first(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let first = bytes.windows(2).position(|w| w == b"::")?;
    Some((&bytes[..first], &bytes[first + 2..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_may_hold_the_separator_but_the_id_and_genres_may_not() {
        assert_eq!(
            outer_fields(b"7::Face::Off (1997)::Action"),
            Some((&b"7"[..], &b"Face::Off (1997)"[..], &b"Action"[..]))
        );
        assert_eq!(
            outer_fields(b"7::::Drama"),
            Some((&b"7"[..], &b""[..], &b"Drama"[..]))
        );
        assert_eq!(outer_fields(b"7::Drama"), None);
        assert_eq!(outer_fields(b"7:::Drama"), None);
        assert_eq!(separators(b"1::2::3"), 3);
    }
}
