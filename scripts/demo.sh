#!/usr/bin/env bash
# Demo: installs the dependencies, builds ovn-route and runs its lab demo
# (real OVN, OVS and FRR daemons in temporary directories and network namespaces).
#
#   sudo scripts/demo.sh [extra arguments for `ovn-route lab demo`]
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "demo.sh: must run as root: sudo scripts/demo.sh" >&2
    exit 1
fi

"$SCRIPT_DIR/install-deps.sh"
# shellcheck source=scripts/env.sh
. "$SCRIPT_DIR/env.sh"
cd "$REPO"
cargo build --release
exec "${CARGO_TARGET_DIR:-$REPO/target}/release/ovn-route" lab demo "$@"
