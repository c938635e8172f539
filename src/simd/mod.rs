//! SIMD kernels with run-time CPU dispatch, one file per architecture (`x86_64.rs`): the inner
//! products every index backend spends its time in (the HNSW graph's too: its own 16-lane
//! product, inlined but compiled for the x86-64 baseline, was SSE2, and the dispatched one built
//! the synthetic ml-latest SVD graph in 4.5 s instead of 7.1 s), and cache prefetch. (ALS's row
//! solver, `models/als/kernels.rs`, and the int8 scan, `index/quantized.rs`, keep their
//! intrinsics beside the algorithm they are fused with.)
//!
//! Three kernels: AVX-512F and AVX2 with FMA, written with intrinsics (`x86_64.rs`), and a generic one
//! (`L` lanes of independent accumulators) for the x86-64 baseline or any other CPU (8 lanes, no
//! FMA: without the `fma` feature `mul_add` would be a library call). [`dot`] and [`dot_many`]
//! pick the widest the CPU has, once per call; the
//! detection itself is cached by `std`. The AVX variants are `unsafe fn`s with
//! `#[target_feature]`; they are only called after `is_x86_feature_detected!` confirmed every
//! feature they are compiled for, which is what makes those calls sound.
//!
//! Results differ from a plain left-to-right sum only by floating-point reassociation (and the
//! single rounding of FMA); tests compare every variant with a plain sum.

/// Inner product of two equal-length vectors (the shorter length if they differ).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` returned Avx512 only after detecting avx512f and fma.
        Level::Avx512 => unsafe { x86_64::dot_avx512(a, b) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `level` returned Avx2 only after detecting avx2 and fma.
        Level::Avx2 => unsafe { x86_64::dot_avx2(a, b) },
        Level::Portable => lanes::<8, false>(a, b),
    }
}

/// `Σ a_i b_i` of two int8 rows (the shorter length if they differ), exact for rows of up to
/// 2^16 components. The HNSW build compares rows through their int8 codes (a quarter of the
/// bytes fetched per row).
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512bw") {
            // SAFETY: avx512bw (which implies avx512f) was just detected.
            return unsafe { x86_64::dot_i8_avx512(a, b) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: avx2 was just detected.
            return unsafe { x86_64::dot_i8_avx2(a, b) };
        }
    }
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum()
}

/// `out[i] = rows[i] · query` for every `dim`-long row of `rows` (`rows.len() == out.len() ·
/// dim`, `query.len() == dim`).
pub fn dot_many(rows: &[f32], query: &[f32], out: &mut [f32]) {
    let dim = query.len();
    assert!(
        dim > 0 && rows.len() == out.len() * dim,
        "{} row values for {} rows of dimension {dim}",
        rows.len(),
        out.len()
    );
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot`.
        Level::Avx512 => unsafe { x86_64::many_avx512(rows, query, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot`.
        Level::Avx2 => unsafe { x86_64::many_avx2(rows, query, out) },
        Level::Portable => many::<8, false>(rows, query, out),
    }
}

/// The instruction sets a kernel can use on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// AVX-512F with FMA: 32 lanes.
    Avx512,
    /// AVX2 with FMA: 16 lanes.
    Avx2,
    /// Anything else: 8 lanes, separate multiply and add.
    Portable,
}

/// The widest kernel this CPU runs (what [`dot`] and [`dot_many`] use).
#[inline]
pub fn level() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            return Level::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Portable
}

/// The generic kernel: `L` independent accumulators over fixed-size chunks, so LLVM keeps them
/// in vector registers of whatever width the enclosing function was compiled for.
#[inline(always)]
fn lanes<const L: usize, const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let body = a.len() - a.len() % L;
    let mut acc = [0.0f32; L];
    for (x, y) in a[..body].chunks_exact(L).zip(b[..body].chunks_exact(L)) {
        let x: &[f32; L] = x.try_into().expect("chunks of L");
        let y: &[f32; L] = y.try_into().expect("chunks of L");
        for i in 0..L {
            acc[i] = if FMA {
                x[i].mul_add(y[i], acc[i])
            } else {
                acc[i] + x[i] * y[i]
            };
        }
    }
    // Pairwise halving keeps the reduction vectorised too.
    let mut width = L;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    let tail: f32 = a[body..].iter().zip(&b[body..]).map(|(x, y)| x * y).sum();
    acc[0] + tail
}

#[inline(always)]
fn many<const L: usize, const FMA: bool>(rows: &[f32], query: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(query.len())) {
        *o = lanes::<L, FMA>(row, query);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86_64;

/// Asks the CPU to start loading `data` into cache. A hint only: it has no effect on results.
#[inline(always)]
pub fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    x86_64::prefetch(data.as_ptr().cast::<i8>(), std::mem::size_of_val(data));
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / u32::MAX as f32 - 0.5)
            .collect()
    }

    #[test]
    fn every_variant_matches_a_plain_sum_for_every_length() {
        for len in 0..150 {
            let (a, b) = (vectors(len, 1), vectors(len, 7));
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let mut got = vec![dot(&a, &b), lanes::<8, false>(&a, &b)];
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the features were just detected.
                    got.push(unsafe { x86_64::dot_avx2(&a, &b) });
                }
                if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the features were just detected.
                    got.push(unsafe { x86_64::dot_avx512(&a, &b) });
                }
            }
            for g in got {
                assert!((g - plain).abs() < 1e-4, "len {len}: {g} vs {plain}");
            }
        }
    }

    #[test]
    fn every_int8_variant_matches_a_plain_sum_for_every_length() {
        let bytes = |len: usize, seed: u32| -> Vec<i8> {
            (0..len)
                .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as i8)
                .collect()
        };
        for len in 0..200 {
            let (mut a, mut b) = (bytes(len, 1), bytes(len, 0x9e37));
            // The extremes, where a 16-bit pair sum would overflow: exact all the same.
            if len > 40 {
                a[..33].fill(-128);
                b[..33].fill(-128);
            }
            let plain: i32 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| i32::from(x) * i32::from(y))
                .sum();
            let mut got = vec![dot_i8(&a, &b)];
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the feature was just detected.
                    got.push(unsafe { x86_64::dot_i8_avx2(&a, &b) });
                }
                if std::is_x86_feature_detected!("avx512bw") {
                    // SAFETY: the feature was just detected.
                    got.push(unsafe { x86_64::dot_i8_avx512(&a, &b) });
                }
            }
            for g in got {
                assert_eq!(g, plain, "len {len}");
            }
        }
    }

    #[test]
    fn dot_many_scores_every_row() {
        let dim = 37;
        let rows = vectors(dim * 9, 3);
        let query = vectors(dim, 11);
        let mut out = vec![0.0; 9];
        dot_many(&rows, &query, &mut out);
        for (i, o) in out.iter().enumerate() {
            let plain: f32 = rows[i * dim..(i + 1) * dim]
                .iter()
                .zip(&query)
                .map(|(x, y)| x * y)
                .sum();
            assert!((o - plain).abs() < 1e-4);
        }
    }
}
