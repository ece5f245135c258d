//! OVSDB locks (RFC 7047 4.1.8-4.1.11) between two sessions on one real standalone ovsdb-server.

mod common;

use std::time::Duration;

use common::*;
use ovn_route_lab::{OvsdbServer, NB_SCHEMA};
use ovsdb::{Error, Operation, Session};
use tokio::sync::watch;

const DB: &str = "OVN_Northbound";
const LOCK: &str = "ovn_northd";

async fn wait_lock(rx: &mut watch::Receiver<bool>, held: bool, what: &str) {
    let ok = tokio::time::timeout(WAIT, rx.wait_for(|h| *h == held)).await;
    assert!(matches!(ok, Ok(Ok(_))), "timed out waiting for {what}");
}

/// What the server thinks: `assert` succeeds only for the lock's owner.
async fn owns(session: &Session) -> bool {
    match session.transact(vec![Operation::Assert(LOCK.into())]).await {
        Ok(_) => true,
        Err(Error::Transaction { error, .. }) if error == "not owner" => false,
        Err(e) => panic!("assert transaction failed oddly: {e}"),
    }
}

/// Both the server and the watch receivers agree on the owner.
async fn exactly_one_owner(
    a: &Session,
    ra: &watch::Receiver<bool>,
    b: &Session,
    rb: &watch::Receiver<bool>,
    a_owns: bool,
) {
    assert_eq!(owns(a).await, a_owns, "server: session A owns the lock");
    assert_eq!(owns(b).await, !a_owns, "server: session B owns the lock");
    assert_eq!(*ra.borrow(), a_owns, "A's receiver");
    assert_eq!(*rb.borrow(), !a_owns, "B's receiver");
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_steal_unlock_between_two_sessions() {
    if skip("lock_steal_unlock_between_two_sessions") {
        return;
    }
    let server = blocking(|| OvsdbServer::start(NB_SCHEMA).unwrap()).await;
    let remote = server.unix_remote();
    let a = Session::start(config(&remote, DB));
    let b = Session::start(config(&remote, DB));
    for s in [&a, &b] {
        tokio::time::timeout(WAIT, s.wait_connected())
            .await
            .unwrap();
    }
    let mut a_events = a.subscribe();

    // A locks first and gets it; B waits in line.
    let mut ra = a.lock(LOCK);
    wait_lock(&mut ra, true, "A to get the lock").await;
    let mut rb = b.lock(LOCK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    exactly_one_owner(&a, &ra, &b, &rb, true).await;

    // B steals it: A hears "stolen".
    let mut rb2 = b.steal(LOCK);
    wait_lock(&mut rb2, true, "B to hold the stolen lock").await;
    wait_lock(&mut ra, false, "A to lose the lock").await;
    next_event(&mut a_events, "A's Lock event", |e| {
        matches!(e, ovsdb::Event::Lock { held: false, .. })
    })
    .await;
    exactly_one_owner(&a, &ra, &b, &rb, false).await;

    // B unlocks: A, still waiting for the lock, gets it back ("locked" notification).
    b.unlock(LOCK);
    wait_lock(&mut rb, false, "B's receiver to say released").await;
    wait_lock(&mut ra, true, "A to get the lock back after B's unlock").await;
    next_event(&mut a_events, "A's Lock event", |e| {
        matches!(e, ovsdb::Event::Lock { held: true, .. })
    })
    .await;
    exactly_one_owner(&a, &ra, &b, &rb, true).await;

    // A unlocks; nobody wants it: nobody holds it.
    a.unlock(LOCK);
    wait_lock(&mut ra, false, "A's receiver to say released").await;
    // (The receiver says "released" at once; the server learns it a moment later.)
    wait_for("the server to see the lock free", || async {
        (!owns(&a).await && !owns(&b).await).then_some(())
    })
    .await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_is_taken_over_when_the_holder_goes_away() {
    if skip("lock_is_taken_over_when_the_holder_goes_away") {
        return;
    }
    let server = blocking(|| OvsdbServer::start(NB_SCHEMA).unwrap()).await;
    let remote = server.unix_remote();
    let a = Session::start(config(&remote, DB));
    let b = Session::start(config(&remote, DB));
    for s in [&a, &b] {
        tokio::time::timeout(WAIT, s.wait_connected())
            .await
            .unwrap();
    }
    let mut ra = a.lock(LOCK);
    wait_lock(&mut ra, true, "A to get the lock").await;
    let mut rb = b.lock(LOCK);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!*rb.borrow());
    drop(a); // its connection closes
    wait_lock(&mut rb, true, "B to get the lock once A is gone").await;
    assert!(owns(&b).await);
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_is_requested_again_after_a_reconnect() {
    if skip("lock_is_requested_again_after_a_reconnect") {
        return;
    }
    let server = blocking(|| OvsdbServer::start(NB_SCHEMA).unwrap()).await;
    let remote = server.unix_remote();
    let a = Session::start(config(&remote, DB));
    tokio::time::timeout(WAIT, a.wait_connected())
        .await
        .unwrap();
    let mut ra = a.lock(LOCK);
    wait_lock(&mut ra, true, "A to get the lock").await;
    let st0 = a.status();
    let mut events = a.subscribe();
    let server = blocking(move || {
        let mut s = server;
        s.kill();
        s
    })
    .await;
    // The server released the lock with the connection: the receiver says so at once.
    wait_lock(
        &mut ra,
        false,
        "A's receiver to say lost with the connection",
    )
    .await;
    next_event(&mut events, "Lock lost", |e| {
        matches!(e, ovsdb::Event::Lock { held: false, .. })
    })
    .await;
    let server = blocking(move || {
        let mut s = server;
        s.restart().unwrap();
        s
    })
    .await;
    wait_status(&a, "the reconnect", |s| {
        s.connected && s.connects > st0.connects
    })
    .await;
    // The lock is lost with the connection and asked for again on the new one.
    wait_for("the server to grant the lock again", || async {
        owns(&a).await.then_some(())
    })
    .await;
    wait_lock(&mut ra, true, "A's receiver after the reconnect").await;
    next_event(&mut events, "Lock granted", |e| {
        matches!(e, ovsdb::Event::Lock { held: true, .. })
    })
    .await;
    drop(server);
}
