//! `makemap`: sendmail's makemap(8), flag by flag (docs/sendmail-compat.md §1), plus postmap's `-q`.

use std::io::{self, BufWriter, Read, Write};

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::Args;

use super::{Fail, GlobalOpts, stdout_error};
use crate::config::Config;
use crate::maps::MapError;
use crate::maps::backend::{BackendError, Backends};
use crate::maps::build;
use crate::maps::open::AnyMap;
use crate::maps::source::makemap::ParseOptions;
use crate::maps::store::{self, DupPolicy, Meta, StoreError, Updater};
use crate::maps::table::open_mutable;
use crate::sysexits::*;

pub const USAGE: &str = "makemap [-C cffile] [-N] [-c cachesize] [-D commentchar] [-d] [-e] [-f] [-i type] [-l] [-o] [-r] [-s] [-t delimiter] [-u] [-v] type mapname
       makemap -q key|- [-f] [-t delimiter] [--json] type mapname
       makemap --delete key type mapname";

/// The types makemap accepts, in sendmail's `-l` order. Every one writes a single SQLite file
/// named `mapname.db`: `dbm` does not write a `.dir`/`.pag` pair, and `implicit` means `hash`.
pub const TYPES: &[&str] = &["dbm", "hash", "btree", "implicit"];

#[derive(Debug, Clone, Args)]
#[command(
    override_usage = USAGE,
    about = "Build, dump or query a map (sendmail makemap(8), with postmap's -q)",
    long_about = "Reads map source text on standard input and writes MAPNAME.db, exactly as \
sendmail's makemap parses it: one `key value` per line, `#` comments in the first column, keys \
folded to lower case, no continuation lines. The map is built in a temp file and renamed into \
place, so readers see the old map or the new one. All types (dbm, hash, btree, implicit) write \
one SQLite file, MAPNAME.db. `-u` and `-q` also read Berkeley DB files left by sendmail or Postfix.",
    after_help = "Exit status: 0 ok; 1 with -q/--delete when the key is absent; 64 usage; \
65 a bad input line (the map is still built from the good ones); 73 cannot create the map; \
74 I/O error."
)]
pub struct MakemapArgs {
    /// sendmail.cf to read (accepted for compatibility; mailtool needs none)
    #[arg(short = 'C', value_name = "cffile")]
    pub cf: Option<PathBuf>,
    /// Store a terminating NUL in keys and values
    #[arg(short = 'N')]
    pub nul: bool,
    /// Cache size in bytes (accepted for compatibility; SQLite sizes its own cache)
    #[arg(short = 'c', value_name = "cachesize")]
    pub cache: Option<u64>,
    /// Comment character instead of `#` (only its first character counts)
    #[arg(short = 'D', value_name = "commentchar")]
    pub comment: Option<String>,
    /// Allow duplicate keys: every value is stored, lookups return the first
    #[arg(short = 'd')]
    pub dups: bool,
    /// Allow keys with an empty value
    #[arg(short = 'e')]
    pub empty: bool,
    /// Do not fold keys to lower case
    #[arg(short = 'f')]
    pub no_fold: bool,
    /// Fallback type when TYPE is not available (accepted; every type is available)
    #[arg(short = 'i', value_name = "type")]
    pub fallback: Option<String>,
    /// List the supported map types and exit
    #[arg(short = 'l')]
    pub list: bool,
    /// Append to an existing map instead of replacing it (one transaction)
    #[arg(short = 'o')]
    pub append: bool,
    /// Allow replacement: a repeated key silently takes the later value
    #[arg(short = 'r')]
    pub replace: bool,
    /// Skip the safety checks on the map file (symbolic links, hard links, writable directories)
    #[arg(short = 's')]
    pub unsafe_ok: bool,
    /// Key/value separator instead of white space; also used between them in -u output
    #[arg(short = 't', value_name = "delimiter", allow_hyphen_values = true)]
    pub sep: Option<String>,
    /// Dump the map to standard output, one `key<TAB>value` per line
    #[arg(short = 'u')]
    pub dump: bool,
    /// Print every record as it is stored
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Print the value of KEY (exit 1 if absent); `-` reads keys from standard input and prints
    /// `key<TAB>value` for each key found
    #[arg(short = 'q', value_name = "key", allow_hyphen_values = true)]
    pub query: Option<String>,
    /// Delete KEY from the map in place (exit 1 if absent)
    #[arg(long = "delete", value_name = "key")]
    pub delete: Option<String>,
    /// With -u or -q: print JSON
    #[arg(long)]
    pub json: bool,
    /// Map type: hash, btree, dbm or implicit
    #[arg(value_name = "type")]
    pub maptype: Option<String>,
    /// Map name; the file is MAPNAME.db unless MAPNAME already ends in .db
    #[arg(value_name = "mapname")]
    pub mapname: Option<PathBuf>,
}

fn usage() -> Fail {
    Fail::new(EX_USAGE, format!("Usage: {USAGE}"))
}

pub fn run(global: &GlobalOpts, a: &MakemapArgs) -> Result<i32, Fail> {
    if a.list {
        let mut out = io::stdout().lock();
        for t in TYPES {
            writeln!(out, "{t}").map_err(stdout_error)?;
        }
        return Ok(EX_OK);
    }
    let (Some(maptype), Some(mapname)) = (&a.maptype, &a.mapname) else {
        return Err(usage());
    };
    let modes = [a.dump, a.query.is_some(), a.delete.is_some()]
        .iter()
        .filter(|&&m| m)
        .count();
    if modes > 1 {
        return Err(Fail::new(
            EX_USAGE,
            "makemap: -u, -q and --delete cannot be combined".to_string(),
        ));
    }
    if a.json && !(a.dump || a.query.is_some()) {
        return Err(Fail::new(
            EX_USAGE,
            "makemap: --json goes with -u or -q".to_string(),
        ));
    }
    let name = mapname.display().to_string();
    if !TYPES.contains(&maptype.as_str()) {
        return Err(Fail::new(
            EX_CANTCREAT,
            format!("makemap: error opening type {maptype} map {name}: Unknown database type"),
        ));
    }
    let sep = match a.sep.as_deref() {
        None => None,
        Some("") => {
            eprintln!("Invalid separator");
            None
        }
        Some(s) => Some(s.as_bytes()[0]),
    };
    if crate::config::split_backend_name(&name).is_some() {
        return remote(global, a, &name, sep);
    }
    let path = store::db_path(mapname);
    if a.dump {
        return dump(&path, &name, maptype, sep, a.json);
    }
    if let Some(q) = &a.query {
        return query(&path, &name, maptype, q, !a.no_fold, a.json);
    }
    if let Some(k) = &a.delete {
        return delete(&path, &name, maptype, k, !a.no_fold);
    }
    let opts = parse_options(a, sep);
    let policy = dup_policy(a);
    let code = build(&path, &name, maptype, a, &opts, policy)?;
    super::give_to_server_group(global, &path);
    Ok(code)
}

/// The options that pick what to read from the input.
fn parse_options(a: &MakemapArgs, sep: Option<u8>) -> ParseOptions {
    ParseOptions {
        comment: match a.comment.as_deref() {
            None => b'#',
            Some(c) => c.as_bytes().first().copied().unwrap_or(0),
        },
        separator: sep,
        fold_case: !a.no_fold,
        allow_empty: a.empty,
    }
}

fn dup_policy(a: &MakemapArgs) -> DupPolicy {
    if a.dups {
        DupPolicy::Keep
    } else if a.replace {
        DupPolicy::Replace
    } else {
        DupPolicy::FirstWins
    }
}

/// `makemap TYPE BACKEND:TABLE`: the map is a table in `[backends.BACKEND]`; every mode works
/// on it as on a file. A backend that cannot be reached is a temporary failure (75).
fn remote(global: &GlobalOpts, a: &MakemapArgs, name: &str, sep: Option<u8>) -> Result<i32, Fail> {
    let cfg = Config::load(&global.locate())?;
    let backends = Backends::new(&cfg);
    let table = open_mutable(&cfg, &backends, name).map_err(|e| map_fail(name, &e))?;
    if a.nul {
        return Err(Fail::new(
            EX_USAGE,
            "makemap: -N applies to map files; a backend table holds text".to_string(),
        ));
    }
    if a.dump {
        return print_dump(name, sep, a.json, &mut |f| {
            for r in table.iterate().map_err(|e| e.to_string())? {
                f(&r.key, &r.value);
            }
            Ok(())
        });
    }
    if let Some(q) = &a.query {
        return print_query(name, q, !a.no_fold, a.json, &|keys| {
            table.get_many(keys).map_err(|e| e.to_string())
        });
    }
    if let Some(k) = &a.delete {
        let found = table
            .delete(&fold(k.as_bytes(), !a.no_fold))
            .map_err(|e| map_fail(name, &e))?;
        return Ok(if found { EX_OK } else { 1 });
    }
    let spec = build::Spec {
        opts: parse_options(a, sep),
        policy: dup_policy(a),
        run_bytes: build::RUN_BYTES,
    };
    let text_only = matches!(
        crate::config::split_backend_name(name)
            .and_then(|(b, _)| cfg.settings.backends.get(b))
            .map(|b| b.kind),
        Some(crate::config::BackendKind::Postgresql)
    );
    let mut stdin = io::stdin().lock();
    match build::build_into(table.as_ref(), &mut stdin, &spec, a.append, text_only) {
        Ok(mut outcome) => Ok(print_diags(name, &mut outcome.diagnostics)),
        Err(build::RemoteBuildError::Input(e)) => Err(Fail::new(
            EX_IOERR,
            format!(
                "makemap: {name}: reading the input: {}",
                crate::util::io_message(&e)
            ),
        )),
        Err(build::RemoteBuildError::Map(e)) => Err(map_fail(name, &e)),
    }
}

fn map_fail(name: &str, e: &MapError) -> Fail {
    let code = match e {
        MapError::Backend(BackendError::Unavailable { .. }) => EX_TEMPFAIL,
        MapError::Backend(BackendError::Table { .. }) => EX_DATAERR,
        MapError::Io { .. } | MapError::Format { .. } => EX_CONFIG,
    };
    Fail::new(code, format!("makemap: {name}: {e}"))
}

fn open_error(maptype: &str, name: &str, reason: &str) -> Fail {
    Fail::new(
        EX_CANTCREAT,
        format!("makemap: error opening type {maptype} map {name}: {reason}"),
    )
}

/// sendmail's safefile() checks on the output file, skipped by `-s`.
fn safety_check(path: &Path) -> Result<(), &'static str> {
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_symlink() {
            return Err("Symbolic links not allowed");
        }
        if m.nlink() > 1 {
            return Err("Hard links not allowed");
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(m) = std::fs::metadata(dir)
        && m.permissions().mode() & 0o002 != 0
        && m.permissions().mode() & 0o1000 == 0
    {
        return Err("World writable directory");
    }
    Ok(())
}

fn build(
    path: &Path,
    name: &str,
    maptype: &str,
    a: &MakemapArgs,
    opts: &ParseOptions,
    policy: DupPolicy,
) -> Result<i32, Fail> {
    let mut target = path.to_path_buf();
    if a.unsafe_ok {
        // With -s a symbolic link is followed: the file it points to is rebuilt.
        if let Ok(real) = std::fs::canonicalize(path) {
            target = real;
        }
    } else if let Err(reason) = safety_check(path) {
        return Err(open_error(maptype, name, reason));
    }
    // Fail early, before reading the input, when the directory cannot take the map.
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Err(e) = std::fs::metadata(&dir) {
        return Err(open_error(maptype, name, &crate::util::io_message(&e)));
    }

    let spec = build::Spec {
        opts: *opts,
        policy,
        run_bytes: build::RUN_BYTES,
    };
    let stdout = io::stdout();
    let mut verbose_out = BufWriter::new(stdout.lock());
    let mut verbose_err: Option<io::Error> = None;
    let mut on_record = |k: &[u8], v: &[u8]| {
        if verbose_err.is_none()
            && let Err(e) = writeln!(
                verbose_out,
                "key=`{}', val=`{}'",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )
        {
            verbose_err = Some(e);
        }
    };
    let bar = progress_bar();
    let mut progress = |n: usize| {
        if let Some(b) = &bar {
            b.set_position(n as u64);
        }
    };
    let hooks = build::Hooks {
        on_record: if a.verbose {
            Some(&mut on_record)
        } else {
            None
        },
        progress: Some(&mut progress),
    };
    let mut stdin = io::stdin().lock();
    let result = if a.append && target.exists() {
        build::update(&target, &mut stdin, &spec, hooks)
    } else {
        let meta = Meta {
            kind: if maptype == "implicit" {
                "hash".into()
            } else {
                maptype.to_string()
            },
            nul: a.nul,
        };
        build::build_new(&target, meta, &mut stdin, &spec, hooks)
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(e) = verbose_err {
        return Err(stdout_error(e));
    }
    verbose_out.flush().map_err(stdout_error)?;
    match result {
        Ok(mut outcome) => Ok(print_diags(name, &mut outcome.diagnostics)),
        // Nothing was renamed into place: the old map is intact.
        Err(build::BuildError::Store(e)) => Err(store_fail(maptype, name, &e)),
        Err(e @ build::BuildError::Input(_)) => {
            Err(Fail::new(EX_IOERR, format!("makemap: {name}: {e}")))
        }
        Err(e @ build::BuildError::Temp(_)) => {
            Err(Fail::new(EX_CANTCREAT, format!("makemap: {name}: {e}")))
        }
    }
}

/// Prints the line diagnostics as sendmail does; the exit status they make (65 if any).
fn print_diags(name: &str, diags: &mut [build::Diagnostic]) -> i32 {
    diags.sort_by_key(|d| d.line);
    let mut err = io::stderr().lock();
    for d in diags.iter() {
        let _ = writeln!(err, "makemap: {name}: line {}: {}", d.line, d.text);
    }
    if diags.is_empty() { EX_OK } else { EX_DATAERR }
}

fn store_fail(maptype: &str, name: &str, e: &StoreError) -> Fail {
    match e {
        StoreError::Open { message, .. } | StoreError::NotAMap { message, .. } => {
            open_error(maptype, name, message)
        }
        StoreError::Io { message, .. } | StoreError::Sqlite { message, .. } => Fail::new(
            EX_IOERR,
            format!("makemap: {name}: error writing map: {message}"),
        ),
    }
}

/// A spinner with the record count, only when a person is watching stderr. It stays hidden
/// for small maps: indicatif draws nothing during its first moments.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !crate::util::stderr_is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} read {human_pos} records ({per_sec})")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(bar)
}

fn open_existing(path: &Path, maptype: &str, name: &str) -> Result<AnyMap, Fail> {
    AnyMap::open(path).map_err(|e| match &e {
        StoreError::Open { message, .. } | StoreError::NotAMap { message, .. } => {
            open_error(maptype, name, message)
        }
        other => Fail::new(EX_IOERR, format!("makemap: {name}: {}", other.reason())),
    })
}

fn dump(path: &Path, name: &str, maptype: &str, sep: Option<u8>, json: bool) -> Result<i32, Fail> {
    let map = open_existing(path, maptype, name)?;
    print_dump(name, sep, json, &mut |f| {
        map.for_each(f).map_err(|e| e.reason().to_string())
    })
}

/// Every record of a map is handed to the callback by `walk`.
type Walk<'a> = &'a mut dyn FnMut(&mut dyn FnMut(&[u8], &[u8])) -> Result<(), String>;

fn print_dump(name: &str, sep: Option<u8>, json: bool, walk: Walk<'_>) -> Result<i32, Fail> {
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let sep = sep.unwrap_or(b'\t');
    let mut werr: Option<io::Error> = None;
    let mut first = true;
    if json {
        let _ = out.write_all(b"[");
    }
    walk(&mut |k, v| {
        if werr.is_some() {
            return;
        }
        let r = if json {
            let obj = serde_json::json!({"key": String::from_utf8_lossy(k), "value": String::from_utf8_lossy(v)});
            let lead: &[u8] = if first { b"\n  " } else { b",\n  " };
            first = false;
            out.write_all(lead).and_then(|_| out.write_all(obj.to_string().as_bytes()))
        } else {
            out.write_all(k).and_then(|_| out.write_all(&[sep])).and_then(|_| out.write_all(v)).and_then(|_| out.write_all(b"\n"))
        };
        if let Err(e) = r {
            werr = Some(e);
        }
    })
    .map_err(|e| Fail::new(EX_TEMPFAIL, format!("makemap: {name}: {e}")))?;
    if let Some(e) = werr {
        return Err(stdout_error(e));
    }
    if json {
        let _ = out.write_all(if first { b"]\n" } else { b"\n]\n" });
    }
    out.flush().map_err(stdout_error)?;
    Ok(EX_OK)
}

fn fold(key: &[u8], fold: bool) -> Vec<u8> {
    if fold {
        key.to_ascii_lowercase()
    } else {
        key.to_vec()
    }
}

fn query(
    path: &Path,
    name: &str,
    maptype: &str,
    q: &str,
    fold_keys: bool,
    json: bool,
) -> Result<i32, Fail> {
    let map = open_existing(path, maptype, name)?;
    print_query(name, q, fold_keys, json, &|keys| {
        map.get_many(keys).map_err(|e| e.reason().to_string())
    })
}

/// The values of the keys asked, `None` where absent.
type GetMany<'a> = &'a dyn Fn(&[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, String>;

fn print_query(
    name: &str,
    q: &str,
    fold_keys: bool,
    json: bool,
    get_many: GetMany<'_>,
) -> Result<i32, Fail> {
    let lookup_err =
        |e: String| Fail::new(EX_TEMPFAIL, format!("makemap: {name}: lookup failed: {e}"));
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    if q != "-" {
        let v = get_many(&[&fold(q.as_bytes(), fold_keys)])
            .map_err(lookup_err)?
            .pop()
            .flatten();
        if json {
            let obj = serde_json::json!({"key": q, "value": v.as_ref().map(|v| String::from_utf8_lossy(v))});
            writeln!(out, "{obj}").map_err(stdout_error)?;
        } else if let Some(v) = &v {
            out.write_all(v)
                .and_then(|_| out.write_all(b"\n"))
                .map_err(stdout_error)?;
        }
        out.flush().map_err(stdout_error)?;
        return Ok(if v.is_some() { EX_OK } else { 1 });
    }
    let mut input = Vec::new();
    io::stdin().lock().read_to_end(&mut input).map_err(|e| {
        Fail::new(
            EX_IOERR,
            format!(
                "makemap: reading standard input: {}",
                crate::util::io_message(&e)
            ),
        )
    })?;
    let keys: Vec<&[u8]> = input
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .collect();
    let folded: Vec<Vec<u8>> = keys.iter().map(|k| fold(k, fold_keys)).collect();
    let refs: Vec<&[u8]> = folded.iter().map(|k| k.as_slice()).collect();
    let values = get_many(&refs).map_err(lookup_err)?;
    let mut found = false;
    if json {
        let arr: Vec<serde_json::Value> = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| serde_json::json!({"key": String::from_utf8_lossy(k), "value": v.as_ref().map(|v| String::from_utf8_lossy(v))}))
            .collect();
        found = values.iter().any(|v| v.is_some());
        serde_json::to_writer_pretty(&mut out, &arr).map_err(|e| stdout_error(e.into()))?;
        writeln!(out).map_err(stdout_error)?;
    } else {
        for (k, v) in keys.iter().zip(&values) {
            if let Some(v) = v {
                found = true;
                out.write_all(k)
                    .and_then(|_| out.write_all(b"\t"))
                    .and_then(|_| out.write_all(v))
                    .and_then(|_| out.write_all(b"\n"))
                    .map_err(stdout_error)?;
            }
        }
    }
    out.flush().map_err(stdout_error)?;
    Ok(if found { EX_OK } else { 1 })
}

fn delete(path: &Path, name: &str, maptype: &str, key: &str, fold_keys: bool) -> Result<i32, Fail> {
    let mut up = Updater::open(path).map_err(|e| store_fail(maptype, name, &e))?;
    let found = up
        .delete(&fold(key.as_bytes(), fold_keys))
        .map_err(|e| store_fail(maptype, name, &e))?;
    up.commit().map_err(|e| store_fail(maptype, name, &e))?;
    Ok(if found { EX_OK } else { 1 })
}
