#!/usr/bin/env bash
# Replica benchmark driver: fixtures and reference measurements, in one run on the same database.
#
#   bench/replica-bench.sh [--scale 1] [--seed 1] [--repeat 3] [--no-python] [--python-all]
#                          [--replica] [--updates 1000] [--out FILE] [--gen-opts "--dual-stack-every 5 ..."]
#                          [--wait-idle SECONDS] [--replica-timeout SECONDS]
#
# 1. ensures the NB database exists (gen-nb, cached under /var/tmp/ovnr-bench keyed by its parameters);
# 2. copies it to a temp dir and starts a private ovsdb-server on it (unix socket; stopped on exit);
# 3. raw-reader (the server's own limit): all columns and ovn-route's selection, monitor_cond_since and
#    monitor_cond, plus the issue's reference shape (Logical_Switch_Port + Logical_Switch, all columns);
# 4. the Python `ovs` IDL anchor (Debian python3-openvswitch) on the selection (and all columns with
#    --python-all);
# 5. (with --replica) our replica: target/release/replica-bench;
# 6. prints a results table; the raw results (one JSON object a line) go to --out.
# The machine's CPU use by other processes is sampled before the measurements and reported (2 cores:
# a concurrent build skews every figure); --wait-idle N waits up to N s for it to drop below 15%.
#
# Needs: ovsdb-server, ovsdb-tool, ovs-appctl (openvswitch-switch), /usr/bin/python3 with python3-openvswitch.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCALE=1
SEED=1
REPEAT=3
PYTHON=1
PYTHON_ALL=0
REPLICA=0
UPDATES=1000
OUT=""
GEN_OPTS=""
WAIT_IDLE=0
REPLICA_TIMEOUT=900
CACHE=/var/tmp/ovnr-bench

while [ $# -gt 0 ]; do
    case "$1" in
        --scale) SCALE=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --repeat) REPEAT=$2; shift 2 ;;
        --no-python) PYTHON=0; shift ;;
        --python-all) PYTHON_ALL=1; shift ;;
        --replica) REPLICA=1; shift ;;
        --updates) UPDATES=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --gen-opts) GEN_OPTS=$2; shift 2 ;;
        --wait-idle) WAIT_IDLE=$2; shift 2 ;;
        --replica-timeout) REPLICA_TIMEOUT=$2; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

export RUST_BACKTRACE=0
DBNAME=OVN_Northbound
TABLES_SEL=""  # set from the selection below
# ovn-route's column selection, from the code itself (ovn-model), so that raw-reader, the Python
# anchor and the replica all load exactly the same columns (set after the build below).
COLUMNS_SEL=""

for tool in ovsdb-server ovsdb-tool ovs-appctl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install openvswitch-switch ovn-central)" >&2; exit 1; }
done

cd "$ROOT"
echo "== build (ovn-route-bench: gen-nb, raw-reader$([ $REPLICA = 1 ] && echo ', replica-bench'))" >&2
BINS=(--bin gen-nb --bin raw-reader --bin replica-bench)

cargo build --release -q -p ovn-route-bench "${BINS[@]}"
BIN="$ROOT/target/release"
COLUMNS_SEL=$("$BIN/replica-bench" --print-selection --database "$DBNAME")
TABLES_SEL=$(printf '%s' "$COLUMNS_SEL" | tr ';' '\n' | cut -d: -f1 | paste -sd, -)

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

mkdir -p "$CACHE"
echo "== database (gen-nb --scale $SCALE --seed $SEED $GEN_OPTS)" >&2
t0=$(date +%s.%N)
# shellcheck disable=SC2086  # GEN_OPTS is a list of options
DB=$("$BIN/gen-nb" --scale "$SCALE" --seed "$SEED" $GEN_OPTS --cache-dir "$CACHE" --print-path 2>"$CACHE/gen-nb.last.log") || {
    cat "$CACHE/gen-nb.last.log" >&2; exit 1; }
t1=$(date +%s.%N)
META="${DB%.db}.json"
echo "   $DB ($(du -h "$DB" | cut -f1); gen-nb call took $(elapsed "$t0" "$t1") s)" >&2

WORK=$(mktemp -d "$CACHE/run.XXXXXX")
RESULTS="$WORK/results.jsonl"
SERVER_PID=""
cleanup() {
    local rc=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        ovs-appctl -t "$WORK/nb.ctl" exit >/dev/null 2>&1 || kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "$OUT" ] && [ -f "$RESULTS" ]; then cp "$RESULTS" "$OUT"; fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Percent of all CPUs busy over a 2 s sample (nothing of ours runs meanwhile).
cpu_busy() {
    local a b
    a=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
    sleep 2
    b=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2];
        printf "%.0f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}
busy=$(cpu_busy)
waited=0
while [ "$busy" -ge 15 ] && [ "$waited" -lt "$WAIT_IDLE" ]; do
    echo "   machine ${busy}% busy; waiting for it to go idle" >&2
    sleep 3; waited=$((waited + 5)); busy=$(cpu_busy)
done
echo "== machine ${busy}% busy before measuring; loadavg $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "{\"tool\": \"machine\", \"busy_pct_before\": $busy, \"loadavg_before\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"nproc\": $(nproc)}" >>"$RESULTS"

# A copy: the replica benchmark commits transactions, the cached file stays pristine.
cp "$DB" "$WORK/nb.db"
echo "== ovsdb-server on $WORK/nb.sock" >&2
s0=$(date +%s.%N)
ovsdb-server --detach --no-chdir --pidfile="$WORK/nb.pid" --log-file="$WORK/nb.log" \
    --remote="punix:$WORK/nb.sock" --unixctl="$WORK/nb.ctl" "$WORK/nb.db" 2>/dev/null
s1=$(date +%s.%N)
SERVER_PID=$(cat "$WORK/nb.pid")
server_load_s=$(elapsed "$s0" "$s1")
echo "   pid $SERVER_PID, database loaded in ${server_load_s} s" >&2
/usr/bin/python3 - "$META" "$DB" "$server_load_s" >>"$RESULTS" <<'EOF'
import json, os, sys
meta = json.load(open(sys.argv[1]))
meta.update(tool="gen-nb", db_file_bytes=os.path.getsize(sys.argv[2]), server_load_s=float(sys.argv[3]))
print(json.dumps(meta))
EOF

raw() { # label method columns [tables]
    local label=$1 method=$2 columns=$3 tables=${4:-}
    echo "== raw-reader $label $method x$REPEAT" >&2
    "$BIN/raw-reader" --socket "$WORK/nb.sock" --db "$DBNAME" --method "$method" \
        ${tables:+--tables "$tables"} --columns "$columns" --repeat "$REPEAT" --label "$label" --json \
        --server-pid "$SERVER_PID" \
        | tee -a "$RESULTS" >&2
}
raw "lsp+ls/all" monitor_cond_since all "Logical_Switch_Port,Logical_Switch"
raw "all" monitor_cond_since all "$TABLES_SEL"
raw "all" monitor_cond all "$TABLES_SEL"
raw "selection" monitor_cond_since "$COLUMNS_SEL"
raw "selection" monitor_cond "$COLUMNS_SEL"

if [ "$PYTHON" = 1 ]; then
    echo "== python ovs IDL (selection)" >&2
    /usr/bin/python3 "$ROOT/bench/python-idl-anchor.py" --remote "unix:$WORK/nb.sock" --db "$DBNAME" \
        --columns "$COLUMNS_SEL" --label selection --json --server-pid "$SERVER_PID" | tee -a "$RESULTS" >&2
    if [ "$PYTHON_ALL" = 1 ]; then
        echo "== python ovs IDL (all columns)" >&2
        /usr/bin/python3 "$ROOT/bench/python-idl-anchor.py" --remote "unix:$WORK/nb.sock" --db "$DBNAME" \
            --tables "$TABLES_SEL" --columns all --label all --json --server-pid "$SERVER_PID" \
            | tee -a "$RESULTS" >&2
    fi
fi

if [ "$REPLICA" = 1 ]; then
    echo "== ovn-route replica (replica-bench)" >&2
    # Our replica, written against the ovsdb crate: connect-to-complete, peak RSS, commit-to-notification latency.
    rrc=0
    timeout "$REPLICA_TIMEOUT" "$BIN/replica-bench" --remote "unix:$WORK/nb.sock" --database "$DBNAME" --columns agent \
        --updates "$UPDATES" --rounds 3 >"$WORK/replica.txt" 2>&1 || rrc=$?
    if [ "$rrc" = 124 ]; then
        echo "replica-bench TIMED OUT after ${REPLICA_TIMEOUT} s" >>"$WORK/replica.txt"
    elif [ "$rrc" != 0 ]; then
        echo "replica-bench FAILED (exit $rrc)" >>"$WORK/replica.txt"
    fi
    cat "$WORK/replica.txt" >&2
    /usr/bin/python3 -c 'import json,sys; print(json.dumps({"tool":"replica-bench","label":"agent","output":sys.stdin.read()}))' \
        <"$WORK/replica.txt" >>"$RESULTS"
fi
# Placeholder until replica-bench reports in this table's format:
# "$BIN/replica-bench" --remote "unix:$WORK/nb.sock" --columns agent --updates "$UPDATES"

server_hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0)
echo "{\"tool\": \"ovsdb-server\", \"peak_rss_kib\": ${server_hwm:-0}}" >>"$RESULTS"
echo "{\"tool\": \"machine\", \"loadavg_after\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$RESULTS"

/usr/bin/python3 - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
g = next(r for r in rows if r["tool"] == "gen-nb")
print()
print(f"database: {g['db']}")
print(f"  {g['db_file_bytes'] / 1e6:.1f} MB, {g['rows']['total']} rows "
      f"(LS {g['rows']['Logical_Switch']}, LSP {g['rows']['Logical_Switch_Port']}, LR {g['rows']['Logical_Router']}, "
      f"LRP {g['rows']['Logical_Router_Port']}, NAT {g['rows']['NAT']}, GC {g['rows']['Gateway_Chassis']}, "
      f"LB {g['rows']['Load_Balancer']}); generated in {g['total_s']:.1f} s "
      f"(transactions {g['transactions_done_s']:.1f} s, compaction {g['compact_s']:.1f} s); "
      f"ovsdb-server loads it in {g['server_load_s']:.2f} s")
m = {}
for r in rows:
    if r["tool"] == "machine":
        m.update(r)
print(f"machine: {m.get('nproc', '?')} CPUs, {m.get('busy_pct_before', '?')}% busy before measuring, "
      f"loadavg {m.get('loadavg_before', '?')} before / {m.get('loadavg_after', '?')} after")
print()
hdr = (f"{'measurement':<42} {'time s':>15} {'MB':>7} {'peak RSS MiB':>12} {'server CPU s':>12} "
       f"{'others CPU s':>12}")
print(hdr)
print("-" * len(hdr))


def num(v, fmt="{:.2f}"):
    return "-" if v is None else fmt.format(v)


raws = {}
for r in rows:
    if r["tool"] == "raw-reader":
        raws.setdefault((r["label"], r["method"]), []).append(r)
for (label, method), rs in raws.items():
    ts = [r["elapsed_s"] for r in rs]
    best = min(rs, key=lambda r: r["elapsed_s"])
    t = f"{ts[0]:.2f}" + (f" (min {best['elapsed_s']:.2f})" if len(ts) > 1 else "")
    print(f"{'raw reader ' + label + ' ' + method:<42} {t:>15} {rs[0]['bytes'] / 1e6:>7.1f} "
          f"{max(r['peak_rss_kib'] for r in rs) / 1024:>12.1f} {num(best.get('server_cpu_s')):>12} "
          f"{num(best.get('other_cpu_s')):>12}")
for r in rows:
    if r["tool"] == "python-idl":
        print(f"{'python ovs IDL ' + r['label']:<42} {r['elapsed_s']:>15.2f} {'':>7} {r['peak_rss_kib'] / 1024:>12.1f} "
              f"{num(r.get('server_cpu_s')):>12} {num(r.get('other_cpu_s')):>12}")
for r in rows:
    if r["tool"] == "replica-bench":
        print("ovn-route replica (replica-bench output):")
        print("  " + r["output"].strip().replace("\n", "\n  "))
for r in rows:
    if r["tool"] == "ovsdb-server":
        print(f"{'ovsdb-server (whole run)':<42} {'':>15} {'':>7} {r['peak_rss_kib'] / 1024:>12.1f}")
print()
print("raw reader time: connect to reply complete, first run (min over repeats; CPU columns for the min run);")
print("MB = 10^6 bytes of the reply; others CPU s = CPU time the rest of the machine used meanwhile (contention).")
EOF
