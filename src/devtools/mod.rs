//! Developer tools, apart from the read path: nothing here is used to train or serve.
//!
//! - [`synth`]: `movierec synth`, a made-up release of ml-latest's shape and size for
//!   benchmarks (never to judge quality).
//! - [`bench_index`]: `movierec bench-index`, every index backend on the same raw vectors, and
//!   the clustered test vectors the index tests share.

pub mod bench_index;
pub mod synth;
