//! The sampler: one thread per noded process that reads the proc tree (and collectd, when a
//! socket is configured) every interval and appends the sample to the history. A thread of its
//! own keeps the sampling off the async runtime (collectd's socket and `statvfs` block), and one
//! per process is right for `noded sim` too: its nodes share one host. It measures what each
//! sample costs it in CPU time, so the cost is a figure the agent reports, not a guess.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::MetricsConfig;
use super::procfs::ProcReader;
use super::ring::{History, Sample};

/// The first sample comes this soon after start (or after one interval, if shorter): the CPU and
/// network rates need a first read to difference against, and a console should not wait 5 s.
const FIRST_SAMPLE: Duration = Duration::from_secs(1);

/// What the last sample could not read, and what sampling costs.
#[derive(Debug, Clone, Default)]
pub struct SamplerStatus {
    /// Files or sources that failed in the last sample.
    pub problems: Vec<String>,
    pub samples: u64,
    /// CPU time of the last sample and the mean over all, in µs (the sampler thread's own run
    /// time from `/proc/thread-self/schedstat`; wall time where that file is missing).
    pub last_cost_us: f64,
    pub mean_cost_us: f64,
}

pub struct Sampler {
    pub interval: Duration,
    procfs: PathBuf,
    collectd_socket: Option<PathBuf>,
    history: Mutex<History>,
    status: Mutex<SamplerStatus>,
    /// The newest sample as a MetricSample frame, encoded once for every hub link of the
    /// process (all of `noded sim`'s nodes share it).
    frames: tokio::sync::watch::Sender<Option<bytes::Bytes>>,
}

static SHARED: OnceLock<Arc<Sampler>> = OnceLock::new();

impl Sampler {
    /// A sampler for `config` (not started): proc tree from `[data] procfs`, the rest from `[metrics]`.
    pub fn new(metrics: &MetricsConfig, procfs: PathBuf) -> Sampler {
        Sampler {
            interval: metrics.interval(),
            procfs,
            collectd_socket: metrics.collectd_socket.clone(),
            history: Mutex::new(History::new(metrics.history_samples())),
            status: Mutex::new(SamplerStatus::default()),
            frames: tokio::sync::watch::channel(None).0,
        }
    }

    /// This process's sampler, started on first use with that caller's config.
    pub fn shared(config: &crate::config::NodeConfig) -> Arc<Sampler> {
        SHARED
            .get_or_init(|| {
                let sampler = Arc::new(Sampler::new(&config.metrics, config.data.procfs.clone()));
                let runner = sampler.clone();
                if let Err(e) = std::thread::Builder::new().name("metrics-sampler".into()).spawn(move || runner.run()) {
                    tracing::error!("metrics sampler not started: {e}");
                }
                sampler
            })
            .clone()
    }

    /// Samples every interval, on a fixed schedule (a slow sample does not shift the next ones).
    fn run(&self) {
        let mut reader = self.reader();
        reader.read(&mut BTreeMap::new());
        let mut next = Instant::now() + self.interval.min(FIRST_SAMPLE);
        loop {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            self.sample_once(&mut reader);
            next += self.interval;
            // After a long stall (a suspended VM), resume from now instead of catching up in a burst.
            if next < Instant::now() {
                next = Instant::now() + self.interval;
            }
        }
    }

    /// A reader of this sampler's proc tree.
    pub fn reader(&self) -> ProcReader {
        ProcReader::new(&self.procfs)
    }

    /// Takes one sample now, appends it to the history and records its cost.
    pub fn sample_once(&self, reader: &mut ProcReader) {
        let (cpu_before, wall_before) = (thread_cpu_ns(), Instant::now());
        let mut values = BTreeMap::new();
        let mut problems = reader.read(&mut values);
        if let Some(socket) = &self.collectd_socket
            && let Err(e) = super::collectd::read(socket, &mut values)
        {
            problems.push(e);
        }
        let time_ms = fleet_protocol::now_ms();
        let names: Vec<String> = values.keys().cloned().collect();
        let sample = fleet_protocol::MetricSample { time_ms, names, values: values.values().copied().collect() };
        self.history.lock().expect("metrics history lock").push(time_ms, values);
        if let Ok(frame) = fleet_protocol::codec::encode_message(&fleet_protocol::Message::MetricSample(sample)) {
            self.frames.send_replace(Some(bytes::Bytes::from(frame)));
        }
        let cost_ns = match (cpu_before, thread_cpu_ns()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => wall_before.elapsed().as_nanos() as u64,
        };
        let mut status = self.status.lock().expect("metrics status lock");
        if problems != status.problems && !problems.is_empty() {
            tracing::warn!(problems = ?problems, "metrics sample incomplete");
        }
        status.problems = problems;
        status.samples += 1;
        status.last_cost_us = cost_ns as f64 / 1000.0;
        status.mean_cost_us += (status.last_cost_us - status.mean_cost_us) / status.samples as f64;
    }

    pub fn latest(&self) -> Option<Sample> {
        self.history.lock().expect("metrics history lock").latest().cloned()
    }

    /// Each new sample as a MetricSample frame, for the node's hub links to push. Without a
    /// running sampler (no metrics agent in this process) the receiver never changes.
    pub fn frames() -> tokio::sync::watch::Receiver<Option<bytes::Bytes>> {
        static NONE: OnceLock<tokio::sync::watch::Sender<Option<bytes::Bytes>>> = OnceLock::new();
        match SHARED.get() {
            Some(sampler) => sampler.frames.subscribe(),
            None => NONE.get_or_init(|| tokio::sync::watch::channel(None).0).subscribe(),
        }
    }

    pub fn status(&self) -> SamplerStatus {
        self.status.lock().expect("metrics status lock").clone()
    }

    /// Runs `f` on the history (for the `history` action, without copying every sample).
    pub fn with_history<T>(&self, f: impl FnOnce(&History) -> T) -> T {
        f(&self.history.lock().expect("metrics history lock"))
    }
}

/// Nanoseconds the calling thread has run on a CPU, from `/proc/thread-self/schedstat`.
pub fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}
