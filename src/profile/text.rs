//! The profile as plain-text tables for a terminal (`movierec profile` without `--html`).

use super::{ActivityView, ColumnKind, ColumnProfile, Profile};
use std::fmt::Write;

/// Widest cell of the "most frequent" column, in characters.
const TOP_CELL: usize = 48;
/// Width of a histogram bar at 100%.
const BAR: usize = 30;

/// Renders `profile` as text: a table per file, then the MovieLens views.
pub fn render(profile: &Profile) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "MovieLens release {} ({})",
        profile.dir.display(),
        profile.fingerprint
    );
    for file in &profile.files {
        let _ = writeln!(out, "\n{} — {} rows", file.file, count(file.rows));
        let rows: Vec<Vec<String>> = file.columns.iter().map(column_cells).collect();
        table(
            &mut out,
            &[
                "column",
                "type",
                "count",
                "missing",
                "distinct",
                "min",
                "max",
                "mean",
                "most frequent",
            ],
            &rows,
            &[false, false, true, true, true, true, true, true, false],
        );
    }
    if !profile.skipped.is_empty() {
        let _ = writeln!(out, "\nSkipped while loading");
        for (reason, n) in &profile.skipped {
            let _ = writeln!(out, "  {}: {}", reason, count(*n as u64));
        }
    }

    if !profile.same_title.is_empty() {
        let _ = writeln!(out, "\nSame title and year under two ids");
        for (what, n) in &profile.same_title {
            let _ = writeln!(out, "  {}: {}", what, count(*n as u64));
        }
        for film in &profile.merged {
            let merged: Vec<String> = film.merged_ids.iter().map(u32::to_string).collect();
            let _ = writeln!(
                out,
                "  {}: movieId {} (merged: {})",
                film.title,
                film.movie_id,
                merged.join(", ")
            );
        }
    }

    let r = &profile.ratings;
    let _ = writeln!(out, "\nRatings — {} (mean {:.2})", count(r.count), r.mean);
    let most = r.histogram.iter().map(|h| h.1).max().unwrap_or(0);
    for &(value, n) in &r.histogram {
        let _ = writeln!(
            out,
            "  {value:>4.1}  {:<BAR$}  {:>6}  {}",
            bar(n, most),
            percent(n, r.count),
            count(n)
        );
    }

    activity(&mut out, "Ratings per user", "users", &profile.per_user);
    activity(&mut out, "Ratings per movie", "movies", &profile.per_movie);

    let _ = writeln!(out, "\nGenres");
    let rows: Vec<Vec<String>> = profile
        .genres
        .iter()
        .map(|g| {
            vec![
                g.genre.clone(),
                count(g.movies),
                count(g.ratings),
                format!("{:.2}", g.mean_rating),
            ]
        })
        .collect();
    table(
        &mut out,
        &["genre", "movies", "ratings", "mean rating"],
        &rows,
        &[false, true, true, true],
    );

    let _ = writeln!(out, "\nMovies per decade");
    let most = profile.decades.iter().map(|d| d.movies).max().unwrap_or(0);
    for d in &profile.decades {
        let label = d.decade.map_or("no year".to_string(), |y| format!("{y}s"));
        let _ = writeln!(
            out,
            "  {label:<8} {:<BAR$}  {}",
            bar(d.movies, most),
            count(d.movies)
        );
    }

    let _ = writeln!(out, "\nRatings per year (UTC)");
    let most = profile.years.iter().map(|y| y.ratings).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "  {:<4}  {:<BAR$}  {:>11}  {:>4}  {:>9}",
        "year", "", "ratings", "mean", "new users"
    );
    for y in &profile.years {
        let _ = writeln!(
            out,
            "  {}  {:<BAR$}  {:>11}  {:>4.2}  {:>9}",
            y.year,
            bar(y.ratings, most),
            count(y.ratings),
            y.mean_rating,
            count(y.new_users)
        );
    }

    match &profile.tags {
        Some(t) => {
            let _ = writeln!(
                out,
                "\nTags — {} ({} distinct ignoring case, by {} users, on {} movies)",
                count(t.count),
                count(t.distinct),
                count(t.users),
                count(t.movies)
            );
            let top: Vec<String> = t
                .top
                .iter()
                .take(10)
                .map(|(tag, n)| format!("{} ({})", clip(tag, 30), count(*n)))
                .collect();
            if !top.is_empty() {
                let _ = writeln!(out, "  most used: {}", top.join(", "));
            }
        }
        None => {
            let _ = writeln!(out, "\nTags — no tags.csv");
        }
    }
    out
}

fn activity(out: &mut String, title: &str, what: &str, a: &ActivityView) {
    let _ = write!(out, "\n{title} — {} {what}", count(a.entities));
    if a.without_ratings > 0 {
        let _ = write!(out, ", {} without ratings", count(a.without_ratings));
    }
    let _ = writeln!(out);
    let quantiles: Vec<String> = a
        .quantiles
        .iter()
        .map(|&(q, v)| {
            if q >= 1.0 {
                format!("max {}", count(v))
            } else {
                format!("p{} {}", (q * 100.0).round(), count(v))
            }
        })
        .collect();
    let _ = writeln!(
        out,
        "  min {}, {}; mean {:.1}",
        count(a.min),
        quantiles.join(", "),
        a.mean
    );
    let _ = writeln!(
        out,
        "  the most active 1% of {what} account for {} of ratings, the top 10% for {}",
        percent_f(a.top_1_percent_share),
        percent_f(a.top_10_percent_share)
    );
    let most = a.bins.iter().map(|b| b.2).max().unwrap_or(0);
    for &(lo, hi, n) in a.shown_bins() {
        let label = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}–{hi}")
        };
        let _ = writeln!(out, "  {label:>13}  {:<BAR$}  {}", bar(n, most), count(n));
    }
}

fn column_cells(c: &ColumnProfile) -> Vec<String> {
    let top = if c.all_distinct() {
        "(all distinct)".to_string()
    } else {
        let parts: Vec<String> = c
            .top
            .iter()
            .take(3)
            .map(|(v, n)| {
                // Shares for common values (ratings), counts for rare ones (titles).
                if super::share(*n, c.count) >= 0.01 {
                    format!("{} ({})", clip(v, 20), percent(*n, c.count))
                } else {
                    format!("{} (×{})", clip(v, 20), count(*n))
                }
            })
            .collect();
        clip(&parts.join(", "), TOP_CELL)
    };
    vec![
        c.name.clone(),
        c.kind.label().to_string(),
        count(c.count),
        format!("{:.1}%", 100.0 * c.missing_share()),
        count(c.distinct),
        c.min.clone().unwrap_or_default(),
        c.max.clone().unwrap_or_default(),
        match (c.mean, c.kind) {
            (Some(m), ColumnKind::List) => format!("{m:.2}/row"),
            (Some(m), _) => format!("{m:.2}"),
            (None, _) => String::new(),
        },
        top,
    ]
}

/// Writes an aligned table (right-aligned where `right` says), indented by two spaces.
fn table(out: &mut String, headers: &[&str], rows: &[Vec<String>], right: &[bool]) {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        out.push(' ');
        for ((cell, &w), &r) in cells.zip(&widths).zip(right) {
            let pad = " ".repeat(w - width(cell));
            out.push_str("  ");
            if r {
                out.push_str(&pad);
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&pad);
            }
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(out, &mut headers.iter().copied());
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

/// `33,862,037`: the loader's summary formats counts the same way.
pub(crate) use crate::data::thousands as count;

/// `26.6%` of `whole`.
fn percent(part: u64, whole: u64) -> String {
    percent_f(super::share(part, whole))
}

fn percent_f(share: f64) -> String {
    format!("{:.1}%", 100.0 * share)
}

/// A bar of `BAR` cells at `n == most`, in eighths of a block.
fn bar(n: u64, most: u64) -> String {
    if most == 0 || n == 0 {
        return String::new();
    }
    let eighths = ((n as f64 / most as f64) * (BAR * 8) as f64)
        .round()
        .max(1.0) as usize;
    let mut s = "█".repeat(eighths / 8);
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    s.push_str(PARTS[eighths % 8]);
    s
}

/// `s` cut to `max` characters, ending with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut cut: String = s.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_clipping() {
        assert_eq!(bar(10, 10).chars().count(), BAR);
        assert_eq!(bar(0, 10), "");
        assert_eq!(bar(1, 1_000_000), "▏");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }

    #[test]
    fn tiny_release_renders_every_section() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
        let text = render(&super::super::profile(&crate::data::load(&dir).unwrap()));
        for needle in [
            "movies.csv — 4 rows",
            "ratings.csv",
            "links.csv",
            "tags.csv",
            "most frequent",
            "(all distinct)",
            "Ratings —",
            "Ratings per user",
            "Ratings per movie",
            "without ratings",
            "Genres",
            "Movies per decade",
            "no year",
            "Ratings per year",
            "Tags —",
            "Skipped while loading",
        ] {
            assert!(text.contains(needle), "{needle}\n{text}");
        }
    }
}
