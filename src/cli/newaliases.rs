//! `newaliases` (sendmail -bi) and `praliases`: build and print the aliases database
//! (docs/sendmail-compat.md §2).

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use super::{Fail, GlobalOpts, stdout_error};
use crate::config::Config;
use crate::maps::open::AnyMap;
use crate::maps::rebuild::{self, AliasesError};
use crate::maps::store;
use crate::sysexits::*;

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

/// The aliases source the config names, and class w for `name@domain` entries.
fn source_and_class(
    global: &GlobalOpts,
    file: Option<&PathBuf>,
) -> Result<(PathBuf, Vec<String>), Fail> {
    let cfg = Config::load(&global.locate())?;
    let source = match file {
        Some(f) => f.clone(),
        None => cfg.map_path(&cfg.settings.maps.aliases),
    };
    Ok((source, rebuild::local_names(&cfg)))
}

pub fn run(global: &GlobalOpts, a: &NewaliasesArgs) -> Result<i32, Fail> {
    let cfg = Config::load(&global.locate())?;
    if a.file.is_none()
        && let Some((_, table)) = crate::config::split_backend_name(&cfg.settings.maps.aliases)
    {
        return remote(&cfg, table, a);
    }
    let (source, local) = source_and_class(global, a.file.as_ref())?;
    let db = store::db_path(&source);
    if a.dump {
        return print_db(&db, &[], a.json);
    }
    build(global, &source, &db, &local, a.verbose, true)
}

/// `[maps] aliases = "BACKEND:TABLE"`: the source is the file TABLE in mail_dir, and the
/// database is the table; `--dump` reads the table.
fn remote(cfg: &Config, table: &str, a: &NewaliasesArgs) -> Result<i32, Fail> {
    let backends = crate::maps::backend::Backends::new(cfg);
    let name = &cfg.settings.maps.aliases;
    let map = crate::maps::table::open_mutable(cfg, &backends, name)
        .map_err(|e| Fail::new(EX_CONFIG, format!("newaliases: {e}")))?;
    if a.dump {
        let pairs = aliases_in_table(map.as_ref())
            .map_err(|e| Fail::new(EX_TEMPFAIL, format!("praliases: {name}: {e}")))?;
        return print_pairs(&pairs, a.json).map(|()| EX_OK);
    }
    let source = cfg.map_path(table);
    let local = rebuild::local_names(cfg);
    let built = rebuild::build_aliases_into(&source, map.as_ref(), &local).map_err(aliases_fail)?;
    report(&source.display().to_string(), &built, a.verbose, true)
}

/// Alias names with their values, as praliases prints them.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Every alias in a backend table, the `@` completeness marker left out.
fn aliases_in_table(
    map: &dyn crate::maps::table::MutableMap,
) -> Result<Pairs, crate::maps::MapError> {
    Ok(map
        .iterate()?
        .into_iter()
        .filter(|r| r.key != b"@")
        .map(|r| (r.key, r.value))
        .collect())
}

fn aliases_fail(e: AliasesError) -> Fail {
    let code = match &e {
        AliasesError::Open { .. } | AliasesError::Read { .. } => EX_NOINPUT,
        AliasesError::Locked { .. } | AliasesError::Backend(_) => EX_TEMPFAIL,
        AliasesError::Write { .. } => EX_CANTCREAT,
    };
    match e {
        AliasesError::Locked { .. } => Fail::new(code, e.to_string()),
        _ => Fail::new(code, format!("newaliases: {e}")),
    }
}

/// Builds `db` from the aliases file `source` (newaliases, and `migrate` when the database
/// goes to another directory) and prints what sendmail prints; `local` is class w. `stats`
/// prints sendmail's statistics line (not when stdout carries JSON).
pub(crate) fn build(
    global: &GlobalOpts,
    source: &Path,
    db: &Path,
    local: &[String],
    verbose: bool,
    stats: bool,
) -> Result<i32, Fail> {
    let shown = source.display().to_string();
    let built = rebuild::build_aliases(source, db, local).map_err(aliases_fail)?;
    super::give_to_server_group(global, db);
    report(&shown, &built, verbose, stats)
}

/// What sendmail prints after a build: line diagnostics on stderr, `-v` records and the
/// statistics line on stdout.
fn report(
    shown: &str,
    built: &rebuild::AliasesBuilt,
    verbose: bool,
    stats: bool,
) -> Result<i32, Fail> {
    {
        let mut err = io::stderr().lock();
        if let Some(w) = &built.lock_warning {
            let _ = writeln!(err, "warning: {w}");
        }
        for (line, _, text) in &built.diagnostics {
            let _ = writeln!(err, "{shown}: line {line}: {text}");
        }
    }

    let mut out = io::stdout().lock();
    if verbose {
        for (k, v) in &built.rows {
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
        let s = &built.stats;
        writeln!(
            out,
            "{shown}: {} aliases, longest {} bytes, {} bytes total",
            s.aliases, s.longest, s.bytes
        )
        .map_err(stdout_error)?;
    }
    Ok(if built.has_errors() {
        EX_SOFTWARE
    } else {
        EX_OK
    })
}

pub fn praliases(global: &GlobalOpts, a: &PraliasesArgs) -> Result<i32, Fail> {
    super::restore_sigpipe();
    let cfg = Config::load(&global.locate())?;
    let name = &cfg.settings.maps.aliases;
    if crate::config::split_backend_name(name).is_some() {
        let backends = crate::maps::backend::Backends::new(&cfg);
        let map = crate::maps::table::open_mutable(&cfg, &backends, name)
            .map_err(|e| Fail::new(EX_CONFIG, format!("praliases: {e}")))?;
        let temp = |e: crate::maps::MapError| Fail::new(EX_TEMPFAIL, format!("praliases: {e}"));
        let mut missing = false;
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = if a.names.is_empty() {
            aliases_in_table(map.as_ref()).map_err(temp)?
        } else {
            let keys: Vec<Vec<u8>> = a
                .names
                .iter()
                .map(|n| n.to_ascii_lowercase().into_bytes())
                .collect();
            let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            let vals = map.get_many(&refs).map_err(temp)?;
            missing = vals.iter().any(Option::is_none);
            keys.into_iter()
                .zip(vals)
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect()
        };
        print_pairs(&pairs, a.json)?;
        return Ok(if missing { 1 } else { EX_OK });
    }
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
    print_pairs(&pairs, json)?;
    Ok(if missing { 1 } else { EX_OK })
}

fn print_pairs(pairs: &[(Vec<u8>, Vec<u8>)], json: bool) -> Result<(), Fail> {
    let mut out = BufWriter::new(io::stdout().lock());
    if json {
        let arr: Vec<serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| serde_json::json!({"name": String::from_utf8_lossy(k), "value": String::from_utf8_lossy(v)}))
            .collect();
        serde_json::to_writer_pretty(&mut out, &arr).map_err(|e| stdout_error(e.into()))?;
        writeln!(out).map_err(stdout_error)?;
    } else {
        for (k, v) in pairs {
            out.write_all(k)
                .and_then(|_| out.write_all(b":"))
                .and_then(|_| out.write_all(v))
                .and_then(|_| out.write_all(b"\n"))
                .map_err(stdout_error)?;
        }
    }
    out.flush().map_err(stdout_error)
}
