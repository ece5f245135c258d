//! Parse speed of a captured monitor reply: `cargo run --release --example parse_speed -- REPLY.json`.
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("reply file");
    let bytes = std::fs::read(&path).unwrap();
    let schema_text = std::fs::read_to_string("/usr/share/ovn/ovn-nb.ovsschema").unwrap();
    let schema =
        ovsdb::DatabaseSchema::from_json(&serde_json::from_str(&schema_text).unwrap()).unwrap();
    let t = Instant::now();
    let rows = ovsdb::fuzzing::parse_reply(&bytes[..], &schema);
    let s = t.elapsed().as_secs_f64();
    println!(
        "{rows} rows, {:.1} MB in {:.3} s: {:.0} MB/s",
        bytes.len() as f64 / 1e6,
        s,
        bytes.len() as f64 / 1e6 / s
    );
    if std::env::args().nth(2).as_deref() == Some("--only") {
        return;
    }
    let t = Instant::now();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "serde_json::Value from_slice: {:.3} s: {:.0} MB/s",
        s,
        bytes.len() as f64 / 1e6 / s
    );
    drop(v);
    let t = Instant::now();
    let v: serde::de::IgnoredAny =
        serde_json::from_reader(std::io::BufReader::new(&bytes[..])).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "IgnoredAny from_reader: {:.3} s: {:.0} MB/s",
        s,
        bytes.len() as f64 / 1e6 / s
    );
    let _ = v;
    let t = Instant::now();
    let v: serde::de::IgnoredAny = serde_json::from_slice(&bytes).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "IgnoredAny from_slice: {:.3} s: {:.0} MB/s",
        s,
        bytes.len() as f64 / 1e6 / s
    );
    let _ = v;
}
