//! The Processes panel: a live, sortable pgrep table of the fleet that re-lists every few seconds
//! without blocking input, with tagging, a signal menu and a confirmation that lists the exact
//! `(host, pid, start_time)` targets before anything is sent. There is no kill by pattern here.
//!
//! It follows the shell's panel contract (`console/mod.rs`): keys become `Action::Processes(Msg)`
//! ([`key_table`] for the browsing keys, which `keys.toml` may rebind under `[processes]`; the
//! panel's own popups and its pattern/user line have fixed keys); [`ProcessesPanel::apply`] changes
//! state and may ask for network work as `NetCommand::Processes(Cmd)`, which the network task runs
//! with [`execute`] on a link of its own, sending the results back as `Action::Processes(Msg)`.
//! Drawing reads state only and builds only the rows on screen; sorting happens when the data or
//! the sort key changes, never in `draw`, so 50,000 rows draw as fast as 50.
//!
//! Like htop it has a tree view per host (`t`/`F5`), quick sorts (`P` CPU, `M` memory, `T`
//! start time) and a sort menu (`s`), a column chooser (`c`), horizontal scrolling of long
//! command lines (`h`/`l`), a detail pane (`enter`, the process agent's `detail` fetched on
//! demand and shown in the inspector) and `y` to copy `host:pid@start`.
//!
//! This file holds the panel's state and messages; `query` the query in force and the list
//! rounds, `kill` the signal menu and the kill, `menu` the sort menu and column chooser,
//! `detail` the detail pane, `keys` the key tables, `table` the sort keys and totals, `view` the
//! drawing, `exec` the network work.

mod detail;
mod exec;
mod keys;
mod kill;
mod menu;
mod query;
mod table;
mod view;

#[cfg(test)]
mod htop_tests;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossterm::event::KeyEvent;

use super::action::{Action, Nav, NetCommand, Notice, PanelId, Scope, TextEdit};
use super::component::{Component, PanelContext};
use super::keys::Keymap;
use super::theme::Theme;
use super::widgets::input::TextInput;
use super::widgets::text::first_line;
pub use fleet_client::process::{KillOutcome, KillReport, Proc, ProcKey, Signal};

pub use detail::key_text;
pub use exec::execute;
pub use keys::{column_chooser_key_table, key_table, kill_confirm_key_table, line_key_table, signal_menu_key_table, sort_menu_key_table};
pub use kill::{KillPlan, KillStatus, KillTarget};
pub use table::{Column, Prepared, SortKeys, TextWidths, Totals};

use query::check_field;

/// How often the table re-lists by default.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(2);
/// A list that has not come back after this long is taken as lost, so the next one can go out.
const LIST_LOST_AFTER: Duration = Duration::from_secs(60);
/// Rows a page key moves before the first draw has measured the table.
const DEFAULT_PAGE: usize = 20;

/// One list round's result as the client core gives it (the rows and who answered), and what the
/// table derives from it. Reads through to the core's listing (`listing.procs`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listing {
    pub found: fleet_client::process::Listing,
    /// What the table derives from the rows, made by [`execute`] off the UI thread for the sort
    /// the list was asked with; the panel computes it itself when this is `None` or the sort has
    /// changed meanwhile.
    pub prepared: Option<Prepared>,
}

impl std::ops::Deref for Listing {
    type Target = fleet_client::process::Listing;
    fn deref(&self) -> &Self::Target {
        &self.found
    }
}

/// What the panel asks of the network task (as `NetCommand::Processes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// Run `process list` on `scope`. `seq` comes back with the result, so the answer to an older
    /// query is never shown for a newer one; `sort` is the table's, so the rows come back sorted.
    List { seq: u64, pattern: String, zombies: bool, user: String, scope: Scope, sort: (Column, bool) },
    /// Signal exactly these processes: one `process kill` per host, each target a
    /// `pid@start_time` pair the node re-checks through a pidfd before signalling.
    Kill { targets: Vec<ProcKey>, signal: Signal },
    /// `process detail` of exactly this process, for the detail pane.
    Detail { key: ProcKey },
}

/// Every state change of the panel (as `Action::Processes`). Keys, the clock and the network's
/// results all arrive as these; the shell's broadcasts are turned into them by `update`.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    // --- from the shell's broadcasts ---
    /// The clock: a list goes out when one is due.
    Tick(SystemTime),
    /// The panel came on screen (true) or left it. It only re-lists while on screen, so a
    /// console showing another panel puts no load on the fleet.
    Shown(bool),
    /// The nodes to list.
    Scope(Scope),

    // --- keys ---
    Refresh,
    Nav(Nav),
    /// Open the pattern line (`/`).
    EditPattern,
    /// Open the user line (`u`).
    EditUser,
    Edit(TextEdit),
    /// Enter in the pattern or user line.
    SubmitEdit,
    /// Esc in the pattern or user line: the query in force stays.
    CancelEdit,
    ToggleZombies,
    /// `F6`: the next column, wrapping.
    NextSortColumn,
    /// `<`
    SortLeft,
    /// `>`
    SortRight,
    /// `I`
    InvertSort,
    /// `space`: tag or untag the selected row, then move down.
    ToggleTag,
    /// `U`
    UntagAll,
    /// `K` / `x` / `F9`: the signal menu for the tagged rows, or the selected one when none is
    /// tagged.
    Kill,
    MenuUp,
    MenuDown,
    /// Enter in the signal menu: on to the confirmation.
    ChooseSignal,
    /// Enter in the confirmation: the kill goes out.
    Confirm,
    /// Esc in the menu or the confirmation: nothing is sent.
    Cancel,
    /// `enter`: the detail pane of the selected process.
    Detail,
    /// `t` / `F5`: the tree view on or off.
    ToggleTree,
    /// `P`, `M`, `T`: sort by CPU, memory or start time (again: reversed).
    QuickSort(Column),
    /// `s`: the sort menu.
    SortMenu,
    /// Enter in the sort menu.
    ChooseSort,
    /// `c`: the column chooser.
    Columns,
    /// Space in the column chooser.
    ToggleColumn,
    /// Esc or enter in the sort menu or the column chooser.
    CloseMenu,
    /// `h` / `l`: the command column scrolls by this many characters.
    ScrollCommand(i32),
    /// `y`: `host:pid@start` of the selected process to the clipboard.
    CopyKey,

    // --- from the network task ---
    Listed {
        seq: u64,
        listing: Arc<Listing>,
    },
    ListFailed {
        seq: u64,
        error: String,
    },
    /// One report per target of the kill that was sent.
    Killed(Vec<KillReport>),
    /// The kill could not be sent at all (no hub link, ...).
    KillFailed(String),
    /// The process agent's detail of one process, or why there is none.
    Detailed {
        key: ProcKey,
        result: Result<serde_json::Value, String>,
    },
}

impl From<Msg> for Action {
    fn from(msg: Msg) -> Action {
        Action::Processes(msg)
    }
}

fn net(cmd: Cmd) -> Action {
    NetCommand::Processes(cmd).into()
}

/// Which line is being edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Pattern,
    User,
}

/// What has the keys: the table (the shell's `Mode::Processes`), or one of the panel's popups
/// or its pattern/user line, which take every key while open ([`PanelMode::keys_mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanelMode {
    Browse,
    Edit,
    SignalMenu,
    Confirm,
    SortMenu,
    Columns,
}

/// A popup or the pattern/user line, on top of the table.
#[derive(Debug, Clone, PartialEq)]
enum Overlay {
    None,
    Editing { field: Field, input: TextInput, error: Option<String> },
    SignalMenu { plan: KillPlan, selected: usize },
    Confirm { plan: KillPlan, signal: Signal },
    SortMenu { selected: usize },
    Columns { selected: usize },
}

/// The query in force.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// A regex on the command line; blank is every process.
    pub pattern: String,
    pub zombies_only: bool,
    /// A user name; blank is every user.
    pub user: String,
    /// The nodes: the shell's scope (the discovery filter, or the nodes tagged there).
    pub scope: Scope,
}

pub struct ProcessesPanel {
    theme: Theme,
    keys: Arc<Keymap>,
    read_only: bool,
    refresh_every: Duration,
    shown: bool,
    /// The last clock reading (the shell's tick); `None` before the first.
    now: Option<SystemTime>,
    query: Query,
    // --- list rounds ---
    /// The seq the next list gets.
    next_seq: u64,
    /// Lists from before this seq answered an older query.
    query_from: u64,
    /// The list that is out, and when it went.
    in_flight: Option<(u64, SystemTime)>,
    last_sent: Option<SystemTime>,
    /// When the rows on screen were listed.
    listed_at: Option<SystemTime>,
    /// Why the last list failed, until one succeeds.
    list_error: Option<String>,
    // --- the table ---
    listing: Arc<Listing>,
    /// Indices into `listing.procs` in display order; rebuilt when the data or the sort changes.
    order: Vec<u32>,
    sort_keys: table::SortKeys,
    totals: Totals,
    widths: table::TextWidths,
    sort: Column,
    descending: bool,
    /// Index into `order`.
    selected: usize,
    tagged: HashSet<ProcKey>,
    overlay: Overlay,
    /// The last kill and its outcome, shown on the panel's status line until the next one.
    kill_status: Option<KillStatus>,
    /// The tree view: `order` is then a forest per host, and each row's branch prefix is here.
    tree: bool,
    tree_prefix: HashMap<u32, String>,
    /// Columns the chooser hid.
    hidden: HashSet<Column>,
    /// Characters of the command column scrolled off to the left.
    command_offset: usize,
    // --- view caches: only drawing knows the table's height ---
    scroll_top: std::cell::Cell<usize>,
    page: std::cell::Cell<usize>,
}

impl ProcessesPanel {
    /// A panel that re-lists every 2 s while on screen ([`with_refresh_every`](Self::with_refresh_every)
    /// changes that); `ctx.read_only` disables kill.
    pub fn new(ctx: &PanelContext) -> ProcessesPanel {
        ProcessesPanel {
            theme: ctx.theme.clone(),
            keys: ctx.keys.clone(),
            read_only: ctx.read_only,
            refresh_every: DEFAULT_REFRESH,
            shown: false,
            now: None,
            query: Query { scope: ctx.scope.clone(), ..Query::default() },
            next_seq: 1,
            query_from: 1,
            in_flight: None,
            last_sent: None,
            listed_at: None,
            list_error: None,
            listing: Arc::new(Listing::default()),
            order: Vec::new(),
            sort_keys: table::SortKeys::default(),
            totals: Totals::default(),
            widths: table::TextWidths::default(),
            sort: Column::Host,
            descending: false,
            selected: 0,
            tagged: HashSet::new(),
            overlay: Overlay::None,
            kill_status: None,
            tree: false,
            tree_prefix: HashMap::new(),
            hidden: HashSet::new(),
            command_offset: 0,
            scroll_top: std::cell::Cell::new(0),
            page: std::cell::Cell::new(DEFAULT_PAGE),
        }
    }

    /// Re-list every `every` (at least 100 ms) instead of every 2 s.
    pub fn with_refresh_every(mut self, every: Duration) -> ProcessesPanel {
        self.refresh_every = every.max(Duration::from_millis(100));
        self
    }

    // --- what the shell and the tests read ---

    pub fn mode(&self) -> PanelMode {
        match self.overlay {
            Overlay::None => PanelMode::Browse,
            Overlay::Editing { .. } => PanelMode::Edit,
            Overlay::SignalMenu { .. } => PanelMode::SignalMenu,
            Overlay::Confirm { .. } => PanelMode::Confirm,
            Overlay::SortMenu { .. } => PanelMode::SortMenu,
            Overlay::Columns { .. } => PanelMode::Columns,
        }
    }

    /// Whether the tree view is on.
    pub fn tree(&self) -> bool {
        self.tree
    }

    /// The branch prefix (`│  ├─ `) of the listing's row `index` in the tree view; empty outside it.
    pub fn prefix_of(&self, index: u32) -> &str {
        self.tree_prefix.get(&index).map_or("", String::as_str)
    }

    /// The columns the chooser hid.
    pub fn hidden(&self) -> &HashSet<Column> {
        &self.hidden
    }

    pub fn command_offset(&self) -> usize {
        self.command_offset
    }

    /// True while a popup or the pattern/user line is open: it takes every key.
    pub fn captures_input(&self) -> bool {
        self.overlay != Overlay::None
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    pub fn refresh_every(&self) -> Duration {
        self.refresh_every
    }

    pub fn query(&self) -> &Query {
        &self.query
    }

    pub fn sort(&self) -> (Column, bool) {
        (self.sort, self.descending)
    }

    pub fn listing(&self) -> &Listing {
        &self.listing
    }

    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// The rows in display order (an iterator: no copy of 50,000 rows).
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &Proc> + '_ {
        self.order.iter().map(|&i| &self.listing.procs[i as usize])
    }

    pub fn row(&self, index: usize) -> Option<&Proc> {
        self.order.get(index).map(|&i| &self.listing.procs[i as usize])
    }

    pub fn selected(&self) -> Option<&Proc> {
        self.row(self.selected)
    }

    pub fn selected_index(&self) -> usize {
        self.selected
    }

    pub fn tagged(&self) -> &HashSet<ProcKey> {
        &self.tagged
    }

    pub fn is_tagged(&self, p: &Proc) -> bool {
        !self.tagged.is_empty() && self.tagged.contains(&ProcKey::of(p))
    }

    /// Why the last list failed, until one succeeds.
    pub fn list_error(&self) -> Option<&str> {
        self.list_error.as_deref()
    }

    /// Whether a list is out.
    pub fn refreshing(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The targets of the open signal menu or confirmation, else of the last kill.
    pub fn kill_plan(&self) -> Option<&KillPlan> {
        match &self.overlay {
            Overlay::SignalMenu { plan, .. } | Overlay::Confirm { plan, .. } => Some(plan),
            _ => self.kill_status.as_ref().map(|k| &k.plan),
        }
    }

    /// The signal highlighted in the menu, or chosen for the confirmation, else of the last kill.
    pub fn signal(&self) -> Option<Signal> {
        match &self.overlay {
            Overlay::SignalMenu { selected, .. } => Some(Signal::MENU[*selected]),
            Overlay::Confirm { signal, .. } => Some(*signal),
            _ => self.kill_status.as_ref().map(|k| k.signal),
        }
    }

    /// The last kill: what was sent and, once in, its outcome.
    pub fn kill_status(&self) -> Option<&KillStatus> {
        self.kill_status.as_ref()
    }

    /// The per-target outcomes of the last kill, once they are in.
    pub fn kill_reports(&self) -> Option<&[KillReport]> {
        match self.kill_status.as_ref()?.outcome.as_ref()? {
            Ok(r) => Some(r),
            Err(_) => None,
        }
    }

    /// The line being edited, its text and its error, while the editor is open.
    pub fn editing(&self) -> Option<(Field, &str, Option<&str>)> {
        match &self.overlay {
            Overlay::Editing { field, input, error } => Some((*field, input.text(), error.as_deref())),
            _ => None,
        }
    }

    // --- state changes ---

    /// Applies one message; returns what follows (network work, a notice in the footer).
    pub fn apply(&mut self, msg: Msg) -> Option<Action> {
        match msg {
            Msg::Tick(now) => {
                self.now = Some(now);
                return self.list_if_due();
            }
            Msg::Shown(shown) => {
                self.shown = shown;
                return self.list_if_due();
            }
            Msg::Scope(scope) => {
                if scope != self.query.scope {
                    self.query.scope = scope;
                    return self.new_query();
                }
            }
            Msg::Refresh => return self.list_now(),
            Msg::Nav(nav) => self.navigate(nav),
            Msg::EditPattern => self.open_editor(Field::Pattern),
            Msg::EditUser => self.open_editor(Field::User),
            Msg::Edit(edit) => {
                if let Overlay::Editing { field, input, error } = &mut self.overlay
                    && input.apply(edit)
                {
                    *error = check_field(*field, input.text()).err();
                }
            }
            Msg::SubmitEdit => return self.submit_edit(),
            Msg::CancelEdit => {
                if matches!(self.overlay, Overlay::Editing { .. }) {
                    self.overlay = Overlay::None;
                }
            }
            Msg::ToggleZombies => {
                self.query.zombies_only = !self.query.zombies_only;
                return self.new_query();
            }
            Msg::NextSortColumn => self.set_sort(self.sort.next(), self.descending),
            Msg::SortLeft => self.set_sort(self.sort.prev_bounded(), self.descending),
            Msg::SortRight => self.set_sort(self.sort.next_bounded(), self.descending),
            Msg::InvertSort => self.set_sort(self.sort, !self.descending),
            Msg::ToggleTag => {
                if let Some(p) = self.selected() {
                    let key = ProcKey::of(p);
                    if !self.tagged.remove(&key) {
                        self.tagged.insert(key);
                    }
                    self.select(self.selected + 1);
                }
            }
            Msg::UntagAll => self.tagged.clear(),
            Msg::Kill => return self.open_signal_menu(),
            Msg::MenuUp => self.menu_step(false),
            Msg::MenuDown => self.menu_step(true),
            Msg::ChooseSignal => {
                if let Overlay::SignalMenu { plan, selected } = &self.overlay {
                    self.overlay = Overlay::Confirm { plan: plan.clone(), signal: Signal::MENU[*selected] };
                }
            }
            Msg::Confirm => return self.confirm(),
            Msg::Cancel => {
                if matches!(self.overlay, Overlay::SignalMenu { .. } | Overlay::Confirm { .. }) {
                    self.overlay = Overlay::None;
                    return Some(Notice::info("cancelled: nothing was sent"));
                }
            }
            Msg::Listed { seq, listing } => self.on_listed(seq, listing),
            Msg::ListFailed { seq, error } => {
                self.list_returned(seq);
                if seq >= self.query_from {
                    self.list_error = Some(first_line(&error).to_string());
                }
            }
            Msg::Killed(reports) => return self.on_killed(Ok(reports)),
            Msg::KillFailed(error) => return self.on_killed(Err(error)),
            Msg::Detail => return self.open_detail(),
            Msg::Detailed { key, result } => return self.on_detail(key, result),
            Msg::ToggleTree => {
                self.tree = !self.tree;
                let keep = self.selected().map(ProcKey::of);
                self.resort(keep);
                return Some(Notice::info(if self.tree { "tree view: each process under its parent, per host" } else { "flat view" }));
            }
            Msg::QuickSort(column) => return self.quick_sort(column),
            Msg::SortMenu => self.open_sort_menu(),
            Msg::ChooseSort => self.choose_sort(),
            Msg::Columns => self.open_columns(),
            Msg::ToggleColumn => self.toggle_column(),
            Msg::CloseMenu => {
                if matches!(self.overlay, Overlay::SortMenu { .. } | Overlay::Columns { .. }) {
                    self.overlay = Overlay::None;
                }
            }
            Msg::ScrollCommand(by) => {
                self.command_offset = self.command_offset.saturating_add_signed(by as isize);
                let longest = self.rows().map(|p| p.cmdline.chars().count()).max().unwrap_or(0);
                self.command_offset = self.command_offset.min(longest.saturating_sub(1));
            }
            Msg::CopyKey => {
                let key = ProcKey::of(self.selected()?);
                let text = key_text(&key);
                return Some(Action::Batch(vec![Action::Clipboard(text.clone()), Notice::info(format!("copied {text}"))]));
            }
        }
        None
    }

    fn select(&mut self, index: usize) {
        self.selected = index.min(self.order.len().saturating_sub(1));
    }

    fn navigate(&mut self, nav: Nav) {
        let page = self.page.get();
        match nav {
            Nav::Down => self.select(self.selected + 1),
            Nav::Up => self.select(self.selected.saturating_sub(1)),
            // A page key moves the view with the selection, as in htop.
            Nav::PageDown => {
                self.scroll_top.set(self.scroll_top.get() + page);
                self.select(self.selected + page);
            }
            Nav::PageUp => {
                self.scroll_top.set(self.scroll_top.get().saturating_sub(page));
                self.select(self.selected.saturating_sub(page));
            }
            Nav::Top => self.select(0),
            Nav::Bottom => self.select(usize::MAX),
        }
    }
}

impl Component for ProcessesPanel {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        self.on_key(key)
    }

    fn update(&mut self, action: Action) -> Option<Action> {
        let msg = match action {
            Action::Processes(msg) => msg,
            Action::Nav(nav) => Msg::Nav(nav),
            Action::Tick(now) => Msg::Tick(now),
            Action::FocusChanged(panel) => Msg::Shown(panel == PanelId::Processes),
            Action::ScopeChanged(scope) => Msg::Scope(scope),
            Action::ThemeChanged(theme) => {
                self.theme = *theme;
                return None;
            }
            _ => return None,
        };
        self.apply(msg)
    }

    fn draw(&self, frame: &mut ratatui::Frame, area: ratatui::layout::Rect) {
        self.render(frame, area);
    }
}
