//! The Inventory panel's key table (`[inventory]` in keys.toml) and the keys that type into its
//! search lines.

use crossterm::event::KeyEvent;

use super::{Inventory, Msg};
use crate::console::action::{Action, SearchEdit};
use crate::console::keys::{Binding, Mode};
use crate::console::widgets::input::text_edit;
use crate::console::widgets::list::nav_bindings;

/// The panel's keys.
pub fn key_table() -> Vec<Binding> {
    use Msg as I;
    let mut t = vec![
        Binding::new("details", &["l", "right"], Action::Inventory(I::FocusDetails), "details"),
        Binding::new("nodes", &["h", "left"], Action::Inventory(I::FocusNodes), "nodes"),
        Binding::new("next_tab", &["]"], Action::Inventory(I::NextTab), "next tab"),
        Binding::new("prev_tab", &["["], Action::Inventory(I::PrevTab), "previous tab"),
        Binding::new("fold", &["enter", "space"], Action::Inventory(I::Fold), "fold"),
        Binding::new("refresh", &["r"], Action::Inventory(I::Refresh), "refresh"),
        Binding::new("metrics", &["m"], Action::Inventory(I::ShowMetrics), "metrics view"),
        Binding::new("search", &["/"], Action::Search(SearchEdit::Open), "search"),
    ];
    t.extend(nav_bindings());
    t
}

impl Inventory {
    /// The action of `key` in the mode in force; in a search line, other keys type.
    pub(super) fn on_key(&self, key: KeyEvent) -> Option<Action> {
        let mode = self.mode();
        if let Some(action) = self.keys.action(mode, &key) {
            return Some(action);
        }
        if mode == Mode::Search { text_edit(&key).map(|e| Action::Search(SearchEdit::Edit(e))) } else { None }
    }
}
