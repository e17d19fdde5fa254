//! The console checks every reply's signature against the key it knows for that node
//! (`FLEET_NODES_DIR` / `$XDG_CONFIG_HOME/fleet/nodes/<identity>.pub`) and flags one that does not
//! check: a hub cannot put words in a node's mouth.

use std::path::Path;
use std::process::{Command, Output};

use fleet_e2e::support::{Hub, Node, TestKeys, fleet_bin, wait_for_nodes};
use serde_json::Value;

fn ping(hub: &str, nodes_dir: Option<&Path>, json: bool) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(fleet_bin());
    cmd.args(["--hub", hub, "ping"])
        .env("XDG_CONFIG_HOME", home.path())
        .env("FLEET_KEY", TestKeys::get().private_key())
        .env("FLEET_HUB_KEY", TestKeys::get().hub_public_key())
        .env_remove("FLEET_HUB");
    if json {
        cmd.arg("--json");
    }
    match nodes_dir {
        Some(d) => cmd.env("FLEET_NODES_DIR", d),
        None => cmd.env_remove("FLEET_NODES_DIR"),
    };
    cmd.output().unwrap()
}

fn signature_of(out: &Output) -> String {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    v["replies"][0]["signature"].as_str().unwrap().to_string()
}

#[test]
fn replies_are_verified_against_the_nodes_keys_and_a_wrong_key_is_flagged() {
    let hub = Hub::start();
    let node = Node::start(hub.endpoint(), "alpha", "", &[]);
    wait_for_nodes(hub.endpoint(), &["alpha"], std::time::Duration::from_secs(20));

    // No key for the node here: the reply is shown, marked unverified.
    assert_eq!(signature_of(&ping(hub.endpoint(), None, true)), "unverified");

    // The node's own key: verified.
    let known = tempfile::tempdir().unwrap();
    std::fs::copy(node.dir().join("node.pub"), known.path().join("alpha.pub")).unwrap();
    assert_eq!(signature_of(&ping(hub.endpoint(), Some(known.path()), true)), "verified");

    // Another key filed under the node's name: every reply is flagged.
    let wrong = tempfile::tempdir().unwrap();
    fleet_protocol::keys::KeyPair::generate().save(wrong.path(), "other").unwrap();
    std::fs::copy(wrong.path().join("other.pub"), wrong.path().join("alpha.pub")).unwrap();
    std::fs::remove_file(wrong.path().join("other.pub")).unwrap();
    std::fs::remove_file(wrong.path().join("other.key")).unwrap();
    assert_eq!(signature_of(&ping(hub.endpoint(), Some(wrong.path()), true)), "bad");
    let text = ping(hub.endpoint(), Some(wrong.path()), false);
    assert!(String::from_utf8_lossy(&text.stdout).contains("BAD SIGNATURE"), "{}", String::from_utf8_lossy(&text.stdout));
}
