//! Process hunting from the command line: `fleet pgrep`, `fleet kill`, `fleet pkill`.
//!
//! There is no pattern kill on the nodes. `pkill` lists, shows the exact targets, asks the admin
//! to type their count, then kills exactly those `(pid, start_time)` pairs — a PID that was reused
//! in between is refused by the node.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::cli::{FilterArgs, OutputArgs};
use crate::commands::{Bar, Ctx, EXIT_NOTHING};
use crate::request::{self, Outcome};

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

/// Bytes as an admin reads them.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{b} B") } else { format!("{v:.1} {}", UNITS[u]) }
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

/// The list arguments for the process agent.
pub fn list_args(pattern: &str, zombies: bool, user: Option<&str>, match_name: bool) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("pattern".into(), json!(pattern));
    args.insert("zombies".into(), json!(zombies));
    args.insert("match_name".into(), json!(match_name));
    if let Some(u) = user {
        args.insert("user".into(), json!(u));
    }
    // Everything the table, the totals and kill need; the thread count costs a /proc read per row.
    args.insert(
        "fields".into(),
        json!("pid,ppid,user,state,rss,vsz,cpu,start_time,started,name,cmdline,zombie,parent_pid,parent_start_time,parent_cmdline"),
    );
    args
}

async fn list(ctx: &Ctx, f: &FilterArgs, args: Map<String, Value>, bar_on: bool) -> Result<(Outcome, Vec<Proc>)> {
    let ddl = crate::commands::find_ddl("process")?;
    let mut args = args;
    fleet_ddl::validate_request(&ddl, "list", &mut args)?;
    let spec = ctx.spec("process", "list", args, f, ddl.metadata.timeout);
    let mut client = ctx.client(false).await?;
    let bar = Bar::new(bar_on);
    let o = request::run(&mut client, &spec, |p| bar.on(p)).await;
    bar.finish();
    let o = o?;
    let procs = procs_of(&o);
    Ok((o, procs))
}

fn print_table(procs: &[Proc]) {
    let hw = procs.iter().map(|p| p.host.len()).max().unwrap_or(4).max(4);
    let uw = procs.iter().map(|p| p.user.len()).max().unwrap_or(4).clamp(4, 16);
    for p in procs {
        println!("{:<hw$} {:<uw$} {:>7} {:>10} {:>10}  {}", p.host, p.user, p.pid, human_bytes(p.rss), human_bytes(p.vsz), p.cmdline);
        if p.zombie {
            println!(
                "{:<hw$} {:<uw$} {:>7}   zombie: reaped only by its parent {}@{} {}",
                "",
                "",
                "",
                p.parent_pid.unwrap_or(0),
                p.parent_start_time.unwrap_or(0),
                p.parent_cmdline.clone().unwrap_or_default()
            );
        }
    }
}

/// mc-pgrep's totals block, plus how many hosts answered and which failed.
pub fn totals_text(o: &Outcome, procs: &[Proc]) -> String {
    use std::fmt::Write as _;
    let hosts: std::collections::BTreeSet<&str> = procs.iter().map(|p| p.host.as_str()).collect();
    let rss: u64 = procs.iter().map(|p| p.rss).sum();
    let vsz: u64 = procs.iter().map(|p| p.vsz).sum();
    let mut t = String::new();
    let _ = writeln!(t, "\n   ---- process list stats ----");
    let _ = writeln!(t, "        Matched hosts: {}", hosts.len());
    let _ = writeln!(t, "    Matched processes: {}", procs.len());
    let _ = writeln!(t, "        Resident Size: {}", human_bytes(rss));
    let _ = writeln!(t, "         Virtual Size: {}", human_bytes(vsz));
    let _ = writeln!(t, "       Hosts answered: {} of {}", o.replies.len(), o.discovered.len());
    for r in o.replies.iter().filter(|r| !r.reply.status.is_ok()) {
        let _ = writeln!(t, "   {}: {}: {}", r.reply.sender, r.reply.status, r.reply.status_msg);
    }
    if !o.no_reply.is_empty() {
        let _ = writeln!(t, "       No reply from: {}", o.no_reply.join(", "));
    }
    t
}

fn print_totals(o: &Outcome, procs: &[Proc]) {
    print!("{}", totals_text(o, procs));
}

pub async fn pgrep(
    ctx: &Ctx,
    pattern: &str,
    zombies: bool,
    user: Option<&str>,
    match_name: bool,
    f: &FilterArgs,
    out: &OutputArgs,
) -> Result<i32> {
    let args = list_args(pattern, zombies, user, match_name);
    let (o, procs) = match list(ctx, f, args, !out.json && !out.jsonl).await {
        Ok(x) => x,
        Err(e) if e.downcast_ref::<fleet_ddl::ValidationError>().is_some() => {
            eprintln!("fleet: {e}\nfleet: nothing was sent");
            return Ok(EXIT_NOTHING);
        }
        Err(e) => return Err(e),
    };
    if out.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "processes": procs, "hosts_answered": o.replies.len(), "hosts_asked": o.discovered.len(), "no_reply": o.no_reply,
                "failed": o.replies.iter().filter(|r| !r.reply.status.is_ok()).map(|r| json!({"host": r.reply.sender, "status": r.reply.status, "status_msg": r.reply.status_msg})).collect::<Vec<_>>(),
            }))?
        );
    } else if out.jsonl {
        for p in &procs {
            println!("{}", serde_json::to_string(p)?);
        }
    } else {
        print_table(&procs);
        print_totals(&o, &procs);
        if zombies && !procs.is_empty() {
            println!("\n   Zombies are reaped by their parents: fleet pkill -z --parents -s CHLD {pattern:?} (then -s TERM)");
        }
    }
    Ok(o.exit_code())
}

/// One kill target: which host, which process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub host: String,
    pub pid: u32,
    pub start_time: Option<u64>,
}

/// Parses `HOST:PID[@START]`.
pub fn parse_target(s: &str) -> Result<Target> {
    let Some((host, rest)) = s.rsplit_once(':') else { bail!("target '{s}' is not HOST:PID[@START]") };
    if host.is_empty() {
        bail!("target '{s}' has no host");
    }
    let (pid, start) = match rest.split_once('@') {
        Some((p, st)) => (p, Some(st.parse::<u64>().map_err(|_| anyhow::anyhow!("target '{s}': start time '{st}' is not a number"))?)),
        None => (rest, None),
    };
    let pid = pid.parse::<u32>().map_err(|_| anyhow::anyhow!("target '{s}': pid '{pid}' is not a number"))?;
    Ok(Target { host: host.to_string(), pid, start_time: start })
}

/// The per-target outcome reported by a node.
#[derive(Debug, Clone, Serialize)]
pub struct KillResult {
    pub host: String,
    pub pid: u32,
    pub start_time: u64,
    pub outcome: String,
}

/// Sends one kill per host with exactly the given targets.
pub async fn kill_exact(ctx: &Ctx, targets: &[(String, u32, u64)], signal: &str) -> Result<Vec<KillResult>> {
    let ddl = crate::commands::find_ddl("process")?;
    let mut by_host: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (h, pid, st) in targets {
        by_host.entry(h.as_str()).or_default().push(format!("{pid}@{st}"));
    }
    let mut client = ctx.client(false).await?;
    let mut results = Vec::new();
    for (host, list) in by_host {
        let mut args = Map::new();
        args.insert("targets".into(), json!(list.join(",")));
        args.insert("signal".into(), json!(signal));
        fleet_ddl::validate_request(&ddl, "kill", &mut args)?;
        let mut spec = ctx.spec("process", "kill", args, &FilterArgs::default(), ddl.metadata.timeout);
        spec.targets = Some(vec![host.to_string()]);
        let o = request::run(&mut client, &spec, |_| {}).await?;
        match o.replies.first() {
            Some(r) if r.reply.status.is_ok() => {
                for x in r.reply.data["results"].as_array().into_iter().flatten() {
                    results.push(KillResult {
                        host: host.to_string(),
                        pid: x["pid"].as_u64().unwrap_or(0) as u32,
                        start_time: x["start_time"].as_u64().unwrap_or(0),
                        outcome: x["outcome"].as_str().unwrap_or("?").to_string(),
                    });
                }
            }
            Some(r) => {
                for t in &list {
                    let (p, s) = t.split_once('@').unwrap_or((t, "0"));
                    results.push(KillResult {
                        host: host.into(),
                        pid: p.parse().unwrap_or(0),
                        start_time: s.parse().unwrap_or(0),
                        outcome: format!("{}: {}", r.reply.status, r.reply.status_msg),
                    });
                }
            }
            None => {
                for t in &list {
                    let (p, s) = t.split_once('@').unwrap_or((t, "0"));
                    results.push(KillResult {
                        host: host.into(),
                        pid: p.parse().unwrap_or(0),
                        start_time: s.parse().unwrap_or(0),
                        outcome: "no reply from host".into(),
                    });
                }
            }
        }
    }
    Ok(results)
}

fn print_results(results: &[KillResult], json_out: bool) -> Result<i32> {
    let failed = results.iter().filter(|r| r.outcome != "signalled").count();
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "results": results, "signalled": results.len() - failed, "failed": failed }))?
        );
    } else {
        for r in results {
            println!("{:<30} {:>7}@{:<12} {}", r.host, r.pid, r.start_time, r.outcome);
        }
        println!("\n{} signalled, {} not", results.len() - failed, failed);
    }
    Ok(if failed == 0 { 0 } else { 2 })
}

fn check_signal(signal: &str) -> Result<String> {
    let s = signal.trim_start_matches("SIG").to_ascii_uppercase();
    const OK: &[&str] = &["TERM", "KILL", "HUP", "INT", "QUIT", "USR1", "USR2", "STOP", "CONT", "CHLD"];
    if !OK.contains(&s.as_str()) {
        bail!("unknown signal '{signal}' (use one of {})", OK.join(", "));
    }
    Ok(s)
}

pub async fn kill(ctx: &Ctx, targets: &[String], signal: &str, out: &OutputArgs) -> Result<i32> {
    let signal = match check_signal(signal) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fleet: {e}\nfleet: nothing was sent");
            return Ok(EXIT_NOTHING);
        }
    };
    let mut parsed = Vec::new();
    for t in targets {
        match parse_target(t) {
            Ok(t) => parsed.push(t),
            Err(e) => {
                eprintln!("fleet: {e}\nfleet: nothing was sent");
                return Ok(EXIT_NOTHING);
            }
        }
    }
    // A target without a start time is resolved with a list on its host first; the kill then
    // carries the start time seen, so a PID reused in between is still refused.
    let mut exact = Vec::new();
    for t in &parsed {
        match t.start_time {
            Some(st) => exact.push((t.host.clone(), t.pid, st)),
            None => {
                let f = FilterArgs { identity: vec![t.host.clone()], ..Default::default() };
                let (_, procs) = list(ctx, &f, list_args("", false, None, false), false).await?;
                match procs.iter().find(|p| p.pid == t.pid) {
                    Some(p) => {
                        eprintln!("fleet: {}:{} is {}@{} ({}: {})", t.host, t.pid, p.pid, p.start_time, p.user, p.cmdline);
                        exact.push((t.host.clone(), p.pid, p.start_time));
                    }
                    None => {
                        eprintln!("fleet: {}:{}: no such process", t.host, t.pid);
                    }
                }
            }
        }
    }
    if exact.is_empty() {
        return Ok(2);
    }
    let results = kill_exact(ctx, &exact, &signal).await?;
    print_results(&results, out.json)
}

/// Reads the confirmation: the admin must type the number of targets.
fn confirm(count: usize) -> bool {
    eprint!("Type the number of targets ({count}) to send the signal, anything else cancels: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    line.trim() == count.to_string()
}

#[allow(clippy::too_many_arguments)]
pub async fn pkill(
    ctx: &Ctx,
    pattern: &str,
    zombies: bool,
    user: Option<&str>,
    match_name: bool,
    parents: bool,
    signal: &str,
    yes: bool,
    f: &FilterArgs,
    out: &OutputArgs,
) -> Result<i32> {
    let signal = match check_signal(signal) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fleet: {e}\nfleet: nothing was sent");
            return Ok(EXIT_NOTHING);
        }
    };
    if pattern.is_empty() && !zombies {
        eprintln!("fleet: pkill needs a pattern (use '.' to mean every process, knowingly)\nfleet: nothing was sent");
        return Ok(EXIT_NOTHING);
    }
    let (o, procs) = list(ctx, f, list_args(pattern, zombies, user, match_name), !out.json).await?;
    let mut targets: Vec<(String, u32, u64, String, String)> = Vec::new();
    let mut skipped_zombies = 0;
    for p in &procs {
        if p.zombie {
            if parents {
                if let (Some(pp), Some(pst)) = (p.parent_pid, p.parent_start_time) {
                    let cmd = p.parent_cmdline.clone().unwrap_or_default();
                    if !targets.iter().any(|t| t.0 == p.host && t.1 == pp) {
                        targets.push((p.host.clone(), pp, pst, String::new(), format!("{cmd}  (parent of zombie {})", p.pid)));
                    }
                }
            } else {
                skipped_zombies += 1;
            }
        } else if !parents {
            targets.push((p.host.clone(), p.pid, p.start_time, p.user.clone(), p.cmdline.clone()));
        }
    }
    if targets.is_empty() {
        if skipped_zombies > 0 {
            eprintln!("fleet: {skipped_zombies} zombie(s) matched; zombies cannot be killed. Use --parents to signal their parents.");
        } else {
            eprintln!("fleet: no process matched on {} host(s)", o.replies.len());
        }
        return Ok(if o.discovered.is_empty() { 1 } else { 2 });
    }
    if !out.json || !yes {
        eprintln!("These {} process(es) will get SIG{signal}:\n", targets.len());
        for (h, pid, st, user, cmd) in &targets {
            eprintln!("  {h:<24} {pid:>7}@{st:<12} {user:<10} {cmd}");
        }
        eprintln!();
    }
    if !yes {
        // A pipe may carry the typed count too; an empty or closed stdin cancels.
        if !confirm(targets.len()) {
            eprintln!("fleet: cancelled; nothing was killed");
            return Ok(1);
        }
    }
    let exact: Vec<(String, u32, u64)> = targets.iter().map(|t| (t.0.clone(), t.1, t.2)).collect();
    let results = kill_exact(ctx, &exact, &signal).await?;
    print_results(&results, out.json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(parse_target("web-01:123@456").unwrap(), Target { host: "web-01".into(), pid: 123, start_time: Some(456) });
        assert_eq!(parse_target("web-01:123").unwrap().start_time, None);
        assert!(parse_target("web-01").is_err());
        assert!(parse_target(":12").is_err());
        assert!(parse_target("h:x@1").unwrap_err().to_string().contains("pid 'x'"));
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn signals_are_checked() {
        assert_eq!(check_signal("SIGkill").unwrap(), "KILL");
        assert!(check_signal("BOGUS").is_err());
    }
}
