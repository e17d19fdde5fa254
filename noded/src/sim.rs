//! `noded sim --nodes N`: N real node stacks in one process — each with its own DEALER link per
//! hub, its own agents and counters — with synthetic identities, facts and classes. For load
//! tests, benchmarks and demos. The nodes of one process share one check of each signed request
//! (a real node checks it once too), so the simulator's host pays for one node's verification,
//! not thousands.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::agents::AgentSet;
use crate::config::NodeConfig;
use crate::facts;
use crate::node::NodeState;
use crate::security::Security;
use fleet_protocol::keys::{KeyPair, Keyring};

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
    if i.is_multiple_of(7) {
        classes.push("dev_server".into());
    }
    (identity, f, classes)
}

/// Builds `n` sim nodes on `config` (its hubs, intervals, collectives, trusted callers and
/// policies are shared). Each node gets its own key pair in memory; sim nodes keep no audit log.
/// Every node's key pair is returned with it, so its link key can be enrolled on the hub.
pub fn build(
    n: usize,
    config: &NodeConfig,
    callers: &Keyring,
    hub_link_key: Option<[u8; 32]>,
    prefix: &str,
) -> Vec<(Arc<NodeState>, Arc<KeyPair>)> {
    let builtin = facts::builtin_facts();
    // The nodes of one process check a signed request once between them (see keys/memo.rs).
    let callers = callers.clone().sharing_verifications();
    (0..n)
        .map(|i| {
            let (identity, f, classes) = synthetic(i, &builtin, prefix);
            let key = Arc::new(KeyPair::generate());
            let security = Security::in_memory(
                key.clone(),
                hub_link_key,
                callers.clone(),
                &config.policy_dir,
                config.policy_default_allow(),
                crate::audit::Audit::disabled(),
            );
            // Every sim node gets its own agent instances (and so its own process snapshot state).
            (NodeState::new(identity, config.clone(), f, classes, AgentSet::without_xen(config), security), key)
        })
        .collect()
}
