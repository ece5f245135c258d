//! Pure flow types and the flow diff (no I/O).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::error::Error;
use crate::normalize::{normalize_actions, normalize_match};

/// The cookie that marks ovn-route's flows by default (999, as the OVN BGP agent's).
pub const DEFAULT_COOKIE: u64 = 0x3e7;

/// The priority OpenFlow gives a flow added without one (`ovs-ofctl` then prints none).
pub const DEFAULT_PRIORITY: u16 = 32768;

/// Match keys that are flow properties, not match fields: they may not appear in
/// [`Flow::matches`].
const NOT_MATCH_FIELDS: &[&str] = &[
    "cookie",
    "priority",
    "actions",
    "out_port",
    "out_group",
    "idle_timeout",
    "hard_timeout",
    "importance",
    "duration",
    "n_packets",
    "n_bytes",
    "idle_age",
    "hard_age",
];

/// One OpenFlow flow as `ovs-ofctl` writes it, without cookie: a priority, a match and
/// actions. Its slot on a bridge (what OpenFlow replaces on add) is [`Flow::slot`]:
/// priority and match, the table being part of the match (`table=N`, absent for 0).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Flow {
    /// The priority (0..=65535).
    pub priority: u16,
    /// The match, normalized (see [`normalize_match`]), e.g. `ip,in_port=patch-provnet-1`;
    /// empty matches everything.
    pub matches: String,
    /// The actions, normalized (see [`normalize_actions`]), e.g.
    /// `mod_dl_dst:aa:bb:cc:dd:ee:ff,NORMAL`; `drop` for none.
    pub actions: String,
}

impl Flow {
    /// A flow with normalized match and actions (see the [`crate::normalize`] functions).
    pub fn new(priority: u16, matches: &str, actions: &str) -> Flow {
        Flow {
            priority,
            matches: normalize_match(matches),
            actions: normalize_actions(actions),
        }
    }

    /// The same flow with match and actions normalized again (a no-op for flows made by
    /// [`Flow::new`] or parsed from a dump).
    pub fn normalized(&self) -> Flow {
        Flow::new(self.priority, &self.matches, &self.actions)
    }

    /// Its slot: priority and match.
    pub fn slot(&self) -> (u16, &str) {
        (self.priority, &self.matches)
    }

    /// `priority=P[,MATCH]`: the flow's slot in `ovs-ofctl` syntax.
    pub fn slot_text(&self) -> String {
        if self.matches.is_empty() {
            format!("priority={}", self.priority)
        } else {
            format!("priority={},{}", self.priority, self.matches)
        }
    }

    /// The `add-flow(s)` line for this flow marked with `cookie`.
    pub fn add_line(&self, cookie: u64) -> String {
        format!(
            "cookie={cookie:#x},{},actions={}",
            self.slot_text(),
            self.actions
        )
    }

    /// The `del-flows --strict` line deleting this flow's slot only if its cookie is exactly
    /// `cookie`.
    pub fn del_line(&self, cookie: u64) -> String {
        format!("cookie={cookie:#x}/-1,{}", self.slot_text())
    }

    /// The table this flow is in (`table=N` of its match, 0 without).
    pub fn table(&self) -> u8 {
        self.matches
            .split(',')
            .find_map(|f| f.strip_prefix("table="))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0)
    }

    /// Checks that the flow can be written as one `ovs-ofctl` line with no property other than
    /// priority, match and actions.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: String| Error::InvalidFlow {
            flow: self.to_string(),
            reason,
        };
        if self
            .matches
            .chars()
            .chain(self.actions.chars())
            .any(|c| c == '\n' || c == '\r' || c == '\0')
        {
            return Err(invalid("contains a line break".into()));
        }
        for field in self.matches.split(',') {
            let key = field.split('=').next().unwrap_or("").trim();
            if NOT_MATCH_FIELDS.contains(&key) {
                return Err(invalid(format!(
                    "`{key}` is not a match field (priority and cookie are set apart)"
                )));
            }
        }
        if self.actions.trim().is_empty() {
            return Err(invalid("no actions (write `drop`)".into()));
        }
        Ok(())
    }
}

impl fmt::Display for Flow {
    /// The `dump-flows` form: `priority=P,MATCH actions=A`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} actions={}", self.slot_text(), self.actions)
    }
}

/// The flows ovn-route wants on one bridge, all marked with one cookie.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DesiredFlows {
    /// The bridge (e.g. `br-ex`).
    pub bridge: String,
    /// Our cookie, the ownership mark (default [`DEFAULT_COOKIE`]); 0 and `u64::MAX` are
    /// refused (0 is every flow added without a cookie, all ones is reserved by OpenFlow).
    pub cookie: u64,
    /// The flows.
    pub flows: BTreeSet<Flow>,
}

impl DesiredFlows {
    /// No flows on `bridge`, marked with `cookie`.
    pub fn new(bridge: &str, cookie: u64) -> DesiredFlows {
        DesiredFlows {
            bridge: bridge.to_string(),
            cookie,
            flows: BTreeSet::new(),
        }
    }

    /// Adds `flows` (normalized).
    pub fn with(mut self, flows: impl IntoIterator<Item = Flow>) -> DesiredFlows {
        self.flows.extend(flows.into_iter().map(|f| f.normalized()));
        self
    }

    /// Adds one flow (normalized).
    pub fn insert(&mut self, flow: Flow) {
        self.flows.insert(flow.normalized());
    }

    /// Checks the cookie and every flow, and that no two flows share a slot; returns the
    /// normalized flows by slot.
    pub fn validate(&self) -> Result<BTreeMap<(u16, String), Flow>, Error> {
        if self.cookie == 0 || self.cookie == u64::MAX {
            return Err(Error::InvalidCookie(self.cookie));
        }
        let mut by_slot = BTreeMap::new();
        for flow in &self.flows {
            let flow = flow.normalized();
            flow.validate()?;
            let key = (flow.priority, flow.matches.clone());
            if let Some(other) = by_slot.insert(key, flow.clone()) {
                return Err(Error::InvalidFlow {
                    flow: flow.to_string(),
                    reason: format!("same priority and match as `{other}`"),
                });
            }
        }
        Ok(by_slot)
    }
}

/// What to do to turn the observed flows of ours into the desired ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowDiff {
    /// Flows to create: no flow of ours has their slot.
    pub to_add: Vec<Flow>,
    /// Flows of ours whose slot stays but whose actions change: replaced in place by
    /// `add-flow` (OpenFlow's add replaces the flow of the same slot), never deleted first.
    pub to_replace: Vec<Flow>,
    /// Flows of ours that are not wanted any more (deleted by slot and cookie).
    pub to_delete: Vec<Flow>,
    /// How many observed flows already match.
    pub unchanged: usize,
}

impl FlowDiff {
    /// True when nothing is to be done.
    pub fn is_empty(&self) -> bool {
        self.to_add.is_empty() && self.to_replace.is_empty() && self.to_delete.is_empty()
    }
}

/// The difference between the desired flows and the observed flows of ours (both sides are
/// normalized first; flows are compared by slot, then by actions). Pure. If `desired` has two
/// flows with one slot, the last (in set order) wins; [`DesiredFlows::validate`] refuses that.
pub fn diff<'a>(desired: &DesiredFlows, observed: impl IntoIterator<Item = &'a Flow>) -> FlowDiff {
    let mut want: BTreeMap<(u16, String), Flow> = BTreeMap::new();
    for f in &desired.flows {
        let f = f.normalized();
        want.insert((f.priority, f.matches.clone()), f);
    }
    let mut out = FlowDiff::default();
    let mut seen: BTreeSet<(u16, String)> = BTreeSet::new();
    for o in observed {
        let o = o.normalized();
        let key = (o.priority, o.matches.clone());
        if !seen.insert(key.clone()) {
            // Two observed flows normalize to one slot: keep the first, touch neither.
            continue;
        }
        match want.get(&key) {
            Some(w) if w.actions == o.actions => out.unchanged += 1,
            Some(w) => out.to_replace.push(w.clone()),
            None => out.to_delete.push(o),
        }
    }
    out.to_add = want
        .into_iter()
        .filter(|(k, _)| !seen.contains(k))
        .map(|(_, f)| f)
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(p: u16, m: &str, a: &str) -> Flow {
        Flow::new(p, m, a)
    }

    #[test]
    fn lines_for_ovs_ofctl() {
        let flow = f(
            900,
            r#"ip,in_port="patch-provnet-1""#,
            "mod_dl_dst:AA:BB:CC:DD:EE:FF,NORMAL",
        );
        assert_eq!(
            flow.add_line(0x3e7),
            "cookie=0x3e7,priority=900,ip,in_port=patch-provnet-1,actions=mod_dl_dst:aa:bb:cc:dd:ee:ff,NORMAL"
        );
        assert_eq!(
            flow.del_line(0x3e7),
            "cookie=0x3e7/-1,priority=900,ip,in_port=patch-provnet-1"
        );
        assert_eq!(
            flow.to_string(),
            "priority=900,ip,in_port=patch-provnet-1 actions=mod_dl_dst:aa:bb:cc:dd:ee:ff,NORMAL"
        );
        let any = f(5, "", "");
        assert_eq!(any.add_line(1), "cookie=0x1,priority=5,actions=drop");
        assert_eq!(any.del_line(1), "cookie=0x1/-1,priority=5");
        assert_eq!(any.table(), 0);
        assert_eq!(f(5, "table=7,ip", "drop").table(), 7);
    }

    #[test]
    fn diff_adds_replaces_deletes_and_keeps() {
        let desired = DesiredFlows::new("br-ex", DEFAULT_COOKIE).with([
            f(900, "ip,in_port=p1", "mod_dl_dst:aa:aa:aa:aa:aa:aa,NORMAL"),
            f(
                900,
                "ipv6,in_port=p1",
                "mod_dl_dst:aa:aa:aa:aa:aa:aa,NORMAL",
            ),
            f(900, "ip,in_port=p2", "NORMAL"),
        ]);
        let observed = [
            // Same as desired but printed by ovs-ofctl.
            f(
                900,
                r#"ip,in_port="p1""#,
                "mod_dl_dst:aa:aa:aa:aa:aa:aa,NORMAL",
            ),
            // Other MAC: replaced.
            f(
                900,
                "ipv6,in_port=p1",
                "mod_dl_dst:bb:bb:bb:bb:bb:bb,NORMAL",
            ),
            // Not wanted.
            f(900, "ip,in_port=p3", "NORMAL"),
        ];
        let d = diff(&desired, &observed);
        assert_eq!(d.unchanged, 1);
        assert_eq!(d.to_add, vec![f(900, "ip,in_port=p2", "NORMAL")]);
        assert_eq!(
            d.to_replace,
            vec![f(
                900,
                "ipv6,in_port=p1",
                "mod_dl_dst:aa:aa:aa:aa:aa:aa,NORMAL"
            )]
        );
        assert_eq!(d.to_delete, vec![f(900, "ip,in_port=p3", "NORMAL")]);
        assert!(!d.is_empty());

        let same: Vec<Flow> = desired.flows.iter().cloned().collect();
        let d = diff(&desired, &same);
        assert!(d.is_empty());
        assert_eq!(d.unchanged, 3);

        let empty = DesiredFlows::new("br-ex", DEFAULT_COOKIE);
        let d = diff(&empty, &same);
        assert_eq!(d.to_delete.len(), 3);
    }

    #[test]
    fn validation() {
        let ok = DesiredFlows::new("br-ex", DEFAULT_COOKIE).with([f(1, "ip", "NORMAL")]);
        assert_eq!(ok.validate().unwrap().len(), 1);
        for cookie in [0, u64::MAX] {
            let bad = DesiredFlows::new("br-ex", cookie);
            assert!(matches!(bad.validate(), Err(Error::InvalidCookie(_))));
        }
        let dup = DesiredFlows::new("br-ex", 7)
            .with([f(1, "ip", "NORMAL"), f(1, "dl_type=0x0800", "drop")]);
        let e = dup.validate().unwrap_err();
        assert!(e.to_string().contains("same priority and match"), "{e}");
        for m in ["ip,priority=5", "cookie=0x1", "ip,idle_timeout=5"] {
            let bad = DesiredFlows::new("br-ex", 7).with([f(1, m, "NORMAL")]);
            assert!(
                matches!(bad.validate(), Err(Error::InvalidFlow { .. })),
                "{m}"
            );
        }
        let newline = DesiredFlows::new("br-ex", 7).with([Flow {
            priority: 1,
            matches: "ip".into(),
            actions: "NORMAL\ncookie=0x5,actions=drop".into(),
        }]);
        assert!(matches!(newline.validate(), Err(Error::InvalidFlow { .. })));
    }
}
