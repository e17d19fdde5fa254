//! The Processes panel's key tables: the browsing table (`[processes]` in keys.toml), the
//! pattern/user line (`[processes_line]`), the signal menu (`[signal_menu]`) and the kill
//! confirmation (`[kill_confirm]`), the sort menu (`[sort_menu]`) and the column chooser
//! (`[column_chooser]`). Kill is `K`, `x` or `F9`: `k` and `j` always move, as in
//! every other list, so a vim user's `k` never opens a signal menu.

use crossterm::event::KeyEvent;

use super::{Column, Msg, PanelMode, ProcessesPanel};
use crate::console::action::{Action, TextEdit};
use crate::console::keys::{Binding, Mode, quit_binding};
use crate::console::widgets::input::text_edit;
use crate::console::widgets::list::nav_bindings;

/// The browsing keys: `Mode::Processes` of the shell's keymap. The shell's global keys (`q`,
/// `?`, `:`, `tab`, `1`-`6`, `esc`) stay free.
pub fn key_table() -> Vec<Binding> {
    let mut t = vec![
        Binding::new("edit_pattern", &["/"], Msg::EditPattern, "pattern"),
        Binding::new("tag", &["space"], Msg::ToggleTag, "tag"),
        Binding::new("kill", &["K", "x", "F9"], Msg::Kill, "kill"),
        Binding::new("detail", &["enter"], Msg::Detail, "detail"),
        Binding::new("tree", &["t", "F5"], Msg::ToggleTree, "tree"),
        Binding::new("zombies", &["z"], Msg::ToggleZombies, "zombies only"),
        Binding::new("user", &["u"], Msg::EditUser, "user"),
        Binding::new("sort", &["F6"], Msg::NextSortColumn, "sort"),
        Binding::new("invert_sort", &["I"], Msg::InvertSort, "invert"),
        Binding::new("untag_all", &["U"], Msg::UntagAll, "untag all"),
        Binding::new("sort_left", &["<"], Msg::SortLeft, "sort left"),
        Binding::new("sort_right", &[">"], Msg::SortRight, "sort right"),
        Binding::new("refresh", &["r"], Msg::Refresh, "refresh"),
        Binding::new("sort_cpu", &["P"], Msg::QuickSort(Column::Cpu), "sort CPU"),
        Binding::new("sort_memory", &["M"], Msg::QuickSort(Column::Rss), "sort memory"),
        Binding::new("sort_time", &["T"], Msg::QuickSort(Column::Started), "sort start time"),
        Binding::new("sort_menu", &["s"], Msg::SortMenu, "sort menu"),
        Binding::new("columns", &["c"], Msg::Columns, "columns"),
        Binding::new("scroll_right", &["l", "right"], Msg::ScrollCommand(COMMAND_STEP), "command right"),
        Binding::new("scroll_left", &["h", "left"], Msg::ScrollCommand(-COMMAND_STEP), "command left"),
        Binding::new("copy", &["y"], Msg::CopyKey, "copy host:pid@start"),
    ];
    t.extend(nav_bindings());
    t
}

/// Characters a long command line scrolls by (`h`, `l`).
const COMMAND_STEP: i32 = 16;

/// The sort menu (`s`).
pub fn sort_menu_key_table() -> Vec<Binding> {
    vec![
        Binding::new("choose", &["enter"], Msg::ChooseSort, "sort"),
        Binding::new("cancel", &["esc", "q", "s"], Msg::CloseMenu, "cancel"),
        Binding::new("down", &["down", "j"], Msg::MenuDown, "down"),
        Binding::new("up", &["up", "k"], Msg::MenuUp, "up"),
        quit_binding(),
    ]
}

/// The column chooser (`c`).
pub fn column_chooser_key_table() -> Vec<Binding> {
    vec![
        Binding::new("toggle", &["space", "x"], Msg::ToggleColumn, "show/hide"),
        Binding::new("done", &["esc", "enter", "q", "c"], Msg::CloseMenu, "done"),
        Binding::new("down", &["down", "j"], Msg::MenuDown, "down"),
        Binding::new("up", &["up", "k"], Msg::MenuUp, "up"),
        quit_binding(),
    ]
}

/// The pattern or user line: other keys type.
pub fn line_key_table() -> Vec<Binding> {
    vec![
        Binding::new("apply", &["enter"], Msg::SubmitEdit, "apply"),
        Binding::new("cancel", &["esc"], Msg::CancelEdit, "cancel"),
        Binding::new("clear", &["ctrl-u"], Msg::Edit(TextEdit::Clear), "clear"),
        quit_binding(),
    ]
}

/// The signal menu.
pub fn signal_menu_key_table() -> Vec<Binding> {
    vec![
        Binding::new("choose", &["enter"], Msg::ChooseSignal, "choose"),
        Binding::new("cancel", &["esc", "q"], Msg::Cancel, "cancel"),
        Binding::new("down", &["down", "j"], Msg::MenuDown, "down"),
        Binding::new("up", &["up", "k"], Msg::MenuUp, "up"),
        quit_binding(),
    ]
}

/// The confirmation that lists the exact targets.
pub fn kill_confirm_key_table() -> Vec<Binding> {
    vec![
        Binding::new("send", &["enter"], Msg::Confirm, "send the signal"),
        Binding::new("cancel", &["esc", "q", "n"], Msg::Cancel, "cancel"),
        quit_binding(),
    ]
}

impl PanelMode {
    /// The shell's key table for this state of the panel.
    pub fn keys_mode(self) -> Mode {
        match self {
            PanelMode::Browse => Mode::Processes,
            PanelMode::Edit => Mode::ProcessesLine,
            PanelMode::SignalMenu => Mode::SignalMenu,
            PanelMode::Confirm => Mode::KillConfirm,
            PanelMode::SortMenu => Mode::SortMenu,
            PanelMode::Columns => Mode::ColumnChooser,
        }
    }
}

impl ProcessesPanel {
    /// The key's action in the current mode. The signal menu, the confirmation and the
    /// pattern/user line take every key (their name is in the footer; `esc` leaves them); while
    /// browsing, keys the panel does not bind are left to the shell.
    pub fn on_key(&self, key: KeyEvent) -> Option<Action> {
        let mode = self.mode();
        let action = self.keys.action(mode.keys_mode(), &key);
        if mode == PanelMode::Browse || action.is_some() {
            return action;
        }
        let edit = if mode == PanelMode::Edit { text_edit(&key) } else { None };
        // An empty batch: the key is used up and does nothing.
        Some(edit.map_or(Action::Batch(Vec::new()), |e| Msg::Edit(e).into()))
    }
}
