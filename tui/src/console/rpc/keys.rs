//! The RPC panel's key tables (`[rpc]` and `[rpc_form]` in keys.toml) and the keys that type
//! into the form.

use crossterm::event::{KeyCode, KeyEvent};

use super::{Msg, RpcPanel};
use crate::console::action::{Action, TextEdit};
use crate::console::keys::{Binding, Key, Mode, quit_binding};
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

/// The keys while filling in the form; other keys type.
pub fn form_key_table() -> Vec<Binding> {
    use Msg as R;
    vec![
        Binding::new("submit", &["enter"], Action::Rpc(R::Submit), "run"),
        Binding::new("next_field", &["tab", "down"], Action::Rpc(R::NextField), "next field"),
        Binding::new("prev_field", &["shift-tab", "up"], Action::Rpc(R::PrevField), "previous field"),
        Binding::new("value_next", &["right"], Action::Rpc(R::ValueNext), "next value"),
        Binding::new("value_prev", &["left"], Action::Rpc(R::ValuePrev), "previous value"),
        Binding::new("clear", &["ctrl-u"], Action::Rpc(R::Edit(TextEdit::Clear)), "clear field"),
        Binding::new("back", &["esc"], Action::Rpc(R::Back), "leave form"),
        quit_binding(),
    ]
}

impl RpcPanel {
    /// The action of `key` in the mode in force; in the form, other keys edit the field.
    pub(super) fn on_key(&self, key: KeyEvent) -> Option<Action> {
        let mode = self.mode();
        if let Some(action) = self.keys.action(mode, &key) {
            return Some(action);
        }
        if mode == Mode::RpcForm {
            // Space is text in a text field and steps a toggle or picker: Form::edit decides.
            if Key::of(&key).code == KeyCode::Char(' ') {
                return Some(Action::Rpc(Msg::Edit(TextEdit::Insert(' '))));
            }
            return text_edit(&key).map(|e| Action::Rpc(Msg::Edit(e)));
        }
        None
    }
}
