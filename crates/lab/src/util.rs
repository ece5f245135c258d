//! Small helpers: privileges, unique names, free ports (reserved across processes), polling,
//! temp dirs.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::os::unix::io::AsRawFd as _;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use crate::error::{LabError, Result};

/// Prefix of every network namespace and temporary directory the lab creates.
pub const NAME_PREFIX: &str = "ovnr";

/// Directory holding the lab's temporary directories (kept short: unix socket paths are limited
/// to 107 bytes).
pub(crate) const TMP_BASE: &str = "/tmp";

/// True when the process runs as root (needed for namespaces and the daemons).
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// For tests: returns `true` (and prints why) when `test` must be skipped because the process is
/// not root. Use as `if skip_unless_root("name") { return; }`.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        false
    } else {
        // Written straight to stderr (not through eprintln!, which the test harness captures)
        // so that the skip is visible in a normal `cargo test` run.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: the lab needs root (network namespaces, ovs/ovn/frr daemons); \
             run the tests as root"
        );
        true
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A process-wide unique small number (for names).
pub(crate) fn next_seq() -> u32 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// Creates a fresh temporary directory `/tmp/ovnr-<pid>-<label>-XXXXXX`; the pid lets
/// [`crate::cleanup_stale`] recognise directories of dead labs.
pub(crate) fn lab_tempdir(label: &str) -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{NAME_PREFIX}-{}-{label}-", std::process::id()))
        .tempdir_in(TMP_BASE)
        .map_err(|e| LabError::io(format!("create temporary directory in {TMP_BASE}"), e))
}

fn random_u64() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32) ^ u64::from(next_seq()) << 17;
    // splitmix64 finaliser
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Directory of the per-port lock files through which concurrent processes (e.g. the test
/// processes cargo-nextest runs in parallel) reserve the ports [`free_port`] hands out.
pub(crate) const PORT_LOCK_DIR: &str = "/tmp/ovnr-ports";

/// Ports handed out by this process, with the lock files (flocked) that reserve them.
static PORTS: Mutex<Option<HashMap<u16, File>>> = Mutex::new(None);

/// Takes the exclusive lock `PORT_LOCK_DIR/<port>.lock` without blocking: `Ok(Some(file))` while
/// this open file holds it, `Ok(None)` if another process (or another open of the file) does.
fn lock_port(dir: &Path, port: u16) -> Result<Option<File>> {
    let path = dir.join(format!("{port}.lock"));
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .open(&path)
    {
        Ok(f) => Ok(f),
        // Created by another user (e.g. root) with the umask's mode: a read-only descriptor
        // can hold the lock too.
        Err(e) if e.kind() == ErrorKind::PermissionDenied => File::open(&path),
        Err(e) => Err(e),
    }
    .map_err(|e| LabError::io(format!("open port lock file {}", path.display()), e))?;
    // SAFETY: flock(2) on a descriptor we own; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(Some(file));
    }
    let err = std::io::Error::last_os_error();
    if err.kind() == ErrorKind::WouldBlock {
        Ok(None)
    } else {
        Err(LabError::io(format!("flock {}", path.display()), err))
    }
}

/// Picks a TCP port on 127.0.0.1 that is free right now and reserved for this process until it
/// exits: no other process using this function gets it, however many run at once. Ports come
/// from 20000..32000, below Linux' ephemeral range, so neither client connections nor
/// kernel-chosen listening ports (`bind` to port 0) occupy them.
///
/// The reservation is an exclusive `flock` on `/tmp/ovnr-ports/<port>.lock`, held by an open
/// file of this process (the kernel drops it when the process exits, even when it is killed).
/// Prefer letting the daemon bind port 0 and reading the port it got where that is possible;
/// this is for addresses that must be known before the daemon starts (raft cluster members).
pub fn free_port() -> Result<u16> {
    let dir = Path::new(PORT_LOCK_DIR);
    if !dir.is_dir() {
        mkdir(dir)?;
        // Like /tmp: every user may create lock files in it (a lock file is never deleted, so
        // the sticky bit only keeps users from removing each other's).
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o1777));
    }
    let mut guard = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let held = guard.get_or_insert_with(HashMap::new);
    for _ in 0..500 {
        let port = 20000 + (random_u64() % 12000) as u16;
        if held.contains_key(&port) {
            continue;
        }
        let Some(lock) = lock_port(dir, port)? else {
            continue; // reserved by another process
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            held.insert(port, lock);
            return Ok(port);
        }
        // Used by something that does not take the locks: leave it (dropping the lock).
    }
    Err(LabError::Invalid(format!(
        "no free TCP port found on 127.0.0.1 in 20000..32000 (locks in {PORT_LOCK_DIR})"
    )))
}

/// Polls `probe` until it returns `Ok(Some(value))` or `timeout` passes. Errors and `None` count
/// as "not yet"; the last error (or the text set through `last`) is quoted in the timeout error,
/// which names `what`.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut(&mut String) -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(10);
    let mut last = String::from("(nothing observed)");
    loop {
        match probe(&mut last) {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = e.to_string(),
        }
        if Instant::now() >= deadline {
            return Err(LabError::WaitTimeout {
                what: what.to_string(),
                timeout,
                last,
            });
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// The last `lines` lines of a text file, or an empty string.
pub(crate) fn tail_file(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(_) => String::new(),
    }
}

/// Creates a directory (and parents) with a contextual error.
pub(crate) fn mkdir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| LabError::io(format!("mkdir {}", path.display()), e))
}

/// A path as an owned UTF-8 string (lab paths are always UTF-8).
pub(crate) fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
