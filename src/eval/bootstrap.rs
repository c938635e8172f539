//! Paired bootstrap confidence intervals for the metrics of `movierec evaluate`.
//!
//! Every metric of the evaluation is a ratio of sums over *units*: HR@10 is the hits over the
//! pairs, and the pairs belong to users; the judged AUC is the won comparisons over the triples,
//! and the triples belong to users; franchise recall is a sum over franchise queries, and the
//! queries belong to franchises. A [`UnitSums`] holds, for each unit, the sum of its values and
//! their number, so that the metric is `Σ sum / Σ count`.
//!
//! A [`Resampler`] draws the units with replacement [`DRAWS`] times from a fixed seed
//! ([`SEED`]) and recomputes the metric on each draw; the 95% interval is the 2.5th and 97.5th
//! percentiles of those values. The same draws serve every model, so the difference of two models
//! is computed draw by draw on the same resampled units: a *paired* bootstrap, whose interval is
//! much narrower than the two models' intervals suggest when the models succeed and fail on the
//! same users. Users with several pairs are one unit (a cluster bootstrap), since their pairs are
//! not independent.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeMap;

/// Bootstrap draws per interval.
pub const DRAWS: usize = 1000;
/// The seed of the draws: the same data gives the same intervals.
pub const SEED: u64 = 17;
/// The coverage of the intervals.
pub const LEVEL: f64 = 0.95;

/// Per-unit sums of one metric of one model: the metric is `Σ sums / Σ counts`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UnitSums {
    /// The sum of the metric's values over each unit's items (pairs, triples, queries).
    pub sums: Vec<f64>,
    /// How many items each unit holds.
    pub counts: Vec<f64>,
}

impl UnitSums {
    /// `units` empty units.
    pub fn new(units: usize) -> UnitSums {
        UnitSums {
            sums: vec![0.0; units],
            counts: vec![0.0; units],
        }
    }

    /// One value per unit (a per-user metric: each unit counts once).
    pub fn per_unit(values: impl IntoIterator<Item = (usize, f64)>, units: usize) -> UnitSums {
        let mut sums = UnitSums::new(units);
        for (unit, value) in values {
            sums.add(unit, value);
        }
        sums
    }

    /// Adds an item of `value` to `unit`.
    pub fn add(&mut self, unit: usize, value: f64) {
        self.add_weighted(unit, value, 1.0);
    }

    /// Adds `value` to `unit`'s sum and `count` to its count (a ratio of sums whose denominator
    /// is not a number of items, such as the mean popularity of what was shown).
    pub fn add_weighted(&mut self, unit: usize, value: f64, count: f64) {
        self.sums[unit] += value;
        self.counts[unit] += count;
    }

    /// The metric on all units (`None` when no unit holds an item).
    pub fn mean(&self) -> Option<f64> {
        let count: f64 = self.counts.iter().sum();
        (count > 0.0).then(|| self.sums.iter().sum::<f64>() / count)
    }

    /// The metric on the units `drawn` (with repetitions).
    fn mean_of(&self, drawn: &[u32]) -> Option<f64> {
        let (mut sum, mut count) = (0.0, 0.0);
        for &u in drawn {
            sum += self.sums[u as usize];
            count += self.counts[u as usize];
        }
        (count > 0.0).then(|| sum / count)
    }
}

/// A difference from the reference model and its paired interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Difference {
    /// The model's metric minus the reference's, on all units.
    pub diff: f64,
    /// Its paired 95% interval.
    pub ci: [f64; 2],
}

impl Difference {
    /// Whether the interval excludes 0: a difference the data can tell from noise.
    pub fn excludes_zero(&self) -> bool {
        self.ci[0] > 0.0 || self.ci[1] < 0.0
    }
}

/// The bootstrap draws over a fixed set of units, shared by every model.
pub struct Resampler {
    units: usize,
    /// `DRAWS` draws of `units` unit indices each, one after the other.
    drawn: Vec<u32>,
}

impl Resampler {
    /// `draws` draws of `units` units with replacement from `seed`.
    pub fn new(units: usize, draws: usize, seed: u64) -> Resampler {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let drawn = if units == 0 {
            Vec::new()
        } else {
            (0..units * draws)
                .map(|_| rng.random_range(0..units as u32))
                .collect()
        };
        Resampler { units, drawn }
    }

    /// The draws, each a slice of unit indices.
    fn draws(&self) -> impl Iterator<Item = &[u32]> {
        self.drawn.chunks(self.units.max(1))
    }

    /// The percentile interval of the metric (`None` when no draw has an item).
    pub fn interval(&self, metric: &UnitSums) -> Option<[f64; 2]> {
        self.check(metric);
        percentile_interval(self.draws().filter_map(|d| metric.mean_of(d)).collect())
    }

    /// `model − reference` and its paired interval: the difference is taken draw by draw on the
    /// same resampled units.
    pub fn difference(&self, model: &UnitSums, reference: &UnitSums) -> Option<Difference> {
        self.check(model);
        self.check(reference);
        let diff = model.mean()? - reference.mean()?;
        let values = self
            .draws()
            .filter_map(|d| Some(model.mean_of(d)? - reference.mean_of(d)?))
            .collect();
        Some(Difference {
            diff,
            ci: percentile_interval(values)?,
        })
    }

    fn check(&self, metric: &UnitSums) {
        assert_eq!(
            metric.sums.len(),
            self.units,
            "a metric's units must be the resampler's"
        );
    }
}

/// How an evaluation's intervals were drawn.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BootstrapSummary {
    /// Draws per interval.
    pub draws: usize,
    /// The seed of the draws.
    pub seed: u64,
    /// The intervals' coverage.
    pub level: f64,
    /// The model the next-liked and per-user differences (`vs_default`) are taken from: the
    /// default collaborative model ("fans also liked"), popularity when it was not evaluated.
    pub reference: String,
    /// The model the similarity differences are taken from: `similar` ("more like this", the
    /// default), popularity when it was not evaluated.
    pub similarity_reference: String,
    /// Users resampled for the next-liked and per-user metrics.
    pub user_units: usize,
    /// Users resampled for the judged AUCs (those with judged triples).
    pub judged_user_units: usize,
    /// Franchises resampled for franchise recall.
    pub franchise_units: usize,
    /// Wall-clock seconds of drawing and computing every interval.
    pub seconds: f64,
}

/// Inserts the interval of the metric `name` (its per-unit `sums`) into `ci`, and its difference
/// from `reference` into `vs`.
pub(super) fn fill(
    resampler: &Resampler,
    name: &str,
    sums: &UnitSums,
    reference: Option<&UnitSums>,
    ci: &mut BTreeMap<String, [f64; 2]>,
    vs: &mut BTreeMap<String, Difference>,
) {
    if let Some(interval) = resampler.interval(sums) {
        ci.insert(name.to_string(), interval);
    }
    if let Some(d) = reference.and_then(|r| resampler.difference(sums, r)) {
        vs.insert(name.to_string(), d);
    }
}

/// The [`LEVEL`] percentile interval of `values` (linear interpolation between order statistics).
fn percentile_interval(mut values: Vec<f64>) -> Option<[f64; 2]> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let quantile = |p: f64| {
        let position = p * (values.len() - 1) as f64;
        let (low, high) = (position.floor() as usize, position.ceil() as usize);
        let t = position - low as f64;
        values[low] + t * (values[high] - values[low])
    };
    let tail = (1.0 - LEVEL) / 2.0;
    Some([quantile(tail), quantile(1.0 - tail)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-user values from a seeded generator: `users` users, a few items each.
    fn sample(users: usize, seed: u64, p: f64) -> UnitSums {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut sums = UnitSums::new(users);
        for u in 0..users {
            for _ in 0..5 {
                sums.add(u, f64::from(u8::from(rng.random_bool(p))));
            }
        }
        sums
    }

    #[test]
    fn the_interval_contains_the_estimate_and_shrinks_as_units_grow() {
        let small = sample(100, 1, 0.1);
        let large = sample(10_000, 1, 0.1);
        let width = |m: &UnitSums| {
            let ci = Resampler::new(m.sums.len(), DRAWS, SEED)
                .interval(m)
                .unwrap();
            let mean = m.mean().unwrap();
            assert!(ci[0] < mean && mean < ci[1], "{ci:?} around {mean}");
            ci[1] - ci[0]
        };
        let (narrow, wide) = (width(&large), width(&small));
        // The width goes as 1/√n: 10 times narrower for 100 times the users.
        assert!(
            narrow * 5.0 < wide && narrow * 20.0 > wide,
            "{narrow} against {wide}"
        );
        // The binomial standard error of p = 0.1 over 500 items: the interval is ±1.96 of it.
        let se = (0.1f64 * 0.9 / 500.0).sqrt();
        assert!((wide / (2.0 * 1.96 * se) - 1.0).abs() < 0.2, "{wide}, {se}");
    }

    #[test]
    fn a_model_against_itself_differs_by_exactly_nothing() {
        let m = sample(300, 2, 0.3);
        let d = Resampler::new(300, DRAWS, SEED).difference(&m, &m).unwrap();
        assert_eq!(
            d,
            Difference {
                diff: 0.0,
                ci: [0.0, 0.0]
            }
        );
        assert!(!d.excludes_zero());
    }

    #[test]
    fn a_constant_per_user_gain_gives_a_degenerate_interval_at_that_constant() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let base: Vec<f64> = (0..400).map(|_| rng.random_range(0.0..0.5)).collect();
        let a = UnitSums::per_unit(base.iter().copied().enumerate(), 400);
        let b = UnitSums::per_unit(base.iter().map(|v| v + 0.25).enumerate(), 400);
        let resampler = Resampler::new(400, DRAWS, SEED);
        let d = resampler.difference(&b, &a).unwrap();
        assert!((d.diff - 0.25).abs() < 1e-12);
        assert!((d.ci[0] - 0.25).abs() < 1e-12 && (d.ci[1] - 0.25).abs() < 1e-12);
        assert!(d.excludes_zero());
        // Unpaired, the two intervals overlap widely, though every user gained 0.25.
        let (ia, ib) = (
            resampler.interval(&a).unwrap(),
            resampler.interval(&b).unwrap(),
        );
        assert!(ib[1] - ib[0] > 0.02 && ia[1] - ia[0] > 0.02);
    }

    #[test]
    fn paired_differences_are_narrower_than_unpaired_when_models_agree_on_users() {
        // b is a with a little independent noise: the users' difficulty is shared.
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let base: Vec<f64> = (0..500).map(|_| rng.random_range(0.0..1.0)).collect();
        let a = UnitSums::per_unit(base.iter().copied().enumerate(), 500);
        let b = UnitSums::per_unit(
            base.iter()
                .map(|v| v + rng.random_range(-0.05..0.05))
                .enumerate(),
            500,
        );
        let resampler = Resampler::new(500, DRAWS, SEED);
        let d = resampler.difference(&b, &a).unwrap();
        let ia = resampler.interval(&a).unwrap();
        assert!(d.ci[1] - d.ci[0] < (ia[1] - ia[0]) / 5.0, "{d:?}, {ia:?}");
        assert!(d.ci[0] <= d.diff && d.diff <= d.ci[1]);
    }

    #[test]
    fn the_same_seed_gives_the_same_interval_and_another_seed_another() {
        let m = sample(200, 5, 0.2);
        let once = Resampler::new(200, DRAWS, SEED).interval(&m);
        let again = Resampler::new(200, DRAWS, SEED).interval(&m);
        let other = Resampler::new(200, DRAWS, SEED + 1).interval(&m);
        assert_eq!(once, again);
        assert_ne!(once, other);
    }

    #[test]
    fn units_without_items_weigh_nothing_and_an_empty_metric_has_no_interval() {
        // Unit 1 has no items: the metric is that of unit 0 in every draw that holds it.
        let mut m = UnitSums::new(2);
        m.add(0, 1.0);
        m.add(0, 0.0);
        let ci = Resampler::new(2, DRAWS, SEED).interval(&m).unwrap();
        assert_eq!(ci, [0.5, 0.5]);
        assert_eq!(
            Resampler::new(3, DRAWS, SEED).interval(&UnitSums::new(3)),
            None
        );
        assert_eq!(
            Resampler::new(0, DRAWS, SEED).interval(&UnitSums::new(0)),
            None
        );
    }

    #[test]
    fn percentiles_interpolate_between_order_statistics() {
        let values: Vec<f64> = (0..=100).map(f64::from).collect();
        let ci = percentile_interval(values).unwrap();
        assert!((ci[0] - 2.5).abs() < 1e-12 && (ci[1] - 97.5).abs() < 1e-12);
    }
}
