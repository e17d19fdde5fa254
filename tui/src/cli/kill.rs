//! `fleet kill HOST:PID[@START]...`: signal exact processes; a target without its start time is
//! looked up first, and the kill carries the start time seen.

use anyhow::Result;
use fleet_client::process::{self, KillOutcome, KillReport, ProcKey, Signal, TargetSpec};
use fleet_client::{ClientError, exit};
use serde_json::json;

use super::{Ctx, OutputArgs};

pub async fn run(ctx: &Ctx, targets: &[String], signal: &str, out: &OutputArgs) -> Result<i32> {
    let signal: Signal = signal.parse()?;
    let parsed = targets.iter().map(|t| t.parse::<TargetSpec>()).collect::<Result<Vec<_>, ClientError>>()?;
    let mut client = ctx.client().await?;
    let mut exact = Vec::new();
    for t in &parsed {
        match t.start_time {
            Some(start_time) => exact.push(ProcKey { host: t.host.clone(), pid: t.pid, start_time }),
            None => match process::resolve(&mut client, &ctx.settings, t).await? {
                Some(p) => {
                    eprintln!("fleet: {}:{} is {}@{} ({}: {})", t.host, t.pid, p.pid, p.start_time, p.user, p.cmdline);
                    exact.push(ProcKey::of(&p));
                }
                None => eprintln!("fleet: {}:{}: no such process", t.host, t.pid),
            },
        }
    }
    if exact.is_empty() {
        return Ok(exit::SOME_FAILED);
    }
    let reports = process::kill_exact(&mut client, &ctx.settings, &exact, signal).await?;
    print_reports(&reports, out.json)
}

/// Every target's outcome, then the count; exit 2 when any target was not signalled.
pub fn print_reports(reports: &[KillReport], json_out: bool) -> Result<i32> {
    let failed = reports.iter().filter(|r| r.outcome != KillOutcome::Signalled).count();
    if json_out {
        let doc = json!({ "results": reports, "signalled": reports.len() - failed, "failed": failed });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for r in reports {
            println!("{:<30} {:>7}@{:<12} {}", r.key.host, r.key.pid, r.key.start_time, r.outcome);
        }
        println!("\n{} signalled, {} not", reports.len() - failed, failed);
    }
    Ok(if failed == 0 { exit::OK } else { exit::SOME_FAILED })
}
