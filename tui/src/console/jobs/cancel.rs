//! Cancelling a job from the Jobs view: a confirmation that names the job and every node where it
//! has not ended (only those are asked), then `jobs#cancel` there; the outcome goes to the footer
//! and, with every node's reply, to the Log.

use std::time::{Duration, UNIX_EPOCH};

use fleet_client::nodeset;

use super::{CancelOutcome, Cmd, JobsPanel, Msg};
use crate::console::action::{Action, Confirm, Notice, ReplyRow, Scope};
use crate::console::record::{RequestKey, RequestRecord};

/// Nodes listed one per line in the confirmation; more are summed up in one line.
const CONFIRM_LINES: usize = 8;

impl JobsPanel {
    /// `x`: asks before cancelling the selected job on the nodes where it has not ended.
    pub(super) fn confirm_cancel(&mut self) -> Option<Action> {
        if self.read_only {
            return Some(Notice::error("read-only: cancelling jobs is disabled"));
        }
        let Some(job) = self.selected() else {
            return Some(Notice::error("no job selected"));
        };
        if self.cancelling.contains(&job.id) {
            return Some(Notice::error(format!("job {} is being cancelled already", job.id)));
        }
        let open: Vec<(&String, &str)> = job.nodes.iter().filter(|(_, r)| !r.is_final()).map(|(n, r)| (n, r.state.as_str())).collect();
        if open.is_empty() {
            return Some(Notice::info(format!("job {} has ended on every node: nothing to cancel", job.id)));
        }
        let mut lines = vec![format!("Cancel job {} ({}#{}, by {})", job.id, job.agent, job.action, job.caller)];
        lines.push(format!("on {} node(s) where it has not ended:", open.len()));
        for (node, state) in open.iter().take(CONFIRM_LINES) {
            lines.push(format!("  {node:<20} {state}"));
        }
        if open.len() > CONFIRM_LINES {
            let rest: Vec<&str> = open[CONFIRM_LINES..].iter().map(|(n, _)| n.as_str()).collect();
            lines.push(format!("  and {} more: {}", rest.len(), nodeset::fold(&rest)));
        }
        lines.push("A running job's whole process tree is killed (TERM, then KILL).".into());
        let ended = job.nodes.len() - open.len();
        if ended > 0 {
            lines.push(format!("{ended} node(s) where it has ended are left alone."));
        }
        let nodes = open.iter().map(|(n, _)| (*n).clone()).collect();
        Some(Action::Confirm(Box::new(Confirm {
            title: format!("Cancel job {}?", job.id),
            lines,
            yes: Action::Jobs(Msg::CancelConfirmed { id: job.id.clone(), nodes }),
        })))
    }

    pub(super) fn start_cancel(&mut self, id: String, nodes: Vec<String>) -> Option<Action> {
        if self.read_only {
            return Some(Notice::error("read-only: cancelling jobs is disabled"));
        }
        self.cancelling.push(id.clone());
        let what = format!("cancelling job {id} on {} ...", nodeset::fold(&nodes));
        Some(Action::Batch(vec![Self::net(Cmd::Cancel { id, nodes }), Notice::info(what)]))
    }

    /// The cancel came back: a line in the footer, the replies in the Log, and the list again.
    pub(super) fn on_cancelled(
        &mut self,
        id: String,
        started_ms: u64,
        elapsed_ms: f64,
        result: Result<CancelOutcome, String>,
    ) -> Option<Action> {
        self.cancelling.retain(|c| *c != id);
        let notice = match &result {
            Ok(outcome) => {
                let ok = outcome.replies.iter().filter(|r| r.status.is_ok()).count();
                let failed = outcome.replies.len() - ok;
                let mut text = format!("job {id} cancelled on {ok} node(s)");
                if failed > 0 {
                    text.push_str(&format!(", {failed} failed"));
                }
                if !outcome.no_reply.is_empty() {
                    text.push_str(&format!(", no reply from {}", nodeset::fold(&outcome.no_reply)));
                }
                if let [one] = outcome.replies.as_slice() {
                    text.push_str(&format!(": {}", one.message));
                }
                if failed == 0 && outcome.no_reply.is_empty() { Notice::info(text) } else { Notice::error(text) }
            }
            Err(e) => Notice::error(format!("cancelling job {id} FAILED: {e}")),
        };
        let result = result.map(|o| (o.replies, o.no_reply));
        let record = finished_record("jobs", "cancel", fleet_client::jobs::id_args(&id), started_ms, elapsed_ms, result);
        // What the nodes say now.
        self.refreshing_since = None;
        let follow = [Some(notice), Some(Action::Logged(Box::new(record))), self.start_refresh()];
        Some(Action::Batch(follow.into_iter().flatten().collect()))
    }
}

/// A request that is over as the Log keeps it: `agent#action` with `args`, sent to the nodes that
/// replied or did not, with every reply; or why it failed as a whole.
pub(crate) fn finished_record(
    agent: &str,
    action: &str,
    args: serde_json::Map<String, serde_json::Value>,
    started_ms: u64,
    elapsed_ms: f64,
    result: Result<(Vec<ReplyRow>, Vec<String>), String>,
) -> RequestRecord {
    let started = UNIX_EPOCH + Duration::from_millis(started_ms);
    let nodes = match &result {
        Ok((replies, no_reply)) => replies.iter().map(|r| r.sender.clone()).chain(no_reply.iter().cloned()).collect(),
        Err(_) => Vec::new(),
    };
    let mut record =
        RequestRecord::new(RequestKey::Done(0), agent, action, args, Scope { filter: String::new(), targets: Some(nodes) }, started);
    match result {
        Ok((replies, no_reply)) => {
            record.finish(replies, None, elapsed_ms);
            record.no_reply = no_reply;
        }
        Err(e) => record.finish(Vec::new(), Some(&e), elapsed_ms),
    }
    record
}
