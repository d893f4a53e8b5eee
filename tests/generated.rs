//! The checked-in completions/ and man/ (section 1 from the clap tree, section 5 from
//! src/cli/man5/) must be what the binary generates now. Regenerate with
//! `cargo run -- completions --dir completions && cargo run -- man --dir man`.
//! mailtool.toml(5) must document every key `mailtool config show` prints.

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

/// The file-format pages are written by `mailtool man --dir` too, as proper section-5 pages.
#[test]
fn section_5_pages_are_generated() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(mailtool().args(["man", "--dir"]).arg(tmp.path()), b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for name in [
        "mailtool.toml",
        "mailtool-access",
        "mailtool-virtusertable",
        "mailtool-aliases",
    ] {
        let page = fs::read_to_string(tmp.path().join(format!("{name}.5")))
            .unwrap_or_else(|e| panic!("{name}.5 was not generated: {e}"));
        assert!(
            page.starts_with(&format!(".TH {} 5 ", name.replace('-', "\\-"))),
            "{name}.5: {}",
            page.lines().next().unwrap_or("")
        );
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH EXAMPLES",
            ".SH FILES",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(page.contains(section), "{name}.5 has no {section}");
        }
    }
    // The section-1 pages point to them.
    let main = fs::read_to_string(tmp.path().join("mailtool.1")).unwrap();
    assert!(
        main.contains("\\fBmailtool.toml\\fR(5)"),
        "mailtool.1 SEE ALSO"
    );
}

/// `(table, key)` pairs documented in mailtool.toml.5: `.TP` tags `\fBkey\fR …` under the
/// `.SS [table]` (or `.SS "top level"`) headings of the KEYS section.
fn documented_keys(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut table: Option<String> = None;
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        if line.starts_with(".SH") {
            table = None;
        } else if let Some(h) = line.strip_prefix(".SS ") {
            let h = h.trim_matches('"');
            table = if h == "top level" {
                Some(String::new())
            } else {
                h.strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .map(str::to_string)
            };
        } else if line == ".TP"
            && let Some(t) = &table
            && let Some(tag) = lines.next()
            && let Some(rest) = tag.strip_prefix("\\fB")
            && let Some((key, _)) = rest.split_once("\\fR")
        {
            out.push((t.clone(), key.to_string()));
        }
    }
    out
}

/// Every key `mailtool config show` prints is documented in man/mailtool.toml.5, and every
/// documented key exists.
#[test]
fn every_config_key_is_documented() {
    let root = tempfile::tempdir().unwrap();
    let out = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["config", "show"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown: toml::Table = toml::from_str(&text(&out.stdout)).expect("config show is TOML");
    let mut keys = Vec::new();
    for (k, v) in &shown {
        match v.as_table() {
            Some(t) => keys.extend(t.keys().map(|sub| (k.clone(), sub.clone()))),
            None => keys.push((String::new(), k.clone())),
        }
    }
    assert!(keys.len() > 50, "config show printed only {keys:?}");
    let page =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/mailtool.toml.5"))
            .unwrap();
    let documented = documented_keys(&page);
    let missing: Vec<String> = keys
        .iter()
        .filter(|k| !documented.contains(k))
        .map(|(t, k)| {
            if t.is_empty() {
                k.clone()
            } else {
                format!("{t}.{k}")
            }
        })
        .collect();
    assert!(
        missing.is_empty(),
        "keys printed by `mailtool config show` but not documented in man/mailtool.toml.5 \
         (add them to src/cli/man5/config.rs and regenerate): {missing:?}"
    );
    let stale: Vec<String> = documented
        .iter()
        .filter(|k| !keys.contains(k))
        // `[backends.NAME]` is a template that `config show` prints only when one is set;
        // src/cli/man5/config.rs checks its keys against the code.
        .filter(|(t, _)| !t.ends_with(".NAME"))
        // So is `[[milter]]`, an array of tables that is empty by default.
        .filter(|(t, _)| t != "[milter]")
        .map(|(t, k)| format!("{t}.{k}"))
        .collect();
    assert!(
        stale.is_empty(),
        "keys documented in man/mailtool.toml.5 that `config show` does not print: {stale:?}"
    );
}
