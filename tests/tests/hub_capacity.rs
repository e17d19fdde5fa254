//! A full hub refuses new node links with a clear log line, and still admits consoles: on real
//! `noded hub` and `noded` processes, with `hub.max_node_links` standing in for an open-files
//! limit (the default capacity comes from that limit, raised to its hard value at start).

use std::time::Duration;

use fleet_e2e::support::{Hub, NodeSpec, hub_stats, ping, wait_for, wait_for_nodes};

const T: Duration = Duration::from_secs(20);

#[test]
fn a_full_hub_refuses_new_nodes_and_still_admits_consoles() {
    let hub = Hub::start_with("[hub]\nmax_node_links = 2\n", &["--hub", "tcp://127.0.0.1:0"]);
    assert!(hub.log().contains("node links"), "the hub says what its capacity is:\n{}", hub.log());
    let _a = NodeSpec::new(hub.endpoint(), "web-1").start();
    let _b = NodeSpec::new(hub.endpoint(), "web-2").start();
    wait_for_nodes(hub.endpoint(), &["web-1", "web-2"], T);
    let _c = NodeSpec::new(hub.endpoint(), "web-3").start();
    wait_for("the hub to say it is full", T, || hub.log().contains("the hub is full"));
    assert!(hub.log().contains("node=web-3"), "{}", hub.log());
    // A console gets in, and the two nodes that fit answer it.
    let (names, out) = ping(hub.endpoint(), &[]);
    assert_eq!(names, ["web-1", "web-2"], "{}", out.stderr);
    assert_eq!(hub_stats(hub.endpoint()).nodes, 2);
}

#[test]
fn the_hub_reports_the_capacity_its_open_files_limit_gives() {
    let hub = Hub::start();
    let log = hub.log();
    let line = log.lines().find(|l| l.contains("node links")).unwrap_or_else(|| panic!("no capacity line:\n{log}"));
    // One descriptor per link: this machine's hard limit (20,000 descriptors) carries
    // 20,000 - 64 - 64 links (64 kept for the hub itself, 64 links' worth for consoles).
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum.unwrap_or(u64::MAX);
    if limit < u64::MAX {
        let expected = (limit - 64).saturating_sub(64);
        assert!(line.contains(&format!("carries {expected} node links")), "{line}");
    }
}
