//! The flows the OVN BGP agent's underlay design puts on each provider bridge.

use crate::flow::Flow;
use crate::normalize::format_mac;

/// Priority of the exposure flows (the OVN BGP agent's).
pub const EXPOSURE_PRIORITY: u16 = 900;

/// The two flows that send traffic leaving OVN through a provider bridge's patch port to the
/// host's kernel: IPv4 and IPv6 packets get the bridge's own MAC (`bridge_mac`) as
/// destination, so that `NORMAL` delivers them to the bridge's LOCAL port, where kernel
/// routing (and the routes ovn-route exposes) takes over:
///
/// `priority=900,ip,in_port=<patch> actions=mod_dl_dst:<mac>,NORMAL` and the same with `ipv6`.
///
/// The patch port is given by its OpenFlow port number (`Interface.ofport` in the OVS
/// database), not its name: OpenFlow cuts port names to 15 characters, and OVN's
/// `patch-<localnet>-to-br-int` names are longer and often alike once cut.
pub fn exposure_flows(patch_ofport: u16, bridge_mac: [u8; 6]) -> [Flow; 2] {
    let actions = format!("mod_dl_dst:{},NORMAL", format_mac(bridge_mac));
    [
        Flow::new(
            EXPOSURE_PRIORITY,
            &format!("ip,in_port={patch_ofport}"),
            &actions,
        ),
        Flow::new(
            EXPOSURE_PRIORITY,
            &format!("ipv6,in_port={patch_ofport}"),
            &actions,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::parse_dump;

    #[test]
    fn exposure_flows_read_like_their_dump() {
        let flows = exposure_flows(2, [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f]);
        assert_eq!(
            flows[0].to_string(),
            "priority=900,ip,in_port=2 actions=mod_dl_dst:aa:bb:cc:dd:ee:0f,NORMAL"
        );
        assert_eq!(
            flows[1].to_string(),
            "priority=900,ipv6,in_port=2 actions=mod_dl_dst:aa:bb:cc:dd:ee:0f,NORMAL"
        );
        // What ovs-vswitchd 3.1 shows after adding them (`--no-names dump-flows --no-stats`),
        // and with OpenFlow 1.3.
        for dump in [
            " cookie=0x3e7, priority=900,ip,in_port=2 actions=mod_dl_dst:aa:bb:cc:dd:ee:0f,NORMAL
 cookie=0x3e7, priority=900,ipv6,in_port=2 actions=mod_dl_dst:aa:bb:cc:dd:ee:0f,NORMAL
",
            " cookie=0x3e7, reset_counts priority=900,ip,in_port=2 actions=set_field:aa:bb:cc:dd:ee:0f->eth_dst,NORMAL
 cookie=0x3e7, reset_counts priority=900,ipv6,in_port=2 actions=set_field:aa:bb:cc:dd:ee:0f->eth_dst,NORMAL
",
        ] {
            let dumped = parse_dump(dump).unwrap();
            assert_eq!(dumped[0].flow, flows[0]);
            assert_eq!(dumped[1].flow, flows[1]);
        }
    }
}
