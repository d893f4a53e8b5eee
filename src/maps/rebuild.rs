//! Building a map database from its text source: the aliases database (newaliases, migrate,
//! doctor --fix) and a makemap-style map from a file (doctor --fix), plus handing a new map to
//! the server's group. The commands print; this module only builds and reports.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::MapError;
use super::build::{self, BuildError, Spec};
use super::source::aliases::{self, Severity};
use super::source::makemap::ParseOptions;
use super::store::{self, Builder, DupPolicy, Meta};
use super::table::MutableMap;
use crate::config::Config;
use crate::util::io_message;

/// Why an aliases database could not be built. Nothing was renamed into place: the old
/// database, if any, is intact.
#[derive(Debug, thiserror::Error)]
pub enum AliasesError {
    #[error("cannot open {}: {message}", path.display())]
    Open { path: PathBuf, message: String },
    /// sendmail's wording: another newaliases is at work.
    #[error("Alias file {} is locked (maybe being rebuilt)", path.display())]
    Locked { path: PathBuf },
    #[error("cannot read {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("cannot write {}: {message}", path.display())]
    Write { path: PathBuf, message: String },
    /// The database is a backend table that could not be written now.
    #[error("{0}")]
    Backend(String),
}

/// What a build of the aliases database did.
#[derive(Debug)]
pub struct AliasesBuilt {
    /// Line diagnostics, sorted by line: `(line, severity, text)`.
    pub diagnostics: Vec<(u32, Severity, String)>,
    /// The records stored, sorted, without the `@` completeness marker.
    pub rows: Vec<(Vec<u8>, Vec<u8>)>,
    /// sendmail's statistics (every entry read, duplicates included).
    pub stats: aliases::Stats,
    /// The source could not be locked (the build went ahead).
    pub lock_warning: Option<String>,
}

impl AliasesBuilt {
    /// Some line was an error (newaliases exits 70; the good lines are still built).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.1 == Severity::Error)
    }
}

/// Class w for `name@domain` entries of the aliases file: `localhost`, the host name and
/// local-host-names, in lower case.
pub fn local_names(cfg: &Config) -> Vec<String> {
    let mut local = vec!["localhost".to_string(), cfg.hostname().to_ascii_lowercase()];
    let lhn = cfg.map_path(&cfg.settings.maps.local_host_names);
    if let Ok(text) = std::fs::read_to_string(&lhn) {
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            local.extend(line.split_whitespace().map(|w| w.to_ascii_lowercase()));
        }
    }
    local
}

/// Builds `db` from the aliases file `source`, as newaliases does: a later duplicate name wins
/// (with a warning), bad lines are reported and skipped, and `@` -> `@` marks the database
/// complete for readers. `local` is class w.
pub fn build_aliases(
    source: &Path,
    db: &Path,
    local: &[String],
) -> Result<AliasesBuilt, AliasesError> {
    build_aliases_with(source, local, |all| {
        let write = || -> Result<(), store::StoreError> {
            let mut b = Builder::create(
                db,
                Meta {
                    kind: "hash".into(),
                    nul: false,
                },
            )?;
            for (k, v) in &all {
                b.push(k, v)?;
            }
            b.commit()
        };
        write().map_err(|e| AliasesError::Write {
            path: db.to_path_buf(),
            message: e.reason().to_string(),
        })
    })
}

/// [`build_aliases`] into any writable map (a backend table): the same rules, and one
/// `replace_all`, so readers see the old aliases or the new ones.
pub fn build_aliases_into(
    source: &Path,
    table: &dyn MutableMap,
    local: &[String],
) -> Result<AliasesBuilt, AliasesError> {
    build_aliases_with(source, local, |all| {
        table.replace_all(all).map(|_| ()).map_err(|e| match e {
            MapError::Backend(e) => AliasesError::Backend(e.to_string()),
            e => AliasesError::Write {
                path: PathBuf::from(table.describe()),
                message: e.to_string(),
            },
        })
    })
}

/// Parses the aliases file and hands every record, in key order and with the `@` marker, to
/// `write`.
fn build_aliases_with(
    source: &Path,
    local: &[String],
    write: impl FnOnce(Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), AliasesError>,
) -> Result<AliasesBuilt, AliasesError> {
    let mut file = File::open(source).map_err(|e| AliasesError::Open {
        path: source.to_path_buf(),
        message: io_message(&e),
    })?;
    // sendmail takes a non-blocking exclusive lock on the source while it rebuilds.
    let lock_warning = match file.try_lock() {
        Ok(()) => None,
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(AliasesError::Locked {
                path: source.to_path_buf(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => Some(format!(
            "cannot lock {}: {}",
            source.display(),
            io_message(&e)
        )),
    };
    let mut text = Vec::new();
    file.read_to_end(&mut text)
        .map_err(|e| AliasesError::Read {
            path: source.to_path_buf(),
            message: io_message(&e),
        })?;
    let is_local = |d: &str| local.iter().any(|l| l.eq_ignore_ascii_case(d));
    let parsed = aliases::parse(&text, aliases::ParseOptions::default(), &is_local);

    let mut latest: hashbrown::HashMap<&[u8], usize> = hashbrown::HashMap::new();
    let mut diagnostics: Vec<(u32, Severity, String)> = parsed
        .diagnostics
        .iter()
        .map(|d| (d.line, d.severity, d.text.clone()))
        .collect();
    for (i, e) in parsed.entries.iter().enumerate() {
        if latest.insert(&e.key, i).is_some() {
            let k = String::from_utf8_lossy(&e.key);
            diagnostics.push((
                e.line,
                Severity::Warning,
                format!("{k}... Warning: duplicate alias name {k}"),
            ));
        }
    }
    diagnostics.sort_by_key(|d| d.0);

    let mut rows: Vec<(Vec<u8>, Vec<u8>)> = latest
        .values()
        .map(|&i| {
            (
                parsed.entries[i].key.clone(),
                parsed.entries[i].value.clone(),
            )
        })
        .collect();
    rows.sort_unstable();
    // The `@` -> `@` marker tells readers (sendmail's AliasWait) the database is complete.
    let mut all: Vec<(Vec<u8>, Vec<u8>)> = rows
        .iter()
        .cloned()
        .chain(std::iter::once((b"@".to_vec(), b"@".to_vec())))
        .collect();
    all.sort_unstable();
    write(all)?;
    drop(file);
    Ok(AliasesBuilt {
        diagnostics,
        rows: rows.into_iter().filter(|r| r.0 != b"@").collect(),
        stats: aliases::stats(&parsed.entries),
        lock_warning,
    })
}

/// Builds the map for the makemap source file `source` (`NAME` -> `NAME.db`), as
/// `makemap hash NAME < NAME` does with `opts`. Line errors are in the outcome.
pub fn build_from_file(source: &Path, opts: ParseOptions) -> Result<build::Outcome, BuildError> {
    let mut input = File::open(source).map_err(BuildError::Input)?;
    let spec = Spec {
        opts,
        policy: DupPolicy::FirstWins,
        run_bytes: build::RUN_BYTES,
    };
    let meta = Meta {
        kind: "hash".into(),
        nul: false,
    };
    build::build_new(
        &store::db_path(source),
        meta,
        &mut input,
        &spec,
        build::Hooks::none(),
    )
}

/// When run as root, gives a freshly built map to the server's group (mode 0640 stays), so the
/// server, which drops root, can read it; sendmail's makemap does the same with TrustedUser.
pub fn give_to_server_group(group: &str, path: &Path) {
    if !crate::sys::is_root() {
        return;
    }
    if let Some(gid) = crate::sys::account::group_by_name(group) {
        let _ = std::os::unix::fs::chown(path, None, Some(gid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::Map;
    use crate::maps::open::AnyMap;

    #[test]
    fn aliases_build_with_marker_duplicates_and_errors() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("aliases");
        std::fs::write(
            &src,
            "postmaster: root\nroot: example\nbad line without colon\nroot: other\n",
        )
        .unwrap();
        let db = store::db_path(&src);
        let b = build_aliases(&src, &db, &["localhost".into()]).unwrap();
        assert!(b.has_errors(), "{:?}", b.diagnostics);
        assert!(
            b.diagnostics
                .iter()
                .any(|d| d.2 == "root... Warning: duplicate alias name root"),
            "{:?}",
            b.diagnostics
        );
        assert_eq!(b.stats.aliases, 3);
        assert_eq!(
            b.rows,
            vec![
                (b"postmaster".to_vec(), b"root".to_vec()),
                (b"root".to_vec(), b"other".to_vec())
            ]
        );
        let m = AnyMap::open(&db).unwrap();
        assert_eq!(m.get(b"@").unwrap(), Some(b"@".to_vec()));
        assert_eq!(m.get(b"root").unwrap(), Some(b"other".to_vec()));
        assert!(matches!(
            build_aliases(&d.path().join("none"), &db, &[]),
            Err(AliasesError::Open { .. })
        ));
    }

    #[test]
    fn a_makemap_source_file_builds_its_map() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("localip");
        std::fs::write(&src, "127.0.0.2\n10.1\n").unwrap();
        let opts = ParseOptions {
            allow_empty: true,
            ..ParseOptions::default()
        };
        let out = build_from_file(&src, opts).unwrap();
        assert!(out.diagnostics.is_empty());
        let m = AnyMap::open(&store::db_path(&src)).unwrap();
        assert_eq!(m.get(b"10.1").unwrap(), Some(Vec::new()));
        // Without -e a key alone is a line error, as makemap reports it.
        let out = build_from_file(&src, ParseOptions::default()).unwrap();
        assert_eq!(out.diagnostics.len(), 2);
    }
}
