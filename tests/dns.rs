//! `mailtool::dns` against the in-process test DNS server.

mod common;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::dns::{Rec, TestDns};
use mailtool::dns::{ClientResolve, Dns, Mx, Resolve};

/// `[dns] timeout` used by the tests.
const TIMEOUT: Duration = Duration::from_secs(1);

fn dns_for(server: &TestDns) -> Dns {
    Dns::new(&[server.addr], TIMEOUT).expect("resolver")
}

/// Every test is bounded, whatever the resolver does.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("DNS test took too long")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn records() -> Vec<Rec> {
    vec![
        // 192.0.2.10: PTR and A agree (OK), with a mixed-case PTR name.
        Rec::ptr("192.0.2.10", "Mail.Example1.COM."),
        Rec::a("mail.example1.com", "192.0.2.10"),
        Rec::aaaa("mail.example1.com", "2001:db8::10"),
        // 192.0.2.11: PTR name resolves elsewhere (FORGED).
        Rec::ptr("192.0.2.11", "liar.example1.com"),
        Rec::a("liar.example1.com", "192.0.2.99"),
        // 192.0.2.12: PTR name does not exist at all (FORGED).
        Rec::ptr("192.0.2.12", "ghost.example1.com"),
        // 192.0.2.13: no PTR (FAIL) — nothing to add.
        // 192.0.2.14: reverse zone SERVFAILs (TEMP).
        Rec::ptr_servfail("192.0.2.14"),
        // 192.0.2.15: PTR ok but forward SERVFAILs (TEMP).
        Rec::ptr("192.0.2.15", "broken.example1.com"),
        Rec::servfail("broken.example1.com"),
        // 192.0.2.16: two PTR names, the second one matches (OK).
        Rec::ptr("192.0.2.16", "other.example1.com"),
        Rec::ptr("192.0.2.16", "good.example1.com"),
        Rec::a("good.example1.com", "192.0.2.16"),
        // IPv6 client, checked against AAAA.
        Rec::ptr("2001:db8::10", "mail.example1.com"),
        // DNSBL
        Rec::a("2.0.0.127.dnsbl.test", "127.0.0.2"),
        Rec::a("2.0.0.127.dnsbl.test", "127.0.0.4"),
        Rec::txt("2.0.0.127.dnsbl.test", "listed, see http://dnsbl.test/"),
        Rec::servfail("3.0.0.127.dnsbl.test"),
        // MX
        Rec::mx("example1.com", 20, "mx2.example1.com."),
        Rec::mx("example1.com", 10, "MX1.example1.com"),
        Rec::mx("example1.com", 20, "mx3.example1.com"),
        Rec::mx("example1.com", 5, "mx0.example1.com"),
        Rec::mx("nomail.test", 0, "."),
        Rec::a("nomx.test", "192.0.2.50"),
        Rec::servfail("broken.test"),
        // v6-only host
        Rec::aaaa("v6only.test", "2001:db8::beef"),
    ]
}

#[tokio::test]
async fn ptr_lookup() {
    let server = TestDns::start(&records());
    let dns = dns_for(&server);
    bounded(async {
        assert_eq!(
            dns.ptr(ip("192.0.2.10")).await,
            Resolve::Found(vec!["mail.example1.com".to_string()])
        );
        assert_eq!(dns.ptr(ip("192.0.2.13")).await, Resolve::NotFound);
        assert!(dns.ptr(ip("192.0.2.14")).await.is_temp());
        // IPv4-mapped IPv6 is looked up as IPv4.
        assert_eq!(
            dns.ptr(ip("::ffff:192.0.2.10")).await,
            Resolve::Found(vec!["mail.example1.com".to_string()])
        );
    })
    .await;
}

#[tokio::test]
async fn client_resolve_ok() {
    let server = TestDns::start(&records());
    let dns = dns_for(&server);
    bounded(async {
        let r = dns.client_resolve(ip("192.0.2.10")).await;
        assert_eq!(r, ClientResolve::Ok("mail.example1.com".into()));
        assert_eq!(r.as_macro(), "OK");
        assert_eq!(
            dns.client_resolve(ip("192.0.2.16")).await,
            ClientResolve::Ok("good.example1.com".into())
        );
        assert_eq!(
            dns.client_resolve(ip("2001:db8::10")).await,
            ClientResolve::Ok("mail.example1.com".into())
        );
    })
    .await;
}

#[tokio::test]
async fn client_resolve_forged() {
    let server = TestDns::start(&records());
    let dns = dns_for(&server);
    bounded(async {
        assert_eq!(
            dns.client_resolve(ip("192.0.2.11")).await,
            ClientResolve::Forged("liar.example1.com".into())
        );
        assert_eq!(
            dns.client_resolve(ip("192.0.2.12")).await,
            ClientResolve::Forged("ghost.example1.com".into())
        );
    })
    .await;
}

#[tokio::test]
async fn client_resolve_fail() {
    let server = TestDns::start(&records());
    let dns = dns_for(&server);
    bounded(async {
        let r = dns.client_resolve(ip("192.0.2.13")).await;
        assert_eq!(r, ClientResolve::Fail);
        assert_eq!(r.client_name(ip("192.0.2.13")), "[192.0.2.13]");
    })
    .await;
}

#[tokio::test]
async fn client_resolve_temp() {
    let server = TestDns::start(&records());
    let dns = dns_for(&server);
    bounded(async {
        assert_eq!(
            dns.client_resolve(ip("192.0.2.14")).await,
            ClientResolve::Temp
        );
        assert_eq!(
            dns.client_resolve(ip("192.0.2.15")).await,
            ClientResolve::Temp
        );
    })
    .await;
}

#[tokio::test]
async fn client_resolve_timeout_is_temp() {
    let server = TestDns::start(&[Rec::timeout("17.2.0.192.in-addr.arpa")]);
    let dns = Dns::new(&[server.addr], Duration::from_millis(200)).unwrap();
    bounded(async {
        assert_eq!(
            dns.client_resolve(ip("192.0.2.17")).await,
            ClientResolve::Temp
        );
    })
    .await;
}

#[tokio::test]
async fn dead_server_is_temp() {
    // A port where nothing answers: take one from a server, then stop it.
    let addr = TestDns::start(&[]).addr;
    let dns = Dns::new(&[addr], Duration::from_millis(200)).unwrap();
    bounded(async {
        assert!(dns.ptr(ip("192.0.2.10")).await.is_temp());
        assert_eq!(
            dns.client_resolve(ip("192.0.2.10")).await,
            ClientResolve::Temp
        );
    })
    .await;
}

#[tokio::test]
async fn dnsbl_listed_not_listed_temp() {
    let server = TestDns::start(&records());
    let dns = dns_for(&server);
    bounded(async {
        let listed = dns.dnsbl(ip("127.0.0.2"), "dnsbl.test").await;
        let Resolve::Found(mut v) = listed else {
            panic!("expected listed, got {listed:?}");
        };
        v.sort();
        assert_eq!(
            v,
            vec![Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 4)]
        );
        assert_eq!(
            dns.dnsbl_txt(ip("127.0.0.2"), "dnsbl.test.").await,
            Resolve::Found(vec!["listed, see http://dnsbl.test/".to_string()])
        );
        assert_eq!(
            dns.dnsbl(ip("127.0.0.1"), "dnsbl.test").await,
            Resolve::NotFound
        );
        assert!(dns.dnsbl(ip("127.0.0.3"), "dnsbl.test").await.is_temp());
    })
    .await;
}

#[tokio::test]
async fn dnsbl_ipv6_is_not_looked_up() {
    let server = TestDns::start(&records());
    let dns = dns_for(&server);
    bounded(async {
        assert_eq!(
            dns.dnsbl(ip("2001:db8::1"), "dnsbl.test").await,
            Resolve::NotFound
        );
    })
    .await;
    assert!(server.queries().is_empty(), "{:?}", server.queries());
}

#[tokio::test]
async fn mx_sorted_by_preference() {
    let server = TestDns::start(&records());
    let dns = dns_for(&server);
    bounded(async {
        let got = dns.mx("Example1.com").await;
        let Resolve::Found(Mx::Hosts(hosts)) = got else {
            panic!("expected MX hosts, got {got:?}");
        };
        let prefs: Vec<u16> = hosts.iter().map(|(p, _)| *p).collect();
        assert_eq!(prefs, vec![5, 10, 20, 20]);
        assert_eq!(hosts[0].1, "mx0.example1.com");
        assert_eq!(hosts[1].1, "mx1.example1.com");
        let mut tail: Vec<&str> = hosts[2..].iter().map(|(_, h)| h.as_str()).collect();
        tail.sort();
        assert_eq!(tail, vec!["mx2.example1.com", "mx3.example1.com"]);
    })
    .await;
}

#[tokio::test]
async fn mx_null_missing_and_temp() {
    let server = TestDns::start(&records());
    let dns = dns_for(&server);
    bounded(async {
        assert_eq!(dns.mx("nomail.test").await, Resolve::Found(Mx::Null));
        // NODATA (the name has an A record) and NXDOMAIN both: no MX.
        assert_eq!(dns.mx("nomx.test").await, Resolve::NotFound);
        assert_eq!(dns.mx("nowhere.test").await, Resolve::NotFound);
        assert!(dns.mx("broken.test").await.is_temp());
    })
    .await;
}

#[tokio::test]
async fn addresses_a_and_aaaa() {
    let server = TestDns::start(&records());
    let dns = dns_for(&server);
    bounded(async {
        assert_eq!(
            dns.addresses("mail.example1.com").await,
            Resolve::Found(vec![ip("192.0.2.10"), ip("2001:db8::10")])
        );
        assert_eq!(
            dns.addresses("v6only.test").await,
            Resolve::Found(vec![ip("2001:db8::beef")])
        );
        assert_eq!(dns.addresses("nowhere.test").await, Resolve::NotFound);
        assert!(dns.addresses("broken.test").await.is_temp());
        assert_eq!(
            dns.addresses("[192.0.2.1]").await,
            Resolve::Found(vec![ip("192.0.2.1")])
        );
    })
    .await;
}

#[tokio::test]
async fn records_can_change_at_run_time() {
    let server = TestDns::start(&[]);
    let dns = dns_for(&server);
    bounded(async {
        assert_eq!(
            dns.client_resolve(ip("192.0.2.10")).await,
            ClientResolve::Fail
        );
        server.set(&records());
        assert_eq!(
            dns.client_resolve(ip("192.0.2.10")).await,
            ClientResolve::Ok("mail.example1.com".into())
        );
        server.add(Rec::servfail("mail.example1.com"));
        assert_eq!(
            dns.client_resolve(ip("192.0.2.10")).await,
            ClientResolve::Temp
        );
    })
    .await;
    assert!(
        server
            .queries()
            .contains(&"10.2.0.192.in-addr.arpa PTR".to_string())
    );
}

#[test]
fn usable_from_sync_tests() {
    let server = TestDns::start(&records());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dns = dns_for(&server);
    let r = rt.block_on(bounded(dns.client_resolve(ip("192.0.2.11"))));
    assert_eq!(r.as_macro(), "FORGED");
    assert!(server.addr.ip().is_loopback());
}
