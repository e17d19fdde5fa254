//! The balancer's memory and policy on disk: past migrations (read for the cooldowns, appended to
//! on apply, written atomically) and the policy file, with where it came from.

use std::path::{Path, PathBuf};

use super::balancer::{BalancerPolicy, PastMigration};
use crate::error::{ClientError, Result};

/// Past migrations from `path`; none when there is no path, no file, or an empty one.
pub fn load_history(path: Option<&Path>) -> Result<Vec<PastMigration>> {
    let Some(path) = path else { return Ok(Vec::new()) };
    let what = || format!("reading past migrations from {}", path.display());
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(Vec::new()),
        Ok(text) => serde_json::from_str(&text).map_err(|e| ClientError::Config(format!("{}: {e}", what()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(ClientError::io(what(), e)),
    }
}

/// Replaces the history file (write to a temp file, then rename).
pub fn save_history(path: Option<&Path>, migrations: &[PastMigration]) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_string_pretty(migrations).map_err(|e| ClientError::Config(format!("encoding the history: {e}")))? + "\n";
    std::fs::write(&tmp, text).map_err(|e| ClientError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| ClientError::io(format!("replacing {}", path.display()), e))
}

/// Appends one started migration to the history file, forgetting what the policy no longer needs.
pub fn record_migration(path: Option<&Path>, policy: &BalancerPolicy, m: PastMigration) -> Result<()> {
    if path.is_none() {
        return Ok(());
    }
    let now = m.at_ms;
    let mut all = load_history(path)?;
    all.push(m);
    all.retain(|p| now.saturating_sub(p.at_ms) < policy.memory_ms().max(1));
    save_history(path, &all)
}

/// Where the balancer's policy came from.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicySource {
    /// No policy file: the defaults.
    Default,
    File(PathBuf),
    /// The file is wrong; the defaults are used meanwhile.
    Invalid {
        file: PathBuf,
        error: String,
    },
}

/// The policy in `path` when it exists, else the defaults; a broken file is reported, not fatal.
pub fn load_policy(path: Option<&Path>) -> (BalancerPolicy, PolicySource) {
    match path {
        Some(p) if p.exists() => match BalancerPolicy::load(p) {
            Ok(policy) => (policy, PolicySource::File(p.to_path_buf())),
            Err(e) => (BalancerPolicy::default(), PolicySource::Invalid { file: p.to_path_buf(), error: e.to_string() }),
        },
        _ => (BalancerPolicy::default(), PolicySource::Default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_round_trips_and_forgets_old_moves() {
        let dir = std::env::temp_dir().join(format!("fleet-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.json");
        let _ = std::fs::remove_file(&path);
        assert!(load_history(Some(&path)).unwrap().is_empty());
        let policy = BalancerPolicy::default();
        let old = PastMigration { at_ms: 1, domu: "a".into(), from: "x".into(), to: "y".into() };
        record_migration(Some(&path), &policy, old).unwrap();
        let now = 1 + policy.memory_ms().max(1) + 10;
        record_migration(Some(&path), &policy, PastMigration { at_ms: now, domu: "b".into(), from: "x".into(), to: "y".into() }).unwrap();
        let h = load_history(Some(&path)).unwrap();
        assert_eq!(h.iter().map(|p| p.domu.as_str()).collect::<Vec<_>>(), ["b"]);
        std::fs::write(&path, "not json").unwrap();
        assert!(load_history(Some(&path)).unwrap_err().to_string().contains("history.json"));
        let (_, src) = load_policy(Some(&dir.join("missing.toml")));
        assert_eq!(src, PolicySource::Default);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
