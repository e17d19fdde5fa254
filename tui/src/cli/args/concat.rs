//! `fleet concat ...`: files built from ordered fragments through the concat agent on every node.
//! The filter, rollout and output flags live in each variant, after the subcommand, as with every
//! command; `--batch`/`--canary`/`--max-failures` roll a build (and its notifies) out in stages.

use std::path::PathBuf;

use clap::{ArgGroup, Subcommand};

use super::{FilterArgs, OutputArgs, ResultArgs};

#[derive(Subcommand, Debug, Clone)]
pub enum ConcatCommand {
    /// Add (or replace) the fragment NAME of TARGET on every matching node. Nothing is written to
    /// TARGET until `fleet concat build`.
    #[command(
        group(ArgGroup::new("body").required(true).args(["content", "content_file", "source"])),
        after_help = "Examples:\n  fleet concat add /etc/app/app.conf 00-header --content '# managed by fleet'\n  \
                      fleet concat add /etc/app/app.conf 50-local --content-file ./local.conf -C web\n  \
                      fleet concat add /etc/app/app.conf 90-site --source /etc/app/site.conf --order 90"
    )]
    Add {
        /// The file the fragments build: an absolute path under the nodes' [concat] roots.
        target: String,
        /// The fragment's name (letters, digits, . _ - @ +); ties in --order go by name.
        name: String,
        /// Where the fragment goes: lower first.
        #[arg(long, default_value_t = 10, allow_negative_numbers = true)]
        order: i64,
        /// The fragment's text, exactly as it goes into the file (add the newline you want).
        #[arg(long, value_name = "TEXT")]
        content: Option<String>,
        /// Send this local file's text as the fragment (`-`: standard input).
        #[arg(long, value_name = "FILE")]
        content_file: Option<PathBuf>,
        /// A file on each node whose content is the fragment, read again at every build.
        #[arg(long, value_name = "PATH")]
        source: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        results: ResultArgs,
    },
    /// Remove the fragment NAME of TARGET; TARGET changes at the next build.
    Remove {
        /// The file the fragment belongs to.
        target: String,
        /// The fragment's name.
        name: String,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        results: ResultArgs,
    },
    /// TARGET's fragments in build order on each node (identical lists folded), or every target
    /// with fragments when no TARGET is given.
    List {
        /// The file whose fragments to list; none lists the targets.
        target: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        results: ResultArgs,
    },
    /// Render TARGET from its fragments on each node and write it where it differs, showing each
    /// node's diff (identical diffs folded). The notify runs only where the content changed.
    #[command(after_help = "Examples:\n  fleet concat build /etc/app/app.conf --dry-run\n  \
                            fleet concat build /etc/app/app.conf --mode 0640 --group app --notify-unit app.service \
                            --canary 1 --batch 2 --max-failures 0\n  \
                            fleet concat build /etc/app/app.conf --notify 'app reload' -I /web-0[1-3]/")]
    Build {
        /// The file to build: an absolute path under the nodes' [concat] roots.
        target: String,
        /// Only show what would change (diffs, owner/group/mode); nothing is written or notified.
        #[arg(long)]
        dry_run: bool,
        /// User name or uid the file gets (default: keep; noded's user for a new file).
        #[arg(long, value_name = "USER")]
        owner: Option<String>,
        /// Group name or gid the file gets (default: keep).
        #[arg(long, value_name = "GROUP")]
        group: Option<String>,
        /// Octal mode, e.g. 0644 (default: keep; 0644 for a new file).
        #[arg(long, value_name = "MODE")]
        mode: Option<String>,
        /// Shell command run on a node after its content changed (the node must allow notify
        /// commands); FLEET_CONCAT_TARGET names the file.
        #[arg(long, value_name = "COMMAND", conflicts_with = "notify_unit")]
        notify: Option<String>,
        /// systemd unit to reload-or-restart on a node after its content changed.
        #[arg(long, value_name = "UNIT")]
        notify_unit: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        results: ResultArgs,
    },
}
