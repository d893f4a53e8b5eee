#!/usr/bin/env bash
# Delivery throughput of `mailtool serve` against Postfix (issue 4), end to end:
#   relay:  smtp-source -s 20 -m 10000 -l 1000 -> server -> smtp-sink on 127.0.0.3
#           (mailtool: [queue] smart_host; Postfix: relayhost, default_transport = smtp)
#   local:  smtp-source -s 20 -m 10000 -l 1000 -> server -> one mbox file in the work dir
#           (mailtool: local-host-names + a virtual user in the users map, mbox under
#            [paths] mailboxes; Postfix: its virtual(8) agent writing an mbox file)
# The clock starts when smtp-source starts and stops when the last message has arrived: the
# sink's message counter (smtp-sink -c) or the mbox's `From ` lines reach N, polled every
# 100 ms. mailtool uses its default delivery settings (delivery_mode = "background",
# max_parallel 20, max_per_destination 10); Postfix uses qmgr's defaults, except that local
# delivery is measured both with virtual(8) at concurrency 1 and at its default (20).
#
# Usage: benches/delivery-compare.sh        (from any directory; as root: apt-get, a private
#                                            Postfix, the server dropping to nobody)
# Environment:
#   MAILTOOL=/path/to/mailtool   use this binary instead of `cargo build --release`
#   MESSAGES=10000 SESSIONS=20 LENGTH=1000   smtp-source's -m, -s and -l
#   REPEATS=2                    runs per server and scenario; the fastest one is reported
#   SCENARIOS="relay local"      which scenarios to run, in this order
#   RUN_TIMEOUT=300              seconds one run (load plus delivery) may take
#   KEEP_WORK=1                  keep the work directory (configs, logs, spools, mboxes)
#
# Prints a markdown table and writes it to benches/results/delivery-compare.md.
# All traffic stays on 127.0.0.0/8; every process started here is stopped on exit.
set -euo pipefail

BENCH=delivery-compare
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
need_root "apt-get, a private Postfix instance, privilege drop"

MESSAGES=${MESSAGES:-10000}
SESSIONS=${SESSIONS:-20}
LENGTH=${LENGTH:-1000}
REPEATS=${REPEATS:-2}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
SCENARIOS=${SCENARIOS:-relay local}
positive_ints MESSAGES SESSIONS LENGTH REPEATS RUN_TIMEOUT
for s in $SCENARIOS; do
    case $s in relay | local) ;; *) die "SCENARIOS: unknown scenario '$s' (relay, local)" ;; esac
done
RESULTS_DIR=$ROOT/benches/results
RESULTS=$RESULTS_DIR/delivery-compare.md
FROM=bench@source.test
LOCAL_USER=bench
LOCAL_DOMAIN=bench.test
LOCAL_RCPT=$LOCAL_USER@$LOCAL_DOMAIN
# Postfix with virtual(8)'s default concurrency gets the same mailbox through a second domain.
PF_DEFAULT_DOMAIN=default.$LOCAL_DOMAIN
PF_DEFAULT_RCPT=$LOCAL_USER@$PF_DEFAULT_DOMAIN
RELAY_RCPT=sink@relay.test
SINK_ADDR=127.0.0.3

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
command -v python3 >/dev/null || apt_install python3
command -v timeout >/dev/null || apt_install coreutils

# Installing postfix may start the system's daemon: stop it again, port 25 stays free.
stop_system_postfix() {
    systemctl stop postfix 2>/dev/null || true
    postfix stop 2>/dev/null || true
    service postfix stop 2>/dev/null || true
}
# (postconf needs a main.cf, which "No configuration" does not write: the daemon directory is
# Debian's.)
PF_DAEMONS=/usr/lib/postfix/sbin
if [ ! -x /usr/sbin/smtp-source ] || [ ! -x /usr/sbin/smtp-sink ] || ! command -v postfix >/dev/null \
    || [ ! -x "$PF_DAEMONS/virtual" ]; then
    apt_update
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections \
        || die "debconf-set-selections failed"
    apt_install postfix
    stop_system_postfix
fi
SOURCE=/usr/sbin/smtp-source
SINK=/usr/sbin/smtp-sink
if [ ! -x "$SOURCE" ] || [ ! -x "$SINK" ]; then
    die "smtp-source/smtp-sink not in /usr/sbin after installing postfix"
fi
PF_VERSION=$(dpkg-query -W -f='${Version}' postfix 2>/dev/null || postconf -h mail_version)
NOBODY_UID=$(id -u nobody) || die "no user nobody"
NOGROUP_GID=$(getent group nogroup | cut -d: -f3)
[ -n "$NOGROUP_GID" ] || die "no group nogroup"

# ---------------------------------------------------------------------------------------------
# mailtool
# ---------------------------------------------------------------------------------------------
build_mailtool

# ---------------------------------------------------------------------------------------------
# Work area; everything started is recorded here and stopped on exit
# ---------------------------------------------------------------------------------------------
# Under the target dir (a real disk: spool and mbox fsyncs must cost what they cost) if the
# unprivileged server can reach it, else /var/tmp.
CACHE=$TARGET_DIR/delivery-compare
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/work.XXXXXX")
chmod 755 "$WORK"
if ! runuser -u nobody -- test -x "$WORK" 2>/dev/null; then
    rm -rf "$WORK"
    WORK=$(mktemp -d /var/tmp/delivery-compare.XXXXXX)
    chmod 755 "$WORK"
fi
FSTYPE=$(df --output=fstype "$WORK" 2>/dev/null | tail -n 1 || stat -f -c %T "$WORK")
[ "$FSTYPE" != tmpfs ] || note "warning: $WORK is on tmpfs: fsync costs nothing there"

MT_PID='' SINK_PID='' SRC_PID='' PF_CONF=''
stop_postfix_instance() {
    [ -n "$PF_CONF" ] || return 0
    postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true
    local i pid
    pid=$(head -1 "$PF_QUEUE/pid/master.pid" 2>/dev/null | tr -d ' ' || true)
    for ((i = 0; i < 100; i++)); do
        if [ -z "$pid" ] || ! alive "$pid"; then break; fi
        sleep 0.1
    done
    [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
    PF_CONF=''
}
cleanup() {
    local rc=$?
    # smtp-source runs in a wrapper subshell; its own pid is in $WORK/source.pid.
    if [ -n "$SRC_PID" ]; then
        stop_pid "$(cat "$WORK/source.pid" 2>/dev/null || true)"
        stop_pid "$SRC_PID"
    fi
    stop_pid "$MT_PID"
    stop_postfix_instance
    stop_pid "$SINK_PID"
    remove_work
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port ADDR PORT: until something listens there (at most 10 s).
wait_port() {
    local i
    for ((i = 0; i < 100; i++)); do
        if python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()' "$1" "$2" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
elapsed_over() { awk -v a="$1" -v b="$EPOCHREALTIME" -v l="$2" 'BEGIN { exit !(b - a > l) }'; }

load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v c="$(nproc)" 'BEGIN { exit !(l > c / 2) }'; then
    note "warning: load average is $load on $(nproc) cores: other work will skew the timings"
fi

# ---------------------------------------------------------------------------------------------
# The sink: one smtp-sink on 127.0.0.3 for the whole run; each run counts from its counter's
# value at the start (smtp-sink -c prints "sess=N quit=N mesg=N" after every event, \r-separated)
# ---------------------------------------------------------------------------------------------
SINK_PORT=''
SINK_LOG=$WORK/smtp-sink.log
sink_count() {
    local c
    c=$(tail -c 200 "$SINK_LOG" 2>/dev/null | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2 || true)
    echo "${c:-0}"
}
start_sink() {
    SINK_PORT=$(free_port "$SINK_ADDR")
    note "smtp-sink on $SINK_ADDR:$SINK_PORT"
    "$SINK" -c -u nobody "$SINK_ADDR:$SINK_PORT" 256 >"$SINK_LOG" 2>&1 &
    SINK_PID=$!
    wait_port "$SINK_ADDR" "$SINK_PORT" || die "smtp-sink did not start: $(head -c 500 "$SINK_LOG")"
}
# mbox_count FILE: messages in an mbox (lines starting "From "; bodies have none, and both
# servers quote one anyway).
mbox_count() {
    local c
    c=$(grep -c '^From ' "$1" 2>/dev/null || true)
    echo "${c:-0}"
}

# ---------------------------------------------------------------------------------------------
# One timed run
# ---------------------------------------------------------------------------------------------
# timed_run LABEL PORT RCPT COUNTER [ARG]: smtp-source against 127.0.0.1:PORT, then polls
# `COUNTER ARG` every 100 ms until it has grown by MESSAGES. Sets SECS (until the last delivery)
# and ACCEPT_SECS (until smtp-source had all of them accepted and exited).
SECS='' ACCEPT_SECS=''
timed_run() {
    local label=$1 port=$2 rcpt=$3 counter=$4 arg=${5:-} base now t0 t1 done_file=$WORK/source.done
    local log=$WORK/smtp-source.log src_t='' src_rc=''
    base=$("$counter" "$arg")
    rm -f "$done_file" "$WORK/source.pid"
    sync # the previous run's files and deletions are not written back during this one
    t0=$EPOCHREALTIME
    (
        "$SOURCE" -c -s "$SESSIONS" -m "$MESSAGES" -l "$LENGTH" -f "$FROM" -t "$rcpt" \
            "127.0.0.1:$port" >"$log" 2>&1 &
        echo $! >"$WORK/source.pid"
        rc=0
        wait $! || rc=$?
        echo "$EPOCHREALTIME $rc" >"$done_file.tmp"
        mv "$done_file.tmp" "$done_file"
    ) &
    SRC_PID=$!
    while :; do
        now=$("$counter" "$arg")
        if [ $((now - base)) -ge "$MESSAGES" ]; then
            t1=$EPOCHREALTIME
            break
        fi
        if [ -z "$src_t" ] && [ -f "$done_file" ]; then
            read -r src_t src_rc <"$done_file"
            if [ "$src_rc" -ne 0 ]; then
                tr '\r' '\n' <"$log" | tail -n 5 >&2
                die "smtp-source against $label failed (exit $src_rc)"
            fi
        fi
        if elapsed_over "$t0" "$RUN_TIMEOUT"; then
            die "$label: $((now - base)) of $MESSAGES messages delivered after ${RUN_TIMEOUT}s" \
                "(smtp-source $([ -n "$src_t" ] && echo finished || echo still running))"
        fi
        sleep 0.1
    done
    wait "$SRC_PID" 2>/dev/null || true
    SRC_PID=''
    read -r src_t src_rc <"$done_file" || die "smtp-source against $label: no exit status"
    if [ "$src_rc" -ne 0 ]; then
        tr '\r' '\n' <"$log" | tail -n 5 >&2
        die "smtp-source against $label failed (exit $src_rc)"
    fi
    SECS=$(secs_between "$t0" "$t1")
    ACCEPT_SECS=$(secs_between "$t0" "$src_t")
    # Everything delivered exactly once: nothing more arrives in the next second.
    sleep 1
    now=$("$counter" "$arg")
    [ $((now - base)) -eq "$MESSAGES" ] \
        || die "$label: $((now - base)) messages arrived for $MESSAGES sent (duplicates?)"
    note "  $label: $MESSAGES messages delivered in ${SECS}s (smtp-source done after ${ACCEPT_SECS}s)"
}

# Results: scenario|server|seconds|accept seconds|peak RSS KiB (or -)
declare -A BEST BEST_ACC BEST_RSS
keep_best() { # KEY RSS
    if [ -z "${BEST[$1]:-}" ] || awk -v a="$SECS" -v b="${BEST[$1]}" 'BEGIN { exit !(a < b) }'; then
        BEST[$1]=$SECS
        BEST_ACC[$1]=$ACCEPT_SECS
        BEST_RSS[$1]=$2
    fi
}

# ---------------------------------------------------------------------------------------------
# mailtool serve: a new root for every run (see smtp-compare.sh: deleting a large spool right
# before a timed run slows ext4's inode allocation in the next one), all kept until exit
# ---------------------------------------------------------------------------------------------
MT_N=0 MT_ROOT='' SPOOL='' MBOX='' PORT=''
MT_LOG=''
new_root() { # SMART_HOST (empty: none)
    MT_N=$((MT_N + 1))
    MT_ROOT=$WORK/mailtool-$MT_N
    SPOOL=$MT_ROOT/var/spool/mqueue
    MBOX=$MT_ROOT/var/mail/$LOCAL_USER
    MT_LOG=$WORK/mailtool-$MT_N.log
    mkdir -p "$MT_ROOT/etc/mail" "$MT_ROOT/var/mail"
    echo "$LOCAL_DOMAIN" >"$MT_ROOT/etc/mail/local-host-names"
    cat >"$MT_ROOT/etc/mail/mailtool.toml" <<EOF
hostname = "mail.$LOCAL_DOMAIN"
user = "nobody"
group = "nogroup"
[paths]
mailboxes = "/var/mail"
[smtp]
listen = ["127.0.0.1:0"]
submission = []
smtps = []
max_connections = 1000
max_connections_per_ip = 1000
[pop3]
listen = []
[dns]
servers = []
timeout = "50ms"
[queue]
delivery_mode = "background"
smart_host = "$1"
EOF
    # One virtual user, built the way an admin would: makemap from "name hash" lines (the
    # hash is sha512-crypt of "password"; nobody logs in here).
    # shellcheck disable=SC2016
    printf '%s %s\n' "$LOCAL_USER" '$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/' \
        | "$MAILTOOL" makemap hash "$MT_ROOT/etc/mail/users" >"$WORK/makemap.log" 2>&1 \
        || die "makemap users: $(cat "$WORK/makemap.log")"
    chmod 755 "$MT_ROOT" "$MT_ROOT/etc" "$MT_ROOT/etc/mail" "$MT_ROOT/var"
    chmod 644 "$MT_ROOT"/etc/mail/*
    # The server runs as nobody: the mailbox directory is its to write (like /var/mail's
    # group mail, without a mail group here).
    chown nobody:nogroup "$MT_ROOT/var/mail"
    chmod 1777 "$MT_ROOT/var/mail"
}
start_mailtool() { # SMART_HOST
    local i
    new_root "$1"
    : >"$MT_LOG"
    "$MAILTOOL" --root "$MT_ROOT" serve </dev/null >/dev/null 2>>"$MT_LOG" &
    MT_PID=$!
    PORT=''
    for ((i = 0; i < 100; i++)); do
        PORT=$(sed -n 's/^mailtool: listening for SMTP on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$MT_LOG" | head -1)
        [ -n "$PORT" ] || PORT=$(sed -n 's/.*listening for SMTP on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$MT_LOG" | head -1)
        [ -z "$PORT" ] || break
        alive "$MT_PID" || break
        sleep 0.1
    done
    [ -n "$PORT" ] || die "mailtool serve did not start; log: $(tail -n 5 "$MT_LOG")"
}
MT_RSS=''
# stop_mailtool WANT: peak RSS noted, SIGTERM, then the spool must be empty and the log must
# show WANT deliveries with stat=Sent.
stop_mailtool() {
    local want=$1 got sent
    MT_RSS=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$MT_PID/status" 2>/dev/null || echo '')
    stop_pid "$MT_PID"
    MT_PID=''
    got=$(find "$SPOOL" -maxdepth 1 -name 'qf*' 2>/dev/null | wc -l)
    [ "$got" -eq 0 ] || die "mailtool's spool still holds $got qf files after delivering everything"
    sent=$(grep -c 'stat=Sent' "$MT_LOG" || true)
    [ "${sent:-0}" -eq "$want" ] || die "mailtool logged ${sent:-0} deliveries with stat=Sent, expected $want"
}

# ---------------------------------------------------------------------------------------------
# Postfix: one private instance for both scenarios (own config, queue, port; no chroot)
# ---------------------------------------------------------------------------------------------
PF_DIR=$WORK/postfix
PF_QUEUE=$PF_DIR/queue
PF_MAIL=$PF_DIR/mail
PF_MBOX=$PF_MAIL/$LOCAL_USER
PF_PORT=''
start_postfix() {
    PF_PORT=$(free_port)
    mkdir -p "$PF_DIR/conf" "$PF_QUEUE" "$PF_DIR/data" "$PF_MAIL"
    chown postfix "$PF_DIR/data"
    # virtual(8) delivers as virtual_uid_maps' uid and dotlocks in the mailbox's directory.
    chown nobody:nogroup "$PF_MAIL"
    cat >"$PF_DIR/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF_QUEUE
data_directory = $PF_DIR/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.$LOCAL_DOMAIN
mydomain = $LOCAL_DOMAIN
myorigin = $LOCAL_DOMAIN
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
# Local delivery: the domain is a virtual mailbox domain; virtual(8) appends to an mbox file
# under the work directory as nobody (no system account, no /var/mail).
mydestination =
local_transport = error:no local delivery here
alias_maps =
alias_database =
virtual_mailbox_domains = $LOCAL_DOMAIN, $PF_DEFAULT_DOMAIN
virtual_transport = virtual
# One mbox: with the default concurrency (20) up to 20 virtual(8) processes race for its lock
# and the losers sleep deliver_lock_delay (1 s) before trying again; one at a time is faster,
# as local(8)'s default of 2 per recipient suggests. $PF_DEFAULT_DOMAIN goes through a second
# virtual(8) transport that keeps the default, for comparison.
virtual_destination_concurrency_limit = 1
transport_maps = hash:$PF_DIR/conf/transport
virtual_mailbox_base = $PF_MAIL
virtual_mailbox_maps = hash:$PF_DIR/conf/vmailbox
virtual_uid_maps = static:$NOBODY_UID
virtual_gid_maps = static:$NOGROUP_GID
virtual_minimum_uid = 1
virtual_mailbox_limit = 0
# Relay: everything else goes to the sink.
default_transport = smtp
relay_transport = smtp
relayhost = [$SINK_ADDR]:$SINK_PORT
smtp_tls_security_level = none
maillog_file = $PF_DIR/maillog
maillog_file_prefixes = $PF_DIR
biff = no
${POSTFIX_EXTRA:-}
EOF
    # A mailbox path without a trailing slash is an mbox file.
    printf '%s %s\n' "$LOCAL_RCPT" "$LOCAL_USER" "$PF_DEFAULT_RCPT" "$LOCAL_USER" >"$PF_DIR/conf/vmailbox"
    printf '%s %s\n' "$PF_DEFAULT_DOMAIN" "virtual20:" >"$PF_DIR/conf/transport"
    postmap -c "$PF_DIR/conf" "hash:$PF_DIR/conf/vmailbox" "hash:$PF_DIR/conf/transport" \
        || die "postmap vmailbox transport failed"
    cat >"$PF_DIR/conf/master.cf" <<EOF
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup    unix  n  -  n  60    1  pickup
cleanup   unix  n  -  n  -     0  cleanup
qmgr      unix  n  -  n  300   1  qmgr
rewrite   unix  -  -  n  -     -  trivial-rewrite
bounce    unix  -  -  n  -     0  bounce
defer     unix  -  -  n  -     0  bounce
trace     unix  -  -  n  -     0  bounce
verify    unix  -  -  n  -     1  verify
flush     unix  n  -  n  1000? 0  flush
proxymap  unix  -  -  n  -     -  proxymap
proxywrite unix -  -  n  -     1  proxymap
smtp      unix  -  -  n  -     -  smtp
relay     unix  -  -  n  -     -  smtp
showq     unix  n  -  n  -     -  showq
error     unix  -  -  n  -     -  error
retry     unix  -  -  n  -     -  error
discard   unix  -  -  n  -     -  discard
local     unix  -  n  n  -     -  local
virtual   unix  -  n  n  -     -  virtual
virtual20 unix  -  n  n  -     -  virtual
anvil     unix  -  -  n  -     1  anvil
scache    unix  -  -  n  -     1  scache
postlog   unix-dgram n - n -   1  postlogd
EOF
    note "Postfix $PF_VERSION (private instance) on 127.0.0.1:$PF_PORT"
    postfix -c "$PF_DIR/conf" check >"$PF_DIR/check.log" 2>&1 || die "postfix check: $(head -c 1000 "$PF_DIR/check.log")"
    PF_CONF=$PF_DIR/conf
    postfix -c "$PF_CONF" start >"$PF_DIR/start.log" 2>&1 || die "postfix start: $(head -c 1000 "$PF_DIR/start.log")"
    wait_port 127.0.0.1 "$PF_PORT" || die "Postfix smtpd is not listening on $PF_PORT; log: $(tail -n 5 "$PF_DIR/maillog" 2>/dev/null)"
}
pf_count() { grep -c -- "$1" "$PF_DIR/maillog" 2>/dev/null || true; }
# pf_queue_empty: no message left in the instance's queue.
pf_queue_empty() {
    [ -z "$(find "$PF_QUEUE/incoming" "$PF_QUEUE/active" "$PF_QUEUE/deferred" "$PF_QUEUE/maildrop" -type f 2>/dev/null | head -1)" ]
}
# wait_until SECONDS COMMAND...: polls every 100 ms.
wait_until() {
    local limit=$(($1 * 10)) i
    shift
    for ((i = 0; i < limit; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}
sink_has() { [ "$(sink_count)" -ge "$1" ]; }
mbox_has() { [ "$(mbox_count "$1")" -ge "$2" ]; }

start_sink
start_postfix

# ---------------------------------------------------------------------------------------------
# Test messages: each path delivers one message before anything is timed
# ---------------------------------------------------------------------------------------------
one_message() { # LABEL PORT RCPT
    "$SOURCE" -m 1 -l 100 -f "$FROM" -t "$3" "127.0.0.1:$2" >"$WORK/test.log" 2>&1 \
        || die "$1 refused the test message: $(tr '\r' '\n' <"$WORK/test.log" | tail -n 3)"
}
for s in $SCENARIOS; do
    case $s in
    relay)
        base=$(sink_count)
        start_mailtool "$SINK_ADDR:$SINK_PORT"
        one_message "mailtool (relay)" "$PORT" "$RELAY_RCPT"
        wait_until 30 sink_has $((base + 1)) \
            || die "mailtool did not relay the test message to smtp-sink; log: $(tail -n 5 "$MT_LOG")"
        stop_mailtool 1
        one_message "Postfix (relay)" "$PF_PORT" "$RELAY_RCPT"
        wait_until 30 sink_has $((base + 2)) \
            || die "Postfix did not relay the test message to smtp-sink; log: $(tail -n 5 "$PF_DIR/maillog")"
        ;;
    local)
        start_mailtool ""
        one_message "mailtool (local)" "$PORT" "$LOCAL_RCPT"
        wait_until 30 mbox_has "$MBOX" 1 \
            || die "mailtool did not deliver the test message to $MBOX; log: $(tail -n 5 "$MT_LOG")"
        stop_mailtool 1
        one_message "Postfix (local)" "$PF_PORT" "$LOCAL_RCPT"
        wait_until 30 mbox_has "$PF_MBOX" 1 \
            || die "Postfix did not deliver the test message to $PF_MBOX; log: $(tail -n 5 "$PF_DIR/maillog")"
        one_message "Postfix (local, default concurrency)" "$PF_PORT" "$PF_DEFAULT_RCPT"
        wait_until 30 mbox_has "$PF_MBOX" 2 \
            || die "Postfix did not deliver the test message to $PF_DEFAULT_RCPT; log: $(tail -n 5 "$PF_DIR/maillog")"
        grep -q "to=<$PF_DEFAULT_RCPT>, relay=virtual20" "$PF_DIR/maillog" \
            || die "Postfix did not use the virtual20 transport for $PF_DEFAULT_RCPT"
        ;;
    esac
done
wait_until 30 pf_queue_empty || die "Postfix's queue did not drain after the test messages"

# ---------------------------------------------------------------------------------------------
# The timed runs, mailtool and Postfix alternating so both see the same background load
# ---------------------------------------------------------------------------------------------
for s in $SCENARIOS; do
    for ((r = 1; r <= REPEATS; r++)); do
        case $s in
        relay)
            start_mailtool "$SINK_ADDR:$SINK_PORT"
            timed_run "mailtool relay (run $r)" "$PORT" "$RELAY_RCPT" sink_count
            stop_mailtool "$MESSAGES"
            keep_best "relay|mailtool" "$MT_RSS"
            timed_run "Postfix relay (run $r)" "$PF_PORT" "$RELAY_RCPT" sink_count
            wait_until 30 pf_queue_empty || die "Postfix's queue did not drain"
            keep_best "relay|postfix" ""
            ;;
        local)
            start_mailtool ""
            timed_run "mailtool local (run $r)" "$PORT" "$LOCAL_RCPT" mbox_count "$MBOX"
            stop_mailtool "$MESSAGES"
            keep_best "local|mailtool" "$MT_RSS"
            # Each Postfix run starts on an empty mbox too.
            rm -f "$PF_MBOX"
            timed_run "Postfix local (run $r)" "$PF_PORT" "$LOCAL_RCPT" mbox_count "$PF_MBOX"
            wait_until 30 pf_queue_empty || die "Postfix's queue did not drain"
            keep_best "local|postfix" ""
            rm -f "$PF_MBOX"
            timed_run "Postfix local, default concurrency (run $r)" "$PF_PORT" "$PF_DEFAULT_RCPT" mbox_count "$PF_MBOX"
            wait_until 30 pf_queue_empty || die "Postfix's queue did not drain"
            keep_best "local|postfix-default" ""
            ;;
        esac
    done
done
pf_sent=$(pf_count 'status=sent')
pf_want=0
for s in $SCENARIOS; do
    case $s in
    relay) pf_want=$((pf_want + 1 + REPEATS * MESSAGES)) ;;
    local) pf_want=$((pf_want + 2 + 2 * REPEATS * MESSAGES)) ;;
    esac
done
[ "$pf_sent" -eq "$pf_want" ] || die "Postfix logged $pf_sent deliveries with status=sent, expected $pf_want"
stop_postfix_instance

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
mib() { if [ -n "$1" ]; then awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; else echo "–"; fi; }
mkdir -p "$RESULTS_DIR"
[ -e "$RESULTS_DIR/.gitignore" ] || printf '*\n' >"$RESULTS_DIR/.gitignore"
{
    echo "# Delivery throughput: mailtool serve vs Postfix"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -srm), spools and mboxes on $FSTYPE;" \
        "load average $load at the start; best of $REPEATS runs."
    echo "mailtool $("$MAILTOOL" --version 2>/dev/null | head -1 | awk '{ print $NF }'), postfix $PF_VERSION." \
        "Load: \`smtp-source -s $SESSIONS -m $MESSAGES -l $LENGTH\`, one message per connection, to 127.0.0.1."
    echo "Seconds run from the start of smtp-source to the last message in the mbox (\`From \` lines)" \
        "or counted by \`smtp-sink -c\` on $SINK_ADDR, polled every 100 ms; \"accepted\" is when smtp-source" \
        "had handed over all of them. Every message arrived exactly once; both queues were empty afterwards."
    echo "Ratio: mailtool's messages/s over Postfix's (>1: mailtool is faster). Target (issue 4): ≥ 3."
    echo
    echo "| scenario | server | messages | accepted s | delivered s | msgs/s | peak RSS MiB | mailtool ÷ Postfix |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    for s in $SCENARIOS; do
        case $s in
        relay) what="relay to smtp-sink" pf_what="Postfix $PF_VERSION (relayhost, smtp)" ;;
        local) what="local delivery to mbox" pf_what="Postfix $PF_VERSION (virtual(8) mbox, concurrency 1)" ;;
        esac
        mt_r=$(rate "$MESSAGES" "${BEST[$s|mailtool]}")
        pf_r=$(rate "$MESSAGES" "${BEST[$s|postfix]}")
        ratio=$(awk -v m="${BEST[$s|postfix]}" -v p="${BEST[$s|mailtool]}" 'BEGIN { printf "%.2f", m / p }')
        echo "| $what | mailtool serve | $MESSAGES | ${BEST_ACC[$s|mailtool]} | ${BEST[$s|mailtool]} | $mt_r | $(mib "${BEST_RSS[$s|mailtool]}") | $ratio |"
        echo "| $what | $pf_what | $MESSAGES | ${BEST_ACC[$s|postfix]} | ${BEST[$s|postfix]} | $pf_r | – | 1.00 |"
        if [ -n "${BEST[$s|postfix-default]:-}" ]; then
            d_r=$(rate "$MESSAGES" "${BEST[$s|postfix-default]}")
            d_ratio=$(awk -v m="${BEST[$s|postfix-default]}" -v p="${BEST[$s|mailtool]}" 'BEGIN { printf "%.2f", m / p }')
            echo "| $what | Postfix, virtual(8) at its default concurrency (20) | $MESSAGES | ${BEST_ACC[$s|postfix-default]} | ${BEST[$s|postfix-default]} | $d_r | – | $d_ratio |"
        fi
    done
    echo
    echo "| target | required | measured | met |"
    echo "|---|---:|---:|---|"
    for s in $SCENARIOS; do
        # Against the faster Postfix configuration.
        pf=${BEST[$s|postfix]}
        d=${BEST[$s|postfix-default]:-}
        if [ -n "$d" ] && awk -v a="$d" -v b="$pf" 'BEGIN { exit !(a < b) }'; then pf=$d; fi
        ratio=$(awk -v m="$pf" -v p="${BEST[$s|mailtool]}" 'BEGIN { printf "%.2f", m / p }')
        met=$(awk -v r="$ratio" 'BEGIN { print (r >= 3) ? "yes" : "no" }')
        echo "| $s: mailtool ≥ 3× the faster Postfix's rate | 3.00 | $ratio | $met |"
    done
} | tee "$RESULTS"
note "written to ${RESULTS#"$ROOT"/}"
