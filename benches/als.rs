//! Times `als::train` on synthetic data shaped like MovieLens ml-latest.
//!
//! `cargo bench --bench als -- [scale] [--portable] [--iterations N]`
//!
//! Scale 1.0: 86,537 items, 330,975 users, about 33.8M ratings. Item popularity is
//! Zipf–Mandelbrot (exponent 1, offset 10) over a random permutation of item ids, user activity
//! log-normal (mean about 102 ratings), values half-stars 0.5..5. Deterministic and parallel.

use movierec::models::als::{set_force_portable_kernels, train, transpose, AlsParams, Csr};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use rayon::prelude::*;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut scale = 0.1f64;
    let mut iterations = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--portable" => set_force_portable_kernels(true),
            "--iterations" => {
                i += 1;
                iterations = Some(args[i].parse::<usize>().expect("iterations"));
            }
            s => scale = s.parse().expect("scale must be a number"),
        }
        i += 1;
    }
    let n_items = ((86_537.0 * scale).round() as usize).max(10);
    let n_users = ((330_975.0 * scale).round() as usize).max(10);
    let t0 = Instant::now();
    let (indptr, cols, values) = generate(n_users, n_items, 7);
    let user_items = Csr {
        n_cols: n_items,
        indptr: &indptr,
        cols: &cols,
        values: &values,
    };
    let item_users = transpose(user_items);
    drop((indptr, cols, values));
    let nnz = item_users.cols.len();
    println!(
        "scale {scale}: {n_items} items, {n_users} users, nnz {nnz} (generated in {:.1} s), {} threads, kernels: {}",
        t0.elapsed().as_secs_f64(),
        rayon::current_num_threads(),
        if std::env::args().any(|a| a == "--portable") {
            "portable (forced)"
        } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            "avx2+fma (runtime dispatch)"
        } else {
            "portable"
        }
    );
    let mut params = AlsParams::default();
    if let Some(n) = iterations {
        params.iterations = n;
    }
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let mut last = t;
    let model = train(item_users.view(), &params, &mut |it, _| {
        let now = Instant::now();
        eprintln!("  iteration {it}: {:.2} s", (now - last).as_secs_f64());
        last = now;
    })
    .expect("train");
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let norm: f64 = model.item_factors.iter().map(|v| (*v as f64).powi(2)).sum();
    assert!(norm.is_finite());
    println!(
        "train: {secs:.2} s total, {:.3} s/iteration ({} iterations, {} factors), nnz {nnz}, |item factors|² {norm:.3e}",
        secs / params.iterations.max(1) as f64,
        params.iterations,
        params.factors
    );
    println!(
        "train CPU time (user+sys, all threads): {cpu:.2} s = {:.2} s/iteration; wall/CPU ratio {:.2} (1/threads when the machine is otherwise idle)",
        cpu / params.iterations.max(1) as f64,
        secs / cpu
    );
}

/// User + system CPU seconds of this process so far (Linux `/proc`; NaN elsewhere). Other
/// processes compete for the cores on shared machines, so this is steadier than wall time.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// User-major CSR (users × items).
fn generate(n_users: usize, n_items: usize, seed: u64) -> (Vec<usize>, Vec<u32>, Vec<f32>) {
    // Popularity rank -> item id.
    let mut perm: Vec<u32> = (0..n_items as u32).collect();
    let mut rng = SmallRng::seed_from_u64(seed);
    for k in (1..n_items).rev() {
        perm.swap(k, rng.random_range(0..=k));
    }
    let weights: Vec<f64> = (0..n_items).map(|r| 1.0 / (r as f64 + 10.0)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(n_items);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cdf.push(acc);
    }
    // Mean exp(mu + sigma²/2) = 102.
    let sigma = 1.3f64;
    let activity = LogNormal::new(102f64.ln() - sigma * sigma / 2.0, sigma).unwrap();
    // Half-star ratings 0.5..5 skewed towards 3.5-4 like MovieLens.
    let rating_w = [1.5, 3.0, 2.0, 7.0, 5.0, 20.0, 13.0, 26.0, 9.0, 14.0];
    let rating_total: f64 = rating_w.iter().sum();
    let rows: Vec<Vec<(u32, f32)>> = (0..n_users)
        .into_par_iter()
        .map(|u| {
            let mut rng =
                SmallRng::seed_from_u64(seed ^ (u as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let n = (activity.sample(&mut rng).round() as usize).clamp(1, n_items / 2);
            let mut items: Vec<u32> = if n > 2000 {
                // Weighted sampling without replacement (Efraimidis–Spirakis keys).
                let mut keys: Vec<(f64, u32)> = weights
                    .iter()
                    .enumerate()
                    .map(|(r, w)| (-rng.random::<f64>().ln() / w, perm[r]))
                    .collect();
                keys.select_nth_unstable_by(n - 1, |a, b| a.0.total_cmp(&b.0));
                keys[..n].iter().map(|k| k.1).collect()
            } else {
                let mut v = Vec::with_capacity(n + n / 4);
                loop {
                    while v.len() < n + n / 8 {
                        let x: f64 = rng.random();
                        let r = cdf.partition_point(|&c| c < x).min(n_items - 1);
                        v.push(perm[r]);
                    }
                    v.sort_unstable();
                    v.dedup();
                    if v.len() >= n {
                        break;
                    }
                }
                // Drop a random surplus (not the largest ids).
                while v.len() > n {
                    let k = rng.random_range(0..v.len());
                    v.swap_remove(k);
                }
                v
            };
            items.sort_unstable();
            items
                .into_iter()
                .map(|it| {
                    let mut x = rng.random::<f64>() * rating_total;
                    let mut k = 0;
                    while k < 9 && x >= rating_w[k] {
                        x -= rating_w[k];
                        k += 1;
                    }
                    (it, 0.5 * (k + 1) as f32)
                })
                .collect()
        })
        .collect();
    let mut indptr = Vec::with_capacity(n_users + 1);
    indptr.push(0usize);
    for r in &rows {
        indptr.push(indptr.last().unwrap() + r.len());
    }
    let nnz = *indptr.last().unwrap();
    let mut cols = Vec::with_capacity(nnz);
    let mut values = Vec::with_capacity(nnz);
    for r in rows {
        for (c, v) in r {
            cols.push(c);
            values.push(v);
        }
    }
    (indptr, cols, values)
}
