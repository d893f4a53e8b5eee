#!/usr/bin/env bash
# Memory under large messages (issue 15), on the seed's configuration:
#   smtp-source -s 4 -m 4 -l 400000000 -t anyone@example1.com   against
#     - mailtool serve: the seed's maps (access, virtusertable, localip, aliases), the seed's
#       virtusertable sending @example1.com to the local user example's mbox,
#       max_message_size = 0, DNS from /etc/resolv.conf
#     - Postfix: virtual(8) writing the same kind of mbox, message_size_limit = 0
# Both receive the four messages at once and deliver them; the clock stops when the mbox holds
# all four. Memory is sampled every 100 ms as the sum of the resident sets of the server's
# processes (Postfix: master and every child of it; mailtool: its one process, whose VmHWM is
# reported too). A 1 KB message is measured the same way for the "costs no more" target.
#
# Usage: benches/memory-compare.sh          (as root: apt-get, a private Postfix, the server
#                                            dropping to nobody)
# Environment:
#   MAILTOOL=/path/to/mailtool   use this binary instead of `cargo build --release`
#   COUNT=4 LENGTH=400000000     messages sent at once, and their size in bytes
#   RUN_TIMEOUT=600              seconds one run may take
#   KEEP_WORK=1                  keep the work directory for a look
#
# Prints a markdown table and writes it to benches/results/memory-compare.md.
set -euo pipefail

BENCH=memory-compare
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
need_root "apt-get, a private Postfix instance, privilege drop"

COUNT=${COUNT:-4}
LENGTH=${LENGTH:-400000000}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
positive_ints COUNT LENGTH RUN_TIMEOUT
RESULTS_DIR=$ROOT/benches/results
RESULTS=$RESULTS_DIR/memory-compare.md
FROM=bench@client.test
RCPT=anyone@example1.com

command -v python3 >/dev/null || apt_install python3
need_postfix
SOURCE=/usr/sbin/smtp-source
PF_VERSION=$(dpkg-query -W -f='${Version}' postfix 2>/dev/null || echo '?')
NOBODY_UID=$(id -u nobody)
NOGROUP_GID=$(getent group nogroup | cut -d: -f3)
build_mailtool

make_work memory-compare
avail=$(df --output=avail -B1 "$WORK" | tail -n 1)
need_bytes=$((COUNT * LENGTH * 3))
[ "$avail" -gt "$need_bytes" ] || die "$WORK has $avail bytes free; the runs need about $need_bytes"

MT_PID='' PF_CONF=''
cleanup() {
    local rc=$?
    stop_pid "$MT_PID"
    [ -z "$PF_CONF" ] || postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true
    remove_work
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mbox_count() { grep -c '^From ' "$1" 2>/dev/null || true; }

# rss_kib PID...: the summed VmRSS of the processes, in KiB.
rss_kib() {
    local pid sum=0 v
    for pid in "$@"; do
        v=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null || true)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
# tree PID: PID and all its descendants.
tree() {
    local p c
    echo "$1"
    for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        for c in $(tree "$p"); do echo "$c"; done
    done
}

# run LABEL PORT MBOX ROOTPID N LEN: smtp-source with N sessions of one LEN-byte message each,
# sampling memory until MBOX holds N more messages. Sets SECS and PEAK (KiB).
SECS='' PEAK=''
run() {
    local label=$1 port=$2 mbox=$3 rootpid=$4 n=$5 len=$6 base t0 now r src
    base=$(mbox_count "$mbox")
    base=${base:-0}
    PEAK=0
    sync
    t0=$EPOCHREALTIME
    "$SOURCE" -c -s "$n" -m "$n" -l "$len" -f "$FROM" -t "$RCPT" "127.0.0.1:$port" \
        >"$WORK/source.log" 2>&1 &
    src=$!
    while :; do
        # shellcheck disable=SC2046
        r=$(rss_kib $(tree "$rootpid"))
        [ "$r" -le "$PEAK" ] || PEAK=$r
        now=$(mbox_count "$mbox")
        [ "$((${now:-0} - base))" -lt "$n" ] || break
        awk -v a="$t0" -v b="$EPOCHREALTIME" -v l="$RUN_TIMEOUT" 'BEGIN { exit !(b - a > l) }' \
            && die "$label: $((${now:-0} - base)) of $n messages delivered after ${RUN_TIMEOUT}s"
        sleep 0.1
    done
    SECS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    wait "$src" || die "smtp-source against $label failed: $(tr '\r' '\n' <"$WORK/source.log" | tail -n 3)"
    note "  $label: $n × $len bytes delivered in ${SECS}s, peak RSS $((PEAK / 1024)) MiB"
}

# ---------------------------------------------------------------------------------------------
# mailtool serve with the seed's /etc/mail
# ---------------------------------------------------------------------------------------------
MT_ROOT=$WORK/mailtool
seed_root "$MT_ROOT"
mkdir -p "$MT_ROOT/var/mail"
cat >"$MT_ROOT/etc/mail/mailtool.toml" <<EOF
hostname = "mail.example1.com"
user = "nobody"
group = "nogroup"
[smtp]
listen = ["127.0.0.1:0"]
submission = []
smtps = []
max_message_size = 0
[pop3]
listen = []
[queue]
delivery_mode = "background"
EOF
chmod 755 "$MT_ROOT" "$MT_ROOT/etc" "$MT_ROOT/etc/mail" "$MT_ROOT/var"
chmod 644 "$MT_ROOT"/etc/mail/*
chown nobody:nogroup "$MT_ROOT/var/mail"
MT_MBOX=$MT_ROOT/var/mail/example
"$MAILTOOL" --root "$MT_ROOT" serve </dev/null >/dev/null 2>>"$WORK/mailtool.log" &
MT_PID=$!
MT_PORT=$(serve_port "$WORK/mailtool.log" "$MT_PID")
[ -n "$MT_PORT" ] || die "mailtool serve did not start: $(tail -n 5 "$WORK/mailtool.log")"
note "mailtool serve on 127.0.0.1:$MT_PORT"
run "mailtool, 1 KB" "$MT_PORT" "$MT_MBOX" "$MT_PID" 1 1000
MT_SMALL=$PEAK
run "mailtool, $COUNT × $LENGTH" "$MT_PORT" "$MT_MBOX" "$MT_PID" "$COUNT" "$LENGTH"
MT_SECS=$SECS MT_PEAK=$PEAK
MT_HWM=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$MT_PID/status")
stop_pid "$MT_PID"
MT_PID=''
MT_SIZE=$(stat -c %s "$MT_MBOX")
rm -f "$MT_MBOX"

# ---------------------------------------------------------------------------------------------
# Postfix, virtual(8) to an mbox
# ---------------------------------------------------------------------------------------------
PF_DIR=$WORK/postfix
PF_QUEUE=$PF_DIR/queue
PF_MAIL=$PF_DIR/mail
mkdir -p "$PF_DIR/conf" "$PF_QUEUE" "$PF_DIR/data" "$PF_MAIL"
chown postfix "$PF_DIR/data"
chown nobody:nogroup "$PF_MAIL"
PF_PORT=$(free_port)
cat >"$PF_DIR/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF_QUEUE
data_directory = $PF_DIR/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.example1.com
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
message_size_limit = 0
mailbox_size_limit = 0
virtual_mailbox_limit = 0
virtual_mailbox_domains = example1.com
virtual_mailbox_base = $PF_MAIL
virtual_mailbox_maps = hash:$PF_DIR/conf/vmailbox
virtual_uid_maps = static:$NOBODY_UID
virtual_gid_maps = static:$NOGROUP_GID
virtual_minimum_uid = 1
virtual_transport = virtual
local_transport = error:no local delivery here
alias_maps =
alias_database =
maillog_file = $PF_DIR/maillog
maillog_file_prefixes = $PF_DIR
biff = no
EOF
printf '@example1.com example\n' >"$PF_DIR/conf/vmailbox"
postmap -c "$PF_DIR/conf" "hash:$PF_DIR/conf/vmailbox"
{
    postfix_master_cf "$PF_PORT"
    echo "virtual   unix  -  n  n  -     -  virtual"
} >"$PF_DIR/conf/master.cf"
postfix -c "$PF_DIR/conf" check >"$PF_DIR/check.log" 2>&1 || die "postfix check: $(head -c 1000 "$PF_DIR/check.log")"
PF_CONF=$PF_DIR/conf
postfix -c "$PF_CONF" start >"$PF_DIR/start.log" 2>&1 || die "postfix start: $(head -c 1000 "$PF_DIR/start.log")"
wait_port "$PF_PORT" || die "Postfix is not listening; log: $(tail -n 5 "$PF_DIR/maillog" 2>/dev/null)"
PF_MASTER=$(head -1 "$PF_QUEUE/pid/master.pid" | tr -d ' ')
note "Postfix $PF_VERSION on 127.0.0.1:$PF_PORT (master $PF_MASTER)"
PF_MBOX=$PF_MAIL/example
run "Postfix, 1 KB" "$PF_PORT" "$PF_MBOX" "$PF_MASTER" 1 1000
PF_SMALL=$PEAK
run "Postfix, $COUNT × $LENGTH" "$PF_PORT" "$PF_MBOX" "$PF_MASTER" "$COUNT" "$LENGTH"
PF_SECS=$SECS PF_PEAK=$PEAK
PF_SIZE=$(stat -c %s "$PF_MBOX")
postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true
PF_CONF=''

mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
mkdir -p "$RESULTS_DIR"
[ -e "$RESULTS_DIR/.gitignore" ] || printf '*\n' >"$RESULTS_DIR/.gitignore"
{
    echo "# Memory under large messages: mailtool serve vs Postfix"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)." \
        "\`smtp-source -s $COUNT -m $COUNT -l $LENGTH\` to $RCPT (the seed's virtusertable), delivered to one mbox." \
        "Peak RSS: the largest sum of the server's processes' VmRSS, sampled every 100 ms from the first byte to the last delivery."
    echo
    echo "| server | load | seconds | peak RSS MiB | mbox bytes |"
    echo "|---|---|---:|---:|---:|"
    echo "| mailtool serve | 1 × 1000 B | – | $(mib "$MT_SMALL") | – |"
    echo "| mailtool serve | $COUNT × $LENGTH B | $MT_SECS | $(mib "$MT_PEAK") (VmHWM $(mib "$MT_HWM")) | $MT_SIZE |"
    echo "| Postfix $PF_VERSION (all processes) | 1 × 1000 B | – | $(mib "$PF_SMALL") | – |"
    echo "| Postfix $PF_VERSION (all processes) | $COUNT × $LENGTH B | $PF_SECS | $(mib "$PF_PEAK") | $PF_SIZE |"
    echo
    met=$(awk -v k="$MT_HWM" 'BEGIN { print (k < 256 * 1024) ? "yes" : "no" }')
    echo "Target (issue 15): mailtool's peak under 256 MiB for $COUNT × $LENGTH: $met ($(mib "$MT_HWM") MiB)."
} | tee "$RESULTS"
note "written to ${RESULTS#"$ROOT"/}"
