//! The RPC panel: pick an agent the fleet reports (rpcutil agent_inventory over the current
//! scope) and one of its actions, fill in the form generated from its DDL, and run it on the
//! current discovery selection or filter. Replies stream into a table labelled with the outputs'
//! `display_as` (sizes and dates in units), followed by the DDL's aggregates; `enter` on a row
//! opens the inspector with that node's whole reply. A destructive action asks first, listing the
//! targets; read-only mode refuses it. The form ends with the rollout fields (limit, batch,
//! canary, max failures, as the CLI's flags): the results then show each node's batch, and under
//! them where a stopped rollout stopped and who was never asked.
//!
//! This file holds the panel's state and how actions change it; `keys` its key tables, `draw`
//! the drawing and `rollout` the rollout fields.

mod draw;
mod keys;
mod rollout;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossterm::event::KeyEvent;
use fleet_ddl::Ddl;
use ratatui::Frame;
use ratatui::layout::Rect;
use serde_json::Value;

use super::action::{Action, Confirm, LinkState, Nav, NetCommand, Notice, PanelId, ReplyRow, RequestEvent, RequestInfo, Scope, TextEdit};
use super::component::{Component, PanelContext};
use super::form::Form;
use super::inspector;
use super::keys::{Keymap, Mode};
use super::record::{RequestKey, RequestRecord};
use super::theme::Theme;
use fleet_client::format::value_text;
use fleet_client::{Rollout, rollout::Report};

pub use draw::{aggregate_lines, short_id};
pub use keys::{field_key_table, form_key_table, key_table};

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
    /// `enter` in a field: keep what was typed and go back to moving between fields.
    FieldDone,
    /// `esc` in a field: put back what it held before and leave it.
    FieldUndo,
    Submit,
    /// The confirmation popup said yes to the pending destructive request.
    Confirmed,
    /// The agents the fleet reported.
    Agents(Result<Vec<FleetAgent>, String>),
    /// How request `id`'s rollout went (batches, where it stopped, who was never asked), sent
    /// by the network task once the request is over.
    RolloutReport {
        id: u64,
        report: Box<Report>,
    },
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
    /// While a text field is being typed in: what it held before (for `esc`).
    editing: Option<String>,
    /// The rollout fields after the form's own; kept from one form to the next, as flags are
    /// from one command to the next in a shell history.
    rollout: rollout::RolloutFields,
    /// The cursor is on this rollout field (not on one of the form's own).
    rollout_cursor: Option<usize>,
    /// The rollout of the request shown, and its report once over.
    run: Option<RolloutRun>,
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

/// The rollout a request was sent with, and how it went.
#[derive(Debug, Clone)]
struct RolloutRun {
    key: RequestKey,
    rollout: Rollout,
    report: Option<Report>,
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
            editing: None,
            rollout: Default::default(),
            rollout_cursor: None,
            run: None,
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
        match self.focus {
            Focus::Form if self.editing.is_some() => Mode::RpcField,
            Focus::Form => Mode::RpcForm,
            _ => Mode::Rpc,
        }
    }

    /// Whether a field of the form is being typed in.
    pub fn editing_field(&self) -> bool {
        self.editing.is_some()
    }

    /// `enter` on the form: a text field is entered for typing, a toggle or picker steps, and a
    /// form without inputs runs.
    fn enter_field(&mut self) -> Option<Action> {
        if let Some(f) = self.rollout_cursor.and_then(|i| self.rollout.get(i)) {
            self.editing = Some(f.input.text().to_string());
            return None;
        }
        let form = self.form.as_mut()?;
        let Some(field) = form.fields.get(form.cursor) else {
            return self.submit();
        };
        if field.is_text() {
            self.editing = Some(field.display());
        } else {
            form.step(true);
        }
        None
    }

    /// Leaves the field being typed in; `undo` puts back what it held before.
    fn leave_field(&mut self, undo: bool) {
        let Some(before) = self.editing.take() else { return };
        if undo && let Some(i) = self.rollout_cursor {
            self.rollout.set(i, &before);
        } else if undo && let Some(form) = self.form.as_mut() {
            form.edit(TextEdit::Clear);
            for c in before.chars() {
                form.edit(TextEdit::Insert(c));
            }
        }
    }

    /// Moves to the next (or previous) field: the form's own, then the rollout fields, around.
    fn move_field(&mut self, forward: bool) {
        self.leave_field(false);
        let Some(form) = self.form.as_mut() else { return };
        let (own, extra) = (form.fields.len(), self.rollout.len());
        // One ring: the form's fields, then the rollout fields.
        let at = self.rollout_cursor.map_or(form.cursor.min(own.saturating_sub(1)), |i| own + i);
        let next = if self.rollout_cursor.is_none() && own == 0 {
            if forward { own } else { own + extra - 1 }
        } else if forward {
            (at + 1) % (own + extra)
        } else {
            (at + own + extra - 1) % (own + extra)
        };
        if next < own {
            form.cursor = next;
            self.rollout_cursor = None;
        } else {
            self.rollout_cursor = Some(next - own);
        }
    }

    /// The rollout field under the cursor, if the cursor is on one.
    pub fn rollout_field(&self) -> Option<usize> {
        self.rollout_cursor.filter(|_| self.focus == Focus::Form)
    }

    /// The 1-based batch each node of the request shown runs in: the report's once it is over,
    /// before that the client core's plan over the nodes discovery picked (the same plan the
    /// core sends by). `None` when the request is not staged.
    fn batches(&self) -> Option<BTreeMap<String, usize>> {
        let rec = self.current.as_ref()?;
        let run = self.run.as_ref().filter(|r| r.key == rec.key && r.rollout.is_staged())?;
        if let Some(report) = run.report.as_ref().filter(|r| !r.batches.is_empty()) {
            return Some(report.batches.clone());
        }
        let discovered = rec.discovered.as_ref()?;
        Some(run.rollout.plan(discovered).batch_of())
    }

    /// How the rollout of the request shown went, once it is over.
    fn report(&self) -> Option<&Report> {
        let rec = self.current.as_ref()?;
        self.run.as_ref().filter(|r| r.key == rec.key)?.report.as_ref()
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
            self.rollout_cursor = None;
        }
        self.editing = None;
        self.focus = Focus::Form;
        None
    }

    fn submit(&mut self) -> Option<Action> {
        self.leave_field(false);
        let form = self.form.as_mut()?;
        form.tried = true;
        let rollout = self.rollout.rollout();
        let args = match (form.args(), rollout) {
            (Ok(a), Ok(_)) => a,
            (args, rollout) => {
                let form_errors = args.err().unwrap_or_default();
                let rollout_errors = rollout.err().unwrap_or_default();
                // The cursor goes to the first bad field: the form's own first.
                if let Some(i) = form.fields.iter().position(|f| form_errors.iter().any(|(n, _)| *n == f.name)) {
                    form.cursor = i;
                    self.rollout_cursor = None;
                } else if let Some((i, _)) = rollout_errors.first().filter(|_| form_errors.is_empty()) {
                    self.rollout_cursor = Some(*i);
                }
                let what: Vec<String> = form_errors
                    .iter()
                    .map(|(n, e)| if n.is_empty() { e.to_string() } else { format!("{n} {e}") })
                    .chain(rollout_errors.into_iter().map(|(_, e)| e))
                    .collect();
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
        if self.rollout.rollout().is_ok_and(|r| r.is_some()) {
            lines.push(format!("rollout: {}", self.rollout.describe()));
        }
        Confirm { title: format!("{what} is destructive"), lines, yes: Action::Rpc(Msg::Confirmed) }
    }

    fn start(&mut self, args: serde_json::Map<String, Value>) -> Action {
        let form = self.form.as_ref().expect("a form to start from");
        self.next_id += 1;
        // Checked by submit; a field changed since (while a confirmation was up) is sent as
        // it reads now only if it still parses.
        let rollout = self.rollout.rollout().ok().flatten();
        self.run = rollout.clone().map(|rollout| RolloutRun { key: RequestKey::Rpc(self.next_id), rollout, report: None });
        let info = RequestInfo {
            id: self.next_id,
            agent: form.agent.clone(),
            action: form.action.clone(),
            args: args.clone(),
            scope: self.scope.clone(),
            timeout: Duration::from_secs(form.ddl.metadata.timeout),
            started: self.now,
            rollout,
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
        if let Some(report) = self.report().filter(|_| !rec.running()) {
            rows.extend(report.never_asked.iter().map(|n| ResultRow::NeverAsked(n)));
        }
        rows
    }

    /// `enter` on a result row: the inspector with that node's whole reply.
    fn inspect_result(&self) -> Option<Action> {
        let rec = self.current.as_ref()?;
        let rows = self.result_rows();
        let row = rows.get(self.result_cursor.min(rows.len().saturating_sub(1)))?;
        let (agent, action) = (rec.agent.as_str(), rec.action.as_str());
        let pane = match row {
            ResultRow::Reply(r) => inspector::reply(agent, action, r),
            ResultRow::Waiting(n) => inspector::silent(agent, action, n, "no reply yet"),
            ResultRow::NoReply(n) => inspector::silent(agent, action, n, "no reply before the timeout"),
            ResultRow::NeverAsked(n) => inspector::silent(agent, action, n, "never asked: the rollout stopped before its batch"),
        };
        Some(Action::Inspect(Box::new(pane)))
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
                Focus::Form => return self.enter_field(),
                Focus::Results => return self.inspect_result(),
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
            Msg::NextField => self.move_field(true),
            Msg::PrevField => self.move_field(false),
            Msg::FieldDone => self.leave_field(false),
            Msg::FieldUndo => self.leave_field(true),
            // The rollout fields are text: left and right move nothing until one is typed in.
            Msg::ValueNext | Msg::ValuePrev | Msg::Edit(_) if self.rollout_cursor.is_some() => {
                if let (Msg::Edit(e), Some(i)) = (msg, self.rollout_cursor) {
                    self.rollout.edit(i, e);
                }
            }
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
            Msg::RolloutReport { id, report } => {
                if let Some(run) = self.run.as_mut().filter(|r| r.key == RequestKey::Rpc(id)) {
                    run.report = Some(*report);
                }
            }
        }
        None
    }
}

enum ResultRow<'a> {
    Reply(&'a ReplyRow),
    Waiting(&'a str),
    NoReply(&'a str),
    /// A node a stopped rollout never sent the request to.
    NeverAsked(&'a str),
}

impl ResultRow<'_> {
    fn sender(&self) -> &str {
        match self {
            ResultRow::Reply(r) => &r.sender,
            ResultRow::Waiting(n) | ResultRow::NoReply(n) | ResultRow::NeverAsked(n) => n,
        }
    }
}

impl Component for RpcPanel {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        self.on_key(key)
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
                self.leave_field(false);
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
            Action::Link(LinkState::Connected { .. }) if self.shown && matches!(self.agents_state, AgentsState::Failed(_)) => {
                return self.ask_agents();
            }
            Action::ThemeChanged(theme) => self.theme = *theme,
            _ => {}
        }
        None
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        self.render(frame, area);
    }
}
