//! The Postfix peer used by the interop tests starts, speaks SMTP and TLS, and relays only
//! when asked to (checks the fixture itself, so a broken peer can't make other tests vacuous).

mod common;

use common::postfix::{DOMAIN, Postfix, PostfixOptions};
use common::server::Smtp;

#[test]
fn open_and_closed_instances_answer_as_configured() {
    for open in [true, false] {
        let Some(pf) = Postfix::start(PostfixOptions {
            open_relay: open,
            tls: true,
        }) else {
            return;
        };
        let (mut s, greeting) = Smtp::open(pf.smtp, None);
        assert!(greeting.starts_with("220 "), "{greeting}");
        let ehlo = s.cmd("EHLO relay.test");
        assert!(ehlo.contains("STARTTLS"), "{ehlo}");
        assert!(s.cmd("MAIL FROM:<a@outside.test>").starts_with("250"));
        let local = s.cmd(&format!("RCPT TO:<sink@{DOMAIN}>"));
        assert!(local.starts_with("250"), "{local}");
        let outside = s.cmd("RCPT TO:<x@elsewhere.test>");
        assert_eq!(outside.starts_with("250"), open, "{outside}");
        assert!(pf.smtps.is_some());
    }
}
