//! Security end to end, on real `noded hub` and `noded` processes: forged, unknown, unsigned,
//! expired, future and replayed requests are refused (by the hub where it can tell, and by the
//! nodes on their own behind a permissive or a compromised hub), audited with their reason, and
//! never run; encrypted links that need an enrolled key and the pinned hub key; the seed's policy
//! matrix on nodes whose facts and classes differ; one audit line per request over 10,000 mixed
//! requests; hostile frame sizes at the hub and at a node; and the CLI's key handling.
//!
//! The side effect that proves an action did not run is a marker file: the `service` agent below
//! is an external script that appends `<action> <caller>` to `$MARKER_FILE` each time it runs.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleet_e2e::support::{
    Hub, Node, NodeSpec, RawPeer, RawZmtp, TestKeys, discover, enroll_console_on, enroll_dir_of, enroll_in, fleet, fleet_bin, noded_bin,
    request, signed_frame, wait_for, wait_for_nodes, wait_until,
};
use fleet_protocol::codec::{Limits, decode_message, encode_message};
use fleet_protocol::keys::KeyPair;
use fleet_protocol::noise::{Initiator, Responder, Session};
use fleet_protocol::{Ack, Envelope, HubStats, Message, Reply, Request, Status};
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use zeromq::prelude::*;

/// Long enough for processes to start and register on a busy 2-core machine.
const T: Duration = Duration::from_secs(20);
/// How long a reply that must not come is waited for, once the node has audited the request.
const SILENCE: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------------
// Callers

/// A caller key pair made for one test. Its public half is trusted only where a test copies it.
struct Caller {
    name: String,
    key: KeyPair,
}

impl Caller {
    fn new(name: &str) -> Caller {
        Caller { name: name.into(), key: KeyPair::generate() }
    }

    /// Writes `<dir>/<name>.pub`: `dir` now trusts this caller.
    fn trust_in(&self, dir: &Path) {
        self.trust_as(dir, &self.name);
    }

    /// Writes this key as `<dir>/<as_name>.pub`: `dir` now believes this key is `as_name`.
    fn trust_as(&self, dir: &Path, as_name: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(format!("{as_name}.pub")), self.key.public().to_file_text(as_name)).unwrap();
    }

    /// Enrolls this caller's link key on `hub` as a console under its name (a console link
    /// carries only the requests of the caller it is enrolled as).
    fn enroll_on(&self, hub: &str) {
        let dir = tempfile::tempdir().unwrap();
        let public = dir.path().join(format!("{}.pub", self.name));
        std::fs::write(&public, self.key.public().to_file_text(&self.name)).unwrap();
        enroll_in(&enroll_dir_of(hub).expect("a harness hub"), &self.name, &public, "console");
    }

    /// A console link to `hub` as this caller (enrolled first), said Hello.
    fn console(&self, hub: &str) -> RawPeer {
        self.enroll_on(hub);
        let mut peer = RawPeer::connect_as(hub, &self.key, &self.name);
        peer.hello(&self.name);
        peer
    }

    /// Signs `req` as this caller, as `fleet` would: the caller field is the key's name.
    fn sign(&self, req: &Request) -> Vec<u8> {
        self.sign_claiming(req, &self.name)
    }

    /// Signs `req` with this key while claiming to be `claimed` (signer and caller field).
    fn sign_claiming(&self, req: &Request, claimed: &str) -> Vec<u8> {
        let mut req = req.clone();
        req.caller = claimed.into();
        let mut env = Envelope::seal(&Message::Request(Box::new(req))).unwrap();
        env.sign(&self.key, claimed);
        env.to_frame().unwrap()
    }
}

/// A request with no signer and no signature, claiming to come from the test caller.
fn unsigned_frame(req: &Request) -> Vec<u8> {
    let mut req = req.clone();
    req.caller = TestKeys::get().caller().into();
    encode_message(&Message::Request(Box::new(req))).unwrap()
}

/// A fresh callers directory that trusts the harness caller (`e2e`) and `extra`.
fn callers_dir(extra: &[&Caller]) -> TempDir {
    let dir = tempfile::Builder::new().prefix("fleet-callers-").tempdir().unwrap();
    std::fs::copy(TestKeys::get().callers_dir().join("e2e.pub"), dir.path().join("e2e.pub")).unwrap();
    for c in extra {
        c.trust_in(dir.path());
    }
    dir
}

fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// A hub on an ephemeral loopback port trusting the callers in `dir` (not the harness default),
/// with `extra` lines added to its `[hub]` table.
fn hub_trusting(dir: &Path, extra: &str) -> Hub {
    Hub::start_with(&format!("[hub]\ncallers_dir = {}\n{extra}", toml_path(dir)), &["--hub", "tcp://127.0.0.1:0"])
}

// ---------------------------------------------------------------------------------------------
// The service agent: a side effect to look for

const SERVICE_DDL: &str = r#"
[metadata]
name = "service"
description = "Pretends to manage a service; appends each call to $MARKER_FILE"
version = "1.0.0"
timeout = 5

[actions.status]
description = "Report the service status"
[actions.status.output.done]
description = "The action that ran"
display_as = "Done"

[actions.restart]
description = "Restart the service"
[actions.restart.output.done]
description = "The action that ran"
display_as = "Done"
"#;

const SERVICE_SCRIPT: &str = r#"#!/bin/sh
# Arguments: request file, reply file, protocol.
req="$1"; reply="$2"; proto="$3"
if [ "$proto" = "io.choria.mcorpc.external.v1.activation_request" ]; then
  echo '{"activate": true}' > "$reply"; exit 0
fi
action=$(sed -n 's/.*"action":"\([a-z]*\)".*/\1/p' "$req")
caller=$(sed -n 's/.*"caller":"\([A-Za-z0-9_.-]*\)".*/\1/p' "$req")
echo "$action $caller" >> "$MARKER_FILE"
printf '{"statuscode":0,"statusmsg":"OK","data":{"done":"%s"}}' "$action" > "$reply"
"#;

/// A directory with the `service` agent installed.
fn service_agent_dir() -> TempDir {
    let dir = tempfile::Builder::new().prefix("fleet-agents-").tempdir().unwrap();
    std::fs::write(dir.path().join("service.toml"), SERVICE_DDL).unwrap();
    let exe = dir.path().join("service");
    std::fs::write(&exe, SERVICE_SCRIPT).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A node running the `service` agent, writing its marker to `marker`.
fn service_node(spec: NodeSpec, agents: &TempDir, marker: &Path) -> NodeSpec {
    spec.arg("--agents-dir").arg(agents.path().display().to_string()).env("MARKER_FILE", &marker.display().to_string())
}

/// The marker file's lines; empty when the file does not exist (nothing ever ran).
fn marker_lines(path: &Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => s.lines().map(str::to_string).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

fn service(action: &str, targets: &[&str]) -> Request {
    request("service", action, Map::new(), targets)
}

// ---------------------------------------------------------------------------------------------
// Audit

/// The audit log and its rotated files in `<node dir>`, oldest first: `audit.log.N` ...
/// `audit.log.1`, `audit.log`.
fn audit_files(node_dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u64, PathBuf)> = std::fs::read_dir(node_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let n = name.strip_prefix("audit.log.")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    rotated.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    files.push(node_dir.join("audit.log"));
    files
}

/// Every audit line of the node, oldest first, each parsed as JSON (a line that is not JSON
/// fails the test, naming the file and the line). A partial last line (being written) is left
/// out: the writer appends whole lines, but a read may land between two write(2)s.
fn audit_lines(node_dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for file in audit_files(node_dir) {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("cannot read {}: {e}", file.display()),
        };
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        for (i, line) in complete.lines().enumerate() {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{}:{}: audit line is not JSON ({e}): {line}", file.display(), i + 1));
            out.push(v);
        }
    }
    out
}

/// Waits for the node's audit line about request `id` and returns it.
fn audit_of_request(node: &Node, id: &str) -> Value {
    let mut found = None;
    wait_for(&format!("an audit line for request {id} on {}", node.identity()), T, || {
        found = audit_lines(node.dir()).into_iter().find(|l| l["request_id"] == id);
        found.is_some()
    });
    found.unwrap()
}

/// Waits for a new audit line (beyond the first `seen`) satisfying `pred`.
fn audit_line_after(node: &Node, seen: usize, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let mut found = None;
    wait_for(&format!("an audit line on {} for {what}", node.identity()), T, || {
        found = audit_lines(node.dir()).into_iter().skip(seen).find(|l| pred(l));
        found.is_some()
    });
    found.unwrap()
}

fn assert_audit(line: &Value, decision: &str, caller: &str, reason_has: &str) {
    assert_eq!(line["decision"], decision, "{line}");
    assert_eq!(line["caller"], caller, "{line}");
    let reason = line["reason"].as_str().unwrap_or_else(|| panic!("no reason: {line}"));
    assert!(reason.contains(reason_has), "reason should mention '{reason_has}': {line}");
}

// ---------------------------------------------------------------------------------------------
// Talking to the hub

/// The reply to request `id`; `None` when none comes within `timeout`.
fn reply_to(peer: &mut RawPeer, id: &str, timeout: Duration) -> Option<Reply> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match peer.recv(left)? {
            Message::Reply(r) if r.request_id == id => return Some(*r),
            _ => continue,
        }
    }
}

/// The replies of `n` nodes to request `id`, by sender, in whatever order they come.
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

/// The hub's next Error notice to this peer.
fn hub_error(peer: &mut RawPeer) -> String {
    match peer.recv_matching(T, "an Error notice", |m| matches!(m, Message::Error(_))) {
        Message::Error(e) => e.message,
        _ => unreachable!(),
    }
}

fn ping_hub(peer: &mut RawPeer) {
    peer.send(&Message::Ping);
    peer.recv_matching(T, "Pong", |m| matches!(m, Message::Pong));
}

/// A console link whose Noise session the test holds itself: it can attach with any key, keep
/// the encrypted bytes it sent (to replay them), and send outside the link.
struct SealedPeer {
    raw: RawPeer,
    /// `None` when the hub never answered the handshake (an unenrolled key, a wrong hub key).
    session: Option<Session>,
}

impl SealedPeer {
    /// Attaches and runs the link handshake with `key` as `name`, pinning `hub_link`. Waits up to
    /// `wait` for the hub's answer.
    fn connect(hub: &str, key: &KeyPair, name: &str, hub_link: &[u8; 32], wait: Duration) -> SealedPeer {
        let mut raw = RawPeer::connect_plain(hub);
        let (init, hello) = Initiator::start(key, hub_link, name).unwrap();
        raw.send_raw_frame(hello);
        let session = raw.recv_frames(wait).map(|f| init.finish(f.last().unwrap()).expect("the hub's handshake answer"));
        SealedPeer { raw, session }
    }

    /// As the harness's console, `e2e`, enrolled on every test hub.
    fn e2e(hub: &str) -> SealedPeer {
        let keys = TestKeys::get();
        let peer = SealedPeer::connect(hub, &keys.key, "e2e", &keys.hub.public().link, T);
        assert!(peer.session.is_some(), "no link to {hub}");
        peer
    }

    /// Encrypts and sends one frame; returns the bytes that went on the wire.
    fn send_frame(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let sealed = self.session.as_mut().expect("a link").seal(plaintext).unwrap();
        self.raw.send_raw_frame(sealed.clone());
        sealed
    }

    fn send(&mut self, msg: &Message) {
        self.send_frame(&encode_message(msg).unwrap());
    }

    fn recv(&mut self, timeout: Duration) -> Option<Message> {
        let frames = self.raw.recv_frames(timeout)?;
        let plain = self.session.as_mut().expect("a link").open(frames.last().unwrap()).expect("the hub's frame decrypts");
        Some(decode_message(&plain, &Limits::default()).unwrap())
    }

    fn recv_matching(&mut self, what: &str, pred: impl Fn(&Message) -> bool) -> Message {
        let deadline = Instant::now() + T;
        loop {
            match self.recv(deadline.saturating_duration_since(Instant::now())) {
                Some(m) if pred(&m) => return m,
                Some(_) => continue,
                None => panic!("no {what} from the hub within {T:?}"),
            }
        }
    }

    fn hub_stats(&mut self) -> HubStats {
        self.send(&Message::StatsQuery);
        match self.recv_matching("HubStats", |m| matches!(m, Message::HubStats(_))) {
            Message::HubStats(s) => s,
            _ => unreachable!(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A compromised hub: a ZeroMQ ROUTER under the test's control

/// Plays the hub for real nodes but forwards whatever the test tells it to, as a hub an attacker
/// owns would: it holds the hub's private key (so nodes complete the link handshake), acknowledges
/// registrations so the node keeps the link, and collects replies.
struct RogueHub {
    /// Owns the socket task; dropping it closes the socket.
    _rt: tokio::runtime::Runtime,
    endpoint: String,
    to_node: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    replies: Arc<Mutex<Vec<Reply>>>,
    registered: Arc<AtomicBool>,
}

impl RogueHub {
    fn start() -> RogueHub {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (endpoint, mut send, mut recv) = rt.block_on(async {
            let mut sock = zeromq::RouterSocket::new();
            let ep = sock.bind("tcp://127.0.0.1:0").await.expect("bind rogue hub").to_string();
            let (send, recv) = sock.split();
            (ep, send, recv)
        });
        let (to_node, mut from_test) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let replies = Arc::new(Mutex::new(Vec::new()));
        let registered = Arc::new(AtomicBool::new(false));
        let (replies2, registered2) = (replies.clone(), registered.clone());
        rt.spawn(async move {
            // The node's routing id and the link session with it.
            let mut node: Option<(Bytes, Session)> = None;
            let limits = Limits::default();
            loop {
                tokio::select! {
                    msg = recv.recv() => {
                        let Ok(msg) = msg else { return };
                        let mut frames = msg.into_vec();
                        let id = frames.remove(0);
                        let Some(payload) = frames.pop() else { continue };
                        if fleet_protocol::noise::is_handshake_1(&payload) {
                            // A compromised hub holds the hub's key and asks nobody about enrollment.
                            let Ok(responder) = Responder::read(&TestKeys::get().hub, &payload) else { continue };
                            let Ok((session, answer)) = responder.accept() else { continue };
                            let mut out = zeromq::ZmqMessage::from(id.clone());
                            out.push_back(Bytes::from(answer));
                            let _ = send.send(out).await;
                            node = Some((id, session));
                            continue;
                        }
                        let Some((_, session)) = node.as_mut().filter(|(n, _)| *n == id) else { continue };
                        let Ok(plain) = session.open(&payload) else { continue };
                        match decode_message(&plain, &limits) {
                            Ok(Message::Registration(_)) => {
                                registered2.store(true, Ordering::SeqCst);
                                let ack = encode_message(&Message::Ack(Ack { hub_time: fleet_protocol::now_ms() })).unwrap();
                                let mut out = zeromq::ZmqMessage::from(id);
                                out.push_back(Bytes::from(session.seal(&ack).unwrap()));
                                let _ = send.send(out).await;
                            }
                            Ok(Message::Reply(r)) => replies2.lock().unwrap().push(*r),
                            _ => {}
                        }
                    }
                    frame = from_test.recv() => {
                        let Some(frame) = frame else { return };
                        if let Some((id, session)) = node.as_mut() {
                            let mut out = zeromq::ZmqMessage::from(id.clone());
                            out.push_back(Bytes::from(session.seal(&frame).unwrap()));
                            let _ = send.send(out).await;
                        }
                    }
                }
            }
        });
        RogueHub { _rt: rt, endpoint, to_node, replies, registered }
    }

    fn wait_for_node(&self) {
        wait_for("the node to register with the rogue hub", T, || self.registered.load(Ordering::SeqCst));
    }

    fn send(&self, frame: Vec<u8>) {
        self.to_node.send(frame).unwrap();
    }

    fn reply_to(&self, id: &str) -> Option<Reply> {
        self.replies.lock().unwrap().iter().find(|r| r.request_id == id).cloned()
    }

    fn wait_reply(&self, id: &str) -> Reply {
        let mut r = None;
        wait_for(&format!("the reply to {id} at the rogue hub"), T, || {
            r = self.reply_to(id);
            r.is_some()
        });
        r.unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Forged, unknown, unsigned, expired, future, replayed

#[test]
fn the_hub_drops_forged_unknown_and_unsigned_requests_and_the_node_refuses_stale_and_replayed_ones() {
    let hub = Hub::start();
    let agents = service_agent_dir();
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("marker");
    let node = service_node(NodeSpec::new(hub.endpoint(), "alpha"), &agents, &marker).start();
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let mut peer = RawPeer::connect(hub.endpoint());
    peer.hello("attacker");
    let dropped_before = peer.hub_stats().dropped_frames;

    // Forged: an untrusted key claiming to be the trusted caller "e2e".
    let forger = Caller::new("forger");
    let forged = service("restart", &["alpha"]);
    peer.send_frame(forger.sign_claiming(&forged, "e2e"));
    let e = hub_error(&mut peer);
    assert!(e.contains("refused by the hub") && e.contains("bad signature"), "{e}");
    // Unknown caller: a valid signature by a key nobody trusts.
    let mallory = Caller::new("mallory");
    let unknown = service("restart", &["alpha"]);
    peer.send_frame(mallory.sign(&unknown));
    let e = hub_error(&mut peer);
    assert!(e.contains("refused by the hub") && e.contains("unknown caller 'mallory'"), "{e}");
    // Unsigned.
    let unsigned = service("restart", &["alpha"]);
    peer.send_frame(unsigned_frame(&unsigned));
    let e = hub_error(&mut peer);
    assert!(e.contains("refused by the hub") && e.contains("unsigned"), "{e}");
    assert_eq!(peer.hub_stats().dropped_frames, dropped_before + 3, "each is counted as a dropped frame");

    // Expired: signed by a trusted caller, but sent ttl + 10 s ago. The hub forwards it (time is
    // the node's call); the node refuses it.
    let mut expired = service("restart", &["alpha"]);
    expired.msgtime = fleet_protocol::now_ms() - (u64::from(expired.ttl) + 10) * 1000;
    peer.send_frame(signed_frame(&expired));
    let r = reply_to(&mut peer, &expired.id, T).expect("a reply to the expired request");
    assert_eq!(r.status, Status::Aborted, "{r:?}");
    assert!(r.status_msg.contains("expired"), "{r:?}");
    assert_audit(&audit_of_request(&node, &expired.id), "rejected", "e2e", "request expired");

    // From the future: a minute ahead, beyond the default 5 s skew.
    let mut future = service("restart", &["alpha"]);
    future.msgtime = fleet_protocol::now_ms() + 60_000;
    peer.send_frame(signed_frame(&future));
    let r = reply_to(&mut peer, &future.id, T).expect("a reply to the future request");
    assert_eq!(r.status, Status::Denied, "{r:?}");
    assert!(r.status_msg.contains("from the future"), "{r:?}");
    assert_audit(&audit_of_request(&node, &future.id), "rejected", "e2e", "from the future");
    assert_eq!(marker_lines(&marker), Vec::<String>::new(), "nothing ran so far");

    // Replayed: the same bytes twice. The first runs, the second is refused.
    let replayed = service("restart", &["alpha"]);
    let frame = signed_frame(&replayed);
    peer.send_frame(frame.clone());
    let r = reply_to(&mut peer, &replayed.id, T).expect("a reply to the original");
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(marker_lines(&marker), ["restart e2e"]);
    let seen = audit_lines(node.dir()).len();
    peer.send_frame(frame);
    let line = audit_line_after(&node, seen, "the replay", |l| l["request_id"] == replayed.id.as_str() && l["decision"] == "rejected");
    assert_audit(&line, "rejected", "e2e", "replayed");
    assert_eq!(marker_lines(&marker), ["restart e2e"], "the replay did not run");

    // The three the hub dropped never reached the node: it audited only what it received.
    let ids: Vec<String> = audit_lines(node.dir()).iter().map(|l| l["request_id"].as_str().unwrap_or("").to_string()).collect();
    for id in [&forged.id, &unknown.id, &unsigned.id] {
        assert!(!ids.contains(id), "the node never saw {id}: {ids:?}");
    }
    assert_eq!(audit_lines(node.dir()).iter().filter(|l| l["decision"] == "rejected").count(), 3, "expired, future, replayed");
    assert_eq!(marker_lines(&marker), ["restart e2e"]);

    // Replayed on the wire: the encrypted bytes of a request, sent again on the same link. The
    // link's nonces refuse them at the hub; the node never hears of them, and the link lives on.
    let mut link = SealedPeer::e2e(hub.endpoint());
    link.send(&Message::Hello(fleet_protocol::Hello { name: "wire".into(), subscribe: false }));
    link.recv_matching("Welcome", |m| matches!(m, Message::Welcome(_)));
    let wire = service("status", &["alpha"]);
    let ciphertext = link.send_frame(&signed_frame(&wire));
    match link.recv_matching("the reply", |m| matches!(m, Message::Reply(r) if r.request_id == wire.id)) {
        Message::Reply(r) => assert_eq!(r.status, Status::Ok, "{r:?}"),
        _ => unreachable!(),
    }
    audit_of_request(&node, &wire.id);
    let dropped = link.hub_stats().dropped_frames;
    link.raw.send_raw_frame(ciphertext);
    assert_eq!(link.hub_stats().dropped_frames, dropped + 1, "the replayed ciphertext does not decrypt");
    assert_eq!(audit_lines(node.dir()).iter().filter(|l| l["request_id"] == wire.id.as_str()).count(), 1);
    assert_eq!(marker_lines(&marker), ["restart e2e", "status e2e"]);
}

#[test]
fn nodes_refuse_forged_and_unknown_callers_that_a_permissive_hub_forwards() {
    // The hub believes the forger's key is "e2e" and trusts mallory; the node knows better. This
    // stands in for a hub run without a callers directory (hub.callers_dir cannot be unset from
    // the config file today).
    let forger = Caller::new("forger");
    let mallory = Caller::new("mallory");
    let hub_callers = tempfile::tempdir().unwrap();
    forger.trust_as(hub_callers.path(), "e2e");
    mallory.trust_in(hub_callers.path());
    let hub = hub_trusting(hub_callers.path(), "");
    let agents = service_agent_dir();
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("marker");
    let node = service_node(NodeSpec::new(hub.endpoint(), "alpha"), &agents, &marker).start();
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let mut peer = RawPeer::connect(hub.endpoint());
    peer.hello("attacker");
    let mut mallory_link = mallory.console(hub.endpoint());
    let dropped_before = peer.hub_stats().dropped_frames;

    for (frame, claimed, reason, id) in [
        {
            let req = service("restart", &["alpha"]);
            (forger.sign_claiming(&req, "e2e"), "e2e", "bad signature", req.id)
        },
        {
            let req = service("restart", &["alpha"]);
            (mallory.sign(&req), "mallory", "unknown caller 'mallory'", req.id)
        },
    ] {
        let seen = audit_lines(node.dir()).len();
        // Each over the link of the caller it claims to be: a console link carries only its own
        // caller's requests.
        let peer = if claimed == "mallory" { &mut mallory_link } else { &mut peer };
        peer.send_frame(frame);
        // The hub passed it on to the node...
        peer.recv_matching(T, "Dispatched", |m| matches!(m, Message::Dispatched(d) if d.request_id == id && d.sent == ["alpha"]));
        // ...which refused it before decoding it: audited with the claimed signer and the reason,
        // no request id (nothing in the body is believed), and no reply.
        let line = audit_line_after(&node, seen, reason, |l| l["decision"] == "rejected");
        assert_audit(&line, "rejected", claimed, reason);
        assert_eq!(line["request_id"], "-", "{line}");
        assert_eq!(reply_to(peer, &id, SILENCE), None, "no reply to a request refused before decoding");
    }
    assert_eq!(peer.hub_stats().dropped_frames, dropped_before, "this hub let both through");
    assert_eq!(marker_lines(&marker), Vec::<String>::new(), "the action never ran");
    assert_eq!(audit_lines(node.dir()).len(), 2);
}

#[test]
fn a_compromised_hub_cannot_make_a_node_act() {
    // The hub itself is the attacker: it forwards unsigned requests, requests signed with its own
    // key, tampered copies of real requests, and replays of real requests.
    let rogue = RogueHub::start();
    let agents = service_agent_dir();
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("marker");
    let node = service_node(NodeSpec::new(&rogue.endpoint, "alpha"), &agents, &marker).start();
    rogue.wait_for_node();

    // A genuine request from the trusted caller runs once.
    let genuine = service("status", &["alpha"]);
    let genuine_frame = signed_frame(&genuine);
    rogue.send(genuine_frame.clone());
    assert_eq!(rogue.wait_reply(&genuine.id).status, Status::Ok);
    assert_eq!(marker_lines(&marker), ["status e2e"]);
    assert_audit(&audit_of_request(&node, &genuine.id), "allowed", "e2e", "default allow");

    let hub_key = Caller::new("hub");
    let mut tampered = Envelope::from_frame(&genuine_frame, &Limits::default()).unwrap();
    // Turn the action "status" into "restart" inside the signed body (msgpack fixstr header
    // included, so the body still decodes), keeping the signature.
    let at = tampered.body.windows(7).position(|w| w == b"\xa6status").expect("action in the body");
    tampered.body.splice(at..at + 7, b"\xa7restart".iter().copied());
    assert!(tampered.open(&Limits::default()).is_ok(), "the tampered body is a well-formed request");
    let cases: Vec<(Vec<u8>, String, &str, &str)> = vec![
        (unsigned_frame(&service("restart", &["alpha"])), "-".into(), "unsigned", "unsigned"),
        (hub_key.sign_claiming(&service("restart", &["alpha"]), "e2e"), "e2e".into(), "bad signature", "signed by the hub's key"),
        (hub_key.sign(&service("restart", &["alpha"])), "hub".into(), "unknown caller 'hub'", "signed as itself"),
        (tampered.to_frame().unwrap(), "e2e".into(), "bad signature", "tampered body"),
        (genuine_frame.clone(), "e2e".into(), "replayed", "replay of a genuine request"),
    ];
    for (frame, claimed, reason, what) in cases {
        let seen = audit_lines(node.dir()).len();
        let replies = rogue.replies.lock().unwrap().len();
        rogue.send(frame);
        let line = audit_line_after(&node, seen, what, |l| l["decision"] == "rejected");
        assert_audit(&line, "rejected", &claimed, reason);
        if reason == "replayed" {
            assert_eq!(line["request_id"], genuine.id.as_str(), "{line}");
            // Decoded, so the node answers (Denied) and the hub learns nothing it could use.
            wait_for("the Denied reply to the replay", T, || rogue.replies.lock().unwrap().len() == replies + 1);
            let r = rogue.replies.lock().unwrap().last().cloned().unwrap();
            assert_eq!((r.status, r.request_id.as_str()), (Status::Denied, genuine.id.as_str()), "{r:?}");
        } else {
            std::thread::sleep(SILENCE);
            assert_eq!(rogue.replies.lock().unwrap().len(), replies, "{what}: no reply before decoding");
        }
        assert_eq!(marker_lines(&marker), ["status e2e"], "{what}: the action did not run");
    }
    drop(node);
}

// ---------------------------------------------------------------------------------------------
// 2. The seed's policy matrix

const SEED_POLICY: &str = "\
# The seed's example policy, uid=N translated to callers named uidN.
policy default deny
allow uid500 * * *
allow uid502 status * *
allow uid600 * customer=acme acme::devserver
";

#[test]
fn the_seed_policy_matrix_holds_on_real_nodes() {
    let callers: Vec<Caller> = ["uid500", "uid502", "uid600", "uid700"].iter().map(|n| Caller::new(n)).collect();
    let trusted = callers_dir(&callers.iter().collect::<Vec<_>>());
    let hub = hub_trusting(trusted.path(), "");
    let policies = tempfile::tempdir().unwrap();
    let policy_file = policies.path().join("service.policy");
    std::fs::write(&policy_file, SEED_POLICY).unwrap();
    let agents = service_agent_dir();
    let markers = tempfile::tempdir().unwrap();
    // Facts and classes that differ in exactly what the uid600 line looks at.
    let node_specs = [
        ("acme-dev", "customer: acme\n", vec!["acme::devserver", "apache"]),
        ("acme-prod", "customer: acme\n", vec!["acme::prodserver"]),
        ("other-dev", "customer: other\n", vec!["acme::devserver"]),
    ];
    let config =
        format!("callers_dir = {}\npolicy_dir = {}\npolicy_default = \"allow\"\n", toml_path(trusted.path()), toml_path(policies.path()));
    let nodes: Vec<Node> = node_specs
        .iter()
        .map(|(id, facts, classes)| {
            let spec = NodeSpec::new(hub.endpoint(), id).facts(facts).classes(classes).config(&config);
            service_node(spec, &agents, &markers.path().join(id)).start()
        })
        .collect();
    let ids = ["acme-dev", "acme-prod", "other-dev"];
    wait_for_nodes(hub.endpoint(), &ids, T);
    // One console link per caller: a link carries only the requests of the caller it is enrolled as.
    let mut links: BTreeMap<String, RawPeer> = callers.iter().map(|c| (c.name.clone(), c.console(hub.endpoint()))).collect();

    let rule = |line: usize| format!("{}:{line}: {}", policy_file.display(), SEED_POLICY.lines().nth(line - 1).unwrap());
    let default_deny = format!("default deny ({})", policy_file.display());
    // expected[(caller, action, node)] = Some(rule that allows) or None (default deny).
    let expected = |caller: &str, action: &str, node: &str| -> Option<String> {
        match caller {
            "uid500" => Some(rule(3)),
            "uid502" if action == "status" => Some(rule(4)),
            "uid600" if node == "acme-dev" => Some(rule(5)),
            _ => None,
        }
    };
    let mut ran: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for caller in &callers {
        for action in ["status", "restart"] {
            let req = service(action, &ids);
            let peer = links.get_mut(&caller.name).unwrap();
            peer.send_frame(caller.sign(&req));
            let replies = replies_by_sender(peer, &req.id, ids.len());
            for (node, id) in nodes.iter().zip(ids) {
                let r = &replies[id];
                let cell = format!("{} {action} on {id}", caller.name);
                let audit = audit_of_request(node, &req.id);
                match expected(&caller.name, action, id) {
                    Some(allowing) => {
                        assert_eq!(r.status, Status::Ok, "{cell}: {r:?}");
                        assert_audit(&audit, "allowed", &caller.name, &allowing);
                        ran.entry(id).or_default().push(format!("{action} {}", caller.name));
                    }
                    None => {
                        assert_eq!(r.status, Status::Denied, "{cell}: {r:?}");
                        assert_eq!(r.status_msg, format!("denied by {default_deny}"), "{cell}");
                        assert_audit(&audit, "denied", &caller.name, &default_deny);
                    }
                }
            }
        }
    }
    // Exactly the allowed cells ran, on exactly their nodes.
    for id in ids {
        assert_eq!(marker_lines(&markers.path().join(id)), ran.get(id).cloned().unwrap_or_default(), "what ran on {id}");
    }
    assert_eq!(ran["acme-dev"].len(), 5);
    assert_eq!(ran["acme-prod"].len(), 3);
    assert_eq!(ran["other-dev"].len(), 3);

    // A caller field that disagrees with the signing key is refused: the key is the identity.
    let req = service("restart", &["acme-dev"]);
    let mut lying = req.clone();
    lying.caller = "uid500".into();
    let mut env = Envelope::seal(&Message::Request(Box::new(lying))).unwrap();
    env.sign(&callers[3].key, "uid700");
    let peer = links.get_mut("uid700").unwrap();
    peer.send_frame(env.to_frame().unwrap());
    let r = reply_to(peer, &req.id, T).expect("a reply to the lying request");
    assert_eq!(r.status, Status::Denied, "{r:?}");
    assert!(r.status_msg.contains("does not match the signing key 'uid700'"), "{r:?}");
    assert_audit(&audit_of_request(&nodes[0], &req.id), "rejected", "uid700", "does not match the signing key");

    // The dry run names the deciding line, and runs nothing.
    let check = |args: &[&str]| {
        let mut all = vec!["policy", "check"];
        all.extend_from_slice(args);
        all.push("--json");
        let out = fleet(hub.endpoint(), &all);
        assert_eq!(out.code, Some(0), "{out}");
        out.json()["replies"][0]["data"].clone()
    };
    let d = check(&["uid502", "service", "restart", "-I", "acme-dev"]);
    assert_eq!(d["allowed"], false, "{d}");
    assert_eq!(d["rule"], default_deny.as_str(), "{d}");
    let d = check(&["uid502", "service", "status", "-I", "acme-prod"]);
    assert_eq!((d["allowed"].clone(), d["rule"].clone()), (json!(true), json!(rule(4))), "{d}");
    let d = check(&["uid600", "service", "restart", "-I", "acme-dev"]);
    assert_eq!((d["allowed"].clone(), d["rule"].clone()), (json!(true), json!(rule(5))), "{d}");
    let d = check(&["uid600", "service", "restart", "-I", "other-dev"]);
    assert_eq!(d["rule"], default_deny.as_str(), "{d}");

    // A policy file that does not parse denies everything for its agent, even for uid500 and even
    // with policy_default = "allow". Replaced atomically, as a config manager would.
    let tmp = policies.path().join(".service.policy.tmp");
    std::fs::write(&tmp, format!("{SEED_POLICY}allow uid500 status\n")).unwrap();
    std::fs::rename(&tmp, &policy_file).unwrap();
    let req = service("status", &ids);
    let peer = links.get_mut("uid500").unwrap();
    peer.send_frame(callers[0].sign(&req));
    let replies = replies_by_sender(peer, &req.id, ids.len());
    for (node, id) in nodes.iter().zip(ids) {
        let r = &replies[id];
        assert_eq!(r.status, Status::Denied, "{id}: {r:?}");
        assert!(r.status_msg.contains("failed to parse") && r.status_msg.contains("service.policy:6"), "{id}: {r:?}");
        assert_audit(&audit_of_request(node, &req.id), "denied", "uid500", "failed to parse");
    }
    let d = check(&["uid500", "service", "status", "-I", "acme-dev"]);
    assert_eq!(d["allowed"], false, "{d}");
    assert!(d["rule"].as_str().unwrap().contains("failed to parse"), "{d}");
    for id in ids {
        assert_eq!(marker_lines(&markers.path().join(id)), ran.get(id).cloned().unwrap_or_default(), "nothing more ran on {id}");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Audit count

/// Sends every frame over encrypted console links, one per caller in `links` (a console link
/// carries only its own caller's requests), each frame on the link its index names, as fast as
/// the links take them, while other tasks read what comes back, until `wait` holds (or two minutes
/// pass). Returns the replies by request id (a later reply to the same id replaces an earlier one)
/// and the hub's error notices.
fn send_all(
    endpoint: &str,
    links: &[(&KeyPair, &str)],
    frames: Vec<(usize, Vec<u8>)>,
    wait: impl Fn(&HashMap<String, Reply>) -> bool,
) -> (HashMap<String, Reply>, Vec<String>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let keys = TestKeys::get();
        let replies = Arc::new(Mutex::new(HashMap::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let received = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for (index, (key, name)) in links.iter().enumerate() {
            let mut sock = zeromq::DealerSocket::new();
            sock.connect(endpoint).await.expect("connect");
            let (init, hello) = Initiator::start(key, &keys.hub.public().link, name).unwrap();
            sock.send(zeromq::ZmqMessage::from(Bytes::from(hello))).await.unwrap();
            let answer = tokio::time::timeout(T, sock.recv()).await.expect("handshake answer").unwrap();
            let mut session = init.finish(&answer.into_vec().pop().unwrap()).expect("link handshake");
            let hello = encode_message(&Message::Hello(fleet_protocol::Hello { name: "audit-load".into(), subscribe: false })).unwrap();
            // Sealed in the order they will be sent: the link's nonces must match.
            let mut sealed = vec![session.seal(&hello).unwrap()];
            sealed.extend(frames.iter().filter(|(i, _)| *i == index).map(|(_, f)| session.seal(f).unwrap()));
            let session = Arc::new(Mutex::new(session));
            let (mut tx, mut rx) = sock.split();
            let (r2, e2, n2, s2) = (replies.clone(), errors.clone(), received.clone(), session.clone());
            tasks.push(tokio::spawn(async move {
                let limits = Limits::default();
                while let Ok(msg) = rx.recv().await {
                    let Some(frame) = msg.into_vec().pop() else { continue };
                    let plain = s2.lock().unwrap().open(&frame).expect("the hub's frame decrypts");
                    match decode_message(&plain, &limits) {
                        Ok(Message::Reply(r)) => {
                            r2.lock().unwrap().insert(r.request_id.clone(), *r);
                            n2.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Message::Error(e)) => e2.lock().unwrap().push(e.message),
                        _ => {}
                    }
                }
            }));
            tasks.push(tokio::spawn(async move {
                for f in sealed {
                    tx.send(zeromq::ZmqMessage::from(Bytes::from(f))).await.expect("send");
                }
                // Keep the sending half (and so the link) open until the readers are done.
                std::future::pending::<()>().await;
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while !wait(&replies.lock().unwrap()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for t in &tasks {
            t.abort();
        }
        let r = replies.lock().unwrap().clone();
        let e = errors.lock().unwrap().clone();
        eprintln!("audit load: {} reply messages for {} request ids", received.load(Ordering::Relaxed), r.len());
        (r, e)
    })
}

#[test]
fn every_request_received_gets_exactly_one_parseable_audit_line() {
    const REQUESTS: usize = 10_000;
    // The hub trusts everyone the load uses, so every request reaches the node and the node alone
    // decides. The node does not know "ghost", and believes a different key is "zed".
    let denier = Caller::new("denier");
    let ghost = Caller::new("ghost");
    let zed_hub = Caller::new("zed");
    let zed_node = Caller::new("zed");
    let hub_callers = callers_dir(&[&denier, &ghost, &zed_hub]);
    let node_callers = callers_dir(&[&denier, &zed_node]);
    let hub = hub_trusting(hub_callers.path(), "max_requests_per_second = 1000000.0\n");
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("echo.policy"), "policy default deny\nallow e2e echo * *\n").unwrap();
    let config = format!(
        "callers_dir = {}\npolicy_dir = {}\naudit_max_bytes = 200000\naudit_keep = 1000\n",
        toml_path(node_callers.path()),
        toml_path(policies.path())
    );
    let node = NodeSpec::new(hub.endpoint(), "audited").config(&config).start();
    wait_for_nodes(hub.endpoint(), &["audited"], T);

    // Per ten: 4 allowed, 2 denied by policy, 1 unknown caller and 1 bad signature (both refused
    // before decoding), 1 expired, 1 replay of the fourth allowed one.
    let echo = |i: usize| {
        let mut args = Map::new();
        args.insert("msg".into(), json!(format!("load {i}")));
        request("echo", "echo", args, &["audited"])
    };
    // Each caller's requests go over its own console link: e2e, denier, ghost, zed.
    for c in [&denier, &ghost, &zed_hub] {
        c.enroll_on(hub.endpoint());
    }
    let keys = TestKeys::get();
    let links = [(&keys.key, "e2e"), (&denier.key, "denier"), (&ghost.key, "ghost"), (&zed_hub.key, "zed")];
    let mut frames = Vec::with_capacity(REQUESTS);
    let mut expected: BTreeMap<&str, usize> = BTreeMap::new();
    let mut last_allowed = Vec::new();
    for i in 0..REQUESTS {
        let req = echo(i);
        let (link, frame, decision) = match i % 10 {
            0..=3 => {
                let f = signed_frame(&req);
                last_allowed = f.clone();
                (0, f, "allowed")
            }
            4 | 5 => (1, denier.sign(&req), "denied"),
            6 => (2, ghost.sign(&req), "rejected"),
            7 => (3, zed_hub.sign(&req), "rejected"),
            8 => {
                let mut old = req.clone();
                old.msgtime -= 120_000;
                (0, signed_frame(&old), "rejected")
            }
            _ => (0, last_allowed.clone(), "rejected"),
        };
        frames.push((link, frame));
        *expected.entry(decision).or_default() += 1;
    }
    let started = Instant::now();
    // Replies come for all but the 2,000 refused before decoding; a replay's reply shares its
    // original's id. 7,000 distinct ids in all.
    let (replies, errors) = send_all(hub.endpoint(), &links, frames, |r| r.len() >= REQUESTS / 10 * 7);
    assert!(errors.is_empty(), "the hub refused some: {:?}", &errors[..errors.len().min(5)]);
    assert_eq!(replies.len(), REQUESTS / 10 * 7);

    let mut lines = Vec::new();
    let took = wait_until(Duration::from_secs(120), || {
        lines = audit_lines(node.dir());
        lines.len() >= REQUESTS
    });
    assert!(took.is_some(), "only {} audit lines after 120 s", lines.len());
    // Nothing more trickles in.
    std::thread::sleep(SILENCE);
    lines = audit_lines(node.dir());
    eprintln!(
        "{REQUESTS} requests audited in {:.1} s, over {} files",
        started.elapsed().as_secs_f64(),
        audit_files(node.dir()).iter().filter(|p| p.exists()).count()
    );
    assert_eq!(lines.len(), REQUESTS, "exactly one audit line per request received");
    assert!(audit_files(node.dir()).len() > 2, "the log rotated by size");

    let mut decisions: BTreeMap<&str, usize> = BTreeMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for line in &lines {
        let obj = line.as_object().unwrap_or_else(|| panic!("not an object: {line}"));
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        let mut want = ["time", "request_id", "caller", "agent", "action", "args_digest", "decision", "reason", "duration_ms"];
        want.sort();
        let mut got = keys.clone();
        got.sort();
        assert_eq!(got, want, "the documented fields, no more: {line}");
        let time = line["time"].as_str().unwrap();
        assert!(time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "RFC 3339 UTC with ms: {line}");
        assert!(line["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "{line}");
        let decision = line["decision"].as_str().unwrap();
        *decisions
            .entry(match decision {
                "allowed" => "allowed",
                "denied" => "denied",
                "rejected" => "rejected",
                other => panic!("unknown decision {other}: {line}"),
            })
            .or_default() += 1;
        let reason = line["reason"].as_str().unwrap();
        assert!(!reason.is_empty(), "{line}");
        let digest = line["args_digest"].as_str().unwrap();
        if line["request_id"] == "-" {
            assert_eq!((line["agent"].as_str(), digest), (Some("-"), "-"), "refused before decoding: {line}");
        } else {
            assert_eq!(line["request_id"].as_str().unwrap().len(), 32, "{line}");
            assert!(digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()), "SHA-256 hex: {line}");
            assert_eq!((line["agent"].as_str(), line["action"].as_str()), (Some("echo"), Some("echo")), "{line}");
        }
        let kind = ["unknown caller", "bad signature", "expired", "replayed", "echo.policy:2", "default deny"]
            .into_iter()
            .find(|k| reason.contains(k))
            .unwrap_or_else(|| panic!("unexpected reason: {line}"));
        *reasons.entry(kind.to_string()).or_default() += 1;
    }
    eprintln!("decisions {decisions:?}, reasons {reasons:?}");
    assert_eq!(decisions, expected);
    for kind in ["unknown caller", "bad signature", "expired", "replayed"] {
        assert_eq!(reasons[kind], REQUESTS / 10, "{kind}");
    }
    assert_eq!(reasons["echo.policy:2"], REQUESTS / 10 * 4);
    assert_eq!(reasons["default deny"], REQUESTS / 10 * 2);
    // Same arguments, same digest; different arguments, different digest.
    let digests: std::collections::HashSet<&str> =
        lines.iter().filter(|l| l["decision"] == "allowed").map(|l| l["args_digest"].as_str().unwrap()).collect();
    assert_eq!(digests.len(), REQUESTS / 10 * 4);
}

// ---------------------------------------------------------------------------------------------
// 4. Huge and slow frames

/// Resident and peak resident memory of a process, in MiB, from /proc/<pid>/status.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

const RSS_LIMIT_MIB: f64 = 200.0;

#[test]
fn the_hub_survives_a_4_gib_claim_and_100_mb_sent_slowly() {
    let mut hub = Hub::start();
    let pid = hub.pid().unwrap();
    let _node = Node::start(hub.endpoint(), "alpha", "", &[]);
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let mut peer = RawPeer::connect(hub.endpoint());
    peer.hello("watcher");
    eprintln!("hub memory at start: {:?} MiB (rss, peak)", memory_mib(pid));

    // A frame header claiming 4 GiB, then a little of it.
    let mut claim = RawZmtp::connect(hub.endpoint());
    let mut bytes = RawZmtp::frame_header(4 << 30, false);
    bytes.extend_from_slice(&vec![b'x'; 64 * 1024]);
    let _ = claim.write(&bytes);
    wait_for("the hub to cut the 4 GiB claim", T, || claim.closed_by_peer());
    assert!(hub.is_running(), "the hub died on a 4 GiB claim:\n{}", hub.log());
    ping_hub(&mut peer);
    eprintln!("hub memory after the 4 GiB claim: {:?} MiB", memory_mib(pid));

    // One 100 MB frame, 1 MB at a time with pauses: the header alone is over the limit.
    let mut slow = RawZmtp::connect(hub.endpoint());
    let chunk = vec![0xc1u8; 1 << 20];
    let mut sent_mb = 0;
    let mut failed = slow.write(&RawZmtp::frame_header(100 << 20, false)).is_err();
    while !failed && sent_mb < 100 {
        failed = slow.write(&chunk).is_err();
        if !failed {
            sent_mb += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(failed || slow.closed_by_peer(), "the hub kept reading a 100 MB frame ({sent_mb} MB in)");
    eprintln!("slow 100 MB frame: the link was cut after {sent_mb} MB were written");
    assert!(hub.is_running(), "{}", hub.log());
    ping_hub(&mut peer);

    // 100 MB as 100 frames of 1 MB each (each under the limit), slowly: each is read, refused by
    // the codec and counted, and nothing accumulates.
    let dropped_before = peer.hub_stats().dropped_frames;
    let mut many = RawZmtp::connect(hub.endpoint());
    let mut frame = RawZmtp::frame_header(1 << 20, false);
    frame.extend_from_slice(&chunk);
    let mut peak: f64 = 0.0;
    for i in 0..100 {
        many.write(&frame).unwrap_or_else(|e| panic!("the hub cut a link sending 1 MB frames after {i}: {e}"));
        std::thread::sleep(Duration::from_millis(10));
        peak = peak.max(memory_mib(pid).0);
    }
    wait_for("the hub to count 100 dropped frames", T, || peer.hub_stats().dropped_frames >= dropped_before + 100);
    assert!(hub.is_running(), "{}", hub.log());
    ping_hub(&mut peer);
    let (rss, hwm) = memory_mib(pid);
    eprintln!("hub memory after 100 x 1 MB: rss {rss:.1} MiB, peak {hwm:.1} MiB (sampled peak {peak:.1} MiB)");
    assert!(rss < RSS_LIMIT_MIB && hwm < RSS_LIMIT_MIB, "hub memory: rss {rss:.1} MiB, peak {hwm:.1} MiB");
    // The node behind the hub was never disturbed.
    let out = fleet(hub.endpoint(), &["ping", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    hub.sigterm();
}

/// A hub made of a bare TCP listener, as a man in the middle or a spoofed hub address would be: it
/// does the ZMTP greeting and READY handshake as a ROUTER with whatever node attaches, reads the
/// node's link handshake (which it cannot answer without the hub's key), then writes raw bytes.
struct RawHubListener {
    listener: TcpListener,
}

impl RawHubListener {
    fn bind() -> RawHubListener {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        RawHubListener { listener }
    }

    fn endpoint(&self) -> String {
        format!("tcp://{}", self.listener.local_addr().unwrap())
    }

    /// Accepts the node's next connection, does the ZMTP handshake and reads the node's first frame.
    fn accept(&self) -> TcpStream {
        let mut stream = None;
        wait_for("the node to connect to the raw hub", T, || {
            stream = self.listener.accept().ok().map(|(s, _)| s);
            stream.is_some()
        });
        let mut s = stream.unwrap();
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0];
        greeting.extend_from_slice(b"NULL");
        greeting.resize(64, 0);
        s.write_all(&greeting).unwrap();
        let mut theirs = [0u8; 64];
        s.read_exact(&mut theirs).unwrap();
        assert_eq!(theirs[0], 0xff, "not a ZMTP greeting");
        let (flags, body) = read_frame(&mut s);
        assert!(flags & 0x04 != 0 && body.starts_with(b"\x05READY"), "expected READY from the node");
        let mut ready = b"\x05READY".to_vec();
        ready.push(b"Socket-Type".len() as u8);
        ready.extend_from_slice(b"Socket-Type");
        ready.extend_from_slice(&(b"ROUTER".len() as u32).to_be_bytes());
        ready.extend_from_slice(b"ROUTER");
        let mut command = vec![0x04, ready.len() as u8];
        command.extend_from_slice(&ready);
        s.write_all(&command).unwrap();
        // The node opens its link handshake; this "hub" has no key to answer it with.
        let (flags, body) = read_frame(&mut s);
        assert_eq!(flags & 0x04, 0, "expected a message frame");
        assert!(fleet_protocol::noise::is_handshake_1(&body), "expected the node's link handshake");
        s
    }
}

fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut flags = [0u8; 1];
    s.read_exact(&mut flags).unwrap();
    let len = if flags[0] & 0x02 != 0 {
        let mut l = [0u8; 8];
        s.read_exact(&mut l).unwrap();
        u64::from_be_bytes(l) as usize
    } else {
        let mut l = [0u8; 1];
        s.read_exact(&mut l).unwrap();
        l[0] as usize
    };
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (flags[0], body)
}

/// Writes a frame header claiming `claim` bytes and 1 MB of it, then watches the node for 2 s.
/// Returns whether it is still alive.
fn claim_and_watch(link: &mut TcpStream, node: &mut Node, claim: u64) -> bool {
    let mut bytes = RawZmtp::frame_header(claim, false);
    bytes.extend_from_slice(&vec![b'x'; 1 << 20]);
    let _ = link.write_all(&bytes);
    // Give the node time to act on the claim (reserve it, or refuse it and close the link).
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if !node.is_running() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    node.is_running()
}

#[test]
fn a_node_survives_a_hub_that_claims_huge_frames_and_sends_100_mb_slowly() {
    // Whoever the node reaches when it dials its hub (a man in the middle, a spoofed hub address)
    // can write any frame header to it before the link handshake: ZMTP framing comes first.
    let raw = RawHubListener::bind();
    // The node waits connect_timeout (5 s) for the handshake answer: long enough for 100 MB at
    // 1 MB per 10 ms, so without a guard the whole frame would reach zmq.rs.
    let mut node = NodeSpec::new(&raw.endpoint(), "victim").start();
    let pid = node.pid().unwrap();

    let mut link = raw.accept();
    eprintln!("node memory at start: {:?} MiB (rss, peak)", memory_mib(pid));
    let survived = claim_and_watch(&mut link, &mut node, 4 << 30);
    let (rss, hwm) = memory_mib(pid);
    eprintln!("node after a 4 GiB claim and 1 MB: alive {survived}, rss {rss:.1} MiB, peak {hwm:.1} MiB");
    assert!(survived, "noded died on a frame header claiming 4 GiB:\n{}", node.log());
    drop(link);

    // It comes back to the hub (it still works), and then gets 100 MB in 1 MB pieces.
    let mut link = raw.accept();
    let _ = link.write_all(&RawZmtp::frame_header(100 << 20, false));
    let chunk = vec![0xc1u8; 1 << 20];
    let mut sent_mb = 0;
    for _ in 0..100 {
        if !node.is_running() || link.write_all(&chunk).is_err() {
            break;
        }
        sent_mb += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(node.is_running(), "noded died while a 100 MB frame came in ({sent_mb} MB in):\n{}", node.log());
    // The whole frame is in: the node refuses it (over max_frame) and carries on.
    drop(link);
    let mut link = raw.accept();
    let (rss, hwm) = memory_mib(pid);
    eprintln!("node after 100 MB sent slowly ({sent_mb} MB written): rss {rss:.1} MiB, peak {hwm:.1} MiB");
    assert!(rss < RSS_LIMIT_MIB, "noded holds {rss:.1} MiB after the attack");
    assert!(hwm < RSS_LIMIT_MIB, "noded's memory peaked at {hwm:.1} MiB while a peer sent one {sent_mb} MB frame");

    // Claims beyond what the host can back: the foundation's hub test uses 32 TiB.
    for claim in [64u64 << 30, 1 << 45] {
        let survived = claim_and_watch(&mut link, &mut node, claim);
        assert!(survived, "noded died on a frame header claiming {} GiB:\n{}", claim >> 30, node.log());
        drop(link);
        link = raw.accept();
    }
}

// ---------------------------------------------------------------------------------------------
// 5. The CLI and keys

/// Runs `fleet ARGS...` with `FLEET_KEY` as given (or unset), the test hub's public key pinned
/// (`FLEET_HUB_KEY`) unless `hub_key` says otherwise, and an empty config home.
fn fleet_with_keys(key: Option<&Path>, hub_key: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(fleet_bin());
    cmd.args(args)
        .env("XDG_CONFIG_HOME", home.path())
        .env("USER", "nobody-e2e")
        .env("FLEET_HUB_KEY", hub_key)
        .env_remove("FLEET_HUB")
        .env_remove("FLEET_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    match key {
        Some(k) => cmd.env("FLEET_KEY", k),
        None => cmd.env_remove("FLEET_KEY"),
    };
    let out = cmd.output().expect("run fleet");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn fleet_with_key(key: Option<&Path>, args: &[&str]) -> (Option<i32>, String, String) {
    fleet_with_keys(key, &TestKeys::get().hub_public_key(), args)
}

#[test]
fn fleet_needs_a_private_key_that_only_its_owner_can_read() {
    let hub = Hub::start();
    let _node = Node::start(hub.endpoint(), "alpha", "", &[]);
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let ep = hub.endpoint();
    let dir = tempfile::tempdir().unwrap();

    // No key at all: FLEET_KEY names a missing file, or nothing is set and the default is missing.
    for key in [Some(dir.path().join("missing.key")), None] {
        let (code, stdout, stderr) = fleet_with_key(key.as_deref(), &["--hub", ep, "ping"]);
        assert_eq!(code, Some(4), "key {key:?}\nstdout: {stdout}\nstderr: {stderr}");
        assert!(stderr.contains("fleet keygen"), "the message says how to make a key: {stderr}");
    }

    // keygen writes NAME.key (0600) and NAME.pub.
    let keys = dir.path().join("keys");
    let (code, stdout, stderr) = fleet_with_key(None, &["keygen", "alice", "--dir", keys.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let private = keys.join("alice.key");
    let public = keys.join("alice.pub");
    assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(fleet_protocol::keys::load_public(&public).is_ok(), "alice.pub is a public key file");
    // It does not overwrite a key.
    let (code, _, stderr) = fleet_with_key(None, &["keygen", "alice", "--dir", keys.to_str().unwrap()]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("already exists"), "{stderr}");

    // A console key the hub has not enrolled gets no link: nothing is sent, and the key waits in
    // the hub's pending directory for an admin.
    let (code, stdout, stderr) = fleet_with_key(Some(&private), &["--hub", ep, "ping", "--json"]);
    assert_eq!(code, Some(4), "an unenrolled console must not ping\nstdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("enrolled"), "the message points at enrollment: {stderr}");
    let enroll_dir = enroll_dir_of(ep).expect("the harness's enrollment directory");
    assert!(enroll_dir.join("pending").join("alice.pub").exists(), "alice's link key waits for acceptance");

    // Enrolled but not a trusted caller: the link comes up, the hub refuses the request.
    enroll_console_on(ep, "alice", &public);
    let (code, stdout, stderr) = fleet_with_key(Some(&private), &["--hub", ep, "ping", "--json"]);
    assert_ne!(code, Some(0), "an untrusted caller must not ping: {stdout}");
    assert!(format!("{stdout}{stderr}").contains("unknown caller 'alice'"), "stdout: {stdout}\nstderr: {stderr}");

    // The right key but the wrong hub key pinned (a man in the middle would hold that one): no link.
    let other_hub = KeyPair::generate();
    let (_, other_hub_pub) = other_hub.save(&dir.path().join("mitm"), "hub").unwrap();
    let (code, stdout, stderr) = fleet_with_keys(Some(&TestKeys::get().private_key()), &other_hub_pub, &["--hub", ep, "ping", "--json"]);
    assert_eq!(code, Some(4), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("handshake"), "{stderr}");

    // A private key others can read is refused before anything is sent.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, stdout, stderr) = fleet_with_key(Some(&private), &["--hub", ep, "ping"]);
    assert_eq!(code, Some(4), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("0644") && stderr.contains("chmod 600"), "{stderr}");

    // noded keygen: the same rules for a node key.
    let node_key = dir.path().join("node").join("web-01.key");
    let out = Command::new(noded_bin()).args(["keygen", "--out", node_key.to_str().unwrap()]).env_remove("NODED_CONFIG").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::metadata(&node_key).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(dir.path().join("node").join("web-01.pub").exists());
}

/// `noded hub --enroll-dir DIR enroll ARGS...`; panics unless it succeeds. Returns stdout.
fn enroll(dir: &Path, args: &[&str]) -> String {
    let config = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(noded_bin())
        .env_remove("NODED_CONFIG")
        .arg("--config")
        .arg(config.path())
        .args(["hub", "--enroll-dir", dir.to_str().unwrap(), "enroll"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "noded hub enroll {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn links_need_an_enrolled_key_and_the_pinned_hub_key() {
    // A node whose key no hub has enrolled: an endpoint the harness has no enrollment for yet.
    let endpoint = loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let ep = format!("tcp://127.0.0.1:{port}");
        if enroll_dir_of(&ep).is_none() {
            break ep;
        }
    };
    let node = NodeSpec::new(&endpoint, "newcomer").start();
    let hub = Hub::start_on(&endpoint);
    let dir = enroll_dir_of(hub.endpoint()).unwrap();
    wait_for("the newcomer's key to wait in pending/", T, || dir.join("pending").join("newcomer.pub").exists());
    assert_eq!(discover(hub.endpoint(), &[]), Vec::<String>::new(), "an unenrolled node is not attached");
    let list = enroll(&dir, &["--list"]);
    assert!(list.lines().any(|l| l.starts_with("pending") && l.contains("newcomer")), "{list}");
    // Accepted by an admin, it attaches on its next try.
    enroll(&dir, &["--accept", "newcomer"]);
    wait_for_nodes(hub.endpoint(), &["newcomer"], Duration::from_secs(30));
    // The hub holds a pending key's handshake a few seconds, so a key accepted meanwhile attaches
    // on that very handshake; otherwise the node said why it waited.
    assert!(
        node.log().contains("is this node's link key enrolled") || node.log().matches("attached to hub").count() == 1,
        "the node said why it waited:\n{}",
        node.log()
    );

    // A console key that is not enrolled gets no answer to its handshake, and whatever it sends
    // outside a link is dropped before it is even decoded.
    let mut watcher = RawPeer::connect(hub.endpoint());
    let dropped = watcher.hub_stats().dropped_frames;
    let mallory = Caller::new("mallory");
    let mut outsider =
        SealedPeer::connect(hub.endpoint(), &mallory.key, "mallory", &TestKeys::get().hub.public().link, Duration::from_secs(2));
    assert!(outsider.session.is_none(), "an unenrolled console got a link");
    let req = request("rpcutil", "ping", Map::new(), &["newcomer"]);
    outsider.raw.send_raw_frame(signed_frame(&req));
    wait_for("the hub to drop the handshake and the frame", T, || watcher.hub_stats().dropped_frames >= dropped + 2);
    assert!(audit_lines(node.dir()).iter().all(|l| l["request_id"] != req.id.as_str()), "the node never saw it");

    // The hub's key is pinned: a console pinning another key gets no link to the real hub...
    let keys = TestKeys::get();
    let wrong = KeyPair::generate();
    let mitm_console = SealedPeer::connect(hub.endpoint(), &keys.key, "e2e", &wrong.public().link, Duration::from_secs(2));
    assert!(mitm_console.session.is_none(), "a handshake pinned to another hub key completed");
    // ...and a hub that does not hold the pinned key (a man in the middle) gets no node, even one
    // it enrolled.
    let mitm_dir = tempfile::tempdir().unwrap();
    wrong.save(mitm_dir.path(), "mitm").unwrap();
    let mitm_key = mitm_dir.path().join("mitm.key");
    let mitm = Hub::start_with("", &["--hub", "tcp://127.0.0.1:0", "--hub-key-file", mitm_key.to_str().unwrap()]);
    let fooled = NodeSpec::new(mitm.endpoint(), "pinned").start();
    wait_for("the man in the middle to fail the node's handshake", T, || mitm.log().contains("handshake refused"));
    wait_for("the node to give up on the handshake", T, || fooled.log().contains("link handshake"));
    assert!(!mitm.log().contains("node joined"), "the node never attached to the impostor:\n{}", mitm.log());
}
