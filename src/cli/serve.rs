//! `mailtool serve`: the SMTP and POP3 server, in the foreground.

use std::path::PathBuf;

use clap::Args;

use super::{Fail, GlobalOpts};
use crate::server::{self, ServeError, ServeOptions};
use crate::sysexits::*;

#[derive(Debug, Clone, Args)]
#[command(
    about = "Run the SMTP and POP3 server in the foreground",
    long_about = "Binds the listeners in mailtool.toml ([smtp] listen, submission, smtps; [pop3] \
listen, pop3s), drops root privileges to `user`/`group` if started as root, and accepts mail for \
the configured domains with sendmail's policy (access db, virtusertable, relay-domains, localip, \
popip, DNSBL, greet_pause). Accepted messages are fsynced into the spool before the 250 reply. \
The POP3 side serves the virtual users' mailboxes (qpopper's replacement) and records each \
login's address in popip for POP-before-SMTP. \
SIGHUP reloads the configuration and the class files; SIGTERM stops accepting and lets \
sessions in progress finish. Without a config and as a non-root user it runs on \
127.0.0.1:2525 (SMTP), 127.0.0.1:2587 (submission) and 127.0.0.1:1100 (POP3) under \
~/.local/share/mailtool. \
Started by systemd socket activation (LISTEN_FDS, with each socket's FileDescriptorName= one of \
smtp, submission, smtps, pop3, pop3s, metrics), it serves the sockets it was given and binds \
nothing itself.",
    after_help = "Exit status: 0 after a clean shutdown; 64 usage; 69 a listener could not be \
bound; 71 the run-time user is missing and could not be created, or privileges could not be \
dropped; 73 the spool or the mailbox directory takes no new files for the run-time user; 78 bad \
configuration (a [tls] file, [dns] servers), or sockets passed by systemd that are not \
listening TCP sockets named smtp, submission, smtps, pop3, pop3s or metrics."
)]
pub struct ServeArgs {
    /// Where to write the process id [default: ROOT/run/mailtool.pid]
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
}

pub fn run(global: &GlobalOpts, a: &ServeArgs) -> Result<i32, Fail> {
    let opts = ServeOptions {
        pid_file: a.pid_file.clone(),
    };
    match server::run(&global.locate(), &opts) {
        Ok(()) => Ok(EX_OK),
        Err(e) => {
            let code = match &e {
                ServeError::Config(c) => return Err(Fail::from(c.clone())),
                ServeError::Bind { .. } => EX_UNAVAILABLE,
                ServeError::Privileges(_) => EX_OSERR,
                ServeError::Account(crate::server::account::AccountError::NotWritable {
                    ..
                }) => EX_CANTCREAT,
                ServeError::Account(_) => EX_OSERR,
                ServeError::Spool { .. } | ServeError::Io { .. } => EX_CANTCREAT,
                ServeError::Tls(_) | ServeError::Dns(_) | ServeError::Backend(_) => EX_CONFIG,
                ServeError::Dkim(_) => EX_CONFIG,
                ServeError::Runtime(_) => EX_SOFTWARE,
                ServeError::Activation(_) => EX_CONFIG,
            };
            Err(Fail::new(code, format!("mailtool serve: {e}")))
        }
    }
}
