//! What the jobs agent and the client core share about a background job: how its last run went.

use serde::{Deserialize, Serialize};

/// How one run of a job went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LastRun {
    pub started: u64,
    /// 0 while it runs.
    pub ended: u64,
    /// The action's reply status (`OK`, `Aborted`, ...), `lost` or `cancelled`; empty while it runs.
    pub status: String,
    /// MCollective's status code of that reply (0 for OK); absent while running, lost or cancelled.
    pub statuscode: Option<u8>,
    pub message: String,
}
