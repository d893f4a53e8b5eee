//! TLS configuration from the PEM files named in `[tls]`: rustls with the ring provider.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: no certificate found in the PEM file")]
    NoCert { path: String },
    #[error("{path}: no private key found in the PEM file")]
    NoKey { path: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.display().to_string(),
        message: crate::util::io_message(&e),
    })
}

/// Builds the server configuration used by STARTTLS, SMTPS, STLS and POP3S.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_pem = read(cert)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Read {
            path: cert.display().to_string(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert {
            path: cert.display().to_string(),
        });
    }
    let key_pem = read(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: key.display().to_string(),
        },
        other => TlsError::Read {
            path: key.display().to_string(),
            message: other.to_string(),
        },
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// The crypto provider: *ring*, the only one compiled in, picked from rustls' crate features.
/// (`rustls::crypto::ring::default_provider` is deprecated from rustls 0.23.48 on; the
/// process default is the same provider without naming the deprecated function.)
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| ClientConfig::builder().crypto_provider().clone())
}

/// How a client checks the server's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Verify {
    /// The system's trust store (/etc/ssl/certs), as curl and swaks do.
    #[default]
    System,
    /// Only the CA certificates in this PEM file (a private CA, or a test's self-signed cert).
    CaFile(std::path::PathBuf),
    /// No verification: opportunistic STARTTLS between MTAs (RFC 7435), or `--insecure`.
    /// Encrypts against passive listeners only.
    Nothing,
}

/// Builds a client configuration for smtp-send, pop-login, relaycheck and outbound delivery.
pub fn client_config(verify: &Verify) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let config = match verify {
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth(),
        Verify::System => {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(TlsError::Config(
                    "no trusted CA certificates found in the system store (install \
                     ca-certificates, or name a CA file)"
                        .into(),
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Verify::CaFile(path) => {
            let pem = read(path)?;
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&pem) {
                let c = c.map_err(|e| TlsError::Read {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
                roots.add(c).map_err(|e| TlsError::Read {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
            }
            if roots.is_empty() {
                return Err(TlsError::NoCert {
                    path: path.display().to_string(),
                });
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// Accepts any certificate but still checks the handshake signatures, so the session keys
/// really belong to whoever holds the (unverified) certificate.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The name to present in SNI and to verify: a DNS name, or an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(h.to_string())
        .map_err(|_| TlsError::Config(format!("{host}: not a valid TLS server name")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_generated_pair_and_reports_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["mail.example1.com".into()]).unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&c, ck.cert.pem()).unwrap();
        std::fs::write(&k, ck.signing_key.serialize_pem()).unwrap();
        assert!(server_config(&c, &k).is_ok());
        assert!(matches!(
            server_config(&k, &k),
            Err(TlsError::NoCert { .. })
        ));
        assert!(matches!(server_config(&c, &c), Err(TlsError::NoKey { .. })));
        assert!(matches!(
            server_config(&dir.path().join("none"), &k),
            Err(TlsError::Read { .. })
        ));
        assert!(client_config(&Verify::CaFile(c.clone())).is_ok());
        assert!(client_config(&Verify::Nothing).is_ok());
        assert!(matches!(
            client_config(&Verify::CaFile(k.clone())),
            Err(TlsError::NoCert { .. })
        ));
        assert!(server_name("[127.0.0.1]").is_ok() && server_name("mail.example1.com").is_ok());
    }
}
