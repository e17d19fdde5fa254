//! process: `list` the process table (regex on the command line or name, zombies only, by user),
//! `detail` one exact process (`detail`: command line, environment, cwd, files, cgroup), and
//! `kill` exact targets. There is no pattern kill: a target is a `(pid, start_time)` pair the
//! caller saw in a `list`, and the kill goes through a pidfd whose start time was re-checked, so a
//! reused PID is never hit.
//!
//! The table is read from /proc only when someone asks, and only as far as the filter needs
//! (table.rs). `start_time` is the kernel's start time in clock ticks since boot (field 22 of
//! /proc/PID/stat), exact enough to tell two processes with the same PID apart.

use std::sync::{Arc, Mutex};

use fleet_ddl::Ddl;
use serde_json::{Map, Value, json};

use super::{ActionError, ActionFuture, Agent, AgentContext, RequestMeta};

mod detail;
pub mod procfs;
mod table;

pub use table::{ProcRow, Query, Snapshotter};

pub struct ProcessAgent {
    ddl: Arc<Ddl>,
    snapshot: Arc<Mutex<Snapshotter>>,
}

/// The kernel's start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat).
pub fn start_ticks(pid: u32) -> Option<u64> {
    procfs::stat(pid).map(|s| s.start_time)
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
    let q = Query { pattern, match_name: b("match_name"), zombies: b("zombies"), user: (!user.is_empty()).then_some(user) };
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
            if !fields.is_empty()
                && let Value::Object(m) = &mut v
            {
                m.retain(|k, _| fields.iter().any(|f| f == k));
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
