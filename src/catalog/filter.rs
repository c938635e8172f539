//! Movie filters: which movies a recommendation may return (genres, year range, minimum number
//! of ratings, exclusions), as the CLI, the API and the web page state them, and compiled into a
//! per-row predicate that the indexes apply inside their search.

use super::Catalog;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// What a user may ask of the movies returned. Empty (the default) allows every movie.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MovieFilter {
    /// Keep movies having at least one of these genres (any, case-insensitive); empty: no
    /// constraint.
    #[serde(default)]
    pub genres: Vec<String>,
    /// Drop movies having any of these genres.
    #[serde(default)]
    pub exclude_genres: Vec<String>,
    /// Earliest release year (inclusive); movies without a year are dropped when a year bound
    /// is given.
    pub year_min: Option<u16>,
    /// Latest release year (inclusive).
    pub year_max: Option<u16>,
    /// Keep movies with at least this many ratings in the training data. When it is not given,
    /// "movies like" a well-known movie keep only movies with a few ratings
    /// ([`crate::engine::KNOWN_MIN_RATINGS`]); `0` asks for every movie (hidden gems).
    #[serde(default)]
    pub min_ratings: Option<u32>,
    /// Movies never to return (MovieLens ids).
    #[serde(default)]
    pub exclude: Vec<u32>,
}

impl MovieFilter {
    /// True when the filter allows every movie.
    pub fn is_empty(&self) -> bool {
        *self == MovieFilter::default()
    }
}

/// A [`MovieFilter`] checked against a catalog and turned into bit masks and row numbers: one
/// test per row costs a few integer comparisons.
#[derive(Clone, Debug)]
pub struct CompiledFilter<'a> {
    catalog: &'a Catalog,
    include: u64,
    exclude: u64,
    years: Option<(u16, u16)>,
    min_ratings: u32,
    excluded_rows: Vec<u32>,
    allows_all: bool,
}

impl<'a> CompiledFilter<'a> {
    /// Checks `filter` against `catalog`: unknown genres (naming the catalog's), an empty year
    /// range and unknown excluded movies are errors naming the field.
    pub fn new(catalog: &'a Catalog, filter: &MovieFilter) -> Result<CompiledFilter<'a>> {
        let mask = |names: &[String], field: &'static str| -> Result<u64> {
            names.iter().try_fold(0u64, |mask, name| {
                catalog
                    .genre_bit(name)
                    .map(|bit| mask | bit)
                    .ok_or_else(|| {
                        Error::invalid(
                            field,
                            format!(
                                "{field}: unknown genre {name:?}; the catalog's genres are: {}",
                                catalog.genre_names().join(", ")
                            ),
                        )
                    })
            })
        };
        let include = mask(&filter.genres, "genres")?;
        let exclude = mask(&filter.exclude_genres, "exclude_genres")?;
        let years = match (filter.year_min, filter.year_max) {
            (None, None) => None,
            (min, max) => {
                let (min, max) = (min.unwrap_or(0), max.unwrap_or(u16::MAX));
                if min > max {
                    return Err(Error::invalid(
                        "year_min",
                        format!("year_min ({min}) is after year_max ({max})"),
                    ));
                }
                Some((min, max))
            }
        };
        let mut excluded_rows = filter
            .exclude
            .iter()
            .map(|&id| {
                catalog.item_of(id).ok_or_else(|| {
                    Error::invalid("exclude", format!("exclude: no movie has movieId {id}"))
                })
            })
            .collect::<Result<Vec<u32>>>()?;
        excluded_rows.sort_unstable();
        excluded_rows.dedup();
        Ok(CompiledFilter {
            catalog,
            include,
            exclude,
            years,
            min_ratings: filter.min_ratings.unwrap_or(0),
            allows_all: MovieFilter {
                min_ratings: filter.min_ratings.filter(|&n| n > 0),
                ..filter.clone()
            }
            .is_empty(),
            excluded_rows,
        })
    }

    /// True when every movie passes (callers may skip filtering altogether).
    pub fn allows_all(&self) -> bool {
        self.allows_all
    }

    /// Whether catalog row `row` passes.
    #[inline]
    pub fn allows(&self, row: u32) -> bool {
        if self.allows_all {
            return true;
        }
        let mask = self.catalog.genre_mask(row);
        let movie = self.catalog.movie(row);
        (self.include == 0 || mask & self.include != 0)
            && mask & self.exclude == 0
            && movie.rating_count >= self.min_ratings
            && self
                .years
                .is_none_or(|(min, max)| movie.year.is_some_and(|y| (min..=max).contains(&y)))
            && self.excluded_rows.binary_search(&row).is_err()
    }
}
