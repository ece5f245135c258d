//! Removing what labs of dead processes left behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Result;
use crate::process::{run, signal};
use crate::util::{path_str, NAME_PREFIX, TMP_BASE};

/// What [`cleanup_stale`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    /// Network namespaces deleted.
    pub namespaces: Vec<String>,
    /// Process ids killed.
    pub killed: Vec<u32>,
    /// Temporary directories removed.
    pub dirs: Vec<PathBuf>,
}

/// Owner pid encoded in a lab name `ovnr-<pid>-...`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NAME_PREFIX)?.strip_prefix('-')?;
    rest.split('-').next()?.parse().ok()
}

/// True if `pid` is a live (non-zombie) process.
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

fn stale(name: &str) -> bool {
    match owner_pid(name) {
        Some(pid) => pid != std::process::id() && !alive(pid),
        None => false,
    }
}

fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn pidfiles(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() && depth > 0 => pidfiles(&p, depth - 1, out),
            Ok(t) if t.is_file() && p.extension().is_some_and(|x| x == "pid") => out.push(p),
            _ => {}
        }
    }
}

/// Removes what labs whose owning process has died left behind: kills their daemons (found
/// through the pid files in their directories, and any process whose command line names such a
/// directory), deletes their `ovnr-<pid>-*` network namespaces and removes their
/// `/tmp/ovnr-<pid>-*` directories. Labs of live processes are left alone. Best effort: what
/// cannot be removed is logged and skipped.
pub fn cleanup_stale() -> Result<CleanupReport> {
    let mut report = CleanupReport::default();

    let mut dirs = Vec::new();
    if let Ok(entries) = fs::read_dir(TMP_BASE) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if stale(&name) && e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(e.path());
            }
        }
    }

    // Kill by pid file (only if that process still refers to the directory: pids get reused).
    for dir in &dirs {
        let d = path_str(dir);
        let mut files = Vec::new();
        pidfiles(dir, 3, &mut files);
        for f in files {
            let Some(pid) = fs::read_to_string(&f)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            else {
                continue;
            };
            if alive(pid) && cmdline(pid).contains(&d) {
                signal(pid, libc::SIGKILL);
                report.killed.push(pid);
            }
        }
    }
    // Any other process still naming a stale directory.
    if !dirs.is_empty() {
        let needles: Vec<String> = dirs.iter().map(|d| path_str(d)).collect();
        if let Ok(procs) = fs::read_dir("/proc") {
            for p in procs.flatten() {
                let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                if report.killed.contains(&pid) || pid == std::process::id() {
                    continue;
                }
                let cl = cmdline(pid);
                if needles.iter().any(|n| cl.contains(n.as_str())) && alive(pid) {
                    signal(pid, libc::SIGKILL);
                    report.killed.push(pid);
                }
            }
        }
    }

    if let Ok(entries) = fs::read_dir("/run/netns") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if stale(&name) {
                match run(Command::new("ip").args(["netns", "del", &name])) {
                    Ok(_) => report.namespaces.push(name),
                    // Another process may be cleaning up the same namespace right now.
                    Err(e) => tracing::warn!("cleanup_stale: {e}"),
                }
            }
        }
    }

    for dir in dirs {
        if fs::remove_dir_all(&dir).is_ok() {
            report.dirs.push(dir);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_owner_pid() {
        assert_eq!(owner_pid("ovnr-1234-7-hv1"), Some(1234));
        assert_eq!(owner_pid("ovnr-99-lab-abc"), Some(99));
        assert_eq!(owner_pid("ovnrx-1-2"), None);
        assert_eq!(owner_pid("other-1-2"), None);
    }

    #[test]
    fn own_process_is_alive() {
        assert!(alive(std::process::id()));
        assert!(!stale(&format!("ovnr-{}-0-x", std::process::id())));
    }
}
