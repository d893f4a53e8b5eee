//! newaliases and praliases, black-box, under a temp --root. docs/sendmail-compat.md §2.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

fn seed_root() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/mail");
    fs::create_dir_all(&etc).unwrap();
    for f in ["aliases", "local-host-names"] {
        fs::copy(fixtures().join("seed-etc-mail").join(f), etc.join(f)).unwrap();
    }
    (root, etc)
}

fn newaliases(root: &Path, args: &[&str]) -> std::process::Output {
    run(
        mailtool()
            .arg("--root")
            .arg(root)
            .arg("newaliases")
            .args(args),
        b"",
    )
}

#[test]
fn seed_aliases_statistics_line() {
    // §2.4: N aliases, the longest RHS, and the sum of len(key)+len(RHS).
    let (root, etc) = seed_root();
    let out = newaliases(root.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rhs = "who@example1.com,\t\texample";
    let total = 10 + 4 + 13 + 10 + 5 + 10 + 5 + rhs.len();
    assert_eq!(
        text(&out.stdout),
        format!(
            "{}: 4 aliases, longest {} bytes, {total} bytes total\n",
            etc.join("aliases").display(),
            rhs.len()
        )
    );
    assert!(etc.join("aliases.db").exists());
    // §2.5: the @ marker is stored; praliases leaves it out.
    let q = run(
        mailtool()
            .args(["makemap", "-q", "@", "hash"])
            .arg(etc.join("aliases")),
        b"",
    );
    assert_eq!(text(&q.stdout), "@\n");
    let dump = newaliases(root.path(), &["--dump"]);
    assert_eq!(
        text(&dump.stdout),
        format!("abuse:postmaster\nmailer-daemon:postmaster\npostmaster:root\nstaff:{rhs}\n")
    );
}

#[test]
fn bad_lines_exit_70_and_good_lines_are_built() {
    let (root, etc) = seed_root();
    fs::write(
        etc.join("aliases"),
        "root: admin\nno colon here\nempty:\nfoo@elsewhere.org: x\n\tcontinued\n# c\n\tstray\nRoot: second\n",
    )
    .unwrap();
    let out = newaliases(root.path(), &[]);
    assert_eq!(out.status.code(), Some(70));
    let f = etc.join("aliases").display().to_string();
    assert_eq!(
        text(&out.stderr),
        format!(
            "{f}: line 2: no colon here... missing colon\n\
             {f}: line 3: empty:... missing value for alias\n\
             {f}: line 5: foo@elsewhere.org... cannot alias non-local names\n\
             {f}: line 7: Non-continuation line starts with space\n\
             {f}: line 8: root... Warning: duplicate alias name root\n"
        )
    );
    // §2.3: the later duplicate wins; both count.
    assert_eq!(
        text(&out.stdout),
        format!("{f}: 2 aliases, longest 6 bytes, 19 bytes total\n")
    );
    let dump = newaliases(root.path(), &["--dump"]);
    assert_eq!(text(&dump.stdout), "root:second\n");
}

#[test]
fn missing_file_and_lock() {
    let root = tempfile::tempdir().unwrap();
    let out = newaliases(root.path(), &[]);
    assert_eq!(out.status.code(), Some(66));
    assert!(
        text(&out.stderr).starts_with("newaliases: cannot open "),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).ends_with(": No such file or directory\n"));

    let (root, etc) = seed_root();
    let f = fs::File::open(etc.join("aliases")).unwrap();
    f.lock().unwrap();
    let out = newaliases(root.path(), &[]);
    assert_eq!(out.status.code(), Some(75));
    assert_eq!(
        text(&out.stderr),
        format!(
            "Alias file {} is locked (maybe being rebuilt)\n",
            etc.join("aliases").display()
        )
    );
    drop(f);
}

#[test]
fn links_and_environment() {
    // cron calls `newaliases` with the root in the environment (mailtool.toml(5), ENVIRONMENT: MAILTOOL_ROOT).
    let (root, etc) = seed_root();
    let dir = tempfile::tempdir().unwrap();
    let na = link(dir.path(), "newaliases");
    let out = run(
        std::process::Command::new(&na).env("MAILTOOL_ROOT", root.path()),
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(": 4 aliases,"));
    let pa = link(dir.path(), "praliases");
    let out = run(
        std::process::Command::new(&pa)
            .env("MAILTOOL_ROOT", root.path())
            .arg("postmaster"),
        b"",
    );
    assert_eq!(text(&out.stdout), "postmaster:root\n");
    let out = run(
        std::process::Command::new(&pa)
            .env("MAILTOOL_ROOT", root.path())
            .arg("--json"),
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4);
    // --root after the subcommand works too.
    let out = run(
        mailtool().arg("newaliases").arg("--root").arg(root.path()),
        b"",
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(etc.join("aliases.db").exists());
}
