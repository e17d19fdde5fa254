//! A node's jobs while noded runs: the records (in memory, written through to the store), the
//! runs in flight, and the scheduler that starts due jobs, at most `max_running` at a time.
//!
//! One [`Jobs`] per jobs directory in the process, kept in a registry rather than in the agent:
//! an agent reload builds a new jobs agent, and the runs in flight must outlive it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use fleet_protocol::{Status, now_ms};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tracing::{info, warn};

use super::JobsConfig;
use super::record::{Job, JobState, LastRun};
use super::store::{Store, expired};
use super::tree;
use crate::agents::{ActionError, ActionResult, AgentContext, RequestMeta};
use crate::audit::{AuditDecision, AuditRecord, args_digest};

/// Longest the scheduler sleeps without being woken: a clock that jumps is noticed within it.
const MAX_NAP: Duration = Duration::from_secs(30);

/// A node's jobs.
pub struct Jobs {
    store: Store,
    config: JobsConfig,
    node: Arc<dyn AgentContext>,
    state: Mutex<State>,
    /// Wakes the scheduler: a job was created, a run ended, a slot came free.
    wake: Notify,
}

#[derive(Default)]
struct State {
    jobs: BTreeMap<String, Job>,
    /// The runs in flight, by job id. Whoever takes a job's entry out (its end, or a cancel)
    /// writes how the run ended; the other finds it gone and leaves the record alone.
    running: HashMap<String, AbortHandle>,
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Jobs>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Arc<Jobs>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

impl Jobs {
    /// The jobs kept in `dir`. The first call in this process loads them, marks the runs the
    /// previous noded left behind as lost (killing any of their processes still alive), applies
    /// retention, and starts the scheduler on the current tokio runtime.
    pub fn for_node(dir: &Path, config: &JobsConfig, node: Arc<dyn AgentContext>) -> std::io::Result<Arc<Jobs>> {
        let mut all = registry().lock().expect("jobs registry lock");
        if let Some(jobs) = all.get(dir) {
            return Ok(jobs.clone());
        }
        let store = Store::open(dir)?;
        let loaded = store.load();
        let jobs = Arc::new(Jobs { store, config: config.clone(), node, state: Mutex::new(State::default()), wake: Notify::new() });
        jobs.state.lock().expect("jobs lock").jobs = loaded;
        jobs.recover();
        jobs.prune();
        info!(dir = %dir.display(), jobs = jobs.state.lock().expect("jobs lock").jobs.len(), "jobs loaded");
        tokio::spawn(jobs.clone().schedule());
        all.insert(dir.to_path_buf(), jobs.clone());
        Ok(jobs)
    }

    /// Runs that were in flight when the previous noded stopped: their end is unknown, so they are
    /// lost, never ok. A repeating job keeps its schedule, with the lost run as its last.
    fn recover(&self) {
        let now = now_ms();
        let mut st = self.state.lock().expect("jobs lock");
        for job in st.jobs.values_mut().filter(|j| j.state == JobState::Running) {
            let leftovers = tree::find(&job.run_request_id());
            let mut message = "noded stopped while the job was running".to_string();
            if !leftovers.is_empty() {
                for m in &leftovers {
                    crate::agents::process::kill_one(m.pid, m.start_time, rustix::process::Signal::KILL);
                }
                message.push_str(&format!("; {} leftover process(es) killed", leftovers.len()));
            }
            let last = job.last.get_or_insert_with(LastRun::default);
            last.ended = now;
            last.status = "lost".into();
            last.statuscode = None;
            last.message = message.clone();
            if job.every > 0 {
                job.state = JobState::Scheduled;
            } else {
                job.state = JobState::Lost;
                job.finished = now;
                job.next_run = 0;
            }
            warn!(job = %job.id, "{message}: marked lost");
            audit(&*self.node, job, &job.caller, &job.run_request_id(), format!("job {} lost: {message}", job.id), Duration::ZERO);
            self.store.save(job);
        }
    }

    /// Applies retention by age and count.
    fn prune(&self) {
        let mut st = self.state.lock().expect("jobs lock");
        for id in expired(&st.jobs, &self.config, now_ms()) {
            st.jobs.remove(&id);
            self.store.remove(&id);
        }
    }

    /// Records a new job (already validated and authorized) and wakes the scheduler.
    pub fn create(&self, mut job: Job) -> ActionResult {
        let now = now_ms();
        let mut st = self.state.lock().expect("jobs lock");
        if st.jobs.contains_key(&job.id) {
            return Err(ActionError::invalid(format!("a job with id '{}' already exists on this node", job.id)));
        }
        if st.jobs.len() >= self.config.max_kept {
            drop(st);
            self.prune();
            st = self.state.lock().expect("jobs lock");
            if st.jobs.len() >= self.config.max_kept {
                return Err(ActionError::aborted(format!(
                    "this node already keeps {} jobs (jobs.max_kept) that may still run; cancel some first",
                    st.jobs.len()
                )));
            }
        }
        (job.state, job.next_run) = if job.at > now { (JobState::Scheduled, job.at) } else { (JobState::Queued, now) };
        let when = if job.at > now { format!("at {}", job.at) } else { "now".to_string() };
        let every = if job.every > 0 { format!(", every {} s", job.every) } else { String::new() };
        audit(&*self.node, &job, &job.caller, &job.request_id, format!("job {} created: runs {when}{every}", job.id), Duration::ZERO);
        self.store.save(&job);
        let reply = json!({ "id": job.id, "state": job.state, "next_run": job.next_run });
        st.jobs.insert(job.id.clone(), job);
        drop(st);
        self.wake.notify_one();
        Ok(reply)
    }

    pub fn get(&self, id: &str) -> Option<Job> {
        self.state.lock().expect("jobs lock").jobs.get(id).cloned()
    }

    /// Every job, newest first.
    pub fn list(&self) -> Vec<Job> {
        let mut jobs: Vec<Job> = self.state.lock().expect("jobs lock").jobs.values().cloned().collect();
        jobs.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        jobs
    }

    /// Starts due jobs while slots are free; returns when the next waiting job is due.
    fn start_due(self: &Arc<Self>) -> Option<u64> {
        let now = now_ms();
        let mut st = self.state.lock().expect("jobs lock");
        let mut due: Vec<(u64, String)> = st
            .jobs
            .values()
            .filter(|j| matches!(j.state, JobState::Queued | JobState::Scheduled) && j.next_run <= now)
            .map(|j| (j.next_run, j.id.clone()))
            .collect();
        due.sort();
        for (_, id) in due {
            if st.running.len() >= self.config.max_running {
                // Due but no slot: say so rather than "scheduled".
                let job = st.jobs.get_mut(&id).expect("due job");
                if job.state != JobState::Queued {
                    job.state = JobState::Queued;
                    self.store.save(job);
                }
                continue;
            }
            self.start(&mut st, &id, now);
        }
        st.jobs.values().filter(|j| j.state == JobState::Scheduled || j.state == JobState::Queued).map(|j| j.next_run).min()
    }

    /// Starts one run of `id`: the record says running before the action is called.
    fn start(self: &Arc<Self>, st: &mut State, id: &str, now: u64) {
        let job = st.jobs.get_mut(id).expect("job to start");
        job.state = JobState::Running;
        job.runs += 1;
        job.last = Some(LastRun { started: now, ..LastRun::default() });
        if job.every > 0 {
            // The next start counts from this one's time; missed starts are skipped, not piled up.
            let step = job.every * 1000;
            job.next_run = (job.next_run + step).max(now + step);
        } else {
            job.next_run = 0;
        }
        let run_id = job.run_request_id();
        audit(&*self.node, job, &job.caller, &run_id, format!("job {} started (run {})", job.id, job.runs), Duration::ZERO);
        self.store.save(job);
        let job = job.clone();
        let Some(agent) = self.node.agents().get(&job.agent).cloned() else {
            let why = format!("agent '{}' is no longer loaded on this node", job.agent);
            let jobs = self.clone();
            // Ended through the same path as any run, once the lock is released.
            let handle =
                tokio::spawn(async move { jobs.finish(&job.id, Err(ActionError::new(Status::UnknownAction, why)), Instant::now()) });
            st.running.insert(id.to_string(), handle.abort_handle());
            return;
        };
        let timeout = Duration::from_secs(agent.ddl().metadata.timeout.max(1));
        let meta = RequestMeta {
            id: run_id,
            caller: job.caller.clone(),
            collective: job.collective.clone(),
            msgtime: now,
            ttl: timeout.as_secs() as u32,
        };
        let call = agent.call(self.node.clone(), meta, &job.action, job.args.clone());
        let jobs = self.clone();
        info!(job = %job.id, agent = %job.agent, action = %job.action, caller = %job.caller, run = job.runs, "job started");
        let handle = tokio::spawn(async move {
            let started = Instant::now();
            let result = match tokio::time::timeout(timeout, call).await {
                Ok(r) => r,
                Err(_) => Err(ActionError::aborted(format!("timed out after {} s", timeout.as_secs()))),
            };
            jobs.finish(&job.id, result, started);
        });
        st.running.insert(id.to_string(), handle.abort_handle());
    }

    /// Records how a run ended, unless a cancel already did.
    fn finish(&self, id: &str, result: ActionResult, started: Instant) {
        let now = now_ms();
        let mut st = self.state.lock().expect("jobs lock");
        if st.running.remove(id).is_none() {
            return;
        }
        let Some(job) = st.jobs.get_mut(id) else { return };
        let (status, message, data) = match result {
            Ok(data) => (Status::Ok, "OK".to_string(), data),
            Err(e) => (e.status, e.message, e.data),
        };
        let last = job.last.get_or_insert_with(LastRun::default);
        last.ended = now;
        last.status = status.to_string();
        last.statuscode = Some(status.code());
        last.message = message.clone();
        job.output = self.capped(data);
        if job.every > 0 {
            job.state = JobState::Scheduled;
        } else {
            job.state = if status == Status::Ok { JobState::Ok } else { JobState::Failed };
            job.finished = now;
        }
        info!(job = %job.id, status = %status, "job ended");
        let reason = format!("job {} ended (run {}): {status}: {message}", job.id, job.runs);
        audit(&*self.node, job, &job.caller, &job.run_request_id(), reason, started.elapsed());
        self.store.save(job);
        drop(st);
        self.prune();
        self.wake.notify_one();
    }

    /// The output kept for a run: its data, or a note when it is over `max_output_bytes`.
    fn capped(&self, data: Value) -> Value {
        let size = serde_json::to_vec(&data).map(|b| b.len()).unwrap_or(0);
        if size <= self.config.max_output_bytes {
            return data;
        }
        json!({ "truncated": format!("the output was {size} bytes, over this node's jobs.max_output_bytes of {}", self.config.max_output_bytes) })
    }

    /// Cancels `id` for `caller`: a waiting job will not run; a running one has its process tree
    /// killed (TERM, `kill_grace`, KILL) and its run stopped. A finished job is left as it is.
    pub async fn cancel(&self, id: &str, caller: &str, request_id: &str) -> ActionResult {
        let now = now_ms();
        let (was, job, handle) = {
            let mut st = self.state.lock().expect("jobs lock");
            let handle = st.running.remove(id);
            let Some(job) = st.jobs.get_mut(id) else { return Ok(unknown(id)) };
            let was = job.state;
            if was.is_final() {
                let message = format!("the job had already ended ({}); nothing to cancel", was.name());
                return Ok(json!({ "state": was, "was": was, "killed": [], "message": message }));
            }
            job.state = JobState::Cancelled;
            job.finished = now;
            job.next_run = 0;
            if was == JobState::Running
                && let Some(last) = job.last.as_mut()
            {
                last.ended = now;
                last.status = "cancelled".into();
                last.statuscode = None;
                last.message = format!("cancelled by {caller}");
            }
            self.store.save(job);
            (was, job.clone(), handle)
        };
        let mut killed = Vec::new();
        let message = if was == JobState::Running {
            let run_id = job.run_request_id();
            killed = tree::kill(&run_id, tree::find(&run_id), Duration::from_secs_f64(self.config.kill_grace)).await;
            // The run's future goes only after its processes: dropping it first would have the
            // external agent KILL its group at once, without the TERM.
            if let Some(h) = handle {
                h.abort();
            }
            format!("cancelled while running: {}", tree::describe(&killed))
        } else {
            format!("cancelled while {}: it will not run", was.name())
        };
        info!(job = %id, caller = %caller, "{message}");
        audit(&*self.node, &job, caller, request_id, format!("job {id} cancelled by {caller}: {message}"), Duration::ZERO);
        self.wake.notify_one();
        Ok(json!({ "state": JobState::Cancelled, "was": was, "killed": killed, "message": message }))
    }

    /// Starts due jobs, then sleeps until the next is due or something changes. Runs as long as
    /// the process.
    async fn schedule(self: Arc<Self>) {
        loop {
            let next = self.start_due();
            let nap = next.map_or(MAX_NAP, |t| Duration::from_millis(t.saturating_sub(now_ms()))).min(MAX_NAP);
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }
}

/// The reply about a job this node does not have: not an error, since a job usually runs on a
/// subset of the nodes asked.
pub fn unknown(id: &str) -> Value {
    json!({ "job": null, "state": "unknown", "was": "unknown", "killed": [], "message": format!("no job '{id}' on this node") })
}

/// One audit line about a job: under its target agent and action, as the direct call would be.
fn audit(node: &dyn AgentContext, job: &Job, caller: &str, request_id: &str, reason: String, duration: Duration) {
    node.audit(AuditRecord {
        request_id: request_id.to_string(),
        caller: caller.to_string(),
        agent: job.agent.clone(),
        action: job.action.clone(),
        args_digest: args_digest(&job.args),
        decision: AuditDecision::Allowed,
        reason,
        duration,
    });
}
