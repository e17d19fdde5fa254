//! End to end: `fleet demo` in a real pseudo-terminal at 80x24 shows the five demo nodes after
//! its first round, and `q` ends it with status 0.

use std::time::Duration;

use fleet_e2e::pty::{PtyCommand, fleet_binary, keys};

const DEMO_NODES: [&str; 5] = ["web-01", "web-02", "db-01", "cache-01", "xen-01"];

#[test]
fn demo_shows_all_nodes_and_quits_on_q() {
    // Keep the developer's config and log out of the test, and the test's log out of theirs.
    let home = tempfile::tempdir().unwrap();
    let mut console = PtyCommand::new(fleet_binary())
        .arg("demo")
        .size(24, 80)
        .env("XDG_CONFIG_HOME", home.path().join("config").display().to_string())
        .env("XDG_STATE_HOME", home.path().join("state").display().to_string())
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .cwd(home.path())
        .spawn()
        .unwrap();

    let screen = console.wait_for_all(&DEMO_NODES, Duration::from_secs(30)).unwrap();
    assert!(screen.contains("demo: embedded hub + 5 in-process nodes"), "{screen}");
    assert!(screen.contains(" connected "), "{screen}");

    console.send(keys::QUIT).unwrap();
    let status = console.wait_exit(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "fleet demo exited with {status:?}");
    assert!(home.path().join("state/fleet/console.log").is_file(), "the console logs to a file");
}
