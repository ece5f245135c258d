//! Parsing the output of `ovs-ofctl dump-flows`.
//!
//! One flow per line: `cookie=0x3e7, duration=1.2s, table=0, n_packets=0, n_bytes=0,
//! idle_age=1, priority=900,ip,in_port="patch-provnet-1" actions=mod_dl_dst:...,NORMAL`. With
//! `--no-stats` the counters go, and so do `cookie=0x0` and `table=0`; OpenFlow 1.3 adds flags
//! such as `reset_counts` before the priority; a flow with the default priority (32768) has no
//! `priority=`. Everything before `actions=` that is not one of those properties is the match.

use crate::flow::{Flow, DEFAULT_PRIORITY};
use crate::normalize::{parse_u64, split_top_level};

/// Properties and counters printed before the match; they are not part of a flow's identity.
const PROPERTIES: &[&str] = &[
    "duration",
    "n_packets",
    "n_bytes",
    "idle_age",
    "hard_age",
    "idle_timeout",
    "hard_timeout",
    "importance",
    "packet_count",
    "byte_count",
];

/// Flags printed before the match (OpenFlow 1.3+ and `send_flow_rem`).
const FLAGS: &[&str] = &[
    "reset_counts",
    "send_flow_rem",
    "check_overlap",
    "no_packet_counts",
    "no_byte_counts",
    "no_readonly_table",
];

/// One line of `dump-flows`: the flow (normalized) and its cookie.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DumpedFlow {
    /// The flow's cookie (0 when none was printed).
    pub cookie: u64,
    /// The flow; a table other than 0 is part of its match (`table=N`).
    pub flow: Flow,
}

/// A `dump-flows` line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read dump-flows line {line:?}: {reason}")]
pub struct DumpError {
    /// The line.
    pub line: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses the output of `ovs-ofctl dump-flows` (with or without `--no-stats`, any OpenFlow
/// version); reply headers such as `NXST_FLOW reply (xid=0x4):` and empty lines are skipped.
pub fn parse_dump(text: &str) -> Result<Vec<DumpedFlow>, DumpError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || is_header(t) {
            continue;
        }
        out.push(parse_line(t)?);
    }
    Ok(out)
}

/// `NXST_FLOW reply (xid=0x4):`, `OFPST_FLOW reply (OF1.3) (xid=0x2):` ...
fn is_header(line: &str) -> bool {
    line.ends_with(':') && line.contains(" reply") && !line.contains("actions=")
}

/// Parses one flow line of `dump-flows`.
pub fn parse_line(line: &str) -> Result<DumpedFlow, DumpError> {
    let err = |reason| DumpError {
        line: line.to_string(),
        reason,
    };
    let t = line.trim();
    let (head, actions) = if let Some(rest) = t.strip_prefix("actions=") {
        ("", rest)
    } else {
        let i = find_actions(t).ok_or_else(|| err("no actions="))?;
        (&t[..i], &t[i + " actions=".len()..])
    };
    let mut cookie = 0;
    let mut priority = DEFAULT_PRIORITY;
    let mut matches: Vec<String> = Vec::new();
    for token in split_top_level(head, true) {
        let (key, value) = match token.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (token, None),
        };
        match (key, value) {
            ("cookie", Some(v)) => {
                cookie =
                    parse_u64(v.split('/').next().unwrap_or(v)).ok_or_else(|| err("bad cookie"))?;
            }
            ("priority", Some(v)) => {
                priority = parse_u64(v)
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| err("bad priority"))?;
            }
            ("table", Some(v)) => {
                let table = parse_u64(v).ok_or_else(|| err("bad table"))?;
                if table != 0 {
                    matches.push(format!("table={table}"));
                }
            }
            (k, Some(_)) if PROPERTIES.contains(&k) => {}
            (k, None) if FLAGS.contains(&k) => {}
            _ => matches.push(token.to_string()),
        }
    }
    Ok(DumpedFlow {
        cookie,
        flow: Flow::new(priority, &matches.join(","), actions),
    })
}

/// Byte index of the space before `actions=` outside quotes.
fn find_actions(line: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace()
                && !quoted
                && line[i + c.len_utf8()..].starts_with("actions=") =>
            {
                return Some(i)
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from ovs-vswitchd 3.1 (Debian bookworm), dummy datapath bridge `br-ex` with
    /// patch port `patch-provnet-1` (ofport 1).
    const DUMP_STATS: &str = "\
NXST_FLOW reply (xid=0x4):
 cookie=0x3e7, duration=0.021s, table=0, n_packets=0, n_bytes=0, idle_age=0, priority=900,ipv6,in_port=1 actions=mod_dl_dst:aa:bb:cc:dd:ee:0f,NORMAL
 cookie=0x5, duration=0.006s, table=0, n_packets=0, n_bytes=0, idle_age=0, priority=900,ip,in_port=1 actions=drop
 cookie=0x0, duration=1.591s, table=0, n_packets=0, n_bytes=0, idle_age=1, priority=0 actions=NORMAL
";

    /// `ovs-ofctl --names dump-flows --no-stats br-ex`.
    const DUMP_NAMES_NO_STATS: &str = r#" cookie=0x3e7, priority=900,ipv6,in_port="patch-provnet-1" actions=mod_dl_dst:aa:bb:cc:dd:ee:0f,NORMAL
 cookie=0x3e7, priority=900,ip,in_port="patch-provnet-1" actions=mod_dl_dst:aa:bb:cc:dd:ee:0f,NORMAL
 cookie=0x3e7, priority=800,ip,in_port=LOCAL,nw_dst=10.0.0.0/8 actions=output:"patch-provnet-1",mod_dl_src:aa:bb:cc:00:00:01
 priority=0 actions=NORMAL
"#;

    /// `ovs-ofctl --names -O OpenFlow13 dump-flows --no-stats br-ex`.
    const DUMP_OF13: &str = r#" cookie=0x3e7, reset_counts priority=900,ipv6,in_port="patch-provnet-1" actions=set_field:aa:bb:cc:dd:ee:0f->eth_dst,NORMAL
 cookie=0x3e7, reset_counts priority=900,ip,in_port="patch-provnet-1" actions=set_field:aa:bb:cc:dd:ee:0f->eth_dst,NORMAL
 cookie=0x3e7, reset_counts priority=800,ip,in_port=LOCAL,nw_dst=10.0.0.0/8 actions=output:"patch-provnet-1",set_field:aa:bb:cc:00:00:01->eth_src
 priority=0 actions=NORMAL
"#;

    /// Default priority, other tables, timeouts, flags (with and without stats).
    const DUMP_ODD: &str = r#" cookie=0x7, ip,nw_dst=10.1.0.0/16 actions=mod_nw_dst:1.2.3.4,mod_dl_src:aa:00:00:00:00:01,LOCAL
 cookie=0x7, idle_timeout=300, priority=6 actions=NORMAL
 cookie=0x7, table=3, priority=5,ipv6,in_port=LOCAL,ipv6_dst=fd00::/64 actions=drop
 cookie=0x7, duration=0.049s, table=0, n_packets=0, n_bytes=0, ip,nw_dst=10.1.0.0/16 actions=mod_nw_dst:1.2.3.4,mod_dl_src:aa:00:00:00:00:01,LOCAL
 cookie=0x7, duration=0.019s, table=0, n_packets=0, n_bytes=0, idle_timeout=300, priority=6 actions=NORMAL
 cookie=0x7, duration=0.031s, table=3, n_packets=0, n_bytes=0, priority=5,ipv6,in_port=LOCAL,ipv6_dst=fd00::/64 actions=drop
 cookie=0x7, idle_timeout=300, send_flow_rem reset_counts priority=6 actions=NORMAL
 cookie=0x7, priority=13,icmp actions=ct(commit,zone=5,exec(load:0x1->NXM_NX_CT_MARK[])),resubmit(,2),load:0xa->NXM_NX_REG0[0..15],move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]
"#;

    #[test]
    fn stats_dump() {
        let flows = parse_dump(DUMP_STATS).unwrap();
        assert_eq!(flows.len(), 3);
        assert_eq!(flows[0].cookie, 0x3e7);
        assert_eq!(
            flows[0].flow,
            Flow::new(900, "ipv6,in_port=1", "mod_dl_dst:aa:bb:cc:dd:ee:0f,NORMAL")
        );
        assert_eq!(flows[1].cookie, 5);
        assert_eq!(flows[1].flow.actions, "drop");
        assert_eq!(flows[2].cookie, 0);
        assert_eq!(flows[2].flow, Flow::new(0, "", "NORMAL"));
    }

    #[test]
    fn names_and_of13_dumps_read_the_same() {
        let a = parse_dump(DUMP_NAMES_NO_STATS).unwrap();
        let b = parse_dump(DUMP_OF13).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 4);
        assert_eq!(
            a[1].flow,
            Flow {
                priority: 900,
                matches: "ip,in_port=patch-provnet-1".into(),
                actions: "mod_dl_dst:aa:bb:cc:dd:ee:0f,NORMAL".into(),
            }
        );
        assert_eq!(
            a[2].flow.to_string(),
            "priority=800,ip,in_port=LOCAL,nw_dst=10.0.0.0/8 actions=output:patch-provnet-1,mod_dl_src:aa:bb:cc:00:00:01"
        );
        assert_eq!(a[3].cookie, 0);
        // Our own text for these flows reads the same.
        assert_eq!(
            a[0].flow,
            Flow::new(
                900,
                "in_port=patch-provnet-1,dl_type=0x86dd",
                "mod_dl_dst:AA:BB:CC:DD:EE:0F,normal"
            )
        );
    }

    #[test]
    fn odd_lines() {
        let f = parse_dump(DUMP_ODD).unwrap();
        assert_eq!(f.len(), 8);
        assert!(f.iter().all(|d| d.cookie == 7));
        assert_eq!(f[0].flow.priority, DEFAULT_PRIORITY);
        assert_eq!(f[0].flow.matches, "ip,nw_dst=10.1.0.0/16");
        assert_eq!(f[0], f[3], "with and without stats");
        assert_eq!(f[1], f[4]);
        assert_eq!(f[1], f[6], "flags and timeouts are not the match");
        assert_eq!(f[1].flow, Flow::new(6, "", "NORMAL"));
        assert_eq!(f[2], f[5]);
        assert_eq!(
            f[2].flow.matches,
            "table=3,ipv6,in_port=LOCAL,ipv6_dst=fd00::/64"
        );
        assert_eq!(f[2].flow.table(), 3);
        assert_eq!(f[7].flow.matches, "icmp");
        assert!(f[7].flow.actions.starts_with("ct(commit,zone=5,exec("));
    }

    #[test]
    fn quoted_names_with_spaces_and_bad_lines() {
        let d = parse_line(r#"cookie=0x1, priority=1,in_port="a b" actions=output:"x y""#).unwrap();
        assert_eq!(d.flow.matches, r#"in_port="a b""#);
        assert_eq!(d.flow.actions, r#"output:"x y""#);
        assert_eq!(d.flow.normalized(), d.flow);
        assert!(parse_line("cookie=0x1, priority=1,ip").is_err());
        assert!(parse_line("cookie=zz, priority=1 actions=drop").is_err());
        assert!(parse_line("cookie=0x1, priority=70000 actions=drop").is_err());
        assert_eq!(parse_dump("").unwrap(), vec![]);
        assert_eq!(
            parse_dump("OFPST_FLOW reply (OF1.3) (xid=0x2):\n").unwrap(),
            vec![]
        );
        assert_eq!(
            parse_line("actions=NORMAL").unwrap().flow,
            Flow::new(DEFAULT_PRIORITY, "", "NORMAL")
        );
    }
}
