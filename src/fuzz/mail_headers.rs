//! The `mail_headers` target: the message stage's own parsers of what a client sends
//! (`stage::header`, `stage::authres`, the LF-to-CRLF conversion), and mail-auth's reading of
//! the same bytes as a message with DKIM-Signature fields, which must never panic.

use crate::stage::{authres, header, sign};

/// What the fuzzer (`fuzz/fuzz_targets/mail_headers.rs`) and its stable replay check:
///
/// * fields tile the head from its start: each begins where the last ended, within the
///   input, with its name and a colon;
/// * removing the fields that claim an authserv-id leaves none that does, and so does
///   renaming them in place (the same length);
/// * the From: domain, when found, is lowercase, non-empty and has no `@`;
/// * the CRLF form has no bare LF, and dropping the CRs it added gives the input back;
/// * mail-auth parses the message and its DKIM-Signature fields without panicking.
pub fn invariants(data: &[u8]) {
    let mut at = 0;
    for f in header::fields(data) {
        assert_eq!(f.start, at, "fields do not tile the head");
        assert!(f.end > f.start && f.end <= data.len());
        assert!(data[f.start..].starts_with(f.name));
        assert_eq!(data[f.start + f.name.len()], b':');
        at = f.end;
    }
    for id in ["mx.example", "MX.example", ""] {
        let spans = authres::claiming(data, id);
        let mut cut = data.to_vec();
        authres::remove(&mut cut, &spans);
        assert!(
            authres::claiming(&cut, id).is_empty(),
            "a claim survived removal"
        );
        let mut renamed = data.to_vec();
        for &(start, _) in &spans {
            renamed[start..start + authres::OBSCURED.len()]
                .copy_from_slice(authres::OBSCURED.as_bytes());
        }
        assert_eq!(renamed.len(), data.len());
        assert!(
            authres::claiming(&renamed, id).is_empty(),
            "a claim survived renaming"
        );
    }
    for f in header::fields(data) {
        if let Some(id) = authres::authserv_id(f.value) {
            assert!(!id.is_empty());
        }
    }
    if let Some(d) = header::from_domain(data) {
        assert!(!d.is_empty() && !d.contains('@'));
        assert_eq!(d, d.to_ascii_lowercase());
    }
    let c = sign::to_crlf(data);
    for (i, &b) in c.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && c[i - 1] == b'\r', "bare LF after conversion");
        }
    }
    // Dropping every CR that the conversion put before an LF gives the input back.
    let mut back = Vec::with_capacity(data.len());
    let mut j = 0;
    for (i, &b) in c.iter().enumerate() {
        let added = b == b'\r' && c.get(i + 1) == Some(&b'\n') && data.get(j) == Some(&b'\n');
        if !added {
            back.push(b);
            j += 1;
        }
    }
    assert_eq!(back, data, "the CRLF form is not the input plus CRs");
    if let Some(m) = mail_auth::AuthenticatedMessage::parse(&c) {
        for h in &m.dkim_headers {
            let _ = mail_auth::dkim::Signature::parse(h.value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::Plan;

    #[test]
    fn corpus_and_mutations_keep_invariants() {
        Plan::text("mail_headers", b"\r\n\t :;()\"\\@=", 4096).run(invariants);
    }
}
