//! concat operations: the arguments of each action, and what a build round came back with: each
//! node's state (would change, changed, attributes only, in sync, failed) and nodes with the same
//! diff folded into one compact set, for the CLI and the console alike.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::nodeset;
use crate::round::Outcome;

/// The agent's name.
pub const AGENT: &str = "concat";

/// A fragment to add: inline content or a file on the node read at every build.
#[derive(Debug, Clone, PartialEq)]
pub enum FragmentBody {
    Content(String),
    Source(String),
}

/// `add_fragment`'s arguments.
pub fn add_args(target: &str, name: &str, order: i64, body: &FragmentBody) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("target".into(), json!(target));
    args.insert("name".into(), json!(name));
    args.insert("order".into(), json!(order));
    match body {
        FragmentBody::Content(c) => args.insert("content".into(), json!(c)),
        FragmentBody::Source(s) => args.insert("source".into(), json!(s)),
    };
    args
}

/// `remove_fragment`'s arguments.
pub fn remove_args(target: &str, name: &str) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("target".into(), json!(target));
    args.insert("name".into(), json!(name));
    args
}

/// `list`'s arguments: one target's fragments, or every target when `target` is empty.
pub fn list_args(target: &str) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("target".into(), json!(target));
    args
}

/// What a build asks for; empty strings keep what the file has (owner, group, mode) or run nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Build {
    pub target: String,
    pub owner: String,
    pub group: String,
    pub mode: String,
    pub dry_run: bool,
    pub notify: String,
    pub notify_unit: String,
}

impl Build {
    pub fn args(&self) -> Map<String, Value> {
        let mut args = Map::new();
        for (key, value) in [
            ("target", &self.target),
            ("owner", &self.owner),
            ("group", &self.group),
            ("mode", &self.mode),
            ("notify", &self.notify),
            ("notify_unit", &self.notify_unit),
        ] {
            if !value.is_empty() {
                args.insert(key.into(), json!(value));
            }
        }
        args.insert("dry_run".into(), json!(self.dry_run));
        args
    }
}

/// Where a node stands after a build (or a dry run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The content differs: written (or, in a dry run, would be).
    Changed,
    /// Only the owner, group or mode differ.
    AttributesOnly,
    InSync,
    Failed,
}

/// One node's build reply, as people read it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeResult {
    pub state: State,
    /// True when the content is new: the file did not exist.
    pub created: bool,
    pub attributes: Vec<String>,
    pub diff: String,
    /// The notify's exit status when one ran (`Some(None)`: it was killed).
    pub notify: Option<Option<i64>>,
    pub notify_output: String,
    /// The node's error, for a failed build.
    pub error: String,
}

impl NodeResult {
    /// A build reply's data (ok or failed) as a result.
    pub fn of(ok: bool, status: &str, status_msg: &str, data: &Value) -> NodeResult {
        let changed = data["changed"].as_bool().unwrap_or(false);
        let attributes: Vec<String> =
            data["attributes"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
        let state = match (ok, changed, attributes.is_empty()) {
            (false, _, _) => State::Failed,
            (true, true, _) => State::Changed,
            (true, false, false) => State::AttributesOnly,
            (true, false, true) => State::InSync,
        };
        NodeResult {
            state,
            created: data["created"].as_bool().unwrap_or(false) && changed,
            attributes,
            diff: data["diff"].as_str().unwrap_or_default().to_string(),
            notify: data["notified"].as_bool().unwrap_or(false).then(|| data["notify_status"].as_i64()),
            notify_output: data["notify_output"].as_str().unwrap_or_default().to_string(),
            error: if ok { String::new() } else { format!("{status}: {status_msg}") },
        }
    }

    /// One line on where the node stands: `would change (new file)`, `changed, notified (exit 0)`.
    pub fn headline(&self, dry_run: bool) -> String {
        let mut line = match (self.state, dry_run) {
            (State::Changed, true) => "would change".to_string(),
            (State::Changed, false) => "changed".to_string(),
            (State::AttributesOnly, true) => "owner, group or mode would change".to_string(),
            (State::AttributesOnly, false) => "owner, group or mode changed".to_string(),
            (State::InSync, _) => "in sync".to_string(),
            (State::Failed, _) => format!("failed: {}", self.error),
        };
        if self.created {
            line.push_str(" (new file)");
        }
        match self.notify {
            Some(Some(code)) => line.push_str(&format!(", notified (exit {code})")),
            Some(None) => line.push_str(", notify killed"),
            None => {}
        }
        line
    }
}

/// Nodes with the same result, under their compact set.
#[derive(Debug, Clone, PartialEq)]
pub struct Group<T> {
    /// The compact set, `web-[01-03]`.
    pub nodes: String,
    pub count: usize,
    pub item: T,
}

/// Folds `(node, item)` pairs: one group per distinct item, its nodes as a compact set, in the
/// order of each group's first node.
pub fn fold<T: Ord + Clone>(items: impl IntoIterator<Item = (String, T)>) -> Vec<Group<T>> {
    let mut by_item: BTreeMap<T, Vec<String>> = BTreeMap::new();
    for (node, item) in items {
        by_item.entry(item).or_default().push(node);
    }
    let mut groups: Vec<(String, Group<T>)> = by_item
        .into_iter()
        .map(|(item, mut nodes)| {
            nodes.sort();
            (nodes[0].clone(), Group { nodes: nodeset::fold(&nodes), count: nodes.len(), item })
        })
        .collect();
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    groups.into_iter().map(|(_, g)| g).collect()
}

/// Each replying node's build result.
pub fn results(o: &Outcome) -> Vec<(String, NodeResult)> {
    o.replies
        .iter()
        .map(|r| {
            let status = r.reply.status.to_string();
            (r.reply.sender.clone(), NodeResult::of(r.reply.status.is_ok(), &status, &r.reply.status_msg, &r.reply.data))
        })
        .collect()
}

/// How many nodes stand where, after a build round.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub changed: usize,
    pub attributes_only: usize,
    pub in_sync: usize,
    pub failed: usize,
    pub notified: usize,
    pub no_reply: usize,
}

impl Summary {
    pub fn of(o: &Outcome) -> Summary {
        let mut s = Summary { no_reply: o.no_reply.len() + o.down.len(), ..Summary::default() };
        for (_, r) in results(o) {
            match r.state {
                State::Changed => s.changed += 1,
                State::AttributesOnly => s.attributes_only += 1,
                State::InSync => s.in_sync += 1,
                State::Failed => s.failed += 1,
            }
            s.notified += usize::from(r.notify.is_some());
        }
        s
    }

    /// `2 of 3 nodes would change, 1 in sync`: the counts that are not zero.
    pub fn line(&self, dry_run: bool) -> String {
        let total = self.changed + self.attributes_only + self.in_sync + self.failed + self.no_reply;
        let verb = if dry_run { "would change" } else { "changed" };
        let mut parts = vec![format!("{} of {total} node{} {verb}", self.changed, if total == 1 { "" } else { "s" })];
        if self.notified > 0 {
            parts[0].push_str(&format!(" ({} notified)", self.notified));
        }
        for (n, what) in [
            (self.attributes_only, if dry_run { "owner, group or mode only" } else { "owner, group or mode only (not notified)" }),
            (self.in_sync, "in sync"),
            (self.failed, "failed"),
            (self.no_reply, "no reply"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(changed: bool, diff: &str, attributes: &[&str], notified: Option<i64>) -> Value {
        json!({ "changed": changed, "created": false, "diff": diff, "attributes": attributes,
                "notified": notified.is_some(), "notify_status": notified, "notify_output": "" })
    }

    #[test]
    fn identical_diffs_fold_and_states_read_as_words() {
        let d = "--- /etc/a\n+++ /etc/a\n@@ -1 +1 @@\n-x\n+y\n";
        let items = vec![
            ("web-03".to_string(), NodeResult::of(true, "OK", "OK", &reply(false, "", &[], None))),
            ("web-01".to_string(), NodeResult::of(true, "OK", "OK", &reply(true, d, &[], Some(0)))),
            ("web-02".to_string(), NodeResult::of(true, "OK", "OK", &reply(true, d, &[], Some(0)))),
            ("web-04".to_string(), NodeResult::of(true, "OK", "OK", &reply(false, "", &["mode 0644 -> 0600"], None))),
            ("db-1".to_string(), NodeResult::of(false, "Aborted", "no fragments", &Value::Null)),
        ];
        let groups = fold(items);
        let seen: Vec<(String, usize, String)> = groups.iter().map(|g| (g.nodes.clone(), g.count, g.item.headline(false))).collect();
        assert_eq!(
            seen,
            [
                ("db-1".to_string(), 1, "failed: Aborted: no fragments".to_string()),
                ("web-[01-02]".to_string(), 2, "changed, notified (exit 0)".to_string()),
                ("web-03".to_string(), 1, "in sync".to_string()),
                ("web-04".to_string(), 1, "owner, group or mode changed".to_string()),
            ]
        );
        assert_eq!(groups[1].item.diff, d);
        assert_eq!(groups[1].item.headline(true), "would change, notified (exit 0)");
    }

    #[test]
    fn the_summary_counts_only_what_is_there() {
        let s = Summary { changed: 2, in_sync: 1, notified: 2, ..Summary::default() };
        assert_eq!(s.line(false), "2 of 3 nodes changed (2 notified), 1 in sync");
        let s = Summary { changed: 0, in_sync: 3, ..Summary::default() };
        assert_eq!(s.line(true), "0 of 3 nodes would change, 3 in sync");
        let s = Summary { changed: 1, attributes_only: 1, failed: 1, no_reply: 1, ..Summary::default() };
        assert_eq!(s.line(true), "1 of 4 nodes would change, 1 owner, group or mode only, 1 failed, 1 no reply");
    }

    #[test]
    fn build_arguments_leave_out_what_was_not_asked() {
        let b = Build { target: "/etc/a".into(), mode: "0600".into(), dry_run: true, ..Build::default() };
        assert_eq!(Value::Object(b.args()), json!({ "target": "/etc/a", "mode": "0600", "dry_run": true }));
        let a = add_args("/etc/a", "head", 5, &FragmentBody::Source("/srv/h".into()));
        assert_eq!(Value::Object(a), json!({ "target": "/etc/a", "name": "head", "order": 5, "source": "/srv/h" }));
    }
}
