//! `fleet bench ping` and `pgrep`: full rounds (request out, every reply in) against N simulated
//! nodes behind an in-process hub, over real loopback TCP; p50, p99, max, and the hub's and the
//! console's own CPU. `fleet bench register`: a registration storm alone, against a separate
//! `noded hub` process and separate `noded sim` processes.
//!
//! `--transport nats` runs the same rounds over a 3-server `nats-server` cluster on loopback with
//! an in-process `noded registry` in the hub's place ([`nats`]).

mod nats;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde_json::Map;
use tokio::runtime::Runtime;
use tokio::sync::watch;

use fleet_client::process::{ListQuery, Listing};
use fleet_client::round::Outcome;
use fleet_client::{Client, Credentials, Scope, Settings, Spec, round};
use fleet_protocol::codec::Limits;

/// Thread names of the in-process hub's runtime and the console's runtime. Each runs on its own
/// tokio runtime, so every task it spawns (zmq.rs's socket tasks included) runs on threads of
/// that name, and its CPU can be told apart from the simulated nodes' in /proc/self/task.
const HUB_THREADS: &str = "bench-hub";
const CONSOLE_THREADS: &str = "bench-console";

/// An in-process fleet: the hub on its own runtime, the sim nodes on the caller's runtime, and a
/// runtime for the console; every node registered.
struct Fleet {
    shutdown: watch::Sender<bool>,
    hub_rt: Runtime,
    console_rt: Runtime,
    endpoint: String,
    credentials: Credentials,
    /// The NATS servers, when the rounds go over NATS.
    cluster: Option<nats::LocalCluster>,
    /// `noded sim` processes, when the nodes run outside this process.
    sims: Children,
    /// The cells (NATS clusters joined by gateways) whose registries answer discovery.
    cells: Option<usize>,
}

/// Nodes that share an identity prefix, a server list and a cell.
struct Group {
    prefix: String,
    hubs: Vec<String>,
    count: usize,
    cell: Option<String>,
}

/// What carries the benchmark's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// The in-process ZeroMQ hub.
    Zeromq,
    /// A 3-server nats-server cluster (child processes) and an in-process registry.
    Nats,
}

impl Transport {
    /// What routes and answers discovery: whose CPU the "hub" line counts.
    fn router(self) -> &'static str {
        match self {
            Transport::Zeromq => "hub",
            Transport::Nats => "registry",
        }
    }
}

impl Fleet {
    /// What the console is told: the hub or first server, and on NATS how many cells answer.
    fn settings(&self) -> Settings {
        let mut settings = bench_settings(&self.endpoint);
        settings.nats.cells = self.cells;
        settings
    }

    /// Runs `work` on the console's runtime and waits for it.
    async fn on_console<T: Send + 'static>(&self, work: impl Future<Output = Result<T>> + Send + 'static) -> Result<T> {
        self.console_rt.spawn(work).await.context("the console task panicked")?
    }

    fn stop(self) {
        let _ = self.shutdown.send(true);
        // The nodes go first, then (dropped last) the servers they were attached to.
        drop(self.sims);
        if self.cluster.is_some() {
            std::thread::sleep(Duration::from_millis(300));
        }
        // Dropping a runtime inside an async context panics; the process exits right after.
        self.hub_rt.shutdown_background();
        self.console_rt.shutdown_background();
    }
}

fn runtime(name: &str) -> Result<Runtime> {
    // Two workers, as `noded hub` and the `fleet` CLI each run with.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("starting the {name} runtime"))
}

/// A hub (or a NATS cluster and a registry) and `nodes` sim nodes on loopback, every node
/// registered.
/// With `per_process` > 0 the nodes run in `noded sim` processes of that many nodes each, so
/// this process holds only the console and the hub (or the registry).
async fn fleet_of(nodes: usize, transport: Transport, per_process: usize, cells: bool) -> Result<Fleet> {
    // FLEET_BENCH_LINK_GUARD=0 measures the sim nodes without their outbound frame guards, to
    // show what that layer costs.
    let link_guard = std::env::var("FLEET_BENCH_LINK_GUARD").map(|v| v != "0").unwrap_or(true);
    // FLEET_BENCH_VERIFY=0 leaves the nodes' keys out of the console's keyring, so the console
    // does not check reply signatures (as a console with no node keys does).
    let verify = std::env::var("FLEET_BENCH_VERIFY").map(|v| v != "0").unwrap_or(true);
    let security = crate::demo::DemoSecurity::create("bench")?;
    // Every node's links live in this process (and the NATS servers inherit the limit).
    let open_files = noded::limits::raise_fd_limit();
    eprintln!("open-files limit {open_files}");
    let (tx, rx) = watch::channel(false);
    let hub_rt = runtime(HUB_THREADS)?;
    let (config, hub_shutdown) = (security.hub_config(), rx.clone());
    let cfg = noded::NodeConfig {
        heartbeat_interval: 30.0,
        connect_timeout: 30.0,
        policy_dir: security.policy_dir(),
        link_guard,
        ..Default::default()
    };
    let (endpoint, cluster, groups) = match transport {
        Transport::Zeromq => {
            let endpoint = hub_rt
                .spawn(async move {
                    let (hub, endpoint) = noded::hub::Hub::bind("tcp://127.0.0.1:0", config, Limits::default()).await?;
                    tokio::spawn(hub.run(hub_shutdown));
                    anyhow::Ok(endpoint)
                })
                .await
                .context("the hub task panicked")??;
            (endpoint.clone(), None, vec![Group { prefix: "bench-".into(), hubs: vec![endpoint], count: nodes, cell: None }])
        }
        Transport::Nats => {
            let cluster = nats::LocalCluster::start(security.dir.path(), cells)?;
            let groups = cluster.start_registries(&hub_rt, &noded::NodeConfig { hub: config, ..cfg.clone() }, hub_shutdown, cells);
            (cluster.urls[0].clone(), Some(cluster), groups.split(nodes))
        }
    };
    let started = Instant::now();
    let enroll_dir = security.dir.path().join("enroll");
    let mut sims = Children(Vec::new());
    if per_process == 0 {
        let known = security.dir.path().join("nodes");
        std::fs::create_dir_all(&known)?;
        let hub_link_key = (transport == Transport::Zeromq).then(|| security.hub_key.public().link);
        let mut built = Vec::new();
        for g in &groups {
            let mut cfg = noded::NodeConfig { hubs: g.hubs.clone(), ..cfg.clone() };
            cfg.nats.cell = g.cell.clone();
            built.extend(noded::sim::build(g.count, &cfg, &security.callers, hub_link_key, &g.prefix));
        }
        // Every key enrolled before any node knocks: a node that knocks before the hub has read
        // its enrollment is parked and retried, which times the hub's enrollment watcher, not
        // registration.
        for (n, key) in &built {
            security.enroll(&n.identity, key)?;
            if verify {
                std::fs::write(known.join(format!("{}.pub", n.identity)), key.public().to_file_text(&n.identity))?;
            }
        }
        for (n, _) in built {
            tokio::spawn(noded::node::run(n, rx.clone()));
        }
    } else {
        let noded = noded_binary()?;
        let dir = security.dir.path().to_path_buf();
        let shared = write_noded_config(&dir)?;
        for g in &groups {
            let prefix = &g.prefix;
            let config = match &g.cell {
                None => shared.clone(),
                Some(cell) => {
                    let path = dir.join(format!("noded-{cell}.toml"));
                    std::fs::write(&path, format!("{}\n[nats]\ncell = {cell:?}\n", std::fs::read_to_string(&shared)?))?;
                    path
                }
            };
            for (i, first) in (0..g.count).step_by(per_process).enumerate() {
                let n = per_process.min(g.count - first);
                let sim = Command::new(&noded)
                    .arg("--config")
                    .arg(&config)
                    .args(["sim", "--nodes", &n.to_string(), "--prefix", &format!("{prefix}{i}-")])
                    .args(g.hubs.iter().flat_map(|h| ["--hub", h.as_str()]))
                    .arg("--enroll-into")
                    .arg(&enroll_dir)
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(dir.join(format!("sim-{prefix}{i}.log")))?)
                    .spawn()
                    .with_context(|| format!("starting {}", noded.display()))?;
                sims.0.push(sim);
            }
        }
        eprintln!("{} noded sim process(es) of at most {per_process} nodes", sims.0.len());
    }
    let credentials = security.credentials();
    let cells = cells.then_some(nats::SERVERS);
    let mut fleet = Fleet { shutdown: tx, hub_rt, console_rt: runtime(CONSOLE_THREADS)?, endpoint, credentials, cluster, sims, cells };
    let (settings, credentials) = (fleet.settings(), fleet.credentials.clone());
    let registered = fleet
        .on_console(async move {
            let mut client = Client::connect(&settings, &credentials, false).await?;
            crate::demo::wait_for_registry(&mut client, &settings.collective, nodes, Duration::from_secs(120)).await
        })
        .await;
    if let Err(e) = registered {
        fleet.stop();
        return Err(e.context(format!("see the logs in {}", security.dir.path().display())));
    }
    eprintln!("{nodes} nodes registered in {:.2} s", started.elapsed().as_secs_f64());
    if per_process > 0 && verify {
        // The sim processes enrolled their keys; the console checks replies against them.
        fleet.credentials.known_nodes = fleet_client::NodeKeys::ready(noded::enroll::node_keyring(&enroll_dir));
    }
    let checks = if fleet.credentials.known_nodes.get().is_empty() { "no (FLEET_BENCH_VERIFY=0)" } else { "yes" };
    eprintln!("console checks reply signatures: {checks}");
    // The security dir must outlive the fleet; it is removed when the process exits.
    std::mem::forget(security);
    Ok(fleet)
}

fn bench_settings(endpoint: &str) -> Settings {
    Settings {
        hubs: vec![endpoint.to_string()],
        timeout: Some(Duration::from_secs(30)),
        discovery_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        ..Settings::default()
    }
}

fn spec(agent: &str, action: &str, args: Map<String, serde_json::Value>) -> Spec {
    bench_settings("").spec(agent, action, args, &Scope::default(), Duration::from_secs(30))
}

/// CPU time (user + system) of this process's threads named `name`, from each thread's
/// `schedstat` (nanoseconds on the CPU).
fn threads_cpu(name: &str) -> Duration {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            ns += schedstat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

/// CPU time (utime + stime, every thread) of process `pid`, from `/proc/<pid>/stat`.
fn process_cpu(pid: &str) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis,
    // where field 3 (state) is the first; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("no ')' in the stat line")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0) + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// A process's resident set, MiB, from `/proc/<pid>/status`.
fn rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Open file descriptors of process `pid`.
fn open_fds(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

fn report(what: &str, hist: &Histogram<u64>, incomplete: usize) {
    println!("{what}");
    println!(
        "  p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms   min {:.1} ms   incomplete rounds {incomplete}",
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0,
        hist.min() as f64 / 1000.0
    );
}

/// What the timed rounds measured: wall times, CPU of the hub's and the console's threads.
struct Timed {
    hist: Histogram<u64>,
    incomplete: usize,
    replies: usize,
    rows: usize,
    hub_cpu: Duration,
    console_cpu: Duration,
}

/// `warmup + rounds` rounds of `spec` from a console on its own runtime; `digest` does what the
/// CLI does with each outcome and returns a row count. Only the last `rounds` are measured.
async fn timed_rounds(
    fleet: &Fleet,
    nodes: usize,
    rounds: usize,
    warmup: usize,
    spec: Spec,
    digest: fn(&Outcome) -> usize,
) -> Result<Timed> {
    let (settings, credentials) = (fleet.settings(), fleet.credentials.clone());
    fleet
        .on_console(async move {
            let mut client = Client::connect(&settings, &credentials, false).await?;
            let mut timed = Timed {
                hist: Histogram::<u64>::new(3)?,
                incomplete: 0,
                replies: 0,
                rows: 0,
                hub_cpu: Duration::ZERO,
                console_cpu: Duration::ZERO,
            };
            let (mut hub_start, mut console_start) = (Duration::ZERO, Duration::ZERO);
            for i in 0..warmup + rounds {
                // The first rounds warm caches and are not counted.
                if i == warmup {
                    (hub_start, console_start) = (threads_cpu(HUB_THREADS), threads_cpu(CONSOLE_THREADS));
                }
                let t = Instant::now();
                let o = round::run(&mut client, &spec, |_| {}).await?;
                let rows = digest(&o);
                let us = t.elapsed().as_micros() as u64;
                if i >= warmup {
                    timed.hist.record(us)?;
                    timed.replies += o.replies.len();
                    timed.rows = rows;
                    if o.replies.len() != nodes {
                        timed.incomplete += 1;
                    }
                }
            }
            timed.hub_cpu = threads_cpu(HUB_THREADS).saturating_sub(hub_start);
            timed.console_cpu = threads_cpu(CONSOLE_THREADS).saturating_sub(console_start);
            Ok(timed)
        })
        .await
}

/// The CPU lines under a round benchmark's latencies.
fn report_cpu(timed: &Timed, nodes: usize, rounds: usize, router: &str) {
    let node_rounds = (nodes * rounds).max(1) as f64;
    println!(
        "  {router} CPU {:.2} s = {:.1} µs per node per round (its own runtime's threads, in this process)",
        timed.hub_cpu.as_secs_f64(),
        timed.hub_cpu.as_secs_f64() * 1e6 / node_rounds
    );
    println!(
        "  console CPU {:.2} s = {:.1} µs per reply ({} replies; its own runtime's threads)",
        timed.console_cpu.as_secs_f64(),
        timed.console_cpu.as_secs_f64() * 1e6 / timed.replies.max(1) as f64,
        timed.replies
    );
    println!("  load average {}", load_average());
}

fn pgrep_digest(o: &Outcome) -> usize {
    let listing = Listing::of(o);
    std::hint::black_box(crate::cli::pgrep_totals(&listing));
    listing.procs.len()
}

/// `fleet pgrep .` rounds: every process of every node, totals computed as the CLI prints them.
pub async fn pgrep(nodes: usize, rounds: usize) -> Result<()> {
    let fleet = fleet_of(nodes, Transport::Zeromq, 0, false).await?;
    let args = ListQuery { pattern: ".".into(), ..ListQuery::default() }.args();
    let timed = timed_rounds(&fleet, nodes, rounds, 2, spec("process", "list", args), pgrep_digest).await?;
    fleet.stop();
    report(
        &format!("fleet bench pgrep: {nodes} nodes, {rounds} rounds of `pgrep .` ({} rows per round, totals rendered)", timed.rows),
        &timed.hist,
        timed.incomplete,
    );
    report_cpu(&timed, nodes, rounds, "hub");
    Ok(())
}

pub async fn ping(nodes: usize, rounds: usize, transport: Transport, per_process: usize, cells: bool) -> Result<()> {
    let fleet = fleet_of(nodes, transport, per_process, cells).await?;
    let timed = timed_rounds(&fleet, nodes, rounds, 3, spec("rpcutil", "ping", Map::new()), |_| 0).await?;
    let over = match transport {
        Transport::Zeromq => "one ZeroMQ hub".to_string(),
        Transport::Nats if cells => format!("{} NATS cells (one server each) joined by gateways", nats::SERVERS),
        Transport::Nats => format!("a {}-server NATS cluster", nats::SERVERS),
    };
    report(
        &format!("fleet bench ping: {nodes} nodes over {over}, {rounds} rounds (registry discovery + signed request + all replies)"),
        &timed.hist,
        timed.incomplete,
    );
    report_cpu(&timed, nodes, rounds, transport.router());
    if let Some(cluster) = &fleet.cluster {
        cluster.report(nodes);
    }
    let held = if per_process > 0 { "" } else { " and every sim node" };
    println!("  this process (console, {}{held}): RSS {:.1} MiB", transport.router(), rss_mib("self"));
    fleet.stop();
    Ok(())
}

/// The `noded` binary: FLEET_BENCH_NODED, else the one next to this `fleet`.
fn noded_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("FLEET_BENCH_NODED") {
        return Ok(path.into());
    }
    let path = std::env::current_exe().context("locating this fleet binary")?.with_file_name("noded");
    anyhow::ensure!(path.exists(), "no noded next to fleet ({}): build it, or set FLEET_BENCH_NODED", path.display());
    Ok(path)
}

/// Child processes that are killed when the benchmark ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The config file the hub and the sim processes share (the keys, callers and policies of
/// `security`), as bench/soak.sh writes it.
fn write_noded_config(dir: &Path) -> Result<PathBuf> {
    let d = dir.display();
    let path = dir.join("noded.toml");
    std::fs::write(
        &path,
        format!(
            "hub_key = \"{d}/hub.pub\"\ncallers_dir = \"{d}/callers\"\npolicy_dir = \"{d}/policies\"\n\
             audit_log = \"{d}/audit.log\"\nheartbeat_interval = 30.0\n\
             [hub]\nkey_file = \"{d}/hub.key\"\nenroll_dir = \"{d}/enroll\"\ncallers_dir = \"{d}/callers\"\n\
             policy_dir = \"{d}/hub-policies\"\naudit_log = \"{d}/hub-audit.log\"\n"
        ),
    )?;
    Ok(path)
}

/// `fleet bench register`: a `noded hub` process, then `noded sim` processes of at most
/// `per_process` nodes each started at once (every node generates its key, enrolls it in the
/// hub's enrollment directory, connects, handshakes and registers), timed until the hub's
/// registry lists all `nodes`. Prints the hub's RSS, open files and CPU seconds used.
pub async fn register(nodes: usize, per_process: usize) -> Result<()> {
    let noded = noded_binary()?;
    let security = crate::demo::DemoSecurity::create("bench")?;
    let dir = security.dir.path().to_path_buf();
    let config = write_noded_config(&dir)?;
    let log = |name: &str| -> Result<Stdio> { Ok(std::fs::File::create(dir.join(name))?.into()) };
    let mut children = Children(Vec::new());
    let mut hub = Command::new(&noded)
        .arg("--config")
        .arg(&config)
        .args(["hub", "--hub", "tcp://127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(log("hub.log")?)
        .spawn()
        .with_context(|| format!("starting {}", noded.display()))?;
    let hub_pid = hub.id().to_string();
    let stdout = hub.stdout.take().context("the hub's stdout")?;
    children.0.push(hub);
    // The hub prints its bound endpoint on stdout once it listens.
    let endpoint = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
            .find_map(|l| l.strip_prefix("hub listening on ").map(|e| e.trim().to_string()))
    })
    .await?
    .with_context(|| format!("the hub did not start; see {}", dir.join("hub.log").display()))?;
    let hub_cpu_before = process_cpu(&hub_pid)?;
    let load_before = load_average();

    let started = Instant::now();
    let mut sims = Vec::new();
    for (i, first) in (0..nodes).step_by(per_process.max(1)).enumerate() {
        let count = per_process.max(1).min(nodes - first);
        let sim = Command::new(&noded)
            .arg("--config")
            .arg(&config)
            .args(["sim", "--nodes", &count.to_string(), "--prefix", &format!("storm{i}-"), "--hub", &endpoint])
            .arg("--enroll-into")
            .arg(dir.join("enroll"))
            .stdout(Stdio::null())
            .stderr(log(&format!("sim{i}.log"))?)
            .spawn()
            .with_context(|| format!("starting {}", noded.display()))?;
        sims.push(sim.id().to_string());
        children.0.push(sim);
    }
    let settings = bench_settings(&endpoint);
    let mut client = Client::connect(&settings, &security.credentials(), false).await?;
    crate::demo::wait_for_registry(&mut client, &settings.collective, nodes, Duration::from_secs(300))
        .await
        .with_context(|| format!("see the logs in {}", dir.display()))?;
    let took = started.elapsed();
    let hub_cpu = process_cpu(&hub_pid)?.saturating_sub(hub_cpu_before);
    println!("fleet bench register: {nodes} nodes from {} noded sim process(es) against one noded hub process", sims.len());
    println!("  all registered in {:.2} s (from starting the sim processes: key generation and enrollment included)", took.as_secs_f64());
    println!(
        "  hub: RSS {:.1} MiB ({:.1} KiB per node), {} open files, CPU {:.2} s ({:.0} µs per node)",
        rss_mib(&hub_pid),
        rss_mib(&hub_pid) * 1024.0 / nodes.max(1) as f64,
        open_fds(&hub_pid),
        hub_cpu.as_secs_f64(),
        hub_cpu.as_secs_f64() * 1e6 / nodes.max(1) as f64
    );
    for (i, pid) in sims.iter().enumerate() {
        println!("  sim {i}: RSS {:.1} MiB, CPU {:.2} s, {} open files", rss_mib(pid), process_cpu(pid)?.as_secs_f64(), open_fds(pid));
    }
    println!("  load average {load_before} before, {} after", load_average());
    drop(children);
    Ok(())
}
