//! The scriptable CLI: clap types in [`args`], shared printing in [`output`], and one small file
//! per command that parses its flags, calls the client core, and prints.

pub mod args;
pub mod output;

mod agent;
mod concat;
mod ddl;
mod demo;
mod discover;
mod doctor;
mod inventory;
mod job;
mod join;
mod keygen;
mod kill;
mod metrics;
mod pgrep;
mod ping;
mod pkill;
mod results;
mod rpc;
mod xen;

use anyhow::Result;
use clap::{CommandFactory, Parser};

use fleet_client::{Client, ClientError, Credentials, Settings, exit};

use args::{AgentCommand, BenchCommand, DdlCommand, PolicyCommand};
pub use args::{Cli, Command, FilterArgs, OutputArgs};

use crate::config::ClientConfig;

/// `fleet pgrep`'s totals block, for the pgrep benchmark (which renders what the CLI prints).
pub fn pgrep_totals(listing: &fleet_client::process::Listing) -> String {
    pgrep::totals_text(listing)
}

/// What a command needs: the config, the request settings drawn from it, and the credentials.
pub struct Ctx {
    pub config: ClientConfig,
    pub settings: Settings,
    pub credentials: Credentials,
}

impl Ctx {
    /// A link to the first reachable hub.
    pub async fn client(&self) -> Result<Client, ClientError> {
        Client::connect(&self.settings, &self.credentials, false).await
    }
}

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
    if let Some(c) = &cli.global.caller {
        cfg.caller = Some(c.clone());
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

/// How an error that stopped a command is reported, and the exit code it gives.
fn report(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<ClientError>() {
        Some(ce) if ce.nothing_sent() => {
            eprintln!("fleet: {e:#}\nfleet: nothing was sent");
            ce.exit_code()
        }
        Some(ce) => {
            eprintln!("fleet: {e:#}");
            ce.exit_code()
        }
        None => {
            eprintln!("fleet: {e:#}");
            exit::NOTHING_SENT
        }
    }
}

/// Entry point of the `fleet` binary; returns the process exit code.
pub fn main_entry() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are answers, not errors; a usage error sends nothing: exit 4.
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => exit::OK,
                _ => exit::NOTHING_SENT,
            };
        }
    };
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fleet: {e:#}");
            return exit::NOTHING_SENT;
        }
    };
    // Keys are read once; commands that send requests refuse to run without them.
    let needs_keys = !matches!(cli.command, Some(Command::Demo { .. } | Command::Keygen { .. } | Command::Doctor | Command::Join { .. }));
    let credentials = if needs_keys {
        match config.credentials() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("fleet: {e:#}");
                return exit::NOTHING_SENT;
            }
        }
    } else {
        Credentials::default()
    };
    let console_mode = matches!(cli.command, None | Some(Command::Demo { headless: false }));
    if !console_mode {
        init_cli_logging(cli.global.log_level.as_deref());
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleet: cannot start the runtime: {e}");
            return exit::NOTHING_SENT;
        }
    };
    let ctx = Ctx { settings: config.settings(), config, credentials };
    match rt.block_on(dispatch(cli, ctx)) {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

async fn dispatch(cli: Cli, ctx: Ctx) -> Result<i32> {
    let log_level = cli.global.log_level.clone();
    match cli.command {
        None => {
            let opts = crate::console::Options::new(&ctx.config, ctx.settings.clone(), ctx.credentials.clone(), None, log_level);
            crate::console::run(opts).await.map(|_| 0)
        }
        Some(Command::Ping { filter, output, results }) => ping::run(&ctx, &filter, &output, &results).await,
        Some(Command::Discover { filter, output }) => discover::run(&ctx, &filter, &output).await,
        Some(Command::Inventory { node, filter, output }) => inventory::run(&ctx, &node, &filter, &output).await,
        Some(Command::Rpc { agent, action, inputs, filter, output, no_reply, display, fold, results }) => {
            rpc::run(&ctx, &rpc::Call { agent, action, inputs, no_reply, display, fold }, &filter, &output, &results).await
        }
        Some(Command::Pgrep { pattern, zombies, user, match_name, targets, view, filter, output, results }) => {
            let query = fleet_client::process::ListQuery { pattern, zombies, user, match_name };
            pgrep::run(&ctx, &query, targets, &view, &filter, &output, &results).await
        }
        Some(Command::Kill { targets, signal, output }) => kill::run(&ctx, &targets, &signal, &output).await,
        Some(Command::Pkill { pattern, zombies, parents, user, match_name, signal, yes, filter, output, results }) => {
            let query = fleet_client::process::ListQuery { pattern, zombies, user, match_name };
            pkill::run(&ctx, &query, &pkill::Options { parents, signal, yes }, &filter, &output, &results).await
        }
        Some(Command::Ddl { what: DdlCommand::Doc { agent, markdown } }) => ddl::doc(&agent, markdown),
        Some(Command::Ddl { what: DdlCommand::Check { file } }) => ddl::check(&file),
        Some(Command::Ddl { what: DdlCommand::Export { agent, json: _ } }) => ddl::export(&agent),
        Some(Command::Ddl { what: DdlCommand::New { name, dir, force } }) => ddl::new(&name, &dir, force),
        Some(Command::Agent { what: AgentCommand::New { name, lang, dir, force } }) => agent::new(&name, &lang, &dir, force),
        Some(Command::Xen { cmd }) => xen::run(&ctx, cmd).await,
        Some(Command::Job { cmd }) => job::run(&ctx, cmd).await,
        Some(Command::Concat { cmd }) => concat::run(&ctx, cmd).await,
        Some(Command::Metrics { args, filter, output }) => metrics::run(&ctx, &args, &filter, &output).await,
        Some(Command::HubStats { output }) => inventory::hub_stats(&ctx, &output).await,
        Some(Command::Demo { headless }) => demo::run(&ctx, headless, log_level).await,
        Some(Command::Bench { what: BenchCommand::Ping { nodes, rounds, transport, per_process, cells } }) => {
            crate::bench::ping(nodes, rounds, transport, per_process, cells).await.map(|_| 0)
        }
        Some(Command::Bench { what: BenchCommand::Pgrep { nodes, rounds } }) => crate::bench::pgrep(nodes, rounds).await.map(|_| 0),
        Some(Command::Bench { what: BenchCommand::Register { nodes, per_process } }) => {
            crate::bench::register(nodes, per_process).await.map(|_| 0)
        }
        Some(Command::Policy { what: PolicyCommand::Check { caller, agent, action, filter, output, results } }) => {
            let inputs = vec![format!("caller={caller}"), format!("agent={agent}"), format!("check_action={action}")];
            let call = rpc::Call {
                agent: "rpcutil".into(),
                action: "policy_check".into(),
                inputs,
                no_reply: false,
                display: Some("flatten".into()),
                fold: false,
            };
            rpc::run(&ctx, &call, &filter, &output, &results).await
        }
        Some(Command::Keygen { name, dir }) => keygen::run(&name, dir),
        Some(Command::Doctor) => doctor::run(&ctx).await,
        Some(Command::Join { token }) => join::run(&ctx.config, &token).await,
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

#[cfg(test)]
mod tests;
