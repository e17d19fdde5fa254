//! The transport seam. Everything above it deals in whole frames and opaque peer handles; only
//! this file knows about ZeroMQ. The hub side is a ROUTER ([`HubSocket`]); nodes and consoles
//! attach with a DEALER ([`Link`]). The seam is narrow on purpose (attach, send to one peer, send to
//! a set, receive, link state) so the hub role can later move onto another broker.
//!
//! zmq.rs DEALER sockets do not reconnect by themselves, so a [`Link`] reports `Down` when its
//! peer disconnects and the owner rebuilds it (see noded's link loop).
//!
//! On `tcp://` the hub's ROUTER is never exposed directly: it listens on an `ipc://` socket in a
//! directory only the hub's user can enter (mode 0700), behind a [`FrameGuard`], which cuts a
//! client whose frame header claims more than twice the frame limit before zmq.rs can reserve
//! memory for it, and gives each client its routing id (see guard.rs). A node's or console's
//! outbound guard is likewise a Unix socket in a private directory. No local socket of fleet is
//! reachable by another local user.

use std::time::Duration;

use bytes::Bytes;
use zeromq::prelude::*;
use zeromq::util::PeerIdentity;
use zeromq::{DealerSocket, RouterSocket, SocketEvent, SocketOptions, ZmqMessage};

use crate::codec::DEFAULT_MAX_FRAME;
use crate::guard::{FrameGuard, GuardLimits, PrivateDir, Upstream};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot bind {endpoint}: {source}")]
    Bind { endpoint: String, source: zeromq::ZmqError },
    #[error("cannot reach hub {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("send failed: {0}")]
    Send(zeromq::ZmqError),
    #[error("link closed")]
    Closed,
}

/// Opaque handle for a peer connected to the hub (the ZeroMQ routing id). It is a routing hint,
/// never proof of who is on the other end.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer(Bytes);

impl Peer {
    pub fn short(&self) -> String {
        // The last bytes: a guard's routing id ends in its random part.
        self.0.iter().skip(self.0.len().saturating_sub(6)).map(|b| format!("{b:02x}")).collect()
    }
}

/// A frame that arrived at the hub, or a frame with an odd shape.
#[derive(Debug)]
pub enum Inbound {
    Frame(Peer, Bytes),
    /// A ZeroMQ message whose shape is not [identity, payload]; counted and dropped.
    Malformed(Peer),
}

/// The hub's bound ROUTER socket.
pub struct HubSocket {
    send: zeromq::RouterSendHalf,
    recv: zeromq::RouterRecvHalf,
    _monitor: AbortOnDrop,
    /// The front door on `tcp://` endpoints; dropping it stops its listener and relays.
    guard: Option<FrameGuard>,
    /// The private directory of the ROUTER's inner `ipc://` socket (tcp:// only); removed on drop.
    _inner_dir: Option<PrivateDir>,
    endpoint: String,
}

/// Peer link events seen by the hub.
#[derive(Debug)]
pub enum PeerEvent {
    Disconnected(Peer),
}

impl HubSocket {
    /// Binds a ROUTER on `endpoint` (e.g. `tcp://0.0.0.0:7402`, `tcp://127.0.0.1:0`, `ipc:///run/fleet.sock`)
    /// with the default 16 MiB frame limit. Returns the socket and a receiver of peer disconnect events.
    pub async fn bind(endpoint: &str) -> Result<(HubSocket, tokio::sync::mpsc::UnboundedReceiver<PeerEvent>), TransportError> {
        Self::bind_with_limits(endpoint, DEFAULT_MAX_FRAME).await
    }

    /// Binds like [`HubSocket::bind`] for a hub whose codec accepts frames of up to `max_frame` bytes.
    ///
    /// On `tcp://` the ROUTER listens on `tcp://127.0.0.1:<any>` and a [`FrameGuard`] takes
    /// `endpoint`, so a frame header claiming more than twice `max_frame` closes that client's link
    /// instead of making zmq.rs reserve the claim (see [`GuardLimits::for_max_frame`]). `ipc://`
    /// endpoints are bound directly, unguarded: only local users the filesystem lets in reach them.
    pub async fn bind_with_limits(
        endpoint: &str,
        max_frame: usize,
    ) -> Result<(HubSocket, tokio::sync::mpsc::UnboundedReceiver<PeerEvent>), TransportError> {
        let bind_error = |source: zeromq::ZmqError| TransportError::Bind { endpoint: endpoint.to_string(), source };
        let io_error = |e: std::io::Error| bind_error(zeromq::ZmqError::Network(e));
        let public = endpoint.parse::<zeromq::Endpoint>().map_err(|e| bind_error(e.into()))?;
        // On tcp:// the ROUTER itself listens on a Unix socket in a 0700 directory: only the guard
        // (this process) and this user can reach it.
        let inner_dir = match public {
            zeromq::Endpoint::Tcp(..) => Some(PrivateDir::create("fleet-hub-").map_err(io_error)?),
            _ => None,
        };
        let inner = match &inner_dir {
            Some(dir) => format!("ipc://{}", dir.path().join("router.sock").display()),
            None => endpoint.to_string(),
        };
        let mut sock = RouterSocket::new();
        let mut monitor = sock.monitor();
        sock.bind(&inner).await.map_err(bind_error)?;
        let (guard, endpoint) = match (public, &inner_dir) {
            (zeromq::Endpoint::Tcp(host, port), Some(dir)) => {
                let upstream = Upstream::Unix(dir.path().join("router.sock"));
                let guard = FrameGuard::bind((host.to_string(), port), upstream, GuardLimits::for_max_frame(max_frame))
                    .await
                    .map_err(|e| bind_error(e.into()))?;
                // Report the endpoint as zmq.rs would have: the host as given, the port as bound.
                let resolved = zeromq::Endpoint::Tcp(host, guard.local_addr().port()).to_string();
                (Some(guard), resolved)
            }
            _ => (None, inner.clone()),
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let forward = tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(ev) = monitor.next().await {
                if let SocketEvent::Disconnected(id) = ev {
                    let peer = Peer(Bytes::copy_from_slice(id.as_ref()));
                    if tx.send(PeerEvent::Disconnected(peer)).is_err() {
                        break;
                    }
                }
            }
        });
        let (send, recv) = sock.split();
        Ok((HubSocket { send, recv, _monitor: AbortOnDrop(forward), guard, _inner_dir: inner_dir, endpoint }, rx))
    }

    /// The resolved endpoint (with the real port when bound to port 0).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Client links the frame guard has cut (oversized or malformed framing); 0 on `ipc://`.
    pub fn guard_refusals(&self) -> u64 {
        self.guard.as_ref().map_or(0, FrameGuard::refusals)
    }

    /// Message bytes the front door has delivered to `peer`'s socket so far (the body bytes of
    /// the frames sent to it), while its link lives; `None` without a guard (`ipc://`).
    pub fn delivered(&self, peer: &Peer) -> Option<std::sync::Arc<std::sync::atomic::AtomicU64>> {
        self.guard.as_ref()?.delivered(&peer.0)
    }

    /// The address `peer` connects from, as its front door saw it (the guard puts it in the
    /// routing id it gives each link); `None` without a guard, where peers name themselves.
    pub fn source(&self, peer: &Peer) -> Option<std::net::IpAddr> {
        self.guard.as_ref()?;
        crate::guard::source_of(&peer.0)
    }

    /// A handle on the delivery counters, for tasks that outlive a borrow of the socket.
    pub fn deliveries(&self) -> Option<crate::guard::Deliveries> {
        self.guard.as_ref().map(FrameGuard::deliveries)
    }

    /// The frame guard's shared refusal counter, when there is a guard.
    pub fn guard_refusal_counter(&self) -> Option<std::sync::Arc<std::sync::atomic::AtomicU64>> {
        self.guard.as_ref().map(FrameGuard::refusal_counter)
    }

    pub async fn recv(&mut self) -> Result<Inbound, TransportError> {
        let msg = self.recv.recv().await.map_err(|_| TransportError::Closed)?;
        let mut frames = msg.into_vec();
        let id = frames.remove(0);
        let peer = Peer(id);
        // A DEALER sends exactly one payload frame; a REQ-style peer adds an empty delimiter.
        match frames.len() {
            1 => Ok(Inbound::Frame(peer, frames.pop().unwrap())),
            2 if frames[0].is_empty() => Ok(Inbound::Frame(peer, frames.pop().unwrap())),
            _ => Ok(Inbound::Malformed(peer)),
        }
    }

    /// A cheap handle for sending from other tasks.
    pub fn sender(&self) -> HubSender {
        HubSender { send: self.send.clone() }
    }
}

/// Sends frames to peers of the hub's ROUTER.
#[derive(Clone)]
pub struct HubSender {
    send: zeromq::RouterSendHalf,
}

impl HubSender {
    pub async fn send(&mut self, peer: &Peer, frame: Bytes) -> Result<(), TransportError> {
        let mut msg = ZmqMessage::from(peer.0.clone());
        msg.push_back(frame);
        self.send.send(msg).await.map_err(TransportError::Send)
    }

    /// Sends the same frame to each peer; returns the peers that could not be reached.
    pub async fn send_many<'a>(&mut self, peers: impl IntoIterator<Item = &'a Peer>, frame: Bytes) -> Vec<Peer> {
        let mut failed = Vec::new();
        for p in peers {
            if self.send(p, frame.clone()).await.is_err() {
                failed.push(p.clone());
            }
        }
        failed
    }
}

/// A DEALER attached to one hub.
pub struct Link {
    send: zeromq::DealerSendHalf,
    recv: zeromq::DealerRecvHalf,
    down: tokio::sync::watch::Receiver<bool>,
    _watcher: AbortOnDrop,
    endpoint: String,
    /// The loopback guard the DEALER really connects to: it refuses oversized frames from the hub
    /// before zmq.rs can reserve memory for them.
    _guard: Option<FrameGuard>,
}

/// The state of a link as seen by its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Up,
    Down,
}

impl Link {
    /// Connects to a hub, giving up after `timeout` (the TCP and ZMTP handshake included).
    pub async fn connect(endpoint: &str, timeout: Duration) -> Result<Link, TransportError> {
        Self::connect_with(endpoint, timeout, true).await
    }

    /// [`connect`](Self::connect), choosing whether a `tcp://` link goes through the outbound
    /// frame guard (`guarded = false` only where the hub is this same process, as in `noded sim`
    /// with an embedded hub).
    pub async fn connect_with(endpoint: &str, timeout: Duration, guarded: bool) -> Result<Link, TransportError> {
        let mut opts = SocketOptions::default();
        opts.connect_timeout(timeout);
        let mut sock = DealerSocket::with_options(opts);
        let mut monitor = sock.monitor();
        // tcp:// links go through a local frame guard, reached over a Unix socket in a private
        // directory; ipc:// stays on this host and is direct.
        let (guard, target) = match endpoint.parse::<zeromq::Endpoint>() {
            Ok(zeromq::Endpoint::Tcp(host, port)) if guarded => {
                let host = host.to_string().trim_start_matches('[').trim_end_matches(']').to_string();
                let guard = FrameGuard::bind_outbound(host, port, GuardLimits::default())
                    .await
                    .map_err(|e| TransportError::Connect { endpoint: endpoint.to_string(), reason: format!("frame guard: {e}") })?;
                let target = guard.ipc_endpoint().expect("an outbound guard listens on a Unix socket");
                (Some(guard), target)
            }
            _ => (None, endpoint.to_string()),
        };
        match tokio::time::timeout(timeout, sock.connect(&target)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(TransportError::Connect { endpoint: endpoint.to_string(), reason: e.to_string() }),
            Err(_) => {
                return Err(TransportError::Connect {
                    endpoint: endpoint.to_string(),
                    reason: format!("no answer within {} ms", timeout.as_millis()),
                });
            }
        }
        let (tx, down) = tokio::sync::watch::channel(false);
        let watcher = tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(ev) = monitor.next().await {
                if matches!(ev, SocketEvent::Disconnected(_) | SocketEvent::Closed) {
                    let _ = tx.send(true);
                    break;
                }
            }
        });
        let (send, recv) = sock.split();
        Ok(Link { send, recv, down, _watcher: AbortOnDrop(watcher), endpoint: endpoint.to_string(), _guard: guard })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn state(&self) -> LinkState {
        let down = *self.down.borrow();
        if down { LinkState::Down } else { LinkState::Up }
    }

    /// Resolves when the peer disconnects.
    pub async fn closed(&mut self) {
        let _ = self.down.wait_for(|d| *d).await;
    }

    pub async fn send(&mut self, frame: Bytes) -> Result<(), TransportError> {
        if self.state() == LinkState::Down {
            return Err(TransportError::Closed);
        }
        self.send.send(ZmqMessage::from(frame)).await.map_err(TransportError::Send)
    }

    /// Receives the next payload frame.
    pub async fn recv(&mut self) -> Result<Bytes, TransportError> {
        let msg = self.recv.recv().await.map_err(|_| TransportError::Closed)?;
        msg.into_vec().pop().ok_or(TransportError::Closed)
    }

    /// Splits into a cloneable-by-channel sender and the receiving half.
    pub fn split(self) -> (LinkSender, LinkReceiver) {
        let Link { send, recv, down, _watcher, endpoint, _guard } = self;
        (LinkSender { send, down: down.clone() }, LinkReceiver { recv, down, _watcher, endpoint, _guard })
    }
}

/// Aborts a background task when its owner goes away.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub struct LinkSender {
    send: zeromq::DealerSendHalf,
    down: tokio::sync::watch::Receiver<bool>,
}

impl LinkSender {
    pub async fn send(&mut self, frame: Bytes) -> Result<(), TransportError> {
        let down = *self.down.borrow();
        if down {
            return Err(TransportError::Closed);
        }
        self.send.send(ZmqMessage::from(frame)).await.map_err(TransportError::Send)
    }
}

pub struct LinkReceiver {
    recv: zeromq::DealerRecvHalf,
    _guard: Option<FrameGuard>,
    down: tokio::sync::watch::Receiver<bool>,
    _watcher: AbortOnDrop,
    endpoint: String,
}

impl LinkReceiver {
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
    pub async fn recv(&mut self) -> Result<Bytes, TransportError> {
        let msg = self.recv.recv().await.map_err(|_| TransportError::Closed)?;
        msg.into_vec().pop().ok_or(TransportError::Closed)
    }
    pub async fn closed(&mut self) {
        let _ = self.down.wait_for(|d| *d).await;
    }
    /// A separate handle on the link's state, for selecting on it while receiving.
    pub fn down_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.down.clone()
    }
}

/// Used by tests that need a raw ZeroMQ peer (bad-input tests): a random routing id.
pub fn random_identity() -> PeerIdentity {
    PeerIdentity::new()
}
