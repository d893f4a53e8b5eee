//! The SMTP server session as a pure state machine: it takes command lines and returns what
//! to send and what to do, asking [`Policy`] for decisions. The socket side (`smtp::server`)
//! does the I/O, TLS and timeouts, so every protocol rule here is tested without sockets.
//!
//! Protections that apply to every client, loopback included:
//! - a command pipelined without PIPELINING, or after a command that must end a group
//!   (RFC 2920 §3.1: anything but RSET, MAIL, RCPT), is refused with `554 5.5.0 Error: SMTP
//!   protocol synchronization` and the connection is closed (Postfix's
//!   `smtpd_forbid_unauth_pipelining`);
//! - a command line ending in a bare LF or holding a bare CR is refused and the connection
//!   closed (sendmail 8.18 / Postfix `reject` for commands; DATA content is normalized, see
//!   `proto`);
//! - after STARTTLS every byte already buffered is discarded by the server and this state is
//!   reset to "no HELO" (RFC 3207 §4.2);
//! - AUTH needs TLS unless `allow_plaintext_auth` says otherwise.

use crate::address::{self, Params, Path};
use crate::policy::{Client, Connect, Policy, RcptOk};
use crate::reply::Rejection;
use crate::smtp::proto::{Command, EhloCaps, LineEvent, Reply, parse_command};

/// How many bytes the spool may still take for a new message (free space less the reserve);
/// `None` when that cannot be told, which never refuses mail.
#[derive(Clone)]
pub struct SpoolRoom(pub std::sync::Arc<dyn Fn() -> Option<u64> + Send + Sync>);

impl std::fmt::Debug for SpoolRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpoolRoom")
    }
}

impl SpoolRoom {
    /// A fixed answer (tests).
    pub fn fixed(bytes: u64) -> SpoolRoom {
        SpoolRoom(std::sync::Arc::new(move || Some(bytes)))
    }
}

/// Per-listener and per-server settings the session needs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub hostname: String,
    pub max_message_size: u64,
    /// Asked at every MAIL: no room, or a SIZE= over it, gets `452 4.3.1` before any data.
    pub spool_room: Option<SpoolRoom>,
    pub max_recipients: u32,
    pub max_messages: u32,
    pub max_errors: u32,
    /// STARTTLS can be offered (a certificate is configured and TLS is not active yet).
    pub tls_available: bool,
    /// AUTH may be used before TLS on this connection.
    pub plaintext_auth: bool,
    pub vrfy: bool,
    pub expn: bool,
}

/// A recipient accepted for the current transaction.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub path: Path,
    pub params: Params,
    pub ok: RcptOk,
}

/// The envelope of a message ready to be stored.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub sender: Path,
    pub params: Params,
    pub recipients: Vec<Recipient>,
    pub helo: String,
    /// access DISCARD matched the sender or a recipient: answer 250, store nothing.
    pub discard: bool,
    /// The Received: `with` keyword: `SMTP`, `ESMTP[S][A]` (RFC 3848) or, when the
    /// transaction used SMTPUTF8, `UTF8SMTP[S][A]` (RFC 6531 §3.7.3).
    pub protocol: String,
    pub client: Client,
}

/// The Received: `with` keyword for a transaction.
fn with_protocol(ehlo: bool, smtputf8: bool, tls: bool, auth: bool) -> &'static str {
    // SMTPUTF8 is only accepted after EHLO, so it never combines with plain SMTP.
    match (ehlo, smtputf8, tls, auth) {
        (false, _, _, _) => "SMTP",
        (true, false, false, false) => "ESMTP",
        (true, false, true, false) => "ESMTPS",
        (true, false, false, true) => "ESMTPA",
        (true, false, true, true) => "ESMTPSA",
        // RFC 6531 §3.7.3: UTF8SMTP, UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA.
        (true, true, false, false) => "UTF8SMTP",
        (true, true, true, false) => "UTF8SMTPS",
        (true, true, false, true) => "UTF8SMTPA",
        (true, true, true, true) => "UTF8SMTPSA",
    }
}

/// What the server must do, in order.
#[derive(Debug)]
pub enum Step {
    Send(Reply),
    /// The `220 Ready to start TLS` was just queued: flush it, discard buffered input,
    /// handshake, then call [`Session::tls_started`].
    StartTls,
    /// The 354 was queued: read the message with a `DataReader`, then call
    /// [`Session::data_done`].
    ReadData,
    /// Check the credentials (slow: argon2), then call [`Session::auth_result`].
    VerifyAuth {
        user: String,
        password: Vec<u8>,
    },
    /// An error reply follows, the session's `errors`-th: the server may hold it back (its
    /// error tarpit), unless the client authenticated or may relay.
    Tarpit {
        errors: u32,
    },
    /// Close after flushing what was queued.
    Close,
    /// The server accepted this command: ask the milters before its reply (the next
    /// `Send`) goes out. A refusal replaces that reply and is reported back with
    /// [`Session::milter_refused`].
    Milter(MilterCall),
}

/// A command the milters are asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MilterCall {
    Helo(String),
    /// `<reverse-path>`, then the ESMTP parameters.
    Mail(Vec<String>),
    /// `<forward-path>`, then the ESMTP parameters.
    Rcpt(Vec<String>),
    Data,
}

/// The milter form of a MAIL/RCPT argument: the path in angle brackets, then each ESMTP
/// parameter as the client sent it.
fn milter_args(shown: &str, arg: &str) -> Vec<String> {
    let params = match arg.find('>') {
        Some(i) => &arg[i + 1..],
        None => arg.split_once(char::is_whitespace).map_or("", |(_, r)| r),
    };
    std::iter::once(format!("<{shown}>"))
        .chain(params.split_whitespace().map(str::to_string))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Before HELO/EHLO.
    Start,
    /// HELO/EHLO done, no transaction.
    Ready,
    /// MAIL accepted (maybe RCPTs too).
    Mail,
    /// DATA in progress.
    Data,
    /// Waiting for AUTH LOGIN's user name / password, or AUTH PLAIN's response.
    Auth(AuthStage),
    /// Waiting for the credential check.
    AuthVerify,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthStage {
    PlainResponse,
    LoginUser,
    LoginPassword(String),
}

pub struct Session {
    cfg: SessionConfig,
    pub client: Client,
    phase: Phase,
    /// What the client said in HELO/EHLO, and whether it was EHLO (PIPELINING negotiated).
    helo: Option<(String, bool)>,
    tls: bool,
    /// Set when the connection check (access, DNSBL, PTR) rejected the client: the session is
    /// a "null server" that answers every real command with this reply (docs/sendmail-compat.md §6.6).
    null_reply: Option<Reply>,
    sender: Option<(Path, Params)>,
    recipients: Vec<Recipient>,
    discard: bool,
    messages: u32,
    errors: u32,
    pending_auth_user: Option<String>,
    /// The SASL mechanism of the AUTH in progress or done (the milter macro `{auth_type}`).
    auth_mech: Option<String>,
}

/// sendmail's rejections carry their address part already (`reply::Rejection::line`).
pub fn wire(r: &Rejection) -> Reply {
    let line = r.line();
    let text = line.get(4..).unwrap_or("").to_string();
    Reply::new(r.code, text)
}

fn is_group_ending(cmd: &Command) -> bool {
    !matches!(cmd, Command::Rset | Command::Mail(_) | Command::Rcpt(_))
}

impl Session {
    pub fn new(cfg: SessionConfig, client: Client, tls: bool) -> Session {
        Session {
            cfg,
            client,
            phase: Phase::Start,
            helo: None,
            tls,
            null_reply: None,
            sender: None,
            recipients: Vec::new(),
            discard: false,
            messages: 0,
            errors: 0,
            pending_auth_user: None,
            auth_mech: None,
        }
    }

    /// Applies the connection checks' result before the greeting.
    pub fn set_connect(&mut self, verdict: Connect) {
        if let Connect::Reject(r) = verdict {
            self.null_reply = Some(wire(&r));
        }
    }

    /// No transaction is open (no MAIL yet, no DATA in progress).
    pub fn is_idle(&self) -> bool {
        self.sender.is_none() && !matches!(self.phase, Phase::Data | Phase::AuthVerify)
    }

    /// Makes the session a null server answering `reply` (a milter refused the connection).
    pub fn set_null(&mut self, reply: Reply) {
        self.null_reply = Some(reply);
    }

    /// The SASL mechanism the client authenticated with.
    pub fn auth_type(&self) -> Option<&str> {
        self.client
            .authenticated
            .as_ref()
            .and(self.auth_mech.as_deref())
    }

    /// The milters refused a command the server had accepted: undo what it did.
    pub fn milter_refused(&mut self, call: &MilterCall) {
        match call {
            MilterCall::Helo(_) => {
                self.helo = None;
                self.phase = Phase::Start;
            }
            MilterCall::Mail(_) => self.reset_transaction(),
            MilterCall::Rcpt(_) => {
                self.recipients.pop();
            }
            MilterCall::Data => self.phase = Phase::Mail,
        }
    }

    /// A milter asked to discard the message: it is answered 250 and not kept.
    pub fn milter_discard(&mut self) {
        self.discard = true;
    }

    pub fn is_null_server(&self) -> bool {
        self.null_reply.is_some()
    }

    pub fn tls_active(&self) -> bool {
        self.tls
    }

    pub fn greeting(&self) -> Reply {
        Reply::greeting(&self.cfg.hostname, "mailtool; ready")
    }

    fn ehlo_caps(&self) -> EhloCaps {
        let auth_ok = self.tls || self.cfg.plaintext_auth;
        EhloCaps {
            enhanced_status_codes: true,
            pipelining: true,
            expn: self.cfg.expn,
            verb: false,
            eight_bit_mime: true,
            smtputf8: true,
            size: Some(self.cfg.max_message_size),
            dsn: true,
            etrn: false,
            auth: if auth_ok && self.client.authenticated.is_none() {
                vec!["PLAIN".into(), "LOGIN".into()]
            } else {
                vec![]
            },
            starttls: self.cfg.tls_available && !self.tls,
            deliverby: None,
            help: true,
        }
    }

    fn reset_transaction(&mut self) {
        self.discard = false;
        self.sender = None;
        self.recipients.clear();
        if matches!(self.phase, Phase::Mail | Phase::Data) {
            self.phase = Phase::Ready;
        }
    }

    /// Counts a bad command; past the limit the session ends with 421.
    fn bad(&mut self, reply: Reply) -> Vec<Step> {
        self.errors += 1;
        if self.errors > self.cfg.max_errors {
            return vec![
                Step::Send(Reply::too_many_bad_commands(&self.cfg.hostname)),
                Step::Close,
            ];
        }
        vec![
            Step::Tarpit {
                errors: self.errors,
            },
            Step::Send(reply),
        ]
    }

    /// Handles one framed command line. `more_buffered`: input is already waiting after it.
    pub fn on_line(&mut self, ev: LineEvent, more_buffered: bool, policy: &Policy) -> Vec<Step> {
        let line = match ev {
            LineEvent::Line(l) => l,
            LineEvent::TooLong => return self.bad(Reply::line_too_long()),
            LineEvent::BareLf => return vec![Step::Send(Reply::bare_lf()), Step::Close],
            LineEvent::BareCr => return vec![Step::Send(Reply::bare_cr()), Step::Close],
        };
        if let Phase::Auth(stage) = self.phase.clone() {
            return self.auth_continue(stage, &line);
        }
        let cmd = parse_command(&line);
        let pipelining = matches!(self.helo, Some((_, true)));
        // STARTTLS with data behind it is not refused: the server throws that data away
        // unread (RFC 3207 §4.2), which is the defence against command injection.
        if more_buffered
            && !matches!(cmd, Command::StartTls)
            && (!pipelining || is_group_ending(&cmd))
        {
            tracing::warn!(client = %self.client.hello_text(), "SMTP protocol synchronization error (input pipelined after {})", verb(&cmd));
            return vec![Step::Send(Reply::sync_error()), Step::Close];
        }
        if let Some(null) = self.null_reply.clone() {
            return self.null_server(cmd, null);
        }
        match cmd {
            Command::Helo(name) => self.hello(name, false),
            Command::Ehlo(name) => self.hello(name, true),
            Command::Mail(arg) => self.mail(&arg, policy),
            Command::Rcpt(arg) => self.rcpt(&arg, policy),
            Command::Data => self.data(),
            Command::Rset => {
                self.reset_transaction();
                vec![Step::Send(Reply::reset())]
            }
            Command::Noop => vec![Step::Send(Reply::ok())],
            Command::Quit => vec![Step::Send(Reply::closing(&self.cfg.hostname)), Step::Close],
            Command::Help(topic) => vec![Step::Send(Reply::help(topic.as_deref()))],
            Command::Vrfy(arg) => self.vrfy(&arg, policy),
            Command::Expn(arg) => self.expn(&arg, policy),
            Command::StartTls => self.starttls(),
            Command::Auth { mechanism, initial } => self.auth(&mechanism, initial.as_deref()),
            Command::Empty => self.bad(Reply::unrecognized("")),
            Command::Unknown(l) => self.bad(Reply::unrecognized(&l)),
            Command::Syntax(e) => self.bad(Reply::syntax(&e)),
        }
    }

    /// The null server: only QUIT, HELO, EHLO, NOOP and RSET work (docs/sendmail-compat.md §6.5/§6.6).
    fn null_server(&mut self, cmd: Command, reply: Reply) -> Vec<Step> {
        match cmd {
            Command::Quit => vec![Step::Send(Reply::closing(&self.cfg.hostname)), Step::Close],
            Command::Noop => vec![Step::Send(Reply::ok())],
            Command::Rset => vec![Step::Send(Reply::reset())],
            Command::Helo(_) => vec![Step::Send(Reply::helo(
                &self.cfg.hostname,
                &self.client.hello_text(),
            ))],
            Command::Ehlo(_) => {
                let caps = EhloCaps {
                    enhanced_status_codes: true,
                    ..Default::default()
                };
                vec![Step::Send(Reply::ehlo(
                    &self.cfg.hostname,
                    &self.client.hello_text(),
                    &caps,
                ))]
            }
            _ => self.bad(reply),
        }
    }

    fn hello(&mut self, name: String, extended: bool) -> Vec<Step> {
        if matches!(self.phase, Phase::Mail) {
            // RFC 5321 §4.1.4: HELO/EHLO in a transaction resets it.
            self.reset_transaction();
        }
        if !valid_helo(&name) {
            return self.bad(Reply::invalid_domain());
        }
        self.helo = Some((name.clone(), extended));
        self.phase = Phase::Ready;
        let text = self.client.hello_text();
        let reply = if extended {
            Reply::ehlo(&self.cfg.hostname, &text, &self.ehlo_caps())
        } else {
            Reply::helo(&self.cfg.hostname, &text)
        };
        vec![Step::Milter(MilterCall::Helo(name)), Step::Send(reply)]
    }

    fn mail(&mut self, arg: &str, policy: &Policy) -> Vec<Step> {
        if self.helo.is_none() {
            return self.bad(Reply::polite_helo_first());
        }
        if self.sender.is_some() {
            return self.bad(Reply::sender_already_specified());
        }
        if self.cfg.max_messages > 0 && self.messages >= self.cfg.max_messages {
            return vec![
                Step::Send(Reply::new(
                    421,
                    format!(
                        "4.7.0 {} Too many messages for this session; closing connection",
                        self.cfg.hostname
                    ),
                )),
                Step::Close,
            ];
        }
        if self.client.submission && self.client.authenticated.is_none() {
            return self.bad(Reply::new(530, "5.7.0 Authentication required"));
        }
        let (path, params) = match checked_path(address::parse_mail_from(arg, true), arg) {
            Ok(p) => p,
            Err(r) => return self.bad(r),
        };
        if let Some(size) = params.size
            && self.cfg.max_message_size > 0
            && size > self.cfg.max_message_size
        {
            return vec![Step::Send(Reply::size_exceeds_fixed(
                self.cfg.max_message_size,
            ))];
        }
        if let Some(room) = self.cfg.spool_room.as_ref().and_then(|r| (r.0)())
            && (room == 0 || params.size.is_some_and(|size| size > room))
        {
            // RFC 1870 §6.1 and Postfix: the data would not fit; the client may try later.
            tracing::warn!(
                "{}: refusing MAIL: spool has {room} bytes to spare, SIZE={}",
                self.client.hello_text(),
                params.size.map_or("none".to_string(), |s| s.to_string())
            );
            return vec![Step::Send(Reply::insufficient_storage())];
        }
        let shown = path.to_string();
        let ok = policy.check_mail(&self.client, &shown);
        if let Ok(m) = &ok {
            self.discard = m.discard;
        }
        if let Err(r) = ok {
            tracing::info!(client = %self.client.hello_text(), "ruleset=check_mail, arg1={shown}, reject={}", r.line());
            return vec![Step::Send(wire(&r))];
        }
        self.sender = Some((path, params));
        self.phase = Phase::Mail;
        vec![
            Step::Milter(MilterCall::Mail(milter_args(&shown, arg))),
            Step::Send(Reply::sender_ok(&shown)),
        ]
    }

    fn rcpt(&mut self, arg: &str, policy: &Policy) -> Vec<Step> {
        let Some((_, mail_params)) = &self.sender else {
            return self.bad(Reply::need_mail_before_rcpt());
        };
        let utf8 = mail_params.smtputf8;
        if self.recipients.len() as u32 >= self.cfg.max_recipients {
            return vec![Step::Send(Reply::too_many_recipients())];
        }
        let (path, params) = match checked_path(address::parse_rcpt_to(arg, utf8), arg) {
            Ok(p) => p,
            Err(r) => return self.bad(r),
        };
        let shown = path.to_string();
        match policy.check_rcpt(&self.client, &path, &shown) {
            Ok(ok) => {
                self.discard |= ok.discard;
                self.recipients.push(Recipient { path, params, ok });
                vec![
                    Step::Milter(MilterCall::Rcpt(milter_args(&shown, arg))),
                    Step::Send(Reply::recipient_ok(&shown, false)),
                ]
            }
            Err(r) => {
                tracing::info!(client = %self.client.hello_text(), "ruleset=check_rcpt, arg1={shown}, reject={}", r.line());
                // Refused recipients count as errors: a relay probe cannot try forever.
                self.errors += 1;
                if self.errors > self.cfg.max_errors {
                    return vec![
                        Step::Tarpit {
                            errors: self.errors,
                        },
                        Step::Send(wire(&r)),
                        Step::Send(Reply::too_many_bad_commands(&self.cfg.hostname)),
                        Step::Close,
                    ];
                }
                vec![
                    Step::Tarpit {
                        errors: self.errors,
                    },
                    Step::Send(wire(&r)),
                ]
            }
        }
    }

    fn data(&mut self) -> Vec<Step> {
        if self.sender.is_none() {
            return self.bad(Reply::need_mail());
        }
        if self.recipients.is_empty() {
            return self.bad(Reply::need_rcpt());
        }
        self.phase = Phase::Data;
        vec![
            Step::Milter(MilterCall::Data),
            Step::Send(Reply::enter_mail()),
            Step::ReadData,
        ]
    }

    /// The message has been read (`size_exceeded` from the DataReader). Returns the envelope
    /// to store, or the reply when the message is refused.
    pub fn data_done(&mut self, size_exceeded: bool) -> Result<Envelope, Reply> {
        let sender = self.sender.take();
        let recipients = std::mem::take(&mut self.recipients);
        self.phase = Phase::Ready;
        let Some((sender, params)) = sender else {
            return Err(Reply::need_mail());
        };
        if size_exceeded {
            return Err(Reply::message_exceeds_fixed(self.cfg.max_message_size));
        }
        self.messages += 1;
        let protocol = self.protocol(&params);
        Ok(Envelope {
            sender,
            params,
            recipients,
            discard: std::mem::take(&mut self.discard),
            helo: self.helo.as_ref().map(|h| h.0.clone()).unwrap_or_default(),
            protocol: protocol.into(),
            client: self.client.clone(),
        })
    }

    /// During DATA: the envelope [`Session::data_done`] will return if the message is taken,
    /// for the Received: header that is written before the data.
    pub fn pending_envelope(&self) -> Option<Envelope> {
        let (sender, params) = self.sender.clone()?;
        let protocol = self.protocol(&params);
        Some(Envelope {
            sender,
            params,
            recipients: self.recipients.clone(),
            discard: self.discard,
            helo: self.helo.as_ref().map(|h| h.0.clone()).unwrap_or_default(),
            protocol: protocol.into(),
            client: self.client.clone(),
        })
    }

    fn protocol(&self, params: &Params) -> &'static str {
        let ehlo = matches!(self.helo, Some((_, true)));
        with_protocol(
            ehlo,
            params.smtputf8,
            self.tls,
            self.client.authenticated.is_some(),
        )
    }

    fn vrfy(&mut self, arg: &str, policy: &Policy) -> Vec<Step> {
        if !self.cfg.vrfy {
            return vec![Step::Send(Reply::cannot_vrfy())];
        }
        if arg.trim().is_empty() {
            return self.bad(Reply::argument_required());
        }
        let probe = if arg.contains('<') {
            arg.to_string()
        } else {
            format!("<{}>", arg.trim())
        };
        match address::parse_rcpt_to(&probe, true) {
            Ok((path, _)) => match policy.check_rcpt(&self.client, &path, &path.to_string()) {
                Ok(_) => vec![Step::Send(Reply::new(250, format!("2.1.5 {path}")))],
                Err(r) => vec![Step::Send(wire(&r))],
            },
            Err(e) => self.bad(Reply::new(
                e.reply_text().0,
                format!("{} {}", e.reply_text().1, e.reply_text().2),
            )),
        }
    }

    fn expn(&mut self, arg: &str, policy: &Policy) -> Vec<Step> {
        if !self.cfg.expn {
            return vec![Step::Send(Reply::not_allowed())];
        }
        let name = arg.trim().trim_start_matches('<').trim_end_matches('>');
        match crate::maps::aliases::lookup_alias(&policy.aliases, name, false) {
            Ok(Some((_, rhs))) => {
                let items = crate::maps::aliases::split_rhs(&rhs);
                let lines: Vec<String> = items
                    .iter()
                    .map(|i| format!("2.1.5 <{}>", crate::smtp::proto::sanitize(i)))
                    .collect();
                vec![Step::Send(Reply::multi(250, lines))]
            }
            Ok(None) => vec![Step::Send(Reply::new(
                550,
                format!(
                    "5.1.1 {}... User unknown",
                    crate::smtp::proto::sanitize(arg.trim())
                ),
            ))],
            Err(_) => vec![Step::Send(Reply::try_again_later())],
        }
    }

    fn starttls(&mut self) -> Vec<Step> {
        if self.tls || !self.cfg.tls_available {
            return self.bad(Reply::new(454, "4.7.0 TLS not available"));
        }
        if self.sender.is_some() {
            return self.bad(Reply::new(
                503,
                "5.5.0 STARTTLS not permitted during a mail transaction",
            ));
        }
        vec![Step::Send(Reply::ready_to_start_tls()), Step::StartTls]
    }

    /// TLS is up: forget everything learnt before it (RFC 3207 §4.2).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.helo = None;
        self.phase = Phase::Start;
        self.sender = None;
        self.recipients.clear();
        self.client.authenticated = None;
        self.pending_auth_user = None;
    }

    fn auth(&mut self, mechanism: &str, initial: Option<&str>) -> Vec<Step> {
        if self.helo.as_ref().is_none_or(|h| !h.1) {
            return self.bad(Reply::new(503, "5.5.1 EHLO first"));
        }
        if self.client.authenticated.is_some() {
            return self.bad(Reply::new(503, "5.5.0 Already Authenticated"));
        }
        if self.sender.is_some() {
            return self.bad(Reply::new(
                503,
                "5.5.0 AUTH not permitted during a mail transaction",
            ));
        }
        if !self.tls && !self.cfg.plaintext_auth {
            return self.bad(Reply::new(530, "5.7.0 Must issue a STARTTLS command first"));
        }
        self.auth_mech = Some(mechanism.to_ascii_uppercase());
        match (mechanism.to_ascii_uppercase().as_str(), initial) {
            ("PLAIN", None) => {
                self.phase = Phase::Auth(AuthStage::PlainResponse);
                vec![Step::Send(Reply::new(334, ""))]
            }
            ("PLAIN", Some(resp)) => self.plain(resp.as_bytes()),
            ("LOGIN", None) => {
                self.phase = Phase::Auth(AuthStage::LoginUser);
                vec![Step::Send(Reply::new(334, "VXNlcm5hbWU6"))]
            }
            ("LOGIN", Some(user)) => match b64(user.as_bytes()) {
                Some(u) => {
                    self.phase = Phase::Auth(AuthStage::LoginPassword(
                        String::from_utf8_lossy(&u).into_owned(),
                    ));
                    vec![Step::Send(Reply::new(334, "UGFzc3dvcmQ6"))]
                }
                None => self.bad(Reply::new(501, "5.5.2 invalid base64 data")),
            },
            _ => self.bad(Reply::new(504, "5.3.3 AUTH mechanism not available")),
        }
    }

    fn auth_continue(&mut self, stage: AuthStage, line: &[u8]) -> Vec<Step> {
        self.phase = Phase::Ready;
        if line == b"*" {
            return self.bad(Reply::new(501, "5.0.0 AUTH aborted"));
        }
        match stage {
            AuthStage::PlainResponse => self.plain(line),
            AuthStage::LoginUser => match b64(line) {
                Some(u) => {
                    self.phase = Phase::Auth(AuthStage::LoginPassword(
                        String::from_utf8_lossy(&u).into_owned(),
                    ));
                    vec![Step::Send(Reply::new(334, "UGFzc3dvcmQ6"))]
                }
                None => self.bad(Reply::new(501, "5.5.2 invalid base64 data")),
            },
            AuthStage::LoginPassword(user) => match b64(line) {
                Some(p) => self.verify(user, p),
                None => self.bad(Reply::new(501, "5.5.2 invalid base64 data")),
            },
        }
    }

    /// RFC 4616: authzid NUL authcid NUL passwd.
    fn plain(&mut self, resp: &[u8]) -> Vec<Step> {
        let decoded = if resp == b"=" {
            Some(Vec::new())
        } else {
            b64(resp)
        };
        let Some(d) = decoded else {
            return self.bad(Reply::new(501, "5.5.2 invalid base64 data"));
        };
        let parts: Vec<&[u8]> = d.split(|&b| b == 0).collect();
        if parts.len() != 3 || parts[1].is_empty() {
            return self.bad(Reply::new(501, "5.5.2 malformed AUTH PLAIN response"));
        }
        let authz = String::from_utf8_lossy(parts[0]).into_owned();
        let user = String::from_utf8_lossy(parts[1]).into_owned();
        if !authz.is_empty() && !authz.eq_ignore_ascii_case(&user) {
            return self.bad(Reply::new(535, "5.7.0 authentication failed"));
        }
        self.verify(user, parts[2].to_vec())
    }

    fn verify(&mut self, user: String, password: Vec<u8>) -> Vec<Step> {
        self.phase = Phase::AuthVerify;
        self.pending_auth_user = Some(user.clone());
        vec![Step::VerifyAuth { user, password }]
    }

    /// The outcome of [`Step::VerifyAuth`]: `Some(ok)`, or `None` when the users map failed.
    pub fn auth_result(&mut self, ok: Option<bool>) -> Vec<Step> {
        self.phase = Phase::Ready;
        let user = self.pending_auth_user.take().unwrap_or_default();
        match ok {
            Some(true) => {
                tracing::info!(
                    "AUTH=server, relay={}, authid={user}, mech=PLAIN/LOGIN",
                    self.client.hello_text()
                );
                self.client.authenticated = Some(user);
                vec![Step::Send(Reply::new(235, "2.0.0 OK Authenticated"))]
            }
            Some(false) => {
                // One stable line per failure: contrib/fail2ban matches it.
                // The user name is client text: RFC 6533 form, `"` escaped too, so the quoted
                // field cannot be closed early.
                tracing::warn!(
                    "SMTP AUTH failure for user \"{}\" from {}",
                    address::echo_text(&user).replace('"', "\\x{22}"),
                    self.client.hello_text()
                );
                self.bad(Reply::new(535, "5.7.0 authentication failed"))
            }
            None => vec![Step::Send(Reply::new(
                454,
                "4.7.0 Temporary authentication failure",
            ))],
        }
    }

    /// The client has spoken before the greeting (greet_pause): the 554 greeting, then close.
    pub fn pregreet_reply(&self) -> Reply {
        Reply::not_accepting(&self.cfg.hostname)
    }
}

/// A parsed MAIL/RCPT argument, or the reply for it: address errors in sendmail's wording,
/// and `555` for a parameter we do not implement (RFC 5321 §4.1.1.11).
fn checked_path(
    parsed: Result<(Path, Params), address::AddrError>,
    arg: &str,
) -> Result<(Path, Params), Reply> {
    let (path, params) = parsed.map_err(|e| {
        let line = e.reply_line(&address::address_echo(arg));
        Reply::new(e.reply_text().0, line.get(4..).unwrap_or("").to_string())
    })?;
    if let Some((k, _)) = params.other.first() {
        return Err(Reply::new(
            555,
            format!("5.5.4 {} parameter unrecognized", k.to_ascii_uppercase()),
        ));
    }
    Ok((path, params))
}

fn b64(data: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(data).ok()
}

fn verb(cmd: &Command) -> &'static str {
    match cmd {
        Command::Helo(_) => "HELO",
        Command::Ehlo(_) => "EHLO",
        Command::Mail(_) => "MAIL",
        Command::Rcpt(_) => "RCPT",
        Command::Data => "DATA",
        Command::Rset => "RSET",
        Command::Noop => "NOOP",
        Command::Quit => "QUIT",
        Command::Help(_) => "HELP",
        Command::Vrfy(_) => "VRFY",
        Command::Expn(_) => "EXPN",
        Command::StartTls => "STARTTLS",
        Command::Auth { .. } => "AUTH",
        _ => "unknown command",
    }
}

/// A HELO name: a domain or an address literal, no spaces or controls.
fn valid_helo(name: &str) -> bool {
    let n = name.trim();
    !n.is_empty()
        && n.len() <= 255
        && !n
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()\"\\,;".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Settings};

    fn policy(dir: &std::path::Path) -> Policy {
        let etc = dir.join("etc/mail");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("local-host-names"), "example1.com\n").unwrap();
        let mut s = Settings::defaults(false);
        s.hostname = Some("mail.example1.com".into());
        Policy::new(&Config::from_settings(s, dir.to_path_buf()))
    }

    #[test]
    fn received_with_keywords() {
        assert_eq!(with_protocol(false, false, false, false), "SMTP");
        assert_eq!(with_protocol(true, false, true, true), "ESMTPSA");
        assert_eq!(with_protocol(true, true, false, false), "UTF8SMTP");
        assert_eq!(with_protocol(true, true, true, false), "UTF8SMTPS");
        assert_eq!(with_protocol(true, true, false, true), "UTF8SMTPA");
        assert_eq!(with_protocol(true, true, true, true), "UTF8SMTPSA");
    }

    fn session(tls_available: bool) -> Session {
        let cfg = SessionConfig {
            hostname: "mail.example1.com".into(),
            max_message_size: 1000,
            spool_room: None,
            max_recipients: 2,
            max_messages: 0,
            max_errors: 3,
            tls_available,
            plaintext_auth: false,
            vrfy: false,
            expn: false,
        };
        let client = Client {
            ip: "127.0.0.5".parse().unwrap(),
            resolve: crate::dns::ClientResolve::Fail,
            submission: false,
            authenticated: None,
        };
        Session::new(cfg, client, false)
    }

    fn line(s: &str) -> LineEvent {
        LineEvent::Line(s.as_bytes().to_vec())
    }

    fn replies(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Send(r) => Some(
                    String::from_utf8_lossy(&r.to_bytes())
                        .trim_end()
                        .to_string(),
                ),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn order_of_commands() {
        // docs/sendmail-compat.md §6.5 texts.
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        let mut s = session(false);
        assert_eq!(
            replies(&s.on_line(line("MAIL FROM:<a@b.c>"), false, &p)),
            ["503 5.0.0 Polite people say HELO first"]
        );
        assert_eq!(
            replies(&s.on_line(line("HELO client.test"), false, &p)),
            ["250 mail.example1.com Hello [127.0.0.5], pleased to meet you"]
        );
        assert_eq!(
            replies(&s.on_line(line("RCPT TO:<x@example1.com>"), false, &p)),
            ["503 5.0.0 Need MAIL before RCPT"]
        );
        assert_eq!(
            replies(&s.on_line(line("DATA"), false, &p)),
            ["503 5.0.0 Need MAIL command"]
        );
        // The fourth error ends the session (max_errors = 3).
        let steps = s.on_line(line("BOGUS"), false, &p);
        assert!(
            replies(&steps)[0].starts_with("421 4.7.0 mail.example1.com Too many bad commands")
        );
        assert!(matches!(steps.last(), Some(Step::Close)));
    }

    #[test]
    fn pipelining_needs_ehlo_and_ends_at_group_enders() {
        // RFC 2920 §3.1; docs/security.md §3 (Postfix smtpd_forbid_unauth_pipelining).
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        let mut s = session(false);
        let steps = s.on_line(line("HELO x.test"), true, &p);
        assert_eq!(
            replies(&steps),
            ["554 5.5.0 Error: SMTP protocol synchronization"]
        );
        assert!(matches!(steps.last(), Some(Step::Close)));
        let mut s = session(false);
        assert!(replies(&s.on_line(line("EHLO x.test"), false, &p))[0].contains("PIPELINING"));
        // MAIL may be followed by more input; DATA may not.
        assert!(
            replies(&s.on_line(line("MAIL FROM:<>"), true, &p))[0]
                .starts_with("250 2.1.0 <>... Sender ok")
        );
        let steps = s.on_line(line("DATA"), true, &p);
        assert_eq!(
            replies(&steps),
            ["554 5.5.0 Error: SMTP protocol synchronization"]
        );
    }

    #[test]
    fn starttls_resets_and_auth_needs_tls() {
        // RFC 3207 §4.2.
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        let mut s = session(true);
        let ehlo = replies(&s.on_line(line("EHLO x.test"), false, &p)).join("\n");
        assert!(ehlo.contains("250-STARTTLS"), "{ehlo}");
        assert!(!ehlo.contains("AUTH"), "AUTH offered before TLS: {ehlo}");
        assert_eq!(
            replies(&s.on_line(line("AUTH PLAIN AGEAYg=="), false, &p)),
            ["530 5.7.0 Must issue a STARTTLS command first"]
        );
        let steps = s.on_line(line("STARTTLS"), false, &p);
        assert_eq!(replies(&steps), ["220 2.0.0 Ready to start TLS"]);
        assert!(matches!(steps.last(), Some(Step::StartTls)));
        s.tls_started();
        // HELO knowledge is gone: MAIL needs a new EHLO.
        assert_eq!(
            replies(&s.on_line(line("MAIL FROM:<a@b.c>"), false, &p)),
            ["503 5.0.0 Polite people say HELO first"]
        );
        let ehlo = replies(&s.on_line(line("EHLO x.test"), false, &p)).join("\n");
        assert!(
            !ehlo.contains("STARTTLS") && ehlo.contains("AUTH PLAIN LOGIN"),
            "{ehlo}"
        );
        let steps = s.on_line(line("AUTH PLAIN AHdobwBwdw=="), false, &p);
        match &steps[0] {
            Step::VerifyAuth { user, password } => {
                assert_eq!((user.as_str(), password.as_slice()), ("who", &b"pw"[..]))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            replies(&s.auth_result(Some(false))),
            ["535 5.7.0 authentication failed"]
        );
    }

    #[test]
    fn null_server_answers_only_harmless_commands() {
        // docs/sendmail-compat.md §6.6.
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        let mut s = session(false);
        s.set_connect(Connect::Reject(crate::maps::access::access_denied()));
        assert!(
            replies(&s.on_line(line("EHLO x.test"), false, &p))[0].contains("ENHANCEDSTATUSCODES")
        );
        assert_eq!(
            replies(&s.on_line(line("MAIL FROM:<a@b.c>"), false, &p)),
            ["550 5.7.1 Access denied"]
        );
        assert_eq!(
            replies(&s.on_line(line("NOOP"), false, &p)),
            ["250 2.0.0 OK"]
        );
    }

    // RFC 1870 §6.1, Postfix's queue_minfree: a SIZE= the spool cannot hold, or a spool with
    // no room at all, gets 452 4.3.1 at MAIL, before the client sends any data.
    #[test]
    fn spool_room_is_checked_at_mail() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        let mut s = session(false);
        s.cfg.spool_room = Some(SpoolRoom::fixed(600));
        s.on_line(line("EHLO x.test"), false, &p);
        assert_eq!(
            replies(&s.on_line(line("MAIL FROM:<a@b.c> SIZE=601"), false, &p)),
            ["452 4.3.1 Insufficient system storage"]
        );
        // Over max_message_size is permanent, and says so first.
        assert!(
            replies(&s.on_line(line("MAIL FROM:<a@b.c> SIZE=5000"), false, &p))[0]
                .starts_with("552 5.2.3")
        );
        for ok in ["MAIL FROM:<a@b.c> SIZE=600", "RSET", "MAIL FROM:<a@b.c>"] {
            assert!(
                replies(&s.on_line(line(ok), false, &p))[0].starts_with("250"),
                "{ok}"
            );
        }
        let mut s = session(false);
        s.cfg.spool_room = Some(SpoolRoom::fixed(0));
        s.on_line(line("EHLO x.test"), false, &p);
        assert_eq!(
            replies(&s.on_line(line("MAIL FROM:<a@b.c>"), false, &p)),
            ["452 4.3.1 Insufficient system storage"]
        );
        // Unknown room (statvfs failed) refuses nothing.
        let mut s = session(false);
        s.cfg.spool_room = Some(SpoolRoom(std::sync::Arc::new(|| None)));
        s.on_line(line("EHLO x.test"), false, &p);
        assert!(
            replies(&s.on_line(line("MAIL FROM:<a@b.c> SIZE=999"), false, &p))[0]
                .starts_with("250")
        );
    }

    #[test]
    fn size_and_recipient_limits() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        let mut s = session(false);
        s.on_line(line("EHLO x.test"), false, &p);
        assert_eq!(
            replies(&s.on_line(line("MAIL FROM:<a@b.c> SIZE=5000"), false, &p)),
            ["552 5.2.3 Message size exceeds fixed maximum message size (1000)"]
        );
        assert!(
            replies(&s.on_line(line("MAIL FROM:<a@b.c> SIZE=500"), false, &p))[0]
                .starts_with("250")
        );
        for _ in 0..2 {
            assert!(
                replies(&s.on_line(line("RCPT TO:<postmaster@example1.com>"), false, &p))[0]
                    .starts_with("250 2.1.5")
            );
        }
        assert_eq!(
            replies(&s.on_line(line("RCPT TO:<postmaster@example1.com>"), false, &p)),
            ["452 4.5.3 Too many recipients"]
        );
        assert_eq!(
            s.data_done(true).unwrap_err().to_bytes(),
            b"552 5.2.3 Message exceeds maximum fixed size (1000)\r\n"
        );
    }
}
