//! `mailtool setup`: what a package's install script does, so that the first `serve` works
//! with STARTTLS/STLS: the system account (as root), the configuration directory, a commented
//! `mailtool.toml` and a self-signed certificate. Nothing that exists is overwritten.
//!
//! The work is a [`Plan`] of [`Step`]s, so `--dry-run` prints exactly what a real run does.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::account::{self, AccountError};
use super::privileges;
use crate::config::Config;

/// Where the certificate goes when `[tls]` names none (config paths, relocated under the root).
pub const DEFAULT_CERT: &str = "/etc/mail/tls/cert.pem";
pub const DEFAULT_KEY: &str = "/etc/mail/tls/key.pem";

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("{}: {message}", path.display())]
    Write { path: PathBuf, message: String },
    #[error("certificate for {names}: {message}")]
    Certificate { names: String, message: String },
}

/// One change setup makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The system user and group, and membership of the mailbox directory's group.
    Account {
        user: String,
        group: String,
        extra: Option<String>,
    },
    /// A directory, created with this mode.
    Dir { path: PathBuf, mode: u32 },
    /// A self-signed certificate for `names`, the key readable by its owner only.
    Certificate {
        cert: PathBuf,
        key: PathBuf,
        names: Vec<String>,
    },
    /// A new configuration file.
    Config { path: PathBuf, text: String },
}

/// The steps, in order, and what was left as it is.
#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub kept: Vec<String>,
}

/// What setup would do for this configuration. `privileged`: running as root.
pub fn plan(cfg: &Config, privileged: bool) -> Plan {
    let mut p = Plan::default();
    let s = &cfg.settings;
    if privileged {
        let mailboxes = cfg.path(&s.paths.mailboxes);
        let extra = account::writing_group(&mailboxes).map(privileges::group_name);
        // Only when something is missing; ensure() finds out exactly what.
        if account::ensure(&s.user, &s.group, extra.as_deref(), true)
            .is_ok_and(|lines| !lines.is_empty())
        {
            p.steps.push(Step::Account {
                user: s.user.clone(),
                group: s.group.clone(),
                extra,
            });
        } else {
            p.kept
                .push(format!("user {} and group {} exist", s.user, s.group));
        }
    }
    let mail_dir = cfg.mail_dir();
    if !mail_dir.exists() {
        p.steps.push(Step::Dir {
            path: mail_dir.clone(),
            mode: 0o755,
        });
    }
    let (cert_cfg, key_cfg) = if s.tls.cert.is_empty() {
        (DEFAULT_CERT.to_string(), DEFAULT_KEY.to_string())
    } else {
        (s.tls.cert.clone(), s.tls.key.clone())
    };
    let (cert, key) = (cfg.path(&cert_cfg), cfg.path(&key_cfg));
    if cert.exists() || key.exists() {
        p.kept.push(format!(
            "certificate {} and key {} exist",
            cert.display(),
            key.display()
        ));
    } else {
        for dir in [cert.parent(), key.parent()].into_iter().flatten() {
            let step = Step::Dir {
                path: dir.to_path_buf(),
                mode: 0o755,
            };
            if !dir.exists() && !p.steps.contains(&step) {
                p.steps.push(step);
            }
        }
        let host = cfg.hostname();
        let mut names = vec![host.clone()];
        if host != "localhost" {
            names.push("localhost".into());
        }
        p.steps.push(Step::Certificate { cert, key, names });
    }
    if cfg.file_exists {
        let mut kept = format!("{} exists", cfg.file.display());
        if s.tls.cert.is_empty() {
            kept.push_str(&format!(
                "; add `[tls] cert = \"{cert_cfg}\"` and `key = \"{key_cfg}\"` to it to offer \
                 STARTTLS"
            ));
        }
        p.kept.push(kept);
    } else {
        if let Some(dir) = cfg.file.parent() {
            let step = Step::Dir {
                path: dir.to_path_buf(),
                mode: 0o755,
            };
            if !dir.exists() && !p.steps.contains(&step) {
                p.steps.push(step);
            }
        }
        p.steps.push(Step::Config {
            path: cfg.file.clone(),
            text: config_template(&cfg.hostname(), &cert_cfg, &key_cfg, privileged),
        });
    }
    p
}

impl Step {
    /// What the step does, as one line ("would …" under `dry_run`).
    pub fn describe(&self, dry_run: bool) -> Vec<String> {
        let will = |done: &str, todo: &str| if dry_run { todo } else { done }.to_string();
        match self {
            Step::Account { user, group, extra } => {
                account::ensure(user, group, extra.as_deref(), true)
                    .unwrap_or_default()
                    .into_iter()
                    // ensure() speaks in the conditional in a dry run.
                    .map(|l| {
                        if dry_run {
                            l
                        } else {
                            l.replacen("would create", "created", 1).replacen(
                                "would add",
                                "added",
                                1,
                            )
                        }
                    })
                    .collect()
            }
            Step::Dir { path, mode } => vec![format!(
                "{} directory {} (mode {mode:04o})",
                will("created", "would create"),
                path.display()
            )],
            Step::Certificate { cert, key, names } => vec![format!(
                "{} a self-signed certificate for {} in {} (key {}, mode 0600)",
                will("made", "would make"),
                names.join(", "),
                cert.display(),
                key.display()
            )],
            Step::Config { path, .. } => vec![format!(
                "{} {} (commented; `mailtool config show` prints every key)",
                will("wrote", "would write"),
                path.display()
            )],
        }
    }

    /// Makes the change. Lines for the log, as [`Step::describe`] without `dry_run`.
    pub fn apply(&self) -> Result<Vec<String>, SetupError> {
        match self {
            Step::Account { user, group, extra } => {
                return Ok(account::ensure(user, group, extra.as_deref(), false)?);
            }
            Step::Dir { path, mode } => fs::DirBuilder::new()
                .recursive(true)
                .mode(*mode)
                .create(path)
                .map_err(|e| write_error(path, &e))?,
            Step::Certificate { cert, key, names } => {
                let ck = rcgen::generate_simple_self_signed(names.clone()).map_err(|e| {
                    SetupError::Certificate {
                        names: names.join(", "),
                        message: e.to_string(),
                    }
                })?;
                // The key first and exclusively: a half-made pair is never mistaken for one.
                write_new(key, ck.signing_key.serialize_pem().as_bytes(), 0o600)?;
                write_new(cert, ck.cert.pem().as_bytes(), 0o644)?;
            }
            Step::Config { path, text } => write_new(path, text.as_bytes(), 0o644)?,
        }
        Ok(self.describe(false))
    }
}

fn write_error(path: &Path, e: &std::io::Error) -> SetupError {
    SetupError::Write {
        path: path.to_path_buf(),
        message: crate::util::io_message(e),
    }
}

/// Creates `path` (never replacing a file), writes and syncs it.
fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), SetupError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| write_error(path, &e))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| write_error(path, &e))
}

/// A `mailtool.toml` that sets only the host name and the certificate; every other key is
/// shown commented out with its default, so the file documents itself.
pub fn config_template(hostname: &str, cert: &str, key: &str, privileged: bool) -> String {
    let (smtp, sub, pop) = if privileged {
        ("0.0.0.0:25", "0.0.0.0:587", "0.0.0.0:110")
    } else {
        ("127.0.0.1:2525", "127.0.0.1:2587", "127.0.0.1:1100")
    };
    format!(
        r#"# mailtool.toml, written by `mailtool setup`. Every key is optional; the commented
# lines show the defaults. mailtool.toml(5) describes each key; `mailtool config check`
# validates this file and `mailtool config show` prints the effective configuration.

hostname = "{hostname}"              # the name in the greeting, Received: and bounces
# user  = "mailtool"                 # as root: bind the ports, then run as this user/group
# group = "mailtool"

[paths]
# mail_dir       = "/etc/mail"       # maps (makemap, newaliases) and class files
# spool          = "/var/spool/mqueue"
# mailboxes      = "/var/mail"
# mailbox_format = "mbox"            # or "maildir"

[smtp]
# listen      = ["{smtp}"]
# submission  = ["{sub}"]     # AUTH required to relay
# smtps       = []                   # implicit TLS, e.g. ["0.0.0.0:465"]
# greet_pause = "0ms"                # the seed uses "5000ms"
# max_message_size = 26214400        # bytes (25 MiB); 0 = no limit beyond the disk; the seed uses 1000000

[pop3]
# listen = ["{pop}"]
# pop3s  = []                        # implicit TLS, e.g. ["0.0.0.0:995"]

[tls]                                # STARTTLS and STLS; a self-signed pair made by setup.
cert = "{cert}"                      # Replace it with one from your CA (e.g. Let's Encrypt).
key  = "{key}"

[queue]
# interval   = "1h"                  # full queue runs; "0s": only at start and on demand
# smart_host = ""                    # "host[:port]": send all outbound mail through it
# min_free_space = 33554432          # bytes kept free in the spool: MAIL gets 452 4.3.1 below it
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Locate, Settings};

    fn cfg_in(root: &Path) -> Config {
        let mut s = Settings::defaults(false);
        s.hostname = Some("mail.example1.com".into());
        Config::from_settings(s, root.to_path_buf())
    }

    #[test]
    fn template_parses_and_sets_tls() {
        for privileged in [true, false] {
            let t = config_template("mail.example1.com", DEFAULT_CERT, DEFAULT_KEY, privileged);
            let s = crate::config::parse(&t, "t.toml", privileged).unwrap();
            assert_eq!(s, {
                let mut d = Settings::defaults(privileged);
                d.hostname = Some("mail.example1.com".into());
                d.tls.cert = DEFAULT_CERT.into();
                d.tls.key = DEFAULT_KEY.into();
                d
            });
        }
    }

    #[test]
    fn plan_on_an_empty_root_then_nothing_left() {
        let d = tempfile::tempdir().unwrap();
        let cfg = cfg_in(d.path());
        let p = plan(&cfg, false);
        let cert = d.path().join("etc/mail/tls/cert.pem");
        assert!(
            p.steps.contains(&Step::Certificate {
                cert: cert.clone(),
                key: d.path().join("etc/mail/tls/key.pem"),
                names: vec!["mail.example1.com".into(), "localhost".into()],
            }),
            "{:?}",
            p.steps
        );
        assert!(matches!(p.steps.last(), Some(Step::Config { path, .. }) if *path == cfg.file));
        // Nothing happened in planning.
        assert!(!d.path().join("etc").exists());
        for step in &p.steps {
            assert!(!step.apply().unwrap().is_empty());
        }
        use std::os::unix::fs::PermissionsExt;
        let key = d.path().join("etc/mail/tls/key.pem");
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The pair is one the server loads.
        crate::tls::server_config(&cert, &key).unwrap();
        let loaded = Config::load(&Locate {
            config: None,
            root: Some(d.path().to_path_buf()),
        })
        .unwrap();
        assert!(loaded.file_exists);
        assert_eq!(loaded.settings.tls.cert, DEFAULT_CERT);
        // A second run changes nothing, and says what it kept.
        let again = plan(&loaded, false);
        assert!(again.steps.is_empty(), "{:?}", again.steps);
        assert_eq!(again.kept.len(), 2, "{:?}", again.kept);
        // Applying a step whose file exists fails rather than overwriting it.
        let before = fs::read(&cert).unwrap();
        let step = &p
            .steps
            .iter()
            .find(|s| matches!(s, Step::Certificate { .. }))
            .unwrap();
        assert!(matches!(step.apply(), Err(SetupError::Write { .. })));
        assert_eq!(fs::read(&cert).unwrap(), before);
    }

    #[test]
    fn existing_config_without_tls_gets_a_hint_not_an_edit() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("etc/mail/mailtool.toml");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, "hostname = \"mx.example2.com\"\n").unwrap();
        let cfg = Config::load(&Locate {
            config: None,
            root: Some(d.path().to_path_buf()),
        })
        .unwrap();
        let p = plan(&cfg, false);
        assert!(!p.steps.iter().any(|s| matches!(s, Step::Config { .. })));
        assert!(p.steps.iter().any(
            |s| matches!(s, Step::Certificate { names, .. } if names[0] == "mx.example2.com")
        ));
        assert!(
            p.kept
                .iter()
                .any(|k| k.contains("add `[tls] cert = \"/etc/mail/tls/cert.pem\"`")),
            "{:?}",
            p.kept
        );
    }

    #[test]
    fn describe_speaks_of_the_future_in_a_dry_run() {
        let s = Step::Dir {
            path: "/x".into(),
            mode: 0o755,
        };
        assert_eq!(
            s.describe(true),
            ["would create directory /x (mode 0755)".to_string()]
        );
        assert_eq!(
            s.describe(false),
            ["created directory /x (mode 0755)".to_string()]
        );
    }
}
