//! `fleet metrics`: every matching host's newest metrics sample through the metrics agent, as a
//! table worst host first, or grouped by a fact with min/avg/max per metric and each group's
//! worst host (`--group`), once or every few seconds (`--watch`); `--profile NAME` shows a
//! profile's graphs as the columns, its process counts among them.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use fleet_client::metrics::profile::{self, Profile};
use fleet_client::metrics::{self, Group, HostMetrics, value_text};
use fleet_client::{Client, Outcome, Settings, round};
use serde_json::json;

use super::args::MetricsArgs;
use super::output::{json_doc, jsonl_line, print_no_reply};
use super::{Ctx, FilterArgs, OutputArgs};

const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Short headers for the default columns; other metrics are headed by their names.
const LABELS: &[(&str, &str)] = &[
    ("load1", "LOAD1"),
    ("cpu_busy_pct", "CPU%"),
    ("cpu_iowait_pct", "IOWAIT%"),
    ("mem_used_pct", "MEM%"),
    ("swap_used_pct", "SWAP%"),
    ("disk_used_max_pct", "DISK%"),
    ("net_rx_bytes_per_s", "RX"),
    ("net_tx_bytes_per_s", "TX"),
    ("processes", "PROCS"),
    ("zombies", "ZOMBIES"),
];

pub async fn run(ctx: &Ctx, m: &MetricsArgs, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let profile = m.profile.as_deref().map(|name| ctx.config.profile(name)).transpose()?;
    // A profile's series, and the ranking metric's so hosts can be ranked by it.
    let series = match profile {
        Some(p) => metrics::series_of(std::iter::once(m.by.as_str()).chain(p.metric_names())),
        None => m.metrics.clone(),
    };
    let args = metrics::latest_args(&series, m.group.as_deref());
    let spec = ctx.settings.spec(metrics::AGENT, "latest", args, &f.scope(), QUERY_TIMEOUT);
    spec.filter.compile().map_err(fleet_client::ClientError::from)?;
    if m.follow {
        return follow(ctx, &spec, m, out).await;
    }
    if let Some(note) = fleet_client::scope::broadcast_note(&spec) {
        eprintln!("fleet: {note}");
    }
    let mut client = ctx.client().await?;
    loop {
        let code = once(&mut client, &ctx.settings, &spec, m, profile, out).await?;
        if !m.watch {
            return Ok(code);
        }
        tokio::time::sleep(Duration::from_secs_f64(m.every)).await;
    }
}

/// `--follow`: subscribes at the hub to the matching nodes (every node without a filter) and the
/// chosen series, then prints each update as it comes, until interrupted or the hub goes.
async fn follow(ctx: &Ctx, spec: &fleet_client::Spec, m: &MetricsArgs, out: &OutputArgs) -> Result<i32> {
    let mut client = ctx.client().await?;
    let all_nodes = spec.filter.is_empty();
    let nodes = if all_nodes { Vec::new() } else { client.discover(&spec.filter, &spec.collective, QUERY_TIMEOUT).await? };
    if !all_nodes && nodes.is_empty() {
        eprintln!("fleet: no node matches the filter");
        return Ok(fleet_client::exit::NOTHING_DISCOVERED);
    }
    let ask = fleet_protocol::MetricSubscribe { nodes, all_nodes, series: m.metrics.clone(), history: m.history };
    client.subscribe_metrics(ask).await?;
    loop {
        match client.recv().await? {
            fleet_protocol::Message::MetricUpdate(u) if out.json || out.jsonl => jsonl_line(&json!(u)),
            fleet_protocol::Message::MetricUpdate(u) => {
                for (i, t) in u.times.iter().enumerate() {
                    let values: Vec<String> = u
                        .series
                        .iter()
                        .filter_map(|(name, column)| column.get(i).copied().flatten().map(|v| format!("{name}={}", value_text(name, v))))
                        .collect();
                    println!("{} {} {}", fleet_client::format::utc_time_ms(*t), u.node, values.join(" "));
                }
            }
            _ => {}
        }
    }
}

/// One round and its printout; returns the round's exit code.
async fn once(
    client: &mut Client,
    settings: &Settings,
    spec: &fleet_client::Spec,
    m: &MetricsArgs,
    profile: Option<&Profile>,
    out: &OutputArgs,
) -> Result<i32> {
    let outcome = round::run(client, spec, |_| {}).await?;
    let code = outcome.exit_code();
    let mut hosts = metrics::hosts(&outcome, m.group.as_deref());
    if let Some(p) = profile {
        count_processes(client, settings, p, &mut hosts).await?;
    }
    metrics::rank(&mut hosts, &m.by);
    let groups = m.group.as_ref().map(|_| metrics::group(&hosts, &m.by));
    if out.json || out.jsonl {
        let doc = json!({
            "hosts": hosts, "groups": groups, "rank_by": m.by, "group_by": m.group,
            "no_reply": outcome.no_reply, "down": outcome.down, "exit_code": code,
        });
        if out.json {
            json_doc(&doc)?
        } else {
            jsonl_line(&doc)
        }
        return Ok(code);
    }
    if m.watch && std::io::stdout().is_terminal() {
        // Clear the screen, so each round replaces the last.
        print!("\x1b[H\x1b[2J");
    }
    if m.watch {
        println!("fleet metrics at {} UTC, every {} s\n", fleet_client::format::utc_time_ms(fleet_protocol::now_ms()), m.every);
    }
    let columns = match profile {
        Some(p) => p.columns(),
        None => columns(&hosts, &m.metrics),
    };
    match (&groups, &m.group) {
        (Some(groups), Some(fact)) => print!("{}", groups_text(groups, fact, &columns)),
        _ => print!("{}", hosts_text(&hosts, &columns)),
    }
    print_end(&outcome, &hosts);
    Ok(code)
}

/// Fills the profile's `procs:NAME` graphs of the hosts that answered: one process list round
/// per name.
async fn count_processes(client: &mut Client, settings: &Settings, p: &Profile, hosts: &mut [HostMetrics]) -> Result<()> {
    let answered: Vec<String> = hosts.iter().map(|h| h.identity.clone()).collect();
    let wanted = p.process_names().map(|name| (name.to_string(), answered.clone())).collect();
    for (graph, by_host) in profile::process_counts(client, settings, &wanted).await? {
        for h in hosts.iter_mut() {
            if let Some(n) = by_host.get(&h.identity) {
                h.metrics.insert(graph.clone(), *n as f64);
            }
        }
    }
    Ok(())
}

/// The default columns, or every metric the hosts sent when `-m` chose them.
fn columns(hosts: &[HostMetrics], chosen: &[String]) -> Vec<String> {
    if chosen.is_empty() {
        return metrics::DEFAULT_COLUMNS.iter().map(|c| c.to_string()).collect();
    }
    let mut names: Vec<String> = hosts.iter().flat_map(|h| h.metrics.keys().cloned()).collect();
    names.sort();
    names.dedup();
    names
}

fn label(metric: &str) -> String {
    LABELS.iter().find(|(m, _)| *m == metric).map_or_else(|| metric.to_string(), |(_, l)| l.to_string())
}

/// One row per host, worst first, a column per metric (`-` where a host lacks it).
pub fn hosts_text(hosts: &[HostMetrics], columns: &[String]) -> String {
    let mut rows = vec![std::iter::once("HOST".to_string()).chain(columns.iter().map(|c| label(c))).collect::<Vec<_>>()];
    for h in hosts {
        let cells = columns.iter().map(|c| h.get(c).map_or_else(|| "-".into(), |v| value_text(c, v)));
        rows.push(std::iter::once(h.identity.clone()).chain(cells).collect());
    }
    table(&rows, &[0])
}

/// Per group (worst first): a heading with its size and worst host, then min/avg/max and the
/// worst host of each metric.
pub fn groups_text(groups: &[Group], fact: &str, columns: &[String]) -> String {
    let mut out = String::new();
    for g in groups {
        let worst = g.worst_host.as_deref().map(|w| format!(", worst: {w}")).unwrap_or_default();
        out.push_str(&format!("{fact}={}  ({} host{}{worst})\n", g.value, g.hosts.len(), if g.hosts.len() == 1 { "" } else { "s" }));
        let mut rows = vec![["METRIC", "MIN", "AVG", "MAX", "WORST"].map(String::from).to_vec()];
        for c in columns {
            if let Some(s) = g.metrics.get(c) {
                rows.push(vec![label(c), value_text(c, s.min), value_text(c, s.avg), value_text(c, s.max), s.worst_host.clone()]);
            }
        }
        for line in table(&rows, &[0, 4]).lines() {
            out.push_str(&format!("  {line}\n"));
        }
        out.push('\n');
    }
    out
}

/// Rows as aligned columns: the `left` columns (names) left-aligned, the others (numbers) right.
fn table(rows: &[Vec<String>], left: &[usize]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n).map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| if left.contains(&i) { format!("{c:<w$}", w = widths[i]) } else { format!("{c:>w$}", w = widths[i]) })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The nodes that sent no sample yet or could not read everything, then who did not reply.
fn print_end(outcome: &Outcome, hosts: &[HostMetrics]) {
    for h in hosts {
        if h.time_ms == 0 {
            println!("\n{}: no sample yet", h.identity);
        } else if !h.problems.is_empty() {
            println!("\n{}: {}", h.identity, h.problems.join("; "));
        }
    }
    for r in outcome.replies.iter().filter(|r| !r.reply.status.is_ok()) {
        println!("\n{}: {}: {}", r.reply.sender, r.reply.status, r.reply.status_msg);
    }
    print_no_reply(outcome);
}
