#!/usr/bin/env bash
# Kernel tier: runs the tests that need kernel features this machine's kernel lacks
# (VRF and dummy devices) inside a stock Debian kernel booted with virtme-ng under
# QEMU (software emulation), sharing the host's root filesystem.
# See shared/notes/kernel-vm.md. Set-up: scripts/install-deps.sh.
#
#   scripts/kernel-tier.sh [--selftest-only] [FILTER]     (as root)
#
# 1. Builds the workspace's test executables on the host (cargo test --no-run) and
#    lists, in each, the #[ignore]d tests whose name starts with `kernel_tier_`
#    (convention: #[ignore = "kernel tier: needs vrf/dummy, run by scripts/kernel-tier.sh"]),
#    optionally only those whose full name contains FILTER.
# 2. Boots the kernel once; inside: modprobe vrf dummy 8021q vxlan bridge, runs
#    scripts/kernel-tier-selftest.sh, then each test executable with
#    `--ignored --exact <its kernel_tier_ tests>` (prebuilt: nothing compiles in the VM).
# 3. Prints what ran and how many passed, and exits non-zero if anything failed.
#
# Results (logs, exit codes) go to $KERNEL_TIER_RESULTS, default <target dir>/kernel-tier.
# Environment knobs:
#   KERNEL                  kernel image (default /opt/ovnr-kernel/vmlinuz, from install-deps.sh)
#   KERNEL_TIER_WORKSPACE   cargo workspace to test (default: this repository)
#   KERNEL_TIER_MEMORY      guest memory (default 2G)
#   KERNEL_TIER_TIMEOUT     whole VM run, seconds (default 3600)
#   KERNEL_TIER_TEST_TIMEOUT  one test executable, seconds (default 1800)
#   KERNEL_TIER_TEST_THREADS  libtest --test-threads inside the VM (default 1)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
REPO=$(cd "$SCRIPT_DIR/.." && pwd)

now() { date +%s.%N; }
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ----------------------------------------------------------------------------------
# Inside the VM: `kernel-tier.sh --in-guest RESULTS_DIR`
# Everything goes to files in RESULTS_DIR (the only directory whose writes reach the
# host); the host prints guest.log as it grows.
# ----------------------------------------------------------------------------------
guest_main() {
    local R=$1
    set +e
    exec >>"$R/guest.log" 2>&1
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    export RUST_BACKTRACE=1
    # shellcheck source=/dev/null
    . "$R/guest.conf"
    cut -d' ' -f1 /proc/uptime >"$R/boot.seconds"
    echo "guest: kernel $(uname -r), script started $(cat "$R/boot.seconds") s after boot"

    local m
    for m in vrf dummy 8021q vxlan bridge; do
        modprobe "$m" || echo "guest: modprobe $m FAILED"
    done

    local t0 rc
    echo "guest: === self-test: $SELFTEST"
    t0=$(now)
    bash "$SELFTEST" 2>&1 | tee "$R/selftest.log"
    rc=${PIPESTATUS[0]}
    echo "$rc" >"$R/selftest.rc"
    secs_since "$t0" >"$R/selftest.seconds"

    local n=0 dir exe names
    while IFS=$'\t' read -r dir exe names; do
        [ -n "$exe" ] || continue
        n=$((n + 1))
        echo "guest: === $exe --ignored --exact $names"
        t0=$(now)
        # shellcheck disable=SC2086 # names: space-separated test names, none has a space
        (cd "$dir" && CARGO_MANIFEST_DIR="$dir" timeout --kill-after=10 "$TEST_TIMEOUT" \
            "$exe" --ignored --exact --test-threads="$TEST_THREADS" $names) 2>&1 | tee "$R/rust-$n.log"
        rc=${PIPESTATUS[0]}
        echo "$rc" >"$R/rust-$n.rc"
        echo "guest: exit $rc after $(secs_since "$t0") s"
    done <"$R/plan.tsv"

    echo "guest: done"
    echo finished >"$R/guest.done"
}

if [ "${1:-}" = "--in-guest" ]; then
    guest_main "$2"
    exit 0
fi

# ----------------------------------------------------------------------------------
# On the host
# ----------------------------------------------------------------------------------
log() { printf 'kernel-tier: %s\n' "$*"; }
die() { printf 'kernel-tier: ERROR: %s\n' "$*" >&2; exit 1; }

SELFTEST_ONLY=0
FILTER=
while [ $# -gt 0 ]; do
    case "$1" in
    --selftest-only) SELFTEST_ONLY=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) FILTER=$1 ;;
    esac
    shift
done

[ "$(id -u)" -eq 0 ] || die "must run as root (try: sudo $0)"
# shellcheck source=scripts/env.sh
. "$SCRIPT_DIR/env.sh"
export PATH="/opt/vng/bin:$PATH"

KERNEL=${KERNEL:-/opt/ovnr-kernel/vmlinuz}
WS=$(cd "${KERNEL_TIER_WORKSPACE:-$REPO}" && pwd)
MEMORY=${KERNEL_TIER_MEMORY:-2G}
VM_TIMEOUT=${KERNEL_TIER_TIMEOUT:-3600}
[ -s "$KERNEL" ] || die "no kernel image at $KERNEL: run scripts/install-deps.sh"
command -v vng >/dev/null || die "vng (virtme-ng) not found in /opt/vng/bin: run scripts/install-deps.sh"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found: run scripts/install-deps.sh"
KVER=$(cat "$(dirname "$KERNEL")/version" 2>/dev/null || echo "?")

cd "$WS"
TARGET_DIR=${CARGO_TARGET_DIR:-$WS/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$WS/$TARGET_DIR ;; esac
R=$(mkdir -p "${KERNEL_TIER_RESULTS:-$TARGET_DIR/kernel-tier}" && cd "${KERNEL_TIER_RESULTS:-$TARGET_DIR/kernel-tier}" && pwd)
case "$R" in *[[:space:],]*) die "results dir must not contain spaces or commas: $R" ;; esac
find "$R" -mindepth 1 -delete
: >"$R/plan.tsv"

# --- 1. build the test executables on the host and pick the kernel_tier_ tests ---
BUILD_OK=1
NTESTS=0
if [ "$SELFTEST_ONLY" -eq 0 ]; then
    command -v cargo >/dev/null || die "cargo not found (run scripts/install-deps.sh)"
    log "building test executables: cargo test --workspace --no-run (in $WS)"
    if ! cargo test --workspace --no-run --message-format=json-render-diagnostics >"$R/build.json"; then
        BUILD_OK=0
        log "FAIL: cargo test --workspace --no-run failed; running the self-test only"
    fi
fi
if [ "$BUILD_OK" -eq 1 ] && [ "$SELFTEST_ONLY" -eq 0 ]; then
    # One line per test executable: package dir, executable, target name.
    python3 - "$R/build.json" >"$R/test-executables.tsv" <<'EOF'
import json, os, sys
seen = set()
for line in open(sys.argv[1], encoding="utf-8"):
    if not line.startswith("{"):
        continue
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    if not m.get("profile", {}).get("test"):
        continue
    exe = m["executable"]
    if exe in seen:
        continue
    seen.add(exe)
    print("\t".join([os.path.dirname(m["manifest_path"]), exe, m["target"]["name"]]))
EOF
    kt_names() { # stdin: `--list --format terse` output; stdout: kernel_tier_ test names
        sed -n 's/: test$//p' | awk -F'::' '$NF ~ /^kernel_tier_/' |
            { if [ -n "$FILTER" ]; then grep -F -- "$FILTER" || true; else cat; fi; }
    }
    while IFS=$'\t' read -r dir exe tname; do
        if ! ignored=$(cd "$dir" && timeout 120 "$exe" --list --ignored --format terse 2>"$R/list.err"); then
            log "warning: could not list tests of $exe ($(head -c 300 "$R/list.err")); skipped"
            continue
        fi
        names=$(printf '%s\n' "$ignored" | kt_names | tr '\n' ' ' | sed 's/ *$//')
        # A kernel_tier_ test without #[ignore] would run (and fail) in the host tier.
        all=$( (cd "$dir" && timeout 120 "$exe" --list --format terse 2>/dev/null) | kt_names || true)
        for t in $all; do
            case " $names " in *" $t "*) ;; *) log "warning: $t in $tname is not #[ignore]d: the host tier will run it too" ;; esac
        done
        [ -n "$names" ] || continue
        printf '%s\t%s\t%s\n' "$dir" "$exe" "$names" >>"$R/plan.tsv"
        count=$(wc -w <<<"$names")
        NTESTS=$((NTESTS + count))
        log "will run $count from $tname ($exe): $names"
    done <"$R/test-executables.tsv"
fi
if [ "$NTESTS" -eq 0 ]; then
    if [ "$SELFTEST_ONLY" -eq 1 ]; then
        log "--selftest-only: no rust tests"
    else
        log "found no kernel_tier_ tests${FILTER:+ matching \"$FILTER\"} in $WS"
    fi
fi

cat >"$R/guest.conf" <<EOF
SELFTEST=$(printf %q "$SCRIPT_DIR/kernel-tier-selftest.sh")
TEST_TIMEOUT=$(printf %q "${KERNEL_TIER_TEST_TIMEOUT:-1800}")
TEST_THREADS=$(printf %q "${KERNEL_TIER_TEST_THREADS:-1}")
EOF

# --- 2. boot the kernel and run everything inside ---
log "booting $KERNEL ($KVER) with vng (software emulation, --disable-kvm), results in $R"
T0=$(now)
# stdin from /dev/null: CI has none, and vng must not wait on a terminal.
timeout --kill-after=30 "$VM_TIMEOUT" \
    vng --run "$KERNEL" --user root --disable-kvm --force-9p --memory "$MEMORY" --rwdir "$R" \
    -- "bash $(printf %q "$SELF") --in-guest $(printf %q "$R")" \
    </dev/null >"$R/vng.log" 2>&1 &
VPID=$!
while [ ! -e "$R/guest.log" ] && kill -0 "$VPID" 2>/dev/null; do sleep 0.5; done
if [ -e "$R/guest.log" ]; then
    tail -n +1 -s 0.5 -f --pid="$VPID" "$R/guest.log" | sed -u 's/^/  vm| /'
fi
VRC=0
wait "$VPID" || VRC=$?
VM_SECS=$(secs_since "$T0")

# --- 3. results ---
FAILED=0
PASSED=0
STATUS=0
echo
log "---------------------------------------------------------------"
if [ ! -e "$R/guest.done" ]; then
    STATUS=1
    if [ "$VRC" -eq 124 ] || [ "$VRC" -eq 137 ]; then
        log "FAIL: the VM did not finish within $VM_TIMEOUT s (KERNEL_TIER_TIMEOUT)"
    else
        log "FAIL: the VM did not finish its run (vng exit $VRC); last lines of $R/vng.log:"
    fi
    tail -n 30 "$R/vng.log" | sed 's/^/  vng| /'
fi
log "VM: kernel $KVER, guest script started $(cat "$R/boot.seconds" 2>/dev/null || echo '?') s after boot, whole VM run $VM_SECS s"

if [ "$(cat "$R/selftest.rc" 2>/dev/null || echo missing)" = 0 ]; then
    PASSED=$((PASSED + 1))
    log "self-test (scripts/kernel-tier-selftest.sh): PASSED in $(cat "$R/selftest.seconds") s"
else
    FAILED=$((FAILED + 1))
    STATUS=1
    log "self-test (scripts/kernel-tier-selftest.sh): FAILED (exit $(cat "$R/selftest.rc" 2>/dev/null || echo 'none: did not run')); log: $R/selftest.log"
fi

RP=0
RF=0
n=0
while IFS=$'\t' read -r dir exe names; do
    [ -n "$exe" ] || continue
    n=$((n + 1))
    want=$(wc -w <<<"$names")
    rc=$(cat "$R/rust-$n.rc" 2>/dev/null || echo missing)
    # libtest: "test result: ok. 2 passed; 0 failed; 0 ignored; ..."
    read -r p f < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
                         END { print p + 0, f + 0 }' "$R/rust-$n.log" 2>/dev/null || echo "0 0")
    if [ "$rc" != 0 ]; then
        STATUS=1
        [ "$((p + f))" -lt "$want" ] && f=$((want - p))
        [ "$f" -gt 0 ] || f=1
        log "FAIL: $exe exited $rc ($p passed, $f failed); log: $R/rust-$n.log"
    fi
    RP=$((RP + p))
    RF=$((RF + f))
done <"$R/plan.tsv"
if [ "$BUILD_OK" -eq 0 ]; then
    STATUS=1
    RF=$((RF + 1))
    log "rust kernel-tier tests: NOT RUN, the test build failed (cargo test --workspace --no-run)"
elif [ "$SELFTEST_ONLY" -eq 1 ]; then
    log "rust kernel-tier tests: skipped (--selftest-only)"
elif [ "$NTESTS" -eq 0 ]; then
    log "0 rust kernel-tier tests"
else
    log "rust kernel-tier tests: $NTESTS selected, $RP passed, $RF failed"
fi
PASSED=$((PASSED + RP))
FAILED=$((FAILED + RF))
log "results and logs: $R"
log "$PASSED passed, $FAILED failed"
exit "$STATUS"
