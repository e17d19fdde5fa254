//! The Discovery panel: a filter line (compound syntax, checked as the user types, errors pointing
//! at the column), a progress bar `[=====>    ] 12 / 20` for the running round, and a per-node
//! status list (pending, ok with ms, failed with status and message, no reply).

use crossterm::event::{KeyCode, KeyEvent};
use fleet_protocol::filter::FilterError;
use fleet_protocol::{Filter, Status};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, HighlightSpacing, Paragraph, Row, Table, TableState};

use super::action::{Action, LinkState, RoundEvent, TextEdit};
use super::component::Component;
use super::input::TextInput;
use super::keys::{self, Key, Mode};
use super::theme::Theme;

const PROMPT: &str = "filter: ";

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
    Ok { ms: f64 },
    Failed { status: Status, message: String, ms: f64 },
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

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Asking the hub which nodes match (or waiting for a hub link to ask).
    Discovering,
    /// The request is out; replies are coming in.
    Waiting,
    Done { elapsed_ms: f64 },
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

pub struct Discovery {
    theme: Theme,
    input: TextInput,
    editing: bool,
    filter_error: Option<FilterError>,
    /// The filter of the last round asked for.
    active_filter: String,
    last_round_id: u64,
    round: Option<Round>,
    rows: Vec<NodeRow>,
    selected: usize,
    link_up: bool,
    /// First row on screen. Only the drawing knows the list's height, so it keeps this up to
    /// date (as gitui's `VerticalScroll` does); it is a view cache, not state.
    scroll_top: std::cell::Cell<usize>,
}

impl Discovery {
    pub fn new(theme: Theme) -> Discovery {
        Discovery {
            theme,
            input: TextInput::default(),
            editing: false,
            filter_error: None,
            active_filter: String::new(),
            last_round_id: 0,
            round: None,
            rows: Vec::new(),
            selected: 0,
            link_up: false,
            scroll_top: std::cell::Cell::new(0),
        }
    }

    pub fn mode(&self) -> Mode {
        if self.editing { Mode::EditFilter } else { Mode::Browse }
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
        self.rows.iter().find(|r| r.identity == identity)
    }

    pub fn selected(&self) -> Option<&NodeRow> {
        self.rows.get(self.selected)
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

    /// Typing re-parses the filter at once, so the error follows the text.
    fn edit_text(&mut self, edit: TextEdit) {
        if self.editing && self.input.apply(edit) {
            self.revalidate();
        }
    }

    fn revalidate(&mut self) {
        self.filter_error = check_filter(self.input.text()).err();
    }

    /// Keeps the list in name order and the selection on the same node.
    fn sort_rows(&mut self) {
        let keep = self.rows.get(self.selected).map(|r| r.identity.clone());
        self.rows.sort_by(|a, b| a.identity.cmp(&b.identity));
        if let Some(id) = keep {
            self.selected = self.rows.iter().position(|r| r.identity == id).unwrap_or(0);
        }
        self.clamp_selection();
    }

    fn clamp_selection(&mut self) {
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    fn on_round_event(&mut self, event: RoundEvent) {
        let Some(round) = self.round.as_mut() else { return };
        match event {
            RoundEvent::Discovered(nodes) => {
                round.discovered = nodes.len();
                round.phase = Phase::Waiting;
                self.rows = nodes.into_iter().map(|identity| NodeRow { identity, status: NodeStatus::Pending, expected: true, left: false }).collect();
                self.rows.sort_by(|a, b| a.identity.cmp(&b.identity));
                self.selected = 0;
            }
            RoundEvent::Reply { sender, status, message, ms, expected } => {
                let status = if status.is_ok() { NodeStatus::Ok { ms } } else { NodeStatus::Failed { status, message, ms } };
                match self.rows.iter_mut().find(|r| r.identity == sender) {
                    Some(row) => row.status = status,
                    None => {
                        self.rows.push(NodeRow { identity: sender, status, expected, left: false });
                        self.sort_rows();
                    }
                }
            }
            RoundEvent::Finished { no_reply, elapsed_ms } => {
                round.phase = Phase::Done { elapsed_ms };
                for row in self.rows.iter_mut() {
                    if row.status == NodeStatus::Pending || no_reply.contains(&row.identity) {
                        row.status = NodeStatus::NoReply;
                    }
                }
            }
            RoundEvent::Failed(message) => round.phase = Phase::Failed(message),
        }
    }

    /// Nodes joined or left since the round: mark them, without pretending they were pinged.
    fn on_members(&mut self, filter: &str, nodes: &[String]) {
        let settled = matches!(self.round.as_ref().map(|r| &r.phase), Some(Phase::Done { .. } | Phase::Failed(_)));
        if !settled || filter != self.active_filter {
            return;
        }
        // A node that joined after the round and is gone again was never part of it.
        self.rows.retain(|r| r.status != NodeStatus::Joined || nodes.contains(&r.identity));
        for row in self.rows.iter_mut() {
            row.left = !nodes.contains(&row.identity);
        }
        for n in nodes {
            if !self.rows.iter().any(|r| &r.identity == n) {
                self.rows.push(NodeRow { identity: n.clone(), status: NodeStatus::Joined, expected: false, left: false });
            }
        }
        self.sort_rows();
    }

    fn progress_line(&self, width: usize) -> Line<'static> {
        let t = &self.theme;
        let Some(round) = &self.round else {
            return Line::from(Span::styled("no round yet: enter pings the nodes matching the filter", t.label));
        };
        let desc = describe_filter(&round.filter);
        match &round.phase {
            Phase::Discovering if !self.link_up => Line::from(Span::styled(format!("waiting for the hub link to discover {desc} ..."), t.label)),
            Phase::Discovering => Line::from(Span::styled(format!("discovering {desc} ..."), t.label)),
            Phase::Failed(msg) => {
                Line::from(Span::styled(format!("round failed: {}", msg.lines().next().unwrap_or_default()), t.error))
            }
            Phase::Done { .. } if round.discovered == 0 => {
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
                    summary.push(Span::styled(format!("  +{} not discovered", tally.unexpected), t.label));
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
        let (status, style, time, mut detail) = match &row.status {
            NodeStatus::Pending => ("pending", t.status.pending, String::new(), String::new()),
            NodeStatus::Ok { ms } => ("ok", t.status.ok, format_ms(*ms), String::new()),
            NodeStatus::Failed { status, message, ms } => {
                let detail = if message.is_empty() { status.to_string() } else { format!("{status}: {message}") };
                ("failed", t.status.failed, format_ms(*ms), detail)
            }
            NodeStatus::NoReply => ("no reply", t.status.no_reply, String::new(), String::new()),
            NodeStatus::Joined => ("joined", t.status.joined, String::new(), "matched after the round; enter pings it".to_string()),
        };
        if !row.expected && matches!(row.status, NodeStatus::Ok { .. } | NodeStatus::Failed { .. }) {
            detail = if detail.is_empty() { "(not discovered)".to_string() } else { format!("{detail} (not discovered)") };
        }
        let (status, style) = if row.left {
            detail = if detail.is_empty() { format!("left the fleet after the round ({status})") } else { format!("left the fleet after the round ({status}; {detail})") };
            ("left", t.status.left)
        } else {
            (status, style)
        };
        Row::new(vec![
            Cell::from(Span::styled(row.identity.clone(), t.text)),
            Cell::from(Span::styled(status, style)),
            Cell::from(Line::from(Span::styled(time, t.text)).right_aligned()),
            Cell::from(Span::styled(detail, t.text)),
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
            let line = Line::from(vec![Span::styled(PROMPT, t.label), Span::styled(describe_filter(&self.active_filter), t.text)]);
            frame.render_widget(Paragraph::new(line), area);
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
        let name_width = self.rows.iter().map(|r| r.identity.chars().count()).max().unwrap_or(0).clamp(12, 32) as u16;
        let header = Row::new(["NODE", "STATUS", "TIME", "DETAIL"].map(|h| Cell::from(Span::styled(h, t.table.header))));
        let widths = [Constraint::Length(name_width), Constraint::Length(8), Constraint::Length(10), Constraint::Min(0)];
        // Only the rows on screen are built: a fleet can be thousands of nodes.
        let visible = (area.height as usize).saturating_sub(1).max(1);
        let top = scroll_top(self.scroll_top.get(), self.selected, visible, self.rows.len());
        self.scroll_top.set(top);
        let rows: Vec<Row> = self.rows.iter().skip(top).take(visible).map(|r| self.row_cells(r)).collect();
        // The `>` marks the selection where the theme has no colors (mono, NO_COLOR).
        let table = Table::new(rows, widths)
            .header(header)
            .column_spacing(2)
            .row_highlight_style(t.row.selected)
            .highlight_symbol("> ")
            .highlight_spacing(HighlightSpacing::Always);
        let mut state = TableState::default().with_selected((!self.rows.is_empty()).then(|| self.selected - top));
        frame.render_stateful_widget(table, area, &mut state);
    }
}

/// The first visible row: moves only as far as needed to keep `selected` on screen.
fn scroll_top(top: usize, selected: usize, visible: usize, len: usize) -> usize {
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

fn text_edit(key: &KeyEvent) -> Option<TextEdit> {
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
        if let Some(binding) = keys::lookup(self.mode(), &key) {
            return Some(binding.action.clone());
        }
        if self.editing { text_edit(&key).map(Action::EditText) } else { None }
    }

    fn update(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::EditFilter => {
                self.editing = true;
                self.input.set(&self.active_filter);
                self.revalidate();
            }
            Action::CancelEdit => {
                self.editing = false;
                self.input.set(&self.active_filter);
                self.filter_error = None;
            }
            Action::EditText(edit) => self.edit_text(edit),
            Action::Submit => {
                if self.editing {
                    if self.filter_error.is_some() {
                        return None;
                    }
                    self.editing = false;
                    self.active_filter = self.input.text().trim().to_string();
                    self.input.set(&self.active_filter);
                }
                self.last_round_id += 1;
                return Some(Action::RunDiscovery { round: self.last_round_id, filter: self.active_filter.clone() });
            }
            Action::RunDiscovery { round, filter } => {
                self.last_round_id = self.last_round_id.max(round);
                self.active_filter = filter.clone();
                if !self.editing {
                    self.input.set(&filter);
                }
                self.round = Some(Round { id: round, filter, phase: Phase::Discovering, discovered: 0 });
                self.rows.clear();
                self.selected = 0;
            }
            Action::Round { round, event } if self.round.as_ref().is_some_and(|r| r.id == round) => self.on_round_event(event),
            Action::Members { filter, nodes } => self.on_members(&filter, &nodes),
            Action::Link(state) => self.link_up = matches!(state, LinkState::Connected { .. }),
            Action::SelectNext => {
                self.selected += 1;
                self.clamp_selection();
            }
            Action::SelectPrev => self.selected = self.selected.saturating_sub(1),
            _ => {}
        }
        None
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let block = Block::bordered().border_style(t.border).title(Span::styled(" Discovery ", t.title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let error = self.filter_error.as_ref().filter(|_| self.editing);
        let [filter_area, error_area, progress_area, _gap, nodes_area] = Layout::vertical([
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
        self.draw_nodes(frame, nodes_area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(sender: &str, status: Status, message: &str, ms: f64) -> RoundEvent {
        RoundEvent::Reply { sender: sender.into(), status, message: message.into(), ms, expected: true }
    }

    fn started(d: &mut Discovery) -> u64 {
        let Some(Action::RunDiscovery { round, filter }) = d.update(Action::Submit) else { panic!("submit must start a round") };
        d.update(Action::RunDiscovery { round, filter });
        round
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
        let mut d = Discovery::new(Theme::mono());
        d.update(Action::EditFilter);
        assert_eq!(d.mode(), Mode::EditFilter);
        for c in "country=uk and".chars() {
            d.update(Action::EditText(TextEdit::Insert(c)));
        }
        let err = d.filter_error().expect("a dangling 'and' is an error");
        assert!(err.column >= 12 && err.column <= 15, "column {} of {:?}", err.column, err.input);
        // Enter does not run a broken filter.
        assert_eq!(d.update(Action::Submit), None);
        assert!(d.editing());
        for c in " role=web".chars() {
            d.update(Action::EditText(TextEdit::Insert(c)));
        }
        assert!(d.filter_error().is_none());
        assert_eq!(
            d.update(Action::Submit),
            Some(Action::RunDiscovery { round: 1, filter: "country=uk and role=web".into() })
        );
        assert!(!d.editing());
    }

    #[test]
    fn escape_puts_back_the_filter_in_force() {
        let mut d = Discovery::new(Theme::mono());
        d.update(Action::RunDiscovery { round: 1, filter: "role=db".into() });
        d.update(Action::EditFilter);
        d.update(Action::EditText(TextEdit::Clear));
        d.update(Action::EditText(TextEdit::Insert('(')));
        assert!(d.filter_error().is_some());
        d.update(Action::CancelEdit);
        assert_eq!((d.filter_text(), d.filter_error(), d.mode()), ("role=db", None, Mode::Browse));
    }

    #[test]
    fn results_update_the_per_node_statuses() {
        let mut d = Discovery::new(Theme::mono());
        let round = started(&mut d);
        let nodes: Vec<String> = ["web-02", "web-01", "db-01"].map(String::from).to_vec();
        d.update(Action::Round { round, event: RoundEvent::Discovered(nodes) });
        assert!(d.rows().iter().all(|r| r.status == NodeStatus::Pending));
        assert_eq!(d.rows()[0].identity, "db-01", "rows are in name order");
        assert_eq!(d.selected().unwrap().identity, "db-01", "a new round selects the first row");
        d.update(Action::Round { round, event: reply("web-01", Status::Ok, "", 1.5) });
        d.update(Action::Round { round, event: reply("db-01", Status::Aborted, "disk full", 3.0) });
        // A stale round's progress is ignored.
        d.update(Action::Round { round: round + 7, event: reply("web-02", Status::Ok, "", 1.0) });
        assert_eq!(d.row("web-01").unwrap().status, NodeStatus::Ok { ms: 1.5 });
        assert_eq!(d.row("web-02").unwrap().status, NodeStatus::Pending);
        assert_eq!(d.tally(), Tally { replied: 2, ok: 1, failed: 1, no_reply: 0, unexpected: 0 });
        d.update(Action::Round { round, event: RoundEvent::Finished { no_reply: vec!["web-02".into()], elapsed_ms: 7000.0 } });
        assert_eq!(d.row("web-02").unwrap().status, NodeStatus::NoReply);
        assert_eq!(
            d.row("db-01").unwrap().status,
            NodeStatus::Failed { status: Status::Aborted, message: "disk full".into(), ms: 3.0 }
        );
        assert_eq!(d.round().unwrap().phase, Phase::Done { elapsed_ms: 7000.0 });
    }

    #[test]
    fn nodes_joining_after_the_round_are_listed_but_not_counted() {
        let mut d = Discovery::new(Theme::mono());
        let round = started(&mut d);
        d.update(Action::Round { round, event: RoundEvent::Discovered(vec!["a".into(), "b".into()]) });
        // While the round runs, membership news waits for the round's own answer.
        d.update(Action::Members { filter: String::new(), nodes: vec!["a".into()] });
        assert_eq!(d.rows().len(), 2);
        d.update(Action::Round { round, event: reply("a", Status::Ok, "", 1.0) });
        d.update(Action::Round { round, event: reply("b", Status::Ok, "", 1.0) });
        d.update(Action::Round { round, event: RoundEvent::Finished { no_reply: vec![], elapsed_ms: 3.0 } });
        d.update(Action::Members { filter: "role=x".into(), nodes: vec![] });
        assert_eq!(d.rows().len(), 2, "another filter's members are ignored");
        d.update(Action::Members { filter: String::new(), nodes: vec!["a".into(), "c".into()] });
        assert!(d.row("b").unwrap().left);
        assert_eq!(d.row("b").unwrap().status, NodeStatus::Ok { ms: 1.0 }, "the round's result stays");
        assert_eq!(d.row("c").unwrap().status, NodeStatus::Joined);
        assert_eq!(d.tally().replied, 2, "joined nodes are not counted in the round");
        d.update(Action::Members { filter: String::new(), nodes: vec!["a".into(), "b".into()] });
        assert!(!d.row("b").unwrap().left);
        assert!(d.row("c").is_none(), "joined and gone again");
    }

    #[test]
    fn the_list_scrolls_only_as_far_as_the_selection_needs() {
        assert_eq!(scroll_top(0, 3, 5, 100), 0);
        assert_eq!(scroll_top(0, 5, 5, 100), 1);
        assert_eq!(scroll_top(10, 12, 5, 100), 10, "moving inside the window keeps it");
        assert_eq!(scroll_top(10, 9, 5, 100), 9);
        assert_eq!(scroll_top(50, 3, 5, 4), 0, "a shorter list pulls the window back");
    }

    #[test]
    fn selection_stays_in_the_list() {
        let mut d = Discovery::new(Theme::mono());
        let round = started(&mut d);
        d.update(Action::SelectPrev);
        d.update(Action::SelectNext);
        assert!(d.selected().is_none());
        d.update(Action::Round { round, event: RoundEvent::Discovered(vec!["a".into(), "b".into()]) });
        for _ in 0..5 {
            d.update(Action::SelectNext);
        }
        assert_eq!(d.selected().unwrap().identity, "b");
        d.update(Action::SelectPrev);
        assert_eq!(d.selected().unwrap().identity, "a");
    }
}
