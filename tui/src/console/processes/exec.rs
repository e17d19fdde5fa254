//! Runs the panel's [`Cmd`]s through the client core on a hub link of the network task's pool:
//! `process list` on the nodes in scope, exact `pid@start_time` kills (one request per host), and
//! one process's `process detail`.
//! The results go back to the panel as `Action::Processes(Msg)`.

use std::sync::Arc;

use fleet_client::process::{self, ListQuery};
use fleet_client::{Client, Settings};
use tokio::sync::mpsc::UnboundedSender;

use super::{Cmd, Column, Listing, Msg, Prepared};
use crate::console::action::{Action, Scope};

/// Runs one command on `client` with the console's `settings` (collective, ttl, timeouts) and
/// sends what the panel should be told on `tx`. Errors come back as [`Msg::ListFailed`],
/// [`Msg::KillFailed`] or per-target outcomes, never as silence.
pub async fn execute(cmd: Cmd, client: &mut Client, settings: &Settings, tx: &UnboundedSender<Action>) {
    let msg = match cmd {
        Cmd::List { seq, pattern, zombies, user, scope, sort } => match list(client, settings, pattern, zombies, user, &scope).await {
            Ok(listing) => Msg::Listed { seq, listing: Arc::new(prepare(listing, sort).await) },
            Err(e) => Msg::ListFailed { seq, error: e.to_string() },
        },
        Cmd::Kill { targets, signal } => match process::kill_exact(client, settings, &targets, signal).await {
            Ok(reports) => Msg::Killed(reports),
            Err(e) => Msg::KillFailed(e.to_string()),
        },
        Cmd::Detail { key } => {
            let result = super::detail::fetch(client, settings, &key).await;
            Msg::Detailed { key, result }
        }
    };
    // The panel may be gone (the console is quitting): nothing to tell then.
    let _ = tx.send(Action::Processes(msg));
}

async fn list(
    client: &mut Client,
    settings: &Settings,
    pattern: String,
    zombies: bool,
    user: String,
    scope: &Scope,
) -> fleet_client::Result<Listing> {
    let query = ListQuery { pattern, zombies, user: Some(user), match_name: false };
    let (_, found) = process::list(client, settings, &scope.client(), &query, |_| {}).await?;
    Ok(Listing { found, prepared: None })
}

/// Sorts and measures the rows on a blocking thread: with 50,000 rows that is tens of
/// milliseconds the UI thread does not spend.
async fn prepare(mut listing: Listing, sort: (Column, bool)) -> Listing {
    tokio::task::spawn_blocking(move || {
        listing.prepared = Some(Prepared::of(&listing, sort));
        listing
    })
    .await
    .expect("preparing a listing does not panic")
}
