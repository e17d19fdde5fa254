//! A node's hub links: one per configured hub, each connecting, running the link handshake,
//! registering, answering requests and beating its heart; a link that fails or goes quiet is
//! rebuilt with jittered backoff (zmq.rs DEALER does not reconnect by itself).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleet_protocol::Message;
use fleet_protocol::codec::{Limits, encode_message};
use fleet_protocol::transport::Link;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::{NodeState, Stats};

pub(super) fn jittered(base: Duration, jitter: f64) -> Duration {
    let spread = base.as_secs_f64() * jitter;
    let offset = if spread > 0.0 { rand::random_range(-spread..spread) } else { 0.0 };
    Duration::from_secs_f64((base.as_secs_f64() + offset).max(0.01))
}

/// The jittered, doubling wait between attempts to attach: `retry_initial_delay` at first, up to
/// `retry_max_delay`, each with `retry_jitter`.
pub(super) struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: f64,
    delay: Duration,
}

impl Backoff {
    pub fn new(cfg: &crate::NodeConfig) -> Backoff {
        let initial = Duration::from_secs_f64(cfg.retry_initial_delay);
        Backoff { initial, max: Duration::from_secs_f64(cfg.retry_max_delay), jitter: cfg.retry_jitter, delay: initial }
    }

    /// Back to the first, shortest wait (after a link that worked).
    pub fn reset(&mut self) {
        self.delay = self.initial;
    }

    /// Sleeps the next wait; false when `shutdown` came first.
    pub async fn wait(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        let wait = jittered(self.delay, self.jitter);
        self.delay = (self.delay * 2).min(self.max);
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = crate::until_set(shutdown) => false,
        }
    }
}

/// Runs a node until `shutdown` flips to true: one link task per configured ZeroMQ hub, and one
/// connection to the NATS servers of the list (they are one cluster).
pub async fn run(node: Arc<NodeState>, mut shutdown: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    let (nats, zmq) = node.config.split_hubs();
    for hub in zmq {
        node.set_hub_state(&hub, "connecting");
        tasks.push(tokio::spawn(link_loop(node.clone(), hub, shutdown.clone())));
    }
    if !nats.is_empty() {
        tasks.push(tokio::spawn(super::nats::run(node.clone(), shutdown.clone())));
    }
    let _ = crate::until_set(&mut shutdown).await;
    for t in tasks {
        let _ = t.await;
    }
}

/// Keeps one hub link alive: connect, register, serve; rebuild with jittered backoff when it fails
/// or goes quiet (zmq.rs DEALER does not reconnect by itself).
async fn link_loop(node: Arc<NodeState>, hub: String, mut shutdown: watch::Receiver<bool>) {
    let cfg = &node.config;
    let mut backoff = Backoff::new(cfg);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let connect = Link::connect_with(&hub, Duration::from_secs_f64(cfg.connect_timeout), cfg.link_guard);
        let link = tokio::select! {
            r = connect => r,
            _ = crate::until_set(&mut shutdown) => return,
        };
        match link {
            Ok(link) => {
                node.set_hub_state(&hub, "handshake");
                let why = serve_link(&node, &hub, link, &mut shutdown).await;
                if *shutdown.borrow() {
                    return;
                }
                warn!(hub = %hub, reason = %why, "hub link lost; rebuilding");
                node.set_hub_state(&hub, format!("down: {why}"));
                backoff.reset();
            }
            Err(e) => {
                node.set_hub_state(&hub, format!("down: {e}"));
                debug!(hub = %hub, error = %e, "cannot attach");
            }
        }
        if !backoff.wait(&mut shutdown).await {
            return;
        }
    }
}

async fn serve_link(node: &Arc<NodeState>, hub: &str, link: Link, shutdown: &mut watch::Receiver<bool>) -> String {
    let limits = Limits { max_frame: node.config.max_frame, ..Limits::default() };
    let (mut tx, mut rx) = link.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(1024);
    let interval = Duration::from_secs_f64(node.config.heartbeat_interval);
    let quiet_limit = Duration::from_secs_f64(node.config.link_timeout());
    let mut changed = node.changed.subscribe();
    // Each new metrics sample goes to the hub as it is taken (the sample before this link came
    // up is not resent: the hub keeps what earlier links pushed).
    let mut samples = crate::agents::metrics::Sampler::frames();
    samples.mark_unchanged();
    let mut down = rx.down_signal();
    // The Noise handshake: the hub must hold the pinned key, and must know ours.
    let handshake_wait = Duration::from_secs_f64(node.config.connect_timeout);
    let Some(hub_link_key) = node.security.hub_link_key else {
        return "no hub key pinned (hub_key): a ZeroMQ hub link needs it".into();
    };
    let (initiator, hello) = match fleet_protocol::noise::Initiator::start(&node.security.key, &hub_link_key, &node.identity) {
        Ok(x) => x,
        Err(e) => return format!("cannot start the link handshake: {e}"),
    };
    if let Err(e) = tx.send(Bytes::from(hello)).await {
        return e.to_string();
    }
    let mut hs_down = rx.down_signal();
    let answer = tokio::select! {
        r = tokio::time::timeout(handshake_wait, rx.recv()) => r,
        _ = crate::until_set(&mut hs_down) => return "the hub closed the link during the handshake".into(),
    };
    let mut session = match answer {
        Ok(Ok(reply)) => match initiator.finish(&reply) {
            Ok(s) => s,
            Err(e) => return format!("link handshake failed (wrong hub key?): {e}"),
        },
        Ok(Err(e)) => return e.to_string(),
        Err(_) => {
            return format!(
                "the hub did not complete the link handshake within {:.0} s: is this node's link key enrolled (noded hub enroll --accept {})?",
                handshake_wait.as_secs_f64(),
                node.identity
            );
        }
    };
    // The hub accepted this node's key: only now is it attached.
    node.set_hub_state(hub, "up");
    info!(hub = %hub, identity = %node.identity, "attached to hub");
    node.settle.done();
    // From here on replies of any request may leave through this link too.
    let _reply_path = ReplyPath { node: node.clone(), id: node.add_reply_path(out_tx.clone()) };
    let register = |node: &NodeState| encode_message(&Message::Registration(Box::new(node.registration()))).map(Bytes::from);
    match register(node) {
        Ok(f) => match session.seal(&f) {
            Ok(sealed) => {
                if let Err(e) = tx.send(Bytes::from(sealed)).await {
                    return e.to_string();
                }
            }
            Err(e) => return format!("cannot encrypt: {e}"),
        },
        Err(e) => return format!("cannot encode registration: {e}"),
    }
    let mut last_heard = Instant::now();
    let mut next_beat = tokio::time::Instant::now() + jittered(interval, node.config.retry_jitter);
    loop {
        tokio::select! {
            frame = rx.recv() => {
                let frame = match frame {
                    Ok(f) => f,
                    Err(e) => return e.to_string(),
                };
                let frame = match session.open(&frame) {
                    Ok(plain) => plain,
                    Err(e) => {
                        warn!(error = %e, "dropping a frame that does not decrypt");
                        continue;
                    }
                };
                last_heard = Instant::now();
                let env = match fleet_protocol::Envelope::from_frame(&frame, &limits) {
                    Ok(env) => env,
                    Err(e) => {
                        warn!(error = %e, "dropping malformed frame from hub");
                        continue;
                    }
                };
                if env.kind == fleet_protocol::Kind::Request {
                    tokio::spawn(answer_request(node.clone(), env, limits));
                    continue;
                }
                if env.kind == fleet_protocol::Kind::Trust {
                    match node.security.apply_hub_trust(&env, &limits) {
                        Ok(Some(summary)) => info!(%summary, "callers and policies from the hub applied"),
                        Ok(None) => {}
                        Err(why) => warn!(reason = %why, "callers and policies from the hub not applied"),
                    }
                    continue;
                }
                match env.open(&limits) {
                    Ok(Message::Ack(_)) => {}
                    Ok(Message::Error(e)) => warn!(message = %e.message, "hub refused a frame"),
                    Ok(other) => debug!(kind = ?other.kind(), "ignoring unexpected message from hub"),
                    Err(e) => warn!(error = %e, "dropping malformed frame from hub"),
                }
            }
            Some(frame) = out_rx.recv() => {
                let sealed = match session.seal(&frame) {
                    Ok(s) => s,
                    Err(e) => return format!("cannot encrypt: {e}"),
                };
                if let Err(e) = tx.send(Bytes::from(sealed)).await {
                    return e.to_string();
                }
            }
            _ = tokio::time::sleep_until(next_beat) => {
                if last_heard.elapsed() > quiet_limit {
                    return format!("no word from the hub for {:.1} s", last_heard.elapsed().as_secs_f64());
                }
                next_beat = tokio::time::Instant::now() + jittered(interval, node.config.retry_jitter);
                if let Ok(f) = register(node) {
                    let Ok(sealed) = session.seal(&f) else { return "cannot encrypt".into() };
                    if let Err(e) = tx.send(Bytes::from(sealed)).await {
                        return e.to_string();
                    }
                }
            }
            Ok(()) = samples.changed() => {
                let frame = samples.borrow_and_update().clone();
                if let Some(f) = frame {
                    let Ok(sealed) = session.seal(&f) else { return "cannot encrypt".into() };
                    if let Err(e) = tx.send(Bytes::from(sealed)).await {
                        return e.to_string();
                    }
                }
            }
            Ok(()) = changed.changed() => {
                if let Ok(f) = register(node) {
                    let Ok(sealed) = session.seal(&f) else { return "cannot encrypt".into() };
                    if let Err(e) = tx.send(Bytes::from(sealed)).await {
                        return e.to_string();
                    }
                }
            }
            _ = crate::until_set(&mut down) => return "hub disconnected".into(),
            _ = crate::until_set(shutdown) => return "shutting down".into(),
        }
    }
}

/// A link's place among the node's reply paths, given up when the link ends.
struct ReplyPath {
    node: Arc<NodeState>,
    id: u64,
}

impl Drop for ReplyPath {
    fn drop(&mut self) {
        self.node.remove_reply_path(self.id);
    }
}

/// Handles one request and queues its signed reply, if there is one, on every hub link: the
/// console may be attached to several hubs, and the one this request came through may be gone by
/// the time the reply is ready.
async fn answer_request(node: Arc<NodeState>, env: fleet_protocol::Envelope, limits: Limits) {
    let Some(reply) = node.handle_envelope(env, &limits).await else { return };
    if let Some(frame) = node.signed(Message::Reply(Box::new(reply)))
        && node.send_reply(frame).await
    {
        Stats::bump(&node.stats.replies);
    }
}
