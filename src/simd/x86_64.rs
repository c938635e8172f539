//! x86-64: hand-written AVX-512F and AVX2 kernels (with FMA). Callers must have detected the
//! features first (see the module above).
//!
//! Written with intrinsics rather than as the generic kernel compiled for these features:
//! LLVM turned `lanes::<32, true>` into two-float-wide operations with spills, 13 ns per
//! 64-dimensional product against about 4 ns here. Two independent accumulators hide the
//! FMA latency; the tail is a masked load (AVX-512) or a scalar loop (AVX2).

use std::arch::x86_64::*;

#[target_feature(enable = "avx512f,fma")]
pub(super) unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc0 = _mm512_setzero_ps();
    let mut acc1 = _mm512_setzero_ps();
    let mut i = 0;
    // SAFETY (all loads): `i + 32 <= n` or `i + 16 <= n` bounds each full load, and the
    // masked load reads only the `n - i` remaining values.
    while i + 32 <= n {
        acc0 = _mm512_fmadd_ps(
            unsafe { _mm512_loadu_ps(pa.add(i)) },
            unsafe { _mm512_loadu_ps(pb.add(i)) },
            acc0,
        );
        acc1 = _mm512_fmadd_ps(
            unsafe { _mm512_loadu_ps(pa.add(i + 16)) },
            unsafe { _mm512_loadu_ps(pb.add(i + 16)) },
            acc1,
        );
        i += 32;
    }
    if i + 16 <= n {
        acc0 = _mm512_fmadd_ps(
            unsafe { _mm512_loadu_ps(pa.add(i)) },
            unsafe { _mm512_loadu_ps(pb.add(i)) },
            acc0,
        );
        i += 16;
    }
    if i < n {
        let mask: __mmask16 = (1u16 << (n - i)) - 1;
        acc1 = _mm512_fmadd_ps(
            unsafe { _mm512_maskz_loadu_ps(mask, pa.add(i)) },
            unsafe { _mm512_maskz_loadu_ps(mask, pb.add(i)) },
            acc1,
        );
    }
    _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
}

#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut i = 0;
    // SAFETY (all loads): `i + 16 <= n` or `i + 8 <= n` bounds each load.
    while i + 16 <= n {
        acc0 = _mm256_fmadd_ps(
            unsafe { _mm256_loadu_ps(pa.add(i)) },
            unsafe { _mm256_loadu_ps(pb.add(i)) },
            acc0,
        );
        acc1 = _mm256_fmadd_ps(
            unsafe { _mm256_loadu_ps(pa.add(i + 8)) },
            unsafe { _mm256_loadu_ps(pb.add(i + 8)) },
            acc1,
        );
        i += 16;
    }
    if i + 8 <= n {
        acc0 = _mm256_fmadd_ps(
            unsafe { _mm256_loadu_ps(pa.add(i)) },
            unsafe { _mm256_loadu_ps(pb.add(i)) },
            acc0,
        );
        i += 8;
    }
    let sum = _mm256_add_ps(acc0, acc1);
    let half = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps::<1>(sum));
    let pairs = _mm_add_ps(half, _mm_movehl_ps(half, half));
    let total = _mm_add_ss(pairs, _mm_shuffle_ps::<1>(pairs, pairs));
    let mut result = _mm_cvtss_f32(total);
    while i < n {
        result += a[i] * b[i];
        i += 1;
    }
    result
}

#[target_feature(enable = "avx512f,fma")]
pub(super) unsafe fn many_avx512(rows: &[f32], query: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(query.len())) {
        // SAFETY: this function's own features are the callee's.
        *o = unsafe { dot_avx512(row, query) };
    }
}

#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn many_avx2(rows: &[f32], query: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(query.len())) {
        // SAFETY: this function's own features are the callee's.
        *o = unsafe { dot_avx2(row, query) };
    }
}

/// `Σ a_i b_i` of two int8 rows, exact in `i32` for up to 2^16 components (each product is at
/// most 2^14 in size, each `madd` pair 2^15): 32 components per step, sign-extended to 16 bits
/// and multiplied pairwise into 32-bit sums.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn dot_i8_avx512(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = _mm512_setzero_si512();
    let mut i = 0;
    // SAFETY (all loads): `i + 32 <= n` bounds each 32-byte load.
    while i + 32 <= n {
        let x = _mm512_cvtepi8_epi16(unsafe { _mm256_loadu_si256(pa.add(i).cast()) });
        let y = _mm512_cvtepi8_epi16(unsafe { _mm256_loadu_si256(pb.add(i).cast()) });
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(x, y));
        i += 32;
    }
    let mut total = _mm512_reduce_add_epi32(acc);
    while i < n {
        total += i32::from(a[i]) * i32::from(b[i]);
        i += 1;
    }
    total
}

/// [`dot_i8_avx512`] in 16 components per step.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    // SAFETY (all loads): `i + 16 <= n` bounds each 16-byte load.
    while i + 16 <= n {
        let x = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(pa.add(i).cast()) });
        let y = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(pb.add(i).cast()) });
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
        i += 16;
    }
    let half = _mm_add_epi32(
        _mm256_castsi256_si128(acc),
        _mm256_extracti128_si256::<1>(acc),
    );
    let pairs = _mm_add_epi32(half, _mm_unpackhi_epi64(half, half));
    let mut total = _mm_cvtsi128_si32(_mm_add_epi32(pairs, _mm_shuffle_epi32::<1>(pairs)));
    while i < n {
        total += i32::from(a[i]) * i32::from(b[i]);
        i += 1;
    }
    total
}

/// Asks the CPU to load the cache lines of `bytes` bytes from `start`.
#[inline(always)]
pub(super) fn prefetch(start: *const i8, bytes: usize) {
    let mut offset = 0;
    while offset < bytes {
        // SAFETY: a prefetch never faults, whatever the address (the offset stays inside the
        // caller's slice anyway), and SSE, the one feature it needs, is in the x86_64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        offset += 64;
    }
    // The last line, which the 64-byte steps miss when the slice does not start on a line.
    if bytes > 0 {
        // SAFETY: as above.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(bytes - 1)) };
    }
}
