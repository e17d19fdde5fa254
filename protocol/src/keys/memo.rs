//! Signatures already checked, shared by keyrings that opted in: `noded sim` runs thousands of
//! nodes in one process, and each would otherwise check the same signed request again. A real
//! node checks each request once anyway; the simulator shares that one check among its nodes so
//! that a simulated node costs its host no more than a real node costs its own.
//!
//! An entry is the SHA-256 of the key, the signature and the signed bytes, recorded only after a
//! strict check passed: the same three inputs always give the same verdict, so a hit is that
//! verdict. Bounded: the oldest entries go first.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// Entries kept; a round's request is looked up by every simulated node within a second or two.
const KEEP: usize = 256;

/// The digests recorded, and the order they came in (for eviction).
type Seen = (HashSet<[u8; 32]>, VecDeque<[u8; 32]>);

#[derive(Debug, Default)]
pub struct VerifiedMemo {
    seen: Mutex<Seen>,
}

impl VerifiedMemo {
    pub(super) fn key(signing_public: &[u8; 32], message: &[u8], signature: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(signing_public);
        h.update((signature.len() as u64).to_be_bytes());
        h.update(signature);
        h.update(message);
        h.finalize().into()
    }

    pub(super) fn contains(&self, key: &[u8; 32]) -> bool {
        self.seen.lock().is_ok_and(|s| s.0.contains(key))
    }

    pub(super) fn insert(&self, key: [u8; 32]) {
        let Ok(mut s) = self.seen.lock() else { return };
        let (set, order) = &mut *s;
        if set.insert(key) {
            order.push_back(key);
            if order.len() > KEEP
                && let Some(old) = order.pop_front()
            {
                set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::keys::{KeyPair, Keyring};

    #[test]
    fn shared_rings_check_a_signature_once_and_never_pass_a_bad_one() {
        let signer = KeyPair::generate();
        let mut ring = Keyring::default();
        ring.insert("ops", signer.public()).unwrap();
        let ring = ring.sharing_verifications();
        let other = ring.clone();
        let message = b"request".to_vec();
        let signature = signer.sign(&message);
        assert!(ring.verify("ops", &message, &signature).is_ok());
        assert!(other.memo.as_ref().unwrap().contains(&super::VerifiedMemo::key(&signer.public().signing, &message, &signature)));
        assert!(other.verify("ops", &message, &signature).is_ok());
        // Another message, a flipped signature, another signer: each still checked, each refused.
        assert!(other.verify("ops", b"tampered", &signature).is_err());
        let mut flipped = signature;
        flipped[10] ^= 1;
        assert!(other.verify("ops", &message, &flipped).is_err());
        assert!(other.verify("nobody", &message, &signature).is_err());
        // Bounded.
        for i in 0..1000u32 {
            let m = i.to_be_bytes();
            assert!(ring.verify("ops", &m, &signer.sign(&m)).is_ok());
        }
        assert!(ring.memo.as_ref().unwrap().seen.lock().unwrap().0.len() <= super::KEEP);
    }
}
