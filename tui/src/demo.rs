//! `fleet demo`: a real hub and six real nodes in this process (real ZeroMQ sockets on loopback,
//! real agents), then the console on them. Also the embedded fleet the benchmarks use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use fleet_protocol::codec::Limits;
use fleet_protocol::keys::{KeyPair, Keyring};
use noded::audit::Audit;
use noded::security::Security;
use noded::{HubConfig, NodeConfig, NodeState};
use serde_json::json;
use tokio::sync::watch;

use fleet_client::{Client, Credentials, Signer};

/// Keys, trusted callers, policies and audit logs of an embedded fleet, in a temp dir, so the
/// demo and the benchmarks run the same secure path as a real fleet: signed requests, verified
/// on the hub and the nodes, authorized by policy files, audited.
pub struct DemoSecurity {
    pub dir: tempfile::TempDir,
    pub signer: Signer,
    pub callers: Keyring,
    /// The hub's key pair; its public half is pinned by every node and the console.
    pub hub_key: KeyPair,
}

impl DemoSecurity {
    /// A caller key named `caller`, trusted by every node, allowed every action of every built-in
    /// agent by an explicit policy file (the default stays deny).
    pub fn create(caller: &str) -> Result<DemoSecurity> {
        let dir = tempfile::Builder::new().prefix("fleet-demo-").tempdir().context("creating the demo's key directory")?;
        // Only this user may enter: it holds the hub's and the caller's private keys. Set before
        // anything is written into it.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
                .context("making the demo's key directory private")?;
        }
        let key = KeyPair::generate();
        let (private, public) = key.save(&dir.path().join("keys"), caller)?;
        std::fs::create_dir_all(dir.path().join("callers"))?;
        std::fs::copy(&public, dir.path().join("callers").join(format!("{caller}.pub")))?;
        std::fs::create_dir_all(dir.path().join("policies"))?;
        std::fs::create_dir_all(dir.path().join("audit"))?;
        for (agent, _) in fleet_ddl::builtin::all() {
            std::fs::write(
                dir.path().join("policies").join(format!("{agent}.policy")),
                format!("# written by fleet demo\npolicy default deny\nallow\t{caller}\t*\t*\t*\n"),
            )?;
        }
        let callers = Keyring::load(&dir.path().join("callers"))?;
        let signer = Signer::load(&private)?;
        // The hub's key, and the console's link key enrolled on it.
        let hub_key = KeyPair::generate();
        hub_key.save(dir.path(), "hub")?;
        noded::enroll::add(&dir.path().join("enroll"), caller, &public, noded::enroll::Role::Console).map_err(|e| anyhow::anyhow!(e))?;
        Ok(DemoSecurity { dir, signer, callers, hub_key })
    }

    pub fn hub_config(&self) -> HubConfig {
        HubConfig {
            callers_dir: Some(self.callers_dir()),
            key_file: self.dir.path().join("hub.key"),
            enroll_dir: self.dir.path().join("enroll"),
            policy_dir: self.dir.path().join("hub-policies"),
            ..HubConfig::default()
        }
    }

    /// Enrolls a node's link key on the hub, under its identity, as a node.
    pub fn enroll(&self, identity: &str, key: &KeyPair) -> Result<()> {
        noded::enroll::enroll_key(&self.dir.path().join("enroll"), identity, &key.public(), noded::enroll::Role::Node)
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(())
    }

    /// What a console of this fleet signs and pins with: the demo caller, the hub key, the node keys.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            signer: Some(self.signer.clone()),
            hub_key: Some(self.hub_key.public().link),
            known_nodes: fleet_client::NodeKeys::ready(Keyring::load(&self.dir.path().join("nodes")).unwrap_or_default()),
            looked_for: None,
        }
    }

    pub fn callers_dir(&self) -> PathBuf {
        self.dir.path().join("callers")
    }

    pub fn policy_dir(&self) -> PathBuf {
        self.dir.path().join("policies")
    }

    /// A node's security: its own key in memory, the shared callers and policies, and an audit
    /// log file per node (none when `audit` is false).
    pub fn for_node(&self, identity: &str, audit: bool) -> Result<Security> {
        let key = Arc::new(KeyPair::generate());
        self.enroll(identity, &key)?;
        // The console checks every reply's signature against these.
        let nodes = self.dir.path().join("nodes");
        std::fs::create_dir_all(&nodes)?;
        std::fs::write(nodes.join(format!("{identity}.pub")), key.public().to_file_text(identity))?;
        let audit = if audit {
            Audit::open(self.dir.path().join("audit").join(format!("{identity}.log")), 8 * 1024 * 1024, 2)?
        } else {
            Audit::disabled()
        };
        Ok(Security::in_memory(key, Some(self.hub_key.public().link), self.callers.clone(), &self.policy_dir(), false, audit))
    }
}

/// A running embedded fleet. Dropping it does not stop it; call [`EmbeddedFleet::stop`].
pub struct EmbeddedFleet {
    pub endpoint: String,
    pub nodes: Vec<Arc<NodeState>>,
    pub security: DemoSecurity,
    shutdown: watch::Sender<bool>,
}

impl EmbeddedFleet {
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// Starts a hub on an ephemeral loopback port with the embedded fleet's keys.
pub async fn start_hub(shutdown: watch::Receiver<bool>, security: &DemoSecurity) -> Result<String> {
    let config = security.hub_config();
    let (hub, endpoint) = noded::hub::Hub::bind("tcp://127.0.0.1:0", config, Limits::default()).await?;
    tokio::spawn(hub.run(shutdown));
    Ok(endpoint)
}

fn node_config(endpoint: &str, collective: &str) -> NodeConfig {
    NodeConfig {
        hubs: vec![endpoint.to_string()],
        heartbeat_interval: 5.0,
        collectives: vec![collective.to_string()],
        ..NodeConfig::default()
    }
}

/// The five demo nodes: varied identities, facts and classes.
pub fn demo_nodes(endpoint: &str, collective: &str, security: &DemoSecurity) -> Result<Vec<Arc<NodeState>>> {
    let builtin = noded::facts::builtin_facts();
    let specs = [
        ("web-01", "uk", "web", "lon1", &["base", "role::web", "nginx"][..]),
        ("web-02", "us", "web", "nyc1", &["base", "role::web", "nginx"][..]),
        ("db-01", "uk", "db", "lon1", &["base", "role::db", "postgresql"][..]),
        ("cache-01", "de", "cache", "fra1", &["base", "role::cache", "redis", "dev_server"][..]),
        ("xen-01", "us", "hypervisor", "nyc1", &["base", "role::dom0", "dev_server"][..]),
        ("xen-02", "us", "hypervisor", "nyc1", &["base", "role::dom0"][..]),
    ];
    let xen = simulated_hypervisor(&security.dir.path().join("xen"));
    let agents = noded::agents::AgentSet::builtin();
    specs
        .iter()
        .map(|(id, country, role, dc, classes)| {
            let mut facts = builtin.clone();
            noded::facts::merge(&mut facts, json!({ "hostname": id, "country": country, "role": role, "datacenter": dc, "demo": true }));
            let mut agents = agents.clone();
            // Jobs and concat keep their state in a directory of the node's own under the demo's
            // temp dir; concat builds under one shared root (the demo's nodes share this host).
            let mut config = node_config(endpoint, collective);
            config.state_dir = security.dir.path().join("state").join(id);
            config.concat.roots = vec![concat_root(security)];
            agents.insert(Arc::new(noded::agents::jobs::JobsAgent::for_config(&config)));
            agents.insert(Arc::new(noded::agents::concat::ConcatAgent::for_config(&config)));
            // Live metrics, started as noded's built-in agents start them: one sampler for the
            // process (the demo's nodes share this host), each sample pushed to the hub by every
            // node's link, so the console's Metrics view has data; every second, so the graphs
            // move. Started before the nodes' links, which take the sampler's frames when they
            // come up. The metrics agent itself is not added: the demo's agent list stays the one
            // the console tests walk.
            config.metrics.interval = 1.0;
            noded::agents::metrics::install(&config);
            if let (Some((standin, state)), true) = (&xen, id.starts_with("xen-")) {
                let map: std::collections::HashMap<String, String> =
                    [("xen-01", "10.0.0.1"), ("xen-02", "10.0.0.2")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                agents.insert(Arc::new(noded::agents::xen::XenAgent::simulated(standin.clone(), state, id, map)));
            }
            Ok(NodeState::new(
                id.to_string(),
                config,
                facts,
                classes.iter().map(|c| c.to_string()).collect(),
                agents,
                security.for_node(id, true)?,
            ))
        })
        .collect()
}

/// The stand-in hypervisor (tests/support/xl-standin, a Python script that prints exactly xl's
/// formats) seeded with two dom0s, when the source tree and python3 are there. The demo's xen
/// nodes run on it; the console says "simulated hypervisor". Real nodes always call the real xl.
fn simulated_hypervisor(state: &Path) -> Option<(PathBuf, PathBuf)> {
    let standin = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/xl-standin"));
    if !standin.is_file() {
        return None;
    }
    let seed = |args: &[&str]| {
        std::process::Command::new(&standin)
            .arg("seed")
            .args(args)
            .env("XL_STANDIN_STATE", state)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = seed(&[
        "--host",
        "xen-01",
        "--address",
        "10.0.0.1",
        "--nr-cpus",
        "8",
        "--total-memory",
        "32768",
        "--load",
        "1.6,1.4,1.2",
        "--domu",
        "web-vm1:2048:2:1210.5:0.6",
        "--domu",
        "db-vm1:8192:4:5320.1:0.9",
        "--domu",
        "test3:1024:1:88.0:1.7",
        "--domu",
        "build-vm:4096:4:300.0:0:--p---",
    ]) && seed(&[
        "--host",
        "xen-02",
        "--address",
        "10.0.0.2",
        "--nr-cpus",
        "8",
        "--total-memory",
        "32768",
        "--load",
        "0.16,0.2,0.3",
        "--domu",
        "cache-vm1:2048:2:640.2:0.1",
    ]);
    if !ok {
        tracing::warn!("the stand-in hypervisor could not be seeded (is python3 installed?); the demo runs without xen");
        return None;
    }
    Some((standin, state.to_path_buf()))
}

/// Starts a hub and the demo nodes, with fresh keys and policies.
pub async fn start() -> Result<EmbeddedFleet> {
    start_in("fleet").await
}

/// The demo fleet with every node in `collective`.
pub async fn start_in(collective: &str) -> Result<EmbeddedFleet> {
    let security = DemoSecurity::create("demo")?;
    let (tx, rx) = watch::channel(false);
    let endpoint = start_hub(rx.clone(), &security).await?;
    let nodes = demo_nodes(&endpoint, collective, &security)?;
    seed_concat(&nodes, &security).await?;
    for n in &nodes {
        // Scheduled jobs run from here on, as noded starts them.
        noded::agents::jobs::start(n.clone());
        tokio::spawn(noded::node::run(n.clone(), rx.clone()));
    }
    Ok(EmbeddedFleet { endpoint, nodes, security, shutdown: tx })
}

/// Where the demo's concat agents may build files.
pub fn concat_root(security: &DemoSecurity) -> PathBuf {
    security.dir.path().join("concat")
}

/// The demo's concat target: every node has a header and a welcome fragment, cache-01 (a dev
/// server) one more; the file holds what the common fragments make, so a dry run finds cache-01
/// would change and the others in sync. (The nodes share this host, so they share the file.)
async fn seed_concat(nodes: &[Arc<NodeState>], security: &DemoSecurity) -> Result<()> {
    let root = concat_root(security);
    std::fs::create_dir_all(&root).context("creating the demo's concat root")?;
    let target = root.join("motd");
    let common = [("10-header", 10, "# managed by fleet concat\n"), ("50-welcome", 50, "Welcome to the fleet demo.\n")];
    std::fs::write(&target, common.iter().map(|(_, _, text)| *text).collect::<String>()).context("writing the demo's motd")?;
    for node in nodes {
        let mut fragments = common.to_vec();
        if node.identity == "cache-01" {
            fragments.push(("90-dev", 90, "This is a development server: expect restarts.\n"));
        }
        let Some(agent) = node.agents().get("concat").cloned() else { continue };
        for (name, order, text) in fragments {
            let args = json!({ "target": target, "name": name, "order": order, "content": text });
            let args = args.as_object().cloned().unwrap_or_default();
            agent
                .call(node.clone(), noded::agents::RequestMeta::default(), "add_fragment", args)
                .await
                .map_err(|e| anyhow::anyhow!("seeding the demo's concat fragments: {}", e.message))?;
        }
    }
    Ok(())
}

/// Polls the registry of `client`'s hubs until it lists at least `count` nodes of `collective`;
/// returns how long that took, or says how many had registered when `timeout` passed.
pub async fn wait_for_registry(client: &mut Client, collective: &str, count: usize, timeout: Duration) -> Result<Duration> {
    let started = std::time::Instant::now();
    let mut why = String::new();
    loop {
        // Each question waits briefly: one lost or unanswered while the fleet starts (a registry
        // still starting on NATS, a hub busy with a registration storm) is simply asked again.
        let found = match client.discover(&fleet_protocol::Filter::default(), collective, timeout.min(Duration::from_secs(2))).await {
            Ok(nodes) => nodes.len(),
            Err(e @ (fleet_client::ClientError::NoRegistry(_) | fleet_client::ClientError::Hub(_))) => {
                why = format!(" (last: {e})");
                0
            }
            Err(e) => return Err(e.into()),
        };
        if found >= count {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            anyhow::bail!("only {found} of {count} nodes registered within {:.0} s{why}", timeout.as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
