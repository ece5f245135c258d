#!/usr/bin/env bash
# The test command for ovn-route (as root; the lab tests use network namespaces and
# the kernel tier boots a VM):
#
#   sudo scripts/test.sh [--no-install] [--no-lint] [--no-host] [--no-kernel]
#
# Steps, all run even when an earlier one fails (the exit status reports any failure):
#   install      scripts/install-deps.sh                      (skipped with --no-install)
#   fmt          cargo fmt --all -- --check                    (skipped with --no-lint)
#   clippy       cargo clippy --workspace --all-targets -- -D warnings   (--no-lint)
#   host-tests   cargo nextest run --workspace --no-fail-fast  (skipped with --no-host)
#   doc-tests    cargo test --workspace --doc                  (--no-host; nextest runs no doctests)
#   kernel-tier  scripts/kernel-tier.sh: VRF/dummy tests in a VM (skipped with --no-kernel)
# A failing install stops everything. Logs: target/test-logs/<step>.log.
set -uo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)

INSTALL=1 LINT=1 HOST=1 KERNEL_TIER=1
for a in "$@"; do
    case "$a" in
    --no-install) INSTALL=0 ;;
    --no-lint) LINT=0 ;;
    --no-host) HOST=0 ;;
    --no-kernel) KERNEL_TIER=0 ;;
    -h | --help)
        sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "test.sh: unknown argument $a (see --help)" >&2
        exit 2
        ;;
    esac
done

log() { printf 'test.sh: %s\n' "$*"; }
if [ "$(id -u)" -ne 0 ]; then
    log "ERROR: must run as root: sudo scripts/test.sh" >&2
    exit 1
fi

START=$(date +%s)
# Disk is what a CI build runs out of first: say how much there is.
log "disk free: $(df -h --output=avail "$REPO" | tail -n 1 | tr -d ' ')"
if [ "$INSTALL" -eq 1 ]; then
    log "=== install: scripts/install-deps.sh"
    if ! "$SCRIPT_DIR/install-deps.sh" </dev/null; then
        log "FAILED: scripts/install-deps.sh; nothing else was run"
        exit 1
    fi
fi

# shellcheck source=scripts/env.sh
. "$SCRIPT_DIR/env.sh"
cd "$REPO" || exit 1
if ! command -v cargo >/dev/null; then
    log "ERROR: cargo not found (run scripts/install-deps.sh)" >&2
    exit 1
fi
# Output goes through tee, so the tools see no terminal: keep colours when there is one.
FMT_COLOR=never
if [ -t 1 ]; then
    export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-always}
    FMT_COLOR=always
fi
# No incremental compilation: a one-off test build gains nothing from it and its cache
# doubles the target directory on disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
LOGS=${CARGO_TARGET_DIR:-$REPO/target}/test-logs
mkdir -p "$LOGS"

STEPS=()   # "name status seconds"
FAILED_STEPS=()
run_step() { # run_step NAME TIMEOUT_SECONDS CMD...
    local name=$1 limit=$2 t0 rc
    shift 2
    log "=== $name: $*"
    t0=$(date +%s)
    timeout --kill-after=30 "$limit" "$@" </dev/null 2>&1 | tee "$LOGS/$name.log"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 0 ]; then
        STEPS+=("$name ok $(($(date +%s) - t0))")
    else
        [ "$rc" -eq 124 ] && log "$name: timed out after $limit s"
        STEPS+=("$name FAILED(exit-$rc) $(($(date +%s) - t0))")
        FAILED_STEPS+=("$name")
    fi
    log "--- $name: exit $rc after $(($(date +%s) - t0)) s"
}

if [ "$LINT" -eq 1 ]; then
    run_step fmt 300 cargo fmt --all -- --check --color "$FMT_COLOR"
    run_step clippy 1200 cargo clippy --workspace --all-targets -- -D warnings
fi
if [ "$HOST" -eq 1 ]; then
    # --no-tests=warn: a workspace with no tests yet is reported, not a failure.
    run_step host-tests 1500 cargo nextest run --workspace --no-fail-fast --no-tests=warn
    run_step doc-tests 900 cargo test --workspace --doc
fi
if [ "$KERNEL_TIER" -eq 1 ]; then
    run_step kernel-tier 4200 "$SCRIPT_DIR/kernel-tier.sh"
fi

# --- recap: every step, then the runners' own summary lines, then one total line ---
strip() { sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1b[()][A-Za-z0-9]//g' "$@"; }
PASSED=0 FAILED=0
echo
log "==================== recap ($(($(date +%s) - START)) s) ===================="
log "target dir: $(du -sh "${CARGO_TARGET_DIR:-$REPO/target}" 2>/dev/null | cut -f1), disk free: $(df -h --output=avail "$REPO" | tail -n 1 | tr -d ' ')"
for s in "${STEPS[@]}"; do
    read -r name st secs <<<"$s"
    printf 'test.sh:   %-12s %-18s %5s s\n' "$name" "$st" "$secs"
done
if [ -s "$LOGS/host-tests.log" ]; then
    summary=$(strip "$LOGS/host-tests.log" | grep -E '^ *Summary \[' | tail -n 1)
    if [ -n "$summary" ]; then
        echo "host tier (nextest):"
        echo "$summary"
        p=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '^[0-9]+' || echo 0)
        f=$(grep -oE '[0-9]+ failed' <<<"$summary" | grep -oE '^[0-9]+' || echo 0)
        PASSED=$((PASSED + p)) FAILED=$((FAILED + f))
    else
        echo "host tier (nextest): no Summary line: the tests did not run (build failed?), see $LOGS/host-tests.log"
    fi
fi
if [ -s "$LOGS/doc-tests.log" ]; then
    read -r p f < <(strip "$LOGS/doc-tests.log" | awk '/^test result:/ {
        for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
        END { print p + 0, f + 0 }')
    echo "doc tests: test result: $p passed; $f failed"
    PASSED=$((PASSED + p)) FAILED=$((FAILED + f))
fi
if [ -s "$LOGS/kernel-tier.log" ]; then
    line=$(strip "$LOGS/kernel-tier.log" | grep -E '^kernel-tier: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ -n "$line" ]; then
        strip "$LOGS/kernel-tier.log" | grep -E '^kernel-tier: (self-test|rust kernel-tier tests|0 rust)' || true
        echo "$line"
        p=$(sed -E 's/^kernel-tier: ([0-9]+) passed, ([0-9]+) failed$/\1/' <<<"$line")
        f=$(sed -E 's/^kernel-tier: ([0-9]+) passed, ([0-9]+) failed$/\2/' <<<"$line")
        PASSED=$((PASSED + p)) FAILED=$((FAILED + f))
    fi
fi
if [ "${#FAILED_STEPS[@]}" -eq 0 ]; then
    log "OK: all steps passed"
    echo "total: $PASSED passed, $FAILED failed"
    exit 0
fi
log "FAILED steps: ${FAILED_STEPS[*]} (logs in $LOGS)"
echo "total: $PASSED passed, $FAILED failed"
exit 1
