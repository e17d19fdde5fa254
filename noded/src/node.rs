//! The node daemon: attaches to every hub at once, registers (on connect, on change, and as a
//! jittered heartbeat), rebuilds links that go quiet, and answers requests after checking
//! collective, ttl, filter and DDL itself — the hub's registry is a cache, never the authority.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleet_protocol::codec::{Limits, encode_message};
use fleet_protocol::transport::Link;
use fleet_protocol::{DaemonStats, Message, Registration, Reply, ReplyMode, Request, Status};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::agents::AgentSet;
use crate::audit::{AuditDecision, AuditRecord, args_digest};
use crate::config::NodeConfig;
use crate::security::Security;

/// MCollective's daemon_stats counters, shared by every link of a node.
#[derive(Default)]
pub struct Stats {
    pub total: AtomicU64,
    pub validated: AtomicU64,
    pub unvalidated: AtomicU64,
    pub passed: AtomicU64,
    pub filtered: AtomicU64,
    pub replies: AtomicU64,
    pub ttlexpired: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> DaemonStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DaemonStats {
            total: g(&self.total),
            validated: g(&self.validated),
            unvalidated: g(&self.unvalidated),
            passed: g(&self.passed),
            filtered: g(&self.filtered),
            replies: g(&self.replies),
            ttlexpired: g(&self.ttlexpired),
        }
    }
    fn bump(a: &AtomicU64) {
        a.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything a node knows about itself. Shared by its links and its agents.
pub struct NodeState {
    pub identity: String,
    pub config: NodeConfig,
    facts: RwLock<Arc<Value>>,
    classes: RwLock<Arc<Vec<String>>>,
    agents: RwLock<AgentSet>,
    pub stats: Stats,
    pub started_ms: u64,
    hubs: Mutex<BTreeMap<String, String>>,
    /// Bumped whenever facts, classes or agents change, so every link re-registers.
    changed: watch::Sender<u64>,
    pub security: Security,
}

impl NodeState {
    pub fn new(
        identity: String,
        config: NodeConfig,
        facts: Value,
        classes: Vec<String>,
        agents: AgentSet,
        security: Security,
    ) -> Arc<NodeState> {
        let (changed, _) = watch::channel(0);
        Arc::new(NodeState {
            identity,
            config,
            facts: RwLock::new(Arc::new(facts)),
            classes: RwLock::new(Arc::new(classes)),
            agents: RwLock::new(agents),
            stats: Stats::default(),
            started_ms: fleet_protocol::now_ms(),
            hubs: Mutex::new(BTreeMap::new()),
            changed,
            security,
        })
    }

    pub fn facts(&self) -> Arc<Value> {
        self.facts.read().expect("facts lock").clone()
    }
    pub fn classes(&self) -> Arc<Vec<String>> {
        self.classes.read().expect("classes lock").clone()
    }
    pub fn agents(&self) -> AgentSet {
        self.agents.read().expect("agents lock").clone()
    }
    pub fn collectives(&self) -> &[String] {
        &self.config.collectives
    }
    pub fn main_collective(&self) -> &str {
        self.config.main_collective()
    }

    pub fn set_facts(&self, facts: Value) {
        *self.facts.write().expect("facts lock") = Arc::new(facts);
        self.changed.send_modify(|v| *v += 1);
    }
    pub fn set_classes(&self, classes: Vec<String>) {
        *self.classes.write().expect("classes lock") = Arc::new(classes);
        self.changed.send_modify(|v| *v += 1);
    }
    pub fn set_agents(&self, agents: AgentSet) {
        *self.agents.write().expect("agents lock") = agents;
        self.changed.send_modify(|v| *v += 1);
    }

    /// Rescans the agents directory (all agents, or only `only`): new agents appear, changed ones
    /// are replaced, removed ones disappear. Requests in flight keep the agent they started with.
    /// Returns the refused agents with their reasons.
    pub async fn reload_agents(&self, only: Option<&str>) -> Vec<crate::agents::external::Skipped> {
        let Some(dir) = self.config.agents_dir.clone() else { return Vec::new() };
        let (loaded, skipped) = crate::agents::external::scan(&dir, only).await;
        let mut set = match only {
            // Start from what is loaded now and replace just the named agent.
            Some(name) => {
                let mut s = self.agents();
                s.remove(name);
                s
            }
            None => crate::agents::xen::builtin_agents(&self.config), // issue 7: keep xen across reloads
        };
        for a in loaded {
            set.insert(a);
        }
        info!(agents = ?set.names(), refused = skipped.len(), "agents loaded");
        self.set_agents(set);
        skipped
    }

    /// Each configured hub and the state of its link ("up", "connecting", "down: reason").
    pub fn hub_states(&self) -> BTreeMap<String, String> {
        self.hubs.lock().expect("hubs lock").clone()
    }
    fn set_hub_state(&self, hub: &str, state: impl Into<String>) {
        self.hubs.lock().expect("hubs lock").insert(hub.to_string(), state.into());
    }

    pub fn registration(&self) -> Registration {
        Registration {
            identity: self.identity.clone(),
            collectives: self.config.collectives.clone(),
            facts: (*self.facts()).clone(),
            classes: (*self.classes()).clone(),
            agents: self.agents().info(),
            stats: self.stats.snapshot(),
            metrics: BTreeMap::new(),
            interval_ms: (self.config.heartbeat_interval * 1000.0) as u64,
            version: crate::VERSION.to_string(),
            started: self.started_ms,
        }
    }

    fn audit(&self, req: Option<&Request>, caller: &str, decision: AuditDecision, reason: impl Into<String>, started: Instant) {
        let (id, agent, action, digest) = match req {
            Some(r) => (r.id.clone(), r.agent.clone(), r.action.clone(), args_digest(&r.args)),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        self.security.audit.log(AuditRecord {
            request_id: id,
            caller: caller.to_string(),
            agent,
            action,
            args_digest: digest,
            decision,
            reason: reason.into(),
            duration: started.elapsed(),
        });
    }

    /// Handles one request envelope as it came off the wire: the signature is checked over the raw
    /// bytes before the body is decoded. `None` means no reply is sent (rejected before decoding,
    /// filtered out, or fire-and-forget).
    pub async fn handle_envelope(self: &Arc<Self>, env: fleet_protocol::Envelope, limits: &Limits) -> Option<Reply> {
        let started = Instant::now();
        Stats::bump(&self.stats.total);
        let claimed = env.signer.clone().unwrap_or_else(|| "-".into());
        let caller = match env.verify(&self.security.callers()) {
            Ok(c) => c,
            Err(e) => {
                Stats::bump(&self.stats.unvalidated);
                warn!(signer = %claimed, error = %e, "request rejected before decoding");
                self.audit(None, &claimed, AuditDecision::Rejected, e.to_string(), started);
                return None;
            }
        };
        let req = match env.open(limits) {
            Ok(Message::Request(r)) => *r,
            Ok(other) => {
                self.audit(None, &caller, AuditDecision::Rejected, format!("not a request: {:?}", other.kind()), started);
                return None;
            }
            Err(e) => {
                Stats::bump(&self.stats.unvalidated);
                self.audit(None, &caller, AuditDecision::Rejected, format!("malformed request: {e}"), started);
                return None;
            }
        };
        self.handle_request(req, caller, started).await
    }

    /// Handles a request whose signature was verified and whose signer is `caller`.
    pub async fn handle_request(self: &Arc<Self>, mut req: Request, caller: String, started: Instant) -> Option<Reply> {
        let reply = |req: &Request, status: Status, msg: String, data: Value| Reply {
            request_id: req.id.clone(),
            sender: self.identity.clone(),
            status,
            status_msg: msg,
            data,
            elapsed_us: started.elapsed().as_micros() as u64,
        };
        let wants_reply = req.reply == ReplyMode::Normal;
        if req.caller != caller {
            let why = format!("caller field '{}' does not match the signing key '{caller}'", req.caller);
            self.audit(Some(&req), &caller, AuditDecision::Rejected, why.clone(), started);
            return wants_reply.then(|| reply(&req, Status::Denied, why, Value::Null));
        }
        if !self.config.collectives.iter().any(|c| *c == req.collective) {
            Stats::bump(&self.stats.filtered);
            return None;
        }
        let now = fleet_protocol::now_ms();
        let age_ms = now.saturating_sub(req.msgtime);
        if age_ms > u64::from(req.ttl) * 1000 {
            Stats::bump(&self.stats.ttlexpired);
            let why = format!("request expired: sent {:.1} s ago with a ttl of {} s", age_ms as f64 / 1000.0, req.ttl);
            warn!(request = %req.id, caller = %caller, "{why}");
            self.audit(Some(&req), &caller, AuditDecision::Rejected, why.clone(), started);
            return wants_reply.then(|| reply(&req, Status::Aborted, why, Value::Null));
        }
        if req.msgtime > now + self.security.max_skew_ms {
            let why =
                format!("request from the future: msgtime is {:.1} s ahead of this node's clock", (req.msgtime - now) as f64 / 1000.0);
            warn!(request = %req.id, caller = %caller, "{why}");
            self.audit(Some(&req), &caller, AuditDecision::Rejected, why.clone(), started);
            return wants_reply.then(|| reply(&req, Status::Denied, why, Value::Null));
        }
        if !self.security.replay.first_time(&req.id, req.msgtime + u64::from(req.ttl) * 1000 + self.security.max_skew_ms, now) {
            let why = "replayed request: this request id was already received".to_string();
            warn!(request = %req.id, caller = %caller, "{why}");
            self.audit(Some(&req), &caller, AuditDecision::Rejected, why.clone(), started);
            return wants_reply.then(|| reply(&req, Status::Denied, why, Value::Null));
        }
        let expr = match req.filter.compile() {
            Ok(e) => e,
            Err(e) => {
                Stats::bump(&self.stats.unvalidated);
                self.audit(Some(&req), &caller, AuditDecision::Rejected, format!("bad filter: {}", e.message), started);
                return wants_reply.then(|| reply(&req, Status::InvalidData, e.to_string(), Value::Null));
            }
        };
        let facts = self.facts();
        let classes = self.classes();
        let agents = self.agents();
        let names = agents.names();
        let view = fleet_protocol::NodeView {
            identity: &self.identity,
            facts: &facts,
            classes: &classes,
            agents: names.iter().map(String::as_str).collect(),
        };
        let targeted = req.targets.is_empty() || req.targets.iter().any(|t| *t == self.identity);
        if !targeted || !expr.matches(&view) {
            // Not for this node: not run, not audited (it was meant for others).
            Stats::bump(&self.stats.filtered);
            debug!(request = %req.id, "filtered out");
            return None;
        }
        Stats::bump(&self.stats.passed);
        let Some(agent) = agents.get(&req.agent).cloned() else {
            Stats::bump(&self.stats.unvalidated);
            let why = format!("unknown agent '{}' (this node has: {})", req.agent, names.join(", "));
            self.audit(Some(&req), &caller, AuditDecision::Rejected, why.clone(), started);
            return wants_reply.then(|| reply(&req, Status::UnknownAction, why, Value::Null));
        };
        if let Err(e) = fleet_ddl::validate_request(agent.ddl(), &req.action, &mut req.args) {
            Stats::bump(&self.stats.unvalidated);
            let status = if e.is_unknown_action() {
                Status::UnknownAction
            } else if e.is_missing() {
                Status::MissingData
            } else {
                Status::InvalidData
            };
            info!(request = %req.id, caller = %caller, agent = %req.agent, action = %req.action, error = %e, "request refused by DDL");
            self.audit(Some(&req), &caller, AuditDecision::Rejected, e.to_string(), started);
            return wants_reply.then(|| reply(&req, status, e.to_string(), Value::Null));
        }
        Stats::bump(&self.stats.validated);
        let decision = self.security.policies.decide(&req.agent, &caller, &req.action, &view);
        if !decision.allowed {
            info!(request = %req.id, caller = %caller, agent = %req.agent, action = %req.action, rule = %decision.rule, "denied");
            self.audit(Some(&req), &caller, AuditDecision::Denied, decision.rule.clone(), started);
            return wants_reply.then(|| reply(&req, Status::Denied, format!("denied by {}", decision.rule), Value::Null));
        }
        drop(view);
        let timeout = Duration::from_secs(agent.ddl().metadata.timeout);
        info!(request = %req.id, caller = %caller, agent = %req.agent, action = %req.action, "running action");
        let meta = crate::agents::RequestMeta::of(&req);
        // The request keeps its arguments for the audit line written after the action.
        let fut = agent.call(self.clone(), meta, &req.action, req.args.clone());
        let outcome = tokio::time::timeout(timeout, fut).await;
        self.audit(Some(&req), &caller, AuditDecision::Allowed, decision.rule, started);
        if !wants_reply {
            return None;
        }
        Some(match outcome {
            Ok(Ok(data)) => reply(&req, Status::Ok, "OK".into(), data),
            Ok(Err(e)) => reply(&req, e.status, e.message, Value::Null),
            Err(_) => reply(&req, Status::Aborted, format!("timed out after {} s", timeout.as_secs()), Value::Null),
        })
    }
}

fn jittered(base: Duration, jitter: f64) -> Duration {
    let spread = base.as_secs_f64() * jitter;
    let offset = if spread > 0.0 { rand::random_range(-spread..spread) } else { 0.0 };
    Duration::from_secs_f64((base.as_secs_f64() + offset).max(0.01))
}

/// Runs a node until `shutdown` flips to true: one link task per configured hub.
pub async fn run(node: Arc<NodeState>, mut shutdown: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    for hub in node.config.hubs.clone() {
        node.set_hub_state(&hub, "connecting");
        tasks.push(tokio::spawn(link_loop(node.clone(), hub, shutdown.clone())));
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
    let initial = Duration::from_secs_f64(cfg.retry_initial_delay);
    let max = Duration::from_secs_f64(cfg.retry_max_delay);
    let mut delay = initial;
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
                node.set_hub_state(&hub, "up");
                info!(hub = %hub, identity = %node.identity, "attached to hub");
                let why = serve_link(&node, link, &mut shutdown).await;
                if *shutdown.borrow() {
                    return;
                }
                warn!(hub = %hub, reason = %why, "hub link lost; rebuilding");
                node.set_hub_state(&hub, format!("down: {why}"));
                delay = initial;
            }
            Err(e) => {
                node.set_hub_state(&hub, format!("down: {e}"));
                debug!(hub = %hub, error = %e, "cannot attach");
            }
        }
        let wait = jittered(delay, cfg.retry_jitter);
        delay = (delay * 2).min(max);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = crate::until_set(&mut shutdown) => return,
        }
    }
}

async fn serve_link(node: &Arc<NodeState>, link: Link, shutdown: &mut watch::Receiver<bool>) -> String {
    let limits = Limits { max_frame: node.config.max_frame, ..Limits::default() };
    let (mut tx, mut rx) = link.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(1024);
    let interval = Duration::from_secs_f64(node.config.heartbeat_interval);
    let quiet_limit = Duration::from_secs_f64(node.config.link_timeout());
    let mut changed = node.changed.subscribe();
    let mut down = rx.down_signal();
    // The Noise handshake: the hub must hold the pinned key, and must know ours.
    let handshake_wait = Duration::from_secs_f64(node.config.connect_timeout);
    let (initiator, hello) = match fleet_protocol::noise::Initiator::start(&node.security.key, &node.security.hub_link_key, &node.identity)
    {
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
                    let node = node.clone();
                    let out = out_tx.clone();
                    tokio::spawn(async move {
                        if let Some(reply) = node.handle_envelope(env, &limits).await {
                            match fleet_protocol::Envelope::seal(&Message::Reply(Box::new(reply))) {
                                Ok(mut env) => {
                                    env.sign(&node.security.key, &node.identity);
                                    if let Ok(f) = env.to_frame() {
                                        if out.send(Bytes::from(f)).await.is_ok() {
                                            Stats::bump(&node.stats.replies);
                                        }
                                    }
                                }
                                Err(e) => warn!(error = %e, "cannot encode reply"),
                            }
                        }
                    });
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
