//! process: `list` the process table (regex on the command line or name, zombies only, by user),
//! `detail` one exact process (`detail`: command line, environment, cwd, files, cgroup), and
//! `kill` exact targets. There is no pattern kill: a target is a `(pid, start_time)` pair the
//! caller saw in a `list`, and the kill goes through a pidfd whose start time was re-checked, so a
//! reused PID is never hit.
//!
//! One sysinfo `System` lives as long as the agent and is refreshed with the cheapest refresh
//! kinds only when someone asks. `start_time` is the kernel's start time in clock ticks since boot
//! (field 22 of /proc/PID/stat), exact enough to tell two processes with the same PID apart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fleet_ddl::Ddl;
use serde_json::{Map, Value, json};
use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind, Users};

use super::{ActionError, ActionFuture, Agent, AgentContext, RequestMeta};

mod detail;

pub struct ProcessAgent {
    ddl: Arc<Ddl>,
    snapshot: Arc<Mutex<Snapshotter>>,
}

/// The long-lived sysinfo state.
pub struct Snapshotter {
    system: Option<System>,
    users: Option<Users>,
    user_names: HashMap<u32, String>,
    /// pid -> (sysinfo's start time in seconds, the kernel's start time in ticks). A process's
    /// start ticks never change, so they are read once per process. If a pid is reused within
    /// the same second the cached ticks are stale, and a kill with them is refused as
    /// "pid reused" by the fresh check in `kill_one`: the cache can only fail closed.
    start_ticks: HashMap<u32, (u64, u64)>,
}

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
    /// Read each row's thread count (one more /proc read per row); off when the caller did not
    /// ask for the field.
    pub threads: bool,
}

fn state_letter(s: ProcessStatus) -> &'static str {
    match s {
        ProcessStatus::Run => "R",
        ProcessStatus::Sleep => "S",
        ProcessStatus::Idle => "I",
        ProcessStatus::UninterruptibleDiskSleep => "D",
        ProcessStatus::Zombie => "Z",
        ProcessStatus::Stop => "T",
        ProcessStatus::Tracing => "t",
        ProcessStatus::Dead => "X",
        ProcessStatus::Wakekill => "K",
        ProcessStatus::Waking => "W",
        ProcessStatus::Parked => "P",
        ProcessStatus::LockBlocked => "L",
        _ => "?",
    }
}

/// The kernel's start time of `pid` in clock ticks since boot, from /proc/PID/stat.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may hold spaces and parentheses; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    // rest starts at field 3 (state); starttime is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn cmdline_of(p: &sysinfo::Process) -> String {
    let parts: Vec<String> = p.cmd().iter().map(|s| s.to_string_lossy().into_owned()).collect();
    parts.join(" ")
}

impl Snapshotter {
    pub fn new() -> Self {
        Snapshotter { system: None, users: None, user_names: HashMap::new(), start_ticks: HashMap::new() }
    }

    fn user_name(&mut self, uid: Option<&sysinfo::Uid>) -> String {
        let Some(uid) = uid else { return "?".into() };
        let raw: u32 = **uid;
        if let Some(n) = self.user_names.get(&raw) {
            return n.clone();
        }
        // Refresh the user list once per unknown uid; a uid without a name shows as its number.
        if self.users.is_none() {
            self.users = Users::new_with_refreshed_list().ok();
        } else if let Some(users) = self.users.as_mut().filter(|u| u.get_user_by_id(uid).is_none()) {
            users.refresh();
        }
        let name = self.users.as_ref().and_then(|u| u.get_user_by_id(uid)).map(|u| u.name().to_string()).unwrap_or_else(|| raw.to_string());
        self.user_names.insert(raw, name.clone());
        name
    }

    /// Refreshes the table and returns the matching rows. Threads are never listed.
    pub fn list(&mut self, q: &Query) -> Result<Vec<ProcRow>, String> {
        let kind = ProcessRefreshKind::nothing()
            .with_memory()
            .with_cpu()
            .with_user(UpdateKind::OnlyIfNotSet)
            .with_cmd(UpdateKind::OnlyIfNotSet)
            .without_tasks();
        if self.system.is_none() {
            self.system = Some(System::new().map_err(|e| format!("cannot read the process table: {e}"))?);
        }
        let sys = self.system.as_mut().expect("set above");
        sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
        let mut picked = Vec::new();
        for (pid, p) in sys.processes() {
            if p.thread_kind().is_some() {
                continue;
            }
            let zombie = p.status() == ProcessStatus::Zombie;
            if q.zombies && !zombie {
                continue;
            }
            if let Some(re) = &q.pattern {
                let hay = if q.match_name || zombie { p.name().to_string_lossy().into_owned() } else { cmdline_of(p) };
                let hay = if hay.is_empty() { p.name().to_string_lossy().into_owned() } else { hay };
                if !re.is_match(&hay) {
                    continue;
                }
            }
            picked.push(*pid);
        }
        let mut rows = Vec::with_capacity(picked.len());
        for pid in picked {
            let Some(p) = self.system.as_ref().and_then(|s| s.process(pid)).map(|p| {
                (
                    p.user_id().cloned(),
                    p.name().to_string_lossy().into_owned(),
                    cmdline_of(p),
                    p.status(),
                    p.parent(),
                    p.memory(),
                    p.virtual_memory(),
                    p.cpu_usage(),
                    p.start_time(),
                )
            }) else {
                continue;
            };
            let (uid, name, cmdline, status, parent, rss, vsz, cpu, started) = p;
            let user = self.user_name(uid.as_ref());
            if let Some(u) = &q.user {
                if *u != user && Some(u.as_str()) != uid.as_ref().map(|x| x.to_string()).as_deref() {
                    continue;
                }
            }
            let raw_pid = pid.as_u32();
            let zombie = status == ProcessStatus::Zombie;
            let ppid = parent.map(|p| p.as_u32()).unwrap_or(0);
            let (parent_pid, parent_start_time, parent_cmdline) = if zombie && ppid > 0 {
                let pcmd = self.system.as_ref().and_then(|s| s.process(Pid::from_u32(ppid))).map(cmdline_of);
                (Some(ppid), start_ticks(ppid), pcmd)
            } else {
                (None, None, None)
            };
            let start_time = match self.start_ticks.get(&raw_pid) {
                Some((secs, ticks)) if *secs == started => *ticks,
                _ => {
                    let ticks = start_ticks(raw_pid).unwrap_or(0);
                    self.start_ticks.insert(raw_pid, (started, ticks));
                    ticks
                }
            };
            rows.push(ProcRow {
                pid: raw_pid,
                ppid,
                user,
                state: state_letter(status).to_string(),
                rss,
                vsz,
                cpu,
                start_time,
                started,
                threads: if q.threads { thread_count(raw_pid) } else { 0 },
                name: if zombie { format!("[{name}]") } else { name.clone() },
                cmdline: if zombie || cmdline.is_empty() { format!("[{name}]") } else { cmdline },
                zombie,
                parent_pid,
                parent_start_time,
                parent_cmdline,
            });
        }
        rows.retain(|r| r.start_time != 0); // gone between the refresh and the stat read
        if let Some(sys) = &self.system {
            let procs = sys.processes();
            self.start_ticks.retain(|pid, _| procs.contains_key(&Pid::from_u32(*pid)));
        }
        rows.sort_by_key(|r| r.pid);
        Ok(rows)
    }
}

impl Default for Snapshotter {
    fn default() -> Self {
        Self::new()
    }
}

fn thread_count(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return 0 };
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Signals by the names the DDL allows.
pub fn signal_by_name(name: &str) -> Option<rustix::process::Signal> {
    use rustix::process::Signal;
    Some(match name.trim_start_matches("SIG") {
        "TERM" => Signal::TERM,
        "KILL" => Signal::KILL,
        "HUP" => Signal::HUP,
        "INT" => Signal::INT,
        "QUIT" => Signal::QUIT,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        "STOP" => Signal::STOP,
        "CONT" => Signal::CONT,
        "CHLD" => Signal::CHILD,
        _ => return None,
    })
}

/// The outcome of one kill target.
pub fn kill_one(pid: u32, start_time: u64, signal: rustix::process::Signal) -> &'static str {
    if pid <= 1 {
        return "refused: pid 1 and the kernel are never signalled";
    }
    if pid == std::process::id() {
        return "refused: noded does not signal itself";
    }
    let Some(p) = rustix::process::Pid::from_raw(pid as i32) else { return "no such process" };
    let fd = match rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return "no such process",
        Err(rustix::io::Errno::PERM) | Err(rustix::io::Errno::ACCESS) => return "permission denied",
        Err(_) => return "no such process",
    };
    // The pidfd pins the process we opened; if the start time read now matches what the caller
    // saw, the pidfd refers to exactly that process.
    match start_ticks(pid) {
        Some(t) if t == start_time => {}
        Some(_) => return "pid reused",
        None => return "no such process",
    }
    match rustix::process::pidfd_send_signal(&fd, signal) {
        Ok(()) => "signalled",
        Err(rustix::io::Errno::SRCH) => "no such process",
        Err(rustix::io::Errno::PERM) => "permission denied",
        Err(_) => "permission denied",
    }
}

/// Parses `PID@START,PID@START`.
pub fn parse_targets(s: &str) -> Result<Vec<(u32, u64)>, String> {
    s.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let (p, st) = t.trim().split_once('@').ok_or_else(|| format!("target '{t}' is not PID@START_TIME"))?;
            Ok((p.parse().map_err(|_| format!("bad pid in '{t}'"))?, st.parse().map_err(|_| format!("bad start time in '{t}'"))?))
        })
        .collect()
}

impl ProcessAgent {
    pub fn new() -> Self {
        ProcessAgent { ddl: super::builtin_ddl("process", fleet_ddl::builtin::PROCESS), snapshot: Arc::new(Mutex::new(Snapshotter::new())) }
    }
}

impl Default for ProcessAgent {
    fn default() -> Self {
        Self::new()
    }
}

const ALL_FIELDS: &[&str] = &[
    "pid",
    "ppid",
    "user",
    "state",
    "rss",
    "vsz",
    "cpu",
    "start_time",
    "started",
    "threads",
    "name",
    "cmdline",
    "zombie",
    "parent_pid",
    "parent_start_time",
    "parent_cmdline",
];

fn list(snapshot: &Mutex<Snapshotter>, args: &Map<String, Value>) -> Result<Value, ActionError> {
    let s = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let b = |k: &str| args.get(k).and_then(Value::as_bool).unwrap_or(false);
    let pattern = s("pattern");
    let pattern = if pattern.is_empty() {
        None
    } else {
        Some(regex::RegexBuilder::new(&pattern).size_limit(1 << 20).build().map_err(|e| {
            ActionError::invalid(format!(
                "input 'pattern' is not a valid regex: {}",
                e.to_string().lines().last().unwrap_or_default().trim()
            ))
        })?)
    };
    let user = s("user");
    let fields: Vec<String> = s("fields").split(',').map(str::trim).filter(|f| !f.is_empty()).map(String::from).collect();
    let threads = fields.is_empty() || fields.iter().any(|f| f == "threads");
    let q = Query { pattern, match_name: b("match_name"), zombies: b("zombies"), user: (!user.is_empty()).then_some(user), threads };
    if let Some(bad) = fields.iter().find(|f| !ALL_FIELDS.contains(&f.as_str())) {
        return Err(ActionError::invalid(format!("input 'fields' names unknown field '{bad}' (known: {})", ALL_FIELDS.join(", "))));
    }
    let rows = snapshot
        .lock()
        .map_err(|_| ActionError::new(fleet_protocol::Status::UnknownError, "process snapshot lock poisoned"))?
        .list(&q)
        .map_err(|e| ActionError::new(fleet_protocol::Status::UnknownError, e))?;
    let rss_total: u64 = rows.iter().map(|r| r.rss).sum();
    let vsz_total: u64 = rows.iter().map(|r| r.vsz).sum();
    let matched = rows.len();
    let processes: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
            if !fields.is_empty() {
                if let Value::Object(m) = &mut v {
                    m.retain(|k, _| fields.iter().any(|f| f == k));
                }
            }
            v
        })
        .collect();
    Ok(json!({ "processes": processes, "matched": matched, "rss_total": rss_total, "vsz_total": vsz_total }))
}

fn kill(args: &Map<String, Value>) -> Result<Value, ActionError> {
    let targets = parse_targets(args.get("targets").and_then(Value::as_str).unwrap_or("")).map_err(ActionError::invalid)?;
    if targets.is_empty() {
        return Err(ActionError::invalid("input 'targets' names no process"));
    }
    let sig_name = args.get("signal").and_then(Value::as_str).unwrap_or("TERM");
    let signal = signal_by_name(sig_name).ok_or_else(|| ActionError::invalid(format!("unknown signal '{sig_name}'")))?;
    let mut results = Vec::new();
    let (mut signalled, mut failed) = (0, 0);
    for (pid, start_time) in targets {
        let outcome = kill_one(pid, start_time, signal);
        if outcome == "signalled" {
            signalled += 1;
        } else {
            failed += 1;
        }
        tracing::info!(pid, start_time, signal = sig_name, outcome, "kill");
        results.push(json!({ "pid": pid, "start_time": start_time, "outcome": outcome }));
    }
    Ok(json!({ "results": results, "signalled": signalled, "failed": failed }))
}

impl Agent for ProcessAgent {
    fn ddl(&self) -> &Ddl {
        &self.ddl
    }

    fn call(&self, _node: Arc<dyn AgentContext>, _meta: RequestMeta, action: &str, args: Map<String, Value>) -> ActionFuture {
        let snapshot = self.snapshot.clone();
        let action = action.to_string();
        Box::pin(async move {
            // /proc reads block; keep them off the async workers.
            tokio::task::spawn_blocking(move || match action.as_str() {
                "list" => list(&snapshot, &args),
                "detail" => detail::detail(&snapshot, &args),
                "kill" => kill(&args),
                other => Err(ActionError::new(fleet_protocol::Status::UnknownAction, format!("process has no action '{other}'"))),
            })
            .await
            .unwrap_or_else(|e| Err(ActionError::new(fleet_protocol::Status::UnknownError, format!("process agent task failed: {e}"))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_listed_with_exact_start_time() {
        let mut s = Snapshotter::new();
        let me = std::process::id();
        let rows = s.list(&Query::default()).unwrap();
        let row = rows.iter().find(|r| r.pid == me).expect("this test process is listed");
        assert_eq!(Some(row.start_time), start_ticks(me));
        assert!(!row.zombie);
        assert!(rows.iter().all(|r| r.pid != 0));
    }

    #[test]
    fn targets_parse_and_refusals() {
        assert_eq!(parse_targets("12@345,6@7").unwrap(), vec![(12, 345), (6, 7)]);
        assert!(parse_targets("12").is_err());
        assert_eq!(kill_one(1, 0, rustix::process::Signal::TERM), "refused: pid 1 and the kernel are never signalled");
        assert_eq!(kill_one(std::process::id(), 0, rustix::process::Signal::TERM), "refused: noded does not signal itself");
    }

    #[test]
    fn kill_checks_start_time() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let st = start_ticks(pid).unwrap();
        assert_eq!(kill_one(pid, st + 1, rustix::process::Signal::KILL), "pid reused");
        assert!(child.try_wait().unwrap().is_none(), "survives a wrong start time");
        assert_eq!(kill_one(pid, st, rustix::process::Signal::KILL), "signalled");
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert_eq!(kill_one(pid, st, rustix::process::Signal::KILL), "no such process");
    }
}
