//! The scriptable CLI commands: ping, discover, inventory, rpc, hub-stats.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fleet_ddl::{Ddl, Display};
use fleet_protocol::{Message, Status};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};

use crate::cli::{FilterArgs, OutputArgs};
use crate::client::Client;
use crate::config::ClientConfig;
use crate::request::{self, Outcome, Progress, Spec};

/// Exit code when nothing was sent (bad input, no hub).
pub const EXIT_NOTHING: i32 = 4;

/// Everything a command needs from config and flags.
pub struct Ctx {
    pub config: ClientConfig,
}

impl Ctx {
    pub async fn client(&self, subscribe: bool) -> Result<Client> {
        Client::connect(&self.config.hubs, Duration::from_secs(3), subscribe).await
    }

    pub fn spec(&self, agent: &str, action: &str, args: Map<String, Value>, f: &FilterArgs, action_timeout: u64) -> Spec {
        let discovery = Duration::from_secs_f64(self.config.discovery_timeout);
        let timeout = f
            .timeout
            .or(self.config.timeout)
            .map(Duration::from_secs_f64)
            .unwrap_or_else(|| discovery + Duration::from_secs(action_timeout) + Duration::from_secs(2));
        Spec {
            agent: agent.into(),
            action: action.into(),
            args,
            filter: f.filter(),
            collective: f.collective.clone().unwrap_or_else(|| self.config.collective.clone()),
            caller: self.config.caller(),
            method: if f.nodes_file.is_some() { request::DiscoveryMethod::Flatfile } else { f.dm },
            nodes_file: f.nodes_file.clone(),
            targets: None,
            timeout,
            discovery_timeout: discovery,
            ttl: self.config.ttl,
        }
    }
}

/// The progress bar on stderr, shown only when stderr is a terminal: `[=====>    ] 12 / 20`.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn new(enabled: bool) -> Bar {
        if !enabled || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let pb = ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
        pb.set_style(ProgressStyle::with_template(" * [{bar:60}] {pos} / {len} {msg}").expect("static template").progress_chars("=> "));
        Bar(Some(pb))
    }
    pub fn on(&self, p: &Progress) {
        let Some(pb) = &self.0 else { return };
        match p {
            Progress::Discovered(n) => pb.set_length(n.len() as u64),
            Progress::Reply { .. } => pb.inc(1),
            Progress::Sent { unknown, .. } if !unknown.is_empty() => pb.set_message(format!("({} not connected)", unknown.len())),
            Progress::Sent { .. } => {}
        }
    }
    pub fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

fn jsonl_line(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn reply_json(r: &fleet_protocol::Reply, time_ms: f64, expected: bool) -> Value {
    json!({
        "sender": r.sender, "status": r.status, "status_code": r.status.code(), "status_msg": r.status_msg,
        "data": r.data, "time_ms": time_ms, "expected": expected,
    })
}

/// Runs a round with the progress bar and optional JSON lines as replies arrive.
async fn round(ctx: &Ctx, spec: &Spec, out: &OutputArgs) -> Result<Outcome> {
    let mut client = ctx.client(false).await?;
    let bar = Bar::new(!out.json && !out.jsonl);
    let jsonl = out.jsonl;
    let outcome = request::run(&mut client, spec, |p| {
        bar.on(p);
        if jsonl {
            if let Progress::Reply { reply, expected, rtt, signature } = p {
                let mut line = reply_json(reply, rtt.as_secs_f64() * 1000.0, *expected);
                line["signature"] = json!(signature);
                jsonl_line(&line);
            }
        }
    })
    .await;
    bar.finish();
    outcome
}

fn print_no_reply(o: &Outcome) {
    if !o.no_reply.is_empty() {
        println!("\nNo response from:\n");
        for chunk in o.no_reply.chunks(4) {
            let line: Vec<String> = chunk.iter().map(|n| format!("{n:<30}")).collect();
            println!("   {}", line.join(" ").trim_end());
        }
    }
}

fn summary_json(o: &Outcome) -> Value {
    json!({
        "request_id": o.request_id, "discovered": o.discovered.len(), "replies": o.replies.len(),
        "ok": o.ok_count(), "failed": o.failed_count(), "no_reply": o.no_reply,
        "discovery_ms": o.discovery_ms, "elapsed_ms": o.elapsed_ms, "exit_code": o.exit_code(),
    })
}

fn full_json(o: &Outcome) -> Value {
    json!({
        "request_id": o.request_id, "discovered": o.discovered,
        "replies": o.replies.iter().map(|r| {
            let mut v = reply_json(&r.reply, r.time_ms, r.expected);
            v["signature"] = json!(r.signature);
            v
        }).collect::<Vec<_>>(),
        "no_reply": o.no_reply, "summary": summary_json(o),
    })
}

pub async fn ping(ctx: &Ctx, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let spec = ctx.spec("rpcutil", "ping", Map::new(), f, 5);
    let o = round(ctx, &spec, out).await?;
    if out.json {
        println!("{}", serde_json::to_string_pretty(&full_json(&o))?);
    } else if out.jsonl {
        jsonl_line(&json!({ "summary": summary_json(&o) }));
    } else {
        if o.discovered.is_empty() {
            println!("No nodes matched {}", spec.filter.describe());
            return Ok(1);
        }
        let mut sorted: Vec<_> = o.replies.iter().collect();
        sorted.sort_by(|a, b| a.time_ms.total_cmp(&b.time_ms));
        for r in &sorted {
            let mark = match (r.expected, r.signature) {
                (_, crate::client::SignatureCheck::Bad) => "  (BAD SIGNATURE: not from this node)",
                (false, _) => "  (not discovered)",
                _ => "",
            };
            if r.reply.status.is_ok() {
                println!("{:<40} time={:.2} ms{mark}", r.reply.sender, r.time_ms);
            } else {
                println!("{:<40} {}: {}{mark}", r.reply.sender, r.reply.status, r.reply.status_msg);
            }
        }
        println!("\n---- ping statistics ----");
        if sorted.is_empty() {
            println!("No responses received");
        } else {
            let times: Vec<f64> = sorted.iter().map(|r| r.time_ms).collect();
            let avg = times.iter().sum::<f64>() / times.len() as f64;
            println!(
                "{} replies max: {:.2} min: {:.2} avg: {:.2}",
                times.len(),
                times.iter().cloned().fold(f64::MIN, f64::max),
                times.iter().cloned().fold(f64::MAX, f64::min),
                avg
            );
        }
        print_no_reply(&o);
    }
    Ok(o.exit_code())
}

pub async fn discover(ctx: &Ctx, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let spec = ctx.spec("rpcutil", "ping", Map::new(), f, 5);
    spec.filter.compile().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut client = ctx.client(false).await?;
    let nodes = request::discover(&mut client, &spec).await?;
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
    Ok(if nodes.is_empty() { 1 } else { 0 })
}

fn flatten_facts(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten_facts(&key, v, out);
            }
        }
        Value::Array(items) => out.push((prefix.to_string(), items.iter().map(value_text).collect::<Vec<_>>().join(", "))),
        other => out.push((prefix.to_string(), value_text(other))),
    }
}

/// A value as a person reads it: strings without quotes, everything else as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub async fn inventory(ctx: &Ctx, node: &str, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let mut spec = ctx.spec("rpcutil", "inventory", Map::new(), f, 5);
    spec.targets = Some(vec![node.to_string()]);
    let mut client = ctx.client(false).await?;
    let inv = request::run(&mut client, &spec, |_| {}).await?;
    spec.action = "daemon_stats".into();
    let stats = request::run(&mut client, &spec, |_| {}).await?;
    let (Some(inv_r), Some(stats_r)) = (inv.replies.first(), stats.replies.first()) else {
        eprintln!("fleet: no reply from {node} (is it connected to {}?)", client.hub());
        return Ok(3);
    };
    for r in [inv_r, stats_r] {
        if !r.reply.status.is_ok() {
            eprintln!("fleet: {node}: {}: {}", r.reply.status, r.reply.status_msg);
            return Ok(2);
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
        return Ok(0);
    }
    println!("Inventory for {node}:\n");
    println!("   Server Statistics:");
    println!("                      Version: {}", value_text(&s["version"]));
    println!("                   Start Time: {}", value_text(&s["starttime"]));
    println!("                       Uptime: {} s", value_text(&s["uptime"]));
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
    Ok(0)
}

/// Finds an agent's DDL: the built-ins are compiled in; others come from the DDL search path.
pub fn find_ddl(agent: &str) -> Result<Ddl> {
    if let Some((_, text)) = fleet_ddl::builtin::all().into_iter().find(|(n, _)| *n == agent) {
        return Ok(Ddl::from_toml(text, &format!("ddl/agents/{agent}.toml"))?);
    }
    let mut dirs: Vec<std::path::PathBuf> =
        std::env::var_os("FLEET_DDL_PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.push("/etc/fleet/agents".into());
    for dir in dirs {
        for ext in ["toml", "json"] {
            let path = dir.join(format!("{agent}.{ext}"));
            if path.exists() {
                return Ok(Ddl::from_path(&path)?);
            }
        }
    }
    bail!("unknown agent '{agent}': no built-in DDL and no {agent}.toml or {agent}.json in FLEET_DDL_PATH or /etc/fleet/agents")
}

/// Parses `k=v` inputs, coerced to the types the DDL declares, then validates them.
pub fn parse_inputs(ddl: &Ddl, action: &str, inputs: &[String]) -> Result<Map<String, Value>> {
    let Some(act) = ddl.action(action) else {
        let known: Vec<_> = ddl.actions.keys().cloned().collect();
        bail!("agent '{}' has no action '{action}' (it has: {})", ddl.metadata.name, known.join(", "));
    };
    let mut args = Map::new();
    for kv in inputs {
        let Some((k, v)) = kv.split_once('=') else { bail!("input '{kv}' is not KEY=VALUE") };
        let Some(input) = act.input.get(k) else {
            let known: Vec<_> = act.input.keys().cloned().collect();
            bail!(
                "{}#{action} has no input '{k}' (inputs: {})",
                ddl.metadata.name,
                if known.is_empty() { "none".into() } else { known.join(", ") }
            );
        };
        args.insert(k.to_string(), fleet_ddl::coerce_cli_value(k, input, v)?);
    }
    fleet_ddl::validate_request(ddl, action, &mut args)?;
    Ok(args)
}

pub async fn rpc(
    ctx: &Ctx,
    agent: &str,
    action: &str,
    inputs: &[String],
    f: &FilterArgs,
    out: &OutputArgs,
    no_reply: bool,
    display: Option<&str>,
) -> Result<i32> {
    let ddl = find_ddl(agent)?;
    let args = match parse_inputs(&ddl, action, inputs) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fleet: {e:#}\nfleet: nothing was sent");
            return Ok(EXIT_NOTHING);
        }
    };
    let act = ddl.action(action).expect("validated above");
    let spec = ctx.spec(agent, action, args, f, ddl.metadata.timeout);
    if no_reply {
        let mut client = ctx.client(false).await?;
        let id = request::fire_and_forget(&mut client, &spec).await?;
        println!("Request sent with id: {id}");
        return Ok(0);
    }
    let o = round(ctx, &spec, out).await?;
    if out.json {
        println!("{}", serde_json::to_string_pretty(&full_json(&o))?);
        return Ok(o.exit_code());
    }
    if out.jsonl {
        jsonl_line(&json!({ "summary": summary_json(&o) }));
        return Ok(o.exit_code());
    }
    if o.discovered.is_empty() {
        println!("No nodes matched {}", spec.filter.describe());
        return Ok(1);
    }
    let display = match display {
        Some("ok") => Display::Ok,
        Some("failed") => Display::Failed,
        Some("flatten") => Display::Flatten,
        Some(_) => Display::Always,
        None => act.display,
    };
    print_replies(act, &o, display);
    print_aggregates(act, &o);
    println!(
        "\nFinished processing {} / {} hosts in {:.2} ms ({} ok, {} failed)",
        o.replies.len(),
        o.discovered.len(),
        o.elapsed_ms,
        o.ok_count(),
        o.failed_count()
    );
    print_no_reply(&o);
    Ok(o.exit_code())
}

fn print_replies(act: &fleet_ddl::Action, o: &Outcome, display: Display) {
    let mut sorted: Vec<_> = o.replies.iter().collect();
    sorted.sort_by(|a, b| a.reply.sender.cmp(&b.reply.sender));
    let label_width = act.output.values().map(|v| v.display_as.len()).max().unwrap_or(0);
    for r in sorted {
        let ok = r.reply.status == Status::Ok;
        let show = match display {
            Display::Ok => ok,
            Display::Failed => !ok,
            Display::Always | Display::Flatten => true,
        };
        if !show {
            continue;
        }
        let mark = match (r.expected, r.signature) {
            (_, crate::client::SignatureCheck::Bad) => " (BAD SIGNATURE: not from this node)",
            (false, _) => " (not discovered)",
            _ => "",
        };
        if !ok {
            println!("{:<40} {}: {}{mark}", r.reply.sender, r.reply.status, r.reply.status_msg);
            continue;
        }
        if display == Display::Flatten {
            let parts: Vec<String> = act.output.keys().map(|k| value_text(&r.reply.data[k])).collect();
            println!("{:<40} {}{mark}", r.reply.sender, parts.join(" "));
            continue;
        }
        println!("{}{mark}", r.reply.sender);
        match r.reply.data.as_object() {
            Some(map) => {
                for (key, out) in &act.output {
                    if let Some(v) = map.get(key) {
                        println!("   {:>label_width$}: {}", out.display_as, pretty(v, label_width + 5));
                    }
                }
                for (key, v) in map.iter().filter(|(k, _)| !act.output.contains_key(*k)) {
                    println!("   {key:>label_width$}: {}", pretty(v, label_width + 5));
                }
            }
            None => println!("   {}", value_text(&r.reply.data)),
        }
        println!();
    }
}

fn pretty(v: &Value, indent: usize) -> String {
    match v {
        Value::Object(_) | Value::Array(_) => {
            let text = serde_json::to_string_pretty(v).unwrap_or_default();
            text.replace('\n', &format!("\n{}", " ".repeat(indent)))
        }
        other => value_text(other),
    }
}

fn print_aggregates(act: &fleet_ddl::Action, o: &Outcome) {
    for agg in &act.aggregate {
        let label = act.output.get(&agg.output).map(|x| x.display_as.clone()).unwrap_or_else(|| agg.output.clone());
        let values: Vec<&Value> =
            o.replies.iter().filter(|r| r.reply.status.is_ok()).filter_map(|r| r.reply.data.get(&agg.output)).collect();
        if values.is_empty() {
            continue;
        }
        match agg.function {
            fleet_ddl::AggregateFunction::Summary => {
                let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
                for v in &values {
                    *counts.entry(value_text(v)).or_default() += 1;
                }
                println!("Summary of {label}:");
                let w = counts.keys().map(|k| k.len()).max().unwrap_or(0);
                let mut rows: Vec<_> = counts.into_iter().collect();
                rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                for (k, n) in rows {
                    println!("   {k:>w$} = {n}");
                }
                println!();
            }
            fleet_ddl::AggregateFunction::Sum | fleet_ddl::AggregateFunction::Average => {
                let nums: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).collect();
                if nums.is_empty() {
                    continue;
                }
                let sum: f64 = nums.iter().sum();
                let (name, x) =
                    if agg.function == fleet_ddl::AggregateFunction::Sum { ("Sum", sum) } else { ("Average", sum / nums.len() as f64) };
                let text = match &agg.format {
                    Some(fmt) if fmt.contains("%d") => fmt.replace("%d", &format!("{}", x.round() as i64)),
                    Some(fmt) if fmt.contains("%f") || fmt.contains("%.2f") => {
                        fmt.replace("%.2f", &format!("{x:.2}")).replace("%f", &format!("{x:.6}"))
                    }
                    _ if x.fract() == 0.0 => format!("{}", x as i64),
                    _ => format!("{x:.2}"),
                };
                println!("{name} of {label}: {text}\n");
            }
        }
    }
}

pub async fn hub_stats(ctx: &Ctx, out: &OutputArgs) -> Result<i32> {
    let mut client = ctx.client(false).await?;
    client.send(&Message::StatsQuery).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match client.recv_until(deadline).await.context("waiting for hub stats")? {
            Some(Message::HubStats(s)) => {
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
                }
                return Ok(0);
            }
            Some(_) => continue,
            None => bail!("hub {} did not answer within 3 s", client.hub()),
        }
    }
}
