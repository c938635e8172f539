//! The MovieLens layouts and how a release's layout is told from the files it has.

use super::source::Source;
use crate::{Error, Result};
use serde::Serialize;

/// How a MovieLens release is laid out on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Layout {
    /// CSV files with a header (ml-latest, ml-latest-small, ml-20m, ml-25m, ml-32m):
    /// `movies.csv`, `ratings.csv`, optional `links.csv`, `tags.csv` and tag genome. Half stars.
    #[serde(rename = "csv")]
    Csv,
    /// `::`-separated files without a header (ml-10m): `movies.dat`, `ratings.dat`, optional
    /// `tags.dat`. UTF-8, half stars.
    #[serde(rename = "ml-10m")]
    Ml10m,
    /// `::`-separated files without a header (ml-1m): `movies.dat`, `ratings.dat` and
    /// `users.dat` (not needed, not read). Latin-1, whole stars 1–5.
    #[serde(rename = "ml-1m")]
    Ml1m,
    /// ml-100k: `u.data` (tab-separated ratings), `u.item` (pipe-separated movies with a release
    /// date and genre flags) and `u.genre` (the flags' names). Latin-1, whole stars 1–5.
    #[serde(rename = "ml-100k")]
    Ml100k,
}

impl Layout {
    /// The short name (`csv`, `ml-10m`, `ml-1m`, `ml-100k`).
    pub fn name(self) -> &'static str {
        match self {
            Layout::Csv => "csv",
            Layout::Ml10m => "ml-10m",
            Layout::Ml1m => "ml-1m",
            Layout::Ml100k => "ml-100k",
        }
    }

    /// A description for the loading summary.
    pub fn describe(self) -> &'static str {
        match self {
            Layout::Csv => "CSV layout of ml-latest and ml-20m/25m/32m, half stars",
            Layout::Ml10m => "ml-10m layout, `::`-separated, half stars",
            Layout::Ml1m => "ml-1m layout, `::`-separated, Latin-1, whole stars",
            Layout::Ml100k => "ml-100k layout, u.data and u.item, Latin-1, whole stars",
        }
    }

    /// The files a release of this layout must have.
    pub fn required_files(self) -> &'static [&'static str] {
        match self {
            Layout::Csv => &["movies.csv", "ratings.csv"],
            Layout::Ml10m | Layout::Ml1m => &["movies.dat", "ratings.dat"],
            Layout::Ml100k => &["u.item", "u.genre", "u.data"],
        }
    }

    /// The file listing the movies.
    pub fn movies_file(self) -> &'static str {
        match self {
            Layout::Csv => "movies.csv",
            Layout::Ml10m | Layout::Ml1m => "movies.dat",
            Layout::Ml100k => "u.item",
        }
    }

    /// The file of ratings.
    pub fn ratings_file(self) -> &'static str {
        match self {
            Layout::Csv => "ratings.csv",
            Layout::Ml10m | Layout::Ml1m => "ratings.dat",
            Layout::Ml100k => "u.data",
        }
    }

    /// Every file that is read when present.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Layout::Csv => &[
                "movies.csv",
                "links.csv",
                "ratings.csv",
                "tags.csv",
                "genome-tags.csv",
                "genome-scores.csv",
            ],
            Layout::Ml10m => &["movies.dat", "ratings.dat", "tags.dat"],
            Layout::Ml1m => &["movies.dat", "ratings.dat"],
            Layout::Ml100k => &["u.genre", "u.item", "u.data"],
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Tells the layout from the files present, and checks that its required files are there.
///
/// `ratings.csv` or `movies.csv` means the CSV layout; `ratings.dat` or `movies.dat` means ml-1m
/// when `users.dat` is there too, else ml-10m; `u.data` or `u.item` means ml-100k.
pub(crate) fn detect(source: &Source) -> Result<Layout> {
    let has = |name: &str| source.has(name);
    let layout = if has("ratings.csv") || has("movies.csv") {
        Layout::Csv
    } else if has("ratings.dat") || has("movies.dat") {
        if has("users.dat") {
            Layout::Ml1m
        } else {
            Layout::Ml10m
        }
    } else if has("u.data") || has("u.item") {
        Layout::Ml100k
    } else {
        return Err(Error::data(
            source.label(),
            "holds no MovieLens release (expected ratings.csv and movies.csv as in ml-latest and \
             ml-20m/25m/32m, ratings.dat and movies.dat as in ml-1m and ml-10m, or u.data, u.item \
             and u.genre as in ml-100k)",
        ));
    };
    let required = layout.required_files();
    if let Some(missing) = required.iter().find(|name| !has(name)) {
        return Err(Error::data(
            source.location(missing),
            format!(
                "is missing (a release of the {} layout needs {})",
                layout.name(),
                required.join(", ")
            ),
        ));
    }
    Ok(layout)
}
