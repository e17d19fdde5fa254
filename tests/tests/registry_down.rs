//! A node that dies is never silently forgotten, end to end on real `noded hub` and `noded`
//! processes: after a SIGKILL the hub's discovery lists it under `down` (matched on its last
//! facts) with the time it went down, a request naming it comes back with it under `unknown`, a
//! node that comes back leaves `down`, `noded hub forget NODE` removes one for good from the
//! running hub, and `hub.keep_down_for` bounds how long one is kept.
//!
//! Nothing sleeps to synchronise: every wait is for a message or a count, under a deadline.

use std::process::Command;
use std::time::Duration;

use fleet_e2e::support::{Hub, NodeSpec, RawPeer, enroll_dir_of, noded_bin, request, signed_frame, wait_for, wait_for_nodes};
use fleet_protocol::{Discover, Discovered, Filter, Message};
use serde_json::Map;

const T: Duration = Duration::from_secs(20);

fn discover(peer: &mut RawPeer, filter: Filter) -> Discovered {
    peer.send(&Message::Discover(Discover { filter, collective: Some("fleet".into()) }));
    match peer.recv_matching(T, "Discovered", |m| matches!(m, Message::Discovered(_))) {
        Message::Discovered(d) => d,
        _ => unreachable!(),
    }
}

fn fact(f: &str) -> Filter {
    Filter { fact: vec![f.to_string()], ..Filter::default() }
}

fn down_names(d: &Discovered) -> Vec<&str> {
    d.down.iter().map(|n| n.identity.as_str()).collect()
}

#[test]
fn a_killed_node_is_listed_as_down_until_it_comes_back_or_is_forgotten() {
    let hub = Hub::start();
    let _web = NodeSpec::new(hub.endpoint(), "web-1").facts("role: web\n").start();
    let mut db = NodeSpec::new(hub.endpoint(), "db-1").facts("role: db\n").start();
    wait_for_nodes(hub.endpoint(), &["db-1", "web-1"], T);
    let mut console = RawPeer::connect(hub.endpoint());
    console.hello("console");

    let before = fleet_protocol::now_ms();
    db.sigkill();
    let mut d = discover(&mut console, Filter::default());
    wait_for("db-1 to be listed as down", T, || {
        d = discover(&mut console, Filter::default());
        down_names(&d) == ["db-1"]
    });
    let after = fleet_protocol::now_ms();
    assert_eq!(d.nodes, ["web-1"], "{d:?}");
    let since = d.down[0].since_ms;
    assert!((before..=after).contains(&since), "down since {since}, killed between {before} and {after}");
    eprintln!("db-1 listed as down {} ms after the SIGKILL", since - before);

    // Matched on its last known facts.
    assert_eq!(down_names(&discover(&mut console, fact("role=db"))), ["db-1"]);
    let web_only = discover(&mut console, fact("role=web"));
    assert_eq!((web_only.nodes.as_slice(), down_names(&web_only).len()), (["web-1".to_string()].as_slice(), 0), "{web_only:?}");

    // A request naming it says so at once.
    let ping = request("rpcutil", "ping", Map::new(), &["web-1", "db-1"]);
    console.send_frame(signed_frame(&ping));
    match console.recv_matching(T, "Dispatched", |m| matches!(m, Message::Dispatched(x) if x.request_id == ping.id)) {
        Message::Dispatched(x) => assert_eq!((x.sent, x.unknown), (vec!["web-1".to_string()], vec!["db-1".to_string()])),
        _ => unreachable!(),
    }

    // It comes back: no longer down.
    db.restart();
    wait_for("db-1 to be back", T, || {
        let d = discover(&mut console, Filter::default());
        d.nodes == ["db-1", "web-1"] && d.down.is_empty()
    });

    // Killed again, then decommissioned: `noded hub forget` reaches the running hub.
    db.sigkill();
    wait_for("db-1 to be down again", T, || down_names(&discover(&mut console, Filter::default())) == ["db-1"]);
    let dir = enroll_dir_of(hub.endpoint()).unwrap();
    let out = Command::new(noded_bin())
        .env_remove("NODED_CONFIG")
        .args(["--config", "/dev/null", "hub", "--enroll-dir", dir.to_str().unwrap(), "forget", "db-1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("the hub forgot db-1"), "{out:?}");
    let d = discover(&mut console, Filter::default());
    assert_eq!((d.nodes.as_slice(), d.down.len()), (["web-1".to_string()].as_slice(), 0), "{d:?}");
    assert!(hub.log().contains("down node forgotten"), "{}", hub.log());
}

#[test]
fn down_nodes_are_kept_for_keep_down_for() {
    let hub = Hub::start_with("[hub]\nkeep_down_for = 1.0\n", &["--hub", "tcp://127.0.0.1:0"]);
    let mut node = NodeSpec::new(hub.endpoint(), "brief").start();
    wait_for_nodes(hub.endpoint(), &["brief"], T);
    let mut console = RawPeer::connect(hub.endpoint());
    console.hello("console");
    node.sigkill();
    wait_for("brief to be listed as down", T, || down_names(&discover(&mut console, Filter::default())) == ["brief"]);
    let gone = wait_for("brief to be dropped after keep_down_for", T, || discover(&mut console, Filter::default()).down.is_empty());
    eprintln!("dropped {:.2} s after it was first seen down (keep_down_for = 1 s)", gone.as_secs_f64());
    assert_eq!(console.hub_stats().down_nodes, 0);
}
