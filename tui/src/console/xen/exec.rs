//! The Xen panel's network work: [`Cmd`]s run by the console's network task through the client
//! core, reported back as `Action::Xen`.

use fleet_client::xen::MigrationResult;
use fleet_client::{Client, Settings};
use tokio::sync::mpsc::UnboundedSender;

use super::{Cmd, Msg, now_ms};
use crate::console::action::Action;

/// Runs one command on the network task's hub link through the client core, with the console's
/// `settings` (collective, ttl, timeouts), and reports back as `Action::Xen`.
pub async fn execute(cmd: Cmd, client: &mut Client, settings: &Settings, tx: &UnboundedSender<Action>) {
    let send = |msg: Msg| {
        let _ = tx.send(Action::Xen(msg));
    };
    match cmd {
        Cmd::Refresh { scope } => {
            let result = fleet_client::xen::gather(client, settings, &scope.client(), |_| {}).await;
            send(Msg::Refreshed { at_ms: now_ms(), result: result.map(Box::new).map_err(|e| e.to_string()) });
        }
        Cmd::Find { scope, name } => {
            let result = fleet_client::xen::find(client, settings, &scope.client(), &name, |_| {}).await;
            let result = result.map(|found| found.on.into_iter().map(|(dom0, _)| dom0).collect()).map_err(|e| e.to_string());
            send(Msg::Found { name, result });
        }
        Cmd::Migrate { moves } => {
            for m in moves {
                tracing::info!(domu = %m.domu, from = %m.from, to = %m.to, "console: migrating");
                let result =
                    fleet_client::xen::migrate_one(client, settings, &m.domu, &m.from, &m.to, &m.address).await.unwrap_or_else(|e| {
                        MigrationResult {
                            domain: m.domu.clone(),
                            from: m.from.clone(),
                            to: m.to.clone(),
                            success: false,
                            message: e.to_string(),
                            elapsed_s: 0.0,
                        }
                    });
                tracing::info!(domu = %m.domu, success = result.success, elapsed_s = result.elapsed_s, "console: migration ended");
                send(Msg::Migrated(Box::new(result)));
            }
        }
    }
}
