//! Process-table snapshot cost: the process agent's listing (every process, and a pattern that
//! matches few, as `fleet pgrep python` asks) against a plain /proc reader that reads every
//! field of every process (stat, status for the uid, cmdline). Run with `--extra N` to start N
//! extra sleeping processes first.
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
    // What the Processes panel asks for (every process), and what `fleet pgrep python` asks for.
    let all = Query::default();
    let few = Query { pattern: Some(regex::Regex::new("python").expect("regex")), ..Query::default() };
    // Warm up (user names are looked up once).
    let procs = snap.list(&all).expect("snapshot").len();
    raw_snapshot();
    let time = |f: &mut dyn FnMut()| {
        let samples = (0..rounds)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        median(samples)
    };
    let r = time(&mut || {
        std::hint::black_box(raw_snapshot());
    });
    let o = time(&mut || {
        std::hint::black_box(snap.list(&all).expect("snapshot"));
    });
    let p = time(&mut || {
        std::hint::black_box(snap.list(&few).expect("snapshot"));
    });
    println!("process snapshot: {procs} processes ({extra} extra sleepers), {rounds} rounds, medians");
    println!("  raw /proc reader, every field: {r:.2} ms");
    println!("  process agent, every process:  {o:.2} ms   ratio {:.2}x", o / r);
    println!("  process agent, pattern 'python': {p:.2} ms   ratio {:.2}x", p / r);
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
}
