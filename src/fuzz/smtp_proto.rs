//! The `smtp_proto` target: `LineReader`, `parse_command` and `DataReader` over the input,
//! fed whole, split at an offset derived from the input, and byte by byte.
//!
//! * nothing panics;
//! * one-shot, split and byte-by-byte feeding give identical results, for the DATA reader
//!   alone and for a whole simulated session;
//! * DATA ends exactly at the first real `CRLF . CRLF` (cross-checked against a plain search),
//!   never earlier, so no smuggled ending is honoured;
//! * the stored message holds no bare CR or LF and respects the size limit;
//! * command lines are at most 510 octets and every echoed reply line is at most 512 octets
//!   with no CR/LF inside;
//! * after `STARTTLS`, `discard_buffered` leaves nothing to execute.

use std::net::IpAddr;

use crate::smtp::proto::*;

/// What a simulated session produced; used to compare chunkings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    Line(LineEvent),
    Command(Command),
    Message(Vec<u8>, DataState),
}

/// Where the real end of data is (index just past `.CRLF`), by the plain
/// definition: `.\r\n` at offset 0 or right after `\r\n`. Independent of
/// [`DataReader`]'s state machine, for cross-checking.
pub fn reference_data_end(input: &[u8]) -> Option<usize> {
    (0..input.len()).find_map(|i| {
        let at_line_start = i == 0 || (i >= 2 && &input[i - 2..i] == b"\r\n");
        (at_line_start && input[i..].starts_with(b".\r\n")).then_some(i + 3)
    })
}

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
pub fn invariants(input: &[u8]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::Plan;

    /// The corpus and mutations with the bytes that matter for framing and smuggling.
    #[test]
    fn corpus_and_mutations_keep_invariants() {
        Plan::text("smtp_proto", b"\r\n.\0 :", 4096).run(invariants);
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
                invariants(input);
            }
        }
    }
}
