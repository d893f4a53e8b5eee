//! `mailtool relaycheck`: the arguments, the host list, running hosts concurrently and
//! printing their results in the order given. The probes and verdicts live in
//! [`crate::tools::relaycheck`].

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::client_args::{StartTls, TlsArgs, stderr_transcript};
use super::{Fail, stdout_error};
use crate::smtp::client::split_host_port;
use crate::sysexits::{EX_NOINPUT, EX_USAGE};
use crate::tools::relaycheck::battery::{DEFAULT_DOMAIN, DEFAULT_FROM, DEFAULT_TO};
use crate::tools::relaycheck::report::{self, EXIT_NO_RELAY, EXIT_OPEN_RELAY, EXIT_UNTESTED};
use crate::tools::relaycheck::runner::{self, ClassicVerdict, Options, Target, TlsMode};

/// relaychecker.pl's fixed values.
const CLASSIC_HELO: &str = "mail.example.com";
const CLASSIC_FROM: &str = "checker@example.com";
const CLASSIC_TO: &str = "somewhere@example.com";

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 no relay (or authentication required), 1 an open \
relay was found, 2 a server could not be tested (connect, greeting, EHLO or TLS failed), \
64 usage error."
)]
pub struct RelaycheckArgs {
    /// Servers to test (port 25, or 465 with --tls)
    #[arg(value_name = "HOST[:PORT]")]
    pub hosts: Vec<String>,
    /// Read more servers from FILE: one HOST[:PORT] a line, `#` starts a comment
    #[arg(long, value_name = "FILE")]
    pub hosts_file: Option<PathBuf>,
    /// relaychecker.pl's single probe (helo, mail from, rcpt to) and its `HOST relay
    /// Allow|Deny` line
    #[arg(long, conflicts_with_all = ["domain", "ip", "data", "json", "tls", "starttls"])]
    pub classic: bool,
    /// The outside domain in the probes; it must not be one the server serves
    /// [default: nmap.scanme.org, as nmap]
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// Sender local part [default: antispam]; with --classic the whole address
    /// [default: checker@example.com]
    #[arg(long, value_name = "LOCAL")]
    pub from: Option<String>,
    /// Recipient local part [default: relaytest]; with --classic the whole address
    /// [default: somewhere@example.com]
    #[arg(long, value_name = "LOCAL")]
    pub to: Option<String>,
    /// The EHLO name [default: the --domain, as nmap]; with --classic the HELO name
    /// [default: mail.example.com]
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,
    /// The address in the IP-literal probes [default: the server's]
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<IpAddr>,
    /// Connect from this local address (multi-homed hosts; an untrusted loopback address)
    #[arg(long, value_name = "ADDR")]
    pub source: Option<IpAddr>,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// How long to wait for each reply (e.g. 30s, 500ms)
    #[arg(long, value_name = "TIME", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Test up to N servers at once
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Count a relay only when DATA is accepted (as Metasploit does); then send a short
    /// message that says it is a relay test. Needs --domain (a domain whose mail you read).
    #[arg(long)]
    pub data: bool,
    /// Print the results as JSON (an array, one object per server)
    #[arg(long)]
    pub json: bool,
    /// Print the SMTP transcript on stderr
    #[arg(short, long)]
    pub verbose: bool,
}

use crate::duration::parse_timeout;

fn usage(message: impl std::fmt::Display) -> Fail {
    Fail::new(EX_USAGE, format!("mailtool relaycheck: {message}"))
}

/// The servers of a hosts file: one `HOST[:PORT]` a line; blank lines and `#` comments are
/// skipped. Errors name the file and the line.
pub fn parse_hosts_file(text: &str, file: &str, port: u16) -> Result<Vec<Target>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let n = i + 1;
        if line.split_whitespace().count() > 1 {
            return Err(format!(
                "{file}:{n}: expected one HOST[:PORT], got {line:?}"
            ));
        }
        out.push(target(line, port).map_err(|e| format!("{file}:{n}: {e}"))?);
    }
    Ok(out)
}

fn target(given: &str, port: u16) -> Result<Target, String> {
    let (host, port) = split_host_port(given, port)?;
    Ok(Target {
        given: given.to_string(),
        host,
        port,
    })
}

/// A local part for the battery: nmap's `from`/`to` are local parts, the domain is separate.
fn local_part(flag: &str, value: Option<&str>, default: &str) -> Result<String, Fail> {
    let v = value.unwrap_or(default);
    if v.is_empty() || v.contains(['@', '<', '>']) || v.contains(char::is_whitespace) {
        return Err(usage(format!(
            "{flag} {v:?}: give a local part (the domain is --domain)"
        )));
    }
    Ok(v.to_string())
}

fn targets(a: &RelaycheckArgs, port: u16) -> Result<Vec<Target>, Fail> {
    let mut out = Vec::new();
    for h in &a.hosts {
        out.push(target(h, port).map_err(usage)?);
    }
    if let Some(f) = &a.hosts_file {
        let text = std::fs::read_to_string(f).map_err(|e| {
            Fail::new(
                EX_NOINPUT,
                format!(
                    "mailtool relaycheck: {}: {}",
                    f.display(),
                    crate::util::io_message(&e)
                ),
            )
        })?;
        out.extend(parse_hosts_file(&text, &f.display().to_string(), port).map_err(usage)?);
    }
    if out.is_empty() {
        return Err(usage(
            "no server to test (give HOST[:PORT] or --hosts-file)",
        ));
    }
    Ok(out)
}

fn options(a: &RelaycheckArgs) -> Result<Options, Fail> {
    let domain = a.domain.clone().unwrap_or_else(|| DEFAULT_DOMAIN.into());
    if domain.is_empty()
        || domain.contains(['@', '<', '>', '!', '%', '[', ']'])
        || domain.contains(char::is_whitespace)
    {
        return Err(usage(format!("--domain {domain:?}: not a domain name")));
    }
    if a.data && a.domain.is_none() {
        return Err(usage(
            "--data sends real mail through every relay it finds: name a domain whose mail \
             you read with --domain",
        ));
    }
    let tls = match (a.tls.client_config(), a.tls.tls, a.tls.starttls) {
        (Err(e), _, _) => return Err(usage(e)),
        (Ok(Some(config)), true, _) => TlsMode::Implicit { config },
        (Ok(Some(config)), false, Some(when)) => TlsMode::StartTls {
            required: when == StartTls::Always,
            config,
        },
        _ => TlsMode::Plain,
    };
    Ok(Options {
        helo: a.helo.clone().unwrap_or_else(|| domain.clone()),
        from: local_part("--from", a.from.as_deref(), DEFAULT_FROM)?,
        to: local_part("--to", a.to.as_deref(), DEFAULT_TO)?,
        domain,
        ip: a.ip,
        source: a.source,
        tls,
        timeout: a.timeout,
        data: a.data,
        transcript: None,
    })
}

/// One host's work, as the runtime sees it.
enum Done {
    Battery(Box<runner::HostReport>),
    Classic(Vec<String>, ClassicVerdict),
}

pub fn run(a: &RelaycheckArgs) -> Result<i32, Fail> {
    let port = if a.tls.tls { 465 } else { 25 };
    let targets = targets(a, port)?;
    let opts = if a.classic {
        // --classic ignores the battery's defaults; only the transport options matter.
        Options {
            domain: String::new(),
            from: String::new(),
            to: String::new(),
            helo: String::new(),
            ip: None,
            source: a.source,
            tls: TlsMode::Plain,
            timeout: a.timeout,
            data: false,
            transcript: None,
        }
    } else {
        options(a)?
    };
    let classic = a.classic.then(|| {
        (
            a.helo.clone().unwrap_or_else(|| CLASSIC_HELO.into()),
            a.from.clone().unwrap_or_else(|| CLASSIC_FROM.into()),
            a.to.clone().unwrap_or_else(|| CLASSIC_TO.into()),
        )
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the runtime: {e}"))?;
    rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(a.concurrency as usize));
        let mut jobs = Vec::new();
        for t in targets {
            let mut opts = opts.clone();
            if a.verbose {
                let prefix = format!("[{}] ", t.given);
                opts.transcript = Some(Arc::new(move || stderr_transcript(prefix.clone())));
            }
            let sem = sem.clone();
            let classic = classic.clone();
            jobs.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                match classic {
                    Some((helo, from, to)) => {
                        let (lines, v) = runner::classic(&t, &helo, &from, &to, &opts).await;
                        Done::Classic(lines, v)
                    }
                    None => Done::Battery(Box::new(runner::check_host(&t, &opts).await)),
                }
            }));
        }
        print_in_order(jobs, a.json).await
    })
}

/// Prints each host's result as soon as it and every host before it are done.
async fn print_in_order(jobs: Vec<tokio::task::JoinHandle<Done>>, json: bool) -> Result<i32, Fail> {
    let mut stdout = std::io::stdout().lock();
    let mut reports = Vec::new();
    let mut classic_codes = Vec::new();
    for (i, job) in jobs.into_iter().enumerate() {
        let done = job
            .await
            .map_err(|e| anyhow::anyhow!("a relaycheck task failed: {e}"))?;
        match done {
            Done::Classic(lines, v) => {
                for l in lines {
                    writeln!(stdout, "{l}").map_err(stdout_error)?;
                }
                classic_codes.push(match v {
                    ClassicVerdict::Allow => EXIT_OPEN_RELAY,
                    ClassicVerdict::Deny => EXIT_NO_RELAY,
                    ClassicVerdict::Untested => EXIT_UNTESTED,
                });
            }
            Done::Battery(r) => {
                for w in &r.warnings {
                    eprintln!("mailtool relaycheck: warning: {}: {w}", r.host);
                }
                if !json {
                    if i > 0 {
                        writeln!(stdout).map_err(stdout_error)?;
                    }
                    write!(stdout, "{}", report::render_host(&r)).map_err(stdout_error)?;
                    stdout.flush().map_err(stdout_error)?;
                }
                reports.push(*r);
            }
        }
    }
    if json {
        serde_json::to_writer_pretty(&mut stdout, &reports).map_err(|e| stdout_error(e.into()))?;
        writeln!(stdout).map_err(stdout_error)?;
    }
    if !classic_codes.is_empty() {
        return Ok(if classic_codes.contains(&EXIT_OPEN_RELAY) {
            EXIT_OPEN_RELAY
        } else if classic_codes.contains(&EXIT_UNTESTED) {
            EXIT_UNTESTED
        } else {
            EXIT_NO_RELAY
        });
    }
    Ok(report::exit_code(&reports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_files_with_comments_and_line_numbers() {
        let text = "# servers\nmx1.test\n\n  127.0.0.1:2525  # ours\n[::1]:26\n";
        let got = parse_hosts_file(text, "hosts", 25).unwrap();
        let hp: Vec<(&str, u16)> = got.iter().map(|t| (t.host.as_str(), t.port)).collect();
        assert_eq!(hp, [("mx1.test", 25), ("127.0.0.1", 2525), ("::1", 26)]);
        assert_eq!(got[1].given, "127.0.0.1:2525");
        assert_eq!(
            parse_hosts_file("mx\nmx:x\n", "h.txt", 25).unwrap_err(),
            "h.txt:2: mx:x: bad port \"x\""
        );
        assert_eq!(
            parse_hosts_file("a b\n", "h", 25).unwrap_err(),
            "h:1: expected one HOST[:PORT], got \"a b\""
        );
    }

    #[test]
    fn local_parts_only() {
        assert_eq!(local_part("--from", None, "antispam").unwrap(), "antispam");
        assert!(local_part("--from", Some("a@b"), "x").is_err());
        assert!(local_part("--to", Some(""), "x").is_err());
    }
}
