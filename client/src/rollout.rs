//! Rollouts an admin can trust: a reproducible random subset of the discovered nodes (`--limit`),
//! a sliding window of per-node requests (`--batch`, `--batch-sleep`), a canary batch that must
//! answer first (`--canary`), and a failure limit that stops the whole rollout (`--max-failures`):
//! once failures pass it, nothing more is sent, the requests in flight are waited for, and the
//! [`Report`] says where it stopped and which nodes were never asked.
//!
//! [`crate::round::run`] applies a spec's [`Rollout`], so every command and panel built on rounds
//! gets it. Each node of a staged rollout gets its own identity-addressed request (as `-I exact`
//! is addressed), collected by the round's own [`Collector`].

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use fleet_protocol::ReplyMode;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::error::Result;
use crate::link::Client;
use crate::round::{Collector, Ended, Outcome, Progress, Spec, new_request};

/// A number of nodes, or a share of them: `5` or `20%`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Count {
    Nodes(usize),
    Percent(f64),
}

impl std::str::FromStr for Count {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Count, String> {
        let t = s.trim();
        match t.strip_suffix('%') {
            Some(p) => match p.trim().parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => Ok(Count::Percent(p)),
                _ => Err(format!("'{s}' is not a share between 0% and 100%")),
            },
            None => t.parse::<usize>().map(Count::Nodes).map_err(|_| format!("'{s}' is not a number of nodes (N) or a share (N%)")),
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Nodes(n) => write!(f, "{n}"),
            Count::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Count {
    /// How many nodes of `total` a subset or a batch holds: a share rounds up, and never less
    /// than one node (a 10% batch of 5 nodes is 1 node).
    pub fn size_of(self, total: usize) -> usize {
        let n = match self {
            Count::Nodes(n) => n,
            Count::Percent(p) => (total as f64 * p / 100.0).ceil() as usize,
        };
        n.clamp(1, total.max(1))
    }

    /// How many failures of `total` nodes are tolerated: a share rounds down (10% of 15 is 1).
    pub fn tolerated_of(self, total: usize) -> usize {
        match self {
            Count::Nodes(n) => n,
            Count::Percent(p) => (total as f64 * p / 100.0).floor() as usize,
        }
    }
}

/// Which of the discovered nodes are asked, and in what stages.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rollout {
    /// Ask only this many of the discovered nodes (`--limit`, `--one`).
    pub limit: Option<Count>,
    /// Picks the subset: the same seed and nodes give the same subset (`--limit-seed`).
    pub seed: u64,
    /// At most this many requests in flight (`--batch`).
    pub batch: Option<Count>,
    /// Wait after a node answers before its slot sends the next (`--batch-sleep`).
    pub batch_sleep: Duration,
    /// Ask this many nodes first and wait for all their replies (`--canary`).
    pub canary: Option<Count>,
    /// Stop once more nodes than this failed or gave no reply (`--max-failures`).
    pub max_failures: Option<Count>,
}

/// The batches of a staged rollout, in the order they are sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Batch 1 is the canary when there is one.
    pub batches: Vec<Vec<String>>,
    pub canary: bool,
    /// Requests in flight at most, after the canary.
    pub window: usize,
}

impl Plan {
    /// The 1-based batch of every node.
    pub fn batch_of(&self) -> BTreeMap<String, usize> {
        self.batches.iter().enumerate().flat_map(|(i, b)| b.iter().map(move |n| (n.clone(), i + 1))).collect()
    }
}

impl Rollout {
    /// A seed for a subset nobody asked to reproduce.
    pub fn random_seed() -> u64 {
        rand::random::<u64>() % 1_000_000
    }

    /// Whether nodes are asked in stages (batches, a canary, a failure limit), one request each.
    pub fn is_staged(&self) -> bool {
        self.batch.is_some() || self.canary.is_some() || self.max_failures.is_some()
    }

    /// The subset `--limit` picks, in discovery order. Each node is ranked by a hash of the seed
    /// and its name, so the pick depends on the seed and the names only, not on the order
    /// discovery listed them in, and stays the same from one run (and fleet version) to the next.
    pub fn select(&self, nodes: Vec<String>) -> Vec<String> {
        let Some(limit) = self.limit else { return nodes };
        let keep = limit.size_of(nodes.len());
        if keep >= nodes.len() {
            return nodes;
        }
        let rank = |n: &str| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update(self.seed.to_le_bytes());
            h.update(n.as_bytes());
            h.finalize().into()
        };
        let mut ranked: Vec<([u8; 32], usize)> = nodes.iter().enumerate().map(|(i, n)| (rank(n), i)).collect();
        ranked.sort();
        let mut chosen: Vec<usize> = ranked.into_iter().take(keep).map(|(_, i)| i).collect();
        chosen.sort();
        chosen.into_iter().map(|i| nodes[i].clone()).collect()
    }

    /// The batches `nodes` are sent in: the canary first, then batches of the window's size.
    pub fn plan(&self, nodes: &[String]) -> Plan {
        let total = nodes.len();
        let canary = self.canary.map_or(0, |c| c.size_of(total)).min(total);
        let rest = &nodes[canary..];
        let window = self.batch.map_or(rest.len(), |b| b.size_of(total)).max(1);
        let mut batches = Vec::new();
        if canary > 0 {
            batches.push(nodes[..canary].to_vec());
        }
        batches.extend(rest.chunks(window).map(<[String]>::to_vec));
        Plan { batches, canary: canary > 0, window }
    }
}

/// Where a rollout stopped, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stopped {
    /// The batch of the node whose failure passed the limit.
    pub batch: usize,
    /// That node.
    pub node: String,
    /// Failures (failed replies and nodes without a reply) when it stopped.
    pub failures: usize,
    /// Failures tolerated (`--max-failures`).
    pub tolerated: usize,
    /// Why, in words.
    pub reason: String,
}

/// How a limited or staged round went.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// How many nodes matched, when `--limit` asked fewer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<usize>,
    /// The seed that picked the subset (`--limit-seed` repeats the pick).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The 1-based batch of every node of a staged rollout (batch 1 is the canary if any).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub batches: BTreeMap<String, usize>,
    pub batch_count: usize,
    pub canary: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
    /// Nodes that were never sent the request because the rollout stopped.
    pub never_asked: Vec<String>,
}

/// Runs a staged rollout over `nodes` (already discovered and limited): at most the window's
/// worth of requests in flight, a freed slot sending the next node after `batch_sleep`, the
/// canary batch answered in full before any other node is asked, and no request sent once the
/// failures passed `max_failures`. Discovery fields of the outcome are the caller's to fill in.
pub(crate) async fn execute(
    client: &mut Client,
    spec: &Spec,
    rollout: &Rollout,
    nodes: &[String],
    on: &mut impl FnMut(&Progress),
) -> Result<Outcome> {
    let plan = rollout.plan(nodes);
    let batch_of = plan.batch_of();
    let tolerated = rollout.max_failures.map(|c| c.tolerated_of(nodes.len()));
    let mut queue: VecDeque<(String, usize)> =
        plan.batches.iter().enumerate().flat_map(|(i, b)| b.iter().map(move |n| (n.clone(), i + 1))).collect();
    let canary_len = if plan.canary { plan.batches[0].len() } else { 0 };
    // When each free slot may send: the canary's slots first, the window's once it answered.
    let now = Instant::now();
    let mut slots: VecDeque<Instant> = std::iter::repeat_n(now, if plan.canary { canary_len } else { plan.window }).collect();
    let mut canary_left = canary_len;
    let mut collector = Collector::new(nodes);
    let mut first_id = None;
    let (mut in_flight, mut failures) = (0usize, 0usize);
    let mut stopped: Option<Stopped> = None;
    loop {
        while stopped.is_none() && collector.hub_lost.is_none() {
            let Some((node, batch)) = queue.front().cloned() else { break };
            let gate_open = batch == 1 || canary_left == 0;
            if !gate_open || slots.front().is_none_or(|t| *t > Instant::now()) {
                break;
            }
            slots.pop_front();
            queue.pop_front();
            let req = new_request(spec, &spec.agent, &spec.action, spec.args.clone(), vec![node.clone()], spec.timeout, ReplyMode::Normal);
            first_id.get_or_insert_with(|| req.id.clone());
            collector.send(client, req, vec![node], Instant::now() + spec.timeout).await?;
            in_flight += 1;
        }
        if in_flight == 0 && (queue.is_empty() || stopped.is_some() || collector.hub_lost.is_some()) {
            break;
        }
        // Wake for the next free slot too, unless nothing more will be sent.
        let sending = stopped.is_none() && !queue.is_empty();
        let until = match slots.front() {
            Some(t) if sending => *t,
            _ => Instant::now() + Duration::from_secs(86_400),
        };
        for ended in collector.step(client, until, on).await? {
            in_flight -= 1;
            let node = match &ended {
                Ended::Replied { ok: true, .. } => {
                    free_slot(&mut slots, &mut canary_left, plan.window, rollout.batch_sleep);
                    continue;
                }
                Ended::Replied { node, .. } | Ended::Down(node) | Ended::NoReply(node) => node.clone(),
            };
            failures += 1;
            free_slot(&mut slots, &mut canary_left, plan.window, rollout.batch_sleep);
            if let Some(tolerated) = tolerated
                && failures > tolerated
                && stopped.is_none()
            {
                let batch = batch_of.get(&node).copied().unwrap_or(0);
                let reason = format!(
                    "{failures} failure(s) passed --max-failures {} ({tolerated} tolerated) at {node} in batch {batch} of {}",
                    rollout.max_failures.map(|c| c.to_string()).unwrap_or_default(),
                    plan.batches.len()
                );
                stopped = Some(Stopped { batch, node, failures, tolerated, reason });
            }
        }
        if let Some(lost) = &collector.hub_lost
            && stopped.is_none()
            && !queue.is_empty()
        {
            let batch = queue.front().map_or(0, |(_, b)| *b);
            let reason = format!("every hub link was lost before batch {batch}: {lost}");
            stopped = Some(Stopped { batch, node: String::new(), failures, tolerated: tolerated.unwrap_or(failures), reason });
        }
    }
    let blank = Outcome {
        request_id: first_id.unwrap_or_default(),
        discovered: Vec::new(),
        replies: Vec::new(),
        no_reply: Vec::new(),
        down: Vec::new(),
        hub_lost: None,
        discovery_ms: 0.0,
        elapsed_ms: 0.0,
        resent: 0,
        rollout: None,
    };
    let mut o = collector.finish(client, blank);
    o.rollout = Some(Report {
        batches: batch_of,
        batch_count: plan.batches.len(),
        canary: plan.canary,
        stopped,
        never_asked: queue.into_iter().map(|(n, _)| n).collect(),
        ..Report::default()
    });
    Ok(o)
}

/// A node's part ended: its slot may send again after the sleep. The canary's slots are not
/// reused; when the last canary node ends, the window's slots open, after the sleep.
fn free_slot(slots: &mut VecDeque<Instant>, canary_left: &mut usize, window: usize, sleep: Duration) {
    let at = Instant::now() + sleep;
    if *canary_left > 0 {
        *canary_left -= 1;
        if *canary_left == 0 {
            *slots = std::iter::repeat_n(at, window).collect();
        }
    } else {
        slots.push_back(at);
    }
}

impl Report {
    /// A round that asked `seed`'s subset of `matched` nodes at once.
    pub fn limited(matched: usize, seed: u64) -> Report {
        Report { matched: Some(matched), seed: Some(seed), ..Report::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("web-{i:02}")).collect()
    }

    #[test]
    fn counts_parse() {
        assert_eq!("5".parse::<Count>(), Ok(Count::Nodes(5)));
        assert_eq!(" 25% ".parse::<Count>(), Ok(Count::Percent(25.0)));
        assert_eq!("0".parse::<Count>(), Ok(Count::Nodes(0)));
        assert!("0%".parse::<Count>().unwrap_err().contains("between 0% and 100%"));
        assert!("101%".parse::<Count>().is_err());
        assert!("five".parse::<Count>().unwrap_err().contains("'five' is not a number of nodes"));
        assert!("-1".parse::<Count>().is_err());
        assert_eq!(Count::Percent(12.5).to_string(), "12.5%");
    }

    #[test]
    fn shares_round_up_for_sizes_and_down_for_tolerance() {
        assert_eq!(Count::Percent(10.0).size_of(5), 1);
        assert_eq!(Count::Percent(50.0).size_of(5), 3);
        assert_eq!(Count::Percent(100.0).size_of(7), 7);
        assert_eq!(Count::Nodes(10).size_of(3), 3);
        assert_eq!(Count::Percent(10.0).tolerated_of(15), 1);
        assert_eq!(Count::Percent(10.0).tolerated_of(9), 0);
        assert_eq!(Count::Nodes(2).tolerated_of(9), 2);
    }

    #[test]
    fn the_same_seed_picks_the_same_subset_whatever_the_order() {
        let r = Rollout { limit: Some(Count::Nodes(3)), seed: 42, ..Rollout::default() };
        let a = r.select(names(10));
        let mut reversed = names(10);
        reversed.reverse();
        let mut b = r.select(reversed);
        b.sort();
        assert_eq!(a.len(), 3);
        assert_eq!(a, b);
        let other = Rollout { seed: 43, ..r.clone() };
        let picks: std::collections::BTreeSet<Vec<String>> =
            (0..20).map(|s| Rollout { seed: s, ..other.clone() }.select(names(10))).collect();
        assert!(picks.len() > 1, "different seeds pick different subsets");
        assert_eq!(Rollout { limit: Some(Count::Percent(50.0)), ..r }.select(names(5)).len(), 3);
        assert_eq!(Rollout::default().select(names(4)), names(4));
    }

    #[test]
    fn plans_put_the_canary_first_then_batches() {
        let r = Rollout { canary: Some(Count::Nodes(1)), batch: Some(Count::Nodes(2)), ..Rollout::default() };
        let p = r.plan(&names(6));
        assert!(p.canary);
        assert_eq!(p.batches, vec![names(1), names(3)[1..].to_vec(), names(5)[3..].to_vec(), names(6)[5..].to_vec()]);
        assert_eq!(p.window, 2);
        assert_eq!(p.batch_of()["web-04"], 3);
        let no_batch = Rollout { canary: Some(Count::Nodes(2)), ..Rollout::default() }.plan(&names(5));
        assert_eq!((no_batch.batches.len(), no_batch.window), (2, 3));
        let only_batches = Rollout { batch: Some(Count::Percent(50.0)), ..Rollout::default() }.plan(&names(5));
        assert_eq!(only_batches.batches.iter().map(Vec::len).collect::<Vec<_>>(), [3, 2]);
    }
}
