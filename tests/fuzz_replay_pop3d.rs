//! Stable replay of the POP3 server's fuzz targets (`pop3_session`, `pop3_mbox`): every
//! corpus file goes through the same invariants as the fuzzer, then a bounded, deterministic
//! mutation loop (xorshift) perturbs the corpus with the bytes that matter to POP3 and mbox
//! framing. Known answers make sure the code under test really parses the corpus (an invariant
//! check alone would pass a parser that rejects everything).

use std::path::PathBuf;

use mailtool::pop3d::mailbox::scan_mbox;
use mailtool::pop3d::session::{Listed, Session, SessionConfig, Step};
use mailtool::pop3d::{mailbox, session};

fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus {} is too small", dir.display());
    files
}

/// Deterministic mutations: flips, insertions of framing bytes, truncations, splices.
fn mutate_all(files: &[(String, Vec<u8>)], rounds: usize, check: fn(&[u8])) {
    const SPECIAL: &[u8] = b"\r\n. :<>@+-[]=*0123456789FromSTLSUSERPASSQUIT";
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for (_, data) in files {
        check(data);
        for _ in 0..rounds {
            let mut d = data.clone();
            for _ in 0..(1 + next() % 4) {
                let pos = if d.is_empty() {
                    0
                } else {
                    (next() as usize) % d.len()
                };
                match next() % 5 {
                    0 if !d.is_empty() => d[pos] = SPECIAL[(next() as usize) % SPECIAL.len()],
                    1 => d.insert(pos, SPECIAL[(next() as usize) % SPECIAL.len()]),
                    2 => d.truncate(pos),
                    3 => {
                        let other = &files[(next() as usize) % files.len()].1;
                        d.splice(pos..pos, other.iter().take(64).copied());
                    }
                    _ => d.insert(pos, next() as u8),
                }
            }
            check(&d);
        }
    }
}

#[test]
fn session_corpus_and_mutations_keep_the_invariants() {
    mutate_all(&corpus("pop3_session"), 300, session::fuzz_invariants);
}

#[test]
fn mbox_corpus_and_mutations_keep_the_invariants() {
    mutate_all(&corpus("pop3_mbox"), 300, mailbox::fuzz_invariants);
}

#[test]
fn known_answers_mbox() {
    let files = corpus("pop3_mbox");
    let get = |n: &str| files.iter().find(|(f, _)| f == n).unwrap().1.clone();
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
    let plain = &files.iter().find(|(f, _)| f == "plain_session").unwrap().1;
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
