//! One film, one entry: MovieLens lists some films twice, under two ids with the same title and
//! year (ml-latest-small: *Saturn 3 (1980)*, 2851 and 168358; ml-100k: *Chasing Amy (1997)*, 246
//! and 268). Left alone, "movies like Chasing Amy" answers Chasing Amy, and the film's ratings
//! are split between two rows. [`merge_same_films`] makes them one movie as the release is
//! loaded, so that training, evaluation, the profile and serving all see one film:
//!
//! - **Same film.** Two listings are one film when their cleaned titles are equal ignoring case,
//!   spacing and a leading English article (`The`, `A`, `An`) and their years are equal. A title
//!   without a year is never merged, nor are equal titles of different years (remakes).
//! - **Unless the links say otherwise.** When both listings have a TMDb id in `links.csv` and the
//!   ids differ, they are two films that share a title and year (ml-latest-small: Spielberg's
//!   *War of the Worlds (2005)* and The Asylum's, TMDb 74 and 34812; the 1996 film and TV
//!   *Emma*): they stay apart and are counted as such. IMDb ids are not used: the duplicate
//!   listings of one film often carry a stale IMDb id (*Saturn 3*'s 2851 points to tt0081454,
//!   168358 to the film's tt0079285, TMDb agreeing).
//! - **Which id stays.** The id with the most ratings (a tie: the lower id) is the movie's id;
//!   the others are kept on it ([`RawMovie::merged_ids`](super::RawMovie::merged_ids)) so they
//!   still name it wherever a user gives a movie id.
//! - **What is folded in.** Ratings move to the kept id; a user who rated both keeps one rating,
//!   the latest by timestamp (then by line), as for a user who rated one id twice, and the other
//!   is counted as a duplicate rating. Tags move too (the same user's same tag once). The kept
//!   id's links stay and missing ones are filled from the others; genres are the union; a tag
//!   genome row moves to the kept id when it has none.
//!
//! Only the ratings of the movies concerned are touched: finding them is one parallel pass over
//! the ratings, and the table is compacted in place only when some user rated both listings.

use super::loader::{KnownMovies, Parts};
use super::report::{FileRef, LoadReport, Reason};
use super::title::clean_title;
use super::Link;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

/// What two listings of one film have in common: the cleaned title in lower case with single
/// spaces and no leading English article, and the year. `None` without a year.
pub(crate) fn film_key(raw_title: &str) -> Option<(String, u16)> {
    let clean = clean_title(raw_title);
    let year = clean.year?;
    let lower = clean.title.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let words = match words.as_slice() {
        [first, rest @ ..] if !rest.is_empty() && matches!(*first, "the" | "a" | "an") => rest,
        all => all,
    };
    Some((words.join(" "), year))
}

/// One film listed under several ids, decided.
struct Film {
    /// The id kept.
    canonical: u32,
    /// The ids folded into it, ascending.
    merged: Vec<u32>,
}

/// Merges the listings of one film (see the module docs), counting what was merged and kept
/// apart in `report`: movies in `movies_file`, ratings of both listings by one user in
/// `ratings_file`.
pub(crate) fn merge_same_films(
    parts: &mut Parts,
    movies_file: &FileRef,
    ratings_file: &FileRef,
    report: &mut LoadReport,
) {
    let mut by_key: HashMap<(String, u16), Vec<usize>> = HashMap::new();
    for (i, movie) in parts.movies.iter().enumerate() {
        if let Some(key) = film_key(&movie.title) {
            by_key.entry(key).or_default().push(i);
        }
    }
    let mut groups: Vec<Vec<usize>> = by_key.into_values().filter(|g| g.len() > 1).collect();
    if groups.is_empty() {
        return;
    }
    groups.sort_unstable();

    // The ratings of every movie concerned, found in one parallel pass.
    let listed = KnownMovies::of_ids(groups.iter().flatten().map(|&i| parts.movies[i].movie_id));
    let concerned: Vec<usize> = parts
        .ratings
        .par_iter()
        .enumerate()
        .filter(|(_, r)| listed.contains(r.movie_id))
        .map(|(i, _)| i)
        .collect();
    let mut rating_counts: HashMap<u32, u64> = HashMap::new();
    for &i in &concerned {
        *rating_counts.entry(parts.ratings[i].movie_id).or_default() += 1;
    }
    let ratings_of = |id: u32| rating_counts.get(&id).copied().unwrap_or(0);
    let tmdb_of = |id: u32| parts.links.get(&id).and_then(|l| l.tmdb_id);
    let line_of = |id: u32| parts.movie_lines.get(&id).copied().unwrap_or(0);

    // Decide each group: the films in it (usually one), each under its best-rated id.
    let mut films: Vec<Film> = Vec::new();
    // (line, reason, ids folded or kept apart, example), to report in file order.
    let mut findings: Vec<(u64, Reason, u64, String)> = Vec::new();
    for group in &groups {
        let mut ids: Vec<u32> = group.iter().map(|&i| parts.movies[i].movie_id).collect();
        ids.sort_unstable_by_key(|&id| (std::cmp::Reverse(ratings_of(id)), id));
        // Listings join the first film whose TMDb id does not contradict theirs.
        let mut apart: Vec<(Vec<u32>, Option<u32>)> = Vec::new();
        for id in ids {
            let tmdb = tmdb_of(id);
            let joins = apart
                .iter_mut()
                .find(|(_, film_tmdb)| film_tmdb.is_none() || tmdb.is_none() || *film_tmdb == tmdb);
            match joins {
                Some((members, film_tmdb)) => {
                    members.push(id);
                    *film_tmdb = film_tmdb.or(tmdb);
                }
                None => apart.push((vec![id], tmdb)),
            }
        }
        let first = &parts.movies[group[0]];
        let clean = clean_title(&first.title);
        let title = format!("{} ({})", clean.title, clean.year.unwrap_or_default());
        let last_line = group
            .iter()
            .map(|&i| line_of(parts.movies[i].movie_id))
            .max()
            .unwrap_or(0);
        if apart.len() > 1 {
            let ids: Vec<u32> = apart.iter().map(|(members, _)| members[0]).collect();
            let tmdbs: Vec<u32> = apart.iter().filter_map(|(_, tmdb)| *tmdb).collect();
            let what = format!(
                "\"{title}\" movieId {} kept apart: different films by their TMDb ids {}",
                and_list(&ids),
                and_list(&tmdbs)
            );
            findings.push((
                last_line,
                Reason::SameTitleKeptApart,
                ids.len() as u64 - 1,
                what,
            ));
        }
        for (members, _) in apart {
            if members.len() < 2 {
                continue;
            }
            let canonical = members[0];
            let mut merged = members[1..].to_vec();
            merged.sort_unstable();
            let mut all = members.clone();
            all.sort_unstable();
            let line = members.iter().map(|&id| line_of(id)).max().unwrap_or(0);
            let what = format!(
                "\"{title}\" movieId {} merged into {canonical}",
                and_list(&all)
            );
            findings.push((line, Reason::MergedMovie, merged.len() as u64, what));
            films.push(Film { canonical, merged });
        }
    }
    findings.sort_by_key(|f| f.0);
    for (line, reason, count, what) in findings {
        report.note(
            &movies_file.name,
            reason,
            count,
            format!("{}: {what}", movies_file.at(line)),
        );
    }
    if films.is_empty() {
        return;
    }
    let canonical_of: HashMap<u32, u32> = films
        .iter()
        .flat_map(|f| f.merged.iter().map(move |&id| (id, f.canonical)))
        .collect();

    fold_movies(parts, &films, &canonical_of);
    fold_links(&mut parts.links, &canonical_of);
    fold_ratings(parts, concerned, &canonical_of, ratings_file, report);
    fold_tags(parts, &films, &canonical_of);
    fold_genome(parts, &canonical_of);
}

/// `1`, `1 and 2`, `1, 2 and 3`.
fn and_list(ids: &[u32]) -> String {
    let text: Vec<String> = ids.iter().map(u32::to_string).collect();
    match text.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => text.join(""),
    }
}

/// The kept movie gets the merged ids and every genre; the merged listings go.
fn fold_movies(parts: &mut Parts, films: &[Film], canonical_of: &HashMap<u32, u32>) {
    let genres_of: HashMap<u32, Vec<String>> = parts
        .movies
        .iter()
        .filter(|m| canonical_of.contains_key(&m.movie_id))
        .map(|m| (m.movie_id, m.genres.clone()))
        .collect();
    let films: HashMap<u32, &Film> = films.iter().map(|f| (f.canonical, f)).collect();
    for movie in &mut parts.movies {
        let Some(film) = films.get(&movie.movie_id) else {
            continue;
        };
        for id in &film.merged {
            for genre in genres_of.get(id).into_iter().flatten() {
                if !movie.genres.contains(genre) {
                    movie.genres.push(genre.clone());
                }
            }
        }
        movie.merged_ids = film.merged.clone();
    }
    parts
        .movies
        .retain(|m| !canonical_of.contains_key(&m.movie_id));
}

/// The kept movie's links stay; a missing IMDb or TMDb id is taken from a merged listing.
fn fold_links(links: &mut HashMap<u32, Link>, canonical_of: &HashMap<u32, u32>) {
    let mut merged: Vec<(u32, u32)> = canonical_of.iter().map(|(&d, &c)| (d, c)).collect();
    merged.sort_unstable();
    for (duplicate, canonical) in merged {
        let Some(theirs) = links.remove(&duplicate) else {
            continue;
        };
        let ours = links.entry(canonical).or_default();
        ours.imdb_id = ours.imdb_id.or(theirs.imdb_id);
        ours.tmdb_id = ours.tmdb_id.or(theirs.tmdb_id);
    }
}

/// Ratings of merged listings move to the kept id; of a user's ratings of one film, the latest
/// (by timestamp, then by line) stays and the others are counted as duplicate ratings.
fn fold_ratings(
    parts: &mut Parts,
    concerned: Vec<usize>,
    canonical_of: &HashMap<u32, u32>,
    ratings_file: &FileRef,
    report: &mut LoadReport,
) {
    // (user, film, timestamp, index, id as listed) of every rating of a merged film.
    let mut entries: Vec<(u32, u32, u32, usize, u32)> = Vec::new();
    let films: HashSet<u32> = canonical_of.values().copied().collect();
    for i in concerned {
        let rating = &mut parts.ratings[i];
        let listed = rating.movie_id;
        if let Some(&canonical) = canonical_of.get(&listed) {
            rating.movie_id = canonical;
        }
        if films.contains(&rating.movie_id) {
            entries.push((rating.user_id, rating.movie_id, rating.timestamp, i, listed));
        }
    }
    entries.sort_unstable();
    let mut dropped: Vec<usize> = Vec::new();
    for pair in entries.windows(2) {
        let (earlier, later) = (pair[0], pair[1]);
        if (earlier.0, earlier.1) != (later.0, later.1) {
            continue;
        }
        dropped.push(earlier.3);
        let what = format!(
            "userId {} rated movieId {} and {}, one film: the latest kept",
            earlier.0,
            earlier.4.min(later.4),
            earlier.4.max(later.4)
        );
        report.note(
            &ratings_file.name,
            Reason::DuplicateRating,
            1,
            format!("{}: {what}", ratings_file.location),
        );
    }
    if dropped.is_empty() {
        return;
    }
    dropped.sort_unstable();
    let mut index = 0;
    let mut next = dropped.iter().peekable();
    parts.ratings.retain(|_| {
        let drop = next.peek() == Some(&&index);
        if drop {
            next.next();
        }
        index += 1;
        !drop
    });
    if let Some(summary) = report
        .files
        .iter_mut()
        .find(|s| s.file == ratings_file.name)
    {
        summary.kept = summary.kept.saturating_sub(dropped.len() as u64);
    }
}

/// Tags of merged listings move to the kept id; the same user's same tag of one film is kept
/// once.
fn fold_tags(parts: &mut Parts, films: &[Film], canonical_of: &HashMap<u32, u32>) {
    for tag in &mut parts.tags {
        if let Some(&canonical) = canonical_of.get(&tag.movie_id) {
            tag.movie_id = canonical;
        }
    }
    let films: HashSet<u32> = films.iter().map(|f| f.canonical).collect();
    let mut seen: HashSet<(u32, u32, String)> = HashSet::new();
    parts.tags.retain(|t| {
        !films.contains(&t.movie_id) || seen.insert((t.user_id, t.movie_id, t.tag.clone()))
    });
}

/// A merged listing's genome row moves to the kept id when that has none, and goes otherwise.
fn fold_genome(parts: &mut Parts, canonical_of: &HashMap<u32, u32>) {
    let Some(genome) = &mut parts.genome else {
        return;
    };
    if !genome
        .movie_ids
        .iter()
        .any(|id| canonical_of.contains_key(id))
    {
        return;
    }
    let has_row: HashSet<u32> = genome.movie_ids.iter().copied().collect();
    // (movie id after merging, row), for the rows that stay.
    let mut rows: Vec<(u32, usize)> = Vec::with_capacity(genome.movie_ids.len());
    let mut moved: HashSet<u32> = HashSet::new();
    for (row, &id) in genome.movie_ids.iter().enumerate() {
        match canonical_of.get(&id) {
            None => rows.push((id, row)),
            Some(&canonical) if !has_row.contains(&canonical) && moved.insert(canonical) => {
                rows.push((canonical, row))
            }
            Some(_) => {}
        }
    }
    rows.sort_unstable();
    let n = genome.tags.len();
    let mut relevance = Vec::with_capacity(rows.len() * n);
    for &(_, row) in &rows {
        relevance.extend_from_slice(&genome.relevance[row * n..(row + 1) * n]);
    }
    genome.movie_ids = rows.iter().map(|&(id, _)| id).collect();
    genome.relevance = relevance;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_film_has_one_key_whatever_the_case_spacing_or_article() {
        let key = |t: &str| film_key(t);
        assert_eq!(key("Emma (1996)"), Some(("emma".into(), 1996)));
        assert_eq!(key("Matrix, The (1999)"), key("The  matrix (1999)"));
        assert_eq!(key("Matrix, The (1999)"), key("Matrix (1999)"));
        assert_ne!(key("Hamlet (1990)"), key("Hamlet (1996)"));
        assert_eq!(key("Hamlet"), None, "no year, never merged");
        // An article alone is a title, not an article.
        assert_eq!(key("A (2015)"), Some(("a".into(), 2015)));
    }

    #[test]
    fn ids_are_listed_in_words() {
        assert_eq!(and_list(&[7]), "7");
        assert_eq!(and_list(&[7, 9]), "7 and 9");
        assert_eq!(and_list(&[1, 7, 9]), "1, 7 and 9");
    }
}
