//! The integration tests, one module per file of `tests/`, built as ONE test binary.
//!
//! Each test binary links the whole library (and its debug info) again: twenty of them took most
//! of CI's release build. One binary compiles the shared code once, links once and trains the
//! shared fixture model once (`common::trained_model`). Run one file's tests with
//! `cargo test --release --test integration browser::` (a module path filter).
//! `Cargo.toml` sets `autotests = false`, so a new file here must be added below.

mod common;

mod api;
mod browser;
mod cli;
mod connections;
mod data;
mod deploy;
mod download;
mod live;
mod mlflow;
mod openapi;
mod profile;
mod request_parsing;
mod scale_out;
mod schemathesis;
mod serving;
mod store;
mod synth;
mod titles;
mod tracking_store;
mod web_vendor;
