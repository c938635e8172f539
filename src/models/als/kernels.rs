//! The ALS row solver, generic over the vector primitives ([`Simd`]), with one implementation
//! per instruction set (portable, and AVX2+FMA chosen at run time on x86-64).

use super::{SolveCtx, Span, StreamCtx};

/// Vector primitives on `f32` slices.
pub(super) trait Simd: Copy {
    /// `a · b` (`b` at least as long as `a`).
    fn dot(self, a: &[f32], b: &[f32]) -> f32;
    /// `y += s * x` (`x` at least as long as `y`).
    fn axpy(self, s: f32, x: &[f32], y: &mut [f32]);
    /// `a * b + c`, fused where the instruction set has it.
    fn madd(self, a: f32, b: f32, c: f32) -> f32;
    /// Hint that `row` will be read soon.
    fn prefetch(self, _row: &[f32]) {}
    /// `out = G v` for symmetric `G` (`out.len()` squared values).
    #[inline(always)]
    fn symv(self, g: &[f32], v: &[f32], out: &mut [f32]) {
        symv_generic(self, g, v, out)
    }
    /// `out += Σ_j coef(w_j, y_j · v) y_j` over a row's entries, `w_j = alpha * value_j`,
    /// `y_j` row `cols[j]` of `y` (`out.len()` values per row).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn accumulate(
        self,
        cols: &[u32],
        vals: &[f32],
        alpha: f32,
        y: &[f32],
        v: &[f32],
        out: &mut [f32],
        coef: impl Fn(f32, f32) -> f32,
    ) {
        accumulate_generic(self, cols, vals, alpha, y, v, out, coef)
    }
}

/// Plain Rust; LLVM vectorises `axpy`, and `dot` only partly.
#[derive(Clone, Copy)]
pub(super) struct Scalar;

impl Simd for Scalar {
    #[inline(always)]
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        let b = &b[..a.len()];
        let mut acc = [0f32; 8];
        let ac = a.chunks_exact(8);
        let bc = b.chunks_exact(8);
        let mut tail = 0f32;
        for (x, y) in ac.remainder().iter().zip(bc.remainder()) {
            tail += x * y;
        }
        for (x, y) in ac.zip(bc) {
            for k in 0..8 {
                acc[k] += x[k] * y[k];
            }
        }
        let h = [
            acc[0] + acc[4],
            acc[1] + acc[5],
            acc[2] + acc[6],
            acc[3] + acc[7],
        ];
        ((h[0] + h[2]) + (h[1] + h[3])) + tail
    }
    #[inline(always)]
    fn axpy(self, s: f32, x: &[f32], y: &mut [f32]) {
        let x = &x[..y.len()];
        for (yk, xk) in y.iter_mut().zip(x) {
            *yk += s * xk;
        }
    }
    #[inline(always)]
    fn madd(self, a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use x86::{Avx2Fma, Sse2};

/// 32 factors in IEEE half precision, one 64-byte cache line: a row of the fixed side's
/// factors as the AVX2 gather reads it (`f / 32` lines a row).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct HalfLine(pub [u16; 32]);

/// Intrinsic kernels. Every `unsafe` block below does unaligned loads/stores at offsets `i`
/// with `i + width <= len` of slices whose lengths were checked by slicing first, and uses
/// either SSE2 (always present on x86-64) or AVX2/FMA (only reachable through an
/// [`Avx2Fma`] token, which exists only after run-time detection).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{HalfLine, Simd, SolveCtx, Span, StreamCtx};
    use std::arch::x86_64::*;

    /// SSE2 (x86-64 baseline).
    #[derive(Clone, Copy)]
    pub(in super::super) struct Sse2;

    impl Simd for Sse2 {
        #[inline(always)]
        fn dot(self, a: &[f32], b: &[f32]) -> f32 {
            let n = a.len();
            let b = &b[..n];
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let mut i = 0;
            // SAFETY: see the module comment (SSE2 is baseline; loads in bounds).
            let mut sum = unsafe {
                let mut acc = [_mm_setzero_ps(); 4];
                while i + 16 <= n {
                    for (k, acc) in acc.iter_mut().enumerate() {
                        let x = _mm_loadu_ps(pa.add(i + 4 * k));
                        let y = _mm_loadu_ps(pb.add(i + 4 * k));
                        *acc = _mm_add_ps(*acc, _mm_mul_ps(x, y));
                    }
                    i += 16;
                }
                while i + 4 <= n {
                    let x = _mm_loadu_ps(pa.add(i));
                    let y = _mm_loadu_ps(pb.add(i));
                    acc[0] = _mm_add_ps(acc[0], _mm_mul_ps(x, y));
                    i += 4;
                }
                let s = _mm_add_ps(_mm_add_ps(acc[0], acc[1]), _mm_add_ps(acc[2], acc[3]));
                hsum128(s)
            };
            while i < n {
                sum += a[i] * b[i];
                i += 1;
            }
            sum
        }
        #[inline(always)]
        fn axpy(self, s: f32, x: &[f32], y: &mut [f32]) {
            let n = y.len();
            let x = &x[..n];
            let (px, py) = (x.as_ptr(), y.as_mut_ptr());
            let mut i = 0;
            // SAFETY: see the module comment.
            unsafe {
                let sv = _mm_set1_ps(s);
                while i + 4 <= n {
                    let v = _mm_add_ps(
                        _mm_loadu_ps(py.add(i)),
                        _mm_mul_ps(sv, _mm_loadu_ps(px.add(i))),
                    );
                    _mm_storeu_ps(py.add(i), v);
                    i += 4;
                }
            }
            while i < n {
                y[i] += s * x[i];
                i += 1;
            }
        }
        #[inline(always)]
        fn madd(self, a: f32, b: f32, c: f32) -> f32 {
            a * b + c
        }
        #[inline(always)]
        fn prefetch(self, row: &[f32]) {
            prefetch_lines(row);
        }
    }

    /// Horizontal sum of a 4-lane vector.
    #[inline(always)]
    unsafe fn hsum128(s: __m128) -> f32 {
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
        _mm_cvtss_f32(s)
    }

    #[inline(always)]
    fn prefetch_lines(row: &[f32]) {
        let mut k = 0;
        while k < row.len() {
            // SAFETY: prefetching never faults and the address is inside `row`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().add(k) as *const i8) };
            k += 16; // one 64-byte line
        }
    }

    /// Proof that the CPU supports AVX2, FMA and F16C (every CPU with AVX2 has F16C): only
    /// [`Avx2Fma::detect`] constructs it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(in super::super) struct Avx2Fma(());

    impl Avx2Fma {
        pub(in super::super) fn detect() -> Option<Self> {
            (is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c"))
            .then_some(Avx2Fma(()))
        }

        pub(in super::super) fn solve_rows(self, ctx: &SolveCtx<'_>, first: usize, xs: &mut [f32]) {
            match ctx.half {
                Some(rows) if ctx.f.is_multiple_of(32) && rows.len() * 32 == ctx.y.len() => {
                    let h = Avx2Half { t: self, rows };
                    // SAFETY: `self` proves AVX2, FMA and F16C are available.
                    unsafe { solve_rows_avx2_half(h, ctx, first, xs) }
                }
                // SAFETY: `self` proves AVX2 and FMA are available, the only precondition.
                _ => unsafe { solve_rows_avx2_fma(self, ctx, first, xs) },
            }
        }

        /// `y` (rows of `f` values, `f` a multiple of 32) in half precision, rounded to
        /// nearest, into `out` (`y.len() / 32` lines).
        pub(in super::super) fn to_half(self, y: &[f32], out: &mut [HalfLine]) {
            use rayon::prelude::*;
            assert_eq!(out.len() * 32, y.len());
            out.par_chunks_mut(4096)
                .zip(y.par_chunks(4096 * 32))
                .for_each(|(lines, values)| {
                    // SAFETY: the token proves F16C (detected with AVX2 and FMA).
                    unsafe { to_half_f16c(lines, values) }
                });
        }

        pub(in super::super) fn solve_range(
            self,
            ctx: &StreamCtx<'_>,
            first: usize,
            spans: &[Span],
            xs: &mut [f32],
        ) {
            // SAFETY: `self` proves AVX2 and FMA are available, the only precondition.
            unsafe { solve_range_avx2_fma(self, ctx, first, spans, xs) }
        }

        pub(in super::super) fn gram_acc(self, y: &[f32], f: usize, g: &mut [f32]) {
            // SAFETY: as above.
            unsafe { gram_acc_avx2_fma(self, y, f, g) }
        }
    }

    /// The generic solver compiled with AVX2 and FMA enabled, so the inlined intrinsics
    /// and `f32::mul_add` become single instructions.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn solve_rows_avx2_fma(t: Avx2Fma, ctx: &SolveCtx<'_>, first: usize, xs: &mut [f32]) {
        super::solve_rows(t, ctx, first, xs)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn solve_rows_avx2_half(
        h: Avx2Half<'_>,
        ctx: &SolveCtx<'_>,
        first: usize,
        xs: &mut [f32],
    ) {
        super::solve_rows(h, ctx, first, xs)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn to_half_f16c(lines: &mut [HalfLine], values: &[f32]) {
        for (line, v) in lines.iter_mut().zip(values.chunks_exact(32)) {
            for k in 0..4 {
                let x = _mm256_loadu_ps(v.as_ptr().add(8 * k));
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x);
                _mm_storeu_si128(line.0.as_mut_ptr().add(8 * k) as *mut __m128i, h);
            }
        }
    }

    /// [`Avx2Fma`] whose gathers read the fixed side's factors from a half-precision copy.
    #[derive(Clone, Copy)]
    pub(in super::super) struct Avx2Half<'a> {
        t: Avx2Fma,
        rows: &'a [HalfLine],
    }

    impl Simd for Avx2Half<'_> {
        #[inline(always)]
        fn dot(self, a: &[f32], b: &[f32]) -> f32 {
            self.t.dot(a, b)
        }
        #[inline(always)]
        fn axpy(self, s: f32, x: &[f32], y: &mut [f32]) {
            self.t.axpy(s, x, y)
        }
        #[inline(always)]
        fn madd(self, a: f32, b: f32, c: f32) -> f32 {
            a.mul_add(b, c)
        }
        #[inline(always)]
        fn symv(self, g: &[f32], v: &[f32], out: &mut [f32]) {
            self.t.symv(g, v, out)
        }
        #[inline(always)]
        fn accumulate(
            self,
            cols: &[u32],
            vals: &[f32],
            alpha: f32,
            y: &[f32],
            v: &[f32],
            out: &mut [f32],
            coef: impl Fn(f32, f32) -> f32,
        ) {
            match out.len() {
                64 => accumulate_rows::<8, _>(
                    HalfLines(self.rows, 2),
                    cols,
                    vals,
                    alpha,
                    v,
                    out,
                    coef,
                ),
                32 => accumulate_rows::<4, _>(
                    HalfLines(self.rows, 1),
                    cols,
                    vals,
                    alpha,
                    v,
                    out,
                    coef,
                ),
                _ => self.t.accumulate(cols, vals, alpha, y, v, out, coef),
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn solve_range_avx2_fma(
        t: Avx2Fma,
        ctx: &StreamCtx<'_>,
        first: usize,
        spans: &[Span],
        xs: &mut [f32],
    ) {
        super::solve_range(t, ctx, first, spans, xs)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn gram_acc_avx2_fma(t: Avx2Fma, y: &[f32], f: usize, g: &mut [f32]) {
        super::gram_acc(t, y, f, g)
    }

    impl Simd for Avx2Fma {
        #[inline(always)]
        fn dot(self, a: &[f32], b: &[f32]) -> f32 {
            let n = a.len();
            let b = &b[..n];
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let mut i = 0;
            // SAFETY: see the module comment (token => AVX2/FMA; loads in bounds).
            let mut sum = unsafe {
                let mut acc0 = _mm256_setzero_ps();
                let mut acc1 = _mm256_setzero_ps();
                while i + 16 <= n {
                    acc0 = _mm256_fmadd_ps(
                        _mm256_loadu_ps(pa.add(i)),
                        _mm256_loadu_ps(pb.add(i)),
                        acc0,
                    );
                    acc1 = _mm256_fmadd_ps(
                        _mm256_loadu_ps(pa.add(i + 8)),
                        _mm256_loadu_ps(pb.add(i + 8)),
                        acc1,
                    );
                    i += 16;
                }
                if i + 8 <= n {
                    acc0 = _mm256_fmadd_ps(
                        _mm256_loadu_ps(pa.add(i)),
                        _mm256_loadu_ps(pb.add(i)),
                        acc0,
                    );
                    i += 8;
                }
                let acc = _mm256_add_ps(acc0, acc1);
                let s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
                hsum128(s)
            };
            while i < n {
                sum = a[i].mul_add(b[i], sum);
                i += 1;
            }
            sum
        }
        #[inline(always)]
        fn axpy(self, s: f32, x: &[f32], y: &mut [f32]) {
            let n = y.len();
            let x = &x[..n];
            let (px, py) = (x.as_ptr(), y.as_mut_ptr());
            let mut i = 0;
            // SAFETY: see the module comment.
            unsafe {
                let sv = _mm256_set1_ps(s);
                while i + 8 <= n {
                    let v =
                        _mm256_fmadd_ps(sv, _mm256_loadu_ps(px.add(i)), _mm256_loadu_ps(py.add(i)));
                    _mm256_storeu_ps(py.add(i), v);
                    i += 8;
                }
            }
            while i < n {
                y[i] = s.mul_add(x[i], y[i]);
                i += 1;
            }
        }
        #[inline(always)]
        fn madd(self, a: f32, b: f32, c: f32) -> f32 {
            a.mul_add(b, c)
        }
        #[inline(always)]
        fn prefetch(self, row: &[f32]) {
            prefetch_lines(row);
        }
        #[inline(always)]
        fn symv(self, g: &[f32], v: &[f32], out: &mut [f32]) {
            match out.len() {
                64 => symv_fixed::<8>(self, g, v, out),
                32 => symv_fixed::<4>(self, g, v, out),
                _ => super::symv_generic(self, g, v, out),
            }
        }
        #[inline(always)]
        fn accumulate(
            self,
            cols: &[u32],
            vals: &[f32],
            alpha: f32,
            y: &[f32],
            v: &[f32],
            out: &mut [f32],
            coef: impl Fn(f32, f32) -> f32,
        ) {
            match out.len() {
                64 => accumulate_rows::<8, _>(F32Rows(y, 64), cols, vals, alpha, v, out, coef),
                32 => accumulate_rows::<4, _>(F32Rows(y, 32), cols, vals, alpha, v, out, coef),
                _ => super::accumulate_generic(self, cols, vals, alpha, y, v, out, coef),
            }
        }
    }

    /// [`Simd::symv`] for `f = 8 * NV`, the result held in `NV` registers.
    #[inline(always)]
    fn symv_fixed<const NV: usize>(_t: Avx2Fma, g: &[f32], v: &[f32], out: &mut [f32]) {
        let f = 8 * NV;
        let (g, v, out) = (&g[..f * f], &v[..f], &mut out[..f]);
        // SAFETY: `_t` proves AVX2/FMA; loads cover `g[i * f + 8k..][..8]` and
        // `out[8k..][..8]` with i < f, k < NV, inside the lengths just checked.
        unsafe {
            let mut o = [_mm256_setzero_ps(); NV];
            for (i, &vi) in v.iter().enumerate() {
                let s = _mm256_set1_ps(vi);
                let row = g.as_ptr().add(i * f);
                for (k, ok) in o.iter_mut().enumerate() {
                    *ok = _mm256_fmadd_ps(s, _mm256_loadu_ps(row.add(8 * k)), *ok);
                }
            }
            for (k, ok) in o.iter().enumerate() {
                _mm256_storeu_ps(out.as_mut_ptr().add(8 * k), *ok);
            }
        }
    }

    /// Where [`accumulate_rows`] reads the fixed side's rows (AVX2, FMA and F16C are proven
    /// by the token of the kernel that inlines it).
    trait Rows: Copy {
        /// Row `c`'s start, its bounds checked.
        type Row: Copy;
        fn row(self, c: usize) -> Self::Row;
        fn prefetch(self, c: usize);
        /// Values `8k..8k + 8` of a row, `8k + 8` within its length.
        unsafe fn lane(row: Self::Row, k: usize) -> __m256;
    }

    /// `f32` rows of `.1` values.
    #[derive(Clone, Copy)]
    struct F32Rows<'a>(&'a [f32], usize);

    impl Rows for F32Rows<'_> {
        type Row = *const f32;
        #[inline(always)]
        fn row(self, c: usize) -> *const f32 {
            self.0[c * self.1..][..self.1].as_ptr()
        }
        #[inline(always)]
        fn prefetch(self, c: usize) {
            prefetch_lines(&self.0[c * self.1..][..self.1]);
        }
        #[inline(always)]
        unsafe fn lane(row: *const f32, k: usize) -> __m256 {
            _mm256_loadu_ps(row.add(8 * k))
        }
    }

    /// Half-precision rows of `.1` lines (32 values each).
    #[derive(Clone, Copy)]
    struct HalfLines<'a>(&'a [HalfLine], usize);

    impl Rows for HalfLines<'_> {
        type Row = *const u16;
        #[inline(always)]
        fn row(self, c: usize) -> *const u16 {
            self.0[c * self.1..][..self.1].as_ptr() as *const u16
        }
        #[inline(always)]
        fn prefetch(self, c: usize) {
            for line in &self.0[c * self.1..][..self.1] {
                // SAFETY: prefetching never faults and the address is inside `self.0`.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(line as *const HalfLine as *const i8) };
            }
        }
        #[inline(always)]
        unsafe fn lane(row: *const u16, k: usize) -> __m256 {
            // Lines are 64-byte aligned, so every 8-value lane is 16-byte aligned.
            _mm256_cvtph_ps(_mm_load_si128(row.add(8 * k) as *const __m128i))
        }
    }

    /// [`Simd::accumulate`] for `f = 8 * NV`: `out` stays in `NV` registers, the dot
    /// product uses four independent accumulators; the rows come from `rows`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn accumulate_rows<const NV: usize, R: Rows>(
        rows: R,
        cols: &[u32],
        vals: &[f32],
        alpha: f32,
        v: &[f32],
        out: &mut [f32],
        coef: impl Fn(f32, f32) -> f32,
    ) {
        let f = 8 * NV;
        let (v, out) = (&v[..f], &mut out[..f]);
        // SAFETY: the caller's token proves AVX2/FMA (and F16C); every pointer below is `v`,
        // `out` or a row, each `f` long (checked by the slicing in `R::row`), read at offsets
        // `8k..8k + 8` with k < NV.
        unsafe {
            let pv = v.as_ptr();
            let mut o = [_mm256_setzero_ps(); NV];
            for (k, ok) in o.iter_mut().enumerate() {
                *ok = _mm256_loadu_ps(out.as_ptr().add(8 * k));
            }
            for (e, (&c, &val)) in cols.iter().zip(vals).enumerate() {
                if let Some(&ahead) = cols.get(e + super::PREFETCH_AHEAD) {
                    rows.prefetch(ahead as usize);
                }
                let py = rows.row(c as usize);
                let mut acc = [_mm256_setzero_ps(); 4];
                for k in 0..NV {
                    acc[k % 4] =
                        _mm256_fmadd_ps(R::lane(py, k), _mm256_loadu_ps(pv.add(8 * k)), acc[k % 4]);
                }
                let a = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
                let d = hsum128(_mm_add_ps(
                    _mm256_castps256_ps128(a),
                    _mm256_extractf128_ps::<1>(a),
                ));
                let s = _mm256_set1_ps(coef(alpha * val, d));
                for (k, ok) in o.iter_mut().enumerate() {
                    *ok = _mm256_fmadd_ps(s, R::lane(py, k), *ok);
                }
            }
            for (k, ok) in o.iter().enumerate() {
                _mm256_storeu_ps(out.as_mut_ptr().add(8 * k), *ok);
            }
        }
    }
}

/// Entries ahead whose factor rows are prefetched.
const PREFETCH_AHEAD: usize = 8;

/// `out = G v` for symmetric `G` (`f × f`), as a sum of rows (no horizontal reductions).
#[inline(always)]
fn symv_generic<S: Simd>(s: S, g: &[f32], v: &[f32], out: &mut [f32]) {
    let f = out.len();
    out.fill(0.0);
    for (row, &vi) in g.chunks_exact(f).zip(v) {
        s.axpy(vi, row, out);
    }
}

/// `out += Σ_j coef(w_j, y_j · v) y_j` over the row's entries, `w_j = alpha * value_j`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn accumulate_generic<S: Simd>(
    s: S,
    cols: &[u32],
    vals: &[f32],
    alpha: f32,
    y: &[f32],
    v: &[f32],
    out: &mut [f32],
    coef: impl Fn(f32, f32) -> f32,
) {
    let f = out.len();
    for (k, (&c, &val)) in cols.iter().zip(vals).enumerate() {
        if let Some(&ahead) = cols.get(k + PREFETCH_AHEAD) {
            s.prefetch(&y[ahead as usize * f..][..f]);
        }
        let yj = &y[c as usize * f..][..f];
        let d = s.dot(yj, v);
        s.axpy(coef(alpha * val, d), yj, out);
    }
}

/// Conjugate-gradient update of rows `first..` (one per `f` values of `xs`), exactly the
/// iteration of implicit's `_least_squares_cg`, except that empty rows are set to zero.
#[inline(always)]
pub(super) fn solve_rows<S: Simd>(s: S, ctx: &SolveCtx<'_>, first: usize, xs: &mut [f32]) {
    let f = ctx.f;
    let mut scratch = vec![0f32; 3 * f];
    let (r, rest) = scratch.split_at_mut(f);
    let (p, ap) = rest.split_at_mut(f);
    for (i, x) in xs.chunks_exact_mut(f).enumerate() {
        let row = first + i;
        let (a, b) = (ctx.m.indptr[row], ctx.m.indptr[row + 1]);
        if a == b {
            // The minimiser of xᵀ(YᵀY + λI)x is 0 (CG would only approach it).
            x.fill(0.0);
            continue;
        }
        let cols = &ctx.m.cols[a..b];
        let vals = &ctx.m.values[a..b];
        // r = Σ c_j y_j − (YᵀY + λI) x − Σ (c_j − 1)(y_j·x) y_j
        s.symv(ctx.g, x, ap);
        for (rk, &gk) in r.iter_mut().zip(ap.iter()) {
            *rk = -gk;
        }
        s.accumulate(cols, vals, ctx.alpha, ctx.y, x, r, |w, d| {
            s.madd(-w, d, 1.0 + w)
        });
        p.copy_from_slice(r);
        let mut rs_old = s.dot(r, r);
        if rs_old < 1e-20 {
            continue;
        }
        for _ in 0..ctx.cg_steps {
            // Ap = (YᵀY + λI) p + Σ (c_j − 1)(y_j·p) y_j
            s.symv(ctx.g, p, ap);
            s.accumulate(cols, vals, ctx.alpha, ctx.y, p, ap, |w, d| w * d);
            let p_ap = s.dot(p, ap);
            if !(p_ap > 0.0 && p_ap.is_finite()) {
                break; // only possible without regularisation on a degenerate system
            }
            let step = rs_old / p_ap;
            s.axpy(step, p, x);
            s.axpy(-step, ap, r);
            let rs_new = s.dot(r, r);
            if rs_new < 1e-20 {
                break;
            }
            let beta = rs_new / rs_old;
            for (pk, &rk) in p.iter_mut().zip(r.iter()) {
                *pk = s.madd(beta, *pk, rk);
            }
            rs_old = rs_new;
        }
    }
}

/// One pass of [`solve_range`]: `out_i += Σ_u coef(w_ui, y_u · v_i) y_u` for the active items
/// `i` of the range, users in order.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn stream_pass<S: Simd>(
    s: S,
    ctx: &StreamCtx<'_>,
    first: usize,
    spans: &[Span],
    v: &[f32],
    out: &mut [f32],
    active: &[bool],
    coef: impl Fn(f32, f32) -> f32,
) {
    let f = ctx.f;
    for span in spans {
        let yu = &ctx.y[span.user as usize * f..][..f];
        let end = span.start + span.len as usize;
        let cols = &ctx.users.cols[span.start..end];
        let vals = &ctx.users.values[span.start..end];
        for (&c, &val) in cols.iter().zip(vals) {
            let i = c as usize - first;
            if !active[i] {
                continue;
            }
            let d = s.dot(yu, &v[i * f..][..f]);
            s.axpy(coef(ctx.alpha * val, d), yu, &mut out[i * f..][..f]);
        }
    }
}

/// The CG of [`solve_rows`] for the items `first..` (one per `f` values of `xs`), all
/// advanced together, each pass over the entries streaming through the users in `spans`.
#[inline(always)]
pub(super) fn solve_range<S: Simd>(
    s: S,
    ctx: &StreamCtx<'_>,
    first: usize,
    spans: &[Span],
    xs: &mut [f32],
) {
    let f = ctx.f;
    let n = xs.len() / f;
    let mut r = vec![0f32; n * f];
    let mut p = vec![0f32; n * f];
    let mut ap = vec![0f32; n * f];
    let mut rs_old = vec![0f32; n];
    let mut active = vec![true; n];
    // r = Σ c_j y_j − (YᵀY + λI) x − Σ (c_j − 1)(y_j·x) y_j
    for (x, r) in xs.chunks_exact(f).zip(r.chunks_exact_mut(f)) {
        s.symv(ctx.g, x, r);
        for v in r.iter_mut() {
            *v = -*v;
        }
    }
    stream_pass(s, ctx, first, spans, xs, &mut r, &active, |w, d| {
        s.madd(-w, d, 1.0 + w)
    });
    for i in 0..n {
        let (x, ri) = (&mut xs[i * f..][..f], &r[i * f..][..f]);
        if ctx.item_indptr[first + i] == ctx.item_indptr[first + i + 1] {
            x.fill(0.0); // as in `solve_rows`
            active[i] = false;
            continue;
        }
        p[i * f..][..f].copy_from_slice(ri);
        rs_old[i] = s.dot(ri, ri);
        active[i] = rs_old[i] >= 1e-20;
    }
    for _ in 0..ctx.cg_steps {
        for i in (0..n).filter(|&i| active[i]) {
            s.symv(ctx.g, &p[i * f..][..f], &mut ap[i * f..][..f]);
        }
        stream_pass(s, ctx, first, spans, &p, &mut ap, &active, |w, d| w * d);
        for i in 0..n {
            if !active[i] {
                continue;
            }
            let (x, ri, pi, api) = (
                &mut xs[i * f..][..f],
                &mut r[i * f..][..f],
                &mut p[i * f..][..f],
                &ap[i * f..][..f],
            );
            let p_ap = s.dot(pi, api);
            if !(p_ap > 0.0 && p_ap.is_finite()) {
                active[i] = false;
                continue;
            }
            let step = rs_old[i] / p_ap;
            s.axpy(step, pi, x);
            s.axpy(-step, api, ri);
            let rs_new = s.dot(ri, ri);
            if rs_new < 1e-20 {
                active[i] = false;
                continue;
            }
            let beta = rs_new / rs_old[i];
            for (pk, &rk) in pi.iter_mut().zip(ri.iter()) {
                *pk = s.madd(beta, *pk, rk);
            }
            rs_old[i] = rs_new;
        }
    }
}

/// `g += Σ_rows y yᵀ` over the rows (`f` values each) of `y`.
#[inline(always)]
pub(super) fn gram_acc<S: Simd>(s: S, y: &[f32], f: usize, g: &mut [f32]) {
    for row in y.chunks_exact(f) {
        for (grow, &yi) in g.chunks_exact_mut(f).zip(row) {
            s.axpy(yi, row, grow);
        }
    }
}
