//! Runs the fuzz target's function (`ovsdb::fuzzing::fuzz_decode`, also the cargo-fuzz target
//! `decode` in `fuzz/`) over a few thousand generated inputs, so that plain `cargo test` exercises
//! it: random bytes, JSON-RPC-like token soup, and valid server messages with random damage.
//! Nothing may panic.

use ovsdb::fuzzing::fuzz_decode;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const U1: &str = "00000000-0000-0000-0000-000000000001";
const U2: &str = "00000000-0000-0000-0000-000000000002";

/// Valid messages a server sends (without the leading control byte).
fn seeds() -> Vec<String> {
    vec![
        format!(
            r#"{{"id":1,"result":[true,"11111111-1111-1111-1111-111111111111",{{"T":{{"{U1}":{{"initial":{{"s":"x","i":3,"r":1.5,"b":["set",[true,false]],"u":["uuid","{U2}"],"m":["map",[["k",1]]],"e":"a"}}}}}}}}],"error":null}}"#
        ),
        format!(
            r#"{{"id":1,"result":{{"T":{{"{U1}":{{"new":{{"s":"x"}},"old":{{"s":"y"}}}}}}}},"error":null}}"#
        ),
        format!(
            r#"{{"id":null,"method":"update3","params":["ovsdb-rs","22222222-2222-2222-2222-222222222222",{{"T":{{"{U1}":{{"insert":{{"s":"a","m":["map",[["a",1],["b",2]]]}}}}}}}}]}}"#
        ),
        format!(
            r#"{{"id":null,"method":"update3","params":["ovsdb-rs","33333333-3333-3333-3333-333333333333",{{"T":{{"{U1}":{{"modify":{{"m":["map",[["a",1],["c",3]]],"i":["set",[]],"b":true}}}}}}}}]}}"#
        ),
        format!(
            r#"{{"id":null,"method":"update2","params":["ovsdb-rs",{{"T":{{"{U1}":{{"delete":null}}}}}}]}}"#
        ),
        format!(
            r#"{{"id":1,"result":{{"Database":{{"{U2}":{{"initial":{{"name":"Fuzz","model":"clustered","connected":true,"leader":true,"index":5}}}}}}}},"error":null}}"#
        ),
        format!(
            r#"{{"id":null,"method":"update2","params":["ovsdb-rs-server",{{"Database":{{"{U2}":{{"modify":{{"index":7,"leader":false}}}}}}}}]}}"#
        ),
        // Malformed _Server rows (once made the session panic).
        format!(r#"{{"id":1,"result":{{"Database":{{"{U2}":{{"initial":5}}}}}},"error":null}}"#),
        format!(
            r#"{{"id":null,"method":"update2","params":["ovsdb-rs-server",{{"Database":{{"{U2}":{{"modify":[1]}}}}}}]}}"#
        ),
        r#"{"id":"x","method":"echo","params":[1]}"#.to_string(),
        r#"{"id":null,"method":"locked","params":["lock"]}"#.to_string(),
        r#"{"id":null,"method":"stolen","params":["lock"]}"#.to_string(),
        r#"{"id":2,"result":{"locked":true},"error":null}"#.to_string(),
        r#"{"id":2,"result":null,"error":{"error":"unknown database","details":"d"}}"#.to_string(),
        format!(
            r#"{{"id":null,"method":"update","params":["ovsdb-rs",{{"T":{{"{U1}":{{"new":{{"s":"z","u":["set",[["uuid","{U1}"],["uuid","{U2}"]]]}}}}}},"U":{{"{U2}":{{"new":{{"name":"n"}}}}}}}}]}}"#
        ),
    ]
}

fn token() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\\",
        " ",
        "null",
        "true",
        "1",
        "-1",
        "1e999",
        "0.5",
        "\"id\":",
        "\"method\":",
        "\"params\":",
        "\"result\":",
        "\"error\":",
        "\"update3\"",
        "\"update2\"",
        "\"update\"",
        "\"locked\"",
        "\"stolen\"",
        "\"echo\"",
        "\"monitor_canceled\"",
        "\"ovsdb-rs\"",
        "\"ovsdb-rs-server\"",
        "\"T\"",
        "\"U\"",
        "\"Database\"",
        "\"initial\"",
        "\"insert\"",
        "\"modify\"",
        "\"delete\"",
        "\"new\"",
        "\"old\"",
        "\"set\"",
        "\"map\"",
        "\"uuid\"",
        "\"named-uuid\"",
        "\"s\"",
        "\"i\"",
        "\"r\"",
        "\"b\"",
        "\"u\"",
        "\"m\"",
        "\"e\"",
        "\"name\"",
        "\"model\"",
        "\"clustered\"",
        "\"connected\"",
        "\"leader\"",
        "\"index\"",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "9223372036854775808",
    ])
    .prop_map(str::to_string);
    prop_oneof![
        6 => fixed,
        1 => Just(format!("\"{U1}\"")),
        1 => Just(format!("\"{U2}\"")),
    ]
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    let raw = prop::collection::vec(any::<u8>(), 0..600);
    let soup = (any::<u8>(), prop::collection::vec(token(), 0..80)).prop_map(|(c, t)| {
        let mut v = vec![c];
        v.extend(t.concat().into_bytes());
        v
    });
    let damaged = (
        any::<u8>(),
        prop::collection::vec(prop::sample::select(seeds()), 1..4),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..6),
    )
        .prop_map(|(c, msgs, edits)| {
            let mut v = vec![c];
            v.extend(msgs.concat().into_bytes());
            for (at, byte, kind) in edits {
                let i = at.index(v.len());
                match kind {
                    0 => v[i] = byte,
                    1 => v.insert(i, byte),
                    _ => v.truncate(i.max(1)),
                }
            }
            v
        });
    prop_oneof![1 => raw, 2 => soup, 3 => damaged]
}

#[test]
fn fuzz_decode_never_panics() {
    for s in seeds() {
        for control in [0u8, 7, 63, 0x80] {
            let mut v = vec![control];
            v.extend(s.as_bytes());
            fuzz_decode(&v);
        }
    }
    let mut runner = TestRunner::new(Config {
        cases: 4000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&input(), |bytes| {
            fuzz_decode(&bytes);
            Ok(())
        })
        .unwrap();
}
