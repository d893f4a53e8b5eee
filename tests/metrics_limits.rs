//! `[metrics]`, `[limits]` and `[log] format = "json"`, black-box: the real `serve` on
//! loopback with the seed's maps, scraped over HTTP and read back by Python's
//! prometheus_client (an independent parser of both exposition formats); the rate limits
//! against one server and against two sharing a private redis-server.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::dns::TestDns;
use common::redis::Redis;
use common::server::{Server, Smtp, add_user, free_port, ip, seed_root};
use common::skip::skip;

fn root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
    seed_root(d.path());
    add_user(d.path(), "who", "s3cret");
    add_user(d.path(), "example", "example-pw");
    d
}

fn config(dns: &TestDns, extra: &str) -> String {
    format!(
        "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
         [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nshutdown_grace = \"2s\"\n\
         [dns]\n{}\ntimeout = \"300ms\"\n{extra}",
        dns.config_servers()
    )
}

/// One HTTP request to the metrics port; the whole response.
fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The samples of an exposition, parsed by prometheus_client (`openmetrics` picks its
/// OpenMetrics parser): `name{k="v",…}` (labels sorted) to value. None: Python's
/// prometheus_client is not installed (skipped outside CI).
fn parse(text: &str, openmetrics: bool) -> Option<HashMap<String, f64>> {
    let module = if openmetrics {
        "prometheus_client.openmetrics.parser"
    } else {
        "prometheus_client.parser"
    };
    let script = format!(
        "import sys\nfrom {module} import text_string_to_metric_families as p\n\
         for f in p(sys.stdin.read()):\n    for s in f.samples:\n        \
         l = ','.join('%s=\"%s\"' % kv for kv in sorted(s.labels.items()))\n        \
         print('%s{{%s}} %r' % (s.name, l, float(s.value)))\n"
    );
    let probe = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import prometheus_client"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        skip(
            "python3-prometheus-client is not installed (apt-get install python3-prometheus-client)",
        );
        return None;
    }
    let out = common::run(
        std::process::Command::new("/usr/bin/python3").args(["-c", &script]),
        text.as_bytes(),
    );
    assert!(
        out.status.success(),
        "prometheus_client refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_string(), v.parse().unwrap())
            })
            .collect(),
    )
}

fn metric(samples: &HashMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {samples:#?}"))
}

fn metrics_addr(srv: &Server) -> SocketAddr {
    common::wait_for("the metrics listener", || {
        srv.log()
            .lines()
            .find_map(|l| l.strip_prefix("mailtool: listening for metrics on "))
            .map(|a| a.trim().parse().unwrap())
    })
}

/// A server on the seed's maps with `[metrics]` on a free port, plus `extra` sections; the
/// metrics address.
fn metrics_server(dns: &TestDns, extra: &str) -> (tempfile::TempDir, Server, SocketAddr) {
    let r = root();
    let port = free_port("127.0.0.1");
    let srv = Server::start(
        r.path(),
        &config(
            dns,
            &format!("[metrics]\nlisten = [\"127.0.0.1:{port}\"]\n{extra}"),
        ),
    );
    let maddr = metrics_addr(&srv);
    assert_eq!(maddr.port(), port);
    (r, srv, maddr)
}

#[test]
fn a_scrape_counts_exactly_what_was_sent() {
    let dns = TestDns::start(&[]);
    let (_r, srv, maddr) = metrics_server(&dns, "");
    // Three messages accepted over two connections; two recipients refused (relaying) from
    // a stranger's address, one unknown-user 550 and one bad command.
    let (mut c, _) = Smtp::open(srv.smtp(), ip("127.0.0.1"));
    c.cmd("EHLO a.test");
    for i in 0..2 {
        let reply = c.mail(
            "a@b.test",
            &["anyone@example1.com"],
            &format!("Subject: {i}\r\n\r\nbody\r\n"),
        );
        assert!(reply.starts_with("250"), "{reply}");
    }
    c.cmd("QUIT");
    let (mut s, _) = Smtp::open(srv.smtp(), ip("127.0.0.120"));
    s.cmd("EHLO stranger.test");
    assert!(s.cmd("MAIL FROM:<x@y.test>").starts_with("250"));
    for to in ["a@elsewhere.test", "b@elsewhere.test"] {
        let r = s.cmd(&format!("RCPT TO:<{to}>"));
        assert!(r.starts_with("550 5.7.1"), "{r}");
    }
    assert!(
        s.cmd("RCPT TO:<someone@example2.com>")
            .starts_with("550 5.0.0")
    );
    assert!(s.cmd("RCPT TO:<anyone@example1.com>").starts_with("250"));
    assert!(s.mail_body("Subject: 3\r\n\r\nx\r\n").starts_with("250"));
    assert!(s.cmd("FROB").starts_with("500"));
    s.cmd("QUIT");

    let plain = http(
        maddr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain;version=0.0.4\r\n\r\n",
    );
    assert!(plain.starts_with("HTTP/1.1 200 OK\r\n"), "{plain}");
    assert!(
        plain.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{plain}"
    );
    let Some(m) = parse(body(&plain), false) else {
        return;
    };
    assert_eq!(
        metric(
            &m,
            "mailtool_smtp_messages_accepted_total{service=\"smtp\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(&m, "mailtool_smtp_connections_total{service=\"smtp\"}"),
        2.0
    );
    assert_eq!(
        metric(
            &m,
            "mailtool_smtp_rejections_total{code=\"550\",stage=\"rcpt\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            &m,
            "mailtool_smtp_rejections_total{code=\"500\",stage=\"command\"}"
        ),
        1.0
    );
    assert_eq!(metric(&m, "mailtool_queue_messages{}"), 3.0);
    assert!(metric(&m, "mailtool_queue_oldest_seconds{}") < 600.0);
    assert_eq!(metric(&m, "mailtool_smtp_sessions{}"), 0.0);
    assert!(metric(&m, "process_open_fds{}") > 3.0);
    assert!(metric(&m, "process_resident_memory_bytes{}") > 1e6);
    assert_eq!(
        metric(
            &m,
            "mailtool_ratelimit_refusals_total{limit=\"message_rate\"}"
        ),
        0.0
    );

    // OpenMetrics when asked for, and the same numbers.
    let om = http(
        maddr,
        "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n",
    );
    assert!(
        om.contains("Content-Type: application/openmetrics-text; version=1.0.0"),
        "{om}"
    );
    assert!(body(&om).ends_with("# EOF\n"));
    let m = parse(body(&om), true).unwrap();
    assert_eq!(
        metric(
            &m,
            "mailtool_smtp_messages_accepted_total{service=\"smtp\"}"
        ),
        3.0
    );
    // Nothing else is served.
    assert!(http(maddr, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(http(maddr, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    assert!(http(maddr, "hello\r\n\r\n").starts_with("HTTP/1.1 400"));
    srv.stop();
}

const WHO: &str = "AUTH PLAIN AHdobwBzM2NyZXQ=";

#[test]
fn each_limit_refuses_the_next_one_and_only_that_client() {
    let dns = TestDns::start(&[]);
    let (_r, srv, maddr) = metrics_server(
        &dns,
        "[limits]\nconnection_rate = 3\nmessage_rate = 2\nrecipient_rate = 3\n\
         user_daily = 3\nexempt = \"none\"\n",
    );
    // Connections: three pass, the fourth from the same address gets 421 and is closed.
    let mut open = Vec::new();
    for _ in 0..3 {
        let (c, greeting) = Smtp::open(srv.smtp(), ip("127.0.0.50"));
        assert!(greeting.starts_with("220"), "{greeting}");
        open.push(c);
    }
    let (mut fourth, greeting) = Smtp::open(srv.smtp(), ip("127.0.0.50"));
    assert_eq!(greeting, "421 4.7.0 mail.example1.com Too many connections");
    assert!(fourth.closed());
    // Another address is unaffected.
    let (mut other, greeting) = Smtp::open(srv.smtp(), ip("127.0.0.51"));
    assert!(greeting.starts_with("220"), "{greeting}");

    // Messages: two MAILs pass, the third gets 450 and the session stays usable.
    let c = &mut open[0];
    c.cmd("EHLO a.test");
    for _ in 0..2 {
        assert!(c.cmd("MAIL FROM:<a@b.test>").starts_with("250"));
        assert!(c.cmd("RSET").starts_with("250"));
    }
    assert_eq!(
        c.cmd("MAIL FROM:<a@b.test>"),
        "450 4.7.1 mail.example1.com Error: message_rate rate limit exceeded"
    );
    assert!(c.cmd("NOOP").starts_with("250"));
    // A refused MAIL leaves no transaction: RCPT needs MAIL first.
    assert!(c.cmd("RCPT TO:<anyone@example1.com>").starts_with("503"));

    // Recipients: three pass, the fourth gets 450, the message still goes with three.
    other.cmd("EHLO b.test");
    assert!(other.cmd("MAIL FROM:<a@b.test>").starts_with("250"));
    for i in 0..3 {
        let r = other.cmd(&format!("RCPT TO:<anyone{i}@example1.com>"));
        assert!(r.starts_with("250"), "{r}");
    }
    assert_eq!(
        other.cmd("RCPT TO:<anyone9@example1.com>"),
        "450 4.7.1 mail.example1.com Error: recipient_rate rate limit exceeded"
    );
    assert!(
        other
            .mail_body("Subject: x\r\n\r\nx\r\n")
            .starts_with("250")
    );

    // Per user per day, from any address: three messages, then 450.
    let mut sent = 0;
    for (n, addr) in ["127.0.0.61", "127.0.0.62"].iter().enumerate() {
        let (mut u, _) = Smtp::open(srv.smtp(), ip(addr));
        u.cmd("EHLO u.test");
        assert!(u.cmd(WHO).starts_with("235"));
        for _ in 0..2 {
            if sent == 3 {
                break;
            }
            assert!(
                u.cmd("MAIL FROM:<who@example1.com>").starts_with("250"),
                "{n}"
            );
            u.cmd("RSET");
            sent += 1;
        }
        if sent == 3 {
            assert_eq!(
                u.cmd("MAIL FROM:<who@example1.com>"),
                "450 4.7.1 mail.example1.com Error: user_daily rate limit exceeded"
            );
        }
    }
    // The refusals are counted, each under its limit.
    let Some(m) = parse(body(&http(maddr, "GET /metrics HTTP/1.1\r\n\r\n")), false) else {
        return;
    };
    for limit in [
        "connection_rate",
        "message_rate",
        "recipient_rate",
        "user_daily",
    ] {
        assert_eq!(
            metric(
                &m,
                &format!("mailtool_ratelimit_refusals_total{{limit=\"{limit}\"}}")
            ),
            1.0,
            "{limit}"
        );
    }
    assert_eq!(
        metric(
            &m,
            "mailtool_smtp_rejections_total{code=\"421\",stage=\"connect\"}"
        ),
        1.0
    );
    srv.stop();
}

// exempt = "local" (the default): this host and localip clients are not counted; a stranger is.
#[test]
fn local_clients_are_exempt_by_default() {
    let dns = TestDns::start(&[]);
    let r = root();
    // The seed's localip lists 192.168 and other.com; add a loopback "office" address.
    common::server::build_map(r.path(), "localip", "-e", b"192.168\n127.0.0.9\n");
    let srv = Server::start(r.path(), &config(&dns, "[limits]\nconnection_rate = 1\n"));
    for addr in ["127.0.0.1", "127.0.0.9"] {
        for _ in 0..3 {
            let (_c, g) = Smtp::open(srv.smtp(), ip(addr));
            assert!(g.starts_with("220"), "{addr}: {g}");
        }
    }
    let (_c, g) = Smtp::open(srv.smtp(), ip("127.0.0.70"));
    assert!(g.starts_with("220"));
    let (_c, g) = Smtp::open(srv.smtp(), ip("127.0.0.70"));
    assert!(g.starts_with("421 4.7.0"), "{g}");
    srv.stop();
}

// Two hosts naming one Redis share the limit; with Redis down each host still limits on its
// own counters, and says so in its log.
#[test]
fn two_hosts_sharing_a_redis_share_the_limit() {
    let Some(redis) = Redis::start() else { return };
    let dns = TestDns::start(&[]);
    let extra = format!(
        "[backends.shared]\ntype = \"redis\"\nurl = \"{}\"\ntimeout = \"500ms\"\n\
         [limits]\nmessage_rate = 3\nexempt = \"none\"\nbackend = \"shared\"\n",
        redis.url()
    );
    let (ra, rb) = (root(), root());
    let a = Server::start(ra.path(), &config(&dns, &extra));
    let b = Server::start(rb.path(), &config(&dns, &extra));
    let mail = |srv: &Server, from: &str| {
        let (mut c, _) = Smtp::open(srv.smtp(), ip(from));
        c.cmd("EHLO x.test");
        let r = c.cmd("MAIL FROM:<a@b.test>");
        c.cmd("QUIT");
        r
    };
    assert!(mail(&a, "127.0.0.80").starts_with("250"));
    assert!(mail(&a, "127.0.0.80").starts_with("250"));
    assert!(mail(&b, "127.0.0.80").starts_with("250"));
    assert!(mail(&b, "127.0.0.80").starts_with("450 4.7.1"));
    assert!(mail(&a, "127.0.0.80").starts_with("450 4.7.1"));
    assert!(mail(&b, "127.0.0.81").starts_with("250"));
    // The counter is in Redis, under the client's address.
    assert_eq!(
        redis.cli(&["ZCARD", "mailtool_rate:message_rate:127.0.0.80"]),
        "3"
    );

    redis.stop();
    for _ in 0..3 {
        assert!(mail(&a, "127.0.0.82").starts_with("250"));
    }
    assert!(mail(&a, "127.0.0.82").starts_with("450 4.7.1"));
    assert!(
        a.log()
            .contains("counting in this process until it is back"),
        "{}",
        a.log()
    );
    a.stop();
    b.stop();
}

// Every line of a session with delivery is a JSON object, and the lines about the message
// carry its queue id as a field.
#[test]
fn json_logs_are_one_object_a_line_with_the_queue_id() {
    let dns = TestDns::start(&[]);
    let r = root();
    let srv = Server::start(
        r.path(),
        &config(
            &dns,
            "[log]\nformat = \"json\"\n[queue]\ndelivery_mode = \"background\"\ninterval = \"0s\"\n",
        ),
    );
    let (mut c, _) = Smtp::open(srv.smtp(), ip("127.0.0.1"));
    c.cmd("EHLO a.test");
    let reply = c.mail(
        "a@b.test",
        &["who@mail.example1.com"],
        "Subject: j\r\n\r\nhi\r\n",
    );
    let qid = reply.split_whitespace().nth(2).unwrap().to_string();
    c.cmd("QUIT");
    common::wait_for("the delivery line", || {
        srv.log().contains("stat=Sent").then_some(())
    });
    let log = srv.log();
    srv.stop();
    let mut with_qid = Vec::new();
    let mut listening = false;
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for k in ["ts", "level", "msg"] {
            assert!(v.get(k).is_some_and(|x| x.is_string()), "{k} in {line}");
        }
        listening |= v["msg"]
            .as_str()
            .is_some_and(|m| m.starts_with("mailtool: listening for SMTP on 127.0.0.1:"));
        if v["qid"] == qid.as_str() {
            with_qid.push(v);
        }
    }
    assert!(listening, "the start-up line, as JSON:\n{log}");
    let from = with_qid
        .iter()
        .find(|v| v.get("from").is_some())
        .expect("the from= line");
    assert_eq!(from["from"], "<a@b.test>");
    let to = with_qid
        .iter()
        .find(|v| v.get("stat").is_some())
        .expect("the delivery line");
    assert!(to["stat"].as_str().unwrap().starts_with("Sent"), "{to}");
    assert!(to["to"].as_str().unwrap().contains("who"), "{to}");
    assert_eq!(to["dsn"], "2.0.0");
}

// The dashboard in contrib/grafana is valid JSON and plots only metrics of the contract
// (mailtool.toml(5)), so a renamed metric cannot leave it silently empty.
#[test]
fn the_dashboard_plots_only_documented_metrics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dash: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(root.join("contrib/grafana/mailtool.json")).unwrap(),
    )
    .unwrap();
    let man = fs::read_to_string(root.join("man/mailtool.toml.5"))
        .unwrap()
        .replace("\\_", "_")
        .replace("\\-", "-");
    let mut names = std::collections::BTreeSet::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(i) = rest.find(['m', 'p']) {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                let word = &tail[..end];
                if word.starts_with("mailtool_") || word.starts_with("process_") {
                    names.insert(word.trim_end_matches("_bucket").to_string());
                }
                rest = &tail[end.max(1)..];
            }
        }
    }
    assert!(names.len() >= 12, "{names:?}");
    for n in &names {
        assert!(man.contains(n.as_str()), "{n} is not in mailtool.toml(5)");
    }
}
