//! fleet-ddl: the description of an agent (MCollective's DDL) — its metadata, actions, inputs,
//! outputs and aggregates — parsed from TOML or imported from Choria's JSON, the validation of a
//! request against it, and its rendering as a help page. The client validates before sending and
//! the node validates again before running anything.

mod choria;
pub mod doc;
mod locate;
mod model;
mod validate;

pub use model::*;
pub use validate::{ValidationError, coerce_cli_value, is_plugin_validator, json_type, validate_request};

/// Choria's JSON DDL written from the model: [`Ddl::to_choria_json`].
pub mod export;

/// The DDLs of the built-in agents, compiled in so a node and a console always agree on them.
pub mod builtin {
    pub const RPCUTIL: &str = include_str!("../agents/rpcutil.toml");
    pub const ECHO: &str = include_str!("../agents/echo.toml");
    pub const PROCESS: &str = include_str!("../agents/process.toml");
    pub const XEN: &str = include_str!("../agents/xen.toml");
    pub const CONCAT: &str = include_str!("../agents/concat.toml");
    pub const JOBS: &str = include_str!("../agents/jobs.toml");
    pub const METRICS: &str = include_str!("../agents/metrics.toml");

    /// (agent name, DDL text) of every built-in agent.
    pub fn all() -> Vec<(&'static str, &'static str)> {
        vec![
            ("rpcutil", RPCUTIL),
            ("echo", ECHO),
            ("process", PROCESS),
            ("xen", XEN),
            ("concat", CONCAT),
            ("jobs", JOBS),
            ("metrics", METRICS),
        ]
    }
}
