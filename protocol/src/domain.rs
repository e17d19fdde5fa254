//! Xen domain rows as the `xen` agent reports them: the payload both the node (which parses
//! `xl list`) and the client (which gathers, finds and balances) read.

use serde::{Deserialize, Serialize};

/// The name `xl list` gives the control domain.
pub const DOMAIN0: &str = "Domain-0";

/// One row of `xl list`: Domain-0 or a domU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainRow {
    pub name: String,
    pub id: u32,
    /// Memory in MiB.
    pub mem: u64,
    pub vcpus: u32,
    /// xl's six state characters, e.g. `-b----`, `r-----`, `---sc-`.
    pub state: String,
    pub running: bool,
    pub blocked: bool,
    pub paused: bool,
    pub shutdown: bool,
    /// Why it shut down when xl says: reboot, suspend, crash, watchdog or soft_reset; empty otherwise
    /// (xl prints `-` for a poweroff too).
    pub shutdown_reason: String,
    pub dying: bool,
    /// Seconds of CPU the domain has eaten since it started.
    pub cpu_time: f64,
}

impl DomainRow {
    pub fn is_dom0(&self) -> bool {
        self.id == 0 || self.name == DOMAIN0
    }
    pub fn crashed(&self) -> bool {
        self.shutdown_reason == "crash"
    }
}
