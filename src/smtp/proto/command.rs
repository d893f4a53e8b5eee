//! SMTP command lines to [`Command`]s (RFC 5321 §4.1.1), with sendmail's syntax-error texts
//! (docs/sendmail-compat.md §6.5).

use super::{MAX_SHORT_STR, sanitize, shorten};

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

pub(super) fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(super) fn trim_wsp(mut s: &[u8]) -> &[u8] {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::proto::*;
    use crate::wire::lines::tests::lines_of;

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
}
