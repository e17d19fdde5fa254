//! Cutting one peer's ZMTP 3 byte stream into the greeting, commands and whole messages.
//!
//! Every chunk passes the [`ZmtpInspector`] before anything of it is buffered, so a header that
//! claims more than the limits allow ends the link before a byte of room is reserved for it. An
//! idle link holds no buffer: only the bytes of a frame not yet complete are kept.

use bytes::{Buf, Bytes, BytesMut};

use crate::guard::inspect::{FLAG_COMMAND, FLAG_LONG, FLAG_MORE, GREETING_LEN};
use crate::guard::{GuardLimits, Refusal, ZmtpInspector};

/// A pending buffer larger than this is given back once it is empty again, so one large message
/// does not pin its size to the link for ever.
const KEEP_PENDING: usize = 64 * 1024;

/// What a chunk of the stream completed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// The peer's greeting, checked (ZMTP 3, NULL mechanism).
    Greeted,
    /// The peer's READY: the link is open.
    Ready,
    /// A heartbeat PING; the PONG carries its context back.
    Ping(Bytes),
    /// A whole message, its parts in order.
    Message(Vec<Bytes>),
}

enum Next {
    /// A unit of this many bytes was complete, and it gave this event (or none).
    Done(usize, Option<Event>),
    /// Only part of a unit is there; it is this many bytes in all (0 while its header is short).
    Need(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Greeting,
    /// Greeted; the first command must be READY.
    Ready,
    Open,
}

pub(super) struct Framer {
    inspector: ZmtpInspector,
    stage: Stage,
    /// The bytes of a greeting or frame not yet complete.
    pending: BytesMut,
    /// The parts of the current multi-part message.
    parts: Vec<Bytes>,
}

impl Framer {
    pub(super) fn new(limits: GuardLimits) -> Framer {
        Framer { inspector: ZmtpInspector::new(limits), stage: Stage::Greeting, pending: BytesMut::new(), parts: Vec::new() }
    }

    /// Takes the next chunk of the stream and appends what it completed to `out`. After an `Err`
    /// the link must be closed.
    pub(super) fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), Refusal> {
        self.inspector.inspect(chunk)?;
        if self.pending.is_empty() {
            // The usual case: whole frames straight from the chunk, only a tail kept.
            let mut data = chunk;
            let need = loop {
                match self.next(data)? {
                    Next::Done(used, event) => {
                        data = &data[used..];
                        out.extend(event);
                    }
                    Next::Need(total) => break total,
                }
            };
            self.pending.reserve(need);
            self.pending.extend_from_slice(data);
        } else {
            self.pending.extend_from_slice(chunk);
            let mut pending = std::mem::take(&mut self.pending);
            let need = loop {
                match self.next(&pending) {
                    Ok(Next::Done(used, event)) => {
                        pending.advance(used);
                        out.extend(event);
                    }
                    Ok(Next::Need(total)) => break total,
                    Err(refusal) => return Err(refusal),
                }
            };
            pending.reserve(need.saturating_sub(pending.len()));
            self.pending = pending;
            if self.pending.is_empty() && self.pending.capacity() > KEEP_PENDING {
                self.pending = BytesMut::new();
            }
        }
        Ok(())
    }

    /// The next complete unit at the start of `data`: how many bytes it took and what it was, or
    /// how many bytes the unit needs in all when `data` holds only part of it.
    fn next(&mut self, data: &[u8]) -> Result<Next, Refusal> {
        if self.stage == Stage::Greeting {
            let len = usize::from(GREETING_LEN);
            if data.len() < len {
                return Ok(Next::Need(len));
            }
            // The inspector checked the signature and the version; the mechanism is ours to check.
            let mechanism = &data[12..32];
            if !mechanism.starts_with(b"NULL") || mechanism[4..].iter().any(|&b| b != 0) {
                return Err(Refusal::Mechanism);
            }
            self.stage = Stage::Ready;
            return Ok(Next::Done(len, Some(Event::Greeted)));
        }
        let Some(&flags) = data.first() else { return Ok(Next::Need(0)) };
        let width = if flags & FLAG_LONG != 0 { 8 } else { 1 };
        let Some(length) = data.get(1..1 + width) else { return Ok(Next::Need(0)) };
        // The inspector has held this length to the limits, so it fits in memory.
        let length = if width == 8 { u64::from_be_bytes(length.try_into().expect("8 bytes")) as usize } else { usize::from(length[0]) };
        let total = 1 + width + length;
        if data.len() < total {
            return Ok(Next::Need(total));
        }
        let body = &data[1 + width..total];
        let event = if flags & FLAG_COMMAND != 0 {
            self.command(body)?
        } else if self.stage != Stage::Open {
            return Err(Refusal::NotReady);
        } else {
            self.parts.push(Bytes::copy_from_slice(body));
            if flags & FLAG_MORE != 0 { None } else { Some(Event::Message(std::mem::take(&mut self.parts))) }
        };
        Ok(Next::Done(total, event))
    }

    fn command(&mut self, body: &[u8]) -> Result<Option<Event>, Refusal> {
        let name_len = usize::from(*body.first().unwrap_or(&0));
        let name = body.get(1..1 + name_len).unwrap_or_default();
        match (self.stage, name) {
            (Stage::Ready, b"READY") => {
                self.stage = Stage::Open;
                Ok(Some(Event::Ready))
            }
            (Stage::Ready, _) => Err(Refusal::NotReady),
            // A PING is a 2-byte TTL then up to 16 bytes of context, returned in the PONG.
            (_, b"PING") => {
                let context = body.get(1 + name_len + 2..).unwrap_or_default();
                Ok(Some(Event::Ping(Bytes::copy_from_slice(&context[..context.len().min(16)]))))
            }
            // Anything else a DEALER may say (an ERROR, a PONG) changes nothing here.
            _ => Ok(None),
        }
    }
}

/// The greeting this side sends: ZMTP 3.0, NULL mechanism, not a server (NULL has no roles).
pub(super) fn greeting() -> [u8; GREETING_LEN as usize] {
    let mut g = [0u8; GREETING_LEN as usize];
    g[0] = 0xff;
    g[9] = 0x7f;
    g[10] = 3;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// A command frame named `name` with `body` after the name.
pub(super) fn command(name: &[u8], body: &[u8]) -> Vec<u8> {
    let len = 1 + name.len() + body.len();
    let mut frame = Vec::with_capacity(9 + len);
    header(&mut frame, FLAG_COMMAND, len);
    frame.push(name.len() as u8);
    frame.extend_from_slice(name);
    frame.extend_from_slice(body);
    frame
}

/// This side's READY: a ROUTER, with no identity of its own.
pub(super) fn ready() -> Vec<u8> {
    let mut props = Vec::new();
    props.push(11);
    props.extend_from_slice(b"Socket-Type");
    props.extend_from_slice(&6u32.to_be_bytes());
    props.extend_from_slice(b"ROUTER");
    command(b"READY", &props)
}

/// The PONG answering a PING with `context`.
pub(super) fn pong(context: &[u8]) -> Vec<u8> {
    command(b"PONG", context)
}

/// Appends the flags and length of a frame of `len` bytes (short form up to 255).
pub(super) fn header(out: &mut Vec<u8>, flags: u8, len: usize) {
    if len <= 255 {
        out.push(flags);
        out.push(len as u8);
    } else {
        out.push(flags | FLAG_LONG);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_stream(messages: &[&[u8]]) -> Vec<u8> {
        let mut s = greeting().to_vec();
        s.extend(command(b"READY", b"\x0bSocket-Type\x00\x00\x00\x06DEALER"));
        for m in messages {
            header(&mut s, 0, m.len());
            s.extend_from_slice(m);
        }
        s
    }

    fn events(stream: &[u8], chunk: usize) -> Result<Vec<Event>, Refusal> {
        let mut framer = Framer::new(GuardLimits::for_max_frame(1000));
        let mut out = Vec::new();
        for c in stream.chunks(chunk) {
            framer.feed(c, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn a_stream_gives_the_same_messages_in_any_chunking() {
        let big = vec![7u8; 1500];
        let stream = client_stream(&[b"one", b"", &big, b"last"]);
        let whole = events(&stream, stream.len()).unwrap();
        assert_eq!(whole.len(), 6);
        assert_eq!(whole[0], Event::Greeted);
        assert_eq!(whole[1], Event::Ready);
        assert_eq!(whole[2], Event::Message(vec![Bytes::from_static(b"one")]));
        assert_eq!(whole[4], Event::Message(vec![Bytes::from(big.clone())]));
        for chunk in [1, 2, 7, 63, 64, 65, 300] {
            assert_eq!(events(&stream, chunk).unwrap(), whole, "chunks of {chunk}");
        }
    }

    #[test]
    fn multi_part_messages_and_pings() {
        let mut s = client_stream(&[]);
        header(&mut s, FLAG_MORE, 0);
        header(&mut s, 0, 3);
        s.extend_from_slice(b"abc");
        s.extend(command(b"PING", b"\x00\x0actx"));
        let out = events(&s, 5).unwrap();
        assert_eq!(out[2], Event::Message(vec![Bytes::new(), Bytes::from_static(b"abc")]));
        assert_eq!(out[3], Event::Ping(Bytes::from_static(b"ctx")));
    }

    #[test]
    fn a_message_before_ready_or_another_mechanism_is_refused() {
        let mut s = greeting().to_vec();
        header(&mut s, 0, 2);
        s.extend_from_slice(b"hi");
        assert_eq!(events(&s, 100), Err(Refusal::NotReady));
        let mut s = greeting().to_vec();
        s[12..17].copy_from_slice(b"CURVE");
        assert_eq!(events(&s, 100), Err(Refusal::Mechanism));
    }

    #[test]
    fn an_oversized_claim_is_refused_before_anything_is_kept() {
        let mut s = client_stream(&[]);
        header(&mut s, 0, 1 << 40);
        let mut framer = Framer::new(GuardLimits::for_max_frame(1000));
        assert!(matches!(framer.feed(&s, &mut Vec::new()), Err(Refusal::FrameTooBig { .. })));
        assert!(framer.pending.capacity() < 1024);
    }

    #[test]
    fn a_large_message_does_not_pin_its_buffer() {
        let big = vec![1u8; 1900];
        let stream = client_stream(&[&big]);
        let mut framer = Framer::new(GuardLimits { max_frame: 1 << 20, ..GuardLimits::for_max_frame(1 << 20) });
        let mut out = Vec::new();
        let huge = vec![2u8; 200_000];
        let mut s = stream.clone();
        header(&mut s, 0, huge.len());
        s.extend_from_slice(&huge);
        for c in s.chunks(4096) {
            framer.feed(c, &mut out).unwrap();
        }
        assert_eq!(out.len(), 4);
        assert!(framer.pending.is_empty() && framer.pending.capacity() <= KEEP_PENDING, "{}", framer.pending.capacity());
    }
}
