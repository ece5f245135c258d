//! `ovn-route db dump` against a real ovsdb-server: the same rows and values as `ovsdb-client dump`,
//! one JSON line per change with `--follow`, and bad input refused with the value named.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ovn_route_lab::{skip_unless_root, OvsdbServer, NB_SCHEMA};
use serde_json::{json, Value as Json};

const BIN: &str = env!("CARGO_BIN_EXE_ovn-route");

/// Runs `cmd`, which must succeed, and parses its standard output as JSON.
fn json_output(cmd: &mut Command) -> Json {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn nbctl(server: &OvsdbServer, args: &[&str]) {
    let out = Command::new("ovn-nbctl")
        .arg(format!("--db={}", server.unix_remote()))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ovn-nbctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ovsdb-client -f json dump` of each table as `{table: {uuid: {column: value}}}` (no `_version`).
fn client_dump(server: &OvsdbServer, tables: &[&str]) -> Json {
    let remote = server.unix_remote();
    let mut result = serde_json::Map::new();
    for table in tables {
        let dumped = json_output(Command::new("ovsdb-client").args([
            "-f",
            "json",
            "dump",
            remote.as_str(),
            "OVN_Northbound",
            table,
        ]));
        // One table comes as an object, several as an array.
        let t = if dumped.is_array() {
            &dumped[0]
        } else {
            &dumped
        };
        let headings: Vec<&str> = t["headings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        let mut rows = serde_json::Map::new();
        for row in t["data"].as_array().unwrap() {
            let mut obj = serde_json::Map::new();
            let mut uuid = String::new();
            for (h, v) in headings.iter().zip(row.as_array().unwrap()) {
                match *h {
                    "_uuid" => uuid = v[1].as_str().unwrap().to_string(),
                    "_version" => {}
                    col => {
                        obj.insert(col.to_string(), v.clone());
                    }
                }
            }
            rows.insert(uuid, Json::Object(obj));
        }
        result.insert(table.to_string(), Json::Object(rows));
    }
    Json::Object(result)
}

#[test]
fn dump_equals_ovsdb_client_and_follow_prints_changes() {
    if skip_unless_root("dump_equals_ovsdb_client_and_follow_prints_changes") {
        return;
    }
    let server = OvsdbServer::start(NB_SCHEMA).unwrap();
    nbctl(&server, &["init"]);
    nbctl(
        &server,
        &[
            "ls-add",
            "sw0",
            "--",
            "set",
            "logical_switch",
            "sw0",
            "external_ids:\"neutron:network_name\"=net-a",
        ],
    );
    nbctl(
        &server,
        &[
            "lsp-add",
            "sw0",
            "vm1",
            "--",
            "lsp-set-addresses",
            "vm1",
            "00:00:00:00:00:01 10.0.0.11",
        ],
    );
    nbctl(
        &server,
        &[
            "lr-add",
            "lr0",
            "--",
            "lrp-add",
            "lr0",
            "lrp0",
            "00:00:00:00:ff:01",
            "10.0.0.1/24",
            "fd00::1/64",
        ],
    );

    let tables = [
        "Logical_Switch",
        "Logical_Switch_Port",
        "Logical_Router",
        "Logical_Router_Port",
    ];
    let ours = json_output(
        Command::new(BIN)
            .args(["db", "dump", &server.unix_remote(), "OVN_Northbound"])
            .args(tables),
    );
    assert_eq!(ours, client_dump(&server, &tables));

    // --columns selects columns; --follow prints one line per change.
    let mut child = Command::new(BIN)
        .args([
            "db",
            "dump",
            &server.unix_remote(),
            "OVN_Northbound",
            "--follow",
            "--columns",
            "Logical_Switch:name,external_ids",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The initial dump is pretty-printed over several lines; read until it closes.
    let mut initial = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        initial.push_str(&line);
        if line == "}" {
            break;
        }
    }
    let initial: Json = serde_json::from_str(&initial).unwrap();
    let sw = initial["Logical_Switch"].as_object().unwrap();
    assert_eq!(sw.len(), 1);
    let (sw_uuid, sw_row) = sw.iter().next().unwrap();
    assert_eq!(
        sw_row,
        &json!({"name": "sw0", "external_ids": ["map", [["neutron:network_name", "net-a"]]]})
    );

    nbctl(
        &server,
        &[
            "set",
            "logical_switch",
            "sw0",
            "external_ids:owner=ovn-route-test",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let line = loop {
        assert!(Instant::now() < deadline, "no change line");
        let l = lines.next().unwrap().unwrap();
        if !l.trim().is_empty() {
            break l;
        }
    };
    let change: Json = serde_json::from_str(&line).unwrap();
    assert_eq!(
        change,
        json!({"Logical_Switch": {sw_uuid.as_str(): {"modify": {"external_ids":
            ["map", [["neutron:network_name", "net-a"], ["owner", "ovn-route-test"]]]}}}})
    );
    nbctl(&server, &["ls-del", "sw0"]);
    let line = lines.next().unwrap().unwrap();
    let change: Json = serde_json::from_str(&line).unwrap();
    assert_eq!(
        change,
        json!({"Logical_Switch": {sw_uuid.as_str(): {"delete": null}}})
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn bad_input_is_refused_naming_the_value() {
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let e = run(&["db", "dump", "tcp:10.0.0.1", "OVN_Northbound"]);
    assert!(e.contains("\"tcp:10.0.0.1\""), "{e}");
    let e = run(&[
        "db",
        "dump",
        "unix:/nonexistent/x.sock",
        "OVN_Northbound",
        "--columns",
        "Logical_Switch",
    ]);
    assert!(e.contains("\"Logical_Switch\""), "{e}");
    let e = run(&[
        "db",
        "dump",
        "unix:/nonexistent/x.sock",
        "OVN_Northbound",
        "--timeout",
        "1",
    ]);
    assert!(e.contains("unix:/nonexistent/x.sock"), "{e}");
    let e = run(&["db", "dump", "ssl:127.0.0.1:6641", "OVN_Northbound"]);
    assert!(
        e.contains("ssl:127.0.0.1:6641") && e.contains("--private-key"),
        "{e}"
    );
}
