//! Stable replay of the POP3 server's fuzz targets (`pop3_session`, `pop3_mbox`): every
//! corpus file goes through the same invariants as the fuzzer, then a bounded, deterministic
//! mutation loop (xorshift) perturbs the corpus with the bytes that matter to POP3 and mbox
//! framing. Known answers make sure the code under test really parses the corpus (an invariant
//! check alone would pass a parser that rejects everything).

mod common;

use common::fuzz::{corpus, replay};
use mailtool::pop3::maildrop::scan_mbox;
use mailtool::pop3::session::{Listed, Session, SessionConfig, Step};
use mailtool::pop3::{maildrop, session};

/// Bytes that matter to POP3 command framing and to mbox message boundaries.
const INTERESTING: &[u8] = b"\r\n. :<>@+-[]=*0123456789FromSTLSUSERPASSQUIT\0";

#[test]
fn session_corpus_and_mutations_keep_the_invariants() {
    replay(
        "pop3_session",
        INTERESTING,
        3000,
        4096,
        session::fuzz_invariants,
    );
}

#[test]
fn mbox_corpus_and_mutations_keep_the_invariants() {
    replay(
        "pop3_mbox",
        INTERESTING,
        3000,
        16384,
        maildrop::fuzz_invariants,
    );
}

#[test]
fn known_answers_mbox() {
    let files = corpus("pop3_mbox");
    let get = |n: &str| {
        files
            .iter()
            .find(|(f, _)| f.ends_with(&format!("/{n}")))
            .unwrap()
            .1
            .clone()
    };
    let two = scan_mbox(&get("two_messages")[..], 0).unwrap();
    // "Subject: one\r\n\r\nbody\r\n>From quoted\r\n" and "Subject: two\r\n\r\n.dot\r\n".
    assert_eq!(two.iter().map(|m| m.size).collect::<Vec<_>>(), vec![36, 22]);
    assert_eq!(scan_mbox(&get("garbage_first")[..], 0).unwrap().len(), 1);
    assert_eq!(scan_mbox(&get("empty_messages")[..], 0).unwrap().len(), 3);
    assert_eq!(
        scan_mbox(&get("from_without_space")[..], 0).unwrap().len(),
        1
    );
    assert!(scan_mbox(&get("empty")[..], 0).unwrap().is_empty());
}

#[test]
fn known_answers_session() {
    let files = corpus("pop3_session");
    let plain = &files
        .iter()
        .find(|(f, _)| f.ends_with("/plain_session"))
        .unwrap()
        .1;
    let mut s = Session::new(SessionConfig {
        hostname: "h.example".into(),
        tls_available: true,
        plaintext_auth: true,
        apop_stamp: "<1.2@h.example>".into(),
        implicit_tls: false,
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
