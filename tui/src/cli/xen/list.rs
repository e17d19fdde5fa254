//! `fleet xen list`: every dom0 with its load, memory and domUs.

use anyhow::Result;
use fleet_client::exit;
use fleet_client::format::mib;
use fleet_client::xen::{self, PlacedDomu};

use super::super::output::Bar;
use super::super::{Ctx, FilterArgs, OutputArgs};

pub async fn run(ctx: &Ctx, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let mut client = ctx.client().await?;
    let bar = Bar::new(!out.json && !out.jsonl);
    let view = xen::gather(&mut client, &ctx.settings, &f.scope(), |p| bar.on(p)).await;
    bar.finish();
    let view = view?;
    let failed = view.dom0s.iter().filter(|d| d.error.is_some()).count();
    let code = if view.dom0s.is_empty() && view.no_reply.is_empty() {
        exit::NOTHING_DISCOVERED
    } else if failed > 0 || !view.no_reply.is_empty() {
        exit::SOME_FAILED
    } else {
        exit::OK
    };
    if out.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(code);
    }
    if out.jsonl {
        for d in &view.domus {
            println!("{}", serde_json::to_string(d)?);
        }
        return Ok(code);
    }
    if view.dom0s.is_empty() && view.no_reply.is_empty() {
        println!("No dom0 matched (no node with the xen agent)");
        return Ok(code);
    }
    let nw = view.domus.iter().map(|d| d.domu.name.len()).max().unwrap_or(4).max(4);
    for d in &view.dom0s {
        let sim = if d.simulated { "  [simulated hypervisor]" } else { "" };
        if let Some(e) = &d.error
            && d.total_memory == 0
            && d.domu_count == 0
        {
            println!("{}  {e}", d.name);
            continue;
        }
        println!(
            "{}  load {:.2} {:.2} {:.2}  {} CPUs  memory {} free of {}  {} domU(s){sim}",
            d.name,
            d.load[0],
            d.load[1],
            d.load[2],
            d.nr_cpus,
            mib(d.free_memory),
            mib(d.total_memory),
            d.domu_count
        );
        if let Some(e) = &d.error {
            println!("   ! {e}");
        }
        let rows: Vec<&PlacedDomu> = view.domus.iter().filter(|p| p.dom0 == d.name).collect();
        if rows.is_empty() {
            continue;
        }
        println!("   {:<nw$} {:>5} {:>8} {:>5}  {:<6} {:>10}", "NAME", "ID", "MEM", "VCPUS", "STATE", "TIME(s)");
        for p in rows {
            let r = &p.domu;
            println!("   {:<nw$} {:>5} {:>8} {:>5}  {:<6} {:>10.1}", r.name, r.id, mib(r.mem), r.vcpus, r.state, r.cpu_time);
        }
    }
    let total: usize = view.dom0s.iter().map(|d| d.domu_count).sum();
    println!("\n{} dom0(s), {total} domU(s)", view.dom0s.len());
    super::print_failures(&[], &view.no_reply);
    Ok(code)
}
