//! The inspector's key tables: `[inspector]` while reading, `[inspector_path]` while typing the
//! path `w` writes to. Reading keys the table does not bind go on to the shell, so `1`-`6`, `?`
//! and `:` work with the inspector open.

use crossterm::event::KeyEvent;

use super::{Inspector, Msg};
use crate::console::action::{Action, Nav, TextEdit};
use crate::console::keys::{Binding, Keymap, Mode, quit_binding};
use crate::console::widgets::input::text_edit;

pub fn key_table() -> Vec<Binding> {
    vec![
        Binding::new("close", &["esc", "q", "enter"], Msg::Close, "close"),
        Binding::new("copy", &["y"], Msg::Copy, "copy (OSC 52)"),
        Binding::new("write", &["w"], Msg::AskPath, "write to a file"),
        Binding::new("down", &["j", "down"], Msg::Scroll(Nav::Down), "scroll"),
        Binding::new("up", &["k", "up"], Msg::Scroll(Nav::Up), "scroll up"),
        Binding::new("page_down", &["pgdn", "space"], Msg::Scroll(Nav::PageDown), "page down"),
        Binding::new("page_up", &["pgup"], Msg::Scroll(Nav::PageUp), "page up"),
        Binding::new("top", &["g", "home"], Msg::Scroll(Nav::Top), "top"),
        Binding::new("bottom", &["G", "end"], Msg::Scroll(Nav::Bottom), "bottom"),
    ]
}

pub fn path_key_table() -> Vec<Binding> {
    vec![
        Binding::new("write", &["enter"], Msg::Write, "write"),
        Binding::new("cancel", &["esc"], Msg::CancelPath, "cancel"),
        Binding::new("clear", &["ctrl-u"], Msg::PathEdit(TextEdit::Clear), "clear"),
        quit_binding(),
    ]
}

impl Inspector {
    /// The key's action: a binding of the mode in force; while typing the path, other keys
    /// type; while reading, `None` leaves the key to the shell.
    pub fn on_key(&self, keys: &Keymap, key: &KeyEvent) -> Option<Action> {
        let mode = self.mode();
        if let Some(action) = keys.action(mode, key) {
            return Some(action);
        }
        if mode == Mode::InspectorPath {
            return Some(text_edit(key).map_or(Action::Batch(Vec::new()), |e| Msg::PathEdit(e).into()));
        }
        None
    }
}
