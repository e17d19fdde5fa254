//! Agents: each one is described by a DDL and dispatched only by the action names its DDL
//! declares. One module per built-in agent.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use fleet_ddl::Ddl;
use fleet_protocol::{AgentInfo, DaemonStats, Status};
use serde_json::{Map, Value};

use crate::config::NodeConfig;
use crate::policy::Decision;

pub mod concat;
pub mod echo;
pub mod external;
pub mod jobs;
pub mod metrics;
pub mod process;
pub mod rpcutil;
pub mod xen;

/// What an action returns when it cannot do its job.
#[derive(Debug, Clone)]
pub struct ActionError {
    pub status: Status,
    pub message: String,
    /// What the action returned along with its failure (an external agent's `data`); null if nothing.
    pub data: Value,
}

impl ActionError {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        ActionError { status, message: message.into(), data: Value::Null }
    }
    /// The failure, keeping the data the action returned with it.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }
    pub fn aborted(message: impl Into<String>) -> Self {
        Self::new(Status::Aborted, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Status::InvalidData, message)
    }
}

pub type ActionResult = Result<Value, ActionError>;
pub type ActionFuture = Pin<Box<dyn Future<Output = ActionResult> + Send + 'static>>;

/// An agent. `call` is only ever invoked with an action its DDL declares and arguments that
/// passed validation against that DDL.
pub trait Agent: Send + Sync {
    fn ddl(&self) -> &Ddl;
    fn call(&self, node: Arc<dyn AgentContext>, meta: RequestMeta, action: &str, args: Map<String, Value>) -> ActionFuture;
}

/// What an agent may see of, and ask of, the node it runs on. Keys, the audit log, the replay
/// cache and the links stay out of reach.
pub trait AgentContext: Send + Sync {
    fn identity(&self) -> &str;
    /// The collectives the node is in; the first is its main collective.
    fn collectives(&self) -> &[String];
    fn main_collective(&self) -> &str {
        self.collectives().first().map_or("", String::as_str)
    }
    fn facts(&self) -> Arc<Value>;
    fn classes(&self) -> Arc<Vec<String>>;
    /// The agents loaded now.
    fn agents(&self) -> AgentSet;
    fn daemon_stats(&self) -> DaemonStats;
    /// When this node process started, in ms since the epoch.
    fn started_ms(&self) -> u64;
    /// Each configured hub and the state of its link.
    fn hub_states(&self) -> BTreeMap<String, String>;
    /// What this node's action policy says about `caller` running `agent`'s `action` here.
    fn policy_decision(&self, agent: &str, caller: &str, action: &str) -> Decision;
    /// Rescans the agents directory (all agents, or only `only`); returns the agents refused.
    fn reload_agents(&self, only: Option<String>) -> Pin<Box<dyn Future<Output = Vec<external::Skipped>> + Send + '_>>;
    /// Writes one line to the node's audit log (the jobs agent records a job's creation, start,
    /// end and cancel).
    fn audit(&self, record: crate::audit::AuditRecord);
}

/// Who asked, and when: the parts of a request an agent may need beyond its arguments.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub id: String,
    pub caller: String,
    pub collective: String,
    pub msgtime: u64,
    pub ttl: u32,
}

impl RequestMeta {
    pub fn of(req: &fleet_protocol::Request) -> RequestMeta {
        RequestMeta {
            id: req.id.clone(),
            caller: req.caller.clone(),
            collective: req.collective.clone(),
            msgtime: req.msgtime,
            ttl: req.ttl,
        }
    }
}

/// The agents a node has loaded, by name.
#[derive(Clone, Default)]
pub struct AgentSet {
    agents: BTreeMap<String, Arc<dyn Agent>>,
}

impl AgentSet {
    /// rpcutil, echo and process, with their default settings: the agents every node has.
    pub fn builtin() -> AgentSet {
        Self::with_echo(echo::Echo::new())
    }

    /// The built-in agents of a node with `config`: rpcutil, echo (failing the configured share
    /// of its calls) and process, plus xen where `xl_path` is an executable xl.
    pub fn for_config(config: &NodeConfig) -> AgentSet {
        let mut set = Self::without_xen(config);
        if let Some(xen) = xen::XenAgent::for_config(config) {
            set.insert(Arc::new(xen));
        }
        set
    }

    /// [`for_config`](Self::for_config) without xen, for simulated nodes: they share one host,
    /// whose xl is not theirs.
    pub fn without_xen(config: &NodeConfig) -> AgentSet {
        // The node's data plugins answer data functions in filters evaluated in this process.
        crate::data::NodeData::install(config);
        let mut set = Self::with_echo(echo::Echo::failing(config.echo_failure_share));
        // Refuses every target until the config names roots.
        set.insert(Arc::new(concat::ConcatAgent::for_config(config)));
        set.insert(Arc::new(jobs::JobsAgent::for_config(config)));
        // Starts the process's sampler; `metric.NAME` filter terms are then answered here too.
        metrics::install(config);
        set.insert(Arc::new(metrics::MetricsAgent::for_config(config)));
        set
    }

    fn with_echo(echo: echo::Echo) -> AgentSet {
        let mut set = AgentSet::default();
        set.insert(Arc::new(rpcutil::Rpcutil::new()));
        set.insert(Arc::new(echo));
        set.insert(Arc::new(process::ProcessAgent::new()));
        set
    }

    pub fn insert(&mut self, agent: Arc<dyn Agent>) {
        self.agents.insert(agent.ddl().metadata.name.clone(), agent);
    }

    /// Removes an agent; built-in agents stay.
    pub fn remove(&mut self, name: &str) {
        if !Self::is_builtin(name) {
            self.agents.remove(name);
        }
    }

    pub fn is_builtin(name: &str) -> bool {
        fleet_ddl::builtin::all().iter().any(|(n, _)| *n == name)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Agent>> {
        self.agents.get(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.agents.keys().cloned().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Agent>> {
        self.agents.values()
    }

    pub fn info(&self) -> Vec<AgentInfo> {
        self.agents
            .values()
            .map(|a| {
                let d = a.ddl();
                AgentInfo { name: d.metadata.name.clone(), version: d.metadata.version.clone(), ddl_digest: d.digest() }
            })
            .collect()
    }
}

/// A compiled-in DDL, parsed once per process and shared by every agent instance (`noded sim`
/// runs thousands). Only deserialized: the checks `Ddl::from_toml` adds (compiling each input's
/// validation regex, among others) pass for every built-in DDL in the tests, and at each start they
/// would only cost time and leave the regex compiler's pages resident in every idle node.
pub(crate) fn builtin_ddl(name: &'static str, text: &str) -> Arc<Ddl> {
    static PARSED: std::sync::Mutex<Vec<(&'static str, Arc<Ddl>)>> = std::sync::Mutex::new(Vec::new());
    let mut parsed = PARSED.lock().expect("built-in DDL cache");
    if let Some((_, ddl)) = parsed.iter().find(|(n, _)| *n == name) {
        return ddl.clone();
    }
    let ddl = Arc::new(toml::from_str::<Ddl>(text).unwrap_or_else(|e| panic!("built-in DDL ddl/agents/{name}.toml is invalid: {e}")));
    parsed.push((name, ddl.clone()));
    ddl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_ddls_deserialize_to_what_the_checked_parser_gives() {
        for (name, text) in fleet_ddl::builtin::all() {
            let checked = Ddl::from_toml(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(*builtin_ddl(name, text), checked, "{name}");
        }
    }
}
