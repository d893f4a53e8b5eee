//! DKIM private keys: reading the PEM files `[dkim] sign` names, making new ones for
//! `mailtool dkim keygen`, and the DNS record that publishes a key's public half
//! (RFC 6376 §3.6.1; Ed25519 keys are RFC 8463's raw 32 bytes).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// RFC 8301 §3.2 sets 1024 bits as the floor and 2048 as what signers SHOULD use; ring, which
/// signs for us, takes nothing shorter than 2048, so a shorter key is refused at start.
pub const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("DKIM key {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("DKIM key {path}: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("cannot make a key: {0}")]
    Generate(String),
}

/// The two algorithms keygen makes and the signer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Algorithm {
    Rsa,
    Ed25519,
}

impl Algorithm {
    /// The DNS record's `k=` value.
    pub fn k(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

/// A loaded private key.
pub enum PrivateKey {
    Rsa {
        key: RsaKey<Sha256>,
        /// SubjectPublicKeyInfo DER, as opendkim-genkey publishes it.
        public: Vec<u8>,
    },
    Ed25519(Ed25519Key),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrivateKey::Rsa { .. } => "PrivateKey::Rsa",
            PrivateKey::Ed25519(_) => "PrivateKey::Ed25519",
        })
    }
}

impl PrivateKey {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PrivateKey::Rsa { .. } => Algorithm::Rsa,
            PrivateKey::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// The base64 `p=` value of the DNS record.
    pub fn public_b64(&self) -> String {
        let raw = match self {
            PrivateKey::Rsa { public, .. } => public.clone(),
            PrivateKey::Ed25519(k) => k.public_key(),
        };
        base64::engine::general_purpose::STANDARD.encode(raw)
    }

    /// The TXT record's text: `v=DKIM1; k=…; p=…`.
    pub fn record_text(&self) -> String {
        format!(
            "v=DKIM1; k={}; p={}",
            self.algorithm().k(),
            self.public_b64()
        )
    }
}

/// Reads the key at `path`: RSA as PKCS#1 or PKCS#8 PEM, Ed25519 as PKCS#8 PEM.
pub fn load(path: &Path) -> Result<PrivateKey, KeyError> {
    let pem = std::fs::read(path).map_err(|e| KeyError::Read {
        path: path.to_path_buf(),
        message: crate::util::io_message(&e),
    })?;
    parse(&pem).map_err(|message| KeyError::Malformed {
        path: path.to_path_buf(),
        message,
    })
}

/// [`load`] on bytes already read.
pub fn parse(pem: &[u8]) -> Result<PrivateKey, String> {
    let der =
        PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("not a PEM private key ({e})"))?;
    let rsa = match &der {
        PrivateKeyDer::Pkcs8(p8) => {
            if let Ok(k) = Ed25519Key::from_pkcs8_maybe_unchecked_der(p8.secret_pkcs8_der()) {
                return Ok(PrivateKey::Ed25519(k));
            }
            rsa::RsaPrivateKey::from_pkcs8_der(p8.secret_pkcs8_der())
                .map_err(|e| format!("neither an Ed25519 nor an RSA key: {e}"))?
        }
        PrivateKeyDer::Pkcs1(p1) => rsa::RsaPrivateKey::from_pkcs1_der(p1.secret_pkcs1_der())
            .map_err(|e| format!("not an RSA key: {e}"))?,
        _ => return Err("not an RSA or Ed25519 key (an EC key?)".into()),
    };
    let bits = rsa.size() * 8;
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "an RSA key of {bits} bits; at least {MIN_RSA_BITS} are needed (`mailtool dkim keygen` makes one)"
        ));
    }
    let public = rsa::RsaPublicKey::from(&rsa)
        .to_public_key_der()
        .map_err(|e| e.to_string())?
        .as_bytes()
        .to_vec();
    let key = RsaKey::<Sha256>::from_key_der(der).map_err(|e| e.to_string())?;
    Ok(PrivateKey::Rsa { key, public })
}

/// A new private key as PKCS#8 PEM (RSA-2048 or Ed25519).
pub fn generate(algorithm: Algorithm) -> Result<String, KeyError> {
    let gen_err = |e: &dyn std::fmt::Display| KeyError::Generate(e.to_string());
    let der: Vec<u8> = match algorithm {
        Algorithm::Rsa => {
            let k = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .map_err(|e| gen_err(&e))?;
            return k
                .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                .map(|s| s.to_string())
                .map_err(|e| gen_err(&e));
        }
        Algorithm::Ed25519 => Ed25519Key::generate_pkcs8().map_err(|e| gen_err(&e))?,
    };
    rsa::pkcs8::der::pem::encode_string("PRIVATE KEY", rsa::pkcs8::LineEnding::LF, &der)
        .map_err(|e| gen_err(&e))
}

/// The zone-file line publishing `text` at `SELECTOR._domainkey.DOMAIN.`, the text split
/// into strings of at most 255 bytes (RFC 1035 §3.3's limit for one character-string).
pub fn zone_line(domain: &str, selector: &str, text: &str) -> String {
    let strings: Vec<String> = text
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!(
        "{selector}._domainkey.{}. IN TXT {}",
        domain.trim_end_matches('.'),
        strings.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_and_publish() {
        for alg in [Algorithm::Ed25519, Algorithm::Rsa] {
            let pem = generate(alg).unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
            let k = parse(pem.as_bytes()).unwrap();
            assert_eq!(k.algorithm(), alg);
            let text = k.record_text();
            assert!(text.starts_with(&format!("v=DKIM1; k={}; p=", alg.k())));
            let p = base64::engine::general_purpose::STANDARD
                .decode(k.public_b64())
                .unwrap();
            match alg {
                Algorithm::Ed25519 => assert_eq!(p.len(), 32),
                // SPKI of a 2048-bit key.
                Algorithm::Rsa => assert_eq!(p.len(), 294),
            }
        }
    }

    #[test]
    fn pkcs1_rsa_keys_load_and_bad_keys_say_why() {
        let k = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let pem =
            rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(&k, rsa::pkcs8::LineEnding::LF).unwrap();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert_eq!(parse(pem.as_bytes()).unwrap().algorithm(), Algorithm::Rsa);
        let small = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let pem = small.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        assert!(parse(pem.as_bytes()).unwrap_err().contains("1024 bits"));
        assert!(parse(b"hello").unwrap_err().contains("not a PEM"));
        let d = tempfile::tempdir().unwrap();
        let e = load(&d.path().join("none.key")).unwrap_err();
        assert!(e.to_string().contains("none.key"), "{e}");
        std::fs::write(d.path().join("bad.key"), "junk").unwrap();
        let e = load(&d.path().join("bad.key")).unwrap_err();
        assert!(e.to_string().contains("bad.key: not a PEM"), "{e}");
    }

    #[test]
    fn the_zone_line_splits_at_255_bytes() {
        let text = format!("v=DKIM1; k=rsa; p={}", "A".repeat(392));
        let line = zone_line("example1.com", "s2026", &text);
        let want = format!(
            "s2026._domainkey.example1.com. IN TXT \"{}\" \"{}\"",
            &text[..255],
            &text[255..]
        );
        assert_eq!(line, want);
        assert_eq!(
            zone_line("e.example.", "s", "v=DKIM1"),
            "s._domainkey.e.example. IN TXT \"v=DKIM1\""
        );
    }
}
