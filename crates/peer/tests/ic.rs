//! Two availability zones creating transit switches at the same moment, against a real IC-NB
//! ovsdb-server: both plan from the same (empty) view and write; the `wait` on every transit
//! switch makes the second transaction fail, it plans again from the new view, and the end
//! state has exactly one transit switch per name and distinct link subnets.

use std::collections::{BTreeMap, BTreeSet};

use ovn_route_lab::{skip_unless_root, OvsdbServer, IC_NB_SCHEMA};
use ovn_route_peer::ic::{ic_session_config, ic_transaction, transit_switches};
use ovn_route_peer::remote::{
    integration_key, plan_remote, Integration, RemoteNb, LINK_SUBNET_KEY,
};
use ovn_route_peer::snapshot::{Router, Snapshot};
use ovn_route_peer::PeerError;
use ovsdb::{Remote, Session, Uuid};

/// AZ `az` with router `lr` declaring remote peers `peers` through integration `ic1`.
fn az(az: &str, peers: &[&str]) -> (Snapshot, RemoteNb) {
    let mut s = Snapshot::default();
    let mut router = Router {
        name: format!("lr-{az}"),
        ..Default::default()
    };
    for p in peers {
        router.external_ids.insert(
            format!("ovn-route:peer:{p}"),
            r#"{"type":"remote","target_integration":"ic1"}"#.into(),
        );
    }
    s.routers.insert(Uuid::from_u64_pair(1, 1), router);
    let mut nb = RemoteNb {
        az: az.into(),
        ..Default::default()
    };
    let mut i = Integration::new("unix:/unused", "unix:/unused");
    i.gateway_chassis = vec!["gw".into()];
    nb.external_ids.insert(integration_key("ic1"), i.to_json());
    (s, nb)
}

async fn session(server: &OvsdbServer) -> Session {
    let s = Session::start(ic_session_config(
        Remote::parse_list(&server.unix_remote()).unwrap(),
        None,
    ));
    s.wait_connected().await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_azs_make_one_transit_switch_and_distinct_subnets() {
    if skip_unless_root("racing_azs_make_one_transit_switch_and_distinct_subnets") {
        return;
    }
    let server = OvsdbServer::start(IC_NB_SCHEMA).unwrap();
    let (s1, s2) = (session(&server).await, session(&server).await);
    let az1 = az("az1", &["shared", "a"]);
    let az2 = az("az2", &["shared", "b"]);
    // Both plan from the same empty view...
    let view = s1.read(transit_switches);
    assert!(view.is_empty());
    let ics = BTreeMap::from([("ic1".to_string(), Ok(view.clone()))]);
    let p1 = plan_remote(&az1.0, &az1.1, &ics);
    let p2 = plan_remote(&az2.0, &az2.1, &ics);
    // ...and would take the same subnets.
    assert_eq!(p1.ic_ops["ic1"].len(), 2);
    assert_eq!(p2.ic_ops["ic1"].len(), 2);
    // Both write at the same moment: exactly one commits, the other's wait fails.
    let (r1, r2) = tokio::join!(
        s1.transact(ic_transaction(&view, &p1.ic_ops["ic1"])),
        s2.transact(ic_transaction(&view, &p2.ic_ops["ic1"])),
    );
    let results = [r1.map_err(PeerError::from), r2.map_err(PeerError::from)];
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let loser = results.iter().position(|r| r.is_err()).unwrap();
    assert!(results[loser].as_ref().unwrap_err().is_conflict());
    // The loser plans again from what is there now (until its replica shows the winner's rows).
    let (ls, lz) = if loser == 0 { (&s1, &az1) } else { (&s2, &az2) };
    let mut view = ls.read(transit_switches);
    while view.len() < 2 {
        let mut ev = ls.subscribe();
        view = ls.read(transit_switches);
        if view.len() < 2 {
            ev.recv().await;
            view = ls.read(transit_switches);
        }
    }
    let p = plan_remote(
        &lz.0,
        &lz.1,
        &BTreeMap::from([("ic1".to_string(), Ok(view.clone()))]),
    );
    ls.transact(ic_transaction(&view, &p.ic_ops["ic1"]))
        .await
        .unwrap();
    let out = server
        .client(&[
            "dump",
            &server.unix_remote(),
            "OVN_IC_Northbound",
            "Transit_Switch",
            "name",
        ])
        .unwrap();
    let mut names: Vec<&str> = out
        .lines()
        .map(|l| l.trim().trim_matches('"'))
        .filter(|l| l.starts_with("ts-"))
        .collect();
    names.sort();
    assert_eq!(names, ["ts-a", "ts-b", "ts-shared"], "{out}");
    // Distinct subnets, and the shared one declared by both AZs.
    let mut view = s1.read(transit_switches);
    while view.len() < 3 {
        let mut ev = s1.subscribe();
        view = s1.read(transit_switches);
        if view.len() < 3 {
            ev.recv().await;
            view = s1.read(transit_switches);
        }
    }
    let subnets: BTreeSet<&String> = view
        .values()
        .map(|t| &t.external_ids[LINK_SUBNET_KEY])
        .collect();
    assert_eq!(subnets.len(), 3, "{view:?}");
    let shared = view.values().find(|t| t.name == "ts-shared").unwrap();
    assert_eq!(shared.azs().into_iter().collect::<Vec<_>>(), ["az1", "az2"]);
}
