//! A small reader of `show running-config`, enough to tell whether ovn-route's block is in place.

use std::collections::HashSet;

use crate::intent::{render, FrrIntent};

/// One configuration line with its context: the enclosing block (e.g. `router bgp 65001 vrf
/// bgp-vrf`) and address family (e.g. `address-family ipv4 unicast`), all trimmed.
type Entry = (Option<String>, Option<String>, String);

/// The lines of a running configuration, indexed by context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunningConfig {
    entries: HashSet<Entry>,
    blocks: HashSet<String>,
}

impl RunningConfig {
    /// Parses the text of `show running-config`.
    pub fn parse(text: &str) -> RunningConfig {
        let mut rc = RunningConfig::default();
        let mut block: Option<String> = None;
        let mut af: Option<String> = None;
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line == "!" || line == "end" {
                continue;
            }
            let indent = raw.len() - raw.trim_start().len();
            if indent == 0 {
                af = None;
                if line == "exit" {
                    block = None;
                } else if is_block_header(line) {
                    rc.blocks.insert(line.to_string());
                    block = Some(line.to_string());
                } else {
                    block = None;
                    rc.entries.insert((None, None, line.to_string()));
                }
            } else if line == "exit-address-family" {
                af = None;
            } else if line.starts_with("address-family ") && block.is_some() {
                af = Some(line.to_string());
            } else {
                rc.entries
                    .insert((block.clone(), af.clone(), line.to_string()));
            }
        }
        rc
    }

    /// True if `line` is configured in `block` / `af` (`None` for the top level).
    pub fn has(&self, block: Option<&str>, af: Option<&str>, line: &str) -> bool {
        self.entries.contains(&(
            block.map(str::to_string),
            af.map(str::to_string),
            line.to_string(),
        ))
    }

    /// True if a block with this header (e.g. `router bgp 65001 vrf bgp-vrf`) exists.
    pub fn has_block(&self, header: &str) -> bool {
        self.blocks.contains(header)
    }

    /// The `bgp router-id` of block `header`, if configured.
    pub fn router_id(&self, header: &str) -> Option<String> {
        self.entries.iter().find_map(|(b, a, l)| {
            (b.as_deref() == Some(header) && a.is_none())
                .then(|| l.strip_prefix("bgp router-id "))
                .flatten()
                .map(str::to_string)
        })
    }
}

/// The `coalesce-time` (milliseconds) that docs/frr.md recommends: the restarted bgpd sends its
/// first updates and End-of-RIB that long after a session comes up, by when the agent's block is
/// back (the acceptance asks for 5 s).
pub const HITLESS_COALESCE_TIME_MS: u64 = 5000;

impl RunningConfig {
    /// What the default instance `router bgp ASN` lacks of the settings that make an FRR restart
    /// withdraw nothing at the peers (docs/frr.md, "FRR restarts without a withdrawal"): each
    /// missing line as it should be written; empty when all are there.
    pub fn hitless_restart_gaps(&self, asn: u32) -> Vec<String> {
        let header = format!("router bgp {asn}");
        let mut out: Vec<String> = [
            "bgp graceful-restart",
            "bgp graceful-restart preserve-fw-state",
        ]
        .into_iter()
        .filter(|l| !self.has(Some(&header), None, l))
        .map(str::to_string)
        .collect();
        let coalesce = self.entries.iter().find_map(|(b, a, l)| {
            (b.as_deref() == Some(header.as_str()) && a.is_none())
                .then(|| l.strip_prefix("coalesce-time "))
                .flatten()
                .and_then(|v| v.trim().parse::<u64>().ok())
        });
        if coalesce.is_none_or(|ms| ms < HITLESS_COALESCE_TIME_MS) {
            out.push(format!("coalesce-time {HITLESS_COALESCE_TIME_MS}"));
        }
        out
    }
}

fn is_block_header(line: &str) -> bool {
    [
        "router ",
        "interface ",
        "vrf ",
        "route-map ",
        "line ",
        "segment-routing",
        "bfd",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

/// What differs between `running` and ovn-route's block for `intent`: each line [`render`] adds
/// that is absent ("missing: ...") and each line it removes that is present ("unexpected: ..."),
/// with its context. Empty when the block is in place.
pub fn missing_lines(intent: &FrrIntent, running: &RunningConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    let mut af: Option<String> = None;
    for cmd in render(intent) {
        let cmd = cmd.as_str();
        match cmd {
            "configure terminal" | "end" => {}
            "exit" => {
                block = None;
                af = None;
            }
            "exit-address-family" => af = None,
            _ if cmd.starts_with("router ") => {
                if !running.has_block(cmd) {
                    out.push(format!("missing: {cmd}"));
                }
                block = Some(cmd.to_string());
            }
            _ if cmd.starts_with("address-family ") => af = Some(cmd.to_string()),
            _ => {
                let ctx = [block.as_deref(), af.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" / ");
                let ctx = if ctx.is_empty() { ctx } else { ctx + " / " };
                match cmd.strip_prefix("no ") {
                    Some(neg) => {
                        if running.has(block.as_deref(), af.as_deref(), neg) {
                            out.push(format!("unexpected: {ctx}{neg}"));
                        }
                    }
                    None => {
                        if !running.has(block.as_deref(), af.as_deref(), cmd) {
                            out.push(format!("missing: {ctx}{cmd}"));
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::{AddressFamilies, ExposeMode};

    const RUNNING: &str = "\
Building configuration...

Current configuration:
!
frr version 8.4.4
hostname x
ip import-table 10
!
router bgp 65001
 bgp router-id 1.1.1.1
 neighbor 192.0.2.2 remote-as 65002
 !
 address-family ipv4 unicast
  redistribute table 10
  import vrf bgp-vrf
 exit-address-family
 !
 address-family ipv6 unicast
  import vrf bgp-vrf
 exit-address-family
exit
!
router bgp 65001 vrf bgp-vrf
 bgp router-id 1.1.1.1
 !
 address-family ipv4 unicast
  redistribute kernel
 exit-address-family
 !
 address-family ipv6 unicast
  redistribute connected
 exit-address-family
exit
!
end
";

    #[test]
    fn parses_contexts() {
        let rc = RunningConfig::parse(RUNNING);
        assert!(rc.has(None, None, "ip import-table 10"));
        assert!(rc.has(
            Some("router bgp 65001"),
            Some("address-family ipv4 unicast"),
            "redistribute table 10"
        ));
        assert!(!rc.has(
            Some("router bgp 65001 vrf bgp-vrf"),
            Some("address-family ipv4 unicast"),
            "redistribute table 10"
        ));
        assert!(rc.has_block("router bgp 65001 vrf bgp-vrf"));
        assert_eq!(rc.router_id("router bgp 65001").as_deref(), Some("1.1.1.1"));
    }

    #[test]
    fn hitless_restart_settings() {
        let rc = RunningConfig::parse(RUNNING);
        assert_eq!(
            rc.hitless_restart_gaps(65001),
            [
                "bgp graceful-restart",
                "bgp graceful-restart preserve-fw-state",
                "coalesce-time 5000"
            ]
        );
        let with = RUNNING.replace(
            " bgp router-id 1.1.1.1\n neighbor",
            " bgp router-id 1.1.1.1\n coalesce-time 4000\n bgp graceful-restart\n \
             bgp graceful-restart preserve-fw-state\n neighbor",
        );
        let rc = RunningConfig::parse(&with);
        assert_eq!(rc.hitless_restart_gaps(65001), ["coalesce-time 5000"]);
        let rc = RunningConfig::parse(&with.replace("coalesce-time 4000", "coalesce-time 5000"));
        assert!(rc.hitless_restart_gaps(65001).is_empty());
        // Only the default instance counts.
        assert_eq!(rc.hitless_restart_gaps(65002).len(), 3);
    }

    #[test]
    fn reports_differences() {
        let rc = RunningConfig::parse(RUNNING);
        let mut i = FrrIntent {
            asn: 65001,
            router_id: Some("1.1.1.1".parse().unwrap()),
            vrf: None,
            table_id: 10,
            families: AddressFamilies::IPV4,
            mode: ExposeMode::RoutesKernel,
        };
        assert!(missing_lines(&i, &rc).is_empty());
        i.vrf = Some("bgp-vrf".into());
        i.families = AddressFamilies::BOTH;
        assert_eq!(
            missing_lines(&i, &rc),
            [
                "missing: router bgp 65001 vrf bgp-vrf / address-family ipv6 unicast / redistribute kernel",
                "unexpected: router bgp 65001 vrf bgp-vrf / address-family ipv6 unicast / redistribute connected",
            ]
        );
    }
}
