//! A request as the console remembers it: what was asked of whom, and every reply. The Log panel
//! keeps the history of them; the RPC panel shows one (live, or reopened from the Log).

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::{Map, Value};

use super::action::{ReplyRow, RequestEvent, Scope};

/// Which kind of request, and the console's own number for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKey {
    /// A Discovery panel round (rpcutil ping).
    Round(u64),
    /// An RPC panel request.
    Rpc(u64),
    /// A record that came in finished: a kill, a migration, or one kept from an earlier run.
    /// The Log panel numbers them.
    Done(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum RequestState {
    /// Discovering or waiting for replies.
    Running,
    Done {
        elapsed_ms: f64,
    },
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub key: RequestKey,
    pub agent: String,
    pub action: String,
    pub args: Map<String, Value>,
    pub scope: Scope,
    pub started: SystemTime,
    /// The id the hub knows the request by, once sent.
    pub request_id: Option<String>,
    /// `None` until discovery answered.
    pub discovered: Option<Vec<String>>,
    pub replies: Vec<ReplyRow>,
    pub no_reply: Vec<String>,
    pub state: RequestState,
    /// sender -> index in `replies`, so a burst of replies stays linear.
    index: HashMap<String, usize>,
}

impl RequestRecord {
    pub fn new(key: RequestKey, agent: &str, action: &str, args: Map<String, Value>, scope: Scope, started: SystemTime) -> RequestRecord {
        RequestRecord {
            key,
            agent: agent.to_string(),
            action: action.to_string(),
            args,
            scope,
            started,
            request_id: None,
            discovered: None,
            replies: Vec::new(),
            no_reply: Vec::new(),
            state: RequestState::Running,
            index: HashMap::new(),
        }
    }

    pub fn apply(&mut self, event: &RequestEvent) {
        match event {
            RequestEvent::Discovered(nodes) => self.discovered = Some(nodes.clone()),
            RequestEvent::Sent { request_id } => self.request_id = Some(request_id.clone()),
            RequestEvent::Reply(row) => match self.index.get(&row.sender) {
                Some(&i) => self.replies[i] = (**row).clone(),
                None => {
                    self.index.insert(row.sender.clone(), self.replies.len());
                    self.replies.push((**row).clone());
                }
            },
            RequestEvent::Finished { no_reply, elapsed_ms, .. } => {
                self.no_reply = no_reply.clone();
                self.state = RequestState::Done { elapsed_ms: *elapsed_ms };
            }
            RequestEvent::Failed(message) => self.state = RequestState::Failed(message.clone()),
        }
    }

    /// Fills in a request that is over: its replies (every sender was a target), or why it
    /// failed, and how long it took.
    pub fn finish(&mut self, replies: Vec<ReplyRow>, failed: Option<&str>, elapsed_ms: f64) {
        self.apply(&RequestEvent::Discovered(replies.iter().map(|r| r.sender.clone()).collect()));
        for r in replies {
            self.apply(&RequestEvent::Reply(Box::new(r)));
        }
        self.state = match failed {
            Some(e) => RequestState::Failed(e.to_string()),
            None => RequestState::Done { elapsed_ms },
        };
    }

    pub fn reply(&self, sender: &str) -> Option<&ReplyRow> {
        self.index.get(sender).map(|&i| &self.replies[i])
    }

    pub fn running(&self) -> bool {
        self.state == RequestState::Running
    }

    /// How many nodes the request went to (known once discovery answered).
    pub fn target_count(&self) -> Option<usize> {
        self.discovered.as_ref().map(Vec::len)
    }

    pub fn ok_count(&self) -> usize {
        self.replies.iter().filter(|r| r.status.is_ok()).count()
    }

    pub fn failed_count(&self) -> usize {
        self.replies.len() - self.ok_count()
    }

    /// `agent#action`.
    pub fn what(&self) -> String {
        format!("{}#{}", self.agent, self.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_protocol::Status;

    #[test]
    fn a_record_follows_its_events() {
        let mut r = RequestRecord::new(RequestKey::Rpc(1), "echo", "echo", Map::new(), Scope::default(), SystemTime::UNIX_EPOCH);
        r.apply(&RequestEvent::Discovered(vec!["a".into(), "b".into(), "c".into()]));
        r.apply(&RequestEvent::Sent { request_id: "r-1".into() });
        r.apply(&RequestEvent::Reply(Box::new(ReplyRow::new("a", Status::Ok, "", 1.0))));
        r.apply(&RequestEvent::Reply(Box::new(ReplyRow::new("b", Status::Aborted, "no", 2.0))));
        r.apply(&RequestEvent::Reply(Box::new(ReplyRow::new("a", Status::Ok, "", 1.5))));
        assert_eq!((r.ok_count(), r.failed_count(), r.replies.len()), (1, 1, 2), "a repeated sender replaces its reply");
        assert_eq!(r.reply("a").unwrap().ms, 1.5);
        assert!(r.running());
        r.apply(&RequestEvent::Finished { no_reply: vec!["c".into()], down: vec![], elapsed_ms: 9.0 });
        assert_eq!(r.state, RequestState::Done { elapsed_ms: 9.0 });
        assert_eq!((r.target_count(), r.request_id.as_deref(), r.no_reply.len()), (Some(3), Some("r-1"), 1));
    }
}
