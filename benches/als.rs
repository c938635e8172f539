//! Times `als::train` on synthetic data shaped like MovieLens ml-latest.
//!
//! `cargo bench --bench als -- [scale] [--portable] [--iterations N] [--factors F]`
//!
//! Scale 1.0: 86,537 items, 330,975 users, 33,862,037 ratings, drawn in memory by
//! [`movierec::devtools::synth::SynthModel`] with seed 7: the rating matrix `movierec synth --scale S`
//! writes to disk (Zipf–Mandelbrot movie popularity, log-normal user activity, half-star ratings
//! from a latent-factor model). Deterministic and parallel.

use movierec::devtools::synth::{SynthModel, SynthParams};
use movierec::models::als::{set_force_portable_kernels, train, transpose, AlsParams, Csr};
use std::time::Instant;

// The binary's allocator (src/main.rs), so the factor matrices are placed as in `train` (page
// aligned: a row of 32 factors is two cache lines, not three as glibc's 16-byte offset makes it).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut scale = 0.1f64;
    let mut iterations = None;
    let mut factors = 64;
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
            "--factors" => {
                i += 1;
                factors = args[i].parse::<usize>().expect("factors");
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
    let (n_items, n_users) = (params.movies(), params.users());
    let t0 = Instant::now();
    let (indptr, cols, values) = SynthModel::from_params(&params).rating_matrix();
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
    // 64 factors by default, as `implicit` is run beside it (docs/BENCHMARKS.md); `train` uses
    // 32 (`--factors 32`).
    let mut params = AlsParams {
        factors,
        ..AlsParams::default()
    };
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
