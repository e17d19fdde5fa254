//! `noded`: the node daemon (default), `noded hub`, and `noded sim`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use fleet_protocol::codec::Limits;
use noded::NodeConfig;
use noded::setup::Misconfigured;
use tokio::sync::watch;
use tracing::{info, warn};

/// Links' worth of descriptors a hub keeps for consoles when it sizes its node capacity.
const CONSOLE_RESERVE: u64 = 64;

#[derive(Parser, Debug)]
#[command(
    name = "noded",
    version,
    about = "fleet node daemon: runs agents for the fleet console; also the hub and a simulator",
    long_about = "noded runs on every managed host. It attaches to every hub in its list, registers its facts, classes \
                        and agents, and answers requests after checking their collective, ttl, filter and DDL itself.\n\n\
                        `noded hub` runs the message hub; `noded sim --nodes N` runs N simulated nodes for load tests."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    node: NodeFlags,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Config file (TOML). Default: noded.toml in /etc/fleet as root, $XDG_CONFIG_HOME/fleet
    /// otherwise, or $FLEET_CONFIG_DIR (state goes to /var/lib/fleet, or $FLEET_STATE_DIR).
    #[arg(long, global = true, value_name = "FILE", env = "NODED_CONFIG")]
    config: Option<PathBuf>,
    /// Directory of trusted callers' public keys (node: `callers_dir`; hub: `hub.callers_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    callers_dir: Option<PathBuf>,
    /// Hub endpoint to attach to (node, sim) or to bind (hub). Repeatable. Overrides `hubs` / `hub.bind`.
    #[arg(long = "hub", visible_alias = "bind", global = true, value_name = "ENDPOINT")]
    hubs: Vec<String>,
    /// Log filter, e.g. info, debug, noded=trace. RUST_LOG wins when set.
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
    /// Longest ttl a request may carry, in seconds; longer ones are refused (node: `max_ttl`; hub: `hub.max_ttl`).
    #[arg(long, global = true, value_name = "SECS")]
    max_ttl: Option<u32>,
}

#[derive(Args, Debug, Clone, Default)]
struct NodeFlags {
    /// The node's identity (default: the host name).
    #[arg(long, global = true, env = "NODED_IDENTITY")]
    identity: Option<String>,
    /// Collective to join (repeatable; the first is the main collective).
    #[arg(long = "collective", global = true)]
    collectives: Vec<String>,
    /// Facts file (.yaml, .json or .toml).
    #[arg(long = "facts", global = true, value_name = "FILE")]
    facts_file: Option<PathBuf>,
    /// Puppet classes.txt.
    #[arg(long = "classes", global = true, value_name = "FILE")]
    classes_file: Option<PathBuf>,
    /// Directory of external agents (executable + DDL).
    #[arg(long = "agents-dir", global = true, value_name = "DIR")]
    agents_dir: Option<PathBuf>,
    /// Seconds between registration heartbeats.
    #[arg(long, global = true, value_name = "SECS")]
    heartbeat_interval: Option<f64>,
    /// Seconds of hub silence before the link is rebuilt.
    #[arg(long, global = true, value_name = "SECS")]
    link_timeout: Option<f64>,
    /// First reconnect delay, in seconds.
    #[arg(long, global = true, value_name = "SECS")]
    retry_initial_delay: Option<f64>,
    /// Largest reconnect delay, in seconds.
    #[arg(long, global = true, value_name = "SECS")]
    retry_max_delay: Option<f64>,
    /// Share of each delay that is randomised (0.0-1.0).
    #[arg(long, global = true, value_name = "SHARE")]
    retry_jitter: Option<f64>,
    /// This node's private key file.
    #[arg(long, global = true, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The hub's public key file, pinned for the link handshake.
    #[arg(long, global = true, value_name = "FILE")]
    hub_key: Option<PathBuf>,
    /// Directory of action policies (<agent>.policy).
    #[arg(long, global = true, value_name = "DIR")]
    policy_dir: Option<PathBuf>,
    /// What an agent without a policy file gets: deny or allow.
    #[arg(long, global = true, value_parser = ["allow", "deny"])]
    policy_default: Option<String>,
    /// Audit log file ("off" disables it). For `noded hub`, the hub's audit log of refused requests (`hub.audit_log`).
    #[arg(long, global = true, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Share of echo calls that fail on purpose (0.0-1.0).
    #[arg(long, global = true, value_name = "SHARE")]
    echo_failure_share: Option<f64>,
    /// The Xen toolstack CLI (default /usr/sbin/xl); the xen agent is active only where it exists.
    #[arg(long, global = true, value_name = "PATH")]
    xl_path: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum HubCommand {
    /// Manage the link keys allowed to attach, like salt-key: list, accept, reject, add. Every
    /// accepted key has a role: node (registers and replies) or console (sends requests signed by
    /// the caller of the same name).
    Enroll {
        /// List accepted, pending and rejected keys, with their roles.
        #[arg(long)]
        list: bool,
        /// Accept a pending key under its name (default role: node, since nodes knock). Also gives
        /// a role to a key enrolled before roles existed.
        #[arg(long, value_name = "NAME")]
        accept: Option<String>,
        /// Reject a pending (or accepted) key.
        #[arg(long, value_name = "NAME")]
        reject: Option<String>,
        /// Enroll a public key file directly: --add NAME FILE.pub (default role: console, since
        /// this is how an admin adds a caller).
        #[arg(long, num_args = 2, value_names = ["NAME", "FILE"])]
        add: Option<Vec<String>>,
        /// The role of the key accepted or added: node or console.
        #[arg(long, value_parser = ["node", "console"])]
        role: Option<String>,
    },
    /// Write a hub config (noded.toml with a [hub] table), the hub key, its directories (0700)
    /// and default policies for the built-in agents, in one step. Then start `noded hub`.
    Init {
        /// The address nodes and admins reach the hub at (HOST:PORT); join tokens carry it. An IP
        /// address is also what the hub binds; a host name binds every interface on its port.
        #[arg(long, value_name = "HOST:PORT")]
        address: Option<String>,
        /// Replace an existing config file.
        #[arg(long)]
        force: bool,
    },
    /// Print a join token (one shell word) for `noded join` (nodes) or `fleet join` (admins):
    /// the hub's address and public key and a secret, valid for --ttl seconds and --uses keys.
    /// The hub keeps only the secret's hash, under enroll_dir/tokens/.
    Token {
        /// What a key that joins with it becomes.
        #[arg(long, default_value = "node", value_parser = ["node", "console"])]
        role: String,
        /// The enrolled name: required for a console (the admin's caller id); for nodes the
        /// default is each node's identity.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// How many keys may join with this token.
        #[arg(long, default_value_t = 1, value_name = "N")]
        uses: u32,
        /// Seconds the token stays valid.
        #[arg(long, default_value_t = 3600, value_name = "SECS")]
        ttl: u64,
    },
    /// Forget a down node for good (a decommissioned host): the running hub drops it from its
    /// list of down nodes within a second. Asked through a file in the enrollment directory.
    Forget {
        /// The node's identity.
        node: String,
    },
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the message hub: bind a ROUTER, keep the registry, route requests and replies.
    Hub {
        /// Heartbeats a node may miss before it is dropped from the registry.
        #[arg(long)]
        missed_heartbeats: Option<u32>,
        /// The hub's key pair (default hub.key_file; created on the first start).
        #[arg(long, global = true, value_name = "FILE")]
        hub_key_file: Option<PathBuf>,
        /// Enrollment directory (default hub.enroll_dir), before or after `enroll`.
        #[arg(long, global = true, value_name = "DIR")]
        enroll_dir: Option<PathBuf>,
        #[command(subcommand)]
        enroll: Option<HubCommand>,
    },
    /// Keep the live-node view of a fleet on NATS and answer discovery from it (the hub's
    /// registry, where NATS servers route instead of a hub). Reads signed registrations from the
    /// servers in `hubs` (nats://...), believes those signed by keys enrolled as nodes in
    /// hub.enroll_dir (`noded hub enroll`), and answers in a queue group: run several.
    Registry {
        /// Heartbeats a node may miss before it is listed as down.
        #[arg(long)]
        missed_heartbeats: Option<u32>,
        /// Enrollment directory holding the node keys (default hub.enroll_dir).
        #[arg(long, value_name = "DIR")]
        enroll_dir: Option<PathBuf>,
    },
    /// Create this node's key pair (ed25519 signing key + X25519 link key), private file mode 0600.
    Keygen {
        /// Private key file to write; the public half goes next to it with the extension .pub.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write a node config and key for the hub at --hub HOST:PORT (the hub's public key is then
    /// copied by hand to hub_key; `noded join TOKEN` does everything in one step instead).
    Init {
        /// Replace an existing config file.
        #[arg(long)]
        force: bool,
    },
    /// Join a hub with a token from `noded hub token`: pins the hub key, creates this node's key,
    /// enrolls it, writes noded.toml (when there is none), then runs the node.
    Join {
        /// The token, as printed by `noded hub token`.
        token: String,
        /// Join and write the config, then exit (for a service manager to start noded).
        #[arg(long)]
        no_start: bool,
    },
    /// Check this host's set-up (config, keys and their modes, hub key pin, callers, policies,
    /// each hub's reachability and enrollment) and print each problem with its fix.
    Doctor,
    /// Run N simulated nodes (real sockets, real agents) in this process.
    Sim {
        /// How many nodes.
        #[arg(long, default_value_t = 100)]
        nodes: usize,
        /// Identity prefix of the simulated nodes.
        #[arg(long, default_value = "sim-")]
        prefix: String,
        /// Enroll every simulated node's public key, as a node, in DIR (a hub enrollment directory).
        #[arg(long, value_name = "DIR")]
        enroll_into: Option<PathBuf>,
    },
}

/// The config file: --config, else the default in the configuration directory.
fn config_path(cli: &Cli) -> PathBuf {
    cli.common.config.clone().unwrap_or_else(noded::config::default_config_path)
}

fn load_config(cli: &Cli) -> Result<NodeConfig> {
    let cfg_path = config_path(cli);
    let mut cfg = NodeConfig::load(&cfg_path, cli.common.config.is_some())?;
    let n = &cli.node;
    if let Some(v) = &n.identity {
        cfg.identity = Some(v.clone());
    }
    if !n.collectives.is_empty() {
        cfg.collectives = n.collectives.clone();
    }
    if let Some(v) = &n.facts_file {
        cfg.facts_file = Some(v.clone());
    }
    if let Some(v) = &n.classes_file {
        cfg.classes_file = Some(v.clone());
    }
    if let Some(v) = &n.agents_dir {
        cfg.agents_dir = Some(v.clone());
    }
    if let Some(v) = n.heartbeat_interval {
        cfg.heartbeat_interval = v;
    }
    if let Some(v) = n.link_timeout {
        cfg.link_timeout = Some(v);
    }
    if let Some(v) = n.retry_initial_delay {
        cfg.retry_initial_delay = v;
    }
    if let Some(v) = n.retry_max_delay {
        cfg.retry_max_delay = v;
    }
    if let Some(v) = n.retry_jitter {
        cfg.retry_jitter = v;
    }
    if let Some(v) = n.echo_failure_share {
        cfg.echo_failure_share = v;
    }
    if let Some(v) = &n.xl_path {
        cfg.xl_path = v.clone();
    }
    if let Some(v) = &cli.common.log_level {
        cfg.log_level = v.clone();
    }
    if let Some(dir) = &cli.common.callers_dir {
        cfg.callers_dir = dir.clone();
        cfg.hub.callers_dir = Some(dir.clone());
    }
    if let Some(v) = &n.key_file {
        cfg.key_file = v.clone();
    }
    if let Some(v) = &n.policy_dir {
        cfg.policy_dir = v.clone();
    }
    if let Some(v) = &n.policy_default {
        cfg.policy_default = v.clone();
    }
    if let Some(v) = cli.common.max_ttl {
        cfg.max_ttl = v;
        cfg.hub.max_ttl = v;
    }
    if let Some(v) = &n.audit_log {
        let off = v.as_os_str() == "off";
        if matches!(cli.command, Some(Command::Hub { .. })) {
            cfg.hub.audit_off = off;
            cfg.hub.audit_log = (!off).then(|| v.clone());
        } else {
            cfg.audit_log = (!off).then(|| v.clone());
        }
    }
    if let Some(Command::Registry { missed_heartbeats, enroll_dir }) = &cli.command {
        if let Some(m) = missed_heartbeats {
            cfg.hub.missed_heartbeats = *m;
        }
        if let Some(d) = enroll_dir {
            cfg.hub.enroll_dir = d.clone();
        }
    }
    if let Some(Command::Hub { missed_heartbeats, hub_key_file, enroll_dir, .. }) = &cli.command {
        if let Some(m) = missed_heartbeats {
            cfg.hub.missed_heartbeats = *m;
        }
        if let Some(k) = hub_key_file {
            cfg.hub.key_file = k.clone();
        }
        if let Some(d) = enroll_dir {
            cfg.hub.enroll_dir = d.clone();
        }
    }
    if let Some(v) = &n.hub_key {
        cfg.hub_key = v.clone();
    }
    if !cli.common.hubs.is_empty() {
        match cli.command {
            Some(Command::Hub { .. }) => cfg.hub.bind = cli.common.hubs.clone(),
            _ => cfg.hubs = cli.common.hubs.clone(),
        }
    }
    cfg.check("command line")?;
    Ok(cfg)
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// A watch that flips to true on SIGTERM or SIGINT.
fn shutdown_signal() -> Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM received, shutting down"),
            _ = int.recv() => info!("SIGINT received, shutting down"),
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

fn main() {
    let cli = Cli::parse();
    // A node waits nearly all its life: one thread and one malloc arena serve it, and every
    // further thread and arena would stay resident on each managed host. The hub, the registry
    // and the simulator serve many links at once and keep their worker threads.
    let node_role = matches!(cli.command, None | Some(Command::Join { .. }));
    if node_role {
        noded::memory::use_one_malloc_arena();
    }
    let cfg = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("noded: {e:#}");
            std::process::exit(78); // EX_CONFIG
        }
    };
    init_logging(&cfg.log_level);
    let mut rt = if node_role { tokio::runtime::Builder::new_current_thread() } else { tokio::runtime::Builder::new_multi_thread() };
    let rt = rt.worker_threads(2).enable_all().build().expect("tokio runtime");
    if let Err(e) = rt.block_on(run(cli, cfg)) {
        eprintln!("noded: {e:#}");
        let config = e.chain().any(|c| c.downcast_ref::<Misconfigured>().is_some());
        std::process::exit(if config { 78 } else { 1 });
    }
}

async fn run(cli: Cli, cfg: NodeConfig) -> Result<()> {
    let cfg_path = config_path(&cli);
    if let Some(Command::Keygen { out }) = &cli.command {
        let path = out.clone().unwrap_or_else(|| cfg.key_file.clone());
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let name = path.file_stem().and_then(|s| s.to_str()).context("the key file needs a name")?;
        if path.extension().is_none_or(|e| e != fleet_protocol::keys::PRIVATE_EXT) {
            anyhow::bail!("the key file must end in .{} (got {})", fleet_protocol::keys::PRIVATE_EXT, path.display());
        }
        let (private, public) = fleet_protocol::keys::KeyPair::generate().save(dir, name)?;
        println!("wrote {} (private, mode 0600) and {}", private.display(), public.display());
        if name == "hub" {
            println!("next: copy {} to every node and admin, or let join tokens carry it (noded hub token)", public.display());
        } else {
            println!(
                "next: start noded; it knocks on the hub as its identity, and on the hub: \
                 noded hub enroll --accept IDENTITY --role node (noded join TOKEN does all of this in one step)"
            );
        }
        return Ok(());
    }
    let shutdown = shutdown_signal()?;
    match cli.command {
        Some(Command::Keygen { .. }) => unreachable!("handled above"),
        Some(Command::Hub { enroll: Some(HubCommand::Init { address, force }), .. }) => {
            println!("{}", noded::setup::hub_init(&cfg_path, &cfg, address.as_deref(), force)?);
        }
        Some(Command::Hub { enroll: Some(HubCommand::Token { role, name, uses, ttl }), .. }) => {
            let key = fleet_protocol::keys::KeyPair::load_private(&cfg.hub.key_file)
                .map_err(|e| noded::setup::misconfigured(format!("hub.key_file: {e} (run `noded hub init`, or start the hub once)")))?;
            let endpoint = noded::setup::advertised_endpoint(&cfg.hub);
            let req = noded::enroll::TokenRequest { role: role.parse().map_err(|e: String| anyhow::anyhow!(e))?, name, uses, ttl_s: ttl };
            let token = noded::enroll::create_token(&cfg.hub.enroll_dir, &endpoint, key.public(), &req).map_err(|e| anyhow::anyhow!(e))?;
            println!("{}", token.encode());
            eprintln!(
                "a {role} join token for {endpoint}, valid {ttl} s for {uses} key(s) (hub key {}): on the host, run \
                 `{} join TOKEN`",
                token.hub_fingerprint(),
                if role == "node" { "noded" } else { "fleet" }
            );
        }
        Some(Command::Hub { enroll: Some(HubCommand::Forget { node }), .. }) => {
            let dir = &cfg.hub.enroll_dir;
            let path = noded::enroll::request_forget(dir, &node).map_err(|e| anyhow::anyhow!(e))?;
            // The hub takes the request within a second and removes the file; say whether it did.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while path.exists() && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            if path.exists() {
                println!("asked the hub to forget {node} ({}); no running hub has taken the request yet", path.display());
            } else {
                println!("the hub forgot {node}");
            }
        }
        Some(Command::Hub { enroll: Some(HubCommand::Enroll { list, accept, reject, add, role }), .. }) => {
            use noded::enroll::Role;
            let dir = &cfg.hub.enroll_dir;
            if !dir.is_dir() && add.is_none() {
                return Err(noded::setup::misconfigured(format!(
                    "no enrollment directory at {}: the hub creates it on its first start (`noded hub`, or `noded hub init`); \
                     is --enroll-dir (or hub.enroll_dir in {}) right?",
                    dir.display(),
                    cfg_path.display()
                )));
            }
            let role_or = |default: Role| -> Role { role.as_deref().map_or(default, |r| r.parse().unwrap_or(default)) };
            let result = if let Some(name) = accept {
                let role = role_or(Role::Node);
                noded::enroll::accept(dir, &name, role).map(|p| format!("accepted {name} as a {role} ({})", p.display()))
            } else if let Some(name) = reject {
                noded::enroll::reject(dir, &name).map(|p| format!("rejected {name} ({})", p.display()))
            } else if let Some(pair) = add {
                let role = role_or(Role::Console);
                noded::enroll::add(dir, &pair[0], std::path::Path::new(&pair[1]), role)
                    .map(|p| format!("enrolled {} as a {role} ({})", pair[0], p.display()))
            } else {
                let _ = list;
                let rows = noded::enroll::list(dir);
                if rows.is_empty() {
                    Ok(format!("no keys in {}", dir.display()))
                } else {
                    let mut text: Vec<String> =
                        rows.iter().map(|r| format!("{:<9} {:<8} {:<40} {}", r.state, r.role, r.name, r.fingerprint)).collect();
                    if rows.iter().any(|r| r.state == "no-role") {
                        text.push(
                            "keys marked no-role were enrolled before roles existed and are refused: \
                             noded hub enroll --accept NAME --role node|console"
                                .into(),
                        );
                    }
                    Ok(text.join("\n"))
                }
            };
            match result {
                Ok(text) => println!("{text}"),
                Err(e) => anyhow::bail!("{e}"),
            }
        }
        Some(Command::Hub { .. }) => {
            let limits = Limits { max_frame: cfg.max_frame, ..Limits::default() };
            let fd_limit = noded::limits::raise_fd_limit();
            let mut hub_cfg = cfg.hub.clone();
            let capacity = *hub_cfg.max_node_links.get_or_insert(noded::limits::link_capacity(fd_limit, CONSOLE_RESERVE));
            info!(
                open_files = fd_limit,
                node_links = capacity,
                "the open-files limit carries {capacity} node links ({per_link} descriptor each, {CONSOLE_RESERVE} links kept for consoles)",
                per_link = noded::limits::HUB_FDS_PER_LINK
            );
            // Rounds never stop long enough for the hub to be quiet; it hands freed heap back on a period.
            tokio::spawn(noded::memory::release_periodically(noded::memory::RELEASE_EVERY, shutdown.clone()));
            let mut tasks = Vec::new();
            for endpoint in &cfg.hub.bind {
                let (hub, bound) = noded::hub::Hub::bind(endpoint, hub_cfg.clone(), limits)
                    .await
                    .with_context(|| format!("starting hub on {endpoint}"))?;
                println!("hub listening on {bound}");
                let _ = std::io::stdout().flush();
                info!(endpoint = %bound, "hub listening");
                tasks.push(tokio::spawn(hub.run(shutdown.clone())));
            }
            for t in tasks {
                let _ = t.await;
            }
        }
        Some(Command::Sim { nodes, ref prefix, ref enroll_into }) => {
            let callers = fleet_protocol::keys::Keyring::load(&cfg.callers_dir).context("callers_dir")?;
            let hub_link_key = match cfg.has_zmq_hub() {
                true => Some(fleet_protocol::keys::PublicKeys::load(&cfg.hub_key).context("hub_key")?.link),
                false => None,
            };
            let fd_limit = noded::limits::raise_fd_limit();
            // Each ZeroMQ hub link takes NODE_FDS_PER_LINK descriptors; all the NATS servers of the list
            // share one connection.
            let (nats, zmq) = cfg.split_hubs();
            let per_node = noded::limits::NODE_FDS_PER_LINK * zmq.len() as u64 + u64::from(!nats.is_empty());
            let needed = nodes as u64 * per_node + noded::limits::FDS_BASE;
            if needed > fd_limit {
                warn!(
                    nodes,
                    needed,
                    open_files = fd_limit,
                    "simulating {nodes} nodes needs about {needed} open files and the limit is {fd_limit}: \
                     links past it will fail (raise it: ulimit -n, or LimitNOFILE= under systemd)"
                );
            }
            let built = noded::sim::build(nodes, &cfg, &callers, hub_link_key, prefix);
            if let Some(dir) = enroll_into {
                let accepted = dir.join("accepted");
                for (n, key) in &built {
                    noded::enroll::enroll_key(dir, &n.identity, &key.public(), noded::enroll::Role::Node)
                        .map_err(|e| anyhow::anyhow!(e))?;
                }
                info!(dir = %accepted.display(), "enrolled the simulated nodes' link keys");
            }
            let sims: Vec<_> = built.into_iter().map(|(n, _)| n).collect();
            info!(nodes, hubs = ?cfg.hubs, "simulated nodes starting");
            // Under load some node is always busy, so the process never settles as a node does.
            tokio::spawn(noded::memory::release_periodically(noded::memory::RELEASE_EVERY, shutdown.clone()));
            let tasks: Vec<_> = sims.into_iter().map(|n| tokio::spawn(noded::node::run(n, shutdown.clone()))).collect();
            for t in tasks {
                let _ = t.await;
            }
        }
        Some(Command::Registry { .. }) => noded::registry::run(cfg, shutdown).await?,
        Some(Command::Init { force }) => {
            let hub = cli.common.hubs.first().context("noded init needs the hub's address: noded init --hub HOST:PORT")?;
            println!("{}", noded::setup::node_init(&cfg_path, &cfg, hub, force)?);
        }
        Some(Command::Join { ref token, no_start }) => {
            let identity = cfg.identity.clone().unwrap_or_else(noded::facts::host_name);
            let name = noded::setup::join(&cfg_path, &cfg, token, &identity).await?;
            println!("joined the hub as {name}; config {}", cfg_path.display());
            if !no_start {
                let mut cfg = NodeConfig::load(&cfg_path, true)?;
                cfg.identity = Some(name);
                run_node(cfg, shutdown).await?;
            }
        }
        Some(Command::Doctor) => {
            let report = noded::doctor::run(&cfg_path, &cfg).await;
            print!("{report}");
            if !report.ok() {
                std::process::exit(1);
            }
        }
        None => run_node(cfg, shutdown).await?,
    }
    info!("stopped");
    Ok(())
}

/// Runs the node daemon until SIGTERM/SIGINT. What is missing is created when it can be, and is
/// otherwise a configuration error (exit 78) naming the fix.
async fn run_node(cfg: NodeConfig, shutdown: watch::Receiver<bool>) -> Result<()> {
    noded::setup::prepare_node(&cfg)?;
    let node = noded::build_node(cfg).map_err(|e| noded::setup::misconfigured(format!("{e:#}")))?;
    node.reload_agents(None).await;
    info!(identity = %node.identity, hubs = ?node.config.hubs, agents = ?node.agents().names(), "noded starting");
    // SIGHUP rescans the agents directory without a restart; callers are watched (see node.rs).
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("installing SIGHUP handler")?;
    let reloader = node.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            info!("SIGHUP received, reloading agents and trusted callers");
            reloader.security.reload_callers();
            reloader.reload_agents(None).await;
        }
    });
    tokio::spawn(noded::node::watch_callers(node.clone(), shutdown.clone()));
    // Once up and quiet, and after each burst of requests, the node settles (node::memory).
    tokio::spawn(noded::memory::release_when_quiet(node.settle.clone(), shutdown.clone()));
    node.settle.done();
    // Scheduled jobs run, and runs left by a stopped noded are marked lost, before any request.
    noded::agents::jobs::start(node.clone());
    noded::node::run(node.clone(), shutdown).await;
    node.security.audit.shutdown();
    Ok(())
}
