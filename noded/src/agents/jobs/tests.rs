//! The jobs agent on a node built in memory: a job's life from creation to its end or cancel, the
//! checks at creation, and what a restart finds on disk.

use std::sync::Arc;
use std::time::Duration;

use fleet_protocol::keys::{KeyPair, Keyring};
use serde_json::{Value, json};

use super::*;
use crate::audit::Audit;
use crate::config::NodeConfig;
use crate::node::NodeState;
use crate::security::Security;

/// A node allowing every action, its state and audit log in `dir`.
fn node(dir: &std::path::Path, identity: &str) -> Arc<NodeState> {
    let config = NodeConfig { state_dir: dir.join("state"), ..NodeConfig::default() };
    let audit = Audit::open(dir.join("audit.log"), 1 << 20, 1).unwrap();
    let security =
        Security::in_memory(Arc::new(KeyPair::generate()), None, Keyring::default(), std::path::Path::new("/nonexistent"), true, audit);
    let mut agents = AgentSet::builtin();
    agents.insert(Arc::new(JobsAgent::for_config(&config)));
    NodeState::new(identity.into(), config, json!({}), Vec::new(), agents, security)
}

use crate::agents::AgentSet;

async fn call(node: &Arc<NodeState>, action: &str, args: Value) -> Result<Value, ActionError> {
    let agent = node.agents().get("jobs").unwrap().clone();
    let mut args = args.as_object().cloned().unwrap_or_default();
    fleet_ddl::validate_request(agent.ddl(), action, &mut args).map_err(|e| ActionError::invalid(e.to_string()))?;
    let meta =
        RequestMeta { id: fleet_protocol::new_request_id(), caller: "alice".into(), collective: "fleet".into(), msgtime: 0, ttl: 60 };
    agent.call(node.clone(), meta, action, args).await
}

/// Polls `id`'s status until `done` holds for it (or panics after 10 s).
async fn wait_status(node: &Arc<NodeState>, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let job = call(node, "status", json!({ "id": id })).await.unwrap()["job"].clone();
        if done(&job) {
            return job;
        }
        assert!(tokio::time::Instant::now() < deadline, "job {id} never reached the state: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn audit_reasons(dir: &std::path::Path, node: &NodeState) -> Vec<String> {
    node.security.audit.flush();
    std::fs::read_to_string(dir.join("audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["reason"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_in_the_background_keeps_its_output_and_is_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let n = node(tmp.path(), "n1");
    let r = call(&n, "run", json!({ "id": "j1", "agent": "echo", "action": "echo", "args": { "msg": "hi" } })).await.unwrap();
    assert_eq!(r["id"], "j1");
    let job = wait_status(&n, "j1", |j| j["state"] == "ok").await;
    assert_eq!((job["runs"].as_u64(), job["last"]["status"].as_str(), job["caller"].as_str()), (Some(1), Some("OK"), Some("alice")));
    let out = call(&n, "output", json!({ "id": "j1" })).await.unwrap();
    assert_eq!(out["data"]["msg"], "hi");
    // The record is on disk, under the node's identity.
    assert!(tmp.path().join("state/jobs/n1/j1.json").is_file());
    let reasons = audit_reasons(tmp.path(), &n);
    for want in ["job j1 created: runs now", "job j1 started (run 1)", "job j1 ended (run 1): OK: OK"] {
        assert!(reasons.iter().any(|r| r == want), "{want:?} not in {reasons:?}");
    }
    let list = call(&n, "list", json!({})).await.unwrap();
    assert_eq!((list["count"].as_u64(), list["jobs"][0]["id"].as_str()), (Some(1), Some("j1")));
    // A second job with the same id is refused.
    let e = call(&n, "run", json!({ "id": "j1", "agent": "echo", "action": "echo", "args": { "msg": "again" } })).await.unwrap_err();
    assert_eq!(e.message, "a job with id 'j1' already exists on this node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_action_is_checked_when_the_job_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let n = node(tmp.path(), "n1");
    let e = call(&n, "run", json!({ "id": "a", "agent": "nope", "action": "x" })).await.unwrap_err();
    assert_eq!(e.status, Status::UnknownAction);
    let e = call(&n, "run", json!({ "id": "b", "agent": "echo", "action": "echo", "args": {} })).await.unwrap_err();
    assert_eq!(e.status, Status::MissingData, "{}", e.message);
    let e = call(&n, "run", json!({ "id": "c", "agent": "jobs", "action": "list" })).await.unwrap_err();
    assert_eq!(e.message, "a job cannot run the jobs agent");
    let status = call(&n, "status", json!({ "id": "a" })).await.unwrap();
    assert_eq!(status["job"], Value::Null, "nothing was recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_job_waits_for_its_time_and_a_cancel_stops_it() {
    let tmp = tempfile::tempdir().unwrap();
    let n = node(tmp.path(), "n1");
    let later = fleet_protocol::now_ms() + 3_600_000;
    let r = call(&n, "run", json!({ "id": "s1", "agent": "echo", "action": "echo", "args": { "msg": "x" }, "at": later })).await.unwrap();
    assert_eq!((r["state"].as_str(), r["next_run"].as_u64()), (Some("scheduled"), Some(later)));
    let soon = fleet_protocol::now_ms() + 300;
    call(&n, "run", json!({ "id": "s2", "agent": "echo", "action": "echo", "args": { "msg": "y" }, "at": soon, "every": 1 }))
        .await
        .unwrap();
    // A repeating job may already be in its next run: wait for a snapshot whose last run ended.
    let job = wait_status(&n, "s2", |j| j["runs"].as_u64() >= Some(2) && j["last"]["ended"].as_u64() > Some(0)).await;
    assert_eq!(job["last"]["status"], "OK");
    assert!(job["last"]["started"].as_u64().unwrap() >= soon, "{job}");
    for id in ["s1", "s2"] {
        let c = call(&n, "cancel", json!({ "id": id })).await.unwrap();
        assert_eq!(c["state"], "cancelled", "{c}");
    }
    assert_eq!(wait_status(&n, "s1", |_| true).await["runs"], 0, "s1 never ran");
    let c = call(&n, "cancel", json!({ "id": "s1" })).await.unwrap();
    assert_eq!(c["message"], "the job had already ended (cancelled); nothing to cancel");
    let c = call(&n, "cancel", json!({ "id": "zz" })).await.unwrap();
    assert_eq!(c["message"], "no job 'zz' on this node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_flight_when_noded_stopped_is_lost_on_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state/jobs/n2");
    let store = store::Store::open(&dir).unwrap();
    let mut job: Job = serde_json::from_value(json!({
        "id": "r1", "agent": "echo", "action": "echo", "args": { "msg": "x" }, "caller": "alice", "request_id": "q",
        "collective": "fleet", "created": 1, "state": "running", "at": 0, "every": 0, "next_run": 0, "runs": 1,
        "last": { "started": 2 }
    }))
    .unwrap();
    store.save(&job);
    job.id = "r2".into();
    job.every = 60;
    job.next_run = fleet_protocol::now_ms() + 3_600_000;
    store.save(&job);
    let n = node(tmp.path(), "n2");
    let lost = call(&n, "status", json!({ "id": "r1" })).await.unwrap()["job"].clone();
    assert_eq!((lost["state"].as_str(), lost["last"]["status"].as_str()), (Some("lost"), Some("lost")), "{lost}");
    assert_eq!(lost["last"]["message"], "noded stopped while the job was running");
    // A repeating job keeps its schedule; its lost run is its last.
    let repeating = call(&n, "status", json!({ "id": "r2" })).await.unwrap()["job"].clone();
    assert_eq!(repeating["last"]["status"], "lost", "{repeating}");
    assert_ne!(repeating["state"], "lost");
    assert!(audit_reasons(tmp.path(), &n).contains(&"job r1 lost: noded stopped while the job was running".to_string()));
}

#[test]
fn the_documented_jobs_table_is_the_default() {
    let example = include_str!("../../../../deploy/noded.toml.example");
    let config = NodeConfig::parse(example, "deploy/noded.toml.example").unwrap();
    assert_eq!(config.jobs, JobsConfig::default());
    let e = NodeConfig::parse("[jobs]\nmax_running = 0\n", "n.toml").unwrap_err().to_string();
    assert_eq!(e, "n.toml: jobs.max_running: must be at least 1");
}
