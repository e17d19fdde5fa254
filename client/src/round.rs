//! One SimpleRPC round: discovery (registry, broadcast or flatfile), dispatch, and collection of
//! replies until every expected node answered or the timeout (discovery included) passed. The CLI
//! and the console both drive this; progress is reported through a callback.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fleet_protocol::{DownNode, Filter, FilterExpr, Message, Reply, ReplyMode, Request};
use serde_json::{Map, Value};

use crate::error::{ClientError, Result, exit};
use crate::link::{Client, SignatureCheck};
use crate::rollout::Rollout;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiscoveryMethod {
    /// Ask the hub's registry (instant; the expected count is known before sending).
    #[default]
    Registry,
    /// rpcutil ping with the filter; nodes decide; ends after a silence window.
    Broadcast,
    /// Read identities from --nodes FILE, one per line.
    Flatfile,
}

impl DiscoveryMethod {
    pub const NAMES: [&'static str; 3] = ["registry", "broadcast", "flatfile"];
}

impl std::str::FromStr for DiscoveryMethod {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "registry" => Ok(DiscoveryMethod::Registry),
            "broadcast" => Ok(DiscoveryMethod::Broadcast),
            "flatfile" => Ok(DiscoveryMethod::Flatfile),
            other => Err(format!("unknown discovery method '{other}' (use {})", DiscoveryMethod::NAMES.join(", "))),
        }
    }
}

/// What to run and on whom.
#[derive(Debug, Clone)]
pub struct Spec {
    pub agent: String,
    pub action: String,
    pub args: Map<String, Value>,
    pub filter: Filter,
    pub collective: String,
    pub method: DiscoveryMethod,
    pub nodes_file: Option<PathBuf>,
    /// Explicit targets (the console's selection); skips discovery.
    pub targets: Option<Vec<String>>,
    /// Whole-round timeout, discovery included.
    pub timeout: Duration,
    pub discovery_timeout: Duration,
    pub ttl: u32,
    /// A subset, batches, a canary or a failure limit; `None` asks every node at once.
    pub rollout: Option<Rollout>,
}

/// Progress of a round, as it happens.
#[derive(Debug, Clone)]
pub enum Progress {
    Discovered(Vec<String>),
    Sent { request_id: String, unknown: Vec<String> },
    Reply { reply: Box<Reply>, expected: bool, rtt: Duration, signature: SignatureCheck },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplyRecord {
    #[serde(flatten)]
    pub reply: Reply,
    /// Round trip seen by the client, in ms.
    pub time_ms: f64,
    /// False for a reply from a node that was not discovered.
    pub expected: bool,
    /// Whether the reply's signature checks against the node's key.
    pub signature: SignatureCheck,
}

/// The result of a round.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub request_id: String,
    pub discovered: Vec<String>,
    pub replies: Vec<ReplyRecord>,
    pub no_reply: Vec<String>,
    /// Nodes that match but are down (from the registries), and addressed nodes no hub has a link
    /// to (`since_ms` 0): they were not waited for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub down: Vec<DownNode>,
    /// Set when every hub link was lost before the round ended: what came before is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub_lost: Option<String>,
    pub discovery_ms: f64,
    pub elapsed_ms: f64,
    /// Copies of the request published again to nodes not heard from (NATS, after a lost
    /// message); each node still runs it at most once.
    #[serde(skip_serializing_if = "is_zero")]
    pub resent: usize,
    /// How a limited or staged round went: the subset, each node's batch, where it stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::rollout::Report>,
}

impl Outcome {
    pub fn ok_count(&self) -> usize {
        self.replies.iter().filter(|r| r.reply.status.is_ok()).count()
    }
    pub fn failed_count(&self) -> usize {
        self.replies.len() - self.ok_count()
    }

    /// MCollective's exit codes: 0 all ok, 1 nothing discovered, 2 some failed or missing,
    /// 3 discovered but no replies. (4, nothing at all, is for errors before anything was sent.)
    pub fn exit_code(&self) -> i32 {
        if self.discovered.is_empty() && self.replies.is_empty() && self.down.is_empty() {
            exit::NOTHING_DISCOVERED
        } else if self.replies.is_empty() {
            exit::NO_REPLIES
        } else if self.failed_count() > 0
            || !self.no_reply.is_empty()
            || !self.down.is_empty()
            || self.hub_lost.is_some()
            || self.rollout.as_ref().is_some_and(|r| r.stopped.is_some())
        {
            exit::SOME_FAILED
        } else {
            exit::OK
        }
    }
}

/// If the filter is only exact identities (`-I a -I b`), they are addressed directly.
pub fn direct_targets(filter: &Filter) -> Option<Vec<String>> {
    if filter.identity.is_empty()
        || !filter.fact.is_empty()
        || !filter.class.is_empty()
        || !filter.agent.is_empty()
        || !filter.compound.is_empty()
    {
        return None;
    }
    let mut out = Vec::new();
    for id in &filter.identity {
        let t = id.trim();
        if t.starts_with('/') {
            return None;
        }
        out.push(t.to_string());
    }
    Some(out)
}

/// The identities of a nodes file: one per line, or fleet's own `--json`/`--jsonl` output (each
/// reply's sender); `-` is standard input, read once per process.
pub fn read_nodes_file(path: &std::path::Path) -> Result<Vec<String>> {
    if path.as_os_str() == "-" {
        static STDIN: std::sync::OnceLock<std::result::Result<String, String>> = std::sync::OnceLock::new();
        let text = STDIN.get_or_init(|| std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string()));
        return match text {
            Ok(text) => Ok(crate::chain::identities(text)),
            Err(e) => Err(ClientError::Input(format!("cannot read node identities from standard input: {e}"))),
        };
    }
    let text = std::fs::read_to_string(path).map_err(|e| ClientError::io(format!("cannot read nodes file {}", path.display()), e))?;
    Ok(crate::chain::identities(&text))
}

pub(crate) fn new_request(
    spec: &Spec,
    agent: &str,
    action: &str,
    args: Map<String, Value>,
    targets: Vec<String>,
    timeout: Duration,
    reply: ReplyMode,
) -> Request {
    Request {
        id: fleet_protocol::new_request_id(),
        collective: spec.collective.clone(),
        // The link sets the caller: it is the name of the signing key.
        caller: String::new(),
        agent: agent.to_string(),
        action: action.to_string(),
        args,
        filter: spec.filter.clone(),
        targets,
        msgtime: fleet_protocol::now_ms(),
        ttl: spec.ttl,
        reply,
        timeout_ms: timeout.as_millis() as u64,
        fanout: fleet_protocol::Fanout::All,
    }
}

/// Above this many discovered nodes a registry-discovered request carries no target list: the hub
/// sends it to the registry's matches of the same filter, which is the set it just answered.
const TARGET_LIST_LIMIT: usize = 32;

/// Discovers the nodes a spec addresses.
pub async fn discover(client: &mut Client, spec: &Spec) -> Result<Vec<String>> {
    discover_with_down(client, spec).await.map(|(nodes, _)| nodes)
}

/// Discovers the nodes a spec addresses, and the matching nodes the registries know are down.
pub async fn discover_with_down(client: &mut Client, spec: &Spec) -> Result<(Vec<String>, Vec<DownNode>)> {
    if let Some(t) = &spec.targets {
        return Ok((t.clone(), Vec::new()));
    }
    if spec.method == DiscoveryMethod::Flatfile || spec.nodes_file.is_some() {
        let Some(path) = &spec.nodes_file else { return Err(ClientError::input("--dm flatfile needs --nodes FILE")) };
        let mut nodes = read_nodes_file(path)?;
        // A flatfile is still narrowed by any identity filter given with it.
        if !spec.filter.identity.is_empty() {
            let only_ids = Filter { identity: spec.filter.identity.clone(), ..Filter::default() };
            let expr = only_ids.compile()?;
            let none = Value::Null;
            nodes.retain(|n| expr.matches(&fleet_protocol::NodeView { identity: n, facts: &none, classes: &[], agents: Vec::new() }));
        }
        return Ok((nodes, Vec::new()));
    }
    if let Some(direct) = direct_targets(&spec.filter) {
        return Ok((direct, Vec::new()));
    }
    match spec.method {
        DiscoveryMethod::Registry | DiscoveryMethod::Flatfile => {
            match client.discover_all(&spec.filter, &spec.collective, spec.discovery_timeout).await {
                Ok(d) => Ok((d.nodes, d.down)),
                Err(ClientError::NoRegistry(why)) => {
                    tracing::info!("{why}; discovering by broadcast");
                    Ok((broadcast_discover(client, spec).await?, Vec::new()))
                }
                Err(e) => Err(e),
            }
        }
        DiscoveryMethod::Broadcast => Ok((broadcast_discover(client, spec).await?, Vec::new())),
    }
}

async fn broadcast_discover(client: &mut Client, spec: &Spec) -> Result<Vec<String>> {
    let req = new_request(spec, "rpcutil", "ping", Map::new(), Vec::new(), spec.discovery_timeout, ReplyMode::Normal);
    let id = req.id.clone();
    client.send(&Message::Request(Box::new(req))).await?;
    let hard = tokio::time::Instant::now() + spec.discovery_timeout;
    let silence = Duration::from_millis(500);
    let mut found = BTreeSet::new();
    loop {
        let deadline = if found.is_empty() { hard } else { (tokio::time::Instant::now() + silence).min(hard) };
        match client.recv_until(deadline).await? {
            Some(Message::Reply(r)) if r.request_id == id => {
                found.insert(r.sender.clone());
            }
            Some(Message::Error(e)) => return Err(ClientError::Hub(format!("hub refused the request: {}", e.message))),
            Some(_) => {}
            None => break,
        }
    }
    Ok(found.into_iter().collect())
}

/// Runs one round and reports progress as it goes. A spec with a [`Rollout`] picks its subset of
/// the discovered nodes and, with batches, a canary or a failure limit, runs as a rollout
/// ([`crate::rollout`]); otherwise one request goes to every node at once.
pub async fn run(client: &mut Client, spec: &Spec, mut on: impl FnMut(&Progress)) -> Result<Outcome> {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + spec.timeout;
    // Fail fast on a bad filter, with the parser's column-pointing message.
    let _: FilterExpr = spec.filter.compile()?;
    let (mut discovered, down) = discover_with_down(client, spec).await?;
    let discovery_ms = start.elapsed().as_secs_f64() * 1000.0;
    let mut limited = None;
    if let Some(rollout) = &spec.rollout
        && spec.targets.is_none()
    {
        let matched = discovered.len();
        discovered = rollout.select(discovered);
        limited = (discovered.len() < matched).then_some(matched);
    }
    on(&Progress::Discovered(discovered.clone()));
    let empty = |discovered: Vec<String>, down: Vec<DownNode>| Outcome {
        request_id: String::new(),
        discovered,
        replies: Vec::new(),
        no_reply: Vec::new(),
        down,
        hub_lost: None,
        discovery_ms,
        elapsed_ms: discovery_ms,
        resent: 0,
        rollout: None,
    };
    if discovered.is_empty() {
        return Ok(empty(discovered, down));
    }
    if let Some(rollout) = spec.rollout.as_ref().filter(|r| r.is_staged()) {
        let mut o = crate::rollout::execute(client, spec, rollout, &discovered, &mut on).await?;
        o.discovered = discovered;
        o.down.extend(down);
        o.discovery_ms = discovery_ms;
        o.elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
        if let Some(report) = &mut o.rollout {
            report.matched = limited;
            report.seed = limited.map(|_| rollout.seed);
        }
        return Ok(o);
    }
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    let by_registry = spec.targets.is_none()
        && spec.nodes_file.is_none()
        && limited.is_none()
        && spec.method == DiscoveryMethod::Registry
        && direct_targets(&spec.filter).is_none();
    let mut req = new_request(spec, &spec.agent, &spec.action, spec.args.clone(), discovered.clone(), remaining, ReplyMode::Normal);
    if by_registry && discovered.len() > TARGET_LIST_LIMIT {
        req.targets.clear();
        req.fanout = fleet_protocol::Fanout::RegistryMatch;
    }
    let id = req.id.clone();
    let mut collector = Collector::new(&discovered);
    collector.send(client, req, discovered.clone(), deadline).await?;
    while collector.waiting() > 0 && collector.hub_lost.is_none() {
        collector.step(client, deadline, &mut on).await?;
    }
    let mut o = collector.finish(client, empty(discovered, down));
    o.request_id = id;
    o.elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    if let (Some(matched), Some(rollout)) = (limited, &spec.rollout) {
        o.rollout = Some(crate::rollout::Report::limited(matched, rollout.seed));
    }
    Ok(o)
}

/// The part of one request a node had, once it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The node replied; `ok` tells whether its status was OK.
    Replied { node: String, ok: bool },
    /// No live hub has a link to the node.
    Down(String),
    /// The request's time ran out, or every hub link was lost, before the node replied.
    NoReply(String),
}

/// One request in flight.
struct InFlight {
    waiting: BTreeSet<String>,
    answered: BTreeSet<String>,
    sent_at: Instant,
    deadline: tokio::time::Instant,
    /// How many hub links it went through.
    sent_through: usize,
    /// Targets a hub has no link to, per hub that said so; a target no live hub reaches is down.
    dispatched: HashMap<usize, BTreeSet<String>>,
    /// Through two hubs a node gets the request twice and refuses the second copy as a replay;
    /// that refusal stands for the node only if nothing better came.
    replay_refusals: HashMap<String, Box<Reply>>,
    /// When to publish the request again to the nodes still waited for, where the transport can
    /// lose a message (NATS: a server died with it); `None` where it cannot.
    retry_at: Option<tokio::time::Instant>,
    retry_every: Duration,
}

/// The first retry's wait; each next one waits twice as long.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Requests in flight and the replies collected for them, by request id: replies are
/// de-duplicated across hubs, replay refusals held back, unreachable targets marked down, and a
/// request whose time ran out gives up on the nodes still waited for. A round sends one request;
/// a rollout one per node.
pub(crate) struct Collector {
    requests: HashMap<String, InFlight>,
    /// The nodes meant to be asked; a reply from anyone else is marked as not expected.
    expected: BTreeSet<String>,
    replies: Vec<ReplyRecord>,
    no_reply: Vec<String>,
    down: Vec<DownNode>,
    /// Set when every hub link was lost.
    pub hub_lost: Option<String>,
    /// Copies published again by retries.
    resent: usize,
}

impl Collector {
    pub fn new(expected: &[String]) -> Collector {
        Collector {
            requests: HashMap::new(),
            expected: expected.iter().cloned().collect(),
            replies: Vec::new(),
            no_reply: Vec::new(),
            down: Vec::new(),
            hub_lost: None,
            resent: 0,
        }
    }

    /// Sends `req`, waiting for replies from `targets` until `deadline`.
    pub async fn send(&mut self, client: &mut Client, req: Request, targets: Vec<String>, deadline: tokio::time::Instant) -> Result<()> {
        let id = req.id.clone();
        client.send(&Message::Request(Box::new(req))).await?;
        let flight = InFlight {
            waiting: targets.into_iter().collect(),
            answered: BTreeSet::new(),
            sent_at: Instant::now(),
            deadline,
            sent_through: client.live_links(),
            dispatched: HashMap::new(),
            replay_refusals: HashMap::new(),
            retry_at: client.can_resend().then(|| tokio::time::Instant::now() + FIRST_RETRY),
            retry_every: FIRST_RETRY,
        };
        self.requests.insert(id, flight);
        Ok(())
    }

    /// How many nodes are still waited for.
    pub fn waiting(&self) -> usize {
        self.requests.values().map(|r| r.waiting.len()).sum()
    }

    /// Handles what arrives until one node's part ends or `until` passes, whichever is first;
    /// requests whose own deadline passed give up on their nodes. Returns the nodes that ended.
    pub async fn step(&mut self, client: &mut Client, until: tokio::time::Instant, on: &mut impl FnMut(&Progress)) -> Result<Vec<Ended>> {
        loop {
            self.retry_due(client).await;
            let next_deadline = self.requests.values().flat_map(|r| [Some(r.deadline), r.retry_at]).flatten().min();
            let wait_until = next_deadline.map_or(until, |d| d.min(until));
            let next = match client.recv_from_until(wait_until).await {
                Ok(next) => next,
                Err(e) => {
                    self.hub_lost = Some(e.to_string());
                    return Ok(self.give_up(client, |_| true));
                }
            };
            let ended = match next {
                Some((link, msg)) => self.handle(client, link, msg, on)?,
                None => {
                    let now = tokio::time::Instant::now();
                    let ended = self.give_up(client, |r| r.deadline <= now);
                    if !ended.is_empty() || now >= until {
                        return Ok(ended);
                    }
                    continue;
                }
            };
            if !ended.is_empty() || tokio::time::Instant::now() >= until {
                return Ok(ended);
            }
        }
    }

    fn handle(&mut self, client: &Client, link: usize, msg: Message, on: &mut impl FnMut(&Progress)) -> Result<Vec<Ended>> {
        match msg {
            Message::Reply(r) => {
                let Some(flight) = self.requests.get_mut(&r.request_id) else { return Ok(Vec::new()) };
                if flight.answered.contains(&r.sender) {
                    return Ok(Vec::new()); // a duplicate through a second hub
                }
                if flight.sent_through > 1 && is_replay_refusal(&r) {
                    flight.replay_refusals.insert(r.sender.clone(), r);
                    return Ok(Vec::new());
                }
                flight.answered.insert(r.sender.clone());
                flight.waiting.remove(&r.sender);
                let rtt = flight.sent_at.elapsed();
                let id = r.request_id.clone();
                let expected = self.expected.contains(&r.sender);
                let signature = client.reply_check(&r.request_id, &r.sender);
                on(&Progress::Reply { reply: r.clone(), expected, rtt, signature });
                let ended = Ended::Replied { node: r.sender.clone(), ok: r.status.is_ok() };
                self.replies.push(ReplyRecord { reply: *r, time_ms: rtt.as_secs_f64() * 1000.0, expected, signature });
                self.retire(&id);
                Ok(if expected { vec![ended] } else { Vec::new() })
            }
            Message::Dispatched(d) => {
                let Some(flight) = self.requests.get_mut(&d.request_id) else { return Ok(Vec::new()) };
                on(&Progress::Sent { request_id: d.request_id.clone(), unknown: d.unknown.clone() });
                flight.dispatched.insert(link, d.unknown.into_iter().collect());
                let mut ended = Vec::new();
                if flight.dispatched.len() >= client.live_links() {
                    let mut sets = flight.dispatched.values();
                    let first = sets.next().cloned().unwrap_or_default();
                    let unreachable: BTreeSet<String> = sets.fold(first, |acc, s| acc.intersection(s).cloned().collect());
                    for node in unreachable {
                        if flight.waiting.remove(&node) {
                            self.down.push(DownNode { identity: node.clone(), since_ms: 0 });
                            ended.push(Ended::Down(node));
                        }
                    }
                }
                self.retire(&d.request_id);
                Ok(ended)
            }
            Message::Error(e) => Err(ClientError::Hub(format!("hub refused the request: {}", e.message))),
            _ => Ok(Vec::new()),
        }
    }

    /// Publishes again the requests whose retry is due, to the nodes still waited for; the same
    /// signed frame, so a node that already ran one only sends its reply again.
    async fn retry_due(&mut self, client: &mut Client) {
        let now = tokio::time::Instant::now();
        for (id, flight) in &mut self.requests {
            let Some(at) = flight.retry_at.filter(|at| *at <= now) else { continue };
            let waiting: Vec<String> = flight.waiting.iter().cloned().collect();
            let sent = client.resend(id, &waiting).await;
            self.resent += sent;
            tracing::debug!(request = %id, waiting = waiting.len(), sent, "request published again to the nodes not heard from");
            flight.retry_every *= 2;
            flight.retry_at = Some(at.max(now) + flight.retry_every).filter(|next| *next < flight.deadline);
        }
    }

    /// Forgets a request nobody is waited for any more.
    fn retire(&mut self, id: &str) {
        if self.requests.get(id).is_some_and(|r| r.waiting.is_empty()) {
            self.requests.remove(id);
        }
    }

    /// Ends the requests `which` picks: a node with a held replay refusal gets it as its reply,
    /// every other node still waited for gave no reply.
    fn give_up(&mut self, client: &Client, which: impl Fn(&InFlight) -> bool) -> Vec<Ended> {
        let ids: Vec<String> = self.requests.iter().filter(|(_, r)| which(r)).map(|(id, _)| id.clone()).collect();
        let mut ended = Vec::new();
        for id in ids {
            let Some(mut flight) = self.requests.remove(&id) else { continue };
            for node in std::mem::take(&mut flight.waiting) {
                match flight.replay_refusals.remove(&node) {
                    Some(r) => {
                        ended.push(Ended::Replied { node: node.clone(), ok: r.status.is_ok() });
                        self.replies.push(ReplyRecord {
                            signature: client.reply_check(&r.request_id, &r.sender),
                            time_ms: flight.sent_at.elapsed().as_secs_f64() * 1000.0,
                            expected: self.expected.contains(&node),
                            reply: *r,
                        });
                    }
                    None => {
                        self.no_reply.push(node.clone());
                        ended.push(Ended::NoReply(node));
                    }
                }
            }
        }
        ended
    }

    /// The replies, silences and down nodes collected, added to `o`; nodes still waited for gave
    /// no reply.
    pub fn finish(mut self, client: &Client, mut o: Outcome) -> Outcome {
        self.give_up(client, |_| true);
        o.replies = self.replies;
        o.no_reply = self.no_reply;
        o.no_reply.sort();
        o.down.extend(self.down);
        o.hub_lost = self.hub_lost;
        o.resent += self.resent;
        o
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A node's refusal of a request id it already received (here: the same request through a
/// second hub).
fn is_replay_refusal(r: &Reply) -> bool {
    r.status == fleet_protocol::Status::Denied && r.status_msg.starts_with("replayed request")
}

/// Sends a fire-and-forget request: no discovery, no replies. Returns the request id.
pub async fn fire_and_forget(client: &mut Client, spec: &Spec) -> Result<String> {
    let _: FilterExpr = spec.filter.compile()?;
    let targets = spec.targets.clone().unwrap_or_default();
    let req = new_request(spec, &spec.agent, &spec.action, spec.args.clone(), targets, spec.timeout, ReplyMode::None);
    let id = req.id.clone();
    client.send(&Message::Request(Box::new(req))).await?;
    // Wait for the hub's dispatch note so the frame is known to have left this process.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Some(m) = client.recv_until(deadline).await? {
        match m {
            Message::Dispatched(d) if d.request_id == id => break,
            Message::Error(e) => return Err(ClientError::Hub(format!("hub refused the request: {}", e.message))),
            _ => {}
        }
    }
    Ok(id)
}
