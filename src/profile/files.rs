//! The profiles of the small files (movies, links, tags, genome) and the views built from them:
//! tags, user activity, decades and years.

use super::*;

pub(super) fn movies_file(dataset: &Dataset, movies: &MovieTable) -> FileProfile {
    let mut genre_counts = vec![0u64; movies.genres.len()];
    for mask in &movies.masks {
        for (g, count) in genre_counts.iter_mut().enumerate().take(64) {
            *count += (mask >> g) & 1;
        }
    }
    let with_genres = dataset
        .movies
        .iter()
        .filter(|m| !m.genres.is_empty())
        .count() as u64;
    let genres = ColumnProfile {
        name: "genres".into(),
        kind: ColumnKind::List,
        count: with_genres,
        missing: dataset.movies.len() as u64 - with_genres,
        distinct: movies.genres.len() as u64,
        min: None,
        max: None,
        mean: Some(share(genre_counts.iter().sum(), with_genres)).filter(|_| with_genres > 0),
        top: top_by_count(
            movies
                .genres
                .iter()
                .cloned()
                .zip(genre_counts.iter().copied()),
            TOP_VALUES,
        ),
    };
    FileProfile {
        file: "movies.csv".into(),
        rows: dataset.movies.len() as u64,
        columns: vec![
            integer_column("movieId", movies.ids.iter().map(|&id| Some(i64::from(id)))),
            text_column(
                "title",
                dataset.movies.iter().map(|m| Some(m.title.as_str())),
            ),
            genres,
            integer_column(
                "year (from title)",
                movies.years.iter().map(|y| y.map(i64::from)),
            ),
        ],
    }
}

pub(super) fn links_file(dataset: &Dataset) -> FileProfile {
    let mut links: Vec<(u32, crate::data::Link)> =
        dataset.links.iter().map(|(&id, &l)| (id, l)).collect();
    links.sort_unstable_by_key(|l| l.0);
    FileProfile {
        file: "links.csv".into(),
        rows: links.len() as u64,
        columns: vec![
            integer_column("movieId", links.iter().map(|l| Some(i64::from(l.0)))),
            integer_column("imdbId", links.iter().map(|l| l.1.imdb_id.map(i64::from))),
            integer_column("tmdbId", links.iter().map(|l| l.1.tmdb_id.map(i64::from))),
        ],
    }
}

pub(super) fn tags_file(dataset: &Dataset) -> FileProfile {
    let tags = &dataset.tags;
    FileProfile {
        file: "tags.csv".into(),
        rows: tags.len() as u64,
        columns: vec![
            integer_column("userId", tags.iter().map(|t| Some(i64::from(t.user_id)))),
            integer_column("movieId", tags.iter().map(|t| Some(i64::from(t.movie_id)))),
            text_column("tag", tags.iter().map(|t| Some(t.tag.as_str()))),
            {
                let times = sorted_timestamps(tags.iter().map(|t| t.timestamp), tags.len());
                sorted_column("timestamp", ColumnKind::Timestamp, &times, 0)
            },
        ],
    }
}

pub(super) fn genome_file(genome: &crate::data::TagGenome) -> FileProfile {
    let rows = genome.relevance.len() as u64;
    let per_movie = genome.tags.len() as u64;
    let mut movie_column = integer_column(
        "movieId",
        genome.movie_ids.iter().map(|&id| Some(i64::from(id))),
    );
    // Each movie has one row per genome tag.
    movie_column.count = rows;
    movie_column.top = Vec::new();
    let mut tag_column = integer_column("tagId", (1..=per_movie).map(|t| Some(t as i64)));
    tag_column.count = rows;
    FileProfile {
        file: "genome-scores.csv".into(),
        rows,
        columns: vec![
            movie_column,
            tag_column,
            decimal_column("relevance", &genome.relevance),
        ],
    }
}

pub(super) fn tags_view(dataset: &Dataset) -> TagsView {
    let mut counts: HashMap<std::borrow::Cow<str>, u64> = HashMap::new();
    for t in &dataset.tags {
        let tag = t.tag.trim();
        // Most tags are lower case already: only the others are copied.
        let key = if tag.chars().any(char::is_uppercase) {
            std::borrow::Cow::Owned(tag.to_lowercase())
        } else {
            std::borrow::Cow::Borrowed(tag)
        };
        if !key.is_empty() {
            *counts.entry(key).or_default() += 1;
        }
    }
    let mut users: Vec<u32> = dataset.tags.iter().map(|t| t.user_id).collect();
    users.sort_unstable();
    users.dedup();
    let mut movies: Vec<u32> = dataset.tags.iter().map(|t| t.movie_id).collect();
    movies.sort_unstable();
    movies.dedup();
    TagsView {
        count: dataset.tags.len() as u64,
        distinct: counts.len() as u64,
        users: users.len() as u64,
        movies: movies.len() as u64,
        top: top_by_count(counts.into_iter(), TOP_TAGS)
            .into_iter()
            .map(|(tag, n)| (tag.into_owned(), n))
            .collect(),
    }
}

/// Quantiles, shares and the log-binned histogram of per-entity rating counts.
pub(super) fn activity(mut counts: Vec<u64>, without_ratings: u64) -> ActivityView {
    counts.par_sort_unstable();
    let n = counts.len();
    let total: u64 = counts.iter().sum();
    let quantile = |q: f64| -> u64 {
        if n == 0 {
            0
        } else {
            counts[((q * n as f64).ceil() as usize).clamp(1, n) - 1]
        }
    };
    let top_share = |fraction: f64| {
        let k = ((n as f64 * fraction).ceil() as usize).min(n);
        share(counts[n - k..].iter().sum(), total)
    };
    let mut bins: Vec<(u64, u64, u64)> = Vec::new();
    if without_ratings > 0 {
        bins.push((0, 0, 0));
    }
    let max = counts.last().copied().unwrap_or(0);
    let mut lo = 1u64;
    while lo <= max {
        bins.push((lo, lo * 2 - 1, 0));
        lo *= 2;
    }
    for &c in &counts {
        let bin = if c == 0 {
            0
        } else {
            usize::from(without_ratings > 0) + c.ilog2() as usize
        };
        bins[bin].2 += 1;
    }
    ActivityView {
        entities: n as u64,
        without_ratings,
        mean: share(total, n as u64),
        quantiles: QUANTILES.iter().map(|&q| (q, quantile(q))).collect(),
        min: counts.first().copied().unwrap_or(0),
        top_1_percent_share: top_share(0.01),
        top_10_percent_share: top_share(0.10),
        bins,
    }
}

pub(super) fn decades(movies: &MovieTable) -> Vec<DecadeRow> {
    let mut by_decade: std::collections::BTreeMap<u16, u64> = Default::default();
    let mut without = 0u64;
    for year in &movies.years {
        match year {
            Some(y) => *by_decade.entry(y / 10 * 10).or_default() += 1,
            None => without += 1,
        }
    }
    let mut rows: Vec<DecadeRow> = by_decade
        .into_iter()
        .map(|(decade, movies)| DecadeRow {
            decade: Some(decade),
            movies,
        })
        .collect();
    if without > 0 {
        rows.push(DecadeRow {
            decade: None,
            movies: without,
        });
    }
    rows
}

/// Calendar years covered by [`RatingsPass`]'s per-year counts.
pub(super) const FIRST_YEAR: i32 = 1900;
pub(super) const LAST_YEAR: i32 = 2100;

/// Start of each year from [`FIRST_YEAR`] to [`LAST_YEAR`] + 1, seconds since the epoch (UTC).
pub(super) fn year_starts() -> Vec<i64> {
    (FIRST_YEAR..=LAST_YEAR + 1)
        .map(|y| {
            time::Date::from_calendar_date(y, time::Month::January, 1)
                .map(|d| d.midnight().assume_utc().unix_timestamp())
                .unwrap_or(i64::MAX)
        })
        .collect()
}

/// Year index (0 = [`FIRST_YEAR`]) of a timestamp, if within the covered years: a guess from
/// the mean year length, corrected by at most a step or two.
pub(super) fn year_index(starts: &[i64], t: i64) -> Option<usize> {
    const MEAN_YEAR: i64 = 31_556_952;
    let last = starts.len().checked_sub(2)?;
    if t < starts[0] || t >= starts[last + 1] {
        return None;
    }
    let mut i = ((t - starts[0]) / MEAN_YEAR).clamp(0, last as i64) as usize;
    while starts[i] > t {
        i -= 1;
    }
    while starts[i + 1] <= t {
        i += 1;
    }
    Some(i)
}
