//! The server's system account, created the way a package's install script would
//! (`adduser --system --group mailtool`), and the checks that the account can write where mail
//! goes: a server that accepts mail it cannot deliver is worse than one that does not start.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::privileges::{self, Identity, PrivError};

/// The account `serve` creates by itself when it is missing: the default `user`/`group`.
/// Any other name is the admin's choice and must exist (or be made by `mailtool setup`).
pub const DEFAULT_ACCOUNT: &str = "mailtool";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Lookup(#[from] PrivError),
    #[error("{command}: {message}")]
    Command { command: String, message: String },
    #[error(
        "cannot create files in {} as user {user} ({message}): mail would be accepted and \
         never delivered; fix: {fix}",
        path.display()
    )]
    NotWritable {
        path: PathBuf,
        user: String,
        message: String,
        fix: String,
    },
}

fn user_exists(name: &str) -> bool {
    crate::sys::account::user_by_name(name).is_some()
}

fn group_exists(name: &str) -> bool {
    crate::sys::account::group_by_name(name).is_some()
}

fn run(args: &[&str], dry_run: bool) -> Result<(), AccountError> {
    let command = args.join(" ");
    if dry_run {
        return Ok(());
    }
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| AccountError::Command {
            command: command.clone(),
            message: crate::util::io_message(&e),
        })?;
    if !out.status.success() {
        return Err(AccountError::Command {
            command,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Creates `group` and `user` when they are missing (a system group and a system user with
/// no home and no login shell), and makes the user a member of `extra_group` (the group that
/// owns the mailbox directory). Returns one sentence per change (or, with `dry_run`, per change
/// it would make), for the log.
pub fn ensure(
    user: &str,
    group: &str,
    extra_group: Option<&str>,
    dry_run: bool,
) -> Result<Vec<String>, AccountError> {
    let mut done = Vec::new();
    let will = if dry_run { "would create" } else { "created" };
    if !group_exists(group) {
        run(&["groupadd", "--system", group], dry_run)?;
        done.push(format!("{will} system group {group}"));
    }
    let extra = extra_group.filter(|g| *g != group);
    if !user_exists(user) {
        let mut args = vec![
            "useradd",
            "--system",
            "--gid",
            group,
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "mailtool mail server",
        ];
        if let Some(g) = extra {
            args.extend(["--groups", g]);
        }
        args.push(user);
        run(&args, dry_run)?;
        done.push(match extra {
            Some(g) => format!("{will} system user {user} (group {group}, also in {g})"),
            None => format!("{will} system user {user} (group {group})"),
        });
    } else if let Some(g) = extra
        && !is_member(user, g)
    {
        run(&["usermod", "--append", "--groups", g, user], dry_run)?;
        let added = if dry_run { "would add" } else { "added" };
        done.push(format!("{added} user {user} to group {g}"));
    }
    Ok(done)
}

/// Whether `user` is in `group` (as its primary group, or by the group database).
fn is_member(user: &str, group: &str) -> bool {
    let sys =
        crate::sys::account::user_by_name(user).zip(crate::sys::account::group_by_name(group));
    sys.is_some_and(|((_, primary), wanted)| {
        primary == wanted || crate::sys::account::group_list(user, primary).contains(&wanted)
    })
}

/// The group through which the server may write `dir`: the directory's group when it is
/// group-writable and not root's (Debian's `/var/mail` is `root:mail 2775`).
pub fn writing_group(dir: &Path) -> Option<libc::gid_t> {
    let m = std::fs::metadata(dir).ok()?;
    (m.mode() & 0o020 != 0 && m.gid() != 0).then_some(m.gid())
}

/// Makes `id` a member of the mailbox directory's group for this process when that is how the
/// directory is meant to be written. Returns the log line saying so.
pub fn join_writing_group(id: &mut Identity, dir: &Path) -> Option<String> {
    let gid = writing_group(dir)?;
    if id.in_group(gid) || std::fs::metadata(dir).is_ok_and(|m| m.uid() == id.uid) {
        return None;
    }
    id.add_group(gid);
    Some(format!(
        "{} is group-writable by {}: delivering with {} as a supplementary group",
        dir.display(),
        privileges::group_name(gid),
        privileges::group_name(gid)
    ))
}

/// Creates and removes a file in `dir` as the current process, to prove that the spool and the
/// mailbox directory take new files before any mail is accepted.
pub fn check_writable(dir: &Path, user: &str) -> Result<(), AccountError> {
    let probe = dir.join(format!(".mailtool-write-test.{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => {
            let (owner, group, mode) = std::fs::metadata(dir)
                .map(|m| (m.uid(), m.gid(), m.mode() & 0o7777))
                .unwrap_or((0, 0, 0));
            let group_name = privileges::group_name(group);
            let fix = if group != 0 && mode & 0o020 != 0 {
                format!(
                    "usermod -a -G {group_name} {user}, or chown {user} {}",
                    dir.display()
                )
            } else {
                format!(
                    "chgrp {user} {d} && chmod 2775 {d} (it is uid {owner}, group {group_name}, \
                     mode {mode:04o})",
                    d = dir.display()
                )
            };
            Err(AccountError::NotWritable {
                path: dir.to_path_buf(),
                user: user.to_string(),
                message: crate::util::io_message(&e),
                fix,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn existing_accounts_need_nothing() {
        assert!(ensure("root", "root", None, false).unwrap().is_empty());
        assert!(
            ensure("root", "root", Some("root"), true)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_dry_run_says_what_it_would_do_and_does_nothing() {
        let name = "mailtool-no-such-account-x";
        let done = ensure(name, name, Some("root"), true).unwrap();
        assert_eq!(
            done,
            [
                format!("would create system group {name}"),
                format!("would create system user {name} (group {name}, also in root)"),
            ]
        );
        assert!(!user_exists(name) && !group_exists(name));
    }

    #[test]
    fn writing_group_is_the_group_of_a_group_writable_directory() {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o2775)).unwrap();
        let gid = std::fs::metadata(d.path()).unwrap().gid();
        assert_eq!(writing_group(d.path()), (gid != 0).then_some(gid));
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(writing_group(d.path()), None);
    }

    #[test]
    fn writability_is_proved_by_a_file() {
        let d = tempfile::tempdir().unwrap();
        check_writable(d.path(), "me").unwrap();
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            0,
            "probe removed"
        );
        let missing = d.path().join("nope");
        let e = check_writable(&missing, "me").unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("cannot create files in {}", missing.display())),
            "{e}"
        );
        assert!(e.contains("never delivered; fix: chgrp me"), "{e}");
    }
}
