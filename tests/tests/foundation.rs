//! The foundation end to end: a real hub and real nodes, driven through the `fleet` CLI and a raw
//! ZeroMQ peer. Discovery filters, a node dying and coming back, the hub dying under its nodes,
//! hostile frames, unknown agents and actions, bad config files, and a graceful SIGTERM.
//!
//! Each test runs its own hub on an ephemeral loopback port. Nothing sleeps to synchronise: every
//! wait polls for the state it needs, under a deadline generous enough for a loaded CI machine.

use std::time::{Duration, Instant};

use fleet_e2e::support::{self, Hub, Node, RawPeer, RawZmtp, discover, fleet, hub_stats, ping, wait_for, wait_for_nodes};
use fleet_protocol::codec::{CodecError, DEFAULT_MAX_FRAME, Limits, decode_message, encode_message};
use fleet_protocol::{Envelope, Kind, Message, Reply, Status};
use serde_json::{Map, Value, json};

const UK: &str = "node-uk-web";
const US: &str = "node-us-db";
const DE: &str = "node-de-web";
const ALL: [&str; 3] = [DE, UK, US];

/// Long enough for three processes to start and register on a busy 2-core machine.
const STARTUP: Duration = Duration::from_secs(20);

/// Three nodes that differ in every way the filters can tell apart. `os.family` is set on all of
/// them so the host's own built-in `os.family` cannot leak into the results.
fn start_three(hub: &Hub) -> Vec<Node> {
    let ep = hub.endpoint();
    let nodes = vec![
        Node::start(ep, UK, "country: uk\nrole: web\nrack: 3\nos:\n  family: Debian\n", &["base", "apache", "dev_server"]),
        Node::start(ep, US, "country: us\nrole: db\nrack: 7\nos:\n  family: RedHat\n", &["base", "postgresql"]),
        Node::start(ep, DE, "country: de\nrole: web\nrack: 12\nos:\n  family: Archlinux\n", &["base", "apache"]),
    ];
    let took = wait_for_nodes(ep, &ALL, STARTUP);
    eprintln!("3 nodes registered {:.2} s after spawning", took.as_secs_f64());
    nodes
}

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn strings(v: &Value) -> Vec<String> {
    let list = v.as_array().unwrap_or_else(|| panic!("expected a JSON array of names, got {v}"));
    let mut out: Vec<String> = list.iter().map(|s| s.as_str().unwrap_or_default().to_string()).collect();
    out.sort();
    out
}

#[test]
fn ping_and_every_filter_kind_select_exactly_the_right_nodes() {
    let hub = Hub::start();
    let _nodes = start_three(&hub);
    let ep = hub.endpoint();

    let (senders, out) = ping(ep, &[]);
    assert_eq!(senders, names(&ALL), "{out}");
    let doc = out.json();
    assert_eq!(doc["summary"]["exit_code"], 0, "{out}");
    assert_eq!(out.code, Some(0), "{out}");
    for r in doc["replies"].as_array().unwrap() {
        assert_eq!(r["status"], "Ok", "{out}");
    }

    let cases: &[(&[&str], &[&str])] = &[
        (&["-F", "country=uk"], &[UK]),
        (&["-F", "country=/uk|us/"], &[UK, US]),
        // Numeric, not string, comparison: "12" > "5" only as numbers.
        (&["-F", "rack>5"], &[US, DE]),
        (&["-F", "rack<=3"], &[UK]),
        (&["-F", "os.family=Debian"], &[UK]),
        (&["-C", "apache"], &[UK, DE]),
        (&["-C", "/dev_/"], &[UK]),
        (&["-I", US], &[US]),
        (&["-I", "/web/"], &[UK, DE]),
        (&["-A", "rpcutil"], &[UK, US, DE]),
        (&["-S", "(country=uk or country=us) and not class=/dev/"], &[US]),
        (&["-S", "role=web and rack>=10"], &[DE]),
    ];
    for (filter, expected) in cases {
        let expected = names(expected);
        assert_eq!(discover(ep, filter), expected, "fleet discover {filter:?}");
        let (senders, out) = ping(ep, filter);
        assert_eq!(senders, expected, "fleet ping {filter:?}: {out}");
        assert_eq!(out.code, Some(0), "fleet ping {filter:?}: {out}");
        assert_eq!(strings(&out.json()["discovered"]), expected, "fleet ping {filter:?}: {out}");
    }

    // A filter that cannot parse is refused before anything is sent, pointing at the column.
    for cmd in ["discover", "ping"] {
        let out = fleet(ep, &[cmd, "--json", "-S", "country=uk and and role=web"]);
        assert_eq!(out.code, Some(4), "fleet {cmd} with a bad filter: {out}");
        assert!(out.stderr.contains("invalid filter -S at column 16"), "fleet {cmd}: {out}");
        assert!(out.stderr.contains("country=uk and and role=web"), "fleet {cmd}: {out}");
    }
    let out = fleet(ep, &["ping", "-F", "country=/uk"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stderr.contains("invalid filter -F at column 9"), "{out}");
}

#[test]
fn a_killed_node_is_named_under_no_reply_and_comes_back_after_restart() {
    let hub = Hub::start();
    let mut nodes = start_three(&hub);
    let ep = hub.endpoint();
    let all_by_identity = ["-I", UK, "-I", US, "-I", DE, "--timeout", "2"];

    let (senders, out) = ping(ep, &all_by_identity);
    assert_eq!(senders, names(&ALL), "{out}");

    let killed = nodes.iter_mut().find(|n| n.identity() == US).unwrap();
    killed.sigkill();
    let (senders, out) = ping(ep, &all_by_identity);
    assert_eq!(senders, names(&[UK, DE]), "{out}");
    let doc = out.json();
    // Named under no_reply, or under down once the hub has seen its link close.
    let mut missing = strings(&doc["no_reply"]);
    missing.extend(doc["down"].as_array().into_iter().flatten().filter_map(|d| d["identity"].as_str().map(str::to_string)));
    assert_eq!(missing, names(&[US]), "{out}");
    assert_eq!(doc["summary"]["exit_code"], 2, "{out}");
    assert_eq!(out.code, Some(2), "some replied, one did not: {out}");
    // The hub sees the link close and drops the node from its registry.
    wait_for("the hub to forget the killed node", Duration::from_secs(10), || discover(ep, &[]) == names(&[UK, DE]));

    let restarted = Instant::now();
    killed.restart();
    let took = wait_for("the restarted node to be discovered and answer", Duration::from_secs(10), || {
        discover(ep, &[]) == names(&ALL) && fleet(ep, &["ping", "-I", US, "--json", "--timeout", "2"]).code == Some(0)
    });
    eprintln!(
        "restarted {US} discoverable and answering {:.2} s after spawn (poll loop {:.2} s; heartbeat 0.5 s)",
        restarted.elapsed().as_secs_f64(),
        took.as_secs_f64()
    );
    let (senders, out) = ping(ep, &all_by_identity);
    assert_eq!(senders, names(&ALL), "{out}");
    assert_eq!(out.code, Some(0), "{out}");
}

#[test]
fn nodes_re_register_with_a_hub_restarted_on_the_same_endpoint() {
    let mut hub = Hub::start();
    let mut nodes = start_three(&hub);
    let endpoint = hub.endpoint().to_string();

    hub.sigkill();
    let killed = Instant::now();
    let hub = Hub::start_on(&endpoint);
    assert_eq!(hub.endpoint(), endpoint);
    let took = wait_for_nodes(&endpoint, &ALL, Duration::from_secs(20));
    eprintln!(
        "3 nodes re-registered {:.2} s after the hub was killed ({:.2} s after the new hub listened)",
        killed.elapsed().as_secs_f64(),
        took.as_secs_f64()
    );
    for n in &mut nodes {
        assert!(n.is_running(), "{} was not supposed to exit", n.identity());
    }
    let (senders, out) = ping(&endpoint, &[]);
    assert_eq!(senders, names(&ALL), "{out}");
    assert_eq!(out.code, Some(0), "{out}");
}

/// Deterministic noise (xorshift), so a failure reproduces.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn bad_frames_are_dropped_and_counted_and_the_hub_keeps_serving() {
    let hub = Hub::start();
    let _nodes = start_three(&hub);
    let ep = hub.endpoint();
    let before = hub_stats(ep).dropped_frames;

    let valid = encode_message(&Message::Request(Box::new(support::request("rpcutil", "ping", Map::new(), &[UK])))).unwrap();
    let mut bad_frames: Vec<(&str, Vec<u8>)> = Vec::new();
    for (i, len) in [1usize, 7, 64, 300, 4096].into_iter().enumerate() {
        bad_frames.push(("random bytes", noise(0x9e37_79b9_7f4a_7c15 + i as u64, len)));
    }
    for cut in [1, valid.len() / 2, valid.len() - 1] {
        bad_frames.push(("truncated msgpack", valid[..cut].to_vec()));
    }
    bad_frames.push(("empty frame", Vec::new()));
    // msgpack str32 header claiming 4 GiB, then nothing.
    bad_frames.push(("claimed huge length", vec![0xdb, 0xff, 0xff, 0xff, 0xff]));
    let mut wrong_version = Envelope::seal(&Message::Ping).unwrap();
    wrong_version.version = 99;
    bad_frames.push(("unknown protocol version", wrong_version.to_frame().unwrap()));
    let mut lying_kind = Envelope::seal(&Message::Hello(fleet_protocol::Hello { name: "x".into(), subscribe: false })).unwrap();
    lying_kind.kind = Kind::Request;
    bad_frames.push(("body does not match its kind", lying_kind.to_frame().unwrap()));
    // Well-formed, but not something a console or node may send to the hub.
    bad_frames.push(("hub-to-console kind", encode_message(&Message::Pong).unwrap()));
    let forged = Reply {
        request_id: "0".repeat(32),
        sender: UK.into(),
        status: Status::Ok,
        status_msg: "OK".into(),
        data: Value::Null,
        elapsed_us: 0,
    };
    bad_frames.push(("reply from a peer that is no node", encode_message(&Message::Reply(Box::new(forged))).unwrap()));
    // A real request padded past the hub's 16 MiB limit: refused by size before decoding.
    let mut big_args = Map::new();
    big_args.insert("pad".into(), json!("x".repeat(17 * 1024 * 1024)));
    let oversized = encode_message(&Message::Request(Box::new(support::request("rpcutil", "ping", big_args, &[UK])))).unwrap();
    assert!(matches!(decode_message(&oversized, &Limits::default()), Err(CodecError::FrameTooBig { .. })));
    assert!(oversized.len() > DEFAULT_MAX_FRAME);
    bad_frames.push(("17 MiB frame", oversized));

    // Each one must really be undecodable or unacceptable, or the count below would be wrong.
    for (what, frame) in &bad_frames {
        let decoded = decode_message(frame, &Limits::default());
        let acceptable = matches!(&decoded, Ok(Message::Pong | Message::Reply(_)));
        assert!(decoded.is_err() || acceptable, "{what} decodes as {decoded:?}");
    }

    let mut raw = RawPeer::connect(ep);
    for (_, frame) in &bad_frames {
        raw.send_frame(frame.clone());
    }
    // ZeroMQ messages of the wrong shape: a DEALER sends one frame, or a delimiter and one frame.
    let multi_frame: &[Vec<Vec<u8>>] = &[
        vec![b"one".to_vec(), b"two".to_vec()],
        vec![valid.clone(), valid.clone()],
        vec![Vec::new(), valid.clone(), valid.clone()],
        // The delimiter form is accepted, so its payload must decode: this one does not.
        vec![Vec::new(), noise(7, 100)],
    ];
    for frames in multi_frame {
        raw.send_frames(frames.clone());
    }
    let sent_bad = (bad_frames.len() + multi_frame.len()) as u64;

    // The hub reads one peer's frames in order, so stats asked on the same link count them all.
    let seen_by_raw = raw.hub_stats().dropped_frames;
    assert_eq!(seen_by_raw - before, sent_bad, "every bad frame is dropped and counted exactly once");
    // And the CLI reports the same counter.
    let stats = hub_stats(ep);
    assert_eq!(stats.dropped_frames - before, sent_bad, "{stats:?}");
    assert_eq!(stats.nodes, 3, "{stats:?}");

    // The raw link still works for a well-formed request after all that.
    raw.hello("e2e-raw");
    let reply = raw.request(support::request("rpcutil", "ping", Map::new(), &[UK]), Duration::from_secs(15));
    assert_eq!((reply.sender.as_str(), reply.status), (UK, Status::Ok), "{reply:?}");

    let (senders, out) = ping(ep, &[]);
    assert_eq!(senders, names(&ALL), "{out}");
    assert_eq!(out.code, Some(0), "{out}");
    assert!(hub.log().lines().all(|l| !l.contains("panicked")), "{}", hub.log());
}

#[test]
fn a_frame_header_claiming_terabytes_does_not_take_the_hub_down() {
    let mut hub = Hub::start();
    let _nodes = start_three(&hub);
    let ep = hub.endpoint().to_string();
    let before = hub_stats(&ep).dropped_frames;

    // Ten bytes on the wire claim a 32 TiB frame. The 16 MiB limit has to hold here too: the hub
    // may drop the link or count the frame, but must neither reserve the claimed size nor die.
    let mut raw = RawZmtp::connect(&ep);
    let mut bomb = RawZmtp::frame_header(1 << 45, false);
    bomb.extend_from_slice(&[b'x'; 100]);
    let _ = raw.write(&bomb);

    let mut refused = false;
    wait_for("the hub to refuse the oversized frame (close the link or count it)", Duration::from_secs(10), || {
        if !hub.is_running() {
            return true;
        }
        refused = raw.closed_by_peer() || hub_stats(&ep).dropped_frames > before;
        refused
    });
    assert!(hub.is_running(), "the hub died on a frame header claiming 32 TiB:\n{}", hub.log());
    assert!(refused);
    let (senders, out) = ping(&ep, &[]);
    assert_eq!(senders, names(&ALL), "{out}");
    assert_eq!(out.code, Some(0), "{out}");
}

#[test]
fn unknown_agents_actions_and_invalid_inputs_get_status_replies_from_the_node() {
    let hub = Hub::start();
    let _node = Node::start(hub.endpoint(), UK, "country: uk\n", &["base"]);
    wait_for_nodes(hub.endpoint(), &[UK], STARTUP);

    let mut raw = RawPeer::connect(hub.endpoint());
    raw.hello("e2e-console");
    let wait = Duration::from_secs(15);

    let r = raw.request(support::request("nosuchagent", "ping", Map::new(), &[UK]), wait);
    assert_eq!(r.sender, UK);
    assert_eq!(r.status, Status::UnknownAction, "{r:?}");
    assert!(r.status_msg.contains("nosuchagent"), "{r:?}");

    let r = raw.request(support::request("rpcutil", "nosuchaction", Map::new(), &[UK]), wait);
    assert_eq!(r.status, Status::UnknownAction, "{r:?}");
    assert!(r.status_msg.contains("rpcutil") && r.status_msg.contains("nosuchaction"), "{r:?}");

    let mut args = Map::new();
    args.insert("fact".into(), json!("bad fact"));
    let r = raw.request(support::request("rpcutil", "get_fact", args, &[UK]), wait);
    assert_eq!(r.status, Status::InvalidData, "{r:?}");
    assert!(r.status_msg.contains("input 'fact'") && r.status_msg.contains("bad fact"), "{r:?}");

    // The same action with a valid input runs.
    let mut args = Map::new();
    args.insert("fact".into(), json!("country"));
    let r = raw.request(support::request("rpcutil", "get_fact", args, &[UK]), wait);
    assert_eq!(r.status, Status::Ok, "{r:?}");
    assert_eq!(r.data, json!({ "fact": "country", "value": "uk" }));
}

#[test]
fn a_bad_hub_config_names_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.toml");
    let noded = || {
        let mut c = std::process::Command::new(support::noded_bin());
        c.env_remove("NODED_CONFIG");
        c
    };

    std::fs::write(&path, "[hub]\nbind = [\"tcp://127.0.0.1:0\"]\nmissed_heartbeatz = 3\n").unwrap();
    let out = noded().arg("hub").arg("--config").arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "config errors exit with EX_CONFIG: {err}");
    assert!(err.contains(&format!("{}:3:", path.display())), "{err}");
    assert!(err.contains("missed_heartbeatz"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"), "a hub with a bad config must not start");

    // The global flag also works after the subcommand's own flags.
    std::fs::write(&path, "identity = \"hub-1\"\nhub_bind = \"tcp://127.0.0.1:0\"\n").unwrap();
    let out = noded().arg("hub").arg("--missed-heartbeats").arg("3").arg("--config").arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains(&format!("{}:2:", path.display())) && err.contains("hub_bind"), "{err}");

    std::fs::write(&path, "[hub]\nmissed_heartbeats = 0\n").unwrap();
    let out = noded().arg("hub").arg("--config").arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains(&format!("{}: hub.missed_heartbeats: must be at least 1", path.display())), "{err}");

    // The valid counterpart starts and binds where the file says.
    let hub = Hub::start_with("[hub]\nbind = [\"tcp://127.0.0.1:0\"]\nmissed_heartbeats = 3\n", &[]);
    assert!(hub.endpoint().starts_with("tcp://127.0.0.1:") && !hub.endpoint().ends_with(":0"), "{}", hub.endpoint());
    assert_eq!(hub_stats(hub.endpoint()).nodes, 0);
}

#[test]
fn sigterm_stops_a_node_cleanly_and_the_hub_notices() {
    let hub = Hub::start();
    let mut nodes = start_three(&hub);
    let ep = hub.endpoint();

    let node = nodes.iter_mut().find(|n| n.identity() == DE).unwrap();
    let asked = Instant::now();
    node.sigterm();
    let status = node.wait(Duration::from_secs(5));
    let status = status.unwrap_or_else(|| panic!("{DE} still running 5 s after SIGTERM:\n{}", node.log()));
    eprintln!("{DE} exited {:.2} s after SIGTERM with {status}", asked.elapsed().as_secs_f64());
    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0:\n{}", node.log());
    assert!(node.log().contains("SIGTERM received"), "{}", node.log());

    let took = wait_for("the hub to drop the stopped node", Duration::from_secs(10), || discover(ep, &[]) == names(&[UK, US]));
    eprintln!("hub dropped {DE} {:.2} s after it exited", took.as_secs_f64());
    // The hub keeps it as down: ping names it and exits 2.
    let (senders, out) = ping(ep, &[]);
    assert_eq!(senders, names(&[UK, US]), "{out}");
    assert_eq!(out.json()["down"][0]["identity"], DE, "{out}");
    assert_eq!(out.code, Some(2), "{out}");
}
