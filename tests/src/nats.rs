//! A real `nats-server` cluster on loopback for the NATS transport's end-to-end tests, with the
//! permissions docs/nats.md documents: nodes may publish only replies and registrations, consoles
//! only requests and discovery questions, registries only answers. Plus `noded registry`.
//!
//! `nats-server` must be installed (Debian's `nats-server`; `.ci/run` installs it): a missing
//! server fails the test, it never skips.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::support::{Proc, noded_command, read_log, set_enroll_dir, wait_for, write_file};

/// The passwords of the test users (loopback only, a fresh cluster per test).
pub const NODE_PASSWORD: &str = "node-secret";
pub const CONSOLE_PASSWORD: &str = "console-secret";
pub const REGISTRY_PASSWORD: &str = "registry-secret";

/// What a node may publish and subscribe to.
const NODE_PERMISSIONS: &str = r#"permissions: {
        publish: { allow: ["_INBOX.>", "fleet.*.registration", "fleet.*.registration.*"] },
        subscribe: { allow: ["fleet.*.agent.>", "fleet.*.node.>"] } }"#;

/// The permissions of each kind of client, as a `nats-server` `authorization` block: what
/// docs/nats.md tells an admin to configure. With `node_nkey`, also a node user known by that
/// nkey (a public key `U...`) rather than a password.
fn authorization(node_nkey: Option<&str>) -> String {
    let nkey_user = node_nkey.map(|k| format!("    {{ nkey: \"{k}\", {NODE_PERMISSIONS} }},\n")).unwrap_or_default();
    format!("authorization {{\n  users: [\n    {{ user: node, password: \"node-secret\", {NODE_PERMISSIONS} }},\n{nkey_user}{OTHER_USERS}")
}

/// The console and registry users, and the end of the block.
const OTHER_USERS: &str = r#"
    { user: console, password: "console-secret", permissions: {
        publish: { allow: ["fleet.*.agent.>", "fleet.*.node.>", "fleet.*.discover"] },
        subscribe: { allow: ["_INBOX.>", "fleet.*.events"] } } },
    { user: registry, password: "registry-secret", permissions: {
        publish: { allow: ["_INBOX.>", "fleet.*.events"] },
        subscribe: { allow: ["fleet.*.registration", "fleet.*.registration.*", "fleet.*.discover"] } } }
  ]
}
"#;

/// The path of `nats-server`; panics with the fix when it is not installed.
pub fn server_bin() -> PathBuf {
    for p in ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!("nats-server is not installed: apt-get install nats-server (.ci/run does this)");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

struct Server {
    proc: Proc,
    port: u16,
    config: PathBuf,
    log: PathBuf,
}

/// A cluster of `nats-server`s on loopback, routed to each other, and the enrollment directory
/// its registries read node keys from. Every server is killed on drop.
pub struct Cluster {
    servers: Vec<Server>,
    dir: TempDir,
}

impl Cluster {
    /// `n` servers, each with a route to every other; returns once every route is up.
    pub fn start(n: usize) -> Cluster {
        Self::start_with(n, false, None)
    }

    /// Like [`Cluster::start`]; with `tls`, the servers require TLS from every client, with a
    /// certificate for 127.0.0.1 signed by a CA of this cluster's own ([`Cluster::ca`]); with
    /// `node_nkey`, a node may also log in with that nkey.
    pub fn start_with(n: usize, tls: bool, node_nkey: Option<&str>) -> Cluster {
        let users = authorization(node_nkey);
        let bin = server_bin();
        let dir = tempfile::Builder::new().prefix("fleet-nats-").tempdir().expect("tempdir");
        let tls_block = match tls {
            true => {
                let (cert, key) = make_certificates(dir.path());
                format!("tls {{\n  cert_file: {cert:?}\n  key_file: {key:?}\n}}\n")
            }
            false => String::new(),
        };
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let mut servers = Vec::new();
        for (i, (port, route_port)) in ports.iter().enumerate() {
            let routes: Vec<String> =
                ports.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, (_, r))| format!("\"nats-route://127.0.0.1:{r}\"")).collect();
            let config = dir.path().join(format!("n{i}.conf"));
            write_file(
                &config,
                &format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{port}\n{tls_block}{users}\ncluster {{\n  name: fleet-test\n  listen: 127.0.0.1:{route_port}\n  routes: [{}]\n}}\n",
                    routes.join(", ")
                ),
            );
            let log = dir.path().join(format!("n{i}.log"));
            let mut server = Server { proc: Proc::default(), port: *port, config, log };
            server.spawn(&bin);
            servers.push(server);
        }
        let cluster = Cluster { servers, dir };
        for i in 0..n {
            cluster.wait_routed(i, n - 1);
        }
        let enroll = cluster.enroll_dir();
        std::fs::create_dir_all(enroll.join("accepted")).expect("enroll dir");
        for i in 0..n {
            set_enroll_dir(&cluster.node_url(i), &enroll);
            set_enroll_dir(&cluster.plain_url(i), &enroll);
        }
        cluster
    }

    /// Waits until server `i` accepts clients and logged `routes` routes.
    fn wait_routed(&self, i: usize, routes: usize) {
        let s = &self.servers[i];
        wait_for(&format!("nats-server n{i} to listen and route"), Duration::from_secs(20), || {
            let log = std::fs::read_to_string(&s.log).unwrap_or_default();
            TcpStream::connect(("127.0.0.1", s.port)).is_ok() && log.matches("Route connection created").count() >= routes
        });
    }

    /// The URL of server `i` with the given user's credentials.
    fn url(&self, user: &str, password: &str, i: usize) -> String {
        format!("nats://{user}:{password}@127.0.0.1:{}", self.servers[i].port)
    }

    /// Server `i` without credentials in the URL (an nkey, say, proves who connects).
    pub fn plain_url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.servers[i].port)
    }

    /// Server `i` as a node connects to it.
    pub fn node_url(&self, i: usize) -> String {
        self.url("node", NODE_PASSWORD, i)
    }

    /// Server `i` as a console connects to it.
    pub fn console_url(&self, i: usize) -> String {
        self.url("console", CONSOLE_PASSWORD, i)
    }

    /// Every server as a console lists them, server `first` first.
    pub fn console_urls(&self, first: usize) -> String {
        self.order(first).map(|i| self.console_url(i)).collect::<Vec<_>>().join(",")
    }

    /// `--hub URL` arguments for a node: server `first` first, then the others.
    pub fn node_args(&self, first: usize) -> Vec<String> {
        self.order(first).skip(1).flat_map(|i| ["--hub".to_string(), self.node_url(i)]).collect()
    }

    fn order(&self, first: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(first).chain((0..self.servers.len()).filter(move |i| *i != first))
    }

    /// The CA certificate the servers' certificate is signed by (with `tls`).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Where the registries read node keys (`accepted/NAME.pub`, role node).
    pub fn enroll_dir(&self) -> PathBuf {
        self.dir.path().join("enroll")
    }

    /// SIGKILLs server `i`.
    pub fn kill(&mut self, i: usize) {
        self.servers[i].proc.sigkill();
    }

    /// Starts server `i` again after a kill, and waits until it routes again.
    pub fn restart(&mut self, i: usize) {
        let bin = server_bin();
        self.servers[i].spawn(&bin);
        self.wait_routed(i, self.servers.len() - 1);
    }

    /// The log of server `i`.
    pub fn log(&self, i: usize) -> String {
        read_log(&self.servers[i].log)
    }

    /// A `noded registry` on server `i`, reading this cluster's enrollment directory.
    pub fn registry(&self, i: usize) -> Registry {
        let config = self.dir.path().join(format!("registry-{i}.toml"));
        let enroll = self.enroll_dir();
        let tls = if self.ca().exists() { format!("[nats]\nca = {:?}\n", self.ca().display().to_string()) } else { String::new() };
        write_file(&config, &format!("[hub]\nmissed_heartbeats = 3\n{tls}"));
        let log = self.dir.path().join(format!("registry-{i}.log"));
        let mut cmd = noded_command(&config);
        cmd.arg("registry")
            .arg("--enroll-dir")
            .arg(&enroll)
            .args(self.order(i).flat_map(|j| ["--hub".to_string(), self.url("registry", REGISTRY_PASSWORD, j)]))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("registry log"));
        let mut child = cmd.spawn().expect("spawn noded registry");
        let stdout = child.stdout.take().expect("registry stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("registry on ") {
                    let _ = tx.send(());
                }
            }
        });
        let mut proc = Proc(Some(child));
        if rx.recv_timeout(Duration::from_secs(20)).is_err() {
            proc.sigkill();
            panic!("noded registry did not start:\n{}", read_log(&log));
        }
        Registry { proc, log }
    }
}

impl Server {
    fn spawn(&mut self, bin: &Path) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("nats log");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nats-server");
        self.proc = Proc(Some(child));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (i, s) in self.servers.iter_mut().enumerate() {
            s.proc.sigkill();
            if std::thread::panicking() {
                eprintln!("---- nats-server n{i} log (tail) ----\n{}", tail(&read_log(&s.log), 40));
            }
        }
    }
}

/// A `noded registry` process. Killed on drop.
pub struct Registry {
    proc: Proc,
    log: PathBuf,
}

impl Registry {
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    pub fn sigkill(&mut self) {
        self.proc.sigkill();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.proc.sigkill();
        if std::thread::panicking() {
            eprintln!("---- noded registry stderr ----\n{}", tail(&self.log(), 60));
        }
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, made with `openssl` in `dir`:
/// `ca.pem`, and the server's certificate and key paths.
fn make_certificates(dir: &Path) -> (String, String) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl (apt-get install openssl)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=fleet-test-ca",
    ]);
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    write_file(&dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    let path = |f: &str| dir.join(f).display().to_string();
    (path("server.pem"), path("server.key"))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
