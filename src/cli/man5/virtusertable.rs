//! mailtool-virtusertable(5): virtual-address routing, as `maps::virtuser` and `route` read it.

use super::Page;

pub fn page() -> Vec<u8> {
    let mut p = Page::new(
        "mailtool-virtusertable",
        "virtual user table: where mail for the addresses of virtual domains goes",
    );
    p.section("SYNOPSIS");
    p.para("`/etc/mail/virtusertable` (source), `/etc/mail/virtusertable.db` (map)");
    p.para("`mailtool makemap hash /etc/mail/virtusertable < /etc/mail/virtusertable`");
    p.section("DESCRIPTION");
    p.para(
        "The virtusertable is sendmail's FEATURE(`virtusertable`) map: it sends the mail of an \
         address, or of a whole domain, to a local user, to another address, or back to the \
         sender as an error. `mailtool serve` looks every recipient up in it at RCPT time (so \
         an unknown address is refused during the SMTP dialogue) and again when the message is \
         delivered. The domains are normally also listed in local-host-names; a domain that is \
         not there but has entries here is accepted for the addresses that match. The map's \
         name is `[maps] virtusertable` in mailtool.toml(5); a rebuilt map is used without a \
         restart.",
    );
    p.section("FORMAT");
    p.para(
        "A makemap input file: one entry a line, a key, white space, and the value (the rest \
         of the line). Empty lines and lines starting with `#` are skipped; a line starting \
         with white space is an error. Keys are folded to lower case.",
    );
    p.subsection("Keys");
    p.item("*user*`@`*domain*", "One address.");
    p.item(
        "`@`*domain*",
        "Every address of the domain that has no entry of its own (a catch-all).",
    );
    p.item(
        "*user*`+*@`*domain*, *user*`++@`*domain*, `+*@`*domain*, `++@`*domain*",
        "Addresses with a +detail: `+*` matches any detail, even an empty one; `++` only a \
         non-empty one.",
    );
    p.para("For *local*`@`*domain* the first key found wins, in this order:");
    p.example(
        "local@domain\n\
         @domain",
    );
    p.para("and when *local* is *user*`+`*detail* (split at the first `+`):");
    p.example(
        "user+detail@domain\n\
         user++@domain        (only when detail is not empty)\n\
         user+*@domain\n\
         user@domain\n\
         ++@domain            (only when detail is not empty)\n\
         +*@domain\n\
         @domain",
    );
    p.para(
        "An address without a domain is looked up with this host's name. When nothing \
         matches, an address in a local domain is delivered to the local user of that name \
         (an alias, a user of `mailtool passwd`, or postmaster) or refused with \
         `550 5.1.1 User unknown`.",
    );
    p.subsection("Values");
    p.item(
        "*user*",
        "A local user, which then goes through mailtool-aliases(5) and is delivered to its \
         mailbox.",
    );
    p.item(
        "*user*`@`*domain*",
        "Another address. It is routed again: a virtual address is looked up here again, a \
         remote one is forwarded (relaying is allowed because the original recipient was \
         ours).",
    );
    p.item(
        "`error:`*D.S.N*`:`*### text*",
        "Refuse the address with this reply: `error:5.7.0:550 Address invalid` gives \
         `550 5.7.0 <`*addr*`>... Address invalid`.",
    );
    p.item(
        "`error:`*word* *### text*",
        "Refuse with the code in the text; *word* is a status such as `nouser`, `nohost`, \
         `unavailable`, `tempfail` or a D.S.N. `error:nouser 550 No such user here` gives \
         `550 5.0.0 <`*addr*`>... No such user here`. A text without a three-digit code gives \
         `553 5.3.0`. A 4xx code refuses temporarily.",
    );
    p.para(
        "A value that starts with a code but not with `error:`, such as `550 error-message`, \
         is not an error: sendmail 8.12 and mailtool read it as an address (the seed guide's \
         `@example2.com 550 error-message` line therefore does not do what it meant; write \
         `error:nouser 550 error-message`).",
    );
    p.subsection("Substitutions");
    p.para(
        "In the value, `%1` is the local part of the address. When the local part is \
         *user*`+`*detail* and the entry found is not the full address, `%1` is *user*, `%2` \
         *detail* and `%3` `+`*detail*. `%0` is the key that matched and `%%` a percent sign; \
         a missing argument is empty. So `@example.org %1%3@mail.example.net` \
         keeps the detail, and `@foo.org %1@example.com` moves a whole domain.",
    );
    p.section("EXAMPLES");
    p.para("The seed guide's file:");
    p.example(
        "who@example1.com    who@overthere.com\n\
         @example1.com       example\n\
         @example2.com       error:nouser 550 error-message",
    );
    p.para(
        "who@example1.com is forwarded to who@overthere.com; every other address at \
         example1.com goes to the local user `example`; every address at example2.com is \
         refused with `550 5.0.0 <`*addr*`>... error-message`.",
    );
    p.para("sendmail's README examples:");
    p.example(
        "info@foo.com     foo-info\n\
         joe@bar.com      error:nouser 550 No such user here\n\
         jax@bar.com      error:5.7.0:550 Address invalid\n\
         @baz.org         jane@example.net\n\
         @foo.org         %1@example.com",
    );
    p.para("Build the map, then see where an address goes:");
    p.example(
        "cd /etc/mail\n\
         mailtool makemap hash virtusertable < virtusertable\n\
         mailtool makemap -q @example1.com hash virtusertable\n\
         mailtool sendmail -bv info@example1.com",
    );
    p.section("FILES");
    p.item("/etc/mail/virtusertable", "The source.");
    p.item("/etc/mail/virtusertable.db", "The map, built by makemap.");
    p.item(
        "/etc/mail/local-host-names",
        "The domains this host receives mail for.",
    );
    p.see_also(&[
        "mailtool-makemap(1)",
        "mailtool-sendmail(1)",
        "mailtool-serve(1)",
        "mailtool.toml(5)",
        "mailtool-access(5)",
        "mailtool-aliases(5)",
    ]);
    p.finish()
}
