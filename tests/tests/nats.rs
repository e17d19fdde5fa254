//! The NATS transport end to end: a real 3-server `nats-server` cluster on loopback (routes between
//! the servers, the documented permissions), real `noded` processes spread over it, `noded
//! registry`, and the `fleet` CLI.
//!
//! The foundation's checks run from one body on both transports, the ZeroMQ hub and NATS. A
//! server SIGKILLed in the middle of a request loses no reply and runs nothing twice; a console on
//! one server reaches nodes on the other two through the routes.

use std::time::{Duration, Instant};

use fleet_e2e::nats::Cluster;
use fleet_e2e::support::{Hub, Node, NodeSpec, Output, discover, fleet, ping, wait_for, wait_for_nodes};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

const UK: &str = "node-uk-web";
const US: &str = "node-us-db";
const DE: &str = "node-de-web";

/// Where the nodes attach and what the console is told to use, for one transport.
trait Fleet {
    /// The `--hub` value of the console.
    fn console(&self) -> String;
    /// A node spec attached to this transport (the `i`-th node, to spread them).
    fn node(&self, i: usize, identity: &str) -> NodeSpec;
}

struct ZmqHub(Hub);

impl Fleet for ZmqHub {
    fn console(&self) -> String {
        self.0.endpoint().to_string()
    }
    fn node(&self, _: usize, identity: &str) -> NodeSpec {
        NodeSpec::new(self.0.endpoint(), identity)
    }
}

/// A cluster and its registry (killed with it).
struct Nats {
    cluster: Cluster,
    _registry: fleet_e2e::nats::Registry,
}

impl Nats {
    fn start() -> Nats {
        let cluster = Cluster::start(3);
        let registry = cluster.registry(0);
        Nats { cluster, _registry: registry }
    }
}

impl Fleet for Nats {
    fn console(&self) -> String {
        self.cluster.console_urls(0)
    }
    fn node(&self, i: usize, identity: &str) -> NodeSpec {
        let server = i % 3;
        let mut spec = NodeSpec::new(&self.cluster.node_url(server), identity);
        for a in self.cluster.node_args(server) {
            spec = spec.arg(a);
        }
        spec
    }
}

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect();
    out.sort();
    out
}

/// Names under `down` in a round's JSON.
fn down(doc: &Value) -> Vec<String> {
    let mut out: Vec<String> =
        doc["down"].as_array().into_iter().flatten().filter_map(|d| d["identity"].as_str().map(str::to_string)).collect();
    out.sort();
    out
}

/// The foundation's end-to-end checks, whatever carries the messages: filters select exactly, a
/// SIGKILLed node is named at once under no reply (or down), the registry lists it as down, and
/// it comes back after a restart.
fn foundation(fleet_on: &dyn Fleet, transport: &str) {
    let c = fleet_on.console();
    let mut nodes: Vec<Node> = [
        (UK, "country: uk\nrole: web\nrack: 3\n", &["base", "apache"][..]),
        (US, "country: us\nrole: db\nrack: 7\n", &["base", "postgresql"][..]),
        (DE, "country: de\nrole: web\nrack: 12\n", &["base", "apache"][..]),
    ]
    .iter()
    .enumerate()
    .map(|(i, (id, facts, classes))| fleet_on.node(i, id).facts(facts).classes(classes).start())
    .collect();
    let all = [DE, UK, US];
    let took = wait_for_nodes(&c, &all, T);
    eprintln!("[{transport}] 3 nodes registered {:.2} s after spawning", took.as_secs_f64());

    let (senders, out) = ping(&c, &[]);
    assert_eq!(senders, names(&all), "[{transport}] {out}");
    assert_eq!(out.code, Some(0), "[{transport}] {out}");
    let cases: &[(&[&str], &[&str])] = &[
        (&["-F", "country=uk"], &[UK]),
        (&["-F", "rack>5"], &[US, DE]),
        (&["-C", "apache"], &[UK, DE]),
        (&["-I", "/web/"], &[UK, DE]),
        (&["-S", "(country=uk or country=us) and not class=apache"], &[US]),
        (&["-S", "role=web and rack>=10"], &[DE]),
    ];
    for (filter, expected) in cases {
        assert_eq!(discover(&c, filter), names(expected), "[{transport}] discover {filter:?}");
        let (senders, out) = ping(&c, filter);
        assert_eq!(senders, names(expected), "[{transport}] ping {filter:?}: {out}");
    }

    // Killed: named at once, under no_reply or under down.
    let by_identity = ["-I", UK, "-I", US, "-I", DE, "--timeout", "2"];
    nodes[1].sigkill();
    let (senders, out) = ping(&c, &by_identity);
    assert_eq!(senders, names(&[UK, DE]), "[{transport}] {out}");
    let doc = out.json();
    let mut missing = strings(&doc["no_reply"]);
    missing.extend(down(&doc));
    assert_eq!(missing, names(&[US]), "[{transport}] {out}");
    assert_eq!(out.code, Some(2), "[{transport}] {out}");

    // The registry sees it leave: listed as down by a discovery round.
    let left = wait_for(&format!("[{transport}] the registry to list {US} as down"), T, || {
        let (_, out) = ping(&c, &["--timeout", "2"]);
        down(&out.json()) == names(&[US])
    });
    eprintln!("[{transport}] {US} listed as down {:.2} s after its SIGKILL", left.as_secs_f64());

    // And come back.
    nodes[1].restart();
    let back = wait_for(&format!("[{transport}] {US} to be back"), T, || {
        let (senders, out) = ping(&c, &[]);
        senders == names(&all) && down(&out.json()).is_empty() && out.code == Some(0)
    });
    eprintln!("[{transport}] {US} back and answering {:.2} s after its restart", back.as_secs_f64());
}

#[test]
fn the_foundation_checks_pass_on_the_zeromq_hub_and_on_nats() {
    foundation(&ZmqHub(Hub::start()), "zeromq");
    foundation(&Nats::start(), "nats");
}

#[test]
fn a_console_on_one_server_reaches_nodes_on_the_other_two() {
    let nats = Nats::start();
    // Nodes only on servers 1 and 2, the console only on server 0: everything crosses a route.
    let _nodes: Vec<Node> = ["n1-a", "n2-a", "n1-b", "n2-b"]
        .iter()
        .enumerate()
        .map(|(i, id)| NodeSpec::new(&nats.cluster.node_url(1 + i % 2), id).facts("role: web\n").start())
        .collect();
    let console = nats.cluster.console_url(0);
    let all = ["n1-a", "n1-b", "n2-a", "n2-b"];
    wait_for_nodes(&console, &all, T);
    let (senders, out) = ping(&console, &[]);
    assert_eq!((senders, out.code), (names(&all), Some(0)), "{out}");
    let out = fleet(&console, &["rpc", "echo", "echo", "msg=over the routes", "-F", "role=web", "--json"]);
    let doc = out.json();
    assert_eq!(doc["replies"].as_array().map(Vec::len), Some(4), "{out}");
    for r in doc["replies"].as_array().unwrap() {
        assert_eq!((r["status"].as_str(), r["data"]["msg"].as_str()), (Some("Ok"), Some("over the routes")), "{out}");
    }
    // Replies are signed end to end: each checks against the node's key when the console has it.
    let (_, out) = ping(&console, &["-I", "n1-a"]);
    assert_eq!(out.code, Some(0), "{out}");
}

#[test]
fn without_a_registry_discovery_falls_back_to_broadcast() {
    let cluster = Cluster::start(3);
    let _nodes: Vec<Node> = ["solo-a", "solo-b"]
        .iter()
        .enumerate()
        .map(|(i, id)| NodeSpec::new(&cluster.node_url(i), id).facts("role: db\n").start())
        .collect();
    let console = cluster.console_urls(2);
    let mut last: Option<Output> = None;
    wait_for("both nodes to answer a broadcast discovery", T, || {
        let (senders, out) = ping(&console, &["-F", "role=db"]);
        let ok = senders == names(&["solo-a", "solo-b"]);
        last = Some(out);
        ok
    });
    let started = Instant::now();
    assert_eq!(discover(&console, &["-F", "role=db"]), names(&["solo-a", "solo-b"]));
    eprintln!("broadcast discovery (no registry) took {:.2} s", started.elapsed().as_secs_f64());
    drop(last);
}
