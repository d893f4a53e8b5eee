//! `mailtool passwd` and `mailtool poprelay`, black-box under temp roots; then both against a
//! running server: a user set with passwd logs in with SMTP AUTH, and an address added with
//! poprelay may relay until it is removed. Loopback addresses 127.0.0.2–254 stand in for
//! other hosts.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::dns::TestDns;
use common::server::{Server, Smtp, ip};
use common::*;
use mailtool::maps::store::SqliteMap;
use mailtool::users::authenticate;

/// A temp root with an empty /etc/mail, readable by the user the server drops to.
fn root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(d.path().join("etc/mail")).unwrap();
    d
}

fn tool(root: &Path, args: &[&str], stdin: &[u8]) -> Output {
    run(mailtool().arg("--root").arg(root).args(args), stdin)
}

fn users_map(root: &Path) -> SqliteMap {
    SqliteMap::open(&root.join("etc/mail/users.db")).unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn passwd_sets_lists_and_deletes_users() {
    let r = root();
    let out = tool(r.path(), &["passwd", "Alice"], b"correct horse\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The password is never echoed, on either stream.
    assert!(!text(&out.stdout).contains("horse") && !text(&out.stderr).contains("horse"));
    let db = r.path().join("etc/mail/users.db");
    assert_eq!(
        fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let map = users_map(r.path());
    let stored = String::from_utf8(map.get_many(&[b"alice"]).unwrap()[0].clone().unwrap()).unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(authenticate(&map, "alice", b"correct horse").unwrap());
    assert!(!authenticate(&map, "alice", b"correct horse\n").unwrap());
    assert!(!authenticate(&map, "alice", b"wrong").unwrap());

    // A new password replaces the old one; a second user goes in beside it (CRLF input).
    let out = tool(
        r.path(),
        &["passwd", "alice"],
        b"battery staple\r\nignored\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = tool(r.path(), &["passwd", "bob"], b"b0b");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let map = users_map(r.path());
    assert!(authenticate(&map, "alice", b"battery staple").unwrap());
    assert!(!authenticate(&map, "alice", b"correct horse").unwrap());
    assert!(authenticate(&map, "bob", b"b0b").unwrap());

    let list = json(&tool(r.path(), &["passwd", "--list", "--json"], b""));
    assert_eq!(
        list,
        serde_json::json!([
            {"user": "alice", "scheme": "argon2id", "apop": false},
            {"user": "bob", "scheme": "argon2id", "apop": false},
        ])
    );
    let table = tool(r.path(), &["passwd", "--list"], b"");
    assert_eq!(table.status.code(), Some(0));
    let t = text(&table.stdout);
    assert!(
        t.contains("alice") && t.contains("bob") && t.contains("argon2id"),
        "{t}"
    );
    assert!(!t.contains("$argon2id$"), "hashes are not shown: {t}");

    let out = tool(r.path(), &["passwd", "--delete", "bob"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!authenticate(&users_map(r.path()), "bob", b"b0b").unwrap());
    let out = tool(r.path(), &["passwd", "--delete", "bob"], b"");
    assert_eq!(out.status.code(), Some(67), "{}", text(&out.stderr));
    let list = json(&tool(r.path(), &["passwd", "--list", "--json"], b""));
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[test]
fn passwd_refuses_empty_passwords_and_bad_usage() {
    let r = root();
    for input in [&b""[..], b"\n", b"\r\n"] {
        let out = tool(r.path(), &["passwd", "carol"], input);
        assert_eq!(out.status.code(), Some(65), "{input:?}");
        assert!(
            text(&out.stderr).contains("empty password"),
            "{}",
            text(&out.stderr)
        );
    }
    // Nothing was written: the map was not even created.
    // An APOP secret is kept in the clear after the hash, so it may hold no white space.
    let out = tool(r.path(), &["passwd", "--apop", "carol"], b"two words\n");
    assert_eq!(out.status.code(), Some(65), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("APOP secret"),
        "{}",
        text(&out.stderr)
    );
    assert!(!r.path().join("etc/mail/users.db").exists());
    let list = json(&tool(r.path(), &["passwd", "--list", "--json"], b""));
    assert_eq!(list, serde_json::json!([]));
    // No USER, a second positional (a password on argv), a bad name: usage errors.
    for args in [
        &["passwd"][..],
        &["passwd", "carol", "s3cret"],
        &["passwd", "a b"],
        &["passwd", "--list", "carol"],
    ] {
        let out = tool(r.path(), args, b"pw\n");
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(!r.path().join("etc/mail/users.db").exists());
}

#[test]
fn passwd_imports_shadow_lines() {
    let r = root();
    // `mkpasswd -m sha-512 -S saltsalt password`
    let h6 = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/";
    let shadow = format!(
        "root:*:19000:0:99999:7:::\nDave:{h6}:19000:0:99999:7:::\nlocked:!{h6}:1::\nold:$1$abc$def:1::\n"
    );
    let file = r.path().join("shadow");
    fs::write(&file, shadow).unwrap();
    let out = tool(
        r.path(),
        &["passwd", "--import", file.to_str().unwrap()],
        b"",
    );
    // The MD5 line is reported (exit 65), the good line is imported anyway.
    assert_eq!(out.status.code(), Some(65), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("line 4"),
        "{}",
        text(&out.stderr)
    );
    let map = users_map(r.path());
    assert!(authenticate(&map, "dave", b"password").unwrap());
    assert!(!authenticate(&map, "locked", b"password").unwrap());
    let list = json(&tool(r.path(), &["passwd", "--list", "--json"], b""));
    assert_eq!(
        list,
        serde_json::json!([{"user": "dave", "scheme": "sha512-crypt", "apop": false}])
    );
    let out = tool(
        r.path(),
        &["passwd", "--import", "/nonexistent/shadow"],
        b"",
    );
    assert_eq!(out.status.code(), Some(66));
}

#[test]
fn poprelay_add_list_remove_expire() {
    let r = root();
    let list = || json(&tool(r.path(), &["poprelay", "list", "--json"], b""));
    assert_eq!(list(), serde_json::json!([]));
    let out = tool(
        r.path(),
        &["poprelay", "add", "127.0.0.3", "2001:DB8::1"],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A bad address anywhere in the list: usage error, nothing added.
    let out = tool(
        r.path(),
        &["poprelay", "add", "127.0.0.7", "127.0.0.300"],
        b"",
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("127.0.0.300"));
    let l = list();
    let ips: Vec<&str> = l
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips.len(), 2);
    assert!(
        ips.contains(&"127.0.0.3") && ips.contains(&"2001:db8::1"),
        "{l}"
    );
    for e in l.as_array().unwrap() {
        assert!(
            e["time"].is_u64() && e["age"].is_u64() && e["expires_in"].is_u64(),
            "{e}"
        );
    }
    // The key is the one the relay check looks up: the dotted quad, `ipv6:` + RFC 5952 text.
    let q = run(
        mailtool()
            .args(["makemap", "-q", "ipv6:2001:db8::1", "hash"])
            .arg(r.path().join("etc/mail/popip")),
        b"",
    );
    assert_eq!(q.status.code(), Some(0));

    // A hand-made entry without a time is permanent.
    let mut up = mailtool::maps::store::Updater::open(&r.path().join("etc/mail/popip.db")).unwrap();
    up.add(
        b"127.0.0.8",
        b"RELAY",
        mailtool::maps::store::DupPolicy::Replace,
    )
    .unwrap();
    up.commit().unwrap();
    let table = tool(r.path(), &["poprelay", "list"], b"");
    let t = text(&table.stdout);
    assert!(t.contains("127.0.0.3") && t.contains("permanent"), "{t}");

    let out = tool(r.path(), &["poprelay", "remove", "2001:db8::1"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = tool(r.path(), &["poprelay", "remove", "2001:db8::1"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(list().as_array().unwrap().len(), 2);

    let out = tool(r.path(), &["poprelay", "expire", "--ttl", "15m"], b"");
    assert_eq!(text(&out.stdout), "0 expired entries removed\n");
    // A TTL of zero expires every timed entry; the permanent one stays.
    let out = tool(r.path(), &["poprelay", "expire", "--ttl", "0s"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1 expired entry removed\n");
    assert_eq!(
        list(),
        serde_json::json!([{"ip": "127.0.0.8", "time": null, "age": null, "expires_in": null}])
    );
    let out = tool(r.path(), &["poprelay", "expire", "--ttl", "soon"], b"");
    assert_eq!(out.status.code(), Some(64));
}

fn config(dns: &TestDns) -> String {
    format!(
        "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
         [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nshutdown_grace = \"2s\"\n\
         [dns]\n{}\ntimeout = \"300ms\"\n",
        dns.config_servers()
    )
}

/// EHLO, MAIL and a remote RCPT from `client`; the reply to RCPT.
fn relay_reply(srv: &Server, client: &str) -> String {
    let (mut c, _) = Smtp::open(srv.smtp(), ip(client));
    c.cmd("EHLO x.test");
    c.cmd("MAIL FROM:<a@b.test>");
    c.cmd("RCPT TO:<far@away.test>")
}

/// Asks until the reply starts with `want` (the server notices a changed map within about a
/// second); returns the last reply.
fn relay_until(srv: &Server, client: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = relay_reply(srv, client);
        if r.starts_with(want) || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn server_honours_poprelay_and_passwd() {
    let dns = TestDns::start(&[]);
    let r = root();
    let out = tool(r.path(), &["passwd", "erin"], b"erin-pw\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let srv = Server::start(r.path(), &config(&dns));

    assert!(
        relay_reply(&srv, "127.0.0.3").starts_with("550 5.7.1"),
        "no popip map yet"
    );
    // The map does not exist yet: poprelay creates it (for the server's user when root).
    let out = tool(r.path(), &["poprelay", "add", "127.0.0.3"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        relay_until(&srv, "127.0.0.3", "250"),
        "250 2.1.5 <far@away.test>... Recipient ok"
    );
    assert!(
        relay_reply(&srv, "127.0.0.4").starts_with("550 5.7.1"),
        "only the address added"
    );
    let out = tool(r.path(), &["poprelay", "remove", "127.0.0.3"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(relay_until(&srv, "127.0.0.3", "550").starts_with("550 5.7.1"));

    // The user passwd made logs in with AUTH PLAIN (plain text is allowed on loopback).
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let (mut c, _) = Smtp::open(srv.smtp(), ip("127.0.0.4"));
    c.cmd("EHLO x.test");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64("\0erin\0wrong"))),
        "535 5.7.0 authentication failed"
    );
    let ok = c.cmd(&format!("AUTH PLAIN {}", b64("\0erin\0erin-pw")));
    assert!(ok.starts_with("235"), "{ok}");
    c.cmd("MAIL FROM:<erin@b.test>");
    assert_eq!(
        c.cmd("RCPT TO:<far@away.test>"),
        "250 2.1.5 <far@away.test>... Recipient ok"
    );
    srv.stop();
}
