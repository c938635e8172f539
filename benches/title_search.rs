//! Times fuzzy title search (`Catalog::search`) over the titles of a synthetic ml-latest.
//!
//! `cargo bench --bench title_search -- [scale] [--queries N]`
//!
//! The catalog holds the movies `movierec synth --scale S` writes (scale 1: 86,537 titles, with
//! aliases and years), each movie's popularity its expected number of ratings. Queries are
//! made from titles drawn half by popularity and half uniformly: the title with one and two
//! typos (a swap, a dropped, an extra or a wrong letter), a prefix as typed so far, the title
//! with its year, an alias, and the exact title. Each query runs once per round; the figure is
//! the per-query median over rounds, then the mean and percentiles over queries. Single thread.
//! The last column is the share of queries whose top 10 holds the title (and year) they were
//! made from: a sanity check, not a quality measure (short prefixes match many titles).

use movierec::catalog::{Catalog, Movie};
use movierec::data::title::clean_title;
use movierec::devtools::synth::{SynthModel, SynthParams};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut scale = 1.0f64;
    let mut per_kind = 300usize;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--bench" => {}
            "--queries" => {
                i += 1;
                per_kind = args[i].parse().expect("--queries N");
            }
            s => scale = s.parse().expect("scale must be a number"),
        }
        i += 1;
    }
    let params = SynthParams {
        scale,
        seed: 7,
        taste: 0.0,
    };
    let model = SynthModel::from_params(&params);
    let movies: Vec<Movie> = model
        .movies()
        .iter()
        .enumerate()
        .map(|(index, m)| {
            let clean = clean_title(&m.title);
            Movie {
                movie_id: m.movie_id,
                title: clean.title.into(),
                aliases: clean.aliases,
                year: clean.year,
                genres: m.genre_names().map(std::sync::Arc::from).collect(),
                imdb_id: Some(m.imdb_id),
                tmdb_id: m.tmdb_id,
                rating_count: model.expected_ratings(index).round() as u32,
                rating_mean: 3.5,
                merged_ids: Vec::new(),
            }
        })
        .collect();
    let started = Instant::now();
    let catalog = Catalog::from_movies(movies);
    let build = started.elapsed();
    let aliases: usize = catalog.movies().iter().map(|m| m.aliases.len()).sum();
    println!(
        "{} titles ({aliases} aliases), index built in {:.0} ms",
        catalog.len(),
        build.as_secs_f64() * 1e3
    );

    let queries = make_queries(&catalog, per_kind);
    let rounds = 7;
    let mut kinds: Vec<&str> = queries.iter().map(|q| q.kind).collect();
    kinds.dedup();
    let mut all = Vec::new();
    println!("kind            queries  mean µs  p50 µs  p99 µs  max µs  wanted title in top 10");
    for kind in kinds {
        let of_kind: Vec<&Query> = queries.iter().filter(|q| q.kind == kind).collect();
        let mut medians = Vec::with_capacity(of_kind.len());
        let mut found = 0usize;
        for q in &of_kind {
            let mut times: Vec<Duration> = (0..rounds)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(catalog.search(&q.text, 10));
                    t.elapsed()
                })
                .collect();
            times.sort();
            medians.push(times[rounds / 2]);
            // Titles repeat (as in MovieLens): any movie with the wanted title and year counts.
            let wanted = catalog.movie(q.item).display_title();
            found += usize::from(
                catalog
                    .search(&q.text, 10)
                    .iter()
                    .any(|&i| catalog.movie(i).display_title() == wanted),
            );
        }
        report(kind, &mut medians, found);
        all.extend(medians);
    }
    report("all", &mut all, usize::MAX);
}

fn report(kind: &str, times: &mut [Duration], found: usize) {
    times.sort();
    let n = times.len();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = times.iter().map(|&d| us(d)).sum::<f64>() / n as f64;
    let at = |p: f64| us(times[((n as f64 * p) as usize).min(n - 1)]);
    let found = if found == usize::MAX {
        String::new()
    } else {
        format!("{:.1}%", 100.0 * found as f64 / n as f64)
    };
    println!(
        "{kind:<15} {n:>7}  {mean:>7.1}  {:>6.1}  {:>6.1}  {:>6.1}  {found}",
        at(0.5),
        at(0.99),
        us(times[n - 1])
    );
}

struct Query {
    kind: &'static str,
    text: String,
    /// The movie the query was made from.
    item: u32,
}

fn make_queries(catalog: &Catalog, per_kind: usize) -> Vec<Query> {
    let mut rng = SmallRng::seed_from_u64(2024);
    // Half by popularity (what people look for), half uniformly.
    let mut by_popularity: Vec<u32> = (0..catalog.len() as u32).collect();
    by_popularity.sort_by_key(|&i| std::cmp::Reverse(catalog.movie(i).rating_count));
    let pick = |rng: &mut SmallRng| -> u32 {
        if rng.random_bool(0.5) {
            by_popularity[rng.random_range(0..catalog.len().min(2_000))]
        } else {
            rng.random_range(0..catalog.len() as u32)
        }
    };
    let mut queries = Vec::new();
    let kinds: [&'static str; 6] = [
        "exact",
        "one typo",
        "two typos",
        "prefix",
        "title year",
        "alias",
    ];
    for kind in kinds {
        let mut made = 0;
        while made < per_kind {
            let item = pick(&mut rng);
            let movie = catalog.movie(item);
            let title = movie.title.to_lowercase();
            let text = match kind {
                "exact" => title,
                "one typo" if title.chars().count() >= 5 => typo(&title, &mut rng),
                "two typos" if title.chars().count() >= 9 => {
                    let once = typo(&title, &mut rng);
                    typo(&once, &mut rng)
                }
                "prefix" if title.chars().count() >= 6 => {
                    let n = title.chars().count();
                    let keep = rng.random_range(4..=n.min(12));
                    title.chars().take(keep).collect()
                }
                "title year" if movie.year.is_some() => {
                    format!("{title} {}", movie.year.unwrap_or_default())
                }
                "alias" if !movie.aliases.is_empty() => movie.aliases[0].to_lowercase(),
                _ => continue,
            };
            queries.push(Query { kind, text, item });
            made += 1;
        }
    }
    queries
}

/// One edit at a random letter: swap with the next, drop, double or replace it.
fn typo(text: &str, rng: &mut SmallRng) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let letters: Vec<usize> = (0..chars.len().saturating_sub(1))
        .filter(|&i| chars[i].is_alphabetic())
        .collect();
    let Some(&at) = letters.get(rng.random_range(0..letters.len().max(1))) else {
        return text.to_string();
    };
    match rng.random_range(0..4) {
        0 => chars.swap(at, at + 1),
        1 => {
            chars.remove(at);
        }
        2 => chars.insert(at, chars[at]),
        _ => chars[at] = (b'a' + rng.random_range(0..26u8)) as char,
    }
    chars.into_iter().collect()
}
