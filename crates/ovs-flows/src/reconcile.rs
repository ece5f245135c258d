//! Observe, diff, apply: keeping the flows of ours on one bridge equal to the desired set.

use std::collections::BTreeMap;

use crate::error::{Conflict, Error, Result};
use crate::flow::{diff, DesiredFlows, Flow};
use crate::ofctl::Ofctl;

/// What a reconcile did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Flows created.
    pub added: usize,
    /// Flows of ours replaced in place (actions changed).
    pub replaced: usize,
    /// Flows of ours deleted.
    pub deleted: usize,
    /// Flows that already matched.
    pub unchanged: usize,
}

impl FlowStats {
    /// True when the reconcile changed nothing.
    pub fn is_noop(&self) -> bool {
        self.added == 0 && self.replaced == 0 && self.deleted == 0
    }
}

/// Makes the flows with cookie `desired.cookie` on `desired.bridge` exactly `desired.flows`,
/// touching no other flow:
///
/// 1. observe: `dump-flows --no-stats TARGET cookie=C/-1` (one call; all a no-op costs);
/// 2. [`diff`] by slot (priority and match) and actions;
/// 3. for each flow to add, look for a flow of another owner that has its priority and the
///    same or a narrower match in its table (`dump-flows TARGET table=T,MATCH`, filtered by
///    Open vSwitch itself, so it does not depend on our normalization): adding ours would
///    replace theirs, so such a flow is refused ([`Error::ForeignConflict`], after everything
///    else is done);
/// 4. delete the unwanted flows of ours (`del-flows --strict TARGET -`, each line with
///    `cookie=C/-1`, so a foreign flow in the same slot survives), then add the new flows and
///    replace the changed ones (`add-flows TARGET -`; an add replaces the flow in its slot, so
///    a changed flow never disappears);
/// 5. if anything changed, observe again: the bridge must now show exactly the desired flows,
///    else [`Error::NotConverged`] names the flows whose text `ovs-ofctl` prints differently
///    (the next reconcile would otherwise rewrite them forever).
///
/// Between observing and adding (3 to 4) another program could still add a flow to the same
/// slot, and ours would replace it: OpenFlow has no conditional add.
pub fn reconcile(ofctl: &Ofctl, desired: &DesiredFlows) -> Result<FlowStats> {
    let wanted = desired.validate()?;
    let bridge = desired.bridge.as_str();
    let cookie = desired.cookie;
    let observed = ofctl.dump_owned(bridge, cookie)?;
    let plan = diff(desired, &observed);
    let mut stats = FlowStats {
        unchanged: plan.unchanged,
        ..FlowStats::default()
    };
    if plan.is_empty() {
        tracing::debug!(
            bridge,
            cookie,
            unchanged = stats.unchanged,
            "flows up to date"
        );
        return Ok(stats);
    }

    let mut conflicts = Vec::new();
    let mut to_add = Vec::new();
    for flow in plan.to_add {
        match foreign_occupant(ofctl, bridge, cookie, &flow)? {
            Some(theirs) => conflicts.push(Conflict {
                desired: flow,
                theirs,
            }),
            None => to_add.push(flow),
        }
    }

    ofctl.del_flows_strict(bridge, cookie, &plan.to_delete)?;
    stats.deleted = plan.to_delete.len();
    let mut writes = to_add.clone();
    writes.extend(plan.to_replace.iter().cloned());
    ofctl.add_flows(bridge, cookie, &writes)?;
    stats.added = to_add.len();
    stats.replaced = plan.to_replace.len();
    for f in &plan.to_delete {
        tracing::info!(bridge, cookie, flow = %f, "deleted flow");
    }
    for f in &to_add {
        tracing::info!(bridge, cookie, flow = %f, "added flow");
    }
    for f in &plan.to_replace {
        tracing::info!(bridge, cookie, flow = %f, "replaced flow");
    }

    if !stats.is_noop() {
        verify(ofctl, desired, wanted, &conflicts)?;
    }
    if !conflicts.is_empty() {
        for c in &conflicts {
            tracing::warn!(
                bridge,
                cookie,
                flow = %c.desired,
                theirs = %c.theirs.flow,
                their_cookie = c.theirs.cookie,
                "not adding flow: a flow of another owner holds its priority and match"
            );
        }
        return Err(Error::ForeignConflict {
            bridge: bridge.to_string(),
            conflicts,
            stats,
        });
    }
    Ok(stats)
}

/// A flow of another owner at `flow`'s priority whose match is the same as or narrower than
/// `flow`'s, in the same table.
fn foreign_occupant(
    ofctl: &Ofctl,
    bridge: &str,
    cookie: u64,
    flow: &Flow,
) -> Result<Option<crate::DumpedFlow>> {
    let filter = if flow.matches.split(',').any(|f| f.starts_with("table=")) {
        flow.matches.clone()
    } else if flow.matches.is_empty() {
        "table=0".to_string()
    } else {
        format!("table=0,{}", flow.matches)
    };
    Ok(ofctl
        .dump_flows(bridge, Some(&filter))?
        .into_iter()
        .find(|d| d.cookie != cookie && d.flow.priority == flow.priority))
}

/// Re-observes after a change: ours must be exactly the desired flows minus the refused ones.
fn verify(
    ofctl: &Ofctl,
    desired: &DesiredFlows,
    mut wanted: BTreeMap<(u16, String), Flow>,
    refused: &[Conflict],
) -> Result<()> {
    for c in refused {
        wanted.remove(&(c.desired.priority, c.desired.matches.clone()));
    }
    let expected = DesiredFlows {
        bridge: desired.bridge.clone(),
        cookie: desired.cookie,
        flows: wanted.into_values().collect(),
    };
    let after = ofctl.dump_owned(&desired.bridge, desired.cookie)?;
    let check = diff(&expected, &after);
    if check.is_empty() {
        return Ok(());
    }
    let mut missing = check.to_add;
    missing.extend(check.to_replace);
    let unexpected: Vec<Flow> = after
        .into_iter()
        .filter(|f| !expected.flows.contains(&f.normalized()))
        .collect();
    Err(Error::NotConverged {
        bridge: desired.bridge.clone(),
        missing,
        unexpected,
    })
}

/// Deletes every flow of ours (`cookie`, in any table) from `bridge`; returns how many there
/// were. Flows of other owners stay.
pub fn remove_all(ofctl: &Ofctl, bridge: &str, cookie: u64) -> Result<usize> {
    if cookie == 0 || cookie == u64::MAX {
        return Err(Error::InvalidCookie(cookie));
    }
    let ours = ofctl.dump_owned(bridge, cookie)?;
    if ours.is_empty() {
        return Ok(0);
    }
    ofctl.del_owned(bridge, cookie)?;
    tracing::info!(
        bridge,
        cookie,
        count = ours.len(),
        "removed all flows of ours"
    );
    Ok(ours.len())
}

/// True when `bridge` has the OpenFlow port `port`: an OpenFlow port number (what flows use,
/// `Interface.ofport`) or a name (see [`crate::OfPort::is`] for long names). A flow whose port
/// number is missing is accepted by Open vSwitch and never matches; one naming a missing port
/// is rejected.
pub fn patch_port_present(ofctl: &Ofctl, bridge: &str, port: &str) -> Result<bool> {
    Ok(ofctl.ports(bridge)?.iter().any(|p| p.is(port)))
}
