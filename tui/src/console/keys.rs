//! Key bindings: one table of (name, keys, action, hint) per [`Mode`]. Each panel and popup owns
//! its table (`discovery::key_table()`, ...); this module merges them with the global keys into
//! the [`Keymap`], applies the user's keys file and looks keys up. Key handling, the footer and
//! the `?` help popup all read the same [`Keymap`], so they cannot drift apart. The tables are
//! compiled in; `$XDG_CONFIG_HOME/fleet/keys.toml` may rebind entries by name:
//!
//! ```toml
//! [discovery]
//! tag_failed = "ctrl-f"          # one key
//! down = ["j", "down", "ctrl-n"] # or several; [] unbinds
//! ```
//!
//! A key bound twice in one mode, a plain character in a text-entry mode, an unknown section,
//! action name or key is an error naming the file and line (k9s refuses duplicates the same way).

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use crossterm::event::KeyEvent;
use serde::Deserialize;

use super::action::{Action, PanelId};
use super::widgets::search;
use super::{cmdline, confirm, discovery, help, inspector, inventory, log, processes, rpc, xen};
use super::{concat, jobs, metrics};

mod key;
pub use key::Key;

/// One row of a key table.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The stable name `keys.toml` uses, e.g. `tag_failed`.
    pub name: &'static str,
    /// The first key is the one the footer shows; the help lists them all. May be empty when the
    /// user unbound it.
    pub keys: Vec<Key>,
    pub action: Action,
    pub hint: &'static str,
}

impl Binding {
    /// A compiled-in binding. Panics on a key that does not parse: the tables are checked by a test.
    pub fn new(name: &'static str, keys: &[&str], action: impl Into<Action>, hint: &'static str) -> Binding {
        let keys = keys.iter().map(|k| Key::parse(k).unwrap_or_else(|e| panic!("binding {name}: {e}"))).collect();
        Binding { name, keys, action: action.into(), hint }
    }

    /// All keys for the help popup: `q, ctrl-c`.
    pub fn keys_label(&self) -> String {
        if self.keys.is_empty() {
            return "(unbound)".to_string();
        }
        self.keys.iter().map(Key::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// Which table is in force: the top popup's, else the focused panel's (then [`Mode::Global`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Keys that work on every panel unless the panel uses them itself.
    Global,
    Discovery,
    /// Typing in the Discovery panel's filter line.
    DiscoveryFilter,
    /// Typing in a list's `/` search line.
    Search,
    Inventory,
    /// The Metrics view under the Inventory tab.
    Metrics,
    Rpc,
    /// Filling in the RPC form.
    RpcForm,
    Log,
    Processes,
    /// Typing in the Processes panel's pattern or user line.
    ProcessesLine,
    /// The Processes panel's signal menu.
    SignalMenu,
    /// The Processes panel's kill confirmation.
    KillConfirm,
    /// Typing in one field of the RPC form (entered with `enter`, left with `enter` or `esc`).
    RpcField,
    Xen,
    /// The Xen panel's popup of destinations for a migration.
    XenDestinations,
    /// The Xen panel's balancer plan popup.
    XenPlan,
    /// The Jobs view: jobs across the fleet and the selected job on each node.
    Jobs,
    /// Reading a job's output.
    JobOutput,
    /// The Concat view: targets, and a target's nodes.
    Concat,
    /// Reading one node's diff in the Concat view.
    ConcatDiff,
    CommandLine,
    Help,
    Confirm,
    /// The Processes panel's sort menu.
    SortMenu,
    /// The Processes panel's column chooser.
    ColumnChooser,
    /// Reading a reply, request, node or process in the inspector.
    Inspector,
    /// Typing the path the inspector writes to.
    InspectorPath,
}

impl Mode {
    pub const ALL: [Mode; 28] = [
        Mode::Global,
        Mode::Discovery,
        Mode::DiscoveryFilter,
        Mode::Search,
        Mode::Processes,
        Mode::ProcessesLine,
        Mode::SignalMenu,
        Mode::KillConfirm,
        Mode::SortMenu,
        Mode::ColumnChooser,
        Mode::Inventory,
        Mode::Metrics,
        Mode::Xen,
        Mode::XenDestinations,
        Mode::XenPlan,
        Mode::Jobs,
        Mode::JobOutput,
        Mode::Concat,
        Mode::ConcatDiff,
        Mode::Rpc,
        Mode::RpcForm,
        Mode::RpcField,
        Mode::Log,
        Mode::Inspector,
        Mode::InspectorPath,
        Mode::CommandLine,
        Mode::Help,
        Mode::Confirm,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Mode::Global => "Everywhere",
            Mode::Discovery => "Discovery",
            Mode::DiscoveryFilter => "Editing the discovery filter",
            Mode::Search => "Searching a list (/)",
            Mode::Inventory => "Inventory",
            Mode::Metrics => "Metrics",
            Mode::Rpc => "RPC",
            Mode::RpcForm => "RPC form",
            Mode::RpcField => "Editing an RPC form field",
            Mode::Log => "Log",
            Mode::Processes => "Processes",
            Mode::ProcessesLine => "Editing the process pattern or user",
            Mode::SignalMenu => "Signal menu",
            Mode::KillConfirm => "Kill confirmation",
            Mode::Xen => "Xen",
            Mode::XenDestinations => "Xen: choosing a destination",
            Mode::XenPlan => "Xen: the balancer plan",
            Mode::Jobs => "Jobs",
            Mode::JobOutput => "Job output",
            Mode::Concat => "Concat",
            Mode::ConcatDiff => "Concat diff",
            Mode::CommandLine => "Command line (:)",
            Mode::Help => "Help",
            Mode::Confirm => "Confirmation",
            Mode::SortMenu => "Sort menu",
            Mode::ColumnChooser => "Column chooser",
            Mode::Inspector => "Inspector",
            Mode::InspectorPath => "Writing the inspector to a file",
        }
    }

    /// The section name in `keys.toml`.
    pub fn section(self) -> &'static str {
        match self {
            Mode::Global => "global",
            Mode::Discovery => "discovery",
            Mode::DiscoveryFilter => "discovery_filter",
            Mode::Search => "search",
            Mode::Inventory => "inventory",
            Mode::Metrics => "metrics",
            Mode::Rpc => "rpc",
            Mode::RpcForm => "rpc_form",
            Mode::RpcField => "rpc_field",
            Mode::Log => "log",
            Mode::Processes => "processes",
            Mode::ProcessesLine => "processes_line",
            Mode::SignalMenu => "signal_menu",
            Mode::KillConfirm => "kill_confirm",
            Mode::Xen => "xen",
            Mode::XenDestinations => "xen_destinations",
            Mode::XenPlan => "xen_plan",
            Mode::Jobs => "jobs",
            Mode::JobOutput => "job_output",
            Mode::Concat => "concat",
            Mode::ConcatDiff => "concat_diff",
            Mode::CommandLine => "command_line",
            Mode::Help => "help",
            Mode::Confirm => "confirm",
            Mode::SortMenu => "sort_menu",
            Mode::ColumnChooser => "column_chooser",
            Mode::Inspector => "inspector",
            Mode::InspectorPath => "inspector_path",
        }
    }

    /// The mode's name in the footer, so the admin always sees which keys are in force.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Global => "GLOBAL",
            Mode::Discovery => "DISCOVERY",
            Mode::DiscoveryFilter => "EDIT FILTER",
            Mode::Search => "SEARCH",
            Mode::Inventory => "INVENTORY",
            Mode::Metrics => "METRICS",
            Mode::Rpc => "RPC",
            Mode::RpcForm => "RPC FORM",
            Mode::RpcField => "EDIT FIELD",
            Mode::Log => "LOG",
            Mode::Processes => "PROCESSES",
            Mode::ProcessesLine => "EDIT LINE",
            Mode::SignalMenu => "SIGNAL MENU",
            Mode::KillConfirm => "CONFIRM KILL",
            Mode::Xen => "XEN",
            Mode::XenDestinations => "DESTINATION",
            Mode::XenPlan => "BALANCER PLAN",
            Mode::Jobs => "JOBS",
            Mode::JobOutput => "JOB OUTPUT",
            Mode::Concat => "CONCAT",
            Mode::ConcatDiff => "DIFF",
            Mode::CommandLine => "COMMAND",
            Mode::Help => "HELP",
            Mode::Confirm => "CONFIRM",
            Mode::SortMenu => "SORT MENU",
            Mode::ColumnChooser => "COLUMNS",
            Mode::Inspector => "INSPECT",
            Mode::InspectorPath => "WRITE TO",
        }
    }

    /// Modes where plain characters are text, so a table may not bind them.
    pub fn is_text_entry(self) -> bool {
        matches!(
            self,
            Mode::DiscoveryFilter | Mode::Search | Mode::RpcField | Mode::ProcessesLine | Mode::CommandLine | Mode::InspectorPath
        )
    }

    /// Modes that take every key (popups and text lines): the global keys do not apply, so the
    /// footer does not offer them.
    pub fn is_modal(self) -> bool {
        self.is_text_entry()
            || matches!(self, Mode::Help | Mode::Confirm | Mode::SignalMenu | Mode::KillConfirm | Mode::SortMenu | Mode::ColumnChooser)
    }

    fn index(self) -> usize {
        Mode::ALL.iter().position(|m| *m == self).expect("in ALL")
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// `ctrl-c` quits from the modes that take every other key (text lines, popups).
pub fn quit_binding() -> Binding {
    Binding::new("quit", &["ctrl-c"], Action::Quit, "quit")
}

/// The keys that work on every panel unless the panel uses them itself (`[global]`).
fn global_table() -> Vec<Binding> {
    let mut t = vec![
        Binding::new("quit", &["q", "ctrl-c"], Action::Quit, "quit"),
        Binding::new("suspend", &["ctrl-z"], Action::Suspend, "suspend (fg resumes)"),
        Binding::new("help", &["?"], Action::ToggleHelp, "help"),
        Binding::new("command", &[":"], Action::OpenCommandLine, "command"),
        Binding::new("next_panel", &["tab"], Action::NextPanel, "next panel"),
        Binding::new("prev_panel", &["shift-tab"], Action::PrevPanel, "previous panel"),
        Binding::new("back", &["esc"], Action::Back, "back"),
    ];
    const NAMES: [&str; 7] = ["panel_discovery", "panel_processes", "panel_inventory", "panel_xen", "panel_rpc", "panel_log", "panel_jobs"];
    const DIGITS: [&str; 7] = ["1", "2", "3", "4", "5", "6", "7"];
    for (i, p) in PanelId::ALL.iter().enumerate() {
        t.push(Binding::new(NAMES[i], &[DIGITS[i]], Action::FocusPanel(*p), p.title()));
    }
    t
}

/// The compiled-in table of `mode`: each panel and popup owns its own.
fn default_table(mode: Mode) -> Vec<Binding> {
    match mode {
        Mode::Global => global_table(),
        Mode::Discovery => discovery::key_table(),
        Mode::DiscoveryFilter => discovery::filter_key_table(),
        Mode::Search => search::key_table(),
        Mode::Inventory => inventory::key_table(),
        Mode::Metrics => metrics::key_table(),
        Mode::Rpc => rpc::key_table(),
        Mode::RpcForm => rpc::form_key_table(),
        Mode::RpcField => rpc::field_key_table(),
        Mode::Log => log::key_table(),
        Mode::Processes => processes::key_table(),
        Mode::ProcessesLine => processes::line_key_table(),
        Mode::SignalMenu => processes::signal_menu_key_table(),
        Mode::KillConfirm => processes::kill_confirm_key_table(),
        Mode::Xen => xen::key_table(),
        Mode::XenDestinations => xen::destinations_key_table(),
        Mode::XenPlan => xen::plan_key_table(),
        Mode::Jobs => jobs::key_table(),
        Mode::JobOutput => jobs::output_key_table(),
        Mode::Concat => concat::key_table(),
        Mode::ConcatDiff => concat::diff_key_table(),
        Mode::CommandLine => cmdline::key_table(),
        Mode::Help => help::key_table(),
        Mode::Confirm => confirm::key_table(),
        Mode::SortMenu => processes::sort_menu_key_table(),
        Mode::ColumnChooser => processes::column_chooser_key_table(),
        Mode::Inspector => inspector::key_table(),
        Mode::InspectorPath => inspector::path_key_table(),
    }
}

/// The key tables in force: compiled-in defaults with the user's `keys.toml` applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    tables: Vec<Vec<Binding>>,
}

/// A binding as `keys.toml` writes it: one key or a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum KeysSpec {
    One(String),
    Many(Vec<String>),
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::defaults()
    }
}

impl Keymap {
    /// The compiled-in tables.
    pub fn defaults() -> Keymap {
        Keymap { tables: Mode::ALL.iter().map(|m| default_table(*m)).collect() }
    }

    /// `$XDG_CONFIG_HOME/fleet/keys.toml` (usually `~/.config/fleet/keys.toml`).
    pub fn user_path() -> Option<PathBuf> {
        directories::BaseDirs::new().map(|b| b.config_dir().join("fleet").join("keys.toml"))
    }

    /// The defaults with `path` applied when it exists, checked.
    pub fn load(path: Option<&Path>) -> Result<Keymap> {
        let mut map = Keymap::defaults();
        if let Some(path) = path {
            match std::fs::read_to_string(path) {
                Ok(text) => map.apply_user(&text, &path.display().to_string())?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => bail!("cannot read key bindings {}: {e}", path.display()),
            }
        }
        map.validate()?;
        Ok(map)
    }

    pub fn table(&self, mode: Mode) -> &[Binding] {
        &self.tables[mode.index()]
    }

    /// The binding of `ev` in `mode`, if any.
    pub fn lookup(&self, mode: Mode, ev: &KeyEvent) -> Option<&Binding> {
        let key = Key::of(ev);
        self.table(mode).iter().find(|b| b.keys.contains(&key))
    }

    /// The action `ev` is bound to in `mode`.
    pub fn action(&self, mode: Mode, ev: &KeyEvent) -> Option<Action> {
        self.lookup(mode, ev).map(|b| b.action.clone())
    }

    /// The first key of the binding named `name` in `mode`, for hints written in prose.
    pub fn key_of(&self, mode: Mode, name: &str) -> Option<Key> {
        self.table(mode).iter().find(|b| b.name == name).and_then(|b| b.keys.first().copied())
    }

    /// [`key_of`](Self::key_of) as text; empty when the binding is unbound.
    pub fn key_text(&self, mode: Mode, name: &str) -> String {
        self.key_of(mode, name).map(|k| k.to_string()).unwrap_or_default()
    }

    /// Applies a `keys.toml`: each entry replaces the keys of the named binding. Checks the
    /// result; errors say `file:line: what`.
    pub fn apply_user(&mut self, text: &str, file: &str) -> Result<()> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        type Sections = std::collections::BTreeMap<String, std::collections::BTreeMap<String, toml::Spanned<KeysSpec>>>;
        let sections: Sections = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(s.start)).unwrap_or(0);
            let msg = e.message().trim().replace(
                "data did not match any variant of untagged enum KeysSpec",
                "expected a key (\"q\") or a list of keys ([\"q\", \"ctrl-c\"])",
            );
            anyhow!("{file}:{line}: {msg}")
        })?;
        // Which (mode, binding) came from which line, to name it when the result is wrong.
        let mut user_lines: Vec<(Mode, &'static str, usize)> = Vec::new();
        for (section, entries) in &sections {
            let Some(mode) = Mode::ALL.into_iter().find(|m| m.section() == section) else {
                let line = section_line(text, section);
                let known: Vec<&str> = Mode::ALL.iter().map(|m| m.section()).collect();
                bail!("{file}:{line}: unknown section [{section}] (known: {})", known.join(", "));
            };
            for (name, spec) in entries {
                let line = line_of(spec.span().start);
                let table = &mut self.tables[mode.index()];
                let Some(binding) = table.iter_mut().find(|b| b.name == name) else {
                    let known: Vec<&str> = table.iter().map(|b| b.name).collect();
                    bail!("{file}:{line}: [{section}] unknown action {name:?} (known: {})", known.join(", "));
                };
                let texts = match spec.get_ref() {
                    KeysSpec::One(k) => vec![k.clone()],
                    KeysSpec::Many(ks) => ks.clone(),
                };
                let mut keys = Vec::new();
                for k in &texts {
                    keys.push(Key::parse(k).map_err(|e| anyhow!("{file}:{line}: [{section}] {name}: {e}"))?);
                }
                binding.keys = keys;
                user_lines.push((mode, binding.name, line));
            }
        }
        self.check().map_err(|p| {
            let line = user_lines.iter().filter(|(m, n, _)| *m == p.mode && p.names.contains(n)).map(|(_, _, l)| *l).max();
            match line {
                Some(line) => anyhow!("{file}:{line}: [{}] {}", p.mode.section(), p.message),
                None => anyhow!("key table {}: {}", p.mode, p.message),
            }
        })
    }

    /// Checks every table: no key twice in one mode, no plain character in a text-entry mode.
    pub fn validate(&self) -> Result<()> {
        self.check().map_err(|p| anyhow!("key table {}: {}", p.mode, p.message))
    }

    fn check(&self) -> Result<(), Problem> {
        for mode in Mode::ALL {
            let mut seen: Vec<(Key, &'static str)> = Vec::new();
            for b in self.table(mode) {
                for k in &b.keys {
                    if let Some((_, first)) = seen.iter().find(|(s, _)| s == k) {
                        return Err(Problem {
                            mode,
                            names: vec![first, b.name],
                            message: format!("key {k} is bound twice ({first} and {})", b.name),
                        });
                    }
                    if mode.is_text_entry() && k.is_text() {
                        return Err(Problem { mode, names: vec![b.name], message: format!("key {k} ({}) would shadow typing", b.name) });
                    }
                    seen.push((*k, b.name));
                }
            }
        }
        Ok(())
    }
}

struct Problem {
    mode: Mode,
    names: Vec<&'static str>,
    message: String,
}

/// The line of `[section]` in a TOML text (toml does not give spans of table names).
fn section_line(text: &str, section: &str) -> usize {
    text.lines()
        .position(|l| {
            let t = l.trim();
            t.starts_with('[') && t.trim_start_matches('[').trim_end_matches(']').trim().trim_matches('"') == section
        })
        .or_else(|| text.lines().position(|l| l.trim_start().starts_with(&format!("{section}."))))
        .map(|i| i + 1)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
