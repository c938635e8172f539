//! The tag genome of the CSV releases (ml-latest, ml-20m/25m/32m): `genome-tags.csv`
//! (`tagId,tag`) names the tags and `genome-scores.csv` (`movieId,tagId,relevance`, 18M rows in
//! ml-latest) gives each genome movie a relevance in 0–1 for every tag.
//!
//! One file without the other is an error. Rows with an unknown movie or tag, a relevance outside
//! 0–1 or a repeated (movie, tag) are counted (the latest score is kept); a movie left without a
//! score for every tag has its genome left out, and is counted.

use super::chunked::{self, bad, Format, RowParser, Rows};
use super::loader::{read_csv, text_field, KnownMovies, Loader};
use super::report::{Checker, Reason};
use super::text::{self, Encoding};
use super::TagGenome;
use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap};

const TAGS: &str = "genome-tags.csv";
const SCORES: &str = "genome-scores.csv";

struct ScoreParser<'a> {
    movies: &'a KnownMovies,
    tag_ids: &'a [u32],
}

impl RowParser for ScoreParser<'_> {
    /// `(movieId, column of the tag, relevance)`.
    type Row = (u32, u32, f32);

    fn parse(
        &self,
        line: &[u8],
        explain: bool,
    ) -> std::result::Result<Self::Row, (Reason, String)> {
        let mut f: [&[u8]; 3] = [&[]; 3];
        let found = text::split_fields(line, b",", &mut f);
        if found != 3 {
            return bad(Reason::FieldCount, explain, || {
                format!("expected 3 fields, found {found}")
            });
        }
        let number = |i: usize, name: &str| {
            bad(Reason::BadNumber, explain, || {
                format!("{name}: cannot read {} as a number", text::show(f[i]))
            })
        };
        let Some(movie_id) = text::parse_u32(f[0]) else {
            return number(0, "movieId");
        };
        let Some(tag_id) = text::parse_u32(f[1]) else {
            return number(1, "tagId");
        };
        let Some(relevance) = text::parse_f32(f[2]) else {
            return number(2, "relevance");
        };
        if !self.movies.contains(movie_id) {
            return bad(Reason::UnknownMovie, explain, || {
                format!("movieId {movie_id} is not in movies.csv")
            });
        }
        let Ok(column) = self.tag_ids.binary_search(&tag_id) else {
            return bad(Reason::UnknownGenomeTag, explain, || {
                format!("tagId {tag_id} is not in {TAGS}")
            });
        };
        if !(0.0..=1.0).contains(&relevance) {
            return bad(Reason::RelevanceRange, explain, || {
                format!("relevance {relevance} is outside 0–1")
            });
        }
        Ok((movie_id, column as u32, relevance))
    }
}

/// Reads the tag genome when the release has one.
pub(crate) fn read(loader: &mut Loader, movies: &KnownMovies) -> Result<Option<TagGenome>> {
    match (loader.source.has(TAGS), loader.source.has(SCORES)) {
        (false, false) => return Ok(None),
        (true, false) => {
            return Err(Error::data(
                loader.source.location(SCORES),
                format!("is missing, but {TAGS} is present (the tag genome needs both)"),
            ))
        }
        (false, true) => {
            return Err(Error::data(
                loader.source.location(TAGS),
                format!("is missing, but {SCORES} is present (the tag genome needs both)"),
            ))
        }
        (true, true) => {}
    }

    let file = loader.file(TAGS);
    let mut tags: Vec<(u32, String)> = Vec::new();
    let mut first_line: BTreeMap<u32, u64> = BTreeMap::new();
    let read = loader.read(TAGS, |reader, check| {
        read_csv(reader, &file, &["tagId", "tag"], check, |line, r, check| {
            let Some(id) = text::parse_u32(r.field(0)) else {
                let what = format!("tagId: cannot read {} as an id", text::show(r.field(0)));
                return check.problem(&file, line, Reason::BadNumber, what);
            };
            if let Some(first) = first_line.get(&id) {
                let what = format!("tagId {id} was listed at line {first}, which is kept");
                return check.problem(&file, line, Reason::DuplicateGenome, what);
            }
            first_line.insert(id, line);
            let name = text_field(&file, line, r.field(1), Encoding::Utf8, check)?;
            tags.push((id, name));
            Ok(())
        })
    })?;
    loader.summary(TAGS, read, tags.len() as u64);
    tags.sort_by_key(|t| t.0);
    let tag_ids: Vec<u32> = tags.iter().map(|t| t.0).collect();
    let n = tags.len();

    let file = loader.file(SCORES);
    let parser = ScoreParser {
        movies,
        tag_ids: &tag_ids,
    };
    let shape = Format {
        header: Some(&["movieId", "tagId", "relevance"]),
        example: "",
    };
    // Movie → (relevance row, tags filled); the file is grouped by movie, so the last row used is
    // remembered rather than looked up 1,128 times in a row.
    let mut rows: Vec<(u32, Vec<f32>, usize)> = Vec::new();
    let mut row_of: HashMap<u32, usize> = HashMap::new();
    let mut last: Option<(u32, usize)> = None;
    let mut kept = 0u64;
    let read = loader.read(SCORES, |reader, check| {
        chunked::parse_rows(
            reader,
            &file,
            &shape,
            &parser,
            check,
            true,
            &mut |piece: &Rows<(u32, u32, f32)>, check: &mut Checker| {
                for (&(movie_id, column, relevance), &line) in piece.rows.iter().zip(&piece.lines)
                {
                    let at = match last {
                        Some((movie, at)) if movie == movie_id => at,
                        _ => *row_of.entry(movie_id).or_insert_with(|| {
                            rows.push((movie_id, vec![f32::NAN; n], 0));
                            rows.len() - 1
                        }),
                    };
                    last = Some((movie_id, at));
                    let (_, row, filled) = &mut rows[at];
                    let cell = &mut row[column as usize];
                    if cell.is_nan() {
                        *filled += 1;
                        kept += 1;
                    } else {
                        let what = format!(
                            "movieId {movie_id} has a second score for tagId {}; the latest is kept",
                            tag_ids[column as usize]
                        );
                        check.problem(&file, line, Reason::DuplicateGenome, what)?;
                    }
                    *cell = relevance;
                }
                Ok(())
            },
        )
    })?;
    loader.summary(SCORES, read, kept);

    let mut check = Checker {
        report: &mut loader.report,
        strict: loader.strict,
    };
    rows.sort_unstable_by_key(|r| r.0);
    let mut movie_ids = Vec::with_capacity(rows.len());
    let mut relevance = Vec::with_capacity(rows.len() * n);
    for (movie_id, row, filled) in rows {
        if filled != n {
            check.problem_in_file(
                &file,
                Reason::IncompleteGenome,
                format!(
                    "movieId {movie_id} has scores for {filled} of the {n} genome tags; its genome \
                     is left out"
                ),
            )?;
            continue;
        }
        movie_ids.push(movie_id);
        relevance.extend(row);
    }
    Ok(Some(TagGenome {
        tags: tags.into_iter().map(|t| t.1).collect(),
        movie_ids,
        relevance,
    }))
}
