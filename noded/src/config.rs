//! noded's configuration: one TOML file (`/etc/fleet/noded.toml`), every key with a default,
//! unknown keys refused with the file and line, and every command-line flag overriding its key.

use std::path::{Path, PathBuf};

use fleet_protocol::files::Dirs;
use serde::Deserialize;

/// The config file's name in the configuration directory.
pub const CONFIG_FILE: &str = "noded.toml";

/// Where noded looks for its config when `--config` is not given: `noded.toml` in the
/// configuration directory (`/etc/fleet` as root; see [`Dirs`]).
pub fn default_config_path() -> PathBuf {
    Dirs::detect().config.join(CONFIG_FILE)
}
/// Default longest ttl a request may carry, in seconds (node and hub).
pub const DEFAULT_MAX_TTL: u32 = 3600;
/// The hub's audit log when `hub.audit_log` is not set: in its enrollment directory, the one
/// place the hub already writes to.
pub const HUB_AUDIT_FILE: &str = "audit.log";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's name in the fleet. Default: the host name.
    pub identity: Option<String>,
    /// Collectives this node belongs to; the first is the main collective.
    pub collectives: Vec<String>,
    /// Hubs to attach to, all at once.
    pub hubs: Vec<String>,
    /// Facts file: YAML, JSON or TOML, chosen by extension; facter-style nesting.
    pub facts_file: Option<PathBuf>,
    /// Puppet's classes.txt.
    pub classes_file: Option<PathBuf>,
    /// Directory of external agents and their DDLs.
    pub agents_dir: Option<PathBuf>,
    /// Seconds between registration heartbeats (jittered by `retry_jitter`).
    pub heartbeat_interval: f64,
    /// Seconds without a word from a hub before the link is rebuilt. Default: 3 heartbeats.
    pub link_timeout: Option<f64>,
    /// First delay before reconnecting to a hub, in seconds; doubled per failure.
    pub retry_initial_delay: f64,
    /// Ceiling of the reconnect delay, in seconds.
    pub retry_max_delay: f64,
    /// Share (0.0-1.0) of each delay that is randomised, so a fleet does not reconnect in step.
    pub retry_jitter: f64,
    /// Seconds to wait for a hub's TCP and ZMTP handshake.
    pub connect_timeout: f64,
    /// Log filter (tracing EnvFilter syntax); RUST_LOG wins when set.
    pub log_level: String,
    /// Largest frame accepted, in bytes.
    pub max_frame: usize,
    /// Share (0.0-1.0) of echo calls that fail on purpose, to practise partial failure.
    pub echo_failure_share: f64,
    /// The Xen toolstack CLI; the xen agent is active only where it exists.
    pub xl_path: PathBuf,
    /// Dom0 name -> migration address for xen#migrate, e.g. over a link with no DNS entry.
    pub xen_host_map: std::collections::BTreeMap<String, String>,
    /// This node's private key (signs replies, authenticates its links). Create it with `noded keygen`.
    pub key_file: PathBuf,
    /// The hub's public key (its .pub file): links to a hub without it fail the handshake.
    pub hub_key: PathBuf,
    /// Relay tcp:// hub links through the outbound frame guard (refuses oversized frames from a
    /// hostile hub before zmq.rs reserves memory). Only an embedded, same-process hub turns it off.
    pub link_guard: bool,
    /// Public keys of the callers this node trusts; the file name (without .pub) is the caller id.
    pub callers_dir: PathBuf,
    /// Action policies, one `<agent>.policy` file per agent.
    pub policy_dir: PathBuf,
    /// What an agent without a policy file gets: "deny" (default) or "allow".
    pub policy_default: String,
    /// The audit log (one JSON line per request); unset to disable.
    pub audit_log: Option<PathBuf>,
    /// Size at which the audit log rotates, in bytes.
    pub audit_max_bytes: u64,
    /// Rotated audit files kept.
    pub audit_keep: usize,
    /// Seconds a request's msgtime may lie in the future.
    pub max_clock_skew: f64,
    /// Longest ttl a request may carry, in seconds; a request asking for more is refused.
    pub max_ttl: u32,
    /// Use the callers and policies the hub distributes (signed with the hub's key): a new admin
    /// needs no change on the nodes. Local files win over the hub's for the same name. `noded
    /// join` turns this on; off, a compromised hub cannot add a caller (see SECURITY.md).
    pub accept_trust_from_hub: bool,
    /// Where noded keeps its state (default /var/lib/fleet as root; see [`Dirs`]).
    pub state_dir: PathBuf,
    /// `[data]`: where the data plugins (`fstat`, `process`, `puppet`, ...) look; see `crate::data`.
    pub data: crate::data::DataConfig,
    /// `[concat]`: where the concat agent may build files (none by default: it refuses every
    /// target) and whether it runs notify commands; see `crate::agents::concat`.
    pub concat: crate::agents::concat::ConcatConfig,
    /// `[jobs]`: limits of the jobs agent (runs at once, retention, output size, kill grace).
    pub jobs: crate::agents::jobs::JobsConfig,
    /// `[metrics]`: the sampling interval, the history kept, and collectd's socket.
    pub metrics: crate::agents::metrics::MetricsConfig,
    /// `[nats]`: TLS and credentials for `nats://` / `tls://` entries of `hubs`.
    pub nats: fleet_protocol::nats::NatsConfig,
    pub hub: HubConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        let dirs = Dirs::detect();
        NodeConfig {
            identity: None,
            collectives: vec!["fleet".into()],
            hubs: vec![fleet_protocol::DEFAULT_HUB_CONNECT.into()],
            facts_file: None,
            classes_file: None,
            agents_dir: None,
            heartbeat_interval: 10.0,
            link_timeout: None,
            retry_initial_delay: 0.5,
            // Short, so a restarted hub has its nodes back within 2 s; a refused connect costs the
            // hub's kernel one RST, and the jitter spreads the fleet's attempts.
            retry_max_delay: 1.5,
            retry_jitter: 0.3,
            connect_timeout: 5.0,
            log_level: "info".into(),
            max_frame: fleet_protocol::codec::DEFAULT_MAX_FRAME,
            echo_failure_share: 0.0,
            xl_path: PathBuf::from("/usr/sbin/xl"),
            xen_host_map: Default::default(),
            key_file: dirs.config.join("node.key"),
            hub_key: dirs.config.join("hub.pub"),
            link_guard: true,
            callers_dir: dirs.config.join("callers"),
            policy_dir: dirs.config.join("policies"),
            policy_default: "deny".into(),
            audit_log: Some(dirs.log.join("audit.log")),
            audit_max_bytes: 64 * 1024 * 1024,
            audit_keep: 5,
            max_clock_skew: 5.0,
            max_ttl: DEFAULT_MAX_TTL,
            accept_trust_from_hub: false,
            state_dir: dirs.state.clone(),
            data: crate::data::DataConfig::default(),
            concat: crate::agents::concat::ConcatConfig::default(),
            jobs: crate::agents::jobs::JobsConfig::default(),
            metrics: crate::agents::metrics::MetricsConfig::default(),
            nats: Default::default(),
            hub: HubConfig::with_dirs(&dirs),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Endpoints the hub's ROUTER binds.
    pub bind: Vec<String>,
    /// Heartbeats a node may miss before the hub forgets it.
    pub missed_heartbeats: u32,
    /// Longest a console may ask the hub to keep a request's route, in seconds.
    pub max_request_timeout: f64,
    /// Callers' public keys: the hub drops requests that are unsigned or not signed by one of them
    /// before fanning them out. Unset only for a hub that trusts its network (not recommended).
    pub callers_dir: Option<PathBuf>,
    /// Requests per second one console may send (a burst of twice this is allowed).
    pub max_requests_per_second: f64,
    /// The hub's key pair; nodes and consoles pin its public half (`hub_key`). Created on the
    /// hub's first start when missing.
    pub key_file: PathBuf,
    /// The address nodes and admins reach this hub at (`HOST:PORT` or `tcp://HOST:PORT`), put
    /// in join tokens. Default: the first bind endpoint, with the host name for 0.0.0.0.
    pub address: Option<String>,
    /// Policies the hub distributes to the nodes that accept trust from it (`<agent>.policy`).
    pub policy_dir: PathBuf,
    /// Enrolled link keys: accepted/, pending/, rejected/ (`noded hub enroll`).
    pub enroll_dir: PathBuf,
    /// Longest ttl a request may carry, in seconds; the hub drops a request asking for more.
    pub max_ttl: u32,
    /// The hub's audit log: one JSON line per request it refuses, in the nodes' audit format.
    /// Default: `audit.log` in `enroll_dir`. The flag `noded hub --audit-log off` disables it.
    pub audit_log: Option<PathBuf>,
    /// Size at which the hub's audit log rotates, in bytes.
    pub audit_max_bytes: u64,
    /// Rotated hub audit files kept.
    pub audit_keep: usize,
    /// Set by `--audit-log off`: no hub audit log at all.
    #[serde(skip)]
    pub audit_off: bool,
    /// How long the registry keeps a node that left (link closed or heartbeats missed), in
    /// seconds; discovery lists it as down meanwhile. `noded hub forget NODE` removes one at once.
    pub keep_down_for: f64,
    /// Most down nodes kept; past it the ones down longest are dropped first.
    pub max_down_nodes: usize,
    /// Most unknown link keys kept under `pending/`; further unknown keys are refused unrecorded.
    pub max_pending: usize,
    /// New pending keys recorded per second, over all sources (a burst of twice this).
    pub max_knocks_per_second: f64,
    /// New pending keys recorded per second from one source address (a burst of twice this); a
    /// source over it does not use up the global rate.
    pub max_knocks_per_source_per_second: f64,
    /// Pending keys one source address may have waiting at a time.
    pub max_pending_per_source: usize,
    /// Most frames queued for one link; past it the oldest replies are dropped and the console told.
    pub max_link_queue: usize,
    /// Most bytes queued for one link.
    pub max_link_queue_bytes: usize,
    /// Bytes written to a link's socket but not yet read by the client, at most: the size of
    /// the link's kernel send buffer (Linux counts its own bookkeeping in it too).
    pub max_link_in_flight: u64,
    /// Most node links at once; past it a new node's handshake is refused (it retries) and the
    /// hub logs that it is full, while consoles still get in. Default: what the open-files limit
    /// (raised to its hard limit at start) carries at one descriptor a link, less 64 links kept
    /// for consoles.
    pub max_node_links: Option<u64>,
    /// `[hub.metrics]`: the metrics history the hub keeps for consoles.
    pub metrics: crate::hub::metrics::HubMetricsConfig,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self::with_dirs(&Dirs::detect())
    }
}

impl HubConfig {
    fn with_dirs(dirs: &Dirs) -> Self {
        HubConfig {
            bind: vec![fleet_protocol::DEFAULT_HUB_BIND.into()],
            missed_heartbeats: 3,
            max_request_timeout: 600.0,
            callers_dir: Some(dirs.config.join("callers")),
            max_requests_per_second: 200.0,
            key_file: dirs.config.join("hub.key"),
            address: None,
            policy_dir: dirs.config.join("policies"),
            enroll_dir: dirs.state.join("enroll"),
            max_ttl: DEFAULT_MAX_TTL,
            audit_log: None,
            audit_max_bytes: 64 * 1024 * 1024,
            audit_keep: 5,
            audit_off: false,
            keep_down_for: 24.0 * 3600.0,
            max_down_nodes: 10_000,
            max_pending: 1000,
            max_knocks_per_second: 50.0,
            max_knocks_per_source_per_second: 5.0,
            max_pending_per_source: 100,
            max_link_queue: 10_000,
            max_link_queue_bytes: 16 * 1024 * 1024,
            max_link_in_flight: 1024 * 1024,
            max_node_links: None,
            metrics: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}:{line}: {message}")]
    Parse { file: String, line: usize, message: String },
    #[error("{file}: {key}: {message}")]
    Invalid { file: String, key: String, message: String },
}

impl HubConfig {
    /// Where the hub writes its audit log, if anywhere.
    pub fn audit_path(&self) -> Option<PathBuf> {
        if self.audit_off {
            return None;
        }
        Some(self.audit_log.clone().unwrap_or_else(|| self.enroll_dir.join(HUB_AUDIT_FILE)))
    }
}

impl NodeConfig {
    /// Loads `path`. A missing file is an error only when `required` (the user named it).
    pub fn load(path: &Path, required: bool) -> Result<NodeConfig, ConfigError> {
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(NodeConfig::default()),
            Err(source) => return Err(ConfigError::Read { file, source }),
        };
        Self::parse(&text, &file)
    }

    pub fn parse(text: &str, file: &str) -> Result<NodeConfig, ConfigError> {
        let cfg: NodeConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_string(),
            line: e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1).unwrap_or(0),
            message: e.message().trim().to_string(),
        })?;
        cfg.check(file)?;
        Ok(cfg)
    }

    pub fn check(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid { file: file.into(), key: key.into(), message };
        if self.collectives.is_empty() {
            return Err(bad("collectives", "at least one collective is needed".into()));
        }
        for (key, v) in [
            ("heartbeat_interval", self.heartbeat_interval),
            ("retry_initial_delay", self.retry_initial_delay),
            ("retry_max_delay", self.retry_max_delay),
            ("connect_timeout", self.connect_timeout),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(key, format!("must be a positive number of seconds (got {v})")));
            }
        }
        if !(0.0..=1.0).contains(&self.retry_jitter) {
            return Err(bad("retry_jitter", format!("must be between 0.0 and 1.0 (got {})", self.retry_jitter)));
        }
        if !matches!(self.policy_default.as_str(), "allow" | "deny") {
            return Err(bad("policy_default", format!("must be \"allow\" or \"deny\" (got \"{}\")", self.policy_default)));
        }
        if !(self.max_clock_skew.is_finite() && self.max_clock_skew >= 0.0) {
            return Err(bad("max_clock_skew", format!("must be a number of seconds, 0 or more (got {})", self.max_clock_skew)));
        }
        if !(0.0..=1.0).contains(&self.echo_failure_share) {
            return Err(bad("echo_failure_share", format!("must be between 0.0 and 1.0 (got {})", self.echo_failure_share)));
        }
        if let Some(id) = &self.identity
            && (id.is_empty() || id.len() > 255 || id.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(bad("identity", format!("'{id}' is not a valid identity (1-255 characters, no spaces)")));
        }
        if self.hub.missed_heartbeats == 0 {
            return Err(bad("hub.missed_heartbeats", "must be at least 1".into()));
        }
        if self.max_ttl == 0 {
            return Err(bad("max_ttl", "must be at least 1 second".into()));
        }
        if !(self.hub.keep_down_for.is_finite() && self.hub.keep_down_for >= 0.0) {
            return Err(bad("hub.keep_down_for", format!("must be a number of seconds, 0 or more (got {})", self.hub.keep_down_for)));
        }
        for (key, v) in [
            ("hub.max_knocks_per_second", self.hub.max_knocks_per_second),
            ("hub.max_knocks_per_source_per_second", self.hub.max_knocks_per_source_per_second),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(key, format!("must be a positive number (got {v})")));
            }
        }
        if self.hub.max_link_queue == 0 || self.hub.max_link_queue_bytes == 0 || self.hub.max_link_in_flight == 0 {
            return Err(bad("hub.max_link_queue", "the link queue limits must be at least 1".into()));
        }
        if let Err((key, message)) = self.concat.check() {
            return Err(bad(&key, message));
        }
        if self.hub.max_ttl == 0 {
            return Err(bad("hub.max_ttl", "must be at least 1 second".into()));
        }
        if let Some((key, message)) = self.jobs.problem() {
            return Err(bad(key, message));
        }
        if let Some((key, message)) = self.metrics.problem() {
            return Err(bad(key, message));
        }
        Ok(())
    }

    pub fn main_collective(&self) -> &str {
        &self.collectives[0]
    }

    pub fn policy_default_allow(&self) -> bool {
        self.policy_default == "allow"
    }

    pub fn link_timeout(&self) -> f64 {
        self.link_timeout.unwrap_or(self.heartbeat_interval * 3.0)
    }

    /// The NATS servers and the ZeroMQ hubs of `hubs`.
    pub fn split_hubs(&self) -> (Vec<String>, Vec<String>) {
        fleet_protocol::nats::split_endpoints(&self.hubs)
    }

    /// Whether some hub in `hubs` is a ZeroMQ hub (which needs the pinned hub key).
    pub fn has_zmq_hub(&self) -> bool {
        !self.split_hubs().1.is_empty()
    }

    /// The options to reach the NATS servers of `hubs` as `name`.
    pub fn nats_options(&self, name: &str) -> Result<fleet_protocol::nats::NatsOptions, fleet_protocol::nats::NatsError> {
        self.nats.options(self.split_hubs().0, name, std::time::Duration::from_secs_f64(self.connect_timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(NodeConfig::parse("", "x.toml").unwrap(), NodeConfig::default());
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = NodeConfig::parse("identity = \"a\"\nheartbeat_intervall = 3\n", "/etc/fleet/noded.toml").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("/etc/fleet/noded.toml:2:"), "{s}");
        assert!(s.contains("heartbeat_intervall"), "{s}");
    }

    #[test]
    fn max_ttl_defaults_to_an_hour_and_is_at_least_a_second() {
        let cfg = NodeConfig::parse("max_ttl = 600\n[hub]\nmax_ttl = 900\n", "n.toml").unwrap();
        assert_eq!((cfg.max_ttl, cfg.hub.max_ttl), (600, 900));
        assert_eq!((NodeConfig::default().max_ttl, HubConfig::default().max_ttl), (3600, 3600));
        let e = NodeConfig::parse("max_ttl = 0\n", "n.toml").unwrap_err().to_string();
        assert_eq!(e, "n.toml: max_ttl: must be at least 1 second");
        let e = NodeConfig::parse("[hub]\nmax_ttl = -1\n", "n.toml").unwrap_err().to_string();
        assert!(e.starts_with("n.toml:2:"), "{e}");
    }

    #[test]
    fn the_hub_audit_log_defaults_to_the_enrollment_directory() {
        let hub = HubConfig { enroll_dir: PathBuf::from("/var/lib/fleet/enroll"), ..HubConfig::default() };
        assert_eq!(hub.audit_path(), Some(PathBuf::from("/var/lib/fleet/enroll/audit.log")));
        let hub = HubConfig { audit_log: Some(PathBuf::from("/var/log/fleet/hub.log")), ..hub };
        assert_eq!(hub.audit_path(), Some(PathBuf::from("/var/log/fleet/hub.log")));
        assert_eq!(HubConfig { audit_off: true, ..hub }.audit_path(), None);
        let e = NodeConfig::parse("[hub]\naudit_off = true\n", "n.toml").unwrap_err().to_string();
        assert!(e.contains("audit_off"), "the switch is a flag, not a key: {e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = NodeConfig::parse("retry_jitter = 2.0\n", "n.toml").unwrap_err().to_string();
        assert_eq!(e, "n.toml: retry_jitter: must be between 0.0 and 1.0 (got 2)");
        let e = NodeConfig::parse("[hub]\nbindd = []\n", "n.toml").unwrap_err().to_string();
        assert!(e.contains("bindd") && e.starts_with("n.toml:2"), "{e}");
    }
}
