//! Typed `transact` operations (RFC 7047 section 5.2) and their results.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use crate::value::{Datum, Uuid};
use crate::Error;

/// A column's new values, for `insert` and `update`.
pub type RowData = BTreeMap<String, Datum>;

/// Condition functions (RFC 7047 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `includes`
    Includes,
    /// `excludes`
    Excludes,
}

impl Function {
    fn as_str(self) -> &'static str {
        match self {
            Function::Lt => "<",
            Function::Le => "<=",
            Function::Eq => "==",
            Function::Ne => "!=",
            Function::Ge => ">=",
            Function::Gt => ">",
            Function::Includes => "includes",
            Function::Excludes => "excludes",
        }
    }
}

/// One condition of a `where` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Column name (`_uuid` allowed).
    pub column: String,
    /// Comparison.
    pub function: Function,
    /// Value compared with.
    pub value: Datum,
}

impl Condition {
    /// `column == value`
    pub fn eq(column: &str, value: impl Into<Datum>) -> Self {
        Condition {
            column: column.into(),
            function: Function::Eq,
            value: value.into(),
        }
    }

    /// `_uuid == uuid`
    pub fn uuid(uuid: Uuid) -> Self {
        Condition::eq("_uuid", crate::Atom::Uuid(uuid))
    }

    /// `column includes value`
    pub fn includes(column: &str, value: impl Into<Datum>) -> Self {
        Condition {
            column: column.into(),
            function: Function::Includes,
            value: value.into(),
        }
    }

    /// The JSON form `[column, function, value]`.
    pub fn to_json(&self) -> Json {
        json!([self.column, self.function.as_str(), self.value.to_json()])
    }
}

/// Mutators (RFC 7047 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutator {
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
    /// `/=`
    Div,
    /// `%=`
    Mod,
    /// `insert` into a set or map
    Insert,
    /// `delete` from a set or map
    Delete,
}

/// One mutation of a `mutate` operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// Column name.
    pub column: String,
    /// The mutator.
    pub mutator: Mutator,
    /// Its argument.
    pub value: Datum,
}

impl Mutation {
    /// `column insert value`
    pub fn insert(column: &str, value: impl Into<Datum>) -> Self {
        Mutation {
            column: column.into(),
            mutator: Mutator::Insert,
            value: value.into(),
        }
    }

    /// `column delete value`
    pub fn delete(column: &str, value: impl Into<Datum>) -> Self {
        Mutation {
            column: column.into(),
            mutator: Mutator::Delete,
            value: value.into(),
        }
    }

    fn to_json(&self) -> Json {
        let m = match self.mutator {
            Mutator::Add => "+=",
            Mutator::Sub => "-=",
            Mutator::Mul => "*=",
            Mutator::Div => "/=",
            Mutator::Mod => "%=",
            Mutator::Insert => "insert",
            Mutator::Delete => "delete",
        };
        json!([self.column, m, self.value.to_json()])
    }
}

/// What a `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitUntil {
    /// The selected rows equal the given rows.
    Equal,
    /// The selected rows differ from the given rows.
    NotEqual,
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// Insert a row; `uuid_name` lets later operations refer to it as `["named-uuid", name]`;
    /// `uuid` asks for a specific UUID (ovsdb-server 2.13+).
    Insert {
        /// Table.
        table: String,
        /// Column values.
        row: RowData,
        /// Name for references within the transaction.
        uuid_name: Option<String>,
        /// Requested UUID.
        uuid: Option<Uuid>,
    },
    /// Select rows (the result lists them).
    Select {
        /// Table.
        table: String,
        /// Conditions.
        conditions: Vec<Condition>,
        /// Columns to return (all if `None`).
        columns: Option<Vec<String>>,
    },
    /// Set columns of matching rows.
    Update {
        /// Table.
        table: String,
        /// Conditions.
        conditions: Vec<Condition>,
        /// Column values.
        row: RowData,
    },
    /// Mutate columns of matching rows.
    Mutate {
        /// Table.
        table: String,
        /// Conditions.
        conditions: Vec<Condition>,
        /// Mutations.
        mutations: Vec<Mutation>,
    },
    /// Delete matching rows.
    Delete {
        /// Table.
        table: String,
        /// Conditions.
        conditions: Vec<Condition>,
    },
    /// Wait until matching rows (projected on `columns`) equal or differ from `rows`; fails the
    /// transaction after `timeout_ms` (0: immediately, which makes it an assertion).
    Wait {
        /// Table.
        table: String,
        /// Conditions.
        conditions: Vec<Condition>,
        /// Columns compared.
        columns: Vec<String>,
        /// Expected rows.
        rows: Vec<RowData>,
        /// Equal or not equal.
        until: WaitUntil,
        /// Timeout in milliseconds (`None`: wait forever).
        timeout_ms: Option<u64>,
    },
    /// A comment written to the server's log.
    Comment(String),
    /// Fails the transaction unless this client holds the named lock.
    Assert(String),
}

fn row_json(row: &RowData) -> Json {
    Json::Object(row.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

fn conds_json(c: &[Condition]) -> Json {
    Json::Array(c.iter().map(Condition::to_json).collect())
}

impl Operation {
    /// The JSON form of the operation.
    pub fn to_json(&self) -> Json {
        match self {
            Operation::Insert {
                table,
                row,
                uuid_name,
                uuid,
            } => {
                let mut o = json!({"op": "insert", "table": table, "row": row_json(row)});
                if let Some(n) = uuid_name {
                    o["uuid-name"] = json!(n);
                }
                if let Some(u) = uuid {
                    o["uuid"] = json!(u.hyphenated().to_string());
                }
                o
            }
            Operation::Select {
                table,
                conditions,
                columns,
            } => {
                let mut o =
                    json!({"op": "select", "table": table, "where": conds_json(conditions)});
                if let Some(c) = columns {
                    o["columns"] = json!(c);
                }
                o
            }
            Operation::Update {
                table,
                conditions,
                row,
            } => {
                json!({"op": "update", "table": table, "where": conds_json(conditions), "row": row_json(row)})
            }
            Operation::Mutate {
                table,
                conditions,
                mutations,
            } => json!({"op": "mutate", "table": table, "where": conds_json(conditions),
                        "mutations": mutations.iter().map(Mutation::to_json).collect::<Vec<_>>()}),
            Operation::Delete { table, conditions } => {
                json!({"op": "delete", "table": table, "where": conds_json(conditions)})
            }
            Operation::Wait {
                table,
                conditions,
                columns,
                rows,
                until,
                timeout_ms,
            } => {
                let mut o = json!({"op": "wait", "table": table, "where": conds_json(conditions),
                    "columns": columns, "rows": rows.iter().map(row_json).collect::<Vec<_>>(),
                    "until": if *until == WaitUntil::Equal { "==" } else { "!=" }});
                if let Some(t) = timeout_ms {
                    o["timeout"] = json!(t);
                }
                o
            }
            Operation::Comment(c) => json!({"op": "comment", "comment": c}),
            Operation::Assert(lock) => json!({"op": "assert", "lock": lock}),
        }
    }
}

/// Checks a `transact` reply: one result per operation, and possibly a trailing commit error.
pub(crate) fn check_results(remote: &str, reply: Json, n_ops: usize) -> Result<Vec<Json>, Error> {
    let Json::Array(results) = reply else {
        return Err(Error::Protocol {
            remote: remote.to_string(),
            reason: "transact reply is not an array".into(),
        });
    };
    for (index, r) in results.iter().enumerate() {
        if let Some(err) = r.get("error").and_then(Json::as_str) {
            return Err(Error::Transaction {
                index,
                error: err.to_string(),
                details: r.get("details").and_then(Json::as_str).map(str::to_string),
            });
        }
    }
    if results.len() < n_ops {
        return Err(Error::Protocol {
            remote: remote.to_string(),
            reason: format!(
                "transact reply has {} results for {n_ops} operations",
                results.len()
            ),
        });
    }
    Ok(results)
}

/// The UUID in an insert operation's result.
pub fn inserted_uuid(result: &Json) -> Option<Uuid> {
    let u = result.get("uuid")?;
    Uuid::parse_str(u.get(1)?.as_str()?).ok()
}
