//! `mailtool doctor` (issue 6): stale maps and `--fix`, permissions, the certificate, DNS, the
//! listeners, and the open-relay self-test from an untrusted loopback address.

mod common;

use std::fs;
use std::path::Path;

use common::dns::{Rec, TestDns};
use common::server::{Server, build_map, seed_root, temp_root as root};
use serde_json::Value;

fn doctor(root: &Path, args: &[&str]) -> (i32, Value) {
    let out = common::run(
        common::mailtool()
            .arg("--root")
            .arg(root)
            .arg("doctor")
            .arg("--json")
            .args(args),
        b"",
    );
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap_or(-1), v)
}

fn check<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {v:#}"))
}

fn config(dns: &TestDns, cert: &Path, key: &Path) -> String {
    format!(
        "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
         [smtp]\nlisten = [\"127.0.0.1:{}\"]\nsubmission = []\nshutdown_grace = \"1s\"\n\
         [pop3]\nlisten = [\"127.0.0.1:{}\"]\n\
         [tls]\ncert = \"{}\"\nkey = \"{}\"\n\
         [dns]\n{}\ntimeout = \"500ms\"\n",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        common::server::free_port("127.0.0.1"),
        cert.display(),
        key.display(),
        dns.config_servers()
    )
}

#[test]
fn stale_maps_are_reported_and_fixed() {
    let r = root();
    seed_root(r.path());
    // The source changes after the build: sendmail's classic "forgot to run make".
    let access = r.path().join("etc/mail/access");
    let mut text = fs::read_to_string(&access).unwrap();
    text.push_str("spam.test\tREJECT\n");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fs::write(&access, text).unwrap();
    let (code, v) = doctor(r.path(), &["--offline"]);
    assert!(code >= 1, "{v:#}");
    assert_eq!(check(&v, "map access")["status"], "warn", "{v:#}");
    assert!(
        check(&v, "map access")["fix"]
            .as_str()
            .unwrap()
            .contains("makemap hash")
    );
    assert_eq!(check(&v, "map virtusertable")["status"], "pass");
    let (_, v) = doctor(r.path(), &["--offline", "--fix"]);
    assert_eq!(check(&v, "map access")["status"], "pass", "{v:#}");
    assert!(
        check(&v, "map access")["detail"]
            .as_str()
            .unwrap()
            .contains("rebuilt")
    );
    let out = common::run(
        common::mailtool()
            .args(["makemap", "-q", "spam.test", "hash"])
            .arg(r.path().join("etc/mail/access")),
        b"",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "REJECT\n");
    // Without a certificate, TLS is a warning with a fix.
    assert_eq!(check(&v, "tls certificate")["status"], "warn");
}

#[test]
fn a_healthy_server_passes_and_an_open_relay_fails() {
    let r = root();
    seed_root(r.path());
    let ck = rcgen::generate_simple_self_signed(vec!["mail.example1.com".into()]).unwrap();
    let (cert, key) = (
        r.path().join("etc/mail/cert.pem"),
        r.path().join("etc/mail/key.pem"),
    );
    fs::write(&cert, ck.cert.pem()).unwrap();
    fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    // The seed's domains publish SPF covering the host and DMARC, as a healthy site does.
    let dns = TestDns::start(&[
        Rec::a("mail.example1.com", "127.0.0.1"),
        Rec::ptr("127.0.0.1", "mail.example1.com"),
        Rec::txt("example1.com", "v=spf1 a:mail.example1.com -all"),
        Rec::txt("_dmarc.example1.com", "v=DMARC1; p=reject"),
        Rec::txt("example2.com", "v=spf1 ip4:127.0.0.1 -all"),
        Rec::txt("_dmarc.example2.com", "v=DMARC1; p=none"),
    ]);
    let s = Server::start(
        r.path(),
        &config(
            &dns,
            Path::new("/etc/mail/cert.pem"),
            Path::new("/etc/mail/key.pem"),
        ),
    );
    let (code, v) = doctor(r.path(), &[]);
    for name in [
        "config",
        "hostname DNS",
        "tls certificate",
        "open relay",
        "queue",
        "spool",
        "mailboxes",
        "map permissions",
        "SPF example1.com",
        "DMARC example1.com",
        "SPF example2.com",
        "DMARC example2.com",
    ] {
        assert_eq!(check(&v, name)["status"], "pass", "{name}: {v:#}");
    }
    let smtp = format!("SMTP {}", s.smtp());
    assert_eq!(check(&v, &smtp)["status"], "pass", "{v:#}");
    assert!(
        check(&v, &smtp)["detail"]
            .as_str()
            .unwrap()
            .starts_with("220 ")
    );
    // The POP3 listener greets with +OK.
    let pop3 = format!("POP3 {}", s.pop3.expect("POP3 listener"));
    assert_eq!(check(&v, &pop3)["status"], "pass", "{v:#}");
    assert!(
        check(&v, &pop3)["detail"]
            .as_str()
            .unwrap()
            .starts_with("+OK ")
    );
    assert_eq!(code, 0, "{v:#}");

    // A careless access entry lets "the office" (127.0.0.0/8 here) relay: doctor sees it.
    let mut access = fs::read(r.path().join("etc/mail/access")).unwrap();
    access.extend_from_slice(b"Connect:127\tRELAY\n");
    build_map(r.path(), "access", "", &access);
    common::server::readable(r.path());
    let (code, v) = doctor(r.path(), &[]);
    assert_eq!(check(&v, "open relay")["status"], "fail", "{v:#}");
    assert_eq!(code, 2);
    s.stop();
    // Nothing listens now: the listener check fails with a fix.
    let (_, v) = doctor(r.path(), &[]);
    assert_eq!(check(&v, &smtp)["status"], "fail");
}

/// Issue 12 (25): one map is "1 map", not "1 maps".
#[test]
fn one_map_is_singular() {
    let r = root();
    let etc = r.path().join("etc/mail");
    fs::create_dir_all(&etc).unwrap();
    fs::write(
        etc.join("mailtool.toml"),
        "user = \"nobody\"\ngroup = \"nogroup\"\n[smtp]\nlisten = []\nsubmission = []\n\
         [pop3]\nlisten = []\n",
    )
    .unwrap();
    build_map(r.path(), "access", "", b"Connect:127.0.0.1 RELAY\n");
    common::server::readable(r.path());
    let (_, v) = doctor(r.path(), &[]);
    let c = check(&v, "map permissions");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .starts_with("1 map readable by "),
        "{c}"
    );
}

#[test]
fn mail_authentication_records_are_checked_and_what_to_publish_is_said() {
    let r = root();
    seed_root(r.path());
    let etc = r.path().join("etc/mail");
    fs::write(
        etc.join("mailtool.toml"),
        "user = \"nobody\"\ngroup = \"nogroup\"\n",
    )
    .unwrap();
    let keygen = |sel: &str| -> String {
        let out = common::run(
            common::mailtool().arg("--root").arg(r.path()).args([
                "dkim",
                "keygen",
                "example1.com",
                sel,
                "--algorithm",
                "ed25519",
            ]),
            b"",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout).unwrap();
        line.split_once(" IN TXT \"")
            .unwrap()
            .1
            .trim_end()
            .trim_end_matches('"')
            .to_string()
    };
    let good = keygen("s1");
    let _old = keygen("old");
    let other = keygen("other");
    let dns = TestDns::start(&[
        Rec::a("mail.example1.com", "127.0.0.1"),
        Rec::ptr("127.0.0.1", "mail.example1.com"),
        Rec::txt("s1._domainkey.example1.com", &good),
        // "old" is published with another key; "none" is not published at all.
        Rec::txt("old._domainkey.example1.com", &other),
        Rec::txt("example1.com", "v=spf1 ip4:192.0.2.1 -all"),
        Rec::txt("_dmarc.example2.com", "v=DMARC1; p=none"),
    ]);
    fs::write(
        etc.join("mailtool.toml"),
        format!(
            "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
             [dns]\n{}\ntimeout = \"1s\"\n\
             [dkim]\nsign = [{{ domain = \"example1.com\", selector = \"s1\", key = \"/etc/mail/dkim/example1.com.s1.key\" }},\n\
             {{ domain = \"example1.com\", selector = \"old\", key = \"/etc/mail/dkim/example1.com.old.key\" }},\n\
             {{ domain = \"example1.com\", selector = \"other\", key = \"/etc/mail/dkim/example1.com.other.key\" }}]\n",
            dns.config_servers()
        ),
    )
    .unwrap();
    let (_, v) = doctor(r.path(), &[]);
    assert_eq!(
        check(&v, "DKIM s1._domainkey.example1.com")["status"],
        "pass",
        "{v:#}"
    );
    let old = check(&v, "DKIM old._domainkey.example1.com");
    assert_eq!(old["status"], "fail", "{v:#}");
    let fix = old["fix"].as_str().unwrap();
    assert!(
        fix.starts_with("publish old._domainkey.example1.com. IN TXT \"v=DKIM1; k=ed25519; p="),
        "{fix}"
    );
    assert_eq!(
        check(&v, "DKIM other._domainkey.example1.com")["status"],
        "fail",
        "{v:#}"
    );
    let spf = check(&v, "SPF example1.com");
    assert_eq!(spf["status"], "warn", "{v:#}");
    assert!(
        spf["fix"].as_str().unwrap().contains("ip4:127.0.0.1"),
        "{spf:#}"
    );
    let dmarc = check(&v, "DMARC example1.com");
    assert_eq!(dmarc["status"], "warn", "{v:#}");
    assert!(
        dmarc["fix"]
            .as_str()
            .unwrap()
            .contains("_dmarc.example1.com. IN TXT \"v=DMARC1;"),
        "{dmarc:#}"
    );
    assert_eq!(check(&v, "SPF example2.com")["status"], "warn", "{v:#}");
    assert_eq!(check(&v, "DMARC example2.com")["status"], "pass", "{v:#}");
}
