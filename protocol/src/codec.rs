//! msgpack codec with hard limits. A frame over [`Limits::max_frame`] is refused before any byte of
//! it is decoded, and nesting deeper than [`Limits::max_depth`] is refused by the decoder, so a
//! hostile peer can neither exhaust memory with a claimed length nor the stack with nesting.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::PROTOCOL_VERSION;
use crate::message::*;

/// Default maximum frame size: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;
/// Default maximum nesting depth.
pub const DEFAULT_MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_frame: usize,
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_frame: DEFAULT_MAX_FRAME, max_depth: DEFAULT_MAX_DEPTH }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("frame of {size} bytes is over the {limit} byte limit")]
    FrameTooBig { size: usize, limit: usize },
    #[error("unsupported protocol version {0} (this build speaks {PROTOCOL_VERSION})")]
    Version(u8),
    #[error("malformed {what}: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: rmp_serde::decode::Error,
    },
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: rmp_serde::encode::Error,
    },
}

fn decode_limited<T: DeserializeOwned>(bytes: &[u8], limits: &Limits, what: &'static str) -> Result<T, CodecError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(limits.max_depth);
    serde::Deserialize::deserialize(&mut de).map_err(|source| CodecError::Decode { what, source })
}

fn encode<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>, CodecError> {
    rmp_serde::to_vec_named(value).map_err(|source| CodecError::Encode { what, source })
}

impl Envelope {
    /// Wraps a message into an unsigned envelope.
    pub fn seal(message: &Message) -> Result<Envelope, CodecError> {
        let body = match message {
            Message::Hello(m) => encode(m, "hello")?,
            Message::Welcome(m) => encode(m, "welcome")?,
            Message::Registration(m) => encode(m, "registration")?,
            Message::Ack(m) => encode(m, "ack")?,
            Message::Request(m) => encode(m, "request")?,
            Message::Reply(m) => encode(m, "reply")?,
            Message::Discover(m) => encode(m, "discover")?,
            Message::Discovered(m) => encode(m, "discovered")?,
            Message::Dispatched(m) => encode(m, "dispatched")?,
            Message::Event(m) => encode(m, "event")?,
            Message::HubStats(m) => encode(m, "hub stats")?,
            Message::Error(m) => encode(m, "error")?,
            Message::Trust(m) => encode(m, "trust")?,
            Message::MetricSample(m) => encode(m, "metric sample")?,
            Message::MetricSubscribe(m) => encode(m, "metric subscribe")?,
            Message::MetricUpdate(m) => encode(m, "metric update")?,
            Message::StatsQuery | Message::Ping | Message::Pong => Vec::new(),
        };
        Ok(Envelope { version: PROTOCOL_VERSION, kind: message.kind(), body, signer: None, signature: None })
    }

    /// Encodes the envelope into one frame.
    pub fn to_frame(&self) -> Result<Vec<u8>, CodecError> {
        encode(self, "envelope")
    }

    /// Decodes one frame into an envelope, refusing oversized frames before decoding anything.
    pub fn from_frame(frame: &[u8], limits: &Limits) -> Result<Envelope, CodecError> {
        if frame.len() > limits.max_frame {
            return Err(CodecError::FrameTooBig { size: frame.len(), limit: limits.max_frame });
        }
        let env: Envelope = decode_limited(frame, limits, "envelope")?;
        if env.version != PROTOCOL_VERSION {
            return Err(CodecError::Version(env.version));
        }
        Ok(env)
    }

    /// Decodes the body according to the envelope's kind.
    pub fn open(&self, limits: &Limits) -> Result<Message, CodecError> {
        let b = &self.body;
        Ok(match self.kind {
            Kind::Hello => Message::Hello(decode_limited(b, limits, "hello")?),
            Kind::Welcome => Message::Welcome(decode_limited(b, limits, "welcome")?),
            Kind::Registration => Message::Registration(Box::new(decode_limited(b, limits, "registration")?)),
            Kind::Ack => Message::Ack(decode_limited(b, limits, "ack")?),
            Kind::Request => Message::Request(Box::new(decode_limited(b, limits, "request")?)),
            Kind::Reply => Message::Reply(Box::new(decode_limited(b, limits, "reply")?)),
            Kind::Discover => Message::Discover(decode_limited(b, limits, "discover")?),
            Kind::Discovered => Message::Discovered(decode_limited(b, limits, "discovered")?),
            Kind::Dispatched => Message::Dispatched(decode_limited(b, limits, "dispatched")?),
            Kind::Event => Message::Event(decode_limited(b, limits, "event")?),
            Kind::HubStats => Message::HubStats(decode_limited(b, limits, "hub stats")?),
            Kind::Error => Message::Error(decode_limited(b, limits, "error")?),
            Kind::StatsQuery => Message::StatsQuery,
            Kind::Ping => Message::Ping,
            Kind::Pong => Message::Pong,
            Kind::Trust => Message::Trust(decode_limited(b, limits, "trust")?),
            Kind::MetricSample => Message::MetricSample(decode_limited(b, limits, "metric sample")?),
            Kind::MetricSubscribe => Message::MetricSubscribe(decode_limited(b, limits, "metric subscribe")?),
            Kind::MetricUpdate => Message::MetricUpdate(decode_limited(b, limits, "metric update")?),
        })
    }
}

/// Domain separation for signatures: a signature over one kind of message can never be replayed
/// as another kind, or as anything that is not a fleet envelope.
const SIGNATURE_DOMAIN: &[u8] = b"fleet-envelope-v1\0";

/// Why a signed envelope was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("unsigned {0:?} message")]
    Unsigned(Kind),
    #[error(transparent)]
    Rejected(#[from] crate::keys::VerifyError),
}

impl Envelope {
    /// The exact bytes a signature covers: domain, kind, then the raw body.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let kind = format!("{:?}", self.kind);
        let mut out = Vec::with_capacity(SIGNATURE_DOMAIN.len() + kind.len() + 1 + self.body.len());
        out.extend_from_slice(SIGNATURE_DOMAIN);
        out.extend_from_slice(kind.as_bytes());
        out.push(0);
        out.extend_from_slice(&self.body);
        out
    }

    /// Signs the envelope as `signer` (the key's name, which is the caller or node id).
    pub fn sign(&mut self, keys: &crate::keys::KeyPair, signer: &str) {
        self.signer = Some(signer.to_string());
        self.signature = Some(keys.sign(&self.signed_bytes()).to_vec());
    }

    /// Verifies the signature over the raw body, before anything in it is decoded. Returns the
    /// proven signer.
    pub fn verify(&self, ring: &crate::keys::Keyring) -> Result<String, SignatureError> {
        let (Some(signer), Some(sig)) = (&self.signer, &self.signature) else {
            return Err(SignatureError::Unsigned(self.kind));
        };
        ring.verify(signer, &self.signed_bytes(), sig)?;
        Ok(signer.clone())
    }

    /// [`Envelope::verify`] for many envelopes, their signatures checked in one batch (see
    /// [`Keyring::verify_batch`](crate::keys::Keyring::verify_batch)): one result per envelope, in
    /// order, each the one `verify` gives, still before anything in a body is decoded.
    pub fn verify_batch(envelopes: &[&Envelope], ring: &crate::keys::Keyring) -> Vec<Result<String, SignatureError>> {
        // Where in `envelopes`, who, over what, and the signature, for each signed envelope; the
        // ring answers each as `verify` would (unknown signers included). Unsigned ones fail here.
        let mut results: Vec<Result<String, SignatureError>> = Vec::with_capacity(envelopes.len());
        let mut signed = Vec::with_capacity(envelopes.len());
        for (i, env) in envelopes.iter().enumerate() {
            match (&env.signer, &env.signature) {
                (Some(signer), Some(signature)) => {
                    signed.push((i, signer.as_str(), env.signed_bytes(), signature.as_slice()));
                    results.push(Ok(signer.clone()));
                }
                _ => results.push(Err(SignatureError::Unsigned(env.kind))),
            }
        }
        let items: Vec<_> =
            signed.iter().map(|(_, signer, message, signature)| crate::keys::SignedBytes { signer, message, signature }).collect();
        for ((i, ..), verdict) in signed.iter().zip(ring.verify_batch(&items)) {
            if let Err(e) = verdict {
                results[*i] = Err(e.into());
            }
        }
        results
    }
}

/// Seal and encode in one step.
pub fn encode_message(message: &Message) -> Result<Vec<u8>, CodecError> {
    Envelope::seal(message)?.to_frame()
}

/// Decode and open in one step.
pub fn decode_message(frame: &[u8], limits: &Limits) -> Result<Message, CodecError> {
    Envelope::from_frame(frame, limits)?.open(limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Filter;
    use proptest::prelude::*;
    use serde_json::json;

    fn request(args: serde_json::Map<String, serde_json::Value>) -> Request {
        Request {
            id: crate::new_request_id(),
            collective: "fleet".into(),
            caller: "admin".into(),
            agent: "rpcutil".into(),
            action: "ping".into(),
            args,
            filter: Filter::default(),
            targets: vec!["web-01".into()],
            msgtime: 1,
            ttl: 60,
            reply: ReplyMode::Normal,
            timeout_ms: 5000,
            fanout: Fanout::All,
        }
    }

    #[test]
    fn signatures_cover_kind_and_body() {
        let keys = crate::keys::KeyPair::generate();
        let mut ring = crate::keys::Keyring::default();
        ring.insert("alice", keys.public()).unwrap();
        let mut env = Envelope::seal(&Message::Request(Box::new(request(serde_json::Map::new())))).unwrap();
        assert!(matches!(env.verify(&ring), Err(SignatureError::Unsigned(Kind::Request))));
        env.sign(&keys, "alice");
        assert_eq!(env.verify(&ring).unwrap(), "alice");
        let mut other_kind = env.clone();
        other_kind.kind = Kind::Reply;
        assert!(other_kind.verify(&ring).is_err(), "a signature does not carry over to another kind");
        let mut claimed = env.clone();
        claimed.signer = Some("bob".into());
        assert!(claimed.verify(&ring).is_err(), "the signer is proven, not claimed");
        let mut tampered = env.clone();
        let last = tampered.body.len() - 1;
        tampered.body[last] ^= 1;
        assert!(tampered.verify(&ring).is_err());
        // Round trip through a frame keeps the signature valid.
        let frame = env.to_frame().unwrap();
        assert_eq!(Envelope::from_frame(&frame, &Limits::default()).unwrap().verify(&ring).unwrap(), "alice");
    }

    #[test]
    fn a_batch_of_envelopes_verifies_each_as_verify_does() {
        let mut ring = crate::keys::Keyring::default();
        let mut envelopes = Vec::new();
        for i in 0..12 {
            let keys = crate::keys::KeyPair::generate();
            let name = format!("web-{i:02}");
            ring.insert(&name, keys.public()).unwrap();
            let reply = Reply {
                request_id: "r".into(),
                sender: name.clone(),
                status: Status::Ok,
                status_msg: String::new(),
                data: json!({"pong": i}),
                elapsed_us: 1,
            };
            let mut env = Envelope::seal(&Message::Reply(Box::new(reply))).unwrap();
            env.sign(&keys, &name);
            envelopes.push(env);
        }
        let good: Vec<&Envelope> = envelopes.iter().collect();
        let names: Vec<String> = (0..12).map(|i| format!("web-{i:02}")).collect();
        let passed: Vec<String> = Envelope::verify_batch(&good, &ring).into_iter().map(Result::unwrap).collect();
        assert_eq!(passed, names);

        let last = envelopes[3].body.len() - 1;
        envelopes[3].body[last] ^= 1;
        envelopes[5].signer = Some("stranger".into());
        envelopes[8].signature = None;
        envelopes[10].signer = Some("web-11".into());
        let mixed: Vec<&Envelope> = envelopes.iter().collect();
        let results = Envelope::verify_batch(&mixed, &ring);
        for (env, result) in envelopes.iter().zip(&results) {
            assert_eq!(result, &env.verify(&ring));
        }
        let refused: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_err()).map(|(i, _)| i).collect();
        assert_eq!(refused, [3, 5, 8, 10]);
        assert!(matches!(&results[5], Err(SignatureError::Rejected(crate::keys::VerifyError::UnknownCaller(c))) if c == "stranger"));
    }

    proptest! {
        #[test]
        fn mutated_signed_envelopes_never_verify(pos in any::<usize>(), bit in 0u8..8, in_sig in any::<bool>()) {
            let keys = crate::keys::KeyPair::generate();
            let mut ring = crate::keys::Keyring::default();
            ring.insert("alice", keys.public()).unwrap();
            let mut env = Envelope::seal(&Message::Request(Box::new(request(serde_json::Map::new())))).unwrap();
            env.sign(&keys, "alice");
            if in_sig {
                let sig = env.signature.as_mut().unwrap();
                let i = pos % sig.len();
                sig[i] ^= 1 << bit;
            } else {
                let i = pos % env.body.len();
                env.body[i] ^= 1 << bit;
            }
            prop_assert!(env.verify(&ring).is_err());
        }
    }

    #[test]
    fn oversized_frame_is_refused_before_decoding() {
        let limits = Limits { max_frame: 10, max_depth: 64 };
        let err = Envelope::from_frame(&[0u8; 11], &limits).unwrap_err();
        assert!(matches!(err, CodecError::FrameTooBig { size: 11, limit: 10 }), "{err}");
    }

    #[test]
    fn nesting_over_64_is_refused_and_64_is_fine() {
        fn nested(depth: usize) -> serde_json::Value {
            let mut v = json!(1);
            for _ in 0..depth {
                v = json!([v]);
            }
            v
        }
        let limits = Limits::default();
        // The args map and the body struct take two levels themselves.
        let mut ok = serde_json::Map::new();
        ok.insert("x".into(), nested(60));
        let frame = encode_message(&Message::Request(Box::new(request(ok)))).unwrap();
        decode_message(&frame, &limits).expect("60 levels decode");

        let mut deep = serde_json::Map::new();
        deep.insert("x".into(), nested(1000));
        let frame = encode_message(&Message::Request(Box::new(request(deep)))).unwrap();
        let err = decode_message(&frame, &limits).unwrap_err();
        assert!(err.to_string().contains("depth"), "{err}");
    }

    #[test]
    fn claimed_huge_lengths_do_not_allocate_or_panic() {
        // str32 header claiming 4 GiB, then nothing.
        let frame = [0xdb, 0xff, 0xff, 0xff, 0xff];
        assert!(Envelope::from_frame(&frame, &Limits::default()).is_err());
        let frame = [0xdd, 0xff, 0xff, 0xff, 0xff];
        assert!(Envelope::from_frame(&frame, &Limits::default()).is_err());
    }

    fn arb_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,20}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[a-z]{1,8}", inner, 0..6).prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn request_round_trips(args in prop::collection::btree_map("[a-z_]{1,10}", arb_value(), 0..8),
                               agent in "[a-z]{1,12}", ttl in any::<u32>(), targets in prop::collection::vec("[a-z0-9-]{1,12}", 0..5)) {
            let mut req = request(args.into_iter().collect());
            req.agent = agent;
            req.ttl = ttl;
            req.targets = targets;
            let msg = Message::Request(Box::new(req));
            let frame = encode_message(&msg).unwrap();
            prop_assert_eq!(decode_message(&frame, &Limits::default()).unwrap(), msg);
        }

        #[test]
        fn reply_round_trips(data in arb_value(), msg in ".{0,40}", elapsed in any::<u64>()) {
            let reply = Message::Reply(Box::new(Reply { request_id: "r".into(), sender: "n".into(), status: Status::InvalidData,
                                               status_msg: msg, data, elapsed_us: elapsed }));
            let frame = encode_message(&reply).unwrap();
            prop_assert_eq!(decode_message(&frame, &Limits::default()).unwrap(), reply);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_message(&bytes, &Limits::default());
        }

        #[test]
        fn truncated_frames_are_errors(cut in 0usize..200) {
            let msg = Message::Request(Box::new(request(serde_json::Map::new())));
            let frame = encode_message(&msg).unwrap();
            let cut = cut.min(frame.len() - 1);
            prop_assert!(decode_message(&frame[..cut], &Limits::default()).is_err());
        }
    }
}
