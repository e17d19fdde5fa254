//! `fleet job status|output|watch ID`: a job on each node that has it; the nodes that answered
//! without it are named once, compactly, rather than counted as failures.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use fleet_client::exit;
use fleet_client::format::utc_time_ms;
use fleet_client::jobs::{self, JobRow, JobStatus};
use fleet_client::nodeset::fold;
use fleet_client::round;

use super::{FilterArgs, OutputArgs, ResultArgs, print_tail, round as one_round, spec, when};
use crate::cli::Ctx;

/// The exit code of a job's status: the round's when it was not clean; 1 when no node has the
/// job; 2 when it failed, was cancelled or was lost on any node; else 0.
fn status_code(s: &JobStatus, round_code: i32) -> i32 {
    if round_code != exit::OK {
        round_code
    } else if s.nodes.is_empty() {
        exit::NOTHING_DISCOVERED
    } else if s.nodes.values().any(JobRow::is_failure) {
        exit::SOME_FAILED
    } else {
        exit::OK
    }
}

/// Nodes without the job and nodes whose jobs agent failed, after the table.
fn print_others(id: &str, s: &JobStatus) {
    if !s.without.is_empty() {
        println!("\nWithout job {id}: {}", fold(&s.without));
    }
    for (node, why) in &s.failed {
        println!("   {node:<30} {why}");
    }
    if s.nodes.is_empty() {
        println!("No node has job {id}");
    }
}

pub async fn status(ctx: &Ctx, id: &str, f: &FilterArgs, out: &OutputArgs, results: &ResultArgs) -> Result<i32> {
    let spec = spec(ctx, "status", jobs::id_args(id), f)?;
    let (o, code, hidden) = match one_round(ctx, &spec, out, results).await? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let s = JobStatus::of(&o);
    if let Some(first) = s.nodes.values().next() {
        let every = if first.every > 0 { format!(", every {} s", first.every) } else { String::new() };
        println!("Job {id}: {}#{} by {}{every}: {}\n", first.agent, first.action, first.caller, s.counts());
        println!("   {:<30} {:<10} {:>4}  {:<23}  {:<23}  LAST RUN", "NODE", "STATE", "RUNS", "STARTED", "ENDED");
    }
    for (node, row) in &s.nodes {
        let last = row.last.clone().unwrap_or_default();
        let result = match (last.status.as_str(), row.state.as_str()) {
            ("", "scheduled" | "queued") => format!("next run {}", when(row.next_run)),
            ("", _) => String::new(),
            (status, _) if last.message.is_empty() || last.message == "OK" => status.to_string(),
            (status, _) => format!("{status}: {}", last.message),
        };
        println!("   {node:<30} {:<10} {:>4}  {:<23}  {:<23}  {result}", row.state, row.runs, when(last.started), when(last.ended));
    }
    print_others(id, &s);
    print_tail(&o, hidden);
    Ok(status_code(&s, code))
}

pub async fn output(ctx: &Ctx, id: &str, f: &FilterArgs, out: &OutputArgs, results: &ResultArgs) -> Result<i32> {
    let spec = spec(ctx, "output", jobs::id_args(id), f)?;
    let (o, code, hidden) = match one_round(ctx, &spec, out, results).await? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let mut replies: Vec<_> = o.replies.iter().collect();
    replies.sort_by(|a, b| a.reply.sender.cmp(&b.reply.sender));
    let (mut without, mut found) = (Vec::new(), 0);
    for r in replies {
        let d = &r.reply.data;
        if !r.reply.status.is_ok() {
            println!("{}: {}: {}\n", r.reply.sender, r.reply.status, r.reply.status_msg);
        } else if d["state"] == "unknown" {
            without.push(r.reply.sender.clone());
        } else {
            found += 1;
            let status = d["status"].as_str().filter(|s| !s.is_empty()).unwrap_or("no run ended yet");
            let message = d["message"].as_str().filter(|m| !m.is_empty() && *m != "OK").map(|m| format!(": {m}")).unwrap_or_default();
            println!("{} ({}, {status}{message})", r.reply.sender, d["state"].as_str().unwrap_or("?"));
            let text = serde_json::to_string_pretty(&d["data"]).unwrap_or_default();
            println!("   {}\n", text.replace('\n', "\n   "));
        }
    }
    if !without.is_empty() {
        println!("Without job {id}: {}", fold(&without));
    }
    print_tail(&o, hidden);
    Ok(if code == exit::OK && found == 0 { exit::NOTHING_DISCOVERED } else { code })
}

/// What a watch compares between two looks at a node.
fn seen(row: &JobRow) -> (String, u64, u64) {
    (row.state.clone(), row.runs, row.last.as_ref().map_or(0, |l| l.ended))
}

/// One line about a node's change: `12:00:01 web-01 ok (run 1): OK`.
fn change_line(node: &str, row: &JobRow) -> String {
    let last = row.last.clone().unwrap_or_default();
    let detail = match row.state.as_str() {
        "running" => String::new(),
        "scheduled" | "queued" if last.status.is_empty() => format!(": next run {}", when(row.next_run)),
        _ if last.status.is_empty() => String::new(),
        _ if last.message.is_empty() || last.message == "OK" => format!(": {}", last.status),
        _ => format!(": {}: {}", last.status, last.message),
    };
    format!("{} {node:<30} {} (run {}){detail}", utc_time_ms(fleet_protocol::now_ms()), row.state, row.runs)
}

pub async fn watch(ctx: &Ctx, id: &str, interval: f64, f: &FilterArgs) -> Result<i32> {
    let spec = spec(ctx, "status", jobs::id_args(id), f)?;
    let mut client = ctx.client().await?;
    let mut last: BTreeMap<String, (String, u64, u64)> = BTreeMap::new();
    loop {
        let o = round::run(&mut client, &spec, |_| {}).await?;
        let s = JobStatus::of(&o);
        for (node, row) in &s.nodes {
            if last.get(node) != Some(&seen(row)) {
                println!("{}", change_line(node, row));
                last.insert(node.clone(), seen(row));
            }
        }
        if s.nodes.is_empty() || s.all_final() {
            if !s.nodes.is_empty() {
                println!("\nJob {id} ended on every node: {}", s.counts());
            }
            print_others(id, &s);
            print_tail(&o, 0);
            return Ok(status_code(&s, o.exit_code()));
        }
        tokio::time::sleep(Duration::from_secs_f64(interval)).await;
    }
}
