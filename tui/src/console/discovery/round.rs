//! A discovery round as the grid follows it: its phases, and how its progress (discovered,
//! replies, the end) and later membership news change the rows.

use super::{Discovery, NodeRow, NodeStatus};
use crate::console::action::{Action, RequestEvent};

/// Where a round is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Asking the hub which nodes match (or waiting for a hub link to ask).
    Discovering,
    /// The request is out; replies are coming in.
    Waiting,
    Done {
        elapsed_ms: f64,
    },
    Failed(String),
}

/// One rpcutil ping round as the panel follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    pub id: u64,
    pub filter: String,
    pub phase: Phase,
    pub discovered: usize,
}

impl Discovery {
    pub(super) fn start_round(&mut self) -> Action {
        self.last_round_id += 1;
        Action::RunDiscovery { round: self.last_round_id, filter: self.active_filter.clone() }
    }

    pub(super) fn on_round_event(&mut self, event: RequestEvent) {
        let Some(round) = self.round.as_mut() else {
            return;
        };
        match event {
            RequestEvent::Discovered(nodes) => {
                round.discovered = nodes.len();
                round.phase = Phase::Waiting;
                self.rows = nodes
                    .into_iter()
                    .map(|identity| NodeRow { identity, status: NodeStatus::Pending, expected: true, left: false })
                    .collect();
                self.reindex();
                self.cursor = None;
            }
            RequestEvent::Reply(reply) => {
                let ms = reply.ms;
                let status = if reply.status.is_ok() {
                    NodeStatus::Ok { ms }
                } else {
                    NodeStatus::Failed { status: reply.status, message: reply.message.clone(), ms }
                };
                match self.index.get(&reply.sender) {
                    Some(&i) => self.rows[i].status = status,
                    None => {
                        self.index.insert(reply.sender.clone(), self.rows.len());
                        self.rows.push(NodeRow { identity: reply.sender.clone(), status, expected: reply.expected, left: false });
                    }
                }
                self.restale();
            }
            RequestEvent::Finished { no_reply, down, elapsed_ms } => {
                round.phase = Phase::Done { elapsed_ms };
                for (identity, since_ms) in down {
                    let status = NodeStatus::Down { since_ms };
                    match self.index.get(&identity) {
                        Some(&i) => self.rows[i].status = status,
                        None => {
                            self.index.insert(identity.clone(), self.rows.len());
                            self.rows.push(NodeRow { identity, status, expected: true, left: false });
                        }
                    }
                }
                for row in self.rows.iter_mut() {
                    if row.status == NodeStatus::Pending || no_reply.contains(&row.identity) {
                        row.status = NodeStatus::NoReply;
                    }
                }
                self.restale();
            }
            RequestEvent::Failed(message) => round.phase = Phase::Failed(message),
            RequestEvent::Sent { .. } => {}
        }
    }

    /// Nodes joined or left since the round: mark them, without pretending they were pinged.
    pub(super) fn on_members(&mut self, filter: &str, nodes: &[String]) {
        let settled = matches!(self.round.as_ref().map(|r| &r.phase), Some(Phase::Done { .. } | Phase::Failed(_)));
        if !settled || filter != self.active_filter {
            return;
        }
        let members: std::collections::HashSet<&str> = nodes.iter().map(String::as_str).collect();
        // A node that joined after the round and is gone again was never part of it.
        self.rows.retain(|r| r.status != NodeStatus::Joined || members.contains(r.identity.as_str()));
        for row in self.rows.iter_mut() {
            row.left = !members.contains(row.identity.as_str());
        }
        self.reindex();
        for n in nodes {
            if !self.index.contains_key(n) {
                self.rows.push(NodeRow { identity: n.clone(), status: NodeStatus::Joined, expected: false, left: false });
            }
        }
        self.reindex();
    }
}
