//! Profiles in the Metrics view: which profile each host or group shows (the client core's
//! [`pick`]/[`pick_for_group`] unless `p` or `:profile` chose one), the series those profiles
//! need, and their `procs:NAME` graphs, counted every [`COUNT_EVERY`] while the view is on
//! screen rather than on every frame.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use fleet_client::metrics::profile::{self, Matching, Profile, pick, pick_for_group};
use fleet_client::metrics::{self as core, group_text};

use super::{Cmd, MetricsView, Samples, batch};
use crate::console::action::{Action, NetCommand, Notice};

/// How often the `procs:NAME` graphs are counted again: a process list round per name.
pub const COUNT_EVERY: Duration = Duration::from_secs(5);

/// The config's profiles and what the view knows and chose about them.
#[derive(Debug, Default)]
pub(super) struct Profiles {
    pub(super) list: Vec<Profile>,
    /// The hosts each profile's `match` selects, as last discovered.
    matching: Matching,
    /// Whether the matching hosts were asked for since the node list last changed.
    matching_asked: bool,
    /// `p`'s choices (indexes into `list`): by host when ungrouped, by group value when grouped.
    by_host: BTreeMap<String, usize>,
    by_group: BTreeMap<String, usize>,
    /// `:profile NAME`: every host and group not chosen one by one.
    all: Option<usize>,
    pub(super) error: Option<String>,
    /// `procs:NAME` counts: per host, per count time (ms), per graph.
    pub(super) counts: Samples,
    /// A count round is out.
    counting: bool,
    /// When the last count round was asked for; `None`: count at the next tick.
    counted_at: Option<SystemTime>,
}

/// A profile as shown for a host or a group: which (none fits) and whether `p` or `:profile`
/// chose it rather than the profiles' `match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    pub profile: Option<usize>,
    pub chosen: bool,
}

impl Profiles {
    fn shown(&self, choice: Option<usize>, auto: impl FnOnce() -> Option<usize>) -> Shown {
        match choice.or(self.all) {
            Some(i) => Shown { profile: Some(i), chosen: true },
            None => Shown { profile: auto(), chosen: false },
        }
    }

    fn of_host(&self, host: &str) -> Shown {
        self.shown(self.by_host.get(host).copied(), || pick(&self.list, &self.matching, host))
    }

    fn of_group(&self, value: &str, hosts: &[String]) -> Shown {
        self.shown(self.by_group.get(value).copied(), || pick_for_group(&self.list, &self.matching, hosts))
    }

    /// The next profile after `now` in the config's order (the first when there is none).
    fn next_after(&self, now: Option<usize>) -> usize {
        now.map_or(0, |i| (i + 1) % self.list.len())
    }
}

impl MetricsView {
    /// The profiles from the config.
    pub fn profiles(&self) -> &[Profile] {
        &self.profiles.list
    }

    /// The hosts in scope by group value (grouped view) or each alone (ungrouped).
    fn groups_in_scope(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for host in self.hosts() {
            groups.entry(group_text(self.group_values.get(&host))).or_default().push(host);
        }
        groups
    }

    /// The profile each host in scope shows: grouped, its group's; ungrouped, its own.
    pub fn shown_profiles(&self) -> HashMap<String, Shown> {
        if self.profiles.list.is_empty() {
            return HashMap::new();
        }
        if self.group_by.is_none() {
            return self.hosts().into_iter().map(|h| (h.clone(), self.profiles.of_host(&h))).collect();
        }
        let mut out = HashMap::new();
        for (value, hosts) in self.groups_in_scope() {
            let shown = self.profiles.of_group(&value, &hosts);
            out.extend(hosts.into_iter().map(|h| (h, shown)));
        }
        out
    }

    /// The profile shown for `host` (its group's when grouped).
    pub fn profile_of(&self, host: &str) -> Shown {
        self.shown_profiles().get(host).copied().unwrap_or(Shown { profile: None, chosen: false })
    }

    /// The graphs a host with `profile` shows: the profile's, or the metric `m` picks.
    pub fn graphs(&self, profile: Option<usize>) -> Vec<String> {
        match profile.and_then(|i| self.profiles.list.get(i)) {
            Some(p) => p.columns(),
            None => vec![self.metric().to_string()],
        }
    }

    /// The series the view needs: the shown metric's and those of every profile shown.
    pub(super) fn wanted_series(&self) -> Vec<String> {
        let mut in_use: Vec<usize> = self.shown_profiles().into_values().filter_map(|s| s.profile).collect();
        in_use.sort();
        in_use.dedup();
        let graphed = in_use.into_iter().flat_map(|i| self.profiles.list[i].metric_names());
        core::series_of(std::iter::once(self.metric()).chain(graphed))
    }

    /// The process names to count and on which hosts: those whose shown profile has `procs:NAME`.
    fn wanted_counts(&self) -> BTreeMap<String, Vec<String>> {
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut shown: Vec<(String, Shown)> = self.shown_profiles().into_iter().collect();
        shown.sort_by(|a, b| a.0.cmp(&b.0));
        for (host, s) in shown {
            let Some(p) = s.profile.and_then(|i| self.profiles.list.get(i)) else { continue };
            for name in p.process_names() {
                wanted.entry(name.to_string()).or_default().push(host.clone());
            }
        }
        wanted
    }

    /// Asks which hosts each profile's `match` selects, once per node list while on screen.
    pub(super) fn fetch_matching(&mut self) -> Option<Action> {
        let with_match: Vec<Profile> = self.profiles.list.iter().filter(|p| p.matches.is_some()).cloned().collect();
        if !self.open || with_match.is_empty() || self.profiles.matching_asked {
            return None;
        }
        self.profiles.matching_asked = true;
        Some(NetCommand::Metrics(Cmd::Matching(with_match)).into())
    }

    /// The node list changed: who matches which profile must be asked again.
    pub(super) fn nodes_changed(&mut self) {
        self.profiles.matching_asked = false;
    }

    /// On a tick: counts the `procs:NAME` graphs again when [`COUNT_EVERY`] has passed (or the
    /// profiles shown changed), unless a count is still out.
    pub(super) fn count_due(&mut self, now: SystemTime) -> Option<Action> {
        let due = self.profiles.counted_at.is_none_or(|at| now.duration_since(at).unwrap_or_default() >= COUNT_EVERY);
        if !self.open || self.profiles.counting || !due {
            return None;
        }
        self.profiles.counted_at = Some(now);
        let wanted = self.wanted_counts();
        if wanted.is_empty() {
            return None;
        }
        self.profiles.counting = true;
        Some(NetCommand::Metrics(Cmd::Count(wanted)).into())
    }

    /// Stores a count round's answer, stamped with when it came back.
    pub(super) fn counted(&mut self, time_ms: u64, result: Result<BTreeMap<String, BTreeMap<String, u64>>, String>) {
        self.profiles.counting = false;
        match result {
            Ok(by_graph) => {
                self.profiles.error = None;
                for (graph, by_host) in by_graph {
                    for (host, n) in by_host {
                        let kept = self.profiles.counts.entry(host).or_default();
                        kept.entry(time_ms).or_default().insert(graph.clone(), n as f64);
                        while kept.len() > super::KEEP {
                            kept.pop_first();
                        }
                    }
                }
            }
            Err(e) => self.profiles.error = Some(format!("cannot count processes: {e}")),
        }
    }

    /// Stores which hosts each profile's `match` selects.
    pub(super) fn matched(&mut self, result: Result<Matching, String>) -> Option<Action> {
        match result {
            Ok(matching) => {
                self.profiles.error = None;
                self.profiles.matching = matching;
            }
            Err(e) => {
                self.profiles.error = Some(format!("cannot find the profiles' hosts: {e}"));
                // Asked again when the view opens next or the node list changes.
                self.profiles.matching_asked = false;
            }
        }
        self.profiles_changed()
    }

    /// The profiles shown may have changed: subscribe to their series, count their processes soon.
    pub(super) fn profiles_changed(&mut self) -> Option<Action> {
        self.profiles.counted_at = None;
        self.resubscribe()
    }

    /// `p`: the next profile for the selected host, or for its group when grouped (every host
    /// and group when nothing is selected).
    pub(super) fn next_profile(&mut self) -> Option<Action> {
        if self.profiles.list.is_empty() {
            return Some(Notice::error("no metric profiles: add [profiles.NAME] to the config file"));
        }
        // The cursor stays on the host, wherever its new profile puts it in the list.
        self.selected = self.selected();
        let said = match (self.selected(), &self.group_by) {
            (Some(host), Some(fact)) => {
                let value = group_text(self.group_values.get(&host));
                let hosts = self.groups_in_scope().remove(&value).unwrap_or_default();
                let next = self.profiles.next_after(self.profiles.of_group(&value, &hosts).profile);
                self.profiles.by_group.insert(value.clone(), next);
                format!("profile {} for {fact}={value}", self.profiles.list[next].name)
            }
            (Some(host), None) => {
                let next = self.profiles.next_after(self.profiles.of_host(&host).profile);
                self.profiles.by_host.insert(host.clone(), next);
                format!("profile {} for {host}", self.profiles.list[next].name)
            }
            (None, _) => {
                let next = self.profiles.next_after(self.profiles.all);
                self.profiles.all = Some(next);
                format!("profile {} for every host", self.profiles.list[next].name)
            }
        };
        batch(Some(Notice::info(said)), self.profiles_changed())
    }

    /// `P` and `:profile` alone: every host and group back to the profile its `match` picks;
    /// `:profile NAME`: NAME for every host and group.
    pub(super) fn use_profile(&mut self, name: Option<String>) -> Option<Action> {
        let all = match name {
            Some(name) => match profile::find(&self.profiles.list, &name) {
                Ok(found) => self.profiles.list.iter().position(|p| std::ptr::eq(p, found)),
                Err(e) => return Some(Notice::error(e.to_string())),
            },
            None => None,
        };
        self.profiles.by_host.clear();
        self.profiles.by_group.clear();
        self.profiles.all = all;
        let said = match all {
            Some(i) => format!("profile {} for every host", self.profiles.list[i].name),
            None => "profiles picked by their match".to_string(),
        };
        batch(Some(Notice::info(said)), self.profiles_changed())
    }

    /// Sets the config's profiles (at start).
    pub(super) fn set_profiles(&mut self, list: Vec<Profile>) -> Option<Action> {
        self.profiles = Profiles { list, ..Profiles::default() };
        let matching = self.fetch_matching();
        batch(matching, self.profiles_changed())
    }
}
