//! Killing processes: exactly which `(host, pid, start_time)` a kill goes to (a zombie stands for
//! its parent), the signal menu, the confirmation, and the trace every kill leaves: the outcome
//! on the panel's status line and in the footer, and a record in the Log panel.

use std::collections::HashSet;
use std::time::SystemTime;

use fleet_protocol::Status;
use serde_json::{Map, Value, json};

use super::{Cmd, Overlay, ProcessesPanel, net};
use crate::console::action::{Action, Notice, ReplyRow, Scope};
use crate::console::record::{RequestKey, RequestRecord};
use crate::console::widgets::text::first_line;
use fleet_client::process::{KillOutcome, KillReport, Proc, ProcKey, Signal};

/// One process the admin is about to signal, with what the confirmation shows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillTarget {
    pub key: ProcKey,
    pub user: String,
    pub command: String,
    /// Set when this is the parent of a zombie that was picked: zombies cannot be signalled,
    /// only reaped by their parent.
    pub parent_of_zombie: Option<u32>,
}

/// What a kill would do: the exact targets, and the picked zombies that have no parent to signal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KillPlan {
    pub targets: Vec<KillTarget>,
    /// `host pid` of zombies whose parent is unknown (reparented to init and being reaped).
    pub orphan_zombies: Vec<String>,
}

impl KillPlan {
    /// Whether every target stands in for a zombie, so CHLD is the sensible first signal.
    pub fn only_zombie_parents(&self) -> bool {
        !self.targets.is_empty() && self.targets.iter().all(|t| t.parent_of_zombie.is_some())
    }
}

/// A kill that was sent: what to, and its outcome once the nodes answered.
#[derive(Debug, Clone, PartialEq)]
pub struct KillStatus {
    pub plan: KillPlan,
    pub signal: Signal,
    pub sent_at: SystemTime,
    /// `None` until the nodes answer; `Err` when the kill could not be sent at all.
    pub outcome: Option<Result<Vec<KillReport>, String>>,
}

impl KillStatus {
    /// One line for the status line and the footer: `SIGTERM: 3 signalled, 1 already gone`.
    /// Whether it went wholly well is the second value.
    pub fn summary(&self) -> (String, bool) {
        let signal = self.signal;
        match &self.outcome {
            None => {
                let n = self.plan.targets.len();
                (format!("{signal} to {n} process{}: sending ...", if n == 1 { "" } else { "es" }), true)
            }
            Some(Err(e)) => (format!("{signal} not sent: {}", first_line(e)), false),
            Some(Ok(reports)) => {
                let count = |f: fn(&KillOutcome) -> bool| reports.iter().filter(|r| f(&r.outcome)).count();
                let signalled = count(|o| *o == KillOutcome::Signalled);
                let gone = count(|o| matches!(o, KillOutcome::NoSuchProcess | KillOutcome::PidReused));
                let denied = count(|o| *o == KillOutcome::PermissionDenied);
                let other: Vec<String> = reports
                    .iter()
                    .filter(|r| matches!(r.outcome, KillOutcome::Other(_)))
                    .map(|r| format!("{} {}: {}", r.key.host, r.key.pid, first_line(&r.outcome.to_string())))
                    .collect();
                let mut parts = vec![format!("{signalled} signalled")];
                if gone > 0 {
                    parts.push(format!("{gone} already gone"));
                }
                if denied > 0 {
                    parts.push(format!("{denied} permission denied"));
                }
                if !other.is_empty() {
                    parts.push(format!("{} failed ({})", other.len(), other.join("; ")));
                }
                (format!("{signal}: {}", parts.join(", ")), signalled + gone == reports.len())
            }
        }
    }

    /// The kill as the Log panel keeps it: one reply per target, so reopening it lists each
    /// target's outcome.
    pub fn record(&self, now: SystemTime) -> RequestRecord {
        let targets: Vec<Value> =
            self.plan.targets.iter().map(|t| json!(format!("{} {}@{}", t.key.host, t.key.pid, t.key.start_time))).collect();
        let args = Map::from_iter([("signal".to_string(), json!(self.signal.to_string())), ("targets".to_string(), Value::Array(targets))]);
        let mut hosts: Vec<String> = self.plan.targets.iter().map(|t| t.key.host.clone()).collect();
        hosts.sort();
        hosts.dedup();
        let scope = Scope { filter: String::new(), targets: Some(hosts) };
        let elapsed_ms = now.duration_since(self.sent_at).unwrap_or_default().as_secs_f64() * 1000.0;
        let replies = match &self.outcome {
            Some(Ok(reports)) => reports
                .iter()
                .map(|r| ReplyRow {
                    sender: format!("{} {}", r.key.host, r.key.pid),
                    status: if r.outcome == KillOutcome::Signalled { Status::Ok } else { Status::Aborted },
                    message: r.outcome.to_string(),
                    data: serde_json::to_value(r).unwrap_or_default(),
                    ms: elapsed_ms,
                    expected: true,
                })
                .collect(),
            _ => Vec::new(),
        };
        let failed = match &self.outcome {
            Some(Err(e)) => Some(e.as_str()),
            _ => None,
        };
        let mut record = RequestRecord::new(RequestKey::Done(0), "process", "kill", args, scope, self.sent_at);
        record.finish(replies, failed, elapsed_ms);
        record
    }
}

impl ProcessesPanel {
    /// The targets of a kill: the tagged rows in display order, else the selected row. A zombie
    /// stands for its parent, since only the parent can reap it.
    pub fn plan_kill(&self) -> KillPlan {
        let picked: Vec<&Proc> = if self.tagged.is_empty() {
            self.selected().into_iter().collect()
        } else {
            self.rows().filter(|p| self.tagged.contains(&ProcKey::of(p))).collect()
        };
        let mut plan = KillPlan::default();
        let mut seen: HashSet<ProcKey> = HashSet::new();
        for p in picked {
            let target = if p.zombie {
                let (Some(ppid), Some(pstart)) = (p.parent_pid, p.parent_start_time) else {
                    plan.orphan_zombies.push(format!("{} {}", p.host, p.pid));
                    continue;
                };
                let key = ProcKey { host: p.host.clone(), pid: ppid, start_time: pstart };
                let listed = self.listing.procs.iter().find(|q| key.is(q));
                KillTarget {
                    user: listed.map(|q| q.user.clone()).unwrap_or_else(|| "?".into()),
                    command: p.parent_cmdline.clone().or_else(|| listed.map(|q| q.cmdline.clone())).unwrap_or_default(),
                    key,
                    parent_of_zombie: Some(p.pid),
                }
            } else {
                KillTarget { key: ProcKey::of(p), user: p.user.clone(), command: p.cmdline.clone(), parent_of_zombie: None }
            };
            if seen.insert(target.key.clone()) {
                plan.targets.push(target);
            }
        }
        plan
    }

    pub(super) fn open_signal_menu(&mut self) -> Option<Action> {
        if self.read_only {
            return Some(Notice::error("read-only mode: kill is disabled"));
        }
        let plan = self.plan_kill();
        if plan.targets.is_empty() {
            return Some(Notice::error(if plan.orphan_zombies.is_empty() {
                "nothing to signal: no row selected".to_string()
            } else {
                format!("nothing to signal: zombie {} has no parent left to reap it", plan.orphan_zombies.join(", "))
            }));
        }
        let default = if plan.only_zombie_parents() { Signal::Chld } else { Signal::Term };
        let selected = Signal::MENU.iter().position(|s| *s == default).unwrap_or(0);
        self.overlay = Overlay::SignalMenu { plan, selected };
        None
    }

    pub(super) fn confirm(&mut self) -> Option<Action> {
        let Overlay::Confirm { plan, signal } = &self.overlay else { return None };
        if self.read_only {
            self.overlay = Overlay::None;
            return Some(Notice::error("read-only mode: kill is disabled"));
        }
        let (plan, signal) = (plan.clone(), *signal);
        let targets = plan.targets.iter().map(|t| t.key.clone()).collect();
        // The popup closes at once: the outcome comes to the status line, and the keys are the
        // table's (and the shell's) again.
        self.overlay = Overlay::None;
        self.kill_status = Some(KillStatus { plan, signal, sent_at: self.now.unwrap_or(SystemTime::UNIX_EPOCH), outcome: None });
        Some(net(Cmd::Kill { targets, signal }))
    }

    pub(super) fn on_killed(&mut self, result: Result<Vec<KillReport>, String>) -> Option<Action> {
        if let Ok(reports) = &result {
            for r in reports.iter().filter(|r| r.outcome == KillOutcome::Signalled) {
                self.tagged.remove(&r.key);
            }
        }
        // The table is listed again to show what is left.
        let list = if self.shown { self.list_now() } else { None };
        let status = self.kill_status.as_mut()?;
        status.outcome = Some(result);
        let (text, ok) = status.summary();
        let notice = if ok { Notice::info(text) } else { Notice::error(text) };
        let logged = Action::Logged(Box::new(status.record(self.now.unwrap_or(status.sent_at))));
        Some(Action::Batch([Some(notice), Some(logged), list].into_iter().flatten().collect()))
    }
}
