//! metrics: the node's live metrics and their recent history. A sampler thread ([`sampler`])
//! reads the proc tree ([`procfs`]) and, where configured, collectd's unixsock ([`collectd`])
//! every interval into a bounded ring buffer ([`ring`]). `latest` answers with the newest sample
//! (plus the facts a console groups by), `history` with the buffer in columns, so a console that
//! opens sees the last minutes at once. Filters read the newest sample too: `metric.load1>8` is
//! the data term `metric().load1>8`, answered here on the node ([`install`]).

pub mod collectd;
pub mod procfs;
pub mod ring;
pub mod sampler;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fleet_ddl::Ddl;
use fleet_protocol::NodeView;
use fleet_protocol::filter::{DataSource, install_data_source, lookup_fact};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ActionError, ActionFuture, Agent, AgentContext, RequestMeta};
pub use sampler::Sampler;

/// The data function the filter term `metric.NAME` asks (`metric().NAME`).
pub const DATA_FUNCTION: &str = "metric";

/// `[metrics]` in noded.toml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Seconds between samples.
    pub interval: f64,
    /// Minutes of samples kept for `history`.
    pub history_minutes: f64,
    /// collectd's unixsock socket; its values are published beside noded's own. Unset: no collectd.
    pub collectd_socket: Option<PathBuf>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { interval: 5.0, history_minutes: 15.0, collectd_socket: None }
    }
}

/// Most samples a history may keep (a day at one per second), whatever the config says.
const MAX_HISTORY_SAMPLES: usize = 86_400;

impl MetricsConfig {
    /// The first bad value, as (key, what is wrong).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if !(self.interval.is_finite() && self.interval >= 0.1) {
            return Some(("metrics.interval", format!("must be a number of seconds, at least 0.1 (got {})", self.interval)));
        }
        if !(self.history_minutes.is_finite() && self.history_minutes > 0.0) {
            return Some(("metrics.history_minutes", format!("must be a positive number of minutes (got {})", self.history_minutes)));
        }
        None
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.interval.max(0.1))
    }

    /// How many samples cover `history_minutes`.
    pub fn history_samples(&self) -> usize {
        ((self.history_minutes * 60.0 / self.interval.max(0.1)).ceil() as usize).clamp(1, MAX_HISTORY_SAMPLES)
    }
}

/// Starts this process's sampler and makes `metric.NAME` filter terms answerable here, beside
/// the node's data plugins.
pub fn install(config: &crate::config::NodeConfig) {
    let sampler = Sampler::shared(config);
    install_data_source(Arc::new(WithMetrics { plugins: crate::data::NodeData::for_config(config), sampler }));
}

/// The node's data plugins plus `metric()`, whose fields are the newest sample's metrics.
struct WithMetrics {
    plugins: crate::data::NodeData,
    sampler: Arc<Sampler>,
}

impl DataSource for WithMetrics {
    fn query(&self, plugin: &str, arg: Option<&str>, node: &NodeView<'_>) -> Result<Map<String, Value>, String> {
        if plugin != DATA_FUNCTION {
            return self.plugins.query(plugin, arg, node);
        }
        if arg.is_some_and(|a| !a.is_empty()) {
            return Err("metric() takes no argument: write metric.NAME or metric().NAME".into());
        }
        let latest = self.sampler.latest().ok_or("no metrics sample yet")?;
        Ok(latest.to_map(|_| true))
    }
}

pub struct MetricsAgent {
    ddl: Arc<Ddl>,
    sampler: Arc<Sampler>,
}

impl MetricsAgent {
    pub fn for_config(config: &crate::config::NodeConfig) -> MetricsAgent {
        MetricsAgent::with_sampler(Sampler::shared(config))
    }

    pub fn with_sampler(sampler: Arc<Sampler>) -> MetricsAgent {
        MetricsAgent { ddl: super::builtin_ddl("metrics", fleet_ddl::builtin::METRICS), sampler }
    }

    /// `latest`: the newest sample's metrics that `patterns` select, and the facts asked for.
    fn latest(&self, node: &dyn AgentContext, args: &Map<String, Value>) -> Value {
        let patterns = list_input(args, "metrics");
        let status = self.sampler.status();
        let facts = node.facts();
        let wanted: Map<String, Value> =
            list_input(args, "facts").into_iter().map(|f| (f.clone(), lookup_fact(&facts, &f).cloned().unwrap_or(Value::Null))).collect();
        let sample = self.sampler.latest();
        let metrics = sample.as_ref().map(|s| s.to_map(|n| selected(&patterns, n))).unwrap_or_default();
        let mut problems = status.problems;
        if sample.is_none() {
            problems.push("no sample yet: the first is taken a second after noded starts".into());
        }
        json!({
            "time_ms": sample.as_ref().map_or(0, |s| s.time_ms),
            "interval_s": self.sampler.interval.as_secs_f64(),
            "metrics": metrics,
            "facts": wanted,
            "load1": sample.as_ref().and_then(|s| s.get("load1")),
            "mem_used_pct": sample.as_ref().and_then(|s| s.get("mem_used_pct")),
            "problems": problems,
            "sample_cost_us": status.mean_cost_us,
        })
    }

    /// `history`: the samples after `since_ms` in columns.
    fn history(&self, args: &Map<String, Value>) -> Value {
        let patterns = list_input(args, "metrics");
        let since = args.get("since_ms").and_then(Value::as_u64).unwrap_or(0);
        let (capacity, times, series) = self.sampler.with_history(|h| {
            let (times, series) = h.columns(since, |n| selected(&patterns, n));
            (h.capacity(), times, series)
        });
        json!({ "interval_s": self.sampler.interval.as_secs_f64(), "capacity": capacity, "times": times, "series": series })
    }
}

impl Agent for MetricsAgent {
    fn ddl(&self) -> &Ddl {
        &self.ddl
    }

    fn call(&self, node: Arc<dyn AgentContext>, _meta: RequestMeta, action: &str, args: Map<String, Value>) -> ActionFuture {
        let result = match action {
            "latest" => Ok(self.latest(&*node, &args)),
            "history" => Ok(self.history(&args)),
            other => Err(ActionError::new(fleet_protocol::Status::UnknownAction, format!("unknown action '{other}'"))),
        };
        Box::pin(async move { result })
    }
}

/// A comma-separated input as its non-empty items: metric name patterns, or fact names.
fn list_input(args: &Map<String, Value>, key: &str) -> Vec<String> {
    let text = args.get(key).and_then(Value::as_str).unwrap_or_default();
    text.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect()
}

/// Whether the metric `name` is selected: `patterns` (`*` matches any run of characters), none
/// selects all.
fn selected(patterns: &[String], name: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| glob_matches(p, name))
}

/// `*` matches any run of characters, everything else itself: `net_*:eth0`, `*/load/*`.
pub(crate) fn glob_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
