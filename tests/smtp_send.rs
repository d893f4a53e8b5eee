//! `mailtool smtp-send`, black-box: the real binary sending to a real `mailtool serve` on
//! loopback (plain, STARTTLS, SMTPS, AUTH, PIPELINING, MX lookup through a test DNS server),
//! to scripted servers for the stages `serve` never fails, and to Postfix when it is there.
//! Loopback addresses 127.0.0.2–254 stand in for other clients (`--source`).

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::dns::{Rec, TestDns};
use common::server::{Server, add_user, seed_root};
use common::*;

fn root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// The server's certificate, valid for its name and for 127.0.0.1 (what `--server` names).
/// Returns the CA file for `--ca-file` and the config's `[tls]` table.
fn tls_files(root: &Path) -> (PathBuf, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["mail.example1.com".into(), "127.0.0.1".into()])
            .unwrap();
    let etc = root.join("etc/mail");
    fs::create_dir_all(&etc).unwrap();
    let ca = root.join("ca.pem");
    fs::write(&ca, ck.cert.pem()).unwrap();
    fs::write(etc.join("tls.crt"), ck.cert.pem()).unwrap();
    fs::write(etc.join("tls.key"), ck.signing_key.serialize_pem()).unwrap();
    fs::set_permissions(etc.join("tls.key"), fs::Permissions::from_mode(0o644)).unwrap();
    (
        ca,
        "[tls]\ncert = \"/etc/mail/tls.crt\"\nkey = \"/etc/mail/tls.key\"\n".into(),
    )
}

/// The seed's maps and the users behind its addresses: `example` (the example1.com
/// catch-all) and `who` (for AUTH).
fn seed(r: &Path) {
    seed_root(r);
    add_user(r, "example", "example-pw");
    add_user(r, "who", "s3cret");
}

fn config(dns: &TestDns, extra_smtp: &str, extra: &str) -> String {
    format!(
        "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
         [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nshutdown_grace = \"2s\"\n{extra_smtp}\n\
         [dns]\n{}\ntimeout = \"300ms\"\n{extra}",
        dns.config_servers()
    )
}

/// `mailtool smtp-send ARGS` with `stdin`; bounded by smtp-send's own --timeout.
fn send(args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = mailtool();
    cmd.arg("smtp-send").args(["--timeout", "20s"]).args(args);
    cmd.env_remove("MAILTOOL_PASSWORD");
    run(&mut cmd, stdin)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// The df file of a queued message, by the queue id that `--json` reported.
fn spooled(srv: &Server, o: &Output) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", show(o)));
    let qid = v["queue_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", show(o)));
    fs::read_to_string(srv.spool().join(format!("df{qid}"))).expect("df file")
}

fn addr(a: SocketAddr) -> String {
    a.to_string()
}

/// One server for the session tests: TLS on port 25 and SMTPS, users for AUTH.
fn tls_server(dns: &TestDns, r: &Path) -> (Server, PathBuf) {
    seed(r);
    let (ca, tls) = tls_files(r);
    let cfg = config(dns, "smtps = [\"127.0.0.1:0\"]", &tls);
    (Server::start(r, &cfg), ca)
}

#[test]
fn composed_message_lands_in_the_spool() {
    let dns = TestDns::start(&[]);
    let r = root();
    let (srv, _) = tls_server(&dns, r.path());
    let s = addr(srv.smtp());
    let attach = r.path().join("report.pdf");
    fs::write(&attach, b"%PDF-1.4 binary \x00\x01\xff").unwrap();
    let o = send(
        &[
            "--server",
            &s,
            "--source",
            "127.0.0.20",
            "--from",
            "sender@outside.test",
            "--to",
            "anyone@example1.com",
            "--subject",
            "Grüße from smtp-send",
            "--header",
            "X-Test: header one",
            "--body",
            "first line\n.dot line\n..two dots\n",
            "--attach",
            attach.to_str().unwrap(),
            "--helo",
            "client.test",
            "--json",
        ],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["accepted"], serde_json::json!(["anyone@example1.com"]));
    assert_eq!(v["server"], "127.0.0.1");
    assert!(v["failed"].is_null());
    let stages: Vec<&str> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["greeting", "EHLO", "MAIL", "RCPT", "DATA", "message"]
    );
    assert_eq!(v["stages"][3]["recipient"], "anyone@example1.com");
    assert_eq!(v["stages"][5]["code"], 250);
    let df = spooled(&srv, &o);
    assert!(df.contains("Subject: =?utf-8?"), "{df}");
    assert!(df.contains("X-Test: header one\n"), "{df}");
    assert!(
        df.contains("Message-ID: <") && df.contains("@client.test>"),
        "{df}"
    );
    assert!(df.contains("Date: "), "{df}");
    assert!(df.contains("Content-Type: multipart/mixed"), "{df}");
    assert!(df.contains("Content-Type: application/pdf"), "{df}");
    assert!(df.contains("filename=\"report.pdf\""), "{df}");
    // Dot-stuffed on the wire, unstuffed by the server: the lines come back as written.
    assert!(df.contains("\nfirst line\n.dot line\n..two dots\n"), "{df}");
    srv.stop();
}

#[test]
fn data_file_is_sent_as_is_and_pipelining_works() {
    let dns = TestDns::start(&[]);
    let r = root();
    let (srv, _) = tls_server(&dns, r.path());
    let s = addr(srv.smtp());
    let raw = "From: <raw@outside.test>\nSubject: raw message\nX-Raw: 1\n\nbody\n.\n.leading dot\n";
    let file = r.path().join("msg.eml");
    fs::write(&file, raw).unwrap();
    let base = [
        "--server",
        &s,
        "--source",
        "127.0.0.20",
        "--from",
        "raw@outside.test",
        "--to",
        "anyone@example1.com",
        "--json",
    ];
    let o = send(
        &[&base[..], &["--data", file.to_str().unwrap()]].concat(),
        b"",
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    let df = spooled(&srv, &o);
    // The server adds its Received: line; everything after it is ours, byte for byte.
    assert!(df.starts_with("Received: "), "{df}");
    assert!(df.ends_with(&format!("\n{raw}")), "{df}");
    assert!(
        !df.contains("Message-ID") && !df.contains("MIME-Version"),
        "{df}"
    );

    // The same from standard input, pipelined.
    let o = send(
        &[&base[..], &["--data", "-", "--pipeline", "-v"]].concat(),
        raw.as_bytes(),
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(spooled(&srv, &o).ends_with(&format!("\n{raw}")));
    let err = text(&o.stderr);
    assert!(err.contains("250-PIPELINING"), "{err}");
    // The group went out before any of its replies came back.
    let mail = err.find(" -> MAIL FROM:<raw@outside.test>").expect(&err);
    let data = err.find(" -> DATA").expect(&err);
    let mail_reply = err.find("<-  250 2.1.0").expect(&err);
    assert!(mail < data && data < mail_reply, "{err}");
    assert!(
        err.contains(" -> ..leading dot"),
        "dot-stuffed on the wire: {err}"
    );
    srv.stop();
}

#[test]
fn starttls_smtps_and_auth() {
    let dns = TestDns::start(&[]);
    let r = root();
    let (srv, ca) = tls_server(&dns, r.path());
    let s = addr(srv.smtp());
    let smtps = addr(srv.smtps.unwrap());
    let ca = ca.to_str().unwrap();
    let pw = r.path().join("pw");
    fs::write(&pw, "s3cret\nsecond line ignored\n").unwrap();
    let bad = r.path().join("bad");
    fs::write(&bad, "wrong\n").unwrap();
    let common_args = |server: &str| -> Vec<String> {
        [
            "--server",
            server,
            "--source",
            "127.0.0.4",
            "--from",
            "who@example1.com",
            "--helo",
            "client.test",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let with = |server: &str, more: &[&str]| -> Output {
        let mut v = common_args(server);
        v.extend(more.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        send(&refs, b"")
    };

    // STARTTLS, verified against the test CA; AUTH PLAIN inside makes relaying possible.
    let o = with(
        &s,
        &[
            "--starttls",
            "--ca-file",
            ca,
            "--auth",
            "PLAIN",
            "--user",
            "who",
            "--password-file",
            pw.to_str().unwrap(),
            "--to",
            "far@away.test",
            "--json",
            "-v",
        ],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["tls"].as_str().unwrap().starts_with("TLSv1."), "{v}");
    let err = text(&o.stderr);
    assert!(
        err.contains(" -> STARTTLS") && err.contains(" === TLS started"),
        "{err}"
    );
    assert!(err.contains(" -> AUTH PLAIN ********"), "{err}");
    // Neither the password nor its base64 form ever reaches the transcript.
    assert!(
        !err.contains("s3cret") && !err.contains("AHdobwBzM2NyZXQ"),
        "{err}"
    );

    // SMTPS: TLS from the first byte; AUTH LOGIN with the password from the environment.
    let mut cmd = mailtool();
    cmd.arg("smtp-send")
        .args(common_args(&smtps))
        .args(["--tls", "--ca-file", ca, "--auth", "login", "--user", "who"])
        .args(["--to", "far@away.test", "-v"])
        .env("MAILTOOL_PASSWORD", "s3cret");
    let o = run(&mut cmd, b"");
    assert_eq!(code(&o), 0, "{}", show(&o));
    let err = text(&o.stderr);
    assert!(err.contains("<-  220 mail.example1.com"), "{err}");
    assert!(
        !err.contains("STARTTLS") && !err.contains("s3cret"),
        "{err}"
    );
    assert!(text(&o.stdout).starts_with("sent to 1 of 1 recipient(s) via 127.0.0.1:"));

    // A wrong password: the AUTH stage, 28.
    let o = with(
        &s,
        &[
            "--starttls",
            "--ca-file",
            ca,
            "--auth",
            "PLAIN",
            "--user",
            "who",
            "--password-file",
            bad.to_str().unwrap(),
            "--to",
            "far@away.test",
        ],
    );
    assert_eq!(code(&o), 28, "{}", show(&o));
    assert_eq!(
        text(&o.stderr),
        "smtp-send: AUTH: 535 5.7.0 authentication failed\n"
    );

    // No AUTH: relaying refused, the RCPT stage, 24.
    let o = with(&s, &["--to", "far@away.test"]);
    assert_eq!(code(&o), 24, "{}", show(&o));
    assert!(
        text(&o.stderr).ends_with(
            "smtp-send: RCPT: 550 5.7.1 <far@away.test>... Relaying denied. Proper \
             authentication required.\n"
        ),
        "{}",
        show(&o)
    );
    // One refused among accepted ones: sent (0), the refusal reported.
    let o = with(
        &s,
        &["--to", "far@away.test", "--to", "anyone@example1.com"],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(text(&o.stderr).contains("smtp-send: RCPT: <far@away.test>: 550 5.7.1"));
    assert!(text(&o.stdout).starts_with("sent to 1 of 2 recipient(s)"));

    // The certificate is checked: a CA that did not sign it is refused (TLS stage, 29).
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let other_ca = r.path().join("other-ca.pem");
    fs::write(&other_ca, other.cert.pem()).unwrap();
    let o = with(
        &s,
        &[
            "--starttls",
            "--ca-file",
            other_ca.to_str().unwrap(),
            "--to",
            "anyone@example1.com",
        ],
    );
    assert_eq!(code(&o), 29, "{}", show(&o));
    assert!(
        text(&o.stderr).starts_with("smtp-send: TLS: "),
        "{}",
        show(&o)
    );
    // ... unless told not to.
    let o = with(&s, &["--starttls", "-k", "--to", "anyone@example1.com"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    srv.stop();
}

#[test]
fn connect_and_tls_failures_name_their_stage() {
    let dns = TestDns::start(&[]);
    let r = root();
    seed(r.path());
    let srv = Server::start(r.path(), &config(&dns, "", ""));
    // No [tls]: STARTTLS is not offered; `always` fails at TLS, `auto` goes on in plain text.
    let base = |mode: &str| -> Output {
        send(
            &[
                "--server",
                &addr(srv.smtp()),
                "--source",
                "127.0.0.20",
                "--from",
                "a@outside.test",
                "--to",
                "anyone@example1.com",
                mode,
            ],
            b"",
        )
    };
    let o = base("--starttls");
    assert_eq!(code(&o), 29, "{}", show(&o));
    assert_eq!(
        text(&o.stderr),
        "smtp-send: TLS: the server does not offer STARTTLS\n"
    );
    let o = base("--starttls=auto");
    assert_eq!(code(&o), 0, "{}", show(&o));
    // A port nobody listens on: the connect stage, 2.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap();
    drop(l);
    let o = send(
        &[
            "--server",
            &addr(dead),
            "--from",
            "a@b.test",
            "--to",
            "c@d.test",
            "--json",
        ],
        b"",
    );
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(
        text(&o.stderr).starts_with(&format!("smtp-send: connect: connect to {dead}: ")),
        "{}",
        show(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["failed"]["stage"], "connect");
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 2);
    srv.stop();
}

#[test]
fn mx_lookup_tries_hosts_in_preference_order() {
    let dns = TestDns::start(&[
        // The preferred MX has an address where nothing listens; the next one is the server.
        Rec::mx("example1.com", 5, "dead.example1.com"),
        Rec::mx("example1.com", 10, "mx.example1.com"),
        Rec::a("dead.example1.com", "127.0.0.250"),
        Rec::a("mx.example1.com", "127.0.0.1"),
        Rec::mx("nomail.test", 0, "."),
    ]);
    let r = root();
    seed(r.path());
    let srv = Server::start(r.path(), &config(&dns, "", ""));
    let port = srv.smtp().port().to_string();
    // smtp-send reads the same configuration, so it asks the test DNS server.
    let mx = |to: &str| -> Output {
        let mut cmd = mailtool();
        cmd.arg("--root")
            .arg(r.path())
            .args(["smtp-send", "--timeout", "20s", "--port", &port])
            .args(["--from", "a@outside.test", "--to", to, "--json", "-v"]);
        run(&mut cmd, b"")
    };
    let o = mx("anyone@example1.com");
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["server"], "mx.example1.com");
    assert_eq!(v["address"], format!("127.0.0.1:{port}"));
    let err = text(&o.stderr);
    let dead = err.find("Trying dead.example1.com").expect(&err);
    let live = err.find("Trying mx.example1.com").expect(&err);
    assert!(dead < live, "{err}");
    spooled(&srv, &o);
    // A null MX: the domain takes no mail (connect stage).
    let o = mx("x@nomail.test");
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(text(&o.stderr).contains("nomail.test: the domain accepts no mail (null MX)"));
    srv.stop();
}

/// A scripted server: the greeting, then one reply per command line (the message after a
/// 354 counts as one command). Returns its address and the lines it received.
fn scripted(replies: &'static [&'static str]) -> (SocketAddr, std::thread::JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut got = String::new();
        let mut it = replies.iter();
        w.write_all(format!("{}\r\n", it.next().unwrap()).as_bytes())
            .unwrap();
        let mut in_data = false;
        for reply in it {
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return got;
                }
                got.push_str(&line);
                if !in_data || line == ".\r\n" {
                    break;
                }
            }
            in_data = reply.starts_with("354");
            let _ = w.write_all(format!("{reply}\r\n").as_bytes());
        }
        got
    });
    (a, h)
}

#[test]
fn greeting_helo_fallback_and_message_refusal() {
    let base = |a: SocketAddr| -> Output {
        send(
            &[
                "--server",
                &addr(a),
                "--from",
                "a@b.test",
                "--to",
                "c@d.test",
                "--helo",
                "me.test",
            ],
            b"",
        )
    };
    let (a, h) = scripted(&["554 5.3.2 go away"]);
    let o = base(a);
    assert_eq!(code(&o), 21, "{}", show(&o));
    assert!(
        text(&o.stderr).starts_with("smtp-send: greeting: 554 5.3.2 go away\n"),
        "{}",
        show(&o)
    );
    h.join().unwrap();

    // An old server without EHLO gets HELO; the message is refused after the dot (26).
    let (a, h) = scripted(&[
        "220 old.test",
        "502 5.5.1 unrecognized command",
        "250 old.test",
        "250 ok",
        "250 ok",
        "354 go",
        "554 5.7.1 content rejected",
        "221 bye",
    ]);
    let o = base(a);
    assert_eq!(code(&o), 26, "{}", show(&o));
    assert!(text(&o.stderr).starts_with("smtp-send: message: 554 5.7.1 content rejected\n"));
    let got = h.join().unwrap();
    assert!(
        got.starts_with(
            "EHLO me.test\r\nHELO me.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"
        ),
        "{got}"
    );
    assert!(got.ends_with("\r\n.\r\nQUIT\r\n"), "{got}");

    // MAIL and DATA refusals.
    let (a, h) = scripted(&["220 x", "250 x", "553 5.1.8 bad sender", "221 bye"]);
    let o = base(a);
    assert_eq!(code(&o), 23, "{}", show(&o));
    assert!(text(&o.stderr).starts_with("smtp-send: MAIL: 553 5.1.8 bad sender\n"));
    h.join().unwrap();
    let (a, h) = scripted(&[
        "220 x",
        "250 x",
        "250 ok",
        "250 ok",
        "451 4.3.0 try later",
        "221 bye",
    ]);
    let o = base(a);
    assert_eq!(code(&o), 25, "{}", show(&o));
    assert!(text(&o.stderr).starts_with("smtp-send: DATA: 451 4.3.0 try later\n"));
    h.join().unwrap();
    // --pipeline against a server that does not offer it: the EHLO stage.
    let (a, h) = scripted(&["220 x", "250 x", "221 bye"]);
    let o = send(
        &[
            "--server",
            &addr(a),
            "--from",
            "a@b.test",
            "--to",
            "c@d.test",
            "--pipeline",
        ],
        b"",
    );
    assert_eq!(code(&o), 22, "{}", show(&o));
    assert!(text(&o.stderr).contains("PIPELINING"));
    h.join().unwrap();
}

#[test]
fn input_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pdf");
    let o = send(
        &[
            "--server",
            "127.0.0.1:1",
            "--from",
            "a@b.test",
            "--to",
            "c@d.test",
            "--attach",
            missing.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&o), 66, "{}", show(&o));
    assert!(text(&o.stderr).starts_with(&format!("smtp-send: --attach {}: ", missing.display())));
    let o = send(
        &[
            "--server",
            "127.0.0.1:1",
            "--from",
            "a@b.test",
            "--to",
            "c@d.test",
            "--data",
            missing.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&o), 66, "{}", show(&o));
    let o = send(
        &[
            "--server",
            "127.0.0.1:1",
            "--from",
            "a@b.test",
            "--to",
            "c d@e.test",
        ],
        b"",
    );
    assert_eq!(code(&o), 64, "{}", show(&o));
    assert!(
        text(&o.stderr).starts_with("smtp-send: --to \"c d@e.test\": "),
        "{}",
        show(&o)
    );
    let o = send(
        &[
            "--server",
            "127.0.0.1:1",
            "--from",
            "a@b.test",
            "--to",
            "c@d.test",
            "--header",
            "X-Bad: a\nBcc: x@y",
        ],
        b"",
    );
    assert_eq!(code(&o), 64, "{}", show(&o));
    // Without --server, the recipients must share a domain.
    let o = send(
        &[
            "--from",
            "a@b.test",
            "--to",
            "c@one.test",
            "--to",
            "d@two.test",
        ],
        b"",
    );
    assert_eq!(code(&o), 64, "{}", show(&o));
    assert!(text(&o.stderr).contains("different domains"));
    // AUTH without a password source.
    let o = send(
        &[
            "--server",
            "127.0.0.1:1",
            "--from",
            "a@b.test",
            "--to",
            "c@d.test",
            "--auth",
            "PLAIN",
            "--user",
            "u",
        ],
        b"",
    );
    assert_eq!(code(&o), 64, "{}", show(&o));
    assert!(text(&o.stderr).contains("MAILTOOL_PASSWORD"));
    // The exit status table is in --help.
    let o = send(&["--help"], b"");
    assert_eq!(code(&o), 0);
    assert!(text(&o.stdout).contains("24  RCPT: no recipient accepted"));
}

// ---- Postfix ---------------------------------------------------------------------------

#[test]
fn postfix_plain_starttls_smtps_and_relay_refusal() {
    use common::postfix::{DOMAIN, Postfix, PostfixOptions};
    let Some(pf) = Postfix::start(PostfixOptions {
        open_relay: false,
        tls: true,
    }) else {
        return;
    };
    let ca = pf.ca_file.to_str().unwrap().to_string();
    let smtp = addr(pf.smtp);
    let smtps = addr(pf.smtps.unwrap());
    let sink = format!("sink@{DOMAIN}");
    let to_postfix = |extra: &[&str]| -> Output {
        let mut args = vec!["--from", "a@outside.test", "--to", &sink, "--json"];
        args.extend_from_slice(extra);
        send(&args, b"")
    };
    for (what, extra) in [
        ("plain", vec!["--server", &smtp]),
        (
            "STARTTLS",
            vec!["--server", &smtp, "--starttls", "--ca-file", &ca],
        ),
        ("SMTPS", vec!["--server", &smtps, "--tls", "--ca-file", &ca]),
        ("pipelined", vec!["--server", &smtp, "--pipeline"]),
    ] {
        let o = to_postfix(&extra);
        assert_eq!(code(&o), 0, "{what}: {}", show(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            v["tls"].is_string(),
            what == "STARTTLS" || what == "SMTPS",
            "{what}: {v}"
        );
        // Postfix's "queued as ID" is reported, and Postfix's log knows that id.
        let qid = v["queue_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{}", show(&o)))
            .to_string();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !pf.log_text().contains(&qid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            pf.log_text().contains(&qid),
            "{what}: {qid} not in the Postfix log"
        );
    }
    // Postfix relays for nobody here: the RCPT stage, 24, with Postfix's own words.
    let o = send(
        &[
            "--server",
            &smtp,
            "--from",
            "a@outside.test",
            "--to",
            "x@elsewhere.test",
        ],
        b"",
    );
    assert_eq!(code(&o), 24, "{}", show(&o));
    assert!(
        text(&o.stderr)
            .starts_with("smtp-send: RCPT: 554 5.7.1 <x@elsewhere.test>: Relay access denied"),
        "{}",
        show(&o)
    );
}

/// Reads a message with Python's email package (`policy.default`, the parser mail readers
/// build on): every defect it reports, the From: address, and each attachment's type,
/// charset and decoded text.
const PY_PARSE: &str = r#"
import email, email.policy, json, sys
msg = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.default)
defects = [repr(d) for d in msg.defects]
frm = msg["From"]
defects += ["From: " + repr(d) for d in frm.defects]
parts = []
for p in msg.iter_attachments():
    defects += [p.get_filename() + ": " + repr(d) for d in p.defects]
    parts.append({"name": p.get_filename(), "type": p.get_content_type(),
                  "charset": p.get_param("charset"), "text": p.get_content()})
print(json.dumps({"defects": defects, "from": [a.addr_spec for a in frm.addresses],
                  "parts": parts}))
"#;

fn have_python() -> bool {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "CI must provide python3"
    );
    ok
}

#[test]
fn text_attachments_carry_a_charset_and_the_null_sender_a_valid_from() {
    // Issue 12 #18: a UTF-8 text attachment went out as bare text/plain (read as US-ASCII,
    // RFC 2046 §4.1.2), and --from '' wrote `From: <>`, which Python flags as a defect.
    if !have_python() {
        return;
    }
    let dns = TestDns::start(&[]);
    let r = root();
    let (srv, _) = tls_server(&dns, r.path());
    let s = addr(srv.smtp());
    let utf8 = r.path().join("notes.txt");
    fs::write(&utf8, "Grüße, ½ € — ok\n").unwrap();
    let ascii = r.path().join("plain.txt");
    fs::write(&ascii, "just ascii\n").unwrap();
    let o = send(
        &[
            "--server",
            &s,
            "--source",
            "127.0.0.20",
            "--from",
            "",
            "--to",
            "anyone@example1.com",
            "--attach",
            utf8.to_str().unwrap(),
            "--attach",
            ascii.to_str().unwrap(),
            "--helo",
            "client.test",
            "--json",
        ],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    let df = spooled(&srv, &o);
    let file = r.path().join("sent.eml");
    fs::write(&file, &df).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", PY_PARSE])
        .arg(&file)
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("python JSON");
    assert_eq!(v["defects"], serde_json::json!([]), "{df}");
    assert_eq!(
        v["from"],
        serde_json::json!(["MAILER-DAEMON@client.test"]),
        "{df}"
    );
    assert_eq!(
        v["parts"],
        serde_json::json!([
            {"name": "notes.txt", "type": "text/plain", "charset": "utf-8",
             "text": "Grüße, ½ € — ok\n"},
            {"name": "plain.txt", "type": "text/plain", "charset": "us-ascii",
             "text": "just ascii\n"},
        ]),
        "{df}"
    );
    srv.stop();
}
