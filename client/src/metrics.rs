//! Live metrics, written once for the CLI and the console: the metrics agent's request, its
//! `latest` replies read back as one row per host (with a few figures derived across mounts and
//! interfaces), hosts grouped by a fact with min/avg/max per metric and each group's worst host,
//! worst groups first, and metric values as people read them.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::format::human_bytes;
use crate::round::Outcome;

/// The group of hosts that lack the group-by fact.
pub const NO_GROUP: &str = "(none)";

/// The metrics agent.
pub const AGENT: &str = "metrics";

/// The columns `fleet metrics` shows when no `--metric` is given.
pub const DEFAULT_COLUMNS: &[&str] = &[
    "load1",
    "cpu_busy_pct",
    "cpu_iowait_pct",
    "mem_used_pct",
    "swap_used_pct",
    "disk_used_max_pct",
    "net_rx_bytes_per_s",
    "net_tx_bytes_per_s",
    "processes",
    "zombies",
];

/// The metric hosts and groups are ranked by when none is named: the one-minute load.
pub const DEFAULT_RANK: &str = "load1";

/// Metrics where a lower value is the worse one; for every other metric the highest is worst.
const LOWER_IS_WORSE: &[&str] = &["mem_available_bytes"];

/// How two parts of a derived figure combine into one.
type Combine = fn(f64, f64) -> f64;

/// The figures derived across a family's parts: (name, the parts' prefix, how two parts combine).
const DERIVED: [(&str, &str, Combine); 3] = [
    ("disk_used_max_pct", "disk_used_pct:", f64::max),
    ("net_rx_bytes_per_s", "net_rx_bytes_per_s:", |a, b| a + b),
    ("net_tx_bytes_per_s", "net_tx_bytes_per_s:", |a, b| a + b),
];

/// The series patterns to ask a node or the hub for so `metric` can be shown: a derived figure
/// needs all its parts (`disk_used_max_pct` -> `disk_used_pct:*`), any other metric itself.
pub fn series_patterns(metric: &str) -> Vec<String> {
    match DERIVED.iter().find(|(name, ..)| *name == metric) {
        Some((_, prefix, _)) => vec![format!("{prefix}*")],
        None => vec![metric.to_string()],
    }
}

/// The series patterns to ask for so `metrics` can be shown, each once, in order. Process
/// counts (`procs:NAME`) are not series: they are counted through the process agent.
pub fn series_of<'a>(metrics: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut patterns: Vec<String> = Vec::new();
    for pattern in metrics.into_iter().filter(|m| !m.starts_with(profile::PROCS)).flat_map(series_patterns) {
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    patterns
}

/// A host's group from its value of the group-by fact: the value as text, `(none)` where the
/// host lacks it.
pub fn group_text(value: Option<&Value>) -> String {
    value.and_then(fleet_protocol::filter::fact_text).filter(|t| !t.is_empty()).unwrap_or_else(|| NO_GROUP.into())
}

/// `metrics#latest`'s arguments: the metric patterns wanted (all when empty) and the fact to
/// group by, if any.
pub fn latest_args(metrics: &[String], group_by: Option<&str>) -> Map<String, Value> {
    let mut args = Map::new();
    if !metrics.is_empty() {
        args.insert("metrics".into(), json!(metrics.join(",")));
    }
    if let Some(fact) = group_by {
        args.insert("facts".into(), json!(fact));
    }
    args
}

/// One host's newest sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostMetrics {
    pub identity: String,
    /// When the node took the sample, in ms since the epoch (0: it had none yet).
    pub time_ms: u64,
    /// The value of the group-by fact, as text; `(none)` where the node lacks it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub metrics: BTreeMap<String, f64>,
    /// What the node's last sample could not read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl HostMetrics {
    /// A host from its `latest` reply data; adds `disk_used_max_pct` (the fullest mount) and the
    /// network rates summed over interfaces, where the node sent the parts.
    pub fn from_reply(identity: &str, data: &Value, group_by: Option<&str>) -> HostMetrics {
        let mut metrics: BTreeMap<String, f64> =
            data["metrics"].as_object().into_iter().flatten().filter_map(|(k, v)| Some((k.clone(), v.as_f64()?))).collect();
        for (name, prefix, combine) in DERIVED {
            let parts = metrics.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| *v);
            if let Some(v) = parts.reduce(combine) {
                metrics.insert(name.to_string(), v);
            }
        }
        HostMetrics {
            identity: identity.to_string(),
            time_ms: data["time_ms"].as_u64().unwrap_or(0),
            group: group_by.map(|f| group_text(data["facts"].get(f))),
            metrics,
            problems: data["problems"].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(String::from)).collect(),
        }
    }

    pub fn get(&self, metric: &str) -> Option<f64> {
        self.metrics.get(metric).copied()
    }
}

/// The hosts of a round's ok replies, by identity.
pub fn hosts(outcome: &Outcome, group_by: Option<&str>) -> Vec<HostMetrics> {
    let mut hosts: Vec<HostMetrics> = outcome
        .replies
        .iter()
        .filter(|r| r.reply.status.is_ok())
        .map(|r| HostMetrics::from_reply(&r.reply.sender, &r.reply.data, group_by))
        .collect();
    hosts.sort_by(|a, b| a.identity.cmp(&b.identity));
    hosts
}

/// Whether `a` is a worse value than `b` for `metric`.
pub fn worse(metric: &str, a: f64, b: f64) -> bool {
    if LOWER_IS_WORSE.contains(&metric) { a < b } else { a > b }
}

/// Two values of `metric`, worst first; a missing value comes after any value.
fn worst_first(metric: &str, a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) if worse(metric, x, y) => Ordering::Less,
        (Some(x), Some(y)) if worse(metric, y, x) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// The hosts ordered worst first by `metric` (hosts without it last, ties by name).
pub fn rank(hosts: &mut [HostMetrics], metric: &str) {
    hosts.sort_by(|a, b| worst_first(metric, a.get(metric), b.get(metric)).then_with(|| a.identity.cmp(&b.identity)));
}

/// One metric over a group: min, average, max, and the host with the worst value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    pub worst_host: String,
    pub worst: f64,
    /// Hosts that had the metric.
    pub hosts: usize,
}

/// Hosts sharing a fact value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub value: String,
    /// Member identities, worst first by the ranking metric.
    pub hosts: Vec<String>,
    /// The worst host by the ranking metric (None when no member has it).
    pub worst_host: Option<String>,
    pub metrics: BTreeMap<String, Spread>,
}

/// Groups hosts by their group value, each with its spread per metric; groups come worst first
/// by the worst value of `rank_by` (groups lacking it last, then by value).
pub fn group(hosts: &[HostMetrics], rank_by: &str) -> Vec<Group> {
    let mut by_value: BTreeMap<String, Vec<HostMetrics>> = BTreeMap::new();
    for h in hosts {
        by_value.entry(h.group.clone().unwrap_or_else(|| NO_GROUP.into())).or_default().push(h.clone());
    }
    let mut groups: Vec<Group> = by_value
        .into_iter()
        .map(|(value, mut members)| {
            rank(&mut members, rank_by);
            let mut metrics: BTreeMap<String, Spread> = BTreeMap::new();
            for h in &members {
                for (name, &v) in &h.metrics {
                    let s = metrics.entry(name.clone()).or_insert(Spread {
                        min: v,
                        avg: 0.0,
                        max: v,
                        worst_host: h.identity.clone(),
                        worst: v,
                        hosts: 0,
                    });
                    s.min = s.min.min(v);
                    s.max = s.max.max(v);
                    s.avg += v;
                    s.hosts += 1;
                    if worse(name, v, s.worst) {
                        (s.worst, s.worst_host) = (v, h.identity.clone());
                    }
                }
            }
            for s in metrics.values_mut() {
                s.avg /= s.hosts as f64;
            }
            let worst_host = metrics.get(rank_by).map(|s| s.worst_host.clone());
            Group { value, hosts: members.into_iter().map(|h| h.identity).collect(), worst_host, metrics }
        })
        .collect();
    groups.sort_by(|a, b| {
        let worst = |g: &Group| g.metrics.get(rank_by).map(|s| s.worst);
        worst_first(rank_by, worst(a), worst(b)).then_with(|| a.value.cmp(&b.value))
    });
    groups
}

/// A metric's value as people read it: bytes in binary units, rates per second, percentages
/// with one decimal, loads with two decimals, counts and other whole numbers whole.
pub fn value_text(metric: &str, v: f64) -> String {
    let base = metric.split(':').next().unwrap_or(metric);
    if base.ends_with("_bytes_per_s") {
        format!("{}/s", human_bytes(v.max(0.0) as u64))
    } else if base.ends_with("_bytes") {
        human_bytes(v.max(0.0) as u64)
    } else if base.ends_with("_pct") {
        format!("{v:.1}%")
    } else if base.starts_with("load") {
        format!("{v:.2}")
    } else if matches!(base, "processes" | "zombies" | "procs") || (v.fract() == 0.0 && v.abs() < 1e15) {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

pub mod profile;

#[cfg(test)]
mod tests;
