//! End to end: the Processes panel of `fleet demo` in a real pseudo-terminal. The demo's nodes run
//! on this machine, so their process tables hold this test's `sleep`. It is found by pattern,
//! tagged, and signalled through the signal menu and the confirmation, which must list it; `esc`
//! at the confirmation instead leaves it running. Both outcomes are read from /proc.
//!
//! Keys, as an admin types them: `2` (the Processes tab), `/` + pattern + enter, `space` (tag),
//! `k` (signal menu), enter (TERM), then enter (send) or esc (cancel).

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleet_e2e::pty::{PtyCommand, PtySession, fleet_binary, keys};

/// Long enough for anything: the demo's first round, a list round, a kill round.
const SCREEN_WAIT: Duration = Duration::from_secs(30);

/// A `sleep` this test owns, with an argument no other process has; killed and reaped on drop.
struct Sleeper {
    child: Child,
    command: String,
}

impl Sleeper {
    /// `sleep SECONDS.TESTPID`: GNU sleep takes a fraction, and the test's pid keeps the command
    /// line unique, so a stray sleep from an earlier run cannot be the row that gets tagged.
    fn start(seconds: u32) -> Sleeper {
        let arg = format!("{seconds}.{}", std::process::id());
        let child = Command::new("sleep").arg(&arg).stdin(Stdio::null()).spawn().expect("start sleep");
        Sleeper { child, command: format!("sleep {arg}") }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to end, up to `timeout`, and reaps it.
    fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The state letter and start time (clock ticks since boot) of `pid` from /proc/PID/stat, or
/// `None` when there is no such process.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// `fleet demo` in a 30x132 terminal with its config and log in `home`.
fn demo(home: &std::path::Path) -> PtySession {
    PtyCommand::new(fleet_binary())
        .arg("demo")
        .size(30, 132)
        .env("XDG_CONFIG_HOME", home.join("config").display().to_string())
        .env("XDG_STATE_HOME", home.join("state").display().to_string())
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .cwd(home)
        .spawn()
        .unwrap()
}

/// The host column of the table rows that show `command`.
fn hosts_listing(screen: &str, command: &str) -> Vec<String> {
    screen
        .lines()
        .filter(|l| l.contains(command) && !l.contains("pattern"))
        .filter_map(|l| l.split_whitespace().map(|t| t.trim_start_matches(['│', '>', '*'])).find(|t| !t.is_empty()).map(String::from))
        .collect()
}

/// From the demo's first screen to the signal menu: the Processes tab, the pattern, the sleep's
/// rows (one per demo node, all the same process), one row tagged, `k`, TERM. Returns the
/// confirmation screen.
fn tag_and_choose_term(console: &mut PtySession, sleeper: &Sleeper) -> String {
    console.wait_for_all(&["web-01", " connected "], SCREEN_WAIT).unwrap();
    console.send("2").unwrap();
    console.wait_for_text("pattern (any)", SCREEN_WAIT).unwrap();
    console.send("/").unwrap();
    console.wait_for_text("pattern (regex): ", SCREEN_WAIT).unwrap();
    console.send(&sleeper.command).unwrap();
    console.send(keys::ENTER).unwrap();
    let pid = sleeper.pid().to_string();
    // The pattern in force (the rows of the list before it, which has every process, are gone
    // then) and the sleep's rows under it.
    let in_force = format!("pattern {}", sleeper.command);
    let screen = console
        .wait_for(&format!("{in_force:?} and a row of pid {pid}"), SCREEN_WAIT, |s| {
            s.contains(&in_force) && s.lines().any(|l| l.contains(&pid) && l.contains(&sleeper.command) && !l.contains(&in_force))
        })
        .unwrap();
    // Only the sleep matched: one row per demo node (they all run on this machine), each the
    // same pid, and no other process.
    let hosts = hosts_listing(&screen, &sleeper.command);
    assert!(hosts.len() > 1 && hosts.contains(&"web-01".to_string()), "{screen}");
    let rows: Vec<&str> = screen.lines().filter(|l| l.contains(&sleeper.command) && !l.contains("pattern")).collect();
    assert!(rows.iter().all(|l| l.contains(&pid)), "{screen}");
    assert!(screen.contains(&format!("processes {}", hosts.len())), "the totals count only the sleep's rows:\n{screen}");

    console.send(" ").unwrap();
    console.wait_for_text("tagged 1", SCREEN_WAIT).unwrap();
    // Kill is K (also x and F9); k only ever moves.
    console.send("K").unwrap();
    console.wait_for_all(&["Signal for 1 process", "> TERM"], SCREEN_WAIT).unwrap();
    console.send(keys::ENTER).unwrap();
    let title = "Send SIGTERM to 1 process?";
    let confirmation = console.wait_for_text(title, SCREEN_WAIT).unwrap();
    // The confirmation lists the exact target under its title: host, pid, user and command line.
    let target = confirmation
        .lines()
        .skip_while(|l| !l.contains(title))
        .find(|l| l.contains(&pid) && l.contains(&sleeper.command))
        .unwrap_or_else(|| panic!("the confirmation does not list pid {pid}:\n{confirmation}"));
    assert!(target.contains(&format!(" {} ", hosts[0])), "the tagged row is the first, on {}: {target}", hosts[0]);
    let user = user_name(std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap());
    assert!(target.contains(&user), "user {user} of the target: {target}");
    confirmation
}

#[test]
fn a_tagged_sleep_is_killed_after_the_confirmation() {
    let mut sleeper = Sleeper::start(98765);
    let (_, start_time) = proc_stat(sleeper.pid()).expect("the sleep is running");
    let home = tempfile::tempdir().unwrap();
    let mut console = demo(home.path());

    tag_and_choose_term(&mut console, &sleeper);
    assert!(proc_stat(sleeper.pid()).is_some_and(|(state, _)| state != 'Z'), "nothing is sent before the confirmation");
    console.send(keys::ENTER).unwrap();
    console.wait_for_all(&["SIGTERM: 1 signalled", "signalled"], SCREEN_WAIT).unwrap();

    // The process got SIGTERM and is gone.
    let status = sleeper.wait_exit(Duration::from_secs(10)).expect("the sleep still runs after SIGTERM");
    assert_eq!(status.signal(), Some(rustix::process::Signal::TERM.as_raw()), "the sleep ended by {status:?}");
    assert_eq!(proc_stat(sleeper.pid()).filter(|(_, st)| *st == start_time), None, "/proc still has the sleep");

    // The next list no longer shows it. (No key needed: the outcome is a status line, not a
    // popup; an esc here followed at once by `q` would read as alt-q.)
    let pid = sleeper.pid().to_string();
    console
        .wait_for("the killed sleep gone from the table", SCREEN_WAIT, |s| {
            !s.lines().any(|l| l.contains(&pid) && l.contains(&sleeper.command))
        })
        .unwrap();
    console.send(keys::QUIT).unwrap();
    assert!(console.wait_exit(Duration::from_secs(10)).unwrap().success());
}

#[test]
fn esc_at_the_confirmation_leaves_the_sleep_alive() {
    let mut sleeper = Sleeper::start(98764);
    let (_, start_time) = proc_stat(sleeper.pid()).expect("the sleep is running");
    let home = tempfile::tempdir().unwrap();
    let mut console = demo(home.path());

    tag_and_choose_term(&mut console, &sleeper);
    console.send(keys::ESC).unwrap();
    console.wait_for_text("cancelled: nothing was sent", SCREEN_WAIT).unwrap();
    // A later list still has the row (each list stamps its time in the panel's title), and /proc
    // still has the same process, not a zombie.
    let pid = sleeper.pid().to_string();
    let listed_at = |s: &str| s.split("listed ").nth(1).map(|rest| rest.chars().take(8).collect::<String>());
    let before = listed_at(&console.screen_text());
    console
        .wait_for("a later list with the sleep still in it", SCREEN_WAIT, |s| {
            listed_at(s).is_some()
                && listed_at(s) != before
                && s.lines().any(|l| l.contains(&pid) && l.contains(&sleeper.command) && !l.contains("pattern"))
        })
        .unwrap();
    assert_eq!(sleeper.wait_exit(Duration::ZERO), None, "the sleep ended");
    let (state, now_start) = proc_stat(sleeper.pid()).expect("the sleep is gone from /proc");
    assert_eq!(now_start, start_time, "the same process");
    assert_ne!(state, 'Z');
    console.send(keys::QUIT).unwrap();
    assert!(console.wait_exit(Duration::from_secs(10)).unwrap().success());
}

/// The name of `uid` as /etc/passwd has it (what the node reports), else the number.
fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|l| {
                let fields: Vec<&str> = l.split(':').collect();
                (fields.len() > 2 && fields[2] == uid.to_string()).then(|| fields[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}
