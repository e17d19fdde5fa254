//! The full-screen console.

use anyhow::Result;

use crate::config::ClientConfig;

/// What the console needs to start.
#[derive(Debug, Clone)]
pub struct Options {
    pub hubs: Vec<String>,
    pub collective: String,
    pub caller: String,
    pub theme: String,
    pub read_only: bool,
    pub discovery_timeout: f64,
    pub ttl: u32,
    /// Shown in the top bar, e.g. that this is the demo.
    pub note: Option<String>,
    pub log_level: Option<String>,
}

impl Options {
    pub fn from_config(cfg: &ClientConfig, note: Option<String>, log_level: Option<String>) -> Options {
        Options {
            hubs: cfg.hubs.clone(),
            collective: cfg.collective.clone(),
            caller: cfg.caller(),
            theme: cfg.theme.clone(),
            read_only: cfg.read_only,
            discovery_timeout: cfg.discovery_timeout,
            ttl: cfg.ttl,
            note,
            log_level,
        }
    }
}

pub async fn run(_opts: Options) -> Result<()> {
    anyhow::bail!("the console is not built yet")
}
