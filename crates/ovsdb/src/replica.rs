//! The in-memory replica: the monitored tables, rows keyed by UUID, and the change sets that say which
//! rows of which tables changed.
//!
//! Rows are stored column-indexed against a [`TableLayout`] (the monitored columns that the server's
//! schema actually has), so a column missing from an older schema simply reads as absent.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value as Json};

use crate::schema::{ColumnType, TableSchema};
use crate::value::{Datum, DatumSeed, Uuid};

/// The monitored columns of one table, in a fixed order.
#[derive(Debug, Clone, PartialEq)]
pub struct TableLayout {
    /// Table name.
    pub name: String,
    /// Monitored column names.
    pub columns: Vec<String>,
    types: Vec<ColumnType>,
    defaults: Vec<Datum>,
    index: HashMap<String, usize>,
}

impl TableLayout {
    /// A layout for `columns` of `schema` (`None`: every column); columns the schema lacks are dropped
    /// and returned as the second value.
    pub fn new(schema: &TableSchema, columns: Option<&[String]>) -> (Self, Vec<String>) {
        let mut missing = vec![];
        let cols: Vec<String> = match columns {
            None => schema.columns.keys().cloned().collect(),
            Some(list) => {
                let mut v = vec![];
                for c in list {
                    if schema.columns.contains_key(c) {
                        if !v.contains(c) {
                            v.push(c.clone());
                        }
                    } else {
                        missing.push(c.clone());
                    }
                }
                v
            }
        };
        let types: Vec<ColumnType> = cols.iter().map(|c| schema.columns[c].ty.clone()).collect();
        let defaults = types.iter().map(ColumnType::default_datum).collect();
        let index = cols
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        (
            TableLayout {
                name: schema.name.clone(),
                columns: cols,
                types,
                defaults,
                index,
            },
            missing,
        )
    }

    /// Index of a monitored column.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Type of the column at `idx`.
    pub fn column_type(&self, idx: usize) -> &ColumnType {
        &self.types[idx]
    }

    fn default_row(&self) -> Box<[Datum]> {
        self.defaults.clone().into_boxed_slice()
    }
}

/// One row: its values in layout order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    values: Box<[Datum]>,
}

impl Row {
    /// Values in layout order.
    pub fn values(&self) -> &[Datum] {
        &self.values
    }
}

/// A row together with its UUID and its table's layout, for reading columns by name.
#[derive(Clone, Copy)]
pub struct RowRef<'a> {
    /// The row's UUID.
    pub uuid: Uuid,
    /// The row.
    pub row: &'a Row,
    /// Its table's layout.
    pub layout: &'a TableLayout,
}

impl<'a> RowRef<'a> {
    /// A column's value; `None` when the column is not monitored or not in the server's schema.
    pub fn get(&self, column: &str) -> Option<&'a Datum> {
        self.layout
            .column_index(column)
            .map(|i| &self.row.values[i])
    }

    /// The row as an RFC 7047 JSON object (column -> value).
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        for (i, c) in self.layout.columns.iter().enumerate() {
            m.insert(c.clone(), self.row.values[i].to_json());
        }
        Json::Object(m)
    }
}

impl fmt::Debug for RowRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.uuid, self.to_json())
    }
}

/// One replicated table.
#[derive(Debug, Clone)]
pub struct Table {
    layout: Arc<TableLayout>,
    rows: HashMap<Uuid, Row>,
}

impl Table {
    /// An empty table with `layout`.
    pub fn new(layout: TableLayout) -> Self {
        Table {
            layout: Arc::new(layout),
            rows: HashMap::new(),
        }
    }

    /// The table's layout.
    pub fn layout(&self) -> &TableLayout {
        &self.layout
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// A row by UUID.
    pub fn get(&self, uuid: &Uuid) -> Option<RowRef<'_>> {
        self.rows.get(uuid).map(|row| RowRef {
            uuid: *uuid,
            row,
            layout: &self.layout,
        })
    }

    /// All rows, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = RowRef<'_>> {
        self.rows.iter().map(|(u, row)| RowRef {
            uuid: *u,
            row,
            layout: &self.layout,
        })
    }
}

/// What happened to the rows of one table in one update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableChanges {
    /// Rows that appeared.
    pub inserted: Vec<Uuid>,
    /// Rows that changed: UUID, the names of the changed columns and the row as it was before.
    pub modified: Vec<(Uuid, Vec<String>, Row)>,
    /// Rows that went away, with their last values.
    pub deleted: Vec<(Uuid, Row)>,
}

impl TableChanges {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.inserted.is_empty() && self.modified.is_empty() && self.deleted.is_empty()
    }

    /// Number of rows touched.
    pub fn len(&self) -> usize {
        self.inserted.len() + self.modified.len() + self.deleted.len()
    }
}

/// The net changes of one update, by table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeSet {
    /// Changes by table name; tables without changes are absent.
    pub tables: BTreeMap<String, TableChanges>,
}

impl ChangeSet {
    /// True when no row changed.
    pub fn is_empty(&self) -> bool {
        self.tables.values().all(TableChanges::is_empty)
    }

    /// Number of rows touched in all tables.
    pub fn len(&self) -> usize {
        self.tables.values().map(TableChanges::len).sum()
    }
}

/// An in-memory copy of the monitored part of one database.
#[derive(Debug, Clone, Default)]
pub struct Replica {
    tables: BTreeMap<String, Table>,
}

/// One row's update as parsed from the wire.
#[derive(Debug)]
pub(crate) enum RowUpdate {
    /// `initial`/`insert` (update2) or `new` (update v1): the full row; omitted columns are defaults.
    Put(Box<[Datum]>),
    /// `modify` (update2): differences of changed columns.
    Modify(Vec<(usize, Datum)>),
    /// `delete`, or `old` without `new`.
    Delete,
}

/// Parsed `<table-updates>` / `<table-updates2>`.
pub(crate) type TableUpdates = Vec<(String, Vec<(Uuid, RowUpdate)>)>;

impl Replica {
    /// An empty replica with the given table layouts.
    pub fn new(layouts: impl IntoIterator<Item = TableLayout>) -> Self {
        Replica {
            tables: layouts
                .into_iter()
                .map(|l| (l.name.clone(), Table::new(l)))
                .collect(),
        }
    }

    /// A table by name.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    /// All tables by name.
    pub fn tables(&self) -> impl Iterator<Item = (&str, &Table)> {
        self.tables.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The layouts of all tables.
    pub(crate) fn layouts(&self) -> Vec<TableLayout> {
        self.tables.values().map(|t| (*t.layout).clone()).collect()
    }

    /// Total number of rows.
    pub fn row_count(&self) -> usize {
        self.tables.values().map(Table::len).sum()
    }

    /// The replica as JSON: `{table: {uuid: {column: value}}}` in RFC 7047 notation, sorted.
    pub fn to_json(&self) -> Json {
        let mut out = Map::new();
        for (name, t) in &self.tables {
            let mut rows: Vec<_> = t.iter().collect();
            rows.sort_by_key(|r| r.uuid);
            let m: Map<String, Json> = rows
                .into_iter()
                .map(|r| (r.uuid.hyphenated().to_string(), r.to_json()))
                .collect();
            out.insert(name.clone(), Json::Object(m));
        }
        Json::Object(out)
    }

    /// Applies `<table-updates2>` given as JSON (as in an `update2` notification) and returns the net
    /// change. For building replicas from fixtures in tests of code that reads them.
    pub fn apply_json_updates2(&mut self, updates: &Json) -> Result<ChangeSet, serde_json::Error> {
        let layouts: HashMap<String, TableLayout> = self
            .tables
            .iter()
            .map(|(n, t)| (n.clone(), (*t.layout).clone()))
            .collect();
        let parsed = UpdatesSeed { layouts: &layouts }.deserialize(updates)?;
        Ok(self.apply(parsed))
    }

    /// An empty replica with every table of `schema` (all columns), or only `tables` when given.
    pub fn for_schema(schema: &crate::DatabaseSchema, tables: Option<&[&str]>) -> Self {
        Replica::new(
            schema
                .tables
                .values()
                .filter(|t| tables.is_none_or(|l| l.contains(&t.name.as_str())))
                .map(|t| TableLayout::new(t, None).0),
        )
    }

    /// Applies incremental updates and returns their net effect.
    pub(crate) fn apply(&mut self, updates: TableUpdates) -> ChangeSet {
        let mut cs = ChangeSet::default();
        for (tname, rows) in updates {
            let Some(table) = self.tables.get_mut(&tname) else {
                continue;
            };
            let layout = table.layout.clone();
            let tc = cs.tables.entry(tname).or_default();
            for (uuid, upd) in rows {
                match upd {
                    RowUpdate::Put(values) => {
                        let new = Row { values };
                        match table.rows.insert(uuid, new) {
                            None => tc.inserted.push(uuid),
                            Some(old) => {
                                let new = &table.rows[&uuid];
                                let changed = changed_columns(&layout, &old, new);
                                if !changed.is_empty() {
                                    tc.modified.push((uuid, changed, old));
                                }
                            }
                        }
                    }
                    RowUpdate::Modify(diffs) => {
                        let Some(row) = table.rows.get_mut(&uuid) else {
                            tracing::warn!(table = %layout.name, %uuid, "modify for an unknown row; ignored");
                            continue;
                        };
                        let old = row.clone();
                        for (i, d) in diffs {
                            row.values[i].apply_diff(d, layout.types[i].diff_is_new_value());
                        }
                        let changed = changed_columns(&layout, &old, row);
                        if !changed.is_empty() {
                            tc.modified.push((uuid, changed, old));
                        }
                    }
                    RowUpdate::Delete => {
                        if let Some(old) = table.rows.remove(&uuid) {
                            tc.deleted.push((uuid, old));
                        }
                    }
                }
            }
        }
        cs.tables.retain(|_, t| !t.is_empty());
        cs
    }

    /// Replaces the whole content with a full dump (and possibly new layouts), returning only the real
    /// net change: rows that did not change are not reported.
    pub(crate) fn replace(
        &mut self,
        layouts: Vec<TableLayout>,
        updates: TableUpdates,
    ) -> ChangeSet {
        let mut fresh = Replica::new(layouts);
        fresh.apply(updates);
        let mut cs = ChangeSet::default();
        for (name, new_t) in &fresh.tables {
            let mut tc = TableChanges::default();
            match self.tables.get(name) {
                Some(old_t) if *old_t.layout == *new_t.layout => {
                    for (u, old_row) in &old_t.rows {
                        match new_t.rows.get(u) {
                            None => tc.deleted.push((*u, old_row.clone())),
                            Some(new_row) => {
                                let changed = changed_columns(&new_t.layout, old_row, new_row);
                                if !changed.is_empty() {
                                    tc.modified.push((*u, changed, old_row.clone()));
                                }
                            }
                        }
                    }
                    tc.inserted = new_t
                        .rows
                        .keys()
                        .filter(|u| !old_t.rows.contains_key(u))
                        .copied()
                        .collect();
                }
                Some(old_t) => {
                    // The layout changed (different columns): report every row as modified or new.
                    for (u, old_row) in &old_t.rows {
                        match new_t.rows.get(u) {
                            None => tc.deleted.push((*u, old_row.clone())),
                            Some(_) => tc.modified.push((
                                *u,
                                new_t.layout.columns.clone(),
                                old_row.clone(),
                            )),
                        }
                    }
                    tc.inserted = new_t
                        .rows
                        .keys()
                        .filter(|u| !old_t.rows.contains_key(u))
                        .copied()
                        .collect();
                }
                None => tc.inserted = new_t.rows.keys().copied().collect(),
            }
            if !tc.is_empty() {
                cs.tables.insert(name.clone(), tc);
            }
        }
        for (name, old_t) in &self.tables {
            if !fresh.tables.contains_key(name) && !old_t.is_empty() {
                cs.tables.insert(
                    name.clone(),
                    TableChanges {
                        deleted: old_t.rows.iter().map(|(u, r)| (*u, r.clone())).collect(),
                        ..Default::default()
                    },
                );
            }
        }
        *self = fresh;
        cs
    }
}

fn changed_columns(layout: &TableLayout, old: &Row, new: &Row) -> Vec<String> {
    layout
        .columns
        .iter()
        .enumerate()
        .filter(|(i, _)| old.values[*i] != new.values[*i])
        .map(|(_, c)| c.clone())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Parsing table updates straight from the wire into rows (no intermediate JSON tree).

/// Seed for `<table-updates2>` and RFC 7047 `<table-updates>` alike (their row updates are told
/// apart by their members: `initial`/`insert`/`modify`/`delete` versus `old`/`new`).
pub(crate) struct UpdatesSeed<'a> {
    pub layouts: &'a HashMap<String, TableLayout>,
}

impl<'de> DeserializeSeed<'de> for UpdatesSeed<'_> {
    type Value = TableUpdates;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TableUpdates, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for UpdatesSeed<'_> {
    type Value = TableUpdates;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of table updates")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TableUpdates, A::Error> {
        let mut out = vec![];
        while let Some(table) = map.next_key::<String>()? {
            match self.layouts.get(&table) {
                Some(layout) => {
                    let rows = map.next_value_seed(TableSeed { layout })?;
                    out.push((table, rows));
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

struct TableSeed<'a> {
    layout: &'a TableLayout,
}

impl<'de> DeserializeSeed<'de> for TableSeed<'_> {
    type Value = Vec<(Uuid, RowUpdate)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TableSeed<'_> {
    type Value = Vec<(Uuid, RowUpdate)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of row updates keyed by UUID")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let uuid = Uuid::parse_str(&key)
                .map_err(|e| de::Error::custom(format!("row key {key:?} is not a UUID: {e}")))?;
            let upd = map.next_value_seed(RowUpdateSeed {
                layout: self.layout,
            })?;
            out.push((uuid, upd));
        }
        Ok(out)
    }
}

/// One row's update (`{"insert": row}`, `{"modify": diff}`, `{"old": .., "new": ..}`, ...).
pub(crate) struct RowUpdateSeed<'a> {
    pub layout: &'a TableLayout,
}

impl<'de> DeserializeSeed<'de> for RowUpdateSeed<'_> {
    type Value = RowUpdate;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RowUpdate, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowUpdateSeed<'_> {
    type Value = RowUpdate;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row update object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowUpdate, A::Error> {
        let mut result: Option<RowUpdate> = None;
        let mut saw_old = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "initial" | "insert" => {
                    result = Some(RowUpdate::Put(
                        map.next_value_seed(FullRowSeed(self.layout))?,
                    ))
                }
                "modify" => {
                    result = Some(RowUpdate::Modify(
                        map.next_value_seed(RowSeed(self.layout))?,
                    ))
                }
                "delete" => {
                    map.next_value::<IgnoredAny>()?;
                    result = Some(RowUpdate::Delete);
                }
                "new" => {
                    result = Some(RowUpdate::Put(
                        map.next_value_seed(FullRowSeed(self.layout))?,
                    ))
                }
                "old" => {
                    map.next_value::<IgnoredAny>()?;
                    saw_old = true;
                }
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown row update member {other:?}"
                    )));
                }
            }
        }
        match result {
            Some(r) => Ok(r),
            None if saw_old => Ok(RowUpdate::Delete),
            None => Err(de::Error::custom("empty row update")),
        }
    }
}

/// The changed columns of a `modify`: (column index, difference).
struct RowSeed<'a>(&'a TableLayout);

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Vec<(usize, Datum)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Vec<(usize, Datum)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(vec![])
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some(col) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.0.column_index(&col) {
                Some(i) => out.push((i, map.next_value_seed(DatumSeed)?)),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// A whole row (`initial`, `insert`, `new`), built in its final form: the layout's defaults with the
/// columns the server sent. Parsing straight into the stored representation means the initial dump
/// allocates each row once.
struct FullRowSeed<'a>(&'a TableLayout);

impl<'de> DeserializeSeed<'de> for FullRowSeed<'_> {
    type Value = Box<[Datum]>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FullRowSeed<'_> {
    type Value = Box<[Datum]>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.0.default_row())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = self.0.default_row();
        while let Some(col) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self.0.column_index(&col) {
                Some(i) => values[i] = map.next_value_seed(DatumSeed)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::DatabaseSchema;
    use serde_json::json;

    fn layouts() -> HashMap<String, TableLayout> {
        let s = DatabaseSchema::from_json(&json!({"name": "T", "tables": {"A": {"columns": {
            "n": {"type": "string"},
            "s": {"type": {"key": "integer", "min": 0, "max": "unlimited"}},
            "m": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}}}}}}))
        .unwrap();
        let (l, _) = TableLayout::new(s.table("A").unwrap(), None);
        [("A".to_string(), l)].into()
    }

    fn parse(l: &HashMap<String, TableLayout>, j: Json, _v1: bool) -> TableUpdates {
        UpdatesSeed { layouts: l }.deserialize(&j).unwrap()
    }

    const U: &str = "00000000-0000-0000-0000-000000000001";

    #[test]
    fn insert_modify_delete() {
        let l = layouts();
        let mut r = Replica::new(l.values().cloned());
        let cs = r.apply(parse(
            &l,
            json!({"A": {U: {"insert": {"n": "x", "s": 1}}}}),
            false,
        ));
        assert_eq!(cs.tables["A"].inserted.len(), 1);
        let row = r
            .table("A")
            .unwrap()
            .get(&Uuid::parse_str(U).unwrap())
            .unwrap();
        assert_eq!(row.get("m"), Some(&Datum::empty_map()));
        let cs = r.apply(parse(
            &l,
            json!({"A": {U: {"modify": {"s": ["set", [1, 2]], "m": ["map", [["k", "v"]]]}}}}),
            false,
        ));
        assert_eq!(
            cs.tables["A"].modified[0].1,
            vec!["m".to_string(), "s".to_string()]
        );
        let row = r
            .table("A")
            .unwrap()
            .get(&Uuid::parse_str(U).unwrap())
            .unwrap();
        assert_eq!(row.get("s").unwrap().to_json(), json!(2));
        let cs = r.apply(parse(&l, json!({"A": {U: {"delete": null}}}), false));
        assert_eq!(cs.tables["A"].deleted.len(), 1);
        assert_eq!(r.row_count(), 0);
    }

    #[test]
    fn replace_reports_only_net_change() {
        let l = layouts();
        let mut r = Replica::new(l.values().cloned());
        r.apply(parse(&l, json!({"A": {U: {"insert": {"n": "x"}}}}), false));
        let layouts: Vec<_> = l.values().cloned().collect();
        let cs = r.replace(
            layouts.clone(),
            parse(&l, json!({"A": {U: {"initial": {"n": "x"}}}}), false),
        );
        assert!(cs.is_empty(), "{cs:?}");
        let cs = r.replace(
            layouts,
            parse(&l, json!({"A": {U: {"initial": {"n": "y"}}}}), false),
        );
        assert_eq!(cs.tables["A"].modified.len(), 1);
    }

    #[test]
    fn optional_column_modify_carries_new_value() {
        let s = DatabaseSchema::from_json(&json!({"name": "T", "tables": {"A": {"columns": {
            "o": {"type": {"key": "integer", "min": 0, "max": 1}}}}}}))
        .unwrap();
        let (l, _) = TableLayout::new(s.table("A").unwrap(), None);
        let l: HashMap<String, TableLayout> = [("A".to_string(), l)].into();
        let mut r = Replica::new(l.values().cloned());
        r.apply(parse(&l, json!({"A": {U: {"insert": {"o": 1}}}}), false));
        // 1 -> 2 is sent as the new value 2, and 2 -> unset as the empty set.
        r.apply(parse(&l, json!({"A": {U: {"modify": {"o": 2}}}}), false));
        let u = Uuid::parse_str(U).unwrap();
        assert_eq!(
            r.table("A")
                .unwrap()
                .get(&u)
                .unwrap()
                .get("o")
                .unwrap()
                .to_json(),
            json!(2)
        );
        r.apply(parse(
            &l,
            json!({"A": {U: {"modify": {"o": ["set", []]}}}}),
            false,
        ));
        assert!(r
            .table("A")
            .unwrap()
            .get(&u)
            .unwrap()
            .get("o")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn v1_updates() {
        let l = layouts();
        let mut r = Replica::new(l.values().cloned());
        r.apply(parse(&l, json!({"A": {U: {"new": {"n": "x"}}}}), true));
        assert_eq!(r.row_count(), 1);
        let cs = r.apply(parse(&l, json!({"A": {U: {"old": {"n": "x"}}}}), true));
        assert_eq!(cs.tables["A"].deleted.len(), 1);
    }
}
