//! The message stage: the ordered steps every message passes after its data has arrived and
//! before the spool makes it durable. SMTP's DATA, the `sendmail` command's submissions
//! (the client spool's import) and the notices the server writes itself all go through it.
//!
//! 1. Received: heads the data as it is written (the callers push [`Stage::hostname`]'s
//!    line first, since the data streams to disk), and the hop count is checked
//!    ([`hops`]).
//! 2. Authentication-Results fields claiming our authserv-id are removed ([`authres`]).
//! 3. Mail from clients that may not relay is checked: SPF, DKIM, DMARC ([`verify`]); the
//!    result is an Authentication-Results field, and `[verify]` may refuse the message.
//! 4. Mail we send for our own users (clients that may relay, the `sendmail` command,
//!    bounces) is DKIM-signed by the From: domain's key ([`sign`]).
//!
//! Fields a step adds go to the envelope's `H` records ([`crate::queue::Envelope::headers`]),
//! which delivery puts in front of the data: a large message on disk is never rewritten.
//! A step refuses by returning the reply; the caller then drops the data.

pub mod authres;
pub mod header;
pub mod hops;
pub mod keys;
pub mod sign;
pub mod verify;

use std::net::IpAddr;
use std::time::Duration;

use crate::config::{Config, Verify, VerifyMode};
use crate::queue::incoming::{HEAD_KEPT, Payload};
use crate::queue::{Envelope, QueueId};
use crate::smtp::proto::Reply;
use keys::KeyError;
use sign::{Signed, Signer};

/// The stage's settings and keys, built from the configuration at start and on SIGHUP.
#[derive(Debug)]
pub struct Stage {
    hostname: String,
    signer: Signer,
    verify: Verify,
    dns_timeout: Duration,
}

/// An SMTP client as the stage sees it.
#[derive(Debug, Clone)]
pub struct Client<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    /// The client may relay (AUTH, loopback, localip, POP-before-SMTP, relay-domains): its
    /// mail is ours to sign, not to judge.
    pub trusted: bool,
}

impl Stage {
    /// The stage `cfg` describes; every `[dkim] sign` key is read now, and a missing,
    /// unreadable or malformed one is an error naming its path.
    pub fn load(cfg: &Config) -> Result<Stage, KeyError> {
        let s = &cfg.settings;
        Ok(Stage {
            hostname: cfg.hostname(),
            signer: Signer::load(&s.dkim, |p| cfg.path(p))?,
            verify: s.verify.clone(),
            dns_timeout: s.dns.timeout.0,
        })
    }

    /// A stage with no keys and no checks (tools and tests that only store mail).
    pub fn plain(hostname: &str) -> Stage {
        Stage {
            hostname: hostname.to_string(),
            signer: Signer::default(),
            verify: Verify {
                spf: VerifyMode::Off,
                dkim: VerifyMode::Off,
                dmarc: VerifyMode::Off,
                ..Verify::default()
            },
            dns_timeout: Duration::from_secs(5),
        }
    }

    /// This stage signing with `signer`'s keys.
    pub fn with_signer(mut self, signer: Signer) -> Stage {
        self.signer = signer;
        self
    }

    /// Our host name: the Received: `by`, and the authserv-id.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The steps for mail of our own that no client sent over SMTP (the `sendmail` command,
    /// bounces): signing. Blocking: a large message is read from its file.
    pub fn local(&self, qid: &QueueId, payload: &Payload, head: &[u8], envelope: &mut Envelope) {
        if self.signer.is_empty() {
            return;
        }
        let signed = match payload {
            Payload::Bytes(b) => self.signer.sign(b),
            Payload::Spilled(s) => self.signer.sign_file(head, s.path()),
        };
        match signed {
            Signed::Fields { fields, by } => {
                tracing::info!("{qid}: DKIM-signed {}", by.join(", "));
                for (i, f) in fields.into_iter().enumerate() {
                    envelope.headers.insert(i, f);
                }
            }
            Signed::NoKey(Some(d)) => tracing::info!("{qid}: not DKIM-signed: no key for {d}"),
            Signed::NoKey(None) => tracing::info!("{qid}: not DKIM-signed: no From: domain"),
            Signed::Failed(e) => tracing::warn!("{qid}: not DKIM-signed: {e}"),
        }
    }

    /// The steps after SMTP's DATA that may wait on the network: forged results removed (from
    /// `head` too), and a stranger's mail checked. `Err` is the refusal to send instead of the
    /// 250. A trusted client's mail is then signed with [`Stage::local`].
    pub async fn smtp(
        &self,
        dns: &crate::dns::Dns,
        qid: &QueueId,
        mut payload: Payload,
        head: &mut Vec<u8>,
        client: &Client<'_>,
        envelope: &mut Envelope,
    ) -> Result<Payload, Reply> {
        strip_forged(&self.hostname, &mut payload, head, qid);
        if client.trusted {
            // Ours: signed by the caller with [`Stage::local`], in the blocking task that
            // stores the message (one thread hop for both).
            return Ok(payload);
        }
        let v = &self.verify;
        if v.spf == VerifyMode::Off && v.dkim == VerifyMode::Off && v.dmarc == VerifyMode::Off {
            return Ok(payload);
        }
        let (text, payload) = match self.text_of(payload, head).await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!("{qid}: cannot read the message to verify it: {e}");
                return Err(Reply::new(
                    451,
                    "4.3.0 Temporary system failure. Please try again later.",
                ));
            }
        };
        let peer = verify::Peer {
            ip: client.ip.to_canonical(),
            helo: client.helo,
            mail_from: &envelope.sender,
        };
        let auth = mail_auth::MessageAuthenticator(dns.tokio_resolver());
        let checked =
            verify::verify(&auth, v, &self.hostname, &peer, &text, self.dns_timeout).await;
        if let Some(f) = checked.field {
            envelope.headers.insert(0, f);
        }
        match checked.decision {
            verify::Decision::Accept => {
                tracing::info!("{qid}: {}, client={}", checked.summary, peer.ip);
                Ok(payload)
            }
            verify::Decision::Quarantine(why) => {
                tracing::warn!(
                    "{qid}: {why}: delivered as tagged, {}, client={}",
                    checked.summary,
                    peer.ip
                );
                Ok(payload)
            }
            verify::Decision::Refuse(reply) => {
                tracing::info!(
                    "{qid}: refused: {} {}, {}, client={}",
                    reply.code,
                    reply.lines.join(" "),
                    checked.summary,
                    peer.ip
                );
                Err(reply)
            }
        }
    }

    /// The message in CRLF for the checks: whole if it is at most `max_size`, else its head.
    async fn text_of(
        &self,
        payload: Payload,
        head: &[u8],
    ) -> std::io::Result<(verify::Text, Payload)> {
        let max = self.verify.max_size;
        match payload {
            Payload::Bytes(b) if b.len() as u64 <= max => {
                Ok((verify::Text::Whole(sign::to_crlf(&b)), Payload::Bytes(b)))
            }
            p @ Payload::Bytes(_) => Ok((verify::Text::Head(sign::to_crlf(head)), p)),
            Payload::Spilled(s) if s.len() <= max => {
                let path = s.path().to_path_buf();
                let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
                    .await
                    .map_err(std::io::Error::other)??;
                Ok((
                    verify::Text::Whole(sign::to_crlf(&bytes)),
                    Payload::Spilled(s),
                ))
            }
            p => Ok((verify::Text::Head(sign::to_crlf(head)), p)),
        }
    }
}

/// Step 2: cuts out (in memory) or renames in place (on disk) the Authentication-Results
/// fields that claim `our_id`; `head` is kept in step.
fn strip_forged(our_id: &str, payload: &mut Payload, head: &mut Vec<u8>, qid: &QueueId) {
    let spans = authres::claiming(head, our_id);
    if spans.is_empty() {
        return;
    }
    tracing::info!(
        "{qid}: removed {} Authentication-Results field(s) claiming to be from {our_id}",
        spans.len()
    );
    match payload {
        Payload::Bytes(b) => {
            authres::remove(b, &spans);
            *head = b[..b.len().min(HEAD_KEPT)].to_vec();
        }
        Payload::Spilled(s) => {
            for &(start, _) in &spans {
                let name = authres::OBSCURED.as_bytes();
                head[start..start + name.len()].copy_from_slice(name);
                if let Err(e) = s.overwrite(start as u64, name) {
                    tracing::error!("{qid}: cannot obscure a forged Authentication-Results: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::incoming::Incoming;

    #[test]
    fn forged_results_are_cut_from_memory_and_renamed_on_disk() {
        let msg = b"Received: by us\nAuthentication-Results: mx.test; dkim=pass\nFrom: a@b.example\n\nbody\n";
        let qid = QueueId::allocate();
        let mut p = Payload::Bytes(msg.to_vec());
        let mut head = msg.to_vec();
        strip_forged("mx.test", &mut p, &mut head, &qid);
        let Payload::Bytes(b) = &p else { panic!() };
        assert_eq!(b, b"Received: by us\nFrom: a@b.example\n\nbody\n");
        assert_eq!(&head, b);

        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(format!("df{qid}"));
        let mut inc = Incoming::with_spill(qid.clone(), path.clone(), 8);
        inc.push(msg);
        inc.flush().unwrap();
        let mut head = inc.head().to_vec();
        let mut p = inc.finish().unwrap();
        assert!(matches!(p, Payload::Spilled(_)));
        strip_forged("MX.test", &mut p, &mut head, &qid);
        let on_disk = std::fs::read(&path).unwrap();
        let want = b"Received: by us\nX-Removed-Auth-Results: mx.test; dkim=pass\nFrom: a@b.example\n\nbody\n";
        assert_eq!(on_disk, want);
        assert_eq!(head, want);
        assert!(authres::claiming(&on_disk, "mx.test").is_empty());
    }
}
