//! The fleet binary's command line: help, completions, man page, refusals before sending.

use std::process::Command;

fn fleet() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fleet"));
    c.env_remove("FLEET_HUB").env("XDG_CONFIG_HOME", "/nonexistent");
    c
}

#[test]
fn help_lists_commands_and_exit_codes() {
    let out = fleet().arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["ping", "discover", "inventory", "rpc", "demo"] {
        assert!(text.contains(cmd), "missing {cmd}: {text}");
    }
    assert!(text.contains("Exit codes"));
}

#[test]
fn completions_and_man_page_come_from_the_same_definitions() {
    let out = fleet().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("with-fact"));
    let out = fleet().arg("man").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH fleet"));
}

#[test]
fn invalid_input_is_refused_before_anything_is_sent() {
    // No hub runs on port 1: a refusal must come before any attempt to connect.
    let out = fleet().args(["--hub", "tcp://127.0.0.1:1", "rpc", "rpcutil", "get_fact", "fact=bad fact"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("input 'fact' does not match the validation"), "{err}");
    let out = fleet().args(["--hub", "tcp://127.0.0.1:1", "rpc", "rpcutil", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no action 'nope'"));
}

#[test]
fn bad_config_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "collective = \"x\"\nhubz = []\n").unwrap();
    let out = fleet().arg("--config").arg(&path).arg("ping").output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:2:", path.display())) && err.contains("hubz"), "{err}");
}

#[test]
fn usage_errors_exit_4_and_help_exits_0() {
    let out = fleet().args(["ping", "--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
    let out = fleet().args(["ping", "--timeout=-3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a positive number of seconds"));
    let out = fleet().args(["ping", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn an_unreachable_hub_is_named_in_words() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let out = fleet().args(["keygen", "alice", "--dir"]).arg(&keys).output().unwrap();
    assert!(out.status.success());
    let out = fleet()
        .env("FLEET_KEY", keys.join("alice.key"))
        .env("FLEET_HUB_KEY", keys.join("alice.pub"))
        .args(["--hub", &format!("tcp://127.0.0.1:{port}"), "ping"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connection refused: nothing listens on 127.0.0.1:"), "{err}");
}
