//! One outbound queue per link. The hub's loop only pushes plaintext frames here and never waits
//! on a peer; a task per link seals them in order and writes them to the link's socket (what has
//! queued up meanwhile in one write: a round's replies reach a console in a few), waiting
//! while that socket's send buffer (`max_link_in_flight`) is full. A client that stops reading
//! therefore holds at most its queue (bounded in frames and bytes), one batch being written and
//! that buffer; past the bound the oldest replies are dropped, and the console is told how many
//! before the next frame it gets.
//! When the link goes, the queue and its task go with it.
//!
//! Live metric updates wait beside the queue, one per node: a newer update of a node replaces the
//! one still waiting (latest value wins), so a console that reads slowly holds at most one update
//! per node it watches, never a backlog. They go out when the queue is empty.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fleet_protocol::codec::encode_message;
use fleet_protocol::noise::Session;
use fleet_protocol::transport::{HubSender, Peer};
use fleet_protocol::{ErrorNotice, Message};
use tokio::sync::Notify;
use tracing::{debug, warn};

/// Bounds of one link's outbound queue.
#[derive(Debug, Clone, Copy)]
pub(super) struct OutboxLimits {
    pub max_frames: usize,
    pub max_bytes: usize,
}

enum Out {
    /// A plaintext frame, sealed when it is sent. Replies are `droppable`.
    Frame { plain: Bytes, droppable: bool },
    /// A new session for this link (a re-handshake) and its handshake answer, sent as is.
    Rekey { session: Arc<Mutex<Session>>, answer: Bytes },
}

impl Out {
    fn len(&self) -> usize {
        match self {
            Out::Frame { plain, .. } => plain.len(),
            Out::Rekey { answer, .. } => answer.len(),
        }
    }
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Out>,
    bytes: usize,
    /// Frames dropped since the console was last told.
    dropped: u64,
    /// The most bytes ever queued at once.
    high_water: usize,
}

/// Metric updates waiting, one per node, in the order their nodes first got one.
#[derive(Default)]
struct Latest {
    order: VecDeque<String>,
    frames: HashMap<String, Bytes>,
}

impl Latest {
    /// Puts `node`'s newest update in place; returns the one it replaced.
    fn put(&mut self, node: &str, frame: Bytes) -> Option<Bytes> {
        let old = self.frames.insert(node.to_string(), frame);
        if old.is_none() {
            self.order.push_back(node.to_string());
        }
        old
    }

    /// The update of the node waiting longest.
    fn take(&mut self) -> Option<Bytes> {
        let node = self.order.pop_front()?;
        self.frames.remove(&node)
    }
}

struct Shared {
    queue: Mutex<Queue>,
    latest: Mutex<Latest>,
    wake: Notify,
}

/// Totals over every link, for the hub's stats.
#[derive(Default)]
pub(super) struct OutboxTotals {
    pub queued_bytes: AtomicU64,
    pub dropped: AtomicU64,
    /// Metric updates replaced by a newer one of the same node before they were sent.
    pub superseded: AtomicU64,
}

pub(super) struct Outbox {
    shared: Arc<Shared>,
    limits: OutboxLimits,
    totals: Arc<OutboxTotals>,
    task: tokio::task::JoinHandle<()>,
}

impl Outbox {
    /// Starts the link's sending task. `answer` (the handshake's second message) goes first, as is.
    pub fn start(
        peer: Peer,
        session: Arc<Mutex<Session>>,
        answer: Bytes,
        sender: HubSender,
        limits: OutboxLimits,
        totals: Arc<OutboxTotals>,
    ) -> Outbox {
        let shared = Arc::new(Shared { queue: Mutex::new(Queue::default()), latest: Mutex::default(), wake: Notify::new() });
        let task = tokio::spawn(run(peer, session, answer, sender, shared.clone(), totals.clone()));
        Outbox { shared, limits, totals, task }
    }

    /// Queues a frame; never waits. Past the limits the oldest droppable frames go (the oldest of
    /// any kind when none is droppable).
    pub fn push(&self, plain: Bytes, droppable: bool) {
        self.push_item(Out::Frame { plain, droppable });
    }

    /// Queues a live metric update of `node`, replacing the one of that node still waiting.
    pub fn push_latest(&self, node: &str, plain: Bytes) {
        let Ok(mut latest) = self.shared.latest.lock() else { return };
        let len = plain.len() as u64;
        if let Some(old) = latest.put(node, plain) {
            self.totals.superseded.fetch_add(1, Ordering::Relaxed);
            self.totals.queued_bytes.fetch_sub(old.len() as u64, Ordering::Relaxed);
        }
        self.totals.queued_bytes.fetch_add(len, Ordering::Relaxed);
        drop(latest);
        self.shared.wake.notify_one();
    }

    /// A re-handshake on the same connection: frames queued after this go under `session`.
    pub fn rekey(&self, session: Arc<Mutex<Session>>, answer: Bytes) {
        self.push_item(Out::Rekey { session, answer });
    }

    /// The most bytes this link ever had queued at once.
    pub fn high_water(&self) -> usize {
        self.shared.queue.lock().map_or(0, |q| q.high_water)
    }

    fn push_item(&self, item: Out) {
        let Ok(mut q) = self.shared.queue.lock() else { return };
        let len = item.len();
        q.bytes += len;
        q.high_water = q.high_water.max(q.bytes);
        q.items.push_back(item);
        self.totals.queued_bytes.fetch_add(len as u64, Ordering::Relaxed);
        while q.items.len() > self.limits.max_frames || q.bytes > self.limits.max_bytes {
            let victim = q
                .items
                .iter()
                .position(|o| matches!(o, Out::Frame { droppable: true, .. }))
                .or_else(|| q.items.iter().position(|o| matches!(o, Out::Frame { .. })));
            let Some(at) = victim else { break };
            if let Some(gone) = q.items.remove(at) {
                q.bytes -= gone.len();
                q.dropped += 1;
                self.totals.queued_bytes.fetch_sub(gone.len() as u64, Ordering::Relaxed);
                self.totals.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(q);
        self.shared.wake.notify_one();
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.task.abort();
        if let Ok(q) = self.shared.queue.lock() {
            self.totals.queued_bytes.fetch_sub(q.bytes as u64, Ordering::Relaxed);
        }
        if let Ok(mut q) = self.shared.queue.lock() {
            q.items.clear();
            q.bytes = 0;
        }
        if let Ok(mut latest) = self.shared.latest.lock() {
            let bytes: usize = latest.frames.values().map(Bytes::len).sum();
            self.totals.queued_bytes.fetch_sub(bytes as u64, Ordering::Relaxed);
            *latest = Latest::default();
        }
    }
}

async fn run(
    peer: Peer,
    mut session: Arc<Mutex<Session>>,
    answer: Bytes,
    mut sender: HubSender,
    shared: Arc<Shared>,
    totals: Arc<OutboxTotals>,
) {
    // Waits while the link's socket is full; the queue keeps taking (and dropping) meanwhile.
    let send = async |sender: &mut HubSender, frames: &[Bytes]| {
        if let Err(e) = sender.send_all(&peer, frames).await {
            debug!(peer = %peer.short(), error = %e, "send failed");
        }
    };
    send(&mut sender, &[answer]).await;
    loop {
        let (batch, dropped) = loop {
            let (batch, dropped) = take_batch(&shared, &totals);
            if !batch.is_empty() {
                break (batch, dropped);
            }
            // The queue first (replies, a subscription's history), then live metric updates.
            match pop_latest(&shared, &totals) {
                Some(plain) => break (vec![Out::Frame { plain, droppable: true }], 0),
                None => shared.wake.notified().await,
            }
        };
        let mut sealed = Vec::with_capacity(batch.len() + 1);
        if dropped > 0 {
            warn!(peer = %peer.short(), dropped, "a slow link: its oldest queued replies were dropped");
            let message = format!(
                "the hub dropped {dropped} repl{} queued for this console: it was not reading fast enough",
                if dropped == 1 { "y" } else { "ies" }
            );
            if let Ok(frame) = encode_message(&Message::Error(ErrorNotice { message }))
                && let Some(s) = seal(&session, &frame)
            {
                sealed.push(s);
            }
        }
        for item in batch {
            match item {
                Out::Frame { plain, .. } => sealed.extend(seal(&session, &plain)),
                // The answer follows the frames sealed under the old session; later ones use the new.
                Out::Rekey { session: new, answer } => {
                    session = new;
                    sealed.push(answer);
                }
            }
        }
        send(&mut sender, &sealed).await;
    }
}

/// Most frames, and plaintext bytes, taken off the queue to go out in one write.
const BATCH_FRAMES: usize = 256;
const BATCH_BYTES: usize = 256 * 1024;

/// The frames at the head of the queue that go out together (at least one when there is one),
/// and how many were dropped since the console was last told.
fn take_batch(shared: &Shared, totals: &OutboxTotals) -> (Vec<Out>, u64) {
    let Ok(mut q) = shared.queue.lock() else { return (Vec::new(), 0) };
    let mut batch = Vec::new();
    let mut bytes = 0;
    while batch.len() < BATCH_FRAMES && (batch.is_empty() || bytes < BATCH_BYTES) {
        let Some(item) = q.items.pop_front() else { break };
        bytes += item.len();
        batch.push(item);
    }
    q.bytes -= bytes;
    totals.queued_bytes.fetch_sub(bytes as u64, Ordering::Relaxed);
    let dropped = if batch.is_empty() { 0 } else { std::mem::take(&mut q.dropped) };
    (batch, dropped)
}

/// The oldest waiting metric update, if any.
fn pop_latest(shared: &Shared, totals: &OutboxTotals) -> Option<Bytes> {
    let frame = shared.latest.lock().ok()?.take()?;
    totals.queued_bytes.fetch_sub(frame.len() as u64, Ordering::Relaxed);
    Some(frame)
}

fn seal(session: &Arc<Mutex<Session>>, plain: &[u8]) -> Option<Bytes> {
    let mut s = session.lock().ok()?;
    match s.seal(plain) {
        Ok(sealed) => Some(Bytes::from(sealed)),
        Err(e) => {
            warn!(error = %e, "cannot encrypt a frame");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_metric_update_replaces_the_waiting_one_of_its_node() {
        let mut latest = Latest::default();
        assert!(latest.put("web-01", Bytes::from_static(b"1")).is_none());
        assert!(latest.put("web-02", Bytes::from_static(b"a")).is_none());
        // A console that does not read: each node keeps one update, the newest.
        for i in 2..1000 {
            assert!(latest.put("web-01", Bytes::from(i.to_string())).is_some());
        }
        assert_eq!(latest.frames.len(), 2);
        assert_eq!(latest.take().as_deref(), Some(&b"999"[..]));
        assert_eq!(latest.take().as_deref(), Some(&b"a"[..]));
        assert_eq!(latest.take(), None);
    }
}
