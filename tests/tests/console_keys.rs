//! End to end: the console's keys and its terminal, in `fleet demo` in a real pseudo-terminal.
//! After a kill (`/pattern`, space, `K`, enter, enter) the outcome is on screen, the Log lists
//! the kill (also after a restart) and the global keys work at once; `k` only ever moves; the
//! console leaves a clean screen after a resize; `ctrl-z` gives the terminal back to the shell
//! and `fg` brings the console back, fully drawn. The last two run the console from an
//! interactive bash, as an admin would, so the shell's job control is the real one.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fleet_e2e::pty::{PtyCommand, PtySession, fleet_binary, keys};

/// Long enough for anything: the demo's first round, a list round, a kill round.
const SCREEN_WAIT: Duration = Duration::from_secs(30);
/// What the bash in the pty prints as its prompt.
const PROMPT: &str = "PROMPT$ ";

/// `cmd` with its config, the console's log and the Log history in `home`, which is also its
/// working directory; no log level or NO_COLOR from the developer's environment.
fn in_home(cmd: PtyCommand, home: &Path) -> PtySession {
    cmd.env("XDG_CONFIG_HOME", home.join("config").display().to_string())
        .env("FLEET_STATE_DIR", home.join("state").display().to_string())
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .cwd(home)
        .spawn()
        .unwrap()
}

/// `fleet demo` in a `rows` x `cols` terminal.
fn demo(home: &Path, rows: u16, cols: u16) -> PtySession {
    in_home(PtyCommand::new(fleet_binary()).arg("demo").size(rows, cols), home)
}

/// An interactive bash (no rc files) in a pty, with `fleet demo` started from its prompt and
/// showing its first screen.
fn demo_from_shell(home: &Path) -> PtySession {
    let bash = PtyCommand::new("bash").args(["--norc", "--noprofile", "-i"]).size(24, 80).env("PS1", PROMPT);
    let mut console = in_home(bash.env("HOME", home.display().to_string()), home);
    console.wait_for_text(PROMPT, SCREEN_WAIT).unwrap();
    console.send(&format!("{} demo\r", fleet_binary().display())).unwrap();
    wait_demo(&console);
    console
}

/// The demo's first screen: every node answered and the hub link is up.
fn wait_demo(console: &PtySession) -> String {
    console.wait_for_all(&["web-01", " connected ", "DISCOVERY"], SCREEN_WAIT).unwrap()
}

/// A `sleep` only this test runs (its argument holds the test's pid), killed and reaped on drop.
struct Target(Child, String);

impl Target {
    fn start(seconds: u32) -> Target {
        let arg = format!("{seconds}.{}", std::process::id());
        let child = Command::new("sleep").arg(&arg).stdin(Stdio::null()).spawn().expect("start sleep");
        Target(child, format!("sleep {arg}"))
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// From the demo's first screen: the Processes tab, the target's pattern, its first row tagged,
/// `K`, TERM, and the confirmation answered with enter. Returns the screen with the outcome.
fn kill_with_term(console: &mut PtySession, target: &Target) -> String {
    wait_demo(console);
    console.send("2").unwrap();
    console.wait_for_all(&["pattern (any)", "PROCESSES"], SCREEN_WAIT).unwrap();
    console.send("/").unwrap();
    console.wait_for_text("EDIT LINE", SCREEN_WAIT).unwrap();
    console.send(&target.1).unwrap();
    console.send(keys::ENTER).unwrap();
    // The pattern in force and only the target's rows under it (one per demo node): the list
    // from before the pattern, which the first row could still belong to, is gone.
    let pid = target.0.id().to_string();
    let in_force = format!("pattern {}", target.1);
    console
        .wait_for("only the target's rows under its pattern", SCREEN_WAIT, |s| {
            let rows = s.lines().filter(|l| l.contains(&pid) && l.contains(&target.1) && !l.contains(&in_force)).count();
            s.contains(&in_force) && rows > 0 && s.contains(&format!("processes {rows} "))
        })
        .unwrap();
    console.send(" ").unwrap();
    console.wait_for_text("tagged 1", SCREEN_WAIT).unwrap();
    console.send("K").unwrap();
    console.wait_for_all(&["Signal for 1 process", "SIGNAL MENU"], SCREEN_WAIT).unwrap();
    console.send(keys::ENTER).unwrap();
    console.wait_for_all(&["Send SIGTERM to 1 process?", "CONFIRM KILL"], SCREEN_WAIT).unwrap();
    console.send(keys::ENTER).unwrap();
    console.wait_for_text("SIGTERM: 1 signalled", SCREEN_WAIT).unwrap()
}

#[test]
fn after_a_kill_the_outcome_stays_on_screen_and_the_global_keys_work() {
    let target = Target::start(98763);
    let home = tempfile::tempdir().unwrap();
    let mut console = demo(home.path(), 30, 132);
    let screen = kill_with_term(&mut console, &target);
    // The status line keeps the outcome after the footer's notice is gone.
    assert!(screen.contains("last kill "), "{screen}");
    console.send("j").unwrap();
    console.wait_for("the outcome line after another key", SCREEN_WAIT, |s| s.contains("last kill ") && s.contains("PROCESSES")).unwrap();

    // No key is needed to leave anything: ?, :, and the panel digits act at once.
    console.send("?").unwrap();
    console.wait_for_all(&["Keys (esc closes)", "HELP"], SCREEN_WAIT).unwrap();
    console.send(keys::ESC).unwrap();
    console.wait_for_text("PROCESSES", SCREEN_WAIT).unwrap();
    // The command line takes the footer's row. Each step waits for its screen, or the terminal
    // would read `esc` and the next digit as one alt-key.
    let footer = |s: &str| s.lines().last().unwrap_or_default().to_string();
    console.send(":").unwrap();
    console.wait_for("the command line", SCREEN_WAIT, |s| footer(s).starts_with(':')).unwrap();
    console.send(keys::ESC).unwrap();
    console.wait_for("the table's footer", SCREEN_WAIT, |s| footer(s).contains("PROCESSES")).unwrap();
    for (digit, mode) in [("1", "DISCOVERY"), ("3", "INVENTORY"), ("4", "XEN"), ("5", "RPC"), ("6", "LOG"), ("2", "PROCESSES")] {
        console.send(digit).unwrap();
        console.wait_for(&format!("{digit} shows {mode}"), SCREEN_WAIT, |s| s.lines().last().is_some_and(|l| l.contains(mode))).unwrap();
    }
    console.send(keys::QUIT).unwrap();
    assert!(console.wait_exit(Duration::from_secs(10)).unwrap().success());
}

#[test]
fn the_log_lists_a_kill_also_after_a_restart() {
    let target = Target::start(98762);
    let home = tempfile::tempdir().unwrap();
    let mut console = demo(home.path(), 30, 132);
    kill_with_term(&mut console, &target);
    console.send("6").unwrap();
    let log = console.wait_for_all(&["LOG", "process#kill"], SCREEN_WAIT).unwrap();
    let row = log.lines().find(|l| l.contains("process#kill")).unwrap();
    assert!(row.contains("1 selected"), "the kill went to one host: {row}");
    console.send(keys::QUIT).unwrap();
    assert!(console.wait_exit(Duration::from_secs(10)).unwrap().success());
    let saved = std::fs::read_to_string(home.path().join("state/console-log.jsonl")).unwrap();
    assert!(saved.lines().any(|l| l.contains("\"kill\"") && l.contains("signalled")), "{saved}");

    // The next console starts with the history.
    let mut again = demo(home.path(), 30, 132);
    wait_demo(&again);
    again.send("6").unwrap();
    again.wait_for_all(&["LOG", "process#kill"], SCREEN_WAIT).unwrap();
    again.send(keys::QUIT).unwrap();
    assert!(again.wait_exit(Duration::from_secs(10)).unwrap().success());
}

#[test]
fn k_moves_up_and_never_opens_the_signal_menu() {
    let home = tempfile::tempdir().unwrap();
    let mut console = demo(home.path(), 30, 132);
    wait_demo(&console);
    console.send("2").unwrap();
    console.wait_for("a listed table", SCREEN_WAIT, |s| s.contains("listed ") && s.contains("processes ")).unwrap();
    console.send("jjj").unwrap();
    console.send("kkk").unwrap();
    // Keys are handled in order: had `k` opened the signal menu, it would have taken the `?`
    // (a menu keeps the keys), so the help popup shows that it did not.
    console.send("?").unwrap();
    let screen = console.wait_for_all(&["Keys (esc closes)", "HELP"], SCREEN_WAIT).unwrap();
    assert!(!screen.contains("Signal for"), "k opened the signal menu:\n{screen}");
    console.send(keys::ESC).unwrap();
    console.wait_for_text("PROCESSES", SCREEN_WAIT).unwrap();
    console.send(keys::QUIT).unwrap();
    assert!(console.wait_exit(Duration::from_secs(10)).unwrap().success());
}

/// Every row of the screen below the last prompt is blank, and nothing of the console's frame
/// is left anywhere.
fn assert_clean_below_prompt(screen: &str) {
    let lines: Vec<&str> = screen.lines().collect();
    let prompt = lines.iter().rposition(|l| l.starts_with(PROMPT.trim_end())).unwrap_or_else(|| panic!("no prompt:\n{screen}"));
    assert!(lines[prompt + 1..].iter().all(|l| l.trim().is_empty()), "text below the prompt:\n{screen}");
    for fragment in ["│", "┌", "└", "DISCOVERY", "fleet  hub"] {
        assert!(!screen.contains(fragment), "{fragment:?} left on screen:\n{screen}");
    }
}

#[test]
fn quitting_after_a_resize_leaves_a_clean_screen() {
    let home = tempfile::tempdir().unwrap();
    let mut console = demo_from_shell(home.path());
    console.resize(40, 120).unwrap();
    console.wait_for("the wide frame", SCREEN_WAIT, |s| s.lines().any(|l| l.contains(" UTC") && l.chars().count() > 100)).unwrap();
    console.resize(10, 40).unwrap();
    console.wait_for("the 40x10 frame", SCREEN_WAIT, |s| s.lines().count() <= 10 && s.contains("DISCOVERY")).unwrap();
    console.resize(24, 80).unwrap();
    wait_demo(&console);
    console.send(keys::QUIT).unwrap();
    let screen = console.wait_for("the prompt after the console", SCREEN_WAIT, |s| s.matches(PROMPT.trim_end()).count() >= 2).unwrap();
    assert_clean_below_prompt(&screen);
    console.send("exit\r").unwrap();
    console.wait_exit(Duration::from_secs(10)).unwrap();
}

#[test]
fn ctrl_z_gives_the_shell_back_and_fg_redraws_the_console() {
    let home = tempfile::tempdir().unwrap();
    let mut console = demo_from_shell(home.path());
    console.send(&keys::ctrl('z')).unwrap();
    let stopped = console.wait_for_all(&["Stopped", PROMPT.trim_end()], SCREEN_WAIT).unwrap();
    assert!(!stopped.contains("DISCOVERY"), "the console's frame is still up:\n{stopped}");
    // The shell is usable meanwhile.
    console.send("echo still-here\r").unwrap();
    console.wait_for_text("\nstill-here", SCREEN_WAIT).unwrap();
    console.send("fg\r").unwrap();
    // A full frame again: the top bar, the tabs, the grid and the footer.
    let back = wait_demo(&console);
    assert!(back.contains("1 Discovery") && !back.contains("still-here"), "{back}");
    console.send("5").unwrap();
    console.wait_for_text("RPC", SCREEN_WAIT).unwrap();
    console.send(keys::QUIT).unwrap();
    let screen = console
        .wait_for("the prompt after the console", SCREEN_WAIT, |s| s.contains("fg") && s.trim_end().ends_with(PROMPT.trim_end()))
        .unwrap();
    assert_clean_below_prompt(&screen);
    console.send("exit\r").unwrap();
    console.wait_exit(Duration::from_secs(10)).unwrap();
}
