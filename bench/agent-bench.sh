#!/usr/bin/env bash
# Exposure agent benchmark driver (issue 3): start to complete kernel state, peak RSS, NB change to
# kernel route latency, and `ip -batch` installing the same routes as the reference, in one run.
#
#   bench/agent-bench.sh                          # small + large sets, 3 runs each, 1,000 changes on small
#   bench/agent-bench.sh --sets small --changes 100 --repeat 1     # quick look (about 2 minutes)
#   bench/agent-bench.sh --isolated 200 --large-changes 5 --x6 --stock --out /var/tmp/ovnr-bench/agent.jsonl
#
# Options: --sets "small large" (see below), --repeat N (agent --once runs and ip -batch runs per set,
# default 3), --changes N (NB changes on the small set, one at a time, the next one --gap-ms after the
# previous one's route appeared; default 1000, gap 50 ms), --isolated N (another N changes on the small
# set, each sent once the agent has used no CPU for 0.5 s: the latency of a change that finds the agent
# idle), --large-changes N (the same on the large set, 2 s idle), --x6 (also the 246 MB NB: the agent
# --once on it), --stock (a dry run on the small set generated with OVN 23.03's NB schema as is: what
# is exposed without Logical_Router_Port.status), --out FILE (JSON lines), --wait-idle S (wait up to
# S s for an idle machine), --keep (keep the work directories: agent logs, configs, route dumps).
#
# Sets (crates/bench/src/bin/agent-bench.rs, cached under /var/tmp/ovnr-bench):
#   small: 2,000 routers, 20,000 provider VMs, 10,000 FIPs, 2,000 LBs, 4 chassis: 8,498 IPs on bench-hv1
#   large: the same x3 over 2 chassis: 50,996 IPs on bench-hv1 (NB 192,049 rows, 122 MB)
#   x6:    the same x6 over 4 chassis: 51,000 IPs on bench-hv1 (NB 396,049 rows, 246 MB)
#
# Needs root (namespaces), ip, ovsdb-server, ovsdb-tool, ovs-appctl, ovs-vsctl, ovs-vswitchd, ovs-ofctl
# (Debian openvswitch-switch; ovn-central for the NB schema). No FRR is started: the agent's vtysh calls
# fail (reported as warnings) and routes are installed all the same.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SETS="small large"
REPEAT=3
CHANGES=1000
GAP_MS=50
ISOLATED=0
LARGE_CHANGES=0
X6=0
STOCK=0
OUT=""
WAIT_IDLE=0
KEEP=()

while [ $# -gt 0 ]; do
    case "$1" in
        --sets) SETS=$2; shift 2 ;;
        --repeat) REPEAT=$2; shift 2 ;;
        --changes) CHANGES=$2; shift 2 ;;
        --gap-ms) GAP_MS=$2; shift 2 ;;
        --isolated) ISOLATED=$2; shift 2 ;;
        --large-changes) LARGE_CHANGES=$2; shift 2 ;;
        --x6) X6=1; shift ;;
        --stock) STOCK=1; shift ;;
        --out) OUT=$2; shift 2 ;;
        --wait-idle) WAIT_IDLE=$2; shift 2 ;;
        --keep) KEEP=(--keep); shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
for tool in ip ovsdb-server ovsdb-tool ovs-appctl ovs-vsctl ovs-vswitchd ovs-ofctl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install openvswitch-switch ovn-central)" >&2; exit 1; }
done

cd "$ROOT"
echo "== build (ovn-route, agent-bench, raw-reader)" >&2
cargo build --release -q -p ovn-route
cargo build --release -q -p ovn-route-bench --bin agent-bench --bin raw-reader
BIN="$ROOT/target/release"
OUT=${OUT:-/var/tmp/ovnr-bench/agent-bench-$(date +%Y%m%d-%H%M%S).jsonl}
mkdir -p "$(dirname "$OUT")"

cpu_busy() { # percent of all CPUs busy over 2 s
    local a b
    a=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
    sleep 2
    b=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2];
        printf "%.0f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}
idle() {
    local busy waited=0
    busy=$(cpu_busy)
    while [ "$busy" -ge 15 ] && [ "$waited" -lt "$WAIT_IDLE" ]; do
        echo "   machine ${busy}% busy; waiting for it to go idle" >&2
        sleep 3; waited=$((waited + 5)); busy=$(cpu_busy)
    done
    echo "== machine ${busy}% busy before measuring; loadavg $(cut -d' ' -f1-3 /proc/loadavg); HEAD $(git rev-parse --short HEAD)" >&2
    echo "{\"what\": \"machine\", \"busy_pct_before\": $busy, \"loadavg\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"nproc\": $(nproc), \"head\": \"$(git rev-parse --short HEAD)\"}" >>"$OUT"
}

run() { # set [options...]
    local set=$1; shift
    echo "== agent-bench run --set $set $*" >&2
    idle
    "$BIN/agent-bench" run --set "$set" --ovn-route "$BIN/ovn-route" --raw-reader "$BIN/raw-reader" \
        --out "$OUT" "${KEEP[@]}" "$@"
}

for set in $SETS; do
    # Generate first (cached), so that generation never overlaps a measurement.
    "$BIN/agent-bench" gen --set "$set" >/dev/null
    case "$set" in
        small) run small --repeat "$REPEAT" --changes "$CHANGES" --gap-ms "$GAP_MS" ;;
        *) run "$set" --repeat "$REPEAT" ;;
    esac
done
if [ "$ISOLATED" -gt 0 ]; then
    run small --repeat 0 --changes "$ISOLATED" --gap-ms 0 --idle-before-ms 500
fi
if [ "$LARGE_CHANGES" -gt 0 ]; then
    "$BIN/agent-bench" gen --set large >/dev/null
    run large --repeat 0 --changes "$LARGE_CHANGES" --gap-ms 0 --idle-before-ms 2000 --change-timeout-s 300
fi
if [ "$X6" = 1 ]; then
    "$BIN/agent-bench" gen --set x6 >/dev/null
    run x6 --repeat 1
fi
if [ "$STOCK" = 1 ]; then
    "$BIN/agent-bench" gen --set small --stock-schema >/dev/null
    run small --stock-schema --dry-run-only
fi
echo "== results (JSON lines): $OUT" >&2
