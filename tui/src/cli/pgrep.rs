//! `fleet pgrep`: the matching processes of the fleet in mc-pgrep's layout, with its totals.

use std::fmt::Write as _;

use anyhow::Result;
use fleet_client::format::human_bytes;
use fleet_client::process::{self, ListQuery, Listing, Proc};
use serde_json::json;

use super::args::ResultArgs;
use super::output::Bar;
use super::{Ctx, FilterArgs, OutputArgs};

/// Lists with the progress bar when asked for. The listing keeps the rows of the hosts whose
/// replies `--filter-replies` matches, and the identity files are written. Returns the round (with
/// only those replies), its exit code, how many replies were left out, and the listing.
pub async fn list(
    ctx: &Ctx,
    f: &FilterArgs,
    query: &ListQuery,
    bar: bool,
    results: &ResultArgs,
) -> Result<(fleet_client::Outcome, i32, usize, Listing)> {
    let keep = results.reply_filter()?;
    let scope = f.scope();
    let mut client = ctx.client().await?;
    let bar = Bar::new(bar).staged(scope.rollout.clone());
    let r = process::list(&mut client, &ctx.settings, &scope, query, |p| bar.on(p)).await;
    bar.finish();
    let (mut o, mut listing) = r?;
    let code = o.exit_code();
    let hidden = results.apply(keep.as_ref(), &mut o)?;
    if hidden > 0 {
        let kept: std::collections::BTreeSet<&str> = o.replies.iter().map(|r| r.reply.sender.as_str()).collect();
        listing.procs.retain(|p| kept.contains(p.host.as_str()));
        listing.failed.retain(|(host, _)| kept.contains(host.as_str()));
    }
    Ok((o, code, hidden, listing))
}

pub async fn run(ctx: &Ctx, query: &ListQuery, targets: bool, f: &FilterArgs, out: &OutputArgs, results: &ResultArgs) -> Result<i32> {
    let (o, code, hidden, listing) = list(ctx, f, query, !out.json && !out.jsonl && !targets, results).await?;
    let procs = &listing.procs;
    if targets {
        for p in procs.iter().filter(|p| !p.zombie) {
            println!("{}:{}@{}", p.host, p.pid, p.start_time);
        }
    } else if out.json {
        let failed: Vec<_> = o
            .replies
            .iter()
            .filter(|r| !r.reply.status.is_ok())
            .map(|r| json!({"host": r.reply.sender, "status": r.reply.status, "status_msg": r.reply.status_msg}))
            .collect();
        let doc = json!({
            "processes": procs, "hosts_answered": listing.hosts_answered, "hosts_asked": listing.hosts_asked,
            "no_reply": listing.no_reply, "failed": failed, "rollout": o.rollout,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if out.jsonl {
        for p in procs {
            println!("{}", serde_json::to_string(p)?);
        }
    } else {
        print_table(procs);
        print!("{}", totals_text(&listing));
        if query.zombies && !procs.is_empty() {
            println!("\n   Zombies are reaped by their parents: fleet pkill -z --parents -s CHLD {:?} (then -s TERM)", query.pattern);
        }
        super::results::print_rollout(&o, hidden);
    }
    Ok(code)
}

pub fn print_table(procs: &[Proc]) {
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
pub fn totals_text(listing: &Listing) -> String {
    let procs = &listing.procs;
    let hosts: std::collections::BTreeSet<&str> = procs.iter().map(|p| p.host.as_str()).collect();
    let rss: u64 = procs.iter().map(|p| p.rss).sum();
    let vsz: u64 = procs.iter().map(|p| p.vsz).sum();
    let mut t = String::new();
    let _ = writeln!(t, "\n   ---- process list stats ----");
    let _ = writeln!(t, "        Matched hosts: {}", hosts.len());
    let _ = writeln!(t, "    Matched processes: {}", procs.len());
    let _ = writeln!(t, "        Resident Size: {}", human_bytes(rss));
    let _ = writeln!(t, "         Virtual Size: {}", human_bytes(vsz));
    let _ = writeln!(t, "       Hosts answered: {} of {}", listing.hosts_answered, listing.hosts_asked);
    for (host, why) in &listing.failed {
        let _ = writeln!(t, "   {host}: {why}");
    }
    if !listing.no_reply.is_empty() {
        let _ = writeln!(t, "       No reply from: {}", listing.no_reply.join(", "));
    }
    t
}
