//! `mailtool passwd`: virtual users' passwords in the `users` map (argon2id for new ones;
//! sha512-crypt hashes imported from shadow-style files are kept as they are).
//!
//! A password is read from the terminal (twice, without echo) or as one line of standard input,
//! never from argv, where `ps` and shell histories would show it.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{Fail, GlobalOpts, stdout_error};
use crate::config::Config;
use crate::maps::MapError;
use crate::maps::backend::Put;
use crate::maps::open::AnyMap;
use crate::maps::store::{self, DupPolicy, Meta, StoreError, Updater};
use crate::maps::table::open_mutable;
use crate::sysexits::*;
use crate::users::{Entry, hash_password};

#[derive(Debug, Clone, Args)]
#[command(
    about = "Set, delete, list or import virtual users' passwords (the users map)",
    long_about = "Sets USER's password in the users map, hashed with argon2id. The password is \
read twice from the terminal without echo or, when standard input is not a terminal, as its first \
line; it is never taken from the command line. The map is created if missing (mode 0640; run as \
root, it is given to the server's group). User names are stored in lower case, as logins match \
them.",
    after_help = "Exit status: 0 ok; 64 usage (a bad user name); 65 empty or mismatched \
password, or bad --import lines (the good ones are still imported); 66 no --import file; \
67 --delete of an unknown user; 73 cannot create or open the map; 74 I/O error."
)]
pub struct PasswdArgs {
    /// The user whose password is set (or deleted with --delete)
    #[arg(value_name = "USER", required_unless_present_any = ["list", "import"])]
    pub user: Option<String>,
    /// Remove USER from the users map
    #[arg(long, requires = "user", conflicts_with_all = ["list", "import"])]
    pub delete: bool,
    /// Also keep the password as USER's APOP secret (RFC 1939 APOP needs it in the clear on
    /// the server, as qpopper's popauth did); without it, a password change removes any
    /// APOP secret
    #[arg(long, requires = "user", conflicts_with_all = ["list", "import", "delete"])]
    pub apop: bool,
    /// List the users, the scheme of each hash and whether an APOP secret is stored (hashes
    /// and secrets are never shown)
    #[arg(long, conflicts_with_all = ["user", "import"])]
    pub list: bool,
    /// With --list: print JSON
    #[arg(long, requires = "list")]
    pub json: bool,
    /// Import `user:hash` lines (/etc/shadow style; sha512-crypt or argon2id) from FILE, `-`
    /// for standard input; locked and empty entries are skipped
    #[arg(long, value_name = "FILE", conflicts_with = "user")]
    pub import: Option<PathBuf>,
}

pub fn run(global: &GlobalOpts, a: &PasswdArgs) -> Result<i32, Fail> {
    let cfg = Config::load(&global.locate())?;
    if crate::config::split_backend_name(&cfg.settings.maps.users).is_some() {
        return remote(&cfg, a);
    }
    let db = store::db_path(&cfg.map_path(&cfg.settings.maps.users));
    if a.list {
        return list(&db, a.json);
    }
    if let Some(file) = &a.import {
        return import(global, &db, file);
    }
    let Some(user) = a.user.as_deref() else {
        return Err(Fail::new(EX_USAGE, "mailtool passwd: a USER is needed"));
    };
    let user = valid_user(user)?;
    if a.delete {
        return delete(&db, &user);
    }
    let apop_secret = read_secret(a)?;
    let (password, apop) = apop_secret;
    let hash = hash_password(&password)
        .map_err(|e| Fail::new(EX_SOFTWARE, format!("mailtool passwd: hashing: {e}")))?;
    let created = create_map(&db)?;
    if created {
        super::give_to_server_group(global, &db);
    }
    let mut up = open_updater(&db)?;
    let old = up.get(user.as_bytes()).map_err(|e| store_fail(&db, &e))?;
    let value = new_value(old, hash, apop);
    up.add(user.as_bytes(), value.as_bytes(), DupPolicy::Replace)
        .and_then(|_| up.commit())
        .map_err(|e| store_fail(&db, &e))?;
    eprintln!("mailtool passwd: password set for {user}");
    Ok(EX_OK)
}

/// The password from the terminal or stdin, and the APOP secret when `--apop` asks for one.
fn read_secret(a: &PasswdArgs) -> Result<(Vec<u8>, Option<String>), Fail> {
    let password = read_password()?;
    let apop = if a.apop {
        let secret = String::from_utf8(password.clone())
            .ok()
            .filter(|p| !p.contains(char::is_whitespace))
            .ok_or_else(|| {
                Fail::new(
                    EX_DATAERR,
                    "mailtool passwd: an APOP secret must be UTF-8 without white space",
                )
            })?;
        Some(secret)
    } else {
        None
    };
    Ok((password, apop))
}

/// `[maps] users = "BACKEND:TABLE"`: the same operations on the shared table, so a user set
/// on one host logs in on every host.
fn remote(cfg: &Config, a: &PasswdArgs) -> Result<i32, Fail> {
    let name = &cfg.settings.maps.users;
    let backends = crate::maps::backend::Backends::new(cfg);
    let table = open_mutable(cfg, &backends, name).map_err(|e| map_fail(name, &e))?;
    if a.list {
        let rows = table.iterate().map_err(|e| map_fail(name, &e))?;
        let rows = rows.iter().map(|r| Row::of(&r.key, &r.value)).collect();
        return print_rows(rows, a.json);
    }
    if let Some(file) = &a.import {
        let (good, bad) = read_import(file)?;
        for (u, h) in &good {
            table
                .put(u.as_bytes(), h.as_bytes(), Put::Replace)
                .map_err(|e| map_fail(name, &e))?;
        }
        eprintln!("mailtool passwd: {} users imported", good.len());
        return Ok(if bad == 0 { EX_OK } else { EX_DATAERR });
    }
    let Some(user) = a.user.as_deref() else {
        return Err(Fail::new(EX_USAGE, "mailtool passwd: a USER is needed"));
    };
    let user = valid_user(user)?;
    if a.delete {
        if !table
            .delete(user.as_bytes())
            .map_err(|e| map_fail(name, &e))?
        {
            return Err(Fail::new(
                EX_NOUSER,
                format!("mailtool passwd: no such user: {user}"),
            ));
        }
        eprintln!("mailtool passwd: {user} deleted");
        return Ok(EX_OK);
    }
    let (password, apop) = read_secret(a)?;
    let hash = hash_password(&password)
        .map_err(|e| Fail::new(EX_SOFTWARE, format!("mailtool passwd: hashing: {e}")))?;
    let old = table.get(user.as_bytes()).map_err(|e| map_fail(name, &e))?;
    let value = new_value(old, hash, apop);
    table
        .put(user.as_bytes(), value.as_bytes(), Put::Replace)
        .map_err(|e| map_fail(name, &e))?;
    eprintln!("mailtool passwd: password set for {user}");
    Ok(EX_OK)
}

/// The new value for a user: the new hash and APOP secret, and whatever else the old value
/// held (logins only read the hash).
fn new_value(old: Option<Vec<u8>>, hash: String, apop: Option<String>) -> String {
    let other = old
        .map(|old| Entry::parse(&String::from_utf8_lossy(&old)).other)
        .unwrap_or_default();
    Entry { hash, apop, other }.to_value()
}

fn map_fail(name: &str, e: &MapError) -> Fail {
    let code = match e {
        MapError::Backend(crate::maps::backend::BackendError::Unavailable { .. }) => EX_TEMPFAIL,
        _ => EX_CANTCREAT,
    };
    Fail::new(code, format!("mailtool passwd: {name}: {e}"))
}

/// A user name the map can hold as one key and a login can name: no white space, no control
/// characters, no `:` (the import format's separator). ASCII-folded to lower case, as logins
/// are (`users::authenticate`).
fn valid_user(user: &str) -> Result<String, Fail> {
    let ok = !user.is_empty()
        && user.len() <= 255
        && !user
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ':');
    if ok {
        Ok(user.to_ascii_lowercase())
    } else {
        Err(Fail::new(
            EX_USAGE,
            format!("mailtool passwd: invalid user name {user:?}"),
        ))
    }
}

fn read_password() -> Result<Vec<u8>, Fail> {
    let empty = || Fail::new(EX_DATAERR, "mailtool passwd: empty password refused");
    if io::stdin().is_terminal() {
        let read = |prompt: &str| {
            rpassword::prompt_password(prompt).map_err(|e| {
                Fail::new(
                    EX_IOERR,
                    format!(
                        "mailtool passwd: reading the password: {}",
                        crate::util::io_message(&e)
                    ),
                )
            })
        };
        let first = read("New password: ")?;
        if first.is_empty() {
            return Err(empty());
        }
        if read("Retype new password: ")? != first {
            return Err(Fail::new(
                EX_DATAERR,
                "mailtool passwd: passwords do not match",
            ));
        }
        return Ok(first.into_bytes());
    }
    let mut line = Vec::new();
    io::stdin()
        .lock()
        .read_until(b'\n', &mut line)
        .map_err(|e| {
            Fail::new(
                EX_IOERR,
                format!(
                    "mailtool passwd: reading standard input: {}",
                    crate::util::io_message(&e)
                ),
            )
        })?;
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.is_empty() {
        return Err(empty());
    }
    Ok(line)
}

fn create_map(db: &Path) -> Result<bool, Fail> {
    store::create_if_missing(
        db,
        Meta {
            kind: "hash".into(),
            nul: false,
        },
    )
    .map_err(|e| store_fail(db, &e))
}

fn open_updater(db: &Path) -> Result<Updater, Fail> {
    Updater::open(db).map_err(|e| store_fail(db, &e))
}

fn store_fail(db: &Path, e: &StoreError) -> Fail {
    let code = match e {
        StoreError::Open { .. } | StoreError::NotAMap { .. } => EX_CANTCREAT,
        StoreError::Io { .. } | StoreError::Sqlite { .. } => EX_IOERR,
    };
    let hint = match e {
        StoreError::NotAMap { .. } => " (rebuild it with mailtool makemap)",
        _ => "",
    };
    Fail::new(
        code,
        format!("mailtool passwd: {}: {}{hint}", db.display(), e.reason()),
    )
}

fn delete(db: &Path, user: &str) -> Result<i32, Fail> {
    if !db.exists() {
        return Err(Fail::new(
            EX_NOUSER,
            format!("mailtool passwd: no such user: {user}"),
        ));
    }
    let mut up = open_updater(db)?;
    let found = up.delete(user.as_bytes()).map_err(|e| store_fail(db, &e))?;
    if !found {
        return Err(Fail::new(
            EX_NOUSER,
            format!("mailtool passwd: no such user: {user}"),
        ));
    }
    up.commit().map_err(|e| store_fail(db, &e))?;
    eprintln!("mailtool passwd: {user} deleted");
    Ok(EX_OK)
}

/// The hash scheme of a stored value, by its prefix.
pub fn scheme(value: &str) -> &'static str {
    Entry::parse(value).scheme()
}

#[derive(serde::Serialize)]
struct Row {
    user: String,
    scheme: &'static str,
    /// An APOP secret is stored (`--apop`).
    apop: bool,
}

impl Row {
    /// The listing of one users-map record.
    fn of(key: &[u8], value: &[u8]) -> Row {
        let v = String::from_utf8_lossy(value);
        Row {
            user: String::from_utf8_lossy(key).into_owned(),
            scheme: scheme(&v),
            apop: crate::users::apop_secret(&v).is_some(),
        }
    }
}

fn list(db: &Path, json: bool) -> Result<i32, Fail> {
    let mut rows = Vec::new();
    match AnyMap::open(db) {
        Ok(map) => map
            .for_each(|k, v| rows.push(Row::of(k, v)))
            .map_err(|e| store_fail(db, &e))?,
        // No map yet: no users.
        Err(_) if !db.exists() => {}
        Err(e) => return Err(store_fail(db, &e)),
    }
    print_rows(rows, json)
}

fn print_rows(rows: Vec<Row>, json: bool) -> Result<i32, Fail> {
    let mut out = io::stdout().lock();
    if json {
        let text = serde_json::to_string_pretty(&rows)
            .map_err(|e| Fail::new(EX_SOFTWARE, e.to_string()))?;
        writeln!(out, "{text}").map_err(stdout_error)?;
    } else {
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED)
            .set_header(["user", "scheme", "APOP"]);
        for r in &rows {
            t.add_row([r.user.as_str(), r.scheme, if r.apop { "yes" } else { "" }]);
        }
        writeln!(out, "{t}").map_err(stdout_error)?;
    }
    Ok(EX_OK)
}

/// The good `user:hash` lines of an import file, and how many lines were bad (reported).
fn read_import(file: &Path) -> Result<(Vec<(String, String)>, usize), Fail> {
    let mut text = Vec::new();
    let name = file.display().to_string();
    let read = if name == "-" {
        io::stdin().lock().read_to_end(&mut text)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut text))
    };
    if let Err(e) = read {
        return Err(Fail::new(
            EX_NOINPUT,
            format!("mailtool passwd: {name}: {}", crate::util::io_message(&e)),
        ));
    }
    let text = String::from_utf8_lossy(&text);
    let mut good = Vec::new();
    let mut bad = 0;
    for (n, line) in text.lines().enumerate() {
        match parse_import_line(line) {
            Import::Skip => {}
            Import::User(u, h) => good.push((u, h)),
            Import::Bad(why) => {
                bad += 1;
                eprintln!("mailtool passwd: {name}: line {}: {why}", n + 1);
            }
        }
    }
    Ok((good, bad))
}

/// `--import`: shadow-style `user:hash[:…]` lines, all in one transaction.
fn import(global: &GlobalOpts, db: &Path, file: &Path) -> Result<i32, Fail> {
    let (good, bad) = read_import(file)?;
    if create_map(db)? {
        super::give_to_server_group(global, db);
    }
    let mut up = open_updater(db)?;
    for (u, h) in &good {
        up.add(u.as_bytes(), h.as_bytes(), DupPolicy::Replace)
            .map_err(|e| store_fail(db, &e))?;
    }
    up.commit().map_err(|e| store_fail(db, &e))?;
    eprintln!("mailtool passwd: {} users imported", good.len());
    Ok(if bad == 0 { EX_OK } else { EX_DATAERR })
}

enum Import {
    /// Blank lines, comments, locked (`!…`, `*`) and password-less accounts: nothing to log in.
    Skip,
    User(String, String),
    Bad(String),
}

fn parse_import_line(line: &str) -> Import {
    let line = line.trim_end_matches('\r');
    if line.trim().is_empty() || line.starts_with('#') {
        return Import::Skip;
    }
    let mut fields = line.split(':');
    let user = fields.next().unwrap_or("");
    let Some(hash) = fields.next() else {
        return Import::Bad("missing colon".into());
    };
    let Ok(user) = valid_user(user) else {
        return Import::Bad(format!("invalid user name {user:?}"));
    };
    if hash.is_empty() || hash.starts_with('!') || hash.starts_with('*') {
        return Import::Skip;
    }
    if hash.chars().any(char::is_whitespace) {
        return Import::Bad(format!("{user}: white space in the hash"));
    }
    match scheme(hash) {
        "sha512-crypt" | "argon2id" => Import::User(user, hash.to_string()),
        _ => Import::Bad(format!(
            "{user}: unsupported hash scheme (only sha512-crypt $6$ and argon2id)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_lines() {
        let h6 = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/";
        assert!(matches!(
            parse_import_line(&format!("Alice:{h6}:19000:0:99999:7:::")),
            Import::User(u, h) if u == "alice" && h == h6
        ));
        for skip in [
            "",
            "# c",
            "daemon:*:19000::::::",
            "bob:!$6$x$y:1::",
            "carol::1::",
        ] {
            assert!(matches!(parse_import_line(skip), Import::Skip), "{skip}");
        }
        for bad in [
            "nocolon",
            "dave:$1$md5$hash:",
            "bad user:$6$a$b",
            "eve:plain",
        ] {
            assert!(matches!(parse_import_line(bad), Import::Bad(_)), "{bad}");
        }
    }

    #[test]
    fn schemes() {
        assert_eq!(scheme("$argon2id$v=19$m=19456,t=2,p=1$abc$def"), "argon2id");
        assert_eq!(scheme("$6$salt$hash extra"), "sha512-crypt");
        assert_eq!(scheme("$1$x$y"), "other");
        assert_eq!(scheme(""), "other");
    }

    #[test]
    fn user_names() {
        assert_eq!(valid_user("Alice").unwrap(), "alice");
        for bad in ["", "a b", "a:b", "a\tb", "a\u{7f}"] {
            assert!(valid_user(bad).is_err(), "{bad:?}");
        }
    }
}
