//! The Xen panel's key table (`[xen]` in keys.toml) and how an open popup or the find line keeps
//! the keyboard.

use crossterm::event::KeyEvent;

use super::{Msg, Popup, XenPanel};
use crate::console::action::{Action, SearchEdit};
use crate::console::keys::{Binding, Key, Mode};
use crate::console::widgets::input::text_edit;
use crate::console::widgets::list::nav_bindings;

/// The Xen panel's key table (`[xen]` in keys.toml).
pub fn key_table() -> Vec<Binding> {
    let mut t = vec![
        Binding::new("migrate", &["m"], Action::Xen(Msg::Migrate), "migrate domU"),
        Binding::new("find", &["/"], Action::Search(SearchEdit::Open), "find domU"),
        Binding::new("plan", &["b"], Action::Xen(Msg::ShowPlan), "balancer plan"),
        Binding::new("apply", &["a"], Action::Xen(Msg::ApplyPlan), "apply plan"),
        Binding::new("select", &["enter"], Action::Xen(Msg::Select), "choose"),
        Binding::new("dom0s", &["h", "left"], Action::Xen(Msg::FocusDom0s), "dom0s"),
        Binding::new("domus", &["l", "right"], Action::Xen(Msg::FocusDomus), "domUs"),
        Binding::new("refresh", &["r"], Action::Xen(Msg::Refresh), "refresh"),
        Binding::new("close", &["esc"], Action::Xen(Msg::Close), "close"),
    ];
    t.extend(nav_bindings());
    t
}

impl XenPanel {
    /// Turns a key into an action. An open popup or the find line keeps every key except ctrl-c;
    /// `esc` with nothing open is left to the shell (back to the previous panel).
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Action> {
        if self.find.is_some() {
            if let Some(action) = self.keys.action(Mode::Search, &key) {
                return Some(action);
            }
            return Some(text_edit(&key).map(|e| Action::Search(SearchEdit::Edit(e))).unwrap_or(Action::Xen(Msg::Swallow)));
        }
        let action = self.keys.action(Mode::Xen, &key);
        if let Some(popup) = &self.popup {
            if Key::of(&key) == Key::ctrl('c') {
                return None;
            }
            let plan = matches!(popup, Popup::Plan { .. });
            return Some(match action {
                Some(a @ (Action::Nav(_) | Action::Xen(Msg::Select | Msg::Close))) => a,
                Some(a @ Action::Xen(Msg::ApplyPlan | Msg::ShowPlan)) if plan => a,
                _ if Key::of(&key) == Key::ch('q') => Action::Xen(Msg::Close),
                _ => Action::Xen(Msg::Swallow),
            });
        }
        match action {
            Some(Action::Xen(Msg::Close)) => None,
            other => other,
        }
    }
}
