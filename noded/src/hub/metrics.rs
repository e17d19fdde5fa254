//! The hub's live metrics: nodes push each sample they take (`MetricSample`), the hub keeps the
//! last minutes of every node in bounded memory and forwards each sample only to the consoles
//! that subscribed (`MetricSubscribe`) to that node, with only the series they asked for. Live
//! updates wait in each console's outbox one per node, newest wins (see outbox.rs), so a slow
//! console never makes a queue grow.
//!
//! Memory is bounded three ways: samples per node (by age, `history_minutes`, and by count, one
//! per `min_interval` over that window), series per sample (`max_series`) and nodes
//! (`max_nodes`, the node heard from longest ago goes first). A stored value is a bfloat16 (the
//! top half of an `f32`: its range, about 3 significant digits) in one flat ring per node, so a
//! sample costs 8 bytes of time plus 2 bytes per series. That is plenty for the history a console
//! draws; a live update carries the node's own value, unrounded.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleet_protocol::codec::encode_message;
use fleet_protocol::transport::Peer;
use fleet_protocol::{ErrorNotice, HubStats, Message, MetricSample, MetricSubscribe, MetricUpdate};
use serde::Deserialize;
use tracing::debug;

use super::Hub;
use super::intern::Interner;
use crate::agents::metrics::glob_matches;

/// `[hub.metrics]` in the hub's config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HubMetricsConfig {
    /// Minutes of samples kept per node.
    pub history_minutes: f64,
    /// Seconds; a node's samples closer together than this are dropped (it bounds the samples
    /// a node can make the hub keep and forward).
    pub min_interval: f64,
    /// Most nodes whose history is kept.
    pub max_nodes: usize,
    /// Most series kept per sample (the first ones by name).
    pub max_series: usize,
}

impl Default for HubMetricsConfig {
    fn default() -> Self {
        HubMetricsConfig { history_minutes: 15.0, min_interval: 1.0, max_nodes: 10_000, max_series: 128 }
    }
}

impl HubMetricsConfig {
    fn window(&self) -> Duration {
        Duration::from_secs_f64(self.history_minutes.max(0.0) * 60.0)
    }

    /// Most samples one node keeps.
    fn max_samples(&self) -> usize {
        ((self.history_minutes.max(0.0) * 60.0 / self.min_interval.max(0.01)).ceil() as usize).max(1)
    }
}

/// Longest metric name kept, and most node names or series patterns in one subscription.
const MAX_NAME: usize = 200;
const MAX_PATTERNS: usize = 64;

/// A value kept in 16 bits: the top half of its `f32`, rounded to nearest (even on a tie).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bf16(u16);

impl Bf16 {
    const NAN: Bf16 = Bf16(0x7fc0);

    fn new(v: f64) -> Bf16 {
        let v = v as f32;
        if v.is_nan() {
            return Bf16::NAN;
        }
        let bits = v.to_bits();
        let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1));
        Bf16((rounded >> 16) as u16)
    }

    fn get(self) -> f64 {
        f64::from(f32::from_bits(u32::from(self.0) << 16))
    }
}

/// One node's samples: `times` (hub clock, ms) and, row by row, a value per name in `values`.
struct NodeSeries {
    names: Arc<[String]>,
    times: VecDeque<u64>,
    /// `values[i * names.len() + j]` is `names[j]` at `times[i]` (see [`Bf16`]); NaN where a
    /// sample lacked it.
    values: VecDeque<Bf16>,
    received: Instant,
}

impl NodeSeries {
    /// Bytes of samples held (the names are shared, and counted once by the store).
    fn bytes(&self) -> usize {
        self.times.capacity() * 8 + self.values.capacity() * 2
    }

    /// Re-lays the stored rows out for a new set of names (a mount or interface came or went).
    fn rename(&mut self, names: Arc<[String]>) {
        let old = std::mem::replace(&mut self.names, names);
        let rows = self.times.len();
        let mut values = VecDeque::with_capacity(self.times.capacity() * self.names.len());
        for row in 0..rows {
            for name in self.names.iter() {
                let v = old.binary_search(name).map_or(Bf16::NAN, |j| self.values[row * old.len() + j]);
                values.push_back(v);
            }
        }
        self.values = values;
    }

    /// The samples in columns, for the series `keep` accepts.
    fn update(&self, node: &str, keep: &dyn Fn(&str) -> bool) -> MetricUpdate {
        let width = self.names.len();
        let series = (self.names.iter().enumerate())
            .filter(|(_, n)| keep(n))
            .map(|(j, n)| {
                let column = (0..self.times.len()).map(|i| Some(self.values[i * width + j].get()).filter(|v| !v.is_nan())).collect();
                (n.clone(), column)
            })
            .collect();
        MetricUpdate { node: node.to_string(), times: self.times.iter().copied().collect(), series }
    }
}

/// Every node's recent samples, bounded in nodes, samples and series.
pub(super) struct MetricStore {
    config: HubMetricsConfig,
    nodes: HashMap<String, NodeSeries>,
    /// Each distinct list of series names, shared by every node that reports it (most nodes of
    /// a fleet report the same metrics).
    name_lists: Interner<String>,
    pub samples: u64,
    expired: Instant,
}

impl MetricStore {
    pub fn new(config: HubMetricsConfig) -> MetricStore {
        MetricStore { config, nodes: HashMap::new(), name_lists: Interner::default(), samples: 0, expired: Instant::now() }
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Bytes the stored samples take (capacities, so what is really held).
    pub fn bytes(&self) -> usize {
        let names: usize = self.name_lists.iter().map(|l| l.iter().map(|n| n.len() + 24).sum::<usize>()).sum();
        self.nodes.values().map(NodeSeries::bytes).sum::<usize>() + names
    }

    /// Stores a sample of `node` taken now. Returns false (nothing stored) when it is malformed
    /// or comes sooner than `min_interval` after the node's last one.
    pub fn push(&mut self, node: &str, mut sample: MetricSample, now_ms: u64) -> bool {
        let well_formed = sample.names.len() == sample.values.len()
            && sample.names.windows(2).all(|w| w[0] < w[1])
            && sample.names.iter().all(|n| !n.is_empty() && n.len() <= MAX_NAME);
        if !well_formed {
            return false;
        }
        sample.names.truncate(self.config.max_series);
        sample.values.truncate(self.config.max_series);
        let min_gap = (self.config.min_interval * 1000.0 * 0.9) as u64;
        if let Some(s) = self.nodes.get(node)
            && s.times.back().is_some_and(|&last| now_ms < last + min_gap)
        {
            return false;
        }
        if !self.nodes.contains_key(node) && self.nodes.len() >= self.config.max_nodes.max(1) {
            self.evict_oldest();
        }
        let max_samples = self.config.max_samples();
        let window_ms = self.config.window().as_millis() as u64;
        if self.nodes.get(node).is_none_or(|s| *s.names != sample.names[..]) {
            let names = self.name_lists.intern(std::mem::take(&mut sample.names));
            match self.nodes.get_mut(node) {
                Some(series) => series.rename(names),
                None => {
                    let series = NodeSeries { names, times: VecDeque::new(), values: VecDeque::new(), received: Instant::now() };
                    self.nodes.insert(node.to_string(), series);
                }
            }
        }
        let series = self.nodes.get_mut(node).expect("stored just above");
        let width = series.names.len();
        // Older than the window, or over the count: the oldest rows go.
        while series.times.front().is_some_and(|&t| t + window_ms < now_ms) || series.times.len() >= max_samples {
            series.times.pop_front();
            series.values.drain(..width);
        }
        if series.times.len() == series.times.capacity() {
            // Grow to what the node's pace will need over the window, not to twice the rows.
            let rows = series.times.len();
            let wanted = match (series.times.front(), series.times.back()) {
                (Some(a), Some(b)) if rows > 2 => {
                    let pace = ((b - a) / (rows as u64 - 1)).max(1);
                    ((window_ms / pace) as usize + 2).min(max_samples).max(rows + 1)
                }
                // Too few rows yet to tell the node's pace.
                _ => rows + 4,
            };
            series.times.reserve_exact(wanted - rows);
            series.values.reserve_exact((wanted - rows) * width);
        }
        series.times.push_back(now_ms);
        series.values.extend(sample.values.iter().map(|&v| Bf16::new(v)));
        series.received = Instant::now();
        self.samples += 1;
        true
    }

    fn evict_oldest(&mut self) {
        if let Some(oldest) = self.nodes.iter().min_by_key(|(_, s)| s.received).map(|(n, _)| n.clone()) {
            self.nodes.remove(&oldest);
        }
    }

    /// Forgets nodes with no sample inside the window (checked every few seconds).
    pub fn expire(&mut self) {
        if self.expired.elapsed() < Duration::from_secs(5) {
            return;
        }
        self.expired = Instant::now();
        let window = self.config.window();
        self.nodes.retain(|_, s| s.received.elapsed() <= window);
        // A name list no node uses any more.
        self.name_lists.prune();
    }

    /// The stored samples of `node` in columns, for the series `keep` accepts.
    fn history(&self, node: &str, keep: &dyn Fn(&str) -> bool) -> Option<MetricUpdate> {
        self.nodes.get(node).map(|s| s.update(node, keep))
    }
}

/// What one console asked to see.
pub(super) struct Subscription {
    all_nodes: bool,
    nodes: HashSet<String>,
    series: Vec<String>,
}

impl Subscription {
    fn wants_node(&self, node: &str) -> bool {
        self.all_nodes || self.nodes.contains(node)
    }

    fn wants_series(&self, name: &str) -> bool {
        self.series.is_empty() || self.series.iter().any(|p| glob_matches(p, name))
    }
}

/// The store plus who subscribed to what.
pub(super) struct Metrics {
    pub store: MetricStore,
    subscribers: HashMap<Peer, Subscription>,
}

impl Metrics {
    pub fn new(config: HubMetricsConfig) -> Metrics {
        Metrics { store: MetricStore::new(config), subscribers: HashMap::new() }
    }

    /// A console's link went: its subscription goes with it.
    pub fn forget_console(&mut self, peer: &Peer) {
        self.subscribers.remove(peer);
    }

    /// The metric figures of the hub's stats (the other fields left at their defaults).
    pub fn stats(&self, superseded: &std::sync::atomic::AtomicU64) -> HubStats {
        HubStats {
            metric_nodes: self.store.node_count() as u64,
            metric_bytes: self.store.bytes() as u64,
            metric_samples: self.store.samples,
            metric_superseded: superseded.load(Ordering::Relaxed),
            ..HubStats::default()
        }
    }
}

impl Hub {
    /// A node's new sample: stored, then sent to each console that watches that node, with the
    /// series it asked for. Only the node's live, registered link may speak for it.
    pub(super) fn on_metric_sample(&mut self, peer: &Peer, link: &str, sample: MetricSample) {
        if !self.nodes.get(link).is_some_and(|n| n.peer == *peer) {
            self.counters.dropped();
            debug!(node = %link, "metrics sample from a link that has not registered; dropped");
            return;
        }
        let now_ms = fleet_protocol::now_ms();
        let names = sample.names.clone();
        let values = sample.values.clone();
        if !self.metrics.store.push(link, sample, now_ms) {
            self.counters.dropped();
            return;
        }
        for (console, sub) in &self.metrics.subscribers {
            if !sub.wants_node(link) {
                continue;
            }
            let series =
                (names.iter().zip(&values)).filter(|(n, _)| sub.wants_series(n)).map(|(n, v)| (n.clone(), vec![Some(*v)])).collect();
            let update = MetricUpdate { node: link.to_string(), times: vec![now_ms], series };
            if let (Ok(frame), Some(session)) = (encode_message(&Message::MetricUpdate(update)), self.sessions.get(console)) {
                session.outbox.push_latest(link, Bytes::from(frame));
            }
        }
    }

    /// A console's subscription, replacing its previous one; with `history`, the stored samples
    /// of the nodes it names are queued at once.
    pub(super) async fn on_metric_subscribe(&mut self, peer: Peer, ask: MetricSubscribe) {
        let max_nodes = self.metrics.store.config.max_nodes;
        if ask.nodes.len() > max_nodes || ask.series.len() > MAX_PATTERNS || ask.series.iter().any(|p| p.len() > MAX_NAME) {
            self.counters.dropped();
            let message = format!(
                "metrics subscription refused: at most {max_nodes} nodes and {MAX_PATTERNS} series patterns of {MAX_NAME} characters"
            );
            return self.send(&peer, &Message::Error(ErrorNotice { message })).await;
        }
        if ask.nodes.is_empty() && !ask.all_nodes {
            self.metrics.forget_console(&peer);
            return;
        }
        let sub = Subscription { all_nodes: ask.all_nodes, nodes: ask.nodes.into_iter().collect(), series: ask.series };
        if ask.history {
            let nodes: Vec<String> =
                if sub.all_nodes { self.metrics.store.nodes.keys().cloned().collect() } else { sub.nodes.iter().cloned().collect() };
            for node in nodes {
                let Some(update) = self.metrics.store.history(&node, &|n| sub.wants_series(n)) else { continue };
                if let (Ok(frame), Some(session)) = (encode_message(&Message::MetricUpdate(update)), self.sessions.get(&peer)) {
                    session.outbox.push(Bytes::from(frame), true);
                }
            }
        }
        self.metrics.subscribers.insert(peer, sub);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_keep_three_significant_digits_and_their_gaps() {
        for v in [0.0, 1.26, 99.0, 57.3, 4096.0, 8.5e9, -3.25, 1e-3] {
            let back = Bf16::new(v).get();
            assert!((back - v).abs() <= v.abs() / 256.0, "{v} came back as {back}");
        }
        assert!(Bf16::new(f64::NAN).get().is_nan());
        assert!(Bf16::NAN.get().is_nan());
        assert_eq!(Bf16::new(f64::INFINITY).get(), f64::INFINITY);
    }

    fn sample(names: &[&str], values: &[f64]) -> MetricSample {
        MetricSample { time_ms: 0, names: names.iter().map(|n| n.to_string()).collect(), values: values.to_vec() }
    }

    fn store(history_minutes: f64, min_interval: f64, max_nodes: usize) -> MetricStore {
        MetricStore::new(HubMetricsConfig { history_minutes, min_interval, max_nodes, max_series: 128 })
    }

    #[test]
    fn a_node_keeps_only_its_window_of_samples() {
        // 1 minute at one sample a second: 60 samples at most, whatever the node sends.
        let mut s = store(1.0, 1.0, 10);
        for i in 0..1000u64 {
            assert!(s.push("web-01", sample(&["load1"], &[i as f64]), 1_000_000 + i * 1000));
        }
        let h = s.history("web-01", &|_| true).unwrap();
        assert_eq!(h.times.len(), 60);
        // Kept to about three significant digits (see Bf16).
        assert_eq!(h.series["load1"].last(), Some(&Some(1000.0)), "999 is kept as 1000");
        assert_eq!(h.series["load1"][0], Some(940.0));
        // Its memory stays what 60 rows need (plus the growth step), however long it runs.
        assert!(s.bytes() < 64 * 10 + 200, "{} bytes", s.bytes());
    }

    #[test]
    fn nodes_reporting_the_same_series_share_one_list_of_names() {
        let mut s = store(1.0, 1.0, 10);
        s.push("web-01", sample(&["cpu", "load1"], &[1.0, 2.0]), 1_000_000);
        s.push("web-02", sample(&["cpu", "load1"], &[3.0, 4.0]), 1_000_000);
        s.push("db-01", sample(&["cpu", "disk"], &[5.0, 6.0]), 1_000_000);
        assert!(Arc::ptr_eq(&s.nodes["web-01"].names, &s.nodes["web-02"].names));
        assert_eq!(s.name_lists.len(), 2);
        // A node whose series change moves to the other list; a list nobody uses goes.
        s.push("db-01", sample(&["cpu", "load1"], &[7.0, 8.0]), 1_002_000);
        assert!(Arc::ptr_eq(&s.nodes["web-01"].names, &s.nodes["db-01"].names));
        s.expired = Instant::now() - Duration::from_secs(10);
        s.expire();
        assert_eq!(s.name_lists.len(), 1);
        assert_eq!(s.history("db-01", &|_| true).unwrap().series["load1"], [None, Some(8.0)]);
    }

    #[test]
    fn a_slow_node_keeps_samples_by_age_and_reserves_for_its_pace() {
        // 15 minutes; a node sending every 5 s keeps 180 samples, not the 900 of the count bound.
        let mut s = store(15.0, 1.0, 10);
        for i in 0..1000u64 {
            s.push("web-01", sample(&["a", "b"], &[1.0, 2.0]), 1_000_000 + i * 5000);
        }
        let h = s.history("web-01", &|_| true).unwrap();
        assert_eq!(h.times.len(), 181);
        let node = &s.nodes["web-01"];
        assert!(node.times.capacity() < 200, "capacity {}", node.times.capacity());
    }

    #[test]
    fn a_thousand_nodes_for_fifteen_minutes_take_what_the_formula_says() {
        // The benchmark's load: 1,000 nodes sampling every 5 s, 25 series each, 15 minutes kept.
        let mut s = store(15.0, 1.0, 10_000);
        let names: Vec<String> = (0..25).map(|i| format!("series_{i:02}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        for t in 0..200u64 {
            for n in 0..1000 {
                s.push(&format!("node-{n:04}"), sample(&names, &[1.5; 25]), 1_000_000 + t * 5000 + n);
            }
        }
        // 181 rows of 8 + 25 * 2 bytes a node, and its names: about 11 MB in all.
        let per_node = s.bytes() / 1000;
        assert!((181 * 58..181 * 58 + 2000).contains(&per_node), "{per_node} bytes a node");
    }

    #[test]
    fn samples_faster_than_the_minimum_interval_are_dropped() {
        let mut s = store(1.0, 1.0, 10);
        assert!(s.push("web-01", sample(&["a"], &[1.0]), 10_000));
        assert!(!s.push("web-01", sample(&["a"], &[2.0]), 10_100));
        assert!(s.push("web-01", sample(&["a"], &[3.0]), 11_000));
        assert_eq!(s.samples, 2);
    }

    #[test]
    fn the_node_count_is_bounded_and_the_longest_silent_goes() {
        let mut s = store(1.0, 1.0, 3);
        for (i, n) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            std::thread::sleep(Duration::from_millis(2));
            s.push(n, sample(&["x"], &[1.0]), 1000 * i as u64);
        }
        let mut kept: Vec<&String> = s.nodes.keys().collect();
        kept.sort();
        assert_eq!(kept, ["c", "d", "e"]);
    }

    #[test]
    fn malformed_samples_and_extra_series_are_refused_or_cut() {
        let mut s = MetricStore::new(HubMetricsConfig { max_series: 2, ..HubMetricsConfig::default() });
        assert!(!s.push("n", sample(&["b", "a"], &[1.0, 2.0]), 1), "unsorted names");
        assert!(!s.push("n", sample(&["a"], &[1.0, 2.0]), 1), "values without names");
        assert!(!s.push("n", sample(&[""], &[1.0]), 1), "an empty name");
        assert!(s.push("n", sample(&["a", "b", "c"], &[1.0, 2.0, 3.0]), 1));
        assert_eq!(s.history("n", &|_| true).unwrap().series.keys().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn new_names_keep_the_history_of_the_old_ones() {
        let mut s = store(1.0, 1.0, 10);
        s.push("n", sample(&["a", "b"], &[1.0, 2.0]), 1000);
        s.push("n", sample(&["a", "c"], &[3.0, 4.0]), 2000);
        let h = s.history("n", &|n| n != "b").unwrap();
        assert_eq!(h.series["a"], [Some(1.0), Some(3.0)]);
        assert_eq!(h.series["c"], [None, Some(4.0)]);
        assert!(!h.series.contains_key("b"));
    }

    #[test]
    fn subscriptions_select_nodes_and_series() {
        let sub = Subscription { all_nodes: false, nodes: ["web-01".to_string()].into(), series: vec!["load*".into()] };
        assert!(sub.wants_node("web-01") && !sub.wants_node("web-02"));
        assert!(sub.wants_series("load1") && !sub.wants_series("mem_used_pct"));
    }
}
