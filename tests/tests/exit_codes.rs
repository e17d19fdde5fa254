//! Every exit code the README's table documents, each produced on real processes: 0 all answered,
//! 1 nothing matched, 2 some failed or are down, 3 discovered but none replied, 4 nothing was sent
//! (a usage error, a cancelled confirmation), 78 a daemon's missing configuration.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use fleet_e2e::support::{Hub, NodeSpec, TestKeys, fleet, fleet_command, noded_bin, wait_for_nodes};

const T: Duration = Duration::from_secs(20);

#[test]
fn each_documented_exit_code() {
    let hub = Hub::start();
    let mut web = NodeSpec::new(hub.endpoint(), "web-1").facts("role: web\n").start();
    let _db = NodeSpec::new(hub.endpoint(), "db-1").facts("role: db\n").start();
    wait_for_nodes(hub.endpoint(), &["db-1", "web-1"], T);
    let ep = hub.endpoint();

    // 0: every discovered node answered OK.
    let out = fleet(ep, &["ping"]);
    assert_eq!(out.code, Some(0), "{out}");
    // 1: nothing matched the filter.
    let out = fleet(ep, &["ping", "-F", "role=nothing-has-this"]);
    assert_eq!(out.code, Some(1), "{out}");
    // 4: a usage error sends nothing.
    let out = fleet(ep, &["ping", "--no-such-flag"]);
    assert_eq!(out.code, Some(4), "{out}");
    // 4: a cancelled confirmation sends nothing, and says so; the target lives on.
    let mut sleeper = Command::new("sleep").arg("8842.5").stdin(Stdio::null()).spawn().unwrap();
    let config_home = tempfile::tempdir().unwrap();
    let mut pkill = fleet_command(config_home.path(), &["--hub", ep, "pkill", "^sleep 8842.5$", "-I", "web-1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    pkill.stdin.take().unwrap().write_all(b"no\n").unwrap();
    let done = pkill.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&done.stdout), String::from_utf8_lossy(&done.stderr));
    let alive = sleeper.try_wait().unwrap().is_none();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(done.status.code(), Some(4), "{text}");
    assert!(text.contains("nothing was sent") && alive, "the sleep lives on: {alive}\n{text}");

    // 3: discovered, but none replied: the only matching node is stopped (SIGSTOP), so the
    // registry still lists it and it cannot answer.
    let pid = rustix::process::Pid::from_raw(web.pid().unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    let out = fleet(ep, &["ping", "-F", "role=web", "--timeout", "2"]);
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
    assert_eq!(out.code, Some(3), "{out}");
    // 2: some answered, one did not.
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    let out = fleet(ep, &["ping", "--timeout", "2"]);
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
    assert_eq!(out.code, Some(2), "{out}");
    web.sigkill();

    // 78: noded without the configuration it cannot create (here, the pinned hub key).
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(noded_bin())
        .env("FLEET_CONFIG_DIR", dir.path().join("etc"))
        .env("FLEET_STATE_DIR", dir.path().join("var"))
        .env_remove("NODED_CONFIG")
        .args(["--identity", "x", "--callers-dir", TestKeys::get().callers_dir().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", String::from_utf8_lossy(&out.stderr));
}
