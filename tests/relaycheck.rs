//! `mailtool relaycheck`, black-box: the real binary against `mailtool serve` configured open
//! and closed, against a private Postfix, and side by side with nmap's smtp-open-relay
//! (docs/security.md §1–§2). Everything runs on 127.0.0.0/8 with bounded timeouts.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use common::dns::TestDns;
use common::postfix::{Postfix, PostfixOptions};
use common::server::{Server, build_map, seed_root};
use common::*;
use serde_json::Value;

/// The pairs nmap's battery relays on our server when the client is trusted: every form
/// whose final recipient is outside. Forms that name no outside domain after the routing
/// is undone (6, 7, 8, 11, 14, 16: `"x@y"`, `x%y@srv`, `y!x`, …) resolve to unknown local
/// users and get 550 5.1.1, because the server routes them locally instead of relaying.
const OPEN_RELAYED: [usize; 15] = [1, 2, 3, 4, 5, 9, 10, 12, 13, 15, 17, 18, 19, 21, 22];

fn root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// The seed's maps, plus `Connect:127.0.0.60 RELAY` so that one loopback address is a
/// trusted client whatever `relay_from_loopback` says.
fn setup() -> tempfile::TempDir {
    let r = root();
    seed_root(r.path());
    let mut access = fs::read(fixtures().join("seed-etc-mail/access")).unwrap();
    access.extend_from_slice(b"Connect:127.0.0.60\tRELAY\n");
    build_map(r.path(), "access", "", &access);
    r
}

/// The error tarpit stays on (relaycheck must cope with it), with a short `error_sleep` so 22
/// refused probes per run do not take half a minute.
fn config(dns: &TestDns, extra_smtp: &str, extra: &str) -> String {
    format!(
        "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
         [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nshutdown_grace = \"2s\"\n\
         error_sleep = \"100ms\"\n{extra_smtp}\n\
         [dns]\n{}\ntimeout = \"300ms\"\n{extra}",
        dns.config_servers()
    )
}

/// A server that trusts 127.0.0.1 (the default, as sendmail's Relay_ok) and 127.0.0.60.
fn open_server(dns: &TestDns) -> (tempfile::TempDir, Server) {
    let r = setup();
    let s = Server::start(r.path(), &config(dns, "", ""));
    (r, s)
}

/// A server that trusts only 127.0.0.60.
fn closed_server(dns: &TestDns, extra_smtp: &str) -> (tempfile::TempDir, Server) {
    let r = setup();
    let smtp = format!("relay_from_loopback = false\n{extra_smtp}");
    let s = Server::start(r.path(), &config(dns, &smtp, ""));
    (r, s)
}

fn relaycheck(args: &[&str]) -> Output {
    let t = std::time::Instant::now();
    let out = mailtool()
        .arg("relaycheck")
        .args(["--timeout", "10s"])
        .args(args)
        .output()
        .expect("run relaycheck");
    eprintln!(
        "relaycheck {args:?}: {:?} in {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        t.elapsed(),
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn json(out: &Output) -> Vec<Value> {
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("JSON output")
        .as_array()
        .expect("an array of hosts")
        .clone()
}

/// (number, verdict) for every probe of one host.
fn verdicts(host: &Value) -> Vec<(usize, String)> {
    host["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["number"].as_u64().unwrap() as usize,
                p["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn relayed_numbers(host: &Value) -> Vec<usize> {
    verdicts(host)
        .into_iter()
        .filter(|(_, v)| v == "relayed")
        .map(|(n, _)| n)
        .collect()
}

/// The relayed (MAIL FROM, RCPT TO) pairs among nmap's 16 tests, as sent.
fn relayed_nmap_pairs(host: &Value) -> BTreeSet<(String, String)> {
    host["probes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["family"] == "nmap" && p["verdict"] == "relayed")
        .map(|p| {
            (
                p["mail_from"].as_str().unwrap().to_string(),
                p["rcpt_to"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit status")
}

fn hostport(a: SocketAddr) -> String {
    a.to_string()
}

#[test]
fn a_closed_server_refuses_every_probe() {
    let dns = TestDns::start(&[]);
    let (_r, srv) = closed_server(&dns, "");
    let host = hostport(srv.smtp());
    let out = relaycheck(&["--json", &host]);
    assert_eq!(code(&out), 0);
    let hosts = json(&out);
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["status"], "tested");
    assert_eq!(hosts[0]["host"], host.as_str());
    assert_eq!(hosts[0]["srv"], "mail.example1.com");
    let v = verdicts(&hosts[0]);
    assert_eq!(v.len(), 22);
    assert!(v.iter().all(|(_, v)| v == "refused"), "{v:?}");
    // Every refusal is the relay denial, after MAIL was accepted.
    for p in hosts[0]["probes"].as_array().unwrap() {
        let r = p["replies"].as_array().unwrap();
        assert_eq!(r[0]["command"], "RSET");
        assert_eq!(r[1]["code"], 250, "{p}");
        assert_eq!(r[2]["code"], 550, "{p}");
    }
    // The table, for people: nmap's conclusion line.
    let out = relaycheck(&[&host]);
    assert_eq!(code(&out), 0);
    let s = text(&out.stdout);
    assert!(
        s.contains("Server doesn't seem to be an open relay, all tests failed"),
        "{s}"
    );
    assert!(s.contains("Extra forms: 0/6 relayed"));
    assert!(s.contains("│ 14 ┆ bang path "), "{s}");
    srv.stop();
}

#[test]
fn an_open_server_relays_every_form_it_does_not_route_locally() {
    let dns = TestDns::start(&[]);
    let (_r, srv) = open_server(&dns);
    let host = hostport(srv.smtp());
    let out = relaycheck(&["--json", &host]);
    assert_eq!(code(&out), 1);
    let hosts = json(&out);
    assert_eq!(relayed_numbers(&hosts[0]), OPEN_RELAYED);
    let v = verdicts(&hosts[0]);
    // The recipient at the server's own address literal is local delivery.
    assert_eq!(v[19], (20, "accepted_local".to_string()));
    for (n, verdict) in &v {
        if !OPEN_RELAYED.contains(n) && *n != 20 {
            assert_eq!(verdict, "refused", "test {n}");
        }
    }
    let human = relaycheck(&[&host]);
    let s = text(&human.stdout);
    assert!(s.contains("Server is an open relay (10/16 tests)"), "{s}");
    assert!(s.contains("Extra forms: 5/6 relayed"), "{s}");
    // Issue 12 (7): tested from 127.0.0.1, which the server trusts: say so, and how to test
    // as a stranger.
    let all = format!("{s}{}", text(&human.stderr));
    assert!(
        all.contains("the tests came from 127.0.0.1, an address the server itself may trust")
            && all.contains("--source 127.0.0.50"),
        "{all}"
    );
    let warnings = hosts[0]["warnings"].to_string();
    assert!(warnings.contains("--source 127.0.0.50"), "{warnings}");
    // From an untrusted address the same server is closed, and there is no hint.
    let out = relaycheck(&["--source", "127.0.0.50", &host]);
    assert_eq!(code(&out), 0);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains("--source"), "{all}");
    srv.stop();
}

#[test]
fn source_address_decides_who_is_trusted() {
    // The server trusts 127.0.0.60 (access map) and not 127.0.0.50.
    let dns = TestDns::start(&[]);
    let (_r, srv) = closed_server(&dns, "");
    let host = hostport(srv.smtp());
    let out = relaycheck(&["--json", "--source", "127.0.0.60", &host]);
    assert_eq!(code(&out), 1);
    assert_eq!(relayed_numbers(&json(&out)[0]), OPEN_RELAYED);
    let out = relaycheck(&["--json", "--source", "127.0.0.50", &host]);
    assert_eq!(code(&out), 0);
    assert!(relayed_numbers(&json(&out)[0]).is_empty());
    assert!(srv.log().contains("127.0.0.50"), "{}", srv.log());
    srv.stop();
}

#[test]
fn classic_mode_prints_relaycheckers_lines() {
    let dns = TestDns::start(&[]);
    let (_r, open) = open_server(&dns);
    let (_r2, closed) = closed_server(&dns, "");
    let h = hostport(open.smtp());
    let out = relaycheck(&["--classic", &h]);
    assert_eq!(code(&out), 1);
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert!(
        lines[0].starts_with(&format!("{h} > 220 mail.example1.com ESMTP")),
        "{s}"
    );
    assert_eq!(lines[1], format!("{h} < helo mail.example.com"));
    assert_eq!(lines[3], format!("{h} < mail from:<checker@example.com>"));
    assert_eq!(lines[5], format!("{h} < rcpt to:<somewhere@example.com>"));
    assert_eq!(lines[7], format!("{h} < quit"));
    assert_eq!(lines.last().unwrap(), &format!("{h} relay Allow"));
    let h = hostport(closed.smtp());
    let out = relaycheck(&["--classic", "--from", "x@outside.test", &h]);
    assert_eq!(code(&out), 0);
    let s = text(&out.stdout);
    assert!(s.contains(&format!("{h} < mail from:<x@outside.test>")));
    assert!(s.contains(&format!(
        "{h} > 550 5.7.1 <somewhere@example.com>... Relaying denied"
    )));
    assert_eq!(s.lines().last().unwrap(), format!("{h} relay Deny"));
    // No server: the Perl script's line, and "could not test".
    let port = free_port();
    let out = relaycheck(&["--classic", &format!("127.0.0.1:{port}")]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        text(&out.stdout),
        format!("127.0.0.1:{port} can't connect.\n")
    );
    open.stop();
    closed.stop();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn an_unreachable_server_cannot_be_tested() {
    let port = free_port();
    let out = relaycheck(&["--json", &format!("127.0.0.1:{port}")]);
    assert_eq!(code(&out), 2);
    let h = &json(&out)[0];
    assert_eq!(h["status"], "failed");
    assert!(
        h["error"]
            .as_str()
            .unwrap()
            .contains("connect to 127.0.0.1"),
        "{h}"
    );
    let out = relaycheck(&[&format!("127.0.0.1:{port}")]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stdout).contains("could not test: connect to"));
}

#[test]
fn hosts_file_results_come_in_the_given_order() {
    let dns = TestDns::start(&[]);
    let (_r, open) = open_server(&dns);
    let (_r2, closed) = closed_server(&dns, "");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts");
    fs::write(
        &file,
        format!(
            "# relay checks\n{}\n\n{}   # the open one\n",
            closed.smtp(),
            open.smtp()
        ),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = relaycheck(&["--json", "--concurrency", "2", "--hosts-file", f]);
    assert_eq!(code(&out), 1);
    let hosts = json(&out);
    assert_eq!(hosts.len(), 2);
    assert_eq!(hosts[0]["host"], closed.smtp().to_string().as_str());
    assert_eq!(hosts[1]["host"], open.smtp().to_string().as_str());
    assert!(relayed_numbers(&hosts[0]).is_empty());
    assert_eq!(relayed_numbers(&hosts[1]), OPEN_RELAYED);
    // Tables too come in order.
    let out = relaycheck(&["--concurrency", "2", "--hosts-file", f]);
    let s = text(&out.stdout);
    let (a, b) = (
        s.find(&closed.smtp().to_string()).unwrap(),
        s.find(&open.smtp().to_string()).unwrap(),
    );
    assert!(a < b, "{s}");
    // A bad line names the file and the line.
    fs::write(&file, "127.0.0.1:25\n127.0.0.1:x\n").unwrap();
    let out = relaycheck(&["--hosts-file", f]);
    assert_eq!(code(&out), 64);
    assert!(
        text(&out.stderr).contains(&format!("{f}:2: 127.0.0.1:x: bad port")),
        "{}",
        text(&out.stderr)
    );
    open.stop();
    closed.stop();
}

#[test]
fn data_counts_a_relay_only_when_the_message_is_accepted() {
    let dns = TestDns::start(&[]);
    let (_r, open) = open_server(&dns);
    let h = hostport(open.smtp());
    let out = relaycheck(&["--json", "--data", "--domain", "outside.test", &h]);
    assert_eq!(code(&out), 1);
    let host = &json(&out)[0];
    assert_eq!(relayed_numbers(host), OPEN_RELAYED);
    let p1 = &host["probes"][0];
    let cmds: Vec<&str> = p1["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["command"].as_str().unwrap())
        .collect();
    assert_eq!(cmds, ["RSET", "MAIL", "RCPT", "DATA", "."]);
    assert_eq!(p1["replies"][3]["code"], 354);
    // The messages are in the spool and say what they are.
    let mut found = 0;
    for e in walk(&open.spool()) {
        let body = fs::read_to_string(&e).unwrap_or_default();
        if body.contains("automated open relay test sent by mailtool relaycheck") {
            found += 1;
        }
    }
    assert_eq!(found, OPEN_RELAYED.len(), "one message per relayed probe");
    // Refused probes never reach DATA.
    let (_r2, closed) = closed_server(&dns, "");
    let out = relaycheck(&[
        "--json",
        "--data",
        "--domain",
        "outside.test",
        &hostport(closed.smtp()),
    ]);
    assert_eq!(code(&out), 0);
    let host = &json(&out)[0];
    for p in host["probes"].as_array().unwrap() {
        assert_eq!(p["replies"].as_array().unwrap().len(), 3, "{p}");
    }
    // --data without --domain would mail nmap.scanme.org: refused.
    let out = relaycheck(&["--data", &h]);
    assert_eq!(code(&out), 64);
    assert!(text(&out.stderr).contains("--domain"));
    open.stop();
    closed.stop();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn tls_files(root: &std::path::Path) -> (String, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["mail.example1.com".into(), "127.0.0.1".into()])
            .unwrap();
    let etc = root.join("etc/mail");
    fs::write(root.join("cert.pem"), ck.cert.pem()).unwrap();
    fs::write(etc.join("tls.crt"), ck.cert.pem()).unwrap();
    fs::write(etc.join("tls.key"), ck.signing_key.serialize_pem()).unwrap();
    fs::set_permissions(etc.join("tls.key"), fs::Permissions::from_mode(0o644)).unwrap();
    ("/etc/mail/tls.crt".into(), "/etc/mail/tls.key".into())
}

#[test]
fn starttls_and_implicit_tls() {
    let dns = TestDns::start(&[]);
    let r = setup();
    let (cert, key) = tls_files(r.path());
    let cfg = config(
        &dns,
        "relay_from_loopback = false",
        &format!("[tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n"),
    )
    .replace(
        "submission = []",
        "submission = []\nsmtps = [\"127.0.0.1:0\"]",
    );
    let srv = Server::start(r.path(), &cfg);
    let ca = r.path().join("cert.pem");
    let ca = ca.to_str().unwrap();
    let h = hostport(srv.smtp());
    // Verified against the CA file (the certificate names 127.0.0.1).
    let out = relaycheck(&["--json", "--starttls", "always", "--ca-file", ca, &h]);
    assert_eq!(code(&out), 0);
    let host = &json(&out)[0];
    assert!(host["tls"].as_str().unwrap().starts_with("TLSv1"), "{host}");
    assert_eq!(verdicts(host).len(), 22);
    // Another CA: the handshake fails and nothing is tested.
    let other = r.path().join("other.pem");
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    fs::write(&other, ck.cert.pem()).unwrap();
    let out = relaycheck(&[
        "--json",
        "--starttls",
        "--ca-file",
        other.to_str().unwrap(),
        &h,
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        json(&out)[0]["error"]
            .as_str()
            .unwrap()
            .contains("TLS handshake"),
        "{}",
        text(&out.stdout)
    );
    // Unverified (--insecure) works too.
    let out = relaycheck(&["--json", "--starttls", "always", "--insecure", &h]);
    assert_eq!(code(&out), 0);
    assert!(json(&out)[0]["tls"].as_str().unwrap().starts_with("TLSv1"));
    // SMTPS: TLS from the first byte.
    let out = relaycheck(&[
        "--json",
        "--tls",
        "--insecure",
        "--source",
        "127.0.0.60",
        &hostport(srv.smtps.unwrap()),
    ]);
    assert_eq!(code(&out), 1);
    let host = &json(&out)[0];
    assert!(host["tls"].as_str().unwrap().starts_with("TLSv1"));
    assert_eq!(relayed_numbers(host), OPEN_RELAYED);
    srv.stop();
    // A server without TLS: --starttls always cannot test, auto goes on in plain text.
    let (_r2, plain) = closed_server(&dns, "");
    let h = hostport(plain.smtp());
    let out = relaycheck(&["--json", "--starttls", "always", "--insecure", &h]);
    assert_eq!(code(&out), 2);
    assert!(
        json(&out)[0]["error"]
            .as_str()
            .unwrap()
            .contains("does not offer STARTTLS")
    );
    let out = relaycheck(&["--json", "--starttls", "auto", "--insecure", &h]);
    assert_eq!(code(&out), 0);
    assert!(json(&out)[0]["tls"].is_null());
    plain.stop();
}

#[test]
fn verbose_prints_the_transcript_and_domain_warnings() {
    let dns = TestDns::start(&[]);
    let (_r, srv) = closed_server(&dns, "");
    let h = hostport(srv.smtp());
    let out = relaycheck(&["-v", "--domain", "example1.com", &h]);
    assert_eq!(code(&out), 0);
    let e = text(&out.stderr);
    assert!(
        e.contains(&format!("[{h}] <-  220 mail.example1.com ESMTP")),
        "{e}"
    );
    assert!(e.contains(&format!("[{h}]  -> EHLO example1.com")), "{e}");
    assert!(e.contains(&format!(
        "[{h}]  -> RCPT TO:<\"relaytest@example1.com\"@[127.0.0.1]>"
    )));
    assert!(e.contains(&format!("[{h}]  -> QUIT")), "{e}");
    assert!(
        e.contains("--domain example1.com looks like a domain the server serves"),
        "{e}"
    );
    srv.stop();
}

#[test]
fn a_server_that_drops_the_connection_is_reconnected() {
    // max_errors = 3: the fourth refused RCPT ends the session with 421.
    let dns = TestDns::start(&[]);
    let (_r, srv) = closed_server(&dns, "max_errors = 3");
    let out = relaycheck(&["--json", &hostport(srv.smtp())]);
    assert_eq!(code(&out), 0);
    let host = &json(&out)[0];
    assert_eq!(host["status"], "tested");
    let v = verdicts(host);
    assert_eq!(v.len(), 22);
    assert!(v.iter().all(|(_, v)| v == "refused"), "{v:?}");
    assert_eq!(host["reconnects"], 5, "{host}");
    srv.stop();
}

#[test]
fn authentication_required_stops_the_battery() {
    // The submission port wants AUTH before MAIL: 530, as nmap reads it.
    let dns = TestDns::start(&[]);
    let r = setup();
    let cfg = config(&dns, "", "").replace("submission = []", "submission = [\"127.0.0.1:0\"]");
    let srv = Server::start(r.path(), &cfg);
    let out = relaycheck(&["--json", &hostport(srv.submission.unwrap())]);
    assert_eq!(code(&out), 0);
    let host = &json(&out)[0];
    assert_eq!(host["status"], "auth_required");
    assert_eq!(verdicts(host), [(1, "auth_required".to_string())]);
    let out = relaycheck(&[&hostport(srv.submission.unwrap())]);
    assert!(
        text(&out.stdout).contains("Server isn't an open relay, authentication needed"),
        "{}",
        text(&out.stdout)
    );
    srv.stop();
}

#[test]
fn usage_errors() {
    for args in [
        vec![],
        vec!["--from", "a@b.test", "127.0.0.1"],
        vec!["--classic", "--json", "127.0.0.1"],
        vec!["--domain", "a b", "127.0.0.1"],
        vec!["--concurrency", "0", "127.0.0.1"],
        vec!["127.0.0.1:notaport"],
    ] {
        let out = relaycheck(&args);
        assert_eq!(code(&out), 64, "{args:?}");
    }
}

// ---- interop: nmap's smtp-open-relay and Postfix --------------------------------------------

/// The pairs nmap's smtp-open-relay reports as relayed (`-vv` lists them), or `None` when
/// nmap is not installed here (CI must have it: .ci/run installs it).
fn nmap_relayed(addr: SocketAddr, domain: &str) -> Option<BTreeSet<(String, String)>> {
    if Command::new("nmap").arg("--version").output().is_err() {
        common::skip::skip("nmap is not installed");
        return None;
    }
    let out = Command::new("nmap")
        .args(["-Pn", "-n", "-sT", "-p", &addr.port().to_string()])
        .args(["--script", "+smtp-open-relay", "--script-args"])
        .arg(format!(
            "smtp-open-relay.domain={domain},smtp-open-relay.ip={}",
            addr.ip()
        ))
        .args(["-vv", &addr.ip().to_string()])
        .output()
        .expect("run nmap");
    let s = text(&out.stdout);
    eprintln!("nmap against {addr}:\n{s}");
    assert!(out.status.success(), "nmap: {s}{}", text(&out.stderr));
    let mut pairs = BTreeSet::new();
    for line in s.lines() {
        let line = line.trim_start_matches(['|', '_', ' ']);
        if let Some(rest) = line.strip_prefix("MAIL FROM:")
            && let Some((from, to)) = rest.split_once(" -> RCPT TO:")
        {
            pairs.insert((from.to_string(), to.trim_end().to_string()));
        }
    }
    if let Some(i) = s.find("Server is an open relay (") {
        let n: usize = s[i + 25..].split('/').next().unwrap().parse().unwrap();
        assert_eq!(n, pairs.len(), "nmap's count and its list: {s}");
    } else {
        assert!(
            s.contains("Server doesn't seem to be an open relay, all tests failed"),
            "no verdict from nmap: {s}"
        );
        assert!(pairs.is_empty());
    }
    Some(pairs)
}

/// relaycheck's JSON for `addr` with nmap's parameters, and its exit status.
fn relaycheck_like_nmap(addr: SocketAddr, domain: &str) -> (i32, Value) {
    let out = relaycheck(&["--json", "--domain", domain, &addr.to_string()]);
    (code(&out), json(&out).remove(0))
}

#[test]
fn finds_every_relay_nmap_finds_on_mailtool() {
    let dns = TestDns::start(&[]);
    let (_r, open) = open_server(&dns);
    let (_r2, closed) = closed_server(&dns, "");
    let d = "nmap.scanme.org";
    let Some(nmap_open) = nmap_relayed(open.smtp(), d) else {
        return;
    };
    let (c, ours) = relaycheck_like_nmap(open.smtp(), d);
    assert_eq!(c, 1);
    let ours = relayed_nmap_pairs(&ours);
    assert_eq!(nmap_open.len(), 10, "{nmap_open:#?}");
    assert!(
        ours.is_superset(&nmap_open),
        "nmap found {:#?} that relaycheck missed",
        nmap_open.difference(&ours).collect::<Vec<_>>()
    );
    let nmap_closed = nmap_relayed(closed.smtp(), d).unwrap();
    let (c, ours) = relaycheck_like_nmap(closed.smtp(), d);
    assert_eq!(c, 0);
    assert!(nmap_closed.is_empty());
    assert!(relayed_nmap_pairs(&ours).is_empty());
    open.stop();
    closed.stop();
}

#[test]
fn postfix_open_and_closed() {
    let Some(open) = Postfix::start(PostfixOptions {
        open_relay: true,
        tls: false,
    }) else {
        return;
    };
    let d = "nmap.scanme.org";
    let (c, ours) = relaycheck_like_nmap(open.smtp, d);
    assert_eq!(c, 1, "{ours}");
    let ours_open = relayed_nmap_pairs(&ours);
    assert!(!ours_open.is_empty());
    if let Some(nmap) = nmap_relayed(open.smtp, d) {
        assert!(!nmap.is_empty());
        assert!(
            ours_open.is_superset(&nmap),
            "nmap found {:#?} that relaycheck missed",
            nmap.difference(&ours_open).collect::<Vec<_>>()
        );
    }
    drop(open);
    let closed = Postfix::start(PostfixOptions {
        open_relay: false,
        tls: true,
    })
    .expect("Postfix ran a moment ago");
    // Postfix delays every refusal by smtpd_error_sleep_time (1s): run the checks at once.
    let ca = closed.ca_file.to_str().unwrap().to_string();
    let (smtp, smtps) = (closed.smtp, closed.smtps.unwrap());
    let plain = std::thread::spawn(move || relaycheck_like_nmap(smtp, "nmap.scanme.org"));
    let ca2 = ca.clone();
    let starttls = std::thread::spawn(move || {
        relaycheck(&["--json", "--starttls", "--ca-file", &ca2, &smtp.to_string()])
    });
    let implicit = std::thread::spawn(move || {
        relaycheck(&["--json", "--tls", "--ca-file", &ca, &smtps.to_string()])
    });
    let nmap = nmap_relayed(smtp, d);
    let (c, ours) = plain.join().unwrap();
    assert_eq!(c, 0, "{ours}");
    assert!(relayed_nmap_pairs(&ours).is_empty());
    if let Some(nmap) = nmap {
        assert!(nmap.is_empty(), "{nmap:#?}");
    }
    // Over TLS, verified against the fixture's certificate (it names 127.0.0.1).
    for out in [starttls.join().unwrap(), implicit.join().unwrap()] {
        assert_eq!(code(&out), 0);
        let host = &json(&out)[0];
        assert!(host["tls"].as_str().unwrap().starts_with("TLSv1"), "{host}");
        assert_eq!(host["status"], "tested");
        assert!(relayed_numbers(host).is_empty());
    }
}
