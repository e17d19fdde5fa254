//! Message types. Every message travels inside an [`Envelope`]; the body is the msgpack encoding of
//! one of the structs below, chosen by the envelope's [`Kind`]. Fields are named on the wire so the
//! schema can grow: new optional fields carry `#[serde(default)]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::filter::Filter;

/// The outer frame. `body` stays raw bytes so a signature can be checked over exactly what was sent
/// before anything inside it is decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub version: u8,
    pub kind: Kind,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    #[serde(default)]
    pub signer: Option<String>,
    #[serde(default, with = "serde_bytes")]
    pub signature: Option<Vec<u8>>,
}

/// What the body of an envelope holds. The hub and nodes dispatch on this closed set only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// console -> hub: attach as a console, subscribe to events.
    Hello,
    /// hub -> console: reply to Hello.
    Welcome,
    /// node -> hub: full registration, on connect, on change and as heartbeat.
    Registration,
    /// hub -> node: heartbeat acknowledgement, proves the link is alive.
    Ack,
    /// console -> hub -> node.
    Request,
    /// node -> hub -> console.
    Reply,
    /// console -> hub.
    Discover,
    /// hub -> console.
    Discovered,
    /// hub -> console: which targets a request was sent to.
    Dispatched,
    /// hub -> console: node joined, left or changed.
    Event,
    /// console -> hub.
    StatsQuery,
    /// hub -> console.
    HubStats,
    /// hub -> peer: the peer's last frame was refused.
    Error,
    /// console -> hub: liveness probe of the console link.
    Ping,
    /// hub -> console.
    Pong,
    /// hub -> node: the callers and policies the hub distributes, signed by the hub's key.
    Trust,
    /// node -> hub: the node's newest metrics sample, sent as it is taken.
    MetricSample,
    /// console -> hub: which nodes' and series' samples this console wants from now on.
    MetricSubscribe,
    /// hub -> console: samples of one node (its stored history, or one new sample).
    MetricUpdate,
}

/// A decoded message body.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Hello(Hello),
    Welcome(Welcome),
    Registration(Box<Registration>),
    Ack(Ack),
    Request(Box<Request>),
    Reply(Box<Reply>),
    Discover(Discover),
    Discovered(Discovered),
    Dispatched(Dispatched),
    Event(Event),
    StatsQuery,
    HubStats(HubStats),
    Error(ErrorNotice),
    Ping,
    Pong,
    Trust(Trust),
    MetricSample(MetricSample),
    MetricSubscribe(MetricSubscribe),
    MetricUpdate(MetricUpdate),
}

impl Message {
    pub fn kind(&self) -> Kind {
        match self {
            Message::Hello(_) => Kind::Hello,
            Message::Welcome(_) => Kind::Welcome,
            Message::Registration(_) => Kind::Registration,
            Message::Ack(_) => Kind::Ack,
            Message::Request(_) => Kind::Request,
            Message::Reply(_) => Kind::Reply,
            Message::Discover(_) => Kind::Discover,
            Message::Discovered(_) => Kind::Discovered,
            Message::Dispatched(_) => Kind::Dispatched,
            Message::Event(_) => Kind::Event,
            Message::StatsQuery => Kind::StatsQuery,
            Message::HubStats(_) => Kind::HubStats,
            Message::Error(_) => Kind::Error,
            Message::Ping => Kind::Ping,
            Message::Pong => Kind::Pong,
            Message::Trust(_) => Kind::Trust,
            Message::MetricSample(_) => Kind::MetricSample,
            Message::MetricSubscribe(_) => Kind::MetricSubscribe,
            Message::MetricUpdate(_) => Kind::MetricUpdate,
        }
    }
}

/// The callers and action policies a hub distributes to its nodes. Its envelope is signed by the
/// hub's key (signer "hub"); a node that accepts trust from its hub checks that signature against
/// the pinned hub key before decoding this, and ignores a generation older than the one it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Trust {
    /// Grows with every change (the hub's clock in ms when it built the set).
    pub generation: u64,
    pub callers: Vec<TrustedCaller>,
    /// Agent name -> policy file text (`<agent>.policy` on the hub).
    pub policies: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustedCaller {
    pub name: String,
    #[serde(with = "serde_bytes")]
    pub signing: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub link: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Who the console says it is; informational until links are authenticated.
    pub name: String,
    /// Whether the console wants node events.
    #[serde(default)]
    pub subscribe: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub hub_version: String,
    pub nodes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// The hub's time, for clock skew diagnostics.
    pub hub_time: u64,
}

/// Whether the nodes answer a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReplyMode {
    #[default]
    Normal,
    /// Fire-and-forget: nodes run the action and send nothing back.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: String,
    pub collective: String,
    pub caller: String,
    pub agent: String,
    pub action: String,
    #[serde(default)]
    pub args: serde_json::Map<String, Value>,
    #[serde(default)]
    pub filter: Filter,
    /// Explicit target identities. Empty means every node that matches `filter`.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Creation time, ms since the epoch.
    pub msgtime: u64,
    /// Seconds after `msgtime` during which the request may still be acted on.
    pub ttl: u32,
    #[serde(default)]
    pub reply: ReplyMode,
    /// How long the console waits for replies, in ms; the hub forgets the route after it.
    #[serde(default)]
    pub timeout_ms: u64,
    /// How the hub picks the nodes to send to when `targets` is empty.
    #[serde(default)]
    pub fanout: Fanout,
}

/// How the hub picks nodes for a request without explicit targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Fanout {
    /// Every node of the collective; each applies the filter itself (broadcast).
    #[default]
    All,
    /// The nodes whose registration matches the filter (what registry discovery just answered).
    /// Keeps a request to thousands of discovered nodes small: no target list is sent, and every
    /// node still applies the filter itself.
    RegistryMatch,
}

/// MCollective's reply status codes, plus Denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Ok,
    Aborted,
    UnknownAction,
    MissingData,
    InvalidData,
    UnknownError,
    Denied,
}

impl Status {
    pub fn is_ok(self) -> bool {
        self == Status::Ok
    }
    /// The numeric code MCollective used (0..=5), Denied is 6.
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Aborted => 1,
            Status::UnknownAction => 2,
            Status::MissingData => 3,
            Status::InvalidData => 4,
            Status::UnknownError => 5,
            Status::Denied => 6,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Ok => "OK",
            Status::Aborted => "Aborted",
            Status::UnknownAction => "UnknownAction",
            Status::MissingData => "MissingData",
            Status::InvalidData => "InvalidData",
            Status::UnknownError => "UnknownError",
            Status::Denied => "Denied",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub request_id: String,
    pub sender: String,
    pub status: Status,
    #[serde(default)]
    pub status_msg: String,
    #[serde(default)]
    pub data: Value,
    /// Time the node spent on the action, in microseconds.
    #[serde(default)]
    pub elapsed_us: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgentInfo {
    pub name: String,
    pub version: String,
    /// Hex digest of the agent's DDL text, so a console can tell DDL versions apart.
    pub ddl_digest: String,
}

/// MCollective's daemon_stats counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DaemonStats {
    pub total: u64,
    pub validated: u64,
    pub unvalidated: u64,
    pub passed: u64,
    pub filtered: u64,
    pub replies: u64,
    pub ttlexpired: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub identity: String,
    pub collectives: Vec<String>,
    pub facts: Value,
    pub classes: Vec<String>,
    pub agents: Vec<AgentInfo>,
    pub stats: DaemonStats,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// The node's heartbeat interval, so the hub can expire it after three missed beats.
    pub interval_ms: u64,
    /// Daemon version.
    #[serde(default)]
    pub version: String,
    /// Daemon start time, ms since the epoch.
    #[serde(default)]
    pub started: u64,
}

impl Registration {
    pub fn view(&self) -> crate::filter::NodeView<'_> {
        crate::filter::NodeView {
            identity: &self.identity,
            facts: &self.facts,
            classes: &self.classes,
            agents: self.agents.iter().map(|a| a.name.as_str()).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discover {
    pub filter: Filter,
    #[serde(default)]
    pub collective: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discovered {
    /// Live nodes that match.
    pub nodes: Vec<String>,
    /// Nodes that match but are down: their link closed or they missed their heartbeats. The hub
    /// keeps them for a while (a node that dies is never silently forgotten).
    #[serde(default)]
    pub down: Vec<DownNode>,
}

/// A node the registry knew and has lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownNode {
    pub identity: String,
    /// When it was last heard from (ms since the epoch).
    pub since_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispatched {
    pub request_id: String,
    /// Nodes the hub sent the request to.
    pub sent: Vec<String>,
    /// Targets the hub has no live link to.
    pub unknown: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    NodeJoined { identity: String },
    NodeLeft { identity: String, reason: String },
    NodeChanged { identity: String },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HubStats {
    pub nodes: u64,
    pub consoles: u64,
    pub requests: u64,
    pub replies: u64,
    pub late_replies: u64,
    pub dropped_frames: u64,
    pub uptime_s: u64,
    /// Bytes waiting in the hub's per-link outbound queues.
    #[serde(default)]
    pub queued_bytes: u64,
    /// Frames the hub dropped from slow links' queues (the console is told how many).
    #[serde(default)]
    pub dropped_replies: u64,
    /// Link keys waiting under `pending/` for an admin.
    #[serde(default)]
    pub pending_keys: u64,
    /// Nodes the registry keeps as down (link closed or heartbeats missed).
    #[serde(default)]
    pub down_nodes: u64,
    /// Nodes whose metrics history the hub holds, and the bytes that history takes.
    #[serde(default)]
    pub metric_nodes: u64,
    #[serde(default)]
    pub metric_bytes: u64,
    /// Metrics samples received from nodes, and updates replaced by a newer one of the same
    /// node before a slow console read them.
    #[serde(default)]
    pub metric_samples: u64,
    #[serde(default)]
    pub metric_superseded: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorNotice {
    pub message: String,
}

/// One metrics sample of the sending node (the link's enrolled name says which node): `names`
/// sorted, `values[i]` the value of `names[i]`, as the node's ring buffer holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    /// ms since the epoch, on the node's clock.
    pub time_ms: u64,
    pub names: Vec<String>,
    pub values: Vec<f64>,
}

/// A console's metrics subscription; each one replaces the console's previous one. An empty
/// `nodes` without `all_nodes` ends it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSubscribe {
    /// Node identities whose samples the console wants.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// Every node's samples, whatever `nodes` says.
    #[serde(default)]
    pub all_nodes: bool,
    /// Metric name patterns (`*` matches any run of characters, `load*`, `net_*:eth0`); empty
    /// means every series.
    #[serde(default)]
    pub series: Vec<String>,
    /// Whether the hub first sends the history it holds for those nodes.
    #[serde(default)]
    pub history: bool,
}

/// Samples of one node in columns: `times` (ms since the epoch) and, per series, its value at
/// each of those times (`None` where a sample lacks it). One new sample is a single column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricUpdate {
    pub node: String,
    pub times: Vec<u64>,
    pub series: BTreeMap<String, Vec<Option<f64>>>,
}
