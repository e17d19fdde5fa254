//! The console's side of a hub link: attach, say hello, discover, send requests and read what
//! comes back. Used by the CLI commands and, from a background task, by the full-screen console.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use fleet_protocol::codec::{Limits, decode_message, encode_message};
use fleet_protocol::keys::KeyPair;
use fleet_protocol::transport::{Link, LinkReceiver, LinkSender};
use fleet_protocol::{Discover, Envelope, Filter, Hello, Message};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Who signs this console's requests: the caller id (the key's name) and its key pair.
#[derive(Clone)]
pub struct Signer {
    pub caller: String,
    pub key: Arc<KeyPair>,
}

impl Signer {
    /// Loads a private key file; the caller id is the file name without `.key`.
    pub fn load(path: &Path) -> Result<Signer> {
        let key = KeyPair::load_private(path).with_context(|| format!("loading the signing key {}", path.display()))?;
        let caller = path.file_stem().and_then(|s| s.to_str()).context("key file name")?.to_string();
        Ok(Signer { caller, key: Arc::new(key) })
    }
}

static DEFAULT_SIGNER: OnceLock<Signer> = OnceLock::new();
static HUB_LINK_KEY: OnceLock<[u8; 32]> = OnceLock::new();
static KNOWN_NODES: OnceLock<fleet_protocol::keys::Keyring> = OnceLock::new();

/// The nodes' public keys this console knows (`$XDG_CONFIG_HOME/fleet/nodes/<identity>.pub`), to
/// check the signature on every reply. Set once at start-up.
pub fn set_known_nodes(ring: fleet_protocol::keys::Keyring) {
    let _ = KNOWN_NODES.set(ring);
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

/// Pins the hub's link key for every new [`Client`] (once, at start-up).
pub fn set_hub_key(link: [u8; 32]) {
    let _ = HUB_LINK_KEY.set(link);
}

/// Sets the signer every new [`Client`] uses (once, at start-up).
pub fn set_default_signer(signer: Signer) {
    let _ = DEFAULT_SIGNER.set(signer);
}

pub fn default_signer() -> Option<&'static Signer> {
    DEFAULT_SIGNER.get()
}

pub struct Client {
    tx: LinkSender,
    rx: LinkReceiver,
    limits: Limits,
    hub: String,
    signer: Option<Signer>,
    session: fleet_protocol::noise::Session,
    /// Signature checks of the replies received, by (request id, sender).
    checks: std::collections::HashMap<(String, String), SignatureCheck>,
}

impl Client {
    /// Attaches to the first reachable hub of `hubs`.
    pub async fn connect(hubs: &[String], timeout: Duration, subscribe: bool) -> Result<Client> {
        let signer = DEFAULT_SIGNER
            .get()
            .cloned()
            .context("no key: create one with `fleet keygen NAME` (it signs requests and authenticates the link), or set FLEET_KEY")?;
        let hub_key = *HUB_LINK_KEY
            .get()
            .context("no hub key: put the hub's public key in $XDG_CONFIG_HOME/fleet/hub.pub (or set `hub_key` / FLEET_HUB_KEY)")?;
        let mut errors = Vec::new();
        for hub in hubs {
            match Link::connect(hub, timeout).await {
                Ok(link) => {
                    let (mut tx, mut rx) = link.split();
                    let (init, hello) = fleet_protocol::noise::Initiator::start(&signer.key, &hub_key, &signer.caller)?;
                    tx.send(Bytes::from(hello)).await.with_context(|| format!("sending the link handshake to {hub}"))?;
                    let reply = match tokio::time::timeout(timeout, rx.recv()).await {
                        Ok(r) => r.with_context(|| format!("hub {hub} closed the link during the handshake"))?,
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
        bail!("no hub reachable: {}", errors.join("; "))
    }

    pub fn hub(&self) -> &str {
        &self.hub
    }

    fn check_reply(&self, frame: &[u8], sender: &str) -> SignatureCheck {
        let Some(ring) = KNOWN_NODES.get().filter(|r| r.get(sender).is_some()) else { return SignatureCheck::Unverified };
        match fleet_protocol::Envelope::from_frame(frame, &self.limits).map(|env| env.verify(ring)) {
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
                let mut env = Envelope::seal(&Message::Request(req)).context("encoding request")?;
                env.sign(&signer.key, &signer.caller);
                env.to_frame().context("encoding request")?
            }
            (Message::Request(_), None) => {
                bail!("no signing key: create one with `fleet keygen NAME` (see `fleet keygen --help`), or set FLEET_KEY")
            }
            _ => encode_message(msg).context("encoding message")?,
        };
        let frame = self.session.seal(&frame).context("encrypting")?;
        self.tx.send(Bytes::from(frame)).await.with_context(|| format!("sending to hub {}", self.hub))
    }

    /// The next message from the hub; malformed frames are skipped.
    pub async fn recv(&mut self) -> Result<Message> {
        loop {
            let sealed = self.rx.recv().await.with_context(|| format!("hub {} closed the link", self.hub))?;
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
                Some(Message::Error(e)) => bail!("hub refused discovery: {}", e.message),
                Some(_) => continue,
                None => bail!("hub {} did not answer discovery within {:.1} s", self.hub, timeout.as_secs_f64()),
            }
        }
    }
}
