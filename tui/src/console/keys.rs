//! Key bindings: one table of (keys, action, hint) per mode. Key handling, the footer and the `?`
//! help popup all read these tables, so they cannot drift apart; a key bound twice in one mode is
//! a load error (checked by [`validate`] when the console starts).

use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;

/// One key with its modifiers, as written in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub const fn new(code: KeyCode) -> Key {
        Key { code, mods: KeyModifiers::NONE }
    }
    pub const fn ch(c: char) -> Key {
        Key::new(KeyCode::Char(c))
    }
    pub const fn ctrl(c: char) -> Key {
        Key { code: KeyCode::Char(c), mods: KeyModifiers::CONTROL }
    }

    /// The key of a terminal event, with the modifiers that matter. Shift is part of the character
    /// itself (`?`, `G`), so it is dropped for characters.
    pub fn of(ev: &KeyEvent) -> Key {
        let mut mods = ev.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        if matches!(ev.code, KeyCode::Char(_)) {
            mods.remove(KeyModifiers::SHIFT);
        }
        Key { code: ev.code, mods }
    }

    /// A key that types text when an input line has focus.
    pub fn is_text(&self) -> bool {
        matches!(self.code, KeyCode::Char(_)) && (self.mods - KeyModifiers::SHIFT).is_empty()
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("del"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One row of a key table.
#[derive(Debug)]
pub struct Binding {
    /// The first key is the one the footer shows; the help lists them all.
    pub keys: &'static [Key],
    pub action: Action,
    pub hint: &'static str,
}

impl Binding {
    /// All keys for the help popup: `q, ctrl-c`.
    pub fn keys_label(&self) -> String {
        self.keys.iter().map(Key::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// Which table is in force: the top popup's, else the focused panel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The Discovery panel, moving in the node list.
    Browse,
    /// Typing in the filter line; plain characters are text there.
    EditFilter,
    /// The `?` popup is open.
    Help,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Browse, Mode::EditFilter, Mode::Help];

    pub fn title(self) -> &'static str {
        match self {
            Mode::Browse => "Discovery",
            Mode::EditFilter => "Editing the filter",
            Mode::Help => "Help",
        }
    }

    pub fn table(self) -> &'static [Binding] {
        match self {
            Mode::Browse => BROWSE,
            Mode::EditFilter => EDIT_FILTER,
            Mode::Help => HELP,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

static BROWSE: &[Binding] = &[
    Binding { keys: &[Key::ch('q'), Key::ctrl('c')], action: Action::Quit, hint: "quit" },
    Binding { keys: &[Key::ch('/'), Key::ch('f')], action: Action::EditFilter, hint: "filter" },
    Binding { keys: &[Key::new(KeyCode::Enter)], action: Action::Submit, hint: "run" },
    Binding { keys: &[Key::ch('j'), Key::new(KeyCode::Down)], action: Action::SelectNext, hint: "down" },
    Binding { keys: &[Key::ch('k'), Key::new(KeyCode::Up)], action: Action::SelectPrev, hint: "up" },
    Binding { keys: &[Key::ch('?')], action: Action::ToggleHelp, hint: "help" },
];

static EDIT_FILTER: &[Binding] = &[
    Binding { keys: &[Key::new(KeyCode::Enter)], action: Action::Submit, hint: "run" },
    Binding { keys: &[Key::new(KeyCode::Esc)], action: Action::CancelEdit, hint: "cancel" },
    Binding { keys: &[Key::ctrl('u')], action: Action::EditText(super::action::TextEdit::Clear), hint: "clear" },
    Binding { keys: &[Key::ctrl('c')], action: Action::Quit, hint: "quit" },
];

static HELP: &[Binding] = &[
    Binding { keys: &[Key::new(KeyCode::Esc), Key::ch('?'), Key::ch('q')], action: Action::ClosePopup, hint: "close" },
    Binding { keys: &[Key::ctrl('c')], action: Action::Quit, hint: "quit" },
];

/// The binding of `ev` in `mode`, if any.
pub fn lookup(mode: Mode, ev: &KeyEvent) -> Option<&'static Binding> {
    let key = Key::of(ev);
    mode.table().iter().find(|b| b.keys.contains(&key))
}

/// Checks the tables: no key twice in one mode, and no plain character in a text-entry mode
/// (it could never be typed).
pub fn validate(tables: &[(Mode, &[Binding])]) -> anyhow::Result<()> {
    for (mode, table) in tables {
        let mut seen: Vec<(Key, &str)> = Vec::new();
        for b in table.iter() {
            for k in b.keys {
                if let Some((_, first)) = seen.iter().find(|(s, _)| s == k) {
                    anyhow::bail!("key table {mode}: key {k} is bound twice ({first:?} and {:?})", b.hint);
                }
                if *mode == Mode::EditFilter && k.is_text() {
                    anyhow::bail!("key table {mode}: key {k} ({:?}) would shadow typing", b.hint);
                }
                seen.push((*k, b.hint));
            }
        }
    }
    Ok(())
}

/// The console's own tables, as [`validate`] takes them.
pub fn all_tables() -> Vec<(Mode, &'static [Binding])> {
    Mode::ALL.iter().map(|m| (*m, m.table())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEventKind;

    fn press(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new_with_kind(code, mods, KeyEventKind::Press)
    }

    #[test]
    fn tables_have_no_duplicate_bindings() {
        validate(&all_tables()).unwrap();
    }

    #[test]
    fn a_duplicate_binding_is_an_error_that_names_the_key() {
        static DUP: &[Binding] = &[
            Binding { keys: &[Key::ch('q')], action: Action::Quit, hint: "quit" },
            Binding { keys: &[Key::ch('x'), Key::ch('q')], action: Action::ToggleHelp, hint: "help" },
        ];
        let e = validate(&[(Mode::Browse, DUP)]).unwrap_err().to_string();
        assert_eq!(e, "key table Discovery: key q is bound twice (\"quit\" and \"help\")");
    }

    #[test]
    fn a_plain_character_in_the_filter_editor_is_an_error() {
        static BAD: &[Binding] = &[Binding { keys: &[Key::ch('q')], action: Action::Quit, hint: "quit" }];
        let e = validate(&[(Mode::EditFilter, BAD)]).unwrap_err().to_string();
        assert!(e.contains("key q (\"quit\") would shadow typing"), "{e}");
    }

    #[test]
    fn lookup_ignores_shift_on_characters_and_honours_ctrl() {
        let help = lookup(Mode::Browse, &press(KeyCode::Char('?'), KeyModifiers::SHIFT)).unwrap();
        assert_eq!(help.action, Action::ToggleHelp);
        let quit = lookup(Mode::EditFilter, &press(KeyCode::Char('c'), KeyModifiers::CONTROL)).unwrap();
        assert_eq!(quit.action, Action::Quit);
        assert!(lookup(Mode::EditFilter, &press(KeyCode::Char('q'), KeyModifiers::NONE)).is_none());
        assert!(lookup(Mode::Browse, &press(KeyCode::Char('c'), KeyModifiers::NONE)).is_none());
    }

    #[test]
    fn labels() {
        assert_eq!(BROWSE[0].keys_label(), "q, ctrl-c");
        assert_eq!(Key::new(KeyCode::Down).to_string(), "down");
        assert_eq!(Key::ch(' ').to_string(), "space");
    }
}
