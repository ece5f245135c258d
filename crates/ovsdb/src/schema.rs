//! Database schemas (RFC 7047 section 3.2), as returned by `get_schema`.
//!
//! The client needs the schema for three things: to ask only for columns the server has (so one binary
//! works across schema versions), to know which columns are scalars (their `update2` difference is the
//! new value), and to fill in the defaults that `update2` rows omit.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::value::{Atom, Datum, Uuid};
use crate::Error;

/// The atomic types of RFC 7047.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomicType {
    /// `integer`
    Integer,
    /// `real`
    Real,
    /// `boolean`
    Boolean,
    /// `string`
    String,
    /// `uuid`
    Uuid,
}

impl AtomicType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "integer" => AtomicType::Integer,
            "real" => AtomicType::Real,
            "boolean" => AtomicType::Boolean,
            "string" => AtomicType::String,
            "uuid" => AtomicType::Uuid,
            _ => return None,
        })
    }

    /// The default atom of this type (0, 0.0, false, "", the all-zero UUID).
    pub fn default_atom(self) -> Atom {
        match self {
            AtomicType::Integer => Atom::Integer(0),
            AtomicType::Real => Atom::Real(0.0),
            AtomicType::Boolean => Atom::Boolean(false),
            AtomicType::String => Atom::String("".into()),
            AtomicType::Uuid => Atom::Uuid(Uuid::nil()),
        }
    }
}

/// The type of a column: key type, optional value type (maps), and the element count bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    /// Type of the set elements or map keys.
    pub key: AtomicType,
    /// Type of the map values; `None` for sets and scalars.
    pub value: Option<AtomicType>,
    /// Minimum number of elements (0 or 1).
    pub min: u64,
    /// Maximum number of elements; `u64::MAX` for "unlimited".
    pub max: u64,
}

impl ColumnType {
    /// True for a column that always holds exactly one atom.
    pub fn is_scalar(&self) -> bool {
        self.min == 1 && self.max == 1 && self.value.is_none()
    }

    /// True when an `update2` "modify" carries the new value rather than a difference: ovsdb-server
    /// diffs only composite columns (more than one element allowed); a column of at most one
    /// element, optional or not, is sent whole.
    pub fn diff_is_new_value(&self) -> bool {
        self.max <= 1
    }

    /// True for a map column.
    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }

    /// The value a row has in this column when nothing was written to it.
    pub fn default_datum(&self) -> Datum {
        if self.is_map() {
            Datum::empty_map()
        } else if self.min == 1 {
            Datum::One(self.key.default_atom())
        } else {
            Datum::empty_set()
        }
    }

    fn parse(j: &Json) -> Option<Self> {
        match j {
            Json::String(s) => Some(ColumnType {
                key: AtomicType::parse(s)?,
                value: None,
                min: 1,
                max: 1,
            }),
            Json::Object(o) => {
                let base = |b: &Json| -> Option<AtomicType> {
                    match b {
                        Json::String(s) => AtomicType::parse(s),
                        Json::Object(o) => AtomicType::parse(o.get("type")?.as_str()?),
                        _ => None,
                    }
                };
                let key = base(o.get("key")?)?;
                let value = match o.get("value") {
                    Some(v) => Some(base(v)?),
                    None => None,
                };
                let min = o.get("min").map_or(Some(1), Json::as_u64)?;
                let max = match o.get("max") {
                    None => 1,
                    Some(Json::String(s)) if s == "unlimited" => u64::MAX,
                    Some(v) => v.as_u64()?,
                };
                Some(ColumnType {
                    key,
                    value,
                    min,
                    max,
                })
            }
            _ => None,
        }
    }
}

/// One column of a table schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSchema {
    /// Column name.
    pub name: String,
    /// Its type.
    pub ty: ColumnType,
}

/// One table of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// Table name.
    pub name: String,
    /// Columns by name (the implicit `_uuid` and `_version` are not listed).
    pub columns: BTreeMap<String, ColumnSchema>,
    /// True for root tables (rows are not garbage-collected when unreferenced).
    pub is_root: bool,
}

/// A database schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSchema {
    /// Database name, e.g. `OVN_Northbound`.
    pub name: String,
    /// Schema version, e.g. `7.0.0`.
    pub version: String,
    /// Tables by name.
    pub tables: BTreeMap<String, TableSchema>,
}

impl DatabaseSchema {
    /// Parses a schema from its JSON form (`get_schema` reply or an `.ovsschema` file).
    pub fn from_json(j: &Json) -> Result<Self, Error> {
        let bad = |what: String| Error::Schema(what);
        let name = j
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| bad("schema has no \"name\"".into()))?
            .to_string();
        let version = j
            .get("version")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        let mut tables = BTreeMap::new();
        let tjs = j
            .get("tables")
            .and_then(Json::as_object)
            .ok_or_else(|| bad(format!("schema {name} has no \"tables\" object")))?;
        for (tname, tj) in tjs {
            let mut columns = BTreeMap::new();
            let cjs = tj
                .get("columns")
                .and_then(Json::as_object)
                .ok_or_else(|| bad(format!("table {tname} has no \"columns\" object")))?;
            for (cname, cj) in cjs {
                let ty = cj.get("type").and_then(ColumnType::parse).ok_or_else(|| {
                    bad(format!("column {tname}.{cname} has an invalid type: {cj}"))
                })?;
                columns.insert(
                    cname.clone(),
                    ColumnSchema {
                        name: cname.clone(),
                        ty,
                    },
                );
            }
            let is_root = tj.get("isRoot").and_then(Json::as_bool).unwrap_or(false);
            tables.insert(
                tname.clone(),
                TableSchema {
                    name: tname.clone(),
                    columns,
                    is_root,
                },
            );
        }
        Ok(DatabaseSchema {
            name,
            version,
            tables,
        })
    }

    /// A table by name.
    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_types_and_defaults() {
        let s = DatabaseSchema::from_json(&json!({
            "name": "T", "version": "1.0.0",
            "tables": {"A": {"columns": {
                "s": {"type": "string"},
                "o": {"type": {"key": "integer", "min": 0, "max": 1}},
                "m": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
                "r": {"type": {"key": {"type": "uuid", "refTable": "A"}, "min": 0, "max": "unlimited"}}
            }, "isRoot": true}}
        }))
        .unwrap();
        let t = s.table("A").unwrap();
        assert!(t.columns["s"].ty.is_scalar());
        assert_eq!(
            t.columns["s"].ty.default_datum(),
            Datum::from(Atom::string(""))
        );
        assert!(!t.columns["o"].ty.is_scalar());
        assert_eq!(t.columns["m"].ty.default_datum(), Datum::empty_map());
        assert_eq!(t.columns["r"].ty.key, AtomicType::Uuid);
    }

    #[test]
    fn bad_type_is_named() {
        let e = DatabaseSchema::from_json(
            &json!({"name": "T", "tables": {"A": {"columns": {"x": {"type": "bogus"}}}}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("A.x"), "{e}");
    }
}
