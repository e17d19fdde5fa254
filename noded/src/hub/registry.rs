//! The hub's registry of live nodes and attached consoles: registrations (under the link's
//! enrolled name only), heartbeats and their expiry, console attachment, and discovery answered
//! from the registry.

use std::time::{Duration, Instant};

use fleet_protocol::transport::Peer;
use fleet_protocol::{Ack, Discover, Discovered, ErrorNotice, Event, Hello, Message, Registration, Welcome};
use tracing::{debug, info, warn};

use super::Hub;

pub(super) struct NodeEntry {
    pub peer: Peer,
    pub registration: Registration,
    pub last_seen: Instant,
}

pub(super) struct ConsoleEntry {
    pub subscribe: bool,
    /// Token bucket for the per-console request rate limit.
    tokens: f64,
    refilled: Instant,
}

impl ConsoleEntry {
    pub fn new(subscribe: bool, burst: f64) -> ConsoleEntry {
        ConsoleEntry { subscribe, tokens: burst, refilled: Instant::now() }
    }

    /// Takes one token; false when the console is over its rate.
    pub fn take(&mut self, rate: f64) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * rate).min(rate * 2.0);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Hub {
    /// The console entry of `peer`, made on first use (a console may skip Hello).
    pub(super) fn console(&mut self, peer: &Peer) -> &mut ConsoleEntry {
        let burst = self.config.max_requests_per_second * 2.0;
        self.consoles.entry(peer.clone()).or_insert_with(|| ConsoleEntry::new(false, burst))
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
        let event = match self.nodes.get_mut(&identity) {
            Some(entry) => {
                let changed = entry.registration.facts != reg.facts
                    || entry.registration.classes != reg.classes
                    || entry.registration.agents != reg.agents
                    || entry.registration.collectives != reg.collectives;
                if entry.peer != peer {
                    // The node rebuilt its link; the old routing id is dead.
                    self.node_by_peer.remove(&entry.peer);
                    entry.peer = peer.clone();
                }
                entry.registration = reg;
                entry.last_seen = now;
                changed.then(|| Event::NodeChanged { identity: identity.clone() })
            }
            None => {
                info!(node = %identity, "node joined");
                self.nodes.insert(identity.clone(), NodeEntry { peer: peer.clone(), registration: reg, last_seen: now });
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
        let burst = self.config.max_requests_per_second * 2.0;
        self.consoles.insert(peer.clone(), ConsoleEntry::new(hello.subscribe, burst));
        debug!(console = %hello.name, "console attached");
        let welcome = Welcome { hub_version: crate::VERSION.to_string(), nodes: self.nodes.len() as u32 };
        self.send(&peer, &Message::Welcome(welcome)).await;
    }

    /// Registry discovery: the nodes of the collective whose registration matches the filter.
    pub(super) async fn on_discover(&mut self, peer: Peer, discover: Discover) {
        self.console(&peer);
        let reply = match discover.filter.compile() {
            Ok(expr) => {
                let mut nodes: Vec<String> = self
                    .nodes
                    .values()
                    .filter(|n| discover.collective.as_ref().is_none_or(|c| n.registration.collectives.contains(c)))
                    .filter(|n| expr.matches(&n.registration.view()))
                    .map(|n| n.registration.identity.clone())
                    .collect();
                nodes.sort();
                Message::Discovered(Discovered { nodes })
            }
            Err(e) => Message::Error(ErrorNotice { message: e.to_string() }),
        };
        self.send(&peer, &reply).await;
    }

    /// Forgets nodes that missed `missed_heartbeats` heartbeats in a row.
    pub(super) async fn expire_nodes(&mut self, now: Instant) {
        let missed = self.config.missed_heartbeats;
        let stale: Vec<(String, Peer)> = self
            .nodes
            .values()
            .filter(|n| {
                let interval = Duration::from_millis(n.registration.interval_ms.max(100));
                now.duration_since(n.last_seen) > interval * missed
            })
            .map(|n| (n.registration.identity.clone(), n.peer.clone()))
            .collect();
        for (identity, peer) in stale {
            self.node_by_peer.remove(&peer);
            self.nodes.remove(&identity);
            info!(node = %identity, "node expired after {missed} missed heartbeats");
            self.notify_consoles(Event::NodeLeft { identity, reason: format!("{missed} heartbeats missed") }).await;
        }
    }
}
