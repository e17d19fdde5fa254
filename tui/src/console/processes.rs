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

mod exec;
mod table;
mod view;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossterm::event::KeyEvent;

use super::action::{Action, Nav, NetCommand, Notice, PanelId, Scope, TextEdit};
use super::component::{Component, PanelContext};
use super::discovery::text_edit;
use super::input::TextInput;
use super::keys::{Binding, Key, Keymap, Mode};
use super::theme::Theme;
pub use fleet_client::process::{KillOutcome, KillReport, Proc, ProcKey, Signal};

pub use exec::execute;
pub use table::{Column, Prepared, SortKeys, TextWidths, Totals};

/// How often the table re-lists by default.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(2);
/// A list that has not come back after this long is taken as lost, so the next one can go out.
const LIST_LOST_AFTER: Duration = Duration::from_secs(60);
/// Rows a page key moves before the first draw has measured the table.
const DEFAULT_PAGE: usize = 20;

/// One process the admin is about to signal, with what the confirmation shows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillTarget {
    pub key: ProcKey,
    pub user: String,
    pub command: String,
    /// Set when this is the parent of a zombie that was picked: zombies cannot be signalled,
    /// only reaped by their parent.
    pub parent_of_zombie: Option<u32>,
}

/// What a kill would do: the exact targets, and the picked zombies that have no parent to signal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KillPlan {
    pub targets: Vec<KillTarget>,
    /// `host pid` of zombies whose parent is unknown (reparented to init and being reaped).
    pub orphan_zombies: Vec<String>,
}

impl KillPlan {
    /// Whether every target stands in for a zombie, so CHLD is the sensible first signal.
    pub fn only_zombie_parents(&self) -> bool {
        !self.targets.is_empty() && self.targets.iter().all(|t| t.parent_of_zombie.is_some())
    }
}

/// One list round's result: the rows and who answered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listing {
    pub procs: Vec<Proc>,
    /// Hosts the list was sent to (discovered).
    pub hosts_asked: usize,
    /// Hosts that replied, OK or not.
    pub hosts_answered: usize,
    /// Hosts that replied with an error: `(host, "status: message")`.
    pub failed: Vec<(String, String)>,
    pub no_reply: Vec<String>,
    /// What the table derives from the rows, made by [`execute`] off the UI thread for the sort
    /// the list was asked with; the panel computes it itself when this is `None` or the sort has
    /// changed meanwhile.
    pub prepared: Option<Prepared>,
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
    /// `k` / `F9`: the signal menu for the tagged rows, or the selected one when none is tagged.
    Kill,
    MenuUp,
    MenuDown,
    /// Enter in the signal menu: on to the confirmation.
    ChooseSignal,
    /// Enter in the confirmation: the kill goes out.
    Confirm,
    /// Esc in the menu or the confirmation (nothing is sent), or closing the results.
    Cancel,

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
/// or its pattern/user line, which take every key while open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanelMode {
    Browse,
    Edit,
    SignalMenu,
    Confirm,
    Results,
}

/// The browsing keys: `Mode::Processes` of the shell's keymap (rebindable by name in
/// `keys.toml` under `[processes]`; the footer and `?` show them). The shell's global keys
/// (`q`, `?`, `:`, `tab`, `1`-`6`, `esc`) stay free.
pub fn key_table() -> Vec<Binding> {
    vec![
        Binding::new("edit_pattern", &["/"], Msg::EditPattern, "pattern"),
        Binding::new("tag", &["space"], Msg::ToggleTag, "tag"),
        Binding::new("kill", &["k", "F9"], Msg::Kill, "kill"),
        Binding::new("zombies", &["z"], Msg::ToggleZombies, "zombies only"),
        Binding::new("user", &["u"], Msg::EditUser, "user"),
        Binding::new("sort", &["F6"], Msg::NextSortColumn, "sort"),
        Binding::new("invert_sort", &["I"], Msg::InvertSort, "invert"),
        Binding::new("untag_all", &["U"], Msg::UntagAll, "untag all"),
        Binding::new("sort_left", &["<"], Msg::SortLeft, "sort left"),
        Binding::new("sort_right", &[">"], Msg::SortRight, "sort right"),
        Binding::new("refresh", &["r"], Msg::Refresh, "refresh"),
        // `k` is kill here (htop), so up is only the arrow.
        Binding::new("down", &["j", "down"], Action::Nav(Nav::Down), "down"),
        Binding::new("up", &["up"], Action::Nav(Nav::Up), "up"),
        Binding::new("page_down", &["pgdn", "ctrl-d"], Action::Nav(Nav::PageDown), "page down"),
        Binding::new("page_up", &["pgup", "ctrl-u"], Action::Nav(Nav::PageUp), "page up"),
        Binding::new("top", &["g", "home"], Action::Nav(Nav::Top), "first"),
        Binding::new("bottom", &["G", "end"], Action::Nav(Nav::Bottom), "last"),
    ]
}

/// The fixed keys of the panel's own popups and its pattern/user line (not in the keymap:
/// their hints are drawn in the popups themselves).
pub fn popup_table(mode: PanelMode) -> Vec<Binding> {
    let quit = || Binding::new("quit", &["ctrl-c"], Action::Quit, "quit");
    match mode {
        PanelMode::Browse => Vec::new(),
        PanelMode::Edit => vec![
            Binding::new("apply", &["enter"], Msg::SubmitEdit, "apply"),
            Binding::new("cancel", &["esc"], Msg::CancelEdit, "cancel"),
            Binding::new("clear", &["ctrl-u"], Msg::Edit(TextEdit::Clear), "clear"),
            quit(),
        ],
        PanelMode::SignalMenu => vec![
            Binding::new("choose", &["enter"], Msg::ChooseSignal, "choose"),
            Binding::new("cancel", &["esc", "q"], Msg::Cancel, "cancel"),
            Binding::new("down", &["down", "j"], Msg::MenuDown, "down"),
            Binding::new("up", &["up", "k"], Msg::MenuUp, "up"),
            quit(),
        ],
        PanelMode::Confirm => {
            vec![
                Binding::new("send", &["enter"], Msg::Confirm, "send the signal"),
                Binding::new("cancel", &["esc", "q", "n"], Msg::Cancel, "cancel"),
                quit(),
            ]
        }
        PanelMode::Results => vec![Binding::new("close", &["esc", "enter", "q"], Msg::Cancel, "close"), quit()],
    }
}

/// A popup or the pattern/user line, on top of the table.
#[derive(Debug, Clone, PartialEq)]
enum Overlay {
    None,
    Editing {
        field: Field,
        input: TextInput,
        error: Option<String>,
    },
    SignalMenu {
        plan: KillPlan,
        selected: usize,
    },
    Confirm {
        plan: KillPlan,
        signal: Signal,
    },
    /// Sent; `reports` is `None` until the nodes answer.
    Results {
        plan: KillPlan,
        signal: Signal,
        reports: Option<Result<Vec<KillReport>, String>>,
    },
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
            Overlay::Results { .. } => PanelMode::Results,
        }
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

    /// The targets of the open signal menu, confirmation or results.
    pub fn kill_plan(&self) -> Option<&KillPlan> {
        match &self.overlay {
            Overlay::SignalMenu { plan, .. } | Overlay::Confirm { plan, .. } | Overlay::Results { plan, .. } => Some(plan),
            _ => None,
        }
    }

    /// The signal highlighted in the menu, or chosen for the confirmation and results.
    pub fn signal(&self) -> Option<Signal> {
        match &self.overlay {
            Overlay::SignalMenu { selected, .. } => Some(Signal::MENU[*selected]),
            Overlay::Confirm { signal, .. } | Overlay::Results { signal, .. } => Some(*signal),
            _ => None,
        }
    }

    /// The per-target outcomes of the last kill, once they are in.
    pub fn kill_reports(&self) -> Option<&[KillReport]> {
        match &self.overlay {
            Overlay::Results { reports: Some(Ok(r)), .. } => Some(r),
            _ => None,
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
            Msg::MenuUp => {
                if let Overlay::SignalMenu { selected, .. } = &mut self.overlay {
                    *selected = selected.saturating_sub(1);
                }
            }
            Msg::MenuDown => {
                if let Overlay::SignalMenu { selected, .. } = &mut self.overlay {
                    *selected = (*selected + 1).min(Signal::MENU.len() - 1);
                }
            }
            Msg::ChooseSignal => {
                if let Overlay::SignalMenu { plan, selected } = &self.overlay {
                    self.overlay = Overlay::Confirm { plan: plan.clone(), signal: Signal::MENU[*selected] };
                }
            }
            Msg::Confirm => return self.confirm(),
            Msg::Cancel => {
                let cancelled = matches!(self.overlay, Overlay::SignalMenu { .. } | Overlay::Confirm { .. });
                if !matches!(self.overlay, Overlay::Editing { .. }) {
                    self.overlay = Overlay::None;
                }
                if cancelled {
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

    fn open_editor(&mut self, field: Field) {
        let text = match field {
            Field::Pattern => &self.query.pattern,
            Field::User => &self.query.user,
        };
        self.overlay = Overlay::Editing { field, input: TextInput::new(text), error: None };
    }

    fn submit_edit(&mut self) -> Option<Action> {
        let Overlay::Editing { field, input, error } = &mut self.overlay else { return None };
        let text = input.text().trim().to_string();
        if let Err(e) = check_field(*field, &text) {
            *error = Some(e);
            return None;
        }
        let changed = match field {
            Field::Pattern => std::mem::replace(&mut self.query.pattern, text.clone()) != text,
            Field::User => std::mem::replace(&mut self.query.user, text.clone()) != text,
        };
        self.overlay = Overlay::None;
        // Enter on the query in force lists again, as a refresh.
        if changed { self.new_query() } else { self.list_now() }
    }

    /// The query changed: the rows on screen answer the old one, so they go (with their tags),
    /// and a list goes out at once, or as soon as the panel is shown.
    fn new_query(&mut self) -> Option<Action> {
        self.query_from = self.next_seq;
        self.listing = Arc::new(Listing::default());
        self.order.clear();
        self.sort_keys = table::SortKeys::default();
        self.totals = Totals::default();
        self.tagged.clear();
        self.selected = 0;
        self.listed_at = None;
        self.list_error = None;
        // A list still out answers the old query: it is not waited for (its answer is dropped).
        self.in_flight = None;
        if self.shown {
            self.list_now()
        } else {
            self.last_sent = None;
            None
        }
    }

    fn list_if_due(&mut self) -> Option<Action> {
        if !self.shown {
            return None;
        }
        let now = self.now.unwrap_or_else(SystemTime::now);
        if let Some((seq, since)) = self.in_flight {
            // A clock that went backwards counts as time passed, so the table never stalls.
            if now.duration_since(since).map_or(true, |d| d < LIST_LOST_AFTER) {
                return None;
            }
            tracing::warn!(seq, "a process list never came back; sending another");
        }
        let due = match self.last_sent {
            None => true,
            Some(last) => now.duration_since(last).map_or(true, |d| d >= self.refresh_every),
        };
        if due { self.list_now() } else { None }
    }

    fn list_now(&mut self) -> Option<Action> {
        let now = self.now.unwrap_or_else(SystemTime::now);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight = Some((seq, now));
        self.last_sent = Some(now);
        Some(net(Cmd::List {
            seq,
            pattern: self.query.pattern.clone(),
            zombies: self.query.zombies_only,
            user: self.query.user.clone(),
            scope: self.query.scope.clone(),
            sort: (self.sort, self.descending),
        }))
    }

    fn list_returned(&mut self, seq: u64) {
        if self.in_flight.is_some_and(|(s, _)| s == seq) {
            self.in_flight = None;
        }
    }

    fn on_listed(&mut self, seq: u64, listing: Arc<Listing>) {
        self.list_returned(seq);
        if seq < self.query_from {
            return;
        }
        let keep = self.selected().map(ProcKey::of);
        // Usually made by the network task already; made here when the sort changed meanwhile.
        let sort = (self.sort, self.descending);
        let prepared = match &listing.prepared {
            Some(p) if p.sort == sort => p.clone(),
            _ => Prepared::of(&listing, sort),
        };
        self.sort_keys = prepared.keys;
        self.totals = prepared.totals;
        self.widths = prepared.widths;
        self.order = prepared.order;
        if !self.tagged.is_empty() {
            let present: HashSet<(&str, u32, u64)> = listing.procs.iter().map(|p| (p.host.as_str(), p.pid, p.start_time)).collect();
            self.tagged.retain(|k| present.contains(&(k.host.as_str(), k.pid, k.start_time)));
        }
        self.listing = listing;
        self.listed_at = self.now;
        self.list_error = None;
        self.follow(keep);
    }

    fn set_sort(&mut self, column: Column, descending: bool) {
        if (column, descending) == (self.sort, self.descending) {
            return;
        }
        let keep = self.selected().map(ProcKey::of);
        self.sort = column;
        self.descending = descending;
        self.resort(keep);
    }

    /// Rebuilds the display order and puts the selection back on the same process.
    fn resort(&mut self, keep: Option<ProcKey>) {
        self.order = table::sorted_order(&self.listing.procs, &self.sort_keys, self.sort, self.descending);
        self.follow(keep);
    }

    /// Puts the selection on the process it was on, if it is still listed.
    fn follow(&mut self, keep: Option<ProcKey>) {
        if let Some(key) = keep
            && let Some(at) = self.order.iter().position(|&i| key.is(&self.listing.procs[i as usize]))
        {
            self.selected = at;
        }
        self.select(self.selected);
    }

    /// The targets of a kill: the tagged rows in display order, else the selected row. A zombie
    /// stands for its parent, since only the parent can reap it.
    pub fn plan_kill(&self) -> KillPlan {
        let picked: Vec<&Proc> = if self.tagged.is_empty() {
            self.selected().into_iter().collect()
        } else {
            self.rows().filter(|p| self.tagged.contains(&ProcKey::of(p))).collect()
        };
        let mut plan = KillPlan::default();
        let mut seen: HashSet<ProcKey> = HashSet::new();
        for p in picked {
            let target = if p.zombie {
                let (Some(ppid), Some(pstart)) = (p.parent_pid, p.parent_start_time) else {
                    plan.orphan_zombies.push(format!("{} {}", p.host, p.pid));
                    continue;
                };
                let key = ProcKey { host: p.host.clone(), pid: ppid, start_time: pstart };
                let listed = self.listing.procs.iter().find(|q| key.is(q));
                KillTarget {
                    user: listed.map(|q| q.user.clone()).unwrap_or_else(|| "?".into()),
                    command: p.parent_cmdline.clone().or_else(|| listed.map(|q| q.cmdline.clone())).unwrap_or_default(),
                    key,
                    parent_of_zombie: Some(p.pid),
                }
            } else {
                KillTarget { key: ProcKey::of(p), user: p.user.clone(), command: p.cmdline.clone(), parent_of_zombie: None }
            };
            if seen.insert(target.key.clone()) {
                plan.targets.push(target);
            }
        }
        plan
    }

    fn open_signal_menu(&mut self) -> Option<Action> {
        if self.read_only {
            return Some(Notice::error("read-only mode: kill is disabled"));
        }
        let plan = self.plan_kill();
        if plan.targets.is_empty() {
            return Some(Notice::error(if plan.orphan_zombies.is_empty() {
                "nothing to signal: no row selected".to_string()
            } else {
                format!("nothing to signal: zombie {} has no parent left to reap it", plan.orphan_zombies.join(", "))
            }));
        }
        let default = if plan.only_zombie_parents() { Signal::Chld } else { Signal::Term };
        let selected = Signal::MENU.iter().position(|s| *s == default).unwrap_or(0);
        self.overlay = Overlay::SignalMenu { plan, selected };
        None
    }

    fn confirm(&mut self) -> Option<Action> {
        let Overlay::Confirm { plan, signal } = &self.overlay else { return None };
        if self.read_only {
            self.overlay = Overlay::None;
            return Some(Notice::error("read-only mode: kill is disabled"));
        }
        let (plan, signal) = (plan.clone(), *signal);
        let targets = plan.targets.iter().map(|t| t.key.clone()).collect();
        self.overlay = Overlay::Results { plan, signal, reports: None };
        Some(net(Cmd::Kill { targets, signal }))
    }

    fn on_killed(&mut self, result: Result<Vec<KillReport>, String>) -> Option<Action> {
        if let Ok(reports) = &result {
            for r in reports.iter().filter(|r| r.outcome == KillOutcome::Signalled) {
                self.tagged.remove(&r.key);
            }
        }
        // The table is listed again to show what is left.
        let list = if self.shown { self.list_now() } else { None };
        if let Overlay::Results { reports, .. } = &mut self.overlay {
            *reports = Some(result);
            return list;
        }
        // The results popup was closed before they came: they go to the footer.
        let notice = match &result {
            Ok(r) => {
                let ok = r.iter().filter(|r| r.outcome == KillOutcome::Signalled).count();
                let text = format!("kill: {ok} signalled, {} not", r.len() - ok);
                if ok < r.len() { Notice::error(text) } else { Notice::info(text) }
            }
            Err(e) => Notice::error(format!("kill failed: {}", first_line(e))),
        };
        Some(Action::Batch([Some(notice), list].into_iter().flatten().collect()))
    }

    /// The key's action in the current mode. A popup or the pattern/user line takes every key,
    /// so the shell's global keys cannot act behind it; while browsing, keys the panel does not
    /// bind are left to the shell.
    pub fn on_key(&self, key: KeyEvent) -> Option<Action> {
        let mode = self.mode();
        if mode == PanelMode::Browse {
            return self.keys.action(Mode::Processes, &key);
        }
        let k = Key::of(&key);
        if let Some(b) = popup_table(mode).into_iter().find(|b| b.keys.contains(&k)) {
            return Some(b.action);
        }
        let edit = if mode == PanelMode::Edit { text_edit(&key) } else { None };
        // An empty batch: the key is used up and does nothing.
        Some(edit.map_or(Action::Batch(Vec::new()), |e| Msg::Edit(e).into()))
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

/// Checks a pattern (a regex, as the node compiles it) or a user name (what the agent's DDL
/// accepts), so a mistake shows while typing instead of as a failed list.
fn check_field(field: Field, text: &str) -> Result<(), String> {
    match field {
        Field::Pattern => regex::RegexBuilder::new(text.trim()).size_limit(1 << 20).build().map(|_| ()).map_err(|e| {
            let why = e.to_string();
            let why = why.lines().last().unwrap_or_default().trim();
            format!("not a valid regex: {}", why.strip_prefix("error: ").unwrap_or(why))
        }),
        Field::User => {
            let text = text.trim();
            if text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) && text.len() <= 64 {
                Ok(())
            } else {
                Err("a user name has only letters, digits, '_', '.' and '-' (at most 64)".to_string())
            }
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}
