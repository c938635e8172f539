//! The content model: each movie's genres and decade, one-hot encoded, and the tags users gave it
//! (TF-IDF over `tags.csv`), reduced by PCA to the components that keep 95% of the variance (as
//! the seed did for genres and decades), at most [`MAX_COMPONENTS`].
//!
//! Tags are normalised (lower case, single spaces); a tag counts once per user who applied it
//! (`tf` = users, weighted `1 + ln tf`), `idf = ln(tagged movies / movies with the tag)`, and only
//! tags on at least [`MIN_TAG_MOVIES`] movies are kept (at most [`MAX_TAGS`], the most widespread),
//! since a tag on one movie links it to nothing. Each movie's tag vector is scaled to length
//! `tag_weight` beside its genre and decade ones; the weight is chosen by `movierec evaluate`.
//! Movies nobody tagged keep their genres and decade only.
//!
//! When the release has a tag genome (ml-latest, ml-20m/25m/32m), each genome movie's relevance
//! vector (1,128 tags, unit length, also scaled to `tag_weight`) is a further block of features:
//! curated, dense and available for movies nobody tagged by hand. Its share of the covariance
//! is a dense product (faer), the rest stays sparse.

use super::linalg::{components_for_variance, sorted_eigen};
use super::{ModelKind, TrainedModel};
use crate::catalog::Catalog;
use crate::data::{Tag, TagGenome};
use crate::embeddings::ItemEmbeddings;
use crate::Result;
use nalgebra::DMatrix;
use rayon::prelude::*;
use serde_json::json;
use std::borrow::Cow;

/// Share of the features' variance the kept components must explain.
pub const VARIANCE_KEPT: f64 = 0.95;
/// Most components kept, whatever the variance.
pub const MAX_COMPONENTS: usize = 32;
/// A tag must be on at least this many movies to be a feature.
pub const MIN_TAG_MOVIES: usize = 2;
/// Most tag features kept.
pub const MAX_TAGS: usize = 512;

/// Each catalog movie's tag TF-IDF as `(feature, weight)` pairs of unit length, and the tag
/// vocabulary in feature order.
pub fn tag_tfidf(catalog: &Catalog, tags: &[Tag]) -> (Vec<Vec<(usize, f64)>>, Vec<String>) {
    // Each application of a tag: (movie row, normalised tag, user), on all cores, then sorted
    // and deduplicated, so that each (movie, tag) is a run of its distinct users. Sorting these
    // rather than counting them in hash maps of strings (on one core): at ml-latest's size
    // (2.2M tag rows) the content model's stage went from 1.7–2.2 s to 0.7–1.0 s
    // (docs/BENCHMARKS.md).
    let mut applied: Vec<(u32, Cow<'_, str>, u32)> = tags
        .par_iter()
        .filter_map(|t| {
            let item = catalog.item_of(t.movie_id)?;
            let tag = normalise_tag(&t.tag);
            (!tag.is_empty()).then_some((item, tag, t.user_id))
        })
        .collect();
    applied.par_sort_unstable();
    applied.dedup();
    // Each (movie, tag) with its number of users.
    let mut pairs: Vec<(u32, &str, usize)> = Vec::new();
    for (item, tag, _) in &applied {
        match pairs.last_mut() {
            Some(last) if last.0 == *item && last.1 == tag.as_ref() => last.2 += 1,
            _ => pairs.push((*item, tag.as_ref(), 1)),
        }
    }
    let tagged = pairs.chunk_by(|a, b| a.0 == b.0).count() as f64;
    // The movies each tag is on: the pairs in tag order.
    let mut by_tag: Vec<u32> = (0..pairs.len() as u32).collect();
    by_tag.par_sort_unstable_by(|&a, &b| pairs[a as usize].1.cmp(pairs[b as usize].1));
    let runs: Vec<&[u32]> = by_tag
        .chunk_by(|&a, &b| pairs[a as usize].1 == pairs[b as usize].1)
        .collect();
    let mut vocabulary: Vec<(&str, usize)> = runs
        .iter()
        .map(|run| (pairs[run[0] as usize].1, run.len()))
        .filter(|&(_, n)| n >= MIN_TAG_MOVIES)
        .collect();
    vocabulary.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    vocabulary.truncate(MAX_TAGS);
    let mut column: Vec<(&str, usize)> = vocabulary
        .iter()
        .enumerate()
        .map(|(j, &(t, _))| (t, j))
        .collect();
    column.sort_unstable();
    let mut rows: Vec<Vec<(usize, f64)>> = vec![Vec::new(); catalog.len()];
    for run in runs {
        let tag = pairs[run[0] as usize].1;
        let Ok(at) = column.binary_search_by(|&(t, _)| t.cmp(tag)) else {
            continue;
        };
        let j = column[at].1;
        let idf = (tagged / vocabulary[j].1 as f64).ln();
        for &p in run {
            let (item, _, users) = pairs[p as usize];
            rows[item as usize].push((j, (1.0 + (users as f64).ln()) * idf));
        }
    }
    for row in &mut rows {
        row.sort_by_key(|&(j, _)| j);
        let norm = row.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|(_, w)| *w /= norm);
        }
    }
    let names = vocabulary.iter().map(|&(t, _)| t.to_string()).collect();
    (rows, names)
}

/// A tag as it counts: lower case, its words separated by single spaces. Borrowed when it
/// already is (printable ASCII without capitals or runs of spaces: most tags).
fn normalise_tag(tag: &str) -> Cow<'_, str> {
    let plain = tag
        .bytes()
        .all(|b| b == b' ' || (b.is_ascii_graphic() && !b.is_ascii_uppercase()))
        && !tag.starts_with(' ')
        && !tag.ends_with(' ')
        && !tag.contains("  ");
    if plain {
        Cow::Borrowed(tag)
    } else {
        Cow::Owned(
            tag.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase(),
        )
    }
}

/// The one-hot feature names: every genre, then every decade, each sorted.
pub fn feature_names(catalog: &Catalog) -> Vec<String> {
    let mut genres: Vec<String> = catalog
        .movies()
        .iter()
        .flat_map(|m| m.genres.iter().map(|g| g.to_string()))
        .collect();
    genres.sort();
    genres.dedup();
    let mut decades: Vec<String> = catalog.movies().iter().filter_map(|m| m.decade()).collect();
    decades.sort();
    decades.dedup();
    genres.into_iter().chain(decades).collect()
}

/// Weight of the tags beside genres and decade, as chosen by `movierec evaluate`
/// (docs/EVALUATION.md).
pub const DEFAULT_TAG_WEIGHT: f64 = 2.0;

/// Trains the content model over every movie of the catalog, with `tags` and the tag `genome`
/// (when given) weighted by `tag_weight` (0 leaves them out).
pub fn train(
    catalog: &Catalog,
    tags: &[Tag],
    genome: Option<&TagGenome>,
    tag_weight: f64,
) -> Result<TrainedModel> {
    let names = feature_names(catalog);
    let column = |name: &str| names.iter().position(|n| n == name);
    let (tag_rows, tag_names) = if tag_weight > 0.0 {
        tag_tfidf(catalog, tags)
    } else {
        (Vec::new(), Vec::new())
    };
    let sparse_width = (names.len() + tag_names.len()).max(1);
    let genome = genome.filter(|g| tag_weight > 0.0 && !g.tags.is_empty());
    let genome_width = genome.map_or(0, |g| g.tags.len());
    let width = sparse_width + genome_width;
    // Each catalog movie's genome row (unit length × tag_weight), when it has one.
    let genome_rows: Vec<Option<Vec<f64>>> = catalog
        .movies()
        .iter()
        .map(|m| {
            let row = genome?.row(m.movie_id)?;
            let norm = row
                .iter()
                .map(|&v| f64::from(v).powi(2))
                .sum::<f64>()
                .sqrt();
            (norm > 0.0).then(|| {
                row.iter()
                    .map(|&v| tag_weight * f64::from(v) / norm)
                    .collect()
            })
        })
        .collect();
    // Sparse rows: a movie has a few genres, a decade and a handful of tags out of ~500
    // features, so the covariance is summed over non-zeros (dense, it was 3 GFLOP).
    let rows: Vec<Vec<(usize, f64)>> = catalog
        .movies()
        .iter()
        .enumerate()
        .map(|(i, movie)| {
            let mut row: Vec<(usize, f64)> = movie
                .genres
                .iter()
                .filter_map(|g| column(g))
                .chain(movie.decade().and_then(|d| column(&d)))
                .map(|j| (j, 1.0))
                .collect();
            row.sort_unstable_by_key(|&(j, _)| j);
            row.dedup_by_key(|&mut (j, _)| j);
            let tags = tag_rows.get(i).map_or(&[][..], Vec::as_slice);
            row.extend(tags.iter().map(|&(j, w)| (names.len() + j, tag_weight * w)));
            row
        })
        .collect();
    let n = catalog.len().max(2) as f64;
    let mut means = vec![0.0f64; width];
    for (row, dense) in rows.iter().zip(&genome_rows) {
        for &(j, v) in row {
            means[j] += v / catalog.len().max(1) as f64;
        }
        for (j, v) in dense.iter().flatten().enumerate() {
            means[sparse_width + j] += v / catalog.len().max(1) as f64;
        }
    }
    // Cov = (XᵀX − n·μμᵀ) / (n − 1), XᵀX summed block by block.
    let mut covariance = DMatrix::<f64>::zeros(width, width);
    for (row, dense) in rows.iter().zip(&genome_rows) {
        for &(a, va) in row {
            for &(b, vb) in row {
                covariance[(a, b)] += va * vb;
            }
            for (b, vb) in dense.iter().flatten().enumerate() {
                covariance[(a, sparse_width + b)] += va * vb;
                covariance[(sparse_width + b, a)] += va * vb;
            }
        }
    }
    let with_genome: Vec<&Vec<f64>> = genome_rows.iter().flatten().collect();
    if !with_genome.is_empty() {
        let g =
            faer::Mat::<f64>::from_fn(with_genome.len(), genome_width, |i, j| with_genome[i][j]);
        let gram = g.transpose() * &g;
        for a in 0..genome_width {
            for b in 0..genome_width {
                covariance[(sparse_width + a, sparse_width + b)] += gram[(a, b)];
            }
        }
    }
    let count = catalog.len() as f64;
    for a in 0..width {
        for b in 0..width {
            covariance[(a, b)] = (covariance[(a, b)] - count * means[a] * means[b]) / (n - 1.0);
        }
    }
    let (eigenvalues, components) = sorted_eigen(covariance);
    let dim = components_for_variance(&eigenvalues, VARIANCE_KEPT).min(MAX_COMPONENTS);
    // Row i's coordinates: Σ_j (x_ij − μ_j) C_jc = Σ_{j ∈ row} x_ij C_jc − (μᵀC)_c.
    let offset: Vec<f64> = (0..dim)
        .map(|c| (0..width).map(|j| means[j] * components[(j, c)]).sum())
        .collect();
    let mut data = Vec::with_capacity(catalog.len() * dim);
    for (row, dense) in rows.iter().zip(&genome_rows) {
        data.extend((0..dim).map(|c| {
            let v: f64 = row.iter().map(|&(j, x)| x * components[(j, c)]).sum();
            let g: f64 = dense
                .iter()
                .flatten()
                .enumerate()
                .map(|(j, x)| x * components[(sparse_width + j, c)])
                .sum();
            (v + g - offset[c]) as f32
        }));
    }
    let total: f64 = eigenvalues.iter().sum();
    let kept: f64 = eigenvalues[..dim].iter().sum();
    Ok(TrainedModel {
        kind: ModelKind::Content,
        embeddings: ItemEmbeddings::new(dim, data)?,
        details: json!({
            "features": names,
            "tag_features": tag_names.len(),
            "tag_weight": tag_weight,
            "tagged_movies": tag_rows.iter().filter(|r| !r.is_empty()).count(),
            "genome_tags": genome_width,
            "genome_movies": with_genome.len(),
            "method": "one-hot genres and decades, tag TF-IDF, PCA",
            "variance_target": VARIANCE_KEPT,
            "components": dim,
            "variance_explained": if total > 0.0 { kept / total } else { 0.0 },
        }),
    })
}

/// The content model in the [`super::REGISTRY`].
pub struct Content;

impl super::Model for Content {
    fn kind(&self) -> ModelKind {
        ModelKind::Content
    }
    fn shape(&self) -> super::ModelShape {
        super::ModelShape::Embeddings
    }
    fn fit(&self, input: &super::FitInput<'_>) -> Result<super::Fitted> {
        let weight = input.settings.content_tag_weight;
        // An incremental training keeps the previous model when what it reads is unchanged.
        let inputs = inputs_fingerprint(input.catalog, input.tags, input.genome, weight);
        let previous = input
            .previous
            .and_then(|p| p.model(ModelKind::Content))
            .filter(|m| m.details.get(INPUTS_KEY).and_then(|v| v.as_str()) == Some(&inputs));
        if let Some(previous) = previous {
            return Ok(super::Fitted::Embeddings(previous.clone()));
        }
        let mut model = train(input.catalog, input.tags, input.genome, weight)?;
        model.details[INPUTS_KEY] = json!(inputs);
        Ok(super::Fitted::Embeddings(model))
    }
}

/// The key of the content model's details that holds [`inputs_fingerprint`].
pub const INPUTS_KEY: &str = "inputs_fingerprint";

/// A hash of everything [`train`] reads (each movie's id, year and genres in catalog order,
/// every tag, the genome, the tag weight), as 16 hex digits: an incremental training reuses the
/// previous content model when it is the same.
pub fn inputs_fingerprint(
    catalog: &Catalog,
    tags: &[Tag],
    genome: Option<&TagGenome>,
    tag_weight: f64,
) -> String {
    let mut hash = xxhash_rust::xxh3::Xxh3::new();
    hash.update(&tag_weight.to_le_bytes());
    hash.update(&(catalog.len() as u64).to_le_bytes());
    for movie in catalog.movies() {
        hash.update(&movie.movie_id.to_le_bytes());
        hash.update(&movie.year.map_or(u32::MAX, u32::from).to_le_bytes());
        hash.update(&(movie.genres.len() as u32).to_le_bytes());
        for genre in movie.genres.iter() {
            hash.update(genre.as_bytes());
            hash.update(&[0]);
        }
    }
    hash.update(&(tags.len() as u64).to_le_bytes());
    for tag in tags {
        hash.update(&tag.user_id.to_le_bytes());
        hash.update(&tag.movie_id.to_le_bytes());
        hash.update(tag.tag.as_bytes());
        hash.update(&[0]);
    }
    if let Some(genome) = genome {
        hash.update(b"genome");
        for name in &genome.tags {
            hash.update(name.as_bytes());
            hash.update(&[0]);
        }
        for id in &genome.movie_ids {
            hash.update(&id.to_le_bytes());
        }
        hash.update(bytemuck::cast_slice(&genome.relevance));
    }
    format!("{:016x}", hash.digest())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::numbered_catalog;

    fn tag(user_id: u32, movie_id: u32, text: &str) -> Tag {
        Tag {
            user_id,
            movie_id,
            tag: text.to_string(),
            timestamp: 0,
        }
    }

    #[test]
    fn tags_on_several_movies_become_unit_tfidf_features_and_one_off_tags_are_dropped() {
        let catalog = numbered_catalog(4);
        let tags = vec![
            tag(1, 1, "Pixar"),
            tag(2, 1, "  pixar "),
            tag(1, 2, "PIXAR"),
            tag(1, 2, "time travel"),
            tag(1, 3, "time  travel"),
            tag(1, 3, "only here"),
            tag(1, 99, "pixar"), // not in the catalog
        ];
        let (rows, names) = tag_tfidf(&catalog, &tags);
        assert_eq!(names, vec!["pixar", "time travel"]);
        assert!(rows[3].is_empty());
        // Movie 1: two users said "pixar", weight 1 + ln 2 times the idf, alone: unit length.
        assert_eq!(rows[0].len(), 1);
        assert!((rows[0][0].1 - 1.0).abs() < 1e-12);
        for row in &rows[..3] {
            let norm: f64 = row.iter().map(|(_, w)| w * w).sum();
            assert!((norm - 1.0).abs() < 1e-12, "{row:?}");
        }
    }

    /// The tag weights counted the plain way: a hash map of (movie, tag) to its users.
    fn tfidf_by_hash_maps(
        catalog: &Catalog,
        tags: &[Tag],
    ) -> (Vec<Vec<(usize, f64)>>, Vec<String>) {
        use std::collections::{HashMap, HashSet};
        let normalise = |t: &str| {
            t.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        };
        let mut applied: HashMap<(u32, String), HashSet<u32>> = HashMap::new();
        for t in tags {
            let (Some(item), tag) = (catalog.item_of(t.movie_id), normalise(&t.tag)) else {
                continue;
            };
            if !tag.is_empty() {
                applied.entry((item, tag)).or_default().insert(t.user_id);
            }
        }
        let mut df: HashMap<&str, usize> = HashMap::new();
        for (_, tag) in applied.keys() {
            *df.entry(tag.as_str()).or_default() += 1;
        }
        let mut vocabulary: Vec<(&str, usize)> = df
            .into_iter()
            .filter(|&(_, n)| n >= MIN_TAG_MOVIES)
            .collect();
        vocabulary.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        vocabulary.truncate(MAX_TAGS);
        let tagged = applied.keys().map(|k| k.0).collect::<HashSet<_>>().len() as f64;
        let mut rows: Vec<Vec<(usize, f64)>> = vec![Vec::new(); catalog.len()];
        for ((item, tag), users) in &applied {
            if let Some(j) = vocabulary.iter().position(|(t, _)| t == tag) {
                let idf = (tagged / vocabulary[j].1 as f64).ln();
                rows[*item as usize].push((j, (1.0 + (users.len() as f64).ln()) * idf));
            }
        }
        for row in &mut rows {
            row.sort_by_key(|&(j, _)| j);
            let norm = row.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|(_, w)| *w /= norm);
            }
        }
        (
            rows,
            vocabulary.iter().map(|&(t, _)| t.to_string()).collect(),
        )
    }

    #[test]
    fn tag_weights_equal_those_counted_in_hash_maps() {
        // 700 distinct tags (more than MAX_TAGS, with ties at the cut), written in several
        // ways, repeated by the same users, on movies in and out of the catalog.
        let catalog = numbered_catalog(300);
        let mut state = 5u64;
        let mut next = |n: u64| {
            state = crate::rng::splitmix64(state);
            state % n
        };
        let spellings = [
            "tag {}",
            "Tag {}",
            " tag  {} ",
            "TAG\t{}",
            "tag\u{a0}{}",
            "ÉTIQUETTE {}",
        ];
        let tags: Vec<Tag> = (0..20_000)
            .map(|_| {
                let text = spellings[next(6) as usize].replace("{}", &next(700).to_string());
                tag(1 + next(40) as u32, 1 + next(320) as u32, &text)
            })
            .collect();
        let (rows, names) = tag_tfidf(&catalog, &tags);
        let (expected_rows, expected_names) = tfidf_by_hash_maps(&catalog, &tags);
        assert_eq!(names.len(), MAX_TAGS);
        assert_eq!(names, expected_names);
        assert_eq!(rows, expected_rows);
    }

    #[test]
    fn tags_are_normalised_as_lower_case_words_with_single_spaces() {
        let slow = |t: &str| {
            t.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        };
        for text in [
            "pixar",
            "Pixar",
            "time travel",
            "time  travel",
            " time travel",
            "time travel ",
            "tab\there",
            "vertical\u{b}tab",
            "no\u{a0}break",
            "ǅemo",
            "ÉCOLE",
            "école",
            "sci-fi!",
            "",
            "   ",
            "a\nb",
            "x\u{7f}y",
            "ok ok ok",
        ] {
            assert_eq!(normalise_tag(text), slow(text), "{text:?}");
            assert_eq!(
                matches!(normalise_tag(text), Cow::Borrowed(_)),
                normalise_tag(text) == text && text.is_ascii() && !text.contains(char::is_control),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_shared_tag_makes_two_untagged_lookalikes_differ() {
        // Four movies with no genres or years: only tags can tell them apart.
        let catalog = numbered_catalog(4);
        let tags = vec![
            tag(1, 1, "heist"),
            tag(1, 2, "heist"),
            tag(1, 3, "space"),
            tag(1, 4, "space"),
        ];
        let model = train(&catalog, &tags, None, 1.0).unwrap();
        let e = model.embeddings.normalized();
        let cos =
            |a: usize, b: usize| -> f32 { e.row(a).iter().zip(e.row(b)).map(|(x, y)| x * y).sum() };
        assert!(cos(0, 1) > 0.99, "{}", cos(0, 1));
        assert!(cos(0, 2) < 0.0, "{}", cos(0, 2));
        assert_eq!(model.details["tag_features"], 2);
        let without = train(&catalog, &tags, None, 0.0).unwrap();
        assert_eq!(without.details["tag_features"], 0);
    }
}

#[cfg(test)]
mod genome_tests {
    use super::*;
    use crate::catalog::numbered_catalog;

    #[test]
    fn movies_with_similar_genomes_are_neighbours_and_others_keep_their_place() {
        // Genome over three tags for movies 1–3; movie 4 has none.
        let genome = TagGenome {
            tags: vec!["dark".into(), "funny".into(), "space".into()],
            movie_ids: vec![1, 2, 3],
            relevance: vec![0.9, 0.1, 0.8, 0.85, 0.15, 0.75, 0.05, 0.95, 0.1],
        };
        let catalog = numbered_catalog(4);
        let model = train(&catalog, &[], Some(&genome), 1.0).unwrap();
        assert_eq!(model.details["genome_tags"], 3);
        assert_eq!(model.details["genome_movies"], 3);
        let e = model.embeddings.normalized();
        let cos =
            |a: usize, b: usize| -> f32 { e.row(a).iter().zip(e.row(b)).map(|(x, y)| x * y).sum() };
        assert!(cos(0, 1) > 0.95, "{}", cos(0, 1));
        assert!(
            cos(0, 2) < cos(0, 1) - 0.5,
            "{} vs {}",
            cos(0, 2),
            cos(0, 1)
        );
        assert!(e.row(3).iter().all(|v| v.is_finite()));
        let without = train(&catalog, &[], Some(&genome), 0.0).unwrap();
        assert_eq!(without.details["genome_tags"], 0);
    }
}
