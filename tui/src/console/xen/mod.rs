//! The Xen panel: the fleet's dom0s (load trend, memory, domUs against the balancer's limit) and
//! the domUs of the selected one. `/` finds a domU anywhere and jumps to its dom0, `m` live-migrates
//! the selected domU after a confirmation, `b` shows what the balancer would do now and why, `a`
//! does it after a confirmation, and every migration made here is kept in a history.
//!
//! The data comes from the xen agent through [`execute`], which the console's network task runs:
//! `list` and `info` every few seconds while the panel is in front (each round is also a balancer
//! sample), `find`, and `migrate`. The plan is [`balancer::decide`] over those samples under
//! `$XDG_CONFIG_HOME/fleet/balancer.toml`, or the default policy when there is none. Dom0s whose
//! node runs fleet's xl stand-in say so (`simulated` in the agent's `info`), and so does the panel.
//!
//! This file holds the panel's state, the refresh rounds and the Component impl; `keys` has its
//! key table, `find` the `/` line, `migrate` migrations and the balancer's plan, `exec` the
//! network work and `draw` the drawing.

mod draw;
mod exec;
mod find;
mod keys;
mod migrate;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crossterm::event::KeyEvent;
use fleet_client::xen::balancer::{self, BalancerPolicy, DomuSample, Move, Observations, Plan, Sample};
use fleet_client::xen::{MigrationResult, PlacedDomu, PolicySource, XenView};
use ratatui::Frame;
use ratatui::layout::Rect;

use super::action::{Action, LinkState, Nav, NetCommand, Notice, PanelId, Scope};
use super::component::{Component, PanelContext};
use super::keys::{Keymap, Mode};
use super::theme::Theme;
use super::widgets::input::TextInput;

pub use draw::state_word;
pub use exec::execute;
pub use keys::{destinations_key_table, key_table, plan_key_table};

/// How often the dom0s are asked again while the panel is in front.
const REFRESH_EVERY_MS: u64 = 5_000;
/// A refresh without an answer after this long is given up (the link may have dropped it).
const REFRESH_GIVE_UP_MS: u64 = 60_000;
/// Load samples kept per dom0 for its trend; more than the widest trend column.
const TREND_POINTS: usize = 120;
/// Migrations remembered in the history.
const HISTORY_KEEP: usize = 200;

// -------------------------------------------------------------------------------------------------
// Messages and network commands

/// The panel's own actions, wrapped by the shell as `Action::Xen`.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// `enter`: from the dom0s to their domUs; in the destination list, migrate there.
    Select,
    FocusDom0s,
    FocusDomus,
    /// `m`: migrate the selected domU (asks for the destination, then for confirmation).
    Migrate,
    /// `b`: show (or hide) the balancer's plan.
    ShowPlan,
    /// `a`: apply the balancer's plan, after confirmation.
    ApplyPlan,
    /// Ask the dom0s now.
    Refresh,
    /// Close the panel's popup.
    Close,
    /// A key the find line does not use: nothing happens, and the line keeps the keyboard.
    Swallow,
    /// The confirmation said yes to one migration.
    MigrateConfirmed {
        domu: String,
        from: String,
        to: String,
    },
    /// The confirmation said yes to the balancer's plan.
    ApplyConfirmed {
        moves: Vec<Move>,
    },
    /// A `list` + `info` round came back; `at_ms` is when.
    Refreshed {
        at_ms: u64,
        result: Result<Box<XenView>, String>,
    },
    /// A `find` round came back: the dom0s that run `name`.
    Found {
        name: String,
        result: Result<Vec<String>, String>,
    },
    /// One migration ended.
    Migrated(Box<MigrationResult>),
}

/// One live migration to run: `xen#migrate` on `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub domu: String,
    pub from: String,
    pub to: String,
    /// Where xl migrates to; empty lets `from`'s node map `to` through its `xen_host_map`.
    pub address: String,
}

/// The panel's network work, wrapped by the shell as `NetCommand::Xen` and run by [`execute`].
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    /// `xen#list` and `xen#info` on the dom0s in `scope` -> [`Msg::Refreshed`].
    Refresh { scope: Scope },
    /// `xen#find` on the dom0s in `scope` -> [`Msg::Found`].
    Find { scope: Scope, name: String },
    /// The migrations one after the other -> one [`Msg::Migrated`] each.
    Migrate { moves: Vec<Migration> },
}

fn now_ms() -> u64 {
    ms_of(SystemTime::now())
}

fn ms_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

// -------------------------------------------------------------------------------------------------
// State

/// `$XDG_CONFIG_HOME/fleet/balancer.toml` (usually `~/.config/fleet/balancer.toml`).
pub fn policy_path() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.config_dir().join("fleet").join("balancer.toml"))
}

pub use fleet_client::xen::load_policy;

/// Who asked for a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovedBy {
    Admin,
    Balancer,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MoveOutcome {
    Running,
    Done { elapsed_s: f64 },
    Failed(String),
}

/// One migration made from this console.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// When it was started.
    pub at_ms: u64,
    pub domu: String,
    pub from: String,
    pub to: String,
    pub by: MovedBy,
    pub outcome: MoveOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Dom0s,
    Domus,
}

#[derive(Debug, Clone, PartialEq)]
enum Popup {
    /// Where should `domu` go? The other dom0s.
    Destinations { domu: String, from: String, choices: Vec<String>, selected: usize },
    /// The balancer's plan as text.
    Plan { plan: Box<Plan>, scroll: usize },
}

/// The `/` line: what was typed, and where the cursor was before, for `esc`.
#[derive(Debug, Clone, PartialEq)]
struct Find {
    input: TextInput,
    before: (Pane, Option<String>, Option<String>),
}

pub struct XenPanel {
    theme: Theme,
    keys: Arc<Keymap>,
    read_only: bool,
    simulated_note: Option<String>,
    /// The nodes the Discovery panel aims at; the panel shows the dom0s among them.
    scope: Scope,
    policy: BalancerPolicy,
    policy_source: PolicySource,
    view: Option<XenView>,
    refresh_error: Option<String>,
    refreshed_at: Option<u64>,
    /// When the refresh in flight was asked for.
    refreshing_since: Option<u64>,
    last_refresh_start: Option<u64>,
    /// Ask again as soon as the refresh in flight answers (its data may predate a migration).
    refresh_again: bool,
    focused: bool,
    now_ms: u64,
    /// The latest 1-minute loads of each dom0, oldest first.
    trends: BTreeMap<String, VecDeque<f64>>,
    /// What the balancer decides on.
    obs: Observations,
    /// Oldest first.
    history: Vec<HistoryEntry>,
    pane: Pane,
    dom0: Option<String>,
    domu: Option<String>,
    popup: Option<Popup>,
    find: Option<Find>,
    /// A `find` answered with a dom0 the view does not have yet: jump there after the refresh.
    jump_after_refresh: Option<(String, String)>,
}

impl XenPanel {
    /// The panel as the shell builds it: theme, keys and read-only mode from `ctx`, the policy from
    /// `$XDG_CONFIG_HOME/fleet/balancer.toml` when there is one. Its requests carry the
    /// console's configured collective, ttl and timeouts (the network task adds them).
    pub fn new(ctx: &PanelContext) -> XenPanel {
        let (policy, source) = load_policy(policy_path().as_deref());
        let mut panel = XenPanel::with_policy(ctx.theme.clone(), ctx.keys.clone(), ctx.read_only, policy, source);
        panel.scope = ctx.scope.clone();
        panel.now_ms = now_ms();
        panel
    }

    /// A panel with an explicit policy and no file access (tests, and a caller that loaded one).
    pub fn with_policy(theme: Theme, keys: Arc<Keymap>, read_only: bool, policy: BalancerPolicy, policy_source: PolicySource) -> XenPanel {
        XenPanel {
            theme,
            keys,
            read_only,
            simulated_note: None,
            scope: Scope::default(),
            policy,
            policy_source,
            view: None,
            refresh_error: None,
            refreshed_at: None,
            refreshing_since: None,
            last_refresh_start: None,
            refresh_again: false,
            focused: false,
            // The clock comes with the shell's ticks.
            now_ms: 0,
            trends: BTreeMap::new(),
            obs: Observations::default(),
            history: Vec::new(),
            pane: Pane::Dom0s,
            dom0: None,
            domu: None,
            popup: None,
            find: None,
            jump_after_refresh: None,
        }
    }

    /// Says `note` in the title (e.g. "simulated hypervisor (demo)"), whatever the agents report.
    pub fn with_simulated_note(mut self, note: Option<String>) -> XenPanel {
        self.simulated_note = note;
        self
    }

    /// The key table in force: the find line types text, each popup has its own, else the Xen table.
    pub fn mode(&self) -> Mode {
        match (&self.find, &self.popup) {
            (Some(_), _) => Mode::Search,
            (None, Some(Popup::Destinations { .. })) => Mode::XenDestinations,
            (None, Some(Popup::Plan { .. })) => Mode::XenPlan,
            (None, None) => Mode::Xen,
        }
    }

    pub fn view(&self) -> Option<&XenView> {
        self.view.as_ref()
    }

    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }

    pub fn pane(&self) -> Pane {
        self.pane
    }

    pub fn policy(&self) -> &BalancerPolicy {
        &self.policy
    }

    /// Whether a popup of the panel (destinations, plan) has the keyboard.
    pub fn popup_open(&self) -> bool {
        self.popup.is_some()
    }

    pub fn finding(&self) -> bool {
        self.find.is_some()
    }

    /// The dom0s in name order.
    fn dom0s(&self) -> &[fleet_client::xen::Dom0] {
        self.view.as_ref().map(|v| v.dom0s.as_slice()).unwrap_or(&[])
    }

    fn dom0_index(&self) -> usize {
        let dom0s = self.dom0s();
        self.dom0.as_ref().and_then(|n| dom0s.iter().position(|d| &d.name == n)).unwrap_or(0)
    }

    /// The dom0 under the cursor.
    pub fn selected_dom0(&self) -> Option<&fleet_client::xen::Dom0> {
        self.dom0s().get(self.dom0_index())
    }

    fn domus_on(&self, dom0: &str) -> Vec<&PlacedDomu> {
        self.view.as_ref().map(|v| v.domus.iter().filter(|p| p.dom0 == dom0).collect()).unwrap_or_default()
    }

    fn selected_domus(&self) -> Vec<&PlacedDomu> {
        self.selected_dom0().map(|d| self.domus_on(&d.name)).unwrap_or_default()
    }

    fn domu_index(&self) -> usize {
        let domus = self.selected_domus();
        self.domu.as_ref().and_then(|n| domus.iter().position(|p| &p.domu.name == n)).unwrap_or(0)
    }

    /// The domU under the cursor of the domU list (the first one when none was picked).
    pub fn selected_domu(&self) -> Option<&PlacedDomu> {
        let i = self.domu_index();
        self.selected_domus().get(i).copied()
    }

    /// A migration from this console that has not ended, for `domu`.
    fn migrating(&self, domu: &str) -> Option<&HistoryEntry> {
        self.history.iter().rev().find(|h| h.domu == domu && h.outcome == MoveOutcome::Running)
    }

    fn net(cmd: Cmd) -> Action {
        NetCommand::Xen(cmd).into()
    }

    /// Applies one of the panel's messages; the follow-up is network work (`Action::Net`), a
    /// confirmation (`Action::Confirm`), a notice, or several of those (`Action::Batch`).
    pub fn apply(&mut self, msg: Msg) -> Option<Action> {
        match msg {
            Msg::Select => match &self.popup {
                Some(Popup::Destinations { .. }) => self.choose_destination(),
                Some(Popup::Plan { .. }) => None,
                None => {
                    self.pane = Pane::Domus;
                    None
                }
            },
            Msg::FocusDom0s => {
                self.pane = Pane::Dom0s;
                None
            }
            Msg::FocusDomus => {
                self.pane = Pane::Domus;
                None
            }
            Msg::Migrate => self.start_migrate(),
            Msg::ShowPlan => {
                if matches!(self.popup, Some(Popup::Plan { .. })) {
                    self.popup = None;
                } else {
                    self.popup = Some(Popup::Plan { plan: Box::new(self.plan()), scroll: 0 });
                }
                None
            }
            Msg::ApplyPlan => self.confirm_plan(),
            Msg::Refresh => self.start_refresh(),
            Msg::Close => {
                self.popup = None;
                None
            }
            Msg::Swallow => None,
            Msg::MigrateConfirmed { domu, from, to } => {
                if self.read_only {
                    return Some(Notice::error("read-only: migrations are disabled"));
                }
                self.popup = None;
                self.start_migrations(vec![Migration { domu, from, to, address: String::new() }], MovedBy::Admin)
            }
            Msg::ApplyConfirmed { moves } => {
                if self.read_only {
                    return Some(Notice::error("read-only: migrations are disabled"));
                }
                self.popup = None;
                let moves = moves
                    .into_iter()
                    .map(|m| {
                        // The policy's host_mapping wins; otherwise the sending node's own map decides.
                        let address = if self.policy.host_mapping.contains_key(&m.to) { m.address } else { String::new() };
                        Migration { domu: m.domu, from: m.from, to: m.to, address }
                    })
                    .collect();
                self.start_migrations(moves, MovedBy::Balancer)
            }
            Msg::Refreshed { at_ms, result } => self.on_refreshed(at_ms, result),
            Msg::Found { name, result } => self.on_found(name, result),
            Msg::Migrated(result) => self.on_migrated(*result),
        }
    }

    fn tick(&mut self, now_ms: u64) -> Option<Action> {
        self.now_ms = now_ms;
        if !self.focused {
            return None;
        }
        let stuck = self.refreshing_since.is_some_and(|since| self.now_ms.saturating_sub(since) >= REFRESH_GIVE_UP_MS);
        let due = self.last_refresh_start.is_none_or(|at| self.now_ms.saturating_sub(at) >= REFRESH_EVERY_MS);
        if (self.refreshing_since.is_none() || stuck) && due { self.start_refresh() } else { None }
    }

    fn start_refresh(&mut self) -> Option<Action> {
        if let Some(since) = self.refreshing_since
            && self.now_ms.saturating_sub(since) < REFRESH_GIVE_UP_MS
        {
            self.refresh_again = true;
            return None;
        }
        self.refreshing_since = Some(self.now_ms);
        self.last_refresh_start = Some(self.now_ms);
        Some(Self::net(Cmd::Refresh { scope: self.scope.clone() }))
    }

    fn on_refreshed(&mut self, at_ms: u64, result: Result<Box<XenView>, String>) -> Option<Action> {
        self.refreshing_since = None;
        self.now_ms = self.now_ms.max(at_ms);
        match result {
            Err(e) => self.refresh_error = Some(e),
            Ok(view) => {
                self.refresh_error = None;
                self.refreshed_at = Some(at_ms);
                self.record(at_ms, &view);
                self.view = Some(*view);
                if let Some((dom0, domu)) = self.jump_after_refresh.take() {
                    self.jump_to(&dom0, &domu);
                }
                if let Some(Popup::Plan { plan, .. }) = &mut self.popup {
                    **plan = balancer::decide(&self.policy, &self.obs, self.now_ms);
                }
            }
        }
        if std::mem::take(&mut self.refresh_again) { self.start_refresh() } else { None }
    }

    /// One balancer sample and one trend point per dom0 that answered in full.
    fn record(&mut self, at_ms: u64, view: &XenView) {
        for d in &view.dom0s {
            if d.error.is_some() || view.no_reply.contains(&d.name) {
                continue;
            }
            let domus = view
                .domus
                .iter()
                .filter(|p| p.dom0 == d.name)
                .map(|p| DomuSample { name: p.domu.name.clone(), cpu_time: p.domu.cpu_time })
                .collect();
            self.obs.record(&d.name, Sample { at_ms, load: d.load[0], domus });
            let trend = self.trends.entry(d.name.clone()).or_default();
            trend.push_back(d.load[0]);
            if trend.len() > TREND_POINTS {
                trend.pop_front();
            }
        }
        self.obs.forget_old(&self.policy, at_ms);
        // What the policy's rules read (facts, memory, domU rows), so the plan is the CLI's.
        self.obs.note_view(view);
        self.trends.retain(|name, _| view.dom0s.iter().any(|d| &d.name == name));
    }

    /// The balancer's plan over what this panel has seen.
    pub fn plan(&self) -> Plan {
        balancer::decide(&self.policy, &self.obs, self.now_ms)
    }

    fn jump_to(&mut self, dom0: &str, domu: &str) {
        self.dom0 = Some(dom0.to_string());
        self.domu = Some(domu.to_string());
        self.pane = Pane::Domus;
    }

    fn nav(&mut self, nav: Nav) {
        match &mut self.popup {
            Some(Popup::Destinations { choices, selected, .. }) => *selected = nav.step(*selected, choices.len(), 10),
            Some(Popup::Plan { scroll, .. }) => *scroll = nav.step(*scroll, usize::MAX, 10),
            None => match self.pane {
                Pane::Dom0s => {
                    let n = self.dom0s().len();
                    let i = nav.step(self.dom0_index(), n, 10);
                    if let Some(d) = self.dom0s().get(i) {
                        let name = d.name.clone();
                        if self.dom0.as_ref() != Some(&name) {
                            self.dom0 = Some(name);
                            self.domu = None;
                        }
                    }
                }
                Pane::Domus => {
                    let domus = self.selected_domus();
                    let i = nav.step(self.domu_index(), domus.len(), 10);
                    if let Some(p) = domus.get(i) {
                        self.domu = Some(p.domu.name.clone());
                    }
                }
            },
        }
    }
}

impl Component for XenPanel {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        self.on_key(key)
    }

    fn update(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::Xen(msg) => self.apply(msg),
            Action::Nav(nav) => {
                self.nav(nav);
                None
            }
            Action::Search(edit) => self.find_edit(edit),
            Action::Tick(now) => self.tick(ms_of(now)),
            Action::FocusChanged(panel) => {
                self.focused = panel == PanelId::Xen;
                self.tick(self.now_ms)
            }
            Action::Link(LinkState::Connected { .. }) => {
                // A refresh sent before the link dropped will not answer.
                self.refreshing_since = None;
                self.last_refresh_start = None;
                self.tick(self.now_ms)
            }
            Action::ThemeChanged(theme) => {
                self.theme = *theme;
                None
            }
            Action::ScopeChanged(scope) => {
                if scope == self.scope {
                    return None;
                }
                // Another set of dom0s: ask them now, or as soon as the panel is in front.
                self.scope = scope;
                self.last_refresh_start = None;
                if self.focused { self.start_refresh() } else { None }
            }
            _ => None,
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        self.render(frame, area);
    }
}
