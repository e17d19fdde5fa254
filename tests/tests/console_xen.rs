//! End to end: the console's Xen panel in a real pseudo-terminal, against a real hub and two real
//! `noded` dom0s whose xen agent runs the xl stand-in (`tests/support/xl-standin`) over one shared
//! state directory. The admin switches to the Xen panel (`4`), finds a domU (`/`), migrates it
//! (`m`, picks the other dom0, confirms with `y`), and the domU runs on the other dom0: in the
//! stand-in's `xl list`, in `fleet xen find`, and on the panel.
//!
//! Nothing sleeps to synchronise: every wait looks at the screen or the state under a deadline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fleet_e2e::pty::{PtySession, hub_console, keys};
use fleet_e2e::support::{Hub, Node, fleet, standin, wait_for, wait_for_nodes};
use tempfile::TempDir;

const XEN_A: &str = "xen-a";
const XEN_B: &str = "xen-b";
/// The migration address of xen-b, as xen-a's `xen_host_map` knows it (no DNS for it).
const XEN_B_ADDRESS: &str = "10.77.0.2";
const STARTUP: Duration = Duration::from_secs(20);
/// Time for the panel's first answers (it asks every 5 s) and for a migration to show.
const SCREEN: Duration = Duration::from_secs(30);

/// A hub and two dom0 nodes on the stand-in, sharing `state` (as in `tests/xen.rs`).
struct Dom0s {
    hub: Hub,
    state: TempDir,
    _nodes: Vec<Node>,
}

impl Dom0s {
    fn start() -> Dom0s {
        let state = tempfile::Builder::new().prefix("fleet-xl-standin-").tempdir().expect("tempdir");
        standin::run(state.path(), &["seed", "--host", XEN_A, "--load", "0.3", "--domu", "web1:1024:2:120.5", "--domu", "web2:2048:2:30"]);
        standin::run(
            state.path(),
            &["seed", "--host", XEN_B, "--address", XEN_B_ADDRESS, "--load", "0.2", "--domu", "db1:4096:4:900:0:--p---"],
        );
        let hub = Hub::start();
        let node = |name: &str, config: &str| standin::node_spec(hub.endpoint(), name, state.path()).config(config).start();
        let nodes = vec![node(XEN_A, &format!("[xen_host_map]\n{XEN_B} = \"{XEN_B_ADDRESS}\"\n")), node(XEN_B, "")];
        wait_for_nodes(hub.endpoint(), &[XEN_A, XEN_B], STARTUP);
        Dom0s { hub, state, _nodes: nodes }
    }

    fn state(&self) -> &Path {
        self.state.path()
    }
}

/// The real console in a 30x110 terminal (see [`hub_console`]).
fn console(hub: &str, home: &Path) -> PtySession {
    hub_console(hub, home, 30, 110)
}

/// Prints the console's log when the test fails, next to the hub's and nodes' logs.
struct ShowLogOnPanic(PathBuf);

impl Drop for ShowLogOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.0).unwrap_or_else(|e| format!("(cannot read {}: {e})", self.0.display()));
            eprintln!("---- console log {} ----\n{log}", self.0.display());
        }
    }
}

/// The row of the screen that contains `text`.
fn line_with<'a>(screen: &'a str, text: &str) -> &'a str {
    screen.lines().find(|l| l.contains(text)).unwrap_or_else(|| panic!("no line with {text:?}:\n{screen}"))
}

/// The panel's row under the cursor for `name` (a dom0 or a domU).
fn cursor_row<'a>(screen: &'a str, name: &str) -> &'a str {
    line_with(screen, &format!("│> {name} "))
}

/// Types `/NAME` and enter, and waits until the find line is gone and `NAME`'s dom0 is shown.
fn find(console: &mut PtySession, name: &str, dom0: &str) -> String {
    console.send(&format!("/{name}")).unwrap();
    console.wait_for_text(&format!("find domU: {name}_"), SCREEN).unwrap();
    console.send(keys::ENTER).unwrap();
    let shown = format!("domUs on {dom0}");
    console.wait_for(&format!("{name} found on {dom0}"), SCREEN, |s| !s.contains("find domU:") && s.contains(&shown)).unwrap()
}

#[test]
fn the_xen_panel_migrates_a_domu_after_confirmation() {
    let dom0s = Dom0s::start();
    let home = tempfile::tempdir().unwrap();
    let _log = ShowLogOnPanic(home.path().join("state/fleet/console.log"));
    let mut console = console(dom0s.hub.endpoint(), home.path());

    // The Discovery panel's first round, then the Xen panel: both dom0s, the simulated hypervisor.
    console.wait_for_all(&[XEN_A, XEN_B], SCREEN).unwrap();
    console.send("4").unwrap();
    let screen = console.wait_for_all(&["simulated hypervisor", "domUs on xen-a", "web1", "web2"], SCREEN).unwrap();
    assert!(cursor_row(&screen, XEN_A).contains("0.30"), "xen-a's load:\n{screen}");
    assert_eq!(domus(&screen, "│  xen-b "), "1", "xen-b has one domU, no policy limit (a plain count):\n{screen}");

    // `/` finds db1 on the other dom0 and jumps there; the paused flag shows.
    let screen = find(&mut console, "db1", XEN_B);
    assert!(cursor_row(&screen, "db1").contains("paused"), "{screen}");

    // Back to web1, then `m`: where to? The other dom0, xen-b.
    let screen = find(&mut console, "web1", XEN_A);
    assert!(cursor_row(&screen, "web1").contains("1024 MiB"), "{screen}");
    console.send("m").unwrap();
    let screen = console.wait_for_text("Migrate web1 from xen-a to", SCREEN).unwrap();
    assert!(line_with(&screen, "│ > xen-b ").contains("load 0.2"), "{screen}");
    assert_eq!(standin::xl_list(dom0s.state(), XEN_A), ["web1", "web2"], "nothing moves before the confirmation");

    // enter: the confirmation says exactly what moves where; y does it.
    console.send(keys::ENTER).unwrap();
    let screen = console.wait_for_text("Migrate web1 to xen-b?", SCREEN).unwrap();
    assert!(screen.contains("Live-migrate domU web1 (1024 MiB, 2 vCPU(s)"), "{screen}");
    assert!(screen.contains("from  xen-a") && screen.contains("to    xen-b"), "{screen}");
    assert_eq!(standin::xl_list(dom0s.state(), XEN_A), ["web1", "web2"], "nothing moves before y");
    console.send("y").unwrap();

    // The domU now runs on xen-b: in the stand-in's state, for `fleet xen find`, and on screen,
    // where the cursor followed it and the history has the migration.
    wait_for("web1 on xen-b in the stand-in's xl list", SCREEN, || standin::xl_list(dom0s.state(), XEN_B) == ["db1", "web1"]);
    assert_eq!(standin::xl_list(dom0s.state(), XEN_A), ["web2"]);
    let out = fleet(dom0s.hub.endpoint(), &["xen", "find", "web1", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.json()["found_on"], serde_json::json!([XEN_B]), "{out}");
    // A refresh sent before the migration ended may answer first; the panel asks again after it.
    let screen = console
        .wait_for("web1 under the cursor on xen-b", SCREEN, |s| {
            s.contains("domUs on xen-b") && s.contains("web1  xen-a -> xen-b  ok in") && s.contains("│> web1 ")
        })
        .unwrap();
    assert!(cursor_row(&screen, "web1").contains("1024 MiB"), "the cursor follows web1 to xen-b:\n{screen}");
    assert_eq!(domus(&screen, "│  xen-a "), "1", "xen-a has one domU left:\n{screen}");

    console.send(keys::QUIT).unwrap();
    let status = console.wait_exit(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "the console exited with {status:?}");
}

#[test]
fn read_only_refuses_to_migrate() {
    let dom0s = Dom0s::start();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("config/fleet")).unwrap();
    std::fs::write(home.path().join("config/fleet/config.toml"), "read_only = true\n").unwrap();
    let _log = ShowLogOnPanic(home.path().join("state/fleet/console.log"));
    let mut console = console(dom0s.hub.endpoint(), home.path());
    console.wait_for_all(&[XEN_A, XEN_B], SCREEN).unwrap();
    console.send("4").unwrap();
    console.wait_for_all(&["domUs on xen-a", "web1", "read-only"], SCREEN).unwrap();
    console.send("m").unwrap();
    console.wait_for_text("read-only: migrating is disabled", SCREEN).unwrap();
    assert_eq!(standin::xl_list(dom0s.state(), XEN_A), ["web1", "web2"]);
    console.send(keys::CTRL_C).unwrap();
    assert!(console.wait_exit(Duration::from_secs(10)).unwrap().success());
}

/// The DOMUS cell (the last column) of the dom0 row starting with `prefix`.
fn domus(screen: &str, prefix: &str) -> String {
    line_with(screen, prefix).trim_end_matches(|c: char| c == '│' || c.is_whitespace()).rsplit(' ').next().unwrap_or("").to_string()
}
