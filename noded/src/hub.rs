//! The hub: binds a ROUTER, keeps the registry of live nodes, answers discovery from it, fans
//! requests out to exactly the nodes asked for (one frame per node), routes replies back to the
//! console that asked, and tells consoles when nodes join, leave or change. It never runs anything.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleet_protocol::codec::{Limits, encode_message};
use fleet_protocol::transport::{HubSender, HubSocket, Inbound, Peer, PeerEvent};
use fleet_protocol::{Ack, Discovered, Dispatched, ErrorNotice, Event, HubStats, Message, Registration, ReplyMode, Request, Welcome};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::HubConfig;

/// Counters the hub exposes (`fleet` can ask for them; the bad-input tests read them).
#[derive(Default)]
pub struct HubCounters {
    pub requests: AtomicU64,
    pub replies: AtomicU64,
    pub late_replies: AtomicU64,
    pub dropped_frames: AtomicU64,
}

struct NodeEntry {
    peer: Peer,
    registration: Registration,
    last_seen: Instant,
}

struct ConsoleEntry {
    subscribe: bool,
    /// Token bucket for the per-console request rate limit.
    tokens: f64,
    refilled: Instant,
}

impl ConsoleEntry {
    fn new(subscribe: bool, burst: f64) -> ConsoleEntry {
        ConsoleEntry { subscribe, tokens: burst, refilled: Instant::now() }
    }

    /// Takes one token; false when the console is over its rate.
    fn take(&mut self, rate: f64) -> bool {
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

struct Route {
    console: Peer,
    deadline: Instant,
    expected: HashSet<String>,
}

pub struct Hub {
    sock: HubSocket,
    sender: HubSender,
    peer_events: tokio::sync::mpsc::UnboundedReceiver<PeerEvent>,
    config: HubConfig,
    limits: Limits,
    nodes: HashMap<String, NodeEntry>,
    node_by_peer: HashMap<Peer, String>,
    consoles: HashMap<Peer, ConsoleEntry>,
    routes: HashMap<String, Route>,
    pub counters: Arc<HubCounters>,
    started: Instant,
    /// Trusted callers; requests not signed by one of them are dropped before fan-out.
    callers: Option<fleet_protocol::keys::Keyring>,
    /// The hub's key pair: its link key is what nodes and consoles pin.
    key: fleet_protocol::keys::KeyPair,
    /// Which link keys may attach, and under which name.
    enrollment: crate::enroll::Enrollment,
    /// Established Noise sessions, per peer, with the peer's enrolled name.
    sessions: HashMap<Peer, LinkSession>,
}

/// An encrypted link and the name its key was enrolled under (the peer's proven name).
struct LinkSession {
    session: fleet_protocol::noise::Session,
    name: String,
}

impl Hub {
    /// Binds the hub's ROUTER. Returns the hub and the resolved endpoint.
    pub async fn bind(endpoint: &str, config: HubConfig, limits: Limits) -> anyhow::Result<(Hub, String)> {
        let callers = match &config.callers_dir {
            Some(dir) => Some(
                fleet_protocol::keys::Keyring::load(dir)
                    .map_err(|e| anyhow::anyhow!("hub.callers_dir: {e} (or run the hub with --callers-dir DIR)"))?,
            ),
            None => {
                warn!("hub.callers_dir is not set: the hub forwards unsigned requests (nodes still refuse them)");
                None
            }
        };
        let key = fleet_protocol::keys::KeyPair::load_private(&config.key_file)
            .map_err(|e| anyhow::anyhow!("hub.key_file: {e} (create it with `noded keygen --out {}`)", config.key_file.display()))?;
        let enrollment = crate::enroll::Enrollment::open(&config.enroll_dir)
            .map_err(|e| anyhow::anyhow!("hub.enroll_dir: cannot use {}: {e}", config.enroll_dir.display()))?;
        let (sock, peer_events) = HubSocket::bind_with_limits(endpoint, limits.max_frame).await?;
        let bound = sock.endpoint().to_string();
        let sender = sock.sender();
        Ok((
            Hub {
                sock,
                sender,
                peer_events,
                config,
                limits,
                nodes: HashMap::new(),
                node_by_peer: HashMap::new(),
                consoles: HashMap::new(),
                routes: HashMap::new(),
                counters: Arc::new(HubCounters::default()),
                started: Instant::now(),
                callers,
                key,
                enrollment,
                sessions: HashMap::new(),
            },
            bound,
        ))
    }

    fn stats(&self) -> HubStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HubStats {
            nodes: self.nodes.len() as u64,
            consoles: self.consoles.len() as u64,
            requests: g(&self.counters.requests),
            replies: g(&self.counters.replies),
            late_replies: g(&self.counters.late_replies),
            // Links the frame guard cut for oversized frames count as dropped frames too.
            dropped_frames: g(&self.counters.dropped_frames) + self.sock.guard_refusals(),
            uptime_s: self.started.elapsed().as_secs(),
        }
    }

    /// Serves until `shutdown` flips to true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                inbound = self.sock.recv() => match inbound {
                    Ok(Inbound::Frame(peer, frame)) => self.on_frame(peer, frame).await,
                    Ok(Inbound::Malformed(peer)) => {
                        self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
                        debug!(peer = %peer.short(), "dropped a message of unexpected shape");
                    }
                    Err(e) => {
                        warn!(error = %e, "hub socket closed");
                        return;
                    }
                },
                Some(PeerEvent::Disconnected(peer)) = self.peer_events.recv() => self.on_disconnect(&peer, "link closed").await,
                _ = tick.tick() => self.expire().await,
                _ = crate::until_set(&mut shutdown) => {
                    info!("hub shutting down");
                    return;
                }
            }
        }
    }

    async fn send(&mut self, peer: &Peer, msg: &Message) {
        match encode_message(msg) {
            Ok(frame) => self.send_frame(peer, &frame).await,
            Err(e) => warn!(error = %e, "cannot encode message"),
        }
    }

    /// Encrypts a frame for one peer's link and sends it. Peers without a session get nothing.
    async fn send_frame(&mut self, peer: &Peer, plaintext: &[u8]) {
        let Some(link) = self.sessions.get_mut(peer) else { return };
        match link.session.seal(plaintext) {
            Ok(sealed) => {
                if let Err(e) = self.sender.send(peer, Bytes::from(sealed)).await {
                    debug!(peer = %peer.short(), error = %e, "send failed");
                }
            }
            Err(e) => warn!(peer = %peer.short(), error = %e, "cannot encrypt a frame"),
        }
    }

    /// Sends one plaintext frame to many peers, each encrypted for its own link.
    async fn send_frame_many(&mut self, peers: &[Peer], plaintext: &[u8]) {
        for p in peers {
            self.send_frame(p, plaintext).await;
        }
    }

    /// First frame of a Noise handshake: answer only enrolled keys.
    async fn on_handshake(&mut self, peer: Peer, frame: &[u8]) {
        let responder = match fleet_protocol::noise::Responder::read(&self.key, frame) {
            Ok(r) => r,
            Err(e) => {
                self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
                warn!(peer = %peer.short(), error = %e, "handshake refused");
                return;
            }
        };
        match self.enrollment.check(&responder.remote_static, &responder.claimed_name) {
            crate::enroll::Verdict::Accepted(name) => match responder.accept() {
                Ok((session, reply)) => {
                    // A reconnect from the same peer handle is a new session.
                    self.sessions.insert(peer.clone(), LinkSession { session, name: name.clone() });
                    debug!(peer = %peer.short(), name = %name, "link established");
                    if let Err(e) = self.sender.send(&peer, Bytes::from(reply)).await {
                        debug!(error = %e, "handshake reply failed");
                    }
                }
                Err(e) => warn!(error = %e, "handshake failed"),
            },
            crate::enroll::Verdict::Pending(name) | crate::enroll::Verdict::Rejected(name) => {
                self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
                warn!(peer = %peer.short(), key = %name, "link key not enrolled; attach refused");
            }
        }
    }

    async fn notify_consoles(&mut self, event: Event) {
        let subscribers: Vec<Peer> = self.consoles.iter().filter(|(_, c)| c.subscribe).map(|(p, _)| p.clone()).collect();
        if subscribers.is_empty() {
            return;
        }
        if let Ok(frame) = encode_message(&Message::Event(event)) {
            self.send_frame_many(&subscribers, &frame).await;
        }
    }

    async fn on_frame(&mut self, peer: Peer, frame: Bytes) {
        if fleet_protocol::noise::is_handshake_1(&frame) {
            return self.on_handshake(peer, &frame).await;
        }
        // Everything else must arrive inside an established, authenticated link.
        let Some(link) = self.sessions.get_mut(&peer) else {
            self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
            debug!(peer = %peer.short(), "frame from a peer without a link session dropped");
            return;
        };
        let frame = match link.session.open(&frame) {
            Ok(plain) => Bytes::from(plain),
            Err(e) => {
                self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
                debug!(peer = %peer.short(), error = %e, "undecryptable frame dropped");
                return;
            }
        };
        let link_name = link.name.clone();
        let env = match fleet_protocol::Envelope::from_frame(&frame, &self.limits) {
            Ok(env) => env,
            Err(e) => {
                self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
                debug!(peer = %peer.short(), error = %e, "dropped malformed frame");
                return;
            }
        };
        // Requests are checked over their raw bytes before anything in them is decoded.
        if env.kind == fleet_protocol::Kind::Request {
            if let Some(ring) = &self.callers {
                if let Err(e) = env.verify(ring) {
                    self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
                    warn!(peer = %peer.short(), error = %e, "request dropped before fan-out");
                    self.send(&peer, &Message::Error(ErrorNotice { message: format!("request refused by the hub: {e}") })).await;
                    return;
                }
            }
        }
        let msg = match env.open(&self.limits) {
            Ok(m) => m,
            Err(e) => {
                self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
                debug!(peer = %peer.short(), error = %e, "dropped malformed frame");
                return;
            }
        };
        match msg {
            Message::Registration(reg) => {
                if reg.identity != link_name {
                    self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
                    warn!(claimed = %reg.identity, link = %link_name, "registration under another name than the link's enrolled key; dropped");
                    return;
                }
                self.on_registration(peer, *reg).await
            }
            Message::Reply(reply) => {
                let Some(identity) = self.node_by_peer.get(&peer).cloned() else {
                    self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                if reply.sender != identity {
                    self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
                    warn!(claimed = %reply.sender, link = %identity, "reply sender does not match its link; dropped");
                    return;
                }
                if let Some(n) = self.nodes.get_mut(&identity) {
                    n.last_seen = Instant::now();
                }
                match self.routes.get_mut(&reply.request_id) {
                    Some(route) if route.deadline > Instant::now() => {
                        let console = route.console.clone();
                        route.expected.remove(&identity);
                        if route.expected.is_empty() {
                            self.routes.remove(&reply.request_id);
                        }
                        self.counters.replies.fetch_add(1, Ordering::Relaxed);
                        // Forward the node's own bytes: its reply signature stays intact.
                        self.send_frame(&console, &frame).await;
                    }
                    _ => {
                        self.counters.late_replies.fetch_add(1, Ordering::Relaxed);
                        debug!(request = %reply.request_id, sender = %identity, "late reply dropped");
                    }
                }
            }
            Message::Hello(hello) => {
                let burst = self.config.max_requests_per_second * 2.0;
                self.consoles.insert(peer.clone(), ConsoleEntry::new(hello.subscribe, burst));
                debug!(console = %hello.name, "console attached");
                let welcome = Welcome { hub_version: crate::VERSION.to_string(), nodes: self.nodes.len() as u32 };
                self.send(&peer, &Message::Welcome(welcome)).await;
            }
            Message::Discover(d) => {
                let burst = self.config.max_requests_per_second * 2.0;
                self.consoles.entry(peer.clone()).or_insert_with(|| ConsoleEntry::new(false, burst));
                let reply = match d.filter.compile() {
                    Ok(expr) => {
                        let mut nodes: Vec<String> = self
                            .nodes
                            .values()
                            .filter(|n| d.collective.as_ref().is_none_or(|c| n.registration.collectives.contains(c)))
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
            Message::Request(req) => self.on_request(peer, *req, frame).await,
            Message::StatsQuery => {
                let stats = self.stats();
                self.send(&peer, &Message::HubStats(stats)).await;
            }
            Message::Ping => self.send(&peer, &Message::Pong).await,
            other => {
                self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
                debug!(kind = ?other.kind(), "message kind not accepted by the hub");
            }
        }
    }

    async fn on_registration(&mut self, peer: Peer, reg: Registration) {
        let identity = reg.identity.clone();
        if identity.is_empty() || identity.len() > 255 {
            self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
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

    /// Fans a request out. `frame` is the request exactly as the console signed it: the hub
    /// forwards those bytes, so the nodes check the console's own signature.
    async fn on_request(&mut self, console: Peer, req: Request, frame: Bytes) {
        let rate = self.config.max_requests_per_second;
        let entry = self.consoles.entry(console.clone()).or_insert_with(|| ConsoleEntry::new(false, rate * 2.0));
        if !entry.take(rate) {
            self.counters.dropped_frames.fetch_add(1, Ordering::Relaxed);
            let message = format!("request {} refused: over the limit of {rate} requests per second per console", req.id);
            self.send(&console, &Message::Error(ErrorNotice { message })).await;
            return;
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = req.filter.compile() {
            self.send(&console, &Message::Error(ErrorNotice { message: e.to_string() })).await;
            return;
        }
        // Explicit targets go to exactly those nodes; an empty list is a broadcast to every node in
        // the collective, and each node applies the filter itself.
        let (sent, unknown): (Vec<String>, Vec<String>) = if req.targets.is_empty() {
            let registry_match = match req.fanout {
                fleet_protocol::Fanout::RegistryMatch => req.filter.compile().ok(),
                fleet_protocol::Fanout::All => None,
            };
            let mut all: Vec<String> = self
                .nodes
                .values()
                .filter(|n| n.registration.collectives.contains(&req.collective))
                .filter(|n| registry_match.as_ref().is_none_or(|e| e.matches(&n.registration.view())))
                .map(|n| n.registration.identity.clone())
                .collect();
            all.sort();
            (all, Vec::new())
        } else {
            let mut seen = HashSet::new();
            req.targets.iter().filter(|t| seen.insert(t.as_str())).cloned().partition(|t| self.nodes.contains_key(t))
        };
        let peers: Vec<Peer> = sent.iter().filter_map(|t| self.nodes.get(t).map(|n| n.peer.clone())).collect();
        if req.reply == ReplyMode::Normal {
            let max = Duration::from_secs_f64(self.config.max_request_timeout);
            let wait = if req.timeout_ms == 0 { Duration::from_secs(10) } else { Duration::from_millis(req.timeout_ms) };
            self.routes.insert(
                req.id.clone(),
                Route { console: console.clone(), deadline: Instant::now() + wait.min(max), expected: sent.iter().cloned().collect() },
            );
        }
        debug!(request = %req.id, caller = %req.caller, agent = %req.agent, action = %req.action, nodes = peers.len(), "fan-out");
        let id = req.id.clone();
        self.send_frame_many(&peers, &frame).await;
        self.send(&console, &Message::Dispatched(Dispatched { request_id: id, sent, unknown })).await;
    }

    async fn on_disconnect(&mut self, peer: &Peer, reason: &str) {
        self.sessions.remove(peer);
        self.consoles.remove(peer);
        self.routes.retain(|_, r| r.console != *peer);
        if let Some(identity) = self.node_by_peer.remove(peer) {
            if self.nodes.get(&identity).is_some_and(|n| n.peer == *peer) {
                self.nodes.remove(&identity);
                info!(node = %identity, reason, "node left");
                self.notify_consoles(Event::NodeLeft { identity, reason: reason.to_string() }).await;
            }
        }
    }

    async fn expire(&mut self) {
        let now = Instant::now();
        self.routes.retain(|_, r| r.deadline > now);
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
