# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mailtool_global_optspecs
    string join \n config= root= h/help V/version
end

function __fish_mailtool_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mailtool_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mailtool_using_subcommand
    set -l cmd (__fish_mailtool_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mailtool -n "__fish_mailtool_needs_command" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_needs_command" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailtool -n "__fish_mailtool_needs_command" -s V -l version -d 'Print version'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "makemap" -d 'Build, dump or query a map (sendmail makemap(8), with postmap\'s -q)'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "newaliases" -d 'Rebuild the aliases database (sendmail newaliases(1))'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "serve" -d 'Run the SMTP and POP3 server in the foreground'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "setup" -d 'Prepare a first start: the system account, a commented mailtool.toml, a certificate'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "mailq" -d 'List the mail queue (sendmail mailq / -bp)'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "relaycheck" -d 'Test servers for open relaying (nmap\'s 16 probes and more)'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "queue" -d 'Run the queue now, or delete, hold or release messages'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "smtp-send" -d 'Send a test message over SMTP (like swaks)'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "sendmail" -d 'Submit a message from stdin, like sendmail(8) (also -bp, -bi, -bd, -bs, -bv, -q)'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "pop-login" -d 'Log in to a POP3 server and report the mailbox (the seed\'s telnet check)'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "passwd" -d 'Set, delete, list or import virtual users\' passwords (the users map)'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "poprelay" -d 'List, add, remove or expire POP-before-SMTP addresses (poprelayd)'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "config" -d 'Check or show the configuration (mailtool.toml)'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "doctor" -d 'Check the installation and say how to fix what is wrong'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "dkim" -d 'Make DKIM signing keys and print the DNS records to publish'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "migrate" -d 'Translate another mail system\'s setup (a sendmail .mc and /etc/mail) into mailtool\'s'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "completions" -d 'Print a shell completion script, or write all of them with --dir'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "man" -d 'Print the mailtool(1) man page, or write every page with --dir'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s C -d 'sendmail.cf to read (accepted for compatibility; mailtool needs none)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s c -d 'Cache size in bytes (accepted for compatibility; SQLite sizes its own cache)' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s D -d 'Comment character instead of `#` (only its first character counts)' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s i -d 'Fallback type when TYPE is not available (accepted; every type is available)' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s t -d 'Key/value separator instead of white space; also used between them in -u output' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s q -d 'Print the value of KEY (exit 1 if absent); `-` reads keys from standard input and prints `key<TAB>value` for each key found' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -l delete -d 'Delete KEY from the map in place (exit 1 if absent)' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s N -d 'Store a terminating NUL in keys and values'
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s d -d 'Allow duplicate keys: every value is stored, lookups return the first'
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s e -d 'Allow keys with an empty value'
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s f -d 'Do not fold keys to lower case'
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s l -d 'List the supported map types and exit'
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s o -d 'Append to an existing map instead of replacing it (one transaction)'
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s r -d 'Allow replacement: a repeated key silently takes the later value'
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s s -d 'Skip the safety checks on the map file (symbolic links, hard links, writable directories)'
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s u -d 'Dump the map to standard output, one `key<TAB>value` per line'
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s v -d 'Print every record as it is stored'
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -l json -d 'With -u or -q: print JSON'
complete -c mailtool -n "__fish_mailtool_using_subcommand makemap" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand newaliases" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand newaliases" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand newaliases" -s v -d 'Also list every alias stored'
complete -c mailtool -n "__fish_mailtool_using_subcommand newaliases" -l dump -d 'Print the database instead of rebuilding it (like praliases)'
complete -c mailtool -n "__fish_mailtool_using_subcommand newaliases" -l json -d 'With --dump: print JSON'
complete -c mailtool -n "__fish_mailtool_using_subcommand newaliases" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand serve" -l pid-file -d 'Where to write the process id [default: ROOT/run/mailtool.pid]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand serve" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand serve" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand serve" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand setup" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand setup" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand setup" -s n -l dry-run -d 'Print what would be done, and change nothing'
complete -c mailtool -n "__fish_mailtool_using_subcommand setup" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand mailq" -s q -d 'Only matching entries: Rsubstr, Ssubstr, Isubstr, each optionally after `!`' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand mailq" -s A -d '`-Ac`: the client queue (`[paths] client_spool`, where the sendmail command leaves mail while the daemon is down) instead of the main one; `-Am` is the main one, as in sendmail' -r -f -a "c\t''
m\t''"
complete -c mailtool -n "__fish_mailtool_using_subcommand mailq" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand mailq" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand mailq" -s v -d 'Verbose layout: priority, per-recipient status'
complete -c mailtool -n "__fish_mailtool_using_subcommand mailq" -l json -d 'One JSON array with an object per message'
complete -c mailtool -n "__fish_mailtool_using_subcommand mailq" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l hosts-file -d 'Read more servers from FILE: one HOST[:PORT] a line, `#` starts a comment' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l domain -d 'The outside domain in the probes; it must not be one the server serves [default: nmap.scanme.org, as nmap]' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l from -d 'Sender local part [default: antispam]; with --classic the whole address [default: checker@example.com]' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l to -d 'Recipient local part [default: relaytest]; with --classic the whole address [default: somewhere@example.com]' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l helo -d 'The EHLO name [default: the --domain, as nmap]; with --classic the HELO name [default: mail.example.com]' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l ip -d 'The address in the IP-literal probes [default: the server\'s]' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l source -d 'Connect from this local address (multi-homed hosts; an untrusted loopback address)' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l starttls -d 'Upgrade with STARTTLS; `auto`: only when the server offers it' -r -f -a "always\t'Require it: fail when the server does not offer it'
auto\t'Use it when the server offers it'"
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l ca-file -d 'Trust only the CA certificates in FILE (PEM) instead of the system store' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l timeout -d 'How long to wait for each reply (e.g. 30s, 500ms)' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l concurrency -d 'Test up to N servers at once' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l classic -d 'relaychecker.pl\'s single probe (helo, mail from, rcpt to) and its `HOST relay Allow|Deny` line'
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l tls -d 'Implicit TLS from the first byte (SMTPS, port 465)'
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -s k -l insecure -d 'Do not verify the server\'s certificate'
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l data -d 'Count a relay only when DATA is accepted (as Metasploit does); then send a short message that says it is a relay test. Needs --domain (a domain whose mail you read)'
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -l json -d 'Print the results as JSON (an array, one object per server)'
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -s v -l verbose -d 'Print the SMTP transcript on stderr'
complete -c mailtool -n "__fish_mailtool_using_subcommand relaycheck" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -f -a "run" -d 'Deliver what is queued now (sendmail -q): through the daemon, or directly'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -f -a "delete" -d 'Remove messages from the queue without delivering them (postsuper -d)'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -f -a "hold" -d 'Keep messages in the queue; runs skip them until released (postsuper -h)'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -f -a "release" -d 'Let held or quarantined messages go again (postsuper -H)'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from run" -s q -d 'Only matching entries: Rsubstr, Ssubstr, Isubstr, each optionally after `!`' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from run" -l pid-file -d 'Daemon\'s pid file [default: ROOT/run/mailtool.pid]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from run" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from run" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from run" -l direct -d 'Deliver in this process even when the daemon is running'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from delete" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from delete" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from hold" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from hold" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from hold" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from release" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from release" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from release" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "run" -d 'Deliver what is queued now (sendmail -q): through the daemon, or directly'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Remove messages from the queue without delivering them (postsuper -d)'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "hold" -d 'Keep messages in the queue; runs skip them until released (postsuper -h)'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "release" -d 'Let held or quarantined messages go again (postsuper -H)'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -s s -l server -d 'Server to send to [default: the MX of the recipients\' domain]' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -s p -l port -d 'Port when --server gives none, and for MX delivery [default: 25, or 465 with --tls]' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -s f -l from -d 'Envelope sender and From: (\'\' for the null sender, with From: MAILER-DAEMON@HELO)' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -s t -l to -d 'Recipient (repeatable)' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l subject -d 'Subject [default: test DATE]' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -s H -l header -d 'An extra header \'Name: value\' (repeatable; From/To/Subject/Date/Message-ID replace ours)' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l body -d 'Body text, @FILE to read a file, or - for standard input' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l attach -d 'Attach a file, its MIME type guessed from the extension (repeatable)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l data -d 'Send FILE (- for standard input) as the whole message, as is' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l helo -d 'Name to give in EHLO/HELO and in the Message-ID [default: this host\'s name]' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l source -d 'Local address to connect from' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l starttls -d 'Upgrade with STARTTLS; `auto`: only when the server offers it' -r -f -a "always\t'Require it: fail when the server does not offer it'
auto\t'Use it when the server offers it'"
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l ca-file -d 'Trust only the CA certificates in FILE (PEM) instead of the system store' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l auth -d 'Authenticate with this SASL mechanism (needs --user)' -r -f -a "PLAIN\t''
LOGIN\t''"
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l user -d 'User name for --auth' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l password-file -d 'Read the password from the first line of FILE [default: $MAILTOOL_PASSWORD]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l timeout -d 'Timeout for connecting and for each reply (500ms, 30s, 2m)' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l tls -d 'Implicit TLS from the first byte (SMTPS, port 465)'
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -s k -l insecure -d 'Do not verify the server\'s certificate'
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l allow-plaintext-auth -d 'Allow AUTH without TLS to a server that is not on loopback'
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l pipeline -d 'Send MAIL, RCPT and DATA in one group (the server must offer PIPELINING)'
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -s v -l verbose -d 'Print the SMTP conversation on stderr (passwords masked)'
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -l json -d 'Print one JSON object describing the transaction on stdout'
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailtool -n "__fish_mailtool_using_subcommand sendmail" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand sendmail" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -s u -l user -d 'The user name to log in as' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l ca-file -d 'Trust only the CA certificates in FILE (PEM) [default: the system\'s trust store]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l auth -d 'How to log in [default: user]' -r -f -a "user\t'USER and PASS'
apop\t'APOP: MD5 of the greeting\'s timestamp and the password'
plain\t'AUTH PLAIN (SASL)'"
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l timeout -d 'How long to wait to connect and for each reply (30s, 1m, 500ms)' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l retr -d 'Print message N as the server holds it (RETR); the summary line then goes to stderr' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l top -d 'Print the headers and the first L body lines of message N (TOP)' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l stls -d 'Start TLS with STLS before logging in (RFC 2595)'
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l tls -d 'TLS from the first byte (POP3S)'
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -s k -l insecure -d 'Do not verify the server\'s certificate: encrypts, but anyone may be at the other end'
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l apop -d 'Log in with APOP (same as --auth apop)'
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l allow-plaintext -d 'Send a password unencrypted even to an address that is not loopback'
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l list -d 'List the messages and their sizes (LIST)'
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l uidl -d 'List the messages\' unique ids (UIDL)'
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -s v -l verbose -d 'Show the session on stderr (C: client, S: server); secrets appear as ********'
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -l json -d 'Print one JSON object with the result instead of text'
complete -c mailtool -n "__fish_mailtool_using_subcommand pop-login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailtool -n "__fish_mailtool_using_subcommand passwd" -l import -d 'Import `user:hash` lines (/etc/shadow style; sha512-crypt or argon2id) from FILE, `-` for standard input; locked and empty entries are skipped' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand passwd" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand passwd" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand passwd" -l delete -d 'Remove USER from the users map'
complete -c mailtool -n "__fish_mailtool_using_subcommand passwd" -l apop -d 'Also keep the password as USER\'s APOP secret (RFC 1939 APOP needs it in the clear on the server, as qpopper\'s popauth did); without it, a password change removes any APOP secret'
complete -c mailtool -n "__fish_mailtool_using_subcommand passwd" -l list -d 'List the users, the scheme of each hash and whether an APOP secret is stored (hashes and secrets are never shown)'
complete -c mailtool -n "__fish_mailtool_using_subcommand passwd" -l json -d 'With --list: print JSON'
complete -c mailtool -n "__fish_mailtool_using_subcommand passwd" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and not __fish_seen_subcommand_from list add remove expire help" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and not __fish_seen_subcommand_from list add remove expire help" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and not __fish_seen_subcommand_from list add remove expire help" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and not __fish_seen_subcommand_from list add remove expire help" -f -a "list" -d 'Show each address, its age and when it stops relaying (poprelayd -p)'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and not __fish_seen_subcommand_from list add remove expire help" -f -a "add" -d 'Let addresses relay as if they had just logged in to POP3 (poprelayd -a)'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and not __fish_seen_subcommand_from list add remove expire help" -f -a "remove" -d 'Take addresses out of the map (poprelayd -r)'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and not __fish_seen_subcommand_from list add remove expire help" -f -a "expire" -d 'Remove entries older than the TTL now; entries without a time stay'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and not __fish_seen_subcommand_from list add remove expire help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from list" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from list" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from list" -l json -d 'Print JSON'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from add" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from add" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from remove" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from remove" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from expire" -l ttl -d 'Age limit [default: [pop3] pop_before_smtp_ttl, 15m]' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from expire" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from expire" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from expire" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from help" -f -a "list" -d 'Show each address, its age and when it stops relaying (poprelayd -p)'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from help" -f -a "add" -d 'Let addresses relay as if they had just logged in to POP3 (poprelayd -a)'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Take addresses out of the map (poprelayd -r)'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from help" -f -a "expire" -d 'Remove entries older than the TTL now; entries without a time stay'
complete -c mailtool -n "__fish_mailtool_using_subcommand poprelay; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and not __fish_seen_subcommand_from check show help" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and not __fish_seen_subcommand_from check show help" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and not __fish_seen_subcommand_from check show help" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and not __fish_seen_subcommand_from check show help" -f -a "check" -d 'Validate the configuration as `serve` would at start: syntax (errors name the line and column), the [tls] files, [dns] servers, the run-time user, and a trial bind of every listener (exit 78, 71 or 69, as serve would)'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and not __fish_seen_subcommand_from check show help" -f -a "show" -d 'Print the effective configuration, defaults included'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and not __fish_seen_subcommand_from check show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from check" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from check" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from show" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from show" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from show" -l json -d 'Print JSON instead of TOML'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate the configuration as `serve` would at start: syntax (errors name the line and column), the [tls] files, [dns] servers, the run-time user, and a trial bind of every listener (exit 78, 71 or 69, as serve would)'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print the effective configuration, defaults included'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand doctor" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand doctor" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand doctor" -l fix -d 'Rebuild maps that are older than their text source (like `make -C /etc/mail`)'
complete -c mailtool -n "__fish_mailtool_using_subcommand doctor" -l offline -d 'Skip the checks that need a running server (listeners, open relay)'
complete -c mailtool -n "__fish_mailtool_using_subcommand doctor" -l json -d 'One JSON object: {"checks": [...], "status": "pass|warn|fail"}'
complete -c mailtool -n "__fish_mailtool_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand dkim; and not __fish_seen_subcommand_from keygen help" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand dkim; and not __fish_seen_subcommand_from keygen help" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand dkim; and not __fish_seen_subcommand_from keygen help" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand dkim; and not __fish_seen_subcommand_from keygen help" -f -a "keygen" -d 'Write a new private key (mode 0640, the server\'s group) and print its TXT record'
complete -c mailtool -n "__fish_mailtool_using_subcommand dkim; and not __fish_seen_subcommand_from keygen help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand dkim; and __fish_seen_subcommand_from keygen" -l algorithm -d 'RSA-2048 (what every verifier takes) or Ed25519 (RFC 8463)' -r -f -a "rsa\t''
ed25519\t''"
complete -c mailtool -n "__fish_mailtool_using_subcommand dkim; and __fish_seen_subcommand_from keygen" -l out -d 'Where to write the key [default: MAIL_DIR/dkim/DOMAIN.SELECTOR.key]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand dkim; and __fish_seen_subcommand_from keygen" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand dkim; and __fish_seen_subcommand_from keygen" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand dkim; and __fish_seen_subcommand_from keygen" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand dkim; and __fish_seen_subcommand_from help" -f -a "keygen" -d 'Write a new private key (mode 0640, the server\'s group) and print its TXT record'
complete -c mailtool -n "__fish_mailtool_using_subcommand dkim; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and not __fish_seen_subcommand_from sendmail help" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and not __fish_seen_subcommand_from sendmail help" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and not __fish_seen_subcommand_from sendmail help" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and not __fish_seen_subcommand_from sendmail help" -f -a "sendmail" -d 'Translate a sendmail .mc and /etc/mail into mailtool.toml and mailtool maps'
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and not __fish_seen_subcommand_from sendmail help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and __fish_seen_subcommand_from sendmail" -l mc -d 'The .mc file [default: ROOT/etc/mail/sendmail.mc]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and __fish_seen_subcommand_from sendmail" -l etc -d 'sendmail\'s map and class files [default: ROOT/etc/mail]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and __fish_seen_subcommand_from sendmail" -l sysconfig -d 'The start-up settings (QUEUE=1h, DAEMON=yes), e.g. /etc/sysconfig/sendmail' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and __fish_seen_subcommand_from sendmail" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and __fish_seen_subcommand_from sendmail" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and __fish_seen_subcommand_from sendmail" -l write -d 'Write mailtool.toml and build the maps'
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and __fish_seen_subcommand_from sendmail" -l dry-run -d 'Show the result without writing anything (the default)'
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and __fish_seen_subcommand_from sendmail" -l force -d 'With --write: replace an existing mailtool.toml'
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and __fish_seen_subcommand_from sendmail" -l json -d 'Print one JSON object (configuration, maps, untranslated items)'
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and __fish_seen_subcommand_from sendmail" -s v -l verbose -d 'Also list the directives that need nothing (VERSIONID, MAILER(local), comments, …)'
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and __fish_seen_subcommand_from sendmail" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "sendmail" -d 'Translate a sendmail .mc and /etc/mail into mailtool.toml and mailtool maps'
complete -c mailtool -n "__fish_mailtool_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand completions" -l dir -d 'Write bash, zsh and fish completions into DIR' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand completions" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand completions" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand completions" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand man" -l dir -d 'Write mailtool.1, one page per subcommand, and the file-format pages (section 5) into DIR' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand man" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand man" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand man" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "makemap" -d 'Build, dump or query a map (sendmail makemap(8), with postmap\'s -q)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "newaliases" -d 'Rebuild the aliases database (sendmail newaliases(1))'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "serve" -d 'Run the SMTP and POP3 server in the foreground'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "setup" -d 'Prepare a first start: the system account, a commented mailtool.toml, a certificate'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "mailq" -d 'List the mail queue (sendmail mailq / -bp)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "relaycheck" -d 'Test servers for open relaying (nmap\'s 16 probes and more)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "queue" -d 'Run the queue now, or delete, hold or release messages'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "smtp-send" -d 'Send a test message over SMTP (like swaks)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "sendmail" -d 'Submit a message from stdin, like sendmail(8) (also -bp, -bi, -bd, -bs, -bv, -q)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "pop-login" -d 'Log in to a POP3 server and report the mailbox (the seed\'s telnet check)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "passwd" -d 'Set, delete, list or import virtual users\' passwords (the users map)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "poprelay" -d 'List, add, remove or expire POP-before-SMTP addresses (poprelayd)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "config" -d 'Check or show the configuration (mailtool.toml)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "doctor" -d 'Check the installation and say how to fix what is wrong'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "dkim" -d 'Make DKIM signing keys and print the DNS records to publish'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "migrate" -d 'Translate another mail system\'s setup (a sendmail .mc and /etc/mail) into mailtool\'s'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "completions" -d 'Print a shell completion script, or write all of them with --dir'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "man" -d 'Print the mailtool(1) man page, or write every page with --dir'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve setup mailq relaycheck queue smtp-send sendmail pop-login passwd poprelay config doctor dkim migrate completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "run" -d 'Deliver what is queued now (sendmail -q): through the daemon, or directly'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "delete" -d 'Remove messages from the queue without delivering them (postsuper -d)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "hold" -d 'Keep messages in the queue; runs skip them until released (postsuper -h)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "release" -d 'Let held or quarantined messages go again (postsuper -H)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from poprelay" -f -a "list" -d 'Show each address, its age and when it stops relaying (poprelayd -p)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from poprelay" -f -a "add" -d 'Let addresses relay as if they had just logged in to POP3 (poprelayd -a)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from poprelay" -f -a "remove" -d 'Take addresses out of the map (poprelayd -r)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from poprelay" -f -a "expire" -d 'Remove entries older than the TTL now; entries without a time stay'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Validate the configuration as `serve` would at start: syntax (errors name the line and column), the [tls] files, [dns] servers, the run-time user, and a trial bind of every listener (exit 78, 71 or 69, as serve would)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'Print the effective configuration, defaults included'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from dkim" -f -a "keygen" -d 'Write a new private key (mode 0640, the server\'s group) and print its TXT record'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "sendmail" -d 'Translate a sendmail .mc and /etc/mail into mailtool.toml and mailtool maps'
