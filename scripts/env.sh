# shellcheck shell=bash
# Sourced by the scripts in this directory (not run on its own).
# Makes cargo, rustup and the system tools findable whatever the caller's PATH is:
# `sudo` (secure_path drops ~/.cargo/bin), CI's environment, a bare root shell.

ovnr_path_env() {
    local d
    for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
        case ":$PATH:" in *":$d:"*) ;; *) PATH="$PATH:$d" ;; esac
    done
    export PATH
    command -v cargo >/dev/null 2>&1 && return 0
    local h
    for h in "${CARGO_HOME:-}" "$HOME/.cargo" /root/.cargo; do
        if [ -n "$h" ] && [ -x "$h/bin/cargo" ]; then
            export PATH="$h/bin:$PATH"
            return 0
        fi
    done
    # sudo from a user whose toolchain lives in their home
    if [ -n "${SUDO_USER:-}" ]; then
        h=$(getent passwd "$SUDO_USER" | cut -d: -f6)
        if [ -n "$h" ] && [ -x "$h/.cargo/bin/cargo" ]; then
            export CARGO_HOME="$h/.cargo" RUSTUP_HOME="$h/.rustup" PATH="$h/.cargo/bin:$PATH"
            return 0
        fi
    fi
    return 0 # callers that need cargo check for it themselves
}
ovnr_path_env
