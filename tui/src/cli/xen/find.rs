//! `fleet xen find NAME`: which dom0 runs a domU.

use anyhow::Result;
use fleet_client::exit;
use fleet_client::format::mib;
use fleet_client::xen;
use serde_json::{Value, json};

use super::super::output::Bar;
use super::super::{Ctx, FilterArgs, OutputArgs};

pub async fn run(ctx: &Ctx, name: &str, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let mut client = ctx.client().await?;
    let bar = Bar::new(!out.json && !out.jsonl);
    let found = xen::find(&mut client, &ctx.settings, &f.scope(), name, |p| bar.on(p)).await;
    bar.finish();
    let found = found?;
    let o = &found.outcome;
    let code = if found.on.is_empty() {
        exit::NOTHING_DISCOVERED
    } else if !found.failed.is_empty() || !o.no_reply.is_empty() {
        exit::SOME_FAILED
    } else {
        exit::OK
    };
    if out.json || out.jsonl {
        let doc = json!({
            "domain": name,
            "found_on": found.on.iter().map(|(h, _)| h).collect::<Vec<_>>(),
            "domu": found.on.first().map(|(_, r)| json!(r)).unwrap_or(Value::Null),
            "asked": o.discovered,
            "failed": found.failed.iter().map(|(h, w)| json!({"host": h, "error": w})).collect::<Vec<_>>(),
            "no_reply": o.no_reply,
        });
        if out.json {
            println!("{}", serde_json::to_string_pretty(&doc)?)
        } else {
            println!("{doc}")
        }
        return Ok(code);
    }
    if o.discovered.is_empty() {
        println!("No dom0 matched (no node with the xen agent)");
        return Ok(exit::NOTHING_DISCOVERED);
    }
    match found.on.as_slice() {
        [] => println!("{name} runs on none of the {} dom0(s) asked", o.discovered.len()),
        hits => {
            for (host, r) in hits {
                println!(
                    "{name} runs on {host}  (id {}, {}, {} vCPU(s), state {}, {:.1} s of CPU)",
                    r.id,
                    mib(r.mem),
                    r.vcpus,
                    r.state,
                    r.cpu_time
                );
            }
            if hits.len() > 1 {
                println!("warning: {name} is listed on {} dom0s at once", hits.len());
            }
        }
    }
    super::print_failures(&found.failed, &o.no_reply);
    Ok(code)
}
