//! `fleet job ...`: background and scheduled jobs through the jobs agent on every node. The filter,
//! rollout and output flags live in each variant, after the subcommand, as with every command.

use clap::Subcommand;

use super::{FilterArgs, OutputArgs, ResultArgs};

#[derive(Subcommand, Debug, Clone)]
pub enum JobCommand {
    /// Start AGENT ACTION key=value... in the background on every matching node (now, --at a time,
    /// and/or --every interval); prints the job id at once. The id is the same on every node.
    #[command(after_help = "Examples:\n  fleet job run -C web package update name=openssl\n  \
                            fleet job run -I db-01 echo echo msg=hi --at +10m\n  \
                            fleet job run -F role=cache cache purge --at 02:30 --every 1d")]
    Run {
        agent: String,
        action: String,
        /// The action's inputs as key=value, checked against its DDL here and on each node.
        #[arg(value_name = "KEY=VALUE")]
        inputs: Vec<String>,
        /// When the first run starts: +10m (from now), 14:30 (UTC, the next such time),
        /// 2026-05-01 14:30 (UTC) or @EPOCH_SECONDS. Default: now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Run again every INTERVAL (90, 30s, 10m, 2h, 1d, 1h30m) until cancelled.
        #[arg(long, value_name = "INTERVAL")]
        every: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        results: ResultArgs,
    },
    /// A job's state on each node (queued, scheduled, running, ok, failed, cancelled, lost) with
    /// its last run's start, end and status. Exit 2 if it failed, was cancelled or lost anywhere.
    Status {
        id: String,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        results: ResultArgs,
    },
    /// What the last run of a job returned on each node.
    Output {
        id: String,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        results: ResultArgs,
    },
    /// Every job the matching nodes keep, one line per job with its states and next run.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Cancel a job: waiting runs never start, a running one has its whole process tree killed
    /// (TERM, then KILL after the node's kill_grace); each node says what it killed.
    Cancel {
        id: String,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        results: ResultArgs,
    },
    /// Follow a job: one line per change on each node, until it ended everywhere (ctrl-c stops).
    Watch {
        id: String,
        /// Seconds between two looks.
        #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = super::positive_seconds)]
        interval: f64,
        #[command(flatten)]
        filter: FilterArgs,
    },
}

#[cfg(test)]
mod tests {
    #[test]
    fn job_commands_parse() {
        use clap::Parser;
        let line = "fleet job run -I web1 echo echo msg=hi --at +10m --every 1h --batch 2 --json";
        let cli = crate::cli::Cli::try_parse_from(line.split(' ')).unwrap();
        let Some(crate::cli::Command::Job { cmd: super::JobCommand::Run { agent, inputs, at, every, filter, output, .. } }) = cli.command
        else {
            panic!("not job run")
        };
        assert_eq!(
            (agent.as_str(), inputs, at.as_deref(), every.as_deref()),
            ("echo", vec!["msg=hi".to_string()], Some("+10m"), Some("1h"))
        );
        assert!(output.json && filter.scope().rollout.is_some());
        for ok in ["fleet job list -C web", "fleet job cancel J1 -I web1", "fleet job watch J1 --interval 0.5", "fleet job output J1"] {
            assert!(crate::cli::Cli::try_parse_from(ok.split(' ')).is_ok(), "{ok}");
        }
        assert!(crate::cli::Cli::try_parse_from(["fleet", "job", "status"]).is_err(), "the id is needed");
    }
}
