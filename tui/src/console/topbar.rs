//! The top bar: hub endpoint and link state, nodes alive / seen, a spinner while requests are in
//! flight, the clock; then the filter and scope the next request goes to, the note (e.g. that
//! this is the demo); then the panel tabs.

use std::collections::HashSet;
use std::time::SystemTime;

use fleet_protocol::Event;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::action::{Action, LinkState, PanelId, Scope};
use super::discovery::describe_filter;
use super::theme::Theme;
use super::widgets::text::clock_text;

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

pub struct TopBar {
    theme: Theme,
    /// The configured hubs, shown until one is connected.
    hubs: String,
    link: LinkState,
    /// Nodes the hub has now.
    alive: Option<usize>,
    /// Every node seen since the console started.
    seen: HashSet<String>,
    scope: Scope,
    note: Option<String>,
    read_only: bool,
    clock: String,
    ticks: usize,
}

impl TopBar {
    pub fn new(theme: Theme, hubs: &[String], note: Option<String>, read_only: bool, now: SystemTime) -> TopBar {
        TopBar {
            theme,
            hubs: hubs.join(", "),
            link: LinkState::Connecting,
            alive: None,
            seen: HashSet::new(),
            scope: Scope::default(),
            note,
            read_only,
            clock: clock_text(now),
            ticks: 0,
        }
    }

    pub fn link(&self) -> &LinkState {
        &self.link
    }

    /// (alive, seen since start).
    pub fn nodes(&self) -> Option<(usize, usize)> {
        self.alive.map(|a| (a, self.seen.len()))
    }

    pub fn clock(&self) -> &str {
        &self.clock
    }

    pub fn update(&mut self, action: &Action) {
        match action {
            Action::Tick(now) => {
                self.clock = clock_text(*now);
                self.ticks = self.ticks.wrapping_add(1);
            }
            Action::Link(state) => {
                if !matches!(state, LinkState::Connected { .. }) {
                    self.alive = None;
                }
                self.link = state.clone();
            }
            Action::Nodes(nodes) => {
                self.alive = Some(nodes.len());
                self.seen.extend(nodes.iter().cloned());
            }
            Action::NodeEvent(Event::NodeJoined { identity }) => {
                self.seen.insert(identity.clone());
            }
            Action::ScopeChanged(scope) => self.scope = scope.clone(),
            Action::ThemeChanged(theme) => self.theme = (**theme).clone(),
            _ => {}
        }
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, focus: PanelId, in_flight: usize) {
        let t = &self.theme;
        let [first, second, tabs] = Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Length(1)]).areas(area);
        let (hub, link) = match &self.link {
            LinkState::Connecting => (self.hubs.as_str(), Span::styled("connecting", t.label)),
            LinkState::Connected { hub } => (hub.as_str(), Span::styled("connected", t.link.up)),
            // The last link error, in words, so the admin sees why without opening the log.
            LinkState::Disconnected { reason } => {
                let why = reason.lines().next().unwrap_or_default();
                (self.hubs.as_str(), Span::styled(format!("down ({why}), retrying"), t.link.down))
            }
        };
        let nodes = match self.nodes() {
            Some((alive, seen)) => format!("{alive}/{seen}"),
            None => "-".into(),
        };
        let mut left = vec![
            Span::styled(" fleet ", t.title),
            Span::styled(" hub ", t.label),
            Span::styled(hub.to_string(), t.topbar),
            Span::raw(" "),
            link,
            Span::styled("  nodes ", t.label),
            Span::styled(nodes, t.topbar),
        ];
        if in_flight > 0 {
            left.push(Span::styled(format!("  {} {in_flight} running", SPINNER[self.ticks % SPINNER.len()]), t.spinner));
        }
        if self.read_only {
            left.push(Span::styled("  read-only", t.note));
        }
        let clock = format!("{} ", self.clock);
        let [l, r] = Layout::horizontal([Constraint::Min(0), Constraint::Length(clock.len() as u16)]).areas(first);
        frame.render_widget(Paragraph::new(Line::from(left)).style(t.topbar), l);
        frame.render_widget(Paragraph::new(Span::styled(clock, t.topbar)).style(t.topbar), r);

        let mut filter = vec![Span::styled(" filter ", t.label), Span::styled(describe_filter(&self.scope.filter), t.topbar)];
        if let Some(targets) = &self.scope.targets {
            filter.push(Span::styled(format!("  aimed at {} tagged node(s)", targets.len()), t.row.tagged));
        }
        // The note gives way when the filter and scope need the room.
        let filter_width: usize = filter.iter().map(|s| s.width()).sum();
        let note = self.note.as_deref().map(|n| format!("{n} ")).unwrap_or_default();
        let note = if filter_width + 1 + note.chars().count() <= second.width as usize { note } else { String::new() };
        let [l, r] = Layout::horizontal([Constraint::Min(0), Constraint::Length(note.chars().count() as u16)]).areas(second);
        frame.render_widget(Paragraph::new(Line::from(filter)).style(t.topbar), l);
        frame.render_widget(Paragraph::new(Span::styled(note, t.note)).style(t.topbar), r);

        let mut spans = vec![Span::raw(" ")];
        for p in PanelId::ALL {
            let style = if p == focus { t.tab.active } else { t.tab.inactive };
            spans.push(Span::styled(format!(" {} {} ", p.index() + 1, p.title()), style));
            spans.push(Span::raw(" "));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), tabs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn clock_is_utc_hh_mm_ss() {
        let t = UNIX_EPOCH + Duration::from_secs(19_000 * 86_400 + 12 * 3600 + 34 * 60 + 56);
        assert_eq!(clock_text(t), "12:34:56 UTC");
    }

    #[test]
    fn alive_over_seen() {
        let mut bar = TopBar::new(Theme::mono(), &["h".into()], None, false, UNIX_EPOCH);
        bar.update(&Action::Nodes(vec!["a".into(), "b".into()]));
        bar.update(&Action::Nodes(vec!["a".into()]));
        assert_eq!(bar.nodes(), Some((1, 2)));
        bar.update(&Action::Link(LinkState::Disconnected { reason: "x".into() }));
        assert_eq!(bar.nodes(), None);
    }
}
