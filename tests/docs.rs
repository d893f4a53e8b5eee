//! Citations in the code, tests and docs point at documents a reader has: a section of a file
//! in `docs/` (`docs/sendmail-compat.md §4.4`) or a public document. Notes kept outside the
//! repository (`SENDMAIL-SPEC`, `SECURITY-TESTS`, `CONFIG.md`) may not be cited.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const TREES: &[&str] = &[
    "src",
    "tests",
    "fuzz",
    "benches",
    "contrib",
    "README.md",
    "docs",
];

/// Build output and fuzzing scratch directories, not part of the sources.
const SKIP_DIRS: &[&str] = &["target", "artifacts", "coverage", ".git"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn walk(path: &Path, out: &mut Vec<PathBuf>) {
    let Ok(meta) = fs::metadata(path) else {
        return;
    };
    if meta.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    let Ok(entries) = fs::read_dir(path) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() && SKIP_DIRS.iter().any(|s| name == *s) {
            continue;
        }
        walk(&p, out);
    }
}

/// Every file of the trees, with its text (lossy: corpus files may be binary), except this one.
fn sources() -> Vec<(PathBuf, String)> {
    let root = root();
    let me = root.join("tests").join("docs.rs");
    let mut files = Vec::new();
    for t in TREES {
        walk(&root.join(t), &mut files);
    }
    files.sort();
    files
        .into_iter()
        .filter(|p| *p != me)
        .filter_map(|p| {
            let bytes = fs::read(&p).ok()?;
            let rel = p.strip_prefix(&root).unwrap_or(&p).to_path_buf();
            Some((rel, String::from_utf8_lossy(&bytes).into_owned()))
        })
        .collect()
}

#[test]
fn no_citations_of_documents_outside_the_repository() {
    let mut bad = Vec::new();
    for (path, text) in sources() {
        for (n, line) in text.lines().enumerate() {
            for name in ["SENDMAIL-SPEC", "SECURITY-TESTS", "CONFIG.md"] {
                if line.contains(name) {
                    bad.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "cite docs/sendmail-compat.md, docs/security.md or mailtool.toml(5) instead:\n{}",
        bad.join("\n")
    );
}

/// `docs/NAME.md §N[.M…]` citations in `text`: (NAME, section number).
fn citations(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("docs/") {
        rest = &rest[i + "docs/".len()..];
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        let Some(after) = rest[name_len..].strip_prefix(".md") else {
            continue;
        };
        let after = after.strip_prefix('`').unwrap_or(after);
        let Some(after) = after.strip_prefix(" §") else {
            continue;
        };
        let num_len = after
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(after.len());
        let num = after[..num_len].trim_end_matches('.');
        if !name.is_empty() && !num.is_empty() {
            out.push((name.to_string(), num.to_string()));
        }
    }
    out
}

/// The section numbers of a Markdown file's headings: `## 1. makemap` gives `1`,
/// `### 1.2 Flags` gives `1.2`.
fn heading_numbers(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| {
            let word = l.trim_start_matches('#').split_whitespace().next()?;
            let num = word.trim_end_matches('.');
            (!num.is_empty() && num.chars().all(|c| c.is_ascii_digit() || c == '.'))
                .then(|| num.to_string())
        })
        .collect()
}

#[test]
fn cited_sections_exist() {
    let docs = root().join("docs");
    let mut headings: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    let mut bad = Vec::new();
    let mut count = 0;
    for (path, text) in sources() {
        for (n, line) in text.lines().enumerate() {
            for (name, num) in citations(line) {
                count += 1;
                let known = headings.entry(name.clone()).or_insert_with(|| {
                    fs::read_to_string(docs.join(format!("{name}.md")))
                        .ok()
                        .map(|t| heading_numbers(&t))
                });
                let why = match known {
                    None => "no such file",
                    Some(h) if !h.contains(&num) => "no heading with that number",
                    Some(_) => continue,
                };
                bad.push(format!(
                    "{}:{}: docs/{name}.md §{num}: {why}",
                    path.display(),
                    n + 1
                ));
            }
        }
    }
    assert!(bad.is_empty(), "broken citations:\n{}", bad.join("\n"));
    // The scan itself works: the code cites these documents in many places.
    assert!(count > 100, "only {count} citations found");
}

/// Function names the docs give after a `path.rs` in the same paragraph or list item, as in
/// "`tests/serve_smtp.rs` `smuggled_commands_never_run`": backticked words with an underscore.
fn cited_functions(doc: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_rs = false;
    for (n, line) in doc.lines().enumerate() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with("* ") || t.starts_with('#') || t.starts_with('|') {
            in_rs = false;
        }
        for (i, word) in line.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            if word.ends_with(".rs") {
                in_rs = true;
            } else if in_rs
                && word.contains('_')
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                out.push((n + 1, word.to_string()));
            }
        }
    }
    out
}

#[test]
fn functions_named_in_the_docs_exist() {
    let code: String = sources()
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "rs"))
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join("\n");
    let mut bad = Vec::new();
    let mut count = 0;
    for name in ["security", "sendmail-compat"] {
        let doc = fs::read_to_string(root().join("docs").join(format!("{name}.md"))).unwrap();
        for (line, f) in cited_functions(&doc) {
            count += 1;
            if !code.contains(&format!("fn {f}(")) {
                bad.push(format!("docs/{name}.md:{line}: no fn {f}"));
            }
        }
    }
    assert!(bad.is_empty(), "renamed or removed:\n{}", bad.join("\n"));
    assert!(count > 20, "only {count} function names found");
}

#[test]
fn the_parsers_read_what_they_should() {
    assert_eq!(
        citations("see docs/sendmail-compat.md §4.4, `docs/security.md` §1–§2 and docs/x.md."),
        vec![
            ("sendmail-compat".to_string(), "4.4".to_string()),
            ("security".to_string(), "1".to_string()),
        ]
    );
    assert_eq!(
        citations("(docs/sendmail-compat.md §6.6.)"),
        vec![("sendmail-compat".to_string(), "6.6".to_string())]
    );
    assert_eq!(
        cited_functions(
            "* `tests/a.rs` `one_test`, `two`\n  `three_x`; `[smtp] a_b`\n* `four_y`\n"
        ),
        vec![(1, "one_test".to_string()), (2, "three_x".to_string())]
    );
    let h = heading_numbers("# Title\n## 1. makemap\n### 1.2 Flags\n## Notes\n#x\n");
    assert_eq!(h.into_iter().collect::<Vec<_>>(), vec!["1", "1.2"]);
}

/// The modules of `src/`, as ARCHITECTURE.md names them: `smtp/proto`, `queue`, `sys/lock`.
fn modules() -> BTreeSet<String> {
    let src = root().join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut out = BTreeSet::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        let Some(stem) = rel.strip_suffix(".rs") else {
            continue;
        };
        let module = stem.strip_suffix("/mod").unwrap_or(stem);
        // The crate root, the binary, and test-only submodules are not modules to place.
        if module == "lib" || module.starts_with("bin/") || module.ends_with("/tests") {
            continue;
        }
        out.insert(module.to_string());
    }
    out
}

/// Issue 13: docs/ARCHITECTURE.md names every module, and every module path it names in
/// backticks exists, so the map cannot drift from the tree.
#[test]
fn architecture_names_every_module_and_nothing_that_is_gone() {
    let text = fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let mods = modules();
    let named: BTreeSet<String> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|s| s.split("::").next().unwrap_or(s).to_string())
        .collect();
    // A module deeper than two levels is covered by its parent's row (`maps/bdb/page` by
    // `maps/bdb`), and `cli`'s one file per subcommand by the `cli` row.
    let placed = |m: &str| -> String {
        let parts: Vec<&str> = m.split('/').collect();
        let is_dir = root().join("src").join(m).is_dir();
        if parts.len() > 2 {
            parts[..2].join("/")
        } else if parts.len() == 2 && parts[0] == "cli" && !is_dir {
            "cli".to_string()
        } else {
            m.to_string()
        }
    };
    let missing: Vec<String> = mods
        .iter()
        .map(|m| placed(m))
        .filter(|m| !named.contains(m))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not name {missing:?}"
    );
    let gone: Vec<&String> = named
        .iter()
        .filter(|n| {
            let first = n.split('/').next().unwrap_or("");
            n.contains('/')
                && !first.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/')
                && !mods.contains(*n)
        })
        .collect();
    assert!(
        gone.is_empty(),
        "ARCHITECTURE.md names modules that do not exist: {gone:?}"
    );
    assert!(!text.contains("Not built yet"), "stale note");
}

/// Every source file the documents name (`src/queue/spool.rs`, `tests/serve_pop3.rs`) exists:
/// a file that moved must take its mentions along.
#[test]
fn files_named_in_the_docs_exist() {
    let mut docs = vec![
        root().join("README.md"),
        root().join("benches/README.md"),
        root().join("fuzz/README.md"),
    ];
    walk(&root().join("docs"), &mut docs);
    let mut missing = Vec::new();
    for doc in docs {
        let Ok(text) = fs::read_to_string(&doc) else {
            continue;
        };
        for (i, _) in text.match_indices(".rs") {
            let start = text[..i]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '/'))
                .map_or(0, |p| p + 1);
            let path = &text[start..i + 3];
            if (path.starts_with("src/") || path.starts_with("tests/"))
                && !root().join(path).exists()
            {
                missing.push(format!("{}: {path}", doc.display()));
            }
        }
    }
    assert!(missing.is_empty(), "named but missing: {missing:#?}");
}
