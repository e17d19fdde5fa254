//! End to end: `fleet demo` in a real pseudo-terminal at 80x24 shows the five demo nodes after
//! its first round, and `q` ends it with status 0; with `NO_COLOR` it draws without colors.

use std::time::Duration;

use fleet_e2e::pty::{PtyCommand, PtySession, fleet_binary, keys};

const DEMO_NODES: [&str; 5] = ["web-01", "web-02", "db-01", "cache-01", "xen-01"];

/// `fleet demo` at 80x24 with its config and log in `home`.
fn demo(home: &std::path::Path, no_color: bool) -> PtySession {
    let mut cmd = PtyCommand::new(fleet_binary())
        .arg("demo")
        .size(24, 80)
        .env("XDG_CONFIG_HOME", home.join("config").display().to_string())
        .env("XDG_STATE_HOME", home.join("state").display().to_string())
        .env_remove("RUST_LOG")
        .cwd(home);
    cmd = if no_color { cmd.env("NO_COLOR", "1") } else { cmd.env_remove("NO_COLOR") };
    cmd.spawn().unwrap()
}

/// Cells drawn with a foreground or background color: (row, column, text).
fn colored_cells(console: &PtySession) -> Vec<(u16, u16, String)> {
    console.with_screen(|screen| {
        let (rows, cols) = screen.size();
        let mut colored = Vec::new();
        for row in 0..rows.get() {
            for col in 0..cols.get() {
                let cell = screen.cell(row, col).unwrap();
                if cell.fgcolor() != vt100::Color::Default || cell.bgcolor() != vt100::Color::Default {
                    colored.push((row, col, cell.contents().to_string()));
                }
            }
        }
        colored
    })
}

#[test]
fn demo_shows_all_nodes_and_quits_on_q() {
    // Keep the developer's config and log out of the test, and the test's log out of theirs.
    let home = tempfile::tempdir().unwrap();
    let mut console = demo(home.path(), false);

    let screen = console.wait_for_all(&DEMO_NODES, Duration::from_secs(30)).unwrap();
    assert!(screen.contains("demo: embedded hub + 6 in-process nodes"), "{screen}");
    assert!(screen.contains(" connected "), "{screen}");
    assert!(!colored_cells(&console).is_empty(), "the default theme has colors");

    console.send(keys::QUIT).unwrap();
    let status = console.wait_exit(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "fleet demo exited with {status:?}");
    assert!(home.path().join("state/fleet/console.log").is_file(), "the console logs to a file");
}

#[test]
fn no_color_draws_without_colors() {
    let home = tempfile::tempdir().unwrap();
    let mut console = demo(home.path(), true);
    console.wait_for_all(&DEMO_NODES, Duration::from_secs(30)).unwrap();
    let colored = colored_cells(&console);
    assert!(colored.is_empty(), "cells with colors under NO_COLOR: {colored:?}");
    console.send(keys::CTRL_C).unwrap();
    assert!(console.wait_exit(Duration::from_secs(10)).unwrap().success());
}
