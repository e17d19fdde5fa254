//! The one place a request's [`Spec`] is built: from the configured [`Settings`] (hubs,
//! collective, ttl, timeouts) and a [`Scope`] (which nodes). Every CLI command and every console
//! panel goes through [`Settings::spec`], so a configured collective or ttl reaches them all.

use std::path::PathBuf;
use std::time::Duration;

use fleet_protocol::Filter;
use serde_json::{Map, Value};

use crate::rollout::Rollout;
use crate::round::{DiscoveryMethod, Spec};

/// Slack added to discovery plus the action's own timeout when nothing else sets the round's.
const ROUND_SLACK: Duration = Duration::from_secs(2);

/// What every request of one console or command run shares, from the config file and flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Hub endpoints, in order of preference.
    pub hubs: Vec<String>,
    pub collective: String,
    /// Seconds a request stays valid after it was signed.
    pub ttl: u32,
    /// A whole-round timeout that overrides the per-action one (the config's `timeout`).
    pub timeout: Option<Duration>,
    pub discovery_timeout: Duration,
    /// How long to wait for a hub to answer the link handshake.
    pub connect_timeout: Duration,
    /// TLS and credentials for the `nats://` entries of `hubs`.
    pub nats: fleet_protocol::nats::NatsConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            hubs: vec![fleet_protocol::DEFAULT_HUB_CONNECT.to_string()],
            collective: "fleet".into(),
            ttl: 60,
            timeout: None,
            discovery_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(3),
            nats: Default::default(),
        }
    }
}

/// Which nodes a request addresses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    pub filter: Filter,
    pub method: DiscoveryMethod,
    /// Identities read from a file (implies the flatfile method).
    pub nodes_file: Option<PathBuf>,
    /// Exactly these nodes, skipping discovery.
    pub targets: Option<Vec<String>>,
    /// Another collective than the configured one.
    pub collective: Option<String>,
    /// A whole-round timeout given for this request alone (`--timeout`); in a staged rollout,
    /// each node's.
    pub timeout: Option<Duration>,
    /// A subset of the discovered nodes, batches, a canary, a failure limit (`--limit`,
    /// `--batch`, `--canary`, `--max-failures`). Explicit `targets` are not limited again.
    pub rollout: Option<Rollout>,
}

impl Scope {
    /// Every node matching `filter`.
    pub fn filter(filter: Filter) -> Scope {
        Scope { filter, ..Scope::default() }
    }

    /// Exactly these nodes.
    pub fn nodes(targets: Vec<String>) -> Scope {
        Scope { targets: Some(targets), ..Scope::default() }
    }

    /// The same scope with `-A agent` added (the nodes that have it).
    pub fn with_agent(&self, agent: &str) -> Scope {
        let mut s = self.clone();
        if !s.filter.agent.iter().any(|a| a == agent) {
            s.filter.agent.push(agent.to_string());
        }
        s
    }
}

/// The discovery method a scope gets: flatfile with a nodes file; broadcast when the filter has
/// data functions (`fstat(...)`, `process(...)`), which only the nodes can evaluate, so the hub's
/// registry would over-count.
fn method_for(scope: &Scope) -> DiscoveryMethod {
    if scope.nodes_file.is_some() {
        DiscoveryMethod::Flatfile
    } else if scope.method == DiscoveryMethod::Registry && scope.filter.needs_node_evaluation() {
        DiscoveryMethod::Broadcast
    } else {
        scope.method
    }
}

/// Why a spec discovers by broadcast though registry discovery was asked for, to tell the admin.
pub fn broadcast_note(spec: &Spec) -> Option<&'static str> {
    (spec.method == DiscoveryMethod::Broadcast && spec.filter.needs_node_evaluation())
        .then_some("the filter has data functions only the nodes can evaluate: discovering by broadcast")
}

impl Settings {
    /// The request `agent#action` with `args` on `scope`. The round's timeout is the scope's, else
    /// the configured one, else discovery + the action's timeout + 2 s.
    pub fn spec(&self, agent: &str, action: &str, args: Map<String, Value>, scope: &Scope, action_timeout: Duration) -> Spec {
        let timeout = scope.timeout.or(self.timeout).unwrap_or_else(|| self.discovery_timeout + action_timeout + ROUND_SLACK);
        Spec {
            agent: agent.into(),
            action: action.into(),
            args,
            filter: scope.filter.clone(),
            collective: scope.collective.clone().unwrap_or_else(|| self.collective.clone()),
            method: method_for(scope),
            nodes_file: scope.nodes_file.clone(),
            targets: scope.targets.clone(),
            timeout,
            discovery_timeout: self.discovery_timeout,
            ttl: self.ttl,
            rollout: scope.rollout.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_values_reach_the_spec() {
        let settings = Settings { collective: "ops".into(), ttl: 17, discovery_timeout: Duration::from_secs(4), ..Settings::default() };
        let spec = settings.spec("process", "list", Map::new(), &Scope::default(), Duration::from_secs(10));
        assert_eq!((spec.collective.as_str(), spec.ttl), ("ops", 17));
        assert_eq!(spec.discovery_timeout, Duration::from_secs(4));
        assert_eq!(spec.timeout, Duration::from_secs(16));
    }

    #[test]
    fn scope_overrides_settings() {
        let settings = Settings { timeout: Some(Duration::from_secs(30)), ..Settings::default() };
        let scope = Scope { collective: Some("dev".into()), timeout: Some(Duration::from_secs(3)), ..Scope::default() };
        let spec = settings.spec("rpcutil", "ping", Map::new(), &scope, Duration::from_secs(5));
        assert_eq!((spec.collective.as_str(), spec.timeout), ("dev", Duration::from_secs(3)));
        let spec = settings.spec("rpcutil", "ping", Map::new(), &Scope::default(), Duration::from_secs(5));
        assert_eq!(spec.timeout, Duration::from_secs(30));
        let flat = Scope { nodes_file: Some("/tmp/n".into()), ..Scope::default() };
        assert_eq!(settings.spec("a", "b", Map::new(), &flat, Duration::ZERO).method, DiscoveryMethod::Flatfile);
    }

    #[test]
    fn data_functions_discover_by_broadcast() {
        let f = Filter { compound: vec!["fstat(\"/etc/motd\").present=true and country=uk".into()], ..Filter::default() };
        let spec = Settings::default().spec("rpcutil", "ping", Map::new(), &Scope::filter(f), Duration::from_secs(5));
        assert_eq!(spec.method, DiscoveryMethod::Broadcast);
        assert!(broadcast_note(&spec).is_some());
        let plain = Filter { compound: vec!["country=uk".into()], ..Filter::default() };
        let spec = Settings::default().spec("rpcutil", "ping", Map::new(), &Scope::filter(plain), Duration::from_secs(5));
        assert_eq!((spec.method, broadcast_note(&spec)), (DiscoveryMethod::Registry, None));
    }

    #[test]
    fn with_agent_adds_once() {
        let s = Scope::default().with_agent("xen").with_agent("xen");
        assert_eq!(s.filter.agent, ["xen"]);
    }
}
