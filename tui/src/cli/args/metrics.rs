//! `fleet metrics`'s own flags (the filter and output flags are the shared ones).

use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Group hosts by this fact (e.g. role): each group's min/avg/max per metric and its worst
    /// host, worst group first.
    #[arg(long, value_name = "FACT")]
    pub group: Option<String>,
    /// Metrics to show: names or patterns (* matches anything), repeatable or comma separated,
    /// e.g. -m 'load*' -m '*/load/*' for collectd's load. Default: load1, CPU busy and iowait %,
    /// memory, swap and fullest-disk %, network rx/tx per second, processes and zombies.
    #[arg(short = 'm', long = "metric", value_name = "NAME", value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// Show a metric profile's graphs (`[profiles.NAME]` in the config file) as the columns;
    /// its `procs:NAME` graphs count processes through the process agent. The filter flags
    /// still choose the hosts (the profile's `match` only picks profiles in the console).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["metrics", "follow"])]
    pub profile: Option<String>,
    /// The metric that ranks hosts and groups, worst first.
    #[arg(long, value_name = "METRIC", default_value = fleet_client::metrics::DEFAULT_RANK)]
    pub by: String,
    /// Ask again every --every seconds and print the new figures, until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between two --watch rounds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, requires = "watch", value_parser = super::positive_seconds)]
    pub every: f64,
    /// Follow the hub's live stream instead of asking the nodes: every sample of the matching
    /// nodes as the hub receives it (with the history it holds first, given --history), until
    /// interrupted. -m picks the series. --jsonl prints each update as it arrives.
    #[arg(long, conflicts_with_all = ["watch", "group"])]
    pub follow: bool,
    /// With --follow: first the samples the hub holds (up to its hub.metrics.history_minutes).
    #[arg(long, requires = "follow")]
    pub history: bool,
}
