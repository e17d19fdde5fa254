//! The query in force and the list rounds that answer it: the pattern and user lines, when a
//! list goes out, and how its answer becomes the table (sorted, the selection and tags kept).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use super::table::{self, Column, Prepared, Totals};
use super::{Cmd, Field, LIST_LOST_AFTER, Listing, Overlay, ProcessesPanel, net};
use crate::console::action::Action;
use crate::console::widgets::input::TextInput;
use fleet_client::process::ProcKey;

impl ProcessesPanel {
    pub(super) fn open_editor(&mut self, field: Field) {
        let text = match field {
            Field::Pattern => &self.query.pattern,
            Field::User => &self.query.user,
        };
        self.overlay = Overlay::Editing { field, input: TextInput::new(text), error: None };
    }

    pub(super) fn submit_edit(&mut self) -> Option<Action> {
        let Overlay::Editing { field, input, error } = &mut self.overlay else { return None };
        let text = input.text().trim().to_string();
        if let Err(e) = check_field(*field, &text) {
            *error = Some(e);
            return None;
        }
        let changed = match field {
            Field::Pattern => std::mem::replace(&mut self.query.pattern, text.clone()) != text,
            Field::User => std::mem::replace(&mut self.query.user, text.clone()) != text,
        };
        self.overlay = Overlay::None;
        // Enter on the query in force lists again, as a refresh.
        if changed { self.new_query() } else { self.list_now() }
    }

    /// The query changed: the rows on screen answer the old one, so they go (with their tags),
    /// and a list goes out at once, or as soon as the panel is shown.
    pub(super) fn new_query(&mut self) -> Option<Action> {
        self.query_from = self.next_seq;
        self.listing = Arc::new(Listing::default());
        self.order.clear();
        self.sort_keys = table::SortKeys::default();
        self.totals = Totals::default();
        self.tagged.clear();
        self.selected = 0;
        self.listed_at = None;
        self.list_error = None;
        // A list still out answers the old query: it is not waited for (its answer is dropped).
        self.in_flight = None;
        if self.shown {
            self.list_now()
        } else {
            self.last_sent = None;
            None
        }
    }

    pub(super) fn list_if_due(&mut self) -> Option<Action> {
        if !self.shown {
            return None;
        }
        let now = self.now.unwrap_or_else(SystemTime::now);
        if let Some((seq, since)) = self.in_flight {
            // A clock that went backwards counts as time passed, so the table never stalls.
            if now.duration_since(since).map_or(true, |d| d < LIST_LOST_AFTER) {
                return None;
            }
            tracing::warn!(seq, "a process list never came back; sending another");
        }
        let due = match self.last_sent {
            None => true,
            Some(last) => now.duration_since(last).map_or(true, |d| d >= self.refresh_every),
        };
        if due { self.list_now() } else { None }
    }

    pub(super) fn list_now(&mut self) -> Option<Action> {
        let now = self.now.unwrap_or_else(SystemTime::now);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight = Some((seq, now));
        self.last_sent = Some(now);
        Some(net(Cmd::List {
            seq,
            pattern: self.query.pattern.clone(),
            zombies: self.query.zombies_only,
            user: self.query.user.clone(),
            scope: self.query.scope.clone(),
            sort: (self.sort, self.descending),
        }))
    }

    pub(super) fn list_returned(&mut self, seq: u64) {
        if self.in_flight.is_some_and(|(s, _)| s == seq) {
            self.in_flight = None;
        }
    }

    pub(super) fn on_listed(&mut self, seq: u64, listing: Arc<Listing>) {
        self.list_returned(seq);
        if seq < self.query_from {
            return;
        }
        let keep = self.selected().map(ProcKey::of);
        // Usually made by the network task already; made here when the sort changed meanwhile.
        let sort = (self.sort, self.descending);
        let prepared = match &listing.prepared {
            Some(p) if p.sort == sort => p.clone(),
            _ => Prepared::of(&listing, sort),
        };
        self.sort_keys = prepared.keys;
        self.totals = prepared.totals;
        self.widths = prepared.widths;
        self.order = prepared.order;
        self.listing = listing.clone();
        self.grow_tree();
        if !self.tagged.is_empty() {
            let present: HashSet<(&str, u32, u64)> = listing.procs.iter().map(|p| (p.host.as_str(), p.pid, p.start_time)).collect();
            self.tagged.retain(|k| present.contains(&(k.host.as_str(), k.pid, k.start_time)));
        }
        self.listed_at = self.now;
        self.list_error = None;
        self.follow(keep);
    }

    pub(super) fn set_sort(&mut self, column: Column, descending: bool) {
        if (column, descending) == (self.sort, self.descending) {
            return;
        }
        let keep = self.selected().map(ProcKey::of);
        self.sort = column;
        self.descending = descending;
        self.resort(keep);
    }

    /// Rebuilds the display order and puts the selection back on the same process.
    pub(super) fn resort(&mut self, keep: Option<ProcKey>) {
        self.order = table::sorted_order(&self.listing.procs, &self.sort_keys, self.sort, self.descending);
        self.grow_tree();
        self.follow(keep);
    }

    /// In the tree view, turns the sorted order into a forest per host (siblings stay sorted)
    /// and keeps each row's branch prefix; outside it, drops the prefixes.
    fn grow_tree(&mut self) {
        self.tree_prefix.clear();
        if !self.tree {
            return;
        }
        let rows = fleet_client::proctree::forest(&self.listing.procs, &self.order);
        self.order = rows.iter().map(|r| r.index).collect();
        self.tree_prefix = rows.into_iter().filter(|r| !r.prefix.is_empty()).map(|r| (r.index, r.prefix)).collect();
    }

    /// Puts the selection on the process it was on, if it is still listed.
    fn follow(&mut self, keep: Option<ProcKey>) {
        if let Some(key) = keep
            && let Some(at) = self.order.iter().position(|&i| key.is(&self.listing.procs[i as usize]))
        {
            self.selected = at;
        }
        self.select(self.selected);
    }
}

/// Checks a pattern (a regex, as the node compiles it) or a user name (what the agent's DDL
/// accepts), so a mistake shows while typing instead of as a failed list.
pub(super) fn check_field(field: Field, text: &str) -> Result<(), String> {
    match field {
        Field::Pattern => regex::RegexBuilder::new(text.trim()).size_limit(1 << 20).build().map(|_| ()).map_err(|e| {
            let why = e.to_string();
            let why = why.lines().last().unwrap_or_default().trim();
            format!("not a valid regex: {}", why.strip_prefix("error: ").unwrap_or(why))
        }),
        Field::User => {
            let text = text.trim();
            if text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) && text.len() <= 64 {
                Ok(())
            } else {
                Err("a user name has only letters, digits, '_', '.' and '-' (at most 64)".to_string())
            }
        }
    }
}
