//! The application shell: owns the six panels and the popups, routes keys (top popup first, then
//! the focused panel, then the global table) and actions, and draws the screen. It knows nothing
//! about the terminal or the network: the loop in `mod.rs` feeds it actions and hands
//! [`NetCommand`]s to the network task.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crossterm::event::KeyEvent;
use fleet_client::metrics::profile::Profile;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Paragraph;

use super::action::{Action, Confirm, NetCommand, Notice, PanelId, Scope};
use super::cmdline::{self, COMMANDS, CommandLine};
use super::component::{Component, PanelContext};
use super::confirm;
use super::discovery::{self, Discovery, check_filter};
use super::help::{Help, footer_line, notice_line};
use super::inspector::Inspector;
use super::inventory::Inventory;
use super::jobs::JobsPanel;
use super::keys::{Keymap, Mode};
use super::log::{self, LogPanel, LogStore};
use super::processes::ProcessesPanel;
use super::rpc::RpcPanel;
use super::theme::{self, Theme};
use super::topbar::TopBar;
use super::xen::XenPanel;

/// Follow-up actions are chained; this bounds a chain so a bug cannot hang the loop.
const MAX_CHAIN: usize = 64;
/// Panels remembered for `esc`.
const BACK_DEPTH: usize = 16;

/// What the application starts from.
pub struct AppInit {
    pub hubs: Vec<String>,
    pub note: Option<String>,
    pub read_only: bool,
    pub theme: Theme,
    pub keys: Arc<Keymap>,
    /// Where `:theme` looks for theme files.
    pub theme_dirs: Vec<PathBuf>,
    /// The clock's first reading (injected so snapshots are stable).
    pub now: SystemTime,
    /// Where the Log panel keeps its history across restarts; `None` keeps it in memory.
    pub log_history: Option<PathBuf>,
    /// The config's metric profiles, for the Metrics view.
    pub profiles: Vec<Profile>,
}

impl AppInit {
    /// Defaults for tests and benchmarks: the default theme and keys, no theme directories.
    pub fn new(hubs: Vec<String>, now: SystemTime) -> AppInit {
        AppInit {
            hubs,
            note: None,
            read_only: false,
            theme: Theme::default_theme(),
            keys: Default::default(),
            theme_dirs: Vec::new(),
            now,
            log_history: None,
            profiles: Vec::new(),
        }
    }
}

pub struct App {
    theme: Theme,
    keys: Arc<Keymap>,
    theme_dirs: Vec<PathBuf>,
    top: TopBar,
    focus: PanelId,
    back: Vec<PanelId>,
    scope: Scope,
    discovery: Discovery,
    processes: ProcessesPanel,
    inventory: Inventory,
    xen: XenPanel,
    rpc: RpcPanel,
    log: LogPanel,
    jobs: JobsPanel,
    help: Help,
    inspector: Inspector,
    cmdline: CommandLine,
    confirm: Option<Confirm>,
    notice: Option<Notice>,
    quit: bool,
    /// `ctrl-z` was pressed; the loop suspends the console ([`take_suspend`](Self::take_suspend)).
    suspend: bool,
    /// Text for the clipboard; the loop writes it to the terminal ([`take_clipboard`](Self::take_clipboard)).
    clipboard: Option<String>,
    fatal: Option<String>,
    /// Set by `update` when the screen must be redrawn (gitui's `requires_redraw`).
    dirty: bool,
}

impl App {
    pub fn new(init: AppInit) -> App {
        let ctx = PanelContext { theme: init.theme.clone(), keys: init.keys.clone(), read_only: init.read_only, scope: Scope::default() };
        let mut app = App {
            top: TopBar::new(init.theme.clone(), &init.hubs, init.note, init.read_only, init.now),
            discovery: Discovery::new(&ctx),
            processes: ProcessesPanel::new(&ctx),
            inventory: Inventory::new(&ctx),
            xen: XenPanel::new(&ctx),
            rpc: RpcPanel::new(&ctx),
            log: match &init.log_history {
                Some(path) => LogPanel::new(&ctx).with_store(LogStore::new(path, log::KEEP)),
                None => LogPanel::new(&ctx),
            },
            jobs: JobsPanel::new(&ctx),
            help: Help::default(),
            // Files the inspector writes go next to the Log's history by default.
            inspector: Inspector::new(init.log_history.as_deref().and_then(|p| p.parent()).map(PathBuf::from)),
            cmdline: CommandLine::new(theme::names(&init.theme_dirs)),
            confirm: None,
            notice: None,
            focus: PanelId::Discovery,
            back: Vec::new(),
            scope: Scope::default(),
            theme: init.theme,
            keys: init.keys,
            theme_dirs: init.theme_dirs,
            quit: false,
            suspend: false,
            clipboard: None,
            fatal: None,
            dirty: true,
        };
        app.inventory.update(Action::Metrics(super::metrics::Msg::Profiles(init.profiles)));
        // Panels that stamp times start from the same clock as the top bar.
        app.broadcast(Action::Tick(init.now));
        app.inspector.set_now(init.now);
        app
    }

    /// The key table in force: the top popup's, else the focused panel's.
    pub fn mode(&self) -> Mode {
        if self.confirm.is_some() {
            Mode::Confirm
        } else if self.cmdline.visible() {
            Mode::CommandLine
        } else if self.help.visible() {
            Mode::Help
        } else if self.inspector.visible() {
            self.inspector.mode()
        } else {
            self.panel_mode()
        }
    }

    fn panel_mode(&self) -> Mode {
        match self.focus {
            PanelId::Discovery => self.discovery.mode(),
            PanelId::Processes => self.processes.mode().keys_mode(),
            PanelId::Inventory => self.inventory.mode(),
            PanelId::Xen => self.xen.mode(),
            PanelId::Rpc => self.rpc.mode(),
            PanelId::Log => self.log.mode(),
            PanelId::Jobs => self.jobs.mode(),
        }
    }

    pub fn focus(&self) -> PanelId {
        self.focus
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    pub fn rpc(&self) -> &RpcPanel {
        &self.rpc
    }

    pub fn log(&self) -> &LogPanel {
        &self.log
    }

    pub fn jobs(&self) -> &JobsPanel {
        &self.jobs
    }

    pub fn top_bar(&self) -> &TopBar {
        &self.top
    }

    pub fn command_line(&self) -> &CommandLine {
        &self.cmdline
    }

    pub fn theme(&self) -> &Theme {
        &self.theme
    }

    pub fn notice(&self) -> Option<&Notice> {
        self.notice.as_ref()
    }

    pub fn confirm(&self) -> Option<&Confirm> {
        self.confirm.as_ref()
    }

    pub fn help_visible(&self) -> bool {
        self.help.visible()
    }

    pub fn should_quit(&self) -> bool {
        self.quit || self.fatal.is_some()
    }

    pub fn inspector(&self) -> &Inspector {
        &self.inspector
    }

    /// Text to put on the clipboard, once per `y`.
    pub fn take_clipboard(&mut self) -> Option<String> {
        self.clipboard.take()
    }

    /// Whether the console should suspend now (once per `ctrl-z`).
    pub fn take_suspend(&mut self) -> bool {
        std::mem::take(&mut self.suspend)
    }

    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// Applies one action and the follow-ups it produces; work for the network goes to `net`.
    /// Returns whether the screen changed.
    pub fn dispatch(&mut self, action: Action, net: &mut dyn FnMut(NetCommand)) -> bool {
        let mut queue = VecDeque::from([action]);
        let mut steps = 0;
        while let Some(action) = queue.pop_front() {
            steps += 1;
            if steps > MAX_CHAIN {
                tracing::error!(?queue, "action chain too long; dropped the rest");
                break;
            }
            let next = match action {
                Action::Key(key) => self.handle_key(key),
                Action::Net(cmd) => {
                    net(*cmd);
                    None
                }
                Action::Batch(actions) => {
                    for a in actions.into_iter().rev() {
                        queue.push_front(a);
                    }
                    None
                }
                other => self.update(other),
            };
            if let Some(next) = next {
                queue.push_front(next);
            }
        }
        std::mem::take(&mut self.dirty)
    }

    /// Sends `action` to every panel; their follow-ups come back as one batch.
    fn broadcast(&mut self, action: Action) -> Option<Action> {
        batch([
            self.discovery.update(action.clone()),
            self.processes.update(action.clone()),
            self.inventory.update(action.clone()),
            self.xen.update(action.clone()),
            self.rpc.update(action.clone()),
            self.jobs.update(action.clone()),
            self.log.update(action),
        ])
    }

    fn focused(&mut self) -> &mut dyn Component {
        match self.focus {
            PanelId::Discovery => &mut self.discovery,
            PanelId::Processes => &mut self.processes,
            PanelId::Inventory => &mut self.inventory,
            PanelId::Xen => &mut self.xen,
            PanelId::Rpc => &mut self.rpc,
            PanelId::Log => &mut self.log,
            PanelId::Jobs => &mut self.jobs,
        }
    }

    fn focus_panel(&mut self, panel: PanelId, remember: bool) -> Option<Action> {
        // The inspector shows something of the panel it was opened on.
        self.inspector.close();
        if panel == self.focus {
            return None;
        }
        if remember {
            self.back.push(self.focus);
            if self.back.len() > BACK_DEPTH {
                self.back.remove(0);
            }
        }
        self.focus = panel;
        Some(Action::FocusChanged(panel))
    }

    /// Runs a `:` command.
    fn run_command(&mut self, line: &str) -> Option<Action> {
        let (command, arg) = line.split_once(char::is_whitespace).map(|(c, a)| (c, a.trim())).unwrap_or((line, ""));
        match command {
            "q" | "quit" => Some(Action::Quit),
            "help" => {
                self.help.open(self.panel_mode());
                None
            }
            "ping" | "filter" => {
                if command == "filter" && arg.is_empty() {
                    return Some(Notice::error("usage: filter EXPR, e.g. filter country=uk and role=web"));
                }
                let msg = if arg.is_empty() {
                    discovery::Msg::Rerun
                } else {
                    if let Err(e) = check_filter(arg) {
                        return Some(Notice::error(format!("bad filter at column {}: {}", e.column, e.message)));
                    }
                    discovery::Msg::Run(arg.to_string())
                };
                Some(Action::Batch(vec![Action::FocusPanel(PanelId::Discovery), Action::Discovery(msg)]))
            }
            "theme" => match theme::load(arg, false, &self.theme_dirs) {
                Ok(theme) => Some(Action::Batch(vec![Action::ThemeChanged(Box::new(theme)), Notice::info(format!("theme {arg}"))])),
                Err(e) => Some(Notice::error(format!("{e:#}"))),
            },
            "columns" => {
                let columns: Vec<String> = arg.split(',').map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect();
                if let Some(bad) = columns.iter().find(|c| !c.chars().all(|ch| ch.is_alphanumeric() || matches!(ch, '_' | '-' | '.' | ':')))
                {
                    return Some(Notice::error(format!("not a fact name: {bad:?} (e.g. columns country,role)")));
                }
                let said = if columns.is_empty() { "no fact columns".to_string() } else { format!("fact columns {}", columns.join(", ")) };
                Some(Action::Batch(vec![
                    Action::FocusPanel(PanelId::Discovery),
                    Action::Discovery(discovery::Msg::Columns(columns)),
                    Notice::info(said),
                ]))
            }
            "group" => {
                if !arg.is_empty() && !arg.chars().all(|ch| ch.is_alphanumeric() || matches!(ch, '_' | '-' | '.' | ':')) {
                    return Some(Notice::error(format!("not a fact name: {arg:?} (e.g. group country)")));
                }
                let fact = (!arg.is_empty()).then(|| arg.to_string());
                let said = match &fact {
                    Some(f) => format!("metrics grouped by {f}"),
                    None => "metrics not grouped".to_string(),
                };
                Some(Action::Batch(vec![
                    Action::FocusPanel(PanelId::Inventory),
                    Action::Inventory(super::inventory::Msg::ShowMetrics),
                    Action::Metrics(super::metrics::Msg::Group(fact)),
                    Notice::info(said),
                ]))
            }
            "profile" => {
                let name = (!arg.is_empty()).then(|| arg.to_string());
                Some(Action::Batch(vec![
                    Action::FocusPanel(PanelId::Inventory),
                    Action::Inventory(super::inventory::Msg::ShowMetrics),
                    Action::Metrics(super::metrics::Msg::UseProfile(name)),
                ]))
            }
            "panel" => match PanelId::from_name(arg) {
                Some(p) => Some(Action::FocusPanel(p)),
                None => {
                    let names: Vec<&str> = PanelId::ALL.iter().map(|p| p.name()).collect();
                    Some(Notice::error(format!("unknown panel {arg:?} (panels: {})", names.join(", "))))
                }
            },
            other => {
                let names: Vec<&str> = COMMANDS.iter().map(|(n, _)| *n).collect();
                Some(Notice::error(format!("unknown command {other:?} (commands: {})", names.join(", "))))
            }
        }
    }
}

impl Component for App {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        if self.notice.take().is_some() {
            self.dirty = true;
        }
        // Suspending is the terminal's business: it works in every mode, even while typing.
        if let Some(Action::Suspend) = self.keys.action(Mode::Global, &key) {
            return Some(Action::Suspend);
        }
        if self.confirm.is_some() {
            return self.keys.action(Mode::Confirm, &key);
        }
        if self.cmdline.visible() {
            return self.keys.action(Mode::CommandLine, &key).or_else(|| cmdline::edit_of(&key));
        }
        if self.help.visible() {
            return self.keys.action(Mode::Help, &key);
        }
        if self.inspector.visible() {
            // Reading keys it does not bind go on to the global table (1-6, ?, :).
            let typing = self.inspector.mode().is_text_entry();
            return self.inspector.on_key(&self.keys, &key).or_else(|| if typing { None } else { self.keys.action(Mode::Global, &key) });
        }
        let text_entry = self.panel_mode().is_text_entry();
        if let Some(action) = self.focused().handle_key(key) {
            return Some(action);
        }
        // A panel typing into a line keeps every key; elsewhere the global keys apply.
        if text_entry { None } else { self.keys.action(Mode::Global, &key) }
    }

    fn update(&mut self, action: Action) -> Option<Action> {
        if let Action::Tick(now) = action {
            self.inspector.set_now(now);
            let before = self.top.clock().to_string();
            self.top.update(&action);
            // The clock shows seconds; ticks within a second change nothing on screen unless
            // the spinner turns.
            self.dirty |= self.top.clock() != before || self.log.in_flight() > 0;
            return self.broadcast(action);
        }
        self.dirty = true;
        match action {
            Action::Quit => {
                self.quit = true;
                None
            }
            Action::Suspend => {
                self.suspend = true;
                None
            }
            Action::Fatal(message) => {
                self.fatal = Some(message);
                None
            }
            Action::ToggleHelp => {
                if self.help.visible() {
                    self.help.close();
                } else {
                    self.help.open(self.panel_mode());
                }
                None
            }
            Action::ClosePopup => {
                if self.confirm.take().is_none() && !self.cmdline.visible() {
                    self.help.close();
                }
                None
            }
            Action::Inspect(inspection) => {
                self.inspector.open(*inspection);
                None
            }
            Action::InspectUpdate(inspection) => {
                self.inspector.refresh(*inspection);
                None
            }
            Action::Inspector(msg) => self.inspector.update(msg),
            Action::Clipboard(text) => {
                self.clipboard = Some(text);
                None
            }
            Action::Back if self.inspector.visible() => {
                self.inspector.close();
                None
            }
            Action::Back => {
                let previous = self.back.pop()?;
                self.focus_panel(previous, false)
            }
            Action::FocusPanel(panel) => self.focus_panel(panel, true),
            Action::NextPanel => self.focus_panel(self.focus.next(), true),
            Action::PrevPanel => self.focus_panel(self.focus.prev(), true),
            Action::OpenCommandLine => {
                self.cmdline.open();
                None
            }
            Action::CommandLine(edit) => self.cmdline.apply(edit),
            Action::RunCommand(line) => self.run_command(&line),
            Action::Confirm(confirm) => {
                self.confirm = Some(*confirm);
                None
            }
            Action::ConfirmYes => self.confirm.take().map(|c| c.yes),
            Action::Notify(notice) => {
                self.notice = Some(notice);
                None
            }
            Action::Nav(nav) if self.help.visible() => {
                self.help.scroll(nav);
                None
            }
            Action::Nav(_) | Action::Search(_) => self.focused().update(action),
            Action::ThemeChanged(theme) => {
                self.theme = (*theme).clone();
                self.top.update(&Action::ThemeChanged(theme.clone()));
                self.broadcast(Action::ThemeChanged(theme))
            }
            Action::ScopeChanged(scope) => {
                self.scope = scope.clone();
                self.top.update(&Action::ScopeChanged(scope.clone()));
                self.broadcast(Action::ScopeChanged(scope))
            }
            Action::RunDiscovery { round, ref filter } => {
                let net: Action = NetCommand::Round { round, filter: filter.clone() }.into();
                let scope = Action::ScopeChanged(Scope::filter(filter));
                let follow = self.broadcast(action);
                Some(Action::Batch([net, scope].into_iter().chain(follow).collect()))
            }
            Action::RequestStarted(info) => {
                let net: Action = NetCommand::Rpc(info.clone()).into();
                let follow = self.broadcast(Action::RequestStarted(info));
                Some(Action::Batch([net].into_iter().chain(follow).collect()))
            }
            Action::Link(_) | Action::Nodes(_) | Action::NodeEvent(_) => {
                self.top.update(&action);
                self.broadcast(action)
            }
            // Request progress only concerns the panels that follow requests (a burst of a
            // thousand replies should not be copied to every panel).
            Action::Round { .. } => {
                batch([self.discovery.update(action.clone()), self.rpc.update(action.clone()), self.log.update(action)])
            }
            Action::Request { .. } => batch([self.rpc.update(action.clone()), self.log.update(action)]),
            // The Metrics view follows the filter's members too (the hosts it shows).
            Action::Members { .. } => batch([self.discovery.update(action.clone()), self.inventory.update(action)]),
            Action::Discovery(_) => self.discovery.update(action),
            Action::Inventory(_) | Action::Metrics(_) => self.inventory.update(action),
            Action::Rpc(_) => self.rpc.update(action),
            Action::Log(_) => self.log.update(action),
            Action::Processes(_) => self.processes.update(action),
            Action::Logged(_) => self.log.update(action),
            Action::Xen(_) => self.xen.update(action),
            Action::Jobs(_) | Action::Concat(_) => self.jobs.update(action),
            Action::Resize { .. } => None,
            // Everything else is news for the panels: rounds, requests, membership, focus.
            other => self.broadcast(other),
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        let [top, body, footer] = Layout::vertical([Constraint::Length(3), Constraint::Min(0), Constraint::Length(1)]).areas(area);
        self.top.draw(frame, top, self.focus, self.log.in_flight());
        match self.focus {
            PanelId::Discovery => self.discovery.draw(frame, body),
            PanelId::Processes => self.processes.draw(frame, body),
            PanelId::Inventory => self.inventory.draw(frame, body),
            PanelId::Xen => self.xen.draw(frame, body),
            PanelId::Rpc => self.rpc.draw(frame, body),
            PanelId::Log => self.log.draw(frame, body),
            PanelId::Jobs => self.jobs.draw(frame, body),
        }
        let line = match &self.notice {
            Some(n) => notice_line(n, &self.theme, footer.width),
            None => footer_line(&self.keys, self.mode(), &self.theme, footer.width),
        };
        frame.render_widget(Paragraph::new(line), footer);
        self.inspector.draw(frame, body, &self.theme);
        self.help.draw(frame, area, &self.keys, &self.theme);
        self.cmdline.draw(frame, footer, &self.theme);
        if let Some(confirm) = &self.confirm {
            confirm::draw(frame, area, confirm, &self.keys, &self.theme);
        }
    }
}

/// The follow-ups of several components as one action.
fn batch<const N: usize>(follow: [Option<Action>; N]) -> Option<Action> {
    let follow: Vec<Action> = follow.into_iter().flatten().collect();
    (!follow.is_empty()).then_some(Action::Batch(follow))
}

#[cfg(test)]
mod inspect_tests;
#[cfg(test)]
mod tests;
