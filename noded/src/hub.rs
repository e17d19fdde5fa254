//! The hub: binds a ROUTER, keeps the registry of live nodes, answers discovery from it, fans
//! requests out to exactly the nodes asked for (one frame per node), routes replies back to the
//! console that asked, and tells consoles when nodes join, leave or change. It never runs anything.
//!
//! This file holds the hub's state, its loop and its links; `registry.rs` handles registrations,
//! consoles and discovery, and `requests.rs` admission, fan-out and replies.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleet_protocol::codec::{Limits, encode_message};
use fleet_protocol::transport::{HubSender, HubSocket, Inbound, Peer, PeerEvent};
use fleet_protocol::{Event, HubStats, Message};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::audit::Audit;
use crate::config::HubConfig;

mod registry;
mod requests;

use registry::{ConsoleEntry, NodeEntry};
use requests::{Origin, Route, RoutedIds};

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
    key: fleet_protocol::keys::KeyPair,
    /// Which link keys may attach, and under which name.
    enrollment: crate::enroll::Enrollment,
    /// Established Noise sessions, per peer, with the peer's enrolled name.
    sessions: HashMap<Peer, LinkSession>,
    /// One line per request the hub refuses, in the nodes' audit format.
    audit: Audit,
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
        let audit = match config.audit_path() {
            Some(path) => Audit::open(&path, config.audit_max_bytes, config.audit_keep)
                .map_err(|e| anyhow::anyhow!("hub.audit_log: cannot open {}: {e} (or run the hub with --audit-log off)", path.display()))?,
            None => {
                warn!("the hub's audit log is off: refused requests are only logged");
                Audit::disabled()
            }
        };
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
                routed: RoutedIds::default(),
                counters: Arc::new(HubCounters::default()),
                started: Instant::now(),
                callers,
                key,
                enrollment,
                sessions: HashMap::new(),
                audit,
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
                        self.counters.dropped();
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
                self.counters.dropped();
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
                self.counters.dropped();
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

    /// One frame off the socket: a handshake, or a message inside an established link, which is
    /// decrypted, decoded (a request's signature checked first) and handed to its handler.
    async fn on_frame(&mut self, peer: Peer, frame: Bytes) {
        if fleet_protocol::noise::is_handshake_1(&frame) {
            return self.on_handshake(peer, &frame).await;
        }
        let received = Instant::now();
        let Some((frame, link)) = self.open_link_frame(&peer, &frame) else { return };
        let env = match fleet_protocol::Envelope::from_frame(&frame, &self.limits) {
            Ok(env) => env,
            Err(e) => {
                self.counters.dropped();
                debug!(peer = %peer.short(), error = %e, "dropped malformed frame");
                return;
            }
        };
        let mut origin = Origin { peer, link, signer: None, received };
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
            Message::Reply(reply) => self.on_reply(peer, &reply, &frame).await,
            Message::Hello(hello) => self.on_hello(peer, hello).await,
            Message::Discover(discover) => self.on_discover(peer, discover).await,
            Message::Request(req) => self.on_request(origin, *req, frame).await,
            Message::StatsQuery => {
                let stats = self.stats();
                self.send(&peer, &Message::HubStats(stats)).await;
            }
            Message::Ping => self.send(&peer, &Message::Pong).await,
            other => {
                self.counters.dropped();
                debug!(kind = ?other.kind(), "message kind not accepted by the hub");
            }
        }
    }

    /// Decrypts a frame of an established link. Returns the plaintext and the link's enrolled
    /// name; `None` (counted) when the peer has no link or the frame does not decrypt.
    fn open_link_frame(&mut self, peer: &Peer, frame: &[u8]) -> Option<(Bytes, String)> {
        let Some(link) = self.sessions.get_mut(peer) else {
            self.counters.dropped();
            debug!(peer = %peer.short(), "frame from a peer without a link session dropped");
            return None;
        };
        match link.session.open(frame) {
            Ok(plain) => Some((Bytes::from(plain), link.name.clone())),
            Err(e) => {
                self.counters.dropped();
                debug!(peer = %peer.short(), error = %e, "undecryptable frame dropped");
                None
            }
        }
    }

    async fn on_disconnect(&mut self, peer: &Peer, reason: &str) {
        self.sessions.remove(peer);
        self.consoles.remove(peer);
        self.routes.retain(|_, r| r.console != *peer);
        if let Some(identity) = self.node_by_peer.remove(peer)
            && self.nodes.get(&identity).is_some_and(|n| n.peer == *peer)
        {
            self.nodes.remove(&identity);
            info!(node = %identity, reason, "node left");
            self.notify_consoles(Event::NodeLeft { identity, reason: reason.to_string() }).await;
        }
    }

    async fn expire(&mut self) {
        let now = Instant::now();
        self.routes.retain(|_, r| r.deadline > now);
        self.routed.forget_expired(now);
        self.expire_nodes(now).await;
    }
}
