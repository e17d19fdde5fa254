//! Drawing the Inventory panel: the node list, and the selected node's tabs (the fact tree,
//! agents, classes, daemon stats).

use std::collections::HashSet;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use serde_json::Value;

use super::{Fetch, Focus, Inventory, Tab, fact_lines, format_uptime, format_utc};
use crate::console::widgets::block;
use crate::console::widgets::list::scroll_top;
use crate::console::widgets::search::{Search, contains_ci};
use crate::console::widgets::text::cut;
use fleet_client::format::value_text;

impl Inventory {
    /// Draws the panel in `area` (the Component's `draw`).
    pub(super) fn render(&self, frame: &mut Frame, area: Rect) {
        let width = self.nodes.iter().map(|n| n.chars().count()).max().unwrap_or(8) as u16 + 4;
        let width = width.clamp(14, 30).min(area.width / 3);
        let [left, right] = Layout::horizontal([Constraint::Length(width), Constraint::Min(0)]).areas(area);
        self.draw_nodes(frame, left);
        self.draw_details(frame, right);
    }

    pub(super) fn detail_lines(&self, width: u16) -> Vec<Line<'static>> {
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
                    let desc = cut(&value_text(&a["description"]), (width as usize).saturating_sub(4), '…');
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
        let pane = block::pane(t, format!(" Nodes {} ", self.nodes.len()), focused);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
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
        let pane = block::pane(t, title, focused);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
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
