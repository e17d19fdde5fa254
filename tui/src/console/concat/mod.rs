//! The Concat view (under the Jobs tab, `]`): files built from fragments across the fleet.
//!
//! It lists the targets the nodes in scope keep fragments for (`concat#list`); `enter` on one
//! runs a dry-run build there and shows each node's state (in sync, would change, owner/group/mode
//! only, failed) as the client core's [`fleet_client::concat::NodeResult`] reads it; `enter` on a
//! node opens its diff; `b` builds on the nodes that would change, after a confirmation that
//! lists them (and the nodes left alone). Every build's replies go to the Log.
//!
//! This file holds the state, messages and the Component impl; `keys` the key tables, `draw` the
//! drawing, `exec` the network work, `build` the confirmation and the Log record.

mod build;
mod draw;
mod exec;
mod keys;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use crossterm::event::KeyEvent;
use fleet_client::concat::{NodeResult, Summary};
use ratatui::Frame;
use ratatui::layout::Rect;

use super::action::{Action, Nav, NetCommand, PanelId, ReplyRow, Scope};
use super::component::{Component, PanelContext};
use super::keys::{Keymap, Mode};
use super::theme::Theme;

pub use exec::execute;
pub use keys::{diff_key_table, key_table};

/// The view's own actions, wrapped by the shell as `Action::Concat`.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// `r`: list the targets again, or run the dry run again.
    Refresh,
    /// `enter`: a target's dry run; a node's diff.
    Select,
    /// `esc`: from the diff to the nodes, from the nodes to the targets.
    Back,
    /// `b`: build the target on the nodes that would change (asks first).
    Build,
    /// The confirmation said yes.
    BuildConfirmed { target: String, nodes: Vec<String> },
    /// A `concat#list` round came back.
    Targets(Result<Vec<TargetRow>, String>),
    /// A build round (dry run or not) of `target` came back.
    Built { target: String, dry_run: bool, started_ms: u64, result: Result<BuildOutcome, String> },
}

/// The view's network work, wrapped by the shell as `NetCommand::Concat`, run by [`execute`].
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    /// `concat#list` of every target on the nodes in `scope` -> [`Msg::Targets`].
    Targets { scope: Scope },
    /// `concat#build` of `target` on `scope` -> [`Msg::Built`].
    Build { target: String, scope: Scope, dry_run: bool },
}

/// A target some nodes keep fragments for.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRow {
    pub target: String,
    /// The nodes that have fragments for it, in order.
    pub nodes: Vec<String>,
}

/// What a build round came back with.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOutcome {
    /// Each replying node's result, in node order.
    pub results: Vec<(String, NodeResult)>,
    pub summary: Summary,
    /// The replies as the Log keeps them.
    pub replies: Vec<ReplyRow>,
    pub no_reply: Vec<String>,
    pub elapsed_ms: f64,
}

/// The dry run (or build) of the target that is open.
#[derive(Debug, Clone, PartialEq)]
struct Opened {
    target: String,
    /// Whether what is shown is a dry run (else: what a build did).
    dry_run: bool,
    /// `None` while the nodes are asked.
    outcome: Option<Result<BuildOutcome, String>>,
    node: usize,
    /// The diff of the node under the cursor is open, scrolled this far.
    diff: Option<usize>,
}

pub struct ConcatView {
    theme: Theme,
    keys: Arc<Keymap>,
    read_only: bool,
    scope: Scope,
    /// `None` until listed.
    targets: Option<Result<Vec<TargetRow>, String>>,
    listing: bool,
    target: usize,
    opened: Option<Opened>,
    /// A build sent and not answered yet.
    building: bool,
}

impl ConcatView {
    pub fn new(ctx: &PanelContext) -> ConcatView {
        ConcatView {
            theme: ctx.theme.clone(),
            keys: ctx.keys.clone(),
            read_only: ctx.read_only,
            scope: ctx.scope.clone(),
            targets: None,
            listing: false,
            target: 0,
            opened: None,
            building: false,
        }
    }

    pub fn mode(&self) -> Mode {
        if self.opened.as_ref().is_some_and(|o| o.diff.is_some()) { Mode::ConcatDiff } else { Mode::Concat }
    }

    fn target_rows(&self) -> &[TargetRow] {
        match &self.targets {
            Some(Ok(rows)) => rows,
            _ => &[],
        }
    }

    /// The nodes of the open target's last round, in node order.
    fn results(&self) -> &[(String, NodeResult)] {
        match self.opened.as_ref().and_then(|o| o.outcome.as_ref()) {
            Some(Ok(outcome)) => &outcome.results,
            _ => &[],
        }
    }

    /// The node under the cursor of the open target, with its result.
    pub fn selected_node(&self) -> Option<&(String, NodeResult)> {
        let i = self.opened.as_ref()?.node;
        self.results().get(i)
    }

    fn net(cmd: Cmd) -> Action {
        NetCommand::Concat(cmd).into()
    }

    fn list_targets(&mut self) -> Option<Action> {
        if self.listing {
            return None;
        }
        self.listing = true;
        Some(Self::net(Cmd::Targets { scope: self.scope.clone() }))
    }

    /// Runs the dry run of `target` on the nodes in scope.
    fn dry_run(&mut self, target: String) -> Option<Action> {
        let scope = self.scope.clone();
        self.opened = Some(Opened { target: target.clone(), dry_run: true, outcome: None, node: 0, diff: None });
        Some(Self::net(Cmd::Build { target, scope, dry_run: true }))
    }

    pub fn apply(&mut self, msg: Msg) -> Option<Action> {
        match msg {
            Msg::Refresh => match &self.opened {
                Some(o) => {
                    let target = o.target.clone();
                    self.dry_run(target)
                }
                None => {
                    self.listing = false;
                    self.list_targets()
                }
            },
            Msg::Select => match &mut self.opened {
                Some(o) if o.diff.is_none() && o.outcome.as_ref().is_some_and(|r| r.is_ok()) => {
                    o.diff = Some(0);
                    None
                }
                Some(_) => None,
                None => {
                    let target = self.target_rows().get(self.target)?.target.clone();
                    self.dry_run(target)
                }
            },
            Msg::Back => {
                match &mut self.opened {
                    Some(o) if o.diff.is_some() => o.diff = None,
                    Some(_) => self.opened = None,
                    None => {}
                }
                None
            }
            Msg::Build => self.confirm_build(),
            Msg::BuildConfirmed { target, nodes } => self.start_build(target, nodes),
            Msg::Targets(result) => {
                self.listing = false;
                self.targets = Some(result);
                self.target = self.target.min(self.target_rows().len().saturating_sub(1));
                None
            }
            Msg::Built { target, dry_run, started_ms, result } => self.on_built(target, dry_run, started_ms, result),
        }
    }

    fn nav(&mut self, nav: Nav) {
        let len = self.results().len();
        match &mut self.opened {
            Some(Opened { diff: Some(scroll), .. }) => *scroll = nav.step(*scroll, usize::MAX, 10),
            Some(o) => o.node = nav.step(o.node, len, 10),
            None => self.target = nav.step(self.target, self.target_rows().len(), 10),
        }
    }
}

impl Component for ConcatView {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        self.on_key(key)
    }

    fn update(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::Concat(msg) => self.apply(msg),
            Action::Nav(nav) => {
                self.nav(nav);
                None
            }
            // Shown: the targets are listed the first time.
            Action::FocusChanged(PanelId::Jobs) if self.targets.is_none() => self.list_targets(),
            Action::ThemeChanged(theme) => {
                self.theme = *theme;
                None
            }
            Action::ScopeChanged(scope) if scope != self.scope => {
                // Other nodes: their targets are listed again when asked (r) or next shown.
                self.scope = scope;
                self.targets = None;
                self.opened = None;
                None
            }
            _ => None,
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        self.render(frame, area);
    }
}
