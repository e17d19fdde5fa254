//! The Metrics view's key table (`[metrics]` in keys.toml). The view sits after the Inventory's
//! Stats tab: `]` goes on to Facts, `[` back to Stats, as `]`/`[` step through those tabs.

use crossterm::event::KeyEvent;

use super::{MetricsView, Msg};
use crate::console::action::Action;
use crate::console::inventory;
use crate::console::keys::Binding;
use crate::console::widgets::list::nav_bindings;

/// The view's keys. The shell's global keys (`q`, `?`, `:`, `tab`, digits, `esc`) stay free.
pub fn key_table() -> Vec<Binding> {
    let mut t = vec![
        Binding::new("next_metric", &["m"], Action::Metrics(Msg::NextMetric), "next metric"),
        Binding::new("prev_metric", &["M"], Action::Metrics(Msg::PrevMetric), "previous metric"),
        Binding::new("processes", &["enter"], Action::Metrics(Msg::OpenProcesses), "processes"),
        Binding::new("zoom", &["z"], Action::Metrics(Msg::Zoom), "zoom"),
        Binding::new("next_profile", &["p"], Action::Metrics(Msg::NextProfile), "next profile"),
        Binding::new("auto_profile", &["P"], Action::Metrics(Msg::UseProfile(None)), "auto profiles"),
        Binding::new("facts", &["]"], Action::Inventory(inventory::Msg::NextTab), "inventory facts"),
        Binding::new("stats", &["["], Action::Inventory(inventory::Msg::PrevTab), "inventory stats"),
    ];
    t.extend(nav_bindings());
    t
}

impl MetricsView {
    /// The action of `key` in the view's table; other keys go to the shell.
    pub(super) fn on_key(&self, key: KeyEvent) -> Option<Action> {
        self.keys.action(self.mode(), &key)
    }
}
