//! Exact top-k inner-product search that scans int8 codes instead of f32 rows, then re-ranks a
//! provably sufficient candidate set with the caller's exact score.
//!
//! # Why
//!
//! A brute-force f32 scan reads `4 · dim` bytes per row and is memory-bandwidth bound. One byte
//! per component is a quarter of that traffic (and small enough to stay in the last-level cache),
//! and AVX-512 VNNI multiplies 64 byte pairs per instruction. Quantisation alone would change the
//! answer; this module bounds the error of every approximate score rigorously, so the final
//! answer is *exactly* the brute-force answer, including ties and a row filter. No crate we know
//! of offers an int8 exact scan with a filter predicate and a provable re-rank (FAISS's
//! `IndexScalarQuantizer` returns approximate scores, `IndexRefine` re-ranks a fixed multiple of
//! `k` with no guarantee), hence the hand-written kernels.
//!
//! The scan reads every row's codes whatever the filter, so for a filter that admits only a few
//! hundred rows a plain f32 loop over those rows is cheaper; see also [`accelerated`].
//!
//! # Layout
//!
//! Row `r` with components `x_i` gets a scale `s = max_i |x_i| / 127` and codes
//! `c_i = round(x_i / s)` clamped to `-127..=127`; `x̂ = s · c` is its reconstruction. Stored per
//! row (plain little-endian arrays, so they can be written as file sections and memory-mapped):
//!
//! - `codes: [u8]`: `c_i + 128` (so `128` is zero), in blocks of [`BLOCK`] = 16 rows. The
//!   dimension is padded to `G = ⌈dim/4⌉` groups of 4 and the row count to a multiple of 16 (with
//!   zeros). Block `b`, group `g` is 64 contiguous bytes: 4 bytes (components `4g..4g+4`) for each
//!   of the 16 rows, row by row. One `vpdpbusd` with the query's 4 bytes of group `g` broadcast
//!   to every lane thus adds group `g`'s contribution to 16 row sums at once, with no horizontal
//!   reduction. Length: `⌈rows/16⌉ · 16 · G · 4` bytes.
//! - `scales: [f32]`: `s` per row.
//! - `norms: [f32]`: `‖x‖` rounded up; `+∞` marks a *special* row (see below).
//! - `errors: [f32]`: `e_x = ‖x − x̂‖` rounded up; `+∞` for special rows.
//!
//! That is `64 + 12` bytes per 64-dimensional row instead of 256.
//!
//! # The bound
//!
//! The query is quantised the same way (`q̂ = s_q · d`, `e_q = ‖q − q̂‖`, all computed in f64 and
//! rounded up). The kernels compute the integer `Σ c_i d_i` exactly (see *Overflow*), so
//! `A = s_q · s_x · Σ c_i d_i = q̂ · x̂` exactly in real arithmetic, and
//!
//! ```text
//! q·x − q̂·x̂ = (q − q̂)·x + q̂·(x − x̂)   ⇒   |q·x − A| ≤ e_q ‖x‖ + ‖q̂‖ e_x      (Cauchy–Schwarz)
//! ```
//!
//! The caller's `score(r)` is an f32 computation of `q·x + b` (`b` the optional bias). Any f32
//! evaluation of an `n`-term dot product plus one addition, in any order, with or without FMA,
//! is within `γ_{n+1} (Σ|q_i x_i| + |b|) ≤ γ_{n+1} (‖q‖‖x‖ + |b|)` of the exact value,
//! `γ_m = m·u / (1 − m·u)`, `u = 2⁻²⁴` (Higham, *Accuracy and Stability*, §3.1). This is the
//! contract on `score`. So with `ε = γ_{n+1} + 32u`,
//!
//! ```text
//! |score(r) − (A + b)| ≤ ρ = e_q ‖x‖ + ‖q̂‖ e_x + γ_{n+1} (‖q‖ ‖x‖ + |b|).
//! ```
//!
//! The scan evaluates `U = (A + b) + rad` and `L = (A + b) − rad` in f32 with
//! `rad = α‖x‖ + β e_x + h|b| + τ`, `α = (e_q + ε(‖q‖ + ‖q̂‖))(1 + ε)`, `β = ‖q̂‖(1 + ε)²`,
//! `h = ε(1 + ε)` (rounded up to f32) and `τ = 2⁻¹⁰⁰`. Each of `U` and `L` goes through at most
//! eight f32 roundings, each a relative error of at most `u` on terms bounded by
//! `‖q̂‖(‖x‖ + e_x) + |b| + rad`; the extra `32u` in `ε` (and `(1 + ε)` factors) covers all of
//! them, and `τ` covers the absolute error of any underflow, ours (at most `2⁻¹¹⁸`) and that of
//! the caller's products (at most `n · 2⁻¹⁵⁰`). Hence, in the default floating-point environment
//! (round to nearest, no flush-to-zero), `L ≤ score(r) ≤ U` whenever `U` and `L` are finite.
//! A finite `U` and `L` also imply no intermediate overflowed.
//!
//! # Why the result is exact
//!
//! Phase 1 scans the codes of all rows. A row whose `U` is below the current threshold `T` is
//! skipped without calling `allow`. Otherwise `allow(row)` is asked; an allowed row becomes a
//! *candidate* (with its `U`), and if its `U` and `L` are finite, `L` enters a min-heap of the `k`
//! largest lower bounds. `T` is the smallest of them once there are `k` (else `−∞`), so `T` only
//! grows. Phase 2 keeps the candidates with `U ≥ T_final` (or `U` NaN), scores them with `score`
//! and returns the best `k` of those.
//!
//! Claim: every allowed row `r` in the brute-force top `k` is kept. If `U_r < T_final` (finite
//! `U_r`, whether `r` was skipped early, when `U_r < T_t ≤ T_final`, or filtered in phase 2), then
//! the `k` heap rows `j` each have `score(j) ≥ L_j ≥ T_final > U_r ≥ score(r)`: `k` distinct
//! allowed rows score *strictly* higher than `r`, so `r` is not in the top `k` under any
//! tie-breaking. Every other allowed row is a candidate and is scored exactly, so the best `k`
//! candidates (by score, then lower id) are the best `k` allowed rows.
//!
//! Special rows (a NaN or infinite component, or `‖x‖ > 10¹⁸`) store `norm = errors = +∞` and
//! zero codes, so their `U` is `+∞` or NaN: they are always candidates and never set the
//! threshold, and `score` alone decides where they go (NaN scores rank below everything). A
//! non-finite bias value does the same. A non-finite query, `‖q‖ > 10¹⁸` or `dim > MAX_DIM`
//! falls back to scoring every allowed row. The `10¹⁸` limit keeps `‖q‖‖x‖ ≤ 10³⁶`, far from
//! `f32::MAX`, so the caller's own f32 dot product cannot overflow on a bounded row.
//!
//! # Overflow
//!
//! Codes times query codes are at most `255 · 127` and `dim ≤ MAX_DIM = 65 536`, so
//! `dim · 255 · 127 < 2³¹`: the i32 accumulators cannot overflow. (They also wrap identically in
//! every kernel, so all kernels agree bit for bit even on corrupt codes.)
//!
//! # Kernels
//!
//! The integer block kernel exists three times: AVX-512 VNNI (`vpdpbusd`, u8 × i8 in groups of
//! 4), AVX2 (widen to i16, `vpmaddwd`, which cannot saturate here, unlike `vpmaddubsw`) and
//! portable scalar. All return the exact integer sums, so they are bit-identical; tests check
//! that. The bound arithmetic is SIMD too (it runs for every row), with or without FMA; both stay
//! inside the rounding budget above. The level is detected per search with
//! `is_x86_feature_detected!` (cached by `std`).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Rows per block of the code layout (one AVX-512 lane per row).
pub const BLOCK: usize = 16;

/// Largest dimension searched through the codes (`MAX_DIM · 255 · 127 < 2³¹`, so the i32 sums
/// cannot overflow); larger dimensions score every allowed row.
pub const MAX_DIM: usize = 65_536;

/// Rows and queries with a larger norm are not bounded (rows become always-candidates, queries
/// fall back to scoring every row): `10¹⁸ · 10¹⁸` stays far below `f32::MAX ≈ 3.4 · 10³⁸`.
const HUGE_NORM: f64 = 1e18;

/// The stored code of a zero component: codes are `c + 128` with `c` in `-127..=127`.
const ZERO_CODE: u8 = 128;

/// f32 unit roundoff, `2⁻²⁴`.
const UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;

/// `2⁻¹⁰⁰`: absorbs the absolute error of underflowing f32 operations in the bound (at most
/// `2⁻¹¹⁸`), negligible next to any meaningful score.
const TAU: f32 = f32::from_bits((127 - 100) << 23);

/// Whether this CPU runs a SIMD scan (AVX2 or AVX-512 VNNI). Without one the portable kernel is
/// still exact, but on x86-64 it is slower than a plain f32 scan.
pub fn accelerated() -> bool {
    Level::detect() != Level::Scalar
}

/// Number of 4-component groups a row is padded to.
fn groups(dim: usize) -> usize {
    dim.div_ceil(4)
}

/// Length of the code array, `None` on `usize` overflow.
fn code_len(dim: usize, rows: usize) -> Option<usize> {
    rows.div_ceil(BLOCK)
        .checked_mul(BLOCK)?
        .checked_mul(groups(dim))?
        .checked_mul(4)
}

/// The smallest f32 that is `≥ x` (`+∞` beyond the f32 range).
fn f32_up(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) < x {
        f.next_up()
    } else {
        f
    }
}

/// One vector quantised symmetrically to `-127..=127`, with upper bounds (f64) for the norms
/// the error bound needs.
struct Quant {
    scale: f32,
    /// `≥ ‖x‖`.
    norm: f64,
    /// `≥ ‖x − x̂‖`.
    err: f64,
    /// `≥ ‖x̂‖`.
    approx_norm: f64,
}

/// Quantises `x` into `codes[..x.len()]`; `None` if a component is not finite.
fn quantize(x: &[f32], codes: &mut [i8]) -> Option<Quant> {
    let mut amax = 0.0f32;
    for &v in x {
        if !v.is_finite() {
            return None;
        }
        amax = amax.max(v.abs());
    }
    let scale = amax / 127.0;
    let s = f64::from(scale);
    let (mut n2, mut e2, mut a2) = (0.0f64, 0.0f64, 0.0f64);
    for (c, &v) in codes.iter_mut().zip(x) {
        let v = f64::from(v);
        // `scale` may have rounded down, so clamp; any code is fine, the error is measured.
        let q = if s > 0.0 {
            (v / s).round().clamp(-127.0, 127.0)
        } else {
            0.0
        };
        *c = q as i8;
        // Exact in f64: a 24-bit significand times a 7-bit integer.
        let xh = s * q;
        n2 += v * v;
        e2 += (v - xh) * (v - xh);
        a2 += xh * xh;
    }
    // Sums of at most 2^16 non-negative f64 terms and a square root: relative error below 2^-36.
    let up = 1.0 + 1.0 / f64::from(1u32 << 30);
    Some(Quant {
        scale,
        norm: n2.sqrt() * up,
        err: e2.sqrt() * up,
        approx_norm: a2.sqrt() * up,
    })
}

/// Int8 codes and per-row error data for a set of rows, built once at index build time.
///
/// See the [module documentation](self) for the layout; [`QuantizedRows::codes`],
/// [`QuantizedRows::scales`], [`QuantizedRows::norms`] and [`QuantizedRows::errors`] are the
/// arrays to store, and [`QuantizedView::from_parts`] rebuilds a view from them.
#[derive(Clone, Debug)]
pub struct QuantizedRows {
    dim: usize,
    rows: usize,
    codes: Vec<u8>,
    scales: Vec<f32>,
    norms: Vec<f32>,
    errors: Vec<f32>,
}

impl QuantizedRows {
    /// Quantises `rows` (row-major, `dim` components each).
    ///
    /// Rows with a NaN or infinite component, or a norm above `10¹⁸`, are stored as special rows
    /// (always re-ranked).
    ///
    /// # Panics
    ///
    /// If `dim == 0`, `rows.len()` is not a multiple of `dim`, or there are more than
    /// `u32::MAX` rows.
    pub fn build(rows: &[f32], dim: usize) -> QuantizedRows {
        assert!(dim > 0, "quantised rows need a positive dimension");
        assert!(
            rows.len().is_multiple_of(dim),
            "{} values are not whole rows of dimension {dim}",
            rows.len()
        );
        let n = rows.len() / dim;
        assert!(u32::try_from(n).is_ok(), "{n} rows do not fit u32 row ids");
        let g = groups(dim);
        let len = code_len(dim, n).expect("code array size overflows usize");
        let mut codes = vec![ZERO_CODE; len];
        let mut scales = Vec::with_capacity(n);
        let mut norms = Vec::with_capacity(n);
        let mut errors = Vec::with_capacity(n);
        let mut tmp = vec![0i8; g * 4];
        for (r, x) in rows.chunks_exact(dim).enumerate() {
            tmp.fill(0);
            match quantize(x, &mut tmp) {
                Some(q) if q.norm <= HUGE_NORM => {
                    scales.push(q.scale);
                    norms.push(f32_up(q.norm));
                    errors.push(f32_up(q.err));
                    let (block, lane) = (r / BLOCK, r % BLOCK);
                    for (gi, four) in tmp.chunks_exact(4).enumerate() {
                        let at = ((block * g + gi) * BLOCK + lane) * 4;
                        for (dst, &c) in codes[at..at + 4].iter_mut().zip(four) {
                            // Two's complement: flipping the top bit adds 128.
                            *dst = (c as u8) ^ 0x80;
                        }
                    }
                }
                _ => {
                    // Special row: zero codes, infinite bound, so always a candidate.
                    scales.push(0.0);
                    norms.push(f32::INFINITY);
                    errors.push(f32::INFINITY);
                }
            }
        }
        QuantizedRows {
            dim,
            rows: n,
            codes,
            scales,
            norms,
            errors,
        }
    }

    /// A borrowed view to search with.
    pub fn view(&self) -> QuantizedView<'_> {
        QuantizedView {
            dim: self.dim,
            rows: self.rows,
            codes: &self.codes,
            scales: &self.scales,
            norms: &self.norms,
            errors: &self.errors,
        }
    }

    /// Components per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The block-interleaved codes (`c + 128`), `⌈rows/16⌉ · 16 · ⌈dim/4⌉ · 4` bytes.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// Per-row quantisation scale.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// Per-row upper bound of `‖x‖` (`+∞` for special rows).
    pub fn norms(&self) -> &[f32] {
        &self.norms
    }

    /// Per-row upper bound of `‖x − x̂‖` (`+∞` for special rows).
    pub fn errors(&self) -> &[f32] {
        &self.errors
    }
}

/// Quantised rows borrowed from a [`QuantizedRows`] or from memory-mapped file sections.
#[derive(Clone, Copy, Debug)]
pub struct QuantizedView<'a> {
    dim: usize,
    rows: usize,
    codes: &'a [u8],
    scales: &'a [f32],
    norms: &'a [f32],
    errors: &'a [f32],
}

impl<'a> QuantizedView<'a> {
    /// Rebuilds a view from the arrays of [`QuantizedRows`], checking every length.
    ///
    /// Values are not checked: corrupt ones may give wrong rankings, but never a panic or
    /// undefined behaviour.
    pub fn from_parts(
        dim: usize,
        rows: usize,
        codes: &'a [u8],
        scales: &'a [f32],
        norms: &'a [f32],
        errors: &'a [f32],
    ) -> Result<Self, String> {
        if dim == 0 {
            return Err("quantised rows: dimension is 0".into());
        }
        if u32::try_from(rows).is_err() {
            return Err(format!(
                "quantised rows: {rows} rows do not fit u32 row ids"
            ));
        }
        let want = code_len(dim, rows).ok_or_else(|| {
            format!("quantised rows: code size for {rows} rows of dimension {dim} overflows")
        })?;
        if codes.len() != want {
            return Err(format!(
                "quantised rows: codes has {} bytes, expected {want} for {rows} rows of dimension {dim}",
                codes.len()
            ));
        }
        for (name, array) in [("scales", scales), ("norms", norms), ("errors", errors)] {
            if array.len() != rows {
                return Err(format!(
                    "quantised rows: {name} has {} values, expected {rows}",
                    array.len()
                ));
            }
        }
        Ok(QuantizedView {
            dim,
            rows,
            codes,
            scales,
            norms,
            errors,
        })
    }

    /// Components per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes of the four arrays.
    pub fn memory_bytes(&self) -> usize {
        self.codes.len() + 4 * (self.scales.len() + self.norms.len() + self.errors.len())
    }

    /// Exact top `k`: the `k` allowed rows with the highest `score(row)`, best first, ties broken
    /// by the lower row id, NaN scores last. Equal to scoring and sorting every allowed row.
    ///
    /// - `score(row)` must be an f32 evaluation of `query · row + bias[row]` (any summation
    ///   order, FMA or not; see the module documentation for the exact contract).
    /// - `bias`: optional per-row additive term (e.g. `−‖x‖²/2` for Euclidean search).
    /// - `allow` is called only for rows whose upper bound could reach the top `k`, at most once
    ///   per row; `score` only for the final candidates.
    ///
    /// # Panics
    ///
    /// If `query.len() != dim` or `bias` does not have one value per row.
    pub fn search(
        &self,
        query: &[f32],
        bias: Option<&[f32]>,
        k: usize,
        allow: &dyn Fn(u32) -> bool,
        score: &dyn Fn(u32) -> f32,
    ) -> Vec<(u32, f32)> {
        self.search_at(Level::detect(), query, bias, k, allow, score)
    }

    fn search_at(
        &self,
        level: Level,
        query: &[f32],
        bias: Option<&[f32]>,
        k: usize,
        allow: &dyn Fn(u32) -> bool,
        score: &dyn Fn(u32) -> f32,
    ) -> Vec<(u32, f32)> {
        assert_eq!(
            query.len(),
            self.dim,
            "query has {} components, rows have {}",
            query.len(),
            self.dim
        );
        if let Some(b) = bias {
            assert_eq!(
                b.len(),
                self.rows,
                "{} bias values for {} rows",
                b.len(),
                self.rows
            );
        }
        if k == 0 || self.rows == 0 {
            return Vec::new();
        }
        let Some(prep) = Prepared::new(query, self.dim) else {
            return self.score_all(k, allow, score);
        };
        let mut phase = Phase1::new(k, self.rows, allow);
        scan(level, self, &prep, bias, &mut phase);
        let t = phase.thr;
        let mut scored: Vec<(u32, f32)> = phase
            .cands
            .into_iter()
            .filter(|&(_, upper)| reaches(upper, t))
            .map(|(row, _)| (row, score(row)))
            .collect();
        top_k(&mut scored, k);
        scored
    }

    /// The fallback: score every allowed row.
    fn score_all(
        &self,
        k: usize,
        allow: &dyn Fn(u32) -> bool,
        score: &dyn Fn(u32) -> f32,
    ) -> Vec<(u32, f32)> {
        // `rows` fits u32 (checked at construction).
        let mut scored: Vec<(u32, f32)> = (0..self.rows as u32)
            .filter(|&r| allow(r))
            .map(|r| (r, score(r)))
            .collect();
        top_k(&mut scored, k);
        scored
    }
}

/// Whether an upper bound can reach threshold `t`: `upper ≥ t`, or `upper` is NaN (a special
/// row or a non-finite bias, which must stay a candidate).
fn reaches(upper: f32, t: f32) -> bool {
    upper >= t || upper.is_nan()
}

/// Result order: higher score first, NaN last, then lower row id.
fn rank(a: &(u32, f32), b: &(u32, f32)) -> Ordering {
    let by_score = match (a.1.is_nan(), b.1.is_nan()) {
        (false, false) => {
            if a.1 > b.1 {
                Ordering::Less
            } else if a.1 < b.1 {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (true, true) => Ordering::Equal,
    };
    by_score.then(a.0.cmp(&b.0))
}

/// Keeps the best `k` of `v` (k ≥ 1), sorted.
fn top_k(v: &mut Vec<(u32, f32)>, k: usize) {
    if v.len() > k {
        v.select_nth_unstable_by(k - 1, rank);
        v.truncate(k);
    }
    v.sort_unstable_by(rank);
}

/// A finite f32 ordered by value (for the heap of lower bounds).
#[derive(Clone, Copy, PartialEq)]
struct Bound(f32);

impl Eq for Bound {}

impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bound {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The query's codes and the constants of the bound (see the module documentation).
struct Prepared {
    /// `d`, padded with zeros to `⌈dim/4⌉ · 4`.
    codes: Vec<i8>,
    /// `−128 · Σ d`: removes the `+128` offset of the row codes from the sums.
    init: i32,
    scale: f32,
    alpha: f32,
    beta: f32,
    h: f32,
}

impl Prepared {
    /// `None` when the query cannot be bounded (non-finite, huge, or `dim > MAX_DIM`).
    fn new(query: &[f32], dim: usize) -> Option<Prepared> {
        if dim > MAX_DIM {
            return None;
        }
        let mut codes = vec![0i8; groups(dim) * 4];
        let q = quantize(query, &mut codes)?;
        if q.norm > HUGE_NORM {
            return None;
        }
        let m = (dim + 1) as f64 * UNIT_ROUNDOFF;
        let eps = m / (1.0 - m) + 32.0 * UNIT_ROUNDOFF;
        // |Σ d| ≤ 127 · 65 536, so neither the sum nor `−128 ·` it overflows.
        let sum: i32 = codes.iter().map(|&c| i32::from(c)).sum();
        Some(Prepared {
            init: -128 * sum,
            scale: q.scale,
            alpha: f32_up((q.err + eps * (q.norm + q.approx_norm)) * (1.0 + eps)),
            beta: f32_up(q.approx_norm * (1.0 + eps) * (1.0 + eps)),
            h: f32_up(eps * (1.0 + eps)),
            codes,
        })
    }

    /// The codes as little-endian i32 words, one per group (the VNNI broadcast operand).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn words(&self) -> Vec<i32> {
        self.codes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]))
            .collect()
    }

    /// The codes widened to i16, each group repeated 4 times (the AVX2 `vpmaddwd` operand).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn pattern(&self) -> Vec<i16> {
        self.codes
            .chunks_exact(4)
            .flat_map(|c| std::iter::repeat_n(c, 4).flatten().map(|&v| i16::from(v)))
            .collect()
    }
}

/// Phase 1 state: the candidates and the `k` largest lower bounds.
struct Phase1<'a> {
    k: usize,
    allow: &'a dyn Fn(u32) -> bool,
    lower: BinaryHeap<Reverse<Bound>>,
    /// The smallest of `lower` once it holds `k` bounds, `−∞` before.
    thr: f32,
    /// Allowed rows whose upper bound reached the threshold of their time, with that bound.
    cands: Vec<(u32, f32)>,
    /// Every offered `(row, upper, lower)`, for the bound tests.
    #[cfg(test)]
    log: Vec<(u32, f32, f32)>,
}

impl<'a> Phase1<'a> {
    fn new(k: usize, rows: usize, allow: &'a dyn Fn(u32) -> bool) -> Self {
        Phase1 {
            k,
            allow,
            lower: BinaryHeap::with_capacity(k.min(rows)),
            thr: f32::NEG_INFINITY,
            cands: Vec::new(),
            #[cfg(test)]
            log: Vec::new(),
        }
    }

    /// A row whose upper bound reached the threshold when its block was checked (kept out of
    /// line: it runs for a few hundred rows of the scan, the hot loop for all of them).
    #[inline(never)]
    fn offer(&mut self, row: u32, upper: f32, lower: f32) {
        #[cfg(test)]
        self.log.push((row, upper, lower));
        // The threshold may have risen since the block was checked. NaN bounds pass.
        if upper < self.thr || !(self.allow)(row) {
            return;
        }
        self.cands.push((row, upper));
        if !(upper.is_finite() && lower.is_finite()) {
            return;
        }
        if self.lower.len() < self.k {
            self.lower.push(Reverse(Bound(lower)));
        } else if lower > self.thr {
            if let Some(mut min) = self.lower.peek_mut() {
                *min = Reverse(Bound(lower));
            }
        } else {
            return;
        }
        if self.lower.len() == self.k {
            if let Some(Reverse(Bound(t))) = self.lower.peek() {
                self.thr = *t;
            }
        }
    }
}

/// The instruction set the scan uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    /// AVX-512F with VNNI.
    #[cfg(target_arch = "x86_64")]
    Vnni,
    /// AVX2 with FMA.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Anything.
    Scalar,
}

impl Level {
    fn detect() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512vnni")
            {
                return Level::Vnni;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Level::Avx2;
            }
        }
        Level::Scalar
    }

    /// Every level this CPU runs (for the tests).
    #[cfg(test)]
    fn available() -> Vec<Level> {
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut v = vec![Level::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                v.push(Level::Avx2);
            }
            if std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512vnni")
            {
                v.push(Level::Vnni);
            }
        }
        v
    }
}

/// Phase 1 at `level`.
fn scan(level: Level, v: &QuantizedView, q: &Prepared, bias: Option<&[f32]>, st: &mut Phase1) {
    match (level, bias) {
        #[cfg(target_arch = "x86_64")]
        (Level::Vnni, _) => {
            let b = bias.unwrap_or(&[]);
            // SAFETY: `Level::Vnni` is only produced after detecting avx512f and avx512vnni.
            // Common dimensions (up to 128) get a kernel unrolled for their group count.
            unsafe {
                match (bias.is_some(), groups(v.dim)) {
                    (true, 8) => x86::scan_vnni::<true, 8>(v, q, b, st),
                    (true, 16) => x86::scan_vnni::<true, 16>(v, q, b, st),
                    (true, 32) => x86::scan_vnni::<true, 32>(v, q, b, st),
                    (true, _) => x86::scan_vnni::<true, 0>(v, q, b, st),
                    (false, 8) => x86::scan_vnni::<false, 8>(v, q, b, st),
                    (false, 16) => x86::scan_vnni::<false, 16>(v, q, b, st),
                    (false, 32) => x86::scan_vnni::<false, 32>(v, q, b, st),
                    (false, _) => x86::scan_vnni::<false, 0>(v, q, b, st),
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Level::Avx2` is only produced after detecting avx2 and fma.
        (Level::Avx2, Some(b)) => unsafe { x86::scan_avx2::<true>(v, q, b, st) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        (Level::Avx2, None) => unsafe { x86::scan_avx2::<false>(v, q, &[], st) },
        (Level::Scalar, Some(b)) => scan_scalar::<true>(v, q, b, st),
        (Level::Scalar, None) => scan_scalar::<false>(v, q, &[], st),
    }
}

/// `out[j] = init + Σ_i codes_j[i] · d[i]` (wrapping) for the 16 rows of one block.
fn block_dots_scalar(codes: &[u8], qcodes: &[i8], init: i32, out: &mut [i32; BLOCK]) {
    out.fill(init);
    for (group, q) in codes.chunks_exact(4 * BLOCK).zip(qcodes.chunks_exact(4)) {
        let q: [i32; 4] = std::array::from_fn(|t| i32::from(q[t]));
        // One group of one row: |sum| ≤ 4 · 255 · 128, no overflow; only the running sums wrap
        // (as the SIMD kernels' do). Written lane-wise so LLVM vectorises over the 16 rows.
        for (acc, c) in out.iter_mut().zip(group.chunks_exact(4)) {
            let s = i32::from(c[0]) * q[0]
                + i32::from(c[1]) * q[1]
                + i32::from(c[2]) * q[2]
                + i32::from(c[3]) * q[3];
            *acc = acc.wrapping_add(s);
        }
    }
}

/// Phase 1 without SIMD (and the reference for the bound arithmetic).
fn scan_scalar<const BIAS: bool>(v: &QuantizedView, q: &Prepared, bias: &[f32], st: &mut Phase1) {
    let stride = groups(v.dim) * 4 * BLOCK;
    let mut dots = [0i32; BLOCK];
    for (b, block) in v.codes.chunks_exact(stride).enumerate() {
        block_dots_scalar(block, &q.codes, q.init, &mut dots);
        let base = b * BLOCK;
        let n = (v.rows - base).min(BLOCK);
        for (j, &dot) in dots[..n].iter().enumerate() {
            let r = base + j;
            let fa = dot as f32 * (v.scales[r] * q.scale);
            let mut rad = TAU;
            let mut c = fa;
            if BIAS {
                rad += q.h * bias[r].abs();
                c += bias[r];
            }
            rad += q.beta * v.errors[r];
            rad += q.alpha * v.norms[r];
            let upper = c + rad;
            if reaches(upper, st.thr) {
                st.offer(r as u32, upper, c - rad);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The AVX2 and AVX-512 VNNI scans. Callers must have detected the features each function
    //! is compiled for; that is what makes calling them sound.

    use super::{groups, Phase1, Prepared, QuantizedView, BLOCK, TAU};
    use std::arch::x86_64::*;

    /// The 16 sums of one block: `init + Σ codes · d` (wrapping), lane `j` for row `j`.
    /// Inlined into the scan, where a constant `words.len()` unrolls it and keeps the query's
    /// broadcasts in registers.
    #[target_feature(enable = "avx512f,avx512vnni")]
    #[inline]
    pub(super) unsafe fn block_dots_vnni(codes: &[u8], words: &[i32], init: i32) -> __m512i {
        assert_eq!(codes.len(), words.len() * 64);
        let p = codes.as_ptr();
        // Four accumulators: `vpdpbusd` has a latency of several cycles.
        let mut acc = [_mm512_setzero_si512(); 4];
        acc[0] = _mm512_set1_epi32(init);
        for (i, &w) in words.iter().enumerate() {
            // SAFETY: group `i < words.len()` lies inside `codes` (asserted above).
            let c = unsafe { _mm512_loadu_si512(p.add(64 * i).cast()) };
            acc[i % 4] = _mm512_dpbusd_epi32(acc[i % 4], c, _mm512_set1_epi32(w));
        }
        _mm512_add_epi32(
            _mm512_add_epi32(acc[0], acc[1]),
            _mm512_add_epi32(acc[2], acc[3]),
        )
    }

    /// Phase 1 with AVX-512: the block sums above, then the bounds of 16 rows at once.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn scan_vnni<const BIAS: bool, const G: usize>(
        v: &QuantizedView,
        q: &Prepared,
        bias: &[f32],
        st: &mut Phase1,
    ) {
        let words = q.words();
        // A constant length (G > 0) lets the kernel unroll.
        let words = if G > 0 { &words[..G] } else { &words[..] };
        let stride = groups(v.dim) * 4 * BLOCK;
        let sq = _mm512_set1_ps(q.scale);
        let alpha = _mm512_set1_ps(q.alpha);
        let beta = _mm512_set1_ps(q.beta);
        let h = _mm512_set1_ps(q.h);
        let tau = _mm512_set1_ps(TAU);
        let mut thr = _mm512_set1_ps(st.thr);
        let mut ub = [0f32; BLOCK];
        let mut lb = [0f32; BLOCK];
        for (b, block) in v.codes.chunks_exact(stride).enumerate() {
            // SAFETY: the features are enabled in this function.
            let dots = unsafe { block_dots_vnni(block, words, q.init) };
            let base = b * BLOCK;
            let n = (v.rows - base).min(BLOCK);
            let lanes: u16 = if n == BLOCK { u16::MAX } else { (1 << n) - 1 };
            // SAFETY: `base < rows` is inside each per-row array; lanes at or past `rows` are
            // masked off, and masked lanes are never read.
            let (sx, nx, ex) = unsafe {
                (
                    _mm512_maskz_loadu_ps(lanes, v.scales.as_ptr().add(base)),
                    _mm512_maskz_loadu_ps(lanes, v.norms.as_ptr().add(base)),
                    _mm512_maskz_loadu_ps(lanes, v.errors.as_ptr().add(base)),
                )
            };
            let fa = _mm512_mul_ps(_mm512_cvtepi32_ps(dots), _mm512_mul_ps(sx, sq));
            let mut rad = tau;
            let mut c = fa;
            if BIAS {
                // SAFETY: as above (`bias.len() == rows`, checked by `search`).
                let bv = unsafe { _mm512_maskz_loadu_ps(lanes, bias.as_ptr().add(base)) };
                rad = _mm512_fmadd_ps(h, _mm512_abs_ps(bv), rad);
                c = _mm512_add_ps(c, bv);
            }
            rad = _mm512_fmadd_ps(beta, ex, rad);
            rad = _mm512_fmadd_ps(alpha, nx, rad);
            let upper = _mm512_add_ps(c, rad);
            // "Not less than" is also true for NaN: special rows always pass.
            let mut hits = _mm512_mask_cmp_ps_mask::<_CMP_NLT_UQ>(lanes, upper, thr);
            if hits != 0 {
                // SAFETY: 16 f32 fit each array.
                unsafe {
                    _mm512_storeu_ps(ub.as_mut_ptr(), upper);
                    _mm512_storeu_ps(lb.as_mut_ptr(), _mm512_sub_ps(c, rad));
                }
                while hits != 0 {
                    let j = hits.trailing_zeros() as usize;
                    hits &= hits - 1;
                    st.offer((base + j) as u32, ub[j], lb[j]);
                }
                thr = _mm512_set1_ps(st.thr);
            }
        }
    }

    /// The 16 sums of one block with AVX2: bytes widened to i16 and multiplied by the query
    /// pattern with `vpmaddwd` (exact: `2 · 255 · 128` fits i32; `vpmaddubsw` would saturate).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block_dots_avx2(
        codes: &[u8],
        pattern: &[i16],
        init: i32,
    ) -> (__m256i, __m256i) {
        assert_eq!(codes.len() * 4, pattern.len() * 16);
        let p = codes.as_ptr();
        let qp = pattern.as_ptr();
        // Accumulator `a[m]` holds rows 4m..4m+4, two partial sums per row.
        let mut a = [_mm256_setzero_si256(); 4];
        for gi in 0..pattern.len() / 16 {
            // SAFETY: group `gi` is inside both slices (asserted above).
            let qv = unsafe { _mm256_loadu_si256(qp.add(16 * gi).cast()) };
            for (m, acc) in a.iter_mut().enumerate() {
                // SAFETY: as above.
                let bytes = unsafe { _mm_loadu_si128(p.add(64 * gi + 16 * m).cast()) };
                let prod = _mm256_madd_epi16(_mm256_cvtepu8_epi16(bytes), qv);
                *acc = _mm256_add_epi32(*acc, prod);
            }
        }
        // hadd gives rows [0 1 4 5 | 2 3 6 7]; swapping the middle 64-bit quarters orders them.
        let lo = _mm256_permute4x64_epi64::<0xD8>(_mm256_hadd_epi32(a[0], a[1]));
        let hi = _mm256_permute4x64_epi64::<0xD8>(_mm256_hadd_epi32(a[2], a[3]));
        let init = _mm256_set1_epi32(init);
        (_mm256_add_epi32(lo, init), _mm256_add_epi32(hi, init))
    }

    /// Masked load of up to 8 f32 from `p` (lanes `>= n` read as 0 and are not accessed).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load8(p: *const f32, n: usize) -> __m256 {
        let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx);
        // SAFETY: the caller guarantees `p[..n]` is readable; masked lanes are not accessed.
        unsafe { _mm256_maskload_ps(p, mask) }
    }

    /// Phase 1 with AVX2, 8 rows at a time.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn scan_avx2<const BIAS: bool>(
        v: &QuantizedView,
        q: &Prepared,
        bias: &[f32],
        st: &mut Phase1,
    ) {
        let pattern = q.pattern();
        let stride = groups(v.dim) * 4 * BLOCK;
        let sq = _mm256_set1_ps(q.scale);
        let alpha = _mm256_set1_ps(q.alpha);
        let beta = _mm256_set1_ps(q.beta);
        let h = _mm256_set1_ps(q.h);
        let tau = _mm256_set1_ps(TAU);
        let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
        let mut ub = [0f32; 8];
        let mut lb = [0f32; 8];
        for (b, block) in v.codes.chunks_exact(stride).enumerate() {
            // SAFETY: the features are enabled in this function.
            let (d0, d1) = unsafe { block_dots_avx2(block, &pattern, q.init) };
            for (half, dots) in [(0, d0), (1, d1)] {
                let base = b * BLOCK + 8 * half;
                if base >= v.rows {
                    break;
                }
                let n = (v.rows - base).min(8);
                // SAFETY: `base < rows`, and `n` lanes from `base` are inside each array.
                let (sx, nx, ex) = unsafe {
                    (
                        load8(v.scales.as_ptr().add(base), n),
                        load8(v.norms.as_ptr().add(base), n),
                        load8(v.errors.as_ptr().add(base), n),
                    )
                };
                let fa = _mm256_mul_ps(_mm256_cvtepi32_ps(dots), _mm256_mul_ps(sx, sq));
                let mut rad = tau;
                let mut c = fa;
                if BIAS {
                    // SAFETY: as above (`bias.len() == rows`).
                    let bv = unsafe { load8(bias.as_ptr().add(base), n) };
                    rad = _mm256_fmadd_ps(h, _mm256_and_ps(bv, abs_mask), rad);
                    c = _mm256_add_ps(c, bv);
                }
                rad = _mm256_fmadd_ps(beta, ex, rad);
                rad = _mm256_fmadd_ps(alpha, nx, rad);
                let upper = _mm256_add_ps(c, rad);
                let thr = _mm256_set1_ps(st.thr);
                let valid = (1u32 << n) - 1;
                let mut hits =
                    _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NLT_UQ>(upper, thr)) as u32 & valid;
                if hits != 0 {
                    // SAFETY: 8 f32 fit each array.
                    unsafe {
                        _mm256_storeu_ps(ub.as_mut_ptr(), upper);
                        _mm256_storeu_ps(lb.as_mut_ptr(), _mm256_sub_ps(c, rad));
                    }
                    while hits != 0 {
                        let j = hits.trailing_zeros() as usize;
                        hits &= hits - 1;
                        st.offer((base + j) as u32, ub[j], lb[j]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// SplitMix64: deterministic test data without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn uniform(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn gauss(&mut self) -> f32 {
            let u1 = self.uniform().max(1e-300);
            let u2 = self.uniform();
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        }
        fn gauss_vec(&mut self, n: usize) -> Vec<f32> {
            (0..n).map(|_| self.gauss()).collect()
        }
    }

    /// The caller's exact score, written independently of the module: a plain left-to-right
    /// f32 dot product plus the bias.
    fn exact(rows: &[f32], dim: usize, query: &[f32], bias: Option<&[f32]>, r: u32) -> f32 {
        let x = &rows[r as usize * dim..][..dim];
        let mut s = 0.0f32;
        for (a, b) in query.iter().zip(x) {
            s += a * b;
        }
        match bias {
            Some(b) => s + b[r as usize],
            None => s,
        }
    }

    /// Brute force: score every allowed row, sort by (score desc, NaN last, id asc), take k.
    fn brute(
        rows: &[f32],
        dim: usize,
        query: &[f32],
        bias: Option<&[f32]>,
        k: usize,
        allow: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let n = rows.len() / dim;
        let mut all: Vec<(u32, f32)> = (0..n as u32)
            .filter(|&r| allow(r))
            .map(|r| (r, exact(rows, dim, query, bias, r)))
            .collect();
        all.sort_by(|a, b| {
            let sa = if a.1.is_nan() { f32::NEG_INFINITY } else { a.1 };
            let sb = if b.1.is_nan() { f32::NEG_INFINITY } else { b.1 };
            // NaN after -inf: compare NaN-ness first.
            a.1.is_nan()
                .cmp(&b.1.is_nan())
                .then(sb.partial_cmp(&sa).unwrap())
                .then(a.0.cmp(&b.0))
        });
        all.truncate(k);
        all
    }

    /// Runs the search at one level and checks it against brute force (bitwise scores).
    #[allow(clippy::too_many_arguments)]
    fn check(
        level: Level,
        view: &QuantizedView,
        rows: &[f32],
        query: &[f32],
        bias: Option<&[f32]>,
        k: usize,
        allow: &dyn Fn(u32) -> bool,
        what: &str,
    ) -> usize {
        let dim = view.dim();
        let calls = Cell::new(0usize);
        let score = |r: u32| {
            calls.set(calls.get() + 1);
            exact(rows, dim, query, bias, r)
        };
        let got = view.search_at(level, query, bias, k, allow, &score);
        let want = brute(rows, dim, query, bias, k, allow);
        let ids = |v: &[(u32, f32)]| v.iter().map(|p| p.0).collect::<Vec<_>>();
        assert_eq!(ids(&got), ids(&want), "{what} at {level:?}");
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g.1.to_bits() == w.1.to_bits() || (g.1.is_nan() && w.1.is_nan()),
                "{what} at {level:?}: score {} vs {}",
                g.1,
                w.1
            );
        }
        calls.get()
    }

    /// Gaussian rows with norms spread over six orders of magnitude.
    fn spread_rows(rng: &mut Rng, n: usize, dim: usize) -> Vec<f32> {
        let mut rows = rng.gauss_vec(n * dim);
        for x in rows.chunks_exact_mut(dim) {
            let s = 10f32.powf(rng.uniform() as f32 * 6.0 - 3.0);
            x.iter_mut().for_each(|v| *v *= s);
        }
        rows
    }

    fn l2_bias(rows: &[f32], dim: usize) -> Vec<f32> {
        rows.chunks_exact(dim)
            .map(|x| -0.5 * x.iter().map(|v| v * v).sum::<f32>())
            .collect()
    }

    /// Integer sums of one block at one level.
    fn block_at(level: Level, codes: &[u8], q: &[i8], init: i32) -> [i32; BLOCK] {
        let mut out = [0i32; BLOCK];
        match level {
            Level::Scalar => block_dots_scalar(codes, q, init, &mut out),
            #[cfg(target_arch = "x86_64")]
            Level::Vnni => {
                let words: Vec<i32> = q
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]))
                    .collect();
                // SAFETY: only called for detected levels; the store fits 16 i32.
                unsafe {
                    let v = x86::block_dots_vnni(codes, &words, init);
                    std::arch::x86_64::_mm512_storeu_si512(out.as_mut_ptr().cast(), v);
                }
            }
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => {
                let pattern: Vec<i16> = q
                    .chunks_exact(4)
                    .flat_map(|c| std::iter::repeat_n(c, 4).flatten().map(|&v| i16::from(v)))
                    .collect();
                // SAFETY: only called for detected levels; the stores fit 2 × 8 i32.
                unsafe {
                    let (lo, hi) = x86::block_dots_avx2(codes, &pattern, init);
                    std::arch::x86_64::_mm256_storeu_si256(out.as_mut_ptr().cast(), lo);
                    std::arch::x86_64::_mm256_storeu_si256(out.as_mut_ptr().add(8).cast(), hi);
                }
            }
        }
        out
    }

    #[test]
    fn block_kernels_are_bit_identical() {
        let mut rng = Rng(1);
        for g in [1usize, 2, 3, 5, 16, 17, 25, 64] {
            for _ in 0..20 {
                // Full u8 and i8 ranges, including sums that wrap: every kernel must agree.
                let codes: Vec<u8> = (0..g * 64).map(|_| rng.next() as u8).collect();
                let q: Vec<i8> = (0..g * 4).map(|_| rng.next() as i8).collect();
                let init = rng.next() as i32;
                let want = block_at(Level::Scalar, &codes, &q, init);
                // Independent reference for the scalar kernel itself (layout: group, row, byte).
                for (j, &w) in want.iter().enumerate() {
                    let mut s = init as i64;
                    for gi in 0..g {
                        for t in 0..4 {
                            s += codes[(gi * BLOCK + j) * 4 + t] as i64 * q[gi * 4 + t] as i64;
                        }
                    }
                    assert_eq!(w, s as i32, "scalar kernel, g = {g}, row {j}");
                }
                for level in Level::available() {
                    assert_eq!(
                        block_at(level, &codes, &q, init),
                        want,
                        "{level:?}, g = {g}"
                    );
                }
            }
        }
    }

    #[test]
    fn layout_dots_match_direct_quantised_dots() {
        // Every row's block sum equals the dot of its own codes (quantised again here) with the
        // query codes, at every level, for odd dims and row counts off the block size.
        let mut rng = Rng(2);
        for dim in [1usize, 3, 17, 64, 100] {
            for n in [1usize, 15, 16, 17, 50] {
                let rows = spread_rows(&mut rng, n, dim);
                let qr = QuantizedRows::build(&rows, dim);
                let v = qr.view();
                let query = rng.gauss_vec(dim);
                let prep = Prepared::new(&query, dim).unwrap();
                let stride = groups(dim) * 4 * BLOCK;
                for level in Level::available() {
                    for r in 0..n {
                        let mut c = vec![0i8; groups(dim) * 4];
                        quantize(&rows[r * dim..][..dim], &mut c).unwrap();
                        let want: i32 = c
                            .iter()
                            .zip(&prep.codes)
                            .map(|(&a, &b)| a as i32 * b as i32)
                            .sum();
                        let block = &v.codes[(r / BLOCK) * stride..][..stride];
                        let got = block_at(level, block, &prep.codes, prep.init)[r % BLOCK];
                        assert_eq!(got, want, "{level:?}, dim {dim}, row {r} of {n}");
                    }
                }
            }
        }
    }

    #[test]
    fn bounds_contain_exact_scores() {
        // Offer every row (k larger than the row count keeps the threshold at -inf) and check
        // L <= score <= U for each, with and without bias, at every level.
        let mut rng = Rng(3);
        for dim in [1usize, 3, 17, 32, 64, 100, 128] {
            let n = 300;
            let mut rows = spread_rows(&mut rng, n, dim);
            // Components exactly halfway between two codes: worst-case rounding.
            for x in rows.chunks_exact_mut(dim).take(20) {
                for (i, v) in x.iter_mut().enumerate() {
                    *v = if i == 0 {
                        127.0
                    } else {
                        (i % 127) as f32 + 0.5
                    };
                }
            }
            let bias_l2 = l2_bias(&rows, dim);
            let bias_rand: Vec<f32> = (0..n).map(|_| rng.gauss() * 100.0).collect();
            let qr = QuantizedRows::build(&rows, dim);
            for _ in 0..5 {
                let query = rng.gauss_vec(dim);
                let prep = Prepared::new(&query, dim).unwrap();
                for bias in [None, Some(&bias_l2[..]), Some(&bias_rand[..])] {
                    for level in Level::available() {
                        let all = |_: u32| true;
                        let mut st = Phase1::new(usize::MAX, n, &all);
                        scan(level, &qr.view(), &prep, bias, &mut st);
                        assert_eq!(st.log.len(), n);
                        for &(r, u, l) in &st.log {
                            let s = exact(&rows, dim, &query, bias, r);
                            assert!(l <= s && s <= u, "{level:?} dim {dim} row {r}: {l} {s} {u}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn search_equals_brute_force() {
        let mut rng = Rng(4);
        for dim in [1usize, 3, 17, 32, 64, 100, 128] {
            for n in [1usize, 37, 700] {
                let rows = spread_rows(&mut rng, n, dim);
                let bias_l2 = l2_bias(&rows, dim);
                let qr = QuantizedRows::build(&rows, dim);
                let v = qr.view();
                for _ in 0..3 {
                    let query = rng.gauss_vec(dim);
                    let every = |_: u32| true;
                    let odd = |r: u32| r % 2 == 1;
                    let rare = |r: u32| r % 100 == 7;
                    let none = |_: u32| false;
                    let filters: [(&dyn Fn(u32) -> bool, &str); 4] = [
                        (&every, "all"),
                        (&odd, "odd"),
                        (&rare, "1%"),
                        (&none, "none"),
                    ];
                    for (allow, fname) in filters {
                        for bias in [None, Some(&bias_l2[..])] {
                            for k in [1usize, 10, 50, n + 5] {
                                for level in Level::available() {
                                    let what = format!(
                                        "dim {dim} n {n} filter {fname} bias {} k {k}",
                                        bias.is_some()
                                    );
                                    check(level, &v, &rows, &query, bias, k, allow, &what);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn duplicates_and_ties_follow_row_order() {
        // 40 distinct vectors, each repeated 25 times in shuffled positions: many exact ties.
        let mut rng = Rng(5);
        let dim = 17;
        let distinct = rng.gauss_vec(40 * dim);
        let n = 1000;
        let mut rows = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let i = rng.below(40);
            rows.extend_from_slice(&distinct[i * dim..][..dim]);
        }
        let qr = QuantizedRows::build(&rows, dim);
        for t in 0..10 {
            // A query equal to one of the rows, and random ones.
            let query = if t == 0 {
                distinct[..dim].to_vec()
            } else {
                rng.gauss_vec(dim)
            };
            for k in [1usize, 5, 24, 25, 26, 60] {
                for level in Level::available() {
                    check(
                        level,
                        &qr.view(),
                        &rows,
                        &query,
                        None,
                        k,
                        &|_| true,
                        "duplicates",
                    );
                }
            }
        }
    }

    #[test]
    fn special_rows_queries_and_biases() {
        let mut rng = Rng(6);
        let dim = 9;
        let n = 120;
        let mut rows = spread_rows(&mut rng, n, dim);
        rows[3 * dim + 2] = f32::NAN;
        rows[10 * dim] = f32::INFINITY;
        rows[11 * dim + 8] = f32::NEG_INFINITY;
        rows[20 * dim..21 * dim].fill(0.0);
        rows[21 * dim..22 * dim].fill(1e30); // norm above 1e18: special
        rows[22 * dim..23 * dim].fill(-3e17); // just below the limit
        rows[23 * dim..24 * dim].fill(1e-40); // subnormal
        rows[24 * dim + 4] = f32::MAX;
        let qr = QuantizedRows::build(&rows, dim);
        assert!(qr.norms()[3].is_infinite() && qr.norms()[21].is_infinite());
        assert!(qr.norms()[22].is_finite());
        let mut bias = l2_bias(&rows, dim);
        bias[40] = f32::NAN;
        bias[41] = f32::INFINITY;
        bias[42] = f32::NEG_INFINITY;
        bias[43] = f32::MAX;
        let mut queries = vec![rng.gauss_vec(dim), vec![0.0; dim], vec![1e-40; dim]];
        queries.push(vec![1e20; dim]); // huge query: falls back to scoring everything
        let mut nan_query = rng.gauss_vec(dim);
        nan_query[0] = f32::NAN;
        queries.push(nan_query);
        let rand_bias: Vec<f32> = (0..n).map(|_| rng.gauss()).collect();
        for query in &queries {
            for b in [None, Some(&bias[..]), Some(&rand_bias[..])] {
                for k in [1usize, 3, 10, n, n + 1] {
                    for level in Level::available() {
                        check(
                            level,
                            &qr.view(),
                            &rows,
                            query,
                            b,
                            k,
                            &|r| r % 3 != 1,
                            "special",
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn trivial_inputs() {
        let empty = QuantizedRows::build(&[], 4);
        assert_eq!(empty.codes().len(), 0);
        let out = empty.view().search(&[1.0; 4], None, 5, &|_| true, &|_| 0.0);
        assert!(out.is_empty());
        let rows = [1.0f32, 2.0, 3.0, 4.0];
        let one = QuantizedRows::build(&rows, 2);
        assert!(one
            .view()
            .search(&[1.0, 0.0], None, 0, &|_| true, &|_| 0.0)
            .is_empty());
        let score = |r: u32| exact(&rows, 2, &[1.0, 0.0], None, r);
        let got = one.view().search(&[1.0, 0.0], None, 9, &|_| true, &score);
        assert_eq!(got, vec![(1, 3.0), (0, 1.0)]);
    }

    #[test]
    fn dimension_beyond_limit_scores_everything() {
        let mut rng = Rng(7);
        let dim = MAX_DIM + 3;
        let n = 5;
        let rows = rng.gauss_vec(n * dim);
        let qr = QuantizedRows::build(&rows, dim);
        let query = rng.gauss_vec(dim);
        let calls = check(
            Level::detect(),
            &qr.view(),
            &rows,
            &query,
            None,
            2,
            &|_| true,
            "big",
        );
        assert_eq!(calls, n);
    }

    #[test]
    fn scan_prunes_clustered_data() {
        // Not a correctness property, but a scan that re-ranks everything would pass every
        // other test: on clustered unit vectors few rows may reach the re-rank or the filter.
        let mut rng = Rng(8);
        let dim = 64;
        let centres = rng.gauss_vec(32 * dim);
        let n = 20_000;
        let mut rows = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let c = rng.below(32);
            let x: Vec<f32> = (0..dim)
                .map(|i| centres[c * dim + i] + 0.5 * rng.gauss())
                .collect();
            let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
            rows.extend(x.iter().map(|v| v / norm));
        }
        let qr = QuantizedRows::build(&rows, dim);
        for _ in 0..5 {
            let query: Vec<f32> = rows[rng.below(n) * dim..][..dim].to_vec();
            let allowed = Cell::new(0usize);
            let allow = |_: u32| {
                allowed.set(allowed.get() + 1);
                true
            };
            for level in Level::available() {
                allowed.set(0);
                let scored = check(level, &qr.view(), &rows, &query, None, 10, &allow, "prune");
                assert!(scored < n / 20, "{level:?}: {scored} rows re-ranked");
                // `check`'s brute force calls `allow` n more times.
                assert!(
                    allowed.get() - n < n / 10,
                    "{level:?}: {} allow calls",
                    allowed.get()
                );
            }
        }
    }

    #[test]
    fn from_parts_checks_lengths() {
        let mut rng = Rng(9);
        let (dim, n) = (5, 21);
        let rows = rng.gauss_vec(n * dim);
        let qr = QuantizedRows::build(&rows, dim);
        let (c, s, no, e) = (qr.codes(), qr.scales(), qr.norms(), qr.errors());
        assert_eq!(c.len(), 32 * 8);
        let v = QuantizedView::from_parts(dim, n, c, s, no, e).unwrap();
        let query = rng.gauss_vec(dim);
        for level in Level::available() {
            check(level, &v, &rows, &query, None, 4, &|_| true, "from_parts");
        }
        let short = &c[..c.len() - 1];
        let err = |r: Result<QuantizedView, String>| r.unwrap_err();
        assert!(err(QuantizedView::from_parts(dim, n, short, s, no, e)).contains("codes"));
        assert!(err(QuantizedView::from_parts(dim, n, c, &s[1..], no, e)).contains("scales"));
        assert!(err(QuantizedView::from_parts(dim, n, c, s, &no[1..], e)).contains("norms"));
        assert!(err(QuantizedView::from_parts(dim, n, c, s, no, &e[1..])).contains("errors"));
        assert!(err(QuantizedView::from_parts(0, n, c, s, no, e)).contains("dimension"));
        assert!(err(QuantizedView::from_parts(dim + 4, n, c, s, no, e)).contains("codes"));
        assert!(err(QuantizedView::from_parts(dim, n + 1, c, s, no, e)).contains("scales"));
        assert!(err(QuantizedView::from_parts(dim, n + 16, c, s, no, e)).contains("codes"));
        assert!(err(QuantizedView::from_parts(usize::MAX, 1 << 31, c, s, no, e)).contains("over"));
        assert!(err(QuantizedView::from_parts(dim, usize::MAX, c, s, no, e)).contains("u32"));
    }

    #[test]
    fn corrupt_values_do_not_panic() {
        let mut rng = Rng(10);
        let (dim, n) = (7, 40);
        let rows = rng.gauss_vec(n * dim);
        let codes: Vec<u8> = (0..code_len(dim, n).unwrap())
            .map(|_| rng.next() as u8)
            .collect();
        let junk = [f32::NAN, -1.0, f32::INFINITY, 0.0, f32::MAX, -f32::MAX];
        let vals = |rng: &mut Rng| (0..n).map(|_| junk[rng.below(junk.len())]).collect();
        let (s, no, e): (Vec<f32>, Vec<f32>, Vec<f32>) =
            (vals(&mut rng), vals(&mut rng), vals(&mut rng));
        let v = QuantizedView::from_parts(dim, n, &codes, &s, &no, &e).unwrap();
        let query = rng.gauss_vec(dim);
        for level in Level::available() {
            let out = v.search_at(level, &query, None, 5, &|_| true, &|r| {
                exact(&rows, dim, &query, None, r)
            });
            // Wrong bounds may drop rows; the point is that nothing panics.
            assert!(out.len() <= 5);
        }
    }
}
