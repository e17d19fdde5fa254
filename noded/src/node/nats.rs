//! A node on NATS: one connection to the cluster (the client reconnects by itself, to any server
//! of it), a subscription to its own subject and to one subject per agent it has, signed
//! registrations on the registration subject (on connect, on change, and as the heartbeat), and
//! signed replies published to the reply subject each request came with.
//!
//! A console that lost replies when a server died sends the same signed request again, to the
//! nodes that did not answer, on their own subjects. A node recognises the very same request (the
//! SHA-256 of its bytes): if it already answered, it sends the same reply again, to the same reply
//! subject only; if it is still running it, it does nothing. So a retry never runs a request twice,
//! and a copy with another reply subject gets nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleet_protocol::codec::Limits;
use fleet_protocol::nats::{NatsEvent, Subjects, redact};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::link::{Backoff, jittered};
use super::{NodeState, Stats};

/// Requests remembered for retries, at most.
const ANSWERED_MAX: usize = 4096;

/// Runs the node's NATS connection until `shutdown` flips to true.
pub async fn run(node: Arc<NodeState>, mut shutdown: watch::Receiver<bool>) {
    let (servers, _) = node.config.split_hubs();
    let label = format!("nats {}", servers.iter().map(|s| redact(s)).collect::<Vec<_>>().join(","));
    node.set_hub_state(&label, "connecting");
    let options = match node.config.nats_options(&node.identity) {
        Ok(o) => o,
        Err(e) => {
            warn!(error = %e, "cannot use the NATS servers");
            node.set_hub_state(&label, format!("down: {e}"));
            return;
        }
    };
    let subjects = match node_subjects(node.collectives(), &node.identity) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot use NATS");
            node.set_hub_state(&label, format!("down: {e}"));
            return;
        }
    };
    let mut backoff = Backoff::new(&node.config);
    // Each new reason is logged once as a warning (a bad seed, refused credentials); repeats of it
    // while retrying only at debug level.
    let mut last_reason = String::new();
    loop {
        let connected = tokio::select! {
            r = fleet_protocol::nats::connect(&options) => r,
            _ = crate::until_set(&mut shutdown) => return,
        };
        match connected {
            Ok((client, events)) => {
                let link = NatsLink { node: node.clone(), client, subjects, label: label.clone() };
                link.serve(events, &mut shutdown).await;
                return;
            }
            Err(e) => {
                let reason = e.to_string();
                if reason != last_reason {
                    warn!(error = %reason, "cannot attach to NATS; retrying");
                } else {
                    debug!(error = %reason, "cannot attach to NATS; retrying");
                }
                node.set_hub_state(&label, format!("down: {reason}"));
                last_reason = reason;
            }
        }
        if !backoff.wait(&mut shutdown).await {
            return;
        }
    }
}

/// The subjects of each collective the node is in (the main one first), once its identity is
/// known to make a node subject (host names with dots do).
fn node_subjects(collectives: &[String], identity: &str) -> Result<Vec<Subjects>, String> {
    let subjects = collectives.iter().map(|c| Subjects::new(c)).collect::<Result<Vec<_>, String>>()?;
    if let Some(main) = subjects.first() {
        main.node(identity)?;
    }
    Ok(subjects)
}

struct NatsLink {
    node: Arc<NodeState>,
    client: async_nats::Client,
    /// One per collective the node is in; the first is the main collective.
    subjects: Vec<Subjects>,
    label: String,
}

/// A subscription's forwarding task, stopped (and so unsubscribed) when dropped.
struct Forward(tokio::task::JoinHandle<()>);

impl Drop for Forward {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl NatsLink {
    async fn serve(self, mut events: mpsc::UnboundedReceiver<NatsEvent>, shutdown: &mut watch::Receiver<bool>) {
        let node = &self.node;
        let limits = Limits { max_frame: node.config.max_frame, ..Limits::default() };
        let answered = Arc::new(Mutex::new(Answered::new(Duration::from_secs(u64::from(node.config.max_ttl)))));
        let (req_tx, mut req_rx) = mpsc::channel::<async_nats::Message>(1024);
        let mut subs: HashMap<String, Forward> = HashMap::new();
        let mut changed = node.changed.subscribe();
        self.sync_subscriptions(&mut subs, &req_tx).await;
        node.set_hub_state(&self.label, "up");
        info!(servers = %self.label, identity = %node.identity, "attached to NATS");
        self.register().await;
        node.settle.done();
        let interval = Duration::from_secs_f64(node.config.heartbeat_interval);
        let mut next_beat = tokio::time::Instant::now() + jittered(interval, node.config.retry_jitter);
        loop {
            tokio::select! {
                Some(msg) = req_rx.recv() => {
                    tokio::spawn(answer(node.clone(), self.client.clone(), msg, answered.clone(), limits));
                }
                Some(event) = events.recv() => match event {
                    NatsEvent::Connected => {
                        node.set_hub_state(&self.label, "up");
                        info!(servers = %self.label, "reconnected to NATS");
                        self.register().await;
                    }
                    NatsEvent::Disconnected => {
                        node.set_hub_state(&self.label, "down: disconnected; reconnecting");
                        warn!(servers = %self.label, "NATS connection lost; reconnecting");
                    }
                },
                _ = tokio::time::sleep_until(next_beat) => {
                    next_beat = tokio::time::Instant::now() + jittered(interval, node.config.retry_jitter);
                    self.register().await;
                }
                Ok(()) = changed.changed() => {
                    self.sync_subscriptions(&mut subs, &req_tx).await;
                    self.register().await;
                }
                _ = crate::until_set(shutdown) => {
                    let _ = self.client.flush().await;
                    return;
                }
            }
        }
    }

    /// Subscribes to the node's own subject and one per agent it has now, in every collective;
    /// drops the subscriptions of agents it no longer has.
    async fn sync_subscriptions(&self, subs: &mut HashMap<String, Forward>, to: &mpsc::Sender<async_nats::Message>) {
        let agents = self.node.agents().names();
        let mut wanted = Vec::new();
        for s in &self.subjects {
            wanted.extend(s.node(&self.node.identity));
            for a in &agents {
                match s.agent(a) {
                    Ok(subject) => wanted.push(subject),
                    Err(e) => warn!(agent = %a, error = %e, "agent not reachable by broadcast on NATS"),
                }
            }
        }
        subs.retain(|subject, _| wanted.contains(subject));
        for subject in wanted {
            if subs.contains_key(&subject) {
                continue;
            }
            match self.client.subscribe(subject.clone()).await {
                Ok(mut sub) => {
                    let to = to.clone();
                    let task = tokio::spawn(async move {
                        use futures::StreamExt;
                        while let Some(msg) = sub.next().await {
                            if to.send(msg).await.is_err() {
                                return;
                            }
                        }
                    });
                    subs.insert(subject, Forward(task));
                }
                Err(e) => warn!(%subject, error = %e, "cannot subscribe"),
            }
        }
    }

    /// Publishes the node's signed registration on its main collective's registration subject.
    async fn register(&self) {
        let Some(frame) = self.node.signed(fleet_protocol::Message::Registration(Box::new(self.node.registration()))) else { return };
        let subject = self.subjects[0].registration(self.node.config.nats.cell.as_deref());
        if let Err(e) = self.client.publish(subject, frame).await {
            debug!(error = %e, "registration not published");
        }
    }
}

/// Answers one request off the wire, or sends the reply it already got again (see the module
/// documentation).
async fn answer(
    node: Arc<NodeState>,
    client: async_nats::Client,
    msg: async_nats::Message,
    answered: Arc<Mutex<Answered>>,
    limits: Limits,
) {
    let digest: [u8; 32] = Sha256::digest(&msg.payload).into();
    let reply_to = msg.reply.as_ref().map(|s| s.to_string());
    let begun = answered.lock().expect("answered lock").begin(digest, reply_to.as_deref(), Instant::now());
    match begun {
        Begin::New => {}
        Begin::Again(frame) => {
            if let Some(to) = reply_to {
                debug!("a request seen before: its reply sent again");
                let _ = client.publish(to, frame).await;
            }
            return;
        }
        Begin::Ignore => return,
    }
    let reply = match fleet_protocol::Envelope::from_frame(&msg.payload, &limits) {
        Ok(env) => node.handle_envelope(env, &limits).await,
        Err(e) => {
            warn!(error = %e, "dropping a malformed request");
            None
        }
    };
    let frame = reply.and_then(|r| node.signed(fleet_protocol::Message::Reply(Box::new(r))));
    answered.lock().expect("answered lock").finish(digest, frame.clone());
    if let (Some(frame), Some(to)) = (frame, reply_to)
        && client.publish(to, frame).await.is_ok()
    {
        Stats::bump(&node.stats.replies);
    }
}

/// What to do with a request frame.
#[derive(Debug, PartialEq)]
enum Begin {
    /// Never seen: handle it.
    New,
    /// Answered before, to this reply subject: send this reply again.
    Again(Bytes),
    /// Running now, answered with nothing to send, or asked with another reply subject.
    Ignore,
}

struct Entry {
    reply_to: Option<String>,
    /// `None` while the request runs; then the reply sent, if any.
    done: Option<Option<Bytes>>,
}

/// The request frames this node handled lately, by digest, with their replies: bounded in count
/// and kept no longer than the longest ttl a request may have.
struct Answered {
    entries: HashMap<[u8; 32], Entry>,
    order: VecDeque<(Instant, [u8; 32])>,
    keep: Duration,
}

impl Answered {
    fn new(keep: Duration) -> Answered {
        Answered { entries: HashMap::new(), order: VecDeque::new(), keep }
    }

    fn begin(&mut self, digest: [u8; 32], reply_to: Option<&str>, now: Instant) -> Begin {
        while let Some((at, d)) = self.order.front().copied() {
            if self.order.len() < ANSWERED_MAX && now.duration_since(at) <= self.keep {
                break;
            }
            self.order.pop_front();
            self.entries.remove(&d);
        }
        match self.entries.get(&digest) {
            None => {
                self.entries.insert(digest, Entry { reply_to: reply_to.map(str::to_string), done: None });
                self.order.push_back((now, digest));
                Begin::New
            }
            Some(Entry { reply_to: first, done: Some(Some(frame)) }) if first.as_deref() == reply_to => Begin::Again(frame.clone()),
            Some(_) => Begin::Ignore,
        }
    }

    fn finish(&mut self, digest: [u8; 32], frame: Option<Bytes>) {
        if let Some(e) = self.entries.get_mut(&digest) {
            e.done = Some(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_name_with_dots_makes_a_node_subject_and_a_wildcard_does_not() {
        let subjects = node_subjects(&["fleet".into(), "ops".into()], "web-01.example.com").unwrap();
        assert_eq!(subjects[0].node("web-01.example.com").unwrap(), "fleet.fleet.node.web-01.example.com");
        assert_eq!(subjects.len(), 2);
        assert!(node_subjects(&["fleet".into()], "web-*").is_err());
        assert!(node_subjects(&["my fleet".into()], "web-01").is_err());
    }

    #[test]
    fn a_retry_gets_the_same_reply_and_never_a_second_run() {
        let mut a = Answered::new(Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(a.begin([1; 32], Some("_INBOX.a"), now), Begin::New);
        // Still running: a retry is ignored (the reply will come).
        assert_eq!(a.begin([1; 32], Some("_INBOX.a"), now), Begin::Ignore);
        a.finish([1; 32], Some(Bytes::from_static(b"reply")));
        assert_eq!(a.begin([1; 32], Some("_INBOX.a"), now), Begin::Again(Bytes::from_static(b"reply")));
        // The same request with another reply subject gets nothing.
        assert_eq!(a.begin([1; 32], Some("_INBOX.evil"), now), Begin::Ignore);
        assert_eq!(a.begin([2; 32], None, now), Begin::New);
    }

    #[test]
    fn the_memory_is_bounded_in_count_and_time() {
        let mut a = Answered::new(Duration::from_secs(60));
        let start = Instant::now();
        for i in 0..(ANSWERED_MAX + 10) {
            let mut d = [0u8; 32];
            d[..8].copy_from_slice(&(i as u64).to_le_bytes());
            a.begin(d, None, start);
        }
        assert!(a.entries.len() <= ANSWERED_MAX + 1);
        a.begin([9; 32], None, start + Duration::from_secs(61));
        assert_eq!(a.entries.len(), 1);
    }
}
