//! Typed, schema-tolerant views of the OVN Northbound, Southbound and Open_vSwitch tables that
//! ovn-route reads.
//!
//! A view borrows a row of an [`ovsdb::Replica`]; it copies nothing. Every accessor tolerates schema
//! versions: a column that the server's schema lacks (an older OVN) reads as absent — `None`, an empty
//! set or an empty map — never as an error. Each module also says which columns ovn-route monitors
//! ([`nb::tables`], [`sb::tables`], [`vswitch::tables`]), so the server sends nothing else.

use ovsdb::{Datum, RowRef, TableSelect};

/// Declares a view type over one table, its monitored columns and its typed accessors.
macro_rules! view {
    (
        $(#[$meta:meta])*
        $name:ident = $table:literal {
            $( $(#[$fmeta:meta])* $field:ident : $col:literal => $kind:ident ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name<'a>(pub ovsdb::RowRef<'a>);

        impl<'a> $name<'a> {
            /// Table name.
            pub const TABLE: &'static str = $table;
            /// Columns ovn-route monitors in this table.
            pub const COLUMNS: &'static [&'static str] = &[$($col),*];

            /// The row's UUID.
            pub fn uuid(&self) -> ovsdb::Uuid {
                self.0.uuid
            }

            /// All rows of the table (none when the table is not replicated).
            pub fn all(replica: &'a ovsdb::Replica) -> impl Iterator<Item = $name<'a>> + 'a {
                replica.table($table).into_iter().flat_map(|t| t.iter()).map($name)
            }

            /// The row with `uuid`.
            pub fn get(replica: &'a ovsdb::Replica, uuid: &ovsdb::Uuid) -> Option<$name<'a>> {
                replica.table($table).and_then(|t| t.get(uuid)).map($name)
            }

            /// The monitor selection for this table.
            pub fn select() -> ovsdb::TableSelect {
                ovsdb::TableSelect::columns($table, Self::COLUMNS)
            }

            $( view!(@acc $(#[$fmeta])* $field, $col, $kind); )*
        }
    };
    (@acc $(#[$fmeta:meta])* $field:ident, $col:literal, str) => {
        $(#[$fmeta])*
        pub fn $field(&self) -> &'a str { $crate::col_str(&self.0, $col) }
    };
    (@acc $(#[$fmeta:meta])* $field:ident, $col:literal, opt_str) => {
        $(#[$fmeta])*
        pub fn $field(&self) -> Option<&'a str> { $crate::col(&self.0, $col).and_then(ovsdb::Datum::as_str) }
    };
    (@acc $(#[$fmeta:meta])* $field:ident, $col:literal, opt_i64) => {
        $(#[$fmeta])*
        pub fn $field(&self) -> Option<i64> { $crate::col(&self.0, $col).and_then(ovsdb::Datum::as_i64) }
    };
    (@acc $(#[$fmeta:meta])* $field:ident, $col:literal, opt_bool) => {
        $(#[$fmeta])*
        pub fn $field(&self) -> Option<bool> { $crate::col(&self.0, $col).and_then(ovsdb::Datum::as_bool) }
    };
    (@acc $(#[$fmeta:meta])* $field:ident, $col:literal, opt_uuid) => {
        $(#[$fmeta])*
        pub fn $field(&self) -> Option<ovsdb::Uuid> { $crate::col(&self.0, $col).and_then(ovsdb::Datum::as_uuid) }
    };
    (@acc $(#[$fmeta:meta])* $field:ident, $col:literal, strs) => {
        $(#[$fmeta])*
        pub fn $field(&self) -> impl Iterator<Item = &'a str> + 'a { $crate::col_or_empty(&self.0, $col).strs() }
    };
    (@acc $(#[$fmeta:meta])* $field:ident, $col:literal, uuids) => {
        $(#[$fmeta])*
        pub fn $field(&self) -> impl Iterator<Item = ovsdb::Uuid> + 'a { $crate::col_or_empty(&self.0, $col).uuids() }
    };
    (@acc $(#[$fmeta:meta])* $field:ident, $col:literal, map) => {
        $(#[$fmeta])*
        pub fn $field(&self) -> $crate::Map<'a> { $crate::Map($crate::col_or_empty(&self.0, $col)) }
    };
}

static EMPTY: std::sync::LazyLock<Datum> = std::sync::LazyLock::new(Datum::empty_map);

fn col<'a>(row: &RowRef<'a>, name: &str) -> Option<&'a Datum> {
    row.get(name)
}

fn col_or_empty<'a>(row: &RowRef<'a>, name: &str) -> &'a Datum {
    row.get(name).unwrap_or(&EMPTY)
}

fn col_str<'a>(row: &RowRef<'a>, name: &str) -> &'a str {
    row.get(name).and_then(Datum::as_str).unwrap_or("")
}

/// A string-to-string map column (`options`, `external_ids`, ...).
#[derive(Clone, Copy, Debug)]
pub struct Map<'a>(&'a Datum);

impl<'a> Map<'a> {
    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.0.get_str(key)
    }

    /// True when `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.0.get(key).is_some()
    }

    /// The value for `key` read as a boolean (`true`/`false`), if present and valid.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// All string pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.0
            .pairs()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?, v.as_str()?)))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub mod nb;
pub mod sb;
pub mod vswitch;

/// Everything ovn-route monitors in a database, by database name.
pub fn tables_for(database: &str) -> Option<Vec<TableSelect>> {
    match database {
        "OVN_Northbound" => Some(nb::tables()),
        "OVN_Southbound" => Some(sb::tables()),
        "Open_vSwitch" => Some(vswitch::tables()),
        _ => None,
    }
}
