//! The `milter_reply` target: what a milter sends back (`milter::wire`), framed and decoded,
//! and the edits built from it applied to a message (`milter::edit`).

use crate::milter::edit::{Edit, Message};
use crate::milter::wire::{Framer, MAX_PACKET, Response, action, decode};
use crate::queue::incoming::Payload;

/// What the fuzzer (`fuzz/fuzz_targets/milter_reply.rs`) and its stable replay (the unit
/// test below) check on any input:
///
/// * framing is the same whether the bytes arrive at once or one by one, and never yields a
///   packet longer than [`MAX_PACKET`];
/// * a decoded SMFIR_REPLYCODE is a 4xx or 5xx reply without control characters, so a
///   milter cannot make the server send a 2xx or split a reply line;
/// * any sequence of edits applied to a message leaves a message whose header section
///   serializes to fields that each have a name and end in LF, and whose envelope keeps
///   one copy of each recipient.
pub fn invariants(data: &[u8]) {
    fn all(f: &mut Framer) -> (Vec<(u8, Vec<u8>)>, bool) {
        let mut out = Vec::new();
        loop {
            match f.next_packet() {
                Ok(Some(p)) => out.push(p),
                Ok(None) => return (out, false),
                Err(_) => return (out, true),
            }
        }
    }
    let mut whole = Framer::default();
    whole.feed(data);
    let (a, ea) = all(&mut whole);
    let mut bytewise = Framer::default();
    let (mut b, mut eb) = (Vec::new(), false);
    for &byte in data {
        bytewise.feed(&[byte]);
        let (p, e) = all(&mut bytewise);
        b.extend(p);
        if e {
            eb = true;
            break;
        }
    }
    assert_eq!(a, b, "framing depends on how bytes arrive");
    assert_eq!(ea, eb);
    let mut edits = Vec::new();
    for (code, d) in &a {
        assert!(d.len() < MAX_PACKET);
        let Ok(r) = decode(*code, d) else { continue };
        if let Response::ReplyCode(reply) = &r {
            assert!((400..600).contains(&reply.code), "{reply:?}");
            assert!(
                reply
                    .lines
                    .iter()
                    .all(|l| !l.chars().any(|c| c.is_control() && c != '\t'))
            );
        }
        if let Ok(e) = Edit::from_response(r, action::OFFERED) {
            edits.push(e);
        }
    }
    let msg = b"Received: by us\nSubject: s\nFrom: a@b.example\n\nbody\n";
    let mut m = Message::new(Payload::Bytes(msg.to_vec()), msg, &[]);
    m.begin();
    for e in edits {
        m.apply(e);
    }
    let mut env = crate::queue::Envelope::new(
        "s@b.example",
        vec![crate::queue::Recipient::new("r@x.example")],
    );
    let Ok(Payload::Bytes(out)) = m.finish(&mut env) else {
        panic!("an in-memory message must stay in memory");
    };
    for h in &env.headers {
        assert!(h.ends_with('\n') && h.contains(':'), "{h:?}");
    }
    let end = out
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(out.len(), |i| i + 1);
    for line in out[..end].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        assert!(
            matches!(line[0], b' ' | b'\t') || line.contains(&b':'),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
    let mut seen = std::collections::HashSet::new();
    for r in &env.recipients {
        assert!(
            seen.insert(r.address.to_ascii_lowercase()),
            "duplicate {}",
            r.address
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::Plan;

    #[test]
    fn corpus_and_mutations_keep_invariants() {
        Plan::text("milter_reply", b"\0\x01\x05yhimb+-2qe\r\n", 4096).run(invariants);
    }
}
