//! Building a target from the Concat view: a confirmation from the last dry run (the nodes whose
//! file would change are built; the nodes in sync or failed are named and left alone), then
//! `concat#build` on those nodes; the outcome goes to the footer and, with every reply, to the Log.

use fleet_client::concat::{self, Build, State};
use fleet_client::nodeset;

use super::{BuildOutcome, Cmd, ConcatView, Msg, Opened};
use crate::console::action::{Action, Confirm, Notice, Scope};
use crate::console::jobs::finished_record;
use crate::console::record::RequestRecord;

impl ConcatView {
    /// `b`: asks before building the open target where its dry run said it would change.
    pub(super) fn confirm_build(&mut self) -> Option<Action> {
        if self.read_only {
            return Some(Notice::error("read-only: building is disabled"));
        }
        let Some(opened) = &self.opened else {
            return Some(Notice::error("open a target first (enter runs its dry run)"));
        };
        if self.building {
            return Some(Notice::error(format!("{} is being built already", opened.target)));
        }
        if !opened.dry_run {
            return Some(Notice::error("these are a build's results: r runs the dry run again first"));
        }
        let results = self.results();
        if results.is_empty() {
            return Some(Notice::error("no dry run to build from yet"));
        }
        let nodes_in = |states: &[State]| -> Vec<&str> {
            results.iter().filter(|(_, r)| states.contains(&r.state)).map(|(n, _)| n.as_str()).collect()
        };
        let to_build = nodes_in(&[State::Changed, State::AttributesOnly]);
        if to_build.is_empty() {
            return Some(Notice::info(format!("{}: every node is in sync or failed; nothing to build", opened.target)));
        }
        let mut lines = vec![format!("Write {} on {} node(s):", opened.target, to_build.len())];
        let groups = [
            ("content changes", State::Changed),
            ("owner, group or mode only", State::AttributesOnly),
            ("in sync, left alone", State::InSync),
            ("failed the dry run, not asked", State::Failed),
        ];
        for (label, state) in groups {
            let nodes = nodes_in(&[state]);
            if !nodes.is_empty() {
                lines.push(format!("  {label}: {} ({})", nodeset::fold(&nodes), nodes.len()));
            }
        }
        lines.push("Each node writes the file atomically from its own fragments.".into());
        let nodes = to_build.iter().map(|n| n.to_string()).collect();
        Some(Action::Confirm(Box::new(Confirm {
            title: format!("Build {}?", opened.target),
            lines,
            yes: Action::Concat(Msg::BuildConfirmed { target: opened.target.clone(), nodes }),
        })))
    }

    pub(super) fn start_build(&mut self, target: String, nodes: Vec<String>) -> Option<Action> {
        if self.read_only {
            return Some(Notice::error("read-only: building is disabled"));
        }
        self.building = true;
        let what = format!("building {target} on {} ...", nodeset::fold(&nodes));
        let scope = Scope { filter: String::new(), targets: Some(nodes) };
        Some(Action::Batch(vec![Self::net(Cmd::Build { target, scope, dry_run: false }), Notice::info(what)]))
    }

    /// A round came back. A dry run fills the node list; a build replaces it with what was done,
    /// says so in the footer and goes to the Log.
    pub(super) fn on_built(
        &mut self,
        target: String,
        dry_run: bool,
        started_ms: u64,
        result: Result<BuildOutcome, String>,
    ) -> Option<Action> {
        if !dry_run {
            self.building = false;
        }
        let record = (!dry_run).then(|| build_record(&target, started_ms, &result));
        let notice = match (&result, dry_run) {
            (Err(e), true) => Notice::error(format!("dry run of {target} failed: {e}")),
            (Err(e), false) => Notice::error(format!("building {target} FAILED: {e}")),
            (Ok(o), true) => Notice::info(format!("{target}: {} (dry run: nothing written)", o.summary.line(true))),
            (Ok(o), false) if o.summary.failed + o.summary.no_reply > 0 => Notice::error(format!("{target}: {}", o.summary.line(false))),
            (Ok(o), false) => Notice::info(format!("{target}: {}", o.summary.line(false))),
        };
        // The answer of a target no longer open only goes to the Log.
        if let Some(o) = self.opened.as_mut().filter(|o| o.target == target) {
            *o = Opened { target, dry_run, outcome: Some(result), node: o.node, diff: None };
        }
        let follow = [Some(notice), record.map(|r| Action::Logged(Box::new(r)))];
        Some(Action::Batch(follow.into_iter().flatten().collect()))
    }
}

/// A build as the Log keeps it: `concat#build` on the nodes asked, each node's reply.
fn build_record(target: &str, started_ms: u64, result: &Result<BuildOutcome, String>) -> RequestRecord {
    let args = Build { target: target.to_string(), ..Build::default() }.args();
    let elapsed_ms = result.as_ref().map_or(0.0, |o| o.elapsed_ms);
    let result = result.as_ref().map(|o| (o.replies.clone(), o.no_reply.clone())).map_err(Clone::clone);
    finished_record(concat::AGENT, "build", args, started_ms, elapsed_ms, result)
}
