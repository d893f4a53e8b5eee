//! The `pop3_session` target: the POP3 server's state machine (`pop3::session`) over any command stream.

use crate::pop3::session::*;

/// Everything the fuzz target checks: no panic on any input in any state, every reply is
/// CRLF-terminated and within RFC 1939's 512 octets for status lines, and the encoding
/// round-trips through the client's dot-unstuffing decoder.
pub fn invariants(data: &[u8]) {
    let cfg = SessionConfig {
        hostname: "fuzz.example".into(),
        tls_available: data.first().is_some_and(|b| b & 1 == 1),
        plaintext_auth: data.first().is_some_and(|b| b & 2 == 2),
        apop_stamp: "<1.2@fuzz.example>".into(),
        implicit_tls: false,
        max_bad_commands: 0,
    };
    let mut s = Session::new(cfg);
    let mut logged_in = false;
    for l in data.split(|&b| b == b'\n').take(200) {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        for step in s.on_line(l) {
            match step {
                Step::Send(b) => {
                    assert!(b.ends_with(b"\r\n"));
                    let first = b.split(|&c| c == b'\n').next().unwrap_or_default();
                    assert!(first.len() <= 512, "status line too long");
                }
                Step::Login { user, .. } => {
                    if !logged_in && user.len() % 2 == 0 {
                        logged_in = true;
                        let msgs: Vec<Listed> = (0..3)
                            .map(|i| Listed {
                                size: 10 + i,
                                uid: format!("u{i}"),
                            })
                            .collect();
                        s.login_ok(&user, msgs);
                    } else {
                        s.login_failed("-ERR [AUTH] nope");
                    }
                }
                Step::Retrieve { index, .. } => assert!(index < 3),
                Step::Update { deleted } => assert!(deleted.iter().all(|&i| i < 3)),
                Step::StartTls => s.tls_started(),
                Step::Close => {}
            }
        }
    }
    let mut out = Vec::new();
    encode_message(data, None, &mut out);
    out.extend_from_slice(b".\r\n");
    let mut dec = crate::pop3::client::response::BodyDecoder::new(out.len() + 16);
    dec.feed(&out).expect("decodes");
    assert!(dec.is_done());
    let body = dec.into_body();
    let expect: Vec<u8> = data
        .split_inclusive(|&b| b == b'\n')
        .flat_map(|l| {
            let t = l.strip_suffix(b"\n").unwrap_or(l);
            let t = t.strip_suffix(b"\r").unwrap_or(t);
            [t, b"\r\n"].concat()
        })
        .collect();
    assert_eq!(body, expect);
    assert_eq!(wire_size(data), expect.len() as u64);
}

/// Bytes that matter to POP3 command framing and to mbox message boundaries.
pub const INTERESTING: &[u8] = b"\r\n. :<>@+-[]=*0123456789FromSTLSUSERPASSQUIT\0";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::{Plan, file};
    use crate::pop3::session::{Listed, Session, SessionConfig, Step};

    #[test]
    fn corpus_and_mutations_keep_invariants() {
        Plan::text("pop3_session", INTERESTING, 4096).run(invariants);
    }

    #[test]
    fn known_answers_session() {
        let plain = file("pop3_session", "plain_session");
        let mut s = Session::new(SessionConfig {
            hostname: "h.example".into(),
            tls_available: true,
            plaintext_auth: true,
            apop_stamp: "<1.2@h.example>".into(),
            implicit_tls: false,
            max_bad_commands: 0,
        });
        let mut replies = Vec::new();
        for l in plain[1..].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            for step in s.on_line(l) {
                match step {
                    Step::Login { user, .. } => {
                        let msgs = vec![
                            Listed {
                                size: 10,
                                uid: "a".into(),
                            },
                            Listed {
                                size: 20,
                                uid: "b".into(),
                            },
                        ];
                        for r in s.login_ok(&user, msgs) {
                            if let Step::Send(b) = r {
                                replies.push(String::from_utf8(b).unwrap());
                            }
                        }
                    }
                    Step::Send(b) => replies.push(String::from_utf8(b).unwrap()),
                    other => replies.push(format!("{other:?}")),
                }
            }
        }
        assert_eq!(
            replies,
            vec![
                "+OK Password required for ab.\r\n",
                "+OK ab has 2 visible messages (0 hidden) in 30 octets.\r\n",
                "+OK 2 30\r\n",
                "+OK 2 visible messages (30 octets)\r\n1 10\r\n2 20\r\n.\r\n",
                "+OK 2 20\r\n",
                "Retrieve { index: 0, lines: None }",
                "Retrieve { index: 1, lines: Some(0) }",
                "+OK Unique-ID listing follows\r\n1 a\r\n2 b\r\n.\r\n",
                "+OK Message 1 has been deleted.\r\n",
                "+OK Maildrop has 2 visible messages (0 hidden) (30 octets).\r\n",
                "+OK 0\r\n",
                "+OK\r\n",
                "Update { deleted: [] }",
            ]
        );
    }
}
