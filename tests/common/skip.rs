//! Visible skips. A test whose peer is missing outside CI says so on the real stderr (cargo
//! captures `eprintln!`, so a skip would otherwise vanish) and appends one line to
//! `target/tmp/skipped-tests.txt`, which `.ci/run` counts in its summary. In CI (`CI` set) a
//! missing peer is a failure, never a skip.

use std::io::Write;

/// Where skips are recorded for the run's summary.
pub fn record_file() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests.txt")
}

/// Skips the calling test because `reason` (e.g. "dovecot is not installed (apt-get install
/// dovecot-pop3d)"); panics instead when `CI` is set.
pub fn skip(reason: &str) {
    skip_to(reason, &record_file());
}

/// [`skip`], recording in `file`.
pub fn skip_to(reason: &str, file: &std::path::Path) {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| s.rsplit_once('-').map_or(s.clone(), |(b, _)| b.to_string()))
        .unwrap_or_default();
    assert!(
        std::env::var_os("CI").is_none(),
        "{bin}::{test}: {reason}; CI must run this test (.ci/run installs its peers)"
    );
    let line = format!("SKIPPED {bin}::{test}: {reason}\n");
    // Straight to the descriptor: libtest captures only the print macros.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
    {
        let _ = f.write_all(line.as_bytes());
    }
}
