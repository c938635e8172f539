//! `movierec synth`: the binary writes a loadable, deterministic synthetic release.

use crate::common;

use common::{movierec, stderr, stdout};

#[test]
fn synth_writes_a_release_that_loads_and_repeats_for_a_seed() {
    let root = tempfile::tempdir().unwrap();
    let dir = |name: &str| root.path().join(name).to_str().unwrap().to_string();
    for name in ["a", "b"] {
        let output = movierec(&[
            "synth",
            "--out",
            &dir(name),
            "--scale",
            "0.001",
            "--seed",
            "3",
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(
            stdout(&output).contains("87 movies, 331 users"),
            "{}",
            stdout(&output)
        );
    }
    let dataset = movierec::data::load(&root.path().join("a")).unwrap();
    assert_eq!(dataset.movies.len(), 87);
    assert!(dataset.ratings.len() > 10_000);
    for file in ["movies.csv", "links.csv", "ratings.csv", "tags.csv"] {
        let read = |d: &str| std::fs::read(root.path().join(d).join(file)).unwrap();
        assert_eq!(read("a"), read("b"), "{file}");
    }
}

#[test]
fn synth_refuses_a_bad_scale_and_a_foreign_directory() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let output = movierec(&["synth", "--out", out.to_str().unwrap(), "--scale", "0"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--scale"), "{}", stderr(&output));
    let output = movierec(&["synth", "--out", out.to_str().unwrap(), "--taste", "20"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--taste must be from 0 (popularity alone) to 16, not 20"),
        "{}",
        stderr(&output)
    );
    assert!(!out.exists(), "a refused synth wrote {}", out.display());

    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let output = movierec(&["synth", "--out", out.to_str().unwrap(), "--scale", "0.001"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("refusing"), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn synth_help_says_it_is_for_benchmarks() {
    let output = movierec(&["synth", "--help"]);
    assert!(output.status.success());
    assert!(
        stdout(&output).contains("for benchmarks"),
        "{}",
        stdout(&output)
    );
}
