//! OVSDB values: atoms and data (sets and maps), in RFC 7047 JSON notation.
//!
//! A [`Datum`] is a set or a map; a scalar column holds a set of one atom. Sets and maps are kept
//! sorted and free of duplicates, and a one-element set is always [`Datum::One`], so two data are equal
//! exactly when their OVSDB values are equal.
//!
//! The representation is compact because a replica holds millions of values: strings of up to 24
//! bytes are stored inline ([`Str`]), an atom and a datum take 24 bytes each, and sets and maps are
//! exact-size boxed slices.

use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
pub use uuid::Uuid;

/// An OVSDB string: inline up to 24 bytes, on the heap beyond.
pub type Str = compact_str::CompactString;

/// One OVSDB atom.
#[derive(Debug, Clone)]
pub enum Atom {
    /// An integer.
    Integer(i64),
    /// A real number.
    Real(f64),
    /// A boolean.
    Boolean(bool),
    /// A UTF-8 string.
    String(Str),
    /// A long UTF-8 string shared with the equal strings of other rows (map keys and values that
    /// repeat, such as `neutron:network_name`). It means exactly what [`Atom::String`] means and
    /// compares equal to it; read strings with [`Atom::as_str`].
    Shared(std::sync::Arc<str>),
    /// A row reference or other UUID.
    Uuid(Uuid),
    /// A reference to a row inserted earlier in the same transaction (`["named-uuid", name]`); only
    /// meaningful inside a transaction request.
    NamedUuid(Box<str>),
}

impl Atom {
    /// A string atom.
    pub fn string(s: impl AsRef<str>) -> Self {
        Atom::String(Str::new(s.as_ref()))
    }

    /// The string, if this atom is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            Atom::Shared(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this atom is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The boolean, if this atom is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Atom::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The UUID, if this atom is one.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(u) => Some(*u),
            _ => None,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Atom::Integer(_) => 0,
            Atom::Real(_) => 1,
            Atom::Boolean(_) => 2,
            Atom::String(_) | Atom::Shared(_) => 3,
            Atom::Uuid(_) => 4,
            Atom::NamedUuid(_) => 5,
        }
    }

    /// The RFC 7047 JSON form of this atom.
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).expect("atoms always serialize")
    }
}

impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Atom {}
impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Atom {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Atom::Integer(a), Atom::Integer(b)) => a.cmp(b),
            (Atom::Real(a), Atom::Real(b)) => a.total_cmp(b),
            (Atom::Boolean(a), Atom::Boolean(b)) => a.cmp(b),
            (Atom::String(_) | Atom::Shared(_), Atom::String(_) | Atom::Shared(_)) => {
                self.as_str().cmp(&other.as_str())
            }
            (Atom::Uuid(a), Atom::Uuid(b)) => a.cmp(b),
            (Atom::NamedUuid(a), Atom::NamedUuid(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Integer(i) => write!(f, "{i}"),
            Atom::Real(r) => write!(f, "{r}"),
            Atom::Boolean(b) => write!(f, "{b}"),
            Atom::String(s) => write!(f, "{s:?}"),
            Atom::Shared(s) => write!(f, "{s:?}"),
            Atom::Uuid(u) => write!(f, "{u}"),
            Atom::NamedUuid(n) => write!(f, "{n}"),
        }
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Self {
        Atom::String(Str::new(s))
    }
}
impl From<String> for Atom {
    fn from(s: String) -> Self {
        Atom::String(Str::from(s))
    }
}
impl From<i64> for Atom {
    fn from(i: i64) -> Self {
        Atom::Integer(i)
    }
}
impl From<bool> for Atom {
    fn from(b: bool) -> Self {
        Atom::Boolean(b)
    }
}
impl From<Uuid> for Atom {
    fn from(u: Uuid) -> Self {
        Atom::Uuid(u)
    }
}

/// An OVSDB datum: the value of one column. A scalar is a set of one atom.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Datum {
    /// A set of exactly one atom (every scalar, and one-element sets).
    One(Atom),
    /// A set of zero or at least two atoms, sorted and without duplicates.
    Set(Box<[Atom]>),
    /// A map, sorted by key, keys unique.
    Map(Box<[(Atom, Atom)]>),
}

impl Default for Datum {
    fn default() -> Self {
        Datum::empty_set()
    }
}

impl From<Atom> for Datum {
    fn from(a: Atom) -> Self {
        Datum::One(a)
    }
}

impl Datum {
    /// The empty set.
    pub fn empty_set() -> Self {
        Datum::Set(Box::new([]))
    }

    /// The empty map.
    pub fn empty_map() -> Self {
        Datum::Map(Box::new([]))
    }

    /// A set from atoms that are already sorted and unique.
    fn from_sorted(mut v: Vec<Atom>) -> Self {
        if v.len() == 1 {
            Datum::One(v.pop().unwrap())
        } else {
            Datum::Set(v.into_boxed_slice())
        }
    }

    /// A set from atoms in any order; duplicates are dropped.
    pub fn set(atoms: impl IntoIterator<Item = Atom>) -> Self {
        let mut v: Vec<Atom> = atoms.into_iter().collect();
        v.sort();
        v.dedup();
        Datum::from_sorted(v)
    }

    /// A map from pairs in any order; for a repeated key the last value wins (as ovsdb-server does).
    pub fn map(pairs: impl IntoIterator<Item = (Atom, Atom)>) -> Self {
        let mut v: Vec<(Atom, Atom)> = pairs.into_iter().collect();
        v.reverse();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        Datum::Map(v.into_boxed_slice())
    }

    /// The atoms of a set (empty for a map).
    pub fn atoms(&self) -> &[Atom] {
        match self {
            Datum::One(a) => std::slice::from_ref(a),
            Datum::Set(v) => v,
            Datum::Map(_) => &[],
        }
    }

    /// The pairs of a map (empty for a set).
    pub fn pairs(&self) -> &[(Atom, Atom)] {
        match self {
            Datum::Map(v) => v,
            _ => &[],
        }
    }

    /// The only atom of a one-element set.
    pub fn as_atom(&self) -> Option<&Atom> {
        match self {
            Datum::One(a) => Some(a),
            _ => None,
        }
    }

    /// The string of a one-string set.
    pub fn as_str(&self) -> Option<&str> {
        self.as_atom().and_then(Atom::as_str)
    }

    /// The integer of a one-integer set.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_atom().and_then(Atom::as_i64)
    }

    /// The boolean of a one-boolean set.
    pub fn as_bool(&self) -> Option<bool> {
        self.as_atom().and_then(Atom::as_bool)
    }

    /// The UUID of a one-UUID set.
    pub fn as_uuid(&self) -> Option<Uuid> {
        self.as_atom().and_then(Atom::as_uuid)
    }

    /// The strings of a set of strings.
    pub fn strs(&self) -> impl Iterator<Item = &str> {
        self.atoms().iter().filter_map(Atom::as_str)
    }

    /// The UUIDs of a set of UUIDs.
    pub fn uuids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.atoms().iter().filter_map(Atom::as_uuid)
    }

    /// The value for a string key of a map.
    pub fn get(&self, key: &str) -> Option<&Atom> {
        let pairs = self.pairs();
        pairs
            .binary_search_by(|(k, _)| match k {
                Atom::String(s) => s.as_str().cmp(key),
                Atom::Shared(s) => (**s).cmp(key),
                other => other.rank().cmp(&3),
            })
            .ok()
            .map(|i| &pairs[i].1)
    }

    /// The string value for a string key of a map.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Atom::as_str)
    }

    /// Number of atoms (set) or pairs (map).
    pub fn len(&self) -> usize {
        match self {
            Datum::One(_) => 1,
            Datum::Set(v) => v.len(),
            Datum::Map(v) => v.len(),
        }
    }

    /// True for the empty set or map.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies an `update2` "modify" difference to this datum (ovsdb-server(7) 4.1.14): for a column of
    /// at most one element (`new_value`) the difference is the new value; for a set, the symmetric
    /// difference; for a map, keys only in one side are toggled and keys in both take the new value.
    pub fn apply_diff(&mut self, diff: Datum, new_value: bool) {
        if new_value {
            *self = diff;
            return;
        }
        match (&*self, diff) {
            (Datum::Map(old), Datum::Map(d)) => {
                let mut out = Vec::with_capacity(old.len() + d.len());
                let mut a = old.iter().peekable();
                let mut b = d.into_vec().into_iter().peekable();
                loop {
                    match (a.peek(), b.peek()) {
                        (Some(x), Some(y)) => match x.0.cmp(&y.0) {
                            Ordering::Less => out.push(a.next().unwrap().clone()),
                            Ordering::Greater => out.push(b.next().unwrap()),
                            Ordering::Equal => {
                                let (_, old_v) = a.next().unwrap();
                                let (k, new_v) = b.next().unwrap();
                                if *old_v != new_v {
                                    out.push((k, new_v));
                                }
                            }
                        },
                        (Some(_), None) => out.push(a.next().unwrap().clone()),
                        (None, Some(_)) => out.push(b.next().unwrap()),
                        (None, None) => break,
                    }
                }
                *self = Datum::Map(out.into_boxed_slice());
            }
            // An empty set and an empty map look alike on the wire: treat them as equivalent.
            (Datum::Map(_), d @ (Datum::Set(_) | Datum::One(_))) => {
                if !d.is_empty() {
                    *self = d;
                }
            }
            // A map difference for a set: the schema and the data disagree; take the new value.
            (_, d @ Datum::Map(_)) => *self = d,
            (old, d) => {
                // Sets (or one atom): the symmetric difference.
                let (x, y) = (old.atoms(), d.atoms());
                let mut out = Vec::with_capacity(x.len() + y.len());
                let (mut i, mut j) = (0, 0);
                while i < x.len() || j < y.len() {
                    match (x.get(i), y.get(j)) {
                        (Some(p), Some(q)) => match p.cmp(q) {
                            Ordering::Less => {
                                out.push(p.clone());
                                i += 1;
                            }
                            Ordering::Greater => {
                                out.push(q.clone());
                                j += 1;
                            }
                            Ordering::Equal => {
                                i += 1;
                                j += 1;
                            }
                        },
                        (Some(p), None) => {
                            out.push(p.clone());
                            i += 1;
                        }
                        (None, Some(q)) => {
                            out.push(q.clone());
                            j += 1;
                        }
                        (None, None) => break,
                    }
                }
                *self = Datum::from_sorted(out);
            }
        }
    }

    /// The RFC 7047 JSON form (a single atom bare, otherwise `["set", ...]` or `["map", ...]`).
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).expect("data always serialize")
    }

    /// Parses the RFC 7047 JSON form.
    pub fn from_json(json: &Json) -> Result<Self, serde_json::Error> {
        Datum::deserialize(json)
    }
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

// ---------------------------------------------------------------------------------------------
// Serialization

impl Serialize for Atom {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Atom::Integer(i) => s.serialize_i64(*i),
            Atom::Real(r) => s.serialize_f64(*r),
            Atom::Boolean(b) => s.serialize_bool(*b),
            Atom::String(v) => s.serialize_str(v),
            Atom::Shared(v) => s.serialize_str(v),
            Atom::Uuid(u) => {
                let mut seq = s.serialize_seq(Some(2))?;
                seq.serialize_element("uuid")?;
                seq.serialize_element(&u.hyphenated().to_string())?;
                seq.end()
            }
            Atom::NamedUuid(n) => {
                let mut seq = s.serialize_seq(Some(2))?;
                seq.serialize_element("named-uuid")?;
                seq.serialize_element(&**n)?;
                seq.end()
            }
        }
    }
}

struct Pairs<'a>(&'a [(Atom, Atom)]);
impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (k, v) in self.0 {
            seq.serialize_element(&(k, v))?;
        }
        seq.end()
    }
}

impl Serialize for Datum {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Datum::One(a) => a.serialize(s),
            Datum::Set(v) => {
                let mut seq = s.serialize_seq(Some(2))?;
                seq.serialize_element("set")?;
                seq.serialize_element(&v[..])?;
                seq.end()
            }
            Datum::Map(v) => {
                let mut seq = s.serialize_seq(Some(2))?;
                seq.serialize_element("map")?;
                seq.serialize_element(&Pairs(v))?;
                seq.end()
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deserialization: straight from JSON text into atoms, no intermediate `serde_json::Value`.

#[derive(Clone, Copy)]
enum Tag {
    Uuid,
    NamedUuid,
    Set,
    Map,
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Tag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"uuid\", \"named-uuid\", \"set\" or \"map\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Tag, E> {
                match v {
                    "uuid" => Ok(Tag::Uuid),
                    "named-uuid" => Ok(Tag::NamedUuid),
                    "set" => Ok(Tag::Set),
                    "map" => Ok(Tag::Map),
                    other => Err(E::custom(format!("unknown OVSDB value tag {other:?}"))),
                }
            }
        }
        d.deserialize_str(V)
    }
}

struct UuidStr(Uuid);
impl<'de> Deserialize<'de> for UuidStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UuidStr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a UUID string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UuidStr, E> {
                Uuid::parse_str(v)
                    .map(UuidStr)
                    .map_err(|e| E::custom(format!("invalid UUID {v:?}: {e}")))
            }
        }
        d.deserialize_str(V)
    }
}

/// What a JSON array turned out to hold.
enum Tagged {
    Atom(Atom),
    Datum(Datum),
}

/// Parses any OVSDB value; with `intern`, long strings are shared through [`crate::intern`].
struct TaggedVisitor {
    intern: bool,
}

impl TaggedVisitor {
    fn string(&self, v: &str) -> Atom {
        if self.intern && v.len() > INLINE {
            Atom::Shared(crate::intern::intern(v))
        } else {
            Atom::String(Str::new(v))
        }
    }
}

/// Strings up to this length are stored inline.
const INLINE: usize = 24;

/// A map key or value: long strings in maps usually repeat across rows, so they are shared.
struct MapAtom(Atom);

impl<'de> Deserialize<'de> for MapAtom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(TaggedVisitor { intern: true })? {
            Tagged::Atom(a) => Ok(MapAtom(a)),
            _ => Err(de::Error::custom("expected an atom, found a set or map")),
        }
    }
}

impl<'de> Visitor<'de> for TaggedVisitor {
    type Value = Tagged;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an OVSDB atom, set or map")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Tagged, E> {
        Ok(Tagged::Atom(Atom::Integer(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Tagged, E> {
        i64::try_from(v)
            .map(|i| Tagged::Atom(Atom::Integer(i)))
            .map_err(|_| E::custom(format!("integer {v} out of range")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Tagged, E> {
        Ok(Tagged::Atom(Atom::Real(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Tagged, E> {
        Ok(Tagged::Atom(Atom::Boolean(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tagged, E> {
        Ok(Tagged::Atom(self.string(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tagged, A::Error> {
        let tag: Tag = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("empty array is not an OVSDB value"))?;
        let out = match tag {
            Tag::Uuid => {
                let u: UuidStr = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("[\"uuid\"] lacks its UUID"))?;
                Tagged::Atom(Atom::Uuid(u.0))
            }
            Tag::NamedUuid => {
                let n: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("[\"named-uuid\"] lacks its name"))?;
                Tagged::Atom(Atom::NamedUuid(n.into_boxed_str()))
            }
            Tag::Set => {
                let atoms: Vec<Atom> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("[\"set\"] lacks its elements"))?;
                Tagged::Datum(Datum::set(atoms))
            }
            Tag::Map => {
                let pairs: Vec<(MapAtom, MapAtom)> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("[\"map\"] lacks its pairs"))?;
                Tagged::Datum(Datum::map(pairs.into_iter().map(|(k, v)| (k.0, v.0))))
            }
        };
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("OVSDB value array has extra elements"));
        }
        Ok(out)
    }
}

impl<'de> Deserialize<'de> for Atom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(TaggedVisitor { intern: false })? {
            Tagged::Atom(a) => Ok(a),
            _ => Err(de::Error::custom("expected an atom, found a set or map")),
        }
    }
}

impl<'de> Deserialize<'de> for Datum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match d.deserialize_any(TaggedVisitor { intern: false })? {
            Tagged::Atom(a) => Datum::from(a),
            Tagged::Datum(d) => d,
        })
    }
}

/// Deserializes a datum (used as a seed where a visitor needs one).
pub(crate) struct DatumSeed;
impl<'de> DeserializeSeed<'de> for DatumSeed {
    type Value = Datum;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Datum, D::Error> {
        Datum::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shared_and_inline_strings_are_one_value() {
        let long = "neutron-7263f684-3aaf-4a18-8ade-236396c6646e";
        let d = Datum::from_json(&json!(["map", [[long, long]]])).unwrap();
        let (k, v) = &d.pairs()[0];
        assert!(matches!(k, Atom::Shared(_)) && matches!(v, Atom::Shared(_)));
        assert_eq!(*k, Atom::string(long));
        assert_eq!(d.get_str(long), Some(long));
        assert_eq!(d, Datum::map([(Atom::string(long), Atom::string(long))]));
        assert_eq!(d.to_json(), json!(["map", [[long, long]]]));
    }

    #[test]
    fn values_stay_compact() {
        // A replica holds millions of these: keep them at 24 bytes.
        assert_eq!(std::mem::size_of::<Atom>(), 24);
        assert_eq!(std::mem::size_of::<Datum>(), 24);
    }

    #[test]
    fn round_trips() {
        for j in [
            json!(1),
            json!("x"),
            json!(true),
            json!(["uuid", "2c5cdc9a-7a2b-4c8d-b5ff-6c0c3f3e0b8a"]),
            json!(["set", []]),
            json!(["set", [1, 2]]),
            json!(["map", [["a", "b"]]]),
        ] {
            let d = Datum::from_json(&j).unwrap();
            assert_eq!(d.to_json(), j, "{j}");
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Datum::from_json(&json!(["uuid", "nope"])).unwrap_err();
        assert!(e.to_string().contains("\"nope\""), "{e}");
        let e = Datum::from_json(&json!(["bag", []])).unwrap_err();
        assert!(e.to_string().contains("bag"), "{e}");
    }

    #[test]
    fn set_diff_is_symmetric_difference() {
        let mut d = Datum::set([1.into(), 2.into()]);
        d.apply_diff(Datum::set([2.into(), 3.into()]), false);
        assert_eq!(d, Datum::set([1.into(), 3.into()]));
    }

    #[test]
    fn map_diff() {
        let mut d = Datum::map([("a".into(), "1".into()), ("b".into(), "2".into())]);
        d.apply_diff(
            Datum::map([
                ("a".into(), "1".into()),
                ("b".into(), "3".into()),
                ("c".into(), "4".into()),
            ]),
            false,
        );
        assert_eq!(
            d,
            Datum::map([("b".into(), "3".into()), ("c".into(), "4".into())])
        );
        assert_eq!(d.get_str("c"), Some("4"));
        assert_eq!(d.get_str("a"), None);
    }
}
