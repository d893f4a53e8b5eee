#!/usr/bin/env bash
# The cost of the message stage's checks and signatures (issue 17), side by side in one run:
#   smtp-source -s 20 -m 10000 -l 1000 -f bench@client.test -t anyone@example1.com   against
#     - mailtool serve, [verify] off, no keys           the baseline
#     - mailtool serve, [verify] as shipped (SPF tag, DKIM tag, DMARC enforce), the client
#       not trusted (relay_from_loopback = false): SPF of HELO and MAIL FROM, DKIM, DMARC per
#       message, with an Authentication-Results field
#     - mailtool serve, [dkim] sign for client.test, the client trusted: one DKIM signature per
#       message, RSA-2048, then Ed25519
#   All three on the seed's maps, with DNS from the tests' DNS server (examples/bench_dns.rs)
#   serving client.test's SPF, DMARC and DKIM records, and 127.0.0.1's PTR as client.test (not
#   localhost, which is in class w and so may relay).
#
# Usage: benches/auth-compare.sh            (as root: a private Postfix's smtp-source)
# Environment: MAILTOOL, MESSAGES=10000 SESSIONS=20 LENGTH=1000 REPEATS=3 KEEP_WORK=1
#
# Prints a markdown table and writes it to benches/results/auth-compare.md.
set -euo pipefail

BENCH=auth-compare
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
need_root "smtp-source, privilege drop"

MESSAGES=${MESSAGES:-10000}
SESSIONS=${SESSIONS:-20}
LENGTH=${LENGTH:-1000}
REPEATS=${REPEATS:-3}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
positive_ints MESSAGES SESSIONS LENGTH REPEATS RUN_TIMEOUT
RESULTS_DIR=$ROOT/benches/results
RESULTS=$RESULTS_DIR/auth-compare.md
FROM=bench@client.test
RCPT=anyone@example1.com

command -v python3 >/dev/null || apt_install python3
need_postfix
SOURCE=/usr/sbin/smtp-source
build_mailtool
note "cargo build --release --example bench_dns"
cargo build --release --quiet --example bench_dns || die "cannot build the DNS server"
DNS_BIN=$TARGET_DIR/release/examples/bench_dns

make_work auth-compare
MT_PID='' DNS_PID=''
cleanup() {
    local rc=$?
    stop_pid "$MT_PID"
    exec 9>&- 2>/dev/null || true
    sleep 0.2
    grep '^queries: ' "$WORK/dns.out" >&2 || true
    stop_pid "$DNS_PID"
    remove_work
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The key client.test signs with, and its record.
KEYS=$WORK/keys
mkdir -p "$KEYS/etc/mail"
printf 'user = "nobody"\ngroup = "nogroup"\n' >"$KEYS/etc/mail/mailtool.toml"
RECORD=$("$MAILTOOL" --root "$KEYS" dkim keygen client.test bench --out "$KEYS/bench.key" 2>/dev/null \
    | sed 's/^[^"]*"//; s/"$//; s/" "//g')
RECORD_ED=$("$MAILTOOL" --root "$KEYS" dkim keygen client.test ed --algorithm ed25519 --out "$KEYS/ed.key" 2>/dev/null \
    | sed 's/^[^"]*"//; s/"$//; s/" "//g')
chgrp nogroup "$KEYS/bench.key" "$KEYS/ed.key"
chmod 755 "$KEYS"

# The DNS server, alive as long as fd 9 is open.
mkfifo "$WORK/dns.in"
"$DNS_BIN" \
    "TXT client.test v=spf1 ip4:127.0.0.1 -all" \
    "TXT _dmarc.client.test v=DMARC1; p=reject" \
    "TXT bench._domainkey.client.test $RECORD" \
    "TXT ed._domainkey.client.test $RECORD_ED" \
    "PTR 127.0.0.1 client.test" \
    "A client.test 127.0.0.1" \
    <"$WORK/dns.in" >"$WORK/dns.out" 2>&1 &
DNS_PID=$!
exec 9>"$WORK/dns.in"
for ((i = 0; i < 100; i++)); do
    DNS=$(sed -n 's/^dns: //p' "$WORK/dns.out")
    [ -z "$DNS" ] || break
    sleep 0.1
done
[ -n "$DNS" ] || die "the DNS server did not start: $(cat "$WORK/dns.out")"
note "DNS on $DNS"


MT_N=0 PORT='' MT_ROOT=''
start_mailtool() { # KIND: base | verify | sign | sign_ed
    local kind=$1 smtp='' rest='' key=bench
    MT_N=$((MT_N + 1))
    MT_ROOT=$WORK/mailtool-$MT_N
    seed_root "$MT_ROOT"
    case $kind in
    base) rest=$'[verify]\nspf = "off"\ndkim = "off"\ndmarc = "off"' ;;
    verify) smtp='relay_from_loopback = false' ;;
    sign | sign_ed)
        [ "$kind" = sign ] || key=ed
        rest=$'[verify]\nspf = "off"\ndkim = "off"\ndmarc = "off"\n[dkim]\nsign = [{ domain = "client.test", selector = "'"$key"'", key = "'"$KEYS/$key"'.key" }]'
        ;;
    esac
    # [dkim] paths are relocated under the root: the key is linked in at the same path.
    mkdir -p "$MT_ROOT/${KEYS#/}"
    ln -f "$KEYS/bench.key" "$KEYS/ed.key" "$MT_ROOT/${KEYS#/}/"
    cat >"$MT_ROOT/etc/mail/mailtool.toml" <<EOF
hostname = "mail.example1.com"
user = "nobody"
group = "nogroup"
[smtp]
listen = ["127.0.0.1:0"]
submission = []
smtps = []
$smtp
[pop3]
listen = []
[dns]
servers = ["$DNS"]
timeout = "2s"
[queue]
delivery_mode = "queue"      # accepted mail stays in the spool: this measures acceptance
interval = "0s"
$rest
EOF
    chmod -R a+rX "$MT_ROOT"
    chmod 640 "$MT_ROOT/${KEYS#/}/bench.key" "$MT_ROOT/${KEYS#/}/ed.key"
    : >"$WORK/mailtool.log"
    "$MAILTOOL" --root "$MT_ROOT" serve </dev/null >/dev/null 2>>"$WORK/mailtool.log" &
    MT_PID=$!
    PORT=$(serve_port "$WORK/mailtool.log" "$MT_PID")
    [ -n "$PORT" ] || die "mailtool serve did not start; log: $(tail -n 5 "$WORK/mailtool.log")"
}
stop_mailtool() { # KIND
    local got
    stop_pid "$MT_PID"
    MT_PID=''
    got=$(find "$MT_ROOT/var/spool/mqueue" -maxdepth 1 -name 'qf*' | wc -l)
    [ "$got" -eq "$MESSAGES" ] || die "mailtool's spool holds $got qf files, expected $MESSAGES"
    # Each run did what it measures: fields in every message's qf.
    local one
    one=$(find "$MT_ROOT/var/spool/mqueue" -maxdepth 1 -name 'qf*' -print -quit)
    case $1 in
    verify) grep -q '^HAuthentication-Results: mail.example1.com;' "$one" \
        || die "verify run: no Authentication-Results in $one" ;;
    sign | sign_ed) grep -q '^HDKIM-Signature: ' "$one" || die "$1 run: no DKIM-Signature in $one" ;;
    base) ! grep -q '^H' "$one" || die "baseline run: fields added in $one" ;;
    esac
    rm -rf "$MT_ROOT"
}

declare -A BEST
keep() { # NAME
    if [ -z "${BEST[$1]:-}" ] || awk -v a="$SECS" -v b="${BEST[$1]}" 'BEGIN { exit !(a < b) }'; then BEST[$1]=$SECS; fi
}
# Every run but the first would follow the last one's `rm -rf` of its spool, and ext4 allocates
# inodes slowly right after many were freed (issue 15's profile): the first run, the baseline,
# would be flattered. Free as many inodes once before it, so that every run starts alike.
python3 -c 'import os, sys
d = sys.argv[1]; os.mkdir(d)
for i in range(2 * int(sys.argv[2])): open(os.path.join(d, str(i)), "w").close()' "$WORK/warm" "$MESSAGES"
rm -rf "$WORK/warm"
for ((r = 1; r <= REPEATS; r++)); do
    for kind in base verify sign sign_ed; do
        start_mailtool "$kind"
        run_source "mailtool, $kind (run $r)" "$PORT"
        stop_mailtool "$kind"
        keep "$kind"
    done
done

rate() { awk -v n="$MESSAGES" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f%%", (b / a - 1) * 100 }'; }
mkdir -p "$RESULTS_DIR"
[ -e "$RESULTS_DIR/.gitignore" ] || printf '*\n' >"$RESULTS_DIR/.gitignore"
{
    echo "# The message stage's cost on acceptance"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the end;" \
        "\`smtp-source -s $SESSIONS -m $MESSAGES -l $LENGTH -f $FROM -t $RCPT\`, the seed's maps, DNS from the test server, best of $REPEATS, alternating."
    echo
    echo "| mailtool serve | seconds | messages/s | time added |"
    echo "|---|---:|---:|---:|"
    echo "| no checks, no keys | ${BEST[base]} | $(rate "${BEST[base]}") | |"
    echo "| SPF + DKIM + DMARC, Authentication-Results | ${BEST[verify]} | $(rate "${BEST[verify]}") | $(added "${BEST[base]}" "${BEST[verify]}") |"
    echo "| DKIM signing (RSA-2048) | ${BEST[sign]} | $(rate "${BEST[sign]}") | $(added "${BEST[base]}" "${BEST[sign]}") |"
    echo "| DKIM signing (Ed25519) | ${BEST[sign_ed]} | $(rate "${BEST[sign_ed]}") | $(added "${BEST[base]}" "${BEST[sign_ed]}") |"
    echo
    echo "Target (issue 17): at most +15%."
} | tee "$RESULTS"
note "written to ${RESULTS#"$ROOT"/}"
