//! Encrypted, authenticated links: a Noise handshake (`Noise_IK_25519_ChaChaPoly_BLAKE2s`, the
//! `snow` crate) carried in ZeroMQ frames between a node or console (the initiator, which pins the
//! hub's static key) and the hub (the responder, which accepts only enrolled keys). After the
//! handshake every frame is encrypted and authenticated; a reconnect is a new handshake.
//!
//! Frames on the wire:
//! - handshake, initiator -> hub: `FLN1` + Noise message 1 (its payload: the name the peer
//!   claims, only used to label a key waiting for enrollment);
//! - handshake, hub -> initiator: `FLN2` + Noise message 2;
//! - transport: `FLNT` + a sequence of `u16 length + Noise message` chunks (a Noise message holds
//!   at most 65,535 bytes, our frames up to 16 MiB).
//!
//! No cryptography is written here: Noise does all of it. This file only frames its messages.

use snow::{Builder, HandshakeState, TransportState};

use crate::join::JoinProof;
use crate::keys::KeyPair;

pub const NOISE_PATTERN: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
pub const TAG_HANDSHAKE_1: &[u8; 4] = b"FLN1";
pub const TAG_HANDSHAKE_2: &[u8; 4] = b"FLN2";
pub const TAG_TRANSPORT: &[u8; 4] = b"FLNT";
/// hub -> joiner, in the clear: why a join claim was refused (a token's state is no secret).
pub const TAG_REFUSED: &[u8; 4] = b"FLNX";
/// The AEAD tag Noise appends to each chunk.
const TAG_LEN: usize = 16;
/// Bytes of plaintext per Noise transport message (65,535 minus the 16-byte tag).
const CHUNK: usize = 65_535 - TAG_LEN;
/// Largest name a peer may claim in its handshake.
const MAX_NAME: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum NoiseError {
    #[error("not a {0} frame")]
    WrongFrame(&'static str),
    #[error("handshake failed: {0}")]
    Handshake(snow::Error),
    #[error("frame does not decrypt (wrong key, tampered, or out of order): {0}")]
    Decrypt(snow::Error),
    #[error("malformed encrypted frame: {0}")]
    Malformed(&'static str),
    #[error("{0}")]
    Snow(#[from] snow::Error),
    #[error("the hub refused: {0}")]
    Refused(String),
}

fn params() -> snow::params::NoiseParams {
    NOISE_PATTERN.parse().expect("static noise pattern")
}

/// Whether a frame is a handshake opening (so the hub can tell it from an encrypted one).
pub fn is_handshake_1(frame: &[u8]) -> bool {
    frame.starts_with(TAG_HANDSHAKE_1)
}

/// The connecting side of a handshake.
pub struct Initiator {
    hs: HandshakeState,
}

impl Initiator {
    /// Starts a handshake to a hub whose link key is `hub_link_public`. Returns the first frame.
    pub fn start(local: &KeyPair, hub_link_public: &[u8; 32], claimed_name: &str) -> Result<(Initiator, Vec<u8>), NoiseError> {
        Self::start_with(local, hub_link_public, claimed_name, None)
    }

    /// Starts a handshake that also claims a join token (`proof`): an unknown key that carries a
    /// valid proof is enrolled by the hub instead of waiting under `pending/`. The payload is
    /// encrypted to the hub's static key.
    pub fn start_with(
        local: &KeyPair,
        hub_link_public: &[u8; 32],
        claimed_name: &str,
        proof: Option<&JoinProof>,
    ) -> Result<(Initiator, Vec<u8>), NoiseError> {
        let mut hs =
            Builder::new(params()).local_private_key(local.link_private())?.remote_public_key(hub_link_public)?.build_initiator()?;
        let name: String = claimed_name.chars().filter(|c| *c != '\n').collect();
        let mut payload = name.as_bytes()[..name.len().min(MAX_NAME)].to_vec();
        if let Some(p) = proof {
            payload.push(b'\n');
            payload.extend_from_slice(p.to_line().as_bytes());
        }
        let mut buf = vec![0u8; 256 + payload.len()];
        let n = hs.write_message(&payload, &mut buf).map_err(NoiseError::Handshake)?;
        let mut frame = TAG_HANDSHAKE_1.to_vec();
        frame.extend_from_slice(&buf[..n]);
        Ok((Initiator { hs }, frame))
    }

    /// Reads the hub's answer; a hub that does not hold the pinned key fails here.
    pub fn finish(self, frame: &[u8]) -> Result<Session, NoiseError> {
        self.finish_named(frame).map(|(session, _)| session)
    }

    /// Reads the hub's answer, with the name the hub enrolled this key under (empty from a hub
    /// that does not say).
    pub fn finish_named(mut self, frame: &[u8]) -> Result<(Session, String), NoiseError> {
        if let Some(reason) = frame.strip_prefix(TAG_REFUSED.as_slice()) {
            return Err(NoiseError::Refused(String::from_utf8_lossy(&reason[..reason.len().min(512)]).into_owned()));
        }
        let msg = frame.strip_prefix(TAG_HANDSHAKE_2.as_slice()).ok_or(NoiseError::WrongFrame("handshake reply"))?;
        let mut payload = vec![0u8; msg.len()];
        let n = self.hs.read_message(msg, &mut payload).map_err(NoiseError::Handshake)?;
        let name = String::from_utf8_lossy(&payload[..n.min(MAX_NAME)]).into_owned();
        Ok((Session { ts: self.hs.into_transport_mode()? }, name))
    }
}

/// The hub's side of a handshake, after reading message 1 and before deciding to accept it.
pub struct Responder {
    hs: HandshakeState,
    /// The initiator's static link key: what enrollment checks.
    pub remote_static: [u8; 32],
    /// The name the initiator claims (a label for a pending enrollment, not proof).
    pub claimed_name: String,
    /// A join token the initiator claims, if any (checked by enrollment, not here).
    pub join: Option<JoinProof>,
}

impl Responder {
    /// Reads a handshake opening with the hub's key pair.
    pub fn read(local: &KeyPair, frame: &[u8]) -> Result<Responder, NoiseError> {
        let msg = frame.strip_prefix(TAG_HANDSHAKE_1.as_slice()).ok_or(NoiseError::WrongFrame("handshake opening"))?;
        let mut hs = Builder::new(params()).local_private_key(local.link_private())?.build_responder()?;
        let mut payload = vec![0u8; msg.len()];
        let n = hs.read_message(msg, &mut payload).map_err(NoiseError::Handshake)?;
        let remote: [u8; 32] =
            hs.get_remote_static().and_then(|k| k.try_into().ok()).ok_or(NoiseError::Malformed("no remote static key"))?;
        let payload = &payload[..n];
        let (name, rest) = match payload.iter().position(|b| *b == b'\n') {
            Some(i) => (&payload[..i], Some(&payload[i + 1..])),
            None => (payload, None),
        };
        let claimed_name = String::from_utf8_lossy(&name[..name.len().min(MAX_NAME)]).into_owned();
        let join = rest.and_then(|r| std::str::from_utf8(r).ok()).and_then(JoinProof::from_line);
        Ok(Responder { hs, remote_static: remote, claimed_name, join })
    }

    /// Accepts: returns the session and the frame that completes the handshake.
    pub fn accept(self) -> Result<(Session, Vec<u8>), NoiseError> {
        self.accept_as("")
    }

    /// Accepts, telling the peer the name its key is enrolled under (encrypted).
    pub fn accept_as(mut self, name: &str) -> Result<(Session, Vec<u8>), NoiseError> {
        let name = &name.as_bytes()[..name.len().min(MAX_NAME)];
        let mut buf = vec![0u8; 256 + name.len()];
        let n = self.hs.write_message(name, &mut buf).map_err(NoiseError::Handshake)?;
        let mut frame = TAG_HANDSHAKE_2.to_vec();
        frame.extend_from_slice(&buf[..n]);
        Ok((Session { ts: self.hs.into_transport_mode()? }, frame))
    }
}

/// An established link: seals and opens frames in order.
pub struct Session {
    ts: TransportState,
}

impl Session {
    /// Encrypts one frame.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let chunks = plaintext.len().div_ceil(CHUNK).max(1);
        let mut out = Vec::with_capacity(4 + plaintext.len() + chunks * 18);
        out.extend_from_slice(TAG_TRANSPORT);
        // Sized to the largest chunk plus its tag, not to Noise's 64 KiB maximum: zeroing 64 KiB
        // for every frame of a few hundred bytes was a visible share of the hub's CPU.
        let mut buf = vec![0u8; plaintext.len().min(CHUNK) + TAG_LEN];
        let mut pieces = plaintext.chunks(CHUNK).peekable();
        if pieces.peek().is_none() {
            let n = self.ts.write_message(&[], &mut buf)?;
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out.extend_from_slice(&buf[..n]);
        }
        for piece in pieces {
            let n = self.ts.write_message(piece, &mut buf)?;
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out.extend_from_slice(&buf[..n]);
        }
        Ok(out)
    }

    /// Decrypts one frame; any tampering, reordering or wrong key is an error.
    pub fn open(&mut self, frame: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let mut rest = frame.strip_prefix(TAG_TRANSPORT.as_slice()).ok_or(NoiseError::WrongFrame("encrypted"))?;
        let mut out = Vec::with_capacity(rest.len());
        // A chunk's plaintext is never longer than its ciphertext, which is at most 64 KiB.
        let mut buf = vec![0u8; rest.len().min(65_535)];
        if rest.is_empty() {
            return Err(NoiseError::Malformed("no chunks"));
        }
        while !rest.is_empty() {
            if rest.len() < 2 {
                return Err(NoiseError::Malformed("truncated chunk header"));
            }
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            let body = rest.get(2..2 + len).ok_or(NoiseError::Malformed("truncated chunk"))?;
            let n = self.ts.read_message(body, &mut buf).map_err(NoiseError::Decrypt)?;
            out.extend_from_slice(&buf[..n]);
            rest = &rest[2 + len..];
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Session, Session, KeyPair, KeyPair) {
        let hub = KeyPair::generate();
        let node = KeyPair::generate();
        let (init, m1) = Initiator::start(&node, &hub.public().link, "web-01").unwrap();
        let resp = Responder::read(&hub, &m1).unwrap();
        assert_eq!(resp.remote_static, node.public().link, "the hub learns the node's key");
        assert_eq!(resp.claimed_name, "web-01");
        let (hub_side, m2) = resp.accept().unwrap();
        let node_side = init.finish(&m2).unwrap();
        (node_side, hub_side, node, hub)
    }

    #[test]
    fn frames_round_trip_both_ways_including_large_ones() {
        let (mut a, mut b, _, _) = pair();
        for size in [0usize, 1, 100, 65_519, 65_520, 200_000, 3 * 1024 * 1024] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let f = a.seal(&data).unwrap();
            if size > 16 {
                assert!(!f.windows(16).any(|w| w == &data[..16]), "not in the clear");
            }
            assert_eq!(b.open(&f).unwrap(), data);
            let g = b.seal(&data).unwrap();
            assert_eq!(a.open(&g).unwrap(), data);
        }
    }

    #[test]
    fn tampering_replay_and_wrong_hub_key_fail() {
        let (mut a, mut b, node, _) = pair();
        let mut f = a.seal(b"hello").unwrap();
        let last = f.len() - 1;
        f[last] ^= 1;
        assert!(b.open(&f).is_err());
        let (mut a, mut b, _, _) = pair();
        let f = a.seal(b"once").unwrap();
        b.open(&f).unwrap();
        assert!(b.open(&f).is_err(), "a replayed frame does not decrypt");
        // A man in the middle without the pinned hub key cannot answer the handshake.
        let real_hub = KeyPair::generate();
        let mitm = KeyPair::generate();
        let (_init, m1) = Initiator::start(&node, &real_hub.public().link, "web-01").unwrap();
        assert!(Responder::read(&mitm, &m1).is_err(), "message 1 is encrypted to the pinned key");
        let (init, _m1) = Initiator::start(&node, &real_hub.public().link, "web-01").unwrap();
        let (mitm_init, m1b) = Initiator::start(&node, &mitm.public().link, "x").unwrap();
        drop(mitm_init);
        let (_, m2_from_mitm) = Responder::read(&mitm, &m1b).unwrap().accept().unwrap();
        assert!(init.finish(&m2_from_mitm).is_err());
    }
}
