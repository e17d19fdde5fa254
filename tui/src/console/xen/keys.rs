//! The Xen panel's key tables (`[xen]`, `[xen_destinations]`, `[xen_plan]` in keys.toml) and how
//! an open popup or the find line keeps the keyboard.

use crossterm::event::KeyEvent;

use super::{Msg, XenPanel};
use crate::console::action::{Action, SearchEdit};
use crate::console::keys::{Binding, Mode};
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

/// The destinations popup's table: choose where the domU goes, or close.
pub fn destinations_key_table() -> Vec<Binding> {
    let mut t = vec![
        Binding::new("select", &["enter"], Action::Xen(Msg::Select), "migrate there"),
        Binding::new("close", &["esc", "q"], Action::Xen(Msg::Close), "cancel"),
    ];
    t.extend(nav_bindings());
    t
}

/// The plan popup's table: apply it, scroll it, or close it.
pub fn plan_key_table() -> Vec<Binding> {
    let mut t = vec![
        Binding::new("apply", &["a"], Action::Xen(Msg::ApplyPlan), "apply plan"),
        Binding::new("close", &["esc", "q", "b"], Action::Xen(Msg::Close), "close"),
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
        // A popup has its own table, named in the footer; keys it does not use fall through to
        // the global ones (panel digits, help, command line), so nothing is trapped.
        let action = self.keys.action(self.mode(), &key);
        if self.popup.is_some() {
            return action;
        }
        match action {
            Some(Action::Xen(Msg::Close)) => None,
            other => other,
        }
    }
}
