//! The hub's ROUTER: ZMTP 3.0 (NULL mechanism) spoken directly on each accepted socket.
//!
//! zmq.rs reserves whatever a frame header claims and has no maximum message size, so its ROUTER
//! could only face the network behind a relay that read the stream first, and that relay cost the
//! hub three descriptors per link (the client's socket, the relay's socket to the ROUTER, the
//! ROUTER's end) and a second copy of every byte. Here the hub owns the socket: one descriptor per
//! link, every header checked against the limits before a byte of its body is kept, and the
//! routing id chosen by the hub (`g<address>|<random>` on TCP), never by the peer.
//!
//! Nodes and consoles still speak to it with zmq.rs DEALERs: the wire is plain ZMTP.

mod framer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::guard::{GuardLimits, ReadSide, Refusal};
use crate::transport::{Peer, PeerEvent};
use framer::{Event, Framer};

/// Messages waiting for the hub's loop. A peer whose messages do not fit waits before its socket
/// is read again, so a flood slows its sender rather than growing the hub.
const INBOUND_QUEUE: usize = 1024;
/// Most bytes read from one peer before its messages are handed on.
const READ_BURST: usize = 256 * 1024;
/// The read buffer each runtime thread lends to whichever link it is reading.
const SCRATCH: usize = 64 * 1024;
/// A message body up to this size is copied behind its header, so it leaves in one write.
const COALESCE: usize = 16 * 1024;

/// A message from a peer, as the ROUTER saw it: the routing id and the parts.
pub(crate) struct Received {
    pub id: Bytes,
    pub parts: Vec<Bytes>,
}

type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// One open link.
struct Conn {
    write: tokio::sync::Mutex<Writer>,
    /// Told when a write failed: the reader stops and the link is torn down.
    closed: Notify,
}

impl Conn {
    async fn write_raw(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.write.lock().await.write_all(bytes).await
    }

    /// Writes single-part messages in order, in as few writes as their sizes allow: a body up to
    /// `COALESCE` goes behind its header in one buffer with its neighbours, a bigger one is
    /// written from where it is.
    async fn send(&self, bodies: &[&[u8]]) -> std::io::Result<()> {
        let small: usize = bodies.iter().map(|b| 9 + if b.len() <= COALESCE { b.len() } else { 0 }).sum();
        let mut pending = Vec::with_capacity(small);
        let mut w = self.write.lock().await;
        let sent = async {
            for body in bodies {
                framer::header(&mut pending, 0, body.len());
                if body.len() <= COALESCE {
                    pending.extend_from_slice(body);
                } else {
                    w.write_all(&pending).await?;
                    pending.clear();
                    w.write_all(body).await?;
                }
            }
            if !pending.is_empty() {
                w.write_all(&pending).await?;
            }
            Ok(())
        }
        .await;
        drop(w);
        if sent.is_err() {
            self.closed.notify_one();
        }
        sent
    }
}

type Conns = Arc<RwLock<HashMap<Bytes, Arc<Conn>>>>;

/// The listening side: accepted links, and what arrived on them.
pub(crate) struct Router {
    inbound: mpsc::Receiver<Received>,
    conns: Conns,
    refused: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
    local_addr: Option<SocketAddr>,
    /// The socket file of an `ipc://` listener, removed on drop.
    local_path: Option<PathBuf>,
}

/// Where a router listens.
pub(crate) enum Listen {
    Tcp(String, u16),
    Unix(PathBuf),
}

impl Router {
    /// Binds and starts accepting. `disconnected` is told of every link that completed its
    /// handshake and then went. `send_buffer` (TCP only) caps each link's kernel
    /// send buffer: the bytes that may wait between the hub and a peer that does not read.
    pub(crate) async fn bind(
        at: Listen,
        limits: GuardLimits,
        send_buffer: Option<usize>,
        disconnected: mpsc::UnboundedSender<PeerEvent>,
    ) -> std::io::Result<Router> {
        let (tx, inbound) = mpsc::channel(INBOUND_QUEUE);
        let conns: Conns = Default::default();
        let refused = Arc::new(AtomicU64::new(0));
        let shared = Shared { inbound: tx, conns: conns.clone(), refused: refused.clone(), disconnected, limits, send_buffer };
        let (listener, local_addr, local_path) = match at {
            Listen::Tcp(host, port) => {
                let listener = tokio::net::TcpListener::bind((host.as_str(), port)).await?;
                let addr = listener.local_addr()?;
                (Listener::Tcp(listener), Some(addr), None)
            }
            Listen::Unix(path) => (Listener::Unix(tokio::net::UnixListener::bind(&path)?), None, Some(path)),
        };
        let accept = tokio::spawn(accept_loop(listener, shared));
        Ok(Router { inbound, conns, refused, accept, local_addr, local_path })
    }

    /// The TCP address listened on (with the real port when bound to port 0).
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The next message from any link; `None` once the router has stopped.
    pub(crate) async fn recv(&mut self) -> Option<Received> {
        self.inbound.recv().await
    }

    /// Links cut for breaking the framing or a limit.
    pub(crate) fn refused(&self) -> &Arc<AtomicU64> {
        &self.refused
    }

    pub(crate) fn sender(&self) -> RouterSender {
        RouterSender { conns: self.conns.clone() }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        // The link tasks live in the accept task's JoinSet, which aborts them when it is dropped;
        // the writers go with the map.
        self.accept.abort();
        if let Ok(mut conns) = self.conns.write() {
            conns.clear();
        }
        if let Some(path) = &self.local_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Sends messages to the router's links, from any task.
#[derive(Clone)]
pub(crate) struct RouterSender {
    conns: Conns,
}

impl RouterSender {
    /// Writes single-part messages, in order, to the link `id`. Waits while that link's socket
    /// is full; no other link waits for it.
    pub(crate) async fn send(&self, id: &[u8], bodies: &[&[u8]]) -> std::io::Result<()> {
        let conn = self.conns.read().ok().and_then(|c| c.get(id).cloned());
        match conn {
            Some(conn) => conn.send(bodies).await,
            None => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

struct Shared {
    inbound: mpsc::Sender<Received>,
    conns: Conns,
    refused: Arc<AtomicU64>,
    disconnected: mpsc::UnboundedSender<PeerEvent>,
    limits: GuardLimits,
    send_buffer: Option<usize>,
}

/// A bound listener.
enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

type LinkTask = Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

async fn accept_loop(listener: Listener, shared: Shared) {
    let shared = Arc::new(shared);
    let mut links = JoinSet::new();
    loop {
        tokio::select! {
            accepted = accept(&listener, &shared) => match accepted {
                Ok(link) => {
                    links.spawn(link);
                }
                // Usually out of descriptors; back off rather than spin.
                Err(e) => accept_failed(e).await,
            },
            Some(_) = links.join_next(), if !links.is_empty() => {}
        }
    }
}

/// The next link, with the routing id the hub gives it, ready to be served.
async fn accept(listener: &Listener, shared: &Arc<Shared>) -> std::io::Result<LinkTask> {
    match listener {
        Listener::Tcp(l) => {
            let (stream, peer) = l.accept().await?;
            // Small frames (pings, replies) must not wait for Nagle.
            let _ = stream.set_nodelay(true);
            if let Some(bytes) = shared.send_buffer
                && let Err(e) = rustix::net::sockopt::set_socket_send_buffer_size(&stream, bytes)
            {
                debug!(%peer, error = %e, "cannot size the link's send buffer");
            }
            let id = Bytes::from(format!("g{}|{:016x}", peer.ip(), rand::random::<u64>()));
            let (r, w) = stream.into_split();
            Ok(Box::pin(serve(r, Box::pin(w), id, peer.to_string(), shared.clone())))
        }
        Listener::Unix(l) => {
            let (stream, _) = l.accept().await?;
            let id = Bytes::from(format!("l|{:016x}", rand::random::<u64>()));
            let (r, w) = stream.into_split();
            Ok(Box::pin(serve(r, Box::pin(w), id, "local".to_string(), shared.clone())))
        }
    }
}

async fn accept_failed(e: std::io::Error) {
    warn!(error = %e, "the hub cannot accept a connection");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// The address in a routing id the router gave a TCP link (`g<address>|<random>`).
pub fn source_of(id: &[u8]) -> Option<std::net::IpAddr> {
    let text = std::str::from_utf8(id.strip_prefix(b"g")?).ok()?;
    text.split_once('|')?.0.parse().ok()
}

/// Why a link ended.
enum End {
    Closed,
    Io(std::io::Error),
    Refused(Refusal),
    /// A write failed, or the hub's loop is gone.
    Dropped,
}

/// One link, from its greeting to its end.
async fn serve(read: impl ReadSide + 'static, write: Writer, id: Bytes, peer: String, shared: Arc<Shared>) {
    let conn = Arc::new(Conn { write: tokio::sync::Mutex::new(write), closed: Notify::new() });
    let mut framer = Framer::new(shared.limits);
    let mut open = false;
    let end = match conn.write_raw(&framer::greeting()).await {
        Ok(()) => read_loop(&read, &conn, &mut framer, &id, &mut open, &shared).await,
        Err(e) => End::Io(e),
    };
    match end {
        End::Refused(refusal) => {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            warn!(%peer, claimed_bytes = refusal.claimed_bytes(), reason = %refusal, "refused a link's stream; closing it");
        }
        End::Io(e) => debug!(%peer, error = %e, "link failed"),
        End::Closed | End::Dropped => debug!(%peer, "link closed"),
    }
    if open {
        if let Ok(mut conns) = shared.conns.write() {
            conns.remove(&id);
        }
        let _ = shared.disconnected.send(PeerEvent::Disconnected(Peer(id)));
    }
}

async fn read_loop(read: &impl ReadSide, conn: &Arc<Conn>, framer: &mut Framer, id: &Bytes, open: &mut bool, shared: &Shared) -> End {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; SCRATCH]);
    }
    let mut events = Vec::new();
    loop {
        tokio::select! {
            ready = read.readable() => if let Err(e) = ready { return End::Io(e) },
            _ = conn.closed.notified() => return End::Dropped,
        }
        // Read what is there into this thread's buffer and cut it into frames; only a frame's
        // unfinished tail is kept by the link itself. No await while the buffer is borrowed.
        let outcome = BUFFER.with_borrow_mut(|buf| {
            let mut taken = 0;
            while taken < READ_BURST {
                match read.try_read(buf) {
                    Ok(0) => return Err(End::Closed),
                    Ok(n) => {
                        taken += n;
                        framer.feed(&buf[..n], &mut events).map_err(End::Refused)?;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(End::Io(e)),
                }
            }
            Ok(())
        });
        // Everything read is handed on even when a write fails (a peer may send and close at
        // once, before this side's READY could reach it): its messages still count.
        let mut failed = None;
        for event in events.drain(..) {
            match event {
                Event::Greeted => {}
                Event::Ready => {
                    if failed.is_none() {
                        failed = conn.write_raw(&framer::ready()).await.err();
                    }
                    *open = true;
                    if let Ok(mut conns) = shared.conns.write() {
                        conns.insert(id.clone(), conn.clone());
                    }
                }
                Event::Ping(context) => {
                    if failed.is_none() {
                        failed = conn.write_raw(&framer::pong(&context)).await.err();
                    }
                }
                Event::Message(parts) => {
                    if shared.inbound.send(Received { id: id.clone(), parts }).await.is_err() {
                        return End::Dropped;
                    }
                }
            }
        }
        if let Some(e) = failed {
            return End::Io(e);
        }
        if let Err(end) = outcome {
            return end;
        }
    }
}

#[cfg(test)]
mod tests;
