//! The audit log: one JSON line for every request the node received, whether it was allowed,
//! denied by policy or rejected (bad signature, expired, replayed, ...), rotated by size.
//!
//! [`Audit::log`] only queues the record; one writer thread formats and appends it. The queue is
//! bounded and `log` waits when it is full, so under load records are slowed down, never dropped.
//!
//! A line looks like:
//! ```text
//! {"time":"2026-05-01T12:34:56.789Z","request_id":"9f…","caller":"alice","agent":"process",
//!  "action":"kill","args_digest":"ab12…","decision":"denied",
//!  "reason":"policies/process.policy:3: deny * kill * *","duration_ms":0.412}
//! ```
//! `time` is when the record was logged (RFC 3339, UTC, milliseconds); `args_digest` is the hex
//! SHA-256 of the arguments' canonical JSON (see [`args_digest`]).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Records that may wait for the writer before [`Audit::log`] blocks. std's bounded channel
/// allocates and writes every slot when it is made (32 bytes each), so this is resident in every
/// node for its whole life: a thousand records cover a burst, since the writer only appends to a
/// buffered file.
pub const QUEUE_CAPACITY: usize = 1024;

/// What happened to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditDecision {
    /// Authorized and dispatched to the agent.
    Allowed,
    /// Refused by the agent's policy.
    Denied,
    /// Refused before authorization: unsigned, bad signature, unknown caller, expired, replayed...
    Rejected,
}

/// One request's audit record. The time is stamped by [`Audit::log`].
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub request_id: String,
    pub caller: String,
    pub agent: String,
    pub action: String,
    /// See [`args_digest`].
    pub args_digest: String,
    pub decision: AuditDecision,
    /// The policy rule that decided, or why the request was rejected.
    pub reason: String,
    /// From receipt to decision (or to the end of the action, for allowed requests).
    pub duration: Duration,
}

/// The JSON line, fields in the documented order.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    request_id: &'a str,
    caller: &'a str,
    agent: &'a str,
    action: &'a str,
    args_digest: &'a str,
    decision: AuditDecision,
    reason: &'a str,
    duration_ms: f64,
}

enum Command {
    Record(Box<AuditRecord>, SystemTime),
    /// Write everything before this, sync it to disk, then answer.
    Flush(SyncSender<()>),
    /// Flush, then stop the writer.
    Shutdown(SyncSender<()>),
}

struct Inner {
    path: PathBuf,
    tx: SyncSender<Command>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Records that could not be queued because the log was already shut down.
    lost: AtomicU64,
    /// Failed writes, renames and reopens in the writer.
    write_errors: Arc<AtomicU64>,
}

impl Inner {
    /// Stops the writer once; later calls find no thread and return at once.
    fn stop(&self) {
        let Some(handle) = self.writer.lock().expect("audit writer lock").take() else { return };
        let (ack_tx, ack_rx) = sync_channel(1);
        if self.tx.send(Command::Shutdown(ack_tx)).is_ok() {
            let _ = ack_rx.recv();
        }
        let _ = handle.join();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The node's audit log. Cheap to clone; the last clone dropped flushes and stops the writer.
#[derive(Clone)]
pub struct Audit {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some(i) => f.debug_struct("Audit").field("path", &i.path).finish_non_exhaustive(),
            None => f.write_str("Audit(disabled)"),
        }
    }
}

impl Audit {
    /// Opens (appending to) `path`, creating it (mode 0640) and its directory when missing. When
    /// the file would grow past `max_bytes` it is renamed to `<path>.1`, older ones shift up to
    /// `<path>.<keep>`, and the oldest beyond that is deleted. `keep` = 0 keeps no old file.
    pub fn open(path: impl Into<PathBuf>, max_bytes: u64, keep: usize) -> io::Result<Audit> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let write_errors = Arc::new(AtomicU64::new(0));
        let writer = Writer::open(path.clone(), max_bytes.max(1), keep, write_errors.clone())?;
        let (tx, rx) = sync_channel(QUEUE_CAPACITY);
        let handle = std::thread::Builder::new().name("audit-writer".into()).spawn(move || writer.run(rx))?;
        Ok(Audit { inner: Some(Arc::new(Inner { path, tx, writer: Mutex::new(Some(handle)), lost: AtomicU64::new(0), write_errors })) })
    }

    /// An audit log that records nothing.
    pub fn disabled() -> Audit {
        Audit { inner: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    pub fn path(&self) -> Option<&Path> {
        self.inner.as_deref().map(|i| i.path.as_path())
    }

    /// Queues one record, stamped with the current time. Waits while the queue is full.
    pub fn log(&self, record: AuditRecord) {
        let Some(inner) = &self.inner else { return };
        if let Err(e) = inner.tx.send(Command::Record(Box::new(record), SystemTime::now())) {
            inner.lost.fetch_add(1, Ordering::Relaxed);
            if let Command::Record(r, _) = e.0 {
                tracing::error!(request = %r.request_id, caller = %r.caller, agent = %r.agent, action = %r.action,
                    decision = ?r.decision, reason = %r.reason, "audit log is shut down; record not written");
            }
        }
    }

    /// Returns once every record queued before the call is written and synced to disk.
    pub fn flush(&self) {
        let Some(inner) = &self.inner else { return };
        let (ack_tx, ack_rx) = sync_channel(1);
        if inner.tx.send(Command::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv();
        }
    }

    /// Writes and syncs everything queued, then stops the writer. Records logged afterwards are
    /// counted in [`Audit::lost`] and reported with `tracing::error!`.
    pub fn shutdown(&self) {
        if let Some(inner) = &self.inner {
            inner.stop();
        }
    }

    /// Records refused because the log had been shut down.
    pub fn lost(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.lost.load(Ordering::Relaxed))
    }

    /// Writes, renames or reopens that failed (each also logged with `tracing::error!`).
    pub fn write_errors(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.write_errors.load(Ordering::Relaxed))
    }
}

/// `<path>.<n>`
fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

struct Writer {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    size: u64,
    max_bytes: u64,
    keep: usize,
    errors: Arc<AtomicU64>,
}

impl Writer {
    fn open(path: PathBuf, max_bytes: u64, keep: usize, errors: Arc<AtomicU64>) -> io::Result<Writer> {
        let file = Self::open_file(&path)?;
        let size = file.metadata()?.len();
        Ok(Writer { path, file: Some(BufWriter::with_capacity(64 * 1024, file)), size, max_bytes, keep, errors })
    }

    fn open_file(path: &Path) -> io::Result<File> {
        OpenOptions::new().create(true).append(true).mode(0o640).open(path)
    }

    fn run(mut self, rx: Receiver<Command>) {
        // Block for the first command, then take whatever else is waiting before flushing, so a
        // burst costs one write(2) per buffer rather than one per line.
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                match cmd {
                    Command::Record(r, time) => self.write(&r, time),
                    Command::Flush(ack) => {
                        self.sync();
                        let _ = ack.send(());
                    }
                    Command::Shutdown(ack) => {
                        // Records another clone queued meanwhile are still written.
                        let mut acks = vec![ack];
                        while let Ok(cmd) = rx.try_recv() {
                            match cmd {
                                Command::Record(r, time) => self.write(&r, time),
                                Command::Flush(ack) | Command::Shutdown(ack) => acks.push(ack),
                            }
                        }
                        self.sync();
                        for ack in acks {
                            let _ = ack.send(());
                        }
                        return;
                    }
                }
                next = rx.try_recv().ok();
            }
            self.flush();
        }
        self.sync();
    }

    fn failed(&self, what: &str, e: &io::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!(file = %self.path.display(), error = %e, "audit log: {what} failed");
    }

    fn write(&mut self, r: &AuditRecord, time: SystemTime) {
        let line = Line {
            time: rfc3339_ms(time),
            request_id: &r.request_id,
            caller: &r.caller,
            agent: &r.agent,
            action: &r.action,
            args_digest: &r.args_digest,
            decision: r.decision,
            reason: &r.reason,
            duration_ms: r.duration.as_micros() as f64 / 1000.0,
        };
        let mut bytes = serde_json::to_vec(&line).expect("an audit line always serializes");
        bytes.push(b'\n');
        let len = bytes.len() as u64;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate();
        }
        if self.file.is_none() {
            // An earlier reopen failed; try again rather than lose this record.
            match Self::open_file(&self.path) {
                Ok(f) => {
                    self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    self.file = Some(BufWriter::with_capacity(64 * 1024, f));
                }
                Err(e) => {
                    self.failed("reopening", &e);
                    return;
                }
            }
        }
        let file = self.file.as_mut().expect("opened above");
        match file.write_all(&bytes) {
            Ok(()) => self.size += len,
            Err(e) => self.failed("writing a record", &e),
        }
    }

    fn rotate(&mut self) {
        if let Some(mut f) = self.file.take()
            && let Err(e) = f.flush()
        {
            self.failed("flushing before rotation", &e);
        }
        let result = (|| -> io::Result<()> {
            if self.keep == 0 {
                return std::fs::remove_file(&self.path);
            }
            match std::fs::remove_file(rotated(&self.path, self.keep)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            for n in (1..self.keep).rev() {
                match std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))
        })();
        if let Err(e) = result {
            // Keep appending to the current file: an oversized log beats a lost record.
            self.failed("rotation", &e);
        }
        match Self::open_file(&self.path) {
            Ok(f) => {
                self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
                self.file = Some(BufWriter::with_capacity(64 * 1024, f));
            }
            Err(e) => self.failed("reopening after rotation", &e),
        }
    }

    fn flush(&mut self) {
        if let Some(f) = self.file.as_mut()
            && let Err(e) = f.flush()
        {
            self.failed("flushing", &e);
        }
    }

    fn sync(&mut self) {
        self.flush();
        if let Some(f) = self.file.as_mut()
            && let Err(e) = f.get_ref().sync_data()
        {
            self.failed("syncing", &e);
        }
    }
}

/// Hex SHA-256 of the arguments' canonical JSON: object keys sorted (by UTF-8 bytes), no
/// whitespace, strings and numbers as serde_json writes them. Equal arguments give equal
/// digests whatever order their keys arrived in.
pub fn args_digest(args: &Map<String, Value>) -> String {
    let mut text = String::new();
    write_canonical_object(args, &mut text);
    hex_sha256(text.as_bytes())
}

/// The canonical JSON text of `value`, as hashed by [`args_digest`].
pub fn canonical_json(value: &Value) -> String {
    let mut text = String::new();
    write_canonical(value, &mut text);
    text
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_canonical_object(map, out),
        // Scalars have one serde_json spelling whatever the map order feature says.
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_canonical_object(map: &Map<String, Value>, out: &mut String) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(k.clone()).to_string());
        out.push(':');
        write_canonical(v, out);
    }
    out.push('}');
}

fn hex_sha256(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// `2026-05-01T12:34:56.789Z`: RFC 3339, UTC, millisecond precision. Times before the epoch
/// print as the epoch.
pub fn rfc3339_ms(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z", of_day / 3600, of_day % 3600 / 60, of_day % 60, since.subsec_millis())
}

use fleet_protocol::civil_from_days;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashSet;

    fn record(id: String, decision: AuditDecision) -> AuditRecord {
        AuditRecord {
            request_id: id,
            caller: "alice".into(),
            agent: "process".into(),
            action: "kill".into(),
            args_digest: args_digest(&Map::new()),
            decision,
            reason: "policies/process.policy:3: allow alice * * *".into(),
            duration: Duration::from_micros(1234),
        }
    }

    /// The live file and every rotated one, oldest first.
    fn all_files(path: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = (1..10_000).map(|n| rotated(path, n)).take_while(|p| p.exists()).collect();
        files.reverse();
        files.push(path.to_path_buf());
        files
    }

    fn lines(files: &[PathBuf]) -> Vec<Value> {
        files
            .iter()
            .flat_map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                assert!(text.is_empty() || text.ends_with('\n'), "{} ends mid-line", f.display());
                text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn ten_thousand_records_from_several_threads_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let max_bytes = 64 * 1024;
        let audit = Audit::open(&path, max_bytes, 1_000).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let audit = audit.clone();
                std::thread::spawn(move || {
                    for i in 0..1_250 {
                        let decision = [AuditDecision::Allowed, AuditDecision::Denied, AuditDecision::Rejected][i % 3];
                        audit.log(record(format!("t{t}-{i}"), decision));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        audit.flush();
        let files = all_files(&path);
        assert!(files.len() > 10, "rotation happened: {} files", files.len());
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() <= max_bytes, "{} is over max_bytes", f.display());
        }
        let lines = lines(&files);
        assert_eq!(lines.len(), 10_000);
        let ids: HashSet<&str> = lines.iter().map(|l| l["request_id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 10_000, "every record exactly once");
        let denied = lines.iter().filter(|l| l["decision"] == "denied").count();
        assert_eq!(denied, 8 * 417);
        // Each thread's records stay in the order it logged them.
        for t in 0..8 {
            let prefix = format!("t{t}-");
            let seq: Vec<usize> =
                lines.iter().filter_map(|l| l["request_id"].as_str().unwrap().strip_prefix(&prefix).map(|n| n.parse().unwrap())).collect();
            assert_eq!(seq, (0..1_250).collect::<Vec<_>>());
        }
        assert_eq!(audit.write_errors(), 0);
    }

    #[test]
    fn rotation_keeps_keep_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(&path, 1_000, 3).unwrap();
        for i in 0..200 {
            audit.log(record(format!("{i:04}"), AuditDecision::Allowed));
        }
        audit.shutdown();
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["audit.log", "audit.log.1", "audit.log.2", "audit.log.3"]);
        // The newest records survive, oldest file first, in order, ending with the last one.
        let ids: Vec<u32> = lines(&all_files(&path)).iter().map(|l| l["request_id"].as_str().unwrap().parse().unwrap()).collect();
        assert_eq!(*ids.last().unwrap(), 199);
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
        assert!(ids.len() < 200);
    }

    #[test]
    fn keep_zero_keeps_only_the_live_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(&path, 500, 0).unwrap();
        for i in 0..50 {
            audit.log(record(format!("{i}"), AuditDecision::Rejected));
        }
        audit.flush();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(std::fs::metadata(&path).unwrap().len() <= 500);
    }

    #[test]
    fn line_has_every_field_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/audit.log");
        let audit = Audit::open(&path, 1 << 20, 2).unwrap();
        audit.log(AuditRecord {
            request_id: "abc".into(),
            caller: "mallory".into(),
            agent: "process".into(),
            action: "kill".into(),
            args_digest: args_digest(json!({"pid": 1}).as_object().unwrap()),
            decision: AuditDecision::Rejected,
            reason: "bad signature".into(),
            duration: Duration::from_micros(2500),
        });
        audit.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let time_end = text.find("\",\"request_id\"").unwrap();
        assert!(text.starts_with("{\"time\":\"20") && text[..time_end].ends_with('Z'), "{text}");
        let rest = &text[time_end..];
        assert_eq!(
            rest,
            format!(
                "\",\"request_id\":\"abc\",\"caller\":\"mallory\",\"agent\":\"process\",\"action\":\"kill\",\
                 \"args_digest\":\"{}\",\"decision\":\"rejected\",\"reason\":\"bad signature\",\"duration_ms\":2.5}}\n",
                hex_sha256(b"{\"pid\":1}")
            )
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
    }

    #[test]
    fn reopening_appends_and_counts_the_existing_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(&path, 1_000, 5).unwrap();
        for i in 0..3 {
            audit.log(record(format!("first-{i}"), AuditDecision::Allowed));
        }
        drop(audit); // the last clone flushes on drop
        let before = std::fs::metadata(&path).unwrap().len();
        assert!(before > 0);
        let audit = Audit::open(&path, before + 10, 5).unwrap();
        audit.log(record("second".into(), AuditDecision::Allowed));
        audit.flush();
        assert!(rotated(&path, 1).exists(), "the existing size counts toward max_bytes");
        assert_eq!(lines(&all_files(&path)).len(), 4);
    }

    #[test]
    fn disabled_and_shut_down_logs() {
        let off = Audit::disabled();
        off.log(record("x".into(), AuditDecision::Allowed));
        off.flush();
        off.shutdown();
        assert!(!off.is_enabled() && off.lost() == 0);

        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open(dir.path().join("a.log"), 1 << 20, 1).unwrap();
        let clone = audit.clone();
        audit.log(record("before".into(), AuditDecision::Allowed));
        audit.shutdown();
        audit.shutdown(); // idempotent
        clone.log(record("after".into(), AuditDecision::Allowed));
        clone.flush(); // returns at once
        assert_eq!(clone.lost(), 1);
        assert_eq!(lines(&[dir.path().join("a.log")]).len(), 1);
    }

    #[test]
    fn args_digest_is_canonical() {
        assert_eq!(args_digest(&Map::new()), "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        let a = json!({"c": {"z": 2.5, "y": "é"}, "b": [true, null, "x"], "a": 1});
        let b = json!({"a": 1, "b": [true, null, "x"], "c": {"y": "é", "z": 2.5}});
        assert_eq!(canonical_json(&a), r#"{"a":1,"b":[true,null,"x"],"c":{"y":"é","z":2.5}}"#);
        let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
        assert_eq!(args_digest(a), args_digest(b));
        assert_eq!(args_digest(a), "14959c1340fcb8d1d7723bd54dfa7d7e8e875be5b4670c17f2a9e799ad3f2c2b");
        assert_ne!(args_digest(a), args_digest(json!({"a": 2}).as_object().unwrap()));
        // Array order matters; key escaping is JSON's.
        assert_ne!(canonical_json(&json!([1, 2])), canonical_json(&json!([2, 1])));
        assert_eq!(canonical_json(&json!({"q\"": "\n"})), r#"{"q\"":"\n"}"#);
    }

    #[test]
    fn rfc3339_times() {
        let at = |secs: u64, ms: u64| rfc3339_ms(UNIX_EPOCH + Duration::from_millis(secs * 1000 + ms));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_700_000_000, 123), "2023-11-14T22:13:20.123Z");
        assert_eq!(at(1_709_251_199, 999), "2024-02-29T23:59:59.999Z");
        assert_eq!(at(4_102_444_799, 7), "2099-12-31T23:59:59.007Z");
        assert_eq!(rfc3339_ms(UNIX_EPOCH - Duration::from_secs(5)), "1970-01-01T00:00:00.000Z");
    }
}
