//! The top bar: hub endpoint and link state, nodes alive / seen, a spinner while requests are in
//! flight, the clock; then the filter and what the next request is aimed at (the tagged nodes,
//! until `U` in Discovery clears them), the note (e.g. that this is the demo); then the panel
//! tabs. On a narrow terminal items give way in a fixed order, never overlapping.

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
use super::widgets::text::{clock_text, fit_line};

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
        frame.render_widget(Paragraph::new(self.status_line(first.width as usize, in_flight)).style(t.topbar), first);
        frame.render_widget(Paragraph::new(self.scope_line(second.width as usize)).style(t.topbar), second);

        let mut spans = vec![Span::raw(" ")];
        for p in PanelId::ALL {
            let style = if p == focus { t.tab.active } else { t.tab.inactive };
            // Narrow terminals get the tab numbers only.
            let label = if tabs.width >= 60 { format!(" {} {} ", p.index() + 1, p.title()) } else { format!(" {} ", p.index() + 1) };
            spans.push(Span::styled(label, style));
            spans.push(Span::raw(" "));
        }
        frame.render_widget(Paragraph::new(fit_line(spans, tabs.width as usize)), tabs);
    }

    /// The first line: hub, link, nodes, spinner, read-only on the left, the clock on the right.
    /// What does not fit gives way in a fixed order (spinner, clock, link state, nodes,
    /// read-only), so nothing overlaps; the hub address is cut with an ellipsis last of all.
    fn status_line(&self, width: usize, in_flight: usize) -> Line<'static> {
        let t = &self.theme;
        let (hub, link) = match &self.link {
            LinkState::Connecting => (self.hubs.as_str(), Span::styled(" connecting", t.label)),
            LinkState::Connected { hub } => (hub.as_str(), Span::styled(" connected", t.link.up)),
            // The last link error, in words, so the admin sees why without opening the log.
            LinkState::Disconnected { reason } => {
                let why = reason.lines().next().unwrap_or_default();
                (self.hubs.as_str(), Span::styled(format!(" down ({why}), retrying"), t.link.down))
            }
        };
        let nodes = match self.nodes() {
            Some((alive, seen)) => format!("{alive}/{seen}"),
            None => "-".into(),
        };
        // (priority: lower stays longer, spans); the clock is the last item, drawn on the right.
        let mut items: Vec<(u8, Vec<Span<'static>>)> = vec![
            (0, vec![Span::styled(" fleet ", t.title), Span::styled(" hub ", t.label), Span::styled(hub.to_string(), t.topbar)]),
            (3, vec![link]),
            (2, vec![Span::styled("  nodes ", t.label), Span::styled(nodes, t.topbar)]),
        ];
        if in_flight > 0 {
            items.push((5, vec![Span::styled(format!("  {} {in_flight} running", SPINNER[self.ticks % SPINNER.len()]), t.spinner)]));
        }
        if self.read_only {
            items.push((1, vec![Span::styled("  read-only", t.note)]));
        }
        let clock = (4, vec![Span::styled(format!(" {} ", self.clock), t.topbar)]);
        let width_of = |spans: &[Span]| spans.iter().map(Span::width).sum::<usize>();
        let mut shown: Vec<bool> = vec![true; items.len() + 1];
        let total = |shown: &[bool]| {
            items.iter().zip(shown).filter(|(_, s)| **s).map(|((_, sp), _)| width_of(sp)).sum::<usize>()
                + if shown[items.len()] { width_of(&clock.1) } else { 0 }
        };
        for drop in (1..=5u8).rev() {
            if total(&shown) <= width {
                break;
            }
            if clock.0 == drop {
                shown[items.len()] = false;
            }
            for (i, (prio, _)) in items.iter().enumerate() {
                if *prio == drop {
                    shown[i] = false;
                }
            }
        }
        let mut left: Vec<Span<'static>> = items.iter().zip(&shown).filter(|(_, s)| **s).flat_map(|((_, sp), _)| sp.clone()).collect();
        if shown[items.len()] {
            let pad = width.saturating_sub(width_of(&left) + width_of(&clock.1));
            left.push(Span::styled(" ".repeat(pad), t.topbar));
            left.extend(clock.1);
        }
        fit_line(left, width)
    }

    /// The second line: the filter, what the next request is aimed at, and the note (which gives
    /// way first).
    fn scope_line(&self, width: usize) -> Line<'static> {
        let t = &self.theme;
        let mut spans = vec![Span::styled(" filter ", t.label), Span::styled(describe_filter(&self.scope.filter), t.topbar)];
        if let Some(targets) = &self.scope.targets {
            let n = targets.len();
            spans.push(Span::styled(
                format!("  aimed at {n} tagged node{} (U in Discovery clears)", if n == 1 { "" } else { "s" }),
                t.row.tagged,
            ));
        }
        let used: usize = spans.iter().map(Span::width).sum();
        if let Some(note) = &self.note
            && used + 2 + note.chars().count() < width
        {
            let pad = width - used - note.chars().count() - 1;
            spans.push(Span::raw(" ".repeat(pad)));
            spans.push(Span::styled(format!("{note} "), t.note));
        }
        fit_line(spans, width)
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
