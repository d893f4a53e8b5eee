//! `mailtool migrate sendmail`: translate a sendmail `.mc` into `mailtool.toml`, and rebuild the
//! maps from their text sources (or import the Berkeley DB files when a source is gone).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{Fail, GlobalOpts, stdout_error};
use crate::config::{self, Config, relocate};
use crate::maps::build;
use crate::maps::open::AnyMap;
use crate::maps::source::makemap::ParseOptions;
use crate::maps::store::{self, Builder, DupPolicy, Meta};
use crate::migrate::translate::{self, MapKind, MapNeed, Migration, Options};
use crate::migrate::{self as mig, LoadError};
use crate::sysexits::*;
use crate::util::io_message;

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub from: MigrateFrom,
}

#[derive(Debug, Clone, Subcommand)]
pub enum MigrateFrom {
    /// Translate a sendmail .mc and /etc/mail into mailtool.toml and mailtool maps
    #[command(
        long_about = "Reads a sendmail .mc file (following its include()s) and writes the \
equivalent mailtool.toml: FEATUREs virtusertable, access_db (-T<TMPF>), dnsbl, greet_pause and \
always_add_domain; RELAY_DOMAIN_FILE; confMAX_MESSAGE_SIZE, LOCAL_MAILER_MAX and other limits; \
SMART_HOST; the seed's Local_check_relay PTR rules (ptr_check) and poprelay.mc rules (localip, \
popip, POP-before-SMTP); INPUT_MAIL_FILTER and MAIL_FILTER with confINPUT_MAIL_FILTERS \
([[milter]] entries, in the order sendmail calls them). Each key is written with a comment citing the line it came from. \
Anything else (custom rule sets, unknown FEATUREs, other cf lines) is listed by file and line, \
on standard error and at the end of the file, so nothing is dropped silently.\n\n\
Without --write nothing is written: the configuration goes to standard output and the map plan \
to standard error. With --write, mailtool.toml is written (atomically) where --config or --root \
says, and each map is rebuilt from its text source in --etc into the mail directory, or, when \
only NAME.db is left and it is a Berkeley DB file, imported from it.",
        after_help = "Exit status: 0 done (items not translated are listed, and do not change \
the status); 64 usage; 65 the .mc cannot be parsed (FILE:LINE), or a map source has bad lines \
(the map is still built from the good ones); 66 the .mc or --sysconfig file cannot be read; \
70 internal error; 73 mailtool.toml exists (use --force) or a file cannot be written."
    )]
    Sendmail(SendmailArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SendmailArgs {
    /// The .mc file [default: ROOT/etc/mail/sendmail.mc]
    #[arg(long, value_name = "FILE")]
    pub mc: Option<PathBuf>,
    /// sendmail's map and class files [default: ROOT/etc/mail]
    #[arg(long, value_name = "DIR")]
    pub etc: Option<PathBuf>,
    /// The start-up settings (QUEUE=1h, DAEMON=yes), e.g. /etc/sysconfig/sendmail
    #[arg(long, value_name = "FILE")]
    pub sysconfig: Option<PathBuf>,
    /// Write mailtool.toml and build the maps
    #[arg(long, conflicts_with = "dry_run")]
    pub write: bool,
    /// Show the result without writing anything (the default)
    #[arg(long)]
    pub dry_run: bool,
    /// With --write: replace an existing mailtool.toml
    #[arg(long, requires = "write")]
    pub force: bool,
    /// Print one JSON object (configuration, maps, untranslated items)
    #[arg(long)]
    pub json: bool,
    /// Also list the directives that need nothing (VERSIONID, MAILER(local), comments, …)
    #[arg(short, long)]
    pub verbose: bool,
}

pub fn run(global: &GlobalOpts, a: &MigrateArgs) -> Result<i32, Fail> {
    match &a.from {
        MigrateFrom::Sendmail(s) => sendmail(global, s),
    }
}

/// What happens to one map or class file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// Build the map from this text source.
    Rebuild(PathBuf),
    /// Only a Berkeley DB file is left: read it and write a mailtool map.
    Import(PathBuf),
    /// Copy this file (a class file, or a mailtool map in another directory).
    Copy(PathBuf),
    /// Already where and what it should be.
    Keep,
    /// Neither a source nor a database.
    Missing,
}

struct Step {
    need: MapNeed,
    action: Action,
    /// The file written: `NAME.db` for maps, `NAME` for class files.
    target: PathBuf,
}

fn fail(code: i32, msg: impl std::fmt::Display) -> Fail {
    Fail::new(code, format!("mailtool: migrate: {msg}"))
}

fn sendmail(global: &GlobalOpts, a: &SendmailArgs) -> Result<i32, Fail> {
    let privileged = config::is_root();
    let root = match &global.root {
        Some(r) => r.clone(),
        None if privileged => PathBuf::from("/"),
        None => config::default_user_root(),
    };
    let target = global
        .config
        .clone()
        .unwrap_or_else(|| relocate(&root, "/etc/mail/mailtool.toml"));
    let mc =
        a.mc.clone()
            .unwrap_or_else(|| relocate(&root, "/etc/mail/sendmail.mc"));
    let etc = a
        .etc
        .clone()
        .unwrap_or_else(|| relocate(&root, "/etc/mail"));

    let items = mig::load(&mc).map_err(|e| match e {
        LoadError::Read { .. } => fail(EX_NOINPUT, format!("cannot read {e}")),
        LoadError::Parse(p) => fail(EX_DATAERR, p),
    })?;
    let sysconfig = match &a.sysconfig {
        None => None,
        Some(p) => {
            let text = std::fs::read(p).map_err(|e| {
                fail(
                    EX_NOINPUT,
                    format!("cannot read {}: {}", p.display(), io_message(&e)),
                )
            })?;
            Some((
                p.display().to_string(),
                String::from_utf8_lossy(&text).into_owned(),
            ))
        }
    };
    let mut sources: Vec<String> = Vec::new();
    for it in &items {
        if !sources.contains(&it.file) {
            sources.push(it.file.clone());
        }
    }
    if sources.is_empty() {
        sources.push(mc.display().to_string());
    }
    let mut etc_dirs = vec!["/etc/mail".to_string()];
    if let Some(e) = &a.etc {
        etc_dirs.push(e.display().to_string());
    }
    let opts = Options {
        etc_dirs,
        sources,
        sysconfig,
    };
    let m = translate::translate(&items, &opts).map_err(|e| fail(EX_SOFTWARE, e))?;
    let settings =
        config::parse(&m.toml, &target.display().to_string(), privileged).map_err(|e| {
            fail(
                EX_SOFTWARE,
                format!("the generated configuration is invalid: {e}"),
            )
        })?;
    let cfg = Config::from_settings(settings, root.clone());
    let steps = plan(&m, &cfg, &etc, &root);

    if !a.write {
        report(&m, &steps, &target, a, false)?;
        return Ok(EX_OK);
    }
    if target.exists() && !a.force {
        return Err(fail(
            EX_CANTCREAT,
            format!("{} exists; use --force to replace it", target.display()),
        ));
    }
    std::fs::create_dir_all(cfg.mail_dir()).map_err(|e| {
        fail(
            EX_CANTCREAT,
            format!(
                "cannot create {}: {}",
                cfg.mail_dir().display(),
                io_message(&e)
            ),
        )
    })?;
    let mut code = EX_OK;
    let mut done = Vec::new();
    for step in &steps {
        let (c, what) = execute(global, step, &cfg, &etc, !a.json)?;
        code = code.max(c);
        done.push(what);
    }
    write_config(&target, &m.toml)?;
    report(&m, &steps, &target, a, true)?;
    if !a.json {
        let mut out = io::stdout().lock();
        for d in done.iter().flatten() {
            writeln!(out, "{d}").map_err(stdout_error)?;
        }
        writeln!(out, "wrote {}", target.display()).map_err(stdout_error)?;
    }
    Ok(code)
}

/// Where each map's source is now and what to do with it.
fn plan(m: &Migration, cfg: &Config, etc: &Path, root: &Path) -> Vec<Step> {
    m.maps
        .iter()
        .map(|need| {
            let (source, dest) = if Path::new(&need.name).is_absolute() {
                let p = relocate(root, &need.name);
                (p.clone(), p)
            } else {
                (etc.join(&need.name), cfg.map_path(&need.name))
            };
            if need.kind == MapKind::ClassFile {
                let action = if !source.exists() {
                    Action::Missing
                } else if same_file(&source, &dest) {
                    Action::Keep
                } else {
                    Action::Copy(source)
                };
                return Step {
                    need: need.clone(),
                    action,
                    target: dest,
                };
            }
            let old_db = store::db_path(&source);
            let new_db = store::db_path(&dest);
            let action = if source.is_file() {
                Action::Rebuild(source)
            } else {
                match db_format(&old_db) {
                    Some(DbFormat::Bdb) => Action::Import(old_db),
                    Some(DbFormat::Mailtool) if same_file(&old_db, &new_db) => Action::Keep,
                    Some(DbFormat::Mailtool) => Action::Copy(old_db),
                    None => Action::Missing,
                }
            };
            Step {
                need: need.clone(),
                action,
                target: new_db,
            }
        })
        .collect()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

enum DbFormat {
    Bdb,
    Mailtool,
}

fn db_format(path: &Path) -> Option<DbFormat> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let mut f = std::fs::File::open(path).ok()?;
    let n = f.read(&mut head).ok()?;
    if store::is_sqlite(&head[..n]) {
        Some(DbFormat::Mailtool)
    } else if crate::maps::bdb::sniff(&head[..n]).is_some() {
        Some(DbFormat::Bdb)
    } else {
        None
    }
}

fn describe(step: &Step, dry: bool) -> String {
    let key = step.need.key;
    let t = step.target.display();
    let verb = |w: &'static str, d: &'static str| if dry { w } else { d };
    match &step.action {
        Action::Rebuild(s) => format!(
            "{key}: {} {t} from {}",
            verb("would build", "built"),
            s.display()
        ),
        Action::Import(s) => format!(
            "{key}: {} {t} from the Berkeley DB file {}",
            verb("would import into", "imported into"),
            s.display()
        ),
        Action::Copy(s) => format!(
            "{key}: {} {} to {t}",
            verb("would copy", "copied"),
            s.display()
        ),
        Action::Keep => format!("{key}: {t} is already in place"),
        Action::Missing => format!("{key}: no source or database found; {t} is not created"),
    }
}

/// Carries out one step; returns the exit status it contributes and a line for the report.
fn execute(
    global: &GlobalOpts,
    step: &Step,
    cfg: &Config,
    etc: &Path,
    stats: bool,
) -> Result<(i32, Option<String>), Fail> {
    let cant = |what: &Path, e: &dyn std::fmt::Display| {
        fail(
            EX_CANTCREAT,
            format!("cannot write {}: {e}", what.display()),
        )
    };
    if let Some(dir) = step.target.parent() {
        std::fs::create_dir_all(dir).map_err(|e| cant(dir, &io_message(&e)))?;
    }
    let mut code = EX_OK;
    match &step.action {
        Action::Keep | Action::Missing => {}
        Action::Copy(src) => {
            std::fs::copy(src, &step.target).map_err(|e| cant(&step.target, &io_message(&e)))?;
        }
        Action::Rebuild(src) if step.need.kind == MapKind::Aliases => {
            let mut local = vec!["localhost".to_string(), cfg.hostname().to_ascii_lowercase()];
            if let Ok(text) = std::fs::read_to_string(etc.join("local-host-names")) {
                for line in text.lines().filter(|l| !l.starts_with('#')) {
                    local.extend(line.split_whitespace().map(|w| w.to_ascii_lowercase()));
                }
            }
            code = super::newaliases::build(global, src, &step.target, &local, false, stats)?;
        }
        Action::Rebuild(src) => {
            let mut input = std::fs::File::open(src).map_err(|e| {
                fail(
                    EX_NOINPUT,
                    format!("cannot read {}: {}", src.display(), io_message(&e)),
                )
            })?;
            let spec = build::Spec {
                opts: ParseOptions {
                    allow_empty: step.need.kind == MapKind::MakemapEmptyValues,
                    ..ParseOptions::default()
                },
                policy: DupPolicy::FirstWins,
                run_bytes: build::RUN_BYTES,
            };
            let meta = Meta {
                kind: "hash".into(),
                nul: false,
            };
            let outcome =
                build::build_new(&step.target, meta, &mut input, &spec, build::Hooks::none())
                    .map_err(|e| cant(&step.target, &e))?;
            let mut err = io::stderr().lock();
            for d in &outcome.diagnostics {
                let _ = writeln!(
                    err,
                    "mailtool: migrate: {}: line {}: {}",
                    src.display(),
                    d.line,
                    d.text
                );
                code = EX_DATAERR;
            }
            super::give_to_server_group(global, &step.target);
        }
        Action::Import(db) => {
            import(db, &step.target, step.need.kind == MapKind::Aliases)?;
            super::give_to_server_group(global, &step.target);
        }
    }
    let line = (!matches!(step.action, Action::Missing)).then(|| describe(step, false));
    if matches!(step.action, Action::Missing) {
        eprintln!("mailtool: migrate: {}", describe(step, false));
    }
    Ok((code, line))
}

/// Reads a Berkeley DB map the way `makemap -u` dumps it (values cut at a NUL) and writes a
/// mailtool map with the same records; the first of duplicate keys wins, as lookups saw it.
fn import(db: &Path, target: &Path, aliases: bool) -> Result<(), Fail> {
    let map = AnyMap::open(db).map_err(|e| fail(EX_DATAERR, e))?;
    let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    map.for_each(|k, v| rows.push((k.to_vec(), v.to_vec())))
        .map_err(|e| fail(EX_DATAERR, e))?;
    if aliases && !rows.iter().any(|(k, _)| k == b"@") {
        rows.push((b"@".to_vec(), b"@".to_vec()));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows.dedup_by(|later, first| later.0 == first.0);
    let write = || -> Result<(), store::StoreError> {
        let mut b = Builder::create(
            target,
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
        fail(
            EX_CANTCREAT,
            format!("cannot write {}: {}", target.display(), e.reason()),
        )
    })
}

/// Temp file in the same directory, fsync, rename: readers see the old file or the new one.
fn write_config(target: &Path, text: &str) -> Result<(), Fail> {
    use std::os::unix::fs::PermissionsExt;
    let cant = |e: &dyn std::fmt::Display| {
        fail(
            EX_CANTCREAT,
            format!("cannot write {}: {e}", target.display()),
        )
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| cant(&io_message(&e)))?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| cant(&io_message(&e)))?;
    tmp.write_all(text.as_bytes())
        .and_then(|_| tmp.as_file().sync_all())
        .and_then(|_| {
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .map_err(|e| cant(&io_message(&e)))?;
    tmp.persist(target)
        .map_err(|e| cant(&io_message(&e.error)))?;
    store::sync_dir(target);
    Ok(())
}

/// The configuration (dry run) or nothing (written) on stdout, the plan and the untranslated
/// items on stderr; or everything as one JSON object.
fn report(
    m: &Migration,
    steps: &[Step],
    target: &Path,
    a: &SendmailArgs,
    written: bool,
) -> Result<(), Fail> {
    let mut out = io::stdout().lock();
    if a.json {
        let maps: Vec<serde_json::Value> = steps
            .iter()
            .map(|s| {
                let (action, from) = match &s.action {
                    Action::Rebuild(p) => ("build", Some(p)),
                    Action::Import(p) => ("import", Some(p)),
                    Action::Copy(p) => ("copy", Some(p)),
                    Action::Keep => ("keep", None),
                    Action::Missing => ("missing", None),
                };
                serde_json::json!({
                    "key": s.need.key,
                    "name": s.need.name,
                    "kind": s.need.kind,
                    "action": action,
                    "from": from.map(|p| p.display().to_string()),
                    "target": s.target.display().to_string(),
                })
            })
            .collect();
        let obj = serde_json::json!({
            "file": target.display().to_string(),
            "written": written,
            "config": m.toml,
            "maps": maps,
            "untranslated": m.untranslated,
            "harmless": m.harmless,
        });
        serde_json::to_writer_pretty(&mut out, &obj).map_err(|e| stdout_error(e.into()))?;
        writeln!(out).map_err(stdout_error)?;
        return Ok(());
    }
    let mut err = io::stderr().lock();
    if !written {
        out.write_all(m.toml.as_bytes()).map_err(stdout_error)?;
        out.flush().map_err(stdout_error)?;
        let _ = writeln!(
            err,
            "mailtool: migrate: dry run, nothing written; --write writes {}",
            target.display()
        );
        for s in steps {
            let _ = writeln!(err, "  {}", describe(s, true));
        }
    }
    if a.verbose {
        for n in &m.harmless {
            let _ = writeln!(err, "nothing to do: {n}");
        }
    }
    for n in &m.untranslated {
        let _ = writeln!(err, "not translated: {n}");
    }
    if !m.untranslated.is_empty() {
        let _ = writeln!(
            err,
            "mailtool: migrate: {} item(s) not translated; review them (they are also listed at the end of the configuration)",
            m.untranslated.len()
        );
    }
    Ok(())
}
