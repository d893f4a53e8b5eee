//! Mail that receivers trust, and forgeries refused: DKIM signing of our users' mail,
//! SPF/DKIM/DMARC checks of everyone else's, Authentication-Results, against an
//! implementation we did not write: dkimpy (Debian's python3-dkim) signs the inbound test
//! messages and verifies what we sign, with its DNS lookups going to the in-process test DNS
//! server that also answers `serve`.

mod common;

use common::wait_for;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::dns::{Rec, TestDns};
use common::server::{Server, Smtp, add_user, far_server, free_port, ip, seed_root, temp_root};

/// Debian's interpreter: dkimpy, dnspython and PyNaCl are its packages (a python3 earlier on
/// PATH, such as pyenv's, does not see them).
const PY: &str = "/usr/bin/python3";

fn have_dkimpy() -> bool {
    let ok = Command::new(PY)
        .args(["-c", "import dkim, dns.resolver, nacl"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        common::skip::skip(
            "dkimpy is not installed (apt-get install python3-dkim python3-dnspython python3-nacl)",
        );
    }
    ok
}

/// Runs a dkimpy script with `args`, `stdin` on its standard input; returns stdout.
fn python(script: &str, args: &[&str], stdin: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new(PY)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// dkimpy signs stdin with KEY as SELECTOR._domainkey.DOMAIN; prints the signed message.
const SIGN: &str = r#"
import sys, dkim
key, sel, dom = sys.argv[1:4]
msg = sys.stdin.buffer.read()
sig = dkim.sign(msg, sel.encode(), dom.encode(), open(key, "rb").read(),
                include_headers=[b"from", b"to", b"subject", b"date"])
sys.stdout.buffer.write(sig + msg)
"#;

/// dkimpy verifies every signature of stdin, asking the DNS server at 127.0.0.1:PORT;
/// prints one "d=… s=… a=… pass|fail" line per signature.
const VERIFY: &str = r#"
import sys, dkim, dns.resolver, dns.message
port = int(sys.argv[1])
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.port = port
def dnsfunc(name, timeout=5):
    try:
        a = r.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
    except Exception:
        return b""
    return b"".join(b"".join(rd.strings) for rd in a)
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
n = len([h for h in d.headers if h[0].lower() == b"dkim-signature"])
for i in range(n):
    try:
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
    except dkim.ValidationError:
        ok = False
    tags = dkim.util.parse_tag_value(
        [h for h in d.headers if h[0].lower() == b"dkim-signature"][i][1])
    print("d=%s s=%s a=%s %s" % (tags[b"d"].decode(), tags[b"s"].decode(),
                                 tags[b"a"].decode(), "pass" if ok else "fail"))
"#;

/// `mailtool dkim keygen`: the key file (as `[dkim]` names it under the root, and on this
/// host) and the TXT record's text (strings joined). The key's group is the server's, so a
/// mailtool.toml saying `group = "nogroup"` is written first.
fn keygen(root: &Path, domain: &str, selector: &str, alg: &str) -> (String, String, String) {
    let etc = root.join("etc/mail");
    fs::create_dir_all(&etc).unwrap();
    if !etc.join("mailtool.toml").exists() {
        fs::write(
            etc.join("mailtool.toml"),
            "user = \"nobody\"\ngroup = \"nogroup\"\n",
        )
        .unwrap();
    }
    let out = common::run(
        common::mailtool().arg("--root").arg(root).args([
            "dkim",
            "keygen",
            domain,
            selector,
            "--algorithm",
            alg,
        ]),
        b"",
    );
    assert!(
        out.status.success(),
        "keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let prefix = format!("{selector}._domainkey.{domain}. IN TXT ");
    let strings = line
        .trim_end()
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("record line: {line}"));
    // "…" "…": each string at most 255 bytes.
    let parts: Vec<&str> = strings
        .split("\" \"")
        .map(|p| p.trim_matches('"'))
        .collect();
    assert!(parts.iter().all(|p| p.len() <= 255), "{line}");
    let text = parts.concat();
    assert!(
        text.starts_with(&format!(
            "v=DKIM1; k={}; p=",
            if alg == "rsa" { "rsa" } else { "ed25519" }
        )),
        "{text}"
    );
    let in_root = format!("/etc/mail/dkim/{domain}.{selector}.key");
    let key = root.join(&in_root[1..]).display().to_string();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = fs::metadata(&key).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o640, "{key}");
    if unsafe_is_root() {
        assert_eq!(md.uid(), 0, "{key}");
        let nogroup = fs::metadata("/etc/group").is_ok()
            && fs::read_to_string("/etc/group")
                .unwrap()
                .lines()
                .any(|l| l.starts_with(&format!("nogroup:x:{}:", md.gid())));
        assert!(nogroup, "{key} is not in the server's group");
    }
    (in_root, key, text)
}

fn unsafe_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The messages in an mbox, split on its From_ lines.
fn mbox_messages(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for line in text.split_inclusive('\n') {
        if line.starts_with("From ") {
            out.push(String::new());
        } else if let Some(m) = out.last_mut() {
            m.push_str(line);
        }
    }
    out
}

/// The header section of a message, unfolded, one field per line.
fn header_fields(msg: &str) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    for line in msg.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(f) = fields.last_mut() {
                f.push(' ');
                f.push_str(line.trim());
            }
        } else {
            fields.push(line.to_string());
        }
    }
    fields
}

fn auth_results(msg: &str) -> Vec<String> {
    header_fields(msg)
        .into_iter()
        .filter(|f| {
            f.to_ascii_lowercase()
                .starts_with("authentication-results:")
        })
        .collect()
}

fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// The inbound side: the seed's setup (example1.com's mail goes to the local user
/// `example`), delivering at once, checking with the test DNS.
fn inbound(dns: &TestDns, verify: &str) -> (tempfile::TempDir, Server) {
    let r = temp_root();
    seed_root(r.path());
    add_user(r.path(), "example", "pw");
    let s = Server::start(
        r.path(),
        &format!(
            "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
             [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nshutdown_grace = \"1s\"\n\
             [dns]\n{}\ntimeout = \"1s\"\n\
             [verify]\n{verify}\n\
             [queue]\nmin_backoff = \"1s\"\n",
            dns.config_servers()
        ),
    );
    (r, s)
}

/// Sends `msg` from 127.0.0.9 (a stranger: no AUTH, not loopback, not in the seed's maps)
/// with HELO `helo` and MAIL FROM `from`; returns the reply to the dot.
fn send_from_outside(s: &Server, helo: &str, from: &str, msg: &str) -> String {
    let (mut c, g) = Smtp::open(s.smtp(), ip("127.0.0.9"));
    assert!(g.starts_with("220"), "{g}");
    assert!(c.cmd(&format!("EHLO {helo}")).starts_with("250"));
    let r = c.mail(from, &["someone@example1.com"], &crlf(msg));
    c.cmd("QUIT");
    r
}

const EXT_KEY_SELECTOR: &str = "sel";

/// SPF, DKIM and DMARC of the sending domains the inbound tests use.
fn outside_records(ext_dkim: &str) -> Vec<Rec> {
    vec![
        // ext.test: everything in order, p=reject.
        Rec::txt("ext.test", "v=spf1 ip4:127.0.0.9 -all"),
        Rec::txt("_dmarc.ext.test", "v=DMARC1; p=reject"),
        Rec::txt(&format!("{EXT_KEY_SELECTOR}._domainkey.ext.test"), ext_dkim),
        Rec::txt("client.ext.test", "v=spf1 ip4:127.0.0.9 -all"),
        // rej.test: p=reject, and this host is not allowed to send for it.
        Rec::txt("rej.test", "v=spf1 ip4:192.0.2.1 -all"),
        Rec::txt("_dmarc.rej.test", "v=DMARC1; p=reject"),
        // none.test: p=none, failing too.
        Rec::txt("none.test", "v=spf1 ip4:192.0.2.1 -all"),
        Rec::txt("_dmarc.none.test", "v=DMARC1; p=none"),
        // loop.test: an SPF include loop, which must end in permerror, not a hang.
        Rec::txt("loop.test", "v=spf1 include:loop.test -all"),
        Rec::txt("_dmarc.loop.test", "v=DMARC1; p=none"),
    ]
}

fn message(from: &str, subject: &str, body: &str) -> String {
    format!(
        "From: Sender <{from}>\r\nTo: someone@example1.com\r\nSubject: {subject}\r\n\
         Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@test>\r\n\r\n{body}\r\n"
    )
}

#[test]
fn inbound_mail_is_judged_by_spf_dkim_and_dmarc() {
    if !have_dkimpy() {
        return;
    }
    let keys = temp_root();
    let (_, ext_key, ext_text) = keygen(keys.path(), "ext.test", EXT_KEY_SELECTOR, "rsa");
    let dns = TestDns::start(&outside_records(&ext_text));
    let (r, s) = inbound(&dns, "");
    let mbox = r.path().join("var/mail/example");
    let sign = |msg: &str| {
        python(
            SIGN,
            &[&ext_key, EXT_KEY_SELECTOR, "ext.test"],
            msg.as_bytes(),
        )
    };

    // 1. All pass: delivered with spf=pass, dkim=pass, dmarc=pass.
    let signed = sign(&message("alice@ext.test", "allpass", "hello"));
    let reply = send_from_outside(&s, "client.ext.test", "alice@ext.test", &signed);
    assert!(reply.starts_with("250"), "{reply}\n{}", s.log());

    // 2. The body changed after signing: dkim=fail, but DMARC passes through aligned SPF.
    let tampered = sign(&message("alice@ext.test", "tampered", "original body"))
        .replace("original body", "changed body");
    let reply = send_from_outside(&s, "client.ext.test", "alice@ext.test", &tampered);
    assert!(reply.starts_with("250"), "{reply}");

    // 3. p=reject, SPF fails, no signature: refused at the end of DATA.
    let reply = send_from_outside(
        &s,
        "client.ext.test",
        "forger@rej.test",
        &message("ceo@rej.test", "forged", "pay this invoice"),
    );
    assert!(reply.starts_with("550 5.7.1"), "{reply}");
    assert!(
        reply.contains("DMARC") && reply.contains("rej.test"),
        "{reply}"
    );

    // 4. p=none, failing: delivered and tagged.
    let reply = send_from_outside(
        &s,
        "client.ext.test",
        "x@none.test",
        &message("x@none.test", "pnone", "hi"),
    );
    assert!(reply.starts_with("250"), "{reply}");

    // 5. A forged Authentication-Results claiming our authserv-id is removed; one from
    //    another host stays.
    let forged = format!(
        "Authentication-Results: mail.example1.com; dkim=pass header.d=bank.example\r\n\
         Authentication-Results: other.example; spf=pass\r\n{}",
        message("alice@ext.test", "forgedar", "trust me")
    );
    let reply = send_from_outside(&s, "client.ext.test", "alice@ext.test", &forged);
    assert!(reply.starts_with("250"), "{reply}");

    // 6. An SPF include loop: permerror, and the message is not refused for it.
    let reply = send_from_outside(
        &s,
        "client.ext.test",
        "x@loop.test",
        &message("x@loop.test", "spfloop", "hi"),
    );
    assert!(reply.starts_with("250"), "{reply}");

    let msgs = wait_for("five deliveries", || {
        let m = mbox_messages(&mbox);
        (m.len() >= 5).then_some(m)
    });
    assert_eq!(msgs.len(), 5, "{msgs:#?}");
    let find = |subject: &str| -> &String {
        msgs.iter()
            .find(|m| m.contains(&format!("Subject: {subject}")))
            .unwrap_or_else(|| panic!("no {subject} in {msgs:#?}"))
    };

    let ar = auth_results(find("allpass"));
    assert_eq!(ar.len(), 1, "{ar:?}");
    let ar = &ar[0];
    assert!(
        ar.starts_with("Authentication-Results: mail.example1.com;"),
        "{ar}"
    );
    assert!(
        ar.contains("spf=pass") && ar.contains("smtp.mailfrom=alice@ext.test"),
        "{ar}"
    );
    // dkimpy's signature carries i=@ext.test, which the result names (RFC 8601 §2.7.1).
    assert!(
        ar.contains("dkim=pass")
            && (ar.contains("header.i=@ext.test") || ar.contains("header.d=ext.test")),
        "{ar}"
    );
    assert!(
        ar.contains("dmarc=pass") && ar.contains("header.from=ext.test"),
        "{ar}"
    );
    // The field goes above our Received:, as trace fields are prepended.
    let fields = header_fields(find("allpass"));
    let at = |p: &str| fields.iter().position(|f| f.starts_with(p));
    let (ar_at, received_at) = (
        at("Authentication-Results:"),
        at("Received: from client.ext.test"),
    );
    assert!(ar_at.is_some() && received_at.is_some(), "{fields:?}");
    assert!(ar_at < received_at, "{fields:?}");

    let ar = &auth_results(find("tampered"))[0];
    assert!(ar.contains("dkim=fail"), "{ar}");
    assert!(ar.contains("spf=pass"), "{ar}");
    assert!(ar.contains("dmarc=pass"), "{ar}");

    assert!(!msgs.iter().any(|m| m.contains("pay this invoice")));

    let ar = &auth_results(find("pnone"))[0];
    assert!(ar.contains("spf=fail") && ar.contains("dmarc=fail"), "{ar}");
    assert!(ar.contains("policy.dmarc=none"), "{ar}");
    assert!(ar.contains("dkim=none"), "{ar}");

    let ars = auth_results(find("forgedar"));
    assert_eq!(ars.len(), 2, "{ars:?}");
    assert!(
        ars.iter().any(|a| a.contains("other.example; spf=pass")),
        "{ars:?}"
    );
    assert!(!ars.iter().any(|a| a.contains("bank.example")), "{ars:?}");

    let ar = &auth_results(find("spfloop"))[0];
    assert!(ar.contains("spf=permerror"), "{ar}");

    let log = s.log();
    assert!(log.contains("refused: 550 5.7.1"), "{log}");
    assert!(log.contains("removed 1 Authentication-Results"), "{log}");
    s.stop();
}

#[test]
fn dns_errors_never_refuse_and_our_own_users_are_not_judged() {
    let dns = TestDns::start(&[
        // Every lookup for the sender's domain fails: temperror.
        Rec::servfail("tmp.test"),
        Rec::servfail("_dmarc.tmp.test"),
        Rec::txt("rej.test", "v=spf1 ip4:192.0.2.1 -all"),
        Rec::txt("_dmarc.rej.test", "v=DMARC1; p=reject"),
    ]);
    let (r, s) = inbound(&dns, "spf = \"enforce\"\ndkim = \"enforce\"");
    let mbox = r.path().join("var/mail/example");
    let reply = send_from_outside(
        &s,
        "client.tmp.test",
        "x@tmp.test",
        &message("x@tmp.test", "temperror", "hi"),
    );
    assert!(reply.starts_with("250"), "{reply}\n{}", s.log());
    // SPF enforce refuses a hard SPF failure on its own (DMARC would too).
    let reply = send_from_outside(
        &s,
        "client.tmp.test",
        "x@rej.test",
        &message("y@tmp.test", "spffail", "hi"),
    );
    assert!(reply.starts_with("550 5.7.23"), "{reply}");

    // Our own user (AUTH) sends with a From: of a p=reject domain that does not list us: not
    // judged, not refused, no Authentication-Results.
    let (mut c, _) = Smtp::open(s.smtp(), ip("127.0.0.9"));
    c.cmd("EHLO laptop.example");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(b"\0example\0pw");
    let a = c.cmd(&format!("AUTH PLAIN {b64}"));
    assert!(a.starts_with("235"), "{a}");
    let body = crlf(&message("me@rej.test", "ownuser", "mine"));
    let reply = c.mail("me@rej.test", &["someone@example1.com"], &body);
    assert!(reply.starts_with("250"), "{reply}");
    c.cmd("QUIT");

    let msgs = wait_for("two deliveries", || {
        let m = mbox_messages(&mbox);
        (m.len() >= 2).then_some(m)
    });
    let tmp = msgs
        .iter()
        .find(|m| m.contains("Subject: temperror"))
        .unwrap();
    let ar = &auth_results(tmp)[0];
    assert!(ar.contains("spf=temperror"), "{ar}");
    let own = msgs
        .iter()
        .find(|m| m.contains("Subject: ownuser"))
        .unwrap();
    assert!(auth_results(own).is_empty(), "{own}");
    s.stop();
}

#[test]
fn our_users_mail_reaches_the_mx_signed_and_dkimpy_verifies_it() {
    if !have_dkimpy() {
        return;
    }
    // The receiving side, on 127.0.0.2: keeps what it accepts in its spool.
    let port = free_port("127.0.0.2");
    let (_fr, far) = far_server(port);

    // The sending side signs example1.com's mail with two keys (a rotation: RSA and Ed25519).
    let nr = temp_root();
    seed_root(nr.path());
    add_user(nr.path(), "example", "pw");
    let (rsa_key, _, rsa_text) = keygen(nr.path(), "example1.com", "s2026", "rsa");
    let (ed_key, _, ed_text) = keygen(nr.path(), "example1.com", "e2026", "ed25519");
    let dns = TestDns::start(&[
        Rec::mx("far.test", 10, "mx.far.test"),
        Rec::a("mx.far.test", "127.0.0.2"),
        Rec::txt("s2026._domainkey.example1.com", &rsa_text),
        Rec::txt("e2026._domainkey.example1.com", &ed_text),
    ]);
    let near = Server::start(
        nr.path(),
        &format!(
            "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
             [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = [\"127.0.0.1:0\"]\nshutdown_grace = \"1s\"\n\
             [dns]\n{}\ntimeout = \"1s\"\n\
             [dkim]\nsign = [{{ domain = \"example1.com\", selector = \"s2026\", key = \"{rsa_key}\" }},\n\
                     {{ domain = \"example1.com\", selector = \"e2026\", key = \"{ed_key}\" }}]\n\
             [queue]\nremote_port = {port}\nmin_backoff = \"1s\"\n",
            dns.config_servers()
        ),
    );
    let sub = near.submission.expect("submission listener");
    let (mut c, _) = Smtp::open(sub, ip("127.0.0.1"));
    c.cmd("EHLO laptop.example");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(b"\0example\0pw");
    assert!(c.cmd(&format!("AUTH PLAIN {b64}")).starts_with("235"));
    let body = crlf(
        "From: Example <example@example1.com>\nTo: bob@far.test\nSubject: signed\n\
         Date: Mon, 07 Dec 2026 10:00:00 +0000\nMessage-ID: <signed@example1.com>\n\n\
         Line one.\n\n\n",
    );
    let reply = c.mail("example@example1.com", &["bob@far.test"], &body);
    assert!(reply.starts_with("250"), "{reply}");
    c.cmd("QUIT");

    // What the MX stored, exactly as it arrived.
    let spool = far.spool();
    let df = wait_for("the message at the MX", || {
        fs::read_dir(&spool).ok()?.flatten().find_map(|e| {
            let n = e.file_name().into_string().ok()?;
            n.starts_with("df").then(|| fs::read(e.path()).unwrap())
        })
    });
    let text = String::from_utf8_lossy(&df).into_owned();
    let sigs: Vec<String> = header_fields(&text)
        .into_iter()
        .filter(|f| f.starts_with("DKIM-Signature:"))
        .collect();
    assert_eq!(sigs.len(), 2, "{text}");
    assert!(
        sigs.iter().all(|s| s.contains("c=relaxed/relaxed")),
        "{sigs:?}"
    );
    // From: is oversigned: a second From: added in transit would break the signature.
    assert!(
        sigs.iter()
            .all(|s| s.to_ascii_lowercase().contains("from:from")),
        "{sigs:?}"
    );
    let verdicts = python(
        VERIFY,
        &[&dns.addr.port().to_string()],
        crlf(&text).as_bytes(),
    );
    let mut lines: Vec<&str> = verdicts.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "d=example1.com s=e2026 a=ed25519-sha256 pass",
            "d=example1.com s=s2026 a=rsa-sha256 pass"
        ],
        "{text}"
    );
    // A message tampered with after signing fails dkimpy's check: the check can fail.
    let tampered = crlf(&text).replace("Line one.", "Line 1.");
    let verdicts = python(VERIFY, &[&dns.addr.port().to_string()], tampered.as_bytes());
    assert_eq!(verdicts.matches(" fail").count(), 2, "{verdicts}");
    assert!(
        near.log()
            .contains("DKIM-signed d=example1.com s=s2026, d=example1.com s=e2026")
    );

    // A bounce the server writes itself is signed too: MAILER-DAEMON@mail.example1.com takes
    // the key of its parent domain. The MX refuses nobody@far.test; the notice comes back to
    // the sender's local mailbox, and dkimpy verifies it there.
    let (mut c, _) = Smtp::open(sub, ip("127.0.0.1"));
    c.cmd("EHLO laptop.example");
    assert!(c.cmd(&format!("AUTH PLAIN {b64}")).starts_with("235"));
    let reply = c.mail(
        "example@example1.com",
        &["nobody@far.test"],
        &crlf("From: example@example1.com\nTo: nobody@far.test\nSubject: lost\n\nhello\n"),
    );
    assert!(reply.starts_with("250"), "{reply}");
    c.cmd("QUIT");
    let mbox = nr.path().join("var/mail/example");
    let dsn = wait_for("the bounce", || {
        mbox_messages(&mbox)
            .into_iter()
            .find(|m| m.contains("MAILER-DAEMON@mail.example1.com"))
    });
    // The mbox's own lines (Return-Path, >From quoting) are not part of what was signed.
    let dsn: String = dsn
        .lines()
        .filter(|l| !l.starts_with("Return-Path:"))
        .map(|l| {
            format!(
                "{}\n",
                l.strip_prefix('>')
                    .filter(|r| r.starts_with("From "))
                    .unwrap_or(l)
            )
        })
        .collect();
    let verdicts = python(
        VERIFY,
        &[&dns.addr.port().to_string()],
        crlf(&dsn).as_bytes(),
    );
    assert_eq!(verdicts.matches(" pass").count(), 2, "{verdicts}\n{dsn}");
    near.stop();
    far.stop();
}

#[test]
fn bad_keys_and_duplicate_domains_are_refused_at_start() {
    let r = temp_root();
    seed_root(r.path());
    let etc = r.path().join("etc/mail");
    let start = |dkim: &str| -> (i32, String) {
        fs::write(
            etc.join("mailtool.toml"),
            format!(
                "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
                 [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\n[pop3]\nlisten = []\n\
                 [dkim]\n{dkim}\n"
            ),
        )
        .unwrap();
        let out = common::mailtool()
            .arg("--root")
            .arg(r.path())
            .arg("serve")
            .env_remove("MAILTOOL_CONFIG")
            .env_remove("MAILTOOL_ROOT")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = start(
        "sign = [{ domain = \"example1.com\", selector = \"s\", key = \"/etc/mail/dkim/none.key\" }]",
    );
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("dkim/none.key"), "{err}");
    fs::create_dir_all(etc.join("dkim")).unwrap();
    fs::write(
        etc.join("dkim/bad.key"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let (code, err) = start(
        "sign = [{ domain = \"example1.com\", selector = \"s\", key = \"/etc/mail/dkim/bad.key\" }]",
    );
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("dkim/bad.key"), "{err}");
    let (code, err) = start(
        "sign = [{ domain = \"example1.com\", selector = \"s\", key = \"/k\" },\n\
         { domain = \"Example1.com\", selector = \"s\", key = \"/k\" }]",
    );
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("twice"), "{err}");

    // keygen: a bad domain or selector is a usage error; an existing key is never replaced.
    let keygen = |args: &[&str]| -> (i32, String) {
        let out = common::run(
            common::mailtool()
                .arg("--root")
                .arg(r.path())
                .args(["dkim", "keygen"])
                .args(args),
            b"",
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    fs::write(
        etc.join("mailtool.toml"),
        "user = \"nobody\"\ngroup = \"nogroup\"\n",
    )
    .unwrap();
    let (code, err) = keygen(&["nodots", "s"]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("is not a domain"), "{err}");
    let (code, err) = keygen(&["example1.com", "bad selector"]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("is not a selector"), "{err}");
    let (code, err) = keygen(&["example1.com", "s", "--algorithm", "ed25519"]);
    assert_eq!(code, 0, "{err}");
    let key = etc.join("dkim/example1.com.s.key");
    let before = fs::read(&key).unwrap();
    let (code, err) = keygen(&["example1.com", "s"]);
    assert_eq!(code, 73, "{err}");
    assert!(
        err.contains("example1.com.s.key") && err.contains("exists"),
        "{err}"
    );
    assert_eq!(fs::read(&key).unwrap(), before);
}
