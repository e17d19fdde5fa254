//! Migrations from the Xen panel: one domU to a destination the admin picks, or the balancer's
//! plan; each asks first, then runs and lands in the history and in the Log panel.

use std::time::{Duration, UNIX_EPOCH};

use fleet_protocol::Status;
use serde_json::{Map, json};

use fleet_client::xen::MigrationResult;
use fleet_client::xen::PolicySource;
use fleet_client::xen::balancer::{self, PastMigration};

use super::{Cmd, HISTORY_KEEP, HistoryEntry, Migration, MoveOutcome, MovedBy, Msg, Popup, XenPanel};
use crate::console::action::{Action, Confirm, Notice, ReplyRow, Scope};
use crate::console::record::{RequestKey, RequestRecord};
use fleet_client::format::{last_line, mib};

impl XenPanel {
    /// `m`: offers the other dom0s that answered as destinations of the selected domU.
    pub(super) fn start_migrate(&mut self) -> Option<Action> {
        if self.read_only {
            return Some(Notice::error("read-only: migrating is disabled"));
        }
        let Some(placed) = self.selected_domu() else {
            return Some(Notice::error("no domU selected: pick one in the domU list first"));
        };
        let (domu, from) = (placed.domu.name.clone(), placed.dom0.clone());
        if let Some(h) = self.migrating(&domu) {
            return Some(Notice::error(format!("{domu} is already migrating to {}", h.to)));
        }
        let no_reply = self.view.as_ref().map(|v| v.no_reply.clone()).unwrap_or_default();
        let choices: Vec<String> = self
            .dom0s()
            .iter()
            .filter(|d| d.name != from && d.error.is_none() && !no_reply.contains(&d.name))
            .map(|d| d.name.clone())
            .collect();
        if choices.is_empty() {
            return Some(Notice::error(format!("no other dom0 answered: {domu} has nowhere to go")));
        }
        self.popup = Some(Popup::Destinations { domu, from, choices, selected: 0 });
        None
    }

    /// The destination is picked: ask, saying exactly what moves where.
    pub(super) fn choose_destination(&mut self) -> Option<Action> {
        let Some(Popup::Destinations { domu, from, choices, selected }) = self.popup.take() else { return None };
        let to = choices.get(selected)?.clone();
        let row = self.view.as_ref().and_then(|v| v.domus.iter().find(|p| p.dom0 == from && p.domu.name == domu)).map(|p| p.domu.clone());
        let mut lines = Vec::new();
        match &row {
            Some(r) => lines.push(format!(
                "Live-migrate domU {domu} ({}, {} vCPU(s), state {}, {:.1} s of CPU)",
                mib(r.mem),
                r.vcpus,
                r.state,
                r.cpu_time
            )),
            None => lines.push(format!("Live-migrate domU {domu}")),
        }
        lines.push(format!("  from  {from}{}", self.dom0_brief(&from)));
        lines.push(format!("  to    {to}{}", self.dom0_brief(&to)));
        lines.push(format!("xl migrate runs on {from}; it reaches {to} through {from}'s xen_host_map, else by name."));
        if self.policy.pinned.contains(&domu) {
            lines.push(format!("Note: the balancer policy pins {domu}; the balancer itself never moves it."));
        }
        Some(Action::Confirm(Box::new(Confirm {
            title: format!("Migrate {domu} to {to}?"),
            lines,
            yes: Action::Xen(Msg::MigrateConfirmed { domu, from, to }),
        })))
    }

    /// `  (load 0.30, 2 domUs)` for a dom0 of the view.
    pub(super) fn dom0_brief(&self, name: &str) -> String {
        match self.dom0s().iter().find(|d| d.name == name) {
            Some(d) => {
                format!("  (load {}, {} domUs, {} free)", balancer::fmt_load(d.load[0]), self.of_max(d.domu_count), mib(d.free_memory))
            }
            None => String::new(),
        }
    }

    /// `4 of 10` against the policy file's limit, else just `4`.
    pub(super) fn of_max(&self, count: usize) -> String {
        match self.max_label() {
            Some(max) => format!("{count} of {max}"),
            None => count.to_string(),
        }
    }

    /// The policy file's domU limit per dom0; `None` without a policy file.
    pub(super) fn max_label(&self) -> Option<String> {
        match self.policy_source {
            PolicySource::File(_) => Some(self.policy.max_vm_per_host.to_string()),
            _ => None,
        }
    }

    pub(super) fn confirm_plan(&mut self) -> Option<Action> {
        if self.read_only {
            return Some(Notice::error("read-only: applying the balancer's plan is disabled"));
        }
        let plan = self.plan();
        if plan.migrations.is_empty() {
            let why = plan.rejected.first().map(|r| format!(": {r}")).unwrap_or_default();
            return Some(Notice::info(format!("the balancer plans no migration{why}")));
        }
        let mut lines = vec![format!("The balancer's plan: {} live migration(s), one after the other.", plan.migrations.len())];
        for (i, m) in plan.migrations.iter().enumerate() {
            let via = if m.address != m.to { format!(" via {}", m.address) } else { String::new() };
            lines.push(format!("{}. {}: {} -> {}{via}", i + 1, m.domu, m.from, m.to));
            lines.push(format!("   {}", m.reason));
        }
        Some(Action::Confirm(Box::new(Confirm {
            title: "Apply the balancer's plan?".into(),
            lines,
            yes: Action::Xen(Msg::ApplyConfirmed { moves: plan.migrations }),
        })))
    }

    pub(super) fn start_migrations(&mut self, moves: Vec<Migration>, by: MovedBy) -> Option<Action> {
        let moves: Vec<Migration> = moves.into_iter().filter(|m| self.migrating(&m.domu).is_none()).collect();
        if moves.is_empty() {
            return Some(Notice::error("already migrating"));
        }
        for m in &moves {
            // Recorded when started, so the cooldowns hold even if it fails half-way.
            self.obs.record_migration(PastMigration { at_ms: self.now_ms, domu: m.domu.clone(), from: m.from.clone(), to: m.to.clone() });
            self.history.push(HistoryEntry {
                at_ms: self.now_ms,
                domu: m.domu.clone(),
                from: m.from.clone(),
                to: m.to.clone(),
                by,
                outcome: MoveOutcome::Running,
            });
        }
        if self.history.len() > HISTORY_KEEP {
            self.history.drain(..self.history.len() - HISTORY_KEEP);
        }
        let what = match moves.as_slice() {
            [m] => format!("migrating {} from {} to {} ...", m.domu, m.from, m.to),
            many => format!("applying the plan: {} migrations ...", many.len()),
        };
        Some(Action::Batch(vec![Self::net(Cmd::Migrate { moves }), Notice::info(what)]))
    }

    pub(super) fn on_migrated(&mut self, r: MigrationResult) -> Option<Action> {
        if let Some(h) = self
            .history
            .iter_mut()
            .rev()
            .find(|h| h.domu == r.domain && h.from == r.from && h.to == r.to && h.outcome == MoveOutcome::Running)
        {
            h.outcome = if r.success { MoveOutcome::Done { elapsed_s: r.elapsed_s } } else { MoveOutcome::Failed(r.message.clone()) };
        }
        let notice = if r.success {
            // Follow the domU to its new dom0 when it was the one under the cursor.
            if self.selected_domu().is_some_and(|p| p.domu.name == r.domain && p.dom0 == r.from) {
                self.jump_to(&r.to, &r.domain);
            }
            Notice::info(format!("{} migrated from {} to {} in {:.1} s", r.domain, r.from, r.to, r.elapsed_s))
        } else {
            Notice::error(format!("{}: migration from {} to {} FAILED: {}", r.domain, r.from, r.to, last_line(&r.message)))
        };
        let mut follow = vec![notice, Action::Logged(Box::new(migration_record(&r, self.now_ms)))];
        follow.extend(self.start_refresh());
        Some(Action::Batch(follow))
    }
}

/// A finished migration as the Log panel keeps it: `xen#migrate` on the source dom0, its one
/// reply saying how it went.
fn migration_record(r: &MigrationResult, now_ms: u64) -> RequestRecord {
    let elapsed_ms = r.elapsed_s * 1000.0;
    let started = UNIX_EPOCH + Duration::from_millis(now_ms.saturating_sub(elapsed_ms as u64));
    let args = Map::from_iter([("domain".to_string(), json!(r.domain)), ("destination".to_string(), json!(r.to))]);
    let scope = Scope { filter: String::new(), targets: Some(vec![r.from.clone()]) };
    let mut record = RequestRecord::new(RequestKey::Done(0), "xen", "migrate", args, scope, started);
    let status = if r.success { Status::Ok } else { Status::Aborted };
    let message = if r.success { format!("{} migrated to {}", r.domain, r.to) } else { last_line(&r.message).to_string() };
    let mut reply = ReplyRow::new(&r.from, status, &message, elapsed_ms);
    reply.data = json!({ "domain": r.domain, "from": r.from, "to": r.to, "output": r.message });
    record.finish(vec![reply], None, elapsed_ms);
    record
}
