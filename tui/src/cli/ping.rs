//! `fleet ping`: one line per node with its round trip, then statistics.

use anyhow::Result;
use fleet_client::{Outcome, Spec, round};
use serde_json::Map;

use super::args::ResultArgs;
use super::output::{Bar, ended_early, print_no_reply, progress_line, reply_mark};
use super::results::print_rollout;
use super::{Ctx, FilterArgs, OutputArgs};

/// The ping action's own timeout.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `spec` with the progress bar, and JSON lines as replies arrive when asked (those `keep`
/// matches). Returns the outcome and its exit code; the outcome keeps only the replies `keep`
/// matches, and the identity files of `results` are written from it.
pub async fn with_progress(ctx: &Ctx, spec: &Spec, out: &OutputArgs, results: &ResultArgs) -> Result<(Outcome, i32, usize)> {
    let keep = results.reply_filter()?;
    if let Some(note) = fleet_client::scope::broadcast_note(spec) {
        eprintln!("fleet: {note}");
    }
    let mut client = ctx.client().await?;
    let bar = Bar::new(!out.json && !out.jsonl).staged(spec.rollout.clone());
    let jsonl = out.jsonl;
    let outcome = round::run(&mut client, spec, |p| {
        bar.on(p);
        if jsonl {
            progress_line(p, keep.as_ref());
        }
    })
    .await;
    bar.finish();
    let mut o = outcome?;
    let code = o.exit_code();
    let hidden = results.apply(keep.as_ref(), &mut o)?;
    Ok((o, code, hidden))
}

pub async fn run(ctx: &Ctx, f: &FilterArgs, out: &OutputArgs, results: &ResultArgs) -> Result<i32> {
    let spec = ctx.settings.spec("rpcutil", "ping", Map::new(), &f.scope(), PING_TIMEOUT);
    let (o, code, hidden) = with_progress(ctx, &spec, out, results).await?;
    if ended_early(&o, code, out, &spec.filter)? {
        return Ok(code);
    }
    let mut sorted: Vec<_> = o.replies.iter().collect();
    sorted.sort_by(|a, b| a.time_ms.total_cmp(&b.time_ms));
    for r in &sorted {
        let mark = reply_mark(r.expected, r.signature);
        if r.reply.status.is_ok() {
            println!("{:<40} time={:.2} ms{mark}", r.reply.sender, r.time_ms);
        } else {
            println!("{:<40} {}: {}{mark}", r.reply.sender, r.reply.status, r.reply.status_msg);
        }
    }
    println!("\n---- ping statistics ----");
    if sorted.is_empty() {
        println!("No responses received");
    } else {
        let times: Vec<f64> = sorted.iter().map(|r| r.time_ms).collect();
        let avg = times.iter().sum::<f64>() / times.len() as f64;
        println!(
            "{} replies max: {:.2} min: {:.2} avg: {:.2}",
            times.len(),
            times.iter().cloned().fold(f64::MIN, f64::max),
            times.iter().cloned().fold(f64::MAX, f64::min),
            avg
        );
    }
    print_no_reply(&o);
    print_rollout(&o, hidden);
    Ok(code)
}
