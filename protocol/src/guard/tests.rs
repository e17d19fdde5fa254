//! Unit tests of the guard module.
use super::inspect::{FLAG_COMMAND, FLAG_LONG, FLAG_MORE};
use super::*;

const LIMITS: GuardLimits = GuardLimits { max_frame: 1000, max_command: 300, max_parts: 4 };

fn greeting() -> Vec<u8> {
    let mut g = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 1];
    g.extend_from_slice(b"NULL");
    g.resize(64, 0);
    g
}

fn short_frame(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![flags, body.len() as u8];
    f.extend_from_slice(body);
    f
}

fn long_header(flags: u8, len: u64) -> Vec<u8> {
    let mut f = vec![flags | FLAG_LONG];
    f.extend_from_slice(&len.to_be_bytes());
    f
}

fn long_frame(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut f = long_header(flags, body.len() as u64);
    f.extend_from_slice(body);
    f
}

fn ready() -> Vec<u8> {
    let mut body = b"\x05READY".to_vec();
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&6u32.to_be_bytes());
    body.extend_from_slice(b"DEALER");
    short_frame(FLAG_COMMAND, &body)
}

/// Feeds `stream` in chunks of `chunk` bytes; returns the verdict and how many bytes passed.
fn feed(stream: &[u8], chunk: usize) -> (Result<(), Refusal>, usize) {
    let mut inspector = ZmtpInspector::new(LIMITS);
    let mut passed = 0;
    for piece in stream.chunks(chunk) {
        if let Err(r) = inspector.inspect(piece) {
            return (Err(r), passed);
        }
        passed += piece.len();
    }
    (Ok(()), passed)
}

/// Every verdict must be the same whether the stream comes a byte at a time, in odd chunks or whole.
fn verdict(stream: &[u8]) -> Result<(), Refusal> {
    let whole = feed(stream, stream.len().max(1)).0;
    for chunk in [1, 2, 3, 7, 64, 65] {
        assert_eq!(feed(stream, chunk).0, whole, "chunk size {chunk}");
    }
    whole
}

fn stream(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn a_well_formed_stream_passes_in_any_chunking() {
    let s = stream(&[
        greeting(),
        ready(),
        short_frame(0, b"hello"),
        short_frame(0, b""),
        long_frame(0, &[7u8; 1000]), // exactly the limit
        long_frame(0, b"long form, short body"),
        // A multi-part message whose parts add up to exactly the limit.
        short_frame(FLAG_MORE, b""),
        long_frame(FLAG_MORE, &[1u8; 600]),
        short_frame(FLAG_MORE, &[2u8; 200]),
        short_frame(0, &[3u8; 200]),
        // The running total starts again with the next message.
        long_frame(0, &[4u8; 1000]),
        short_frame(FLAG_COMMAND, b"\x04PING\x00\x00"),
    ]);
    assert_eq!(verdict(&s), Ok(()));
}

#[test]
fn a_frame_over_the_limit_is_refused_at_its_header() {
    let good = stream(&[greeting(), ready(), short_frame(0, b"ok")]);
    let mut s = good.clone();
    s.extend_from_slice(&long_header(0, 1001));
    s.extend_from_slice(&[b'x'; 100]);
    assert_eq!(verdict(&s), Err(Refusal::FrameTooBig { claimed: 1001, limit: 1000 }));
    // A byte at a time, everything before the last byte of the length passes, and nothing after.
    let (_, passed) = feed(&s, 1);
    assert_eq!(passed, good.len() + 8);

    // The 32 TiB claim from the foundation test, and the largest claim there is.
    for claimed in [1u64 << 45, u64::MAX] {
        let s = stream(&[greeting(), ready(), long_header(FLAG_MORE, claimed)]);
        assert_eq!(verdict(&s), Err(Refusal::FrameTooBig { claimed, limit: 1000 }));
    }
}

#[test]
fn a_multi_part_message_over_the_limit_is_refused() {
    let s = stream(&[greeting(), ready(), long_frame(FLAG_MORE, &[1u8; 600]), short_frame(FLAG_MORE, &[2u8; 200]), long_header(0, 201)]);
    assert_eq!(verdict(&s), Err(Refusal::MessageTooBig { claimed: 1001, limit: 1000 }));
}

#[test]
fn too_many_parts_are_refused() {
    let mut parts = vec![greeting(), ready()];
    parts.extend(std::iter::repeat_n(short_frame(FLAG_MORE, b""), 4));
    assert_eq!(verdict(&stream(&parts)), Ok(()));
    parts.push(short_frame(0, b""));
    assert_eq!(verdict(&stream(&parts)), Err(Refusal::TooManyParts { limit: 4 }));
}

#[test]
fn commands_have_their_own_limit() {
    let ok = stream(&[greeting(), long_frame(FLAG_COMMAND, &[0u8; 300])]);
    assert_eq!(verdict(&ok), Ok(()));
    let big = stream(&[greeting(), long_header(FLAG_COMMAND, 301)]);
    assert_eq!(verdict(&big), Err(Refusal::CommandTooBig { claimed: 301, limit: 300 }));
}

#[test]
fn bad_greetings_are_refused() {
    let mut http = b"GET / HTTP/1.1\r\nHost: hub\r\n\r\n".to_vec();
    http.resize(64, b' ');
    assert_eq!(verdict(&http), Err(Refusal::BadSignature { index: 0, value: b'G', expected: 0xff }));

    let mut g = greeting();
    g[9] = 0x7e;
    assert_eq!(verdict(&g), Err(Refusal::BadSignature { index: 9, value: 0x7e, expected: 0x7f }));

    for major in [1, 2, 4] {
        let mut g = greeting();
        g[10] = major;
        assert_eq!(verdict(&g), Err(Refusal::Version(major)));
    }
    // A bad byte stops the stream where it is: nothing before the signature byte is held back.
    let mut g = greeting();
    g[9] = 0;
    assert_eq!(feed(&g, 1).1, 9);
}

#[test]
fn a_stream_may_stop_anywhere_short_of_a_violation() {
    let s = stream(&[greeting(), ready(), long_frame(FLAG_MORE, &[1u8; 500]), short_frame(0, b"end")]);
    for cut in 0..s.len() {
        assert_eq!(verdict(&s[..cut]), Ok(()), "cut at {cut}");
    }
}
