//! What every command does with a round's replies once it ran: keep the ones `--filter-replies`
//! matches, write who was ok, failed or silent (`--ok-to`, `--failed-to`, `--no-reply-to`), and
//! tell how a limited or staged rollout went: each failure's batch, and where a rollout stopped.

use anyhow::{Context, Result};
use fleet_client::Outcome;
use fleet_client::chain::{ReplyFilter, Results, write_identities};
use fleet_client::nodeset::fold;

use super::args::ResultArgs;

impl ResultArgs {
    /// The reply filter, parsed before anything is sent.
    pub fn reply_filter(&self) -> Result<Option<ReplyFilter>> {
        Ok(self.filter_replies.as_deref().map(ReplyFilter::parse).transpose()?)
    }

    /// Keeps the replies the filter matches and writes the identity files. Returns how many
    /// replies the filter left out.
    pub fn apply(&self, filter: Option<&ReplyFilter>, o: &mut Outcome) -> Result<usize> {
        let hidden = filter.map_or(0, |f| f.apply(o));
        let results = Results::of(o);
        for (path, nodes) in [(&self.ok_to, &results.ok), (&self.failed_to, &results.failed), (&self.no_reply_to, &results.no_reply)] {
            if let Some(path) = path {
                write_identities(path, nodes).with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Ok(hidden)
    }
}

/// `web-[01-03] (batch 2)`-style label of a node in a staged rollout, or just its name.
fn with_batch(o: &Outcome, node: &str) -> String {
    match o.rollout.as_ref().and_then(|r| r.batches.get(node)) {
        Some(b) => format!("{node} (batch {b})"),
        None => node.to_string(),
    }
}

/// How a limited or staged round went, after the command's own summary: the subset, the batch
/// of each failure and silence, and where a stopped rollout stopped with who was done, failed
/// and never asked. Nothing for a plain round.
pub fn print_rollout(o: &Outcome, hidden: usize) {
    if hidden > 0 {
        println!("\n{hidden} repl{} left out by --filter-replies", if hidden == 1 { "y" } else { "ies" });
    }
    let Some(r) = &o.rollout else { return };
    if let (Some(matched), Some(seed)) = (r.matched, r.seed) {
        println!("\nLimited to {} of {matched} matching nodes (--limit-seed {seed} picks the same ones)", o.discovered.len());
    }
    if r.batches.is_empty() {
        return;
    }
    let canary = if r.canary { " (batch 1: the canary)" } else { "" };
    println!("\nRollout: {} batch{}{canary}", r.batch_count, if r.batch_count == 1 { "" } else { "es" });
    let failed: Vec<_> = o.replies.iter().filter(|x| !x.reply.status.is_ok()).collect();
    if !failed.is_empty() {
        println!("   Failed:");
        for x in failed {
            println!("      {}: {}: {}", with_batch(o, &x.reply.sender), x.reply.status, x.reply.status_msg);
        }
    }
    let silent: Vec<&String> = o.no_reply.iter().chain(o.down.iter().map(|d| &d.identity)).collect();
    if !silent.is_empty() {
        println!("   No reply:");
        for n in silent {
            println!("      {}", with_batch(o, n));
        }
    }
    if let Some(stop) = &r.stopped {
        let results = Results::of(o);
        println!("\nSTOPPED in batch {} of {}: {}", stop.batch, r.batch_count, stop.reason);
        println!("   Done (ok):   {}", or_none(&results.ok));
        println!("   Failed:      {}", or_none(&results.failed));
        println!("   No reply:    {}", or_none(&results.no_reply));
        println!("   Never asked: {}", or_none(&r.never_asked));
        println!("   Nothing was sent after the stop.");
    }
}

fn or_none(nodes: &[String]) -> String {
    if nodes.is_empty() { "none".into() } else { fold(nodes) }
}
