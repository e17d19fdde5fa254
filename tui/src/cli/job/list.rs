//! `fleet job list`: every job the matching nodes keep, one line per job id across the fleet,
//! with how many nodes are in each state and the earliest next run.

use anyhow::Result;
use fleet_client::jobs::{self, state_counts};
use fleet_client::nodeset::fold;
use serde_json::json;

use super::{FilterArgs, OutputArgs, print_tail, spec, when};
use crate::cli::Ctx;
use crate::cli::args::ResultArgs;
use crate::cli::output::json_doc;

pub async fn run(ctx: &Ctx, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let spec = spec(ctx, "list", serde_json::Map::new(), f)?;
    // The grouped jobs are the JSON document, not the raw replies.
    let quiet = OutputArgs { json: false, jsonl: out.jsonl };
    let (o, code, hidden) = match super::round(ctx, &spec, &quiet, &ResultArgs::default()).await? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let listed = jobs::list_of(&o);
    if out.json {
        json_doc(&json!({ "jobs": listed, "no_reply": o.no_reply, "exit_code": code }))?;
        return Ok(code);
    }
    if listed.is_empty() {
        println!("No jobs on {} node{}", o.replies.len(), if o.replies.len() == 1 { "" } else { "s" });
    } else {
        println!("{:<24} {:<24} {:<12} {:<23}  {:<16} {:<23}  STATES", "JOB", "ACTION", "CALLER", "CREATED", "NODES", "NEXT RUN");
    }
    for j in &listed {
        let nodes: Vec<&str> = j.nodes.keys().map(String::as_str).collect();
        let every = if j.every > 0 { format!(" (every {} s)", j.every) } else { String::new() };
        println!(
            "{:<24} {:<24} {:<12} {:<23}  {:<16} {:<23}  {}{every}",
            j.id,
            format!("{}#{}", j.agent, j.action),
            j.caller,
            when(j.created),
            fold(&nodes),
            when(j.next_run),
            state_counts(j.nodes.values())
        );
    }
    print_tail(&o, hidden);
    Ok(code)
}
