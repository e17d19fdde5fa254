//! The one `Action` enum: every state change of the console is one of these. Terminal input, the
//! clock tick and the network task all turn into actions on one channel (STYLE.md, "The console").

use std::time::SystemTime;

use crossterm::event::KeyEvent;
use fleet_protocol::Status;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    // --- terminal and time ---
    /// A key press; the loop routes it through `handle_key` (popup first, then the focused panel).
    Key(KeyEvent),
    /// The terminal was resized; only a redraw is needed.
    Resize { cols: u16, rows: u16 },
    /// The clock; carries the time so tests can inject it.
    Tick(SystemTime),
    /// Something the console cannot go on from (the input reader or the network task died).
    Fatal(String),

    // --- the application ---
    Quit,
    ToggleHelp,
    ClosePopup,

    // --- the Discovery panel ---
    /// Start editing the filter line.
    EditFilter,
    /// Leave the filter line and put back the filter that is in force.
    CancelEdit,
    /// One edit of the filter text.
    EditText(TextEdit),
    /// Enter: run a round with the filter being edited (or the one in force).
    Submit,
    /// Run one rpcutil ping round; the loop also hands this to the network task.
    RunDiscovery { round: u64, filter: String },
    SelectNext,
    SelectPrev,

    // --- from the network task ---
    Link(LinkState),
    /// How many nodes the hub knows in our collective.
    NodeCount(usize),
    /// Who matches `filter` right now (after nodes joined or left), between rounds.
    Members { filter: String, nodes: Vec<String> },
    /// Progress of round `round`; stale rounds are ignored.
    Round { round: u64, event: RoundEvent },
}

/// Edits of a one-line text input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEdit {
    Insert(char),
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    Clear,
}

/// The state of the hub link as the top bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Connecting,
    Connected { hub: String },
    Disconnected { reason: String },
}

/// What happened in a round, translated from [`crate::request::Progress`] and the outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum RoundEvent {
    Discovered(Vec<String>),
    Reply { sender: String, status: Status, message: String, ms: f64, expected: bool },
    Finished { no_reply: Vec<String>, elapsed_ms: f64 },
    Failed(String),
}

/// What the UI asks of the network task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetCommand {
    /// Run an rpcutil ping round on the nodes matching `filter` (compound syntax; empty is all).
    Round { round: u64, filter: String },
}
