//! Parses JSON-RPC messages while they stream in.
//!
//! The initial monitor reply of a large database is one message of a hundred megabytes or more.
//! Buffering it whole and parsing it afterwards doubles the memory and serializes the work behind
//! the transfer. Instead a parser thread deserializes every message from the byte stream as it
//! arrives: a monitor reply or update notification goes straight into replica rows, anything else
//! into a small JSON tree. The object members of a message can come in any order (ovsdb-server writes
//! them in hash order), so the payload is recognised by its shape and by the monitor id it carries,
//! never by the `id` or `method` that may come after it.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::sync::{Arc, Mutex};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

use crate::replica::{TableLayout, TableUpdates, UpdatesSeed};
use crate::session::MonitorMethod;
use crate::value::Uuid;

/// What the parser must know to put updates straight into rows.
#[derive(Debug, Default, Clone)]
pub(crate) struct ParseContext {
    /// The layouts of the main monitor's tables.
    pub layouts: Arc<HashMap<String, TableLayout>>,
    /// The main monitor's id (its update notifications carry it first).
    pub monitor_id: Option<String>,
    /// Set while the main monitor request awaits its reply, with the method used.
    pub expect_reply: Option<MonitorMethod>,
}

/// Shared parse context of a connection.
pub(crate) type SharedContext = Arc<Mutex<ParseContext>>;

/// Table updates parsed into rows: from a monitor reply or an update notification.
#[derive(Debug)]
pub struct Updates {
    /// `monitor_cond_since`: whether the server found our last transaction id.
    pub(crate) found: bool,
    /// The last transaction id (`monitor_cond_since` reply, `update3`).
    pub(crate) txn: Option<Uuid>,
    /// The row updates.
    pub(crate) updates: TableUpdates,
}

impl Updates {
    /// Number of row updates carried.
    pub fn rows(&self) -> usize {
        self.updates.iter().map(|(_, r)| r.len()).sum()
    }
}

/// The `result` of a reply or the `params` of a notification.
#[derive(Debug)]
pub enum Payload {
    /// Any JSON value.
    Json(Json),
    /// Monitor data, already parsed into rows.
    Updates(Updates),
}

impl Payload {
    /// The JSON value, if this payload is one.
    pub fn into_json(self) -> Option<Json> {
        match self {
            Payload::Json(j) => Some(j),
            Payload::Updates(_) => None,
        }
    }
}

/// One parsed message.
#[derive(Debug, Default)]
pub(crate) struct Message {
    pub id: Option<Json>,
    pub method: Option<String>,
    pub params: Option<Payload>,
    pub result: Option<Payload>,
    pub error: Option<Json>,
}

/// Reads messages from `reader` until it ends or fails; hands each to `on_message`, which may stop
/// the loop with a reason. Returns `Ok` at the end of the stream between messages (whether the end
/// was clean is for the caller to say) and the reason otherwise.
pub(crate) fn read_messages<R: Read>(
    reader: R,
    ctx: &SharedContext,
    mut on_message: impl FnMut(Message) -> Result<(), String>,
) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(
        256 * 1024,
        reader,
    ));
    loop {
        match (MessageSeed { ctx }).deserialize(&mut de) {
            Ok(m) => on_message(m)?,
            Err(e) if e.is_eof() => return Ok(()),
            Err(e) if e.is_io() => return Err(format!("read failed: {e}")),
            Err(e) => return Err(format!("protocol error: invalid message: {e}")),
        }
    }
}

struct MessageSeed<'a> {
    ctx: &'a SharedContext,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = Message;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Message, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_> {
    type Value = Message;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let mut m = Message::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "id" => m.id = Some(map.next_value()?),
                "method" => {
                    let method: Json = map.next_value()?;
                    match method {
                        Json::String(s) => m.method = Some(s),
                        Json::Null => {}
                        other => {
                            return Err(de::Error::custom(format!(
                                "\"method\" is not a string: {other}"
                            )))
                        }
                    }
                }
                "error" => m.error = Some(map.next_value()?),
                "result" => m.result = Some(map.next_value_seed(ResultSeed { ctx: self.ctx })?),
                "params" => m.params = Some(map.next_value_seed(ParamsSeed { ctx: self.ctx })?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(m)
    }
}

fn snapshot(ctx: &SharedContext) -> ParseContext {
    ctx.lock().unwrap().clone()
}

/// Collects the rest of a sequence as JSON after `first`.
fn rest_of_seq<'de, A: SeqAccess<'de>>(first: Option<Json>, mut seq: A) -> Result<Json, A::Error> {
    let mut v: Vec<Json> = first.into_iter().collect();
    while let Some(x) = seq.next_element::<Json>()? {
        v.push(x);
    }
    Ok(Json::Array(v))
}

/// Any JSON value, for the generic cases of the payload visitors.
macro_rules! json_scalars {
    () => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Payload, E> {
            Ok(Payload::Json(Json::Bool(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Payload, E> {
            Ok(Payload::Json(Json::from(v)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Payload, E> {
            Ok(Payload::Json(Json::from(v)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Payload, E> {
            Ok(Payload::Json(Json::from(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Payload, E> {
            Ok(Payload::Json(Json::String(v.to_string())))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Payload, E> {
            Ok(Payload::Json(Json::Null))
        }
    };
}

fn generic_map<'de, A: MapAccess<'de>>(
    first_key: Option<String>,
    mut map: A,
) -> Result<Json, A::Error> {
    let mut m = Map::new();
    if let Some(k) = first_key {
        m.insert(k, map.next_value()?);
    }
    while let Some(k) = map.next_key::<String>()? {
        let v: Json = map.next_value()?;
        m.insert(k, v);
    }
    Ok(Json::Object(m))
}

/// A reply's `result`: the main monitor's reply goes into rows, anything else into JSON.
struct ResultSeed<'a> {
    ctx: &'a SharedContext,
}

impl<'de> DeserializeSeed<'de> for ResultSeed<'_> {
    type Value = Payload;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Payload, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ResultSeed<'_> {
    type Value = Payload;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC result")
    }
    json_scalars!();

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Payload, A::Error> {
        let ctx = snapshot(self.ctx);
        if ctx.expect_reply != Some(MonitorMethod::CondSince) {
            return rest_of_seq(None, seq).map(Payload::Json);
        }
        // [found, last-txn-id, table-updates2]
        let first: Option<Json> = seq.next_element()?;
        let Some(Json::Bool(found)) = first else {
            return rest_of_seq(first, seq).map(Payload::Json);
        };
        let txn: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("monitor_cond_since reply lacks <last-txn-id>"))?;
        let txn = Uuid::parse_str(&txn)
            .map_err(|e| de::Error::custom(format!("invalid last-txn-id {txn:?}: {e}")))?;
        let updates = seq
            .next_element_seed(UpdatesSeed {
                layouts: &ctx.layouts,
            })?
            .ok_or_else(|| de::Error::custom("monitor_cond_since reply lacks <table-updates2>"))?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "monitor_cond_since reply has extra elements",
            ));
        }
        Ok(Payload::Updates(Updates {
            found,
            txn: Some(txn),
            updates,
        }))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Payload, A::Error> {
        let ctx = snapshot(self.ctx);
        match ctx.expect_reply {
            Some(MonitorMethod::Cond | MonitorMethod::Plain) => {
                let updates = UpdatesSeed {
                    layouts: &ctx.layouts,
                }
                .visit_map(map)?;
                Ok(Payload::Updates(Updates {
                    found: false,
                    txn: None,
                    updates,
                }))
            }
            _ => generic_map(None, map).map(Payload::Json),
        }
    }
}

/// A notification's `params`: the main monitor's updates go into rows, anything else into JSON.
struct ParamsSeed<'a> {
    ctx: &'a SharedContext,
}

impl<'de> DeserializeSeed<'de> for ParamsSeed<'_> {
    type Value = Payload;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Payload, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed<'_> {
    type Value = Payload;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON-RPC params")
    }
    json_scalars!();

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Payload, A::Error> {
        generic_map(None, map).map(Payload::Json)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Payload, A::Error> {
        let ctx = snapshot(self.ctx);
        let first: Option<Json> = seq.next_element()?;
        let ours = match (&first, &ctx.monitor_id) {
            (Some(Json::String(id)), Some(mine)) => id == mine,
            _ => false,
        };
        if !ours {
            return rest_of_seq(first, seq).map(Payload::Json);
        }
        // update: [id, updates]; update2: [id, updates2]; update3: [id, last-txn-id, updates2].
        let Some(second) = seq.next_element_seed(TxnOrUpdates {
            layouts: &ctx.layouts,
        })?
        else {
            // Just the monitor id: `monitor_canceled`, or a broken update the session rejects.
            return Ok(Payload::Json(Json::Array(first.into_iter().collect())));
        };
        let (txn, updates) = match second {
            TxnOr::Updates(u) => (None, u),
            TxnOr::Txn(t) => {
                let u = seq
                    .next_element_seed(UpdatesSeed {
                        layouts: &ctx.layouts,
                    })?
                    .ok_or_else(|| {
                        de::Error::custom("update3 notification lacks its table updates")
                    })?;
                (Some(t), u)
            }
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("update notification has extra elements"));
        }
        Ok(Payload::Updates(Updates {
            found: false,
            txn,
            updates,
        }))
    }
}

enum TxnOr {
    Txn(Uuid),
    Updates(TableUpdates),
}

/// The second element of update notification params: a transaction id (update3) or the updates.
struct TxnOrUpdates<'a> {
    layouts: &'a HashMap<String, TableLayout>,
}

impl<'de> DeserializeSeed<'de> for TxnOrUpdates<'_> {
    type Value = TxnOr;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TxnOr, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TxnOrUpdates<'_> {
    type Value = TxnOr;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a transaction id or table updates")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<TxnOr, E> {
        Uuid::parse_str(v)
            .map(TxnOr::Txn)
            .map_err(|e| E::custom(format!("invalid last-txn-id {v:?}: {e}")))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TxnOr, A::Error> {
        UpdatesSeed {
            layouts: self.layouts,
        }
        .visit_map(map)
        .map(TxnOr::Updates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::DatabaseSchema;
    use serde_json::json;

    fn ctx(expect: Option<MonitorMethod>) -> SharedContext {
        let s = DatabaseSchema::from_json(&json!({"name": "T", "tables": {"A": {"columns": {
            "n": {"type": "string"}}}}}))
        .unwrap();
        let (l, _) = TableLayout::new(s.table("A").unwrap(), None);
        Arc::new(Mutex::new(ParseContext {
            layouts: Arc::new([("A".to_string(), l)].into()),
            monitor_id: Some("m".into()),
            expect_reply: expect,
        }))
    }

    fn parse(ctx: &SharedContext, text: &str) -> Vec<Message> {
        let mut out = vec![];
        read_messages(text.as_bytes(), ctx, |m| {
            out.push(m);
            Ok(())
        })
        .unwrap();
        out
    }

    const U: &str = "00000000-0000-0000-0000-000000000001";

    #[test]
    fn monitor_reply_any_member_order() {
        let c = ctx(Some(MonitorMethod::CondSince));
        let text = format!(
            r#"{{"result":[false,"{U}",{{"A":{{"{U}":{{"initial":{{"n":"x"}}}}}}}}],"error":null,"id":3}} {{"id":"echo","result":[]}}"#
        );
        let m = parse(&c, &text);
        assert_eq!(m.len(), 2);
        match m[0].result.as_ref().unwrap() {
            Payload::Updates(u) => assert_eq!(u.rows(), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(m[0].id, Some(json!(3)));
        assert!(matches!(m[1].result, Some(Payload::Json(_))));
    }

    #[test]
    fn notifications_by_monitor_id() {
        let c = ctx(None);
        let text = format!(
            r#"{{"params":["m","{U}",{{"A":{{"{U}":{{"modify":{{"n":"y"}}}}}}}}],"method":"update3","id":null}}
               {{"method":"update2","params":["other",{{"Database":{{}}}}],"id":null}}
               {{"method":"update","params":["m",{{"A":{{"{U}":{{"new":{{"n":"z"}}}}}}}}],"id":null}}"#
        );
        let m = parse(&c, &text);
        assert!(matches!(&m[0].params, Some(Payload::Updates(u)) if u.txn.is_some()));
        assert!(matches!(&m[1].params, Some(Payload::Json(_))));
        assert!(
            matches!(&m[2].params, Some(Payload::Updates(u)) if u.txn.is_none() && u.rows() == 1)
        );
    }

    #[test]
    fn garbage_is_an_error() {
        let c = ctx(None);
        let e = read_messages(&b"{\"id\":1} x"[..], &c, |_| Ok(())).unwrap_err();
        assert!(e.contains("protocol error"), "{e}");
    }
}
