//! End to end: the Metrics view (Inventory tab, `m`) in a real pseudo-terminal on `fleet demo`.
//! The demo's nodes push their samples to the embedded hub; the view subscribes when it opens,
//! gets the hub's history at once and then live samples, and shows a sparkline and the newest
//! value for every demo node; `m` switches the metric, `enter` opens Processes on a host.
//!
//! And on three real noded processes, one of them driven to a load of 99 and a busy CPU: grouped
//! by role (`:group role`), the panel shows the driven node as the worst host of its group, its
//! group first, under the profile the console's config gives web hosts.

use std::time::Duration;

use fleet_e2e::driven::DrivenFleet;
use fleet_e2e::pty::{demo_console, hub_console, keys};

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

/// The console's config: web hosts get a profile with a process count (this host's noded
/// processes, which every node counts alike).
const PROFILES: &str = r#"
[profiles.web]
graphs = ["load1", "cpu_busy_pct", "procs:^noded$"]
match = "role=web"

[profiles.other]
graphs = ["load1", "mem_used_pct"]
"#;

/// The line of `screen` that contains `text`, by index.
fn line_index(screen: &str, text: &str) -> Option<usize> {
    screen.lines().position(|l| l.contains(text))
}

#[test]
fn grouped_by_role_the_driven_node_is_the_worst_of_its_group_under_its_profile() {
    let fleet = DrivenFleet::start(WAIT);
    let hub = &fleet.hub;
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("config/fleet")).unwrap();
    std::fs::write(home.path().join("config/fleet/config.toml"), PROFILES).unwrap();

    let mut console = hub_console(hub.endpoint(), home.path(), 48, 160);
    console.wait_for_all(&["web-02", " connected ", "DISCOVERY"], WAIT).unwrap();
    console.send("3").unwrap();
    console.wait_for_text("INVENTORY", WAIT).unwrap();
    console.send("m").unwrap();
    console.wait_for_all(&["METRICS", "Metrics: load1", "3 hosts"], WAIT).unwrap();
    console.send(":group role").unwrap();
    console.send(keys::ENTER).unwrap();
    let screen = console
        .wait_for("web-02 the worst of role=web, web first, with web's profile and its process count", WAIT, |s| {
            let (Some(web), Some(db)) = (line_index(s, "role=web (2)"), line_index(s, "role=db (1)")) else { return false };
            let driven = s.lines().find(|l| l.contains("│  web-02")).unwrap_or_default();
            web < db
                && s.lines().nth(web).is_some_and(|l| l.contains("max 99.00") && l.contains("worst web-02"))
                && s.lines().nth(web + 1).is_some_and(|l| l.contains("profile web") && l.contains("procs:^noded$"))
                && driven.contains("99.00")
                && !driven.contains("no sample")
        })
        .unwrap();
    assert!(screen.contains("Metrics: load1 · profile web (auto) · last 15m · 3 hosts · by role"), "{screen}");
    let db = line_index(&screen, "role=db (1)").unwrap();
    assert!(screen.lines().nth(db + 1).is_some_and(|l| l.contains("profile other") && l.contains("mem_used_pct")), "{screen}");

    // `p` puts the web group on the next profile; `P` back on the one its match picks.
    console.send("p").unwrap();
    console.wait_for_all(&["profile other for role=web", "Metrics: load1 · profile other · last 15m"], WAIT).unwrap();
    console.send("P").unwrap();
    console.wait_for_text("Metrics: load1 · profile web (auto)", WAIT).unwrap();
    console.send("q").unwrap();
}
