//! Roles at the hub, end to end on real `noded hub` and `noded` processes: every enrolled key is a
//! node or a console. A console link that registers gets no broadcasts; a node link that sends a
//! request (or discovers, or asks for stats) is refused; a console link carries only the requests
//! of the caller it is enrolled as. Every refusal is a dropped frame and a line in the hub's audit
//! log. `noded hub enroll` gives and lists roles, and a key enrolled before roles is refused until
//! an admin gives it one.
//!
//! Nothing sleeps to synchronise: every wait is for a message, a file or a count, under a deadline.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fleet_e2e::support::{
    Hub, Node, RawPeer, TestKeys, enroll_as, enroll_dir_of, noded_bin, request, signed_frame, wait_for, wait_for_nodes,
};
use fleet_protocol::keys::KeyPair;
use fleet_protocol::{Message, Registration};
use serde_json::{Map, Value, json};

const T: Duration = Duration::from_secs(20);
/// How long a message that must not come is waited for, once everything that should came.
const SILENCE: Duration = Duration::from_secs(1);

/// A link under its own key, enrolled on `hub` as `name` with `role`.
fn link(hub: &str, name: &str, role: &str) -> (RawPeer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate();
    let (_, public) = key.save(dir.path(), name).unwrap();
    enroll_as(hub, name, &public, role);
    (RawPeer::connect_as(hub, &key, name), dir)
}

fn registration(name: &str) -> Message {
    Message::Registration(Box::new(Registration {
        identity: name.into(),
        collectives: vec!["fleet".into()],
        facts: json!({}),
        classes: Vec::new(),
        agents: Vec::new(),
        stats: Default::default(),
        metrics: Default::default(),
        interval_ms: 60_000,
        version: "test".into(),
        started: fleet_protocol::now_ms(),
    }))
}

fn hub_error(peer: &mut RawPeer) -> String {
    match peer.recv_matching(T, "an Error notice", |m| matches!(m, Message::Error(_))) {
        Message::Error(e) => e.message,
        _ => unreachable!(),
    }
}

fn hub_audit(hub: &Hub) -> PathBuf {
    enroll_dir_of(hub.endpoint()).unwrap().join("audit.log")
}

fn audit_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
    complete.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

/// Waits for an audit line whose reason contains `reason`, and returns it.
fn audited(path: &Path, reason: &str) -> Value {
    let mut found = None;
    wait_for(&format!("a hub audit line about '{reason}'"), T, || {
        found = audit_lines(path).into_iter().find(|l| l["reason"].as_str().is_some_and(|r| r.contains(reason)));
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn a_console_link_that_registers_gets_no_broadcasts() {
    let hub = Hub::start();
    let _alpha = Node::start(hub.endpoint(), "alpha", "", &[]);
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let mut console = RawPeer::connect(hub.endpoint());
    console.hello("console");
    let dropped = console.hub_stats().dropped_frames;

    // A console key registering as a node: refused, told, counted.
    let (mut sneaky, _keys) = link(hub.endpoint(), "sneaky", "console");
    sneaky.send(&registration("sneaky"));
    let e = hub_error(&mut sneaky);
    assert!(e.contains("refused by the hub") && e.contains("console link ('sneaky') may not send Registration"), "{e}");
    assert_eq!(console.hub_stats().dropped_frames, dropped + 1, "the refusal is a dropped frame");
    let line = audited(&hub_audit(&hub), "may not send Registration");
    assert_eq!((line["decision"].as_str(), line["request_id"].as_str()), (Some("rejected"), Some("-")), "{line}");

    // A broadcast goes to the one real node; the console link hears nothing of it.
    let ping = request("rpcutil", "ping", Map::new(), &[]);
    console.send_frame(signed_frame(&ping));
    match console.recv_matching(T, "Dispatched", |m| matches!(m, Message::Dispatched(d) if d.request_id == ping.id)) {
        Message::Dispatched(d) => assert_eq!(d.sent, ["alpha"], "{d:?}"),
        _ => unreachable!(),
    }
    console.recv_matching(T, "alpha's reply", |m| matches!(m, Message::Reply(r) if r.request_id == ping.id));
    let deadline = Instant::now() + SILENCE;
    while let Some(m) = sneaky.recv(deadline.saturating_duration_since(Instant::now())) {
        assert!(!matches!(m, Message::Request(_)), "a console link got a broadcast: {m:?}");
    }
    console.send(&Message::Discover(fleet_protocol::Discover { filter: Default::default(), collective: None }));
    let d = match console.recv_matching(T, "Discovered", |m| matches!(m, Message::Discovered(_))) {
        Message::Discovered(d) => d,
        _ => unreachable!(),
    };
    assert_eq!(d.nodes, ["alpha"], "the console link is not in the registry: {d:?}");
}

#[test]
fn a_node_link_that_sends_a_request_is_refused_and_audited() {
    let hub = Hub::start();
    let alpha = Node::start(hub.endpoint(), "alpha", "", &[]);
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let mut console = RawPeer::connect(hub.endpoint());
    console.hello("console");
    let dropped = console.hub_stats().dropped_frames;

    let (mut mole, _keys) = link(hub.endpoint(), "mole", "node");
    mole.send(&registration("mole"));
    mole.recv_matching(T, "the Ack of its registration", |m| matches!(m, Message::Ack(_)));

    // A fresh request, validly signed by a trusted caller (a compromised node that got hold of
    // one): refused for the link's role, before anything is routed.
    let mut args = Map::new();
    args.insert("msg".into(), json!("from a node"));
    let req = request("echo", "echo", args, &["alpha"]);
    mole.send_frame(signed_frame(&req));
    let e = hub_error(&mut mole);
    assert!(e.contains(&format!("request {} refused by the hub", req.id)) && e.contains("node link ('mole') may not send requests"), "{e}");
    // Nor may it discover, read stats or attach as a console.
    for (msg, kind) in [
        (Message::Discover(fleet_protocol::Discover { filter: Default::default(), collective: None }), "Discover"),
        (Message::StatsQuery, "StatsQuery"),
        (Message::Hello(fleet_protocol::Hello { name: "mole".into(), subscribe: true }), "Hello"),
    ] {
        mole.send(&msg);
        let e = hub_error(&mut mole);
        assert!(e.contains(&format!("may not send {kind}")), "{e}");
    }
    assert_eq!(console.hub_stats().dropped_frames, dropped + 4, "each refusal is a dropped frame");

    // Audited with the request's own fields, under the caller that signed it.
    let line = audited(&hub_audit(&hub), "may not send requests");
    assert_eq!(line["request_id"], req.id.as_str(), "{line}");
    assert_eq!((line["caller"].as_str(), line["agent"].as_str(), line["decision"].as_str()), (Some("e2e"), Some("echo"), Some("rejected")));
    for kind in ["Discover", "StatsQuery", "Hello"] {
        audited(&hub_audit(&hub), &format!("may not send {kind}"));
    }
    // The node never heard of it: a request the console sends afterwards is the first it audits.
    let after = request("rpcutil", "ping", Map::new(), &["alpha"]);
    let reply = console.request(after.clone(), T);
    assert_eq!(reply.request_id, after.id);
    let node_audit = alpha.dir().join("audit.log");
    wait_for("alpha's audit line of the console's ping", T, || {
        audit_lines(&node_audit).iter().any(|l| l["request_id"] == after.id.as_str())
    });
    assert!(audit_lines(&node_audit).iter().all(|l| l["request_id"] != req.id.as_str()), "alpha never saw the node's request");
}

#[test]
fn a_console_link_carries_only_its_own_callers_requests() {
    let hub = Hub::start();
    let _alpha = Node::start(hub.endpoint(), "alpha", "", &[]);
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    // "bob" is an enrolled console, but the request it sends is signed by the caller e2e.
    let (mut bob, _keys) = link(hub.endpoint(), "bob", "console");
    bob.hello("bob");
    let req = request("rpcutil", "ping", Map::new(), &["alpha"]);
    bob.send_frame(signed_frame(&req));
    let e = hub_error(&mut bob);
    assert!(e.contains("signed by caller 'e2e', but this console link is enrolled as 'bob'"), "{e}");
    let line = audited(&hub_audit(&hub), "enrolled as 'bob'");
    assert_eq!((line["request_id"].as_str(), line["caller"].as_str()), (Some(req.id.as_str()), Some("e2e")), "{line}");
}

/// `noded hub --enroll-dir DIR enroll ARGS...` (or another hub subcommand); returns stdout.
fn noded_hub(dir: &Path, args: &[&str]) -> String {
    let config = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(noded_bin())
        .env_remove("NODED_CONFIG")
        .arg("--config")
        .arg(config.path())
        .args(["hub", "--enroll-dir", dir.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "noded hub {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn enroll_gives_and_lists_roles_and_a_key_without_a_role_is_refused_until_it_has_one() {
    let hub = Hub::start();
    let dir = enroll_dir_of(hub.endpoint()).unwrap();
    let keys = tempfile::tempdir().unwrap();

    // --add defaults to console (how an admin adds a caller); --role node says otherwise.
    let carol = KeyPair::generate();
    let (_, carol_pub) = carol.save(keys.path(), "carol").unwrap();
    assert!(noded_hub(&dir, &["enroll", "--add", "carol", carol_pub.to_str().unwrap()]).contains("as a console"));
    let web = KeyPair::generate();
    let (_, web_pub) = web.save(keys.path(), "web-01").unwrap();
    assert!(noded_hub(&dir, &["enroll", "--add", "web-01", web_pub.to_str().unwrap(), "--role", "node"]).contains("as a node"));

    // A key enrolled before roles existed: an accepted file with no role line.
    let old = KeyPair::generate();
    let (_, old_pub) = old.save(keys.path(), "old-console").unwrap();
    std::fs::copy(&old_pub, dir.join("accepted").join("old-console.pub")).unwrap();
    let list = noded_hub(&dir, &["enroll", "--list"]);
    let row = |name: &str| list.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("{name} not listed:\n{list}")).to_string();
    assert!(row("carol").starts_with("accepted  console"), "{list}");
    assert!(row("web-01").starts_with("accepted  node"), "{list}");
    assert!(row("old-console").starts_with("no-role"), "{list}");
    assert!(list.contains("--accept NAME --role node|console"), "the list says how to fix it:\n{list}");

    // The old key gets no link, and the hub's log tells the admin what to run.
    let mut refused = RawPeer::connect_plain(hub.endpoint());
    let (_, hello) = fleet_protocol::noise::Initiator::start(&old, &TestKeys::get().hub.public().link, "old-console").unwrap();
    refused.send_raw_frame(hello);
    assert!(refused.recv_frames(SILENCE).is_none(), "a key without a role got a link");
    wait_for("the hub to say how to re-enroll", T, || hub.log().contains("noded hub enroll --accept old-console --role node"));

    // Given a role, it attaches (within the hub's rescan of a second).
    assert!(noded_hub(&dir, &["enroll", "--accept", "old-console", "--role", "console"]).contains("as a console"));
    wait_for("the re-enrolled key to get a link", T, || {
        let mut peer = RawPeer::connect_plain(hub.endpoint());
        let (init, hello) = fleet_protocol::noise::Initiator::start(&old, &TestKeys::get().hub.public().link, "old-console").unwrap();
        peer.send_raw_frame(hello);
        peer.recv_frames(Duration::from_secs(2)).is_some_and(|f| init.finish(f.last().unwrap()).is_ok())
    });
    // A name has one role: accepting it as the other is refused.
    let out = Command::new(noded_bin())
        .env_remove("NODED_CONFIG")
        .args(["--config", "/dev/null", "hub", "--enroll-dir", dir.to_str().unwrap(), "enroll", "--accept", "carol", "--role", "node"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("already enrolled as a console"), "{out:?}");
}
