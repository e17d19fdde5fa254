//! The Jobs view's key tables: the job list and its nodes (`[jobs]` in keys.toml) and the output
//! view (`[job_output]`). Cancel is `x` or `F9`, like kill in Processes, and always asks first.

use crossterm::event::KeyEvent;

use super::{JobsPanel, Msg};
use crate::console::action::Action;
use crate::console::keys::Binding;
use crate::console::widgets::list::nav_bindings;

/// The job list's keys. The shell's global keys (`q`, `?`, `:`, `tab`, digits, `esc`) stay free.
pub fn key_table() -> Vec<Binding> {
    let mut t = vec![
        Binding::new("output", &["o", "enter"], Action::Jobs(Msg::ShowOutput), "output"),
        Binding::new("cancel", &["x", "F9"], Action::Jobs(Msg::Cancel), "cancel job"),
        Binding::new("nodes", &["l", "right"], Action::Jobs(Msg::FocusNodes), "nodes"),
        Binding::new("jobs", &["h", "left"], Action::Jobs(Msg::FocusJobs), "jobs"),
        Binding::new("refresh", &["r"], Action::Jobs(Msg::Refresh), "refresh"),
        Binding::new("concat", &["]", "["], Action::Jobs(Msg::SwitchView), "concat view"),
    ];
    t.extend(nav_bindings());
    t
}

/// The output view's keys: scrolling, and `esc` back to the list.
pub fn output_key_table() -> Vec<Binding> {
    let mut t = vec![Binding::new("close", &["esc", "o"], Action::Jobs(Msg::CloseOutput), "close output")];
    t.extend(nav_bindings());
    t
}

impl JobsPanel {
    /// The action of `key` in the mode in force; keys the view does not bind go to the shell.
    pub(super) fn on_key(&self, key: KeyEvent) -> Option<Action> {
        self.keys.action(self.mode(), &key)
    }
}
