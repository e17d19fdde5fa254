//! The console's side of its hub links: attach to every hub of the list at once, say hello,
//! discover, send each request through every hub, and read what comes back from any of them.
//! A hub that dies mid-request costs nothing while another is attached: the nodes are attached to
//! every hub too, and replies are de-duplicated by sender in the round. Used by the CLI commands
//! and, from a background task, by the full-screen console.
//!
//! The list's `nats://` entries are one more link: a NATS cluster ([`nats`]), used the same way by
//! everything above this module.

mod inbound;
mod nats;
mod node_keys;

pub use node_keys::NodeKeys;

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fleet_protocol::codec::{Limits, encode_message};
use fleet_protocol::keys::KeyPair;
use fleet_protocol::noise::Session;
use fleet_protocol::transport::{Link, LinkReceiver, LinkSender};
use fleet_protocol::{Discover, Discovered, DownNode, Envelope, Filter, Hello, Message};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::{ClientError, Result};
use crate::scope::Settings;

/// Who signs this console's requests: the caller id (the key's name) and its key pair.
#[derive(Clone)]
pub struct Signer {
    pub caller: String,
    pub key: Arc<KeyPair>,
}

impl Signer {
    /// Loads a private key file; the caller id is the file name without `.key`.
    pub fn load(path: &Path) -> Result<Signer> {
        let key =
            KeyPair::load_private(path).map_err(|e| ClientError::Config(format!("loading the signing key {}: {e}", path.display())))?;
        let caller = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| ClientError::Config(format!("key file {} has no usable name", path.display())))?
            .to_string();
        Ok(Signer { caller, key: Arc::new(key) })
    }
}

/// What this console proves itself with and whom it trusts, passed to every link it opens.
#[derive(Clone, Default)]
pub struct Credentials {
    /// Signs requests and authenticates the link; without it nothing can be sent.
    pub signer: Option<Signer>,
    /// The hub's pinned link key.
    pub hub_key: Option<[u8; 32]>,
    /// Node keys, to check the signature on every reply (`$XDG_CONFIG_HOME/fleet/nodes`).
    pub known_nodes: NodeKeys,
    /// Where the signing key and the hub key were looked for, to say so when one is missing.
    pub looked_for: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// What the signature on a reply says about its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureCheck {
    /// Signed by the key this console knows for that node.
    Verified,
    /// No key for that node here, so it could not be checked.
    Unverified,
    /// Unsigned, signed by someone else, or altered: not from that node.
    Bad,
}

/// One attached hub, or one NATS cluster.
struct HubLink {
    hub: String,
    way: Way,
    alive: bool,
}

enum Way {
    /// A ZeroMQ hub: where to send, and the link's Noise session (shared with its reader task,
    /// which opens what arrives).
    Zmq {
        tx: LinkSender,
        session: Arc<Mutex<Session>>,
        reader: JoinHandle<()>,
    },
    Nats(Box<nats::NatsWay>),
}

/// What a link's reader task hands over: a decrypted frame, or the link's end.
enum Inbound {
    Frame { link: usize, frame: Vec<u8> },
    Closed { link: usize, why: String },
}

/// The links to every reachable hub of the list, used as one.
pub struct Client {
    links: Vec<HubLink>,
    inbox: mpsc::UnboundedReceiver<Inbound>,
    limits: Limits,
    signer: Option<Signer>,
    known_nodes: NodeKeys,
    /// Signature checks of the replies received, by (request id, sender).
    checks: HashMap<(String, String), SignatureCheck>,
    /// Frames taken in with the last burst and not handed out yet, in arrival order.
    ready: VecDeque<inbound::Ready>,
}

impl Drop for Client {
    fn drop(&mut self) {
        for l in &self.links {
            if let Way::Zmq { reader, .. } = &l.way {
                reader.abort();
            }
        }
    }
}

/// A link that passed the handshake.
struct Attached {
    hub: String,
    tx: LinkSender,
    rx: LinkReceiver,
    session: Session,
}

/// Attaches to one hub: the transport, then the Noise IK handshake against the pinned hub key.
/// Errors are in the admin's words.
async fn attach(hub: String, signer: Signer, hub_key: [u8; 32], timeout: Duration) -> Result<Attached, String> {
    let link = match Link::connect(&hub, timeout).await {
        Ok(link) => link,
        Err(e) => return Err(crate::diagnose::connect_failure(&hub, &e.to_string(), timeout).await),
    };
    let (mut tx, mut rx) = link.split();
    let (init, hello) = fleet_protocol::noise::Initiator::start(&signer.key, &hub_key, &signer.caller)
        .map_err(|e| format!("{hub}: cannot start the link handshake: {e}"))?;
    tx.send(Bytes::from(hello)).await.map_err(|e| format!("{hub}: sending the link handshake: {e}"))?;
    let reply = match tokio::time::timeout(timeout, rx.recv()).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => return Err(format!("{hub}: the hub closed the link during the handshake")),
        Err(_) => {
            return Err(format!(
                "{hub}: no answer to the link handshake within {:.0} s: this console's key is not enrolled yet \
                 (on the hub: noded hub enroll --list, then noded hub enroll --accept {} --role console), \
                 or the pinned hub key is not this hub's (FLEET_HUB_KEY / hub_key)",
                timeout.as_secs_f64(),
                signer.caller
            ));
        }
    };
    let session = init.finish(&reply).map_err(|e| {
        format!("{hub}: hub key mismatch: the hub's answer does not match the pinned hub key (FLEET_HUB_KEY / hub_key) ({e})")
    })?;
    Ok(Attached { hub, tx, rx, session })
}

/// Reads one link: opens each frame with the link's session and hands it to the client's inbox.
fn spawn_reader(link: usize, mut rx: LinkReceiver, session: Arc<Mutex<Session>>, inbox: mpsc::UnboundedSender<Inbound>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let sealed = match rx.recv().await {
                Ok(f) => f,
                Err(e) => {
                    let _ = inbox.send(Inbound::Closed { link, why: e.to_string() });
                    return;
                }
            };
            let opened = session.lock().expect("link session lock").open(&sealed);
            match opened {
                Ok(frame) => {
                    if inbox.send(Inbound::Frame { link, frame }).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "dropping a frame that does not decrypt"),
            }
        }
    })
}

impl Client {
    /// Attaches to every hub of the settings' list at once. It is enough that one answers; the
    /// others are named in a warning.
    pub async fn connect(settings: &Settings, credentials: &Credentials, subscribe: bool) -> Result<Client> {
        let (key_at, hub_key_at) = match &credentials.looked_for {
            Some((k, h)) => (format!(" at {}", k.display()), format!(" at {}", h.display())),
            None => (String::new(), String::new()),
        };
        let signer = credentials.signer.clone().ok_or_else(|| {
            ClientError::Config(format!(
                "no key{key_at}: create one with `fleet keygen NAME` (it signs requests and authenticates the link), \
                 or pick one with --caller NAME or FLEET_KEY=FILE"
            ))
        })?;
        if settings.hubs.is_empty() {
            return Err(ClientError::Config("no hub: set `hubs` in the config, FLEET_HUB, or --hub".into()));
        }
        let (nats_servers, zmq_hubs) = fleet_protocol::nats::split_endpoints(&settings.hubs);
        let hub_key = match zmq_hubs.is_empty() {
            true => [0; 32],
            false => credentials.hub_key.ok_or_else(|| {
                ClientError::Config(format!(
                    "no hub key{hub_key_at}: copy the hub's hub.pub there (or set `hub_key` in the config, or FLEET_HUB_KEY=FILE)"
                ))
            })?,
        };
        let tasks: Vec<_> =
            zmq_hubs.iter().map(|hub| tokio::spawn(attach(hub.clone(), signer.clone(), hub_key, settings.connect_timeout))).collect();
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        let mut links = Vec::new();
        let mut errors = Vec::new();
        for task in tasks {
            match task.await {
                Ok(Ok(a)) => {
                    let session = Arc::new(Mutex::new(a.session));
                    let reader = spawn_reader(links.len(), a.rx, session.clone(), inbox_tx.clone());
                    links.push(HubLink { hub: a.hub, way: Way::Zmq { tx: a.tx, session, reader }, alive: true });
                }
                Ok(Err(e)) => errors.push(e),
                Err(e) => errors.push(format!("attaching: {e}")),
            }
        }
        if !nats_servers.is_empty() {
            let shown = nats_servers.iter().map(|s| fleet_protocol::nats::redact(s)).collect::<Vec<_>>().join(",");
            match nats::NatsWay::attach(nats_servers, &settings.nats, links.len(), inbox_tx.clone(), settings.connect_timeout).await {
                Ok(way) => links.push(HubLink { hub: shown, way: Way::Nats(Box::new(way)), alive: true }),
                Err(e) => errors.push(e),
            }
        }
        if links.is_empty() {
            let all = errors.join("; ");
            return Err(ClientError::NoHub(if settings.hubs.len() == 1 { all } else { format!("no hub reachable: {all}") }));
        }
        for e in &errors {
            tracing::warn!("hub not attached: {e}");
        }
        let mut c = Client {
            links,
            inbox,
            limits: Limits::default(),
            signer: Some(signer),
            known_nodes: credentials.known_nodes.clone(),
            checks: Default::default(),
            ready: VecDeque::new(),
        };
        let name = format!("fleet-{}", std::process::id());
        c.send(&Message::Hello(Hello { name, subscribe })).await?;
        Ok(c)
    }

    /// The hubs attached and alive, comma separated.
    pub fn hub(&self) -> String {
        self.live_hubs().join(", ")
    }

    /// The hubs attached and alive.
    pub fn live_hubs(&self) -> Vec<String> {
        self.links.iter().filter(|l| l.alive).map(|l| l.hub.clone()).collect()
    }

    /// The signature check of a reply this client received.
    pub fn reply_check(&self, request_id: &str, sender: &str) -> SignatureCheck {
        self.checks.get(&(request_id.to_string(), sender.to_string())).copied().unwrap_or(SignatureCheck::Unverified)
    }

    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// Sends a message through every live hub. Requests are signed, and their caller is the
    /// signing key's name: a node refuses any request whose caller and key disagree. An error
    /// only when no hub took it.
    pub async fn send(&mut self, msg: &Message) -> Result<()> {
        let frame = match (msg, &self.signer) {
            (Message::Request(req), Some(signer)) => {
                let mut req = req.clone();
                req.caller = signer.caller.clone();
                let mut env = Envelope::seal(&Message::Request(req)).map_err(|e| ClientError::input(format!("encoding request: {e}")))?;
                env.sign(&signer.key, &signer.caller);
                env.to_frame().map_err(|e| ClientError::input(format!("encoding request: {e}")))?
            }
            (Message::Request(_), None) => {
                return Err(ClientError::Config(
                    "no signing key: create one with `fleet keygen NAME` (see `fleet keygen --help`), or set FLEET_KEY".into(),
                ));
            }
            _ => encode_message(msg).map_err(|e| ClientError::input(format!("encoding message: {e}")))?,
        };
        let mut sent = 0;
        let mut not_here = 0;
        let mut errors = Vec::new();
        for l in self.links.iter_mut().filter(|l| l.alive) {
            let (tx, session) = match &mut l.way {
                Way::Zmq { tx, session, .. } => (tx, session),
                Way::Nats(way) => {
                    match way.send(msg, &frame).await {
                        Ok(nats::Sent::Yes) => sent += 1,
                        Ok(nats::Sent::NotHere) => not_here += 1,
                        Err(e) => errors.push(format!("{}: {e}", l.hub)),
                    }
                    continue;
                }
            };
            let sealed = session.lock().expect("link session lock").seal(&frame);
            let result = match sealed {
                Ok(sealed) => tx.send(Bytes::from(sealed)).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(()) => sent += 1,
                Err(e) => {
                    tracing::warn!(hub = %l.hub, error = %e, "hub link lost while sending");
                    l.alive = false;
                    errors.push(format!("{}: {e}", l.hub));
                }
            }
        }
        if sent == 0 && not_here > 0 && errors.is_empty() {
            return Err(ClientError::Hub(format!(
                "{:?} needs a ZeroMQ hub (noded hub): a NATS cluster has no hub to keep hub counters or live metrics",
                msg.kind()
            )));
        }
        if sent == 0 {
            return Err(ClientError::Hub(format!(
                "hub lost: {}",
                if errors.is_empty() { "no hub attached".into() } else { errors.join("; ") }
            )));
        }
        Ok(())
    }

    /// The next message from any hub, and which link it came on; malformed frames are skipped.
    /// Cancel-safe: nothing taken from the links is held across its one await.
    async fn recv_from(&mut self) -> Result<(usize, Message)> {
        loop {
            let Some(ready) = self.ready.pop_front() else {
                let Some(first) = self.inbox.recv().await else {
                    return Err(ClientError::Hub("hub lost: every hub link is closed".into()));
                };
                // Whatever else is already queued comes in with it, so that the replies'
                // signatures are checked in one batch.
                let burst = inbound::burst(first, &mut self.inbox);
                self.ready.extend(inbound::take_in(burst, self.known_nodes.get(), &self.limits));
                continue;
            };
            match ready {
                inbound::Ready::Closed { link, why } => {
                    self.links[link].alive = false;
                    tracing::warn!(hub = %self.links[link].hub, %why, "hub link closed");
                    if self.links.iter().any(|l| l.alive) {
                        continue;
                    }
                    return Err(ClientError::Hub(format!("hub lost: {} closed the link", self.links[link].hub)));
                }
                inbound::Ready::Message { link, message, check } => {
                    if let (Message::Reply(r), Some(check)) = (&message, check) {
                        self.note_check(&r.request_id, &r.sender, check);
                    }
                    return Ok((link, message));
                }
            }
        }
    }

    /// Keeps a reply's signature check for [`reply_check`](Self::reply_check), as the reply is
    /// handed out.
    fn note_check(&mut self, request_id: &str, sender: &str, check: SignatureCheck) {
        if check == SignatureCheck::Bad {
            tracing::warn!(%sender, request = %request_id, "reply signature does not check against the node's key");
        }
        if self.checks.len() > 100_000 {
            self.checks.clear();
        }
        // A reply that came through two hubs keeps the worse check.
        let slot = self.checks.entry((request_id.to_string(), sender.to_string())).or_insert(check);
        if check == SignatureCheck::Bad {
            *slot = check;
        }
    }

    /// The next message from any hub.
    pub async fn recv(&mut self) -> Result<Message> {
        self.recv_from().await.map(|(_, m)| m)
    }

    /// Like [`recv`](Self::recv) with a deadline; `None` when it passes.
    pub async fn recv_until(&mut self, deadline: tokio::time::Instant) -> Result<Option<Message>> {
        match tokio::time::timeout_at(deadline, self.recv()).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Like [`recv_until`](Self::recv_until), also saying which hub link the message came on.
    pub async fn recv_from_until(&mut self, deadline: tokio::time::Instant) -> Result<Option<(usize, Message)>> {
        match tokio::time::timeout_at(deadline, self.recv_from()).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// How many hub links are alive.
    pub fn live_links(&self) -> usize {
        self.links.iter().filter(|l| l.alive).count()
    }

    /// Asks every hub's registry which nodes match, and merges the answers: a node live on any
    /// hub is live; a node down on every hub that knows it is down, since the latest time seen.
    pub async fn discover_all(&mut self, filter: &Filter, collective: &str, timeout: Duration) -> Result<Discovered> {
        let question = Discover { filter: filter.clone(), collective: Some(collective.to_string()) };
        self.send(&Message::Discover(question.clone())).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut answered: Vec<bool> = vec![false; self.links.len()];
        let mut nodes = std::collections::BTreeSet::new();
        let mut down: std::collections::BTreeMap<String, u64> = Default::default();
        let mut refusal = None;
        let mut no_registry = None;
        // Takes in one link's answer; a refusal is handed back.
        let mut merge = |answered: &mut Vec<bool>, link: usize, msg: Message| match msg {
            Message::Discovered(d) => {
                answered[link] = true;
                nodes.extend(d.nodes);
                for n in d.down {
                    let since = down.entry(n.identity).or_insert(n.since_ms);
                    *since = (*since).max(n.since_ms);
                }
                None
            }
            Message::Error(e) => {
                answered[link] = true;
                Some(e.message)
            }
            _ => None,
        };
        // A NATS cluster's registries answer a request of their own, at once.
        for (i, l) in self.links.iter().enumerate().filter(|(_, l)| l.alive) {
            if let Way::Nats(way) = &l.way {
                match way.discover(&question, timeout, &self.limits).await {
                    Ok(Some(answers)) => {
                        for answer in answers {
                            refusal = merge(&mut answered, i, answer).or(refusal);
                        }
                    }
                    Ok(None) => no_registry = Some(l.hub.clone()),
                    Err(e) => refusal = Some(format!("{}: {e}", l.hub)),
                }
            }
        }
        loop {
            let waiting = self.links.iter().enumerate().any(|(i, l)| l.alive && !answered[i] && matches!(l.way, Way::Zmq { .. }));
            if !waiting {
                break;
            }
            let next = match tokio::time::timeout_at(deadline, self.recv_from()).await {
                Ok(r) => r?,
                Err(_) => break,
            };
            refusal = merge(&mut answered, next.0, next.1).or(refusal);
        }
        if !answered.iter().any(|a| *a) {
            if let Some(servers) = no_registry {
                return Err(ClientError::NoRegistry(format!("no registry runs on NATS {servers} (start one: noded registry)")));
            }
            return Err(match refusal {
                Some(e) => ClientError::Hub(format!("hub refused discovery: {e}")),
                None => ClientError::Hub(format!("hub {} did not answer discovery within {:.1} s", self.hub(), timeout.as_secs_f64())),
            });
        }
        let down =
            down.into_iter().filter(|(id, _)| !nodes.contains(id)).map(|(identity, since_ms)| DownNode { identity, since_ms }).collect();
        Ok(Discovered { nodes: nodes.into_iter().collect(), down })
    }

    /// The live nodes that match, from every hub's registry.
    pub async fn discover(&mut self, filter: &Filter, collective: &str, timeout: Duration) -> Result<Vec<String>> {
        self.discover_all(filter, collective, timeout).await.map(|d| d.nodes)
    }

    /// Asks every hub for live metrics of the nodes and series in `ask` (replacing what this
    /// console asked before); they come in as `MetricUpdate` messages from [`recv`](Self::recv).
    /// Through two hubs each sample comes twice, stamped by each hub's clock.
    pub async fn subscribe_metrics(&mut self, ask: fleet_protocol::MetricSubscribe) -> Result<()> {
        self.send(&Message::MetricSubscribe(ask)).await
    }

    /// Publishes request `id` again, the very same signed frame, to each of `nodes` directly,
    /// where the transport can (NATS); returns how many copies went out (0 on ZeroMQ hubs, which
    /// lose nothing a retry could bring back).
    pub async fn resend(&mut self, id: &str, nodes: &[String]) -> usize {
        let mut sent = 0;
        for l in self.links.iter_mut().filter(|l| l.alive) {
            if let Way::Nats(way) = &mut l.way {
                sent += way.resend(id, nodes).await;
            }
        }
        sent
    }

    /// Whether [`resend`](Self::resend) can do anything here.
    pub fn can_resend(&self) -> bool {
        self.links.iter().any(|l| l.alive && matches!(l.way, Way::Nats(_)))
    }

    /// The counters of the first hub that answers.
    pub async fn hub_stats(&mut self, timeout: Duration) -> Result<fleet_protocol::HubStats> {
        self.send(&Message::StatsQuery).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.recv_until(deadline).await? {
                Some(Message::HubStats(s)) => return Ok(s),
                Some(_) => continue,
                None => {
                    return Err(ClientError::Hub(format!("hub {} did not answer within {:.0} s", self.hub(), timeout.as_secs_f64())));
                }
            }
        }
    }
}
