//! Many signatures checked at once. ed25519 batch verification costs a third to a half of a
//! single check per signature from a few dozen up, which is what a console pays for the replies
//! of a 1,000-node round; the answer for each signature stays the one [`Keyring::verify`] gives.

use ed25519_dalek::{Signature, VerifyingKey};

use super::{Keyring, VerifyError};

/// One signature to check: who is said to have made it, over which bytes.
#[derive(Debug, Clone, Copy)]
pub struct SignedBytes<'a> {
    pub signer: &'a str,
    pub message: &'a [u8],
    pub signature: &'a [u8],
}

impl Keyring {
    /// Checks every item, giving for each what [`Keyring::verify`] gives for it. The signatures
    /// of known signers are checked together in one batch; when the batch fails, each of them is
    /// checked alone, so a bad signature neither passes nor makes a good one fail.
    ///
    /// A passing batch is the cofactored ed25519 check. It differs from the strict single check
    /// only on signatures that the key's own holder built on purpose (a small-order or mixed-order
    /// `R`): nobody without the key can make a signature that one accepts and the other refuses.
    pub fn verify_batch(&self, items: &[SignedBytes<'_>]) -> Vec<Result<(), VerifyError>> {
        let mut results = Vec::with_capacity(items.len());
        // Indices into `items` of the signatures in the batch, and the batch's three columns.
        let mut members = Vec::with_capacity(items.len());
        let mut messages: Vec<&[u8]> = Vec::with_capacity(items.len());
        let mut signatures: Vec<Signature> = Vec::with_capacity(items.len());
        let mut keys: Vec<VerifyingKey> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Some(trusted) = self.callers.get(item.signer) else {
                results.push(Err(VerifyError::UnknownCaller(item.signer.to_string())));
                continue;
            };
            let Ok(signature) = Signature::from_slice(item.signature) else {
                results.push(Err(VerifyError::BadSignature(item.signer.to_string())));
                continue;
            };
            // Provisional: the batch below, or the single check, settles it.
            results.push(Ok(()));
            members.push(i);
            messages.push(item.message);
            signatures.push(signature);
            keys.push(trusted.verifier);
        }
        // One signature alone is cheaper to check singly than as a batch of one.
        let all_good = members.len() > 1 && ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok();
        if !all_good {
            for i in members {
                let item = &items[i];
                results[i] = self.verify(item.signer, item.message, item.signature);
            }
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyPair;

    /// `n` signers named `node-<i>`, the ring that trusts them, and one signed message each.
    struct Signed {
        ring: Keyring,
        names: Vec<String>,
        messages: Vec<Vec<u8>>,
        signatures: Vec<[u8; 64]>,
    }

    fn signed(n: usize) -> Signed {
        let mut s = Signed { ring: Keyring::default(), names: Vec::new(), messages: Vec::new(), signatures: Vec::new() };
        for i in 0..n {
            let keys = KeyPair::generate();
            let name = format!("node-{i}");
            s.ring.insert(&name, keys.public()).unwrap();
            let message = format!("reply {i}").into_bytes();
            s.signatures.push(keys.sign(&message));
            s.names.push(name);
            s.messages.push(message);
        }
        s
    }

    fn items<'a>(names: &'a [String], messages: &'a [Vec<u8>], signatures: &'a [[u8; 64]]) -> Vec<SignedBytes<'a>> {
        (0..names.len()).map(|i| SignedBytes { signer: &names[i], message: &messages[i], signature: &signatures[i] }).collect()
    }

    #[test]
    fn a_batch_of_good_signatures_passes() {
        let Signed { ring, names, messages, signatures } = signed(40);
        let results = ring.verify_batch(&items(&names, &messages, &signatures));
        assert_eq!(results, vec![Ok(()); 40]);
        assert!(ring.verify_batch(&[]).is_empty());
        assert_eq!(ring.verify_batch(&items(&names[..1], &messages[..1], &signatures[..1])), [Ok(())]);
    }

    #[test]
    fn one_forged_signature_fails_alone() {
        let Signed { ring, names, mut messages, mut signatures } = signed(40);
        messages[7].push(b'!');
        signatures[23][5] ^= 1;
        let results = ring.verify_batch(&items(&names, &messages, &signatures));
        for (i, r) in results.iter().enumerate() {
            match i {
                7 | 23 => assert_eq!(r, &Err(VerifyError::BadSignature(names[i].clone())), "{i}"),
                _ => assert_eq!(r, &Ok(()), "{i}"),
            }
        }
    }

    #[test]
    fn a_signature_is_proven_for_its_signer_only() {
        let Signed { ring, mut names, messages, signatures } = signed(10);
        // node-3 claims node-4's signature, and a signer the ring does not know claims node-5's.
        names[4] = "node-3".into();
        names[5] = "stranger".into();
        let results = ring.verify_batch(&items(&names, &messages, &signatures));
        assert_eq!(results[4], Err(VerifyError::BadSignature("node-3".into())));
        assert_eq!(results[5], Err(VerifyError::UnknownCaller("stranger".into())));
        assert!(results.iter().enumerate().all(|(i, r)| i == 4 || i == 5 || r.is_ok()), "{results:?}");
    }

    #[test]
    fn malformed_and_non_canonical_signatures_fail_alone() {
        let Signed { ring, names, messages, mut signatures } = signed(8);
        let mut list = items(&names, &messages, &signatures);
        list[0].signature = &signatures[0][..63];
        let results = ring.verify_batch(&list);
        assert_eq!(results[0], Err(VerifyError::BadSignature("node-0".into())));
        assert!(results[1..].iter().all(Result::is_ok));
        // s + l: the same signature to a lax check, refused by the strict one and by the batch.
        let order: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (s, l) in signatures[2][32..].iter_mut().zip(order) {
            let sum = u16::from(*s) + u16::from(l) + carry;
            *s = sum as u8;
            carry = sum >> 8;
        }
        let results = ring.verify_batch(&items(&names, &messages, &signatures));
        assert_eq!(results[2], Err(VerifyError::BadSignature("node-2".into())));
        assert!(results.iter().enumerate().all(|(i, r)| i == 2 || r.is_ok()), "{results:?}");
    }
}
