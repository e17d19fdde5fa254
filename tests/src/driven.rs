//! A node whose load and CPU a test drives: a proc tree of its own (`[data] procfs`, which the
//! metrics sampler reads as the process() data function does) with a load of [`DRIVEN_LOAD`] and
//! a CPU kept 100% busy by advancing the tree's `stat` counters. The real host's figures are far
//! below, so the driven node is the worst of any group it is in. [`DrivenFleet`] is three real
//! nodes around one such node.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::{Hub, Node, NodeSpec, wait_for_nodes};

/// The driven node's load: far above what the real host shows while the tests run.
pub const DRIVEN_LOAD: f64 = 99.0;

/// Node config that samples every half second, so a test sees several samples soon.
pub const FAST: &str = "[metrics]\ninterval = 0.5\nhistory_minutes = 1.0\n";

/// A proc tree with `DRIVEN_LOAD`, one disk, one interface, three processes (one a zombie), and
/// `busy_ticks` user ticks in `stat`.
pub fn write_proc(dir: &Path, busy_ticks: u64) {
    std::fs::create_dir_all(dir.join("net")).unwrap();
    put(&dir.join("loadavg"), &format!("{DRIVEN_LOAD:.2} 60.00 30.00 5/400 999\n"));
    put(&dir.join("stat"), &format!("cpu  {busy_ticks} 0 0 1000 0 0 0 0 0 0\n"));
    put(&dir.join("meminfo"), "MemTotal: 1000000 kB\nMemAvailable: 50000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n");
    put(&dir.join("mounts"), "/dev/root / ext4 rw 0 0\n");
    put(&dir.join("net/dev"), "h1\nh2\n  eth0: 1000 1 0 0 0 0 0 0 2000 1 0 0 0 0 0 0\n");
    for (pid, state) in [("1", "S"), ("2", "R"), ("3", "Z")] {
        std::fs::create_dir_all(dir.join(pid)).unwrap();
        put(&dir.join(pid).join("stat"), &format!("{pid} (p) {state} 1\n"));
    }
}

/// Replaces `path`'s content at once (a write beside it, then a rename), so the node's sampler,
/// reading while the driver rewrites the tree, never sees a file half written.
fn put(path: &Path, text: &str) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, text).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

/// Keeps `dir`'s CPU busy: user ticks advance while idle ticks stand still, until dropped.
pub struct CpuDriver {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CpuDriver {
    pub fn start(dir: &Path) -> CpuDriver {
        let (stop, dir) = (Arc::new(AtomicBool::new(false)), dir.to_path_buf());
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut ticks = 0;
            while !flag.load(Ordering::Relaxed) {
                ticks += 50;
                write_proc(&dir, ticks);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        CpuDriver { stop, thread: Some(thread) }
    }
}

impl Drop for CpuDriver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A driven proc tree under `dir` and the driver keeping its CPU busy; returns the driver and
/// the node config that points the node's sampler at the tree (sampling as [`FAST`]).
pub fn drive(dir: &Path) -> (CpuDriver, String) {
    let proc_dir = dir.join("proc");
    write_proc(&proc_dir, 0);
    let driver = CpuDriver::start(&proc_dir);
    (driver, format!("[data]\nprocfs = {:?}\n\n{FAST}", proc_dir.display().to_string()))
}

/// A hub and three real noded processes: web-01 and web-02 (`role: web`) and db-01 (`role: db`),
/// web-02 driven, the other two reading this host's /proc; all sampling as [`FAST`].
pub struct DrivenFleet {
    pub hub: Hub,
    _nodes: Vec<Node>,
    _driver: CpuDriver,
    _proc: tempfile::TempDir,
}

impl DrivenFleet {
    /// The node that is driven.
    pub const DRIVEN: &str = "web-02";

    /// Starts the hub and the nodes and waits, up to `wait`, until all three are registered.
    pub fn start(wait: Duration) -> DrivenFleet {
        let hub = Hub::start();
        let proc = tempfile::tempdir().unwrap();
        let (driver, driven_config) = drive(proc.path());
        let nodes = vec![
            NodeSpec::new(hub.endpoint(), "web-01").facts("role: web\n").config(FAST).start(),
            NodeSpec::new(hub.endpoint(), Self::DRIVEN).facts("role: web\n").config(&driven_config).start(),
            NodeSpec::new(hub.endpoint(), "db-01").facts("role: db\n").config(FAST).start(),
        ];
        wait_for_nodes(hub.endpoint(), &["db-01", "web-01", "web-02"], wait);
        DrivenFleet { hub, _nodes: nodes, _driver: driver, _proc: proc }
    }
}
