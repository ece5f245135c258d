#!/usr/bin/env python3
"""Capture one monitor_cond_since reply (raw bytes) for the parse-speed example.

    bench/capture-reply.py unix:/path/nb.sock reply.json [Table:c1,c2;Table2:...]

Without a selection, Logical_Switch and Logical_Switch_Port with all columns are requested.
"""
import json
import socket
import sys


def main():
    remote, out = sys.argv[1], sys.argv[2]
    sel = sys.argv[3] if len(sys.argv) > 3 else "Logical_Switch;Logical_Switch_Port"
    reqs = {}
    for spec in sel.split(";"):
        table, _, cols = spec.partition(":")
        reqs[table] = [{"columns": cols.split(",")}] if cols else [{}]
    s = socket.socket(socket.AF_UNIX)
    s.connect(remote.removeprefix("unix:"))
    zero = "00000000-0000-0000-0000-000000000000"
    s.sendall(json.dumps({"id": 1, "method": "monitor_cond_since",
                          "params": ["OVN_Northbound", "capture", reqs, zero]}).encode())
    buf, depth, in_str, esc, done = bytearray(), 0, False, False, False
    while not done:
        data = s.recv(1 << 20)
        if not data:
            sys.exit("server closed the connection")
        for b in data:
            buf.append(b)
            if in_str:
                if esc:
                    esc = False
                elif b == 0x5C:
                    esc = True
                elif b == 0x22:
                    in_str = False
            elif b == 0x22:
                in_str = True
            elif b in (0x7B, 0x5B):
                depth += 1
            elif b in (0x7D, 0x5D):
                depth -= 1
                if depth == 0:
                    done = True
                    break
    with open(out, "wb") as f:
        f.write(buf)
    print(f"{len(buf)} bytes written to {out}")


if __name__ == "__main__":
    main()
