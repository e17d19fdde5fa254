//! `noded doctor`: checks this host's node set-up and prints each problem with the command or
//! edit that fixes it. Read-only, except that reaching a hub is a real link handshake (an
//! unknown key is then recorded as pending on the hub, exactly as a starting node would be).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use fleet_protocol::keys::{KeyPair, Keyring, PublicKeys};

use crate::config::NodeConfig;

/// One line of the report.
struct Check {
    ok: bool,
    what: String,
    fix: Option<String>,
}

#[derive(Default)]
pub struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn good(&mut self, what: impl Into<String>) {
        self.checks.push(Check { ok: true, what: what.into(), fix: None });
    }

    fn bad(&mut self, what: impl Into<String>, fix: impl Into<String>) {
        self.checks.push(Check { ok: false, what: what.into(), fix: Some(fix.into()) });
    }

    /// No problem found.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            writeln!(f, "{} {}", if c.ok { "ok  " } else { "FAIL" }, c.what)?;
            if let Some(fix) = &c.fix {
                writeln!(f, "     fix: {fix}")?;
            }
        }
        let problems = self.checks.iter().filter(|c| !c.ok).count();
        match problems {
            0 => writeln!(f, "no problems found"),
            n => writeln!(f, "{n} problem(s) found"),
        }
    }
}

/// The agents whose policies every node needs for `fleet ping` and process hunting.
const ESSENTIAL_AGENTS: [&str; 2] = ["rpcutil", "process"];

pub async fn run(config_path: &Path, cfg: &NodeConfig) -> Report {
    let mut r = Report::default();
    if config_path.exists() {
        r.good(format!("config {} reads", config_path.display()));
    } else {
        r.good(format!("no config file at {}: defaults apply (noded join or noded init writes one)", config_path.display()));
    }
    let key = match KeyPair::load_private(&cfg.key_file) {
        Ok(k) => {
            r.good(format!("node key {} (mode 0600)", cfg.key_file.display()));
            Some(k)
        }
        Err(fleet_protocol::keys::KeyError::Read { .. }) if !cfg.key_file.exists() => {
            r.bad(format!("no node key at {}", cfg.key_file.display()), "start noded once (it creates it), or run `noded join TOKEN`");
            None
        }
        Err(e) => {
            r.bad(format!("node key: {e}"), format!("chmod 600 {} (and chmod go-w on its directory)", cfg.key_file.display()));
            None
        }
    };
    let hub = match PublicKeys::load(&cfg.hub_key) {
        _ if !cfg.has_zmq_hub() => {
            r.good("no ZeroMQ hub in hubs: no hub key is needed");
            None
        }
        Ok(h) => {
            r.good(format!("hub key pinned at {} ({})", cfg.hub_key.display(), fleet_protocol::join::fingerprint(&h.link)));
            Some(h)
        }
        Err(e) => {
            r.bad(
                format!("hub key: {e}"),
                format!("run `noded join TOKEN` (token from `noded hub token`), or copy the hub's hub.pub to {}", cfg.hub_key.display()),
            );
            None
        }
    };
    match Keyring::load(&cfg.callers_dir) {
        Ok(ring) if !ring.is_empty() => r.good(format!("{} trusted caller(s) in {}", ring.len(), cfg.callers_dir.display())),
        _ if cfg.accept_trust_from_hub => r.good("callers and policies come from the hub (accept_trust_from_hub)"),
        Ok(_) => r.bad(
            format!("no trusted callers in {}: every request is refused", cfg.callers_dir.display()),
            "copy each admin's NAME.pub there, or set accept_trust_from_hub = true",
        ),
        Err(e) => r.bad(format!("callers: {e}"), "create the directory and copy the admins' .pub keys there"),
    }
    for agent in ESSENTIAL_AGENTS {
        let path = cfg.policy_dir.join(format!("{agent}.{}", crate::policy::POLICY_EXT));
        if path.exists() {
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| crate::policy::Policy::parse(&t, &path.display().to_string()).map(|_| ()).map_err(|e| e.to_string()))
            {
                Ok(()) => r.good(format!("policy {}", path.display())),
                Err(e) => r.bad(format!("policy {e}"), "fix the line named; until then every request to this agent is denied"),
            }
        } else if cfg.accept_trust_from_hub {
            r.good(format!("no local {agent} policy: the hub's applies"));
        } else if cfg.policy_default_allow() {
            r.good(format!("no {agent} policy: policy_default = allow"));
        } else {
            r.bad(
                format!("no policy for {agent} ({}): every request to it is denied", path.display()),
                format!("write {} with `policy default deny` and `allow ADMIN * * *`", path.display()),
            );
        }
    }
    let identity = cfg.identity.clone().unwrap_or_else(crate::facts::host_name);
    let (nats, zmq) = cfg.split_hubs();
    if !nats.is_empty() {
        let shown = nats.iter().map(|s| fleet_protocol::nats::redact(s)).collect::<Vec<_>>().join(", ");
        let reached = match cfg.nats_options(&identity) {
            Ok(options) => fleet_protocol::nats::connect(&options).await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match reached {
            Ok(()) => r.good(format!("NATS {shown}: reachable, credentials accepted")),
            Err(e) => r.bad(
                format!("NATS {shown}: {e}"),
                "check the server URLs in `hubs`, the user and password in them or [nats] nkey_seed, and [nats] ca for TLS",
            ),
        }
    }
    if let (Some(key), Some(hub)) = (key, hub) {
        for endpoint in &zmq {
            match try_attach(endpoint, &key, &hub, &identity).await {
                Ok(name) => r.good(format!("hub {endpoint}: reachable, this key is enrolled as {name}")),
                Err((what, fix)) => r.bad(format!("hub {endpoint}: {what}"), fix),
            }
        }
    }
    r
}

/// One link handshake: the enrolled name, or what went wrong and its fix.
async fn try_attach(endpoint: &str, key: &KeyPair, hub: &PublicKeys, identity: &str) -> Result<String, (String, String)> {
    use fleet_protocol::join::AttachError;
    let log = || "check the hub's log".to_string();
    fleet_protocol::join::attach_once(endpoint, &hub.link, key, identity, None, Duration::from_secs(3)).await.map_err(|e| match e {
        AttachError::Connect(e) => {
            (format!("cannot connect: {e}"), "start the hub, check the address in `hubs`, and that the port is open".into())
        }
        AttachError::NoAnswer => (
            "this node's key is not enrolled yet (the hub holds it as pending)".into(),
            format!("on the hub: noded hub enroll --accept {identity} --role node, or join with a token: noded join TOKEN"),
        ),
        AttachError::Link(e) | AttachError::Refused(e) => (e, log()),
        AttachError::KeyMismatch(e) => {
            (format!("hub key mismatch: {e}"), "the pinned hub_key is not this hub's: re-join with a fresh token".into())
        }
    })
}
