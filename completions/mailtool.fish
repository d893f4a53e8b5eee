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
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "serve" -d 'Run the SMTP server in the foreground'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "mailq" -d 'List the mail queue (sendmail mailq / -bp)'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "queue" -d 'Run the queue now, or delete, hold or release messages'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "smtp-send" -d 'Send a test message over SMTP (like swaks)'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "sendmail" -d 'Submit a message from stdin, like sendmail(8) (also -bp, -bi, -bd, -bs, -bv, -q)'
complete -c mailtool -n "__fish_mailtool_needs_command" -f -a "config" -d 'Check or show the configuration (mailtool.toml)'
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
complete -c mailtool -n "__fish_mailtool_using_subcommand mailq" -s q -d 'Only matching entries: Rsubstr, Ssubstr, Isubstr, each optionally after `!`' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand mailq" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand mailq" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand mailq" -s v -d 'Verbose layout: priority, per-recipient status'
complete -c mailtool -n "__fish_mailtool_using_subcommand mailq" -l json -d 'One JSON array with an object per message'
complete -c mailtool -n "__fish_mailtool_using_subcommand mailq" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -f -a "run" -d 'Deliver what is queued now (sendmail -q): through the daemon, or directly'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -f -a "delete" -d 'Remove messages from the queue without delivering them (postsuper -d)'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -f -a "hold" -d 'Keep messages in the queue; runs skip them until released (postsuper -h)'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and not __fish_seen_subcommand_from run delete hold release help" -f -a "release" -d 'Let held messages go again (postsuper -H)'
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
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "release" -d 'Let held messages go again (postsuper -H)'
complete -c mailtool -n "__fish_mailtool_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -s s -l server -d 'Server to send to [default: the MX of the recipients\' domain]' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -s p -l port -d 'Port when --server gives none, and for MX delivery [default: 25, or 465 with --tls]' -r
complete -c mailtool -n "__fish_mailtool_using_subcommand smtp-send" -s f -l from -d 'Envelope sender and From: (\'\' for the null sender)' -r
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
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and not __fish_seen_subcommand_from check show help" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and not __fish_seen_subcommand_from check show help" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and not __fish_seen_subcommand_from check show help" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and not __fish_seen_subcommand_from check show help" -f -a "check" -d 'Validate the configuration file; errors name the line and column'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and not __fish_seen_subcommand_from check show help" -f -a "show" -d 'Print the effective configuration, defaults included'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and not __fish_seen_subcommand_from check show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from check" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from check" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from show" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from show" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from show" -l json -d 'Print JSON instead of TOML'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate the configuration file; errors name the line and column'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print the effective configuration, defaults included'
complete -c mailtool -n "__fish_mailtool_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand completions" -l dir -d 'Write bash, zsh and fish completions into DIR' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand completions" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand completions" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand completions" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand man" -l dir -d 'Write mailtool.1 and one page per subcommand into DIR' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand man" -l config -d 'Configuration file [default: ROOT/etc/mail/mailtool.toml]' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand man" -l root -d 'Prefix every path from the configuration with DIR (tests, chroots, staging)' -r -F
complete -c mailtool -n "__fish_mailtool_using_subcommand man" -s h -l help -d 'Print help'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve mailq queue smtp-send sendmail config completions man help" -f -a "makemap" -d 'Build, dump or query a map (sendmail makemap(8), with postmap\'s -q)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve mailq queue smtp-send sendmail config completions man help" -f -a "newaliases" -d 'Rebuild the aliases database (sendmail newaliases(1))'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve mailq queue smtp-send sendmail config completions man help" -f -a "serve" -d 'Run the SMTP server in the foreground'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve mailq queue smtp-send sendmail config completions man help" -f -a "mailq" -d 'List the mail queue (sendmail mailq / -bp)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve mailq queue smtp-send sendmail config completions man help" -f -a "queue" -d 'Run the queue now, or delete, hold or release messages'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve mailq queue smtp-send sendmail config completions man help" -f -a "smtp-send" -d 'Send a test message over SMTP (like swaks)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve mailq queue smtp-send sendmail config completions man help" -f -a "sendmail" -d 'Submit a message from stdin, like sendmail(8) (also -bp, -bi, -bd, -bs, -bv, -q)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve mailq queue smtp-send sendmail config completions man help" -f -a "config" -d 'Check or show the configuration (mailtool.toml)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve mailq queue smtp-send sendmail config completions man help" -f -a "completions" -d 'Print a shell completion script, or write all of them with --dir'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve mailq queue smtp-send sendmail config completions man help" -f -a "man" -d 'Print the mailtool(1) man page, or write every page with --dir'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and not __fish_seen_subcommand_from makemap newaliases serve mailq queue smtp-send sendmail config completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "run" -d 'Deliver what is queued now (sendmail -q): through the daemon, or directly'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "delete" -d 'Remove messages from the queue without delivering them (postsuper -d)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "hold" -d 'Keep messages in the queue; runs skip them until released (postsuper -h)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "release" -d 'Let held messages go again (postsuper -H)'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Validate the configuration file; errors name the line and column'
complete -c mailtool -n "__fish_mailtool_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'Print the effective configuration, defaults included'
