//! Any bytes as one frame off the wire, as the hub and every node see it: decode the envelope
//! (size and depth limits), check its signature against a fixed keyring over the raw body, then
//! decode the body by kind. Nothing may panic, hang or allocate without bound, and whatever
//! decodes must encode again.

#![no_main]

use std::sync::OnceLock;

use fleet_protocol::codec::Limits;
use fleet_protocol::keys::{KeyPair, Keyring};
use fleet_protocol::{Envelope, Message, NodeView};
use libfuzzer_sys::fuzz_target;

/// The caller the seeds are signed by (examples/make_seeds.rs uses the same bytes).
fn keyring() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| {
        let mut ring = Keyring::default();
        ring.insert("alice", KeyPair::from_secret_bytes(&[7; 32], &[8; 32]).public()).expect("valid name");
        ring
    })
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(env) = Envelope::from_frame(data, &limits) else { return };
    if let Ok(signer) = env.verify(keyring()) {
        // Only an unmodified seed gets here; the proven signer is the one the ring knows.
        assert_eq!(signer, "alice");
        let again = Envelope::from_frame(&env.to_frame().expect("re-encode"), &limits).expect("re-decode");
        assert!(again.verify(keyring()).is_ok(), "a verified envelope must survive a round trip");
    }
    let Ok(message) = env.open(&limits) else { return };
    // The hub compiles a Discover filter from an unauthenticated console, and nodes compile
    // every request's filter: both must refuse garbage without panicking.
    let filter = match &message {
        Message::Discover(d) => Some(&d.filter),
        Message::Request(r) => Some(&r.filter),
        _ => None,
    };
    if let Some(expr) = filter.and_then(|f| f.compile().ok()) {
        let facts = serde_json::json!({"customer": "acme", "cpu": {"count": 8}, "tags": ["a", "b"]});
        let classes = vec!["acme::devserver".to_string()];
        let view = NodeView { identity: "node-1", facts: &facts, classes: &classes, agents: vec!["rpcutil", "echo"] };
        let _ = expr.matches(&view);
    }
    let resealed = Envelope::seal(&message).expect("a decoded message encodes again");
    resealed.open(&limits).expect("and decodes again");
});
