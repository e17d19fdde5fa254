//! End to end: background jobs through real `noded` processes. A job outlives the request that
//! created it, survives a noded restart (a finished job keeps its result, a running one is lost,
//! never ok), and `fleet job cancel` kills its whole process tree (checked in /proc); a scheduled
//! job runs at its time and shows in `fleet job list`; the target's policy is checked at creation
//! and the audit log follows a job from creation to its end.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use fleet_e2e::support::{Hub, Node, NodeSpec, Output, TestKeys, fleet, fleet_bin, wait_for, wait_for_nodes};
use serde_json::Value;

const T: Duration = Duration::from_secs(20);

/// An external agent whose `nap` starts two `sleep SECS` children and waits for them: a job with
/// a process tree to find and kill. Long enough (DDL timeout 600 s) to outlive any request.
const SLEEPER_DDL: &str = r#"
[metadata]
name = "sleeper"
description = "Sleeps in two children"
author = "e2e"
license = "Apache-2.0"
version = "1.0.0"
url = "https://example.invalid"
timeout = 600

[actions.nap]
description = "Starts two sleeps and waits for them"

[actions.nap.input.secs]
prompt = "Seconds"
description = "How long each sleep lasts; also the tag the test finds them by"
type = "integer"
"#;

const SLEEPER: &str = r#"#!/bin/sh
case "$3" in *activation*) exit 0 ;; esac
secs=$(sed -n 's/.*"secs":\([0-9]*\).*/\1/p' "$1")
sleep "$secs" &
sleep "$secs" &
wait
printf '{"statuscode":0,"statusmsg":"OK","data":{"slept":%s}}' "$secs" > "$2"
"#;

/// A directory with the sleeper agent and its DDL (the nodes' agents_dir and the CLI's DDL path).
fn sleeper_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sleeper.toml"), SLEEPER_DDL).unwrap();
    let exe = dir.path().join("sleeper");
    std::fs::write(&exe, SLEEPER).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `fleet --hub HUB ARGS...` in the harness's clean environment, with FLEET_DDL_PATH set so the
/// CLI knows the sleeper agent's DDL.
fn fleet_ddl(hub: &str, args: &[&str], ddl_dir: &Path) -> Output {
    let home = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(fleet_bin())
        .args(["--hub", hub])
        .args(args)
        .env("XDG_CONFIG_HOME", home.path())
        .env("FLEET_KEY", TestKeys::get().private_key())
        .env("FLEET_HUB_KEY", TestKeys::get().hub_public_key())
        .env("FLEET_DDL_PATH", ddl_dir)
        .env_remove("FLEET_HUB")
        .env_remove("FLEET_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run fleet");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        elapsed: started.elapsed(),
    }
}

/// A node with its jobs under `state` and, when given, the agents in `agents`.
fn node(hub: &Hub, name: &str, state: &Path, agents: Option<&Path>, extra_toml: &str) -> Node {
    let mut spec = NodeSpec::new(hub.endpoint(), name)
        .config(&format!("state_dir = {:?}\n{extra_toml}[jobs]\nkill_grace = 2.0\n", state.join(name).display().to_string()));
    if let Some(dir) = agents {
        spec = spec.arg("--agents-dir").arg(dir.display().to_string());
    }
    spec.start()
}

/// The job id from `fleet job run`'s first line, `Job ID: agent#action ...`.
fn job_id(out: &Output) -> String {
    assert_eq!(out.code, Some(0), "{out}");
    let first = out.stdout.lines().next().unwrap_or_default();
    first.strip_prefix("Job ").and_then(|l| l.split(':').next()).unwrap_or_else(|| panic!("no job id: {out}")).to_string()
}

/// The job as `fleet job status ID --json` reports it on `node`.
fn job_on(hub: &str, id: &str, node: &str) -> Value {
    let out = fleet(hub, &["job", "status", id, "-I", node, "--json"]);
    out.json()["replies"][0]["data"]["job"].clone()
}

/// Live processes whose command line is exactly `sleep SECS`.
fn sleeps(secs: u32) -> Vec<u32> {
    let want = format!("sleep\0{secs}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want.as_bytes()))
        .collect()
}

/// The reasons of the node's audit lines that mention job `id`.
fn audit_of(node: &Node, id: &str) -> Vec<String> {
    std::fs::read_to_string(node.dir().join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["reason"].as_str().map(String::from))
        .filter(|r| r.starts_with(&format!("job {id} ")))
        .collect()
}

#[test]
fn a_job_outlives_its_request_and_a_restart_and_cancel_kills_its_tree() {
    let hub = Hub::start();
    let agents = sleeper_dir();
    let state = tempfile::tempdir().unwrap();
    let mut alpha = node(&hub, "alpha", state.path(), Some(agents.path()), "");
    let _beta = node(&hub, "beta", state.path(), Some(agents.path()), "");
    wait_for_nodes(hub.endpoint(), &["alpha", "beta"], T);
    let h = hub.endpoint();

    // A quick job on both nodes: the same id everywhere, ok with its output.
    let quick = job_id(&fleet(h, &["job", "run", "echo", "echo", "msg=kept", "-I", "alpha", "-I", "beta"]));
    for n in ["alpha", "beta"] {
        wait_for(&format!("the quick job to end on {n}"), T, || job_on(h, &quick, n)["state"] == "ok");
    }
    let out = fleet(h, &["job", "status", &quick]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("echo#echo") && out.stdout.contains("ok 2"), "{out}");

    // A long job: the request that created it has ended, the job runs on with its tree.
    let secs = 30_000 + std::process::id() % 1000;
    let long = job_id(&fleet_ddl(h, &["job", "run", "sleeper", "nap", &format!("secs={secs}"), "-I", "alpha"], agents.path()));
    wait_for("the long job's two sleeps", T, || sleeps(secs).len() == 2);
    assert_eq!(job_on(h, &long, "alpha")["state"], "running");

    // noded restarts: the finished job keeps its result, the running one is lost, its tree gone.
    alpha.sigterm();
    alpha.wait(T).expect("alpha stops on SIGTERM");
    alpha.restart();
    wait_for_nodes(h, &["alpha", "beta"], T);
    let lost = job_on(h, &long, "alpha");
    assert_eq!((lost["state"].as_str(), lost["last"]["status"].as_str()), (Some("lost"), Some("lost")), "{lost}");
    assert!(sleeps(secs).is_empty(), "the lost job's processes are gone");
    let out = fleet(h, &["job", "status", &long, "-I", "alpha"]);
    assert_eq!(out.code, Some(2), "a lost job is never reported as ok: {out}");
    assert!(out.stdout.contains("lost: noded stopped while the job was running"), "{out}");
    let out = fleet(h, &["job", "output", &quick, "-I", "alpha", "--json"]);
    assert_eq!(out.json()["replies"][0]["data"]["data"]["msg"], "kept", "{out}");

    // Cancel kills the whole tree (the agent's shell and both sleeps) and says so per node.
    let secs = secs + 1;
    let doomed = job_id(&fleet_ddl(h, &["job", "run", "sleeper", "nap", &format!("secs={secs}"), "-I", "alpha"], agents.path()));
    wait_for("the doomed job's two sleeps", T, || sleeps(secs).len() == 2);
    let out = fleet(h, &["job", "cancel", &doomed]);
    assert_eq!(out.code, Some(0), "{out}");
    let line = out.stdout.lines().find(|l| l.trim_start().starts_with("alpha")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("cancelled while running: killed 3 processes (") && line.contains("sleeper "), "{out}");
    assert!(out.stdout.contains(&format!("Without job {doomed}: beta")), "{out}");
    assert!(sleeps(secs).is_empty(), "cancel returns after the tree is gone");
    let cancelled = job_on(h, &doomed, "alpha");
    assert_eq!((cancelled["state"].as_str(), cancelled["last"]["status"].as_str()), (Some("cancelled"), Some("cancelled")));

    // The audit log follows each job: created, started, ended, lost, cancelled.
    let quick_audit = audit_of(&alpha, &quick);
    for want in ["created: runs now", "started (run 1)", "ended (run 1): OK: OK"] {
        assert!(quick_audit.iter().any(|r| r.ends_with(want)), "{want:?} in {quick_audit:?}");
    }
    assert!(audit_of(&alpha, &long).iter().any(|r| r.contains("lost: noded stopped")), "{:?}", audit_of(&alpha, &long));
    let caller = TestKeys::get().caller();
    assert!(audit_of(&alpha, &doomed).iter().any(|r| r.contains(&format!("cancelled by {caller}: cancelled while running: killed 3"))));
}

#[test]
fn a_scheduled_job_runs_at_its_time_and_shows_in_list() {
    let hub = Hub::start();
    let state = tempfile::tempdir().unwrap();
    let _alpha = node(&hub, "alpha", state.path(), None, "");
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let h = hub.endpoint();

    let out = fleet(h, &["job", "run", "echo", "echo", "msg=later", "--at", "+4s", "-I", "alpha"]);
    let later = job_id(&out);
    assert!(out.stdout.contains("scheduled"), "{out}");
    let job = job_on(h, &later, "alpha");
    let at = job["at"].as_u64().unwrap();
    if job["state"] == "scheduled" {
        let list = fleet(h, &["job", "list"]);
        let row = list.stdout.lines().find(|l| l.starts_with(&later)).unwrap_or_else(|| panic!("{list}"));
        assert!(row.contains("echo#echo") && row.contains("scheduled 1") && row.contains(" UTC"), "{list}");
    }
    // watch follows the job until it ended everywhere.
    let watched = fleet(h, &["job", "watch", &later, "--interval", "0.2"]);
    assert_eq!(watched.code, Some(0), "{watched}");
    assert!(
        watched.stdout.contains(" ok (run 1): OK") && watched.stdout.contains(&format!("Job {later} ended on every node: ok 1")),
        "{watched}"
    );
    let ran = job_on(h, &later, "alpha");
    assert!(ran["last"]["started"].as_u64().unwrap() >= at, "it did not start before its time: {ran}");

    // A repeating job runs again and again, shows its interval and next run, until cancelled.
    let every = job_id(&fleet(h, &["job", "run", "echo", "echo", "msg=tick", "--every", "1s", "-I", "alpha"]));
    wait_for("two runs of the repeating job", T, || job_on(h, &every, "alpha")["runs"].as_u64() >= Some(2));
    let list = fleet(h, &["job", "list", "--json"]);
    let jobs = list.json()["jobs"].as_array().cloned().unwrap();
    let row = jobs.iter().find(|j| j["id"] == every.as_str()).unwrap_or_else(|| panic!("{list}"));
    assert_eq!((row["every"].as_u64(), row["next_run"].as_u64().is_some_and(|n| n > 0)), (Some(1), true), "{row}");
    assert!(jobs.iter().any(|j| j["id"] == later.as_str() && j["nodes"]["alpha"]["state"] == "ok"), "{list}");
    let out = fleet(h, &["job", "cancel", &every]);
    assert_eq!(out.code, Some(0), "{out}");
    let runs = job_on(h, &every, "alpha")["runs"].as_u64();
    assert_eq!(job_on(h, &every, "alpha")["state"], "cancelled");
    assert_eq!(job_on(h, &every, "alpha")["runs"].as_u64(), runs, "no run after the cancel");
}

#[test]
fn the_target_policy_is_checked_when_the_job_is_created() {
    let hub = Hub::start();
    let state = tempfile::tempdir().unwrap();
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("jobs.policy"), "policy default allow\n").unwrap();
    std::fs::write(policies.path().join("echo.policy"), "policy default deny\n").unwrap();
    let toml = format!("policy_dir = {:?}\npolicy_default = \"deny\"\n", policies.path().display().to_string());
    let alpha = node(&hub, "alpha", state.path(), None, &toml);
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let out = fleet(hub.endpoint(), &["job", "run", "echo", "echo", "msg=no", "-I", "alpha"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stdout.contains("Denied: denied by"), "{out}");
    let id = out.stdout.lines().next().and_then(|l| l.strip_prefix("Job ")).and_then(|l| l.split(':').next()).unwrap().to_string();
    let out = fleet(hub.endpoint(), &["job", "status", &id]);
    assert_eq!(out.code, Some(1), "no node has the refused job: {out}");
    wait_for("the denial in the audit log", T, || audit_of(&alpha, &id).iter().any(|r| r.starts_with(&format!("job {id} not created:"))));
}
