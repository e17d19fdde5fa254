//! Setting a host up: `noded hub init`, `noded init`, `noded hub token`, `noded join`, and the
//! first-start checks that turn a missing piece into the command that fixes it.

use std::path::{Path, PathBuf};

use fleet_protocol::files::create_private_dir;
use fleet_protocol::join::JoinToken;
use fleet_protocol::keys::{KeyPair, PublicKeys};

use crate::config::{HubConfig, NodeConfig};

/// A configuration problem: noded exits with 78 (EX_CONFIG), so systemd does not restart it in a
/// loop, and the message says what to run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Misconfigured(pub String);

pub fn misconfigured(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Misconfigured(message.into()))
}

/// The agents `noded hub init` writes a policy for.
const BUILTIN_AGENTS: [&str; 4] = ["rpcutil", "echo", "process", "xen"];

const OPEN_POLICY: &str = "\
# Written by `noded hub init`. The hub sends this policy to every node that joined it
# (accept_trust_from_hub): every caller the hub trusts (an admin who ran `fleet join`, or a key in
# the hub's callers_dir) may use this agent on every node. Narrow it as you need: the syntax is in
# SECURITY.md (`allow CALLERS ACTIONS FACTS CLASSES`, first match wins). A node's own
# policy_dir/<agent>.policy wins over this one.
policy default deny
allow * * * *
";

/// `tcp://HOST:PORT` from `HOST:PORT` or an endpoint.
pub fn endpoint_of(address: &str) -> String {
    if address.contains("://") { address.to_string() } else { format!("tcp://{address}") }
}

/// The endpoint the hub puts in its join tokens: `hub.address`, else its first bind endpoint
/// with the host name in place of a wildcard address.
pub fn advertised_endpoint(hub: &HubConfig) -> String {
    if let Some(a) = &hub.address {
        return endpoint_of(a);
    }
    let bind = hub.bind.first().cloned().unwrap_or_else(|| fleet_protocol::DEFAULT_HUB_BIND.into());
    let host = crate::facts::host_name();
    bind.replace("0.0.0.0", &host).replace("[::]", &host)
}

fn toml_str(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

fn refuse_overwrite(path: &Path, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        anyhow::bail!("{} already exists; not overwriting it (--force replaces it)", path.display());
    }
    Ok(())
}

/// `noded hub init`: the hub's config, key, directories and default policies. Returns what it did.
pub fn hub_init(config_path: &Path, defaults: &NodeConfig, address: Option<&str>, force: bool) -> anyhow::Result<String> {
    refuse_overwrite(config_path, force)?;
    let hub = &defaults.hub;
    let (bind, advertised) = match address {
        Some(a) => {
            let endpoint = endpoint_of(a);
            // Bind what is advertised when it is an IP address; a host name binds every interface.
            let hostport = endpoint.trim_start_matches("tcp://");
            let port = hostport.rsplit(':').next().unwrap_or("7402");
            let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
            let bind = if host.parse::<std::net::IpAddr>().is_ok() { endpoint.clone() } else { format!("tcp://0.0.0.0:{port}") };
            (bind, Some(endpoint))
        }
        None => (fleet_protocol::DEFAULT_HUB_BIND.to_string(), None),
    };
    let mut done = Vec::new();
    for dir in [config_path.parent().unwrap_or(Path::new(".")), &hub.enroll_dir, &hub.policy_dir, &defaults.state_dir]
        .into_iter()
        .chain(hub.callers_dir.as_deref())
    {
        create_private_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    }
    if !hub.key_file.exists() {
        let (private, _) = save_key(&hub.key_file)?;
        done.push(format!("created the hub key {}", private.display()));
    }
    for agent in BUILTIN_AGENTS {
        let path = hub.policy_dir.join(format!("{agent}.{}", crate::policy::POLICY_EXT));
        if !path.exists() {
            fleet_protocol::files::write_atomically(&path, OPEN_POLICY.as_bytes(), 0o644)?;
        }
    }
    done.push(format!("wrote default policies for {} in {}", BUILTIN_AGENTS.join(", "), hub.policy_dir.display()));
    let text = format!(
        "# noded.toml for a hub, written by `noded hub init`. Every key not set here has a default\n\
         # (see deploy/noded.toml.example); `noded --help` lists the flags that override them.\n\n\
         [hub]\n\
         # Endpoints the hub listens on.\n\
         bind = [{bind}]\n\
         {address_line}\n\
         # The hub's key pair (nodes and admins pin its public half; join tokens carry it).\n\
         key_file = {key}\n\
         # Admins' public keys; `fleet join` adds them. Requests signed by anyone else are dropped.\n\
         callers_dir = {callers}\n\
         # <agent>.policy files sent, signed, to every node that joined (accept_trust_from_hub).\n\
         policy_dir = {policies}\n\
         # accepted/, pending/, rejected/ link keys (`noded hub enroll`), tokens/, the hub's audit log.\n\
         enroll_dir = {enroll}\n",
        bind = toml::Value::String(bind),
        address_line = match &advertised {
            Some(a) =>
                format!("# The address nodes and admins use; it goes into join tokens.\naddress = {}", toml::Value::String(a.clone())),
            None => "# address = \"tcp://bastion.example.net:7402\"   # what join tokens carry (default: host name)".into(),
        },
        key = toml_str(&hub.key_file),
        callers = toml_str(hub.callers_dir.as_deref().unwrap_or(Path::new(""))),
        policies = toml_str(&hub.policy_dir),
        enroll = toml_str(&hub.enroll_dir),
    );
    fleet_protocol::files::write_atomically(config_path, text.as_bytes(), 0o644)?;
    done.push(format!("wrote {}", config_path.display()));
    done.push(
        "next: start the hub (`noded hub`, or systemctl enable --now noded-hub), then make a join token: \
               noded hub token --role node --uses N"
            .into(),
    );
    Ok(done.join("\n"))
}

/// Writes a new key pair at `path` (0600 private, in a 0700 directory).
fn save_key(path: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_stem().and_then(|s| s.to_str()).ok_or_else(|| anyhow::anyhow!("{}: a key file needs a name", path.display()))?;
    Ok(KeyPair::generate().save(dir, name)?)
}

/// The node's config text: what `noded init` and `noded join` write.
fn node_config_text(cfg: &NodeConfig, hubs: &[String], identity: Option<&str>, trust_hub: bool, by: &str) -> String {
    let list = hubs.iter().map(|h| toml::Value::String(h.clone()).to_string()).collect::<Vec<_>>().join(", ");
    format!(
        "# noded.toml for a node, written by `{by}`. Every key not set here has a default (see\n\
         # deploy/noded.toml.example); `noded --help` lists the flags that override them.\n\n\
         {identity}\
         # Hubs to attach to, all at once.\n\
         hubs = [{list}]\n\
         # Take the admins' keys and the action policies from the hub (signed with its key):\n\
         # a new admin needs no change here. Local callers_dir and policy_dir files win.\n\
         accept_trust_from_hub = {trust_hub}\n\
         key_file = {key}\n\
         # The hub's public key, pinned.\n\
         hub_key = {hub_key}\n\
         callers_dir = {callers}\n\
         policy_dir = {policies}\n\
         audit_log = {audit}\n\
         state_dir = {state}\n\
         # facts_file = \"/etc/fleet/facts.yaml\"\n\
         # agents_dir = \"/etc/fleet/agents\"\n",
        identity = identity.map(|i| format!("identity = {}\n", toml::Value::String(i.into()))).unwrap_or_default(),
        key = toml_str(&cfg.key_file),
        hub_key = toml_str(&cfg.hub_key),
        callers = toml_str(&cfg.callers_dir),
        policies = toml_str(&cfg.policy_dir),
        audit = cfg.audit_log.as_deref().map(toml_str).unwrap_or_else(|| "\"off\"".into()),
        state = toml_str(&cfg.state_dir),
    )
}

/// `noded init --hub HOST:PORT`: a node config and key, for a hub whose public key is copied by
/// hand (`noded join` does both in one step).
pub fn node_init(config_path: &Path, cfg: &NodeConfig, hub: &str, force: bool) -> anyhow::Result<String> {
    refuse_overwrite(config_path, force)?;
    let mut done = Vec::new();
    prepare_dirs(config_path, cfg)?;
    if !cfg.key_file.exists() {
        save_key(&cfg.key_file)?;
        done.push(format!("created the node key {}", cfg.key_file.display()));
    }
    let text = node_config_text(cfg, &[endpoint_of(hub)], cfg.identity.as_deref(), false, "noded init");
    fleet_protocol::files::write_atomically(config_path, text.as_bytes(), 0o644)?;
    done.push(format!("wrote {}", config_path.display()));
    if !cfg.hub_key.exists() {
        done.push(format!("next: copy the hub's public key to {} (or use `noded join TOKEN` instead)", cfg.hub_key.display()));
    }
    Ok(done.join("\n"))
}

fn prepare_dirs(config_path: &Path, cfg: &NodeConfig) -> anyhow::Result<()> {
    for dir in [config_path.parent().unwrap_or(Path::new(".")), &cfg.state_dir] {
        create_private_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

/// `noded join TOKEN`: pins the hub key from the token, creates the node key, enrolls it with the
/// hub through the token, and writes the config (when there is none) so the node starts attached.
/// Returns the name the hub enrolled the node under.
pub async fn join(config_path: &Path, cfg: &NodeConfig, token: &str, identity: &str) -> anyhow::Result<String> {
    let token = JoinToken::parse(token).map_err(|e| anyhow::anyhow!("{e}"))?;
    prepare_dirs(config_path, cfg)?;
    pin_hub_key(&cfg.hub_key, &token.hub)?;
    if !cfg.key_file.exists() {
        save_key(&cfg.key_file)?;
    }
    let key = KeyPair::load_private(&cfg.key_file)?;
    let timeout = std::time::Duration::from_secs_f64(cfg.connect_timeout.max(5.0));
    let name = fleet_protocol::join::redeem(&token, &key, identity, timeout).await.map_err(|e| anyhow::anyhow!("join refused: {e}"))?;
    if !config_path.exists() {
        let text = node_config_text(cfg, std::slice::from_ref(&token.endpoint), Some(&name), true, "noded join");
        fleet_protocol::files::write_atomically(config_path, text.as_bytes(), 0o644)?;
    } else if !cfg.hubs.contains(&token.endpoint) || !cfg.accept_trust_from_hub {
        tracing::warn!(
            config = %config_path.display(),
            "the config file exists and was left alone: make sure it has hubs = [\"{}\"] and accept_trust_from_hub = true",
            token.endpoint
        );
    }
    Ok(name)
}

/// Writes the hub's public key where `hub_key` says, refusing to replace a different one.
pub fn pin_hub_key(path: &Path, hub: &PublicKeys) -> anyhow::Result<()> {
    match PublicKeys::load(path) {
        Ok(old) if old == *hub => Ok(()),
        Ok(_) => {
            anyhow::bail!("{} pins another hub's key; remove it first if this host is to move to the hub in the token", path.display())
        }
        Err(_) => {
            if let Some(dir) = path.parent() {
                create_private_dir(dir)?;
            }
            Ok(fleet_protocol::files::write_atomically(path, hub.to_file_text("hub").as_bytes(), 0o644)?)
        }
    }
}

/// Before a node starts: its directories and key are created when missing; what cannot be
/// created (the hub's key, the callers) is a [`Misconfigured`] error naming the fix.
pub fn prepare_node(cfg: &NodeConfig) -> anyhow::Result<()> {
    create_private_dir(&cfg.state_dir).map_err(|e| misconfigured(format!("state_dir: {}: {e}", cfg.state_dir.display())))?;
    if !cfg.key_file.exists() {
        let (private, _) = save_key(&cfg.key_file).map_err(|e| misconfigured(format!("key_file: {e:#}")))?;
        tracing::info!(key = %private.display(), "created this node's key pair (first start)");
    }
    if cfg.has_zmq_hub() && !cfg.hub_key.exists() {
        return Err(misconfigured(format!(
            "hub_key: {} is missing: the hub's public key must be pinned before attaching. Run `noded join TOKEN` \
             (a token from `noded hub token` on the hub), or copy the hub's hub.pub there",
            cfg.hub_key.display()
        )));
    }
    if !cfg.accept_trust_from_hub && !cfg.callers_dir.is_dir() {
        return Err(misconfigured(format!(
            "callers_dir: {} is missing: copy the admins' .pub keys there, or set accept_trust_from_hub = true \
             to take them from the hub",
            cfg.callers_dir.display()
        )));
    }
    Ok(())
}
