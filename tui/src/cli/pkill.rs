//! `fleet pkill PATTERN`: list the matching processes, show the exact targets, have the admin type
//! their count, then signal exactly those `pid@start_time` pairs.

use std::io::{BufRead, Write};

use anyhow::Result;
use fleet_client::process::{self, ListQuery, ProcKey, Signal};
use fleet_client::{ClientError, exit};

use super::args::ResultArgs;
use super::{Ctx, FilterArgs, OutputArgs};

pub struct Options {
    /// Signal the parents of the matched zombies instead of the matches.
    pub parents: bool,
    pub signal: String,
    /// No confirmation (scripts).
    pub yes: bool,
}

/// One target with what the confirmation shows of it.
struct Target {
    key: ProcKey,
    user: String,
    command: String,
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

pub async fn run(ctx: &Ctx, query: &ListQuery, opts: &Options, f: &FilterArgs, out: &OutputArgs, results: &ResultArgs) -> Result<i32> {
    let signal: Signal = opts.signal.parse()?;
    if query.pattern.is_empty() && !query.zombies {
        return Err(ClientError::input("pkill needs a pattern (use '.' to mean every process, knowingly)").into());
    }
    let (o, _, _, listing) = super::pgrep::list(ctx, f, query, !out.json, results).await?;
    let mut targets: Vec<Target> = Vec::new();
    let mut skipped_zombies = 0;
    for p in &listing.procs {
        if p.zombie {
            if !opts.parents {
                skipped_zombies += 1;
                continue;
            }
            if let (Some(pp), Some(pst)) = (p.parent_pid, p.parent_start_time)
                && !targets.iter().any(|t| t.key.host == p.host && t.key.pid == pp)
            {
                let cmd = p.parent_cmdline.clone().unwrap_or_default();
                let key = ProcKey { host: p.host.clone(), pid: pp, start_time: pst };
                targets.push(Target { key, user: String::new(), command: format!("{cmd}  (parent of zombie {})", p.pid) });
            }
        } else if !opts.parents {
            targets.push(Target { key: ProcKey::of(p), user: p.user.clone(), command: p.cmdline.clone() });
        }
    }
    if targets.is_empty() {
        if skipped_zombies > 0 {
            eprintln!("fleet: {skipped_zombies} zombie(s) matched; zombies cannot be killed. Use --parents to signal their parents.");
        } else {
            eprintln!("fleet: no process matched on {} host(s)", o.replies.len());
        }
        return Ok(if o.discovered.is_empty() { exit::NOTHING_DISCOVERED } else { exit::SOME_FAILED });
    }
    if !out.json || !opts.yes {
        eprintln!("These {} process(es) will get {signal}:\n", targets.len());
        for t in &targets {
            eprintln!("  {:<24} {:>7}@{:<12} {:<10} {}", t.key.host, t.key.pid, t.key.start_time, t.user, t.command);
        }
        eprintln!();
    }
    // A pipe may carry the typed count too; an empty or closed stdin cancels.
    if !opts.yes && !confirm(targets.len()) {
        eprintln!("fleet: cancelled; nothing was sent, nothing was killed");
        return Ok(exit::NOTHING_SENT);
    }
    let keys: Vec<ProcKey> = targets.into_iter().map(|t| t.key).collect();
    let mut client = ctx.client().await?;
    let reports = process::kill_exact(&mut client, &ctx.settings, &keys, signal).await?;
    super::kill::print_reports(&reports, out.json)
}
