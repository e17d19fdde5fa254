//! echo: the MCollective tutorial's agent. `echo` returns its `msg` input unmodified. For practising
//! partial failure, the node option `echo_failure_share` makes that share of calls fail with
//! `Aborted` and a message that says so.

use std::sync::Arc;

use fleet_ddl::Ddl;
use serde_json::{Map, Value, json};

use super::{ActionError, ActionFuture, Agent, AgentContext, RequestMeta};

pub struct Echo {
    ddl: Arc<Ddl>,
    /// Share (0.0-1.0) of calls that fail on purpose.
    failure_share: f64,
}

impl Echo {
    pub fn new() -> Self {
        Self::failing(0.0)
    }

    /// An echo that fails `share` of its calls.
    pub fn failing(share: f64) -> Self {
        Echo { ddl: super::builtin_ddl("echo", fleet_ddl::builtin::ECHO), failure_share: share }
    }
}

impl Default for Echo {
    fn default() -> Self {
        Self::new()
    }
}

impl Agent for Echo {
    fn ddl(&self) -> &Ddl {
        &self.ddl
    }

    fn call(&self, node: Arc<dyn AgentContext>, _meta: RequestMeta, _action: &str, args: Map<String, Value>) -> ActionFuture {
        let share = self.failure_share;
        let result = if share > 0.0 && rand::random::<f64>() < share {
            Err(ActionError::aborted(format!("simulated intermittent failure (echo_failure_share = {share} on {})", node.identity())))
        } else {
            let msg = args.get("msg").cloned().unwrap_or(Value::String(String::new()));
            Ok(json!({ "msg": msg, "time": fleet_protocol::now_ms() }))
        };
        Box::pin(async move { result })
    }
}
