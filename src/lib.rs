//! movierec: movie recommendations from MovieLens in one binary.
//!
//! Data flows one way, each stage handing the next a typed value:
//!
//! ```text
//! MovieLens files ──data──▶ Dataset ──catalog──▶ Catalog (+ rating matrix)
//!     ──models──▶ ItemEmbeddings ──index──▶ nearest-neighbour indexes
//!     ──artifact──▶ model directory on disk ──engine──▶ answers (CLI, server)
//!                 eval and tracking read from the middle
//! ```
//!
//! The binary (`src/main.rs`, `src/cli.rs`) only parses arguments and calls this library.
#![warn(missing_docs)]

pub mod artifact;
pub mod atomic;
pub mod catalog;
pub mod client;
pub mod clock;
pub mod data;
pub mod database;
pub mod devtools;
pub mod download;
pub mod embeddings;
pub mod engine;
pub mod error;
pub mod eval;
pub mod fit;
pub mod incremental;
pub mod index;
pub mod interactions;
pub mod memory;
pub mod models;
pub mod profile;
pub mod progress;
pub mod rng;
pub mod server;
pub mod simd;
pub mod storage;
pub mod tracking;
pub mod train;

pub use error::{Error, Result};
