//! What the hub links bring in, taken a burst at a time: every frame already queued is decoded
//! together, and the replies' signatures are checked in one ed25519 batch before any reply body
//! is decoded. Checking one by one cost a console most of its CPU on a 1,000-node round.

use fleet_protocol::codec::{Limits, SignatureError};
use fleet_protocol::keys::Keyring;
use fleet_protocol::{Envelope, Kind, Message};
use tokio::sync::mpsc;

use super::{Inbound, SignatureCheck};

/// The most queued frames taken in at once: enough for the batch to pay off (its cost per
/// signature stops falling at a few hundred), few enough that the first of them waits only a few
/// milliseconds for the last one's check.
const MAX_BURST: usize = 256;
/// A burst also ends once its frames hold this many bytes: big replies gain nothing from the
/// batch, and a burst's messages are all decoded at once.
const MAX_BURST_BYTES: usize = 4 * 1024 * 1024;

/// `first` and whatever else is already queued behind it, up to a burst's limits. Never waits.
pub(super) fn burst(first: Inbound, inbox: &mut mpsc::UnboundedReceiver<Inbound>) -> Vec<Inbound> {
    let size = |i: &Inbound| match i {
        Inbound::Frame { frame, .. } => frame.len(),
        Inbound::Closed { .. } => 0,
    };
    let mut bytes = size(&first);
    let mut burst = vec![first];
    while burst.len() < MAX_BURST
        && bytes < MAX_BURST_BYTES
        && let Ok(next) = inbox.try_recv()
    {
        bytes += size(&next);
        burst.push(next);
    }
    burst
}

/// A frame taken in, or a link's end, in the order they arrived.
#[derive(Debug)]
pub(super) enum Ready {
    /// `check` is the signature check of a reply, `None` for any other message.
    Message {
        link: usize,
        message: Message,
        check: Option<SignatureCheck>,
    },
    Closed {
        link: usize,
        why: String,
    },
}

/// Decodes a burst of inbound frames, in order. A frame that does not decode is dropped with a
/// warning, as one at a time would drop it.
pub(super) fn take_in(burst: Vec<Inbound>, known_nodes: &Keyring, limits: &Limits) -> Vec<Ready> {
    let mut envelopes = Vec::with_capacity(burst.len());
    for inbound in burst {
        match inbound {
            Inbound::Frame { link, frame } => match Envelope::from_frame(&frame, limits) {
                Ok(env) => envelopes.push(Ok((link, env))),
                Err(e) => tracing::warn!(error = %e, "dropping malformed frame from hub"),
            },
            Inbound::Closed { link, why } => envelopes.push(Err(Ready::Closed { link, why })),
        }
    }
    let replies: Vec<&Envelope> = envelopes.iter().flatten().map(|(_, env)| env).filter(|env| env.kind == Kind::Reply).collect();
    let mut proven = Envelope::verify_batch(&replies, known_nodes).into_iter();
    envelopes
        .into_iter()
        .filter_map(|staged| {
            let (link, env) = match staged {
                Ok(frame) => frame,
                Err(closed) => return Some(closed),
            };
            let signer = (env.kind == Kind::Reply).then(|| proven.next().expect("one signature check per reply"));
            match env.open(limits) {
                Ok(Message::Reply(reply)) => {
                    let check = reply_check(known_nodes, &reply.sender, signer);
                    Some(Ready::Message { link, message: Message::Reply(reply), check: Some(check) })
                }
                Ok(message) => Some(Ready::Message { link, message, check: None }),
                Err(e) => {
                    tracing::warn!(error = %e, "dropping malformed frame from hub");
                    None
                }
            }
        })
        .collect()
}

/// What a reply's signature says about `sender`, the node the reply says it is from: checked
/// only when this console knows that node's key, and good only when it is that node's signature.
fn reply_check(known_nodes: &Keyring, sender: &str, proven: Option<Result<String, SignatureError>>) -> SignatureCheck {
    if known_nodes.get(sender).is_none() {
        return SignatureCheck::Unverified;
    }
    match proven {
        Some(Ok(signer)) if signer == sender => SignatureCheck::Verified,
        _ => SignatureCheck::Bad,
    }
}

#[cfg(test)]
mod tests {
    use fleet_protocol::codec::encode_message;
    use fleet_protocol::keys::KeyPair;
    use fleet_protocol::{Reply, Status};

    use super::*;

    /// `n` nodes `web-<i>`, their keys, and the ring that trusts them.
    fn nodes(n: usize) -> (Vec<KeyPair>, Keyring) {
        let keys: Vec<KeyPair> = (0..n).map(|_| KeyPair::generate()).collect();
        let mut ring = Keyring::default();
        for (i, k) in keys.iter().enumerate() {
            ring.insert(&format!("web-{i}"), k.public()).unwrap();
        }
        (keys, ring)
    }

    fn reply(sender: &str) -> Message {
        Message::Reply(Box::new(Reply {
            request_id: "req-1".into(),
            sender: sender.into(),
            status: Status::Ok,
            status_msg: String::new(),
            data: serde_json::json!({"pong": sender}),
            elapsed_us: 3,
        }))
    }

    /// A reply from `sender`, signed by `key` as `signer`.
    fn signed(sender: &str, key: &KeyPair, signer: &str) -> Vec<u8> {
        let mut env = Envelope::seal(&reply(sender)).unwrap();
        env.sign(key, signer);
        env.to_frame().unwrap()
    }

    fn frame(frame: Vec<u8>) -> Inbound {
        Inbound::Frame { link: 0, frame }
    }

    /// The sender and check of every reply taken in, in order.
    fn checks(ready: &[Ready]) -> Vec<(String, SignatureCheck)> {
        ready
            .iter()
            .filter_map(|r| match r {
                Ready::Message { message: Message::Reply(reply), check: Some(check), .. } => Some((reply.sender.clone(), *check)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_burst_of_good_replies_all_verify() {
        let (keys, ring) = nodes(50);
        let burst = (0..50).map(|i| frame(signed(&format!("web-{i}"), &keys[i], &format!("web-{i}")))).collect();
        let ready = take_in(burst, &ring, &Limits::default());
        let expected: Vec<_> = (0..50).map(|i| (format!("web-{i}"), SignatureCheck::Verified)).collect();
        assert_eq!(checks(&ready), expected);
    }

    #[test]
    fn one_forged_reply_is_bad_and_the_others_verify() {
        let (keys, ring) = nodes(30);
        let mut frames: Vec<Vec<u8>> = (0..30).map(|i| signed(&format!("web-{i}"), &keys[i], &format!("web-{i}"))).collect();
        // web-7's reply signed by web-8: a node speaking for another.
        frames[7] = signed("web-7", &keys[8], "web-8");
        // web-12's reply with web-12's signature, but a body it never signed.
        let mut env = Envelope::from_frame(&frames[12], &Limits::default()).unwrap();
        let Message::Reply(mut altered) = reply("web-12") else { unreachable!() };
        altered.status = Status::Aborted;
        env.body = Envelope::seal(&Message::Reply(altered)).unwrap().body;
        frames[12] = env.to_frame().unwrap();
        let ready = take_in(frames.into_iter().map(frame).collect(), &ring, &Limits::default());
        let got = checks(&ready);
        assert_eq!(got.len(), 30, "no reply is dropped: {got:?}");
        for (i, (sender, check)) in got.iter().enumerate() {
            assert_eq!(sender, &format!("web-{i}"));
            let want = if i == 7 || i == 12 { SignatureCheck::Bad } else { SignatureCheck::Verified };
            assert_eq!(*check, want, "{sender}");
        }
    }

    #[test]
    fn an_unknown_signer_is_refused() {
        let (keys, ring) = nodes(4);
        let stranger = KeyPair::generate();
        let burst = vec![
            frame(signed("web-0", &keys[0], "web-0")),
            // A known node's reply signed by a key this console does not know.
            frame(signed("web-1", &stranger, "stranger")),
            frame(signed("web-2", &keys[2], "web-2")),
            // An unsigned reply from a known node.
            frame(encode_message(&reply("web-3")).unwrap()),
            // A node this console has no key for: not checkable, as one at a time.
            frame(signed("db-1", &stranger, "db-1")),
        ];
        let got = checks(&take_in(burst, &ring, &Limits::default()));
        let want = [
            ("web-0", SignatureCheck::Verified),
            ("web-1", SignatureCheck::Bad),
            ("web-2", SignatureCheck::Verified),
            ("web-3", SignatureCheck::Bad),
            ("db-1", SignatureCheck::Unverified),
        ];
        assert_eq!(got, want.map(|(s, c)| (s.to_string(), c)));
    }

    #[test]
    fn a_burst_takes_what_is_queued_up_to_its_limits() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for _ in 0..300 {
            tx.send(frame(vec![0; 10])).unwrap();
        }
        let first = rx.try_recv().unwrap();
        assert_eq!(burst(first, &mut rx).len(), MAX_BURST);
        let first = rx.try_recv().unwrap();
        assert_eq!(burst(first, &mut rx).len(), 300 - MAX_BURST, "never waits for more");
        for _ in 0..3 {
            tx.send(frame(vec![0; MAX_BURST_BYTES / 2])).unwrap();
        }
        let first = rx.try_recv().unwrap();
        assert_eq!(burst(first, &mut rx).len(), 2, "ends once it holds enough bytes");
    }

    #[test]
    fn order_is_kept_and_malformed_frames_are_dropped() {
        let (keys, ring) = nodes(2);
        let burst = vec![
            frame(signed("web-0", &keys[0], "web-0")),
            frame(b"not msgpack".to_vec()),
            frame(encode_message(&Message::Pong).unwrap()),
            Inbound::Closed { link: 1, why: "gone".into() },
            frame(signed("web-1", &keys[1], "web-1")),
        ];
        let ready = take_in(burst, &ring, &Limits::default());
        assert_eq!(ready.len(), 4, "{ready:?}");
        assert!(matches!(&ready[0], Ready::Message { message: Message::Reply(r), .. } if r.sender == "web-0"));
        assert!(matches!(&ready[1], Ready::Message { message: Message::Pong, check: None, .. }));
        assert!(matches!(&ready[2], Ready::Closed { link: 1, .. }));
        assert!(matches!(&ready[3], Ready::Message { check: Some(SignatureCheck::Verified), .. }));
    }
}
