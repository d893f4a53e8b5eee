//! sendmail's command line, parsed by hand: it is getopt-shaped, not clap-shaped (`-oi`,
//! `-odq`, `-q1h`, `-fuser` and `-f user`, `-O Option=value`, bundles such as `-ti`).
//!
//! Like sendmail on Linux, option parsing stops at the first word that is not an option (or
//! at `--`); every word after it is a recipient list (`a,b` and `a b` are the same).
//!
//! Accepted and ignored (they change nothing in a setup where the daemon always queues and
//! reports errors itself): `-v` only adds a transcript, `-n`, `-U`, `-G`, `-c`, `-e`, `-m`, `-s`,
//! `-h N`, `-L tag`, `-p proto`, `-A c|m`, `-oe*`/`-O ErrorMode`, `-od*`/`-O DeliveryMode`
//! (every mode submits to the daemon, which queues and delivers on its own schedule),
//! `-om`, `-oo`, `-oL*`, `-os`, `-oc`, `-o7`, `-o8`. Refused, exit 64 with a message: `-bt`,
//! `-bP`, `-bh`, `-bH`, `-ba`, `-C`, `-d`, `-X`, `-M`, `-oQ`/`-O QueueDirectory`, `-oA`, and
//! every option mailtool does not know.

use crate::address::{Body, Notify, Ret};

/// What the command is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `-bm` (the default): read a message from stdin and submit it.
    Deliver,
    /// `-bp`: list the queue (mailq).
    PrintQueue,
    /// `-bi` / `-I`: rebuild the aliases database (newaliases).
    InitAliases,
    /// `-bd` / `-bD`: run the daemon.
    Daemon,
    /// `-bs`: SMTP on stdin and stdout.
    Smtp,
    /// `-bv`: show how each address routes.
    Verify,
    /// `-q…` without another mode: process the queue.
    QueueRun,
}

/// `-q` and its argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueOpt {
    /// `-q`: one run now.
    Once,
    /// `-q1h`, `-q30m`: the interval (with `-bd`).
    Interval(String),
    /// `-qf`: one run in the foreground.
    Foreground,
    /// `-qp[time]`: persistent runner.
    Persistent(String),
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub mode: Mode,
    /// `-t`: recipients from To:, Cc:, Bcc:.
    pub read_recipients: bool,
    /// `-i`, `-oi`, `-O IgnoreDots`: a line with a single `.` does not end the message.
    pub ignore_dots: bool,
    /// `-f` / `-r`: envelope sender (`<>` allowed).
    pub sender: Option<String>,
    /// `-F`: full name for a From: header we add.
    pub full_name: Option<String>,
    /// `-v`.
    pub verbose: bool,
    pub queue: Option<QueueOpt>,
    /// `-qR…`, `-qS…`, `-qI…` (optionally after `!`), as mailq takes them.
    pub queue_filters: Vec<String>,
    /// `-B`.
    pub body: Option<Body>,
    /// `-N`: DSN NOTIFY, upper case (`NEVER` or a list of SUCCESS, FAILURE, DELAY).
    pub notify: Option<Notify>,
    /// `-R`.
    pub ret: Option<Ret>,
    /// `-V`: DSN ENVID.
    pub envid: Option<String>,
    /// Recipient words after the options.
    pub recipients: Vec<String>,
}

impl Default for Invocation {
    fn default() -> Self {
        Invocation {
            mode: Mode::Deliver,
            read_recipients: false,
            ignore_dots: false,
            sender: None,
            full_name: None,
            verbose: false,
            queue: None,
            queue_filters: Vec::new(),
            body: None,
            notify: None,
            ret: None,
            envid: None,
            recipients: Vec::new(),
        }
    }
}

/// A usage error: the message sendmail would print (without the program name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(s: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(s.into()))
}

/// Options that take an argument, attached (`-fuser`) or as the next word (`-f user`).
const WITH_ARG: &str = "ABbCdFfhLMNOopRrVX";

/// Parses the words after the program name.
pub fn parse(args: &[String]) -> Result<Invocation, UsageError> {
    let mut inv = Invocation::default();
    let mut mode: Option<Mode> = None;
    let mut i = 0;
    while i < args.len() {
        let word = &args[i];
        if word == "--" {
            i += 1;
            break;
        }
        if !word.starts_with('-') || word == "-" {
            break;
        }
        let body = &word[1..];
        for (pos, c) in body.char_indices() {
            let rest = &body[pos + c.len_utf8()..];
            if c == 'q' {
                // getopt's optional argument: only ever attached.
                queue_opt(&mut inv, rest)?;
                break;
            }
            if WITH_ARG.contains(c) {
                let value = if !rest.is_empty() {
                    rest.to_string()
                } else {
                    i += 1;
                    match args.get(i) {
                        Some(v) => v.clone(),
                        None => return err(format!("option requires an argument -- '{c}'")),
                    }
                };
                with_arg(&mut inv, &mut mode, c, &value)?;
                break;
            }
            flag(&mut inv, &mut mode, c)?;
        }
        i += 1;
    }
    inv.recipients = args[i.min(args.len())..].to_vec();
    inv.mode = match mode {
        Some(m) => m,
        None if inv.queue.is_some() || !inv.queue_filters.is_empty() => Mode::QueueRun,
        None => Mode::Deliver,
    };
    Ok(inv)
}

fn set_mode(mode: &mut Option<Mode>, m: Mode) {
    *mode = Some(m);
}

fn flag(inv: &mut Invocation, mode: &mut Option<Mode>, c: char) -> Result<(), UsageError> {
    match c {
        't' => inv.read_recipients = true,
        'i' => inv.ignore_dots = true,
        'v' => inv.verbose = true,
        'I' => set_mode(mode, Mode::InitAliases),
        // No aliasing, initial submission, gateway, and the old one-letter forms of -o.
        'n' | 'U' | 'G' | 'c' | 'e' | 'm' | 's' => {}
        _ => return err(format!("invalid option -- '{c}'")),
    }
    Ok(())
}

fn with_arg(
    inv: &mut Invocation,
    mode: &mut Option<Mode>,
    c: char,
    value: &str,
) -> Result<(), UsageError> {
    match c {
        'b' => {
            let m = match value {
                "m" => Mode::Deliver,
                "p" => Mode::PrintQueue,
                "i" => Mode::InitAliases,
                "d" | "D" => Mode::Daemon,
                "s" => Mode::Smtp,
                "v" => Mode::Verify,
                "t" => return err("-bt (address test mode) is not supported by mailtool; use -bv"),
                "P" | "h" | "H" | "a" => {
                    return err(format!("-b{value} is not supported by mailtool"));
                }
                _ => return err(format!("Invalid operation mode {value}")),
            };
            set_mode(mode, m);
        }
        'f' | 'r' => {
            if inv.sender.is_some() {
                return err("More than one \"from\" person");
            }
            let v = value.trim();
            let v = v
                .strip_prefix('<')
                .and_then(|x| x.strip_suffix('>'))
                .unwrap_or(v);
            if v.contains(['\r', '\n', '\0']) {
                return err(format!("Invalid sender address {value:?}"));
            }
            inv.sender = Some(v.to_string());
        }
        'F' => {
            if value.contains(['\r', '\n', '\0']) {
                return err("Invalid full name");
            }
            inv.full_name = Some(value.to_string());
        }
        'B' => {
            inv.body = Some(match Body::parse(value) {
                Some(b @ (Body::SevenBit | Body::EightBitMime)) => b,
                _ => return err(format!("Illegal body type {value}")),
            });
        }
        'N' => inv.notify = Some(parse_notify(value)?),
        'R' => {
            inv.ret = Some(match Ret::parse(value) {
                Some(r) => r,
                None => return err(format!("Invalid -R value {value}")),
            });
        }
        'V' => {
            if value.is_empty()
                || value.len() > 100
                || !value.bytes().all(|b| (33..=126).contains(&b))
            {
                return err(format!("Invalid original envelope id {value}"));
            }
            inv.envid = Some(value.to_string());
        }
        'o' => {
            let mut chars = value.chars();
            let Some(letter) = chars.next() else {
                return err("option requires an argument -- 'o'");
            };
            short_option(inv, letter, chars.as_str())?;
        }
        'O' => {
            let (name, v) = value.split_once('=').unwrap_or((value, ""));
            long_option(inv, name.trim(), v.trim())?;
        }
        // Hop count, log tag, protocol, submission/MTA mode: nothing to do here.
        'h' | 'L' | 'p' | 'A' => {}
        'C' => {
            return err(
                "-C is not supported by mailtool: give the configuration with --config or MAILTOOL_CONFIG",
            );
        }
        'd' => return err("-d (debugging) is not supported by mailtool"),
        'X' => return err("-X (traffic log) is not supported by mailtool"),
        'M' => return err("-M (macro definition) is not supported by mailtool"),
        _ => return err(format!("invalid option -- '{c}'")),
    }
    Ok(())
}

fn queue_opt(inv: &mut Invocation, rest: &str) -> Result<(), UsageError> {
    let sel = rest.strip_prefix('!').unwrap_or(rest);
    match sel.chars().next() {
        None => inv.queue = Some(QueueOpt::Once),
        Some('R' | 'S' | 'I') => {
            if sel.len() == 1 {
                return err(format!("-q{rest} needs a substring"));
            }
            inv.queue_filters.push(rest.to_string());
        }
        Some(_) if rest.starts_with('!') => return err(format!("Invalid -q!{sel}")),
        Some(c) if c.is_ascii_digit() => {
            crate::duration::Span::parse(rest)
                .map_err(|_| UsageError(format!("Invalid queue interval -q{rest}")))?;
            inv.queue = Some(QueueOpt::Interval(rest.to_string()));
        }
        Some('f') if rest == "f" => inv.queue = Some(QueueOpt::Foreground),
        Some('p') => inv.queue = Some(QueueOpt::Persistent(rest[1..].to_string())),
        Some(_) => return err(format!("-q{rest} is not supported by mailtool")),
    }
    Ok(())
}

fn parse_notify(value: &str) -> Result<Notify, UsageError> {
    // sendmail allows spaces around the words: `-N "success, delay"`.
    let words: Vec<&str> = value.split(',').map(str::trim).collect();
    match Notify::parse(&words.join(",")) {
        Some(n) => Ok(n),
        None => err(format!("Invalid -N argument {value}")),
    }
}

/// `-oXvalue`: the one-letter names of sendmail's options.
fn short_option(inv: &mut Invocation, letter: char, value: &str) -> Result<(), UsageError> {
    let name = match letter {
        'i' => "IgnoreDots",
        'e' => "ErrorMode",
        'd' => "DeliveryMode",
        'm' => "MeToo",
        'o' => "OldStyleHeaders",
        'L' => "LogLevel",
        's' => "SuperSafe",
        'c' => "HoldExpensive",
        '7' => "SevenBitInput",
        '8' => "EightBitMode",
        'v' => "Verbose",
        'Q' => "QueueDirectory",
        'A' => "AliasFile",
        _ => return err(format!("option -o{letter} is not supported by mailtool")),
    };
    long_option(inv, name, value)
}

/// `-O Name=value`: accepted when harmless, refused otherwise.
fn long_option(inv: &mut Invocation, name: &str, value: &str) -> Result<(), UsageError> {
    let truthy = |v: &str| {
        !matches!(
            v.to_ascii_lowercase().as_str(),
            "f" | "false" | "n" | "no" | "0"
        )
    };
    match name.to_ascii_lowercase().as_str() {
        "ignoredots" => inv.ignore_dots = truthy(value),
        "verbose" => inv.verbose = truthy(value),
        "errormode" => {
            if !value.is_empty()
                && !matches!(value.chars().next(), Some('p' | 'q' | 'm' | 'w' | 'e'))
            {
                return err(format!("Invalid ErrorMode {value}"));
            }
        }
        "deliverymode" => {
            if !value.is_empty()
                && !matches!(value.chars().next(), Some('b' | 'i' | 'q' | 'd' | 'I'))
            {
                return err(format!("Invalid DeliveryMode {value}"));
            }
        }
        "metoo" | "oldstyleheaders" | "loglevel" | "supersafe" | "holdexpensive"
        | "sevenbitinput" | "eightbitmode" | "sendmimeerrors" => {}
        "queuedirectory" => {
            return err("QueueDirectory cannot be set here: use [paths] spool in mailtool.toml");
        }
        "aliasfile" => {
            return err("AliasFile cannot be set here: use [maps] aliases in mailtool.toml");
        }
        _ => return err(format!("option {name} is not supported by mailtool")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(words: &[&str]) -> Result<Invocation, UsageError> {
        parse(&words.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn cron_and_script_forms() {
        let i = p(&["-t", "-i"]).unwrap();
        assert!(i.read_recipients && i.ignore_dots);
        assert_eq!(i.mode, Mode::Deliver);
        assert!(i.recipients.is_empty());
        let i = p(&["-ti"]).unwrap();
        assert!(i.read_recipients && i.ignore_dots);
        let i = p(&["-oi", "-f", "bounce@x", "user@y"]).unwrap();
        assert!(i.ignore_dots);
        assert_eq!(i.sender.as_deref(), Some("bounce@x"));
        assert_eq!(i.recipients, vec!["user@y"]);
        let i = p(&["-fbounce@x", "-FJohn Doe", "a", "b,c"]).unwrap();
        assert_eq!(i.sender.as_deref(), Some("bounce@x"));
        assert_eq!(i.full_name.as_deref(), Some("John Doe"));
        assert_eq!(i.recipients, vec!["a", "b,c"]);
        let i = p(&["-F", "Full Name", "-r", "<>", "--", "-odd-name@x"]).unwrap();
        assert_eq!(i.sender.as_deref(), Some(""));
        assert_eq!(i.recipients, vec!["-odd-name@x"]);
        // Parsing stops at the first recipient.
        let i = p(&["user@y", "-oi"]).unwrap();
        assert!(!i.ignore_dots);
        assert_eq!(i.recipients, vec!["user@y", "-oi"]);
    }

    #[test]
    fn modes() {
        assert_eq!(p(&["-bm", "x"]).unwrap().mode, Mode::Deliver);
        assert_eq!(p(&["-bp"]).unwrap().mode, Mode::PrintQueue);
        assert_eq!(p(&["-bi"]).unwrap().mode, Mode::InitAliases);
        assert_eq!(p(&["-I"]).unwrap().mode, Mode::InitAliases);
        assert_eq!(p(&["-b", "s"]).unwrap().mode, Mode::Smtp);
        assert_eq!(p(&["-bv", "a@b"]).unwrap().mode, Mode::Verify);
        let i = p(&["-bd", "-q1h"]).unwrap();
        assert_eq!(i.mode, Mode::Daemon);
        assert_eq!(i.queue, Some(QueueOpt::Interval("1h".into())));
        let i = p(&["-q"]).unwrap();
        assert_eq!((i.mode, i.queue), (Mode::QueueRun, Some(QueueOpt::Once)));
        let i = p(&["-qRexample.com", "-q!Sfoo"]).unwrap();
        assert_eq!(i.mode, Mode::QueueRun);
        assert_eq!(i.queue_filters, vec!["Rexample.com", "!Sfoo"]);
        let i = p(&["-bp", "-qIabc"]).unwrap();
        assert_eq!(i.mode, Mode::PrintQueue);
        assert_eq!(i.queue_filters, vec!["Iabc"]);
        assert_eq!(p(&["-qf"]).unwrap().queue, Some(QueueOpt::Foreground));
        assert_eq!(
            p(&["-qp30s"]).unwrap().queue,
            Some(QueueOpt::Persistent("30s".into()))
        );
    }

    #[test]
    fn options_accepted_and_refused() {
        let i = p(&[
            "-odb", "-oem", "-oee", "-odq", "-odi", "-om", "-v", "-n", "-U", "x",
        ])
        .unwrap();
        assert!(i.verbose && !i.ignore_dots);
        let i = p(&["-O", "IgnoreDots=True", "-ODeliveryMode=b", "x"]).unwrap();
        assert!(i.ignore_dots);
        assert!(!p(&["-O", "ignoredots=false", "x"]).unwrap().ignore_dots);
        let i = p(&[
            "-B8BITMIME",
            "-N",
            "success,failure",
            "-R",
            "hdrs",
            "-V",
            "env1",
            "x",
        ])
        .unwrap();
        assert_eq!(i.body, Some(Body::EightBitMime));
        assert_eq!(
            i.notify.map(|n| n.to_string()).as_deref(),
            Some("SUCCESS,FAILURE")
        );
        assert_eq!(i.ret, Some(Ret::Hdrs));
        assert_eq!(i.envid.as_deref(), Some("env1"));
        assert_eq!(
            p(&["-N", "never", "x"])
                .unwrap()
                .notify
                .map(|n| n.to_string())
                .as_deref(),
            Some("NEVER")
        );
        for (words, msg) in [
            (&["-x"][..], "invalid option -- 'x'"),
            (&["-tz"][..], "invalid option -- 'z'"),
            (&["-f"][..], "option requires an argument -- 'f'"),
            (&["-bz"][..], "Invalid operation mode z"),
            (&["-oQ/tmp/q"][..], "QueueDirectory cannot be set here"),
            (
                &["-O", "QueueDirectory=/x"][..],
                "QueueDirectory cannot be set here",
            ),
            (&["-oZfoo"][..], "option -oZ is not supported"),
            (
                &["-O", "Timeout.queuereturn=1d"][..],
                "option Timeout.queuereturn is not supported",
            ),
            (&["-N", "never,success"][..], "Invalid -N argument"),
            (&["-R", "all"][..], "Invalid -R value"),
            (&["-B", "BINARYMIME"][..], "Illegal body type"),
            (&["-f", "a", "-f", "b"][..], "More than one \"from\" person"),
            (&["-bt"][..], "use -bv"),
            (&["-C", "/etc/mail/sendmail.cf"][..], "--config"),
            (&["-q5x"][..], "Invalid queue interval"),
            (&["-qR"][..], "needs a substring"),
        ] {
            let e = p(words).unwrap_err();
            assert!(e.0.contains(msg), "{words:?}: {e}");
        }
    }
}
