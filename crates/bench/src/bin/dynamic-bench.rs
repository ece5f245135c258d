//! dynamic-bench: the dynamic-routing benchmark (issue 4).
//!
//! Generates an NB with `--routers` gateway routers bound to `bench-hv1` (`options:chassis`), each
//! with `dynamic-routing=true`, `dynamic-routing-redistribute=static`, its own table
//! (`dynamic-routing-vrf-id` = 10000 + index: ordinary tables, no VRF device, so this runs on a
//! kernel without VRF support), one port `172.16.0.1/24` and `--prefixes / --routers` static
//! routes (distinct `/28`s of 10.0.0.0/8 via 172.16.0.254). Then, in a scratch network namespace
//! (a bridge `up0` 172.16.0.10/24 stands for the uplink):
//!
//! 1. advertise: `ovn-route agent` (daemon, `southbound = off`) from its spawn to the end of its
//!    first pass (the "reconciled" log line; the pass ends after the kernel acknowledged every
//!    route), checked by counting the protocol-84 routes; peak RSS (VmHWM) when converged;
//! 2. learn: `--learned` routes of protocol bgp spread over the tables (`ip -batch`, standing in
//!    for FRR), timed from the start of the batch until the NB holds that many marked static
//!    routes (counted from a conditional monitor's updates), then the agent's peak RSS;
//! 3. the reference: the same advertised routes with one `ip -batch` into a fresh namespace.
//!
//! Needs root, `ip`, `ovsdb-server`, `ovsdb-tool`. Results: BENCHMARKS.md, "Dynamic routing".

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use ovn_route_bench::{insert, smap, uuid_set, Ids};
use serde_json::{json, Value};

const ME: &str = "bench-hv1";
const TABLE_BASE: u32 = 10_000;
const OWNER: &str = "ovn-route:owner";

#[derive(Parser, Debug)]
#[command(about = "The dynamic-routing benchmark (see the doc comment and BENCHMARKS.md)")]
struct Cli {
    /// Routers with dynamic routing, all bound to this chassis.
    #[arg(long, default_value_t = 1000)]
    routers: usize,
    /// Advertised prefixes in all (static routes, spread evenly over the routers).
    #[arg(long, default_value_t = 100_000)]
    prefixes: usize,
    /// Learned prefixes arriving in the tables (spread over the routers).
    #[arg(long, default_value_t = 10_000)]
    learned: usize,
    /// The `ovn-route` binary.
    #[arg(long, default_value = "target/release/ovn-route")]
    binary: PathBuf,
    /// Work directory (default: a fresh one under /tmp).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Runs of the advertise measurement and of the reference.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// The agent's `RUST_LOG` (`debug` logs each pass's stages with their durations).
    #[arg(long, default_value = "info")]
    agent_log: String,
    /// A command the agent runs under, split on spaces (e.g. `perf record -g -o /tmp/perf.data
    /// --`); its peak RSS is then the wrapper's.
    #[arg(long)]
    agent_wrap: Option<String>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    ensure!(cli.routers > 0 && cli.routers <= 60_000, "1..60000 routers");
    let work = match &cli.work {
        Some(w) => w.clone(),
        None => std::env::temp_dir().join(format!("ovnr-dynbench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work)?;
    let binary = std::fs::canonicalize(&cli.binary).context("the ovn-route binary")?;
    let nb_db = work.join("nb.db");
    let _ = std::fs::remove_file(&nb_db);
    run(Command::new("ovsdb-tool")
        .arg("create")
        .arg(&nb_db)
        .arg("/usr/share/ovn/ovn-nb.ovsschema"))?;
    let ovs_db = work.join("ovs.db");
    let _ = std::fs::remove_file(&ovs_db);
    run(Command::new("ovsdb-tool")
        .arg("create")
        .arg(&ovs_db)
        .arg("/usr/share/openvswitch/vswitch.ovsschema"))?;
    let nb = Db::start(&work, "nb", &nb_db)?;
    let ovs = Db::start(&work, "ovs", &ovs_db)?;
    let mut ovs_rpc = Rpc::connect(&ovs.sock)?;
    ovs_rpc.transact(
        "Open_vSwitch",
        vec![insert(
            "Open_vSwitch",
            &Ids {
                seed: 4,
                mac_kind: 0,
            }
            .uuid(1, 0u64),
            json!({"external_ids": smap(&[("system-id", ME.to_string())])}),
        )],
    )?;
    let mut rpc = Rpc::connect(&nb.sock)?;
    let t = Instant::now();
    let per = cli.prefixes / cli.routers;
    generate(&mut rpc, cli.routers, per)?;
    let advertised = per * cli.routers;
    println!(
        "generated {} routers, {advertised} static routes in {:.1} s",
        cli.routers,
        t.elapsed().as_secs_f64()
    );

    let conf = work.join("agent.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\novsdb_connection = unix:{}\nreconcile_interval = 3600\n\
             [ovn]\novn_nb_connection = unix:{}\n[ovn_route]\nvrf_mode = none\n\
             southbound = off\ndynamic_routing = true\nfrr_vty_socket = {}\n\
             status_socket =\niproute2_dir = {}\n",
            ovs.sock.display(),
            nb.sock.display(),
            work.join("no-frr").display(),
            work.join("iproute2").display()
        ),
    )?;
    std::fs::create_dir_all(work.join("iproute2"))?;

    let routes = reference_batch(cli.routers, per);
    let mut adv = vec![];
    let mut rss = vec![];
    for i in 0..cli.repeat {
        let last = i + 1 == cli.repeat;
        let ns = Netns::new(&format!("adv{i}"))?;
        let mut agent = Agent::spawn(
            &ns,
            &binary,
            &conf,
            &work.join(format!("agent{i}.log")),
            &cli,
        )?;
        let secs = agent.first_pass(Duration::from_secs(600))?;
        let n = ns.count_routes("84")?;
        ensure!(
            n == advertised,
            "{n} protocol-84 routes, {advertised} expected"
        );
        let hwm = agent.hwm_kib();
        println!(
            "advertise run {i}: {advertised} routes in {} tables converged in {secs:.3} s, peak RSS {:.1} MiB",
            cli.routers,
            hwm as f64 / 1024.0
        );
        adv.push(secs);
        rss.push(hwm);
        if last {
            // The agent's follow-up full pass (new tables watched) must be over first.
            agent.wait_idle(Duration::from_secs(600))?;
            learn(&ns, &mut agent, &nb.sock, cli.routers, cli.learned)?;
        }
        agent.stop();
    }
    let mut reference = vec![];
    for i in 0..cli.repeat {
        let ns = Netns::new(&format!("ref{i}"))?;
        let file = work.join("reference.batch");
        std::fs::write(&file, &routes)?;
        let t = Instant::now();
        run(Command::new("ip")
            .args(["-n", &ns.name, "-batch"])
            .arg(&file))?;
        let s = t.elapsed().as_secs_f64();
        ensure!(ns.count_routes("84")? == advertised, "ip -batch count");
        println!("reference run {i}: ip -batch of the same {advertised} routes: {s:.3} s");
        reference.push(s);
    }
    let (a, r) = (median(adv), median(reference));
    println!(
        "advertise: median {a:.3} s vs ip -batch {r:.3} s = {:.2}x; peak RSS max {:.1} MiB",
        a / r,
        rss.iter().max().copied().unwrap_or(0) as f64 / 1024.0
    );
    drop(rpc);
    drop(nb);
    drop(ovs);
    if cli.work.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(())
}

/// The learned routes arrive; prints the time until the NB holds all of them.
fn learn(ns: &Netns, agent: &mut Agent, nb: &Path, routers: usize, n: usize) -> Result<()> {
    let mut batch = String::new();
    for k in 0..n {
        let table = TABLE_BASE + (k % routers) as u32;
        // 172.16.0.0/12 holds the learned /24s: 172.17.0.0 .. 172.31.255.0 (3840 of them), then
        // 100.64.0.0/10 (16384 more).
        let p = if k < 3840 {
            format!("172.{}.{}.0/24", 17 + k / 256, k % 256)
        } else {
            let j = k - 3840;
            format!("100.{}.{}.0/24", 64 + j / 256, j % 256)
        };
        batch.push_str(&format!(
            "route add {p} via 172.16.0.254 dev up0 table {table} proto bgp\n"
        ));
    }
    ensure!(n <= 3840 + 16384, "at most 20224 learned prefixes");
    let file = ns.dir.join("learned.batch");
    std::fs::write(&file, batch)?;
    let watch = MarkedWatch::start(nb, n)?;
    let before = watch.count();
    ensure!(before == 0, "{before} learned routes before the batch");
    let t = Instant::now();
    run(Command::new("ip")
        .args(["-n", &ns.name, "-batch"])
        .arg(&file))?;
    let t_kernel = t.elapsed().as_secs_f64();
    let deadline = t + Duration::from_secs(300);
    let done = loop {
        if let Some(at) = watch.done_at() {
            break at;
        }
        ensure!(
            Instant::now() < deadline,
            "only {} of {n} learned routes in the NB after 300 s",
            watch.count()
        );
        std::thread::sleep(Duration::from_millis(5));
        agent.check_alive()?;
    };
    let secs = done.duration_since(t).as_secs_f64();
    println!(
        "learn: {n} routes into the tables by ip -batch in {t_kernel:.3} s; all {n} in the NB \
         {secs:.3} s after the batch started; agent peak RSS {:.1} MiB",
        agent.hwm_kib() as f64 / 1024.0
    );
    Ok(())
}

fn prefix(idx: usize) -> String {
    let v = (10u32 << 24) + (idx as u32) * 16;
    format!(
        "{}.{}.{}.{}/28",
        v >> 24,
        (v >> 16) & 255,
        (v >> 8) & 255,
        v & 255
    )
}

/// The advertised routes as `ip -batch` lines (what the agent installs: blackholes, metric
/// 1000: the static routes are not tracked to a port).
fn reference_batch(routers: usize, per: usize) -> String {
    let mut s = String::new();
    for r in 0..routers {
        for k in 0..per {
            s.push_str(&format!(
                "route add blackhole {} table {} proto 84 metric 1000\n",
                prefix(r * per + k),
                TABLE_BASE + r as u32
            ));
        }
    }
    s
}

/// Writes the routers, their ports and static routes, in transactions of 100 routers.
fn generate(rpc: &mut Rpc, routers: usize, per: usize) -> Result<()> {
    let ids = Ids {
        seed: 4,
        mac_kind: 9,
    };
    for chunk in (0..routers).collect::<Vec<_>>().chunks(100) {
        let mut ops = vec![];
        for &r in chunk {
            let lrp = ids.uuid(2, r);
            ops.push(insert(
                "Logical_Router_Port",
                &lrp,
                json!({
                    "name": format!("lr{r}-pub"),
                    "mac": ids.mac(r),
                    "networks": ["set", ["172.16.0.1/24"]],
                }),
            ));
            let mut srs = vec![];
            for k in 0..per {
                let u = ids.uuid(3, r * per + k);
                ops.push(insert(
                    "Logical_Router_Static_Route",
                    &u,
                    json!({"ip_prefix": prefix(r * per + k), "nexthop": "172.16.0.254"}),
                ));
                srs.push(u);
            }
            ops.push(insert(
                "Logical_Router",
                &ids.uuid(1, r),
                json!({
                    "name": format!("lr{r}"),
                    "ports": uuid_set(&[lrp]),
                    "static_routes": uuid_set(&srs),
                    "options": smap(&[
                        ("chassis", ME.to_string()),
                        ("dynamic-routing", "true".into()),
                        ("dynamic-routing-redistribute", "static".into()),
                        ("dynamic-routing-vrf-id", (TABLE_BASE + r as u32).to_string()),
                    ]),
                }),
            ));
        }
        rpc.transact("OVN_Northbound", ops)?;
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn run(c: &mut Command) -> Result<String> {
    let out = c.output().with_context(|| format!("{c:?}"))?;
    ensure!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An `ovsdb-server` on one database file with a unix socket; killed on drop.
struct Db {
    child: Child,
    sock: PathBuf,
}

impl Db {
    fn start(work: &Path, name: &str, db: &Path) -> Result<Db> {
        let sock = work.join(format!("{name}.sock"));
        let _ = std::fs::remove_file(&sock);
        let child = Command::new("ovsdb-server")
            .arg("--no-chdir")
            .arg(format!("--remote=punix:{}", sock.display()))
            .arg(format!(
                "--unixctl={}",
                work.join(format!("{name}.ctl")).display()
            ))
            .arg(format!(
                "--log-file={}",
                work.join(format!("{name}.log")).display()
            ))
            .arg(db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("ovsdb-server")?;
        let t = Instant::now();
        while UnixStream::connect(&sock).is_err() {
            ensure!(t.elapsed() < Duration::from_secs(30), "{name}: no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Db { child, sock })
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal blocking JSON-RPC client (one request at a time).
struct Rpc {
    w: UnixStream,
    r: serde_json::StreamDeserializer<
        'static,
        serde_json::de::IoRead<BufReader<UnixStream>>,
        Value,
    >,
    id: u64,
}

impl Rpc {
    fn connect(sock: &Path) -> Result<Rpc> {
        let w = UnixStream::connect(sock)?;
        let r = serde_json::Deserializer::from_reader(BufReader::new(w.try_clone()?))
            .into_iter::<Value>();
        Ok(Rpc { w, r, id: 0 })
    }

    fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.id += 1;
        let id = self.id;
        serde_json::to_writer(
            &mut self.w,
            &json!({"method": method, "params": params, "id": id}),
        )?;
        self.w.flush()?;
        loop {
            let Some(msg) = self.r.next() else {
                bail!("connection closed");
            };
            let msg = msg?;
            if msg["method"] == "echo" {
                serde_json::to_writer(
                    &mut self.w,
                    &json!({"result": msg["params"], "error": null, "id": msg["id"]}),
                )?;
                continue;
            }
            if msg["id"] == json!(id) {
                ensure!(msg["error"].is_null(), "{method}: {}", msg["error"]);
                return Ok(msg["result"].clone());
            }
        }
    }

    fn transact(&mut self, db: &str, ops: Vec<Value>) -> Result<Value> {
        let mut params = vec![json!(db)];
        params.extend(ops);
        let r = self.call("transact", Value::Array(params))?;
        if let Some(e) = r
            .as_array()
            .and_then(|a| a.iter().find(|x| x.get("error").is_some()))
        {
            bail!("transaction failed: {e}");
        }
        Ok(r)
    }
}

/// Counts the NB static routes carrying ovn-route's dynamic-routing mark from a conditional
/// monitor's updates (pushed by the server: polling with a `select` over 110,000 rows every
/// few milliseconds kept ovsdb-server busy and slowed the agent's own transactions).
struct MarkedWatch {
    state: std::sync::Arc<std::sync::Mutex<(usize, Option<Instant>)>>,
}

impl MarkedWatch {
    /// Monitors the marked rows; records when `target` of them exist.
    fn start(sock: &Path, target: usize) -> Result<MarkedWatch> {
        let mut rpc = Rpc::connect(sock)?;
        let initial = rpc.call(
            "monitor_cond",
            json!(["OVN_Northbound", "bench-marked", {
                "Logical_Router_Static_Route": [{
                    "columns": ["external_ids"],
                    "where": [["external_ids", "includes", smap(&[(OWNER, "dynamic-routing".into())])]],
                }]
            }]),
        )?;
        let count = |v: &Value| -> (usize, usize) {
            let mut add = 0;
            let mut del = 0;
            if let Some(rows) = v["Logical_Router_Static_Route"].as_object() {
                for r in rows.values() {
                    if r.get("initial").is_some() || r.get("insert").is_some() {
                        add += 1;
                    } else if r.get("delete").is_some() {
                        del += 1;
                    }
                }
            }
            (add, del)
        };
        let n0 = count(&initial).0;
        let state = std::sync::Arc::new(std::sync::Mutex::new((n0, None)));
        let st = state.clone();
        std::thread::spawn(move || {
            while let Some(Ok(msg)) = rpc.r.next() {
                if msg["method"] == "echo" {
                    let _ = serde_json::to_writer(
                        &mut rpc.w,
                        &json!({"result": msg["params"], "error": null, "id": msg["id"]}),
                    );
                    continue;
                }
                if msg["method"] != "update2" {
                    continue;
                }
                let (add, del) = count(&msg["params"][1]);
                let mut s = st.lock().unwrap_or_else(|e| e.into_inner());
                s.0 = (s.0 + add).saturating_sub(del);
                if s.0 >= target && s.1.is_none() {
                    s.1 = Some(Instant::now());
                }
            }
        });
        Ok(MarkedWatch { state })
    }

    fn count(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    fn done_at(&self) -> Option<Instant> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

/// A scratch network namespace with a bridge `up0` (172.16.0.10/24); deleted on drop.
struct Netns {
    name: String,
    dir: PathBuf,
}

impl Netns {
    fn new(label: &str) -> Result<Netns> {
        let name = format!("ovnr-db-{}-{label}", std::process::id());
        let _ = run(Command::new("ip").args(["netns", "del", &name]));
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns {
            dir: std::env::temp_dir(),
            name,
        };
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["link", "add", "up0", "type", "bridge"],
            vec!["addr", "add", "172.16.0.10/24", "dev", "up0"],
            vec!["link", "set", "up0", "up"],
        ] {
            let mut a = vec!["-n", ns.name.as_str()];
            a.extend(args);
            run(Command::new("ip").args(a))?;
        }
        Ok(ns)
    }

    /// Routes of protocol `proto` in all tables.
    fn count_routes(&self, proto: &str) -> Result<usize> {
        let out = run(Command::new("ip").args([
            "-n", &self.name, "route", "show", "table", "all", "proto", proto,
        ]))?;
        Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(Command::new("ip").args(["netns", "del", &self.name]));
    }
}

/// `ovn-route agent` in a namespace; killed on drop.
struct Agent {
    child: Option<Child>,
    log: PathBuf,
    spawned: SystemTime,
}

impl Agent {
    fn spawn(ns: &Netns, binary: &Path, conf: &Path, log: &Path, cli: &Cli) -> Result<Agent> {
        let out = std::fs::File::create(log)?;
        let spawned = SystemTime::now();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .args(cli.agent_wrap.iter().flat_map(|w| w.split_whitespace()))
            .arg(binary)
            .args(["agent", "--config"])
            .arg(conf)
            .env("RUST_LOG", &cli.agent_log)
            .process_group(0)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        Ok(Agent {
            child: Some(child),
            log: log.to_path_buf(),
            spawned,
        })
    }

    /// Seconds from the spawn to the end of the first pass (its log line's timestamp).
    fn first_pass(&mut self, timeout: Duration) -> Result<f64> {
        let t = Instant::now();
        loop {
            self.check_alive()?;
            let f = std::fs::File::open(&self.log)?;
            for line in BufReader::new(f).lines() {
                let line = ovn_route_bench::strip_ansi(&line?);
                if line.contains("reconciled") {
                    let ts = line.split_whitespace().next().unwrap_or("");
                    let at = parse_rfc3339(ts).with_context(|| format!("timestamp of {line}"))?;
                    let since = at
                        .duration_since(self.spawned)
                        .unwrap_or_default()
                        .as_secs_f64();
                    return Ok(since);
                }
            }
            ensure!(t.elapsed() < timeout, "no pass after {timeout:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the agent used under 20 ms of CPU in one second.
    fn wait_idle(&mut self, timeout: Duration) -> Result<()> {
        let t = Instant::now();
        let cpu = |pid: u32| -> f64 {
            let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let f: Vec<&str> = s
                .rsplit_once(')')
                .map_or("", |x| x.1)
                .split_whitespace()
                .collect();
            let at = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (at(11) + at(12)) / 100.0
        };
        let pid = self.pid().context("the agent is not running")?;
        let mut last = cpu(pid);
        loop {
            std::thread::sleep(Duration::from_secs(1));
            self.check_alive()?;
            let now = cpu(pid);
            if now - last < 0.02 {
                return Ok(());
            }
            last = now;
            ensure!(
                t.elapsed() < timeout,
                "the agent stayed busy for {timeout:?}"
            );
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Peak RSS of the agent (the `ip netns exec` process execs it: same pid).
    fn hwm_kib(&self) -> u64 {
        let Some(pid) = self.pid() else { return 0 };
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(c) = self.child.as_mut() {
            if let Some(st) = c.try_wait()? {
                bail!("the agent exited ({st}); log: {}", self.log.display());
            }
        }
        Ok(())
    }

    /// Stops the agent's process group: SIGINT first (a `perf record` wrapper then writes its
    /// data and the agent exits), SIGKILL after 10 s.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let group = -(c.id() as libc::pid_t);
            // SAFETY: kill(2) on the process group the child leads; no memory is involved.
            unsafe { libc::kill(group, libc::SIGINT) };
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // SAFETY: as above (the wrapper's children too).
            unsafe { libc::kill(group, libc::SIGKILL) };
            let _ = c.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `2026-11-21T11:05:17.823879Z` (UTC, as tracing-subscriber writes it) as a system time.
fn parse_rfc3339(ts: &str) -> Option<SystemTime> {
    let (date, time) = ts.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let min: i64 = t.next()?.parse().ok()?;
    let s: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days as f64 * 86_400.0 + (h * 3600 + min * 60) as f64 + s;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs))
}
