//! End to end: the DDL on both ends, echo across real nodes, external agents loaded, reloaded and
//! removed without a restart, timeouts, and process hunting (pgrep, zombies, kill, pkill) on real
//! processes asserted from /proc.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fleet_e2e::support::{Hub, Node, NodeSpec, RawPeer, fleet, request, wait_for, wait_for_nodes};
use fleet_protocol::Status;
use serde_json::{Map, Value, json};

const T: Duration = Duration::from_secs(20);

fn three_nodes(hub: &Hub, extra: &[(&str, &str)]) -> Vec<Node> {
    ["alpha", "beta", "gamma"]
        .iter()
        .map(|id| {
            let mut spec = NodeSpec::new(hub.endpoint(), id).facts(&format!("name: {id}\n"));
            for (k, v) in extra.iter().filter(|(k, _)| *k == *id) {
                let _ = k;
                for a in v.split(' ') {
                    spec = spec.arg(a);
                }
            }
            spec.start()
        })
        .collect()
}

fn args(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[test]
fn echo_round_trips_and_failures_are_reported() {
    let hub = Hub::start();
    let _nodes = three_nodes(&hub, &[("beta", "--echo-failure-share 1.0")]);
    wait_for_nodes(hub.endpoint(), &["alpha", "beta", "gamma"], T);

    let out = fleet(hub.endpoint(), &["rpc", "echo", "echo", "msg=hello world", "--json"]);
    let v = out.json();
    let replies = v["replies"].as_array().unwrap();
    assert_eq!(replies.len(), 3, "{out}");
    for r in replies {
        if r["sender"] == "beta" {
            assert_eq!(r["status"], "Aborted", "{out}");
            assert!(r["status_msg"].as_str().unwrap().contains("simulated intermittent failure"), "{out}");
        } else {
            assert_eq!(r["status"], "Ok", "{out}");
            assert_eq!(r["data"]["msg"], "hello world", "returned unmodified: {out}");
        }
    }
    assert_eq!(out.code, Some(2), "some failed: {out}");

    let out = fleet(hub.endpoint(), &["rpc", "echo", "echo", "msg=hi", "--display", "failed"]);
    assert!(out.stdout.contains("beta") && out.stdout.contains("Aborted"), "{out}");
    assert!(!out.stdout.contains("alpha") && !out.stdout.contains("gamma\n"), "only failed nodes are listed: {out}");
    assert!(out.stdout.contains("Summary of Message:") && out.stdout.contains("hi = 2"), "aggregate over the ok replies: {out}");
}

#[test]
fn client_refuses_and_node_refuses_invalid_requests() {
    let hub = Hub::start();
    let node = Node::start(hub.endpoint(), "alpha", "", &[]);
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let total_before = daemon_total(hub.endpoint(), "alpha");

    // The client refuses before sending: exit 4, the message names the input and the rule.
    let long = format!("msg={}", "x".repeat(1025));
    let out = fleet(hub.endpoint(), &["rpc", "echo", "echo", &long]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stderr.contains("input 'msg'") && out.stderr.contains("maxlength of 1024"), "{out}");
    let out = fleet(hub.endpoint(), &["rpc", "echo", "echo"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stderr.contains("input 'msg' is required"), "{out}");
    // Nothing reached the node: its total counts only our two daemon_stats calls.
    assert_eq!(daemon_total(hub.endpoint(), "alpha"), total_before + 1);

    // Around the client check, the node refuses with the same message and never runs the action.
    let mut peer = RawPeer::connect(hub.endpoint());
    peer.hello("e2e");
    let r = peer.request(request("echo", "echo", args(&[("msg", json!("x".repeat(1025)))]), &["alpha"]), T);
    assert_eq!(r.status, Status::InvalidData);
    assert!(r.status_msg.contains("input 'msg'") && r.status_msg.contains("maxlength of 1024"), "{}", r.status_msg);
    assert_eq!(r.data, Value::Null, "the action did not run");
    let r = peer.request(request("echo", "echo", Map::new(), &["alpha"]), T);
    assert_eq!(r.status, Status::MissingData);
    assert_eq!(r.status_msg, "input 'msg' is required");
    let r = peer.request(request("echo", "echo", args(&[("msg", json!(12))]), &["alpha"]), T);
    assert_eq!(r.status, Status::InvalidData);
    assert!(r.status_msg.contains("must be of type string"), "{}", r.status_msg);
    let r = peer.request(request("echo", "shout", args(&[("msg", json!("x"))]), &["alpha"]), T);
    assert_eq!(r.status, Status::UnknownAction);
    drop(node);
}

fn daemon_total(hub: &str, node: &str) -> u64 {
    let out = fleet(hub, &["rpc", "rpcutil", "daemon_stats", "-I", node, "--json"]);
    out.json()["replies"][0]["data"]["total"].as_u64().unwrap_or_else(|| panic!("{out}"))
}

const EXT_DDL: &str = r#"
[metadata]
name = "marker"
description = "Writes a marker file"
version = "1.0.0"
timeout = 2

[actions.touch]
description = "Touch the marker"
[actions.touch.input.word]
prompt = "Word"
description = "A word"
type = "string"
maxlength = 10
validation = '^[a-z]+$'
[actions.touch.output.wrote]
description = "What was written"
display_as = "Wrote"

[actions.hang]
description = "Never returns"
"#;

const EXT_SCRIPT: &str = r#"#!/bin/sh
# A test external agent. Arguments: request file, reply file, protocol.
req="$1"; reply="$2"; proto="$3"
if [ "$proto" = "io.choria.mcorpc.external.v1.activation_request" ]; then
  echo '{"activate": true}' > "$reply"; exit 0
fi
echo "marker agent called" >&2
case "$(cat "$req")" in
  *'"action":"hang"'*) exec sleep 31337 ;;
esac
word=$(sed -n 's/.*"word":"\([a-z]*\)".*/\1/p' "$req")
echo "$word" >> "$MARKER_FILE"
printf '{"statuscode":0,"statusmsg":"OK","data":{"wrote":"%s"}}' "$word" > "$reply"
"#;

fn install_agent(dir: &Path, ddl: &str) {
    std::fs::write(dir.join("marker.toml"), ddl).unwrap();
    let exe = dir.join("marker");
    std::fs::write(&exe, EXT_SCRIPT).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn agents_of(hub: &str, node: &str) -> Vec<String> {
    let out = fleet(hub, &["rpc", "rpcutil", "agent_inventory", "-I", node, "--json"]);
    out.json()["replies"][0]["data"]["agents"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"))
        .iter()
        .map(|a| a["agent"].as_str().unwrap().to_string())
        .collect()
}

fn sleepers(tag: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter(|e| {
            std::fs::read(e.path().join("cmdline")).map(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(tag)).unwrap_or(false)
        })
        .count()
}

#[test]
fn external_agent_loads_runs_reloads_times_out_and_goes_away() {
    let hub = Hub::start();
    let agents = tempfile::tempdir().unwrap();
    let marker = agents.path().join("marker.out");
    let node = NodeSpec::new(hub.endpoint(), "alpha")
        .arg("--agents-dir")
        .arg(agents.path().display().to_string())
        .env("MARKER_FILE", &marker.display().to_string())
        .start();
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    assert!(!agents_of(hub.endpoint(), "alpha").contains(&"marker".to_string()));

    // New agent appears on rpcutil reload_agents, without a restart; the hub's agent filter sees it.
    install_agent(agents.path(), EXT_DDL);
    let out = fleet(hub.endpoint(), &["rpc", "rpcutil", "reload_agents", "-I", "alpha", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(agents_of(hub.endpoint(), "alpha").contains(&"marker".to_string()));
    wait_for("the registry to list the new agent", T, || {
        fleet(hub.endpoint(), &["discover", "-A", "marker", "--json"]).json() == json!(["alpha"])
    });

    // Called through the node: validation from its DDL, then the script runs.
    let ddl_dir = agents.path().display().to_string();
    let mut peer = RawPeer::connect(hub.endpoint());
    peer.hello("e2e");
    let r = peer.request(request("marker", "touch", args(&[("word", json!("hello"))]), &["alpha"]), T);
    assert_eq!(r.status, Status::Ok, "{}", r.status_msg);
    assert_eq!(r.data["wrote"], "hello");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "hello\n");
    // The node refuses what its DDL refuses, and the script does not run.
    let r = peer.request(request("marker", "touch", args(&[("word", json!("NOPE1"))]), &["alpha"]), T);
    assert_eq!(r.status, Status::InvalidData, "{}", r.status_msg);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "hello\n", "the action did not run");

    // A hanging agent is killed at its DDL timeout, with everything it started.
    let r = peer.request(request("marker", "hang", Map::new(), &["alpha"]), T);
    assert_eq!(r.status, Status::Aborted);
    assert_eq!(r.status_msg, "timed out after 2 s");
    wait_for("the hung agent's process group to be gone", Duration::from_secs(5), || sleepers("sleep 31337") == 0);

    // The DDL changes (a new action) and SIGHUP reloads it.
    install_agent(agents.path(), &format!("{EXT_DDL}\n[actions.extra]\ndescription = \"added later\"\n"));
    rustix::process::kill_process(rustix::process::Pid::from_raw(node.pid().unwrap() as i32).unwrap(), rustix::process::Signal::HUP)
        .unwrap();
    wait_for("the changed DDL to load after SIGHUP", T, || {
        let out = fleet(hub.endpoint(), &["rpc", "rpcutil", "agent_inventory", "-I", "alpha", "--json"]);
        out.json()["replies"][0]["data"]["agents"].as_array().is_some_and(|a| {
            a.iter().any(|x| x["agent"] == "marker" && x["actions"].as_array().is_some_and(|l| l.contains(&json!("extra"))))
        })
    });

    // Removed: gone from agent_inventory and the registry; calls get UnknownAction.
    std::fs::remove_file(agents.path().join("marker.toml")).unwrap();
    let out = fleet(hub.endpoint(), &["rpc", "rpcutil", "reload_agents", "agent=marker", "-I", "alpha", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!agents_of(hub.endpoint(), "alpha").contains(&"marker".to_string()));
    let r = peer.request(request("marker", "touch", args(&[("word", json!("again"))]), &["alpha"]), T);
    assert_eq!(r.status, Status::UnknownAction, "{}", r.status_msg);
    let _ = ddl_dir;
    drop(node);
}

#[test]
fn broken_external_agents_are_refused_and_the_daemon_keeps_running() {
    let hub = Hub::start();
    let agents = tempfile::tempdir().unwrap();
    // A DDL without its executable, an executable without the x bit, a crashing and a garbage agent.
    let ddl = |name: &str| EXT_DDL.replace("name = \"marker\"", &format!("name = \"{name}\""));
    std::fs::write(agents.path().join("noexe.toml"), ddl("noexe")).unwrap();
    std::fs::write(agents.path().join("notexec.toml"), ddl("notexec")).unwrap();
    std::fs::write(agents.path().join("notexec"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::write(agents.path().join("baddll.toml"), "[metadata]\nname = \"baddll\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    for (name, body) in [
        ("crashy", "#!/bin/sh\ncase \"$3\" in *activation*) exit 0;; esac\necho boom >&2\nexit 3\n"),
        ("garbage", "#!/bin/sh\ncase \"$3\" in *activation*) exit 0;; esac\necho 'not json {' > \"$2\"\n"),
    ] {
        std::fs::write(agents.path().join(format!("{name}.toml")), ddl(name)).unwrap();
        std::fs::write(agents.path().join(name), body).unwrap();
        std::fs::set_permissions(agents.path().join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let _node = NodeSpec::new(hub.endpoint(), "alpha").arg("--agents-dir").arg(agents.path().display().to_string()).start();
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let loaded = agents_of(hub.endpoint(), "alpha");
    for refused in ["noexe", "notexec", "baddll"] {
        assert!(!loaded.contains(&refused.to_string()), "{refused} must not load: {loaded:?}");
    }
    let out = fleet(hub.endpoint(), &["rpc", "rpcutil", "reload_agents", "-I", "alpha", "--json"]);
    let skipped = &out.json()["replies"][0]["data"]["skipped"];
    assert!(skipped["noexe"].as_str().unwrap().contains("missing"), "{out}");
    assert!(skipped["notexec"].as_str().unwrap().contains("not an executable"), "{out}");
    assert!(skipped["baddll"].as_str().unwrap().contains("invalid DDL"), "{out}");

    let mut peer = RawPeer::connect(hub.endpoint());
    peer.hello("e2e");
    let r = peer.request(request("crashy", "touch", args(&[("word", json!("x"))]), &["alpha"]), T);
    assert_eq!(r.status, Status::UnknownError);
    assert!(r.status_msg.contains("without writing a reply") && r.status_msg.contains("boom"), "{}", r.status_msg);
    let r = peer.request(request("garbage", "touch", args(&[("word", json!("x"))]), &["alpha"]), T);
    assert_eq!(r.status, Status::UnknownError);
    assert!(r.status_msg.contains("invalid JSON reply"), "{}", r.status_msg);
    // Still alive and answering.
    let out = fleet(hub.endpoint(), &["ping", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Process hunting

fn is_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// A parent (python) that forks a child which exits at once and is not reaped until the parent
/// gets SIGCHLD. The child runs a binary named `tag` so the zombie's name is unique.
fn spawn_zombie_parent(dir: &Path, tag: &str) -> (Child, u32) {
    let exe = dir.join(tag);
    std::os::unix::fs::symlink("/bin/true", &exe).unwrap();
    let script = format!(
        r#"
import os, signal, sys, time
pid = os.fork()
if pid == 0:
    os.execv({exe:?}, [{exe:?}])
time.sleep(0.3)
def reap(*_):
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        pass
signal.signal(signal.SIGCHLD, reap)
print(pid, flush=True)
while True:
    time.sleep(1)
"#,
        exe = exe.display().to_string()
    );
    let mut child = Command::new("python3").arg("-c").arg(script).stdout(Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let zombie: u32 = line.trim().parse().unwrap();
    (child, zombie)
}

#[test]
fn a_real_zombie_is_found_on_every_node_and_reaped_through_its_parent() {
    let hub = Hub::start();
    let _nodes = three_nodes(&hub, &[]);
    wait_for_nodes(hub.endpoint(), &["alpha", "beta", "gamma"], T);
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("zmb{}", std::process::id() % 100000);
    let (mut parent, zpid) = spawn_zombie_parent(dir.path(), &tag);
    wait_for("the child to be a zombie", T, || state_of(zpid) == Some('Z'));

    let out = fleet(hub.endpoint(), &["pgrep", "-z", &format!("^{tag}$"), "--json"]);
    let procs = out.json()["processes"].as_array().unwrap().clone();
    assert_eq!(procs.len(), 3, "each of the 3 nodes finds exactly that zombie: {out}");
    for p in &procs {
        assert_eq!(p["pid"], zpid);
        assert_eq!(p["zombie"], true);
        assert_eq!(p["name"], format!("[{tag}]"), "zombies are shown as [name]");
        assert_eq!(p["parent_pid"], parent.id(), "the zombie names its parent");
        assert!(p["parent_cmdline"].as_str().unwrap().contains("python3"));
    }
    let text = fleet(hub.endpoint(), &["pgrep", "-z", &format!("^{tag}$"), "-I", "alpha"]);
    assert!(text.stdout.contains(&format!("[{tag}]")) && text.stdout.contains("zombie: reaped only by its parent"), "{text}");
    assert!(text.stdout.contains("Matched processes: 1"), "{text}");

    // Zombies themselves cannot be killed; pkill offers their parent, through the same confirmation.
    let out = fleet(hub.endpoint(), &["pkill", "-z", &format!("^{tag}$"), "--yes", "-I", "alpha"]);
    assert!(out.stderr.contains("zombies cannot be killed"), "{out}");
    assert!(is_alive(zpid));
    let out = fleet(hub.endpoint(), &["pkill", "-z", "--parents", "-s", "CHLD", &format!("^{tag}$"), "--yes", "-I", "alpha", "--json"]);
    assert_eq!(out.json()["signalled"], 1, "{out}");
    wait_for("the zombie to be reaped by its parent", T, || !is_alive(zpid));
    assert!(parent.try_wait().unwrap().is_none(), "SIGCHLD does not kill the parent");
    let _ = parent.kill();
    let _ = parent.wait();
}

#[test]
fn kill_needs_the_right_start_time_and_pkill_needs_confirmation() {
    let hub = Hub::start();
    let _node = Node::start(hub.endpoint(), "alpha", "", &[]);
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let mut sleeper = Command::new("sleep").arg("4242.5").spawn().unwrap();
    let pid = sleeper.id();

    let out = fleet(hub.endpoint(), &["pgrep", "^sleep 4242.5$", "-I", "alpha", "--json"]);
    let procs = out.json()["processes"].as_array().unwrap().clone();
    assert_eq!(procs.len(), 1, "{out}");
    assert_eq!(procs[0]["pid"], pid);
    let start = procs[0]["start_time"].as_u64().unwrap();

    let out = fleet(hub.endpoint(), &["kill", &format!("alpha:{pid}@{}", start + 1), "--json"]);
    assert_eq!(out.json()["results"][0]["outcome"], "pid reused", "{out}");
    assert_eq!(out.code, Some(2));
    assert!(is_alive(pid) && sleeper.try_wait().unwrap().is_none(), "a wrong start time leaves the process alone");

    // pkill without --yes and without a typed confirmation kills nothing.
    let out = fleet(hub.endpoint(), &["pkill", "^sleep 4242.5$", "-I", "alpha"]);
    assert_eq!(out.code, Some(4), "a cancelled confirmation sent nothing: {out}");
    assert!(out.stderr.contains("nothing was killed") && out.stderr.contains(&pid.to_string()), "it showed the exact target: {out}");
    assert!(is_alive(pid));

    let out = fleet(hub.endpoint(), &["kill", &format!("alpha:{pid}@{start}"), "-s", "KILL", "--json"]);
    assert_eq!(out.json()["results"][0]["outcome"], "signalled", "{out}");
    let status = sleeper.wait().unwrap();
    assert!(!status.success());
    assert!(!is_alive(pid));

    let out = fleet(hub.endpoint(), &["kill", &format!("alpha:{pid}@{start}"), "--json"]);
    assert_eq!(out.json()["results"][0]["outcome"], "no such process", "{out}");
    let out = fleet(hub.endpoint(), &["kill", "alpha:1@1", "--json"]);
    assert!(out.json()["results"][0]["outcome"].as_str().unwrap().starts_with("refused"), "{out}");
    let out = fleet(hub.endpoint(), &["pgrep", "(", "-I", "alpha"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stdout.contains("InvalidData") && out.stdout.contains("regex"), "an invalid regex is InvalidData naming the error: {out}");
}
