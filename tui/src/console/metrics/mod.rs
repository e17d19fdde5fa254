//! The Metrics view, the second view of the Inventory tab (`]`/`[`): live metrics of the hosts in
//! scope, as the hub forwards them. One sparkline per host for the selected metric, a line chart
//! of the selected host over the time window, and with `:group FACT` the hosts grouped by a fact,
//! each group with min/avg/max and its worst host, worst groups first. Profiles from the config
//! (`[profiles.NAME]`) set which graphs a host or a group shows, each under a heading naming
//! the profile and its graphs; `p` switches the selected host's or group's profile, `P` goes
//! back to the one its `match` picks.
//!
//! The view only keeps and draws samples: ranking, grouping and the derived metrics (fullest
//! mount, network rates summed over interfaces) are the client core's ([`fleet_client::metrics`]),
//! the same code `fleet metrics` prints with. While the view is on screen it holds one
//! subscription (the hosts in scope, the shown metric's series, with history); leaving it sends
//! an empty subscription, so the hub forwards nothing to a console that does not look.
//!
//! This file holds the state and how actions change it; `profiles` which profile each host
//! shows and the process counts, `keys` the key table, `draw` the drawing.

mod draw;
mod keys;
mod profiles;

#[cfg(test)]
mod profile_tests;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crossterm::event::KeyEvent;
use fleet_client::metrics::profile::{Matching, PROCS, Profile};
use fleet_client::metrics::{self as core, Group, HostMetrics};
use fleet_protocol::{MetricSubscribe, MetricUpdate};
use ratatui::Frame;
use ratatui::layout::Rect;
use serde_json::{Value, json};

use super::action::{Action, Nav, NetCommand, Notice, PanelId, Scope};
use super::component::{Component, PanelContext};
use super::keys::{Keymap, Mode};
use super::processes;
use super::theme::Theme;

pub use keys::key_table;
pub use profiles::{COUNT_EVERY, Shown};

/// The metrics `m`/`M` switch between: the columns `fleet metrics` shows by default.
pub const METRICS: &[&str] = core::DEFAULT_COLUMNS;

/// Samples kept per host: 15 minutes at one a second. The hub keeps the long history; the view
/// only needs what its widest window shows.
const KEEP: usize = 900;

/// Per host, per sample time (ms): the values of that sample by series name.
type Samples = BTreeMap<String, BTreeMap<u64, BTreeMap<String, f64>>>;

/// The time windows `z` zooms through, in seconds; the first is the default (the hub's and the
/// node's default history).
pub const WINDOWS: [u64; 3] = [900, 300, 60];

/// The view's own actions, wrapped by the shell as `Action::Metrics`.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    NextMetric,
    PrevMetric,
    /// `z`: the next time window.
    Zoom,
    /// `enter`: the Processes panel on the selected host.
    OpenProcesses,
    /// `:group FACT` groups the hosts by a fact; `:group` alone ungroups.
    Group(Option<String>),
    /// Samples of one node from the hub (its history at once, then one sample at a time).
    Update(MetricUpdate),
    /// The group-by fact's value on each answering node.
    Facts {
        fact: String,
        result: Result<HashMap<String, Value>, String>,
    },
    /// The config's profiles (at start).
    Profiles(Vec<Profile>),
    /// `p`: the next profile for the selected host or group.
    NextProfile,
    /// `:profile NAME` for every host and group; `P` and `:profile` alone: back to what each
    /// profile's `match` picks.
    UseProfile(Option<String>),
    /// The hosts each profile's `match` selects.
    Matching(Result<Matching, String>),
    /// The `procs:NAME` graphs' counts (graph -> host -> count), taken at `time_ms`.
    Counts {
        time_ms: u64,
        result: Result<BTreeMap<String, BTreeMap<String, u64>>, String>,
    },
}

/// The view's network work, wrapped by the shell as `NetCommand::Metrics`; `net.rs` runs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    /// Replace the console's metrics subscription (an empty one ends it).
    Subscribe(MetricSubscribe),
    /// rpcutil get_facts of `fact` on `nodes` -> [`Msg::Facts`].
    Facts { nodes: Vec<String>, fact: String },
    /// Which hosts these profiles' `match` selects -> [`Msg::Matching`].
    Matching(Vec<Profile>),
    /// Count processes by name (-> the hosts to count on) -> [`Msg::Counts`].
    Count(BTreeMap<String, Vec<String>>),
}

/// One line of the host list: a group's header, a profile's heading (its name, none where no
/// profile fits, and the graphs of the hosts below it), or a host.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Group(Group),
    Profile { name: Option<String>, graphs: Vec<String> },
    Host(HostMetrics),
}

pub struct MetricsView {
    theme: Theme,
    keys: Arc<Keymap>,
    /// On screen: the Inventory tab in front, showing this view.
    open: bool,
    scope: Scope,
    /// Every node the hub knows.
    all_nodes: Vec<String>,
    /// The members of a discovery filter, as the network task last read them.
    members: Option<(String, Vec<String>)>,
    metric: usize,
    window: usize,
    /// Per host, per sample time (ms): the metrics of that sample, raw series and the client
    /// core's derived ones.
    samples: Samples,
    group_by: Option<String>,
    /// The group-by fact's value per node (`Null` where a node lacks it).
    group_values: HashMap<String, Value>,
    group_error: Option<String>,
    /// The host under the cursor (by name: the ranking moves hosts around).
    selected: Option<String>,
    /// The subscription in force, as last sent.
    subscribed: Option<MetricSubscribe>,
    profiles: profiles::Profiles,
    list_top: Cell<usize>,
    page: Cell<usize>,
}

impl MetricsView {
    pub fn new(ctx: &PanelContext) -> MetricsView {
        MetricsView {
            theme: ctx.theme.clone(),
            keys: ctx.keys.clone(),
            open: false,
            scope: ctx.scope.clone(),
            all_nodes: Vec::new(),
            members: None,
            metric: 0,
            window: 0,
            samples: BTreeMap::new(),
            group_by: None,
            group_values: HashMap::new(),
            group_error: None,
            selected: None,
            subscribed: None,
            profiles: Default::default(),
            list_top: Cell::new(0),
            page: Cell::new(10),
        }
    }

    pub fn mode(&self) -> Mode {
        Mode::Metrics
    }

    /// The metric shown.
    pub fn metric(&self) -> &'static str {
        METRICS[self.metric]
    }

    pub fn window_secs(&self) -> u64 {
        WINDOWS[self.window]
    }

    pub fn group_by(&self) -> Option<&str> {
        self.group_by.as_deref()
    }

    pub fn subscription(&self) -> Option<&MetricSubscribe> {
        self.subscribed.as_ref()
    }

    /// The hosts in scope: the nodes picked in Discovery, else the filter's members, else every
    /// node.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts = match (&self.scope.targets, &self.members) {
            (Some(targets), _) => targets.clone(),
            (None, _) if self.scope.filter.is_empty() => self.all_nodes.clone(),
            (None, Some((filter, nodes))) if *filter == self.scope.filter => nodes.clone(),
            (None, _) => self.all_nodes.clone(),
        };
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// The subscription the view wants now: none while it is off screen.
    fn wanted(&self) -> MetricSubscribe {
        let hosts = self.hosts();
        if !self.open || hosts.is_empty() {
            return MetricSubscribe::default();
        }
        MetricSubscribe { nodes: hosts, all_nodes: false, series: self.wanted_series(), history: true }
    }

    /// Sends the wanted subscription when it differs from the one in force.
    fn resubscribe(&mut self) -> Option<Action> {
        let want = self.wanted();
        let empty = want.nodes.is_empty() && !want.all_nodes;
        if (empty && self.subscribed.is_none()) || self.subscribed.as_ref() == Some(&want) {
            return None;
        }
        self.subscribed = (!empty).then(|| want.clone());
        Some(NetCommand::Metrics(Cmd::Subscribe(want)).into())
    }

    /// Asks for the group-by fact of the hosts in scope that have no value yet.
    fn fetch_facts(&self) -> Option<Action> {
        let fact = self.group_by.clone()?;
        if !self.open {
            return None;
        }
        let nodes: Vec<String> = self.hosts().into_iter().filter(|h| !self.group_values.contains_key(h)).collect();
        (!nodes.is_empty()).then(|| NetCommand::Metrics(Cmd::Facts { nodes, fact }).into())
    }

    /// Shows or hides the view: subscribes when it opens, unsubscribes when it closes.
    pub fn set_open(&mut self, open: bool) -> Option<Action> {
        self.open = open;
        let facts = batch(self.fetch_facts(), self.fetch_matching());
        batch(self.resubscribe(), facts)
    }

    /// Merges one node's samples: each column becomes one sample of raw series plus what the
    /// client core derives from them.
    fn ingest(&mut self, update: MetricUpdate) {
        let kept = self.samples.entry(update.node.clone()).or_default();
        for (i, &time) in update.times.iter().enumerate() {
            let raw: serde_json::Map<String, Value> =
                update.series.iter().filter_map(|(name, column)| Some((name.clone(), json!(column.get(i).copied().flatten()?)))).collect();
            let host = HostMetrics::from_reply(&update.node, &json!({ "metrics": raw }), None);
            kept.entry(time).or_default().extend(host.metrics);
        }
        while kept.len() > KEEP {
            kept.pop_first();
        }
    }

    /// The newest sample time over the hosts in scope: the right edge of every graph (the
    /// nodes' clock, so a console on another clock still shows the newest samples).
    pub fn newest_ms(&self) -> Option<u64> {
        self.newest_in(&self.samples)
    }

    fn newest_in(&self, store: &Samples) -> Option<u64> {
        self.hosts().iter().filter_map(|h| store.get(h)?.keys().next_back().copied()).max()
    }

    /// Where `metric`'s values are kept: the process counts (`procs:NAME`, the console's clock,
    /// when each count came back) apart from the nodes' samples (their clock).
    fn store_of(&self, metric: &str) -> &Samples {
        if metric.starts_with(PROCS) { &self.profiles.counts } else { &self.samples }
    }

    /// `host`'s values of `metric` inside the window, oldest first, as (ms, value).
    pub fn points(&self, host: &str, metric: &str) -> Vec<(u64, f64)> {
        let store = self.store_of(metric);
        let (Some(kept), Some(newest)) = (store.get(host), self.newest_in(store)) else {
            return Vec::new();
        };
        let from = newest.saturating_sub(self.window_secs() * 1000);
        kept.range(from..).filter_map(|(t, m)| Some((*t, *m.get(metric)?))).collect()
    }

    /// Each host in scope with its newest sample (empty when none came yet) and its group.
    pub fn latest(&self) -> Vec<HostMetrics> {
        let group_by = self.group_by.as_deref();
        self.hosts()
            .into_iter()
            .map(|host| {
                let newest = self.samples.get(&host).and_then(|s| s.last_key_value());
                let (time_ms, mut metrics) = newest.map(|(t, m)| (*t, m.clone())).unwrap_or_default();
                if let Some((_, counts)) = self.profiles.counts.get(&host).and_then(|c| c.last_key_value()) {
                    metrics.extend(counts.clone());
                }
                let facts = group_by.map(|f| json!({ f: self.group_values.get(&host).cloned().unwrap_or(Value::Null) }));
                HostMetrics::from_reply(&host, &json!({ "time_ms": time_ms, "metrics": metrics, "facts": facts }), group_by)
            })
            .collect()
    }

    /// The host list: worst first by the shown metric; grouped, each group's header before its
    /// hosts, worst groups first (the client core's ranking and aggregates). With profiles, each
    /// group's hosts under its profile's heading; ungrouped, the hosts of one profile together
    /// (in the config's order, hosts no profile fits last), each under its profile's heading.
    pub fn rows(&self) -> Vec<Row> {
        let mut hosts = self.latest();
        let metric = self.metric();
        let shown = self.shown_profiles();
        let profile = |host: &str| shown.get(host).and_then(|s| s.profile);
        let heading = |p: Option<usize>| Row::Profile { name: p.map(|i| self.profiles()[i].name.clone()), graphs: self.graphs(p) };
        if self.group_by.is_none() {
            core::rank(&mut hosts, metric);
            if shown.is_empty() {
                return hosts.into_iter().map(Row::Host).collect();
            }
            // A stable sort keeps each profile's hosts worst first.
            hosts.sort_by_key(|h| profile(&h.identity).unwrap_or(usize::MAX));
            let mut rows = Vec::new();
            let mut last = None;
            for h in hosts {
                let p = profile(&h.identity);
                if last != Some(p) {
                    rows.push(heading(p));
                    last = Some(p);
                }
                rows.push(Row::Host(h));
            }
            return rows;
        }
        let mut by_name: HashMap<String, HostMetrics> = hosts.iter().map(|h| (h.identity.clone(), h.clone())).collect();
        let mut rows = Vec::new();
        for group in core::group(&hosts, metric) {
            let members = group.hosts.clone();
            rows.push(Row::Group(group));
            if !shown.is_empty() {
                rows.push(heading(members.first().and_then(|m| profile(m))));
            }
            rows.extend(members.iter().filter_map(|m| by_name.remove(m)).map(Row::Host));
        }
        rows
    }

    /// The hosts in list order.
    fn host_order(&self) -> Vec<String> {
        self.rows()
            .into_iter()
            .filter_map(|r| match r {
                Row::Host(h) => Some(h.identity),
                Row::Group(_) | Row::Profile { .. } => None,
            })
            .collect()
    }

    /// The host under the cursor.
    pub fn selected(&self) -> Option<String> {
        let order = self.host_order();
        self.selected.clone().filter(|s| order.contains(s)).or_else(|| order.into_iter().next())
    }

    fn nav(&mut self, nav: Nav) {
        let order = self.host_order();
        let pos = self.selected().and_then(|s| order.iter().position(|h| *h == s)).unwrap_or(0);
        self.selected = order.get(nav.step(pos, order.len(), self.page.get())).cloned();
    }

    fn switch_metric(&mut self, step: isize) -> Option<Action> {
        self.metric = (self.metric as isize + step).rem_euclid(METRICS.len() as isize) as usize;
        self.resubscribe()
    }

    /// Applies one of the view's messages.
    pub fn apply(&mut self, msg: Msg) -> Option<Action> {
        match msg {
            Msg::NextMetric => self.switch_metric(1),
            Msg::PrevMetric => self.switch_metric(-1),
            Msg::Zoom => {
                self.window = (self.window + 1) % WINDOWS.len();
                None
            }
            Msg::OpenProcesses => {
                let host = self.selected()?;
                let scope = Scope { filter: String::new(), targets: Some(vec![host.clone()]) };
                Some(Action::Batch(vec![
                    Action::Processes(processes::Msg::Scope(scope)),
                    Action::FocusPanel(PanelId::Processes),
                    Notice::info(format!("processes on {host}")),
                ]))
            }
            Msg::Group(fact) => {
                self.group_values.clear();
                self.group_error = None;
                self.group_by = fact;
                let facts = self.fetch_facts();
                batch(facts, self.profiles_changed())
            }
            Msg::Update(update) => {
                self.ingest(update);
                None
            }
            Msg::Facts { fact, result } => {
                if self.group_by.as_deref() != Some(fact.as_str()) {
                    return None;
                }
                match result {
                    Ok(values) => {
                        self.group_error = None;
                        self.group_values.extend(values);
                        // Nodes that did not answer are grouped under "(none)" rather than asked again.
                        for host in self.hosts() {
                            self.group_values.entry(host).or_insert(Value::Null);
                        }
                        // The groups decide the profiles shown.
                        self.profiles_changed()
                    }
                    Err(e) => {
                        self.group_error = Some(e);
                        None
                    }
                }
            }
            Msg::Profiles(list) => self.set_profiles(list),
            Msg::NextProfile => self.next_profile(),
            Msg::UseProfile(name) => self.use_profile(name),
            Msg::Matching(result) => self.matched(result),
            Msg::Counts { time_ms, result } => {
                self.counted(time_ms, result);
                None
            }
        }
    }
}

impl Component for MetricsView {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        self.on_key(key)
    }

    fn update(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::Metrics(msg) => self.apply(msg),
            Action::Nav(nav) => {
                self.nav(nav);
                None
            }
            Action::Nodes(mut nodes) => {
                nodes.sort();
                self.all_nodes = nodes;
                self.nodes_changed();
                let facts = batch(self.fetch_facts(), self.fetch_matching());
                batch(self.resubscribe(), facts)
            }
            Action::Tick(now) => self.count_due(now),
            Action::Members { filter, nodes } => {
                self.members = Some((filter, nodes));
                let facts = self.fetch_facts();
                batch(self.resubscribe(), facts)
            }
            Action::ScopeChanged(scope) => {
                self.scope = scope;
                let facts = self.fetch_facts();
                batch(self.resubscribe(), facts)
            }
            Action::ThemeChanged(theme) => {
                self.theme = *theme;
                None
            }
            _ => None,
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        self.render(frame, area);
    }
}

/// Two optional follow-ups as one.
fn batch(a: Option<Action>, b: Option<Action>) -> Option<Action> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Action::Batch(vec![a, b])),
        (a, b) => a.or(b),
    }
}
