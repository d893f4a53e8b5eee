//! Dot-stuffing, the writer's half of a multi-line body on the wire (SMTP DATA, RFC 5321
//! §4.5.2; POP3 multi-line responses, RFC 1939 §3): a line that begins with "." gets another
//! ".", and a line holding only "." ends the body. The readers differ per side on purpose
//! (`smtp::proto`'s DATA reader, `pop3::client::response`), so only the writing is shared.

/// The line that ends a multi-line body.
pub const END: &[u8] = b".\r\n";

/// Appends one line, stuffed, keeping whatever line end `line` has (or none).
pub fn push_line(line: &[u8], out: &mut Vec<u8>) {
    if line.first() == Some(&b'.') {
        out.push(b'.');
    }
    out.extend_from_slice(line);
}

/// Appends one line's text, stuffed and ended by CRLF.
pub fn push_crlf_line(text: &[u8], out: &mut Vec<u8>) {
    push_line(text, out);
    out.extend_from_slice(b"\r\n");
}

/// The lines of `message` without their ends, where CRLF, a bare LF and a bare CR each end a
/// line, so that a writer that ends every line with CRLF sends no bare CR or LF (neither can
/// then be half of a smuggling pair). Text after the last line end is a last line.
pub fn lines_any_end(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = message;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(i) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
            return Some(std::mem::take(&mut rest));
        };
        let line = &rest[..i];
        let end = if rest[i..].starts_with(b"\r\n") { 2 } else { 1 };
        rest = &rest[i + end..];
        Some(line)
    })
}

/// The writer's whole DATA encoding, fed in pieces of any size: every line ended by CRLF, where
/// CRLF, a bare LF and a bare CR each end a line (as [`lines_any_end`] splits them), lines that
/// begin with "." stuffed, and [`END`] after the last line. The output does not depend on
/// where the pieces split.
#[derive(Debug, Clone)]
pub struct DotEncoder {
    at_start: bool,
    /// The last byte was a CR, already written as CRLF: an LF right after it adds nothing.
    after_cr: bool,
}

impl Default for DotEncoder {
    fn default() -> Self {
        DotEncoder {
            at_start: true,
            after_cr: false,
        }
    }
}

impl DotEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the encoding of `data` to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while let Some(&b) = data.first() {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    data = &data[1..];
                    continue;
                }
            }
            if self.at_start && b == b'.' {
                out.push(b'.');
            }
            let Some(pos) = data.iter().position(|&c| c == b'\r' || c == b'\n') else {
                out.extend_from_slice(data);
                self.at_start = false;
                return;
            };
            out.extend_from_slice(&data[..pos]);
            out.extend_from_slice(b"\r\n");
            self.at_start = true;
            self.after_cr = data[pos] == b'\r';
            data = &data[pos + 1..];
        }
    }

    /// Ends an unfinished last line and appends [`END`].
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.at_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(END);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line-at-a-time encoding the streaming one must equal.
    fn reference(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines_any_end(message) {
            push_crlf_line(line, &mut out);
        }
        out.extend_from_slice(END);
        out
    }

    #[test]
    fn encoder_matches_the_line_encoding_at_every_split() {
        let alphabet = b".\r\nx";
        let mut text = Vec::new();
        for len in 0..=6u32 {
            for code in 0..(alphabet.len() as u32).pow(len) {
                text.clear();
                let mut c = code;
                for _ in 0..len {
                    text.push(alphabet[(c % alphabet.len() as u32) as usize]);
                    c /= alphabet.len() as u32;
                }
                let want = reference(&text);
                for split in 0..=text.len() {
                    let mut e = DotEncoder::new();
                    let mut out = Vec::new();
                    e.feed(&text[..split], &mut out);
                    e.feed(&text[split..], &mut out);
                    e.finish(&mut out);
                    assert_eq!(out, want, "{text:?} split at {split}");
                }
            }
        }
    }

    #[test]
    fn stuffing_keeps_or_writes_line_ends() {
        let mut out = Vec::new();
        push_line(b".a\n", &mut out);
        push_line(b"b.", &mut out);
        push_crlf_line(b"..", &mut out);
        push_crlf_line(b"", &mut out);
        assert_eq!(out, b"..a\nb....\r\n\r\n");
    }

    #[test]
    fn every_line_end_ends_one_line() {
        let lines = |m: &'static [u8]| lines_any_end(m).collect::<Vec<_>>();
        assert_eq!(lines(b""), Vec::<&[u8]>::new());
        assert_eq!(lines(b"\n"), vec![b"" as &[u8]]);
        assert_eq!(
            lines(b"a\r\nb\nc\rd"),
            vec![b"a" as &[u8], b"b", b"c", b"d"]
        );
        assert_eq!(lines(b"\r\r\n\n"), vec![b"" as &[u8], b"", b""]);
        assert_eq!(lines(b"x\r"), vec![b"x" as &[u8]]);
    }
}
