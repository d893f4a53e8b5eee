//! The command line: argv[0] dispatch, the clap tree, exit codes.
//!
//! One binary answers to `mailtool SUB …` and to links named after the classic programs
//! (`makemap`, `newaliases`, `praliases`, `mailq`, `sendmail`). Any other program name falls back to `mailtool`, so
//! `target/debug/mailtool` and links such as `mailtool-dev` keep working.

mod client_args;
mod config_cmd;
mod dkim;
mod doctor;
mod generate;
mod mailq;
mod makemap;
mod man5;
mod migrate;
mod newaliases;
mod passwd;
mod pop_login;
mod poprelay;
mod queue_cmd;
mod relaycheck;
mod sendmail;
mod serve;
mod setup;
mod smtp_send;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::Locate;
use crate::sysexits::*;

/// Options every subcommand and every link accepts.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalOpts {
    /// Configuration file [default: ROOT/etc/mail/mailtool.toml]
    #[arg(long, global = true, value_name = "FILE", env = "MAILTOOL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Prefix every path from the configuration with DIR (tests, chroots, staging)
    #[arg(long, global = true, value_name = "DIR", env = "MAILTOOL_ROOT")]
    pub root: Option<PathBuf>,
}

impl GlobalOpts {
    pub fn locate(&self) -> Locate {
        Locate {
            config: self.config.clone(),
            root: self.root.clone(),
        }
    }
}

/// mailtool: sendmail's admin tools and a safe SMTP/POP3 server for a few virtual domains.
#[derive(Debug, Parser)]
#[command(
    name = "mailtool",
    version,
    about = "sendmail-compatible map tools and mail server for virtual domains",
    long_about = "mailtool replaces a sendmail + qpopper + poprelayd virtual-mail setup and its \
admin tools with one binary. It reads the same /etc/mail files and answers to the same command \
lines: makemap, newaliases, sendmail and friends. The same binary run through a link named \
makemap, newaliases, praliases, mailq or sendmail behaves as that program.",
    after_help = "Exit statuses follow sysexits(3): 0 ok, 64 usage, 65 data error, 66 no input, \
69 service unavailable (a port cannot be bound), 70 internal error, 71 system error (an account \
cannot be created or privileges dropped), 73 cannot create, 75 temporary failure, 78 \
configuration error. pop-login \
has its own (0 logged in, 1 authentication failed, 2 other errors): see its --help."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, dump or query a map (sendmail makemap(8), with postmap's -q)
    Makemap(makemap::MakemapArgs),
    /// Rebuild the aliases database (sendmail newaliases(1))
    Newaliases(newaliases::NewaliasesArgs),
    /// Run the SMTP and POP3 server in the foreground
    Serve(serve::ServeArgs),
    /// Prepare a first start: the system account, a commented mailtool.toml, a certificate
    Setup(setup::SetupArgs),
    /// List the mail queue (sendmail mailq / -bp)
    Mailq(mailq::MailqArgs),
    /// Test servers for open relaying (nmap's 16 probes and more)
    Relaycheck(relaycheck::RelaycheckArgs),
    /// Run the queue now, or delete, hold or release messages
    Queue(queue_cmd::QueueArgs),
    /// Send a test message over SMTP (like swaks)
    SmtpSend(smtp_send::SmtpSendArgs),
    // No doc comment: it would replace the long description on SendmailArgs.
    Sendmail(sendmail::SendmailArgs),
    /// Log in to a POP3 server and report the mailbox (the seed's telnet check)
    #[command(long_about = pop_login::LONG_ABOUT)]
    PopLogin(pop_login::PopLoginArgs),
    /// Set, delete, list or import virtual users' passwords (the users map)
    Passwd(passwd::PasswdArgs),
    /// List, add, remove or expire POP-before-SMTP addresses (poprelayd)
    Poprelay(poprelay::PoprelayArgs),
    /// Check or show the configuration (mailtool.toml)
    Config(config_cmd::ConfigArgs),
    /// Check the installation and say how to fix what is wrong
    Doctor(doctor::DoctorArgs),
    /// Make DKIM signing keys and print the DNS records to publish
    Dkim(dkim::DkimArgs),
    /// Translate another mail system's setup (a sendmail .mc and /etc/mail) into mailtool's
    Migrate(migrate::MigrateArgs),
    /// Print a shell completion script, or write all of them with --dir
    Completions(generate::CompletionsArgs),
    /// Print the mailtool(1) man page, or write every page with --dir
    Man(generate::ManArgs),
}

/// The programs this binary can impersonate through a link.
const APPLETS: &[&str] = &["makemap", "newaliases", "praliases", "mailq", "sendmail"];

/// Multicall front end: the first argument (argv[0]) picks the program.
#[derive(Debug, Parser)]
#[command(multicall = true)]
enum Applet {
    Mailtool(Cli),
    Makemap(WithGlobal<makemap::MakemapArgs>),
    Newaliases(WithGlobal<newaliases::NewaliasesArgs>),
    /// praliases(8): print the aliases database
    Praliases(WithGlobal<newaliases::PraliasesArgs>),
    Mailq(WithGlobal<mailq::MailqArgs>),
    Sendmail(SendmailApplet),
}

#[derive(Debug, Args)]
#[command(version)]
struct WithGlobal<T: Args> {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(flatten)]
    args: T,
}

/// sendmail's own flags include `-h` and `-V`, so the link has no help or version flag.
#[derive(Debug, Args)]
#[command(disable_help_flag = true, disable_version_flag = true)]
struct SendmailApplet {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(flatten)]
    args: sendmail::SendmailArgs,
}

/// Entry point: parses the process arguments, runs the command, returns the exit status.
pub fn main() -> i32 {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let name = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let applet = if APPLETS.contains(&name.as_str()) {
        name
    } else {
        "mailtool".to_string()
    };
    if args.is_empty() {
        args.push(applet.clone().into());
    } else {
        args[0] = applet.clone().into();
    }
    let cmd = applet_command();
    let matches = match cmd.try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return clap_error(e),
    };
    let parsed = match Applet::from_arg_matches(&matches) {
        Ok(p) => p,
        Err(e) => return clap_error(e),
    };
    let result = match parsed {
        Applet::Mailtool(cli) => run(cli.global, cli.command),
        Applet::Makemap(w) => run(w.global, Command::Makemap(w.args)),
        Applet::Newaliases(w) => run(w.global, Command::Newaliases(w.args)),
        Applet::Praliases(w) => newaliases::praliases(&w.global, &w.args),
        Applet::Mailq(w) => run(w.global, Command::Mailq(w.args)),
        Applet::Sendmail(w) => run(w.global, Command::Sendmail(w.args)),
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            if let Some(m) = &f.message {
                eprintln!("{m}");
            }
            f.code
        }
    }
}

fn applet_command() -> clap::Command {
    Applet::command()
}

/// The `mailtool` command tree, for completions and man pages.
pub fn command() -> clap::Command {
    Cli::command()
}

fn clap_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    let code = match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => EX_OK,
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => EX_USAGE,
        _ => EX_USAGE,
    };
    // clap's message already carries the usage line (sendmail's text, for makemap).
    let _ = e.print();
    code
}

fn run(global: GlobalOpts, command: Command) -> Result<i32, Fail> {
    // sendmail decides for itself: it talks to sockets in most of its modes.
    if !matches!(command, Command::Serve(_) | Command::Sendmail(_)) {
        restore_sigpipe();
    }
    match command {
        Command::Makemap(a) => makemap::run(&global, &a),
        Command::Newaliases(a) => newaliases::run(&global, &a),
        Command::Config(a) => config_cmd::run(&global, &a),
        Command::Doctor(a) => doctor::run(&global, &a),
        Command::Dkim(a) => dkim::run(&global, &a),
        Command::Passwd(a) => passwd::run(&global, &a),
        Command::Poprelay(a) => poprelay::run(&global, &a),
        Command::Migrate(a) => migrate::run(&global, &a),
        Command::Mailq(a) => mailq::run(&global, &a),
        Command::Queue(a) => queue_cmd::run(&global, &a),
        Command::Serve(a) => serve::run(&global, &a),
        Command::Setup(a) => setup::run(&global, &a),
        Command::Relaycheck(a) => relaycheck::run(&a),
        Command::SmtpSend(a) => smtp_send::run(&global, &a),
        Command::Sendmail(a) => sendmail::run(&global, &a),
        Command::PopLogin(a) => pop_login::run(&global, &a),
        Command::Completions(a) => generate::completions(&a),
        Command::Man(a) => generate::man(&a),
    }
}

/// Tools that write to a pipe (`makemap -u | head`) should die quietly when it closes, as C
/// programs do; Rust ignores SIGPIPE by default. The server never calls this.
use crate::sys::process::default_sigpipe as restore_sigpipe;

/// A failed command: the exit status and the one line to print on stderr.
#[derive(Debug)]
pub struct Fail {
    pub code: i32,
    pub message: Option<String>,
}

impl Fail {
    pub fn new(code: i32, message: impl Into<String>) -> Fail {
        Fail {
            code,
            message: Some(message.into()),
        }
    }
}

impl From<anyhow::Error> for Fail {
    fn from(e: anyhow::Error) -> Self {
        Fail::new(EX_SOFTWARE, format!("mailtool: {e:#}"))
    }
}

impl From<crate::config::ConfigError> for Fail {
    fn from(e: crate::config::ConfigError) -> Self {
        let code = match &e {
            crate::config::ConfigError::Read { .. } => EX_NOINPUT,
            _ => EX_CONFIG,
        };
        Fail::new(code, format!("mailtool: {e}"))
    }
}

/// When run as root, gives a freshly built map to the server's group
/// ([`crate::maps::rebuild::give_to_server_group`]).
pub(crate) fn give_to_server_group(global: &GlobalOpts, path: &std::path::Path) {
    let group = crate::config::Config::load(&global.locate())
        .map(|c| c.settings.group)
        .unwrap_or_else(|_| "mailtool".into());
    crate::maps::rebuild::give_to_server_group(&group, path);
}

/// Writes to stdout, turning a closed pipe or full disk into an I/O error exit.
pub(crate) fn stdout_error(e: std::io::Error) -> Fail {
    Fail::new(
        EX_IOERR,
        format!(
            "mailtool: writing to standard output: {}",
            crate::util::io_message(&e)
        ),
    )
}
