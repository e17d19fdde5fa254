//! The Inventory panel: every node on the left; on the right, tabs for the selected node's Facts
//! (a tree of nested facts, foldable and searchable), Agents (name, version, description and
//! actions, from rpcutil agent_inventory), Classes and Stats (rpcutil daemon_stats: counters,
//! uptime, hubs). Data is fetched when a node is first shown and again when its registration
//! changes (a `NodeChanged` event) or on `r`. `]` past the last tab (Stats), or `m`, switches
//! to the Metrics view ([`super::metrics`]), which shares the tab because eight titled tabs do
//! not fit 80 columns; there `]` goes on to Facts and `[` back to Stats.
//!
//! This file holds the panel's state and how actions change it; `keys` its key table and
//! `draw` the drawing.

mod draw;
mod keys;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crossterm::event::KeyEvent;
use fleet_protocol::Event;
use ratatui::Frame;
use ratatui::layout::Rect;
use serde_json::Value;

use super::action::{Action, Nav, NetCommand, PanelId};
use super::component::{Component, PanelContext};
use super::keys::{Keymap, Mode};
use super::metrics::MetricsView;
use super::theme::Theme;
use super::widgets::search::Search;
use fleet_client::format::value_text;

pub use keys::key_table;

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    FocusDetails,
    FocusNodes,
    NextTab,
    PrevTab,
    /// Fold or unfold the fact branch under the cursor.
    Fold,
    Refresh,
    /// The Metrics view (`m`, `:group`).
    ShowMetrics,
    /// An answer of the network task for `node`.
    Fetched {
        node: String,
        part: Part,
        result: Result<Value, String>,
    },
}

/// The three rpcutil actions the panel reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// rpcutil inventory: facts, classes, agents, collectives, version.
    Inventory,
    /// rpcutil agent_inventory.
    Agents,
    /// rpcutil daemon_stats.
    Stats,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Inventory, Part::Agents, Part::Stats];

    pub fn action(self) -> &'static str {
        match self {
            Part::Inventory => "inventory",
            Part::Agents => "agent_inventory",
            Part::Stats => "daemon_stats",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Facts,
    Agents,
    Classes,
    Stats,
}

impl Tab {
    const ALL: [Tab; 4] = [Tab::Facts, Tab::Agents, Tab::Classes, Tab::Stats];
    fn title(self) -> &'static str {
        match self {
            Tab::Facts => "Facts",
            Tab::Agents => "Agents",
            Tab::Classes => "Classes",
            Tab::Stats => "Stats",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fetch {
    Loading,
    Ready(Value),
    Failed(String),
}

/// What the panel knows of one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeInfo {
    pub inventory: Option<Fetch>,
    pub agents: Option<Fetch>,
    pub stats: Option<Fetch>,
}

impl NodeInfo {
    fn slot(&mut self, part: Part) -> &mut Option<Fetch> {
        match part {
            Part::Inventory => &mut self.inventory,
            Part::Agents => &mut self.agents,
            Part::Stats => &mut self.stats,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Focus {
    Nodes,
    Details,
}

/// One line of the fact tree.
#[derive(Debug, Clone, PartialEq)]
pub struct FactLine {
    /// Dotted path, e.g. `os.family`.
    pub path: String,
    pub depth: usize,
    pub key: String,
    /// The value of a leaf; `None` for a branch.
    pub value: Option<String>,
    pub folded: bool,
}

/// The visible lines of a fact tree: branches folded in `folded` hide their children unless a
/// search is on, which shows matching leaves and their ancestors.
pub fn fact_lines(facts: &Value, folded: &HashSet<String>, search: &Search) -> Vec<FactLine> {
    fn walk(prefix: &str, depth: usize, v: &Value, folded: &HashSet<String>, search: &Search, out: &mut Vec<FactLine>) -> bool {
        let Some(map) = v.as_object() else {
            return false;
        };
        let mut any = false;
        for (k, child) in map {
            let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            if child.is_object() && child.as_object().is_some_and(|m| !m.is_empty()) {
                let at = out.len();
                let is_folded = folded.contains(&path) && !search.active();
                out.push(FactLine { path: path.clone(), depth, key: k.clone(), value: None, folded: is_folded });
                let matched_self = search.active() && search.matches([path.as_str()]);
                let mut below = Vec::new();
                let matched_below = walk(&path, depth + 1, child, folded, search, &mut below);
                if search.active() && !matched_self && !matched_below {
                    out.truncate(at);
                    continue;
                }
                if matched_self && !matched_below && search.active() {
                    // The branch itself matches: show all of it.
                    walk(&path, depth + 1, child, folded, &Search::default(), &mut below);
                }
                if !is_folded {
                    out.extend(below);
                }
                any = true;
            } else {
                let value = match child {
                    Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
                    Value::Object(_) => "{}".to_string(),
                    other => value_text(other),
                };
                if search.matches([path.as_str(), value.as_str()]) {
                    out.push(FactLine { path, depth, key: k.clone(), value: Some(value), folded: false });
                    any = true;
                }
            }
        }
        any
    }
    let mut out = Vec::new();
    walk("", 0, facts, folded, search, &mut out);
    out
}

pub use fleet_client::format::{uptime as format_uptime, utc_datetime as format_utc};

/// Which of the tab's two views is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Inventory,
    Metrics,
}

pub struct Inventory {
    theme: Theme,
    view: View,
    metrics: MetricsView,
    keys: Arc<Keymap>,
    nodes: Vec<String>,
    /// The node under the cursor (kept by name: the list changes as nodes come and go).
    selected: Option<String>,
    node_search: Search,
    focus: Focus,
    tab: Tab,
    cache: HashMap<String, NodeInfo>,
    folded: HashSet<String>,
    fact_search: Search,
    detail_cursor: usize,
    /// Whether the panel is on screen: data is only fetched for a panel someone looks at.
    shown: bool,
    /// daemon_stats outputs and their labels, from the rpcutil DDL.
    stat_labels: Vec<(String, String)>,
    list_top: std::cell::Cell<usize>,
    detail_top: std::cell::Cell<usize>,
    page: std::cell::Cell<usize>,
}

impl Inventory {
    pub fn new(ctx: &PanelContext) -> Inventory {
        let stat_labels = fleet_client::ddl::find("rpcutil")
            .ok()
            .and_then(|d| d.action("daemon_stats").cloned())
            .map(|a| a.output.into_iter().map(|(k, o)| (k, o.display_as)).collect())
            .unwrap_or_default();
        Inventory {
            theme: ctx.theme.clone(),
            view: View::Inventory,
            metrics: MetricsView::new(ctx),
            keys: ctx.keys.clone(),
            nodes: Vec::new(),
            selected: None,
            node_search: Search::default(),
            focus: Focus::Nodes,
            tab: Tab::Facts,
            cache: HashMap::new(),
            folded: HashSet::new(),
            fact_search: Search::default(),
            detail_cursor: 0,
            shown: false,
            stat_labels,
            list_top: Default::default(),
            detail_top: Default::default(),
            page: std::cell::Cell::new(10),
        }
    }

    pub fn mode(&self) -> Mode {
        if self.view == View::Metrics {
            return self.metrics.mode();
        }
        if self.search().editing() { Mode::Search } else { Mode::Inventory }
    }

    pub fn view(&self) -> View {
        self.view
    }

    pub fn metrics(&self) -> &MetricsView {
        &self.metrics
    }

    /// Shows `view`; the Metrics view subscribes while it is on screen and unsubscribes when not.
    fn show_view(&mut self, view: View) -> Option<Action> {
        self.view = view;
        self.metrics.set_open(self.shown && view == View::Metrics)
    }

    pub fn selected(&self) -> Option<&str> {
        self.selected.as_deref().or_else(|| self.shown_nodes().first().copied())
    }

    pub fn info(&self, node: &str) -> Option<&NodeInfo> {
        self.cache.get(node)
    }

    /// The visible lines of the selected node's fact tree.
    pub fn facts(&self) -> Vec<FactLine> {
        match self.selected().and_then(|n| self.cache.get(n)).and_then(|i| i.inventory.as_ref()) {
            Some(Fetch::Ready(inv)) => fact_lines(&inv["facts"], &self.folded, &self.fact_search),
            _ => Vec::new(),
        }
    }

    fn search(&self) -> &Search {
        if self.focus == Focus::Details && self.tab == Tab::Facts { &self.fact_search } else { &self.node_search }
    }

    fn shown_nodes(&self) -> Vec<&str> {
        self.nodes.iter().map(String::as_str).filter(|n| self.node_search.matches([*n])).collect()
    }

    fn node_pos(&self) -> usize {
        let shown = self.shown_nodes();
        self.selected.as_deref().and_then(|s| shown.iter().position(|n| *n == s)).unwrap_or(0)
    }

    /// Asks for whatever of the selected node is not there yet.
    fn fetch_selected(&mut self, force: bool) -> Option<Action> {
        if !self.shown {
            return None;
        }
        let node = self.selected()?.to_string();
        let info = self.cache.entry(node.clone()).or_default();
        let loading = matches!((&info.inventory, &info.agents, &info.stats), (Some(Fetch::Loading), _, _));
        if loading || (!force && info.inventory.is_some()) {
            return None;
        }
        for part in Part::ALL {
            *info.slot(part) = Some(Fetch::Loading);
        }
        Some(NetCommand::FetchNode { node }.into())
    }

    fn detail_len(&self) -> usize {
        match self.tab {
            Tab::Facts => self.facts().len(),
            _ => self.detail_lines(u16::MAX).len(),
        }
    }

    fn move_cursor(&mut self, nav: Nav) -> Option<Action> {
        let page = self.page.get();
        match self.focus {
            Focus::Nodes => {
                let shown = self.shown_nodes();
                if shown.is_empty() {
                    return None;
                }
                let next = shown[nav.step(self.node_pos(), shown.len(), page)].to_string();
                if self.selected.as_deref() != Some(next.as_str()) {
                    self.selected = Some(next);
                    self.detail_cursor = 0;
                    return self.fetch_selected(false);
                }
                None
            }
            Focus::Details => {
                self.detail_cursor = nav.step(self.detail_cursor, self.detail_len(), page);
                None
            }
        }
    }

    fn on_msg(&mut self, msg: Msg) -> Option<Action> {
        match msg {
            Msg::FocusDetails => self.focus = Focus::Details,
            Msg::FocusNodes => self.focus = Focus::Nodes,
            Msg::ShowMetrics => return self.show_view(View::Metrics),
            // From the Metrics view, on round the cycle of tabs: `]` to Facts, `[` to Stats.
            Msg::NextTab | Msg::PrevTab if self.view == View::Metrics => {
                self.tab = if msg == Msg::NextTab { Tab::Facts } else { Tab::Stats };
                self.detail_cursor = 0;
                let leave = self.show_view(View::Inventory);
                let fetch = self.fetch_selected(false);
                return match (leave, fetch) {
                    (Some(a), Some(b)) => Some(Action::Batch(vec![a, b])),
                    (a, b) => a.or(b),
                };
            }
            Msg::NextTab | Msg::PrevTab => {
                let i = Tab::ALL.iter().position(|t| *t == self.tab).unwrap_or(0);
                let n = Tab::ALL.len();
                // The Metrics view sits past the last tab (`[` from the first still wraps to it).
                if msg == Msg::NextTab && i == n - 1 {
                    return self.show_view(View::Metrics);
                }
                self.tab = Tab::ALL[if msg == Msg::NextTab { (i + 1) % n } else { (i + n - 1) % n }];
                self.detail_cursor = 0;
            }
            Msg::Fold => {
                if self.focus == Focus::Nodes {
                    self.focus = Focus::Details;
                } else if self.tab == Tab::Facts
                    && let Some(line) = self.facts().get(self.detail_cursor).filter(|l| l.value.is_none())
                    && !self.folded.remove(&line.path)
                {
                    self.folded.insert(line.path.clone());
                }
            }
            Msg::Refresh => return self.fetch_selected(true),
            Msg::Fetched { node, part, result } => {
                let info = self.cache.entry(node).or_default();
                *info.slot(part) = Some(match result {
                    Ok(v) => Fetch::Ready(v),
                    Err(e) => Fetch::Failed(e),
                });
            }
        }
        None
    }
}

impl Component for Inventory {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        if self.view == View::Metrics {
            return self.metrics.handle_key(key);
        }
        self.on_key(key)
    }

    fn update(&mut self, action: Action) -> Option<Action> {
        // The Metrics view follows the hosts in scope whether shown or not.
        let for_metrics = match &action {
            Action::Metrics(_) => return self.metrics.update(action),
            Action::Nav(_) if self.view == View::Metrics => return self.metrics.update(action),
            Action::Nodes(_) | Action::Members { .. } | Action::ScopeChanged(_) | Action::ThemeChanged(_) | Action::Tick(_) => {
                self.metrics.update(action.clone())
            }
            _ => None,
        };
        let own = self.on_action(action);
        match (for_metrics, own) {
            (Some(a), Some(b)) => Some(Action::Batch(vec![a, b])),
            (a, b) => a.or(b),
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        match self.view {
            View::Inventory => self.render(frame, area),
            View::Metrics => self.metrics.draw(frame, area),
        }
    }
}

impl Inventory {
    /// What the Inventory view does with an action.
    fn on_action(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::Inventory(msg) => return self.on_msg(msg),
            Action::Nav(nav) => return self.move_cursor(nav),
            Action::Search(edit) => {
                let search =
                    if self.focus == Focus::Details && self.tab == Tab::Facts { &mut self.fact_search } else { &mut self.node_search };
                if search.apply(edit) {
                    self.detail_cursor = 0;
                }
            }
            Action::Nodes(mut nodes) => {
                nodes.sort();
                self.nodes = nodes;
                if self.selected.as_ref().is_some_and(|s| !self.nodes.contains(s)) {
                    self.selected = None;
                }
                return self.fetch_selected(false);
            }
            Action::FocusChanged(panel) => {
                self.shown = panel == PanelId::Inventory;
                let metrics = self.metrics.set_open(self.shown && self.view == View::Metrics);
                let fetch = if self.view == View::Inventory { self.fetch_selected(false) } else { None };
                return match (metrics, fetch) {
                    (Some(a), Some(b)) => Some(Action::Batch(vec![a, b])),
                    (a, b) => a.or(b),
                };
            }
            Action::NodeEvent(Event::NodeChanged { identity } | Event::NodeJoined { identity }) => {
                // A registration change: what is cached for the node is out of date.
                if self.selected() == Some(identity.as_str()) {
                    return self.fetch_selected(true);
                }
                self.cache.remove(&identity);
            }
            Action::ThemeChanged(theme) => self.theme = *theme,
            _ => {}
        }
        None
    }
}
