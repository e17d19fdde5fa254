//! `fleet discover`: the identities that match the filter.

use std::io::IsTerminal;

use anyhow::Result;
use fleet_client::{exit, round};
use serde_json::{Map, json};

use super::output::jsonl_line;
use super::{Ctx, FilterArgs, OutputArgs};

pub async fn run(ctx: &Ctx, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let spec = ctx.settings.spec("rpcutil", "ping", Map::new(), &f.scope(), std::time::Duration::from_secs(5));
    spec.filter.compile().map_err(fleet_client::ClientError::from)?;
    if let Some(note) = fleet_client::scope::broadcast_note(&spec) {
        eprintln!("fleet: {note}");
    }
    if spec.rollout.as_ref().is_some_and(fleet_client::Rollout::is_staged) {
        return Err(fleet_client::ClientError::input("--batch, --canary and --max-failures stage requests; discover sends none").into());
    }
    let mut client = ctx.client().await?;
    let mut nodes = round::discover(&mut client, &spec).await?;
    // --limit shows the subset a command with the same flags would ask.
    if let Some(rollout) = &spec.rollout {
        nodes = rollout.select(nodes);
    }
    if out.json {
        println!("{}", serde_json::to_string_pretty(&nodes)?);
    } else if out.jsonl {
        for n in &nodes {
            jsonl_line(&json!({ "identity": n }));
        }
    } else {
        for n in &nodes {
            println!("{n}");
        }
        if std::io::stdout().is_terminal() {
            eprintln!("\nDiscovered {} node(s)", nodes.len());
        }
    }
    Ok(if nodes.is_empty() { exit::NOTHING_DISCOVERED } else { exit::OK })
}
