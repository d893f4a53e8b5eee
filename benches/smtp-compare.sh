#!/usr/bin/env bash
# SMTP throughput of `mailtool serve` against Postfix, with Postfix's own load generator:
#   smtp-source -s 20 -m 20000 -l 1000   against
#     - mailtool serve        (every message fsynced into its spool before the 250)
#     - Postfix smtpd         (a private instance, queue on the same disk, discard transport)
#     - smtp-sink             (answers 250 and throws the data away: the ceiling of smtp-source)
# plus memory per idle connection and 5,000 concurrent idle connections held by mailtool.
#
# Usage: benches/smtp-compare.sh            (from any directory; as root: apt-get, a private
#                                            Postfix, the server dropping to nobody)
# Environment:
#   MAILTOOL=/path/to/mailtool   use this binary instead of `cargo build --release`
#   MESSAGES=20000 SESSIONS=20 LENGTH=1000   smtp-source's -m, -s and -l
#   REPEATS=2                    runs per target; the fastest one is reported
#   DEAD_DNS_MESSAGES=2000       one extra mailtool run with [dns] servers on a dead port and a
#                                50 ms timeout (every connection waits for its PTR lookup to
#                                time out); 0 skips it
#   IDLE_CONNECTIONS=5000        idle connections opened for the memory check (0 skips it)
#   IDLE_SOURCES=10              spread over this many source addresses 127.0.0.10, .11, ...
#   RUN_TIMEOUT=240              seconds one smtp-source run may take before it is killed
#   KEEP_WORK=1                  keep the work directory (configs, logs, spools) for a look
#
# Prints a markdown table and writes it to benches/results/smtp-compare.md.
# All traffic stays on 127.0.0.0/8; every process started here is stopped on exit.
set -euo pipefail

BENCH=smtp-compare
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
need_root "apt-get, a private Postfix instance, privilege drop"

MESSAGES=${MESSAGES:-20000}
SESSIONS=${SESSIONS:-20}
LENGTH=${LENGTH:-1000}
REPEATS=${REPEATS:-2}
DEAD_DNS_MESSAGES=${DEAD_DNS_MESSAGES:-2000}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-5000}
IDLE_SOURCES=${IDLE_SOURCES:-10}
RUN_TIMEOUT=${RUN_TIMEOUT:-240}
positive_ints MESSAGES SESSIONS LENGTH REPEATS IDLE_SOURCES RUN_TIMEOUT
for v in DEAD_DNS_MESSAGES IDLE_CONNECTIONS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer, got '${!v}'"
done
[ "$IDLE_CONNECTIONS" -le 5900 ] || die "IDLE_CONNECTIONS is at most 5900 (max_connections is 6000)"
[ "$IDLE_SOURCES" -le 200 ] || die "IDLE_SOURCES is at most 200"
RESULTS_DIR=$ROOT/benches/results
RESULTS=$RESULTS_DIR/smtp-compare.md
FROM=bench@bench.test
RCPT=postmaster@bench.test

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
if [ ! -x /usr/sbin/smtp-source ] || [ ! -x /usr/sbin/smtp-sink ] || ! command -v postfix >/dev/null; then
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

# ---------------------------------------------------------------------------------------------
# mailtool
# ---------------------------------------------------------------------------------------------
build_mailtool

# File descriptors: the server holds IDLE_CONNECTIONS sockets, and so does the client.
want_fds=$((IDLE_CONNECTIONS + 1024))
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$want_fds" ]; then
    if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$want_fds" ]; then
        ulimit -Hn "$want_fds" || die "cannot raise the hard open-files limit to $want_fds"
    fi
    ulimit -Sn "$want_fds" || die "cannot raise the open-files limit to $want_fds"
fi

# ---------------------------------------------------------------------------------------------
# Work area; everything started is recorded here and stopped on exit
# ---------------------------------------------------------------------------------------------
# Under the target dir (a real disk, as the spool's fsync must be) if the unprivileged server
# can reach it, else /var/tmp.
CACHE=$TARGET_DIR/smtp-compare
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/work.XXXXXX")
chmod 755 "$WORK"
if ! runuser -u nobody -- test -x "$WORK" 2>/dev/null; then
    rm -rf "$WORK"
    WORK=$(mktemp -d /var/tmp/smtp-compare.XXXXXX)
    chmod 755 "$WORK"
fi
FSTYPE=$(df --output=fstype "$WORK" 2>/dev/null | tail -n 1 || stat -f -c %T "$WORK")
[ "$FSTYPE" != tmpfs ] || note "warning: $WORK is on tmpfs: fsync costs nothing there"

MT_PID='' SINK_PID='' IDLE_PID='' PF_CONF=''
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
    stop_pid "$IDLE_PID"
    stop_pid "$MT_PID"
    stop_pid "$SINK_PID"
    stop_postfix_instance
    remove_work
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port PORT: until something listens on 127.0.0.1:PORT (at most 10 s).
wait_port() {
    local i
    for ((i = 0; i < 100; i++)); do
        if python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v c="$(nproc)" 'BEGIN { exit !(l > c / 2) }'; then
    note "warning: load average is $load on $(nproc) cores: other work will skew the timings"
fi

# run_source LABEL PORT COUNT: one timed smtp-source run to completion; sets SECS.
SECS=''
run_source() {
    local label=$1 port=$2 count=$3 log=$WORK/smtp-source.log t0 t1
    sync # the previous run's files and deletions are not written back during this one
    t0=$EPOCHREALTIME
    if ! timeout "$RUN_TIMEOUT" "$SOURCE" -c -s "$SESSIONS" -m "$count" -l "$LENGTH" \
        -f "$FROM" -t "$RCPT" "127.0.0.1:$port" >"$log" 2>&1; then
        tr '\r' '\n' <"$log" | tail -n 5 >&2
        die "smtp-source against $label failed or took over ${RUN_TIMEOUT}s"
    fi
    t1=$EPOCHREALTIME
    SECS=$(secs_between "$t0" "$t1")
    note "  $label: $count messages in ${SECS}s"
}
# best_of LABEL PORT COUNT [BEFORE-EACH-RUN [AFTER-EACH-RUN]]: REPEATS runs; sets BEST_S.
BEST_S=''
best_of() {
    local label=$1 port=$2 count=$3 before=${4:-} after=${5:-} r
    BEST_S=''
    for ((r = 1; r <= REPEATS; r++)); do
        [ -z "$before" ] || "$before"
        [ -n "$port" ] || port=$PORT
        run_source "$label" "$port" "$count"
        [ -z "$after" ] || "$after" "$count"
        if [ -z "$BEST_S" ] || awk -v a="$SECS" -v b="$BEST_S" 'BEGIN { exit !(a < b) }'; then
            BEST_S=$SECS
        fi
        [ -z "$before" ] || port=''
    done
}

# Rows: label|messages|seconds
ROWS=()
record() { ROWS+=("$1|$2|$3"); }

# ---------------------------------------------------------------------------------------------
# 1. smtp-sink: the ceiling of smtp-source itself
# ---------------------------------------------------------------------------------------------
SINK_PORT=$(free_port)
note "smtp-sink on 127.0.0.1:$SINK_PORT"
"$SINK" -u nobody -c "127.0.0.1:$SINK_PORT" 1000 >"$WORK/smtp-sink.log" 2>&1 &
SINK_PID=$!
wait_port "$SINK_PORT" || die "smtp-sink did not start: $(head -c 500 "$WORK/smtp-sink.log")"
best_of smtp-sink "$SINK_PORT" "$MESSAGES"
record "smtp-sink (no queue, the load tool's ceiling)" "$MESSAGES" "$BEST_S"
stop_pid "$SINK_PID"
SINK_PID=''
sink_msgs=$(tr '\r' '\n' <"$WORK/smtp-sink.log" | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2)
[ "${sink_msgs:-0}" -ge $((REPEATS * MESSAGES)) ] \
    || die "smtp-sink counted ${sink_msgs:-0} messages, expected $((REPEATS * MESSAGES))"

# ---------------------------------------------------------------------------------------------
# 2. mailtool serve
# ---------------------------------------------------------------------------------------------
# Each server start gets a new root (mailtool-1, mailtool-2, ...) whose spool is kept until
# exit: deleting 20,000 spool files just before a timed run makes ext4's inode allocator skip
# the recently freed inodes one by one (recently_deleted() in __ext4_new_inode), which costs
# the next run up to a third of its server CPU. Postfix runs after mailtool for the same reason.
MT_N=0 MT_ROOT='' SPOOL='' MT_DNS='[]'
PORT=''
# new_root: the next root, configured with [dns] servers = $MT_DNS (a TOML array).
new_root() {
    MT_N=$((MT_N + 1))
    MT_ROOT=$WORK/mailtool-$MT_N
    SPOOL=$MT_ROOT/var/spool/mqueue
    mkdir -p "$MT_ROOT/etc/mail"
    echo bench.test >"$MT_ROOT/etc/mail/local-host-names"
    cat >"$MT_ROOT/etc/mail/mailtool.toml" <<EOF
hostname = "mail.bench.test"
user = "nobody"
group = "nogroup"
[smtp]
listen = ["127.0.0.1:0"]
submission = []
smtps = []
max_connections = 6000
max_connections_per_ip = 6000
max_recipients = 100
[pop3]
listen = []
[queue]
delivery_mode = "queue"      # accepted mail stays in the spool: this measures acceptance
interval = "0s"
[dns]
servers = $MT_DNS
timeout = "50ms"
EOF
    chmod 755 "$MT_ROOT" "$MT_ROOT/etc" "$MT_ROOT/etc/mail"
    chmod 644 "$MT_ROOT"/etc/mail/*
}
start_mailtool() { # in a new root
    local i
    new_root
    : >"$WORK/mailtool.log"
    "$MAILTOOL" --root "$MT_ROOT" serve </dev/null >/dev/null 2>>"$WORK/mailtool.log" &
    MT_PID=$!
    PORT=''
    for ((i = 0; i < 100; i++)); do
        PORT=$(sed -n 's/^mailtool: listening for SMTP on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$WORK/mailtool.log" | head -1)
        [ -z "$PORT" ] || break
        alive "$MT_PID" || break
        sleep 0.1
    done
    [ -n "$PORT" ] || die "mailtool serve did not start; log: $(tail -n 5 "$WORK/mailtool.log")"
}
# stop_mailtool N: SIGTERM, then the spool must hold N queued messages.
stop_mailtool() {
    local want=$1 got
    stop_pid "$MT_PID"
    MT_PID=''
    got=$(find "$SPOOL" -maxdepth 1 -name 'qf*' | wc -l)
    [ "$got" -eq "$want" ] || die "mailtool's spool holds $got qf files, expected $want"
    MT_SPOOLED=$got
}

note "mailtool serve ([dns] servers = []: loopback PTRs answered in process)"
start_mailtool
"$SOURCE" -m 1 -l 100 -f "$FROM" -t "$RCPT" "127.0.0.1:$PORT" >"$WORK/test.log" 2>&1 \
    || die "mailtool refused the test message: $(tr '\r' '\n' <"$WORK/test.log" | tail -n 3)"
stop_mailtool 1
MT_SPOOLED=0
best_of "mailtool serve" "" "$MESSAGES" start_mailtool stop_mailtool
MT_S=$BEST_S
record "mailtool serve (fsynced spool)" "$MESSAGES" "$BEST_S"
MT_CHECK="each run left $MT_SPOOLED qf files in the spool (expected $MESSAGES)"

if [ "$DEAD_DNS_MESSAGES" -gt 0 ]; then
    MT_DNS='["127.0.0.1:9"]'
    note "mailtool serve ([dns] servers = [\"127.0.0.1:9\"], a dead port, timeout 50ms)"
    start_mailtool
    run_source "mailtool serve, dead DNS" "$PORT" "$DEAD_DNS_MESSAGES"
    stop_mailtool "$DEAD_DNS_MESSAGES"
    record "mailtool serve, [dns] servers on a dead port, timeout 50ms (1 run)" "$DEAD_DNS_MESSAGES" "$SECS"
    MT_DNS='[]'
fi

# ---------------------------------------------------------------------------------------------
# 3. Postfix smtpd with a discard transport (a private instance: own config, queue, port)
# ---------------------------------------------------------------------------------------------
PF_PORT=$(free_port)
PF_DIR=$WORK/postfix
PF_QUEUE=$PF_DIR/queue
mkdir -p "$PF_DIR/conf" "$PF_QUEUE" "$PF_DIR/data"
chown postfix "$PF_DIR/data"
cat >"$PF_DIR/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF_QUEUE
data_directory = $PF_DIR/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydomain = bench.test
myorigin = bench.test
mydestination = bench.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
default_transport = discard
local_transport = discard
relay_transport = discard
virtual_transport = discard
local_recipient_maps =
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
maillog_file = $PF_DIR/maillog
maillog_file_prefixes = $PF_DIR
biff = no
EOF
# No chroot anywhere; smtpd only on 127.0.0.1:PF_PORT; no SMTP client, no pickup from maildrop
# needed but kept so `postfix check` sees a complete set.
postfix_master_cf "$PF_PORT" >"$PF_DIR/conf/master.cf"
note "Postfix $PF_VERSION (private instance) on 127.0.0.1:$PF_PORT"
postfix -c "$PF_DIR/conf" check >"$PF_DIR/check.log" 2>&1 || die "postfix check: $(head -c 1000 "$PF_DIR/check.log")"
PF_CONF=$PF_DIR/conf
postfix -c "$PF_CONF" start >"$PF_DIR/start.log" 2>&1 || die "postfix start: $(head -c 1000 "$PF_DIR/start.log")"
wait_port "$PF_PORT" || die "Postfix smtpd is not listening on $PF_PORT; log: $(tail -n 5 "$PF_DIR/maillog" 2>/dev/null)"
# pf_count PATTERN: lines of the instance's log matching PATTERN.
pf_count() { grep -c -- "$1" "$PF_DIR/maillog" 2>/dev/null || true; }
# wait_pf PATTERN N: until the log has N such lines (at most 30 s).
wait_pf() {
    local i
    for ((i = 0; i < 300; i++)); do
        [ "$(pf_count "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
# A test message first: accepted, queued, discarded.
"$SOURCE" -m 1 -l 100 -f "$FROM" -t "$RCPT" "127.0.0.1:$PF_PORT" >"$PF_DIR/test.log" 2>&1 \
    || die "Postfix refused the test message: $(tr '\r' '\n' <"$PF_DIR/test.log" | tail -n 3)"
wait_pf 'postfix/discard.*status=sent' 1 \
    || die "Postfix did not discard the test message; log: $(tail -n 5 "$PF_DIR/maillog")"
best_of "Postfix smtpd" "$PF_PORT" "$MESSAGES"
record "Postfix $PF_VERSION smtpd, discard transport (fsynced queue)" "$MESSAGES" "$BEST_S"
pf_want=$((1 + REPEATS * MESSAGES))
wait_pf 'postfix/cleanup.*message-id=' "$pf_want" \
    || die "Postfix queued $(pf_count 'postfix/cleanup.*message-id=') messages, expected $pf_want"
stop_postfix_instance

# ---------------------------------------------------------------------------------------------
# 4. Idle connections: memory per connection, and holding them all
# ---------------------------------------------------------------------------------------------
IDLE_OUT=$WORK/idle.out
if [ "$IDLE_CONNECTIONS" -gt 0 ]; then
    note "idle connections: $IDLE_CONNECTIONS from $IDLE_SOURCES source addresses"
    start_mailtool
    # Warm up first (spool, maps, runtime), so the baseline is a server that has done work.
    "$SOURCE" -s 10 -m 200 -l "$LENGTH" -f "$FROM" -t "$RCPT" "127.0.0.1:$PORT" >"$WORK/warm.log" 2>&1 \
        || die "warm-up against mailtool failed"
    timeout 300 python3 - "$PORT" "$IDLE_CONNECTIONS" "$IDLE_SOURCES" "$MT_PID" >"$IDLE_OUT" <<'EOF' &
import os, socket, sys, time

port, n, nsrc, pid = (int(a) for a in sys.argv[1:5])

def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")

def fds():
    return len(os.listdir(f"/proc/{pid}/fd"))

time.sleep(1.0)
rss0, fd0 = rss_kib(), fds()
socks, greeted, errors = [], 0, {}
deadline = time.monotonic() + 120
t0 = time.monotonic()
for i in range(n):
    if time.monotonic() > deadline:
        errors["client deadline (120 s) reached"] = n - i
        break
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.bind((f"127.0.0.{10 + i % nsrc}", 0))
        s.connect(("127.0.0.1", port))
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(1024)
            if not chunk:
                break
            buf += chunk
        if buf.startswith(b"220"):
            greeted += 1
            socks.append(s)
        else:
            key = "not greeted: " + buf[:60].decode("latin-1").strip()
            errors[key] = errors.get(key, 0) + 1
            s.close()
    except OSError as e:
        key = f"{type(e).__name__}: {e}"
        errors[key] = errors.get(key, 0) + 1
        s.close()
open_secs = time.monotonic() - t0
time.sleep(2.0)
rss1, fd1 = rss_kib(), fds()
# Every socket still open: nothing to read and no EOF.
alive = 0
for s in socks:
    s.setblocking(False)
    try:
        if s.recv(1):
            pass
    except BlockingIOError:
        alive += 1
    except OSError:
        pass
for s in socks:
    s.close()
time.sleep(1.0)
rss2 = rss_kib()
print(f"requested={n}")
print(f"greeted={greeted}")
print(f"alive={alive}")
print(f"open_secs={open_secs:.2f}")
print(f"rss_before_kib={rss0}")
print(f"rss_held_kib={rss1}")
print(f"rss_after_close_kib={rss2}")
print(f"fds_before={fd0}")
print(f"fds_held={fd1}")
for k, v in errors.items():
    print(f"error={v} x {k}")
EOF
    IDLE_PID=$!
    wait "$IDLE_PID" || die "the idle-connection client failed: $(cat "$IDLE_OUT")"
    IDLE_PID=''
    alive "$MT_PID" || die "mailtool died while holding idle connections"
    stop_pid "$MT_PID"
    MT_PID=''
fi
idle() { sed -n "s/^$1=//p" "$IDLE_OUT" | head -1; }

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
MT_RATE=$(rate "$MESSAGES" "$MT_S")
mkdir -p "$RESULTS_DIR"
[ -e "$RESULTS_DIR/.gitignore" ] || printf '*\n' >"$RESULTS_DIR/.gitignore"
{
    echo "# SMTP throughput: mailtool serve vs Postfix"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -srm), spool and queue on $FSTYPE;" \
        "load average $load at the start; best of $REPEATS runs."
    echo "mailtool $("$MAILTOOL" --version 2>/dev/null | head -1 | awk '{ print $NF }'), postfix $PF_VERSION." \
        "Load: \`smtp-source -s $SESSIONS -m $MESSAGES -l $LENGTH -f $FROM -t $RCPT\`," \
        "one message per connection, to 127.0.0.1."
    echo "Both servers log every message to a file (mailtool at its default level, info; Postfix through postlogd)." \
        "Each mailtool run starts on a new, empty spool."
    echo "\"mailtool ÷ target\" is mailtool's messages/s over the target's (>1: mailtool is faster)."
    echo
    echo "| target | messages | seconds | msgs/s | mailtool ÷ target |"
    echo "|---|---:|---:|---:|---:|"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r label n s <<<"$row"
        r=$(rate "$n" "$s")
        ratio=$(awk -v m="$MT_RATE" -v t="$r" 'BEGIN { printf "%.2f", m / t }')
        echo "| $label | $n | $s | $r | $ratio |"
    done
    echo
    echo "mailtool: $MT_CHECK; nothing lost."
    echo
    pf_s=$(printf '%s\n' "${ROWS[@]}" | grep '^Postfix' | cut -d'|' -f3)
    sink_s=$(printf '%s\n' "${ROWS[@]}" | grep '^smtp-sink' | cut -d'|' -f3)
    pf_ratio=$(awk -v m="$MT_RATE" -v p="$(rate "$MESSAGES" "$pf_s")" 'BEGIN { printf "%.2f", m / p }')
    sink_ratio=$(awk -v m="$MT_RATE" -v p="$(rate "$MESSAGES" "$sink_s")" 'BEGIN { printf "%.2f", m / p }')
    yes_if() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? "yes" : "no" }'; }
    echo "| target | required | measured | met |"
    echo "|---|---:|---:|---|"
    echo "| mailtool ≥ 3× Postfix's rate | 3.00 | $pf_ratio | $(yes_if "$pf_ratio" 3) |"
    echo "| mailtool ≥ ½ smtp-sink's rate | 0.50 | $sink_ratio | $(yes_if "$sink_ratio" 0.5) |"
    if [ "$IDLE_CONNECTIONS" -gt 0 ]; then
        greeted=$(idle greeted) alive=$(idle alive)
        r0=$(idle rss_before_kib) r1=$(idle rss_held_kib) r2=$(idle rss_after_close_kib)
        per=$(awk -v a="$r0" -v b="$r1" -v n="$greeted" 'BEGIN { if (n > 0) printf "%.1f", (b - a) / n; else print "n/a" }')
        per_ok=$(awk -v p="$per" 'BEGIN { print (p != "n/a" && p <= 64) ? "yes" : "no" }')
        all_ok=no
        if [ "$greeted" -eq "$IDLE_CONNECTIONS" ] && [ "$alive" -eq "$IDLE_CONNECTIONS" ]; then all_ok=yes; fi
        echo "| memory per idle connection ≤ 64 KiB | 64.0 | $per | $per_ok |"
        echo "| holds $IDLE_CONNECTIONS concurrent idle connections | $IDLE_CONNECTIONS | $alive | $all_ok |"
        echo
        echo "Idle connections: $IDLE_CONNECTIONS opened one after another from $IDLE_SOURCES source" \
            "addresses (127.0.0.10 and up) in $(idle open_secs)s; $greeted got a 220 greeting," \
            "$alive still open after 2 s. Server VmRSS $r0 KiB before (after 200 warm-up messages)," \
            "$r1 KiB holding them, $r2 KiB after they closed: $per KiB per connection." \
            "Server file descriptors: $(idle fds_before) before, $(idle fds_held) holding."
        if grep -q '^error=' "$IDLE_OUT"; then
            echo
            echo "Client errors:"
            sed -n 's/^error=/- /p' "$IDLE_OUT"
        fi
    fi
} | tee "$RESULTS"
note "written to ${RESULTS#"$ROOT"/}"
