//! Themes are data: `themes/<name>.toml` deserialized into a [`Theme`] of semantic slots. Unknown
//! keys and unknown colors are errors that name the file and line. The shipped themes (`default`,
//! `light`, `high-contrast`, `mono`) are compiled in so the binary works alone; a file of the same
//! name in a themes directory wins. `mono` (no colors) is used when `NO_COLOR` is set.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ratatui::style::{Color, Modifier, Style};
use serde::{Deserialize, Serialize};

/// The shipped themes, compiled in: (name, TOML text).
pub const BUILTIN: [(&str, &str); 4] = [
    ("default", include_str!("../../../themes/default.toml")),
    ("light", include_str!("../../../themes/light.toml")),
    ("high-contrast", include_str!("../../../themes/high-contrast.toml")),
    ("mono", include_str!("../../../themes/mono.toml")),
];

/// One styled slot: what the theme file says about, e.g., `status.ok`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slot(pub Style);

impl From<Slot> for Style {
    fn from(s: Slot) -> Style {
        s.0
    }
}

impl Slot {
    pub fn style(self) -> Style {
        self.0
    }
}

const MODIFIERS: [(&str, Modifier); 6] = [
    ("bold", Modifier::BOLD),
    ("dim", Modifier::DIM),
    ("italic", Modifier::ITALIC),
    ("underlined", Modifier::UNDERLINED),
    ("reversed", Modifier::REVERSED),
    ("crossed_out", Modifier::CROSSED_OUT),
];

/// How a slot is written in TOML: `{ fg = "green", bg = "#1c1c1c", modifiers = ["bold"] }`.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SlotSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bg: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    modifiers: Vec<String>,
}

fn parse_color(s: &str) -> Result<Color, String> {
    s.parse::<Color>()
        .map_err(|_| format!("unknown color {s:?} (expected a name like \"red\" or \"darkgray\", an index 0-255, or \"#rrggbb\")"))
}

fn parse_modifier(s: &str) -> Result<Modifier, String> {
    MODIFIERS
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, m)| *m)
        .ok_or_else(|| format!("unknown modifier {s:?} (expected bold, dim, italic, underlined, reversed or crossed_out)"))
}

impl<'de> Deserialize<'de> for Slot {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spec = SlotSpec::deserialize(d)?;
        let mut style = Style::new();
        if let Some(fg) = &spec.fg {
            style = style.fg(parse_color(fg).map_err(serde::de::Error::custom)?);
        }
        if let Some(bg) = &spec.bg {
            style = style.bg(parse_color(bg).map_err(serde::de::Error::custom)?);
        }
        for m in &spec.modifiers {
            style = style.add_modifier(parse_modifier(m).map_err(serde::de::Error::custom)?);
        }
        Ok(Slot(style))
    }
}

impl Serialize for Slot {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let spec = SlotSpec {
            fg: self.0.fg.map(|c| c.to_string().to_lowercase()),
            bg: self.0.bg.map(|c| c.to_string().to_lowercase()),
            modifiers: MODIFIERS.iter().filter(|(_, m)| self.0.add_modifier.contains(*m)).map(|(n, _)| n.to_string()).collect(),
        };
        spec.serialize(s)
    }
}

macro_rules! slots {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: Slot,)*
        }
    };
}

/// The console's styles by meaning. A slot a theme file leaves out is unstyled.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Theme {
    /// Panel and popup borders.
    pub border: Slot,
    /// The focused panel's border.
    pub border_focused: Slot,
    /// Panel titles.
    pub title: Slot,
    /// Ordinary text.
    pub text: Slot,
    /// Labels and secondary text ("filter", "nodes").
    pub label: Slot,
    /// The top bar's background and text.
    pub topbar: Slot,
    /// The note in the top bar (e.g. that this is the demo).
    pub note: Slot,
    /// A text line while it is being edited (filter, search, command line).
    pub input: Slot,
    /// Popup body.
    pub popup: Slot,
    /// Error messages, e.g. a filter's parse error.
    pub error: Slot,
    /// The spinner shown while requests are in flight.
    pub spinner: Slot,
    pub link: LinkSlots,
    pub tab: TabSlots,
    pub table: TableSlots,
    pub row: RowSlots,
    pub status: StatusSlots,
    pub progress: ProgressSlots,
    pub footer: FooterSlots,
    pub form: FormSlots,
    pub tree: TreeSlots,
    pub process: ProcessSlots,
    pub xen: XenSlots,
}

slots!(LinkSlots { up, down });
slots!(
    /// The panel tabs under the top bar.
    TabSlots { active, inactive }
);
slots!(TableSlots { header });
slots!(RowSlots {
    selected,
    /// A row tagged with space (Discovery, Processes).
    tagged
});
slots!(
    /// A node's state in a request.
    StatusSlots {
        ok,
        failed,
        no_reply,
        pending,
        /// A reply from a node that was not discovered.
        unexpected,
        /// Matched the filter after the round ran (not pinged yet).
        joined,
        /// Left the fleet after the round ran.
        left
    }
);
slots!(ProgressSlots { done, todo });
slots!(FooterSlots {
    key,
    text,
    /// A message in the footer (e.g. what a `:` command did).
    notice,
    /// An error message in the footer.
    error
});
slots!(
    /// The RPC form.
    FormSlots {
        field,
        /// The field being edited.
        focused,
        /// The `*` of a required field.
        required,
        /// The rule a field's value breaks.
        invalid,
        /// Prompts and descriptions shown as help.
        help
    }
);
slots!(
    /// The Inventory panel's fact tree.
    TreeSlots {
        branch,
        key,
        value,
        /// Text matching the search.
        matched
    }
);
slots!(
    /// The Processes panel.
    ProcessSlots { zombie, dstate, running, sleeping, tagged }
);
slots!(
    /// The Xen panel.
    XenSlots { dom0, domu, paused, migrating, overloaded }
);

impl Theme {
    /// Parses a theme file's text; errors say `file:line: what`.
    pub fn parse(text: &str, file: &str) -> Result<Theme> {
        toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1).unwrap_or(0);
            anyhow::anyhow!("{file}:{line}: {}", e.message().trim())
        })
    }

    fn builtin(name: &str) -> Option<Theme> {
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Theme::parse(text, &format!("themes/{n}.toml")).expect("the compiled-in themes parse"))
    }

    /// The compiled-in default theme.
    pub fn default_theme() -> Theme {
        Theme::builtin("default").expect("default is built in")
    }

    /// No colors at all, only bold, dim, underline and reverse video: for `NO_COLOR` and for
    /// terminals where colors get in the way.
    pub fn mono() -> Theme {
        Theme::builtin("mono").expect("mono is built in")
    }

    /// Every slot's dotted name (`status.ok`), in file order.
    pub fn slot_names() -> Vec<String> {
        let value = toml::Table::try_from(Theme::default()).expect("a theme serializes");
        let mut names = Vec::new();
        for (k, v) in value {
            match v.as_table() {
                Some(t) if !t.is_empty() && t.values().all(|x| x.is_table()) => names.extend(t.keys().map(|sub| format!("{k}.{sub}"))),
                _ => names.push(k),
            }
        }
        names
    }
}

/// Whether `NO_COLOR` asks for no colors: set and not empty (<https://no-color.org>).
pub fn no_color_requested() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Where theme files are looked for, first match wins: `$XDG_CONFIG_HOME/fleet/themes`, then
/// `./themes`. The shipped themes are compiled in after those.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(b) = directories::BaseDirs::new() {
        dirs.push(b.config_dir().join("fleet").join("themes"));
    }
    dirs.push(PathBuf::from("themes"));
    dirs
}

/// Every theme name that [`load`] would find, for completion of `:theme`.
pub fn names(dirs: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "toml")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                && !names.iter().any(|n| n == stem)
            {
                names.push(stem.to_string());
            }
        }
    }
    names
}

/// Picks the theme named `name`: `NO_COLOR` wins over everything; then `<dir>/<name>.toml` in
/// `dirs`; then the compiled-in themes.
pub fn load(name: &str, no_color: bool, dirs: &[PathBuf]) -> Result<Theme> {
    if no_color {
        return Ok(Theme::mono());
    }
    let name = if name.trim().is_empty() { "default" } else { name.trim() };
    if name.contains(['/', '\\']) || name.starts_with('.') {
        bail!("unknown theme {name:?}: a theme is a name, looked up as <themes dir>/<name>.toml");
    }
    for dir in dirs {
        if let Some(theme) = load_file(&dir.join(format!("{name}.toml")))? {
            return Ok(theme);
        }
    }
    if let Some(theme) = Theme::builtin(name) {
        return Ok(theme);
    }
    let builtin: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    bail!("unknown theme {name:?}: not built in ({}) and no {name}.toml in {}", builtin.join(", "), looked.join(" or "))
}

fn load_file(path: &Path) -> Result<Option<Theme>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Theme::parse(&text, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read theme file {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in the repository's `themes/` loads, sets every slot, and is the one compiled in.
    #[test]
    fn every_theme_file_loads_and_sets_every_slot() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../themes");
        let all = Theme::slot_names();
        assert!(all.contains(&"process.zombie".to_string()) && all.contains(&"status.ok".to_string()), "{all:?}");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            seen += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            let theme = Theme::parse(&text, &path.display().to_string()).unwrap();
            let table: toml::Table = toml::from_str(&text).unwrap();
            for slot in &all {
                let set = match slot.split_once('.') {
                    Some((group, sub)) => table.get(group).and_then(|g| g.get(sub)).is_some(),
                    None => table.contains_key(slot),
                };
                assert!(set, "{}: slot {slot} is not set", path.display());
            }
            let name = path.file_stem().unwrap().to_str().unwrap();
            assert_eq!(Some(theme), Theme::builtin(name), "{name} is compiled in");
        }
        assert_eq!(seen, BUILTIN.len(), "every shipped theme is compiled in");
    }

    #[test]
    fn mono_has_no_colors() {
        let value = toml::Table::try_from(Theme::mono()).unwrap();
        let text = toml::to_string(&value).unwrap();
        assert!(!text.contains("fg") && !text.contains("bg"), "{text}");
        assert_ne!(Theme::mono().row.selected, Slot::default(), "the selection still shows");
    }

    #[test]
    fn no_color_wins_over_the_named_theme() {
        assert_eq!(load("light", true, &[]).unwrap(), Theme::mono());
        assert_eq!(load("default", false, &[]).unwrap(), Theme::default_theme());
        assert_ne!(load("light", false, &[]).unwrap(), Theme::default_theme());
    }

    #[test]
    fn unknown_slot_names_file_line_and_key() {
        let e = Theme::parse("border = { fg = \"red\" }\nstatus.okay = { fg = \"green\" }\n", "t.toml").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:2: unknown field `okay`"), "{e}");
    }

    #[test]
    fn unknown_color_and_modifier_are_errors() {
        let e = Theme::parse("[status]\nok = { fg = \"gren\" }\n", "t.toml").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:2: unknown color \"gren\""), "{e}");
        let e = Theme::parse("title = { modifiers = [\"blinking\"] }\n", "t.toml").unwrap_err().to_string();
        assert!(e.starts_with("t.toml:1: unknown modifier \"blinking\""), "{e}");
        let e = Theme::parse("title = { colour = \"red\" }\n", "t.toml").unwrap_err().to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn theme_files_are_found_in_the_themes_dirs_before_the_built_in_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("night.toml"), "title = { fg = \"#102030\", modifiers = [\"bold\"] }\n").unwrap();
        std::fs::write(dir.path().join("light.toml"), "title = { fg = \"red\" }\n").unwrap();
        let dirs = [dir.path().to_path_buf()];
        let t = load("night", false, &dirs).unwrap();
        assert_eq!(t.title.0, Style::new().fg(Color::Rgb(0x10, 0x20, 0x30)).add_modifier(Modifier::BOLD));
        assert_eq!(load("light", false, &dirs).unwrap().title.0, Style::new().fg(Color::Red));
        let e = load("nope", false, &dirs).unwrap_err().to_string();
        assert!(e.starts_with("unknown theme \"nope\": not built in (default, light, high-contrast, mono)"), "{e}");
        let e = load("../etc/x", false, &dirs).unwrap_err().to_string();
        assert!(e.starts_with("unknown theme"), "{e}");
        let names = names(&dirs);
        assert_eq!(names, ["default", "light", "high-contrast", "mono", "night"]);
    }
}
