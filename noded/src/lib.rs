//! noded: the fleet node daemon, the hub, and the simulator, as a library so `fleet demo` and the
//! benchmarks can run real nodes and a real hub in-process.

pub mod agents;
pub mod audit;
pub mod config;
pub mod data;
pub mod doctor;
pub mod enroll;
pub mod facts;
pub mod hub;
pub mod limits;
pub mod memory;
pub mod node;
pub mod policy;
pub mod registry;
pub mod security;
pub mod setup;
pub mod sim;

pub use config::{HubConfig, NodeConfig};
pub use node::NodeState;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

use std::sync::Arc;

/// Builds a node from its config: identity, facts file over built-in facts, classes, agents.
pub fn build_node(config: NodeConfig) -> anyhow::Result<Arc<NodeState>> {
    use anyhow::Context;
    let mut facts = facts::builtin_facts();
    if let Some(path) = &config.facts_file {
        let extra = facts::load_facts_file(path)?;
        facts::merge(&mut facts, extra);
    }
    let classes = match &config.classes_file {
        Some(path) => facts::load_classes(path).with_context(|| format!("loading classes from {}", path.display()))?,
        None => Vec::new(),
    };
    let identity = match &config.identity {
        Some(id) => id.clone(),
        None => facts["hostname"].as_str().unwrap_or("localhost").to_string(),
    };
    let agent_set = agents::AgentSet::for_config(&config);
    let security = security::Security::from_config(&config)?;
    Ok(NodeState::new(identity, config, facts, classes, agent_set, security))
}

/// Resolves once the watched flag is true (or its sender is gone). Returns nothing, so no lock
/// guard is held across the caller's awaits.
pub async fn until_set(flag: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = flag.wait_for(|v| *v).await;
}
