//! `mailtool setup`: the install script's work (account, config, certificate) in one command.

use clap::Args;

use super::{Fail, GlobalOpts};
use crate::config::Config;
use crate::server::account::AccountError;
use crate::server::setup::{self, SetupError};
use crate::sysexits::*;

#[derive(Debug, Clone, Args)]
#[command(
    about = "Prepare a first start: the system account, a commented mailtool.toml, a certificate",
    long_about = "Does what a package's install script would, so that `mailtool serve` works \
from its first start with STARTTLS and STLS. As root: creates the system user and group named \
by `user`/`group` (default mailtool) when they are missing, and adds the user to the group that \
owns the mailbox directory when that group may write it (Debian's /var/mail is root:mail 2775). \
Then creates the configuration directory, a self-signed certificate for the host name (at the \
[tls] paths, else /etc/mail/tls/cert.pem and key.pem, the key mode 0600), and a commented \
mailtool.toml that uses it. Nothing that exists is changed: an existing mailtool.toml is left as \
it is (setup says which [tls] lines to add), and an existing certificate is kept. As a normal \
user everything goes under ~/.local/share/mailtool (or --root).",
    after_help = "Exit status: 0 done (or nothing to do); 71 the account could not be created; \
73 a file or directory could not be written; 78 the existing configuration is invalid."
)]
pub struct SetupArgs {
    /// Print what would be done, and change nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
}

pub fn run(global: &GlobalOpts, a: &SetupArgs) -> Result<i32, Fail> {
    let cfg = Config::load(&global.locate())?;
    let plan = setup::plan(&cfg, crate::config::is_root());
    for kept in &plan.kept {
        println!("mailtool setup: {kept}");
    }
    for step in &plan.steps {
        let lines = if a.dry_run {
            step.describe(true)
        } else {
            step.apply().map_err(|e| {
                let code = match &e {
                    SetupError::Account(AccountError::NotWritable { .. })
                    | SetupError::Write { .. } => EX_CANTCREAT,
                    SetupError::Account(_) => EX_OSERR,
                    SetupError::Certificate { .. } => EX_SOFTWARE,
                };
                Fail::new(code, format!("mailtool setup: {e}"))
            })?
        };
        for line in lines {
            println!("mailtool setup: {line}");
        }
    }
    if plan.steps.is_empty() {
        println!("mailtool setup: nothing to do");
    } else if !a.dry_run {
        println!("mailtool setup: next: mailtool config check && mailtool serve");
    }
    Ok(EX_OK)
}
