//! Parser for the arguments of `MAIL FROM:` and `RCPT TO:` (RFC 5321 §4.1.2, §4.1.1.2, §4.1.1.3)
//! plus the ESMTP parameters we know about (SIZE, BODY, SMTPUTF8, RET, ENVID, NOTIFY, ORCPT, AUTH).
//!
//! The module is pure: no I/O, no policy. Its one job beyond syntax is to **keep every routing
//! trick visible** so that the relay policy can refuse it. Relay testers (nmap
//! `smtp-open-relay`, DSBL `relaytest`, Metasploit, MAPS; see docs/security.md §1–§2) rely on
//! mailers that "helpfully" rewrite `user%other@host`, `"user@other"@host`, `host!user`,
//! `@a,@b:user@c` or `user@other@host` into something that then gets relayed. We therefore never
//! strip or rewrite anything: the source route stays in [`Path::route`], the local part stays
//! exactly as written (quotes, `%`, `!` and even an unquoted `@` included), and
//! [`Path::routing_trick`] reports what was seen.
//!
//! Leniency follows sendmail where relay testers depend on it: no angle brackets
//! (`RCPT TO:listme@dsbl.org`), unqualified addresses (`<user>`, `<postmaster>`), a double `@`
//! split at the **last** `@` (sendmail's canonify ruleset "moves the gaze right", so
//! `a@b@c` is local part `a@b` at domain `c`), and mixed quoted/unquoted local parts such as
//! DSBL's `""x@y""@domain`. Everything else is strict RFC 5321: no control characters, no
//! whitespace outside quotes, no comments, balanced quotes/brackets, length limits.
//!
//! Non-ASCII: allowed (RFC 6531) only when the caller says SMTPUTF8 is in force; see
//! [`parse_mail_from`] and [`parse_rcpt_to`] for what the flag means for each command.
//! Otherwise any non-ASCII character in the address is refused with `553 5.6.7`, the code
//! RFC 6531 §3.7.4.1 gives for "Non-ASCII addresses not permitted".
//!
//! Errors carry sendmail's wording where sendmail has one (srvrsmtp.c `mail_esmtp_args` /
//! `rcpt_esmtp_args`, parseaddr.c `prescan`); see [`AddrError::reply_text`] and
//! [`AddrError::reply_line`] (which adds the `<addr>... ` echo per docs/sendmail-compat.md §6.3).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// RFC 5321 §4.5.3.1.1: maximum local-part length, in octets.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.2: maximum domain length, in octets.
pub const MAX_DOMAIN: usize = 255;
/// RFC 1035 §2.3.4 (referenced by RFC 5321 §4.1.2 via sub-domain): maximum label length.
pub const MAX_LABEL: usize = 63;
/// RFC 5321 §4.5.3.1.3: maximum reverse/forward path, "including the punctuation and element
/// separators", i.e. counting the two angle brackets.
pub const MAX_PATH: usize = 256;
/// RFC 3461 §4.4: an ENVID value (xtext as sent) must not exceed 100 characters.
pub const MAX_ENVID: usize = 100;
/// RFC 3461 §4.2: ORCPT is bounded by the 500-character limit of an ESMTP parameter value.
pub const MAX_ORCPT: usize = 500;
/// sendmail `shortenstring(…, MAXSHORTSTR)`: echoed client text is cut to this many chars so a
/// hostile client cannot make our reply lines arbitrarily long.
const MAX_ECHO: usize = 203;

// ---------------------------------------------------------------------------------------------
// Data types
// ---------------------------------------------------------------------------------------------

/// A reverse-path or forward-path: `<[A-d-l:]Mailbox>` or the null path `<>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Source route (`@a,@b:` → `["a", "b"]`), each hop exactly as written without its `@`.
    /// RFC 5321 §4.1.2 says servers SHOULD ignore it; we keep it so the policy can refuse it.
    pub route: Vec<String>,
    /// `None` is the null path `<>` (only valid for MAIL FROM).
    pub mailbox: Option<Mailbox>,
    /// Exactly what the client wrote inside the angle brackets (or the whole bare token when
    /// there were no brackets). Used for the `<addr>... Sender ok` echo.
    pub raw: String,
    /// `false` when the client sent `MAIL FROM:user@host` without `<>` (sendmail accepts it).
    pub bracketed: bool,
}

/// `Local-part [@ Domain]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The local part as written: quotes and backslash escapes are kept; see
    /// [`Mailbox::local_unquoted`] for the dequoted text.
    pub local: String,
    /// True when the local part contains at least one quoted string.
    pub quoted: bool,
    /// `None` = unqualified (`<user>`, `<postmaster>`), which sendmail accepts.
    pub domain: Option<Domain>,
}

/// The part after the (last) `@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Domain {
    /// A host name exactly as written (case kept); see [`Domain::lowercase`].
    Name(String),
    /// `[1.2.3.4]`
    V4(Ipv4Addr),
    /// `[IPv6:…]`
    V6(Ipv6Addr),
    /// RFC 5321 General-address-literal `[tag:content]`.
    General { tag: String, content: String },
}

/// What kind of sender-specified routing an address carries (Postfix calls it "untrusted
/// routing", `user[@%!]remote[@%!]site`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingTrick {
    /// `<@a,@b:user@c>`: an RFC 5321 A-d-l source route.
    SourceRoute,
    /// An `@` inside the local part: `"user@other"@host` / `"user@other"` (`quoted: true`) or
    /// the double-@ form `user@other@host` (`quoted: false`).
    AtInLocalPart { quoted: bool },
    /// `user%other@host` (also inside quotes: Postfix `resolve_dequoted_address` looks there).
    PercentHack,
    /// UUCP bang path `host!user` / `host!user@relay`.
    BangPath,
}

/// BODY= value (RFC 6152 §2, RFC 3030 §3 for BINARYMIME); the queue's `B` record too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Body {
    #[serde(rename = "7BIT")]
    SevenBit,
    #[serde(rename = "8BITMIME")]
    EightBitMime,
    #[serde(rename = "BINARYMIME")]
    BinaryMime,
}

impl Body {
    pub fn as_str(self) -> &'static str {
        match self {
            Body::SevenBit => "7BIT",
            Body::EightBitMime => "8BITMIME",
            Body::BinaryMime => "BINARYMIME",
        }
    }

    /// Case-insensitive parse of the SMTP keyword.
    pub fn parse(s: &str) -> Option<Body> {
        match s.to_ascii_uppercase().as_str() {
            "7BIT" => Some(Body::SevenBit),
            "8BITMIME" => Some(Body::EightBitMime),
            "BINARYMIME" => Some(Body::BinaryMime),
            _ => None,
        }
    }
}

/// RET= value (RFC 3461 §4.3); the queue's `r` record too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Ret {
    #[serde(rename = "FULL")]
    Full,
    #[serde(rename = "HDRS")]
    Hdrs,
}

impl Ret {
    pub fn as_str(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        }
    }

    /// Case-insensitive parse of the SMTP keyword.
    pub fn parse(s: &str) -> Option<Ret> {
        match s.to_ascii_uppercase().as_str() {
            "FULL" => Some(Ret::Full),
            "HDRS" => Some(Ret::Hdrs),
            _ => None,
        }
    }
}

/// RFC 3461 §4.1 NOTIFY=: NEVER, or a set of SUCCESS, FAILURE and DELAY. One type from the
/// RCPT parameter through the queue file to the RCPT we send; where it is held, `None` means
/// the client gave no NOTIFY.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
    pub never: bool,
}

impl Notify {
    /// `NEVER` alone, or a comma list of SUCCESS / FAILURE / DELAY, in any case; a keyword
    /// may repeat. NEVER in a list and empty items (`SUCCESS,,DELAY`) are refused.
    pub fn parse(v: &str) -> Option<Notify> {
        if v.eq_ignore_ascii_case("NEVER") {
            return Some(Notify {
                never: true,
                ..Notify::default()
            });
        }
        let mut n = Notify::default();
        for item in v.split(',') {
            match item.to_ascii_uppercase().as_str() {
                "SUCCESS" => n.success = true,
                "FAILURE" => n.failure = true,
                "DELAY" => n.delay = true,
                _ => return None,
            }
        }
        Some(n)
    }
}

/// The value as RCPT sends it: `NEVER`, or the keywords set, in RFC 3461's order
/// (`SUCCESS,FAILURE,DELAY`); empty when none is set.
impl fmt::Display for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.never {
            return f.write_str("NEVER");
        }
        let words = [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ];
        let set: Vec<&str> = words
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, w)| *w)
            .collect();
        f.write_str(&set.join(","))
    }
}

/// ESMTP parameters of one MAIL or RCPT command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// RFC 1870 SIZE=
    pub size: Option<u64>,
    /// RFC 6152 BODY=
    pub body: Option<Body>,
    /// RFC 6531 SMTPUTF8 (only set when the caller allows it; otherwise it lands in `other`).
    pub smtputf8: bool,
    /// RFC 3461 RET=
    pub ret: Option<Ret>,
    /// RFC 3461 ENVID=, xtext-decoded.
    pub envid: Option<String>,
    /// RFC 3461 NOTIFY=.
    pub notify: Option<Notify>,
    /// RFC 3461 ORCPT=addr-type;xtext → (addr-type as written, decoded address).
    pub orcpt: Option<(String, String)>,
    /// RFC 4954 §5 AUTH=, xtext-decoded; the literal `<>` (identity unknown) is kept as `"<>"`.
    pub auth: Option<String>,
    /// Parameters we do not know (keyword and value as written). The server decides; sendmail
    /// answers [`AddrError::UnrecognizedParam`] (`555 5.5.4 X parameter unrecognized`).
    pub other: Vec<(String, Option<String>)>,
}

/// Everything that can be wrong with a MAIL/RCPT argument. `Display` is the reply text;
/// [`AddrError::reply_text`] adds the codes. Strings echoed from the client are sanitised
/// (control and non-ASCII characters escaped, length capped) when the error is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// Empty argument (`MAIL FROM:`). sendmail skipword(): 501 5.5.2; the payload is the
    /// command's keyword, `FROM` or `TO`.
    #[error("Syntax error in parameters scanning \"{0}\"")]
    MissingAddress(&'static str),
    /// `RCPT TO:<>`: docs/sendmail-compat.md §6.5, 553 5.0.0.
    #[error("User address required")]
    NullRecipient,
    /// `<@host>`, `<"">`, `<@a:@host>`: nothing before the `@`.
    #[error("User address required")]
    EmptyLocalPart,
    /// `<user@>`.
    #[error("Hostname required")]
    EmptyDomain,
    /// Unbalanced `<`, `>`, `"`, `[` or `]` (sendmail prescan wording).
    #[error("Unbalanced '{0}'")]
    Unbalanced(char),
    /// A character that may not appear where it does (e.g. `,` or `;` in a local part, `\`
    /// outside quotes, a nested `<`).
    #[error("Invalid character '{}' in address", echo_text(&.0.to_string()))]
    IllegalChar(char),
    /// Any control character (C0, DEL, C1), including NUL, CR, LF and TAB.
    #[error("Invalid control character in address")]
    ControlChar,
    /// Space outside a quoted string inside `<…>`.
    #[error("Whitespace not allowed in address")]
    Whitespace,
    /// Not a host name, dotted quad, `IPv6:` literal or general literal. Payload: the domain
    /// (sanitised) for logs; it is not put in the reply, which already echoes the address.
    #[error("Invalid domain name")]
    InvalidDomain(String),
    /// Malformed A-d-l (`@a,,@b:`, `@a,b:`).
    #[error("Invalid route address")]
    InvalidRoute,
    /// RFC 5321 §4.5.3.1.1. Payload: the length in octets.
    #[error("Local part too long ({0} octets, {MAX_LOCAL_PART} max)")]
    LocalPartTooLong(usize),
    /// RFC 5321 §4.5.3.1.2 (also used for a label over 63 octets).
    #[error("Domain name too long ({0} octets, {MAX_DOMAIN} max)")]
    DomainTooLong(usize),
    /// RFC 5321 §4.5.3.1.3. Payload: the length including `<>`.
    #[error("Address too long ({0} octets, {MAX_PATH} max)")]
    PathTooLong(usize),
    /// Non-ASCII in an address without SMTPUTF8 (RFC 6531 §3.7.4.1). Payload: "sender" or
    /// "recipient".
    #[error("Non-ASCII addresses not permitted for that {0}")]
    NonAscii(&'static str),
    /// Text after the address that is neither whitespace nor parameters (`<a@b>junk`).
    #[error("Syntax error in parameters scanning \"{0}\"")]
    JunkAfterAddress(String),
    /// A malformed `keyword[=value]` token (bad keyword, `=` or control characters in the value).
    #[error("Syntax error in parameters scanning \"{0}\"")]
    ParamSyntax(String),
    /// `SIZE`, `SIZE=`, … (sendmail: "SIZE requires a value", "AUTH= requires a value").
    #[error("{0} requires a value")]
    ParamNeedsValue(String),
    /// A value outside the parameter's grammar (`SIZE=12x`, `RET=ALL`, `NOTIFY=NEVER,DELAY`,
    /// `SMTPUTF8=yes`).
    #[error("Bad argument \"{value}\" to {keyword}")]
    BadParamValue { keyword: String, value: String },
    /// sendmail: `501 5.5.4 Unknown BODY type X`.
    #[error("Unknown BODY type {0}")]
    UnknownBody(String),
    /// SIZE= does not fit in u64 (sendmail: strtol overflow → 552 5.2.3).
    #[error("Message size exceeds maximum value")]
    SizeOverflow,
    /// Bad xtext (or bad addr-type / empty address) in ENVID, ORCPT or AUTH.
    #[error("Syntax error in {0} parameter value")]
    XtextSyntax(&'static str),
    /// Same keyword twice (case-insensitive), known or not.
    #[error("Duplicate {0} parameter")]
    DuplicateParam(String),
    /// A MAIL-only parameter on RCPT or vice versa.
    #[error("{keyword} parameter not allowed with {command}")]
    WrongCommand {
        keyword: String,
        command: &'static str,
    },
    /// Never returned by the parser (unknown keywords go to [`Params::other`]); provided so the
    /// server can produce sendmail's `555 5.5.4 X parameter unrecognized`.
    #[error("{0} parameter unrecognized")]
    UnrecognizedParam(String),
}

impl AddrError {
    /// `(reply code, enhanced status code, text)`. The text never contains CR or LF.
    ///
    /// | variant | reply |
    /// |---|---|
    /// | MissingAddress | `501 5.5.2 Syntax error in parameters scanning "FROM"` |
    /// | NullRecipient | `553 5.0.0 User address required` |
    /// | EmptyLocalPart | `553 5.1.3 User address required` |
    /// | EmptyDomain | `553 5.1.3 Hostname required` |
    /// | Unbalanced | `553 5.0.0 Unbalanced '<'` |
    /// | IllegalChar / ControlChar / Whitespace / InvalidRoute | `553 5.1.3 …` |
    /// | InvalidDomain | `553 5.1.2 Invalid domain name` |
    /// | LocalPartTooLong / DomainTooLong | `553 5.1.3 … too long (N octets, M max)` |
    /// | PathTooLong | `553 5.1.0 Address too long (N octets, 256 max)` |
    /// | NonAscii | `553 5.6.7 Non-ASCII addresses not permitted for that sender` |
    /// | JunkAfterAddress / ParamSyntax | `501 5.5.2 Syntax error in parameters scanning "…"` |
    /// | ParamNeedsValue | `501 5.5.2 SIZE requires a value` |
    /// | BadParamValue | `501 5.5.4 Bad argument "x" to RET` |
    /// | UnknownBody | `501 5.5.4 Unknown BODY type x` |
    /// | SizeOverflow | `552 5.2.3 Message size exceeds maximum value` |
    /// | XtextSyntax | `501 5.5.4 Syntax error in ENVID parameter value` |
    /// | DuplicateParam | `501 5.5.0 Duplicate RET parameter` |
    /// | WrongCommand | `501 5.5.4 NOTIFY parameter not allowed with MAIL` |
    /// | UnrecognizedParam | `555 5.5.4 FOO parameter unrecognized` |
    pub fn reply_text(&self) -> (u16, &'static str, String) {
        use AddrError::*;
        let (code, dsn) = match self {
            MissingAddress(_) | JunkAfterAddress(_) | ParamSyntax(_) | ParamNeedsValue(_) => {
                (501, "5.5.2")
            }
            NullRecipient | Unbalanced(_) => (553, "5.0.0"),
            EmptyLocalPart | EmptyDomain | IllegalChar(_) | ControlChar | Whitespace
            | InvalidRoute | LocalPartTooLong(_) | DomainTooLong(_) => (553, "5.1.3"),
            InvalidDomain(_) => (553, "5.1.2"),
            PathTooLong(_) => (553, "5.1.0"),
            NonAscii(_) => (553, "5.6.7"),
            BadParamValue { .. } | UnknownBody(_) | XtextSyntax(_) | WrongCommand { .. } => {
                (501, "5.5.4")
            }
            SizeOverflow => (552, "5.2.3"),
            DuplicateParam(_) => (501, "5.5.0"),
            UnrecognizedParam(_) => (555, "5.5.4"),
        };
        (code, dsn, self.to_string())
    }

    /// The full reply line (without CRLF). Per docs/sendmail-compat.md §6.3 the `<addr>... ` part is
    /// present only for codes 050/250/252/450/550/553; `echo` is the address as the client
    /// typed it (see [`address_echo`]). It is sanitised here as well.
    pub fn reply_line(&self, echo: &str) -> String {
        let (code, dsn, text) = self.reply_text();
        if matches!(code, 50 | 250 | 252 | 450 | 550 | 553) {
            format!("{code} {dsn} {}... {text}", sanitize(echo))
        } else {
            format!("{code} {dsn} {text}")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Display and helpers on the data types
// ---------------------------------------------------------------------------------------------

impl fmt::Display for Path {
    /// The path as the client wrote it: `<raw>` when bracketed, else the bare token. Re-parsing
    /// this text yields an equal `Path` (the fuzz target checks that).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bracketed {
            write!(f, "<{}>", self.raw)
        } else {
            f.write_str(&self.raw)
        }
    }
}

impl Path {
    /// The null reverse-path `<>`.
    pub fn is_null(&self) -> bool {
        self.mailbox.is_none()
    }

    /// A non-empty A-d-l source route was given.
    pub fn has_route(&self) -> bool {
        !self.route.is_empty()
    }

    /// The first routing trick found: source route first, then the mailbox's own
    /// ([`Mailbox::routing_trick`]).
    pub fn routing_trick(&self) -> Option<RoutingTrick> {
        if self.has_route() {
            return Some(RoutingTrick::SourceRoute);
        }
        self.mailbox.as_ref().and_then(Mailbox::routing_trick)
    }

    /// Every routing trick present, in a fixed order (for logging).
    pub fn routing_tricks(&self) -> Vec<RoutingTrick> {
        let mut v = Vec::new();
        if self.has_route() {
            v.push(RoutingTrick::SourceRoute);
        }
        if let Some(mb) = &self.mailbox {
            v.extend(mb.routing_tricks());
        }
        v
    }
}

impl fmt::Display for Mailbox {
    /// `local@domain` with the local part as written and the domain in [`Domain`]'s display
    /// form (literals canonicalised). For the client's exact text use [`Path::raw`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.local)?;
        if let Some(d) = &self.domain {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl Mailbox {
    /// The local part with quotes removed and quoted-pairs unescaped:
    /// `"a\"b"` → `a"b`, `""x@y""` → `x@y`.
    pub fn local_unquoted(&self) -> String {
        let mut out = String::with_capacity(self.local.len());
        let mut in_q = false;
        let mut chars = self.local.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => in_q = !in_q,
                '\\' if in_q => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                _ => out.push(c),
            }
        }
        out
    }

    /// Unqualified `postmaster` (any case, unquoted): RFC 5321 §4.1.1.3 requires accepting
    /// `RCPT TO:<Postmaster>` without a domain.
    pub fn is_postmaster(&self) -> bool {
        self.domain.is_none() && !self.quoted && self.local.eq_ignore_ascii_case("postmaster")
    }

    /// The first routing trick in the local part, in the order `@`, `%`, `!`. Normal addresses
    /// (`user@host`, `"first last"@host`, `user+tag@host`) return `None`.
    pub fn routing_trick(&self) -> Option<RoutingTrick> {
        self.routing_tricks().into_iter().next()
    }

    /// All routing tricks in the local part.
    pub fn routing_tricks(&self) -> Vec<RoutingTrick> {
        let (mut at_q, mut at_u, mut pct, mut bang) = (false, false, false, false);
        let mut in_q = false;
        let mut chars = self.local.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => in_q = !in_q,
                '\\' if in_q => {
                    // An escaped character is still that character once dequoted, which is
                    // what a resolver that "looks inside quotes" will act on.
                    match chars.next() {
                        Some('@') => at_q = true,
                        Some('%') => pct = true,
                        Some('!') => bang = true,
                        _ => {}
                    }
                }
                '@' if in_q => at_q = true,
                '@' => at_u = true,
                '%' => pct = true,
                '!' => bang = true,
                _ => {}
            }
        }
        let mut v = Vec::new();
        if at_u {
            v.push(RoutingTrick::AtInLocalPart { quoted: false });
        }
        if at_q {
            v.push(RoutingTrick::AtInLocalPart { quoted: true });
        }
        if pct {
            v.push(RoutingTrick::PercentHack);
        }
        if bang {
            v.push(RoutingTrick::BangPath);
        }
        v
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Name(n) => f.write_str(n),
            Domain::V4(a) => write!(f, "[{a}]"),
            Domain::V6(a) => write!(f, "[IPv6:{a}]"),
            Domain::General { tag, content } => write!(f, "[{tag}:{content}]"),
        }
    }
}

impl Domain {
    /// Lower-cased display form, for case-insensitive comparison with class w/R, maps, etc.
    pub fn lowercase(&self) -> String {
        match self {
            Domain::Name(n) => n.to_lowercase(),
            other => other.to_string().to_lowercase(),
        }
    }

    /// An address literal (`[…]`) rather than a name.
    pub fn is_literal(&self) -> bool {
        !matches!(self, Domain::Name(_))
    }
}

// ---------------------------------------------------------------------------------------------
// xtext (RFC 3461 §4)
// ---------------------------------------------------------------------------------------------

pub use crate::wire::xtext::{decode as xtext_decode, encode as xtext_encode};

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Mail,
    Rcpt,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::Mail => "MAIL",
            Cmd::Rcpt => "RCPT",
        }
    }
}

/// Parse the text after `MAIL FROM:` (leading spaces allowed, as sendmail does).
///
/// `smtputf8_allowed`: the server advertised SMTPUTF8. Only then is an `SMTPUTF8` parameter
/// honoured (otherwise it is left in [`Params::other`] as an unknown parameter), and only when
/// the parameter is present may the address contain UTF-8 (RFC 6531 §3.4).
pub fn parse_mail_from(arg: &str, smtputf8_allowed: bool) -> Result<(Path, Params), AddrError> {
    parse(arg, Cmd::Mail, smtputf8_allowed)
}

/// Parse the text after `RCPT TO:`. `<postmaster>` parses as an unqualified mailbox (see
/// [`Mailbox::is_postmaster`]); `<>` is refused ([`AddrError::NullRecipient`]).
///
/// `smtputf8_allowed`: the transaction is SMTPUTF8, i.e. the server offered it **and** the
/// MAIL command carried the parameter (pass the MAIL's `params.smtputf8`). SMTPUTF8 itself is a
/// MAIL-only parameter (RFC 6531 §3.4).
pub fn parse_rcpt_to(arg: &str, smtputf8_allowed: bool) -> Result<(Path, Params), AddrError> {
    parse(arg, Cmd::Rcpt, smtputf8_allowed)
}

/// The address part of a MAIL/RCPT argument as the client typed it (brackets included), for
/// the `<addr>... ` echo in error replies when no [`Path`] could be built. Sanitised.
pub fn address_echo(arg: &str) -> String {
    let s = arg.trim_start_matches([' ', '\t']);
    let end = if s.starts_with('<') {
        match scan_angle(s) {
            Ok(i) => i + 1,
            Err(_) => s.len(),
        }
    } else {
        // On a stray `>` or open quote, still stop at the first blank so parameters are not
        // echoed as part of the address.
        scan_bare(s).unwrap_or_else(|_| s.find([' ', '\t']).unwrap_or(s.len()))
    };
    sanitize(s.get(..end).unwrap_or(s))
}

mod echo;
mod params;
mod path;

pub use echo::echo_text;
use echo::*;
use params::*;
use path::*;

#[cfg(test)]
mod tests {
    use super::*;
    use RoutingTrick::*;

    fn mail(a: &str) -> Path {
        match parse_mail_from(a, false) {
            Ok((p, _)) => p,
            Err(e) => panic!("MAIL FROM:{a} failed: {e:?}"),
        }
    }
    fn rcpt(a: &str) -> Path {
        match parse_rcpt_to(a, false) {
            Ok((p, _)) => p,
            Err(e) => panic!("RCPT TO:{a} failed: {e:?}"),
        }
    }
    fn mail_err(a: &str) -> AddrError {
        match parse_mail_from(a, false) {
            Ok(p) => panic!("MAIL FROM:{a} unexpectedly parsed: {p:?}"),
            Err(e) => e,
        }
    }
    fn rcpt_err(a: &str) -> AddrError {
        match parse_rcpt_to(a, false) {
            Ok(p) => panic!("RCPT TO:{a} unexpectedly parsed: {p:?}"),
            Err(e) => e,
        }
    }
    fn mb(p: &Path) -> &Mailbox {
        p.mailbox.as_ref().expect("mailbox")
    }
    fn name(s: &str) -> Option<Domain> {
        Some(Domain::Name(s.to_string()))
    }
    const IP: Option<Domain> = Some(Domain::V4(Ipv4Addr::LOCALHOST));
    fn reply(e: &AddrError) -> String {
        let (c, d, t) = e.reply_text();
        format!("{c} {d} {t}")
    }

    // --- docs/security.md §1: nmap smtp-open-relay, the 16 tests (MAIL side) -----------------

    // §1 tests 1–4 MAIL: `<>`, `{from}@{domain}`, `{from}@{srv}`, `{from}@[{ip}]` — no tricks.
    #[test]
    fn nmap_senders_parse_plainly() {
        let p = mail("<>");
        assert!(p.is_null() && p.bracketed && p.raw.is_empty());
        assert_eq!(p.to_string(), "<>");
        for (a, d) in [
            ("<antispam@nmap.scanme.org>", name("nmap.scanme.org")),
            ("<antispam@mail.example1.com>", name("mail.example1.com")),
            ("<antispam@[127.0.0.1]>", IP),
        ] {
            let p = mail(a);
            assert_eq!(mb(&p).local, "antispam");
            assert_eq!(mb(&p).domain, d);
            assert_eq!(p.routing_trick(), None, "{a}");
            assert_eq!(p.to_string(), a);
        }
    }

    // §1 tests 1–4 RCPT `{to}@{domain}`: the plain relay attempt, no trick (policy decides).
    #[test]
    fn nmap_plain_recipient() {
        let p = rcpt("<relaytest@nmap.scanme.org>");
        assert_eq!(mb(&p).local, "relaytest");
        assert_eq!(mb(&p).domain, name("nmap.scanme.org"));
        assert!(!p.has_route());
        assert_eq!(p.routing_trick(), None);
    }

    // §1 test 5: `{to}%{domain}@[{ip}]` — percent hack + IP literal.
    #[test]
    fn nmap_05_percent_ip_literal() {
        let p = rcpt("<relaytest%nmap.scanme.org@[127.0.0.1]>");
        assert_eq!(mb(&p).local, "relaytest%nmap.scanme.org");
        assert_eq!(mb(&p).domain, IP);
        assert_eq!(p.routing_trick(), Some(PercentHack));
    }

    // §1 test 6: `{to}%{domain}@{srv}` — percent hack.
    #[test]
    fn nmap_06_percent_srv() {
        let p = rcpt("<relaytest%nmap.scanme.org@mail.example1.com>");
        assert_eq!(mb(&p).domain, name("mail.example1.com"));
        assert_eq!(mb(&p).routing_trick(), Some(PercentHack));
    }

    // §1 test 7: `"{to}@{domain}"` — quoted, no domain (unqualified, sendmail accepts).
    #[test]
    fn nmap_07_quoted_at_unqualified() {
        let p = rcpt("<\"relaytest@nmap.scanme.org\">");
        let m = mb(&p);
        assert!(m.quoted);
        assert_eq!(m.domain, None);
        assert_eq!(m.local, "\"relaytest@nmap.scanme.org\"");
        assert_eq!(m.local_unquoted(), "relaytest@nmap.scanme.org");
        assert_eq!(p.routing_trick(), Some(AtInLocalPart { quoted: true }));
    }

    // §1 test 8: `"{to}%{domain}"` — quoted percent hack (Postfix resolve_dequoted_address, §2).
    #[test]
    fn nmap_08_quoted_percent() {
        let p = rcpt("<\"relaytest%nmap.scanme.org\">");
        assert!(mb(&p).quoted && mb(&p).domain.is_none());
        assert_eq!(p.routing_trick(), Some(PercentHack));
    }

    // §1 test 9: `{to}@{domain}@[{ip}]` — double @, split at the last @ like sendmail canonify.
    #[test]
    fn nmap_09_double_at_ip() {
        let p = rcpt("<relaytest@nmap.scanme.org@[127.0.0.1]>");
        assert_eq!(mb(&p).local, "relaytest@nmap.scanme.org");
        assert!(!mb(&p).quoted);
        assert_eq!(mb(&p).domain, IP);
        assert_eq!(p.routing_trick(), Some(AtInLocalPart { quoted: false }));
    }

    // §1 test 10: `"{to}@{domain}"@[{ip}]` — quoted local part holding an address.
    #[test]
    fn nmap_10_quoted_local_at_ip() {
        let p = rcpt("<\"relaytest@nmap.scanme.org\"@[127.0.0.1]>");
        assert_eq!(mb(&p).local, "\"relaytest@nmap.scanme.org\"");
        assert_eq!(mb(&p).domain, IP);
        assert_eq!(p.routing_trick(), Some(AtInLocalPart { quoted: true }));
    }

    // §1 test 11: `{to}@{domain}@{srv}` — double @.
    #[test]
    fn nmap_11_double_at_srv() {
        let p = rcpt("<relaytest@nmap.scanme.org@mail.example1.com>");
        assert_eq!(mb(&p).local, "relaytest@nmap.scanme.org");
        assert_eq!(mb(&p).domain, name("mail.example1.com"));
        assert_eq!(p.routing_trick(), Some(AtInLocalPart { quoted: false }));
    }

    // §1 test 12: `@[{ip}]:{to}@{domain}` — source route through an IP literal.
    #[test]
    fn nmap_12_source_route_ip() {
        let p = rcpt("<@[127.0.0.1]:relaytest@nmap.scanme.org>");
        assert_eq!(p.route, vec!["[127.0.0.1]"]);
        assert!(p.has_route());
        assert_eq!(mb(&p).domain, name("nmap.scanme.org"));
        assert_eq!(p.routing_trick(), Some(SourceRoute));
        // RFC 5321 §4.1.2 Path: the mailbox alone carries no trick; the Path does.
        assert_eq!(mb(&p).routing_trick(), None);
    }

    // §1 test 13: `@{srv}:{to}@{domain}` — source route.
    #[test]
    fn nmap_13_source_route_srv() {
        let p = rcpt("<@mail.example1.com:relaytest@nmap.scanme.org>");
        assert_eq!(p.route, vec!["mail.example1.com"]);
        assert_eq!(p.routing_trick(), Some(SourceRoute));
        assert_eq!(
            p.to_string(),
            "<@mail.example1.com:relaytest@nmap.scanme.org>"
        );
    }

    // §1 test 14: `{domain}!{to}` — bang path, unqualified.
    #[test]
    fn nmap_14_bang() {
        let p = rcpt("<nmap.scanme.org!relaytest>");
        assert_eq!(mb(&p).local, "nmap.scanme.org!relaytest");
        assert_eq!(mb(&p).domain, None);
        assert_eq!(p.routing_trick(), Some(BangPath));
    }

    // §1 test 15: `{domain}!{to}@[{ip}]`.
    #[test]
    fn nmap_15_bang_ip() {
        let p = rcpt("<nmap.scanme.org!relaytest@[127.0.0.1]>");
        assert_eq!(mb(&p).domain, IP);
        assert_eq!(p.routing_trick(), Some(BangPath));
    }

    // §1 test 16: `{domain}!{to}@{srv}`.
    #[test]
    fn nmap_16_bang_srv() {
        let p = rcpt("<nmap.scanme.org!relaytest@mail.example1.com>");
        assert_eq!(mb(&p).domain, name("mail.example1.com"));
        assert_eq!(p.routing_trick(), Some(BangPath));
    }

    // --- docs/security.md §2: forms from other batteries ---------------------------------------

    // §2 DSBL: RCPT without angle brackets; also MAIL without, with parameters after a space.
    #[test]
    fn dsbl_no_brackets() {
        let p = rcpt("listme@dsbl.org");
        assert!(!p.bracketed);
        assert_eq!(p.raw, "listme@dsbl.org");
        assert_eq!(p.to_string(), "listme@dsbl.org");
        assert_eq!(mb(&p).domain, name("dsbl.org"));
        let (p, params) = parse_mail_from("antispam@nmap.scanme.org SIZE=10", false).unwrap();
        assert!(!p.bracketed);
        assert_eq!(params.size, Some(10));
    }

    // §2 DSBL: bang path in the sender.
    #[test]
    fn dsbl_bang_sender() {
        let p = mail("<nmap.scanme.org!nobody>");
        assert_eq!(p.routing_trick(), Some(BangPath));
    }

    // §2 DSBL / MAPS: senders at localhost and [127.0.0.1]; Metasploit test 4 recipient
    // `{touser}@[{rhost}]`; rlytest `nobody@{target-host}`.
    #[test]
    fn localhost_and_target_literal() {
        assert_eq!(mb(&mail("<antispam@localhost>")).domain, name("localhost"));
        assert_eq!(mb(&mail("<antispam@[127.0.0.1]>")).domain, IP);
        let p = rcpt("<relaytest@[127.0.0.1]>");
        assert_eq!(mb(&p).domain, IP);
        assert_eq!(p.routing_trick(), None);
        assert_eq!(mail("<nobody@mail.example1.com>").routing_trick(), None);
    }

    // §2 DSBL `"x%y"`.
    #[test]
    fn dsbl_quoted_percent() {
        assert_eq!(rcpt("<\"x%y\">").routing_trick(), Some(PercentHack));
    }

    // §2 DSBL `""x@y""@{domain}`: empty quoted strings around an unquoted `x@y`.
    #[test]
    fn dsbl_double_quotes() {
        let p = rcpt("<\"\"x@y\"\"@nmap.scanme.org>");
        let m = mb(&p);
        assert_eq!(m.local, "\"\"x@y\"\"");
        assert!(m.quoted);
        assert_eq!(m.local_unquoted(), "x@y");
        assert_eq!(m.domain, name("nmap.scanme.org"));
        assert_eq!(p.routing_trick(), Some(AtInLocalPart { quoted: false }));
    }

    // §2 DSBL `@{domain}:x@y`.
    #[test]
    fn dsbl_route() {
        let p = rcpt("<@nmap.scanme.org:x@y>");
        assert_eq!(p.route, vec!["nmap.scanme.org"]);
        assert_eq!(mb(&p).local, "x");
        assert_eq!(mb(&p).domain, name("y"));
        assert_eq!(p.routing_trick(), Some(SourceRoute));
    }

    // §2 MAPS: unqualified sender `<spamtest>`; quote test `<"nobody@mail-abuse.org">`.
    #[test]
    fn maps_forms() {
        let p = mail("<spamtest>");
        assert_eq!(mb(&p).domain, None);
        assert_eq!(p.routing_trick(), None);
        assert_eq!(
            rcpt("<\"nobody@mail-abuse.org\">").routing_trick(),
            Some(AtInLocalPart { quoted: true })
        );
    }

    // RFC 5321 §4.1.1.3: `RCPT TO:<Postmaster>` must be accepted without a domain.
    #[test]
    fn postmaster() {
        assert!(mb(&rcpt("<Postmaster>")).is_postmaster());
        assert!(mb(&rcpt("<postmaster>")).is_postmaster());
        assert!(!mb(&rcpt("<postmaster@x.org>")).is_postmaster());
        assert!(!mb(&rcpt("<\"postmaster\">")).is_postmaster());
    }

    // RFC 5321 §4.1.2 A-d-l: several hops, literal hops, IPv6 hop (colons inside brackets).
    #[test]
    fn multi_hop_routes() {
        let p = rcpt("<@a.example,@[10.0.0.1],@[IPv6:::1]:u@b.example>");
        assert_eq!(p.route, vec!["a.example", "[10.0.0.1]", "[IPv6:::1]"]);
        assert_eq!(mb(&p).domain, name("b.example"));
        assert_eq!(p.routing_tricks(), vec![SourceRoute]);
        assert_eq!(rcpt_err("<@a,b:u@c>"), AddrError::InvalidRoute);
        assert_eq!(rcpt_err("<@a,,@b:u@c>"), AddrError::InvalidRoute);
        assert_eq!(rcpt_err("<@:u@c>"), AddrError::InvalidRoute);
        assert!(matches!(
            rcpt_err("<@-bad:u@c>"),
            AddrError::InvalidDomain(_)
        ));
        assert_eq!(rcpt_err("<@a:>"), AddrError::EmptyLocalPart);
    }

    // Normal addresses never flag (RFC 5321 §4.1.2 Dot-string / Quoted-string).
    #[test]
    fn normal_addresses_do_not_flag() {
        for a in [
            "<user@example.com>",
            "<first.last+tag@sub.example.co.uk>",
            "<\"first last\"@example.com>",
            "<o'hara@example.com>",
            "<a-b_c=d?e{f}@x-y.example>",
            "<user@[IPv6:2001:db8::1]>",
            "<user>",
        ] {
            assert_eq!(rcpt(a).routing_tricks(), vec![], "{a}");
        }
    }

    // Several tricks at once are all reported, in a fixed order.
    #[test]
    fn all_tricks_listed() {
        let p = rcpt("<@r:a!b%c@d@e>");
        assert_eq!(
            p.routing_tricks(),
            vec![
                SourceRoute,
                AtInLocalPart { quoted: false },
                PercentHack,
                BangPath
            ]
        );
        // An escaped `@` inside quotes still counts (it is an `@` once dequoted).
        assert_eq!(
            rcpt("<\"a\\@b\"@c>").routing_trick(),
            Some(AtInLocalPart { quoted: true })
        );
    }

    // --- RFC 5321 §4.1.2 / §4.1.3 literals -------------------------------------------------------

    // §4.1.3 IPv6-address-literal, `IPv6:` tag case-insensitive (RFC 5234 §2.3 strings).
    #[test]
    fn ipv6_literals() {
        for (a, ip) in [
            ("<u@[IPv6:::1]>", "::1"),
            ("<u@[ipv6:2001:DB8::1]>", "2001:db8::1"),
            ("<u@[IPv6:::ffff:1.2.3.4]>", "::ffff:1.2.3.4"),
            ("<u@[IPv6:1:2:3:4:5:6:7:8]>", "1:2:3:4:5:6:7:8"),
        ] {
            let p = rcpt(a);
            let want: Ipv6Addr = ip.parse().unwrap();
            assert_eq!(mb(&p).domain, Some(Domain::V6(want)), "{a}");
            assert_eq!(p.to_string(), a, "echo keeps the client's spelling");
        }
        assert_eq!(Domain::V6(Ipv6Addr::LOCALHOST).to_string(), "[IPv6:::1]");
        for bad in [
            "<u@[IPv6:::g]>",
            "<u@[IPv6:1.2.3.4]>",
            "<u@[IPv6:]>",
            "<u@[IPv6:::1%eth0]>",
        ] {
            assert!(
                matches!(rcpt_err(bad), AddrError::InvalidDomain(_)),
                "{bad}"
            );
        }
    }

    // §4.1.3 IPv4-address-literal must be a dotted quad; General-address-literal `tag:dcontent`.
    #[test]
    fn ipv4_and_general_literals() {
        for bad in [
            "<u@[1.2.3]>",
            "<u@[256.1.1.1]>",
            "<u@[01.2.3.4]>",
            "<u@[]>",
            "<u@[a b]>",
        ] {
            let e = rcpt_err(bad);
            assert!(
                matches!(e, AddrError::InvalidDomain(_) | AddrError::Whitespace),
                "{bad}: {e:?}"
            );
        }
        assert_eq!(
            mb(&rcpt("<u@[x-tag:some.content]>")).domain,
            Some(Domain::General {
                tag: "x-tag".into(),
                content: "some.content".into()
            })
        );
        assert!(matches!(
            rcpt_err("<u@[-x:c]>"),
            AddrError::InvalidDomain(_)
        ));
        assert_eq!(rcpt_err("<u@[1.2.3.4>"), AddrError::Unbalanced('['));
        assert!(matches!(
            rcpt_err("<u@[1.2.3.4]x>"),
            AddrError::InvalidDomain(_)
        ));
        assert_eq!(rcpt_err("<u@1.2.3.4]>"), AddrError::Unbalanced(']'));
        // Unbracketed dotted quad is a (numeric) Domain per the grammar; kept as a Name.
        assert_eq!(mb(&rcpt("<u@127.0.0.1>")).domain, name("127.0.0.1"));
    }

    // §4.1.2 sub-domain = Let-dig [Ldh-str]; Domain::lowercase for comparisons.
    #[test]
    fn domain_names() {
        let p = rcpt("<u@Mail.Example1.COM>");
        let d = mb(&p).domain.clone().unwrap();
        assert_eq!(d.to_string(), "Mail.Example1.COM");
        assert_eq!(d.lowercase(), "mail.example1.com");
        assert!(!d.is_literal());
        for bad in [
            "<u@-a.com>",
            "<u@a-.com>",
            "<u@a..com>",
            "<u@.a.com>",
            "<u@a.com.>",
            "<u@a_b.com>",
        ] {
            assert!(
                matches!(rcpt_err(bad), AddrError::InvalidDomain(_)),
                "{bad}"
            );
        }
        assert_eq!(rcpt_err("<u@a\"b>"), AddrError::Unbalanced('"'));
        assert_eq!(
            rcpt_err("<u@a\"b\">"),
            AddrError::InvalidDomain("a\"b\"".into())
        );
    }

    // §4.1.2 Quoted-string with quoted-pairSMTP: `"a\"b"@x`, `"a\\b"@x`, `"a b"@x` unbracketed.
    #[test]
    fn quoted_strings() {
        let p = rcpt(r#"<"a\"b"@x>"#);
        assert_eq!(mb(&p).local, r#""a\"b""#);
        assert_eq!(mb(&p).local_unquoted(), "a\"b");
        assert_eq!(mb(&p).routing_trick(), None);
        assert_eq!(mb(&rcpt(r#"<"a\\b"@x>"#)).local_unquoted(), "a\\b");
        // `>` inside quotes does not end the path.
        assert_eq!(mb(&rcpt(r#"<"a>b"@x>"#)).local_unquoted(), "a>b");
        let p = rcpt(r#""a b"@x"#);
        assert!(!p.bracketed);
        assert_eq!(mb(&p).local_unquoted(), "a b");
        assert_eq!(mb(&p).to_string(), r#""a b"@x"#);
    }

    // --- errors and reply texts -------------------------------------------------------------------

    // docs/sendmail-compat.md §6.5: empty RCPT address → `553 5.0.0 <>... User address required`.
    #[test]
    fn null_recipient() {
        let e = rcpt_err("<>");
        assert_eq!(e, AddrError::NullRecipient);
        assert_eq!(e.reply_line("<>"), "553 5.0.0 <>... User address required");
        assert_eq!(rcpt_err("  <> NOTIFY=NEVER"), AddrError::NullRecipient);
    }

    // sendmail srvrsmtp.c skipword(): empty argument → 501 5.5.2 Syntax error … scanning.
    #[test]
    fn missing_address() {
        assert_eq!(
            reply(&mail_err("")),
            "501 5.5.2 Syntax error in parameters scanning \"FROM\""
        );
        assert_eq!(
            reply(&rcpt_err("   ")),
            "501 5.5.2 Syntax error in parameters scanning \"TO\""
        );
        // 5xx codes other than 550/553 carry no address echo (docs/sendmail-compat.md §6.3).
        assert_eq!(
            mail_err("").reply_line(""),
            "501 5.5.2 Syntax error in parameters scanning \"FROM\""
        );
    }

    // sendmail parseaddr.c prescan(): unbalanced brackets/quotes → 553 5.0.0 Unbalanced 'c'.
    #[test]
    fn unbalanced() {
        assert_eq!(reply(&mail_err("<a@b")), "553 5.0.0 Unbalanced '<'");
        assert_eq!(mail_err("a@b>"), AddrError::Unbalanced('>'));
        assert_eq!(mail_err("<a@b>>"), AddrError::Unbalanced('>'));
        assert_eq!(mail_err("<\"a@b>"), AddrError::Unbalanced('"'));
        assert_eq!(mail_err("\"a@b"), AddrError::Unbalanced('"'));
        assert_eq!(mail_err("<\"a\\\">"), AddrError::Unbalanced('"'));
        assert_eq!(mail_err("<a\"b@c>"), AddrError::Unbalanced('"'));
        assert_eq!(mail_err("<<a@b>>"), AddrError::IllegalChar('<'));
        let e = mail_err("<a@b");
        assert_eq!(
            e.reply_line(&address_echo("<a@b")),
            "553 5.0.0 <a@b... Unbalanced '<'"
        );
    }

    // RFC 5321 §4.1.2: no CTLs, no NUL, no SP outside quotes; RFC 5322 specials outside quotes.
    #[test]
    fn bad_characters() {
        assert_eq!(mail_err("<a\0b@c>"), AddrError::ControlChar);
        assert_eq!(mail_err("<a\x07@c>"), AddrError::ControlChar);
        assert_eq!(mail_err("<a@c\r>"), AddrError::ControlChar);
        assert_eq!(mail_err("<\"a\tb\"@c>"), AddrError::ControlChar);
        assert_eq!(mail_err("<a\x7f@c>"), AddrError::ControlChar);
        assert_eq!(mail_err("<a b@c>"), AddrError::Whitespace);
        assert_eq!(mail_err("< a@b>"), AddrError::Whitespace);
        assert_eq!(mail_err("<a@b c>"), AddrError::InvalidDomain("b c".into()));
        assert_eq!(mail_err("<a,b@c>"), AddrError::IllegalChar(','));
        assert_eq!(mail_err("<a;b@c>"), AddrError::IllegalChar(';'));
        assert_eq!(mail_err("<a\\b@c>"), AddrError::IllegalChar('\\'));
        assert_eq!(mail_err("<(comment)a@c>"), AddrError::IllegalChar('('));
        assert_eq!(mail_err("<a:b@c>"), AddrError::IllegalChar(':'));
        assert_eq!(
            reply(&mail_err("<a,b@c>")),
            "553 5.1.3 Invalid character ',' in address"
        );
        assert_eq!(
            reply(&mail_err("<a\0@c>")),
            "553 5.1.3 Invalid control character in address"
        );
        // Display name before `<` (RFC 5322 style) is not an SMTP path.
        assert!(matches!(mail_err("Joe <a@b>"), AddrError::ParamSyntax(_)));
    }

    // RFC 5321 §4.1.2: Local-part required before `@`; Domain required after it.
    #[test]
    fn empty_parts() {
        assert_eq!(
            reply(&rcpt_err("<@nmap.scanme.org>")),
            "553 5.1.3 User address required"
        );
        assert_eq!(rcpt_err("<\"\"@x>"), AddrError::EmptyLocalPart);
        assert_eq!(rcpt_err("<@>"), AddrError::EmptyLocalPart);
        assert_eq!(reply(&rcpt_err("<user@>")), "553 5.1.3 Hostname required");
    }

    // Trailing junk after `>` that is not whitespace-separated parameters.
    #[test]
    fn junk_after_path() {
        let e = mail_err("<a@b>junk");
        assert_eq!(e, AddrError::JunkAfterAddress("junk".into()));
        assert_eq!(
            reply(&e),
            "501 5.5.2 Syntax error in parameters scanning \"junk\""
        );
        assert!(matches!(mail_err("<a@b> <c@d>"), AddrError::ParamSyntax(_)));
        // Trailing whitespace alone is fine.
        assert_eq!(mb(&mail("<a@b>  \t")).local, "a");
        // Echoed junk is sanitised: no raw control or non-ASCII characters in replies.
        let e = mail_err("<a@b>\u{e9}\u{1}");
        let (_, _, t) = e.reply_text();
        assert!(t.is_ascii() && !t.chars().any(|c| c.is_control()), "{t}");
    }

    // RFC 5321 §4.5.3.1.1 (local part 64), §4.5.3.1.2 (domain 255), §4.5.3.1.3 (path 256).
    #[test]
    fn length_limits() {
        let l64 = "a".repeat(64);
        assert_eq!(mb(&rcpt(&format!("<{l64}@x>"))).local.len(), 64);
        let l65 = "a".repeat(65);
        let e = rcpt_err(&format!("<{l65}@x>"));
        assert_eq!(e, AddrError::LocalPartTooLong(65));
        assert_eq!(
            reply(&e),
            "553 5.1.3 Local part too long (65 octets, 64 max)"
        );

        let label63 = "b".repeat(63);
        assert!(parse_rcpt_to(&format!("<u@{label63}.com>"), false).is_ok());
        let label64 = "b".repeat(64);
        assert_eq!(
            rcpt_err(&format!("<u@{label64}.com>")),
            AddrError::DomainTooLong(64)
        );

        // Path limit: `<` + 254 + `>` = 256 is fine, 255 inside is not.
        let dom = |n: usize| {
            let mut labels = Vec::new();
            let mut left = n;
            while left > 0 {
                let take = left.min(63);
                labels.push("c".repeat(take));
                left = left.saturating_sub(take + 1);
            }
            labels.join(".")
        };
        let d = dom(252);
        assert_eq!(d.len(), 252);
        assert!(parse_rcpt_to(&format!("<u@{d}>"), false).is_ok());
        let d = dom(253);
        let e = rcpt_err(&format!("<u@{d}>"));
        assert_eq!(e, AddrError::PathTooLong(257));
        assert_eq!(
            reply(&e),
            "553 5.1.0 Address too long (257 octets, 256 max)"
        );
        // The domain limit itself is reachable through a source-route hop's domain check only
        // when the path limit allows it; check the function directly.
        assert_eq!(
            parse_domain(&"a.".repeat(128)),
            Err(AddrError::DomainTooLong(256))
        );
        // Huge input: refused by length, not by walking it character by character.
        assert!(matches!(
            rcpt_err(&format!("<{}>", "x".repeat(100_000))),
            AddrError::PathTooLong(_)
        ));
    }

    // RFC 6531 §3.3: UTF-8 local part and U-label domains only under SMTPUTF8; §3.7.4.1 5.6.7.
    #[test]
    fn non_ascii() {
        let a = "<j\u{f6}rg@b\u{fc}cher.example>";
        // Not offered by the server.
        let e = parse_mail_from(&format!("{a} SMTPUTF8"), false).unwrap_err();
        assert_eq!(
            reply(&e),
            "553 5.6.7 Non-ASCII addresses not permitted for that sender"
        );
        // Offered but the client did not ask for it.
        assert_eq!(
            parse_mail_from(a, true).unwrap_err(),
            AddrError::NonAscii("sender")
        );
        // Offered and asked for.
        let (p, params) = parse_mail_from(&format!("{a} SMTPUTF8"), true).unwrap();
        assert!(params.smtputf8);
        assert_eq!(mb(&p).local, "j\u{f6}rg");
        assert_eq!(mb(&p).domain, name("b\u{fc}cher.example"));
        assert_eq!(p.to_string(), a);
        // RCPT: the flag means "this transaction is SMTPUTF8".
        assert!(
            parse_rcpt_to("<\u{7528}\u{6237}@\u{4f8b}\u{5b50}.\u{6d4b}\u{8bd5}>", true).is_ok()
        );
        assert_eq!(
            parse_rcpt_to("<\u{7528}@x>", false).unwrap_err(),
            AddrError::NonAscii("recipient")
        );
        // UTF-8 inside a quoted local part, too.
        assert!(parse_rcpt_to("<\"\u{e9} \u{e8}\"@x>", true).is_ok());
        // Never: C1 controls, zero-width/bidi characters, Unicode spaces.
        assert_eq!(
            parse_rcpt_to("<a\u{85}@x>", true).unwrap_err(),
            AddrError::ControlChar
        );
        assert_eq!(
            parse_rcpt_to("<a\u{200b}@x>", true).unwrap_err(),
            AddrError::ControlChar
        );
        assert_eq!(
            parse_rcpt_to("<a\u{202e}@x>", true).unwrap_err(),
            AddrError::ControlChar
        );
        assert_eq!(
            parse_rcpt_to("<a\u{a0}@x>", true).unwrap_err(),
            AddrError::Whitespace
        );
        assert_eq!(
            parse_rcpt_to("<a@x\u{3000}y>", true).unwrap_err(),
            AddrError::Whitespace
        );
        // Without SMTPUTF8 the SMTPUTF8 keyword is just unknown.
        let (_, params) = parse_mail_from("<a@b> SMTPUTF8", false).unwrap();
        assert!(!params.smtputf8);
        assert_eq!(params.other, vec![("SMTPUTF8".to_string(), None)]);
    }

    // --- parameters -------------------------------------------------------------------------------

    // RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 3461 RET/ENVID, RFC 4954 §5 AUTH.
    #[test]
    fn mail_params_all_kinds() {
        let (p, params) = parse_mail_from(
            " <a@b>  size=12345 BODY=8bitmime SMTPUTF8 RET=hdrs ENVID=QQ+2B314 AUTH=e+3Dmc2@x X-FOO=bar X-BAZ",
            true,
        )
        .unwrap();
        assert_eq!(p.raw, "a@b");
        assert_eq!(params.size, Some(12345));
        assert_eq!(params.body, Some(Body::EightBitMime));
        assert!(params.smtputf8);
        assert_eq!(params.ret, Some(Ret::Hdrs));
        assert_eq!(params.envid.as_deref(), Some("QQ+314"));
        assert_eq!(params.auth.as_deref(), Some("e=mc2@x"));
        assert_eq!(
            params.other,
            vec![
                ("X-FOO".to_string(), Some("bar".to_string())),
                ("X-BAZ".to_string(), None)
            ]
        );
        let (_, params) = parse_mail_from("<> AUTH=<> BODY=7BIT RET=FULL", false).unwrap();
        assert_eq!(params.auth.as_deref(), Some("<>"));
        assert_eq!(params.body, Some(Body::SevenBit));
        assert_eq!(params.ret, Some(Ret::Full));
        let (_, params) = parse_mail_from("<> BODY=BINARYMIME SIZE=0", false).unwrap();
        assert_eq!(params.body, Some(Body::BinaryMime));
        assert_eq!(params.size, Some(0));
        let (_, params) = parse_mail_from(&format!("<> SIZE={}", u64::MAX), false).unwrap();
        assert_eq!(params.size, Some(u64::MAX));
    }

    // RFC 3461 §4.1 NOTIFY, §4.2 ORCPT.
    #[test]
    fn rcpt_params() {
        let (_, p) = parse_rcpt_to(
            "<a@b> NOTIFY=success,Delay,SUCCESS ORCPT=rfc822;a+2Bb@c",
            false,
        )
        .unwrap();
        assert_eq!(
            p.notify,
            Some(Notify {
                success: true,
                delay: true,
                ..Notify::default()
            })
        );
        assert_eq!(p.orcpt, Some(("rfc822".to_string(), "a+b@c".to_string())));
        let (_, p) = parse_rcpt_to("<a@b> notify=NEVER", false).unwrap();
        assert_eq!(
            p.notify,
            Some(Notify {
                never: true,
                ..Notify::default()
            })
        );
        for bad in ["NEVER,SUCCESS", "SUCCESS,NEVER", "SUCCESS,,DELAY", "ALWAYS"] {
            let e = rcpt_err(&format!("<a@b> NOTIFY={bad}"));
            assert_eq!(
                reply(&e),
                format!("501 5.5.4 Bad argument \"{bad}\" to NOTIFY")
            );
        }
        for bad in [
            "rfc822",
            ";a@b",
            "rfc822;",
            "rfc822;a+zz",
            "rf(c;a",
            "rfc822;a+00+FF",
        ] {
            assert_eq!(
                reply(&rcpt_err(&format!("<a@b> ORCPT={bad}"))),
                "501 5.5.4 Syntax error in ORCPT parameter value",
                "{bad}"
            );
        }
    }

    // Parameter errors and their sendmail (srvrsmtp.c mail_esmtp_args/rcpt_esmtp_args) texts.
    #[test]
    fn param_errors() {
        let cases: &[(&str, &str)] = &[
            ("<a@b> SIZE", "501 5.5.2 SIZE requires a value"),
            ("<a@b> SIZE=", "501 5.5.2 SIZE requires a value"),
            ("<a@b> AUTH", "501 5.5.2 AUTH= requires a value"),
            ("<a@b> SIZE=12x", "501 5.5.4 Bad argument \"12x\" to SIZE"),
            ("<a@b> SIZE=-1", "501 5.5.4 Bad argument \"-1\" to SIZE"),
            (
                "<a@b> SIZE=18446744073709551616",
                "552 5.2.3 Message size exceeds maximum value",
            ),
            ("<a@b> BODY=9BIT", "501 5.5.4 Unknown BODY type 9BIT"),
            ("<a@b> RET=ALL", "501 5.5.4 Bad argument \"ALL\" to RET"),
            (
                "<a@b> SMTPUTF8=yes",
                "501 5.5.4 Bad argument \"yes\" to SMTPUTF8",
            ),
            (
                "<a@b> ENVID=a+zz",
                "501 5.5.4 Syntax error in ENVID parameter value",
            ),
            (
                "<a@b> ENVID=a+4",
                "501 5.5.4 Syntax error in ENVID parameter value",
            ),
            (
                "<a@b> AUTH=a+FF",
                "501 5.5.4 Syntax error in AUTH parameter value",
            ),
            ("<a@b> SIZE=1 size=2", "501 5.5.0 Duplicate SIZE parameter"),
            ("<a@b> X-A x-a=1", "501 5.5.0 Duplicate X-A parameter"),
            (
                "<a@b> NOTIFY=NEVER",
                "501 5.5.4 NOTIFY parameter not allowed with MAIL",
            ),
            (
                "<a@b> ORCPT=rfc822;x",
                "501 5.5.4 ORCPT parameter not allowed with MAIL",
            ),
            (
                "<a@b> -X",
                "501 5.5.2 Syntax error in parameters scanning \"-X\"",
            ),
            (
                "<a@b> =1",
                "501 5.5.2 Syntax error in parameters scanning \"=1\"",
            ),
            (
                "<a@b> X=a=b",
                "501 5.5.2 Syntax error in parameters scanning \"X=a=b\"",
            ),
            (
                "<a@b> X=\u{1}",
                "501 5.5.2 Syntax error in parameters scanning \"X=\\x{01}\"",
            ),
            (
                "<a@b> X=\u{e9}",
                "501 5.5.2 Syntax error in parameters scanning \"X=\\x{E9}\"",
            ),
        ];
        for (arg, want) in cases {
            assert_eq!(&reply(&mail_err(arg)), want, "{arg}");
        }
        let long = format!("<a@b> ENVID={}", "e".repeat(MAX_ENVID + 1));
        assert_eq!(mail_err(&long), AddrError::XtextSyntax("ENVID"));
        for kw in [
            "SIZE=1",
            "BODY=7BIT",
            "SMTPUTF8",
            "RET=FULL",
            "ENVID=x",
            "AUTH=<>",
        ] {
            let (_, _, t) = rcpt_err(&format!("<a@b> {kw}")).reply_text();
            assert!(t.ends_with("parameter not allowed with RCPT"), "{kw}: {t}");
        }
        assert_eq!(
            reply(&AddrError::UnrecognizedParam("X-FOO".into())),
            "555 5.5.4 X-FOO parameter unrecognized"
        );
        // Address errors are reported before parameter errors, as sendmail does.
        assert_eq!(mail_err("<a b> SIZE=x"), AddrError::Whitespace);
    }

    // RFC 5321 §4.1.1.2: optional spaces between `FROM:` and `<` (sendmail skips them).
    #[test]
    fn leading_space_and_echo() {
        let p = mail("   <a@b>");
        assert_eq!(p.raw, "a@b");
        assert_eq!(p.to_string(), "<a@b>");
        assert_eq!(address_echo("  <a b@c> SIZE=1"), "<a b@c>");
        assert_eq!(address_echo("a@b SIZE=1"), "a@b");
        assert_eq!(address_echo("<a@b"), "<a@b");
        assert_eq!(address_echo("a@b> SIZE=1"), "a@b>");
        assert_eq!(address_echo("<a\r\n@b>"), "<a\\x{0D}\\x{0A}@b>");
    }

    // Fuzz invariant (fuzz/fuzz_targets/smtp_address.rs): to_string() re-parses to the same Path.
    #[test]
    fn display_round_trips() {
        for a in [
            "<>",
            "<a@b>",
            "a@b",
            "<@a,@[1.2.3.4]:\"x y\"@[IPv6:::1]> SIZE=1",
            "\"a b\"@c NOTIFY=NEVER",
            "<\"\"x@y\"\"@z>",
        ] {
            if let Ok((p, _)) = parse_mail_from(a, false) {
                assert_eq!(parse_mail_from(&p.to_string(), false).unwrap().0, p);
            }
            if let Ok((p, _)) = parse_rcpt_to(a, false) {
                assert_eq!(parse_rcpt_to(&p.to_string(), false).unwrap().0, p);
            }
        }
    }

    // RFC 3461 §4.1: NEVER alone or a set; written back in the RFC's order, once each.
    #[test]
    fn notify_parses_and_writes_the_keywords() {
        let n = |s, f, d, never| Notify {
            success: s,
            failure: f,
            delay: d,
            never,
        };
        assert_eq!(Notify::parse("never"), Some(n(false, false, false, true)));
        assert_eq!(
            Notify::parse("Delay,success,DELAY"),
            Some(n(true, false, true, false))
        );
        assert_eq!(Notify::parse("FAILURE"), Some(n(false, true, false, false)));
        for bad in ["", "NEVER,SUCCESS", "SUCCESS,,DELAY", "SUCCESS,", "ALWAYS"] {
            assert_eq!(Notify::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            n(true, true, true, false).to_string(),
            "SUCCESS,FAILURE,DELAY"
        );
        assert_eq!(n(false, true, true, false).to_string(), "FAILURE,DELAY");
        assert_eq!(n(true, false, false, false).to_string(), "SUCCESS");
        assert_eq!(n(true, false, false, true).to_string(), "NEVER");
        assert_eq!(Notify::default().to_string(), "");
    }
}
