//! `fleet pgrep`'s layout flags: ps-style columns, a sort order and the process tree.

use clap::Args;

/// How `fleet pgrep` lays out its table (not its JSON, whose rows carry every field).
#[derive(Args, Debug, Clone, Default)]
pub struct PgrepViewArgs {
    /// Columns, ps style: pid,ppid,user,state,rss,vsz,cpu,start,name,cmd (ps's names too: args,
    /// comm, stat, %cpu, stime); the host comes first unless placed. An unknown field is refused.
    #[arg(short = 'o', long = "output", value_name = "FIELDS", conflicts_with_all = ["json", "jsonl", "targets"])]
    pub fields: Option<String>,
    /// Sort by a field, the smallest first; a leading `-` puts the largest first (--sort -rss).
    #[arg(long, value_name = "FIELD", allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// Each host's processes as a tree, children under their parents (as ps f).
    #[arg(long, conflicts_with_all = ["json", "jsonl", "targets"])]
    pub tree: bool,
}
