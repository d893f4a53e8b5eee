//! mailtool-aliases(5): the aliases file, as `maps::source::aliases` (newaliases) parses it and
//! `maps::aliases` expands it at delivery.

use super::Page;

pub fn page() -> Vec<u8> {
    let mut p = Page::new(
        "mailtool-aliases",
        "aliases file: local names that expand to users, lists, files and programs",
    );
    p.section("SYNOPSIS");
    p.para("`/etc/mail/aliases` (source), `/etc/mail/aliases.db` (map)");
    p.para("`mailtool newaliases`");
    p.section("DESCRIPTION");
    p.para(
        "The aliases file is sendmail's aliases(5). Each entry gives a local name and what mail \
         for it becomes: local users, other aliases, addresses elsewhere, files and programs. \
         `mailtool newaliases` (or a link named newaliases, or `sendmail -bi`) builds the map \
         *aliases*`.db` from it, and `mailtool serve` uses the map: at RCPT time a name with an \
         alias is a known recipient, and at delivery the alias is expanded. Build it with \
         newaliases, never with makemap: makemap reads another format (no colon, no \
         continuation lines) and does not write the `@` marker sendmail looks for. The file is `[maps] aliases` in mailtool.toml(5).",
    );
    p.para(
        "Aliases apply to local addresses: a name without a domain, or at a domain in \
         local-host-names or this host's name, once mailtool-virtusertable(5) has had its \
         turn. In a domain with a catch-all (`@`*domain* in the virtusertable), the catch-all \
         is found first, and the aliases apply to the user it names.",
    );
    p.section("FORMAT");
    p.example("name: target, target, ...");
    p.bullet(
        "The name is everything before the first `:`. It is a local part (or \
         *name*`@`*domain* for one of our domains; another domain is an error, \"cannot alias \
         non-local names\"), and it is stored in lower case; `Postmaster` and `postmaster` are \
         one name. A quoted name, `\"some name\": ...`, is allowed.",
    );
    p.bullet(
        "The targets follow the colon, separated by commas. Commas inside double quotes, \
         angle brackets and parentheses do not separate.",
    );
    p.bullet(
        "A line that starts with a space or a tab continues the entry above it. A backslash \
         at the very end of a line also joins the next line.",
    );
    p.bullet(
        "A line whose first character is `#` is a comment, and empty lines are skipped. A \
         comment ends the entry before it: an indented line after a comment is an error \
         (\"Non-continuation line starts with space\").",
    );
    p.bullet(
        "When a name appears twice, the later entry wins, with a warning (\"duplicate alias \
         name\").",
    );
    p.subsection("Targets");
    p.item(
        "*user*",
        "A local name: another alias (expanded in turn), else a user of `mailtool passwd`, \
         delivered to its mailbox. An alias that lists its own name delivers to that name's \
         mailbox (`eric: eric, eric-archive`).",
    );
    p.item(
        "*user*`@`*domain*",
        "An address elsewhere, forwarded. An address at one of our own domains is routed \
         again, through the virtusertable.",
    );
    p.item(
        "`/`*path*",
        "Append the message to this file, as a mailbox (mbox, under the same locks as \
         mailboxes). The server's user must be able to write it.",
    );
    p.item(
        "`|`*command*",
        "Pipe the message to a command, run with `/bin/sh -c` as the server's user, with \
         only PATH, SENDER and RECIPIENT in its environment, for at most `[queue] \
         program_timeout`. Exit status 0 is delivered, 75 (or a signal) is retried later, any \
         other status bounces. Quote it when it holds commas or spaces: \
         `\"|/usr/local/bin/filter -x\"`.",
    );
    p.item(
        "`:include:`*path*",
        "Read more targets from a file: comma-separated targets on any number of lines, `#` \
         comments in the first column. The file is read at delivery time, by the server's \
         user, so a list can change without newaliases.",
    );
    p.item(
        "`\\`*user*",
        "Deliver to the mailbox of *user* without looking it up as an alias again.",
    );
    p.para(
        "`|command` and `/file` targets come only from this file and its include files, \
         never from a client. There is no `error:` target in aliases (sendmail reads \
         `error:...` here as a group name); to refuse through an alias, use `|exit 67`.",
    );
    p.subsection("Expansion");
    p.bullet(
        "Expansion is recursive. Each final recipient gets one copy, however many lists name \
         it, and a loop (`a: b` and `b: a`) is broken by that rule. Past 10 levels the address \
         fails with `554 5.4.6 aliasing/forwarding loop broken`.",
    );
    p.bullet("`user+detail` is looked up as `user+detail`, then `user+*`, then `user`.");
    p.bullet(
        "postmaster always exists, with or without an alias. RFC 5321 asks for it; the usual \
         file sends postmaster, MAILER-DAEMON and abuse to a real person.",
    );
    p.bullet(
        "A local name an alias leads to must itself be an alias or a user, at RCPT, in \
         `sendmail -bv` and at delivery alike; otherwise that member bounces with `User \
         unknown`. So `postmaster: root` needs a line for root (`root: you`) unless root is a \
         user.",
    );
    p.bullet(
        "The members of an expanded list are written into the queue file before anything is \
         delivered, so a restart never delivers twice to a member that already has the \
         message.",
    );
    p.section("NEWALIASES");
    p.para("newaliases prints sendmail's statistics line; for the seed's file below:");
    p.example("/etc/mail/aliases: 4 aliases, longest 26 bytes, 83 bytes total");
    p.para(
        "Errors name the file and the line (`/etc/mail/aliases: line 2: bad line here... missing colon`); the \
         bad entries are left out, the map is still built from the good ones, and the exit \
         status is 70. Other errors: \"illegal alias name\", \"missing value for alias\" (an \
         empty target list is not stored), \"alias line too long\". `mailtool newaliases \
         --dump` prints the map as praliases does.",
    );
    p.section("EXAMPLES");
    p.para(
        "The seed's file (the guide creates it empty; these are the required aliases and a \
         continued list):",
    );
    p.example(
        "# Required aliases\n\
         postmaster:     root\n\
         MAILER-DAEMON:  postmaster\n\
         abuse:          postmaster\n\
         # the guide creates an empty aliases file; these lines exercise the format\n\
         staff:          who@example1.com,\n\
         \x20               example",
    );
    p.para("More target forms:");
    p.example(
        "root:           example\n\
         archive:        /var/mail/archive.mbox\n\
         tickets:        \"|/usr/local/bin/ticket --queue support\"\n\
         customers:      :include:/etc/mail/lists/customers\n\
         example:        \\example, archive\n\
         nobody-here:    \"|exit 67\"",
    );
    p.example(
        "mailtool newaliases\n\
         mailtool newaliases --dump\n\
         mailtool sendmail -bv staff",
    );
    p.section("FILES");
    p.item("/etc/mail/aliases", "The source.");
    p.item(
        "/etc/mail/aliases.db",
        "The map, built by newaliases, with the key `@` as the marker of a complete build.",
    );
    p.see_also(&[
        "mailtool-newaliases(1)",
        "mailtool-sendmail(1)",
        "mailtool-serve(1)",
        "mailtool.toml(5)",
        "mailtool-virtusertable(5)",
        "mailtool-access(5)",
    ]);
    p.finish()
}
