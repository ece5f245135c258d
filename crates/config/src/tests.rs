//! Tests of the whole file: defaults, the shipped example, a Python-agent file, each option type and
//! each error path.

use super::*;
use proptest::prelude::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_str(text, "/etc/ovn-route/agent.conf")
}

/// Parses `[section]\noption = value` and returns the error text (the option is on line 2).
fn refuse(section: &str, option: &str, value: &str) -> String {
    let e = parse(&format!("[{section}]\n{option} = {value}\n")).expect_err(value);
    assert_eq!(e.line(), Some(2));
    let s = e.to_string();
    assert!(
        s.starts_with(&format!(
            "/etc/ovn-route/agent.conf:2: [{section}] {option} = {value:?}: "
        )),
        "{s}"
    );
    s
}

fn manifest(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn empty_file_gives_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c, Config::default());
    let d = &c.default;
    assert_eq!(d.reconcile_interval, Duration::from_secs(300));
    assert_eq!(d.frr_reconcile_interval, Duration::from_secs(15));
    assert_eq!(d.ovsdb_connection_timeout, Duration::from_secs(180));
    assert_eq!(d.bgp_as, 64999);
    assert_eq!(d.bgp_router_id, None);
    assert_eq!(
        (d.bgp_nic.as_str(), d.bgp_vrf.as_str()),
        ("bgp-nic", "bgp-vrf")
    );
    assert_eq!(d.bgp_vrf_table_id, 10);
    assert_eq!(d.driver, Driver::NbOvnBgp);
    assert_eq!(d.exposing_method, ExposingMethod::Underlay);
    assert_eq!(
        d.ovsdb_connection.to_string(),
        "unix:/var/run/openvswitch/db.sock"
    );
    assert!(d.delete_vrf_on_disconnect && !d.clear_vrf_routes_on_startup && !d.debug);
    assert_eq!(d.evpn_udp_dstport, 4789);
    assert!(c.ovn.ovn_nb_connection.is_empty() && c.ovn.ovn_sb_connection.is_empty());
    let r = &c.ovn_route;
    assert_eq!(r.advertise_method, AdvertiseMethod::Routes);
    assert_eq!(r.rule_method, RuleMethod::PerBridge);
    assert_eq!(r.route_protocol, DEFAULT_ROUTE_PROTOCOL);
    assert_eq!((r.rule_priority, r.flow_cookie), (32000, 0x3e7));
    assert_eq!(r.vrf_mode, VrfMode::Create);
    assert_eq!(r.frr_vty_socket, PathBuf::from("/var/run/frr"));
    assert_eq!(r.metrics_listen, None);
    assert_eq!(
        r.status_socket,
        Some(PathBuf::from("/run/ovn-route/status.sock"))
    );
    assert!(r.allows("203.0.113.9".parse().unwrap()));
    assert!(c.warnings.is_empty());
}

#[test]
fn shipped_example_parses_to_defaults_plus_tls_nb() {
    let c = Config::from_file(manifest("examples/agent.conf")).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let mut expected = Config::default();
    expected.ovn.ovn_nb_connection = (11..=13)
        .map(|i| Remote::Ssl(format!("192.0.2.{i}:6641")))
        .collect();
    expected.ovn.ovn_nb_private_key = Some("/etc/ovn-route/pki/agent-privkey.pem".into());
    expected.ovn.ovn_nb_certificate = Some("/etc/ovn-route/pki/agent-cert.pem".into());
    expected.ovn.ovn_nb_ca_cert = Some("/etc/ovn-route/pki/cacert.pem".into());
    assert_eq!(c, expected);
}

/// Every option in the code appears in the reference page and in the example, and vice versa
/// for the example.
#[test]
fn reference_and_example_cover_every_option() {
    let doc = std::fs::read_to_string(manifest("../../docs/configuration.md")).unwrap();
    let example = std::fs::read_to_string(manifest("examples/agent.conf")).unwrap();
    for (section, option) in Config::known_options() {
        assert!(doc.contains(&format!("`{option}`")), "docs lack {option}");
        if section != "agent" {
            assert!(
                example.contains(&format!("\n{option} =")),
                "example lacks {option}"
            );
        }
    }
    // The example embedded in the reference page parses too.
    let start = doc.find("```ini\n").expect("an ini block in the reference") + 7;
    let end = start + doc[start..].find("```").unwrap();
    let c = Config::from_str(&doc[start..end], "docs/configuration.md").unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

/// A bgp-agent.conf as the Python agent's deployment docs write them: `key=value` without spaces,
/// the SB driver, a root helper, an OVN cluster over TCP.
#[test]
fn python_agent_file_is_accepted() {
    let text = "\
# sample configuration that can be adapted based on needs
[DEFAULT]
debug=True
reconcile_interval=120
expose_tenant_networks=True
# expose_ipv6_gua_tenant_networks=True
driver=ovn_bgp_driver
bgp_AS=64999
bgp_nic=bgp-nic
bgp_vrf=bgp-vrf
bgp_vrf_table_id=10
ovsdb_connection=tcp:127.0.0.1:6640
address_scopes=2237917c7b12489a84de4ef384a2bcae, 9f0b9e4bb0bd4b8aa8a8b1f4ddd7de7b
exposing_method=underlay
clear_vrf_routes_on_startup=false
bgp_router_id=172.30.1.1

[agent]
root_helper=sudo ovn-bgp-agent-rootwrap /etc/ovn-bgp-agent/rootwrap.conf

[ovn]
ovn_nb_connection = tcp:172.17.0.30:6641,tcp:172.17.0.31:6641
ovn_sb_connection = tcp:172.17.0.30:6642
";
    let c = Config::from_str(text, "bgp-agent.conf").unwrap();
    let d = &c.default;
    assert!(d.debug && d.expose_tenant_networks && !d.expose_ipv6_gua_tenant_networks);
    assert_eq!(d.reconcile_interval, Duration::from_secs(120));
    assert_eq!(d.driver, Driver::OvnBgp);
    assert_eq!(d.ovsdb_connection, Remote::Tcp("127.0.0.1:6640".into()));
    assert_eq!(d.address_scopes.len(), 2);
    assert_eq!(d.bgp_router_id, Some(Ipv4Addr::new(172, 30, 1, 1)));
    assert_eq!(c.ovn.ovn_nb_connection.len(), 2);
    assert_eq!(
        c.ovn.ovn_sb_connection,
        vec![Remote::Tcp("172.17.0.30:6642".into())]
    );
    assert!(c.agent.root_helper.as_deref().unwrap().starts_with("sudo "));
    assert_eq!(c.ovn_route, OvnRouteSection::default());
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings[0].starts_with("bgp-agent.conf:7: [DEFAULT] driver: "));
    assert!(c.warnings[0].contains("treated as nb_ovn_bgp_driver"));
    assert!(c.warnings[1].starts_with("bgp-agent.conf:19: [agent] root_helper: ignored"));
}

#[test]
fn each_value_type() {
    let c = parse(
        "[DEFAULT]
expose_tenant_networks = yes
expose_ipv6_gua_tenant_networks: ON
require_snat_disabled_for_tenant_networks = 1
delete_vrf_on_disconnect = FALSE
advertisement_method_tenant_networks = subnet
bgp_AS = 4294967295
bgp_vrf_table_id = 4294967295
evpn_local_ip = 2001:db8::1
evpn_nic = br-ex
evpn_udp_dstport = 65535
ovsdb_connection = unix:/run/openvswitch/db.sock
[OVN]
ovn_sb_connection = 'ssl:[2001:db8::5]:6642'
ovn_sb_private_key = k.pem
ovn_sb_certificate = c.pem
ovn_sb_ca_cert = ca.pem
[ovn_route]
advertise_method = routes
rule_method = per-ip
route_protocol = 250
rule_priority = 1
flow_cookie = 12345
allowed_prefixes = 198.51.100.0/24, 2001:db8:100::/48,
vrf_mode = existing
frr_vty_socket = /run/frr
metrics_listen = [::1]:9477
status_socket =
",
    )
    .unwrap();
    let d = &c.default;
    assert!(d.expose_tenant_networks && d.expose_ipv6_gua_tenant_networks);
    assert!(d.require_snat_disabled_for_tenant_networks && !d.delete_vrf_on_disconnect);
    assert_eq!(
        d.advertisement_method_tenant_networks,
        TenantAdvertisement::Subnet
    );
    assert_eq!((d.bgp_as, d.bgp_vrf_table_id), (u32::MAX, u32::MAX));
    assert_eq!(d.evpn_local_ip, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(d.evpn_nic.as_deref(), Some("br-ex"));
    assert_eq!(d.evpn_udp_dstport, 65535);
    assert_eq!(
        d.ovsdb_connection,
        Remote::Unix("/run/openvswitch/db.sock".into())
    );
    assert_eq!(
        c.ovn.ovn_sb_connection,
        vec![Remote::Ssl("[2001:db8::5]:6642".into())]
    );
    let r = &c.ovn_route;
    assert_eq!(r.advertise_method, AdvertiseMethod::Routes);
    assert_eq!(r.rule_method, RuleMethod::PerIp);
    assert_eq!(
        (r.route_protocol, r.rule_priority, r.flow_cookie),
        (250, 1, 12345)
    );
    assert_eq!(r.allowed_prefixes.len(), 2);
    assert!(r.allows("198.51.100.7".parse().unwrap()));
    assert!(r.allows("2001:db8:100::9".parse().unwrap()));
    assert!(!r.allows("198.51.101.7".parse().unwrap()));
    assert_eq!(r.vrf_mode, VrfMode::Existing);
    assert_eq!(r.metrics_listen, Some("[::1]:9477".parse().unwrap()));
    assert_eq!(r.status_socket, None);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(
        parse("[ovn_route]\nflow_cookie = 0XfF\n")
            .unwrap()
            .ovn_route
            .flow_cookie,
        255
    );
}

#[test]
fn invalid_values_name_file_line_option_value() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "DEFAULT",
            "bgp_AS",
            "abc",
            "not an AS number (1..4294967295)",
        ),
        ("DEFAULT", "bgp_AS", "0", "not an AS number"),
        ("DEFAULT", "bgp_AS", "4294967296", "not an AS number"),
        (
            "DEFAULT",
            "reconcile_interval",
            "0",
            "not a number of seconds",
        ),
        (
            "DEFAULT",
            "reconcile_interval",
            "5m",
            "not a number of seconds",
        ),
        (
            "DEFAULT",
            "frr_reconcile_interval",
            "-1",
            "not a number of seconds",
        ),
        (
            "DEFAULT",
            "ovsdb_connection_timeout",
            "",
            "not a number of seconds",
        ),
        ("DEFAULT", "debug", "maybe", "not a boolean"),
        ("DEFAULT", "expose_tenant_networks", "", "not a boolean"),
        (
            "DEFAULT",
            "advertisement_method_tenant_networks",
            "cidr",
            "not one of host, subnet",
        ),
        ("DEFAULT", "driver", "foo", "not one of nb_ovn_bgp_driver"),
        ("DEFAULT", "driver", "ovn_evpn_driver", "not implemented"),
        (
            "DEFAULT",
            "exposing_method",
            "vrf",
            "exposing method vrf is not implemented yet; only underlay is",
        ),
        ("DEFAULT", "exposing_method", "l2vni", "not implemented yet"),
        ("DEFAULT", "exposing_method", "bogus", "not one of underlay"),
        (
            "DEFAULT",
            "ovsdb_connection",
            "ssl:127.0.0.1:6640",
            "takes unix: or tcp:",
        ),
        (
            "DEFAULT",
            "ovsdb_connection",
            "/var/run/openvswitch/db.sock",
            "expected tcp:IP:PORT",
        ),
        (
            "DEFAULT",
            "bgp_router_id",
            "2001:db8::1",
            "not an IPv4 address",
        ),
        (
            "DEFAULT",
            "bgp_nic",
            "a-very-long-name-0",
            "1 to 15 characters",
        ),
        ("DEFAULT", "bgp_vrf", "bgp vrf", "no '/', ':' or whitespace"),
        ("DEFAULT", "bgp_nic", "", "1 to 15 characters"),
        (
            "DEFAULT",
            "bgp_vrf_table_id",
            "254",
            "reserved (252 compat, 253 default, 254 main, 255 local)",
        ),
        ("DEFAULT", "bgp_vrf_table_id", "0", "not a routing table id"),
        ("DEFAULT", "evpn_local_ip", "10.0.0", "not an IP address"),
        (
            "DEFAULT",
            "evpn_udp_dstport",
            "65536",
            "not a UDP port (1..65535)",
        ),
        ("ovn", "ovn_nb_connection", "tcp:10.0.0.1", "missing :PORT"),
        (
            "ovn",
            "ovn_nb_connection",
            "tcp:10.0.0.1:6641,pssl:6641",
            "listening",
        ),
        (
            "ovn",
            "ovn_sb_connection",
            "udp:10.0.0.1:6642",
            "unknown scheme",
        ),
        (
            "ovn_route",
            "advertise_method",
            "route",
            "not one of routes, addresses",
        ),
        (
            "ovn_route",
            "rule_method",
            "per_bridge",
            "not one of per-bridge, per-ip",
        ),
        ("ovn_route", "route_protocol", "0", "reserved by the kernel"),
        ("ovn_route", "route_protocol", "4", "reserved by the kernel"),
        (
            "ovn_route",
            "route_protocol",
            "256",
            "not a route protocol number (0..255)",
        ),
        (
            "ovn_route",
            "rule_priority",
            "32766",
            "before the main table",
        ),
        ("ovn_route", "rule_priority", "0", "before the main table"),
        ("ovn_route", "flow_cookie", "0", "non-zero"),
        ("ovn_route", "flow_cookie", "0x", "not a 64-bit cookie"),
        (
            "ovn_route",
            "flow_cookie",
            "0x10000000000000000",
            "not a 64-bit cookie",
        ),
        (
            "ovn_route",
            "allowed_prefixes",
            "10.0.0.0/8, 10.1.0.1/16",
            "did you mean 10.1.0.0/16?",
        ),
        (
            "ovn_route",
            "allowed_prefixes",
            "10.0.0.0/40",
            "prefix length",
        ),
        (
            "ovn_route",
            "vrf_mode",
            "auto",
            "not one of create, existing, none",
        ),
        (
            "ovn_route",
            "frr_vty_socket",
            "run/frr",
            "not an absolute path",
        ),
        ("ovn_route", "frr_vty_socket", "", "not an absolute path"),
        (
            "ovn_route",
            "metrics_listen",
            "localhost:9477",
            "not IP:PORT",
        ),
        (
            "ovn_route",
            "status_socket",
            "status.sock",
            "not an absolute path",
        ),
    ];
    for (section, option, value, reason) in cases {
        let s = refuse(section, option, value);
        assert!(s.contains(reason), "{s} lacks {reason:?}");
    }
    assert_eq!(
        refuse("DEFAULT", "bgp_AS", "abc"),
        r#"/etc/ovn-route/agent.conf:2: [DEFAULT] bgp_AS = "abc": not an AS number (1..4294967295)"#
    );
}

#[test]
fn ssl_remote_needs_its_three_files() {
    let text = "[ovn]\novn_nb_private_key = /k.pem\n\novn_nb_connection = ssl:10.0.0.1:6641\n";
    let s = parse(text).unwrap_err().to_string();
    assert_eq!(
        s,
        "/etc/ovn-route/agent.conf:4: [ovn] ovn_nb_connection = \"ssl:10.0.0.1:6641\": an ssl: \
         remote needs [ovn] ovn_nb_private_key, ovn_nb_certificate, ovn_nb_ca_cert (missing: \
         ovn_nb_certificate, ovn_nb_ca_cert)"
    );
    // SB is checked with its own files; NB's do not count.
    let text = "[ovn]\novn_nb_private_key = k\novn_nb_certificate = c\novn_nb_ca_cert = a\n\
                ovn_sb_connection = tcp:10.0.0.1:6642,ssl:10.0.0.2:6642\n";
    let s = parse(text).unwrap_err().to_string();
    assert!(
        s.contains(":5: [ovn] ovn_sb_connection = ") && s.contains("missing: ovn_sb_private_key"),
        "{s}"
    );
    // An empty file option is as good as missing.
    let text = "[ovn]\novn_nb_connection = ssl:10.0.0.1:6641\novn_nb_private_key = k\n\
                ovn_nb_certificate = c\novn_nb_ca_cert =\n";
    assert!(parse(text)
        .unwrap_err()
        .to_string()
        .contains("missing: ovn_nb_ca_cert"));
}

#[test]
fn unknown_sections_and_options_suggest_close_names() {
    let e = parse("[DEFAULT]\ndebug = True\n[ovn-route]\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/ovn-route/agent.conf:3: unknown section [ovn-route] (did you mean [ovn_route]?)"
    );
    let e = parse("[default]\ndebug = True\n").unwrap_err();
    assert!(
        e.to_string()
            .ends_with(":1: unknown section [default] (did you mean [DEFAULT]?)"),
        "{e}"
    );
    let e = parse("[neutron]\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/ovn-route/agent.conf:1: unknown section [neutron]"
    );
    let e = parse("[DEFAULT]\nbgp_as = 65000\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/ovn-route/agent.conf:2: [DEFAULT] unknown option bgp_as (did you mean bgp_AS?)"
    );
    let e = parse("[DEFAULT]\n\nbgp_vrf_tableid = 10\n").unwrap_err();
    assert!(e.to_string().ends_with(
        ":3: [DEFAULT] unknown option bgp_vrf_tableid (did you mean bgp_vrf_table_id?)"
    ));
    let e = parse("[ovn_route]\nlog_file = /var/log/x\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/ovn-route/agent.conf:2: [ovn_route] unknown option log_file"
    );
    // An option valid in one section is unknown in another.
    assert!(matches!(
        parse("[ovn]\ndebug = True\n").unwrap_err(),
        ConfigError::UnknownOption {
            line: 2,
            section: "ovn",
            ..
        }
    ));
    // Sections other than DEFAULT are case-insensitive, as in oslo.
    assert!(parse("[OVN]\novn_nb_connection = tcp:10.0.0.1:6641\n").is_ok());
}

#[test]
fn the_first_problem_in_the_file_is_reported() {
    let e = parse("[DEFAULT]\nbgp_AS = x\n[nope]\n").unwrap_err();
    assert_eq!(e.line(), Some(2));
    let e = parse("[nope]\n[DEFAULT]\nbgp_AS = x\n").unwrap_err();
    assert_eq!(e.line(), Some(1));
    // A value overridden later is still refused.
    let e = parse("[DEFAULT]\nbgp_AS = x\nbgp_AS = 1\n").unwrap_err();
    assert_eq!(e.line(), Some(2));
}

#[test]
fn syntax_errors_name_file_and_line() {
    let e = parse("[DEFAULT]\ndebug\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/ovn-route/agent.conf:2: expected `option = value`, `[section]` or a comment, found \"debug\""
    );
    assert_eq!(parse("debug = True\n").unwrap_err().line(), Some(1));
    // An indented line continues the previous value: scalars refuse that with a hint.
    let s = parse("[DEFAULT]\nbgp_nic = a\n  bgp_vrf = b\n")
        .unwrap_err()
        .to_string();
    assert!(
        s.contains(":2: [DEFAULT] bgp_nic = \"a\\nbgp_vrf = b\"")
            && s.contains("remove the indentation"),
        "{s}"
    );
    // ... while lists may continue over lines, as in oslo.
    let c = parse("[ovn_route]\nallowed_prefixes = 10.0.0.0/8,\n    192.168.0.0/16\n").unwrap();
    assert_eq!(c.ovn_route.allowed_prefixes.len(), 2);
}

#[test]
fn missing_file_is_named() {
    let e = Config::from_file("/nonexistent/ovn-route/agent.conf").unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/ovn-route/agent.conf: cannot read"),
        "{e}"
    );
    assert_eq!(e.line(), None);
}

#[test]
fn warnings() {
    let c = parse(
        "[DEFAULT]\nbgp_AS = 65000\ndebug = true\n[DEFAULT]\nbgp_AS = 65001\n\
         [ovn_route]\nroute_protocol = 193\nallowed_prefixes = 0.0.0.0/0\n",
    )
    .unwrap();
    assert_eq!(c.default.bgp_as, 65001, "the last value wins");
    assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    assert_eq!(
        c.warnings[0],
        "/etc/ovn-route/agent.conf:5: [DEFAULT] bgp_AS: set again (also on line 2); the last value wins"
    );
    assert!(c.warnings[1].starts_with("/etc/ovn-route/agent.conf:7: [ovn_route] route_protocol: protocol 193 is already used by ldp (FRR)"));
    assert!(c.warnings[1].contains("zebra deletes"));
    assert!(c.warnings[2].contains("/0 prefix"));
    let c = parse("[ovn_route]\nroute_protocol = 84\n").unwrap();
    assert!(
        c.warnings[0].contains("ovn (ovn-controller"),
        "{:?}",
        c.warnings
    );
    let c = parse("[agent]\nroot_helper_daemon = sudo x\n").unwrap();
    assert!(c.warnings[0].contains("needs no root helper"));
}

#[test]
fn incompatible_modes_are_refused_naming_the_option() {
    let e = parse("[ovn_route]\nadvertise_method = addresses\nvrf_mode = none\n").unwrap_err();
    let t = e.to_string();
    assert!(
        t.contains("advertise_method") && t.contains("vrf_mode = none"),
        "{t}"
    );
    let e =
        parse("[DEFAULT]\nbgp_vrf_table_id = 1000\n[ovn_route]\nvrf_mode = none\n").unwrap_err();
    assert!(e.to_string().contains("1..252"), "{e}");
    let e = parse(
        "[DEFAULT]\nexpose_tenant_networks = true\nadvertisement_method_tenant_networks = subnet\n\
         [ovn_route]\nadvertise_method = addresses\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("subnet"), "{e}");
}

#[test]
fn known_options_are_unique_and_listed_in_order() {
    let all: Vec<_> = Config::known_options().collect();
    assert_eq!(all.first(), Some(&("DEFAULT", "reconcile_interval")));
    assert_eq!(all.len(), 22 + 8 + 2 + 17 + 5);
    let mut dedup = all.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), all.len());
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(text in ".*") {
        let _ = parse(&text);
    }

    #[test]
    fn never_panics_on_ini_like_text(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("[DEFAULT]".to_string()),
                Just("[ovn]".to_string()),
                Just("[ovn_route]".to_string()),
                Just("[agent]".to_string()),
                "[a-z_]{0,12}".prop_map(|s| format!("[{s}]")),
                (proptest::sample::select(Config::known_options().map(|(_, o)| o).collect::<Vec<_>>()),
                 "[ -~]{0,30}")
                    .prop_map(|(k, v)| format!("{k} = {v}")),
                "[ \t]{0,2}[ -~]{0,40}",
            ],
            0..20,
        )
    ) {
        let text = lines.join("\n");
        match parse(&text) {
            Ok(_) => {}
            Err(e) => {
                // Every error from text names the file and a line that exists.
                let line = e.line().unwrap();
                prop_assert!(line >= 1 && line <= lines.len().max(1));
                prop_assert!(e.to_string().starts_with("/etc/ovn-route/agent.conf:"));
            }
        }
    }
}

#[test]
fn southbound_off_and_its_contradiction() {
    use crate::Southbound;
    assert_eq!(parse("").unwrap().ovn_route.southbound, Southbound::Auto);
    let c = parse("[ovn_route]\nsouthbound = off\n").unwrap();
    assert_eq!(c.ovn_route.southbound, Southbound::Off);
    let s = parse("[ovn_route]\nsouthbound = no\n")
        .unwrap_err()
        .to_string();
    assert!(
        s.contains(":2: [ovn_route] southbound = \"no\"") && s.contains("auto or off"),
        "{s}"
    );
    let s = parse("[ovn]\novn_sb_connection = tcp:10.0.0.1:6642\n[ovn_route]\nsouthbound = off\n")
        .unwrap_err()
        .to_string();
    assert!(s.contains("southbound") && s.contains("contradicts"), "{s}");
}

#[test]
fn peering_controller_is_off_by_default_and_a_boolean() {
    assert!(!parse("").unwrap().ovn_route.peering_controller);
    let c = parse("[ovn_route]\npeering_controller = true\n").unwrap();
    assert!(c.ovn_route.peering_controller);
    let s = parse("[ovn_route]\npeering_controller = maybe\n")
        .unwrap_err()
        .to_string();
    assert!(
        s.contains(":2: [ovn_route] peering_controller = \"maybe\"") && s.contains("boolean"),
        "{s}"
    );
}

#[test]
fn dynamic_routing_is_off_by_default_and_a_boolean() {
    assert!(!parse("").unwrap().ovn_route.dynamic_routing);
    let c = parse("[ovn_route]\ndynamic_routing = true\n").unwrap();
    assert!(c.ovn_route.dynamic_routing);
    let s = parse("[ovn_route]\ndynamic_routing = 2\n")
        .unwrap_err()
        .to_string();
    assert!(
        s.contains("dynamic_routing") && s.contains("boolean"),
        "{s}"
    );
}

#[test]
fn host_routes_options() {
    let c = parse("").unwrap();
    assert!(!c.host_routes.enabled);
    assert_eq!(c.host_routes.table, crate::HostRoutesTable::Id(254));
    let c = parse(
        "[host_routes]\nenabled = true\ntable = 100\ninclude = incus-net*, 10.190.0.0/16\nexclude = fd00::/8\nadvertise = yes\n",
    )
    .unwrap();
    let h = &c.host_routes;
    assert!(h.enabled && h.advertise);
    assert_eq!(h.table, crate::HostRoutesTable::Id(100));
    assert_eq!(h.include, ["incus-net*", "10.190.0.0/16"]);
    assert_eq!(h.exclude, ["fd00::/8"]);
    let c = parse("[host_routes]\ntable = incus\n").unwrap();
    assert_eq!(
        c.host_routes.table,
        crate::HostRoutesTable::Name("incus".into())
    );
    for (text, says) in [
        ("[host_routes]\ntable = local\n", "table"),
        ("[host_routes]\ntable = 255\n", "reserved"),
        ("[host_routes]\ninclude = 10.0.0.1/8\n", "10.0.0.0/8"),
        (
            "[DEFAULT]\nbgp_vrf_table_id = 100\n[host_routes]\ntable = 100\n",
            "exposure table",
        ),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(says), "{text}: {e}");
    }
}

#[test]
fn dynamic_routing_frr_options() {
    let c = parse("").unwrap();
    assert!(!c.ovn_route.dynamic_routing_frr);
    assert!(c.ovn_route.dynamic_routing_frr_neighbors.is_empty());
    let c = parse(
        "[ovn_route]\ndynamic_routing_frr = true\n\
         dynamic_routing_frr_neighbors = 192.0.2.2@65000, ovnvrf10/eth1@external, 2001:db8::1@internal\n",
    )
    .unwrap();
    assert!(c.ovn_route.dynamic_routing_frr);
    let n = &c.ovn_route.dynamic_routing_frr_neighbors;
    assert_eq!(n.len(), 3);
    assert_eq!(n[0].peer, FrrPeer::Address("192.0.2.2".parse().unwrap()));
    assert_eq!(
        (n[0].vrf.as_deref(), n[0].remote_as.as_str()),
        (None, "65000")
    );
    assert_eq!(n[1].peer, FrrPeer::Interface("eth1".into()));
    assert_eq!(n[1].vrf.as_deref(), Some("ovnvrf10"));
    assert_eq!(n[2].remote_as, "internal");
    for bad in ["192.0.2.2", "192.0.2.2@0", "192.0.2.2@x", "a/b/c@1", "@1"] {
        let e = parse(&format!(
            "[ovn_route]\ndynamic_routing_frr_neighbors = {bad}\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("dynamic_routing_frr_neighbors"), "{bad}: {e}");
    }
}

#[test]
fn dynamic_routing_evpn_needs_frr_and_a_local_ip() {
    assert!(!parse("").unwrap().ovn_route.dynamic_routing_evpn);
    let on = "[ovn_route]\ndynamic_routing = true\ndynamic_routing_frr = true\n\
              dynamic_routing_evpn = true\n";
    let c = parse(&format!(
        "[DEFAULT]\nevpn_local_ip = 192.0.2.1\nevpn_udp_dstport = 4790\n{on}"
    ))
    .unwrap();
    assert!(c.ovn_route.dynamic_routing_evpn);
    assert_eq!(c.default.evpn_local_ip, Some("192.0.2.1".parse().unwrap()));
    assert_eq!(c.default.evpn_udp_dstport, 4790);
    // No VTEP address: an error naming both options.
    let e = parse(on).unwrap_err().to_string();
    assert!(
        e.contains("dynamic_routing_evpn") && e.contains("evpn_local_ip"),
        "{e}"
    );
    // An IPv6 VTEP: refused, naming evpn_local_ip.
    let e = parse(&format!("[DEFAULT]\nevpn_local_ip = 2001:db8::1\n{on}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("evpn_local_ip") && e.contains("IPv4"), "{e}");
    // Without the agent's FRR instances (or without dynamic routing): refused.
    for text in [
        "[DEFAULT]\nevpn_local_ip = 192.0.2.1\n[ovn_route]\ndynamic_routing = true\ndynamic_routing_evpn = true\n",
        "[DEFAULT]\nevpn_local_ip = 192.0.2.1\n[ovn_route]\ndynamic_routing_frr = true\ndynamic_routing_evpn = true\n",
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(
            e.contains("dynamic_routing_evpn") && e.contains("dynamic_routing_frr"),
            "{e}"
        );
    }
    let e = parse("[ovn_route]\ndynamic_routing_evpn = yes please\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("dynamic_routing_evpn"), "{e}");
}
