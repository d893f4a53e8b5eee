//! The checked-in completions/ and man/ must be what the binary generates now. Regenerate with
//! `cargo run -- completions --dir completions && cargo run -- man --dir man`.

mod common;

use std::fs;
use std::path::Path;

use common::*;

fn compare(kind: &str, checked_in: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(mailtool().args([kind, "--dir"]).arg(tmp.path()), b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut generated: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    generated.sort();
    let mut present: Vec<_> = fs::read_dir(checked_in)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    present.sort();
    assert_eq!(
        present,
        generated,
        "{kind}: file list differs; regenerate {}",
        checked_in.display()
    );
    assert!(!generated.is_empty());
    for name in generated {
        let want = fs::read(tmp.path().join(&name)).unwrap();
        let have = fs::read(checked_in.join(&name)).unwrap();
        assert!(
            want == have,
            "{} is stale; regenerate it with `mailtool {kind} --dir`",
            checked_in.join(&name).display()
        );
    }
}

#[test]
fn completions_are_current() {
    compare(
        "completions",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("completions"),
    );
}

#[test]
fn man_pages_are_current() {
    compare("man", &Path::new(env!("CARGO_MANIFEST_DIR")).join("man"));
}
