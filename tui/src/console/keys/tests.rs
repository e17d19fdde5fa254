//! The key tables and keys.toml: parsing keys, lookups, rebinding by name, and the errors a
//! bad file gets.

use super::*;
use crossterm::event::KeyEventKind;
use crossterm::event::{KeyCode, KeyModifiers};

fn press(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
    KeyEvent::new_with_kind(code, mods, KeyEventKind::Press)
}

#[test]
fn compiled_in_tables_are_valid() {
    Keymap::defaults().validate().unwrap();
    for mode in Mode::ALL {
        let mut names: Vec<&str> = Keymap::defaults().table(mode).iter().map(|b| b.name).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(n, names.len(), "binding names are unique in {mode}");
    }
}

#[test]
fn keys_parse_and_print_the_same_way() {
    for text in ["q", "G", "?", "space", "enter", "esc", "tab", "shift-tab", "up", "pgdn", "F9", "ctrl-c", "alt-x", "/", "[", "]"] {
        assert_eq!(Key::parse(text).unwrap().to_string(), text);
    }
    assert_eq!(Key::parse("ctrl-C").unwrap(), Key::ctrl('c'));
    assert!(Key::parse("ctrl-").unwrap_err().contains("unknown key \"ctrl-\""));
    assert!(Key::parse("hyper-x").is_err());
    assert!(Key::parse("F99").is_err());
    assert!(Key::parse("").is_err());
}

#[test]
fn lookup_ignores_shift_on_characters_and_backtab_and_honours_ctrl() {
    let keys = Keymap::defaults();
    let help = keys.lookup(Mode::Global, &press(KeyCode::Char('?'), KeyModifiers::SHIFT)).unwrap();
    assert_eq!(help.action, Action::ToggleHelp);
    let back = keys.lookup(Mode::Global, &press(KeyCode::BackTab, KeyModifiers::SHIFT)).unwrap();
    assert_eq!(back.action, Action::PrevPanel);
    let quit = keys.lookup(Mode::DiscoveryFilter, &press(KeyCode::Char('c'), KeyModifiers::CONTROL)).unwrap();
    assert_eq!(quit.action, Action::Quit);
    assert!(keys.lookup(Mode::DiscoveryFilter, &press(KeyCode::Char('q'), KeyModifiers::NONE)).is_none());
    let failed = keys.lookup(Mode::Discovery, &press(KeyCode::Char('F'), KeyModifiers::SHIFT)).unwrap();
    assert_eq!(failed.name, "tag_failed");
    assert_eq!(keys.lookup(Mode::Global, &press(KeyCode::Char('5'), KeyModifiers::NONE)).unwrap().action, Action::FocusPanel(PanelId::Rpc));
}

#[test]
fn a_user_file_rebinds_by_name() {
    let mut keys = Keymap::defaults();
    keys.apply_user("[discovery]\ntag_failed = \"ctrl-f\"\ndown = [\"j\", \"down\", \"ctrl-n\"]\n\n[global]\nhelp = []\n", "keys.toml")
        .unwrap();
    let b = keys.lookup(Mode::Discovery, &press(KeyCode::Char('f'), KeyModifiers::CONTROL)).unwrap();
    assert_eq!(b.name, "tag_failed");
    assert!(keys.lookup(Mode::Discovery, &press(KeyCode::Char('F'), KeyModifiers::NONE)).is_none(), "the old key is gone");
    assert_eq!(keys.lookup(Mode::Discovery, &press(KeyCode::Char('n'), KeyModifiers::CONTROL)).unwrap().name, "down");
    assert!(keys.lookup(Mode::Global, &press(KeyCode::Char('?'), KeyModifiers::NONE)).is_none());
    assert_eq!(keys.table(Mode::Global).iter().find(|b| b.name == "help").unwrap().keys_label(), "(unbound)");
}

#[test]
fn a_duplicate_binding_names_the_line() {
    let mut keys = Keymap::defaults();
    let e = keys.apply_user("# mine\n[discovery]\nrerun = \"r\"\ntag = \"s\"\n", "keys.toml").unwrap_err().to_string();
    assert_eq!(e, "keys.toml:4: [discovery] key s is bound twice (tag and sort)");
}

#[test]
fn an_unknown_action_key_or_section_names_the_line() {
    let e = Keymap::defaults().apply_user("[discovery]\nrerun = \"r\"\nexplode = \"x\"\n", "k.toml").unwrap_err().to_string();
    assert!(e.starts_with("k.toml:3: [discovery] unknown action \"explode\" (known: aim, edit_filter"), "{e}");
    let e = Keymap::defaults().apply_user("[discovery]\ntag = \"ctrl-\"\n", "k.toml").unwrap_err().to_string();
    assert!(e.starts_with("k.toml:2: [discovery] tag: unknown key \"ctrl-\""), "{e}");
    let e = Keymap::defaults().apply_user("\n[nowhere]\nx = \"y\"\n", "k.toml").unwrap_err().to_string();
    assert!(e.starts_with("k.toml:2: unknown section [nowhere] (known: global, discovery"), "{e}");
    let e = Keymap::defaults().apply_user("[discovery]\ntag = 3\n", "k.toml").unwrap_err().to_string();
    assert!(e.starts_with("k.toml:2: expected a key"), "{e}");
    let e = Keymap::defaults().apply_user("[discovery]\ntag = \"t\"\ntag = \"u\"\n", "k.toml").unwrap_err().to_string();
    assert!(e.starts_with("k.toml:3:"), "{e}");
}

#[test]
fn a_plain_character_in_a_text_entry_mode_is_an_error() {
    let e = Keymap::defaults().apply_user("[command_line]\ncomplete = \"x\"\n", "k.toml").unwrap_err().to_string();
    assert_eq!(e, "k.toml:2: [command_line] key x (complete) would shadow typing");
}

#[test]
fn load_without_a_file_is_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(Keymap::load(Some(&dir.path().join("keys.toml"))).unwrap(), Keymap::defaults());
    std::fs::write(dir.path().join("keys.toml"), "[log]\nreopen = \"o\"\n").unwrap();
    let keys = Keymap::load(Some(&dir.path().join("keys.toml"))).unwrap();
    assert_eq!(keys.key_of(Mode::Log, "reopen"), Some(Key::ch('o')));
}
