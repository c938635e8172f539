//! The movie catalog: cleaned movies with their links and rating statistics, in one fixed order
//! (the internal movie index used by every table), and title lookup.

pub mod filter;
mod search;

use crate::data::title::{clean_title, decade_label};
use crate::data::Dataset;
use crate::{Error, Result};
pub use filter::{CompiledFilter, MovieFilter};
pub use search::MatchKind;
use search::{TitleEntry, TitleSearch};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A cleaned movie.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Movie {
    /// MovieLens id.
    pub movie_id: u32,
    /// Clean title: year removed, trailing article moved to the front (`The Matrix`). Shared
    /// (`Arc`) with every answer that shows the movie, so answering copies no text.
    pub title: Arc<str>,
    /// Alternative titles (`a.k.a.` and original-language titles).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Release year, when the title has one.
    pub year: Option<u16>,
    /// Genres (empty for `(no genres listed)`); each genre's text is shared by all movies.
    pub genres: Arc<[Arc<str>]>,
    /// IMDb numeric id.
    pub imdb_id: Option<u32>,
    /// TMDb id.
    pub tmdb_id: Option<u32>,
    /// Number of ratings in the training data.
    pub rating_count: u32,
    /// Mean rating (0 when unrated).
    pub rating_mean: f32,
    /// Other MovieLens ids the release listed this same film under (same title and year),
    /// merged into this movie when loading: they name it too ([`Catalog::item_of`]). Absent
    /// from `catalog.json` when empty, and read as empty from catalogs written before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_ids: Vec<u32>,
}

impl Movie {
    /// `1990s` for a 1995 film; `None` without a year.
    pub fn decade(&self) -> Option<String> {
        self.year.map(decade_label)
    }

    /// `https://www.imdb.com/title/tt0114709/` (id zero-padded to at least 7 digits).
    pub fn imdb_url(&self) -> Option<String> {
        self.imdb_id
            .map(|id| format!("https://www.imdb.com/title/tt{id:07}/"))
    }

    /// `https://www.themoviedb.org/movie/862`, absent when the link is missing.
    pub fn tmdb_url(&self) -> Option<String> {
        self.tmdb_id
            .map(|id| format!("https://www.themoviedb.org/movie/{id}"))
    }

    /// `https://movielens.org/movies/1`.
    pub fn movielens_url(&self) -> String {
        format!("https://movielens.org/movies/{}", self.movie_id)
    }

    /// `Toy Story (1995)`, or the bare title without a year.
    pub fn display_title(&self) -> String {
        match self.year {
            Some(year) => format!("{} ({year})", self.title),
            None => self.title.to_string(),
        }
    }

    /// The public JSON view of this movie (the one shape used by the CLI and the API).
    pub fn view(&self) -> MovieView {
        MovieView {
            movie_id: self.movie_id,
            title: self.title.clone(),
            year: self.year,
            genres: self.genres.clone(),
            imdb_url: self.imdb_url(),
            tmdb_url: self.tmdb_url(),
            movielens_url: self.movielens_url(),
            rating_count: self.rating_count,
            rating_mean: (self.rating_mean * 100.0).round() / 100.0,
        }
    }
}

/// The JSON shape of a movie in every answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MovieView {
    /// MovieLens id.
    pub movie_id: u32,
    /// Clean title.
    #[schema(value_type = String)]
    pub title: Arc<str>,
    /// Release year.
    pub year: Option<u16>,
    /// Genres.
    #[schema(value_type = Vec<String>)]
    pub genres: Arc<[Arc<str>]>,
    /// IMDb page.
    pub imdb_url: Option<String>,
    /// TMDb page.
    pub tmdb_url: Option<String>,
    /// MovieLens page.
    pub movielens_url: String,
    /// Number of ratings.
    pub rating_count: u32,
    /// Mean rating, two decimals.
    pub rating_mean: f32,
}

/// How a user names a movie.
#[derive(Clone, Debug, PartialEq)]
pub enum MovieQuery {
    /// A MovieLens id.
    Id(u32),
    /// A title, matched fuzzily.
    Title(String),
}

/// The movie a query resolved to, how, and the other movies that matched it as well.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// Internal index of the chosen movie.
    pub item: u32,
    /// How the title matched (always [`MatchKind::Exact`] for an id). A loose match is a
    /// guess to be shown as one, with the alternatives.
    pub kind: MatchKind,
    /// Other movies that matched equally well (e.g. other films called *Hamlet*), best-known
    /// first; for a loose match, also the next best guesses.
    pub alternatives: Vec<u32>,
}

/// Matches whose quality is within this of the best count as "also matching".
const ALTERNATIVE_QUALITY_GAP: f32 = 0.02;
/// Alternatives named at most for a loose match (any match at all may be the one meant).
const LOOSE_ALTERNATIVES: usize = 4;

/// Words of an unmatched title that suggestions are searched for.
const SUGGESTION_WORDS: usize = 8;

/// The longest movie title a query may be (characters): a query longer than any title costs
/// search work without any chance of a better match.
pub const MAX_TITLE_CHARS: usize = 300;

/// All movies in internal-index order, with lookup by id and by title.
pub struct Catalog {
    movies: Vec<Movie>,
    by_id: HashMap<u32, u32>,
    titles: TitleSearch,
    /// Every genre, in order of first appearance; a genre's bit in [`Catalog::genre_mask`] is
    /// its position (the first 64 genres; MovieLens releases have at most 20).
    genres: Vec<Arc<str>>,
    genre_masks: Vec<u64>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("movies", &self.movies.len())
            .finish()
    }
}

impl Catalog {
    /// Cleans every movie of `dataset` (sorted by MovieLens id) and attaches links and rating
    /// statistics. No movie is dropped for lacking a year, genres or links.
    pub fn from_dataset(dataset: &Dataset) -> Catalog {
        let mut raw: Vec<_> = dataset.movies.iter().collect();
        raw.sort_by_key(|m| m.movie_id);
        let ids: Vec<u32> = raw.iter().map(|m| m.movie_id).collect();
        let stats = RatingStats::count(&ids, &dataset.ratings);
        let movies = raw
            .into_iter()
            .map(|m| {
                let clean = clean_title(&m.title);
                let link = dataset.links.get(&m.movie_id).copied().unwrap_or_default();
                let (count, sum) = stats.of(m.movie_id);
                Movie {
                    movie_id: m.movie_id,
                    title: clean.title.into(),
                    aliases: clean.aliases,
                    year: clean.year,
                    genres: m.genres.iter().map(|g| Arc::from(g.as_str())).collect(),
                    imdb_id: link.imdb_id,
                    tmdb_id: link.tmdb_id,
                    rating_count: count,
                    rating_mean: if count > 0 {
                        (sum / f64::from(count)) as f32
                    } else {
                        0.0
                    },
                    merged_ids: m.merged_ids.clone(),
                }
            })
            .collect();
        Catalog::from_movies(movies)
    }

    /// Builds a catalog from movies already in internal-index order (as stored in a model
    /// directory). Fails if a movie id appears twice.
    pub fn from_movies(mut movies: Vec<Movie>) -> Catalog {
        // One shared text per genre (the catalog file spells each out per movie).
        let mut interned: HashSet<Arc<str>> = HashSet::new();
        for movie in &mut movies {
            movie.genres = movie
                .genres
                .iter()
                .map(|g| match interned.get(&**g) {
                    Some(shared) => shared.clone(),
                    None => {
                        interned.insert(g.clone());
                        g.clone()
                    }
                })
                .collect();
        }
        let mut by_id: HashMap<u32, u32> = movies
            .iter()
            .enumerate()
            .map(|(i, m)| (m.movie_id, i as u32))
            .collect();
        // A merged id names its movie too, unless it is some movie's own id (only a hand-edited
        // catalog could have that).
        for (i, m) in movies.iter().enumerate() {
            for &id in &m.merged_ids {
                by_id.entry(id).or_insert(i as u32);
            }
        }
        let titles = TitleSearch::build(movies.iter().map(|m| TitleEntry {
            title: &m.title,
            aliases: &m.aliases,
            year: m.year,
            popularity: m.rating_count,
        }));
        let mut genres: Vec<Arc<str>> = Vec::new();
        let genre_masks = movies
            .iter()
            .map(|m| {
                m.genres.iter().fold(0u64, |mask, genre| {
                    let position = genres
                        .iter()
                        .position(|g| g.eq_ignore_ascii_case(genre))
                        .unwrap_or_else(|| {
                            genres.push(genre.clone());
                            genres.len() - 1
                        });
                    mask | 1u64.checked_shl(position as u32).unwrap_or(0)
                })
            })
            .collect();
        Catalog {
            movies,
            by_id,
            titles,
            genres,
            genre_masks,
        }
    }

    /// Every genre of the catalog, in order of first appearance.
    pub fn genre_names(&self) -> &[Arc<str>] {
        &self.genres
    }

    /// The bit of genre `name` (case-insensitive) in [`Catalog::genre_mask`], if the catalog
    /// has it.
    pub fn genre_bit(&self, name: &str) -> Option<u64> {
        let position = self
            .genres
            .iter()
            .position(|g| g.eq_ignore_ascii_case(name))?;
        1u64.checked_shl(position as u32)
    }

    /// The genres of catalog row `row`, one bit each (see [`Catalog::genre_bit`]).
    pub fn genre_mask(&self, row: u32) -> u64 {
        self.genre_masks[row as usize]
    }

    /// Number of movies.
    pub fn len(&self) -> usize {
        self.movies.len()
    }

    /// True when there are no movies.
    pub fn is_empty(&self) -> bool {
        self.movies.is_empty()
    }

    /// All movies in internal-index order.
    pub fn movies(&self) -> &[Movie] {
        &self.movies
    }

    /// The movie at internal index `item`.
    pub fn movie(&self, item: u32) -> &Movie {
        &self.movies[item as usize]
    }

    /// Internal index of a MovieLens id: a movie's own id or one merged into it
    /// ([`Movie::merged_ids`]).
    pub fn item_of(&self, movie_id: u32) -> Option<u32> {
        self.by_id.get(&movie_id).copied()
    }

    /// [`Catalog::item_of`] as a table indexed by MovieLens id (`u32::MAX` where no movie has
    /// that id), for lookups by the million; `None` when some id is `max_id` or more (the table
    /// would be too large: look up with `item_of` then).
    pub fn item_table(&self, max_id: u32) -> Option<Vec<u32>> {
        let top = self.by_id.keys().copied().max().unwrap_or(0);
        if top >= max_id {
            return None;
        }
        let mut table = vec![u32::MAX; top as usize + 1];
        for (&id, &item) in &self.by_id {
            table[id as usize] = item;
        }
        Some(table)
    }

    /// Fuzzy title search, best matches first (for suggestions as you type).
    pub fn search(&self, query: &str, limit: usize) -> Vec<u32> {
        self.titles
            .search(query, limit)
            .into_iter()
            .map(|m| m.item)
            .collect()
    }

    /// Resolves a query to one movie. For a title, the best match wins; among equally good
    /// matches the best-known (most rated) wins and the others are returned as alternatives.
    /// The answer says how the title matched (see [`MatchKind`]).
    pub fn resolve(&self, query: &MovieQuery) -> Result<Resolved> {
        match query {
            MovieQuery::Id(id) => self
                .item_of(*id)
                .map(|item| Resolved {
                    item,
                    kind: MatchKind::Exact,
                    alternatives: Vec::new(),
                })
                .ok_or_else(|| Error::MovieNotFound {
                    query: format!("movieId {id}"),
                    suggestions: Vec::new(),
                }),
            MovieQuery::Title(title) => {
                let title = title.trim();
                if title.is_empty() {
                    return Err(Error::invalid("movie", "the movie title is empty"));
                }
                // Bounded work: the longest title in a MovieLens release is under 200 characters.
                let length = title.chars().count();
                if length > MAX_TITLE_CHARS {
                    return Err(Error::invalid(
                        "movie",
                        format!(
                            "a movie title is at most {MAX_TITLE_CHARS} characters, got {length}"
                        ),
                    ));
                }
                let matches = self.titles.search(title, 10);
                let Some(best) = matches.first() else {
                    return Err(Error::MovieNotFound {
                        query: title.to_string(),
                        suggestions: self.suggestions(title),
                    });
                };
                // Equally good matches are named; after a loose guess, the next guesses too.
                let alternatives = matches[1..]
                    .iter()
                    .enumerate()
                    .filter(|(i, m)| {
                        best.quality - m.quality <= ALTERNATIVE_QUALITY_GAP
                            || (best.kind == MatchKind::Loose && *i < LOOSE_ALTERNATIVES)
                    })
                    .map(|(_, m)| m.item)
                    .collect();
                Ok(Resolved {
                    item: best.item,
                    kind: best.kind,
                    alternatives,
                })
            }
        }
    }

    /// Close titles for a query that matched nothing well enough: the best few by a looser
    /// search on the query's words.
    fn suggestions(&self, query: &str) -> Vec<String> {
        let mut items = Vec::new();
        // The first few words are enough to suggest from, and keep the work bounded.
        let words = query.split_whitespace().filter(|w| w.chars().count() >= 3);
        for word in words.take(SUGGESTION_WORDS) {
            for item in self.search(word, 3) {
                if !items.contains(&item) {
                    items.push(item);
                }
            }
        }
        items.truncate(5);
        items
            .into_iter()
            .map(|i| self.movie(i).display_title())
            .collect()
    }
}

/// A catalog of movies `1..=n` titled `Movie N`, with nothing else known, for unit tests.
#[cfg(test)]
pub(crate) fn numbered_catalog(n: u32) -> Catalog {
    titled_catalog((1..=n).map(|id| format!("Movie {id}")))
}

/// A catalog of movies numbered from 1 with the given titles, nothing else known, for unit
/// tests.
#[cfg(test)]
pub(crate) fn titled_catalog(titles: impl IntoIterator<Item = impl Into<Arc<str>>>) -> Catalog {
    Catalog::from_movies(
        (1..)
            .zip(titles)
            .map(|(id, title)| Movie {
                movie_id: id,
                title: title.into(),
                aliases: Vec::new(),
                year: None,
                genres: Arc::new([]),
                imdb_id: None,
                tmdb_id: None,
                rating_count: 0,
                rating_mean: 0.0,
                merged_ids: Vec::new(),
            })
            .collect(),
    )
}

/// Each movie's rating count and sum, by movie id: one parallel pass over the ratings (at
/// ml-latest's size 33.9M; a `HashMap` updated per rating on one thread took 1.1–3 s of
/// `train`), each rating's movie found in a table indexed by id when the ids are small enough
/// (as every MovieLens release's are), else in a hash map.
struct RatingStats {
    /// The ids' slots: `dense[id]` (`u32::MAX` for none), or `hashed[&id]`.
    dense: Option<Vec<u32>>,
    hashed: HashMap<u32, u32>,
    /// `(count, sum)` per slot.
    sums: Vec<(u32, f64)>,
}

/// Ids below this are looked up in a table (4 bytes per id up to the largest), as the rating
/// matrix's build looks them up.
const DENSE_STATS_IDS: u32 = crate::interactions::DENSE_IDS;

impl RatingStats {
    /// Counts the ratings of each of `ids` (ascending; a repeated id shares one count). Ratings
    /// of other movies are not counted.
    fn count(ids: &[u32], ratings: &[crate::data::Rating]) -> RatingStats {
        use rayon::prelude::*;
        let top = ids.last().copied().unwrap_or(0);
        let mut stats = RatingStats {
            dense: (top < DENSE_STATS_IDS).then(|| vec![u32::MAX; top as usize + 1]),
            hashed: HashMap::new(),
            sums: Vec::new(),
        };
        let mut slots = 0u32;
        for &id in ids {
            let slot = match &mut stats.dense {
                Some(table) => &mut table[id as usize],
                None => stats.hashed.entry(id).or_insert(u32::MAX),
            };
            if *slot == u32::MAX {
                *slot = slots;
                slots += 1;
            }
        }
        let slots = slots as usize;
        let stats_ref = &stats;
        // One part per thread (fewer when their sums would take too much memory), added in
        // order.
        let parts = crate::interactions::part_ranges(ratings.len(), 2 * slots);
        let per_part: Vec<Vec<(u32, f64)>> = parts
            .into_par_iter()
            .map(|range| {
                let mut sums = vec![(0u32, 0f64); slots];
                for r in &ratings[range] {
                    if let Some(slot) = stats_ref.slot(r.movie_id) {
                        let entry = &mut sums[slot];
                        entry.0 += 1;
                        entry.1 += f64::from(r.rating);
                    }
                }
                sums
            })
            .collect();
        let mut sums = vec![(0u32, 0f64); slots];
        for part in per_part {
            for (x, y) in sums.iter_mut().zip(part) {
                x.0 += y.0;
                x.1 += y.1;
            }
        }
        stats.sums = sums;
        stats
    }

    /// The slot of `id`, if it is one of the counted movies.
    #[inline]
    fn slot(&self, id: u32) -> Option<usize> {
        let slot = match &self.dense {
            Some(table) => table.get(id as usize).copied(),
            None => self.hashed.get(&id).copied(),
        };
        slot.filter(|&s| s != u32::MAX).map(|s| s as usize)
    }

    /// `(count, sum)` of the ratings of `id` (zeros for a movie nobody rated).
    fn of(&self, id: u32) -> (u32, f64) {
        self.slot(id).map_or((0, 0.0), |s| self.sums[s])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn movies_share_one_text_per_genre() {
        let movie = |id: u32, genres: &[&str]| Movie {
            movie_id: id,
            title: format!("Movie {id}").into(),
            aliases: Vec::new(),
            year: Some(1995),
            genres: genres.iter().map(|&g| Arc::from(g)).collect(),
            imdb_id: None,
            tmdb_id: None,
            rating_count: 0,
            rating_mean: 0.0,
            merged_ids: Vec::new(),
        };
        // As read from catalog.json: every movie has its own copy of each genre's text.
        let catalog = Catalog::from_movies(vec![
            movie(1, &["Comedy", "Drama"]),
            movie(2, &["Drama"]),
            movie(3, &["Comedy"]),
        ]);
        let genre = |item: u32, i: usize| catalog.movie(item).genres[i].clone();
        assert!(Arc::ptr_eq(&genre(0, 0), &genre(2, 0)), "Comedy");
        assert!(Arc::ptr_eq(&genre(0, 1), &genre(1, 0)), "Drama");
        assert_eq!(&*genre(0, 1), "Drama");
        // A view of a movie shares the catalog's texts instead of copying them.
        let view = catalog.movie(0).view();
        assert!(Arc::ptr_eq(&view.title, &catalog.movie(0).title));
        assert_eq!(view.genres.len(), 2);
        assert_eq!(catalog.genre_names().len(), 2);
    }

    #[test]
    fn rating_counts_and_sums_equal_a_plain_count_for_small_and_large_ids() {
        use crate::data::Rating;
        for offset in [0u32, DENSE_STATS_IDS, u32::MAX - 1_000] {
            // Ascending ids with one repeated; the ratings split among the threads' parts.
            let ids: Vec<u32> = [1u32, 5, 5, 9, 400, 999]
                .iter()
                .map(|&i| offset + i)
                .collect();
            let ratings: Vec<Rating> = (0..200_000u32)
                .map(|r| Rating {
                    user_id: r % 977,
                    // Movies 0..1000: most not in `ids`, whose ratings are not counted.
                    movie_id: offset + (r.wrapping_mul(2_654_435_761) >> 22) % 1000,
                    rating: 0.5 * (1 + r % 10) as f32,
                    timestamp: r,
                })
                .collect();
            let stats = RatingStats::count(&ids, &ratings);
            for &id in ids.iter().chain(&[offset + 2, offset + 998]) {
                let mine: Vec<f64> = ratings
                    .iter()
                    .filter(|r| r.movie_id == id)
                    .map(|r| f64::from(r.rating))
                    .collect();
                let want = if ids.contains(&id) {
                    (mine.len() as u32, mine.iter().sum())
                } else {
                    (0, 0.0)
                };
                assert_eq!(stats.of(id), want, "movie {id} (ids from {offset})");
            }
            assert!(
                stats.of(offset + 400).0 > 100,
                "a counted movie has ratings"
            );
            assert_eq!(stats.dense.is_some(), offset < DENSE_STATS_IDS);
        }
    }
}
