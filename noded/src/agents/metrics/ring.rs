//! The node's metric history: a ring buffer of samples, bounded by a sample count fixed when it
//! is made (history minutes / interval), so memory never grows with uptime. Samples that carry the
//! same metric names share one name list, so a sample costs 8 bytes per value.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};

/// One sample: when it was taken and a value per metric name.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// ms since the epoch.
    pub time_ms: u64,
    /// Metric names, sorted; shared with the samples before it while the set of names is the same.
    pub names: Arc<Vec<String>>,
    /// `values[i]` is the value of `names[i]`.
    pub values: Vec<f64>,
}

impl Sample {
    /// The value of one metric.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.names.binary_search_by(|n| n.as_str().cmp(name)).ok().map(|i| self.values[i])
    }

    /// Every metric whose name `keep` accepts, as a JSON object.
    pub fn to_map(&self, keep: impl Fn(&str) -> bool) -> Map<String, Value> {
        self.names.iter().zip(&self.values).filter(|(n, _)| keep(n)).map(|(n, v)| (n.clone(), json!(v))).collect()
    }
}

/// The last `capacity` samples, oldest first.
#[derive(Debug)]
pub struct History {
    capacity: usize,
    samples: VecDeque<Sample>,
}

impl History {
    /// A history keeping at most `capacity` samples (at least one).
    pub fn new(capacity: usize) -> History {
        let capacity = capacity.max(1);
        History { capacity, samples: VecDeque::with_capacity(capacity) }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Appends a sample, dropping the oldest when full.
    pub fn push(&mut self, time_ms: u64, values: BTreeMap<String, f64>) {
        let same_names = self.samples.back().is_some_and(|last| last.names.len() == values.len() && last.names.iter().eq(values.keys()));
        let names = match self.samples.back() {
            Some(last) if same_names => last.names.clone(),
            _ => Arc::new(values.keys().cloned().collect()),
        };
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample { time_ms, names, values: values.into_values().collect() });
    }

    pub fn latest(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// The samples taken after `since_ms`, oldest first.
    pub fn since(&self, since_ms: u64) -> impl Iterator<Item = &Sample> {
        // Samples are in time order, so the first one to keep is found by bisection.
        let start = self.samples.partition_point(|s| s.time_ms <= since_ms);
        self.samples.range(start..)
    }

    /// The samples after `since_ms` in columns, as the `history` action returns them:
    /// `times` (ms since the epoch) and, per metric `keep` accepts, its values at those times
    /// (null where a sample lacks it). Columns keep a chart's data compact and ready to draw.
    pub fn columns(&self, since_ms: u64, keep: impl Fn(&str) -> bool) -> (Vec<u64>, BTreeMap<String, Vec<Option<f64>>>) {
        let samples: Vec<&Sample> = self.since(since_ms).collect();
        let mut series: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
        for (i, s) in samples.iter().enumerate() {
            for (name, v) in s.names.iter().zip(&s.values) {
                if !keep(name) {
                    continue;
                }
                let column = series.entry(name.clone()).or_insert_with(|| vec![None; samples.len()]);
                column[i] = Some(*v);
            }
        }
        (samples.iter().map(|s| s.time_ms).collect(), series)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn keeps_only_the_last_capacity_samples() {
        let mut h = History::new(3);
        for t in 1..=5u64 {
            h.push(t * 1000, values(&[("load1", t as f64)]));
        }
        assert_eq!(h.len(), 3);
        let times: Vec<u64> = h.since(0).map(|s| s.time_ms).collect();
        assert_eq!(times, [3000, 4000, 5000]);
        assert_eq!(h.latest().and_then(|s| s.get("load1")), Some(5.0));
        // Bounded for good: many more pushes never grow it.
        for t in 6..1000u64 {
            h.push(t * 1000, values(&[("load1", 0.0)]));
        }
        assert_eq!((h.len(), h.capacity()), (3, 3));
    }

    #[test]
    fn a_zero_capacity_still_keeps_the_latest_sample() {
        let mut h = History::new(0);
        h.push(1, values(&[("a", 1.0)]));
        h.push(2, values(&[("a", 2.0)]));
        assert_eq!((h.len(), h.latest().map(|s| s.time_ms)), (1, Some(2)));
    }

    #[test]
    fn samples_with_the_same_names_share_them() {
        let mut h = History::new(4);
        h.push(1, values(&[("a", 1.0), ("b", 2.0)]));
        h.push(2, values(&[("a", 3.0), ("b", 4.0)]));
        h.push(3, values(&[("a", 5.0), ("c", 6.0)]));
        let s: Vec<&Sample> = h.since(0).collect();
        assert!(Arc::ptr_eq(&s[0].names, &s[1].names));
        assert!(!Arc::ptr_eq(&s[1].names, &s[2].names));
        assert_eq!((s[2].get("c"), s[2].get("b")), (Some(6.0), None));
    }

    #[test]
    fn since_skips_older_samples_and_columns_fill_gaps_with_null() {
        let mut h = History::new(10);
        h.push(1000, values(&[("a", 1.0)]));
        h.push(2000, values(&[("a", 2.0), ("b", 20.0)]));
        h.push(3000, values(&[("a", 3.0)]));
        assert_eq!(h.since(2000).count(), 1);
        let (times, series) = h.columns(1000, |_| true);
        assert_eq!(times, [2000, 3000]);
        assert_eq!(series["a"], [Some(2.0), Some(3.0)]);
        assert_eq!(series["b"], [Some(20.0), None]);
        let (_, only_a) = h.columns(0, |n| n == "a");
        assert_eq!(only_a.keys().collect::<Vec<_>>(), ["a"]);
    }
}
