//! The Concat view's network work through the client core (the concat agent's DDL, arguments and
//! node states), reported back as `Action::Concat`.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use fleet_client::concat::{self, AGENT, Build, Summary};
use fleet_client::{Client, Outcome, Settings};
use tokio::sync::mpsc::UnboundedSender;

use super::{BuildOutcome, Cmd, Msg, TargetRow};
use crate::console::action::{Action, ReplyRow};
use crate::console::jobs::agent_round;

pub async fn execute(cmd: Cmd, client: &mut Client, settings: &Settings, tx: &UnboundedSender<Action>) {
    let msg = match cmd {
        Cmd::Targets { scope } => {
            let result = agent_round(client, settings, AGENT, "list", concat::list_args(""), &scope.client()).await;
            Msg::Targets(result.map(|o| targets(&o)))
        }
        Cmd::Build { target, scope, dry_run } => {
            if !dry_run {
                tracing::info!(%target, scope = %scope.describe(), "console: building a concat target");
            }
            let started_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
            let started = Instant::now();
            let args = Build { target: target.clone(), dry_run, ..Build::default() }.args();
            let result = agent_round(client, settings, AGENT, "build", args, &scope.client()).await;
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            Msg::Built { target, dry_run, started_ms, result: result.map(|o| outcome(&o, dry_run, elapsed_ms)) }
        }
    };
    let _ = tx.send(Action::Concat(msg));
}

/// Every target the nodes listed, with the nodes that have fragments for it.
fn targets(o: &Outcome) -> Vec<TargetRow> {
    let mut by_target: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in o.replies.iter().filter(|r| r.reply.status.is_ok()) {
        for t in r.reply.data["targets"].as_array().into_iter().flatten() {
            if let Some(target) = t["target"].as_str() {
                by_target.entry(target.to_string()).or_default().push(r.reply.sender.clone());
            }
        }
    }
    by_target
        .into_iter()
        .map(|(target, mut nodes)| {
            nodes.sort();
            TargetRow { target, nodes }
        })
        .collect()
}

/// A build round read by the client core, and its replies as the Log keeps them.
fn outcome(o: &Outcome, dry_run: bool, elapsed_ms: f64) -> BuildOutcome {
    let mut results = concat::results(o);
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let mut replies: Vec<ReplyRow> = o
        .replies
        .iter()
        .zip(concat::results(o))
        .map(|(r, (_, result))| {
            let mut row = ReplyRow::new(&r.reply.sender, r.reply.status, &result.headline(dry_run), r.time_ms);
            row.data = r.reply.data.clone();
            row
        })
        .collect();
    replies.sort_by(|a, b| a.sender.cmp(&b.sender));
    BuildOutcome { results, summary: Summary::of(o), replies, no_reply: o.no_reply.clone(), elapsed_ms }
}
