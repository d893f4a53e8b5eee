//! The `pop3_mbox` target: the POP3 server's mbox indexer (`pop3::maildrop`).

use crate::pop3::maildrop::*;

/// The fuzz target's checks: indexing arbitrary bytes never panics, message extents lie
/// inside the input and do not overlap, and each size is what the wire encoding produces.
pub fn invariants(data: &[u8]) {
    let msgs = scan_mbox(data, 0).expect("in-memory read");
    let mut prev_end = 0u64;
    for m in &msgs {
        let Loc::Mbox { from, start, len } = m.loc else {
            panic!("mbox scan gave a file");
        };
        assert!(from >= prev_end && start > from && start + len <= data.len() as u64);
        let body = &data[start as usize..(start + len) as usize];
        assert_eq!(crate::pop3::session::wire_size(body), m.size);
        prev_end = start + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::{Plan, file};
    use crate::pop3::maildrop::scan_mbox;

    /// The corpus and mutations with the bytes that matter to mbox message boundaries.
    #[test]
    fn corpus_and_mutations_keep_invariants() {
        Plan::text("pop3_mbox", super::super::pop3_session::INTERESTING, 16384).run(invariants);
    }

    #[test]
    fn known_answers_mbox() {
        let get = |n: &str| file("pop3_mbox", n);
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
}
