//! The Discovery panel: a filter line (compound syntax, checked as the user types, errors pointing
//! at the column), a progress bar `[=====>    ] 12 / 20` for the running round, and a live grid
//! of every expected node (pending, ok with ms, failed with status and message, no reply, and
//! replies from nodes that were not discovered). The grid sorts and searches; tagged nodes (space,
//! or `F` for every failed one) become the exact targets of the next RPC with `enter`.

use std::cell::{Cell, Ref, RefCell};
use std::collections::{BTreeSet, HashMap};

use crossterm::event::{KeyCode, KeyEvent};
use fleet_protocol::filter::FilterError;
use fleet_protocol::{Filter, Status};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell as TableCell, HighlightSpacing, Paragraph, Row, Table, TableState};

use super::action::{Action, LinkState, Nav, Notice, PanelId, RequestEvent, Scope, SearchEdit, TextEdit};
use super::component::{Component, PanelContext};
use super::input::TextInput;
use super::keys::{Key, Keymap, Mode};
use super::search::Search;
use super::theme::Theme;

const PROMPT: &str = "filter: ";

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
    /// Enter on the grid: aim the next request at the tagged nodes (or the filter) and go to RPC.
    Enter,
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

/// `[=====>    ]` without the brackets: `width` cells, `done` of `total` filled, with a `>` head
/// while the round is not complete.
pub fn bar_cells(done: usize, total: usize, width: usize) -> (String, String) {
    if total == 0 || width == 0 {
        return (String::new(), " ".repeat(width));
    }
    let done = done.min(total);
    let filled = done * width / total;
    let head = if done == total {
        "=".repeat(width)
    } else if filled == 0 {
        String::new()
    } else {
        format!("{}>", "=".repeat(filled - 1))
    };
    let todo = " ".repeat(width - head.chars().count());
    (head, todo)
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
            (NodeStatus::NoReply, _) => 1,
            (_, true) => 2,
            (NodeStatus::Pending, _) => 3,
            (NodeStatus::Joined, _) => 4,
            (NodeStatus::Ok { .. }, _) => 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Asking the hub which nodes match (or waiting for a hub link to ask).
    Discovering,
    /// The request is out; replies are coming in.
    Waiting,
    Done {
        elapsed_ms: f64,
    },
    Failed(String),
}

/// One rpcutil ping round as the panel follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    pub id: u64,
    pub filter: String,
    pub phase: Phase,
    pub discovered: usize,
}

/// Counts over the node list, for the progress line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Replies from discovered nodes, ok or not.
    pub replied: usize,
    pub ok: usize,
    pub failed: usize,
    pub no_reply: usize,
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
            sort: SortKey::Name,
            descending: false,
            search: Search::default(),
            cursor: None,
            link_up: false,
            view: RefCell::new(Vec::new()),
            view_stale: Cell::new(true),
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

    fn start_round(&mut self) -> Action {
        self.last_round_id += 1;
        Action::RunDiscovery { round: self.last_round_id, filter: self.active_filter.clone() }
    }

    fn on_round_event(&mut self, event: RequestEvent) {
        let Some(round) = self.round.as_mut() else {
            return;
        };
        match event {
            RequestEvent::Discovered(nodes) => {
                round.discovered = nodes.len();
                round.phase = Phase::Waiting;
                self.rows = nodes
                    .into_iter()
                    .map(|identity| NodeRow { identity, status: NodeStatus::Pending, expected: true, left: false })
                    .collect();
                self.reindex();
                self.cursor = None;
            }
            RequestEvent::Reply(reply) => {
                let ms = reply.ms;
                let status = if reply.status.is_ok() {
                    NodeStatus::Ok { ms }
                } else {
                    NodeStatus::Failed { status: reply.status, message: reply.message.clone(), ms }
                };
                match self.index.get(&reply.sender) {
                    Some(&i) => self.rows[i].status = status,
                    None => {
                        self.index.insert(reply.sender.clone(), self.rows.len());
                        self.rows.push(NodeRow { identity: reply.sender.clone(), status, expected: reply.expected, left: false });
                    }
                }
                self.restale();
            }
            RequestEvent::Finished { no_reply, elapsed_ms } => {
                round.phase = Phase::Done { elapsed_ms };
                for row in self.rows.iter_mut() {
                    if row.status == NodeStatus::Pending || no_reply.contains(&row.identity) {
                        row.status = NodeStatus::NoReply;
                    }
                }
                self.restale();
            }
            RequestEvent::Failed(message) => round.phase = Phase::Failed(message),
            RequestEvent::Sent { .. } => {}
        }
    }

    /// Nodes joined or left since the round: mark them, without pretending they were pinged.
    fn on_members(&mut self, filter: &str, nodes: &[String]) {
        let settled = matches!(self.round.as_ref().map(|r| &r.phase), Some(Phase::Done { .. } | Phase::Failed(_)));
        if !settled || filter != self.active_filter {
            return;
        }
        let members: std::collections::HashSet<&str> = nodes.iter().map(String::as_str).collect();
        // A node that joined after the round and is gone again was never part of it.
        self.rows.retain(|r| r.status != NodeStatus::Joined || members.contains(r.identity.as_str()));
        for row in self.rows.iter_mut() {
            row.left = !members.contains(row.identity.as_str());
        }
        self.reindex();
        for n in nodes {
            if !self.index.contains_key(n) {
                self.rows.push(NodeRow { identity: n.clone(), status: NodeStatus::Joined, expected: false, left: false });
            }
        }
        self.reindex();
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

    fn progress_line(&self, width: usize) -> Line<'static> {
        let t = &self.theme;
        let Some(round) = &self.round else {
            let rerun = self.keys.key_of(Mode::Discovery, "rerun").map(|k| k.to_string()).unwrap_or_default();
            return Line::from(Span::styled(format!("no round yet: {rerun} pings the nodes matching the filter"), t.label));
        };
        let desc = describe_filter(&round.filter);
        match &round.phase {
            Phase::Discovering if !self.link_up => {
                Line::from(Span::styled(format!("waiting for the hub link to discover {desc} ..."), t.label))
            }
            Phase::Discovering => Line::from(Span::styled(format!("discovering {desc} ..."), t.label)),
            Phase::Failed(msg) => Line::from(Span::styled(format!("round failed: {}", msg.lines().next().unwrap_or_default()), t.error)),
            Phase::Done { .. } if round.discovered == 0 && self.rows.is_empty() => {
                Line::from(Span::styled(format!("no nodes matched {desc}"), t.status.no_reply))
            }
            Phase::Waiting | Phase::Done { .. } => {
                let tally = self.tally();
                let label = format!(" {} / {}", tally.replied, round.discovered);
                let mut summary = vec![
                    Span::raw("  "),
                    Span::styled(format!("{} ok", tally.ok), t.status.ok),
                    Span::raw("  "),
                    Span::styled(format!("{} failed", tally.failed), t.status.failed),
                    Span::raw("  "),
                    Span::styled(format!("{} no reply", tally.no_reply), t.status.no_reply),
                ];
                if tally.unexpected > 0 {
                    summary.push(Span::styled(format!("  +{} unexpected", tally.unexpected), t.status.unexpected));
                }
                if let Phase::Done { elapsed_ms } = round.phase {
                    summary.push(Span::styled(format!("  in {elapsed_ms:.0} ms"), t.label));
                }
                let summary_width: usize = summary.iter().map(|s| s.width()).sum();
                let bar_width = width.saturating_sub(2 + label.len() + summary_width).clamp(10, 40);
                let (done, todo) = bar_cells(tally.replied, round.discovered, bar_width);
                let mut spans = vec![
                    Span::styled("[", t.text),
                    Span::styled(done, t.progress.done),
                    Span::styled(todo, t.progress.todo),
                    Span::styled("]", t.text),
                    Span::styled(label, t.text),
                ];
                spans.extend(summary);
                Line::from(spans)
            }
        }
    }

    fn row_cells(&self, row: &NodeRow) -> Row<'static> {
        let t = &self.theme;
        let (style, time, mut detail) = match &row.status {
            NodeStatus::Pending => (t.status.pending, String::new(), String::new()),
            NodeStatus::Ok { ms } => (t.status.ok, format_ms(*ms), String::new()),
            NodeStatus::Failed { status, message, ms } => {
                let detail = if message.is_empty() { status.to_string() } else { format!("{status}: {message}") };
                (t.status.failed, format_ms(*ms), detail)
            }
            NodeStatus::NoReply => (t.status.no_reply, String::new(), String::new()),
            NodeStatus::Joined => {
                let rerun = self.keys.key_of(Mode::Discovery, "rerun").map(|k| k.to_string()).unwrap_or_default();
                (t.status.joined, String::new(), format!("matched after the round; {rerun} pings it"))
            }
        };
        let mut style = style;
        if row.unexpected() {
            style = t.status.unexpected;
            detail = if detail.is_empty() { "replied but was not discovered".to_string() } else { format!("{detail} (not discovered)") };
        }
        if row.left {
            detail = format!("left the fleet after the round{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") });
            style = t.status.left;
        }
        let tagged = self.tagged.contains(&row.identity);
        let name_style = if tagged { t.row.tagged } else { t.text };
        Row::new(vec![
            TableCell::from(Span::styled(if tagged { "*" } else { " " }, t.row.tagged)),
            TableCell::from(Span::styled(row.identity.clone(), name_style)),
            TableCell::from(Span::styled(row.status_word(), style)),
            TableCell::from(Line::from(Span::styled(time, t.text)).right_aligned()),
            TableCell::from(Span::styled(detail, t.text)),
        ])
    }

    fn draw_filter_line(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let field_width = (area.width as usize).saturating_sub(PROMPT.len());
        if self.editing {
            let scroll = self.input.scroll(field_width);
            let visible = self.input.visible(scroll, field_width);
            let pad = field_width.saturating_sub(visible.chars().count());
            let line = Line::from(vec![Span::styled(PROMPT, t.label), Span::styled(format!("{visible}{}", " ".repeat(pad)), t.input)]);
            frame.render_widget(Paragraph::new(line), area);
            let x = area.x + (PROMPT.len() + self.input.cursor() - scroll) as u16;
            frame.set_cursor_position((x.min(area.right().saturating_sub(1)), area.y));
        } else {
            let mut spans = vec![Span::styled(PROMPT, t.label), Span::styled(describe_filter(&self.active_filter), t.text)];
            if !self.tagged.is_empty() {
                spans.push(Span::styled(format!("   {} tagged", self.tagged.len()), t.row.tagged));
            }
            let (sort, desc) = self.sort();
            spans.push(Span::styled(format!("   sort {}{}", sort.label(), if desc { " (reversed)" } else { "" }), t.label));
            frame.render_widget(Paragraph::new(Line::from(spans)), area);
        }
    }

    fn draw_filter_error(&self, frame: &mut Frame, area: Rect, err: &FilterError) {
        let t = &self.theme;
        let field_width = (area.width as usize).saturating_sub(PROMPT.len());
        let scroll = self.input.scroll(field_width);
        let caret_at = (PROMPT.len() + err.column.saturating_sub(1)).saturating_sub(scroll);
        let lines = vec![
            Line::from(Span::styled(format!("{}^", " ".repeat(caret_at)), t.error)),
            Line::from(Span::styled(format!("error at column {}: {}", err.column, err.message), t.error)),
        ];
        frame.render_widget(Paragraph::new(lines), area);
    }

    fn draw_nodes(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let view = self.view();
        let name_width = self.rows.iter().map(|r| r.identity.chars().count()).max().unwrap_or(0).clamp(12, 32) as u16;
        let header = Row::new(["", "NODE", "STATUS", "TIME", "DETAIL"].map(|h| TableCell::from(Span::styled(h, t.table.header))));
        let widths =
            [Constraint::Length(1), Constraint::Length(name_width), Constraint::Length(10), Constraint::Length(9), Constraint::Min(0)];
        // Only the rows on screen are built: a fleet can be thousands of nodes.
        let visible = (area.height as usize).saturating_sub(1).max(1);
        self.page.set(visible);
        let selected = self.cursor_pos();
        let top = scroll_top(self.scroll_top.get(), selected, visible, view.len());
        self.scroll_top.set(top);
        let rows: Vec<Row> = view.iter().skip(top).take(visible).map(|&i| self.row_cells(&self.rows[i])).collect();
        // The `>` marks the selection where the theme has no colors (mono, NO_COLOR).
        let table = Table::new(rows, widths)
            .header(header)
            .column_spacing(1)
            .row_highlight_style(t.row.selected)
            .highlight_symbol("> ")
            .highlight_spacing(HighlightSpacing::Always);
        let mut state = TableState::default().with_selected((!view.is_empty()).then(|| selected - top));
        frame.render_stateful_widget(table, area, &mut state);
    }
}

/// The first visible row: moves only as far as needed to keep `selected` on screen.
pub fn scroll_top(top: usize, selected: usize, visible: usize, len: usize) -> usize {
    let top = if selected < top {
        selected
    } else if selected >= top + visible {
        selected + 1 - visible
    } else {
        top
    };
    top.min(len.saturating_sub(visible))
}

fn format_ms(ms: f64) -> String {
    format!("{ms:.1} ms")
}

/// The text edit a key stands for in a one-line input, if any.
pub fn text_edit(key: &KeyEvent) -> Option<TextEdit> {
    let k = Key::of(key);
    Some(match k.code {
        KeyCode::Char(c) if k.is_text() => TextEdit::Insert(c),
        KeyCode::Backspace => TextEdit::Backspace,
        KeyCode::Delete => TextEdit::Delete,
        KeyCode::Left => TextEdit::Left,
        KeyCode::Right => TextEdit::Right,
        KeyCode::Home => TextEdit::Home,
        KeyCode::End => TextEdit::End,
        _ => return None,
    })
}

impl Component for Discovery {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        let mode = self.mode();
        if let Some(action) = self.keys.action(mode, &key) {
            return Some(action);
        }
        match mode {
            Mode::DiscoveryFilter => text_edit(&key).map(|e| Action::Discovery(Msg::EditText(e))),
            Mode::Search => text_edit(&key).map(|e| Action::Search(SearchEdit::Edit(e))),
            _ => None,
        }
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
                self.tagged.clear();
                self.reindex();
                self.cursor = None;
            }
            Action::Round { round, event } if self.round.as_ref().is_some_and(|r| r.id == round) => self.on_round_event(event),
            Action::Members { filter, nodes } => self.on_members(&filter, &nodes),
            Action::Link(state) => self.link_up = matches!(state, LinkState::Connected { .. }),
            Action::Nav(nav) => self.move_cursor(nav),
            Action::Search(edit) if self.search.apply(edit) => self.restale(),
            Action::ThemeChanged(theme) => self.theme = *theme,
            _ => {}
        }
        None
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let block = Block::bordered().border_style(t.border_focused).title(Span::styled(" Discovery ", t.title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let error = self.filter_error.as_ref().filter(|_| self.editing);
        let search = self.search.line(t, self.view().len(), self.rows.len());
        let [filter_area, error_area, progress_area, search_area, nodes_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(if error.is_some() { 2 } else { 0 }),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(0),
        ])
        .areas(inner);
        self.draw_filter_line(frame, filter_area);
        if let Some(err) = error {
            self.draw_filter_error(frame, error_area, err);
        }
        frame.render_widget(Paragraph::new(self.progress_line(progress_area.width as usize)), progress_area);
        if let Some(line) = search {
            frame.render_widget(Paragraph::new(line), search_area);
        }
        self.draw_nodes(frame, nodes_area);
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
            Msg::UntagAll => self.tagged.clear(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::action::ReplyRow;

    fn panel() -> Discovery {
        Discovery::new(&PanelContext { theme: Theme::mono(), keys: Default::default(), read_only: false, scope: Scope::default() })
    }

    fn reply(sender: &str, status: Status, message: &str, ms: f64) -> RequestEvent {
        RequestEvent::Reply(Box::new(ReplyRow::new(sender, status, message, ms)))
    }

    fn d(msg: Msg) -> Action {
        Action::Discovery(msg)
    }

    fn started(d: &mut Discovery) -> u64 {
        let Some(Action::RunDiscovery { round, filter }) = d.update(Action::Discovery(Msg::Rerun)) else {
            panic!("rerun must start a round")
        };
        d.update(Action::RunDiscovery { round, filter });
        round
    }

    fn names(d: &Discovery) -> Vec<&str> {
        d.shown().iter().map(|r| r.identity.as_str()).collect()
    }

    #[test]
    fn bar_matches_the_cli_shape() {
        assert_eq!(bar_cells(12, 20, 10), ("=====>".to_string(), "    ".to_string()));
        assert_eq!(bar_cells(0, 20, 4), (String::new(), "    ".to_string()));
        assert_eq!(bar_cells(20, 20, 4), ("====".to_string(), String::new()));
        assert_eq!(bar_cells(0, 0, 3), (String::new(), "   ".to_string()));
    }

    #[test]
    fn typing_a_bad_filter_shows_the_error_with_its_column() {
        let mut p = panel();
        p.update(d(Msg::EditFilter));
        assert_eq!(p.mode(), Mode::DiscoveryFilter);
        for c in "country=uk and".chars() {
            p.update(d(Msg::EditText(TextEdit::Insert(c))));
        }
        let err = p.filter_error().expect("a dangling 'and' is an error");
        assert!(err.column >= 12 && err.column <= 15, "column {} of {:?}", err.column, err.input);
        // Enter does not run a broken filter.
        assert_eq!(p.update(d(Msg::Submit)), None);
        assert!(p.editing());
        for c in " role=web".chars() {
            p.update(d(Msg::EditText(TextEdit::Insert(c))));
        }
        assert!(p.filter_error().is_none());
        assert_eq!(p.update(d(Msg::Submit)), Some(Action::RunDiscovery { round: 1, filter: "country=uk and role=web".into() }));
        assert!(!p.editing());
    }

    #[test]
    fn escape_puts_back_the_filter_in_force() {
        let mut p = panel();
        p.update(Action::RunDiscovery { round: 1, filter: "role=db".into() });
        p.update(d(Msg::EditFilter));
        p.update(d(Msg::EditText(TextEdit::Clear)));
        p.update(d(Msg::EditText(TextEdit::Insert('('))));
        assert!(p.filter_error().is_some());
        p.update(d(Msg::CancelEdit));
        assert_eq!((p.filter_text(), p.filter_error(), p.mode()), ("role=db", None, Mode::Discovery));
    }

    /// The grid's states: pending -> ok | failed; pending -> no reply at the end; a reply from
    /// a node that was not discovered is added, marked unexpected; a stale round is ignored.
    #[test]
    fn grid_state_transitions() {
        let mut p = panel();
        let round = started(&mut p);
        assert_eq!(p.round().unwrap().phase, Phase::Discovering);
        let nodes: Vec<String> = ["web-02", "web-01", "db-01"].map(String::from).to_vec();
        p.update(Action::Round { round, event: RequestEvent::Discovered(nodes) });
        assert_eq!(p.round().unwrap().phase, Phase::Waiting);
        assert!(p.rows().iter().all(|r| r.status == NodeStatus::Pending));
        assert_eq!(names(&p), ["db-01", "web-01", "web-02"], "rows are in name order");
        assert_eq!(p.selected().unwrap().identity, "db-01", "a new round selects the first row");
        p.update(Action::Round { round, event: reply("web-01", Status::Ok, "", 1.5) });
        p.update(Action::Round { round, event: reply("db-01", Status::Aborted, "disk full", 3.0) });
        let mut late = ReplyRow::new("stray-01", Status::Ok, "", 4.0);
        late.expected = false;
        p.update(Action::Round { round, event: RequestEvent::Reply(Box::new(late)) });
        // A stale round's progress is ignored.
        p.update(Action::Round { round: round + 7, event: reply("web-02", Status::Ok, "", 1.0) });
        assert_eq!(p.row("web-01").unwrap().status, NodeStatus::Ok { ms: 1.5 });
        assert_eq!(p.row("web-02").unwrap().status, NodeStatus::Pending);
        assert_eq!(p.row("stray-01").unwrap().status_word(), "unexpected");
        assert_eq!(p.tally(), Tally { replied: 2, ok: 1, failed: 1, no_reply: 0, unexpected: 1 });
        p.update(Action::Round { round, event: RequestEvent::Finished { no_reply: vec!["web-02".into()], elapsed_ms: 7000.0 } });
        assert_eq!(p.row("web-02").unwrap().status, NodeStatus::NoReply);
        assert_eq!(p.row("db-01").unwrap().status, NodeStatus::Failed { status: Status::Aborted, message: "disk full".into(), ms: 3.0 });
        assert_eq!(p.round().unwrap().phase, Phase::Done { elapsed_ms: 7000.0 });
        p.update(Action::Round { round, event: RequestEvent::Failed("hub went away".into()) });
        assert_eq!(p.round().unwrap().phase, Phase::Failed("hub went away".into()));
    }

    #[test]
    fn nodes_joining_after_the_round_are_listed_but_not_counted() {
        let mut p = panel();
        let round = started(&mut p);
        p.update(Action::Round { round, event: RequestEvent::Discovered(vec!["a".into(), "b".into()]) });
        // While the round runs, membership news waits for the round's own answer.
        p.update(Action::Members { filter: String::new(), nodes: vec!["a".into()] });
        assert_eq!(p.rows().len(), 2);
        p.update(Action::Round { round, event: reply("a", Status::Ok, "", 1.0) });
        p.update(Action::Round { round, event: reply("b", Status::Ok, "", 1.0) });
        p.update(Action::Round { round, event: RequestEvent::Finished { no_reply: vec![], elapsed_ms: 3.0 } });
        p.update(Action::Members { filter: "role=x".into(), nodes: vec![] });
        assert_eq!(p.rows().len(), 2, "another filter's members are ignored");
        p.update(Action::Members { filter: String::new(), nodes: vec!["a".into(), "c".into()] });
        assert!(p.row("b").unwrap().left);
        assert_eq!(p.row("b").unwrap().status, NodeStatus::Ok { ms: 1.0 }, "the round's result stays");
        assert_eq!(p.row("c").unwrap().status, NodeStatus::Joined);
        assert_eq!(p.tally().replied, 2, "joined nodes are not counted in the round");
        p.update(Action::Members { filter: String::new(), nodes: vec!["a".into(), "b".into()] });
        assert!(!p.row("b").unwrap().left);
        assert!(p.row("c").is_none(), "joined and gone again");
    }

    #[test]
    fn the_list_scrolls_only_as_far_as_the_selection_needs() {
        assert_eq!(scroll_top(0, 3, 5, 100), 0);
        assert_eq!(scroll_top(0, 5, 5, 100), 1);
        assert_eq!(scroll_top(10, 12, 5, 100), 10, "moving inside the window keeps it");
        assert_eq!(scroll_top(10, 9, 5, 100), 9);
        assert_eq!(scroll_top(50, 3, 5, 4), 0, "a shorter list pulls the window back");
    }

    fn finished_round(p: &mut Discovery) -> u64 {
        let round = started(p);
        let nodes: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        p.update(Action::Round { round, event: RequestEvent::Discovered(nodes) });
        p.update(Action::Round { round, event: reply("a", Status::Ok, "", 5.0) });
        p.update(Action::Round { round, event: reply("b", Status::Aborted, "x", 1.0) });
        p.update(Action::Round { round, event: reply("c", Status::Ok, "", 2.0) });
        p.update(Action::Round { round, event: reply("d", Status::Denied, "policy", 3.0) });
        p.update(Action::Round { round, event: RequestEvent::Finished { no_reply: vec!["e".into()], elapsed_ms: 10.0 } });
        round
    }

    #[test]
    fn the_grid_sorts_by_name_status_and_time_and_reverses() {
        let mut p = panel();
        finished_round(&mut p);
        assert_eq!(names(&p), ["a", "b", "c", "d", "e"]);
        p.update(d(Msg::CycleSort));
        assert_eq!(p.sort(), (SortKey::Status, false));
        assert_eq!(names(&p), ["b", "d", "e", "a", "c"], "failed, no reply, then ok");
        p.update(d(Msg::CycleSort));
        assert_eq!(names(&p), ["b", "c", "d", "a", "e"], "fastest first, no time last");
        p.update(d(Msg::ReverseSort));
        assert_eq!(names(&p), ["e", "a", "d", "c", "b"]);
        p.update(d(Msg::CycleSort));
        assert_eq!(p.sort(), (SortKey::Name, false));
    }

    #[test]
    fn search_narrows_the_grid_by_name_or_status() {
        let mut p = panel();
        finished_round(&mut p);
        p.update(Action::Search(SearchEdit::Open));
        assert_eq!(p.mode(), Mode::Search);
        for c in "fail".chars() {
            p.update(Action::Search(SearchEdit::Edit(TextEdit::Insert(c))));
        }
        assert_eq!(names(&p), ["b", "d"]);
        p.update(Action::Search(SearchEdit::Accept));
        assert_eq!(p.mode(), Mode::Discovery);
        assert_eq!(names(&p), ["b", "d"], "the search stays after enter");
        p.update(Action::Search(SearchEdit::Cancel));
        assert_eq!(names(&p).len(), 5);
    }

    #[test]
    fn tagging_and_aiming() {
        let mut p = panel();
        finished_round(&mut p);
        // Nothing tagged: enter aims at the filter.
        let Some(Action::Batch(actions)) = p.update(d(Msg::Enter)) else { panic!() };
        assert_eq!(actions[0], Action::ScopeChanged(Scope::filter("")));
        assert_eq!(actions[1], Action::FocusPanel(PanelId::Rpc));
        p.update(d(Msg::TagFailed));
        assert_eq!(p.tagged().iter().map(String::as_str).collect::<Vec<_>>(), ["b", "d"]);
        // space tags the row under the cursor and moves down.
        p.update(Action::Nav(Nav::Bottom));
        p.update(d(Msg::ToggleTag));
        assert!(p.tagged().contains("e"));
        p.update(d(Msg::ToggleTag));
        assert!(!p.tagged().contains("e"), "space again untags");
        let Some(Action::Batch(actions)) = p.update(d(Msg::Enter)) else { panic!() };
        assert_eq!(actions[0], Action::ScopeChanged(Scope { filter: String::new(), targets: Some(vec!["b".into(), "d".into()]) }));
        p.update(d(Msg::UntagAll));
        assert!(p.tagged().is_empty());
        p.update(d(Msg::TagNoReply));
        assert_eq!(p.tagged().len(), 1);
        // A new round clears the tags.
        started(&mut p);
        assert!(p.tagged().is_empty());
    }

    #[test]
    fn the_cursor_follows_its_node_through_a_resort() {
        let mut p = panel();
        finished_round(&mut p);
        p.update(Action::Nav(Nav::Down));
        assert_eq!(p.selected().unwrap().identity, "b");
        p.update(d(Msg::CycleSort));
        assert_eq!(p.selected().unwrap().identity, "b");
        p.update(Action::Nav(Nav::Down));
        assert_eq!(p.selected().unwrap().identity, "d");
        p.update(Action::Nav(Nav::Bottom));
        p.update(Action::Nav(Nav::Down));
        assert_eq!(p.selected().unwrap().identity, "c");
        p.update(Action::Nav(Nav::Top));
        p.update(Action::Nav(Nav::Up));
        assert_eq!(p.selected().unwrap().identity, "b");
    }
}
