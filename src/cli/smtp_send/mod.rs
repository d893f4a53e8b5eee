//! `smtp-send`: a swaks-style test message sender. Composes a message (or takes one as is),
//! sends it to a named server or to the recipient domain's MX, and exits with the number of
//! the stage that failed.

use crate::tools::smtp_send::{message, session};

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};

use super::client_args::TlsArgs;
use super::{Fail, GlobalOpts, stdout_error};
use crate::address::Domain;
use crate::dns::{Dns, Mx, Resolve};
use crate::smtp::client::AuthMech;
use crate::sysexits::*;
use message::{Attachment, Compose};
use session::{Credentials, Plan, Report, Stage, Target, TlsMode};

const EXIT_TABLE: &str = "Exit status names the stage that failed:
  0   sent (at least one recipient accepted; refused ones are reported)
  2   connect: resolving the server or its MX, or the TCP connection
  21  greeting: the server's banner was not 2xx
  22  EHLO: EHLO and HELO refused, or --pipeline without PIPELINING
  29  TLS: STARTTLS not offered or refused, or the TLS handshake failed
  28  AUTH: not offered, refused, or refused in plain text to a remote host
  23  MAIL: MAIL FROM refused
  24  RCPT: no recipient accepted
  25  DATA: the DATA command refused
  26  message: the message refused after the final dot
  64  usage error;  66  a file to read (--body @FILE, --attach, --data, --password-file,
  --ca-file) is missing;  65  --body is not UTF-8 text;  78  bad configuration
A timeout or a closed connection exits with the code of the stage it happened in.";

/// SASL mechanism for `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum AuthArg {
    Plain,
    Login,
}

#[derive(Debug, Clone, Args)]
#[command(
    about = "Send a test message over SMTP (like swaks)",
    long_about = "Sends one message to HOST[:PORT], or without --server to the MX of the \
recipients' domain (all --to must then share one domain). The message is composed with Date, \
Message-ID, MIME attachments and RFC 2047 encoded UTF-8 headers, or taken as is with --data. \
The password for --auth comes from --password-file (its first line) or the MAILTOOL_PASSWORD \
environment variable, never from the command line.",
    after_help = EXIT_TABLE
)]
pub struct SmtpSendArgs {
    /// Server to send to [default: the MX of the recipients' domain]
    #[arg(long, short = 's', value_name = "HOST[:PORT]")]
    pub server: Option<String>,
    /// Port when --server gives none, and for MX delivery [default: 25, or 465 with --tls]
    #[arg(long, short = 'p', value_name = "PORT")]
    pub port: Option<u16>,
    /// Envelope sender and From: ('' for the null sender, with From: MAILER-DAEMON@HELO)
    #[arg(long, short = 'f', value_name = "ADDR")]
    pub from: String,
    /// Recipient (repeatable)
    #[arg(long, short = 't', value_name = "ADDR", required = true)]
    pub to: Vec<String>,
    /// Subject [default: test DATE]
    #[arg(long, value_name = "TEXT")]
    pub subject: Option<String>,
    /// An extra header 'Name: value' (repeatable; From/To/Subject/Date/Message-ID replace ours)
    #[arg(long = "header", short = 'H', value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// Body text, @FILE to read a file, or - for standard input
    #[arg(long, value_name = "TEXT|@FILE|-", allow_hyphen_values = true)]
    pub body: Option<String>,
    /// Attach a file, its MIME type guessed from the extension (repeatable)
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Send FILE (- for standard input) as the whole message, as is
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["subject", "headers", "body", "attach"]
    )]
    pub data: Option<PathBuf>,
    /// Name to give in EHLO/HELO and in the Message-ID [default: this host's name]
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,
    /// Local address to connect from
    #[arg(long, value_name = "ADDR")]
    pub source: Option<IpAddr>,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Authenticate with this SASL mechanism (needs --user)
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        value_name = "MECH",
        requires = "user"
    )]
    pub auth: Option<AuthArg>,
    /// User name for --auth
    #[arg(long, value_name = "USER", requires = "auth")]
    pub user: Option<String>,
    /// Read the password from the first line of FILE [default: $MAILTOOL_PASSWORD]
    #[arg(long, value_name = "FILE", requires = "auth")]
    pub password_file: Option<PathBuf>,
    /// Allow AUTH without TLS to a server that is not on loopback
    #[arg(long, requires = "auth")]
    pub allow_plaintext_auth: bool,
    /// Send MAIL, RCPT and DATA in one group (the server must offer PIPELINING)
    #[arg(long)]
    pub pipeline: bool,
    /// Timeout for connecting and for each reply (500ms, 30s, 2m)
    #[arg(long, value_name = "TIME", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Print the SMTP conversation on stderr (passwords masked)
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Print one JSON object describing the transaction on stdout
    #[arg(long)]
    pub json: bool,
}

use crate::duration::parse_timeout;

fn usage(message: impl std::fmt::Display) -> Fail {
    Fail::new(EX_USAGE, format!("smtp-send: {message}"))
}

fn no_input(what: &str, path: &Path, e: &std::io::Error) -> Fail {
    Fail::new(
        EX_NOINPUT,
        format!(
            "smtp-send: {what} {}: {}",
            path.display(),
            crate::util::io_message(e)
        ),
    )
}

/// Reads FILE, or standard input for `-`.
fn read_input(what: &str, path: &Path) -> Result<Vec<u8>, Fail> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| no_input(what, path, &e))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| no_input(what, path, &e))
}

/// An address as given (`a@b` or `<a@b>`), checked with the server's own parser.
struct Addr {
    text: String,
    domain: Option<Domain>,
}

fn check_address(given: &str, sender: bool) -> Result<Addr, Fail> {
    let inner = given
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(given);
    if sender && inner.is_empty() {
        return Ok(Addr {
            text: String::new(),
            domain: None,
        });
    }
    let what = if sender { "--from" } else { "--to" };
    // SMTPUTF8 lets the parser accept UTF-8; whether the server takes it is checked later.
    let arg = format!("<{inner}> SMTPUTF8");
    let parsed = if sender {
        crate::address::parse_mail_from(&arg, true)
    } else {
        crate::address::parse_rcpt_to(&format!("<{inner}>"), true)
    };
    let (path, _) = parsed.map_err(|e| usage(format!("{what} {given:?}: {e}")))?;
    if path.has_route() {
        return Err(usage(format!(
            "{what} {given:?}: source routes are not sent"
        )));
    }
    let domain = path.mailbox.and_then(|m| m.domain);
    Ok(Addr {
        text: inner.to_string(),
        domain,
    })
}

fn password(a: &SmtpSendArgs) -> Result<String, Fail> {
    if let Some(f) = &a.password_file {
        let bytes = std::fs::read(f).map_err(|e| no_input("--password-file", f, &e))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Fail::new(
                EX_DATAERR,
                format!("smtp-send: --password-file {}: not UTF-8", f.display()),
            )
        })?;
        let line = text.lines().next().unwrap_or("");
        return Ok(line.trim_end_matches('\r').to_string());
    }
    std::env::var("MAILTOOL_PASSWORD").map_err(|_| {
        usage(
            "--auth needs a password: --password-file FILE or MAILTOOL_PASSWORD in the environment",
        )
    })
}

fn body_text(spec: Option<&str>) -> Result<String, Fail> {
    let bytes = match spec {
        None => return Ok(message::DEFAULT_BODY.to_string()),
        Some("-") => read_input("--body", Path::new("-"))?,
        Some(s) if s.starts_with('@') => read_input("--body", Path::new(&s[1..]))?,
        Some(s) => return Ok(s.to_string()),
    };
    String::from_utf8(bytes).map_err(|_| {
        Fail::new(
            EX_DATAERR,
            "smtp-send: --body is not UTF-8 text; send it with --attach, or as is with --data",
        )
    })
}

/// The message to send: `--data` as is, or a composed one.
fn build_message(a: &SmtpSendArgs, from: &str, to: &[String], helo: &str) -> Result<Vec<u8>, Fail> {
    if let Some(d) = &a.data {
        return read_input("--data", d);
    }
    let headers = a
        .headers
        .iter()
        .map(|h| message::parse_header(h).map_err(|e| usage(format!("--header {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let body = body_text(a.body.as_deref())?;
    let mut attachments = Vec::new();
    for p in &a.attach {
        let data = std::fs::read(p).map_err(|e| no_input("--attach", p, &e))?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".into());
        attachments.push(Attachment::new(name, data));
    }
    Ok(message::compose(&Compose {
        from: from.to_string(),
        to: to.to_vec(),
        subject: a.subject.clone(),
        headers,
        body,
        attachments,
        id_domain: helo.to_string(),
        date: SystemTime::now(),
    }))
}

pub fn run(global: &GlobalOpts, a: &SmtpSendArgs) -> Result<i32, Fail> {
    let from = check_address(&a.from, true)?;
    let to =
        a.to.iter()
            .map(|t| check_address(t, false))
            .collect::<Result<Vec<_>, _>>()?;
    let helo = a.helo.clone().unwrap_or_else(crate::util::system_hostname);
    if helo.is_empty() || helo.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(usage(format!("--helo {helo:?}: not a host name")));
    }
    let to_text: Vec<String> = to.iter().map(|t| t.text.clone()).collect();
    let message = build_message(a, &from.text, &to_text, &helo)?;
    let tls_config = a.tls.client_config().map_err(|e| {
        let code = match e {
            crate::tls::TlsError::Read { .. } => EX_NOINPUT,
            _ => EX_CONFIG,
        };
        Fail::new(code, format!("smtp-send: TLS: {e}"))
    })?;
    let auth = match a.auth {
        Some(m) => Some(Credentials {
            mech: match m {
                AuthArg::Plain => AuthMech::Plain,
                AuthArg::Login => AuthMech::Login,
            },
            user: a.user.clone().unwrap_or_default(),
            password: password(a)?,
        }),
        None => None,
    };
    let tls = match (a.tls.tls, a.tls.starttls) {
        (true, _) => TlsMode::Implicit,
        (false, Some(when)) => TlsMode::StartTls(when),
        (false, None) => TlsMode::None,
    };
    let default_port = a.port.unwrap_or(if a.tls.tls { 465 } else { 25 });
    let plan = Plan {
        helo,
        source: a.source,
        timeout: a.timeout,
        tls,
        tls_config,
        auth,
        allow_plaintext_auth: a.allow_plaintext_auth,
        pipeline: a.pipeline,
        from: from.text,
        to: to_text,
        message,
        verbose: a.verbose,
    };
    let route = match &a.server {
        Some(s) => Route::Server(s.clone()),
        None => Route::Mx(one_domain(&to)?),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::new(EX_OSERR, format!("smtp-send: tokio runtime: {e}")))?;
    let report = runtime.block_on(async {
        let targets = match &route {
            Route::Server(s) => server_targets(s, default_port).await,
            Route::Mx(d) => mx_targets(global, d, default_port).await?,
        };
        Ok::<Report, Fail>(match targets {
            Ok(t) => session::run(&plan, &t).await,
            Err(message) => Report {
                failed: Some(session::Failure {
                    stage: Stage::Connect,
                    message,
                }),
                ..Report::default()
            },
        })
    })?;
    finish(a, &report)
}

/// Where the message goes: a named server, or the MX of the recipients' domain.
enum Route {
    Server(String),
    Mx(Domain),
}

/// The single domain of the recipients, for MX delivery.
fn one_domain(to: &[Addr]) -> Result<Domain, Fail> {
    let mut found: Option<&Domain> = None;
    for t in to {
        let Some(d) = &t.domain else {
            return Err(usage(format!(
                "--to {}: no domain to look up an MX for; name the server with --server",
                t.text
            )));
        };
        match found {
            Some(f) if !same_domain(f, d) => {
                return Err(usage(
                    "recipients in different domains: send to each domain separately, or name \
                     the server with --server",
                ));
            }
            _ => found = Some(d),
        }
    }
    found.cloned().ok_or_else(|| usage("no recipient"))
}

fn same_domain(a: &Domain, b: &Domain) -> bool {
    a.to_string().eq_ignore_ascii_case(&b.to_string())
}

async fn server_targets(server: &str, default_port: u16) -> Result<Vec<Target>, String> {
    let (host, port) = crate::smtp::client::split_host_port(server, default_port)?;
    let addrs = crate::smtp::client::resolve(&host, port).await?;
    Ok(vec![Target { host, addrs }])
}

/// The MX hosts of `domain` in preference order, each with its addresses; the domain itself
/// when it has no MX (RFC 5321 §5.1). Errors are connect-stage failures.
async fn mx_targets(
    global: &GlobalOpts,
    domain: &Domain,
    port: u16,
) -> Result<Result<Vec<Target>, String>, Fail> {
    let with_port = |ips: Vec<IpAddr>| {
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect()
    };
    let name = match domain {
        Domain::Name(n) => n.clone(),
        Domain::V4(ip) => {
            return Ok(Ok(vec![Target {
                host: ip.to_string(),
                addrs: with_port(vec![IpAddr::V4(*ip)]),
            }]));
        }
        Domain::V6(ip) => {
            return Ok(Ok(vec![Target {
                host: ip.to_string(),
                addrs: with_port(vec![IpAddr::V6(*ip)]),
            }]));
        }
        Domain::General { .. } => {
            return Ok(Err(format!(
                "{domain}: cannot deliver to an address literal of this kind"
            )));
        }
    };
    let cfg = crate::config::Config::load(&global.locate())?;
    let dns = Dns::new(&cfg.settings.dns.servers, cfg.settings.dns.timeout.0)
        .map_err(|e| Fail::new(EX_CONFIG, format!("smtp-send: {e}")))?;
    let hosts = match dns.mx(&name).await {
        Resolve::Found(Mx::Hosts(h)) => h.into_iter().map(|(_, h)| h).collect(),
        Resolve::Found(Mx::Null) => {
            return Ok(Err(format!("{name}: the domain accepts no mail (null MX)")));
        }
        Resolve::NotFound => vec![name.clone()],
        Resolve::TempFail(e) => return Ok(Err(format!("{name}: MX lookup failed: {e}"))),
    };
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    for host in hosts {
        match dns.addresses(&host).await {
            Resolve::Found(ips) => targets.push(Target {
                host,
                addrs: with_port(ips),
            }),
            Resolve::NotFound => errors.push(format!("{host}: no address")),
            Resolve::TempFail(e) => errors.push(format!("{host}: {e}")),
        }
    }
    if targets.is_empty() {
        return Ok(Err(format!(
            "{name}: no reachable MX ({})",
            errors.join("; ")
        )));
    }
    Ok(Ok(targets))
}

/// Prints the outcome (a summary line or JSON) and turns it into the exit status.
fn finish(a: &SmtpSendArgs, report: &Report) -> Result<i32, Fail> {
    let code = report
        .failed
        .as_ref()
        .map_or(EX_OK, |f| f.stage.exit_code());
    if a.json {
        let mut v = serde_json::to_value(report).map_err(|e| Fail::from(anyhow::Error::from(e)))?;
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "ok".into(),
                serde_json::Value::Bool(report.failed.is_none()),
            );
            o.insert("exit_code".into(), code.into());
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "{v}").map_err(stdout_error)?;
    }
    // With a single refusal that failed the run, the failure line below says it all.
    let one_failed = report.failed.is_some() && report.refused.len() == 1;
    for r in report.refused.iter().filter(|_| !one_failed) {
        eprintln!(
            "smtp-send: RCPT: <{}>: {}",
            r.recipient,
            session::reply_text(&crate::smtp::proto::Reply {
                code: r.code,
                lines: r.reply.clone(),
            })
        );
    }
    match &report.failed {
        Some(f) => {
            eprintln!("smtp-send: {}: {}", f.stage.name(), f.message);
        }
        None if !a.json => {
            let last = report.stages.last().map(|s| {
                session::reply_text(&crate::smtp::proto::Reply {
                    code: s.code,
                    lines: s.reply.clone(),
                })
            });
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "sent to {} of {} recipient(s) via {}: {}",
                report.accepted.len(),
                a.to.len(),
                report
                    .address
                    .map_or_else(|| "?".to_string(), |s| s.to_string()),
                last.unwrap_or_default()
            )
            .map_err(stdout_error)?;
        }
        None => {}
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        a: SmtpSendArgs,
    }

    fn parse(args: &[&str]) -> Result<SmtpSendArgs, clap::Error> {
        let mut v = vec!["smtp-send"];
        v.extend_from_slice(args);
        T::try_parse_from(v).map(|t| t.a)
    }

    #[test]
    fn argument_rules() {
        let a = parse(&["--from", "a@b.test", "--to", "c@d.test", "--to", "e@d.test"]).unwrap();
        assert_eq!(a.to.len(), 2);
        assert_eq!(a.timeout, Duration::from_secs(30));
        assert!(parse(&["--from", "a@b.test"]).is_err(), "--to is required");
        assert!(parse(&["--to", "a@b.test"]).is_err(), "--from is required");
        // --data is the whole message: nothing to compose alongside it.
        assert!(parse(&["-f", "a@b", "-t", "c@d", "--data", "m", "--subject", "x"]).is_err());
        assert!(parse(&["-f", "a@b", "-t", "c@d", "--data", "m", "--attach", "x"]).is_err());
        // AUTH needs a user and the reverse.
        assert!(parse(&["-f", "a@b", "-t", "c@d", "--auth", "PLAIN"]).is_err());
        assert!(parse(&["-f", "a@b", "-t", "c@d", "--user", "u"]).is_err());
        let a = parse(&["-f", "a@b", "-t", "c@d", "--auth", "login", "--user", "u"]).unwrap();
        assert_eq!(a.auth, Some(AuthArg::Login));
        assert!(
            parse(&[
                "-f", "a@b", "-t", "c@d", "--auth", "CRAM-MD5", "--user", "u"
            ])
            .is_err()
        );
        assert!(parse(&["-f", "a@b", "-t", "c@d", "--tls", "--starttls"]).is_err());
        assert!(parse(&["-f", "a@b", "-t", "c@d", "--timeout", "0"]).is_err());
        assert!(parse(&["-f", "a@b", "-t", "c@d", "--timeout", "soon"]).is_err());
        let a = parse(&[
            "-f",
            "a@b",
            "-t",
            "c@d",
            "--timeout",
            "500ms",
            "--body",
            "-",
        ])
        .unwrap();
        assert_eq!(a.timeout, Duration::from_millis(500));
        assert_eq!(a.body.as_deref(), Some("-"));
        assert!(parse(&["-f", "a@b", "-t", "c@d", "--source", "not-an-ip"]).is_err());
    }

    #[test]
    fn addresses_are_checked_with_the_server_parser() {
        assert_eq!(check_address("<a@b.test>", true).unwrap().text, "a@b.test");
        assert_eq!(check_address("", true).unwrap().text, "");
        assert!(check_address("", false).is_err(), "null recipient");
        assert!(check_address("a b@c", false).is_err());
        assert!(check_address("a@b\r\nRCPT TO:<x@y>", false).is_err());
        assert!(check_address("<@r.test:a@b.test>", false).is_err());
        let d = check_address("ü@bücher.test", false).unwrap();
        assert_eq!(d.domain.unwrap().to_string(), "bücher.test");
        let f = check_address("x@Example.TEST", false).unwrap();
        let g = check_address("y@example.test", false).unwrap();
        assert!(one_domain(&[f, g]).is_ok());
        let f = check_address("x@one.test", false).unwrap();
        let g = check_address("y@two.test", false).unwrap();
        assert_eq!(one_domain(&[f, g]).unwrap_err().code, EX_USAGE);
        let u = check_address("postmaster", false).unwrap();
        assert_eq!(one_domain(&[u]).unwrap_err().code, EX_USAGE);
    }

    #[test]
    fn body_sources() {
        assert_eq!(body_text(None).unwrap(), message::DEFAULT_BODY);
        assert_eq!(body_text(Some("hi")).unwrap(), "hi");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("b.txt");
        std::fs::write(&f, "from a file\n").unwrap();
        assert_eq!(
            body_text(Some(&format!("@{}", f.display()))).unwrap(),
            "from a file\n"
        );
        std::fs::write(&f, b"\xff\xfe").unwrap();
        assert_eq!(
            body_text(Some(&format!("@{}", f.display())))
                .unwrap_err()
                .code,
            EX_DATAERR
        );
        let missing = body_text(Some(&format!("@{}/none", dir.path().display()))).unwrap_err();
        assert_eq!(missing.code, EX_NOINPUT);
        assert!(missing.message.unwrap().contains("none"));
    }
}
