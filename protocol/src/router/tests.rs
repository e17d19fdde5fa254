//! The hub's ROUTER on real sockets, with zmq.rs DEALERs and hand-written ZMTP peers.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::framer::{command, greeting, header};
use crate::transport::{HubSocket, Inbound, Link, PeerEvent};

const T: Duration = Duration::from_secs(5);

/// A hand-made DEALER's opening: greeting and READY, asking for a routing id of its own.
fn opening(identity: &[u8]) -> Vec<u8> {
    let mut props = b"\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity".to_vec();
    props.extend_from_slice(&(identity.len() as u32).to_be_bytes());
    props.extend_from_slice(identity);
    let mut s = greeting().to_vec();
    s.extend(command(b"READY", &props));
    s
}

fn message(body: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    header(&mut s, 0, body.len());
    s.extend_from_slice(body);
    s
}

async fn next_frame(hub: &mut HubSocket) -> (crate::transport::Peer, Bytes) {
    match tokio::time::timeout(T, hub.recv()).await.expect("a frame in time").unwrap() {
        Inbound::Frame(peer, frame) => (peer, frame),
        Inbound::Malformed(peer) => panic!("a malformed message from {}", peer.short()),
    }
}

/// Reads until the peer closes; panics if it does not within `T`.
async fn closed_by_hub(raw: &mut TcpStream) {
    let mut sink = [0u8; 4096];
    tokio::time::timeout(T, async {
        while let Ok(n) = raw.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .expect("the hub closes the link");
}

#[tokio::test]
async fn dealers_get_through_both_ways_and_a_bomb_costs_only_its_link() {
    let (mut hub, mut events) = HubSocket::bind_with_limits("tcp://127.0.0.1:0", 1000, Some(256 * 1024)).await.unwrap();
    let endpoint = hub.endpoint().to_string();
    assert!(endpoint.starts_with("tcp://127.0.0.1:") && !endpoint.ends_with(":0"), "{endpoint}");
    let address = endpoint.strip_prefix("tcp://").unwrap().to_string();

    let mut link = Link::connect(&endpoint, T).await.unwrap();
    link.send(Bytes::from_static(b"ping")).await.unwrap();
    let (peer, frame) = next_frame(&mut hub).await;
    assert_eq!(&frame[..], b"ping");
    assert_eq!(hub.source(&peer), Some("127.0.0.1".parse().unwrap()));
    // Over the codec's limit but within twice it: the hub gets it (and drops it).
    link.send(Bytes::from(vec![1u8; 1500])).await.unwrap();
    assert_eq!(next_frame(&mut hub).await.1.len(), 1500);
    hub.sender().send(&peer, Bytes::from(vec![9u8; 5000])).await.unwrap();
    assert_eq!(tokio::time::timeout(T, link.recv()).await.unwrap().unwrap().len(), 5000);
    // Several frames in one write, one of them too big to be copied behind its header: all
    // arrive, in order.
    let frames: Vec<Bytes> = [3usize, 70_000, 0, 12].iter().map(|n| Bytes::from(vec![*n as u8; *n])).collect();
    hub.sender().send_all(&peer, &frames).await.unwrap();
    for sent in &frames {
        assert_eq!(&tokio::time::timeout(T, link.recv()).await.unwrap().unwrap(), sent);
    }

    // A header claiming 32 TiB: that link is cut and counted, nothing is reserved for it.
    let mut raw = TcpStream::connect(&address).await.unwrap();
    let mut bomb = opening(b"x");
    let mut big = Vec::new();
    header(&mut big, 0, 1 << 45);
    bomb.extend(big);
    bomb.extend_from_slice(&[b'x'; 100]);
    raw.write_all(&bomb).await.unwrap();
    closed_by_hub(&mut raw).await;
    assert_eq!(hub.guard_refusals(), 1);

    // The first link still works.
    link.send(Bytes::from_static(b"still here")).await.unwrap();
    assert_eq!(&next_frame(&mut hub).await.1[..], b"still here");

    // A peer asking for a routing id of its choice gets the hub's: no peer picks its route.
    let mut raw = TcpStream::connect(&address).await.unwrap();
    let mut s = opening(FORGED);
    s.extend(message(b"raw"));
    raw.write_all(&s).await.unwrap();
    let (raw_peer, frame) = next_frame(&mut hub).await;
    assert_eq!(&frame[..], b"raw");
    assert_ne!(raw_peer, peer);
    assert!(!format!("{raw_peer:?}").contains(std::str::from_utf8(FORGED).unwrap()), "{raw_peer:?}");
    // Its close reaches the hub as a disconnect of that link alone.
    drop(raw);
    let gone = tokio::time::timeout(T, events.recv()).await.expect("a disconnect event").unwrap();
    let PeerEvent::Disconnected(gone) = gone;
    assert_eq!(gone, raw_peer);
    assert!(hub.sender().send(&raw_peer, Bytes::from_static(b"late")).await.is_err());

    // Dropping the socket stops the listener.
    drop(hub);
    let refused = tokio::time::timeout(T, async {
        while TcpStream::connect(&address).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(refused.is_ok(), "the hub still listens after its socket was dropped");
}

const FORGED: &[u8] = b"g127.0.0.1|0000000000000001";

#[tokio::test]
async fn pings_are_answered_and_odd_shapes_are_reported() {
    let (mut hub, _events) = HubSocket::bind_with_limits("tcp://127.0.0.1:0", 1000, None).await.unwrap();
    let mut raw = TcpStream::connect(hub.endpoint().strip_prefix("tcp://").unwrap()).await.unwrap();
    let mut s = opening(b"");
    s.extend(command(b"PING", b"\x00\x0ahello"));
    // Three parts: not what a DEALER sends.
    for (i, part) in [&b"a"[..], b"b", b"c"].iter().enumerate() {
        header(&mut s, if i < 2 { 1 } else { 0 }, part.len());
        s.extend_from_slice(part);
    }
    raw.write_all(&s).await.unwrap();
    assert!(matches!(tokio::time::timeout(T, hub.recv()).await.unwrap().unwrap(), Inbound::Malformed(_)));
    // The hub's greeting, its READY, then the PONG with the context.
    let mut got = Vec::new();
    let pong = command(b"PONG", b"hello");
    tokio::time::timeout(T, async {
        let mut buf = [0u8; 512];
        while !got.windows(pong.len()).any(|w| w == pong.as_slice()) {
            let n = raw.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the PONG");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("a PONG");
    assert_eq!(&got[..64], &greeting()[..]);
    assert!(got[64..].starts_with(&super::framer::ready()));
}

#[tokio::test]
async fn an_ipc_hub_works_and_removes_its_socket_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.sock");
    let endpoint = format!("ipc://{}", path.display());
    let (mut hub, _events) = HubSocket::bind(&endpoint).await.unwrap();
    assert_eq!(hub.endpoint(), endpoint);
    let mut link = Link::connect(&endpoint, T).await.unwrap();
    link.send(Bytes::from_static(b"over ipc")).await.unwrap();
    let (peer, frame) = next_frame(&mut hub).await;
    assert_eq!(&frame[..], b"over ipc");
    assert_eq!(hub.source(&peer), None);
    hub.sender().send(&peer, Bytes::from_static(b"back")).await.unwrap();
    assert_eq!(&tokio::time::timeout(T, link.recv()).await.unwrap().unwrap()[..], b"back");
    drop(hub);
    assert!(!path.exists(), "the socket file is left behind");
}

#[tokio::test]
async fn a_peer_that_sends_and_closes_at_once_is_still_heard() {
    let (mut hub, mut events) = HubSocket::bind_with_limits("tcp://127.0.0.1:0", 1000, None).await.unwrap();
    let address = hub.endpoint().strip_prefix("tcp://").unwrap().to_string();
    for round in 0..20 {
        let mut raw = std::net::TcpStream::connect(&address).unwrap();
        let mut s = opening(b"");
        for i in 0..50 {
            s.extend(message(format!("{round}-{i}").as_bytes()));
        }
        std::io::Write::write_all(&mut raw, &s).unwrap();
        // Closed before the hub's READY is written back: that write may fail, and what was read
        // before it still reaches the hub.
        drop(raw);
        for i in 0..50 {
            assert_eq!(next_frame(&mut hub).await.1, format!("{round}-{i}").as_bytes(), "round {round}");
        }
        assert!(matches!(tokio::time::timeout(T, events.recv()).await.unwrap(), Some(PeerEvent::Disconnected(_))));
    }
}
