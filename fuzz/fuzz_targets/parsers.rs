//! Every MovieLens parser on arbitrary bytes: the first byte picks a layout (and strict mode),
//! the rest is cut into that layout's files at each 0xFE byte (a byte UTF-8 never uses). Loading
//! may fail, but must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use movierec::data::{load_from_memory, LoadOptions};

/// The files of each layout, in the order the input's parts fill them.
const LAYOUTS: [&[&str]; 4] = [
    &[
        "movies.csv",
        "ratings.csv",
        "links.csv",
        "tags.csv",
        "genome-tags.csv",
        "genome-scores.csv",
    ],
    &["movies.dat", "ratings.dat", "tags.dat"],
    &["movies.dat", "ratings.dat", "users.dat"],
    &["u.genre", "u.item", "u.data"],
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let names = LAYOUTS[usize::from(selector & 3)];
    let files = names
        .iter()
        .zip(rest.split(|&b| b == 0xFE))
        .map(|(name, contents)| (name.to_string(), contents.to_vec()));
    let options = LoadOptions {
        strict: selector & 4 != 0,
        ..LoadOptions::default()
    };
    if let Ok(dataset) = load_from_memory("fuzz", files, &options) {
        // The summary is part of every load's output: it must not panic either.
        let _ = dataset.report.to_string();
    }
});
