//! One job as it is kept on disk and shown to callers: what it runs, for whom, when, and how its
//! last run went. Times are ms since the epoch.

pub use fleet_protocol::jobs::LastRun;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Due now, waiting for a free slot.
    Queued,
    /// Waiting for its time (`--at`), or between two runs of a repeating job (`--every`).
    Scheduled,
    Running,
    /// Ran once and its action replied OK.
    Ok,
    /// Ran once and its action failed, timed out or could not start.
    Failed,
    Cancelled,
    /// Was running when noded stopped: how it ended is unknown, so it is never reported as ok.
    Lost,
}

impl JobState {
    /// Whether the job will not run again.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Ok | JobState::Failed | JobState::Cancelled | JobState::Lost)
    }

    pub fn name(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Scheduled => "scheduled",
            JobState::Running => "running",
            JobState::Ok => "ok",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Lost => "lost",
        }
    }
}

/// One job on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub agent: String,
    pub action: String,
    pub args: Map<String, Value>,
    /// Who created the job: every run acts for this caller.
    pub caller: String,
    /// The request that created the job.
    pub request_id: String,
    pub collective: String,
    pub created: u64,
    pub state: JobState,
    /// The first run's time as asked (0: at once).
    pub at: u64,
    /// Seconds between two starts; 0 runs once.
    pub every: u64,
    /// When the job runs next; 0 when it will not.
    pub next_run: u64,
    /// Runs started so far.
    pub runs: u64,
    pub last: Option<LastRun>,
    /// What the last finished run returned.
    #[serde(default)]
    pub output: Value,
    /// When the job reached a final state; what retention by age counts from.
    #[serde(default)]
    pub finished: u64,
}

impl Job {
    /// The job as `status` shows it: everything but the output.
    pub fn view(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("a job always serializes");
        if let Some(map) = v.as_object_mut() {
            map.remove("output");
        }
        v
    }

    /// The job as `list` shows it: no arguments and no output, which may be large.
    pub fn summary(&self) -> Value {
        json!({
            "id": self.id,
            "agent": self.agent,
            "action": self.action,
            "caller": self.caller,
            "created": self.created,
            "state": self.state,
            "every": self.every,
            "next_run": self.next_run,
            "runs": self.runs,
            "last": self.last,
        })
    }

    /// The request id a run carries to its agent; an external agent's request file holds it, which
    /// is how the run's processes are found (see `tree.rs`).
    pub fn run_request_id(&self) -> String {
        format!("job-{}-{}", self.id, self.runs)
    }
}
