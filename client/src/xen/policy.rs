//! The balancer's policy file: the limits and barriers of [`super::balancer::decide`], the dom0
//! address map, and the `[rules]` in fleet's filter language ([`super::rules`]). Every key has a
//! default; unknown keys and bad values are errors that name the file, the line or the key.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::rules::Rules;

/// The balancer's policy, from a TOML file. Every key has a default; unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BalancerPolicy {
    /// Seconds between two samples of every dom0.
    pub interval: f64,
    /// A dom0 whose 1-minute load average is above this is over.
    pub load_threshold: f64,
    /// Minutes a dom0 must stay over before one of its domUs is moved.
    pub max_over: f64,
    /// A dom0 with this many domUs receives no more.
    pub max_vm_per_host: usize,
    /// A dom0 receives a domU only while its load is under this.
    pub max_load_candidate: f64,
    /// At most this many migrations in one round.
    pub max_migrations_per_round: usize,
    /// Dom0 name -> the address migrations to it use (e.g. a crossover link with no DNS entry).
    pub host_mapping: BTreeMap<String, String>,
    /// Minutes after a domU moved during which it does not move again.
    pub vm_cooldown: f64,
    /// Minutes after a dom0 sent or received a domU during which it neither sends nor receives.
    pub host_cooldown: f64,
    /// DomUs that never move.
    pub pinned: Vec<String>,
    /// Dom0s in maintenance: they neither send nor receive.
    pub maintenance: Vec<String>,
    /// Which domUs may move, which dom0s may receive them and which come first, in fleet's
    /// filter language (`[rules]`); none by default.
    pub rules: Rules,
}

impl Default for BalancerPolicy {
    fn default() -> Self {
        BalancerPolicy {
            interval: 60.0,
            load_threshold: 1.0,
            max_over: 5.0,
            max_vm_per_host: 10,
            max_load_candidate: 0.5,
            max_migrations_per_round: 1,
            host_mapping: BTreeMap::new(),
            vm_cooldown: 30.0,
            host_cooldown: 10.0,
            pinned: Vec::new(),
            maintenance: Vec::new(),
            rules: Rules::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read balancer policy {file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}:{line}: {message}")]
    Parse { file: String, line: usize, message: String },
    #[error("{file}: {key}: {message}")]
    Invalid { file: String, key: String, message: String },
}

impl BalancerPolicy {
    pub fn load(path: &Path) -> Result<BalancerPolicy, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read { file: file.clone(), source })?;
        Self::from_toml(&text, &file)
    }

    /// Parses a policy; `file` is only used in error messages.
    pub fn from_toml(text: &str, file: &str) -> Result<BalancerPolicy, PolicyError> {
        let policy: BalancerPolicy = toml::from_str(text).map_err(|e| PolicyError::Parse {
            file: file.to_string(),
            line: e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1).unwrap_or(0),
            message: e.message().trim().to_string(),
        })?;
        policy.check(file)?;
        Ok(policy)
    }

    pub fn check(&self, file: &str) -> Result<(), PolicyError> {
        let bad = |key: &str, message: String| Err(PolicyError::Invalid { file: file.into(), key: key.into(), message });
        if !(self.interval.is_finite() && self.interval > 0.0) {
            return bad("interval", format!("must be a positive number of seconds (got {})", self.interval));
        }
        for (key, v) in [("load_threshold", self.load_threshold), ("max_load_candidate", self.max_load_candidate)] {
            if !(v.is_finite() && v > 0.0) {
                return bad(key, format!("must be a positive load (got {v})"));
            }
        }
        for (key, v) in [("max_over", self.max_over), ("vm_cooldown", self.vm_cooldown), ("host_cooldown", self.host_cooldown)] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(key, format!("must be a number of minutes, 0 or more (got {v})"));
            }
        }
        if self.max_vm_per_host == 0 {
            return bad("max_vm_per_host", "must be at least 1".into());
        }
        if self.max_migrations_per_round == 0 {
            return bad("max_migrations_per_round", "must be at least 1 (to only watch, run the balancer without --apply)".into());
        }
        if self.max_load_candidate > self.load_threshold {
            return bad(
                "max_load_candidate",
                format!(
                    "{} is above load_threshold {}: a dom0 could receive a domU while over the threshold",
                    self.max_load_candidate, self.load_threshold
                ),
            );
        }
        for (name, address) in &self.host_mapping {
            if address.is_empty() || address.starts_with('-') || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return bad(&format!("host_mapping.{name}"), format!("'{address}' is not a host name or address"));
            }
        }
        Ok(())
    }

    /// The address migrations to `dom0` use.
    pub fn address_of(&self, dom0: &str) -> String {
        self.host_mapping.get(dom0).cloned().unwrap_or_else(|| dom0.to_string())
    }

    /// How far back observations matter: the overload window plus a few samples either side.
    pub fn history_ms(&self) -> u64 {
        minutes_ms(self.max_over) + secs_ms(self.interval * 4.0)
    }

    /// How long past migrations matter.
    pub fn memory_ms(&self) -> u64 {
        minutes_ms(self.vm_cooldown.max(self.host_cooldown))
    }
}

pub(super) fn minutes_ms(m: f64) -> u64 {
    (m * 60_000.0).round() as u64
}

pub(super) fn secs_ms(s: f64) -> u64 {
    (s * 1000.0).round() as u64
}
