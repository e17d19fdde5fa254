//! The Jobs view's network work: [`Cmd`]s run by the console's network task through the client
//! core (the jobs agent's DDL, the request spec, the round, the rows read back), reported back
//! as `Action::Jobs`.

use std::time::Instant;

use fleet_client::jobs::{self, list_of};
use fleet_client::{Client, Outcome, Settings, round};
use serde_json::{Map, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::{CancelOutcome, Cmd, Listing, Msg, NodeOutput, ms_of};
use crate::console::action::{Action, ReplyRow};

/// One round of `agent#action` with `args` on `scope`'s nodes that have `agent`: the arguments
/// checked against the agent's DDL, whose timeout the round gets, as the CLI does it.
pub async fn agent_round(
    client: &mut Client,
    settings: &Settings,
    agent: &str,
    action: &str,
    mut args: Map<String, Value>,
    scope: &fleet_client::Scope,
) -> Result<Outcome, String> {
    let (_, timeout) = fleet_client::ddl::checked(agent, action, &mut args).map_err(|e| e.to_string())?;
    let spec = settings.spec(agent, action, args, &scope.with_agent(agent), timeout);
    round::run(client, &spec, |_| {}).await.map_err(|e| e.to_string())
}

/// Runs one command with the console's `settings` (collective, ttl, timeouts) and reports on `tx`.
pub async fn execute(cmd: Cmd, client: &mut Client, settings: &Settings, tx: &UnboundedSender<Action>) {
    let msg = match cmd {
        Cmd::List { scope } => {
            let result = agent_round(client, settings, jobs::AGENT, "list", Map::new(), &scope.client()).await;
            let result = result.map(|o| Listing { jobs: list_of(&o), answered: o.replies.len(), no_reply: o.no_reply });
            Msg::Listed { at_ms: ms_of(std::time::SystemTime::now()), result }
        }
        Cmd::Output { id, nodes } => {
            let scope = fleet_client::Scope::nodes(nodes);
            let result = agent_round(client, settings, jobs::AGENT, "output", jobs::id_args(&id), &scope).await;
            Msg::OutputFetched { id, result: result.map(|o| outputs(&o)) }
        }
        Cmd::Cancel { id, nodes } => {
            tracing::info!(job = %id, ?nodes, "console: cancelling a job");
            let (started_ms, started) = (ms_of(std::time::SystemTime::now()), Instant::now());
            let scope = fleet_client::Scope::nodes(nodes);
            let result = agent_round(client, settings, jobs::AGENT, "cancel", jobs::id_args(&id), &scope).await;
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            Msg::Cancelled { id, started_ms, elapsed_ms, result: result.map(|o| cancel_outcome(&o)) }
        }
    };
    // The console may be quitting: nobody to tell then.
    let _ = tx.send(Action::Jobs(msg));
}

/// Each node's `jobs#output` reply, in node order.
fn outputs(o: &Outcome) -> Vec<NodeOutput> {
    let mut out: Vec<NodeOutput> = o
        .replies
        .iter()
        .map(|r| {
            let d = &r.reply.data;
            let headline = if !r.reply.status.is_ok() {
                format!("{}: {}", r.reply.status, r.reply.status_msg)
            } else {
                let status = d["status"].as_str().filter(|s| !s.is_empty()).unwrap_or("no run ended yet");
                let message = d["message"].as_str().filter(|m| !m.is_empty() && *m != "OK").map(|m| format!(": {m}")).unwrap_or_default();
                format!("{}, {status}{message}", d["state"].as_str().unwrap_or("?"))
            };
            NodeOutput { node: r.reply.sender.clone(), headline, data: d["data"].clone() }
        })
        .collect();
    out.extend(o.no_reply.iter().map(|n| NodeOutput { node: n.clone(), headline: "no reply".into(), data: Value::Null }));
    out.sort_by(|a, b| a.node.cmp(&b.node));
    out
}

/// Each node's `jobs#cancel` reply as the Log keeps it (the node's own words on what it did),
/// and who did not answer.
fn cancel_outcome(o: &Outcome) -> CancelOutcome {
    let mut rows: Vec<ReplyRow> = o
        .replies
        .iter()
        .map(|r| {
            let message = r.reply.data["message"].as_str().filter(|m| !m.is_empty()).unwrap_or(&r.reply.status_msg);
            let mut row = ReplyRow::new(&r.reply.sender, r.reply.status, message, r.time_ms);
            row.data = r.reply.data.clone();
            row
        })
        .collect();
    rows.sort_by(|a, b| a.sender.cmp(&b.sender));
    CancelOutcome { replies: rows, no_reply: o.no_reply.clone() }
}
