//! Drawing the Metrics view: the host list (per host a sparkline and the newest value of each
//! graph its profile shows, group headers with min/avg/max and the worst host, profile headings
//! naming the graphs above their columns) and the selected host's line chart. From 120 columns
//! the chart sits beside the list, below it otherwise; a short screen shows the list only.

use std::collections::HashMap;

use fleet_client::metrics::{Group, HostMetrics, value_text};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Sparkline};

use super::{MetricsView, Row};
use crate::console::widgets::block;
use crate::console::widgets::list::scroll_top;
use crate::console::widgets::text::{cut, fit_line};

/// Sparkline heights are integers: values are scaled to this many steps of the list's maximum.
const SPARK_STEPS: f64 = 1000.0;
/// Width of the newest-value column.
const VALUE_WIDTH: u16 = 10;

/// `900` -> `15m`, `90` -> `1m30s`, `45` -> `45s`.
pub fn window_text(secs: u64) -> String {
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

impl MetricsView {
    /// Draws the view in `area` (the Component's `draw`).
    pub(super) fn render(&self, frame: &mut Frame, area: Rect) {
        let (list, chart) = if area.width >= 120 {
            let [l, c] = Layout::horizontal([Constraint::Percentage(55), Constraint::Min(0)]).areas(area);
            (l, Some(c))
        } else if area.height >= 16 {
            let [l, c] = Layout::vertical([Constraint::Min(6), Constraint::Percentage(45)]).areas(area);
            (l, Some(c))
        } else {
            (area, None)
        };
        self.draw_list(frame, list);
        if let Some(chart) = chart {
            self.draw_chart(frame, chart);
        }
    }

    fn list_title(&self) -> String {
        let mut title = format!(" Metrics: {}", self.metric());
        // The selected host's (or its group's) profile: the one `p` switches.
        if let Some(host) = self.selected().filter(|_| !self.profiles().is_empty()) {
            let shown = self.profile_of(&host);
            match shown.profile {
                Some(i) => title.push_str(&format!(" · profile {}{}", self.profiles()[i].name, if shown.chosen { "" } else { " (auto)" })),
                None => title.push_str(" · no profile"),
            }
        }
        title.push_str(&format!(" · last {} · {} hosts", window_text(self.window_secs()), self.hosts().len()));
        if let Some(fact) = &self.group_by {
            title.push_str(&format!(" · by {fact}"));
        }
        title.push(' ');
        title
    }

    fn draw_list(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let pane = block::pane(t, self.list_title(), true);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        if inner.height == 0 || inner.width < 8 {
            return;
        }
        let rows = self.rows();
        let notice = if self.hosts().is_empty() {
            Some(("no nodes in scope".to_string(), t.label))
        } else if let Some(e) = &self.group_error {
            Some((format!("cannot read the group fact: {e}"), t.error))
        } else if let Some(e) = &self.profiles.error {
            Some((e.clone(), t.error))
        } else if self.newest_ms().is_none() {
            Some(("waiting for samples from the hub …".to_string(), t.label))
        } else {
            None
        };
        let mut body = inner;
        if let Some((text, style)) = notice {
            frame.render_widget(Paragraph::new(Line::from(Span::styled(cut(&text, inner.width as usize, '…'), style))), inner);
            body = Rect { y: inner.y + 1, height: inner.height - 1, ..inner };
        }
        let visible = body.height as usize;
        self.page.set(visible.max(1));
        let selected = self.selected();
        let pos = rows.iter().position(|r| matches!(r, Row::Host(h) if Some(&h.identity) == selected.as_ref())).unwrap_or(0);
        let top = scroll_top(self.list_top.get(), pos, visible, rows.len());
        self.list_top.set(top);
        let name_width = rows
            .iter()
            .filter_map(|r| match r {
                Row::Host(h) => Some(h.identity.chars().count() as u16 + 2),
                Row::Group(_) | Row::Profile { .. } => None,
            })
            .max()
            .unwrap_or(8)
            .clamp(8, 20)
            .min(body.width / 3);
        // One scale per graph for every sparkline, so the bars compare across hosts.
        let mut scales: HashMap<String, f64> = HashMap::new();
        let mut scale = |graph: &str| {
            *scales
                .entry(graph.to_string())
                .or_insert_with(|| self.hosts().iter().flat_map(|h| self.points(h, graph)).map(|(_, v)| v).fold(0.0_f64, f64::max))
        };
        // The graphs of the heading above; rows above the visible ones still set it.
        let mut graphs = vec![self.metric().to_string()];
        for (i, row) in rows.iter().enumerate() {
            if let Row::Profile { graphs: g, .. } = row {
                graphs = g.clone();
            }
            if i < top || i >= top + visible {
                continue;
            }
            let line = Rect { y: body.y + (i - top) as u16, height: 1, ..body };
            match row {
                Row::Group(g) => frame.render_widget(Paragraph::new(self.group_line(g, line.width)), line),
                Row::Profile { name, graphs } => self.draw_heading(frame, line, name.as_deref(), graphs, name_width),
                Row::Host(h) => {
                    let scales: Vec<f64> = graphs.iter().map(|g| scale(g)).collect();
                    self.draw_host(frame, line, h, &graphs, name_width, &scales, Some(&h.identity) == selected.as_ref())
                }
            }
        }
    }

    /// A host line's areas: the name, then one cell per graph.
    fn cells(&self, area: Rect, name_width: u16, graphs: usize) -> (Rect, Vec<Rect>) {
        let indent = if self.group_by.is_some() { 2 } else { 0 };
        let [name, rest] = Layout::horizontal([Constraint::Length(name_width + indent), Constraint::Min(0)]).areas(area);
        let n = graphs.max(1) as u32;
        let cells = Layout::horizontal((0..n).map(|_| Constraint::Ratio(1, n))).spacing(u16::from(n > 1)).split(rest);
        (name, cells.to_vec())
    }

    /// `profile web` and each graph's name above its column of values (the profile's name may
    /// run on into the first column's room).
    fn draw_heading(&self, frame: &mut Frame, area: Rect, profile: Option<&str>, graphs: &[String], name_width: u16) {
        let t = &self.theme;
        let label = profile.map_or_else(|| "no profile".to_string(), |p| format!("profile {p}"));
        frame.render_widget(Paragraph::new(Span::styled(cut(&label, area.width as usize, '…'), t.table.header)), area);
        let (_, cells) = self.cells(area, name_width, graphs.len());
        for (graph, cell) in graphs.iter().zip(cells) {
            let text = cut(graph, cell.width as usize, '…');
            let width = text.chars().count() as u16;
            let right = Rect { x: cell.x + cell.width - width, width, ..cell };
            frame.render_widget(Paragraph::new(Span::styled(text, t.table.header)), right);
        }
    }

    /// `role=web  min 0.10  avg 0.25  max 0.40  worst web-02`.
    fn group_line(&self, g: &Group, width: u16) -> Line<'static> {
        let t = &self.theme;
        let metric = self.metric();
        let fact = self.group_by.as_deref().unwrap_or("group");
        let mut spans =
            vec![Span::styled(format!("{fact}={} ", g.value), t.tree.branch), Span::styled(format!("({}) ", g.hosts.len()), t.label)];
        match g.metrics.get(metric) {
            Some(s) => {
                for (label, v) in [("min", s.min), ("avg", s.avg), ("max", s.max)] {
                    spans.push(Span::styled(format!(" {label} "), t.label));
                    spans.push(Span::styled(value_text(metric, v), t.text));
                }
                spans.push(Span::styled("  worst ", t.label));
                spans.push(Span::styled(s.worst_host.clone(), t.error));
            }
            None => spans.push(Span::styled(" no samples yet", t.label)),
        }
        fit_line(spans, width as usize)
    }

    /// One host: its name, then per graph a sparkline of the window and the newest value.
    #[allow(clippy::too_many_arguments)]
    fn draw_host(
        &self,
        frame: &mut Frame,
        area: Rect,
        host: &HostMetrics,
        graphs: &[String],
        name_width: u16,
        scales: &[f64],
        selected: bool,
    ) {
        let t = &self.theme;
        let indent = if self.group_by.is_some() { 2 } else { 0 };
        let (name, cells) = self.cells(area, name_width, graphs.len());
        let name_style = if selected { t.row.selected } else { t.text };
        let label = format!("{}{}", " ".repeat(indent), cut(&host.identity, name_width.saturating_sub(1) as usize, '…'));
        frame.render_widget(Paragraph::new(Span::styled(label, name_style)), name);
        for ((graph, cell), scale) in graphs.iter().zip(cells).zip(scales) {
            self.draw_cell(frame, cell, host, graph, *scale);
        }
    }

    /// One graph of a host: a sparkline of the window (where the cell has room) and the newest value.
    fn draw_cell(&self, frame: &mut Frame, area: Rect, host: &HostMetrics, metric: &str, scale: f64) {
        let t = &self.theme;
        let [spark, value] = Layout::horizontal([Constraint::Min(0), Constraint::Length(VALUE_WIDTH)]).areas(area);
        let points = self.points(&host.identity, metric);
        let wanted = spark.width.saturating_sub(1) as usize;
        // The newest sample at the right edge, so every host's line ends at the same time.
        let shown = &points[points.len().saturating_sub(wanted)..];
        let bars: Vec<Option<u64>> =
            std::iter::repeat_n(None, wanted - shown.len()).chain(shown.iter().map(|(_, v)| Some(bar(*v, scale)))).collect();
        let sparkline = Sparkline::default().data(bars).max(SPARK_STEPS as u64).absent_value_symbol(" ");
        frame.render_widget(sparkline.style(Style::from(t.status.ok)), spark);
        let text = match host.get(metric) {
            Some(v) => Span::styled(format!("{:>w$}", value_text(metric, v), w = VALUE_WIDTH as usize), t.text),
            None => Span::styled(format!("{:>w$}", "no sample", w = VALUE_WIDTH as usize), t.label),
        };
        frame.render_widget(Paragraph::new(text), value);
    }

    /// The selected host's metric over the window, as a line chart.
    fn draw_chart(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let metric = self.metric();
        let window = self.window_secs();
        let Some(host) = self.selected() else {
            frame.render_widget(block::pane(t, " Chart ", false), area);
            return;
        };
        let title = format!(" {host} · {metric} · last {} ", window_text(window));
        let pane = block::pane(t, title, false);
        let newest = self.newest_ms().unwrap_or(0);
        let points: Vec<(f64, f64)> =
            self.points(&host, metric).into_iter().map(|(ms, v)| ((ms as f64 - newest as f64) / 1000.0, v)).collect();
        if points.is_empty() {
            let inner = pane.inner(area);
            frame.render_widget(pane, area);
            frame.render_widget(Paragraph::new(Span::styled(format!("no {metric} samples from {host} yet"), t.label)), inner);
            return;
        }
        let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min).min(0.0);
        let hi = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
        let hi = if hi > lo { hi * 1.1 } else { lo + 1.0 };
        let dataset = Dataset::default().marker(Marker::Braille).graph_type(GraphType::Line).style(Style::from(t.status.ok)).data(&points);
        let half = window_text(window / 2);
        let x_axis = Axis::default().style(Style::from(t.label)).bounds([-(window as f64), 0.0]).labels([
            format!("-{}", window_text(window)),
            format!("-{half}"),
            "now".to_string(),
        ]);
        let y_axis = Axis::default().style(Style::from(t.label)).bounds([lo, hi]).labels([value_text(metric, lo), value_text(metric, hi)]);
        frame.render_widget(Chart::new(vec![dataset]).block(pane).x_axis(x_axis).y_axis(y_axis), area);
    }
}

/// A value as a sparkline height: its share of `scale` in [`SPARK_STEPS`] steps; a value above
/// zero shows at least one step, so a quiet host is told from one without samples.
fn bar(v: f64, scale: f64) -> u64 {
    if scale <= 0.0 || v <= 0.0 {
        return 0;
    }
    ((v / scale * SPARK_STEPS).round() as u64).clamp(1, SPARK_STEPS as u64)
}
