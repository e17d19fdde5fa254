//! jobs: another agent's action run in the background, now, at a time or every interval, with its
//! state kept under the node's state directory so that it outlives the request and noded itself.
//!
//! `run` checks the job as a direct call would be checked — the target action's DDL and its
//! policy, for the caller who creates the job — then records it and replies at once; every run
//! acts for that caller. `status`, `output`, `list` and `cancel` answer from the records. The
//! audit log gets a line when a job is created, starts, ends and is cancelled, under the target
//! agent and action. See `runner.rs` for the scheduler, `store.rs` for the files and retention,
//! and `tree.rs` for how a cancel finds and kills a run's processes.

mod record;
mod runner;
mod store;
mod tree;

use std::path::PathBuf;
use std::sync::Arc;

use fleet_ddl::Ddl;
use fleet_protocol::Status;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ActionError, ActionFuture, Agent, AgentContext, RequestMeta};
use crate::audit::{AuditDecision, AuditRecord, args_digest};
pub use record::{Job, JobState, LastRun};
use runner::Jobs;

/// `[jobs]` in noded.toml: limits of the jobs agent.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Runs at once; further due jobs wait as queued.
    pub max_running: usize,
    /// Jobs kept on this node; past it the oldest finished ones are removed, and a new job is
    /// refused while all kept jobs may still run.
    pub max_kept: usize,
    /// Seconds a finished job (ok, failed, cancelled, lost) is kept.
    pub keep_for: f64,
    /// Largest output kept per job, in bytes (as JSON); a larger one is replaced by a note.
    pub max_output_bytes: usize,
    /// Seconds a cancelled job's processes get between TERM and KILL.
    pub kill_grace: f64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig { max_running: 4, max_kept: 500, keep_for: 7.0 * 24.0 * 3600.0, max_output_bytes: 1024 * 1024, kill_grace: 3.0 }
    }
}

impl JobsConfig {
    /// The first bad value, as (key, what is wrong).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.max_running == 0 {
            return Some(("jobs.max_running", "must be at least 1".into()));
        }
        if self.max_kept == 0 {
            return Some(("jobs.max_kept", "must be at least 1".into()));
        }
        for (key, v) in [("jobs.keep_for", self.keep_for), ("jobs.kill_grace", self.kill_grace)] {
            if !(v.is_finite() && v >= 0.0) {
                return Some((key, format!("must be a number of seconds, 0 or more (got {v})")));
            }
        }
        None
    }
}

pub struct JobsAgent {
    ddl: Arc<Ddl>,
    /// `<state_dir>/jobs`; each node identity gets a folder in it, so simulated nodes sharing a
    /// state directory keep their jobs apart.
    dir: PathBuf,
    config: JobsConfig,
}

impl JobsAgent {
    pub fn for_config(config: &crate::config::NodeConfig) -> JobsAgent {
        JobsAgent {
            ddl: super::builtin_ddl("jobs", fleet_ddl::builtin::JOBS),
            dir: config.state_dir.join("jobs"),
            config: config.jobs.clone(),
        }
    }

    fn jobs(&self, node: &Arc<dyn AgentContext>) -> Result<Arc<Jobs>, ActionError> {
        let dir = self.dir.join(node.identity());
        Jobs::for_node(&dir, &self.config, node.clone())
            .map_err(|e| ActionError::new(Status::UnknownError, format!("cannot use the jobs directory {}: {e}", dir.display())))
    }
}

/// Loads the node's jobs and starts their scheduler when noded starts, so scheduled jobs run and
/// runs left by a stopped noded are marked lost before any request arrives.
pub fn start(node: Arc<crate::NodeState>) {
    let agent = JobsAgent::for_config(&node.config);
    let ctx: Arc<dyn AgentContext> = node;
    if let Err(e) = agent.jobs(&ctx) {
        tracing::error!("jobs not started: {}", e.message);
    }
}

fn id_of(args: &Map<String, Value>) -> String {
    args.get("id").and_then(Value::as_str).unwrap_or_default().to_string()
}

impl Agent for JobsAgent {
    fn ddl(&self) -> &Ddl {
        &self.ddl
    }

    fn call(&self, node: Arc<dyn AgentContext>, meta: RequestMeta, action: &str, args: Map<String, Value>) -> ActionFuture {
        let jobs = match self.jobs(&node) {
            Ok(j) => j,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let id = id_of(&args);
        let result = match action {
            "run" => create(&*node, &jobs, &meta, args),
            "status" => Ok(json!({ "job": jobs.get(&id).map(|j| j.view()) })),
            "output" => Ok(match jobs.get(&id) {
                None => runner::unknown(&id),
                Some(j) => {
                    let last = j.last.clone().unwrap_or_default();
                    json!({ "state": j.state, "status": last.status, "message": last.message, "data": j.output })
                }
            }),
            "list" => {
                let all = jobs.list();
                Ok(json!({ "count": all.len(), "jobs": all.iter().map(Job::summary).collect::<Vec<_>>() }))
            }
            "cancel" => return Box::pin(async move { jobs.cancel(&id, &meta.caller, &meta.id).await }),
            other => Err(ActionError::new(Status::UnknownAction, format!("unknown action '{other}'"))),
        };
        Box::pin(async move { result })
    }
}

/// `run`: the target action is checked as a direct call would be, then the job is recorded.
fn create(node: &dyn AgentContext, jobs: &Jobs, meta: &RequestMeta, args: Map<String, Value>) -> Result<Value, ActionError> {
    let text = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let number = |k: &str| args.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (agent_name, action) = (text("agent"), text("action"));
    let mut target_args = args.get("args").and_then(Value::as_object).cloned().unwrap_or_default();
    if agent_name == "jobs" {
        return Err(ActionError::invalid("a job cannot run the jobs agent"));
    }
    let agents = node.agents();
    let Some(agent) = agents.get(&agent_name) else {
        let why = format!("unknown agent '{agent_name}' (this node has: {})", agents.names().join(", "));
        return Err(ActionError::new(Status::UnknownAction, why));
    };
    if let Err(e) = fleet_ddl::validate_request(agent.ddl(), &action, &mut target_args) {
        return Err(ActionError::new(crate::node::request::validation_status(&e), e.to_string()));
    }
    let decision = node.policy_decision(&agent_name, &meta.caller, &action);
    let job = Job {
        id: id_of(&args),
        agent: agent_name,
        action,
        args: target_args,
        caller: meta.caller.clone(),
        request_id: meta.id.clone(),
        collective: meta.collective.clone(),
        created: fleet_protocol::now_ms(),
        state: JobState::Queued,
        at: number("at"),
        every: number("every"),
        next_run: 0,
        runs: 0,
        last: None,
        output: Value::Null,
        finished: 0,
    };
    if !decision.allowed {
        node.audit(AuditRecord {
            request_id: meta.id.clone(),
            caller: meta.caller.clone(),
            agent: job.agent.clone(),
            action: job.action.clone(),
            args_digest: args_digest(&job.args),
            decision: AuditDecision::Denied,
            reason: format!("job {} not created: {}", job.id, decision.rule),
            duration: std::time::Duration::ZERO,
        });
        return Err(ActionError::new(Status::Denied, format!("denied by {}", decision.rule)));
    }
    jobs.create(job)
}

#[cfg(test)]
mod tests;
