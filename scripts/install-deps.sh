#!/usr/bin/env bash
# Installs everything ovn-route's tests and demo need on Debian bookworm.
#
#   sudo scripts/install-deps.sh        (or as root)
#
# Idempotent: every step checks first and skips work already done, so a second run
# takes a few seconds. It relies on nothing installed by hand: only Debian packages,
# crates.io (cargo-nextest, only if missing) and PyPI (virtme-ng).
#
# What it sets up:
#   - /usr/sbin/policy-rc.d (exit 101) so apt starts no system services; it is left
#     in place, because the tests start their own private daemons.
#   - Debian packages: OVN, OVS, FRR, the OVN-IC databases, qemu, build libraries...
#   - rustfmt and clippy (rustup components) and cargo-nextest.
#   - The kernel tier (see shared/notes/kernel-vm.md): virtme-ng in a venv at
#     /opt/vng (vng also linked into /usr/local/bin), and a stock Debian kernel:
#     image at /opt/ovnr-kernel/vmlinuz, its release in /opt/ovnr-kernel/version,
#     its modules in /lib/modules/<release> (depmod'ed).
set -euo pipefail

# Pinned so that CI runs the launcher that was verified here.
VNG_VERSION=${VNG_VERSION:-1.42}
VNG_VENV=/opt/vng
KERNEL_DIR=/opt/ovnr-kernel

APT_PACKAGES=(
    # OVN / OVS / FRR, run for real by the lab and the tests
    ovn-central ovn-host openvswitch-switch ovn-ic ovn-ic-db python3-openvswitch frr
    # building the workspace (openssl-sys)
    build-essential pkg-config libssl-dev
    # tools the tests and the lab call
    iproute2 openssl procps psmisc util-linux iputils-ping ca-certificates
    # kernel tier: qemu + what virtme-ng needs to boot a guest on the host's root
    qemu-system-x86 kmod busybox-static python3-venv
)

log() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (try: sudo $0)"
command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian bookworm"

export DEBIAN_FRONTEND=noninteractive
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
START=$(date +%s)
APT=(apt-get -o DPkg::Lock::Timeout=600 -o APT::Get::Assume-Yes=true -q)

# --- policy-rc.d: apt must not start ovsdb-server, ovn-northd, frr... as services ---
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# written by ovn-route scripts/install-deps.sh: apt starts no services\nexit 101\n' \
        >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    log "wrote /usr/sbin/policy-rc.d (apt starts no services)"
fi

APT_UPDATED=0
apt_update_once() {
    [ "$APT_UPDATED" -eq 1 ] && return 0
    log "apt-get update"
    # A third-party source that cannot be reached must not stop us: Debian's own
    # lists are what we need, and the install below fails loudly if they are missing.
    if ! "${APT[@]}" update; then
        log "WARNING: apt-get update reported errors (continuing; Debian's lists are what matter)"
    fi
    APT_UPDATED=1
}

# --- Debian packages ---
missing=()
for p in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii'; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt_update_once
    log "apt-get install ${missing[*]}"
    "${APT[@]}" install "${missing[@]}"
else
    log "Debian packages: all ${#APT_PACKAGES[@]} present"
fi

# --- Rust: rustfmt, clippy, cargo-nextest ---
command -v cargo >/dev/null || die "cargo not found (the machine's Rust toolchain is expected under ~/.cargo/bin)"
for comp in rustfmt clippy; do
    sub=fmt; [ "$comp" = clippy ] && sub=clippy
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        command -v rustup >/dev/null || die "cargo $sub missing and no rustup to add $comp"
        log "rustup component add $comp"
        rustup component add "$comp"
    fi
done
if ! cargo nextest --version >/dev/null 2>&1; then
    log "cargo install cargo-nextest --locked"
    cargo install cargo-nextest --locked
fi
log "rust: $(cargo --version); $(cargo nextest --version 2>/dev/null | head -n1)"

# --- kernel tier: virtme-ng ---
if [ -x "$VNG_VENV/bin/vng" ] && [ -s "$VNG_VENV/.ovnr-vng-version" ] &&
    [ "$(cat "$VNG_VENV/.ovnr-vng-version")" = "$VNG_VERSION" ]; then
    log "virtme-ng $VNG_VERSION: present in $VNG_VENV"
else
    log "creating $VNG_VENV with virtme-ng==$VNG_VERSION"
    rm -rf "$VNG_VENV"
    # Debian's python3 (with python3-venv), not whatever python3 is first on PATH.
    /usr/bin/python3 -m venv "$VNG_VENV"
    "$VNG_VENV/bin/pip" install -q --disable-pip-version-check "virtme-ng==$VNG_VERSION"
    "$VNG_VENV/bin/vng" --version >/dev/null
    echo "$VNG_VERSION" >"$VNG_VENV/.ovnr-vng-version"
fi
ln -sfn "$VNG_VENV/bin/vng" /usr/local/bin/vng

# --- kernel tier: a stock Debian kernel (has vrf and dummy as modules) ---
kernel_ok() {
    [ -s "$KERNEL_DIR/vmlinuz" ] && [ -s "$KERNEL_DIR/version" ] &&
        [ -s "/lib/modules/$(cat "$KERNEL_DIR/version")/modules.dep" ]
}
if kernel_ok; then
    log "kernel: $KERNEL_DIR/vmlinuz ($(cat "$KERNEL_DIR/version")) present"
else
    apt_update_once
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
    [ -n "$pkg" ] || die "cannot resolve linux-image-amd64 to a kernel package (apt-cache depends linux-image-amd64)"
    log "downloading and unpacking $pkg"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    chmod 755 "$tmp"
    if id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi # lets apt download sandboxed, without a warning
    (cd "$tmp" && "${APT[@]}" download "$pkg")
    deb=$(ls "$tmp"/"$pkg"_*.deb)
    dpkg-deb -x "$deb" "$tmp/root"
    moddir=$tmp/root/lib/modules
    [ -d "$moddir" ] || moddir=$tmp/root/usr/lib/modules
    V=$(ls "$moddir")
    if [ -z "$V" ] || [ "$(echo "$V" | wc -l)" -ne 1 ]; then
        die "expected one kernel release in $deb, found: $V"
    fi
    [ -s "$tmp/root/boot/vmlinuz-$V" ] || die "no boot/vmlinuz-$V in $deb"
    rm -rf "/lib/modules/$V"
    mkdir -p /lib/modules
    cp -a "$moddir/$V" "/lib/modules/$V"
    depmod -a "$V"
    mkdir -p "$KERNEL_DIR"
    cp "$tmp/root/boot/vmlinuz-$V" "$KERNEL_DIR/vmlinuz.new"
    mv "$KERNEL_DIR/vmlinuz.new" "$KERNEL_DIR/vmlinuz"
    dpkg-deb -f "$deb" Package Version >"$KERNEL_DIR/package"
    echo "$V" >"$KERNEL_DIR/version" # written last: its presence means "done"
    rm -rf "$tmp"
    trap - EXIT
    kernel_ok || die "kernel set-up did not complete"
    log "kernel: $KERNEL_DIR/vmlinuz ($V)"
fi

log "done in $(($(date +%s) - START)) s"
