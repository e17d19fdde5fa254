//! Writes small valid inputs for the fuzz targets into fuzz/seeds/<target>/, so libFuzzer starts
//! from real envelopes (signed and unsigned, every kind a peer may send) rather than from nothing.
//! Run from fuzz/: cargo run --example make_seeds

use std::path::Path;

use fleet_protocol::keys::KeyPair;
use fleet_protocol::*;
use serde_json::json;

fn request() -> Request {
    let mut args = serde_json::Map::new();
    args.insert("msg".into(), json!("hello"));
    Request {
        id: "0123456789abcdef0123456789abcdef".into(),
        collective: "fleet".into(),
        caller: "alice".into(),
        agent: "echo".into(),
        action: "echo".into(),
        args,
        filter: Filter {
            identity: vec!["/node-\\d+/".into()],
            fact: vec!["customer=acme".into(), "cpu.count>=4".into()],
            class: vec!["/dev/".into()],
            agent: vec!["echo".into()],
            compound: vec!["customer=acme and not (environment=production or /maint/)".into()],
        },
        targets: vec!["node-1".into()],
        msgtime: 1_700_000_000_000,
        ttl: 60,
        reply: ReplyMode::Normal,
        timeout_ms: 5000,
        fanout: Fanout::RegistryMatch,
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let alice = KeyPair::from_secret_bytes(&[7; 32], &[8; 32]);
    let messages = vec![
        ("request", Message::Request(Box::new(request()))),
        ("hello", Message::Hello(Hello { name: "console".into(), subscribe: true })),
        ("discover", Message::Discover(Discover { filter: request().filter, collective: Some("fleet".into()) })),
        ("ping", Message::Ping),
        ("stats_query", Message::StatsQuery),
        (
            "reply",
            Message::Reply(Box::new(Reply {
                request_id: "r".into(),
                sender: "node-1".into(),
                status: Status::Denied,
                status_msg: "denied by default deny".into(),
                data: json!({"a": [1, 2.5, null, true]}),
                elapsed_us: 12,
            })),
        ),
        ("error", Message::Error(ErrorNotice { message: "refused".into() })),
    ];
    let envelope_dir = root.join("envelope");
    std::fs::create_dir_all(&envelope_dir).unwrap();
    for (name, msg) in &messages {
        let mut env = Envelope::seal(msg).unwrap();
        std::fs::write(envelope_dir.join(format!("{name}.unsigned")), env.to_frame().unwrap()).unwrap();
        env.sign(&alice, "alice");
        std::fs::write(envelope_dir.join(format!("{name}.signed")), env.to_frame().unwrap()).unwrap();
    }
    let request_dir = root.join("request_decode");
    std::fs::create_dir_all(&request_dir).unwrap();
    let Envelope { body, .. } = Envelope::seal(&Message::Request(Box::new(request()))).unwrap();
    std::fs::write(request_dir.join("echo"), body).unwrap();
    let mut rpc = request();
    rpc.agent = "rpcutil".into();
    rpc.action = "policy_check".into();
    rpc.args = json!({"caller": "alice", "agent": "echo", "check_action": "echo"}).as_object().unwrap().clone();
    let Envelope { body, .. } = Envelope::seal(&Message::Request(Box::new(rpc))).unwrap();
    std::fs::write(request_dir.join("policy_check"), body).unwrap();
    // Link frames as the `link` target takes them: a selector byte, then the frame without its tag.
    let link_dir = root.join("link");
    std::fs::create_dir_all(&link_dir).unwrap();
    let hub = KeyPair::from_secret_bytes(&[1; 32], &[2; 32]);
    let node = KeyPair::from_secret_bytes(&[3; 32], &[4; 32]);
    let (_, m1) = fleet_protocol::noise::Initiator::start(&node, &hub.public().link, "node-1").unwrap();
    std::fs::write(link_dir.join("handshake"), [&[0u8][..], &m1[4..]].concat()).unwrap();
    let (init, m1) = fleet_protocol::noise::Initiator::start(&node, &hub.public().link, "node-1").unwrap();
    let (_, m2) = fleet_protocol::noise::Responder::read(&hub, &m1).unwrap().accept().unwrap();
    let mut session = init.finish(&m2).unwrap();
    let sealed = session.seal(&[7u8; 70_000]).unwrap();
    std::fs::write(link_dir.join("transport"), [&[1u8][..], &sealed[4..]].concat()).unwrap();
    println!("seeds written under {}", root.display());
}
