//! `noded sim --nodes N`: N real node stacks in one process — each with its own DEALER link per
//! hub, its own agents and counters — with synthetic identities, facts and classes. For load
//! tests, benchmarks and demos.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::agents::AgentSet;
use crate::config::NodeConfig;
use crate::facts;
use crate::node::NodeState;

const COUNTRIES: &[&str] = &["uk", "us", "de", "fr", "jp"];
const ROLES: &[&str] = &["web", "db", "cache", "lb"];

/// Synthetic facts and classes of sim node `i`; built-in facts are shared, hostname replaced.
pub fn synthetic(i: usize, builtin: &Value, prefix: &str) -> (String, Value, Vec<String>) {
    let role = ROLES[i % ROLES.len()];
    let identity = format!("{prefix}{role}-{i:04}");
    let mut f = builtin.clone();
    facts::merge(
        &mut f,
        json!({
            "hostname": identity,
            "country": COUNTRIES[i % COUNTRIES.len()],
            "role": role,
            "datacenter": format!("dc{}", i % 3 + 1),
            "rack": i / 40,
            "sim": true,
        }),
    );
    let mut classes = vec!["base".to_string(), format!("role::{role}")];
    if i % 7 == 0 {
        classes.push("dev_server".into());
    }
    (identity, f, classes)
}

/// Builds `n` sim nodes on `config` (its hubs, intervals and collectives are shared).
pub fn build(n: usize, config: &NodeConfig, prefix: &str) -> Vec<Arc<NodeState>> {
    let builtin = facts::builtin_facts();
    (0..n)
        .map(|i| {
            let (identity, f, classes) = synthetic(i, &builtin, prefix);
            // Every sim node gets its own agent instances (and so its own process snapshot state).
            NodeState::new(identity, config.clone(), f, classes, AgentSet::builtin())
        })
        .collect()
}
