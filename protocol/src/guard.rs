//! A node's or console's door to a hub it does not yet trust: a local relay that reads the ZMTP
//! 3.x stream coming from the hub as it passes and cuts the connection when a frame header claims
//! more than the guard's ceiling, before the zmq.rs DEALER behind it can reserve memory for it.
//!
//! zmq.rs reserves buffer space for whatever length a frame header announces, before any of the
//! body arrives, and has no maximum message size; fleet's own codec limit only runs on whole
//! messages. So the limit has to hold on the wire, in front of zmq.rs. The guard never buffers a
//! frame: it tracks where each frame header starts and streams bodies through in fixed-size chunks,
//! so a connection holds at most two [`PUMP_BUFFER`]s however large the frames are. (The hub's own
//! side needs no relay: its ROUTER is fleet's code, see `router.rs`.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::ReadHalf;
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

pub(crate) mod inspect;
pub use inspect::{GuardLimits, Refusal, ZmtpInspector};

/// A listening local door that relays every accepted connection to the hub through a
/// [`ZmtpInspector`]. Dropping it stops the listener and every relay it started.
pub struct FrameGuard {
    /// The Unix socket the local DEALER connects to, in `_dir`.
    local_path: std::path::PathBuf,
    _dir: PrivateDir,
    refused: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
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
        Ok(FrameGuard { local_path: path, _dir: dir, refused, accept })
    }

    /// The `ipc://` endpoint of the guard's local socket.
    pub fn ipc_endpoint(&self) -> String {
        format!("ipc://{}", self.local_path.display())
    }

    /// How many connections the guard has cut for breaking the framing or a limit.
    pub fn refusals(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
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
                                relay_streams(cr, cw, r, w, peer, limits, refused).await
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

/// Why one direction of a relay stopped.
enum PumpEnd {
    Closed,
    Io(std::io::Error),
    Refused(Refusal),
}

/// The read side of a stream, TCP or Unix, borrowed or owned: the guard's relays and the hub's
/// router read through it.
pub(crate) trait ReadSide: Send + Sync {
    fn readable(&self) -> impl std::future::Future<Output = std::io::Result<()>> + Send;
    fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize>;
    fn try_read_buf(&self, buf: &mut Vec<u8>) -> std::io::Result<usize>;
}

macro_rules! read_side {
    ($t:ty) => {
        impl ReadSide for $t {
            fn readable(&self) -> impl std::future::Future<Output = std::io::Result<()>> + Send {
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
read_side!(tokio::net::tcp::OwnedReadHalf);
read_side!(tokio::net::unix::OwnedReadHalf);

async fn relay_streams<CR: ReadSide, CW: tokio::io::AsyncWrite + Unpin, R: ReadSide, W: tokio::io::AsyncWrite + Unpin>(
    client_rx: CR,
    client_tx: CW,
    hub_rx: R,
    hub_tx: W,
    peer: SocketAddr,
    limits: GuardLimits,
    refused: Arc<AtomicU64>,
) {
    // The hub's direction is inspected; the local client's is copied as is.
    let from_client = pump(client_rx, hub_tx, None);
    let from_hub = pump(hub_rx, client_tx, Some(ZmtpInspector::new(limits)));
    // Whichever direction ends first (EOF, error or refusal) ends the relay; dropping both streams
    // then closes both, so each side sees the other go as promptly as it would without the guard.
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
/// there is one) before any of it is written.
async fn pump<R: ReadSide, W: tokio::io::AsyncWrite + Unpin>(from: R, mut to: W, mut inspector: Option<ZmtpInspector>) -> PumpEnd {
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
            if bulk.capacity() == 0 && n == SMALL_READ {
                bulk = Vec::with_capacity(PUMP_BUFFER);
            }
        }
    }
}

#[cfg(test)]
mod tests;
