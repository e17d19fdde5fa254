//! Setting a fleet up with join tokens, on real processes: `noded hub init`, `noded hub token`,
//! `noded join`, `fleet join`; a new admin usable with no restart anywhere; tokens refused in
//! words; a node's callers directory watched; exit 78 for missing configuration; `noded doctor`;
//! nodes back within seconds of a hub restart.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fleet_e2e::support::{fleet_bin, noded_bin, wait_for, wait_until};

/// A daemon the test owns, logging to a file; SIGKILLed on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One host's worth of directories: a daemon's config and state, or an admin's home.
struct Host {
    root: PathBuf,
}

impl Host {
    fn new(base: &Path, name: &str) -> Host {
        let root = base.join(name);
        std::fs::create_dir_all(&root).unwrap();
        Host { root }
    }

    fn noded(&self, identity: Option<&str>) -> Command {
        let mut c = Command::new(noded_bin());
        c.env("FLEET_CONFIG_DIR", self.root.join("etc")).env("FLEET_STATE_DIR", self.root.join("var")).env_remove("NODED_CONFIG");
        match identity {
            Some(id) => c.env("NODED_IDENTITY", id),
            None => c.env_remove("NODED_IDENTITY"),
        };
        c
    }

    fn fleet(&self) -> Command {
        let mut c = Command::new(fleet_bin());
        c.env("HOME", &self.root).env("XDG_CONFIG_HOME", self.root.join(".config")).env("XDG_STATE_HOME", self.root.join(".state"));
        for v in ["FLEET_HUB", "FLEET_KEY", "FLEET_HUB_KEY", "FLEET_NODES_DIR", "FLEET_CONFIG", "FLEET_CALLER"] {
            c.env_remove(v);
        }
        c
    }

    fn spawn(&self, mut cmd: Command, name: &str) -> Daemon {
        let log = self.root.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd.stdout(file.try_clone().unwrap()).stderr(file).stdin(Stdio::null()).spawn().unwrap();
        Daemon { child, log }
    }
}

fn run(mut cmd: Command) -> Output {
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn token(hub: &Host, args: &[&str]) -> String {
    let mut c = hub.noded(None);
    c.args(["hub", "token"]).args(args);
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The identities `fleet ping` got replies from, and its exit code.
fn ping(admin: &Host) -> (Vec<String>, Option<i32>, String) {
    let mut c = admin.fleet();
    c.args(["ping", "--json"]);
    let out = run(c);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    let mut names: Vec<String> =
        v["replies"].as_array().map(|a| a.iter().filter_map(|r| r["sender"].as_str().map(str::to_string)).collect()).unwrap_or_default();
    names.sort();
    (names, out.status.code(), text(&out))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A hub made with `noded hub init`, running.
fn start_hub(base: &Path, port: u16) -> (Host, Daemon) {
    let hub = Host::new(base, "hub");
    let mut init = hub.noded(None);
    init.args(["hub", "init", "--address", &format!("127.0.0.1:{port}")]);
    let out = run(init);
    assert!(out.status.success(), "{}", text(&out));
    let mut c = hub.noded(None);
    c.arg("hub");
    let d = hub.spawn(c, "hub");
    wait_for("the hub to listen", Duration::from_secs(20), || d.log().contains("hub listening"));
    (hub, d)
}

fn join_node(base: &Path, name: &str, token: &str) -> (Host, Daemon) {
    let host = Host::new(base, name);
    let mut c = host.noded(Some(name));
    c.args(["join", token]);
    let d = host.spawn(c, "noded");
    wait_for(&format!("{name} to attach"), Duration::from_secs(20), || d.log().contains("attached to hub"));
    (host, d)
}

fn join_admin(base: &Path, name: &str, token: &str) -> Host {
    let admin = Host::new(base, name);
    let mut c = admin.fleet();
    c.args(["join", token]);
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out));
    admin
}

#[test]
fn a_fleet_joins_with_tokens_and_a_new_admin_needs_no_restart() {
    let base = tempfile::tempdir().unwrap();
    let port = free_port();
    let (hub, mut hub_daemon) = start_hub(base.path(), port);
    let node_token = token(&hub, &["--role", "node", "--uses", "2"]);
    let (_h1, n1) = join_node(base.path(), "node-01", &node_token);
    let (_h2, _n2) = join_node(base.path(), "node-02", &node_token);
    let alice = join_admin(base.path(), "alice", &token(&hub, &["--role", "console", "--name", "alice"]));
    wait_for("both nodes to answer alice", Duration::from_secs(10), || ping(&alice).0 == ["node-01", "node-02"]);
    let (_, code, out) = ping(&alice);
    assert_eq!(code, Some(0), "{out}");

    // A second admin: one token and one `fleet join`; no hub or node restart, no SIGHUP.
    let restarts_before = n1.log().matches("noded starting").count();
    let bob = join_admin(base.path(), "bob", &token(&hub, &["--role", "console", "--name", "bob"]));
    let (names, code, out) = ping(&bob);
    assert_eq!((names.as_slice(), code), (["node-01".to_string(), "node-02".to_string()].as_slice(), Some(0)), "{out}");
    assert_eq!(n1.log().matches("noded starting").count(), restarts_before, "the node did not restart");
    assert!(n1.log().contains("callers and policies from the hub applied"), "{}", n1.log());

    // Tokens are refused in words: used up, expired, mangled.
    let spare = Host::new(base.path(), "node-03");
    let mut c = spare.noded(Some("node-03"));
    c.args(["join", "--no-start", &node_token]);
    let out = run(c);
    assert!(!out.status.success() && text(&out).contains("unknown or used-up token"), "{}", text(&out));
    let expired = token(&hub, &["--role", "node", "--ttl", "0"]);
    std::thread::sleep(Duration::from_millis(20));
    let mut c = spare.noded(Some("node-03"));
    c.args(["join", "--no-start", &expired]);
    let out = run(c);
    assert!(!out.status.success() && text(&out).contains("expired"), "{}", text(&out));
    let mut c = spare.noded(Some("node-03"));
    c.args(["join", "--no-start", &node_token[..40]]);
    let out = run(c);
    assert!(!out.status.success() && text(&out).contains("6 fields"), "{}", text(&out));

    // A joined node's doctor finds nothing wrong, and names the enrolled identity.
    let mut c = _h1.noded(Some("node-01"));
    c.arg("doctor");
    let out = run(c);
    assert!(out.status.success() && text(&out).contains("enrolled as node-01"), "{}", text(&out));

    // The hub restarts: the nodes are back within seconds (they retry at most every 1.5 s).
    hub_daemon.kill();
    let mut c = hub.noded(None);
    c.arg("hub");
    let restarted = hub.spawn(c, "hub-2");
    let started = Instant::now();
    wait_for("the restarted hub", Duration::from_secs(20), || restarted.log().contains("hub listening"));
    let back = wait_until(Duration::from_secs(15), || ping(&alice).0.len() == 2).map(|_| started.elapsed());
    let back = back.unwrap_or_else(|| panic!("the nodes did not come back: {}", n1.log()));
    eprintln!("nodes back on the restarted hub after {:.2} s", back.as_secs_f64());
    assert!(back < Duration::from_secs(10), "back after {back:?}");
}

#[test]
fn missing_configuration_exits_78_with_the_fix_and_doctor_names_each_problem() {
    let base = tempfile::tempdir().unwrap();
    let host = Host::new(base.path(), "bare");
    // Nothing at all: the node key is created, the hub key cannot be: exit 78, naming the fix.
    let out = run(host.noded(Some("bare")));
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(text(&out).contains("noded join TOKEN"), "{}", text(&out));
    let key = host.root.join("etc/node.key");
    assert!(key.exists(), "the node key is created on the first start");
    let mode = |p: &Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777;
    assert_eq!((mode(&key), mode(&host.root.join("etc")), mode(&host.root.join("var"))), (0o600, 0o700, 0o700));

    let mut c = host.noded(Some("bare"));
    c.arg("doctor");
    let out = run(c);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("FAIL hub key") && report.contains("fix: run `noded join TOKEN`"), "{report}");
    assert!(report.contains("no trusted callers") || report.contains("FAIL callers"), "{report}");
    assert!(report.contains("no policy for rpcutil"), "{report}");

    // A loose private key is named, with chmod as the fix.
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let mut c = host.noded(Some("bare"));
    c.arg("doctor");
    let report = text(&run(c));
    assert!(report.contains("FAIL node key") && report.contains("chmod 600"), "{report}");

    // An unenrolled node: the hub is there and holds its key as pending.
    let port = free_port();
    let (hub, _hub_daemon) = start_hub(base.path(), port);
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::copy(hub.root.join("etc/hub.pub"), host.root.join("etc/hub.pub")).unwrap();
    let mut c = host.noded(Some("bare"));
    c.args(["--hub", &format!("tcp://127.0.0.1:{port}"), "doctor"]);
    let report = text(&run(c));
    assert!(report.contains("not enrolled yet") && report.contains("noded hub enroll --accept bare --role node"), "{report}");

    // A wrong enrollment directory is named, not listed as empty.
    let mut c = hub.noded(None);
    c.args(["hub", "enroll", "--enroll-dir", "/nonexistent/enroll", "--list"]);
    let out = run(c);
    assert!(out.status.code() == Some(78) && text(&out).contains("no enrollment directory at /nonexistent/enroll"), "{}", text(&out));

    // The enrollment flag goes before or after `enroll`.
    let dir = hub.root.join("var/enroll");
    for args in [
        vec!["hub", "--enroll-dir", dir.to_str().unwrap(), "enroll", "--list"],
        vec!["hub", "enroll", "--enroll-dir", dir.to_str().unwrap(), "--list"],
    ] {
        let mut c = hub.noded(None);
        c.args(&args);
        let out = run(c);
        assert!(out.status.success() && text(&out).contains("pending") && text(&out).contains("bare"), "{args:?}: {}", text(&out));
    }
}

#[test]
fn a_caller_copied_into_a_nodes_callers_directory_is_used_without_a_restart() {
    let base = tempfile::tempdir().unwrap();
    let port = free_port();
    let (hub, _hub_daemon) = start_hub(base.path(), port);
    // A node that keeps its callers to itself: joined, then told not to take the hub's.
    let node = Host::new(base.path(), "node-01");
    let mut c = node.noded(Some("node-01"));
    c.args(["join", "--no-start", &token(&hub, &[])]);
    let out = run(c);
    assert!(out.status.success(), "{}", text(&out));
    let cfg_path = node.root.join("etc/noded.toml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap().replace("accept_trust_from_hub = true", "accept_trust_from_hub = false");
    std::fs::write(&cfg_path, format!("{cfg}policy_default = \"allow\"\n")).unwrap();
    std::fs::create_dir_all(node.root.join("etc/callers")).unwrap();
    let mut c = node.noded(Some("node-01"));
    c.arg("--config").arg(&cfg_path);
    let daemon = node.spawn(c, "noded");
    wait_for("the node to attach", Duration::from_secs(20), || daemon.log().contains("attached to hub"));

    let alice = join_admin(base.path(), "alice", &token(&hub, &["--role", "console", "--name", "alice"]));
    let (names, _, out) = ping(&alice);
    assert!(names.is_empty(), "the node does not know alice yet: {out}");
    // Copy alice's public key in; no SIGHUP, no restart.
    std::fs::copy(alice.root.join(".config/fleet/keys/alice.pub"), node.root.join("etc/callers/alice.pub")).unwrap();
    let took = wait_for("the node to re-read its callers", Duration::from_secs(10), || daemon.log().contains("trusted callers reloaded"));
    eprintln!("the node re-read its callers {:.2} s after a key was copied in", took.as_secs_f64());
    let (names, code, out) = ping(&alice);
    assert_eq!((names, code), (vec!["node-01".to_string()], Some(0)), "{out}");
}
