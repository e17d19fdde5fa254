//! Live metrics through the hub, end to end: three real noded push a sample every second, a raw
//! console subscribes to two of them and to the load series only, and gets exactly that; a
//! subscription with history gets the hub's stored samples at once; the hub's stats count what it
//! keeps; and each role may send only its own half (nodes samples, consoles subscriptions).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use fleet_e2e::support::{Hub, NodeSpec, RawPeer, enroll_as, wait_for, wait_for_nodes};
use fleet_protocol::keys::KeyPair;
use fleet_protocol::{Message, MetricSample, MetricSubscribe, MetricUpdate};

const T: Duration = Duration::from_secs(20);
const NODES: [&str; 3] = ["web-01", "web-02", "web-03"];

fn start_nodes(hub: &Hub) -> Vec<fleet_e2e::support::Node> {
    let nodes = NODES.iter().map(|n| NodeSpec::new(hub.endpoint(), n).config("[metrics]\ninterval = 1.0\n").start()).collect();
    wait_for_nodes(hub.endpoint(), &NODES, T);
    nodes
}

/// Every MetricUpdate that arrives within `how_long`.
fn updates_for(console: &mut RawPeer, how_long: Duration) -> Vec<MetricUpdate> {
    let end = Instant::now() + how_long;
    let mut seen = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match console.recv(left) {
            Some(Message::MetricUpdate(u)) => seen.push(u),
            Some(_) => {}
            None => break,
        }
    }
    seen
}

#[test]
fn a_console_gets_samples_only_for_the_nodes_and_series_it_asked() {
    let hub = Hub::start();
    let _nodes = start_nodes(&hub);
    let mut console = RawPeer::connect(hub.endpoint());
    console.hello("watcher");
    console.send(&Message::MetricSubscribe(MetricSubscribe {
        nodes: vec!["web-01".into(), "web-03".into()],
        series: vec!["load*".into()],
        ..Default::default()
    }));
    // Nodes sample every second: four seconds bring several updates of each node asked for.
    let updates = updates_for(&mut console, Duration::from_secs(4));
    let from: BTreeSet<&str> = updates.iter().map(|u| u.node.as_str()).collect();
    assert_eq!(from, BTreeSet::from(["web-01", "web-03"]), "updates came from {from:?}");
    for u in &updates {
        assert_eq!(u.times.len(), 1, "a live update is one sample: {u:?}");
        let series: Vec<&String> = u.series.keys().collect();
        assert_eq!(series, ["load1", "load15", "load5"], "only the load series: {u:?}");
        assert!(u.series["load1"][0].is_some_and(|v| v >= 0.0), "{u:?}");
    }

    // A new subscription replaces the old one; with history, the stored samples come at once.
    console.send(&Message::MetricSubscribe(MetricSubscribe {
        nodes: vec!["web-02".into()],
        series: vec!["mem_*".into()],
        history: true,
        ..Default::default()
    }));
    let history = match console.recv_matching(T, "web-02's history", |m| matches!(m, Message::MetricUpdate(_))) {
        Message::MetricUpdate(u) => u,
        _ => unreachable!(),
    };
    assert_eq!(history.node, "web-02");
    assert!(history.times.len() >= 3, "web-02 has sampled for over four seconds: {history:?}");
    assert!(history.times.windows(2).all(|w| w[0] < w[1]), "{:?}", history.times);
    assert!(history.series.keys().all(|k| k.starts_with("mem_")) && history.series.contains_key("mem_used_pct"), "{history:?}");
    assert!(history.series.values().all(|c| c.len() == history.times.len()));
    let later = updates_for(&mut console, Duration::from_secs(3));
    assert!(!later.is_empty() && later.iter().all(|u| u.node == "web-02"), "{later:?}");

    // Ending the subscription ends the stream.
    console.send(&Message::MetricSubscribe(MetricSubscribe::default()));
    updates_for(&mut console, Duration::from_millis(500));
    assert!(updates_for(&mut console, Duration::from_secs(2)).is_empty(), "updates after the subscription ended");

    let stats = console.hub_stats();
    assert_eq!(stats.metric_nodes, 3, "{stats:?}");
    assert!(stats.metric_samples >= 9 && stats.metric_bytes > 0, "{stats:?}");
}

#[test]
fn only_node_links_send_samples_and_only_console_links_subscribe() {
    let hub = Hub::start();
    let dir = tempfile::tempdir().unwrap();
    let link = |name: &str, role: &str| {
        let key = KeyPair::generate();
        let (_, public) = key.save(dir.path(), name).unwrap();
        enroll_as(hub.endpoint(), name, &public, role);
        RawPeer::connect_as(hub.endpoint(), &key, name)
    };
    let error = |peer: &mut RawPeer| match peer.recv_matching(T, "an Error notice", |m| matches!(m, Message::Error(_))) {
        Message::Error(e) => e.message,
        _ => unreachable!(),
    };
    let mut console = link("forger", "console");
    console.send(&Message::MetricSample(MetricSample { time_ms: 1, names: vec!["load1".into()], values: vec![99.0] }));
    let e = error(&mut console);
    assert!(e.contains("console link ('forger') may not send MetricSample"), "{e}");

    let mut node = link("nosy", "node");
    node.send(&Message::MetricSubscribe(MetricSubscribe { all_nodes: true, ..Default::default() }));
    let e = error(&mut node);
    assert!(e.contains("node link ('nosy') may not send MetricSubscribe"), "{e}");

    // A node link that never registered cannot fill the store either.
    node.send(&Message::MetricSample(MetricSample { time_ms: 1, names: vec!["load1".into()], values: vec![99.0] }));
    let mut watcher = RawPeer::connect(hub.endpoint());
    wait_for("the unregistered sample counted as dropped", T, || {
        let s = watcher.hub_stats();
        s.metric_nodes == 0 && s.dropped_frames >= 3
    });
}

/// `fleet metrics --follow` prints the hub's stream as it comes: here one node's load, with the
/// history the hub holds first.
#[test]
fn fleet_metrics_follow_prints_the_hubs_stream() {
    let hub = Hub::start();
    let _nodes = start_nodes(&hub);
    // The hub holds a few samples of each node, so --history has something to send first.
    wait_for("the hub to hold two samples a node", T, || fleet_e2e::support::hub_stats(hub.endpoint()).metric_samples >= 6);
    let follow = fleet_e2e::support::FleetStream::start(&[
        "--hub",
        hub.endpoint(),
        "metrics",
        "--follow",
        "--history",
        "-I",
        "web-02",
        "-m",
        "load1",
        "--jsonl",
    ]);
    let mut updates: Vec<MetricUpdate> = Vec::new();
    let deadline = Instant::now() + T;
    while updates.len() < 3 && Instant::now() < deadline {
        if let Ok(line) = follow.lines.recv_timeout(Duration::from_millis(200)) {
            updates.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
        }
    }
    drop(follow);
    assert!(updates.len() >= 3, "the stream went on: {updates:?}");
    assert!(updates.iter().all(|u| u.node == "web-02" && u.series.keys().eq(["load1"])), "{updates:?}");
    assert!(updates[0].times.len() >= 2, "the history came first, several samples at once: {:?}", updates[0]);
}
