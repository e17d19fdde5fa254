//! `fleet xen migrate NAME DEST`: find where the domU runs, show what moves where, have the admin
//! type its name, migrate, then say where it runs now.

use std::io::{BufRead, Write};

use anyhow::Result;
use fleet_client::format::{last_line, mib};
use fleet_client::{Scope, exit, xen};
use serde_json::json;

use super::super::output::Bar;
use super::super::{Ctx, FilterArgs, OutputArgs};

/// Reads the confirmation: the admin must type the domU's name.
fn confirm_name(name: &str) -> bool {
    eprint!("Type the domU's name ({name}) to migrate it, anything else cancels: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    line.trim() == name
}

pub async fn run(ctx: &Ctx, name: &str, dest: &str, yes: bool, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let mut args = xen::domain_args(name);
    args.insert("destination".into(), json!(dest));
    fleet_client::ddl::checked("xen", "migrate", &mut args)?;
    let mut client = ctx.client().await?;
    let bar = Bar::new(!out.json);
    let found = xen::find(&mut client, &ctx.settings, &f.scope(), name, |p| bar.on(p)).await;
    bar.finish();
    let found = found?;
    let o = &found.outcome;
    let dom0s: Vec<&str> = o.replies.iter().filter(|r| r.reply.status.is_ok()).map(|r| r.reply.sender.as_str()).collect();
    let refuse = |why: String| -> Result<i32> {
        eprintln!("fleet: {why}\nfleet: nothing was migrated");
        Ok(exit::NOTHING_SENT)
    };
    let (from, row) = match found.on.as_slice() {
        [] if o.discovered.is_empty() => return refuse("no dom0 matched (no node with the xen agent)".into()),
        [] => {
            let missing = if o.no_reply.is_empty() { String::new() } else { format!("; no reply from {}", o.no_reply.join(", ")) };
            return refuse(format!("{name} runs on none of the {} dom0(s) asked{missing}", o.discovered.len()));
        }
        [one] => one.clone(),
        many => {
            let hosts: Vec<&str> = many.iter().map(|(h, _)| h.as_str()).collect();
            return refuse(format!("{name} is listed on {} dom0s at once ({}); sort that out first", hosts.len(), hosts.join(", ")));
        }
    };
    if from == dest {
        return refuse(format!("{name} already runs on {dest}"));
    }
    if !dom0s.contains(&dest) {
        let mut known: Vec<&str> = dom0s.clone();
        known.sort();
        return refuse(format!("{dest} is not a dom0 that answered (dom0s: {})", known.join(", ")));
    }
    if !out.json || !yes {
        eprintln!("This will live-migrate one domU:\n");
        eprintln!("  domU   {name}  ({}, {} vCPU(s), state {}, {:.1} s of CPU)", mib(row.mem), row.vcpus, row.state, row.cpu_time);
        eprintln!("  from   {from}");
        eprintln!("  to     {dest}  (the address comes from {from}'s xen_host_map, else the name itself)\n");
    }
    if !yes && !confirm_name(name) {
        eprintln!("fleet: cancelled; nothing was migrated (nothing was sent)");
        return Ok(exit::NOTHING_SENT);
    }
    if !out.json {
        eprintln!("migrating {name} from {from} to {dest} ...");
    }
    let result = xen::migrate_one(&mut client, &ctx.settings, name, &from, dest, "").await?;
    // Where does it run now? Asked of both ends only.
    let both_ends = Scope::nodes(vec![from.clone(), dest.to_string()]);
    let now = xen::find(&mut client, &ctx.settings, &both_ends, name, |_| {}).await;
    let now_on: Vec<String> = now.map(|f| f.on.into_iter().map(|(h, _)| h).collect()).unwrap_or_default();
    if out.json || out.jsonl {
        let doc = json!({ "result": result, "now_on": now_on });
        if out.json { println!("{}", serde_json::to_string_pretty(&doc)?) } else { println!("{doc}") }
    } else if result.success {
        println!("{name}: migrated from {from} to {dest} in {:.1} s ({})", result.elapsed_s, last_line(&result.message));
        println!(
            "{name} now runs on {}",
            if now_on.is_empty() { "(not found: check with fleet xen find)".into() } else { now_on.join(", ") }
        );
    } else {
        println!("{name}: migration from {from} to {dest} FAILED:\n{}", result.message);
    }
    Ok(if result.success { exit::OK } else { exit::SOME_FAILED })
}
