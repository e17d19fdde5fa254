//! `fleet inventory NODE` (facts, agents, classes, daemon stats) and `fleet hub-stats`.

use std::time::Duration;

use anyhow::Result;
use fleet_client::format::{flatten_facts, value_text};
use fleet_client::{Scope, exit, round};
use serde_json::{Map, json};

use super::output::jsonl_line;
use super::{Ctx, FilterArgs, OutputArgs};

const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(ctx: &Ctx, node: &str, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let scope = Scope { targets: Some(vec![node.to_string()]), ..f.scope() };
    let mut client = ctx.client().await?;
    let inv = round::run(&mut client, &ctx.settings.spec("rpcutil", "inventory", Map::new(), &scope, QUERY_TIMEOUT), |_| {}).await?;
    let stats = round::run(&mut client, &ctx.settings.spec("rpcutil", "daemon_stats", Map::new(), &scope, QUERY_TIMEOUT), |_| {}).await?;
    let (Some(inv_r), Some(stats_r)) = (inv.replies.first(), stats.replies.first()) else {
        eprintln!("fleet: no reply from {node} (is it connected to {}?)", client.hub());
        return Ok(exit::NO_REPLIES);
    };
    for r in [inv_r, stats_r] {
        if !r.reply.status.is_ok() {
            eprintln!("fleet: {node}: {}: {}", r.reply.status, r.reply.status_msg);
            return Ok(exit::SOME_FAILED);
        }
    }
    let d = &inv_r.reply.data;
    let s = &stats_r.reply.data;
    if out.json || out.jsonl {
        let v = json!({ "identity": node, "inventory": d, "daemon_stats": s });
        if out.json {
            println!("{}", serde_json::to_string_pretty(&v)?)
        } else {
            jsonl_line(&v)
        }
        return Ok(exit::OK);
    }
    println!("Inventory for {node}:\n");
    println!("   Server Statistics:");
    println!("                      Version: {}", value_text(&s["version"]));
    let start = s["starttime"].as_u64().map_or_else(|| value_text(&s["starttime"]), fleet_client::format::utc_datetime);
    let up = s["uptime"].as_u64().map_or_else(|| format!("{} s", value_text(&s["uptime"])), fleet_client::format::uptime);
    println!("                   Start Time: {start}");
    println!("                       Uptime: {up}");
    println!("                          PID: {}", value_text(&s["pid"]));
    println!("               Total Messages: {}", value_text(&s["total"]));
    println!("      Messages Passed Filters: {}", value_text(&s["passed"]));
    println!("            Messages Filtered: {}", value_text(&s["filtered"]));
    println!("             Validated/Failed: {} / {}", value_text(&s["validated"]), value_text(&s["unvalidated"]));
    println!("                 Replies Sent: {}", value_text(&s["replies"]));
    println!("         Total Processor Time: n/a");
    println!("                  TTL Expired: {}", value_text(&s["ttlexpired"]));
    if let Some(hubs) = s["hubs"].as_object() {
        for (hub, state) in hubs {
            println!("                          Hub: {hub} ({})", value_text(state));
        }
    }
    println!("\n   Agents:");
    for a in d["agents"].as_array().into_iter().flatten() {
        println!("      {}", value_text(a));
    }
    println!("\n   Collectives:");
    println!("      {} (main)", value_text(&d["main_collective"]));
    println!("\n   Classes:");
    let classes = d["classes"].as_array().cloned().unwrap_or_default();
    if classes.is_empty() {
        println!("      (none)");
    }
    for c in &classes {
        println!("      {}", value_text(c));
    }
    println!("\n   Facts:");
    let mut facts = Vec::new();
    flatten_facts("", &d["facts"], &mut facts);
    facts.sort();
    let width = facts.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in facts {
        println!("      {k:<width$} => {v}");
    }
    Ok(exit::OK)
}

pub async fn hub_stats(ctx: &Ctx, out: &OutputArgs) -> Result<i32> {
    let mut client = ctx.client().await?;
    let s = client.hub_stats(Duration::from_secs(3)).await?;
    if out.json || out.jsonl {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!("hub {}", client.hub());
        println!("  nodes          {}", s.nodes);
        println!("  consoles       {}", s.consoles);
        println!("  requests       {}", s.requests);
        println!("  replies        {}", s.replies);
        println!("  late replies   {}", s.late_replies);
        println!("  dropped frames {}", s.dropped_frames);
        println!("  uptime         {} s", s.uptime_s);
        println!("  pending keys   {}", s.pending_keys);
        println!("  down nodes     {}", s.down_nodes);
        println!("  queued bytes   {} ({} replies dropped for slow consoles)", s.queued_bytes, s.dropped_replies);
        println!(
            "  metrics        {} nodes, {} kept, {} samples received, {} updates superseded",
            s.metric_nodes,
            fleet_client::format::human_bytes(s.metric_bytes),
            s.metric_samples,
            s.metric_superseded
        );
    }
    Ok(exit::OK)
}
