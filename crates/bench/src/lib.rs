//! Pieces shared by the benchmark binaries: deterministic identifiers and OVSDB JSON builders
//! for generated databases (`gen-nb`, `agent-bench`).

use serde_json::{json, Value};

/// SplitMix64's finaliser: a bijective 64-bit mix.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An index of a generated row (`u64` or `usize`).
pub trait RowIndex: Copy {
    /// As 64 bits.
    fn to_u64(self) -> u64;
}

impl RowIndex for u64 {
    fn to_u64(self) -> u64 {
        self
    }
}

impl RowIndex for usize {
    fn to_u64(self) -> u64 {
        self as u64
    }
}

/// Deterministic identifiers: each (kind, index) pair gives an independent value, a pure function
/// of the seed.
#[derive(Debug, Clone, Copy)]
pub struct Ids {
    /// The generator's seed.
    pub seed: u64,
    /// The kind whose hash salts MAC addresses.
    pub mac_kind: u64,
}

impl Ids {
    /// The raw 64-bit value of (kind, idx).
    pub fn raw(&self, kind: u64, idx: u64) -> u64 {
        // Chained, not symmetric: h(kind) ^ idx only collides across kinds when two kinds' hashes
        // differ in the low ~20 bits alone (about 2^-44 per pair of kinds).
        mix(mix(mix(self.seed) ^ kind) ^ idx)
    }

    /// A version-4-formatted UUID.
    pub fn uuid(&self, kind: u64, idx: impl RowIndex) -> String {
        let a = self.raw(kind, idx.to_u64());
        let b = mix(a ^ 0xA5A5_5A5A_C3C3_3C3C);
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            (a & 0x0fff) | 0x4000,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    /// Neutron-style project id: 32 hex digits, no dashes.
    pub fn hex32(&self, kind: u64, idx: impl RowIndex) -> String {
        self.uuid(kind, idx).replace('-', "")
    }

    /// A unique `fa:16:3e:xx:xx:xx` MAC for a counter below 2^24 (bijective scramble).
    pub fn mac(&self, counter: impl RowIndex) -> String {
        let v = ((counter.to_u64().wrapping_mul(0x9E_3779) & 0xff_ffff)
            ^ (self.raw(self.mac_kind, 0) & 0xff_ffff))
            & 0xff_ffff;
        format!(
            "fa:16:3e:{:02x}:{:02x}:{:02x}",
            v >> 16,
            (v >> 8) & 0xff,
            v & 0xff
        )
    }
}

/// `["uuid", U]`.
pub fn uuid_ref(u: &str) -> Value {
    json!(["uuid", u])
}

/// `["set", [["uuid", U]...]]`.
pub fn uuid_set(us: &[String]) -> Value {
    json!(["set", us.iter().map(|u| uuid_ref(u)).collect::<Vec<_>>()])
}

/// `["set", [S...]]`.
pub fn str_set(ss: &[String]) -> Value {
    json!(["set", ss])
}

/// `["map", [[K, V]...]]`.
pub fn smap(pairs: &[(&str, String)]) -> Value {
    json!([
        "map",
        pairs.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
    ])
}

/// An `insert` operation with a `uuid` (OVSDB 2.x clients choose row UUIDs).
pub fn insert(table: &str, uuid: &str, row: Value) -> Value {
    json!({"op": "insert", "table": table, "uuid": uuid, "row": row})
}

/// `TABLE:col,col` for each table of a monitor selection (what `raw-reader --columns` takes).
pub fn selection_specs(sel: &[ovsdb::TableSelect]) -> Vec<String> {
    sel.iter()
        .map(|t| {
            format!(
                "{}:{}",
                t.table,
                t.columns.clone().unwrap_or_default().join(",")
            )
        })
        .collect()
}

/// The text without ANSI escape sequences (`ESC [ ... letter`), e.g. a colored agent log line.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
