//! The noded binary's command line: help, version, and config errors that name the file and key.

use std::process::Command;

fn noded() -> Command {
    Command::new(env!("CARGO_BIN_EXE_noded"))
}

#[test]
fn help_and_version() {
    let out = noded().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hub") && text.contains("sim") && text.contains("--config"), "{text}");
    let out = noded().args(["hub", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--hub"));
    let out = noded().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("noded "));
}

#[test]
fn bad_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noded.toml");
    std::fs::write(&path, "identity = \"n1\"\n\n[hub]\nmissed_heartbeatz = 3\n").unwrap();
    let out = noded().arg("--config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(78), "config errors exit with EX_CONFIG");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:4:", path.display())), "{err}");
    assert!(err.contains("missed_heartbeatz"), "{err}");

    std::fs::write(&path, "retry_jitter = 5\n").unwrap();
    let out = noded().arg("--config").arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retry_jitter: must be between 0.0 and 1.0"), "{err}");

    let out = noded().arg("--config").arg(dir.path().join("missing.toml")).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn max_ttl_and_the_hub_audit_log_have_flags() {
    let out = noded().args(["hub", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--max-ttl") && text.contains("--audit-log"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noded.toml");
    std::fs::write(&path, "").unwrap();
    let out = noded().arg("--config").arg(&path).args(["--max-ttl", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(78), "config errors exit with EX_CONFIG");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_ttl: must be at least 1 second"), "{err}");
}
