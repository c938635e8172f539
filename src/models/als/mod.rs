//! Implicit-feedback alternating least squares (Hu, Koren & Volinsky 2008) solved with the
//! conjugate-gradient method of Takács, Pilászy & Tikk (2011), as in the Python `implicit`
//! library's `AlternatingLeastSquares(use_cg=True)`.
//!
//! Every stored entry of the items × users matrix is a preference `p = 1` with confidence
//! `c = 1 + alpha * value`; missing entries are preferences `0` with confidence `1`. Each
//! iteration fixes the item factors `Y` and improves every user factor `x_u` by `cg_steps`
//! conjugate-gradient steps (warm-started from the current `x_u`) on the normal equations
//!
//! ```text
//! (YᵀY + λI + Σ_{j ∈ u} (c_uj − 1) y_j y_jᵀ) x_u = Σ_{j ∈ u} c_uj y_j
//! ```
//!
//! and then does the same for the items with the roles swapped. `YᵀY` is computed once per
//! half-iteration; the per-row sums are never formed as matrices, so a CG step costs one dot
//! product and one axpy per stored entry plus one `f × f` matrix-vector product per row.
//!
//! Everything is `f32` and parallel (rayon). Results are deterministic for a given seed and CPU
//! whatever the number of threads: rows are solved independently and `YᵀY` is summed over
//! fixed chunks in a fixed order. On x86-64 CPUs with AVX2, FMA and F16C the solver runs a copy
//! of the kernels compiled for those features (chosen at run time), so factors computed on a CPU
//! with and one without those features differ slightly. That copy, when the factors are a
//! multiple of 32, gathers the fixed side's rows from a half-precision copy of them made at
//! the start of each half-iteration: a row of 32 factors is then one cache line instead of
//! two, and the gathers (which wait on memory, not arithmetic) take 10–15% less of ALS's time
//! at ml-latest's size; the products and sums stay `f32`, and `YᵀY` is computed from the `f32`
//! factors. Rounding to half precision moves a factor by at most 2⁻¹¹ of itself, far below
//! what the model's quality can see (docs/BENCHMARKS.md, docs/EVALUATION.md).
//!
//! Rows without entries (items nobody rated, users without ratings) get all-zero factors;
//! [`train_embeddings`], which turns the item factors into movierec's ALS model, then places
//! unrated movies by their content neighbours as the SVD model does.
//!
//! Written here rather than taken from a crate: no maintained Rust crate offers implicit ALS with
//! a CG solver, and the speed target (64 factors, 15 iterations over 33.8M ratings in well under
//! implicit's 87.6 s on two cores) needed hand-written AVX2/FMA kernels (docs/BENCHMARKS.md).

use super::{ModelKind, TrainedModel};
use crate::embeddings::ItemEmbeddings;
use crate::interactions::RatingMatrix;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Sparse matrix in compressed rows: row `r` spans `indptr[r]..indptr[r + 1]` of `cols` and
/// `values`.
#[derive(Clone, Copy, Debug)]
pub struct Csr<'a> {
    /// Number of columns; every entry of `cols` is below it.
    pub n_cols: usize,
    /// Row boundaries: `n_rows + 1` non-decreasing offsets starting at 0 and ending at `cols.len()`.
    pub indptr: &'a [usize],
    /// Column of each stored entry.
    pub cols: &'a [u32],
    /// Value of each stored entry.
    pub values: &'a [f32],
}

impl Csr<'_> {
    /// Number of rows (`indptr.len() - 1`).
    pub fn n_rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.cols.len()
    }

    /// Checks the structure: `indptr` shape and monotonicity, matching lengths and column bounds.
    pub fn validate(&self) -> Result<(), String> {
        let indptr = self.indptr;
        if indptr.is_empty() {
            return Err("CSR indptr must have n_rows + 1 entries, got an empty slice".into());
        }
        if indptr[0] != 0 {
            return Err(format!("CSR indptr[0] must be 0, got {}", indptr[0]));
        }
        if self.cols.len() != self.values.len() {
            return Err(format!(
                "CSR cols and values differ in length ({} vs {})",
                self.cols.len(),
                self.values.len()
            ));
        }
        let last = indptr[indptr.len() - 1];
        if last != self.cols.len() {
            return Err(format!(
                "CSR indptr ends at {last} but there are {} entries",
                self.cols.len()
            ));
        }
        if let Some(r) = indptr.par_windows(2).position_any(|w| w[0] > w[1]) {
            return Err(format!("CSR indptr decreases at row {r}"));
        }
        let n_cols = self.n_cols;
        if let Some(k) = self.cols.par_iter().position_any(|&c| c as usize >= n_cols) {
            return Err(format!(
                "CSR column {} of entry {k} (row {}) is out of range (n_cols = {n_cols})",
                self.cols[k],
                row_of(indptr, k)
            ));
        }
        Ok(())
    }
}

/// Row holding entry `k` (for error messages).
fn row_of(indptr: &[usize], k: usize) -> usize {
    indptr.partition_point(|&p| p <= k).saturating_sub(1)
}

/// A [`Csr`] that owns its arrays (the result of [`transpose`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CsrOwned {
    /// Number of columns.
    pub n_cols: usize,
    /// Row boundaries, `n_rows + 1` entries.
    pub indptr: Vec<usize>,
    /// Column of each stored entry.
    pub cols: Vec<u32>,
    /// Value of each stored entry.
    pub values: Vec<f32>,
}

impl CsrOwned {
    /// Borrowed view.
    pub fn view(&self) -> Csr<'_> {
        Csr {
            n_cols: self.n_cols,
            indptr: &self.indptr,
            cols: &self.cols,
            values: &self.values,
        }
    }
}

/// Splits rows `0..n` into contiguous ranges of roughly equal cost, where a row costs its number
/// of entries plus `row_cost`. Only balances work; results never depend on the split.
fn split_rows(indptr: &[usize], row_cost: usize, n_tasks: usize) -> Vec<(usize, usize)> {
    let n = indptr.len().saturating_sub(1);
    if n == 0 {
        return Vec::new();
    }
    let total = indptr[n] - indptr[0] + row_cost * n;
    let target = total.div_ceil(n_tasks.max(1)).max(1);
    let mut out = Vec::with_capacity(n_tasks + 1);
    let (mut start, mut acc) = (0, 0);
    for r in 0..n {
        acc += indptr[r + 1] - indptr[r] + row_cost;
        if acc >= target {
            out.push((start, r + 1));
            start = r + 1;
            acc = 0;
        }
    }
    if start < n {
        out.push((start, n));
    }
    out
}

/// Transposes a (structurally valid, see [`Csr::validate`]) matrix in parallel in O(nnz).
/// Within each output row the entries are ordered by their original row.
///
/// # Panics
/// If the matrix has more than `u32::MAX + 1` rows (row ids become `u32` columns), or if the
/// structure is invalid.
pub fn transpose(m: Csr<'_>) -> CsrOwned {
    transpose_in_order(m, None)
}

/// [`transpose`] of the matrix whose row `k` is row `order[k]` of `m` (`order` a permutation of
/// its rows; `None`: the identity): output column `k` is that row, and within each output row
/// the entries are ordered by `k`. Renumbering rows this way costs nothing beyond the
/// transpose, where permuting first would cost another.
fn transpose_in_order(m: Csr<'_>, order: Option<&[u32]>) -> CsrOwned {
    let n_rows = m.n_rows();
    let n_cols = m.n_cols;
    let nnz = m.nnz();
    assert!(
        n_rows <= u32::MAX as usize + 1,
        "too many rows to transpose into u32 columns"
    );
    if let Some(order) = order {
        assert_eq!(order.len(), n_rows, "the order must name every row once");
    }
    let row = |k: usize| order.map_or(k, |o| o[k] as usize);
    // Where row `k` of the order ends, counted in entries (the identity's is `m.indptr`).
    let permuted;
    let ends: &[usize] = match order {
        None => m.indptr,
        Some(order) => {
            permuted = std::iter::once(0)
                .chain(order.iter().scan(0, |end, &r| {
                    *end += m.indptr[r as usize + 1] - m.indptr[r as usize];
                    Some(*end)
                }))
                .collect::<Vec<usize>>();
            &permuted
        }
    };
    let ranges = split_rows(ends, 1, 4 * rayon::current_num_threads());
    // Per chunk: count entries per column, then turn the counts into write offsets.
    let mut offsets: Vec<Vec<usize>> = ranges
        .par_iter()
        .map(|&(a, b)| {
            let mut c = vec![0usize; n_cols];
            for k in a..b {
                let r = row(k);
                for &col in &m.cols[m.indptr[r]..m.indptr[r + 1]] {
                    c[col as usize] += 1;
                }
            }
            c
        })
        .collect();
    let mut indptr = vec![0usize; n_cols + 1];
    for col in 0..n_cols {
        let mut run = indptr[col];
        for chunk in offsets.iter_mut() {
            let count = chunk[col];
            chunk[col] = run;
            run += count;
        }
        indptr[col + 1] = run;
    }
    // Each (chunk, column) owns a disjoint slot range, so relaxed atomic stores (plain moves on
    // x86) suffice; the join at the end of the parallel loop orders them before the reads.
    // Zeroed by the allocator, as `interactions::atomics` takes them, but plain arrays seen as
    // atomics for the scatter: turning atomics back into plain values is a pass over each
    // array (0.2–0.3 s more of ALS's set-up at 33.9M entries, measured).
    let mut out_cols = vec![0u32; nnz];
    let mut out_vals = vec![0f32; nnz];
    {
        let (cols_at, vals_at) = (atomic_u32s(&mut out_cols), atomic_u32s(&mut out_vals));
        ranges
            .par_iter()
            .zip(offsets.par_iter_mut())
            .for_each(|(&(a, b), offs)| {
                for k in a..b {
                    let r = row(k);
                    for e in m.indptr[r]..m.indptr[r + 1] {
                        let c = m.cols[e] as usize;
                        let pos = offs[c];
                        offs[c] = pos + 1;
                        cols_at[pos].store(k as u32, Ordering::Relaxed);
                        vals_at[pos].store(m.values[e].to_bits(), Ordering::Relaxed);
                    }
                }
            });
    }
    CsrOwned {
        n_cols: n_rows,
        indptr,
        cols: out_cols,
        values: out_vals,
    }
}

/// A slice of 4-byte plain values seen as atomics, so that threads can store into disjoint
/// places of it (relaxed stores: plain moves on x86).
fn atomic_u32s<T: bytemuck::Pod>(values: &mut [T]) -> &[AtomicU32] {
    assert_eq!(std::mem::size_of::<T>(), 4);
    assert_eq!(std::mem::align_of::<T>(), 4);
    // SAFETY: `AtomicU32` has the size, alignment and bit validity of `u32`, hence of any
    // 4-byte `Pod` with 4-byte alignment (checked above), and every bit pattern is a valid `T`.
    // The exclusive borrow of `values` is held for the returned lifetime, so nothing else reads
    // or writes them meanwhile.
    unsafe { std::slice::from_raw_parts(values.as_mut_ptr() as *const AtomicU32, values.len()) }
}

/// Hyper-parameters of [`train`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlsParams {
    /// Number of latent factors (≥ 1).
    pub factors: usize,
    /// Number of alternating iterations (users then items); 0 returns the random start.
    pub iterations: usize,
    /// L2 regularisation λ (finite, ≥ 0).
    pub regularization: f32,
    /// Confidence scale: `c = 1 + alpha * value` (finite, ≥ 0).
    pub alpha: f32,
    /// Conjugate-gradient steps per row and half-iteration (≥ 1).
    pub cg_steps: usize,
    /// Seed of the random initial factors.
    pub seed: u64,
}

impl Default for AlsParams {
    /// The setting `movierec evaluate` chose on the bundled data (docs/EVALUATION.md).
    fn default() -> Self {
        Self {
            factors: 32,
            iterations: 15,
            regularization: 0.01,
            alpha: 1.0,
            cg_steps: 3,
            seed: 42,
        }
    }
}

/// The ALS model in the [`super::REGISTRY`]: unrated movies borrow the position of their content
/// neighbours, so it reads the content model.
pub struct Als;

impl super::Model for Als {
    fn kind(&self) -> ModelKind {
        ModelKind::Als
    }
    fn shape(&self) -> super::ModelShape {
        super::ModelShape::Embeddings
    }
    fn fit(&self, input: &super::FitInput<'_>) -> crate::Result<super::Fitted> {
        let content = input.embeddings(ModelKind::Content)?;
        let model = train_embeddings(input.matrix, content, &input.settings.als, input.progress)?;
        Ok(super::Fitted::Embeddings(model))
    }
}

impl AlsParams {
    /// Checks the parameters; the error names the offending one.
    pub fn validate(&self) -> Result<(), String> {
        if self.factors == 0 {
            return Err("ALS parameter `factors` must be at least 1, got 0".into());
        }
        if self.cg_steps == 0 {
            return Err("ALS parameter `cg_steps` must be at least 1, got 0".into());
        }
        if !(self.regularization.is_finite() && self.regularization >= 0.0) {
            return Err(format!(
                "ALS parameter `regularization` must be finite and >= 0, got {}",
                self.regularization
            ));
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(format!(
                "ALS parameter `alpha` must be finite and >= 0, got {}",
                self.alpha
            ));
        }
        Ok(())
    }
}

/// Trained factors.
#[derive(Clone, Debug, PartialEq)]
pub struct AlsFactors {
    /// Number of factors per row.
    pub factors: usize,
    /// Item factors, `n_items × factors`, row-major (items are the rows of the training matrix).
    pub item_factors: Vec<f32>,
    /// User factors, `n_users × factors`, row-major (users are its columns).
    pub user_factors: Vec<f32>,
}

/// Trains implicit ALS on an items × users matrix of non-negative values (confidence
/// `c = 1 + alpha * value` for every stored entry). `progress` is called after every iteration
/// with the number of iterations done and the training loss, which is not computed (always NaN).
///
/// Errors (with a message naming the problem) on invalid parameters, a malformed matrix, or a
/// value that is negative, NaN or infinite.
pub fn train(
    item_users: Csr<'_>,
    params: &AlsParams,
    progress: &mut dyn FnMut(usize, f32),
) -> Result<AlsFactors, String> {
    train_with(item_users, params, progress, STREAM_MIN_BYTES)
}

/// Trains ALS on the rating matrix (the rating is the confidence value) and returns the item
/// factors as the `als` model; `content` places movies without ratings. Each iteration done is
/// counted in `progress`.
pub fn train_embeddings(
    matrix: &RatingMatrix,
    content: &ItemEmbeddings,
    params: &AlsParams,
    progress: &crate::progress::Stage,
) -> crate::Result<TrainedModel> {
    let csr = Csr {
        n_cols: matrix.n_users(),
        indptr: &matrix.indptr,
        cols: &matrix.users,
        values: &matrix.values,
    };
    progress.set_total(params.iterations as u64);
    let factors = train(csr, params, &mut |_, _| progress.inc(1))
        .map_err(|message| crate::Error::invalid("als", message))?;
    let mut data = factors.item_factors;
    let unrated = super::svd::fill_unrated(&mut data, params.factors, matrix, content);
    Ok(TrainedModel {
        kind: ModelKind::Als,
        embeddings: ItemEmbeddings::new(params.factors, data)?,
        details: serde_json::json!({
            "method": "implicit-feedback ALS, conjugate gradient; confidence 1 + alpha · rating",
            "params": params,
            "users": matrix.n_users(),
            "ratings": matrix.nnz(),
            "unrated_movies_from_content": unrated,
        }),
    })
}

/// [`train`] with the streaming threshold as a parameter (tests force either path).
fn train_with(
    item_users: Csr<'_>,
    params: &AlsParams,
    progress: &mut dyn FnMut(usize, f32),
    stream_min_bytes: usize,
) -> Result<AlsFactors, String> {
    params.validate()?;
    item_users.validate()?;
    if let Some(k) = item_users
        .values
        .par_iter()
        .position_any(|v| !(v.is_finite() && *v >= 0.0))
    {
        return Err(format!(
            "ALS values must be finite and >= 0, but the value of entry {k} (item row {}, user {}) is {}",
            row_of(item_users.indptr, k),
            item_users.cols[k],
            item_users.values[k]
        ));
    }
    let n_items = item_users.n_rows();
    let n_users = item_users.n_cols;
    if n_items > u32::MAX as usize + 1 {
        return Err(format!("ALS supports at most 2^32 items, got {n_items}"));
    }
    let f = params.factors;
    let too_big =
        || format!("ALS factor matrices too large ({n_items} items, {n_users} users, {f} factors)");
    let item_len = n_items.checked_mul(f).ok_or_else(too_big)?;
    let user_len = n_users.checked_mul(f).ok_or_else(too_big)?;

    // Internally, items and users are renumbered by decreasing number of entries, so the
    // factor rows read most often are contiguous (far fewer cache and TLB misses).
    let Relabeled {
        item_users: items,
        user_items: users,
        item_of_new,
        user_of_new,
    } = relabel(item_users);
    let mut item_factors = random_factors(item_len, params.seed, 0x1739_e5b6_0d6f_a2c1);
    let mut user_factors = random_factors(user_len, params.seed, 0x7f4a_7c15_9e37_79b9);
    // A row's fixed cost (the f × f products) is about f / 2 entries' worth of work.
    let n_tasks = 64 * rayon::current_num_threads();
    let user_tasks = split_rows(&users.indptr, f / 2 + 1, n_tasks);
    let kernel = Kernel::detect();
    // Items whose users' factors overflow L2 are solved by streaming (they are a prefix).
    let n_head = items
        .indptr
        .windows(2)
        .take_while(|w| w[1] > w[0] && (w[1] - w[0]) * f * 4 > stream_min_bytes)
        .count();
    let plan = StreamPlan::new(
        items.view(),
        users.view(),
        n_head,
        2 * rayon::current_num_threads(),
    );
    let item_tasks = split_rows(&items.indptr[n_head..], f / 2 + 1, n_tasks)
        .into_iter()
        .map(|(a, b)| (a + n_head, b + n_head))
        .collect::<Vec<_>>();
    let mut half_items = HalfRows::new(kernel, item_len, f);
    let mut half_users = HalfRows::new(kernel, user_len, f);
    for it in 0..params.iterations {
        solve_half(
            users.view(),
            &item_factors,
            &mut user_factors,
            &user_tasks,
            params,
            kernel,
            &mut half_items,
        );
        solve_half_items(
            users.view(),
            items.view(),
            &user_factors,
            &mut item_factors,
            &plan,
            &item_tasks,
            params,
            kernel,
            &mut half_users,
        );
        progress(it + 1, f32::NAN);
    }
    drop((items, users));
    let item_factors = unpermute(&item_factors, &item_of_new, f);
    let user_factors = unpermute(&user_factors, &user_of_new, f);
    Ok(AlsFactors {
        factors: f,
        item_factors,
        user_factors,
    })
}

/// Training matrices in internal numbering (see [`relabel`]).
struct Relabeled {
    item_users: CsrOwned,
    user_items: CsrOwned,
    /// Original id of each internal item.
    item_of_new: Vec<u32>,
    /// Original id of each internal user.
    user_of_new: Vec<u32>,
}

/// Renumbers items and users by decreasing number of entries (ties by id) and builds both
/// orientations with sorted rows. Two parallel transposes, O(nnz): the first reads the items in
/// their new order, so its rows (the users) come out sorted by new item.
fn relabel(item_users: Csr<'_>) -> Relabeled {
    let n_items = item_users.n_rows();
    let n_users = item_users.n_cols;
    let order = crate::interactions::most_counted_first;
    let item_counts: Vec<usize> = item_users.indptr.windows(2).map(|w| w[1] - w[0]).collect();
    let (item_of_new, _) = order(&item_counts);
    let user_counts = transpose_counts(item_users);
    let (user_of_new, new_user) = order(&user_counts);
    let renamed: Vec<u32> = item_users
        .cols
        .par_iter()
        .map(|&c| new_user[c as usize])
        .collect();
    // Rows: users in new order (the columns were renamed); columns: items in new order.
    let users_out = transpose_in_order(
        Csr {
            cols: &renamed,
            ..item_users
        },
        Some(&item_of_new),
    );
    drop(renamed);
    let mut items_out = transpose(users_out.view());
    items_out.n_cols = n_users;
    debug_assert_eq!(items_out.indptr.len(), n_items + 1);
    Relabeled {
        item_users: items_out,
        user_items: users_out,
        item_of_new,
        user_of_new,
    }
}

/// Number of entries per column.
fn transpose_counts(m: Csr<'_>) -> Vec<usize> {
    m.cols
        .par_chunks(1 << 20)
        .fold(
            || vec![0usize; m.n_cols],
            |mut acc, chunk| {
                for &c in chunk {
                    acc[c as usize] += 1;
                }
                acc
            },
        )
        .reduce(
            || vec![0usize; m.n_cols],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(&b) {
                    *x += y;
                }
                a
            },
        )
}

/// Rows back in original order: row `of_new[k]` of the result is row `k` of `v`.
fn unpermute(v: &[f32], of_new: &[u32], f: usize) -> Vec<f32> {
    let mut new_of = vec![0u32; of_new.len()];
    for (new, &old) in of_new.iter().enumerate() {
        new_of[old as usize] = new as u32;
    }
    let mut out = vec![0f32; v.len()];
    out.par_chunks_mut(f.max(1))
        .zip(new_of.par_iter())
        .for_each(|(row, &k)| row.copy_from_slice(&v[k as usize * f..][..f]));
    out
}

/// `len` values uniform in `[0, 0.01)`, a pure function of `(seed, stream, index)`.
fn random_factors(len: usize, seed: u64, stream: u64) -> Vec<f32> {
    let key = crate::rng::splitmix64(seed ^ stream);
    let mut v = vec![0f32; len];
    v.par_iter_mut().enumerate().for_each(|(i, x)| {
        let bits = crate::rng::splitmix64(key ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        *x = (bits >> 40) as f32 * (1.0 / (1u64 << 24) as f32) * 0.01;
    });
    v
}

/// Rows of `YᵀY` summed per chunk of this many rows, chunks summed in order (deterministic).
const GRAM_CHUNK_ROWS: usize = 2048;

/// `YᵀY + λI` (`f × f`, row-major).
fn gram(y: &[f32], f: usize, reg: f32, kernel: Kernel) -> Vec<f32> {
    let partials: Vec<Vec<f32>> = y
        .par_chunks(GRAM_CHUNK_ROWS * f)
        .map(|chunk| {
            let mut g = vec![0f32; f * f];
            kernel.gram_acc(chunk, f, &mut g);
            g
        })
        .collect();
    let mut g = vec![0f32; f * f];
    for p in &partials {
        for (a, b) in g.iter_mut().zip(p) {
            *a += b;
        }
    }
    for i in 0..f {
        g[i * f + i] += reg;
    }
    g
}

/// Everything a row solve reads.
struct SolveCtx<'a> {
    m: Csr<'a>,
    alpha: f32,
    /// The fixed side's factors, `m.n_cols × f`.
    y: &'a [f32],
    /// `YᵀY + λI`.
    g: &'a [f32],
    f: usize,
    cg_steps: usize,
    /// `y` in half precision, which the AVX2 kernels gather instead when present.
    half: Option<&'a [kernels::HalfLine]>,
}

/// The buffer of one side's half-precision copy ([`SolveCtx::half`]), allocated once per
/// training; empty when the kernel gathers `f32` rows.
struct HalfRows(Vec<kernels::HalfLine>);

impl HalfRows {
    /// For `len` factors (`f` a row) solved with `kernel`.
    fn new(kernel: Kernel, len: usize, f: usize) -> HalfRows {
        HalfRows(match kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma(_) if f.is_multiple_of(32) => {
                vec![kernels::HalfLine([0; 32]); len / 32]
            }
            _ => Vec::new(),
        })
    }

    /// `y` copied in, if the kernel reads a copy.
    fn of(&mut self, kernel: Kernel, y: &[f32]) -> Option<&[kernels::HalfLine]> {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma(token) if !self.0.is_empty() => {
                token.to_half(y, &mut self.0);
                Some(&self.0)
            }
            _ => None,
        }
    }
}

/// One half-iteration: improves every row of `x` (one per row of `m`) given the fixed `y`.
fn solve_half(
    m: Csr<'_>,
    y: &[f32],
    x: &mut [f32],
    tasks: &[(usize, usize)],
    params: &AlsParams,
    kernel: Kernel,
    half: &mut HalfRows,
) {
    let g = gram(y, params.factors, params.regularization, kernel);
    solve_rows_with(m, y, &g, x, tasks, params, kernel, half.of(kernel, y));
}

/// [`solve_half`] with `YᵀY + λI` given; `tasks` are row ranges covering `x` from its start.
#[allow(clippy::too_many_arguments)]
fn solve_rows_with(
    m: Csr<'_>,
    y: &[f32],
    g: &[f32],
    x: &mut [f32],
    tasks: &[(usize, usize)],
    params: &AlsParams,
    kernel: Kernel,
    half: Option<&[kernels::HalfLine]>,
) {
    let f = params.factors;
    let ctx = SolveCtx {
        m,
        alpha: params.alpha,
        y,
        g,
        f,
        cg_steps: params.cg_steps,
        half,
    };
    let mut pieces = Vec::with_capacity(tasks.len());
    let mut rest = &mut x[tasks.first().map_or(0, |t| t.0) * f..];
    for &(a, b) in tasks {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut((b - a) * f);
        pieces.push((a, head));
        rest = tail;
    }
    pieces
        .into_par_iter()
        .for_each(|(first, xs)| kernel.solve_rows(&ctx, first, xs));
}

/// Items whose users' factors take more bytes than this are solved by [`solve_half_items`]'s
/// streaming passes rather than row by row.
const STREAM_MIN_BYTES: usize = 1 << 20;

/// A run of one user's entries inside one item range (see [`StreamPlan`]).
#[derive(Clone, Copy, Debug)]
struct Span {
    user: u32,
    len: u32,
    start: usize,
}

/// How the item half is split for [`solve_half_streaming`]: contiguous item ranges of similar
/// size, and for each range the users with entries in it, with where those entries are.
struct StreamPlan {
    ranges: Vec<(usize, usize)>,
    spans: Vec<Vec<Span>>,
}

impl StreamPlan {
    /// `items` and `users` are the two orientations of the same matrix, rows sorted.
    fn new(items: Csr<'_>, users: Csr<'_>, n_head: usize, n_ranges: usize) -> Self {
        let ranges = if n_head == 0 {
            Vec::new()
        } else {
            split_rows(&items.indptr[..=n_head], 1, n_ranges)
        };
        let spans = ranges
            .par_iter()
            .map(|&(a, b)| {
                let mut out = Vec::new();
                for u in 0..users.n_rows() {
                    let (s, e) = (users.indptr[u], users.indptr[u + 1]);
                    let row = &users.cols[s..e];
                    let lo = row.partition_point(|&c| (c as usize) < a);
                    let hi = row.partition_point(|&c| (c as usize) < b);
                    if hi > lo {
                        out.push(Span {
                            user: u as u32,
                            len: (hi - lo) as u32,
                            start: s + lo,
                        });
                    }
                }
                out
            })
            .collect();
        Self { ranges, spans }
    }
}

/// Context of [`solve_half_streaming`].
struct StreamCtx<'a> {
    /// Users × items, rows sorted.
    users: Csr<'a>,
    /// Row boundaries of the items × users matrix (to find empty items).
    item_indptr: &'a [usize],
    alpha: f32,
    /// User factors.
    y: &'a [f32],
    /// `YᵀY + λI` of the user factors.
    g: &'a [f32],
    f: usize,
    cg_steps: usize,
}

/// Item half-iteration computed with the same CG iteration as [`solve_half`] but with the
/// passes over entries made user by user: each task owns a range of items, keeps their CG
/// vectors, and streams through the user factors once per pass instead of gathering each
/// item's users (which, for popular items, do not fit in cache between the passes).
#[allow(clippy::too_many_arguments)]
fn solve_half_items(
    users: Csr<'_>,
    items: Csr<'_>,
    y: &[f32],
    x: &mut [f32],
    plan: &StreamPlan,
    tail_tasks: &[(usize, usize)],
    params: &AlsParams,
    kernel: Kernel,
    half: &mut HalfRows,
) {
    let f = params.factors;
    let g = gram(y, f, params.regularization, kernel);
    let half = half.of(kernel, y);
    solve_rows_with(items, y, &g, x, tail_tasks, params, kernel, half);
    let ctx = StreamCtx {
        users,
        item_indptr: items.indptr,
        alpha: params.alpha,
        y,
        g: &g,
        f,
        cg_steps: params.cg_steps,
    };
    let mut pieces = Vec::with_capacity(plan.ranges.len());
    let mut rest = x;
    for (&(a, b), spans) in plan.ranges.iter().zip(&plan.spans) {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut((b - a) * f);
        pieces.push((a, spans, head));
        rest = tail;
    }
    pieces
        .into_par_iter()
        .for_each(|(a, spans, xs)| kernel.solve_range(&ctx, a, spans, xs));
}

/// Which compiled copy of the kernels to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// Plain Rust (other architectures; tests).
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    Scalar,
    /// SSE2 intrinsics, part of the x86-64 baseline.
    #[cfg(target_arch = "x86_64")]
    Sse2,
    /// AVX2 + FMA intrinsics; holds the token proving the CPU has them.
    #[cfg(target_arch = "x86_64")]
    Avx2Fma(kernels::Avx2Fma),
}

static FORCE_PORTABLE: AtomicBool = AtomicBool::new(false);

/// Benchmarking/testing knob: when `true`, [`train`] uses the baseline-target kernels (SSE2 on
/// x86-64) even on CPUs with AVX2 and FMA.
#[doc(hidden)]
pub fn set_force_portable_kernels(on: bool) {
    FORCE_PORTABLE.store(on, Ordering::Relaxed);
}

impl Kernel {
    /// The fastest kernels this CPU supports.
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if !FORCE_PORTABLE.load(Ordering::Relaxed) {
                if let Some(token) = kernels::Avx2Fma::detect() {
                    return Kernel::Avx2Fma(token);
                }
            }
            Kernel::Sse2
        }
        #[cfg(not(target_arch = "x86_64"))]
        Kernel::Scalar
    }

    fn solve_rows(self, ctx: &SolveCtx<'_>, first: usize, xs: &mut [f32]) {
        match self {
            Kernel::Scalar => kernels::solve_rows(kernels::Scalar, ctx, first, xs),
            #[cfg(target_arch = "x86_64")]
            Kernel::Sse2 => kernels::solve_rows(kernels::Sse2, ctx, first, xs),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma(token) => token.solve_rows(ctx, first, xs),
        }
    }

    fn solve_range(self, ctx: &StreamCtx<'_>, first: usize, spans: &[Span], xs: &mut [f32]) {
        match self {
            Kernel::Scalar => kernels::solve_range(kernels::Scalar, ctx, first, spans, xs),
            #[cfg(target_arch = "x86_64")]
            Kernel::Sse2 => kernels::solve_range(kernels::Sse2, ctx, first, spans, xs),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma(token) => token.solve_range(ctx, first, spans, xs),
        }
    }

    fn gram_acc(self, y: &[f32], f: usize, g: &mut [f32]) {
        match self {
            Kernel::Scalar => kernels::gram_acc(kernels::Scalar, y, f, g),
            #[cfg(target_arch = "x86_64")]
            Kernel::Sse2 => kernels::gram_acc(kernels::Sse2, y, f, g),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma(token) => token.gram_acc(y, f, g),
        }
    }
}

/// The row solver, generic over the vector primitives ([`kernels::Simd`]), with one
/// implementation per instruction set.
mod kernels;

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an items × users CSR from (item, user, value) triples.
    fn csr_from(n_items: usize, n_users: usize, mut t: Vec<(usize, usize, f32)>) -> CsrOwned {
        t.sort_by_key(|&(i, u, _)| (i, u));
        let mut indptr = vec![0usize; n_items + 1];
        for &(i, _, _) in &t {
            indptr[i + 1] += 1;
        }
        for i in 0..n_items {
            indptr[i + 1] += indptr[i];
        }
        CsrOwned {
            n_cols: n_users,
            indptr,
            cols: t.iter().map(|&(_, u, _)| u as u32).collect(),
            values: t.iter().map(|&(_, _, v)| v).collect(),
        }
    }

    /// Tiny deterministic generator for the tests.
    struct Lcg(u64);
    impl Lcg {
        fn next_f32(&mut self) -> f32 {
            self.0 = crate::rng::splitmix64(self.0);
            (self.0 >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    fn row(v: &[f32], f: usize, i: usize) -> &[f32] {
        &v[i * f..(i + 1) * f]
    }

    fn dotp(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    /// Planted structure: 4 taste groups of users, 4 groups of items; users mostly interact
    /// with their group's items. Held-out positives must outrank random non-interactions.
    #[test]
    fn planted_structure_ranks_held_out_positives_high() {
        let (n_items, n_users, groups) = (200, 400, 4);
        let mut rng = Lcg(7);
        let mut train_t = Vec::new();
        let mut held = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for u in 0..n_users {
            let gu = u % groups;
            for i in 0..n_items {
                let p = if i % groups == gu { 0.3 } else { 0.01 };
                if rng.next_f32() < p {
                    seen.insert((i, u));
                    let value = 1.0 + 4.0 * rng.next_f32();
                    if rng.next_f32() < 0.2 {
                        held.push((i, u));
                    } else {
                        train_t.push((i, u, value));
                    }
                }
            }
        }
        let m = csr_from(n_items, n_users, train_t);
        let params = AlsParams {
            factors: 8,
            iterations: 10,
            regularization: 0.1,
            ..Default::default()
        };
        let model = train(m.view(), &params, &mut |_, _| {}).unwrap();
        let f = model.factors;
        let score = |i: usize, u: usize| {
            dotp(
                row(&model.item_factors, f, i),
                row(&model.user_factors, f, u),
            )
        };
        // AUC: held-out positive vs a random non-interacted item of the same user.
        // The oracle scores by planted group membership (in-group non-interactions tie with
        // in-group positives, so even it stays well below 1).
        let oracle = |i: usize, u: usize| f64::from(u8::from(i % groups == u % groups));
        let win = |a: f64, b: f64| {
            if a > b {
                1.0
            } else if a == b {
                0.5
            } else {
                0.0
            }
        };
        let (mut wins, mut oracle_wins, mut total) = (0.0, 0.0, 0.0);
        for &(i, u) in &held {
            for _ in 0..5 {
                let j = loop {
                    let j = (rng.next_f32() * n_items as f32) as usize % n_items;
                    if !seen.contains(&(j, u)) {
                        break j;
                    }
                };
                wins += win(score(i, u), score(j, u));
                oracle_wins += win(oracle(i, u), oracle(j, u));
                total += 1.0;
            }
        }
        let (auc, oracle_auc) = (wins / total, oracle_wins / total);
        assert!(held.len() > 100, "too few held-out positives");
        assert!(auc > 0.8, "AUC {auc} too low (oracle {oracle_auc})");
        assert!(
            auc > oracle_auc - 0.03,
            "AUC {auc} well below the oracle's {oracle_auc}"
        );
    }

    /// Solves `A x = b` (symmetric positive definite, f64) by Cholesky.
    fn cholesky_solve(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Vec<f64> {
        for j in 0..n {
            let mut d = a[j * n + j];
            for k in 0..j {
                d -= a[j * n + k] * a[j * n + k];
            }
            assert!(d > 0.0, "matrix not positive definite");
            let d = d.sqrt();
            a[j * n + j] = d;
            for i in j + 1..n {
                let mut s = a[i * n + j];
                for k in 0..j {
                    s -= a[i * n + k] * a[j * n + k];
                }
                a[i * n + j] = s / d;
            }
        }
        for i in 0..n {
            let mut s = b[i];
            for k in 0..i {
                s -= a[i * n + k] * b[k];
            }
            b[i] = s / a[i * n + i];
        }
        for i in (0..n).rev() {
            let mut s = b[i];
            for k in i + 1..n {
                s -= a[k * n + i] * b[k];
            }
            b[i] = s / a[i * n + i];
        }
        b
    }

    /// Exact solution of one row's normal equations given the other side's factors `y`.
    fn exact_row(m: Csr<'_>, row_i: usize, y: &[f32], f: usize, p: &AlsParams) -> Vec<f64> {
        let n_other = y.len() / f;
        let mut a = vec![0f64; f * f];
        for o in 0..n_other {
            let yo = row(y, f, o);
            for i in 0..f {
                for j in 0..f {
                    a[i * f + j] += yo[i] as f64 * yo[j] as f64;
                }
            }
        }
        for i in 0..f {
            a[i * f + i] += p.regularization as f64;
        }
        let mut b = vec![0f64; f];
        for k in m.indptr[row_i]..m.indptr[row_i + 1] {
            let w = p.alpha as f64 * m.values[k] as f64;
            let yo = row(y, f, m.cols[k] as usize);
            for i in 0..f {
                b[i] += (1.0 + w) * yo[i] as f64;
                for j in 0..f {
                    a[i * f + j] += w * yo[i] as f64 * yo[j] as f64;
                }
            }
        }
        cholesky_solve(a, b, f)
    }

    fn random_matrix(n_items: usize, n_users: usize, density: f32, seed: u64) -> CsrOwned {
        let mut rng = Lcg(seed);
        let mut t = Vec::new();
        for i in 0..n_items {
            for u in 0..n_users {
                if rng.next_f32() < density {
                    t.push((i, u, 0.5 * (1.0 + (rng.next_f32() * 10.0).floor())));
                }
            }
        }
        csr_from(n_items, n_users, t)
    }

    fn assert_close(got: &[f32], want: &[f64], what: &str) {
        let scale = want.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1e-3);
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                ((*g as f64) - w).abs() <= 1e-3 * scale,
                "{what}[{k}]: CG {g} vs exact {w} (scale {scale})"
            );
        }
    }

    /// With many CG steps, one iteration's item factors solve the item normal equations for the
    /// final user factors exactly (and the user half, checked directly, too).
    #[test]
    fn cg_matches_exact_solve() {
        let (n_items, n_users, f) = (30, 40, 6);
        let m = random_matrix(n_items, n_users, 0.2, 3);
        let params = AlsParams {
            factors: f,
            iterations: 1,
            regularization: 0.5,
            alpha: 2.0,
            cg_steps: 60,
            seed: 9,
        };
        let model = train(m.view(), &params, &mut |_, _| {}).unwrap();
        for i in 0..n_items {
            let want = exact_row(m.view(), i, &model.user_factors, f, &params);
            assert_close(row(&model.item_factors, f, i), &want, "item");
        }
        // The user half on its own, for both kernels.
        let ut = transpose(m.view());
        let y = random_factors(n_items * f, 5, 11);
        let tasks = split_rows(&ut.indptr, 1, 3);
        let mut kernels = vec![Kernel::Scalar];
        #[cfg(target_arch = "x86_64")]
        kernels.push(Kernel::Sse2);
        if !kernels.contains(&Kernel::detect()) {
            kernels.push(Kernel::detect());
        }
        for kernel in kernels {
            let mut x = random_factors(n_users * f, 6, 12);
            let mut half = HalfRows::new(kernel, y.len(), f);
            solve_half(ut.view(), &y, &mut x, &tasks, &params, kernel, &mut half);
            for u in 0..n_users {
                let want = exact_row(ut.view(), u, &y, f, &params);
                assert_close(row(&x, f, u), &want, "user");
            }
        }
    }

    /// With 32 and 64 factors the AVX2 kernels gather a half-precision copy of the fixed side:
    /// on factors that half precision holds exactly, the user half still solves the normal
    /// equations (a row read from the wrong place, or a lane lost, fails this).
    #[test]
    fn half_precision_gathers_solve_the_same_system() {
        let (n_items, n_users) = (30, 40);
        let m = random_matrix(n_items, n_users, 0.25, 4);
        let ut = transpose(m.view());
        let tasks = split_rows(&ut.indptr, 1, 3);
        for f in [32, 64] {
            let params = AlsParams {
                factors: f,
                iterations: 1,
                regularization: 0.5,
                alpha: 2.0,
                cg_steps: 2 * f,
                seed: 9,
            };
            // Multiples of 2⁻¹⁰ below 1/2: 10 significant bits, exact in half precision.
            let y: Vec<f32> = random_factors(n_items * f, 5, 13)
                .iter()
                .map(|v| (v * 51_200.0).floor() / 1024.0)
                .collect();
            let kernel = Kernel::detect();
            let mut half = HalfRows::new(kernel, y.len(), f);
            #[cfg(target_arch = "x86_64")]
            if matches!(kernel, Kernel::Avx2Fma(_)) {
                assert_eq!(
                    half.0.len() * 32,
                    y.len(),
                    "the AVX2 kernels gather half rows"
                );
            }
            let mut x = random_factors(n_users * f, 6, 12);
            solve_half(ut.view(), &y, &mut x, &tasks, &params, kernel, &mut half);
            for u in 0..n_users {
                let want = exact_row(ut.view(), u, &y, f, &params);
                assert_close(row(&x, f, u), &want, &format!("user (f {f})"));
            }
        }
    }

    /// The half-precision copy is each factor rounded to the nearest half: within 2⁻¹¹ of it
    /// (relative) over the range factors take, and exact where half precision is.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn half_copy_rounds_to_nearest() {
        let Kernel::Avx2Fma(token) = Kernel::detect() else {
            return; // no F16C: the copy is never made
        };
        fn decode(h: u16) -> f32 {
            let (sign, exp, man) = (
                (h >> 15) as u32,
                ((h >> 10) & 0x1f) as i32,
                (h & 0x3ff) as f32,
            );
            let v = if exp == 0 {
                man * 2f32.powi(-24)
            } else {
                (1.0 + man / 1024.0) * 2f32.powi(exp - 15)
            };
            if sign == 1 {
                -v
            } else {
                v
            }
        }
        let mut y: Vec<f32> = random_factors(64 * 32, 3, 7)
            .iter()
            .enumerate()
            .map(|(k, v)| (v - 0.005) * 10f32.powi(k as i32 % 7 - 2))
            .collect();
        y[0] = 0.0;
        y[1] = 1.5;
        y[2] = -0.25;
        let mut out = vec![kernels::HalfLine([0; 32]); y.len() / 32];
        token.to_half(&y, &mut out);
        let got: Vec<f32> = out.iter().flat_map(|l| l.0.map(decode)).collect();
        assert_eq!(&got[..3], &[0.0, 1.5, -0.25]);
        for (v, h) in y.iter().zip(&got) {
            let bound = (v.abs() * 2f32.powi(-11)).max(2f32.powi(-25));
            assert!((v - h).abs() <= bound, "{v} became {h}");
        }
    }

    /// The item half streamed user by user computes the same CG as row by row.
    #[test]
    fn streamed_item_half_matches_row_wise() {
        let mut t = Vec::new();
        let mut rng = Lcg(21);
        for i in 0..50 {
            for u in 0..300 {
                // A few popular items and many rare ones; item 49 stays empty.
                if i < 49 && rng.next_f32() < 0.6 / (1.0 + i as f32) {
                    t.push((i, u, 0.5 + 4.5 * rng.next_f32()));
                }
            }
        }
        let m = csr_from(50, 300, t);
        let params = AlsParams {
            factors: 12,
            iterations: 3,
            ..Default::default()
        };
        let rows = train_with(m.view(), &params, &mut |_, _| {}, usize::MAX).unwrap();
        for threshold in [0, 40 * 12 * 4] {
            let streamed = train_with(m.view(), &params, &mut |_, _| {}, threshold).unwrap();
            for (a, b) in rows.item_factors.iter().zip(&streamed.item_factors) {
                assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{a} vs {b}");
            }
            for (a, b) in rows.user_factors.iter().zip(&streamed.user_factors) {
                assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{a} vs {b}");
            }
            assert!(row(&streamed.item_factors, 12, 49)
                .iter()
                .all(|&v| v == 0.0));
        }
    }

    #[test]
    fn empty_rows_and_columns_stay_finite_and_zero() {
        // Items 0 and 3 and users 2 and 5 have no entries.
        let t = vec![
            (1, 0, 4.0),
            (1, 1, 3.5),
            (2, 0, 5.0),
            (2, 3, 1.0),
            (4, 4, 2.0),
            (4, 1, 0.0),
        ];
        let m = csr_from(5, 6, t);
        let model = train(m.view(), &AlsParams::default(), &mut |_, _| {}).unwrap();
        let f = model.factors;
        assert!(model.item_factors.iter().all(|v| v.is_finite()));
        assert!(model.user_factors.iter().all(|v| v.is_finite()));
        for i in [0, 3] {
            assert!(row(&model.item_factors, f, i).iter().all(|&v| v == 0.0));
        }
        for u in [2, 5] {
            assert!(row(&model.user_factors, f, u).iter().all(|&v| v == 0.0));
        }
        assert!(row(&model.item_factors, f, 1).iter().any(|&v| v != 0.0));
        // Entirely empty matrix.
        let empty = csr_from(3, 2, vec![]);
        let model = train(empty.view(), &AlsParams::default(), &mut |_, _| {}).unwrap();
        assert!(model.item_factors.iter().all(|&v| v == 0.0));
        assert!(model.user_factors.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn bad_params_and_values_are_refused() {
        let m = random_matrix(5, 5, 0.5, 1);
        let err = |p: AlsParams| train(m.view(), &p, &mut |_, _| {}).unwrap_err();
        let d = AlsParams::default();
        assert!(err(AlsParams { factors: 0, ..d }).contains("factors"));
        assert!(err(AlsParams { cg_steps: 0, ..d }).contains("cg_steps"));
        assert!(err(AlsParams {
            regularization: f32::NAN,
            ..d
        })
        .contains("regularization"));
        assert!(err(AlsParams {
            regularization: -1.0,
            ..d
        })
        .contains("regularization"));
        assert!(err(AlsParams { alpha: -0.5, ..d }).contains("alpha"));
        assert!(err(AlsParams {
            alpha: f32::INFINITY,
            ..d
        })
        .contains("alpha"));

        let mut bad = m.clone();
        bad.values[2] = f32::NAN;
        let e = train(bad.view(), &d, &mut |_, _| {}).unwrap_err();
        assert!(e.contains("value") && e.contains("NaN"), "{e}");
        bad.values[2] = -1.0;
        let e = train(bad.view(), &d, &mut |_, _| {}).unwrap_err();
        assert!(e.contains("value") && e.contains("-1"), "{e}");

        let mut bad = m.clone();
        bad.cols[0] = 99;
        assert!(train(bad.view(), &d, &mut |_, _| {})
            .unwrap_err()
            .contains("out of range"));
        let mut bad = m.clone();
        bad.indptr.pop();
        assert!(train(bad.view(), &d, &mut |_, _| {}).is_err());
    }

    #[test]
    fn same_seed_gives_identical_factors_on_any_thread_count() {
        // Enough users for several fixed Gram chunks.
        let m = random_matrix(60, 5000, 0.02, 4);
        let params = AlsParams {
            factors: 16,
            iterations: 3,
            ..Default::default()
        };
        let run = |threads: usize, seed: u64| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| train(m.view(), &AlsParams { seed, ..params }, &mut |_, _| {}).unwrap())
        };
        let a = run(1, 42);
        let b = run(3, 42);
        let c = run(2, 42);
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_ne!(a, run(2, 43));
    }

    #[test]
    fn progress_reports_every_iteration() {
        let m = random_matrix(10, 10, 0.3, 2);
        let mut seen = Vec::new();
        let params = AlsParams {
            iterations: 4,
            factors: 4,
            ..Default::default()
        };
        train(m.view(), &params, &mut |it, _| seen.push(it)).unwrap();
        assert_eq!(seen, vec![1, 2, 3, 4]);
    }

    #[test]
    fn transpose_round_trips() {
        let m = random_matrix(37, 53, 0.1, 8);
        let t = transpose(m.view());
        assert_eq!(t.n_cols, 37);
        assert_eq!(t.indptr.len(), 54);
        assert_eq!(transpose(t.view()), m);
    }

    /// Both orientations of the relabelled matrix equal a plain construction: every entry
    /// renamed, rows sorted by the new ids.
    #[test]
    fn relabel_renames_every_entry_and_sorts_rows() {
        for seed in 0..4 {
            let m = random_matrix(41, 67, 0.08 + 0.05 * seed as f32, seed);
            let r = relabel(m.view());
            let (mut new_item, mut new_user) = (vec![0u32; 41], vec![0u32; 67]);
            for (new, &old) in r.item_of_new.iter().enumerate() {
                new_item[old as usize] = new as u32;
            }
            for (new, &old) in r.user_of_new.iter().enumerate() {
                new_user[old as usize] = new as u32;
            }
            let mut by_item = Vec::new();
            for (i, &ni) in new_item.iter().enumerate() {
                for e in m.indptr[i]..m.indptr[i + 1] {
                    let nu = new_user[m.cols[e] as usize] as usize;
                    by_item.push((ni as usize, nu, m.values[e]));
                }
            }
            let by_user = by_item.iter().map(|&(i, u, v)| (u, i, v)).collect();
            assert_eq!(r.item_users, csr_from(41, 67, by_item), "seed {seed}");
            assert_eq!(r.user_items, csr_from(67, 41, by_user), "seed {seed}");
            // Most entries first.
            let len = |m: &CsrOwned, k: usize| m.indptr[k + 1] - m.indptr[k];
            assert!((1..41).all(|k| len(&r.item_users, k - 1) >= len(&r.item_users, k)));
            assert!((1..67).all(|k| len(&r.user_items, k - 1) >= len(&r.user_items, k)));
        }
    }
}
