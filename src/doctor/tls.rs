//! The TLS certificate: it must name the host, be valid now, and not expire soon.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::*;

use super::Check;
use crate::config::Config;

/// Certificates closer than this to their end get a warning (Let's Encrypt renews at 30 days).
pub const EXPIRY_WARNING: Duration = Duration::from_secs(21 * 86_400);

/// Whether a certificate name (`*.example.com` allowed) covers `host`.
pub fn name_matches(pattern: &str, host: &str) -> bool {
    let (p, h) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    match p.strip_prefix("*.") {
        Some(rest) => h
            .split_once('.')
            .is_some_and(|(label, parent)| !label.is_empty() && parent == rest),
        None => p == h,
    }
}

pub fn certificate(cfg: &Config, now: SystemTime) -> Check {
    let t = &cfg.settings.tls;
    if t.cert.is_empty() {
        return Check::warn(
            "tls certificate",
            "no [tls] cert: STARTTLS, SMTPS and POP3S are off, passwords travel in clear",
            "set [tls] cert and key (e.g. from Let's Encrypt)",
        );
    }
    let path = cfg.path(&t.cert);
    let pem = match std::fs::read(&path) {
        Ok(p) => p,
        Err(e) => {
            return Check::fail(
                "tls certificate",
                format!("{}: {}", path.display(), crate::util::io_message(&e)),
                "fix [tls] cert",
            );
        }
    };
    let Some(Ok(der)) = CertificateDer::pem_slice_iter(&pem).next() else {
        return Check::fail(
            "tls certificate",
            format!("{}: no PEM certificate", path.display()),
            "point [tls] cert at a PEM file",
        );
    };
    let cert = match X509Certificate::from_der(der.as_ref()) {
        Ok((_, c)) => c,
        Err(e) => {
            return Check::fail(
                "tls certificate",
                format!("{}: {e}", path.display()),
                "replace the certificate",
            );
        }
    };
    let host = cfg.hostname();
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(d.to_string());
            }
        }
    }
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_string)),
        );
    }
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let not_after = cert.validity().not_after.timestamp();
    let not_before = cert.validity().not_before.timestamp();
    if !names.iter().any(|n| name_matches(n, &host)) {
        return Check::fail(
            "tls certificate",
            format!("names {} but the hostname is {host}", names.join(", ")),
            format!("get a certificate for {host}, or set `hostname`"),
        );
    }
    if secs > not_after {
        return Check::fail(
            "tls certificate",
            format!("expired on {}", cert.validity().not_after),
            "renew it",
        );
    }
    if secs < not_before {
        return Check::fail(
            "tls certificate",
            format!("not valid before {}", cert.validity().not_before),
            "check the clock, or the certificate",
        );
    }
    let left = (not_after - secs).max(0) as u64;
    if left < EXPIRY_WARNING.as_secs() {
        return Check::warn(
            "tls certificate",
            format!("for {host}, expires in {} days", left / 86_400),
            "renew it soon",
        );
    }
    Check::pass(
        "tls certificate",
        format!("for {host}, valid for {} more days", left / 86_400),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_matches("mail.example1.com", "MAIL.example1.com"));
        assert!(name_matches("*.example1.com", "mail.example1.com"));
        assert!(!name_matches("*.example1.com", "a.b.example1.com"));
        assert!(!name_matches("*.example1.com", "example1.com"));
        assert!(!name_matches("other.com", "mail.example1.com"));
    }
}
