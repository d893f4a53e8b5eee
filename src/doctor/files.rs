//! Files: maps against their text sources (the seed's `make -C /etc/mail`), and whether the
//! server's user can use the spool, the mailboxes and the maps.

use crate::maps::rebuild;
use crate::maps::source::makemap::ParseOptions;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Check;
use crate::config::Config;
use crate::maps::store::db_path;

/// The maps built from a text source, with the makemap flags the seed's Makefile uses.
fn sources(cfg: &Config) -> Vec<(&'static str, PathBuf, &'static [&'static str])> {
    let m = &cfg.settings.maps;
    let all: [(&'static str, &String, &'static [&'static str]); 4] = [
        ("access", &m.access, &[][..]),
        ("virtusertable", &m.virtusertable, &[][..]),
        // localip lists bare addresses and networks: keys without values.
        ("localip", &m.localip, &["-e"][..]),
        ("popip", &m.popip, &[][..]),
    ];
    // Maps in a backend have no file; `backends` checks them.
    all.into_iter()
        .filter(|(_, name, _)| crate::config::split_backend_name(name).is_none())
        .map(|(label, name, flags)| (label, cfg.map_path(name), flags))
        .collect()
}

fn mtime(p: &Path) -> Option<i64> {
    std::fs::metadata(p).ok().map(|m| m.mtime())
}

/// How one map is rebuilt by `--fix`.
enum Rebuild {
    Makemap(ParseOptions),
    Aliases,
}

/// Every map is at least as new as its source; with `fix`, stale and missing ones are rebuilt
/// the way makemap and newaliases build them, as `make -C /etc/mail` did.
pub fn maps(cfg: &Config, fix: bool) -> Vec<Check> {
    let mut out = Vec::new();
    let mut all: Vec<(String, PathBuf, PathBuf, Rebuild)> = sources(cfg)
        .into_iter()
        .map(|(name, src, flags)| {
            let opts = ParseOptions {
                allow_empty: flags.contains(&"-e"),
                ..ParseOptions::default()
            };
            let db = db_path(&src);
            (format!("map {name}"), src, db, Rebuild::Makemap(opts))
        })
        .collect();
    let aliases = cfg.map_path(&cfg.settings.maps.aliases);
    let aliases_in_file = crate::config::split_backend_name(&cfg.settings.maps.aliases).is_none();
    all.extend(aliases_in_file.then(|| {
        (
            "map aliases".into(),
            aliases.clone(),
            db_path(&aliases),
            Rebuild::Aliases,
        )
    }));
    for (name, src, db, how) in all {
        let shown_src = src.display().to_string();
        let rebuild = || -> Result<(), String> {
            match &how {
                Rebuild::Makemap(opts) => {
                    let outcome =
                        rebuild::build_from_file(&src, *opts).map_err(|e| e.to_string())?;
                    if let Some(d) = outcome.diagnostics.first() {
                        return Err(format!("{shown_src}: line {}: {}", d.line, d.text));
                    }
                }
                Rebuild::Aliases => {
                    let built = rebuild::build_aliases(&src, &db, &rebuild::local_names(cfg))
                        .map_err(|e| e.to_string())?;
                    if let Some(d) = built
                        .diagnostics
                        .iter()
                        .find(|d| d.1 == crate::maps::source::aliases::Severity::Error)
                    {
                        return Err(format!("{shown_src}: line {}: {}", d.0, d.2));
                    }
                }
            }
            rebuild::give_to_server_group(&cfg.settings.group, &db);
            Ok(())
        };
        let cmd = if name == "map aliases" {
            "mailtool newaliases".to_string()
        } else {
            format!("mailtool makemap hash {shown_src} < {shown_src}")
        };
        match (mtime(&src), mtime(&db)) {
            (None, None) => out.push(Check::pass(name, "not used (no source, no map)")),
            (None, Some(_)) => out.push(Check::pass(
                name,
                format!("{} (no text source)", db.display()),
            )),
            (Some(s), d) if d.is_none_or(|d| d < s) => {
                let what = if d.is_none() {
                    "never built"
                } else {
                    "older than its source"
                };
                if fix {
                    match rebuild() {
                        Ok(()) => out.push(Check::pass(name, format!("{what}: rebuilt"))),
                        Err(e) => out.push(Check::fail(name, format!("rebuild failed: {e}"), cmd)),
                    }
                } else {
                    let check = format!("{}: {what}", db.display());
                    if d.is_none() {
                        out.push(Check::fail(name, check, format!("{cmd} (or doctor --fix)")));
                    } else {
                        out.push(Check::warn(name, check, format!("{cmd} (or doctor --fix)")));
                    }
                }
            }
            _ => out.push(Check::pass(name, format!("{} is up to date", db.display()))),
        }
    }
    out
}

/// The user and group the server runs as: the configured ones when we are root (the server
/// will switch to them), else ourselves.
pub fn server_identity(cfg: &Config) -> Result<(u32, u32, String), String> {
    if crate::config::is_root() {
        crate::server::privileges::lookup(&cfg.settings.user, &cfg.settings.group)
            .map(|id| (id.uid, id.gid, id.user))
            .map_err(|e| e.to_string())
    } else {
        let (uid, gid) = crate::sys::process::real_ids();
        Ok((uid, gid, crate::server::privileges::current_user()))
    }
}

/// Whether `uid`/`gid` may do `bits` (4 read, 2 write, 1 search/exec) on `m` (root may).
fn allowed(m: &std::fs::Metadata, uid: u32, gid: u32, bits: u32) -> bool {
    let mode = m.mode();
    uid == 0
        || (m.uid() == uid && (mode >> 6) & bits == bits)
        || (m.gid() == gid && (mode >> 3) & bits == bits)
        || mode & bits == bits
}

/// Spool, mailboxes and maps are usable by the server's user, and the spool is private.
pub fn permissions(cfg: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    let (uid, gid, user) = match server_identity(cfg) {
        Ok(x) => x,
        Err(e) => {
            return vec![Check::fail(
                "server user",
                e,
                "create the user, or set `user`/`group` in mailtool.toml",
            )];
        }
    };
    let group = cfg.settings.group.clone();
    let p = &cfg.settings.paths;
    let spool = cfg.path(&p.spool);
    match std::fs::metadata(&spool) {
        Err(_) => out.push(Check::warn(
            "spool",
            format!("{} does not exist yet", spool.display()),
            "start `mailtool serve` once (it creates it)",
        )),
        Ok(m) if !allowed(&m, uid, gid, 7) => out.push(Check::fail(
            "spool",
            format!("{} is not usable by {user}", spool.display()),
            format!("chown -R {user} {0} && chmod 700 {0}", spool.display()),
        )),
        Ok(m) if m.mode() & 0o077 != 0 => out.push(Check::warn(
            "spool",
            format!(
                "{} is mode {:o}: others can read queued mail",
                spool.display(),
                m.mode() & 0o7777
            ),
            format!("chmod 700 {}", spool.display()),
        )),
        Ok(_) => out.push(Check::pass(
            "spool",
            format!("{} private to {user}", spool.display()),
        )),
    }
    let boxes = cfg.path(&p.mailboxes);
    match std::fs::metadata(&boxes) {
        Err(_) => out.push(Check::warn(
            "mailboxes",
            format!("{} does not exist yet", boxes.display()),
            "start `mailtool serve` once (it creates it)",
        )),
        Ok(m) if !allowed(&m, uid, gid, 3) => out.push(Check::fail(
            "mailboxes",
            format!(
                "{} is not writable by {user}: local delivery will defer",
                boxes.display()
            ),
            format!("chgrp {group} {0} && chmod 2775 {0}", boxes.display()),
        )),
        Ok(_) => out.push(Check::pass(
            "mailboxes",
            format!("{} writable by {user}", boxes.display()),
        )),
    }
    let client = cfg.path(&p.client_spool);
    if let Ok(m) = std::fs::metadata(&client)
        && !allowed(&m, uid, gid, 7)
    {
        out.push(Check::fail(
            "client spool",
            format!(
                "{} is not readable by {user}: mail from `sendmail` would wait there",
                client.display()
            ),
            format!("chgrp {group} {0} && chmod 1773 {0}", client.display()),
        ));
    }
    let mut unreadable = Vec::new();
    let mut checked = 0;
    for (_, src, _) in sources(cfg) {
        let db = db_path(&src);
        if let Ok(m) = std::fs::metadata(&db) {
            checked += 1;
            if !allowed(&m, uid, gid, 4) {
                unreadable.push(db.display().to_string());
            }
        }
    }
    let aliases = db_path(&cfg.map_path(&cfg.settings.maps.aliases));
    if crate::config::split_backend_name(&cfg.settings.maps.aliases).is_none()
        && let Ok(m) = std::fs::metadata(&aliases)
    {
        checked += 1;
        if !allowed(&m, uid, gid, 4) {
            unreadable.push(aliases.display().to_string());
        }
    }
    if unreadable.is_empty() {
        out.push(Check::pass(
            "map permissions",
            format!(
                "{checked} {} readable by {user}",
                crate::util::plural(checked, "map", "maps")
            ),
        ));
    } else {
        out.push(Check::fail(
            "map permissions",
            format!("not readable by {user}: {}", unreadable.join(", ")),
            format!("chgrp {group} FILE && chmod 640 FILE"),
        ));
    }
    out
}

/// Every mailbox is of the kind `mailbox_format` says: mail for one that is not (an mbox
/// file left after switching to Maildir, or the converse) is deferred until it is fixed.
pub fn mailbox_formats(cfg: &Config) -> Check {
    let name = "mailbox format";
    let format = cfg.settings.paths.mailbox_format;
    let boxes = cfg.path(&cfg.settings.paths.mailboxes);
    let Ok(rd) = std::fs::read_dir(&boxes) else {
        return Check::pass(name, format!("{} has no mailboxes yet", boxes.display()));
    };
    let mut wrong: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        // Dot files and dotlocks (`user.lock`) are not mailboxes.
        .filter(|n| !n.starts_with('.') && !n.ends_with(".lock"))
        .filter(|n| crate::mailbox::wrong_format(&boxes.join(n), format))
        .collect();
    wrong.sort();
    let want = crate::mailbox::format_name(format);
    if wrong.is_empty() {
        return Check::pass(
            name,
            format!("every mailbox in {} is {want}", boxes.display()),
        );
    }
    let (found, other, fix) = match format {
        crate::config::MailboxFormat::Maildir => (
            "mbox files",
            "mbox",
            "convert each to a Maildir (e.g. mb2md), then remove the file",
        ),
        crate::config::MailboxFormat::Mbox => (
            "Maildir directories",
            "maildir",
            "convert each to an mbox, then remove the directory",
        ),
    };
    Check::fail(
        name,
        format!(
            "{found} in {} while mailbox_format = \"{want}\": {} (their mail is deferred)",
            boxes.display(),
            wrong.join(", ")
        ),
        format!("{fix}; or set mailbox_format = \"{other}\""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn permission_bits_are_read_like_the_kernel_does() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let m = std::fs::metadata(&f).unwrap();
        let (u, g) = (m.uid(), m.gid());
        assert!(allowed(&m, u, g + 1, 6));
        assert!(allowed(&m, u + 1, g, 4) && !allowed(&m, u + 1, g, 2));
        assert!(!allowed(&m, u + 1, g + 1, 4) || u + 1 == 0);
    }
}
