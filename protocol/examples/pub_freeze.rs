//! Reproduces the zmq.rs (zeromq 0.7.0) PUB freeze that is why fleet fans requests out over
//! ROUTER/DEALER instead of PUB/SUB. See docs/transport.md for the mechanism and measured results.
//!
//! One run: a `PubSocket` binds `tcp://127.0.0.1:0` on a fresh multi-thread tokio runtime, a
//! publisher task publishes continuously, and meanwhile N `SubSocket`s connect and subscribe. The
//! run completes when every subscriber has received at least one message (plus a short hold). It
//! froze when a progress counter (bumped by the publisher and by every subscriber) stops moving
//! for `--stall-secs`. A second counter, bumped only by the subscribers, catches the partial form
//! of the same freeze: some workers stay free, the publisher keeps "sending" (its `send()` still
//! returns Ok) and nothing is delivered any more.
//!
//! The watchdog is a plain `std::thread`, not a tokio task: the freeze parks every tokio worker in
//! a blocking lock, so tokio timers stop too and nothing inside the runtime can notice. Each run is
//! a child process of this program (the same binary, re-executed), so a frozen runtime, whose
//! worker threads can never be joined, dies with its process instead of leaking threads, sockets
//! and memory into the next run. The parent also kills a child that outlives its deadline, so the
//! program always ends and always prints a summary line such as
//! `runs: 10, froze: 2, completed: 8`.
//!
//! ```text
//! cargo run -p fleet-protocol --release --example pub_freeze -- --runs 10 --subscribers 1000 --workers 8
//! ```
//!
//! Exit status: 0 when no run froze, 1 when at least one froze, 2 on a usage or setup error.

use std::io::Write;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use zeromq::prelude::*;
use zeromq::{PubSocket, SubSocket, ZmqMessage};

/// Child exit codes, read by the parent.
const EXIT_COMPLETED: i32 = 0;
const EXIT_ERROR: i32 = 2;
const EXIT_FROZE: i32 = 3;
const EXIT_TIMED_OUT: i32 = 4;
const EXIT_STALLED: i32 = 5;

/// tokio worker threads are named this, so the watchdog can find them in /proc (15 chars max).
const WORKER_NAME: &str = "pubfreeze-wrk";

const USAGE: &str = "\
pub_freeze: reproduce the zmq.rs 0.7.0 PUB/SUB runtime freeze (see docs/transport.md)

USAGE:
    cargo run -p fleet-protocol --release --example pub_freeze -- [OPTIONS]

OPTIONS (each also read from the environment variable shown):
    --subscribers N        SUB sockets that join per run            [PUB_FREEZE_SUBSCRIBERS, default 1000]
    --runs N               runs, each in a fresh process + runtime  [PUB_FREEZE_RUNS, default 10]
    --workers N            tokio worker threads per run             [PUB_FREEZE_WORKERS, default 8]
    --stall-secs S         no progress for S seconds = frozen       [PUB_FREEZE_STALL_SECS, default 5]
                           (also: no subscriber progress for S seconds while the
                           publisher still sends = frozen with delivery stopped)
    --interval-us U        pause between publishes, microseconds;
                           0 = only yield to the scheduler          [PUB_FREEZE_INTERVAL_US, default 1000]
    --topics N             subscriptions each SUB sends (>= 1)      [PUB_FREEZE_TOPICS, default 1]
    --hold-ms M            keep publishing this long after the
                           last subscriber got its first message    [PUB_FREEZE_HOLD_MS, default 500]
    --run-timeout-secs S   give up on a run that still makes
                           progress but has not completed           [PUB_FREEZE_RUN_TIMEOUT_SECS, default 120]
    --join-first           control: every SUB joins before the
                           publisher starts (no publishing during the join)
    --hold-frozen-secs S   keep a frozen child alive S seconds (to attach gdb)
                                                                    [PUB_FREEZE_HOLD_FROZEN_SECS, default 0]
    -h, --help             this text

Exit status: 0 no run froze, 1 at least one run froze, 2 usage or setup error.
";

#[derive(Debug, Clone)]
struct Opts {
    subscribers: usize,
    runs: usize,
    workers: usize,
    stall_secs: u64,
    interval_us: u64,
    topics: usize,
    hold_ms: u64,
    run_timeout_secs: u64,
    join_first: bool,
    hold_frozen_secs: u64,
    /// Set in a child: the run number it performs.
    child_run: Option<usize>,
}

fn env_num(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().map_err(|_| format!("{name}={v:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        subscribers: env_num("PUB_FREEZE_SUBSCRIBERS", 1000)? as usize,
        runs: env_num("PUB_FREEZE_RUNS", 10)? as usize,
        workers: env_num("PUB_FREEZE_WORKERS", 8)? as usize,
        stall_secs: env_num("PUB_FREEZE_STALL_SECS", 5)?,
        interval_us: env_num("PUB_FREEZE_INTERVAL_US", 1000)?,
        topics: env_num("PUB_FREEZE_TOPICS", 1)? as usize,
        hold_ms: env_num("PUB_FREEZE_HOLD_MS", 500)?,
        run_timeout_secs: env_num("PUB_FREEZE_RUN_TIMEOUT_SECS", 120)?,
        join_first: false,
        hold_frozen_secs: env_num("PUB_FREEZE_HOLD_FROZEN_SECS", 0)?,
        child_run: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |flag: &str| -> Result<u64, String> {
            let v = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            v.parse().map_err(|_| format!("{flag} {v:?}: not a whole number"))
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--subscribers" => o.subscribers = value("--subscribers")? as usize,
            "--runs" => o.runs = value("--runs")? as usize,
            "--workers" => o.workers = value("--workers")? as usize,
            "--stall-secs" => o.stall_secs = value("--stall-secs")?,
            "--interval-us" => o.interval_us = value("--interval-us")?,
            "--topics" => o.topics = value("--topics")? as usize,
            "--hold-ms" => o.hold_ms = value("--hold-ms")?,
            "--run-timeout-secs" => o.run_timeout_secs = value("--run-timeout-secs")?,
            "--join-first" => o.join_first = true,
            "--hold-frozen-secs" => o.hold_frozen_secs = value("--hold-frozen-secs")?,
            "--child-run" => o.child_run = Some(value("--child-run")? as usize),
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if o.subscribers == 0 || o.runs == 0 || o.workers == 0 || o.topics == 0 {
        return Err("--subscribers, --runs, --workers and --topics must be at least 1".into());
    }
    if o.stall_secs == 0 || o.run_timeout_secs == 0 {
        return Err("--stall-secs and --run-timeout-secs must be at least 1".into());
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("pub_freeze: {e}");
            return ExitCode::from(EXIT_ERROR as u8);
        }
    };
    match opts.child_run {
        Some(run) => child(&opts, run),
        None => parent(&opts),
    }
}

// ----------------------------------------------------------------------------------------------
// Parent: one child process per run, a deadline per child, and the summary line.
// ----------------------------------------------------------------------------------------------

fn parent(o: &Opts) -> ExitCode {
    println!(
        "pub_freeze: zeromq 0.7.0 PUB on tcp://127.0.0.1, {} subscribers x {} topic(s), {} tokio workers, \
         {} runs, stall limit {} s, publish interval {} us, {}",
        o.subscribers,
        o.topics,
        o.workers,
        o.runs,
        o.stall_secs,
        o.interval_us,
        if o.join_first { "subscribers join BEFORE publishing starts (control)" } else { "subscribers join WHILE publishing" }
    );
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pub_freeze: cannot find my own executable to start runs: {e}");
            return ExitCode::from(EXIT_ERROR as u8);
        }
    };
    // A child's own watchdog ends it after `stall_secs` without progress, and its run timeout ends
    // it after `run_timeout_secs`; this deadline is the backstop if both somehow fail.
    let deadline = Duration::from_secs(o.run_timeout_secs + o.stall_secs + o.hold_frozen_secs + 30);
    let (mut froze, mut stalled, mut completed, mut timed_out, mut errors, mut killed) = (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
    let started = Instant::now();
    for run in 1..=o.runs {
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--child-run",
            &run.to_string(),
            "--subscribers",
            &o.subscribers.to_string(),
            "--workers",
            &o.workers.to_string(),
            "--stall-secs",
            &o.stall_secs.to_string(),
            "--interval-us",
            &o.interval_us.to_string(),
            "--topics",
            &o.topics.to_string(),
            "--hold-ms",
            &o.hold_ms.to_string(),
            "--run-timeout-secs",
            &o.run_timeout_secs.to_string(),
            "--hold-frozen-secs",
            &o.hold_frozen_secs.to_string(),
        ]);
        if o.join_first {
            cmd.arg("--join-first");
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("pub_freeze: cannot start run {run}: {e}");
                errors += 1;
                continue;
            }
        };
        let t0 = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if t0.elapsed() > deadline => {
                    // Our own child, killed by its handle: never by name.
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => {
                    eprintln!("pub_freeze: waiting for run {run}: {e}");
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        match status.and_then(|s| s.code()) {
            Some(EXIT_COMPLETED) => completed += 1,
            Some(EXIT_FROZE) => froze += 1,
            Some(EXIT_STALLED) => {
                froze += 1;
                stalled += 1;
            }
            Some(EXIT_TIMED_OUT) => timed_out += 1,
            Some(_) => errors += 1,
            None if status.is_none() => {
                println!("FROZE in run {run}: the run outlived its {} s deadline and was killed by the parent", deadline.as_secs());
                froze += 1;
                killed += 1;
            }
            None => {
                println!("run {run}: child ended by a signal ({:?})", status);
                errors += 1;
            }
        }
        let _ = std::io::stdout().flush();
    }
    let mut summary = format!("runs: {}, froze: {froze}, completed: {completed}", o.runs);
    if stalled > 0 {
        summary.push_str(&format!(
            " (of the frozen: {} with every worker stopped, {stalled} with delivery stopped while the publisher kept sending)",
            froze - stalled
        ));
    }
    if timed_out > 0 {
        summary.push_str(&format!(", timed out without freezing: {timed_out}"));
    }
    if errors > 0 {
        summary.push_str(&format!(", errors: {errors}"));
    }
    if killed > 0 {
        summary.push_str(&format!(" ({killed} frozen run(s) killed by the parent's backstop)"));
    }
    println!("{summary}  [{:.1} s]", started.elapsed().as_secs_f64());
    if froze > 0 {
        ExitCode::from(1)
    } else if errors > 0 {
        ExitCode::from(EXIT_ERROR as u8)
    } else {
        ExitCode::SUCCESS
    }
}

// ----------------------------------------------------------------------------------------------
// Child: one run on a fresh runtime, watched from a plain OS thread.
// ----------------------------------------------------------------------------------------------

/// Counters shared by the publisher, the subscribers, the orchestrator and the watchdog.
#[derive(Default)]
struct Shared {
    /// Bumped by every publish, every join and every received message. The watchdog watches it.
    progress: AtomicU64,
    /// Bumped by every join and every received message only: the subscribers' side of `progress`.
    sub_progress: AtomicU64,
    published: AtomicU64,
    joined: AtomicU64,
    /// Subscribers that received at least one message.
    reached: AtomicU64,
    delivered: AtomicU64,
    connect_errors: AtomicU64,
    /// Armed while the run is under way; disarmed once the outcome is known.
    armed: AtomicBool,
}

impl Shared {
    /// Counts a publish.
    fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.progress.fetch_add(1, Ordering::Relaxed);
    }
    /// Counts a subscriber event (a join or a received message).
    fn bump_sub(&self, counter: &AtomicU64) {
        self.sub_progress.fetch_add(1, Ordering::Relaxed);
        self.bump(counter);
    }
    fn line(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "{} joined, {} reached, {} published, {} delivered",
            g(&self.joined),
            g(&self.reached),
            g(&self.published),
            g(&self.delivered)
        )
    }
}

enum Outcome {
    Completed,
    Error(String),
    /// Nothing moved: no publish, no join, no delivery.
    Frozen {
        stalled: Duration,
    },
    /// The publisher still runs, but no subscriber joined or received anything.
    DeliveryStopped {
        stalled: Duration,
    },
}

fn child(o: &Opts, run: usize) -> ExitCode {
    let shared = Arc::new(Shared::default());
    shared.armed.store(true, Ordering::SeqCst);
    let (tx, rx) = mpsc::channel::<Outcome>();

    // The watchdog: a plain OS thread, so it keeps running when every tokio worker is parked.
    {
        let shared = shared.clone();
        let tx = tx.clone();
        let stall = Duration::from_secs(o.stall_secs);
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let mut last = shared.progress.load(Ordering::Relaxed);
                let mut since = Instant::now();
                let mut last_sub = shared.sub_progress.load(Ordering::Relaxed);
                let mut since_sub = Instant::now();
                loop {
                    std::thread::sleep(Duration::from_millis(100));
                    if !shared.armed.load(Ordering::SeqCst) {
                        return;
                    }
                    let now = shared.progress.load(Ordering::Relaxed);
                    if now != last {
                        last = now;
                        since = Instant::now();
                    }
                    let now_sub = shared.sub_progress.load(Ordering::Relaxed);
                    if now_sub != last_sub {
                        last_sub = now_sub;
                        since_sub = Instant::now();
                    }
                    if since.elapsed() >= stall {
                        let _ = tx.send(Outcome::Frozen { stalled: since.elapsed() });
                        return;
                    }
                    if since_sub.elapsed() >= stall {
                        let _ = tx.send(Outcome::DeliveryStopped { stalled: since_sub.elapsed() });
                        return;
                    }
                }
            })
            .expect("spawning the watchdog thread");
    }

    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(o.workers).thread_name(WORKER_NAME).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            println!("run {run}: cannot build the tokio runtime: {e}");
            return ExitCode::from(EXIT_ERROR as u8);
        }
    };
    let started = Instant::now();
    // Everything that owns a socket lives in tasks on the runtime, never on this thread: dropping a
    // PubSocket takes the same blocking lock the frozen workers wait on.
    rt.spawn(orchestrate(o.clone(), shared.clone(), tx));

    let outcome = rx.recv_timeout(Duration::from_secs(o.run_timeout_secs));
    shared.armed.store(false, Ordering::SeqCst);
    let elapsed = started.elapsed().as_secs_f64();
    let code = match outcome {
        Ok(Outcome::Completed) => {
            println!("run {run}: completed in {elapsed:.1} s: {}", shared.line());
            EXIT_COMPLETED
        }
        Ok(Outcome::Error(e)) => {
            println!("run {run}: error after {elapsed:.1} s: {e}: {}", shared.line());
            EXIT_ERROR
        }
        Ok(outcome @ (Outcome::Frozen { .. } | Outcome::DeliveryStopped { .. })) => {
            let workers = worker_states(Duration::from_millis(1000));
            let verdict = if workers.total > 0 && workers.parked == workers.total {
                "every worker parked".to_string()
            } else {
                format!(
                    "{} of {} workers asleep in a futex wait (blocked or idle: /proc cannot tell), {} in epoll_wait, {} busy",
                    workers.parked, workers.total, workers.epoll, workers.busy
                )
            };
            let code = match outcome {
                Outcome::Frozen { stalled } => {
                    println!("FROZE in run {run}: no progress for {} s; {verdict} (see docs/transport.md)", stalled.as_secs());
                    EXIT_FROZE
                }
                Outcome::DeliveryStopped { stalled } => {
                    println!(
                        "FROZE in run {run}: no subscriber progress for {} s while the publisher kept sending \
                         (its send() still returns Ok); {verdict} (see docs/transport.md)",
                        stalled.as_secs()
                    );
                    EXIT_STALLED
                }
                _ => unreachable!(),
            };
            println!("    at {elapsed:.1} s: {}", shared.line());
            println!("    tokio workers: {}", workers.detail);
            if o.hold_frozen_secs > 0 {
                println!(
                    "    holding the frozen process {} for {} s: gdb -p {} -batch -ex 'thread apply all bt'",
                    std::process::id(),
                    o.hold_frozen_secs,
                    std::process::id()
                );
                let _ = std::io::stdout().flush();
                std::thread::sleep(Duration::from_secs(o.hold_frozen_secs));
            }
            code
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            println!("run {run}: timed out after {} s while still making progress (not a freeze): {}", o.run_timeout_secs, shared.line());
            EXIT_TIMED_OUT
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            println!("run {run}: the run ended without an outcome: {}", shared.line());
            EXIT_ERROR
        }
    };
    let _ = std::io::stdout().flush();
    if code == EXIT_COMPLETED {
        // A healthy runtime shuts down; bounded anyway.
        rt.shutdown_timeout(Duration::from_secs(3));
    } else {
        // A frozen runtime cannot be shut down: its workers never return from the lock. Leave
        // them to the end of the process.
        rt.shutdown_background();
    }
    std::process::exit(code);
}

async fn orchestrate(o: Opts, shared: Arc<Shared>, tx: mpsc::Sender<Outcome>) {
    let mut publisher = PubSocket::new();
    let endpoint = match publisher.bind("tcp://127.0.0.1:0").await {
        Ok(ep) => ep.to_string(),
        Err(e) => {
            let _ = tx.send(Outcome::Error(format!("cannot bind the PUB socket: {e}")));
            return;
        }
    };
    let n = o.subscribers as u64;

    let start_publisher = |mut publisher: PubSocket, shared: Arc<Shared>, interval_us: u64| {
        tokio::spawn(async move {
            let mut seq = 0u64;
            loop {
                let msg = ZmqMessage::from(format!("t {seq}"));
                if publisher.send(msg).await.is_err() {
                    return;
                }
                seq += 1;
                shared.bump(&shared.published);
                if interval_us == 0 {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(Duration::from_micros(interval_us)).await;
                }
            }
        })
    };

    let mut publisher = Some(publisher);
    if !o.join_first {
        let p = publisher.take().expect("publisher");
        start_publisher(p, shared.clone(), o.interval_us);
    }

    for _ in 0..o.subscribers {
        let shared = shared.clone();
        let endpoint = endpoint.clone();
        let topics = o.topics;
        tokio::spawn(async move {
            let mut sub = SubSocket::new();
            if let Err(e) = sub.connect(&endpoint).await {
                shared.connect_errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("subscriber cannot connect: {e}");
                return;
            }
            // Topic 0 is "" (everything). Further topics match nothing: they only add subscription
            // frames, which are what the PUB side takes its blocking lock for.
            for t in 0..topics {
                let topic = if t == 0 { String::new() } else { format!("extra-{t}") };
                if sub.subscribe(&topic).await.is_err() {
                    shared.connect_errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            shared.bump_sub(&shared.joined);
            let mut first = true;
            while sub.recv().await.is_ok() {
                if first {
                    first = false;
                    shared.reached.fetch_add(1, Ordering::Relaxed);
                }
                shared.bump_sub(&shared.delivered);
            }
        });
    }

    if let Some(p) = publisher.take() {
        // Control mode: wait until everyone has joined, then start publishing.
        while shared.joined.load(Ordering::Relaxed) + shared.connect_errors.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // `subscribe()` returning does not mean the PUB has registered it; give it a moment.
        tokio::time::sleep(Duration::from_millis(200)).await;
        start_publisher(p, shared.clone(), o.interval_us);
    }

    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let reached = shared.reached.load(Ordering::Relaxed);
        let errors = shared.connect_errors.load(Ordering::Relaxed);
        if reached + errors >= n {
            tokio::time::sleep(Duration::from_millis(o.hold_ms)).await;
            let _ = if errors > 0 {
                tx.send(Outcome::Error(format!("{errors} subscriber(s) could not connect or subscribe")))
            } else {
                tx.send(Outcome::Completed)
            };
            return;
        }
    }
}

// ----------------------------------------------------------------------------------------------
// What the tokio workers are doing, from /proc (Linux). Read from the watchdog's side.
// ----------------------------------------------------------------------------------------------

struct WorkerStates {
    total: usize,
    /// Asleep (state S) in a futex wait and used no CPU over the sample window.
    parked: usize,
    /// Asleep in epoll_wait: an idle worker driving the runtime's IO, so not everything is stuck.
    epoll: usize,
    /// Used CPU during the sample window.
    busy: usize,
    detail: String,
}

fn worker_states(window: Duration) -> WorkerStates {
    // (tid, utime + stime in ticks, state, wchan) for each worker thread.
    fn sample() -> Vec<(String, u64, char, String)> {
        let mut out = Vec::new();
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return out };
        for entry in dir.flatten() {
            let tid = entry.file_name().to_string_lossy().to_string();
            let base = entry.path();
            let comm = std::fs::read_to_string(base.join("comm")).unwrap_or_default();
            if comm.trim() != WORKER_NAME {
                continue;
            }
            let stat = std::fs::read_to_string(base.join("stat")).unwrap_or_default();
            // Fields after the ")" that closes comm: state is the first, utime/stime are 12th/13th.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let state = fields.first().and_then(|s| s.chars().next()).unwrap_or('?');
            let cpu = fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let wchan = std::fs::read_to_string(base.join("wchan")).unwrap_or_default();
            out.push((tid, cpu, state, wchan.trim().to_string()));
        }
        out
    }
    let before = sample();
    std::thread::sleep(window);
    let after = sample();
    let (mut parked, mut epoll, mut busy) = (0, 0, 0);
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for (tid, cpu, state, wchan) in &after {
        let cpu_before = before.iter().find(|b| &b.0 == tid).map(|b| b.1);
        let idle = cpu_before == Some(*cpu);
        let in_futex = wchan.contains("futex");
        if *state == 'S' && idle && in_futex {
            parked += 1;
        }
        if wchan.contains("epoll") {
            epoll += 1;
        }
        if !idle {
            busy += 1;
        }
        let label = format!("{state}/{}{}", if wchan.is_empty() { "?" } else { wchan }, if idle { "" } else { "/busy" });
        *kinds.entry(label).or_default() += 1;
    }
    let detail = if after.is_empty() {
        "none found in /proc/self/task".to_string()
    } else {
        let parts: Vec<String> = kinds.iter().map(|(k, v)| format!("{v} x {k}")).collect();
        format!("{} threads: {} (state/wchan; no CPU used in {} ms unless /busy)", after.len(), parts.join(", "), window.as_millis())
    };
    WorkerStates { total: after.len(), parked, epoll, busy, detail }
}
