//! TLS configuration from the PEM files named in `[tls]`: rustls with the ring provider.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
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
    }
}
