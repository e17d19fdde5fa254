//! A job run's processes, found in /proc and killed as a whole tree.
//!
//! An external agent runs in its own process group, with the path of a request file, the reply
//! file and the external-agent protocol name as its arguments (see `external.rs`); the request
//! file carries the run's request id. That id finds the agent's process; the run's tree is that
//! process's group plus every descendant (one that left the group is still a descendant). The
//! search does not require the agent to be noded's child, so the leftovers of a noded that was
//! killed are found after its restart too.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::agents::external::RPC_PROTOCOL;
use crate::agents::process::kill_one;
use crate::agents::process::procfs::{Stat, pids, stat};

/// One process of a run's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub pid: u32,
    /// Kernel start time (clock ticks since boot): signals go to this exact process only.
    pub start_time: u64,
    pub name: String,
}

/// What a kill did to one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Killed {
    pub pid: u32,
    pub name: String,
    /// `terminated` (gone after TERM), `killed` (needed KILL), or why it could not be signalled.
    pub outcome: String,
}

/// Whether `pid` is the external agent process of the run `request_id`.
fn runs_request(pid: u32, request_id: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    // `AGENT REQUEST REPLY PROTOCOL`; a script started through its #! line has its interpreter
    // in front, so the request path is found two places before the protocol.
    let Some(at) = args.iter().position(|a| *a == RPC_PROTOCOL.as_bytes()).filter(|at| *at >= 3) else { return false };
    let Ok(path) = std::str::from_utf8(args[at - 2]) else { return false };
    let Ok(text) = std::fs::read_to_string(path) else { return false };
    serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|r| r["requestid"] == request_id)
}

/// The live processes of the run `request_id`: its agent's process group and all descendants.
/// Empty when the run started no process (a built-in action) or they are all gone.
pub fn find(request_id: &str) -> Vec<Member> {
    let procs: BTreeMap<u32, Stat> =
        pids().unwrap_or_default().into_iter().filter_map(|p| Some((p, stat(p)?))).filter(|(_, s)| s.state != 'Z').collect();
    let leaders: Vec<u32> = procs.iter().filter(|(pid, s)| s.pgrp == **pid && runs_request(**pid, request_id)).map(|(p, _)| *p).collect();
    let mut tree: BTreeSet<u32> = procs.iter().filter(|(_, s)| leaders.contains(&s.pgrp)).map(|(p, _)| *p).collect();
    // Descendants that moved to a group of their own, to any depth.
    loop {
        let more: Vec<u32> = procs.iter().filter(|(p, s)| !tree.contains(p) && tree.contains(&s.ppid)).map(|(p, _)| *p).collect();
        if more.is_empty() {
            break;
        }
        tree.extend(more);
    }
    tree.into_iter().map(|pid| Member { pid, start_time: procs[&pid].start_time, name: procs[&pid].name.clone() }).collect()
}

/// Whether exactly that process is gone (exited, reaped or a zombie).
fn gone(m: &Member) -> bool {
    stat(m.pid).is_none_or(|s| s.start_time != m.start_time || s.state == 'Z')
}

/// TERM to every member, up to `grace` for them to exit, then KILL to what is left; members that
/// appear meanwhile (forked during the TERM) are killed the same way. Returns one line per process.
pub async fn kill(request_id: &str, mut members: Vec<Member>, grace: Duration) -> Vec<Killed> {
    let mut done: BTreeMap<u32, Killed> = BTreeMap::new();
    for _round in 0..3 {
        let fresh: Vec<Member> = members.drain(..).filter(|m| !done.contains_key(&m.pid)).collect();
        if fresh.is_empty() {
            break;
        }
        let mut signalled = Vec::new();
        for m in fresh {
            match kill_one(m.pid, m.start_time, rustix::process::Signal::TERM) {
                "signalled" => signalled.push(m),
                other => {
                    done.insert(m.pid, Killed { pid: m.pid, name: m.name, outcome: other.to_string() });
                }
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        while signalled.iter().any(|m| !gone(m)) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for m in signalled {
            let outcome = if gone(&m) {
                "terminated".to_string()
            } else {
                match kill_one(m.pid, m.start_time, rustix::process::Signal::KILL) {
                    "signalled" => "killed".to_string(),
                    other => other.to_string(),
                }
            };
            done.insert(m.pid, Killed { pid: m.pid, name: m.name, outcome });
        }
        members = find(request_id);
    }
    done.into_values().collect()
}

/// The kill in words: `killed 3 processes (sh 1200, sleep 1201, sleep 1202)`.
pub fn describe(killed: &[Killed]) -> String {
    if killed.is_empty() {
        return "no process was running".into();
    }
    let names: Vec<String> = killed.iter().map(|k| format!("{} {}", k.name, k.pid)).collect();
    let failed: Vec<String> = killed
        .iter()
        .filter(|k| k.outcome != "terminated" && k.outcome != "killed" && k.outcome != "no such process")
        .map(|k| format!("{}: {}", k.pid, k.outcome))
        .collect();
    let n = killed.len();
    let mut text = format!("killed {n} process{} ({})", if n == 1 { "" } else { "es" }, names.join(", "));
    if !failed.is_empty() {
        text.push_str(&format!("; not killed: {}", failed.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_stat_is_read() {
        let me = std::process::id();
        let s = stat(me).expect("own stat");
        assert_eq!(s.start_time, crate::agents::process::start_ticks(me).unwrap());
        assert!(s.state != 'Z');
    }

    /// An agent started as `external.rs` starts one (a #! script in its own process group, with
    /// the request file, reply file and protocol as arguments) is found with its children.
    #[tokio::test]
    async fn an_agent_tree_is_found_by_its_request_id_and_killed() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let tmp = tempfile::tempdir().unwrap();
        let req = tmp.path().join("request.json");
        std::fs::write(&req, r#"{"requestid":"job-tree-1"}"#).unwrap();
        let exe = tmp.path().join("napper");
        std::fs::write(&exe, "#!/bin/sh\nsleep 31300 &\nsleep 31300 &\nwait\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut child = std::process::Command::new(&exe)
            .arg(&req)
            .arg(tmp.path().join("reply.json"))
            .arg(RPC_PROTOCOL)
            .process_group(0)
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while find("job-tree-1").len() < 3 {
            assert!(std::time::Instant::now() < deadline, "tree never seen: {:?}", find("job-tree-1"));
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(find("job-tree-2").is_empty(), "another run's id finds nothing");
        let killed = kill("job-tree-1", find("job-tree-1"), Duration::from_secs(2)).await;
        let _ = child.wait();
        assert_eq!(killed.len(), 3, "{killed:?}");
        assert!(describe(&killed).starts_with("killed 3 processes ("), "{}", describe(&killed));
        assert!(find("job-tree-1").is_empty());
    }

    #[test]
    fn a_request_no_process_runs_has_no_tree() {
        assert!(find("job-nothing-1").is_empty());
        assert_eq!(describe(&[]), "no process was running");
    }
}
