//! The Log panel's history on disk, so it survives a restart of the console: one JSON object a
//! line in `console-log.jsonl` in the state directory, appended as each request ends, trimmed to
//! the newest [`KEEP`](super::KEEP) when the file has grown to twice that.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use fleet_protocol::Status;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::console::action::{ReplyRow, Scope};
use crate::console::record::{RequestKey, RequestRecord, RequestState};

/// The file name in the state directory.
pub const FILE_NAME: &str = "console-log.jsonl";

/// A record as one line of the file.
#[derive(Serialize, Deserialize)]
struct Saved {
    /// Milliseconds since the epoch.
    started_ms: u64,
    agent: String,
    action: String,
    #[serde(default)]
    args: Map<String, Value>,
    #[serde(default)]
    filter: String,
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    discovered: Option<Vec<String>>,
    #[serde(default)]
    replies: Vec<SavedReply>,
    #[serde(default)]
    no_reply: Vec<String>,
    #[serde(default)]
    elapsed_ms: Option<f64>,
    #[serde(default)]
    failed: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SavedReply {
    sender: String,
    status: Status,
    #[serde(default)]
    message: String,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    ms: f64,
    #[serde(default = "yes")]
    expected: bool,
}

fn yes() -> bool {
    true
}

impl Saved {
    fn of(r: &RequestRecord) -> Saved {
        let (elapsed_ms, failed) = match &r.state {
            RequestState::Done { elapsed_ms } => (Some(*elapsed_ms), None),
            RequestState::Failed(e) => (None, Some(e.clone())),
            RequestState::Running => (None, None),
        };
        Saved {
            started_ms: r.started.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
            agent: r.agent.clone(),
            action: r.action.clone(),
            args: r.args.clone(),
            filter: r.scope.filter.clone(),
            targets: r.scope.targets.clone(),
            request_id: r.request_id.clone(),
            discovered: r.discovered.clone(),
            replies: r
                .replies
                .iter()
                .map(|x| SavedReply {
                    sender: x.sender.clone(),
                    status: x.status,
                    message: x.message.clone(),
                    data: x.data.clone(),
                    ms: x.ms,
                    expected: x.expected,
                })
                .collect(),
            no_reply: r.no_reply.clone(),
            elapsed_ms,
            failed,
        }
    }

    fn into_record(self, key: RequestKey) -> RequestRecord {
        let scope = Scope { filter: self.filter, targets: self.targets };
        let started = UNIX_EPOCH + Duration::from_millis(self.started_ms);
        let mut r = RequestRecord::new(key, &self.agent, &self.action, self.args, scope, started);
        r.request_id = self.request_id;
        let replies = self
            .replies
            .into_iter()
            .map(|x| ReplyRow { sender: x.sender, status: x.status, message: x.message, data: x.data, ms: x.ms, expected: x.expected })
            .collect();
        r.finish(replies, self.failed.as_deref(), self.elapsed_ms.unwrap_or(0.0));
        // `finish` takes the repliers as the targets; the saved discovery knows better.
        r.discovered = self.discovered.or(r.discovered);
        r.no_reply = self.no_reply;
        r
    }
}

/// The history file of one console.
#[derive(Debug)]
pub struct LogStore {
    path: PathBuf,
    /// Lines in the file, to know when to trim it.
    lines: usize,
    keep: usize,
}

impl LogStore {
    /// The store at `path`, keeping the newest `keep` records.
    pub fn new(path: &Path, keep: usize) -> LogStore {
        LogStore { path: path.to_path_buf(), lines: 0, keep }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The newest `keep` records of the file, oldest first, numbered as `RequestKey::Done`. A
    /// missing file is an empty history; lines that do not parse are skipped (and logged).
    pub fn load(&mut self) -> Vec<RequestRecord> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot read the console's log history");
                }
                return Vec::new();
            }
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        self.lines = lines.len();
        let from = lines.len().saturating_sub(self.keep);
        lines[from..]
            .iter()
            .enumerate()
            .filter_map(|(i, line)| match serde_json::from_str::<Saved>(line) {
                Ok(saved) => Some(saved.into_record(RequestKey::Done(i as u64 + 1))),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "skipped a bad line of the console's log history");
                    None
                }
            })
            .collect()
    }

    /// Appends one finished record; rewrites the file with the newest `keep` of `all` when it
    /// has grown to twice that. Failures are logged, never shown: the history is a convenience.
    pub fn append(&mut self, record: &RequestRecord, all: impl Iterator<Item = RequestRecord>) {
        let result = if self.lines + 1 >= 2 * self.keep.max(1) { self.rewrite(all) } else { self.append_line(record) };
        if let Err(e) = result {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot save the console's log history");
        }
    }

    fn append_line(&mut self, record: &RequestRecord) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        writeln!(file, "{}", serde_json::to_string(&Saved::of(record))?)?;
        self.lines += 1;
        Ok(())
    }

    /// Writes the records that are over, the newest `keep`, to a new file that replaces the old.
    fn rewrite(&mut self, all: impl Iterator<Item = RequestRecord>) -> std::io::Result<()> {
        let done: Vec<RequestRecord> = all.filter(|r| !r.running()).collect();
        let from = done.len().saturating_sub(self.keep);
        let mut text = String::new();
        for r in &done[from..] {
            text.push_str(&serde_json::to_string(&Saved::of(r))?);
            text.push('\n');
        }
        let tmp = self.path.with_extension("jsonl.tmp");
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)?;
        self.lines = done.len() - from;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::SystemTime;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn record(n: u64) -> RequestRecord {
        let mut r = RequestRecord::new(RequestKey::Done(0), "process", "kill", Map::new(), Scope::filter("role=web"), at(n));
        let mut reply = ReplyRow::new("web-01 812", Status::Aborted, "no such process", 3.0);
        reply.data = json!({ "pid": 812 });
        r.finish(vec![reply], None, 12.0);
        r
    }

    #[test]
    fn records_come_back_after_a_restart_and_the_file_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(FILE_NAME);
        let mut store = LogStore::new(&path, 3);
        assert!(store.load().is_empty(), "no file yet");
        let mut all = Vec::new();
        for n in 1..=7 {
            let r = record(n);
            all.push(r.clone());
            store.append(&r, all.clone().into_iter());
        }
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines < 6, "trimmed when it reached twice the bound: {lines} lines");
        let back = LogStore::new(&path, 3).load();
        assert_eq!(back.len(), 3);
        assert_eq!(back.iter().map(|r| r.started).collect::<Vec<_>>(), [at(5), at(6), at(7)], "the newest, oldest first");
        let r = &back[2];
        assert_eq!(
            (r.what(), r.scope.filter.as_str(), r.state.clone()),
            ("process#kill".into(), "role=web", RequestState::Done { elapsed_ms: 12.0 })
        );
        assert_eq!(r.replies, record(7).replies);
        assert_eq!(r.key, RequestKey::Done(3));
    }

    #[test]
    fn a_bad_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let good = serde_json::to_string(&Saved::of(&record(1))).unwrap();
        std::fs::write(&path, format!("not json\n{good}\n")).unwrap();
        assert_eq!(LogStore::new(&path, 10).load().len(), 1);
    }
}
