//! Integration tests of the lab harness against the real Debian daemons. They need root; as
//! another user each test prints why it is skipped and passes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ovn_route_lab::{
    cleanup_stale, connect, free_port, run, skip_unless_root, BgpConfig, ChassisSpec, FrrRouter,
    Lab, LabError, Netns, OvsdbCluster, OvsdbServer, Pki, NB_SCHEMA,
};

const T: Duration = Duration::from_secs(30);

fn nbctl(remote: &str, extra: &[String], args: &[&str]) -> ovn_route_lab::Result<String> {
    run(Command::new("ovn-nbctl")
        .arg(format!("--db={remote}"))
        .arg("--timeout=5")
        .args(extra)
        .args(args))
}

fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

#[test]
fn standalone_server_start_kill_restart() {
    if skip_unless_root("standalone_server_start_kill_restart") {
        return;
    }
    let mut s = OvsdbServer::builder(NB_SCHEMA)
        .name("nb")
        .tcp(true)
        .start()
        .unwrap();
    assert_eq!(s.db_name(), "OVN_Northbound");
    let unix = s.unix_remote();
    let tcp = s.tcp_remote().unwrap();
    assert!(unix.starts_with("unix:/tmp/ovnr-"), "{unix}");
    assert!(tcp.starts_with("tcp:127.0.0.1:"), "{tcp}");
    assert!(s.ssl_remote().is_none());
    nbctl(&unix, &[], &["init"]).unwrap();
    nbctl(&tcp, &[], &["ls-add", "sw0"]).unwrap();
    assert!(nbctl(&unix, &[], &["ls-list"]).unwrap().contains("sw0"));

    let pid = s.pid().unwrap();
    s.kill();
    assert!(s.pid().is_none());
    assert!(!pid_alive(pid));
    assert!(nbctl(&tcp, &[], &["ls-list"]).is_err());

    // While it is down, another server can serve the same database file.
    {
        let other = OvsdbServer::with_db(s.db_path())
            .name("copy")
            .tcp(true)
            .start()
            .unwrap();
        assert_eq!(other.db_name(), "OVN_Northbound");
        assert_ne!(other.tcp_remote().unwrap(), tcp);
        let out = nbctl(&other.tcp_remote().unwrap(), &[], &["ls-list"]).unwrap();
        assert!(out.contains("sw0"), "{out}");
    }

    s.restart().unwrap();
    assert_ne!(s.pid(), Some(pid));
    assert_eq!(s.tcp_remote().unwrap(), tcp, "same port after restart");
    let out = nbctl(&tcp, &[], &["ls-list"]).unwrap();
    assert!(out.contains("sw0"), "data survives a restart: {out}");
    assert!(s.log_path().exists());

    let dir = s.dir().to_path_buf();
    let pid = s.pid().unwrap();
    drop(s);
    assert!(!pid_alive(pid));
    assert!(!dir.exists(), "temp dir removed on drop");
}

#[test]
fn tcp_and_ssl_ports_are_read_from_the_log_and_kept_on_restart() {
    if skip_unless_root("tcp_and_ssl_ports_are_read_from_the_log_and_kept_on_restart") {
        return;
    }
    let pki = Pki::new().unwrap();
    let client = pki.client().args();
    let mut s = OvsdbServer::builder(NB_SCHEMA)
        .tcp(true)
        .ssl(pki.server())
        .start()
        .unwrap();
    let (tcp, ssl) = (s.tcp_remote().unwrap(), s.ssl_remote().unwrap());
    let (tcp_port, ssl_port) = (s.tcp_port().unwrap(), s.ssl_port().unwrap());
    assert_ne!(tcp_port, ssl_port);
    assert_eq!(tcp, format!("tcp:127.0.0.1:{tcp_port}"));
    assert_eq!(ssl, format!("ssl:127.0.0.1:{ssl_port}"));
    // Each port speaks what its remote says: plain JSON-RPC on tcp:, TLS on ssl:.
    nbctl(&tcp, &[], &["init"]).unwrap();
    nbctl(&ssl, &client, &["ls-add", "sw0"]).unwrap();
    assert!(nbctl(&tcp, &[], &["ls-list"]).unwrap().contains("sw0"));

    for _ in 0..2 {
        s.restart().unwrap();
        assert_eq!(s.tcp_port(), Some(tcp_port));
        assert_eq!(s.ssl_port(), Some(ssl_port));
        assert!(nbctl(&tcp, &[], &["ls-list"]).unwrap().contains("sw0"));
        assert!(nbctl(&ssl, &client, &["ls-list"]).unwrap().contains("sw0"));
    }
}

#[test]
fn restart_names_the_port_another_process_took() {
    if skip_unless_root("restart_names_the_port_another_process_took") {
        return;
    }
    let mut s = OvsdbServer::builder(NB_SCHEMA).tcp(true).start().unwrap();
    let port = s.tcp_port().unwrap();
    s.kill();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let t = Instant::now();
    let err = s.restart().unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "reported quickly: {:?}",
        t.elapsed()
    );
    assert!(msg.contains(&format!("port {port}")), "{msg}");
    assert!(msg.contains(&s.log_path().display().to_string()), "{msg}");
    match &err {
        LabError::Io { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse, "{msg}")
        }
        other => panic!("expected LabError::Io, got {other:?}"),
    }
    assert!(s.pid().is_none(), "left stopped");

    drop(squatter);
    s.restart().unwrap();
    assert_eq!(s.tcp_port(), Some(port));
    nbctl(&s.tcp_remote().unwrap(), &[], &["init"]).unwrap();
}

#[test]
fn free_ports_are_locked_against_other_processes() {
    let ports: Vec<u16> = (0..20).map(|_| free_port().unwrap()).collect();
    let mut sorted = ports.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ports.len(), "{ports:?}");
    for port in &ports[..3] {
        assert!((20000..32000).contains(port), "{port}");
        // Another process cannot take the lock while this one holds it.
        let lock = format!("/tmp/ovnr-ports/{port}.lock");
        let status = Command::new("flock")
            .args(["-n", &lock, "true"])
            .status()
            .unwrap();
        assert!(!status.success(), "{lock} is not locked");
    }
}

#[test]
fn command_errors_name_command_status_and_stderr() {
    let err = run(Command::new("sh").args(["-c", "echo boom >&2; exit 3"])).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("sh -c"), "{msg}");
    assert!(msg.contains("exit status: 3"), "{msg}");
    assert!(msg.contains("boom"), "{msg}");
    let err =
        ovn_route_lab::run_with_timeout(Command::new("sleep").arg("5"), Duration::from_millis(200))
            .unwrap_err();
    assert!(matches!(err, LabError::CommandTimeout { .. }), "{err}");
}

#[test]
fn ssl_server_accepts_right_ca_and_rejects_wrong_ca() {
    if skip_unless_root("ssl_server_accepts_right_ca_and_rejects_wrong_ca") {
        return;
    }
    let pki = Pki::new().unwrap();
    for f in [
        &pki.ca_cert,
        &pki.server_cert,
        &pki.client_key,
        &pki.other_ca_cert,
    ] {
        assert!(f.exists(), "{}", f.display());
    }
    let s = OvsdbServer::builder(NB_SCHEMA)
        .ssl(pki.server())
        .start()
        .unwrap();
    let ssl = s.ssl_remote().unwrap();
    assert!(ssl.starts_with("ssl:127.0.0.1:"));
    nbctl(&s.unix_remote(), &[], &["init"]).unwrap();
    nbctl(&ssl, &pki.client().args(), &["ls-add", "sw-ssl"]).unwrap();
    assert!(nbctl(&ssl, &pki.client().args(), &["ls-list"])
        .unwrap()
        .contains("sw-ssl"));
    // A client that does not trust the server's CA, and a client whose certificate the server
    // does not trust: both fail (nbctl gives up after its --timeout); run them in parallel.
    let wrong_ca = pki.client_trusting_wrong_ca().args();
    let foreign = pki.client_with_foreign_cert().args();
    let (ssl2, ssl3) = (ssl.clone(), ssl.clone());
    let a = std::thread::spawn(move || {
        run(Command::new("ovn-nbctl")
            .arg(format!("--db={ssl2}"))
            .arg("--timeout=2")
            .args(wrong_ca)
            .arg("ls-list"))
    });
    let b = std::thread::spawn(move || {
        run(Command::new("ovn-nbctl")
            .arg(format!("--db={ssl3}"))
            .arg("--timeout=2")
            .args(foreign)
            .arg("ls-list"))
    });
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    let (a, b) = (a.unwrap_err().to_string(), b.unwrap_err().to_string());
    assert!(a.contains("certificate verify failed"), "{a}");
    assert!(b.contains("ovn-nbctl"), "{b}");
    // The server refused the certificate signed by the unrelated CA.
    ovn_route_lab::wait_until("server to log the rejected certificate", T, |last| {
        *last = std::fs::read_to_string(s.log_path()).unwrap_or_default();
        Ok(last
            .lines()
            .any(|l| l.contains("SSL_accept") && l.contains("certificate verify failed"))
            .then_some(()))
    })
    .unwrap();
}

#[test]
fn cluster_leader_kill_and_restart() {
    if skip_unless_root("cluster_leader_kill_and_restart") {
        return;
    }
    let started = Instant::now();
    let mut c = OvsdbCluster::builder(NB_SCHEMA)
        .name("nb")
        .members(3)
        .start()
        .unwrap();
    eprintln!("cluster formed in {:?}", started.elapsed());
    assert_eq!(c.len(), 3);
    assert_eq!(c.db_name(), "OVN_Northbound");
    let remote = c.remote();
    assert_eq!(remote.split(',').count(), 3);
    assert!(remote.split(',').all(|r| r.starts_with("tcp:127.0.0.1:")));
    nbctl(&remote, &[], &["init"]).unwrap();
    nbctl(&remote, &[], &["ls-add", "before"]).unwrap();

    let leader = c.leader().unwrap();
    c.kill_member(leader).unwrap();
    assert!(!c.is_member_running(leader));
    let t = Instant::now();
    let new_leader = c.wait_for_leader(T).unwrap();
    eprintln!("new leader {new_leader} after {:?}", t.elapsed());
    assert_ne!(new_leader, leader);
    nbctl(&remote, &[], &["ls-add", "after"]).unwrap();

    c.restart_member(leader).unwrap();
    ovn_route_lab::wait_until("restarted member to rejoin", T, |last| {
        let s = c.cluster_status(leader)?;
        *last = s.clone();
        Ok(s.lines()
            .any(|l| l.trim() == "Status: cluster member")
            .then_some(()))
    })
    .unwrap();
    let out = nbctl(
        &c.member_remote(leader),
        &["--no-leader-only".into()],
        &["ls-list"],
    );
    // The restarted member catches up with the log written while it was down.
    ovn_route_lab::wait_until("restarted member to catch up", T, |_| {
        let out = nbctl(
            &c.member_remote(leader),
            &["--no-leader-only".into()],
            &["ls-list"],
        )?;
        Ok((out.contains("before") && out.contains("after")).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}; first read: {out:?}"));
}

#[test]
fn chassis_claims_vif_and_gateway_port() {
    if skip_unless_root("chassis_claims_vif_and_gateway_port") {
        return;
    }
    let t = Instant::now();
    let lab = Lab::builder()
        .chassis(ChassisSpec::new("hv1").bridge_mapping("physnet1", "br-ex"))
        .start()
        .unwrap();
    eprintln!("lab up in {:?}", t.elapsed());
    assert_eq!(lab.registered_chassis().unwrap(), vec!["hv1".to_string()]);
    let hv1 = lab.chassis(0);
    assert_eq!(hv1.encap_ip(), "192.168.0.1");
    assert!(hv1.ovs_remote().starts_with("unix:"));
    assert_eq!(
        hv1.vsctl(&["get", "Open_vSwitch", ".", "external_ids:system-id"])
            .unwrap(),
        "hv1"
    );

    lab.ls_add("sw0").unwrap();
    lab.lr_add("lr0").unwrap();
    lab.connect_router(
        "lr0",
        "lrp-sw0",
        "00:00:00:00:ff:01",
        &["10.0.0.1/24"],
        "sw0",
    )
    .unwrap();
    let port = lab
        .add_vif_port("sw0", "vm1", "00:00:00:00:00:01 10.0.0.2", "hv1")
        .unwrap();
    assert_eq!(port, "vm1");
    lab.wait_port_bound("vm1", "hv1", T).unwrap();
    lab.wait_lsp_up("vm1", T).unwrap();

    lab.ls_add("public").unwrap();
    lab.lsp_add_localnet("public", "ln-public", "physnet1")
        .unwrap();
    lab.connect_router(
        "lr0",
        "lrp-pub",
        "00:00:00:00:ff:02",
        &["172.16.0.1/24"],
        "public",
    )
    .unwrap();
    lab.lrp_set_gateway_chassis("lrp-pub", "hv1", 10).unwrap();
    lab.lr_nat_add(
        "lr0",
        &ovn_route_lab::Nat::snat("172.16.0.1", "10.0.0.0/24"),
    )
    .unwrap();
    lab.lr_nat_add(
        "lr0",
        &ovn_route_lab::Nat::dnat_and_snat("172.16.0.50", "10.0.0.2")
            .distributed("vm1", "00:00:00:00:00:50"),
    )
    .unwrap();
    lab.lb_add("lb0", "172.16.0.100:80", &["10.0.0.2:8080"], Some("tcp"))
        .unwrap();
    lab.lr_lb_add("lr0", "lb0").unwrap();
    lab.ls_lb_add("sw0", "lb0").unwrap();
    lab.wait_port_bound("cr-lrp-pub", "hv1", T).unwrap();
    assert_eq!(
        lab.nbctl(&["lr-nat-list", "lr0"]).unwrap().lines().count(),
        3
    );
    lab.sync_hv().unwrap();

    let flows = hv1.ofctl_dump_flows("br-int").unwrap();
    assert!(flows.lines().count() > 50, "br-int has OVN flows");
    // ovn-controller plugged the localnet port into br-ex with a patch port.
    let ports = hv1.vsctl(&["list-ports", "br-ex"]).unwrap();
    assert!(ports.contains("patch-"), "patch port on br-ex: {ports}");
    let err = lab
        .wait_port_bound("nonexistent", "hv1", Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nonexistent") && err.contains("hv1"), "{err}");

    // Everything goes away on drop.
    let ns = hv1.netns().name().to_string();
    let pid = hv1.controller_pid().unwrap();
    let dir = lab.dir().to_path_buf();
    assert!(netns_exists(&ns));
    drop(lab);
    assert!(!netns_exists(&ns), "namespace {ns} deleted");
    assert!(!pid_alive(pid), "ovn-controller {pid} stopped");
    assert!(!dir.exists());
}

#[test]
fn ha_gateway_fails_over_with_priorities() {
    if skip_unless_root("ha_gateway_fails_over_with_priorities") {
        return;
    }
    let t = Instant::now();
    let lab = Lab::builder()
        .chassis(ChassisSpec::new("hv1").bridge_mapping("physnet1", "br-ex"))
        .chassis(ChassisSpec::new("hv2").bridge_mapping("physnet1", "br-ex"))
        .wire(true)
        .start()
        .unwrap();
    eprintln!("lab up in {:?}", t.elapsed());
    lab.lr_add("lr0").unwrap();
    lab.ls_add("public").unwrap();
    lab.lsp_add_localnet("public", "ln-public", "physnet1")
        .unwrap();
    lab.connect_router(
        "lr0",
        "lrp-pub",
        "00:00:00:00:ff:02",
        &["172.16.0.1/24"],
        "public",
    )
    .unwrap();
    lab.lrp_set_gateway_chassis("lrp-pub", "hv1", 20).unwrap();
    lab.lrp_set_gateway_chassis("lrp-pub", "hv2", 10).unwrap();
    let t = Instant::now();
    lab.wait_port_bound("cr-lrp-pub", "hv1", T).unwrap();
    eprintln!("bound to hv1 after {:?}", t.elapsed());
    let t = Instant::now();
    lab.lrp_set_gateway_chassis("lrp-pub", "hv2", 30).unwrap();
    lab.wait_port_bound("cr-lrp-pub", "hv2", T).unwrap();
    eprintln!("moved to hv2 after {:?}", t.elapsed());
    // BFD is up on the tunnel between the chassis.
    let bfd = lab.chassis(0).appctl(&["bfd/show"]).unwrap();
    assert!(bfd.contains("State: up"), "{bfd}");
}

#[test]
fn frr_routers_peer_and_learn_connected_route() {
    if skip_unless_root("frr_routers_peer_and_learn_connected_route") {
        return;
    }
    let t = Instant::now();
    let r1 = FrrRouter::start(
        "r1",
        &BgpConfig::new(65001, "192.0.2.1")
            .neighbor("192.0.2.2", 65002)
            .redistribute_connected()
            .render(),
    )
    .unwrap();
    let mut r2 = FrrRouter::start(
        "r2",
        &BgpConfig::new(65002, "192.0.2.2")
            .neighbor("192.0.2.1", 65001)
            .render(),
    )
    .unwrap();
    let _veth = connect(
        r1.netns(),
        "v1",
        "192.0.2.1/30",
        r2.netns(),
        "v2",
        "192.0.2.2/30",
    )
    .unwrap();
    r1.netns().add_bridge("bgp-nic", &[]).unwrap();
    r2.wait_bgp_established("192.0.2.1", T).unwrap();
    eprintln!("established after {:?}", t.elapsed());
    r1.netns()
        .ip(&["addr", "add", "10.190.10.5/32", "dev", "bgp-nic"])
        .unwrap();
    let route = r2.wait_kernel_route("10.190.10.5", T).unwrap();
    assert!(
        route.contains("via 192.0.2.1") && route.contains("proto bgp"),
        "{route}"
    );
    let rib = r2.vtysh(&["show ip route 10.190.10.5/32"]).unwrap();
    assert!(rib.contains("bgp"), "{rib}");
    eprintln!("route learned after {:?}", t.elapsed());

    r2.restart().unwrap();
    r2.wait_bgp_established("192.0.2.1", T).unwrap();
    r2.wait_kernel_route("10.190.10.5", T).unwrap();

    let ns = r2.netns().name().to_string();
    let (z, b) = r2.pids();
    drop(r2);
    assert!(!netns_exists(&ns));
    assert!(!pid_alive(z.unwrap()) && !pid_alive(b.unwrap()));
}

#[test]
fn cleanup_stale_removes_namespaces_of_dead_labs() {
    if skip_unless_root("cleanup_stale_removes_namespaces_of_dead_labs") {
        return;
    }
    // A pid that certainly belongs to no live process: a child that already exited.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let name = format!("ovnr-{dead}-0-stale");
    run(Command::new("ip").args(["netns", "add", &name])).unwrap();
    let dir = Path::new("/tmp").join(format!("ovnr-{dead}-lab-test"));
    std::fs::create_dir_all(dir.join("hv1")).unwrap();
    // A left-over "daemon" of that lab, with a pid file, whose command line names the dir.
    let mut daemon = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec -a {}/hv1/fake-daemon sleep 60",
            dir.display()
        ))
        .spawn()
        .unwrap();
    let daemon_pid = daemon.id();
    std::fs::write(dir.join("hv1/fake-daemon.pid"), format!("{daemon_pid}\n")).unwrap();
    ovn_route_lab::wait_until("fake daemon to exec", T, |_| {
        let cl = std::fs::read(format!("/proc/{daemon_pid}/cmdline")).unwrap_or_default();
        Ok(String::from_utf8_lossy(&cl)
            .contains("fake-daemon")
            .then_some(()))
    })
    .unwrap();
    // A live lab's namespace must survive.
    let live = Netns::new("live").unwrap();

    // (Another test process running cleanup_stale at the same time may be the one that removes
    // these, so check the effects rather than this call's report.)
    let report = cleanup_stale().unwrap();
    eprintln!("{report:?}");
    assert!(!daemon.wait().unwrap().success(), "fake daemon was killed");
    assert!(!netns_exists(&name));
    assert!(!dir.exists());
    assert!(netns_exists(live.name()));
}

#[test]
fn clustered_lab_with_chassis() {
    if skip_unless_root("clustered_lab_with_chassis") {
        return;
    }
    let t = Instant::now();
    let mut lab = Lab::builder()
        .clustered(3)
        .chassis(ChassisSpec::new("hv1"))
        .start()
        .unwrap();
    eprintln!("clustered lab up in {:?}", t.elapsed());
    assert_eq!(lab.nb_remote().split(',').count(), 3);
    assert_eq!(lab.sb_remote().split(',').count(), 3);
    lab.ls_add("sw0").unwrap();
    lab.add_vif_port("sw0", "vm1", "00:00:00:00:00:01 10.0.0.2", "hv1")
        .unwrap();
    lab.wait_port_bound("vm1", "hv1", T).unwrap();
    lab.wait_lsp_up("vm1", T).unwrap();

    // A southbound follower crashes and comes back; the lab keeps binding ports.
    let t = Instant::now();
    let sb = lab.sb_mut().cluster_mut().unwrap();
    let follower = (sb.leader().unwrap() + 1) % sb.len();
    sb.kill_member(follower).unwrap();
    sb.restart_member(follower).unwrap();
    ovn_route_lab::wait_until("restarted follower to rejoin", T, |_| {
        let s = lab.sb().cluster().unwrap().cluster_status(follower)?;
        Ok(s.contains("Status: cluster member").then_some(()))
    })
    .unwrap();
    eprintln!("follower back after {:?}", t.elapsed());
    lab.add_vif_port("sw0", "vm2", "00:00:00:00:00:02 10.0.0.3", "hv1")
        .unwrap();
    lab.wait_port_bound("vm2", "hv1", T).unwrap();
    eprintln!("vm2 bound after {:?}", t.elapsed());
    assert_eq!(
        lab.port_binding_chassis("vm1").unwrap().as_deref(),
        Some("hv1")
    );
    lab.check_alive().unwrap();
}

#[test]
fn standalone_lab_with_tcp_remotes() {
    if skip_unless_root("standalone_lab_with_tcp_remotes") {
        return;
    }
    let lab = Lab::builder().db_tcp(true).start().unwrap();
    let nb_tcp = lab.nb().server().unwrap().tcp_remote().unwrap();
    let sb_tcp = lab.sb().server().unwrap().tcp_remote().unwrap();
    nbctl(&nb_tcp, &[], &["ls-add", "via-tcp"]).unwrap();
    lab.sync_sb().unwrap();
    let dps = run(Command::new("ovn-sbctl")
        .arg(format!("--db={sb_tcp}"))
        .args([
            "--bare",
            "--columns=external_ids",
            "list",
            "Datapath_Binding",
        ]))
    .unwrap();
    assert!(dps.contains("via-tcp"), "{dps}");
}

#[test]
fn everything_is_cleaned_up_after_a_panic() {
    if skip_unless_root("everything_is_cleaned_up_after_a_panic") {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let lab = Lab::builder()
            .chassis(ChassisSpec::new("hv1"))
            .start()
            .unwrap();
        let r = FrrRouter::start("rp", &BgpConfig::new(65010, "10.0.0.1").render()).unwrap();
        let c = lab.chassis(0);
        let _veth = connect(
            r.netns(),
            "to-hv",
            "10.9.0.1/30",
            c.netns(),
            "to-r",
            "10.9.0.2/30",
        )
        .unwrap();
        c.netns().exec(&["ping", "-c1", "-W2", "10.9.0.1"]).unwrap();
        let pids = vec![
            c.controller_pid().unwrap(),
            lab.nb().server().unwrap().pid().unwrap(),
            r.pids().0.unwrap(),
            r.pids().1.unwrap(),
        ];
        tx.send((
            pids,
            vec![c.netns().name().to_string(), r.netns().name().to_string()],
            vec![lab.dir().to_path_buf(), r.dir().to_path_buf()],
        ))
        .unwrap();
        panic!("deliberate panic with a running lab");
    })
    .join();
    assert!(result.is_err());
    let (pids, namespaces, dirs) = rx.recv().unwrap();
    for pid in pids {
        assert!(!pid_alive(pid), "pid {pid} still alive");
    }
    for ns in namespaces {
        assert!(!netns_exists(&ns), "namespace {ns} still exists");
    }
    for d in dirs {
        assert!(!d.exists(), "{} still exists", d.display());
    }
}
