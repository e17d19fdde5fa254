//! The console's config: `$XDG_CONFIG_HOME/fleet/config.toml`. Every key has a default, unknown
//! keys are refused with the file and line, and every flag overrides its key.

use std::path::{Path, PathBuf};

use fleet_client::metrics::profile::{self, Graph, Profile};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// Hubs to attach to, tried in order (first reachable wins).
    pub hubs: Vec<String>,
    /// The caller id sent with requests.
    pub caller: Option<String>,
    /// Collective requests go to.
    pub collective: String,
    /// Seconds to wait for replies (discovery included). Default: the action's DDL timeout + discovery + 2 s.
    pub timeout: Option<f64>,
    /// Seconds broadcast discovery listens for.
    pub discovery_timeout: f64,
    /// Console theme name (a file in themes/ or a built-in).
    pub theme: String,
    /// Console: disable every destructive key.
    pub read_only: bool,
    /// Seconds a request stays valid on the nodes.
    pub ttl: u32,
    /// The private key that signs requests; its file name is the caller id. Default:
    /// `$XDG_CONFIG_HOME/fleet/keys/<caller>.key`. Also FLEET_KEY.
    pub key_file: Option<PathBuf>,
    /// The hub's public key file, pinned for the link handshake. Default:
    /// `$XDG_CONFIG_HOME/fleet/hub.pub`. Also FLEET_HUB_KEY.
    pub hub_key: Option<PathBuf>,
    /// `[nats]`: TLS and credentials (CA, client certificate, nkey seed) for `nats://` hubs.
    pub nats: fleet_protocol::nats::NatsConfig,
    /// Metric profiles, `[profiles.NAME]` with `graphs = [...]` and an optional `match = "FILTER"`,
    /// in the file's order: the Metrics view's sets of graphs and `fleet metrics --profile`.
    #[serde(deserialize_with = "profile::in_file_order")]
    pub profiles: Vec<Profile>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            hubs: vec![fleet_protocol::DEFAULT_HUB_CONNECT.to_string()],
            caller: None,
            collective: "fleet".into(),
            timeout: None,
            discovery_timeout: 2.0,
            theme: "default".into(),
            read_only: false,
            ttl: 60,
            key_file: None,
            hub_key: None,
            nats: Default::default(),
            profiles: Vec::new(),
        }
    }
}

impl ClientConfig {
    pub fn default_path() -> Option<PathBuf> {
        directories::BaseDirs::new().map(|b| b.config_dir().join("fleet").join("config.toml"))
    }

    /// Loads `path`; a missing file is only an error when the user named it.
    pub fn load(path: &Path, required: bool) -> anyhow::Result<ClientConfig> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(ClientConfig::default()),
            Err(e) => anyhow::bail!("cannot read config file {}: {e}", path.display()),
        };
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, file: &str) -> anyhow::Result<ClientConfig> {
        let cfg: ClientConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1).unwrap_or(0);
            anyhow::anyhow!("{file}:{line}: {}", e.message().trim())
        })?;
        if cfg.hubs.is_empty() {
            anyhow::bail!("{file}: hubs: at least one hub endpoint is needed");
        }
        if !(cfg.discovery_timeout.is_finite() && cfg.discovery_timeout > 0.0) {
            anyhow::bail!("{file}: discovery_timeout: must be a positive number of seconds");
        }
        if let Some(t) = cfg.timeout
            && !(t.is_finite() && t > 0.0)
        {
            anyhow::bail!("{file}: timeout: must be a positive number of seconds (got {t})");
        }
        for p in &cfg.profiles {
            for graph in &p.graphs {
                if let Graph::Procs(name) = graph
                    && let Err(e) = regex::Regex::new(name)
                {
                    anyhow::bail!("{file}: profile {}: graph \"{}\": not a regex pgrep would take: {e}", p.name, graph.name());
                }
            }
        }
        Ok(cfg)
    }

    /// The profile called `name`; the error lists the profiles there are.
    pub fn profile(&self, name: &str) -> Result<&Profile, fleet_client::ClientError> {
        profile::find(&self.profiles, name)
    }

    /// Where the signing key is: FLEET_KEY, `key_file`, or the keys directory and the caller name.
    pub fn key_path(&self) -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("FLEET_KEY") {
            return Some(PathBuf::from(p));
        }
        if let Some(p) = &self.key_file {
            return Some(p.clone());
        }
        let dir = Self::keys_dir()?;
        if let Some(name) = &self.caller {
            return Some(dir.join(format!("{name}.key")));
        }
        // `fleet keygen NAME` made one key: that is the caller, whatever the login name.
        let keys: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "key")).collect())
            .unwrap_or_default();
        match keys.as_slice() {
            [only] => Some(only.clone()),
            _ => Some(dir.join(format!("{}.key", login_name()))),
        }
    }

    pub fn hub_key_path(&self) -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("FLEET_HUB_KEY") {
            return Some(PathBuf::from(p));
        }
        if let Some(p) = &self.hub_key {
            return Some(p.clone());
        }
        directories::BaseDirs::new().map(|b| b.config_dir().join("fleet").join("hub.pub"))
    }

    /// Where the nodes' public keys are kept for checking reply signatures: FLEET_NODES_DIR or
    /// `$XDG_CONFIG_HOME/fleet/nodes`.
    pub fn nodes_dir() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("FLEET_NODES_DIR") {
            return Some(PathBuf::from(p));
        }
        directories::BaseDirs::new().map(|b| b.config_dir().join("fleet").join("nodes"))
    }

    pub fn keys_dir() -> Option<PathBuf> {
        directories::BaseDirs::new().map(|b| b.config_dir().join("fleet").join("keys"))
    }

    /// The request settings every command and panel shares: hubs, collective, ttl, timeouts.
    pub fn settings(&self) -> fleet_client::Settings {
        fleet_client::Settings {
            hubs: self.hubs.clone(),
            collective: self.collective.clone(),
            ttl: self.ttl,
            timeout: self.timeout.map(std::time::Duration::from_secs_f64),
            discovery_timeout: std::time::Duration::from_secs_f64(self.discovery_timeout),
            nats: self.nats.clone(),
            ..fleet_client::Settings::default()
        }
    }

    /// The signing key, the pinned hub key and the known node keys, each where the config and
    /// the environment say. A missing key is left out (a command that needs it says so); a key
    /// that is there but unreadable is an error.
    pub fn credentials(&self) -> anyhow::Result<fleet_client::Credentials> {
        use anyhow::Context;
        let mut creds = fleet_client::Credentials::default();
        if let Some(dir) = Self::nodes_dir().filter(|d| d.is_dir()) {
            // Read while the links connect; the first reply checked waits for them.
            creds.known_nodes = fleet_client::NodeKeys::load_in_background(dir, |why| eprintln!("fleet: warning: {why}"));
        }
        if let Some(path) = self.hub_key_path().filter(|p| p.exists()) {
            let keys = fleet_protocol::keys::PublicKeys::load(&path).with_context(|| format!("hub key {}", path.display()))?;
            creds.hub_key = Some(keys.link);
        }
        if let Some(path) = self.key_path().filter(|p| p.exists()) {
            creds.signer = Some(fleet_client::Signer::load(&path)?);
        }
        if let (Some(k), Some(h)) = (self.key_path(), self.hub_key_path()) {
            creds.looked_for = Some((k, h));
        }
        Ok(creds)
    }

    pub fn caller(&self) -> String {
        if let Some(k) = self.key_path()
            && let Some(stem) = k.file_stem().and_then(|s| s.to_str())
        {
            return stem.to_string();
        }
        self.caller.clone().unwrap_or_else(login_name)
    }
}

/// The login name, for the default caller id.
pub fn login_name() -> String {
    ["USER", "LOGNAME"].iter().filter_map(|v| std::env::var(v).ok()).find(|name| !name.trim().is_empty()).unwrap_or_else(|| "admin".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_file_and_line() {
        let e = ClientConfig::parse("collective = \"x\"\nhub = []\n", "c.toml").unwrap_err().to_string();
        assert!(e.starts_with("c.toml:2:") && e.contains("hub"), "{e}");
    }

    #[test]
    fn defaults() {
        assert_eq!(ClientConfig::parse("", "c.toml").unwrap(), ClientConfig::default());
    }

    const PROFILES: &str = r#"collective = "fleet"

[profiles.web]
graphs = ["load1", "net_rx_bytes_per_s", "net_tx_bytes_per_s", "procs:nginx"]
match = "role=web"

[profiles.db]
graphs = ["load1", "mem_used_pct", "disk_used_max_pct"]
match = "role=db or class=/postgres/"

[profiles.any]
graphs = ["load1", "cpu_busy_pct"]
"#;

    #[test]
    fn profiles_are_read_in_file_order_with_their_graphs_and_match() {
        let cfg = ClientConfig::parse(PROFILES, "c.toml").unwrap();
        let names: Vec<&str> = cfg.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["web", "db", "any"], "the file's order: the first that fits a host is its profile");
        let web = cfg.profile("web").unwrap();
        assert_eq!(web.columns(), ["load1", "net_rx_bytes_per_s", "net_tx_bytes_per_s", "procs:nginx"]);
        assert_eq!(web.matches.as_deref(), Some("role=web"));
        assert_eq!(cfg.profile("any").unwrap().matches, None);
        let e = cfg.profile("mail").unwrap_err().to_string();
        assert_eq!(e, "no metric profile \"mail\" (profiles: web, db, any)");
        let e = ClientConfig::default().profile("web").unwrap_err().to_string();
        assert!(e.ends_with("(profiles: none: add [profiles.NAME] to the config file)"), "{e}");
    }

    #[test]
    fn a_bad_profile_is_an_error_naming_the_file_the_profile_and_the_entry() {
        let bad = |from: &str, to: &str| {
            assert!(PROFILES.contains(from));
            ClientConfig::parse(&PROFILES.replace(from, to), "c.toml").unwrap_err().to_string()
        };
        let e = bad("\"mem_used_pct\"", "\"mem_usd_pct\"");
        assert!(e.starts_with("c.toml:") && e.contains("profile db: graph \"mem_usd_pct\": unknown metric (known: load1"), "{e}");
        let e = bad(r#"graphs = ["load1", "cpu_busy_pct"]"#, "graphs = []");
        assert!(e.starts_with("c.toml:") && e.contains("profile any: graphs: at least one graph is needed"), "{e}");
        let e = bad("match = \"role=web\"", "match = \"role=web and\"");
        assert!(e.starts_with("c.toml:") && e.contains("profile web: match \"role=web and\": column "), "{e}");
        let e = bad("match = \"role=web\"", "matches = \"role=web\"");
        assert!(e.starts_with("c.toml:") && e.contains("unknown field `matches`"), "{e}");
        let e = bad("procs:nginx", "procs:nginx(");
        assert!(e.starts_with("c.toml: profile web: graph \"procs:nginx(\": not a regex"), "{e}");
    }
}
