//! The NATS transport end to end: a real 3-server `nats-server` cluster on loopback (routes between
//! the servers, the documented permissions), real `noded` processes spread over it, `noded
//! registry`, and the `fleet` CLI.
//!
//! The foundation's checks run from one body on both transports, the ZeroMQ hub and NATS. A
//! server SIGKILLed in the middle of a request loses no reply and runs nothing twice; a console on
//! one server reaches nodes on the other two through the routes.

use std::time::{Duration, Instant};

use fleet_e2e::nats::Cluster;
use fleet_e2e::support::{Hub, Node, NodeSpec, discover, fleet, fleet_env, ping, wait_for, wait_for_nodes};
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
        Self::start_with_registry_on(0)
    }

    fn start_with_registry_on(server: usize) -> Nats {
        let cluster = Cluster::start(3);
        let registry = cluster.registry(server);
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
    let nodes: Vec<Node> = ["n1-a", "n2-a", "n1-b", "n2-b"]
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
    // Hub counters need a hub: said at once, nothing hangs.
    let out = fleet(&console, &["hub-stats"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stderr.contains("needs a ZeroMQ hub"), "{out}");
    // noded doctor checks the servers and the credentials, and needs no hub key for them.
    let doctor = |url: &str| {
        let out = std::process::Command::new(fleet_e2e::support::noded_bin())
            .env_remove("NODED_CONFIG")
            .arg("--config")
            .arg(nodes[0].dir().join("noded.toml"))
            .args(["--identity", "n1-a", "--hub", url, "doctor"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let report = doctor(&nats.cluster.node_url(1));
    assert!(report.contains("reachable, credentials accepted") && report.contains("no hub key is needed"), "{report}");
    let report = doctor(&nats.cluster.node_url(1).replace("node-secret", "wrong"));
    assert!(report.contains("check the server URLs") && !report.contains("wrong"), "a bad password is named, never shown: {report}");
    // `fleet metrics` asks the nodes' metrics agent: every node's latest sample.
    let out = fleet(&console, &["metrics", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let hosts = out.json()["hosts"].as_array().map(|h| h.len());
    assert_eq!(hosts, Some(4), "{out}");
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
    wait_for("both nodes to answer a broadcast discovery", T, || ping(&console, &["-F", "role=db"]).0 == names(&["solo-a", "solo-b"]));
    let started = Instant::now();
    assert_eq!(discover(&console, &["-F", "role=db"]), names(&["solo-a", "solo-b"]));
    eprintln!("broadcast discovery (no registry) took {:.2} s", started.elapsed().as_secs_f64());
}

const TALLY_DDL: &str = r#"
[metadata]
name = "tally"
description = "Counts its runs in a file, slowly"
version = "1.0.0"
timeout = 10

[actions.count]
description = "Append one line to the marker file after a while"
[actions.count.output.runs]
description = "Runs so far"
display_as = "Runs"
"#;

/// Sleeps `$DELAY` seconds, then appends one line to `$MARKER_FILE`: the file's line count is how
/// many times the node ran the action.
const TALLY_SCRIPT: &str = r#"#!/bin/sh
req="$1"; reply="$2"; proto="$3"
if [ "$proto" = "io.choria.mcorpc.external.v1.activation_request" ]; then
  echo '{"activate": true}' > "$reply"; exit 0
fi
sleep "$DELAY"
echo ran >> "$MARKER_FILE"
printf '{"statuscode":0,"statusmsg":"OK","data":{"runs":%s}}' "$(wc -l < "$MARKER_FILE")" > "$reply"
"#;

#[test]
fn a_server_killed_mid_request_loses_no_reply_and_runs_nothing_twice() {
    use std::os::unix::fs::PermissionsExt;
    let mut nats = Nats::start_with_registry_on(2);
    let agents = tempfile::tempdir().unwrap();
    std::fs::write(agents.path().join("tally.toml"), TALLY_DDL).unwrap();
    std::fs::write(agents.path().join("tally"), TALLY_SCRIPT).unwrap();
    std::fs::set_permissions(agents.path().join("tally"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let marks = tempfile::tempdir().unwrap();
    // Nine nodes, three per server, whose replies come back spread over 0.3 to 1.5 s.
    let ids: Vec<String> = (0..9).map(|i| format!("tally-{i}")).collect();
    let _nodes: Vec<Node> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            nats.node(i, id)
                .arg("--agents-dir")
                .arg(agents.path().display().to_string())
                .env("MARKER_FILE", &marks.path().join(id).display().to_string())
                .env("DELAY", &format!("{:.2}", 0.3 + 0.15 * i as f64))
                .start()
        })
        .collect();
    let console = nats.console();
    let all: Vec<&str> = ids.iter().map(String::as_str).collect();
    wait_for_nodes(&console, &all, T);
    wait_for("every node to offer tally", T, || discover(&console, &["-A", "tally"]).len() == 9);

    // The console's own server dies while the replies come in: the console and the three nodes on
    // it move to the survivors, and what was in flight is asked for again.
    let run_on = console.clone();
    let ddls = agents.path().to_path_buf();
    let run = std::thread::spawn(move || {
        fleet_env(&["--hub", &run_on, "rpc", "tally", "count", "--json", "--timeout", "20"], &[("FLEET_DDL_PATH", &ddls)])
    });
    std::thread::sleep(Duration::from_millis(700));
    let killed = Instant::now();
    nats.cluster.kill(0);
    let out = run.join().unwrap();
    eprintln!(
        "the round took {:.2} s; server n0 (the console's) was killed 0.7 s in, {:.2} s before the round ended",
        out.elapsed.as_secs_f64(),
        killed.elapsed().as_secs_f64()
    );
    let doc = out.json();
    eprintln!("copies published again: {}; the console's log:\n{}", doc["summary"]["resent"], out.stderr);
    let replies = doc["replies"].as_array().unwrap_or_else(|| panic!("{out}"));
    let mut senders: Vec<&str> = replies.iter().filter_map(|r| r["sender"].as_str()).collect();
    senders.sort();
    assert_eq!(senders, all, "every reply arrived: {out}");
    assert!(replies.iter().all(|r| r["status"] == "Ok" && r["data"]["runs"] == 1), "{out}");
    assert_eq!(out.code, Some(0), "{out}");
    // The slowest nodes were still running at the first retry: the copies they got changed nothing.
    assert!(doc["summary"]["resent"].as_u64().unwrap_or(0) >= 1, "the retry path ran: {out}");
    for id in &ids {
        let runs = std::fs::read_to_string(marks.path().join(id)).unwrap_or_default().lines().count();
        assert_eq!(runs, 1, "{id} ran the request {runs} times");
    }

    // The survivors carry the next round too.
    let (senders, out) = ping(&console, &[]);
    assert_eq!((senders.len(), out.code), (9, Some(0)), "{out}");
}

/// What a retry is, seen from the wire: the very same signed frame published again. A node runs
/// it once and answers each copy that asks on the same inbox with the same reply; a copy that asks
/// on another inbox (someone replaying what they saw) gets nothing.
#[test]
fn the_same_signed_request_published_twice_runs_once_and_is_answered_twice() {
    use futures::StreamExt;
    use std::os::unix::fs::PermissionsExt;
    let nats = Nats::start();
    let agents = tempfile::tempdir().unwrap();
    std::fs::write(agents.path().join("tally.toml"), TALLY_DDL).unwrap();
    std::fs::write(agents.path().join("tally"), TALLY_SCRIPT).unwrap();
    std::fs::set_permissions(agents.path().join("tally"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let marker = agents.path().join("runs");
    let _node = nats
        .node(1, "once")
        .arg("--agents-dir")
        .arg(agents.path().display().to_string())
        .env("MARKER_FILE", &marker.display().to_string())
        .env("DELAY", "0.5")
        .start();
    wait_for_nodes(&nats.console(), &["once"], T);

    let frame = fleet_e2e::support::signed_frame(&fleet_e2e::support::request("tally", "count", Default::default(), &["once"]));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = async_nats::connect_with_options(
            nats.cluster.console_url(0).replace("console:console-secret@", ""),
            async_nats::ConnectOptions::with_user_and_password("console".into(), fleet_e2e::nats::CONSOLE_PASSWORD.into()),
        )
        .await
        .unwrap();
        let (inbox, other) = (client.new_inbox(), client.new_inbox());
        let mut replies = client.subscribe(inbox.clone()).await.unwrap();
        let mut stolen = client.subscribe(other.clone()).await.unwrap();
        let subject = "fleet.fleet.node.once".to_string();
        let payload = bytes::Bytes::from(frame);
        // Twice while it runs (the second is ignored), once after (the reply again), once to
        // another inbox (nothing).
        client.publish_with_reply(subject.clone(), inbox.clone(), payload.clone()).await.unwrap();
        client.publish_with_reply(subject.clone(), inbox.clone(), payload.clone()).await.unwrap();
        client.flush().await.unwrap();
        let first = tokio::time::timeout(T, replies.next()).await.expect("a reply").unwrap();
        client.publish_with_reply(subject.clone(), inbox.clone(), payload.clone()).await.unwrap();
        client.publish_with_reply(subject, other, payload).await.unwrap();
        client.flush().await.unwrap();
        let again = tokio::time::timeout(T, replies.next()).await.expect("the reply again").unwrap();
        assert_eq!(first.payload, again.payload, "the very same signed reply");
        let extra = tokio::time::timeout(Duration::from_millis(1500), replies.next()).await;
        assert!(extra.is_err(), "one reply per copy asked after the run, none for the copy sent while it ran");
        let thief = tokio::time::timeout(Duration::from_millis(500), stolen.next()).await;
        assert!(thief.is_err(), "a copy asking on another inbox gets nothing");
    });
    let runs = std::fs::read_to_string(&marker).unwrap_or_default().lines().count();
    assert_eq!(runs, 1, "the node ran the request {runs} times");
}

/// `fleet ARGS` with `config_toml` as its config file, in the harness's clean environment.
fn fleet_configured(config_toml: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("fleet")).unwrap();
    std::fs::write(home.path().join("fleet/config.toml"), config_toml).unwrap();
    let out = fleet_e2e::support::fleet_command(home.path(), args).stdin(std::process::Stdio::null()).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn over_tls_the_servers_certificate_is_checked_against_the_configured_ca() {
    let cluster = Cluster::start_with(1, true, None);
    let _registry = cluster.registry(0);
    let tls = format!("[nats]\nca = {:?}\n", cluster.ca().display().to_string());
    let _node = NodeSpec::new(&cluster.node_url(0), "tls-a").config(&tls).start();
    let console = cluster.console_url(0);
    wait_for("tls-a to answer over TLS", T, || {
        let (code, stdout, _) = fleet_configured(&tls, &["--hub", &console, "ping", "--json"]);
        code == Some(0) && stdout.contains("\"tls-a\"")
    });
    // Without the CA the console refuses the servers' certificate, and says so.
    let (code, _, stderr) = fleet_configured("", &["--hub", &console, "ping"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("NATS") && !stderr.contains("console-secret"), "{stderr}");
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
}

/// The full-screen console on NATS, in a real pseudo-terminal: it connects, lists the nodes the
/// registry knows, stays connected (its link checks are answered by the NATS connection), shows a
/// node that joins later from the registry's event, and its Metrics view draws both nodes from
/// their own sample history (no hub to stream from).
#[test]
fn the_console_runs_on_nats_and_hears_a_node_join() {
    let nats = Nats::start();
    let _first = nats.node(1, "early-bird").start();
    wait_for_nodes(&nats.console(), &["early-bird"], T);
    let home = tempfile::tempdir().unwrap();
    let mut console = fleet_e2e::pty::hub_console(&nats.cluster.console_url(0), home.path(), 24, 100);
    console.wait_for_all(&["early-bird", " connected "], T).unwrap();
    let _late = nats.node(2, "late-comer").start();
    let screen = console.wait_for("late-comer in the grid", T, |s| s.contains("late-comer")).unwrap();
    assert!(screen.contains(" connected "), "{screen}");
    // Past the console's link-silence limit (6 s), still connected.
    std::thread::sleep(Duration::from_secs(7));
    let screen = console.screen_text();
    assert!(screen.contains(" connected ") && screen.contains("early-bird"), "{screen}");
    // The Metrics view, without a hub to stream from, asks the nodes for their samples.
    console.send("3").unwrap();
    console.wait_for_text("INVENTORY", T).unwrap();
    console.send("m").unwrap();
    console.wait_for_all(&["METRICS", "Metrics: load1"], T).unwrap();
    const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    console
        .wait_for("a sparkline for both nodes", T, |s| {
            ["early-bird", "late-comer"].iter().all(|node| {
                s.lines().any(|l| {
                    let host = l.split('│').nth(1).unwrap_or_default();
                    host.trim_start().starts_with(node) && !host.contains("no sample") && host.chars().any(|c| SPARK.contains(&c))
                })
            })
        })
        .unwrap();
    console.send("q").unwrap();
}

/// A node proves itself to the servers with an nkey (`[nats] nkey_seed`): no password in its
/// config or its URL. A seed others can read is refused with the fix; a seed the servers do not
/// know never gets a node in.
#[test]
fn a_node_logs_in_with_its_nkey_and_an_unknown_or_loose_seed_gets_nowhere() {
    use std::os::unix::fs::PermissionsExt;
    let user = nkeys::KeyPair::new_user();
    let cluster = Cluster::start_with(1, false, Some(&user.public_key()));
    let _registry = cluster.registry(0);
    let dir = tempfile::tempdir().unwrap();
    let seed_file = |name: &str, key: &nkeys::KeyPair, mode: u32| {
        let path = dir.path().join(name);
        std::fs::write(&path, key.seed().unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        format!("[nats]\nnkey_seed = {:?}\n", path.display().to_string())
    };
    let known = seed_file("known.nk", &user, 0o600);
    let _node = NodeSpec::new(&cluster.plain_url(0), "by-nkey").config(&known).start();
    let stranger = seed_file("stranger.nk", &nkeys::KeyPair::new_user(), 0o600);
    let mut outsider = NodeSpec::new(&cluster.plain_url(0), "outsider").config(&stranger).start();
    let loose = seed_file("loose.nk", &user, 0o644);
    let mut careless = NodeSpec::new(&cluster.plain_url(0), "careless").config(&loose).start();
    let console = cluster.console_url(0);
    wait_for_nodes(&console, &["by-nkey"], T);
    let (senders, out) = ping(&console, &[]);
    assert_eq!((senders, out.code), (names(&["by-nkey"]), Some(0)), "{out}");
    wait_for("the loose seed to be refused with its fix", T, || careless.log().contains("chmod 600"));
    wait_for("the unknown nkey to be refused", T, || outsider.log().to_lowercase().contains("authorization"));
    assert!(outsider.is_running() && careless.is_running(), "a refused login leaves the daemon running and retrying");
    assert_eq!(discover(&console, &[]), names(&["by-nkey"]));
}

/// Hostile bytes on the subjects a console may publish to: a node drops what does not decode and
/// keeps answering; a registry answers a question that does not decode with an error, and keeps
/// answering.
#[test]
fn garbage_on_the_wire_is_refused_and_the_daemons_keep_running() {
    use futures::StreamExt;
    let nats = Nats::start();
    let mut node = nats.node(1, "sturdy").start();
    wait_for_nodes(&nats.console(), &["sturdy"], T);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = async_nats::connect_with_options(
            nats.cluster.plain_url(0),
            async_nats::ConnectOptions::with_user_and_password("console".into(), fleet_e2e::nats::CONSOLE_PASSWORD.into()),
        )
        .await
        .unwrap();
        let inbox = client.new_inbox();
        let mut answers = client.subscribe(inbox.clone()).await.unwrap();
        let junk: [&[u8]; 3] = [b"", b"\xff\xff\xff\xff not msgpack", &[0x91; 4096]];
        for bytes in junk {
            let payload = bytes::Bytes::copy_from_slice(bytes);
            client.publish_with_reply("fleet.fleet.node.sturdy", inbox.clone(), payload.clone()).await.unwrap();
            client.publish_with_reply("fleet.fleet.agent.rpcutil", inbox.clone(), payload.clone()).await.unwrap();
            client.publish_with_reply("fleet.fleet.discover", inbox.clone(), payload).await.unwrap();
        }
        client.flush().await.unwrap();
        // Only the registry answers, each time with an error saying why.
        for _ in 0..3 {
            let msg = tokio::time::timeout(T, answers.next()).await.expect("the registry's answer").unwrap();
            let limits = fleet_protocol::codec::Limits::default();
            match fleet_protocol::codec::decode_message(&msg.payload, &limits).unwrap() {
                fleet_protocol::Message::Error(e) => assert!(e.message.contains("malformed discovery question"), "{}", e.message),
                other => panic!("expected an error, got {other:?}"),
            }
        }
        let extra = tokio::time::timeout(Duration::from_millis(500), answers.next()).await;
        assert!(extra.is_err(), "a node never answers what does not decode");
    });
    assert!(node.is_running(), "noded keeps running");
    let (senders, out) = ping(&nats.console(), &[]);
    assert_eq!((senders, out.code), (names(&["sturdy"]), Some(0)), "the node and the registry still answer: {out}");
    assert!(node.log().contains("malformed"), "the node says what it dropped: {}", node.log());
}
