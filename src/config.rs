//! `mailtool.toml`: the configuration contract documented in mailtool.toml(5).
//!
//! Every key is optional and unknown keys are errors with line and column. Every absolute path,
//! from the file or from the defaults, is relocated under `--root`, which is how the tests run
//! the whole stack in a temp directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::duration::Span;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: line {line}, column {column}: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailboxFormat {
    Mbox,
    Maildir,
}

/// sendmail's DeliveryMode: when an accepted message is first tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    /// At once, after the 250 (sendmail's `b`).
    Background,
    /// Only at queue runs (`q`, `-odq`): every `interval`, at start, or `mailtool queue run`.
    Queue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PtrCheck {
    Off,
    Resolvable,
    Forged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaintextAuth {
    Never,
    Loopback,
    Always,
}

impl PlaintextAuth {
    /// Whether a password may be sent without TLS by a client at `peer`.
    pub fn allows(self, peer: std::net::IpAddr) -> bool {
        match self {
            PlaintextAuth::Always => true,
            PlaintextAuth::Never => false,
            PlaintextAuth::Loopback => peer.to_canonical().is_loopback(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    Stderr,
    Syslog,
    Journald,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    pub mail_dir: String,
    pub spool: String,
    pub client_spool: String,
    pub mailboxes: String,
    pub mailbox_format: MailboxFormat,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            mail_dir: "/etc/mail".into(),
            spool: "/var/spool/mqueue".into(),
            client_spool: "/var/spool/clientmqueue".into(),
            mailboxes: "/var/mail".into(),
            mailbox_format: MailboxFormat::Mbox,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Maps {
    pub access: String,
    pub access_temp_fail: bool,
    pub virtusertable: String,
    pub aliases: String,
    pub localip: String,
    pub popip: String,
    pub users: String,
    pub local_host_names: String,
    pub relay_domains: String,
}

impl Default for Maps {
    fn default() -> Self {
        Maps {
            access: "access".into(),
            access_temp_fail: true,
            virtusertable: "virtusertable".into(),
            aliases: "aliases".into(),
            localip: "localip".into(),
            popip: "popip".into(),
            users: "users".into(),
            local_host_names: "local-host-names".into(),
            relay_domains: "relay-domains".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dnsbl {
    pub zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `[smtp] max_message_size` when the file does not say: 25 MiB, what the large providers take.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 25 * 1024 * 1024;

/// `[queue] min_free_space` when the file does not say.
pub const DEFAULT_MIN_FREE_SPACE: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    pub listen: Vec<SocketAddr>,
    pub submission: Vec<SocketAddr>,
    pub smtps: Vec<SocketAddr>,
    pub greet_pause: Span,
    pub max_message_size: u64,
    pub max_recipients: u32,
    pub max_messages_per_connection: u32,
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
    pub max_hops: u32,
    pub always_add_domain: bool,
    pub ptr_check: PtrCheck,
    pub dnsbl: Vec<Dnsbl>,
    pub allow_plaintext_auth: PlaintextAuth,
    /// 127.0.0.1 and ::1 may relay (sendmail's Relay_ok does this).
    pub relay_from_loopback: bool,
    /// System accounts (getpwnam) count as local users besides the users map.
    pub system_users: bool,
    /// Bad commands allowed before `421 Too many bad commands` (sendmail's MAXBADCOMMANDS).
    pub max_errors: u32,
    /// RFC 5321 §4.5.3.2: the deadline for one whole command line, counted from when the
    /// server starts waiting for it (a client trickling bytes does not restart it).
    pub command_timeout: Span,
    /// The longest pause inside DATA.
    pub data_timeout: Span,
    /// The deadline for the whole DATA phase, from the 354.
    pub data_deadline: Span,
    /// Bytes per second DATA must average once `data_rate_grace` has passed; 0 = no minimum.
    pub data_min_rate: u64,
    pub data_rate_grace: Span,
    /// Percent of `max_connections` past which the service is under stress: the command and
    /// DATA timeouts drop to `stress_timeout`, and a waiting session (of the busiest address) is closed to make
    /// room for a new client (Postfix's `${stress?…}`). 0 = never.
    pub stress_threshold: u32,
    pub stress_timeout: Span,
    /// Error replies (refused recipients, bad commands) per second to one client network over
    /// all its sessions; 0 = no limit. Clients that authenticated or may relay are exempt.
    pub error_rate: u32,
    /// Errors in a session before each further error reply is delayed by `error_sleep`, once
    /// more for every five errors past the limit (at most ten times); `max_errors` then ends
    /// the session.
    pub soft_error_limit: u32,
    pub error_sleep: Span,
    /// How long SIGTERM waits for sessions in progress before exiting.
    pub shutdown_grace: Span,
    /// Answer VRFY (and EXPN) instead of 252 / 502.
    pub vrfy: bool,
    pub expn: bool,
}

impl Smtp {
    fn defaults(privileged: bool) -> Self {
        let (listen, submission) = if privileged {
            ("0.0.0.0:25", "0.0.0.0:587")
        } else {
            ("127.0.0.1:2525", "127.0.0.1:2587")
        };
        Smtp {
            listen: vec![sock(listen)],
            submission: vec![sock(submission)],
            smtps: vec![],
            greet_pause: Span::default(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_recipients: 100,
            max_messages_per_connection: 0,
            max_connections: 1000,
            max_connections_per_ip: 20,
            max_hops: 25,
            always_add_domain: true,
            ptr_check: PtrCheck::Off,
            dnsbl: vec![],
            allow_plaintext_auth: PlaintextAuth::Loopback,
            relay_from_loopback: true,
            system_users: false,
            max_errors: 25,
            command_timeout: Span(std::time::Duration::from_secs(300)),
            data_timeout: Span(std::time::Duration::from_secs(180)),
            data_deadline: Span(std::time::Duration::from_secs(3600)),
            data_min_rate: 1024,
            data_rate_grace: Span(std::time::Duration::from_secs(30)),
            stress_threshold: 80,
            stress_timeout: Span(std::time::Duration::from_secs(10)),
            error_rate: 5,
            soft_error_limit: 10,
            error_sleep: Span(std::time::Duration::from_secs(1)),
            shutdown_grace: Span(std::time::Duration::from_secs(30)),
            vrfy: false,
            expn: false,
        }
    }
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp::defaults(true)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pop3 {
    pub listen: Vec<SocketAddr>,
    pub pop3s: Vec<SocketAddr>,
    pub pop_before_smtp_ttl: Span,
    pub allow_plaintext_auth: PlaintextAuth,
    /// How long a failed login waits before its `-ERR` (slows down password guessing).
    pub auth_failure_delay: Span,
    /// Failed logins per client address, and per user, within 15 minutes before further
    /// logins are refused with `-ERR [LOGIN-DELAY]` until the window passes.
    pub max_auth_failures: u32,
    /// RFC 1939 §3 autologout timer: a session whose next command has not fully arrived this
    /// long after the last reply is closed (at least 10m is what the RFC asks).
    pub idle_timeout: Span,
    /// As in `[smtp]`: past this percent of `max_connections` the idle timeout drops to
    /// `stress_timeout` and a waiting session makes room for a new one. 0 = never.
    pub stress_threshold: u32,
    pub stress_timeout: Span,
    /// Unknown or refused commands before the connection is closed (`-ERR` then close).
    pub max_bad_commands: u32,
    /// Open POP3/POP3S sessions at once, and from one address: counted apart from SMTP's.
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
}

impl Pop3 {
    fn defaults(privileged: bool) -> Self {
        Pop3 {
            listen: vec![sock(if privileged {
                "0.0.0.0:110"
            } else {
                "127.0.0.1:1100"
            })],
            pop3s: vec![],
            pop_before_smtp_ttl: Span(std::time::Duration::from_secs(15 * 60)),
            allow_plaintext_auth: PlaintextAuth::Loopback,
            auth_failure_delay: Span(std::time::Duration::from_secs(1)),
            max_auth_failures: 10,
            idle_timeout: Span(std::time::Duration::from_secs(600)),
            stress_threshold: 80,
            stress_timeout: Span(std::time::Duration::from_secs(30)),
            max_bad_commands: 20,
            max_connections: 1000,
            max_connections_per_ip: 20,
        }
    }
}

impl Default for Pop3 {
    fn default() -> Self {
        Pop3::defaults(true)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dns {
    pub servers: Vec<SocketAddr>,
    pub timeout: Span,
}

impl Default for Dns {
    fn default() -> Self {
        Dns {
            servers: vec![],
            timeout: Span(std::time::Duration::from_secs(5)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Queue {
    /// Full queue runs; "0s": none (only `mailtool queue run`).
    pub interval: Span,
    pub delivery_mode: DeliveryMode,
    pub warn_after: Span,
    pub return_after: Span,
    pub smart_host: String,
    pub remote_port: u16,
    /// First retry after a temporary failure; each later one waits twice as long.
    pub min_backoff: Span,
    /// The longest wait between two attempts (at most `interval` matters in practice).
    pub max_backoff: Span,
    /// Messages delivered at once by the queue runner.
    pub max_parallel: usize,
    /// Connections to one destination (domain or smart host) at once.
    pub max_per_destination: usize,
    /// The seed's LOCAL_MAILER_MAX: larger messages bounce from local delivery; 0 = no limit.
    pub local_max_size: u64,
    /// A mailbox that would grow past this is "full" (retried, then bounced); 0 = no quota.
    pub mailbox_quota: u64,
    /// Bytes of the spool's file system kept free: MAIL gets 452 4.3.1 below it, or when its
    /// SIZE= does not fit above it. 0 = no check.
    pub min_free_space: u64,
    /// How long a `|program` alias target may run.
    pub program_timeout: Span,
    /// Send postmaster a copy of every bounce (sendmail's PostmasterCopy).
    pub postmaster_copy: bool,
}

impl Default for Queue {
    fn default() -> Self {
        let h = |n: u64| Span(std::time::Duration::from_secs(n * 3600));
        let m = |n: u64| Span(std::time::Duration::from_secs(n * 60));
        Queue {
            interval: h(1),
            delivery_mode: DeliveryMode::Background,
            warn_after: h(4),
            return_after: h(5 * 24),
            smart_host: String::new(),
            remote_port: 25,
            min_backoff: m(5),
            max_backoff: h(1),
            max_parallel: 20,
            max_per_destination: 10,
            local_max_size: 0,
            mailbox_quota: 0,
            min_free_space: DEFAULT_MIN_FREE_SPACE,
            program_timeout: m(10),
            postmaster_copy: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub target: LogTarget,
    pub level: String,
    pub format: LogFormat,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            target: LogTarget::Stderr,
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// `[log] format`: sendmail-style lines, or one JSON object a line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `[metrics]`: where `GET /metrics` is served.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    pub listen: Vec<SocketAddr>,
}

/// `[limits]`: rates per client address (IPv6 per /64) per minute, and per authenticated
/// user per day; 0 is no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub connection_rate: u32,
    pub message_rate: u32,
    pub recipient_rate: u32,
    pub user_daily: u32,
    pub exempt: LimitExempt,
    /// "" keeps the counters in this process; a `[backends]` redis name shares them.
    pub backend: String,
}

/// Who `[limits]` does not count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitExempt {
    /// Loopback, localip and relay-domains clients.
    #[default]
    Local,
    None,
}

/// The kind of store a `[backends.NAME]` table names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Postgresql,
    Redis,
}

/// `[backends.NAME]`: a store that maps named `NAME:TABLE` live in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    #[serde(rename = "type")]
    pub kind: BackendKind,
    /// `postgresql://user@host:port/db[?sslmode=require]` or `redis://host:port/db`; never
    /// with a password in it.
    pub url: String,
    /// The password is the first line of this file (relocated under the root), if set.
    #[serde(default)]
    pub password_file: String,
    /// Per query; a timeout is a lookup error, never "not found".
    #[serde(default = "Backend::default_timeout")]
    pub timeout: Span,
    /// Connections per process.
    #[serde(default = "Backend::default_pool")]
    pub pool: usize,
}

impl Backend {
    fn default_timeout() -> Span {
        Span(std::time::Duration::from_secs(2))
    }

    fn default_pool() -> usize {
        4
    }
}

/// Where a map named in `[maps]` (or on makemap's command line) lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapPlace {
    /// The SQLite file `PATH.db` built from the source `PATH` in mail_dir.
    File(PathBuf),
    /// The table `table` in `[backends.backend]`.
    Backend { backend: String, table: String },
}

/// Splits `BACKEND:TABLE`; `None` for a file name. A name with a `/` before any `:` is a path.
pub fn split_backend_name(name: &str) -> Option<(&str, &str)> {
    let (b, t) = name.split_once(':')?;
    (!b.contains('/')).then_some((b, t))
}

/// A table name PostgreSQL and Redis both take without quoting surprises.
fn valid_table(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 63
        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !t.as_bytes()[0].is_ascii_digit()
}

/// The whole file. Field names are the contract of mailtool.toml(5), KEYS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub user: String,
    pub group: String,
    pub paths: Paths,
    pub maps: Maps,
    pub smtp: Smtp,
    pub pop3: Pop3,
    pub tls: Tls,
    pub dns: Dns,
    pub queue: Queue,
    pub log: Log,
    pub metrics: Metrics,
    pub limits: Limits,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub backends: BTreeMap<String, Backend>,
    pub dkim: Dkim,
    pub verify: Verify,
    /// `[[milter]]`: sendmail's INPUT_MAIL_FILTER list, called in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub milter: Vec<Milter>,
}

/// One `[[milter]]` entry (sendmail's `INPUT_MAIL_FILTER(name, S=…, F=…, T=…)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Milter {
    pub name: String,
    /// `inet:PORT@HOST`, `inet6:PORT@HOST` or `unix:/path` (`local:` is the same as `unix:`).
    pub socket: String,
    #[serde(default)]
    pub on_failure: MilterFailure,
    #[serde(default)]
    pub timeouts: MilterTimeouts,
}

/// What a message gets when its milter cannot be reached or does not answer in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MilterFailure {
    /// Carry on as if the milter were not configured (sendmail's default).
    #[default]
    Accept,
    /// `F=T`: 451 4.3.2, so the client tries again later.
    Tempfail,
    /// `F=R`: 554 5.7.1.
    Reject,
}

/// sendmail's `T=C:…;S:…;R:…;E:…`, with its defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MilterTimeouts {
    /// C: to connect.
    pub connect: Span,
    /// S: to send one command.
    pub send: Span,
    /// R: to read one reply.
    pub receive: Span,
    /// E: for the whole end-of-message step, progress replies included.
    pub end: Span,
}

impl Default for MilterTimeouts {
    fn default() -> Self {
        MilterTimeouts {
            connect: Span(std::time::Duration::from_secs(300)),
            send: Span(std::time::Duration::from_secs(10)),
            receive: Span(std::time::Duration::from_secs(10)),
            end: Span(std::time::Duration::from_secs(300)),
        }
    }
}

/// Where a milter listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MilterSocket {
    Inet(String, u16),
    Unix(PathBuf),
}

impl MilterSocket {
    /// Parses sendmail's `S=` syntax.
    pub fn parse(s: &str) -> Result<MilterSocket, String> {
        let bad =
            || format!("milter socket {s:?} is not inet:PORT@HOST, inet6:PORT@HOST or unix:/path");
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "inet" | "inet6" => {
                let (port, host) = rest.split_once('@').ok_or_else(bad)?;
                let port: u16 = port.parse().map_err(|_| bad())?;
                let host = host.trim_start_matches('[').trim_end_matches(']');
                if port == 0 || host.is_empty() || host.contains(char::is_whitespace) {
                    return Err(bad());
                }
                Ok(MilterSocket::Inet(host.to_string(), port))
            }
            "unix" | "local" if rest.starts_with('/') => {
                Ok(MilterSocket::Unix(PathBuf::from(rest)))
            }
            _ => Err(bad()),
        }
    }
}

/// `[dkim]`: outbound signing keys, picked by the From: domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dkim {
    pub sign: Vec<DkimKey>,
}

/// One `[dkim] sign` entry. A domain with several selectors is signed with each of them (the
/// overlap of a key rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    /// A PEM private key: RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8), as `dkim keygen` writes.
    pub key: String,
}

/// `[verify]`: SPF, DKIM and DMARC checks of mail from clients that may not relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Verify {
    pub spf: VerifyMode,
    pub dkim: VerifyMode,
    pub dmarc: VerifyMode,
    /// Messages larger than this are not checked for DKIM (their signatures count as
    /// `temperror`, which never refuses): the check reads the message into memory.
    pub max_size: u64,
}

impl Default for Verify {
    fn default() -> Self {
        Verify {
            spf: VerifyMode::Tag,
            dkim: VerifyMode::Tag,
            dmarc: VerifyMode::Enforce,
            max_size: 10 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// Not checked.
    Off,
    /// Checked and recorded in Authentication-Results.
    Tag,
    /// Checked, recorded, and a failure refused.
    Enforce,
}

impl Settings {
    /// Defaults; `privileged` picks the real ports (root) or the loopback ones (anyone else).
    pub fn defaults(privileged: bool) -> Self {
        Settings {
            hostname: None,
            user: "mailtool".into(),
            group: "mailtool".into(),
            paths: Paths::default(),
            maps: Maps::default(),
            smtp: Smtp::defaults(privileged),
            pop3: Pop3::defaults(privileged),
            tls: Tls::default(),
            dns: Dns::default(),
            queue: Queue::default(),
            log: Log::default(),
            metrics: Metrics::default(),
            limits: Limits::default(),
            backends: BTreeMap::new(),
            dkim: Dkim::default(),
            verify: Verify::default(),
            milter: Vec::new(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::defaults(true)
    }
}

fn sock(s: &str) -> SocketAddr {
    // The literals above are valid; a failure here would be a typo caught by the unit tests.
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// The settings plus where they came from and the root every path is relocated under.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    /// The file read, or the file that would have been read (it may not exist).
    pub file: PathBuf,
    pub file_exists: bool,
    pub root: PathBuf,
}

/// How the CLI located the root and the config file (global options and environment).
#[derive(Debug, Clone, Default)]
pub struct Locate {
    pub config: Option<PathBuf>,
    pub root: Option<PathBuf>,
}

impl Config {
    /// Finds and loads the configuration the way mailtool.toml(5), ROOT says: `--config`, else
    /// `<root>/etc/mail/mailtool.toml`; a missing default file means all defaults, a missing
    /// `--config` file is an error.
    pub fn load(locate: &Locate) -> Result<Config, ConfigError> {
        let privileged = is_root();
        let root = match &locate.root {
            Some(r) => r.clone(),
            None if privileged => PathBuf::from("/"),
            None => default_user_root(),
        };
        let (file, explicit) = match &locate.config {
            Some(f) => (f.clone(), true),
            None => (relocate(&root, "/etc/mail/mailtool.toml"), false),
        };
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => None,
            Err(e) => {
                return Err(ConfigError::Read {
                    path: file.display().to_string(),
                    message: crate::util::io_message(&e),
                });
            }
        };
        let file_exists = text.is_some();
        let settings = match text {
            Some(t) => parse(&t, &file.display().to_string(), privileged)?,
            None => Settings::defaults(privileged),
        };
        Ok(Config {
            settings,
            file,
            file_exists,
            root,
        })
    }

    /// A configuration built in code (tests, tools that need no file).
    pub fn from_settings(settings: Settings, root: PathBuf) -> Config {
        Config {
            file: relocate(&root, "/etc/mail/mailtool.toml"),
            file_exists: false,
            settings,
            root,
        }
    }

    /// A path from the config, relocated under the root.
    pub fn path(&self, p: &str) -> PathBuf {
        relocate(&self.root, p)
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.path(&self.settings.paths.mail_dir)
    }

    /// A map or class file named in `[maps]`: relative names live in `mail_dir`.
    pub fn map_path(&self, name: &str) -> PathBuf {
        if Path::new(name).is_absolute() {
            self.path(name)
        } else {
            self.mail_dir().join(name)
        }
    }

    /// Where a map lives: `BACKEND:TABLE` in a configured backend, else a file (see
    /// [`Config::map_path`]). An unknown backend or a bad table name is an error (the config
    /// check reports the ones in `[maps]` with their position).
    pub fn map_place(&self, name: &str) -> Result<MapPlace, String> {
        let Some((backend, table)) = split_backend_name(name) else {
            return Ok(MapPlace::File(self.map_path(name)));
        };
        if !self.settings.backends.contains_key(backend) {
            return Err(format!(
                "map {name:?}: no backend {backend:?} ([backends.{backend}] is not in {})",
                self.file.display()
            ));
        }
        if !valid_table(table) {
            return Err(format!(
                "map {name:?}: {table:?} is not a table name (letters, digits and _)"
            ));
        }
        Ok(MapPlace::Backend {
            backend: backend.to_string(),
            table: table.to_string(),
        })
    }

    /// This host's name: the config's, else the system's.
    pub fn hostname(&self) -> String {
        self.settings
            .hostname
            .clone()
            .unwrap_or_else(crate::util::system_hostname)
    }
}

/// Parses the TOML text; errors carry the line and column of the offending key or value.
pub fn parse(text: &str, path: &str, privileged: bool) -> Result<Settings, ConfigError> {
    // Start from the defaults for this kind of user, then let the file override: the table
    // defaults inside Settings are the root ones, so the listen ports are patched afterwards.
    let value: toml::Table = toml::from_str(text).map_err(|e| toml_error(text, path, &e))?;
    let mut settings: Settings = toml::from_str(text).map_err(|e| toml_error(text, path, &e))?;
    if !privileged {
        let defaults = Settings::defaults(false);
        let has = |table: &str, key: &str| {
            value
                .get(table)
                .and_then(|t| t.as_table())
                .is_some_and(|t| t.contains_key(key))
        };
        if !has("smtp", "listen") {
            settings.smtp.listen = defaults.smtp.listen;
        }
        if !has("smtp", "submission") {
            settings.smtp.submission = defaults.smtp.submission;
        }
        if !has("pop3", "listen") {
            settings.pop3.listen = defaults.pop3.listen;
        }
    }
    validate(&settings).map_err(|message| ConfigError::Invalid {
        path: path.to_string(),
        message,
    })?;
    check_backends(text, path, &settings)?;
    Ok(settings)
}

/// `[maps]` names that point into a backend, and the backends themselves, checked with the
/// position of the offending value: an unknown backend, a bad table name, a URL that does not
/// fit the type or that carries a password.
fn check_backends(text: &str, path: &str, s: &Settings) -> Result<(), ConfigError> {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        maps: BTreeMap<String, toml::Spanned<toml::Value>>,
        #[serde(default)]
        backends: BTreeMap<String, toml::Spanned<BackendSpans>>,
    }
    #[derive(Deserialize)]
    struct BackendSpans {
        url: toml::Spanned<String>,
    }
    let at = |span: std::ops::Range<usize>, message: String| {
        let (line, column) = line_col(text, span.start);
        ConfigError::Parse {
            path: path.to_string(),
            line,
            column,
            message,
        }
    };
    let doc: Doc = toml::from_str(text).map_err(|e| toml_error(text, path, &e))?;
    for (name, b) in &doc.backends {
        if name.is_empty() || name.contains([':', '/']) {
            return Err(at(
                b.span(),
                format!("backend name {name:?} may not contain ':' or '/'"),
            ));
        }
        let Some(conf) = s.backends.get(name) else {
            continue;
        };
        let url = b.get_ref().url.get_ref();
        if let Err(m) = check_url(conf.kind, url) {
            return Err(at(
                b.get_ref().url.span(),
                format!("backends.{name}.url: {m}"),
            ));
        }
        if conf.timeout.is_zero() || conf.pool == 0 {
            return Err(at(
                b.span(),
                format!("backends.{name}: timeout and pool must be more than 0"),
            ));
        }
    }
    for (key, v) in &doc.maps {
        let Some(name) = v.get_ref().as_str() else {
            continue;
        };
        let Some((backend, table)) = split_backend_name(name) else {
            continue;
        };
        let message = if matches!(key.as_str(), "local_host_names" | "relay_domains") {
            format!("maps.{key}: class files are plain files in mail_dir, not in a backend")
        } else if !s.backends.contains_key(backend) {
            format!("maps.{key}: no backend {backend:?} (add a [backends.{backend}] table)")
        } else if !valid_table(table) {
            format!("maps.{key}: {table:?} is not a table name (letters, digits and _)")
        } else {
            continue;
        };
        return Err(at(v.span(), message));
    }
    Ok(())
}

/// The URL fits the backend's type and carries no password (it would show in `ps`, logs and
/// `config show`; `password_file` is where it goes).
fn check_url(kind: BackendKind, url: &str) -> Result<(), String> {
    let schemes: &[&str] = match kind {
        BackendKind::Postgresql => &["postgresql", "postgres"],
        BackendKind::Redis => &["redis", "rediss"],
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{url:?} is not a URL (want {}://…)", schemes[0]));
    };
    if !schemes.contains(&scheme) {
        return Err(format!(
            "{scheme}:// does not fit this type (want {}://…)",
            schemes[0]
        ));
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && userinfo.contains(':')
    {
        return Err("the URL carries a password; put it in password_file instead".into());
    }
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    if query.split('&').any(|kv| {
        kv.split('=')
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("password"))
    }) {
        return Err("the URL carries a password; put it in password_file instead".into());
    }
    Ok(())
}

/// Dot-separated labels of letters, digits, `-` and `_` (a selector or a domain).
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn validate(s: &Settings) -> Result<(), String> {
    if let Some(h) = &s.hostname
        && (h.is_empty() || h.contains(char::is_whitespace))
    {
        return Err(format!("hostname {h:?} is not a host name"));
    }
    for d in &s.smtp.dnsbl {
        if d.zone.is_empty() || d.zone.contains(char::is_whitespace) {
            return Err(format!("smtp.dnsbl zone {:?} is not a DNS zone", d.zone));
        }
    }
    if s.tls.cert.is_empty() != s.tls.key.is_empty() {
        return Err("tls.cert and tls.key must be set together".into());
    }
    if !s.queue.smart_host.is_empty() && s.queue.smart_host.contains(char::is_whitespace) {
        return Err(format!(
            "queue.smart_host {:?} is not host[:port]",
            s.queue.smart_host
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for k in &s.dkim.sign {
        if !is_dns_name(&k.domain) {
            return Err(format!("dkim.sign domain {:?} is not a domain", k.domain));
        }
        if !is_dns_name(&k.selector) {
            return Err(format!(
                "dkim.sign selector {:?} of {} is not a DNS label",
                k.selector, k.domain
            ));
        }
        if k.key.is_empty() {
            return Err(format!(
                "dkim.sign entry {}/{} has no key",
                k.domain, k.selector
            ));
        }
        if !seen.insert((
            k.domain.to_ascii_lowercase(),
            k.selector.to_ascii_lowercase(),
        )) {
            return Err(format!(
                "dkim.sign lists domain {} with selector {} twice",
                k.domain, k.selector
            ));
        }
    }
    let mut names = std::collections::HashSet::new();
    for m in &s.milter {
        if m.name.is_empty() || m.name.contains(char::is_whitespace) {
            return Err(format!("milter name {:?} is not a name", m.name));
        }
        if !names.insert(m.name.as_str()) {
            return Err(format!("milter {} is listed twice", m.name));
        }
        MilterSocket::parse(&m.socket).map_err(|e| format!("milter {}: {e}", m.name))?;
        let t = &m.timeouts;
        if [&t.connect, &t.send, &t.receive, &t.end]
            .iter()
            .any(|d| d.is_zero())
        {
            return Err(format!("milter {}: a timeout of 0 would never end", m.name));
        }
    }
    let lb = &s.limits.backend;
    if !lb.is_empty() {
        match s.backends.get(lb) {
            Some(b) if b.kind == BackendKind::Redis => {}
            Some(_) => return Err(format!("limits.backend {lb:?} is not a redis backend")),
            None => return Err(format!("limits.backend {lb:?} is not in [backends]")),
        }
    }
    if !["off", "error", "warn", "info", "debug", "trace"].contains(&s.log.level.as_str()) {
        return Err(format!(
            "log.level {:?} is not a level (error, warn, info, debug, trace)",
            s.log.level
        ));
    }
    Ok(())
}

fn toml_error(text: &str, path: &str, e: &toml::de::Error) -> ConfigError {
    let (line, column) = match e.span() {
        Some(span) => line_col(text, span.start),
        None => (1, 1),
    };
    ConfigError::Parse {
        path: path.to_string(),
        line,
        column,
        message: e.message().trim().to_string(),
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// `/etc/mail` under root `R` is `R/etc/mail`; relative paths are left alone.
pub fn relocate(root: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        let rel = path.strip_prefix("/").unwrap_or(path);
        if rel.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        }
    } else {
        path.to_path_buf()
    }
}

/// `$XDG_DATA_HOME/mailtool`, else `~/.local/share/mailtool`.
pub fn default_user_root() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("mailtool");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/mailtool")
}

pub use crate::sys::is_root;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let s = parse("", "t.toml", true).unwrap();
        assert_eq!(s, Settings::defaults(true));
        assert_eq!(s.smtp.listen, vec![sock("0.0.0.0:25")]);
        assert_eq!(s.pop3.pop_before_smtp_ttl.0.as_secs(), 900);
        assert_eq!(s.smtp.max_recipients, 100);
        assert!(s.maps.access_temp_fail);
    }

    #[test]
    fn milters_parse_with_sendmails_defaults_and_bad_ones_are_named() {
        let s = parse(
            "[[milter]]\nname = \"dkim\"\nsocket = \"inet:8891@127.0.0.1\"\n\
             [[milter]]\nname = \"clam\"\nsocket = \"unix:/run/clamav/clamav-milter.sock\"\n\
             on_failure = \"reject\"\ntimeouts = { end = \"10m\" }\n",
            "t.toml",
            true,
        )
        .unwrap();
        assert_eq!(s.milter.len(), 2);
        assert_eq!(s.milter[0].on_failure, MilterFailure::Accept);
        assert_eq!(s.milter[0].timeouts, MilterTimeouts::default());
        assert_eq!(s.milter[0].timeouts.connect.0.as_secs(), 300);
        assert_eq!(s.milter[1].on_failure, MilterFailure::Reject);
        assert_eq!(s.milter[1].timeouts.end.0.as_secs(), 600);
        assert_eq!(s.milter[1].timeouts.send.0.as_secs(), 10);
        assert_eq!(
            MilterSocket::parse(&s.milter[1].socket),
            Ok(MilterSocket::Unix("/run/clamav/clamav-milter.sock".into()))
        );
        assert_eq!(
            MilterSocket::parse("inet6:8891@[::1]"),
            Ok(MilterSocket::Inet("::1".into(), 8891))
        );
        assert_eq!(
            MilterSocket::parse("local:/x"),
            Ok(MilterSocket::Unix("/x".into()))
        );
        for (body, want) in [
            (
                "name = \"m\"\nsocket = \"inet:0@127.0.0.1\"",
                "milter m: milter socket",
            ),
            (
                "name = \"m\"\nsocket = \"inet:8891\"",
                "is not inet:PORT@HOST",
            ),
            (
                "name = \"m\"\nsocket = \"unix:relative\"",
                "is not inet:PORT@HOST",
            ),
            (
                "name = \"m\"\nsocket = \"tcp:1@h\"",
                "is not inet:PORT@HOST",
            ),
            ("name = \"\"\nsocket = \"inet:1@h\"", "is not a name"),
            (
                "name = \"m\"\nsocket = \"inet:1@h\"\ntimeouts = { receive = \"0s\" }",
                "a timeout of 0 would never end",
            ),
            (
                "name = \"m\"\nsocket = \"inet:1@h\"\non_failure = \"maybe\"",
                "line 5",
            ),
            (
                "name = \"m\"\nsocket = \"inet:1@h\"\nflags = \"T\"",
                "line 5",
            ),
        ] {
            let e = parse(&format!("\n[[milter]]\n{body}\n"), "t.toml", true).unwrap_err();
            assert!(e.to_string().contains(want), "{body}: {e}");
            assert!(e.to_string().starts_with("t.toml"), "{e}");
        }
        let twice = "[[milter]]\nname = \"m\"\nsocket = \"inet:1@h\"\n\
                     [[milter]]\nname = \"m\"\nsocket = \"inet:2@h\"\n";
        let e = parse(twice, "t.toml", true).unwrap_err();
        assert!(e.to_string().contains("milter m is listed twice"), "{e}");
    }

    #[test]
    fn non_root_defaults_to_loopback_ports() {
        let s = parse("", "t.toml", false).unwrap();
        assert_eq!(s.smtp.listen, vec![sock("127.0.0.1:2525")]);
        assert_eq!(s.smtp.submission, vec![sock("127.0.0.1:2587")]);
        assert_eq!(s.pop3.listen, vec![sock("127.0.0.1:1100")]);
        let s = parse("[smtp]\nlisten = [\"127.0.0.9:25\"]\n", "t.toml", false).unwrap();
        assert_eq!(s.smtp.listen, vec![sock("127.0.0.9:25")]);
        assert_eq!(s.smtp.submission, vec![sock("127.0.0.1:2587")]);
    }

    #[test]
    fn seed_setup_parses() {
        // mailtool.toml(5), EXAMPLES: the seed's sendmail setup
        let text = r#"hostname = "mail.example1.com"
[smtp]
greet_pause = "5000ms"
max_message_size = 1000000
ptr_check = "resolvable"
dnsbl = [{ zone = "relays.ordb.org", message = "550 Email rejected due to sending server misconfiguration - see http://www.ordb.org/faq/#why_rejected" }]
[queue]
interval = "1h"
"#;
        let s = parse(text, "t.toml", true).unwrap();
        assert_eq!(s.hostname.as_deref(), Some("mail.example1.com"));
        assert_eq!(s.smtp.greet_pause.0.as_millis(), 5000);
        assert_eq!(s.smtp.ptr_check, PtrCheck::Resolvable);
        assert_eq!(s.smtp.dnsbl[0].zone, "relays.ordb.org");
        assert_eq!(s.smtp.max_message_size, 1_000_000);
    }

    #[test]
    fn unknown_key_reports_line_and_column() {
        let err = parse("hostname = \"a.b\"\n[smtp]\n  lisen = []\n", "x.toml", true).unwrap_err();
        match err {
            ConfigError::Parse {
                line,
                column,
                message,
                ..
            } => {
                assert_eq!((line, column), (3, 3), "{message}");
                assert!(message.contains("lisen"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_values_are_errors_with_position() {
        for (text, line) in [
            ("[paths]\nmailbox_format = \"mh\"\n", 2),
            ("[smtp]\ngreet_pause = \"soon\"\n", 2),
            ("[smtp]\nlisten = [\"nowhere\"]\n", 2),
            ("\n\n[pop3]\nallow_plaintext_auth = \"sometimes\"\n", 4),
            ("[smtp]\nmax_hops = -1\n", 2),
        ] {
            match parse(text, "x.toml", true) {
                Err(ConfigError::Parse { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn semantic_errors() {
        assert!(matches!(
            parse("[tls]\ncert = \"/a.pem\"\n", "x", true),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            parse("[log]\nlevel = \"loud!!\"\n", "x", true),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn show_output_parses_back() {
        let s = parse("[smtp]\ngreet_pause = \"5000ms\"\n", "x", true).unwrap();
        let shown = toml::to_string(&s).unwrap();
        assert_eq!(parse(&shown, "x", true).unwrap(), s);
    }

    #[test]
    fn relocation() {
        let root = Path::new("/tmp/r");
        assert_eq!(
            relocate(root, "/etc/mail"),
            PathBuf::from("/tmp/r/etc/mail")
        );
        assert_eq!(relocate(root, "rel/x"), PathBuf::from("rel/x"));
        assert_eq!(
            relocate(Path::new("/"), "/var/mail"),
            PathBuf::from("/var/mail")
        );
        let c = Config::from_settings(Settings::default(), root.into());
        assert_eq!(
            c.map_path("access"),
            PathBuf::from("/tmp/r/etc/mail/access")
        );
        assert_eq!(c.map_path("/srv/x"), PathBuf::from("/tmp/r/srv/x"));
    }

    // The contract's "Maps in a backend": names resolve, and every mistake names its place.
    #[test]
    fn backends_and_their_mistakes() {
        let good = "[maps]\naccess = \"shared:access\"\npopip = \"cache:popip\"\n\
                    [backends.shared]\ntype = \"postgresql\"\n\
                    url = \"postgresql://mail@127.0.0.1:5432/mail?sslmode=require\"\n\
                    password_file = \"/etc/mail/pg.pw\"\n\
                    [backends.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379/0\"\n\
                    timeout = \"500ms\"\n";
        let s = parse(good, "t.toml", true).unwrap();
        let b = &s.backends["shared"];
        assert_eq!(b.kind, BackendKind::Postgresql);
        assert_eq!(b.timeout.0, std::time::Duration::from_secs(2));
        assert_eq!(b.pool, 4);
        assert_eq!(
            s.backends["cache"].timeout.0,
            std::time::Duration::from_millis(500)
        );
        let cfg = Config::from_settings(s.clone(), PathBuf::from("/r"));
        assert_eq!(
            cfg.map_place(&s.maps.access),
            Ok(MapPlace::Backend {
                backend: "shared".into(),
                table: "access".into()
            })
        );
        assert_eq!(
            cfg.map_place("virtusertable"),
            Ok(MapPlace::File(PathBuf::from("/r/etc/mail/virtusertable")))
        );
        assert_eq!(
            cfg.map_place("/x/y:z"),
            Ok(MapPlace::File(PathBuf::from("/r/x/y:z")))
        );
        assert!(cfg.map_place("nosuch:access").is_err());
        assert!(cfg.map_place("shared:bad-name").is_err());
        assert!(cfg.map_place("shared:").is_err());
        // `config show` writes backends back in a form that parses again.
        let shown = toml::to_string(&s).unwrap();
        assert_eq!(parse(&shown, "t.toml", true).unwrap(), s);

        for (text, line, column, needle) in [
            (
                "[maps]\naccess = \"nosuch:access\"\n",
                2,
                10,
                "no backend \"nosuch\"",
            ),
            (
                "[maps]\nusers = \"shared:1users\"\n[backends.shared]\ntype = \"redis\"\nurl = \"redis://h/0\"\n",
                2,
                9,
                "not a table name",
            ),
            (
                "[maps]\nrelay_domains = \"shared:rd\"\n[backends.shared]\ntype = \"redis\"\nurl = \"redis://h/0\"\n",
                2,
                17,
                "class files",
            ),
            (
                "[backends.shared]\ntype = \"postgresql\"\nurl = \"postgresql://mail:secret@h/db\"\n",
                3,
                7,
                "password_file",
            ),
            (
                "[backends.shared]\ntype = \"redis\"\nurl = \"redis://:secret@h/0\"\n",
                3,
                7,
                "password_file",
            ),
            (
                "[backends.shared]\ntype = \"postgresql\"\nurl = \"postgresql://h/db?password=x\"\n",
                3,
                7,
                "password_file",
            ),
            (
                "[backends.shared]\ntype = \"redis\"\nurl = \"postgresql://h/db\"\n",
                3,
                7,
                "does not fit",
            ),
            (
                "[backends.shared]\ntype = \"redis\"\nurl = \"h:6379\"\n",
                3,
                7,
                "not a URL",
            ),
        ] {
            match parse(text, "t.toml", true) {
                Err(ConfigError::Parse {
                    line: l,
                    column: c,
                    message,
                    ..
                }) => {
                    assert_eq!((l, c), (line, column), "{text}: {message}");
                    assert!(message.contains(needle), "{text}: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        // An unknown type is a parse error too.
        assert!(parse("[backends.x]\ntype = \"mysql\"\nurl = \"x\"\n", "t", true).is_err());
        // A user name in the URL is fine; only a password is refused.
        assert!(check_url(BackendKind::Postgresql, "postgres://mail@h:5432/db").is_ok());
        assert!(check_url(BackendKind::Redis, "rediss://h/0").is_ok());
    }
}
