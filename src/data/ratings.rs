//! The ratings file of every layout (`ratings.csv`, `ratings.dat`, `u.data`): the fast path.
//!
//! Rows are parsed by [`chunked`](super::chunked) on all cores with hand-written number parsing
//! into the compact [`Rating`] table (16 bytes a row), checked against the release's star scale
//! and its movies. Duplicate (user, movie) pairs keep the latest rating, by timestamp and then by
//! line: a file sorted by user and movie (as the GroupLens CSV releases are) is recognised while
//! it is read and needs no more work; otherwise the table is sorted by index to find them, and
//! the file is read a second time for the lines of the first examples.

use super::chunked::{self, bad, Format, RowParser, Rows};
use super::loader::{KnownMovies, Loader};
use super::report::{Checker, Reason, Tally, EXAMPLES};
use super::text::{self, Stars};
use super::Rating;
use crate::{Error, Result};
use rayon::prelude::*;
use std::collections::HashMap;

/// The star scale of a release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scale {
    /// 0.5 to 5 in steps of 0.5 (ml-10m and later).
    HalfStars,
    /// 1 to 5 in whole stars (ml-100k, ml-1m).
    WholeStars,
}

/// How one layout writes its ratings.
pub(crate) struct RatingFormat {
    /// The file (`ratings.csv`).
    pub file: &'static str,
    /// The field separator.
    pub separator: &'static [u8],
    /// The header, for CSV.
    pub header: Option<&'static [&'static str]>,
    /// The fields' names, as the release's README calls them.
    pub names: [&'static str; 4],
    /// A line of the expected shape.
    pub example: &'static str,
    /// The star scale.
    pub scale: Scale,
}

struct Parser<'a> {
    format: &'a RatingFormat,
    movies: &'a KnownMovies,
    movies_file: &'a str,
}

/// A CSV field may be quoted (`"4.0"`); the other layouts never quote.
fn unquote(field: &[u8]) -> &[u8] {
    let field = text::trim(field);
    match field {
        [b'"', inner @ .., b'"'] => inner,
        _ => field,
    }
}

impl RowParser for Parser<'_> {
    type Row = Rating;

    #[inline(always)]
    fn parse_plain(&self, bytes: &[u8]) -> Option<(Rating, usize)> {
        let (rating, end) = self.plain(bytes)?;
        Some((rating, end + chunked::line_end(bytes, end)?))
    }

    fn parse(&self, line: &[u8], explain: bool) -> std::result::Result<Rating, (Reason, String)> {
        if let Some((rating, end)) = self.plain(line) {
            if end == line.len() {
                return Ok(rating);
            }
        }
        let names = &self.format.names;
        let mut f: [&[u8]; 4] = [&[]; 4];
        let found = text::split_fields(line, self.format.separator, &mut f);
        if found != 4 {
            return bad(Reason::FieldCount, explain, || {
                format!("expected 4 fields, found {found}")
            });
        }
        let id = |i: usize| {
            text::parse_u32(unquote(f[i])).ok_or_else(|| {
                let what = if explain {
                    format!("{}: cannot read {} as an id", names[i], text::show(f[i]))
                } else {
                    String::new()
                };
                (Reason::BadNumber, what)
            })
        };
        let user_id = id(0)?;
        let movie_id = id(1)?;
        let Some(stars) = text::parse_stars(unquote(f[2])) else {
            return bad(Reason::BadNumber, explain, || {
                format!("{}: cannot read {} as a number", names[2], text::show(f[2]))
            });
        };
        let Some(timestamp) = text::parse_u32(unquote(f[3])) else {
            return bad(Reason::BadNumber, explain, || {
                format!(
                    "{}: cannot read {} as seconds since 1970 (0 to 4294967295)",
                    names[3],
                    text::show(f[3])
                )
            });
        };
        let (low, high, step) = match self.format.scale {
            Scale::HalfStars => (1, 10, 1),
            Scale::WholeStars => (2, 10, 2),
        };
        let halves = match stars {
            Stars::Halves(h) if (low..=high).contains(&h) && h.is_multiple_of(step) => h,
            _ => {
                let value = stars.value();
                let written = String::from_utf8_lossy(text::trim(f[2]));
                let scale = match self.format.scale {
                    Scale::HalfStars => ("0.5–5", "a multiple of 0.5"),
                    Scale::WholeStars => ("1–5", "a whole number of stars"),
                };
                return if value < f64::from(low) / 2.0 || value > f64::from(high) / 2.0 {
                    bad(Reason::RatingRange, explain, || {
                        format!("rating {written} is outside {}", scale.0)
                    })
                } else {
                    bad(Reason::RatingStep, explain, || {
                        format!("rating {written} is not {}", scale.1)
                    })
                };
            }
        };
        if !self.movies.contains(movie_id) {
            return bad(Reason::UnknownMovie, explain, || {
                format!("{} {movie_id} is not in {}", names[1], self.movies_file)
            });
        }
        Ok(Rating {
            user_id,
            movie_id,
            rating: halves as f32 / 2.0,
            timestamp,
        })
    }
}

impl Parser<'_> {
    /// The common case in one pass over the bytes: `digits SEP digits SEP stars SEP digits` (stars
    /// as `4`, `4.0` or `4.5`) on the scale, of a known movie, and where it ends. Anything else
    /// (spaces, quotes, other spellings, every problem) is left to the general path, which gives
    /// the same rating for any line accepted here.
    #[inline(always)]
    fn plain(&self, line: &[u8]) -> Option<(Rating, usize)> {
        let sep = self.format.separator;
        let mut p = 0;
        let user_id = digits(line, &mut p)?;
        p = separator(line, p, sep)?;
        let movie_id = digits(line, &mut p)?;
        p = separator(line, p, sep)?;
        let whole = line.get(p)?.wrapping_sub(b'0');
        if whole > 9 {
            return None;
        }
        let mut halves = 2 * u32::from(whole);
        p += 1;
        if line.get(p) == Some(&b'.') {
            match line.get(p + 1) {
                Some(b'0') => {}
                Some(b'5') => halves += 1,
                _ => return None,
            }
            p += 2;
        }
        p = separator(line, p, sep)?;
        let timestamp = digits(line, &mut p)?;
        let (low, high, step) = match self.format.scale {
            Scale::HalfStars => (1, 10, 1),
            Scale::WholeStars => (2, 10, 2),
        };
        let good = (low..=high).contains(&halves)
            && halves.is_multiple_of(step)
            && self.movies.contains(movie_id);
        let rating = Rating {
            user_id,
            movie_id,
            rating: halves as f32 / 2.0,
            timestamp,
        };
        good.then_some((rating, p))
    }
}

/// Decimal digits at `*p` (at least one) as a `u32`, moving `*p` past them.
#[inline(always)]
fn digits(line: &[u8], p: &mut usize) -> Option<u32> {
    let start = *p;
    let mut value: u64 = 0;
    while let Some(&b) = line.get(*p) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        value = value * 10 + u64::from(d);
        *p += 1;
        if *p - start > 10 {
            return None;
        }
    }
    if *p == start {
        return None;
    }
    u32::try_from(value).ok()
}

/// The position after the separator `sep` at `p`, if it is there.
#[inline(always)]
fn separator(line: &[u8], p: usize, sep: &[u8]) -> Option<usize> {
    let matches = match sep {
        [a] => line.get(p) == Some(a),
        [a, b] => line.get(p) == Some(a) && line.get(p + 1) == Some(b),
        _ => line.get(p..p + sep.len()) == Some(sep),
    };
    matches.then_some(p + sep.len())
}

/// `(user, movie)` as one sortable number.
#[inline]
fn pair(r: &Rating) -> u64 {
    (u64::from(r.user_id) << 32) | u64::from(r.movie_id)
}

/// Reads the ratings file of `format`, keeping ratings of `movies` (listed in `movies_file`).
pub(crate) fn read(
    loader: &mut Loader,
    format: &RatingFormat,
    movies: &KnownMovies,
    movies_file: &str,
) -> Result<Vec<Rating>> {
    let file = loader.file(format.file);
    let parser = Parser {
        format,
        movies,
        movies_file,
    };
    let shape = Format {
        header: format.header,
        example: format.example,
    };
    let mut ratings: Vec<Rating> = Vec::new();
    // Untouched capacity costs address space, not memory; 16 bytes of file per row is less than
    // any real release has (ml-latest: 26.6).
    let estimate = (loader.source.size(format.file) / 16).min(1 << 32) as usize;
    let _ = ratings.try_reserve_exact(estimate);
    // Strictly ascending by (user, movie), as GroupLens writes ratings.csv: no duplicates possible.
    let mut sorted = true;
    // Users in ascending order (ratings of one user together), as in synth, ml-1m and ml-10m.
    let mut grouped = true;
    let mut last: Option<u64> = None;
    let read = loader.read(format.file, |reader, check| {
        chunked::parse_rows(
            reader,
            &file,
            &shape,
            &parser,
            check,
            false,
            &mut |rows: &Rows<Rating>, _| {
                if grouped {
                    for r in &rows.rows {
                        let key = pair(r);
                        if let Some(last) = last {
                            sorted &= last < key;
                            grouped &= last >> 32 <= key >> 32;
                        }
                        last = Some(key);
                    }
                }
                ratings.extend_from_slice(&rows.rows);
                Ok(())
            },
        )
    })?;
    if !sorted {
        let pairs = if grouped {
            duplicates_in_runs(&ratings)
        } else {
            duplicates(&ratings)
        };
        drop_duplicates(loader, &parser, &shape, &mut ratings, pairs)?;
    }
    ratings.shrink_to_fit();
    loader.summary(format.file, read, ratings.len() as u64);
    if ratings.is_empty() {
        return Err(Error::data(
            file.location,
            format!(
                "no ratings of movies in {movies_file} (the collaborative models need ratings)"
            ),
        ));
    }
    Ok(ratings)
}

/// Removes the `(dropped, kept)` duplicates found, counting them with the lines of the first.
fn drop_duplicates(
    loader: &mut Loader,
    parser: &Parser,
    shape: &Format,
    ratings: &mut Vec<Rating>,
    pairs: Vec<(u32, u32)>,
) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let file = loader.file(parser.format.file);
    // The lines of the first examples, from a second reading of the file.
    let mut wanted: Vec<u32> = pairs
        .iter()
        .take(EXAMPLES)
        .flat_map(|&(dropped, kept)| [dropped, kept])
        .collect();
    wanted.sort_unstable();
    let mut lines: HashMap<u32, u64> = HashMap::new();
    loader.reread(parser.format.file, |reader, check| {
        let mut row = 0usize;
        chunked::parse_rows(
            reader,
            &file,
            shape,
            parser,
            check,
            true,
            &mut |rows: &Rows<Rating>, _| {
                for (k, &line) in rows.lines.iter().enumerate() {
                    let index = (row + k) as u32;
                    if wanted.binary_search(&index).is_ok() {
                        lines.insert(index, line);
                    }
                }
                row += rows.rows.len();
                Ok(())
            },
        )
    })?;
    let mut tally = Tally::default();
    let names = parser.format.names;
    for &(dropped, kept) in &pairs {
        let line = lines.get(&dropped).copied().unwrap_or(0);
        tally.add(line, Reason::DuplicateRating, || {
            let r = ratings[dropped as usize];
            let kept_line = lines.get(&kept).copied().unwrap_or(0);
            format!(
                "{} {} also rated {} {} at line {kept_line}; that rating is kept (the latest by \
                 timestamp, then by line)",
                names[0], r.user_id, names[1], r.movie_id
            )
        });
    }
    Checker {
        report: &mut loader.report,
        strict: loader.strict,
    }
    .merge(&file, tally)?;
    let mut drop: Vec<u32> = pairs.iter().map(|p| p.0).collect();
    drop.sort_unstable();
    let (mut index, mut next) = (0u32, 0usize);
    ratings.retain(|_| {
        let keep = drop.get(next) != Some(&index);
        if !keep {
            next += 1;
        }
        index += 1;
        keep
    });
    Ok(())
}

/// `(dropped, kept)` row indices of every rating that a later one of the same user and movie
/// replaces (later by timestamp, then by position), ordered by the dropped row.
///
/// The rows are bucketed by user (a counting sort: one pass to count, one to place each row's
/// `(movie, row)`), then each user's bucket is sorted on its own, on all cores: 8 bytes a rating
/// besides the table, and cache-friendly where one sort of all rows by key is not.
fn duplicates(ratings: &[Rating]) -> Vec<(u32, u32)> {
    if u32::try_from(ratings.len()).is_err() {
        // More than 4 billion ratings: beyond any MovieLens release; left as they are.
        return Vec::new();
    }
    let max_user = ratings.iter().map(|r| r.user_id).max().unwrap_or(0) as usize;
    if max_user >= 1 << 24 {
        return duplicates_by_sorting(ratings);
    }
    let mut start = vec![0usize; max_user + 2];
    for r in ratings {
        start[r.user_id as usize + 1] += 1;
    }
    for u in 0..=max_user {
        start[u + 1] += start[u];
    }
    let mut next = start.clone();
    let mut slots = vec![0u64; ratings.len()];
    for (row, r) in ratings.iter().enumerate() {
        let slot = &mut next[r.user_id as usize];
        slots[*slot] = (u64::from(r.movie_id) << 32) | row as u64;
        *slot += 1;
    }
    let mut buckets: Vec<&mut [u64]> = Vec::with_capacity(max_user + 1);
    let mut rest: &mut [u64] = &mut slots;
    for u in 0..=max_user {
        let (bucket, tail) = std::mem::take(&mut rest).split_at_mut(start[u + 1] - start[u]);
        if bucket.len() > 1 {
            buckets.push(bucket);
        }
        rest = tail;
    }
    let mut pairs: Vec<(u32, u32)> = buckets
        .into_par_iter()
        .flat_map_iter(|bucket| duplicates_in_bucket(bucket, ratings))
        .collect();
    pairs.sort_unstable();
    pairs
}

/// [`duplicates`] when the ratings of each user are together (users ascending): each user's run
/// is checked on its own, on all cores, with no table besides a buffer per thread.
fn duplicates_in_runs(ratings: &[Rating]) -> Vec<(u32, u32)> {
    if u32::try_from(ratings.len()).is_err() {
        return Vec::new();
    }
    let mut starts: Vec<usize> = (0..ratings.len())
        .filter(|&i| i == 0 || ratings[i - 1].user_id != ratings[i].user_id)
        .collect();
    starts.push(ratings.len());
    let mut pairs: Vec<(u32, u32)> = starts
        .par_windows(2)
        .map_init(Vec::new, |bucket: &mut Vec<u64>, run| {
            if run[1] - run[0] < 2 {
                return Vec::new();
            }
            bucket.clear();
            bucket.extend(
                (run[0]..run[1]).map(|row| (u64::from(ratings[row].movie_id) << 32) | row as u64),
            );
            duplicates_in_bucket(bucket, ratings)
        })
        .flatten_iter()
        .collect();
    pairs.sort_unstable();
    pairs
}

/// The duplicates among one user's ratings, given as `movie << 32 | row` (sorted here).
fn duplicates_in_bucket(bucket: &mut [u64], ratings: &[Rating]) -> Vec<(u32, u32)> {
    bucket.sort_unstable();
    let mut found = Vec::new();
    for group in bucket.chunk_by(|a, b| a >> 32 == b >> 32) {
        if group.len() > 1 {
            // Rows ascend within the group: the latest by timestamp, then by row, is kept.
            let rows = group.iter().map(|&slot| slot as u32);
            let kept = rows
                .clone()
                .max_by_key(|&row| (ratings[row as usize].timestamp, row))
                .unwrap_or_default();
            found.extend(rows.filter(|&row| row != kept).map(|row| (row, kept)));
        }
    }
    found
}

/// [`duplicates`] for user ids too large to count by: one sort of all row indices by key.
fn duplicates_by_sorting(ratings: &[Rating]) -> Vec<(u32, u32)> {
    let mut order: Vec<u32> = (0..ratings.len() as u32).collect();
    order.par_sort_unstable_by_key(|&i| {
        let r = &ratings[i as usize];
        (pair(r), r.timestamp, i)
    });
    let mut pairs = Vec::new();
    for group in order.chunk_by(|&a, &b| pair(&ratings[a as usize]) == pair(&ratings[b as usize])) {
        if let [dropped @ .., kept] = group {
            pairs.extend(dropped.iter().map(|&d| (d, *kept)));
        }
    }
    pairs.sort_unstable();
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(user_id: u32, movie_id: u32, timestamp: u32) -> Rating {
        Rating {
            user_id,
            movie_id,
            rating: 3.0,
            timestamp,
        }
    }

    #[test]
    fn the_fast_path_accepts_only_what_the_general_path_reads_the_same_way() {
        let movies = KnownMovies::new(&[crate::data::RawMovie {
            movie_id: 7,
            title: String::new(),
            genres: Vec::new(),
            merged_ids: Vec::new(),
        }]);
        for format in [
            &crate::data::csv_release::RATINGS,
            &crate::data::dat_release::RATINGS_1M,
            &crate::data::ml100k::RATINGS,
        ] {
            let parser = Parser {
                format,
                movies: &movies,
                movies_file: "movies",
            };
            let sep = String::from_utf8_lossy(format.separator).into_owned();
            let mut accepted = 0;
            for rating in [
                "4", "4.0", "4.5", "0.5", "5.0", "5.5", "0", "4.50", " 4", "4.", "10",
            ] {
                for (user, movie, time) in [("1", "7", "9"), ("4294967295", "07", "4294967295")]
                    .into_iter()
                    .chain([("4294967296", "7", "1"), ("1", "8", "1"), ("1", "7", "")])
                {
                    let line = [user, movie, rating, time].join(&sep);
                    let general = {
                        // The general path alone: a line the fast path turns down.
                        let mut probe = line.clone().into_bytes();
                        probe.push(b' ');
                        parser.parse(&probe, true)
                    };
                    let fast = parser
                        .plain(line.as_bytes())
                        .filter(|&(_, end)| end == line.len())
                        .map(|(r, _)| r);
                    // Fused with the line end, as the block parser reads it.
                    for end in ["\n", "\r\n", "\r", ""] {
                        let with_end = format!("{line}{end}");
                        assert_eq!(
                            parser.parse_plain(with_end.as_bytes()),
                            fast.map(|r| (r, with_end.len())),
                            "{with_end:?}"
                        );
                    }
                    assert_eq!(
                        parser.parse_plain(format!("{line}\r7\n").as_bytes()),
                        None,
                        "a carriage return inside a line"
                    );
                    match fast {
                        Some(fast) => {
                            accepted += 1;
                            assert_eq!(Ok(fast), general, "{line:?}");
                        }
                        None => assert!(
                            general.is_err()
                                || matches!(rating, "4.50" | " 4" | "4.")
                                || movie == "07",
                            "{line:?}: the fast path refused a plain good line"
                        ),
                    }
                }
            }
            assert!(accepted >= 4, "{accepted}");
        }
    }

    #[test]
    fn the_latest_rating_by_timestamp_then_position_is_the_one_kept() {
        let ratings = [
            r(1, 1, 50), // 0: replaced by 3 (later timestamp)
            r(2, 1, 10), // 1
            r(1, 2, 10), // 2: replaced by 4 (same timestamp, later line)
            r(1, 1, 60), // 3
            r(1, 2, 10), // 4
            r(1, 1, 40), // 5: earlier than 3
        ];
        assert_eq!(duplicates(&ratings), vec![(0, 3), (2, 4), (5, 3)]);
        assert_eq!(duplicates_by_sorting(&ratings), duplicates(&ratings));
        let mut grouped = ratings.to_vec();
        grouped.sort_by_key(|r| r.user_id); // stable: rows of a user keep their order
        assert_eq!(duplicates_in_runs(&grouped), duplicates(&grouped));
        assert_eq!(duplicates_in_runs(&grouped).len(), 3);
        assert!(duplicates(&ratings[..3]).is_empty());
        // A user id too large to count by takes the sorting path.
        let mut large = ratings.to_vec();
        large.push(r(u32::MAX, 1, 1));
        large.push(r(u32::MAX, 1, 1));
        assert_eq!(duplicates(&large), vec![(0, 3), (2, 4), (5, 3), (6, 7)]);
    }
}
