//! Drawing the Discovery panel: the filter line (and its error under the column), the progress
//! bar of the round, the search line and the grid. Only the rows on screen are built.

use fleet_protocol::filter::FilterError;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell as TableCell, HighlightSpacing, Paragraph, Row, Table, TableState};

use super::{Discovery, NodeRow, NodeStatus, Phase, describe_filter};
use crate::console::keys::Mode;
use crate::console::widgets::list::scroll_top;
use crate::console::widgets::text::ms_text;
use crate::console::widgets::{block, input};

const PROMPT: &str = "filter: ";

/// `[=====>    ]` without the brackets: `width` cells, `done` of `total` filled, with a `>` head
/// while the round is not complete.
pub fn bar_cells(done: usize, total: usize, width: usize) -> (String, String) {
    if total == 0 || width == 0 {
        return (String::new(), " ".repeat(width));
    }
    let done = done.min(total);
    let filled = done * width / total;
    let head = if done == total {
        "=".repeat(width)
    } else if filled == 0 {
        String::new()
    } else {
        format!("{}>", "=".repeat(filled - 1))
    };
    let todo = " ".repeat(width - head.chars().count());
    (head, todo)
}

impl Discovery {
    /// Draws the panel in `area` (the Component's `draw`).
    pub(super) fn render(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let pane = block::pane(t, " Discovery ", true);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        let error = self.filter_error.as_ref().filter(|_| self.editing);
        let search = self.search.line(t, self.view().len(), self.rows.len());
        let [filter_area, error_area, progress_area, search_area, nodes_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(if error.is_some() { 2 } else { 0 }),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(0),
        ])
        .areas(inner);
        self.draw_filter_line(frame, filter_area);
        if let Some(err) = error {
            self.draw_filter_error(frame, error_area, err);
        }
        frame.render_widget(Paragraph::new(self.progress_line(progress_area.width as usize)), progress_area);
        if let Some(line) = search {
            frame.render_widget(Paragraph::new(line), search_area);
        }
        self.draw_nodes(frame, nodes_area);
    }

    fn progress_line(&self, width: usize) -> Line<'static> {
        let t = &self.theme;
        let Some(round) = &self.round else {
            let rerun = self.keys.key_text(Mode::Discovery, "rerun");
            return Line::from(Span::styled(format!("no round yet: {rerun} pings the nodes matching the filter"), t.label));
        };
        let desc = describe_filter(&round.filter);
        match &round.phase {
            Phase::Discovering if !self.link_up => {
                Line::from(Span::styled(format!("waiting for the hub link to discover {desc} ..."), t.label))
            }
            Phase::Discovering => Line::from(Span::styled(format!("discovering {desc} ..."), t.label)),
            Phase::Failed(msg) => Line::from(Span::styled(format!("round failed: {}", msg.lines().next().unwrap_or_default()), t.error)),
            Phase::Done { .. } if round.discovered == 0 && self.rows.is_empty() => {
                Line::from(Span::styled(format!("no nodes matched {desc}"), t.status.no_reply))
            }
            Phase::Waiting | Phase::Done { .. } => {
                let tally = self.tally();
                let label = format!(" {} / {}", tally.replied, round.discovered);
                let mut summary = vec![
                    Span::raw("  "),
                    Span::styled(format!("{} ok", tally.ok), t.status.ok),
                    Span::raw("  "),
                    Span::styled(format!("{} failed", tally.failed), t.status.failed),
                    Span::raw("  "),
                    Span::styled(format!("{} no reply", tally.no_reply), t.status.no_reply),
                ];
                if tally.down > 0 {
                    summary.push(Span::styled(format!("  {} down", tally.down), t.status.failed));
                }
                if tally.unexpected > 0 {
                    summary.push(Span::styled(format!("  +{} unexpected", tally.unexpected), t.status.unexpected));
                }
                if let Phase::Done { elapsed_ms } = round.phase {
                    summary.push(Span::styled(format!("  in {elapsed_ms:.0} ms"), t.label));
                }
                let summary_width: usize = summary.iter().map(|s| s.width()).sum();
                let bar_width = width.saturating_sub(2 + label.len() + summary_width).clamp(10, 40);
                let (done, todo) = bar_cells(tally.replied, round.discovered, bar_width);
                let mut spans = vec![
                    Span::styled("[", t.text),
                    Span::styled(done, t.progress.done),
                    Span::styled(todo, t.progress.todo),
                    Span::styled("]", t.text),
                    Span::styled(label, t.text),
                ];
                spans.extend(summary);
                Line::from(spans)
            }
        }
    }

    fn row_cells(&self, row: &NodeRow) -> Row<'static> {
        let t = &self.theme;
        let (style, time, mut detail) = match &row.status {
            NodeStatus::Pending => (t.status.pending, String::new(), String::new()),
            NodeStatus::Ok { ms } => (t.status.ok, ms_text(*ms), String::new()),
            NodeStatus::Failed { status, message, ms } => {
                let detail = if message.is_empty() { status.to_string() } else { format!("{status}: {message}") };
                (t.status.failed, ms_text(*ms), detail)
            }
            NodeStatus::NoReply => (t.status.no_reply, String::new(), String::new()),
            NodeStatus::Down { since_ms: 0 } => (t.status.failed, String::new(), "not connected to any hub".to_string()),
            NodeStatus::Down { since_ms } => {
                (t.status.failed, String::new(), format!("down since {}", fleet_client::format::utc_datetime(since_ms / 1000)))
            }
            NodeStatus::Joined => {
                let rerun = self.keys.key_text(Mode::Discovery, "rerun");
                (t.status.joined, String::new(), format!("matched after the round; {rerun} pings it"))
            }
        };
        let mut style = style;
        if row.unexpected() {
            style = t.status.unexpected;
            detail = if detail.is_empty() { "replied but was not discovered".to_string() } else { format!("{detail} (not discovered)") };
        }
        if row.left {
            detail = format!("left the fleet after the round{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") });
            style = t.status.left;
        }
        let tagged = self.tagged.contains(&row.identity);
        let name_style = if tagged { t.row.tagged } else { t.text };
        let mut cells = vec![
            TableCell::from(Span::styled(if tagged { "*" } else { " " }, t.row.tagged)),
            TableCell::from(Span::styled(row.identity.clone(), name_style)),
            TableCell::from(Span::styled(row.status_word(), style)),
            TableCell::from(Line::from(Span::styled(time, t.text)).right_aligned()),
        ];
        cells.extend(self.columns.iter().map(|c| TableCell::from(Span::styled(self.fact(&row.identity, c), t.text))));
        cells.push(TableCell::from(Span::styled(detail, t.text)));
        Row::new(cells)
    }

    fn draw_filter_line(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        if self.editing {
            input::draw_line(frame, area, &self.input, PROMPT, "", t);
        } else {
            let mut spans = vec![Span::styled(PROMPT, t.label), Span::styled(describe_filter(&self.active_filter), t.text)];
            if !self.tagged.is_empty() {
                spans.push(Span::styled(format!("   {} tagged", self.tagged.len()), t.row.tagged));
            }
            let (sort, desc) = self.sort();
            spans.push(Span::styled(format!("   sort {}{}", sort.label(), if desc { " (reversed)" } else { "" }), t.label));
            if let Some(e) = &self.facts_error {
                spans.push(Span::styled(format!("   facts: {e}"), t.error));
            }
            frame.render_widget(Paragraph::new(Line::from(spans)), area);
        }
    }

    fn draw_filter_error(&self, frame: &mut Frame, area: Rect, err: &FilterError) {
        let t = &self.theme;
        let field_width = (area.width as usize).saturating_sub(PROMPT.len());
        let scroll = self.input.scroll(field_width);
        let caret_at = (PROMPT.len() + err.column.saturating_sub(1)).saturating_sub(scroll);
        let lines = vec![
            Line::from(Span::styled(format!("{}^", " ".repeat(caret_at)), t.error)),
            Line::from(Span::styled(format!("error at column {}: {}", err.column, err.message), t.error)),
        ];
        frame.render_widget(Paragraph::new(lines), area);
    }

    fn draw_nodes(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let view = self.view();
        let name_width = self.rows.iter().map(|r| r.identity.chars().count()).max().unwrap_or(0).clamp(12, 32) as u16;
        let mut titles: Vec<String> = ["", "NODE", "STATUS", "TIME"].map(String::from).to_vec();
        let mut widths = vec![Constraint::Length(1), Constraint::Length(name_width), Constraint::Length(10), Constraint::Length(9)];
        // Fact columns (`:columns`) as wide as their values, up to 20.
        for c in &self.columns {
            let widest = self.rows.iter().map(|r| self.fact(&r.identity, c).chars().count()).max().unwrap_or(0);
            titles.push(c.to_uppercase());
            widths.push(Constraint::Length(widest.max(c.chars().count()).clamp(4, 20) as u16));
        }
        titles.push("DETAIL".into());
        widths.push(Constraint::Min(0));
        let header = Row::new(titles.into_iter().map(|h| TableCell::from(Span::styled(h, t.table.header))));
        // Only the rows on screen are built: a fleet can be thousands of nodes.
        let visible = (area.height as usize).saturating_sub(1).max(1);
        self.page.set(visible);
        let selected = self.cursor_pos();
        let top = scroll_top(self.scroll_top.get(), selected, visible, view.len());
        self.scroll_top.set(top);
        let rows: Vec<Row> = view.iter().skip(top).take(visible).map(|&i| self.row_cells(&self.rows[i])).collect();
        // The `>` marks the selection where the theme has no colors (mono, NO_COLOR).
        let table = Table::new(rows, widths)
            .header(header)
            .column_spacing(1)
            .row_highlight_style(t.row.selected)
            .highlight_symbol("> ")
            .highlight_spacing(HighlightSpacing::Always);
        let mut state = TableState::default().with_selected((!view.is_empty()).then(|| selected - top));
        frame.render_stateful_widget(table, area, &mut state);
    }
}
