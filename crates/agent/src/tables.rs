//! Stable routing-table ids for provider bridges, named in iproute2's `rt_tables`.
//!
//! A bridge keeps its id across restarts: an id already named after the bridge (in
//! `rt_tables`, `rt_tables.d/*.conf`, or the distribution's `/usr/share/iproute2/rt_tables`, e.g.
//! one the Python agent wrote) is reused; otherwise the lowest free id from 200 up is taken and
//! recorded as `ID BRIDGE` in `rt_tables.d/ovn-route.conf`, so `ip route show table br-ex` works.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Ids never handed out: unspec, default, main, local, and the reserved top id.
const RESERVED: [u32; 5] = [0, 253, 254, 255, u32::MAX];

/// The file ovn-route writes its allocations to, under the iproute2 directory.
pub const OUR_FILE: &str = "rt_tables.d/ovn-route.conf";

/// Why a table could not be named.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The registry file could not be written.
    #[error("cannot record routing table {id} for {name} in {path}: {source}")]
    Write {
        /// Table id.
        id: u32,
        /// Bridge name.
        name: String,
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// An existing name maps to an id ovn-route must not use.
    #[error("{path}: table {name} has id {id}, which is reserved or is the exposure table")]
    Reserved {
        /// The file naming it.
        path: PathBuf,
        /// Name.
        name: String,
        /// Id.
        id: u32,
    },
}

/// The routing tables known to iproute2 on this host, and ovn-route's allocations.
#[derive(Debug, Clone)]
pub struct TableRegistry {
    dir: PathBuf,
    extra: Vec<PathBuf>,
    avoid: Vec<u32>,
    read_only: bool,
}

fn parse(text: &str, out: &mut Vec<(u32, String)>) {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut it = line.split_whitespace();
        let (Some(id), Some(name)) = (it.next(), it.next()) else {
            continue;
        };
        let id = if let Some(hex) = id.strip_prefix("0x") {
            u32::from_str_radix(hex, 16).ok()
        } else {
            id.parse().ok()
        };
        if let Some(id) = id {
            out.push((id, name.to_string()));
        }
    }
}

impl TableRegistry {
    /// A registry over the iproute2 configuration directory `dir` (normally `/etc/iproute2`),
    /// never allocating the ids in `avoid` (the exposure table).
    pub fn new(dir: impl Into<PathBuf>, avoid: &[u32]) -> Self {
        TableRegistry {
            dir: dir.into(),
            extra: vec![PathBuf::from("/usr/share/iproute2/rt_tables")],
            avoid: avoid.to_vec(),
            read_only: false,
        }
    }

    /// Allocate ids without recording them (`--dry-run` changes nothing, not even rt_tables).
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Only read the files under the registry's own directory (tests).
    pub fn without_system_files(mut self) -> Self {
        self.extra.clear();
        self
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut files = self.extra.clone();
        files.push(self.dir.join("rt_tables"));
        if let Ok(rd) = std::fs::read_dir(self.dir.join("rt_tables.d")) {
            let mut more: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .collect();
            more.sort();
            files.extend(more);
        }
        files
    }

    /// Every (id, name, file) known.
    pub fn entries(&self) -> Vec<(u32, String, PathBuf)> {
        let mut out = Vec::new();
        for f in self.files() {
            if let Ok(text) = std::fs::read_to_string(&f) {
                let mut v = Vec::new();
                parse(&text, &mut v);
                out.extend(v.into_iter().map(|(i, n)| (i, n, f.clone())));
            }
        }
        out
    }

    /// The ids ovn-route allocated (its own file), by name.
    pub fn ours(&self) -> BTreeMap<String, u32> {
        let mut v = Vec::new();
        if let Ok(text) = std::fs::read_to_string(self.dir.join(OUR_FILE)) {
            parse(&text, &mut v);
        }
        v.into_iter().map(|(i, n)| (n, i)).collect()
    }

    /// The table of `name`, allocating and recording one if needed.
    pub fn table_for(&self, name: &str) -> Result<u32, TableError> {
        let entries = self.entries();
        if let Some((id, _, path)) = entries.iter().find(|(_, n, _)| n == name) {
            if RESERVED.contains(id) || self.avoid.contains(id) {
                return Err(TableError::Reserved {
                    path: path.clone(),
                    name: name.into(),
                    id: *id,
                });
            }
            return Ok(*id);
        }
        let used: std::collections::BTreeSet<u32> = entries.iter().map(|(i, _, _)| *i).collect();
        let id = (200..)
            .find(|i| !used.contains(i) && !RESERVED.contains(i) && !self.avoid.contains(i))
            .expect("a free table id");
        if self.read_only {
            return Ok(id);
        }
        let path = self.dir.join(OUR_FILE);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))?;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            writeln!(f, "{id}\t{name}")
        };
        write().map_err(|source| TableError::Write {
            id,
            name: name.into(),
            path: path.clone(),
            source,
        })?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_stable_ids_and_reuses_existing_names() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("rt_tables"),
            "255 local\n254 main\n253 default\n0 unspec\n200 br-old # python agent\n201 other\n",
        )
        .unwrap();
        let r = TableRegistry::new(d.path(), &[202]).without_system_files();
        assert_eq!(r.table_for("br-old").unwrap(), 200);
        assert_eq!(r.table_for("br-ex").unwrap(), 203);
        assert_eq!(r.table_for("br-vlan").unwrap(), 204);
        // Stable across a new registry (restart).
        let r2 = TableRegistry::new(d.path(), &[202]).without_system_files();
        assert_eq!(r2.table_for("br-ex").unwrap(), 203);
        assert_eq!(r2.ours().len(), 2);
    }

    #[test]
    fn refuses_reserved_ids() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("rt_tables"), "254 br-ex\n").unwrap();
        let r = TableRegistry::new(d.path(), &[]).without_system_files();
        let e = r.table_for("br-ex").unwrap_err().to_string();
        assert!(e.contains("br-ex") && e.contains("254"), "{e}");
    }

    #[test]
    fn read_only_allocates_without_writing() {
        let d = tempfile::tempdir().unwrap();
        let r = TableRegistry::new(d.path(), &[])
            .without_system_files()
            .read_only();
        assert_eq!(r.table_for("br-ex").unwrap(), 200);
        assert!(!d.path().join(OUR_FILE).exists());
    }
}
