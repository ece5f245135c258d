//! `ssl:` remotes against a real ovsdb-server with certificates from the lab's PKI.

mod common;

use std::time::Duration;

use common::*;
use ovn_route_lab::{OvsdbServer, Pki, NB_SCHEMA};
use ovsdb::{Atom, Datum, Operation, Session};

const DB: &str = "OVN_Northbound";

fn tls_server() -> (Pki, OvsdbServer) {
    let pki = Pki::new().expect("PKI");
    let server = OvsdbServer::builder(NB_SCHEMA)
        .ssl(pki.server())
        .start()
        .expect("ovsdb-server with pssl:");
    (pki, server)
}

#[tokio::test(flavor = "multi_thread")]
async fn ssl_remote_replicates() {
    if skip("ssl_remote_replicates") {
        return;
    }
    let (pki, server) = blocking(tls_server).await;
    let remote = server.ssl_remote().unwrap();
    let mut cfg = config(&remote, DB);
    cfg.connect.ssl = Some(ssl(&pki.client()));
    let session = Session::start(cfg);
    tokio::time::timeout(WAIT, session.wait_connected())
        .await
        .expect("connects over TLS");
    session
        .transact(vec![Operation::Insert {
            table: "Logical_Switch".into(),
            row: [("name".to_string(), Datum::from(Atom::string("over-tls")))].into(),
            uuid_name: None,
            uuid: None,
        }])
        .await
        .unwrap();
    let st = session.status();
    assert_eq!(st.remote.as_deref(), Some(remote.as_str()));
    // The replica equals what ovsdb-client sees over the same TLS endpoint.
    let want = {
        let (remote, client) = (remote.clone(), pki.client());
        blocking(move || norm_db(&dump(&remote, DB, &[], Some(&client)))).await
    };
    wait_replica_eq(&session, &[], &want, "over TLS").await;
    assert_eq!(
        session.read(|r| r.table("Logical_Switch").unwrap().len()),
        1
    );
    drop(server);
}

/// Waits until the session has failed at least twice, then checks it never connected.
async fn refused(session: &Session) -> String {
    let err = wait_status(session, "a connection error", |s| s.last_error.is_some())
        .await
        .last_error
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await; // more attempts, same outcome
    let st = session.status();
    assert_eq!(st.connects, 0, "never connected: {st:?}");
    assert!(!st.connected && !st.synced);
    err
}

#[tokio::test(flavor = "multi_thread")]
async fn ssl_wrong_ca_is_refused_with_a_clear_error() {
    if skip("ssl_wrong_ca_is_refused_with_a_clear_error") {
        return;
    }
    let (pki, server) = blocking(tls_server).await;
    let remote = server.ssl_remote().unwrap();
    let mut cfg = config(&remote, DB);
    cfg.connect.ssl = Some(ssl(&pki.client_trusting_wrong_ca()));
    let session = Session::start(cfg);
    let err = refused(&session).await;
    eprintln!("wrong CA: {err}");
    assert!(err.contains(&remote), "the error names the remote: {err}");
    assert!(
        err.contains("certificate"),
        "the error mentions the certificate: {err}"
    );
    assert!(err.contains("CA"), "the error points at the CA: {err}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn ssl_foreign_client_certificate_is_refused_with_a_clear_error() {
    if skip("ssl_foreign_client_certificate_is_refused_with_a_clear_error") {
        return;
    }
    let (pki, server) = blocking(tls_server).await;
    let remote = server.ssl_remote().unwrap();
    let mut cfg = config(&remote, DB);
    cfg.connect.ssl = Some(ssl(&pki.client_with_foreign_cert()));
    let session = Session::start(cfg);
    let err = refused(&session).await;
    eprintln!("foreign client certificate: {err}");
    assert!(err.contains(&remote), "the error names the remote: {err}");
    assert!(
        err.contains("certificate"),
        "the error mentions the certificate: {err}"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn ssl_missing_files_are_named() {
    if skip("ssl_missing_files_are_named") {
        return;
    }
    let (pki, server) = blocking(tls_server).await;
    let remote = server.ssl_remote().unwrap();
    let mut cfg = config(&remote, DB);
    let mut files = ssl(&pki.client());
    files.ca_cert = pki.dir.join("no-such-ca.pem");
    cfg.connect.ssl = Some(files);
    let session = Session::start(cfg);
    let err = refused(&session).await;
    assert!(
        err.contains(&remote) && err.contains("no-such-ca.pem"),
        "{err}"
    );

    // No TLS files at all for an ssl: remote.
    let session = Session::start(config(&remote, DB));
    let err = refused(&session).await;
    assert!(
        err.contains(&remote) && err.contains("private key"),
        "{err}"
    );
    drop(server);
}
