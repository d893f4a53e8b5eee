//! The client spool (`[paths] client_spool`, default `/var/spool/clientmqueue`): where the
//! `sendmail` command leaves a message when the daemon is not answering, and where the daemon
//! picks it up ([`import`]) at start and on every queue run. This is the seed's
//! clientmqueue/smmsp design, so mail from cron is never lost while the server is down.
//!
//! # Directory and permissions
//!
//! sendmail makes its clientmqueue `smmsp:smmsp 0770` and runs the submission program setgid
//! smmsp. mailtool is never setgid, so the directory is a drop box in the style of Postfix's
//! maildrop instead: owned by the daemon's `user`/`group`, mode `03733`
//! (`rwx-wx-wx`, sticky, setgid). Anyone can create files in it, nobody but the daemon can list
//! it, the sticky bit stops users from removing or renaming each other's files, and the setgid
//! bit gives every new file the daemon's group. Files are created `0640`: the submitting user
//! owns them, the daemon reads them through its group, other users cannot read them.
//!
//! # Files
//!
//! The same `df`/`qf`/`tf` names, queue ids and `qf` format as the main spool (see
//! [`crate::queue`]): `df<ID>` first (`O_EXCL`, fsynced), then `tf<ID>` (fsynced), then
//! `rename(tf, qf)`. A `qf` therefore only exists once its `df` is complete, and [`import`]
//! takes nothing else.
//!
//! # Import
//!
//! Every complete entry is stored in the main spool under the same queue id, then its client
//! files are removed (`qf` first). If the process dies in between, the next import finds the id
//! already in the main spool and only removes the client files, so nothing is duplicated as
//! long as the imported entry is still queued; the daemon imports at start before any queue
//! run, which closes that window in practice (at least once, never lost).
//!
//! The files are written by untrusted users, so the import trusts only the file's owner: it
//! refuses symlinks, hard links and non-regular files, requires `qf` and `df` to have the same
//! owner, rebuilds the envelope from the sender, the recipients and the DSN fields only, and
//! prepends `Received: by HOST (mailtool, from userid UID)` so the submitter is on record.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::id::QueueId;
use super::incoming::Incoming;
use super::spool::{Envelope, NewMessage, QfError, Recipient, Spool, SpoolError};
use crate::stage::Stage;

/// Mode of the drop directory: sticky, setgid, `rwx-wx-wx`.
pub const DIR_MODE: u32 = 0o3733;
/// Mode of the files in it.
pub const FILE_MODE: u32 = 0o640;
/// Leftovers (`df`/`tf` without `qf`) of a dead writer are removed after this long.
const STALE_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum ClientSpoolError {
    #[error("{op} {}: {}", path.display(), crate::util::io_message(source))]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The envelope cannot be written (a line break in an address, …).
    #[error("{0}")]
    Invalid(String),
    /// The main spool refused the message (import).
    #[error("{0}")]
    Spool(#[from] SpoolError),
    /// The drop directory does not exist and this process may not create it.
    #[error(
        "{} does not exist (start `mailtool serve` once, or create it: install -d -m 3733 -o USER -g GROUP {})",
        .0.display(), .0.display()
    )]
    Missing(PathBuf),
}

fn io_err(op: &'static str, path: &Path, source: io::Error) -> ClientSpoolError {
    ClientSpoolError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the drop directory if needed (mode [`DIR_MODE`]) and, when `owner` is given (the
/// daemon's uid and gid, as root), gives it to the daemon. The daemon calls this at start while
/// still root; `sendmail` calls it when the directory is missing and it may create it.
pub fn prepare_dir(dir: &Path, owner: Option<(u32, u32)>) -> Result<(), ClientSpoolError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)
                    .map_err(|e| io_err("mkdir", parent, e))?;
            }
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
                Err(e) => return Err(io_err("mkdir", dir, e)),
            }
        }
        Err(e) => return Err(io_err("mkdir", dir, e)),
    }
    // Created 0700 and opened up only once owned by the daemon, so there is no moment when
    // the wrong owner has a world-writable directory.
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(|e| io_err("chown", dir, e))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
        .map_err(|e| io_err("chmod", dir, e))
}

fn create_file(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    // The umask may have taken the group bit the daemon needs.
    f.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    Ok(f)
}

/// Writes one message durably into the drop directory and returns its queue id. `data` is the
/// complete message (headers and body, LF line ends, as the main spool keeps it).
pub fn store(dir: &Path, envelope: &Envelope, data: &[u8]) -> Result<QueueId, ClientSpoolError> {
    let mut envelope = envelope.clone();
    envelope.size = data.len() as u64;
    if envelope.created == 0 {
        envelope.created = unix_now();
    }
    let qf_text = envelope
        .to_qf()
        .map_err(|e| ClientSpoolError::Invalid(e.to_string()))?;
    for _ in 0..super::id::SEQ_SPACE {
        let id = QueueId::allocate();
        let df_path = dir.join(format!("df{id}"));
        let mut df = match create_file(&df_path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("create", &df_path, e)),
        };
        let tf_path = dir.join(format!("tf{id}"));
        let qf_path = dir.join(format!("qf{id}"));
        let result = (|| {
            df.write_all(data)
                .and_then(|()| df.sync_all())
                .map_err(|e| io_err("write", &df_path, e))?;
            let mut tf = create_file(&tf_path).map_err(|e| io_err("create", &tf_path, e))?;
            tf.write_all(qf_text.as_bytes())
                .and_then(|()| tf.sync_all())
                .map_err(|e| io_err("write", &tf_path, e))?;
            fs::rename(&tf_path, &qf_path).map_err(|e| io_err("rename", &tf_path, e))?;
            sync_entries(dir, &tf)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&qf_path);
            let _ = fs::remove_file(&tf_path);
            let _ = fs::remove_file(&df_path);
            return Err(e);
        }
        return Ok(id);
    }
    Err(ClientSpoolError::Spool(SpoolError::IdExhausted))
}

/// Makes the new directory entries durable. A user cannot open the drop directory (no read
/// permission) to fsync it, so then the whole file system is synced through the file instead.
fn sync_entries(dir: &Path, file: &File) -> Result<(), ClientSpoolError> {
    if let Ok(d) = File::open(dir) {
        return d.sync_all().map_err(|e| io_err("fsync", dir, e));
    }
    match crate::sys::fs::syncfs(file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            crate::sys::fs::sync_all_filesystems();
            Ok(())
        }
        Err(e) => Err(io_err("syncfs", dir, e)),
    }
}

/// What one [`import`] did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Entries now in the main spool (same ids as in the client spool).
    pub imported: Vec<QueueId>,
    /// Entries that were already in the main spool (an earlier import died before cleaning up);
    /// their client files were removed.
    pub already_imported: Vec<QueueId>,
    /// `(file, reason)`: entries left in place, to be retried or looked at (incomplete, written
    /// right now, refused for safety, or the main spool failed).
    pub skipped: Vec<(String, String)>,
    /// Leftovers of writers that died before finishing, removed.
    pub removed: Vec<String>,
}

/// Moves every complete message from the client spool into `spool` (see the module docs).
/// A missing client spool is not an error: nothing was ever dropped there.
pub fn import(
    client_spool: &Path,
    spool: &Spool,
    stage: &Stage,
) -> Result<ImportReport, ClientSpoolError> {
    let mut report = ImportReport::default();
    let rd = match fs::read_dir(client_spool) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(io_err("readdir", client_spool, e)),
    };
    let mut names: Vec<String> = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| io_err("readdir", client_spool, e))?;
        if let Ok(n) = ent.file_name().into_string() {
            names.push(n);
        }
    }
    names.sort();
    let has = |n: &str| names.binary_search_by(|x| x.as_str().cmp(n)).is_ok();
    for name in &names {
        let Some((kind, id)) = split_name(name) else {
            continue;
        };
        match kind {
            "qf" => match import_one(client_spool, &id, spool, stage) {
                Ok(Outcome::Imported) => report.imported.push(id),
                Ok(Outcome::AlreadyThere) => report.already_imported.push(id),
                Err(why) => report.skipped.push((name.clone(), why)),
            },
            // A df or tf without its qf: a writer at work, or one that died before the rename
            // (it never reported success, so its message was never accepted).
            "df" | "tf" if !has(&format!("qf{id}")) => {
                let path = client_spool.join(name);
                if !id.writer_alive() && older_than(&path, STALE_AFTER) {
                    if fs::remove_file(&path).is_ok() {
                        report.removed.push(name.clone());
                    }
                } else if kind == "tf" {
                    report
                        .skipped
                        .push((name.clone(), "being written".to_string()));
                }
            }
            _ => {}
        }
    }
    if (!report.imported.is_empty() || !report.already_imported.is_empty())
        && let Ok(d) = File::open(client_spool)
    {
        let _ = d.sync_all();
    }
    Ok(report)
}

enum Outcome {
    Imported,
    AlreadyThere,
}

fn split_name(name: &str) -> Option<(&str, QueueId)> {
    let kind = name.get(..2)?;
    if !matches!(kind, "qf" | "df" | "tf") {
        return None;
    }
    Some((kind, QueueId::parse(&name[2..]).ok()?))
}

/// Opens a file written by a user without following links, and checks it is a plain file
/// with one link (a hard link to someone else's file must not be mailed out by the daemon).
fn open_untrusted(path: &Path) -> Result<(File, fs::Metadata), String> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| crate::util::io_message(&e))?;
    let md = f.metadata().map_err(|e| crate::util::io_message(&e))?;
    if !md.file_type().is_file() {
        return Err("not a regular file".into());
    }
    if md.nlink() != 1 {
        return Err("has more than one link".into());
    }
    Ok((f, md))
}

fn import_one(dir: &Path, id: &QueueId, spool: &Spool, stage: &Stage) -> Result<Outcome, String> {
    let hostname = stage.hostname();
    let (mut qf, qf_md) = open_untrusted(&dir.join(format!("qf{id}")))?;
    let mut qf_bytes = Vec::new();
    qf.read_to_end(&mut qf_bytes)
        .map_err(|e| crate::util::io_message(&e))?;
    let env = match Envelope::parse_qf(&qf_bytes) {
        Ok(env) => env,
        Err(QfError::Incomplete) => return Err("incomplete".into()),
        Err(QfError::Corrupt(why)) => return Err(format!("corrupt: {why}")),
    };
    let (mut df, df_md) = open_untrusted(&dir.join(format!("df{id}")))?;
    if df_md.uid() != qf_md.uid() {
        return Err("qf and df have different owners".into());
    }
    let uid = qf_md.uid();
    // Copied into the main spool a chunk at a time (a large submission costs no more memory
    // than a small one), behind our Received: line.
    let mut incoming = Incoming::new(id.clone(), spool.data_path(id));
    incoming.push(
        format!(
            "Received: by {hostname} (mailtool, from userid {uid})\n\tid {id}; {}\n",
            crate::util::rfc5322_date(SystemTime::now())
        )
        .as_bytes(),
    );
    let stored = |e: SpoolError| -> Result<Outcome, String> {
        if e.raw_os_error() == Some(libc::EEXIST) {
            Ok(Outcome::AlreadyThere)
        } else {
            Err(format!("main spool: {e}"))
        }
    };
    let outcome = 'copy: {
        let mut buf = vec![0u8; 64 * 1024];
        let mut body_len = 0u64;
        loop {
            let n = match df.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(crate::util::io_message(&e)),
            };
            body_len += n as u64;
            incoming.push(&buf[..n]);
            if incoming.wants_flush()
                && let Err(e) = incoming.flush()
            {
                break 'copy stored(e)?;
            }
        }
        if body_len != env.size {
            return Err(format!(
                "data file has {body_len} bytes, the control file says {}",
                env.size
            ));
        }
        let head = incoming.head().to_vec();
        let data = match incoming.finish() {
            Ok(d) => d,
            Err(e) => break 'copy stored(e)?,
        };
        // The message stage: a local user's mail is ours to sign.
        let mut envelope = sanitized(&env, uid);
        stage.local(id, &data, &head, &mut envelope);
        let msg = NewMessage {
            envelope,
            data,
            id: Some(id.clone()),
        };
        match spool.store(msg) {
            Ok(_) => Outcome::Imported,
            Err(e) => stored(e)?,
        }
    };
    // qf first: a df left alone is removed later as a leftover, a qf without df never exists.
    for kind in ["qf", "df"] {
        let path = dir.join(format!("{kind}{id}"));
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("imported, but cannot remove: {e}")),
        }
    }
    Ok(outcome)
}

/// Only what a local submitter may decide: sender, recipients, DSN and body type. Macros
/// claiming a client address, AUTH, delivery state and the like are dropped.
fn sanitized(env: &Envelope, uid: u32) -> Envelope {
    let mut out = Envelope::new(
        env.sender.clone(),
        env.recipients
            .iter()
            .map(|r| Recipient {
                notify: r.notify,
                orcpt: r.orcpt.clone(),
                ..Recipient::new(r.address.clone())
            })
            .collect(),
    );
    out.created = env.created;
    out.body_type = env.body_type;
    out.envid = env.envid.clone();
    out.ret = env.ret;
    out.smtputf8 = env.smtputf8;
    out.protocol = Some("local".into());
    out.other_macros
        .push(("client_uid".into(), uid.to_string()));
    out
}

use crate::sys::unix_now;

fn older_than(path: &Path, age: Duration) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|e| e > age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(to: &[&str]) -> Envelope {
        Envelope::new(
            "user@host.test",
            to.iter().map(|t| Recipient::new(*t)).collect(),
        )
    }

    #[test]
    fn a_local_users_submission_is_signed_on_import() {
        use crate::config::{Dkim, DkimKey};
        use crate::stage::{keys, sign::Signer};
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("k.pem");
        fs::write(&key, keys::generate(keys::Algorithm::Ed25519).unwrap()).unwrap();
        let dkim = Dkim {
            sign: vec![DkimKey {
                domain: "host.test".into(),
                selector: "s".into(),
                key: key.display().to_string(),
            }],
        };
        let signer = Signer::load(&dkim, |p: &str| std::path::PathBuf::from(p)).unwrap();
        let stage = Stage::plain("mail.host.test").with_signer(signer);
        let drop_dir = tmp.path().join("client");
        prepare_dir(&drop_dir, None).unwrap();
        let spool = Spool::open(&tmp.path().join("mqueue")).unwrap();
        let signed = store(
            &drop_dir,
            &env(&["a@x.test"]),
            b"From: user@host.test\n\nhi\n",
        )
        .unwrap();
        let unsigned = store(
            &drop_dir,
            &env(&["a@x.test"]),
            b"From: user@else.test\n\nhi\n",
        )
        .unwrap();
        let r = import(&drop_dir, &spool, &stage).unwrap();
        assert_eq!(r.imported.len(), 2);
        let e = spool.read_envelope(&signed).unwrap();
        assert_eq!(e.headers.len(), 1, "{:?}", e.headers);
        assert!(
            e.headers[0].starts_with("DKIM-Signature: ") && e.headers[0].contains("d=host.test")
        );
        assert!(spool.read_envelope(&unsigned).unwrap().headers.is_empty());
    }

    #[test]
    fn store_then_import_moves_once() {
        let tmp = tempfile::tempdir().unwrap();
        let drop_dir = tmp.path().join("client");
        prepare_dir(&drop_dir, None).unwrap();
        let mode = fs::metadata(&drop_dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, DIR_MODE);
        let id = store(
            &drop_dir,
            &env(&["a@x.test", "b@y.test"]),
            b"Subject: s\n\nhi\n",
        )
        .unwrap();
        let qf = drop_dir.join(format!("qf{id}"));
        assert_eq!(
            fs::metadata(&qf).unwrap().permissions().mode() & 0o777,
            FILE_MODE
        );
        let spool = Spool::open(&tmp.path().join("mqueue")).unwrap();
        let r = import(&drop_dir, &spool, &Stage::plain("mail.test")).unwrap();
        assert_eq!(r.imported, vec![id.clone()]);
        assert!(r.skipped.is_empty(), "{:?}", r.skipped);
        assert_eq!(fs::read_dir(&drop_dir).unwrap().count(), 0);
        let e = spool.read_envelope(&id).unwrap();
        assert_eq!(e.sender, "user@host.test");
        assert_eq!(e.recipients.len(), 2);
        assert_eq!(e.protocol.as_deref(), Some("local"));
        let data = fs::read_to_string(spool.data_path(&id)).unwrap();
        assert!(data.starts_with("Received: by mail.test (mailtool, from userid "));
        assert!(data.ends_with("Subject: s\n\nhi\n"));
        // A second run finds nothing new.
        let r = import(&drop_dir, &spool, &Stage::plain("mail.test")).unwrap();
        assert!(r.imported.is_empty() && r.already_imported.is_empty());
        assert_eq!(spool.list().unwrap().len(), 1);
    }

    #[test]
    fn crash_after_store_is_not_duplicated() {
        let tmp = tempfile::tempdir().unwrap();
        let drop_dir = tmp.path().join("client");
        prepare_dir(&drop_dir, None).unwrap();
        let id = store(&drop_dir, &env(&["a@x.test"]), b"x\n").unwrap();
        let spool = Spool::open(&tmp.path().join("mqueue")).unwrap();
        // Simulate an import that stored but died before removing the client files.
        let saved_qf = fs::read(drop_dir.join(format!("qf{id}"))).unwrap();
        let saved_df = fs::read(drop_dir.join(format!("df{id}"))).unwrap();
        import(&drop_dir, &spool, &Stage::plain("h")).unwrap();
        fs::write(drop_dir.join(format!("df{id}")), saved_df).unwrap();
        fs::write(drop_dir.join(format!("qf{id}")), saved_qf).unwrap();
        let r = import(&drop_dir, &spool, &Stage::plain("h")).unwrap();
        assert_eq!(r.already_imported, vec![id]);
        assert!(r.imported.is_empty());
        assert_eq!(spool.list().unwrap().len(), 1);
        assert_eq!(fs::read_dir(&drop_dir).unwrap().count(), 0);
    }

    #[test]
    fn incomplete_and_unsafe_entries_are_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let drop_dir = tmp.path().join("client");
        prepare_dir(&drop_dir, None).unwrap();
        let spool = Spool::open(&tmp.path().join("mqueue")).unwrap();
        // A df being written by a live process (ours): no qf yet.
        let live = QueueId::compose(unix_now() as i64, 1, std::process::id());
        fs::write(drop_dir.join(format!("df{live}")), b"partial").unwrap();
        // A qf that points at a symlinked df (someone else's file).
        let bad = QueueId::compose(unix_now() as i64, 2, std::process::id());
        let secret = tmp.path().join("secret");
        fs::write(&secret, b"x\n").unwrap();
        std::os::unix::fs::symlink(&secret, drop_dir.join(format!("df{bad}"))).unwrap();
        let mut e = env(&["a@x.test"]);
        e.created = 1;
        e.size = 2;
        fs::write(drop_dir.join(format!("qf{bad}")), e.to_qf().unwrap()).unwrap();
        // A hard-linked df.
        let hard = QueueId::compose(unix_now() as i64, 3, std::process::id());
        fs::hard_link(&secret, drop_dir.join(format!("df{hard}"))).unwrap();
        fs::write(drop_dir.join(format!("qf{hard}")), e.to_qf().unwrap()).unwrap();
        let r = import(&drop_dir, &spool, &Stage::plain("h")).unwrap();
        assert!(r.imported.is_empty(), "{r:?}");
        let skipped: Vec<&str> = r.skipped.iter().map(|(n, _)| n.as_str()).collect();
        assert!(skipped.contains(&format!("qf{bad}").as_str()), "{r:?}");
        assert!(skipped.contains(&format!("qf{hard}").as_str()), "{r:?}");
        assert!(drop_dir.join(format!("df{live}")).exists());
        assert!(spool.list().unwrap().is_empty());
    }

    /// A stale leftover named with our own pid was written by an earlier process with the same
    /// pid (pid 1 in a restarted container) and is removed; one of another live process stays.
    #[test]
    fn stale_leftovers_of_our_pid_are_removed_and_a_live_writers_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let drop_dir = tmp.path().join("client");
        prepare_dir(&drop_dir, None).unwrap();
        let spool = Spool::open(&tmp.path().join("mqueue")).unwrap();
        let old = SystemTime::now() - STALE_AFTER - Duration::from_secs(60);
        let ours = QueueId::compose(unix_now() as i64, 1, std::process::id());
        let init = QueueId::compose(unix_now() as i64, 2, 1);
        for id in [&ours, &init] {
            let p = drop_dir.join(format!("df{id}"));
            fs::write(&p, b"partial").unwrap();
            File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        assert!(crate::sys::process::alive(1));
        let r = import(&drop_dir, &spool, &Stage::plain("h")).unwrap();
        assert_eq!(r.removed, vec![format!("df{ours}")], "{r:?}");
        assert!(drop_dir.join(format!("df{init}")).exists());
    }

    #[test]
    fn import_keeps_only_submitter_fields() {
        let mut e = env(&["a@x.test"]);
        e.client_addr = Some("10.1.2.3".into());
        e.auth = Some("admin".into());
        e.recipients[0].state = super::super::RcptState::Sent;
        let s = sanitized(&e, 1000);
        assert_eq!(s.client_addr, None);
        assert_eq!(s.auth, None);
        assert_eq!(s.recipients[0].state, super::super::RcptState::Pending);
        assert_eq!(
            s.other_macros,
            vec![("client_uid".to_string(), "1000".to_string())]
        );
    }

    #[test]
    fn missing_client_spool_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = Spool::open(&tmp.path().join("mqueue")).unwrap();
        let r = import(&tmp.path().join("none"), &spool, &Stage::plain("h")).unwrap();
        assert!(r.imported.is_empty());
    }
}
