//! Two hubs, nothing lost: nodes attach to both, the CLI sends each request through both and
//! de-duplicates replies by sender, so a hub SIGKILLed in the middle of a request loses no reply;
//! the nodes come back to the restarted hub on their own.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fleet_e2e::support::*;

const T: Duration = Duration::from_secs(60);
const SIM: usize = 200;

/// Copies every enrolled key of one test hub to another, so nodes enrolled on the first may
/// attach to the second as well.
fn copy_enrollment(from: &str, to: &str) {
    let (from, to) = (enroll_dir_of(from).unwrap().join("accepted"), enroll_dir_of(to).unwrap().join("accepted"));
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        // Files being written atomically (`.NAME.tmp`) are not enrolled keys yet.
        if name.starts_with('.') {
            continue;
        }
        let tmp = to.join(format!(".{name}.tmp"));
        std::fs::copy(&path, &tmp).unwrap();
        std::fs::rename(&tmp, to.join(&name)).unwrap();
    }
}

/// A child process killed when the test ends, pass or fail.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `noded sim` attached to both hubs, its keys enrolled on the first.
fn start_sim(dir: &Path, a: &str, b: &str) -> KillOnDrop {
    let keys = TestKeys::get();
    let config = dir.join("sim.toml");
    std::fs::write(
        &config,
        format!(
            "hub_key = {:?}\ncallers_dir = {:?}\npolicy_default = \"allow\"\nheartbeat_interval = 1.0\nretry_initial_delay = 0.1\nretry_max_delay = 1.0\n",
            keys.hub_public_key().display().to_string(),
            keys.callers_dir().display().to_string(),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("sim.stderr")).unwrap();
    Command::new(noded_bin())
        .arg("--config")
        .arg(&config)
        .args(["sim", "--nodes", &SIM.to_string(), "--hub", a, "--hub", b, "--enroll-into"])
        .arg(enroll_dir_of(a).unwrap())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(KillOnDrop)
        .unwrap()
}

#[test]
fn a_hub_killed_mid_request_loses_no_reply() {
    let mut hub_a = Hub::start();
    let hub_b = Hub::start();
    let (a, b) = (hub_a.endpoint().to_string(), hub_b.endpoint().to_string());
    let reals: Vec<Node> = (1..=3)
        .map(|i| {
            let node = NodeSpec::new(&a, &format!("real-{i}")).arg("--hub").arg(b.clone()).start();
            enroll_on(&b, node.identity(), &node.dir().join("node.pub"));
            node
        })
        .collect();
    let work = tempfile::tempdir().unwrap();
    let _sim = start_sim(work.path(), &a, &b);
    // The sim writes its keys into the first hub's enrollment, then they are copied to the second.
    let enrolled = || {
        let dir = enroll_dir_of(&a).unwrap().join("accepted");
        std::fs::read_dir(dir)
            .map(|d| d.filter_map(Result::ok).filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
            .unwrap_or(0)
    };
    wait_for("the sim's keys", T, || enrolled() >= SIM + 4);
    copy_enrollment(&a, &b);
    let all = SIM + reals.len();
    wait_for_node_count(&a, all, T);
    wait_for_node_count(&b, all, T);

    // A slow enough request (every node lists its processes), with hub A killed while it runs.
    let both = format!("{a},{b}");
    let run = std::thread::spawn(move || fleet_raw(&["--hub", &both, "pgrep", "^noded", "--json", "-t", "30"]));
    std::thread::sleep(Duration::from_millis(150));
    hub_a.sigkill();
    let out = run.join().unwrap();
    eprintln!("the request took {:.2} s; hub A was killed 0.15 s after the CLI started", out.elapsed.as_secs_f64());
    let doc = out.json();
    assert_eq!(doc["hosts_answered"].as_u64(), Some(all as u64), "every reply arrived: {out}");
    assert_eq!(doc["no_reply"].as_array().map(Vec::len), Some(0), "{out}");
    assert!(doc["failed"].as_array().unwrap().is_empty(), "no node refused: {out}");

    // Restarted on the same endpoint, hub A gets every node back by itself.
    let restarted = Instant::now();
    let _hub_a = Hub::start_on(&a);
    let back = wait_for_node_count(&a, all, T);
    eprintln!("{all} nodes back on the restarted hub {:.2} s after its restart", restarted.elapsed().as_secs_f64());
    assert!(back < Duration::from_secs(5), "nodes took {back:?} to come back");

    // And with both hubs up again, a round through both answers once per node.
    let out = fleet_raw(&["--hub", &format!("{a},{b}"), "ping", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.json()["replies"].as_array().unwrap().len(), all, "one reply per node, de-duplicated: {out}");
}
