//! Killing processes: exactly which `(host, pid, start_time)` a kill goes to (a zombie stands for
//! its parent), the signal menu, the confirmation and the per-target results.

use std::collections::HashSet;

use super::{Cmd, Overlay, ProcessesPanel, net};
use crate::console::action::{Action, Notice};
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
        self.overlay = Overlay::Results { plan, signal, reports: None };
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
        if let Overlay::Results { reports, .. } = &mut self.overlay {
            *reports = Some(result);
            return list;
        }
        // The results popup was closed before they came: they go to the footer.
        let notice = match &result {
            Ok(r) => {
                let ok = r.iter().filter(|r| r.outcome == KillOutcome::Signalled).count();
                let text = format!("kill: {ok} signalled, {} not", r.len() - ok);
                if ok < r.len() { Notice::error(text) } else { Notice::info(text) }
            }
            Err(e) => Notice::error(format!("kill failed: {}", first_line(e))),
        };
        Some(Action::Batch([Some(notice), list].into_iter().flatten().collect()))
    }
}
