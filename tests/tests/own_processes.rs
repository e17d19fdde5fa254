//! `fleet pgrep` and `fleet pkill` never list or signal fleet's own process or its ancestors,
//! even when the pattern matches their command lines (procps and mco behave so).

use std::process::{Command, Stdio};
use std::time::Duration;

use fleet_e2e::support::*;

const T: Duration = Duration::from_secs(20);

fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z ")).unwrap_or(false)
}

#[test]
fn pkill_whose_pattern_matches_its_own_command_line_kills_only_the_real_target() {
    let hub = Hub::start();
    let _node = Node::start(hub.endpoint(), "alpha", "", &[]);
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let mut sleeper = Command::new("sleep").arg("8841.25").spawn().unwrap();
    let pid = sleeper.id();

    // pgrep's own command line matches its pattern: it is not listed, the sleep is.
    let out = fleet(hub.endpoint(), &["pgrep", "8841.25", "-I", "alpha", "--json"]);
    let pids: Vec<u64> = out.json()["processes"].as_array().unwrap().iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids, [u64::from(pid)], "only the sleep: {out}");

    // pkill run from a shell whose command line matches too: neither the shell nor fleet is a
    // target; the sleep is signalled and reported.
    let keys = TestKeys::get();
    let xdg = tempfile::tempdir().unwrap();
    let script = format!("{} --hub {} pkill 8841.25 -I alpha --yes --json; echo exit=$?", fleet_bin().display(), hub.endpoint());
    let run = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("XDG_CONFIG_HOME", xdg.path())
        .env("FLEET_KEY", keys.private_key())
        .env("FLEET_HUB_KEY", keys.hub_public_key())
        .env_remove("FLEET_HUB")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stdout.trim_end().ends_with("exit=0"), "fleet ended by itself with 0:\n{stdout}\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(stdout.trim_end().trim_end_matches("exit=0").trim()).unwrap();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{doc}");
    assert_eq!((results[0]["pid"].as_u64(), results[0]["outcome"].as_str()), (Some(u64::from(pid)), Some("signalled")));
    sleeper.wait().unwrap();
    assert!(!is_alive(pid));
}
