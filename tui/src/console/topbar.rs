//! The top bar: hub endpoint and link state, live node count, the filter in force, the note (e.g.
//! that this is the demo) and a clock.

use std::time::{SystemTime, UNIX_EPOCH};

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::action::{Action, LinkState};
use super::component::Component;
use super::discovery::describe_filter;
use super::theme::Theme;

/// `HH:MM:SS UTC`. UTC because the local offset cannot be read soundly from a multi-threaded
/// process without a time-zone database crate.
pub fn clock_text(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) % 86_400;
    format!("{:02}:{:02}:{:02} UTC", secs / 3600, secs % 3600 / 60, secs % 60)
}

pub struct TopBar {
    theme: Theme,
    /// The configured hubs, shown until one is connected.
    hubs: String,
    link: LinkState,
    nodes: Option<usize>,
    filter: String,
    note: Option<String>,
    read_only: bool,
    clock: String,
}

impl TopBar {
    pub fn new(theme: Theme, hubs: &[String], note: Option<String>, read_only: bool, now: SystemTime) -> TopBar {
        TopBar {
            theme,
            hubs: hubs.join(", "),
            link: LinkState::Connecting,
            nodes: None,
            filter: String::new(),
            note,
            read_only,
            clock: clock_text(now),
        }
    }

    pub fn link(&self) -> &LinkState {
        &self.link
    }

    pub fn nodes(&self) -> Option<usize> {
        self.nodes
    }

    pub fn clock(&self) -> &str {
        &self.clock
    }
}

impl Component for TopBar {
    fn handle_key(&mut self, _key: KeyEvent) -> Option<Action> {
        None
    }

    fn update(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::Tick(now) => self.clock = clock_text(now),
            Action::Link(state) => {
                if !matches!(state, LinkState::Connected { .. }) {
                    self.nodes = None;
                }
                self.link = state;
            }
            Action::NodeCount(n) => self.nodes = Some(n),
            Action::RunDiscovery { filter, .. } => self.filter = filter,
            _ => {}
        }
        None
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let [first, second] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
        let (hub, link) = match &self.link {
            LinkState::Connecting => (self.hubs.as_str(), Span::styled("connecting", t.label)),
            LinkState::Connected { hub } => (hub.as_str(), Span::styled("connected", t.link.up)),
            LinkState::Disconnected { .. } => (self.hubs.as_str(), Span::styled("disconnected, retrying", t.link.down)),
        };
        let nodes = self.nodes.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        let mut left = vec![
            Span::styled(" fleet ", t.title),
            Span::styled(" hub ", t.label),
            Span::styled(hub.to_string(), t.topbar),
            Span::raw(" "),
            link,
            Span::styled("  nodes ", t.label),
            Span::styled(nodes, t.topbar),
        ];
        if self.read_only {
            left.push(Span::styled("  read-only", t.note));
        }
        let clock = format!("{} ", self.clock);
        let [l, r] = Layout::horizontal([Constraint::Min(0), Constraint::Length(clock.len() as u16)]).areas(first);
        frame.render_widget(Paragraph::new(Line::from(left)).style(t.topbar), l);
        frame.render_widget(Paragraph::new(Span::styled(clock, t.topbar)).style(t.topbar), r);

        let filter = vec![Span::styled(" filter ", t.label), Span::styled(describe_filter(&self.filter), t.topbar)];
        let note = self.note.as_deref().map(|n| format!("{n} ")).unwrap_or_default();
        let [l, r] = Layout::horizontal([Constraint::Min(0), Constraint::Length(note.chars().count() as u16)]).areas(second);
        frame.render_widget(Paragraph::new(Line::from(filter)).style(t.topbar), l);
        frame.render_widget(Paragraph::new(Span::styled(note, t.note)).style(t.topbar), r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn clock_is_utc_hh_mm_ss() {
        let t = UNIX_EPOCH + Duration::from_secs(19_000 * 86_400 + 12 * 3600 + 34 * 60 + 56);
        assert_eq!(clock_text(t), "12:34:56 UTC");
    }
}
