//! The POP3 server's state machine (RFC 1939, 2449 CAPA and response codes, 2595 STLS, 5034
//! AUTH PLAIN), pure: lines in, [`Step`]s out. No sockets, files or clocks, so the unit tests
//! and the fuzz target (`fuzz/fuzz_targets/pop3_session.rs`) drive it directly.
//!
//! The texts are Qpopper's where docs/sendmail-compat.md §10.1 gives them: the greeting with its APOP
//! stamp after two spaces, `+OK who has N visible messages (0 hidden) in B octets.` and
//! `+OK Pop server at HOST signing off.`.

use base64::Engine as _;

use crate::wire::dot;

/// The longest command line accepted. RFC 1939 arguments are at most 40 octets, but an AUTH
/// PLAIN response carries a base64 password, so allow some room.
pub const MAX_LINE: usize = 2048;

/// What the server knows about the connection when the session starts.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub hostname: String,
    /// A certificate is configured, so STLS can be offered.
    pub tls_available: bool,
    /// USER/PASS and AUTH PLAIN are allowed before TLS (`allow_plaintext_auth`).
    pub plaintext_auth: bool,
    /// The `<pid.time@host>` stamp for the greeting and APOP.
    pub apop_stamp: String,
    /// POP3S: TLS from the first byte.
    pub implicit_tls: bool,
    /// Unknown, empty or misplaced commands before the session is closed; 0 = no limit.
    pub max_bad_commands: u32,
}

/// A message as the session sees it: its size on the wire and its unique id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub size: u64,
    pub uid: String,
}

/// What the client proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Password(Vec<u8>),
    /// APOP: the client's MD5 digest of stamp + secret (lower-case hex).
    Apop {
        stamp: String,
        digest: String,
    },
}

/// What the I/O layer must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes (one or more complete replies).
    Send(Vec<u8>),
    /// The `+OK` was sent: start TLS, drop every buffered plaintext byte, then call
    /// [`Session::tls_started`].
    StartTls,
    /// Check the credential and open the maildrop, then call [`Session::login_ok`] or
    /// [`Session::login_failed`].
    Login {
        user: String,
        credential: Credential,
    },
    /// Send `+OK`, then message `index` (0-based), all of it or the headers and `lines` body
    /// lines, encoded with [`encode_message`], then `.`.
    Retrieve { index: usize, lines: Option<u64> },
    /// QUIT in the TRANSACTION state: remove the `deleted` messages (0-based), reply with
    /// [`Session::signing_off`] or an `-ERR`, then close.
    Update { deleted: Vec<usize> },
    /// Close the connection (after any `Send` before it).
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// AUTHORIZATION; `user` is what USER named.
    Authorization {
        user: Option<String>,
    },
    /// An AUTH PLAIN exchange waiting for the client's response line.
    SaslPlain,
    /// A Login step is out; commands wait until the I/O layer answers.
    Checking,
    Transaction,
    Done,
}

pub struct Session {
    cfg: SessionConfig,
    tls: bool,
    state: State,
    user: String,
    /// Shared with the maildrop's index: a login copies nothing.
    messages: std::sync::Arc<Vec<Listed>>,
    deleted: Vec<bool>,
    /// The highest message number touched (Qpopper's LAST).
    last: usize,
    /// Bad commands so far (see [`SessionConfig::max_bad_commands`]).
    bad: u32,
}

fn line(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 2);
    v.extend_from_slice(s.as_bytes());
    v.extend_from_slice(b"\r\n");
    v
}

fn send(s: &str) -> Vec<Step> {
    vec![Step::Send(line(s))]
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl Session {
    pub fn new(cfg: SessionConfig) -> Session {
        let tls = cfg.implicit_tls;
        Session {
            cfg,
            tls,
            state: State::Authorization { user: None },
            user: String::new(),
            messages: Default::default(),
            deleted: Vec::new(),
            last: 0,
            bad: 0,
        }
    }

    /// `+OK Qpopper-style greeting  <stamp>` (two spaces before the stamp, docs/sendmail-compat.md §10.1).
    pub fn greeting(&self) -> Vec<u8> {
        line(&format!(
            "+OK mailtool POP3 server (version {}) at {} starting.  {}",
            env!("CARGO_PKG_VERSION"),
            self.cfg.hostname,
            self.cfg.apop_stamp
        ))
    }

    pub fn signing_off(&self) -> Vec<u8> {
        line(&format!(
            "+OK Pop server at {} signing off.",
            self.cfg.hostname
        ))
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    pub fn in_transaction(&self) -> bool {
        self.state == State::Transaction
    }

    /// The logged-in user (empty before login).
    pub fn user(&self) -> &str {
        &self.user
    }

    fn may_send_password(&self) -> bool {
        self.tls || self.cfg.plaintext_auth
    }

    /// RFC 2595 §4: after the handshake the session is new; a USER sent in plaintext is
    /// forgotten along with the buffered input the I/O layer discarded.
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.state = State::Authorization { user: None };
    }

    /// The I/O layer verified the credential and opened the maildrop.
    pub fn login_ok(
        &mut self,
        user: &str,
        messages: impl Into<std::sync::Arc<Vec<Listed>>>,
    ) -> Vec<Step> {
        let messages = messages.into();
        self.user = user.to_string();
        self.deleted = vec![false; messages.len()];
        self.messages = messages;
        self.last = 0;
        self.state = State::Transaction;
        let n = self.messages.len();
        let octets: u64 = self.messages.iter().map(|m| m.size).sum();
        send(&format!(
            "+OK {user} has {n} visible message{} (0 hidden) in {octets} octets.",
            plural(n)
        ))
    }

    /// The login failed; `reply` is the whole `-ERR …` line without CRLF. The session stays
    /// in AUTHORIZATION (RFC 1939 §7), with USER forgotten.
    pub fn login_failed(&mut self, reply: &str) -> Vec<Step> {
        self.state = State::Authorization { user: None };
        send(reply)
    }

    /// An `-ERR` for a command that is unknown, empty or not valid now; past
    /// `max_bad_commands` the session ends (Dovecot does the same).
    fn bad(&mut self, reply: &str) -> Vec<Step> {
        self.bad += 1;
        let mut steps = send(reply);
        if self.cfg.max_bad_commands > 0 && self.bad >= self.cfg.max_bad_commands {
            self.state = State::Done;
            steps.push(Step::Send(line(
                "-ERR Too many bad commands; closing connection.",
            )));
            steps.push(Step::Close);
        }
        steps
    }

    /// The client's next line, without its line end.
    pub fn on_line(&mut self, raw: &[u8]) -> Vec<Step> {
        if raw.len() > MAX_LINE {
            return self.bad("-ERR Command line too long.");
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::SaslPlain => {
                self.state = State::Authorization { user: None };
                self.sasl_plain_response(raw)
            }
            State::Checking => {
                // The I/O layer never reads while a login is being checked; be safe anyway.
                self.state = State::Checking;
                send("-ERR [SYS/TEMP] Login in progress.")
            }
            State::Done => send("-ERR Session is over."),
            State::Authorization { user } => {
                self.state = State::Authorization { user: user.clone() };
                self.authorization(raw, user)
            }
            State::Transaction => {
                self.state = State::Transaction;
                self.transaction(raw)
            }
        }
    }

    fn capa(&self) -> Vec<Step> {
        let mut s = String::from("+OK Capability list follows\r\n");
        let auth_state = !matches!(self.state, State::Transaction);
        for c in [
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
        ] {
            s.push_str(c);
            s.push_str("\r\n");
        }
        if auth_state && self.may_send_password() {
            s.push_str("USER\r\nSASL PLAIN\r\n");
        }
        if auth_state && self.cfg.tls_available && !self.tls {
            s.push_str("STLS\r\n");
        }
        s.push_str(&format!(
            "IMPLEMENTATION mailtool-{}\r\n.\r\n",
            env!("CARGO_PKG_VERSION")
        ));
        vec![Step::Send(s.into_bytes())]
    }

    fn plaintext_refused() -> Vec<Step> {
        send("-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS.")
    }

    fn authorization(&mut self, raw: &[u8], user: Option<String>) -> Vec<Step> {
        let (cmd, arg) = split(raw);
        match cmd.as_str() {
            "CAPA" => self.capa(),
            "QUIT" => {
                self.state = State::Done;
                vec![Step::Send(self.signing_off()), Step::Close]
            }
            "USER" => {
                if !self.may_send_password() {
                    return Self::plaintext_refused();
                }
                let name = arg.trim();
                if name.is_empty() || name.len() > 255 || name.contains(char::is_whitespace) {
                    return send("-ERR Bad user name.");
                }
                self.state = State::Authorization {
                    user: Some(name.to_string()),
                };
                send(&format!("+OK Password required for {name}."))
            }
            "PASS" => {
                if !self.may_send_password() {
                    self.state = State::Authorization { user: None };
                    return Self::plaintext_refused();
                }
                let Some(user) = user else {
                    return send("-ERR No user name given; send USER first.");
                };
                // The password is the rest of the line: RFC 1939 allows spaces in it.
                let password = raw.get(5..).unwrap_or_default().to_vec();
                self.state = State::Checking;
                vec![Step::Login {
                    user,
                    credential: Credential::Password(password),
                }]
            }
            "APOP" => {
                let mut parts = arg.split(' ').filter(|p| !p.is_empty());
                let (Some(name), Some(digest), None) = (parts.next(), parts.next(), parts.next())
                else {
                    return send("-ERR Usage: APOP name digest");
                };
                let digest = digest.to_ascii_lowercase();
                if digest.len() != 32 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return send("-ERR [AUTH] Bad APOP digest.");
                }
                self.state = State::Checking;
                vec![Step::Login {
                    user: name.to_string(),
                    credential: Credential::Apop {
                        stamp: self.cfg.apop_stamp.clone(),
                        digest,
                    },
                }]
            }
            "AUTH" => {
                let mut parts = arg.split(' ').filter(|p| !p.is_empty());
                match parts.next() {
                    // RFC 1734's listing form, which some clients still probe with.
                    None => vec![Step::Send(b"+OK\r\nPLAIN\r\n.\r\n".to_vec())],
                    Some(m) if m.eq_ignore_ascii_case("PLAIN") => {
                        if !self.may_send_password() {
                            return Self::plaintext_refused();
                        }
                        match parts.next() {
                            Some(initial) => self.sasl_plain_response(initial.as_bytes()),
                            None => {
                                self.state = State::SaslPlain;
                                vec![Step::Send(b"+ \r\n".to_vec())]
                            }
                        }
                    }
                    Some(_) => send("-ERR Unrecognized authentication type."),
                }
            }
            "STLS" => {
                if self.tls {
                    return send("-ERR Command not permitted when TLS active.");
                }
                if !self.cfg.tls_available {
                    return send("-ERR STLS is not available: no certificate configured.");
                }
                self.state = State::Authorization { user: None };
                vec![
                    Step::Send(line("+OK Begin TLS negotiation.")),
                    Step::StartTls,
                ]
            }
            "" => self.bad("-ERR Null command."),
            _ => self.bad(&format!(
                "-ERR Unknown AUTHORIZATION state command: {}",
                printable(&cmd)
            )),
        }
    }

    /// RFC 4616 PLAIN: `authzid NUL authcid NUL password`, base64; `=` is empty, `*` cancels.
    fn sasl_plain_response(&mut self, raw: &[u8]) -> Vec<Step> {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim();
        if text == "*" {
            return send("-ERR Authentication cancelled.");
        }
        let decoded = if text == "=" {
            Vec::new()
        } else {
            match base64::engine::general_purpose::STANDARD.decode(text) {
                Ok(d) => d,
                Err(_) => return send("-ERR [AUTH] Invalid base64 in AUTH PLAIN."),
            }
        };
        let mut parts = decoded.split(|&b| b == 0);
        let (Some(authz), Some(authc), Some(pass), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return send("-ERR [AUTH] Malformed AUTH PLAIN response.");
        };
        let Ok(user) = std::str::from_utf8(authc) else {
            return send("-ERR [AUTH] Malformed AUTH PLAIN response.");
        };
        if user.is_empty() || (!authz.is_empty() && authz != authc) {
            return send("-ERR [AUTH] Authentication failed.");
        }
        self.state = State::Checking;
        vec![Step::Login {
            user: user.to_string(),
            credential: Credential::Password(pass.to_vec()),
        }]
    }

    /// `n` as a live message: its 0-based index, or the `-ERR` to send.
    fn message(&self, arg: &str) -> Result<usize, Vec<Step>> {
        let n: usize = match arg.trim().parse() {
            Ok(n) => n,
            Err(_) => {
                return Err(send(&format!(
                    "-ERR Bad message number: {}",
                    printable(arg)
                )));
            }
        };
        if n == 0 || n > self.messages.len() {
            return Err(send(&format!("-ERR Message {n} does not exist.")));
        }
        if self.deleted[n - 1] {
            return Err(send(&format!("-ERR Message {n} has been deleted.")));
        }
        Ok(n - 1)
    }

    /// Messages not marked deleted, and their octets (STAT, LIST).
    fn live_totals(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, o), (_, m)| (n + 1, o + m.size))
    }

    fn live(&self) -> impl Iterator<Item = (usize, &Listed)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
    }

    fn transaction(&mut self, raw: &[u8]) -> Vec<Step> {
        let (cmd, arg) = split(raw);
        let args: Vec<&str> = arg.split(' ').filter(|p| !p.is_empty()).collect();
        match cmd.as_str() {
            "STAT" => {
                let (n, o) = self.live_totals();
                send(&format!("+OK {n} {o}"))
            }
            "LIST" | "UIDL" => {
                let uidl = cmd == "UIDL";
                let item = |i: usize, m: &Listed| {
                    if uidl {
                        format!("{} {}", i + 1, m.uid)
                    } else {
                        format!("{} {}", i + 1, m.size)
                    }
                };
                match args.first() {
                    Some(a) => match self.message(a) {
                        Ok(i) => send(&format!("+OK {}", item(i, &self.messages[i]))),
                        Err(e) => e,
                    },
                    None => {
                        let mut s = if uidl {
                            String::from("+OK Unique-ID listing follows\r\n")
                        } else {
                            let (n, o) = self.live_totals();
                            format!("+OK {n} visible message{} ({o} octets)\r\n", plural(n))
                        };
                        for (i, m) in self.live() {
                            s.push_str(&item(i, m));
                            s.push_str("\r\n");
                        }
                        s.push_str(".\r\n");
                        vec![Step::Send(s.into_bytes())]
                    }
                }
            }
            "RETR" => match self.message(args.first().copied().unwrap_or("")) {
                Ok(i) => {
                    self.last = self.last.max(i + 1);
                    vec![Step::Retrieve {
                        index: i,
                        lines: None,
                    }]
                }
                Err(e) => e,
            },
            "TOP" => {
                let (Some(n), Some(k), None) = (args.first(), args.get(1), args.get(2)) else {
                    return send("-ERR Usage: TOP msg lines");
                };
                let Ok(k) = k.parse::<u64>() else {
                    return send(&format!("-ERR Bad line count: {}", printable(k)));
                };
                match self.message(n) {
                    Ok(i) => vec![Step::Retrieve {
                        index: i,
                        lines: Some(k),
                    }],
                    Err(e) => e,
                }
            }
            "DELE" => match self.message(args.first().copied().unwrap_or("")) {
                Ok(i) => {
                    self.deleted[i] = true;
                    self.last = self.last.max(i + 1);
                    send(&format!("+OK Message {} has been deleted.", i + 1))
                }
                Err(e) => e,
            },
            "NOOP" => send("+OK"),
            "RSET" => {
                self.deleted.iter_mut().for_each(|d| *d = false);
                self.last = 0;
                let n = self.messages.len();
                let o: u64 = self.messages.iter().map(|m| m.size).sum();
                send(&format!(
                    "+OK Maildrop has {n} visible message{} (0 hidden) ({o} octets).",
                    plural(n)
                ))
            }
            "LAST" => send(&format!("+OK {}", self.last)),
            "CAPA" => self.capa(),
            "QUIT" => {
                self.state = State::Done;
                let deleted = (0..self.messages.len())
                    .filter(|&i| self.deleted[i])
                    .collect();
                vec![Step::Update { deleted }]
            }
            "" => self.bad("-ERR Null command."),
            "USER" | "PASS" | "APOP" | "AUTH" | "STLS" => {
                self.bad("-ERR Command not valid in the TRANSACTION state.")
            }
            _ => self.bad(&format!(
                "-ERR Unknown TRANSACTION state command: {}",
                printable(&cmd)
            )),
        }
    }
}

/// The command keyword (upper-cased) and the rest of the line after one space.
fn split(raw: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(raw);
    let (cmd, arg) = text.split_once(' ').unwrap_or((&text, ""));
    (cmd.to_ascii_uppercase(), arg.to_string())
}

/// A command word as it may appear in a reply: at most 40 printable characters.
fn printable(s: &str) -> String {
    s.chars()
        .take(40)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// Appends a stored message (LF or CRLF line ends) as POP3 sends it: CRLF line ends, lines
/// that begin with `.` stuffed with another (RFC 1939 §3), a final line end added if missing.
/// `top` keeps the headers, the blank line and that many body lines (TOP). Does not add the
/// terminating `.` line.
pub fn encode_message(content: &[u8], top: Option<u64>, out: &mut Vec<u8>) {
    out.reserve(content.len() + content.len() / 32 + 8);
    MessageEncoder::new(top).lines(content, out);
}

/// [`encode_message`] in pieces, for messages too large to hold in memory at once: feed it
/// whole lines (the last piece may end without a line end), in order.
#[derive(Debug, Clone)]
pub struct MessageEncoder {
    top: Option<u64>,
    in_body: bool,
    body_lines: u64,
    done: bool,
}

impl MessageEncoder {
    pub fn new(top: Option<u64>) -> MessageEncoder {
        MessageEncoder {
            top,
            in_body: false,
            body_lines: 0,
            done: false,
        }
    }

    /// Whether TOP's line count is reached: the rest of the message is not needed.
    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn lines(&mut self, lines: &[u8], out: &mut Vec<u8>) {
        for l in lines.split_inclusive(|&b| b == b'\n') {
            if self.done {
                return;
            }
            let text = l.strip_suffix(b"\n").unwrap_or(l);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if self.in_body {
                if let Some(k) = self.top
                    && self.body_lines >= k
                {
                    self.done = true;
                    return;
                }
                self.body_lines += 1;
            }
            dot::push_crlf_line(text, out);
            if !self.in_body && text.is_empty() {
                self.in_body = true;
            }
        }
    }
}

/// The size [`encode_message`] gives without `top`, minus the stuffing dots, which RFC 1939
/// leaves out of the "exact size".
pub fn wire_size(content: &[u8]) -> u64 {
    let mut w = WireSize::default();
    w.feed(content);
    w.finish()
}

/// [`wire_size`] fed in pieces, so a large Maildir file is measured without being held whole:
/// every line costs its text (without the LF and one CR before it) plus CRLF.
#[derive(Debug, Default, Clone)]
pub struct WireSize {
    size: u64,
    /// The last byte fed was a CR (dropped if an LF follows).
    cr: bool,
    /// Bytes of the current line so far.
    in_line: bool,
}

impl WireSize {
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\n' => {
                    // The CR before it was counted as text; it is part of the line end instead.
                    if self.cr {
                        self.size -= 1;
                    }
                    self.size += 2;
                    self.in_line = false;
                }
                _ => {
                    self.size += 1;
                    self.in_line = true;
                }
            }
            self.cr = b == b'\r';
        }
    }

    pub fn finish(self) -> u64 {
        match (self.in_line, self.cr) {
            // A last line without its LF still loses one CR at its end.
            (true, true) => self.size + 1,
            (true, false) => self.size + 2,
            (false, _) => self.size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_size_in_pieces_is_the_line_count() {
        let reference = |content: &[u8]| -> u64 {
            content
                .split_inclusive(|&b| b == b'\n')
                .map(|l| {
                    let text = l.strip_suffix(b"\n").unwrap_or(l);
                    text.strip_suffix(b"\r").unwrap_or(text).len() as u64 + 2
                })
                .sum()
        };
        for text in [
            &b""[..],
            b"a",
            b"\n",
            b"\r\n",
            b"\r",
            b"a\r\r\nb\nc\r",
            b"x\n\n\r\n\ry",
        ] {
            for split in 0..=text.len() {
                let mut w = WireSize::default();
                w.feed(&text[..split]);
                w.feed(&text[split..]);
                assert_eq!(w.finish(), reference(text), "{text:?} at {split}");
            }
        }
    }

    fn cfg(tls_available: bool, plaintext_auth: bool) -> SessionConfig {
        SessionConfig {
            hostname: "mail.example1.com".into(),
            tls_available,
            plaintext_auth,
            apop_stamp: "<42.1700000000@mail.example1.com>".into(),
            implicit_tls: false,
            max_bad_commands: 0,
        }
    }

    // Dovecot disconnects after too many bad commands; so do we (issue 16), counting unknown,
    // empty and misplaced commands, in either state, but not a wrong message number.
    #[test]
    fn bad_commands_close_the_session() {
        let mut c = cfg(false, true);
        c.max_bad_commands = 3;
        let mut s = Session::new(c);
        assert!(text(&s.on_line(b"BOGUS")).starts_with("-ERR Unknown"));
        assert!(text(&s.on_line(b"")).starts_with("-ERR Null"));
        let last = s.on_line(b"XYZZY");
        assert!(
            text(&last).contains("-ERR Too many bad commands"),
            "{}",
            text(&last)
        );
        assert_eq!(last.last(), Some(&Step::Close));
        // With no limit, nothing closes.
        let mut s = Session::new(cfg(false, true));
        for _ in 0..1000 {
            assert!(!s.on_line(b"BOGUS").contains(&Step::Close));
        }
    }

    fn text(steps: &[Step]) -> String {
        steps
            .iter()
            .map(|s| match s {
                Step::Send(b) => String::from_utf8_lossy(b).into_owned(),
                other => format!("{other:?}\n"),
            })
            .collect()
    }

    fn logged_in() -> Session {
        let mut s = Session::new(cfg(true, true));
        s.on_line(b"USER who");
        let steps = s.on_line(b"PASS pw with spaces");
        assert_eq!(
            steps,
            vec![Step::Login {
                user: "who".into(),
                credential: Credential::Password(b"pw with spaces".to_vec())
            }]
        );
        let msgs = vec![
            Listed {
                size: 120,
                uid: "a1".into(),
            },
            Listed {
                size: 80,
                uid: "b2".into(),
            },
        ];
        let r = text(&s.login_ok("who", msgs));
        // docs/sendmail-compat.md §10.1: Qpopper's login reply.
        assert_eq!(
            r,
            "+OK who has 2 visible messages (0 hidden) in 200 octets.\r\n"
        );
        s
    }

    #[test]
    fn greeting_and_signing_off_are_qpoppers() {
        let s = Session::new(cfg(false, true));
        let g = String::from_utf8(s.greeting()).unwrap();
        assert!(g.starts_with("+OK "), "{g}");
        assert!(
            g.ends_with("at mail.example1.com starting.  <42.1700000000@mail.example1.com>\r\n"),
            "{g}"
        );
        assert_eq!(
            s.signing_off(),
            b"+OK Pop server at mail.example1.com signing off.\r\n"
        );
    }

    #[test]
    fn stat_list_uidl_dele_rset_and_update() {
        let mut s = logged_in();
        assert_eq!(text(&s.on_line(b"STAT")), "+OK 2 200\r\n");
        assert_eq!(
            text(&s.on_line(b"LIST")),
            "+OK 2 visible messages (200 octets)\r\n1 120\r\n2 80\r\n.\r\n"
        );
        assert_eq!(text(&s.on_line(b"uidl 2")), "+OK 2 b2\r\n");
        assert_eq!(
            text(&s.on_line(b"DELE 1")),
            "+OK Message 1 has been deleted.\r\n"
        );
        assert_eq!(
            text(&s.on_line(b"RETR 1")),
            "-ERR Message 1 has been deleted.\r\n"
        );
        assert_eq!(text(&s.on_line(b"STAT")), "+OK 1 80\r\n");
        assert_eq!(
            text(&s.on_line(b"UIDL")),
            "+OK Unique-ID listing follows\r\n2 b2\r\n.\r\n"
        );
        assert_eq!(text(&s.on_line(b"LAST")), "+OK 1\r\n");
        assert!(text(&s.on_line(b"RSET")).starts_with("+OK Maildrop has 2 visible messages"));
        assert_eq!(text(&s.on_line(b"STAT")), "+OK 2 200\r\n");
        s.on_line(b"DELE 2");
        assert_eq!(
            text(&s.on_line(b"LIST 3")),
            "-ERR Message 3 does not exist.\r\n"
        );
        assert_eq!(s.on_line(b"QUIT"), vec![Step::Update { deleted: vec![1] }]);
    }

    #[test]
    fn retr_and_top_become_retrieve_steps() {
        let mut s = logged_in();
        assert_eq!(
            s.on_line(b"RETR 2"),
            vec![Step::Retrieve {
                index: 1,
                lines: None
            }]
        );
        assert_eq!(
            s.on_line(b"TOP 1 0"),
            vec![Step::Retrieve {
                index: 0,
                lines: Some(0)
            }]
        );
        assert!(text(&s.on_line(b"TOP 1")).starts_with("-ERR"));
        assert!(text(&s.on_line(b"RETR x")).starts_with("-ERR"));
    }

    #[test]
    fn plaintext_passwords_are_refused_without_tls_unless_allowed() {
        let mut s = Session::new(cfg(true, false));
        let capa = text(&s.on_line(b"CAPA"));
        assert!(
            capa.contains("STLS\r\n") && !capa.contains("USER\r\n"),
            "{capa}"
        );
        assert!(text(&s.on_line(b"USER who")).starts_with("-ERR [AUTH]"));
        assert!(text(&s.on_line(b"PASS pw")).starts_with("-ERR [AUTH]"));
        assert!(text(&s.on_line(b"AUTH PLAIN AHdobwBwdw==")).starts_with("-ERR [AUTH]"));
        // APOP never sends the secret, so it is allowed.
        assert!(matches!(
            s.on_line(b"APOP who 0123456789abcdef0123456789ABCDEF")[0],
            Step::Login { .. }
        ));
    }

    #[test]
    fn stls_forgets_user_and_is_not_offered_twice() {
        let mut s = Session::new(cfg(true, true));
        s.on_line(b"USER who");
        assert_eq!(
            s.on_line(b"STLS"),
            vec![
                Step::Send(b"+OK Begin TLS negotiation.\r\n".to_vec()),
                Step::StartTls
            ]
        );
        s.tls_started();
        assert!(text(&s.on_line(b"PASS pw")).starts_with("-ERR No user name"));
        assert!(!text(&s.on_line(b"CAPA")).contains("STLS"));
        assert!(text(&s.on_line(b"STLS")).starts_with("-ERR"));
        let mut plain = Session::new(cfg(false, true));
        assert!(text(&plain.on_line(b"STLS")).starts_with("-ERR"));
    }

    #[test]
    fn auth_plain_with_and_without_initial_response() {
        let mut s = Session::new(cfg(false, true));
        // "\0who\0pw"
        let login = Step::Login {
            user: "who".into(),
            credential: Credential::Password(b"pw".to_vec()),
        };
        assert_eq!(s.on_line(b"AUTH PLAIN AHdobwBwdw=="), vec![login.clone()]);
        s.login_failed("-ERR [AUTH] Authentication failed.");
        assert_eq!(text(&s.on_line(b"AUTH PLAIN")), "+ \r\n");
        assert_eq!(s.on_line(b"AHdobwBwdw=="), vec![login]);
        s.login_failed("-ERR [AUTH] Authentication failed.");
        s.on_line(b"AUTH PLAIN");
        assert!(text(&s.on_line(b"*")).starts_with("-ERR Authentication cancelled"));
        // An authorization identity other than the user is refused.
        assert!(text(&s.on_line(b"AUTH PLAIN b3RoZXIAd2hvAHB3")).starts_with("-ERR [AUTH]"));
        assert!(text(&s.on_line(b"AUTH CRAM-MD5")).starts_with("-ERR"));
    }

    #[test]
    fn wrong_state_and_unknown_commands() {
        let mut s = Session::new(cfg(false, true));
        assert!(text(&s.on_line(b"STAT")).starts_with("-ERR Unknown AUTHORIZATION"));
        assert!(text(&s.on_line(b"PASS x")).starts_with("-ERR No user"));
        assert_eq!(
            s.on_line(b"QUIT")[1],
            Step::Close,
            "QUIT in AUTHORIZATION just closes"
        );
        let mut t = logged_in();
        assert!(text(&t.on_line(b"USER x")).starts_with("-ERR Command not valid"));
        assert!(text(&t.on_line(&[b'X'; 3000])).starts_with("-ERR Command line too long"));
    }

    #[test]
    fn encoding_stuffs_dots_and_uses_crlf() {
        let mut out = Vec::new();
        encode_message(b"Subject: x\n\n.dot\nline\r\nlast", None, &mut out);
        assert_eq!(out, b"Subject: x\r\n\r\n..dot\r\nline\r\nlast\r\n");
        assert_eq!(wire_size(b"Subject: x\n\n.dot\nline\r\nlast"), 32);
        let mut top = Vec::new();
        encode_message(b"A: 1\nB: 2\n\nb1\nb2\nb3\n", Some(1), &mut top);
        assert_eq!(top, b"A: 1\r\nB: 2\r\n\r\nb1\r\n");
        let mut none = Vec::new();
        encode_message(b"A: 1\n\nb1\n", Some(0), &mut none);
        assert_eq!(none, b"A: 1\r\n\r\n");
    }

    #[test]
    fn encoding_in_pieces_is_the_same() {
        let msg = b"A: 1\r\nB: 2\n\n.one\ntwo\r\n..three\nfour\nno end";
        for top in [None, Some(0), Some(2), Some(9)] {
            let mut whole = Vec::new();
            encode_message(msg, top, &mut whole);
            // Split after every line end, as the server does with its read chunks.
            let mut pieces = Vec::new();
            let mut e = MessageEncoder::new(top);
            for l in msg.split_inclusive(|&b| b == b'\n') {
                e.lines(l, &mut pieces);
            }
            assert_eq!(pieces, whole, "top {top:?}");
        }
    }

    #[test]
    fn fuzz_invariants_hold_on_samples() {
        crate::fuzz::pop3_session::invariants(
            b"\x03USER ab\nPASS x\nSTAT\nLIST\nRETR 1\nDELE 2\nUIDL\nQUIT\n",
        );
        crate::fuzz::pop3_session::invariants(b"\x01STLS\nAUTH PLAIN\n=\nAPOP a 0123\n.\n..\n");
        crate::fuzz::pop3_session::invariants(b"");
    }
}
