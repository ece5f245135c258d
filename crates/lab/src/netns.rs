//! Network namespaces and veth pairs that delete themselves.

use std::fmt;
use std::process::Command;

use crate::error::{LabError, Result};
use crate::process::run;
use crate::util::{next_seq, NAME_PREFIX};

/// Longest Linux network device name.
pub const IFNAMSIZ_MAX: usize = 15;

/// A network namespace `ovnr-<pid>-<seq>-<label>`, deleted on drop. The pid in the name lets
/// [`crate::cleanup_stale`] remove namespaces of labs whose process died.
#[derive(Debug)]
pub struct Netns {
    name: String,
    owned: bool,
}

impl Netns {
    /// Creates a fresh namespace whose name ends with `label` and brings its `lo` up.
    pub fn new(label: &str) -> Result<Netns> {
        let label: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(24)
            .collect();
        let name = format!(
            "{NAME_PREFIX}-{}-{}-{label}",
            std::process::id(),
            next_seq()
        );
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name, owned: true };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A handle on a namespace someone else owns (e.g. a chassis'): never deleted by this handle.
    pub fn shared(other: &Netns) -> Netns {
        Netns {
            name: other.name.clone(),
            owned: false,
        }
    }

    /// The namespace's name (as listed by `ip netns`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <ns> ARGS...` and returns its output.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// Runs `ARGS...` inside the namespace (`ip netns exec`) and returns its output.
    pub fn exec(&self, args: &[&str]) -> Result<String> {
        let (program, rest) = args
            .split_first()
            .ok_or_else(|| LabError::Invalid("Netns::exec needs a program".into()))?;
        run(self.command(program).args(rest))
    }

    /// A [`Command`] that runs `program` inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Creates a kernel bridge `name` (up, with `addrs`) in the namespace: a stand-in where a
    /// dummy device would be used (this kernel has no `dummy` link type) or for the kernel side of
    /// a provider bridge.
    pub fn add_bridge(&self, name: &str, addrs: &[&str]) -> Result<()> {
        check_ifname(name)?;
        self.ip(&["link", "add", name, "type", "bridge"])?;
        for a in addrs {
            self.ip(&["addr", "add", a, "dev", name])?;
        }
        self.ip(&["link", "set", name, "up"])?;
        Ok(())
    }

    /// The routes of the main IPv4 table (`ip -n <ns> route`).
    pub fn routes(&self) -> Result<String> {
        self.ip(&["route"])
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        if let Err(e) = run(Command::new("ip").args(["netns", "del", &self.name])) {
            tracing::warn!("could not delete network namespace {}: {e}", self.name);
        }
    }
}

pub(crate) fn check_ifname(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > IFNAMSIZ_MAX {
        return Err(LabError::Invalid(format!(
            "device name {name:?} must have 1 to {IFNAMSIZ_MAX} characters"
        )));
    }
    Ok(())
}

/// One end of a veth pair: namespace, device name and addresses (CIDR).
#[derive(Debug, Clone, Copy)]
pub struct VethEnd<'a> {
    /// The namespace the device is created in.
    pub netns: &'a Netns,
    /// Device name (at most 15 characters).
    pub dev: &'a str,
    /// Addresses to add, like "192.0.2.1/30".
    pub addrs: &'a [&'a str],
}

/// A veth pair between two namespaces; deleted on drop (if its namespaces still exist).
#[derive(Debug)]
pub struct Veth {
    a_ns: String,
    a_dev: String,
    b_ns: String,
    b_dev: String,
}

impl Veth {
    /// Creates a veth pair whose ends are born directly inside the two namespaces (nothing ever
    /// appears in the root namespace), adds the addresses and brings both ends up.
    pub fn connect(a: VethEnd<'_>, b: VethEnd<'_>) -> Result<Veth> {
        check_ifname(a.dev)?;
        check_ifname(b.dev)?;
        run(Command::new("ip").args([
            "link",
            "add",
            a.dev,
            "netns",
            a.netns.name(),
            "type",
            "veth",
            "peer",
            "name",
            b.dev,
            "netns",
            b.netns.name(),
        ]))?;
        let veth = Veth {
            a_ns: a.netns.name().to_string(),
            a_dev: a.dev.to_string(),
            b_ns: b.netns.name().to_string(),
            b_dev: b.dev.to_string(),
        };
        for end in [a, b] {
            for addr in end.addrs {
                end.netns.ip(&["addr", "add", addr, "dev", end.dev])?;
            }
            end.netns.ip(&["link", "set", end.dev, "up"])?;
        }
        Ok(veth)
    }

    /// Device name of the first end.
    pub fn a_dev(&self) -> &str {
        &self.a_dev
    }

    /// Device name of the second end.
    pub fn b_dev(&self) -> &str {
        &self.b_dev
    }

    /// Namespace names of the two ends.
    pub fn namespaces(&self) -> (&str, &str) {
        (&self.a_ns, &self.b_ns)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting one end deletes both; the namespace may already be gone, which also removed it.
        let _ = run(Command::new("ip").args(["-n", &self.a_ns, "link", "del", &self.a_dev]));
    }
}

/// Shorthand for [`Veth::connect`]: joins `a` (device `a_dev`, address `a_addr`) and `b` with a
/// veth pair; addresses may be empty strings for none.
pub fn connect(
    a: &Netns,
    a_dev: &str,
    a_addr: &str,
    b: &Netns,
    b_dev: &str,
    b_addr: &str,
) -> Result<Veth> {
    let a_addrs: Vec<&str> = [a_addr].into_iter().filter(|s| !s.is_empty()).collect();
    let b_addrs: Vec<&str> = [b_addr].into_iter().filter(|s| !s.is_empty()).collect();
    Veth::connect(
        VethEnd {
            netns: a,
            dev: a_dev,
            addrs: &a_addrs,
        },
        VethEnd {
            netns: b,
            dev: b_dev,
            addrs: &b_addrs,
        },
    )
}
