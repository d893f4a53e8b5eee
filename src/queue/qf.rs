//! The `qf` control file: the [`Envelope`] as sendmail-style records, one per line, ending
//! with a `.` line (the format is described in [`crate::queue`]). Writing is strict (no field
//! may hold a line break); reading keeps unknown records.

use std::fmt::Write as _;

use super::envelope::*;
use super::spool::SpoolError;

/// The `V` record mailtool writes and accepts.
pub const QF_VERSION: &str = "1-mailtool";

impl Envelope {
    /// Serializes to `qf` text (ends with the `.` line). Fails if a field would break the
    /// line structure. `M` and recipient status texts have line breaks replaced by spaces.
    pub fn to_qf(&self) -> Result<String, SpoolError> {
        let mut s = String::with_capacity(256 + 64 * self.recipients.len());
        // Writing to a String cannot fail; the results are ignored below.
        let _ = writeln!(s, "V{QF_VERSION}");
        let _ = writeln!(s, "T{}", self.created);
        let _ = writeln!(s, "K{}", self.last_attempt);
        let _ = writeln!(s, "N{}", self.tries);
        if let Some(y) = self.next_attempt {
            let _ = writeln!(s, "Y{y}");
        }
        let _ = writeln!(s, "I{}", self.size);
        if let Some(b) = self.body_type {
            let _ = writeln!(s, "B{}", b.as_str());
        }
        if let Some(m) = &self.status_message {
            let _ = writeln!(s, "M{}", one_line(m));
        }
        if let Some(q) = &self.quarantine {
            let _ = writeln!(s, "q{}", one_line(q));
        }
        s.push('F');
        if self.warning_sent {
            s.push('w');
        }
        if self.held {
            s.push('h');
        }
        s.push('\n');
        let named = [
            ("r", &self.protocol),
            ("s", &self.helo),
            ("client_addr", &self.client_addr),
            ("client_name", &self.client_name),
        ];
        for (name, value) in named {
            if let Some(v) = value {
                push_macro(&mut s, name, v)?;
            }
        }
        for (name, v) in &self.other_macros {
            push_macro(&mut s, name, v)?;
        }
        check_field("sender", &self.sender)?;
        let _ = writeln!(s, "S<{}>", self.sender);
        if let Some(z) = &self.envid {
            check_field("ENVID", z)?;
            let _ = writeln!(s, "Z{z}");
        }
        if let Some(r) = self.ret {
            let _ = writeln!(s, "r{}", r.as_str());
        }
        if let Some(a) = &self.auth {
            check_field("AUTH", a)?;
            let _ = writeln!(s, "A{a}");
        }
        if self.smtputf8 || !self.other_flags.is_empty() {
            let mut tokens: Vec<&str> = Vec::new();
            if self.smtputf8 {
                tokens.push("SMTPUTF8");
            }
            for t in &self.other_flags {
                check_field("C flag", t)?;
                if t.is_empty() || t.contains(' ') {
                    return Err(SpoolError::Invalid(format!("bad C flag {t:?}")));
                }
                tokens.push(t);
            }
            let _ = writeln!(s, "C{}", tokens.join(" "));
        }
        for r in &self.recipients {
            check_field("recipient", &r.address)?;
            s.push('R');
            if let Some(n) = r.notify {
                for (set, c) in [
                    (n.success, 'S'),
                    (n.failure, 'F'),
                    (n.delay, 'D'),
                    (n.never, 'N'),
                ] {
                    if set {
                        s.push(c);
                    }
                }
            }
            let _ = write!(s, ";STATE={}", r.state.as_str());
            if let Some(o) = &r.orcpt {
                let _ = write!(s, ";ORCPT={}", xtext_encode(o));
            }
            if let Some(st) = &r.status {
                let _ = write!(s, ";STATUS={}", xtext_encode(&one_line(st)));
            }
            if let Some(t) = &r.target {
                let _ = write!(s, ";TARGET={}", xtext_encode(&one_line(t)));
            }
            if let Some(p) = &r.parent {
                let _ = write!(s, ";PARENT={}", xtext_encode(&one_line(p)));
            }
            if r.notified {
                s.push_str(";DSN=sent");
            }
            if let Some(m) = &r.remote_mta {
                let _ = write!(s, ";MTA={}", xtext_encode(&one_line(m)));
            }
            let _ = writeln!(s, ":<{}>", r.address);
        }
        for h in &self.headers {
            check_header(h)?;
            s.push('H');
            s.push_str(h);
        }
        for x in &self.extra_records {
            check_field("record", x)?;
            if x.is_empty() || x == "." {
                return Err(SpoolError::Invalid(format!("bad extra record {x:?}")));
            }
            s.push_str(x);
            s.push('\n');
        }
        s.push_str(".\n");
        Ok(s)
    }

    /// Parses `qf` bytes. `Err(QfError::Incomplete)` if the final `.` line is missing.
    pub fn parse_qf(bytes: &[u8]) -> Result<Envelope, QfError> {
        if !(bytes.ends_with(b"\n.\n") || bytes == b".\n") {
            return Err(QfError::Incomplete);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| QfError::corrupt("not UTF-8"))?;
        let body = &text[..text.len() - 2];
        let mut env = Envelope::default();
        let (mut have_v, mut have_t, mut have_s, mut have_i) = (false, false, false, false);
        let mut in_header = false;
        for (n, line) in body.lines().enumerate() {
            let lineno = n + 1;
            let bad = |what: &str| QfError::Corrupt(format!("line {lineno}: {what}"));
            let Some(letter) = line.chars().next() else {
                return Err(bad("empty line"));
            };
            // A folded header's continuation lines follow its H record, as in sendmail's qf.
            if letter == ' ' || letter == '\t' {
                match env.headers.last_mut() {
                    Some(h) if in_header => {
                        h.push_str(line);
                        h.push('\n');
                        continue;
                    }
                    _ => return Err(bad("continuation line without an H record")),
                }
            }
            in_header = letter == 'H';
            let rest = &line[letter.len_utf8()..];
            if n == 0 && letter != 'V' {
                return Err(bad("no V record first"));
            }
            match letter {
                'V' => {
                    if rest != QF_VERSION {
                        return Err(bad(&format!("unsupported version {rest:?}")));
                    }
                    have_v = true;
                }
                'T' => {
                    env.created = rest.parse().map_err(|_| bad("bad T"))?;
                    have_t = true;
                }
                'K' => env.last_attempt = rest.parse().map_err(|_| bad("bad K"))?,
                'N' => env.tries = rest.parse().map_err(|_| bad("bad N"))?,
                'Y' => env.next_attempt = Some(rest.parse().map_err(|_| bad("bad Y"))?),
                'I' => {
                    env.size = rest.parse().map_err(|_| bad("bad I"))?;
                    have_i = true;
                }
                'P' => {} // priority, recomputed
                'B' => env.body_type = Some(Body::parse(rest).ok_or_else(|| bad("bad B"))?),
                'M' => env.status_message = Some(rest.to_string()),
                'q' => env.quarantine = Some(rest.to_string()),
                'F' => {
                    for c in rest.chars() {
                        match c {
                            'w' => env.warning_sent = true,
                            'h' => env.held = true,
                            _ => {}
                        }
                    }
                }
                '$' => {
                    let (name, value) = if let Some(r) = rest.strip_prefix('{') {
                        let end = r.find('}').ok_or_else(|| bad("unterminated macro name"))?;
                        (&r[..end], &r[end + 1..])
                    } else {
                        let c = rest.chars().next().ok_or_else(|| bad("empty macro"))?;
                        rest.split_at(c.len_utf8())
                    };
                    let value = value.to_string();
                    match name {
                        "r" => env.protocol = Some(value),
                        "s" => env.helo = Some(value),
                        "client_addr" => env.client_addr = Some(value),
                        "client_name" => env.client_name = Some(value),
                        _ => env.other_macros.push((name.to_string(), value)),
                    }
                }
                'S' => {
                    env.sender = strip_angles(rest).to_string();
                    have_s = true;
                }
                'Z' => env.envid = Some(rest.to_string()),
                'r' => env.ret = Some(Ret::parse(rest).ok_or_else(|| bad("bad r"))?),
                'A' => env.auth = Some(rest.to_string()),
                'C' => {
                    for t in rest.split(' ').filter(|t| !t.is_empty()) {
                        if t == "SMTPUTF8" {
                            env.smtputf8 = true;
                        } else {
                            env.other_flags.push(t.to_string());
                        }
                    }
                }
                'R' => env.recipients.push(parse_rcpt(rest).map_err(|e| bad(&e))?),
                'H' => {
                    if !rest.contains(':') {
                        return Err(bad("H record is not a header field"));
                    }
                    env.headers.push(format!("{rest}\n"));
                }
                '.' => return Err(bad("'.' before the end")),
                _ => env.extra_records.push(line.to_string()),
            }
        }
        for (have, what) in [(have_v, 'V'), (have_t, 'T'), (have_s, 'S'), (have_i, 'I')] {
            if !have {
                return Err(QfError::Corrupt(format!("no {what} record")));
            }
        }
        Ok(env)
    }
}
/// Why a `qf` file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QfError {
    /// The final `.` line is missing: the file was never completely written.
    #[error("incomplete (no final '.' line)")]
    Incomplete,
    /// Malformed content.
    #[error("{0}")]
    Corrupt(String),
}

impl QfError {
    fn corrupt(s: &str) -> QfError {
        QfError::Corrupt(s.to_string())
    }
}

fn parse_rcpt(rest: &str) -> Result<Recipient, String> {
    let colon = rest.find(':').ok_or("R record without ':'")?;
    let (flags, addr) = (&rest[..colon], &rest[colon + 1..]);
    let mut parts = flags.split(';');
    let letters = parts.next().unwrap_or("");
    let mut r = Recipient {
        address: strip_angles(addr).to_string(),
        ..Recipient::default()
    };
    if !letters.is_empty() {
        let mut n = Notify::default();
        for c in letters.chars() {
            match c {
                'S' => n.success = true,
                'F' => n.failure = true,
                'D' => n.delay = true,
                'N' => n.never = true,
                _ => {}
            }
        }
        r.notify = Some(n);
    }
    for p in parts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("bad R field {p:?}"))?;
        match k {
            "STATE" => r.state = RcptState::parse(v).ok_or_else(|| format!("bad STATE {v:?}"))?,
            "ORCPT" => r.orcpt = Some(xtext_decode(v).ok_or("bad ORCPT xtext")?),
            "STATUS" => r.status = Some(xtext_decode(v).ok_or("bad STATUS xtext")?),
            "TARGET" => r.target = Some(xtext_decode(v).ok_or("bad TARGET xtext")?),
            "PARENT" => r.parent = Some(xtext_decode(v).ok_or("bad PARENT xtext")?),
            "DSN" => r.notified = v == "sent",
            "MTA" => r.remote_mta = Some(xtext_decode(v).ok_or("bad MTA xtext")?),
            _ => {}
        }
    }
    Ok(r)
}

/// A header the `H` records can carry: `Name: value`, LF-ended, continuation lines starting
/// with white space, no CR or NUL.
fn check_header(h: &str) -> Result<(), SpoolError> {
    let bad = || SpoolError::Invalid(format!("bad header record {h:?}"));
    let Some(body) = h.strip_suffix('\n') else {
        return Err(bad());
    };
    let mut lines = body.split('\n');
    let first = lines.next().unwrap_or("");
    let name = first.split(':').next().unwrap_or("");
    if !first.contains(':') || name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    if h.contains(['\r', '\0']) || lines.any(|l| !l.starts_with([' ', '\t']) || l.trim().is_empty())
    {
        return Err(bad());
    }
    Ok(())
}

fn strip_angles(s: &str) -> &str {
    s.strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(s)
}

fn check_field(what: &str, v: &str) -> Result<(), SpoolError> {
    if v.contains(['\n', '\r', '\0']) {
        return Err(SpoolError::Invalid(format!(
            "{what} contains a line break or NUL: {v:?}"
        )));
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r', '\0'], " ")
}

fn push_macro(s: &mut String, name: &str, value: &str) -> Result<(), SpoolError> {
    check_field("macro", value)?;
    if name.is_empty() || name.contains(['}', '{', '\n', '\r', '\0']) {
        return Err(SpoolError::Invalid(format!("bad macro name {name:?}")));
    }
    if name.chars().count() == 1 {
        let _ = writeln!(s, "${name}{value}");
    } else {
        let _ = writeln!(s, "${{{name}}}{value}");
    }
    Ok(())
}

/// xtext (RFC 3461) plus `:` and `;`, so encoded values never contain the R-record separators.
/// The qf file's xtext: `:` and `;` separate fields, so they are escaped too.
fn xtext_encode(s: &str) -> String {
    crate::wire::xtext::encode_also(s, b":;")
}

use crate::wire::xtext::decode_lenient as xtext_decode;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_records_round_trip_with_their_folding() {
        let mut env = Envelope::new("a@b.example", vec![Recipient::new("c@d.example")]);
        env.headers = vec![
            "DKIM-Signature: v=1; a=rsa-sha256;\n\tb=abc\n\t def\n".into(),
            "Authentication-Results: mx.example; spf=pass\n".into(),
        ];
        let qf = env.to_qf().unwrap();
        assert!(qf.contains("\nHDKIM-Signature: v=1; a=rsa-sha256;\n\tb=abc\n\t def\nHAuth"));
        let back = Envelope::parse_qf(qf.as_bytes()).unwrap();
        assert_eq!(back.headers, env.headers);
        assert!(back.extra_records.is_empty());
    }

    #[test]
    fn headers_that_would_break_the_file_are_refused() {
        for h in [
            "X: no newline",
            "X: a\nnot folded\n",
            "X: a\r\n",
            "no colon\n",
            ": empty name\n",
            "X: a\n\t\n",
        ] {
            let mut env = Envelope::new("", vec![Recipient::new("c@d.example")]);
            env.headers = vec![h.into()];
            assert!(env.to_qf().is_err(), "{h:?}");
        }
        // A continuation line with no header before it is corruption, not a header.
        let env = Envelope::new("", vec![Recipient::new("c@d.example")]);
        let qf = env.to_qf().unwrap().replacen("\nS<", "\n\tstray\nS<", 1);
        assert!(matches!(
            Envelope::parse_qf(qf.as_bytes()),
            Err(QfError::Corrupt(_))
        ));
        let qf = env
            .to_qf()
            .unwrap()
            .replacen("\nS<", "\nHnot a header\nS<", 1);
        assert!(Envelope::parse_qf(qf.as_bytes()).is_err());
    }
}
