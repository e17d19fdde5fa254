//! `fleet metrics` and metric filters on three real noded processes. They share this host, so
//! the test gives one node, web-02, a proc tree of its own (`[data] procfs`, which the sampler
//! reads as the process() data function does) and drives it: a load of 99 and a CPU that the
//! test keeps 100% busy by advancing the tree's `stat` counters. The other two read the real
//! /proc. Then web-02 must be the worst host of the web group, `-S 'metric.load1>50'` must find
//! it alone (by broadcast: only nodes can answer), and its history must be there at once.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fleet_e2e::support::{FleetStream, Hub, Node, NodeSpec, Output, discover, fleet, wait_for, wait_for_nodes};
use serde_json::Value;

const T: Duration = Duration::from_secs(20);
/// web-02's load: far above what the real host shows while the tests run.
const DRIVEN_LOAD: f64 = 99.0;

/// A proc tree with `DRIVEN_LOAD`, one disk, one interface, three processes (one a zombie), and
/// `busy_ticks` user ticks in `stat`.
fn write_proc(dir: &Path, busy_ticks: u64) {
    std::fs::create_dir_all(dir.join("net")).unwrap();
    std::fs::write(dir.join("loadavg"), format!("{DRIVEN_LOAD:.2} 60.00 30.00 5/400 999\n")).unwrap();
    std::fs::write(dir.join("stat"), format!("cpu  {busy_ticks} 0 0 1000 0 0 0 0 0 0\n")).unwrap();
    std::fs::write(dir.join("meminfo"), "MemTotal: 1000000 kB\nMemAvailable: 50000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n").unwrap();
    std::fs::write(dir.join("mounts"), "/dev/root / ext4 rw 0 0\n").unwrap();
    std::fs::write(dir.join("net/dev"), "h1\nh2\n  eth0: 1000 1 0 0 0 0 0 0 2000 1 0 0 0 0 0 0\n").unwrap();
    for (pid, state) in [("1", "S"), ("2", "R"), ("3", "Z")] {
        std::fs::create_dir_all(dir.join(pid)).unwrap();
        std::fs::write(dir.join(pid).join("stat"), format!("{pid} (p) {state} 1\n")).unwrap();
    }
}

/// Keeps `dir`'s CPU busy: user ticks advance while idle ticks stand still, until dropped.
struct CpuDriver {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CpuDriver {
    fn start(dir: &Path) -> CpuDriver {
        let (stop, dir) = (Arc::new(AtomicBool::new(false)), dir.to_path_buf());
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut ticks = 0;
            while !flag.load(Ordering::Relaxed) {
                ticks += 50;
                write_proc(&dir, ticks);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        CpuDriver { stop, thread: Some(thread) }
    }
}

impl Drop for CpuDriver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Samples every half second, so the test sees several soon.
const FAST: &str = "[metrics]\ninterval = 0.5\nhistory_minutes = 1.0\n";

fn metrics_json(hub: &str, args: &[&str]) -> (Value, Output) {
    let mut all = vec!["metrics", "--json"];
    all.extend_from_slice(args);
    let out = fleet(hub, &all);
    (out.json(), out)
}

/// The host rows of a `fleet metrics --json` document, by identity.
fn host<'a>(doc: &'a Value, identity: &str) -> Option<&'a Value> {
    doc["hosts"].as_array()?.iter().find(|h| h["identity"] == identity)
}

#[test]
fn the_driven_node_is_the_worst_of_its_group_and_metric_filters_find_it() {
    let hub = Hub::start();
    let tmp = tempfile::tempdir().unwrap();
    let proc_dir = tmp.path().join("proc");
    write_proc(&proc_dir, 0);
    let _driver = CpuDriver::start(&proc_dir);
    let driven_config = format!("[data]\nprocfs = {:?}\n\n{FAST}", proc_dir.display().to_string());
    let _nodes: Vec<Node> = vec![
        NodeSpec::new(hub.endpoint(), "web-01").facts("role: web\n").config(FAST).start(),
        NodeSpec::new(hub.endpoint(), "web-02").facts("role: web\n").config(&driven_config).start(),
        NodeSpec::new(hub.endpoint(), "db-01").facts("role: db\n").config(FAST).start(),
    ];
    wait_for_nodes(hub.endpoint(), &["db-01", "web-01", "web-02"], T);

    // Every node has a sample with CPU % (which needs two reads) within a few seconds.
    let mut doc = Value::Null;
    wait_for("a CPU sample from every node", T, || {
        doc = metrics_json(hub.endpoint(), &["--group", "role"]).0;
        ["web-01", "web-02", "db-01"].iter().all(|n| host(&doc, n).is_some_and(|h| h["metrics"]["cpu_busy_pct"].is_number()))
    });
    let driven = host(&doc, "web-02").unwrap();
    assert_eq!(driven["metrics"]["load1"], DRIVEN_LOAD, "{doc:#}");
    assert_eq!(driven["metrics"]["cpu_busy_pct"], 100.0, "the test keeps web-02's CPU busy: {doc:#}");
    assert_eq!(driven["metrics"]["mem_used_pct"], 95.0, "{doc:#}");
    assert_eq!(driven["metrics"]["zombies"], 1.0, "{doc:#}");
    // The real nodes measured the real host.
    let real = host(&doc, "web-01").unwrap();
    assert!(real["metrics"]["mem_total_bytes"].as_f64().unwrap() > 1e6, "{doc:#}");
    assert!(real["metrics"]["processes"].as_f64().unwrap() >= 3.0, "{doc:#}");
    assert!(real["metrics"]["load1"].as_f64().unwrap() < DRIVEN_LOAD, "{doc:#}");

    // Grouped by role: web first (its worst host is the worst overall), web-02 its worst host.
    assert_eq!(doc["groups"][0]["value"], "web", "{doc:#}");
    assert_eq!(doc["groups"][0]["worst_host"], "web-02", "{doc:#}");
    assert_eq!(doc["groups"][0]["metrics"]["load1"]["max"], DRIVEN_LOAD, "{doc:#}");
    assert_eq!(doc["groups"][1]["value"], "db", "{doc:#}");
    assert_eq!(doc["hosts"][0]["identity"], "web-02", "hosts worst first: {doc:#}");

    // The table says the same.
    let text = fleet(hub.endpoint(), &["metrics", "--group", "role"]);
    assert_eq!(text.code, Some(0), "{text}");
    let web = text.stdout.find("role=web  (2 hosts, worst: web-02)").unwrap_or_else(|| panic!("{text}"));
    let db = text.stdout.find("role=db  (1 host, worst: db-01)").unwrap_or_else(|| panic!("{text}"));
    assert!(web < db, "worst group first: {text}");
    let load_row = text.stdout.lines().find(|l| l.trim_start().starts_with("LOAD1")).unwrap_or_else(|| panic!("{text}"));
    assert!(load_row.contains("99.00") && load_row.trim_end().ends_with("web-02"), "{text}");
    let plain = fleet(hub.endpoint(), &["metrics"]);
    let first_row = plain.stdout.lines().nth(1).unwrap_or_default();
    assert!(first_row.starts_with("web-02") && first_row.contains("100.0%"), "worst host first: {plain}");

    // Metric filters: answered by the nodes, so discovery goes by broadcast.
    assert_eq!(discover(hub.endpoint(), &["-S", "metric.load1>50"]), ["web-02"]);
    assert_eq!(discover(hub.endpoint(), &["-S", "metric.mem_used_pct>=0"]), ["db-01", "web-01", "web-02"]);
    assert_eq!(discover(hub.endpoint(), &["-S", "metric.load1>50 and role=db"]), Vec::<String>::new());
    let (filtered, out) = metrics_json(hub.endpoint(), &["-S", "metric.load1>50"]);
    assert!(out.stderr.contains("broadcast"), "{out}");
    let names: Vec<&Value> = filtered["hosts"].as_array().unwrap().iter().map(|h| &h["identity"]).collect();
    assert_eq!(names, ["web-02"], "{out}");

    // The ring buffer: history at once, in columns, load 99 all along.
    let hist = fleet(hub.endpoint(), &["rpc", "metrics", "history", "metrics=load1", "-I", "web-02", "--json"]);
    let data = &hist.json()["replies"][0]["data"];
    let loads = data["series"]["load1"].as_array().unwrap_or_else(|| panic!("{hist}"));
    assert!(loads.len() >= 2 && loads.iter().all(|v| *v == DRIVEN_LOAD), "{hist}");
    assert_eq!(data["times"].as_array().unwrap().len(), loads.len(), "{hist}");
    assert_eq!(data["capacity"], 120, "one minute at 0.5 s: {hist}");
}

#[test]
fn watch_prints_round_after_round() {
    let hub = Hub::start();
    let _node = NodeSpec::new(hub.endpoint(), "solo").config(FAST).start();
    wait_for_nodes(hub.endpoint(), &["solo"], T);
    let mut watch = FleetStream::start(&["--hub", hub.endpoint(), "metrics", "--jsonl", "--watch", "--every", "0.3"]);
    // Rounds keep coming until the samples show up, each one JSON document on its line.
    let deadline = Instant::now() + T;
    let mut rounds = 0;
    let mut sampled = 0;
    while sampled < 2 && Instant::now() < deadline {
        let Ok(line) = watch.lines.recv_timeout(Duration::from_secs(5)) else { break };
        let doc: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        rounds += 1;
        if host(&doc, "solo").is_some_and(|h| h["time_ms"].as_u64() > Some(0)) {
            sampled += 1;
        }
    }
    let still_running = watch.running();
    assert!(sampled >= 2 && still_running, "--watch printed {rounds} round(s), {sampled} with a sample; running: {still_running}");
}
