//! Drawing the RPC panel: the agents, the actions of the one selected, the request form (or what
//! is under the cursor) with its rollout fields, and the results table (with each node's batch in
//! a staged rollout) with how the rollout went and the DDL's aggregates under it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use super::{AgentEntry, AgentsState, Focus, ResultRow, RpcPanel};
use crate::console::action::ReplyRow;
use crate::console::form::FieldValue;
use crate::console::inspector::pretty::Unit;
use crate::console::keys::Mode;
use crate::console::record::{RequestRecord, RequestState};
use crate::console::widgets::block;
use crate::console::widgets::input::TextInput;
use crate::console::widgets::list::scroll_top;
use crate::console::widgets::text::{cut, first_line, ms_text};
use fleet_client::format::compact;
use fleet_client::nodeset::fold;

/// Width of a rollout field's label (`max failures`), and of its value.
const ROLLOUT_LABEL: usize = 13;
const ROLLOUT_VALUE: usize = 12;

impl RpcPanel {
    /// Draws the panel in `area` (the Component's `draw`).
    pub(super) fn render(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let pane = block::pane(t, " RPC ", true);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        let h = inner.height;
        let top_h = match (&self.current, self.focus) {
            (None, _) => h,
            (Some(_), Focus::Results) => (h / 3).max(5).min(h),
            (Some(_), _) => (h * 3 / 5).max(6).min(h),
        };
        let [top, bottom] = Layout::vertical([Constraint::Length(top_h), Constraint::Min(0)]).areas(inner);
        let agents_w = 20.min(top.width / 4);
        let actions_w = 21.min(top.width / 4);
        let [a, b, c] = Layout::horizontal([Constraint::Length(agents_w), Constraint::Length(actions_w), Constraint::Min(0)]).areas(top);
        self.draw_agents(frame, a);
        self.draw_actions(frame, b);
        self.draw_form(frame, c);
        if bottom.height > 0 {
            self.draw_results(frame, bottom);
        }
    }

    fn draw_agents(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let focused = self.focus == Focus::Agents;
        let pane = block::pane(t, " Agents ", focused);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        let lines: Vec<Line> = match &self.agents_state {
            AgentsState::NotAsked | AgentsState::Loading if self.agents.is_empty() => {
                vec![Line::from(Span::styled("asking the fleet ...", t.label))]
            }
            AgentsState::Failed(e) if self.agents.is_empty() => {
                let r = self.keys.key_text(Mode::Rpc, "refresh");
                vec![Line::from(Span::styled(e.clone(), t.error)), Line::from(Span::styled(format!("{r} asks again"), t.label))]
            }
            _ => self
                .agents
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let mark = if i == self.agent_cursor { "> " } else { "  " };
                    let style = if i == self.agent_cursor && focused { t.row.selected } else { t.text };
                    let mut spans = vec![
                        Span::styled(format!("{mark}{}", a.agent.name), style),
                        Span::styled(format!(" {}", a.agent.version), t.label),
                    ];
                    if a.ddl.is_err() {
                        spans.push(Span::styled(" no DDL", t.error));
                    }
                    Line::from(spans)
                })
                .collect(),
        };
        let top = scroll_top(0, self.agent_cursor, inner.height.max(1) as usize, lines.len());
        frame.render_widget(Paragraph::new(lines).scroll((top as u16, 0)), inner);
    }

    fn draw_actions(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let focused = self.focus == Focus::Actions;
        let pane = block::pane(t, " Actions ", focused);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        let Some(ddl) = self.ddl() else { return };
        let lines: Vec<Line> = ddl
            .actions
            .iter()
            .enumerate()
            .map(|(i, (name, act))| {
                let mark = if i == self.action_cursor { "> " } else { "  " };
                let style = if i == self.action_cursor && focused { t.row.selected } else { t.text };
                let mut spans = vec![Span::styled(format!("{mark}{name}"), style)];
                if act.destructive {
                    spans.push(Span::styled(" !", t.error));
                }
                Line::from(spans)
            })
            .collect();
        let top = scroll_top(0, self.action_cursor, inner.height.max(1) as usize, lines.len());
        frame.render_widget(Paragraph::new(lines).scroll((top as u16, 0)), inner);
    }

    fn form_lines(&self, width: usize) -> (Vec<Line<'static>>, usize) {
        let t = &self.theme;
        let mut lines = Vec::new();
        let mut focus_line = 0;
        let Some(ddl) = self.ddl() else {
            let text = match self.agent() {
                Some(AgentEntry { ddl: Err(e), .. }) => {
                    vec![Line::from(Span::styled(e.clone(), t.error))]
                }
                _ => vec![Line::from(Span::styled("pick an agent", t.label))],
            };
            return (text, 0);
        };
        let form = self.form.as_ref().filter(|f| f.agent == ddl.metadata.name && matches!(self.focus, Focus::Form | Focus::Results));
        let Some(form) = form else {
            // Not in a form yet: describe what is under the cursor.
            let actions = self.action_names();
            match (self.focus, actions.get(self.action_cursor).and_then(|a| ddl.action(a).map(|x| (a.clone(), x)))) {
                (Focus::Actions, Some((name, act))) => {
                    lines.push(Line::from(Span::styled(format!("{}#{name}", ddl.metadata.name), t.title)));
                    lines.push(Line::from(Span::styled(act.description.clone(), t.form.help)));
                    if act.destructive {
                        lines.push(Line::from(Span::styled("destructive: asks before it runs", t.error)));
                    }
                    let inputs: Vec<String> = act
                        .input
                        .iter()
                        .map(|(n, i)| if i.optional || i.default.is_some() { format!("[{n}]") } else { n.clone() })
                        .collect();
                    lines.push(Line::from(Span::styled(
                        if inputs.is_empty() { "no inputs".to_string() } else { format!("inputs: {}", inputs.join(" ")) },
                        t.label,
                    )));
                }
                _ => {
                    lines.push(Line::from(Span::styled(format!("{} {}", ddl.metadata.name, ddl.metadata.version), t.title)));
                    lines.push(Line::from(Span::styled(ddl.metadata.description.clone(), t.form.help)));
                }
            }
            return (lines, 0);
        };
        let act = form.action_def();
        lines.push(Line::from(vec![
            Span::styled(format!("{}#{}", form.agent, form.action), t.title),
            Span::styled(format!(" on {}", self.scope.describe()), t.label),
        ]));
        if form.fields.is_empty() {
            let run = self.keys.key_text(Mode::RpcForm, "submit");
            lines.push(Line::from(Span::styled(format!("no inputs: {run} runs it"), t.label)));
        }
        let field_width = width.saturating_sub(4).max(8);
        let on_rollout = self.rollout_field().is_some();
        for (i, f) in form.fields.iter().enumerate() {
            let focused = i == form.cursor && self.focus == Focus::Form && !on_rollout;
            let typing = focused && self.editing.is_some();
            let mut label =
                vec![Span::styled(if f.required() { "* " } else { "  " }, t.form.required), Span::styled(f.input.prompt.clone(), t.text)];
            label.push(Span::styled(format!("  ({})", f.name), t.label));
            lines.push(Line::from(label));
            // The field being typed in gets a frame (drawn by draw_form over these blank rows).
            if typing {
                lines.push(Line::raw(""));
            }
            if focused {
                focus_line = lines.len();
            }
            let shown = f.display();
            let value_style = if typing {
                t.input
            } else if focused {
                t.form.focused
            } else {
                t.form.field
            };
            let text = if f.is_text() {
                let visible: String = shown.chars().rev().take(field_width).collect::<Vec<_>>().into_iter().rev().collect();
                format!("{visible:<field_width$}")
            } else {
                format!("< {shown} >")
            };
            lines.push(Line::from(vec![Span::raw("  "), Span::styled(text, value_style)]));
            if typing {
                lines.push(Line::raw(""));
            }
            if let Some(err) = form.shown_error(i) {
                lines.push(Line::from(Span::styled(format!("  ✗ {err}"), t.form.invalid)));
            }
        }
        if let Some(f) = form.focused().filter(|_| self.focus == Focus::Form && !on_rollout) {
            lines.push(Line::raw(""));
            lines.push(Line::from(Span::styled(f.input.description.clone(), t.form.help)));
            lines.push(Line::from(Span::styled(f.rules(), t.form.help)));
            let how = match (self.editing.is_some(), f.is_text()) {
                (true, _) => {
                    let done = self.keys.key_text(Mode::RpcField, "done");
                    let undo = self.keys.key_text(Mode::RpcField, "undo");
                    format!("typing: {done} keeps it, {undo} undoes")
                }
                (false, true) => format!("{} types in this field", self.keys.key_text(Mode::RpcForm, "edit")),
                (false, false) => "space, left and right change the value".to_string(),
            };
            lines.push(Line::from(Span::styled(how, t.label)));
            if self.editing.is_none() {
                lines.push(Line::from(Span::styled(format!("{} runs the request", self.keys.key_text(Mode::RpcForm, "submit")), t.label)));
            }
        }
        if act.destructive {
            lines.push(Line::from(Span::styled("destructive: asks before it runs", t.error)));
        }
        // The rollout fields, next to the key that runs the request.
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![Span::styled("Rollout", t.title), Span::styled(format!(": {}", self.rollout.describe()), t.label)]));
        for (i, f) in self.rollout.fields.iter().enumerate() {
            let focused = self.rollout_field() == Some(i);
            let typing = focused && self.editing.is_some();
            if typing {
                lines.push(Line::raw(""));
                focus_line = lines.len();
            } else if focused {
                focus_line = lines.len();
            }
            let text = f.input.text();
            let (shown, style) = match (text.is_empty(), typing, focused) {
                (_, true, _) => (text.to_string(), t.input),
                (true, false, true) => (f.empty.to_string(), t.form.focused),
                (true, false, false) => (f.empty.to_string(), t.label),
                (false, false, true) => (text.to_string(), t.form.focused),
                (false, false, false) => (text.to_string(), t.form.field),
            };
            // A long value shows its end, where the cursor is.
            let visible: String = shown.chars().rev().take(ROLLOUT_VALUE).collect::<Vec<_>>().into_iter().rev().collect();
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<ROLLOUT_LABEL$}", f.label), t.text),
                Span::styled(format!("{visible:<ROLLOUT_VALUE$}"), style),
            ]));
            if typing {
                lines.push(Line::raw(""));
            }
        }
        if let Some(f) = self.rollout_field().and_then(|i| self.rollout.get(i)) {
            lines.push(Line::raw(""));
            lines.push(Line::from(Span::styled(format!("--{}: {}", f.flag, f.help), t.form.help)));
            let how = if self.editing.is_some() {
                let done = self.keys.key_text(Mode::RpcField, "done");
                let undo = self.keys.key_text(Mode::RpcField, "undo");
                format!("typing: {done} keeps it, {undo} undoes")
            } else {
                format!("{} types in this field", self.keys.key_text(Mode::RpcForm, "edit"))
            };
            lines.push(Line::from(Span::styled(how, t.label)));
            if self.editing.is_none() {
                lines.push(Line::from(Span::styled(format!("{} runs the request", self.keys.key_text(Mode::RpcForm, "submit")), t.label)));
            }
        }
        (lines, focus_line)
    }

    fn draw_form(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let focused = self.focus == Focus::Form;
        let rollout_field = self.rollout_field().and_then(|i| self.rollout.get(i));
        let title = match (&self.form, &self.editing, rollout_field) {
            (Some(_), Some(_), Some(f)) if focused => format!(" Request: typing in {} ", f.flag),
            (Some(form), Some(_), None) if focused => {
                format!(" Request: typing in {} ", form.focused().map(|f| f.name.as_str()).unwrap_or(""))
            }
            _ => " Request ".to_string(),
        };
        let pane = block::pane(t, title, focused);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        let (lines, focus_line) = self.form_lines(inner.width as usize);
        // Long help and rules wrap; keep the focused field and its value line on screen.
        let width = inner.width.max(1) as usize;
        let rows = |l: &Line| l.width().div_ceil(width).max(1);
        let focus_row: usize = lines.iter().take(focus_line).map(rows).sum();
        let height = inner.height as usize;
        // In a short pane the focused value and the frame's top row stay in view.
        let top = (focus_row + 3).saturating_sub(height).min(focus_row.saturating_sub(1));
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((top as u16, 0)), inner);
        // Only a field being typed in has the terminal cursor, inside a frame of its own: a form
        // field's value starts 2 columns in, a rollout field's after its label.
        let typed: Option<(&TextInput, usize, usize)> = match (rollout_field, &self.form) {
            (Some(f), _) => Some((&f.input, 2 + ROLLOUT_LABEL, ROLLOUT_VALUE)),
            (None, Some(form)) => match form.focused().map(|f| &f.value) {
                Some(FieldValue::Text(input)) => Some((input, 2, (inner.width as usize).saturating_sub(4).max(8))),
                _ => None,
            },
            (None, None) => None,
        };
        if focused
            && self.editing.is_some()
            && let Some((input, column, field_width)) = typed
        {
            let y = inner.y + focus_row.saturating_sub(top) as u16;
            let frame_rect = Rect {
                x: inner.x + column as u16 - 1,
                y: y.saturating_sub(1),
                width: (field_width as u16 + 2).min(inner.width.saturating_sub(column as u16 - 1)),
                height: 3,
            };
            if frame_rect.y >= inner.y && frame_rect.bottom() <= inner.bottom() {
                frame.render_widget(ratatui::widgets::Block::bordered().border_style(t.border_focused), frame_rect);
            }
            let len = input.text().chars().count();
            let offset = len.saturating_sub(field_width);
            let x = inner.x + column as u16 + (input.cursor().saturating_sub(offset)).min(field_width) as u16;
            if y < inner.bottom() && x < inner.right() {
                frame.set_cursor_position((x, y));
            }
        }
    }

    fn summary_line(&self, rec: &RequestRecord, spinner: bool) -> Line<'static> {
        let t = &self.theme;
        let mut spans = vec![Span::styled(rec.what(), t.title), Span::styled(format!(" on {}", rec.scope.describe()), t.label)];
        if let Some(id) = &rec.request_id {
            spans.push(Span::styled(format!("  req {}", short_id(id)), t.label));
        }
        let targets = rec.target_count().map(|n| n.to_string()).unwrap_or_else(|| "?".into());
        spans.push(Span::styled(format!("  {} / {targets}", rec.replies.len()), t.text));
        spans.push(Span::styled(format!("  {} ok", rec.ok_count()), t.status.ok));
        spans.push(Span::styled(format!("  {} failed", rec.failed_count()), t.status.failed));
        spans.push(Span::styled(format!("  {} no reply", rec.no_reply.len()), t.status.no_reply));
        match &rec.state {
            RequestState::Running if spinner => spans.push(Span::styled("  running ...", t.spinner)),
            RequestState::Running => {}
            RequestState::Done { elapsed_ms } => spans.push(Span::styled(format!("  in {elapsed_ms:.0} ms"), t.label)),
            RequestState::Failed(e) => spans.push(Span::styled(format!("  failed: {}", first_line(e)), t.error)),
        }
        Line::from(spans)
    }

    fn draw_results(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let focused = self.focus == Focus::Results;
        let pane = block::pane(t, " Results ", focused);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        let Some(rec) = &self.current else { return };
        let ddl = fleet_client::ddl::find(&rec.agent).ok();
        let act = ddl.as_ref().and_then(|d| d.action(&rec.action));
        // Under the table: how the rollout went, then the DDL's aggregates.
        let mut under = self.rollout_lines(rec);
        under.extend(
            act.map(|a| aggregate_lines(a, &rec.replies)).unwrap_or_default().into_iter().map(|l| Line::from(Span::styled(l, t.text))),
        );
        // The stop reason is long: these lines wrap, and get the rows they wrap to.
        let under_rows: usize = under.iter().map(|l| l.width().div_ceil(inner.width.max(1) as usize).max(1)).sum();
        let [summary_area, table_area, agg_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(2),
            Constraint::Length((under_rows as u16).min(inner.height.saturating_sub(4))),
        ])
        .areas(inner);
        frame.render_widget(Paragraph::new(self.summary_line(rec, true)), summary_area);
        // The columns: the outputs in DDL order, labelled with display_as, as many as fit.
        let outputs: Vec<(String, String, Unit)> =
            act.map(|a| a.output.iter().map(|(k, o)| (k.clone(), o.display_as.clone(), Unit::of_output(o))).collect()).unwrap_or_default();
        let rows = self.result_rows();
        let batches = self.batches();
        let batch_width = if batches.is_some() { 6 } else { 0 };
        let name_width = rows.iter().map(|r| r.sender().chars().count()).max().unwrap_or(4).clamp(4, 24) as u16;
        let fixed = 2 + name_width + 1 + 9 + 1 + 9 + batch_width;
        let room = table_area.width.saturating_sub(fixed);
        let per = 14u16;
        let ncols = if outputs.is_empty() { 1 } else { ((room / per).max(1) as usize).min(outputs.len()) };
        let mut header = vec![Cell::from(""), Cell::from("NODE"), Cell::from("STATUS")];
        let mut widths = vec![Constraint::Length(2), Constraint::Length(name_width), Constraint::Length(9)];
        if batches.is_some() {
            header.push(Cell::from("BATCH"));
            widths.push(Constraint::Length(5));
        }
        if outputs.is_empty() {
            header.push(Cell::from("DATA"));
            widths.push(Constraint::Fill(1));
        }
        for (_, label, _) in outputs.iter().take(ncols) {
            header.push(Cell::from(label.clone()));
            widths.push(Constraint::Fill(1));
        }
        header.push(Cell::from(Line::from("TIME").right_aligned()));
        widths.push(Constraint::Length(9));
        let visible = (table_area.height as usize).saturating_sub(1).max(1);
        self.page.set(visible);
        let cursor = self.result_cursor.min(rows.len().saturating_sub(1));
        let top = scroll_top(self.result_top.get(), cursor, visible, rows.len());
        self.result_top.set(top);
        // A failed reply's message spans every data column (drawn over them below), so it is
        // not cut at the first column's width.
        let mut errors: Vec<(usize, String)> = Vec::new();
        let body: Vec<Row> = rows
            .iter()
            .enumerate()
            .skip(top)
            .take(visible)
            .map(|(i, r)| {
                let mark = if i == cursor && focused { "> " } else { "  " };
                let mut cells = vec![Cell::from(mark), Cell::from(r.sender().to_string())];
                // Some(cell) whenever the column is shown, so the columns after it stay in place.
                let batch = batches
                    .as_ref()
                    .map(|b| Cell::from(Line::from(b.get(r.sender()).map(usize::to_string).unwrap_or_default()).right_aligned()));
                match r {
                    ResultRow::Reply(rep) => {
                        let (word, style) = if !rep.expected {
                            ("unexpected", t.status.unexpected)
                        } else if rep.status.is_ok() {
                            ("ok", t.status.ok)
                        } else {
                            ("failed", t.status.failed)
                        };
                        cells.push(Cell::from(Span::styled(word, style)));
                        cells.extend(batch);
                        if !rep.status.is_ok() {
                            let msg =
                                if rep.message.is_empty() { rep.status.to_string() } else { format!("{}: {}", rep.status, rep.message) };
                            errors.push((i - top, msg));
                            for _ in 0..ncols {
                                cells.push(Cell::from(""));
                            }
                        } else if outputs.is_empty() {
                            cells.push(Cell::from(compact(&rep.data)));
                        } else {
                            for (key, _, unit) in outputs.iter().take(ncols) {
                                cells.push(Cell::from(cell_text(&rep.data[key.as_str()], *unit)));
                            }
                        }
                        cells.push(Cell::from(Line::from(ms_text(rep.ms)).right_aligned()));
                    }
                    ResultRow::Waiting(_) => cells.extend([Cell::from(Span::styled("pending", t.status.pending))].into_iter().chain(batch)),
                    ResultRow::NoReply(_) => {
                        cells.extend([Cell::from(Span::styled("no reply", t.status.no_reply))].into_iter().chain(batch))
                    }
                    ResultRow::NeverAsked(_) => cells.extend([Cell::from(Span::styled("not asked", t.label))].into_iter().chain(batch)),
                }
                let row = Row::new(cells);
                if i == cursor && focused { row.style(t.row.selected) } else { row }
            })
            .collect();
        let table = Table::new(body, widths.clone()).header(Row::new(header).style(t.table.header)).column_spacing(1);
        frame.render_widget(table, table_area);
        let columns = Layout::horizontal(widths).spacing(1).split(table_area);
        let first_data = 3 + usize::from(batches.is_some());
        if let (Some(first), Some(last)) = (columns.get(first_data), columns.len().checked_sub(2).and_then(|i| columns.get(i))) {
            let width = last.right().saturating_sub(first.x);
            for (row, msg) in errors {
                let y = table_area.y + 1 + row as u16;
                let style =
                    if top + row == cursor && focused { t.status.failed.style().patch(t.row.selected) } else { t.status.failed.style() };
                let text = cut(first_line(&msg), width as usize, '…');
                frame.render_widget(
                    Paragraph::new(Span::styled(format!("{text:<w$}", w = width as usize), style)),
                    Rect { x: first.x, y, width, height: 1 },
                );
            }
        }
        frame.render_widget(Paragraph::new(under).wrap(Wrap { trim: false }), agg_area);
    }

    /// How a limited or staged request went, in the CLI's words (`print_rollout`): the subset,
    /// the batches, and where a stopped rollout stopped with the nodes never asked.
    fn rollout_lines(&self, rec: &RequestRecord) -> Vec<Line<'static>> {
        let t = &self.theme;
        let Some(r) = self.report() else { return Vec::new() };
        let mut lines = Vec::new();
        if let (Some(matched), Some(seed)) = (r.matched, r.seed) {
            let asked = rec.target_count().unwrap_or(0);
            lines.push(Line::from(Span::styled(
                format!("Limited to {asked} of {matched} matching nodes (seed {seed} picks the same ones)"),
                t.label,
            )));
        }
        if r.batch_count > 0 {
            let canary = if r.canary { " (batch 1: the canary)" } else { "" };
            lines.push(Line::from(Span::styled(
                format!("Rollout: {} batch{}{canary}", r.batch_count, if r.batch_count == 1 { "" } else { "es" }),
                t.label,
            )));
        }
        if let Some(stop) = &r.stopped {
            lines.push(Line::from(Span::styled(format!("STOPPED in batch {} of {}: {}", stop.batch, r.batch_count, stop.reason), t.error)));
            let never = if r.never_asked.is_empty() { "none".to_string() } else { fold(&r.never_asked) };
            lines.push(Line::from(Span::styled(format!("Never asked: {never} (nothing was sent after the stop)"), t.error)));
        }
        lines
    }
}

/// A result cell: a number in the output's unit (a size, a date), anything else on one line.
fn cell_text(v: &serde_json::Value, unit: Unit) -> String {
    if v.is_array() || v.is_object() { compact(v) } else { unit.short(v) }
}

/// The first 8 characters of a request id.
pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// The DDL's aggregates over the ok replies, one line each (`Summary of Value: uk = 2, de = 1`),
/// computed by the client core as the CLI's are.
pub fn aggregate_lines(act: &fleet_ddl::Action, replies: &[ReplyRow]) -> Vec<String> {
    fleet_client::aggregate::compute(act, replies.iter().map(|r| (&r.status, &r.data))).iter().map(|a| a.line()).collect()
}
