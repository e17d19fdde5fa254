//! The console's side of a hub link: attach, say hello, discover, send requests and read what
//! comes back. Used by the CLI commands and, from a background task, by the full-screen console.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fleet_protocol::codec::{Limits, decode_message, encode_message};
use fleet_protocol::keys::{KeyPair, Keyring};
use fleet_protocol::transport::{Link, LinkReceiver, LinkSender};
use fleet_protocol::{Discover, Envelope, Filter, Hello, Message};

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
    pub known_nodes: Arc<Keyring>,
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

pub struct Client {
    tx: LinkSender,
    rx: LinkReceiver,
    limits: Limits,
    hub: String,
    signer: Option<Signer>,
    known_nodes: Arc<Keyring>,
    session: fleet_protocol::noise::Session,
    /// Signature checks of the replies received, by (request id, sender).
    checks: HashMap<(String, String), SignatureCheck>,
}

impl Client {
    /// Attaches to the first reachable hub of the settings' list.
    pub async fn connect(settings: &Settings, credentials: &Credentials, subscribe: bool) -> Result<Client> {
        let signer = credentials.signer.clone().ok_or_else(|| {
            ClientError::Config(
                "no key: create one with `fleet keygen NAME` (it signs requests and authenticates the link), or set FLEET_KEY".into(),
            )
        })?;
        let hub_key = credentials.hub_key.ok_or_else(|| {
            ClientError::Config(
                "no hub key: put the hub's public key in $XDG_CONFIG_HOME/fleet/hub.pub (or set `hub_key` / FLEET_HUB_KEY)".into(),
            )
        })?;
        let timeout = settings.connect_timeout;
        let mut errors = Vec::new();
        for hub in &settings.hubs {
            match Link::connect(hub, timeout).await {
                Ok(link) => {
                    let (mut tx, mut rx) = link.split();
                    let (init, hello) = fleet_protocol::noise::Initiator::start(&signer.key, &hub_key, &signer.caller)
                        .map_err(|e| ClientError::NoHub(format!("{hub}: cannot start the link handshake: {e}")))?;
                    if let Err(e) = tx.send(Bytes::from(hello)).await {
                        errors.push(format!("{hub}: sending the link handshake: {e}"));
                        continue;
                    }
                    let reply = match tokio::time::timeout(timeout, rx.recv()).await {
                        Ok(Ok(r)) => r,
                        Ok(Err(e)) => {
                            errors.push(format!("{hub}: the hub closed the link during the handshake ({e})"));
                            continue;
                        }
                        Err(_) => {
                            errors.push(format!(
                                "{hub}: no answer to the link handshake (is this console's key enrolled? noded hub enroll --accept {})",
                                signer.caller
                            ));
                            continue;
                        }
                    };
                    let session = match init.finish(&reply) {
                        Ok(s) => s,
                        Err(e) => {
                            errors.push(format!("{hub}: link handshake failed, wrong hub key? ({e})"));
                            continue;
                        }
                    };
                    let mut c = Client {
                        tx,
                        rx,
                        limits: Limits::default(),
                        hub: hub.clone(),
                        signer: Some(signer.clone()),
                        known_nodes: credentials.known_nodes.clone(),
                        session,
                        checks: Default::default(),
                    };
                    let name = format!("fleet-{}", std::process::id());
                    c.send(&Message::Hello(Hello { name, subscribe })).await?;
                    return Ok(c);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(ClientError::NoHub(format!("no hub reachable: {}", errors.join("; "))))
    }

    pub fn hub(&self) -> &str {
        &self.hub
    }

    fn check_reply(&self, frame: &[u8], sender: &str) -> SignatureCheck {
        let ring = &self.known_nodes;
        if ring.get(sender).is_none() {
            return SignatureCheck::Unverified;
        }
        match Envelope::from_frame(frame, &self.limits).map(|env| env.verify(ring)) {
            Ok(Ok(signer)) if signer == sender => SignatureCheck::Verified,
            _ => SignatureCheck::Bad,
        }
    }

    /// The signature check of a reply this client received.
    pub fn reply_check(&self, request_id: &str, sender: &str) -> SignatureCheck {
        self.checks.get(&(request_id.to_string(), sender.to_string())).copied().unwrap_or(SignatureCheck::Unverified)
    }

    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// Sends a message. Requests are signed, and their caller is the signing key's name: a node
    /// refuses any request whose caller and key disagree.
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
        let frame = self.session.seal(&frame).map_err(|e| ClientError::Hub(format!("encrypting for hub {}: {e}", self.hub)))?;
        self.tx.send(Bytes::from(frame)).await.map_err(|e| ClientError::Hub(format!("sending to hub {}: {e}", self.hub)))
    }

    /// The next message from the hub; malformed frames are skipped.
    pub async fn recv(&mut self) -> Result<Message> {
        loop {
            let sealed = self.rx.recv().await.map_err(|e| ClientError::Hub(format!("hub {} closed the link ({e})", self.hub)))?;
            let frame = match self.session.open(&sealed) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "dropping a frame that does not decrypt");
                    continue;
                }
            };
            match decode_message(&frame, &self.limits) {
                Ok(Message::Reply(r)) => {
                    let check = self.check_reply(&frame, &r.sender);
                    if check == SignatureCheck::Bad {
                        tracing::warn!(sender = %r.sender, request = %r.request_id, "reply signature does not check against the node's key");
                    }
                    if self.checks.len() > 100_000 {
                        self.checks.clear();
                    }
                    self.checks.insert((r.request_id.clone(), r.sender.clone()), check);
                    return Ok(Message::Reply(r));
                }
                Ok(m) => return Ok(m),
                Err(e) => tracing::warn!(error = %e, "dropping malformed frame from hub"),
            }
        }
    }

    /// Like [`recv`](Self::recv) with a deadline; `None` when it passes.
    pub async fn recv_until(&mut self, deadline: tokio::time::Instant) -> Result<Option<Message>> {
        match tokio::time::timeout_at(deadline, self.recv()).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Asks the hub's registry which nodes match.
    pub async fn discover(&mut self, filter: &Filter, collective: &str, timeout: Duration) -> Result<Vec<String>> {
        self.send(&Message::Discover(Discover { filter: filter.clone(), collective: Some(collective.to_string()) })).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.recv_until(deadline).await? {
                Some(Message::Discovered(d)) => return Ok(d.nodes),
                Some(Message::Error(e)) => return Err(ClientError::Hub(format!("hub refused discovery: {}", e.message))),
                Some(_) => continue,
                None => {
                    return Err(ClientError::Hub(format!(
                        "hub {} did not answer discovery within {:.1} s",
                        self.hub,
                        timeout.as_secs_f64()
                    )));
                }
            }
        }
    }
}

impl Client {
    /// The hub's counters.
    pub async fn hub_stats(&mut self, timeout: Duration) -> Result<fleet_protocol::HubStats> {
        self.send(&Message::StatsQuery).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.recv_until(deadline).await? {
                Some(Message::HubStats(s)) => return Ok(s),
                Some(_) => continue,
                None => {
                    return Err(ClientError::Hub(format!("hub {} did not answer within {:.0} s", self.hub, timeout.as_secs_f64())));
                }
            }
        }
    }
}
