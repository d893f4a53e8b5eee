//! What relaycheck prints, pure: a table per server with nmap's summary line, and the exit
//! status over all servers.

use comfy_table::{ContentArrangement, Table, presets};

use super::battery::Family;
use super::runner::{HostReport, ProbeResult, Status};

/// Exit statuses (the contract; 64 is clap's usage error).
pub const EXIT_NO_RELAY: i32 = 0;
pub const EXIT_OPEN_RELAY: i32 = 1;
pub const EXIT_UNTESTED: i32 = 2;

/// 1 when any server relayed, else 2 when any could not be tested (fully), else 0.
pub fn exit_code(reports: &[HostReport]) -> i32 {
    if reports.iter().any(HostReport::open_relay) {
        EXIT_OPEN_RELAY
    } else if reports
        .iter()
        .any(|r| matches!(r.status, Status::Failed | Status::Incomplete))
    {
        EXIT_UNTESTED
    } else {
        EXIT_NO_RELAY
    }
}

/// A reply cut to fit a table cell.
fn short(text: &str) -> String {
    const MAX: usize = 48;
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

/// A reply's text without sendmail's `<address>... ` echo, which the table already shows.
fn without_echo(text: &str) -> String {
    let (code, rest) = match text.split_once(' ') {
        Some((c, r))
            if c.split('.').count() == 3 && c.chars().all(|x| x.is_ascii_digit() || x == '.') =>
        {
            (Some(c), r)
        }
        _ => (None, text),
    };
    let rest = rest.split_once("... ").map_or(rest, |(_, r)| r);
    match code {
        Some(c) => format!("{c} {rest}"),
        None => rest.to_string(),
    }
}

fn replies_cell(p: &ProbeResult) -> String {
    let mut lines = Vec::new();
    for r in &p.replies {
        // RSET's 250 says nothing; show it only when it decided the probe.
        if r.command == "RSET" && matches!(r.code, 200 | 250) {
            continue;
        }
        let text = without_echo(r.text.last().map_or("", |s| s.as_str()));
        lines.push(short(&format!("{} {} {text}", r.command, r.code)));
    }
    if let Some(n) = &p.note {
        lines.push(short(n));
    }
    lines.join("\n")
}

/// The lines under the table: nmap's conclusion, then the extra forms.
pub fn summary(r: &HostReport) -> Vec<String> {
    let mut out = Vec::new();
    match r.status {
        Status::Failed => {
            out.push(format!(
                "could not test: {}",
                r.error.as_deref().unwrap_or("unknown error")
            ));
            return out;
        }
        Status::AuthRequired => {
            let last = r.probes.last().map_or(0, |p| p.probe.number);
            out.push(format!(
                "Server isn't an open relay, authentication needed (stopped at test {last})"
            ));
        }
        Status::Tested | Status::Incomplete => {
            let n = r.relayed(Family::Nmap);
            let nmap_run = r
                .probes
                .iter()
                .filter(|p| p.probe.family == Family::Nmap)
                .count();
            if n > 0 {
                out.push(format!("Server is an open relay ({n}/16 tests)"));
            } else if nmap_run > 0 {
                out.push("Server doesn't seem to be an open relay, all tests failed".into());
            }
            let extra: Vec<&ProbeResult> = r
                .probes
                .iter()
                .filter(|p| p.probe.family == Family::Extra)
                .collect();
            if !extra.is_empty() {
                let m = r.relayed(Family::Extra);
                out.push(format!(
                    "Extra forms: {m}/{} relayed{}",
                    extra.len(),
                    if r.open_relay() && n == 0 {
                        " (open relay)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    let undecided = r
        .probes
        .iter()
        .filter(|p| p.verdict == super::verdict::Verdict::Untested)
        .count();
    if undecided > 0 {
        out.push(format!(
            "{undecided} tests not decided (RSET refused or connection lost)"
        ));
    }
    if r.reconnects > 0 {
        out.push(format!(
            "the server closed the connection; reconnected {} time(s)",
            r.reconnects
        ));
    }
    if r.status == Status::Incomplete {
        out.push(format!(
            "incomplete: {}",
            r.error.as_deref().unwrap_or("connection lost")
        ));
    }
    out
}

/// One server's block: a heading, the table, the summary.
pub fn render_host(r: &HostReport) -> String {
    let mut s = String::new();
    let addr = r.address.map(|a| format!(" ({a})")).unwrap_or_default();
    s.push_str(&format!("{}{addr}\n", r.host));
    if let Some(b) = &r.banner {
        let first = b.lines().next().unwrap_or("");
        let mut how = r.hello.unwrap_or("EHLO").to_string();
        if let Some(t) = &r.tls {
            how.push_str(&format!(", TLS {t}"));
        }
        s.push_str(&format!("  banner: {first} [{how}]\n"));
    }
    if !r.probes.is_empty() {
        let mut t = Table::new();
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(["#", "test", "MAIL FROM", "RCPT TO", "replies", "verdict"]);
        for p in &r.probes {
            t.add_row([
                p.probe.number.to_string(),
                p.probe.name.to_string(),
                p.probe.mail_from.clone(),
                p.probe.rcpt_to.clone(),
                replies_cell(p),
                p.verdict.label().to_string(),
            ]);
        }
        s.push_str(&t.to_string());
        s.push('\n');
    }
    for line in summary(r) {
        s.push_str(&line);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::battery::Placeholders;
    use super::super::runner::ReplyRecord;
    use super::super::verdict::Verdict;
    use super::*;

    fn report(verdicts: &[Verdict]) -> HostReport {
        let ph = Placeholders {
            domain: "nmap.scanme.org".into(),
            from: "antispam".into(),
            to: "relaytest".into(),
            ip: "127.0.0.1".parse().unwrap(),
            srv: "mx.test".into(),
        };
        let probes = super::super::battery::battery(&ph, true)
            .into_iter()
            .zip(verdicts)
            .map(|(probe, &verdict)| ProbeResult {
                probe,
                verdict,
                replies: vec![ReplyRecord {
                    command: "RCPT",
                    code: if verdict == Verdict::Relayed {
                        250
                    } else {
                        550
                    },
                    text: vec!["5.7.1 Relaying denied".into()],
                }],
                note: None,
            })
            .collect();
        HostReport {
            host: "mx.test:25".into(),
            address: Some("127.0.0.1:25".parse().unwrap()),
            status: Status::Tested,
            error: None,
            banner: Some("220 mx.test ESMTP".into()),
            srv: Some("mx.test".into()),
            hello: Some("EHLO"),
            tls: None,
            warnings: vec![],
            reconnects: 0,
            probes,
        }
    }

    #[test]
    fn nmap_summary_lines() {
        let mut v = vec![Verdict::Refused; 22];
        let closed = report(&v);
        assert_eq!(
            summary(&closed),
            [
                "Server doesn't seem to be an open relay, all tests failed",
                "Extra forms: 0/6 relayed"
            ]
        );
        assert_eq!(exit_code(std::slice::from_ref(&closed)), EXIT_NO_RELAY);
        v[6] = Verdict::Relayed;
        v[13] = Verdict::Relayed;
        v[19] = Verdict::AcceptedLocal;
        let open = report(&v);
        assert_eq!(
            summary(&open),
            [
                "Server is an open relay (2/16 tests)",
                "Extra forms: 0/6 relayed"
            ]
        );
        assert_eq!(exit_code(&[closed.clone(), open.clone()]), EXIT_OPEN_RELAY);
        let text = render_host(&open);
        assert!(text.contains("RCPT 250 5.7.1 Relaying denied"), "{text}");
        assert!(text.contains("RELAYED") && text.contains("accepted (own address)"));
        // Only an extra form relays: still an open relay.
        let mut v = vec![Verdict::Refused; 22];
        v[16] = Verdict::Relayed;
        let r = report(&v);
        assert_eq!(summary(&r)[1], "Extra forms: 1/6 relayed (open relay)");
        assert_eq!(exit_code(&[r]), EXIT_OPEN_RELAY);
    }

    #[test]
    fn failures_and_authentication() {
        let mut failed = report(&[]);
        failed.status = Status::Failed;
        failed.error = Some("connect to 127.0.0.1:9: refused".into());
        assert_eq!(
            summary(&failed),
            ["could not test: connect to 127.0.0.1:9: refused"]
        );
        assert_eq!(exit_code(std::slice::from_ref(&failed)), EXIT_UNTESTED);
        let mut auth = report(&[Verdict::Refused, Verdict::AuthRequired]);
        auth.status = Status::AuthRequired;
        assert_eq!(
            summary(&auth),
            ["Server isn't an open relay, authentication needed (stopped at test 2)"]
        );
        assert_eq!(exit_code(&[auth]), EXIT_NO_RELAY);
        assert_eq!(short(&"x".repeat(60)).chars().count(), 48);
        assert_eq!(
            without_echo("5.7.1 <a@b.test>... Relaying denied"),
            "5.7.1 Relaying denied"
        );
        assert_eq!(without_echo("ok... fine"), "fine");
        assert_eq!(without_echo("Sender ok"), "Sender ok");
    }
}
