//! The Discovery panel's key tables (`[discovery]` and `[discovery_filter]` in keys.toml) and
//! the keys that type into its filter and search lines.

use crossterm::event::KeyEvent;

use super::{Discovery, Msg};
use crate::console::action::{Action, SearchEdit, TextEdit};
use crate::console::keys::{Binding, Mode, quit_binding};
use crate::console::widgets::input::text_edit;
use crate::console::widgets::list::nav_bindings;

/// The grid's keys.
pub fn key_table() -> Vec<Binding> {
    use Msg as D;
    let mut t = vec![
        Binding::new("aim", &["a"], Action::Discovery(D::Enter), "aim RPC at tagged"),
        Binding::new("edit_filter", &["f"], Action::Discovery(D::EditFilter), "filter"),
        Binding::new("rerun", &["r"], Action::Discovery(D::Rerun), "run again"),
        Binding::new("tag", &["space"], Action::Discovery(D::ToggleTag), "tag"),
        Binding::new("tag_failed", &["F"], Action::Discovery(D::TagFailed), "tag failed"),
        Binding::new("tag_no_reply", &["N"], Action::Discovery(D::TagNoReply), "tag no reply"),
        Binding::new("tag_all", &["A"], Action::Discovery(D::TagAll), "tag all shown"),
        Binding::new("untag_all", &["U"], Action::Discovery(D::UntagAll), "untag all, stop aiming"),
        Binding::new("sort", &["s", "F6"], Action::Discovery(D::CycleSort), "sort"),
        Binding::new("reverse", &["S"], Action::Discovery(D::ReverseSort), "reverse"),
        Binding::new("search", &["/"], Action::Search(SearchEdit::Open), "search"),
        Binding::new("inspect", &["enter", "i"], Action::Discovery(D::Inspect), "inspect reply"),
    ];
    t.extend(nav_bindings());
    t
}

/// The keys while the filter line is being edited; other keys type.
pub fn filter_key_table() -> Vec<Binding> {
    use Msg as D;
    vec![
        Binding::new("run", &["enter"], Action::Discovery(D::Submit), "run"),
        Binding::new("cancel", &["esc"], Action::Discovery(D::CancelEdit), "cancel"),
        Binding::new("clear", &["ctrl-u"], Action::Discovery(D::EditText(TextEdit::Clear)), "clear"),
        quit_binding(),
    ]
}

impl Discovery {
    /// The action of `key` in the mode in force; in the filter or search line, other keys type.
    pub(super) fn on_key(&self, key: KeyEvent) -> Option<Action> {
        let mode = self.mode();
        if let Some(action) = self.keys.action(mode, &key) {
            return Some(action);
        }
        match mode {
            Mode::DiscoveryFilter => text_edit(&key).map(|e| Action::Discovery(Msg::EditText(e))),
            Mode::Search => text_edit(&key).map(|e| Action::Search(SearchEdit::Edit(e))),
            _ => None,
        }
    }
}
