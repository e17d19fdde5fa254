//! The RPC panel: pick an agent the fleet reports (rpcutil agent_inventory over the current
//! scope) and one of its actions, fill in the form generated from its DDL, and run it on the
//! current discovery selection or filter. Replies stream into a table labelled with the outputs'
//! `display_as`, followed by the DDL's aggregates. A destructive action asks first, listing the
//! targets; read-only mode refuses it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent};
use fleet_ddl::Ddl;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};
use serde_json::Value;

use super::action::{Action, Confirm, Nav, NetCommand, Notice, PanelId, ReplyRow, RequestEvent, RequestInfo, Scope, TextEdit};
use super::component::{Component, PanelContext};
use super::discovery::{scroll_top, text_edit};
use super::form::Form;
use super::keys::{Key, Keymap, Mode};
use super::record::{RequestKey, RequestRecord, RequestState};
use super::theme::Theme;
use fleet_client::format::{compact, value_text};

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// Go deeper: agent -> its actions -> the form.
    Enter,
    /// Go back: results -> form -> actions -> agents -> the previous panel.
    Back,
    ShowResults,
    RefreshAgents,
    NextField,
    PrevField,
    ValueNext,
    ValuePrev,
    Edit(TextEdit),
    Submit,
    /// The confirmation popup said yes to the pending destructive request.
    Confirmed,
    /// The agents the fleet reported.
    Agents(Result<Vec<FleetAgent>, String>),
}

/// An agent as the fleet reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetAgent {
    pub name: String,
    pub version: String,
    /// How many nodes reported it.
    pub nodes: usize,
}

#[derive(Debug, Clone)]
struct AgentEntry {
    agent: FleetAgent,
    /// The DDL the console found for it (built in, or on the DDL path).
    ddl: Result<Arc<Ddl>, String>,
}

#[derive(Debug, Clone, PartialEq)]
enum AgentsState {
    NotAsked,
    Loading,
    Ready,
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Agents,
    Actions,
    Form,
    Results,
}

pub struct RpcPanel {
    theme: Theme,
    keys: Arc<Keymap>,
    read_only: bool,
    scope: Scope,
    /// The nodes the last discovery round found, to name the targets of a filter in a confirmation.
    discovered: Vec<String>,
    last_round: u64,
    agents: Vec<AgentEntry>,
    agents_state: AgentsState,
    agent_cursor: usize,
    action_cursor: usize,
    focus: Focus,
    form: Option<Form>,
    /// Arguments of a destructive request waiting for its confirmation.
    pending: Option<serde_json::Map<String, Value>>,
    next_id: u64,
    current: Option<RequestRecord>,
    result_cursor: usize,
    now: SystemTime,
    shown: bool,
    result_top: std::cell::Cell<usize>,
    page: std::cell::Cell<usize>,
}

impl RpcPanel {
    pub fn new(ctx: &PanelContext) -> RpcPanel {
        RpcPanel {
            theme: ctx.theme.clone(),
            keys: ctx.keys.clone(),
            read_only: ctx.read_only,
            scope: ctx.scope.clone(),
            discovered: Vec::new(),
            last_round: 0,
            agents: Vec::new(),
            agents_state: AgentsState::NotAsked,
            agent_cursor: 0,
            action_cursor: 0,
            focus: Focus::Agents,
            form: None,
            pending: None,
            next_id: 0,
            current: None,
            result_cursor: 0,
            now: SystemTime::UNIX_EPOCH,
            shown: false,
            result_top: Default::default(),
            page: std::cell::Cell::new(10),
        }
    }

    pub fn mode(&self) -> Mode {
        if self.focus == Focus::Form { Mode::RpcForm } else { Mode::Rpc }
    }

    pub fn focus(&self) -> Focus {
        self.focus
    }

    pub fn form(&self) -> Option<&Form> {
        self.form.as_ref()
    }

    pub fn current(&self) -> Option<&RequestRecord> {
        self.current.as_ref()
    }

    pub fn agent_names(&self) -> Vec<&str> {
        self.agents.iter().map(|a| a.agent.name.as_str()).collect()
    }

    fn agent(&self) -> Option<&AgentEntry> {
        self.agents.get(self.agent_cursor)
    }

    fn ddl(&self) -> Option<Arc<Ddl>> {
        self.agent().and_then(|a| a.ddl.as_ref().ok().cloned())
    }

    fn action_names(&self) -> Vec<String> {
        self.ddl().map(|d| d.actions.keys().cloned().collect()).unwrap_or_default()
    }

    fn ask_agents(&mut self) -> Option<Action> {
        if self.agents_state == AgentsState::Loading {
            return None;
        }
        self.agents_state = AgentsState::Loading;
        Some(NetCommand::FleetAgents { scope: self.scope.clone() }.into())
    }

    fn set_agents(&mut self, list: Vec<FleetAgent>) {
        let keep = self.agent().map(|a| a.agent.name.clone());
        let mut list = list;
        list.sort_by(|a, b| a.name.cmp(&b.name));
        self.agents = list
            .into_iter()
            .map(|agent| {
                let ddl = fleet_client::ddl::find(&agent.name).map(Arc::new).map_err(|e| format!("{e:#}"));
                AgentEntry { agent, ddl }
            })
            .collect();
        self.agent_cursor = keep.and_then(|k| self.agents.iter().position(|a| a.agent.name == k)).unwrap_or(0);
        self.agents_state = AgentsState::Ready;
    }

    fn move_cursor(&mut self, nav: Nav) {
        let page = self.page.get();
        match self.focus {
            Focus::Agents => {
                let before = self.agent_cursor;
                self.agent_cursor = nav.step(self.agent_cursor, self.agents.len(), page);
                if before != self.agent_cursor {
                    self.action_cursor = 0;
                }
            }
            Focus::Actions => self.action_cursor = nav.step(self.action_cursor, self.action_names().len(), page),
            Focus::Results => self.result_cursor = nav.step(self.result_cursor, self.result_rows().len(), page),
            Focus::Form => {}
        }
    }

    fn open_form(&mut self) -> Option<Action> {
        let ddl = self.ddl()?;
        let action = self.action_names().get(self.action_cursor)?.clone();
        let same = self.form.as_ref().is_some_and(|f| f.agent == ddl.metadata.name && f.action == action);
        if !same {
            self.form = Form::new(ddl, &action);
        }
        self.focus = Focus::Form;
        None
    }

    fn submit(&mut self) -> Option<Action> {
        let form = self.form.as_mut()?;
        form.tried = true;
        let args = match form.args() {
            Ok(a) => a,
            Err(errors) => {
                if let Some(i) = form.fields.iter().position(|f| errors.iter().any(|(n, _)| *n == f.name)) {
                    form.cursor = i;
                }
                let what: Vec<String> = errors.iter().map(|(n, e)| if n.is_empty() { e.to_string() } else { format!("{n} {e}") }).collect();
                return Some(Notice::error(format!("nothing sent: {}", what.join("; "))));
            }
        };
        let destructive = form.action_def().destructive;
        let what = format!("{}#{}", form.agent, form.action);
        if destructive && self.read_only {
            return Some(Notice::error(format!("read-only: {what} is destructive and is disabled")));
        }
        if destructive {
            self.pending = Some(args);
            return Some(Action::Confirm(Box::new(self.confirmation(&what))));
        }
        Some(self.start(args))
    }

    /// The confirmation of a destructive request: exactly who will get it.
    fn confirmation(&self, what: &str) -> Confirm {
        let (count, names) = match &self.scope.targets {
            Some(t) => (t.len(), t.clone()),
            None => (self.discovered.len(), self.discovered.clone()),
        };
        let mut lines = vec![format!("Run {what} on {}?", self.scope.describe())];
        if self.scope.targets.is_none() {
            lines.push(format!("At the last discovery that was {count} node(s):"));
        } else {
            lines.push(format!("{count} node(s):"));
        }
        const SHOWN: usize = 12;
        for n in names.iter().take(SHOWN) {
            lines.push(format!("  {n}"));
        }
        if names.len() > SHOWN {
            lines.push(format!("  ... and {} more", names.len() - SHOWN));
        }
        if let Some(args) = &self.pending {
            for (k, v) in args {
                lines.push(format!("{k} = {}", value_text(v)));
            }
        }
        Confirm { title: format!("{what} is destructive"), lines, yes: Action::Rpc(Msg::Confirmed) }
    }

    fn start(&mut self, args: serde_json::Map<String, Value>) -> Action {
        let form = self.form.as_ref().expect("a form to start from");
        self.next_id += 1;
        let info = RequestInfo {
            id: self.next_id,
            agent: form.agent.clone(),
            action: form.action.clone(),
            args: args.clone(),
            scope: self.scope.clone(),
            timeout: Duration::from_secs(form.ddl.metadata.timeout),
            started: self.now,
        };
        self.current =
            Some(RequestRecord::new(RequestKey::Rpc(info.id), &info.agent, &info.action, args, info.scope.clone(), info.started));
        self.result_cursor = 0;
        self.focus = Focus::Results;
        Action::RequestStarted(Box::new(info))
    }

    /// The rows of the results table: every reply by node name, then the silent nodes.
    fn result_rows(&self) -> Vec<ResultRow<'_>> {
        let Some(rec) = &self.current else {
            return Vec::new();
        };
        let mut rows: Vec<ResultRow> = rec.replies.iter().map(ResultRow::Reply).collect();
        rows.sort_by(|a, b| a.sender().cmp(b.sender()));
        if rec.running()
            && let Some(d) = &rec.discovered
        {
            rows.extend(d.iter().filter(|n| rec.reply(n).is_none()).map(|n| ResultRow::Waiting(n)));
        }
        rows.extend(rec.no_reply.iter().map(|n| ResultRow::NoReply(n)));
        rows
    }

    fn on_msg(&mut self, msg: Msg) -> Option<Action> {
        match msg {
            Msg::Enter => match self.focus {
                Focus::Agents => {
                    if let Some(a) = self.agent() {
                        if let Err(e) = &a.ddl {
                            return Some(Notice::error(e.clone()));
                        }
                        self.focus = Focus::Actions;
                    }
                }
                Focus::Actions => return self.open_form(),
                Focus::Form => return self.submit(),
                Focus::Results => {}
            },
            Msg::Back => {
                self.focus = match self.focus {
                    Focus::Results if self.form.is_some() => Focus::Form,
                    Focus::Results | Focus::Form => Focus::Actions,
                    Focus::Actions => Focus::Agents,
                    Focus::Agents => return Some(Action::Back),
                }
            }
            Msg::ShowResults => {
                if self.current.is_some() {
                    self.focus = Focus::Results;
                } else {
                    return Some(Notice::info("no results yet: run a request first"));
                }
            }
            Msg::RefreshAgents => return self.ask_agents(),
            Msg::NextField => self.form.as_mut()?.next_field(),
            Msg::PrevField => self.form.as_mut()?.prev_field(),
            Msg::ValueNext => self.form.as_mut()?.step(true),
            Msg::ValuePrev => self.form.as_mut()?.step(false),
            Msg::Edit(e) => self.form.as_mut()?.edit(e),
            Msg::Submit => return self.submit(),
            Msg::Confirmed => {
                let args = self.pending.take()?;
                return Some(self.start(args));
            }
            Msg::Agents(Ok(list)) => self.set_agents(list),
            Msg::Agents(Err(e)) => self.agents_state = AgentsState::Failed(e),
        }
        None
    }

    // --- drawing ---

    fn draw_agents(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let focused = self.focus == Focus::Agents;
        let block =
            Block::bordered().border_style(if focused { t.border_focused } else { t.border }).title(Span::styled(" Agents ", t.title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let lines: Vec<Line> = match &self.agents_state {
            AgentsState::NotAsked | AgentsState::Loading if self.agents.is_empty() => {
                vec![Line::from(Span::styled("asking the fleet ...", t.label))]
            }
            AgentsState::Failed(e) if self.agents.is_empty() => {
                let r = self.keys.key_of(Mode::Rpc, "refresh").map(|k| k.to_string()).unwrap_or_default();
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
        let block =
            Block::bordered().border_style(if focused { t.border_focused } else { t.border }).title(Span::styled(" Actions ", t.title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
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
            lines.push(Line::from(Span::styled("no inputs: enter runs it", t.label)));
        }
        let field_width = width.saturating_sub(4).max(8);
        for (i, f) in form.fields.iter().enumerate() {
            let focused = i == form.cursor && self.focus == Focus::Form;
            if focused {
                focus_line = lines.len();
            }
            let mut label =
                vec![Span::styled(if f.required() { "* " } else { "  " }, t.form.required), Span::styled(f.input.prompt.clone(), t.text)];
            label.push(Span::styled(format!("  ({})", f.name), t.label));
            lines.push(Line::from(label));
            let shown = f.display();
            let value_style = if focused { t.form.focused } else { t.form.field };
            let text = if f.is_text() {
                let visible: String = shown.chars().rev().take(field_width).collect::<Vec<_>>().into_iter().rev().collect();
                format!("{visible:<field_width$}")
            } else {
                format!("< {shown} >")
            };
            lines.push(Line::from(vec![Span::raw("  "), Span::styled(text, value_style)]));
            if let Some(err) = form.shown_error(i) {
                lines.push(Line::from(Span::styled(format!("  ✗ {err}"), t.form.invalid)));
            }
        }
        if let Some(f) = form.focused().filter(|_| self.focus == Focus::Form) {
            lines.push(Line::raw(""));
            lines.push(Line::from(Span::styled(f.input.description.clone(), t.form.help)));
            lines.push(Line::from(Span::styled(f.rules(), t.form.help)));
            if !f.is_text() {
                lines.push(Line::from(Span::styled("space, left and right change the value", t.label)));
            }
        }
        if act.destructive {
            lines.push(Line::from(Span::styled("destructive: asks before it runs", t.error)));
        }
        (lines, focus_line)
    }

    fn draw_form(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let focused = self.focus == Focus::Form;
        let block =
            Block::bordered().border_style(if focused { t.border_focused } else { t.border }).title(Span::styled(" Request ", t.title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let (lines, focus_line) = self.form_lines(inner.width as usize);
        // Long help and rules wrap; keep the focused field and its value line on screen.
        let width = inner.width.max(1) as usize;
        let rows = |l: &Line| l.width().div_ceil(width).max(1);
        let focus_row: usize = lines.iter().take(focus_line).map(rows).sum();
        let height = inner.height as usize;
        let top = (focus_row + 3).saturating_sub(height);
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).scroll((top as u16, 0)), inner);
        if focused
            && let Some(form) = &self.form
            && let Some(f) = form.focused()
            && let super::form::FieldValue::Text(input) = &f.value
        {
            let field_width = (inner.width as usize).saturating_sub(4).max(8);
            let len = input.text().chars().count();
            let offset = len.saturating_sub(field_width);
            let x = inner.x + 2 + (input.cursor().saturating_sub(offset)).min(field_width) as u16;
            let y = inner.y + (focus_row + 1).saturating_sub(top) as u16;
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
            RequestState::Failed(e) => spans.push(Span::styled(format!("  failed: {}", e.lines().next().unwrap_or_default()), t.error)),
        }
        Line::from(spans)
    }

    fn draw_results(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let focused = self.focus == Focus::Results;
        let block =
            Block::bordered().border_style(if focused { t.border_focused } else { t.border }).title(Span::styled(" Results ", t.title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let Some(rec) = &self.current else { return };
        let ddl = fleet_client::ddl::find(&rec.agent).ok();
        let act = ddl.as_ref().and_then(|d| d.action(&rec.action));
        let aggregates = act.map(|a| aggregate_lines(a, &rec.replies)).unwrap_or_default();
        let [summary_area, table_area, agg_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(2),
            Constraint::Length((aggregates.len() as u16).min(inner.height.saturating_sub(4))),
        ])
        .areas(inner);
        frame.render_widget(Paragraph::new(self.summary_line(rec, true)), summary_area);
        // The columns: the outputs in DDL order, labelled with display_as, as many as fit.
        let outputs: Vec<(String, String)> =
            act.map(|a| a.output.iter().map(|(k, o)| (k.clone(), o.display_as.clone())).collect()).unwrap_or_default();
        let rows = self.result_rows();
        let name_width = rows.iter().map(|r| r.sender().chars().count()).max().unwrap_or(4).clamp(4, 24) as u16;
        let fixed = 2 + name_width + 1 + 9 + 1 + 9;
        let room = table_area.width.saturating_sub(fixed);
        let per = 14u16;
        let ncols = if outputs.is_empty() { 1 } else { ((room / per).max(1) as usize).min(outputs.len()) };
        let mut header = vec![Cell::from(""), Cell::from("NODE"), Cell::from("STATUS")];
        let mut widths = vec![Constraint::Length(2), Constraint::Length(name_width), Constraint::Length(9)];
        if outputs.is_empty() {
            header.push(Cell::from("DATA"));
            widths.push(Constraint::Fill(1));
        }
        for (_, label) in outputs.iter().take(ncols) {
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
        let body: Vec<Row> = rows
            .iter()
            .enumerate()
            .skip(top)
            .take(visible)
            .map(|(i, r)| {
                let mark = if i == cursor && focused { "> " } else { "  " };
                let mut cells = vec![Cell::from(mark), Cell::from(r.sender().to_string())];
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
                        if !rep.status.is_ok() {
                            let msg =
                                if rep.message.is_empty() { rep.status.to_string() } else { format!("{}: {}", rep.status, rep.message) };
                            cells.push(Cell::from(Span::styled(msg, t.status.failed)));
                            for _ in 1..ncols {
                                cells.push(Cell::from(""));
                            }
                        } else if outputs.is_empty() {
                            cells.push(Cell::from(compact(&rep.data)));
                        } else {
                            for (key, _) in outputs.iter().take(ncols) {
                                cells.push(Cell::from(compact(&rep.data[key.as_str()])));
                            }
                        }
                        cells.push(Cell::from(Line::from(format!("{:.1} ms", rep.ms)).right_aligned()));
                    }
                    ResultRow::Waiting(_) => cells.push(Cell::from(Span::styled("pending", t.status.pending))),
                    ResultRow::NoReply(_) => cells.push(Cell::from(Span::styled("no reply", t.status.no_reply))),
                }
                let row = Row::new(cells);
                if i == cursor && focused { row.style(t.row.selected) } else { row }
            })
            .collect();
        let table = Table::new(body, widths).header(Row::new(header).style(t.table.header)).column_spacing(1);
        frame.render_widget(table, table_area);
        let agg: Vec<Line> = aggregates.into_iter().map(|l| Line::from(Span::styled(l, t.text))).collect();
        frame.render_widget(Paragraph::new(agg), agg_area);
    }
}

enum ResultRow<'a> {
    Reply(&'a ReplyRow),
    Waiting(&'a str),
    NoReply(&'a str),
}

impl ResultRow<'_> {
    fn sender(&self) -> &str {
        match self {
            ResultRow::Reply(r) => &r.sender,
            ResultRow::Waiting(n) | ResultRow::NoReply(n) => n,
        }
    }
}

/// A value in one table cell: strings bare, lists joined, hashes as compact JSON.
/// The first 8 characters of a request id.
pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// The DDL's aggregates over the ok replies, one line each (`Summary of Value: uk = 2, de = 1`),
/// computed by the client core as the CLI's are.
pub fn aggregate_lines(act: &fleet_ddl::Action, replies: &[ReplyRow]) -> Vec<String> {
    fleet_client::aggregate::compute(act, replies.iter().map(|r| (&r.status, &r.data))).iter().map(|a| a.line()).collect()
}

impl Component for RpcPanel {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        let mode = self.mode();
        if let Some(action) = self.keys.action(mode, &key) {
            return Some(action);
        }
        if mode == Mode::RpcForm {
            // Space is text in a text field and steps a toggle or picker: Form::edit decides.
            if Key::of(&key).code == KeyCode::Char(' ') {
                return Some(Action::Rpc(Msg::Edit(TextEdit::Insert(' '))));
            }
            return text_edit(&key).map(|e| Action::Rpc(Msg::Edit(e)));
        }
        None
    }

    fn update(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::Rpc(msg) => return self.on_msg(msg),
            Action::Nav(nav) => self.move_cursor(nav),
            Action::Tick(now) => self.now = now,
            Action::ScopeChanged(scope) => self.scope = scope,
            Action::RunDiscovery { round, .. } => {
                self.last_round = round;
                self.discovered.clear();
            }
            Action::Round { round, event: RequestEvent::Discovered(nodes) } if round == self.last_round => self.discovered = nodes,
            Action::Request { id, event } => {
                if let Some(rec) = self.current.as_mut().filter(|r| r.key == RequestKey::Rpc(id)) {
                    rec.apply(&event);
                }
            }
            Action::Reopen(record) => {
                self.current = Some(*record);
                self.result_cursor = 0;
                self.focus = Focus::Results;
            }
            Action::FocusChanged(panel) => {
                self.shown = panel == PanelId::Rpc;
                if self.shown && matches!(self.agents_state, AgentsState::NotAsked | AgentsState::Failed(_)) {
                    return self.ask_agents();
                }
            }
            Action::Link(super::action::LinkState::Connected { .. })
                if self.shown && matches!(self.agents_state, AgentsState::Failed(_)) =>
            {
                return self.ask_agents();
            }
            Action::ThemeChanged(theme) => self.theme = *theme,
            _ => {}
        }
        None
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let block = Block::bordered().border_style(t.border_focused).title(Span::styled(" RPC ", t.title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::form::FieldError;
    use fleet_protocol::Status;
    use serde_json::json;

    fn panel(read_only: bool) -> RpcPanel {
        let mut p = RpcPanel::new(&PanelContext { theme: Theme::mono(), keys: Default::default(), read_only, scope: Scope::default() });
        let agents = ["rpcutil", "echo", "process"].map(|n| FleetAgent { name: n.into(), version: "1.0.0".into(), nodes: 5 }).to_vec();
        p.update(Action::Rpc(Msg::Agents(Ok(agents))));
        p
    }

    fn r(msg: Msg) -> Action {
        Action::Rpc(msg)
    }

    fn open(p: &mut RpcPanel, agent: &str, action: &str) {
        while p.agent().unwrap().agent.name != agent {
            p.update(Action::Nav(Nav::Down));
        }
        p.update(r(Msg::Enter));
        assert_eq!(p.focus(), Focus::Actions);
        while p.action_names()[p.action_cursor] != action {
            p.update(Action::Nav(Nav::Down));
        }
        p.update(r(Msg::Enter));
        assert_eq!(p.focus(), Focus::Form);
    }

    #[test]
    fn showing_the_panel_asks_the_fleet_for_its_agents_once() {
        let mut p = RpcPanel::new(&PanelContext {
            theme: Theme::mono(),
            keys: Default::default(),
            read_only: false,
            scope: Scope::filter("role=web"),
        });
        let ask = p.update(Action::FocusChanged(PanelId::Rpc));
        assert_eq!(ask, Some(NetCommand::FleetAgents { scope: Scope::filter("role=web") }.into()));
        assert_eq!(p.update(Action::FocusChanged(PanelId::Rpc)), None, "already asking");
        p.update(r(Msg::Agents(Ok(vec![FleetAgent { name: "echo".into(), version: "1".into(), nodes: 1 }]))));
        assert_eq!(p.agent_names(), ["echo"]);
        assert_eq!(p.update(Action::FocusChanged(PanelId::Rpc)), None, "known");
    }

    #[test]
    fn fix_a_bad_value_and_submit() {
        let mut p = panel(false);
        assert_eq!(p.agent_names(), ["echo", "process", "rpcutil"]);
        open(&mut p, "rpcutil", "get_fact");
        for c in "bad fact".chars() {
            p.update(r(Msg::Edit(TextEdit::Insert(c))));
        }
        assert!(
            matches!(p.form().unwrap().shown_error(0), Some(FieldError::Invalid(rule)) if rule.contains("does not match the validation"))
        );
        let refused = p.update(r(Msg::Submit));
        assert!(
            matches!(&refused, Some(Action::Notify(n)) if n.error && n.text.starts_with("nothing sent: fact does not match")),
            "{refused:?}"
        );
        assert_eq!(p.focus(), Focus::Form);
        p.update(r(Msg::Edit(TextEdit::Clear)));
        for c in "country".chars() {
            p.update(r(Msg::Edit(TextEdit::Insert(c))));
        }
        p.update(Action::Tick(SystemTime::UNIX_EPOCH + Duration::from_secs(5)));
        let Some(Action::RequestStarted(info)) = p.update(r(Msg::Submit)) else { panic!("submit starts a request") };
        assert_eq!((info.id, info.agent.as_str(), info.action.as_str()), (1, "rpcutil", "get_fact"));
        assert_eq!(info.args, serde_json::Map::from_iter([("fact".to_string(), json!("country"))]));
        assert_eq!(info.timeout, Duration::from_secs(5));
        assert_eq!(p.focus(), Focus::Results);
        // Replies stream in; another request's progress is ignored.
        let mut reply = ReplyRow::new("web-01", Status::Ok, "", 1.0);
        reply.data = json!({ "fact": "country", "value": "uk" });
        p.update(Action::Request { id: 1, event: RequestEvent::Discovered(vec!["web-01".into(), "db-01".into()]) });
        p.update(Action::Request { id: 1, event: RequestEvent::Reply(Box::new(reply.clone())) });
        p.update(Action::Request { id: 9, event: RequestEvent::Reply(Box::new(ReplyRow::new("x", Status::Ok, "", 1.0))) });
        assert_eq!(p.current().unwrap().replies.len(), 1);
        assert_eq!(p.result_rows().len(), 2, "the silent node is listed as pending");
        let act = fleet_client::ddl::find("rpcutil").unwrap().actions["get_fact"].clone();
        assert_eq!(aggregate_lines(&act, &p.current().unwrap().replies), ["Summary of Value: uk = 1"]);
        // esc walks back: results -> form -> actions -> agents -> the previous panel.
        p.update(r(Msg::Back));
        assert_eq!(p.focus(), Focus::Form);
        p.update(r(Msg::Back));
        p.update(r(Msg::Back));
        assert_eq!(p.update(r(Msg::Back)), Some(Action::Back));
    }

    #[test]
    fn a_destructive_action_asks_first_and_read_only_refuses_it() {
        let mut p = panel(false);
        p.update(Action::ScopeChanged(Scope { filter: String::new(), targets: Some(vec!["web-01".into(), "web-02".into()]) }));
        open(&mut p, "process", "kill");
        assert_eq!(p.form().unwrap().focused().unwrap().name, "targets", "required fields come first");
        for c in "1234@5678".chars() {
            p.update(r(Msg::Edit(TextEdit::Insert(c))));
        }
        let asked = p.update(r(Msg::Submit));
        let Some(Action::Confirm(confirm)) = asked else { panic!("a destructive action asks: {asked:?}") };
        assert!(confirm.lines[0].starts_with("Run process#kill on 2 selected nodes?"), "{:?}", confirm.lines);
        assert!(confirm.lines.contains(&"  web-01".to_string()) && confirm.lines.contains(&"  web-02".to_string()));
        assert_eq!(confirm.yes, r(Msg::Confirmed));
        let Some(Action::RequestStarted(info)) = p.update(r(Msg::Confirmed)) else { panic!() };
        assert_eq!(info.scope.targets.as_deref(), Some(&["web-01".to_string(), "web-02".to_string()][..]));
        assert_eq!(p.update(r(Msg::Confirmed)), None, "a confirmation is used once");

        let mut ro = panel(true);
        ro.form = p.form.clone();
        ro.focus = Focus::Form;
        let refused = ro.update(r(Msg::Submit));
        assert!(matches!(&refused, Some(Action::Notify(n)) if n.text.contains("read-only")), "{refused:?}");
    }

    #[test]
    fn reopen_shows_a_past_record() {
        let mut p = panel(false);
        let mut rec = RequestRecord::new(RequestKey::Rpc(7), "echo", "echo", Default::default(), Scope::default(), SystemTime::UNIX_EPOCH);
        rec.apply(&RequestEvent::Finished { no_reply: vec!["db-01".into()], elapsed_ms: 3.0 });
        p.update(Action::Reopen(Box::new(rec)));
        assert_eq!(p.focus(), Focus::Results);
        assert_eq!(p.result_rows().len(), 1);
    }
}
