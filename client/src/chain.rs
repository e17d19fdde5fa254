//! Chaining one request's results into the next: identities read back from a nodes list or from
//! fleet's own `--json`/`--jsonl` output ([`identities`]), a filter on replies written in the
//! discovery filter's language ([`ReplyFilter`]), and the nodes that were ok, failed or gave no
//! reply ([`Results`]), to write one per line for the next command.

use std::collections::BTreeSet;

use fleet_protocol::{FilterExpr, NodeView, Reply, Status};
use serde_json::{Value, json};

use crate::error::{ClientError, Result};
use crate::round::Outcome;

/// The node identities in `text`: fleet's `--json` document (its replies' senders, or a list of
/// names as `discover --json` prints), `--jsonl` lines (each reply's `sender`, a process row's
/// `host`, a discovered `identity`; summary lines are skipped), or one name per line (`#` starts
/// a comment). Each identity once, in the order first seen.
pub fn identities(text: &str) -> Vec<String> {
    let trimmed = text.trim_start();
    let mut out: Vec<String> = Vec::new();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(trimmed) {
            Ok(doc) => collect(&doc, &mut out),
            // Not one document: JSON lines.
            Err(_) => {
                for line in trimmed.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    if let Ok(v) = serde_json::from_str::<Value>(line) {
                        collect(&v, &mut out);
                    }
                }
            }
        }
    } else {
        out = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect();
    }
    let mut seen = BTreeSet::new();
    out.retain(|n| seen.insert(n.clone()));
    out
}

/// The identities one JSON value names: a name, a list, a reply, a process row, or a whole
/// `--json` document with its `replies`.
fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if !s.trim().is_empty() => out.push(s.trim().to_string()),
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        Value::Object(m) => {
            if let Some(replies) = m.get("replies").filter(|r| r.is_array()) {
                collect(replies, out);
            } else if let Some(name) = ["sender", "identity", "host"].iter().find_map(|k| m.get(*k).and_then(Value::as_str)) {
                out.push(name.to_string());
            }
        }
        _ => {}
    }
}

/// The status as `--filter-replies` names it: `ok`, `aborted`, `unknown_action`, `missing_data`,
/// `invalid_data`, `unknown_error`, `denied`.
pub fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Aborted => "aborted",
        Status::UnknownAction => "unknown_action",
        Status::MissingData => "missing_data",
        Status::InvalidData => "invalid_data",
        Status::UnknownError => "unknown_error",
        Status::Denied => "denied",
    }
}

/// `--filter-replies 'status=ok and data.exists=true'`: the discovery filter's compound language
/// evaluated against each reply, whose fields stand in for facts: `sender`, `status` (see
/// [`status_word`]), `status_code`, `status_msg` and `data.*`. `identity=` matches the sender.
#[derive(Debug, Clone)]
pub struct ReplyFilter {
    text: String,
    expr: FilterExpr,
}

impl ReplyFilter {
    pub fn parse(text: &str) -> Result<ReplyFilter> {
        let expr = fleet_protocol::filter::parse_compound(text).map_err(|e| ClientError::Input(format!("--filter-replies: {e}")))?;
        if expr.has_data_terms() {
            return Err(ClientError::input(format!("--filter-replies '{text}': data functions are answered by nodes, not by replies")));
        }
        Ok(ReplyFilter { text: text.to_string(), expr })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, r: &Reply) -> bool {
        let fields = json!({
            "sender": r.sender, "status": status_word(r.status), "status_code": r.status.code(),
            "status_msg": r.status_msg, "data": r.data,
        });
        self.expr.matches(&NodeView { identity: &r.sender, facts: &fields, classes: &[], agents: Vec::new() })
    }

    /// Keeps only the matching replies of `o`; returns how many were left out.
    pub fn apply(&self, o: &mut Outcome) -> usize {
        let before = o.replies.len();
        o.replies.retain(|r| self.matches(&r.reply));
        before - o.replies.len()
    }
}

/// Who was ok, who failed and who gave no reply (or is down), sorted: what `--ok-to`,
/// `--failed-to` and `--no-reply-to` write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Results {
    pub ok: Vec<String>,
    pub failed: Vec<String>,
    pub no_reply: Vec<String>,
}

impl Results {
    pub fn of(o: &Outcome) -> Results {
        let sorted = |it: &mut dyn Iterator<Item = String>| -> Vec<String> { it.collect::<BTreeSet<_>>().into_iter().collect() };
        let replied = |ok: bool| o.replies.iter().filter(move |r| r.reply.status.is_ok() == ok).map(|r| r.reply.sender.clone());
        Results {
            ok: sorted(&mut replied(true)),
            failed: sorted(&mut replied(false)),
            no_reply: sorted(&mut o.no_reply.iter().cloned().chain(o.down.iter().map(|d| d.identity.clone()))),
        }
    }
}

/// Writes identities one per line to `path` (an empty file when there are none).
pub fn write_identities(path: &std::path::Path, nodes: &[String]) -> Result<()> {
    let text: String = nodes.iter().map(|n| format!("{n}\n")).collect();
    std::fs::write(path, text).map_err(|e| ClientError::io(format!("cannot write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_from_lines_json_and_json_lines() {
        assert_eq!(identities("web-01\n# comment\n\n web-02 \nweb-01\n"), ["web-01", "web-02"]);
        let doc = r#"{"request_id": "r", "replies": [{"sender": "a", "status": "Ok"}, {"sender": "b"}], "no_reply": ["c"]}"#;
        assert_eq!(identities(doc), ["a", "b"]);
        assert_eq!(identities(r#"["x", "y"]"#), ["x", "y"]);
        let lines = "{\"sender\":\"a\",\"data\":{}}\n{\"sender\":\"b\"}\n{\"summary\":{\"ok\":2}}\n";
        assert_eq!(identities(lines), ["a", "b"]);
        assert_eq!(identities("{\"host\":\"h1\",\"pid\":1}\n{\"identity\":\"h2\"}\n"), ["h1", "h2"]);
        assert!(identities("").is_empty());
    }

    fn reply(sender: &str, status: Status, data: Value) -> Reply {
        Reply { request_id: "r".into(), sender: sender.into(), status, status_msg: String::new(), data, elapsed_us: 0 }
    }

    #[test]
    fn reply_filter_uses_the_filter_language() {
        let f = ReplyFilter::parse("status=ok and data.exists=true").unwrap();
        assert!(f.matches(&reply("a", Status::Ok, json!({"exists": true}))));
        assert!(!f.matches(&reply("a", Status::Ok, json!({"exists": false}))));
        assert!(!f.matches(&reply("a", Status::Aborted, json!({"exists": true}))));
        let f = ReplyFilter::parse("data.count > 2 or identity=/^db/").unwrap();
        assert!(f.matches(&reply("web", Status::Ok, json!({"count": 3}))));
        assert!(f.matches(&reply("db-1", Status::Ok, json!({"count": 1}))));
        assert!(!f.matches(&reply("web", Status::Ok, json!({"count": 1}))));
        assert!(ReplyFilter::parse("status=").unwrap_err().to_string().starts_with("--filter-replies"));
        assert!(ReplyFilter::parse("fstat(\"/x\").present=true").is_err());
    }
}
