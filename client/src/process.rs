//! Process hunting, written once for the CLI and the console: list the matching processes of the
//! fleet (`process#list`), and signal exact `host:pid@start_time` targets (`process#kill`), one
//! request per host. There is no pattern kill on the nodes: a kill always names exact processes,
//! and a node refuses a pid whose start time changed (reused) in between.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{ClientError, Result};
use crate::link::Client;
use crate::round::{self, Outcome, Progress};
use crate::scope::{Scope, Settings};

pub mod view;

/// The fields a listing asks for: everything the tables, the totals and kill need. The thread
/// count is left out: it costs the node a /proc read per row.
pub const LIST_FIELDS: &str =
    "pid,ppid,user,state,rss,vsz,cpu,start_time,started,name,cmdline,zombie,parent_pid,parent_start_time,parent_cmdline";

/// One process as a node reported it, tagged with its host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Proc {
    #[serde(default)]
    pub host: String,
    pub pid: u32,
    #[serde(default)]
    pub ppid: u32,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub rss: u64,
    #[serde(default)]
    pub vsz: u64,
    #[serde(default)]
    pub cpu: f32,
    pub start_time: u64,
    #[serde(default)]
    pub started: u64,
    #[serde(default)]
    pub threads: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub cmdline: String,
    #[serde(default)]
    pub zombie: bool,
    #[serde(default)]
    pub parent_pid: Option<u32>,
    #[serde(default)]
    pub parent_start_time: Option<u64>,
    #[serde(default)]
    pub parent_cmdline: Option<String>,
}

/// Exactly one process: the host it runs on, its pid, and the kernel's start time (clock ticks
/// since boot) that the node re-checks through a pidfd before signalling it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ProcKey {
    pub host: String,
    pub pid: u32,
    pub start_time: u64,
}

impl ProcKey {
    pub fn of(p: &Proc) -> ProcKey {
        ProcKey { host: p.host.clone(), pid: p.pid, start_time: p.start_time }
    }

    pub fn is(&self, p: &Proc) -> bool {
        self.pid == p.pid && self.start_time == p.start_time && self.host == p.host
    }
}

/// A target as typed: `HOST:PID[@START]`; without a start time it is looked up before the kill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    pub host: String,
    pub pid: u32,
    pub start_time: Option<u64>,
}

impl std::str::FromStr for TargetSpec {
    type Err = ClientError;
    fn from_str(s: &str) -> Result<TargetSpec> {
        let Some((host, rest)) = s.rsplit_once(':') else {
            return Err(ClientError::input(format!("target '{s}' is not HOST:PID[@START]")));
        };
        if host.is_empty() {
            return Err(ClientError::input(format!("target '{s}' has no host")));
        }
        let (pid, start) = match rest.split_once('@') {
            Some((p, st)) => {
                let st = st.parse::<u64>().map_err(|_| ClientError::input(format!("target '{s}': start time '{st}' is not a number")))?;
                (p, Some(st))
            }
            None => (rest, None),
        };
        let pid = pid.parse::<u32>().map_err(|_| ClientError::input(format!("target '{s}': pid '{pid}' is not a number")))?;
        Ok(TargetSpec { host: host.to_string(), pid, start_time: start })
    }
}

/// The signals the process agent sends, in the order a menu offers them; TERM is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Signal {
    #[default]
    Term,
    Kill,
    Hup,
    Int,
    Quit,
    Usr1,
    Usr2,
    Stop,
    Cont,
    Chld,
}

impl Signal {
    pub const MENU: [Signal; 10] = [
        Signal::Term,
        Signal::Kill,
        Signal::Hup,
        Signal::Int,
        Signal::Quit,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Stop,
        Signal::Cont,
        Signal::Chld,
    ];

    /// The name the process agent takes (`TERM`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
            Signal::Hup => "HUP",
            Signal::Int => "INT",
            Signal::Quit => "QUIT",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
            Signal::Chld => "CHLD",
        }
    }

    /// What the signal usually does, for a menu.
    pub fn meaning(self) -> &'static str {
        match self {
            Signal::Term => "ask to terminate",
            Signal::Kill => "kill at once, no clean-up",
            Signal::Hup => "hang up / reload",
            Signal::Int => "interrupt, as ctrl-c",
            Signal::Quit => "quit with a core dump",
            Signal::Usr1 => "user signal 1",
            Signal::Usr2 => "user signal 2",
            Signal::Stop => "pause",
            Signal::Cont => "resume after STOP",
            Signal::Chld => "ask a parent to reap its children",
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

impl std::str::FromStr for Signal {
    type Err = ClientError;
    /// `TERM`, `term`, `SIGTERM`.
    fn from_str(s: &str) -> Result<Signal> {
        let name = s.trim().to_ascii_uppercase();
        let name = name.strip_prefix("SIG").unwrap_or(&name);
        Signal::MENU.into_iter().find(|sig| sig.name() == name).ok_or_else(|| {
            let all: Vec<&str> = Signal::MENU.iter().map(|s| s.name()).collect();
            ClientError::input(format!("unknown signal '{s}' (use one of {})", all.join(", ")))
        })
    }
}

/// What a node said about one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillOutcome {
    Signalled,
    PidReused,
    NoSuchProcess,
    PermissionDenied,
    /// Refused by the node (pid 1, noded itself), a failed reply, or no reply: the text says which.
    Other(String),
}

impl KillOutcome {
    /// The node's outcome text, as the process agent's DDL lists them.
    pub fn parse(text: &str) -> KillOutcome {
        match text {
            "signalled" => KillOutcome::Signalled,
            "pid reused" => KillOutcome::PidReused,
            "no such process" => KillOutcome::NoSuchProcess,
            "permission denied" => KillOutcome::PermissionDenied,
            other => KillOutcome::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for KillOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KillOutcome::Signalled => f.write_str("signalled"),
            KillOutcome::PidReused => f.write_str("pid reused"),
            KillOutcome::NoSuchProcess => f.write_str("no such process"),
            KillOutcome::PermissionDenied => f.write_str("permission denied"),
            KillOutcome::Other(text) => f.write_str(text),
        }
    }
}

/// One target's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillReport {
    pub key: ProcKey,
    pub outcome: KillOutcome,
}

impl Serialize for KillReport {
    /// `{host, pid, start_time, outcome}`, the shape `fleet kill --json` prints.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        json!({ "host": self.key.host, "pid": self.key.pid, "start_time": self.key.start_time, "outcome": self.outcome.to_string() })
            .serialize(s)
    }
}

/// What to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// Regex on the command line (or the name with `match_name`); empty is every process.
    pub pattern: String,
    pub zombies: bool,
    pub user: Option<String>,
    pub match_name: bool,
}

impl ListQuery {
    /// The list arguments for the process agent.
    pub fn args(&self) -> Map<String, Value> {
        let mut args = Map::new();
        args.insert("pattern".into(), json!(self.pattern));
        args.insert("zombies".into(), json!(self.zombies));
        args.insert("match_name".into(), json!(self.match_name));
        if let Some(u) = self.user.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            args.insert("user".into(), json!(u));
        }
        args.insert("fields".into(), json!(LIST_FIELDS));
        args
    }
}

/// One listing across the fleet.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listing {
    /// Sorted by host, then pid.
    pub procs: Vec<Proc>,
    pub hosts_asked: usize,
    pub hosts_answered: usize,
    /// (host, why) for each failed reply.
    pub failed: Vec<(String, String)>,
    pub no_reply: Vec<String>,
}

impl Listing {
    /// The listing a `process#list` round gives.
    pub fn of(outcome: &Outcome) -> Listing {
        Listing {
            procs: procs_of(outcome),
            hosts_asked: outcome.discovered.len(),
            hosts_answered: outcome.replies.len(),
            failed: failures(outcome),
            no_reply: outcome.no_reply.clone(),
        }
    }
}

/// Extracts the process rows of every OK reply.
pub fn procs_of(o: &Outcome) -> Vec<Proc> {
    let mut out = Vec::new();
    for r in o.replies.iter().filter(|r| r.reply.status.is_ok()) {
        for p in r.reply.data["processes"].as_array().into_iter().flatten() {
            if let Ok(mut proc_) = serde_json::from_value::<Proc>(p.clone()) {
                proc_.host = r.reply.sender.clone();
                out.push(proc_);
            }
        }
    }
    out.sort_by(|a, b| a.host.cmp(&b.host).then(a.pid.cmp(&b.pid)));
    out
}

/// (host, `status: message`) of every failed reply.
pub fn failures(o: &Outcome) -> Vec<(String, String)> {
    o.replies
        .iter()
        .filter(|r| !r.reply.status.is_ok())
        .map(|r| (r.reply.sender.clone(), format!("{}: {}", r.reply.status, r.reply.status_msg)))
        .collect()
}

/// This process and its ancestors up to init, as `(pid, start_time)` pairs read from `/proc`
/// (the start time in clock ticks since boot, as the process agent reports it). A listing never
/// shows them: `fleet pkill 'sleep 999'` must not find its own command line, or the shell that
/// runs it, among its targets (procps and mco behave so).
pub fn own_lineage() -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut pid = std::process::id();
    while pid > 1 && out.len() < 64 {
        let Some((ppid, start_time)) = stat_of(pid) else { break };
        out.push((pid, start_time));
        pid = ppid;
    }
    out
}

/// `(ppid, start_time)` from `/proc/PID/stat`; the fields after the command name, which may hold
/// spaces and parentheses, are read from its last `)`.
fn stat_of(pid: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 4 (ppid) and field 22 (starttime) of proc(5); `rest` starts at field 3.
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// Lists the matching processes on the nodes of `scope`, leaving out this process and its
/// ancestors ([`own_lineage`]). Returns the round too, for its exit code.
pub async fn list(
    client: &mut Client,
    settings: &Settings,
    scope: &Scope,
    query: &ListQuery,
    on: impl FnMut(&Progress),
) -> Result<(Outcome, Listing)> {
    let mut args = query.args();
    let (_, timeout) = crate::ddl::checked("process", "list", &mut args)?;
    let spec = settings.spec("process", "list", args, scope, timeout);
    let outcome = round::run(client, &spec, on).await?;
    let mut listing = Listing::of(&outcome);
    let lineage = own_lineage();
    listing.procs.retain(|p| !lineage.contains(&(p.pid, p.start_time)));
    Ok((outcome, listing))
}

/// How many processes whose name matches `pattern` (a regex, as `pgrep` takes it) each of
/// `hosts` runs, by host: one `process list` round that asks for nothing but the count. Hosts
/// that failed or did not answer are left out.
pub async fn count(client: &mut Client, settings: &Settings, hosts: Vec<String>, pattern: &str) -> Result<BTreeMap<String, u64>> {
    let mut args = ListQuery { pattern: pattern.to_string(), match_name: true, ..ListQuery::default() }.args();
    args.insert("fields".into(), json!("pid"));
    let (_, timeout) = crate::ddl::checked("process", "list", &mut args)?;
    let spec = settings.spec("process", "list", args, &Scope::nodes(hosts), timeout);
    let outcome = round::run(client, &spec, |_| {}).await?;
    Ok(outcome
        .replies
        .iter()
        .filter(|r| r.reply.status.is_ok())
        .filter_map(|r| Some((r.reply.sender.clone(), r.reply.data["matched"].as_u64()?)))
        .collect())
}

/// One `process kill` per host, each with exactly that host's `pid@start_time` targets. Every
/// target gets a report, also when its host failed, did not answer, or could not be asked.
pub async fn kill_exact(client: &mut Client, settings: &Settings, targets: &[ProcKey], signal: Signal) -> Result<Vec<KillReport>> {
    let mut by_host: BTreeMap<&str, Vec<&ProcKey>> = BTreeMap::new();
    for t in targets {
        by_host.entry(t.host.as_str()).or_default().push(t);
    }
    let mut reports = Vec::with_capacity(targets.len());
    for (host, keys) in by_host {
        let pairs: Vec<String> = keys.iter().map(|k| format!("{}@{}", k.pid, k.start_time)).collect();
        let mut args = Map::new();
        args.insert("targets".into(), json!(pairs.join(",")));
        args.insert("signal".into(), json!(signal.name()));
        let (_, timeout) = crate::ddl::checked("process", "kill", &mut args)?;
        let spec = settings.spec("process", "kill", args, &Scope::nodes(vec![host.to_string()]), timeout);
        let all = |outcome: KillOutcome| keys.iter().map(move |k| KillReport { key: (*k).clone(), outcome: outcome.clone() });
        match round::run(client, &spec, |_| {}).await {
            Ok(o) => match o.replies.first() {
                Some(r) if r.reply.status.is_ok() => {
                    let answered = reports_of(host, &r.reply.data);
                    // A target the node did not mention was not signalled.
                    for k in &keys {
                        let outcome = answered
                            .iter()
                            .find(|a| a.key == **k)
                            .map(|a| a.outcome.clone())
                            .unwrap_or_else(|| KillOutcome::Other("not in the node's reply".into()));
                        reports.push(KillReport { key: (*k).clone(), outcome });
                    }
                }
                Some(r) => reports.extend(all(KillOutcome::Other(format!("{}: {}", r.reply.status, r.reply.status_msg)))),
                None => reports.extend(all(KillOutcome::Other("no reply from the host".into()))),
            },
            Err(e) => reports.extend(all(KillOutcome::Other(format!("not sent: {e}")))),
        }
    }
    Ok(reports)
}

/// The `results` array of a kill reply.
fn reports_of(host: &str, data: &Value) -> Vec<KillReport> {
    data["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| KillReport {
            key: ProcKey {
                host: host.to_string(),
                pid: x["pid"].as_u64().unwrap_or(0) as u32,
                start_time: x["start_time"].as_u64().unwrap_or(0),
            },
            outcome: KillOutcome::parse(x["outcome"].as_str().unwrap_or("no outcome in the reply")),
        })
        .collect()
}

/// Resolves a typed target without a start time by listing its host: the kill then carries the
/// start time seen, so a pid reused in between is still refused. `None` when no such process.
pub async fn resolve(client: &mut Client, settings: &Settings, target: &TargetSpec) -> Result<Option<Proc>> {
    let scope = Scope::nodes(vec![target.host.clone()]);
    let (_, listing) = list(client, settings, &scope, &ListQuery::default(), |_| {}).await?;
    Ok(listing.procs.into_iter().find(|p| p.pid == target.pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t: TargetSpec = "web-01:123@456".parse().unwrap();
        assert_eq!(t, TargetSpec { host: "web-01".into(), pid: 123, start_time: Some(456) });
        assert_eq!("web-01:123".parse::<TargetSpec>().unwrap().start_time, None);
        assert!("web-01".parse::<TargetSpec>().is_err());
        assert!(":12".parse::<TargetSpec>().is_err());
        assert!("h:x@1".parse::<TargetSpec>().unwrap_err().to_string().contains("pid 'x'"));
    }

    #[test]
    fn signals_parse() {
        assert_eq!("SIGkill".parse::<Signal>().unwrap(), Signal::Kill);
        assert_eq!("term".parse::<Signal>().unwrap(), Signal::Term);
        assert!("BOGUS".parse::<Signal>().unwrap_err().to_string().contains("unknown signal 'BOGUS'"));
    }

    #[test]
    fn node_results_become_reports() {
        let data = json!({ "results": [
            { "pid": 10, "start_time": 99, "outcome": "signalled" },
            { "pid": 11, "start_time": 98, "outcome": "pid reused" },
            { "pid": 12, "start_time": 97, "outcome": "refused: pid 1 and the kernel are never signalled" },
        ]});
        let r = reports_of("web-01", &data);
        assert_eq!(r[0], KillReport { key: ProcKey { host: "web-01".into(), pid: 10, start_time: 99 }, outcome: KillOutcome::Signalled });
        assert_eq!(r[1].outcome, KillOutcome::PidReused);
        assert_eq!(r[2].outcome.to_string(), "refused: pid 1 and the kernel are never signalled");
        let v = serde_json::to_value(&r[1]).unwrap();
        assert_eq!(v, json!({"host": "web-01", "pid": 11, "start_time": 98, "outcome": "pid reused"}));
    }

    #[test]
    fn the_ddl_accepts_what_is_sent() {
        let q = ListQuery { pattern: "sleep 98765".into(), zombies: true, user: Some("root".into()), match_name: false };
        crate::ddl::checked("process", "list", &mut q.args()).unwrap();
        for s in Signal::MENU {
            let mut args = Map::new();
            args.insert("targets".into(), json!("10@99,11@98"));
            args.insert("signal".into(), json!(s.name()));
            crate::ddl::checked("process", "kill", &mut args).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    }

    #[test]
    fn the_lineage_starts_with_this_process() {
        let lineage = own_lineage();
        assert_eq!(lineage.first().map(|l| l.0), Some(std::process::id()));
        assert!(lineage.len() >= 2, "at least this process and its parent: {lineage:?}");
        assert!(lineage.iter().all(|(_, start)| *start > 0));
    }

    #[test]
    fn list_args_carry_the_fields() {
        let q = ListQuery { pattern: "nginx".into(), user: Some(" ".into()), ..ListQuery::default() };
        let a = q.args();
        assert_eq!(a["pattern"], "nginx");
        assert!(a.get("user").is_none());
        assert_eq!(a["fields"], LIST_FIELDS);
    }
}
