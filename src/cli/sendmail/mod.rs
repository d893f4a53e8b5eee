//! `sendmail`: the command scripts, cron and mail user agents call (`sendmail -t -i`,
//! `sendmail -oi -f bounce@x user@y`), answering to `mailtool sendmail …` and to a link named
//! `sendmail`. The message goes to the running daemon over SMTP on loopback; when the daemon
//! does not answer, it is dropped into the client spool, which the daemon imports at start and
//! on every queue run ([`crate::queue::client_spool`]).

mod args;
mod message;
mod stdio;
mod submit;
mod verify;

use std::io::{self, Write};
use std::path::Path;
use std::time::SystemTime;

use clap::Args;

use super::{Fail, GlobalOpts, stdout_error};
use crate::config::Config;
use crate::queue::client_spool::{self, ClientSpoolError};
use crate::queue::{Envelope, QueueId, Recipient};
use crate::sysexits::*;
use args::{Invocation, Mode, QueueOpt};
use submit::{Outcome, Submission};

#[derive(Debug, Clone, Args)]
#[command(
    disable_help_flag = true,
    about = "Submit a message from stdin, like sendmail(8) (also -bp, -bi, -bd, -bs, -bv, -q)",
    long_about = "sendmail's command line, as scripts, cron and mail programs use it. The message \
is read from standard input up to EOF, or up to a line with a single `.` unless -i is given. It \
is handed to the running daemon over SMTP on loopback (the first [smtp] listen address); a \
recipient the daemon refuses is reported as `ADDRESS... REASON` on stderr. When the daemon does \
not answer, the message is written to [paths] client_spool and the daemon picks it up at start \
and on every queue run, so mail from cron is never lost.\n\n\
Modes: -bm deliver (default); -bp list the queue (mailq, with -qR/-qS/-qI selectors); -bi \
rebuild aliases (newaliases); -bd run the daemon (serve; the queue interval is [queue] interval, \
a -q<time> given with -bd is ignored); -bs SMTP on stdin/stdout (relayed to the daemon); -bv \
show how each address routes; -q[time], -qR…: run the queue.\n\n\
Options: -t recipients from To:, Cc:, Bcc: as well as the command line (Bcc: is removed); -i, \
-oi a lone `.` does not end the message; -f ADDR, -r ADDR envelope sender; -F NAME full name for \
the From: header added when missing (Date: and Message-ID: are added too); -v show the SMTP \
conversation; -B 7BIT|8BITMIME, -N never|success,failure,delay, -R full|hdrs, -V ENVID: DSN \
parameters passed to the daemon; -O Name=value and -oXvalue: IgnoreDots, ErrorMode, \
DeliveryMode and other harmless options are accepted.\n\n\
Accepted and ignored: -n -U -G -c -e -m -s -h N -L TAG -p PROTO -A c|m, -oe*, -od* (every \
delivery mode submits to the daemon, which queues and delivers on its own schedule), -om -oo \
-oL* -os -oc. Refused with exit 64: -bt -bP -bh -bH -C -d -X -M -oQ (QueueDirectory) -oA and \
unknown options.",
    after_help = "Exit status (sysexits, as sendmail): 0 accepted or queued in the client \
spool; 64 usage; 65 the message was refused; 67 a recipient is unknown (the others still get the \
message); 69 refused by policy; 75 neither the daemon nor the client spool took the message."
)]
pub struct SendmailArgs {
    /// sendmail options, then the recipients
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

fn usage(e: impl std::fmt::Display) -> Fail {
    Fail::new(EX_USAGE, format!("sendmail: {e}"))
}

pub fn run(global: &GlobalOpts, a: &SendmailArgs) -> Result<i32, Fail> {
    if a.args.first().is_some_and(|w| w == "--help") {
        let mut cmd = super::command();
        if let Some(sub) = cmd.find_subcommand_mut("sendmail") {
            let help = sub.render_long_help();
            print!("{help}");
        }
        return Ok(EX_OK);
    }
    let inv = args::parse(&a.args).map_err(usage)?;
    // A closed socket must be an error we can fall back from, never a silent death by
    // SIGPIPE; only the listing modes write to a pipe that may close early.
    if matches!(
        inv.mode,
        Mode::PrintQueue | Mode::InitAliases | Mode::Verify
    ) {
        super::restore_sigpipe();
    }
    match inv.mode {
        Mode::PrintQueue => {
            let m = super::mailq::MailqArgs {
                verbose: inv.verbose,
                select: inv.queue_filters.clone(),
                json: false,
                queue: None,
                rest: Vec::new(),
            };
            super::mailq::run(global, &m)
        }
        Mode::InitAliases => {
            let n = super::newaliases::NewaliasesArgs {
                verbose: inv.verbose,
                dump: false,
                json: false,
                file: None,
            };
            super::newaliases::run(global, &n)
        }
        Mode::Daemon => {
            if let Some(QueueOpt::Interval(t)) = &inv.queue {
                eprintln!(
                    "sendmail: -q{t} ignored with -bd: the queue interval is [queue] interval in mailtool.toml"
                );
            }
            super::serve::run(global, &super::serve::ServeArgs { pid_file: None })
        }
        Mode::QueueRun => {
            let none: [String; 0] = [];
            let filter = super::mailq::parse_selectors("sendmail", &inv.queue_filters, &none)?;
            super::queue_cmd::run_queue(global, filter, false, None)
        }
        Mode::Verify => {
            let cfg = Config::load(&global.locate())?;
            if inv.recipients.is_empty() {
                return Err(usage("Recipient names must be specified"));
            }
            let addrs = message::command_line_recipients(&inv.recipients, "");
            let addrs: Vec<String> = addrs
                .into_iter()
                .map(|a| a.trim_end_matches('@').to_string())
                .collect();
            let (lines, code) = verify::verify(&cfg, &addrs);
            let mut out = io::stdout().lock();
            for l in lines {
                writeln!(out, "{l}").map_err(stdout_error)?;
            }
            Ok(code)
        }
        Mode::Smtp => {
            let cfg = Config::load(&global.locate())?;
            smtp_over_stdio(&cfg)
        }
        Mode::Deliver => {
            let cfg = Config::load(&global.locate())?;
            deliver(&cfg, &inv)
        }
    }
}

/// The login name and GECOS full name of the real user.
fn passwd_entry() -> (String, Option<String>) {
    let (uid, _) = crate::sys::process::real_ids();
    let Some((name, gecos)) = crate::sys::account::user_by_uid(uid) else {
        return (format!("uid{uid}"), None);
    };
    let gecos = gecos.and_then(|g| {
        // GECOS: "Full Name,room,phone,…"; `&` stands for the capitalized login name.
        let full = g.split(',').next().unwrap_or("").trim().to_string();
        let mut cap = name.clone();
        if let Some(f) = cap.get_mut(..1) {
            f.make_ascii_uppercase();
        }
        Some(full.replace('&', &cap)).filter(|s| !s.is_empty())
    });
    (name, gecos)
}

fn deliver(cfg: &Config, inv: &Invocation) -> Result<i32, Fail> {
    if !inv.read_recipients && inv.recipients.is_empty() {
        return Err(usage("Recipient names must be specified"));
    }
    let hostname = cfg.hostname();
    let (user, gecos) = passwd_entry();
    let sender = match &inv.sender {
        Some(s) => message::qualify(s, &hostname),
        None => format!("{user}@{hostname}"),
    };
    let raw = message::read_input(&mut io::stdin().lock(), inv.ignore_dots).map_err(|e| {
        Fail::new(
            EX_IOERR,
            format!(
                "sendmail: reading standard input: {}",
                crate::util::io_message(&e)
            ),
        )
    })?;
    let token = QueueId::allocate().to_string();
    let local = message::Local {
        hostname: hostname.clone(),
        user,
        sender: sender.clone(),
        full_name: inv
            .full_name
            .clone()
            .or(if inv.sender.is_none() { gecos } else { None }),
        now: SystemTime::now(),
        token,
    };
    let prepared = message::prepare(&raw, &local);
    let mut recipients: Vec<String> = Vec::new();
    let mut add = |r: String| {
        if !recipients.iter().any(|x| x.eq_ignore_ascii_case(&r)) {
            recipients.push(r);
        }
    };
    if inv.read_recipients {
        prepared
            .header_recipients
            .iter()
            .cloned()
            .for_each(&mut add);
    }
    // sendmail 8.12+ adds the command-line recipients to those of -t (the Bat book, -t).
    message::command_line_recipients(&inv.recipients, &hostname)
        .into_iter()
        .for_each(&mut add);
    if recipients.is_empty() {
        return Err(usage(if inv.read_recipients {
            "No recipient addresses found in header"
        } else {
            "Recipient names must be specified"
        }));
    }

    let submission = Submission {
        sender: &sender,
        recipients: &recipients,
        data: &prepared.data,
        body: inv.body,
        notify: inv.notify,
        ret: inv.ret,
        envid: inv.envid.as_deref(),
        verbose: inv.verbose,
    };
    let outcome = match submit::daemon_addr(cfg) {
        Some(addr) => submit::submit(addr, &submission),
        None => Outcome::Unavailable {
            reason: "no [smtp] listen address configured".into(),
            rejected: Vec::new(),
        },
    };
    let report = |rejected: &[(String, crate::smtp::proto::Reply)]| -> i32 {
        let mut code = EX_OK;
        for (addr, r) in rejected {
            eprintln!("{addr}... {}", submit::reply_text(r));
            code = code.max(submit::exit_for(r));
        }
        code
    };
    match outcome {
        Outcome::Accepted { rejected } => Ok(report(&rejected)),
        Outcome::NoRecipients { rejected } => Ok(report(&rejected).max(EX_NOUSER)),
        Outcome::Refused(r) => {
            // A refused sender is a policy decision, a refused message a data error.
            let (code, who) = if r.code == 552 || r.code == 554 {
                (EX_DATAERR, "message".to_string())
            } else {
                (EX_UNAVAILABLE, sender.clone())
            };
            Err(Fail::new(
                code,
                format!("{who}... {}", submit::reply_text(&r)),
            ))
        }
        Outcome::Unavailable { reason, rejected } => {
            let code = report(&rejected);
            let left: Vec<&String> = recipients
                .iter()
                .filter(|r| !rejected.iter().any(|(a, _)| a == *r))
                .collect();
            if left.is_empty() {
                return Ok(code.max(EX_NOUSER));
            }
            let mut env = Envelope::new(
                sender.clone(),
                left.iter()
                    .map(|a| Recipient {
                        notify: inv.notify,
                        ..Recipient::new(a.as_str())
                    })
                    .collect(),
            );
            env.body_type = inv.body;
            env.ret = inv.ret;
            env.envid = inv.envid.clone();
            let dir = cfg.path(&cfg.settings.paths.client_spool);
            match ensure_client_dir(cfg, &dir)
                .and_then(|()| client_spool::store(&dir, &env, &prepared.data))
            {
                Ok(id) => {
                    if inv.verbose {
                        eprintln!(
                            "sendmail: daemon not answering ({reason}); message queued in {} as {id}",
                            dir.display()
                        );
                    }
                    Ok(code)
                }
                Err(e) => Err(Fail::new(
                    EX_TEMPFAIL,
                    format!(
                        "sendmail: cannot submit: the daemon is not answering ({reason}), and the client spool failed: {e}"
                    ),
                )),
            }
        }
    }
}

/// The client spool must exist before a user can drop into it. Root creates it for the
/// daemon's user and group; another user only inside a tree it owns (a private `--root` or
/// the per-user default root), never a shared one that others would then write into.
fn ensure_client_dir(cfg: &Config, dir: &Path) -> Result<(), ClientSpoolError> {
    if dir.is_dir() {
        return Ok(());
    }
    if crate::config::is_root() {
        let owner = crate::server::privileges::lookup(&cfg.settings.user, &cfg.settings.group)
            .ok()
            .map(|id| (id.uid, id.gid));
        return client_spool::prepare_dir(dir, owner);
    }
    let mut ancestor = dir.parent();
    while let Some(a) = ancestor {
        if let Ok(md) = std::fs::metadata(a) {
            use std::os::unix::fs::MetadataExt;
            if md.uid() == crate::sys::process::euid() {
                return client_spool::prepare_dir(dir, None);
            }
            break;
        }
        ancestor = a.parent();
    }
    Err(ClientSpoolError::Missing(dir.to_path_buf()))
}

/// `-bs`: relays the SMTP conversation on stdin/stdout to the daemon, which then applies its
/// full policy (and trusts loopback for relaying like any local client), one command at a time
/// ([`stdio`]). Without a daemon the client gets a 421 and nothing is queued: an SMTP client
/// retries on 4xx by itself. The exit status is non-zero when anything was refused.
fn smtp_over_stdio(cfg: &Config) -> Result<i32, Fail> {
    use std::net::TcpStream;
    let stream = submit::daemon_addr(cfg)
        .and_then(|a| TcpStream::connect_timeout(&a, std::time::Duration::from_secs(10)).ok());
    let Some(stream) = stream else {
        let mut out = io::stdout().lock();
        write!(
            out,
            "421 4.3.0 {} mailtool daemon not running, use sendmail without -bs\r\n",
            cfg.hostname()
        )
        .and_then(|()| out.flush())
        .map_err(stdout_error)?;
        return Ok(EX_TEMPFAIL);
    };
    // Generous, as the submission's own: the daemon may take its time over the final dot.
    let _ = stream.set_read_timeout(Some(submit::REPLY_TIMEOUT));
    let mut out = io::stdout().lock();
    Ok(stdio::relay(
        io::BufReader::new(io::stdin()),
        &mut out,
        stream,
    ))
}
