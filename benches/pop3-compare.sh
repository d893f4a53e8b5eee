#!/usr/bin/env bash
# POP3 speed of `mailtool serve` against Dovecot's pop3 (Debian's dovecot-pop3d), both reading
# the same 10,000-message mbox (each server, and each user, has its own copy of the file):
#   - logins/s: complete sessions (greeting, USER, PASS, STAT, QUIT), LOGINS of them one after
#     another, then LOGINS spread over CONC parallel clients (client k logs in as bench<k>, so
#     no two sessions share a mailbox);
#   - RETR-all: one session (USER, PASS, STAT, LIST, RETR 1..10000, QUIT); wall time and MB/s,
#     with every message's size checked against LIST and the total against STAT's octets;
#   - peak RSS (VmHWM) of the server's processes, taken just before that session's QUIT.
# Both servers check the same sha512-crypt hash of the same password (Dovecot: passwd-file
# `{SHA512-CRYPT}$6$...`; mailtool: the users map, imported with `mailtool passwd --import`).
# One Python client (raw sockets, one command at a time, a fork per parallel client) drives both.
# Dovecot runs twice: with its defaults (a new pop3-login process per connection, "high-security
# mode", no auth cache) and tuned: its documented "high-performance mode" (login processes
# reused) plus an auth cache, since mailtool always caches verified logins.
#
# Usage: benches/pop3-compare.sh            (from any directory; as root: apt-get, private
#                                            Dovecot instances, servers dropping to nobody)
# Environment:
#   MAILTOOL=/path/to/mailtool   use this binary instead of `cargo build --release`
#   MESSAGES=10000               messages in the mbox (2-4 KB each, fixed seed)
#   LOGINS=2000                  sessions per login measurement (sequential and concurrent)
#   CONC=8                       parallel clients for the concurrent logins (and users bench1..N)
#   REPEATS=2                    runs per measurement and server, alternating servers; the best
#                                counts (RETR-all run r reads bench<r>'s still unread mailbox)
#   RETR_DEPTH=1                 RETR commands in flight (1: one at a time; >1 needs PIPELINING
#                                in every server's CAPA)
#   SERVERS="mailtool dovecot dovecot-perf"   which servers, in this order
#   DOVECOT_EXTRA='...'          lines appended to both dovecot.conf files (experiments)
#   MAILTOOL_POP3_EXTRA='...'    lines appended to mailtool.toml's [pop3] table (experiments)
#   RUN_TIMEOUT=600              seconds one client run may take before it is killed
#   KEEP_WORK=1                  keep the work directory (configs, logs, mboxes, indexes)
#
# Prints markdown tables and writes them to benches/results/pop3-compare.md.
# All traffic stays on 127.0.0.1; every process started here is stopped on exit.
set -euo pipefail

BENCH=pop3-compare
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
need_root "apt-get, private Dovecot instances, privilege drop"

MESSAGES=${MESSAGES:-10000}
LOGINS=${LOGINS:-2000}
CONC=${CONC:-8}
REPEATS=${REPEATS:-2}
RETR_DEPTH=${RETR_DEPTH:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
SERVERS=${SERVERS:-mailtool dovecot dovecot-perf}
DOVECOT_EXTRA=${DOVECOT_EXTRA:-}
MAILTOOL_POP3_EXTRA=${MAILTOOL_POP3_EXTRA:-}
positive_ints MESSAGES LOGINS CONC REPEATS RETR_DEPTH RUN_TIMEOUT
[ "$CONC" -le 64 ] || die "CONC is at most 64"
[ "$REPEATS" -le "$CONC" ] || die "REPEATS is at most CONC (each RETR-all run reads another user's unread mailbox)"
[ -n "$SERVERS" ] || die "SERVERS is empty"
for s in $SERVERS; do
    case $s in mailtool | dovecot | dovecot-perf) ;; *) die "SERVERS: unknown server '$s' (mailtool, dovecot, dovecot-perf)" ;; esac
done
RESULTS_DIR=$ROOT/benches/results
RESULTS=$RESULTS_DIR/pop3-compare.md
PASSWORD=bench-password-1
SALT=pop3compare1234 # fixed, so every run checks the same hash
has_server() { [[ " $SERVERS " == *" $1 "* ]]; }
has_dovecot() { has_server dovecot || has_server dovecot-perf; }

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
command -v python3 >/dev/null || apt_install python3
command -v openssl >/dev/null || apt_install openssl
command -v timeout >/dev/null || apt_install coreutils

# Installing Dovecot may start the system's daemon (on 110/143/993/995): stop it again.
stop_system_dovecot() {
    systemctl stop dovecot 2>/dev/null || true
    service dovecot stop >/dev/null 2>&1 || true
    doveadm stop >/dev/null 2>&1 || true
}
DV_VERSION=''
if has_dovecot; then
    if ! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/pop3 ]; then
        apt_install dovecot-core dovecot-pop3d
        stop_system_dovecot
    fi
    [ -x /usr/lib/dovecot/pop3 ] || die "no /usr/lib/dovecot/pop3 after installing dovecot-pop3d"
    # A system Dovecot must not run during the measurements (it would share the CPUs).
    if [ -e /run/dovecot/master.pid ] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
        note "stopping the system's Dovecot"
        stop_system_dovecot
    fi
    DV_VERSION="$(dovecot --version | awk '{ print $1 }') (dovecot-pop3d $(dpkg-query -W -f='${Version}' dovecot-pop3d 2>/dev/null || echo '?'))"
fi

# ---------------------------------------------------------------------------------------------
# mailtool
# ---------------------------------------------------------------------------------------------
MT_VERSION=''
if has_server mailtool; then
    build_mailtool
    MT_VERSION="$("$MAILTOOL" --version 2>/dev/null | head -1 | awk '{ print $NF }')"
    if git -C "$ROOT" rev-parse --short HEAD >/dev/null 2>&1; then
        MT_VERSION="$MT_VERSION at $(git -C "$ROOT" rev-parse --short HEAD)"
    fi
fi

# ---------------------------------------------------------------------------------------------
# Work area; everything started is recorded here and stopped on exit
# ---------------------------------------------------------------------------------------------
# Under the target dir (a real disk) if the unprivileged servers can reach it, else /var/tmp.
CACHE=$TARGET_DIR/pop3-compare
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/work.XXXXXX")
chmod 755 "$WORK"
if ! runuser -u nobody -- test -x "$WORK" 2>/dev/null; then
    rm -rf "$WORK"
    WORK=$(mktemp -d /var/tmp/pop3-compare.XXXXXX)
    chmod 755 "$WORK"
fi
FSTYPE=$(df --output=fstype "$WORK" 2>/dev/null | tail -n 1 || stat -f -c %T "$WORK")

declare -A PID=() PORT=()
CLIENT_PID=''
cleanup() {
    local rc=$? s
    stop_pid "$CLIENT_PID"
    for s in "${!PID[@]}"; do stop_pid "${PID[$s]}"; done
    remove_work
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# greets PORT: a POP3 greeting (+OK) comes from 127.0.0.1:PORT.
greets() {
    python3 - "$1" 2>/dev/null <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2)
s.settimeout(5)
sys.exit(0 if s.recv(3) == b"+OK" else 1)
EOF
}

load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v c="$(nproc)" 'BEGIN { exit !(l > c / 2) }'; then
    note "warning: load average is $load on $(nproc) cores: other work will skew the timings"
fi

USERS=()
for ((i = 1; i <= CONC; i++)); do USERS+=("bench$i"); done
# benchdel: the mailbox the DELE + QUIT (UPDATE) measurement expunges half of.
ALL_USERS=("${USERS[@]}" benchdel)

# ---------------------------------------------------------------------------------------------
# The mbox: MESSAGES realistic messages of 2-4 KB from a fixed seed, with body lines that begin
# with "From " (stored as ">From ", mboxo style) and some that begin with "."
# ---------------------------------------------------------------------------------------------
MBOX=$WORK/inbox.mbox
note "generating $MESSAGES messages"
python3 - "$MESSAGES" "$MBOX" >"$WORK/mbox.stats" <<'EOF'
import random, sys, time

n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(1)
WORDS = """the a of to and in is it that for on was with as be at by this have from or one had not
but what all were when we there can an your which their said if do will each about how up out them
then she many some so these would other into has more her two like him see time could no make than
first been its who now people my made over did down only way find use may water long little very
after words called just where most know get through back much before go good new write our used me
man too any day same right look think also around another came come work three word must because
does part even place well such here take why things help put years different away again off went old
number great tell men say small every found still between name should home big give air line set own
under read last never us left end along while might next sound below saw something thought both few
those always looked show large often together asked house don't world going want school important
until form food keep children feet land side without boy once animals life enough took sometimes four
head above kind began almost live page got earth need far hand high year mother light parts country
father let night following picture being study second eyes soon times story boys since white days
ever paper hard near sentence better best across during today others however sure means knew it's try
told young miles sun ways thing whole hear example heard several change answer room sea against top
turned learn point city play toward five using himself usually money seen didn't car morning
invoice meeting schedule server backup report quarterly budget review draft attached please thanks
regards update project deadline customer order shipment password account mailbox relay queue""".split()
FIRST = "Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert Sybil Trent Victor Walter Wendy".split()
LAST = "Smith Jones Brown Taylor Wilson Davies Evans Thomas Johnson Roberts Walker Wright Robinson Thompson White Hughes Edwards Green Hall Wood".split()
DOMAINS = "example.com example.net example.org mail.example.com lists.example.org corp.example.net shop.example.com university.example.edu".split()
MAILERS = ["Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.5.0",
           "Microsoft Outlook 16.0", "Mutt/2.2.9 (2022-11-12)", "Apple Mail (2.3731.600.7)"]
DOT_LINES = [".", "..", ". . .", ".signature follows below", "...and so on, as before",
             ".net assemblies are in the attached list", ". indented with a leading dot"]
FROM_LINES = ["From what I remember, the meeting moved to Thursday.",
              "From the logs it looks like the relay refused the connection.",
              "From: is not a header here, just text at the start of a line",
              "From now on please use the new address."]
t = 1795000000  # Nov 2026

def words(k):
    return " ".join(rng.choice(WORDS) for _ in range(k))

def paragraph(lines):
    out = []
    for _ in range(lines):
        line = words(rng.randint(9, 13))
        out.append(line[:1].upper() + line[1:])
    out[-1] += "."
    return out

stats = {"messages": 0, "from_quoted": 0, "dot_lines": 0, "expected_octets": 0}
with open(path, "w", encoding="ascii", newline="\n") as f:
    for i in range(n):
        t += rng.randint(5, 400)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        dom = rng.choice(DOMAINS)
        sender = f"{first.lower()}.{last.lower()}@{dom}"
        when = time.gmtime(t)
        date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", when)
        qid = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(14))
        subject = words(rng.randint(3, 8)).capitalize()
        if rng.random() < 0.3:
            subject = "Re: " + subject
        head = [
            f"Return-Path: <{sender}>",
            f"Received: from mx{rng.randint(1, 9)}.{dom} (mx{rng.randint(1, 9)}.{dom} [192.0.2.{rng.randint(1, 254)}])",
            f"\tby bench.example (8.17.1/8.17.1) with ESMTPS id {qid}",
            f"\tfor <bench@bench.example>; {date}",
            f"Received: from [10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}] by mx.{dom}",
            f"\twith ESMTPSA id {qid[::-1].lower()}; {date}",
            f"Message-ID: <{t}.{i}.{qid.lower()}@{dom}>",
            f"Date: {date}",
            f"From: {first} {last} <{sender}>",
            "To: Bench User <bench@bench.example>",
            f"Subject: {subject}",
            f"User-Agent: {rng.choice(MAILERS)}",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=us-ascii; format=flowed",
            "Content-Transfer-Encoding: 7bit",
        ]
        target = rng.randint(2000, 4000)
        body = []
        size = sum(len(h) + 1 for h in head) + 1
        want_from = rng.random() < 0.15
        want_dot = rng.random() < 0.15
        sig = ["", "-- ", f"{first} {last}", f"{rng.choice(['Operations', 'Sales', 'IT', 'Accounts'])}, {dom}"]
        sig_size = sum(len(s) + 1 for s in sig)
        while size + sig_size < target:
            if want_from and rng.random() < 0.5:
                para = [rng.choice(FROM_LINES)] + paragraph(rng.randint(1, 3))
                want_from = False
            elif want_dot and rng.random() < 0.5:
                para = [rng.choice(DOT_LINES)] + paragraph(rng.randint(1, 3))
                want_dot = False
            elif rng.random() < 0.15:
                para = ["> " + l for l in paragraph(rng.randint(2, 4))]
            else:
                para = paragraph(rng.randint(2, 6))
            if body:
                para = [""] + para
            body += para
            size += sum(len(l) + 1 for l in para)
        body += sig
        if want_from:  # every message that was meant to have one gets one
            body.insert(1, rng.choice(FROM_LINES))
        if want_dot:
            body.insert(1, rng.choice(DOT_LINES))
        lines = head + [""] + body
        out = []
        for l in lines:
            if l.startswith("From "):
                l = ">" + l  # mboxo quoting, as a delivery agent writes it
                stats["from_quoted"] += 1
            if l.startswith("."):
                stats["dot_lines"] += 1
            out.append(l)
        f.write(f"From {sender} {time.asctime(when)}\n")
        f.write("\n".join(out))
        f.write("\n\n")  # the blank line that separates it from the next From_ line
        stats["messages"] += 1
        # What a POP3 server that keeps ">From" as stored reports: every line with CRLF.
        stats["expected_octets"] += sum(len(l) + 2 for l in out)
for k, v in stats.items():
    print(f"{k}={v}")
EOF
mstat() { sed -n "s/^$1=//p" "$WORK/mbox.stats"; }
[ "$(mstat messages)" = "$MESSAGES" ] || die "the generator wrote $(mstat messages) messages, expected $MESSAGES"
[ "$(grep -c '^From ' "$MBOX")" = "$MESSAGES" ] || die "the mbox has $(grep -c '^From ' "$MBOX") From_ lines, expected $MESSAGES"
MBOX_BYTES=$(stat -c %s "$MBOX")
MBOX_MD5=$(md5sum "$MBOX" | cut -c1-12)
note "mbox: $MESSAGES messages, $MBOX_BYTES bytes, $(mstat from_quoted) >From lines, $(mstat dot_lines) lines beginning with '.'"

HASH=$(openssl passwd -6 -salt "$SALT" "$PASSWORD")
[[ "$HASH" == '$6$'* ]] || die "openssl passwd -6 gave '$HASH'"

# copy_mbox DIR: one copy of the mbox per user in DIR, owned by nobody (the servers' mail user).
copy_mbox() {
    local dir=$1 u
    mkdir -p "$dir"
    for u in "${ALL_USERS[@]}"; do
        cp "$MBOX" "$dir/$u"
        chmod 600 "$dir/$u"
    done
    chown -R nobody:nogroup "$dir"
    chmod 755 "$dir"
}

# ---------------------------------------------------------------------------------------------
# The client: one program for every server, raw sockets, one command at a time
# ---------------------------------------------------------------------------------------------
CLIENT=$WORK/pop3client.py
cat >"$CLIENT" <<'EOF'
"""POP3 load client. Modes:
  logins PORT PASSWORD WANT_COUNT N CONC USER...
      N complete sessions (greeting, USER, PASS, STAT, QUIT), split over CONC forked clients;
      client k logs in as USER[k % len(USER)]. STAT must show WANT_COUNT messages.
  rss PID
      VmHWM of PID and its descendants (the largest and the sum).
  retr PORT USER PASSWORD WANT_COUNT DEPTH PID
      one session: USER, PASS, STAT, LIST, RETR 1..count (DEPTH in flight), then the peak RSS of
      PID and its descendants, then QUIT.
  dele PORT USER PASSWORD WANT_COUNT
      one session: USER, PASS, STAT, DELE of every other message (1, 3, 5, ...), QUIT (the
      UPDATE: the server removes them); then a new session's STAT must show the rest.
Prints key=value lines; exits 1 on any protocol error."""
import os, socket, sys, time

TIMEOUT = 60

class PopError(Exception):
    pass

class Conn:
    __slots__ = ("s", "buf", "pos")

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), TIMEOUT)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def fill(self):
        d = self.s.recv(262144)
        if not d:
            raise PopError("connection closed by the server")
        self.buf += d

    def compact(self):
        if self.pos > 1 << 20:
            del self.buf[: self.pos]
            self.pos = 0

    def line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                l = bytes(self.buf[self.pos : i])
                self.pos = i + 2
                return l
            self.fill()

    def ok(self, what):
        l = self.line()
        if not l.startswith(b"+OK"):
            raise PopError(f"{what}: {l[:200].decode('latin-1')!r}")
        return l

    def cmd(self, c):
        self.s.sendall(c)
        return self.ok(c.split()[0].decode())

    def multi(self):
        """The rest of a multi-line response whose +OK line was just read: its size in octets
        after dot-unstuffing, the terminating ".CRLF" excluded."""
        start = self.pos
        at = start - 2  # the status line's CRLF: an empty body ends at once
        while True:
            j = self.buf.find(b"\r\n.\r\n", at)
            if j >= 0:
                break
            at = max(start - 2, len(self.buf) - 4)
            self.fill()
        end = j + 2
        n = end - start
        if n > 0:
            n -= self.buf.count(b"\n..", start, end)
            if self.buf.startswith(b"..", start):
                n -= 1
        self.pos = j + 5
        return n

    def close(self):
        self.s.close()

def login(c, user, password):
    c.ok("greeting")
    c.cmd(b"USER " + user + b"\r\n")
    c.cmd(b"PASS " + password + b"\r\n")
    parts = c.cmd(b"STAT\r\n").split()
    return int(parts[1]), int(parts[2])

def session(port, user, password, want):
    c = Conn(port)
    try:
        count, _ = login(c, user, password)
        if count != want:
            raise PopError(f"STAT: {count} messages, expected {want}")
        c.cmd(b"QUIT\r\n")
    finally:
        c.close()

def logins(argv):
    port, password, want, n, conc = int(argv[0]), argv[1].encode(), int(argv[2]), int(argv[3]), int(argv[4])
    users = [u.encode() for u in argv[5:]]
    go_r, go_w = os.pipe()
    kids = []  # (pid, read end of its result pipe)
    for k in range(conc):
        share = n // conc + (1 if k < n % conc else 0)
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            os.close(res_r)
            for _, r in kids:
                os.close(r)
            user = users[k % len(users)]
            os.read(go_r, 1)
            lat, errs, first = [], 0, ""
            for _ in range(share):
                t = time.perf_counter()
                try:
                    session(port, user, password, want)
                    lat.append(time.perf_counter() - t)
                except (OSError, PopError, ValueError, IndexError) as e:
                    errs += 1
                    first = first or f"{user.decode()}: {type(e).__name__}: {e}"
                    if errs >= 10:
                        break
            # CLOCK_MONOTONIC is system-wide: the parent compares it with its own start.
            end = time.perf_counter()
            out = f"{len(lat)} {errs} {end:.6f} " + ",".join(f"{x:.6f}" for x in lat) + f" {first}\n"
            with os.fdopen(res_w, "w") as w:
                w.write(out)
            os._exit(0)
        os.close(res_w)
        kids.append((pid, res_r))
    os.close(go_r)
    time.sleep(0.2)  # every client is waiting on the pipe
    t0 = time.perf_counter()
    os.write(go_w, b"g" * conc)
    ok, errs, lat, first, t_end = 0, 0, [], "", t0
    for pid, res_r in kids:
        with os.fdopen(res_r) as r:
            parts = r.read().rstrip("\n").split(" ", 4)
        os.waitpid(pid, 0)
        if len(parts) < 4:
            errs += 1
            first = first or "a client died without a result"
            continue
        ok += int(parts[0])
        errs += int(parts[1])
        t_end = max(t_end, float(parts[2]))
        if parts[3]:
            lat += [float(x) for x in parts[3].split(",")]
        if len(parts) > 4 and parts[4] and not first:
            first = parts[4]
    secs = t_end - t0
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0.0
    print(f"sessions={ok}")
    print(f"errors={errs}")
    print(f"seconds={secs:.3f}")
    print(f"rate={ok / secs if secs > 0 else 0:.1f}")
    print(f"p50_ms={pct(0.5):.2f}")
    print(f"p99_ms={pct(0.99):.2f}")
    print(f"max_ms={(lat[-1] * 1000 if lat else 0):.2f}")
    if first:
        print(f"first_error={first}")
    return 0 if errs == 0 and ok == n else 1

def proc_tree(root):
    """(comm, VmHWM KiB) of root and every descendant."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                parent[int(d)] = int(st[st.rindex(")") + 2 :].split()[1])
            except (OSError, ValueError):
                pass
    tree, todo = [], [root]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += [c for c, pp in parent.items() if pp == p]
    out = []
    for p in tree:
        try:
            with open(f"/proc/{p}/status") as f:
                kv = dict(l.split(":", 1) for l in f if ":" in l)
            out.append((kv["Name"].strip(), int(kv.get("VmHWM", "0 kB").split()[0])))
        except (OSError, KeyError, ValueError):
            pass
    return out

def print_rss(procs):
    big = max(procs, key=lambda p: p[1]) if procs else ("-", 0)
    print(f"procs={len(procs)}")
    print(f"hwm_max_kib={big[1]}")
    print(f"hwm_max_name={big[0]}")
    print(f"hwm_sum_kib={sum(p[1] for p in procs)}")

def rss(argv):
    print_rss(proc_tree(int(argv[0])))
    return 0

def retr(argv):
    port, user, password, want, depth, pid = int(argv[0]), argv[1].encode(), argv[2].encode(), int(argv[3]), int(argv[4]), int(argv[5])
    t0 = time.perf_counter()
    c = Conn(port)
    if depth > 1:
        c.ok("greeting")
        c.s.sendall(b"CAPA\r\n")
        c.ok("CAPA")
        caps = set()
        while True:
            l = c.line()
            if l == b".":
                break
            caps.add(l.split(b" ")[0].upper())
        if b"PIPELINING" not in caps:
            raise SystemExit("RETR_DEPTH > 1 but the server does not announce PIPELINING")
        c.s.sendall(b"USER " + user + b"\r\n")
        c.ok("USER")
        c.cmd(b"PASS " + password + b"\r\n")
        parts = c.cmd(b"STAT\r\n").split()
        count, octets = int(parts[1]), int(parts[2])
    else:
        count, octets = login(c, user, password)
    t_login = time.perf_counter()
    c.s.sendall(b"LIST\r\n")
    c.ok("LIST")
    sizes = []
    while True:
        l = c.line()
        if l == b".":
            break
        num, size = l.split()
        if int(num) != len(sizes) + 1:
            raise SystemExit(f"LIST: line {l!r} out of order")
        sizes.append(int(size))
    t_list = time.perf_counter()
    if count != want or len(sizes) != count or sum(sizes) != octets:
        raise SystemExit(f"STAT {count} {octets} but LIST has {len(sizes)} messages, {sum(sizes)} octets; expected {want}")
    sent = got = total = 0
    bad = []
    while got < count:
        batch = []
        while sent < count and sent - got < depth:
            sent += 1
            batch.append(b"RETR %d\r\n" % sent)
        if batch:
            c.s.sendall(b"".join(batch))
        c.compact()
        got += 1
        c.ok(f"RETR {got}")
        size = c.multi()
        if size != sizes[got - 1] and len(bad) < 5:
            bad.append(f"{got}: {size} octets, LIST said {sizes[got - 1]}")
        total += size
    t_retr = time.perf_counter()
    procs = proc_tree(pid)
    t_q = time.perf_counter()
    c.cmd(b"QUIT\r\n")
    c.close()
    t_end = time.perf_counter()
    secs = (t_retr - t0) + (t_end - t_q)
    print(f"messages={got}")
    print(f"stat_octets={octets}")
    print(f"retr_octets={total}")
    print(f"seconds={secs:.3f}")
    print(f"login_seconds={t_login - t0:.3f}")
    print(f"list_seconds={t_list - t_login:.3f}")
    print(f"retr_seconds={t_retr - t_list:.3f}")
    print(f"quit_seconds={t_end - t_q:.3f}")
    print(f"mb_per_s={total / secs / 1e6:.2f}")
    print_rss(procs)
    for b in bad:
        print(f"error=size mismatch: message {b}")
    if bad or total != octets or got != want:
        print(f"error=RETR total {total} octets in {got} messages; STAT said {octets} in {count}")
        return 1
    return 0

def dele(argv):
    port, user, password, want = int(argv[0]), argv[1].encode(), argv[2].encode(), int(argv[3])
    t0 = time.perf_counter()
    c = Conn(port)
    count, octets = login(c, user, password)
    if count != want:
        raise PopError(f"STAT: {count} messages, expected {want}")
    t_login = time.perf_counter()
    gone = 0
    for n in range(1, count + 1, 2):
        c.cmd(b"DELE %d\r\n" % n)
        gone += 1
    t_dele = time.perf_counter()
    c.cmd(b"QUIT\r\n")
    c.close()
    t_end = time.perf_counter()
    c = Conn(port)
    left, _ = login(c, user, password)
    c.cmd(b"QUIT\r\n")
    c.close()
    print(f"deleted={gone}")
    print(f"left={left}")
    print(f"seconds={t_end - t0:.3f}")
    print(f"login_seconds={t_login - t0:.3f}")
    print(f"dele_seconds={t_dele - t_login:.3f}")
    print(f"quit_seconds={t_end - t_dele:.3f}")
    if left != count - gone:
        print(f"error=after QUIT {left} messages, expected {count - gone}")
        return 1
    return 0

if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    try:
        sys.exit({"logins": logins, "rss": rss, "retr": retr, "dele": dele}[mode](args))
    except (OSError, PopError, ValueError) as e:
        print(f"error={type(e).__name__}: {e}")
        sys.exit(1)
EOF

# client OUT ARGS...: run the client in the background (so cleanup can stop it), bounded.
client() {
    local out=$1 rc=0
    shift
    sync # earlier runs' writes (indexes, mbox rewrites) are not flushed during this one
    timeout "$RUN_TIMEOUT" python3 "$CLIENT" "$@" >"$out" 2>&1 &
    CLIENT_PID=$!
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID=''
    return "$rc"
}
val() { sed -n "s/^$2=//p" "$1" | head -1; }

# ---------------------------------------------------------------------------------------------
# mailtool serve: POP3 on a free port, users in the users map, mboxes under /var/mail
# ---------------------------------------------------------------------------------------------
start_mailtool() {
    local dir=$WORK/mailtool port log
    port=$(free_port)
    log=$dir/serve.log
    mkdir -p "$dir/etc/mail" "$dir/var/mail"
    cat >"$dir/etc/mail/mailtool.toml" <<EOF
hostname = "bench.example"
user = "nobody"
group = "nogroup"
[smtp]
listen = ["127.0.0.1:0"]
submission = []
smtps = []
[pop3]
listen = ["127.0.0.1:$port"]
allow_plaintext_auth = "always"
$MAILTOOL_POP3_EXTRA
[paths]
mailbox_format = "mbox"
[dns]
servers = []
EOF
    for u in "${ALL_USERS[@]}"; do echo "$u:$HASH"; done >"$WORK/shadow"
    "$MAILTOOL" --root "$dir" passwd --import "$WORK/shadow" >"$dir/passwd.log" 2>&1 \
        || die "mailtool passwd --import failed: $(cat "$dir/passwd.log")"
    copy_mbox "$dir/var/mail"
    chmod 1777 "$dir/var/mail"
    # /etc/mail stays root's: serve prepares the popip map for its user before dropping root.
    chmod 755 "$dir" "$dir/etc" "$dir/var"
    "$MAILTOOL" --root "$dir" serve </dev/null >/dev/null 2>"$log" &
    PID[mailtool]=$!
    local deadline=$((SECONDS + 15))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if grep -q "^mailtool: listening for POP3 on 127\.0\.0\.1:$port\$" "$log" || greets "$port"; then
            PORT[mailtool]=$port
            return 0
        fi
        alive "${PID[mailtool]}" || die "mailtool serve exited before listening for POP3; its log: $(tail -n 5 "$log")"
        sleep 0.1
    done
    die "mailtool serve runs but never listened for POP3 on 127.0.0.1:$port within 15 s" \
        "(is the POP3 server in this build of serve?); its log: $(tail -n 5 "$log")"
}

# ---------------------------------------------------------------------------------------------
# Dovecot: a private instance per variant, as in tests/common/dovecot.rs (no chroot, base_dir
# under the work dir, passwd-file user, login and mail processes as nobody), mbox INBOX
# ---------------------------------------------------------------------------------------------
start_dovecot() {
    local name=$1 dir=$WORK/$1 port log u mode=''
    port=$(free_port)
    log=$dir/dovecot.log
    mkdir -p "$dir/run" "$dir/state"
    copy_mbox "$dir/mail"
    : >"$dir/passwd"
    for u in "${ALL_USERS[@]}"; do
        mkdir -p "$dir/home/$u/mail"
        echo "$u:{SHA512-CRYPT}$HASH:$(id -u nobody):$(id -g nobody)::$dir/home/$u" >>"$dir/passwd"
    done
    chown -R nobody:nogroup "$dir/home"
    chmod 755 "$dir" "$dir/home"
    local cache="# auth_cache_size: the default, 0 (no cache)"
    if [ "$name" = dovecot-perf ]; then
        # doc.dovecot.org, "Login processes": high-performance mode, one login process per
        # CPU, each serving many connections. And an auth cache, as mailtool always has one
        # (src/pop3/auth.rs: verified logins are trusted for an hour without the hash).
        mode="  service_count = 0
  process_min_avail = $(nproc)"
        cache="auth_cache_size = 10M"
    fi
    cat >"$dir/dovecot.conf" <<EOF
base_dir = $dir/run
state_dir = $dir/state
log_path = $log
listen = 127.0.0.1
protocols = pop3
default_internal_user = nobody
default_internal_group = nogroup
default_login_user = nobody
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
$cache
mail_location = mbox:~/mail:INBOX=$dir/mail/%u
passdb {
  driver = passwd-file
  args = $dir/passwd
}
userdb {
  driver = passwd-file
  args = $dir/passwd
}
service anvil {
  chroot =
}
service pop3-login {
  chroot =
$mode
  inet_listener pop3 {
    port = $port
  }
  inet_listener pop3s {
    port = 0
  }
}
$DOVECOT_EXTRA
EOF
    dovecot -F -c "$dir/dovecot.conf" </dev/null >"$dir/stdout.log" 2>&1 &
    PID[$name]=$!
    local deadline=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if greets "$port"; then
            PORT[$name]=$port
            return 0
        fi
        alive "${PID[$name]}" || die "$name exited at start; $(tail -n 5 "$dir/stdout.log" "$log" 2>/dev/null)"
        sleep 0.1
    done
    die "$name did not greet on 127.0.0.1:$port within 30 s; $(tail -n 5 "$log" 2>/dev/null)"
}

label() {
    case $1 in
        mailtool) echo "mailtool serve" ;;
        dovecot) echo "Dovecot pop3, defaults (a login process per connection)" ;;
        dovecot-perf) echo "Dovecot pop3, tuned (login high-performance mode, auth cache)" ;;
    esac
}

# mailtool first: if its POP3 server is missing, fail before spending minutes on Dovecot.
for s in $SERVERS; do
    case $s in
        mailtool) start_mailtool ;;
        *) start_dovecot "$s" ;;
    esac
    note "$(label "$s") on 127.0.0.1:${PORT[$s]} (pid ${PID[$s]})"
done

# ---------------------------------------------------------------------------------------------
# Measurements. Servers alternate within each repeat, so they share the background load.
# ---------------------------------------------------------------------------------------------
declare -A FIRST_S=() SEQ=() SEQ_P50=() CONCR=() CONC_P50=() CONC_P99=() RETR_S=() RETR_MB=() RETR_OUT=()
# hwm_after PHASE: the largest VmHWM among each server's processes now, for the report.
declare -A HWM_AFTER=()
hwm_after() {
    local s out=$WORK/rss.out
    for s in $SERVERS; do
        python3 "$CLIENT" rss "${PID[$s]}" >"$out" 2>&1 || die "reading $s's memory: $(cat "$out")"
        HWM_AFTER[$s]+="${HWM_AFTER[$s]:+, }$1 $(awk -v k="$(val "$out" hwm_max_kib)" 'BEGIN { printf "%.1f", k / 1024 }')"
    done
}
hwm_after start

# Warm-up: one session per user and server. The first for bench1 is timed: Dovecot builds its
# index of the mbox there; the others are then built too, so the measured logins all find one.
note "first login of each user (Dovecot indexes the mbox)"
for s in $SERVERS; do
    for u in "${ALL_USERS[@]}"; do
        out=$WORK/first-$s-$u.out
        client "$out" logins "${PORT[$s]}" "$PASSWORD" "$MESSAGES" 1 1 "$u" \
            || die "first login as $u to $s failed: $(cat "$out")"
        [ -n "${FIRST_S[$s]:-}" ] || FIRST_S[$s]=$(val "$out" seconds)
    done
    note "  $s: first login + STAT ${FIRST_S[$s]}s"
done
hwm_after "first logins"

better() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(b == "" || a > b) }'; }
for phase in seq conc; do
    if [ "$phase" = seq ]; then n_conc=1; else n_conc=$CONC; fi
    note "logins: $LOGINS sessions, $n_conc client(s) at a time"
    for ((r = 1; r <= REPEATS; r++)); do
        for s in $SERVERS; do
            out=$WORK/logins-$phase-$s-$r.out
            client "$out" logins "${PORT[$s]}" "$PASSWORD" "$MESSAGES" "$LOGINS" "$n_conc" "${USERS[@]}" \
                || die "logins ($phase) against $s failed: $(cat "$out")"
            rate=$(val "$out" rate)
            note "  $s: $(val "$out" sessions) sessions in $(val "$out" seconds)s, $rate/s (p50 $(val "$out" p50_ms) ms, p99 $(val "$out" p99_ms) ms)"
            if [ "$phase" = seq ]; then
                if better "$rate" "${SEQ[$s]:-}"; then SEQ[$s]=$rate SEQ_P50[$s]=$(val "$out" p50_ms); fi
            else
                if better "$rate" "${CONCR[$s]:-}"; then
                    CONCR[$s]=$rate CONC_P50[$s]=$(val "$out" p50_ms) CONC_P99[$s]=$(val "$out" p99_ms)
                fi
            fi
        done
    done
    hwm_after "$phase logins"
done

note "RETR of all $MESSAGES messages in one session (RETR_DEPTH $RETR_DEPTH)"
for ((r = 1; r <= REPEATS; r++)); do
    for s in $SERVERS; do
        out=$WORK/retr-$s-$r.out
        client "$out" retr "${PORT[$s]}" "bench$r" "$PASSWORD" "$MESSAGES" "$RETR_DEPTH" "${PID[$s]}" \
            || die "RETR-all against $s failed: $(cat "$out")"
        secs=$(val "$out" seconds)
        note "  $s: $(val "$out" messages) messages, $(val "$out" retr_octets) octets in ${secs}s ($(val "$out" mb_per_s) MB/s; login $(val "$out" login_seconds)s, LIST $(val "$out" list_seconds)s, RETRs $(val "$out" retr_seconds)s, QUIT $(val "$out" quit_seconds)s)"
        if [ -z "${RETR_S[$s]:-}" ] || awk -v a="$secs" -v b="${RETR_S[$s]}" 'BEGIN { exit !(a < b) }'; then
            RETR_S[$s]=$secs RETR_MB[$s]=$(val "$out" mb_per_s) RETR_OUT[$s]=$out
        fi
    done
done
hwm_after RETR-all

note "DELE of every other message, then QUIT (the UPDATE removes them)"
declare -A DELE_S=() DELE_QUIT=() DELE_N=()
for s in $SERVERS; do
    out=$WORK/dele-$s.out
    client "$out" dele "${PORT[$s]}" benchdel "$PASSWORD" "$MESSAGES" \
        || die "DELE + QUIT against $s failed: $(cat "$out")"
    DELE_S[$s]=$(val "$out" seconds) DELE_QUIT[$s]=$(val "$out" quit_seconds) DELE_N[$s]=$(val "$out" deleted)
    note "  $s: $(val "$out" deleted) DELEs in $(val "$out" dele_seconds)s, QUIT (UPDATE) $(val "$out" quit_seconds)s; $(val "$out" left) messages left"
done
# Peak RSS from the last run (VmHWM only grows), read before its QUIT.
declare -A HWM_MAX=() HWM_SUM=() HWM_PROCS=() HWM_NAME=()
for s in $SERVERS; do
    out=$WORK/retr-$s-$REPEATS.out
    HWM_MAX[$s]=$(val "$out" hwm_max_kib) HWM_SUM[$s]=$(val "$out" hwm_sum_kib)
    HWM_PROCS[$s]=$(val "$out" procs) HWM_NAME[$s]=$(val "$out" hwm_max_name)
done
for s in $SERVERS; do
    alive "${PID[$s]}" || die "$s is no longer running after the measurements"
done
declare -A ERRLINES=() MBOX_AFTER=()
for s in $SERVERS; do
    case $s in
        mailtool) f=$WORK/mailtool/serve.log d=$WORK/mailtool/var/mail ;;
        *) f=$WORK/$s/dovecot.log d=$WORK/$s/mail ;;
    esac
    ERRLINES[$s]=$(grep -ciE 'error|panic|fatal' "$f" 2>/dev/null || true)
    # Whether the server rewrote the files (Dovecot adds X-UID/Status headers): the RETR-all
    # users' and, if there is one, a user who only logged in.
    MBOX_AFTER[$s]=''
    for ((i = 1; i <= CONC; i++)); do
        if [ "$i" -le "$REPEATS" ] || [ "$i" -eq "$CONC" ]; then
            what=$([ "$i" -le "$REPEATS" ] && echo "RETR-all" || echo "logins only")
            MBOX_AFTER[$s]+="${MBOX_AFTER[$s]:+, }bench$i ($what) $(stat -c %s "$d/bench$i" 2>/dev/null || echo '?')"
        fi
    done
done

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
mib() { awk -v k="$1" 'BEGIN { if (k == "") print "–"; else printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "–"; else printf "%.2f", a / b }'; }
mkdir -p "$RESULTS_DIR"
[ -e "$RESULTS_DIR/.gitignore" ] || printf '*\n' >"$RESULTS_DIR/.gitignore"
{
    echo "# POP3: mailtool serve vs Dovecot"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -srm), files on $FSTYPE;" \
        "load average $load at the start, $(cut -d' ' -f1 /proc/loadavg) at the end; best of $REPEATS runs."
    [ -z "$MT_VERSION" ] || echo "mailtool $MT_VERSION."
    [ -z "$DV_VERSION" ] || echo "Dovecot $DV_VERSION."
    echo "Mailbox: one mbox of $MESSAGES messages (2–4 KB, $MBOX_BYTES bytes, md5 $MBOX_MD5…," \
        "$(mstat from_quoted) body lines stored as \">From \", $(mstat dot_lines) beginning with \".\")," \
        "a copy per server and user (bench1–bench$CONC)."
    echo "Passwords: the same sha512-crypt hash (\`\$6\$\`, 5000 rounds) for both: Dovecot's passwd-file" \
        "\`{SHA512-CRYPT}\$6\$…\`, mailtool's users map (\`mailtool passwd --import\`)." \
        "mailtool keeps verified logins in memory for an hour (a hit skips the hash), always." \
        "Dovecot's \`auth_cache_size\` is 0 by default (no cache: every login runs the hash); the tuned Dovecot sets" \
        "\`auth_cache_size = 10M\`. Dovecot's \`auth_failure_delay\` and anvil's auth penalty only follow failed" \
        "logins, which this run has none of."
    echo "Logins: complete sessions (greeting, USER, PASS, STAT, QUIT) over plaintext TCP on loopback," \
        "one command at a time; $LOGINS sequential as bench1, then $LOGINS over $CONC parallel clients" \
        "(client k as bench<k>). RETR-all: one session (USER, PASS, STAT, LIST, RETR 1..$MESSAGES" \
        "$([ "$RETR_DEPTH" -eq 1 ] && echo "one at a time" || echo "with $RETR_DEPTH in flight"), QUIT)," \
        "every size checked against LIST and the total against STAT; run r reads bench<r>'s unread mailbox." \
        "Both servers log every session to a file."
    echo "Peak RSS: VmHWM of the server's processes just before the last RETR-all's QUIT" \
        "(mailtool: its one process; Dovecot: the largest process, and the sum over master, auth, log, config," \
        "anvil, stats, login and pop3 processes, where a shared page counts in every process that maps it)."
    echo
    echo "| server | first login s | logins/s seq | p50 ms | logins/s conc ($CONC) | p50 ms | p99 ms | RETR-all s | MB/s | peak RSS MiB (largest) | peak RSS MiB (sum, processes) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for s in $SERVERS; do
        echo "| $(label "$s") | ${FIRST_S[$s]} | ${SEQ[$s]} | ${SEQ_P50[$s]} | ${CONCR[$s]} | ${CONC_P50[$s]} | ${CONC_P99[$s]} | ${RETR_S[$s]} | ${RETR_MB[$s]} | $(mib "${HWM_MAX[$s]}") | $(mib "${HWM_SUM[$s]}") (${HWM_PROCS[$s]}) |"
    done
    if has_server mailtool && has_dovecot; then
        echo
        echo "mailtool ÷ Dovecot (>1: mailtool is faster; for RSS, >1: mailtool uses more):"
        echo
        echo "| against | logins/s seq | logins/s conc | RETR-all speed | peak RSS (largest) | peak RSS (sum) |"
        echo "|---|---:|---:|---:|---:|---:|"
        for s in dovecot dovecot-perf; do
            has_server "$s" || continue
            echo "| $(label "$s") | $(ratio "${SEQ[mailtool]}" "${SEQ[$s]}") | $(ratio "${CONCR[mailtool]}" "${CONCR[$s]}")" \
                "| $(ratio "${RETR_S[$s]}" "${RETR_S[mailtool]}") | $(ratio "${HWM_MAX[mailtool]}" "${HWM_MAX[$s]}")" \
                "| $(ratio "${HWM_SUM[mailtool]}" "${HWM_SUM[$s]}") |"
        done
    fi
    echo
    echo "DELE of every other message ($MESSAGES in the mailbox), then QUIT, whose UPDATE removes them;" \
        "a new session's STAT then shows the rest. mailtool writes the kept messages to a new file," \
        "fsyncs it and renames it over the mbox; Dovecot expunges in place."
    echo
    echo "| server | DELEs | session s (login, DELEs, QUIT) | QUIT (UPDATE) s |"
    echo "|---|---:|---:|---:|"
    for s in $SERVERS; do
        echo "| $(label "$s") | ${DELE_N[$s]} | ${DELE_S[$s]} | ${DELE_QUIT[$s]} |"
    done
    echo
    echo "RETR-all details (the fastest run):"
    echo
    for s in $SERVERS; do
        out=${RETR_OUT[$s]}
        echo "- $(label "$s"): STAT $(val "$out" messages) messages, $(val "$out" stat_octets) octets" \
            "(the generator's count with \">From\" kept and CRLF line ends: $(mstat expected_octets));" \
            "login $(val "$out" login_seconds)s, LIST $(val "$out" list_seconds)s," \
            "RETRs $(val "$out" retr_seconds)s, QUIT $(val "$out" quit_seconds)s;" \
            "largest process ${HWM_NAME[$s]}; log lines with error/panic/fatal: ${ERRLINES[$s]};" \
            "mbox files afterwards: ${MBOX_AFTER[$s]} bytes (generated: $MBOX_BYTES);" \
            "largest process's VmHWM in MiB after each phase: ${HWM_AFTER[$s]}."
    done
} | tee "$RESULTS"
note "written to ${RESULTS#"$ROOT"/}"
