//! `fleet demo`: a real hub and five real nodes in this process (real ZeroMQ sockets on loopback,
//! real agents), then the console on them. Also the embedded fleet the benchmarks use.

use std::sync::Arc;

use anyhow::Result;
use fleet_protocol::codec::Limits;
use noded::{HubConfig, NodeConfig, NodeState};
use serde_json::json;
use tokio::sync::watch;

/// A running embedded fleet. Dropping it does not stop it; call [`EmbeddedFleet::stop`].
pub struct EmbeddedFleet {
    pub endpoint: String,
    pub nodes: Vec<Arc<NodeState>>,
    shutdown: watch::Sender<bool>,
}

impl EmbeddedFleet {
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// Starts a hub on an ephemeral loopback port.
pub async fn start_hub(shutdown: watch::Receiver<bool>) -> Result<String> {
    let (hub, endpoint) = noded::hub::Hub::bind("tcp://127.0.0.1:0", HubConfig::default(), Limits::default()).await?;
    tokio::spawn(hub.run(shutdown));
    Ok(endpoint)
}

fn node_config(endpoint: &str) -> NodeConfig {
    NodeConfig { hubs: vec![endpoint.to_string()], heartbeat_interval: 5.0, ..NodeConfig::default() }
}

/// The five demo nodes: varied identities, facts and classes.
pub fn demo_nodes(endpoint: &str) -> Vec<Arc<NodeState>> {
    let builtin = noded::facts::builtin_facts();
    let specs = [
        ("web-01", "uk", "web", "lon1", &["base", "role::web", "nginx"][..]),
        ("web-02", "us", "web", "nyc1", &["base", "role::web", "nginx"][..]),
        ("db-01", "uk", "db", "lon1", &["base", "role::db", "postgresql"][..]),
        ("cache-01", "de", "cache", "fra1", &["base", "role::cache", "redis", "dev_server"][..]),
        ("xen-01", "us", "hypervisor", "nyc1", &["base", "role::dom0", "dev_server"][..]),
    ];
    let agents = noded::agents::AgentSet::builtin();
    specs
        .iter()
        .map(|(id, country, role, dc, classes)| {
            let mut facts = builtin.clone();
            noded::facts::merge(&mut facts, json!({ "hostname": id, "country": country, "role": role, "datacenter": dc, "demo": true }));
            NodeState::new(
                id.to_string(),
                node_config(endpoint),
                facts,
                classes.iter().map(|c| c.to_string()).collect(),
                agents.clone(),
            )
        })
        .collect()
}

/// Starts a hub and the given nodes (or the five demo nodes).
pub async fn start(nodes: Option<Vec<Arc<NodeState>>>) -> Result<EmbeddedFleet> {
    let (tx, rx) = watch::channel(false);
    let endpoint = start_hub(rx.clone()).await?;
    let nodes = nodes.unwrap_or_else(|| demo_nodes(&endpoint));
    for n in &nodes {
        tokio::spawn(noded::node::run(n.clone(), rx.clone()));
    }
    Ok(EmbeddedFleet { endpoint, nodes, shutdown: tx })
}
