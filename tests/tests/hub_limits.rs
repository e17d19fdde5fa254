//! The hub's costs are bounded, end to end on real `noded hub`, `noded` and `noded sim`
//! processes: a flood of fresh link keys knocking does not stall routing (pings keep answering,
//! pending keys are capped in count and rate); a console that stops reading while thousands of
//! replies flow holds a bounded queue (its oldest replies are dropped and it is told how many),
//! and the hub's memory stays bounded; no local socket of the hub or of a node's link is reachable
//! by another user, and what remains reachable without a key gets nothing.
//!
//! Nothing sleeps to synchronise: every wait is for a message, a count or a file, under a deadline.
//! Memory is sampled while waiting, which is measurement, not synchronisation.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleet_e2e::support::{
    Hub, NodeSpec, RawPeer, RawZmtp, TestKeys, enroll_dir_of, noded_bin, request, signed_frame, wait_for, wait_for_nodes,
};
use fleet_protocol::keys::KeyPair;
use fleet_protocol::{Discover, Filter, HubStats, Message};
use serde_json::Map;
use zeromq::prelude::*;

const T: Duration = Duration::from_secs(60);

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------------------------
// 1. A knock flood

/// Sends one first handshake message per key, over `connections` links, as fast as they go.
/// Returns the links and the runtime that writes for them: zmq.rs writes a socket's messages from
/// a task of its own, so a link dropped at once could lose what it had not written yet.
fn knock(endpoint: &str, keys: &[KeyPair], connections: usize) -> (tokio::runtime::Runtime, Vec<zeromq::DealerSocket>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let hub_link = TestKeys::get().hub.public().link;
    let socks = rt.block_on(async {
        let mut tasks = Vec::new();
        for chunk in keys.chunks(keys.len().div_ceil(connections)) {
            let hellos: Vec<Vec<u8>> = chunk
                .iter()
                .enumerate()
                .map(|(i, k)| fleet_protocol::noise::Initiator::start(k, &hub_link, &format!("knock-{i}")).unwrap().1)
                .collect();
            let endpoint = endpoint.to_string();
            tasks.push(tokio::spawn(async move {
                let mut sock = zeromq::DealerSocket::new();
                sock.connect(&endpoint).await.expect("connect");
                for h in hellos {
                    sock.send(zeromq::ZmqMessage::from(Bytes::from(h))).await.expect("send");
                }
                sock
            }));
        }
        let mut socks = Vec::new();
        for t in tasks {
            socks.push(t.await.unwrap());
        }
        socks
    });
    (rt, socks)
}

#[test]
fn a_thousand_fresh_keys_knocking_do_not_stall_routing() {
    let hub = Hub::start();
    let _node = NodeSpec::new(hub.endpoint(), "alpha").start();
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let mut console = RawPeer::connect(hub.endpoint());
    console.hello("console");
    let pending_dir = enroll_dir_of(hub.endpoint()).unwrap().join("pending");

    let keys: Vec<KeyPair> = (0..1000).map(|_| KeyPair::generate()).collect();
    // Knocks run on their own thread; the console pings the hub until they are all out and the hub
    // has worked through them (its dropped-frame count covers every knock).
    let dropped_before = console.hub_stats().dropped_frames;
    let endpoint = hub.endpoint().to_string();
    let (links_done, links_close) = std::sync::mpsc::channel::<()>();
    let flood = std::thread::spawn(move || {
        let started = Instant::now();
        let first = knock(&endpoint, &keys, 20);
        // The same keys again: the recorded ones are now pending, known in memory.
        let second = knock(&endpoint, &keys, 20);
        let took = started.elapsed();
        // The links stay until the hub has counted every knock.
        let _ = links_close.recv();
        drop((first, second));
        took
    });
    let mut rtts = Vec::new();
    let mut stats = console.hub_stats();
    while stats.dropped_frames < dropped_before + 2000 {
        let sent = Instant::now();
        console.send(&Message::Ping);
        console.recv_matching(T, "Pong", |m| matches!(m, Message::Pong));
        rtts.push(sent.elapsed());
        if rtts.len() % 20 == 0 {
            stats = console.hub_stats();
        }
        assert!(rtts.len() < 1_000_000, "the hub never worked through the knocks: {stats:?}");
    }
    let _ = links_done.send(());
    let took = flood.join().unwrap();
    rtts.sort();
    let (p50, p99, max) = (percentile(&rtts, 0.5), percentile(&rtts, 0.99), *rtts.last().unwrap());
    let stats = console.hub_stats();
    let files =
        std::fs::read_dir(&pending_dir).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "pub")).count();
    eprintln!(
        "2,000 knocks (1,000 fresh keys, twice) sent in {:.2} s; {} pings answered meanwhile: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         {} keys recorded as pending ({files} files)",
        took.as_secs_f64(),
        rtts.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        stats.pending_keys
    );
    // Every ping was answered (each waited for its Pong); the knocks were refused and counted.
    assert!(stats.dropped_frames >= dropped_before + 2000, "{stats:?}");
    assert!(p99 < Duration::from_secs(1), "pings stalled during the knock flood: p99 {p99:?}");
    // Capped: the pending list holds at most max_pending (1,000), recorded at most at the knock rate
    // (50 a second, bursts of 100), and each recorded key is one file.
    assert!(stats.pending_keys > 0 && stats.pending_keys <= 1000, "{stats:?}");
    assert!(stats.pending_keys as f64 <= 100.0 + 50.0 * (stats.uptime_s as f64 + 1.0), "recorded faster than the knock rate: {stats:?}");
    // Every knock came from 127.0.0.1: one source, held to its own rate (5 a second, bursts of
    // 10) and count (100 waiting), whatever the global limits allow.
    assert!(
        stats.pending_keys as f64 <= (10.0 + 5.0 * (stats.uptime_s as f64 + 1.0)).min(100.0),
        "one source recorded too many: {stats:?}"
    );
    assert_eq!(files as u64, stats.pending_keys);
    // Routing still works.
    let ping = request("rpcutil", "ping", Map::new(), &["alpha"]);
    assert_eq!(console.request(ping, T).sender, "alpha");
}

// ---------------------------------------------------------------------------------------------
// 2. A console that stops reading

fn start_sim(dir: &Path, hub: &str, nodes: usize) -> std::process::Child {
    let keys = TestKeys::get();
    let config = dir.join("sim.toml");
    std::fs::write(
        &config,
        format!(
            "hub_key = {:?}\ncallers_dir = {:?}\npolicy_default = \"allow\"\nheartbeat_interval = 5.0\n",
            keys.hub_public_key().display().to_string(),
            keys.callers_dir().display().to_string(),
        ),
    )
    .unwrap();
    Command::new(noded_bin())
        .arg("--config")
        .arg(&config)
        .args(["sim", "--nodes", &nodes.to_string(), "--hub", hub, "--enroll-into"])
        .arg(enroll_dir_of(hub).unwrap())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("sim.stderr")).unwrap())
        .spawn()
        .unwrap()
}

/// A console on a bare TCP stream (ZMTP and the link handshake done by hand), so that when it
/// stops reading, nothing reads: no library buffers the hub's frames behind the test's back.
struct BareConsole {
    stream: std::net::TcpStream,
    session: fleet_protocol::noise::Session,
}

impl BareConsole {
    fn connect(endpoint: &str) -> BareConsole {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(endpoint.strip_prefix("tcp://").unwrap()).unwrap();
        stream.set_nodelay(true).unwrap();
        // A reply that never comes fails the test instead of hanging it.
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0];
        greeting.extend_from_slice(b"NULL");
        greeting.resize(64, 0);
        stream.write_all(&greeting).unwrap();
        let mut ready = b"\x05READY".to_vec();
        ready.push(11);
        ready.extend_from_slice(b"Socket-Type");
        ready.extend_from_slice(&6u32.to_be_bytes());
        ready.extend_from_slice(b"DEALER");
        stream.write_all(&[0x04, ready.len() as u8]).unwrap();
        stream.write_all(&ready).unwrap();
        let mut theirs = [0u8; 64];
        stream.read_exact(&mut theirs).unwrap();
        let (_, body) = read_frame(&mut stream); // the hub's READY
        assert!(body.starts_with(b"\x05READY"));
        let keys = TestKeys::get();
        let (init, hello) = fleet_protocol::noise::Initiator::start(&keys.key, &keys.hub.public().link, "e2e").unwrap();
        write_frame(&mut stream, &hello);
        let (_, answer) = read_frame(&mut stream);
        let session = init.finish(&answer).expect("link handshake");
        BareConsole { stream, session }
    }

    fn send(&mut self, plaintext: &[u8]) {
        let sealed = self.session.seal(plaintext).unwrap();
        write_frame(&mut self.stream, &sealed);
    }

    fn recv(&mut self) -> Message {
        loop {
            let (flags, body) = read_frame(&mut self.stream);
            if flags & 0x04 != 0 {
                continue; // a command (PING)
            }
            let plain = self.session.open(&body).expect("decrypts");
            return fleet_protocol::codec::decode_message(&plain, &fleet_protocol::codec::Limits::default()).unwrap();
        }
    }
}

fn write_frame(stream: &mut std::net::TcpStream, body: &[u8]) {
    use std::io::Write;
    let mut f = vec![0x02];
    f.extend_from_slice(&(body.len() as u64).to_be_bytes());
    f.extend_from_slice(body);
    stream.write_all(&f).unwrap();
}

fn read_frame(stream: &mut std::net::TcpStream) -> (u8, Vec<u8>) {
    use std::io::Read;
    let mut flags = [0u8; 1];
    stream.read_exact(&mut flags).unwrap();
    let len = if flags[0] & 0x02 != 0 {
        let mut l = [0u8; 8];
        stream.read_exact(&mut l).unwrap();
        u64::from_be_bytes(l) as usize
    } else {
        let mut l = [0u8; 1];
        stream.read_exact(&mut l).unwrap();
        usize::from(l[0])
    };
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    (flags[0], body)
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_console_that_stops_reading_holds_a_bounded_queue_and_its_memory_goes_when_it_leaves() {
    const NODES: usize = 200;
    const REQUESTS: usize = 150;
    let hub =
        Hub::start_with("[hub]\nmax_link_queue_bytes = 4194304\nmax_requests_per_second = 10000.0\n", &["--hub", "tcp://127.0.0.1:0"]);
    let pid = hub.pid().unwrap();
    let work = tempfile::tempdir().unwrap();
    let fds_before = open_fds(pid);
    let _sim = KillOnDrop(start_sim(work.path(), hub.endpoint(), NODES));
    let mut watcher = RawPeer::connect(hub.endpoint());
    watcher.hello("watcher");
    wait_for("the simulated nodes to register", T, || watcher.hub_stats().nodes == NODES as u64);
    // A link costs the hub one descriptor, its TCP socket (the watcher is one more link).
    let fds = open_fds(pid) - fds_before;
    eprintln!("hub descriptors for {NODES} node links and a console: {fds}");
    assert!(fds <= NODES + 1 + 4, "{fds} descriptors for {} links", NODES + 1);
    let baseline = rss_mib(pid);
    let flood = |sender: &mut dyn FnMut(Vec<u8>)| {
        for _ in 0..REQUESTS {
            let mut args = Map::new();
            args.insert("msg".into(), serde_json::json!("x".repeat(1000)));
            let mut req = request("echo", "echo", args, &[]);
            req.timeout_ms = 120_000;
            sender(signed_frame(&req));
        }
    };
    let expected = (NODES * REQUESTS) as u64;

    // For comparison, the same flood to a console that reads everything: what the traffic itself
    // costs the hub's allocator.
    let mut reader = BareConsole::connect(hub.endpoint());
    reader.send(
        &fleet_protocol::codec::encode_message(&Message::Hello(fleet_protocol::Hello { name: "reader".into(), subscribe: false })).unwrap(),
    );
    assert!(matches!(reader.recv(), Message::Welcome(_)));
    let sampler_stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = sampler_stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0.0f64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_mib(pid));
                std::thread::sleep(Duration::from_millis(20)); // sampling, not synchronisation
            }
            peak
        })
    };
    flood(&mut |f| reader.send(&f));
    let mut got = 0;
    while got < expected {
        if matches!(reader.recv(), Message::Reply(_)) {
            got += 1;
        }
    }
    sampler_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reading_peak = sampler.join().unwrap();
    drop(reader);
    eprintln!("{expected} replies to a console that reads them all: hub RSS {baseline:.1} MiB before, {reading_peak:.1} MiB at the peak");

    // The slow console: sends its requests, then reads nothing.
    let mut slow = BareConsole::connect(hub.endpoint());
    slow.send(
        &fleet_protocol::codec::encode_message(&Message::Hello(fleet_protocol::Hello { name: "slow".into(), subscribe: false })).unwrap(),
    );
    assert!(matches!(slow.recv(), Message::Welcome(_)));
    let replies_before = watcher.hub_stats().replies;
    flood(&mut |f| slow.send(&f));
    let mut peak = rss_mib(pid);
    let mut last = HubStats::default();
    let mut shown = Instant::now();
    wait_for(&format!("{expected} replies routed"), Duration::from_secs(180), || {
        peak = peak.max(rss_mib(pid));
        last = watcher.hub_stats();
        if shown.elapsed() > Duration::from_secs(5) {
            shown = Instant::now();
            eprintln!(
                "  {} replies routed, {} queued bytes, {} dropped, RSS {:.1} MiB",
                last.replies - replies_before,
                last.queued_bytes,
                last.dropped_replies,
                rss_mib(pid)
            );
        }
        last.replies >= replies_before + expected
    });
    peak = peak.max(rss_mib(pid));
    eprintln!(
        "{expected} replies to a console that reads nothing: hub RSS {baseline:.1} MiB before, {peak:.1} MiB at the peak; \
         {} queued bytes, {} replies dropped",
        last.queued_bytes, last.dropped_replies
    );
    assert!(last.dropped_replies > 0, "the slow console's queue overflowed and dropped its oldest: {last:?}");
    assert!(last.queued_bytes <= 4 * 1024 * 1024 + 64 * 1024, "the queue stays within its byte limit: {last:?}");
    // Unbounded, the hub would hold every reply (about 1.3 KB each, ~40 MiB for these 30,000) on
    // top of what the traffic costs anyway; bounded, it holds the queue (4 MiB) and what is in
    // flight (1 MiB), plus the allocator's fragmentation (measured 1-17 MiB over runs).
    assert!(
        peak - reading_peak.max(baseline) < 24.0,
        "hub memory grew by {:.1} MiB more for a console that stops reading than for one that reads",
        peak - reading_peak.max(baseline)
    );

    // It reads again: the hub says how many replies it dropped.
    slow.stream.set_read_timeout(Some(T)).unwrap();
    let mut read = 0;
    let notice = loop {
        match slow.recv() {
            Message::Error(e) if e.message.contains("the hub dropped") && e.message.contains("not reading fast enough") => break e.message,
            _ => read += 1,
        }
    };
    eprintln!("after {read} messages the console is told: {notice}");
    drop(slow);
    wait_for("the slow console's queue to go", T, || watcher.hub_stats().queued_bytes == 0);
    let after = rss_mib(pid);
    eprintln!("hub RSS {after:.1} MiB after the console left (peak {peak:.1} MiB, baseline {baseline:.1} MiB)");
    assert!(after <= peak + 1.0, "memory grew after the console left: {after:.1} MiB");
    // The hub still routes.
    let ping = request("rpcutil", "ping", Map::new(), &[]);
    let _ = watcher.request(ping, T);
}

// ---------------------------------------------------------------------------------------------
// 3. No unauthenticated local surface

/// The socket inodes among a process's file descriptors.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

fn socket_inodes(pid: u32) -> Vec<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|t| t.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .collect()
}

/// Local ports a process listens on over TCP (v4 and v6).
fn tcp_listening_ports(pid: u32) -> Vec<u16> {
    let mine = socket_inodes(pid);
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // State 0A is LISTEN.
            if f.len() > 9 && f[3] == "0A" && f[9].parse().is_ok_and(|i: u64| mine.contains(&i)) {
                ports.push(u16::from_str_radix(f[1].rsplit(':').next().unwrap(), 16).unwrap());
            }
        }
    }
    ports
}

/// Paths of the Unix sockets a process listens on.
fn unix_listening_paths(pid: u32) -> Vec<PathBuf> {
    let mine = socket_inodes(pid);
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/unix")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Flags 00010000 is __SO_ACCEPTCON: listening.
            (f.len() > 7 && f[3] == "00010000" && f[6].parse().is_ok_and(|i: u64| mine.contains(&i))).then(|| PathBuf::from(f[7]))
        })
        .collect()
}

/// Connects to `path` as the unprivileged user `nobody`, in a child process. Returns what the
/// child saw, or `None` when this test does not run as root (and cannot switch users).
fn connect_as_nobody(path: &Path) -> Option<String> {
    if rustix::process::getuid().as_raw() != 0 {
        return None;
    }
    use std::os::unix::process::CommandExt;
    // A plain connect(2) on the socket, from python3 (which the e2e tests already need).
    const CONNECT: &str = "import socket, sys\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect(sys.argv[1])\n    print('CONNECT: connected')\nexcept OSError as e:\n    print('CONNECT: refused: ' + str(e))\n";
    let out = Command::new("python3").arg("-c").arg(CONNECT).arg(path).uid(65534).gid(65534).output().expect("python3 runs");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn no_local_socket_is_reachable_without_a_key() {
    let hub = Hub::start();
    let node = NodeSpec::new(hub.endpoint(), "alpha").start();
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let hub_pid = hub.pid().unwrap();
    let node_pid = node.pid().unwrap();
    let public_port: u16 = hub.endpoint().rsplit(':').next().unwrap().parse().unwrap();

    // The hub listens on TCP at its public port only (it speaks ZMTP on that socket itself: no
    // inner port, no inner Unix socket); the node listens on no TCP port at all.
    assert_eq!(tcp_listening_ports(hub_pid), [public_port], "the hub's TCP listeners");
    assert_eq!(tcp_listening_ports(node_pid), Vec::<u16>::new(), "the node's TCP listeners");

    // What remains local is the node's Unix socket, in a directory only its owner may enter.
    let hub_sockets = unix_listening_paths(hub_pid);
    let node_sockets = unix_listening_paths(node_pid);
    assert_eq!(hub_sockets, Vec::<PathBuf>::new(), "the hub's Unix sockets");
    assert_eq!(node_sockets.len(), 1, "the link guard's socket: {node_sockets:?}");
    for path in hub_sockets.iter().chain(&node_sockets) {
        let dir = path.parent().unwrap();
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is mode {mode:o}", dir.display());
        match connect_as_nobody(path) {
            Some(seen) => assert!(seen.contains("CONNECT: refused") && seen.contains("ermission denied"), "{}: {seen}", path.display()),
            None => eprintln!("not root: skipped connecting to {} as another user", path.display()),
        }
    }

    // The public port, without a key: frames outside a link get nothing back.
    let mut stranger = RawPeer::connect_plain(hub.endpoint());
    stranger.send_raw_frame(signed_frame(&request("rpcutil", "ping", Map::new(), &["alpha"])));
    stranger.send_raw_frame(
        fleet_protocol::codec::encode_message(&Message::Discover(Discover { filter: Filter::default(), collective: None })).unwrap(),
    );
    stranger.send_raw_frame(fleet_protocol::codec::encode_message(&Message::Ping).unwrap());
    assert!(stranger.recv_frames(Duration::from_secs(1)).is_none(), "the hub answered a peer without a link");

    // A 64 GiB frame header: the link is cut, the hub stays up and keeps routing.
    let mut raw = RawZmtp::connect(hub.endpoint());
    let _ = raw.write(&RawZmtp::frame_header(64 << 30, false));
    let _ = raw.write(&[0u8; 4096]);
    wait_for("the hub to cut the 64 GiB claim", T, || raw.closed_by_peer());
    let mut console = RawPeer::connect(hub.endpoint());
    console.hello("console");
    let ping = request("rpcutil", "ping", Map::new(), &["alpha"]);
    assert_eq!(console.request(ping, T).sender, "alpha");
    eprintln!("hub RSS after the 64 GiB claim: {:.1} MiB", rss_mib(hub_pid));
}
