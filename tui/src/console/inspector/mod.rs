//! The reply inspector: a scrollable popup over the panels with everything one reply (or one
//! request, node or process) holds: the full status message and the data pretty-printed with
//! the DDL's labels and units. `y` copies it to the clipboard with OSC 52 (the terminal does
//! the copying, so it works over SSH), `w` writes it to a file after asking for the path
//! (default: the state directory).
//!
//! Panels open it with `Action::Inspect(Box<Inspection>)`; one that fetches more (the Processes
//! panel's detail) sends `Action::InspectUpdate` with the same `id` when it has it. This file
//! holds the content and the state; `pretty` the formatting of data, `keys` the key tables,
//! `draw` the drawing.

mod build;
mod draw;
mod keys;
pub mod pretty;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::action::{Action, Nav, Notice, TextEdit};
use super::keys::Mode;
use super::widgets::input::TextInput;

pub use build::{record, reply, silent};
pub use keys::{key_table, path_key_table};

/// What the inspector shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// What it shows (`reply:web-01:echo#echo`); an update replaces the open inspection with the
    /// same id and is dropped otherwise.
    pub id: String,
    pub title: String,
    /// The default file name without the time and extension (`web-01-echo-echo`).
    pub file_stem: String,
    pub lines: Vec<InspectLine>,
}

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Heading,
    Field,
    Error,
    /// Something said about the content (`fetching the detail ...`).
    Note,
}

/// One line: `label: value`, indented by `indent` steps.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectLine {
    pub indent: usize,
    pub label: String,
    pub value: String,
    pub kind: LineKind,
}

/// Spaces per indent step.
const INDENT: usize = 2;

impl InspectLine {
    pub fn field(indent: usize, label: &str, value: &str) -> InspectLine {
        InspectLine { indent, label: label.to_string(), value: value.to_string(), kind: LineKind::Field }
    }

    pub fn heading(text: &str) -> InspectLine {
        InspectLine { indent: 0, label: String::new(), value: text.to_string(), kind: LineKind::Heading }
    }

    pub fn note(text: &str) -> InspectLine {
        InspectLine { indent: 0, label: String::new(), value: text.to_string(), kind: LineKind::Note }
    }

    pub fn error(label: &str, text: &str) -> InspectLine {
        InspectLine { indent: 0, label: label.to_string(), value: text.to_string(), kind: LineKind::Error }
    }

    /// The line as plain text (what `y` and `w` give).
    pub fn text(&self) -> String {
        let pad = " ".repeat(self.indent * INDENT);
        match (self.label.is_empty(), self.value.is_empty()) {
            (true, _) => format!("{pad}{}", self.value),
            (false, true) => format!("{pad}{}:", self.label),
            (false, false) => format!("{pad}{}: {}", self.label, self.value),
        }
    }
}

impl Inspection {
    /// Everything as plain text, one line each.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n\n", self.title);
        for l in &self.lines {
            if l.kind == LineKind::Heading {
                out.push('\n');
            }
            out.push_str(&l.text());
            out.push('\n');
        }
        out
    }
}

/// The inspector's own actions (`Action::Inspector`).
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Scroll(Nav),
    Close,
    /// `y`: to the clipboard.
    Copy,
    /// `w`: ask for the path.
    AskPath,
    PathEdit(TextEdit),
    /// Enter on the path: write the file.
    Write,
    /// Esc on the path: nothing is written.
    CancelPath,
}

impl From<Msg> for Action {
    fn from(msg: Msg) -> Action {
        Action::Inspector(msg)
    }
}

#[derive(Debug, Default)]
pub struct Inspector {
    shown: Option<Inspection>,
    /// The first line on screen (wrapped lines count).
    scroll: usize,
    /// The path being typed, while `w` asks for it.
    path: Option<TextInput>,
    /// Where files go by default (the state directory); `None` is the working directory.
    default_dir: Option<PathBuf>,
    now: Option<SystemTime>,
    // --- view caches: only drawing knows the size ---
    page: Cell<usize>,
    max_scroll: Cell<usize>,
}

impl Inspector {
    pub fn new(default_dir: Option<PathBuf>) -> Inspector {
        Inspector { default_dir, page: Cell::new(10), ..Inspector::default() }
    }

    pub fn visible(&self) -> bool {
        self.shown.is_some()
    }

    pub fn shown(&self) -> Option<&Inspection> {
        self.shown.as_ref()
    }

    pub fn scroll(&self) -> usize {
        self.scroll
    }

    /// The path being typed, while `w` asks for it.
    pub fn path(&self) -> Option<&str> {
        self.path.as_ref().map(TextInput::text)
    }

    pub fn mode(&self) -> Mode {
        if self.path.is_some() { Mode::InspectorPath } else { Mode::Inspector }
    }

    pub fn set_now(&mut self, now: SystemTime) {
        self.now = Some(now);
    }

    pub fn open(&mut self, inspection: Inspection) {
        self.shown = Some(inspection);
        self.scroll = 0;
        self.path = None;
    }

    /// Replaces the open inspection if it is the same one (the same `id`); the scroll stays.
    pub fn refresh(&mut self, inspection: Inspection) {
        if self.shown.as_ref().is_some_and(|s| s.id == inspection.id) {
            self.shown = Some(inspection);
        }
    }

    pub fn close(&mut self) {
        self.shown = None;
        self.path = None;
    }

    pub fn update(&mut self, msg: Msg) -> Option<Action> {
        let shown = self.shown.as_ref()?;
        match msg {
            Msg::Scroll(nav) => {
                let max = self.max_scroll.get();
                self.scroll = nav.step(self.scroll.min(max), max + 1, self.page.get());
            }
            Msg::Close => self.close(),
            Msg::Copy => {
                let text = shown.text();
                let note = Notice::info(format!("copied {} lines to the clipboard (OSC 52)", text.lines().count()));
                return Some(Action::Batch(vec![Action::Clipboard(text), note]));
            }
            Msg::AskPath => {
                let path = self.default_path(&shown.file_stem);
                self.path = Some(TextInput::new(&path.display().to_string()));
            }
            Msg::PathEdit(edit) => {
                if let Some(p) = self.path.as_mut() {
                    p.apply(edit);
                }
            }
            Msg::CancelPath => self.path = None,
            Msg::Write => {
                let typed = self.path.as_ref()?.text().trim().to_string();
                if typed.is_empty() {
                    return Some(Notice::error("no path: nothing written"));
                }
                let path = expand_home(&typed);
                let text = shown.text();
                return Some(match write_new(&path, &text) {
                    Ok(()) => {
                        self.path = None;
                        Notice::info(format!("wrote {} bytes to {}", text.len(), path.display()))
                    }
                    Err(e) => Notice::error(format!("cannot write {}: {e}", path.display())),
                });
            }
        }
        None
    }

    /// `<state dir>/<stem>-<YYYYMMDD-HHMMSS>.txt`, in UTC like the clock.
    fn default_path(&self, stem: &str) -> PathBuf {
        let secs = self.now.unwrap_or_else(SystemTime::now).duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let stamp: String = fleet_client::format::utc_datetime(secs).chars().filter(char::is_ascii_digit).collect();
        let (day, time) = stamp.split_at(8.min(stamp.len()));
        let name = format!("{}-{day}-{time}.txt", file_safe(stem));
        match &self.default_dir {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    }
}

/// A file name made of `text`: letters, digits, `.`, `_` and `-`; anything else becomes `-`.
fn file_safe(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' }).collect()
}

/// `~/x` as the home directory's `x`.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), directories::BaseDirs::new()) {
        (Some(rest), Some(b)) => b.home_dir().join(rest),
        _ => PathBuf::from(path),
    }
}

/// Writes a new file: an existing one is never overwritten by a slip of the enter key.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(text.as_bytes())
}

/// The escape sequence that asks the terminal to put `text` on the clipboard (OSC 52). The
/// terminal does the copying, so it works over SSH; tmux passes it on with `set-clipboard on`.
pub fn osc52(text: &str) -> String {
    use base64::Engine;
    format!("\x1b]52;c;{}\x07", base64::engine::general_purpose::STANDARD.encode(text))
}
