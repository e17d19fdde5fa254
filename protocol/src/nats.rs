//! The NATS side of the transport seam: endpoints, subjects and connections.
//!
//! On NATS there is no hub. A cluster of `nats-server`s carries fleet's signed envelopes, as
//! they are, on these subjects (per collective `C`):
//!
//! | subject | published by | read by |
//! |---|---|---|
//! | `fleet.C.agent.AGENT` | consoles (broadcast requests) | every node with that agent |
//! | `fleet.C.node.IDENTITY` | consoles (direct requests, retries) | that node |
//! | `fleet.C.registration[.CELL]` | nodes (signed registrations, heartbeats) | registries (of the cell) |
//! | `fleet.C.discover` | consoles (discovery) | one registry per cell (queue group `registry[-CELL]`) |
//! | `fleet.C.events` | registries (a node joined, left or changed) | consoles that watch |
//! | `_INBOX.…` | nodes (signed replies), registries | the console that asked |
//!
//! The links use NATS's own TLS and credentials (user and password in the URL, an nkey seed file,
//! a client certificate); fleet adds no link crypto on this path. Requests, replies and
//! registrations stay ed25519-signed end to end, so a server can drop or delay a message but not
//! forge or alter one.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

/// The queue group the registries of `cell` answer discovery in: one answer per cell however
/// many registries run in it. Without cells, one group for the whole cluster.
pub fn registry_queue(cell: Option<&str>) -> String {
    match cell {
        Some(c) => format!("registry-{c}"),
        None => "registry".to_string(),
    }
}

/// Whether `endpoint` names a NATS server (`nats://` or `tls://`) rather than a ZeroMQ hub.
pub fn is_nats(endpoint: &str) -> bool {
    endpoint.starts_with("nats://") || endpoint.starts_with("tls://")
}

/// The NATS servers of a hub list, and the ZeroMQ hubs: a list may hold both.
pub fn split_endpoints(hubs: &[String]) -> (Vec<String>, Vec<String>) {
    hubs.iter().cloned().partition(|h| is_nats(h))
}

/// What registries of `cell` (all, without cells) read: the registrations of every collective.
pub fn registrations_of(cell: Option<&str>) -> String {
    match cell {
        Some(c) => format!("fleet.*.registration.{c}"),
        None => "fleet.*.registration".to_string(),
    }
}

/// A name as one subject token: no wildcard, no space, no dot (a dot separates tokens).
fn check_token(what: &str, name: &str, dots: bool) -> Result<(), String> {
    let bad = name.is_empty()
        || name.chars().any(|c| c == '*' || c == '>' || c.is_whitespace() || c.is_control() || (!dots && c == '.'))
        || name.starts_with('.')
        || name.ends_with('.')
        || name.contains("..");
    if bad {
        return Err(format!(
            "{what} {name:?} cannot be used on NATS: subject tokens must be non-empty, without spaces, '*' or '>'{}",
            if dots { "" } else { " or '.'" }
        ));
    }
    Ok(())
}

/// The subjects of one collective.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    pub fn new(collective: &str) -> Result<Subjects, String> {
        check_token("collective", collective, false)?;
        Ok(Subjects { prefix: format!("fleet.{collective}") })
    }

    /// Where broadcast requests for `agent` go.
    pub fn agent(&self, agent: &str) -> Result<String, String> {
        check_token("agent", agent, false)?;
        Ok(format!("{}.agent.{agent}", self.prefix))
    }

    /// A node's own subject (direct requests). Identities may hold dots (host names).
    pub fn node(&self, identity: &str) -> Result<String, String> {
        check_token("identity", identity, true)?;
        Ok(format!("{}.node.{identity}", self.prefix))
    }

    /// Where the nodes of `cell` (all nodes, without cells) publish their registrations: a
    /// cell's registrations stay in the cell.
    pub fn registration(&self, cell: Option<&str>) -> String {
        match cell {
            Some(c) => format!("{}.registration.{c}", self.prefix),
            None => format!("{}.registration", self.prefix),
        }
    }

    pub fn discover(&self) -> String {
        format!("{}.discover", self.prefix)
    }

    /// Where registries tell watching consoles that a node joined, left or changed.
    pub fn events(&self) -> String {
        format!("{}.events", self.prefix)
    }
}

/// How to reach a NATS cluster and prove who we are to it.
#[derive(Debug, Clone, Default)]
pub struct NatsOptions {
    /// `nats://[user:password@]host:port` or `tls://…`; any one server of a cluster is enough, the
    /// others are learnt from it, but listing several lets the first connection survive one down.
    pub servers: Vec<String>,
    /// The connection name the servers show (`nats-server`'s `/connz`).
    pub name: String,
    /// A CA certificate (PEM) to verify the servers with; TLS is then required.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key (PEM), for servers that verify clients.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// A file holding an nkey seed (`SU…`), for servers configured with nkey users.
    pub nkey_seed: Option<PathBuf>,
    pub connect_timeout: Duration,
}

/// How a node, a registry or a console proves itself to NATS servers, and the cells of a
/// fleet: the `[nats]` section of each one's config. User and password may also sit in the
/// server URL (`nats://node:secret@host:4222`); an nkey seed file keeps the secret out of the
/// config.
#[derive(Debug, Clone, Default, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// CA certificate (PEM) the servers' certificates are checked against; TLS is then required.
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM), for servers that verify clients (`verify = true`).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// A file holding an nkey seed (`SU...`), for servers with nkey users.
    pub nkey_seed: Option<PathBuf>,
    /// A registry's cell (a NATS cluster joined to others by gateways): it answers discovery for
    /// the nodes it hears, in its cell's own queue group, so every cell answers once.
    pub cell: Option<String>,
    /// A console's count of cells: how many registries' answers make one discovery (default 1).
    pub cells: Option<usize>,
}

impl NatsConfig {
    /// The options to reach the NATS `servers` as `name` with these credentials.
    pub fn options(&self, servers: Vec<String>, name: &str, connect_timeout: Duration) -> Result<NatsOptions, NatsError> {
        let cert = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => return Err(NatsError::Config("[nats]: cert and key go together (a client certificate needs its key)".into())),
        };
        if let Some(cell) = &self.cell {
            check_token("cell", cell, false).map_err(NatsError::Config)?;
        }
        Ok(NatsOptions { servers, name: name.to_string(), ca: self.ca.clone(), cert, nkey_seed: self.nkey_seed.clone(), connect_timeout })
    }
}

/// The link state changes a NATS connection reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatsEvent {
    Connected,
    Disconnected,
}

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("{0}")]
    Config(String),
    #[error("cannot reach NATS {servers}: {reason}")]
    Connect { servers: String, reason: String },
}

/// Connects to a NATS cluster. The client reconnects by itself, to any server of the cluster,
/// forever; each connect and disconnect is reported on the returned channel.
pub async fn connect(options: &NatsOptions) -> Result<(async_nats::Client, mpsc::UnboundedReceiver<NatsEvent>), NatsError> {
    if options.servers.is_empty() {
        return Err(NatsError::Config("no NATS server given".into()));
    }
    let (events_tx, events) = mpsc::unbounded_channel();
    let mut connect = async_nats::ConnectOptions::new()
        .name(&options.name)
        .connection_timeout(options.connect_timeout.max(Duration::from_millis(100)))
        .max_reconnects(None)
        // Reconnect fast at first (a server of the cluster died; the others are up), then back off.
        .reconnect_delay_callback(|attempts| Duration::from_millis((50 * attempts as u64).min(2_000)))
        // A console may collect replies from many thousands of nodes on one inbox.
        .subscription_capacity(1 << 18)
        // The list is in order of preference (the nearest server first), as a hub list is.
        .retain_servers_order()
        .event_callback(move |event| {
            let events_tx = events_tx.clone();
            async move {
                let mapped = match event {
                    async_nats::Event::Connected => Some(NatsEvent::Connected),
                    async_nats::Event::Disconnected => Some(NatsEvent::Disconnected),
                    other => {
                        tracing::debug!(event = %other, "NATS event");
                        None
                    }
                };
                if let Some(e) = mapped {
                    let _ = events_tx.send(e);
                }
            }
        });
    if let Some(ca) = &options.ca {
        if !ca.is_file() {
            return Err(NatsError::Config(format!("NATS CA certificate {} does not exist", ca.display())));
        }
        connect = connect.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((cert, key)) = &options.cert {
        for f in [cert, key] {
            if !f.is_file() {
                return Err(NatsError::Config(format!("NATS client certificate file {} does not exist", f.display())));
            }
        }
        connect = connect.add_client_certificate(cert.clone(), key.clone());
    }
    if let Some(path) = &options.nkey_seed {
        use std::os::unix::fs::MetadataExt;
        let unreadable = |e: std::io::Error| NatsError::Config(format!("cannot read the NATS nkey seed {}: {e}", path.display()));
        let mode = std::fs::metadata(path).map_err(unreadable)?.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(NatsError::Config(format!(
                "the NATS nkey seed {} is open to others (mode {mode:04o}): chmod 600 {}",
                path.display(),
                path.display()
            )));
        }
        let seed = std::fs::read_to_string(path).map_err(unreadable)?;
        connect = connect.nkey(seed.trim().to_string());
    }
    if let Some((user, password)) = credentials(&options.servers)? {
        // Applied to every server, the ones the cluster tells about included.
        connect = connect.user_and_password(user, password);
    }
    let addrs: Vec<async_nats::ServerAddr> = options
        .servers
        .iter()
        .map(|s| s.parse().map_err(|e| NatsError::Config(format!("bad NATS server address {s:?}: {e}"))))
        .collect::<Result<_, _>>()?;
    let shown = options.servers.iter().map(|s| redact(s)).collect::<Vec<_>>().join(", ");
    let client = tokio::time::timeout(options.connect_timeout.max(Duration::from_millis(100)) * 2, connect.connect(addrs))
        .await
        .map_err(|_| NatsError::Connect { servers: shown.clone(), reason: "timed out".into() })?
        .map_err(|e| NatsError::Connect { servers: shown, reason: e.to_string() })?;
    Ok((client, events))
}

/// The user and password the server URLs carry (`nats://user:password@host:port`): one pair for
/// the whole list, since a client proves itself the same way to every server of a cluster.
fn credentials(servers: &[String]) -> Result<Option<(String, String)>, NatsError> {
    let mut found: Option<(String, String)> = None;
    for s in servers {
        let url =
            s.parse::<async_nats::ServerAddr>().map_err(|e| NatsError::Config(format!("bad NATS server address {:?}: {e}", redact(s))))?;
        let Some(user) = url.username() else { continue };
        let pair = (percent_decode(user), percent_decode(url.password().unwrap_or_default()));
        match &found {
            Some(other) if *other != pair => {
                return Err(NatsError::Config("the NATS server URLs carry different users; give every server the same one".into()));
            }
            _ => found = Some(pair),
        }
    }
    Ok(found)
}

/// `%XX` escapes of a URL's user or password, decoded.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b))) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A server address without its password, for logs and errors.
pub fn redact(server: &str) -> String {
    match (server.find("://"), server.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &server[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &server[..scheme + 3], &server[at..])
        }
        _ => server.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_refuse_wildcards_and_spaces() {
        let s = Subjects::new("mcollective").unwrap();
        assert_eq!(s.agent("rpcutil").unwrap(), "fleet.mcollective.agent.rpcutil");
        assert_eq!(s.node("web-01.example.com").unwrap(), "fleet.mcollective.node.web-01.example.com");
        assert!(s.node("a*b").is_err());
        assert!(s.node("a..b").is_err());
        assert!(s.agent("a.b").is_err());
        assert!(Subjects::new("my coll").is_err());
        assert!(Subjects::new(">").is_err());
    }

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(redact("nats://node:s3cret@127.0.0.1:4222"), "nats://node:***@127.0.0.1:4222");
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(credentials(&["nats://node:s%40cret@h:1".into(), "nats://h:2".into()]).unwrap(), Some(("node".into(), "s@cret".into())));
        assert!(credentials(&["nats://a:x@h:1".into(), "nats://b:y@h:2".into()]).is_err());
        assert_eq!(
            split_endpoints(&["nats://a:1".into(), "tcp://b:2".into()]),
            (vec!["nats://a:1".to_string()], vec!["tcp://b:2".to_string()])
        );
    }
}
