//! The ml-100k layout: `u.data` (tab-separated `user id | item id | rating | timestamp`, whole
//! stars 1–5), `u.item` (pipe-separated `movie id | movie title | release date | video release
//! date | IMDb URL | ` and one 0/1 flag per genre) and `u.genre` (`name|index`, naming the flags).
//! Text is Latin-1. None has a header.
//!
//! A title without a year takes the year of its release date (`01-Jan-1995`), so the catalog
//! gets one. The `unknown` genre is no genre. `u.item` has IMDb search URLs, not ids: the release
//! has no links, and its movies link to MovieLens only.

use super::loader::{id, read_lines, text_field, KnownMovies, Loader, Parts};
use super::ratings::{self, RatingFormat, Scale};
use super::report::Reason;
use super::text::{self, Encoding};
use super::title::clean_title;
use super::RawMovie;
use crate::Result;
use std::collections::HashMap;

/// `u.data`.
pub(crate) const RATINGS: RatingFormat = RatingFormat {
    file: "u.data",
    separator: b"\t",
    header: None,
    names: ["user id", "item id", "rating", "timestamp"],
    example: "user id\titem id\trating\ttimestamp",
    scale: Scale::WholeStars,
};

/// Fields of `u.item` before the genre flags.
const ITEM_FIELDS: usize = 5;

/// Reads an ml-100k release.
pub(crate) fn load(loader: &mut Loader) -> Result<Parts> {
    let genre_names = read_genres(loader)?;
    let (movies, movie_lines) = read_items(loader, &genre_names)?;
    let known = KnownMovies::new(&movies);
    let ratings = ratings::read(loader, &RATINGS, &known, "u.item")?;
    Ok(Parts {
        movies,
        movie_lines,
        ratings,
        ..Parts::default()
    })
}

/// The genre names of `u.genre`, in flag order.
fn read_genres(loader: &mut Loader) -> Result<Vec<String>> {
    let file = loader.file("u.genre");
    let mut names: Vec<String> = Vec::new();
    let read = loader.read("u.genre", |reader, check| {
        read_lines(reader, &file, "Action|1", check, |line, bytes, check| {
            let Some(bar) = bytes.iter().rposition(|&b| b == b'|') else {
                let what = format!("expected name|index, found {}", text::show(bytes));
                return check.problem(&file, line, Reason::BadGenre, what);
            };
            let index = text::parse_u32(&bytes[bar + 1..]);
            if index != Some(names.len() as u32) {
                let what = format!(
                    "index {} should be {} (the genres are numbered in order from 0)",
                    text::show(&bytes[bar + 1..]),
                    names.len()
                );
                return check.problem(&file, line, Reason::BadGenre, what);
            }
            names.push(text_field(
                &file,
                line,
                &bytes[..bar],
                Encoding::Latin1,
                check,
            )?);
            Ok(())
        })
    })?;
    loader.summary("u.genre", read, names.len() as u64);
    Ok(names)
}

/// The year of a release date written `01-Jan-1995`.
fn release_year(date: &[u8]) -> Option<u16> {
    let date = text::trim(date);
    let year = &date[date.iter().rposition(|&b| b == b'-')? + 1..];
    let year = text::parse_u32(year).filter(|_| year.len() == 4)?;
    u16::try_from(year).ok()
}

/// The movies, and the line of each.
fn read_items(
    loader: &mut Loader,
    genre_names: &[String],
) -> Result<(Vec<RawMovie>, HashMap<u32, u64>)> {
    let file = loader.file("u.item");
    let mut movies = Vec::new();
    let mut first_line: HashMap<u32, u64> = HashMap::new();
    let expected = ITEM_FIELDS + genre_names.len();
    let read = loader.read("u.item", |reader, check| {
        let example = "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/...|0|0|1|...";
        read_lines(reader, &file, example, check, |line, bytes, check| {
            let fields: Vec<&[u8]> = bytes.split(|&b| b == b'|').collect();
            if fields.len() != expected {
                let what = format!(
                    "expected {expected} fields ({ITEM_FIELDS} and {} genre flags), found {}",
                    genre_names.len(),
                    fields.len()
                );
                return check.problem(&file, line, Reason::FieldCount, what);
            }
            let Some(movie_id) = id(&file, line, "movie id", fields[0], check)? else {
                return Ok(());
            };
            let mut genres = Vec::new();
            for (flag, name) in fields[ITEM_FIELDS..].iter().zip(genre_names) {
                match text::trim(flag) {
                    b"0" => {}
                    b"1" if name != "unknown" => genres.push(name.clone()),
                    b"1" => {}
                    other => {
                        let what = format!(
                            "genre flag {name}: {} is neither 0 nor 1",
                            text::show(other)
                        );
                        return check.problem(&file, line, Reason::BadGenre, what);
                    }
                }
            }
            if let Some(first) = first_line.get(&movie_id) {
                let what = format!("movie id {movie_id} was listed at line {first}, which is kept");
                return check.problem(&file, line, Reason::DuplicateMovie, what);
            }
            first_line.insert(movie_id, line);
            let mut title = text_field(&file, line, fields[1], Encoding::Latin1, check)?;
            if clean_title(&title).year.is_none() {
                if let Some(year) = release_year(fields[2]) {
                    title = format!("{title} ({year})");
                }
            }
            movies.push(RawMovie {
                movie_id,
                title,
                genres,
                merged_ids: Vec::new(),
            });
            Ok(())
        })
    })?;
    loader.summary("u.item", read, movies.len() as u64);
    Ok((movies, first_line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_year_is_the_last_four_digits_of_the_date() {
        assert_eq!(release_year(b"01-Jan-1995"), Some(1995));
        assert_eq!(release_year(b" 16-Oct-1998 "), Some(1998));
        for bad in [&b""[..], b"1995", b"01-Jan-95", b"01-Jan-", b"x-y-abcd"] {
            assert_eq!(release_year(bad), None);
        }
    }
}
