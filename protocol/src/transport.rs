//! The transport seam. Everything above it deals in whole frames and opaque peer handles; only
//! this file knows about ZeroMQ. The hub side is a ROUTER ([`HubSocket`]); nodes and consoles
//! attach with a DEALER ([`Link`]). The seam is narrow on purpose (attach, send to one peer, send to
//! a set, receive, link state) so the hub role can later move onto another broker.
//!
//! zmq.rs DEALER sockets do not reconnect by themselves, so a [`Link`] reports `Down` when its
//! peer disconnects and the owner rebuilds it (see noded's link loop).
//!
//! The hub's ROUTER is fleet's own ZMTP code (router.rs): one descriptor per link, every frame
//! header held to the limits before its body is kept, routing ids chosen by the hub. Nodes and
//! consoles use zmq.rs DEALERs, each behind an outbound [`FrameGuard`] that holds a hub's frames to
//! the same limits; that guard is a Unix socket in a directory only its user can enter. No local
//! socket of fleet is reachable by another local user, and the hub has no inner socket at all.

use std::time::Duration;

use bytes::Bytes;
use zeromq::prelude::*;
use zeromq::util::PeerIdentity;
use zeromq::{DealerSocket, SocketEvent, SocketOptions, ZmqMessage};

use crate::codec::DEFAULT_MAX_FRAME;
use crate::guard::{FrameGuard, GuardLimits};
use crate::router::{Listen, Received, Router, RouterSender};

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
pub struct Peer(pub(crate) Bytes);

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

/// The hub's bound ROUTER (see `router.rs`: fleet's own ZMTP on each accepted socket).
pub struct HubSocket {
    router: Router,
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
        Self::bind_with_limits(endpoint, DEFAULT_MAX_FRAME, None).await
    }

    /// Binds like [`HubSocket::bind`] for a hub whose codec accepts frames of up to `max_frame` bytes.
    ///
    /// A frame header claiming more than twice `max_frame` closes that peer's link before any room
    /// is reserved for it (see [`GuardLimits::for_max_frame`]); a frame a little over the limit
    /// still reaches the hub, which drops and counts it and keeps the link. The same holds on
    /// `tcp://` and `ipc://`. `send_buffer` caps each TCP link's kernel send buffer (the bytes
    /// that may wait for a peer that stops reading); `None` leaves the kernel's default.
    pub async fn bind_with_limits(
        endpoint: &str,
        max_frame: usize,
        send_buffer: Option<usize>,
    ) -> Result<(HubSocket, tokio::sync::mpsc::UnboundedReceiver<PeerEvent>), TransportError> {
        let bind_error = |source: zeromq::ZmqError| TransportError::Bind { endpoint: endpoint.to_string(), source };
        let io_error = |e: std::io::Error| bind_error(zeromq::ZmqError::Network(e));
        let public = endpoint.parse::<zeromq::Endpoint>().map_err(|e| bind_error(e.into()))?;
        let listen = match &public {
            zeromq::Endpoint::Tcp(host, port) => {
                let host = host.to_string().trim_start_matches('[').trim_end_matches(']').to_string();
                Listen::Tcp(host, *port)
            }
            zeromq::Endpoint::Ipc(Some(path)) => Listen::Unix(path.clone()),
            _ => return Err(io_error(std::io::Error::other("the hub binds tcp://HOST:PORT or ipc://PATH"))),
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let router = Router::bind(listen, GuardLimits::for_max_frame(max_frame), send_buffer, tx).await.map_err(io_error)?;
        let endpoint = match (public, router.local_addr()) {
            // Report the endpoint as given, with the port as bound.
            (zeromq::Endpoint::Tcp(host, _), Some(addr)) => zeromq::Endpoint::Tcp(host, addr.port()).to_string(),
            (public, _) => public.to_string(),
        };
        Ok((HubSocket { router, endpoint }, rx))
    }

    /// The resolved endpoint (with the real port when bound to port 0).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Links cut for oversized or malformed framing.
    pub fn guard_refusals(&self) -> u64 {
        self.router.refused().load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The address `peer` connects from (the router puts it in the routing id it gives each TCP
    /// link); `None` on `ipc://`.
    pub fn source(&self, peer: &Peer) -> Option<std::net::IpAddr> {
        crate::router::source_of(&peer.0)
    }

    pub async fn recv(&mut self) -> Result<Inbound, TransportError> {
        let Received { id, mut parts } = self.router.recv().await.ok_or(TransportError::Closed)?;
        let peer = Peer(id);
        // A DEALER sends exactly one payload frame; a REQ-style peer adds an empty delimiter.
        match parts.len() {
            1 => Ok(Inbound::Frame(peer, parts.pop().unwrap())),
            2 if parts[0].is_empty() => Ok(Inbound::Frame(peer, parts.pop().unwrap())),
            _ => Ok(Inbound::Malformed(peer)),
        }
    }

    /// A cheap handle for sending from other tasks.
    pub fn sender(&self) -> HubSender {
        HubSender { send: self.router.sender() }
    }
}

/// Sends frames to the hub's peers.
#[derive(Clone)]
pub struct HubSender {
    send: RouterSender,
}

impl HubSender {
    pub async fn send(&mut self, peer: &Peer, frame: Bytes) -> Result<(), TransportError> {
        self.send_all(peer, &[frame]).await
    }

    /// Sends frames to one peer, in order, in as few writes as their sizes allow.
    pub async fn send_all(&mut self, peer: &Peer, frames: &[Bytes]) -> Result<(), TransportError> {
        let bodies: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
        self.send.send(&peer.0, &bodies).await.map_err(|e| TransportError::Send(zeromq::ZmqError::Network(e)))
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
                let target = guard.ipc_endpoint();
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
