//! `fleet job run|status|output|list|cancel|watch`: background and scheduled jobs through the jobs
//! agent, with the client core's job ids, times and rows; every subcommand takes the usual
//! filters and rollout flags (only the nodes with the jobs agent are asked).

mod list;
mod status;

use anyhow::Result;
use fleet_client::format::utc_datetime;
use fleet_client::jobs::{self, NewJob};
use fleet_client::{Outcome, Spec};
use serde_json::{Map, Value};

use super::args::{JobCommand, ResultArgs};
use super::output::{ended_early, print_no_reply};
use super::results::print_rollout;
use super::{Ctx, FilterArgs, OutputArgs};

/// Runs one `fleet job` command; returns the exit code.
pub async fn run(ctx: &Ctx, cmd: JobCommand) -> Result<i32> {
    match cmd {
        JobCommand::Run { agent, action, inputs, at, every, filter, output, results } => {
            let ddl = fleet_client::ddl::find(&agent)?;
            let args = fleet_client::ddl::parse_inputs(&ddl, &action, &inputs)?;
            let now = fleet_protocol::now_ms();
            let at = at.as_deref().map(|s| jobs::parse_at(s, now)).transpose()?.unwrap_or(0);
            let every = every.as_deref().map(jobs::parse_every).transpose()?.unwrap_or(0);
            let job = NewJob { id: jobs::new_id(now), agent, action, args, at, every };
            start(ctx, &job, &filter, &output, &results).await
        }
        JobCommand::Status { id, filter, output, results } => status::status(ctx, &id, &filter, &output, &results).await,
        JobCommand::Output { id, filter, output, results } => status::output(ctx, &id, &filter, &output, &results).await,
        JobCommand::List { filter, output } => list::run(ctx, &filter, &output).await,
        JobCommand::Cancel { id, filter, output, results } => cancel(ctx, &id, &filter, &output, &results).await,
        JobCommand::Watch { id, interval, filter } => status::watch(ctx, &id, interval, &filter).await,
    }
}

/// A jobs agent request on the nodes `f` selects that have the agent.
fn spec(ctx: &Ctx, action: &str, args: Map<String, Value>, f: &FilterArgs) -> Result<Spec> {
    let (_, timeout) = fleet_client::ddl::checked(jobs::AGENT, action, &mut args.clone())?;
    Ok(ctx.settings.spec(jobs::AGENT, action, args, &f.scope().with_agent(jobs::AGENT), timeout))
}

/// A round's outcome, its exit code, and how many replies `--filter-replies` left out.
type Round = (Outcome, i32, usize);

/// One round of `spec` with the progress bar and the result flags; `Err(exit code)` when the JSON
/// output or an empty discovery already said everything.
async fn round(ctx: &Ctx, spec: &Spec, out: &OutputArgs, results: &ResultArgs) -> Result<Result<Round, i32>> {
    let (o, code, hidden) = super::ping::with_progress(ctx, spec, out, results).await?;
    if ended_early(&o, code, out, &spec.filter)? {
        return Ok(Err(code));
    }
    Ok(Ok((o, code, hidden)))
}

/// A time for people: `2026-05-01 14:30:00 UTC`, or `-` for none.
fn when(ms: u64) -> String {
    if ms == 0 { "-".into() } else { utc_datetime(ms / 1000) }
}

/// The closing lines every job command prints: who did not reply, and how a rollout went.
fn print_tail(o: &Outcome, hidden: usize) {
    print_no_reply(o);
    print_rollout(o, hidden);
}

async fn start(ctx: &Ctx, job: &NewJob, f: &FilterArgs, out: &OutputArgs, results: &ResultArgs) -> Result<i32> {
    let spec = spec(ctx, "run", job.args(), f)?;
    let (o, code, hidden) = match round(ctx, &spec, out, results).await? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let schedule = match (job.at, job.every) {
        (0, 0) => "now".to_string(),
        (at, 0) => format!("at {}", when(at)),
        (0, every) => format!("now, then every {every} s"),
        (at, every) => format!("at {}, then every {every} s", when(at)),
    };
    println!("Job {}: {}#{} {schedule}\n", job.id, job.agent, job.action);
    let mut replies: Vec<_> = o.replies.iter().collect();
    replies.sort_by(|a, b| a.reply.sender.cmp(&b.reply.sender));
    for r in &replies {
        if r.reply.status.is_ok() {
            let next = r.reply.data["next_run"].as_u64().unwrap_or(0);
            println!("   {:<30} {:<10} next run {}", r.reply.sender, r.reply.data["state"].as_str().unwrap_or("?"), when(next));
        } else {
            println!("   {:<30} {}: {}", r.reply.sender, r.reply.status, r.reply.status_msg);
        }
    }
    println!("\nCreated on {} / {} nodes. Follow it with: fleet job watch {}", o.ok_count(), o.discovered.len(), job.id);
    print_tail(&o, hidden);
    Ok(code)
}

async fn cancel(ctx: &Ctx, id: &str, f: &FilterArgs, out: &OutputArgs, results: &ResultArgs) -> Result<i32> {
    let spec = spec(ctx, "cancel", jobs::id_args(id), f)?;
    let (o, code, hidden) = match round(ctx, &spec, out, results).await? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let mut replies: Vec<_> = o.replies.iter().collect();
    replies.sort_by(|a, b| a.reply.sender.cmp(&b.reply.sender));
    let mut without = Vec::new();
    for r in replies {
        let d = &r.reply.data;
        if !r.reply.status.is_ok() {
            println!("   {:<30} {}: {}", r.reply.sender, r.reply.status, r.reply.status_msg);
        } else if d["state"] == "unknown" {
            without.push(r.reply.sender.clone());
        } else {
            println!("   {:<30} {}", r.reply.sender, d["message"].as_str().unwrap_or(""));
        }
    }
    if !without.is_empty() {
        println!("\nWithout job {id}: {}", fleet_client::nodeset::fold(&without));
    }
    if without.len() == o.replies.len() && !o.replies.is_empty() {
        println!("No node has job {id}");
        return Ok(fleet_client::exit::NOTHING_DISCOVERED);
    }
    print_tail(&o, hidden);
    Ok(code)
}
