//! `fleet doctor` on real hubs and nodes: each broken set-up is found and its fix printed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use fleet_e2e::support::*;
use fleet_protocol::keys::KeyPair;

const T: Duration = Duration::from_secs(20);

/// `fleet --hub HUB doctor` signing with `key`, in a clean config home; (exit code, stdout).
fn doctor(hub: &str, key: &Path) -> (Option<i32>, String) {
    let xdg = tempfile::tempdir().unwrap();
    let out = Command::new(fleet_bin())
        .args(["--hub", hub, "doctor"])
        .env("XDG_CONFIG_HOME", xdg.path())
        .env("FLEET_KEY", key)
        .env("FLEET_HUB_KEY", TestKeys::get().hub_public_key())
        .env_remove("FLEET_HUB")
        .env_remove("FLEET_CALLER")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

#[test]
fn doctor_finds_each_broken_setup_and_prints_its_fix() {
    let hub = Hub::start();
    let ep = hub.endpoint().to_string();
    let _node = Node::start(&ep, "alpha", "", &[]);
    let _strict = NodeSpec::new(&ep, "beta").config("policy_default = \"deny\"\n").start();
    wait_for_nodes(&ep, &["alpha", "beta"], T);
    let keys = TestKeys::get();

    // A node with default deny and no policies: rpcutil is denied to the caller, with the file to write.
    let (code, out) = doctor(&ep, &keys.private_key());
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("ok    hub") && out.contains("the hub knows caller"), "{out}");
    assert!(out.contains("FAIL  policy") && out.contains("rpcutil is denied") && out.contains("beta"), "{out}");
    assert!(out.contains("rpcutil.policy"), "the fix names the policy file: {out}");
    assert!(out.contains("clock") && out.contains("largest clock skew"), "{out}");

    // A missing key.
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = doctor(&ep, &dir.path().join("nobody.key"));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("FAIL  key") && out.contains("no signing key at") && out.contains("fleet keygen NAME"), "{out}");

    // A key others can read.
    let loose = dir.path().join("loose");
    std::fs::create_dir_all(&loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (private, _) = KeyPair::generate().save(&loose, "carol").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out) = doctor(&ep, &private);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("FAIL  key") && out.contains(&format!("chmod 600 {}", private.display())), "{out}");

    // A key the hub has not enrolled: no link, and the enroll command to run.
    let (private, public) = KeyPair::generate().save(&loose, "mallory").unwrap();
    let (code, out) = doctor(&ep, &private);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("FAIL  hub") && out.contains("noded hub enroll --accept mallory"), "{out}");

    // Enrolled as a console but not a caller the hub trusts.
    enroll_console_on(&ep, "mallory", &public);
    let (code, out) = doctor(&ep, &private);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("FAIL  caller") && out.contains("does not know caller 'mallory'") && out.contains("mallory.pub"), "{out}");
}
