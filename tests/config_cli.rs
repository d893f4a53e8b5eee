//! `mailtool config check|show` and the config contract of mailtool.toml(5).

mod common;

use std::fs;

use common::*;

#[test]
fn unknown_key_names_file_line_and_column() {
    let root = tempfile::tempdir().unwrap();
    let cfg = root.path().join("etc/mail/mailtool.toml");
    fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    fs::write(
        &cfg,
        "hostname = \"mail.example1.com\"\n\n[smtp]\ngreet_paus = \"5s\"\n",
    )
    .unwrap();
    let out = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["config", "check"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(78));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "mailtool: {}: line 4, column 1: unknown field `greet_paus`",
            cfg.display()
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn seed_config_checks_and_shows() {
    let root = tempfile::tempdir().unwrap();
    let cfg = root.path().join("mailtool.toml");
    fs::write(
        &cfg,
        "hostname = \"mail.example1.com\"\n[smtp]\ngreet_pause = \"5000ms\"\nmax_message_size = 1000000\nptr_check = \"resolvable\"\n[queue]\ninterval = \"1h\"\n",
    )
    .unwrap();
    let out = run(
        mailtool()
            .arg("--config")
            .arg(&cfg)
            .args(["config", "check"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), format!("{}: OK\n", cfg.display()));
    let out = run(
        mailtool()
            .env("MAILTOOL_CONFIG", &cfg)
            .args(["config", "show", "--json"]),
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hostname"], "mail.example1.com");
    assert_eq!(v["smtp"]["greet_pause"], "5s");
    assert_eq!(v["smtp"]["max_recipients"], 100);
    assert_eq!(v["pop3"]["pop_before_smtp_ttl"], "15m");
    // The TOML that show prints is itself a valid config with the same meaning.
    let out = run(
        mailtool()
            .arg("--config")
            .arg(&cfg)
            .args(["config", "show"]),
        b"",
    );
    let shown = root.path().join("shown.toml");
    fs::write(&shown, &out.stdout).unwrap();
    let again = run(
        mailtool()
            .arg("--config")
            .arg(&shown)
            .args(["config", "show", "--json"]),
        b"",
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&again.stdout).unwrap(),
        v
    );
}

#[test]
fn missing_explicit_config_is_an_error() {
    let out = run(
        mailtool().args(["--config", "/nonexistent/mailtool.toml", "config", "check"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(66));
    assert_eq!(
        text(&out.stderr),
        "mailtool: /nonexistent/mailtool.toml: No such file or directory\n"
    );
}

#[test]
fn no_file_means_defaults() {
    let root = tempfile::tempdir().unwrap();
    let out = run(
        mailtool()
            .arg("--root")
            .arg(root.path())
            .args(["config", "check"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).ends_with("not found; using the defaults\n"));
}
