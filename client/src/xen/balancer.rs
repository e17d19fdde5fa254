//! The Xen balancer's decision: from what was observed of each dom0 (its load and its domUs' CPU
//! time, sampled over time) and the migrations already made, which domUs to move where and why —
//! and what was considered and left alone, and why. Pure: no I/O and no clock; the caller passes
//! the samples and `now`, so the same observations always give the same plan.
//!
//! The rule is mc-xen-balancer's, with the barriers its author wanted: a dom0 whose load stayed
//! above `load_threshold` for `max_over` minutes sends the domU that ate the most CPU to the least
//! loaded dom0 that has room (`max_vm_per_host`) and a load under `max_load_candidate`. A domU
//! that moved is not moved again for `vm_cooldown` minutes, and a dom0 that sent or received one
//! is left alone for `host_cooldown` minutes so its load can settle. Pinned domUs never move;
//! dom0s in maintenance neither send nor receive; each dom0 takes part in at most one migration
//! per round, and a round has at most `max_migrations_per_round`.

use std::collections::{BTreeMap, BTreeSet};

use fleet_protocol::DomainRow;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use super::policy::{BalancerPolicy, PolicyError};
use super::policy::{minutes_ms, secs_ms};
use super::rules::Subject;
use super::{Dom0, XenView};

// -------------------------------------------------------------------------------------------------
// Observations

/// One look at a dom0: when, its load, and the cumulative CPU time of each of its domUs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    /// The 1-minute load average.
    pub load: f64,
    pub domus: Vec<DomuSample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomuSample {
    pub name: String,
    /// Seconds of CPU eaten since the domU started.
    pub cpu_time: f64,
}

/// A migration that happened (or was started) — what the cooldowns look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastMigration {
    pub at_ms: u64,
    pub domu: String,
    pub from: String,
    pub to: String,
}

/// Everything observed so far: the samples of each dom0 and the migrations made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    pub dom0s: BTreeMap<String, Vec<Sample>>,
    pub migrations: Vec<PastMigration>,
    /// The latest full look at each dom0 (facts, classes, memory): what the rules read besides
    /// the samples. Filled by [`Observations::note_view`]; empty without rules.
    #[serde(default)]
    pub dom0_info: BTreeMap<String, Dom0>,
    /// The latest row of each domU (memory, vCPUs, state), for the rules.
    #[serde(default)]
    pub domu_info: BTreeMap<String, DomainRow>,
}

impl Observations {
    /// Adds a sample of `dom0`, keeping its samples in time order.
    pub fn record(&mut self, dom0: &str, sample: Sample) {
        let samples = self.dom0s.entry(dom0.to_string()).or_default();
        let at = samples.partition_point(|s| s.at_ms <= sample.at_ms);
        samples.insert(at, sample);
    }

    pub fn record_migration(&mut self, m: PastMigration) {
        self.migrations.push(m);
    }

    /// Keeps what a gathered view says of each dom0 that answered in full, and every domU's row,
    /// for the rules. Dom0s no longer in the view are forgotten.
    pub fn note_view(&mut self, view: &XenView) {
        self.dom0_info.retain(|name, _| view.dom0s.iter().any(|d| &d.name == name));
        for d in view.dom0s.iter().filter(|d| d.error.is_none()) {
            self.dom0_info.insert(d.name.clone(), d.clone());
        }
        self.domu_info = view.domus.iter().map(|p| (p.domu.name.clone(), p.domu.clone())).collect();
    }

    /// Drops what no longer matters under `policy` at `now_ms`, so a long-running balancer keeps a
    /// bounded history: samples older than the overload window, except those of an overload still
    /// going on (so its reason says how long it really lasted), up to a day. The latest sample of
    /// each dom0 is always kept.
    pub fn forget_old(&mut self, policy: &BalancerPolicy, now_ms: u64) {
        const DAY_MS: u64 = 24 * 3600 * 1000;
        let keep_from = now_ms.saturating_sub(policy.history_ms());
        let keep_run_from = now_ms.saturating_sub(DAY_MS);
        for samples in self.dom0s.values_mut() {
            let run_start = samples.iter().rposition(|s| s.load <= policy.load_threshold).map_or(0, |i| i + 1);
            let old_by_time = samples.iter().take_while(|s| s.at_ms < keep_from).count();
            let old_run = samples.iter().take_while(|s| s.at_ms < keep_run_from).count();
            let old = old_by_time.min(run_start).max(old_run).min(samples.len().saturating_sub(1));
            samples.drain(..old);
        }
        let remember_from = now_ms.saturating_sub(policy.memory_ms());
        self.migrations.retain(|m| m.at_ms >= remember_from);
    }
}

// -------------------------------------------------------------------------------------------------
// The plan

/// One migration the balancer wants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Move {
    pub domu: String,
    pub from: String,
    pub to: String,
    /// Where xl migrates to (the policy's host_mapping, else the dom0's name).
    pub address: String,
    /// Why, in an admin's words.
    pub reason: String,
    /// Seconds of CPU the domU ate over `window_s`.
    pub cpu_eaten: f64,
    pub window_s: f64,
    /// Which of the policy's rules let it happen, one line each (empty without rules).
    #[serde(default)]
    pub rules: Vec<String>,
}

/// What a rejection is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Considered {
    /// A dom0 as the sender of a domU.
    Source,
    /// A domU as the one to move.
    Domu,
    /// A dom0 as the receiver of a domU.
    Destination,
}

/// Something the balancer considered and left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub considered: Considered,
    pub name: String,
    pub why: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.considered {
            Considered::Source => "source",
            Considered::Domu => "domU",
            Considered::Destination => "destination",
        };
        write!(f, "{what} {}: {}", self.name, self.why)
    }
}

/// How the balancer saw one dom0 this round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dom0Assessment {
    pub name: String,
    /// The latest load; `None` without samples.
    pub load: Option<f64>,
    pub domus: usize,
    /// How long the load has been above the threshold, in seconds (0 when it is not).
    pub over_for_s: f64,
    /// Over for at least max_over.
    pub overloaded: bool,
    /// No sample within three intervals.
    pub stale: bool,
    /// A one-line summary, e.g. "over 1.0 for 6 min" or "load 0.16, 3 of 10 VMs".
    pub summary: String,
}

/// The balancer's decision for one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub at_ms: u64,
    pub migrations: Vec<Move>,
    pub rejected: Vec<Rejection>,
    pub dom0s: Vec<Dom0Assessment>,
}

/// A load as an admin writes it: 1.0, 0.16, 2.5.
pub fn fmt_load(x: f64) -> String {
    let two = format!("{x:.2}");
    if two.ends_with('0') { format!("{x:.1}") } else { two }
}

/// A duration in seconds under two minutes, in minutes above.
pub fn fmt_duration(ms: u64) -> String {
    let s = ms as f64 / 1000.0;
    if s < 120.0 {
        return format!("{} s", fmt_trimmed(s));
    }
    format!("{} min", fmt_trimmed(s / 60.0))
}

/// One decimal at most, none when it is whole.
fn fmt_trimmed(x: f64) -> String {
    let one = format!("{x:.1}");
    one.strip_suffix(".0").map(str::to_string).unwrap_or(one)
}

/// What is known of one dom0 at decision time.
struct Dom0Facts<'a> {
    name: &'a str,
    samples: &'a [Sample],
    latest: &'a Sample,
    /// Index of the first sample of the current run above the threshold, when the latest is above.
    over_from: Option<usize>,
    over_for_ms: u64,
    stale: bool,
}

impl Dom0Facts<'_> {
    fn load(&self) -> f64 {
        self.latest.load
    }

    /// The dom0 as the rules see it: its node's facts, then its metrics over them. Memory is as
    /// last gathered: a dom0 takes part in one move a round, so no planned move has changed it.
    fn subject(&self, obs: &Observations, domus: usize) -> Subject {
        let info = obs.dom0_info.get(self.name);
        let mut facts = info.map(|d| d.node.facts.clone()).filter(Value::is_object).unwrap_or_else(|| json!({}));
        let mut metrics = json!({ "name": self.name, "load": self.load(), "domus": domus });
        if let Some(d) = info {
            metrics["load_5"] = json!(d.load[1]);
            metrics["load_15"] = json!(d.load[2]);
            metrics["total_mem_mib"] = json!(d.total_memory);
            metrics["free_mem_mib"] = json!(d.free_memory);
            metrics["nr_cpus"] = json!(d.nr_cpus);
        }
        if let (Some(f), Value::Object(m)) = (facts.as_object_mut(), metrics) {
            f.extend(m);
        }
        Subject { name: self.name.to_string(), facts, classes: info.map(|d| d.node.classes.clone()).unwrap_or_default() }
    }
}

/// A domU as the rules see it: its row's attributes, what it ate, and its dom0 as `dom0.*`.
fn domu_subject(obs: &Observations, name: &str, cpu_time: f64, ate: f64, dom0: &Subject) -> Subject {
    let mut facts = json!({ "name": name, "cpu_time": cpu_time, "cpu_eaten": ate, "dom0": dom0.facts });
    if let Some(row) = obs.domu_info.get(name) {
        facts["mem_mib"] = json!(row.mem);
        facts["vcpus"] = json!(row.vcpus);
        facts["state"] = json!(row.state);
    }
    Subject { name: name.to_string(), facts, classes: Vec::new() }
}

/// The latest migration involving `dom0` within `within_ms` of `now_ms`.
fn recent_for_host<'a>(migrations: &'a [PastMigration], dom0: &str, now_ms: u64, within_ms: u64) -> Option<&'a PastMigration> {
    migrations
        .iter()
        .filter(|m| (m.from == dom0 || m.to == dom0) && now_ms.saturating_sub(m.at_ms) < within_ms)
        .max_by(|a, b| a.at_ms.cmp(&b.at_ms).then_with(|| a.domu.cmp(&b.domu)))
}

fn recent_for_domu<'a>(migrations: &'a [PastMigration], domu: &str, now_ms: u64, within_ms: u64) -> Option<&'a PastMigration> {
    migrations.iter().filter(|m| m.domu == domu && now_ms.saturating_sub(m.at_ms) < within_ms).max_by_key(|m| m.at_ms)
}

fn host_cooldown_why(m: &PastMigration, dom0: &str, now_ms: u64, policy: &BalancerPolicy) -> String {
    let (verb, other) = if m.from == dom0 { ("sent", &m.to) } else { ("received", &m.from) };
    let prep = if m.from == dom0 { "to" } else { "from" };
    format!(
        "settling: {verb} {} {prep} {other} {} ago (host_cooldown {})",
        m.domu,
        fmt_duration(now_ms.saturating_sub(m.at_ms)),
        fmt_duration(minutes_ms(policy.host_cooldown))
    )
}

/// Decides which domUs to move. Deterministic: ties are broken by name.
pub fn decide(policy: &BalancerPolicy, obs: &Observations, now_ms: u64) -> Plan {
    let stale_ms = secs_ms(policy.interval * 3.0);
    let max_over_ms = minutes_ms(policy.max_over);
    let host_cooldown_ms = minutes_ms(policy.host_cooldown);
    let vm_cooldown_ms = minutes_ms(policy.vm_cooldown);
    let maintenance: BTreeSet<&str> = policy.maintenance.iter().map(String::as_str).collect();
    let pinned: BTreeSet<&str> = policy.pinned.iter().map(String::as_str).collect();
    let threshold = fmt_load(policy.load_threshold);

    // What each dom0 looks like now, in name order.
    let mut facts: Vec<Dom0Facts> = Vec::new();
    let mut dom0s = Vec::new();
    for (name, samples) in &obs.dom0s {
        let Some(latest) = samples.last() else {
            dom0s.push(Dom0Assessment {
                name: name.clone(),
                load: None,
                domus: 0,
                over_for_s: 0.0,
                overloaded: false,
                stale: true,
                summary: "no samples".into(),
            });
            continue;
        };
        let stale = now_ms.saturating_sub(latest.at_ms) > stale_ms;
        let over_from = (latest.load > policy.load_threshold).then(|| {
            let below = samples.iter().rposition(|s| s.load <= policy.load_threshold);
            below.map_or(0, |i| i + 1)
        });
        let over_for_ms = over_from.map_or(0, |i| latest.at_ms.saturating_sub(samples[i].at_ms));
        let f = Dom0Facts { name, samples, latest, over_from, over_for_ms, stale };
        let overloaded = !stale && over_from.is_some() && over_for_ms >= max_over_ms;
        let summary = if stale {
            format!("no sample for {}", fmt_duration(now_ms.saturating_sub(latest.at_ms)))
        } else if over_from.is_some() {
            format!("load {}, over {threshold} for {}", fmt_load(f.load()), fmt_duration(over_for_ms))
        } else {
            format!("load {}", fmt_load(f.load()))
        };
        dom0s.push(Dom0Assessment {
            name: name.clone(),
            load: Some(f.load()),
            domus: latest.domus.len(),
            over_for_s: over_for_ms as f64 / 1000.0,
            overloaded,
            stale,
            summary: format!("{summary}, {} of {} VMs", latest.domus.len(), policy.max_vm_per_host),
        });
        facts.push(f);
    }

    let mut rejected: Vec<Rejection> = Vec::new();
    let mut reject = |considered: Considered, name: &str, why: String| {
        let r = Rejection { considered, name: name.to_string(), why };
        if !rejected.contains(&r) {
            rejected.push(r);
        }
    };

    // Sources: every dom0 over the threshold, the most loaded first.
    let mut sources: Vec<&Dom0Facts> = Vec::new();
    for f in &facts {
        if f.over_from.is_none() {
            continue;
        }
        if f.stale {
            reject(Considered::Source, f.name, format!("no sample for {}", fmt_duration(now_ms.saturating_sub(f.latest.at_ms))));
        } else if f.over_for_ms < max_over_ms {
            reject(
                Considered::Source,
                f.name,
                format!("over {threshold} for {}, under max_over {}", fmt_duration(f.over_for_ms), fmt_duration(max_over_ms)),
            );
        } else {
            sources.push(f);
        }
    }
    sources.sort_by(|a, b| b.load().total_cmp(&a.load()).then_with(|| a.name.cmp(b.name)));

    let mut counts: BTreeMap<&str, usize> = facts.iter().map(|f| (f.name, f.latest.domus.len())).collect();
    let rules = &policy.rules;
    let mut busy: BTreeSet<&str> = BTreeSet::new();
    let mut migrations: Vec<Move> = Vec::new();

    for src in sources {
        let over = format!("over {threshold} for {}", fmt_duration(src.over_for_ms));
        if maintenance.contains(src.name) {
            reject(Considered::Source, src.name, format!("{over}, but in maintenance: it neither sends nor receives"));
            continue;
        }
        if let Some(m) = recent_for_host(&obs.migrations, src.name, now_ms, host_cooldown_ms) {
            reject(Considered::Source, src.name, format!("{over}, but {}", host_cooldown_why(m, src.name, now_ms, policy)));
            continue;
        }
        if busy.contains(src.name) {
            reject(Considered::Source, src.name, format!("{over}, but it already takes part in a migration this round"));
            continue;
        }
        if migrations.len() >= policy.max_migrations_per_round {
            reject(
                Considered::Source,
                src.name,
                format!("{over}, but this round already has {} migration(s) (max_migrations_per_round)", migrations.len()),
            );
            continue;
        }

        // The domUs by CPU eaten over the overload run, most first; the run's first sample is the
        // base, or the one before it when the run is a single sample.
        let from = src.over_from.unwrap_or(0);
        let base_from = if from + 1 == src.samples.len() { from.saturating_sub(1) } else { from };
        let window = &src.samples[base_from..];
        let mut eaten: Vec<(&str, f64, u64, f64)> = src
            .latest
            .domus
            .iter()
            .map(|d| {
                let first = window.iter().find_map(|s| s.domus.iter().find(|x| x.name == d.name).map(|x| (s.at_ms, x.cpu_time)));
                let (since, base) = first.unwrap_or((src.latest.at_ms, d.cpu_time));
                // A domU that restarted counts from zero.
                let ate = if d.cpu_time >= base { d.cpu_time - base } else { d.cpu_time };
                (d.name.as_str(), ate, src.latest.at_ms.saturating_sub(since), d.cpu_time)
            })
            .collect();
        eaten.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        if eaten.is_empty() {
            reject(Considered::Source, src.name, format!("{over}, but it has no domU to move"));
            continue;
        }
        // The rules see the source and its domUs only when there are rules: building the
        // subjects copies facts.
        let src_seen = if rules.is_empty() { Subject::default() } else { src.subject(obs, counts[src.name]) };
        let mut chosen = None;
        for &(domu, ate, window_ms, cpu_time) in &eaten {
            if pinned.contains(domu) {
                reject(Considered::Domu, domu, format!("on {}: pinned by the policy", src.name));
                continue;
            }
            let domu_seen = if rules.is_empty() { Subject::default() } else { domu_subject(obs, domu, cpu_time, ate, &src_seen) };
            if let Some(why) = rules.refuses_to_move(&domu_seen) {
                reject(Considered::Domu, domu, format!("on {}: {why}", src.name));
                continue;
            }
            if let Some(m) = recent_for_domu(&obs.migrations, domu, now_ms, vm_cooldown_ms) {
                reject(
                    Considered::Domu,
                    domu,
                    format!(
                        "on {}: moved from {} to {} {} ago (vm_cooldown {})",
                        src.name,
                        m.from,
                        m.to,
                        fmt_duration(now_ms.saturating_sub(m.at_ms)),
                        fmt_duration(vm_cooldown_ms)
                    ),
                );
                continue;
            }
            chosen = Some((domu, ate, window_ms, domu_seen));
            break;
        }
        let Some((domu, ate, window_ms, domu_seen)) = chosen else {
            reject(Considered::Source, src.name, format!("{over}, but none of its domUs may move"));
            continue;
        };
        if ate <= 0.0 {
            reject(
                Considered::Source,
                src.name,
                format!("{over}, but no movable domU ate CPU over the last {}: the load is not theirs", fmt_duration(window_ms)),
            );
            continue;
        }

        // Destinations: by the first `prefer` rule each meets, then the least loaded, then the
        // emptiest, then by name.
        let mut candidates: Vec<(&Dom0Facts, Subject, usize)> = facts
            .iter()
            .filter(|f| f.name != src.name)
            .map(|f| {
                if rules.is_empty() {
                    return (f, Subject::default(), 0);
                }
                let seen = f.subject(obs, counts[f.name]);
                let rank = rules.rank(&seen, &domu_seen);
                (f, seen, rank)
            })
            .collect();
        candidates.sort_by(|(a, _, rank_a), (b, _, rank_b)| {
            rank_a
                .cmp(rank_b)
                .then_with(|| a.load().total_cmp(&b.load()))
                .then_with(|| counts[a.name].cmp(&counts[b.name]))
                .then_with(|| a.name.cmp(b.name))
        });
        let mut target = None;
        for (dst, dst_seen, _) in candidates {
            let why = if maintenance.contains(dst.name) {
                Some("in maintenance: it neither sends nor receives".to_string())
            } else if dst.stale {
                Some(format!("no sample for {}", fmt_duration(now_ms.saturating_sub(dst.latest.at_ms))))
            } else if let Some(m) = recent_for_host(&obs.migrations, dst.name, now_ms, host_cooldown_ms) {
                Some(host_cooldown_why(m, dst.name, now_ms, policy))
            } else if busy.contains(dst.name) {
                Some("already takes part in a migration this round".to_string())
            } else if dst.load() > policy.load_threshold {
                Some(format!("load {} is over load_threshold {threshold}", fmt_load(dst.load())))
            } else if dst.load() >= policy.max_load_candidate {
                Some(format!("load {} is not under max_load_candidate {}", fmt_load(dst.load()), fmt_load(policy.max_load_candidate)))
            } else if counts[dst.name] >= policy.max_vm_per_host {
                Some(format!("has {} of {} VMs (max_vm_per_host)", counts[dst.name], policy.max_vm_per_host))
            } else {
                rules.refuses_to_receive(&dst_seen, &domu_seen)
            };
            match why {
                Some(why) => reject(Considered::Destination, dst.name, why),
                None => {
                    target = Some((dst, dst_seen));
                    break;
                }
            }
        }
        let Some((dst, dst_seen)) = target else {
            reject(Considered::Source, src.name, format!("{over}, but no dom0 can take {domu} (see the destinations)"));
            continue;
        };
        let reason = format!(
            "{} {over}; {domu} ate {} s of {}; {} has {} of {} VMs, load {}",
            src.name,
            fmt_trimmed(ate),
            fmt_duration(window_ms),
            dst.name,
            counts[dst.name],
            policy.max_vm_per_host,
            fmt_load(dst.load())
        );
        migrations.push(Move {
            domu: domu.to_string(),
            from: src.name.to_string(),
            to: dst.name.to_string(),
            address: policy.address_of(dst.name),
            reason,
            cpu_eaten: ate,
            window_s: window_ms as f64 / 1000.0,
            rules: rules.trace(&domu_seen, &dst_seen),
        });
        *counts.get_mut(src.name).expect("source counted") -= 1;
        *counts.get_mut(dst.name).expect("destination counted") += 1;
        busy.insert(src.name);
        busy.insert(dst.name);
    }

    Plan { at_ms: now_ms, migrations, rejected, dom0s }
}

#[cfg(test)]
mod tests;
