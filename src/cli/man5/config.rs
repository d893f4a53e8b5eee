//! mailtool.toml(5): every key of the configuration file. The keys and their meaning are the
//! contract of mailtool.toml(5); the defaults shown are taken from `config::Settings` at generation
//! time, so the page cannot drift from the code. `tests/generated.rs` checks that every key
//! `mailtool config show` prints is documented here.

use super::Page;
use crate::config::Settings;

/// One documented key. `default: None` takes the default from the code (the value `mailtool
/// config show` prints as root); `Some(text)` is shown as written (a default that depends on
/// the system, or a key whose code is not merged yet).
pub struct Key {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

const fn k(name: &'static str, doc: &'static str) -> Key {
    Key {
        name,
        default: None,
        doc,
    }
}

const fn kd(name: &'static str, default: &'static str, doc: &'static str) -> Key {
    Key {
        name,
        default: Some(default),
        doc,
    }
}

/// One table of the file: its name ("" for the top level), what it is for, and its keys.
pub struct Table {
    pub name: &'static str,
    pub intro: &'static str,
    pub keys: &'static [Key],
}

pub const TABLES: &[Table] = &[
    Table {
        name: "",
        intro: "Keys before the first table.",
        keys: &[
            kd(
                "hostname",
                "the system's fully qualified name",
                "This host's name: in the SMTP greeting and Received: lines, in Message-IDs, \
                 for unqualified addresses (`always_add_domain`) and as a local domain besides \
                 local-host-names (sendmail's `$j`, confDOMAIN_NAME).",
            ),
            k(
                "user",
                "Started as root, `serve` binds its ports, then runs as this user (sendmail 8.12 \
                 ran its queue as root and local submission as smmsp; mailtool has one \
                 unprivileged user). makemap, newaliases and `passwd` run as root give the maps \
                 they create to `group`, mode 0640, so the server can read them.",
            ),
            k(
                "group",
                "The group `serve` runs as after binding, and the group of the maps, the spool \
                 and a mailbox directory it creates.",
            ),
        ],
    },
    Table {
        name: "paths",
        intro: "Directories. Absolute paths are moved under the root (see ROOT).",
        keys: &[
            k(
                "mail_dir",
                "Where the maps and class files live: relative names in `[maps]` are in this \
                 directory.",
            ),
            k(
                "spool",
                "The queue (sendmail's mqueue: `qf`/`df` files, mode 0700, owned by `user`).",
            ),
            k(
                "client_spool",
                "The drop box of the `sendmail` command when the daemon does not answer \
                 (owned by `user`, mode 3733); the daemon imports it at start and on every queue \
                 run.",
            ),
            k(
                "mailboxes",
                "Local mailboxes: *mailboxes*`/`*user* (mbox), or a Maildir of that name. The \
                 POP3 server reads the same files. `serve` creates the directory as root:*group* \
                 2775.",
            ),
            k(
                "mailbox_format",
                "`\"mbox\"` (appended under a dotlock and an fcntl lock, `From` lines in bodies quoted as `>From`) or \
                 `\"maildir\"` (*mailboxes*`/`*user*`/{cur,new,tmp}`). A mailbox of the other \
                 kind (an mbox file left after switching to Maildir, or the converse) is never \
                 written: its mail is deferred (4.3.5) until it is converted, and `mailtool \
                 doctor` lists it.",
            ),
        ],
    },
    Table {
        name: "maps",
        intro: "The maps and class files. A relative name is in `mail_dir`; *NAME* means the \
                map file *NAME*`.db` built by makemap (or newaliases) from the text file *NAME*; \
                *BACKEND*`:`*TABLE* means the table *TABLE* in `[backends.`*BACKEND*`]` (not for \
                the two class files). With aliases in a backend, newaliases reads the source \
                file *TABLE* in `mail_dir`.",
        keys: &[
            k(
                "access",
                "The access database: connection, sender and recipient rules; see \
                 mailtool-access(5).",
            ),
            k(
                "access_temp_fail",
                "sendmail's `-T<TMPF>`: when the access map exists but cannot be read, reply \
                 `451 4.3.0 Temporary system failure. Please try again later.` instead of \
                 going on as if nothing matched.",
            ),
            k(
                "virtusertable",
                "Virtual-address routing; see mailtool-virtusertable(5).",
            ),
            k(
                "aliases",
                "The aliases source file; newaliases builds *aliases*`.db` from it. See \
                 mailtool-aliases(5).",
            ),
            k(
                "localip",
                "The seed's poprelay.mc relay list: a client whose address, or its first three, \
                 two or one octets, is a key may relay. Built with `makemap -e` (keys without \
                 values).",
            ),
            k(
                "popip",
                "POP-before-SMTP: client addresses with the time of their last POP3 login \
                 (`mailtool poprelay`); an entry younger than `pop3.pop_before_smtp_ttl` may \
                 relay. Entries whose value is not a number (poprelayd's) never expire.",
            ),
            k(
                "users",
                "Virtual users and their password hashes (argon2id or sha512-crypt), kept by \
                 `mailtool passwd`. A user here is a local recipient and may log in to POP3 and \
                 SMTP AUTH.",
            ),
            k(
                "local_host_names",
                "Plain text: the domains this host receives mail for (class w), one or more \
                 words a line; a line starting with `#` is a comment. Reread on SIGHUP.",
            ),
            k(
                "relay_domains",
                "Plain text, same format: domains and hosts (class R) that may relay, and to \
                 which we relay: a domain matches itself and its subdomains, an address prefix \
                 of whole octets (`192.168.10`) matches clients in it.",
            ),
        ],
    },
    Table {
        name: "backends.NAME",
        intro: "A store that maps can live in, shared by every host that names it: a map \
                named *NAME*`:`*TABLE* in `[maps]` (or given to makemap) is the table *TABLE* \
                there, not a file. makemap, newaliases, passwd and poprelay write it; `-u`, \
                `-q`, `-o` and `--delete` work on it as on a file. In PostgreSQL the table is \
                `TABLE (key text PRIMARY KEY, value text NOT NULL)`, created by the first write; \
                a rebuild replaces it in one transaction, and a row inserted with psql applies \
                to the next lookup. In Redis the map is the string keys *TABLE*`:`*KEY*, and \
                popip entries expire after `pop3.pop_before_smtp_ttl`. A backend that is down, \
                slow or failing makes lookups fail, never pass: `451 4.3.0` for SMTP, \
                `-ERR [SYS/TEMP]` for POP3. The server keeps running, reconnects by itself \
                (backing off up to 5 s) and logs one line when an outage starts and one when it \
                ends. See docs/scaling.md.",
        keys: &[
            kd("type", "(required)", "`\"postgresql\"` or `\"redis\"`."),
            kd(
                "url",
                "(required)",
                "`postgresql://USER@HOST:PORT/DB` (TLS through rustls with \
                 `?sslmode=require`, the server's certificate checked against the system's \
                 CAs) or `redis://HOST:PORT/DB`. A URL with a password in it is refused: put \
                 the password in `password_file`.",
            ),
            kd(
                "password_file",
                "(none)",
                "A file whose first line is the password (relocated under the root). `serve` \
                 reads it before it leaves root, so it may be root's alone.",
            ),
            kd(
                "timeout",
                "\"2s\"",
                "Per query. A timeout or a lost connection is a lookup error, never \"not \
                 found\".",
            ),
            kd(
                "pool",
                "4",
                "PostgreSQL connections per process; each pipelines concurrent lookups. Redis \
                 uses one multiplexed connection.",
            ),
        ],
    },
    Table {
        name: "smtp",
        intro: "The SMTP server. Addresses are `\"IP:PORT\"` strings (`\"[::1]:25\"` for \
                IPv6); an empty list opens no such port.",
        keys: &[
            k(
                "listen",
                "SMTP (port 25) listeners. Run as a normal user, the default is \
                 `[\"127.0.0.1:2525\"]`.",
            ),
            k(
                "submission",
                "Submission (port 587) listeners: relaying needs AUTH there. Normal user: \
                 `[\"127.0.0.1:2587\"]`.",
            ),
            k(
                "smtps",
                "Implicit-TLS listeners (port 465), e.g. `[\"0.0.0.0:465\"]`; they need `[tls]`.",
            ),
            k(
                "greet_pause",
                "FEATURE(greet_pause): wait this long before the greeting and refuse a client \
                 that talks first (`554` *host* `ESMTP not accepting messages`). The seed uses \
                 `\"5000ms\"`.",
            ),
            k(
                "max_message_size",
                "Bytes; larger messages are refused (`552 5.2.3`), at MAIL when SIZE= says so, \
                 else after the data. The default, 26214400 (25 MiB), is what the large mail \
                 providers accept and 2.5 times Postfix's 10240000. 0 means no limit beyond the \
                 disk: messages are written to the spool as they arrive, so memory never limits \
                 them. The seed's confMAX_MESSAGE_SIZE is 1000000.",
            ),
            k(
                "max_recipients",
                "Recipients per message; more get `452 4.5.3 Too many recipients`.",
            ),
            k(
                "max_messages_per_connection",
                "Messages per SMTP session; 0 means no limit.",
            ),
            k(
                "max_connections",
                "Simultaneous SMTP sessions in all (sendmail's MaxDaemonChildren); more are \
                 answered with `421 4.3.2` and closed.",
            ),
            k(
                "max_connections_per_ip",
                "Simultaneous sessions from one client address. The host itself (127.0.0.1, \
                 ::1) and clients in `localip` are exempt, as Postfix exempts mynetworks. A \
                 session's place is freed before its last reply, so a client that reconnects \
                 at once after `221` is not refused.",
            ),
            k(
                "max_hops",
                "Received: headers a message may carry before it is refused as a loop \
                 (`554 5.4.6 Too many hops`).",
            ),
            k(
                "always_add_domain",
                "FEATURE(always_add_domain): an envelope address without a domain gets \
                 `@`*hostname*.",
            ),
            k(
                "ptr_check",
                "The seed's Local_check_relay rules: `\"off\"`; `\"resolvable\"`: a client \
                 whose PTR lookup fails temporarily or permanently gets 450 (`Access denied. \
                 Cannot resolve PTR record for` *ip*, `IP name lookup failed` *name*); \
                 `\"forged\"`: also when the PTR name does not resolve back to the address.",
            ),
            k(
                "dnsbl",
                "FEATURE(dnsbl): a list of `{ zone = \"...\", message = \"...\" }`; a client \
                 listed in a zone is refused with the message (default `550 5.7.1 Rejected:` \
                 *ip* `listed at` *zone*). access `Connect:` OK or RELAY skips it.",
            ),
            k(
                "allow_plaintext_auth",
                "Where AUTH is offered without TLS: `\"never\"`, `\"loopback\"` (clients on \
                 127.0.0.0/8 and ::1) or `\"always\"`. With TLS it is always offered.",
            ),
            k(
                "relay_from_loopback",
                "Clients on 127.0.0.1 and ::1 may relay, as sendmail's Relay_ok allows.",
            ),
            k(
                "system_users",
                "Accounts of the system (getpwnam) count as local recipients, besides the \
                 `users` map and the aliases.",
            ),
            k(
                "max_errors",
                "Bad commands allowed in a session before `421 Too many bad commands` \
                 (sendmail's MAXBADCOMMANDS).",
            ),
            k(
                "command_timeout",
                "The deadline for one whole command line, counted from when the server starts \
                 waiting for it (RFC 5321 4.5.3.2): a client that trickles a byte at a time \
                 does not extend it. Then `421 4.4.2 ... Error: timeout exceeded`.",
            ),
            k("data_timeout", "The longest pause inside DATA."),
            k(
                "data_deadline",
                "The deadline for the whole DATA phase, from the `354`. Default 1h.",
            ),
            k(
                "data_min_rate",
                "Bytes per second the DATA phase must average once `data_rate_grace` has \
                 passed; a slower client gets `421 4.4.2 ... Error: data transfer too slow`. \
                 Default 1024; 0 means no minimum.",
            ),
            k(
                "data_rate_grace",
                "How long DATA may run before `data_min_rate` applies. Default 30s.",
            ),
            k(
                "stress_threshold",
                "Percent of `max_connections` past which SMTP is under stress, as Postfix's \
                 `${stress?...}`: `command_timeout` and `data_timeout` drop to \
                 `stress_timeout`, and when the limit is reached a session waiting for its \
                 client (for at least 0.2 s) is closed with `421 4.3.2 ... Server busy` to make \
                 room, before a new client is refused: one from the address with the most \
                 sessions open, the longest-waiting of those, so a flood from a few addresses \
                 gives way first. A session in DATA is never chosen. Default 80; 0 turns \
                 stress mode off.",
            ),
            k(
                "stress_timeout",
                "The command and pause timeout under stress. Default 10s.",
            ),
            k(
                "error_rate",
                "Error replies (refused recipients, bad commands) per second to one client \
                 address (IPv6: its /64) over all its sessions: each one waits for its turn, \
                 so reconnecting does not reset the pace and user enumeration runs at most \
                 this fast. Clients that authenticated or may relay are never held back, nor \
                 is any reply that is not an error. Default 5; 0 turns it off.",
            ),
            k(
                "soft_error_limit",
                "Errors in a session after which each further error reply also sleeps \
                 `error_sleep`, once more for every five errors past the limit (at most ten \
                 times); `max_errors` then ends the session (Postfix's \
                 smtpd_soft_error_limit). Default 10.",
            ),
            k("error_sleep", "See `soft_error_limit`. Default 1s."),
            k(
                "shutdown_grace",
                "On SIGTERM, how long sessions in progress may take to finish.",
            ),
            k(
                "vrfy",
                "Answer VRFY with the address (else `252 2.5.2 Cannot VRFY user; try RCPT to \
                 attempt delivery`).",
            ),
            k(
                "expn",
                "Answer EXPN with the expansion of an alias (else `502 5.7.0`).",
            ),
        ],
    },
    Table {
        name: "pop3",
        intro: "The POP3 server inside `serve` (what qpopper and poprelayd did). Logins are \
                the virtual users of the `users` map; the mailbox is the one local delivery \
                writes.",
        keys: &[
            k(
                "listen",
                "POP3 (port 110) listeners; STLS is offered when `[tls]` is set. Normal user: \
                 `[\"127.0.0.1:1100\"]`.",
            ),
            k(
                "pop3s",
                "Implicit-TLS listeners (port 995), e.g. `[\"0.0.0.0:995\"]`; they need `[tls]`.",
            ),
            k(
                "pop_before_smtp_ttl",
                "How long a successful login lets its client address relay through SMTP \
                 (poprelayd's 15 minutes); the address is written to the `popip` map. `\"0s\"` \
                 turns POP-before-SMTP off.",
            ),
            k(
                "allow_plaintext_auth",
                "Where USER/PASS and AUTH PLAIN are accepted without TLS: `\"never\"`, \
                 `\"loopback\"` or `\"always\"`. APOP, which sends no password, is not \
                 affected.",
            ),
            k(
                "auth_failure_delay",
                "How long a failed login waits before its `-ERR` (SMTP AUTH: its `535`) is \
                 sent, and the first step of the throttle: every further failure from the \
                 same address (IPv6: its /64) doubles the wait before that address's next \
                 attempt, up to 15 s, and attempts from one address are taken one at a time, \
                 so parallel guesses queue up. Shared by POP3 and SMTP AUTH.",
            ),
            k(
                "max_auth_failures",
                "Failed logins (POP3 or SMTP AUTH) from one client address within 15 minutes \
                 after which that address is refused (`-ERR [LOGIN-DELAY]`, `454 4.7.0`) until \
                 the window has passed. Only the address: a user is never locked out. \
                 Failures for one user from many addresses slow logins from addresses the \
                 user has never logged in from (at most 16 s), never from one it has used in \
                 the last 30 days, nor from 127.0.0.1, ::1 or localip clients.",
            ),
            k(
                "idle_timeout",
                "RFC 1939's autologout timer: the deadline for the next whole command, from \
                 the last reply (a trickling client does not extend it; the RFC asks for at \
                 least 10 minutes).",
            ),
            k(
                "stress_threshold",
                "As in `[smtp]`: past this percent of `max_connections` the idle timeout drops \
                 to `stress_timeout`, and at the limit a waiting session is closed as in `[smtp]` to \
                 make room. Default 80; 0 turns it off.",
            ),
            k(
                "stress_timeout",
                "The idle timeout under stress. Default 30s.",
            ),
            k(
                "max_bad_commands",
                "Unknown, empty or misplaced commands in a session before the server answers \
                 `-ERR Too many bad commands` and hangs up (Dovecot does the same). Default \
                 20; 0 means no limit.",
            ),
            k(
                "max_connections",
                "Simultaneous POP3 and POP3S sessions; more are answered `-ERR [SYS/TEMP]` and \
                 closed. Counted apart from SMTP's `[smtp] max_connections`.",
            ),
            k(
                "max_connections_per_ip",
                "Simultaneous POP3 and POP3S sessions from one client address (the same \
                 exemptions as `[smtp]`).",
            ),
        ],
    },
    Table {
        name: "tls",
        intro: "The certificate for STARTTLS (SMTP), STLS (POP3), SMTPS and POP3S.",
        keys: &[
            k(
                "cert",
                "PEM certificate chain. Empty: no STARTTLS or STLS is offered and implicit-TLS \
                 listeners refuse to start.",
            ),
            k("key", "PEM private key; set together with `cert`."),
        ],
    },
    Table {
        name: "dns",
        intro: "The resolver for MX, PTR and DNSBL lookups.",
        keys: &[
            k(
                "servers",
                "Name servers as `\"IP:PORT\"`; empty means /etc/resolv.conf.",
            ),
            k("timeout", "Per query."),
        ],
    },
    Table {
        name: "queue",
        intro: "Delivery out of the spool.",
        keys: &[
            k(
                "interval",
                "Full queue runs (sendmail's `-q1h`); `\"0s\"`: only at start, on SIGUSR1 and \
                 with `mailtool queue run`.",
            ),
            k(
                "delivery_mode",
                "`\"background\"` (sendmail's `b`): each message is tried right after its \
                 250; `\"queue\"`: only at queue runs.",
            ),
            k(
                "warn_after",
                "A delay warning (headers only) goes to the sender after this long \
                 (Timeout.queuewarn).",
            ),
            k(
                "return_after",
                "An undelivered message is bounced after this long (Timeout.queuereturn).",
            ),
            k(
                "smart_host",
                "`\"host[:port]\"` (`[host]` also accepted): all outbound mail goes there, \
                 without MX lookups (SMART_HOST). Empty: by MX.",
            ),
            k(
                "remote_port",
                "The port of MX hosts (tests point it elsewhere).",
            ),
            k(
                "min_backoff",
                "The first retry after a temporary failure; each later wait doubles.",
            ),
            k("max_backoff", "The longest wait between two attempts."),
            k("max_parallel", "Messages in delivery at once."),
            k(
                "max_per_destination",
                "Connections to one domain or smart host at once.",
            ),
            k(
                "local_max_size",
                "The seed's LOCAL_MAILER_MAX: bigger messages bounce from local delivery; 0 \
                 means no limit.",
            ),
            k(
                "mailbox_quota",
                "Bytes; a mailbox that would grow past it is full (4.2.2, retried, bounced \
                 after `return_after`); 0 means no quota.",
            ),
            k(
                "min_free_space",
                "Bytes of the spool's file system kept free (Postfix's queue_minfree): MAIL is \
                 refused with `452 4.3.1 Insufficient system storage` when less is free, or when \
                 its SIZE= is more than what is free beyond it, before any data is sent. Default \
                 33554432 (32 MiB); 0 turns the check off.",
            ),
            k(
                "program_timeout",
                "How long a `|program` alias target may run.",
            ),
            k(
                "postmaster_copy",
                "Send postmaster a copy of every bounce (sendmail's PostmasterCopy).",
            ),
        ],
    },
    Table {
        name: "log",
        intro: "Log output, one line per event in sendmail's style.",
        keys: &[
            k(
                "target",
                "`\"stderr\"`, `\"syslog\"` (facility mail) or `\"journald\"` (stderr without \
                 time stamps, for a systemd unit).",
            ),
            k(
                "level",
                "`\"error\"`, `\"warn\"`, `\"info\"`, `\"debug\"`, `\"trace\"` or `\"off\"`. The \
                 environment variable MAILTOOL_LOG (filter directives such as \
                 `mailtool=debug`) overrides it.",
            ),
            k(
                "format",
                "`\"text\"` (the default): sendmail-style lines, as fail2ban's filter reads \
                 them. `\"json\"`: one JSON object a line, with `ts` (RFC 3339, UTC), `level`, \
                 `msg` and the fields of the line (`qid`, `from`, `to`, `relay`, `dsn`, `stat`, \
                 `client`, `user`, …) as keys of their own. The start-up lines scripts wait \
                 for (`mailtool: listening for SMTP on ADDR`) are JSON then too, the same text \
                 in `msg`.",
            ),
        ],
    },
    Table {
        name: "metrics",
        intro: "Prometheus metrics over HTTP. Only `GET /metrics` is served: the Prometheus \
                text format 0.0.4, or OpenMetrics 1.0 when the scraper's Accept asks for \
                `application/openmetrics-text`. The names are a contract: \
                `mailtool_smtp_connections_total{service}`, \
                `mailtool_smtp_messages_accepted_total{service}`, \
                `mailtool_smtp_rejections_total{stage,code}`, `mailtool_smtp_sessions`, \
                `mailtool_queue_messages`, `mailtool_queue_oldest_seconds`, \
                `mailtool_delivery_total{mailer,status}` (status sent, deferred or bounced), \
                `mailtool_delivery_seconds` (a histogram), `mailtool_pop3_logins_total{result}`, \
                `mailtool_map_lookup_errors_total{map}`, `mailtool_backend_up{backend}`, \
                `mailtool_tls_handshakes_total{result}`, \
                `mailtool_ratelimit_refusals_total{limit}`, and the process metrics \
                (`process_cpu_seconds_total`, `process_resident_memory_bytes`, \
                `process_open_fds`, `process_max_fds`, `process_start_time_seconds`). \
                contrib/grafana has a dashboard built on them.",
        keys: &[k(
            "listen",
            "Addresses to serve on, e.g. `[\"127.0.0.1:9125\"]`; empty (the default) serves \
             nothing. Bound before the privilege drop, like the mail ports. The metrics tell \
             how busy the host is and nothing about anyone's mail, but keep them on loopback \
             or behind a firewall all the same.",
        )],
    },
    Table {
        name: "limits",
        intro: "Rate limits per client address (an IPv6 client counts per /64) over a sliding \
                minute, and per authenticated user over a sliding day; 0 (the default) is no \
                limit. A connection over `connection_rate` gets `421 4.7.0 HOST Too many \
                connections` and is closed; a MAIL over `message_rate` or `user_daily`, or a \
                RCPT over `recipient_rate`, gets `450 4.7.1` and the session stays usable. \
                Refused attempts count in `mailtool_ratelimit_refusals_total{limit}` and are \
                not counted against the limit again.",
        keys: &[
            k(
                "connection_rate",
                "New SMTP connections per client per minute.",
            ),
            k(
                "message_rate",
                "Messages (MAIL commands) per client per minute.",
            ),
            k(
                "recipient_rate",
                "Recipients (RCPT commands) per client per minute.",
            ),
            k(
                "user_daily",
                "Messages per authenticated (AUTH) user per day, whatever the address: a \
                 leaked password sends at most this much before the owner notices.",
            ),
            k(
                "exempt",
                "`\"local\"` (the default): clients on loopback, in localip and in \
                 relay-domains are not counted by the per-client limits. `\"none\"`: \
                 everybody is.",
            ),
            k(
                "backend",
                "A `[backends]` redis name: the counters live there, so every host that names \
                 it shares one limit. While that Redis cannot be reached the counters of this \
                 process stand in (the log says so), and the limits hold.",
            ),
        ],
    },
    Table {
        name: "dkim",
        intro: "DKIM signing (RFC 6376, RFC 8463) of the mail we send for our own users:                 mail from clients that may relay (AUTH, loopback, localip, POP-before-SMTP,                 relay-domains), from the `sendmail` command, and the server's bounces. The                 key is picked by the domain of the From: address, or failing that by its                 nearest parent that has one (a bounce from MAILER-DAEMON@mail.example1.com is                 signed as example1.com). Signatures are relaxed/relaxed over From, Reply-To,                 Subject, Date, To, Cc, Message-ID, MIME and list fields, the important ones                 oversigned. Mail from a domain with no key goes out unsigned, and the log says                 so. `mailtool dkim keygen` makes keys and prints the DNS record; `doctor` checks                 that it is published.",
        keys: &[k(
            "sign",
            "A list of `{ domain = \"D\", selector = \"S\", key = \"/etc/mail/dkim/D.S.key\" }`:              a PEM private key, RSA (PKCS#1 or PKCS#8, at least 2048 bits) or              Ed25519 (PKCS#8), readable by the server's group. A domain listed with several              selectors is signed with each (the overlap of a key rotation); the same domain              and selector twice is an error. A key that is missing, unreadable or malformed              stops `serve` at start (exit 78) naming its path; on SIGHUP the old keys stay.",
        )],
    },
    Table {
        name: "verify",
        intro: "Checks of mail from clients that may not relay (strangers: not AUTH, not                 loopback, not localip, POP-before-SMTP or relay-domains), with the server's own                 resolver (`[dns]`): SPF (RFC 7208) of MAIL FROM and HELO, every DKIM signature                 (RFC 6376), and DMARC (RFC 7489) with alignment. The results go in an                 Authentication-Results field (RFC 8601) whose authserv-id is the host name; any                 such field claiming our authserv-id that came from outside is removed first.                 Each mode is `\"off\"`, `\"tag\"` (the field only) or `\"enforce\"` (also                 refuse at the end of DATA). A DNS error is a `temperror`, and a temperror never                 refuses. The checks of one message take at most six times `dns.timeout`; SPF                 stops at the RFC's 10 lookups (`permerror`).",
        keys: &[
            k(
                "spf",
                "Enforced, a hard `fail` (`-all`) of MAIL FROM is refused with                  `550 5.7.23`; `softfail` never is.",
            ),
            k(
                "dkim",
                "Enforced, a message whose signatures all fail (none passes) is refused with                  `550 5.7.20`.",
            ),
            k(
                "dmarc",
                "Enforced, a DMARC failure under the domain's `p=reject` is refused with                  `550 5.7.1` and the reason; under `p=quarantine` the message is delivered with                  the field and a log line; under `p=none` it is tagged only. `\"tag\"` never                  refuses.",
            ),
            k(
                "max_size",
                "Bytes. A larger message is not read into memory for DKIM: its signatures                  count as `temperror`, and so does a DMARC result that would have needed them                  (SPF still decides when it passes aligned).",
            ),
        ],
    },
    Table {
        name: "[milter]",
        intro: "A milter (sendmail's INPUT_MAIL_FILTER), one table per filter, called in the \
                order listed; none by default. Each SMTP session opens one connection to each \
                milter and uses it for all its messages. A milter hears the connect, HELO, \
                MAIL, RCPT and DATA commands the server accepted, then the headers, the body \
                (in chunks of at most 64 KiB) and the end of each message, with the macros \
                `j`, `{daemon_name}`, `{client_addr}`, `{client_name}`, `i` (the queue id), \
                `{auth_authen}`, `{auth_type}`, `{tls_version}`, `{cipher}`, `{mail_addr}` and \
                `{rcpt_addr}`; callbacks it declines in negotiation are not sent. It may accept, \
                reject (`550 5.7.1 Command rejected`, `554` for a message), tempfail \
                (`451 4.3.2 Please try again later`), discard, answer with its own reply, add, \
                insert, change and delete header fields, add and delete recipients, change the \
                sender, replace the body, or quarantine the message (held in the queue, shown by \
                `mailq` as `QUARANTINE:`, let go by `mailtool queue release`). The milters run \
                after the checks of `[verify]` and before our own DKIM signature. \
                `mailtool migrate sendmail` writes these tables from a .mc file.",
        keys: &[
            kd(
                "name",
                "(required)",
                "The filter's name, for the log; unique.",
            ),
            kd(
                "socket",
                "(required)",
                "`inet:`*PORT*`@`*HOST*, `inet6:`*PORT*`@`*HOST* or `unix:`*/path* \
                 (`local:` too), as sendmail's `S=`. A unix path is relocated under the root.",
            ),
            kd(
                "on_failure",
                "\"accept\"",
                "What a message gets when the milter cannot be reached, times out or breaks \
                 the protocol, from then on in the session: `\"accept\"` (go on without it, \
                 sendmail's default), `\"tempfail\"` (`F=T`: `451 4.3.2`) or `\"reject\"` \
                 (`F=R`: `550 5.7.1`, `554 5.7.1` for a message). A failure never loses a \
                 message that was accepted, and never leaves the session hanging past the \
                 timeouts.",
            ),
            kd(
                "timeouts",
                "{ connect = \"5m\", send = \"10s\", receive = \"10s\", end = \"5m\" }",
                "sendmail's `T=C:…;S:…;R:…;E:…`: to connect, to send one command, to read one \
                 reply, and for the end of message (started again by each progress reply). \
                 Any of the four may be left out.",
            ),
        ],
    },
];

/// The defaults as `mailtool config show` prints them when run as root.
fn code_defaults() -> toml::Table {
    toml::Table::try_from(Settings::defaults(true)).unwrap_or_default()
}

/// The default of `table.key` as TOML text, from the code.
fn code_default(defaults: &toml::Table, table: &str, key: &str) -> Option<String> {
    let t = if table.is_empty() {
        defaults
    } else {
        defaults.get(table)?.as_table()?
    };
    Some(t.get(key)?.to_string())
}

pub fn page() -> Vec<u8> {
    let defaults = code_defaults();
    let mut p = Page::new("mailtool.toml", "configuration file of mailtool");
    p.section("SYNOPSIS");
    p.para("`/etc/mail/mailtool.toml`");
    p.para(
        "`mailtool --config` *FILE* ..., `mailtool --root` *DIR* ... \
         (*DIR*`/etc/mail/mailtool.toml`)",
    );
    p.section("DESCRIPTION");
    p.para(
        "mailtool(1) reads its settings from a TOML file: what sendmail kept in sendmail.cf \
         (built from an .mc file), qpopper in its command line and poprelayd in its script. \
         Every key is optional, and a missing file means all defaults. Unknown keys and values \
         of the wrong kind are errors, reported with the line and column. \
         `mailtool config check` validates the file; `mailtool config show` prints the \
         effective configuration with every default (`--json` too). \
         `mailtool migrate sendmail` writes one from a sendmail .mc file.",
    );
    p.para(
        "`serve` reads the file at start and again on SIGHUP (listening addresses and the \
         user only at start). Rebuilt maps are picked up without a signal.",
    );
    p.para(
        "Durations are strings with sendmail's units: `\"500ms\"`, `\"30s\"`, `\"15m\"`, \
         `\"1h30m\"`, `\"5d\"`, `\"1w\"`; a bare number is seconds. Sizes are numbers of bytes.",
    );
    p.section("ROOT");
    p.para(
        "The file is `--config` *FILE*, else *ROOT*`/etc/mail/mailtool.toml`. `--root` *DIR* \
         (or MAILTOOL_ROOT) puts every absolute path from this file or from the defaults under \
         *DIR*: `/etc/mail` becomes *DIR*`/etc/mail`, `/var/spool/mqueue` becomes \
         *DIR*`/var/spool/mqueue`. A path given on a command line, such as makemap's map \
         name, is used as given. Without `--root` the root is `/` for root; for any other \
         user it is `$XDG_DATA_HOME/mailtool` (or `~/.local/share/mailtool`), and the \
         listeners default to loopback ports (2525, 2587, 1100).",
    );
    p.section("KEYS");
    p.para(
        "Each key with its default. The defaults shown are the ones used when `serve` runs as \
         root.",
    );
    for table in TABLES {
        let title = if table.name.is_empty() {
            "top level".to_string()
        } else {
            format!("[{}]", table.name)
        };
        p.subsection(&title);
        p.para(table.intro);
        for key in table.keys {
            let default = match key.default {
                Some(d) => d.to_string(),
                None => code_default(&defaults, table.name, key.name).unwrap_or_default(),
            };
            let tag = if d_is_text(key.default) {
                format!("`{}` (default: {default})", key.name)
            } else {
                format!("`{}` = `{default}`", key.name)
            };
            p.item(&tag, key.doc);
        }
    }
    p.section("EXAMPLES");
    p.para(
        "The seed's sendmail setup (its .mc file), as mailtool.toml. The seed's DNSBL, \
relays.ordb.org, has been dead since 2006; use a list that is alive and whose terms of use fit \
the host:",
    );
    p.example(
        r#"hostname = "mail.example1.com"
[smtp]
greet_pause = "5000ms"
max_message_size = 1000000
ptr_check = "resolvable"
dnsbl = [{ zone = "zen.spamhaus.org" }]
[tls]
cert = "/etc/mail/tls/cert.pem"
key  = "/etc/mail/tls/key.pem"
[queue]
interval = "1h"
local_max_size = 1000000"#,
    );
    p.para("A test instance on loopback ports under a scratch root, as the README's walk-through uses:");
    p.example(
        r#"hostname = "mail.example1.com"
user  = "nobody"
group = "nogroup"
[smtp]
listen = ["127.0.0.1:2525"]
submission = []
[pop3]
listen = ["127.0.0.1:1100"]"#,
    );
    p.example(
        "mailtool --root /tmp/stage config check\n\
         mailtool --root /tmp/stage config show --json",
    );
    p.section("ENVIRONMENT");
    p.item(
        "MAILTOOL_CONFIG",
        "The file, as `--config` (for the links cron and scripts call).",
    );
    p.item("MAILTOOL_ROOT", "The root, as `--root`.");
    p.item(
        "MAILTOOL_LOG",
        "Log filter directives that override `log.level`.",
    );
    p.section("FILES");
    p.item("/etc/mail/mailtool.toml", "This file.");
    p.item(
        "/etc/mail/access, virtusertable, aliases, localip, popip, users",
        "Map sources and their .db files.",
    );
    p.item(
        "/etc/mail/local-host-names, relay-domains",
        "Class files (plain text).",
    );
    p.item("/var/spool/mqueue", "The queue.");
    p.item("/var/mail/*user*", "Mailboxes.");
    p.item("/run/mailtool.pid", "The pid of `serve`.");
    p.see_also(&[
        "mailtool(1)",
        "mailtool-config-check(1)",
        "mailtool-config-show(1)",
        "mailtool-serve(1)",
        "mailtool-migrate-sendmail(1)",
        "mailtool-access(5)",
        "mailtool-virtusertable(5)",
        "mailtool-aliases(5)",
    ]);
    p.finish()
}

/// A hand-written default that is prose rather than a TOML value (hostname).
fn d_is_text(d: Option<&str>) -> bool {
    d.is_some_and(|d| d.contains(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key whose default comes from the code exists in the code; hand-written defaults
    /// of keys that exist match the code's.
    #[test]
    fn defaults_agree_with_the_code() {
        let defaults = code_defaults();
        for t in TABLES {
            for key in t.keys {
                let code = code_default(&defaults, t.name, key.name);
                match key.default {
                    None => assert!(code.is_some(), "{}.{} is not in the code", t.name, key.name),
                    Some(d) if !d_is_text(Some(d)) => {
                        if let Some(c) = code {
                            assert_eq!(c, d, "{}.{}", t.name, key.name);
                        }
                    }
                    Some(_) => {}
                }
            }
        }
    }

    /// The keys of `[[milter]]` are exactly the fields of a milter.
    #[test]
    fn milter_keys_are_the_milter_fields() {
        let m = crate::config::Milter {
            name: "m".into(),
            socket: "inet:1@127.0.0.1".into(),
            on_failure: crate::config::MilterFailure::Accept,
            timeouts: crate::config::MilterTimeouts::default(),
        };
        let mut fields: Vec<String> = toml::Table::try_from(&m).unwrap().keys().cloned().collect();
        let t = TABLES.iter().find(|t| t.name == "[milter]").unwrap();
        let mut documented: Vec<String> = t.keys.iter().map(|k| k.name.to_string()).collect();
        fields.sort();
        documented.sort();
        assert_eq!(documented, fields);
        let d = crate::config::MilterTimeouts::default();
        let shown = format!(
            "{{ connect = \"{}\", send = \"{}\", receive = \"{}\", end = \"{}\" }}",
            d.connect, d.send, d.receive, d.end
        );
        assert_eq!(t.keys[3].default, Some(shown.as_str()));
    }

    /// The keys of `[backends.NAME]`, which `config show` prints only when one is set, are
    /// exactly the fields of a backend.
    #[test]
    fn backend_keys_are_the_backend_fields() {
        let b = crate::config::Backend {
            kind: crate::config::BackendKind::Redis,
            url: "redis://127.0.0.1/0".into(),
            password_file: String::new(),
            timeout: crate::duration::Span(std::time::Duration::from_secs(2)),
            pool: 4,
        };
        let fields: Vec<String> = toml::Table::try_from(&b).unwrap().keys().cloned().collect();
        let t = TABLES.iter().find(|t| t.name == "backends.NAME").unwrap();
        let mut documented: Vec<String> = t.keys.iter().map(|k| k.name.to_string()).collect();
        let mut fields = fields;
        fields.sort();
        documented.sort();
        assert_eq!(documented, fields);
    }
}
