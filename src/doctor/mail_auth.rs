//! What receivers check before they trust our mail, and what to publish where it is
//! missing: each DKIM key's TXT record matches the key, each of our domains has SPF covering
//! this host's address and a DMARC record. (Forward-confirmed reverse DNS of the hostname is
//! `network::hostname`.)

use std::collections::BTreeSet;
use std::net::IpAddr;

use mail_auth::SpfResult;
use mail_auth::spf::verify::SpfParameters;

use super::Check;
use crate::config::Config;
use crate::dns::{Dns, Resolve};
use crate::maps::class::ClassW;
use crate::stage::keys;
use crate::stage::sign::Signer;

/// Our domains: class w's (local-host-names) and those we sign for, without `localhost`,
/// address literals and single labels.
pub fn own_domains(cfg: &Config) -> Vec<String> {
    let mut out = BTreeSet::new();
    let lhn = cfg.map_path(&cfg.settings.maps.local_host_names);
    if let Ok(text) = std::fs::read_to_string(&lhn) {
        for w in ClassW::parse(&text).0.iter() {
            out.insert(w.to_ascii_lowercase());
        }
    }
    for k in &cfg.settings.dkim.sign {
        out.insert(k.domain.to_ascii_lowercase());
    }
    out.into_iter()
        .filter(|d| d.contains('.') && !d.starts_with('[') && d != "localhost")
        .collect()
}

/// Each configured DKIM key against its published record.
pub async fn dkim_records(cfg: &Config, dns: &Dns) -> Vec<Check> {
    let signer = match Signer::load(&cfg.settings.dkim, |p| cfg.path(p)) {
        Ok(s) => s,
        Err(e) => {
            return vec![Check::fail(
                "DKIM keys",
                e.to_string(),
                "make the key with `mailtool dkim keygen`, readable by the server's group",
            )];
        }
    };
    let mut out = Vec::new();
    let mut sels: Vec<_> = signer.selectors().collect();
    sels.sort_by(|a, b| (&a.domain, &a.selector).cmp(&(&b.domain, &b.selector)));
    for s in sels {
        let name = format!("{}._domainkey.{}", s.selector, s.domain);
        let check = format!("DKIM {name}");
        let publish = keys::zone_line(&s.domain, &s.selector, &s.record);
        let want_p = p_tag(&s.record);
        match dns.txt(&name).await {
            Resolve::Found(txts) => {
                let published: Vec<String> = txts.iter().filter_map(|t| p_tag(t)).collect();
                if want_p.is_some() && published.iter().any(|p| Some(p) == want_p.as_ref()) {
                    out.push(Check::pass(
                        check,
                        "the published key is the configured one",
                    ));
                } else {
                    out.push(Check::fail(
                        check,
                        "the published record is not the configured key: receivers will see dkim=fail",
                        format!("publish {publish}"),
                    ));
                }
            }
            Resolve::NotFound => out.push(Check::fail(
                check,
                "no record: receivers cannot check our signatures",
                format!("publish {publish}"),
            )),
            Resolve::TempFail(e) => out.push(Check::warn(
                check,
                format!("lookup failed ({e})"),
                "check [dns] servers",
            )),
        }
    }
    out
}

/// The `p=` value of a DKIM record, white space removed.
fn p_tag(record: &str) -> Option<String> {
    record.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        (k.trim() == "p").then(|| v.chars().filter(|c| !c.is_whitespace()).collect())
    })
}

/// SPF covering the hostname's addresses, and DMARC, for each of our domains.
pub async fn spf_and_dmarc(cfg: &Config, dns: &Dns) -> Vec<Check> {
    let host = cfg.hostname();
    let ips: Vec<IpAddr> = match dns.addresses(&host).await {
        Resolve::Found(v) => v,
        _ => Vec::new(),
    };
    let auth = mail_auth::MessageAuthenticator(dns.tokio_resolver());
    let mut out = Vec::new();
    for d in own_domains(cfg) {
        let name = format!("SPF {d}");
        let spf: Vec<String> = match dns.txt(&d).await {
            Resolve::Found(t) => t
                .into_iter()
                .filter(|t| t.to_ascii_lowercase().starts_with("v=spf1"))
                .collect(),
            Resolve::NotFound => Vec::new(),
            Resolve::TempFail(e) => {
                out.push(Check::warn(
                    name,
                    format!("lookup failed ({e})"),
                    "check [dns] servers",
                ));
                continue;
            }
        };
        let suggest = format!(
            "publish {d}. IN TXT \"v=spf1 {} -all\"",
            if ips.is_empty() {
                format!("a:{host}")
            } else {
                ips.iter()
                    .map(|ip| match ip {
                        IpAddr::V4(v) => format!("ip4:{v}"),
                        IpAddr::V6(v) => format!("ip6:{v}"),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        );
        if spf.is_empty() {
            out.push(Check::warn(
                name,
                "no SPF record: receivers may refuse or junk our mail",
                suggest,
            ));
        } else if ips.is_empty() {
            out.push(Check::warn(
                name,
                format!("{host} has no address to check against"),
                format!("add an A record for {host}"),
            ));
        } else {
            let mut not_covered = Vec::new();
            for ip in &ips {
                let r = auth
                    .verify_spf(SpfParameters::verify_mail_from(
                        *ip,
                        &host,
                        &host,
                        &format!("postmaster@{d}"),
                    ))
                    .await;
                if r.result() != SpfResult::Pass {
                    not_covered.push(format!("{ip}: {:?}", r.result()).to_ascii_lowercase());
                }
            }
            if not_covered.is_empty() {
                out.push(Check::pass(name, format!("covers {host}")));
            } else {
                out.push(Check::warn(
                    name,
                    format!("does not cover this host ({})", not_covered.join(", ")),
                    format!("add this host's addresses to {d}'s record ({suggest})"),
                ));
            }
        }
        let name = format!("DMARC {d}");
        match dns.txt(&format!("_dmarc.{d}")).await {
            Resolve::Found(t)
                if t.iter()
                    .any(|t| t.to_ascii_lowercase().starts_with("v=dmarc1")) =>
            {
                out.push(Check::pass(name, "published"));
            }
            Resolve::TempFail(e) => out.push(Check::warn(
                name,
                format!("lookup failed ({e})"),
                "check [dns] servers",
            )),
            _ => out.push(Check::warn(
                name,
                "no DMARC record: large receivers want one from bulk senders",
                format!(
                    "publish _dmarc.{d}. IN TXT \"v=DMARC1; p=none; rua=mailto:postmaster@{d}\""
                ),
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_p_tag_ignores_spacing() {
        assert_eq!(p_tag("v=DKIM1; k=rsa; p=AB CD").as_deref(), Some("ABCD"));
        assert_eq!(p_tag("v=DKIM1;p=X").as_deref(), Some("X"));
        assert_eq!(p_tag("v=DKIM1; k=rsa"), None);
    }
}
