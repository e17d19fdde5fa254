//! The callers and policies a hub distributes to its nodes: read from the hub's callers and
//! policy directories whenever they change, put in one [`Trust`] message signed with the hub's
//! key, sent to every node link when it comes up and again on every change. Nodes that accept
//! trust from their hub (`accept_trust_from_hub`) check the signature against the hub key they
//! pinned, so adding an admin on the hub reaches every node without a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use fleet_protocol::files::{DirStamp, dir_stamp};
use fleet_protocol::keys::{KeyPair, Keyring};
use fleet_protocol::{Envelope, Message, Trust, TrustedCaller};

use crate::policy::{POLICY_EXT, Policy};

/// The signer name on a trust envelope.
pub const TRUST_SIGNER: &str = "hub";
/// Largest policy file distributed.
const MAX_POLICY_BYTES: u64 = 256 * 1024;

/// A new set of callers and policies: the hub's keyring for checking requests, and the signed
/// frame for its nodes.
#[derive(Clone)]
pub struct TrustUpdate {
    pub callers: Option<Keyring>,
    pub frame: Bytes,
}

/// Watches the hub's callers and policy directories (polled by the enrollment thread).
pub struct TrustSource {
    callers_dir: Option<PathBuf>,
    policy_dir: PathBuf,
    key: Arc<KeyPair>,
    stamps: Option<(DirStamp, DirStamp)>,
}

impl TrustSource {
    pub fn new(callers_dir: Option<PathBuf>, policy_dir: PathBuf, key: Arc<KeyPair>) -> TrustSource {
        TrustSource { callers_dir, policy_dir, key, stamps: None }
    }

    /// A new update when either directory changed since the last poll (or when `force`).
    pub fn poll(&mut self, force: bool) -> Option<TrustUpdate> {
        let stamps = (self.callers_dir.as_deref().map(dir_stamp).unwrap_or_default(), dir_stamp(&self.policy_dir));
        if !force && self.stamps.as_ref() == Some(&stamps) {
            return None;
        }
        self.stamps = Some(stamps);
        let callers = match &self.callers_dir {
            Some(dir) => match Keyring::load(dir) {
                Ok(ring) => Some(ring),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the hub's callers; keeping the ones it has");
                    return None;
                }
            },
            None => None,
        };
        let trust = Trust {
            generation: fleet_protocol::now_ms(),
            callers: callers
                .iter()
                .flat_map(|ring| {
                    ring.callers().filter_map(|name| {
                        ring.get(name).map(|k| TrustedCaller { name: name.to_string(), signing: k.signing.to_vec(), link: k.link.to_vec() })
                    })
                })
                .collect(),
            policies: self.read_policies(),
        };
        let mut env = match Envelope::seal(&Message::Trust(trust)) {
            Ok(env) => env,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the callers and policies for the nodes");
                return None;
            }
        };
        env.sign(&self.key, TRUST_SIGNER);
        let frame = env.to_frame().ok()?;
        tracing::info!(callers = callers.as_ref().map_or(0, Keyring::len), "callers and policies for the nodes (re)built");
        Some(TrustUpdate { callers, frame: Bytes::from(frame) })
    }

    /// `<agent>.policy` files that parse; one that does not is left out with an error (the nodes
    /// keep their default for that agent rather than receive something they would deny on).
    fn read_policies(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(&self.policy_dir) else { return out };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.extension().is_none_or(|e| e != POLICY_EXT) || path.metadata().map_or(true, |m| m.len() > MAX_POLICY_BYTES) {
                continue;
            }
            let Some(agent) = path.file_stem().and_then(|s| s.to_str()) else { continue };
            let shown = path.display().to_string();
            match std::fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|t| {
                Policy::parse(&t, &shown).map_err(|e| e.to_string())?;
                Ok(t)
            }) {
                Ok(text) => {
                    out.insert(agent.to_string(), text);
                }
                Err(e) => tracing::error!(file = %shown, error = %e, "policy not distributed"),
            }
        }
        out
    }
}
