//! Installs N (default 100,000) `/32 dev br-ex scope link` routes into table 1000 of a scratch
//! network namespace, once with `ip -batch` and once with the reconciler, and prints both
//! times (plus the no-op re-reconcile and the deletion). Needs root.
//!
//! Usage: `kernel-bench [N] [CONCURRENCY]`

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Instant;

use ovn_route_kernel::netns::ScratchNetns;
use ovn_route_kernel::{DesiredRoutes, IpNet, Reconciler, Route, DEFAULT_CONCURRENCY};

fn addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i)
}

fn bridge(ns: &ScratchNetns) {
    ns.ip(&["link", "add", "br-ex", "type", "bridge"]).unwrap();
    ns.ip(&["addr", "add", "172.24.4.1/24", "dev", "br-ex"])
        .unwrap();
    ns.ip(&["link", "set", "br-ex", "up"]).unwrap();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map(|a| a.parse().unwrap()).unwrap_or(100_000);
    let conc: usize = args
        .next()
        .map(|a| a.parse().unwrap())
        .unwrap_or(DEFAULT_CONCURRENCY);

    // ip -batch, in its own namespace.
    let ns = ScratchNetns::new().unwrap();
    bridge(&ns);
    let dir = std::env::temp_dir().join(format!("ovnr-k-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let batch = dir.join("routes.batch");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&batch).unwrap());
        for i in 0..n {
            writeln!(
                f,
                "route add {}/32 dev br-ex scope link table 1000 proto 201",
                addr(i)
            )
            .unwrap();
        }
    }
    let t = Instant::now();
    let st = Command::new("ip")
        .args(["-n", ns.name(), "-batch"])
        .arg(&batch)
        .status()
        .unwrap();
    let ip_batch = t.elapsed();
    assert!(st.success());
    drop(ns);
    std::fs::remove_dir_all(&dir).unwrap();

    // The reconciler, in a fresh namespace.
    let ns = ScratchNetns::new().unwrap();
    bridge(&ns);
    let (build, add, noop, del) = ns.block_on(move || async move {
        let t = Instant::now();
        let mut d = DesiredRoutes::new(1000, 201);
        d.extend((0..n).map(|i| Route::dev_link(IpNet::host(IpAddr::V4(addr(i))), "br-ex")));
        let build = t.elapsed();
        let rec = Reconciler::new().unwrap().with_concurrency(conc);
        let t = Instant::now();
        let s = rec.reconcile(&d).await.unwrap();
        let add = t.elapsed();
        assert_eq!(s.added, n as usize);
        let t = Instant::now();
        let s = rec.reconcile(&d).await.unwrap();
        let noop = t.elapsed();
        assert!(s.is_noop() && s.unchanged == n as usize);
        let t = Instant::now();
        let s = rec.reconcile(&DesiredRoutes::new(1000, 201)).await.unwrap();
        let del = t.elapsed();
        assert_eq!(s.deleted, n as usize);
        (build, add, noop, del)
    });
    let count = n.to_string();
    println!("routes:                       {count}");
    println!(
        "ip -batch add:                {:.3} s",
        ip_batch.as_secs_f64()
    );
    println!(
        "reconciler add (observe+diff+apply, concurrency {conc}): {:.3} s (desired set built in {:.3} s)",
        add.as_secs_f64(),
        build.as_secs_f64()
    );
    println!("reconciler no-op re-reconcile: {:.3} s", noop.as_secs_f64());
    println!("reconciler delete all:        {:.3} s", del.as_secs_f64());
    println!(
        "ratio reconciler/ip-batch:    {:.2}",
        add.as_secs_f64() / ip_batch.as_secs_f64()
    );
}
