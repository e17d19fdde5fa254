//! `fleet demo`: the embedded fleet, then the console on it (or, headless, the paths to use it
//! from another terminal).

use anyhow::Result;

use super::Ctx;

pub async fn run(ctx: &Ctx, headless: bool, log_level: Option<String>) -> Result<i32> {
    let fleet = crate::demo::start().await?;
    if headless {
        let dir = fleet.security.dir.path();
        println!("demo hub listening on {}", fleet.endpoint);
        println!(
            "try: FLEET_KEY={} FLEET_HUB_KEY={} FLEET_NODES_DIR={} fleet --hub {} ping",
            dir.join("keys").join("demo.key").display(),
            dir.join("hub.pub").display(),
            dir.join("nodes").display(),
            fleet.endpoint
        );
        tokio::signal::ctrl_c().await?;
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
