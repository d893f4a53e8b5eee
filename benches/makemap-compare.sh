#!/usr/bin/env bash
# Side-by-side comparison of map building and bulk lookups:
#   mailtool makemap          vs  sendmail makemap (Berkeley DB hash/btree, Debian's sendmail-bin)
#                             and Postfix postmap (hash:, lmdb:, cdb:)
#
# Usage: benches/makemap-compare.sh            (from any directory; needs root for apt-get)
# Environment:
#   MAILTOOL=/path/to/mailtool   use this binary instead of `cargo build --release`
#   SIZES="100000 1000000"       input sizes in lines
#   REPEATS=3                    runs per measurement; the fastest one is reported
#   SLOW_SECONDS=30              a run slower than this is not repeated (keeps the total bounded)
#   COMPARE_CACHE=DIR            where sendmail's makemap is unpacked (default: TARGET/makemap-compare)
#
# Prints a markdown table and writes it to benches/results/makemap-compare.md.
set -euo pipefail

BENCH=makemap-compare
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

SIZES=${SIZES:-"100000 1000000"}
REPEATS=${REPEATS:-3}
SLOW_SECONDS=${SLOW_SECONDS:-30}
read -r -a SIZE_LIST <<<"$SIZES"
[ "${#SIZE_LIST[@]}" -gt 0 ] || die "SIZES is empty"
for n in "${SIZE_LIST[@]}" "$REPEATS"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "SIZES and REPEATS must be positive integers, got '$n'"
done
[[ "$SLOW_SECONDS" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SLOW_SECONDS must be a number, got '$SLOW_SECONDS'"
CACHE=${COMPARE_CACHE:-$TARGET_DIR/makemap-compare}
RESULTS_DIR=$ROOT/benches/results
RESULTS=$RESULTS_DIR/makemap-compare.md
TIME=/usr/bin/time

# Installing the peers needs root; once they are there, any user can run the comparison.
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=(sudo); fi
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed'; }

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
[ -x "$TIME" ] || apt_install time
command -v python3 >/dev/null || apt_install python3

# sendmail's makemap, unpacked from the Debian package (installing sendmail-bin would replace
# the system's MTA); it links against Berkeley DB 5.3.
have_pkg libdb5.3 || apt_install libdb5.3
SM_DIR=$CACHE/sendmail-bin
SM_MAKEMAP=$SM_DIR/usr/sbin/makemap
if [ ! -x "$SM_MAKEMAP" ]; then
    mkdir -p "$CACHE/deb"
    rm -f "$CACHE"/deb/sendmail-bin_*.deb
    note "fetching sendmail-bin"
    (cd "$CACHE/deb" && apt-get download sendmail-bin >/dev/null 2>&1) || {
        apt_update
        (cd "$CACHE/deb" && apt-get download sendmail-bin >/dev/null) \
            || die "apt-get download sendmail-bin failed"
    }
    rm -rf "$SM_DIR"
    dpkg -x "$CACHE"/deb/sendmail-bin_*.deb "$SM_DIR" || die "dpkg -x sendmail-bin failed"
    [ -x "$SM_MAKEMAP" ] || die "sendmail-bin has no usr/sbin/makemap"
fi
if ldd "$SM_MAKEMAP" | grep -q 'not found'; then
    die "sendmail makemap is missing libraries: $(ldd "$SM_MAKEMAP" | grep 'not found' | tr -s ' \n' ' ')"
fi
# As root, makemap reads sendmail.cf for its TrustedUser unless -C names another file.
SM=("$SM_MAKEMAP" -C /dev/null)

# Postfix's postmap with the lmdb and cdb plugins. Installing postfix may start the daemon:
# it is stopped again right away, so port 25 is not left taken.
stop_postfix() {
    "${SUDO[@]}" systemctl stop postfix 2>/dev/null || true
    "${SUDO[@]}" postfix stop 2>/dev/null || true
    "${SUDO[@]}" service postfix stop 2>/dev/null || true
}
if ! command -v postmap >/dev/null || ! have_pkg postfix-lmdb || ! have_pkg postfix-cdb; then
    apt_update
    echo "postfix postfix/main_mailer_type select No configuration" \
        | "${SUDO[@]}" debconf-set-selections || die "debconf-set-selections failed"
    apt_install postfix postfix-lmdb postfix-cdb
    stop_postfix
fi
command -v postmap >/dev/null || die "postmap not found after installing postfix"

# ---------------------------------------------------------------------------------------------
# mailtool
# ---------------------------------------------------------------------------------------------
build_mailtool

# ---------------------------------------------------------------------------------------------
# Work area and a private Postfix configuration
# ---------------------------------------------------------------------------------------------
# Not under /tmp: sendmail's makemap warns about every world-writable directory on the path.
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/work.XXXXXX")
chmod 700 "$WORK"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

PFCONF=$WORK/postfix-conf
mkdir -p "$PFCONF"
# lmdb_map_size: with the default 16 MiB, a map that outgrows it is rebuilt from the start at a
# larger size, and Postfix 3.7's postmap then stores the keys unfolded ("From:..."), so
# lowercase lookups miss. 1 GiB is sparse address space, not memory.
cat >"$PFCONF/main.cf" <<'EOF'
compatibility_level = 3.6
lmdb_map_size = 1073741824
EOF
for f in dynamicmaps.cf dynamicmaps.cf.d; do
    [ -e "/etc/postfix/$f" ] && cp -r "/etc/postfix/$f" "$PFCONF/"
done
[ -e "$PFCONF/dynamicmaps.cf" ] || die "/etc/postfix/dynamicmaps.cf missing: lmdb and cdb cannot load"
PM=(postmap -c "$PFCONF")

# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
# access-style lines with distinct keys (each embeds its line number or a bijection of it), and
# a key file per size: 90% present keys, 10% absent, shuffled; all from seed 1.
gen_inputs() {
    python3 - "$WORK" "${SIZE_LIST[@]}" <<'EOF'
import random, sys
work, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
for n in sizes:
    rng = random.Random(1)
    keys = []
    with open(f"{work}/access-{n}.txt", "w") as out:
        for i in range(n):
            kind, dom = rng.randrange(3), rng.randrange(2000)
            if kind == 0:
                ip = (i * 0x9E3779B1) & 0xFFFFFFFF
                key = "Connect:%d.%d.%d.%d" % (ip >> 24, ip >> 16 & 255, ip >> 8 & 255, ip & 255)
                val = "REJECT"
            elif kind == 1:
                key = f"From:user{i}@Domain{dom}.example.com"
                val = "ERROR:5.7.1:550 Mail from this sender is refused"
            else:
                key = f"To:rcpt{i}@domain{dom}.example.com"
                val = "OK"
            out.write(f"{key}\t{val}\n")
            keys.append(key.lower())
    lookups = rng.sample(keys, 90_000 if n >= 90_000 else n * 9 // 10)
    lookups += [f"from:nobody{j}@domain{rng.randrange(2000)}.example.com" for j in range(len(lookups) // 9)]
    rng.shuffle(lookups)
    with open(f"{work}/keys-{n}.txt", "w") as out:
        out.write("\n".join(lookups) + "\n")
EOF
}
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v c="$(nproc)" 'BEGIN { exit !(l > c / 2) }'; then
    note "warning: load average is $load on $(nproc) cores: other work will skew the timings"
fi
note "generating inputs ($SIZES lines)"
gen_inputs || die "generating the inputs failed"

# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------
# run_best LABEL CLEAN-DIR IN OUT -- CMD...: runs CMD <IN >OUT REPEATS times, first emptying
# CLEAN-DIR (all but the `access` source link) so every build starts fresh; sets BEST_S and BEST_KB to
# the fastest run's wall time and peak RSS. GNU time's %e has 10 ms resolution, so the seconds
# are taken from bash's microsecond clock around the same run; %M gives the peak RSS.
BEST_S='' BEST_KB=''
run_best() {
    local label=$1 clean=$2 in=$3 out=$4
    shift 5
    local tf=$WORK/time.out err=$WORK/stderr.out r t0 t1 secs kb
    BEST_S='' BEST_KB=''
    for ((r = 1; r <= REPEATS; r++)); do
        [ -z "$clean" ] || find "$clean" -mindepth 1 ! -name access -delete
        sync
        t0=$EPOCHREALTIME
        if ! "$TIME" -f '%e %M' -o "$tf" "$@" <"$in" >"$out" 2>"$err"; then
            echo "--- stderr of $label:" >&2
            tail -n 20 "$err" >&2
            if [ "$1" = postmap ]; then
                note "postmap logs to syslog unless stderr is a terminal: rerun the command by hand to see why"
            fi
            die "$label failed: $*"
        fi
        t1=$EPOCHREALTIME
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        kb=$(awk 'END { print $2 }' "$tf")
        if [ -z "$BEST_S" ] || awk -v a="$secs" -v b="$BEST_S" 'BEGIN { exit !(a < b) }'; then
            BEST_S=$secs BEST_KB=$kb
        fi
        if awk -v a="$secs" -v s="$SLOW_SECONDS" 'BEGIN { exit !(a > s) }'; then
            note "$label took ${secs}s: not repeated"
            break
        fi
    done
}

# Rows: op|tool|size|seconds|rss_kb|baseline-key
ROWS=()
record() { ROWS+=("$1|$2|$3|$BEST_S|$BEST_KB"); }

for n in "${SIZE_LIST[@]}"; do
    src=$WORK/access-$n.txt
    keys=$WORK/keys-$n.txt
    d=$WORK/$n
    mkdir -p "$d"/{mailtool,sm-hash,sm-btree,sm-hash-c,sm-btree-c,pf-hash,pf-lmdb,pf-cdb}
    for t in pf-hash pf-lmdb pf-cdb; do ln -sf "$src" "$d/$t/access"; done
    lines=$(wc -l <"$src")

    note "build $n lines: mailtool"
    run_best "mailtool makemap hash" "$d/mailtool" "$src" /dev/null -- "$MAILTOOL" makemap hash "$d/mailtool/access"
    record build "mailtool makemap hash" "$n"
    got=$("$MAILTOOL" makemap -u hash "$d/mailtool/access" | wc -l)
    [ "$got" -eq "$lines" ] || die "mailtool stored $got records of $lines"

    for cfg in "hash|sm-hash|" "btree|sm-btree|" "hash|sm-hash-c|-c 16777216" "btree|sm-btree-c|-c 16777216"; do
        IFS='|' read -r type dir opt <<<"$cfg"
        note "build $n lines: sendmail makemap${opt:+ $opt} $type"
        # shellcheck disable=SC2086 # $opt is deliberately split
        run_best "sendmail makemap $type" "$d/$dir" "$src" /dev/null -- "${SM[@]}" $opt "$type" "$d/$dir/access"
        record build "sendmail makemap${opt:+ $opt} $type" "$n"
    done
    got=$("${SM[@]}" -u hash "$d/sm-hash/access" | wc -l)
    [ "$got" -eq "$lines" ] || die "sendmail makemap stored $got records of $lines"

    for type in hash lmdb cdb; do
        note "build $n lines: postmap $type:"
        run_best "postmap $type:" "$d/pf-$type" /dev/null /dev/null -- "${PM[@]}" "$type:$d/pf-$type/access"
        record build "postmap $type:" "$n"
    done

    nkeys=$(wc -l <"$keys")
    note "lookup $nkeys keys in the $n-line maps"
    run_best "mailtool makemap -q -" "" "$keys" "$WORK/found-mt" -- "$MAILTOOL" makemap -q - hash "$d/mailtool/access"
    record lookup "mailtool makemap -q - hash" "$n"
    want=$(wc -l <"$WORK/found-mt")
    for type in hash lmdb cdb; do
        run_best "postmap -q - $type:" "" "$keys" "$WORK/found-pf" -- "${PM[@]}" -q - "$type:$d/pf-$type/access"
        record lookup "postmap -q - $type:" "$n"
        got=$(wc -l <"$WORK/found-pf")
        [ "$got" -eq "$want" ] || die "postmap $type: found $got keys, mailtool $want"
    done
    rm -rf "$d"
done

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
mkdir -p "$RESULTS_DIR"
printf '*\n' >"$RESULTS_DIR/.gitignore"
{
    echo "# makemap comparison"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -srm); best of $REPEATS runs; load average $load at the start."
    echo "mailtool $("$MAILTOOL" --version 2>/dev/null | head -1 | awk '{ print $NF }'), sendmail-bin $(dpkg-deb -f "$CACHE"/deb/sendmail-bin_*.deb Version 2>/dev/null || echo '?'), postfix $(dpkg-query -W -f='${Version}' postfix 2>/dev/null || echo '?')."
    echo "Ratio = peer seconds / mailtool seconds for the same operation and size (>1: mailtool is faster)."
    echo
    echo "| operation | tool / config | lines | seconds | peak RSS MB | ratio |"
    echo "|---|---|---:|---:|---:|---:|"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r op tool n s kb <<<"$row"
        base=
        for r2 in "${ROWS[@]}"; do
            IFS='|' read -r op2 tool2 n2 s2 _ <<<"$r2"
            if [ "$op2" = "$op" ] && [ "$n2" = "$n" ] && [[ "$tool2" == mailtool* ]]; then base=$s2; fi
        done
        if [[ "$tool" == mailtool* ]]; then
            ratio="1.00 (baseline)"
        else
            ratio=$(awk -v p="$s" -v m="$base" 'BEGIN { if (m > 0) printf "%.2f", p / m; else print "n/a" }')
        fi
        mb=$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')
        echo "| $op | $tool | $n | $s | $mb | $ratio |"
    done
    echo
    big=$(printf '%s\n' "${SIZE_LIST[@]}" | sort -n | tail -1)
    best_tool='' best_s='' best_kb='' mt_s='' mt_kb=''
    for row in "${ROWS[@]}"; do
        IFS='|' read -r op tool n s kb <<<"$row"
        if [ "$op" != build ] || [ "$n" != "$big" ]; then continue; fi
        if [[ "$tool" == mailtool* ]]; then
            mt_s=$s mt_kb=$kb
        elif [ -z "$best_s" ] || awk -v a="$s" -v b="$best_s" 'BEGIN { exit !(a < b) }'; then
            best_tool=$tool best_s=$s best_kb=$kb
        fi
    done
    half=$(awk -v m="$mt_s" -v p="$best_s" 'BEGIN { print (m < p / 2) ? "yes" : "no" }')
    rss=$(awk -v m="$mt_kb" -v p="$best_kb" 'BEGIN { print (m <= p) ? "yes" : "no" }')
    echo "Fastest peer for the $big-line build: $best_tool (${best_s}s, $(awk -v k="$best_kb" 'BEGIN { printf "%.1f", k / 1024 }') MB);" \
        "mailtool ${mt_s}s, $(awk -v k="$mt_kb" 'BEGIN { printf "%.1f", k / 1024 }') MB." \
        "Under half its time: $half. RSS no higher: $rss."
} | tee "$RESULTS"
note "written to ${RESULTS#"$ROOT"/}"
