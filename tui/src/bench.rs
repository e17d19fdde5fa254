//! `fleet bench ping`: full rounds (request out, every reply in) against N simulated nodes behind
//! an in-process hub, over real loopback TCP. Prints p50, p99 and max.

use std::time::Duration;

use anyhow::Result;
use hdrhistogram::Histogram;
use serde_json::Map;
use tokio::sync::watch;

use fleet_client::process::{ListQuery, Listing};
use fleet_client::{Client, Scope, Settings, Spec, round};

/// A hub and `nodes` sim nodes on loopback, and a client attached, every node registered.
async fn fleet_of(nodes: usize) -> Result<(watch::Sender<bool>, Client)> {
    // FLEET_BENCH_LINK_GUARD=0 measures the sim nodes without their outbound frame guards (the
    // hub here is the same process), to show what that layer costs.
    let link_guard = std::env::var("FLEET_BENCH_LINK_GUARD").map(|v| v != "0").unwrap_or(true);
    let security = crate::demo::DemoSecurity::create("bench")?;
    let (tx, rx) = watch::channel(false);
    let endpoint = crate::demo::start_hub(rx.clone(), &security).await?;
    let cfg = noded::NodeConfig {
        hubs: vec![endpoint.clone()],
        heartbeat_interval: 30.0,
        connect_timeout: 30.0,
        policy_dir: security.policy_dir(),
        link_guard,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    for (n, key) in noded::sim::build(nodes, &cfg, &security.callers, security.hub_key.public().link, "bench-") {
        security.enroll(&n.identity, &key)?;
        tokio::spawn(noded::node::run(n, rx.clone()));
    }
    let settings = bench_settings(&endpoint);
    let mut client = Client::connect(&settings, &security.credentials(), false).await?;
    crate::demo::wait_for_registry(&mut client, &settings.collective, nodes, Duration::from_secs(120)).await?;
    eprintln!("{nodes} nodes registered in {:.2} s", started.elapsed().as_secs_f64());
    // The security dir must outlive the fleet; it is removed when the process exits.
    std::mem::forget(security);
    Ok((tx, client))
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

/// `fleet pgrep .` rounds: every process of every node, totals computed as the CLI prints them.
pub async fn pgrep(nodes: usize, rounds: usize) -> Result<()> {
    let (tx, mut client) = fleet_of(nodes).await?;
    let args = ListQuery { pattern: ".".into(), ..ListQuery::default() }.args();
    let spec = spec("process", "list", args);
    let mut hist = Histogram::<u64>::new(3)?;
    let mut incomplete = 0;
    let mut rows = 0;
    for i in 0..rounds + 2 {
        let t = std::time::Instant::now();
        let o = round::run(&mut client, &spec, |_| {}).await?;
        let listing = Listing::of(&o);
        let totals = crate::cli::pgrep_totals(&listing);
        let us = t.elapsed().as_micros() as u64;
        rows = listing.procs.len();
        std::hint::black_box(totals);
        if o.replies.len() != nodes {
            incomplete += 1;
        }
        if i >= 2 {
            hist.record(us)?;
        }
    }
    let _ = tx.send(true);
    report(
        &format!("fleet bench pgrep: {nodes} nodes, {rounds} rounds of `pgrep .` ({rows} rows per round, totals rendered)"),
        &hist,
        incomplete,
    );
    Ok(())
}

pub async fn ping(nodes: usize, rounds: usize) -> Result<()> {
    let (tx, mut client) = fleet_of(nodes).await?;
    let spec = spec("rpcutil", "ping", Map::new());
    let mut hist = Histogram::<u64>::new(3)?;
    let mut incomplete = 0;
    for i in 0..rounds + 3 {
        let t = std::time::Instant::now();
        let o = round::run(&mut client, &spec, |_| {}).await?;
        let us = t.elapsed().as_micros() as u64;
        if o.replies.len() != nodes {
            incomplete += 1;
        }
        if i >= 3 {
            hist.record(us)?; // the first rounds warm caches and are not counted
        }
    }
    let _ = tx.send(true);
    report(
        &format!("fleet bench ping: {nodes} nodes, {rounds} rounds (registry discovery + signed request + all replies)"),
        &hist,
        incomplete,
    );
    Ok(())
}
