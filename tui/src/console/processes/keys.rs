//! The Processes panel's keys: the browsing table (`[processes]` in keys.toml) and the fixed keys
//! of its popups and pattern/user line, which take every key while open.

use crossterm::event::KeyEvent;

use super::{Msg, PanelMode, ProcessesPanel};
use crate::console::action::{Action, TextEdit};
use crate::console::keys::{Binding, Key, Mode, quit_binding};
use crate::console::widgets::input::text_edit;
use crate::console::widgets::list::nav_bindings_with_up;

/// The browsing keys: `Mode::Processes` of the shell's keymap (rebindable by name in
/// `keys.toml` under `[processes]`; the footer and `?` show them). The shell's global keys
/// (`q`, `?`, `:`, `tab`, `1`-`6`, `esc`) stay free.
pub fn key_table() -> Vec<Binding> {
    let mut t = vec![
        Binding::new("edit_pattern", &["/"], Msg::EditPattern, "pattern"),
        Binding::new("tag", &["space"], Msg::ToggleTag, "tag"),
        Binding::new("kill", &["k", "F9"], Msg::Kill, "kill"),
        Binding::new("zombies", &["z"], Msg::ToggleZombies, "zombies only"),
        Binding::new("user", &["u"], Msg::EditUser, "user"),
        Binding::new("sort", &["F6"], Msg::NextSortColumn, "sort"),
        Binding::new("invert_sort", &["I"], Msg::InvertSort, "invert"),
        Binding::new("untag_all", &["U"], Msg::UntagAll, "untag all"),
        Binding::new("sort_left", &["<"], Msg::SortLeft, "sort left"),
        Binding::new("sort_right", &[">"], Msg::SortRight, "sort right"),
        Binding::new("refresh", &["r"], Msg::Refresh, "refresh"),
    ];
    // `k` is kill here (htop), so up is only the arrow.
    t.extend(nav_bindings_with_up(&["up"]));
    t
}

/// The fixed keys of the panel's own popups and its pattern/user line (not in the keymap:
/// their hints are drawn in the popups themselves).
pub fn popup_table(mode: PanelMode) -> Vec<Binding> {
    match mode {
        PanelMode::Browse => Vec::new(),
        PanelMode::Edit => vec![
            Binding::new("apply", &["enter"], Msg::SubmitEdit, "apply"),
            Binding::new("cancel", &["esc"], Msg::CancelEdit, "cancel"),
            Binding::new("clear", &["ctrl-u"], Msg::Edit(TextEdit::Clear), "clear"),
            quit_binding(),
        ],
        PanelMode::SignalMenu => vec![
            Binding::new("choose", &["enter"], Msg::ChooseSignal, "choose"),
            Binding::new("cancel", &["esc", "q"], Msg::Cancel, "cancel"),
            Binding::new("down", &["down", "j"], Msg::MenuDown, "down"),
            Binding::new("up", &["up", "k"], Msg::MenuUp, "up"),
            quit_binding(),
        ],
        PanelMode::Confirm => {
            vec![
                Binding::new("send", &["enter"], Msg::Confirm, "send the signal"),
                Binding::new("cancel", &["esc", "q", "n"], Msg::Cancel, "cancel"),
                quit_binding(),
            ]
        }
        PanelMode::Results => vec![Binding::new("close", &["esc", "enter", "q"], Msg::Cancel, "close"), quit_binding()],
    }
}

impl ProcessesPanel {
    /// The key's action in the current mode. A popup or the pattern/user line takes every key,
    /// so the shell's global keys cannot act behind it; while browsing, keys the panel does not
    /// bind are left to the shell.
    pub fn on_key(&self, key: KeyEvent) -> Option<Action> {
        let mode = self.mode();
        if mode == PanelMode::Browse {
            return self.keys.action(Mode::Processes, &key);
        }
        let k = Key::of(&key);
        if let Some(b) = popup_table(mode).into_iter().find(|b| b.keys.contains(&k)) {
            return Some(b.action);
        }
        let edit = if mode == PanelMode::Edit { text_edit(&key) } else { None };
        // An empty batch: the key is used up and does nothing.
        Some(edit.map_or(Action::Batch(Vec::new()), |e| Msg::Edit(e).into()))
    }
}
