//! SPF (RFC 7208), DKIM (RFC 6376) and DMARC (RFC 7489) checks of mail from clients that may
//! not relay, with the server's own resolver, recorded in an Authentication-Results field
//! (RFC 8601) and judged by `[verify]`. The lookups and the cryptography are mail-auth's;
//! what is ours is the policy ([`decide`]) and its limits:
//! - a DNS error is a `temperror`, and a temperror never refuses a message;
//! - the checks together finish within [`budget`] of the `[dns] timeout`, whatever the
//!   records (mail-auth stops SPF at the RFC's 10 lookups);
//! - a message over `[verify] max_size` is not read into memory for DKIM: its signatures
//!   count as temperror, and so does a DMARC result that would have needed them.

use std::net::IpAddr;
use std::time::Duration;

use mail_auth::dmarc::Policy;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcOutput, DmarcResult,
    MessageAuthenticator, SpfOutput, SpfResult,
};

use crate::config::{Verify, VerifyMode};
use crate::smtp::proto::Reply;

/// Who sent the message, as SPF sees it.
#[derive(Debug, Clone)]
pub struct Peer<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    /// The MAIL FROM address; empty for the null sender.
    pub mail_from: &'a str,
}

/// The message as the checks read it, in CRLF.
#[derive(Debug)]
pub enum Text {
    /// All of it.
    Whole(Vec<u8>),
    /// Only its start (over `max_size`): DKIM is not checked.
    Head(Vec<u8>),
}

/// What the checks found and what to do about it.
#[derive(Debug)]
pub struct Verified {
    /// The Authentication-Results field (LF-ended), if any check ran.
    pub field: Option<String>,
    pub decision: Decision,
    /// `spf=… dkim=… dmarc=…` for the log line.
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accept,
    /// DMARC `p=quarantine` failed: delivered, tagged, logged.
    Quarantine(String),
    /// Refused at the end of DATA.
    Refuse(Reply),
}

/// The most the checks of one message may take: a few lookups' worth of `[dns] timeout`.
pub fn budget(dns_timeout: Duration) -> Duration {
    (dns_timeout * 6).max(Duration::from_secs(2))
}

fn temp(why: &str) -> mail_auth::Error {
    mail_auth::Error::Io(why.to_string())
}

/// Runs the checks `cfg` asks for and decides. `hostname` is the authserv-id.
pub async fn verify(
    auth: &MessageAuthenticator,
    cfg: &Verify,
    hostname: &str,
    peer: &Peer<'_>,
    text: &Text,
    dns_timeout: Duration,
) -> Verified {
    let deadline = tokio::time::Instant::now() + budget(dns_timeout);
    let bytes = match text {
        Text::Whole(b) | Text::Head(b) => b.as_slice(),
    };
    let parsed = AuthenticatedMessage::parse(bytes);
    let from_domain = parsed
        .as_ref()
        .and_then(|m| m.from.first())
        .and_then(|f| f.rsplit_once('@'))
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    let need_spf = cfg.spf != VerifyMode::Off || cfg.dmarc != VerifyMode::Off;
    let need_dkim = cfg.dkim != VerifyMode::Off || cfg.dmarc != VerifyMode::Off;

    // SPF: the HELO identity, then MAIL FROM (the null sender is checked as postmaster@HELO,
    // RFC 7208 §2.4, which is the HELO result).
    let helo_domain = peer.helo.trim_start_matches('[').trim_end_matches(']');
    let timed_out = || SpfOutput::new(String::new()).with_result(SpfResult::TempError);
    let (helo_spf, mail_spf) = if need_spf {
        let helo = tokio::time::timeout_at(
            deadline,
            auth.verify_spf(SpfParameters::verify_ehlo(peer.ip, helo_domain, hostname)),
        )
        .await
        .unwrap_or_else(|_| timed_out());
        let mail = if peer.mail_from.is_empty() {
            helo.clone()
        } else {
            tokio::time::timeout_at(
                deadline,
                auth.verify_spf(SpfParameters::verify_mail_from(
                    peer.ip,
                    helo_domain,
                    hostname,
                    peer.mail_from,
                )),
            )
            .await
            .unwrap_or_else(|_| timed_out())
        };
        (Some(helo), Some(mail))
    } else {
        (None, None)
    };

    // DKIM: every signature, unless the message was too large to read.
    let mut dkim: Vec<DkimOutput> = Vec::new();
    let mut dkim_skipped = false;
    if need_dkim && let Some(m) = &parsed {
        match text {
            Text::Whole(_) => {
                dkim = tokio::time::timeout_at(deadline, auth.verify_dkim(m))
                    .await
                    .map(|v| v.into_iter().map(|d| body_changed_is_fail(m, d)).collect())
                    .unwrap_or_else(|_| {
                        m.dkim_headers
                            .iter()
                            .map(|_| DkimOutput::temp_err(temp("DNS took too long")))
                            .collect()
                    });
            }
            Text::Head(_) => {
                dkim_skipped = true;
                dkim = m
                    .dkim_headers
                    .iter()
                    .map(|_| DkimOutput::temp_err(temp("message too large to verify")))
                    .collect();
            }
        }
    }

    // DMARC, aligned against the From: domain.
    let mut dmarc: Option<DmarcOutput> = None;
    if cfg.dmarc != VerifyMode::Off
        && let (Some(m), Some(mail_spf)) = (&parsed, &mail_spf)
        && !from_domain.is_empty()
    {
        let mail_from_domain = peer
            .mail_from
            .rsplit_once('@')
            .map_or(helo_domain, |(_, d)| d);
        let out = tokio::time::timeout_at(
            deadline,
            auth.verify_dmarc(mail_auth::dmarc::verify::DmarcParameters::new(
                m,
                &dkim,
                mail_from_domain,
                mail_spf,
            )),
        )
        .await
        .unwrap_or_else(|_| {
            DmarcOutput::new(from_domain.clone())
                .with_spf_result(DmarcResult::TempError(temp("DNS took too long")))
                .with_dkim_result(DmarcResult::TempError(temp("DNS took too long")))
        });
        // Without the DKIM check DMARC could only pass through SPF; anything else is unknown.
        let out = if dkim_skipped && *out.spf_result() != DmarcResult::Pass {
            DmarcOutput::new(out.domain().to_string())
                .with_spf_result(out.spf_result().clone())
                .with_dkim_result(DmarcResult::TempError(temp("message too large to verify")))
        } else {
            out
        };
        dmarc = Some(out);
    }

    let mut ar = AuthenticationResults::new(hostname);
    let mut summary = Vec::new();
    if cfg.spf != VerifyMode::Off
        && let (Some(h), Some(m)) = (&helo_spf, &mail_spf)
    {
        ar = ar
            .with_spf_mailfrom_result(m, peer.ip, peer.mail_from, helo_domain)
            .with_spf_ehlo_result(h, peer.ip, helo_domain);
        summary.push(format!("spf={}", spf_word(m.result())));
    }
    if cfg.dkim != VerifyMode::Off {
        ar = ar.with_dkim_results(&dkim, &from_domain);
        summary.push(match dkim.first() {
            None => "dkim=none".to_string(),
            Some(_) => format!(
                "dkim={}",
                dkim.iter()
                    .map(|d| dkim_word(d.result()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        });
    }
    if let Some(d) = &dmarc {
        ar = ar.with_dmarc_result(d);
        summary.push(format!("dmarc={}", dmarc_word(&d.result())));
    }
    let decision = decide(
        cfg,
        &from_domain,
        mail_spf
            .as_ref()
            .map(|s| (s.result(), s.domain(), s.explanation())),
        &dkim.iter().map(|d| d.result().clone()).collect::<Vec<_>>(),
        dmarc.as_ref().map(|d| (d.result(), d.policy())),
    );
    let field = (!summary.is_empty()).then(|| {
        let mut f =
            super::sign::lf_field(&mail_auth::common::headers::HeaderWriter::to_header(&ar));
        if cfg.dkim != VerifyMode::Off && dkim.is_empty() {
            // RFC 8601 §2.7.1: say that there was no signature, rather than nothing.
            f.pop();
            f.push_str(";\n\tdkim=none\n");
        }
        f
    });
    Verified {
        field,
        decision,
        summary: summary.join(" "),
    }
}

/// A body that no longer matches its signature's hash is a failed signature (RFC 6376
/// §6.3: "the signature does not verify"), as OpenDKIM and dkimpy report it; mail-auth calls
/// it neutral.
fn body_changed_is_fail<'x>(m: &'x AuthenticatedMessage<'x>, d: DkimOutput<'x>) -> DkimOutput<'x> {
    use mail_auth::dkim::DkimError;
    let body_changed = matches!(
        d.result(),
        DkimResult::Neutral(mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch))
    );
    // The output's signature is one of the message's: find it there, with its lifetime.
    let sig = d.signature().and_then(|s| {
        m.dkim_headers
            .iter()
            .map(|h| &h.header)
            .find(|h| std::ptr::eq(*h, s))
    });
    match sig {
        Some(sig) if body_changed => {
            DkimOutput::fail(mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch))
                .with_signature(sig)
        }
        _ => d,
    }
}

/// The `[verify]` policy. DMARC first: it is the domain owner's own word. A temporary
/// result never refuses.
pub fn decide(
    cfg: &Verify,
    from_domain: &str,
    spf: Option<(SpfResult, &str, Option<&str>)>,
    dkim: &[DkimResult],
    dmarc: Option<(DmarcResult, Policy)>,
) -> Decision {
    if let Some((DmarcResult::Fail(_), policy)) = &dmarc {
        match (cfg.dmarc, policy) {
            (VerifyMode::Enforce, Policy::Reject) => {
                return Decision::Refuse(Reply::new(
                    550,
                    format!(
                        "5.7.1 Rejected by DMARC policy for {from_domain}: \
                         neither SPF nor DKIM passes aligned with From:"
                    ),
                ));
            }
            (VerifyMode::Enforce | VerifyMode::Tag, Policy::Quarantine) => {
                return Decision::Quarantine(format!(
                    "DMARC policy of {from_domain} is quarantine"
                ));
            }
            _ => {}
        }
    }
    if cfg.spf == VerifyMode::Enforce
        && let Some((SpfResult::Fail, domain, explanation)) = spf
    {
        let why = explanation.map(|e| format!(": {e}")).unwrap_or_default();
        return Decision::Refuse(Reply::new(
            550,
            format!("5.7.23 SPF of {domain} does not allow this host{why}"),
        ));
    }
    if cfg.dkim == VerifyMode::Enforce
        && !dkim.contains(&DkimResult::Pass)
        && dkim
            .iter()
            .any(|r| matches!(r, DkimResult::Fail(_) | DkimResult::PermError(_)))
    {
        return Decision::Refuse(Reply::new(550, "5.7.20 No passing DKIM signature found"));
    }
    Decision::Accept
}

fn spf_word(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn dkim_word(r: &DkimResult) -> &'static str {
    match r {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

fn dmarc_word(r: &DmarcResult) -> &'static str {
    match r {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(spf: VerifyMode, dkim: VerifyMode, dmarc: VerifyMode) -> Verify {
        Verify {
            spf,
            dkim,
            dmarc,
            ..Verify::default()
        }
    }
    use VerifyMode::{Enforce, Off, Tag};

    fn fail() -> mail_auth::Error {
        mail_auth::Error::NotAligned
    }

    #[test]
    fn dmarc_reject_refuses_only_when_enforced_and_failed() {
        let c = cfg(Tag, Tag, Enforce);
        let d = decide(
            &c,
            "ex.example",
            None,
            &[],
            Some((DmarcResult::Fail(fail()), Policy::Reject)),
        );
        match d {
            Decision::Refuse(r) => {
                assert_eq!(r.code, 550);
                assert!(
                    r.lines.join(" ").contains("5.7.1") && r.lines.join(" ").contains("ex.example"),
                    "{r:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        for dm in [
            DmarcResult::Pass,
            DmarcResult::TempError(temp("x")),
            DmarcResult::PermError(fail()),
            DmarcResult::None,
        ] {
            assert_eq!(
                decide(&c, "e", None, &[], Some((dm, Policy::Reject))),
                Decision::Accept
            );
        }
        let tag = cfg(Tag, Tag, Tag);
        assert_eq!(
            decide(
                &tag,
                "e",
                None,
                &[],
                Some((DmarcResult::Fail(fail()), Policy::Reject))
            ),
            Decision::Accept
        );
        assert!(matches!(
            decide(
                &c,
                "e",
                None,
                &[],
                Some((DmarcResult::Fail(fail()), Policy::Quarantine))
            ),
            Decision::Quarantine(_)
        ));
        for p in [Policy::None, Policy::Unspecified] {
            assert_eq!(
                decide(&c, "e", None, &[], Some((DmarcResult::Fail(fail()), p))),
                Decision::Accept
            );
        }
    }

    #[test]
    fn spf_and_dkim_enforce_only_hard_failures() {
        let c = cfg(Enforce, Enforce, Off);
        let spf_fail = Some((SpfResult::Fail, "ex.example", Some("see ex.example/spf")));
        match decide(&c, "e", spf_fail, &[], None) {
            Decision::Refuse(r) => assert!(
                r.lines.join(" ").contains("5.7.23")
                    && r.lines.join(" ").contains("see ex.example/spf")
            ),
            other => panic!("{other:?}"),
        }
        for r in [
            SpfResult::SoftFail,
            SpfResult::TempError,
            SpfResult::Neutral,
            SpfResult::None,
            SpfResult::Pass,
            SpfResult::PermError,
        ] {
            assert_eq!(
                decide(&c, "e", Some((r, "d", None)), &[], None),
                Decision::Accept,
                "{r:?}"
            );
        }
        assert!(
            matches!(decide(&c, "e", None, &[DkimResult::Fail(fail())], None), Decision::Refuse(r) if r.lines.join(" ").contains("5.7.20"))
        );
        assert!(matches!(
            decide(&c, "e", None, &[DkimResult::PermError(fail())], None),
            Decision::Refuse(_)
        ));
        assert_eq!(
            decide(
                &c,
                "e",
                None,
                &[DkimResult::Fail(fail()), DkimResult::Pass],
                None
            ),
            Decision::Accept
        );
        assert_eq!(
            decide(&c, "e", None, &[DkimResult::TempError(fail())], None),
            Decision::Accept
        );
        assert_eq!(decide(&c, "e", None, &[], None), Decision::Accept);
        let tag = cfg(Tag, Tag, Off);
        assert_eq!(
            decide(&tag, "e", spf_fail, &[DkimResult::Fail(fail())], None),
            Decision::Accept
        );
    }

    #[test]
    fn the_budget_has_a_floor() {
        assert_eq!(budget(Duration::from_millis(10)), Duration::from_secs(2));
        assert_eq!(budget(Duration::from_secs(5)), Duration::from_secs(30));
    }
}
