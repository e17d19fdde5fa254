//! The xen agent and `fleet xen` end to end: a real hub and two real `noded` dom0s whose xen agent
//! runs the xl stand-in (`tests/support/xl-standin`) over one shared state directory, so a
//! migration really moves a domU from one node's `xl list` to the other's. Find, migrate (with
//! and without confirmation), and a balancer `--apply` on an induced overload.
//!
//! Nothing sleeps to synchronise: every wait polls for the state it needs under a deadline.

use std::path::Path;
use std::time::Duration;

use fleet_e2e::support::{Hub, Node, Output, fleet, standin, wait_for_nodes};
use serde_json::Value;
use tempfile::TempDir;

const XEN_A: &str = "xen-a";
const XEN_B: &str = "xen-b";
/// The migration address of xen-b, as xen-a's `xen_host_map` knows it (no DNS for it).
const XEN_B_ADDRESS: &str = "10.77.0.2";
const STARTUP: Duration = Duration::from_secs(20);

/// Two dom0 nodes on the stand-in, sharing `state`.
struct Dom0s {
    hub: Hub,
    state: TempDir,
    _nodes: Vec<Node>,
}

impl Dom0s {
    fn start(seed: impl FnOnce(&Path)) -> Dom0s {
        let state = tempfile::Builder::new().prefix("fleet-xl-standin-").tempdir().expect("tempdir");
        seed(state.path());
        let hub = Hub::start();
        let node = |name: &str, config: &str| standin::node_spec(hub.endpoint(), name, state.path()).config(config).start();
        let nodes = vec![node(XEN_A, &format!("[xen_host_map]\n{XEN_B} = \"{XEN_B_ADDRESS}\"\n")), node(XEN_B, "")];
        wait_for_nodes(hub.endpoint(), &[XEN_A, XEN_B], STARTUP);
        Dom0s { hub, state, _nodes: nodes }
    }

    fn fleet(&self, args: &[&str]) -> Output {
        fleet(self.hub.endpoint(), args)
    }

    fn state(&self) -> &Path {
        self.state.path()
    }
}

fn found_on(out: &Output) -> Vec<String> {
    let doc = out.json();
    doc["found_on"].as_array().unwrap_or_else(|| panic!("no found_on: {out}")).iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

/// domU name -> dom0, from `fleet xen list --json`.
fn placement(out: &Output) -> Vec<(String, String)> {
    let doc = out.json();
    let mut v: Vec<(String, String)> = doc["domus"]
        .as_array()
        .unwrap_or_else(|| panic!("no domus: {out}"))
        .iter()
        .map(|d| (d["name"].as_str().unwrap().to_string(), d["dom0"].as_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    v.sort();
    v
}

#[test]
fn find_migrate_and_see_the_domu_on_the_other_dom0() {
    let long = "a-very-long-domain-name-for-the-billing-cluster-node-0001";
    let dom0s = Dom0s::start(|state| {
        standin::run(
            state,
            &["seed", "--host", XEN_A, "--load", "0.3", "--domu", "web1:1024:2:120.5", "--domu", &format!("{long}:512:1:5")],
        );
        standin::run(state, &["seed", "--host", XEN_B, "--address", XEN_B_ADDRESS, "--load", "0.2", "--domu", "db1:4096:4:900:0:--p---"]);
    });

    // Which dom0 runs web1?
    let out = dom0s.fleet(&["xen", "find", "web1", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(found_on(&out), [XEN_A], "{out}");
    assert_eq!(out.json()["domu"]["mem"], 1024, "{out}");
    let out = dom0s.fleet(&["xen", "find", "nowhere", "--json"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(found_on(&out).is_empty(), "{out}");
    let out = dom0s.fleet(&["xen", "find", "web1"]);
    assert!(out.stdout.contains("web1 runs on xen-a  (id 1, 1024 MiB, 2 vCPU(s), state -b----"), "{out}");

    // The whole picture: every domU with its dom0, each dom0 marked simulated.
    let out = dom0s.fleet(&["xen", "list", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(placement(&out), pairs(&[("web1", XEN_A), (long, XEN_A), ("db1", XEN_B)]), "{out}");
    let doc = out.json();
    let b = doc["dom0s"].as_array().unwrap().iter().find(|d| d["name"] == XEN_B).unwrap();
    assert_eq!(b["simulated"], true, "{out}");
    assert_eq!(b["load"][0], 0.2, "{out}");
    let db1 = doc["domus"].as_array().unwrap().iter().find(|d| d["name"] == "db1").unwrap();
    assert_eq!((db1["paused"].as_bool(), db1["vcpus"].as_u64()), (Some(true), Some(4)), "{out}");
    let out = dom0s.fleet(&["xen", "list"]);
    assert!(out.stdout.contains("[simulated hypervisor]") && out.stdout.contains(long), "{out}");

    // Without --yes the admin must type the name; an empty stdin cancels and nothing moves.
    let out = dom0s.fleet(&["xen", "migrate", "web1", XEN_B]);
    assert_eq!(out.code, Some(4), "a cancelled confirmation sent nothing: {out}");
    assert!(out.stderr.contains("This will live-migrate one domU:"), "{out}");
    assert!(out.stderr.contains("from   xen-a") && out.stderr.contains("to     xen-b"), "{out}");
    assert!(out.stderr.contains("cancelled; nothing was migrated"), "{out}");
    assert_eq!(standin::xl_list(dom0s.state(), XEN_A), [long, "web1"]);

    // With --yes it moves, through xen-a's host map (the stand-in knows xen-b only by that address).
    let out = dom0s.fleet(&["xen", "migrate", "web1", XEN_B, "--yes", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let doc = out.json();
    assert_eq!(doc["result"]["success"], true, "{out}");
    assert!(doc["result"]["message"].as_str().unwrap().contains("Migration successful."), "{out}");
    assert_eq!(doc["now_on"], serde_json::json!([XEN_B]), "{out}");
    assert_eq!(standin::xl_list(dom0s.state(), XEN_A), [long]);
    assert_eq!(standin::xl_list(dom0s.state(), XEN_B), ["db1", "web1"]);
    let out = dom0s.fleet(&["xen", "list", "--json"]);
    assert_eq!(placement(&out), pairs(&[("web1", XEN_B), (long, XEN_A), ("db1", XEN_B)]), "{out}");
    let out = dom0s.fleet(&["xen", "find", "web1", "--json"]);
    assert_eq!(found_on(&out), [XEN_B], "{out}");

    // Refusals, before anything is sent to xl.
    let out = dom0s.fleet(&["xen", "migrate", "web1", XEN_B, "--yes"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stderr.contains("web1 already runs on xen-b"), "{out}");
    let out = dom0s.fleet(&["xen", "migrate", "web1", "xen-nowhere", "--yes"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stderr.contains("xen-nowhere is not a dom0 that answered (dom0s: xen-a, xen-b)"), "{out}");
    let out = dom0s.fleet(&["xen", "migrate", "web 1;reboot", XEN_A, "--yes"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stderr.contains("input 'domain' does not match the validation"), "{out}");

    // The node checks again, and xl's failure comes back with xl's own words.
    let out = dom0s.fleet(&["rpc", "xen", "migrate", "domain=ghost", &format!("destination={XEN_A}"), "-I", XEN_B, "--json"]);
    let reply = &out.json()["replies"][0];
    assert_eq!(reply["status"], "Aborted", "{out}");
    assert_eq!(reply["status_msg"], "domU 'ghost' does not run on xen-b", "{out}");
    let out = dom0s.fleet(&["rpc", "xen", "migrate", "domain=db1", "destination=xen-c", "-I", XEN_B, "--json"]);
    let reply = &out.json()["replies"][0];
    assert_eq!(reply["status"], "Aborted", "{out}");
    let msg = reply["status_msg"].as_str().unwrap();
    assert!(msg.starts_with("xl migrate db1 xen-c failed (exit status: 1)"), "{out}");
    assert!(msg.contains("ssh: Could not resolve hostname xen-c"), "{out}");
    assert_eq!(standin::xl_list(dom0s.state(), XEN_B), ["db1", "web1"]);
}

#[test]
fn balance_apply_on_an_induced_overload_moves_exactly_the_planned_domu() {
    let dom0s = Dom0s::start(|state| {
        // xen-a is over the threshold and "busy" eats CPU; xen-b idles.
        standin::run(
            state,
            &[
                "seed",
                "--host",
                XEN_A,
                "--load",
                "2.5,2.0,1.5",
                "--domu",
                "busy:2048:2:100:0.8",
                "--domu",
                "idle:512:1:50:0.0",
                "--domu",
                "calm:512:1:70:0.05",
            ],
        );
        standin::run(state, &["seed", "--host", XEN_B, "--address", XEN_B_ADDRESS, "--load", "0.1", "--domu", "db1:4096:4:900"]);
    });
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("balancer.toml");
    std::fs::write(
        &policy,
        format!(
            "interval = 0.4\nload_threshold = 1.0\nmax_over = 0.01\nmax_vm_per_host = 4\nmax_load_candidate = 0.5\n\
             vm_cooldown = 30\nhost_cooldown = 10\n[host_mapping]\n{XEN_B} = \"{XEN_B_ADDRESS}\"\n"
        ),
    )
    .unwrap();
    let history = dir.path().join("migrations.json");
    let policy = policy.display().to_string();
    let history = history.display().to_string();

    // The dry run plans one move and makes none.
    let out = dom0s.fleet(&["xen", "balance", "--policy", &policy, "--dry-run", "--observe", "1.2", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let doc = out.json();
    let planned: Vec<(String, String, String)> = doc["plan"]["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["domu"].as_str().unwrap().into(), m["from"].as_str().unwrap().into(), m["to"].as_str().unwrap().into()))
        .collect();
    assert_eq!(planned, [("busy".to_string(), XEN_A.to_string(), XEN_B.to_string())], "{out}");
    let reason = doc["plan"]["migrations"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("xen-a over 1.0 for ") && reason.contains("; busy ate ") && reason.ends_with("; xen-b has 1 of 4 VMs, load 0.1"),
        "{reason}"
    );
    assert_eq!(doc["plan"]["migrations"][0]["address"], XEN_B_ADDRESS, "{out}");
    assert_eq!(doc["results"], serde_json::json!([]), "{out}");
    assert_eq!(standin::xl_list(dom0s.state(), XEN_A), ["busy", "calm", "idle"]);

    // The text form shows the plan with its reason.
    let out = dom0s.fleet(&["xen", "balance", "--policy", &policy, "--observe", "0.8"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("Plan: 1 migration(s)\n  1. busy: xen-a -> xen-b via 10.77.0.2\n     xen-a over 1.0 for"), "{out}");

    // --apply moves exactly the planned domU, and only it.
    let out = dom0s.fleet(&["xen", "balance", "--policy", &policy, "--apply", "--observe", "1.2", "--history", &history, "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let doc = out.json();
    assert_eq!(doc["plan"]["migrations"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(doc["plan"]["migrations"][0]["domu"], "busy", "{out}");
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{out}");
    assert_eq!((results[0]["domain"].as_str(), results[0]["success"].as_bool()), (Some("busy"), Some(true)), "{out}");
    assert_eq!(standin::xl_list(dom0s.state(), XEN_A), ["calm", "idle"]);
    assert_eq!(standin::xl_list(dom0s.state(), XEN_B), ["busy", "db1"]);

    // The barrier: xen-a is still over (its load is pinned by the test), but it just sent a domU,
    // so the next round leaves it to settle instead of moving another one at once.
    let out = dom0s.fleet(&["xen", "balance", "--policy", &policy, "--apply", "--observe", "0.8", "--history", &history, "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let doc = out.json();
    assert_eq!(doc["plan"]["migrations"], serde_json::json!([]), "{out}");
    let rejected: Vec<&Value> = doc["plan"]["rejected"].as_array().unwrap().iter().filter(|r| r["name"] == XEN_A).collect();
    assert!(
        rejected.iter().any(|r| r["considered"] == "source" && r["why"].as_str().unwrap().contains("settling: sent busy to xen-b")),
        "{out}"
    );
    assert_eq!(standin::xl_list(dom0s.state(), XEN_A), ["calm", "idle"]);
}

#[test]
fn a_policy_with_a_typo_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("balancer.toml");
    std::fs::write(&policy, "interval = 10\nload_treshold = 1.0\n").unwrap();
    let out = fleet("tcp://127.0.0.1:9", &["xen", "balance", "--policy", &policy.display().to_string()]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stderr.contains(&format!("{}:2: unknown field `load_treshold`", policy.display())), "{out}");
}
