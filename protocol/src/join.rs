//! Join tokens: how a host or an admin enrolls with a hub without an admin copying keys around.
//!
//! `noded hub token` makes a token: the hub's endpoint, the hub's public keys (pinned by whoever
//! joins), a token id and a random secret. The hub keeps only the secret's SHA-256, with the
//! token's role, use count and expiry. The joiner (`noded join`, `fleet join`) opens a normal
//! link handshake with its own key and puts a [`JoinProof`] in the handshake's first message,
//! which Noise encrypts to the hub's static key: the secret, and a signature by the joiner's
//! signing key over its link key, so the hub enrolls both halves of a key pair the joiner holds.
//!
//! The token carries the hub's whole public key, not only its fingerprint: the link handshake
//! (Noise IK) needs the hub's static key before the first message, and fetching it first would
//! be an unauthenticated step.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::Digest as _;

use crate::keys::{KeyPair, PublicKeys};

/// The token format's first field.
pub const TOKEN_PREFIX: &str = "fleet1";
/// What the joiner's signature covers, before its link key and the token id.
const PROOF_CONTEXT: &[u8] = b"fleet-join-v1";

/// A decoded join token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// The hub endpoint to attach to, e.g. `tcp://bastion:7402`.
    pub endpoint: String,
    /// The hub's public keys, pinned by the joiner.
    pub hub: PublicKeys,
    /// Names the token's record on the hub.
    pub id: String,
    pub secret: [u8; 16],
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken").field("endpoint", &self.endpoint).field("id", &self.id).finish_non_exhaustive()
    }
}

/// SHA-256 of a secret, in hex: all the hub stores of a token's secret.
pub fn secret_hash(secret: &[u8; 16]) -> String {
    sha2::Sha256::digest(secret).iter().map(|b| format!("{b:02x}")).collect()
}

impl JoinToken {
    /// A fresh token for `endpoint` and the hub's `hub` keys.
    pub fn generate(endpoint: &str, hub: PublicKeys) -> JoinToken {
        let id: [u8; 4] = rand::random();
        JoinToken { endpoint: endpoint.to_string(), hub, id: id.iter().map(|b| format!("{b:02x}")).collect(), secret: rand::random() }
    }

    /// `fleet1.ID.SECRET.HUB-SIGNING.HUB-LINK.ENDPOINT`, base64url fields: one shell word.
    pub fn encode(&self) -> String {
        format!(
            "{TOKEN_PREFIX}.{}.{}.{}.{}.{}",
            self.id,
            B64.encode(self.secret),
            B64.encode(self.hub.signing),
            B64.encode(self.hub.link),
            B64.encode(self.endpoint.as_bytes())
        )
    }

    /// Parses a token, saying what is wrong with a mangled one.
    pub fn parse(text: &str) -> Result<JoinToken, String> {
        let fields: Vec<&str> = text.trim().split('.').collect();
        if fields.first() != Some(&TOKEN_PREFIX) {
            return Err(format!("not a fleet join token (it should start with {TOKEN_PREFIX}.)"));
        }
        let [_, id, secret, signing, link, endpoint] = fields[..] else {
            return Err(format!("a join token has 6 fields separated by dots, this one has {} (cut short?)", fields.len()));
        };
        let bytes = |what: &str, s: &str| B64.decode(s).map_err(|_| format!("the token's {what} is not valid base64url (cut short?)"));
        let key = |what: &str, s: &str| -> Result<[u8; 32], String> {
            bytes(what, s)?.try_into().map_err(|_| format!("the token's {what} is not 32 bytes (cut short?)"))
        };
        if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("the token's id is not 8 hex digits".into());
        }
        let secret: [u8; 16] = bytes("secret", secret)?.try_into().map_err(|_| "the token's secret is not 16 bytes".to_string())?;
        let endpoint = String::from_utf8(bytes("endpoint", endpoint)?).map_err(|_| "the token's endpoint is not text".to_string())?;
        Ok(JoinToken {
            endpoint,
            hub: PublicKeys { signing: key("hub signing key", signing)?, link: key("hub link key", link)? },
            id: id.to_string(),
            secret,
        })
    }

    /// The hub's key fingerprint, as `noded hub enroll --list` and the logs show keys.
    pub fn hub_fingerprint(&self) -> String {
        fingerprint(&self.hub.link)
    }

    /// What `joiner` puts in its handshake to use this token.
    pub fn proof(&self, joiner: &KeyPair) -> JoinProof {
        let public = joiner.public();
        let signature = joiner.sign(&proof_message(&public.link, &self.id)).to_vec();
        JoinProof { id: self.id.clone(), secret: self.secret, signing: public.signing, signature }
    }
}

/// Why a one-off link handshake did not end with the hub accepting the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachError {
    /// No link to the endpoint (refused, unresolvable, timed out).
    Connect(String),
    /// The link broke while sending or waiting.
    Link(String),
    /// No answer within the wait: the hub does not know the key (it holds it as pending).
    NoAnswer,
    /// The hub said why it refused (a join claim).
    Refused(String),
    /// The answer does not complete the handshake: the hub does not hold the pinned key.
    KeyMismatch(String),
}

/// One link handshake with the hub at `endpoint` whose link key is `hub_link`, as `name`, with a
/// join claim when `proof` is given. Returns the name the hub enrolled the key under (the claimed
/// one from a hub that does not say). Used by `noded join`, `fleet join` and `noded doctor`.
pub async fn attach_once(
    endpoint: &str,
    hub_link: &[u8; 32],
    key: &KeyPair,
    name: &str,
    proof: Option<&JoinProof>,
    wait: std::time::Duration,
) -> Result<String, AttachError> {
    use crate::noise::{Initiator, NoiseError};
    let mut link = crate::transport::Link::connect(endpoint, wait).await.map_err(|e| AttachError::Connect(e.to_string()))?;
    let (initiator, hello) = Initiator::start_with(key, hub_link, name, proof).map_err(|e| AttachError::Link(e.to_string()))?;
    link.send(bytes::Bytes::from(hello)).await.map_err(|e| AttachError::Link(e.to_string()))?;
    let answer =
        tokio::time::timeout(wait, link.recv()).await.map_err(|_| AttachError::NoAnswer)?.map_err(|e| AttachError::Link(e.to_string()))?;
    match initiator.finish_named(&answer) {
        Ok((_, enrolled)) => Ok(if enrolled.is_empty() { name.to_string() } else { enrolled }),
        Err(NoiseError::Refused(why)) => Err(AttachError::Refused(why)),
        Err(e) => Err(AttachError::KeyMismatch(e.to_string())),
    }
}

/// Joins the hub named in `token` with `key`, claiming `name`: a link handshake carrying the
/// token's proof. Returns the name the hub enrolled the key under, or why it did not.
pub async fn redeem(token: &JoinToken, key: &KeyPair, name: &str, timeout: std::time::Duration) -> Result<String, String> {
    let ep = &token.endpoint;
    attach_once(ep, &token.hub.link, key, name, Some(&token.proof(key)), timeout).await.map_err(|e| match e {
        AttachError::Connect(e) => format!("cannot reach the hub at {ep}: {e}"),
        AttachError::Link(e) => e,
        AttachError::NoAnswer => format!("the hub at {ep} did not answer the join within {:.0} s", timeout.as_secs_f64()),
        AttachError::Refused(why) => why,
        AttachError::KeyMismatch(e) => format!("the hub at {ep} does not hold the key in the token: {e}"),
    })
}

/// The first 8 bytes of a key, in hex.
pub fn fingerprint(key: &[u8; 32]) -> String {
    key[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn proof_message(link: &[u8; 32], id: &str) -> Vec<u8> {
    let mut m = PROOF_CONTEXT.to_vec();
    m.extend_from_slice(link);
    m.extend_from_slice(id.as_bytes());
    m
}

/// A joiner's claim to a token, carried (encrypted) in its link handshake.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinProof {
    pub id: String,
    pub secret: [u8; 16],
    /// The joiner's ed25519 public key, enrolled with its link key.
    pub signing: [u8; 32],
    /// The joiner's signature over its link key and the token id.
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for JoinProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinProof").field("id", &self.id).finish_non_exhaustive()
    }
}

impl JoinProof {
    /// One line of text for the handshake payload.
    pub fn to_line(&self) -> String {
        format!("join {} {} {} {}", self.id, B64.encode(self.secret), B64.encode(self.signing), B64.encode(&self.signature))
    }

    /// Reads [`JoinProof::to_line`]'s output; `None` for anything else.
    pub fn from_line(line: &str) -> Option<JoinProof> {
        let mut parts = line.split(' ');
        if parts.next()? != "join" {
            return None;
        }
        let id = parts.next()?.to_string();
        let secret = B64.decode(parts.next()?).ok()?.try_into().ok()?;
        let signing = B64.decode(parts.next()?).ok()?.try_into().ok()?;
        let signature = B64.decode(parts.next()?).ok()?;
        if parts.next().is_some() || id.len() > 16 {
            return None;
        }
        Some(JoinProof { id, secret, signing, signature })
    }

    /// Whether the joiner holding `link` signed this proof with the key it names.
    pub fn signed_by_holder_of(&self, link: &[u8; 32]) -> bool {
        crate::keys::verify(&self.signing, &proof_message(link, &self.id), &self.signature)
    }

    pub fn secret_hash(&self) -> String {
        secret_hash(&self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_survives_the_shell_and_a_mangled_one_says_why() {
        let hub = KeyPair::generate().public();
        let t = JoinToken::generate("tcp://127.0.0.1:7402", hub);
        let text = t.encode();
        assert!(text.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)), "{text}");
        assert_eq!(JoinToken::parse(&format!(" {text}\n")).unwrap(), t);
        assert!(JoinToken::parse(&text[..text.len() - 10]).is_err());
        assert!(JoinToken::parse("hello").unwrap_err().contains("not a fleet join token"));
        let cut: String = text.split('.').take(4).collect::<Vec<_>>().join(".");
        assert!(JoinToken::parse(&cut).unwrap_err().contains("6 fields"));
    }

    #[test]
    fn a_proof_binds_the_joiners_two_keys() {
        let hub = KeyPair::generate().public();
        let t = JoinToken::generate("tcp://h:1", hub);
        let me = KeyPair::generate();
        let proof = t.proof(&me);
        let back = JoinProof::from_line(&proof.to_line()).unwrap();
        assert_eq!(back, proof);
        assert!(back.signed_by_holder_of(&me.public().link));
        assert!(!back.signed_by_holder_of(&KeyPair::generate().public().link), "another link key is not covered");
        assert_eq!(back.secret_hash(), secret_hash(&t.secret));
        assert!(JoinProof::from_line("join x").is_none());
    }
}
