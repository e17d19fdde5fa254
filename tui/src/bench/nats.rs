//! The NATS side of `fleet bench ping --transport nats`: a 3-server `nats-server` cluster on
//! loopback (child processes, routed to each other), an in-process `noded registry`, and the sim
//! nodes spread over the three servers, each listing its own server first.
//!
//! With `--cells`, each server is a cell of its own (a one-server cluster) and the three are joined
//! by gateways, as docs/scale.md plans a 100,000-node fleet: a registry per cell, the nodes of a cell
//! registering there only, and the console merging one discovery answer per cell.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{Children, Group, process_cpu, rss_mib};

/// Servers in the benchmark's cluster.
pub const SERVERS: usize = 3;

/// A local cluster: its servers (killed when dropped), their client URLs and process ids.
pub struct LocalCluster {
    _children: Children,
    pub urls: Vec<String>,
    pids: Vec<String>,
}

/// Per server: the server list of the nodes placed there, and their cell.
pub struct Layout(Vec<(Vec<String>, Option<String>)>);

impl Layout {
    /// `nodes` spread evenly over the servers.
    pub fn split(self, nodes: usize) -> Vec<Group> {
        let n = self.0.len();
        self.0
            .into_iter()
            .enumerate()
            .map(|(i, (hubs, cell))| Group { prefix: format!("bench{i}-"), hubs, count: nodes / n + usize::from(i < nodes % n), cell })
            .collect()
    }
}

fn server_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("FLEET_BENCH_NATS_SERVER") {
        return Ok(p.into());
    }
    ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .context("nats-server is not installed (apt-get install nats-server), or set FLEET_BENCH_NATS_SERVER")
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalCluster {
    /// Starts the servers in `dir` and waits until each accepts clients and routes (or, as
    /// cells, has gateways) to the others.
    pub fn start(dir: &Path, cells: bool) -> Result<LocalCluster> {
        let bin = server_bin()?;
        let ports: Vec<(u16, u16)> = (0..SERVERS).map(|_| Ok((free_port()?, free_port()?))).collect::<Result<_>>()?;
        let mut children = Children(Vec::new());
        let mut pids = Vec::new();
        let mut logs = Vec::new();
        for (i, (port, route)) in ports.iter().enumerate() {
            let others = ports.iter().enumerate().filter(|(j, _)| *j != i);
            let joined = if cells {
                let gateways: Vec<String> =
                    others.map(|(j, (_, g))| format!("{{ name: \"c{j}\", urls: [\"nats://127.0.0.1:{g}\"] }}")).collect();
                format!("gateway {{\n  name: \"c{i}\"\n  listen: 127.0.0.1:{route}\n  gateways: [{}]\n}}\n", gateways.join(", "))
            } else {
                let routes: Vec<String> = others.map(|(_, (_, r))| format!("\"nats-route://127.0.0.1:{r}\"")).collect();
                format!("cluster {{\n  name: fleet-bench\n  listen: 127.0.0.1:{route}\n  routes: [{}]\n}}\n", routes.join(", "))
            };
            let config = dir.join(format!("nats-{i}.conf"));
            // A console's inbox takes every reply of a round at once: room for 10,000 of them.
            std::fs::write(&config, format!("server_name: b{i}\nlisten: 127.0.0.1:{port}\nmax_pending: 256MB\n{joined}"))?;
            let log = dir.join(format!("nats-{i}.log"));
            let child = Command::new(&bin)
                .arg("-c")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .spawn()
                .with_context(|| format!("starting {}", bin.display()))?;
            pids.push(child.id().to_string());
            children.0.push(child);
            logs.push(log);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for (i, (port, _)) in ports.iter().enumerate() {
            loop {
                let log = std::fs::read_to_string(&logs[i]).unwrap_or_default();
                if std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok()
                    && log.matches(if cells { "gateway connection to" } else { "Route connection created" }).count() >= SERVERS - 1
                {
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "nats-server {i} did not start and route; see {}", logs[i].display());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let urls = ports.iter().map(|(p, _)| format!("nats://127.0.0.1:{p}")).collect();
        Ok(LocalCluster { _children: children, urls, pids })
    }

    /// Starts the registries on `rt`: one for the cluster, or one per cell (each on its own
    /// server). Returns the shape of the node groups: per server, its list and its cell.
    pub fn start_registries(
        &self,
        rt: &tokio::runtime::Runtime,
        cfg: &noded::NodeConfig,
        shutdown: tokio::sync::watch::Receiver<bool>,
        cells: bool,
    ) -> Layout {
        let registries: Vec<(Vec<String>, Option<String>)> = match cells {
            true => (0..self.urls.len()).map(|i| (vec![self.urls[i].clone()], Some(format!("c{i}")))).collect(),
            false => vec![(self.list_from(0), None)],
        };
        for (hubs, cell) in registries {
            let mut registry = noded::NodeConfig { hubs, ..cfg.clone() };
            registry.nats.cell = cell;
            let shutdown = shutdown.clone();
            rt.spawn(async move {
                if let Err(e) = noded::registry::run(registry, shutdown).await {
                    eprintln!("the registry stopped: {e:#}");
                }
            });
        }
        // A cell's nodes know only their cell's server; a cluster's nodes list their own first.
        Layout(
            (0..self.urls.len())
                .map(|i| if cells { (vec![self.urls[i].clone()], Some(format!("c{i}"))) } else { (self.list_from(i), None) })
                .collect(),
        )
    }

    /// The server list of a node or console on server `first`: that one first, then the others.
    pub fn list_from(&self, first: usize) -> Vec<String> {
        let n = self.urls.len();
        (0..n).map(|k| self.urls[(first + k) % n].clone()).collect()
    }

    /// One line per server: RSS (and per node) and CPU seconds so far.
    pub fn report(&self, nodes: usize) {
        let total: f64 = self.pids.iter().map(|p| rss_mib(p)).sum();
        for (i, pid) in self.pids.iter().enumerate() {
            let cpu = process_cpu(pid).map(|d| d.as_secs_f64()).unwrap_or(f64::NAN);
            println!("  nats-server {i}: RSS {:.1} MiB, CPU {cpu:.2} s", rss_mib(pid));
        }
        println!(
            "  nats-servers together: RSS {total:.1} MiB = {:.1} KiB per node ({SERVERS} servers, each node on one)",
            total * 1024.0 / nodes.max(1) as f64
        );
    }
}
