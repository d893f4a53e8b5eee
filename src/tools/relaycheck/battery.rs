//! The relay probes, pure: nmap's 16 forms (docs/security.md §1) and the extra forms other
//! batteries use (§2), built from the placeholders, and nmap's way of finding `{srv}`.

use std::net::IpAddr;

use serde::Serialize;

use crate::smtp::proto::Reply;

/// nmap's default `{domain}` (`smtp.get_domain()` without a host). It resolves and is clearly
/// not the target's, so sender-domain checks do not hide a relay, and the results compare
/// one to one with nmap's.
pub const DEFAULT_DOMAIN: &str = "nmap.scanme.org";
/// nmap's `smtp-open-relay.from` and `.to` defaults (local parts).
pub const DEFAULT_FROM: &str = "antispam";
pub const DEFAULT_TO: &str = "relaytest";

/// The values the probes are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholders {
    /// An outside domain the target must not serve.
    pub domain: String,
    /// Local parts of the sender and the recipient.
    pub from: String,
    pub to: String,
    /// The address put in IP literals: the target's, unless `--ip` names another.
    pub ip: IpAddr,
    /// The server's own name (see [`srv_name`]).
    pub srv: String,
}

impl Placeholders {
    /// `{ip}` inside brackets; IPv6 gets RFC 5321's `IPv6:` tag (nmap would write `[::1]`,
    /// which no server parses as a literal).
    pub fn ip_literal(&self) -> String {
        match self.ip {
            IpAddr::V4(a) => format!("[{a}]"),
            IpAddr::V6(a) => format!("[IPv6:{a}]"),
        }
    }
}

/// Which battery a probe belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// nmap's smtp-open-relay, tests 1–16.
    Nmap,
    /// The forms of docs/security.md §2 that nmap lacks.
    Extra,
}

/// One MAIL FROM / RCPT TO pair, as sent (`mail_from` and `rcpt_to` are the whole argument,
/// brackets included when the form has them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub number: usize,
    pub name: &'static str,
    pub family: Family,
    pub mail_from: String,
    pub rcpt_to: String,
    /// Whether the recipient is the target itself (its own address literal): accepting it
    /// is local delivery, not relaying, so it does not count as a relay.
    pub to_target: bool,
}

impl Probe {
    pub fn mail_command(&self) -> String {
        format!("MAIL FROM:{}", self.mail_from)
    }

    pub fn rcpt_command(&self) -> String {
        format!("RCPT TO:{}", self.rcpt_to)
    }
}

fn bracket(s: String) -> String {
    format!("<{s}>")
}

/// nmap's 16 tests in its order (docs/security.md §1).
pub fn nmap_probes(p: &Placeholders) -> Vec<Probe> {
    let (d, f, t, s) = (&p.domain, &p.from, &p.to, &p.srv);
    let ip = p.ip_literal();
    let forms: [(&'static str, String, String); 16] = [
        ("null sender", String::new(), format!("{t}@{d}")),
        ("outside sender", format!("{f}@{d}"), format!("{t}@{d}")),
        (
            "sender at the server",
            format!("{f}@{s}"),
            format!("{t}@{d}"),
        ),
        (
            "sender at its IP literal",
            format!("{f}@{ip}"),
            format!("{t}@{d}"),
        ),
        (
            "percent hack, IP literal",
            format!("{f}@{ip}"),
            format!("{t}%{d}@{ip}"),
        ),
        ("percent hack", format!("{f}@{ip}"), format!("{t}%{d}@{s}")),
        (
            "quoted address",
            format!("{f}@{ip}"),
            format!("\"{t}@{d}\""),
        ),
        (
            "quoted percent hack",
            format!("{f}@{ip}"),
            format!("\"{t}%{d}\""),
        ),
        (
            "double @, IP literal",
            format!("{f}@{ip}"),
            format!("{t}@{d}@{ip}"),
        ),
        (
            "quoted local part",
            format!("{f}@{ip}"),
            format!("\"{t}@{d}\"@{ip}"),
        ),
        ("double @", format!("{f}@{ip}"), format!("{t}@{d}@{s}")),
        (
            "source route, IP literal",
            format!("{f}@{ip}"),
            format!("@{ip}:{t}@{d}"),
        ),
        ("source route", format!("{f}@{ip}"), format!("@{s}:{t}@{d}")),
        ("bang path", format!("{f}@{ip}"), format!("{d}!{t}")),
        (
            "bang path, IP literal",
            format!("{f}@{ip}"),
            format!("{d}!{t}@{ip}"),
        ),
        (
            "bang path at the server",
            format!("{f}@{ip}"),
            format!("{d}!{t}@{s}"),
        ),
    ];
    forms
        .into_iter()
        .enumerate()
        .map(|(i, (name, from, to))| Probe {
            number: i + 1,
            name,
            family: Family::Nmap,
            mail_from: bracket(from),
            rcpt_to: bracket(to),
            to_target: false,
        })
        .collect()
}

/// The forms of docs/security.md §2 that nmap lacks, numbered after nmap's.
/// `ip_is_target`: `{ip}` is the address we connected to (not another one from `--ip`).
pub fn extra_probes(p: &Placeholders, ip_is_target: bool) -> Vec<Probe> {
    let (d, f, t) = (&p.domain, &p.from, &p.to);
    let ip = p.ip_literal();
    let forms: [(&'static str, String, String, bool); 6] = [
        (
            "unqualified sender",
            bracket(f.clone()),
            bracket(format!("{t}@{d}")),
            false,
        ),
        (
            "sender at localhost",
            bracket(format!("{f}@localhost")),
            bracket(format!("{t}@{d}")),
            false,
        ),
        (
            "sender at [127.0.0.1]",
            bracket(format!("{f}@[127.0.0.1]")),
            bracket(format!("{t}@{d}")),
            false,
        ),
        // Metasploit's variant of test 4.
        (
            "recipient at the IP literal",
            bracket(format!("{f}@{ip}")),
            bracket(format!("{t}@{ip}")),
            ip_is_target,
        ),
        (
            "no angle brackets",
            format!("{f}@{d}"),
            format!("{t}@{d}"),
            false,
        ),
        (
            "bang-path sender",
            bracket(format!("{d}!{f}")),
            bracket(format!("{t}@{d}")),
            false,
        ),
    ];
    forms
        .into_iter()
        .enumerate()
        .map(|(i, (name, mail_from, rcpt_to, to_target))| Probe {
            number: 17 + i,
            name,
            family: Family::Extra,
            mail_from,
            rcpt_to,
            to_target,
        })
        .collect()
}

/// The whole battery: nmap's 16, then the extra forms.
pub fn battery(p: &Placeholders, ip_is_target: bool) -> Vec<Probe> {
    let mut v = nmap_probes(p);
    v.extend(extra_probes(p, ip_is_target));
    v
}

/// A reply as nmap's Lua code sees it: the raw lines, CRLF-separated.
fn raw(reply: &Reply) -> String {
    let n = reply.lines.len();
    let mut s = String::new();
    for (i, l) in reply.lines.iter().enumerate() {
        let sep = if i + 1 == n { ' ' } else { '-' };
        s.push_str(&format!("{:03}{sep}{l}\r\n", reply.code));
    }
    s
}

/// Lua's `string.match(s, "%d+" .. SEP .. "([%w]+[%w%.-]*)")`: the first run of digits
/// followed by a character that `sep` accepts and an alphanumeric; returns the name run.
fn lua_match(s: &str, sep: impl Fn(u8) -> bool) -> Option<String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j + 1 < b.len() && sep(b[j]) && b[j + 1].is_ascii_alphanumeric() {
            let start = j + 1;
            let mut end = start;
            while end < b.len() && (b[end].is_ascii_alphanumeric() || matches!(b[end], b'.' | b'-'))
            {
                end += 1;
            }
            return Some(s[start..end].to_string());
        }
        // Every start inside this run of digits ends at the same j: skip the run.
        i = j;
    }
    None
}

/// `{srv}` exactly as nmap finds it: from the banner (`%d+%s([%w]+[%w%.-]*)`), else from the
/// EHLO reply's `250-` line (`%d+%-([%w]+[%w%.-]*)`).
pub fn srv_name(banner: &Reply, ehlo: Option<&Reply>) -> Option<String> {
    // Lua's %s: space, \t, \n, \v, \f, \r.
    let space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    lua_match(&raw(banner), space).or_else(|| lua_match(&raw(ehlo?), |c| c == b'-'))
}

/// Whether `domain` looks like one the target serves: it is the server's name (from the
/// banner or EHLO) or a parent domain of it (`example.com` for `mx.example.com`). Probing
/// with such a domain tests local delivery, not relaying.
pub fn domain_is_servers(domain: &str, server_names: &[&str]) -> bool {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() {
        return false;
    }
    server_names.iter().any(|n| {
        let n = n.trim_end_matches('.').to_ascii_lowercase();
        // A bare label (no dot) as the server's name says nothing about domains.
        n.contains('.') && (n == d || (d.contains('.') && n.ends_with(&format!(".{d}"))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ph() -> Placeholders {
        Placeholders {
            domain: "nmap.scanme.org".into(),
            from: "antispam".into(),
            to: "relaytest".into(),
            ip: "127.0.0.1".parse().unwrap(),
            srv: "mail.example1.com".into(),
        }
    }

    #[test]
    fn the_sixteen_forms_match_security_tests_section_1() {
        // docs/security.md §1, the table of the sixteen tests, with {domain} =
        // nmap.scanme.org, {from} = antispam, {to} = relaytest, {ip} = 127.0.0.1,
        // {srv} = mail.example1.com; every address inside <...>.
        let want = [
            ("<>", "<relaytest@nmap.scanme.org>"),
            ("<antispam@nmap.scanme.org>", "<relaytest@nmap.scanme.org>"),
            (
                "<antispam@mail.example1.com>",
                "<relaytest@nmap.scanme.org>",
            ),
            ("<antispam@[127.0.0.1]>", "<relaytest@nmap.scanme.org>"),
            (
                "<antispam@[127.0.0.1]>",
                "<relaytest%nmap.scanme.org@[127.0.0.1]>",
            ),
            (
                "<antispam@[127.0.0.1]>",
                "<relaytest%nmap.scanme.org@mail.example1.com>",
            ),
            ("<antispam@[127.0.0.1]>", "<\"relaytest@nmap.scanme.org\">"),
            ("<antispam@[127.0.0.1]>", "<\"relaytest%nmap.scanme.org\">"),
            (
                "<antispam@[127.0.0.1]>",
                "<relaytest@nmap.scanme.org@[127.0.0.1]>",
            ),
            (
                "<antispam@[127.0.0.1]>",
                "<\"relaytest@nmap.scanme.org\"@[127.0.0.1]>",
            ),
            (
                "<antispam@[127.0.0.1]>",
                "<relaytest@nmap.scanme.org@mail.example1.com>",
            ),
            (
                "<antispam@[127.0.0.1]>",
                "<@[127.0.0.1]:relaytest@nmap.scanme.org>",
            ),
            (
                "<antispam@[127.0.0.1]>",
                "<@mail.example1.com:relaytest@nmap.scanme.org>",
            ),
            ("<antispam@[127.0.0.1]>", "<nmap.scanme.org!relaytest>"),
            (
                "<antispam@[127.0.0.1]>",
                "<nmap.scanme.org!relaytest@[127.0.0.1]>",
            ),
            (
                "<antispam@[127.0.0.1]>",
                "<nmap.scanme.org!relaytest@mail.example1.com>",
            ),
        ];
        let got = nmap_probes(&ph());
        assert_eq!(got.len(), 16);
        for (i, (p, (from, to))) in got.iter().zip(want).enumerate() {
            assert_eq!(p.number, i + 1);
            assert_eq!(p.family, Family::Nmap);
            assert_eq!(
                (p.mail_from.as_str(), p.rcpt_to.as_str()),
                (from, to),
                "test {}",
                i + 1
            );
            assert!(!p.to_target);
        }
        assert_eq!(
            got[13].rcpt_command(),
            "RCPT TO:<nmap.scanme.org!relaytest>"
        );
        assert_eq!(got[0].mail_command(), "MAIL FROM:<>");
    }

    #[test]
    fn the_extra_forms_of_section_2() {
        let got = extra_probes(&ph(), true);
        let pairs: Vec<(&str, &str, bool)> = got
            .iter()
            .map(|p| (p.mail_from.as_str(), p.rcpt_to.as_str(), p.to_target))
            .collect();
        assert_eq!(
            pairs,
            [
                ("<antispam>", "<relaytest@nmap.scanme.org>", false),
                ("<antispam@localhost>", "<relaytest@nmap.scanme.org>", false),
                (
                    "<antispam@[127.0.0.1]>",
                    "<relaytest@nmap.scanme.org>",
                    false
                ),
                ("<antispam@[127.0.0.1]>", "<relaytest@[127.0.0.1]>", true),
                (
                    "antispam@nmap.scanme.org",
                    "relaytest@nmap.scanme.org",
                    false
                ),
                (
                    "<nmap.scanme.org!antispam>",
                    "<relaytest@nmap.scanme.org>",
                    false
                ),
            ]
        );
        assert_eq!(got[0].number, 17);
        assert_eq!(got[5].number, 22);
        // With --ip naming another host, the literal recipient is somewhere else: a relay.
        assert!(!extra_probes(&ph(), false)[3].to_target);
        assert_eq!(battery(&ph(), true).len(), 22);
    }

    #[test]
    fn ipv6_literals_are_tagged() {
        let mut p = ph();
        p.ip = "::1".parse().unwrap();
        assert_eq!(nmap_probes(&p)[3].mail_from, "<antispam@[IPv6:::1]>");
    }

    #[test]
    fn srv_as_nmap_finds_it() {
        let b = Reply::new(220, "mail.example1.com ESMTP Sendmail 8.12.9/8.12.9; Tue");
        assert_eq!(srv_name(&b, None).as_deref(), Some("mail.example1.com"));
        // Lua's pattern is unanchored: in a multi-line banner "220-" does not match, the
        // next line's "220 " does.
        let b = Reply::multi(
            220,
            vec!["mx.test ESMTP".into(), "Postfix 3.7 ready".into()],
        );
        assert_eq!(srv_name(&b, None).as_deref(), Some("Postfix"));
        // A version number followed by a word matches too.
        let b = Reply::new(220, "-ESMTP v3.7 ready");
        assert_eq!(srv_name(&b, None).as_deref(), Some("ready"));
        // No name in the banner: the first 250- line of EHLO.
        let b = Reply::new(220, "");
        let e = Reply::multi(
            250,
            vec!["mx-2.example.org Hello".into(), "PIPELINING".into()],
        );
        assert_eq!(srv_name(&b, Some(&e)).as_deref(), Some("mx-2.example.org"));
        // A one-line EHLO reply has no 250- line.
        assert_eq!(srv_name(&b, Some(&Reply::new(250, "mx.test"))), None);
        assert_eq!(srv_name(&Reply::new(220, "-"), None), None);
        // The name must start with an alphanumeric; dots and hyphens may follow.
        let b = Reply::new(220, ".bad 1 x-y.z_w");
        assert_eq!(srv_name(&b, None).as_deref(), Some("x-y.z"));
    }

    #[test]
    fn domains_the_server_serves() {
        let names = ["mail.example1.com", "mx"];
        assert!(domain_is_servers("example1.com", &names));
        assert!(domain_is_servers("Mail.Example1.com.", &names));
        assert!(!domain_is_servers("nmap.scanme.org", &names));
        assert!(!domain_is_servers("com", &names));
        assert!(!domain_is_servers("mx", &names));
        assert!(!domain_is_servers("ample1.com", &names));
    }
}
