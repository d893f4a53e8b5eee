//! `mailq` (sendmail -bp): the queue listing in sendmail 8.12's exact layout
//! (docs/sendmail-compat.md §3.1), with the `-qR`/`-qS`/`-qI` filters of §3.2 and `--json` for scripts.

use std::io::Write;

use clap::Args;

use super::{Fail, GlobalOpts, stdout_error};
use crate::config::Config;
use crate::queue::{Filter, Spool, format_mailq, mailq_json};
use crate::sysexits::*;

#[derive(Debug, Clone, Args)]
#[command(
    about = "List the mail queue (sendmail mailq / -bp)",
    long_about = "Prints the queue in sendmail 8.12's layout, which scripts parse: a header with \
the queue directory and the number of requests, then per message the queue id, the size, the \
time it was queued, the sender, the reason it is waiting in parentheses, and its recipients, \
then `Total requests: N`. A `*` after the id marks a message being delivered now.",
    after_help = "Selectors: -qRsubstr (recipient), -qSsubstr (sender), -qIsubstr (queue id); \
prefix ! to negate (-q!Rfoo); several of one kind are OR-ed. Exit status: 0; 66 when the \
spool cannot be read."
)]
pub struct MailqArgs {
    /// Verbose layout: priority, per-recipient status
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Only matching entries: Rsubstr, Ssubstr, Isubstr, each optionally after `!`
    #[arg(short = 'q', value_name = "[!]Xsubstr", allow_hyphen_values = true)]
    pub select: Vec<String>,
    /// One JSON array with an object per message
    #[arg(long)]
    pub json: bool,
    /// `-Ac`: the client queue (`[paths] client_spool`, where the sendmail command leaves mail
    /// while the daemon is down) instead of the main one; `-Am` is the main one, as in sendmail
    #[arg(short = 'A', value_name = "c|m", value_parser = ["c", "m"])]
    pub queue: Option<String>,
    /// A selector's substring given as a separate word (`-qR foo`)
    #[arg(hide = true)]
    pub rest: Vec<String>,
}

pub fn run(global: &GlobalOpts, a: &MailqArgs) -> Result<i32, Fail> {
    let cfg = Config::load(&global.locate())?;
    let filter = parse_selectors("mailq", &a.select, &a.rest)?;
    let client = a.queue.as_deref() == Some("c");
    let paths = &cfg.settings.paths;
    let dir = cfg.path(if client {
        &paths.client_spool
    } else {
        &paths.spool
    });
    let shown = dir.display().to_string();
    let msgs = match Spool::attach(&dir) {
        Ok(spool) => spool
            .list()
            .map_err(|e| Fail::new(EX_NOINPUT, format!("mailq: {shown}: {e}")))?,
        // Not "empty": a missing spool means a wrong --root, [paths] spool or a server that
        // never ran, and a script must not read that as "nothing waiting".
        Err(_) if !dir.exists() => {
            return Err(Fail::new(
                EX_NOINPUT,
                format!(
                    "mailq: {shown}: no such queue directory (check [paths] {} in {}, or start \
                     `mailtool serve` once)",
                    if client { "client_spool" } else { "spool" },
                    cfg.file.display()
                ),
            ));
        }
        Err(e) => return Err(Fail::new(EX_NOINPUT, format!("mailq: {shown}: {e}"))),
    };
    let msgs = filter.apply(&msgs);
    let mut text = if a.json {
        serde_json::to_string_pretty(&mailq_json(&msgs))
            .map_err(|e| Fail::new(EX_SOFTWARE, e.to_string()))?
            + "\n"
    } else {
        format_mailq(&shown, &msgs, a.verbose, std::time::SystemTime::now())
    };
    if !client && !a.json {
        text.push_str(&client_spool_note(&cfg.path(&paths.client_spool)));
    }
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(stdout_error)?;
    Ok(EX_OK)
}

/// One line for plain `mailq` when messages wait in the client spool (the daemon imports them
/// at its next start or queue run); nothing when there are none or the spool is not readable.
fn client_spool_note(dir: &std::path::Path) -> String {
    let n = Spool::attach(dir)
        .and_then(|s| s.list())
        .map_or(0, |m| m.len());
    match n {
        0 => String::new(),
        n => format!(
            "\t\t{n} {} in the client queue {} (mailq -Ac)\n",
            crate::util::plural(n, "message", "messages"),
            dir.display()
        ),
    }
}

/// sendmail's queue selectors (`-qRsubstr`, `-q!Sx`, or `-qR substr` as two words) as a
/// [`Filter`]; `prog` names the command in errors.
pub fn parse_selectors(prog: &str, select: &[String], rest: &[String]) -> Result<Filter, Fail> {
    let mut filter = Filter::default();
    let mut rest = rest.iter();
    for sel in select {
        let spec = if matches!(sel.trim_start_matches('!'), "R" | "S" | "I") {
            match rest.next() {
                Some(word) => format!("{sel}{word}"),
                None => {
                    return Err(Fail::new(
                        EX_USAGE,
                        format!("{prog}: -q{sel} needs a substring"),
                    ));
                }
            }
        } else {
            sel.clone()
        };
        filter
            .add_selector(&spec)
            .map_err(|e| Fail::new(EX_USAGE, format!("{prog}: -q{spec}: {e}")))?;
    }
    if let Some(extra) = rest.next() {
        return Err(Fail::new(
            EX_USAGE,
            format!("{prog}: unexpected argument {extra:?}"),
        ));
    }
    Ok(filter)
}
