//! Maps in PostgreSQL and Redis, shared by two `serve` hosts (each with its own `--root`,
//! spool and ports): a private PostgreSQL and redis-server started by the test on free
//! loopback ports. What one host writes (makemap, newaliases, passwd, a POP3 login) the other
//! acts on; a backend that stops gives 451s, never a pass, and is picked up again when it
//! returns. docs/scaling.md.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::dns::TestDns;
use common::postgres::Postgres;
use common::redis::Redis;
use common::server::{Server, Smtp, ip};
use common::*;

const PASSWORD: &str = "s3cret-pw";

fn root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(d.path().join("etc/mail")).unwrap();
    for f in ["local-host-names", "relay-domains"] {
        fs::copy(
            fixtures().join("seed-etc-mail").join(f),
            d.path().join("etc/mail").join(f),
        )
        .unwrap();
    }
    d
}

fn maps_config(pg: &Postgres, redis: &Redis) -> String {
    format!(
        "[maps]\naccess = \"shared:access\"\nvirtusertable = \"shared:virtusertable\"\n\
         aliases = \"shared:aliases\"\nlocalip = \"shared:localip\"\nusers = \"shared:users\"\n\
         popip = \"cache:popip\"\n\
         [backends.shared]\ntype = \"postgresql\"\nurl = \"{}\"\ntimeout = \"1s\"\npool = 2\n\
         [backends.cache]\ntype = \"redis\"\nurl = \"{}\"\ntimeout = \"500ms\"\n",
        pg.url("mail"),
        redis.url()
    )
}

fn host_config(maps: &str, dns: &TestDns) -> String {
    format!(
        "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n{maps}\n\
         [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nshutdown_grace = \"2s\"\n\
         allow_plaintext_auth = \"always\"\n\
         [pop3]\nlisten = [\"127.0.0.1:0\"]\npop_before_smtp_ttl = \"3s\"\n\
         allow_plaintext_auth = \"always\"\nauth_failure_delay = \"50ms\"\n\
         [dns]\n{}\ntimeout = \"300ms\"\n",
        dns.config_servers()
    )
}

fn tool(root: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = mailtool();
    cmd.arg("--root").arg(root).args(args);
    run(&mut cmd, stdin)
}

fn ok(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A POP3 USER/PASS login; returns the PASS reply.
fn pop_login(addr: std::net::SocketAddr, from: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let s = server::connect_from(addr, ip(from));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let line = |r: &mut BufReader<std::net::TcpStream>| {
        let mut l = String::new();
        let _ = r.read_line(&mut l);
        l.trim_end().to_string()
    };
    assert!(line(&mut r).starts_with("+OK"));
    w.write_all(b"USER who\r\n").unwrap();
    assert!(line(&mut r).starts_with("+OK"));
    w.write_all(format!("PASS {PASSWORD}\r\n").as_bytes())
        .unwrap();
    let reply = line(&mut r);
    let _ = w.write_all(b"QUIT\r\n");
    reply
}

/// The RCPT reply for `to` in a fresh session from `from`.
fn rcpt(srv: &Server, from: &str, to: &str) -> String {
    let (mut c, _) = Smtp::open(srv.smtp(), ip(from));
    c.cmd("EHLO client.test");
    let m = c.cmd("MAIL FROM:<sender@client.test>");
    if !m.starts_with("250") {
        return m;
    }
    let r = c.cmd(&format!("RCPT TO:<{to}>"));
    c.cmd("QUIT");
    r
}

/// Polls `f` until it returns true, for at most `secs`.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn two_hosts_share_maps_users_and_pop_before_smtp() {
    let Some(pg) = Postgres::start() else { return };
    let Some(redis) = Redis::start() else { return };
    pg.create_db("mail");
    let dns = TestDns::start(&[]);
    let maps = maps_config(&pg, &redis);
    let (a, b) = (root(), root());
    for r in [&a, &b] {
        fs::write(
            r.path().join("etc/mail/mailtool.toml"),
            host_config(&maps, &dns),
        )
        .unwrap();
    }
    let seed = fixtures().join("seed-etc-mail");

    // Host A builds every shared map, as an admin would on one host.
    let access = fs::read(seed.join("access")).unwrap();
    ok(
        &tool(a.path(), &["makemap", "hash", "shared:access"], &access),
        "makemap access",
    );
    let virt = fs::read(seed.join("virtusertable")).unwrap();
    ok(
        &tool(
            a.path(),
            &["makemap", "hash", "shared:virtusertable"],
            &virt,
        ),
        "makemap virtusertable",
    );
    let localip = fs::read(seed.join("localip")).unwrap();
    ok(
        &tool(
            a.path(),
            &["makemap", "-e", "hash", "shared:localip"],
            &localip,
        ),
        "localip",
    );
    fs::copy(seed.join("aliases"), a.path().join("etc/mail/aliases")).unwrap();
    ok(&tool(a.path(), &["newaliases"], b""), "newaliases");
    ok(
        &tool(
            a.path(),
            &["passwd", "who"],
            format!("{PASSWORD}\n").as_bytes(),
        ),
        "passwd",
    );
    // The rows are plain text a DBA can read.
    assert_eq!(
        pg.psql(
            "mail",
            "SELECT value FROM access WHERE key = 'connect:relay.com'"
        ),
        "RELAY"
    );
    assert!(
        pg.psql("mail", "SELECT count(*) FROM aliases")
            .parse::<u32>()
            .unwrap()
            >= 5
    );
    // makemap's other modes work on the table from the other host.
    let q = tool(
        b.path(),
        &[
            "makemap",
            "-q",
            "Connect:Relay.com",
            "hash",
            "shared:access",
        ],
        b"",
    );
    ok(&q, "makemap -q");
    assert_eq!(text(&q.stdout), "RELAY\n");
    let u = tool(
        b.path(),
        &["makemap", "-u", "hash", "shared:virtusertable"],
        b"",
    );
    ok(&u, "makemap -u");
    assert!(
        text(&u.stdout).contains("who@example1.com\twho@overthere.com\n"),
        "{}",
        text(&u.stdout)
    );
    let p = tool(b.path(), &["newaliases", "--dump"], b"");
    ok(&p, "newaliases --dump");
    assert!(text(&p.stdout).contains("\nstaff:"), "{}", text(&p.stdout));
    assert!(
        !text(&p.stdout).contains("@:@"),
        "the marker is not an alias"
    );

    let srv_a = Server::start(a.path(), &host_config(&maps, &dns));
    let srv_b = Server::start(b.path(), &host_config(&maps, &dns));

    // Built on A, routing and refusing on B.
    assert!(rcpt(&srv_b, "127.0.0.20", "who@example1.com").starts_with("250"));
    assert!(rcpt(&srv_b, "127.0.0.20", "staff@mail.example1.com").starts_with("250"));
    let unknown = rcpt(&srv_b, "127.0.0.20", "nosuch@mail.example1.com");
    assert!(unknown.starts_with("550 5.1.1"), "{unknown}");
    let err = rcpt(&srv_b, "127.0.0.20", "x@example2.com");
    assert!(
        err.starts_with("550") && err.contains("error-message"),
        "{err}"
    );
    let (mut c, _) = Smtp::open(srv_b.smtp(), ip("127.0.0.20"));
    c.cmd("EHLO client.test");
    let m = c.cmd("MAIL FROM:<false@junk.com>");
    assert!(m.starts_with("550 5.7.1"), "{m}");
    c.cmd("QUIT");

    // A row inserted with psql refuses the client at once: no reload, no cache.
    assert!(rcpt(&srv_b, "127.0.0.66", "who@example1.com").starts_with("250"));
    pg.psql(
        "mail",
        "INSERT INTO access (key, value) VALUES ('connect:127.0.0.66', 'REJECT')",
    );
    let refused = rcpt(&srv_b, "127.0.0.66", "who@example1.com");
    assert!(refused.starts_with("550 5.7.1"), "{refused}");

    // A user set with passwd on A logs in on B.
    assert!(pop_login(srv_b.pop3.unwrap(), "127.0.0.30").starts_with("+OK"));

    // A POP3 login on A lets that client relay through B, until Redis expires the entry.
    let far = "far@away.test";
    let denied = rcpt(&srv_b, "127.0.0.20", far);
    assert!(denied.starts_with("550 5.7.1"), "{denied}");
    assert!(pop_login(srv_a.pop3.unwrap(), "127.0.0.20").starts_with("+OK"));
    assert!(
        eventually(5, || rcpt(&srv_b, "127.0.0.20", far).starts_with("250")),
        "no relay through B after the login on A"
    );
    let ttl = redis.cli(&["PTTL", "popip:127.0.0.20"]);
    let ttl: i64 = ttl.trim().parse().unwrap();
    assert!(ttl > 0 && ttl <= 3000, "Redis keeps the entry {ttl} ms");
    let list = tool(a.path(), &["poprelay", "list", "--json"], b"");
    ok(&list, "poprelay list");
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows[0]["ip"], "127.0.0.20");
    assert!(rows[0]["expires_in"].as_u64().unwrap() <= 3);
    assert!(
        eventually(8, || rcpt(&srv_b, "127.0.0.20", far)
            .starts_with("550 5.7.1")),
        "relaying went on after Redis expired the entry"
    );

    // PostgreSQL down: 451, never 250 or 5xx; serve stays up and recovers by itself.
    pg.stop();
    for _ in 0..3 {
        let r = rcpt(&srv_b, "127.0.0.20", "who@example1.com");
        assert!(r.starts_with("451 4.3.0"), "with PostgreSQL down: {r}");
    }
    pg.start_again();
    assert!(
        eventually(20, || rcpt(&srv_b, "127.0.0.20", "who@example1.com")
            .starts_with("250")),
        "B did not recover when PostgreSQL came back; log:\n{}",
        srv_b.log()
    );
    let log = srv_b.log();
    assert_eq!(
        log.matches("backend shared: unavailable").count(),
        1,
        "one line per outage:\n{log}"
    );
    assert!(log.contains("backend shared: available again"), "{log}");

    // Redis down: no relay opens, and local mail still flows.
    redis.stop();
    let r = rcpt(&srv_b, "127.0.0.21", far);
    assert!(r.starts_with("451"), "relay with Redis down: {r}");
    let (mut c, _) = Smtp::open(srv_b.smtp(), ip("127.0.0.21"));
    c.cmd("EHLO client.test");
    let sent = c.mail(
        "sender@client.test",
        &["who@example1.com"],
        "Subject: hi\r\n\r\nlocal\r\n",
    );
    assert!(
        sent.starts_with("250"),
        "local mail with Redis down: {sent}"
    );
    c.cmd("QUIT");
    redis.start_again();
    assert!(srv_a.stop().is_some());
    assert!(srv_b.stop().is_some());
}

#[test]
fn bad_input_and_bad_tables_are_clear_errors() {
    let Some(pg) = Postgres::start() else { return };
    let Some(redis) = Redis::start() else { return };
    pg.create_db("mail");
    let dns = TestDns::start(&[]);
    let r = root();
    let maps = maps_config(&pg, &redis);
    fs::write(
        r.path().join("etc/mail/mailtool.toml"),
        host_config(&maps, &dns),
    )
    .unwrap();

    // A key that is not UTF-8: reported with its line (65), the good lines still written.
    let out = tool(
        r.path(),
        &["makemap", "hash", "shared:access"],
        b"good.example\tOK\nbad\xff.example\tREJECT\nalso.example\tRELAY\n",
    );
    assert_eq!(out.status.code(), Some(65), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("line 2"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(pg.psql("mail", "SELECT count(*) FROM access"), "2");
    // -o adds; --delete removes; a missing key is exit 1.
    ok(
        &tool(
            r.path(),
            &["makemap", "-o", "hash", "shared:access"],
            b"more.example OK\n",
        ),
        "makemap -o",
    );
    assert_eq!(pg.psql("mail", "SELECT count(*) FROM access"), "3");
    ok(
        &tool(
            r.path(),
            &[
                "makemap",
                "--delete",
                "more.example",
                "hash",
                "shared:access",
            ],
            b"",
        ),
        "--delete",
    );
    let gone = tool(
        r.path(),
        &["makemap", "-q", "more.example", "hash", "shared:access"],
        b"",
    );
    assert_eq!(gone.status.code(), Some(1));

    // A table with the wrong columns: config check and doctor say so, serve refuses to start.
    pg.psql("mail", "CREATE TABLE badmap (k text, v integer)");
    let bad = maps.replace(
        "localip = \"shared:localip\"",
        "localip = \"shared:badmap\"",
    );
    fs::write(
        r.path().join("etc/mail/mailtool.toml"),
        host_config(&bad, &dns),
    )
    .unwrap();
    let check = tool(r.path(), &["config", "check"], b"");
    assert_ne!(check.status.code(), Some(0));
    let said = format!("{}{}", text(&check.stdout), text(&check.stderr));
    assert!(said.contains("not (key text, value text)"), "{said}");
    let doctor = tool(r.path(), &["doctor", "--json"], b"");
    let said = text(&doctor.stdout);
    assert!(
        said.contains("shared:badmap") && said.contains("not (key text, value text)"),
        "{said}"
    );
    let mut serve = mailtool()
        .arg("--root")
        .arg(r.path())
        .arg("serve")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = serve.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = serve.kill();
            panic!("serve started with a table of the wrong shape");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(serve.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(78), "{err}");
    assert!(err.contains("shared:badmap"), "{err}");

    // Unknown backends and passwords in URLs are config errors with their position.
    let cfg = r.path().join("etc/mail/mailtool.toml");
    fs::write(&cfg, "[maps]\naccess = \"nosuch:access\"\n").unwrap();
    let check = tool(r.path(), &["config", "check"], b"");
    assert_eq!(check.status.code(), Some(78));
    assert!(
        text(&check.stderr).contains("line 2, column 10"),
        "{}",
        text(&check.stderr)
    );
    fs::write(
        &cfg,
        "[backends.shared]\ntype = \"postgresql\"\nurl = \"postgresql://postgres:pw@127.0.0.1/mail\"\n",
    )
    .unwrap();
    let check = tool(r.path(), &["config", "check"], b"");
    assert_eq!(check.status.code(), Some(78));
    assert!(
        text(&check.stderr).contains("password_file"),
        "{}",
        text(&check.stderr)
    );
}
