//! fleet: the full-screen console and the scriptable CLI.

pub mod bench;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod console;
pub mod demo;
pub mod procs;
pub mod request;
pub mod xen; // issue 7

use anyhow::Result;
use clap::{CommandFactory, Parser};

use cli::{BenchCommand, Cli, Command, DdlCommand, PolicyCommand};
use commands::Ctx;
use config::ClientConfig;

fn load_config(cli: &Cli) -> Result<ClientConfig> {
    let mut cfg = match &cli.global.config {
        Some(p) => ClientConfig::load(p, true)?,
        None => match ClientConfig::default_path() {
            Some(p) => ClientConfig::load(&p, false)?,
            None => ClientConfig::default(),
        },
    };
    if !cli.global.hubs.is_empty() {
        cfg.hubs = cli.global.hubs.iter().filter(|h| !h.trim().is_empty()).cloned().collect();
    }
    if let Some(t) = &cli.global.theme {
        cfg.theme = t.clone();
    }
    if cli.global.read_only {
        cfg.read_only = true;
    }
    Ok(cfg)
}

fn init_cli_logging(level: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level.unwrap_or("warn")))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

/// Entry point of the `fleet` binary; returns the process exit code.
pub fn main_entry() -> i32 {
    let cli = Cli::parse();
    let cfg = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fleet: {e:#}");
            return commands::EXIT_NOTHING;
        }
    };
    // The signing key: loaded once; commands that send requests refuse to run without it.
    if !matches!(cli.command, Some(Command::Demo { .. }) | Some(Command::Keygen { .. })) {
        if let Some(dir) = ClientConfig::nodes_dir().filter(|d| d.is_dir()) {
            match fleet_protocol::keys::Keyring::load(&dir) {
                Ok(ring) => client::set_known_nodes(ring),
                Err(e) => eprintln!("fleet: warning: cannot read node keys in {}: {e}", dir.display()),
            }
        }
        if let Some(path) = cfg.hub_key_path().filter(|p| p.exists()) {
            match fleet_protocol::keys::PublicKeys::load(&path) {
                Ok(k) => client::set_hub_key(k.link),
                Err(e) => {
                    eprintln!("fleet: hub key: {e}");
                    return commands::EXIT_NOTHING;
                }
            }
        }
        if let Some(path) = cfg.key_path().filter(|p| p.exists()) {
            match client::Signer::load(&path) {
                Ok(s) => client::set_default_signer(s),
                Err(e) => {
                    eprintln!("fleet: {e:#}");
                    return commands::EXIT_NOTHING;
                }
            }
        }
    }
    let console_mode = matches!(cli.command, None | Some(Command::Demo { headless: false }));
    if !console_mode {
        init_cli_logging(cli.global.log_level.as_deref());
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleet: cannot start the runtime: {e}");
            return commands::EXIT_NOTHING;
        }
    };
    match rt.block_on(dispatch(cli, cfg)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fleet: {e:#}");
            commands::EXIT_NOTHING
        }
    }
}

async fn dispatch(cli: Cli, config: ClientConfig) -> Result<i32> {
    let ctx = Ctx { config };
    let log_level = cli.global.log_level.clone();
    match cli.command {
        None => console::run(console::Options::from_config(&ctx.config, None, log_level)).await.map(|_| 0),
        Some(Command::Ping { filter, output }) => commands::ping(&ctx, &filter, &output).await,
        Some(Command::Discover { filter, output }) => commands::discover(&ctx, &filter, &output).await,
        Some(Command::Inventory { node, filter, output }) => commands::inventory(&ctx, &node, &filter, &output).await,
        Some(Command::Rpc { agent, action, inputs, filter, output, no_reply, display }) => {
            commands::rpc(&ctx, &agent, &action, &inputs, &filter, &output, no_reply, display.as_deref()).await
        }
        Some(Command::Pgrep { pattern, zombies, user, match_name, filter, output }) => {
            procs::pgrep(&ctx, &pattern, zombies, user.as_deref(), match_name, &filter, &output).await
        }
        Some(Command::Kill { targets, signal, output }) => procs::kill(&ctx, &targets, &signal, &output).await,
        Some(Command::Pkill { pattern, zombies, parents, user, match_name, signal, yes, filter, output }) => {
            procs::pkill(&ctx, &pattern, zombies, user.as_deref(), match_name, parents, &signal, yes, &filter, &output).await
        }
        Some(Command::Ddl { what: DdlCommand::Doc { agent, markdown } }) => {
            let ddl = commands::find_ddl(&agent)?;
            let page = if markdown { fleet_ddl::doc::render_markdown(&ddl) } else { fleet_ddl::doc::render_text(&ddl) };
            print!("{page}");
            Ok(0)
        }
        Some(Command::Ddl { what: DdlCommand::Check { file } }) => match fleet_ddl::Ddl::from_path(&file) {
            Ok(ddl) => {
                println!(
                    "{}: ok: agent {} {} with {} action(s)",
                    file.display(),
                    ddl.metadata.name,
                    ddl.metadata.version,
                    ddl.actions.len()
                );
                Ok(0)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(1)
            }
        },
        Some(Command::Xen { cmd }) => xen::run(&ctx, cmd).await, // issue 7
        Some(Command::HubStats { output }) => commands::hub_stats(&ctx, &output).await,
        Some(Command::Demo { headless }) => {
            let fleet = demo::start().await?;
            client::set_default_signer(fleet.security.signer.clone());
            client::set_hub_key(fleet.security.hub_key.public().link);
            if let Ok(ring) = fleet_protocol::keys::Keyring::load(&fleet.security.dir.path().join("nodes")) {
                client::set_known_nodes(ring);
            }
            if headless {
                let key = fleet.security.dir.path().join("keys").join("demo.key");
                println!("demo hub listening on {}", fleet.endpoint);
                let hub_pub = fleet.security.dir.path().join("hub.pub");
                let nodes = fleet.security.dir.path().join("nodes");
                println!(
                    "try: FLEET_KEY={} FLEET_HUB_KEY={} FLEET_NODES_DIR={} fleet --hub {} ping",
                    key.display(),
                    hub_pub.display(),
                    nodes.display(),
                    fleet.endpoint
                );
                tokio::signal::ctrl_c().await?;
                fleet.stop();
                return Ok(0);
            }
            let mut cfg = ctx.config.clone();
            cfg.hubs = vec![fleet.endpoint.clone()];
            let opts = console::Options::from_config(&cfg, Some("demo: embedded hub + 5 in-process nodes".into()), log_level);
            let r = console::run(opts).await;
            fleet.stop();
            r.map(|_| 0)
        }
        Some(Command::Bench { what: BenchCommand::Ping { nodes, rounds } }) => bench::ping(nodes, rounds).await.map(|_| 0),
        Some(Command::Bench { what: BenchCommand::Pgrep { nodes, rounds } }) => bench::pgrep(nodes, rounds).await.map(|_| 0),
        Some(Command::Policy { what: PolicyCommand::Check { caller, agent, action, filter, output } }) => {
            let inputs = [format!("caller={caller}"), format!("agent={agent}"), format!("check_action={action}")];
            commands::rpc(&ctx, "rpcutil", "policy_check", &inputs, &filter, &output, false, Some("flatten")).await
        }
        Some(Command::Keygen { name, dir }) => {
            let dir = match dir.or_else(ClientConfig::keys_dir) {
                Some(d) => d,
                None => anyhow::bail!("no config directory: pass --dir"),
            };
            let (private, public) = fleet_protocol::keys::KeyPair::generate().save(&dir, &name)?;
            println!("wrote {} (private, mode 0600) and {}", private.display(), public.display());
            println!("copy {} into the callers directory of every node (and hub) as {name}.pub;", public.display());
            println!("the file name is the caller id their policies see: {name}");
            Ok(0)
        }
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "fleet", &mut std::io::stdout());
            Ok(0)
        }
        Some(Command::Man) => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(0)
        }
    }
}
