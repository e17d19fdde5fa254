//! Any bytes as a link frame at the hub, before anything is authenticated: a handshake opening
//! (`FLN1` + Noise message 1, read with the hub's key; fleet parses the claimed name) or an
//! encrypted frame (`FLNT` + length-prefixed Noise messages, fleet's own chunk framing). Nothing may
//! panic, and nothing random may decrypt.

#![no_main]

use std::sync::{Mutex, OnceLock};

use fleet_protocol::keys::KeyPair;
use fleet_protocol::noise::{Initiator, Responder, Session, TAG_HANDSHAKE_1, TAG_TRANSPORT};
use libfuzzer_sys::fuzz_target;

fn hub_key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(|| KeyPair::from_secret_bytes(&[1; 32], &[2; 32]))
}

/// The hub's side of one established link (made once: a handshake per input would drown the
/// fuzzer in Diffie-Hellman).
fn hub_session() -> &'static Mutex<Session> {
    static SESSION: OnceLock<Mutex<Session>> = OnceLock::new();
    SESSION.get_or_init(|| {
        let node = KeyPair::from_secret_bytes(&[3; 32], &[4; 32]);
        let (init, m1) = Initiator::start(&node, &hub_key().public().link, "node-1").expect("start");
        let (hub_side, m2) = Responder::read(hub_key(), &m1).expect("read").accept().expect("accept");
        init.finish(&m2).expect("finish");
        Mutex::new(hub_side)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    if selector & 1 == 0 {
        let frame = [TAG_HANDSHAKE_1.as_slice(), rest].concat();
        if let Ok(responder) = Responder::read(hub_key(), &frame) {
            assert!(responder.claimed_name.len() <= 255 * 3, "the claimed name is bounded");
            let _ = responder.accept();
        }
    } else {
        let frame = [TAG_TRANSPORT.as_slice(), rest].concat();
        let opened = hub_session().lock().unwrap().open(&frame);
        assert!(opened.is_err(), "random bytes decrypted");
    }
});
