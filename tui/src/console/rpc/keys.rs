//! The RPC panel's key tables (`[rpc]`, `[rpc_form]` and `[rpc_field]` in keys.toml) and the
//! keys that type into a form field. A field is entered explicitly (`enter`) and left explicitly
//! (`enter` keeps, `esc` undoes): moving around the form never types, so a key meant for the
//! lists or the shell cannot end up in a field.

use crossterm::event::KeyEvent;

use super::{Msg, RpcPanel};
use crate::console::action::{Action, TextEdit};
use crate::console::keys::{Binding, Mode, quit_binding};
use crate::console::widgets::input::text_edit;
use crate::console::widgets::list::nav_bindings;

/// The lists' keys: agents, actions, results.
pub fn key_table() -> Vec<Binding> {
    use Msg as R;
    let mut t = vec![
        Binding::new("select", &["enter", "l", "right"], Action::Rpc(R::Enter), "select"),
        Binding::new("back", &["esc", "h", "left"], Action::Rpc(R::Back), "back"),
        Binding::new("results", &["v"], Action::Rpc(R::ShowResults), "results"),
        Binding::new("refresh", &["r"], Action::Rpc(R::RefreshAgents), "refresh agents"),
    ];
    t.extend(nav_bindings());
    t
}

/// The keys on the form, between fields: nothing types here.
pub fn form_key_table() -> Vec<Binding> {
    use Msg as R;
    vec![
        Binding::new("edit", &["enter", "i"], Action::Rpc(R::Enter), "edit field"),
        Binding::new("submit", &["r", "F5"], Action::Rpc(R::Submit), "run"),
        Binding::new("next_field", &["j", "down", "tab"], Action::Rpc(R::NextField), "next field"),
        Binding::new("prev_field", &["k", "up", "shift-tab"], Action::Rpc(R::PrevField), "previous field"),
        Binding::new("value_next", &["right", "space"], Action::Rpc(R::ValueNext), "next value"),
        Binding::new("value_prev", &["left"], Action::Rpc(R::ValuePrev), "previous value"),
        Binding::new("clear", &["ctrl-u"], Action::Rpc(R::Edit(TextEdit::Clear)), "clear field"),
        Binding::new("back", &["esc"], Action::Rpc(R::Back), "leave form"),
    ]
}

/// The keys while typing in a field; other keys type.
pub fn field_key_table() -> Vec<Binding> {
    use Msg as R;
    vec![
        Binding::new("done", &["enter"], Action::Rpc(R::FieldDone), "done"),
        Binding::new("undo", &["esc"], Action::Rpc(R::FieldUndo), "undo and leave"),
        Binding::new("next_field", &["tab"], Action::Rpc(R::NextField), "next field"),
        Binding::new("prev_field", &["shift-tab"], Action::Rpc(R::PrevField), "previous field"),
        Binding::new("clear", &["ctrl-u"], Action::Rpc(R::Edit(TextEdit::Clear)), "clear"),
        quit_binding(),
    ]
}

impl RpcPanel {
    /// The action of `key` in the mode in force; in a field being edited, other keys type.
    pub(super) fn on_key(&self, key: KeyEvent) -> Option<Action> {
        let mode = self.mode();
        if let Some(action) = self.keys.action(mode, &key) {
            return Some(action);
        }
        if mode == Mode::RpcField {
            // Typing never falls through to the shell: an unbound key is used up.
            return Some(text_edit(&key).map_or(Action::Batch(Vec::new()), |e| Action::Rpc(Msg::Edit(e))));
        }
        None
    }
}
