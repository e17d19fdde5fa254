//! `fleet demo`: the embedded fleet, then the console on it (or, headless, the paths to use it
//! from another terminal).

use std::time::Duration;

use anyhow::Result;

use super::Ctx;

pub async fn run(ctx: &Ctx, headless: bool, log_level: Option<String>) -> Result<i32> {
    let fleet = crate::demo::start().await?;
    if headless {
        wait_for_nodes(&fleet).await;
        // Shell lines another terminal (or `. ./demo.env`) can source; then plain `fleet ping` works.
        let dir = fleet.security.dir.path();
        println!("# demo hub listening on {}", fleet.endpoint);
        println!("export FLEET_HUB={}", fleet.endpoint);
        println!("export FLEET_KEY={}", dir.join("keys").join("demo.key").display());
        println!("export FLEET_HUB_KEY={}", dir.join("hub.pub").display());
        println!("export FLEET_NODES_DIR={}", dir.join("nodes").display());
        println!("# the demo runs until ctrl-c or SIGTERM");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        fleet.stop();
        return Ok(0);
    }
    let mut config = ctx.config.clone();
    config.hubs = vec![fleet.endpoint.clone()];
    let note = format!("demo: embedded hub + {} in-process nodes", fleet.nodes.len());
    let opts = crate::console::Options::new(&config, config.settings(), fleet.security.credentials(), Some(note), log_level);
    let r = crate::console::run(opts).await;
    fleet.stop();
    r.map(|_| 0)
}

/// Waits (up to 10 s) until the registry lists every demo node, so the first command after the
/// demo says it is ready sees them all. A demo that is slow to fill still runs.
async fn wait_for_nodes(fleet: &crate::demo::EmbeddedFleet) {
    let settings = fleet_client::Settings { hubs: vec![fleet.endpoint.clone()], ..Default::default() };
    let Ok(mut client) = fleet_client::Client::connect(&settings, &fleet.security.credentials(), false).await else { return };
    let waited = crate::demo::wait_for_registry(&mut client, &settings.collective, fleet.nodes.len(), Duration::from_secs(10)).await;
    if let Err(e) = waited {
        tracing::warn!("demo: {e:#}");
    }
}
