//! Agents: each one is described by a DDL and dispatched only by the action names its DDL
//! declares. One module per built-in agent.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use fleet_ddl::Ddl;
use fleet_protocol::{AgentInfo, Status};
use serde_json::{Map, Value};

use crate::node::NodeState;

pub mod echo;
pub mod external;
pub mod process;
pub mod rpcutil;
pub mod xen; // issue 7: the xen agent (active where xl_path exists)

/// What an action returns when it cannot do its job.
#[derive(Debug, Clone)]
pub struct ActionError {
    pub status: Status,
    pub message: String,
}

impl ActionError {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        ActionError { status, message: message.into() }
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
    fn call(&self, node: Arc<NodeState>, meta: RequestMeta, action: &str, args: Map<String, Value>) -> ActionFuture;
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
    /// The built-in agents.
    pub fn builtin() -> AgentSet {
        let mut set = AgentSet::default();
        set.insert(Arc::new(rpcutil::Rpcutil::new()));
        set.insert(Arc::new(echo::Echo::new()));
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

/// Parses a compiled-in DDL; a broken built-in DDL is a build defect caught by tests.
pub(crate) fn builtin_ddl(name: &str, text: &str) -> Ddl {
    Ddl::from_toml(text, &format!("ddl/agents/{name}.toml")).unwrap_or_else(|e| panic!("built-in DDL is invalid: {e}"))
}
