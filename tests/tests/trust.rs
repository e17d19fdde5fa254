//! Trust at the hub and across node restarts, end to end on real `noded hub` and `noded`
//! processes: an enrolled link (a node, or another console) re-sending a request it did not send
//! first is refused by the hub, and the console that sent it keeps its replies; a ttl over
//! `max_ttl` is refused by the hub and by the node; a request captured before a node restarted is
//! refused by the restarted node; and every request the hub refuses is a line in its audit log,
//! in the nodes' audit format.
//!
//! Nothing sleeps to synchronise: every wait is for a message, a file or a count, under a deadline.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fleet_e2e::support::{
    Hub, Node, NodeSpec, RawPeer, TestKeys, enroll_as, enroll_dir_of, request, signed_frame, wait_for, wait_for_nodes,
};
use fleet_protocol::codec::{Limits, decode_message, encode_message};
use fleet_protocol::keys::KeyPair;
use fleet_protocol::noise::{Initiator, Session};
use fleet_protocol::{Envelope, Message, Registration, Reply, Request, Status};
use serde_json::{Map, Value, json};
use tempfile::TempDir;

/// Long enough for processes to start and register on a busy 2-core machine.
const T: Duration = Duration::from_secs(20);
/// How long a message that must not come is waited for, once everything that should came.
const SILENCE: Duration = Duration::from_secs(1);
/// The fields of an audit line, nodes' and hub's alike, sorted.
const AUDIT_FIELDS: [&str; 9] = ["action", "agent", "args_digest", "caller", "decision", "duration_ms", "reason", "request_id", "time"];

// ---------------------------------------------------------------------------------------------
// An enrolled link the test drives itself

/// A link to the hub under its own enrolled key and name: it can play a node (register, receive
/// requests) or a console, and send any bytes inside its encrypted session.
struct Link {
    raw: RawPeer,
    session: Session,
    _keys: TempDir,
}

impl Link {
    /// Makes a key, enrolls it on the hub as `name` with `role`, and runs the link handshake.
    fn enrolled(hub: &str, name: &str, role: &str) -> Link {
        let keys = tempfile::Builder::new().prefix("fleet-link-").tempdir().unwrap();
        let key = KeyPair::generate();
        let (_, public) = key.save(keys.path(), name).unwrap();
        enroll_as(hub, name, &public, role);
        let mut raw = RawPeer::connect_plain(hub);
        let (init, hello) = Initiator::start(&key, &TestKeys::get().hub.public().link, name).unwrap();
        raw.send_raw_frame(hello);
        let answer = raw.recv_frames(T).unwrap_or_else(|| panic!("no answer to {name}'s link handshake"));
        let session = init.finish(answer.last().unwrap()).expect("link handshake");
        Link { raw, session, _keys: keys }
    }

    /// A node's link: enrolled, and registered in collective "fleet" under `name`.
    fn node(hub: &str, name: &str) -> Link {
        let mut link = Link::enrolled(hub, name, "node");
        link.send(&Message::Registration(Box::new(Registration {
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
        })));
        link.recv_matching("the Ack of the registration", |m| matches!(m, Message::Ack(_)));
        link
    }

    /// A console's link: enrolled, and said Hello.
    fn console(hub: &str, name: &str) -> Link {
        let mut link = Link::enrolled(hub, name, "console");
        link.send(&Message::Hello(fleet_protocol::Hello { name: name.into(), subscribe: false }));
        link.recv_matching("Welcome", |m| matches!(m, Message::Welcome(_)));
        link
    }

    fn send_frame(&mut self, plaintext: &[u8]) {
        let sealed = self.session.seal(plaintext).unwrap();
        self.raw.send_raw_frame(sealed);
    }

    fn send(&mut self, msg: &Message) {
        self.send_frame(&encode_message(msg).unwrap());
    }

    /// The next message and its plaintext bytes; `None` after `timeout`.
    fn recv(&mut self, timeout: Duration) -> Option<(Vec<u8>, Message)> {
        let frames = self.raw.recv_frames(timeout)?;
        let plain = self.session.open(frames.last().unwrap()).expect("the hub's frame decrypts");
        let msg = decode_message(&plain, &Limits::default()).expect("the hub sends decodable frames");
        Some((plain, msg))
    }

    fn recv_matching(&mut self, what: &str, pred: impl Fn(&Message) -> bool) -> (Vec<u8>, Message) {
        let deadline = Instant::now() + T;
        loop {
            match self.recv(deadline.saturating_duration_since(Instant::now())) {
                Some((plain, m)) if pred(&m) => return (plain, m),
                Some(_) => continue,
                None => panic!("no {what} from the hub within {T:?}"),
            }
        }
    }

    fn hub_error(&mut self) -> String {
        match self.recv_matching("an Error notice", |m| matches!(m, Message::Error(_))).1 {
            Message::Error(e) => e.message,
            _ => unreachable!(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The gate agent: an action that waits until the test lets it finish

const GATE_DDL: &str = r#"
[metadata]
name = "gate"
description = "Holds each call until $GATE_FILE exists, then appends 'hold <caller>' to $MARKER_FILE"
version = "1.0.0"
timeout = 30

[actions.hold]
description = "Wait for the gate, then report"
[actions.hold.output.done]
description = "The action that ran"
display_as = "Done"
"#;

const GATE_SCRIPT: &str = r#"#!/bin/sh
# Arguments: request file, reply file, protocol.
req="$1"; reply="$2"; proto="$3"
if [ "$proto" = "io.choria.mcorpc.external.v1.activation_request" ]; then
  echo '{"activate": true}' > "$reply"; exit 0
fi
caller=$(sed -n 's/.*"caller":"\([A-Za-z0-9_.-]*\)".*/\1/p' "$req")
while [ ! -e "$GATE_FILE" ]; do sleep 0.05; done
echo "hold $caller" >> "$MARKER_FILE"
printf '{"statuscode":0,"statusmsg":"OK","data":{"done":"hold"}}' > "$reply"
"#;

fn gate_agent_dir() -> TempDir {
    let dir = tempfile::Builder::new().prefix("fleet-agents-").tempdir().unwrap();
    std::fs::write(dir.path().join("gate.toml"), GATE_DDL).unwrap();
    let exe = dir.path().join("gate");
    std::fs::write(&exe, GATE_SCRIPT).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn lines_of(path: &Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => s.lines().map(str::to_string).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

// ---------------------------------------------------------------------------------------------
// Audit logs

/// The complete JSON lines of one audit file (a line being written is left out).
fn audit_lines(path: &Path) -> Vec<Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    };
    let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: audit line is not JSON ({e}): {l}", path.display())))
        .collect()
}

fn node_audit(node: &Node) -> PathBuf {
    node.dir().join("audit.log")
}

/// The lines of `path` about request `id`, once at least `n` are there.
fn audit_of(path: &Path, id: &str, n: usize) -> Vec<Value> {
    let mut found = Vec::new();
    wait_for(&format!("{n} audit line(s) for request {id} in {}", path.display()), T, || {
        found = audit_lines(path).into_iter().filter(|l| l["request_id"] == id).collect();
        found.len() >= n
    });
    found
}

/// Waits until `path` has at least `n` lines, and returns them all.
fn audit_count(path: &Path, n: usize) -> Vec<Value> {
    let mut lines = Vec::new();
    wait_for(&format!("{n} audit lines in {}", path.display()), T, || {
        lines = audit_lines(path);
        lines.len() >= n
    });
    lines
}

fn assert_audit(line: &Value, decision: &str, caller: &str, reason_has: &str) {
    let mut fields: Vec<&str> = line.as_object().expect("an object").keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(fields, AUDIT_FIELDS, "the nodes' audit fields, no more: {line}");
    assert_eq!(line["decision"], decision, "{line}");
    assert_eq!(line["caller"], caller, "{line}");
    let reason = line["reason"].as_str().unwrap_or_else(|| panic!("no reason: {line}"));
    assert!(reason.contains(reason_has), "reason should mention '{reason_has}': {line}");
}

/// The hub's audit log where it is by default: `audit.log` in its enrollment directory.
fn hub_audit(hub: &Hub) -> PathBuf {
    enroll_dir_of(hub.endpoint()).expect("the harness's enrollment directory").join("audit.log")
}

// ---------------------------------------------------------------------------------------------
// Talking to the hub as the test console

fn console(hub: &Hub) -> RawPeer {
    let mut peer = RawPeer::connect(hub.endpoint());
    peer.hello("console");
    peer
}

/// The replies of `n` nodes to request `id`, by sender.
fn replies_by_sender(peer: &mut RawPeer, id: &str, n: usize) -> HashMap<String, Reply> {
    let mut replies = HashMap::new();
    while replies.len() < n {
        match peer.recv_matching(T, "a reply", |m| matches!(m, Message::Reply(r) if r.request_id == id)) {
            Message::Reply(r) => {
                replies.insert(r.sender.clone(), *r);
            }
            _ => unreachable!(),
        }
    }
    replies
}

fn reply_to(peer: &mut RawPeer, id: &str) -> Reply {
    replies_by_sender(peer, id, 1).into_values().next().unwrap()
}

fn hub_error(peer: &mut RawPeer) -> String {
    match peer.recv_matching(T, "an Error notice", |m| matches!(m, Message::Error(_))) {
        Message::Error(e) => e.message,
        _ => unreachable!(),
    }
}

fn echo(targets: &[&str]) -> Request {
    let mut args = Map::new();
    args.insert("msg".into(), json!("hello"));
    request("echo", "echo", args, targets)
}

/// Sends a fresh ping to `node` until it answers: the node is registered and serving.
fn wait_until_serving(peer: &mut RawPeer, node: &str) {
    wait_for(&format!("{node} to answer a fresh ping"), T, || {
        let ping = request("rpcutil", "ping", Map::new(), &[node]);
        let id = ping.id.clone();
        peer.send_frame(signed_frame(&ping));
        let sent = match peer.recv_matching(T, "Dispatched", |m| matches!(m, Message::Dispatched(d) if d.request_id == id)) {
            Message::Dispatched(d) => d.sent,
            _ => unreachable!(),
        };
        if sent.is_empty() {
            return false;
        }
        // The hub may still route to the node's old, dead link; give this attempt a short deadline.
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Some(m) = peer.recv(deadline.saturating_duration_since(Instant::now())) {
            if matches!(&m, Message::Reply(r) if r.request_id == id && r.status == Status::Ok) {
                return true;
            }
        }
        false
    });
}

// ---------------------------------------------------------------------------------------------
// (a) Re-injected requests

#[test]
fn a_link_re_sending_a_request_it_received_is_refused_and_the_console_keeps_its_replies() {
    let hub = Hub::start();
    let agents = gate_agent_dir();
    let work = tempfile::tempdir().unwrap();
    let gate = work.path().join("gate");
    let spec = |name: &str| {
        NodeSpec::new(hub.endpoint(), name)
            .arg("--agents-dir")
            .arg(agents.path().display().to_string())
            .env("GATE_FILE", &gate.display().to_string())
            .env("MARKER_FILE", &work.path().join(format!("{name}.marker")).display().to_string())
    };
    let nodes = [spec("alpha").start(), spec("beta").start()];
    wait_for_nodes(hub.endpoint(), &["alpha", "beta"], T);
    // An enrolled node that is not what it seems: it receives every broadcast and keeps the bytes.
    let mut mole = Link::node(hub.endpoint(), "mole");
    wait_for_nodes(hub.endpoint(), &["alpha", "beta", "mole"], T);
    let mut peer = console(&hub);

    // A broadcast whose action holds until the gate opens, so the re-injection below happens
    // while the console's route is live: that is when replies could be stolen.
    let mut hold = request("gate", "hold", Map::new(), &[]);
    hold.timeout_ms = 60_000;
    peer.send_frame(signed_frame(&hold));
    match peer.recv_matching(T, "Dispatched", |m| matches!(m, Message::Dispatched(d) if d.request_id == hold.id)) {
        Message::Dispatched(d) => assert_eq!(d.sent, ["alpha", "beta", "mole"], "{d:?}"),
        _ => unreachable!(),
    }
    let (captured, _) = mole.recv_matching("the broadcast", |m| matches!(m, Message::Request(r) if r.id == hold.id));

    // The mole sends the console's signed bytes back to the hub, as its own request. (A node link
    // may not ask for stats: the console reads them.)
    let dropped = peer.hub_stats().dropped_frames;
    mole.send_frame(&captured);
    let e = mole.hub_error();
    assert!(e.contains("refused by the hub") && e.contains("already routed"), "{e}");
    assert_eq!(peer.hub_stats().dropped_frames, dropped + 1, "the refusal is counted as a dropped frame");
    // So does another enrolled console that got hold of the bytes.
    let mut eve = Link::console(hub.endpoint(), "eve");
    eve.send_frame(&captured);
    let e = eve.hub_error();
    assert!(e.contains("refused by the hub") && e.contains("already routed"), "{e}");

    // The actions finish; every reply goes to the console that asked.
    std::fs::write(&gate, "open").unwrap();
    let replies = replies_by_sender(&mut peer, &hold.id, 2);
    for name in ["alpha", "beta"] {
        let r = &replies[name];
        assert_eq!(r.status, Status::Ok, "{r:?}");
    }
    let deadline = Instant::now() + SILENCE;
    while let Some((_, m)) = mole.recv(deadline.saturating_duration_since(Instant::now())) {
        assert!(!matches!(&m, Message::Reply(_) | Message::Request(_)), "the mole got {m:?}");
    }

    // Each node ran the action once and never heard of the re-injections.
    for node in &nodes {
        let lines = audit_of(&node_audit(node), &hold.id, 1);
        assert_eq!(lines.len(), 1, "{}: {lines:?}", node.identity());
        assert_audit(&lines[0], "allowed", "e2e", "default allow");
        assert_eq!(lines_of(&work.path().join(format!("{}.marker", node.identity()))), ["hold e2e"]);
    }
    // The hub audited both refusals, with the request's own fields.
    let lines = audit_of(&hub_audit(&hub), &hold.id, 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert_audit(line, "rejected", "e2e", "already routed for another link");
        assert_eq!((line["agent"].as_str(), line["action"].as_str()), (Some("gate"), Some("hold")), "{line}");
    }
}

// ---------------------------------------------------------------------------------------------
// (b) ttl over max_ttl

#[test]
fn a_ttl_over_max_ttl_is_refused_by_the_node_and_by_the_hub() {
    let work = tempfile::tempdir().unwrap();
    let hub_log = work.path().join("hub-audit.log");
    let hub = Hub::start_with("", &["--hub", "tcp://127.0.0.1:0", "--max-ttl", "1000", "--audit-log", &hub_log.display().to_string()]);
    let node = NodeSpec::new(hub.endpoint(), "alpha").arg("--max-ttl").arg("100").start();
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let mut peer = console(&hub);

    // Within the hub's limit, over the node's: the node refuses it, says why, and audits it.
    let mut long = echo(&["alpha"]);
    long.ttl = 500;
    peer.send_frame(signed_frame(&long));
    let r = reply_to(&mut peer, &long.id);
    assert_eq!(r.status, Status::Denied, "{r:?}");
    assert!(r.status_msg.contains("ttl of 500 s is over this node's max_ttl of 100 s"), "{r:?}");
    assert_audit(&audit_of(&node_audit(&node), &long.id, 1)[0], "rejected", "e2e", "max_ttl");

    // At the node's limit it runs.
    let mut at_limit = echo(&["alpha"]);
    at_limit.ttl = 100;
    peer.send_frame(signed_frame(&at_limit));
    assert_eq!(reply_to(&mut peer, &at_limit.id).status, Status::Ok);

    // Over the hub's limit: dropped at the hub, counted, audited there; the node never sees it.
    let dropped = peer.hub_stats().dropped_frames;
    let mut longer = echo(&["alpha"]);
    longer.ttl = 5000;
    peer.send_frame(signed_frame(&longer));
    let e = hub_error(&mut peer);
    assert!(e.contains("refused by the hub") && e.contains("ttl of 5000 s is over the hub's max_ttl of 1000 s"), "{e}");
    assert_eq!(peer.hub_stats().dropped_frames, dropped + 1);
    let line = &audit_of(&hub_log, &longer.id, 1)[0];
    assert_audit(line, "rejected", "e2e", "max_ttl");
    assert_eq!((line["agent"].as_str(), line["action"].as_str()), (Some("echo"), Some("echo")), "{line}");
    assert_eq!(audit_lines(&hub_log).len(), 1, "only the refused request is in the hub's log");
    // The node audited the two requests it received, and nothing about the third.
    audit_of(&node_audit(&node), &at_limit.id, 1);
    assert!(audit_lines(&node_audit(&node)).iter().all(|l| l["request_id"] != longer.id.as_str()));
}

// ---------------------------------------------------------------------------------------------
// (c) Replays across a restart

#[test]
fn a_request_captured_before_a_node_restarted_is_refused_after() {
    let hub = Hub::start();
    // No clock skew allowed: the console and the node share this host's clock, so "sent before
    // the node started" is exact.
    let mut node = NodeSpec::new(hub.endpoint(), "alpha").config("max_clock_skew = 0.0\n").start();
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let mut peer = console(&hub);

    let captured = echo(&["alpha"]);
    let frame = signed_frame(&captured);
    peer.send_frame(frame.clone());
    assert_eq!(reply_to(&mut peer, &captured.id).status, Status::Ok);

    node.sigterm();
    node.wait(T).expect("the node stops on SIGTERM");
    node.restart();
    wait_until_serving(&mut peer, "alpha");

    // The new process's replay cache is empty; the request is refused for its age instead.
    peer.send_frame(frame);
    let r = reply_to(&mut peer, &captured.id);
    assert_eq!(r.status, Status::Denied, "{r:?}");
    assert!(r.status_msg.contains("before this node started"), "{r:?}");
    let lines = audit_of(&node_audit(&node), &captured.id, 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_audit(&lines[0], "allowed", "e2e", "default allow");
    assert_audit(&lines[1], "rejected", "e2e", "before this node started");
}

// ---------------------------------------------------------------------------------------------
// (d) The hub's audit log

#[test]
fn every_request_the_hub_refuses_is_a_line_in_its_audit_log() {
    let hub = Hub::start();
    let node = Node::start(hub.endpoint(), "alpha", "", &[]);
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let mut peer = console(&hub);
    let untrusted = KeyPair::generate();
    let sign_as = |req: &Request, name: &str| {
        let mut req = req.clone();
        req.caller = name.into();
        let mut env = Envelope::seal(&Message::Request(Box::new(req))).unwrap();
        env.sign(&untrusted, name);
        env.to_frame().unwrap()
    };

    // Refused before decoding: nothing in the body is believed, so no request id is logged.
    let unsigned = {
        let mut req = echo(&["alpha"]);
        req.caller = "e2e".into();
        encode_message(&Message::Request(Box::new(req))).unwrap()
    };
    let forged = sign_as(&echo(&["alpha"]), "e2e");
    let unknown = sign_as(&echo(&["alpha"]), "mallory");
    let tampered = {
        let mut env = Envelope::from_frame(&signed_frame(&request("rpcutil", "ping", Map::new(), &["alpha"])), &Limits::default()).unwrap();
        let at = env.body.windows(5).position(|w| w == b"\xa4ping").expect("the action in the body");
        env.body[at + 1..at + 5].copy_from_slice(b"pong");
        assert!(env.open(&Limits::default()).is_ok(), "the tampered body is a well-formed request");
        env.to_frame().unwrap()
    };
    let mut expected: Vec<(String, &str, &str)> = Vec::new();
    for (frame, caller, reason) in [
        (unsigned, "-", "unsigned"),
        (forged, "e2e", "bad signature"),
        (unknown, "mallory", "unknown caller 'mallory'"),
        (tampered, "e2e", "bad signature"),
    ] {
        peer.send_frame(frame);
        let e = hub_error(&mut peer);
        assert!(e.contains("refused by the hub") && e.contains(reason), "{e}");
        expected.push(("-".into(), caller, reason));
    }

    // Refused after decoding: the request's id, caller, agent and action are logged.
    let mut long = echo(&["alpha"]);
    long.ttl = 3601;
    peer.send_frame(signed_frame(&long));
    assert!(hub_error(&mut peer).contains("over the hub's max_ttl of 3600 s"));
    expected.push((long.id.clone(), "e2e", "max_ttl"));

    let genuine = echo(&["alpha"]);
    let genuine_frame = signed_frame(&genuine);
    peer.send_frame(genuine_frame.clone());
    assert_eq!(reply_to(&mut peer, &genuine.id).status, Status::Ok);
    let mut other = Link::console(hub.endpoint(), "other");
    other.send_frame(&genuine_frame);
    assert!(other.hub_error().contains("already routed for another link"));
    expected.push((genuine.id.clone(), "e2e", "already routed"));

    let lines = audit_count(&hub_audit(&hub), expected.len());
    assert_eq!(lines.len(), expected.len(), "one line per refused request: {lines:#?}");
    for (line, (id, caller, reason)) in lines.iter().zip(&expected) {
        assert_audit(line, "rejected", caller, reason);
        assert_eq!(line["request_id"], id.as_str(), "{line}");
        let digest = line["args_digest"].as_str().unwrap();
        if id == "-" {
            assert_eq!((line["agent"].as_str(), line["action"].as_str(), digest), (Some("-"), Some("-"), "-"), "{line}");
        } else {
            assert_eq!((line["agent"].as_str(), line["action"].as_str()), (Some("echo"), Some("echo")), "{line}");
            assert!(digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()), "{line}");
        }
        let time = line["time"].as_str().unwrap();
        assert!(time.len() == 24 && time.ends_with('Z'), "{line}");
    }
    // The node heard only of the genuine request, once.
    let node_lines = audit_of(&node_audit(&node), &genuine.id, 1);
    assert_eq!(node_lines.len(), 1);
    assert_eq!(audit_lines(&node_audit(&node)).len(), 1, "{:#?}", audit_lines(&node_audit(&node)));
}
