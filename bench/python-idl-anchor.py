#!/usr/bin/python3
"""The anchor users have today: the Python `ovs` IDL (Debian python3-openvswitch), which ovsdbapp and so
ovn-bgp-agent are built on, loading the same tables as the replica benchmark.

Does what ovsdbapp's connection setup does: fetch the schema with get_schema, register the
tables/columns on a SchemaHelper, open an Idl on the remote and run it until the initial load is in
(has_ever_connected, state MONITORING, change_seqno moved). Prints elapsed seconds (start to loaded,
and connect-to-loaded without the get_schema round trip), row counts and peak RSS.

Run with Debian's interpreter (/usr/bin/python3), which is where python3-openvswitch lives.

    bench/python-idl-anchor.py --remote unix:/tmp/x/nb.sock \
        --columns 'Logical_Switch:name,ports;Logical_Switch_Port:name,addresses' [--json]
    bench/python-idl-anchor.py --remote unix:/tmp/x/nb.sock --tables Logical_Switch,NAT --columns all
"""

import argparse
import json
import os
import resource
import sys
import time

import ovs.db.idl
import ovs.jsonrpc
import ovs.poller
import ovs.stream


def get_schema(remote, db):
    err, strm = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote))
    if err:
        sys.exit(f"python-idl-anchor: cannot connect to {remote}: {err}")
    rpc = ovs.jsonrpc.Connection(strm)
    err, resp = rpc.transact_block(ovs.jsonrpc.Message.create_request("get_schema", [db]))
    rpc.close()
    if err or resp.error:
        sys.exit(f"python-idl-anchor: get_schema failed: {err or resp.error}")
    return resp.result


def selection(tables_arg, columns_args, schema):
    """Table -> list of columns, or None for every column (register_table)."""
    specs = {}
    for t in filter(None, (tables_arg or "").split(",")):
        specs[t] = None
    for arg in columns_args:
        for spec in arg.replace(";", " ").split():
            if spec == "all":
                continue
            t, _, cols = spec.partition(":")
            specs[t] = [c for c in cols.split(",") if c]
    if not specs:
        sys.exit("python-idl-anchor: no tables: give --tables or --columns Table:c1,c2")
    out = {}
    for t, cols in specs.items():
        if t not in schema["tables"]:
            sys.exit(f"python-idl-anchor: table {t} is not in the schema")
        if cols is None:
            out[t] = None
            continue
        have = schema["tables"][t]["columns"]
        keep = [c for c in cols if c in have]
        for c in cols:
            if c not in have:
                print(f"python-idl-anchor: {t}.{c} is not in this schema; dropped", file=sys.stderr)
        out[t] = keep
    return out


def proc_ticks(pid):
    """utime + stime of a process in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def vm_hwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--remote", required=True, help="e.g. unix:/tmp/x/nb.sock")
    ap.add_argument("--db", default="OVN_Northbound")
    ap.add_argument("--tables", default="", help="comma-separated; tables without a column spec get all columns")
    ap.add_argument("--columns", action="append", default=[],
                    help="'all' or 'Table:c1,c2' specs separated by ';' (repeatable)")
    ap.add_argument("--server-pid", type=int, help="report the server's CPU time during the load")
    ap.add_argument("--label", default="")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--timeout", type=float, default=900.0)
    args = ap.parse_args()

    hz = os.sysconf("SC_CLK_TCK")
    m0, s0, p0 = machine_busy_ticks(), args.server_pid and proc_ticks(args.server_pid), proc_ticks("self")
    t0 = time.monotonic()
    schema_json = get_schema(args.remote, args.db)
    sel = selection(args.tables, args.columns, schema_json)
    helper = ovs.db.idl.SchemaHelper(None, schema_json)
    for t, cols in sel.items():
        if cols is None:
            helper.register_table(t)
        else:
            helper.register_columns(t, cols)
    t_connect = time.monotonic()
    idl = ovs.db.idl.Idl(args.remote, helper)

    while True:
        idl.run()
        if idl.has_ever_connected() and idl.state == idl.IDL_S_MONITORING and idl.change_seqno > 0:
            break
        if time.monotonic() - t0 > args.timeout:
            sys.exit("python-idl-anchor: timed out before the initial load completed")
        poller = ovs.poller.Poller()
        idl.wait(poller)
        poller.block()
    t_done = time.monotonic()
    m1, s1, p1 = machine_busy_ticks(), args.server_pid and proc_ticks(args.server_pid), proc_ticks("self")
    server_cpu = (s1 - s0) / hz if s0 is not None and s1 is not None and args.server_pid else None
    self_cpu = (p1 - p0) / hz
    other_cpu = ((m1 - m0) / hz - self_cpu - server_cpu) if server_cpu is not None else None

    rows = {t: len(idl.tables[t].rows) for t in sel}
    ru_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    res = {
        "tool": "python-idl",
        "label": args.label,
        "elapsed_s": round(t_done - t0, 3),
        "connect_to_loaded_s": round(t_done - t_connect, 3),
        "peak_rss_kib": ru_kib,
        "vm_hwm_kib": vm_hwm_kib(),
        "cpu_s": round(self_cpu, 2),
        "server_cpu_s": None if server_cpu is None else round(server_cpu, 2),
        "other_cpu_s": None if other_cpu is None else round(max(other_cpu, 0.0), 2),
        "tables": len(sel),
        "columns": sum(len(c) if c is not None else len(schema_json["tables"][t]["columns"])
                       for t, c in sel.items()),
        "rows": rows,
        "python": sys.version.split()[0],
        "ovs_json_c_extension": _has_c_json(),
    }
    idl.close()
    if args.json:
        print(json.dumps(res))
    else:
        print("python-idl label={} elapsed_s={:.3f} connect_to_loaded_s={:.3f} peak_rss_kib={} "
              "peak_rss_mib={:.1f} rows={} cpu_s={} server_cpu_s={} other_cpu_s={}".format(
                  args.label or "-", res["elapsed_s"], res["connect_to_loaded_s"], ru_kib, ru_kib / 1024.0,
                  sum(rows.values()), res["cpu_s"], res["server_cpu_s"], res["other_cpu_s"]))
        print("python-idl rows: " + " ".join(f"{t}={n}" for t, n in sorted(rows.items())))


def _has_c_json():
    try:
        import ovs._json  # noqa: F401  (the C parser python-ovs uses when present)
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    main()
