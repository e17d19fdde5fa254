//! The metrics agent on a node built in memory, its sampler reading a fake proc tree: `latest`
//! with selected metrics and facts, `history` in columns, the config's bounds, and `metric.NAME`
//! filter terms answered from the newest sample.

use std::sync::Arc;

use fleet_protocol::keys::{KeyPair, Keyring};
use serde_json::{Value, json};

use super::fake::fake_proc;
use super::*;
use crate::agents::AgentSet;
use crate::audit::Audit;
use crate::config::NodeConfig;
use crate::node::NodeState;
use crate::security::Security;

/// A sampler over a fake proc tree with load 9.5, sampled twice (so CPU % is there too).
fn sampled(dir: &std::path::Path) -> Arc<Sampler> {
    fake_proc(dir, "9.50 4.00 1.25", "100 0 50 800 50 0 0 0 0 0", (0, 0));
    let sampler = Arc::new(Sampler::new(&MetricsConfig { interval: 1.0, history_minutes: 1.0, collectd_socket: None }, dir.into()));
    let mut reader = sampler.reader();
    sampler.sample_once(&mut reader);
    fake_proc(dir, "9.50 4.00 1.25", "150 0 60 840 50 0 0 0 0 0", (0, 0));
    sampler.sample_once(&mut reader);
    sampler
}

fn node(dir: &std::path::Path, sampler: Arc<Sampler>) -> Arc<NodeState> {
    let audit = Audit::open(dir.join("audit.log"), 1 << 20, 1).unwrap();
    let security =
        Security::in_memory(Arc::new(KeyPair::generate()), None, Keyring::default(), std::path::Path::new("/nonexistent"), true, audit);
    let mut agents = AgentSet::builtin();
    agents.insert(Arc::new(MetricsAgent::with_sampler(sampler)));
    NodeState::new("web-01".into(), NodeConfig::default(), json!({"role": "web", "dc": {"name": "fra1"}}), Vec::new(), agents, security)
}

async fn call(node: &Arc<NodeState>, action: &str, args: Value) -> Value {
    let agent = node.agents().get("metrics").unwrap().clone();
    let mut args = args.as_object().cloned().unwrap_or_default();
    fleet_ddl::validate_request(agent.ddl(), action, &mut args).unwrap();
    agent.call(node.clone(), RequestMeta::default(), action, args).await.unwrap()
}

#[tokio::test]
async fn latest_returns_the_selected_metrics_and_the_facts_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let node = node(tmp.path(), sampled(tmp.path()));
    let all = call(&node, "latest", json!({})).await;
    assert_eq!(all["load1"], json!(9.5));
    assert_eq!(all["metrics"]["zombies"], json!(1.0));
    assert_eq!(all["metrics"]["cpu_user_pct"], json!(50.0));
    assert_eq!(all["problems"], json!([]));
    assert!(all["time_ms"].as_u64().unwrap() > 0);

    let some = call(&node, "latest", json!({"metrics": "load*, zombies", "facts": "role,dc.name,missing"})).await;
    let names: Vec<&String> = some["metrics"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["load1", "load15", "load5", "zombies"]);
    assert_eq!(some["facts"], json!({"role": "web", "dc.name": "fra1", "missing": null}));
}

#[tokio::test]
async fn history_returns_the_ring_buffer_in_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let sampler = sampled(tmp.path());
    let node = node(tmp.path(), sampler.clone());
    let h = call(&node, "history", json!({"metrics": "load1,cpu_busy_pct"})).await;
    assert_eq!(h["capacity"], json!(60));
    assert_eq!(h["times"].as_array().unwrap().len(), 2);
    assert_eq!(h["series"]["load1"], json!([9.5, 9.5]));
    // CPU % needs two reads: the first sample has none.
    assert_eq!(h["series"]["cpu_busy_pct"][0], Value::Null);
    let last = h["times"][1].as_u64().unwrap();
    let newer = call(&node, "history", json!({"since_ms": last})).await;
    assert_eq!(newer["times"], json!([]));
}

#[test]
fn metric_terms_are_answered_from_the_newest_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let source = WithMetrics { plugins: crate::data::NodeData::default(), sampler: sampled(tmp.path()) };
    let facts = json!({});
    let view = NodeView { identity: "web-01", facts: &facts, classes: &[], agents: vec![] };
    let holds = |expr: &str| fleet_protocol::filter::parse_compound(expr).unwrap().matches_with(&view, &source);
    assert!(holds("metric.load1>8"));
    assert!(!holds("metric.load1>10"));
    assert!(holds("metric.zombies=1 and metric().load5<5"));
    assert!(!holds("metric.no_such_metric>0"));
    // The other data plugins still answer.
    assert!(holds("collective(\"fleet\").member=false"));
}

#[test]
fn config_bounds() {
    let c = MetricsConfig::default();
    assert_eq!((c.problem(), c.history_samples()), (None, 180));
    let fast = MetricsConfig { interval: 0.01, ..MetricsConfig::default() };
    assert_eq!(fast.problem().map(|p| p.0), Some("metrics.interval"));
    let none = MetricsConfig { history_minutes: 0.0, ..MetricsConfig::default() };
    assert_eq!(none.problem().map(|p| p.0), Some("metrics.history_minutes"));
    let huge = MetricsConfig { interval: 0.1, history_minutes: 1e9, collectd_socket: None };
    assert_eq!(huge.history_samples(), MAX_HISTORY_SAMPLES);
}

#[test]
fn globs() {
    for (p, n, want) in [
        ("load1", "load1", true),
        ("load*", "load15", true),
        ("load*", "xload1", false),
        ("net_*:eth0", "net_rx_bytes_per_s:eth0", true),
        ("net_*:eth0", "net_rx_bytes_per_s:eth1", false),
        ("*/load/*", "h/load/load:shortterm", true),
        ("*", "anything", true),
        ("a*b*c", "abc", true),
        ("a*b*c", "acb", false),
        ("ab*ba", "aba", false),
    ] {
        assert_eq!(glob_matches(p, n), want, "{p} vs {n}");
    }
}
