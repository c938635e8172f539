//! The genre vocabulary: at most [`MAX_GENRES`] distinct genres are kept, the most common.
//!
//! MovieLens has 20 genres (ml-100k 19) and a site's own catalog a few dozen; a movies file
//! with thousands of distinct genres (one row listing 100,000 of them took training to 23 GB:
//! the content model's features are one column per genre, and its PCA squares their number) is
//! bounded here. Genres beyond the most common [`MAX_GENRES`] (ties go to the genre met first in
//! the file) are dropped
//! from their movies, which stay; each dropped (movie, genre) pair is counted in the load report
//! ([`Reason::RareGenre`]) with the first few as examples.

use super::loader::Parts;
use super::report::{FileRef, LoadReport, Reason};
use std::collections::{HashMap, HashSet};

/// The most distinct genres kept.
pub const MAX_GENRES: usize = 100;

/// Drops the genres beyond the [`MAX_GENRES`] most common from `parts`' movies, counting them.
pub(crate) fn cap_vocabulary(parts: &mut Parts, movies_file: &FileRef, report: &mut LoadReport) {
    // Each genre's (movies, first seen).
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for movie in &parts.movies {
        for genre in &movie.genres {
            let seen = counts.len();
            counts.entry(genre.as_str()).or_insert((0, seen)).0 += 1;
        }
    }
    if counts.len() <= MAX_GENRES {
        return;
    }
    let mut ranked: Vec<(&str, (usize, usize))> = counts.into_iter().collect();
    ranked.sort_unstable_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.1 .1.cmp(&b.1 .1)));
    let kept: HashSet<String> = ranked[..MAX_GENRES]
        .iter()
        .map(|(g, _)| g.to_string())
        .collect();
    let mut findings: Vec<(u64, u64, String)> = Vec::new();
    for movie in &mut parts.movies {
        let before = movie.genres.len();
        let first_dropped = movie
            .genres
            .iter()
            .find(|g| !kept.contains(g.as_str()))
            .cloned();
        movie.genres.retain(|g| kept.contains(g.as_str()));
        let dropped = before - movie.genres.len();
        if let Some(first) = first_dropped {
            let line = parts.movie_lines.get(&movie.movie_id).copied().unwrap_or(0);
            findings.push((
                line,
                dropped as u64,
                format!(
                    "movieId {}: {dropped} genre(s) not among the {MAX_GENRES} most common \
                     dropped, the first {}",
                    movie.movie_id,
                    super::text::show(first.as_bytes())
                ),
            ));
        }
    }
    findings.sort_by_key(|f| f.0);
    for (line, count, what) in findings {
        report.note(
            &movies_file.name,
            Reason::RareGenre,
            count,
            format!("{}: {what}", movies_file.at(line)),
        );
    }
}
