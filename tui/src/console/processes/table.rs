//! The table's columns: their order, how each sorts, and how each value is written. Sorting
//! builds an index order once per data or sort change; drawing only formats the visible rows.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Listing;
pub use fleet_client::format::{compact_bytes, human_bytes, thousands};
use fleet_client::process::Proc;

/// The columns, left to right; `F6`, `<` and `>` move the sort through them in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Column {
    #[default]
    Host,
    User,
    Pid,
    Ppid,
    State,
    Cpu,
    Rss,
    Vsz,
    Started,
    Command,
}

impl Column {
    pub const ALL: [Column; 10] = [
        Column::Host,
        Column::User,
        Column::Pid,
        Column::Ppid,
        Column::State,
        Column::Cpu,
        Column::Rss,
        Column::Vsz,
        Column::Started,
        Column::Command,
    ];

    pub fn header(self) -> &'static str {
        match self {
            Column::Host => "HOST",
            Column::User => "USER",
            Column::Pid => "PID",
            Column::Ppid => "PPID",
            Column::State => "S",
            Column::Cpu => "CPU%",
            Column::Rss => "RSS",
            Column::Vsz => "VSZ",
            Column::Started => "STARTED",
            Column::Command => "COMMAND",
        }
    }

    /// The column's name in the query line.
    pub fn name(self) -> &'static str {
        match self {
            Column::Host => "host",
            Column::User => "user",
            Column::Pid => "pid",
            Column::Ppid => "ppid",
            Column::State => "state",
            Column::Cpu => "cpu%",
            Column::Rss => "rss",
            Column::Vsz => "vsz",
            Column::Started => "started",
            Column::Command => "command",
        }
    }

    fn index(self) -> usize {
        Column::ALL.iter().position(|c| *c == self).expect("every column is in ALL")
    }

    /// The next column, wrapping around (`F6`).
    pub fn next(self) -> Column {
        Column::ALL[(self.index() + 1) % Column::ALL.len()]
    }

    /// One to the right, stopping at the last (`>`).
    pub fn next_bounded(self) -> Column {
        Column::ALL[(self.index() + 1).min(Column::ALL.len() - 1)]
    }

    /// One to the left, stopping at the first (`<`).
    pub fn prev_bounded(self) -> Column {
        Column::ALL[self.index().saturating_sub(1)]
    }

    /// Numbers read best right-aligned.
    pub fn right_aligned(self) -> bool {
        matches!(self, Column::Pid | Column::Ppid | Column::Cpu | Column::Rss | Column::Vsz)
    }
}

/// Per-listing ranks of the text columns, computed once when a listing arrives, so that sorting
/// compares integers instead of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortKeys {
    host_rank: Vec<u32>,
    user_rank: Vec<u32>,
    /// How many different hosts the listing has.
    pub hosts: usize,
}

/// The rank of each value among the distinct values, in string order; and how many there are.
fn ranks<'a>(values: impl Iterator<Item = &'a str>) -> (Vec<u32>, usize) {
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let first_seen: Vec<u32> = values
        .map(|v| {
            let next = ids.len() as u32;
            *ids.entry(v).or_insert(next)
        })
        .collect();
    let mut distinct: Vec<(&str, u32)> = ids.into_iter().collect();
    distinct.sort_unstable();
    let mut rank_of_id = vec![0u32; distinct.len()];
    for (rank, (_, id)) in distinct.iter().enumerate() {
        rank_of_id[*id as usize] = rank as u32;
    }
    (first_seen.into_iter().map(|id| rank_of_id[id as usize]).collect(), distinct.len())
}

impl SortKeys {
    pub fn of(procs: &[Proc]) -> SortKeys {
        let (host_rank, hosts) = ranks(procs.iter().map(|p| p.host.as_str()));
        let (user_rank, _) = ranks(procs.iter().map(|p| p.user.as_str()));
        SortKeys { host_rank, user_rank, hosts }
    }
}

/// An `f32` as a `u64` that orders like `f32::total_cmp`.
fn float_key(x: f32) -> u64 {
    let bits = x.to_bits() as i32;
    let ordered = bits ^ ((((bits >> 31) as u32) >> 1) as i32);
    (i64::from(ordered) - i64::from(i32::MIN)) as u64
}

/// Up to 8 bytes of a short text (the state letter) as a `u64` in the same order.
fn short_text_key(s: &str) -> u64 {
    let mut key = [0u8; 8];
    for (k, b) in key.iter_mut().zip(s.bytes()) {
        *k = b;
    }
    u64::from_be_bytes(key)
}

/// The display order of `procs` sorted by `column`; ties go by host, pid and start time, all
/// ascending, so the order does not depend on the order the rows came in.
pub fn sorted_order(procs: &[Proc], keys: &SortKeys, column: Column, descending: bool) -> Vec<u32> {
    let tie = |i: usize| ((u64::from(keys.host_rank[i]) << 32) | u64::from(procs[i].pid), procs[i].start_time);
    if column == Column::Command {
        // Free text: compared as strings, and only while it is the sort column.
        let mut order: Vec<u32> = (0..procs.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            let by = procs[a].cmdline.cmp(&procs[b].cmdline);
            if descending { by.reverse() } else { by }.then_with(|| tie(a).cmp(&tie(b)))
        });
        return order;
    }
    let mut keyed: Vec<(u64, (u64, u64), u32)> = procs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let primary = match column {
                Column::Host => u64::from(keys.host_rank[i]),
                Column::User => u64::from(keys.user_rank[i]),
                Column::Pid => u64::from(p.pid),
                Column::Ppid => u64::from(p.ppid),
                Column::State => short_text_key(&p.state),
                Column::Cpu => float_key(p.cpu),
                Column::Rss => p.rss,
                Column::Vsz => p.vsz,
                Column::Started => p.started,
                Column::Command => unreachable!("sorted as text above"),
            };
            (if descending { !primary } else { primary }, tie(i), i as u32)
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, _, i)| i).collect()
}

/// What the table derives from a listing: ranks for sorting, column widths, totals, and the
/// display order for one sort. [`super::execute`] makes it on a blocking thread next to the
/// network task, so a 50,000-row listing reaches the UI ready to draw.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prepared {
    pub keys: SortKeys,
    pub widths: TextWidths,
    pub totals: Totals,
    /// The sort `order` is for: column, descending.
    pub sort: (Column, bool),
    pub order: Vec<u32>,
}

impl Prepared {
    pub fn of(listing: &Listing, sort: (Column, bool)) -> Prepared {
        let keys = SortKeys::of(&listing.procs);
        let order = sorted_order(&listing.procs, &keys, sort.0, sort.1);
        Prepared { totals: Totals::of(listing, &keys), widths: TextWidths::of(&listing.procs), keys, sort, order }
    }
}

/// mc-pgrep's totals over a listing, plus who answered; computed once per listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Totals {
    pub matched_hosts: usize,
    pub processes: usize,
    pub rss: u64,
    pub vsz: u64,
    pub zombies: usize,
    pub hosts_answered: usize,
    pub hosts_asked: usize,
}

impl Totals {
    pub fn of(listing: &Listing, keys: &SortKeys) -> Totals {
        Totals {
            matched_hosts: keys.hosts,
            processes: listing.procs.len(),
            rss: listing.procs.iter().map(|p| p.rss).sum(),
            vsz: listing.procs.iter().map(|p| p.vsz).sum(),
            zombies: listing.procs.iter().filter(|p| p.zombie).count(),
            hosts_answered: listing.hosts_answered,
            hosts_asked: listing.hosts_asked,
        }
    }

    /// The footer line: `hosts 3  processes 1,204  RSS 2.1 GiB  VSZ 9.8 GiB  answered 5 of 5`.
    pub fn text(&self) -> String {
        let mut s = format!(
            "hosts {}  processes {}  RSS {}  VSZ {}  answered {} of {}",
            self.matched_hosts,
            thousands(self.processes as u64),
            human_bytes(self.rss),
            human_bytes(self.vsz),
            self.hosts_answered,
            self.hosts_asked
        );
        if self.zombies > 0 {
            s.push_str(&format!("  zombies {}", self.zombies));
        }
        s
    }
}

/// The widths the text columns need for this listing (measured once per listing, not per frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextWidths {
    pub host: u16,
    pub user: u16,
}

impl Default for TextWidths {
    fn default() -> Self {
        TextWidths { host: 8, user: 6 }
    }
}

impl TextWidths {
    pub fn of(procs: &[Proc]) -> TextWidths {
        let mut w = TextWidths { host: 4, user: 4 };
        for p in procs {
            w.host = w.host.max(p.host.chars().count().min(u16::MAX as usize) as u16);
            w.user = w.user.max(p.user.chars().count().min(u16::MAX as usize) as u16);
        }
        TextWidths { host: w.host.min(24), user: w.user.min(12) }
    }
}

/// CPU share in at most 5 cells: `0.0`, `99.5`, `1600`.
pub fn cpu_text(cpu: f32) -> String {
    if cpu < 999.95 { format!("{cpu:.1}") } else { format!("{cpu:.0}") }
}

/// When a process started, as `ps` writes STIME, in UTC like the console's clock: the time of
/// day if it started today, else the date, else the year.
pub fn started_text(started: u64, now: Option<SystemTime>) -> String {
    let now = now.unwrap_or_else(SystemTime::now).duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    fleet_client::format::started(started, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_fits_five_cells() {
        assert_eq!(cpu_text(0.0), "0.0");
        assert_eq!(cpu_text(1600.2), "1600");
    }

    #[test]
    fn started_reads_the_given_clock() {
        // 2024-10-04 (day 20_000) at 12:34:56 UTC; the rules themselves are fleet_client::format's.
        let now = UNIX_EPOCH + std::time::Duration::from_secs(20_000 * 86_400 + 45_296);
        assert_eq!(started_text(20_000 * 86_400 + 3_723, Some(now)), "01:02:03");
    }

    #[test]
    fn integer_keys_order_like_the_values() {
        let mut cpus = [3.5f32, -0.0, 0.0, 100.0, 0.1, f32::INFINITY];
        let mut by_key = cpus;
        cpus.sort_by(f32::total_cmp);
        by_key.sort_by_key(|c| float_key(*c));
        assert_eq!(cpus, by_key);
        assert!(short_text_key("D") < short_text_key("R") && short_text_key("S") < short_text_key("Z"));
        assert!(short_text_key("R") < short_text_key("R+"));
        let (r, n) = ranks(["web-02", "db-01", "web-02", "cache-01"].into_iter());
        assert_eq!((r, n), (vec![2, 1, 2, 0], 3));
    }

    #[test]
    fn sort_columns_move_and_wrap() {
        assert_eq!(Column::Command.next(), Column::Host);
        assert_eq!(Column::Command.next_bounded(), Column::Command);
        assert_eq!(Column::Host.prev_bounded(), Column::Host);
        assert_eq!(Column::Pid.prev_bounded(), Column::User);
    }
}
