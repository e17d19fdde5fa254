//! The hub's front door: a TCP relay that reads the ZMTP 3.x stream from each client as it passes
//! and cuts the connection when a frame header claims more than the guard's ceiling, before the
//! ZeroMQ ROUTER behind it can reserve memory for the claim.
//!
//! zmq.rs reserves buffer space for whatever length a frame header announces, before any of the
//! body arrives, and has no maximum message size; fleet's own codec limit only runs on whole
//! messages. So the limit has to hold on the wire, in front of zmq.rs. The guard never buffers a
//! frame: it tracks where each frame header starts and streams bodies through in fixed-size chunks,
//! so a connection holds at most two [`PUMP_BUFFER`]s however large the frames are.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::ReadHalf;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// The largest command frame (READY, PING, ...) a client may send. NULL-mechanism commands are a
/// few hundred bytes at most; this leaves room for metadata without tying it to the data limit.
pub const DEFAULT_MAX_COMMAND: u64 = 64 * 1024;
/// The most parts one multi-part message may have. zmq.rs keeps a handle per part until the
/// message is complete, so a flood of empty MORE frames costs it far more than it costs the sender;
/// fleet peers send one part (two from a REQ-style peer).
pub const DEFAULT_MAX_PARTS: u32 = 64;
/// Bytes read at a time in each direction of one connection during a bulk transfer. A relay holds
/// such a buffer only while a burst of data is arriving in that direction.
pub const PUMP_BUFFER: usize = 64 * 1024;
/// The fixed read buffer each direction of a relay owns; a read that fills it starts a bulk burst.
const SMALL_READ: usize = 4 * 1024;

mod inspect;
use inspect::{FLAG_COMMAND, FLAG_LONG, GREETING_LEN};
pub use inspect::{GuardLimits, Refusal, ZmtpInspector};

/// Where a front door relays its clients: the ROUTER's own listener. On the hub it is an `ipc://`
/// socket in a directory only the hub's user can enter (see `transport.rs`), so nothing reaches
/// the ROUTER without passing the guard.
#[derive(Debug, Clone)]
pub enum Upstream {
    Tcp(SocketAddr),
    Unix(std::path::PathBuf),
}

/// Per-link delivery counters a front door keeps for its owner, by the routing id the guard gave
/// the link: how many message-body bytes went out to that client's socket. The hub compares
/// them with what it queued, and so knows how far behind a client is without trusting it.
pub type Deliveries = Arc<std::sync::Mutex<std::collections::HashMap<bytes::Bytes, Arc<AtomicU64>>>>;

/// A listening front door that relays every accepted connection to `upstream` through a
/// [`ZmtpInspector`]. Dropping it stops the listener and every relay it started.
pub struct FrameGuard {
    local_addr: SocketAddr,
    /// The Unix socket of an outbound guard, in `_dir`.
    local_path: Option<std::path::PathBuf>,
    _dir: Option<PrivateDir>,
    refused: Arc<AtomicU64>,
    deliveries: Deliveries,
    accept: tokio::task::JoinHandle<()>,
}

impl FrameGuard {
    /// Listens on `public` and relays each client to the ZMTP listener at `upstream`. Each client
    /// gets a routing id chosen by the guard (any `Identity` it asks for in its READY is replaced),
    /// so no client can take over another's route.
    pub async fn bind(public: impl ToSocketAddrs, upstream: Upstream, limits: GuardLimits) -> std::io::Result<FrameGuard> {
        let listener = TcpListener::bind(public).await?;
        let local_addr = listener.local_addr()?;
        let refused = Arc::new(AtomicU64::new(0));
        let deliveries: Deliveries = Default::default();
        let accept = tokio::spawn(accept_loop(listener, upstream, limits, refused.clone(), deliveries.clone()));
        Ok(FrameGuard { local_addr, local_path: None, _dir: None, refused, deliveries, accept })
    }

    /// The address actually listened on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many connections the guard has cut for breaking the framing or a limit.
    pub fn refusals(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The shared refusal counter, for owners that fold it into their own statistics.
    pub fn refusal_counter(&self) -> Arc<AtomicU64> {
        self.refused.clone()
    }

    /// The shared delivery counters, by routing id.
    pub fn deliveries(&self) -> Deliveries {
        self.deliveries.clone()
    }

    /// The delivery counter of the link with routing id `id`, while it lives.
    pub fn delivered(&self, id: &[u8]) -> Option<Arc<AtomicU64>> {
        self.deliveries.lock().ok()?.get(id).cloned()
    }
}

/// Which way the guard inspects: frames coming from the accepted client (a hub's front door), or
/// frames coming from the upstream (a node's or console's guard in front of a hub it does not yet
/// trust: zmq.rs would reserve whatever a hostile hub claims, too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inspect {
    FromClient,
    FromUpstream,
}

impl FrameGuard {
    /// A local door for one outgoing link: a Unix socket in a directory only this user can enter.
    /// The local DEALER connects to it (`ipc://`, see [`FrameGuard::ipc_endpoint`]), and every
    /// connection is relayed to `upstream` (host and port) with the upstream's frames inspected.
    pub async fn bind_outbound(upstream_host: String, upstream_port: u16, limits: GuardLimits) -> std::io::Result<FrameGuard> {
        let dir = PrivateDir::create("fleet-link-")?;
        let path = dir.path().join("link.sock");
        let listener = tokio::net::UnixListener::bind(&path)?;
        let refused = Arc::new(AtomicU64::new(0));
        let accept = tokio::spawn(outbound_accept_loop(listener, upstream_host, upstream_port, limits, refused.clone()));
        Ok(FrameGuard {
            local_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            local_path: Some(path),
            _dir: Some(dir),
            refused,
            deliveries: Default::default(),
            accept,
        })
    }

    /// The `ipc://` endpoint of an outbound guard's local socket.
    pub fn ipc_endpoint(&self) -> Option<String> {
        self.local_path.as_ref().map(|p| format!("ipc://{}", p.display()))
    }
}

async fn outbound_accept_loop(listener: tokio::net::UnixListener, host: String, port: u16, limits: GuardLimits, refused: Arc<AtomicU64>) {
    let mut relays = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((mut client, _)) => {
                    let (host, refused) = (host.clone(), refused.clone());
                    relays.spawn(async move {
                        match TcpStream::connect((host.as_str(), port)).await {
                            Ok(mut up) => {
                                let _ = up.set_nodelay(true);
                                let peer = up.peer_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], port)));
                                let (cr, cw) = client.split();
                                let (r, w) = up.split();
                                relay_streams(cr, cw, r, w, peer, limits, refused, Inspect::FromUpstream, None).await
                            }
                            Err(e) => debug!(%host, port, error = %e, "cannot reach the hub"),
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "frame guard cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = relays.join_next(), if !relays.is_empty() => {}
        }
    }
}

/// A directory only this process's user can enter (mode 0700), removed when dropped. The
/// guards' local sockets live in one, so no other local user can connect to them.
pub struct PrivateDir(std::path::PathBuf);

impl PrivateDir {
    pub fn create(prefix: &str) -> std::io::Result<PrivateDir> {
        use std::os::unix::fs::DirBuilderExt;
        let base =
            std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from).filter(|d| d.is_dir()).unwrap_or_else(std::env::temp_dir);
        // Once per process: a sim opens hundreds of links, and the temp directory may be large.
        static SWEPT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        if let Ok(mut swept) = SWEPT.lock()
            && !swept.iter().any(|p| p == prefix)
        {
            swept.push(prefix.to_string());
            sweep_stale(&base, prefix);
        }
        let path = base.join(format!("{prefix}{}-{:012x}", std::process::id(), rand::random::<u64>() >> 16));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(PrivateDir(path))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

/// Removes the private directories that processes killed without a chance to clean up left
/// behind: `{prefix}{pid}-*` whose process is gone, owned by this user.
fn sweep_stale(base: &std::path::Path, prefix: &str) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else { return };
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let mine = entry.metadata().is_ok_and(|m| m.is_dir() && Some(m.uid()) == uid);
        if mine && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for FrameGuard {
    fn drop(&mut self) {
        // The relays live in the accept task's JoinSet, which aborts them when it is dropped.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: Upstream, limits: GuardLimits, refused: Arc<AtomicU64>, deliveries: Deliveries) {
    let mut relays = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    relays.spawn(relay(client, peer, upstream.clone(), limits, refused.clone(), deliveries.clone()));
                }
                Err(e) => {
                    // Usually out of file descriptors; back off rather than spin.
                    warn!(error = %e, "frame guard cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = relays.join_next(), if !relays.is_empty() => {}
        }
    }
}

/// Why one direction of a relay stopped.
enum PumpEnd {
    Closed,
    Io(std::io::Error),
    Refused(Refusal),
}

/// Removes a link's delivery counter when its relay ends.
struct Registered(Deliveries, bytes::Bytes);

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&self.1);
        }
    }
}

async fn relay(
    mut client: TcpStream,
    peer: SocketAddr,
    upstream: Upstream,
    limits: GuardLimits,
    refused: Arc<AtomicU64>,
    deliveries: Deliveries,
) {
    // The routing id carries the client's address, so the hub can hold each source to its own
    // limits even after a short-lived connection is gone (see `source_of`).
    let id = bytes::Bytes::from(format!("g{}|{:016x}", peer.ip(), rand::random::<u64>()));
    let counter = Arc::new(AtomicU64::new(0));
    if let Ok(mut m) = deliveries.lock() {
        m.insert(id.clone(), counter.clone());
    }
    let _registered = Registered(deliveries, id.clone());
    let link = Some(ClientLink { id, delivered: counter });
    match upstream {
        Upstream::Tcp(addr) => match TcpStream::connect(addr).await {
            Ok(mut hub) => {
                let _ = hub.set_nodelay(true);
                let _ = client.set_nodelay(true);
                let (cr, cw) = client.split();
                let (r, w) = hub.split();
                relay_streams(cr, cw, r, w, peer, limits, refused, Inspect::FromClient, link).await
            }
            Err(e) => warn!(%peer, error = %e, "frame guard cannot reach the hub's socket; closing the client"),
        },
        Upstream::Unix(path) => match tokio::net::UnixStream::connect(&path).await {
            Ok(mut hub) => {
                // Small frames (pings, replies) must not wait for Nagle.
                let _ = client.set_nodelay(true);
                let (cr, cw) = client.split();
                let (r, w) = hub.split();
                relay_streams(cr, cw, r, w, peer, limits, refused, Inspect::FromClient, link).await
            }
            Err(e) => warn!(%peer, error = %e, "frame guard cannot reach the hub's socket; closing the client"),
        },
    }
}

/// The client address in a routing id this front door gave (`g<address>|<random>`).
pub fn source_of(id: &[u8]) -> Option<std::net::IpAddr> {
    let text = std::str::from_utf8(id.strip_prefix(b"g")?).ok()?;
    text.split_once('|')?.0.parse().ok()
}

/// What the hub's front door knows about one client link: the routing id it gave it, and the
/// message bytes delivered to it.
struct ClientLink {
    id: bytes::Bytes,
    delivered: Arc<AtomicU64>,
}

/// The read side of a stream, TCP or Unix.
trait ReadSide {
    fn readable(&self) -> impl std::future::Future<Output = std::io::Result<()>>;
    fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize>;
    fn try_read_buf(&self, buf: &mut Vec<u8>) -> std::io::Result<usize>;
}

macro_rules! read_side {
    ($t:ty) => {
        impl ReadSide for $t {
            fn readable(&self) -> impl std::future::Future<Output = std::io::Result<()>> {
                <$t>::readable(self)
            }
            fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                <$t>::try_read(self, buf)
            }
            fn try_read_buf(&self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
                <$t>::try_read_buf(self, buf)
            }
        }
    };
}
read_side!(ReadHalf<'_>);
read_side!(tokio::net::unix::ReadHalf<'_>);

/// Reads exactly `buf.len()` bytes; `Err` on EOF or failure.
async fn read_exact(from: &impl ReadSide, buf: &mut [u8]) -> std::io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        from.readable().await?;
        match from.try_read(&mut buf[got..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The client's greeting and its READY, checked; the READY is passed on with the routing id the
/// guard chose in place of any `Identity` the client asked for.
async fn client_prelude<W: tokio::io::AsyncWrite + Unpin>(
    from: &impl ReadSide,
    to: &mut W,
    limits: GuardLimits,
    id: &[u8],
) -> Result<(), PumpEnd> {
    let mut greeting = [0u8; GREETING_LEN as usize];
    read_exact(from, &mut greeting).await.map_err(PumpEnd::Io)?;
    let mut check = ZmtpInspector::new(limits);
    check.inspect(&greeting).map_err(PumpEnd::Refused)?;
    to.write_all(&greeting).await.map_err(PumpEnd::Io)?;
    let mut flags = [0u8; 1];
    read_exact(from, &mut flags).await.map_err(PumpEnd::Io)?;
    let len = if flags[0] & FLAG_LONG != 0 {
        let mut l = [0u8; 8];
        read_exact(from, &mut l).await.map_err(PumpEnd::Io)?;
        u64::from_be_bytes(l)
    } else {
        let mut l = [0u8; 1];
        read_exact(from, &mut l).await.map_err(PumpEnd::Io)?;
        u64::from(l[0])
    };
    if flags[0] & FLAG_COMMAND == 0 || len > limits.max_command {
        return Err(PumpEnd::Refused(Refusal::CommandTooBig { claimed: len, limit: limits.max_command }));
    }
    let mut body = vec![0u8; len as usize];
    read_exact(from, &mut body).await.map_err(PumpEnd::Io)?;
    let body = rewrite_ready(&body, id).ok_or(PumpEnd::Refused(Refusal::NotReady))?;
    let mut frame = vec![FLAG_COMMAND | FLAG_LONG];
    frame.extend_from_slice(&(body.len() as u64).to_be_bytes());
    frame.extend_from_slice(&body);
    to.write_all(&frame).await.map_err(PumpEnd::Io)
}

/// A READY command with its `Identity` property (if any) replaced by `id`. `None` when `body` is
/// not a well-formed READY.
fn rewrite_ready(body: &[u8], id: &[u8]) -> Option<Vec<u8>> {
    let rest = body.strip_prefix(b"\x05READY")?;
    let mut out = b"\x05READY".to_vec();
    let mut at = 0;
    while at < rest.len() {
        let name_len = usize::from(rest[at]);
        let name = rest.get(at + 1..at + 1 + name_len)?;
        at += 1 + name_len;
        let value_len = u32::from_be_bytes(rest.get(at..at + 4)?.try_into().ok()?) as usize;
        let value = rest.get(at + 4..at + 4 + value_len)?;
        at += 4 + value_len;
        if !name.eq_ignore_ascii_case(b"Identity") {
            out.push(name_len as u8);
            out.extend_from_slice(name);
            out.extend_from_slice(&(value_len as u32).to_be_bytes());
            out.extend_from_slice(value);
        }
    }
    out.push(8);
    out.extend_from_slice(b"Identity");
    out.extend_from_slice(&(id.len() as u32).to_be_bytes());
    out.extend_from_slice(id);
    Some(out)
}

#[allow(clippy::too_many_arguments)]
async fn relay_streams<CR: ReadSide, CW: tokio::io::AsyncWrite + Unpin, R: ReadSide, W: tokio::io::AsyncWrite + Unpin>(
    client_rx: CR,
    client_tx: CW,
    hub_rx: R,
    mut hub_tx: W,
    peer: SocketAddr,
    limits: GuardLimits,
    refused: Arc<AtomicU64>,
    inspect: Inspect,
    link: Option<ClientLink>,
) {
    // The inspected direction is the one from the side not yet trusted; the other is copied as is
    // (and, on the hub's front door, counted).
    let from_client = async {
        match (inspect, &link) {
            (Inspect::FromClient, Some(l)) => {
                if let Err(end) = client_prelude(&client_rx, &mut hub_tx, limits, &l.id).await {
                    return end;
                }
                pump(client_rx, hub_tx, Some(ZmtpInspector::after_greeting(limits)), None).await
            }
            (Inspect::FromClient, None) => pump(client_rx, hub_tx, Some(ZmtpInspector::new(limits)), None).await,
            (Inspect::FromUpstream, _) => pump(client_rx, hub_tx, None, None).await,
        }
    };
    let from_hub = match inspect {
        Inspect::FromClient => pump(hub_rx, client_tx, Some(ZmtpInspector::counting()), link.as_ref().map(|l| l.delivered.clone())),
        Inspect::FromUpstream => pump(hub_rx, client_tx, Some(ZmtpInspector::new(limits)), None),
    };
    // Whichever direction ends first (EOF, error or refusal) ends the relay; dropping both streams
    // then closes both, so the ROUTER sees its peer go as promptly as it would without the guard.
    let (end, side) = tokio::select! {
        end = from_client => (end, "client"),
        end = from_hub => (end, "hub"),
    };
    match end {
        PumpEnd::Refused(refusal) => {
            refused.fetch_add(1, Ordering::Relaxed);
            warn!(%peer, from = side, claimed_bytes = refusal.claimed_bytes(), reason = %refusal, "frame guard refused a stream; closing the link");
        }
        PumpEnd::Io(e) => debug!(%peer, from = side, error = %e, "link failed"),
        PumpEnd::Closed => debug!(%peer, from = side, "link closed"),
    }
}

/// Copies `from` to `to` until EOF or an error, passing each chunk through `inspector` (when
/// there is one) before any of it is written. `delivered` (when given) follows the inspector's
/// count of message-body bytes written.
async fn pump<R: ReadSide, W: tokio::io::AsyncWrite + Unpin>(
    from: R,
    mut to: W,
    mut inspector: Option<ZmtpInspector>,
    delivered: Option<Arc<AtomicU64>>,
) -> PumpEnd {
    // Each burst is read into `small` first: pings, requests and most replies fit, and never touch
    // the heap. Only a burst that fills it (a bulk transfer) gets a PUMP_BUFFER, for as long as the
    // burst lasts, so idle links hold no large buffer.
    let mut small = [0u8; SMALL_READ];
    loop {
        if let Err(e) = from.readable().await {
            return PumpEnd::Io(e);
        }
        let mut bulk: Vec<u8> = Vec::new();
        loop {
            let read = if bulk.capacity() == 0 {
                from.try_read(&mut small)
            } else {
                bulk.clear();
                from.try_read_buf(&mut bulk) // fills spare capacity without zeroing it first
            };
            let n = match read {
                Ok(0) => return PumpEnd::Closed,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return PumpEnd::Io(e),
            };
            let chunk = if bulk.capacity() == 0 { &small[..n] } else { &bulk[..n] };
            if let Some(Err(refusal)) = inspector.as_mut().map(|i| i.inspect(chunk)) {
                return PumpEnd::Refused(refusal);
            }
            if let Err(e) = to.write_all(chunk).await {
                return PumpEnd::Io(e);
            }
            if let (Some(d), Some(i)) = (&delivered, &inspector) {
                d.store(i.message_body_bytes(), Ordering::Relaxed);
            }
            if bulk.capacity() == 0 && n == SMALL_READ {
                bulk = Vec::with_capacity(PUMP_BUFFER);
            }
        }
    }
}

#[cfg(test)]
mod tests;
