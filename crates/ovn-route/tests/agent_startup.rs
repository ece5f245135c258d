//! Start-up failures of `ovn-route agent`: each a clear error naming the value or setting, with
//! real components (a chassis' Open_vSwitch database, this host's kernel).

use std::path::Path;
use std::process::{Command, Output};

use ovn_route_lab::{skip_unless_root, ChassisSpec, Lab};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ovn-route"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write_conf(dir: &Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("agent.conf");
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn bad_configuration_value_names_file_line_option_and_value() {
    let d = tempfile::tempdir().unwrap();
    let p = write_conf(
        d.path(),
        "[DEFAULT]\nbgp_AS = 64999\n[ovn_route]\nvrf_mode = maybe\n",
    );
    let o = Command::new(bin())
        .args(["agent", "--check-config", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains(&format!(
            "{}:4: [ovn_route] vrf_mode = \"maybe\"",
            p.display()
        )),
        "{t}"
    );
}

#[test]
fn status_without_an_agent_names_the_socket() {
    let o = Command::new(bin())
        .args(["status", "--socket", "/nonexistent/ovn-route.sock"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("/nonexistent/ovn-route.sock") && t.contains("agent"),
        "{t}"
    );
}

#[test]
fn agent_start_up_errors_name_the_setting() {
    if skip_unless_root("agent_start_up_errors_name_the_setting") {
        return;
    }
    let lab = Lab::builder()
        .chassis(ChassisSpec::new("hv1").bridge_mapping("physnet1", "br-ex"))
        .start()
        .expect("lab");
    let c = lab.chassis(0);
    let d = tempfile::tempdir().unwrap();
    let run = |conf: &str| -> Output {
        let p = write_conf(d.path(), conf);
        c.netns()
            .command(bin().to_str().unwrap())
            .args(["agent", "--once", "--config"])
            .arg(&p)
            .output()
            .unwrap()
    };
    let tail = format!(
        "[ovn_route]\nstatus_socket =\niproute2_dir = {}\n",
        d.path().join("iproute2").display()
    );

    // The local Open_vSwitch database does not answer.
    let o = run(&format!(
        "[DEFAULT]\novsdb_connection = unix:{}/nothing.sock\novsdb_connection_timeout = 1\n{tail}",
        d.path().display()
    ));
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("nothing.sock") && t.contains("ovsdb_connection_timeout"),
        "{t}"
    );

    // No Northbound database configured and none in Open_vSwitch external_ids.
    let o = run(&format!(
        "[DEFAULT]\novsdb_connection = {}\n{tail}",
        c.ovs_remote()
    ));
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("ovn_nb_connection") && t.contains("ovn-nb-remote"),
        "{t}"
    );

    // vrf_mode = create on a kernel without VRF support (this host's): a start-up error that
    // names the device and the settings that avoid it; nothing is created.
    let o = run(&format!(
        "[DEFAULT]\novsdb_connection = {}\n[ovn]\novn_nb_connection = {}\n{tail}vrf_mode = create\n",
        c.ovs_remote(),
        lab.nb().unix_remote()
    ));
    let t = text(&o);
    if c.netns()
        .ip(&["link", "add", "probe-vrf", "type", "vrf", "table", "99"])
        .is_ok()
    {
        eprintln!(
            "this kernel has VRF support: the unsupported path is covered by the kernel tier"
        );
        return;
    }
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("vrf") && t.contains("vrf_mode"), "{t}");
    assert!(!c.netns().ip(&["link", "show"]).unwrap().contains("bgp-vrf"));
}
