//! Command-line definitions. The man page and shell completions are generated from these same
//! definitions (`fleet completions`, `fleet man`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use fleet_client::{DiscoveryMethod, Scope};

mod rollout;
pub use rollout::{ResultArgs, RolloutArgs};
mod concat;
pub use concat::ConcatCommand;
mod job;
pub use job::JobCommand;
mod pgrep;
pub use pgrep::PgrepViewArgs;
mod metrics;
pub use metrics::MetricsArgs;

#[derive(Parser, Debug)]
#[command(
    name = "fleet",
    version,
    about = "Discover, inspect and act on a fleet of noded hosts",
    long_about = "fleet is a full-screen console (run it with no command) and a scriptable CLI for a fleet of \
                        hosts running noded. Requests go through a noded hub; discovery uses the hub's registry by \
                        default and every node checks the filter again itself.\n\n\
                        Exit codes: 0 all ok, 1 nothing discovered, 2 some failed or gave no reply, 3 discovered but \
                        no replies, 4 nothing sent (bad input, no hub).",
    after_help = "Examples:\n  fleet demo\n  fleet ping -F country=/uk|us/\n  fleet discover -C /dev_server/ --json\n  \
                        fleet inventory web-03\n  fleet rpc rpcutil get_fact fact=os.family -I /web/ --jsonl"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// Config file (default $XDG_CONFIG_HOME/fleet/config.toml).
    #[arg(long, global = true, value_name = "FILE", env = "FLEET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Hub endpoint, repeatable; every reachable one is attached and each request goes through all
    /// of them (replies de-duplicated). Also FLEET_HUB (comma separated).
    #[arg(long = "hub", global = true, value_name = "ENDPOINT", env = "FLEET_HUB", value_delimiter = ',')]
    pub hubs: Vec<String>,
    /// Caller id: signs with $XDG_CONFIG_HOME/fleet/keys/NAME.key (default: the config's `caller`,
    /// the only key in that directory, or the login name). FLEET_KEY names a key file instead.
    #[arg(long, global = true, value_name = "NAME", env = "FLEET_CALLER")]
    pub caller: Option<String>,
    /// Console theme.
    #[arg(long, global = true)]
    pub theme: Option<String>,
    /// Disable every destructive action in the console.
    #[arg(long, global = true)]
    pub read_only: bool,
    /// Log filter for the console's log file / the CLI's stderr (e.g. debug).
    #[arg(short = 'v', long = "log-level", global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

/// Discovery filter and request flags shared by every command that talks to nodes.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Fact filter: KEY=VALUE, KEY=/regex/, or KEY OP VALUE with == != < <= > >= (repeatable, and-ed).
    #[arg(short = 'F', long = "with-fact", value_name = "FACT")]
    pub fact: Vec<String>,
    /// Class filter: NAME or /regex/ (repeatable, and-ed).
    #[arg(short = 'C', long = "with-class", value_name = "CLASS")]
    pub class: Vec<String>,
    /// Identity filter: NAME or /regex/ (repeatable, or-ed). Exact names are addressed directly.
    #[arg(short = 'I', long = "with-identity", value_name = "IDENTITY")]
    pub identity: Vec<String>,
    /// Agent filter: NAME or /regex/ (repeatable, and-ed).
    #[arg(id = "with_agent", short = 'A', long = "with-agent", value_name = "AGENT")]
    pub agent: Vec<String>,
    /// Compound filter, e.g. "(country=uk or country=us) and not class=/dev/".
    #[arg(short = 'S', long = "select", value_name = "EXPR")]
    pub compound: Vec<String>,
    /// Discovery method: registry (the hub answers at once), broadcast (nodes decide; ends after a
    /// silence window) or flatfile (with --nodes).
    #[arg(long = "dm", value_name = "METHOD", default_value = "registry", value_parser = parse_method)]
    pub dm: DiscoveryMethod,
    /// Flatfile of node identities, one per line, or fleet's own --json/--jsonl output (each
    /// reply's sender); `-` reads standard input (implies --dm flatfile).
    #[arg(long = "nodes", value_name = "FILE")]
    pub nodes_file: Option<PathBuf>,
    /// Seconds to wait for all replies, discovery included.
    #[arg(short = 't', long, value_name = "SECONDS", value_parser = positive_seconds)]
    pub timeout: Option<f64>,
    /// Collective to address.
    #[arg(long)]
    pub collective: Option<String>,
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t > 0.0 => Ok(t),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

fn parse_method(s: &str) -> Result<DiscoveryMethod, String> {
    s.parse()
}

impl FilterArgs {
    pub fn filter(&self) -> fleet_protocol::Filter {
        fleet_protocol::Filter {
            identity: self.identity.clone(),
            fact: self.fact.clone(),
            class: self.class.clone(),
            agent: self.agent.clone(),
            compound: self.compound.clone(),
        }
    }

    /// The nodes these flags address, for the client core's spec builder.
    pub fn scope(&self) -> Scope {
        Scope {
            filter: self.filter(),
            method: self.dm,
            nodes_file: self.nodes_file.clone(),
            targets: None,
            collective: self.collective.clone(),
            timeout: self.timeout.map(std::time::Duration::from_secs_f64),
            rollout: self.rollout.rollout(),
        }
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Print one JSON document.
    #[arg(long, conflicts_with = "jsonl")]
    pub json: bool,
    /// Print one JSON object per line, as replies arrive.
    #[arg(long)]
    pub jsonl: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Ping the matching nodes and show their round-trip times.
    Ping {
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        results: ResultArgs,
    },
    /// List the nodes that match the filter.
    Discover {
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show one node's facts, agents, classes and daemon stats.
    Inventory {
        /// The node's identity.
        node: String,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Call any agent action: fleet rpc AGENT ACTION key=value...
    Rpc {
        agent: String,
        action: String,
        /// Inputs as key=value; values are converted to the types the DDL declares.
        #[arg(value_name = "KEY=VALUE")]
        inputs: Vec<String>,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
        /// Fire and forget: no discovery, no replies; prints the request id.
        #[arg(long)]
        no_reply: bool,
        /// Which replies to print: ok, failed, always (default: the DDL's choice).
        #[arg(long, value_parser = ["ok", "failed", "always", "flatten"])]
        display: Option<String>,
        /// Group identical replies: each distinct reply once, with its nodes as a compact set
        /// (web-[01-07,09]).
        #[arg(long)]
        fold: bool,
        #[command(flatten)]
        results: ResultArgs,
    },
    /// Grep the process tables of the matching nodes (mc-pgrep's layout, with totals).
    Pgrep {
        /// Regex matched against the command line (or the name with --name).
        pattern: String,
        /// Only zombie processes.
        #[arg(short = 'z', long)]
        zombies: bool,
        /// Only processes of this user.
        #[arg(short = 'U', long)]
        user: Option<String>,
        /// Match the pattern against the process name instead of the command line.
        #[arg(long = "name")]
        match_name: bool,
        /// Print only the exact targets, one HOST:PID@START_TIME per line, for `fleet kill`.
        #[arg(long, conflicts_with_all = ["json", "jsonl"])]
        targets: bool,
        #[command(flatten)]
        view: PgrepViewArgs,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        results: ResultArgs,
    },
    /// Signal exact processes: HOST:PID[@START_TIME]... (the start time guards against PID reuse).
    Kill {
        /// Targets as HOST:PID@START_TIME (from pgrep --json); without @START it is looked up first.
        #[arg(required = true, value_name = "HOST:PID[@START]")]
        targets: Vec<String>,
        /// Signal: TERM (default), KILL, HUP, INT, QUIT, USR1, USR2, STOP, CONT, CHLD.
        #[arg(short = 's', long, default_value = "TERM")]
        signal: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// List matching processes, show the exact targets, confirm, then signal exactly those.
    Pkill {
        /// Regex matched against the command line (or the name with --name).
        pattern: String,
        /// Only zombie processes (they cannot be killed: combine with --parents).
        #[arg(short = 'z', long)]
        zombies: bool,
        /// Signal the parents of the matched zombies instead (e.g. -s CHLD, then -s TERM).
        #[arg(long)]
        parents: bool,
        /// Only processes of this user.
        #[arg(short = 'U', long)]
        user: Option<String>,
        /// Match the pattern against the process name instead of the command line.
        #[arg(long = "name")]
        match_name: bool,
        /// Signal: TERM (default), KILL, HUP, INT, QUIT, USR1, USR2, STOP, CONT, CHLD.
        #[arg(short = 's', long, default_value = "TERM")]
        signal: String,
        /// Do not ask for confirmation (for scripts).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        results: ResultArgs,
    },
    /// Agent DDLs: render an agent's documentation, or check a DDL file.
    Ddl {
        #[command(subcommand)]
        what: DdlCommand,
    },
    /// Write a new external agent (executable and DDL), as Choria's `plugin generate`.
    Agent {
        #[command(subcommand)]
        what: AgentCommand,
    },
    /// Xen dom0s and domUs: list, find, migrate, and balance load across dom0s.
    Xen {
        #[command(subcommand)]
        cmd: XenCommand,
    },
    /// Background and scheduled jobs: run, status, output, list, cancel, watch.
    Job {
        #[command(subcommand)]
        cmd: JobCommand,
    },
    /// Files built from ordered fragments on every matching node: add, remove, list, build (with
    /// --dry-run diffs folded across nodes, and notifies only where the content changed).
    Concat {
        #[command(subcommand)]
        cmd: ConcatCommand,
    },
    /// Each matching host's newest metrics (load, CPU, memory, swap, disk, network, processes,
    /// and collectd's values where a node reads them), worst host first; --group FACT gives each
    /// group's min/avg/max and worst host, worst group first.
    #[command(after_help = "Examples:\n  fleet metrics\n  fleet metrics --group role\n  \
                            fleet metrics -S 'metric.load1>8' --watch\n  fleet metrics -m 'load*,mem_used_pct' --json\n  \
                            fleet metrics --profile web                # [profiles.web] in the config file\n  \
                            fleet metrics -I web-01 -m '*/load/*'      # collectd's load, as collectd names it\n\n\
                            Any metric is also a filter term: -S 'metric.mem_used_pct>90' (nodes decide, so discovery \
                            is by broadcast).")]
    Metrics {
        #[command(flatten)]
        args: MetricsArgs,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show the hub's counters (nodes, requests, replies, late replies, dropped frames).
    HubStats {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Start an embedded hub and six local nodes, then open the console on them.
    Demo {
        /// Print the demo's hub endpoint and keep it running without opening the console.
        #[arg(long)]
        headless: bool,
    },
    /// Benchmarks against real sockets.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Ask the matching nodes which policy line would decide CALLER's AGENT ACTION, and why (a dry run).
    Policy {
        #[command(subcommand)]
        what: PolicyCommand,
    },
    /// Create a caller key pair (ed25519 signing + X25519 link key); the name is the caller id.
    Keygen {
        /// The caller id, e.g. your login name.
        name: String,
        /// Where to write NAME.key (0600) and NAME.pub (default $XDG_CONFIG_HOME/fleet/keys).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Join a hub with a console token from `noded hub token --role console --name NAME`: creates
    /// the caller key (or reuses yours), pins the hub key, enrolls, and writes the config.
    Join {
        /// The token, as printed on the hub.
        token: String,
    },
    /// Check this console's set-up (keys, hub key, enrollment, caller known to hub and nodes,
    /// policies, node keys, clock skew) and print each problem with its fix. Exit 0: no problem.
    Doctor,
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff).
    Man,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// fleet policy check CALLER AGENT ACTION [filters]
    Check {
        caller: String,
        agent: String,
        action: String,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        results: ResultArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Write DIR/NAME (an external agent speaking Choria's protocol) and DIR/NAME.toml (its DDL).
    New {
        name: String,
        /// python or shell.
        #[arg(long, default_value = "python")]
        lang: String,
        /// Where to write (default: the current directory; a node's agents_dir loads it on reload).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DdlCommand {
    /// Render an agent's help page from its DDL: a FILE (.toml, .json), or a NAME (built-in, or NAME.toml/NAME.json in FLEET_DDL_PATH or /etc/fleet/agents).
    Doc {
        agent: String,
        /// Markdown instead of the terminal page.
        #[arg(long)]
        markdown: bool,
    },
    /// Validate a DDL file (TOML or Choria JSON); errors name the file, the line and the field.
    Check { file: PathBuf },
    /// Write an agent's DDL (NAME or FILE) as Choria's JSON DDL on stdout.
    Export {
        agent: String,
        /// Choria's JSON DDL (the only format written; accepted for clarity in scripts).
        #[arg(long)]
        json: bool,
    },
    /// Write DIR/NAME.toml: a new DDL with one action, a validated input and outputs.
    New {
        name: String,
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Full ping rounds against N simulated nodes behind an in-process hub, or over a local
    /// 3-server NATS cluster (`--transport nats`, needs nats-server installed).
    Ping {
        #[arg(long, default_value_t = 1000)]
        nodes: usize,
        #[arg(long, default_value_t = 50)]
        rounds: usize,
        /// What carries the rounds.
        #[arg(long, value_enum, default_value = "zeromq")]
        transport: crate::bench::Transport,
        /// Run the nodes in `noded sim` processes of this many nodes each (0: in this process).
        #[arg(long, default_value_t = 0)]
        per_process: usize,
        /// With --transport nats: three one-server cells joined by gateways, a registry per cell,
        /// instead of one 3-server cluster (docs/scale.md).
        #[arg(long)]
        cells: bool,
    },
    /// Full `pgrep .` rounds (every process of every node, totals rendered) against N sim nodes.
    Pgrep {
        #[arg(long, default_value_t = 100)]
        nodes: usize,
        #[arg(long, default_value_t = 20)]
        rounds: usize,
    },
    /// A registration storm alone: a noded hub process and noded sim processes, timed until all N
    /// nodes are registered; prints the hub's RSS, open files and CPU seconds.
    Register {
        #[arg(long, default_value_t = 1000)]
        nodes: usize,
        /// Nodes per noded sim process (a sim needs about 4 open files per node).
        #[arg(long, default_value_t = 2500)]
        per_process: usize,
    },
}

/// `fleet xen ...`: the filter and output flags live in each variant, so they are written after the
/// subcommand as with every other command (`fleet xen list -F dc=nyc1 --json`).
#[derive(Subcommand, Debug, Clone)]
pub enum XenCommand {
    /// List every dom0 (node with the xen agent) with its load, memory and domUs.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Tell which dom0 runs a domU.
    Find {
        /// The domU's name, exactly as xl list shows it.
        name: String,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Live-migrate a domU to another dom0, after showing what moves where and asking to confirm.
    Migrate {
        /// The domU to move.
        name: String,
        /// The dom0 to move it to, by its fleet name (its node maps it to a migration address).
        dest: String,
        /// Do not ask for confirmation (for scripts).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Balance load across dom0s by a policy: print the plan (default), apply it, or keep watching.
    #[command(after_help = "Policy file (TOML; every key optional):\n  interval = 60            # seconds between samples\n  \
                            load_threshold = 1.0\n  max_over = 5             # minutes over the threshold before acting\n  \
                            max_vm_per_host = 10\n  max_load_candidate = 0.5\n  max_migrations_per_round = 1\n  \
                            vm_cooldown = 30         # minutes before a moved domU may move again\n  \
                            host_cooldown = 10       # minutes a dom0 that sent or received is left alone\n  \
                            pinned = [\"db1\"]\n  maintenance = [\"xen-09\"]\n  [host_mapping]\n  xen-02 = \"10.0.0.2\"\n  \
                            [rules]                  # fleet's filter language (as -S), over facts and metrics\n  \
                            movable = \"not name=/^db-/\"                          # which domUs may move\n  \
                            receive = \"datacenter=fra1 and free_mem_mib>=4096\"   # which dom0s may take them\n  \
                            prefer = [\"rack=r12\", \"datacenter=fra1\"]           # receivers meeting an earlier one first")]
    Balance {
        /// The balancer policy (TOML).
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// Only print the plan (the default).
        #[arg(long, conflicts_with = "apply")]
        dry_run: bool,
        /// Carry the plan out: run each migration through the xen agent.
        #[arg(long)]
        apply: bool,
        /// Keep sampling every interval, keeping history; plans each round (applies with --apply).
        /// Stops cleanly on ctrl-c.
        #[arg(long)]
        watch: bool,
        /// Seconds to observe before a one-shot decision (default: the policy's max_over).
        #[arg(long, value_name = "SECS")]
        observe: Option<f64>,
        /// JSON file of past migrations: read for the cooldowns, appended to on --apply.
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn the_subcommands_parse() {
        use clap::Parser;
        #[derive(clap::Parser, Debug)]
        struct Top {
            #[command(subcommand)]
            cmd: super::XenCommand,
        }
        <Top as clap::CommandFactory>::command().debug_assert();
        let t = Top::try_parse_from(["xen", "migrate", "web1", "xen-02", "--yes", "--json", "-A", "extra"]).unwrap();
        match t.cmd {
            super::XenCommand::Migrate { name, dest, yes, filter, output } => {
                assert_eq!((name.as_str(), dest.as_str(), yes, output.json), ("web1", "xen-02", true, true));
                assert_eq!(filter.agent, ["extra"]);
            }
            other => panic!("{other:?}"),
        }
        let t = Top::try_parse_from(["xen", "balance", "--policy", "p.toml", "--watch", "--apply", "--observe", "2"]).unwrap();
        assert!(matches!(t.cmd, super::XenCommand::Balance { watch: true, apply: true, observe: Some(o), .. } if o == 2.0));
        assert!(Top::try_parse_from(["xen", "balance", "--policy", "p.toml", "--dry-run", "--apply"]).is_err());
        assert!(Top::try_parse_from(["xen", "find"]).is_err());
    }
}
