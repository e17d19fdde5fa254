//! The hub: binds a ROUTER, keeps the registry of live nodes, answers discovery from it, fans
//! requests out to exactly the nodes asked for (one frame per node), routes replies back to the
//! console that asked, and tells consoles when nodes join, leave or change. It never runs anything.
//!
//! This file holds the hub's state, its loop and its links; `registry.rs` handles registrations,
//! consoles, down nodes and discovery, `requests.rs` admission, fan-out and replies, and
//! `outbox.rs` each link's bounded outbound queue.
//!
//! Every link is enrolled with a role (see enroll.rs): node links may send only Registration,
//! Reply, MetricSample and Ping; console links only Hello, Discover, Request, StatsQuery,
//! MetricSubscribe and Ping (`metrics.rs` keeps and forwards samples), and a console's
//! requests must be signed by the caller its link is enrolled as. Anything else is dropped,
//! counted and audited.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleet_protocol::codec::{Limits, encode_message};
use fleet_protocol::transport::{HubSender, HubSocket, Inbound, Peer, PeerEvent};
use fleet_protocol::{Event, HubStats, Message};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::audit::{Audit, AuditDecision, AuditRecord};
use crate::config::HubConfig;
use crate::enroll::{Gate, GateEvents, KnockLimits, Role, Verdict};
use crate::setup::misconfigured;

mod intern;
pub(crate) mod metrics;
mod outbox;
pub(crate) mod registry;
mod requests;
pub mod trust;

use outbox::{Outbox, OutboxLimits, OutboxTotals};
use registry::{ConsoleEntry, DownNodes, NodeEntry, SharedLists};
use requests::{Origin, Route, RoutedIds};

/// Handshakes of pending keys held at most, and for how long.
const PARKED_MAX: usize = 256;
const PARKED_FOR: Duration = Duration::from_secs(5);

/// Counters the hub exposes (`fleet` can ask for them; the bad-input tests read them).
#[derive(Default)]
pub struct HubCounters {
    pub requests: AtomicU64,
    pub replies: AtomicU64,
    pub late_replies: AtomicU64,
    pub dropped_frames: AtomicU64,
}

impl HubCounters {
    fn dropped(&self) {
        self.dropped_frames.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct Hub {
    sock: HubSocket,
    sender: HubSender,
    peer_events: tokio::sync::mpsc::UnboundedReceiver<PeerEvent>,
    config: HubConfig,
    limits: Limits,
    nodes: HashMap<String, NodeEntry>,
    /// The collective, class and agent lists the nodes' records share.
    shared: SharedLists,
    node_by_peer: HashMap<Peer, String>,
    consoles: HashMap<Peer, ConsoleEntry>,
    routes: HashMap<String, Route>,
    /// Request ids already routed, and the link each belongs to.
    routed: RoutedIds,
    pub counters: Arc<HubCounters>,
    started: Instant,
    /// Trusted callers; requests not signed by one of them are dropped before fan-out.
    callers: Option<fleet_protocol::keys::Keyring>,
    /// The hub's key pair: its link key is what nodes and consoles pin.
    key: Arc<fleet_protocol::keys::KeyPair>,
    /// The signed callers-and-policies frame for node links, when the hub distributes them.
    trust_frame: Option<Bytes>,
    /// Which link keys may attach, under which name and role: decided in memory; unknown keys go
    /// to the enrollment thread, whose verdicts come back on `enrolled`.
    gate: Gate<(Peer, fleet_protocol::noise::Responder)>,
    enrolled: GateEvents<(Peer, fleet_protocol::noise::Responder)>,
    /// Handshakes of keys waiting under `pending/`, held a few seconds in case an admin accepts
    /// the key meanwhile (bounded; no disk involved).
    parked: std::collections::VecDeque<(Instant, Peer, fleet_protocol::noise::Responder)>,
    /// Nodes that left, kept for `keep_down_for`.
    down: DownNodes,
    outbox_totals: Arc<OutboxTotals>,
    /// Established Noise sessions, per peer, with the peer's enrolled name.
    sessions: HashMap<Peer, LinkSession>,
    /// One line per request the hub refuses, in the nodes' audit format.
    audit: Audit,
    /// Node links established now, and when the hub last said it is full.
    node_links: u64,
    full_warned: Option<Instant>,
    metrics: metrics::Metrics,
}

/// An encrypted link, the name and role its key was enrolled under (the peer's proven name),
/// and its outbound queue.
struct LinkSession {
    session: Arc<Mutex<fleet_protocol::noise::Session>>,
    name: String,
    role: Role,
    outbox: Outbox,
}

impl Hub {
    /// Binds the hub's ROUTER. Returns the hub and the resolved endpoint.
    pub async fn bind(endpoint: &str, config: HubConfig, limits: Limits) -> anyhow::Result<(Hub, String)> {
        let callers = match &config.callers_dir {
            Some(dir) => Some({
                fleet_protocol::files::create_private_dir(dir)
                    .map_err(|e| misconfigured(format!("hub.callers_dir: {}: {e}", dir.display())))?;
                fleet_protocol::keys::Keyring::load(dir)
                    .map_err(|e| misconfigured(format!("hub.callers_dir: {e} (or run the hub with --callers-dir DIR)")))?
            }),
            None => {
                warn!("hub.callers_dir is not set: the hub forwards unsigned requests (nodes still refuse them)");
                None
            }
        };
        let key = Arc::new(load_or_create_key(&config.key_file)?);
        let knock = KnockLimits {
            max_pending: config.max_pending,
            per_second: config.max_knocks_per_second,
            per_source_per_second: config.max_knocks_per_source_per_second,
            max_pending_per_source: config.max_pending_per_source,
        };
        let trust = trust::TrustSource::new(config.callers_dir.clone(), config.policy_dir.clone(), key.clone());
        let (gate, enrolled) = Gate::start(&config.enroll_dir, knock, config.callers_dir.clone(), Some(trust))
            .map_err(|e| misconfigured(format!("hub.enroll_dir: cannot use {}: {e}", config.enroll_dir.display())))?;
        let audit = match config.audit_path() {
            Some(path) => Audit::open(&path, config.audit_max_bytes, config.audit_keep).map_err(|e| {
                misconfigured(format!("hub.audit_log: cannot open {}: {e} (or run the hub with --audit-log off)", path.display()))
            })?,
            None => {
                warn!("the hub's audit log is off: refused requests are only logged");
                Audit::disabled()
            }
        };
        let config_metrics = config.metrics.clone();
        let (sock, peer_events) = HubSocket::bind_with_limits(endpoint, limits.max_frame, Some(config.max_link_in_flight as usize)).await?;
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
                shared: SharedLists::default(),
                node_by_peer: HashMap::new(),
                consoles: HashMap::new(),
                routes: HashMap::new(),
                routed: RoutedIds::default(),
                counters: Arc::new(HubCounters::default()),
                started: Instant::now(),
                callers,
                key,
                trust_frame: None,
                gate,
                enrolled,
                parked: Default::default(),
                down: DownNodes::default(),
                outbox_totals: Arc::new(OutboxTotals::default()),
                sessions: HashMap::new(),
                audit,
                node_links: 0,
                full_warned: None,
                metrics: metrics::Metrics::new(config_metrics),
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
            queued_bytes: g(&self.outbox_totals.queued_bytes),
            dropped_replies: g(&self.outbox_totals.dropped),
            pending_keys: self.gate.pending_count() as u64,
            down_nodes: self.down.len() as u64,
            ..self.metrics.stats(&self.outbox_totals.superseded)
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
                        self.counters.dropped();
                        debug!(peer = %peer.short(), "dropped a message of unexpected shape");
                    }
                    Err(e) => {
                        warn!(error = %e, "hub socket closed");
                        return;
                    }
                },
                Some(PeerEvent::Disconnected(peer)) = self.peer_events.recv() => self.on_disconnect(&peer, "link closed").await,
                Some(((peer, responder), verdict)) = self.enrolled.verdicts.recv() => self.on_verdict(peer, responder, verdict).await,
                Some(()) = self.enrolled.changed.recv() => self.unpark().await,
                Some(update) = self.enrolled.trust.recv() => self.on_trust(update),
                Some(node) = self.enrolled.forget.recv() => self.forget_node(&node).await,
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

    /// Queues a frame for one peer's link (encrypted when it is sent). Peers without a session
    /// get nothing. Never waits on the peer.
    async fn send_frame(&mut self, peer: &Peer, plaintext: &[u8]) {
        if let Some(link) = self.sessions.get(peer) {
            link.outbox.push(Bytes::copy_from_slice(plaintext), false);
        }
    }

    /// Queues a node's reply for a console: the first thing dropped when that console is slow.
    fn send_reply_frame(&mut self, peer: &Peer, plaintext: &Bytes) {
        if let Some(link) = self.sessions.get(peer) {
            link.outbox.push(plaintext.clone(), true);
        }
    }

    /// Sends one plaintext frame to many peers, each encrypted for its own link.
    async fn send_frame_many(&mut self, peers: &[Peer], plaintext: &[u8]) {
        let frame = Bytes::copy_from_slice(plaintext);
        for p in peers {
            if let Some(link) = self.sessions.get(p) {
                link.outbox.push(frame.clone(), false);
            }
        }
    }

    /// First frame of a Noise handshake: answered only for enrolled keys. Known keys are decided
    /// from memory; a key never seen goes to the enrollment thread, off this loop.
    async fn on_handshake(&mut self, peer: Peer, frame: &[u8]) {
        let responder = match fleet_protocol::noise::Responder::read(&self.key, frame) {
            Ok(r) => r,
            Err(e) => {
                self.counters.dropped();
                warn!(peer = %peer.short(), error = %e, "handshake refused");
                return;
            }
        };
        let known = self.gate.lookup(&responder.remote_static);
        // A key never seen, or one waiting for enrollment that brings a join token this time, is
        // decided by the enrollment thread.
        let to_thread = match &known {
            None => true,
            Some(Verdict::Pending(_)) => responder.join.is_some(),
            Some(_) => false,
        };
        match known {
            _ if to_thread => {
                let claimed = responder.claimed_name.clone();
                let key = responder.remote_static;
                let proof = responder.join.clone();
                let source = self.sock.source(&peer);
                if self.gate.submit(key, claimed, proof, source, (peer, responder)).is_err() {
                    self.counters.dropped();
                    debug!("enrollment is busy; a handshake from an unknown key was refused");
                }
            }
            Some(verdict) => self.on_verdict(peer, responder, verdict).await,
            None => {}
        }
    }

    /// New callers or policies: the hub checks requests against the new callers from now on,
    /// and every node link gets the signed set.
    fn on_trust(&mut self, update: trust::TrustUpdate) {
        if self.callers.is_some()
            && let Some(ring) = update.callers
        {
            self.callers = Some(ring);
        }
        for link in self.sessions.values().filter(|l| l.role == Role::Node) {
            link.outbox.push(update.frame.clone(), false);
        }
        self.trust_frame = Some(update.frame);
    }

    /// The keys on disk changed: held handshakes whose key was accepted meanwhile complete now.
    async fn unpark(&mut self) {
        let parked = std::mem::take(&mut self.parked);
        for (at, peer, responder) in parked {
            match self.gate.lookup(&responder.remote_static) {
                Some(Verdict::Pending(_)) => self.parked.push_back((at, peer, responder)),
                Some(v @ Verdict::Accepted(..)) => self.on_verdict(peer, responder, v).await,
                _ => {}
            }
        }
    }

    /// Finishes or refuses a handshake once enrollment has decided.
    async fn on_verdict(&mut self, peer: Peer, responder: fleet_protocol::noise::Responder, verdict: Verdict) {
        let (name, role) = match verdict {
            Verdict::Accepted(name, role) => (name, role),
            Verdict::NoRole(name) => {
                self.counters.dropped();
                warn!(
                    key = %name,
                    "link key {name} was enrolled before roles existed; attach refused. Re-enroll it: \
                     noded hub enroll --accept {name} --role node (or --role console)"
                );
                return;
            }
            Verdict::Pending(name) => {
                self.counters.dropped();
                debug!(peer = %peer.short(), key = %name, "link key waits for enrollment; its handshake is held a few seconds");
                self.parked.retain(|(_, p, _)| *p != peer);
                if self.parked.len() >= PARKED_MAX {
                    self.parked.pop_front();
                }
                self.parked.push_back((Instant::now(), peer, responder));
                return;
            }
            Verdict::Rejected(name) => {
                self.counters.dropped();
                debug!(peer = %peer.short(), key = %name, "link key rejected; attach refused");
                return;
            }
            Verdict::Refused(why) => {
                self.counters.dropped();
                debug!(peer = %peer.short(), reason = %why, "unknown link key refused without a record");
                // A joiner is told why (expired, used up, name taken): it is no secret, and
                // saves an admin a guess.
                if responder.join.is_some() {
                    let mut frame = fleet_protocol::noise::TAG_REFUSED.to_vec();
                    frame.extend_from_slice(why.as_bytes());
                    let mut sender = self.sender.clone();
                    tokio::spawn(async move { sender.send(&peer, Bytes::from(frame)).await });
                }
                return;
            }
        };
        // A new node link past capacity is refused (it retries), so the descriptors kept in
        // reserve stay there for consoles.
        if role == Role::Node && !self.sessions.contains_key(&peer) && self.config.max_node_links.is_some_and(|max| self.node_links >= max)
        {
            self.counters.dropped();
            if self.full_warned.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                self.full_warned = Some(Instant::now());
                warn!(
                    node = %name,
                    node_links = self.node_links,
                    "the hub is full: new node links are refused (raise the open-files limit, LimitNOFILE=, or hub.max_node_links)"
                );
            }
            return;
        }
        // A console that just joined is a caller the enrollment thread has already told us about.
        while let Ok(update) = self.enrolled.trust.try_recv() {
            self.on_trust(update);
        }
        let (session, answer) = match responder.accept_as(&name) {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, "handshake failed");
                return;
            }
        };
        let session = Arc::new(Mutex::new(session));
        let answer = Bytes::from(answer);
        match self.sessions.get_mut(&peer) {
            // A reconnect on the same connection is a new session, queued behind what was sent.
            Some(link) => {
                link.outbox.rekey(session.clone(), answer);
                link.session = session;
                link.name = name.clone();
                match (link.role, role) {
                    (Role::Node, Role::Console) => self.node_links = self.node_links.saturating_sub(1),
                    (Role::Console, Role::Node) => self.node_links += 1,
                    _ => {}
                }
                link.role = role;
            }
            None => {
                let limits = OutboxLimits { max_frames: self.config.max_link_queue, max_bytes: self.config.max_link_queue_bytes };
                let outbox = Outbox::start(peer.clone(), session.clone(), answer, self.sender.clone(), limits, self.outbox_totals.clone());
                if role == Role::Node {
                    self.node_links += 1;
                }
                self.sessions.insert(peer.clone(), LinkSession { session, name: name.clone(), role, outbox });
            }
        }
        if role == Role::Node
            && let (Some(frame), Some(link)) = (&self.trust_frame, self.sessions.get(&peer))
        {
            link.outbox.push(frame.clone(), false);
        }
        debug!(peer = %peer.short(), name = %name, %role, "link established");
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

    /// One frame off the socket: a handshake, or a message inside an established link, which is
    /// decrypted, decoded (a request's signature checked first) and handed to its handler.
    async fn on_frame(&mut self, peer: Peer, frame: Bytes) {
        if fleet_protocol::noise::is_handshake_1(&frame) {
            return self.on_handshake(peer, &frame).await;
        }
        let received = Instant::now();
        let Some((frame, link, role)) = self.open_link_frame(&peer, &frame) else { return };
        let env = match fleet_protocol::Envelope::from_frame(&frame, &self.limits) {
            Ok(env) => env,
            Err(e) => {
                self.counters.dropped();
                debug!(peer = %peer.short(), error = %e, "dropped malformed frame");
                return;
            }
        };
        let mut origin = Origin { peer, link, role, signer: None, received };
        // Requests are checked for the role after their signature and id (see requests.rs), so
        // the audit line of a refused request names it.
        if env.kind != fleet_protocol::Kind::Request && !role_may_send(role, env.kind) {
            return self.refuse_role(&origin, role, &env).await;
        }
        // Requests are checked over their raw bytes before anything in them is decoded.
        if env.kind == fleet_protocol::Kind::Request {
            match self.verify_request(&origin, &env).await {
                Some(signer) => origin.signer = signer,
                None => return,
            }
        }
        let msg = match env.open(&self.limits) {
            Ok(m) => m,
            Err(e) => {
                self.counters.dropped();
                debug!(peer = %origin.peer.short(), error = %e, "dropped malformed frame");
                return;
            }
        };
        let peer = origin.peer.clone();
        match msg {
            Message::Registration(reg) => self.on_registration(peer, &origin.link, *reg).await,
            Message::Reply(reply) => self.on_reply(peer, &reply, &frame),
            Message::Hello(hello) => self.on_hello(peer, hello).await,
            Message::Discover(discover) => self.on_discover(peer, discover).await,
            Message::Request(req) => self.on_request(origin, *req, frame).await,
            Message::StatsQuery => {
                let stats = self.stats();
                self.send(&peer, &Message::HubStats(stats)).await;
            }
            Message::Ping => self.send(&peer, &Message::Pong).await,
            Message::MetricSample(sample) => self.on_metric_sample(&peer, &origin.link, sample),
            Message::MetricSubscribe(ask) => self.on_metric_subscribe(peer, ask).await,
            other => {
                self.counters.dropped();
                debug!(kind = ?other.kind(), "message kind not accepted by the hub");
            }
        }
    }

    /// Decrypts a frame of an established link. Returns the plaintext and the link's enrolled
    /// name and role; `None` (counted) when the peer has no link or the frame does not decrypt.
    fn open_link_frame(&mut self, peer: &Peer, frame: &[u8]) -> Option<(Bytes, String, Role)> {
        let Some(link) = self.sessions.get_mut(peer) else {
            self.counters.dropped();
            debug!(peer = %peer.short(), "frame from a peer without a link session dropped");
            return None;
        };
        let opened =
            link.session.lock().map_err(|_| fleet_protocol::noise::NoiseError::Malformed("poisoned")).and_then(|mut s| s.open(frame));
        match opened {
            Ok(plain) => Some((Bytes::from(plain), link.name.clone(), link.role)),
            Err(e) => {
                self.counters.dropped();
                debug!(peer = %peer.short(), error = %e, "undecryptable frame dropped");
                None
            }
        }
    }

    async fn on_disconnect(&mut self, peer: &Peer, reason: &str) {
        if let Some(link) = self.sessions.remove(peer) {
            if link.role == Role::Node {
                self.node_links = self.node_links.saturating_sub(1);
            }
            if link.outbox.high_water() > 1024 * 1024 {
                drop(link);
                crate::memory::release_freed_heap();
            }
        }
        self.consoles.remove(peer);
        self.metrics.forget_console(peer);
        self.routes.retain(|_, r| r.console != *peer);
        if let Some(identity) = self.node_by_peer.remove(peer)
            && self.nodes.get(&identity).is_some_and(|n| n.peer == *peer)
        {
            self.node_down(&identity, reason).await;
        }
    }

    async fn expire(&mut self) {
        let now = Instant::now();
        while self.parked.front().is_some_and(|(at, _, _)| now.duration_since(*at) > PARKED_FOR) {
            self.parked.pop_front();
        }
        self.routes.retain(|_, r| r.deadline > now);
        self.routed.forget_expired(now);
        self.metrics.store.expire();
        self.expire_nodes(now).await;
        self.down.expire(Duration::from_secs_f64(self.config.keep_down_for));
    }

    /// Drops, counts and audits a frame its link's role may not send, and tells the sender.
    async fn refuse_role(&mut self, origin: &Origin, role: Role, env: &fleet_protocol::Envelope) {
        self.counters.dropped();
        let why = format!(
            "a {role} link ('{}') may not send {:?}; {}",
            origin.link,
            env.kind,
            if role == Role::Node {
                "node links send only Registration, Reply, MetricSample and Ping"
            } else {
                "console links send only Hello, Discover, Request, StatsQuery, MetricSubscribe and Ping"
            }
        );
        warn!(peer = %origin.peer.short(), link = %origin.link, %role, kind = ?env.kind, "frame refused for the link's role");
        self.audit.log(AuditRecord {
            request_id: "-".into(),
            caller: env.signer.clone().unwrap_or_else(|| "-".into()),
            agent: "-".into(),
            action: "-".into(),
            args_digest: "-".into(),
            decision: AuditDecision::Rejected,
            reason: why.clone(),
            duration: origin.received.elapsed(),
        });
        let message = format!("refused by the hub: {why}");
        self.send(&origin.peer, &Message::Error(fleet_protocol::ErrorNotice { message })).await;
    }
}

/// What each role may send to the hub.
/// The hub's key pair, created (0600, in a 0700 directory) on the first start.
fn load_or_create_key(path: &std::path::Path) -> anyhow::Result<fleet_protocol::keys::KeyPair> {
    use fleet_protocol::keys::KeyPair;
    if !path.exists() {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("hub");
        let (private, public) =
            KeyPair::generate().save(dir, name).map_err(|e| misconfigured(format!("hub.key_file: cannot create the hub key: {e}")))?;
        info!(key = %private.display(), public = %public.display(), "created the hub's key pair (first start)");
    }
    KeyPair::load_private(path).map_err(|e| misconfigured(format!("hub.key_file: {e}")))
}

fn role_may_send(role: Role, kind: fleet_protocol::Kind) -> bool {
    use fleet_protocol::Kind;
    match role {
        Role::Node => matches!(kind, Kind::Registration | Kind::Reply | Kind::MetricSample | Kind::Ping),
        Role::Console => {
            matches!(kind, Kind::Hello | Kind::Discover | Kind::Request | Kind::StatsQuery | Kind::MetricSubscribe | Kind::Ping)
        }
    }
}
