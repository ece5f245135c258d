//! Helpers shared by the agent's lab tests: the binary, a failure dump, the status socket.
#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::time::Duration;

use ovn_route_lab::ExposureLab;
use serde_json::Value as Json;

/// How long a lab test waits for the upstream router or the agent's status to get there.
pub const WAIT: Duration = Duration::from_secs(45);

/// The `ovn-route` binary under test.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ovn-route"))
}

/// What to look at when a lab test fails: the agents' logs, their tables and rules, the upstream.
pub fn dump(x: &mut ExposureLab) -> String {
    let mut s = String::new();
    for i in 0..2 {
        if let Some(a) = x.agents[i].as_mut() {
            s.push_str(&format!("--- agent {i} log:\n{}\n", a.log_tail(60)));
        }
        let ns = x.lab.chassis(i).netns();
        s.push_str(&format!(
            "--- hv{} table 10:\n{}\n--- rules:\n{}\n",
            i + 1,
            ns.ip(&["route", "show", "table", "10"]).unwrap_or_default(),
            ns.ip(&["rule"]).unwrap_or_default()
        ));
    }
    s.push_str(&format!(
        "--- upstream:\n{}\n",
        x.upstream_bgp_table().unwrap_or_default()
    ));
    s
}

/// Panics with the lab's state when `$e` is an error.
#[allow(unused_macros)]
macro_rules! check {
    ($x:expr, $e:expr) => {
        if let Err(err) = $e {
            let d = common::dump(&mut $x);
            panic!("{err}\n{d}");
        }
    };
}

/// Agent `i`'s status report, from its socket.
pub fn try_status(x: &ExposureLab, i: usize) -> Result<Json, String> {
    let sock = x.agent_dir(i).join("status.sock");
    let out = std::process::Command::new(bin())
        .args(["status", "--json", "--socket"])
        .arg(&sock)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// Agent `i`'s status report; panics when there is none.
pub fn status(x: &ExposureLab, i: usize) -> Json {
    try_status(x, i).unwrap_or_else(|e| panic!("ovn-route status: {e}"))
}

/// Waits until agent `i`'s status satisfies `f`; returns it.
pub fn wait_status(x: &ExposureLab, i: usize, what: &str, f: impl Fn(&Json) -> bool) -> Json {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match try_status(x, i) {
            Ok(v) if f(&v) => return v,
            Ok(v) if std::time::Instant::now() > deadline => {
                panic!("timed out waiting for {what}; status: {v:#}")
            }
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("timed out waiting for {what}: {e}")
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
