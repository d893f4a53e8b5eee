//! DKIM signing (RFC 6376, RFC 8463) of mail we send for our own users: the key is picked
//! by the From: domain, or failing that by its nearest parent with a key (a bounce from
//! `MAILER-DAEMON@mail.example1.com` is signed as `example1.com`). A domain with several
//! selectors is signed with each. The message is read once, in chunks, whatever its size.

use std::collections::HashMap;
use std::path::Path;

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};

use super::keys::{self, KeyError, PrivateKey};
use crate::config::Dkim;

/// The fields signed, From first. A name listed twice is oversigned: the signature also
/// covers its absence, so a second From:, Subject: or To: added in transit breaks it.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "From",
    "Reply-To",
    "Reply-To",
    "Subject",
    "Subject",
    "Date",
    "Date",
    "To",
    "To",
    "Cc",
    "Cc",
    "Message-ID",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "MIME-Version",
    "Content-Type",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Transfer-Encoding",
    "Sender",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

enum Built {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

/// One configured key, ready to sign.
pub struct Selector {
    pub domain: String,
    pub selector: String,
    /// The TXT record the key needs (`doctor` compares it with DNS).
    pub record: String,
    built: Built,
}

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Selector({} {})", self.domain, self.selector)
    }
}

/// Every `[dkim] sign` key, by domain.
#[derive(Debug, Default)]
pub struct Signer {
    by_domain: HashMap<String, Vec<Selector>>,
}

/// What signing did, for the log line.
#[derive(Debug, PartialEq, Eq)]
pub enum Signed {
    /// The DKIM-Signature fields (LF-ended, folded), and `d=/s=` of each for the log.
    Fields {
        fields: Vec<String>,
        by: Vec<String>,
    },
    /// No key for the From: domain (or no From: at all: `None`).
    NoKey(Option<String>),
    /// Reading the message or signing failed; the message goes out unsigned.
    Failed(String),
}

impl Signer {
    /// Loads every key `dkim` names; `resolve` turns relative paths (the configuration's
    /// directory). Refuses a key that is missing, unreadable or malformed, with its path.
    pub fn load(
        dkim: &Dkim,
        resolve: impl Fn(&str) -> std::path::PathBuf,
    ) -> Result<Signer, KeyError> {
        let mut by_domain: HashMap<String, Vec<Selector>> = HashMap::new();
        for k in &dkim.sign {
            let path = resolve(&k.key);
            let key = keys::load(&path)?;
            let domain = k.domain.trim_end_matches('.').to_ascii_lowercase();
            by_domain
                .entry(domain.clone())
                .or_default()
                .push(Selector::new(&domain, &k.selector, key));
        }
        Ok(Signer { by_domain })
    }

    /// True if no key is configured.
    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    /// Every configured key.
    pub fn selectors(&self) -> impl Iterator<Item = &Selector> {
        self.by_domain.values().flatten()
    }

    /// The keys for `domain`: its own, else those of its nearest parent that has any.
    pub fn keys_for(&self, domain: &str) -> &[Selector] {
        let mut d = domain.trim_end_matches('.').to_ascii_lowercase();
        loop {
            if let Some(v) = self.by_domain.get(&d) {
                return v;
            }
            match d.split_once('.') {
                // A parent must keep at least two labels: never sign as a TLD.
                Some((_, parent)) if parent.contains('.') => d = parent.to_string(),
                _ => return &[],
            }
        }
    }

    /// Signs the message `bytes` (LF or CRLF line ends).
    pub fn sign(&self, bytes: &[u8]) -> Signed {
        self.sign_with(bytes, |feed| {
            feed(bytes);
            Ok(())
        })
    }

    /// Signs the message whose header section starts `head`, reading all of it from the file
    /// at `path` in chunks.
    pub fn sign_file(&self, head: &[u8], path: &Path) -> Signed {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                return Signed::Failed(format!(
                    "{}: {}",
                    path.display(),
                    crate::util::io_message(&e)
                ));
            }
        };
        self.sign_with(head, |feed| {
            crate::content::read_chunks(file, 64 * 1024, |c| {
                feed(c);
                Ok(())
            })
            .map_err(|e| crate::util::io_message(&e))
        })
    }

    fn sign_with(
        &self,
        head: &[u8],
        read: impl FnOnce(&mut dyn FnMut(&[u8])) -> Result<(), String>,
    ) -> Signed {
        let Some(domain) = super::header::from_domain(head) else {
            return Signed::NoKey(None);
        };
        let keys = self.keys_for(&domain);
        if keys.is_empty() {
            return Signed::NoKey(Some(domain));
        }
        match sign_stream(keys, read) {
            Ok(fields) => Signed::Fields {
                fields,
                by: keys
                    .iter()
                    .map(|k| format!("d={} s={}", k.domain, k.selector))
                    .collect(),
            },
            Err(e) => Signed::Failed(e),
        }
    }
}

impl Selector {
    fn new(domain: &str, selector: &str, key: PrivateKey) -> Selector {
        let record = key.record_text();
        let built = match key {
            PrivateKey::Rsa { key, .. } => Built::Rsa(
                DkimSigner::from_key(key)
                    .domain(domain)
                    .selector(selector)
                    .headers(SIGNED_HEADERS.iter().copied())
                    .header_canonicalization(Canonicalization::Relaxed)
                    .body_canonicalization(Canonicalization::Relaxed),
            ),
            PrivateKey::Ed25519(key) => Built::Ed25519(
                DkimSigner::from_key(key)
                    .domain(domain)
                    .selector(selector)
                    .headers(SIGNED_HEADERS.iter().copied())
                    .header_canonicalization(Canonicalization::Relaxed)
                    .body_canonicalization(Canonicalization::Relaxed),
            ),
        };
        Selector {
            domain: domain.to_string(),
            selector: selector.to_string(),
            record,
            built,
        }
    }
}

/// One pass over the message feeding every key's stream, in CRLF as DKIM canonicalises.
fn sign_stream(
    keys: &[Selector],
    read: impl FnOnce(&mut dyn FnMut(&[u8])) -> Result<(), String>,
) -> Result<Vec<String>, String> {
    enum Stream<'a> {
        Rsa(mail_auth::dkim::streaming::DkimSigningStream<'a, RsaKey<Sha256>>),
        Ed25519(mail_auth::dkim::streaming::DkimSigningStream<'a, Ed25519Key>),
    }
    let mut streams: Vec<Stream> = keys
        .iter()
        .map(|k| match &k.built {
            Built::Rsa(s) => Stream::Rsa(s.sign_streaming()),
            Built::Ed25519(s) => Stream::Ed25519(s.sign_streaming()),
        })
        .collect();
    let mut crlf = Crlf::default();
    let mut out = Vec::new();
    read(&mut |chunk: &[u8]| {
        out.clear();
        crlf.push(chunk, &mut out);
        for s in &mut streams {
            match s {
                Stream::Rsa(s) => s.write(&out),
                Stream::Ed25519(s) => s.write(&out),
            }
        }
    })?;
    let mut fields = Vec::with_capacity(streams.len());
    for s in streams {
        let sig = match s {
            Stream::Rsa(s) => s.finish(),
            Stream::Ed25519(s) => s.finish(),
        }
        .map_err(|e| format!("signing failed: {e}"))?;
        fields.push(lf_field(&sig.to_header()));
    }
    Ok(fields)
}

/// A header field as the spool keeps it: LF line ends, one at the end.
pub fn lf_field(text: &str) -> String {
    let mut s: String = text.chars().filter(|&c| c != '\r').collect();
    while s.ends_with('\n') {
        s.pop();
    }
    s.push('\n');
    s
}

/// LF to CRLF across chunk boundaries; CRLF stays as it is.
#[derive(Debug, Default)]
pub struct Crlf {
    last_cr: bool,
}

impl Crlf {
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            if b == b'\n' && !self.last_cr {
                out.push(b'\r');
            }
            out.push(b);
            self.last_cr = b == b'\r';
        }
    }
}

/// The whole of `bytes` in CRLF.
pub fn to_crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    Crlf::default().push(bytes, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DkimKey;

    fn signer(dir: &Path, entries: &[(&str, &str, keys::Algorithm)]) -> Signer {
        let mut dkim = Dkim::default();
        for (d, s, alg) in entries {
            let path = dir.join(format!("{d}.{s}.key"));
            std::fs::write(&path, keys::generate(*alg).unwrap()).unwrap();
            dkim.sign.push(DkimKey {
                domain: d.to_string(),
                selector: s.to_string(),
                key: path.display().to_string(),
            });
        }
        Signer::load(&dkim, |p: &str| std::path::PathBuf::from(p)).unwrap()
    }

    #[test]
    fn crlf_conversion_across_chunks() {
        let mut c = Crlf::default();
        let mut out = Vec::new();
        c.push(b"a\nb\r", &mut out);
        c.push(b"\nc\n\n", &mut out);
        assert_eq!(out, b"a\r\nb\r\nc\r\n\r\n");
        assert_eq!(to_crlf(b"x\r\ny\n"), b"x\r\ny\r\n");
        assert_eq!(lf_field("A: b\r\n\tc\r\n"), "A: b\n\tc\n");
        assert_eq!(lf_field("A: b"), "A: b\n");
    }

    #[test]
    fn keys_by_domain_then_parent_and_every_selector() {
        let d = tempfile::tempdir().unwrap();
        let s = signer(
            d.path(),
            &[
                ("example1.com", "old", keys::Algorithm::Ed25519),
                ("example1.com", "new", keys::Algorithm::Ed25519),
                ("other.example", "s", keys::Algorithm::Ed25519),
            ],
        );
        assert_eq!(s.keys_for("EXAMPLE1.com.").len(), 2);
        assert_eq!(s.keys_for("mail.example1.com").len(), 2);
        assert_eq!(s.keys_for("a.b.other.example")[0].selector, "s");
        assert!(s.keys_for("com").is_empty());
        assert!(s.keys_for("example9.com").is_empty());
        let msg = b"From: A <a@mail.example1.com>\nSubject: hi\n\nbody\n";
        match s.sign(msg) {
            Signed::Fields { fields, by } => {
                assert_eq!(fields.len(), 2);
                assert_eq!(by, ["d=example1.com s=old", "d=example1.com s=new"]);
                for f in &fields {
                    assert!(f.starts_with("DKIM-Signature: "), "{f}");
                    assert!(f.contains("d=example1.com"), "{f}");
                    assert!(f.contains("c=relaxed/relaxed"), "{f}");
                    assert!(!f.contains('\r') && f.ends_with('\n'));
                }
                assert!(fields[0].contains("s=old") && fields[1].contains("s=new"));
            }
            other => panic!("{other:?}"),
        }
        let m2 = b"From: b@example9.com\n\nx\n";
        assert_eq!(s.sign(m2), Signed::NoKey(Some("example9.com".into())));
        let m3 = b"Subject: no from\n\nx\n";
        assert_eq!(s.sign(m3), Signed::NoKey(None));
        assert!(matches!(
            s.sign_file(msg, &d.path().join("missing")),
            Signed::Failed(e) if e.contains("missing")
        ));
    }
}
