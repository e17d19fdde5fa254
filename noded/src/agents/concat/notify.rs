//! The notify after a build changed a file's content: a shell command (where the node allows
//! them) or `systemctl reload-or-restart UNIT`, with its exit status and output for the reply.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Longest notify output kept, in bytes.
const MAX_OUTPUT: usize = 64 * 1024;
/// The environment variable that gives a notify command the file it was run for.
pub const TARGET_ENV: &str = "FLEET_CONCAT_TARGET";

/// What to run when the content changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Notify {
    Nothing,
    /// Run with `/bin/sh -c`.
    Command(String),
    /// `systemctl reload-or-restart UNIT`.
    Unit(String),
}

/// How a notify went.
#[derive(Debug, Clone, PartialEq)]
pub struct Ran {
    /// The exit status; `None` when it was killed (by a signal, or at the timeout).
    pub status: Option<i32>,
    pub output: String,
    pub timed_out: bool,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.status == Some(0)
    }
}

impl Notify {
    /// What the notify is, as the admin typed it.
    pub fn describe(&self) -> String {
        match self {
            Notify::Nothing => "nothing".into(),
            Notify::Command(c) => format!("notify command '{c}'"),
            Notify::Unit(u) => format!("reload-or-restart of {u}"),
        }
    }

    /// Runs the notify for `target`, killed after `timeout`. `None` for [`Notify::Nothing`].
    pub async fn run(&self, target: &Path, timeout: Duration) -> Option<Ran> {
        let mut cmd = match self {
            Notify::Nothing => return None,
            Notify::Command(c) => {
                let mut cmd = tokio::process::Command::new("/bin/sh");
                cmd.arg("-c").arg(c);
                cmd
            }
            Notify::Unit(u) => {
                let mut cmd = tokio::process::Command::new("systemctl");
                cmd.args(["reload-or-restart", "--"]).arg(u);
                cmd
            }
        };
        cmd.env(TARGET_ENV, target).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return Some(Ran { status: None, output: format!("cannot start the {}: {e}", self.describe()), timed_out: false }),
        };
        // Dropping the child at the timeout kills it (kill_on_drop).
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                super::cut(&mut text, MAX_OUTPUT, "output");
                Some(Ran { status: out.status.code(), output: text, timed_out: false })
            }
            Ok(Err(e)) => Some(Ran { status: None, output: format!("the {} failed: {e}", self.describe()), timed_out: false }),
            Err(_) => Some(Ran { status: None, output: format!("killed after {} s", timeout.as_secs_f64()), timed_out: true }),
        }
    }
}
