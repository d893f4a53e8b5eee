//! The pure SMTP codec: bytes in, events out. No sockets, no async, no policy.
//!
//! Four pieces, each usable on its own:
//!
//! * [`LineReader`] frames command lines (RFC 5321 §2.3.8, §4.1.1, §4.5.3.1.4).
//! * [`parse_command`] turns one line into a [`Command`], with sendmail's
//!   syntax-error texts (docs/sendmail-compat.md §6.5).
//! * [`Reply`] writes replies, with builders for sendmail's fixed texts.
//! * [`DataReader`] reads the DATA stream: dot-unstuffing (RFC 5321 §4.5.2),
//!   and **only `CRLF . CRLF` ends the message** (SMTP smuggling,
//!   CVE-2023-51764/51765/51766; docs/security.md §3).
//!
//! # Line endings: the decisions
//!
//! RFC 5321 §2.3.8 forbids a bare CR or bare LF from the client, and
//! §4.1.1.4 forbids treating `<LF>.<LF>` as the end of data. Servers differ in
//! what they do instead; this module picks, per mode:
//!
//! **Command mode** (sendmail 8.18 / Postfix `smtpd_forbid_bare_newline=reject`
//! style): a command line must end in CRLF and contain no other CR.
//! [`LineReader`] frames on LF (so an LF-only client gets an immediate error
//! instead of hanging until the command timeout) and reports
//! [`LineEvent::BareLf`] for a line ended by a lone LF and [`LineEvent::BareCr`]
//! for a CRLF-ended line that contains a CR elsewhere. The line's content is
//! not returned: the server must not execute it. Suggested reply:
//! [`Reply::bare_lf`] / [`Reply::bare_cr`] (Postfix's texts) and, like Postfix
//! and sendmail 8.18, closing the connection. Command mode is not where
//! smuggling happens (the relay in front of us wrote those commands itself),
//! so the point here is strictness, not safety.
//!
//! **DATA mode** (Postfix `normalize` style, the 3.9 default): a message
//! containing bare CR/LF is accepted, but
//!
//! * only a real `CRLF . CRLF` ends it (the `.` must be at the very start of
//!   the data or right after a CRLF);
//! * a bare LF is stored as CRLF, so that every consumer of the stored message
//!   (our outbound SMTP client dot-stuffs lines, mbox writes lines) sees a
//!   normal line and handles a leading `.` correctly — no bare LF ever leaves
//!   this server, so we cannot be the *outbound* half of a smuggling pair;
//! * a bare CR (a CR not followed by LF) is stored as a **space**, like
//!   sendmail 8.18 `srv_features` `u2` and Postfix `cleanup_replace_stray_cr_lf`.
//!   Unlike LF-only line ends (a common bug of Unix scripts, where the sender
//!   clearly meant "new line"), a lone CR has no legitimate meaning today, and
//!   a space can neither start a line nor form an end marker;
//! * **line-start status only follows a real CRLF.** This governs both end
//!   detection and dot-unstuffing. A `.` after a bare LF is therefore plain
//!   content and is *not* unstuffed: `x\n.\nmail FROM:…` is stored as
//!   `x\r\n.\r\nmail FROM:…`. That stored "." line is harmless because every
//!   writer of stored mail stuffs lines beginning with "." again. Treating the
//!   bare-LF line as a line start for unstuffing but not for ending (Postfix's
//!   choice) would make the two rules disagree, and a disagreement between two
//!   parsers of the same bytes is exactly what smuggling exploits.
//! * NUL and other octets are kept as they are (8BITMIME/binary content is the
//!   business of later stages).
//!
//! [`DataState::Done`] reports whether a bare CR or LF was seen, so a
//! `reject`-style server can still refuse the message after its end.
//!
//! # Non-UTF-8 in commands
//!
//! Arguments are returned as `String`. Valid UTF-8 (which SMTPUTF8, RFC 6531,
//! allows in addresses) passes through unchanged; whether it is acceptable is
//! the address parser's and the server's decision (SMTPUTF8 given or not).
//! Arguments of a known verb that are not UTF-8, or contain NUL, can never be
//! valid, so they become [`SyntaxError::InvalidCharacters`]
//! (`501 5.5.2 Invalid characters in parameters`) instead of being passed on
//! lossily. An unknown verb keeps the whole line, lossily decoded, only to be
//! echoed (sanitized) in `500 5.5.1 Command unrecognized: "…"`.
//!
//! # How a server drives this (pipelining, DATA, STARTTLS)
//!
//! ```text
//! loop {
//!     let n = socket.read(&mut buf)?;           // bounded read, e.g. 4 KiB
//!     lines.feed(&buf[..n]);
//!     loop {
//!         if let Some(data) = &mut data_reader { // in DATA
//!             let (used, st) = data.feed(lines.buffered_bytes());
//!             lines.consume(used);
//!             if st == DataState::NeedMore { break }
//!             // end of data: reply 250/552; bytes left in `lines` are
//!             // commands pipelined after the end (RFC 2920).
//!         }
//!         match lines.next_line() { None => break, Some(ev) => … }
//!     }
//! }
//! ```
//!
//! After replying `220 2.0.0 Ready to start TLS`, call
//! [`LineReader::discard_buffered`]: plaintext sent after `STARTTLS` must never
//! be executed inside TLS (CVE-2011-0411; RFC 3207 §4.2). [`LineReader::buffered`]
//! also tells the server whether the client talked before the greeting
//! (greet_pause, docs/sendmail-compat.md §6.5) or pipelined without PIPELINING.
//!
//! Memory: the reader holds the bytes fed and not yet taken; a line being
//! accumulated is capped at 512 octets (excess is dropped as soon as
//! [`LineReader::next_line`] sees it), so a server that drains the reader after
//! every bounded read holds O(read size + 512) bytes. [`DataReader`] never
//! stores more than `max_size` bytes (when `max_size > 0`).

use std::fmt;
use std::net::IpAddr;

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
pub const MAX_COMMAND_LINE: usize = 512;
/// RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets including CRLF.
pub const MAX_REPLY_LINE: usize = 512;
/// sendmail's `MAXSHORTSTR`: client text echoed in replies is shortened to
/// this many characters (`first 100...last 100`), which keeps every reply
/// line below [`MAX_REPLY_LINE`].
pub const MAX_SHORT_STR: usize = 203;

// ---------------------------------------------------------------------------
// Command line framing
// ---------------------------------------------------------------------------

/// One framed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEvent {
    /// A well-formed line, without its CRLF.
    Line(Vec<u8>),
    /// The line was longer than the limit (512 octets including CRLF for SMTP). It has
    /// been discarded through its terminating LF. Reply `500 5.5.2 Line too long`.
    TooLong,
    /// The line ended in a lone LF (RFC 5321 §2.3.8). Content withheld.
    BareLf,
    /// The line ended in CRLF but contained another CR. Content withheld.
    BareCr,
}

/// Frames command lines out of a byte stream. See the module docs for the
/// line-ending rules.
#[derive(Debug)]
pub struct LineReader {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf` (avoids shifting on every line).
    pos: usize,
    /// We are inside a too-long line and drop bytes until its LF.
    discarding: bool,
    /// The longest line, its line end included.
    max: usize,
    /// Any LF ends a line and a CR before it is dropped (POP3); otherwise only CRLF does
    /// (SMTP: [`LineEvent::BareLf`], [`LineEvent::BareCr`]).
    lenient: bool,
}

impl Default for LineReader {
    fn default() -> Self {
        LineReader {
            buf: Vec::new(),
            pos: 0,
            discarding: false,
            max: MAX_COMMAND_LINE,
            lenient: false,
        }
    }
}

impl LineReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// POP3's framing: lines of up to `max` octets with their line end, ended by CRLF or a
    /// bare LF; never [`LineEvent::BareLf`] or [`LineEvent::BareCr`].
    pub fn lenient(max: usize) -> Self {
        LineReader {
            max,
            lenient: true,
            ..Self::default()
        }
    }

    /// Append bytes received from the client. Framing happens lazily in
    /// [`next_line`](Self::next_line), so the raw bytes stay available for
    /// [`DataReader`] and for [`discard_buffered`](Self::discard_buffered).
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line event, or `None` when more input is needed.
    pub fn next_line(&mut self) -> Option<LineEvent> {
        loop {
            let avail = &self.buf[self.pos..];
            if self.discarding {
                // Rest of a too-long line: drop through the next LF. Any LF
                // ends it (we frame on LF), and the event is reported once.
                return match avail.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        self.pos += i + 1;
                        self.discarding = false;
                        self.compact_if_empty();
                        Some(LineEvent::TooLong)
                    }
                    None => {
                        self.buf.clear();
                        self.pos = 0;
                        None
                    }
                };
            }
            // Only the first `max` octets can hold a legal terminator.
            let window = &avail[..avail.len().min(self.max)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let line = &avail[..i];
                    let event = match line.split_last() {
                        Some((b'\r', content)) if self.lenient => LineEvent::Line(content.to_vec()),
                        _ if self.lenient => LineEvent::Line(line.to_vec()),
                        Some((b'\r', content)) if content.contains(&b'\r') => LineEvent::BareCr,
                        Some((b'\r', content)) => LineEvent::Line(content.to_vec()),
                        _ => LineEvent::BareLf,
                    };
                    self.pos += i + 1;
                    self.compact_if_empty();
                    return Some(event);
                }
                None if window.len() >= self.max => {
                    // `max` octets without LF: with its terminator the line
                    // would be longer. Drop what we have now so an endless
                    // line costs no memory.
                    self.pos += window.len();
                    self.discarding = true;
                }
                None => return None,
            }
        }
    }

    /// Bytes received and not yet returned as a line (including a partial
    /// line). Non-zero right after a command that must be the last of its
    /// group means the client pipelined (RFC 2920 §3.1); non-zero before the
    /// greeting means it talked first.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unconsumed raw bytes (for handing to [`DataReader::feed`]).
    pub fn buffered_bytes(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Mark `n` raw bytes as used (by [`DataReader`]). Call only at a line
    /// boundary, i.e. right after a line event; it resets the too-long state.
    pub fn consume(&mut self, n: usize) {
        self.pos += n.min(self.buffered());
        self.discarding = false;
        self.compact_if_empty();
    }

    /// Throw away everything buffered and any partial line; returns how many
    /// bytes were dropped. Used after `220 Ready to start TLS` (RFC 3207 §4.2,
    /// CVE-2011-0411) and for pre-greeting traffic.
    pub fn discard_buffered(&mut self) -> usize {
        let n = self.buffered();
        self.buf.clear();
        self.pos = 0;
        self.discarding = false;
        n
    }

    /// Take the unconsumed raw bytes out of the reader.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let out = self.buf[self.pos..].to_vec();
        self.discard_buffered();
        out
    }

    fn compact_if_empty(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }
}

// ---------------------------------------------------------------------------
// Command parsing
// ---------------------------------------------------------------------------

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Helo(String),
    Ehlo(String),
    /// Text after `FROM:` (spaces after the colon skipped): path and params.
    Mail(String),
    /// Text after `TO:` (spaces after the colon skipped): path and params.
    Rcpt(String),
    Data,
    Rset,
    /// NOOP; RFC 5321 allows an argument, which is ignored.
    Noop,
    Quit,
    Help(Option<String>),
    /// May be empty: a `novrfy` server answers 252 before looking at it, as
    /// sendmail does; otherwise reply [`Reply::argument_required`].
    Vrfy(String),
    /// May be empty, see [`Command::Vrfy`].
    Expn(String),
    StartTls,
    /// Mechanism as typed (SASL names compare case-insensitively).
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    /// A blank line. sendmail answers it like an unknown command.
    Empty,
    /// Unknown verb: the whole line (lossy UTF-8), for
    /// [`Reply::unrecognized`].
    Unknown(String),
    Syntax(SyntaxError),
}

/// A known verb with bad arguments. `Display` is the reply text; the code is
/// [`SyntaxError::code`]; [`Reply::syntax`] builds the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// HELO/EHLO without argument; `verb` as the client typed it.
    #[error("5.0.0 {verb} requires domain address")]
    HeloRequiresDomain { verb: String },
    /// MAIL without `FROM:` / RCPT without `TO:` (sendmail's `skipword`);
    /// `args` is the text after the verb, already sanitized and shortened.
    #[error("5.5.2 Syntax error in parameters scanning \"{args}\"")]
    ParamScan { args: String },
    /// DATA, RSET, QUIT, STARTTLS take no parameters (RFC 3207 §4 text).
    #[error("5.5.4 Syntax error (no parameters allowed)")]
    NoParametersAllowed { verb: String },
    #[error("5.5.2 AUTH mechanism must be specified")]
    AuthMechanismRequired,
    #[error("5.5.4 Syntax error in parameters")]
    AuthTooManyArguments,
    /// Arguments of a known verb that are not UTF-8 or contain NUL. UTF-8 is
    /// what SMTPUTF8 (RFC 6531) allows; anything else cannot be a valid
    /// argument, so it is refused here rather than passed on lossily.
    #[error("5.5.2 Invalid characters in parameters")]
    InvalidCharacters { verb: String },
}

impl SyntaxError {
    /// All syntax errors are `501` (RFC 5321 §4.2.2).
    pub fn code(&self) -> u16 {
        501
    }
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_wsp(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_wsp(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_wsp(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// Parse one command line (without CRLF), as sendmail's `smtp()` does: skip
/// leading white space, the verb runs to the next white space, the rest
/// (trimmed of surrounding white space) are the arguments.
pub fn parse_command(line: &[u8]) -> Command {
    let trimmed = trim_wsp(line);
    if trimmed.is_empty() {
        return Command::Empty;
    }
    let verb_end = trimmed
        .iter()
        .position(|&b| is_wsp(b))
        .unwrap_or(trimmed.len());
    let (verb, rest) = trimmed.split_at(verb_end);
    let args = trim_wsp(rest);
    let unknown = || Command::Unknown(String::from_utf8_lossy(line).into_owned());
    // Verbs are ASCII; an invalid-UTF-8 verb is just unknown.
    let Ok(verb_str) = std::str::from_utf8(verb) else {
        return unknown();
    };
    let upper = verb_str.to_ascii_uppercase();
    let known = matches!(
        upper.as_str(),
        "HELO"
            | "EHLO"
            | "MAIL"
            | "RCPT"
            | "DATA"
            | "RSET"
            | "NOOP"
            | "QUIT"
            | "HELP"
            | "VRFY"
            | "EXPN"
            | "STARTTLS"
            | "AUTH"
    );
    if !known {
        return unknown();
    }
    let args = match std::str::from_utf8(args) {
        Ok(a) if !a.contains('\0') => a,
        // NOOP ignores its argument, so it cannot be wrong.
        _ if upper == "NOOP" => "",
        _ => {
            return Command::Syntax(SyntaxError::InvalidCharacters {
                verb: verb_str.to_owned(),
            });
        }
    };
    let no_args = |cmd: Command| {
        if args.is_empty() {
            cmd
        } else {
            Command::Syntax(SyntaxError::NoParametersAllowed {
                verb: verb_str.to_owned(),
            })
        }
    };
    match upper.as_str() {
        "HELO" | "EHLO" if args.is_empty() => Command::Syntax(SyntaxError::HeloRequiresDomain {
            verb: verb_str.to_owned(),
        }),
        "HELO" => Command::Helo(args.to_owned()),
        "EHLO" => Command::Ehlo(args.to_owned()),
        "MAIL" => match skip_word(args, "FROM") {
            Some(a) => Command::Mail(a.to_owned()),
            None => param_scan(args),
        },
        "RCPT" => match skip_word(args, "TO") {
            Some(a) => Command::Rcpt(a.to_owned()),
            None => param_scan(args),
        },
        "DATA" => no_args(Command::Data),
        "RSET" => no_args(Command::Rset),
        "QUIT" => no_args(Command::Quit),
        "STARTTLS" => no_args(Command::StartTls),
        "NOOP" => Command::Noop,
        "HELP" => Command::Help((!args.is_empty()).then(|| args.to_owned())),
        "VRFY" => Command::Vrfy(args.to_owned()),
        "EXPN" => Command::Expn(args.to_owned()),
        "AUTH" => {
            let mut words = args.split([' ', '\t']).filter(|w| !w.is_empty());
            match (words.next(), words.next(), words.next()) {
                (None, _, _) => Command::Syntax(SyntaxError::AuthMechanismRequired),
                (Some(_), _, Some(_)) => Command::Syntax(SyntaxError::AuthTooManyArguments),
                (Some(m), initial, None) => Command::Auth {
                    mechanism: m.to_owned(),
                    initial: initial.map(str::to_owned),
                },
            }
        }
        _ => unknown(),
    }
}

fn param_scan(args: &str) -> Command {
    Command::Syntax(SyntaxError::ParamScan {
        args: shorten(&sanitize(args), MAX_SHORT_STR),
    })
}

/// sendmail's `skipword`: optional white space, the word (case-insensitive),
/// optional white space, `:`, optional white space, then a non-empty rest.
/// Accepts `MAIL FROM:<a>`, `MAIL FROM: <a>`, `MAIL from : <a>`.
fn skip_word<'a>(args: &'a str, word: &str) -> Option<&'a str> {
    let end = args.find([':', ' ', '\t']).unwrap_or(args.len());
    let (w, rest) = args.split_at(end);
    if !w.eq_ignore_ascii_case(word) {
        return None;
    }
    let rest = rest.trim_start_matches([' ', '\t']).strip_prefix(':')?;
    let rest = rest.trim_start_matches([' ', '\t']);
    (!rest.is_empty()).then_some(rest)
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/// Make client-supplied text safe to echo in a reply or header: control
/// characters (C0 including CR/LF/NUL, DEL, C1) are removed so the client
/// cannot inject reply lines or header fields; TAB becomes a space.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// sendmail's `shortenstring`: strings of `max` characters or more become the
/// first `(max-3)/2` characters, `...`, and the last `(max-3)/2`.
pub fn shorten(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n < max {
        return s.to_owned();
    }
    let keep = max.saturating_sub(3) / 2;
    let head: String = s.chars().take(keep).collect();
    let tail: String = s.chars().skip(n - keep).collect();
    format!("{head}...{tail}")
}

/// An SMTP reply: one code, one or more text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

/// The EHLO keywords to advertise, in sendmail 8.13's order
/// (docs/sendmail-compat.md §6.5). The null server (pre-greeting traffic) advertises
/// only `enhanced_status_codes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EhloCaps {
    pub enhanced_status_codes: bool,
    pub pipelining: bool,
    pub expn: bool,
    pub verb: bool,
    pub eight_bit_mime: bool,
    /// RFC 6531; not in 8.13, placed after 8BITMIME as later sendmails do.
    pub smtputf8: bool,
    /// `None`: not advertised; `Some(0)`: `SIZE`; `Some(n)`: `SIZE n`.
    pub size: Option<u64>,
    pub dsn: bool,
    pub etrn: bool,
    /// SASL mechanisms; empty: no AUTH line.
    pub auth: Vec<String>,
    /// Never set after TLS is active (RFC 3207 §4.2).
    pub starttls: bool,
    /// `None`: not advertised; `Some(0)`: `DELIVERBY`; `Some(n)`: `DELIVERBY n`.
    pub deliverby: Option<u64>,
    pub help: bool,
}

impl EhloCaps {
    /// The keyword lines, in order.
    pub fn keywords(&self) -> Vec<String> {
        let mut k = Vec::new();
        let mut flag = |on: bool, s: &str| {
            if on {
                k.push(s.to_owned());
            }
        };
        flag(self.enhanced_status_codes, "ENHANCEDSTATUSCODES");
        flag(self.pipelining, "PIPELINING");
        flag(self.expn, "EXPN");
        flag(self.verb, "VERB");
        flag(self.eight_bit_mime, "8BITMIME");
        flag(self.smtputf8, "SMTPUTF8");
        match self.size {
            Some(0) => k.push("SIZE".into()),
            Some(n) => k.push(format!("SIZE {n}")),
            None => {}
        }
        if self.dsn {
            k.push("DSN".into());
        }
        if self.etrn {
            k.push("ETRN".into());
        }
        if !self.auth.is_empty() {
            k.push(format!("AUTH {}", self.auth.join(" ")));
        }
        if self.starttls {
            k.push("STARTTLS".into());
        }
        match self.deliverby {
            Some(0) => k.push("DELIVERBY".into()),
            Some(n) => k.push(format!("DELIVERBY {n}")),
            None => {}
        }
        if self.help {
            k.push("HELP".into());
        }
        k
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // For logs: the wire lines joined by "\n", without the final CRLF.
        let wire = String::from_utf8_lossy(&self.to_bytes()).into_owned();
        f.write_str(&wire.trim_end_matches("\r\n").replace("\r\n", "\n"))
    }
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            lines: vec![text.into()],
        }
    }

    pub fn multi(code: u16, lines: Vec<String>) -> Self {
        Self { code, lines }
    }

    /// Wire form: `250-first\r\n…250 last\r\n` (RFC 5321 §4.2.1). Defensive:
    /// CR and LF are dropped from the text (no reply injection even if a
    /// caller forgot [`sanitize`]) and each line is cut to 512 octets.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let empty = [String::new()];
        let lines: &[String] = if self.lines.is_empty() {
            &empty
        } else {
            &self.lines
        };
        // "250-" + text + CRLF must fit in 512 octets.
        let max_text = MAX_REPLY_LINE - 6;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            let clean: String = line.chars().filter(|&c| c != '\r' && c != '\n').collect();
            let mut cut = clean.len().min(max_text);
            while !clean.is_char_boundary(cut) {
                cut -= 1;
            }
            out.extend_from_slice(format!("{:03}{sep}", self.code % 1000).as_bytes());
            out.extend_from_slice(&clean.as_bytes()[..cut]);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// The greeting: `SmtpGreetingMessage` with "ESMTP" inserted after the
    /// first word, as sendmail does: `220 mail.example.com ESMTP Sendmail …`.
    pub fn greeting_message(message: &str) -> Self {
        let message = sanitize(message);
        let text = match message.split_once(' ') {
            Some((first, rest)) => format!("{first} ESMTP {rest}"),
            None => format!("{message} ESMTP"),
        };
        Self::new(220, text)
    }

    /// `220 <host> ESMTP <rest>` (or `220 <host> ESMTP` when `rest` is empty).
    pub fn greeting(host: &str, rest: &str) -> Self {
        if rest.is_empty() {
            Self::greeting_message(host)
        } else {
            Self::greeting_message(&format!("{host} {rest}"))
        }
    }

    /// The 5xx greeting after pre-greeting traffic (greet_pause).
    pub fn not_accepting(host: &str) -> Self {
        Self::new(554, format!("{host} ESMTP not accepting messages"))
    }

    /// `250 <host> Hello <client>, pleased to meet you`; `client` is sendmail's
    /// `$_` (`[ident@]name [ip]`, `[ip]`, ` (may be forged)`).
    pub fn helo(host: &str, client: &str) -> Self {
        Self::new(
            250,
            format!("{host} Hello {}, pleased to meet you", sanitize(client)),
        )
    }

    /// The hello line followed by the EHLO keywords.
    pub fn ehlo(host: &str, client: &str, caps: &EhloCaps) -> Self {
        let mut lines = Self::helo(host, client).lines;
        lines.extend(caps.keywords());
        Self::multi(250, lines)
    }

    /// `501 5.0.0 <verb> requires domain address`, verb as typed.
    pub fn helo_requires_domain(verb: &str) -> Self {
        Self::syntax(&SyntaxError::HeloRequiresDomain {
            verb: sanitize(verb),
        })
    }

    pub fn invalid_domain() -> Self {
        Self::new(501, "5.0.0 Invalid domain name")
    }

    /// Any parse error as a reply.
    pub fn syntax(err: &SyntaxError) -> Self {
        Self::new(err.code(), err.to_string())
    }

    /// `250 2.1.0 <sender>... Sender ok`; pass the address as sendmail prints
    /// it (usually with its angle brackets).
    pub fn sender_ok(addr: &str) -> Self {
        Self::new(250, format!("2.1.0 {}... Sender ok", sanitize(addr)))
    }

    /// `250 2.1.5 <rcpt>... Recipient ok`, plus ` (will queue)` if asked.
    pub fn recipient_ok(addr: &str, will_queue: bool) -> Self {
        let suffix = if will_queue { " (will queue)" } else { "" };
        Self::new(
            250,
            format!("2.1.5 {}... Recipient ok{suffix}", sanitize(addr)),
        )
    }

    pub fn user_unknown(addr: &str) -> Self {
        Self::new(550, format!("5.1.1 {}... User unknown", sanitize(addr)))
    }

    pub fn sender_already_specified() -> Self {
        Self::new(503, "5.5.0 Sender already specified")
    }

    pub fn polite_helo_first() -> Self {
        Self::new(503, "5.0.0 Polite people say HELO first")
    }

    pub fn need_mail_before_rcpt() -> Self {
        Self::new(503, "5.0.0 Need MAIL before RCPT")
    }

    pub fn need_mail() -> Self {
        Self::new(503, "5.0.0 Need MAIL command")
    }

    pub fn need_rcpt() -> Self {
        Self::new(503, "5.0.0 Need RCPT (recipient)")
    }

    /// MAIL with `SIZE=` above MaxMessageSize.
    pub fn size_exceeds_fixed(max: u64) -> Self {
        Self::new(
            552,
            format!("5.2.3 Message size exceeds fixed maximum message size ({max})"),
        )
    }

    /// A DATA body above MaxMessageSize (sent after the end of data).
    pub fn message_exceeds_fixed(max: u64) -> Self {
        Self::new(
            552,
            format!("5.2.3 Message exceeds maximum fixed size ({max})"),
        )
    }

    pub fn too_many_recipients() -> Self {
        Self::new(452, "4.5.3 Too many recipients")
    }

    pub fn enter_mail() -> Self {
        Self::new(354, "Enter mail, end with \".\" on a line by itself")
    }

    /// `250 2.0.0 <qid> Message accepted for delivery` (no angle brackets).
    pub fn accepted(qid: &str) -> Self {
        Self::new(250, format!("2.0.0 {qid} Message accepted for delivery"))
    }

    pub fn reset() -> Self {
        Self::new(250, "2.0.0 Reset state")
    }

    /// The NOOP reply.
    pub fn ok() -> Self {
        Self::new(250, "2.0.0 OK")
    }

    pub fn closing(host: &str) -> Self {
        Self::new(221, format!("2.0.0 {host} closing connection"))
    }

    pub fn cannot_vrfy() -> Self {
        Self::new(
            252,
            "2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)",
        )
    }

    /// EXPN refused (noexpn).
    pub fn not_allowed() -> Self {
        Self::new(502, "5.7.0 Sorry, we do not allow this operation")
    }

    /// VRFY/EXPN without argument.
    pub fn argument_required() -> Self {
        Self::new(501, "5.5.2 Argument required")
    }

    /// `500 5.5.1 Command unrecognized: "<line>"`, the line sanitized and
    /// shortened like sendmail's `shortenstring(inp, MAXSHORTSTR)`.
    pub fn unrecognized(line: &str) -> Self {
        Self::new(
            500,
            format!(
                "5.5.1 Command unrecognized: \"{}\"",
                shorten(&sanitize(line), MAX_SHORT_STR)
            ),
        )
    }

    pub fn too_many_bad_commands(host: &str) -> Self {
        Self::new(
            421,
            format!("4.7.0 {host} Too many bad commands; closing connection"),
        )
    }

    /// The null-server reply after pre-greeting traffic.
    pub fn command_rejected() -> Self {
        Self::new(550, "5.0.0 Command rejected")
    }

    pub fn try_again_later() -> Self {
        Self::new(451, "4.3.2 Please try again later")
    }

    pub fn ready_to_start_tls() -> Self {
        Self::new(220, "2.0.0 Ready to start TLS")
    }

    pub fn tls_not_available() -> Self {
        Self::new(454, "4.7.0 TLS not available due to temporary reason")
    }

    /// RFC 5321 §4.5.3.1.4 over-long command line.
    pub fn line_too_long() -> Self {
        Self::new(500, "5.5.2 Line too long")
    }

    /// Postfix's reply to pipelining without PIPELINING, or to commands sent
    /// before the reply they must wait for (`smtpd_forbid_unauth_pipelining`);
    /// the server then disconnects.
    pub fn sync_error() -> Self {
        Self::new(554, "5.5.0 Error: SMTP protocol synchronization")
    }

    /// Postfix `smtpd_forbid_bare_newline=reject` text (default code 550).
    pub fn bare_lf() -> Self {
        Self::new(550, "5.5.2 Error: bare <LF> received")
    }

    /// Same for a bare CR.
    pub fn bare_cr() -> Self {
        Self::new(550, "5.5.2 Error: bare <CR> received")
    }

    /// HELP, sendmail-style. Unknown topic: sendmail's
    /// `504 5.3.0 HELP topic "%.10s" unknown`.
    pub fn help(topic: Option<&str>) -> Self {
        const END: &str = "2.0.0 End of HELP info";
        let body: &[&str] = match topic.map(str::to_ascii_uppercase).as_deref() {
            None => &[
                "This is mailtool",
                "Topics:",
                "\tHELO\tEHLO\tMAIL\tRCPT\tDATA",
                "\tRSET\tNOOP\tQUIT\tHELP\tVRFY",
                "\tEXPN\tSTARTTLS\tAUTH",
                "For more info use \"HELP <topic>\".",
                "For local information send email to Postmaster at your site.",
            ],
            Some("HELO") => &["HELO <hostname>", "\tIntroduce yourself."],
            Some("EHLO") => &[
                "EHLO <hostname>",
                "\tIntroduce yourself, and request extended SMTP mode.",
            ],
            Some("MAIL") => &[
                "MAIL FROM: <sender> [ <parameters> ]",
                "\tSpecifies the sender.",
            ],
            Some("RCPT") => &[
                "RCPT TO: <recipient> [ <parameters> ]",
                "\tSpecifies the recipient.  Can be used any number of times.",
            ],
            Some("DATA") => &[
                "DATA",
                "\tFollowing text is collected as the message.",
                "\tEnd with a single dot.",
            ],
            Some("RSET") => &["RSET", "\tResets the system."],
            Some("NOOP") => &["NOOP", "\tDo nothing."],
            Some("QUIT") => &["QUIT", "\tExit sendmail (SMTP)."],
            Some("HELP") => &["HELP [ <topic> ]", "\tThe HELP command gives help info."],
            Some("VRFY") => &["VRFY <recipient>", "\tVerify an address."],
            Some("EXPN") => &["EXPN <recipient>", "\tExpand an address."],
            Some("STARTTLS") => &["STARTTLS", "\tStart TLS negotiation."],
            Some("AUTH") => &[
                "AUTH <mechanism> [ <initial-response> ]",
                "\tAuthenticate using SASL.",
            ],
            Some(_) => {
                let t: String = sanitize(topic.unwrap_or_default())
                    .chars()
                    .take(10)
                    .collect();
                return Self::new(504, format!("5.3.0 HELP topic \"{t}\" unknown"));
            }
        };
        let mut lines: Vec<String> = body.iter().map(|l| format!("2.0.0 {l}")).collect();
        lines.push(END.to_owned());
        Self::multi(214, lines)
    }
}

// ---------------------------------------------------------------------------
// DATA
// ---------------------------------------------------------------------------

/// Result of [`DataReader::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataState {
    NeedMore,
    /// The real `CRLF . CRLF` was read. `size_exceeded`: reply
    /// [`Reply::message_exceeds_fixed`]; the bare flags allow a
    /// `reject`-style policy.
    Done {
        size_exceeded: bool,
        bare_lf_seen: bool,
        bare_cr_seen: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DState {
    /// At the start of the data or right after a real CRLF.
    LineStart,
    /// Inside a line (also after a bare LF: line start only follows CRLF).
    Mid,
    /// A CR was read; CRLF or bare CR depends on the next byte.
    Cr,
    /// A `.` at line start was read.
    Dot,
    /// `.` CR at line start: LF next means the end.
    DotCr,
    Done,
}

/// Reads the DATA stream up to the real `CRLF . CRLF`. See the module docs.
#[derive(Debug)]
pub struct DataReader {
    max_size: u64,
    state: DState,
    message: Vec<u8>,
    size: u64,
    bare_lf: bool,
    bare_cr: bool,
}

impl DataReader {
    /// `max_size`: the most octets stored (after unstuffing and
    /// normalization); 0 means unlimited — the caller must then bound the
    /// message some other way.
    pub fn new(max_size: u64) -> Self {
        Self {
            max_size,
            state: DState::LineStart,
            message: Vec::new(),
            size: 0,
            bare_lf: false,
            bare_cr: false,
        }
    }

    /// Process input; returns how many bytes were used. Bytes after the end
    /// of data are not used: they are the next (pipelined) commands. After
    /// the end, further calls use nothing and return the same `Done`.
    pub fn feed(&mut self, input: &[u8]) -> (usize, DataState) {
        let mut i = 0;
        while i < input.len() && self.state != DState::Done {
            if self.state == DState::Mid {
                // Fast path: copy a run of ordinary bytes at once.
                let run = input[i..]
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .unwrap_or(input.len() - i);
                if run > 0 {
                    self.push(&input[i..i + run]);
                    i += run;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            self.step(b);
        }
        (i, self.state())
    }

    fn step(&mut self, b: u8) {
        use DState::*;
        self.state = match (self.state, b) {
            (Done, _) => Done,
            (DotCr, b'\n') => Done,
            // `.` CR then anything else: the dot was stuffing (the line has
            // more characters) and the CR is bare.
            (DotCr, _) => {
                self.bare_cr_char();
                self.state = Mid;
                self.step(b);
                self.state
            }
            (Cr, _) => self.after_cr(b),
            // ".." -> "."; "." + other -> other (RFC 5321 §4.5.2).
            (Dot, b'.') => {
                self.push(b".");
                Mid
            }
            (Dot, b'\r') => DotCr,
            (Dot, _) | (LineStart, _) | (Mid, _) if b == b'\r' => Cr,
            (LineStart, b'.') => Dot,
            (Dot | LineStart | Mid, b'\n') => {
                // Bare LF: stored as CRLF, but it does NOT start a line.
                self.bare_lf = true;
                self.push(b"\r\n");
                Mid
            }
            (Dot | LineStart | Mid, _) => {
                self.push(&[b]);
                Mid
            }
        };
    }

    /// The byte after a CR that was not preceded by a line-start dot.
    fn after_cr(&mut self, b: u8) -> DState {
        match b {
            b'\n' => {
                self.push(b"\r\n");
                DState::LineStart
            }
            // CR CR: the first is bare, the second may still pair with LF.
            b'\r' => {
                self.bare_cr_char();
                DState::Cr
            }
            _ => {
                self.bare_cr_char();
                self.state = DState::Mid;
                self.step(b);
                self.state
            }
        }
    }

    fn bare_cr_char(&mut self) {
        self.bare_cr = true;
        self.push(b" ");
    }

    fn push(&mut self, bytes: &[u8]) {
        self.size = self.size.saturating_add(bytes.len() as u64);
        if self.max_size == 0 {
            self.message.extend_from_slice(bytes);
        } else {
            let room = self.max_size.saturating_sub(self.message.len() as u64);
            let take = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
            self.message.extend_from_slice(&bytes[..take]);
        }
    }

    /// Current state without feeding.
    pub fn state(&self) -> DataState {
        if self.state == DState::Done {
            DataState::Done {
                size_exceeded: self.size_exceeded(),
                bare_lf_seen: self.bare_lf,
                bare_cr_seen: self.bare_cr,
            }
        } else {
            DataState::NeedMore
        }
    }

    fn size_exceeded(&self) -> bool {
        self.max_size > 0 && self.size > self.max_size
    }

    /// Total message size in octets (as stored, counting what was dropped
    /// over the limit): for logs.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The unstuffed, normalized message (truncated at `max_size` if it was
    /// exceeded). Leaves the reader empty.
    pub fn take_message(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.message)
    }
}

/// Hop count for confMAX_HOP (docs/sendmail-compat.md §7): header fields named
/// `Received`, `X400-Received`, `Via`, `Mail-From`, case-insensitive, in the
/// header section only. Folded continuation lines are not fields; the section
/// ends at the first empty line or the first line that is not a header field.
pub fn count_hops(message: &[u8]) -> usize {
    const HOPS: [&[u8]; 4] = [b"received", b"x400-received", b"via", b"mail-from"];
    let mut count = 0;
    let mut first = true;
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match line.first() {
            None => break,
            Some(&c) if is_wsp(c) => {
                if first {
                    break; // a continuation with nothing to continue: body
                }
                continue;
            }
            Some(_) => {}
        }
        first = false;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            break;
        };
        let name = trim_wsp(&line[..colon]);
        if name.is_empty() || !name.iter().all(|b| (33..=126).contains(b)) {
            break;
        }
        if HOPS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            count += 1;
        }
    }
    count
}

/// Our trace header, in sendmail's shape:
///
/// ```text
/// Received: from helo (name [ip])
///     by host (mailtool) with ESMTP id QID
///     for <rcpt>; date
/// ```
///
/// (continuation lines start with a TAB). Without a PTR name the comment
/// is `([ip])`; IPv6 is written `[IPv6:…]` like sendmail. Client-supplied
/// strings are sanitized, so the HELO name cannot add header fields.
#[allow(clippy::too_many_arguments)]
pub fn received_header(
    from_helo: &str,
    client_name: Option<&str>,
    client_ip: IpAddr,
    by_host: &str,
    with: &str,
    qid: &str,
    for_rcpt: Option<&str>,
    date: &str,
) -> String {
    let ip = match client_ip.to_canonical() {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    };
    let name = client_name.map(sanitize).filter(|n| !n.is_empty());
    let comment = match &name {
        Some(n) => format!("{n} {ip}"),
        None => ip.clone(),
    };
    let mut helo = sanitize(from_helo);
    if helo.is_empty() {
        helo = name.unwrap_or(ip);
    }
    let mut h = format!(
        "Received: from {} ({comment})\r\n\tby {} (mailtool) with {} id {}",
        shorten(&helo, MAX_SHORT_STR),
        sanitize(by_host),
        sanitize(with),
        sanitize(qid)
    );
    match for_rcpt.map(sanitize) {
        Some(r) => {
            let r = r.trim();
            let r = r
                .strip_prefix('<')
                .and_then(|r| r.strip_suffix('>'))
                .unwrap_or(r);
            h.push_str(&format!(
                "\r\n\tfor <{}>; {}\r\n",
                shorten(r, MAX_SHORT_STR),
                sanitize(date)
            ));
        }
        None => h.push_str(&format!("; {}\r\n", sanitize(date))),
    }
    h
}

// ---------------------------------------------------------------------------
// Fuzzing invariants (shared by the cargo-fuzz target and the replay test)
// ---------------------------------------------------------------------------

/// What a simulated session produced; used to compare chunkings.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    Line(LineEvent),
    Command(Command),
    Message(Vec<u8>, DataState),
}

/// Where the real end of data is (index just past `.CRLF`), by the plain
/// definition: `.\r\n` at offset 0 or right after `\r\n`. Independent of
/// [`DataReader`]'s state machine, for cross-checking.
#[doc(hidden)]
pub fn reference_data_end(input: &[u8]) -> Option<usize> {
    (0..input.len()).find_map(|i| {
        let at_line_start = i == 0 || (i >= 2 && &input[i - 2..i] == b"\r\n");
        (at_line_start && input[i..].starts_with(b".\r\n")).then_some(i + 3)
    })
}

#[doc(hidden)]
pub fn simulate_session<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    max: u64,
) -> Vec<SessionEvent> {
    let mut lines = LineReader::new();
    let mut data: Option<DataReader> = None;
    let mut events = Vec::new();
    for chunk in chunks {
        lines.feed(chunk);
        loop {
            if let Some(d) = data.as_mut() {
                let avail = lines.buffered();
                let (used, st) = d.feed(lines.buffered_bytes());
                lines.consume(used);
                if st == DataState::NeedMore {
                    assert_eq!(used, avail, "DataReader must use all input before the end");
                    break;
                }
                events.push(SessionEvent::Message(d.take_message(), st));
                data = None;
            }
            match lines.next_line() {
                None => break,
                Some(LineEvent::Line(l)) => {
                    assert!(l.len() <= MAX_COMMAND_LINE - 2);
                    assert!(!l.contains(&b'\n') && !l.contains(&b'\r'));
                    let c = parse_command(&l);
                    if c == Command::Data {
                        data = Some(DataReader::new(max));
                    }
                    events.push(SessionEvent::Command(c));
                }
                Some(ev) => events.push(SessionEvent::Line(ev)),
            }
        }
    }
    events
}

fn check_reply(r: &Reply) {
    let bytes = r.to_bytes();
    assert!(bytes.ends_with(b"\r\n"));
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        assert!(line.len() <= MAX_REPLY_LINE, "reply line too long");
        assert!(line.ends_with(b"\r\n"));
        assert!(
            !line[..line.len() - 2].contains(&b'\r') && !line[..line.len() - 2].contains(&b'\n')
        );
    }
}

fn run_data(chunks: &[&[u8]], max: u64) -> (usize, DataState, Vec<u8>, u64) {
    let mut d = DataReader::new(max);
    let mut used = 0;
    for c in chunks {
        let (n, _) = d.feed(c);
        used += n;
        if n < c.len() {
            break;
        }
    }
    let st = d.state();
    (used, st, d.take_message(), d.size())
}

/// Panics if an invariant fails. The split point and the size limit are
/// derived from the input (FNV-1a) so plain SMTP transcripts work as seeds.
#[doc(hidden)]
pub fn fuzz_invariants(input: &[u8]) {
    let h = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let split = usize::try_from(h % (input.len() as u64 + 1)).unwrap_or(0);
    let max = [0, 0, 7, 64, 4096][usize::try_from((h >> 32) % 5).unwrap_or(0)];
    let (a, b) = input.split_at(split);

    // 1. The whole input as a DATA stream.
    let one = run_data(&[input], max);
    let two = run_data(&[a, b], max);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let each = run_data(&bytes, max);
    assert_eq!(one, two, "split feed differs");
    assert_eq!(one, each, "byte-by-byte feed differs");
    let (used, st, msg, size) = one;
    match reference_data_end(input) {
        Some(end) => {
            assert_eq!(used, end, "ended elsewhere than the first real CRLF.CRLF");
            assert!(matches!(st, DataState::Done { .. }));
        }
        None => {
            assert_eq!(used, input.len());
            assert_eq!(st, DataState::NeedMore);
        }
    }
    // Stored content is normalized: every CR is followed by LF and every LF
    // preceded by CR. (A message cut at the size limit may end inside a CRLF.)
    let checked = if max > 0 && size > max {
        msg.strip_suffix(b"\r").unwrap_or(&msg)
    } else {
        &msg[..]
    };
    for (i, &c) in checked.iter().enumerate() {
        if c == b'\r' {
            assert_eq!(checked.get(i + 1), Some(&b'\n'), "bare CR stored");
        }
        if c == b'\n' {
            assert!(i > 0 && msg[i - 1] == b'\r', "bare LF stored");
        }
    }
    if max > 0 {
        assert!(msg.len() as u64 <= max);
        if let DataState::Done { size_exceeded, .. } = st {
            assert_eq!(size_exceeded, size > max);
        }
    }
    if max == 0 || size <= max {
        assert_eq!(msg.len() as u64, size);
    }
    let _ = count_hops(&msg);

    // 2. The input as a session; chunking must not matter.
    let s_one = simulate_session([input], max);
    let s_two = simulate_session([a, b], max);
    let s_each = simulate_session(input.chunks(1), max);
    assert_eq!(s_one, s_two, "session differs with split feed");
    assert_eq!(s_one, s_each, "session differs byte-by-byte");
    for ev in &s_one {
        match ev {
            SessionEvent::Command(Command::Unknown(l)) => check_reply(&Reply::unrecognized(l)),
            SessionEvent::Command(Command::Syntax(e)) => check_reply(&Reply::syntax(e)),
            SessionEvent::Command(Command::Help(t)) => check_reply(&Reply::help(t.as_deref())),
            SessionEvent::Command(Command::Helo(h) | Command::Ehlo(h)) => {
                check_reply(&Reply::helo("mx.test", h));
                let r = received_header(
                    h,
                    Some(h),
                    IpAddr::from([127, 0, 0, 1]),
                    "mx",
                    "ESMTP",
                    "q",
                    Some(h),
                    "d",
                );
                assert_eq!(r.matches("\r\n").count(), 3);
                assert_eq!(r.matches('\n').count(), 3);
            }
            SessionEvent::Command(Command::Mail(a) | Command::Rcpt(a)) => {
                check_reply(&Reply::sender_ok(a));
            }
            _ => {}
        }
    }

    // 3. STARTTLS injection: whatever follows a STARTTLS line is dropped.
    let mut lr = LineReader::new();
    lr.feed(input);
    while let Some(ev) = lr.next_line() {
        if let LineEvent::Line(l) = ev
            && parse_command(&l) == Command::StartTls
        {
            lr.discard_buffered();
            assert_eq!(lr.buffered(), 0);
            assert_eq!(lr.next_line(), None);
            break;
        }
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(input: &[u8]) -> Vec<LineEvent> {
        let mut r = LineReader::new();
        r.feed(input);
        std::iter::from_fn(|| r.next_line()).collect()
    }

    #[test]
    fn lenient_framing_takes_bare_lf_and_a_longer_limit() {
        let mut r = LineReader::lenient(20);
        r.feed(b"USER a\r\nPASS b\nNOOP x\ry\r\nST");
        assert_eq!(r.next_line(), Some(LineEvent::Line(b"USER a".to_vec())));
        assert_eq!(r.next_line(), Some(LineEvent::Line(b"PASS b".to_vec())));
        assert_eq!(r.next_line(), Some(LineEvent::Line(b"NOOP x\ry".to_vec())));
        assert_eq!(r.next_line(), None);
        r.feed(b"AT\r\n");
        assert_eq!(r.next_line(), Some(LineEvent::Line(b"STAT".to_vec())));
        // 18 octets and CRLF fit in 20; 19 do not.
        r.feed(&[b'x'; 18]);
        r.feed(b"\r\n");
        assert_eq!(r.next_line(), Some(LineEvent::Line(vec![b'x'; 18])));
        r.feed(&[b'x'; 300]);
        assert_eq!(r.next_line(), None);
        r.feed(b"yyy\r\nNOOP\r\n");
        assert_eq!(r.next_line(), Some(LineEvent::TooLong));
        assert_eq!(r.next_line(), Some(LineEvent::Line(b"NOOP".to_vec())));
        r.feed(b"QUIT\r\n");
        assert_eq!(r.discard_buffered(), 6);
        assert_eq!(r.next_line(), None);
    }

    /// Feed a whole DATA stream; returns (consumed, state, message).
    fn data(input: &[u8], max: u64) -> (usize, DataState, Vec<u8>) {
        let mut d = DataReader::new(max);
        let (n, st) = d.feed(input);
        (n, st, d.take_message())
    }

    const SMUGGLED: &[u8] = b"mail FROM:<smuggled@x>\r\nrcpt TO:<r@x>\r\ndata\r\nsmuggled\r\n";

    /// docs/security.md §3: hannob/smtpsmug's tests (lflf, crcr, crlf, lfcr,
    /// lfcrlf, crlflf, crcrlf, crlfcr, nullbefore, nullafter), The-Login
    /// scanner's inbound and outbound lists, suuhm's extras (`\r\n.`,
    /// `\n\n.\r\n`) and the blog's exotic ones.
    const BAD_ENDINGS: &[&[u8]] = &[
        b"\n.\n",
        b"\n.\r",
        b"\r.\n",
        b"\r.\r",
        b"\n.\r\n",
        b"\r.\r\n",
        b"\r\n\x00.\r\n",
        b"\r\n.\x00\r\n",
        b"\r\n.\r",
        b"\r\n.\n",
        b"\n\n.\r\n",
        b"\r\n.\r\r\n",
        b"\r\r\n.\r\r\n",
        b"\r\n.",
    ];

    // RFC 5321 §4.1.1.4 and §4.5.2, docs/security.md §3: only CRLF.CRLF
    // ends DATA; each bad ending stays content and the smuggled commands are
    // part of the one message.
    #[test]
    fn smuggling_endings_do_not_end_data() {
        for seq in BAD_ENDINGS {
            let mut input = b"TESTING\r\n".to_vec();
            input.extend_from_slice(seq);
            input.extend_from_slice(SMUGGLED);
            input.extend_from_slice(b"\r\n.\r\n");
            input.extend_from_slice(b"QUIT\r\n"); // pipelined after the end
            let (n, st, msg) = data(&input, 0);
            assert_eq!(n, input.len() - 6, "seq {seq:?}: wrong end");
            assert!(matches!(st, DataState::Done { .. }), "seq {seq:?}");
            let text = String::from_utf8_lossy(&msg);
            assert!(
                text.contains("mail FROM:<smuggled@x>\r\n"),
                "seq {seq:?}: {text:?}"
            );
            assert!(text.contains("smuggled\r\n"), "seq {seq:?}");
            assert!(text.starts_with("TESTING\r\n"));
            // Same result byte by byte.
            let mut d = DataReader::new(0);
            let mut used = 0;
            for b in input.chunks(1) {
                let (k, _) = d.feed(b);
                used += k;
                if k == 0 {
                    break;
                }
            }
            assert_eq!(used, n, "seq {seq:?} byte-by-byte");
            assert_eq!(d.take_message(), msg);
        }
    }

    // Same in the header section ("end-of-data inside the headers", SEC
    // Consult blog, docs/security.md §3), driven through a whole session.
    #[test]
    fn smuggling_inside_headers_one_message() {
        for seq in BAD_ENDINGS {
            let mut input =
                b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nFrom: a@x".to_vec();
            input.extend_from_slice(seq);
            input.extend_from_slice(SMUGGLED);
            input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
            let events = simulate_session([input.as_slice()], 0);
            let msgs: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    SessionEvent::Message(m, _) => Some(m),
                    _ => None,
                })
                .collect();
            assert_eq!(msgs.len(), 1, "seq {seq:?}");
            assert!(String::from_utf8_lossy(msgs[0]).contains("smuggled@x"));
            let cmds: Vec<_> = events
                .iter()
                .filter(|e| matches!(e, SessionEvent::Command(Command::Mail(_))))
                .collect();
            assert_eq!(cmds.len(), 1, "seq {seq:?}: smuggled MAIL executed");
            assert_eq!(events.last(), Some(&SessionEvent::Command(Command::Quit)));
        }
    }

    // The module-doc decisions: bare LF -> CRLF without line start, bare CR ->
    // space, no unstuffing after a bare LF (RFC 5321 §2.3.8, §4.5.2).
    #[test]
    fn normalization_decisions() {
        let (_, st, m) = data(b"a\n.\nb\r\n.\r\n", 0);
        assert_eq!(m, b"a\r\n.\r\nb\r\n");
        assert_eq!(
            st,
            DataState::Done {
                size_exceeded: false,
                bare_lf_seen: true,
                bare_cr_seen: false
            }
        );
        let (_, st, m) = data(b"a\r.\rb\r\n.\r\n", 0);
        assert_eq!(m, b"a . b\r\n");
        assert!(matches!(
            st,
            DataState::Done {
                bare_cr_seen: true,
                bare_lf_seen: false,
                ..
            }
        ));
        let (_, _, m) = data(b"a\n..\r\n.\r\n", 0);
        assert_eq!(m, b"a\r\n..\r\n");
        let (_, _, m) = data(b"\r\n.\r\r\nx\r\n.\r\n", 0);
        assert_eq!(m, b"\r\n \r\nx\r\n");
    }

    // RFC 5321 §4.5.2: a leading dot is removed; `..` -> `.`; the data may
    // be empty (".\r\n" right away).
    #[test]
    fn dot_unstuffing() {
        let (_, _, m) = data(b"..\r\n.x\r\n...\r\na.b\r\n.\r\n", 0);
        assert_eq!(m, b".\r\nx\r\n..\r\na.b\r\n");
        let (n, st, m) = data(b".\r\nRSET\r\n", 0);
        assert_eq!((n, m.len()), (3, 0));
        assert!(matches!(st, DataState::Done { .. }));
        let (n, st, _) = data(b"x\r\n.\r", 0);
        assert_eq!((n, st), (5, DataState::NeedMore));
    }

    // RFC 2920 §3.1: bytes after the end are not consumed; after Done the
    // reader consumes nothing more.
    #[test]
    fn bytes_after_end_not_consumed() {
        let mut d = DataReader::new(0);
        let (n, _) = d.feed(b"hi\r\n.\r\nMAIL FROM:<x>\r\n");
        assert_eq!(n, 7);
        assert_eq!(d.feed(b"more").0, 0);
        assert_eq!(d.take_message(), b"hi\r\n");
    }

    // docs/sendmail-compat.md §7 confMAX_MESSAGE_SIZE: read to the real end, store at
    // most N, then 552 5.2.3 Message exceeds maximum fixed size (N).
    #[test]
    fn size_limit() {
        let (n, st, m) = data(b"0123456789\r\nabc\r\n.\r\nQUIT\r\n", 8);
        assert_eq!(n, 20);
        assert!(matches!(
            st,
            DataState::Done {
                size_exceeded: true,
                ..
            }
        ));
        assert_eq!(m, b"01234567");
        let (_, st, m) = data(b"0123456\r\n.\r\n", 9);
        assert!(matches!(
            st,
            DataState::Done {
                size_exceeded: false,
                ..
            }
        ));
        assert_eq!(m.len(), 9);
        assert_eq!(
            Reply::message_exceeds_fixed(8).to_bytes(),
            b"552 5.2.3 Message exceeds maximum fixed size (8)\r\n"
        );
    }

    // Every split point gives the same result (pipelined TCP segments may
    // cut anywhere).
    #[test]
    fn all_split_points() {
        let inputs: [&[u8]; 3] = [
            b"TESTING\r\n\n.\r\nmail FROM:<s@x>\r\n..x\r\n\r\r\n.\r\r\n\r\n.\r\nNOOP\r\n",
            b"EHLO a\r\nMAIL FROM: <a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r.\r\n.\r\nRSET\nQUIT\r\n",
            b"\r\n.\x00\r\n.\r\n",
        ];
        for input in inputs {
            for max in [0, 5] {
                let whole = simulate_session([input], max);
                for k in 0..=input.len() {
                    let (a, b) = input.split_at(k);
                    assert_eq!(simulate_session([a, b], max), whole, "split at {k}");
                }
                assert_eq!(simulate_session(input.chunks(1), max), whole);
                fuzz_invariants(input);
            }
        }
    }

    // RFC 3207 §4.2, CVE-2011-0411 (docs/security.md §4, hMailServer's
    // TestPlaintextCommandInjection): RSET sent with STARTTLS is dropped.
    #[test]
    fn starttls_discards_buffer() {
        let mut r = LineReader::new();
        r.feed(b"STARTTLS\r\nRSET\r\n");
        let Some(LineEvent::Line(l)) = r.next_line() else {
            panic!()
        };
        assert_eq!(parse_command(&l), Command::StartTls);
        assert_eq!(r.buffered(), 6);
        assert_eq!(r.discard_buffered(), 6);
        assert_eq!(r.next_line(), None);
        assert_eq!(
            Reply::ready_to_start_tls().to_bytes(),
            b"220 2.0.0 Ready to start TLS\r\n"
        );
    }

    // RFC 5321 §4.5.3.1.4: 512 octets incl. CRLF is the limit; a longer line
    // gives one TooLong and the next line is read normally, even when the
    // long line arrives in small pieces.
    #[test]
    fn line_too_long() {
        let ok = [b"N".repeat(510), b"\r\n".to_vec()].concat();
        assert_eq!(lines_of(&ok), vec![LineEvent::Line(b"N".repeat(510))]);
        let long = [b"N".repeat(511), b"\r\nQUIT\r\n".to_vec()].concat();
        assert_eq!(
            lines_of(&long),
            vec![LineEvent::TooLong, LineEvent::Line(b"QUIT".to_vec())]
        );
        let mut r = LineReader::new();
        let mut events = Vec::new();
        for _ in 0..1000 {
            r.feed(&[b'x'; 100]);
            events.extend(std::iter::from_fn(|| r.next_line()));
            assert!(
                r.buffered() < MAX_COMMAND_LINE,
                "accumulated line not capped"
            );
        }
        r.feed(b"\r\nNOOP\r\n");
        events.extend(std::iter::from_fn(|| r.next_line()));
        assert_eq!(
            events,
            vec![LineEvent::TooLong, LineEvent::Line(b"NOOP".to_vec())]
        );
        assert_eq!(
            Reply::line_too_long().to_bytes(),
            b"500 5.5.2 Line too long\r\n"
        );
    }

    // RFC 5321 §2.3.8: bare LF / bare CR in commands are rejected
    // (sendmail 8.18, Postfix smtpd_forbid_bare_newline=reject).
    #[test]
    fn bare_lf_and_cr_commands() {
        assert_eq!(
            lines_of(b"RSET\nQUIT\r\nNOOP\rQUIT\r\nDATA\r\r\n"),
            vec![
                LineEvent::BareLf,
                LineEvent::Line(b"QUIT".to_vec()),
                LineEvent::BareCr,
                LineEvent::BareCr
            ]
        );
        assert_eq!(
            Reply::bare_lf().to_bytes(),
            b"550 5.5.2 Error: bare <LF> received\r\n"
        );
        assert_eq!(
            Reply::bare_cr().to_bytes(),
            b"550 5.5.2 Error: bare <CR> received\r\n"
        );
    }

    // RFC 5321 §4.1.1 syntax; sendmail's texts, docs/sendmail-compat.md §6.5.
    #[test]
    fn command_parsing() {
        let p = |s: &str| parse_command(s.as_bytes());
        assert_eq!(p("ehlo client.test"), Command::Ehlo("client.test".into()));
        assert_eq!(p("  HeLo x "), Command::Helo("x".into()));
        assert_eq!(
            p("MAIL FROM:<a@b> SIZE=10"),
            Command::Mail("<a@b> SIZE=10".into())
        );
        assert_eq!(p("mail from: <a@b>"), Command::Mail("<a@b>".into()));
        assert_eq!(p("MAIL FROM : <>"), Command::Mail("<>".into()));
        assert_eq!(p("RCPT TO:<c@d>"), Command::Rcpt("<c@d>".into()));
        assert_eq!(p("data"), Command::Data);
        assert_eq!(p("DATA "), Command::Data);
        assert_eq!(p("rset"), Command::Rset);
        assert_eq!(p("NOOP anything"), Command::Noop);
        assert_eq!(p("QUIT"), Command::Quit);
        assert_eq!(p("HELP"), Command::Help(None));
        assert_eq!(p("HELP mail"), Command::Help(Some("mail".into())));
        assert_eq!(p("VRFY root"), Command::Vrfy("root".into()));
        assert_eq!(p("EXPN"), Command::Expn(String::new()));
        assert_eq!(p("starttls"), Command::StartTls);
        assert_eq!(
            p("AUTH PLAIN AGZvbwBiYXI="),
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGZvbwBiYXI=".into())
            }
        );
        assert_eq!(
            p("AUTH LOGIN"),
            Command::Auth {
                mechanism: "LOGIN".into(),
                initial: None
            }
        );
        assert_eq!(
            p("AUTH"),
            Command::Syntax(SyntaxError::AuthMechanismRequired)
        );
        assert_eq!(
            p("AUTH A B C"),
            Command::Syntax(SyntaxError::AuthTooManyArguments)
        );
        assert_eq!(p(""), Command::Empty);
        assert_eq!(p("   "), Command::Empty);
        assert_eq!(p("MAILFROM:<a>"), Command::Unknown("MAILFROM:<a>".into()));
        assert_eq!(p("XYZZY foo"), Command::Unknown("XYZZY foo".into()));
        let r = |s: &str| match p(s) {
            Command::Syntax(e) => Reply::syntax(&e).to_bytes(),
            c => panic!("{c:?}"),
        };
        assert_eq!(r("EHLO"), b"501 5.0.0 EHLO requires domain address\r\n");
        assert_eq!(r("helo  "), b"501 5.0.0 helo requires domain address\r\n");
        assert_eq!(
            r("MAIL"),
            b"501 5.5.2 Syntax error in parameters scanning \"\"\r\n"
        );
        assert_eq!(
            r("MAIL TO:<a@b>"),
            b"501 5.5.2 Syntax error in parameters scanning \"TO:<a@b>\"\r\n"
        );
        assert_eq!(
            r("MAIL FROM:"),
            b"501 5.5.2 Syntax error in parameters scanning \"FROM:\"\r\n"
        );
        assert_eq!(
            r("RCPT <a@b>"),
            b"501 5.5.2 Syntax error in parameters scanning \"<a@b>\"\r\n"
        );
        assert_eq!(
            r("DATA now"),
            b"501 5.5.4 Syntax error (no parameters allowed)\r\n"
        );
        assert_eq!(
            r("QUIT x"),
            b"501 5.5.4 Syntax error (no parameters allowed)\r\n"
        );
        assert_eq!(
            r("STARTTLS x"),
            b"501 5.5.4 Syntax error (no parameters allowed)\r\n"
        );
        assert_eq!(
            parse_command(b"MAIL FROM:<\xff@x>"),
            Command::Syntax(SyntaxError::InvalidCharacters {
                verb: "MAIL".into()
            })
        );
        assert_eq!(
            parse_command("MAIL FROM:<jörg@exämple.de> SMTPUTF8".as_bytes()),
            Command::Mail("<jörg@exämple.de> SMTPUTF8".into())
        );
        assert_eq!(
            parse_command(b"\xffHELO x"),
            Command::Unknown("\u{fffd}HELO x".into())
        );
    }

    // docs/sendmail-compat.md §6.5: every fixed reply text, byte-exact.
    #[test]
    fn reply_texts() {
        let cases: Vec<(Reply, &str)> = vec![
            (
                Reply::greeting(
                    "mail.example.com",
                    "Sendmail 8.13.8/8.13.8; Sat, 1 Jan 2005 12:00:00 +0100",
                ),
                "220 mail.example.com ESMTP Sendmail 8.13.8/8.13.8; Sat, 1 Jan 2005 12:00:00 +0100\r\n",
            ),
            (Reply::greeting("mx", ""), "220 mx ESMTP\r\n"),
            (
                Reply::greeting_message("mx.test mailtool ready"),
                "220 mx.test ESMTP mailtool ready\r\n",
            ),
            (
                Reply::not_accepting("mx.test"),
                "554 mx.test ESMTP not accepting messages\r\n",
            ),
            (
                Reply::helo("mx.test", "client.test [192.0.2.1]"),
                "250 mx.test Hello client.test [192.0.2.1], pleased to meet you\r\n",
            ),
            (
                Reply::helo_requires_domain("Ehlo"),
                "501 5.0.0 Ehlo requires domain address\r\n",
            ),
            (Reply::invalid_domain(), "501 5.0.0 Invalid domain name\r\n"),
            (
                Reply::sender_ok("<a@b>"),
                "250 2.1.0 <a@b>... Sender ok\r\n",
            ),
            (
                Reply::recipient_ok("<c@d>", false),
                "250 2.1.5 <c@d>... Recipient ok\r\n",
            ),
            (
                Reply::recipient_ok("<c@d>", true),
                "250 2.1.5 <c@d>... Recipient ok (will queue)\r\n",
            ),
            (
                Reply::user_unknown("<x@d>"),
                "550 5.1.1 <x@d>... User unknown\r\n",
            ),
            (
                Reply::sender_already_specified(),
                "503 5.5.0 Sender already specified\r\n",
            ),
            (
                Reply::polite_helo_first(),
                "503 5.0.0 Polite people say HELO first\r\n",
            ),
            (
                Reply::need_mail_before_rcpt(),
                "503 5.0.0 Need MAIL before RCPT\r\n",
            ),
            (Reply::need_mail(), "503 5.0.0 Need MAIL command\r\n"),
            (Reply::need_rcpt(), "503 5.0.0 Need RCPT (recipient)\r\n"),
            (
                Reply::size_exceeds_fixed(1000),
                "552 5.2.3 Message size exceeds fixed maximum message size (1000)\r\n",
            ),
            (
                Reply::message_exceeds_fixed(1000),
                "552 5.2.3 Message exceeds maximum fixed size (1000)\r\n",
            ),
            (
                Reply::too_many_recipients(),
                "452 4.5.3 Too many recipients\r\n",
            ),
            (
                Reply::enter_mail(),
                "354 Enter mail, end with \".\" on a line by itself\r\n",
            ),
            (
                Reply::accepted("k5FGx0Ax012345"),
                "250 2.0.0 k5FGx0Ax012345 Message accepted for delivery\r\n",
            ),
            (Reply::reset(), "250 2.0.0 Reset state\r\n"),
            (Reply::ok(), "250 2.0.0 OK\r\n"),
            (
                Reply::closing("mx.test"),
                "221 2.0.0 mx.test closing connection\r\n",
            ),
            (
                Reply::cannot_vrfy(),
                "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)\r\n",
            ),
            (
                Reply::not_allowed(),
                "502 5.7.0 Sorry, we do not allow this operation\r\n",
            ),
            (
                Reply::argument_required(),
                "501 5.5.2 Argument required\r\n",
            ),
            (
                Reply::unrecognized("XYZZY foo"),
                "500 5.5.1 Command unrecognized: \"XYZZY foo\"\r\n",
            ),
            (
                Reply::too_many_bad_commands("mx.test"),
                "421 4.7.0 mx.test Too many bad commands; closing connection\r\n",
            ),
            (Reply::command_rejected(), "550 5.0.0 Command rejected\r\n"),
            (
                Reply::try_again_later(),
                "451 4.3.2 Please try again later\r\n",
            ),
            (
                Reply::ready_to_start_tls(),
                "220 2.0.0 Ready to start TLS\r\n",
            ),
            (
                Reply::tls_not_available(),
                "454 4.7.0 TLS not available due to temporary reason\r\n",
            ),
            (Reply::line_too_long(), "500 5.5.2 Line too long\r\n"),
            (
                Reply::sync_error(),
                "554 5.5.0 Error: SMTP protocol synchronization\r\n",
            ),
            (
                Reply::help(Some("noop")),
                "214-2.0.0 NOOP\r\n214-2.0.0 \tDo nothing.\r\n214 2.0.0 End of HELP info\r\n",
            ),
            (
                Reply::help(Some("frobnicate-all")),
                "504 5.3.0 HELP topic \"frobnicate\" unknown\r\n",
            ),
        ];
        for (r, want) in cases {
            assert_eq!(String::from_utf8(r.to_bytes()).unwrap(), want);
        }
        let h = String::from_utf8(Reply::help(None).to_bytes()).unwrap();
        assert!(h.starts_with("214-2.0.0 This is mailtool\r\n"));
        assert!(h.ends_with("214 2.0.0 End of HELP info\r\n"));
    }

    // docs/sendmail-compat.md §6.5 EHLO keyword order; RFC 5321 §4.2.1 multi-line form.
    #[test]
    fn ehlo_reply() {
        let caps = EhloCaps {
            enhanced_status_codes: true,
            pipelining: true,
            expn: true,
            verb: true,
            eight_bit_mime: true,
            size: Some(1000),
            dsn: true,
            etrn: true,
            auth: vec!["LOGIN".into(), "PLAIN".into()],
            starttls: true,
            deliverby: Some(0),
            help: true,
            ..EhloCaps::default()
        };
        let r = Reply::ehlo("mx.test", "[192.0.2.1]", &caps);
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            "250-mx.test Hello [192.0.2.1], pleased to meet you\r\n250-ENHANCEDSTATUSCODES\r\n\
             250-PIPELINING\r\n250-EXPN\r\n250-VERB\r\n250-8BITMIME\r\n250-SIZE 1000\r\n250-DSN\r\n\
             250-ETRN\r\n250-AUTH LOGIN PLAIN\r\n250-STARTTLS\r\n250-DELIVERBY\r\n250 HELP\r\n"
        );
        // The null server (greet_pause violation): hello + ENHANCEDSTATUSCODES.
        let null = EhloCaps {
            enhanced_status_codes: true,
            ..EhloCaps::default()
        };
        assert_eq!(
            Reply::ehlo("mx", "[192.0.2.1]", &null).to_bytes(),
            b"250-mx Hello [192.0.2.1], pleased to meet you\r\n250 ENHANCEDSTATUSCODES\r\n"
        );
        // Display is for logs: no CRLF.
        assert_eq!(
            Reply::ehlo("mx", "[192.0.2.1]", &null).to_string(),
            "250-mx Hello [192.0.2.1], pleased to meet you\n250 ENHANCEDSTATUSCODES"
        );
        assert_eq!(
            EhloCaps {
                size: Some(0),
                ..EhloCaps::default()
            }
            .keywords(),
            vec!["SIZE"]
        );
    }

    // Echoed client text cannot inject lines (RFC 5321 §4.2; reply lines are
    // at most 512 octets, §4.5.3.1.5); sendmail's shortenstring.
    #[test]
    fn sanitizer_and_shortening() {
        assert_eq!(sanitize("a\r\nb\0c\td\x1b\u{85}"), "abc d");
        let r = Reply::unrecognized("X\r\n250 fake");
        assert_eq!(
            r.to_bytes(),
            b"500 5.5.1 Command unrecognized: \"X250 fake\"\r\n"
        );
        let long = "A".repeat(300) + &"B".repeat(300);
        let out = String::from_utf8(Reply::unrecognized(&long).to_bytes()).unwrap();
        assert_eq!(
            out,
            format!(
                "500 5.5.1 Command unrecognized: \"{}...{}\"\r\n",
                "A".repeat(100),
                "B".repeat(100)
            )
        );
        assert_eq!(shorten(&"x".repeat(202), MAX_SHORT_STR).len(), 202);
        assert_eq!(shorten(&"x".repeat(203), MAX_SHORT_STR).len(), 203);
        // to_bytes itself refuses CR/LF and over-long lines.
        let raw = Reply::new(250, format!("a\r\n{}", "é".repeat(600)));
        let b = raw.to_bytes();
        assert!(b.len() <= MAX_REPLY_LINE && b.ends_with(b"\r\n"));
        assert_eq!(b.iter().filter(|&&c| c == b'\n').count(), 1);
        assert_eq!(Reply::multi(250, vec![]).to_bytes(), b"250 \r\n");
    }

    // docs/sendmail-compat.md §7 confMAX_HOP: Received/X400-Received/Via/Mail-From in
    // the header section only; folded lines are continuations, not fields.
    #[test]
    fn hop_counting() {
        let msg = b"Received: from a\r\n\tby b; date\r\nreceived : x\r\nX400-Received: y\r\n\
                    Via: z\r\nMAIL-FROM: w\r\nSubject: hi\r\n  Received: folded, not a field\r\n\
                    X-Received: no\r\n\r\nReceived: in body\r\nVia: body\r\n";
        assert_eq!(count_hops(msg), 5);
        assert_eq!(count_hops(b"Received: a\nReceived: b\n\nReceived: c\n"), 2);
        assert_eq!(count_hops(b"not a header\r\nReceived: x\r\n"), 0);
        assert_eq!(count_hops(b" Received: x\r\n"), 0);
        assert_eq!(count_hops(b""), 0);
        assert_eq!(count_hops(&b"Received: x\r\n".repeat(26)), 26);
    }

    // sendmail's Received: shape (cf. $Received header definition).
    #[test]
    fn received_header_shape() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            received_header(
                "helo.test",
                Some("ptr.test"),
                ip,
                "mx.test",
                "ESMTP",
                "k5FGx0Ax012345",
                Some("<r@x>"),
                "Sat, 1 Jan 2005 12:00:00 +0100"
            ),
            "Received: from helo.test (ptr.test [192.0.2.1])\r\n\tby mx.test (mailtool) with ESMTP id k5FGx0Ax012345\r\n\tfor <r@x>; Sat, 1 Jan 2005 12:00:00 +0100\r\n"
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            received_header("h\r\nX-Evil: 1", None, v6, "mx", "ESMTPS", "q1", None, "d"),
            "Received: from hX-Evil: 1 ([IPv6:2001:db8::1])\r\n\tby mx (mailtool) with ESMTPS id q1; d\r\n"
        );
        let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        assert!(
            received_header("", None, mapped, "mx", "SMTP", "q", Some("a@b"), "d")
                .starts_with("Received: from [192.0.2.9] ([192.0.2.9])\r\n")
        );
    }
}
