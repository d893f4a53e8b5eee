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

#[cfg(test)]
mod tests {
    use super::*;

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
