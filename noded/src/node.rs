//! The node daemon: attaches to every hub at once, registers (on connect, on change, and as a
//! jittered heartbeat), rebuilds links that go quiet, and answers requests after checking
//! collective, ttl, filter and DDL itself — the hub's registry is a cache, never the authority.
//!
//! This file holds what a node knows about itself; `request.rs` how it answers one request, and
//! `link.rs` how it keeps its hub links.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use fleet_protocol::{DaemonStats, Registration};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tracing::info;

use crate::agents::{AgentContext, AgentSet};
use crate::config::NodeConfig;
use crate::policy::Decision;
use crate::security::Security;

mod link;
mod nats;
pub(crate) mod request;

pub use link::run;

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
    /// The outbound queue of every hub link that passed its handshake, by link number. A reply
    /// goes out through all of them, so a console attached to several hubs gets it even when the
    /// hub the request came through dies before forwarding it.
    reply_paths: Mutex<BTreeMap<u64, mpsc::Sender<Bytes>>>,
    /// Told when work is over, so the node settles once it is quiet (see [`memory`]).
    pub settle: Arc<crate::memory::Settle>,
}

impl NodeState {
    /// Registers a hub link's outbound queue for replies; the returned number unregisters it.
    pub fn add_reply_path(&self, out: mpsc::Sender<Bytes>) -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        self.reply_paths.lock().expect("reply paths lock").insert(id, out);
        id
    }

    pub fn remove_reply_path(&self, id: u64) {
        self.reply_paths.lock().expect("reply paths lock").remove(&id);
    }

    /// Queues a signed reply on every live hub link, waiting for room in each queue (a link that
    /// stays full for 5 s is skipped); true when at least one took it.
    pub async fn send_reply(&self, frame: Bytes) -> bool {
        let paths: Vec<mpsc::Sender<Bytes>> = self.reply_paths.lock().expect("reply paths lock").values().cloned().collect();
        let mut sent = false;
        for out in paths {
            sent |= matches!(tokio::time::timeout(std::time::Duration::from_secs(5), out.send(frame.clone())).await, Ok(Ok(())));
        }
        sent
    }

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
            reply_paths: Mutex::new(BTreeMap::new()),
            settle: Arc::default(),
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
            None => AgentSet::for_config(&self.config),
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

    /// `msg` in an envelope signed with this node's key, as a frame.
    pub fn signed(&self, msg: fleet_protocol::Message) -> Option<Bytes> {
        let mut env = match fleet_protocol::Envelope::seal(&msg) {
            Ok(env) => env,
            Err(e) => {
                tracing::warn!(error = %e, kind = ?msg.kind(), "cannot encode");
                return None;
            }
        };
        env.sign(&self.security.key, &self.identity);
        env.to_frame().ok().map(Bytes::from)
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
}

impl AgentContext for NodeState {
    fn identity(&self) -> &str {
        &self.identity
    }
    fn collectives(&self) -> &[String] {
        &self.config.collectives
    }
    fn facts(&self) -> Arc<Value> {
        NodeState::facts(self)
    }
    fn classes(&self) -> Arc<Vec<String>> {
        NodeState::classes(self)
    }
    fn agents(&self) -> AgentSet {
        NodeState::agents(self)
    }
    fn daemon_stats(&self) -> DaemonStats {
        self.stats.snapshot()
    }
    fn started_ms(&self) -> u64 {
        self.started_ms
    }
    fn hub_states(&self) -> BTreeMap<String, String> {
        NodeState::hub_states(self)
    }
    fn policy_decision(&self, agent: &str, caller: &str, action: &str) -> Decision {
        let (facts, classes, names) = (NodeState::facts(self), NodeState::classes(self), NodeState::agents(self).names());
        let view = fleet_protocol::NodeView {
            identity: &self.identity,
            facts: &facts,
            classes: &classes,
            agents: names.iter().map(String::as_str).collect(),
        };
        self.security.policies.decide(agent, caller, action, &view)
    }
    fn reload_agents(&self, only: Option<String>) -> Pin<Box<dyn Future<Output = Vec<crate::agents::external::Skipped>> + Send + '_>> {
        Box::pin(async move { NodeState::reload_agents(self, only.as_deref()).await })
    }
    fn audit(&self, record: crate::audit::AuditRecord) {
        self.security.audit.log(record);
    }
}

/// Re-reads the trusted callers when the callers directory changes (checked every 2 s, one
/// directory listing): adding an admin's key needs no restart and no SIGHUP.
pub async fn watch_callers(node: Arc<NodeState>, mut shutdown: watch::Receiver<bool>) {
    let Some(dir) = node.security.callers_dir().map(std::path::Path::to_path_buf) else { return };
    let mut last = fleet_protocol::files::dir_stamp(&dir);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CALLERS_POLL) => {}
            _ = crate::until_set(&mut shutdown) => return,
        }
        let now = fleet_protocol::files::dir_stamp(&dir);
        if now != last {
            last = now;
            node.security.reload_callers();
        }
    }
}

/// How often the callers directory is checked for changes.
const CALLERS_POLL: std::time::Duration = std::time::Duration::from_secs(2);
