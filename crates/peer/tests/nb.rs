//! The applier and the controller against a real NB ovsdb-server (no northd needed): racing
//! clients end with exactly one pair of ports; the controller converges, adopts what is there
//! and never touches unmarked rows.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use ovn_route_lab::{skip_unless_root, OvsdbServer, NB_SCHEMA};
use ovn_route_peer::apply::edit_network;
use ovn_route_peer::controller::{self, session_config, ControllerConfig};
use ovn_route_peer::snapshot::is_marked;
use ovn_route_peer::{read, Declaration, Snapshot, Status};
use ovsdb::{Remote, Session, Uuid};

fn nbctl(server: &OvsdbServer, args: &[&str]) -> String {
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
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Networks lr1..lrN: an internal port 10.0.i.1/24 each, and an unmarked route on lr1.
fn topology(server: &OvsdbServer, n: usize) {
    nbctl(server, &["init"]);
    for i in 1..=n {
        let lr = format!("lr{i}");
        nbctl(server, &["lr-add", &lr]);
        nbctl(
            server,
            &[
                "lrp-add",
                &lr,
                &format!("lr{i}-int"),
                &format!("00:00:00:00:01:{i:02x}"),
                &format!("10.0.{i}.1/24"),
            ],
        );
    }
    nbctl(
        server,
        &["lr-route-add", "lr1", "192.0.2.0/24", "10.0.1.254"],
    );
}

async fn session(server: &OvsdbServer) -> Session {
    let s = Session::start(session_config(
        Remote::parse_list(&server.unix_remote()).unwrap(),
    ));
    s.wait_connected().await;
    s
}

fn router(snap: &Snapshot, name: &str) -> Uuid {
    *snap.routers.iter().find(|(_, r)| r.name == name).unwrap().0
}

/// Waits until the replica satisfies `f` (fails after a generous deadline, never on timing).
async fn wait_for(s: &Session, what: &str, f: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let snap = s.read(read::snapshot);
        if f(&snap) {
            return snap;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {snap:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn marked_ports(s: &Snapshot) -> Vec<String> {
    let mut v: Vec<String> = s
        .ports
        .values()
        .filter(|p| is_marked(&p.external_ids))
        .map(|p| p.name.clone())
        .collect();
    v.sort();
    v
}

fn in_sync(s: &Snapshot) -> bool {
    ovn_route_peer::diff(s, &ovn_route_peer::plan(s)).is_empty()
}

async fn put(s: &Session, router: Uuid, name: &str, target: &str) -> Status {
    let mut events = s.subscribe();
    let name2 = name.to_string();
    let (_, plan) = edit_network(s, &mut events, router, |_, r| {
        r.set_declaration(&name2, &Declaration::local("default", target));
        Ok(())
    })
    .await
    .unwrap();
    plan.status(router, name).unwrap().clone()
}

async fn remove(s: &Session, router: Uuid, name: &str) {
    let mut events = s.subscribe();
    edit_network(s, &mut events, router, |_, r| {
        assert!(r.remove_declaration(name));
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_clients_end_with_exactly_one_pair() {
    if skip_unless_root("racing_clients_end_with_exactly_one_pair") {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter("ovn_route_peer=debug,ovsdb=info")
        .with_test_writer()
        .try_init();
    let server = OvsdbServer::start(NB_SCHEMA).unwrap();
    topology(&server, 2);
    let (s1, s2) = (session(&server).await, session(&server).await);
    let snap = s1.read(read::snapshot);
    let (a, b) = (router(&snap, "lr1"), router(&snap, "lr2"));
    for round in 0..5 {
        let (sa, sb) = tokio::join!(put(&s1, a, "to-b", "lr2"), put(&s2, b, "to-a", "lr1"));
        // Whoever wrote second saw the first: at least one reports created.
        assert!(
            sa == Status::Created || sb == Status::Created,
            "round {round}: {sa:?} {sb:?}"
        );
        let snap = wait_for(&s1, "both declarations", |s| {
            s.routers[&a].declaration("to-b").is_some()
                && s.routers[&b].declaration("to-a").is_some()
        })
        .await;
        assert_eq!(
            marked_ports(&snap),
            ["ovnr-lr1-peer-to-b", "ovnr-lr2-peer-to-a"],
            "round {round}"
        );
        assert!(in_sync(&snap), "round {round}");
        let (ra, rb) = (snap.routers[&a].clone(), snap.routers[&b].clone());
        let ours = |r: &ovn_route_peer::Router| {
            r.static_routes
                .iter()
                .filter(|u| is_marked(&snap.routes[u].external_ids))
                .count()
        };
        assert_eq!((ours(&ra), ours(&rb)), (1, 1));
        tokio::join!(remove(&s1, a, "to-b"), remove(&s2, b, "to-a"));
        let snap = wait_for(&s1, "declarations gone", |s| {
            s.routers[&a].declaration("to-b").is_none()
                && s.routers[&b].declaration("to-a").is_none()
        })
        .await;
        assert!(marked_ports(&snap).is_empty(), "round {round}");
        assert!(
            !snap.routes.values().any(|r| is_marked(&r.external_ids)),
            "round {round}"
        );
    }
    // The unmarked route is still there.
    assert!(nbctl(&server, &["lr-route-list", "lr1"]).contains("192.0.2.0/24"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_converges_adopts_and_repairs() {
    if skip_unless_root("controller_converges_adopts_and_repairs") {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter("ovn_route_peer=debug,ovsdb=info")
        .with_test_writer()
        .try_init();
    let server = OvsdbServer::start(NB_SCHEMA).unwrap();
    topology(&server, 4);
    let s = session(&server).await;
    let snap = s.read(read::snapshot);
    let r: BTreeMap<usize, Uuid> = (1..=4)
        .map(|i| (i, router(&snap, &format!("lr{i}"))))
        .collect();
    // Declarations written straight into the NB (as another tool would), no objects.
    for (from, to) in [(1, 2), (2, 1), (1, 3), (3, 1), (4, 1)] {
        let key = format!("external_ids:\"ovn-route:peer:to-{to}\"");
        let value = Declaration::local("default", &format!("lr{to}"))
            .to_json()
            .replace('"', "\\\"");
        nbctl(
            &server,
            &[
                "set",
                "Logical_Router",
                &format!("lr{from}"),
                &format!("{key}=\"{value}\""),
            ],
        );
    }
    let cs = session(&server).await;
    let cfg = ControllerConfig {
        period: Duration::from_secs(1),
        ..Default::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let ctl = tokio::spawn(async move {
        controller::run(&cs, &cfg, async {
            let _ = stop_rx.await;
        })
        .await
    });
    let snap = wait_for(&s, "two relationships", |x| {
        marked_ports(x).len() == 4 && in_sync(x)
    })
    .await;
    let p = ovn_route_peer::plan(&snap);
    assert_eq!(p.status(r[&4], "to-1"), Some(&Status::Pending));
    // Drift: delete one of our ports by hand; the controller puts it back.
    nbctl(&server, &["lrp-del", "ovnr-lr1-peer-to-2"]);
    wait_for(&s, "repair", |x| marked_ports(x).len() == 4 && in_sync(x)).await;
    stop_tx.send(()).unwrap();
    ctl.await.unwrap().unwrap();
    assert!(nbctl(&server, &["lr-route-list", "lr1"]).contains("192.0.2.0/24"));
}
