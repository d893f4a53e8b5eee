//! `mailtool pop-login` against a real Dovecot (plain, STLS, implicit TLS; success, failure,
//! listings), against scripted servers (Qpopper's seed transcript, non-POP3 peers), and with
//! nothing listening. Only 127.0.0.1, temp dirs and bounded timeouts.

mod common;

use common::dovecot::{self, Dovecot};
use common::pop3::{Mailbox, PopEndpoint, closed_port, pop_login_command, scripted};
use common::{run, text};

/// A Dovecot serving `mailbox`, or `None` when the test is skipped (no Dovecot, not in CI).
fn dovecot(mailbox: Mailbox) -> Option<Dovecot> {
    dovecot::available().then(|| Dovecot::start(mailbox))
}

fn code(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

/// Everything the command printed, for "never shows the password" checks.
fn all_output(out: &std::process::Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn assert_logged_in(ep: &PopEndpoint, out: &std::process::Output) {
    assert_eq!(code(out), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{}\n", ep.mailbox.summary_line())
    );
}

#[test]
fn plain_user_pass_prints_the_summary_line() {
    let Some(d) = dovecot(Mailbox::standard()) else {
        return;
    };
    let ep = &d.endpoint;
    let out = ep.login(ep.plain, &[]);
    assert_logged_in(ep, &out);
    assert!(
        text(&out.stdout).starts_with("UserID has 2 visible messages (0 hidden) in "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn one_message_is_singular_as_in_the_seed() {
    let Some(d) = dovecot(Mailbox::single()) else {
        return;
    };
    let ep = &d.endpoint;
    let out = ep.login(ep.plain, &[]);
    assert_logged_in(ep, &out);
    assert!(text(&out.stdout).contains(" has 1 visible message (0 hidden) in "));
}

#[test]
fn wrong_password_exits_1_and_shows_neither_password() {
    let Some(d) = dovecot(Mailbox::standard()) else {
        return;
    };
    let ep = &d.endpoint;
    let out = ep.login_with(ep.plain, &["-v"], |c| {
        c.env("MAILTOOL_PASSWORD", "wrong-Pw-77");
    });
    assert_eq!(code(&out), Some(1), "{}", all_output(&out));
    let err = text(&out.stderr);
    assert!(err.contains("authentication failed"), "{err}");
    assert!(err.contains("C: PASS ********"), "{err}");
    assert!(!all_output(&out).contains("wrong-Pw-77"));
    // The session still ends with QUIT.
    assert!(err.contains("C: QUIT"), "{err}");

    let out = ep.login_with(ep.plain, &["--json"], |c| {
        c.env("MAILTOOL_PASSWORD", "wrong-Pw-77");
    });
    assert_eq!(code(&out), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["logged_in"], false);
    assert_eq!(v["failure"]["stage"], "auth");
    assert_eq!(v["failure"]["kind"], "auth");
    assert!(
        v["failure"]["server_text"]
            .as_str()
            .unwrap()
            .starts_with("-ERR"),
        "{v}"
    );
}

#[test]
fn verbose_transcript_masks_the_password() {
    let Some(d) = dovecot(Mailbox::standard()) else {
        return;
    };
    let ep = &d.endpoint;
    for extra in [&["-v"][..], &["-v", "--apop"], &["-v", "--auth", "plain"]] {
        let out = ep.login(ep.plain, extra);
        assert_logged_in(ep, &out);
        let err = text(&out.stderr);
        assert!(err.contains("S: +OK Dovecot"), "{err}");
        assert!(err.contains("********"), "{extra:?}: {err}");
        assert!(
            err.contains("C: PASS ********")
                || err.contains("C: APOP UserID ********")
                || err.contains("C: AUTH PLAIN"),
            "{err}"
        );
        assert!(err.lines().any(|l| l == "C: QUIT"), "{err}");
        assert!(
            !all_output(&out).contains(&ep.mailbox.password),
            "{extra:?}"
        );
    }
}

#[test]
fn stls_verifies_the_certificate() {
    let Some(d) = dovecot(Mailbox::standard()) else {
        return;
    };
    let ep = &d.endpoint;
    let ca = ep.ca_file.to_str().unwrap();
    let out = ep.login(ep.plain, &["--stls", "--ca-file", ca, "-v"]);
    assert_logged_in(ep, &out);
    let err = text(&out.stderr);
    let stls = err.find("C: STLS").expect("STLS sent");
    let tls = err.find("-- TLS started").expect("TLS started");
    let user = err.find("C: USER").expect("USER sent");
    assert!(stls < tls && tls < user, "{err}");
    // CAPA again over TLS (RFC 2595), and Dovecot no longer offers STLS there.
    assert!(err[tls..].contains("C: CAPA"), "{err}");
    assert!(!err[tls..].contains("S: STLS"), "{err}");

    // The self-signed certificate is in no system store: verification must fail (exit 2).
    let out = ep.login(ep.plain, &["--stls"]);
    assert_eq!(code(&out), Some(2), "{}", all_output(&out));
    assert!(text(&out.stderr).contains("TLS"), "{}", text(&out.stderr));
    assert!(text(&out.stdout).is_empty());

    // --insecure encrypts without checking.
    let out = ep.login(ep.plain, &["--stls", "--insecure"]);
    assert_logged_in(ep, &out);
}

#[test]
fn implicit_tls() {
    let Some(d) = dovecot(Mailbox::standard()) else {
        return;
    };
    let ep = &d.endpoint;
    let ca = ep.ca_file.to_str().unwrap();
    assert_logged_in(ep, &ep.login(ep.tls, &["--tls", "--ca-file", ca]));
    assert_logged_in(ep, &ep.login(ep.tls, &["--tls", "-k"]));
    let out = ep.login(ep.tls, &["--tls", "--ca-file", ca, "--json"]);
    assert_eq!(code(&out), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tls"], "tls");
    // Plain POP3 to the POP3S port: both sides wait for the other (a greeting, a ClientHello)
    // until the client's timeout, which is a connection error (2).
    let out = ep.login(ep.tls, &["--timeout", "2s"]);
    assert_eq!(code(&out), Some(2), "{}", all_output(&out));
}

#[test]
fn listings_and_messages() {
    let Some(d) = dovecot(Mailbox::standard()) else {
        return;
    };
    let ep = &d.endpoint;
    let mb = &ep.mailbox;

    let out = ep.login(ep.plain, &["--list", "--uidl"]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with(&mb.summary_line()), "{stdout}");
    // Issue 12 (25): Unicode boxes like every other table (comfy-table UTF8_FULL_CONDENSED).
    let rows: Vec<Vec<String>> = stdout
        .lines()
        .filter(|l| l.starts_with('│'))
        .map(|l| {
            l.split(['│', '┆'])
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect();
    for n in 1..=2 {
        let row = vec![n.to_string(), mb.octets(n).to_string()];
        assert!(rows.contains(&row), "missing {row:?} in\n{stdout}");
    }
    assert!(stdout.contains('┌') && !stdout.contains("+-"), "{stdout}");
    assert!(stdout.contains("uid"), "{stdout}");

    let out = ep.login(ep.plain, &["--list", "--uidl", "--json"]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["host"], "127.0.0.1");
    assert_eq!(v["port"], ep.plain.port());
    assert_eq!(v["tls"], "none");
    assert_eq!(v["user"], "UserID");
    assert_eq!(v["logged_in"], true);
    assert_eq!(v["summary"]["messages"], 2);
    assert_eq!(v["summary"]["octets"], mb.total_octets());
    assert_eq!(v["list"][0]["msg"], 1);
    assert_eq!(v["list"][0]["octets"], mb.octets(1));
    assert_eq!(v["list"][1]["octets"], mb.octets(2));
    let uids = v["uidl"].as_array().unwrap();
    assert_eq!(uids.len(), 2);
    assert_ne!(uids[0]["uid"], uids[1]["uid"]);
    assert!(v["failure"].is_null());

    // RETR: the message as the server holds it, with the stuffed ".dot line" unstuffed; the
    // summary line goes to stderr so stdout is the message alone.
    let out = ep.login(ep.plain, &["--retr", "1"]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), mb.wire(1));
    assert!(text(&out.stdout).contains("\r\n.dot line\r\n"));
    assert!(text(&out.stderr).contains(&mb.summary_line()));

    // TOP 2 0: the headers and the blank line.
    let out = ep.login(ep.plain, &["--top", "2", "0"]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    let wire = mb.wire(2);
    let headers = &wire[..wire.find("\r\n\r\n").unwrap() + 4];
    assert_eq!(text(&out.stdout), headers);

    // A message that does not exist: logged in, but the requested command failed.
    let out = ep.login(ep.plain, &["--retr", "9", "--json"]);
    assert_eq!(code(&out), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["logged_in"], true);
    assert_eq!(v["failure"]["stage"], "transaction");
}

#[test]
fn password_sources() {
    let Some(d) = dovecot(Mailbox::standard()) else {
        return;
    };
    let ep = &d.endpoint;
    let file = dovecot::path_in(&d, "pw.txt");
    std::fs::write(
        &file,
        format!("{}\nsecond line ignored\n", ep.mailbox.password),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    // --password-file wins over the environment.
    let out = ep.login_with(ep.plain, &["--password-file", f], |c| {
        c.env("MAILTOOL_PASSWORD", "not-this-one");
    });
    assert_logged_in(ep, &out);
    let out = ep.login_with(ep.plain, &["--password-file", f], |_| {});
    assert_logged_in(ep, &out);
    // The environment alone.
    assert_logged_in(ep, &ep.login(ep.plain, &[]));
    // A missing file is an error (2), not a fallback.
    let out = ep.login(ep.plain, &["--password-file", "/nonexistent/pw"]);
    assert_eq!(code(&out), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/pw"));
}

#[test]
fn no_password_without_a_terminal_exits_2() {
    // Nothing needs to listen: the password is needed before connecting.
    let mut cmd = pop_login_command(closed_port(), "UserID", &[]);
    let out = run(&mut cmd, b"");
    assert_eq!(code(&out), Some(2), "{}", all_output(&out));
    let err = text(&out.stderr);
    assert!(err.contains("no password"), "{err}");
    assert!(err.contains("--password-file"), "{err}");
}

#[test]
fn wrong_port_exits_2() {
    let addr = closed_port();
    let mut cmd = pop_login_command(addr, "UserID", &[]);
    cmd.env("MAILTOOL_PASSWORD", "x-secret-x");
    let out = run(&mut cmd, b"");
    assert_eq!(code(&out), Some(2), "{}", all_output(&out));
    assert!(
        text(&out.stderr).contains("Connection refused"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).is_empty());

    let mut cmd = pop_login_command(addr, "UserID", &["--json"]);
    cmd.env("MAILTOOL_PASSWORD", "x-secret-x");
    let out = run(&mut cmd, b"");
    assert_eq!(code(&out), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["failure"]["stage"], "connect");
    assert_eq!(v["failure"]["kind"], "connection");
    assert!(!all_output(&out).contains("x-secret-x"));
}

#[test]
fn a_port_that_speaks_smtp_exits_2() {
    let (addr, seen) = scripted("220 mail.example1.com ESMTP\r\n", |_| None);
    let mut cmd = pop_login_command(addr, "UserID", &[]);
    cmd.env("MAILTOOL_PASSWORD", "x-secret-x");
    let out = run(&mut cmd, b"");
    assert_eq!(code(&out), Some(2), "{}", all_output(&out));
    assert!(
        text(&out.stderr).contains("220 mail.example1.com"),
        "{}",
        text(&out.stderr)
    );
    // It never got as far as the credentials.
    assert!(
        !seen
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("USER") || l.starts_with("PASS"))
    );
}

#[test]
fn a_silent_server_times_out_with_2() {
    let (addr, _seen) = scripted("", |_| None);
    let mut cmd = pop_login_command(addr, "UserID", &["--timeout", "300ms"]);
    cmd.env("MAILTOOL_PASSWORD", "x-secret-x");
    let out = run(&mut cmd, b"");
    assert_eq!(code(&out), Some(2), "{}", all_output(&out));
    assert!(
        text(&out.stderr).contains("timed out"),
        "{}",
        text(&out.stderr)
    );
}

/// The seed's telnet check, replayed by a scripted Qpopper 4.0.3: its reply to PASS is the
/// summary, so no STAT is sent, and the session ends with QUIT.
#[test]
fn qpopper_reply_is_the_summary() {
    let (addr, seen) = scripted(
        "+OK Qpopper (version 4.0.3) at popserv1 starting.  <12892.1001@popserv1>\r\n",
        |line| {
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            Some(
                match verb.as_str() {
                    "CAPA" => "-ERR Unknown command: \"capa\".\r\n",
                    "USER" => "+OK Password required for UserID.\r\n",
                    "PASS" => "+OK UserID has 1 visible message (0 hidden) in 874 octets.\r\n",
                    "QUIT" => "+OK Pop server at popserv1 signing off.\r\n",
                    _ => "-ERR unexpected\r\n",
                }
                .to_string(),
            )
        },
    );
    let mut cmd = pop_login_command(addr, "UserID", &[]);
    cmd.env("MAILTOOL_PASSWORD", "Password");
    let out = run(&mut cmd, b"");
    assert_eq!(code(&out), Some(0), "{}", all_output(&out));
    assert_eq!(
        text(&out.stdout),
        "UserID has 1 visible message (0 hidden) in 874 octets\n"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec!["CAPA", "USER UserID", "PASS Password", "QUIT"],
        "commands sent"
    );
}

/// A login refused because the mailbox is locked is not an authentication failure.
#[test]
fn in_use_is_not_an_auth_failure() {
    let (addr, seen) = scripted("+OK ready <1.2@h>\r\n", |line| {
        Some(
            match line.split(' ').next().unwrap_or("") {
                "USER" => "+OK\r\n",
                "PASS" => "-ERR [IN-USE] Mailbox locked by another session\r\n",
                "QUIT" => "+OK bye\r\n",
                _ => "-ERR no\r\n",
            }
            .to_string(),
        )
    });
    let mut cmd = pop_login_command(addr, "UserID", &["--json"]);
    cmd.env("MAILTOOL_PASSWORD", "pw-in-use");
    let out = run(&mut cmd, b"");
    assert_eq!(code(&out), Some(2), "{}", all_output(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["failure"]["kind"], "server");
    assert_eq!(
        v["failure"]["server_text"],
        "-ERR [IN-USE] Mailbox locked by another session"
    );
    assert_eq!(
        seen.lock().unwrap().last().map(String::as_str),
        Some("QUIT")
    );
}
