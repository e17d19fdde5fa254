//! End to end: the console's panels in a real pseudo-terminal against a real hub and real nodes
//! (`fleet demo`: an embedded hub and five nodes on loopback sockets, requests signed and checked
//! as in a real fleet). Keys are typed as a person would; the screen is read with vt100.

use std::time::Duration;

use fleet_e2e::pty::{PtyCommand, PtySession, fleet_binary, keys};

const WAIT: Duration = Duration::from_secs(30);
const UK: [&str; 2] = ["web-01", "db-01"];
const NOT_UK: [&str; 3] = ["web-02", "cache-01", "xen-01"];

/// `fleet demo` at `rows` x `cols`, with its config and log in `home`, followed by `stty -a` so
/// a test can see the terminal modes the console left behind.
fn demo(home: &std::path::Path, rows: u16, cols: u16) -> PtySession {
    PtyCommand::new("/bin/sh")
        .args(["-c", "\"$0\" demo; echo; echo 'console exited'; stty -a", &fleet_binary().display().to_string()])
        .size(rows, cols)
        .env("XDG_CONFIG_HOME", home.join("config").display().to_string())
        .env("XDG_STATE_HOME", home.join("state").display().to_string())
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .cwd(home)
        .spawn()
        .unwrap()
}

/// The grid rows of the Discovery panel (between its header and the bottom border).
fn grid(screen: &str) -> String {
    screen.lines().skip_while(|l| !l.contains("NODE")).skip(1).collect::<Vec<_>>().join("\n")
}

#[test]
fn discover_read_a_fact_fix_a_form_run_it_and_quit_cleanly() {
    let home = tempfile::tempdir().unwrap();
    let mut console = demo(home.path(), 24, 80);
    console.wait_for_all(&["web-01", "web-02", "db-01", "cache-01", "xen-01", " connected "], WAIT).unwrap();

    // Discovery with a fact filter: exactly the uk nodes, all answering.
    console.send("f").unwrap();
    console.send(&keys::ctrl('u')).unwrap();
    console.send("country=uk").unwrap();
    console.send(keys::ENTER).unwrap();
    let screen = console
        .wait_for("the uk nodes", WAIT, |s| s.contains("2 / 2") && s.contains("2 ok") && UK.iter().all(|n| grid(s).contains(n)))
        .unwrap();
    for other in NOT_UK {
        assert!(!grid(&screen).contains(other), "{other} does not match country=uk:\n{screen}");
    }
    assert!(screen.contains("filter country=uk"), "the top bar shows the filter:\n{screen}");

    // Inventory: the nodes on the left, the selected node's facts on the right.
    console.send("3").unwrap();
    let screen =
        console.wait_for("cache-01's facts", WAIT, |s| s.contains("Facts") && s.contains("datacenter") && s.contains("fra1")).unwrap();
    assert!(screen.contains("country") && screen.contains("de"), "{screen}");
    console.send("j").unwrap();
    console.wait_for("db-01's facts", WAIT, |s| s.contains(" db-01 ") && s.contains("lon1")).unwrap();

    // RPC: echo#echo, a message over its maxlength is refused as it is typed, then fixed and run.
    console.send("5").unwrap();
    // The agents the uk nodes report (xen runs on dom0s only).
    console.wait_for_all(&["echo 1.0.0", "process 1.0.0", "rpcutil 1.0.0"], WAIT).unwrap();
    // concat sorts first; echo is next.
    console.send("j").unwrap();
    console.wait_for_text("Echoes a message back", WAIT).unwrap();
    console.send(keys::ENTER).unwrap();
    console.wait_for_text("Returns the message", WAIT).unwrap();
    console.send(keys::ENTER).unwrap();
    console.wait_for_text("* Message", WAIT).unwrap();
    // A field is entered explicitly (enter), so keys never leak into it.
    console.send(keys::ENTER).unwrap();
    // Typed in bursts, as a paste arrives: a terminal's input queue is not a bottomless pipe.
    for _ in 0..41 {
        console.send(&"x".repeat(25)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    console.wait_for_text("is 1025 characters long", WAIT).unwrap();
    console.send(keys::BACKSPACE).unwrap();
    console.wait_for("the error goes when the text fits", WAIT, |s| !s.contains("1025 characters")).unwrap();
    console.send(&keys::ctrl('u')).unwrap();
    console.send("hello fleet").unwrap();
    // enter keeps the text and leaves the field; r runs the request.
    console.send(keys::ENTER).unwrap();
    console.send("r").unwrap();
    let screen = console.wait_for("the echo replies", WAIT, |s| s.contains("Summary of Message: hello fleet = 2")).unwrap();
    assert!(UK.iter().all(|n| screen.contains(n)), "{screen}");
    assert!(screen.contains("2 ok"), "{screen}");

    // rpcutil#get_fact: a validation regex, shown with the rule that fails. esc walks back one
    // step at a time (each waited for: an escape followed at once by a key reads as alt-key).
    console.send(keys::ESC).unwrap();
    console.wait_for_text("edit field", WAIT).unwrap();
    console.send(keys::ESC).unwrap();
    console.wait_for_text("Returns the message", WAIT).unwrap();
    console.send(keys::ESC).unwrap();
    console.wait_for_text("Echoes a message back", WAIT).unwrap();
    // echo, jobs, process, rpcutil.
    console.send("jjj").unwrap();
    console.wait_for_text("General helpful actions", WAIT).unwrap();
    console.send(keys::ENTER).unwrap();
    console.send("jjj").unwrap();
    console.wait_for_text("Retrieve a single fact", WAIT).unwrap();
    console.send(keys::ENTER).unwrap();
    console.wait_for_text("The name of the fact", WAIT).unwrap();
    console.send(keys::ENTER).unwrap();
    console.send("bad fact").unwrap();
    console.wait_for_text("does not match the validation", WAIT).unwrap();
    console.send(&keys::ctrl('u')).unwrap();
    console.send("role").unwrap();
    console.send(keys::ENTER).unwrap();
    console.send("r").unwrap();
    console
        .wait_for("the get_fact replies", WAIT, |s| s.contains("Summary of Value:") && s.contains("web = 1") && s.contains("db = 1"))
        .unwrap();

    // The Log has all three requests; enter reopens the echo.
    console.send("6").unwrap();
    console.wait_for_all(&["rpcutil#get_fact", "echo#echo", "rpcutil#ping", "country=uk"], WAIT).unwrap();
    console.send("j").unwrap();
    console.send(keys::ENTER).unwrap();
    console.wait_for("the echo reopened", WAIT, |s| s.contains("Summary of Message: hello fleet = 2")).unwrap();

    // q leaves the terminal as it found it: main screen, cursor shown, canonical mode and echo.
    console.send(keys::QUIT).unwrap();
    let screen = console.wait_for("stty after the console", WAIT, |s| s.contains("console exited") && s.contains("icanon")).unwrap();
    let status = console.wait_exit(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!console.with_screen(|s| s.alternate_screen()), "the alternate screen is left");
    assert!(!console.with_screen(|s| s.hide_cursor()), "the cursor is shown again");
    let modes: Vec<&str> = screen.split_whitespace().collect();
    for mode in ["icanon", "echo", "isig"] {
        assert!(modes.contains(&mode) && !modes.contains(&format!("-{mode}").as_str()), "{mode} is restored:\n{screen}");
    }
}

#[test]
fn the_layout_follows_a_resize() {
    let home = tempfile::tempdir().unwrap();
    let mut console = demo(home.path(), 24, 80);
    console.wait_for_all(&["web-01", "cache-01", "xen-01"], WAIT).unwrap();
    console.send("6").unwrap();
    let narrow = console.wait_for_text("REQUEST", WAIT).unwrap();
    assert!(!narrow.contains(" ID "), "no request id column at 80 columns:\n{narrow}");

    console.resize(40, 160).unwrap();
    let wide = console.wait_for("the wide log", WAIT, |s| s.contains(" ID ") && s.lines().count() >= 39).unwrap();
    let last = wide.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default().to_string();
    assert!(last.contains("reopen results"), "the footer is on the new last line:\n{wide}");
    assert!(wide.lines().any(|l| l.contains("6 Log") && l.trim_end().len() < 160), "{wide}");

    console.resize(24, 80).unwrap();
    let again = console.wait_for("back to 80 columns", WAIT, |s| !s.contains(" ID ") && s.contains("REQUEST")).unwrap();
    assert!(again.lines().all(|l| l.chars().count() <= 80), "{again}");
    console.send(keys::QUIT).unwrap();
    console.wait_for_text("console exited", WAIT).unwrap();
    assert!(console.wait_exit(Duration::from_secs(10)).unwrap().success());
}

#[test]
fn command_line_filter_and_theme() {
    let home = tempfile::tempdir().unwrap();
    let mut console = demo(home.path(), 24, 80);
    console.wait_for_all(&["web-01", "xen-01"], WAIT).unwrap();
    console.send(":fil").unwrap();
    console.send(keys::TAB).unwrap();
    console.wait_for_text(":filter ", WAIT).unwrap();
    console.send("role=web").unwrap();
    console.send(keys::ENTER).unwrap();
    let screen = console.wait_for("the web nodes", WAIT, |s| s.contains("2 / 2") && s.contains("filter role=web")).unwrap();
    assert!(!grid(&screen).contains("db-01"), "{screen}");
    console.send(":theme nope").unwrap();
    console.send(keys::ENTER).unwrap();
    console.wait_for_text("unknown theme \"nope\"", WAIT).unwrap();
    console.send(":theme high").unwrap();
    console.send(keys::TAB).unwrap();
    console.wait_for_text(":theme high-contrast", WAIT).unwrap();
    console.send(keys::ENTER).unwrap();
    console.wait_for_text("theme high-contrast", WAIT).unwrap();
    console.send(keys::CTRL_C).unwrap();
    console.wait_for_text("console exited", WAIT).unwrap();
    assert!(console.wait_exit(Duration::from_secs(10)).unwrap().success());
}
