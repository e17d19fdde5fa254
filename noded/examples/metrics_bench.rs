//! noded's cost of sampling metrics: the sampler's own read of /proc (and of collectd, with
//! `--collectd SOCKET`), measured in CPU time of the sampling thread (`/proc/thread-self/schedstat`,
//! ns), per sample and per hour at the default 5 s interval. Prints the load average it ran
//! under, the process count (a sample reads one stat file per process), and what the default
//! 15-minute history holds. `--extra N` starts N sleeping processes first.
//!
//! cargo run --release -p noded --example metrics_bench -- --samples 500 --extra 1000

use std::path::PathBuf;
use std::time::Duration;

use noded::agents::metrics::sampler::thread_cpu_ns;
use noded::agents::metrics::{MetricsConfig, Sampler};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let samples: usize = value("--samples").and_then(|v| v.parse().ok()).unwrap_or(300);
    let extra: usize = value("--extra").and_then(|v| v.parse().ok()).unwrap_or(0);
    let collectd_socket = value("--collectd").map(PathBuf::from);
    let mut children: Vec<std::process::Child> =
        (0..extra).map(|_| std::process::Command::new("sleep").arg("600").spawn().expect("sleep")).collect();

    let config = MetricsConfig { collectd_socket, ..MetricsConfig::default() };
    let sampler = Sampler::new(&config, PathBuf::from("/proc"));
    let mut reader = sampler.reader();
    sampler.sample_once(&mut reader);
    let mut cpu_us = Vec::with_capacity(samples);
    for _ in 0..samples {
        let before = thread_cpu_ns().expect("/proc/thread-self/schedstat");
        sampler.sample_once(&mut reader);
        cpu_us.push((thread_cpu_ns().unwrap() - before) as f64 / 1000.0);
        // A short pause, so rates have ticks to difference and the page cache is as in service.
        std::thread::sleep(Duration::from_millis(2));
    }
    let latest = sampler.latest().expect("a sample");
    let status = sampler.status();
    let mean = cpu_us.iter().sum::<f64>() / cpu_us.len() as f64;
    let per_hour_ms = mean * (3600.0 / config.interval) / 1000.0;
    let share = mean / (config.interval * 1e6) * 100.0;
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "metrics sampling: {samples} samples, {} values each, {} processes ({extra} extra sleepers)",
        latest.values.len(),
        latest.get("processes").unwrap_or(0.0)
    );
    println!("  load average during the run: {}", loadavg.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    println!(
        "  CPU per sample: median {:.0} us, mean {mean:.0} us (the sampler's own figure: {:.0} us)",
        median(cpu_us.clone()),
        status.mean_cost_us
    );
    println!("  at one sample every {} s: {per_hour_ms:.0} ms of CPU per hour = {share:.4}% of one core (target <= 0.2%)", config.interval);
    println!(
        "  history: {} samples for {} minutes, about {} KiB of values",
        config.history_samples(),
        config.history_minutes,
        config.history_samples() * latest.values.len() * 8 / 1024
    );
    if !status.problems.is_empty() {
        println!("  problems: {}", status.problems.join("; "));
    }
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
}
