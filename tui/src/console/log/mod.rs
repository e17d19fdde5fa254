//! The Log panel: every request this console sent (discovery rounds and RPCs) and every kill and
//! migration, newest first, with its id, time, filter, target count, ok / failed / no reply and
//! duration. `enter` reopens a request's results in the RPC panel (where `enter` on a reply
//! inspects it); `i` opens the whole request, every reply in full, in the inspector. Its key table is
//! [`key_table`]. With a [`LogStore`] the history is kept across restarts (`store`).

mod store;

pub use store::{FILE_NAME, LogStore};

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use serde_json::Map;

use super::action::{Action, PanelId, RequestEvent, Scope, SearchEdit};
use super::component::{Component, PanelContext};
use super::keys::{Binding, Keymap, Mode};
use super::record::{RequestKey, RequestRecord, RequestState};
use super::rpc::short_id;
use super::theme::Theme;
use super::widgets::block;
use super::widgets::input::text_edit;
use super::widgets::list::{nav_bindings, scroll_top};
use super::widgets::search::Search;
use super::widgets::text::clock_text;

/// Requests kept (on screen and on disk); older ones are dropped.
pub const KEEP: usize = 500;

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Reopen,
    /// The whole request in the inspector, without leaving the Log.
    Inspect,
}

/// The Log panel's keys (`[log]` in keys.toml).
pub fn key_table() -> Vec<Binding> {
    let mut t = vec![
        Binding::new("reopen", &["enter"], Action::Log(Msg::Reopen), "reopen results"),
        Binding::new("inspect", &["i"], Action::Log(Msg::Inspect), "inspect"),
        Binding::new("search", &["/"], Action::Search(SearchEdit::Open), "search"),
    ];
    t.extend(nav_bindings());
    t
}

pub struct LogPanel {
    theme: Theme,
    keys: Arc<Keymap>,
    /// Oldest first.
    records: VecDeque<RequestRecord>,
    /// Position in the shown (newest first, searched) list.
    cursor: usize,
    search: Search,
    now: SystemTime,
    top: std::cell::Cell<usize>,
    page: std::cell::Cell<usize>,
    /// Where finished records are saved; `None` keeps them in memory only (tests).
    store: Option<LogStore>,
    /// The number the next finished-on-arrival record gets (`RequestKey::Done`).
    next_done: u64,
}

impl LogPanel {
    pub fn new(ctx: &PanelContext) -> LogPanel {
        LogPanel {
            theme: ctx.theme.clone(),
            keys: ctx.keys.clone(),
            records: VecDeque::new(),
            cursor: 0,
            search: Search::default(),
            now: SystemTime::UNIX_EPOCH,
            top: Default::default(),
            page: std::cell::Cell::new(10),
            store: None,
            next_done: 1,
        }
    }

    /// Keeps the history in `store`, starting from what it holds (an earlier console's requests).
    pub fn with_store(mut self, mut store: LogStore) -> LogPanel {
        let past = store.load();
        self.next_done = past.len() as u64 + 1;
        self.records = past.into();
        self.store = Some(store);
        self
    }

    pub fn mode(&self) -> Mode {
        if self.search.editing() { Mode::Search } else { Mode::Log }
    }

    pub fn records(&self) -> impl Iterator<Item = &RequestRecord> {
        self.records.iter()
    }

    /// How many requests are still waiting for replies.
    pub fn in_flight(&self) -> usize {
        self.records.iter().rev().take(32).filter(|r| r.running()).count()
    }

    /// Newest first, searched.
    pub fn shown(&self) -> Vec<&RequestRecord> {
        self.records
            .iter()
            .rev()
            .filter(|r| {
                let what = r.what();
                self.search.matches([what.as_str(), r.scope.filter.as_str(), r.request_id.as_deref().unwrap_or("")])
            })
            .collect()
    }

    fn push(&mut self, record: RequestRecord) {
        if self.records.len() == KEEP {
            self.records.pop_front();
        }
        self.records.push_back(record);
        // The cursor stays on the newest request: what was just sent is what one looks for.
        self.cursor = 0;
    }

    /// Applies a live request's event; a request that is over is saved.
    fn follow(&mut self, key: RequestKey, event: &RequestEvent) {
        // Live requests are the newest ones.
        let Some(r) = self.records.iter_mut().rev().find(|r| r.key == key) else { return };
        let was_running = r.running();
        r.apply(event);
        if was_running && !r.running() {
            let done = r.clone();
            self.save(&done);
        }
    }

    fn save(&mut self, record: &RequestRecord) {
        if let Some(store) = &mut self.store {
            store.append(record, self.records.iter().cloned());
        }
    }

    fn row(&self, r: &RequestRecord, wide: bool) -> Row<'static> {
        let t = &self.theme;
        let scope = match &r.scope.targets {
            Some(targets) => format!("{} selected", targets.len()),
            None if r.scope.filter.is_empty() => "(all nodes)".to_string(),
            None => r.scope.filter.clone(),
        };
        let n = |x: usize| x.to_string();
        let (duration, style) = match &r.state {
            RequestState::Running => ("running".to_string(), t.spinner),
            RequestState::Done { elapsed_ms } => (format!("{elapsed_ms:.0} ms"), t.text),
            RequestState::Failed(_) => ("failed".to_string(), t.error),
        };
        let mut cells = vec![Cell::from(clock_text(r.started).trim_end_matches(" UTC").to_string())];
        if wide {
            cells.push(Cell::from(r.request_id.as_deref().map(short_id).unwrap_or_else(|| "-".into())));
        }
        cells.extend([
            Cell::from(r.what()),
            Cell::from(scope),
            Cell::from(Line::from(r.target_count().map(n).unwrap_or_else(|| "-".into())).right_aligned()),
            Cell::from(Line::from(Span::styled(n(r.ok_count()), t.status.ok)).right_aligned()),
            Cell::from(Line::from(Span::styled(n(r.failed_count()), t.status.failed)).right_aligned()),
            Cell::from(Line::from(Span::styled(n(r.no_reply.len()), t.status.no_reply)).right_aligned()),
            Cell::from(Line::from(Span::styled(duration, style)).right_aligned()),
        ]);
        Row::new(cells)
    }
}

impl Component for LogPanel {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        let mode = self.mode();
        if let Some(action) = self.keys.action(mode, &key) {
            return Some(action);
        }
        if mode == Mode::Search { text_edit(&key).map(|e| Action::Search(SearchEdit::Edit(e))) } else { None }
    }

    fn update(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::Tick(now) => self.now = now,
            Action::RunDiscovery { round, filter } => {
                let record = RequestRecord::new(RequestKey::Round(round), "rpcutil", "ping", Map::new(), Scope::filter(&filter), self.now);
                self.push(record);
            }
            Action::RequestStarted(info) => {
                let record = RequestRecord::new(
                    RequestKey::Rpc(info.id),
                    &info.agent,
                    &info.action,
                    info.args.clone(),
                    info.scope.clone(),
                    info.started,
                );
                self.push(record);
            }
            Action::Round { round, event } => self.follow(RequestKey::Round(round), &event),
            Action::Request { id, event } => self.follow(RequestKey::Rpc(id), &event),
            Action::Logged(mut record) => {
                record.key = RequestKey::Done(self.next_done);
                self.next_done += 1;
                self.push((*record).clone());
                self.save(&record);
            }
            Action::Log(Msg::Reopen) => {
                let record = self.shown().get(self.cursor).map(|r| (*r).clone())?;
                return Some(Action::Batch(vec![Action::Reopen(Box::new(record)), Action::FocusPanel(PanelId::Rpc)]));
            }
            Action::Log(Msg::Inspect) => {
                let record = self.shown().get(self.cursor).map(|r| super::inspector::record(r))?;
                return Some(Action::Inspect(Box::new(record)));
            }
            Action::Nav(nav) => self.cursor = nav.step(self.cursor, self.shown().len(), self.page.get()),
            Action::Search(edit) if self.search.apply(edit) => self.cursor = 0,
            Action::ThemeChanged(theme) => self.theme = *theme,
            _ => {}
        }
        None
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let shown = self.shown();
        let pane = block::pane(t, format!(" Log: {} request(s) ", self.records.len()), true);
        let inner = pane.inner(area);
        frame.render_widget(pane, area);
        let search = self.search.line(t, shown.len(), self.records.len());
        let [search_area, table_area] =
            Layout::vertical([Constraint::Length(u16::from(search.is_some())), Constraint::Min(0)]).areas(inner);
        if let Some(line) = search {
            frame.render_widget(Paragraph::new(line), search_area);
        }
        if self.records.is_empty() {
            frame.render_widget(Paragraph::new(Span::styled("no requests yet", t.label)), table_area);
            return;
        }
        let wide = inner.width >= 100;
        let mut header = vec!["TIME"];
        let mut widths = vec![Constraint::Length(8)];
        if wide {
            header.push("ID");
            widths.push(Constraint::Length(8));
        }
        header.extend(["REQUEST", "FILTER / TARGETS", "NODES", "OK", "FAIL", "NO REPLY", "DURATION"]);
        widths.extend([
            Constraint::Length(if wide { 24 } else { 16 }),
            Constraint::Fill(1),
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Length(4),
            Constraint::Length(8),
            Constraint::Length(9),
        ]);
        let visible = (table_area.height as usize).saturating_sub(1).max(1);
        self.page.set(visible);
        let cursor = self.cursor.min(shown.len().saturating_sub(1));
        let top = scroll_top(self.top.get(), cursor, visible, shown.len());
        self.top.set(top);
        let rows: Vec<Row> = shown
            .iter()
            .enumerate()
            .skip(top)
            .take(visible)
            .map(|(i, r)| {
                let row = self.row(r, wide);
                if i == cursor { row.style(t.row.selected) } else { row }
            })
            .collect();
        let header = Row::new(header.into_iter().map(Cell::from).collect::<Vec<_>>()).style(t.table.header);
        frame.render_widget(Table::new(rows, widths).header(header).column_spacing(1), table_area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::action::{Nav, ReplyRow, RequestInfo};
    use fleet_protocol::Status;

    fn panel() -> LogPanel {
        LogPanel::new(&PanelContext { theme: Theme::mono(), keys: Default::default(), read_only: false, scope: Scope::default() })
    }

    #[test]
    fn the_log_records_rounds_and_rpcs_and_reopens_them() {
        let mut p = panel();
        p.update(Action::RunDiscovery { round: 1, filter: "role=web".into() });
        p.update(Action::Round { round: 1, event: RequestEvent::Discovered(vec!["a".into(), "b".into()]) });
        p.update(Action::Round { round: 1, event: RequestEvent::Reply(Box::new(ReplyRow::new("a", Status::Ok, "", 1.0))) });
        p.update(Action::Round { round: 1, event: RequestEvent::Finished { no_reply: vec!["b".into()], down: vec![], elapsed_ms: 5.0 } });
        let info = RequestInfo {
            id: 1,
            agent: "echo".into(),
            action: "echo".into(),
            args: Map::new(),
            scope: Scope::default(),
            timeout: std::time::Duration::from_secs(5),
            started: SystemTime::UNIX_EPOCH,
            rollout: None,
        };
        p.update(Action::RequestStarted(Box::new(info)));
        assert_eq!(p.in_flight(), 1);
        let shown: Vec<String> = p.shown().iter().map(|r| r.what()).collect();
        assert_eq!(shown, ["echo#echo", "rpcutil#ping"], "newest first");
        p.update(Action::Nav(Nav::Down));
        let Some(Action::Batch(actions)) = p.update(Action::Log(Msg::Reopen)) else { panic!() };
        let Action::Reopen(record) = &actions[0] else { panic!() };
        assert_eq!((record.key, record.ok_count(), record.no_reply.len()), (RequestKey::Round(1), 1, 1));
        assert_eq!(actions[1], Action::FocusPanel(PanelId::Rpc));
    }

    #[test]
    fn the_log_keeps_the_newest_requests() {
        let mut p = panel();
        for round in 0..(KEEP as u64 + 5) {
            p.update(Action::RunDiscovery { round, filter: String::new() });
        }
        assert_eq!(p.records().count(), KEEP);
        assert_eq!(p.records().next().unwrap().key, RequestKey::Round(5));
    }
}
