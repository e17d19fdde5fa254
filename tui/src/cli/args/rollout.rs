//! The rollout and result flags every command that sends a request to a filtered set takes:
//! which of the matching nodes are asked and in what stages, and what is kept and written of the
//! replies.

use std::path::PathBuf;

use clap::Args;
use fleet_client::{Count, Rollout};

/// Which of the matching nodes are asked, and in what stages; every command that sends a request
/// to a filtered set takes these (they reach every round through the scope).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Rollout")]
pub struct RolloutArgs {
    /// Ask only N (or N%) of the matching nodes, picked at random (see --limit-seed).
    #[arg(long, value_name = "N|N%", value_parser = some_nodes)]
    pub limit: Option<Count>,
    /// Seed of the --limit pick: the same seed picks the same nodes again.
    #[arg(long, value_name = "SEED")]
    pub limit_seed: Option<u64>,
    /// Ask one matching node, picked at random (--limit 1).
    #[arg(long, conflicts_with = "limit")]
    pub one: bool,
    /// Sliding window: never more than N (or N%) requests in flight; a node that answers or times
    /// out frees its slot for the next. --timeout then applies to each node.
    #[arg(long, value_name = "N|N%", value_parser = some_nodes)]
    pub batch: Option<Count>,
    /// Seconds a freed slot waits before it sends to the next node (also after the canary).
    #[arg(long, value_name = "SECONDS", value_parser = non_negative_seconds)]
    pub batch_sleep: Option<f64>,
    /// Ask N (or N%) nodes first and wait for all their replies before asking any other.
    #[arg(long, value_name = "N|N%", value_parser = some_nodes)]
    pub canary: Option<Count>,
    /// Stop the whole rollout once more than K (or K%) nodes failed or gave no reply: nothing more
    /// is sent, and the report says where it stopped. Exit code 2.
    #[arg(long, value_name = "K|K%")]
    pub max_failures: Option<Count>,
}

/// A count of nodes to ask: at least one.
fn some_nodes(s: &str) -> Result<Count, String> {
    match s.parse::<Count>()? {
        Count::Nodes(0) => Err("0 nodes would ask no node".into()),
        c => Ok(c),
    }
}

fn non_negative_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t >= 0.0 => Ok(t),
        _ => Err(format!("'{s}' is not a number of seconds")),
    }
}

/// One random seed per run, so that every round of one command picks the same subset.
fn run_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(Rollout::random_seed)
}

impl RolloutArgs {
    /// The rollout these flags ask for; `None` when they ask every node at once.
    pub fn rollout(&self) -> Option<Rollout> {
        let limit = if self.one { Some(Count::Nodes(1)) } else { self.limit };
        let r = Rollout {
            limit,
            seed: self.limit_seed.unwrap_or_else(run_seed),
            batch: self.batch,
            batch_sleep: std::time::Duration::from_secs_f64(self.batch_sleep.unwrap_or(0.0)),
            canary: self.canary,
            max_failures: self.max_failures,
        };
        (r.limit.is_some() || r.is_staged()).then_some(r)
    }
}

/// What to do with the replies: keep only some, write who was ok, failed or silent.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Results")]
pub struct ResultArgs {
    /// Keep only the replies that match, in the output and in the files written, e.g.
    /// 'status=ok and data.exists=true' (the -S language over sender, status, status_msg, data.*).
    #[arg(long, value_name = "EXPR")]
    pub filter_replies: Option<String>,
    /// Write the identities that replied OK, one per line.
    #[arg(long, value_name = "FILE")]
    pub ok_to: Option<PathBuf>,
    /// Write the identities that replied with a failure, one per line.
    #[arg(long, value_name = "FILE")]
    pub failed_to: Option<PathBuf>,
    /// Write the identities that gave no reply (or are down), one per line.
    #[arg(long, value_name = "FILE")]
    pub no_reply_to: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn rollout_flags_reach_the_scope() {
        use clap::Parser;
        use fleet_client::Count;
        let line = "fleet rpc echo echo --limit 20% --limit-seed 7 --batch 2 --batch-sleep 0.5 --canary 1 --max-failures 10% \
            --fold --failed-to f.txt";
        let cli = crate::cli::Cli::try_parse_from(line.split(' ')).unwrap();
        let Some(crate::cli::Command::Rpc { filter, fold, results, .. }) = cli.command else { panic!("not rpc") };
        let r = filter.scope().rollout.unwrap();
        assert_eq!((r.limit, r.seed, r.batch, r.canary), (Some(Count::Percent(20.0)), 7, Some(Count::Nodes(2)), Some(Count::Nodes(1))));
        assert_eq!((r.max_failures, r.batch_sleep), (Some(Count::Percent(10.0)), std::time::Duration::from_millis(500)));
        assert!(fold && results.failed_to.is_some());
        let one = crate::cli::Cli::try_parse_from(["fleet", "ping", "--one"]).unwrap();
        let Some(crate::cli::Command::Ping { filter, .. }) = one.command else { panic!("not ping") };
        assert_eq!(filter.scope().rollout.unwrap().limit, Some(Count::Nodes(1)));
        let plain = crate::cli::Cli::try_parse_from(["fleet", "ping"]).unwrap();
        let Some(crate::cli::Command::Ping { filter, .. }) = plain.command else { panic!("not ping") };
        assert_eq!(filter.scope().rollout, None);
        for bad in [&["--batch", "0"][..], &["--limit", "0%"], &["--one", "--limit", "2"], &["--canary", "x"], &["--batch-sleep", "-1"]] {
            assert!(crate::cli::Cli::try_parse_from(["fleet", "ping"].iter().chain(bad)).is_err(), "{bad:?}");
        }
    }
}
