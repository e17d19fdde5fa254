//! `fleet xen list|find|migrate|balance`: the dom0s and domUs through the client core's Xen
//! operations.

mod balance;
mod find;
mod list;
mod migrate;

use anyhow::Result;

use super::Ctx;
use super::args::XenCommand;
use balance::Mode;

/// Runs one `fleet xen` command; returns the exit code.
pub async fn run(ctx: &Ctx, cmd: XenCommand) -> Result<i32> {
    match cmd {
        XenCommand::List { filter, output } => list::run(ctx, &filter, &output).await,
        XenCommand::Find { name, filter, output } => find::run(ctx, &name, &filter, &output).await,
        XenCommand::Migrate { name, dest, yes, filter, output } => migrate::run(ctx, &name, &dest, yes, &filter, &output).await,
        XenCommand::Balance { policy, dry_run: _, apply, watch, observe, history, filter, output } => {
            let mode = match (watch, apply) {
                (true, apply) => Mode::Watch { apply },
                (false, true) => Mode::Apply,
                (false, false) => Mode::DryRun,
            };
            balance::run(ctx, &policy, mode, &balance::Options { observe, history }, &filter, &output).await
        }
    }
}

/// `(failed dom0, why)` lines and the dom0s that did not reply.
fn print_failures(failed: &[(String, String)], no_reply: &[String]) {
    for (host, why) in failed {
        println!("   {host}: {why}");
    }
    if !no_reply.is_empty() {
        println!("   No reply from: {}", no_reply.join(", "));
    }
}
