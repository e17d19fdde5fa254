//! The Inventory panel: every node on the left; on the right, tabs for the selected node's Facts
//! (a tree of nested facts, foldable and searchable), Agents (name, version, description and
//! actions, from rpcutil agent_inventory), Classes and Stats (rpcutil daemon_stats: counters,
//! uptime, hubs). Data is fetched when a node is first shown and again when its registration
//! changes (a `NodeChanged` event) or on `r`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crossterm::event::KeyEvent;
use fleet_protocol::Event;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use serde_json::Value;

use super::action::{Action, Nav, NetCommand, PanelId, SearchEdit};
use super::component::{Component, PanelContext};
use super::discovery::{scroll_top, text_edit};
use super::keys::{Keymap, Mode};
use super::search::{Search, contains_ci};
use super::theme::Theme;
use fleet_client::format::value_text;

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    FocusDetails,
    FocusNodes,
    NextTab,
    PrevTab,
    /// Fold or unfold the fact branch under the cursor.
    Fold,
    Refresh,
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

pub struct Inventory {
    theme: Theme,
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
        if self.search().editing() { Mode::Search } else { Mode::Inventory }
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
            Msg::NextTab | Msg::PrevTab => {
                let i = Tab::ALL.iter().position(|t| *t == self.tab).unwrap_or(0);
                let n = Tab::ALL.len();
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

    fn detail_lines(&self, width: u16) -> Vec<Line<'static>> {
        let t = &self.theme;
        let Some(node) = self.selected() else {
            return vec![];
        };
        let info = self.cache.get(node).cloned().unwrap_or_default();
        let status = |f: &Option<Fetch>| -> Option<Line<'static>> {
            match f {
                None => Some(Line::from(Span::styled("not fetched yet", t.label))),
                Some(Fetch::Loading) => Some(Line::from(Span::styled(format!("asking {node} ..."), t.label))),
                Some(Fetch::Failed(e)) => Some(Line::from(Span::styled(format!("{node}: {e}"), t.error))),
                Some(Fetch::Ready(_)) => None,
            }
        };
        let ready = |f: &Option<Fetch>| match f {
            Some(Fetch::Ready(v)) => v.clone(),
            _ => Value::Null,
        };
        match self.tab {
            Tab::Facts => vec![],
            Tab::Classes => {
                if let Some(l) = status(&info.inventory) {
                    return vec![l];
                }
                let classes = ready(&info.inventory)["classes"].as_array().cloned().unwrap_or_default();
                if classes.is_empty() {
                    return vec![Line::from(Span::styled("(no classes)", t.label))];
                }
                classes.iter().map(|c| Line::from(Span::styled(value_text(c), t.text))).collect()
            }
            Tab::Agents => {
                if let Some(l) = status(&info.agents) {
                    return vec![l];
                }
                let agents = ready(&info.agents)["agents"].as_array().cloned().unwrap_or_default();
                let mut lines = Vec::new();
                for a in agents {
                    let actions: Vec<String> = a["actions"].as_array().into_iter().flatten().map(value_text).collect();
                    lines.push(Line::from(vec![
                        Span::styled(value_text(&a["name"]), t.tree.branch),
                        Span::styled(format!(" {}", value_text(&a["version"])), t.label),
                        Span::styled("  actions: ", t.label),
                        Span::styled(actions.join(", "), t.text),
                    ]));
                    let mut desc = value_text(&a["description"]);
                    let max = (width as usize).saturating_sub(4);
                    if desc.chars().count() > max {
                        desc = format!("{}…", desc.chars().take(max.saturating_sub(1)).collect::<String>());
                    }
                    lines.push(Line::from(Span::styled(format!("  {desc}"), t.form.help)));
                }
                lines
            }
            Tab::Stats => {
                if let Some(l) = status(&info.stats) {
                    return vec![l];
                }
                let s = ready(&info.stats);
                let label_width = self.stat_labels.iter().map(|(_, l)| l.len()).max().unwrap_or(10);
                let order = [
                    "version",
                    "pid",
                    "starttime",
                    "uptime",
                    "total",
                    "passed",
                    "filtered",
                    "validated",
                    "unvalidated",
                    "replies",
                    "ttlexpired",
                    "agents",
                ];
                let mut lines = Vec::new();
                for key in order {
                    let label = self.stat_labels.iter().find(|(k, _)| k == key).map(|(_, l)| l.as_str()).unwrap_or(key);
                    let v = &s[key];
                    let text = match key {
                        "uptime" => v.as_u64().map(format_uptime).unwrap_or_else(|| value_text(v)),
                        "starttime" => v.as_u64().map(format_utc).unwrap_or_else(|| value_text(v)),
                        "agents" => v.as_array().map(|a| a.iter().map(value_text).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
                        _ => value_text(v),
                    };
                    lines.push(Line::from(vec![Span::styled(format!("{label:>label_width$}  "), t.label), Span::styled(text, t.text)]));
                }
                let hubs_label = self.stat_labels.iter().find(|(k, _)| k == "hubs").map(|(_, l)| l.clone()).unwrap_or("Hubs".into());
                for (hub, state) in s["hubs"].as_object().into_iter().flatten() {
                    let style = if value_text(state).contains("connected") { t.status.ok } else { t.status.no_reply };
                    lines.push(Line::from(vec![
                        Span::styled(format!("{hubs_label:>label_width$}  "), t.label),
                        Span::styled(format!("{hub} "), t.text),
                        Span::styled(value_text(state), style),
                    ]));
                }
                lines
            }
        }
    }

    fn draw_nodes(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let focused = self.focus == Focus::Nodes;
        let shown = self.shown_nodes();
        let block = Block::bordered()
            .border_style(if focused { t.border_focused } else { t.border })
            .title(Span::styled(format!(" Nodes {} ", self.nodes.len()), t.title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let search = self.node_search.line(t, shown.len(), self.nodes.len());
        let [search_area, list_area] = Layout::vertical([Constraint::Length(u16::from(search.is_some())), Constraint::Min(0)]).areas(inner);
        if let Some(line) = search {
            frame.render_widget(Paragraph::new(line), search_area);
        }
        if shown.is_empty() {
            frame.render_widget(Paragraph::new(Span::styled("no nodes", t.label)), list_area);
            return;
        }
        let height = list_area.height as usize;
        let pos = self.node_pos();
        let top = scroll_top(self.list_top.get(), pos, height.max(1), shown.len());
        self.list_top.set(top);
        let lines: Vec<Line> = shown
            .iter()
            .enumerate()
            .skip(top)
            .take(height)
            .map(|(i, n)| {
                if i == pos {
                    Line::from(Span::styled(format!("> {n}"), if focused { t.row.selected } else { t.text }))
                } else {
                    Line::from(Span::styled(format!("  {n}"), t.text))
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), list_area);
    }

    fn draw_details(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let focused = self.focus == Focus::Details;
        let title = self.selected().map(|n| format!(" {n} ")).unwrap_or_else(|| " (no node) ".into());
        let block = Block::bordered().border_style(if focused { t.border_focused } else { t.border }).title(Span::styled(title, t.title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let mut tabs = Vec::new();
        for tab in Tab::ALL {
            let style = if tab == self.tab { t.tab.active } else { t.tab.inactive };
            tabs.push(Span::styled(format!(" {} ", tab.title()), style));
            tabs.push(Span::raw(" "));
        }
        let search = if self.tab == Tab::Facts {
            self.fact_search.line(t, self.facts().iter().filter(|l| l.value.is_some()).count(), self.leaf_count())
        } else {
            None
        };
        let [tab_area, search_area, body] =
            Layout::vertical([Constraint::Length(1), Constraint::Length(u16::from(search.is_some())), Constraint::Min(0)]).areas(inner);
        frame.render_widget(Paragraph::new(Line::from(tabs)), tab_area);
        if let Some(line) = search {
            frame.render_widget(Paragraph::new(line), search_area);
        }
        let height = body.height as usize;
        self.page.set(height.max(1));
        let lines: Vec<Line> = if self.tab == Tab::Facts {
            let info = self.selected().and_then(|n| self.cache.get(n));
            match info.and_then(|i| i.inventory.as_ref()) {
                Some(Fetch::Ready(_)) => self.fact_tree_lines(body.width),
                Some(Fetch::Failed(e)) => vec![Line::from(Span::styled(e.clone(), t.error))],
                Some(Fetch::Loading) => {
                    vec![Line::from(Span::styled("asking the node ...", t.label))]
                }
                None => vec![Line::from(Span::styled("not fetched yet", t.label))],
            }
        } else {
            self.detail_lines(body.width)
        };
        let cursor = self.detail_cursor.min(lines.len().saturating_sub(1));
        let top = scroll_top(self.detail_top.get(), cursor, height.max(1), lines.len());
        self.detail_top.set(top);
        let lines: Vec<Line> = lines
            .into_iter()
            .enumerate()
            .skip(top)
            .take(height)
            .map(|(i, l)| if focused && i == cursor { l.patch_style(t.row.selected) } else { l })
            .collect();
        frame.render_widget(Paragraph::new(lines), body);
    }

    fn leaf_count(&self) -> usize {
        match self.selected().and_then(|n| self.cache.get(n)).and_then(|i| i.inventory.as_ref()) {
            Some(Fetch::Ready(inv)) => {
                fact_lines(&inv["facts"], &HashSet::new(), &Search::default()).iter().filter(|l| l.value.is_some()).count()
            }
            _ => 0,
        }
    }

    fn fact_tree_lines(&self, width: u16) -> Vec<Line<'static>> {
        let t = &self.theme;
        let lines = self.facts();
        let key_width = lines
            .iter()
            .filter(|l| l.value.is_some())
            .map(|l| l.depth * 2 + l.key.chars().count())
            .max()
            .unwrap_or(0)
            .min(width as usize / 2);
        let needle = self.fact_search.text().trim().to_lowercase();
        lines
            .into_iter()
            .map(|l| {
                let indent = "  ".repeat(l.depth);
                match l.value {
                    None => Line::from(vec![
                        Span::raw(indent),
                        Span::styled(if l.folded { "▸ " } else { "▾ " }, t.tree.branch),
                        Span::styled(l.key, t.tree.branch),
                    ]),
                    Some(v) => {
                        let pad = key_width.saturating_sub(l.depth * 2 + l.key.chars().count());
                        let hit = !needle.is_empty() && (contains_ci(&l.path, &needle) || contains_ci(&v, &needle));
                        let key_style = if hit { t.tree.matched } else { t.tree.key };
                        Line::from(vec![
                            Span::raw(format!("{indent}  ")),
                            Span::styled(l.key, key_style),
                            Span::raw(format!("{}  ", " ".repeat(pad))),
                            Span::styled(v, t.tree.value),
                        ])
                    }
                }
            })
            .collect()
    }
}

impl Component for Inventory {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        let mode = self.mode();
        if let Some(action) = self.keys.action(mode, &key) {
            return Some(action);
        }
        if mode == Mode::Search { text_edit(&key).map(|e| Action::Search(SearchEdit::Edit(e))) } else { None }
    }

    fn update(&mut self, action: Action) -> Option<Action> {
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
                return self.fetch_selected(false);
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

    fn draw(&self, frame: &mut Frame, area: Rect) {
        let width = self.nodes.iter().map(|n| n.chars().count()).max().unwrap_or(8) as u16 + 4;
        let width = width.clamp(14, 30).min(area.width / 3);
        let [left, right] = Layout::horizontal([Constraint::Length(width), Constraint::Min(0)]).areas(area);
        self.draw_nodes(frame, left);
        self.draw_details(frame, right);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::action::{Scope, TextEdit};
    use serde_json::json;

    fn panel() -> Inventory {
        Inventory::new(&PanelContext { theme: Theme::mono(), keys: Default::default(), read_only: false, scope: Scope::default() })
    }

    fn facts() -> Value {
        json!({ "country": "uk", "os": { "family": "Debian", "release": { "major": "12" } }, "role": "web" })
    }

    #[test]
    fn the_fact_tree_folds_and_searches() {
        let none = Search::default();
        let lines = fact_lines(&facts(), &HashSet::new(), &none);
        let paths: Vec<&str> = lines.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(paths, ["country", "os", "os.family", "os.release", "os.release.major", "role"]);
        assert_eq!(lines[4].depth, 2);
        let folded: HashSet<String> = ["os".to_string()].into();
        let lines = fact_lines(&facts(), &folded, &none);
        assert_eq!(lines.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(), ["country", "os", "role"]);
        assert!(lines[1].folded);
        let mut search = Search::default();
        search.apply(SearchEdit::Open);
        for c in "major".chars() {
            search.apply(SearchEdit::Edit(TextEdit::Insert(c)));
        }
        let lines = fact_lines(&facts(), &folded, &search);
        assert_eq!(
            lines.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(),
            ["os", "os.release", "os.release.major"],
            "a search opens folded branches"
        );
        search.apply(SearchEdit::Cancel);
        search.apply(SearchEdit::Open);
        search.apply(SearchEdit::Edit(TextEdit::Insert('u')));
        search.apply(SearchEdit::Edit(TextEdit::Insert('k')));
        let lines = fact_lines(&facts(), &HashSet::new(), &search);
        assert_eq!(lines.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(), ["country"], "values match too");
    }

    #[test]
    fn showing_the_panel_fetches_the_selected_node_once() {
        let mut p = panel();
        assert_eq!(p.update(Action::Nodes(vec!["web-02".into(), "web-01".into()])), None, "not on screen yet");
        let fetch = p.update(Action::FocusChanged(PanelId::Inventory));
        assert_eq!(fetch, Some(NetCommand::FetchNode { node: "web-01".into() }.into()));
        assert_eq!(p.update(Action::FocusChanged(PanelId::Inventory)), None, "already asked");
        p.update(Action::Inventory(Msg::Fetched {
            node: "web-01".into(),
            part: Part::Inventory,
            result: Ok(json!({ "facts": facts(), "classes": ["base"] })),
        }));
        assert_eq!(p.facts().len(), 6);
        // Moving to another node fetches it; a registration change of the shown node fetches again.
        assert_eq!(p.update(Action::Nav(Nav::Down)), Some(NetCommand::FetchNode { node: "web-02".into() }.into()));
        let changed = p.update(Action::NodeEvent(Event::NodeChanged { identity: "web-02".into() }));
        assert_eq!(changed, None, "still loading");
        p.update(Action::Inventory(Msg::Fetched { node: "web-02".into(), part: Part::Inventory, result: Err("no reply".into()) }));
        let changed = p.update(Action::NodeEvent(Event::NodeChanged { identity: "web-02".into() }));
        assert_eq!(changed, Some(NetCommand::FetchNode { node: "web-02".into() }.into()));
        // A change of a node not shown drops what was cached for it.
        p.update(Action::NodeEvent(Event::NodeChanged { identity: "web-01".into() }));
        assert!(p.info("web-01").is_none());
        p.update(Action::FocusChanged(PanelId::Log));
        assert_eq!(p.update(Action::Nav(Nav::Up)), None, "nothing is fetched off screen");
    }

    #[test]
    fn fold_works_on_the_branch_under_the_cursor() {
        let mut p = panel();
        p.update(Action::Nodes(vec!["a".into()]));
        p.update(Action::Inventory(Msg::Fetched { node: "a".into(), part: Part::Inventory, result: Ok(json!({ "facts": facts() })) }));
        p.update(Action::Inventory(Msg::Fold));
        assert_eq!(p.focus, Focus::Details, "enter on the list goes to the details");
        p.update(Action::Nav(Nav::Down));
        p.update(Action::Inventory(Msg::Fold));
        assert_eq!(p.facts().len(), 3);
        p.update(Action::Inventory(Msg::Fold));
        assert_eq!(p.facts().len(), 6);
    }

    #[test]
    fn time_formats() {
        assert_eq!(format_uptime(59), "00:00:59");
        assert_eq!(format_uptime(3 * 86_400 + 4 * 3600 + 5 * 60 + 6), "3d 04:05:06");
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
