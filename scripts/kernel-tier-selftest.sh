#!/usr/bin/env bash
# Kernel-tier self-test: proves the guest kernel gives us what the host kernel lacks.
# Run by scripts/kernel-tier.sh inside the VM (as root, vrf and dummy modules loaded).
# On a kernel without VRF or dummy support it fails at the first `ip link add`.
#
# It creates a VRF (table 10) and a dummy device enslaved to it, adds a /32 to the
# dummy, and checks that the address' route lands in table 10 and not in main.
set -euo pipefail

VRF=kt-vrf
NIC=kt-nic
TABLE=10
ADDR=198.51.100.7 # TEST-NET-2: only ever a local address here, no traffic is sent

step() { printf 'selftest: %s\n' "$*"; }
fail() { printf 'selftest: FAIL: %s\n' "$*"; exit 1; }

cleanup() {
    ip link del "$NIC" 2>/dev/null || true
    ip link del "$VRF" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

[ "$(id -u)" -eq 0 ] || fail "must run as root"

step "kernel $(uname -r)"
step "ip link add $VRF type vrf table $TABLE"
ip link add "$VRF" type vrf table "$TABLE"
ip link set "$VRF" up
step "ip link add $NIC type dummy; enslave to $VRF"
ip link add "$NIC" type dummy
ip link set "$NIC" master "$VRF"
ip link set "$NIC" up
step "ip addr add $ADDR/32 dev $NIC"
ip addr add "$ADDR/32" dev "$NIC"

ip -d link show "$NIC" | grep -q "master $VRF" || fail "$NIC is not enslaved to $VRF: $(ip -d link show "$NIC")"
ip -d link show "$VRF" | grep -q "vrf table $TABLE" || fail "$VRF is not a VRF with table $TABLE: $(ip -d link show "$VRF")"

routes=$(ip route show table "$TABLE")
printf '%s\n' "--- ip route show table $TABLE" "$routes" "---"
printf '%s\n' "$routes" | grep -Eq "(^|[[:space:]])$ADDR([/[:space:]]|$).*dev $NIC" ||
    fail "no route for $ADDR dev $NIC in table $TABLE"
if ip route show table main | grep -Eq "(^|[[:space:]])$ADDR([/[:space:]]|$)"; then
    fail "$ADDR leaked into the main table"
fi
if ip route show table local | grep -Eq "(^|[[:space:]])$ADDR([/[:space:]]|$)"; then
    fail "$ADDR is in the local table instead of the VRF's table"
fi
step "PASS: $ADDR/32 on $NIC is routed in table $TABLE ($VRF) only"
