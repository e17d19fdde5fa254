//! Process-table snapshot cost: the process agent's sysinfo snapshot (one `System` kept, cheapest
//! refresh kinds, threads left out) against a hand-written /proc reader that reads the same
//! fields (stat, status for uid and threads, cmdline). Run with `--extra N` to start N extra
//! sleeping processes first.
//!
//! cargo run --release -p noded --example snapshot_bench -- --rounds 30 --extra 2000

use std::time::Instant;

use noded::agents::process::{Query, Snapshotter};

/// The raw reader: what a careful hand-written pgrep would do per process.
fn raw_snapshot() -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let rest = &stat[stat.rfind(')').unwrap_or(0) + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().next()).unwrap_or("");
        std::hint::black_box((fields.get(19), fields.get(20), uid, cmd.len()));
        n += 1;
    }
    n
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |flag: &str, default: usize| {
        args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let rounds = get("--rounds", 20);
    let extra = get("--extra", 0);
    let mut children: Vec<std::process::Child> =
        (0..extra).map(|_| std::process::Command::new("sleep").arg("600").spawn().expect("sleep")).collect();
    let mut snap = Snapshotter::new();
    // What `fleet pgrep` and the Processes panel ask for: every field they show (no thread count).
    let all = Query::default();
    // Warm both (the first sysinfo refresh reads everything once).
    let procs = snap.list(&all).expect("snapshot").len();
    raw_snapshot();
    let mut ours = Vec::new();
    let mut raw = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        std::hint::black_box(snap.list(&all).expect("snapshot"));
        ours.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        std::hint::black_box(raw_snapshot());
        raw.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (o, r) = (median(ours), median(raw));
    println!("process snapshot: {procs} processes ({extra} extra sleepers), {rounds} rounds, medians");
    println!("  process agent (sysinfo, kept System): {o:.2} ms   raw /proc reader: {r:.2} ms   ratio {:.2}x", o / r);
    let with_threads = Query { threads: true, ..Query::default() };
    let mut t_ours = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        std::hint::black_box(snap.list(&with_threads).expect("snapshot"));
        t_ours.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let t = median(t_ours);
    println!("  with the thread count too (one more read per row): {t:.2} ms   ratio {:.2}x", t / r);
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
}
