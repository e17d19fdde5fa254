//! Drawing the panel: the query line, the table (only the rows on screen are built), the last
//! kill's outcome, the totals footer, and the signal menu and confirmation popups. Nothing here changes state
//! except the scroll position, a view cache that only the drawing can know.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Clear, HighlightSpacing, Paragraph, Row, Table, TableState};

use super::table::{Column, compact_bytes, cpu_text, started_text};
use super::{Field, KillPlan, Overlay, ProcessesPanel, Signal};
use crate::console::action::Scope;
use crate::console::theme::Theme;
use crate::console::widgets::list::scroll_top;
use crate::console::widgets::text::{clock_text, cut};
use crate::console::widgets::{block, input};
use fleet_client::process::Proc;

/// The command column keeps at least this many cells; optional columns give way first.
const MIN_COMMAND: u16 = 24;
/// Cells between columns.
const SPACING: u16 = 1;
/// The selection marker `> ` (also where the theme has no colors).
const MARKER: &str = "> ";

/// A row's style: zombies and processes in uninterruptible sleep (D) stand out, running ones
/// show, tagged ones are marked.
fn row_style(t: &Theme, p: &Proc, tagged: bool) -> Style {
    let mut style = t.text.style();
    style = style.patch(if p.zombie || p.state == "Z" {
        t.process.zombie
    } else {
        match p.state.as_str() {
            "D" => t.process.dstate,
            "R" => t.process.running,
            _ => t.process.sleeping,
        }
    });
    if tagged { style.patch(t.process.tagged) } else { style }
}

/// `2 s`, `500 ms`.
fn interval_text(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 { format!("{} s", d.as_secs()) } else { format!("{} ms", d.as_millis()) }
}

impl ProcessesPanel {
    /// Draws the panel in `area` (the Component's `draw`).
    pub fn render(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let mut pane = block::pane(t, " Processes ", true);
        let state = match (self.listed_at, self.refreshing()) {
            (Some(at), false) => Some(format!("listed {}", clock_text(at))),
            (Some(at), true) => Some(format!("listed {}, refreshing", clock_text(at))),
            (None, true) => Some("listing ...".to_string()),
            (None, false) => None,
        };
        if let Some(state) = state {
            pane = pane.title_top(Line::from(Span::styled(format!(" {state} "), t.label)).right_aligned());
        }
        let inner = pane.inner(area);
        frame.render_widget(pane, area);

        let edit_error = self.editing().and_then(|(_, _, e)| e.map(str::to_string));
        let problems = self.problems_line();
        let [query_area, error_area, table_area, list_error_area, problems_area, kill_area, totals_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(u16::from(edit_error.is_some())),
            Constraint::Min(0),
            Constraint::Length(u16::from(self.list_error.is_some())),
            Constraint::Length(u16::from(problems.is_some())),
            Constraint::Length(u16::from(self.kill_status.is_some())),
            Constraint::Length(1),
        ])
        .areas(inner);
        self.draw_query_line(frame, query_area);
        if let Some(e) = edit_error {
            frame.render_widget(Paragraph::new(Span::styled(e, t.error)), error_area);
        }
        self.draw_table(frame, table_area);
        if let Some(e) = &self.list_error {
            frame.render_widget(Paragraph::new(Span::styled(format!("list failed: {e}"), t.error)), list_error_area);
        }
        if let Some(p) = problems {
            frame.render_widget(Paragraph::new(p), problems_area);
        }
        if let Some(kill) = &self.kill_status {
            let (text, ok) = kill.summary();
            let style = match (&kill.outcome, ok) {
                (None, _) => t.spinner,
                (Some(_), true) => t.status.ok,
                (Some(_), false) => t.status.failed,
            };
            let text = format!("last kill {}: {text}", clock_text(kill.sent_at));
            frame.render_widget(Paragraph::new(Span::styled(cut(&text, kill_area.width as usize, '…'), style)), kill_area);
        }
        frame.render_widget(Paragraph::new(Span::styled(self.totals.text(), t.text)), totals_area);

        match &self.overlay {
            Overlay::SignalMenu { plan, selected } => self.draw_signal_menu(frame, area, plan, *selected),
            Overlay::Confirm { plan, signal } => self.draw_confirm(frame, area, plan, *signal),
            Overlay::SortMenu { selected } => self.draw_sort_menu(frame, area, *selected),
            Overlay::Columns { selected } => self.draw_columns(frame, area, *selected),
            Overlay::None | Overlay::Editing { .. } => {}
        }
    }

    fn draw_query_line(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        if let Overlay::Editing { field, input: text, .. } = &self.overlay {
            let prompt = match field {
                Field::Pattern => "pattern (regex): ",
                Field::User => "user: ",
            };
            // The shell's footer shows the table's keys; the line's own keys are said here.
            let hint = "  enter apply  esc cancel";
            let hint = if (area.width as usize) >= prompt.len() + hint.len() + 10 { hint } else { "" };
            input::draw_line(frame, area, text, prompt, hint, t);
            return;
        }
        let q = &self.query;
        let value =
            |s: &str, none: &str| if s.is_empty() { Span::styled(none.to_string(), t.label) } else { Span::styled(s.to_string(), t.text) };
        let mut spans = vec![
            Span::styled("pattern ", t.label),
            value(&q.pattern, "(any)"),
            Span::styled("  user ", t.label),
            value(&q.user, "(any)"),
            Span::styled("  zombies ", t.label),
            Span::styled(if q.zombies_only { "only" } else { "too" }, t.text),
            Span::styled("  sort ", t.label),
            Span::styled(format!("{} {}", self.sort.name(), if self.descending { "▼" } else { "▲" }), t.text),
        ];
        if q.scope != Scope::default() {
            spans.push(Span::styled("  on ", t.label));
            spans.push(Span::styled(q.scope.describe(), t.text));
        }
        if self.tree {
            spans.push(Span::styled("  tree", t.text));
        }
        if let Some(hidden) = super::menu::hidden_text(&self.hidden) {
            spans.push(Span::styled(format!("  {hidden}"), t.label));
        }
        if self.command_offset > 0 {
            spans.push(Span::styled(format!("  command +{}", self.command_offset), t.text));
        }
        spans.push(Span::styled(format!("  every {}", interval_text(self.refresh_every)), t.label));
        if !self.tagged.is_empty() {
            spans.push(Span::styled(format!("  tagged {}", self.tagged.len()), t.process.tagged));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    /// Hosts that failed or did not answer the last list.
    fn problems_line(&self) -> Option<Line<'static>> {
        let t = &self.theme;
        let l = &self.listing;
        if l.failed.is_empty() && l.no_reply.is_empty() {
            return None;
        }
        let mut spans = Vec::new();
        if !l.no_reply.is_empty() {
            spans.push(Span::styled(format!("no reply from {}", l.no_reply.join(", ")), t.status.no_reply));
        }
        for (host, why) in &l.failed {
            if !spans.is_empty() {
                spans.push(Span::raw("  "));
            }
            spans.push(Span::styled(format!("{host}: {why}"), t.status.failed));
        }
        Some(Line::from(spans))
    }

    /// The columns that fit `width`, with their widths; COMMAND takes what is left.
    fn layout_columns(&self, width: u16) -> Vec<(Column, u16)> {
        let w = self.widths;
        let fixed = |c: Column| -> u16 {
            let content = match c {
                Column::Host => w.host,
                Column::User => w.user,
                Column::Pid | Column::Ppid => 7,
                Column::State => 1,
                Column::Cpu => 5,
                Column::Rss | Column::Vsz => 5,
                Column::Started => 8,
                Column::Command => 0,
            };
            // Room for the sort arrow after the header.
            content.max(c.header().len() as u16 + 1)
        };
        let mut shown: Vec<Column> = [Column::Host, Column::User, Column::Pid, Column::State, Column::Cpu, Column::Rss]
            .into_iter()
            .filter(|c| !self.hidden.contains(c))
            .collect();
        // The tag mark and the selection marker come before the columns.
        let mut used: u16 = MARKER.len() as u16 + 1 + shown.iter().map(|c| fixed(*c) + SPACING).sum::<u16>();
        for optional in [Column::Started, Column::Vsz, Column::Ppid].into_iter().filter(|c| !self.hidden.contains(c)) {
            if used + fixed(optional) + SPACING + MIN_COMMAND <= width {
                used += fixed(optional) + SPACING;
                shown.push(optional);
            }
        }
        shown.sort_by_key(|c| Column::ALL.iter().position(|x| x == c));
        let mut out: Vec<(Column, u16)> = shown.into_iter().map(|c| (c, fixed(c))).collect();
        out.push((Column::Command, width.saturating_sub(used + SPACING)));
        out
    }

    /// A cell's text; the command gets the row's tree branch and the horizontal scroll.
    fn cell_text(&self, p: &Proc, c: Column, prefix: &str) -> String {
        match c {
            Column::Host => p.host.clone(),
            Column::User => p.user.clone(),
            Column::Pid => p.pid.to_string(),
            Column::Ppid => p.ppid.to_string(),
            Column::State => p.state.clone(),
            Column::Cpu => cpu_text(p.cpu),
            Column::Rss => compact_bytes(p.rss),
            Column::Vsz => compact_bytes(p.vsz),
            Column::Started => started_text(p.started, self.now),
            Column::Command => {
                let command = match (p.zombie, p.parent_pid) {
                    (true, Some(ppid)) => {
                        format!("{}  zombie of {ppid} {}", p.cmdline, p.parent_cmdline.as_deref().unwrap_or_default())
                    }
                    _ => p.cmdline.clone(),
                };
                let shown: String = command.chars().skip(self.command_offset).collect();
                // A cut start is marked, so a scrolled line never reads as the whole command.
                if self.command_offset > 0 { format!("{prefix}…{shown}") } else { format!("{prefix}{shown}") }
            }
        }
    }

    fn draw_table(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        if area.height == 0 {
            return;
        }
        let columns = self.layout_columns(area.width);
        let mut header_cells = vec![Cell::from(" ")];
        for (c, _) in &columns {
            let arrow = if *c == self.sort { if self.descending { "▼" } else { "▲" } } else { "" };
            let text = format!("{}{arrow}", c.header());
            let line = if c.right_aligned() { Line::from(text).right_aligned() } else { Line::from(text) };
            header_cells.push(Cell::from(line));
        }
        let header = Row::new(header_cells).style(t.table.header);
        let mut widths = vec![Constraint::Length(1)];
        widths.extend(columns.iter().map(|(_, w)| Constraint::Length(*w)));

        // Only the rows on screen are built.
        let visible = (area.height as usize).saturating_sub(1).max(1);
        self.page.set(visible.saturating_sub(1).max(1));
        let top = scroll_top(self.scroll_top.get(), self.selected, visible, self.order.len());
        self.scroll_top.set(top);
        let end = (top + visible).min(self.order.len());
        let rows: Vec<Row> = self.order[top..end]
            .iter()
            .map(|&i| {
                let p = &self.listing.procs[i as usize];
                let tagged = self.is_tagged(p);
                let style = row_style(t, p, tagged);
                let mut cells = vec![Cell::from(if tagged { "*" } else { " " })];
                for (c, _) in &columns {
                    let text = self.cell_text(p, *c, self.prefix_of(i));
                    cells.push(Cell::from(if c.right_aligned() { Line::from(text).right_aligned() } else { Line::from(text) }));
                }
                Row::new(cells).style(style)
            })
            .collect();
        let table = Table::new(rows, widths)
            .header(header)
            .column_spacing(SPACING)
            .row_highlight_style(t.row.selected)
            .highlight_symbol(MARKER)
            .highlight_spacing(HighlightSpacing::Always);
        let mut state = TableState::default().with_selected((!self.order.is_empty()).then(|| self.selected - top));
        frame.render_stateful_widget(table, area, &mut state);
        if self.order.is_empty() && area.height > 1 {
            let why =
                if self.listed_at.is_none() { if self.refreshing() { "listing ..." } else { "no list yet" } } else { "no process matched" };
            let below_header = Rect { y: area.y + 1, height: 1, ..area };
            frame.render_widget(Paragraph::new(Span::styled(format!("  {why}"), t.label)), below_header);
        }
    }

    fn draw_signal_menu(&self, frame: &mut Frame, area: Rect, plan: &KillPlan, selected: usize) {
        let t = &self.theme;
        let mut lines: Vec<Line> = Signal::MENU
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let marker = if i == selected { MARKER } else { "  " };
                let line = Line::from(vec![Span::raw(format!("{marker}{:<5} ", s.name())), Span::styled(s.meaning(), t.label)]);
                if i == selected { line.style(t.row.selected) } else { line }
            })
            .collect();
        let parents = plan.targets.iter().filter(|x| x.parent_of_zombie.is_some()).count();
        if parents > 0 || !plan.orphan_zombies.is_empty() {
            lines.push(Line::raw(""));
        }
        if parents > 0 {
            lines.push(Line::from(Span::styled(format!("zombies cannot be killed: {parents} parent(s) get the signal"), t.label)));
            lines.push(Line::from(Span::styled("(CHLD asks a parent to reap, then TERM)", t.label)));
        }
        if !plan.orphan_zombies.is_empty() {
            lines.push(Line::from(Span::styled(format!("skipped, no parent: zombie {}", plan.orphan_zombies.join(", ")), t.label)));
        }
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::styled(" enter ", t.footer.key),
            Span::styled(" choose   ", t.popup),
            Span::styled(" esc ", t.footer.key),
            Span::styled(" cancel", t.popup),
        ]));
        let n = plan.targets.len();
        let title = format!(" Signal for {n} process{} ", if n == 1 { "" } else { "es" });
        popup(frame, area, t, &title, lines);
    }

    fn draw_confirm(&self, frame: &mut Frame, area: Rect, plan: &KillPlan, signal: Signal) {
        let t = &self.theme;
        let n = plan.targets.len();
        let plural = if n == 1 { "" } else { "es" };
        let (hw, uw) = target_widths(plan);
        let mut lines = vec![Line::from(Span::styled(format!("{:<hw$}  {:>7}  {:<uw$}  COMMAND", "HOST", "PID", "USER"), t.table.header))];
        // Room for the header, the count line and the key line.
        let room = (area.height as usize).saturating_sub(2 + 4).max(1);
        let listed = if n > room { room.saturating_sub(1) } else { n };
        // Each line fits the popup: the command gives way, the note on a zombie's parent stays.
        // Inside the popup: its borders, padding and the column left free on each side.
        let room_x = (area.width as usize).saturating_sub(6);
        for x in &plan.targets[..listed] {
            let head = format!("{:<hw$}  {:>7}  {:<uw$}  ", x.key.host, x.key.pid, x.user);
            let note = x.parent_of_zombie.map(|z| format!("  (parent of zombie {z})")).unwrap_or_default();
            let command = cut(&x.command, room_x.saturating_sub(head.chars().count() + note.chars().count()).max(8), '~');
            let mut spans = vec![Span::raw(head), Span::raw(command)];
            if !note.is_empty() {
                spans.push(Span::styled(note, t.label));
            }
            lines.push(Line::from(spans));
        }
        if listed < n {
            lines.push(Line::from(Span::styled(format!("... and {} more, all {n} shown in the table", n - listed), t.label)));
        }
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::styled(" enter ", t.footer.key),
            Span::styled(format!(" send {signal} to {n} process{plural}   "), t.popup),
            Span::styled(" esc ", t.footer.key),
            Span::styled(" cancel", t.popup),
        ]));
        let title = format!(" Send {signal} to {n} process{plural}? ");
        popup(frame, area, t, &title, lines);
    }
}

fn target_widths(plan: &KillPlan) -> (usize, usize) {
    let hw = plan.targets.iter().map(|x| x.key.host.chars().count()).max().unwrap_or(0).clamp(4, 24);
    let uw = plan.targets.iter().map(|x| x.user.chars().count()).max().unwrap_or(0).clamp(4, 12);
    (hw, uw)
}

/// A bordered popup centered in `area`, as wide as its widest line (or `area` allows).
pub(super) fn popup(frame: &mut Frame, area: Rect, t: &Theme, title: &str, lines: Vec<Line>) {
    let content = lines.iter().map(Line::width).max().unwrap_or(0).max(title.chars().count()) as u16;
    // A column of the panel stays visible on each side, so the popup reads as on top of it.
    let max_width = if area.width > 20 { area.width - 2 } else { area.width };
    let width = (content + 4).min(max_width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let rect = block::centered(area, width, height);
    let frame_block = block::popup(t, t.border, Span::styled(title.to_string(), t.title));
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(frame_block), rect);
}
