//! The Xen side of the fleet through the `xen` agent, written once for the CLI and the console:
//! gather every dom0's domUs, load and memory ([`gather`]), find which dom0 runs a domU
//! ([`find`]), live-migrate one ([`migrate_one`]), sample dom0s for the [`balancer`], and keep
//! the migration history and the balancer policy ([`history`], [`policy`]) with its filter-language
//! [`rules`].

pub mod balancer;
pub mod history;
pub mod plan;
pub mod policy;
pub mod rules;

use std::collections::BTreeMap;
use std::time::Duration;

use fleet_protocol::DomainRow;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub use balancer::{BalancerPolicy, DomuSample, Move, Observations, PastMigration, Plan, Sample};
pub use history::{PolicySource, load_history, load_policy, save_history};
pub use plan::{moves_of, plan_gist, plan_lines};

use crate::error::Result;
use crate::link::Client;
use crate::process::failures;
use crate::round::{self, Outcome, Progress};
use crate::scope::{Scope, Settings};

/// Seconds a query action (list, info, find, stat) may take on a dom0.
const QUERY_TIMEOUT: Duration = Duration::from_secs(20);

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
    /// Its node's facts and classes, for the balancer's rules (empty when rpcutil did not answer).
    #[serde(default)]
    pub node: NodeFacts,
}

/// A node's facts and classes, as `rpcutil#inventory` reports them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeFacts {
    pub facts: Value,
    pub classes: Vec<String>,
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

/// One round of a xen action on the dom0s of `scope` (the scope plus `-A xen`: only dom0s answer).
pub async fn round(
    client: &mut Client,
    settings: &Settings,
    scope: &Scope,
    action: &str,
    mut args: Map<String, Value>,
    on: impl FnMut(&Progress),
) -> Result<Outcome> {
    let (ddl, _) = crate::ddl::checked("xen", action, &mut args)?;
    let action_timeout = if action == "migrate" { Duration::from_secs(ddl.metadata.timeout) } else { QUERY_TIMEOUT };
    let spec = settings.spec("xen", action, args, &scope.with_agent("xen"), action_timeout);
    round::run(client, &spec, on).await
}

/// `{"domain": name}`.
pub fn domain_args(name: &str) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("domain".into(), json!(name));
    args
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

/// Puts each node's facts and classes from an `rpcutil#inventory` round on its dom0; a dom0
/// whose node did not answer keeps none (rules that read facts are then false for it).
pub fn note_facts(view: &mut XenView, inventory: &Outcome) {
    for r in inventory.replies.iter().filter(|r| r.reply.status.is_ok()) {
        if let Some(d) = view.dom0s.iter_mut().find(|d| d.name == r.reply.sender) {
            let data = &r.reply.data;
            let classes = data["classes"].as_array().into_iter().flatten().filter_map(|c| c.as_str().map(str::to_string)).collect();
            d.node = NodeFacts { facts: data["facts"].clone(), classes };
        }
    }
}

/// Asks every dom0 of `scope` for its domUs, then the same dom0s for their load and memory and
/// their nodes for facts and classes (what the balancer's rules read).
pub async fn gather(client: &mut Client, settings: &Settings, scope: &Scope, mut on: impl FnMut(&Progress)) -> Result<XenView> {
    let list = round(client, settings, scope, "list", Map::new(), &mut on).await?;
    // Ask the same dom0s for the rest, so the parts of the view match.
    let asked = list.discovered.clone();
    if asked.is_empty() {
        return Ok(view_from(&list, &list));
    }
    let same = Scope { targets: Some(asked), ..scope.clone() };
    let info = round(client, settings, &same, "info", Map::new(), &mut on).await?;
    let mut view = view_from(&list, &info);
    let spec = settings.spec("rpcutil", "inventory", Map::new(), &same.with_agent("xen"), QUERY_TIMEOUT);
    note_facts(&mut view, &round::run(client, &spec, &mut on).await?);
    Ok(view)
}

/// When `policy` has rules, gathers what they read (facts, memory, domU rows) into `obs`; else
/// nothing is asked.
pub async fn gather_for_rules(
    client: &mut Client,
    settings: &Settings,
    scope: &Scope,
    policy: &BalancerPolicy,
    obs: &mut Observations,
) -> Result<()> {
    if !policy.rules.is_empty() {
        obs.note_view(&gather(client, settings, scope, |_| {}).await?);
    }
    Ok(())
}

/// Where a domU runs, from a `find` round: (dom0, row) for each dom0 that has it, by dom0 name.
pub fn found_on(o: &Outcome) -> Vec<(String, DomainRow)> {
    let mut hits: Vec<(String, DomainRow)> = o
        .replies
        .iter()
        .filter(|r| r.reply.status.is_ok() && r.reply.data["present"].as_bool() == Some(true))
        .filter_map(|r| Some((r.reply.sender.clone(), serde_json::from_value(r.reply.data["domu"].clone()).ok()?)))
        .collect();
    hits.sort_by(|a, b| a.0.cmp(&b.0));
    hits
}

/// What a `find` round found.
#[derive(Debug, Clone)]
pub struct Found {
    /// (dom0, row) for each dom0 that runs the domU.
    pub on: Vec<(String, DomainRow)>,
    /// (dom0, why) for each failed reply.
    pub failed: Vec<(String, String)>,
    pub outcome: Outcome,
}

/// Asks the dom0s of `scope` which of them runs `name`.
pub async fn find(client: &mut Client, settings: &Settings, scope: &Scope, name: &str, on: impl FnMut(&Progress)) -> Result<Found> {
    let outcome = round(client, settings, scope, "find", domain_args(name), on).await?;
    Ok(Found { on: found_on(&outcome), failed: failures(&outcome), outcome })
}

/// Runs `xen#migrate` on `from`. `address` overrides the node's own host map when not empty.
pub async fn migrate_one(
    client: &mut Client,
    settings: &Settings,
    domain: &str,
    from: &str,
    to: &str,
    address: &str,
) -> Result<MigrationResult> {
    let mut args = domain_args(domain);
    args.insert("destination".into(), json!(to));
    if !address.is_empty() {
        args.insert("address".into(), json!(address));
    }
    let o = round(client, settings, &Scope::nodes(vec![from.to_string()]), "migrate", args, |_| {}).await?;
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
            .filter_map(|d| Some(DomuSample { name: d["name"].as_str()?.to_string(), cpu_time: d["cpu_time"].as_f64()? }))
            .collect();
        let at_ms = sent_at_ms + stat.discovery_ms as u64 + r.time_ms as u64;
        out.push((r.reply.sender.clone(), Sample { at_ms, load, domus }));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Samples every dom0 of `scope` once with `stat` and records the samples. Returns how many
/// answered, and the round.
pub async fn sample_round(client: &mut Client, settings: &Settings, scope: &Scope, obs: &mut Observations) -> Result<(usize, Outcome)> {
    let sent = fleet_protocol::now_ms();
    let o = round(client, settings, scope, "stat", Map::new(), |_| {}).await?;
    let samples = samples_from(&o, sent);
    for (host, s) in &samples {
        obs.record(host, s.clone());
    }
    Ok((samples.len(), o))
}

#[cfg(test)]
mod tests;
