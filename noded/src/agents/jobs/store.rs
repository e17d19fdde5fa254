//! Jobs on disk: one JSON file per job in the node's jobs directory (`<state_dir>/jobs/<identity>/`),
//! each replaced atomically, so a crash leaves the old record or the new one; and retention by
//! count and age, which only ever removes jobs that will not run again.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use fleet_protocol::files::{create_private_dir, write_atomically};
use tracing::warn;

use super::JobsConfig;
use super::record::Job;

pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir`, created (mode 0700) when missing.
    pub fn open(dir: &Path) -> io::Result<Store> {
        create_private_dir(dir)?;
        Ok(Store { dir: dir.to_path_buf() })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Every job on disk, by id. A file that cannot be read is logged and left where it is.
    pub fn load(&self) -> BTreeMap<String, Job> {
        let mut jobs = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return jobs };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read(&path).map_err(|e| e.to_string()).and_then(|b| serde_json::from_slice::<Job>(&b).map_err(|e| e.to_string()))
            {
                Ok(job) => {
                    jobs.insert(job.id.clone(), job);
                }
                Err(e) => warn!(file = %path.display(), error = %e, "job record not loaded"),
            }
        }
        jobs
    }

    /// Writes `job` (mode 0600: its arguments and output may be private). A failure is logged:
    /// the job goes on in memory, and the error says which file.
    pub fn save(&self, job: &Job) {
        let bytes = serde_json::to_vec_pretty(job).expect("a job always serializes");
        if let Err(e) = write_atomically(&self.path(&job.id), &bytes, 0o600) {
            warn!(job = %job.id, dir = %self.dir.display(), error = %e, "job record not written");
        }
    }

    pub fn remove(&self, id: &str) {
        if let Err(e) = std::fs::remove_file(self.path(id))
            && e.kind() != io::ErrorKind::NotFound
        {
            warn!(job = %id, error = %e, "job record not removed");
        }
    }
}

/// The jobs retention removes at `now`: finished longer than `keep_for` ago, then the oldest
/// finished ones past `max_kept` jobs in all. Jobs that may still run are never chosen.
pub fn expired(jobs: &BTreeMap<String, Job>, config: &JobsConfig, now: u64) -> Vec<String> {
    let keep_ms = (config.keep_for * 1000.0) as u64;
    let mut finished: Vec<&Job> = jobs.values().filter(|j| j.state.is_final()).collect();
    finished.sort_by_key(|j| (j.finished, j.created));
    let mut out: Vec<String> = finished.iter().filter(|j| j.finished + keep_ms < now).map(|j| j.id.clone()).collect();
    let mut left = jobs.len() - out.len();
    for j in finished.iter().filter(|j| j.finished + keep_ms >= now) {
        if left <= config.max_kept {
            break;
        }
        out.push(j.id.clone());
        left -= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::jobs::record::JobState;

    fn job(id: &str, state: JobState, finished: u64) -> Job {
        Job {
            id: id.into(),
            agent: "echo".into(),
            action: "echo".into(),
            args: Default::default(),
            caller: "alice".into(),
            request_id: "r".into(),
            collective: "fleet".into(),
            created: finished,
            state,
            at: 0,
            every: 0,
            next_run: 0,
            runs: 1,
            last: None,
            output: serde_json::Value::Null,
            finished,
        }
    }

    #[test]
    fn records_round_trip_through_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("jobs/n1")).unwrap();
        let j = job("a1", JobState::Ok, 5);
        store.save(&j);
        std::fs::write(tmp.path().join("jobs/n1/broken.json"), "{").unwrap();
        let loaded = store.load();
        assert_eq!(loaded.len(), 1, "the broken file is skipped");
        assert_eq!(loaded["a1"], j);
        store.remove("a1");
        assert!(store.load().is_empty());
    }

    #[test]
    fn retention_removes_old_and_surplus_finished_jobs_only() {
        let config = JobsConfig { max_kept: 3, keep_for: 10.0, ..JobsConfig::default() };
        let mut jobs = BTreeMap::new();
        for (id, state, finished) in [
            ("old", JobState::Ok, 1_000),
            ("f1", JobState::Failed, 50_000),
            ("f2", JobState::Lost, 51_000),
            ("f3", JobState::Cancelled, 52_000),
            ("wait", JobState::Scheduled, 0),
            ("run", JobState::Running, 0),
        ] {
            jobs.insert(id.to_string(), job(id, state, finished));
        }
        // At 55 s: "old" is past 10 s; of the 5 left, the two oldest finished go to keep 3.
        assert_eq!(expired(&jobs, &config, 55_000), ["old", "f1", "f2"]);
        // Jobs that may still run stay even when they alone exceed the count.
        let config = JobsConfig { max_kept: 1, ..config };
        assert_eq!(expired(&jobs, &config, 55_000), ["old", "f1", "f2", "f3"]);
    }
}
