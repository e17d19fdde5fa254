//! The Concat view's key tables: its lists (`[concat]` in keys.toml) and the diff
//! (`[concat_diff]`). Building is `b` and always asks first.

use crossterm::event::KeyEvent;

use super::{ConcatView, Msg};
use crate::console::action::Action;
use crate::console::keys::Binding;
use crate::console::widgets::list::nav_bindings;

/// The targets and the open target's nodes. `esc` on the targets is left to the shell.
pub fn key_table() -> Vec<Binding> {
    let mut t = vec![
        Binding::new("open", &["enter", "l", "right"], Action::Concat(Msg::Select), "dry run / diff"),
        Binding::new("build", &["b"], Action::Concat(Msg::Build), "build"),
        Binding::new("back", &["esc", "h", "left"], Action::Concat(Msg::Back), "back"),
        Binding::new("refresh", &["r"], Action::Concat(Msg::Refresh), "refresh"),
        Binding::new("jobs", &["]", "["], Action::Jobs(crate::console::jobs::Msg::SwitchView), "jobs view"),
    ];
    t.extend(nav_bindings());
    t
}

/// The diff of one node: scrolling, and back to the nodes.
pub fn diff_key_table() -> Vec<Binding> {
    let mut t = vec![Binding::new("close", &["esc", "h", "left", "enter"], Action::Concat(Msg::Back), "close diff")];
    t.extend(nav_bindings());
    t
}

impl ConcatView {
    /// The action of `key` in the mode in force. `esc` with nothing open goes to the shell.
    pub(super) fn on_key(&self, key: KeyEvent) -> Option<Action> {
        match self.keys.action(self.mode(), &key) {
            Some(Action::Concat(Msg::Back)) if self.opened.is_none() => None,
            other => other,
        }
    }
}
