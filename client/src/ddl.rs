//! Finding an agent's DDL and turning `key=value` inputs into a validated request.

use std::path::PathBuf;

use fleet_ddl::Ddl;
use serde_json::{Map, Value};

use crate::error::{ClientError, Result};

/// Where DDLs of agents that are not built in are looked for: `FLEET_DDL_PATH`, then
/// `/etc/fleet/agents`.
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("FLEET_DDL_PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.push("/etc/fleet/agents".into());
    dirs
}

/// Finds an agent's DDL: the built-ins are compiled in; others come from the [`search_path`].
pub fn find(agent: &str) -> Result<Ddl> {
    if let Some((_, text)) = fleet_ddl::builtin::all().into_iter().find(|(n, _)| *n == agent) {
        return Ok(Ddl::from_toml(text, &format!("ddl/agents/{agent}.toml"))?);
    }
    for dir in search_path() {
        for ext in ["toml", "json"] {
            let path = dir.join(format!("{agent}.{ext}"));
            if path.exists() {
                return Ok(Ddl::from_path(&path)?);
            }
        }
    }
    Err(ClientError::input(format!(
        "unknown agent '{agent}': no built-in DDL and no {agent}.toml or {agent}.json in FLEET_DDL_PATH or /etc/fleet/agents"
    )))
}

/// Parses `k=v` inputs, coerced to the types the DDL declares, then validates them.
pub fn parse_inputs(ddl: &Ddl, action: &str, inputs: &[String]) -> Result<Map<String, Value>> {
    let Some(act) = ddl.action(action) else {
        let known: Vec<_> = ddl.actions.keys().cloned().collect();
        return Err(ClientError::input(format!("agent '{}' has no action '{action}' (it has: {})", ddl.metadata.name, known.join(", "))));
    };
    let mut args = Map::new();
    for kv in inputs {
        let Some((k, v)) = kv.split_once('=') else { return Err(ClientError::input(format!("input '{kv}' is not KEY=VALUE"))) };
        let Some(input) = act.input.get(k) else {
            let known: Vec<_> = act.input.keys().cloned().collect();
            return Err(ClientError::input(format!(
                "{}#{action} has no input '{k}' (inputs: {})",
                ddl.metadata.name,
                if known.is_empty() { "none".into() } else { known.join(", ") }
            )));
        };
        args.insert(k.to_string(), fleet_ddl::coerce_cli_value(k, input, v)?);
    }
    fleet_ddl::validate_request(ddl, action, &mut args)?;
    Ok(args)
}

/// Validates `args` for `agent#action` and gives the action's own timeout, for a request built in
/// code rather than typed.
pub fn checked(agent: &str, action: &str, args: &mut Map<String, Value>) -> Result<(Ddl, std::time::Duration)> {
    let ddl = find(agent)?;
    fleet_ddl::validate_request(&ddl, action, args)?;
    let timeout = std::time::Duration::from_secs(ddl.metadata.timeout.max(1));
    Ok((ddl, timeout))
}
