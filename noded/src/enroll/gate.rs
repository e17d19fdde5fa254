//! The enrollment thread: the hub hands it unknown keys (and join claims), it decides off the
//! routing loop, rescans the directories once a second, and reads `noded hub forget` requests.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fleet_protocol::join::JoinProof;

use super::{Enrollment, KnockLimits, Snapshot, Verdict, write_text};
use crate::hub::trust::{TrustSource, TrustUpdate};

/// The hub's side of enrollment: the in-memory snapshot it decides from on its loop, and the
/// enrollment thread it hands unknown keys to. `T` travels with a job and comes back with its
/// verdict (the hub's peer and half-done handshake).
pub struct Gate<T> {
    snapshot: Arc<RwLock<Snapshot>>,
    jobs: std::sync::mpsc::SyncSender<Job<T>>,
}

/// What the enrollment thread tells the hub.
pub struct GateEvents<T> {
    /// Verdicts on unknown keys, with their context.
    pub verdicts: tokio::sync::mpsc::UnboundedReceiver<(T, Verdict)>,
    /// The keys on disk changed (the snapshot was re-read).
    pub changed: tokio::sync::mpsc::UnboundedReceiver<()>,
    /// Nodes to forget.
    pub forget: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// The callers or policies the hub distributes changed. An update caused by a join is sent
    /// before that join's verdict, so the hub has it when the new console's link comes up.
    pub trust: tokio::sync::mpsc::UnboundedReceiver<TrustUpdate>,
}

struct Job<T> {
    link_key: [u8; 32],
    claimed: String,
    proof: Option<JoinProof>,
    source: Option<std::net::IpAddr>,
    ctx: T,
}

/// Unknown keys waiting for the enrollment thread at most; more are refused at once.
const JOB_QUEUE: usize = 256;

impl<T: Send + 'static> Gate<T> {
    /// Opens `dir` and starts the enrollment thread. Verdicts on unknown keys arrive on the
    /// returned receiver, with their context.
    /// Besides the verdicts, [`GateEvents`] says when the keys on disk changed (an admin accepted
    /// or rejected one) and which nodes an admin asked the hub to forget (`noded hub forget NODE`,
    /// a file under `forget/`, read here and removed).
    /// `callers_dir` is where a console that joins with a token gets its caller key written;
    /// `trust` (when the hub distributes callers and policies) is polled on the same thread.
    pub fn start(
        dir: &Path,
        limits: KnockLimits,
        callers_dir: Option<PathBuf>,
        mut trust: Option<TrustSource>,
    ) -> std::io::Result<(Gate<T>, GateEvents<T>)> {
        let mut enrollment = Enrollment::open_with(dir, limits)?;
        enrollment.callers_dir = callers_dir;
        let forget_dir = dir.join(FORGET_DIR);
        std::fs::create_dir_all(&forget_dir)?;
        let (forget_tx, forget_rx) = tokio::sync::mpsc::unbounded_channel();
        let (changed_tx, changed_rx) = tokio::sync::mpsc::unbounded_channel();
        let (trust_tx, trust_rx) = tokio::sync::mpsc::unbounded_channel();
        let snapshot = Arc::new(RwLock::new(enrollment.snapshot().clone()));
        let (jobs, job_rx) = std::sync::mpsc::sync_channel::<Job<T>>(JOB_QUEUE);
        let (done, done_rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = snapshot.clone();
        std::thread::Builder::new().name("enroll".into()).spawn(move || {
            let publish = |e: &Enrollment| {
                if let Ok(mut s) = shared.write() {
                    *s = e.snapshot().clone();
                }
            };
            let mut poll_trust = |force: bool| {
                if let Some(update) = trust.as_mut().and_then(|t| t.poll(force)) {
                    let _ = trust_tx.send(update);
                }
            };
            poll_trust(true);
            loop {
                match job_rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(job) => {
                        let verdict = enrollment.knock_from(&job.link_key, &job.claimed, job.proof.as_ref(), job.source);
                        publish(&enrollment);
                        if job.proof.is_some() && matches!(verdict, Verdict::Accepted(..)) {
                            poll_trust(false);
                        }
                        if done.send((job.ctx, verdict)).is_err() {
                            return;
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        if done.is_closed() {
                            return;
                        }
                        if enrollment.rescan(false) {
                            publish(&enrollment);
                            let _ = changed_tx.send(());
                        }
                        for name in take_forget_requests(&forget_dir) {
                            let _ = forget_tx.send(name);
                        }
                        poll_trust(false);
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        })?;
        Ok((Gate { snapshot, jobs }, GateEvents { verdicts: done_rx, changed: changed_rx, forget: forget_rx, trust: trust_rx }))
    }

    /// The verdict from memory, if the key is known; no disk, no waiting.
    pub fn lookup(&self, link_key: &[u8; 32]) -> Option<Verdict> {
        self.snapshot.read().ok()?.lookup(link_key)
    }

    pub fn pending_count(&self) -> usize {
        self.snapshot.read().map_or(0, |s| s.pending_count())
    }

    /// Hands an unknown key to the enrollment thread. `Err` gives the context back when the
    /// thread is too far behind (the knock is refused).
    /// `source` is the peer's address when the hub's front door knows it.
    pub fn submit(
        &self,
        link_key: [u8; 32],
        claimed: String,
        proof: Option<JoinProof>,
        source: Option<std::net::IpAddr>,
        ctx: T,
    ) -> Result<(), T> {
        self.jobs.try_send(Job { link_key, claimed, proof, source, ctx }).map_err(|e| match e {
            std::sync::mpsc::TrySendError::Full(j) | std::sync::mpsc::TrySendError::Disconnected(j) => j.ctx,
        })
    }
}

/// Where `noded hub forget NODE` leaves its requests for the running hub.
pub const FORGET_DIR: &str = "forget";

/// Asks the hub that uses `dir` to forget a down node for good: a file `forget/NODE`, which
/// the hub reads (within a second) and removes.
pub fn request_forget(dir: &Path, node: &str) -> Result<PathBuf, String> {
    fleet_protocol::keys::check_name(node).map_err(|e| e.to_string())?;
    let forget = dir.join(FORGET_DIR);
    std::fs::create_dir_all(&forget).map_err(|e| format!("{}: {e}", forget.display()))?;
    let path = forget.join(node);
    write_text(&path, "").map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// The names `noded hub forget` asked for in `dir` (the forget directory), each request file
/// removed as it is read.
pub fn take_forget_requests(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names = Vec::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if name.starts_with('.') {
            continue;
        }
        let _ = std::fs::remove_file(&path);
        if fleet_protocol::keys::check_name(&name).is_ok() {
            names.push(name);
        }
    }
    names
}
