//! The profile as one self-contained HTML page (`movierec profile --html FILE`): inline CSS and
//! inline SVG charts, no script, nothing loaded from elsewhere, so it opens offline and can be
//! mailed as one file. Every text from the data (titles, tags, paths) is HTML-escaped.

use super::svg::{bars, escape, hbars, line, short_number, Datum};
use super::text::count;
use super::{share, ActivityView, ColumnKind, Profile};
use std::fmt::Write;

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #d8dce3;padding-bottom:4px}
h3{font-size:15px;margin:20px 0 6px}
.meta{color:#5a6475;margin:0}
nav a{margin-right:12px;color:#2456a6}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #dde1e8;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.chart{width:100%;max-width:760px;height:auto;background:#fff;border:1px solid #dde1e8;display:block;margin:6px 0 12px}
.chart rect{fill:#4a7fc9}.chart rect:hover{fill:#1f4f96}
.chart .grid{stroke:#e6e9ee}.chart .axis{stroke:#8a93a3}
.chart .label,.chart .value{font-size:11px;fill:#4a5364}
.chart .line{fill:none;stroke:#c2572b;stroke-width:2}.chart circle{fill:#c2572b}
.note{color:#5a6475;font-size:13px}
";

/// Renders `profile` as an HTML page.
pub fn render(profile: &Profile) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let dir = profile.dir.display().to_string();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>MovieLens profile: {}</title><style>{STYLE}</style></head><body><main>\
         <h1>MovieLens release profile</h1><p class=\"meta\">{} · {} · movierec {}</p>",
        escape(&dir),
        escape(&dir),
        escape(&profile.fingerprint),
        env!("CARGO_PKG_VERSION")
    );
    out.push_str(
        "<nav><a href=\"#files\">Files</a><a href=\"#ratings\">Ratings</a>\
         <a href=\"#per-user\">Per user</a><a href=\"#per-movie\">Per movie</a>\
         <a href=\"#genres\">Genres</a><a href=\"#decades\">Decades</a>\
         <a href=\"#time\">Over time</a><a href=\"#tags\">Tags</a></nav>",
    );

    files(&mut out, profile);
    ratings(&mut out, profile);
    activity(
        &mut out,
        "per-user",
        "Ratings per user",
        "users",
        &profile.per_user,
    );
    activity(
        &mut out,
        "per-movie",
        "Ratings per movie",
        "movies",
        &profile.per_movie,
    );
    genres(&mut out, profile);
    decades(&mut out, profile);
    over_time(&mut out, profile);
    tags(&mut out, profile);
    out.push_str("</main></body></html>\n");
    out
}

fn files(out: &mut String, profile: &Profile) {
    out.push_str("<h2 id=\"files\">Files and columns</h2>");
    for file in &profile.files {
        let _ = write!(
            out,
            "<h3>{} — {} rows</h3><table><tr><th>column</th><th>type</th><th>count</th>\
             <th>missing</th><th>distinct</th><th>min</th><th>max</th><th>mean</th>\
             <th>most frequent</th></tr>",
            escape(&file.file),
            count(file.rows)
        );
        for c in &file.columns {
            let top = if c.all_distinct() {
                "all distinct".to_string()
            } else {
                c.top
                    .iter()
                    .map(|(v, n)| {
                        format!(
                            "{} <span class=\"note\">({}, {:.1}%)</span>",
                            escape(v),
                            count(*n),
                            100.0 * share(*n, c.count)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("<br>")
            };
            let mean = match (c.mean, c.kind) {
                (Some(m), ColumnKind::List) => format!("{m:.2} per row"),
                (Some(m), _) => format!("{m:.2}"),
                (None, _) => String::new(),
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}% ({})</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td>{top}</td></tr>",
                escape(&c.name),
                c.kind.label(),
                count(c.count),
                100.0 * c.missing_share(),
                count(c.missing),
                count(c.distinct),
                escape(c.min.as_deref().unwrap_or("")),
                escape(c.max.as_deref().unwrap_or("")),
                mean
            );
        }
        out.push_str("</table>");
    }
    if !profile.skipped.is_empty() {
        out.push_str("<h3>Skipped while loading</h3><table><tr><th>reason</th><th>rows</th></tr>");
        for (reason, n) in &profile.skipped {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
                escape(reason),
                count(*n as u64)
            );
        }
        out.push_str("</table>");
    }
    if !profile.same_title.is_empty() {
        out.push_str(
            "<h3>Same title and year under two ids</h3><table><tr><th>what</th><th>ids</th></tr>",
        );
        for (what, n) in &profile.same_title {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
                escape(what),
                count(*n as u64)
            );
        }
        for film in &profile.merged {
            let merged: Vec<String> = film.merged_ids.iter().map(u32::to_string).collect();
            let _ = write!(
                out,
                "<tr><td>{}: movieId {}</td><td class=\"n\">merged: {}</td></tr>",
                escape(&film.title),
                film.movie_id,
                merged.join(", ")
            );
        }
        out.push_str("</table>");
    }
}

fn ratings(out: &mut String, profile: &Profile) {
    let r = &profile.ratings;
    let _ = write!(
        out,
        "<h2 id=\"ratings\">Ratings</h2><p>{} ratings, mean {:.2}.</p>",
        count(r.count),
        r.mean
    );
    let data: Vec<Datum> = r
        .histogram
        .iter()
        .map(|&(v, n)| Datum {
            label: format!("{v:.1}"),
            value: n as f64,
            tooltip: format!(
                "{v:.1} stars: {} ratings ({:.1}%)",
                count(n),
                100.0 * share(n, r.count)
            ),
        })
        .collect();
    out.push_str(&bars("Ratings by value", &data, false));
}

fn activity(out: &mut String, id: &str, title: &str, what: &str, a: &ActivityView) {
    let _ = write!(
        out,
        "<h2 id=\"{id}\">{title}</h2><p>{} {what}",
        count(a.entities)
    );
    if a.without_ratings > 0 {
        let _ = write!(out, " ({} without any rating)", count(a.without_ratings));
    }
    let _ = write!(
        out,
        "; mean {:.1} ratings. The most active 1% of {what} account for {:.1}% of all \
         ratings, the top 10% for {:.1}%.</p><table><tr><th>min</th>",
        a.mean,
        100.0 * a.top_1_percent_share,
        100.0 * a.top_10_percent_share
    );
    for (q, _) in &a.quantiles {
        if *q >= 1.0 {
            out.push_str("<th>max</th>");
        } else {
            let _ = write!(out, "<th>{}%</th>", (q * 100.0).round());
        }
    }
    let _ = write!(out, "</tr><tr><td class=\"n\">{}</td>", count(a.min));
    for (_, v) in &a.quantiles {
        let _ = write!(out, "<td class=\"n\">{}</td>", count(*v));
    }
    out.push_str("</tr></table>");
    let data: Vec<Datum> = a
        .shown_bins()
        .iter()
        .map(|&(lo, hi, n)| {
            let label = if lo == hi {
                short_number(lo as f64)
            } else {
                format!("{}–{}", short_number(lo as f64), short_number(hi as f64))
            };
            Datum {
                tooltip: format!("{label} ratings: {} {what}", count(n)),
                label,
                value: n as f64,
            }
        })
        .collect();
    out.push_str(&bars(
        &format!("{what} by number of ratings (log scale)"),
        &data,
        true,
    ));
    let _ = write!(
        out,
        "<p class=\"note\">Bins double in width; the height is the number of {what} on a \
         logarithmic scale, so the long tail stays visible.</p>"
    );
}

fn genres(out: &mut String, profile: &Profile) {
    out.push_str("<h2 id=\"genres\">Genres</h2>");
    let data: Vec<Datum> = profile
        .genres
        .iter()
        .map(|g| Datum {
            label: g.genre.clone(),
            value: g.movies as f64,
            tooltip: format!("{}: {} movies", g.genre, count(g.movies)),
        })
        .collect();
    out.push_str(&hbars("Movies per genre", &data));
    out.push_str(
        "<table><tr><th>genre</th><th>movies</th><th>ratings</th><th>mean rating</th></tr>",
    );
    for g in &profile.genres {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td></tr>",
            escape(&g.genre),
            count(g.movies),
            count(g.ratings),
            g.mean_rating
        );
    }
    out.push_str("</table><p class=\"note\">A movie counts once for each of its genres.</p>");
}

fn decades(out: &mut String, profile: &Profile) {
    out.push_str("<h2 id=\"decades\">Movies per decade</h2>");
    let data: Vec<Datum> = profile
        .decades
        .iter()
        .map(|d| {
            let label = d.decade.map_or("no year".to_string(), |y| format!("{y}s"));
            Datum {
                tooltip: format!("{label}: {} movies", count(d.movies)),
                label,
                value: d.movies as f64,
            }
        })
        .collect();
    out.push_str(&bars("Movies per release decade", &data, false));
}

fn over_time(out: &mut String, profile: &Profile) {
    out.push_str("<h2 id=\"time\">Ratings over time</h2>");
    let years = &profile.years;
    let data: Vec<Datum> = years
        .iter()
        .map(|y| Datum {
            label: y.year.to_string(),
            value: y.ratings as f64,
            tooltip: format!(
                "{}: {} ratings, {} new users",
                y.year,
                count(y.ratings),
                count(y.new_users)
            ),
        })
        .collect();
    out.push_str(&bars("Ratings per year (UTC)", &data, false));
    let means: Vec<Datum> = years
        .iter()
        .map(|y| Datum {
            label: y.year.to_string(),
            value: y.mean_rating,
            tooltip: format!("{}: mean rating {:.2}", y.year, y.mean_rating),
        })
        .collect();
    let low = means.iter().map(|d| d.value).fold(5.0, f64::min).floor();
    let high = means.iter().map(|d| d.value).fold(0.0, f64::max).ceil();
    if !means.is_empty() {
        out.push_str("<h3>Mean rating per year</h3>");
        out.push_str(&line(
            "Mean rating per year",
            &means,
            low.min(high - 1.0),
            high,
        ));
    }
    out.push_str(
        "<table><tr><th>year</th><th>ratings</th><th>mean rating</th><th>new users</th></tr>",
    );
    for y in years {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td><td class=\"n\">{}</td></tr>",
            y.year,
            count(y.ratings),
            y.mean_rating,
            count(y.new_users)
        );
    }
    out.push_str("</table>");
}

fn tags(out: &mut String, profile: &Profile) {
    out.push_str("<h2 id=\"tags\">Tags</h2>");
    let Some(t) = &profile.tags else {
        out.push_str("<p>This release has no tags.csv.</p>");
        return;
    };
    let _ = write!(
        out,
        "<p>{} tags ({} distinct, ignoring case), by {} users on {} movies.</p>",
        count(t.count),
        count(t.distinct),
        count(t.users),
        count(t.movies)
    );
    let data: Vec<Datum> = t
        .top
        .iter()
        .map(|(tag, n)| Datum {
            label: tag.clone(),
            value: *n as f64,
            tooltip: format!("{tag}: {}", count(*n)),
        })
        .collect();
    if !data.is_empty() {
        out.push_str(&hbars("Most used tags", &data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_is_self_contained_and_escaped() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
        let mut dataset = crate::data::load(&dir).unwrap();
        dataset.tags[0].tag = "<script>alert(1)</script>".into();
        dataset.movies[0].genres = vec!["Kids & \"Family\"".into()];
        let html = render(&super::super::profile(&dataset));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.ends_with("</html>\n"));
        assert!(!html.contains("<script"), "unescaped tag");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("Kids &amp; &quot;Family&quot;"));
        // Nothing fetched from elsewhere: the only URL is the SVG namespace.
        for attr in ["src=", "href=\"http", "@import", "url("] {
            assert!(!html.contains(attr), "{attr}");
        }
        for id in [
            "files",
            "ratings",
            "per-user",
            "per-movie",
            "genres",
            "decades",
            "time",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(html.matches("<svg").count() >= 6);
    }
}
