//! What the inspector shows of a reply (RPC results, Discovery), a whole request (Log) and a
//! node that did not answer: the status and the full message first, then the data.

use fleet_client::format::{utc_datetime, value_text};

use super::pretty::{data_lines, text_lines};
use super::{InspectLine, Inspection, LineKind};
use crate::console::action::ReplyRow;
use crate::console::record::{RequestRecord, RequestState};
use crate::console::widgets::text::ms_text;

/// The DDL action of `agent#action`, if the console has the agent's DDL.
fn ddl_action(agent: &str, action: &str) -> Option<fleet_ddl::Action> {
    fleet_client::ddl::find(agent).ok().and_then(|d| d.action(action).cloned())
}

/// One reply's lines: status, message (every line of it), round trip, then the data.
fn reply_lines(out: &mut Vec<InspectLine>, indent: usize, r: &ReplyRow, act: Option<&fleet_ddl::Action>) {
    let status = if r.status.is_ok() { "ok".to_string() } else { format!("failed ({})", r.status) };
    let kind = if r.status.is_ok() { LineKind::Field } else { LineKind::Error };
    out.push(InspectLine { indent, label: "Status".into(), value: status, kind });
    if !r.message.is_empty() {
        text_lines(out, indent, "Message", &r.message, kind);
    }
    out.push(InspectLine::field(indent, "Round trip", &ms_text(r.ms)));
    if !r.expected {
        out.push(InspectLine { indent, label: "Note".into(), value: "replied but was not discovered".into(), kind: LineKind::Note });
    }
    if r.data.is_null() || r.data.as_object().is_some_and(|m| m.is_empty()) {
        out.push(InspectLine { indent, label: "Data".into(), value: "none".into(), kind: LineKind::Note });
    } else {
        out.push(InspectLine::field(indent, "Data", ""));
        data_lines(out, indent + 1, &r.data, act);
    }
}

/// A reply of `agent#action`.
pub fn reply(agent: &str, action: &str, r: &ReplyRow) -> Inspection {
    let act = ddl_action(agent, action);
    let mut lines = vec![InspectLine::field(0, "Node", &r.sender), InspectLine::field(0, "Request", &format!("{agent}#{action}"))];
    reply_lines(&mut lines, 0, r, act.as_ref());
    Inspection {
        id: format!("reply:{}:{agent}#{action}", r.sender),
        title: format!("{agent}#{action} from {}", r.sender),
        file_stem: format!("{}-{agent}-{action}", r.sender),
        lines,
    }
}

/// A node of a request that has not answered (yet).
pub fn silent(agent: &str, action: &str, node: &str, why: &str) -> Inspection {
    let lines = vec![
        InspectLine::field(0, "Node", node),
        InspectLine::field(0, "Request", &format!("{agent}#{action}")),
        InspectLine { indent: 0, label: "Status".into(), value: why.into(), kind: LineKind::Note },
    ];
    Inspection {
        id: format!("reply:{node}:{agent}#{action}"),
        title: format!("{agent}#{action} to {node}"),
        file_stem: format!("{node}-{agent}-{action}"),
        lines,
    }
}

/// A whole request as the Log keeps it: what was asked of whom, how it went, every reply.
pub fn record(rec: &RequestRecord) -> Inspection {
    let act = ddl_action(&rec.agent, &rec.action);
    let started = rec.started.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut lines = vec![
        InspectLine::field(0, "Request", &rec.what()),
        InspectLine::field(0, "On", &rec.scope.describe()),
        InspectLine::field(0, "Started", &utc_datetime(started)),
    ];
    if let Some(id) = &rec.request_id {
        lines.push(InspectLine::field(0, "Request id", id));
    }
    match &rec.state {
        RequestState::Running => lines.push(InspectLine::note("running ...")),
        RequestState::Done { elapsed_ms } => lines.push(InspectLine::field(0, "Took", &format!("{elapsed_ms:.0} ms"))),
        RequestState::Failed(e) => text_lines(&mut lines, 0, "Failed", e, LineKind::Error),
    }
    if !rec.args.is_empty() {
        lines.push(InspectLine::field(0, "Arguments", ""));
        for (k, v) in &rec.args {
            text_lines(&mut lines, 1, k, &value_text(v), LineKind::Field);
        }
    }
    let mut replies: Vec<&ReplyRow> = rec.replies.iter().collect();
    replies.sort_by(|a, b| a.sender.cmp(&b.sender));
    lines.push(InspectLine::heading(&format!("{} replies: {} ok, {} failed", replies.len(), rec.ok_count(), rec.failed_count())));
    for r in replies {
        lines.push(InspectLine::field(0, &r.sender, ""));
        reply_lines(&mut lines, 1, r, act.as_ref());
    }
    if !rec.no_reply.is_empty() {
        lines.push(InspectLine::heading(&format!("no reply from {}", rec.no_reply.len())));
        for n in &rec.no_reply {
            lines.push(InspectLine::field(1, "-", n));
        }
    }
    let stamp = rec.request_id.as_deref().map(crate::console::rpc::short_id).unwrap_or_default();
    Inspection {
        id: format!("record:{}:{}", rec.what(), stamp),
        title: format!("{} on {}", rec.what(), rec.scope.describe()),
        file_stem: format!("{}-{}-{stamp}", rec.agent, rec.action),
        lines,
    }
}
