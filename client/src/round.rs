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
        } else if self.failed_count() > 0 || !self.no_reply.is_empty() || !self.down.is_empty() || self.hub_lost.is_some() {
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

pub fn read_nodes_file(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| ClientError::io(format!("cannot read nodes file {}", path.display()), e))?;
    let nodes: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect();
    Ok(nodes)
}

fn new_request(
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
            let d = client.discover_all(&spec.filter, &spec.collective, spec.discovery_timeout).await?;
            Ok((d.nodes, d.down))
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

/// Runs one round and reports progress as it goes.
pub async fn run(client: &mut Client, spec: &Spec, mut on: impl FnMut(&Progress)) -> Result<Outcome> {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + spec.timeout;
    // Fail fast on a bad filter, with the parser's column-pointing message.
    let _: FilterExpr = spec.filter.compile()?;
    let (discovered, mut down) = discover_with_down(client, spec).await?;
    let discovery_ms = start.elapsed().as_secs_f64() * 1000.0;
    on(&Progress::Discovered(discovered.clone()));
    if discovered.is_empty() {
        return Ok(Outcome {
            request_id: String::new(),
            discovered,
            replies: Vec::new(),
            no_reply: Vec::new(),
            down,
            hub_lost: None,
            discovery_ms,
            elapsed_ms: discovery_ms,
        });
    }
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    let by_registry = spec.targets.is_none()
        && spec.nodes_file.is_none()
        && spec.method == DiscoveryMethod::Registry
        && direct_targets(&spec.filter).is_none();
    let mut req = new_request(spec, &spec.agent, &spec.action, spec.args.clone(), discovered.clone(), remaining, ReplyMode::Normal);
    if by_registry && discovered.len() > TARGET_LIST_LIMIT {
        req.targets.clear();
        req.fanout = fleet_protocol::Fanout::RegistryMatch;
    }
    let id = req.id.clone();
    let sent_at = Instant::now();
    client.send(&Message::Request(Box::new(req))).await?;
    let sent_through = client.live_links();
    let mut waiting: BTreeSet<String> = discovered.iter().cloned().collect();
    let expected_set: BTreeSet<String> = waiting.clone();
    let mut replies = Vec::new();
    let mut seen: HashMap<String, ()> = HashMap::new();
    // Targets a hub has no link to, per hub that said so; a target no live hub reaches is down.
    let mut dispatched: HashMap<usize, BTreeSet<String>> = HashMap::new();
    // Through two hubs a node gets the request twice and refuses the second copy as a replay;
    // that refusal stands for the node only if nothing better came.
    let mut replay_refusals: HashMap<String, Box<Reply>> = HashMap::new();
    let mut hub_lost = None;
    while !waiting.is_empty() {
        let next = match client.recv_from_until(deadline).await {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(e) => {
                hub_lost = Some(e.to_string());
                break;
            }
        };
        match next {
            (_, Message::Reply(r)) if r.request_id == id => {
                if seen.contains_key(&r.sender) {
                    continue; // a duplicate through a second hub
                }
                if sent_through > 1 && is_replay_refusal(&r) {
                    replay_refusals.insert(r.sender.clone(), r);
                    continue;
                }
                seen.insert(r.sender.clone(), ());
                let expected = expected_set.contains(&r.sender);
                waiting.remove(&r.sender);
                let rtt = sent_at.elapsed();
                let signature = client.reply_check(&r.request_id, &r.sender);
                on(&Progress::Reply { reply: r.clone(), expected, rtt, signature });
                replies.push(ReplyRecord { reply: *r, time_ms: rtt.as_secs_f64() * 1000.0, expected, signature });
            }
            (link, Message::Dispatched(d)) if d.request_id == id => {
                on(&Progress::Sent { request_id: id.clone(), unknown: d.unknown.clone() });
                dispatched.insert(link, d.unknown.into_iter().collect());
                if dispatched.len() >= client.live_links() {
                    let mut sets = dispatched.values();
                    let first = sets.next().cloned().unwrap_or_default();
                    let unreachable: BTreeSet<String> = sets.fold(first, |acc, s| acc.intersection(s).cloned().collect());
                    for node in unreachable {
                        if waiting.remove(&node) {
                            down.push(DownNode { identity: node, since_ms: 0 });
                        }
                    }
                }
            }
            (_, Message::Error(e)) => return Err(ClientError::Hub(format!("hub refused the request: {}", e.message))),
            _ => {}
        }
    }
    for (sender, r) in replay_refusals {
        if waiting.remove(&sender) {
            let rtt = sent_at.elapsed();
            let signature = client.reply_check(&r.request_id, &r.sender);
            replies.push(ReplyRecord {
                reply: *r,
                time_ms: rtt.as_secs_f64() * 1000.0,
                expected: expected_set.contains(&sender),
                signature,
            });
        }
    }
    Ok(Outcome {
        request_id: id,
        discovered,
        replies,
        no_reply: waiting.into_iter().collect(),
        down,
        hub_lost,
        discovery_ms,
        elapsed_ms: start.elapsed().as_secs_f64() * 1000.0,
    })
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
