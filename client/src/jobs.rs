//! Background jobs, written once for the CLI and the console: job ids (made here once, the same
//! on every node), the `--at` and `--every` times, the jobs agent's requests, and its replies read
//! back as typed rows. Times are ms since the epoch and shown in UTC, like the rest of fleet.

use std::collections::BTreeMap;

pub use fleet_protocol::jobs::LastRun;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{ClientError, Result};
use crate::round::Outcome;

/// The jobs agent.
pub const AGENT: &str = "jobs";

/// A new job id: the UTC time it was made and a random suffix (`20260501-123456-3f2a9c`), so ids
/// sort by age and two admins starting jobs in the same second do not collide.
pub fn new_id(now_ms: u64) -> String {
    let secs = now_ms / 1000;
    let (y, m, d) = fleet_protocol::civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    let suffix: u32 = rand::random::<u32>() & 0xff_ffff;
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{suffix:06x}", t / 3600, t / 60 % 60, t % 60)
}

/// Seconds from `90`, `30s`, `10m`, `2h`, `1d` or sums of them (`1h30m`).
pub fn parse_duration(s: &str) -> Result<u64> {
    let bad = || ClientError::input(format!("'{s}' is not a duration (use e.g. 90, 30s, 10m, 2h, 1d or 1h30m)"));
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let (mut total, mut digits) = (0u64, String::new());
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = total.checked_add(n.checked_mul(unit).ok_or_else(bad)?).ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// `--every`: a duration of at least one second.
pub fn parse_every(s: &str) -> Result<u64> {
    match parse_duration(s)? {
        0 => Err(ClientError::input("--every needs an interval of at least 1 s")),
        n => Ok(n),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `HH:MM[:SS]` as seconds into the day.
fn clock_secs(s: &str) -> Option<u64> {
    let parts: Vec<u64> = s.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    match parts[..] {
        [h, m] if h < 24 && m < 60 => Some(h * 3600 + m * 60),
        [h, m, sec] if h < 24 && m < 60 && sec < 60 => Some(h * 3600 + m * 60 + sec),
        _ => None,
    }
}

/// `--at`: when a job first runs, in ms since the epoch. `+10m` (from now), `14:30` (UTC, the
/// next such time), `2026-05-01 14:30[:00]` or `2026-05-01T14:30[:00]Z` (UTC), or `@EPOCH_SECONDS`.
pub fn parse_at(s: &str, now_ms: u64) -> Result<u64> {
    let bad = || ClientError::input(format!("'{s}' is not a time (use +10m, 14:30 (UTC), 2026-05-01 14:30 (UTC) or @EPOCH_SECONDS)"));
    let s = s.trim();
    if let Some(rel) = s.strip_prefix('+') {
        return Ok(now_ms + parse_duration(rel)? * 1000);
    }
    if let Some(epoch) = s.strip_prefix('@') {
        return epoch.parse::<u64>().map(|e| e * 1000).map_err(|_| bad());
    }
    if let Some(secs) = clock_secs(s) {
        let day_start = now_ms / 86_400_000 * 86_400_000;
        let at = day_start + secs * 1000;
        return Ok(if at <= now_ms { at + 86_400_000 } else { at });
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once(['T', ' ']).ok_or_else(bad)?;
    let ymd: Vec<&str> = date.split('-').collect();
    let [y, m, d] = ymd[..] else { return Err(bad()) };
    let (y, m, d): (i64, u32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let days = days_from_civil(y, m, d);
    let secs = clock_secs(time.trim()).ok_or_else(bad)?;
    u64::try_from(days * 86_400 + secs as i64).map(|t| t * 1000).map_err(|_| bad())
}

/// What `fleet job run` asks of each node.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: String,
    pub agent: String,
    pub action: String,
    /// The action's inputs, already validated against its DDL.
    pub args: Map<String, Value>,
    /// First run, ms since the epoch; 0 for now.
    pub at: u64,
    /// Seconds between runs; 0 for once.
    pub every: u64,
}

impl NewJob {
    /// The arguments of `jobs#run`.
    pub fn args(&self) -> Map<String, Value> {
        let v = json!({ "id": self.id, "agent": self.agent, "action": self.action, "args": self.args, "at": self.at, "every": self.every });
        v.as_object().cloned().expect("an object")
    }
}

/// The arguments of `jobs#status`, `output` and `cancel`.
pub fn id_args(id: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m
}

/// One job on one node, as `status` and `list` report it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobRow {
    pub id: String,
    pub agent: String,
    pub action: String,
    pub caller: String,
    pub created: u64,
    /// queued, scheduled, running, ok, failed, cancelled or lost.
    pub state: String,
    pub every: u64,
    pub next_run: u64,
    pub runs: u64,
    pub last: Option<LastRun>,
}

impl JobRow {
    /// Whether the job will not run again on that node.
    pub fn is_final(&self) -> bool {
        matches!(self.state.as_str(), "ok" | "failed" | "cancelled" | "lost")
    }

    /// Whether the job's end is a failure: failed, cancelled, or lost with noded.
    pub fn is_failure(&self) -> bool {
        matches!(self.state.as_str(), "failed" | "cancelled" | "lost")
    }
}

/// One job across the nodes of a status round.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobStatus {
    /// The nodes that have the job, with its row there.
    pub nodes: BTreeMap<String, JobRow>,
    /// Nodes that answered but do not have the job (it ran elsewhere, or retention removed it).
    pub without: Vec<String>,
    /// Nodes whose jobs agent failed to answer, with why.
    pub failed: Vec<(String, String)>,
}

impl JobStatus {
    /// The status round's replies read as rows.
    pub fn of(o: &Outcome) -> JobStatus {
        let mut s = JobStatus::default();
        for r in &o.replies {
            let node = r.reply.sender.clone();
            if !r.reply.status.is_ok() {
                s.failed.push((node, format!("{}: {}", r.reply.status, r.reply.status_msg)));
            } else if r.reply.data["job"].is_null() {
                s.without.push(node);
            } else {
                s.nodes.insert(node, serde_json::from_value(r.reply.data["job"].clone()).unwrap_or_default());
            }
        }
        s.without.sort();
        s.failed.sort();
        s
    }

    /// Whether every node that has the job is done with it.
    pub fn all_final(&self) -> bool {
        self.nodes.values().all(JobRow::is_final)
    }

    /// `ok 3, running 1`: how many nodes are in each state.
    pub fn counts(&self) -> String {
        state_counts(self.nodes.values())
    }
}

/// `ok 3, running 1` over some rows, states in a fixed order.
pub fn state_counts<'a>(rows: impl Iterator<Item = &'a JobRow>) -> String {
    let mut counts: BTreeMap<usize, (&str, usize)> = BTreeMap::new();
    const ORDER: [&str; 7] = ["running", "queued", "scheduled", "ok", "failed", "cancelled", "lost"];
    for r in rows {
        let rank = ORDER.iter().position(|s| *s == r.state).unwrap_or(ORDER.len());
        counts.entry(rank).or_insert((r.state.as_str(), 0)).1 += 1;
    }
    counts.values().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", ")
}

/// One job across the fleet, as `fleet job list` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListedJob {
    pub id: String,
    pub agent: String,
    pub action: String,
    pub caller: String,
    pub created: u64,
    pub every: u64,
    /// The earliest next run over the nodes; 0 when none will run again.
    pub next_run: u64,
    /// Each node's row.
    pub nodes: BTreeMap<String, JobRow>,
}

/// The list round's replies grouped by job id, newest first.
pub fn list_of(o: &Outcome) -> Vec<ListedJob> {
    let mut jobs: BTreeMap<String, ListedJob> = BTreeMap::new();
    for r in o.replies.iter().filter(|r| r.reply.status.is_ok()) {
        let rows: Vec<JobRow> = serde_json::from_value(r.reply.data["jobs"].clone()).unwrap_or_default();
        for row in rows {
            let j = jobs.entry(row.id.clone()).or_insert_with(|| ListedJob {
                id: row.id.clone(),
                agent: row.agent.clone(),
                action: row.action.clone(),
                caller: row.caller.clone(),
                created: row.created,
                every: row.every,
                ..ListedJob::default()
            });
            j.created = j.created.min(row.created);
            if row.next_run > 0 && (j.next_run == 0 || row.next_run < j.next_run) {
                j.next_run = row.next_run;
            }
            j.nodes.insert(r.reply.sender.clone(), row);
        }
    }
    let mut out: Vec<ListedJob> = jobs.into_values().collect();
    out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_intervals() {
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("2d").unwrap(), 172_800);
        for bad in ["", "10x", "m", "5m3"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_every("0s").is_err());
        assert_eq!(parse_every("10m").unwrap(), 600);
    }

    #[test]
    fn times_for_at() {
        // 2026-05-01 12:00:00 UTC
        let now = 1_777_636_800_000;
        assert_eq!(parse_at("+10m", now).unwrap(), now + 600_000);
        assert_eq!(parse_at("@1777636800", now).unwrap(), now);
        assert_eq!(parse_at("2026-05-01 12:00", now).unwrap(), now);
        assert_eq!(parse_at("2026-05-01T12:00:30Z", now).unwrap(), now + 30_000);
        assert_eq!(parse_at("14:30", now).unwrap(), now + 9_000_000, "later today");
        assert_eq!(parse_at("11:00", now).unwrap(), now + 23 * 3_600_000, "tomorrow");
        for bad in ["noon", "25:00", "2026-13-01 10:00", "+"] {
            assert!(parse_at(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_sort_by_time_and_differ() {
        let a = new_id(1_777_636_800_000);
        assert!(a.starts_with("20260501-120000-"), "{a}");
        assert_eq!(a.len(), 22);
        assert_ne!(new_id(1_777_636_800_000), new_id(1_777_636_800_000));
    }

    #[test]
    fn state_counts_are_in_a_fixed_order() {
        let rows: Vec<JobRow> =
            ["ok", "running", "ok", "lost"].iter().map(|s| JobRow { state: s.to_string(), ..JobRow::default() }).collect();
        assert_eq!(state_counts(rows.iter()), "running 1, ok 2, lost 1");
    }
}
