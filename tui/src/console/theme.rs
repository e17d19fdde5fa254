//! Themes are data: `themes/<name>.toml` deserialized into a [`Theme`] of semantic slots. Unknown
//! keys and unknown colors are errors that name the file and line. The default theme is compiled
//! in so the binary works alone; `mono` (no colors) is built in code and used when `NO_COLOR` is set.

use std::path::Path;

use anyhow::{Context, Result, bail};
use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The default theme's text, compiled in.
pub const DEFAULT_TOML: &str = include_str!("../../../themes/default.toml");

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

/// How a slot is written in TOML: `{ fg = "green", bg = "#1c1c1c", modifiers = ["bold"] }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotSpec {
    #[serde(default)]
    fg: Option<String>,
    #[serde(default)]
    bg: Option<String>,
    #[serde(default)]
    modifiers: Vec<String>,
}

fn parse_color(s: &str) -> Result<Color, String> {
    s.parse::<Color>()
        .map_err(|_| format!("unknown color {s:?} (expected a name like \"red\" or \"darkgray\", an index 0-255, or \"#rrggbb\")"))
}

fn parse_modifier(s: &str) -> Result<Modifier, String> {
    Ok(match s {
        "bold" => Modifier::BOLD,
        "dim" => Modifier::DIM,
        "italic" => Modifier::ITALIC,
        "underlined" => Modifier::UNDERLINED,
        "reversed" => Modifier::REVERSED,
        "crossed_out" => Modifier::CROSSED_OUT,
        other => return Err(format!("unknown modifier {other:?} (expected bold, dim, italic, underlined, reversed or crossed_out)")),
    })
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

/// The console's styles by meaning. A slot a theme file leaves out is unstyled.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Theme {
    /// Panel and popup borders.
    pub border: Slot,
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
    /// The filter line while it is being edited.
    pub input: Slot,
    /// Popup body.
    pub popup: Slot,
    /// Error messages, e.g. a filter's parse error.
    pub error: Slot,
    pub link: LinkSlots,
    pub table: TableSlots,
    pub row: RowSlots,
    pub status: StatusSlots,
    pub progress: ProgressSlots,
    pub footer: FooterSlots,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkSlots {
    pub up: Slot,
    pub down: Slot,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableSlots {
    pub header: Slot,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RowSlots {
    pub selected: Slot,
}

/// A node's state in a round.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatusSlots {
    pub ok: Slot,
    pub failed: Slot,
    pub no_reply: Slot,
    pub pending: Slot,
    /// Matched the filter after the round ran (not pinged yet).
    pub joined: Slot,
    /// Left the fleet after the round ran.
    pub left: Slot,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProgressSlots {
    pub done: Slot,
    pub todo: Slot,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FooterSlots {
    pub key: Slot,
    pub text: Slot,
}

impl Theme {
    /// Parses a theme file's text; errors say `file:line: what`.
    pub fn parse(text: &str, file: &str) -> Result<Theme> {
        toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1).unwrap_or(0);
            anyhow::anyhow!("{file}:{line}: {}", e.message().trim())
        })
    }

    /// The compiled-in default theme.
    pub fn default_theme() -> Theme {
        Theme::parse(DEFAULT_TOML, "themes/default.toml").expect("the compiled-in default theme parses")
    }

    /// No colors at all, only bold, dim, underline and reverse video: for `NO_COLOR` and for
    /// terminals where colors get in the way.
    pub fn mono() -> Theme {
        let plain = Slot(Style::new());
        let bold = Slot(Style::new().add_modifier(Modifier::BOLD));
        let dim = Slot(Style::new().add_modifier(Modifier::DIM));
        let reversed = Slot(Style::new().add_modifier(Modifier::REVERSED));
        Theme {
            border: plain,
            title: bold,
            text: plain,
            label: dim,
            topbar: plain,
            note: bold,
            input: Slot(Style::new().add_modifier(Modifier::UNDERLINED)),
            popup: plain,
            error: bold,
            link: LinkSlots { up: plain, down: Slot(Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)) },
            table: TableSlots { header: Slot(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)) },
            row: RowSlots { selected: reversed },
            status: StatusSlots { ok: plain, failed: bold, no_reply: bold, pending: dim, joined: dim, left: dim },
            progress: ProgressSlots { done: bold, todo: plain },
            footer: FooterSlots { key: reversed, text: plain },
        }
    }
}

/// Whether `NO_COLOR` asks for no colors: set and not empty (<https://no-color.org>).
pub fn no_color_requested() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Picks the theme named `name`: `NO_COLOR` wins over everything; then the built-in `default`
/// and `mono`; then `<themes_dir>/<name>.toml`.
pub fn load(name: &str, no_color: bool, themes_dir: &Path) -> Result<Theme> {
    if no_color {
        return Ok(Theme::mono());
    }
    match name {
        "" | "default" => return Ok(Theme::default_theme()),
        "mono" => return Ok(Theme::mono()),
        _ => {}
    }
    if name.contains(['/', '\\']) || name.starts_with('.') {
        bail!("unknown theme {name:?}: a theme is a name, looked up as {}/<name>.toml", themes_dir.display());
    }
    let path = themes_dir.join(format!("{name}.toml"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("unknown theme {name:?}: not built in (default, mono) and no file {}", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read theme file {}", path.display())),
    };
    Theme::parse(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_theme_parses_and_sets_every_slot() {
        let t = Theme::default_theme();
        assert_ne!(t.status.ok, Slot::default());
        assert_ne!(t.status.failed, Slot::default());
        assert_ne!(t.progress.done, Slot::default());
        assert_ne!(t.row.selected, Slot::default());
        assert_ne!(t.footer.key, Slot::default());
    }

    #[test]
    fn mono_has_no_colors() {
        let t = Theme::mono();
        let slots = [
            t.border, t.title, t.text, t.label, t.topbar, t.note, t.input, t.popup, t.error, t.link.up, t.link.down,
            t.table.header, t.row.selected, t.status.ok, t.status.failed, t.status.no_reply, t.status.pending,
            t.status.joined, t.status.left, t.progress.done, t.progress.todo, t.footer.key, t.footer.text,
        ];
        for s in slots {
            assert_eq!((s.0.fg, s.0.bg), (None, None), "{s:?}");
        }
    }

    #[test]
    fn no_color_wins_over_the_named_theme() {
        assert_eq!(load("default", true, Path::new("themes")).unwrap(), Theme::mono());
        assert_eq!(load("default", false, Path::new("themes")).unwrap(), Theme::default_theme());
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
    fn theme_files_are_found_in_the_themes_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("night.toml"), "title = { fg = \"#102030\", modifiers = [\"bold\"] }\n").unwrap();
        let t = load("night", false, dir.path()).unwrap();
        assert_eq!(t.title.0, Style::new().fg(Color::Rgb(0x10, 0x20, 0x30)).add_modifier(Modifier::BOLD));
        let e = load("nope", false, dir.path()).unwrap_err().to_string();
        assert!(e.starts_with("unknown theme \"nope\""), "{e}");
        let e = load("../etc/x", false, dir.path()).unwrap_err().to_string();
        assert!(e.starts_with("unknown theme"), "{e}");
    }
}
