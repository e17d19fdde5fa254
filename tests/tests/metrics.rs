//! `fleet metrics` and metric filters on three real noded processes. They share this host, so
//! the test gives one node, web-02, a proc tree of its own (`[data] procfs`, which the sampler
//! reads as the process() data function does) and drives it: a load of 99 and a CPU that the
//! test keeps 100% busy by advancing the tree's `stat` counters. The other two read the real
//! /proc. Then web-02 must be the worst host of the web group, `-S 'metric.load1>50'` must find
//! it alone (by broadcast: only nodes can answer), and its history must be there at once.

use std::time::{Duration, Instant};

use fleet_e2e::driven::{DRIVEN_LOAD, DrivenFleet, FAST};
use fleet_e2e::support::{FleetStream, Hub, Node, NodeSpec, Output, discover, fleet, wait_for, wait_for_nodes};
use serde_json::Value;

const T: Duration = Duration::from_secs(20);

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
    let fleet_of_three = DrivenFleet::start(T);
    let hub = &fleet_of_three.hub;

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

/// Copies of `sleep` under a name no other process has (`fz` and this test's pid), so a count
/// of processes by that name is exactly how many this test started. Killed on drop.
struct NamedSleepers {
    name: String,
    children: Vec<std::process::Child>,
    _dir: tempfile::TempDir,
}

impl NamedSleepers {
    fn start(n: usize) -> NamedSleepers {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("fz{}", std::process::id());
        let program = dir.path().join(&name);
        std::fs::copy("/bin/sleep", &program).unwrap();
        let children = (0..n).map(|_| std::process::Command::new(&program).arg("120").spawn().unwrap()).collect();
        NamedSleepers { name, children, _dir: dir }
    }
}

impl Drop for NamedSleepers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_profile_prints_its_graphs_as_columns_with_a_real_process_count() {
    let hub = Hub::start();
    let _nodes: Vec<Node> =
        ["web-01", "web-02"].iter().map(|n| NodeSpec::new(hub.endpoint(), n).facts("role: web\n").config(FAST).start()).collect();
    wait_for_nodes(hub.endpoint(), &["web-01", "web-02"], T);
    let sleepers = NamedSleepers::start(2);
    let graph = format!("procs:^{}$", sleepers.name);
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    let profiles =
        format!("[profiles.db]\ngraphs = [\"mem_used_pct\"]\n\n[profiles.web]\ngraphs = [\"load1\", \"cpu_busy_pct\", {graph:?}]\n");
    std::fs::write(&config, profiles).unwrap();
    let config = config.display().to_string();

    // Both nodes share this host: each counts the two sleepers.
    let mut doc = Value::Null;
    wait_for("a CPU sample and the process count from both nodes", T, || {
        doc = metrics_json(hub.endpoint(), &["--config", &config, "--profile", "web"]).0;
        ["web-01", "web-02"].iter().all(|n| host(&doc, n).is_some_and(|h| h["metrics"]["cpu_busy_pct"].is_number()))
    });
    for node in ["web-01", "web-02"] {
        assert_eq!(host(&doc, node).unwrap()["metrics"][&graph], 2.0, "{doc:#}");
    }

    let text = fleet(hub.endpoint(), &["--config", &config, "metrics", "--profile", "web"]);
    assert_eq!(text.code, Some(0), "{text}");
    let header: Vec<&str> = text.stdout.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["HOST", "LOAD1", "CPU%", graph.as_str()], "the profile's graphs are the columns: {text}");
    for line in text.stdout.lines().skip(1).take(2) {
        assert!(line.starts_with("web-0") && line.trim_end().ends_with(" 2"), "{text}");
    }

    let unknown = fleet(hub.endpoint(), &["--config", &config, "metrics", "--profile", "mail"]);
    assert_eq!(unknown.code, Some(4), "bad input: nothing sent: {unknown}");
    assert!(unknown.stderr.contains("no metric profile \"mail\" (profiles: db, web)"), "{unknown}");
}
