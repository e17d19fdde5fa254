//! Rollouts over real nodes: a canary with a failure limit stops before the third batch (the
//! nodes' audit logs show it was never sent), `--limit` with a seed picks the same nodes twice,
//! `--batch` never has more requests in flight than its window (from the audit logs' times),
//! chaining through `--nodes -` with fleet's own `--jsonl`, and `--fold` over differing replies.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use fleet_e2e::support::{Hub, Node, NodeSpec, Output, TestKeys, fleet, fleet_bin, wait_for, wait_for_nodes};
use serde_json::Value;

const T: Duration = Duration::from_secs(20);

/// `fleet --hub HUB ARGS...` as the harness runs it, with `stdin` piped in and extra environment.
fn fleet_piped(hub: &str, args: &[&str], stdin: &str, env: &[(&str, &Path)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let mut child = Command::new(fleet_bin())
        .args(["--hub", hub])
        .args(args)
        .env("XDG_CONFIG_HOME", home.path())
        .env("FLEET_KEY", TestKeys::get().private_key())
        .env("FLEET_HUB_KEY", TestKeys::get().hub_public_key())
        .env_remove("FLEET_HUB")
        .env_remove("FLEET_CONFIG")
        .env_remove("RUST_LOG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fleet");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        elapsed: started.elapsed(),
    }
}

/// The node's audit lines for `agent`.
fn audited(node: &Node, agent: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(node.dir().join("audit.log")).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|l| l["agent"] == agent).collect()
}

/// Milliseconds since the epoch of an audit time, `2026-05-01T12:34:56.789Z`.
fn audit_ms(time: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| time[r].parse::<i64>().unwrap_or_else(|_| panic!("audit time {time}"));
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    secs * 1000 + n(20..23)
}

/// (start, end) of each allowed request in the audit lines, in ms: the line is written when the
/// action ended, `duration_ms` after the node received the request.
fn spans(lines: &[Value]) -> Vec<(f64, f64)> {
    lines
        .iter()
        .map(|l| {
            let end = audit_ms(l["time"].as_str().unwrap()) as f64;
            (end - l["duration_ms"].as_f64().unwrap(), end)
        })
        .collect()
}

/// The most spans open at once; a span ending when another starts does not overlap it.
fn most_at_once(spans: &[(f64, f64)]) -> usize {
    let mut edges: Vec<(f64, i32)> = spans.iter().flat_map(|(s, e)| [(*s, 1), (*e, -1)]).collect();
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut open, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        open += d;
        most = most.max(open);
    }
    most as usize
}

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("web-{i:02}")).collect()
}

#[test]
fn a_canary_rollout_stops_when_failures_pass_the_limit_and_never_sends_the_third_batch() {
    let hub = Hub::start();
    // web-02 and web-03, the second batch, fail every echo.
    let nodes: Vec<Node> = names(6)
        .iter()
        .map(|n| {
            let failing = n == "web-02" || n == "web-03";
            NodeSpec::new(hub.endpoint(), n).config(if failing { "echo_failure_share = 1.0\n" } else { "" }).start()
        })
        .collect();
    let all = names(6);
    wait_for_nodes(hub.endpoint(), &all.iter().map(String::as_str).collect::<Vec<_>>(), T);

    // Canary web-01, then batches of 2 with a second between a freed slot and its next send: both
    // failures of batch 2 arrive within that second, so the stop comes before batch 3.
    let args = ["rpc", "echo", "echo", "msg=hi", "--canary", "1", "--batch", "2", "--batch-sleep", "1", "--max-failures", "1"];
    let out = fleet(hub.endpoint(), &args);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stdout.contains("Rollout: 4 batches (batch 1: the canary)"), "{out}");
    assert!(out.stdout.contains("web-02 (batch 2): Aborted: simulated intermittent failure"), "{out}");
    assert!(out.stdout.contains("STOPPED in batch 2 of 4: 2 failure(s) passed --max-failures 1 (1 tolerated)"), "{out}");
    assert!(out.stdout.contains("Done (ok):   web-01\n"), "{out}");
    assert!(out.stdout.contains("Failed:      web-[02-03]\n"), "{out}");
    assert!(out.stdout.contains("Never asked: web-[04-06]\n"), "{out}");

    // The nodes that were asked audited the request; the others never received one.
    for node in &nodes[..3] {
        wait_for(&format!("{}'s audit line", node.identity()), T, || audited(node, "echo").len() == 1);
    }
    for node in &nodes[3..] {
        assert!(audited(node, "echo").is_empty(), "{} was sent a request after the stop", node.identity());
    }

    // The same as JSON: where it stopped, and who was never asked.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = fleet(hub.endpoint(), &json_args);
    assert_eq!(out.code, Some(2), "{out}");
    let doc = out.json();
    assert_eq!(doc["rollout"]["stopped"]["batch"], 2, "{out}");
    assert_eq!(doc["rollout"]["never_asked"], serde_json::json!(["web-04", "web-05", "web-06"]), "{out}");
    assert_eq!(doc["summary"]["exit_code"], 2);
    for node in &nodes[3..] {
        assert!(audited(node, "echo").is_empty(), "{} was sent a request after the stop", node.identity());
    }
}

#[test]
fn a_seeded_limit_picks_the_same_nodes_twice() {
    let hub = Hub::start();
    let all = names(8);
    let _nodes: Vec<Node> = all.iter().map(|n| Node::start(hub.endpoint(), n, "", &[])).collect();
    wait_for_nodes(hub.endpoint(), &all.iter().map(String::as_str).collect::<Vec<_>>(), T);

    let picked = |seed: &str| -> Vec<String> {
        let out = fleet(hub.endpoint(), &["ping", "--limit", "3", "--limit-seed", seed, "--json"]);
        assert_eq!(out.code, Some(0), "{out}");
        let doc = out.json();
        assert_eq!(doc["rollout"]["matched"], 8, "{out}");
        let mut senders: Vec<String> =
            doc["replies"].as_array().unwrap().iter().map(|r| r["sender"].as_str().unwrap().to_string()).collect();
        senders.sort();
        senders
    };
    let first = picked("7");
    assert_eq!(first.len(), 3);
    assert_eq!(picked("7"), first, "the same seed picks the same nodes");
    // discover shows the pick a command with the same flags asks.
    let out = fleet(hub.endpoint(), &["discover", "--limit", "3", "--limit-seed", "7", "--json"]);
    assert_eq!(serde_json::from_value::<Vec<String>>(out.json()).unwrap(), first, "{out}");
    // A percentage, and --one.
    let out = fleet(hub.endpoint(), &["ping", "--limit", "50%", "--limit-seed", "7", "--json"]);
    assert_eq!(out.json()["replies"].as_array().unwrap().len(), 4, "{out}");
    let out = fleet(hub.endpoint(), &["ping", "--one"]);
    assert!(out.stdout.contains("Limited to 1 of 8 matching nodes (--limit-seed "), "{out}");
}

const SLOW_DDL: &str = r#"
[metadata]
name = "slow"
description = "Takes a while"
version = "1.0.0"
timeout = 10

[actions.nap]
description = "Sleeps 300 ms"
[actions.nap.output.slept]
description = "How long"
display_as = "Slept"
"#;

const SLOW_SCRIPT: &str = r#"#!/bin/sh
if [ "$3" = "io.choria.mcorpc.external.v1.activation_request" ]; then
  echo '{"activate": true}' > "$2"; exit 0
fi
sleep 0.3
printf '{"statuscode":0,"statusmsg":"OK","data":{"slept":300}}' > "$2"
"#;

#[test]
fn a_batch_never_has_more_requests_in_flight_than_its_window() {
    let hub = Hub::start();
    let agents = tempfile::tempdir().unwrap();
    std::fs::write(agents.path().join("slow.toml"), SLOW_DDL).unwrap();
    let exe = agents.path().join("slow");
    std::fs::write(&exe, SLOW_SCRIPT).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let all = names(6);
    let nodes: Vec<Node> =
        all.iter().map(|n| NodeSpec::new(hub.endpoint(), n).arg("--agents-dir").arg(agents.path().display().to_string()).start()).collect();
    wait_for_nodes(hub.endpoint(), &all.iter().map(String::as_str).collect::<Vec<_>>(), T);
    let ddl_path = [("FLEET_DDL_PATH", agents.path())];

    let out = fleet_piped(hub.endpoint(), &["rpc", "slow", "nap", "-A", "slow", "--batch", "2", "--json"], "", &ddl_path);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.json()["replies"].as_array().unwrap().len(), 6, "{out}");
    let mut lines = Vec::new();
    for node in &nodes {
        wait_for(&format!("{}'s audit line", node.identity()), T, || audited(node, "slow").len() == 1);
        lines.extend(audited(node, "slow"));
    }
    let spans = spans(&lines);
    assert_eq!(most_at_once(&spans), 2, "a sliding window of 2 keeps 2 requests in flight, never more: {spans:?}");
}

#[test]
fn replies_chain_through_nodes_from_stdin_and_fold_by_value() {
    let hub = Hub::start();
    let web = ["web-01", "web-02", "web-03"];
    let mut nodes: Vec<Node> = web.iter().map(|n| Node::start(hub.endpoint(), n, "role: web\n", &[])).collect();
    nodes.push(Node::start(hub.endpoint(), "db-1", "role: db\n", &[]));
    wait_for_nodes(hub.endpoint(), &["db-1", "web-01", "web-02", "web-03"], T);

    // Fleet's own --jsonl, narrowed by --filter-replies, chained into the next command's --nodes -.
    let dir = tempfile::tempdir().unwrap();
    let ok_to = dir.path().join("ok.txt");
    let first = fleet(
        hub.endpoint(),
        &[
            "rpc",
            "rpcutil",
            "get_fact",
            "fact=role",
            "--jsonl",
            "--filter-replies",
            "status=ok and data.value=web",
            "--ok-to",
            ok_to.to_str().unwrap(),
        ],
    );
    assert_eq!(first.code, Some(0), "{first}");
    assert!(!first.stdout.contains("db-1"), "{first}");
    assert_eq!(std::fs::read_to_string(&ok_to).unwrap(), "web-01\nweb-02\nweb-03\n");
    let second = fleet_piped(hub.endpoint(), &["ping", "--nodes", "-", "--json"], &first.stdout, &[]);
    assert_eq!(second.code, Some(0), "{second}");
    let mut senders: Vec<String> =
        second.json()["replies"].as_array().unwrap().iter().map(|r| r["sender"].as_str().unwrap().to_string()).collect();
    senders.sort();
    assert_eq!(senders, web);
    for node in &nodes[..3] {
        wait_for("the chained ping in the audit log", T, || audited(node, "rpcutil").len() == 2);
    }
    assert_eq!(audited(&nodes[3], "rpcutil").len(), 1, "db-1 got the first request only");

    // --fold: each distinct value once, with its nodes as a compact set.
    let out = fleet(hub.endpoint(), &["rpc", "rpcutil", "get_fact", "fact=role", "--fold"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("\nweb-[01-03] (3)\n"), "{out}");
    assert!(out.stdout.contains("\ndb-1 (1)\n"), "{out}");
    assert_eq!(out.stdout.matches("Value: web").count(), 1, "{out}");
    assert_eq!(out.stdout.matches("Value: db").count(), 1, "{out}");
}
