//! Requests through the hub, in the order of their steps: the signature checked over the raw bytes
//! (before decoding), the console's rate, the ttl against `max_ttl`, the request id against the
//! ids already routed, the filter compiled once, then fan-out to the chosen nodes and a route
//! that sends their replies back to the console that asked. Every refusal is counted as a
//! dropped frame, logged, written to the hub's audit log and told to the sender.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleet_protocol::filter::FilterExpr;
use fleet_protocol::transport::Peer;
use fleet_protocol::{Dispatched, Envelope, ErrorNotice, Fanout, Message, Reply, ReplyMode, Request};
use tracing::{debug, warn};

use super::Hub;
use crate::audit::{AuditDecision, AuditRecord, args_digest};

/// Most request ids remembered at once. When full, the id closest to being forgotten goes first;
/// the nodes' own replay caches still refuse a replay of it within its ttl.
const ROUTED_IDS_CAPACITY: usize = 100_000;
/// How long past its ttl a routed id is remembered, to cover callers whose clocks run ahead.
const ROUTED_ID_MARGIN: Duration = Duration::from_secs(60);

/// Where a request came from: the link (its peer handle and enrolled name), the caller whose
/// signature the hub checked (`None` when the hub has no callers directory), and when it arrived.
pub(super) struct Origin {
    pub peer: Peer,
    pub link: String,
    pub role: crate::enroll::Role,
    pub signer: Option<String>,
    pub received: Instant,
}

/// Which console the replies to a request go to, until when, and which nodes are still to answer.
pub(super) struct Route {
    pub console: Peer,
    pub deadline: Instant,
    /// The nodes the request went to: only their replies are forwarded.
    sent: HashSet<String>,
    expected: HashSet<String>,
}

/// Request ids the hub has routed, each with the link that first sent it, kept for the request's
/// ttl. An id belongs to that link: another link sending it again (a node re-injecting a request
/// it received, say) is refused, so a request is never fanned out twice for someone else and its
/// route is never taken over.
#[derive(Default)]
pub(super) struct RoutedIds {
    owners: HashMap<String, (String, Instant)>,
    by_expiry: BTreeSet<(Instant, String)>,
}

impl RoutedIds {
    /// The link that first sent `id`, while it is remembered.
    fn owner(&self, id: &str) -> Option<&str> {
        self.owners.get(id).map(|(link, _)| link.as_str())
    }

    /// Remembers that `link` sent `id`, until `forget_at`. An id already remembered keeps its owner.
    fn record(&mut self, id: &str, link: &str, forget_at: Instant) {
        if self.owners.contains_key(id) {
            return;
        }
        if self.owners.len() >= ROUTED_IDS_CAPACITY
            && let Some((_, oldest)) = self.by_expiry.pop_first()
        {
            self.owners.remove(&oldest);
        }
        self.owners.insert(id.to_string(), (link.to_string(), forget_at));
        self.by_expiry.insert((forget_at, id.to_string()));
    }

    pub fn forget_expired(&mut self, now: Instant) {
        while let Some((at, _)) = self.by_expiry.first() {
            if *at > now {
                break;
            }
            if let Some((_, id)) = self.by_expiry.pop_first() {
                self.owners.remove(&id);
            }
        }
    }
}

impl Hub {
    /// Checks a request's signature over its raw bytes. `Some(signer)` lets it through (`None`
    /// inside when the hub has no callers directory); `None` means refused, and already handled.
    pub(super) async fn verify_request(&mut self, origin: &Origin, env: &Envelope) -> Option<Option<String>> {
        let Some(ring) = &self.callers else { return Some(None) };
        match env.verify(ring) {
            Ok(signer) => Some(Some(signer)),
            Err(e) => {
                let claimed = env.signer.clone().unwrap_or_else(|| "-".into());
                self.refuse(origin, None, &claimed, e.to_string()).await;
                None
            }
        }
    }

    /// Admits a decoded request and fans it out. `frame` is the request exactly as the console
    /// signed it: the hub forwards those bytes, so the nodes check the console's own signature.
    pub(super) async fn on_request(&mut self, origin: Origin, req: Request, frame: Bytes) {
        let caller = origin.signer.clone().unwrap_or_else(|| req.caller.clone());
        let registry_match = match self.admit(&origin, &req) {
            Ok(m) => m,
            Err(why) => return self.refuse(&origin, Some(&req), &caller, why).await,
        };
        self.counters.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (sent, unknown) = self.pick_nodes(&req, registry_match.as_ref());
        let peers: Vec<Peer> = sent.iter().filter_map(|t| self.nodes.get(t).map(|n| n.peer.clone())).collect();
        self.remember(&origin, &req, &sent);
        debug!(request = %req.id, caller = %caller, agent = %req.agent, action = %req.action, nodes = peers.len(), "fan-out");
        self.send_frame_many(&peers, &frame).await;
        self.send(&origin.peer, &Message::Dispatched(Dispatched { request_id: req.id, sent, unknown })).await;
    }

    /// The checks a request passes before it is routed; `Err` says why it is refused. Returns the
    /// filter to pick nodes by, for `Fanout::RegistryMatch`.
    fn admit(&mut self, origin: &Origin, req: &Request) -> Result<Option<FilterExpr>, String> {
        // The same link sending its own request again is passed on: the nodes' replay caches refuse
        // and audit it, and its replies can only go back to that link.
        let route_owner = self.routes.get(&req.id).map(|r| &r.console);
        let taken_by_other = route_owner.is_some_and(|console| *console != origin.peer)
            || self.routed.owner(&req.id).is_some_and(|link| link != origin.link);
        if taken_by_other {
            return Err(format!("request id {} was already routed for another link; not sent again", req.id));
        }
        // Only consoles send requests, and each carries only its own caller's.
        if origin.role != crate::enroll::Role::Console {
            return Err(format!("a {} link ('{}') may not send requests; only console links may", origin.role, origin.link));
        }
        if let Some(signer) = &origin.signer
            && *signer != origin.link
        {
            return Err(format!("signed by caller '{signer}', but this console link is enrolled as '{}'", origin.link));
        }
        let rate = self.config.max_requests_per_second;
        if !self.console(&origin.peer).take(rate) {
            return Err(format!("over the limit of {rate} requests per second per console"));
        }
        let max_ttl = self.config.max_ttl;
        if req.ttl > max_ttl {
            return Err(format!("ttl of {} s is over the hub's max_ttl of {max_ttl} s", req.ttl));
        }
        // Compiled once: here to refuse a filter that does not parse, then to pick the nodes.
        let expr = req.filter.compile().map_err(|e| format!("bad filter: {e}"))?;
        Ok((req.fanout == Fanout::RegistryMatch).then_some(expr))
    }

    /// The nodes a request goes to, and the requested targets the registry does not know.
    /// Explicit targets go to exactly those nodes; an empty list is a broadcast to every node in
    /// the collective (or those whose registration matches, for `Fanout::RegistryMatch`), and
    /// each node applies the filter itself.
    fn pick_nodes(&self, req: &Request, registry_match: Option<&FilterExpr>) -> (Vec<String>, Vec<String>) {
        if !req.targets.is_empty() {
            let mut seen = HashSet::new();
            return req.targets.iter().filter(|t| seen.insert(t.as_str())).cloned().partition(|t| self.nodes.contains_key(t));
        }
        let registry_match = registry_match.map(super::registry::RegistryFilter::new);
        let mut all: Vec<String> = self
            .nodes
            .values()
            .filter(|n| n.record.in_collective(&req.collective))
            .filter(|n| registry_match.as_ref().is_none_or(|f| f.matches(&n.record)))
            .map(|n| n.record.identity.clone())
            .collect();
        all.sort();
        (all, Vec::new())
    }

    /// Records the request id as this link's, and the route its replies take back. An existing
    /// route is never re-pointed.
    fn remember(&mut self, origin: &Origin, req: &Request, sent: &[String]) {
        let ttl = Duration::from_secs(u64::from(req.ttl));
        let max_wait = Duration::from_secs_f64(self.config.max_request_timeout);
        let wait = if req.timeout_ms == 0 { Duration::from_secs(10) } else { Duration::from_millis(req.timeout_ms) }.min(max_wait);
        self.routed.record(&req.id, &origin.link, origin.received + ttl.max(wait) + ROUTED_ID_MARGIN);
        if req.reply == ReplyMode::Normal && !self.routes.contains_key(&req.id) {
            let sent: HashSet<String> = sent.iter().cloned().collect();
            let route = Route { console: origin.peer.clone(), deadline: Instant::now() + wait, expected: sent.clone(), sent };
            self.routes.insert(req.id.clone(), route);
        }
    }

    /// A node's reply: forwarded to the console the route points at, while the route lives.
    pub(super) fn on_reply(&mut self, peer: Peer, reply: &Reply, frame: &Bytes) {
        let Some(identity) = self.node_by_peer.get(&peer).cloned() else {
            self.counters.dropped();
            return;
        };
        if reply.sender != identity {
            self.counters.dropped();
            warn!(claimed = %reply.sender, link = %identity, "reply sender does not match its link; dropped");
            return;
        }
        if let Some(n) = self.nodes.get_mut(&identity) {
            n.last_seen = Instant::now();
        }
        match self.routes.get_mut(&reply.request_id) {
            // A node answering a request it was not sent (a compromised node guessing ids) is dropped.
            Some(route) if !route.sent.contains(&identity) => {
                self.counters.dropped();
                warn!(request = %reply.request_id, sender = %identity, "reply from a node the request was not sent to; dropped");
            }
            Some(route) if route.deadline > Instant::now() => {
                let console = route.console.clone();
                route.expected.remove(&identity);
                if route.expected.is_empty() {
                    self.routes.remove(&reply.request_id);
                }
                self.counters.replies.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // Forward the node's own bytes: its reply signature stays intact. Queued for the
                // console, first to go if it reads too slowly.
                self.send_reply_frame(&console, frame);
            }
            _ => {
                self.counters.late_replies.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                debug!(request = %reply.request_id, sender = %identity, "late reply dropped");
            }
        }
    }

    /// Refuses a request: counted as a dropped frame, logged, audited, and told to the sender.
    /// `req` is `None` when it was refused before decoding (nothing in it is believed).
    async fn refuse(&mut self, origin: &Origin, req: Option<&Request>, caller: &str, why: String) {
        self.counters.dropped();
        let id = req.map_or("-", |r| r.id.as_str());
        warn!(peer = %origin.peer.short(), link = %origin.link, request = %id, caller = %caller, reason = %why, "request refused by the hub");
        self.audit.log(AuditRecord {
            request_id: id.to_string(),
            caller: caller.to_string(),
            agent: req.map_or("-", |r| r.agent.as_str()).to_string(),
            action: req.map_or("-", |r| r.action.as_str()).to_string(),
            args_digest: req.map_or_else(|| "-".to_string(), |r| args_digest(&r.args)),
            decision: AuditDecision::Rejected,
            reason: why.clone(),
            duration: origin.received.elapsed(),
        });
        let message = match req {
            Some(r) => format!("request {} refused by the hub: {why}", r.id),
            None => format!("request refused by the hub: {why}"),
        };
        self.send(&origin.peer, &Message::Error(ErrorNotice { message })).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_keeps_its_first_link_until_it_is_forgotten() {
        let now = Instant::now();
        let mut ids = RoutedIds::default();
        ids.record("a", "console-1", now + Duration::from_secs(10));
        ids.record("a", "mole", now + Duration::from_secs(20));
        assert_eq!(ids.owner("a"), Some("console-1"));
        assert_eq!(ids.owner("b"), None);
        ids.forget_expired(now + Duration::from_secs(9));
        assert_eq!(ids.owner("a"), Some("console-1"));
        ids.forget_expired(now + Duration::from_secs(10));
        assert_eq!(ids.owner("a"), None);
        assert!(ids.by_expiry.is_empty());
    }

    #[test]
    fn a_full_cache_forgets_the_id_closest_to_expiry_first() {
        let now = Instant::now();
        let mut ids = RoutedIds::default();
        for i in 0..ROUTED_IDS_CAPACITY {
            ids.record(&i.to_string(), "c", now + Duration::from_secs(100 + i as u64));
        }
        ids.record("soon", "c", now + Duration::from_secs(1));
        ids.record("late", "c", now + Duration::from_secs(1_000_000));
        assert_eq!(ids.owners.len(), ROUTED_IDS_CAPACITY);
        assert_eq!(ids.owner("soon"), None, "evicted first: it expired soonest");
        assert_eq!(ids.owner("0"), None);
        assert_eq!(ids.owner("1"), Some("c"));
        assert_eq!(ids.owner("late"), Some("c"));
    }
}
