//! What a node checks before it runs anything: the request's signature (over the raw bytes,
//! before decoding), its caller (proven by the key, never claimed), its age and replay, and the
//! agent's action policy. Every request received is audited, allowed, denied or rejected.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use fleet_protocol::keys::{KeyPair, Keyring};

use crate::audit::Audit;
use crate::config::NodeConfig;
use crate::policy::PolicySet;

/// Remembers request ids until their ttl has passed, so the same bytes are never acted on twice.
/// Expired ids are swept every [`REPLAY_SWEEP_MS`] (and whenever the cache passes
/// [`REPLAY_SWEEP_SIZE`]), so it holds about a ttl's worth of requests, not thousands of dead ids,
/// in a table that does not outgrow them (see [`keep_unexpired`]).
#[derive(Default)]
pub struct ReplayCache {
    seen: Mutex<(HashMap<String, u64>, u64)>,
}

/// How often expired ids are swept, in ms.
const REPLAY_SWEEP_MS: u64 = 10_000;
/// A cache this large is swept at once.
const REPLAY_SWEEP_SIZE: usize = 4096;

impl ReplayCache {
    /// Records `id` until `expires_ms`. Returns false when it was already there (a replay).
    pub fn first_time(&self, id: &str, expires_ms: u64, now_ms: u64) -> bool {
        let mut guard = self.seen.lock().expect("replay cache lock");
        let (seen, next_sweep) = &mut *guard;
        if now_ms >= *next_sweep || seen.len() > REPLAY_SWEEP_SIZE {
            keep_unexpired(seen, now_ms);
            *next_sweep = now_ms + REPLAY_SWEEP_MS;
        }
        match seen.get(id) {
            Some(exp) if *exp > now_ms => false,
            _ => {
                seen.insert(id.to_string(), expires_ms);
                true
            }
        }
    }

    /// Ids held now.
    pub fn len(&self) -> usize {
        self.seen.lock().expect("replay cache lock").0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops the ids expired by `now_ms`. Dropping leaves tombstones that count as used slots, and
/// under a steady stream they would double the table although it holds no more ids (1,024 to 2,048
/// buckets after 2.5 min at 10 requests a second; in `noded sim` every node's table in the same
/// minute). So once they leave less room than a quarter of the ids (about a sweep period's worth
/// at a ttl of a minute), the ids move to a new table of that size.
fn keep_unexpired(seen: &mut HashMap<String, u64>, now_ms: u64) {
    seen.retain(|_, exp| *exp > now_ms);
    let room = seen.len() / 4;
    if seen.capacity() - seen.len() < room {
        let mut fresh = HashMap::with_capacity(seen.len() + room);
        fresh.extend(seen.drain());
        *seen = fresh;
    }
}

pub struct Security {
    pub callers: RwLock<Arc<Keyring>>,
    pub policies: PolicySet,
    pub audit: Audit,
    /// Signs this node's replies.
    pub key: Arc<KeyPair>,
    pub replay: ReplayCache,
    /// Largest accepted distance of `msgtime` into the future, in ms.
    pub max_skew_ms: u64,
    callers_dir: Option<std::path::PathBuf>,
    /// The pinned link key of the ZeroMQ hubs this node attaches to (none on NATS only).
    pub hub_link_key: Option<[u8; 32]>,
    /// The pinned hub signing key, when this node accepts callers and policies from its hub.
    hub_trust_key: Option<[u8; 32]>,
    /// The callers in the callers directory, and the ones the hub distributed (with their
    /// generation); `callers` is their union, the local key winning a shared name.
    local_callers: Mutex<Keyring>,
    hub_callers: Mutex<(u64, Keyring)>,
}

impl Security {
    /// Loads keys, callers, policies and the audit log as the config says. Every failure names the
    /// file and the config key.
    pub fn from_config(cfg: &NodeConfig) -> anyhow::Result<Security> {
        let key = KeyPair::load_private(&cfg.key_file).with_context(|| {
            format!("key_file: cannot load the node key (create it with `noded keygen --out {}`)", cfg.key_file.display())
        })?;
        let callers = match Keyring::load(&cfg.callers_dir) {
            Ok(ring) => ring,
            // With the hub distributing callers, an empty local set is normal on a new node.
            Err(_) if cfg.accept_trust_from_hub && !cfg.callers_dir.exists() => Keyring::default(),
            Err(e) => {
                return Err(anyhow::anyhow!(e))
                    .with_context(|| "callers_dir: the trusted callers' public keys are needed (or set accept_trust_from_hub = true)");
            }
        };
        // Only a ZeroMQ hub link needs the pinned hub key: NATS links are TLS and credentials.
        let hub = match cfg.has_zmq_hub() {
            true => Some(fleet_protocol::keys::PublicKeys::load(&cfg.hub_key).with_context(|| {
                format!("hub_key: the hub's public key is needed to authenticate the link ({})", cfg.hub_key.display())
            })?),
            false => None,
        };
        let audit = match &cfg.audit_log {
            Some(path) => Audit::open(path, cfg.audit_max_bytes, cfg.audit_keep)
                .with_context(|| format!("audit_log: cannot open {}", path.display()))?,
            None => Audit::disabled(),
        };
        Ok(Security {
            callers: RwLock::new(Arc::new(callers.clone())),
            policies: PolicySet::load(&cfg.policy_dir, cfg.policy_default_allow()),
            audit,
            key: Arc::new(key),
            replay: ReplayCache::default(),
            max_skew_ms: (cfg.max_clock_skew * 1000.0) as u64,
            callers_dir: Some(cfg.callers_dir.clone()),
            hub_link_key: hub.as_ref().map(|h| h.link),
            hub_trust_key: hub.filter(|_| cfg.accept_trust_from_hub).map(|h| h.signing),
            local_callers: Mutex::new(callers),
            hub_callers: Default::default(),
        })
    }

    /// For in-process nodes (demo, simulator, benchmarks): given keys, no files.
    pub fn in_memory(
        key: Arc<KeyPair>,
        hub_link_key: Option<[u8; 32]>,
        callers: Keyring,
        policy_dir: &Path,
        default_allow: bool,
        audit: Audit,
    ) -> Security {
        Security {
            callers: RwLock::new(Arc::new(callers.clone())),
            policies: PolicySet::load(policy_dir, default_allow),
            audit,
            key,
            replay: ReplayCache::default(),
            max_skew_ms: 5000,
            callers_dir: None,
            hub_link_key,
            hub_trust_key: None,
            local_callers: Mutex::new(callers),
            hub_callers: Default::default(),
        }
    }

    pub fn callers(&self) -> Arc<Keyring> {
        self.callers.read().expect("callers lock").clone()
    }

    /// The callers directory, when this node has one (not the in-process ones).
    pub fn callers_dir(&self) -> Option<&Path> {
        self.callers_dir.as_deref()
    }

    /// Re-reads the callers directory (on a change, or SIGHUP); a failure keeps the old set.
    pub fn reload_callers(&self) {
        let Some(dir) = &self.callers_dir else { return };
        match Keyring::load(dir) {
            Ok(ring) => {
                tracing::info!(callers = ring.len(), "trusted callers reloaded");
                *self.local_callers.lock().expect("callers lock") = ring;
                self.merge_callers();
            }
            Err(e) if self.hub_trust_key.is_some() && !dir.exists() => {
                tracing::debug!(error = %e, "no local callers directory; the hub's callers apply");
            }
            Err(e) => tracing::error!(error = %e, "cannot reload trusted callers; keeping the old set"),
        }
    }

    fn merge_callers(&self) {
        let mut ring = self.hub_callers.lock().expect("callers lock").1.clone();
        let local = self.local_callers.lock().expect("callers lock").clone();
        for name in local.callers() {
            if let Some(k) = local.get(name) {
                let _ = ring.insert(name, *k);
            }
        }
        *self.callers.write().expect("callers lock") = Arc::new(ring);
    }

    /// Applies the callers and policies a hub distributed: only when this node accepts them, only
    /// when the envelope's signature verifies with the pinned hub key (checked before the body
    /// is decoded), and only when newer than what it holds. `Ok(Some(summary))` when applied,
    /// `Ok(None)` when not wanted or already held.
    pub fn apply_hub_trust(&self, env: &fleet_protocol::Envelope, limits: &fleet_protocol::Limits) -> Result<Option<String>, String> {
        let Some(hub_key) = self.hub_trust_key else { return Ok(None) };
        let (Some(signer), Some(sig)) = (&env.signer, &env.signature) else { return Err("refused: unsigned".into()) };
        if signer != crate::hub::trust::TRUST_SIGNER || !fleet_protocol::keys::verify(&hub_key, &env.signed_bytes(), sig) {
            return Err("refused: the signature does not verify with the pinned hub key".into());
        }
        let Ok(fleet_protocol::Message::Trust(trust)) = env.open(limits) else { return Err("refused: malformed".into()) };
        let mut held = self.hub_callers.lock().expect("callers lock");
        if trust.generation <= held.0 {
            return Ok(None);
        }
        let mut ring = Keyring::default();
        for c in &trust.callers {
            let (Ok(signing), Ok(link)) = (c.signing.as_slice().try_into(), c.link.as_slice().try_into()) else { continue };
            if let Err(e) = ring.insert(&c.name, fleet_protocol::keys::PublicKeys { signing, link }) {
                tracing::warn!(caller = %c.name, error = %e, "caller from the hub left out");
            }
        }
        let summary = format!("{} callers, {} policies (generation {})", ring.len(), trust.policies.len(), trust.generation);
        *held = (trust.generation, ring);
        drop(held);
        self.policies.set_from_hub(&trust.policies);
        self.merge_callers();
        Ok(Some(summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_are_caught_until_they_expire() {
        let c = ReplayCache::default();
        assert!(c.first_time("a", 1000, 0));
        assert!(!c.first_time("a", 1000, 500));
        assert!(c.first_time("a", 3000, 1500), "after its ttl an id may come back");
    }

    #[test]
    fn expired_ids_are_swept_long_before_the_cache_is_large() {
        let c = ReplayCache::default();
        // 2 requests a second with a 60 s ttl, for 10 minutes: the cache holds about 70 s of ids.
        let mut most = 0;
        for i in 0..1200u64 {
            let now = i * 500;
            assert!(c.first_time(&format!("id-{i}"), now + 60_000, now));
            most = most.max(c.len());
        }
        assert!(most <= 2 * (60 + 10) + 2, "the cache held {most} ids");
    }

    #[test]
    fn a_steady_stream_of_ids_does_not_grow_the_table() {
        let c = ReplayCache::default();
        // 10 requests a second with a 65 s life, for 10 minutes: at most 750 ids at once, which a
        // table of 1,024 buckets (room for 896) holds. Only swept in place, it had 2,048 by 2.5 min.
        let mut largest = 0;
        for i in 0..6000u64 {
            let now = i * 100;
            assert!(c.first_time(&format!("{i:032x}"), now + 65_000, now));
            largest = largest.max(c.seen.lock().unwrap().0.capacity());
        }
        assert!(c.len() <= 750, "the cache held {} ids", c.len());
        assert!(largest <= 896, "the table grew to room for {largest} ids");
    }
}
