//! The application: owns the components, routes keys (top popup first, then the focused panel)
//! and actions, and draws the screen. It knows nothing about the terminal or the network: the loop
//! in `mod.rs` feeds it actions and hands [`NetCommand`]s to the network task.

use std::time::SystemTime;

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Paragraph;

use super::action::{Action, NetCommand};
use super::component::Component;
use super::discovery::Discovery;
use super::help::{Help, footer_line};
use super::keys::Mode;
use super::theme::Theme;
use super::topbar::TopBar;

/// Follow-up actions are chained; this bounds a chain so a bug cannot hang the loop.
const MAX_CHAIN: usize = 16;

/// What the application starts from.
pub struct AppInit {
    pub hubs: Vec<String>,
    pub note: Option<String>,
    pub read_only: bool,
    pub theme: Theme,
    /// The clock's first reading (injected so snapshots are stable).
    pub now: SystemTime,
}

pub struct App {
    theme: Theme,
    top: TopBar,
    discovery: Discovery,
    help: Help,
    quit: bool,
    fatal: Option<String>,
    /// Set by `update` when the screen must be redrawn (gitui's `requires_redraw`).
    dirty: bool,
}

impl App {
    pub fn new(init: AppInit) -> App {
        App {
            top: TopBar::new(init.theme.clone(), &init.hubs, init.note, init.read_only, init.now),
            discovery: Discovery::new(init.theme.clone()),
            help: Help::new(init.theme.clone()),
            theme: init.theme,
            quit: false,
            fatal: None,
            dirty: true,
        }
    }

    /// The key table in force: the top popup's, else the focused panel's.
    pub fn mode(&self) -> Mode {
        if self.help.visible() { Mode::Help } else { self.discovery.mode() }
    }

    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    pub fn top_bar(&self) -> &TopBar {
        &self.top
    }

    pub fn help_visible(&self) -> bool {
        self.help.visible()
    }

    pub fn should_quit(&self) -> bool {
        self.quit || self.fatal.is_some()
    }

    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// Applies one action and the follow-ups it produces; work for the network goes to `net`.
    /// Returns whether the screen changed.
    pub fn dispatch(&mut self, action: Action, net: &mut dyn FnMut(NetCommand)) -> bool {
        let mut next = match action {
            Action::Key(key) => self.handle_key(key),
            other => Some(other),
        };
        let mut steps = 0;
        while let Some(action) = next.take() {
            if let Action::RunDiscovery { round, filter } = &action {
                net(NetCommand::Round { round: *round, filter: filter.clone() });
            }
            next = self.update(action);
            steps += 1;
            if steps >= MAX_CHAIN {
                tracing::error!(?next, "action chain too long; dropped the rest");
                break;
            }
        }
        std::mem::take(&mut self.dirty)
    }
}

impl Component for App {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        if self.help.visible() {
            return self.help.handle_key(key);
        }
        self.discovery.handle_key(key)
    }

    fn update(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::Tick(_) => {
                let before = self.top.clock().to_string();
                self.top.update(action);
                // The clock shows seconds; ticks within a second change nothing on screen.
                self.dirty |= self.top.clock() != before;
                return None;
            }
            Action::Key(_) => return None,
            _ => self.dirty = true,
        }
        match action {
            Action::Quit => {
                self.quit = true;
                None
            }
            Action::Fatal(message) => {
                self.fatal = Some(message);
                None
            }
            Action::ToggleHelp | Action::ClosePopup => self.help.update(action),
            Action::Resize { .. } => None,
            Action::NodeCount(_) => self.top.update(action),
            Action::Link(_) | Action::RunDiscovery { .. } => {
                self.top.update(action.clone());
                self.discovery.update(action)
            }
            other => self.discovery.update(other),
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect) {
        let [top, body, footer] = Layout::vertical([Constraint::Length(2), Constraint::Min(0), Constraint::Length(1)]).areas(area);
        self.top.draw(frame, top);
        self.discovery.draw(frame, body);
        frame.render_widget(Paragraph::new(footer_line(self.mode(), &self.theme)), footer);
        self.help.draw(frame, area);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};
    use fleet_protocol::Status;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::console::action::{LinkState, RoundEvent};
    use crate::console::discovery::NodeStatus;

    fn at(h: u64, m: u64, s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(20_000 * 86_400 + h * 3600 + m * 60 + s)
    }

    fn app() -> App {
        App::new(AppInit {
            hubs: vec!["tcp://127.0.0.1:7402".into()],
            note: Some("demo: embedded hub + 5 in-process nodes".into()),
            read_only: false,
            theme: Theme::default_theme(),
            now: at(12, 34, 56),
        })
    }

    fn key(code: KeyCode) -> Action {
        Action::Key(KeyEvent::new_with_kind(code, KeyModifiers::NONE, KeyEventKind::Press))
    }

    fn ctrl(c: char) -> Action {
        Action::Key(KeyEvent::new_with_kind(KeyCode::Char(c), KeyModifiers::CONTROL, KeyEventKind::Press))
    }

    /// Dispatches and returns what went to the network.
    fn send(app: &mut App, action: Action) -> Vec<NetCommand> {
        let mut out = Vec::new();
        app.dispatch(action, &mut |c| out.push(c));
        out
    }

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            send(app, key(KeyCode::Char(c)));
        }
    }

    fn ok(sender: &str, ms: f64) -> RoundEvent {
        RoundEvent::Reply { sender: sender.into(), status: Status::Ok, message: String::new(), ms, expected: true }
    }

    /// The demo after one round: 5 nodes, three ok, one failed, one silent.
    fn demo_app() -> App {
        let mut app = app();
        send(&mut app, Action::Link(LinkState::Connected { hub: "tcp://127.0.0.1:7402".into() }));
        send(&mut app, Action::NodeCount(5));
        let net = send(&mut app, Action::Submit);
        assert_eq!(net, vec![NetCommand::Round { round: 1, filter: String::new() }]);
        let nodes = ["web-01", "web-02", "db-01", "cache-01", "xen-01"].map(String::from).to_vec();
        let round = 1;
        send(&mut app, Action::Round { round, event: RoundEvent::Discovered(nodes) });
        send(&mut app, Action::Round { round, event: ok("web-01", 1.24) });
        send(&mut app, Action::Round { round, event: ok("db-01", 2.61) });
        send(&mut app, Action::Round { round, event: ok("web-02", 1.87) });
        send(
            &mut app,
            Action::Round {
                round,
                event: RoundEvent::Reply {
                    sender: "cache-01".into(),
                    status: Status::Aborted,
                    message: "redis is not running".into(),
                    ms: 3.4,
                    expected: true,
                },
            },
        );
        app
    }

    fn render(app: &App, cols: u16, rows: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
        terminal.draw(|f| app.draw(f, f.area())).unwrap();
        terminal.backend().to_string()
    }

    #[test]
    fn discovery_panel_80x24() {
        let mut app = demo_app();
        send(&mut app, Action::Round { round: 1, event: RoundEvent::Finished { no_reply: vec!["xen-01".into()], elapsed_ms: 7012.0 } });
        send(&mut app, key(KeyCode::Down));
        insta::assert_snapshot!(render(&app, 80, 24));
    }

    #[test]
    fn discovery_panel_160x48() {
        let mut app = demo_app();
        send(&mut app, Action::Round { round: 1, event: RoundEvent::Finished { no_reply: vec!["xen-01".into()], elapsed_ms: 7012.0 } });
        insta::assert_snapshot!(render(&app, 160, 48));
    }

    #[test]
    fn round_in_progress_80x24() {
        let app = demo_app();
        insta::assert_snapshot!(render(&app, 80, 24));
    }

    #[test]
    fn filter_error_80x24() {
        let mut app = demo_app();
        send(&mut app, key(KeyCode::Char('/')));
        type_text(&mut app, "country=uk and");
        insta::assert_snapshot!(render(&app, 80, 24));
    }

    #[test]
    fn help_popup_80x24() {
        let mut app = demo_app();
        send(&mut app, key(KeyCode::Char('?')));
        insta::assert_snapshot!(render(&app, 80, 24));
    }

    #[test]
    fn disconnected_80x24() {
        let mut app = app();
        send(&mut app, Action::Submit);
        send(&mut app, Action::Link(LinkState::Disconnected { reason: "no hub reachable".into() }));
        insta::assert_snapshot!(render(&app, 80, 24));
    }

    #[test]
    fn renders_at_any_size_without_panicking() {
        let mut editing = demo_app();
        send(&mut editing, key(KeyCode::Char('/')));
        type_text(&mut editing, "country=uk and (role=web or");
        let mut help = demo_app();
        send(&mut help, key(KeyCode::Char('?')));
        assert!(help.help_visible());
        for (cols, rows) in [(1, 1), (10, 3), (20, 5), (40, 10), (79, 23), (300, 100)] {
            render(&editing, cols, rows);
            render(&help, cols, rows);
        }
    }

    #[test]
    fn a_long_list_scrolls_with_the_selection() {
        let mut app = app();
        send(&mut app, Action::Submit);
        let nodes: Vec<String> = (0..100).map(|i| format!("node-{i:03}")).collect();
        send(&mut app, Action::Round { round: 1, event: RoundEvent::Discovered(nodes) });
        for _ in 0..30 {
            send(&mut app, key(KeyCode::Char('j')));
        }
        let screen = render(&app, 80, 24);
        assert!(screen.contains("> node-030") && !screen.contains("node-000"), "{screen}");
        // Going back up moves the marker inside the window before the window moves.
        send(&mut app, key(KeyCode::Char('k')));
        let screen = render(&app, 80, 24);
        assert!(screen.contains("> node-029") && screen.contains("node-030"), "{screen}");
    }

    #[test]
    fn keys_route_to_the_popup_first() {
        let mut app = demo_app();
        send(&mut app, key(KeyCode::Char('?')));
        assert_eq!(app.mode(), Mode::Help);
        // j is not a help key: the list below does not move.
        let before = app.discovery().selected().cloned();
        send(&mut app, key(KeyCode::Char('j')));
        assert_eq!(app.discovery().selected().cloned(), before);
        send(&mut app, key(KeyCode::Esc));
        assert_eq!(app.mode(), Mode::Browse);
        send(&mut app, key(KeyCode::Char('j')));
        assert_ne!(app.discovery().selected().cloned(), before);
    }

    #[test]
    fn q_types_in_the_filter_but_quits_elsewhere() {
        let mut app = demo_app();
        send(&mut app, key(KeyCode::Char('f')));
        type_text(&mut app, "q");
        assert!(!app.should_quit());
        assert_eq!(app.discovery().filter_text(), "q");
        send(&mut app, key(KeyCode::Esc));
        send(&mut app, key(KeyCode::Char('q')));
        assert!(app.should_quit());
        let mut app = demo_app();
        send(&mut app, key(KeyCode::Char('/')));
        send(&mut app, ctrl('c'));
        assert!(app.should_quit());
    }

    #[test]
    fn enter_runs_the_typed_filter_and_the_top_bar_follows() {
        let mut app = demo_app();
        send(&mut app, key(KeyCode::Char('/')));
        type_text(&mut app, "country=uk and role=web");
        let net = send(&mut app, key(KeyCode::Enter));
        assert_eq!(net, vec![NetCommand::Round { round: 2, filter: "country=uk and role=web".into() }]);
        assert_eq!(app.discovery().round().unwrap().id, 2);
        assert!(app.discovery().rows().is_empty());
        // Late progress of round 1 does not leak into round 2.
        send(&mut app, Action::Round { round: 1, event: ok("xen-01", 9.0) });
        assert!(app.discovery().rows().is_empty());
        let screen = render(&app, 80, 24);
        assert!(screen.contains("filter country=uk and role=web"), "{screen}");
    }

    #[test]
    fn results_update_statuses_through_the_app() {
        let mut app = demo_app();
        assert_eq!(app.discovery().row("xen-01").unwrap().status, NodeStatus::Pending);
        send(&mut app, Action::Round { round: 1, event: RoundEvent::Finished { no_reply: vec!["xen-01".into()], elapsed_ms: 7000.0 } });
        assert_eq!(app.discovery().row("xen-01").unwrap().status, NodeStatus::NoReply);
        assert_eq!(app.discovery().row("web-01").unwrap().status, NodeStatus::Ok { ms: 1.24 });
    }

    #[test]
    fn redraw_only_when_something_changed() {
        let mut app = demo_app();
        let mut none = |_c: NetCommand| {};
        assert!(!app.dispatch(Action::Tick(at(12, 34, 56)), &mut none), "same second");
        assert!(app.dispatch(Action::Tick(at(12, 34, 57)), &mut none));
        assert!(!app.dispatch(key(KeyCode::Char('x')), &mut none), "an unbound key");
        assert!(app.dispatch(key(KeyCode::Char('j')), &mut none));
        assert_eq!(app.top_bar().clock(), "12:34:57 UTC");
    }
}
