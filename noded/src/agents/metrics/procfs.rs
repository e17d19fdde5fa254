//! noded's own metrics, read from a proc tree (`[data] procfs`, default `/proc`): load, CPU,
//! memory, swap, disk use per mount, network rates per interface, and the process and zombie
//! counts. Each read is a handful of small files plus one `stat` per process; rates (CPU %,
//! bytes/s) come from the difference to the previous read, so the reader keeps those counters.
//!
//! Names: `load1` `load5` `load15`, `cpu_user_pct` `cpu_system_pct` `cpu_iowait_pct`
//! `cpu_busy_pct`, `mem_total_bytes` `mem_used_bytes` `mem_available_bytes` `mem_used_pct`,
//! `swap_total_bytes` `swap_used_bytes` `swap_used_pct`, `disk_used_pct:MOUNT`,
//! `net_rx_bytes_per_s:IFACE` `net_tx_bytes_per_s:IFACE`, `processes`, `zombies`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// File systems with no disk of their own (or none worth a percentage), left out of `disk_used_pct`.
const VIRTUAL_FS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "tmpfs",
    "ramfs",
    "cgroup",
    "cgroup2",
    "mqueue",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "autofs",
    "hugetlbfs",
    "fusectl",
    "configfs",
    "binfmt_misc",
    "nsfs",
    "rpc_pipefs",
    "efivarfs",
    "squashfs",
    "selinuxfs",
];

/// Network file systems, left out too: `statvfs` on a hung server would stall the sampler.
const NETWORK_FS: &[&str] = &["nfs", "nfs4", "cifs", "smbfs", "smb3", "ceph", "glusterfs", "fuse.sshfs", "9p", "afs"];

/// The counters behind CPU %: ticks per state from the `cpu` line of `stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct CpuTicks {
    user: u64,
    system: u64,
    idle: u64,
    iowait: u64,
    total: u64,
}

/// Received and sent bytes per interface.
type NetCounters = BTreeMap<String, (u64, u64)>;

/// One part of a read: adds its metrics, or `None` when its file cannot be read.
type Step = fn(&mut ProcReader, &mut BTreeMap<String, f64>) -> Option<()>;

/// Reads one proc tree; keeps the previous counters for rates.
pub struct ProcReader {
    root: PathBuf,
    cpu: Option<CpuTicks>,
    net: Option<(Instant, NetCounters)>,
    /// Reused for every file read, so a sample allocates little.
    buf: String,
}

impl ProcReader {
    pub fn new(root: &Path) -> ProcReader {
        ProcReader { root: root.to_path_buf(), cpu: None, net: None, buf: String::new() }
    }

    /// Adds every metric it can read to `out`; returns what could not be read. CPU % and network
    /// rates appear from the second read on.
    pub fn read(&mut self, out: &mut BTreeMap<String, f64>) -> Vec<String> {
        let mut problems = Vec::new();
        let steps: [(&str, Step); 6] = [
            ("loadavg", Self::load),
            ("stat", Self::cpu),
            ("meminfo", Self::memory),
            ("mounts", Self::disks),
            ("net/dev", Self::network),
            ("processes", Self::processes),
        ];
        for (what, step) in steps {
            if step(self, out).is_none() {
                problems.push(format!("cannot read {}", self.root.join(what).display()));
            }
        }
        problems
    }

    /// Reads `root/name` into the reused buffer.
    fn slurp(&mut self, name: &str) -> Option<&str> {
        self.buf.clear();
        std::fs::File::open(self.root.join(name)).ok()?.read_to_string(&mut self.buf).ok()?;
        Some(&self.buf)
    }

    fn load(&mut self, out: &mut BTreeMap<String, f64>) -> Option<()> {
        let text = self.slurp("loadavg")?;
        let mut f = text.split_whitespace().map(|v| v.parse::<f64>());
        for name in ["load1", "load5", "load15"] {
            out.insert(name.into(), f.next()?.ok()?);
        }
        Some(())
    }

    fn cpu(&mut self, out: &mut BTreeMap<String, f64>) -> Option<()> {
        let now = parse_cpu_line(self.slurp("stat")?)?;
        if let Some(before) = self.cpu.replace(now)
            && let Some(pct) = cpu_percentages(&before, &now)
        {
            out.extend(pct.map(|(k, v)| (k.to_string(), v)));
        }
        Some(())
    }

    fn memory(&mut self, out: &mut BTreeMap<String, f64>) -> Option<()> {
        let text = self.slurp("meminfo")?;
        let kb = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.split_whitespace().next()?.parse::<f64>().ok())
                .map(|v| v * 1024.0)
        };
        let (total, available) = (kb("MemTotal")?, kb("MemAvailable")?);
        let (swap_total, swap_free) = (kb("SwapTotal").unwrap_or(0.0), kb("SwapFree").unwrap_or(0.0));
        let used = (total - available).max(0.0);
        let swap_used = (swap_total - swap_free).max(0.0);
        out.insert("mem_total_bytes".into(), total);
        out.insert("mem_available_bytes".into(), available);
        out.insert("mem_used_bytes".into(), used);
        out.insert("mem_used_pct".into(), percent(used, total));
        out.insert("swap_total_bytes".into(), swap_total);
        out.insert("swap_used_bytes".into(), swap_used);
        out.insert("swap_used_pct".into(), percent(swap_used, swap_total));
        Some(())
    }

    fn disks(&mut self, out: &mut BTreeMap<String, f64>) -> Option<()> {
        for mount in disk_mounts(self.slurp("mounts")?) {
            let Ok(st) = rustix::fs::statvfs(mount.as_str()) else { continue };
            // As df: used blocks against what an unprivileged user could have (used + available).
            let used = st.f_blocks.saturating_sub(st.f_bfree) as f64;
            let usable = used + st.f_bavail as f64;
            if st.f_blocks > 0 {
                out.insert(format!("disk_used_pct:{mount}"), percent(used, usable));
            }
        }
        Some(())
    }

    fn network(&mut self, out: &mut BTreeMap<String, f64>) -> Option<()> {
        let now = (Instant::now(), parse_net_dev(self.slurp("net/dev")?));
        if let Some((then, before)) = self.net.replace(now.clone()) {
            let secs = now.0.duration_since(then).as_secs_f64();
            for (iface, (rx, tx)) in &now.1 {
                // A counter that went down (interface reset) gives no rate this round.
                if let Some((rx0, tx0)) = before.get(iface)
                    && secs > 0.0
                    && rx >= rx0
                    && tx >= tx0
                {
                    out.insert(format!("net_rx_bytes_per_s:{iface}"), (rx - rx0) as f64 / secs);
                    out.insert(format!("net_tx_bytes_per_s:{iface}"), (tx - tx0) as f64 / secs);
                }
            }
        }
        Some(())
    }

    fn processes(&mut self, out: &mut BTreeMap<String, f64>) -> Option<()> {
        let (mut processes, mut zombies) = (0u32, 0u32);
        for entry in std::fs::read_dir(&self.root).ok()?.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
            // A process that exits between the listing and this read is simply not counted.
            let Some(stat) = self.slurp(&format!("{pid}/stat")) else { continue };
            processes += 1;
            if process_state(stat) == Some('Z') {
                zombies += 1;
            }
        }
        out.insert("processes".into(), f64::from(processes));
        out.insert("zombies".into(), f64::from(zombies));
        Some(())
    }
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole * 100.0 } else { 0.0 }
}

/// The `cpu` line of `/proc/stat`: user nice system idle iowait irq softirq steal (guest time is
/// already in user).
fn parse_cpu_line(stat: &str) -> Option<CpuTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).take(8).map(|f| f.parse().unwrap_or(0)).collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(CpuTicks { user: at(0) + at(1), system: at(2) + at(5) + at(6), idle: at(3), iowait: at(4), total: v.iter().sum() })
}

/// CPU % between two reads; `None` when no tick passed.
fn cpu_percentages(before: &CpuTicks, now: &CpuTicks) -> Option<[(&'static str, f64); 4]> {
    let total = now.total.checked_sub(before.total).filter(|t| *t > 0)? as f64;
    let d = |a: u64, b: u64| a.saturating_sub(b) as f64 / total * 100.0;
    let idle = d(now.idle, before.idle) + d(now.iowait, before.iowait);
    Some([
        ("cpu_user_pct", d(now.user, before.user)),
        ("cpu_system_pct", d(now.system, before.system)),
        ("cpu_iowait_pct", d(now.iowait, before.iowait)),
        ("cpu_busy_pct", (100.0 - idle).clamp(0.0, 100.0)),
    ])
}

/// The mount points whose use is worth a percentage: local, disk-backed file systems, one mount
/// point per device (the shortest), so a container's bind-mounted `/etc/hosts` does not repeat
/// its root disk.
fn disk_mounts(mounts: &str) -> Vec<String> {
    let mut by_device: BTreeMap<&str, String> = BTreeMap::new();
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(device), Some(point), Some(fstype)) = (f.next(), f.next(), f.next()) else { continue };
        if VIRTUAL_FS.contains(&fstype) || NETWORK_FS.contains(&fstype) || fstype.starts_with("fuse.") {
            continue;
        }
        let point = unescape_mount(point);
        match by_device.get(device) {
            Some(kept) if kept.len() <= point.len() => {}
            _ => {
                by_device.insert(device, point);
            }
        }
    }
    let mut points: Vec<String> = by_device.into_values().collect();
    points.sort();
    points.dedup();
    points
}

/// `/proc/mounts` writes space, tab, newline and backslash in paths as octal escapes (`\040`).
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |acc, c| acc.wrapping_mul(8).wrapping_add(c - b'0')));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Received and sent bytes per interface from `/proc/net/dev`, loopback left out.
fn parse_net_dev(text: &str) -> NetCounters {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((iface, rest)) = line.split_once(':') else { continue };
        let iface = iface.trim();
        let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
        if iface != "lo" && f.len() >= 9 {
            out.insert(iface.to_string(), (f[0], f[8]));
        }
    }
    out
}

/// The state letter of a `/proc/PID/stat` line (the field after the command in parentheses,
/// which may itself hold spaces and parentheses).
fn process_state(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

#[cfg(test)]
mod tests;
