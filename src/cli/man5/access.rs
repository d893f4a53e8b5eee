//! mailtool-access(5): the access database, as `maps::access` and `policy` read it.

use super::Page;

pub fn page() -> Vec<u8> {
    let mut p = Page::new(
        "mailtool-access",
        "access database: which clients, senders and recipients are accepted or may relay",
    );
    p.section("SYNOPSIS");
    p.para("`/etc/mail/access` (source), `/etc/mail/access.db` (map)");
    p.para("`mailtool makemap hash /etc/mail/access < /etc/mail/access`");
    p.section("DESCRIPTION");
    p.para(
        "The access database is sendmail's FEATURE(`access_db`) table, read by `mailtool serve` \
         with sendmail 8.12/8.13's rules: at connection time (check_relay), at MAIL (check_mail), \
         at RCPT (the recipient blacklist, and the relay decision). The source is a makemap \
         input file; the server reads the map built from it, *NAME*`.db`, and picks up a rebuilt \
         map without a restart. The map's name is `[maps] access` in mailtool.toml(5).",
    );
    p.section("FORMAT");
    p.para(
        "One entry a line: a key, white space, a value (the rest of the line). Empty lines and \
         lines that start with `#` are skipped; a `#` elsewhere is data. There are no \
         continuation lines: a line that starts with white space is an error. Keys are folded \
         to lower case when the map is built and when it is looked up; values are kept as \
         written. A later duplicate key is an error (`makemap -r` lets it replace the first).",
    );
    p.subsection("Keys");
    p.para(
        "A key is an optional tag followed by a host name, domain, address or IP prefix. For \
         `Connect:`, `From:` and `To:` each candidate key is tried with its tag first, then \
         without a tag, before a shorter key is tried; so an untagged entry applies to \
         connections, senders and recipients alike (sendmail calls untagged entries \
         deprecated).",
    );
    p.item(
        "`Connect:`*host.domain*",
        "A client whose PTR name is this host or inside this domain: `Connect:relay.com` \
         matches `relay.com` and `mx.relay.com`. The name is tried as is, then without its \
         first label, down to the top-level domain. Matching is on whole labels.",
    );
    p.item(
        "`Connect:`*ip* or *prefix*",
        "A client address, or its first three, two or one octets: `Connect:192.168` matches \
         192.168.0.0/16. Only whole octets, never CIDR. IPv6 addresses are written \
         `IPv6:`*address* and shortened one group at a time.",
    );
    p.item(
        "`From:`*user*`@`*domain*, `From:`*user*`@`, `From:`*domain*",
        "The envelope sender. Tried in this order: `user+detail@domain`, `user+*@domain`, \
         `user@domain`; then `user+detail@`, `user+*@`, `user@` (this local part in any \
         domain); then the domain and its parents as for `Connect:`. A bare word without `@` \
         is a domain. The null sender `<>` is never looked up (RFC 1123 requires accepting it).",
    );
    p.item(
        "`To:`*user*`@`*domain*, `To:`*user*`@`, `To:`*domain*",
        "The recipient, in the same order; the `user@` forms are used only for our own \
         domains (local-host-names). A domain with `RELAY` is one we relay to.",
    );
    p.para(
        "sendmail's other tags (`Spam:`, `GreetPause:`, `ClientRate:`, `ClientConn:`, \
         `Srv_Features:`, `Compat:`, `QGRP:`) may be present in the file; `serve` does not use \
         them.",
    );
    p.subsection("Values");
    p.para("Keywords are matched without regard to case.");
    p.item(
        "`OK`",
        "Accept: at connection time, skip the DNSBL checks; for a sender, accept it. It does \
         not allow relaying. In a `To:` entry it only means \"not blacklisted\".",
    );
    p.item(
        "`RELAY`",
        "For `Connect:` keys: the client may relay. For `To:` (or untagged) domains: mail to \
         that domain may be relayed. Otherwise as `OK`.",
    );
    p.item(
        "`REJECT`",
        "At connection or MAIL: `550 5.7.1 Access denied`. At RCPT: `550 5.2.1` *addr*`... \
         Mailbox disabled for this recipient`. A client rejected at connection gets its greeting, and \
         HELO, EHLO, NOOP, RSET and QUIT work; every other command gets the rejection.",
    );
    p.item(
        "`DISCARD`",
        "Accept the message, then throw it away without delivering it.",
    );
    p.item(
        "`ERROR:`*### text*",
        "Reject with this SMTP code and text; the enhanced status defaults to *X*`.0.0` from \
         the code's first digit. A 4xx code is a temporary refusal. `ERROR:\"`*### text*`\"` \
         keeps the spaces exactly.",
    );
    p.item(
        "`ERROR:`*D.S.N*`:`*### text*",
        "The same with an explicit enhanced status code, e.g. `ERROR:5.7.1:550 Go away` or \
         `ERROR:4.2.2:450 mailbox full`.",
    );
    p.item(
        "*### text*",
        "A value that starts with a three-digit code and no keyword is sendmail's old \
         \"generic error\": rejected with that text, as `ERROR:` would.",
    );
    p.item(
        "anything else",
        "Any other non-empty value also rejects, with the value as the text, as sendmail's \
         rulesets do. That includes `SKIP`, which sendmail honours only with \
         FEATURE(`access_db`, `skip`), and a number. `QUARANTINE:`*reason* is accepted like \
         `OK`; the message is not quarantined.",
    );
    p.subsection("Lookup failures: -T<TMPF>");
    p.para(
        "sendmail's default map definition is `hash -T<TMPF> /etc/mail/access`: when the map \
         cannot be read, the SMTP command gets `451 4.3.0 Temporary system failure. Please try \
         again later.` instead of being judged as if nothing matched. That is \
         `[maps] access_temp_fail = true`, the default; `false` goes on without the access \
         rules. A map that does not exist at all is simply empty.",
    );
    p.subsection("Order of the checks");
    p.bullet(
        "At connection: the `ptr_check` rules of mailtool.toml(5), then `Connect:` on the \
         client's name (its PTR name, when it has one), then on its address; then the DNSBL \
         zones unless the entry was `OK` or `RELAY`.",
    );
    p.bullet("At MAIL: `From:` on the sender.");
    p.bullet(
        "At RCPT: `To:` on the recipient (`REJECT`, `DISCARD`, `ERROR:`), then the recipient \
         must be ours (local-host-names, virtusertable, a local user or alias) or one we relay \
         to (relay-domains, `To:`*domain* `RELAY`), or the client must be allowed to relay: \
         loopback, relay-domains, `Connect:` `RELAY`, localip, a recent POP3 login (popip), \
         or SMTP AUTH.",
    );
    p.section("EXAMPLES");
    p.para("The seed guide's file:");
    p.example(
        "Connect:relay.com      RELAY\n\
         Connect:other.com      OK\n\
         Connect:192.168        REJECT\n\
         To:true.com            OK\n\
         From:false@junk.com    REJECT\n\
         \n\
         reject.com             REJECT",
    );
    p.para(
        "Clients whose name is in relay.com may relay; clients in other.com skip the DNSBL \
         checks; clients in 192.168.0.0/16 are refused; mail to true.com is not blacklisted; \
         the sender false@junk.com is refused; the untagged `reject.com` refuses clients in \
         reject.com, senders at reject.com and recipients at reject.com.",
    );
    p.para("More value forms:");
    p.example(
        "From:spammer@               ERROR:5.7.1:550 Not from you\n\
         Connect:192.0.2             ERROR:\"421 Come back later\"\n\
         To:old-user@example1.com    ERROR:5.1.6:550 This user has moved\n\
         From:newsletter.example     DISCARD\n\
         Connect:IPv6:2001:db8       REJECT",
    );
    p.para("Build, query and dump:");
    p.example(
        "cd /etc/mail\n\
         mailtool makemap hash access < access\n\
         mailtool makemap -q Connect:relay.com hash access    # RELAY\n\
         mailtool makemap -u hash access",
    );
    p.section("FILES");
    p.item("/etc/mail/access", "The source.");
    p.item(
        "/etc/mail/access.db",
        "The map (SQLite), built by makemap; mode 0640, group `group` of mailtool.toml(5).",
    );
    p.see_also(&[
        "mailtool-makemap(1)",
        "mailtool-serve(1)",
        "mailtool-relaycheck(1)",
        "mailtool.toml(5)",
        "mailtool-virtusertable(5)",
        "mailtool-aliases(5)",
    ]);
    p.finish()
}
