//! The balancer's `[rules]` end to end: three real `noded` dom0s on the xl stand-in
//! (`tests/support/xl-standin`), each with a `datacenter` fact, and `fleet xen balance` under a
//! policy whose filter-language rules forbid one domU to move, refuse a dom0 as receiver, and
//! prefer another; the dry run names the rule behind every move and refusal, and `--apply` moves
//! the domU where the rules said.
//!
//! Nothing sleeps to synchronise: every wait polls for the state it needs under a deadline.

use std::path::Path;
use std::time::Duration;

use fleet_e2e::support::{Hub, Node, Output, fleet, standin, wait_for_nodes};
use tempfile::TempDir;

const STARTUP: Duration = Duration::from_secs(20);

/// xen-a (fra1) is over the threshold: db-main eats the most CPU, web1 some. xen-b (ams1) idles;
/// xen-c (fra1) is a little busier, still a candidate.
struct Dom0s {
    hub: Hub,
    state: TempDir,
    dir: TempDir,
    _nodes: Vec<Node>,
}

impl Dom0s {
    fn start() -> Dom0s {
        let state = tempfile::Builder::new().prefix("fleet-xl-standin-").tempdir().expect("tempdir");
        let seed = |args: &[&str]| standin::run(state.path(), args);
        seed(&["seed", "--host", "xen-a", "--load", "2.5,2.0,1.5", "--domu", "db-main:4096:4:500:0.9", "--domu", "web1:1024:2:100:0.3"]);
        seed(&["seed", "--host", "xen-b", "--load", "0.1", "--total-memory", "65536", "--domu", "cache1:2048:2:10"]);
        seed(&["seed", "--host", "xen-c", "--load", "0.3", "--total-memory", "16384"]);
        let hub = Hub::start();
        let node =
            |name: &str, dc: &str| standin::node_spec(hub.endpoint(), name, state.path()).facts(&format!("datacenter: {dc}\n")).start();
        let nodes = vec![node("xen-a", "fra1"), node("xen-b", "ams1"), node("xen-c", "fra1")];
        wait_for_nodes(hub.endpoint(), &["xen-a", "xen-b", "xen-c"], STARTUP);
        Dom0s { hub, state, dir: tempfile::tempdir().unwrap(), _nodes: nodes }
    }

    /// Writes the policy file `name` with the shared limits and `rules`; returns its path.
    fn policy(&self, name: &str, rules: &str) -> String {
        let path = self.dir.path().join(name);
        let limits = "interval = 0.4\nload_threshold = 1.0\nmax_over = 0.01\nmax_vm_per_host = 4\nmax_load_candidate = 0.5\n";
        std::fs::write(&path, format!("{limits}[rules]\n{rules}")).unwrap();
        path.display().to_string()
    }

    fn balance(&self, policy: &str, extra: &[&str]) -> Output {
        let mut args = vec!["xen", "balance", "--policy", policy, "--observe", "1.2"];
        args.extend_from_slice(extra);
        fleet(self.hub.endpoint(), &args)
    }

    fn state(&self) -> &Path {
        self.state.path()
    }
}

#[test]
fn rules_decide_which_domu_moves_where_and_the_plan_says_which_rule() {
    let dom0s = Dom0s::start();

    // movable keeps db-main home; receive refuses xen-b (ams1): web1 goes to xen-c.
    let policy = dom0s.policy("receive.toml", "movable = \"not name=/^db-/\"\nreceive = \"datacenter=fra1 and free_mem_mib>=4096\"\n");
    let out = dom0s.balance(&policy, &["--dry-run"]);
    assert_eq!(out.code, Some(0), "{out}");
    let text = &out.stdout;
    assert!(text.contains("Plan: 1 migration(s)\n  1. web1: xen-a -> xen-c\n     xen-a over 1.0 for "), "{out}");
    assert!(text.contains("\n     rule movable \"not name=/^db-/\" holds for web1 (name=web1)\n"), "{out}");
    assert!(
        text.contains(
            "\n     rule receive \"datacenter=fra1 and free_mem_mib>=4096\" holds for xen-c taking web1 (datacenter=fra1, free_mem_mib="
        ),
        "{out}"
    );
    assert!(text.contains("\n  domU db-main: on xen-a: rule movable \"not name=/^db-/\" is false (name=db-main)\n"), "{out}");
    assert!(
        text.contains(
            "\n  destination xen-b: rule receive \"datacenter=fra1 and free_mem_mib>=4096\" is false for web1 (datacenter=ams1, free_mem_mib="
        ),
        "{out}"
    );
    assert_eq!(standin::xl_list(dom0s.state(), "xen-a"), ["db-main", "web1"], "a dry run moves nothing");

    // prefer: xen-c (fra1) before xen-b, the idler one; --apply really moves web1 there.
    let policy = dom0s.policy("prefer.toml", "movable = \"not name=/^db-/\"\nprefer = [\"datacenter=fra1\"]\n");
    let out = dom0s.balance(&policy, &["--apply", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let doc = out.json();
    let m = &doc["plan"]["migrations"][0];
    assert_eq!((m["domu"].as_str(), m["to"].as_str()), (Some("web1"), Some("xen-c")), "{out}");
    let rules: Vec<&str> = m["rules"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(rules[1], "rule prefer #1 \"datacenter=fra1\" picked xen-c (datacenter=fra1)", "{out}");
    assert_eq!(doc["results"][0]["success"], true, "{out}");
    assert_eq!(standin::xl_list(dom0s.state(), "xen-a"), ["db-main"]);
    assert_eq!(standin::xl_list(dom0s.state(), "xen-c"), ["web1"]);
}

#[test]
fn a_rule_that_does_not_parse_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("balancer.toml");
    std::fs::write(&policy, "interval = 10\n[rules]\nreceive = \"datacenter=fra1 and\"\n").unwrap();
    let out = fleet("tcp://127.0.0.1:9", &["xen", "balance", "--policy", &policy.display().to_string()]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stderr.contains(&format!("{}:2: rules.receive[0]: invalid filter at column", policy.display())), "{out}");
}
