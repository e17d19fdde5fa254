//! End to end: the reply inspector and the htop-like Processes views in `fleet demo`, in a real
//! pseudo-terminal. An RPC whose pattern a node refuses shows its whole error in the inspector;
//! an ok reply shows its data pretty-printed with units; the Processes tree view and the detail
//! pane (the process agent's `detail` fetched from the node) show a sleep this test runs.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fleet_e2e::pty::{demo_console, fill_rpc_field, keys};

const WAIT: Duration = Duration::from_secs(30);

/// A `sleep` only this test runs, under a shell of its own (so the tree view has a parent to put
/// it under: the test process itself is an ancestor of the console, which fleet never lists).
/// Both are killed (their process group) and reaped on drop.
struct Sleeper {
    shell: Child,
    /// The sleep's pid and command line.
    pid: u32,
    command: String,
}

impl Sleeper {
    fn start() -> Sleeper {
        use std::os::unix::process::CommandExt as _;
        let command = format!("sleep 3{}.5", std::process::id());
        let shell =
            Command::new("sh").args(["-c", &format!("{command}; true")]).stdin(Stdio::null()).process_group(0).spawn().expect("start sh");
        let children = format!("/proc/{0}/task/{0}/children", shell.id());
        let deadline = std::time::Instant::now() + WAIT;
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&children).ok().and_then(|t| t.split_whitespace().next()?.parse().ok()) {
                break pid;
            }
            assert!(std::time::Instant::now() < deadline, "the shell never started its sleep");
            std::thread::sleep(Duration::from_millis(10));
        };
        Sleeper { shell, pid, command }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let group = rustix::process::Pid::from_raw(self.shell.id() as i32).expect("a pid");
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.shell.wait();
    }
}

/// The footer line (the last non-empty line), without its leading space.
fn footer(screen: &str) -> &str {
    screen.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim_start()
}

#[test]
fn the_inspector_shows_a_full_error_and_pretty_data() {
    let home = tempfile::tempdir().unwrap();
    let mut console = demo_console(home.path(), 48, 160);
    // RPC: process#list with a pattern every node refuses.
    console.send("5").unwrap();
    console.wait_for_text("process 1.0.0", WAIT).unwrap();
    // Agents: concat, echo, jobs, process, rpcutil.
    console.send("jjj").unwrap();
    console.wait_for_text("Lists processes and signals them", WAIT).unwrap();
    console.send(keys::ENTER).unwrap();
    // detail, kill, list
    console.send("jj").unwrap();
    console.wait_for_text("Lists the processes that match", WAIT).unwrap();
    console.send(keys::ENTER).unwrap();
    console.wait_for_text("RPC FORM", WAIT).unwrap();
    // The fields: fields, match_name, pattern, user, zombies.
    console.send("jj").unwrap();
    fill_rpc_field(&mut console, "(nginx");
    console.send("r").unwrap();
    let screen = console.wait_for("the refusals", WAIT, |s| s.contains("failed") && s.contains("InvalidData: input 'pattern'")).unwrap();
    // The cell is no longer cut after a few words.
    assert!(screen.contains("InvalidData: input 'pattern' is not a valid regex"), "{screen}");
    console.send(keys::ENTER).unwrap();
    let screen = console.wait_for_all(&["INSPECT", "Status: failed (InvalidData)"], WAIT).unwrap();
    assert!(screen.contains("Message: input 'pattern' is not a valid regex"), "{screen}");
    assert!(screen.contains("unclosed group"), "the whole message, to its end:\n{screen}");

    // y copies; w writes the same text to a file.
    console.send("y").unwrap();
    console.wait_for_text("copied", WAIT).unwrap();
    console.send("w").unwrap();
    console.wait_for_all(&["WRITE TO", "write to: "], WAIT).unwrap();
    console.send(&keys::ctrl('u')).unwrap();
    let path = home.path().join("refusal.txt");
    console.send(&path.display().to_string()).unwrap();
    console.send(keys::ENTER).unwrap();
    console.wait_for_text("wrote ", WAIT).unwrap();
    assert!(std::fs::read_to_string(&path).unwrap().contains("not a valid regex"));

    // An ok reply: rerun with a pattern that matches, and the data pretty-printed with units.
    // esc closes the inspector (if writing did not), then walks back to the form: one key at a
    // time, each waited for.
    let mut screen = console.wait_for("the write notice", WAIT, |s| s.contains("wrote ")).unwrap();
    while !footer(&screen).starts_with("RPC FORM") {
        let before = footer(&screen).to_string();
        console.send(keys::ESC).unwrap();
        screen = console.wait_for("the footer to change", WAIT, |s| footer(s) != before).unwrap();
    }
    fill_rpc_field(&mut console, "noded|fleet");
    console.send("r").unwrap();
    // The new results, not the refusals still on screen (the form's help also names RSS).
    console.wait_for("the listing", WAIT, |s| s.contains("6 ok") && s.contains("Sum of Matched")).unwrap();
    console.send(keys::ENTER).unwrap();
    let screen = console.wait_for_all(&["INSPECT", "Status: ok", "Processes (processes):"], WAIT).unwrap();
    assert!(screen.contains(" MiB (") && screen.contains(" bytes)"), "sizes in units:\n{screen}");
    assert!(screen.contains(" UTC ("), "start dates as dates:\n{screen}");
    console.send("q").unwrap();
    console.send("q").unwrap();
    assert!(console.wait_exit(WAIT).unwrap().success());
}

#[test]
fn the_tree_view_and_the_detail_pane() {
    let sleeper = Sleeper::start();
    let home = tempfile::tempdir().unwrap();
    let mut console = demo_console(home.path(), 48, 160);
    console.send("2").unwrap();
    console.wait_for_text("pattern (any)", WAIT).unwrap();
    // The whole table as a tree: this test's sleep under its shell.
    console.send("t").unwrap();
    console.wait_for_text("tree view", WAIT).unwrap();
    console.send("/").unwrap();
    console.wait_for_text("EDIT LINE", WAIT).unwrap();
    console.send(&sleeper.command).unwrap();
    console.send(keys::ENTER).unwrap();
    let pid = sleeper.pid.to_string();
    let screen = console
        .wait_for("the sleep in the tree", WAIT, |s| {
            s.contains(&format!("pattern {}", sleeper.command))
                && s.lines().any(|l| l.contains(&pid) && l.contains("└─ ") && l.contains(&sleeper.command))
        })
        .unwrap();
    assert!(screen.contains("  tree"), "the query line says the view:\n{screen}");

    // The detail pane of the sleep: its cwd and start date come from the node.
    console.send("/").unwrap();
    console.wait_for_text("EDIT LINE", WAIT).unwrap();
    console.send(&keys::ctrl('u')).unwrap();
    console.send(&format!("^{}$", sleeper.command)).unwrap();
    console.send(keys::ENTER).unwrap();
    console
        .wait_for("only the sleep", WAIT, |s| s.contains(&format!("pattern ^{}$", sleeper.command)) && s.lines().any(|l| l.contains(&pid)))
        .unwrap();
    console.send(keys::ENTER).unwrap();
    let cwd = std::env::current_dir().unwrap().display().to_string();
    let screen = console.wait_for_all(&["INSPECT", "Detail from", "Working directory:", "Open files:", "Cgroup:"], WAIT).unwrap();
    assert!(screen.contains(&format!("Working directory: {cwd}")), "{screen}");
    assert!(screen.contains(&format!("Command line: {}", sleeper.command)), "{screen}");
    assert!(screen.contains("Started:") && screen.contains(" UTC ("), "{screen}");
    console.send(keys::ESC).unwrap();
    console.wait_for_text("PROCESSES", WAIT).unwrap();
    console.send("q").unwrap();
    assert!(console.wait_exit(WAIT).unwrap().success());
}
