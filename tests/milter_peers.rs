//! Real milters from Debian's packages behind `[[milter]]`, black-box: OpenDKIM signs the
//! mail our server accepts from its own users, and dkimpy (an independent verifier) checks
//! the signature on the message as it was delivered to the mailbox.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::server::{Server, Smtp, add_user, free_port, ip, seed_root, temp_root};
use common::skip::skip;

struct OpenDkim {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for OpenDkim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OpenDkim {
    /// opendkim in the foreground on a free loopback port, signing example1.com with selector
    /// `s1` (a key made by opendkim-genkey); None when OpenDKIM is not installed.
    fn start() -> Option<OpenDkim> {
        let (bin, genkey) = (
            Path::new("/usr/sbin/opendkim"),
            Path::new("/usr/sbin/opendkim-genkey"),
        );
        if !bin.exists() || !genkey.exists() {
            skip("OpenDKIM is not installed (apt-get install opendkim opendkim-tools)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(genkey)
            .args(["-b", "2048", "-d", "example1.com", "-s", "s1", "-D"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "opendkim-genkey: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port("127.0.0.1");
        let conf = dir.path().join("opendkim.conf");
        std::fs::write(
            &conf,
            format!(
                "Syslog no\nBackground no\nMode sv\nDomain example1.com\nSelector s1\n\
                 KeyFile {}\nSocket inet:{port}@127.0.0.1\nCanonicalization relaxed/relaxed\n\
                 InternalHosts 127.0.0.1\nPidFile {}\nRequireSafeKeys false\n",
                dir.path().join("s1.private").display(),
                dir.path().join("pid").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-f")
            .arg("-x")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn opendkim");
        common::wait_for("opendkim to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Some(OpenDkim { port, dir, child })
    }

    /// The p= of the TXT record opendkim-genkey wrote.
    fn public_key(&self) -> String {
        let txt = std::fs::read_to_string(self.dir.path().join("s1.txt")).unwrap();
        let quoted: String = txt
            .split('"')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, s)| s)
            .collect();
        quoted
            .split(';')
            .find_map(|t| t.trim().strip_prefix("p="))
            .unwrap()
            .to_string()
    }
}

/// dkimpy's verdict on `message` with s1._domainkey.example1.com answering `key`.
fn dkimpy_verifies(message: &[u8], key: &str) -> Option<bool> {
    let probe = Command::new("/usr/bin/python3")
        .args(["-c", "import dkim"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        skip("dkimpy is not installed (apt-get install python3-dkim)");
        return None;
    }
    let script = format!(
        "import sys, dkim\nmsg = sys.stdin.buffer.read()\n\
         def dns(name, timeout=5):\n    \
         return b'v=DKIM1; k=rsa; p={key}' if name == b's1._domainkey.example1.com.' else None\n\
         print(dkim.verify(msg, dnsfunc=dns))\n"
    );
    let out = common::run(
        Command::new("/usr/bin/python3").args(["-c", &script]),
        message,
    );
    assert!(
        out.status.success(),
        "dkimpy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).trim() == "True")
}

/// The last message of an mbox, From_ line dropped, `>From` unquoted, lines in CRLF.
fn last_in_mbox(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let last = text.rsplit("\nFrom ").next().unwrap();
    let body = last.split_once('\n').unwrap().1;
    let body = body.strip_suffix('\n').unwrap_or(body);
    body.lines()
        .map(|l| {
            l.strip_prefix('>')
                .filter(|r| r.starts_with("From "))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        .into_bytes()
}

#[test]
fn opendkim_signs_and_dkimpy_verifies_the_delivered_message() {
    let Some(od) = OpenDkim::start() else { return };
    let r = temp_root();
    seed_root(r.path());
    add_user(r.path(), "example", "pw");
    let srv = Server::start(
        r.path(),
        &format!(
            "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
             [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nshutdown_grace = \"1s\"\n\
             [queue]\ndelivery_mode = \"background\"\ninterval = \"0s\"\n\
             [[milter]]\nname = \"opendkim\"\nsocket = \"inet:{}@127.0.0.1\"\n\
             on_failure = \"tempfail\"\n",
            od.port
        ),
    );
    let (mut c, _) = Smtp::open(srv.smtp(), ip("127.0.0.1"));
    c.cmd("EHLO client.example1.com");
    let reply = c.mail(
        "someone@example1.com",
        &["anyone@example1.com"],
        "From: Someone <someone@example1.com>\r\nTo: anyone@example1.com\r\n\
         Subject: signed by OpenDKIM\r\nDate: Tue, 08 Dec 2026 04:00:00 +0000\r\n\
         Message-ID: <opendkim-1@example1.com>\r\n\r\nHello,\r\n\r\nsigned on the way in.\r\n",
    );
    assert!(reply.starts_with("250"), "{reply}");
    c.cmd("QUIT");
    let mbox = r.path().join("var/mail/example");
    common::wait_for("the delivery", || {
        std::fs::read_to_string(&mbox)
            .ok()
            .filter(|t| t.contains("signed on the way in"))
    });
    let msg = last_in_mbox(&mbox);
    let text = String::from_utf8_lossy(&msg);
    assert!(text.contains("DKIM-Signature:"), "{text}");
    assert!(
        text.contains("d=example1.com") && text.contains("s=s1"),
        "{text}"
    );
    let Some(ok) = dkimpy_verifies(&msg, &od.public_key()) else {
        return;
    };
    assert!(ok, "dkimpy does not verify OpenDKIM's signature:\n{text}");
    // A changed body no longer verifies: the check can fail.
    let tampered = text.replace("signed on the way in", "changed on the way");
    assert_eq!(
        dkimpy_verifies(tampered.as_bytes(), &od.public_key()),
        Some(false)
    );
    srv.stop();
    std::thread::sleep(Duration::from_millis(10));
}
