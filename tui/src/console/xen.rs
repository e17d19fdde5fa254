//! The Xen panel: the fleet's dom0s (load trend, memory, domUs against the balancer's limit) and
//! the domUs of the selected one. `/` finds a domU anywhere and jumps to its dom0, `m` live-migrates
//! the selected domU after a confirmation, `b` shows what the balancer would do now and why, `a`
//! does it after a confirmation, and every migration made here is kept in a history.
//!
//! The data comes from the xen agent through [`execute`], which the console's network task runs:
//! `list` and `info` every few seconds while the panel is in front (each round is also a balancer
//! sample), `find`, and `migrate`. The plan is [`noded::balancer::decide`] over those samples under
//! `$XDG_CONFIG_HOME/fleet/balancer.toml`, or the default policy when there is none. Dom0s whose
//! node runs fleet's xl stand-in say so (`simulated` in the agent's `info`), and so does the panel.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crossterm::event::KeyEvent;
use fleet_client::xen::balancer::{self, BalancerPolicy, DomuSample, Move, Observations, PastMigration, Plan, Sample};
use fleet_client::xen::{MigrationResult, PlacedDomu, PolicySource, XenView};
use fleet_client::{Client, Settings};
use fleet_protocol::DomainRow;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph, Sparkline, SparklineBar};
use tokio::sync::mpsc::UnboundedSender;

use super::action::{Action, Confirm, LinkState, Nav, NetCommand, Notice, PanelId, Scope, SearchEdit};
use super::component::{Component, PanelContext};
use super::discovery::text_edit;
use super::input::TextInput;
use super::keys::{Binding, Key, Keymap, Mode};
use super::theme::Theme;

/// How often the dom0s are asked again while the panel is in front.
const REFRESH_EVERY_MS: u64 = 5_000;
/// A refresh without an answer after this long is given up (the link may have dropped it).
const REFRESH_GIVE_UP_MS: u64 = 60_000;
/// Load samples kept per dom0 for its trend; more than the widest trend column.
const TREND_POINTS: usize = 120;
/// Migrations remembered in the history.
const HISTORY_KEEP: usize = 200;
/// Seconds a `find` may take on a node.

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
    /// A key an open popup does not use: it does nothing, but the popup keeps the keyboard.
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

/// Runs one command on the network task's hub link through the client core, with the console's
/// `settings` (collective, ttl, timeouts), and reports back as `Action::Xen`.
pub async fn execute(cmd: Cmd, client: &mut Client, settings: &Settings, tx: &UnboundedSender<Action>) {
    let send = |msg: Msg| {
        let _ = tx.send(Action::Xen(msg));
    };
    match cmd {
        Cmd::Refresh { scope } => {
            let result = fleet_client::xen::gather(client, settings, &scope.client(), |_| {}).await;
            send(Msg::Refreshed { at_ms: now_ms(), result: result.map(Box::new).map_err(|e| e.to_string()) });
        }
        Cmd::Find { scope, name } => {
            let result = fleet_client::xen::find(client, settings, &scope.client(), &name, |_| {}).await;
            let result = result.map(|found| found.on.into_iter().map(|(dom0, _)| dom0).collect()).map_err(|e| e.to_string());
            send(Msg::Found { name, result });
        }
        Cmd::Migrate { moves } => {
            for m in moves {
                tracing::info!(domu = %m.domu, from = %m.from, to = %m.to, "console: migrating");
                let result =
                    fleet_client::xen::migrate_one(client, settings, &m.domu, &m.from, &m.to, &m.address).await.unwrap_or_else(|e| {
                        MigrationResult {
                            domain: m.domu.clone(),
                            from: m.from.clone(),
                            to: m.to.clone(),
                            success: false,
                            message: e.to_string(),
                            elapsed_s: 0.0,
                        }
                    });
                tracing::info!(domu = %m.domu, success = result.success, elapsed_s = result.elapsed_s, "console: migration ended");
                send(Msg::Migrated(Box::new(result)));
            }
        }
    }
}

fn now_ms() -> u64 {
    ms_of(SystemTime::now())
}

fn ms_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

// -------------------------------------------------------------------------------------------------
// Keys

fn nav_bindings() -> Vec<Binding> {
    vec![
        Binding::new("down", &["j", "down"], Action::Nav(Nav::Down), "down"),
        Binding::new("up", &["k", "up"], Action::Nav(Nav::Up), "up"),
        Binding::new("page_down", &["pgdn", "ctrl-d"], Action::Nav(Nav::PageDown), "page down"),
        Binding::new("page_up", &["pgup", "ctrl-u"], Action::Nav(Nav::PageUp), "page up"),
        Binding::new("top", &["g", "home"], Action::Nav(Nav::Top), "first"),
        Binding::new("bottom", &["G", "end"], Action::Nav(Nav::Bottom), "last"),
    ]
}

/// The Xen panel's key table (`[xen]` in keys.toml).
pub fn key_table() -> Vec<Binding> {
    let mut t = vec![
        Binding::new("migrate", &["m"], Action::Xen(Msg::Migrate), "migrate domU"),
        Binding::new("find", &["/"], Action::Search(SearchEdit::Open), "find domU"),
        Binding::new("plan", &["b"], Action::Xen(Msg::ShowPlan), "balancer plan"),
        Binding::new("apply", &["a"], Action::Xen(Msg::ApplyPlan), "apply plan"),
        Binding::new("select", &["enter"], Action::Xen(Msg::Select), "choose"),
        Binding::new("dom0s", &["h", "left"], Action::Xen(Msg::FocusDom0s), "dom0s"),
        Binding::new("domus", &["l", "right"], Action::Xen(Msg::FocusDomus), "domUs"),
        Binding::new("refresh", &["r"], Action::Xen(Msg::Refresh), "refresh"),
        Binding::new("close", &["esc"], Action::Xen(Msg::Close), "close"),
    ];
    t.extend(nav_bindings());
    t
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

    /// The key table in force: the find line types text; everything else is the Xen table.
    pub fn mode(&self) -> Mode {
        if self.find.is_some() { Mode::Search } else { Mode::Xen }
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

    // ---------------------------------------------------------------------------------------------
    // Keys

    /// Turns a key into an action. An open popup or the find line keeps every key except ctrl-c;
    /// `esc` with nothing open is left to the shell (back to the previous panel).
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Action> {
        if self.find.is_some() {
            if let Some(action) = self.keys.action(Mode::Search, &key) {
                return Some(action);
            }
            return Some(text_edit(&key).map(|e| Action::Search(SearchEdit::Edit(e))).unwrap_or(Action::Xen(Msg::Swallow)));
        }
        let action = self.keys.action(Mode::Xen, &key);
        if let Some(popup) = &self.popup {
            if Key::of(&key) == Key::ctrl('c') {
                return None;
            }
            let plan = matches!(popup, Popup::Plan { .. });
            return Some(match action {
                Some(a @ (Action::Nav(_) | Action::Xen(Msg::Select | Msg::Close))) => a,
                Some(a @ Action::Xen(Msg::ApplyPlan | Msg::ShowPlan)) if plan => a,
                _ if Key::of(&key) == Key::ch('q') => Action::Xen(Msg::Close),
                _ => Action::Xen(Msg::Swallow),
            });
        }
        match action {
            Some(Action::Xen(Msg::Close)) => None,
            other => other,
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Messages

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

    fn start_migrate(&mut self) -> Option<Action> {
        if self.read_only {
            return Some(Notice::error("read-only: migrating is disabled"));
        }
        let Some(placed) = self.selected_domu() else {
            return Some(Notice::error("no domU selected: pick one in the domU list first"));
        };
        let (domu, from) = (placed.domu.name.clone(), placed.dom0.clone());
        if let Some(h) = self.migrating(&domu) {
            return Some(Notice::error(format!("{domu} is already migrating to {}", h.to)));
        }
        let no_reply = self.view.as_ref().map(|v| v.no_reply.clone()).unwrap_or_default();
        let choices: Vec<String> = self
            .dom0s()
            .iter()
            .filter(|d| d.name != from && d.error.is_none() && !no_reply.contains(&d.name))
            .map(|d| d.name.clone())
            .collect();
        if choices.is_empty() {
            return Some(Notice::error(format!("no other dom0 answered: {domu} has nowhere to go")));
        }
        self.popup = Some(Popup::Destinations { domu, from, choices, selected: 0 });
        None
    }

    /// The destination is picked: ask, saying exactly what moves where.
    fn choose_destination(&mut self) -> Option<Action> {
        let Some(Popup::Destinations { domu, from, choices, selected }) = self.popup.take() else { return None };
        let to = choices.get(selected)?.clone();
        let row = self.view.as_ref().and_then(|v| v.domus.iter().find(|p| p.dom0 == from && p.domu.name == domu)).map(|p| p.domu.clone());
        let mut lines = Vec::new();
        match &row {
            Some(r) => lines.push(format!(
                "Live-migrate domU {domu} ({}, {} vCPU(s), state {}, {:.1} s of CPU)",
                mib(r.mem),
                r.vcpus,
                r.state,
                r.cpu_time
            )),
            None => lines.push(format!("Live-migrate domU {domu}")),
        }
        lines.push(format!("  from  {from}{}", self.dom0_brief(&from)));
        lines.push(format!("  to    {to}{}", self.dom0_brief(&to)));
        lines.push(format!("xl migrate runs on {from}; it reaches {to} through {from}'s xen_host_map, else by name."));
        if self.policy.pinned.contains(&domu) {
            lines.push(format!("Note: the balancer policy pins {domu}; the balancer itself never moves it."));
        }
        Some(Action::Confirm(Box::new(Confirm {
            title: format!("Migrate {domu} to {to}?"),
            lines,
            yes: Action::Xen(Msg::MigrateConfirmed { domu, from, to }),
        })))
    }

    /// `  (load 0.30, 2 domUs)` for a dom0 of the view.
    fn dom0_brief(&self, name: &str) -> String {
        match self.dom0s().iter().find(|d| d.name == name) {
            Some(d) => format!(
                "  (load {}, {} of {} domUs, {} free)",
                balancer::fmt_load(d.load[0]),
                d.domu_count,
                self.max_label(),
                mib(d.free_memory)
            ),
            None => String::new(),
        }
    }

    /// The VM limit when a policy file says it, else `-`.
    fn max_label(&self) -> String {
        match self.policy_source {
            PolicySource::File(_) => self.policy.max_vm_per_host.to_string(),
            _ => "-".to_string(),
        }
    }

    fn confirm_plan(&mut self) -> Option<Action> {
        if self.read_only {
            return Some(Notice::error("read-only: applying the balancer's plan is disabled"));
        }
        let plan = self.plan();
        if plan.migrations.is_empty() {
            let why = plan.rejected.first().map(|r| format!(": {r}")).unwrap_or_default();
            return Some(Notice::info(format!("the balancer plans no migration{why}")));
        }
        let mut lines = vec![format!("The balancer's plan: {} live migration(s), one after the other.", plan.migrations.len())];
        for (i, m) in plan.migrations.iter().enumerate() {
            let via = if m.address != m.to { format!(" via {}", m.address) } else { String::new() };
            lines.push(format!("{}. {}: {} -> {}{via}", i + 1, m.domu, m.from, m.to));
            lines.push(format!("   {}", m.reason));
        }
        Some(Action::Confirm(Box::new(Confirm {
            title: "Apply the balancer's plan?".into(),
            lines,
            yes: Action::Xen(Msg::ApplyConfirmed { moves: plan.migrations }),
        })))
    }

    fn start_migrations(&mut self, moves: Vec<Migration>, by: MovedBy) -> Option<Action> {
        let moves: Vec<Migration> = moves.into_iter().filter(|m| self.migrating(&m.domu).is_none()).collect();
        if moves.is_empty() {
            return Some(Notice::error("already migrating"));
        }
        for m in &moves {
            // Recorded when started, so the cooldowns hold even if it fails half-way.
            self.obs.record_migration(PastMigration { at_ms: self.now_ms, domu: m.domu.clone(), from: m.from.clone(), to: m.to.clone() });
            self.history.push(HistoryEntry {
                at_ms: self.now_ms,
                domu: m.domu.clone(),
                from: m.from.clone(),
                to: m.to.clone(),
                by,
                outcome: MoveOutcome::Running,
            });
        }
        if self.history.len() > HISTORY_KEEP {
            self.history.drain(..self.history.len() - HISTORY_KEEP);
        }
        let what = match moves.as_slice() {
            [m] => format!("migrating {} from {} to {} ...", m.domu, m.from, m.to),
            many => format!("applying the plan: {} migrations ...", many.len()),
        };
        Some(Action::Batch(vec![Self::net(Cmd::Migrate { moves }), Notice::info(what)]))
    }

    fn on_migrated(&mut self, r: MigrationResult) -> Option<Action> {
        if let Some(h) = self
            .history
            .iter_mut()
            .rev()
            .find(|h| h.domu == r.domain && h.from == r.from && h.to == r.to && h.outcome == MoveOutcome::Running)
        {
            h.outcome = if r.success { MoveOutcome::Done { elapsed_s: r.elapsed_s } } else { MoveOutcome::Failed(r.message.clone()) };
        }
        let notice = if r.success {
            // Follow the domU to its new dom0 when it was the one under the cursor.
            if self.selected_domu().is_some_and(|p| p.domu.name == r.domain && p.dom0 == r.from) {
                self.jump_to(&r.to, &r.domain);
            }
            Notice::info(format!("{} migrated from {} to {} in {:.1} s", r.domain, r.from, r.to, r.elapsed_s))
        } else {
            Notice::error(format!("{}: migration from {} to {} FAILED: {}", r.domain, r.from, r.to, last_line(&r.message)))
        };
        let mut follow = vec![notice];
        follow.extend(self.start_refresh());
        Some(Action::Batch(follow))
    }

    fn on_found(&mut self, name: String, result: Result<Vec<String>, String>) -> Option<Action> {
        match result {
            Err(e) => Some(Notice::error(format!("cannot find {name}: {e}"))),
            Ok(on) if on.is_empty() => Some(Notice::error(format!("{name} runs on none of the dom0s"))),
            Ok(on) => {
                let first = on[0].clone();
                let known = self.view.as_ref().is_some_and(|v| v.domus.iter().any(|p| p.dom0 == first && p.domu.name == name));
                let also = if on.len() > 1 {
                    format!(" (and on {}: listed on {} dom0s at once)", on[1..].join(", "), on.len())
                } else {
                    String::new()
                };
                let notice = Notice::info(format!("{name} runs on {first}{also}"));
                if known {
                    self.jump_to(&first, &name);
                    Some(notice)
                } else {
                    self.jump_after_refresh = Some((first, name));
                    let mut follow = vec![notice];
                    follow.extend(self.start_refresh());
                    Some(Action::Batch(follow))
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Find

    /// The domU `text` names best: the exact name, else one that starts with it, else one that
    /// contains it (case-insensitive); ties go to the first in dom0 order.
    pub fn best_match(&self, text: &str) -> Option<&PlacedDomu> {
        let text = text.trim();
        let view = self.view.as_ref()?;
        if text.is_empty() {
            return None;
        }
        let lower = text.to_lowercase();
        let domus = &view.domus;
        domus
            .iter()
            .find(|p| p.domu.name == text)
            .or_else(|| domus.iter().find(|p| p.domu.name.to_lowercase() == lower))
            .or_else(|| domus.iter().find(|p| p.domu.name.to_lowercase().starts_with(&lower)))
            .or_else(|| domus.iter().find(|p| p.domu.name.to_lowercase().contains(&lower)))
    }

    fn find_edit(&mut self, edit: SearchEdit) -> Option<Action> {
        match edit {
            SearchEdit::Open => {
                if self.popup.is_none() {
                    self.find = Some(Find { input: TextInput::default(), before: (self.pane, self.dom0.clone(), self.domu.clone()) });
                }
                None
            }
            SearchEdit::Edit(e) => {
                let text = {
                    let find = self.find.as_mut()?;
                    find.input.apply(e);
                    find.input.text().to_string()
                };
                if let Some(p) = self.best_match(&text).map(|p| (p.dom0.clone(), p.domu.name.clone())) {
                    self.jump_to(&p.0, &p.1);
                }
                None
            }
            SearchEdit::Accept => {
                let find = self.find.take()?;
                let text = find.input.text().trim().to_string();
                if text.is_empty() {
                    return None;
                }
                if let Some(p) = self.best_match(&text).map(|p| (p.dom0.clone(), p.domu.name.clone())) {
                    self.jump_to(&p.0, &p.1);
                    return None;
                }
                // Not in the last picture: ask every dom0.
                Some(Action::Batch(vec![
                    Self::net(Cmd::Find { scope: self.scope.clone(), name: text.clone() }),
                    Notice::info(format!("asking every dom0 for {text} ...")),
                ]))
            }
            SearchEdit::Cancel => {
                if let Some(find) = self.find.take() {
                    (self.pane, self.dom0, self.domu) = find.before;
                }
                None
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Movement

    fn nav(&mut self, nav: Nav) {
        match &mut self.popup {
            Some(Popup::Destinations { choices, selected, .. }) => *selected = step(*selected, choices.len(), nav, 10),
            Some(Popup::Plan { scroll, .. }) => *scroll = step(*scroll, usize::MAX, nav, 10),
            None => match self.pane {
                Pane::Dom0s => {
                    let n = self.dom0s().len();
                    let i = step(self.dom0_index(), n, nav, 10);
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
                    let i = step(self.domu_index(), domus.len(), nav, 10);
                    if let Some(p) = domus.get(i) {
                        self.domu = Some(p.domu.name.clone());
                    }
                }
            },
        }
    }
}

/// Moves a cursor over `len` items.
fn step(at: usize, len: usize, nav: Nav, page: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let last = len - 1;
    match nav {
        Nav::Down => (at + 1).min(last),
        Nav::Up => at.saturating_sub(1),
        Nav::PageDown => at.saturating_add(page).min(last),
        Nav::PageUp => at.saturating_sub(page),
        Nav::Top => 0,
        Nav::Bottom => last,
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
        let t = &self.theme;
        let mut title = vec![Span::styled(" Xen ", t.title)];
        if let Some(sim) = self.simulated_label() {
            title.push(Span::styled(format!(" {sim} "), t.note));
        }
        if self.read_only {
            title.push(Span::styled(" read-only ", t.label));
        }
        let block = Block::bordered().border_style(t.border_focused).title(Line::from(title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if inner.height == 0 || inner.width == 0 {
            return;
        }
        let h = inner.height;
        let n0 = self.dom0s().len().max(1) as u16;
        let dom0_rows = n0.min((h / 3).max(2));
        // The domUs of the selected dom0 come first; the history has what is left, up to 10 rows.
        let domus_need = self.selected_domus().len().max(1) as u16 + 2;
        let history_room = h.saturating_sub(1 + dom0_rows + 1 + domus_need + 1).clamp(1, 10);
        let history_rows = (self.history.len() as u16).clamp(1, history_room);
        let [status, dom0s, domus, history] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(dom0_rows + 1),
            Constraint::Min(2),
            Constraint::Length(history_rows + 1),
        ])
        .areas(inner);
        frame.render_widget(Paragraph::new(self.status_line(status.width as usize)), status);
        self.draw_dom0s(frame, dom0s);
        self.draw_domus(frame, domus);
        self.draw_history(frame, history);
        match &self.popup {
            Some(Popup::Destinations { domu, from, choices, selected }) => {
                self.draw_destinations(frame, area, domu, from, choices, *selected)
            }
            Some(Popup::Plan { plan, scroll }) => self.draw_plan(frame, area, plan, *scroll),
            None => {}
        }
    }
}

// -------------------------------------------------------------------------------------------------
// Drawing

use fleet_client::format::{last_line, mib, utc_time_ms as hms};

/// `text` cut or padded to exactly `w` columns; a cut ends in `…`.
fn fit(text: &str, w: usize) -> String {
    let n = text.chars().count();
    if n <= w {
        return format!("{text:<w$}");
    }
    if w == 0 {
        return String::new();
    }
    let mut s: String = text.chars().take(w - 1).collect();
    s.push('…');
    s
}

fn rfit(text: &str, w: usize) -> String {
    let n = text.chars().count();
    if n <= w { format!("{text:>w$}") } else { fit(text, w) }
}

/// A domU's state in a word, the most telling flag first.
pub fn state_word(r: &DomainRow) -> &'static str {
    if r.dying {
        "dying"
    } else if r.crashed() {
        "crashed"
    } else if r.shutdown {
        "shutdown"
    } else if r.paused {
        "paused"
    } else if r.running {
        "running"
    } else if r.blocked {
        "blocked"
    } else {
        "-"
    }
}

/// The first visible row, moving only as far as needed to keep `selected` on screen.
fn scroll_top(selected: usize, visible: usize, len: usize) -> usize {
    if visible == 0 {
        return 0;
    }
    let top = if selected >= visible { selected + 1 - visible } else { 0 };
    top.min(len.saturating_sub(visible))
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

impl XenPanel {
    fn simulated_label(&self) -> Option<String> {
        if let Some(note) = &self.simulated_note {
            return Some(note.clone());
        }
        self.dom0s().iter().any(|d| d.simulated).then(|| "simulated hypervisor".to_string())
    }

    fn key_label(&self, name: &str) -> String {
        self.keys.key_of(Mode::Xen, name).map(|k| k.to_string()).unwrap_or_else(|| "?".into())
    }

    fn status_line(&self, width: usize) -> Line<'static> {
        let t = &self.theme;
        if let Some(find) = &self.find {
            let text = find.input.text().to_string();
            let mut spans = vec![Span::styled("find domU: ", t.label), Span::styled(text.clone(), t.input), Span::styled("_", t.input)];
            match self.best_match(&text) {
                Some(p) => spans.push(Span::styled(format!("  -> {} on {}", p.domu.name, p.dom0), t.text)),
                None if !text.trim().is_empty() => spans.push(Span::styled("  not in this picture: enter asks every dom0", t.label)),
                None => {}
            }
            return Line::from(spans);
        }
        let mut left = Vec::new();
        match &self.view {
            None if self.refresh_error.is_none() => left.push(Span::styled("asking the dom0s (nodes with the xen agent) ...", t.label)),
            None => {}
            Some(v) => {
                left.push(Span::styled(format!("{} dom0(s), {} domU(s)", v.dom0s.len(), v.domus.len()), t.text));
                if let Some(at) = self.refreshed_at {
                    left.push(Span::styled(format!("  at {} UTC", hms(at)), t.label));
                }
                if self.scope != Scope::default() {
                    left.push(Span::styled(format!("  in {}", self.scope.describe()), t.label));
                }
                if !v.no_reply.is_empty() {
                    left.push(Span::styled(format!("  no reply: {}", v.no_reply.join(", ")), t.status.no_reply));
                }
            }
        }
        if let Some(e) = &self.refresh_error {
            left.push(Span::styled(format!("  refresh failed: {e}"), t.error));
        }
        let policy = match &self.policy_source {
            PolicySource::Default => Span::styled("policy: defaults", t.label),
            PolicySource::File(p) => Span::styled(format!("policy: {}", p.display()), t.label),
            PolicySource::Invalid { .. } => Span::styled("policy: INVALID (b shows why)", t.error),
        };
        let used: usize = left.iter().map(|s| s.width()).sum();
        let room = width.saturating_sub(used);
        if policy.width() + 2 <= room {
            left.push(Span::raw(" ".repeat(room - policy.width())));
            left.push(policy);
        }
        Line::from(left)
    }

    fn draw_dom0s(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let width = area.width as usize;
        let dom0s = self.dom0s();
        let name_w = dom0s.iter().map(|d| d.name.chars().count()).max().unwrap_or(4).clamp(4, 20);
        // marker, name, load, trend, used, free, domUs, then the flag ("over 1.0 for 5.5 min")
        let fixed = 2 + name_w + 2 + 5 + 2 + 2 + 9 + 2 + 9 + 2 + 6 + 2;
        let trend_w = width.saturating_sub(fixed + 20).clamp(8, 60);
        let header = format!(
            "  {}  {}  {}  {}  {}  {}",
            fit("DOM0", name_w),
            rfit("LOAD", 5),
            fit(if trend_w >= 10 { "LOAD TREND" } else { "TREND" }, trend_w),
            rfit("MEM USED", 9),
            rfit("FREE", 9),
            fit("DOMUS", 6)
        );
        let [head, rows] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        frame.render_widget(Paragraph::new(Line::from(Span::styled(fit(&header, width), t.table.header))), head);
        if dom0s.is_empty() {
            if self.view.is_some() {
                let text = if self.scope == Scope::default() {
                    "  No dom0 answered: no node runs the xen agent.".to_string()
                } else {
                    format!("  No dom0 answered: no node with the xen agent in {}.", self.scope.describe())
                };
                frame.render_widget(Paragraph::new(Span::styled(text, t.label)), rows);
            }
            return;
        }
        let visible = rows.height as usize;
        let selected = self.dom0_index();
        let top = scroll_top(selected, visible, dom0s.len());
        let max = self.trends.values().flat_map(|v| v.iter().copied()).fold(self.policy.load_threshold * 2.0, f64::max);
        let no_reply = self.view.as_ref().map(|v| v.no_reply.as_slice()).unwrap_or(&[]);
        for (i, d) in dom0s.iter().enumerate().skip(top).take(visible) {
            let y = rows.y + (i - top) as u16;
            let line_area = Rect { x: rows.x, y, width: rows.width, height: 1 };
            let is_selected = i == selected;
            let base = if is_selected && self.pane == Pane::Dom0s { t.row.selected.style() } else { Style::default() };
            let over = d.load[0] > self.policy.load_threshold;
            let marker = if is_selected { "> " } else { "  " };
            let mut spans = vec![
                Span::styled(marker.to_string(), base),
                Span::styled(fit(&d.name, name_w), base.patch(t.xen.dom0.style())),
                Span::styled("  ", base),
            ];
            let answered = d.error.is_none() && !no_reply.contains(&d.name);
            if answered {
                let load_style = if over { t.xen.overloaded.style() } else { t.text.style() };
                spans.push(Span::styled(rfit(&format!("{:.2}", d.load[0]), 5), base.patch(load_style)));
            } else {
                spans.push(Span::styled(rfit("-", 5), base));
            }
            spans.push(Span::styled(format!("  {}  ", " ".repeat(trend_w)), base));
            let used = d.total_memory.saturating_sub(d.free_memory);
            let (used, free) = if d.total_memory > 0 { (mib(used), mib(d.free_memory)) } else { ("-".into(), "-".into()) };
            let count = if answered || d.domu_count > 0 { d.domu_count.to_string() } else { "-".into() };
            spans.push(Span::styled(
                format!("{}  {}  {}  ", rfit(&used, 9), rfit(&free, 9), fit(&format!("{count}/{}", self.max_label()), 6)),
                base.patch(t.text.style()),
            ));
            let flag = if let Some(e) = &d.error {
                Span::styled(format!("! {e}"), base.patch(t.status.failed.style()))
            } else if no_reply.contains(&d.name) {
                Span::styled("no reply", base.patch(t.status.no_reply.style()))
            } else if over {
                let over_for = self.obs.dom0s.get(&d.name).map(|s| over_since(s, self.policy.load_threshold)).unwrap_or(0);
                Span::styled(
                    format!("over {} for {}", balancer::fmt_load(self.policy.load_threshold), balancer::fmt_duration(over_for)),
                    base.patch(t.xen.overloaded.style()),
                )
            } else {
                Span::styled("", base)
            };
            spans.push(flag);
            let used_w: usize = spans.iter().map(|s| s.width()).sum();
            if used_w < width {
                spans.push(Span::styled(" ".repeat(width - used_w), base));
            }
            frame.render_widget(Paragraph::new(Line::from(spans)), line_area);
            // The trend: the latest loads, scaled so the threshold sits at half height.
            let trend_x = rows.x + (2 + name_w + 2 + 5 + 2) as u16;
            if let Some(loads) = self.trends.get(&d.name)
                && trend_x < rows.x + rows.width
            {
                let w = (trend_w as u16).min(rows.x + rows.width - trend_x);
                let skip = loads.len().saturating_sub(w as usize);
                let bars: Vec<SparklineBar> = loads
                    .iter()
                    .skip(skip)
                    .map(|l| {
                        let bar = SparklineBar::from((l * 100.0).round() as u64);
                        if *l > self.policy.load_threshold { bar.style(Some(t.xen.overloaded.style())) } else { bar }
                    })
                    .collect();
                let spark = Sparkline::default().data(bars).max((max * 100.0).round() as u64).style(base.patch(t.status.ok.style()));
                frame.render_widget(spark, Rect { x: trend_x, y, width: w, height: 1 });
            }
        }
    }

    fn draw_domus(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let width = area.width as usize;
        let [title, head, rows] = Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Min(0)]).areas(area);
        let Some(d) = self.selected_dom0() else {
            frame.render_widget(Paragraph::new(Span::styled("domUs", t.table.header)), title);
            return;
        };
        let domus = self.domus_on(&d.name);
        let mut title_spans = vec![
            Span::styled("domUs on ", t.label),
            Span::styled(d.name.clone(), t.xen.dom0),
            Span::styled(format!("  {} of {}", domus.len(), self.max_label()), t.label),
        ];
        if self.pane == Pane::Dom0s {
            title_spans.push(Span::styled(format!("   ({} to move in here)", self.key_label("domus")), t.label));
        }
        frame.render_widget(Paragraph::new(Line::from(title_spans)), title);
        let rest = 2 + 2 + 4 + 2 + 6 + 2 + 10 + 2 + 9 + 2 + 5 + 2 + 10;
        let name_w = domus.iter().map(|p| p.domu.name.chars().count()).max().unwrap_or(4).max(4).min(width.saturating_sub(rest).max(4));
        let header = format!(
            "  {}  {}  {}  {}  {}  {}  {}",
            fit("NAME", name_w),
            rfit("ID", 4),
            fit("STATE", 6),
            fit("FLAGS", 10),
            rfit("MEM", 9),
            rfit("VCPUS", 5),
            rfit("CPU TIME", 10)
        );
        frame.render_widget(Paragraph::new(Span::styled(fit(&header, width), t.table.header)), head);
        if let Some(e) = &d.error {
            frame.render_widget(Paragraph::new(Span::styled(format!("  {e}"), t.status.failed)), rows);
            return;
        }
        if domus.is_empty() {
            frame.render_widget(Paragraph::new(Span::styled("  no domU runs here", t.label)), rows);
            return;
        }
        let visible = rows.height as usize;
        let selected = self.domu_index();
        let top = scroll_top(selected, visible, domus.len());
        let lines: Vec<Line> = domus
            .iter()
            .enumerate()
            .skip(top)
            .take(visible)
            .map(|(i, p)| {
                let r = &p.domu;
                let is_selected = i == selected;
                let base = if is_selected && self.pane == Pane::Domus { t.row.selected.style() } else { Style::default() };
                let (flags, style) = match self.migrating(&r.name) {
                    Some(h) => (format!("-> {}", h.to), t.xen.migrating.style()),
                    None => {
                        let word = state_word(r);
                        let style = match word {
                            "paused" => t.xen.paused.style(),
                            "crashed" | "dying" => t.status.failed.style(),
                            _ => t.xen.domu.style(),
                        };
                        (word.to_string(), style)
                    }
                };
                let text = format!(
                    "{}{}  {}  {}  {}  {}  {}  {}",
                    if is_selected { "> " } else { "  " },
                    fit(&r.name, name_w),
                    rfit(&r.id.to_string(), 4),
                    fit(&r.state, 6),
                    fit(&flags, 10),
                    rfit(&mib(r.mem), 9),
                    rfit(&r.vcpus.to_string(), 5),
                    rfit(&format!("{:.1} s", r.cpu_time), 10)
                );
                Line::from(Span::styled(fit(&text, width), base.patch(style)))
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), rows);
    }

    fn draw_history(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let width = area.width as usize;
        let [title, rows] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        let running = self.history.iter().filter(|h| h.outcome == MoveOutcome::Running).count();
        let mut spans = vec![Span::styled("Migrations", t.table.header)];
        if running > 0 {
            spans.push(Span::styled(format!("  {running} running"), t.xen.migrating));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), title);
        if self.history.is_empty() {
            frame.render_widget(Paragraph::new(Span::styled("  none made from this console yet", t.label)), rows);
            return;
        }
        let lines: Vec<Line> = self
            .history
            .iter()
            .rev()
            .take(rows.height as usize)
            .map(|h| {
                let (outcome, style) = match &h.outcome {
                    MoveOutcome::Running => ("migrating ...".to_string(), t.xen.migrating.style()),
                    MoveOutcome::Done { elapsed_s } => (format!("ok in {elapsed_s:.1} s"), t.status.ok.style()),
                    MoveOutcome::Failed(why) => (format!("FAILED: {}", last_line(why)), t.status.failed.style()),
                };
                let by = if h.by == MovedBy::Balancer { "  (balancer)" } else { "" };
                let head = format!("  {}  {}  {} -> {}  ", hms(h.at_ms), h.domu, h.from, h.to);
                let rest = width.saturating_sub(head.chars().count());
                Line::from(vec![Span::styled(head, t.text), Span::styled(fit(&format!("{outcome}{by}"), rest), style)])
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), rows);
    }

    fn draw_destinations(&self, frame: &mut Frame, area: Rect, domu: &str, from: &str, choices: &[String], selected: usize) {
        let t = &self.theme;
        let rows: Vec<String> = choices.iter().map(|c| format!("{c}{}", self.dom0_brief(c))).collect();
        let hint = format!(
            "{} migrate there   {} cancel",
            self.key_label("select"),
            self.keys.key_of(Mode::Xen, "close").map(|k| k.to_string()).unwrap_or_default()
        );
        let title = format!(" Migrate {domu} from {from} to ... ");
        let width = rows.iter().map(|r| r.chars().count() + 2).chain([hint.len(), title.len()]).max().unwrap_or(20) as u16 + 4;
        let popup = centered(area, width.min(area.width.saturating_sub(2)), choices.len() as u16 + 4);
        let block = Block::bordered()
            .border_style(t.border_focused)
            .style(t.popup)
            .title(Span::styled(title, t.title))
            .padding(Padding::horizontal(1));
        let inner = block.inner(popup);
        frame.render_widget(Clear, popup);
        frame.render_widget(block, popup);
        let mut lines: Vec<Line> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let style = if i == selected { t.row.selected.style() } else { t.popup.style() };
                Line::from(Span::styled(fit(&format!("{}{r}", if i == selected { "> " } else { "  " }), inner.width as usize), style))
            })
            .collect();
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(hint, t.label)));
        frame.render_widget(Paragraph::new(lines), inner);
    }

    fn draw_plan(&self, frame: &mut Frame, area: Rect, plan: &Plan, scroll: usize) {
        let t = &self.theme;
        let p = &self.policy;
        let samples = self.obs.dom0s.values().map(Vec::len).max().unwrap_or(0);
        let mut lines: Vec<Line> = Vec::new();
        let source = match &self.policy_source {
            PolicySource::Default => "default policy".to_string(),
            PolicySource::File(f) => format!("policy {}", f.display()),
            PolicySource::Invalid { file, .. } => format!("default policy ({} is invalid)", file.display()),
        };
        lines.push(Line::from(Span::styled(
            format!(
                "{source}: over {} for {} min moves a domU to a dom0 under {} with fewer than {} VMs; {samples} sample(s) seen",
                balancer::fmt_load(p.load_threshold),
                p.max_over,
                balancer::fmt_load(p.max_load_candidate),
                p.max_vm_per_host
            ),
            t.label,
        )));
        if let PolicySource::Invalid { error, .. } = &self.policy_source {
            lines.push(Line::from(Span::styled(error.clone(), t.error)));
        }
        lines.push(Line::raw(""));
        for l in fleet_client::xen::plan_lines(plan) {
            let style = if l.starts_with("Plan:") || l.starts_with("Dom0s:") || l.starts_with("Considered") {
                t.table.header.style()
            } else if l.ends_with("OVERLOADED") {
                t.xen.overloaded.style()
            } else if l.starts_with("  ") && l.trim_start().chars().next().is_some_and(|c| c.is_ascii_digit()) {
                t.xen.migrating.style()
            } else {
                t.popup.style()
            };
            lines.push(Line::from(Span::styled(l, style)));
        }
        // As large as the text, within the panel: width first, then the rows the wrapping takes.
        let widest = lines.iter().map(Line::width).max().unwrap_or(0) as u16;
        let width = (widest + 4).max(40).min(area.width.saturating_sub(4)).max(1);
        let text_w = width.saturating_sub(4).max(1) as usize;
        let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(text_w)).sum();
        let height = (rows as u16 + 3).min(area.height.saturating_sub(2).max(1));
        let popup = Rect { x: area.x + (area.width.saturating_sub(width)) / 2, y: area.y + 1, width: width.min(area.width), height }
            .intersection(area);
        let block = Block::bordered()
            .border_style(t.border_focused)
            .style(t.popup)
            .title(Span::styled(format!(" Balancer plan at {} UTC ", hms(plan.at_ms)), t.title))
            .padding(Padding::horizontal(1));
        let inner = block.inner(popup);
        frame.render_widget(Clear, popup);
        frame.render_widget(block, popup);
        let [body, footer] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);
        let max_scroll = rows.saturating_sub(body.height as usize);
        let scroll = scroll.min(max_scroll);
        let visible: Vec<Line> = lines.into_iter().skip(scroll).collect();
        frame.render_widget(Paragraph::new(visible).wrap(ratatui::widgets::Wrap { trim: false }), body);
        let apply = if self.read_only { String::new() } else { format!("{} apply   ", self.key_label("apply")) };
        let hint = format!(
            "{apply}{} / {} close   {} {} scroll",
            self.key_label("plan"),
            self.key_label("close"),
            self.key_label("down"),
            self.key_label("up")
        );
        frame.render_widget(Paragraph::new(Span::styled(hint, t.label)), footer);
    }
}

/// How long the latest run of samples above `threshold` has lasted, in ms.
fn over_since(samples: &[Sample], threshold: f64) -> u64 {
    let Some(last) = samples.last() else { return 0 };
    if last.load <= threshold {
        return 0;
    }
    let from = samples.iter().rposition(|s| s.load <= threshold).map_or(0, |i| i + 1);
    last.at_ms.saturating_sub(samples[from].at_ms)
}

#[cfg(test)]
mod tests;
