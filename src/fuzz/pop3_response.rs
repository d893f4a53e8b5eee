//! The `pop3_response` target: the POP3 client's response parser (`pop3::client::response`).

use crate::pop3::client::response::*;

/// Feeds `data` to a [`BodyDecoder`] `chunk` bytes at a time, the way a client's read loop
/// does (unused bytes stay buffered); returns (done, body, bytes used).
fn decode_in_chunks(
    data: &[u8],
    chunk: usize,
    max: usize,
) -> Result<(bool, Vec<u8>, usize), ResponseError> {
    let mut dec = BodyDecoder::new(max);
    let mut buffered: Vec<u8> = Vec::new();
    let mut used_total = 0;
    for piece in data.chunks(chunk.max(1)) {
        buffered.extend_from_slice(piece);
        let used = dec.feed(&buffered)?;
        assert!(used <= buffered.len());
        buffered.drain(..used);
        used_total += used;
        if dec.is_done() {
            break;
        }
    }
    Ok((dec.is_done(), dec.into_body(), used_total))
}

/// The checks the fuzz target and the stable replay below run on any input; panics when
/// one fails.
///
/// * Nothing panics, whatever the bytes.
/// * Each line that parses as a status renders back to a line that parses to the same status.
/// * The body decoder gives the same result fed whole, split at an offset derived from the
///   input, and byte by byte; it never uses more than it was given.
/// * Any input taken as a body round-trips: `dot_stuff(body) + ".\r\n"` decodes to the body
///   (with CRLF added to an unterminated last line) and uses exactly all of it.
/// * Listings, UIDLs and summaries that parse re-render to text that parses the same.
/// * An APOP timestamp, when found, is a `<…@…>` substring of the greeting.
pub fn invariants(data: &[u8]) {
    const MAX: usize = 1 << 16;
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Ok(st) = parse_status(line) {
            let again = parse_status(st.render().as_bytes()).expect("rendered status parses");
            assert_eq!(again, st, "status round trip for {line:?}");
            assert!(!st.text.contains('\n'));
        }
        let text = String::from_utf8_lossy(line);
        if let Some(ts) = apop_timestamp(&text) {
            assert!(ts.starts_with('<') && ts.ends_with('>') && ts.contains('@'));
            assert!(text.contains(ts));
        }
        if let Some((user, s)) = parse_qpopper_summary(&text) {
            let line = summary_line(&user, &s) + ".";
            assert_eq!(parse_qpopper_summary(&line), Some((user, s)));
        }
        if let Ok(st) = parse_status(line)
            && let Ok((n, o)) = parse_stat(&st.text)
        {
            assert_eq!(parse_stat(&format!("{n} {o}")), Ok((n, o)));
        }
    }

    // The decoder, three ways.
    let whole = decode_in_chunks(data, data.len().max(1), MAX);
    let split = 1 + data.first().map_or(0, |&b| b as usize) % data.len().max(1);
    assert_eq!(
        decode_in_chunks(data, split, MAX),
        whole,
        "split at {split}"
    );
    assert_eq!(decode_in_chunks(data, 1, MAX), whole, "byte by byte");
    if let Ok((true, body, used)) = &whole {
        assert!(*used <= data.len() && body.len() <= *used);
        let mut again = dot_stuff(body);
        again.extend_from_slice(b".\r\n");
        assert_eq!(
            decode_in_chunks(&again, again.len(), MAX),
            Ok((true, body.clone(), again.len()))
        );
        if let Ok(list) = parse_scan_listing(body) {
            let text: String = list
                .iter()
                .map(|l| format!("{} {}\r\n", l.number, l.octets))
                .collect();
            assert_eq!(parse_scan_listing(text.as_bytes()).as_ref(), Ok(&list));
        }
        if let Ok(ids) = parse_uidl(body) {
            let text: String = ids
                .iter()
                .map(|u| format!("{} {}\r\n", u.number, u.uid))
                .collect();
            assert_eq!(parse_uidl(text.as_bytes()).as_ref(), Ok(&ids));
        }
        let caps = parse_capa(body);
        assert!(caps.iter().all(|c| !c.is_empty() && !c.contains('\n')));
    }

    // The whole input as a message body must survive stuffing and decoding.
    let mut body = data.to_vec();
    if !body.is_empty() && body.last() != Some(&b'\n') {
        body.extend_from_slice(b"\r\n");
    }
    let mut wire = dot_stuff(data);
    let dotted = body
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"."))
        .count();
    assert_eq!(
        wire.len(),
        body.len() + dotted,
        "one dot added per dotted line"
    );
    wire.extend_from_slice(b".\r\n");
    let mut dec = BodyDecoder::new(usize::MAX);
    let used = dec.feed(&wire).expect("stuffed body decodes");
    assert!(dec.is_done(), "stuffed body ends at its terminator");
    assert_eq!(used, wire.len());
    assert_eq!(dec.body(), &body[..], "dot-stuffing round trip");

    // The one-shot parser agrees with the status line plus the decoder.
    if let Ok(Some((st, body, used))) = parse_multiline(data, MAX) {
        let (st2, n) = parse_status_line(data).unwrap().unwrap();
        assert_eq!(st, st2);
        assert!(used >= n && used <= data.len());
        if st.is_ok() {
            assert_eq!(
                decode_in_chunks(&data[n..], data.len(), MAX),
                Ok((true, body, used - n))
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::{Plan, file};

    /// The corpus and mutations with the bytes that matter to status lines and bodies.
    #[test]
    fn corpus_and_mutations_keep_invariants() {
        Plan {
            iterations: 5_000,
            max_len: 4096,
            bytes: b"\r\n. []<>@+-/",
            min_files: 10,
            ..Plan::new("pop3_response")
        }
        .run(invariants);
    }

    #[test]
    fn corpus_known_answers() {
        let (st, _) = parse_status_line(&file("pop3_response", "greeting_qpopper"))
            .unwrap()
            .unwrap();
        assert_eq!(apop_timestamp(&st.text), Some("<12892.1001@popserv1>"));
        let (st, _) = parse_status_line(&file("pop3_response", "pass_qpopper"))
            .unwrap()
            .unwrap();
        let (user, s) = parse_qpopper_summary(&st.text).unwrap();
        assert_eq!(
            (user.as_str(), s.messages, s.hidden, s.octets),
            ("UserID", 1, 0, 874)
        );
        let (st, body, _) = parse_multiline(&file("pop3_response", "list"), 1 << 16)
            .unwrap()
            .unwrap();
        assert!(st.is_ok());
        assert_eq!(parse_scan_listing(&body).unwrap().len(), 2);
        let data = file("pop3_response", "retr_stuffed");
        let (_, body, used) = parse_multiline(&data, 1 << 16).unwrap().unwrap();
        assert_eq!(
            body,
            b"From: a@b\r\nSubject: one\r\n\r\nhello\r\n.dot line\r\n..\r\n"
        );
        assert_eq!(&data[used..], b"+OK Logging out.\r\n");
        assert_eq!(
            parse_multiline(&file("pop3_response", "retr_incomplete"), 1 << 16),
            Ok(None)
        );
        let (st, _) = parse_status_line(&file("pop3_response", "err_in_use"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (st.indicator, st.code.as_deref()),
            (Indicator::Err, Some("IN-USE"))
        );
        let (st, _) = parse_status_line(&file("pop3_response", "sasl_challenge"))
            .unwrap()
            .unwrap();
        assert_eq!(st.indicator, Indicator::Continue);
        assert!(parse_status_line(&file("pop3_response", "smtp_banner")).is_err());
    }
}
