//! `newaliases` (sendmail -bi) and `praliases`: build and print the aliases database
//! (docs/sendmail-compat.md §2).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use super::{Fail, GlobalOpts, stdout_error};
use crate::config::Config;
use crate::maps::open::AnyMap;
use crate::maps::source::aliases::{self, Severity};
use crate::maps::store::{self, Builder, Meta};
use crate::sysexits::*;
use crate::util::io_message;

#[derive(Debug, Clone, Args)]
#[command(
    about = "Rebuild the aliases database (sendmail newaliases(1))",
    long_about = "Reads the aliases(5) file named by [maps] aliases in mailtool.toml (default \
/etc/mail/aliases) and writes aliases.db beside it, with sendmail's `@` completeness marker. \
Bad lines are reported as FILE: line N: TEXT and make the exit status 70, but the good lines \
are still built. A later duplicate name wins, with a warning.",
    after_help = "Exit status: 0 ok; 66 the aliases file cannot be read; 70 some lines were \
bad (the database was built from the rest); 73 the database cannot be written; 75 another \
newaliases holds the lock."
)]
pub struct NewaliasesArgs {
    /// Also list every alias stored
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Print the database instead of rebuilding it (like praliases)
    #[arg(long)]
    pub dump: bool,
    /// With --dump: print JSON
    #[arg(long, requires = "dump")]
    pub json: bool,
    /// The aliases file to build [default: from the configuration]
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct PraliasesArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Alias names to look up; all when none are given
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

/// The aliases source the config names, and the class-w test for `name@domain` entries.
fn source_and_class(
    global: &GlobalOpts,
    file: Option<&PathBuf>,
) -> Result<(PathBuf, Vec<String>), Fail> {
    let cfg = Config::load(&global.locate())?;
    let source = match file {
        Some(f) => f.clone(),
        None => cfg.map_path(&cfg.settings.maps.aliases),
    };
    let mut local = vec!["localhost".to_string(), cfg.hostname().to_ascii_lowercase()];
    let lhn = cfg.map_path(&cfg.settings.maps.local_host_names);
    if let Ok(text) = std::fs::read_to_string(&lhn) {
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            local.extend(line.split_whitespace().map(|w| w.to_ascii_lowercase()));
        }
    }
    Ok((source, local))
}

pub fn run(global: &GlobalOpts, a: &NewaliasesArgs) -> Result<i32, Fail> {
    let (source, local) = source_and_class(global, a.file.as_ref())?;
    let db = store::db_path(&source);
    if a.dump {
        return print_db(&db, &[], a.json);
    }
    build(global, &source, &db, &local, a.verbose, true)
}

/// Builds `db` from the aliases file `source` (newaliases, and `migrate` when the database
/// goes to another directory); `local` is class w, for `name@domain` entries. `stats` prints
/// sendmail's statistics line (not when stdout carries JSON).
pub(crate) fn build(
    global: &GlobalOpts,
    source: &Path,
    db: &Path,
    local: &[String],
    verbose: bool,
    stats: bool,
) -> Result<i32, Fail> {
    let shown = source.display().to_string();
    let mut file = File::open(source).map_err(|e| {
        Fail::new(
            EX_NOINPUT,
            format!("newaliases: cannot open {shown}: {}", io_message(&e)),
        )
    })?;
    // sendmail takes a non-blocking exclusive lock on the source while it rebuilds.
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Fail::new(
                EX_TEMPFAIL,
                format!("Alias file {shown} is locked (maybe being rebuilt)"),
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            eprintln!("warning: cannot lock {shown}: {}", io_message(&e));
        }
    }
    let mut text = Vec::new();
    file.read_to_end(&mut text).map_err(|e| {
        Fail::new(
            EX_NOINPUT,
            format!("newaliases: cannot read {shown}: {}", io_message(&e)),
        )
    })?;
    let is_local = |d: &str| local.iter().any(|l| l.eq_ignore_ascii_case(d));
    let parsed = aliases::parse(&text, aliases::ParseOptions::default(), &is_local);

    // A later duplicate overwrites the earlier one, with a warning; both count in the stats.
    let mut latest: hashbrown::HashMap<&[u8], usize> = hashbrown::HashMap::new();
    let mut diags: Vec<(u32, Severity, String)> = parsed
        .diagnostics
        .iter()
        .map(|d| (d.line, d.severity, d.text.clone()))
        .collect();
    for (i, e) in parsed.entries.iter().enumerate() {
        if latest.insert(&e.key, i).is_some() {
            let k = String::from_utf8_lossy(&e.key);
            diags.push((
                e.line,
                Severity::Warning,
                format!("{k}... Warning: duplicate alias name {k}"),
            ));
        }
    }
    diags.sort_by_key(|d| d.0);
    let errors = diags.iter().any(|d| d.1 == Severity::Error);
    {
        let mut err = io::stderr().lock();
        for (line, _, text) in &diags {
            let _ = writeln!(err, "{shown}: line {line}: {text}");
        }
    }

    let mut rows: Vec<(&[u8], &[u8])> = latest
        .values()
        .map(|&i| {
            (
                parsed.entries[i].key.as_slice(),
                parsed.entries[i].value.as_slice(),
            )
        })
        .collect();
    // The `@` -> `@` marker tells readers (sendmail's AliasWait) the database is complete.
    rows.push((b"@", b"@"));
    rows.sort_unstable();
    let write = || -> Result<(), store::StoreError> {
        let mut b = Builder::create(
            db,
            Meta {
                kind: "hash".into(),
                nul: false,
            },
        )?;
        for (k, v) in &rows {
            b.push(k, v)?;
        }
        b.commit()
    };
    write().map_err(|e| {
        Fail::new(
            EX_CANTCREAT,
            format!("newaliases: cannot write {}: {}", db.display(), e.reason()),
        )
    })?;
    drop(file);
    super::give_to_server_group(global, db);

    let mut out = io::stdout().lock();
    if verbose {
        for (k, v) in rows.iter().filter(|r| r.0 != b"@") {
            writeln!(
                out,
                "{}:{}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )
            .map_err(stdout_error)?;
        }
    }
    if stats {
        let s = aliases::stats(&parsed.entries);
        writeln!(
            out,
            "{shown}: {} aliases, longest {} bytes, {} bytes total",
            s.aliases, s.longest, s.bytes
        )
        .map_err(stdout_error)?;
    }
    Ok(if errors { EX_SOFTWARE } else { EX_OK })
}

pub fn praliases(global: &GlobalOpts, a: &PraliasesArgs) -> Result<i32, Fail> {
    super::restore_sigpipe();
    let (source, _) = source_and_class(global, None)?;
    print_db(&store::db_path(&source), &a.names, a.json)
}

/// praliases output: `key:value` per alias, the `@` marker left out.
fn print_db(db: &Path, names: &[String], json: bool) -> Result<i32, Fail> {
    let map = AnyMap::open(db).map_err(|e| {
        Fail::new(
            EX_NOINPUT,
            format!("praliases: {}: {}", db.display(), e.reason()),
        )
    })?;
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut missing = false;
    if names.is_empty() {
        map.for_each(|k, v| {
            if k != b"@" {
                pairs.push((k.to_vec(), v.to_vec()));
            }
        })
        .map_err(|e| {
            Fail::new(
                EX_SOFTWARE,
                format!("praliases: {}: {}", db.display(), e.reason()),
            )
        })?;
    } else {
        let keys: Vec<Vec<u8>> = names
            .iter()
            .map(|n| n.to_ascii_lowercase().into_bytes())
            .collect();
        let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
        let vals = map
            .get_many(&refs)
            .map_err(|e| Fail::new(EX_TEMPFAIL, format!("praliases: {}", e.reason())))?;
        for (k, v) in keys.into_iter().zip(vals) {
            match v {
                Some(v) => pairs.push((k, v)),
                None => missing = true,
            }
        }
    }
    let mut out = BufWriter::new(io::stdout().lock());
    if json {
        let arr: Vec<serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| serde_json::json!({"name": String::from_utf8_lossy(k), "value": String::from_utf8_lossy(v)}))
            .collect();
        serde_json::to_writer_pretty(&mut out, &arr).map_err(|e| stdout_error(e.into()))?;
        writeln!(out).map_err(stdout_error)?;
    } else {
        for (k, v) in &pairs {
            out.write_all(k)
                .and_then(|_| out.write_all(b":"))
                .and_then(|_| out.write_all(v))
                .and_then(|_| out.write_all(b"\n"))
                .map_err(stdout_error)?;
        }
    }
    out.flush().map_err(stdout_error)?;
    Ok(if missing { 1 } else { EX_OK })
}
