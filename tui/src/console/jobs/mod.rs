//! The Jobs tab (7): background jobs across the fleet, and the Concat view under the same tab.
//!
//! The Jobs view lists every job the nodes in scope keep (`jobs#list`, grouped by job id by the
//! client core's [`fleet_client::jobs::list_of`]), refreshed every few seconds while the tab is
//! in front; below it, the selected job's state on each node. `o` shows the job's output on each
//! node (`jobs#output`), `x` cancels it where it has not ended, after a confirmation that lists
//! those nodes; every cancel's replies go to the Log. `]` switches to the Concat view
//! ([`super::concat`]), which shares the tab because eight titled tabs do not fit 80 columns.
//!
//! This file holds the state, messages and the Component impl; `keys` the key table, `draw` the
//! drawing, `exec` the network work, `cancel` the confirmation and the Log record.

mod cancel;
mod draw;
mod exec;
mod keys;

#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crossterm::event::KeyEvent;
use fleet_client::jobs::{JobRow, ListedJob};
use ratatui::Frame;
use ratatui::layout::Rect;
use serde_json::Value;

use super::action::{Action, LinkState, Nav, NetCommand, PanelId, ReplyRow, Scope};
use super::component::{Component, PanelContext};
use super::concat::ConcatView;
use super::keys::{Keymap, Mode};
use super::theme::Theme;

pub(crate) use cancel::finished_record;
pub(crate) use draw::draw_rows;
pub use exec::{agent_round, execute};
pub use keys::{key_table, output_key_table};

/// How often the jobs are listed again while the tab is in front.
const REFRESH_EVERY_MS: u64 = 5_000;
/// A listing without an answer after this long is given up (the link may have dropped it).
const REFRESH_GIVE_UP_MS: u64 = 60_000;

/// The panel's own actions, wrapped by the shell as `Action::Jobs`.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// List the jobs now.
    Refresh,
    FocusJobs,
    FocusNodes,
    /// `o`: the selected job's output on each node.
    ShowOutput,
    /// Close the output view.
    CloseOutput,
    /// `x`: cancel the selected job (asks first).
    Cancel,
    /// The confirmation said yes: cancel job `id` on `nodes`.
    CancelConfirmed {
        id: String,
        nodes: Vec<String>,
    },
    /// `]`/`[`: between the Jobs and the Concat view.
    SwitchView,
    /// A `jobs#list` round came back.
    Listed {
        at_ms: u64,
        result: Result<Listing, String>,
    },
    /// A `jobs#output` round came back.
    OutputFetched {
        id: String,
        result: Result<Vec<NodeOutput>, String>,
    },
    /// A `jobs#cancel` round came back: each node's reply.
    Cancelled {
        id: String,
        started_ms: u64,
        elapsed_ms: f64,
        result: Result<CancelOutcome, String>,
    },
}

/// What a `jobs#cancel` round came back with.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelOutcome {
    /// Each node's reply, its message the node's own words on what it did.
    pub replies: Vec<ReplyRow>,
    pub no_reply: Vec<String>,
}

/// The panel's network work, wrapped by the shell as `NetCommand::Jobs` and run by [`execute`].
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    /// `jobs#list` on the nodes in `scope` that have the jobs agent -> [`Msg::Listed`].
    List { scope: Scope },
    /// `jobs#output` of `id` on `nodes` -> [`Msg::OutputFetched`].
    Output { id: String, nodes: Vec<String> },
    /// `jobs#cancel` of `id` on `nodes` -> [`Msg::Cancelled`].
    Cancel { id: String, nodes: Vec<String> },
}

/// What a `jobs#list` round found.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Newest first.
    pub jobs: Vec<ListedJob>,
    /// Nodes that answered.
    pub answered: usize,
    pub no_reply: Vec<String>,
}

// The client core's ListedJob has no PartialEq; actions compare, so the listing compares as the
// JSON it serializes to (tests only compare small listings).
impl PartialEq for Listing {
    fn eq(&self, other: &Listing) -> bool {
        self.answered == other.answered
            && self.no_reply == other.no_reply
            && serde_json::to_value(&self.jobs).ok() == serde_json::to_value(&other.jobs).ok()
    }
}

/// One node's answer to `jobs#output`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeOutput {
    pub node: String,
    /// `ok (OK)`, `running (no run ended yet)`, or why the node could not answer.
    pub headline: String,
    pub data: Value,
}

/// Which of the tab's two views is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Jobs,
    Concat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Jobs,
    Nodes,
}

/// The output view of one job.
#[derive(Debug, Clone, PartialEq)]
struct Output {
    id: String,
    /// `None` while the nodes are asked.
    result: Option<Result<Vec<NodeOutput>, String>>,
    scroll: usize,
}

pub struct JobsPanel {
    theme: Theme,
    keys: Arc<Keymap>,
    read_only: bool,
    scope: Scope,
    view: View,
    concat: ConcatView,
    listing: Option<Listing>,
    list_error: Option<String>,
    listed_at: Option<u64>,
    refreshing_since: Option<u64>,
    last_refresh_start: Option<u64>,
    focused: bool,
    now_ms: u64,
    pane: Pane,
    /// The selected job's id (kept across refreshes, which may reorder the list).
    job: Option<String>,
    node: usize,
    output: Option<Output>,
    /// Cancels sent and not answered yet, by job id.
    cancelling: Vec<String>,
}

fn ms_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl JobsPanel {
    pub fn new(ctx: &PanelContext) -> JobsPanel {
        JobsPanel {
            theme: ctx.theme.clone(),
            keys: ctx.keys.clone(),
            read_only: ctx.read_only,
            scope: ctx.scope.clone(),
            view: View::Jobs,
            concat: ConcatView::new(ctx),
            listing: None,
            list_error: None,
            listed_at: None,
            refreshing_since: None,
            last_refresh_start: None,
            focused: false,
            now_ms: 0,
            pane: Pane::Jobs,
            job: None,
            node: 0,
            output: None,
            cancelling: Vec::new(),
        }
    }

    /// The key table in force.
    pub fn mode(&self) -> Mode {
        match self.view {
            View::Concat => self.concat.mode(),
            View::Jobs if self.output.is_some() => Mode::JobOutput,
            View::Jobs => Mode::Jobs,
        }
    }

    pub fn view(&self) -> View {
        self.view
    }

    pub fn concat(&self) -> &ConcatView {
        &self.concat
    }

    pub fn jobs(&self) -> &[ListedJob] {
        self.listing.as_ref().map(|l| l.jobs.as_slice()).unwrap_or(&[])
    }

    fn job_index(&self) -> usize {
        self.job.as_ref().and_then(|id| self.jobs().iter().position(|j| &j.id == id)).unwrap_or(0)
    }

    /// The job under the cursor.
    pub fn selected(&self) -> Option<&ListedJob> {
        self.jobs().get(self.job_index())
    }

    /// The selected job's rows, in node order.
    fn node_rows(&self) -> Vec<(&String, &JobRow)> {
        self.selected().map(|j| j.nodes.iter().collect()).unwrap_or_default()
    }

    fn net(cmd: Cmd) -> Action {
        NetCommand::Jobs(cmd).into()
    }

    /// Applies one of the panel's messages.
    pub fn apply(&mut self, msg: Msg) -> Option<Action> {
        match msg {
            Msg::Refresh => self.start_refresh(),
            Msg::FocusJobs => {
                self.pane = Pane::Jobs;
                None
            }
            Msg::FocusNodes => {
                self.pane = Pane::Nodes;
                None
            }
            Msg::ShowOutput => {
                let job = self.selected()?;
                let (id, nodes) = (job.id.clone(), job.nodes.keys().cloned().collect());
                self.output = Some(Output { id: id.clone(), result: None, scroll: 0 });
                Some(Self::net(Cmd::Output { id, nodes }))
            }
            Msg::CloseOutput => {
                self.output = None;
                None
            }
            Msg::Cancel => self.confirm_cancel(),
            Msg::CancelConfirmed { id, nodes } => self.start_cancel(id, nodes),
            Msg::SwitchView => {
                self.view = if self.view == View::Jobs { View::Concat } else { View::Jobs };
                // The Concat view lists its targets when first shown.
                if self.view == View::Concat { self.concat.update(Action::FocusChanged(PanelId::Jobs)) } else { None }
            }
            Msg::Listed { at_ms, result } => {
                self.refreshing_since = None;
                match result {
                    Ok(listing) => {
                        self.list_error = None;
                        self.listed_at = Some(at_ms);
                        self.listing = Some(listing);
                        if self.job.is_none() {
                            self.job = self.jobs().first().map(|j| j.id.clone());
                        }
                    }
                    Err(e) => self.list_error = Some(e),
                }
                None
            }
            Msg::OutputFetched { id, result } => {
                if let Some(out) = self.output.as_mut().filter(|o| o.id == id) {
                    out.result = Some(result);
                }
                None
            }
            Msg::Cancelled { id, started_ms, elapsed_ms, result } => self.on_cancelled(id, started_ms, elapsed_ms, result),
        }
    }

    fn tick(&mut self, now_ms: u64) -> Option<Action> {
        self.now_ms = now_ms;
        if !self.focused || self.view != View::Jobs {
            return None;
        }
        let stuck = self.refreshing_since.is_some_and(|since| now_ms.saturating_sub(since) >= REFRESH_GIVE_UP_MS);
        let due = self.last_refresh_start.is_none_or(|at| now_ms.saturating_sub(at) >= REFRESH_EVERY_MS);
        if (self.refreshing_since.is_none() || stuck) && due { self.start_refresh() } else { None }
    }

    fn start_refresh(&mut self) -> Option<Action> {
        if self.refreshing_since.is_some_and(|since| self.now_ms.saturating_sub(since) < REFRESH_GIVE_UP_MS) {
            return None;
        }
        self.refreshing_since = Some(self.now_ms);
        self.last_refresh_start = Some(self.now_ms);
        Some(Self::net(Cmd::List { scope: self.scope.clone() }))
    }

    fn nav(&mut self, nav: Nav) {
        if let Some(out) = &mut self.output {
            out.scroll = nav.step(out.scroll, usize::MAX, 10);
            return;
        }
        match self.pane {
            Pane::Jobs => {
                let i = nav.step(self.job_index(), self.jobs().len(), 10);
                let id = self.jobs().get(i).map(|j| j.id.clone());
                if id != self.job {
                    self.job = id;
                    self.node = 0;
                }
            }
            Pane::Nodes => self.node = nav.step(self.node, self.node_rows().len(), 10),
        }
    }
}

impl Component for JobsPanel {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        if self.view == View::Concat {
            return self.concat.handle_key(key);
        }
        self.on_key(key)
    }

    fn update(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::Jobs(msg) => self.apply(msg),
            Action::Concat(_) => self.concat.update(action),
            Action::Nav(_) | Action::Search(_) if self.view == View::Concat => self.concat.update(action),
            Action::Nav(nav) => {
                self.nav(nav);
                None
            }
            Action::Tick(now) => {
                self.concat.update(action);
                self.tick(ms_of(now))
            }
            Action::FocusChanged(panel) => {
                self.focused = panel == PanelId::Jobs;
                if self.view == View::Concat && self.focused {
                    return self.concat.update(action);
                }
                self.tick(self.now_ms)
            }
            Action::Link(LinkState::Connected { .. }) => {
                // A listing sent before the link dropped will not answer.
                self.refreshing_since = None;
                self.last_refresh_start = None;
                self.tick(self.now_ms)
            }
            Action::ThemeChanged(ref theme) => {
                self.theme = (**theme).clone();
                self.concat.update(action)
            }
            Action::ScopeChanged(ref scope) => {
                let follow = self.concat.update(action.clone());
                if *scope != self.scope {
                    self.scope = scope.clone();
                    self.last_refresh_start = None;
                }
                follow
            }
            _ => None,
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        match self.view {
            View::Jobs => self.render(frame, area),
            View::Concat => self.concat.draw(frame, area),
        }
    }
}
