//! What `serve` needs before it may start, checked the same way by `serve` and by
//! `mailtool config check`: a check that passes what the start then refuses is no check.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::Config;
use crate::sysexits::*;

/// One reason the server would not start, with the exit status `serve` would give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub exit: i32,
}

/// What the checks found: problems stop the start; notes are worth saying.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<Problem>,
    pub notes: Vec<String>,
}

impl Report {
    /// The exit status of the first problem, or 0.
    pub fn exit(&self) -> i32 {
        self.problems.first().map_or(EX_OK, |p| p.exit)
    }
}

/// The listeners as (address, service name), in the order `serve` binds them.
pub fn listeners(cfg: &Config) -> Vec<(SocketAddr, &'static str)> {
    let s = &cfg.settings.smtp;
    let p = &cfg.settings.pop3;
    let groups: [(&[SocketAddr], &'static str); 5] = [
        (&s.listen, "SMTP"),
        (&s.submission, "submission"),
        (&s.smtps, "SMTPS"),
        (&p.listen, "POP3"),
        (&p.pop3s, "POP3S"),
    ];
    groups
        .into_iter()
        .flat_map(|(addrs, kind)| addrs.iter().map(move |&a| (a, kind)))
        .collect()
}

/// The `[tls]` certificate and key, loaded as the server uses them; `None` without `[tls]`.
/// Implicit-TLS listeners (SMTPS, POP3S) without a certificate are an error.
pub fn tls(cfg: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
    let t = &cfg.settings.tls;
    let config = if t.cert.is_empty() {
        None
    } else {
        Some(
            crate::tls::server_config(&cfg.path(&t.cert), &cfg.path(&t.key))
                .map_err(|e| e.to_string())?,
        )
    };
    if config.is_none() {
        if !cfg.settings.smtp.smtps.is_empty() {
            return Err("smtp.smtps listeners need [tls] cert and key".into());
        }
        if !cfg.settings.pop3.pop3s.is_empty() {
            return Err("pop3.pop3s listeners need [tls] cert and key".into());
        }
    }
    Ok(config)
}

/// The pid in the server's pid file when that process is alive: its ports are in use by us.
fn running_server(cfg: &Config) -> Option<u32> {
    crate::sys::process::running_pid(&cfg.path("/run/mailtool.pid"))
}

/// Everything `serve` checks before it binds, plus a trial bind of every listener.
pub fn check(cfg: &Config) -> Report {
    let mut r = Report::default();
    if let Err(message) = tls(cfg) {
        r.problems.push(Problem {
            message,
            exit: EX_CONFIG,
        });
    }
    if let Err(e) = crate::dns::Dns::new(&cfg.settings.dns.servers, cfg.settings.dns.timeout.0) {
        r.problems.push(Problem {
            message: format!("DNS: {e}"),
            exit: EX_CONFIG,
        });
    }
    account(cfg, &mut r);
    backend_tables(cfg, &mut r);
    let running = running_server(cfg);
    for (addr, kind) in listeners(cfg) {
        match std::net::TcpListener::bind(addr) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && running.is_some() => {
                r.notes.push(format!(
                    "{addr} ({kind}) is in use by the running server (pid {})",
                    running.unwrap_or_default()
                ));
            }
            Err(e) => {
                let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                    " (ports below 1024 need root: start as root, or pick another port)"
                } else if e.kind() == std::io::ErrorKind::AddrInUse {
                    " (another program holds it: ss -ltnp shows which)"
                } else {
                    ""
                };
                r.problems.push(Problem {
                    message: format!(
                        "cannot listen on {addr} ({kind}): {}{hint}",
                        crate::util::io_message(&e)
                    ),
                    exit: EX_UNAVAILABLE,
                });
            }
        }
    }
    r
}

/// The backend tables `[maps]` names: a table with the wrong columns stops the start; a
/// backend that is down now does not (lookups answer 451 until it is back), nor does a table
/// not built yet (an empty map). Those are notes.
pub fn backend_tables(cfg: &Config, r: &mut Report) {
    let tables = crate::doctor::backends::tables(cfg);
    if tables.is_empty() {
        return;
    }
    let backends = crate::maps::backend::Backends::new(cfg);
    for (label, backend, table) in tables {
        let place = format!("{backend}:{table}");
        match backends.get(&backend).and_then(|b| b.check(&table)) {
            Ok(c) => match c.present {
                Some(Ok(())) => {}
                None => r.notes.push(format!(
                    "map {label}: {place} does not exist yet (an empty map)"
                )),
                Some(Err(shape)) => r.problems.push(Problem {
                    message: format!(
                        "map {label}: {place}: {shape}; the table must be (key text PRIMARY \
                         KEY, value text NOT NULL)"
                    ),
                    exit: EX_CONFIG,
                }),
            },
            Err(e) => r.notes.push(format!(
                "map {label}: {e}; its lookups fail (451) until the backend answers"
            )),
        }
    }
}

/// As root, the run-time account must exist, or be the default one that `serve` creates.
fn account(cfg: &Config, r: &mut Report) {
    if !crate::config::is_root() {
        return;
    }
    let s = &cfg.settings;
    match super::privileges::lookup(&s.user, &s.group) {
        Ok(_) => {}
        Err(_)
            if s.user == super::account::DEFAULT_ACCOUNT
                && s.group == super::account::DEFAULT_ACCOUNT =>
        {
            r.notes.push(format!(
                "user and group {} will be created at the first start (or by mailtool setup)",
                s.user
            ));
        }
        Err(e) => r.problems.push(Problem {
            message: e.to_string(),
            exit: EX_OSERR,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn config(text: &str) -> Config {
        let root = std::env::temp_dir();
        let settings = crate::config::parse(text, "t.toml", false).unwrap();
        let mut c = Config::from_settings(settings, root);
        c.settings.user = Settings::defaults(false).user;
        c
    }

    #[test]
    fn a_missing_certificate_is_a_problem() {
        let c = config(
            "[smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\n[pop3]\nlisten = []\n\
             [tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
        );
        let r = check(&c);
        assert_eq!(r.exit(), EX_CONFIG);
        assert!(
            r.problems[0].message.contains("/nonexistent/cert.pem"),
            "{:?}",
            r.problems
        );
    }

    #[test]
    fn implicit_tls_needs_a_certificate() {
        let c = config(
            "[smtp]\nlisten = []\nsubmission = []\nsmtps = [\"127.0.0.1:0\"]\n[pop3]\nlisten = []\n",
        );
        assert_eq!(
            tls(&c).unwrap_err(),
            "smtp.smtps listeners need [tls] cert and key"
        );
        let c = config(
            "[smtp]\nlisten = []\nsubmission = []\n[pop3]\nlisten = []\npop3s = [\"127.0.0.1:0\"]\n",
        );
        assert_eq!(
            tls(&c).unwrap_err(),
            "pop3.pop3s listeners need [tls] cert and key"
        );
    }

    #[test]
    fn a_taken_port_is_a_problem_and_a_free_one_is_not() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let c = config(&format!(
            "[smtp]\nlisten = [\"{addr}\"]\nsubmission = []\n[pop3]\nlisten = [\"127.0.0.1:0\"]\n"
        ));
        assert_eq!(
            listeners(&c),
            [(addr, "SMTP"), ("127.0.0.1:0".parse().unwrap(), "POP3")]
        );
        let r = check(&c);
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert_eq!(r.exit(), EX_UNAVAILABLE);
        assert!(
            r.problems[0].message.starts_with(&format!(
                "cannot listen on {addr} (SMTP): Address already in use"
            )),
            "{:?}",
            r.problems
        );
        drop(taken);
        assert!(check(&c).problems.is_empty());
    }
}
