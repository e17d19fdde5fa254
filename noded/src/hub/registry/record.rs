//! What a registry keeps of a node's registration: only what discovery, fan-out, expiry and
//! change detection read (identity, collectives, facts, classes, agents, heartbeat interval).
//! Lists are shared between nodes and facts are kept packed; stats, metrics and the daemon's
//! version and start time are not kept.

use std::sync::Arc;

use fleet_protocol::{AgentInfo, FilterExpr, NodeView, Registration};
use serde_json::Value;
use tracing::warn;

use crate::hub::intern::Interner;

/// One node as the registry holds it.
#[derive(Debug)]
pub(crate) struct NodeRecord {
    pub identity: String,
    pub collectives: Arc<[String]>,
    pub classes: Arc<[String]>,
    /// Whole (versions and DDL digests too), so that an agent upgrade still counts as a change;
    /// shared, so that costs a node one pointer.
    pub agents: Arc<[AgentInfo]>,
    /// The facts in msgpack: a few hundred bytes, where the decoded tree takes several KB (a
    /// B-tree node of ~600 bytes for every object in it, however few its keys).
    facts: Box<[u8]>,
    /// The node's heartbeat interval, for expiry.
    pub interval_ms: u64,
}

/// The shared lists of one registry's nodes.
#[derive(Default)]
pub(crate) struct SharedLists {
    /// Collectives and classes.
    names: Interner<String>,
    agents: Interner<AgentInfo>,
}

impl SharedLists {
    /// The record kept of `reg`.
    pub fn record(&mut self, reg: Registration) -> NodeRecord {
        NodeRecord {
            facts: pack(&reg.facts, &reg.identity),
            identity: reg.identity,
            collectives: self.names.intern(reg.collectives),
            classes: self.names.intern(reg.classes),
            agents: self.agents.intern(reg.agents),
            interval_ms: reg.interval_ms,
        }
    }

    /// Distinct lists held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.names.len() + self.agents.len()
    }
}

impl NodeRecord {
    /// Whether this registration differs from the `old` one in facts, classes, agents or
    /// collectives (what consoles are told of as a change).
    pub fn changed_from(&self, old: &NodeRecord) -> bool {
        // Equal facts always pack alike; packings that differ are compared as values (0.0 and
        // -0.0 pack apart but are equal facts).
        let facts_changed = self.facts != old.facts && self.facts() != old.facts();
        facts_changed || self.classes != old.classes || self.agents != old.agents || self.collectives != old.collectives
    }

    pub fn in_collective(&self, collective: &str) -> bool {
        self.collectives.iter().any(|c| c == collective)
    }

    /// The facts, unpacked.
    pub fn facts(&self) -> Value {
        rmp_serde::from_slice(&self.facts).unwrap_or_else(|e| {
            warn!(node = %self.identity, error = %e, "stored facts do not unpack; matching as if it had none");
            Value::Null
        })
    }
}

/// A compiled filter as a registry applies it to its records: facts are unpacked only for a
/// filter that reads them.
pub(crate) struct RegistryFilter<'a> {
    expr: &'a FilterExpr,
    reads_facts: bool,
}

impl<'a> RegistryFilter<'a> {
    pub fn new(expr: &'a FilterExpr) -> RegistryFilter<'a> {
        RegistryFilter { expr, reads_facts: expr.reads_facts() }
    }

    pub fn matches(&self, record: &NodeRecord) -> bool {
        // A filter that reads no facts never looks at them: no need to unpack.
        let facts = if self.reads_facts { record.facts() } else { Value::Null };
        let view = NodeView {
            identity: &record.identity,
            facts: &facts,
            classes: &record.classes,
            agents: record.agents.iter().map(|a| a.name.as_str()).collect(),
        };
        self.expr.matches(&view)
    }
}

/// `facts` in msgpack (a JSON value always encodes; should it not, the node is kept as having
/// no facts).
fn pack(facts: &Value, identity: &str) -> Box<[u8]> {
    let packed = rmp_serde::to_vec(facts).unwrap_or_else(|e| {
        warn!(node = %identity, error = %e, "facts do not pack; kept as none");
        NO_FACTS.to_vec()
    });
    packed.into_boxed_slice()
}

/// msgpack's nil.
const NO_FACTS: [u8; 1] = [0xc0];

#[cfg(test)]
mod tests;
