//! A fake proc tree for the metrics tests.

use std::path::Path;

/// A proc tree with a high load, two processes (one a zombie), one interface and one disk.
pub fn fake_proc(dir: &Path, load: &str, cpu: &str, eth0: (u64, u64)) {
    std::fs::create_dir_all(dir.join("net")).unwrap();
    std::fs::write(dir.join("loadavg"), format!("{load} 2/300 4242\n")).unwrap();
    std::fs::write(dir.join("stat"), format!("cpu  {cpu}\ncpu0 {cpu}\nintr 1\n")).unwrap();
    std::fs::write(
        dir.join("meminfo"),
        "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\nSwapTotal:       400 kB\nSwapFree:        300 kB\n",
    )
    .unwrap();
    std::fs::write(dir.join("mounts"), "/dev/root / ext4 rw 0 0\nproc /proc proc rw 0 0\n/dev/root /etc/hosts ext4 rw 0 0\n").unwrap();
    let dev = format!(
        "Inter-|   Receive\n face |bytes packets errs drop fifo frame compressed multicast|bytes\n    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n  eth0: {} 1 0 0 0 0 0 0 {} 1 0 0 0 0 0 0\n",
        eth0.0, eth0.1
    );
    std::fs::write(dir.join("net/dev"), dev).unwrap();
    for (pid, state) in [("1", "S"), ("77", "Z")] {
        std::fs::create_dir_all(dir.join(pid)).unwrap();
        std::fs::write(dir.join(pid).join("stat"), format!("{pid} (a (b) c) {state} 1 2 3\n")).unwrap();
    }
}
