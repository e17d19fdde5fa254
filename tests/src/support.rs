//! Harness for end-to-end tests that run the real binaries: a `noded hub` on an ephemeral loopback
//! port, real `noded` processes with their own facts and classes, the `fleet` CLI, and a raw ZeroMQ
//! DEALER for saying things to the hub that no well-behaved client would.
//!
//! Every process is killed when its handle drops; when a test panics, the handles print the logs of
//! the processes they own, so a failure on CI comes with the daemon's side of the story.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fleet_protocol::codec::{Limits, decode_message, encode_message};
use fleet_protocol::{Hello, HubStats, Message, Reply, Request};
use tempfile::TempDir;
use zeromq::prelude::*;
use zeromq::{DealerSocket, ZmqMessage};

/// How often the polling helpers look again.
const POLL: Duration = Duration::from_millis(50);
/// Ceiling for one `fleet` run; the CLI has its own timeouts, this only catches a hang.
const FLEET_RUN_LIMIT: Duration = Duration::from_secs(60);
/// How long a hub may take to print its endpoint.
const HUB_START_LIMIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Binaries

/// `target/<profile>/<name>`, next to the test executable's `deps/` directory.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("test executable lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    if !path.is_file() {
        panic!("{} not found: build the workspace first: cargo build --workspace", path.display());
    }
    path
}

pub fn noded_bin() -> PathBuf {
    binary("noded")
}

pub fn fleet_bin() -> PathBuf {
    binary("fleet")
}

// ---------------------------------------------------------------------------------------------
// Keys

/// The test caller's keys, made once per test process: `e2e.key` signs every request the harness
/// sends, and `callers/e2e.pub` is what every node and hub trusts.
pub struct TestKeys {
    pub dir: PathBuf,
    pub key: fleet_protocol::keys::KeyPair,
    /// The key pair every test hub uses; nodes, `fleet` and [`RawPeer`] pin its public half.
    pub hub: fleet_protocol::keys::KeyPair,
}

impl TestKeys {
    pub fn get() -> &'static TestKeys {
        static KEYS: std::sync::OnceLock<TestKeys> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| {
            let dir = tempfile::Builder::new().prefix("fleet-e2e-keys-").tempdir().expect("tempdir").keep();
            let key = fleet_protocol::keys::KeyPair::generate();
            let (_, public) = key.save(&dir.join("keys"), "e2e").expect("save test key");
            std::fs::create_dir_all(dir.join("callers")).expect("callers dir");
            std::fs::copy(public, dir.join("callers").join("e2e.pub")).expect("trust the test key");
            let hub = fleet_protocol::keys::KeyPair::generate();
            hub.save(&dir, "hub").expect("save hub key");
            TestKeys { dir, key, hub }
        })
    }
    /// The caller id of the test key.
    pub fn caller(&self) -> &'static str {
        "e2e"
    }
    pub fn private_key(&self) -> PathBuf {
        self.dir.join("keys").join("e2e.key")
    }
    pub fn callers_dir(&self) -> PathBuf {
        self.dir.join("callers")
    }
    pub fn hub_private_key(&self) -> PathBuf {
        self.dir.join("hub.key")
    }
    pub fn hub_public_key(&self) -> PathBuf {
        self.dir.join("hub.pub")
    }
}

/// Each test hub's enrollment directory, by endpoint, so that a hub restarted on the same endpoint
/// keeps its enrolled keys and a node knows where to enroll its link key.
fn enroll_dirs() -> &'static std::sync::Mutex<std::collections::HashMap<String, PathBuf>> {
    static DIRS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, PathBuf>>> = std::sync::OnceLock::new();
    DIRS.get_or_init(Default::default)
}

/// Makes `dir` the enrollment directory of `endpoint` (a NATS server URL whose registry reads
/// `dir`), so nodes started against it enroll their keys there.
pub fn set_enroll_dir(endpoint: &str, dir: &Path) {
    enroll_dirs().lock().unwrap().insert(endpoint.to_string(), dir.to_path_buf());
}

/// The enrollment directory of the test hub on `endpoint`, if the harness started one there.
pub fn enroll_dir_of(endpoint: &str) -> Option<PathBuf> {
    enroll_dirs().lock().unwrap().get(endpoint).cloned()
}

/// Enrolls a node's link key (a `.pub` file) on the test hub at `endpoint` under `name`: its link
/// may register as `name` and reply, nothing else.
pub fn enroll_on(endpoint: &str, name: &str, public_key_file: &Path) {
    enroll_as(endpoint, name, public_key_file, "node");
}

/// Enrolls a console's link key on the test hub at `endpoint` under `name`: its link may send
/// requests signed by caller `name`, discover and read stats, nothing else.
pub fn enroll_console_on(endpoint: &str, name: &str, public_key_file: &Path) {
    enroll_as(endpoint, name, public_key_file, "console");
}

/// Enrolls a link key on the test hub at `endpoint` under `name` with `role` (`node` or
/// `console`), as `noded hub enroll --add NAME FILE --role ROLE` would.
pub fn enroll_as(endpoint: &str, name: &str, public_key_file: &Path, role: &str) {
    if let Some(dir) = enroll_dir_of(endpoint) {
        enroll_in(&dir, name, public_key_file, role);
    }
}

/// Enrolls a link key in the enrollment directory `dir` under `name` with `role`: the `.pub`
/// file's text plus its role line, in `accepted/NAME.pub`, written atomically.
pub fn enroll_in(dir: &Path, name: &str, public_key_file: &Path, role: &str) {
    let accepted = dir.join("accepted");
    std::fs::create_dir_all(&accepted).expect("accepted dir");
    let text = std::fs::read_to_string(public_key_file).unwrap_or_else(|e| panic!("{}: {e}", public_key_file.display()));
    let tmp = accepted.join(format!(".{name}.pub.tmp"));
    std::fs::write(&tmp, format!("{text}role = {role:?}\n")).expect("enroll key");
    std::fs::rename(&tmp, accepted.join(format!("{name}.pub"))).expect("enroll key");
}

/// Signs a request as the test caller and encodes it.
pub fn signed_frame(req: &Request) -> Vec<u8> {
    let keys = TestKeys::get();
    let mut req = req.clone();
    req.caller = keys.caller().into();
    let mut env = fleet_protocol::Envelope::seal(&Message::Request(Box::new(req))).expect("seal");
    env.sign(&keys.key, keys.caller());
    env.to_frame().expect("encode")
}

/// A `noded` command that ignores the host's `/etc/fleet/noded.toml` and `NODED_CONFIG`.
pub(crate) fn noded_command(config: &Path) -> Command {
    let mut c = Command::new(noded_bin());
    c.env_remove("NODED_CONFIG").arg("--config").arg(config);
    c
}

// ---------------------------------------------------------------------------------------------
// Waiting

/// Polls `cond` every 50 ms until it holds or `timeout` passes. Returns how long it took.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// [`wait_until`] that panics naming `what` when the time runs out.
pub fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) -> Duration {
    wait_until(timeout, cond).unwrap_or_else(|| panic!("timed out after {:.1} s waiting for {what}", timeout.as_secs_f64()))
}

/// Waits for a child to exit, up to `timeout`. `None` when it is still running.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, sig: rustix::process::Signal) {
    // The child may already be gone (and reaped); that is not an error for a test.
    let _ = rustix::process::kill_process(rustix::process::Pid::from_child(child), sig);
}

/// A child process the harness owns: signalled, waited for and reaped the same way for hubs and
/// nodes.
#[derive(Default)]
pub(crate) struct Proc(pub(crate) Option<Child>);

impl Proc {
    pub(crate) fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    pub(crate) fn sigkill(&mut self) {
        if let Some(mut child) = self.0.take() {
            signal(&child, rustix::process::Signal::KILL);
            let _ = child.wait();
        }
    }

    fn sigterm(&mut self) {
        if let Some(child) = &self.0 {
            signal(child, rustix::process::Signal::TERM);
        }
    }

    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = wait_child(self.0.as_mut()?, timeout)?;
        self.0 = None;
        Some(status)
    }

    fn is_running(&mut self) -> bool {
        match &mut self.0 {
            Some(c) => c.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }
}

pub(crate) fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

pub(crate) fn write_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

// ---------------------------------------------------------------------------------------------
// Hub

/// A `noded hub` process. Killed (SIGKILL) on drop.
pub struct Hub {
    child: Proc,
    endpoint: String,
    dir: TempDir,
    log: PathBuf,
}

impl Hub {
    /// A hub on an ephemeral loopback port.
    pub fn start() -> Hub {
        Self::start_on("tcp://127.0.0.1:0")
    }

    /// A hub bound to `endpoint`, e.g. the endpoint of a hub that was just killed. Binding is
    /// retried for a while, since the old socket may take a moment to let go of the port.
    pub fn start_on(endpoint: &str) -> Hub {
        let start = Instant::now();
        loop {
            match Self::try_start("", &["--hub", endpoint]) {
                Ok(hub) => return hub,
                Err(why) if start.elapsed() < HUB_START_LIMIT && why.contains("in use") => std::thread::sleep(POLL),
                Err(why) => panic!("hub on {endpoint} did not start: {why}"),
            }
        }
    }

    /// A hub with the given config file contents and extra arguments (after `hub`).
    pub fn start_with(config_toml: &str, args: &[&str]) -> Hub {
        Self::try_start(config_toml, args).unwrap_or_else(|why| panic!("hub did not start: {why}"))
    }

    /// Starts a hub and waits for its `hub listening on ENDPOINT` line. Err carries the reason
    /// and the hub's stderr.
    pub fn try_start(config_toml: &str, args: &[&str]) -> Result<Hub, String> {
        let dir = tempfile::Builder::new().prefix("fleet-hub-").tempdir().expect("tempdir");
        let config = dir.path().join("noded.toml");
        write_file(&config, config_toml);
        let log = dir.path().join("hub.stderr");
        let mut cmd = noded_command(&config);
        cmd.arg("hub");
        // The hub's key and an enrollment directory with the test console's key accepted; a hub
        // restarted on a known endpoint gets that endpoint's directory back.
        let requested = args.iter().position(|a| *a == "--hub").and_then(|i| args.get(i + 1)).map(|s| s.to_string());
        let enroll = requested.as_deref().and_then(enroll_dir_of).unwrap_or_else(|| {
            let d = tempfile::Builder::new().prefix("fleet-enroll-").tempdir().expect("tempdir").keep();
            enroll_in(&d, "e2e", &TestKeys::get().dir.join("keys").join("e2e.pub"), "console");
            d
        });
        if !config_toml.contains("key_file") && !args.contains(&"--hub-key-file") {
            cmd.arg("--hub-key-file").arg(TestKeys::get().hub_private_key());
        }
        if !config_toml.contains("enroll_dir") && !args.contains(&"--enroll-dir") {
            cmd.arg("--enroll-dir").arg(&enroll);
        }
        // The hub trusts the test caller unless the test says otherwise.
        if !config_toml.contains("callers_dir") && !args.contains(&"--callers-dir") {
            cmd.arg("--callers-dir").arg(TestKeys::get().callers_dir());
        }
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("hub log"))
            .spawn()
            .expect("spawn noded hub");
        let stdout = child.stdout.take().expect("hub stdout");
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout for the hub's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(ep) = line.strip_prefix("hub listening on ") {
                    let _ = tx.send(ep.trim().to_string());
                }
            }
        });
        let deadline = Instant::now() + HUB_START_LIMIT;
        loop {
            match rx.recv_timeout(POLL) {
                Ok(endpoint) => {
                    enroll_dirs().lock().unwrap().insert(endpoint.clone(), enroll.clone());
                    return Ok(Hub { child: Proc(Some(child)), endpoint, dir, log });
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Some(status) = child.try_wait().expect("try_wait") {
                        return Err(format!("hub exited with {status} before listening:\n{}", read_log(&log)));
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("no 'hub listening on' line within {HUB_START_LIMIT:?}:\n{}", read_log(&log)));
                }
            }
        }
    }

    /// The bound endpoint, with the real port.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The hub's private directory (its config file and log live here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the hub wrote to stderr so far.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// Kills the hub with SIGKILL and reaps it.
    pub fn sigkill(&mut self) {
        self.child.sigkill();
    }

    /// Sends SIGTERM; follow with [`wait`](Self::wait).
    pub fn sigterm(&mut self) {
        self.child.sigterm();
    }

    /// Waits for the hub to exit. `None` if it is still running after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.child.wait(timeout)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.sigkill();
        if std::thread::panicking() {
            eprintln!("---- hub {} stderr ----\n{}", self.endpoint, self.log());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Node

/// How to start a `noded`: identity, hub, facts, classes, and anything else a test needs.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub identity: String,
    pub hub: String,
    pub facts_yaml: String,
    pub classes: Vec<String>,
    /// Contents of the node's config file (`--config`); empty means all defaults.
    pub config_toml: String,
    /// Extra command-line arguments, appended last so they win.
    pub args: Vec<String>,
    /// Environment for the node process.
    pub env: Vec<(String, String)>,
}

impl NodeSpec {
    pub fn new(hub: &str, identity: &str) -> NodeSpec {
        NodeSpec {
            identity: identity.into(),
            hub: hub.into(),
            facts_yaml: String::new(),
            classes: Vec::new(),
            config_toml: String::new(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }
    pub fn facts(mut self, yaml: &str) -> Self {
        self.facts_yaml = yaml.into();
        self
    }
    pub fn classes(mut self, classes: &[&str]) -> Self {
        self.classes = classes.iter().map(|c| c.to_string()).collect();
        self
    }
    pub fn config(mut self, toml: &str) -> Self {
        self.config_toml = toml.into();
        self
    }
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    pub fn start(self) -> Node {
        Node::from_spec(self)
    }
}

/// A `noded` process with its facts, classes and config in its own directory. Killed (SIGKILL)
/// on drop.
pub struct Node {
    spec: NodeSpec,
    child: Proc,
    dir: TempDir,
    log: PathBuf,
    /// How many times this node was started; each run appends to the same log.
    runs: u32,
}

impl Node {
    /// A node with fast heartbeats (0.5 s) and reconnects (0.1 s, at most 1 s).
    pub fn start(hub_endpoint: &str, identity: &str, facts_yaml: &str, classes: &[&str]) -> Node {
        NodeSpec::new(hub_endpoint, identity).facts(facts_yaml).classes(classes).start()
    }

    pub fn from_spec(spec: NodeSpec) -> Node {
        let dir = tempfile::Builder::new().prefix(&format!("fleet-node-{}-", spec.identity)).tempdir().expect("tempdir");
        write_file(&dir.path().join("facts.yaml"), &spec.facts_yaml);
        let classes: String = spec.classes.iter().map(|c| format!("{c}\n")).collect();
        write_file(&dir.path().join("classes.txt"), &classes);
        let (_, node_pub) = fleet_protocol::keys::KeyPair::generate().save(dir.path(), "node").expect("node key");
        enroll_on(&spec.hub, &spec.identity, &node_pub);
        // Security defaults for tests: the node's own key, the test caller trusted, every action
        // allowed (security tests set their own policies), an audit log in the node's directory.
        let mut defaults = String::new();
        let d = dir.path();
        for (key, value) in [
            ("key_file", d.join("node.key").display().to_string()),
            ("hub_key", TestKeys::get().hub_public_key().display().to_string()),
            ("callers_dir", TestKeys::get().callers_dir().display().to_string()),
            ("policy_dir", d.join("policies").display().to_string()),
            ("policy_default", "allow".to_string()),
            ("audit_log", d.join("audit.log").display().to_string()),
        ] {
            let set = spec.config_toml.lines().any(|l| l.trim_start().starts_with(key));
            if !set {
                defaults.push_str(&format!("{key} = {value:?}\n"));
            }
        }
        write_file(&dir.path().join("noded.toml"), &format!("{defaults}{}", spec.config_toml));
        let log = dir.path().join("noded.stderr");
        let mut node = Node { spec, child: Proc::default(), dir, log, runs: 0 };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        assert!(self.child.0.is_none(), "node {} is already running", self.spec.identity);
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("node log");
        self.runs += 1;
        let mut cmd = noded_command(&d.join("noded.toml"));
        cmd.arg("--identity")
            .arg(&self.spec.identity)
            .arg("--hub")
            .arg(&self.spec.hub)
            .arg("--facts")
            .arg(d.join("facts.yaml"))
            .arg("--classes")
            .arg(d.join("classes.txt"))
            .args(["--heartbeat-interval", "0.5", "--retry-initial-delay", "0.1", "--retry-max-delay", "1"])
            .args(&self.spec.args)
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Proc(Some(cmd.spawn().expect("spawn noded")));
    }

    /// Starts the node again after it exited: same identity, files and arguments.
    pub fn restart(&mut self) {
        if let Some(mut old) = self.child.0.take() {
            assert!(old.try_wait().expect("try_wait").is_some(), "restart: node {} is still running", self.spec.identity);
        }
        self.spawn();
    }

    pub fn identity(&self) -> &str {
        &self.spec.identity
    }

    pub fn spec(&self) -> &NodeSpec {
        &self.spec
    }

    /// The node's private directory (facts.yaml, classes.txt, noded.toml, noded.stderr).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// What the node wrote to stderr, over all its runs.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// Kills the node with SIGKILL and reaps it.
    pub fn sigkill(&mut self) {
        self.child.sigkill();
    }

    /// Sends SIGTERM; follow with [`wait`](Self::wait).
    pub fn sigterm(&mut self) {
        self.child.sigterm();
    }

    /// Waits for the node to exit. `None` if it is still running after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.child.wait(timeout)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.sigkill();
        if std::thread::panicking() {
            eprintln!("---- node {} stderr ({} run(s)) ----\n{}", self.spec.identity, self.runs, self.log());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The fleet CLI

/// What one `fleet` run produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    /// Stdout parsed as one JSON document; panics with both streams when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("fleet printed no JSON ({e}); {self}"))
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.code, self.elapsed, self.stdout, self.stderr)
    }
}

/// Runs `fleet --hub HUB ARGS...` with an empty config home and no `FLEET_*` from the caller's
/// environment.
pub fn fleet(hub: &str, args: &[&str]) -> Output {
    let mut all = vec!["--hub", hub];
    all.extend_from_slice(args);
    fleet_raw(&all)
}

/// `fleet ARGS...` in the clean environment every test runs it in: its config under
/// `config_home`, the test caller's key and the test hub's key, nothing from the caller's shell.
pub fn fleet_command(config_home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(fleet_bin());
    c.args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env("FLEET_KEY", TestKeys::get().private_key())
        .env("FLEET_HUB_KEY", TestKeys::get().hub_public_key())
        .env_remove("FLEET_HUB")
        .env_remove("FLEET_CONFIG")
        .env_remove("RUST_LOG");
    c
}

/// A `fleet` that keeps running (`--watch`, `--follow`): its stdout lines arrive on `lines` as it
/// prints them. Killed and reaped on drop.
pub struct FleetStream {
    child: Child,
    pub lines: std::sync::mpsc::Receiver<String>,
    _config_home: tempfile::TempDir,
}

impl FleetStream {
    /// Starts `fleet ARGS...` as [`fleet_command`] sets it up.
    pub fn start(args: &[&str]) -> FleetStream {
        use std::io::BufRead as _;
        let config_home = tempfile::Builder::new().prefix("fleet-xdg-").tempdir().expect("tempdir");
        let mut child = fleet_command(config_home.path(), args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn fleet");
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        FleetStream { child, lines, _config_home: config_home }
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for FleetStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `fleet ARGS...` (no `--hub` added) in the same clean environment as [`fleet`].
pub fn fleet_raw(args: &[&str]) -> Output {
    fleet_env(args, &[])
}

/// [`fleet_raw`] with extra environment (`FLEET_DDL_PATH`, say).
pub fn fleet_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let config_home = tempfile::Builder::new().prefix("fleet-xdg-").tempdir().expect("tempdir");
    let started = Instant::now();
    let mut child = fleet_command(config_home.path(), args)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fleet");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = match wait_child(&mut child, FLEET_RUN_LIMIT) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fleet {args:?} still running after {FLEET_RUN_LIMIT:?}; killed");
        }
    };
    Output {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    }
}

/// `fleet discover --json ARGS...`: the matching identities, sorted.
pub fn discover(hub: &str, filter: &[&str]) -> Vec<String> {
    let mut args = vec!["discover", "--json"];
    args.extend_from_slice(filter);
    let out = fleet(hub, &args);
    assert!(matches!(out.code, Some(0 | 1)), "fleet discover {filter:?} failed: {out}");
    let mut nodes: Vec<String> =
        serde_json::from_value(out.json()).unwrap_or_else(|e| panic!("discover output is not a list of names ({e}): {out}"));
    nodes.sort();
    nodes
}

/// `fleet ping --json ARGS...`: the senders that replied, sorted, and the whole output.
pub fn ping(hub: &str, filter: &[&str]) -> (Vec<String>, Output) {
    let mut args = vec!["ping", "--json"];
    args.extend_from_slice(filter);
    let out = fleet(hub, &args);
    let doc = out.json();
    let mut senders: Vec<String> = doc["replies"]
        .as_array()
        .unwrap_or_else(|| panic!("ping output has no replies array: {out}"))
        .iter()
        .map(|r| r["sender"].as_str().unwrap_or_else(|| panic!("reply without sender: {out}")).to_string())
        .collect();
    senders.sort();
    (senders, out)
}

/// `fleet hub-stats --json`.
pub fn hub_stats(hub: &str) -> HubStats {
    let out = fleet(hub, &["hub-stats", "--json"]);
    assert_eq!(out.code, Some(0), "fleet hub-stats failed: {out}");
    serde_json::from_value(out.json()).unwrap_or_else(|e| panic!("hub-stats output is not HubStats ({e}): {out}"))
}

/// Waits until discovery (no filter) shows exactly `expected`. Returns how long it took.
pub fn wait_for_nodes(hub: &str, expected: &[&str], timeout: Duration) -> Duration {
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    let mut last = Vec::new();
    wait_until(timeout, || {
        last = discover(hub, &[]);
        last == want
    })
    .unwrap_or_else(|| panic!("discovery did not show exactly {want:?} within {timeout:?}; last saw {last:?}"))
}

/// Waits until discovery (no filter) shows `n` nodes. Returns how long it took.
pub fn wait_for_node_count(hub: &str, n: usize, timeout: Duration) -> Duration {
    let mut last = Vec::new();
    wait_until(timeout, || {
        last = discover(hub, &[]);
        last.len() == n
    })
    .unwrap_or_else(|| panic!("discovery did not show {n} node(s) within {timeout:?}; last saw {last:?}"))
}

// ---------------------------------------------------------------------------------------------
// Raw ZeroMQ peer

/// A bare DEALER attached to a hub, for sending frames no real client would send and for
/// speaking the protocol directly (bypassing the CLI's own checks). Blocking API; it owns a small
/// runtime for the socket's background tasks.
pub struct RawPeer {
    socket: Option<DealerSocket>,
    rt: tokio::runtime::Runtime,
    limits: Limits,
    /// The Noise session of the link, after [`RawPeer::connect`]'s handshake.
    session: Option<fleet_protocol::noise::Session>,
}

impl RawPeer {
    /// Attaches and runs the link handshake as the test console (enrolled on every test hub).
    pub fn connect(hub: &str) -> RawPeer {
        Self::connect_as(hub, &TestKeys::get().key, "e2e")
    }

    /// Attaches and runs the link handshake with `key`, claiming `name` (the key must be enrolled
    /// on the hub; a console's requests must be signed by the caller it is enrolled as).
    pub fn connect_as(hub: &str, key: &fleet_protocol::keys::KeyPair, name: &str) -> RawPeer {
        let mut peer = Self::connect_plain(hub);
        let keys = TestKeys::get();
        let (init, hello) = fleet_protocol::noise::Initiator::start(key, &keys.hub.public().link, name).expect("handshake");
        peer.send_raw_frame(hello);
        let reply = peer.recv_frames(Duration::from_secs(10)).expect("no answer to the link handshake");
        peer.session = Some(init.finish(reply.last().expect("frame")).expect("link handshake"));
        peer
    }

    /// Attaches without a link handshake: every frame it sends is unauthenticated.
    pub fn connect_plain(hub: &str) -> RawPeer {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let socket = rt.block_on(async {
            let mut s = DealerSocket::new();
            tokio::time::timeout(Duration::from_secs(10), s.connect(hub))
                .await
                .unwrap_or_else(|_| panic!("raw DEALER: no connection to {hub} within 10 s"))
                .unwrap_or_else(|e| panic!("raw DEALER cannot connect to {hub}: {e}"));
            s
        });
        RawPeer { socket: Some(socket), rt, limits: Limits { max_frame: usize::MAX, ..Limits::default() }, session: None }
    }

    /// Sends one ZeroMQ message made of `frames` (at least one; frames may be empty).
    pub fn send_frames(&mut self, frames: Vec<Vec<u8>>) {
        let frames: Vec<bytes::Bytes> = frames.into_iter().map(bytes::Bytes::from).collect();
        let msg = ZmqMessage::try_from(frames).expect("a ZeroMQ message needs at least one frame");
        let rt = &self.rt;
        let sock = self.socket.as_mut().expect("socket");
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), sock.send(msg)).await })
            .expect("raw DEALER: send did not finish within 30 s")
            .expect("raw DEALER: send failed");
    }

    /// Sends one single-frame message, encrypted for the link when there is one.
    pub fn send_frame(&mut self, frame: Vec<u8>) {
        let frame = match &mut self.session {
            Some(s) => s.seal(&frame).expect("seal"),
            None => frame,
        };
        self.send_frames(vec![frame]);
    }

    /// Sends one frame exactly as given, outside the link's encryption.
    pub fn send_raw_frame(&mut self, frame: Vec<u8>) {
        self.send_frames(vec![frame]);
    }

    /// Encodes and sends a protocol message.
    pub fn send(&mut self, msg: &Message) {
        self.send_frame(encode_message(msg).expect("encode"));
    }

    /// Says Hello as a console would, and waits for the hub's Welcome.
    pub fn hello(&mut self, name: &str) {
        self.send(&Message::Hello(Hello { name: name.into(), subscribe: false }));
        self.recv_matching(Duration::from_secs(10), "Welcome", |m| matches!(m, Message::Welcome(_)));
    }

    /// The next ZeroMQ message, as its frames; `None` after `timeout`.
    pub fn recv_frames(&mut self, timeout: Duration) -> Option<Vec<Vec<u8>>> {
        let rt = &self.rt;
        let sock = self.socket.as_mut().expect("socket");
        match rt.block_on(async { tokio::time::timeout(timeout, sock.recv()).await }) {
            Ok(Ok(msg)) => {
                let frames: Vec<Vec<u8>> = msg.into_vec().into_iter().map(|b| b.to_vec()).collect();
                match (&mut self.session, frames.len()) {
                    (Some(s), 1) => Some(vec![s.open(&frames[0]).unwrap_or_else(|e| panic!("hub frame does not decrypt: {e}"))]),
                    _ => Some(frames),
                }
            }
            Ok(Err(e)) => panic!("raw DEALER: receive failed: {e}"),
            Err(_) => None,
        }
    }

    /// The next decodable message; `None` after `timeout`. Undecodable frames panic: the hub
    /// must never send them.
    pub fn recv(&mut self, timeout: Duration) -> Option<Message> {
        let frames = self.recv_frames(timeout)?;
        let frame = frames.last().expect("at least one frame");
        Some(decode_message(frame, &self.limits).unwrap_or_else(|e| panic!("hub sent an undecodable frame: {e}")))
    }

    /// Reads messages until one satisfies `pred`, skipping the rest; panics naming `what` after
    /// `timeout`.
    pub fn recv_matching(&mut self, timeout: Duration, what: &str, mut pred: impl FnMut(&Message) -> bool) -> Message {
        let deadline = Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Some(m) if pred(&m) => return m,
                Some(m) => skipped.push(format!("{:?}", m.kind())),
                None => panic!("no {what} from the hub within {timeout:?} (skipped: {skipped:?})"),
            }
        }
    }

    /// Asks the hub for its counters over this link. The answer reflects every frame this peer
    /// sent before, since the hub reads one peer's frames in order.
    pub fn hub_stats(&mut self) -> HubStats {
        self.send(&Message::StatsQuery);
        match self.recv_matching(Duration::from_secs(30), "HubStats", |m| matches!(m, Message::HubStats(_))) {
            Message::HubStats(s) => s,
            _ => unreachable!(),
        }
    }

    /// Sends a request and returns the first reply to it (Dispatched and anything else skipped).
    /// Say [`hello`](Self::hello) first, as a console does.
    pub fn request(&mut self, req: Request, timeout: Duration) -> Reply {
        let id = req.id.clone();
        self.send_frame(signed_frame(&req));
        match self.recv_matching(timeout, "Reply", |m| matches!(m, Message::Reply(r) if r.request_id == id)) {
            Message::Reply(r) => *r,
            _ => unreachable!(),
        }
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        // The socket's shutdown may touch its background tasks: drop it inside its runtime.
        let _guard = self.rt.enter();
        drop(self.socket.take());
    }
}

/// A request as `fleet` would build it: collective "fleet", ttl 60 s, 5 s timeout, sent now.
pub fn request(agent: &str, action: &str, args: serde_json::Map<String, serde_json::Value>, targets: &[&str]) -> Request {
    Request {
        id: fleet_protocol::new_request_id(),
        collective: "fleet".into(),
        caller: "e2e".into(),
        agent: agent.into(),
        action: action.into(),
        args,
        filter: fleet_protocol::Filter::default(),
        targets: targets.iter().map(|t| t.to_string()).collect(),
        msgtime: fleet_protocol::now_ms(),
        ttl: 60,
        reply: fleet_protocol::ReplyMode::Normal,
        timeout_ms: 5000,
        fanout: fleet_protocol::Fanout::All,
    }
}

// ---------------------------------------------------------------------------------------------
// Raw ZMTP

/// A ZMTP 3.0 peer made of a bare TCP stream: it does the NULL-mechanism greeting and READY
/// handshake as a DEALER, then writes whatever bytes a test likes, below the level where any
/// ZeroMQ library would check them (a frame header claiming terabytes, a frame cut short).
pub struct RawZmtp {
    stream: TcpStream,
}

impl RawZmtp {
    pub fn connect(endpoint: &str) -> RawZmtp {
        let addr = endpoint.strip_prefix("tcp://").unwrap_or_else(|| panic!("RawZmtp speaks tcp:// only, not {endpoint}"));
        let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot connect to {endpoint}: {e}"));
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        // Signature, version 3.0, mechanism NULL, as-server 0, filler.
        let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0];
        greeting.extend_from_slice(b"NULL");
        greeting.resize(64, 0);
        stream.write_all(&greeting).expect("write greeting");
        let mut theirs = [0u8; 64];
        stream.read_exact(&mut theirs).expect("read the hub's greeting");
        assert_eq!(theirs[0], 0xff, "not a ZMTP greeting: {theirs:?}");

        let mut ready = b"\x05READY".to_vec();
        ready.push(b"Socket-Type".len() as u8);
        ready.extend_from_slice(b"Socket-Type");
        ready.extend_from_slice(&(b"DEALER".len() as u32).to_be_bytes());
        ready.extend_from_slice(b"DEALER");
        let mut command = vec![0x04, ready.len() as u8];
        command.extend_from_slice(&ready);
        stream.write_all(&command).expect("write READY");
        // The hub's READY: a command frame, short or long.
        let mut flags = [0u8; 1];
        stream.read_exact(&mut flags).expect("read the hub's READY");
        assert!(flags[0] & 0x04 != 0, "expected a command frame, got flags {:#04x}", flags[0]);
        let len = if flags[0] & 0x02 != 0 {
            let mut l = [0u8; 8];
            stream.read_exact(&mut l).expect("READY length");
            u64::from_be_bytes(l) as usize
        } else {
            let mut l = [0u8; 1];
            stream.read_exact(&mut l).expect("READY length");
            l[0] as usize
        };
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).expect("READY body");
        assert!(body.starts_with(b"\x05READY"), "expected READY, got {body:?}");
        RawZmtp { stream }
    }

    /// The header of a message frame of `len` bytes (long form), as ZMTP 3.0 puts it on the wire.
    pub fn frame_header(len: u64, more: bool) -> Vec<u8> {
        let mut h = vec![0x02 | u8::from(more)];
        h.extend_from_slice(&len.to_be_bytes());
        h
    }

    /// Writes raw bytes. Err when the hub already closed the link.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Whether the hub has closed the link (EOF or reset), looking for at most 50 ms.
    pub fn closed_by_peer(&mut self) -> bool {
        self.stream.set_read_timeout(Some(POLL)).expect("read timeout");
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue, // whatever the hub says, keep reading until it goes quiet
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return false,
                Err(_) => return true,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The stand-in hypervisor (tests/support/xl-standin)

/// The stand-in for Xen's `xl` that the xen tests run the real agent against.
pub mod standin {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// Path of the stand-in script.
    pub fn path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("support").join("xl-standin")
    }

    /// Runs a stand-in set-up command (`seed`, `load`, `show`) against `state`; returns its stdout.
    pub fn run(state: &Path, args: &[&str]) -> String {
        let out = Command::new(path()).args(args).env("XL_STANDIN_STATE", state).output().expect("run xl-standin");
        assert!(out.status.success(), "xl-standin {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A node whose xen agent runs the stand-in as dom0 `name`, sharing `state` with the others.
    pub fn node_spec(hub: &str, name: &str, state: &Path) -> crate::support::NodeSpec {
        let loadavg = state.join(format!("{name}.loadavg"));
        crate::support::NodeSpec::new(hub, name)
            .arg("--xl-path")
            .arg(path().display().to_string())
            .env("XL_STANDIN_STATE", &state.display().to_string())
            .env("XL_STANDIN_HOST", name)
            .env("XL_STANDIN_MIGRATE_SECONDS", "0.1")
            .env("FLEET_XEN_LOADAVG_FILE", &loadavg.display().to_string())
    }

    /// What the stand-in's `xl list` shows for `dom0`, as sorted domU names (Domain-0 left out).
    pub fn xl_list(state: &Path, dom0: &str) -> Vec<String> {
        let out = Command::new(path()).arg("list").env("XL_STANDIN_STATE", state).env("XL_STANDIN_HOST", dom0).output().expect("xl list");
        assert!(out.status.success());
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .filter(|n| n != "Domain-0")
            .collect();
        names.sort();
        names
    }
}
