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
