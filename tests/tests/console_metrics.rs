//! End to end: the Metrics view (Inventory tab, `m`) in a real pseudo-terminal on `fleet demo`.
//! The demo's nodes push their samples to the embedded hub; the view subscribes when it opens,
//! gets the hub's history at once and then live samples, and shows a sparkline and the newest
//! value for every demo node; `m` switches the metric, `enter` opens Processes on a host.

use std::time::Duration;

use fleet_e2e::pty::{demo_console, keys};

const WAIT: Duration = Duration::from_secs(30);
const DEMO_NODES: [&str; 6] = ["web-01", "web-02", "db-01", "cache-01", "xen-01", "xen-02"];
const SPARK: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Whether every demo node's line has a sparkline bar and a value.
fn every_node_has_values(screen: &str) -> bool {
    DEMO_NODES.iter().all(|node| {
        screen.lines().any(|l| {
            let host = l.split('│').nth(1).unwrap_or_default();
            host.trim_start().starts_with(node) && !host.contains("no sample") && host.chars().any(|c| SPARK.contains(&c))
        })
    })
}

#[test]
fn the_metrics_view_shows_sparklines_and_values_for_the_demo_nodes() {
    let home = tempfile::tempdir().unwrap();
    let mut console = demo_console(home.path(), 48, 160);
    console.send("3").unwrap();
    console.wait_for_text("INVENTORY", WAIT).unwrap();
    console.send("m").unwrap();
    console.wait_for_all(&["METRICS", "Metrics: load1", "6 hosts"], WAIT).unwrap();
    let screen = console.wait_for("a sparkline and a value for every demo node", WAIT, every_node_has_values).unwrap();
    assert!(screen.contains("· load1 · last 15m"), "the chart of the selected host:\n{screen}");

    console.send("m").unwrap();
    console.wait_for_text("Metrics: cpu_busy_pct", WAIT).unwrap();
    console.wait_for("cpu values for every demo node", WAIT, every_node_has_values).unwrap();

    console.send(keys::ENTER).unwrap();
    // The footer says which host; the Processes panel lists that node only.
    let screen = console
        .wait_for("the Processes panel on the selected host", WAIT, |s| {
            DEMO_NODES.iter().any(|n| s.contains(&format!("processes on {n}")) && s.contains(&format!("on node {n}")))
        })
        .unwrap();
    assert!(screen.contains("┌ Processes"), "{screen}");
    console.send("q").unwrap();
}
