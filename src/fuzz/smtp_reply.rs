//! The `smtp_reply` target: the SMTP client's reply parser and DATA encoding (`smtp::client::codec`).

use crate::smtp::client::codec::*;
use crate::smtp::proto::Reply;

/// What the fuzzer (`fuzz/fuzz_targets/smtp_reply.rs`) and its stable replay
/// (the unit test below) check on any input:
///
/// * framing replies is the same whether the bytes arrive at once or one by one;
/// * every reply has a 2xx–5xx code, a bounded number of lines, no control characters;
/// * the DATA encoding of the input, read back by our own server's [`DataReader`], ends
///   exactly at its terminator and gives back the input with normalized line ends, so no
///   content can end the message early (smuggling) or be lost.
///
/// [`DataReader`]: crate::smtp::proto::DataReader
pub fn invariants(data: &[u8]) {
    fn all(p: &mut ReplyParser) -> (Vec<Reply>, Option<ReplyError>) {
        let mut out = Vec::new();
        loop {
            match p.next_reply() {
                Ok(Some(r)) => out.push(r),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }
    let mut whole = ReplyParser::new();
    whole.feed(data);
    let (a, ea) = all(&mut whole);
    let mut bytewise = ReplyParser::new();
    let (mut b, mut eb) = (Vec::new(), None);
    for &byte in data {
        bytewise.feed(&[byte]);
        let (r, e) = all(&mut bytewise);
        b.extend(r);
        if e.is_some() {
            eb = e;
            break;
        }
    }
    // A too-long line may be noticed earlier byte by byte; everything before must agree.
    assert_eq!(a, b, "framing depends on how bytes arrive");
    assert_eq!(ea.is_some(), eb.is_some());
    for r in &a {
        assert!((200..600).contains(&r.code));
        assert!(!r.lines.is_empty() && r.lines.len() <= MAX_REPLY_LINES);
        assert!(
            r.lines
                .iter()
                .all(|l| !l.chars().any(|c| c.is_control() && c != '\t'))
        );
    }

    let wire = encode_data(data);
    let mut reader = crate::smtp::proto::DataReader::new(0);
    let (used, state) = reader.feed(&wire);
    assert!(
        matches!(state, crate::smtp::proto::DataState::Done { .. }),
        "encoded data did not end"
    );
    assert_eq!(used, wire.len(), "encoded data ended early");
    let mut normalized = Vec::with_capacity(data.len() + 2);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' => {
                normalized.extend_from_slice(b"\r\n");
                if data.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => normalized.extend_from_slice(b"\r\n"),
            c => normalized.push(c),
        }
        i += 1;
    }
    if !normalized.is_empty() && !normalized.ends_with(b"\r\n") {
        normalized.extend_from_slice(b"\r\n");
    }
    assert_eq!(
        reader.take_message(),
        normalized,
        "DATA round trip changed the message"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::Plan;

    /// The corpus and mutations with the bytes that matter to the reply parser.
    #[test]
    fn corpus_and_mutations_keep_invariants() {
        Plan::text("smtp_reply", b"\r\n-. 25\x1b", 4096).run(invariants);
    }
}
