//! `fleet xen balance`: sample every dom0, ask the balancer for a plan, print it with its reasons,
//! the rules that decided and the rejections; `--apply` carries it out, `--watch` keeps going
//! every interval until ctrl-c. A policy with `[rules]` also gathers what they read (facts,
//! memory, domU rows) before each decision.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use fleet_client::format::last_line;
use fleet_client::xen::balancer::{self, BalancerPolicy, Observations, PastMigration, Plan};
use fleet_client::xen::{self, MigrationResult, history};
use fleet_client::{Client, ClientError, Scope, Settings, exit};
use serde_json::json;

use super::super::{Ctx, FilterArgs, OutputArgs};

/// How `fleet xen balance` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Observe, then print the plan.
    DryRun,
    /// Observe, then carry the plan out.
    Apply,
    /// Keep observing every interval; plan each round, and apply when `apply`.
    Watch { apply: bool },
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Seconds to observe before a one-shot decision; default the policy's max_over.
    pub observe: Option<f64>,
    /// Past migrations, read for the cooldowns and appended to on apply.
    pub history: Option<PathBuf>,
}

fn print_plan(plan: &Plan) {
    for l in xen::plan_lines(plan) {
        println!("{l}");
    }
}

/// Carries out a plan's migrations one by one; records each started one in `obs` (and the history
/// file), so the cooldowns hold even when a migration fails half-way.
async fn apply_plan(
    client: &mut Client,
    settings: &Settings,
    policy: &BalancerPolicy,
    plan: &Plan,
    obs: &mut Observations,
    history: Option<&Path>,
    quiet: bool,
) -> Result<Vec<MigrationResult>> {
    let mut results = Vec::new();
    for m in &plan.migrations {
        if !quiet {
            eprintln!("migrating {} from {} to {} ...", m.domu, m.from, m.to);
        }
        let address = if policy.host_mapping.contains_key(&m.to) { m.address.as_str() } else { "" };
        let started = fleet_protocol::now_ms();
        let r = xen::migrate_one(client, settings, &m.domu, &m.from, &m.to, address).await?;
        let past = PastMigration { at_ms: started, domu: m.domu.clone(), from: m.from.clone(), to: m.to.clone() };
        obs.record_migration(past.clone());
        history::record_migration(history, policy, past)?;
        if !quiet {
            if r.success {
                println!("{}: migrated from {} to {} in {:.1} s ({})", r.domain, r.from, r.to, r.elapsed_s, last_line(&r.message));
            } else {
                println!("{}: migration from {} to {} FAILED: {}", r.domain, r.from, r.to, r.message);
            }
        }
        results.push(r);
    }
    Ok(results)
}

pub async fn run(ctx: &Ctx, policy_file: &Path, mode: Mode, opts: &Options, f: &FilterArgs, out: &OutputArgs) -> Result<i32> {
    let policy = BalancerPolicy::load(policy_file).map_err(|e| ClientError::Config(e.to_string()))?;
    if let Some(o) = opts.observe.filter(|o| !(o.is_finite() && *o >= 0.0)) {
        return Err(ClientError::input(format!("--observe must be a number of seconds, 0 or more (got {o})")).into());
    }
    let mut obs = Observations { migrations: xen::load_history(opts.history.as_deref())?, ..Observations::default() };
    let mut client = ctx.client().await?;
    let scope = f.scope();
    if let Mode::Watch { apply } = mode {
        return watch(ctx, &mut client, &policy, apply, opts, &scope, out, &mut obs).await;
    }
    let quiet = out.json || out.jsonl;
    let observe = Duration::from_secs_f64(opts.observe.unwrap_or(policy.max_over * 60.0));
    let interval = Duration::from_secs_f64(policy.interval);
    // The window opens with the first answers, so a slow first round does not eat it: any
    // observation longer than 0 s gets at least two samples to measure CPU time between.
    let mut deadline = None;
    let mut taken = 0;
    let mut asked = 0;
    loop {
        let (n, o) = xen::sample_round(&mut client, &ctx.settings, &scope, &mut obs).await?;
        let deadline = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + observe);
        asked = asked.max(o.discovered.len());
        taken += 1;
        let now = tokio::time::Instant::now();
        if !quiet {
            let left = deadline.saturating_duration_since(now);
            eprintln!("sample {taken}: {n} of {} dom0(s) answered; {:.1} s of observation left", o.discovered.len(), left.as_secs_f64());
        }
        if now >= deadline {
            break;
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
    }
    if asked == 0 {
        if !quiet {
            println!("No dom0 matched (no node with the xen agent)");
        }
        return Ok(exit::NOTHING_DISCOVERED);
    }
    xen::gather_for_rules(&mut client, &ctx.settings, &scope, &policy, &mut obs).await?;
    let plan = balancer::decide(&policy, &obs, fleet_protocol::now_ms());
    if !quiet {
        print_plan(&plan);
    }
    let results = if mode == Mode::Apply && !plan.migrations.is_empty() {
        if !quiet {
            println!();
        }
        apply_plan(&mut client, &ctx.settings, &policy, &plan, &mut obs, opts.history.as_deref(), quiet).await?
    } else {
        Vec::new()
    };
    if quiet {
        let doc = json!({ "plan": plan, "applied": mode == Mode::Apply, "results": results, "samples": taken });
        if out.json { println!("{}", serde_json::to_string_pretty(&doc)?) } else { println!("{doc}") }
    }
    Ok(if results.iter().all(|r| r.success) { exit::OK } else { exit::SOME_FAILED })
}

/// `--watch`: one round per interval until ctrl-c. The first ctrl-c stops after the current
/// step; a second one stops at once (a migration already sent carries on on its dom0).
#[allow(clippy::too_many_arguments)]
async fn watch(
    ctx: &Ctx,
    client: &mut Client,
    policy: &BalancerPolicy,
    apply: bool,
    opts: &Options,
    scope: &Scope,
    out: &OutputArgs,
    obs: &mut Observations,
) -> Result<i32> {
    let (stop_tx, mut stop) = tokio::sync::watch::channel(0u32);
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            let n = *stop_tx.borrow() + 1;
            if n == 1 {
                eprintln!("\nstopping after this step (ctrl-c again to stop at once)");
            }
            if stop_tx.send(n).is_err() {
                break;
            }
        }
    });
    let quiet = out.json || out.jsonl;
    let interval = Duration::from_secs_f64(policy.interval);
    let (mut round, mut moved, mut failed) = (0u64, 0usize, 0usize);
    let mut last_gist = String::new();
    if !quiet {
        eprintln!(
            "watching dom0s every {} s ({}); ctrl-c stops",
            policy.interval,
            if apply { "applying plans" } else { "dry run: plans are only printed" }
        );
    }
    'rounds: loop {
        round += 1;
        let step = async {
            let (n, o) = xen::sample_round(client, &ctx.settings, scope, obs).await?;
            xen::gather_for_rules(client, &ctx.settings, scope, policy, obs).await?;
            let now = fleet_protocol::now_ms();
            obs.forget_old(policy, now);
            let plan = balancer::decide(policy, obs, now);
            Ok::<_, ClientError>((n, o, plan))
        };
        let (n, o, plan) = tokio::select! {
            r = step => r?,
            Ok(_) = stop.wait_for(|n| *n >= 2) => break 'rounds,
        };
        if quiet {
            println!("{}", json!({ "round": round, "answered": n, "asked": o.discovered.len(), "plan": plan }));
        } else {
            let loads: Vec<String> =
                plan.dom0s.iter().map(|d| format!("{} {}", d.name, d.load.map(balancer::fmt_load).unwrap_or_else(|| "-".into()))).collect();
            eprintln!("round {round}: {n} of {} dom0(s) answered; load {}", o.discovered.len(), loads.join(", "));
            // The plan is printed when it moves something or its reasons change in substance, not
            // every time a duration in it grows.
            let gist = xen::plan_gist(&plan);
            if !plan.migrations.is_empty() || gist != last_gist {
                print_plan(&plan);
            }
            last_gist = gist;
        }
        if apply && !plan.migrations.is_empty() && *stop.borrow() == 0 {
            let results = tokio::select! {
                r = apply_plan(client, &ctx.settings, policy, &plan, obs, opts.history.as_deref(), quiet) => r?,
                Ok(_) = stop.wait_for(|n| *n >= 2) => {
                    eprintln!("stopped during a migration; it carries on on its dom0 (check with fleet xen find)");
                    break 'rounds;
                }
            };
            moved += results.iter().filter(|r| r.success).count();
            failed += results.iter().filter(|r| !r.success).count();
            if quiet {
                println!("{}", json!({ "round": round, "results": results }));
            }
        }
        if *stop.borrow() > 0 {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            Ok(_) = stop.wait_for(|n| *n >= 1) => break 'rounds,
        }
    }
    if !quiet {
        eprintln!("stopped after {round} round(s): {moved} migration(s) made, {failed} failed");
    }
    Ok(if failed == 0 { exit::OK } else { exit::SOME_FAILED })
}
