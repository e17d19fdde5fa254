//! The one `Action` enum: every state change of the console is one of these. Terminal input, the
//! clock tick and the network task all turn into actions on one channel (STYLE.md, "The console").
//! Panel-specific actions are wrapped (`Action::Discovery(discovery::Msg)`, ...), so a panel's
//! messages can only reach that panel.

use std::fmt;
use std::time::{Duration, SystemTime};

use crossterm::event::KeyEvent;
use fleet_protocol::{Event, Status};
use serde_json::{Map, Value};

use super::inspector::{self, Inspection};
use super::theme::Theme;
use super::{concat, jobs, metrics};
use super::{discovery, inventory, log, processes, rpc, xen};

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    // --- terminal and time ---
    /// A key press; the app routes it (popup first, then the focused panel, then the global table).
    Key(KeyEvent),
    /// The terminal was resized; only a redraw is needed.
    Resize {
        cols: u16,
        rows: u16,
    },
    /// The clock; carries the time so tests can inject it. Every panel receives it.
    Tick(SystemTime),
    /// Something the console cannot go on from (the input reader or the network task died).
    Fatal(String),

    // --- the shell ---
    Quit,
    /// `ctrl-z`: give the terminal back and stop until the shell continues the console.
    Suspend,
    ToggleHelp,
    /// Close the top popup.
    ClosePopup,
    /// `esc` when nothing else used it: back to the panel focused before.
    Back,
    FocusPanel(PanelId),
    NextPanel,
    PrevPanel,
    /// Tells every panel which one has focus now (e.g. to fetch what it shows lazily).
    FocusChanged(PanelId),
    OpenCommandLine,
    /// An edit of the command line (it is a popup: only it gets these).
    CommandLine(CommandLineEdit),
    /// Run a `:` command.
    RunCommand(String),
    /// A new theme for everyone; every panel receives it.
    ThemeChanged(Box<Theme>),
    /// The nodes the next request goes to changed; every panel receives it.
    ScopeChanged(Scope),
    /// Ask before doing something destructive: a popup lists exactly what will happen; `y`
    /// applies `confirm.yes`, anything that closes the popup drops it.
    Confirm(Box<Confirm>),
    /// The confirmation popup's answer.
    ConfirmYes,
    /// A one-line message in the footer until the next key (errors of `:` commands and the like).
    Notify(Notice),
    /// Work for the network task; the app hands it over and nothing else sees it.
    Net(Box<NetCommand>),
    /// Several actions, applied in order.
    Batch(Vec<Action>),
    /// Open the inspector on a reply, request, node or process.
    Inspect(Box<Inspection>),
    /// New content for the open inspector, if it still shows the same `id` (a fetch came back).
    InspectUpdate(Box<Inspection>),
    /// The inspector's own keys.
    Inspector(inspector::Msg),
    /// Put this text on the clipboard: the loop writes it to the terminal as OSC 52.
    Clipboard(String),
    /// Movement in the focused list; routed to the focused panel.
    Nav(Nav),
    /// `/` search of the focused list; routed to the focused panel.
    Search(SearchEdit),

    // --- panels ---
    Discovery(discovery::Msg),
    Inventory(inventory::Msg),
    Rpc(rpc::Msg),
    Log(log::Msg),
    Processes(processes::Msg),
    Xen(xen::Msg),
    Jobs(jobs::Msg),
    /// The Concat view, under the Jobs tab.
    Concat(concat::Msg),
    /// The Metrics view, under the Inventory tab.
    Metrics(metrics::Msg),
    /// A discovery round was started (by the Discovery panel or a `:` command).
    RunDiscovery {
        round: u64,
        filter: String,
    },
    /// An RPC request is about to go out; the log records it and the app sends it.
    RequestStarted(Box<RequestInfo>),
    /// Reopen a past request's results (the Log panel's `enter`).
    Reopen(Box<super::record::RequestRecord>),
    /// Something that is over goes into the Log (a kill, a migration), so every destructive
    /// action leaves a trace there.
    Logged(Box<super::record::RequestRecord>),

    // --- from the network task ---
    Link(LinkState),
    /// Every node the hub knows in our collective.
    Nodes(Vec<String>),
    /// Who matches `filter` right now (after nodes joined or left), between rounds.
    Members {
        filter: String,
        nodes: Vec<String>,
    },
    /// A node joined, left or changed its registration; every panel receives it.
    NodeEvent(Event),
    /// Progress of discovery round `round`; stale rounds are ignored.
    Round {
        round: u64,
        event: RequestEvent,
    },
    /// Progress of RPC request `id` (the console's own number, not the hub's request id).
    Request {
        id: u64,
        event: RequestEvent,
    },
}

/// The panels, in tab order (the Concat view is under Jobs: eight titled tabs do not fit 80 columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PanelId {
    Discovery,
    Processes,
    Inventory,
    Xen,
    Rpc,
    Log,
    Jobs,
}

impl PanelId {
    pub const ALL: [PanelId; 7] =
        [PanelId::Discovery, PanelId::Processes, PanelId::Inventory, PanelId::Xen, PanelId::Rpc, PanelId::Log, PanelId::Jobs];

    pub fn title(self) -> &'static str {
        match self {
            PanelId::Discovery => "Discovery",
            PanelId::Processes => "Processes",
            PanelId::Inventory => "Inventory",
            PanelId::Xen => "Xen",
            PanelId::Rpc => "RPC",
            PanelId::Log => "Log",
            PanelId::Jobs => "Jobs",
        }
    }

    /// The name `:panel` takes (lowercase title).
    pub fn name(self) -> &'static str {
        match self {
            PanelId::Discovery => "discovery",
            PanelId::Processes => "processes",
            PanelId::Inventory => "inventory",
            PanelId::Xen => "xen",
            PanelId::Rpc => "rpc",
            PanelId::Log => "log",
            PanelId::Jobs => "jobs",
        }
    }

    pub fn from_name(name: &str) -> Option<PanelId> {
        let name = name.trim().to_ascii_lowercase();
        PanelId::ALL.into_iter().find(|p| p.name() == name || (name.len() == 1 && (p.index() + 1).to_string() == name))
    }

    pub fn index(self) -> usize {
        PanelId::ALL.iter().position(|p| *p == self).expect("in ALL")
    }

    pub fn next(self) -> PanelId {
        PanelId::ALL[(self.index() + 1) % PanelId::ALL.len()]
    }

    pub fn prev(self) -> PanelId {
        PanelId::ALL[(self.index() + PanelId::ALL.len() - 1) % PanelId::ALL.len()]
    }
}

impl fmt::Display for PanelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// Which nodes the next request goes to: the discovery filter in force, narrowed to exactly
/// `targets` when the user picked nodes in the Discovery panel (MCollective needed a second
/// command for that).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Compound filter text; empty is every node.
    pub filter: String,
    /// Exactly these nodes (`Spec.targets`), skipping discovery.
    pub targets: Option<Vec<String>>,
}

impl Scope {
    pub fn filter(filter: &str) -> Scope {
        Scope { filter: filter.trim().to_string(), targets: None }
    }

    /// The same scope for the client core's spec builder.
    pub fn client(&self) -> fleet_client::Scope {
        fleet_client::Scope { targets: self.targets.clone(), ..fleet_client::Scope::filter(super::discovery::filter_of(&self.filter)) }
    }

    /// `3 selected nodes`, `every node matching role=web`, `every node`.
    pub fn describe(&self) -> String {
        match &self.targets {
            Some(t) if t.len() == 1 => format!("node {}", t[0]),
            Some(t) => format!("{} selected nodes", t.len()),
            None if self.filter.is_empty() => "every node".to_string(),
            None => format!("every node matching {}", self.filter),
        }
    }
}

/// What a request's progress looks like to the console, for discovery rounds and RPCs alike.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestEvent {
    Discovered(Vec<String>),
    /// The hub took the request under this id.
    Sent {
        request_id: String,
    },
    Reply(Box<ReplyRow>),
    Finished {
        no_reply: Vec<String>,
        /// Matching nodes that are down: identity and when they were last heard (ms since the
        /// epoch; 0 for a node no hub has a link to).
        down: Vec<(String, u64)>,
        elapsed_ms: f64,
    },
    Failed(String),
}

/// One node's reply as the console keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyRow {
    pub sender: String,
    pub status: Status,
    pub message: String,
    pub data: Value,
    /// Round trip seen by the console.
    pub ms: f64,
    /// False for a reply from a node that was not discovered.
    pub expected: bool,
}

impl ReplyRow {
    /// A reply without data (tests, pings).
    pub fn new(sender: &str, status: Status, message: &str, ms: f64) -> ReplyRow {
        ReplyRow { sender: sender.into(), status, message: message.into(), data: Value::Null, ms, expected: true }
    }
}

/// An RPC about to go out: what the Log records and what the network task runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestInfo {
    pub id: u64,
    pub agent: String,
    pub action: String,
    pub args: Map<String, Value>,
    pub scope: Scope,
    /// The whole round, discovery included.
    pub timeout: Duration,
    pub started: SystemTime,
    /// A subset, batches, a canary, a failure limit (the RPC form's rollout fields), passed to
    /// the client core's scope as the CLI's flags are.
    pub rollout: Option<fleet_client::Rollout>,
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

/// Movement in a list; [`Nav::step`] (in `widgets::list`) applies it to a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Down,
    Up,
    PageDown,
    PageUp,
    Top,
    Bottom,
}

/// The `/` search line of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchEdit {
    /// Open the search line.
    Open,
    Edit(TextEdit),
    /// Keep the search and go back to the list.
    Accept,
    /// Drop the search.
    Cancel,
}

/// The `:` command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandLineEdit {
    Edit(TextEdit),
    Complete,
    HistoryPrev,
    HistoryNext,
    Run,
    Cancel,
}

/// A confirmation popup: a title, the lines that say exactly what will happen, and what `y` does.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub title: String,
    pub lines: Vec<String>,
    pub yes: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

impl Notice {
    pub fn info(text: impl Into<String>) -> Action {
        Action::Notify(Notice { text: text.into(), error: false })
    }
    pub fn error(text: impl Into<String>) -> Action {
        Action::Notify(Notice { text: text.into(), error: true })
    }
}

/// The state of the hub link as the top bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Connecting,
    Connected { hub: String },
    Disconnected { reason: String },
}

/// What the UI asks of the network task.
#[derive(Debug, Clone, PartialEq)]
pub enum NetCommand {
    /// Run an rpcutil ping round on the nodes matching `filter` (compound syntax; empty is all).
    Round {
        round: u64,
        filter: String,
    },
    /// Run an RPC; progress comes back as `Action::Request { id, .. }`.
    Rpc(Box<RequestInfo>),
    /// rpcutil inventory, agent_inventory and daemon_stats of one node, for the Inventory panel.
    FetchNode {
        node: String,
    },
    /// rpcutil agent_inventory over `scope`: the agents the fleet reports, for the RPC panel.
    FleetAgents {
        scope: Scope,
    },
    /// rpcutil get_facts of `facts` over `scope`, for the Discovery panel's fact columns.
    Facts {
        scope: Scope,
        facts: Vec<String>,
    },
    Processes(processes::Cmd),
    Xen(xen::Cmd),
    Jobs(jobs::Cmd),
    Concat(concat::Cmd),
    /// The Metrics view's subscription and group facts.
    Metrics(metrics::Cmd),
}

impl From<NetCommand> for Action {
    fn from(cmd: NetCommand) -> Action {
        Action::Net(Box::new(cmd))
    }
}
