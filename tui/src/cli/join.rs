//! `fleet join TOKEN`: an admin joins a hub with a console token (`noded hub token --role
//! console --name NAME` on the hub). One step does what `fleet keygen`, copying keys and
//! enrolling did: the caller key is created (or the existing one reused), the hub's key pinned
//! from the token, the key enrolled as a console under the token's name (the hub adds it to its
//! callers and sends it, signed, to the nodes that accept trust from it), and the config written.

use anyhow::{Context, Result};
use fleet_protocol::join::JoinToken;
use fleet_protocol::keys::KeyPair;

use crate::config::{ClientConfig, login_name};

pub async fn run(config: &ClientConfig, token: &str) -> Result<i32> {
    let token = JoinToken::parse(token).map_err(fleet_client::ClientError::Input)?;
    let keys_dir = ClientConfig::keys_dir().context("no config directory (set HOME or XDG_CONFIG_HOME)")?;
    let hub_path = config.hub_key_path().context("no config directory (set HOME or XDG_CONFIG_HOME)")?;
    // An existing caller key is enrolled again rather than replaced.
    let existing = config.key_path().filter(|p| p.exists());
    let key = match &existing {
        Some(path) => KeyPair::load_private(path)?,
        None => KeyPair::generate(),
    };
    let claimed = existing.as_ref().and_then(|p| p.file_stem()?.to_str().map(str::to_string)).unwrap_or_else(|| config.caller());
    let name = fleet_protocol::join::redeem(&token, &key, &claimed, std::time::Duration::from_secs(5))
        .await
        .map_err(|e| fleet_client::ClientError::NoHub(format!("join refused: {e}")))?;
    noded::setup::pin_hub_key(&hub_path, &token.hub)?;
    let key_path = match existing {
        Some(path) => path,
        None => key.save(&keys_dir, &name)?.0,
    };
    let config_path = ClientConfig::default_path().context("no config directory")?;
    if !config_path.exists() {
        let text = format!(
            "# fleet's config, written by `fleet join`. See deploy/fleet-config.toml.example for every key.\n\
             hubs = [{}]\n\
             caller = {}\n",
            toml::Value::String(token.endpoint.clone()),
            toml::Value::String(name.clone()),
        );
        fleet_protocol::files::write_atomically(&config_path, text.as_bytes(), 0o644)?;
    } else if !config.hubs.contains(&token.endpoint) {
        eprintln!(
            "fleet: {} exists and was left alone: add \"{}\" to its hubs (and caller = \"{name}\")",
            config_path.display(),
            token.endpoint
        );
    }
    println!("joined {} as caller {name} (console); key {}, hub key pinned at {}", token.endpoint, key_path.display(), hub_path.display());
    if name != login_name() {
        println!("requests are signed as {name}");
    }
    println!("try: fleet ping");
    Ok(fleet_client::exit::OK)
}
