//! `fleet xen`: the dom0s and domUs of the fleet through the xen agent — `list`, `find` (which dom0
//! runs this domU?), `migrate` (with confirmation), and `balance`, the balancer as a proper client:
//! it samples every dom0's load and domU CPU time, asks [`noded::balancer::decide`] for a plan,
//! prints it with its reasons and rejections, and with `--apply` carries it out.
//!
//! Wiring (for the lead). In `tui/src/cli.rs`, one variant of `Command`:
//!
//! ```text
//!     /// Xen dom0s and domUs: list, find, migrate, and balance load across dom0s.
//!     Xen {
//!         #[command(subcommand)]
//!         cmd: crate::xen::XenCommand,
//!     },
//! ```
//!
//! and in `tui/src/lib.rs`: `pub mod xen;` plus the dispatch line
//! `Some(Command::Xen { cmd }) => xen::run(&ctx, cmd).await,`. The filter and output flags live in
//! each `XenCommand` variant rather than on `Xen` itself, so they are written after the
//! subcommand as with every other command (`fleet xen list -F dc=nyc1 --json`); flattened on the
//! parent they would have to come before it.
//!
//! For the console's Xen panel: [`gather`] (or [`view_from`] on rounds the panel ran itself) gives
//! [`XenView`] — one [`Dom0`] per hypervisor and every [`PlacedDomu`]; [`samples_from`] turns a
//! `stat` round into balancer samples, and [`plan_lines`] renders a plan as text.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use noded::balancer::{self, BalancerPolicy, Move, Observations, PastMigration, Plan, Sample};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub use noded::agents::xen::DomainRow;

use crate::cli::{FilterArgs, OutputArgs};
use crate::client::Client;
use crate::commands::{Bar, Ctx, EXIT_NOTHING};
use crate::request::{self, Outcome};

/// Seconds a query (list, info, find, stat) may take on a node before it counts as no reply.
const QUERY_TIMEOUT: u64 = 20;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum XenCommand {
    /// List every dom0 (node with the xen agent) with its load, memory and domUs.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Tell which dom0 runs a domU.
    Find {
        /// The domU's name, exactly as xl list shows it.
        name: String,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Live-migrate a domU to another dom0, after showing what moves where and asking to confirm.
    Migrate {
        /// The domU to move.
        name: String,
        /// The dom0 to move it to, by its fleet name (its node maps it to a migration address).
        dest: String,
        /// Do not ask for confirmation (for scripts).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Balance load across dom0s by a policy: print the plan (default), apply it, or keep watching.
    #[command(after_help = "Policy file (TOML; every key optional):\n  interval = 60            # seconds between samples\n  \
                            load_threshold = 1.0\n  max_over = 5             # minutes over the threshold before acting\n  \
                            max_vm_per_host = 10\n  max_load_candidate = 0.5\n  max_migrations_per_round = 1\n  \
                            vm_cooldown = 30         # minutes before a moved domU may move again\n  \
                            host_cooldown = 10       # minutes a dom0 that sent or received is left alone\n  \
                            pinned = [\"db1\"]\n  maintenance = [\"xen-09\"]\n  [host_mapping]\n  xen-02 = \"10.0.0.2\"")]
    Balance {
        /// The balancer policy (TOML).
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// Only print the plan (the default).
        #[arg(long, conflicts_with = "apply")]
        dry_run: bool,
        /// Carry the plan out: run each migration through the xen agent.
        #[arg(long)]
        apply: bool,
        /// Keep sampling every interval, keeping history; plans each round (applies with --apply).
        /// Stops cleanly on ctrl-c.
        #[arg(long)]
        watch: bool,
        /// Seconds to observe before a one-shot decision (default: the policy's max_over).
        #[arg(long, value_name = "SECS")]
        observe: Option<f64>,
        /// JSON file of past migrations: read for the cooldowns, appended to on --apply.
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Runs one `fleet xen` command; returns the exit code.
pub async fn run(ctx: &Ctx, cmd: XenCommand) -> Result<i32> {
    match cmd {
        XenCommand::List { filter, output } => list(ctx, &filter, &output).await,
        XenCommand::Find { name, filter, output } => find(ctx, &name, &filter, &output).await,
        XenCommand::Migrate { name, dest, yes, filter, output } => migrate(ctx, &name, &dest, yes, &filter, &output).await,
        XenCommand::Balance { policy, dry_run: _, apply, watch, observe, history, filter, output } => {
            let mode = match (watch, apply) {
                (true, apply) => BalanceMode::Watch { apply },
                (false, true) => BalanceMode::Apply,
                (false, false) => BalanceMode::DryRun,
            };
            let opts = BalanceOptions { observe, history };
            balance(ctx, &policy, mode, &opts, &filter, &output).await
        }
    }
}

// -------------------------------------------------------------------------------------------------
// What the dom0s report

/// One dom0 as its node reported it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dom0 {
    pub name: String,
    /// Load average over 1, 5 and 15 minutes.
    pub load: [f64; 3],
    pub nr_cpus: u64,
    /// MiB.
    pub total_memory: u64,
    /// MiB no domain holds.
    pub free_memory: u64,
    pub domu_count: usize,
    /// MiB held by the domUs.
    pub domu_memory: u64,
    /// Domain-0's own row.
    pub dom0: Option<DomainRow>,
    /// Runs fleet's xl stand-in (tests, demo).
    pub simulated: bool,
    /// Why part of this dom0's answer is missing.
    pub error: Option<String>,
}

/// A domU and the dom0 it runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacedDomu {
    pub dom0: String,
    #[serde(flatten)]
    pub domu: DomainRow,
}

/// The Xen side of the fleet at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct XenView {
    pub dom0s: Vec<Dom0>,
    /// By dom0, then in xl's order.
    pub domus: Vec<PlacedDomu>,
    pub no_reply: Vec<String>,
}

/// The filter plus `-A xen`: only dom0s answer.
pub fn xen_filter(f: &FilterArgs) -> FilterArgs {
    let mut f = f.clone();
    if !f.agent.iter().any(|a| a == "xen") {
        f.agent.push("xen".into());
    }
    f
}

/// One round of a xen action on the matching dom0s (or exactly `targets`).
async fn xen_round(
    ctx: &Ctx,
    client: &mut Client,
    action: &str,
    mut args: Map<String, Value>,
    f: &FilterArgs,
    targets: Option<Vec<String>>,
    bar: bool,
) -> Result<Outcome> {
    let ddl = crate::commands::find_ddl("xen")?;
    fleet_ddl::validate_request(&ddl, action, &mut args)?;
    let action_timeout = if action == "migrate" { ddl.metadata.timeout } else { QUERY_TIMEOUT };
    let mut spec = ctx.spec("xen", action, args, &xen_filter(f), action_timeout);
    spec.targets = targets;
    let bar = Bar::new(bar);
    let o = request::run(client, &spec, |p| bar.on(p)).await;
    bar.finish();
    o
}

/// Builds the view from a `list` round and an `info` round.
pub fn view_from(list: &Outcome, info: &Outcome) -> XenView {
    let mut dom0s: BTreeMap<String, Dom0> = BTreeMap::new();
    let mut domus = Vec::new();
    for r in &list.replies {
        let name = r.reply.sender.clone();
        let d = dom0s.entry(name.clone()).or_insert_with(|| Dom0 { name: name.clone(), ..Dom0::default() });
        if !r.reply.status.is_ok() {
            d.error = Some(format!("list: {}: {}", r.reply.status, r.reply.status_msg));
            continue;
        }
        let data = &r.reply.data;
        d.domu_count = data["domu_count"].as_u64().unwrap_or(0) as usize;
        d.domu_memory = data["domu_memory"].as_u64().unwrap_or(0);
        d.dom0 = serde_json::from_value(data["dom0"].clone()).ok();
        for row in data["domus"].as_array().into_iter().flatten() {
            if let Ok(domu) = serde_json::from_value::<DomainRow>(row.clone()) {
                domus.push(PlacedDomu { dom0: name.clone(), domu });
            }
        }
    }
    for r in &info.replies {
        let name = r.reply.sender.clone();
        let d = dom0s.entry(name.clone()).or_insert_with(|| Dom0 { name: name.clone(), ..Dom0::default() });
        if !r.reply.status.is_ok() {
            let e = format!("info: {}: {}", r.reply.status, r.reply.status_msg);
            d.error = Some(match d.error.take() {
                Some(prev) => format!("{prev}; {e}"),
                None => e,
            });
            continue;
        }
        let data = &r.reply.data;
        let f = |k: &str| data[k].as_f64().unwrap_or(0.0);
        d.load = [f("load_1"), f("load_5"), f("load_15")];
        d.nr_cpus = data["nr_cpus"].as_u64().unwrap_or(0);
        d.total_memory = data["total_memory"].as_u64().unwrap_or(0);
        d.free_memory = data["free_memory"].as_u64().unwrap_or(0);
        d.simulated = data["simulated"].as_bool().unwrap_or(false);
    }
    let mut no_reply: Vec<String> = list.no_reply.iter().chain(info.no_reply.iter()).cloned().collect();
    no_reply.sort();
    no_reply.dedup();
    domus.sort_by(|a, b| a.dom0.cmp(&b.dom0));
    XenView { dom0s: dom0s.into_values().collect(), domus, no_reply }
}

/// Asks every matching dom0 for its domUs and its load and memory.
pub async fn gather(ctx: &Ctx, client: &mut Client, f: &FilterArgs, bar: bool) -> Result<XenView> {
    let list = xen_round(ctx, client, "list", Map::new(), f, None, bar).await?;
    // Ask the same dom0s for info, so the two halves of the view match.
    let asked = list.discovered.clone();
    let info = if asked.is_empty() { list.clone() } else { xen_round(ctx, client, "info", Map::new(), f, Some(asked), bar).await? };
    Ok(view_from(&list, &info))
}

/// The balancer samples in a `stat` round, stamped with when each reply arrived.
pub fn samples_from(stat: &Outcome, sent_at_ms: u64) -> Vec<(String, Sample)> {
    let mut out = Vec::new();
    for r in stat.replies.iter().filter(|r| r.reply.status.is_ok()) {
        let data = &r.reply.data;
        let Some(load) = data["load_1"].as_f64() else { continue };
        let domus = data["domus"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| Some(balancer::DomuSample { name: d["name"].as_str()?.to_string(), cpu_time: d["cpu_time"].as_f64()? }))
            .collect();
        let at_ms = sent_at_ms + stat.discovery_ms as u64 + r.time_ms as u64;
        out.push((r.reply.sender.clone(), Sample { at_ms, load, domus }));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn mib(m: u64) -> String {
    if m >= 10 * 1024 { format!("{:.1} GiB", m as f64 / 1024.0) } else { format!("{m} MiB") }
}

fn print_failures(failed: &[(String, String)], no_reply: &[String]) {
    for (host, why) in failed {
        println!("   {host}: {why}");
    }
    if !no_reply.is_empty() {
        println!("   No reply from: {}", no_reply.join(", "));
    }
}

// -------------------------------------------------------------------------------------------------
// list

pub async fn list(ctx: &Ctx, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let mut client = ctx.client(false).await?;
    let view = match gather(ctx, &mut client, f, !out.json && !out.jsonl).await {
        Ok(v) => v,
        Err(e) if e.downcast_ref::<fleet_ddl::ValidationError>().is_some() => {
            eprintln!("fleet: {e}\nfleet: nothing was sent");
            return Ok(EXIT_NOTHING);
        }
        Err(e) => return Err(e),
    };
    let failed = view.dom0s.iter().filter(|d| d.error.is_some()).count();
    let code = if view.dom0s.is_empty() && view.no_reply.is_empty() {
        1
    } else if failed > 0 || !view.no_reply.is_empty() {
        2
    } else {
        0
    };
    if out.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(code);
    }
    if out.jsonl {
        for d in &view.domus {
            println!("{}", serde_json::to_string(d)?);
        }
        return Ok(code);
    }
    if view.dom0s.is_empty() && view.no_reply.is_empty() {
        println!("No dom0 matched (no node with the xen agent)");
        return Ok(1);
    }
    let nw = view.domus.iter().map(|d| d.domu.name.len()).max().unwrap_or(4).max(4);
    for d in &view.dom0s {
        let sim = if d.simulated { "  [simulated hypervisor]" } else { "" };
        match &d.error {
            Some(e) if d.total_memory == 0 && d.domu_count == 0 => {
                println!("{}  {e}", d.name);
                continue;
            }
            _ => {}
        }
        println!(
            "{}  load {:.2} {:.2} {:.2}  {} CPUs  memory {} free of {}  {} domU(s){sim}",
            d.name,
            d.load[0],
            d.load[1],
            d.load[2],
            d.nr_cpus,
            mib(d.free_memory),
            mib(d.total_memory),
            d.domu_count
        );
        if let Some(e) = &d.error {
            println!("   ! {e}");
        }
        let rows: Vec<&PlacedDomu> = view.domus.iter().filter(|p| p.dom0 == d.name).collect();
        if rows.is_empty() {
            continue;
        }
        println!("   {:<nw$} {:>5} {:>8} {:>5}  {:<6} {:>10}", "NAME", "ID", "MEM", "VCPUS", "STATE", "TIME(s)");
        for p in rows {
            let r = &p.domu;
            println!("   {:<nw$} {:>5} {:>8} {:>5}  {:<6} {:>10.1}", r.name, r.id, mib(r.mem), r.vcpus, r.state, r.cpu_time);
        }
    }
    let total: usize = view.dom0s.iter().map(|d| d.domu_count).sum();
    println!("\n{} dom0(s), {total} domU(s)", view.dom0s.len());
    print_failures(&[], &view.no_reply);
    Ok(code)
}

// -------------------------------------------------------------------------------------------------
// find

/// Where a domU runs, from a `find` round: (dom0, row) for each dom0 that has it.
fn found_on(o: &Outcome) -> Vec<(String, DomainRow)> {
    let mut hits: Vec<(String, DomainRow)> = o
        .replies
        .iter()
        .filter(|r| r.reply.status.is_ok() && r.reply.data["present"].as_bool() == Some(true))
        .filter_map(|r| Some((r.reply.sender.clone(), serde_json::from_value(r.reply.data["domu"].clone()).ok()?)))
        .collect();
    hits.sort_by(|a, b| a.0.cmp(&b.0));
    hits
}

fn failures(o: &Outcome) -> Vec<(String, String)> {
    o.replies
        .iter()
        .filter(|r| !r.reply.status.is_ok())
        .map(|r| (r.reply.sender.clone(), format!("{}: {}", r.reply.status, r.reply.status_msg)))
        .collect()
}

fn domain_args(name: &str) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("domain".into(), json!(name));
    args
}

pub async fn find(ctx: &Ctx, name: &str, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let mut client = ctx.client(false).await?;
    let o = match xen_round(ctx, &mut client, "find", domain_args(name), f, None, !out.json && !out.jsonl).await {
        Ok(o) => o,
        Err(e) if e.downcast_ref::<fleet_ddl::ValidationError>().is_some() => {
            eprintln!("fleet: {e}\nfleet: nothing was sent");
            return Ok(EXIT_NOTHING);
        }
        Err(e) => return Err(e),
    };
    let hits = found_on(&o);
    let failed = failures(&o);
    let code = if hits.is_empty() {
        1
    } else if !failed.is_empty() || !o.no_reply.is_empty() {
        2
    } else {
        0
    };
    if out.json || out.jsonl {
        let doc = json!({
            "domain": name,
            "found_on": hits.iter().map(|(h, _)| h).collect::<Vec<_>>(),
            "domu": hits.first().map(|(_, r)| json!(r)).unwrap_or(Value::Null),
            "asked": o.discovered,
            "failed": failed.iter().map(|(h, w)| json!({"host": h, "error": w})).collect::<Vec<_>>(),
            "no_reply": o.no_reply,
        });
        if out.json {
            println!("{}", serde_json::to_string_pretty(&doc)?)
        } else {
            println!("{doc}")
        }
        return Ok(code);
    }
    if o.discovered.is_empty() {
        println!("No dom0 matched (no node with the xen agent)");
        return Ok(1);
    }
    match hits.as_slice() {
        [] => println!("{name} runs on none of the {} dom0(s) asked", o.discovered.len()),
        found => {
            for (host, r) in found {
                println!(
                    "{name} runs on {host}  (id {}, {}, {} vCPU(s), state {}, {:.1} s of CPU)",
                    r.id,
                    mib(r.mem),
                    r.vcpus,
                    r.state,
                    r.cpu_time
                );
            }
            if found.len() > 1 {
                println!("warning: {name} is listed on {} dom0s at once", found.len());
            }
        }
    }
    print_failures(&failed, &o.no_reply);
    Ok(code)
}

// -------------------------------------------------------------------------------------------------
// migrate

/// What one migration came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationResult {
    pub domain: String,
    pub from: String,
    pub to: String,
    pub success: bool,
    /// xl's output on success, the node's message on failure.
    pub message: String,
    pub elapsed_s: f64,
}

/// Runs `xen#migrate` on `from`. `address` overrides the node's own host map when not empty.
pub async fn migrate_one(ctx: &Ctx, client: &mut Client, domain: &str, from: &str, to: &str, address: &str) -> Result<MigrationResult> {
    let mut args = domain_args(domain);
    args.insert("destination".into(), json!(to));
    if !address.is_empty() {
        args.insert("address".into(), json!(address));
    }
    let o = xen_round(ctx, client, "migrate", args, &FilterArgs::default(), Some(vec![from.to_string()]), false).await?;
    let (success, message, elapsed_s) = match o.replies.first() {
        Some(r) if r.reply.status.is_ok() => {
            (true, r.reply.data["output"].as_str().unwrap_or("").to_string(), r.reply.data["elapsed_s"].as_f64().unwrap_or(0.0))
        }
        Some(r) => (false, format!("{}: {}", r.reply.status, r.reply.status_msg), r.time_ms / 1000.0),
        None => (
            false,
            format!("no reply from {from} within {:.0} s; the migration may still be running there", o.elapsed_ms / 1000.0),
            o.elapsed_ms / 1000.0,
        ),
    };
    Ok(MigrationResult { domain: domain.into(), from: from.into(), to: to.into(), success, message, elapsed_s })
}

/// Reads the confirmation: the admin must type the domU's name.
fn confirm_name(name: &str) -> bool {
    eprint!("Type the domU's name ({name}) to migrate it, anything else cancels: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    line.trim() == name
}

fn last_line(text: &str) -> &str {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
}

pub async fn migrate(ctx: &Ctx, name: &str, dest: &str, yes: bool, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let mut args = domain_args(name);
    args.insert("destination".into(), json!(dest));
    let ddl = crate::commands::find_ddl("xen")?;
    if let Err(e) = fleet_ddl::validate_request(&ddl, "migrate", &mut args) {
        eprintln!("fleet: {e}\nfleet: nothing was sent");
        return Ok(EXIT_NOTHING);
    }
    let mut client = ctx.client(false).await?;
    let o = xen_round(ctx, &mut client, "find", domain_args(name), f, None, !out.json).await?;
    let dom0s: Vec<&str> = o.replies.iter().filter(|r| r.reply.status.is_ok()).map(|r| r.reply.sender.as_str()).collect();
    let hits = found_on(&o);
    let refuse = |why: String| {
        eprintln!("fleet: {why}\nfleet: nothing was migrated");
        Ok(EXIT_NOTHING)
    };
    let (from, row) = match hits.as_slice() {
        [] if o.discovered.is_empty() => return refuse("no dom0 matched (no node with the xen agent)".into()),
        [] => {
            let missing = if o.no_reply.is_empty() { String::new() } else { format!("; no reply from {}", o.no_reply.join(", ")) };
            return refuse(format!("{name} runs on none of the {} dom0(s) asked{missing}", o.discovered.len()));
        }
        [one] => one.clone(),
        many => {
            let hosts: Vec<&str> = many.iter().map(|(h, _)| h.as_str()).collect();
            return refuse(format!("{name} is listed on {} dom0s at once ({}); sort that out first", hosts.len(), hosts.join(", ")));
        }
    };
    if from == dest {
        return refuse(format!("{name} already runs on {dest}"));
    }
    if !dom0s.contains(&dest) {
        let mut known: Vec<&str> = dom0s.clone();
        known.sort();
        return refuse(format!("{dest} is not a dom0 that answered (dom0s: {})", known.join(", ")));
    }
    if !out.json || !yes {
        eprintln!("This will live-migrate one domU:\n");
        eprintln!("  domU   {name}  ({}, {} vCPU(s), state {}, {:.1} s of CPU)", mib(row.mem), row.vcpus, row.state, row.cpu_time);
        eprintln!("  from   {from}");
        eprintln!("  to     {dest}  (the address comes from {from}'s xen_host_map, else the name itself)\n");
    }
    if !yes && !confirm_name(name) {
        eprintln!("fleet: cancelled; nothing was migrated");
        return Ok(1);
    }
    if !out.json {
        eprintln!("migrating {name} from {from} to {dest} ...");
    }
    let result = migrate_one(ctx, &mut client, name, &from, dest, "").await?;
    // Where does it run now? Asked of both ends only.
    let now =
        xen_round(ctx, &mut client, "find", domain_args(name), &FilterArgs::default(), Some(vec![from.clone(), dest.to_string()]), false)
            .await;
    let now_on: Vec<String> = now.map(|o| found_on(&o).into_iter().map(|(h, _)| h).collect()).unwrap_or_default();
    if out.json || out.jsonl {
        let doc = json!({ "result": result, "now_on": now_on });
        if out.json { println!("{}", serde_json::to_string_pretty(&doc)?) } else { println!("{doc}") }
    } else if result.success {
        println!("{name}: migrated from {from} to {dest} in {:.1} s ({})", result.elapsed_s, last_line(&result.message));
        println!(
            "{name} now runs on {}",
            if now_on.is_empty() { "(not found: check with fleet xen find)".into() } else { now_on.join(", ") }
        );
    } else {
        println!("{name}: migration from {from} to {dest} FAILED:\n{}", result.message);
    }
    Ok(if result.success { 0 } else { 2 })
}

// -------------------------------------------------------------------------------------------------
// balance

/// How `fleet xen balance` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalanceMode {
    /// Observe, then print the plan.
    DryRun,
    /// Observe, then carry the plan out.
    Apply,
    /// Keep observing every interval; plan each round, and apply when `apply`.
    Watch { apply: bool },
}

#[derive(Debug, Clone, Default)]
pub struct BalanceOptions {
    /// Seconds to observe before a one-shot decision; default the policy's max_over.
    pub observe: Option<f64>,
    /// Past migrations, read for the cooldowns and appended to on apply.
    pub history: Option<PathBuf>,
}

/// Samples every matching dom0 once with `stat`; records the samples. Returns how many answered.
pub async fn sample_round(ctx: &Ctx, client: &mut Client, f: &FilterArgs, obs: &mut Observations) -> Result<(usize, Outcome)> {
    let sent = fleet_protocol::now_ms();
    let o = xen_round(ctx, client, "stat", Map::new(), f, None, false).await?;
    let samples = samples_from(&o, sent);
    for (host, s) in &samples {
        obs.record(host, s.clone());
    }
    Ok((samples.len(), o))
}

/// The plan as text lines: the dom0s, the migrations with their reasons, and what was left alone.
pub fn plan_lines(plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    lines.push("Dom0s:".to_string());
    let w = plan.dom0s.iter().map(|d| d.name.len()).max().unwrap_or(0);
    for d in &plan.dom0s {
        let mark = if d.overloaded { "  OVERLOADED" } else { "" };
        lines.push(format!("  {:<w$}  {}{mark}", d.name, d.summary));
    }
    if plan.migrations.is_empty() {
        lines.push("Plan: no migration".into());
    } else {
        lines.push(format!("Plan: {} migration(s)", plan.migrations.len()));
        for (i, m) in plan.migrations.iter().enumerate() {
            let via = if m.address != m.to { format!(" via {}", m.address) } else { String::new() };
            lines.push(format!("  {}. {}: {} -> {}{via}", i + 1, m.domu, m.from, m.to));
            lines.push(format!("     {}", m.reason));
        }
    }
    if !plan.rejected.is_empty() {
        lines.push("Considered and left alone:".into());
        for r in &plan.rejected {
            lines.push(format!("  {r}"));
        }
    }
    lines
}

fn load_history(path: Option<&Path>) -> Result<Vec<PastMigration>> {
    let Some(path) = path else { return Ok(Vec::new()) };
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(Vec::new()),
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("reading past migrations from {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading past migrations from {}", path.display())),
    }
}

fn save_history(path: Option<&Path>, migrations: &[PastMigration]) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(migrations)? + "\n").with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// Carries out a plan's migrations one by one; records each started one in `obs` (and the history
/// file), so the cooldowns hold even when a migration fails half-way.
async fn apply_plan(
    ctx: &Ctx,
    client: &mut Client,
    policy: &BalancerPolicy,
    plan: &Plan,
    obs: &mut Observations,
    history: Option<&Path>,
    quiet: bool,
) -> Result<Vec<MigrationResult>> {
    let mut results = Vec::new();
    for m in &plan.migrations {
        if !quiet {
            eprintln!("migrating {} from {} to {} ...", m.domu, m.from, m.to);
        }
        let address = if policy.host_mapping.contains_key(&m.to) { m.address.as_str() } else { "" };
        let started = fleet_protocol::now_ms();
        let r = migrate_one(ctx, client, &m.domu, &m.from, &m.to, address).await?;
        obs.record_migration(PastMigration { at_ms: started, domu: m.domu.clone(), from: m.from.clone(), to: m.to.clone() });
        let mut all = load_history(history)?;
        all.push(PastMigration { at_ms: started, domu: m.domu.clone(), from: m.from.clone(), to: m.to.clone() });
        all.retain(|p| started.saturating_sub(p.at_ms) < policy.memory_ms().max(1));
        save_history(history, &all)?;
        if !quiet {
            if r.success {
                println!("{}: migrated from {} to {} in {:.1} s ({})", r.domain, r.from, r.to, r.elapsed_s, last_line(&r.message));
            } else {
                println!("{}: migration from {} to {} FAILED: {}", r.domain, r.from, r.to, r.message);
            }
        }
        results.push(r);
    }
    Ok(results)
}

fn print_plan(plan: &Plan) {
    for l in plan_lines(plan) {
        println!("{l}");
    }
}

pub async fn balance(
    ctx: &Ctx,
    policy_file: &Path,
    mode: BalanceMode,
    opts: &BalanceOptions,
    f: &FilterArgs,
    out: &OutputArgs,
) -> Result<i32> {
    let policy = match BalancerPolicy::load(policy_file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("fleet: {e}\nfleet: nothing was sent");
            return Ok(EXIT_NOTHING);
        }
    };
    if let Some(o) = opts.observe.filter(|o| !(o.is_finite() && *o >= 0.0)) {
        eprintln!("fleet: --observe must be a number of seconds, 0 or more (got {o})\nfleet: nothing was sent");
        return Ok(EXIT_NOTHING);
    }
    let mut obs = Observations { migrations: load_history(opts.history.as_deref())?, ..Observations::default() };
    let mut client = ctx.client(false).await?;
    match mode {
        BalanceMode::Watch { apply } => watch(ctx, &mut client, &policy, apply, opts, f, out, &mut obs).await,
        BalanceMode::DryRun | BalanceMode::Apply => {
            let quiet = out.json || out.jsonl;
            let observe = Duration::from_secs_f64(opts.observe.unwrap_or(policy.max_over * 60.0));
            let interval = Duration::from_secs_f64(policy.interval);
            // The window opens with the first answers, so a slow first round does not eat it: any
            // observation longer than 0 s gets at least two samples to measure CPU time between.
            let mut deadline = None;
            let mut taken = 0;
            let mut asked = 0;
            loop {
                let (n, o) = sample_round(ctx, &mut client, f, &mut obs).await?;
                let deadline = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + observe);
                asked = asked.max(o.discovered.len());
                taken += 1;
                let now = tokio::time::Instant::now();
                if !quiet {
                    let left = deadline.saturating_duration_since(now);
                    eprintln!(
                        "sample {taken}: {n} of {} dom0(s) answered; {:.1} s of observation left",
                        o.discovered.len(),
                        left.as_secs_f64()
                    );
                }
                if now >= deadline {
                    break;
                }
                tokio::time::sleep(interval.min(deadline - now)).await;
            }
            if asked == 0 {
                if !quiet {
                    println!("No dom0 matched (no node with the xen agent)");
                }
                return Ok(1);
            }
            let plan = balancer::decide(&policy, &obs, fleet_protocol::now_ms());
            if !quiet {
                print_plan(&plan);
            }
            let results = if mode == BalanceMode::Apply && !plan.migrations.is_empty() {
                if !quiet {
                    println!();
                }
                apply_plan(ctx, &mut client, &policy, &plan, &mut obs, opts.history.as_deref(), quiet).await?
            } else {
                Vec::new()
            };
            if quiet {
                let doc = json!({ "plan": plan, "applied": mode == BalanceMode::Apply, "results": results, "samples": taken });
                if out.json { println!("{}", serde_json::to_string_pretty(&doc)?) } else { println!("{doc}") }
            }
            Ok(if results.iter().all(|r| r.success) { 0 } else { 2 })
        }
    }
}

/// `--watch`: one round per interval until ctrl-c. The first ctrl-c stops after the current
/// step; a second one stops at once (a migration already sent carries on on its dom0).
#[allow(clippy::too_many_arguments)]
async fn watch(
    ctx: &Ctx,
    client: &mut Client,
    policy: &BalancerPolicy,
    apply: bool,
    opts: &BalanceOptions,
    f: &FilterArgs,
    out: &OutputArgs,
    obs: &mut Observations,
) -> Result<i32> {
    let (stop_tx, mut stop) = tokio::sync::watch::channel(0u32);
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            let n = *stop_tx.borrow() + 1;
            if n == 1 {
                eprintln!("\nstopping after this step (ctrl-c again to stop at once)");
            }
            if stop_tx.send(n).is_err() {
                break;
            }
        }
    });
    let quiet = out.json || out.jsonl;
    let interval = Duration::from_secs_f64(policy.interval);
    let mut round = 0u64;
    let mut moved = 0usize;
    let mut failed = 0usize;
    let mut last_gist = String::new();
    if !quiet {
        eprintln!(
            "watching dom0s every {} s ({}); ctrl-c stops",
            policy.interval,
            if apply { "applying plans" } else { "dry run: plans are only printed" }
        );
    }
    'rounds: loop {
        round += 1;
        let step = async {
            let (n, o) = sample_round(ctx, client, f, obs).await?;
            let now = fleet_protocol::now_ms();
            obs.forget_old(policy, now);
            let plan = balancer::decide(policy, obs, now);
            anyhow::Ok((n, o, plan))
        };
        let (n, o, plan) = tokio::select! {
            r = step => r?,
            Ok(_) = stop.wait_for(|n| *n >= 2) => break 'rounds,
        };
        if quiet {
            println!("{}", json!({ "round": round, "answered": n, "asked": o.discovered.len(), "plan": plan }));
        } else {
            let loads: Vec<String> =
                plan.dom0s.iter().map(|d| format!("{} {}", d.name, d.load.map(balancer::fmt_load).unwrap_or_else(|| "-".into()))).collect();
            eprintln!("round {round}: {n} of {} dom0(s) answered; load {}", o.discovered.len(), loads.join(", "));
            // The plan is printed when it moves something or its reasons change in substance, not
            // every time a duration in it grows.
            let gist = plan_gist(&plan);
            if !plan.migrations.is_empty() || gist != last_gist {
                print_plan(&plan);
            }
            last_gist = gist;
        }
        if apply && !plan.migrations.is_empty() && *stop.borrow() == 0 {
            let results = tokio::select! {
                r = apply_plan(ctx, client, policy, &plan, obs, opts.history.as_deref(), quiet) => r?,
                Ok(_) = stop.wait_for(|n| *n >= 2) => {
                    eprintln!("stopped during a migration; it carries on on its dom0 (check with fleet xen find)");
                    break 'rounds;
                }
            };
            moved += results.iter().filter(|r| r.success).count();
            failed += results.iter().filter(|r| !r.success).count();
            if quiet {
                println!("{}", json!({ "round": round, "results": results }));
            }
        }
        if *stop.borrow() > 0 {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            Ok(_) = stop.wait_for(|n| *n >= 1) => break 'rounds,
        }
    }
    if !quiet {
        eprintln!("stopped after {round} round(s): {moved} migration(s) made, {failed} failed");
    }
    Ok(if failed == 0 { 0 } else { 2 })
}

/// What a plan says, without its numbers: two rounds with the same gist tell the admin nothing new.
fn plan_gist(plan: &Plan) -> String {
    let text = plan_lines(plan).join("\n");
    text.chars().filter(|c| !c.is_ascii_digit() && *c != '.').collect()
}

/// A plan's migrations as (domU, from, to), for tests and summaries.
pub fn moves_of(plan: &Plan) -> Vec<(String, String, String)> {
    plan.migrations.iter().map(|m: &Move| (m.domu.clone(), m.from.clone(), m.to.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ReplyRecord;
    use fleet_protocol::{Reply, Status};

    fn reply(sender: &str, status: Status, data: Value) -> ReplyRecord {
        ReplyRecord {
            reply: Reply {
                request_id: "r".into(),
                sender: sender.into(),
                status,
                status_msg: if status.is_ok() { "OK".into() } else { "xl not found".into() },
                data,
                elapsed_us: 0,
            },
            time_ms: 5.0,
            expected: true,
            signature: crate::client::SignatureCheck::Unverified,
        }
    }

    fn outcome(replies: Vec<ReplyRecord>, no_reply: &[&str]) -> Outcome {
        let mut discovered: Vec<String> = replies.iter().map(|r| r.reply.sender.clone()).collect();
        discovered.extend(no_reply.iter().map(|s| s.to_string()));
        Outcome {
            request_id: "r".into(),
            discovered,
            replies,
            no_reply: no_reply.iter().map(|s| s.to_string()).collect(),
            discovery_ms: 1.0,
            elapsed_ms: 10.0,
        }
    }

    fn row(name: &str, id: u32) -> Value {
        json!({"name": name, "id": id, "mem": 1024, "vcpus": 2, "state": "-b----", "running": false, "blocked": true, "paused": false,
               "shutdown": false, "shutdown_reason": "", "dying": false, "cpu_time": 12.5})
    }

    #[test]
    fn the_view_joins_list_and_info_per_dom0() {
        let list = outcome(
            vec![
                reply(
                    "xen-02",
                    Status::Ok,
                    json!({"domus": [row("web1", 3)], "dom0": row("Domain-0", 0), "domu_count": 1, "domu_memory": 1024}),
                ),
                reply("xen-01", Status::Ok, json!({"domus": [], "dom0": row("Domain-0", 0), "domu_count": 0, "domu_memory": 0})),
                reply("xen-03", Status::UnknownError, Value::Null),
            ],
            &["xen-04"],
        );
        let info = outcome(
            vec![reply(
                "xen-02",
                Status::Ok,
                json!({"load_1": 0.5, "load_5": 0.4, "load_15": 0.3, "nr_cpus": 8, "total_memory": 32768, "free_memory": 20000, "simulated": true}),
            )],
            &[],
        );
        let v = view_from(&list, &info);
        assert_eq!(v.dom0s.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["xen-01", "xen-02", "xen-03"]);
        let x2 = &v.dom0s[1];
        assert_eq!(x2.load, [0.5, 0.4, 0.3]);
        assert_eq!((x2.total_memory, x2.free_memory, x2.domu_count), (32768, 20000, 1));
        assert!(x2.simulated);
        assert_eq!(v.domus.len(), 1);
        assert_eq!((v.domus[0].dom0.as_str(), v.domus[0].domu.name.as_str()), ("xen-02", "web1"));
        assert_eq!(v.dom0s[2].error.as_deref(), Some("list: UnknownError: xl not found"));
        assert_eq!(v.no_reply, ["xen-04"]);
    }

    #[test]
    fn stat_replies_become_balancer_samples() {
        let stat = outcome(
            vec![
                reply("xen-02", Status::Ok, json!({"load_1": 1.5, "domu_count": 1, "domus": [row("web1", 3)]})),
                reply("xen-01", Status::Ok, json!({"load_1": 0.1, "domu_count": 0, "domus": []})),
                reply("xen-03", Status::UnknownError, Value::Null),
            ],
            &[],
        );
        let samples = samples_from(&stat, 1_000_000);
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].0, "xen-01");
        assert_eq!(samples[1].1.load, 1.5);
        assert_eq!(samples[1].1.domus, vec![balancer::DomuSample { name: "web1".into(), cpu_time: 12.5 }]);
        assert_eq!(samples[1].1.at_ms, 1_000_006);
    }

    #[test]
    fn plans_read_as_text() {
        let plan = Plan {
            at_ms: 0,
            migrations: vec![Move {
                domu: "test3".into(),
                from: "hypervisor3".into(),
                to: "hypervisor2".into(),
                address: "10.0.0.2".into(),
                reason: "hypervisor3 over 1.0 for 6 min; test3 ate 1.7 s of 30 s; hypervisor2 has 0 of 10 VMs, load 0.16".into(),
                cpu_eaten: 1.7,
                window_s: 30.0,
            }],
            rejected: vec![balancer::Rejection {
                considered: balancer::Considered::Destination,
                name: "hypervisor1".into(),
                why: "has 10 of 10 VMs (max_vm_per_host)".into(),
            }],
            dom0s: vec![],
        };
        assert_eq!(
            plan_lines(&plan),
            [
                "Dom0s:",
                "Plan: 1 migration(s)",
                "  1. test3: hypervisor3 -> hypervisor2 via 10.0.0.2",
                "     hypervisor3 over 1.0 for 6 min; test3 ate 1.7 s of 30 s; hypervisor2 has 0 of 10 VMs, load 0.16",
                "Considered and left alone:",
                "  destination hypervisor1: has 10 of 10 VMs (max_vm_per_host)",
            ]
        );
    }

    #[test]
    fn the_filter_always_asks_dom0s_only() {
        let f = xen_filter(&FilterArgs { agent: vec!["xen".into()], ..Default::default() });
        assert_eq!(f.agent, ["xen"]);
        let f = xen_filter(&FilterArgs { fact: vec!["dc=nyc1".into()], ..Default::default() });
        assert_eq!((f.agent.as_slice(), f.fact.as_slice()), (&["xen".to_string()][..], &["dc=nyc1".to_string()][..]));
    }

    #[test]
    fn the_subcommands_parse() {
        use clap::Parser;
        #[derive(clap::Parser, Debug)]
        struct Top {
            #[command(subcommand)]
            cmd: XenCommand,
        }
        <Top as clap::CommandFactory>::command().debug_assert();
        let t = Top::try_parse_from(["xen", "migrate", "web1", "xen-02", "--yes", "--json", "-A", "extra"]).unwrap();
        match t.cmd {
            XenCommand::Migrate { name, dest, yes, filter, output } => {
                assert_eq!((name.as_str(), dest.as_str(), yes, output.json), ("web1", "xen-02", true, true));
                assert_eq!(filter.agent, ["extra"]);
            }
            other => panic!("{other:?}"),
        }
        let t = Top::try_parse_from(["xen", "balance", "--policy", "p.toml", "--watch", "--apply", "--observe", "2"]).unwrap();
        assert!(matches!(t.cmd, XenCommand::Balance { watch: true, apply: true, observe: Some(o), .. } if o == 2.0));
        assert!(Top::try_parse_from(["xen", "balance", "--policy", "p.toml", "--dry-run", "--apply"]).is_err());
        assert!(Top::try_parse_from(["xen", "find"]).is_err());
    }
}
