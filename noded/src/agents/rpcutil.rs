//! rpcutil: ping, inventory, agent_inventory, get_fact, get_facts, daemon_stats, collective_info.

use std::sync::Arc;

use fleet_ddl::Ddl;
use fleet_protocol::filter::lookup_fact;
use serde_json::{Map, Value, json};

use super::{ActionError, ActionFuture, Agent, AgentContext};

pub struct Rpcutil {
    ddl: Arc<Ddl>,
}

impl Rpcutil {
    pub fn new() -> Self {
        Rpcutil { ddl: super::builtin_ddl("rpcutil", fleet_ddl::builtin::RPCUTIL) }
    }
}

impl Default for Rpcutil {
    fn default() -> Self {
        Self::new()
    }
}

impl Agent for Rpcutil {
    fn ddl(&self) -> &Ddl {
        &self.ddl
    }

    fn call(&self, node: Arc<dyn AgentContext>, _meta: super::RequestMeta, action: &str, args: Map<String, Value>) -> ActionFuture {
        let result = match action {
            "ping" => Ok(json!({ "pong": fleet_protocol::now_ms() })),
            "inventory" => Ok(inventory(&*node)),
            "agent_inventory" => Ok(agent_inventory(&*node)),
            "get_fact" => get_fact(&*node, &args),
            "get_facts" => get_facts(&*node, &args),
            "daemon_stats" => Ok(daemon_stats(&*node)),
            "collective_info" => Ok(json!({
                "main_collective": node.main_collective(),
                "collectives": node.collectives(),
            })),
            "policy_check" => Ok(policy_check(&*node, &args)),
            "reload_agents" => {
                let only = args.get("agent").and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
                return Box::pin(async move {
                    let skipped = node.reload_agents(only).await;
                    let refused: Map<String, Value> = skipped.into_iter().map(|s| (s.name, Value::String(s.reason))).collect();
                    Ok(json!({ "agents": node.agents().names(), "skipped": refused }))
                });
            }
            other => Err(ActionError::new(fleet_protocol::Status::UnknownAction, format!("rpcutil has no action '{other}'"))),
        };
        Box::pin(async move { result })
    }
}

fn inventory(node: &dyn AgentContext) -> Value {
    json!({
        "agents": node.agents().names(),
        "facts": *node.facts(),
        "classes": *node.classes(),
        "collectives": node.collectives(),
        "main_collective": node.main_collective(),
        "version": crate::VERSION,
    })
}

fn agent_inventory(node: &dyn AgentContext) -> Value {
    let agents: Vec<Value> = node
        .agents()
        .iter()
        .map(|a| {
            let m = &a.ddl().metadata;
            json!({
                "agent": m.name, "name": m.name, "description": m.description, "version": m.version,
                "author": m.author, "license": m.license, "url": m.url, "timeout": m.timeout,
                "actions": a.ddl().actions.keys().collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "agents": agents })
}

fn get_fact(node: &dyn AgentContext, args: &Map<String, Value>) -> Result<Value, ActionError> {
    let name = args.get("fact").and_then(Value::as_str).unwrap_or_default();
    let facts = node.facts();
    let value = lookup_fact(&facts, name).cloned().unwrap_or(Value::Null);
    Ok(json!({ "fact": name, "value": value }))
}

fn get_facts(node: &dyn AgentContext, args: &Map<String, Value>) -> Result<Value, ActionError> {
    let names = args.get("facts").and_then(Value::as_str).unwrap_or_default();
    let facts = node.facts();
    let mut values = Map::new();
    for n in names.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        values.insert(n.to_string(), lookup_fact(&facts, n).cloned().unwrap_or(Value::Null));
    }
    Ok(json!({ "values": values }))
}

fn daemon_stats(node: &dyn AgentContext) -> Value {
    let s = node.daemon_stats();
    json!({
        "total": s.total, "validated": s.validated, "unvalidated": s.unvalidated, "passed": s.passed,
        "filtered": s.filtered, "replies": s.replies, "ttlexpired": s.ttlexpired,
        "pid": std::process::id(), "starttime": node.started_ms() / 1000,
        "uptime": fleet_protocol::now_ms().saturating_sub(node.started_ms()) / 1000,
        "agents": node.agents().names(), "version": crate::VERSION,
        "hubs": node.hub_states(),
    })
}

fn policy_check(node: &dyn AgentContext, args: &Map<String, Value>) -> Value {
    let s = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let d = node.policy_decision(&s("agent"), &s("caller"), &s("check_action"));
    json!({ "allowed": d.allowed, "rule": d.rule })
}
