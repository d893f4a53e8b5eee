# The shared prologue of the comparison scripts in benches/: messages in the script's name, the
# repository root as the working directory, $MAILTOOL made absolute. Sourced after
# `set -euo pipefail` with BENCH set to the script's name:
#
#   BENCH=pop3-compare
#   . "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
#   need_root "why"

die() {
    echo "$BENCH: error: $*" >&2
    exit 1
}
note() { echo "$BENCH: [${SECONDS}s] $*" >&2; }
need_root() { [ "$(id -u)" -eq 0 ] || die "run as root ($*)"; }

# A relative $MAILTOOL means relative to where the script was started.
if [ -n "${MAILTOOL:-}" ] && [[ "$MAILTOOL" != /* ]]; then MAILTOOL=$PWD/$MAILTOOL; fi
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[1]}")" && pwd)
ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
cd "$ROOT"
[ -f Cargo.toml ] || die "$ROOT does not look like the mailtool repository (no Cargo.toml)"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

# MAILTOOL as given, or `cargo build --release` and the binary it made ($TARGET_DIR must be set).
build_mailtool() {
    if [ -n "${MAILTOOL:-}" ]; then
        [ -x "$MAILTOOL" ] || die "MAILTOOL=$MAILTOOL is not an executable"
    else
        note "cargo build --release"
        cargo build --release --quiet --bin mailtool || die "cargo build --release failed"
        MAILTOOL=$TARGET_DIR/release/mailtool
        [ -x "$MAILTOOL" ] || die "built, but $MAILTOOL is missing (is the target dir set in a cargo config?)"
    fi
}

# alive PID: the process exists and is not a zombie (an exited child not yet waited for).
alive() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}
stop_pid() { # PID: SIGTERM, wait up to 10 s, then SIGKILL
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# apt-get install, with one `apt-get update` per run before the first install; SUDO (an
# array, empty by default) goes in front when the script is not run as root.
SUDO=()
apt_updated=0
apt_update() {
    if [ "$apt_updated" -eq 0 ]; then
        note "apt-get update"
        "${SUDO[@]}" apt-get update -qq >/dev/null || die "apt-get update failed"
        apt_updated=1
    fi
}
apt_install() {
    apt_update
    note "apt-get install $*"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
        || die "apt-get install $* failed"
}

# free_port [ADDR]: a free TCP port on ADDR (127.0.0.1), the kernel's pick; nothing binds it
# until the server does.
free_port() {
    python3 -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "${1:-127.0.0.1}"
}

# remove_work: the end of every cleanup trap; KEEP_WORK=1 keeps $WORK for a look.
remove_work() {
    if [ -n "${KEEP_WORK:-}" ]; then
        note "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}

# postfix_master_cf PORT: a private instance's master.cf: no chroot, smtpd only on
# 127.0.0.1:PORT, the discard transport, and the daemons `postfix check` wants to see.
postfix_master_cf() {
    cat <<EOF
127.0.0.1:$1 inet n - n - - smtpd
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
showq     unix  n  -  n  -     -  showq
error     unix  -  -  n  -     -  error
retry     unix  -  -  n  -     -  error
discard   unix  -  -  n  -     -  discard
anvil     unix  -  -  n  -     1  anvil
scache    unix  -  -  n  -     1  scache
postlog   unix-dgram n - n -   1  postlogd
EOF
}

# positive_ints VAR...: each named variable holds a positive integer, else the script stops.
positive_ints() {
    local v
    for v in "$@"; do
        [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
    done
}

# need_postfix: Postfix's smtp-source, smtp-sink and virtual(8), installed with Debian's "No
# configuration" and the system's daemon stopped again so no port is taken.
need_postfix() {
    if [ ! -x /usr/sbin/smtp-source ] || [ ! -x /usr/sbin/smtp-sink ] || ! command -v postfix >/dev/null \
        || [ ! -x /usr/lib/postfix/sbin/virtual ]; then
        apt_update
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections \
            || die "debconf-set-selections failed"
        apt_install postfix
        systemctl stop postfix 2>/dev/null || true
        postfix stop 2>/dev/null || true
    fi
}

# make_work NAME: sets WORK to a fresh directory under $TARGET_DIR/NAME (a real disk, so fsyncs
# cost what they cost) that the unprivileged server can enter, else under /var/tmp.
make_work() {
    mkdir -p "$TARGET_DIR/$1"
    WORK=$(mktemp -d "$TARGET_DIR/$1/work.XXXXXX")
    chmod 755 "$WORK"
    if ! runuser -u nobody -- test -x "$WORK" 2>/dev/null; then
        rm -rf "$WORK"
        WORK=$(mktemp -d "/var/tmp/$1.XXXXXX")
        chmod 755 "$WORK"
    fi
}

# wait_port PORT [ADDR]: until something listens on ADDR (127.0.0.1):PORT, at most 10 s.
wait_port() {
    local i
    for ((i = 0; i < 100; i++)); do
        python3 -c 'import socket, sys; socket.create_connection((sys.argv[2], int(sys.argv[1])), 1).close()' "$1" "${2:-127.0.0.1}" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# seed_root DIR: the seed's /etc/mail (tests/fixtures/seed-etc-mail) in DIR/etc/mail with its
# maps built as the guide builds them, and the users map with `example`, the local user the
# seed's virtusertable sends @example1.com to (the hash is sha512-crypt of "password").
seed_root() {
    local dir=$1 seed=$ROOT/tests/fixtures/seed-etc-mail m
    mkdir -p "$dir/etc/mail"
    cp "$seed"/{access,virtusertable,localip,popip,relay-domains,local-host-names,aliases} "$dir/etc/mail/"
    for m in access virtusertable popip; do
        "$MAILTOOL" makemap hash "$dir/etc/mail/$m" <"$seed/$m" >/dev/null
    done
    "$MAILTOOL" makemap -e hash "$dir/etc/mail/localip" <"$seed/localip" >/dev/null
    "$MAILTOOL" --root "$dir" newaliases >/dev/null
    # shellcheck disable=SC2016
    printf 'example %s\n' '$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/' \
        | "$MAILTOOL" makemap hash "$dir/etc/mail/users" >/dev/null
}

# serve_port LOG PID: the SMTP port `mailtool serve` (PID, logging to LOG) listens on, once it
# says so (at most 10 s); empty if it never does.
serve_port() {
    local i port=''
    for ((i = 0; i < 100; i++)); do
        port=$(sed -n 's/^mailtool: listening for SMTP on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$1" | head -1)
        [ -z "$port" ] || break
        alive "$2" || break
        sleep 0.1
    done
    echo "$port"
}

# run_source LABEL PORT: smtp-source -c -s $SESSIONS -m $MESSAGES -l $LENGTH -f $FROM -t $RCPT
# against 127.0.0.1:PORT ($SOURCE, at most $RUN_TIMEOUT s); the seconds it took go to $SECS.
SECS=''
run_source() {
    local log=$WORK/smtp-source.log t0 t1
    sync
    t0=$EPOCHREALTIME
    if ! timeout "$RUN_TIMEOUT" "$SOURCE" -c -s "$SESSIONS" -m "$MESSAGES" -l "$LENGTH" \
        -f "$FROM" -t "$RCPT" "127.0.0.1:$2" >"$log" 2>&1; then
        tr '\r' '\n' <"$log" | tail -n 5 >&2
        die "smtp-source against $1 failed or took over ${RUN_TIMEOUT}s"
    fi
    t1=$EPOCHREALTIME
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    note "  $1: $MESSAGES messages in ${SECS}s"
}
