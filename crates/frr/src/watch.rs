//! Noticing that FRR restarted, so ovn-route re-applies its block at once.
//!
//! # Why the vty sockets, watched with inotify
//!
//! Configuration given through `vtysh` lives only in the daemons' memory: when bgpd or zebra
//! restarts (crash, `systemctl restart frr`, watchfrr) ovn-route's block is gone until it is
//! applied again. Every FRR daemon, when it starts, creates its vty socket `<daemon>.vty` in the
//! vty socket directory (`--vty_socket`, `/var/run/frr` on Debian): removing the old file and
//! binding a new one. So a new `zebra.vty` / `bgpd.vty` *is* the event "this daemon started".
//!
//! [`FrrWatcher`] watches that directory with inotify (`IN_CREATE`, `IN_MOVED_TO`, `IN_ATTRIB`)
//! in a thread: no polling, and the event comes within milliseconds of the daemon's start, whether
//! it was restarted by systemd, watchfrr or by hand, and also when FRR runs in another container
//! that shares the directory. It waits for the burst of events to settle (zebra and bgpd start one
//! after the other), then compares a fingerprint of the sockets (inode and change time of each
//! `<daemon>.vty`) with the last one reported, and reports [`FrrEvent::Restarted`] only when it
//! changed. The same fingerprint is also compared on a slow safety timer (default 30 s; a few
//! `stat` calls, nothing is sent to FRR), which covers what inotify cannot see: the directory
//! itself being removed and created again (the watch is then re-armed), or a directory that did
//! not exist yet when the watcher started.
//!
//! Alternatives considered: pid files change the same way but their place is independent of
//! `--vty_socket` (the agent only knows the latter); comparing the start time of bgpd's process
//! (`/proc/<pid>/stat`) needs the pid and the same pid namespace; `show version` carries no
//! uptime in FRR 8.4, and asking FRR on a timer is the blind polling the agent must avoid.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::{FrrError, Result};

/// Settings of an [`FrrWatcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// Daemons whose vty socket (`<name>.vty`) is watched.
    pub daemons: Vec<String>,
    /// Quiet time after the last event before a restart is reported (zebra and bgpd start one
    /// after the other; one event for both).
    pub settle: Duration,
    /// Safety timer comparing the fingerprint without any event (see the module documentation).
    pub fallback_interval: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            daemons: vec!["zebra".into(), "bgpd".into()],
            settle: Duration::from_millis(300),
            fallback_interval: Duration::from_secs(30),
        }
    }
}

/// What an [`FrrWatcher`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrrEvent {
    /// These daemons' vty sockets are new (they started or restarted); all watched sockets
    /// exist. Re-apply the configuration (e.g. [`crate::Vtysh::apply_when_ready`]).
    Restarted {
        /// The daemons whose socket changed.
        daemons: Vec<String>,
    },
    /// A watched daemon's socket disappeared (the daemon stopped); informational.
    Stopped {
        /// The daemons whose socket is gone.
        daemons: Vec<String>,
    },
}

/// (dev, inode, ctime seconds, ctime nanoseconds) of a vty socket.
type Stamp = (u64, u64, i64, i64);

/// Watches FRR's vty socket directory and reports restarts (see the module documentation).
/// Stops its thread on drop.
#[derive(Debug)]
pub struct FrrWatcher {
    rx: Receiver<FrrEvent>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FrrWatcher {
    /// Starts watching `socket_dir` with default options. The current state is the baseline:
    /// daemons already running are not reported.
    pub fn new(socket_dir: impl Into<PathBuf>) -> Result<FrrWatcher> {
        Self::with_options(socket_dir, WatchOptions::default())
    }

    /// Starts watching `socket_dir` with `options`.
    pub fn with_options(
        socket_dir: impl Into<PathBuf>,
        options: WatchOptions,
    ) -> Result<FrrWatcher> {
        let dir = socket_dir.into();
        // SAFETY: inotify_init1 has no preconditions; the fd is owned by `Inotify`.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(FrrError::Watch {
                what: "inotify_init1 for",
                path: dir,
                source: std::io::Error::last_os_error(),
            });
        }
        let mut ino = Inotify { fd, wd: -1 };
        if let Err(e) = ino.arm(&dir) {
            tracing::warn!("{e}; will retry every {:?}", options.fallback_interval);
        }
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let baseline = stamps(&dir, &options.daemons);
        let stop2 = stop.clone();
        let thread = thread::Builder::new()
            .name("frr-watch".into())
            .spawn(move || watch_loop(ino, dir, options, baseline, tx, stop2))
            .map_err(|source| FrrError::Watch {
                what: "spawn the watcher thread for",
                path: PathBuf::new(),
                source,
            })?;
        Ok(FrrWatcher {
            rx,
            stop,
            thread: Some(thread),
        })
    }

    /// Waits up to `timeout` for the next event.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<FrrEvent> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next event if one is pending.
    pub fn try_recv(&self) -> Option<FrrEvent> {
        self.rx.try_recv().ok()
    }

    /// Waits up to `timeout` for the next [`FrrEvent::Restarted`], skipping other events.
    pub fn wait_restart(&self, timeout: Duration) -> Option<FrrEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.recv_timeout(left)? {
                e @ FrrEvent::Restarted { .. } => return Some(e),
                FrrEvent::Stopped { .. } => {}
            }
        }
    }
}

impl Drop for FrrWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Inotify {
    fd: libc::c_int,
    wd: libc::c_int,
}

impl Inotify {
    fn arm(&mut self, dir: &Path) -> Result<()> {
        let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| FrrError::Watch {
            what: "NUL byte in",
            path: dir.to_path_buf(),
            source: std::io::ErrorKind::InvalidInput.into(),
        })?;
        let mask = libc::IN_CREATE
            | libc::IN_MOVED_TO
            | libc::IN_ATTRIB
            | libc::IN_DELETE
            | libc::IN_DELETE_SELF
            | libc::IN_MOVE_SELF;
        // SAFETY: fd is a valid inotify descriptor and `c` a NUL-terminated path.
        let wd = unsafe { libc::inotify_add_watch(self.fd, c.as_ptr(), mask) };
        if wd < 0 {
            self.wd = -1;
            return Err(FrrError::Watch {
                what: "inotify_add_watch on",
                path: dir.to_path_buf(),
                source: std::io::Error::last_os_error(),
            });
        }
        self.wd = wd;
        Ok(())
    }

    /// Waits up to `timeout` for events; returns (something relevant happened, the watch died).
    fn wait(&mut self, timeout: Duration, names: &[String]) -> (bool, bool) {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n <= 0 {
            return (false, false);
        }
        let mut relevant = false;
        let mut dead = false;
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reading into a buffer of the given length.
            let len = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if len <= 0 {
                break;
            }
            let len = len as usize;
            let mut off = 0;
            let header = std::mem::size_of::<libc::inotify_event>();
            while off + header <= len {
                // SAFETY: the kernel wrote a whole inotify_event at `off` (read_unaligned copes
                // with alignment).
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf.as_ptr().add(off).cast()) };
                let name_bytes = &buf[off + header..(off + header + ev.len as usize).min(len)];
                let name = name_bytes.split(|b| *b == 0).next().unwrap_or_default();
                if ev.mask & (libc::IN_DELETE_SELF | libc::IN_MOVE_SELF | libc::IN_IGNORED) != 0 {
                    dead = true;
                    relevant = true;
                }
                if names.iter().any(|n| n.as_bytes() == name) {
                    relevant = true;
                }
                off += header + ev.len as usize;
            }
        }
        (relevant, dead)
    }
}

impl Drop for Inotify {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor we own.
        unsafe { libc::close(self.fd) };
    }
}

fn stamps(dir: &Path, daemons: &[String]) -> BTreeMap<String, Option<Stamp>> {
    daemons
        .iter()
        .map(|d| {
            let m = std::fs::metadata(dir.join(format!("{d}.vty")))
                .ok()
                .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()));
            (d.clone(), m)
        })
        .collect()
}

fn watch_loop(
    mut ino: Inotify,
    dir: PathBuf,
    opt: WatchOptions,
    mut last: BTreeMap<String, Option<Stamp>>,
    tx: Sender<FrrEvent>,
    stop: Arc<AtomicBool>,
) {
    let names: Vec<String> = opt.daemons.iter().map(|d| format!("{d}.vty")).collect();
    let tick = Duration::from_millis(200);
    let mut pending_since: Option<Instant> = None;
    let mut next_fallback = Instant::now() + opt.fallback_interval;
    while !stop.load(Ordering::Relaxed) {
        let (relevant, dead) = ino.wait(tick, &names);
        let now = Instant::now();
        if dead || ino.wd < 0 {
            // The directory went away (or never existed): re-arm once it is back.
            if ino.arm(&dir).is_ok() {
                pending_since = Some(now);
            }
        }
        if relevant {
            pending_since = Some(now);
        }
        let fallback = now >= next_fallback;
        if fallback {
            next_fallback = now + opt.fallback_interval;
            if ino.wd < 0 && ino.arm(&dir).is_ok() {
                tracing::info!("watching FRR's vty socket directory {}", dir.display());
            }
        }
        let settled =
            pending_since.is_some_and(|t| !relevant && now.duration_since(t) >= opt.settle);
        if !(settled || fallback) {
            continue;
        }
        let current = stamps(&dir, &opt.daemons);
        let changed: Vec<String> = current
            .iter()
            .filter(|(d, s)| s.is_some() && last.get(*d) != Some(s))
            .map(|(d, _)| d.clone())
            .collect();
        let gone: Vec<String> = current
            .iter()
            .filter(|(d, s)| s.is_none() && last.get(*d).is_some_and(Option::is_some))
            .map(|(d, _)| d.clone())
            .collect();
        let all_up = current.values().all(Option::is_some);
        if !gone.is_empty() {
            tracing::info!(?gone, "FRR daemons stopped");
            let _ = tx.send(FrrEvent::Stopped { daemons: gone });
        }
        if !changed.is_empty() && !all_up {
            // Some daemon is not up yet: wait for its socket before reporting.
            for (d, s) in &current {
                if s.is_none() {
                    last.insert(d.clone(), None);
                }
            }
            pending_since = None;
            continue;
        }
        pending_since = None;
        if !changed.is_empty() {
            tracing::info!(?changed, "FRR daemons (re)started");
            if tx.send(FrrEvent::Restarted { daemons: changed }).is_err() {
                return;
            }
        }
        last = current;
    }
}
