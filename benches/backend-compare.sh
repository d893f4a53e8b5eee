#!/usr/bin/env bash
# Maps in PostgreSQL (issue 14): SMTP throughput with the seed's maps in one private PostgreSQL,
# against mailtool with the same maps in files and against Postfix with `pgsql:` maps on the
# same database, under Postfix's load generator:
#   smtp-source -s 20 -m 10000 -l 1000 -t who@example1.com   against
#     - mailtool serve, maps in files          (access, virtusertable, localip: the seed's)
#     - mailtool serve, maps in PostgreSQL     ([backends.shared], the same rows)
#     - Postfix smtpd, pgsql: maps             (check_client_access, check_sender_access,
#                                               check_recipient_access, virtual_alias_maps on
#                                               the same tables; discard transport)
# Every server consults its maps on every connection, MAIL and RCPT, as the seed's rules do.
#
# Usage: benches/backend-compare.sh         (as root: apt-get, initdb as postgres, a private
#                                            Postfix, the server dropping to nobody)
# Environment:
#   MAILTOOL=/path/to/mailtool   use this binary instead of `cargo build --release`
#   MESSAGES=10000 SESSIONS=20 LENGTH=1000   smtp-source's -m, -s and -l
#   REPEATS=2                    runs per target; the fastest one is reported
#   RUN_TIMEOUT=240              seconds one smtp-source run may take before it is killed
#   KEEP_WORK=1                  keep the work directory for a look
#
# Prints a markdown table and writes it to benches/results/backend-compare.md.
# All traffic stays on 127.0.0.0/8; every process started here is stopped on exit.
set -euo pipefail

BENCH=backend-compare
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
need_root "apt-get, initdb as postgres, a private Postfix instance"

MESSAGES=${MESSAGES:-10000}
SESSIONS=${SESSIONS:-20}
LENGTH=${LENGTH:-1000}
REPEATS=${REPEATS:-2}
RUN_TIMEOUT=${RUN_TIMEOUT:-240}
positive_ints MESSAGES SESSIONS LENGTH REPEATS RUN_TIMEOUT
RESULTS_DIR=$ROOT/benches/results
RESULTS=$RESULTS_DIR/backend-compare.md
FROM=bench@client.test
RCPT=who@example1.com
SEED=$ROOT/tests/fixtures/seed-etc-mail

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
command -v python3 >/dev/null || apt_install python3
stop_services() {
    for s in postfix postgresql; do
        systemctl stop "$s" 2>/dev/null || true
        service "$s" stop >/dev/null 2>&1 || true
    done
    postfix stop 2>/dev/null || true
}
need=()
[ -x /usr/sbin/smtp-source ] && command -v postfix >/dev/null || need+=(postfix)
postconf -m 2>/dev/null | grep -qx pgsql || [ -e /usr/lib/postfix/postfix-pgsql.so ] || need+=(postfix-pgsql)
PG_BIN=''
for d in $(command -v initdb >/dev/null && dirname "$(command -v initdb)") /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && PG_BIN=$d
done
[ -n "$PG_BIN" ] || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
    apt_update
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt_install "${need[@]}"
    stop_services
    for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && PG_BIN=$d; done
fi
[ -n "$PG_BIN" ] || die "no initdb after installing postgresql"
SOURCE=/usr/sbin/smtp-source
PF_VERSION=$(dpkg-query -W -f='${Version}' postfix 2>/dev/null || echo '?')
build_mailtool

# ---------------------------------------------------------------------------------------------
# Work area; everything started is stopped on exit
# ---------------------------------------------------------------------------------------------
CACHE=$TARGET_DIR/backend-compare
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/work.XXXXXX")
chmod 755 "$WORK"
if ! runuser -u nobody -- test -x "$WORK" 2>/dev/null; then
    rm -rf "$WORK"
    WORK=$(mktemp -d /var/tmp/backend-compare.XXXXXX)
    chmod 755 "$WORK"
fi
MT_PID='' PF_CONF='' PG_DATA=''
cleanup() {
    local rc=$?
    stop_pid "$MT_PID"
    [ -z "$PF_CONF" ] || postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true
    [ -z "$PG_DATA" ] || runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    remove_work
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
    local i
    for ((i = 0; i < 100; i++)); do
        python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
SECS=''
run_source() {
    local label=$1 port=$2 log=$WORK/smtp-source.log t0 t1
    sync
    t0=$EPOCHREALTIME
    if ! timeout "$RUN_TIMEOUT" "$SOURCE" -c -s "$SESSIONS" -m "$MESSAGES" -l "$LENGTH" \
        -f "$FROM" -t "$RCPT" "127.0.0.1:$port" >"$log" 2>&1; then
        tr '\r' '\n' <"$log" | tail -n 5 >&2
        die "smtp-source against $label failed or took over ${RUN_TIMEOUT}s"
    fi
    t1=$EPOCHREALTIME
    SECS=$(secs_between "$t0" "$t1")
    note "  $label: $MESSAGES messages in ${SECS}s"
}
ROWS=()
BEST=''
# best LABEL START STOP: REPEATS runs, each with a fresh server; the fastest is kept.
best() {
    local label=$1 start=$2 stop=$3 r
    BEST=''
    for ((r = 1; r <= REPEATS; r++)); do
        "$start"
        run_source "$label" "$PORT"
        "$stop"
        if [ -z "$BEST" ] || awk -v a="$SECS" -v b="$BEST" 'BEGIN { exit !(a < b) }'; then BEST=$SECS; fi
    done
    ROWS+=("$label|$BEST")
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL: a private cluster, the seed's maps loaded by mailtool's makemap
# ---------------------------------------------------------------------------------------------
PG_PORT=$(free_port)
mkdir -p "$WORK/pg"
chown postgres "$WORK/pg"
PG_DATA=$WORK/pg/data
runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres --no-sync -E UTF8 >"$WORK/initdb.log" 2>&1 \
    || die "initdb: $(tail -n 5 "$WORK/initdb.log")"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/pg/log" -w \
    -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null \
    || die "pg_ctl start: $(tail -n 5 "$WORK/pg/log")"
PSQL=(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -At)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE mail" >/dev/null
note "PostgreSQL $("${PSQL[@]}" -d mail -c 'SHOW server_version') on 127.0.0.1:$PG_PORT"

MT_N=0 MT_ROOT='' PORT=''
# new_root MAPS: a root whose [maps] section is MAPS, with the seed's class files.
new_root() {
    MT_N=$((MT_N + 1))
    MT_ROOT=$WORK/mailtool-$MT_N
    mkdir -p "$MT_ROOT/etc/mail"
    cp "$SEED/local-host-names" "$SEED/relay-domains" "$MT_ROOT/etc/mail/"
    cat >"$MT_ROOT/etc/mail/mailtool.toml" <<EOF
hostname = "mail.example1.com"
user = "nobody"
group = "nogroup"
$1
[backends.shared]
type = "postgresql"
url = "postgresql://postgres@127.0.0.1:$PG_PORT/mail"
pool = 4
[smtp]
listen = ["127.0.0.1:0"]
submission = []
smtps = []
max_connections = 6000
max_connections_per_ip = 6000
[pop3]
listen = []
[queue]
delivery_mode = "queue"      # accepted mail stays in the spool: this measures acceptance
interval = "0s"
[dns]
servers = []
timeout = "50ms"
EOF
    chmod 755 "$MT_ROOT" "$MT_ROOT/etc" "$MT_ROOT/etc/mail"
}
FILE_MAPS=''
PG_MAPS='[maps]
access = "shared:access"
virtusertable = "shared:virtusertable"
localip = "shared:localip"'
MAPS=''
start_mailtool() {
    local i
    new_root "$MAPS"
    if [ -z "$MAPS" ]; then
        for m in access virtusertable; do
            "$MAILTOOL" makemap hash "$MT_ROOT/etc/mail/$m" <"$SEED/$m"
        done
        "$MAILTOOL" makemap -e hash "$MT_ROOT/etc/mail/localip" <"$SEED/localip"
        chmod 644 "$MT_ROOT"/etc/mail/*
    fi
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
stop_mailtool() {
    local got
    stop_pid "$MT_PID"
    MT_PID=''
    got=$(find "$MT_ROOT/var/spool/mqueue" -maxdepth 1 -name 'qf*' | wc -l)
    [ "$got" -eq "$MESSAGES" ] || die "mailtool's spool holds $got qf files, expected $MESSAGES"
}

# The maps in PostgreSQL, loaded once through a root that names them.
new_root "$PG_MAPS"
for m in access virtusertable; do
    "$MAILTOOL" --root "$MT_ROOT" makemap hash "shared:$m" <"$SEED/$m"
done
"$MAILTOOL" --root "$MT_ROOT" makemap -e hash shared:localip <"$SEED/localip"
note "rows: access $("${PSQL[@]}" -d mail -c 'SELECT count(*) FROM access'), virtusertable $("${PSQL[@]}" -d mail -c 'SELECT count(*) FROM virtusertable')"

MAPS=$FILE_MAPS
note "mailtool serve, maps in files"
best "mailtool serve, maps in files" start_mailtool stop_mailtool
MT_FILE=$BEST
MAPS=$PG_MAPS
note "mailtool serve, maps in PostgreSQL"
best "mailtool serve, maps in PostgreSQL" start_mailtool stop_mailtool
MT_PG=$BEST

# ---------------------------------------------------------------------------------------------
# Postfix with pgsql: maps on the same tables
# ---------------------------------------------------------------------------------------------
PF_DIR=$WORK/postfix
PF_QUEUE=$PF_DIR/queue
mkdir -p "$PF_DIR/conf" "$PF_QUEUE" "$PF_DIR/data"
chown postfix "$PF_DIR/data"
pgmap() { # NAME QUERY
    cat >"$PF_DIR/conf/$1.cf" <<EOF
hosts = inet:127.0.0.1:$PG_PORT
user = postgres
dbname = mail
query = $2
EOF
}
pgmap client "SELECT value FROM access WHERE key = 'connect:%s'"
pgmap sender "SELECT value FROM access WHERE key = 'from:%s'"
pgmap recipient "SELECT value FROM access WHERE key = 'to:%s'"
pgmap virtual "SELECT value FROM virtusertable WHERE key = '%s'"
PF_PORT=$(free_port)
cat >"$PF_DIR/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF_QUEUE
data_directory = $PF_DIR/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.example1.com
mydomain = example1.com
mydestination =
virtual_alias_domains = example1.com, example2.com
virtual_alias_maps = proxy:pgsql:$PF_DIR/conf/virtual.cf
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
smtpd_client_restrictions = check_client_access proxy:pgsql:$PF_DIR/conf/client.cf
smtpd_sender_restrictions = check_sender_access proxy:pgsql:$PF_DIR/conf/sender.cf
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = check_recipient_access proxy:pgsql:$PF_DIR/conf/recipient.cf, permit_mynetworks, reject
maillog_file = $PF_DIR/maillog
maillog_file_prefixes = $PF_DIR
biff = no
EOF
postfix_master_cf "$PF_PORT" >"$PF_DIR/conf/master.cf"
postfix -c "$PF_DIR/conf" check >"$PF_DIR/check.log" 2>&1 || die "postfix check: $(head -c 1000 "$PF_DIR/check.log")"
PF_CONF=$PF_DIR/conf
start_postfix() {
    postfix -c "$PF_CONF" start >"$PF_DIR/start.log" 2>&1 || die "postfix start: $(head -c 1000 "$PF_DIR/start.log")"
    wait_port "$PF_PORT" || die "Postfix smtpd is not listening; log: $(tail -n 5 "$PF_DIR/maillog" 2>/dev/null)"
    PORT=$PF_PORT
}
stop_postfix() {
    # Wait for the queue to drain to the discard transport, then stop.
    local i
    for ((i = 0; i < 600; i++)); do
        [ -z "$(find "$PF_QUEUE/incoming" "$PF_QUEUE/active" "$PF_QUEUE/deferred" -type f 2>/dev/null | head -1)" ] && break
        sleep 0.1
    done
    postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true
    sleep 1
}
note "Postfix $PF_VERSION with pgsql: maps (proxymap) on 127.0.0.1:$PF_PORT"
start_postfix
"$SOURCE" -m 1 -l 100 -f "$FROM" -t "$RCPT" "127.0.0.1:$PORT" >"$WORK/test.log" 2>&1 \
    || die "Postfix refused the test message: $(tr '\r' '\n' <"$WORK/test.log" | tail -n 3)"
stop_postfix
best "Postfix smtpd, pgsql: maps" start_postfix stop_postfix
PF_PG=$BEST
grep -q "pgsql" "$PF_DIR/maillog" && note "warning: Postfix logged pgsql messages: $(grep pgsql "$PF_DIR/maillog" | tail -n 2)"

# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
rate() { awk -v n="$MESSAGES" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }
mkdir -p "$RESULTS_DIR"
{
    echo "smtp-source -s $SESSIONS -m $MESSAGES -l $LENGTH, best of $REPEATS; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "| server | seconds | messages/s |"
    echo "|---|---:|---:|"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r label secs <<<"$row"
        echo "| $label | $secs | $(rate "$secs") |"
    done
    echo
    echo "mailtool with PostgreSQL maps / Postfix with pgsql: maps: $(ratio "$MT_PG" "$PF_PG")x"
    echo "mailtool with PostgreSQL maps / mailtool with map files: $(ratio "$MT_PG" "$MT_FILE")x"
} | tee "$RESULTS"
