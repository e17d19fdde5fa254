//! The Discovery panel: a filter line (compound syntax, checked as the user types, errors pointing
//! at the column), a progress bar `[=====>    ] 12 / 20` for the running round, and a live grid
//! of every expected node (pending, ok with ms, failed with status and message, no reply, and
//! replies from nodes that were not discovered). The grid sorts and searches; tagged nodes (space,
//! or `F` for every failed one) become the exact targets of the next RPC with `a`; `enter` opens
//! a node's reply in the inspector. `:columns country,role` adds fact columns (rpcutil
//! get_facts after every round), kept for the session.
//!
//! This file holds the panel's state and how actions change it; `round` follows a round's
//! progress into the grid, `keys` has the key tables and `draw` the drawing.

mod draw;
mod keys;
mod round;

#[cfg(test)]
mod tests;

use std::cell::{Cell, Ref, RefCell};
use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crossterm::event::KeyEvent;
use fleet_protocol::filter::FilterError;
use fleet_protocol::{Filter, Status};
use ratatui::Frame;
use ratatui::layout::Rect;

use super::action::{Action, LinkState, Nav, NetCommand, Notice, PanelId, ReplyRow, RequestEvent, Scope, TextEdit};
use super::component::{Component, PanelContext};
use super::keys::{Keymap, Mode};
use super::theme::Theme;
use super::widgets::input::TextInput;
use super::widgets::search::Search;

pub use draw::bar_cells;
pub use keys::{filter_key_table, key_table};
pub use round::{Phase, Round};

/// The Discovery panel's own actions.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// Start editing the filter line.
    EditFilter,
    /// Leave the filter line and put back the filter that is in force.
    CancelEdit,
    /// One edit of the filter text.
    EditText(TextEdit),
    /// Enter in the filter line: run a round with the filter being edited.
    Submit,
    /// Run the filter in force again.
    Rerun,
    /// Run a round with this filter (`:filter`, `:ping`); the caller checked it parses.
    Run(String),
    /// `a` on the grid: aim the next request at the tagged nodes (or the filter) and go to RPC.
    Enter,
    /// `enter` on the grid: the node's reply in the inspector.
    Inspect,
    /// `:columns country,role`: these facts as columns, for the rest of the session (empty: none).
    Columns(Vec<String>),
    /// The chosen facts of the nodes that answered rpcutil get_facts.
    Facts(Result<HashMap<String, serde_json::Map<String, Value>>, String>),
    ToggleTag,
    TagFailed,
    TagNoReply,
    TagAll,
    UntagAll,
    CycleSort,
    ReverseSort,
}

/// The filter a compound text stands for; blank is every node.
pub fn filter_of(text: &str) -> Filter {
    if text.trim().is_empty() { Filter::default() } else { Filter { compound: vec![text.to_string()], ..Filter::default() } }
}

/// Parses the filter text as the hub and nodes will; the error points at a 1-based column of `text`.
pub fn check_filter(text: &str) -> Result<Filter, FilterError> {
    let filter = filter_of(text);
    filter.compile().map(|_| filter)
}

/// How a filter is shown: the text, or `(all nodes)`.
pub fn describe_filter(text: &str) -> String {
    if text.trim().is_empty() { "(all nodes)".to_string() } else { text.trim().to_string() }
}

/// A node's state in the current round.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeStatus {
    /// Discovered, the request is out, no reply yet.
    Pending,
    Ok {
        ms: f64,
    },
    Failed {
        status: Status,
        message: String,
        ms: f64,
    },
    /// Discovered but silent until the round's timeout.
    NoReply,
    /// Known to the hub but down since then (ms since the epoch; 0: no hub has a link to it).
    Down {
        since_ms: u64,
    },
    /// Matched the filter after the round ran; not pinged yet.
    Joined,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub identity: String,
    pub status: NodeStatus,
    /// False for a node that replied without being discovered, or that joined after the round.
    pub expected: bool,
    /// Left the fleet after the round; its result in the round stays as it was.
    pub left: bool,
}

impl NodeRow {
    /// A reply from a node that was not discovered.
    pub fn unexpected(&self) -> bool {
        !self.expected && matches!(self.status, NodeStatus::Ok { .. } | NodeStatus::Failed { .. })
    }

    /// The word the STATUS column shows.
    pub fn status_word(&self) -> &'static str {
        if self.left {
            return "left";
        }
        if self.unexpected() {
            return "unexpected";
        }
        match self.status {
            NodeStatus::Pending => "pending",
            NodeStatus::Ok { .. } => "ok",
            NodeStatus::Failed { .. } => "failed",
            NodeStatus::NoReply => "no reply",
            NodeStatus::Down { .. } => "down",
            NodeStatus::Joined => "joined",
        }
    }

    fn ms(&self) -> Option<f64> {
        match self.status {
            NodeStatus::Ok { ms } | NodeStatus::Failed { ms, .. } => Some(ms),
            _ => None,
        }
    }

    /// Sort rank by status: what needs attention first.
    fn rank(&self) -> u8 {
        match (&self.status, self.unexpected()) {
            (NodeStatus::Failed { .. }, false) => 0,
            (NodeStatus::NoReply | NodeStatus::Down { .. }, _) => 1,
            (_, true) => 2,
            (NodeStatus::Pending, _) => 3,
            (NodeStatus::Joined, _) => 4,
            (NodeStatus::Ok { .. }, _) => 5,
        }
    }
}

/// Counts over the node list, for the progress line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Replies from discovered nodes, ok or not.
    pub replied: usize,
    pub ok: usize,
    pub failed: usize,
    pub no_reply: usize,
    pub down: usize,
    /// Replies from nodes that were not discovered.
    pub unexpected: usize,
}

/// What the grid is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Status,
    Time,
}

impl SortKey {
    fn next(self) -> SortKey {
        match self {
            SortKey::Name => SortKey::Status,
            SortKey::Status => SortKey::Time,
            SortKey::Time => SortKey::Name,
        }
    }
    fn label(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Status => "status",
            SortKey::Time => "time",
        }
    }
}

pub struct Discovery {
    theme: Theme,
    keys: std::sync::Arc<Keymap>,
    input: TextInput,
    editing: bool,
    filter_error: Option<FilterError>,
    /// The filter of the last round asked for.
    active_filter: String,
    last_round_id: u64,
    round: Option<Round>,
    rows: Vec<NodeRow>,
    /// identity -> index in `rows`.
    index: HashMap<String, usize>,
    tagged: BTreeSet<String>,
    /// Whether the shell's scope is narrowed to tagged nodes (`enter`); `U` clears it.
    aimed: bool,
    sort: SortKey,
    descending: bool,
    search: Search,
    /// The node under the cursor; `None` is the first row shown.
    cursor: Option<String>,
    link_up: bool,
    /// Rows in display order (sorted, searched): rebuilt lazily, since a burst of replies would
    /// otherwise re-sort the grid once per reply.
    view: RefCell<Vec<usize>>,
    view_stale: Cell<bool>,
    /// The latest ping reply of each node, for the inspector.
    replies: HashMap<String, ReplyRow>,
    /// Fact columns (`:columns`), kept for the session, and each node's values of them.
    columns: Vec<String>,
    facts: HashMap<String, serde_json::Map<String, Value>>,
    /// Why the facts could not be read, until they can.
    facts_error: Option<String>,
    /// First row on screen and the grid's height. Only the drawing knows the height, so it keeps
    /// these up to date (as gitui's `VerticalScroll` does); they are a view cache, not state.
    scroll_top: Cell<usize>,
    page: Cell<usize>,
}

impl Discovery {
    pub fn new(ctx: &PanelContext) -> Discovery {
        Discovery {
            theme: ctx.theme.clone(),
            keys: ctx.keys.clone(),
            input: TextInput::new(&ctx.scope.filter),
            editing: false,
            filter_error: None,
            active_filter: ctx.scope.filter.clone(),
            last_round_id: 0,
            round: None,
            rows: Vec::new(),
            index: HashMap::new(),
            tagged: BTreeSet::new(),
            aimed: false,
            sort: SortKey::Name,
            descending: false,
            search: Search::default(),
            cursor: None,
            link_up: false,
            view: RefCell::new(Vec::new()),
            view_stale: Cell::new(true),
            replies: HashMap::new(),
            columns: Vec::new(),
            facts: HashMap::new(),
            facts_error: None,
            scroll_top: Cell::new(0),
            page: Cell::new(10),
        }
    }

    pub fn mode(&self) -> Mode {
        if self.editing {
            Mode::DiscoveryFilter
        } else if self.search.editing() {
            Mode::Search
        } else {
            Mode::Discovery
        }
    }

    pub fn editing(&self) -> bool {
        self.editing
    }

    /// The text in the filter line (what is being typed, or the filter in force).
    pub fn filter_text(&self) -> &str {
        self.input.text()
    }

    pub fn active_filter(&self) -> &str {
        &self.active_filter
    }

    pub fn filter_error(&self) -> Option<&FilterError> {
        self.filter_error.as_ref()
    }

    pub fn round(&self) -> Option<&Round> {
        self.round.as_ref()
    }

    pub fn rows(&self) -> &[NodeRow] {
        &self.rows
    }

    pub fn row(&self, identity: &str) -> Option<&NodeRow> {
        self.index.get(identity).map(|&i| &self.rows[i])
    }

    /// The discovered nodes of the current round (for a confirmation's target list).
    pub fn discovered(&self) -> Vec<String> {
        self.rows.iter().filter(|r| r.expected).map(|r| r.identity.clone()).collect()
    }

    pub fn tagged(&self) -> &BTreeSet<String> {
        &self.tagged
    }

    pub fn sort(&self) -> (SortKey, bool) {
        (self.sort, self.descending)
    }

    /// The rows as shown: sorted and searched.
    pub fn shown(&self) -> Vec<&NodeRow> {
        self.view().iter().map(|&i| &self.rows[i]).collect()
    }

    /// The row under the cursor.
    pub fn selected(&self) -> Option<&NodeRow> {
        let pos = self.cursor_pos();
        self.view().get(pos).map(|&i| &self.rows[i])
    }

    /// The fact columns in force (`:columns`).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// A node's value of a fact column, as text; empty when unknown.
    pub fn fact(&self, node: &str, fact: &str) -> String {
        self.facts.get(node).and_then(|f| f.get(fact)).map(fleet_client::format::compact).unwrap_or_default()
    }

    /// rpcutil get_facts of the fact columns on the nodes of the filter in force.
    fn fetch_facts(&self) -> Option<Action> {
        if self.columns.is_empty() {
            return None;
        }
        Some(NetCommand::Facts { scope: Scope::filter(&self.active_filter), facts: self.columns.clone() }.into())
    }

    /// `enter`: the selected node's reply (status, message, data) in the inspector, with its
    /// fact columns.
    fn inspect(&self) -> Option<Action> {
        let row = self.selected()?;
        let mut pane = match self.replies.get(&row.identity) {
            Some(r) => super::inspector::reply("rpcutil", "ping", r),
            None => super::inspector::silent("rpcutil", "ping", &row.identity, row.status_word()),
        };
        if let Some(facts) = self.facts.get(&row.identity) {
            pane.lines.push(super::inspector::InspectLine::field(0, "Facts", ""));
            for (k, v) in facts {
                super::inspector::pretty::value_lines(&mut pane.lines, 1, k, v, super::inspector::pretty::Unit::Plain);
            }
        }
        Some(Action::Inspect(Box::new(pane)))
    }

    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for r in &self.rows {
            match (&r.status, r.expected) {
                (NodeStatus::Ok { .. } | NodeStatus::Failed { .. }, false) => t.unexpected += 1,
                (NodeStatus::Ok { .. }, true) => {
                    t.replied += 1;
                    t.ok += 1;
                }
                (NodeStatus::Failed { .. }, true) => {
                    t.replied += 1;
                    t.failed += 1;
                }
                (NodeStatus::NoReply, _) => t.no_reply += 1,
                (NodeStatus::Down { .. }, _) => t.down += 1,
                _ => {}
            }
        }
        t
    }

    fn view(&self) -> Ref<'_, Vec<usize>> {
        if self.view_stale.replace(false) {
            let mut view: Vec<usize> = (0..self.rows.len())
                .filter(|&i| {
                    let r = &self.rows[i];
                    self.search.matches([r.identity.as_str(), r.status_word()])
                })
                .collect();
            let rows = &self.rows;
            let by_name = |a: &usize, b: &usize| rows[*a].identity.cmp(&rows[*b].identity);
            match self.sort {
                SortKey::Name => view.sort_by(by_name),
                SortKey::Status => view.sort_by(|a, b| rows[*a].rank().cmp(&rows[*b].rank()).then_with(|| by_name(a, b))),
                SortKey::Time => view.sort_by(|a, b| {
                    let (x, y) = (rows[*a].ms(), rows[*b].ms());
                    // Nodes without a time go last either way.
                    match (x, y) {
                        (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| by_name(a, b)),
                        (Some(_), None) => std::cmp::Ordering::Less,
                        (None, Some(_)) => std::cmp::Ordering::Greater,
                        (None, None) => by_name(a, b),
                    }
                }),
            }
            if self.descending {
                view.reverse();
            }
            *self.view.borrow_mut() = view;
        }
        self.view.borrow()
    }

    fn restale(&self) {
        self.view_stale.set(true);
    }

    fn cursor_pos(&self) -> usize {
        let Some(id) = &self.cursor else { return 0 };
        let Some(&row) = self.index.get(id) else {
            return 0;
        };
        self.view().iter().position(|&i| i == row).unwrap_or(0)
    }

    fn move_cursor(&mut self, nav: Nav) {
        let len = self.view().len();
        if len == 0 {
            return;
        }
        let pos = nav.step(self.cursor_pos(), len, self.page.get());
        let row = self.view()[pos];
        self.cursor = Some(self.rows[row].identity.clone());
    }

    /// Typing re-parses the filter at once, so the error follows the text.
    fn edit_text(&mut self, edit: TextEdit) {
        if self.editing && self.input.apply(edit) {
            self.revalidate();
        }
    }

    fn revalidate(&mut self) {
        self.filter_error = check_filter(self.input.text()).err();
    }

    fn reindex(&mut self) {
        self.index = self.rows.iter().enumerate().map(|(i, r)| (r.identity.clone(), i)).collect();
        self.restale();
    }

    fn tag_where(&mut self, pick: impl Fn(&NodeRow) -> bool) -> Option<Action> {
        let picked: Vec<String> = self.shown().into_iter().filter(|r| pick(r)).map(|r| r.identity.clone()).collect();
        if picked.is_empty() {
            return Some(Notice::info("no such nodes in the grid"));
        }
        self.tagged.extend(picked);
        None
    }

    fn aim(&mut self) -> Action {
        let scope = if self.tagged.is_empty() {
            Scope::filter(&self.active_filter)
        } else {
            Scope { filter: self.active_filter.clone(), targets: Some(self.tagged.iter().cloned().collect()) }
        };
        let note = Notice::info(format!("the next request goes to {}", scope.describe()));
        Action::Batch(vec![Action::ScopeChanged(scope), Action::FocusPanel(PanelId::Rpc), note])
    }
}

impl Component for Discovery {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        self.on_key(key)
    }

    fn update(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::Discovery(msg) => return self.on_msg(msg),
            Action::RunDiscovery { round, filter } => {
                self.last_round_id = self.last_round_id.max(round);
                self.active_filter = filter.clone();
                if !self.editing {
                    self.input.set(&filter);
                }
                self.round = Some(Round { id: round, filter, phase: Phase::Discovering, discovered: 0 });
                self.rows.clear();
                self.replies.clear();
                self.tagged.clear();
                self.reindex();
                self.cursor = None;
            }
            Action::Round { round, event } if self.round.as_ref().is_some_and(|r| r.id == round) => {
                let finished = matches!(event, RequestEvent::Finished { .. });
                if let RequestEvent::Reply(r) = &event {
                    self.replies.insert(r.sender.clone(), (**r).clone());
                }
                self.on_round_event(event);
                // The fact columns follow the round: who answered may have changed.
                if finished {
                    return self.fetch_facts();
                }
            }
            Action::Members { filter, nodes } => self.on_members(&filter, &nodes),
            Action::Link(state) => self.link_up = matches!(state, LinkState::Connected { .. }),
            Action::ScopeChanged(scope) => self.aimed = scope.targets.is_some(),
            Action::Nav(nav) => self.move_cursor(nav),
            Action::Search(edit) if self.search.apply(edit) => self.restale(),
            Action::ThemeChanged(theme) => self.theme = *theme,
            _ => {}
        }
        None
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        self.render(frame, area);
    }
}

impl Discovery {
    fn on_msg(&mut self, msg: Msg) -> Option<Action> {
        match msg {
            Msg::EditFilter => {
                self.editing = true;
                self.input.set(&self.active_filter);
                self.revalidate();
            }
            Msg::CancelEdit => {
                self.editing = false;
                self.input.set(&self.active_filter);
                self.filter_error = None;
            }
            Msg::EditText(edit) => self.edit_text(edit),
            Msg::Submit => {
                if self.editing {
                    if self.filter_error.is_some() {
                        return None;
                    }
                    self.editing = false;
                    self.active_filter = self.input.text().trim().to_string();
                    self.input.set(&self.active_filter);
                }
                return Some(self.start_round());
            }
            Msg::Rerun => return Some(self.start_round()),
            Msg::Run(filter) => {
                self.editing = false;
                self.filter_error = None;
                self.active_filter = filter.trim().to_string();
                self.input.set(&self.active_filter);
                return Some(self.start_round());
            }
            Msg::Enter => return Some(self.aim()),
            Msg::Inspect => return self.inspect(),
            Msg::Columns(columns) => {
                self.columns = columns;
                self.facts.clear();
                self.facts_error = None;
                return self.fetch_facts();
            }
            Msg::Facts(Ok(facts)) => {
                self.facts = facts;
                self.facts_error = None;
            }
            Msg::Facts(Err(e)) => self.facts_error = Some(e),
            Msg::ToggleTag => {
                if let Some(id) = self.selected().map(|r| r.identity.clone()) {
                    if !self.tagged.remove(&id) {
                        self.tagged.insert(id);
                    }
                    self.move_cursor(Nav::Down);
                }
            }
            Msg::TagFailed => {
                return self.tag_where(|r| matches!(r.status, NodeStatus::Failed { .. }));
            }
            Msg::TagNoReply => return self.tag_where(|r| r.status == NodeStatus::NoReply),
            Msg::TagAll => return self.tag_where(|_| true),
            Msg::UntagAll => {
                self.tagged.clear();
                if self.aimed {
                    // Untagging everything also stops aiming requests at the tags.
                    let scope = Scope::filter(&self.active_filter);
                    let note = Notice::info(format!("untagged: the next request goes to {}", scope.describe()));
                    return Some(Action::Batch(vec![Action::ScopeChanged(scope), note]));
                }
            }
            Msg::CycleSort => {
                self.sort = self.sort.next();
                self.descending = false;
                self.restale();
            }
            Msg::ReverseSort => {
                self.descending = !self.descending;
                self.restale();
            }
        }
        None
    }
}
