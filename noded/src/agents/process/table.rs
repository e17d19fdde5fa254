//! The process table as `list` and `detail` see it, read straight from /proc (procfs.rs).
//!
//! A listing tests the cheapest fact that can rule a process out first: with a pattern on the
//! command line that is one read of `/proc/PID/cmdline`, and only the processes that match are
//! read in full (stat, and status for the owner). The CPU figure is the share of one core since
//! the previous listing that saw the process, or over its whole life the first time (as `ps`).

use std::collections::HashMap;
use std::time::Instant;

use super::procfs::{self, Stat};

/// The state kept between listings: user names by uid, each listed process's CPU ticks (to give
/// a rate next time), and the boot time.
pub struct Snapshotter {
    users: Option<sysinfo::Users>,
    user_names: HashMap<u32, String>,
    /// The last reading of each listed process. The start time keeps a reused pid from being
    /// compared with the process that had it before.
    cpu: HashMap<u32, CpuReading>,
    boot_time: Option<u64>,
    page_size: u64,
    ticks_per_second: u64,
    buf: Vec<u8>,
}

/// A process's start time, its CPU ticks, and when they were read.
type CpuReading = (u64, u64, Instant);

/// One row of the process table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcRow {
    pub pid: u32,
    pub ppid: u32,
    pub user: String,
    pub state: String,
    pub rss: u64,
    pub vsz: u64,
    pub cpu: f32,
    pub start_time: u64,
    pub started: u64,
    pub threads: u64,
    pub name: String,
    pub cmdline: String,
    pub zombie: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_start_time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_cmdline: Option<String>,
}

/// What `list` looks for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub pattern: Option<regex::Regex>,
    pub match_name: bool,
    pub zombies: bool,
    pub user: Option<String>,
}

impl Snapshotter {
    pub fn new() -> Self {
        Snapshotter {
            users: None,
            user_names: HashMap::new(),
            cpu: HashMap::new(),
            boot_time: None,
            page_size: rustix::param::page_size() as u64,
            ticks_per_second: procfs::ticks_per_second(),
            buf: Vec::with_capacity(4096),
        }
    }

    /// The name of `uid`, or the number when the system has no name for it.
    pub(super) fn user_name(&mut self, uid: Option<u32>) -> String {
        let Some(uid) = uid else { return "?".into() };
        if let Some(n) = self.user_names.get(&uid) {
            return n.clone();
        }
        // Read the user list once per unknown uid.
        match self.users.as_mut() {
            None => self.users = sysinfo::Users::new_with_refreshed_list().ok(),
            Some(users) => users.refresh(),
        }
        let name = self
            .users
            .as_ref()
            .and_then(|u| u.iter().find(|u| **u.id() == uid))
            .map(|u| u.name().to_string())
            .unwrap_or_else(|| uid.to_string());
        self.user_names.insert(uid, name.clone());
        name
    }

    /// Lists the processes that match `q`, by pid. Threads are never listed.
    pub fn list(&mut self, q: &Query) -> Result<Vec<ProcRow>, String> {
        let pids = procfs::pids().map_err(|e| format!("cannot read the process table: {e}"))?;
        let uptime = procfs::uptime_ticks();
        let mut rows = Vec::new();
        let mut cpu = HashMap::with_capacity(self.cpu.len());
        for pid in pids {
            if let Some(row) = self.matching_row(pid, q, uptime, &mut cpu) {
                rows.push(row);
            }
        }
        // Only the processes just listed keep a CPU reading: the map never outgrows a listing.
        self.cpu = cpu;
        rows.sort_by_key(|r| r.pid);
        Ok(rows)
    }

    /// The row of one process, read now; `None` once it is gone.
    pub fn row(&mut self, pid: u32) -> Option<ProcRow> {
        let stat = procfs::stat_with(pid, &mut self.buf)?;
        let cmdline = procfs::cmdline_with(pid, &mut self.buf).unwrap_or_default();
        let uid = procfs::uid_with(pid, &mut self.buf);
        let (row, reading) = self.build(pid, stat, cmdline, uid, procfs::uptime_ticks());
        self.cpu.insert(pid, reading);
        Some(row)
    }

    fn matching_row(&mut self, pid: u32, q: &Query, uptime: Option<u64>, cpu: &mut HashMap<u32, CpuReading>) -> Option<ProcRow> {
        let mut cmdline = None;
        // A pattern on the command line rules most processes out with that one read. A zombie
        // and a kernel thread have an empty command line and are matched by name below.
        if let Some(re) = q.pattern.as_ref().filter(|_| !q.match_name && !q.zombies) {
            let text = procfs::cmdline_with(pid, &mut self.buf)?;
            if !text.is_empty() && !re.is_match(&text) {
                return None;
            }
            cmdline = Some(text);
        }
        let stat = procfs::stat_with(pid, &mut self.buf)?;
        let zombie = stat.state == 'Z';
        if q.zombies && !zombie {
            return None;
        }
        let cmdline = match cmdline {
            Some(c) => c,
            None if zombie => String::new(),
            None => procfs::cmdline_with(pid, &mut self.buf).unwrap_or_default(),
        };
        if let Some(re) = &q.pattern {
            let hay = if q.match_name || zombie || cmdline.is_empty() { &stat.name } else { &cmdline };
            if !re.is_match(hay) {
                return None;
            }
        }
        let uid = procfs::uid_with(pid, &mut self.buf);
        if let Some(u) = &q.user
            && *u != self.user_name(uid)
            && uid.is_none_or(|uid| *u != uid.to_string())
        {
            return None;
        }
        let (row, reading) = self.build(pid, stat, cmdline, uid, uptime);
        cpu.insert(pid, reading);
        Some(row)
    }

    /// A process's row, and the CPU reading to rate it against next time.
    fn build(&mut self, pid: u32, stat: Stat, cmdline: String, uid: Option<u32>, uptime: Option<u64>) -> (ProcRow, CpuReading) {
        let user = self.user_name(uid);
        let zombie = stat.state == 'Z';
        let now = Instant::now();
        let hz = self.ticks_per_second as f64;
        // Share of one core: since the last reading of this very process, else over its life.
        let share = match self.cpu.get(&pid) {
            Some(&(start, ticks, at)) if start == stat.start_time && now > at => {
                stat.cpu_ticks.saturating_sub(ticks) as f64 / hz / now.duration_since(at).as_secs_f64()
            }
            _ => match uptime.map(|u| u.saturating_sub(stat.start_time)) {
                Some(alive) if alive > 0 => stat.cpu_ticks as f64 / alive as f64,
                _ => 0.0,
            },
        };
        let boot = *self.boot_time.get_or_insert_with(|| procfs::boot_time().unwrap_or(0));
        let (parent_pid, parent_start_time, parent_cmdline) = if zombie && stat.ppid > 0 {
            let parent = procfs::stat_with(stat.ppid, &mut self.buf).map(|s| s.start_time);
            (Some(stat.ppid), parent, procfs::cmdline_with(stat.ppid, &mut self.buf))
        } else {
            (None, None, None)
        };
        let shown_name = if zombie { format!("[{}]", stat.name) } else { stat.name.clone() };
        let row = ProcRow {
            pid,
            ppid: stat.ppid,
            user,
            state: stat.state.to_string(),
            rss: stat.rss_pages * self.page_size,
            vsz: stat.vsize,
            cpu: (share * 100.0) as f32,
            start_time: stat.start_time,
            started: boot + stat.start_time / self.ticks_per_second,
            threads: stat.threads,
            cmdline: if zombie || cmdline.is_empty() { format!("[{}]", stat.name) } else { cmdline },
            name: shown_name,
            zombie,
            parent_pid,
            parent_start_time,
            parent_cmdline,
        };
        (row, (stat.start_time, stat.cpu_ticks, now))
    }
}

impl Default for Snapshotter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &str) -> Option<regex::Regex> {
        Some(regex::Regex::new(p).unwrap())
    }

    #[test]
    fn own_process_is_listed_with_what_proc_says() {
        let mut s = Snapshotter::new();
        let me = std::process::id();
        let rows = s.list(&Query::default()).unwrap();
        let row = rows.iter().find(|r| r.pid == me).expect("this test process is listed");
        let stat = procfs::stat(me).unwrap();
        assert_eq!(row.start_time, stat.start_time);
        assert_eq!(row.ppid, stat.ppid);
        assert!(!row.zombie && row.rss > 0 && row.vsz >= row.rss && row.threads >= 1);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert!(row.started <= now + 1 && now - row.started < 3600, "started {} now {now}", row.started);
        assert!(rows.windows(2).all(|w| w[0].pid < w[1].pid));
        assert!(rows.iter().all(|r| r.pid != 0));
    }

    #[test]
    fn a_pattern_matches_the_command_line_or_the_name() {
        let mut child = std::process::Command::new("sleep").arg("31.25").spawn().unwrap();
        let pid = child.id();
        let mut s = Snapshotter::new();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let by_cmdline = loop {
            let rows = s.list(&Query { pattern: pattern("sleep 31\\.25"), ..Query::default() }).unwrap();
            if !rows.is_empty() || Instant::now() > deadline {
                break rows;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert_eq!(by_cmdline.iter().map(|r| r.pid).collect::<Vec<_>>(), [pid]);
        assert_eq!(by_cmdline[0].cmdline, "sleep 31.25");
        let by_name = s.list(&Query { pattern: pattern("^sleep$"), match_name: true, ..Query::default() }).unwrap();
        assert!(by_name.iter().any(|r| r.pid == pid));
        let none = s.list(&Query { pattern: pattern("31\\.25"), match_name: true, ..Query::default() }).unwrap();
        assert!(none.iter().all(|r| r.pid != pid), "the name is only 'sleep'");
        let me = rustix::process::getuid().as_raw();
        let mine = s.list(&Query { pattern: pattern("sleep 31\\.25"), user: Some(me.to_string()), ..Query::default() }).unwrap();
        assert_eq!(mine.len(), 1, "a user given as a uid matches");
        let other = s.list(&Query { pattern: pattern("sleep 31\\.25"), user: Some("no-such-user-x".into()), ..Query::default() }).unwrap();
        assert!(other.is_empty());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_zombie_is_listed_by_name_with_its_parent() {
        // A child that is never waited for stays a zombie until this test reaps it.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while procfs::stat(pid).is_some_and(|s| s.state != 'Z') && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut s = Snapshotter::new();
        let rows = s.list(&Query { zombies: true, pattern: pattern("^true$"), ..Query::default() }).unwrap();
        let row = rows.iter().find(|r| r.pid == pid).expect("the zombie is listed");
        assert!(row.zombie);
        assert_eq!((row.name.as_str(), row.cmdline.as_str(), row.state.as_str()), ("[true]", "[true]", "Z"));
        assert_eq!(row.parent_pid, Some(std::process::id()));
        assert_eq!(row.parent_start_time, procfs::stat(std::process::id()).map(|s| s.start_time));
        assert!(row.parent_cmdline.as_deref().is_some_and(|c| !c.is_empty()));
        child.wait().unwrap();
    }

    #[test]
    fn cpu_is_a_rate_between_listings() {
        let mut s = Snapshotter::new();
        let me = std::process::id();
        let first = s.row(me).unwrap();
        let t = Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(300) {
            std::hint::black_box((0..1000).sum::<u64>());
        }
        let rows = s.list(&Query::default()).unwrap();
        let second = rows.iter().find(|r| r.pid == me).unwrap();
        assert!(first.cpu >= 0.0);
        // A thread spinning for the whole interval: close to one core (other tests share the CPU).
        assert!(
            second.cpu > 20.0 && second.cpu <= 100.0 * (1.0 + std::thread::available_parallelism().unwrap().get() as f32),
            "{}",
            second.cpu
        );
    }
}
