//! End to end: the Jobs tab (7) in a real pseudo-terminal on `fleet demo --headless` (an embedded
//! hub and six nodes with the jobs and concat agents, requests signed and checked as in a real
//! fleet). A job started with `fleet job run` from another process shows up, is cancelled after
//! its confirmation, and the cancel is in the Log; the Concat view (`]`) shows the demo's motd
//! target, the node whose file would change, and its diff.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fleet_e2e::pty::{PtyCommand, PtySession, fleet_binary, keys};

const WAIT: Duration = Duration::from_secs(30);
const DEMO_NODES: usize = 6;

/// `fleet demo --headless`, and the environment it printed for other terminals.
struct Demo {
    child: Child,
    env: Vec<(String, String)>,
    home: tempfile::TempDir,
}

impl Demo {
    fn start() -> Demo {
        let home = tempfile::tempdir().unwrap();
        let mut child = Command::new(fleet_binary())
            .args(["demo", "--headless"])
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env_remove("FLEET_HUB")
            .env_remove("FLEET_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fleet demo --headless");
        let mut env = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.expect("the demo's output");
            if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                env.push((k.to_string(), v.to_string()));
            }
            if line.starts_with("# the demo runs until") {
                break;
            }
        }
        assert!(env.iter().any(|(k, _)| k == "FLEET_HUB"), "the demo printed its hub: {env:?}");
        // The rest of its output is not read; keep the pipe drained so the demo never blocks.
        std::thread::spawn(move || lines.for_each(drop));
        Demo { child, env, home }
    }

    /// `fleet ARGS...` against the demo: its exit code and standard output.
    fn fleet(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = Command::new(fleet_binary())
            .args(args)
            .envs(self.env.iter().cloned())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env_remove("FLEET_CONFIG")
            .stdin(Stdio::null())
            .output()
            .expect("run fleet");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// The console (`fleet` without a command) on the demo at `rows` x `cols`.
    fn console(&self, rows: u16, cols: u16) -> PtySession {
        let mut cmd = PtyCommand::new(fleet_binary())
            .size(rows, cols)
            .env("XDG_CONFIG_HOME", self.home.path().join("config").display().to_string())
            .env("XDG_STATE_HOME", self.home.path().join("state").display().to_string())
            .env_remove("FLEET_CONFIG")
            .env_remove("RUST_LOG")
            .cwd(self.home.path());
        for (k, v) in &self.env {
            cmd = cmd.env(k.clone(), v.clone());
        }
        let console = cmd.spawn().unwrap();
        console.wait_for_all(&["web-01", "xen-02", " connected "], WAIT).unwrap();
        console
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn quit(mut console: PtySession) {
    console.send(keys::CTRL_C).unwrap();
    assert!(console.wait_exit(Duration::from_secs(10)).unwrap().success());
}

#[test]
fn a_job_started_from_the_cli_is_listed_and_cancelled_after_confirmation() {
    let demo = Demo::start();
    // Scheduled an hour ahead: it is there, and not ended, whenever the console looks.
    let (code, started) = demo.fleet(&["job", "run", "echo", "echo", "msg=hello", "--at", "+1h"]);
    assert_eq!(code, Some(0), "{started}");
    let id = started.lines().find_map(|l| l.strip_prefix("Job ")).and_then(|l| l.split(':').next()).expect("a job id").to_string();

    let mut console = demo.console(24, 80);
    console.send("7").unwrap();
    console.wait_for_all(&[&id, "echo#echo", "scheduled 6"], WAIT).unwrap();

    // x asks first, naming the job and the nodes; n leaves it alone.
    console.send("x").unwrap();
    let screen = console.wait_for_text(&format!("Cancel job {id}?"), WAIT).unwrap();
    assert!(screen.contains("on 6 node(s) where it has not ended"), "{screen}");
    console.send("n").unwrap();
    console.wait_for("the confirmation closed", WAIT, |s| !s.contains("Cancel job")).unwrap();
    assert!(console.screen_text().contains("scheduled 6"), "{}", console.screen_text());

    console.send("x").unwrap();
    console.wait_for_text(&format!("Cancel job {id}?"), WAIT).unwrap();
    console.send("y").unwrap();
    console.wait_for_text(&format!("job {id} cancelled on 6 node(s)"), WAIT).unwrap();
    console.wait_for_text("cancelled 6", WAIT).unwrap();

    // The nodes agree (a cancelled job is a failure: exit 2), and the Log has the cancel.
    let (code, status) = demo.fleet(&["job", "status", &id]);
    assert_eq!(code, Some(2), "{status}");
    assert!(status.contains("cancelled 6"), "{status}");
    console.send("6").unwrap();
    console.wait_for_text("jobs#cancel", WAIT).unwrap();
    quit(console);
}

#[test]
fn the_concat_view_shows_the_node_that_would_change_and_its_diff() {
    let demo = Demo::start();
    let mut console = demo.console(24, 80);
    console.send("7").unwrap();
    console.send("]").unwrap();
    let screen = console.wait_for_all(&["Concat: targets", "1 target(s)", "motd"], WAIT).unwrap();
    assert!(screen.lines().any(|l| l.contains("motd") && l.contains(&format!(" {DEMO_NODES}  cache-01"))), "{screen}");

    // The dry run: cache-01 has one fragment more than the file, the others are in sync.
    console.send(keys::ENTER).unwrap();
    let screen = console.wait_for_all(&["1 of 6 nodes would change", "5 in sync"], WAIT).unwrap();
    assert!(screen.lines().any(|l| l.contains("cache-01") && l.contains("would change")), "{screen}");
    assert!(screen.lines().any(|l| l.contains("web-01") && l.contains("in sync")), "{screen}");

    // cache-01 sorts first: enter opens its diff.
    console.send(keys::ENTER).unwrap();
    console.wait_for_all(&["Diff on cache-01", "+This is a development server"], WAIT).unwrap();
    console.send(keys::ESC).unwrap();
    console.wait_for("back to the nodes", WAIT, |s| !s.contains("Diff on cache-01")).unwrap();
    quit(console);
}
