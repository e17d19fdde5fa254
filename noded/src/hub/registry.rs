//! The hub's registry of live nodes and attached consoles: registrations (under the link's
//! enrolled name only), heartbeats and their expiry, console attachment, nodes that went down
//! (kept for `hub.keep_down_for`, bounded in count, until they come back or an admin forgets
//! them), and discovery answered from the registry. What is kept of each registration is in
//! `registry/record.rs`.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use fleet_protocol::transport::Peer;
use fleet_protocol::{Ack, Discover, Discovered, DownNode, ErrorNotice, Event, Hello, Message, Registration, Welcome};
use tracing::{debug, info, warn};

use super::Hub;
use crate::limits::RateBucket;

mod record;
pub(crate) use record::{NodeRecord, RegistryFilter, SharedLists};

pub(super) struct NodeEntry {
    pub peer: Peer,
    pub record: NodeRecord,
    pub last_seen: Instant,
}

/// A node the registry lost: what it kept of its last registration (to match discovery filters
/// on) and since when it is down.
pub(crate) struct DownEntry {
    record: NodeRecord,
    since_ms: u64,
    since: Instant,
}

/// Nodes that went down, oldest first out when over the count limit or past `keep_down_for`.
#[derive(Default)]
pub(crate) struct DownNodes {
    by_name: HashMap<String, DownEntry>,
    by_age: BTreeSet<(Instant, String)>,
}

impl DownNodes {
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn insert(&mut self, record: NodeRecord, max: usize) {
        let identity = record.identity.clone();
        self.remove(&identity);
        let since = Instant::now();
        self.by_age.insert((since, identity.clone()));
        self.by_name.insert(identity, DownEntry { record, since_ms: fleet_protocol::now_ms(), since });
        while self.by_name.len() > max.max(1) {
            let Some((_, oldest)) = self.by_age.pop_first() else { break };
            self.by_name.remove(&oldest);
        }
    }

    pub fn remove(&mut self, identity: &str) -> bool {
        match self.by_name.remove(identity) {
            Some(e) => {
                self.by_age.remove(&(e.since, identity.to_string()));
                true
            }
            None => false,
        }
    }

    /// Forgets nodes down for longer than `keep`.
    pub fn expire(&mut self, keep: Duration) {
        let now = Instant::now();
        while let Some((since, _)) = self.by_age.first() {
            if now.duration_since(*since) <= keep {
                break;
            }
            if let Some((_, name)) = self.by_age.pop_first() {
                self.by_name.remove(&name);
                info!(node = %name, "a node down for longer than hub.keep_down_for is no longer listed");
            }
        }
    }
}

pub(super) struct ConsoleEntry {
    pub subscribe: bool,
    /// The per-console request rate limit.
    rate: RateBucket,
}

impl ConsoleEntry {
    /// A console with a full burst of `rate` requests a second.
    pub fn new(subscribe: bool, rate: f64) -> ConsoleEntry {
        ConsoleEntry { subscribe, rate: RateBucket::full(rate) }
    }

    /// Takes one token; false when the console is over its rate.
    pub fn take(&mut self, rate: f64) -> bool {
        self.rate.take(rate)
    }
}

impl Hub {
    /// The console entry of `peer`, made on first use (a console may skip Hello).
    pub(super) fn console(&mut self, peer: &Peer) -> &mut ConsoleEntry {
        let rate = self.config.max_requests_per_second;
        self.consoles.entry(peer.clone()).or_insert_with(|| ConsoleEntry::new(false, rate))
    }

    /// A node's registration, accepted only under the name its link key was enrolled with.
    pub(super) async fn on_registration(&mut self, peer: Peer, link: &str, reg: Registration) {
        let identity = reg.identity.clone();
        if identity != link {
            self.counters.dropped();
            warn!(claimed = %identity, link = %link, "registration under another name than the link's enrolled key; dropped");
            return;
        }
        if identity.is_empty() || identity.len() > 255 {
            self.counters.dropped();
            return;
        }
        let now = Instant::now();
        let record = self.shared.record(reg);
        let event = match self.nodes.get_mut(&identity) {
            Some(entry) => {
                let changed = record.changed_from(&entry.record);
                if entry.peer != peer {
                    // The node rebuilt its link; the old routing id is dead.
                    self.node_by_peer.remove(&entry.peer);
                    entry.peer = peer.clone();
                }
                entry.record = record;
                entry.last_seen = now;
                changed.then(|| Event::NodeChanged { identity: identity.clone() })
            }
            None => {
                if self.down.remove(&identity) {
                    info!(node = %identity, "node is back");
                } else {
                    info!(node = %identity, "node joined");
                }
                self.nodes.insert(identity.clone(), NodeEntry { peer: peer.clone(), record, last_seen: now });
                Some(Event::NodeJoined { identity: identity.clone() })
            }
        };
        self.node_by_peer.insert(peer.clone(), identity);
        self.send(&peer, &Message::Ack(Ack { hub_time: fleet_protocol::now_ms() })).await;
        if let Some(ev) = event {
            self.notify_consoles(ev).await;
        }
    }

    pub(super) async fn on_hello(&mut self, peer: Peer, hello: Hello) {
        let rate = self.config.max_requests_per_second;
        self.consoles.insert(peer.clone(), ConsoleEntry::new(hello.subscribe, rate));
        debug!(console = %hello.name, "console attached");
        let welcome = Welcome { hub_version: crate::VERSION.to_string(), nodes: self.nodes.len() as u32 };
        self.send(&peer, &Message::Welcome(welcome)).await;
    }

    /// Registry discovery: the nodes of the collective whose registration matches the filter.
    pub(super) async fn on_discover(&mut self, peer: Peer, discover: Discover) {
        self.console(&peer);
        let reply = discovered(self.nodes.values().map(|n| &n.record), &self.down, &discover);
        self.send(&peer, &reply).await;
    }

    /// Forgets nodes that missed `missed_heartbeats` heartbeats in a row.
    pub(super) async fn expire_nodes(&mut self, now: Instant) {
        let missed = self.config.missed_heartbeats;
        let stale: Vec<(String, Peer)> = self
            .nodes
            .values()
            .filter(|n| is_stale(&n.record, n.last_seen, now, missed))
            .map(|n| (n.record.identity.clone(), n.peer.clone()))
            .collect();
        for (identity, peer) in stale {
            self.node_by_peer.remove(&peer);
            self.node_down(&identity, &format!("{missed} heartbeats missed")).await;
        }
    }

    /// A node left: out of the live registry, into the down list, and the consoles told.
    pub(super) async fn node_down(&mut self, identity: &str, reason: &str) {
        if let Some(entry) = self.nodes.remove(identity) {
            self.down.insert(entry.record, self.config.max_down_nodes);
        }
        info!(node = %identity, reason, "node left; listed as down");
        self.notify_consoles(Event::NodeLeft { identity: identity.to_string(), reason: reason.to_string() }).await;
    }

    /// `noded hub forget NODE`: a down node is no longer listed. A live node is left alone.
    pub(super) async fn forget_node(&mut self, identity: &str) {
        if self.down.remove(identity) {
            info!(node = %identity, "down node forgotten at an admin's request");
        } else if self.nodes.contains_key(identity) {
            warn!(node = %identity, "asked to forget a node that is up; it stays (stop it first)");
        } else {
            info!(node = %identity, "asked to forget a node the registry does not list");
        }
    }
}

/// Whether a node last heard from at `last_seen` missed `missed` heartbeats in a row by `now`.
pub(crate) fn is_stale(record: &NodeRecord, last_seen: Instant, now: Instant, missed: u32) -> bool {
    let interval = Duration::from_millis(record.interval_ms.max(100));
    now.duration_since(last_seen) > interval * missed
}

/// The answer to a discovery question: the live nodes of the collective whose registration
/// matches the filter, and the down nodes that match it with since when; an error for a filter
/// that does not compile.
pub(crate) fn discovered<'a>(live: impl Iterator<Item = &'a NodeRecord>, down: &DownNodes, discover: &Discover) -> Message {
    let expr = match discover.filter.compile() {
        Ok(expr) => expr,
        Err(e) => return Message::Error(ErrorNotice { message: e.to_string() }),
    };
    let filter = RegistryFilter::new(&expr);
    let wanted = |r: &NodeRecord| discover.collective.as_ref().is_none_or(|c| r.in_collective(c)) && filter.matches(r);
    let mut nodes: Vec<String> = live.filter(|r| wanted(r)).map(|r| r.identity.clone()).collect();
    nodes.sort();
    let mut down: Vec<DownNode> = down
        .by_name
        .values()
        .filter(|d| wanted(&d.record))
        .map(|d| DownNode { identity: d.record.identity.clone(), since_ms: d.since_ms })
        .collect();
    down.sort_by(|a, b| a.identity.cmp(&b.identity));
    Message::Discovered(Discovered { nodes, down })
}
