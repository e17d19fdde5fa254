//! End to end: drop-in compatibility with Choria and MCollective (issue 15) on real `noded`
//! processes: Choria-shaped DDLs with plugin aggregates and validators, action policies with regex
//! callers, groups, data functions and a broken file, `-S` data functions selecting nodes whose
//! files and processes differ, a Python agent written against Choria's external-agent protocol,
//! and `fleet agent new` agents loaded and answering.
//!
//! The nodes share this host, so each one's data plugins are pointed at its own `[data] rootfs`
//! (and, for `process`, its own `procfs`) — the same settings a node watching a host mounted
//! elsewhere uses.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fleet_e2e::support::{Hub, Node, NodeSpec, Output, RawPeer, TestKeys, fleet, fleet_bin, ping, request, wait_for_nodes};
use fleet_protocol::Status;
use serde_json::{Map, Value, json};

const T: Duration = Duration::from_secs(20);

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

fn executable(path: &Path, text: &str) {
    write(path, text);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// `fleet ARGS` with `FLEET_DDL_PATH` set, in the same clean environment as the harness's `fleet`.
fn fleet_with_ddls(hub: &str, ddl_dir: &Path, cmd: &[&str]) -> Output {
    let config_home = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = Command::new(fleet_bin())
        .arg("--hub")
        .arg(hub)
        .args(cmd)
        .env("XDG_CONFIG_HOME", config_home.path())
        .env("FLEET_KEY", TestKeys::get().private_key())
        .env("FLEET_HUB_KEY", TestKeys::get().hub_public_key())
        .env("FLEET_DDL_PATH", ddl_dir)
        .env_remove("FLEET_HUB")
        .env_remove("FLEET_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run fleet");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

fn reload(hub: &str, node: &str) -> Value {
    let out = fleet(hub, &["rpc", "rpcutil", "reload_agents", "-I", node, "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    out.json()["replies"][0]["data"].clone()
}

fn ddl_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ddl/tests/fixtures/valid").join(name)
}

// ---------------------------------------------------------------------------------------------
// DDLs

#[test]
fn choria_plugin_ddls_load_warn_document_and_run() {
    let hub = Hub::start();
    let agents = tempfile::tempdir().unwrap();
    std::fs::copy(ddl_fixture("nrpe.json"), agents.path().join("nrpe.json")).unwrap();
    // A Ruby DDL beside it, as Choria lays agents out: ignored by the node.
    write(&agents.path().join("nrpe.ddl"), "metadata :name => \"nrpe\"\n");
    executable(
        &agents.path().join("nrpe"),
        "#!/bin/sh\ncase \"$3\" in *activation*) echo '{\"activate\": true}' > \"$2\"; exit 0;; esac\n\
         printf '{\"statuscode\":0,\"statusmsg\":\"OK\",\"data\":{\"output\":\"OK - load fine\",\"exitcode\":0,\"perfdata\":\"\"}}' > \"$2\"\n",
    );
    let node = NodeSpec::new(hub.endpoint(), "alpha").arg("--agents-dir").arg(agents.path().display().to_string()).start();
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let loaded = reload(hub.endpoint(), "alpha");
    assert!(loaded["agents"].as_array().unwrap().contains(&json!("nrpe")), "{loaded}");
    let log = node.log();
    assert!(log.contains("nagios_states") && log.contains("not available"), "one warning for the plugin aggregate: {log}");
    assert!(log.contains("nrpe_command") && log.contains("type (string) only"), "one warning for the plugin validator: {log}");

    // The action runs; the client validates the plugin-validated input by type only.
    let out = fleet_with_ddls(hub.endpoint(), agents.path(), &["rpc", "nrpe", "runcommand", "command=check_load", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.json()["replies"][0]["data"]["exitcode"], 0, "{out}");
    let out = fleet_with_ddls(hub.endpoint(), agents.path(), &["rpc", "nrpe", "runcommand", "command=check_load", "args=a;b"]);
    assert_eq!(out.code, Some(4), "the regex validator beside it stays strict: {out}");

    // Documented from the file, with the plugin parts marked.
    let file = agents.path().join("nrpe.json").display().to_string();
    let out = fleet(hub.endpoint(), &["ddl", "doc", &file]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("nagios_states of exitcode: not available"), "{out}");
    assert!(out.stdout.contains("plugin validator"), "{out}");
    assert!(out.stderr.contains("warning:"), "{out}");
    // A Ruby DDL gets directions, not "line 0".
    let ruby = agents.path().join("nrpe.ddl").display().to_string();
    let out = fleet(hub.endpoint(), &["ddl", "doc", &ruby]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("choria plugin generate ddl") && out.stderr.contains("mco plugin doc"), "{out}");
    assert!(!out.stderr.contains(":0:"), "{out}");
    // Export gives Choria's JSON, which imports to the same DDL.
    let out = fleet(hub.endpoint(), &["ddl", "export", &file, "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let again = agents.path().join("exported").join("nrpe.json");
    write(&again, &out.stdout);
    let out2 = fleet(hub.endpoint(), &["ddl", "export", &again.display().to_string(), "--json"]);
    assert_eq!(out2.stdout, out.stdout, "importing the export gives the same DDL");
    assert_eq!(out.json()["actions"][0]["aggregate"][0]["function"], "nagios_states", "{out}");
    let out = fleet(hub.endpoint(), &["ddl", "export", "process", "--json"]);
    assert_eq!(out.json()["metadata"]["name"], "process", "{out}");
}

// ---------------------------------------------------------------------------------------------
// Policies

/// A node's own root for the data plugins, with the files the policies and filters look at.
fn rootfs(hosts: &str, motd: bool, puppet_disabled: bool) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    write(&root.path().join("etc/hosts"), hosts);
    if motd {
        write(&root.path().join("etc/motd"), "welcome\n");
    }
    let state = root.path().join("opt/puppetlabs/puppet/cache/state");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    write(&state.join("last_run_summary.yaml"), &format!("---\ntime:\n  last_run: {}\nresources:\n  failed: 0\n", now - 600));
    if puppet_disabled {
        write(&state.join("agent_disabled.lock"), "{\"disabled_message\":\"maintenance window\"}");
    }
    root
}

fn data_config(root: &Path, procfs: Option<&Path>) -> String {
    let mut s = format!("[data]\nrootfs = {:?}\n", root.display().to_string());
    if let Some(p) = procfs {
        s.push_str(&format!("procfs = {:?}\n", p.display().to_string()));
    }
    s
}

const POLICY: &str = "\
# MCollective actionpolicy syntax, as the action-policy plugin documents it
policy default deny
allow\t/^deploy-[0-9]+$/\techo\t*\t*
allow\toncall\t*\tcustomer=acme\tweb
allow\tauditors\techo\tfstat(\"/etc/motd\").present=true\t*
allow\tpuppeteer\t*\tpuppet().enabled=false\t*
allow\tsizer\t*\tfstat(\"/etc/hosts\").size>10 and customer=/acme|globex/
allow\tlooker\t*\tfact(\"customer\").value=globex\t*
deny\t/.*/\t*\t*\t*
";

const GROUPS: &str = "# caller groups\noncall alice /^sre-/ e2e\nauditors carol\n";

/// A broken policy: the data function has no operator.
const BROKEN: &str = "policy default allow\nallow\talice\t*\tfstat(\"/etc/hosts\").size\t*\n";

fn decision(hub: &str, caller: &str, agent: &str, action: &str, node: &str) -> (bool, String) {
    let out = fleet(hub, &["policy", "check", caller, agent, action, "-I", node, "--json"]);
    let data = &out.json()["replies"][0]["data"];
    let allowed = data["allowed"].as_bool().unwrap_or_else(|| panic!("{out}"));
    (allowed, data["rule"].as_str().unwrap_or_default().to_string())
}

#[test]
fn action_policies_with_regex_callers_groups_data_functions_and_a_broken_file() {
    let hub = Hub::start();
    let root_a = rootfs("127.0.0.1 localhost alpha\n", true, true);
    let root_b = rootfs("x\n", false, false);
    let alpha = NodeSpec::new(hub.endpoint(), "alpha")
        .facts("customer: acme\n")
        .classes(&["web"])
        .config(&data_config(root_a.path(), None))
        .start();
    let beta = NodeSpec::new(hub.endpoint(), "beta")
        .facts("customer: globex\n")
        .classes(&["db"])
        .config(&data_config(root_b.path(), None))
        .start();
    for node in [&alpha, &beta] {
        write(&node.dir().join("policies/echo.policy"), POLICY);
        write(&node.dir().join("policies/groups"), GROUPS);
        write(&node.dir().join("policies/process.policy"), BROKEN);
    }
    wait_for_nodes(hub.endpoint(), &["alpha", "beta"], T);

    // (caller, allowed on alpha, allowed on beta, the line that decides on alpha)
    let cases: &[(&str, bool, bool, &str)] = &[
        ("deploy-12", true, true, ":3: allow /^deploy-[0-9]+$/ echo * *"),
        ("deploy-x", false, false, ":9: deny /.*/ * * *"),
        ("alice", true, false, ":4: allow oncall * customer=acme web"),
        ("sre-bob", true, false, ":4: allow oncall"),
        ("carol", true, false, ":5: allow auditors echo fstat(\"/etc/motd\").present=true *"),
        ("puppeteer", true, false, ":6: allow puppeteer * puppet().enabled=false *"),
        ("sizer", true, false, ":7: allow sizer"),
        ("looker", false, true, ":9: deny"),
        ("mallory", false, false, ":9: deny /.*/"),
    ];
    for (caller, on_alpha, on_beta, rule) in cases {
        let (a, rule_a) = decision(hub.endpoint(), caller, "echo", "echo", "alpha");
        let (b, rule_b) = decision(hub.endpoint(), caller, "echo", "echo", "beta");
        assert_eq!((a, b), (*on_alpha, *on_beta), "{caller}: alpha {rule_a} / beta {rule_b}");
        assert!(rule_a.contains(rule), "{caller} on alpha decided by {rule_a}, want {rule}");
    }

    // A real request from the test caller (in the oncall group): allowed where customer=acme and web.
    let out = fleet(hub.endpoint(), &["rpc", "echo", "echo", "msg=hi", "--json"]);
    let status = |node: &str| {
        out.json()["replies"].as_array().unwrap().iter().find(|r| r["sender"] == node).unwrap_or_else(|| panic!("{out}"))["status"].clone()
    };
    assert_eq!(status("alpha"), "Ok", "{out}");
    assert_eq!(status("beta"), "Denied", "{out}");

    // Decided at request time: beta's motd appears, carol is allowed there too.
    write(&root_b.path().join("etc/motd"), "hello\n");
    assert!(decision(hub.endpoint(), "carol", "echo", "echo", "beta").0);

    // The broken file denies everything for its agent and says where and what was expected.
    let (allowed, rule) = decision(hub.endpoint(), "alice", "process", "list", "alpha");
    assert!(!allowed);
    assert!(rule.contains("process.policy:2:39:") && rule.contains("expected an operator after fstat(...).size"), "{rule}");
    let log = alpha.log();
    assert!(log.contains("process.policy:2:39:") && log.contains("expected an operator"), "the node's log says so too: {log}");
    drop(beta);
}

// ---------------------------------------------------------------------------------------------
// -S data functions

fn md5_of_welcome() -> String {
    "0bb3c30dc72e63881db5005f1aa19ac3".to_string()
}

/// A process table with one process called `name` (comm and argv[0]).
fn fake_procfs(name: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if let Some(name) = name {
        write(&dir.path().join("4242/comm"), &format!("{name}\n"));
        write(&dir.path().join("4242/cmdline"), &format!("/usr/sbin/{name}\0--serve\0"));
    }
    dir
}

/// A real process whose name is `name`: /bin/sleep run through a symlink.
fn spawn_named(dir: &Path, name: &str) -> Child {
    let exe = dir.join(name);
    std::os::unix::fs::symlink("/bin/sleep", &exe).unwrap();
    Command::new(&exe).arg("300").stdin(Stdio::null()).spawn().unwrap()
}

#[test]
fn select_with_fstat_and_process_picks_exactly_the_right_nodes() {
    let hub = Hub::start();
    let probe = format!("fleetprobe{}", std::process::id());
    let bin = tempfile::tempdir().unwrap();
    let mut real = spawn_named(bin.path(), &probe);

    let root_a = rootfs("a\n", true, false);
    let root_b = rootfs("b\n", false, false);
    let root_c = rootfs("c\n", true, false);
    let procs_b = fake_procfs(Some(&probe));
    let procs_c = fake_procfs(None);
    let _nodes: Vec<Node> = vec![
        // alpha reads the real /proc, where the probe runs.
        NodeSpec::new(hub.endpoint(), "alpha").facts("country: uk\n").config(&data_config(root_a.path(), None)).start(),
        NodeSpec::new(hub.endpoint(), "beta").facts("country: uk\n").config(&data_config(root_b.path(), Some(procs_b.path()))).start(),
        NodeSpec::new(hub.endpoint(), "gamma").facts("country: de\n").config(&data_config(root_c.path(), Some(procs_c.path()))).start(),
    ];
    wait_for_nodes(hub.endpoint(), &["alpha", "beta", "gamma"], T);

    let motd = r#"fstat("/etc/motd").present=true"#;
    let running = format!(r#"process("{probe}").exists=true"#);
    let cases: Vec<(String, Vec<&str>)> = vec![
        (motd.to_string(), vec!["alpha", "gamma"]),
        (format!("{motd} and country=uk"), vec!["alpha"]),
        (running.clone(), vec!["alpha", "beta"]),
        (format!(r#"process("/^/usr/sbin/{probe} --serve$/").count=1"#), vec!["beta"]),
        (format!("{motd} and {running}"), vec!["alpha"]),
        (format!("not {running}"), vec!["gamma"]),
        (r#"fstat("/etc/hosts").size=2 and fstat("/etc/hosts").type=file"#.to_string(), vec!["alpha", "beta", "gamma"]),
        (r#"fstat("/etc/motd").md5=MD5 or fact("country").value=de"#.replace("MD5", &md5_of_welcome()), vec!["alpha", "gamma"]),
        ("puppet().enabled=true and puppet().since_lastrun>=600".to_string(), vec!["alpha", "beta", "gamma"]),
    ];
    for (expr, want) in &cases {
        let (got, out) = ping(hub.endpoint(), &["--dm", "broadcast", "-S", expr]);
        assert_eq!(got, *want, "ping -S '{expr}': {out}");
        let out = fleet(hub.endpoint(), &["discover", "--dm", "broadcast", "-S", expr, "--json"]);
        let mut found: Vec<String> = serde_json::from_value(out.json()).unwrap_or_else(|e| panic!("{e}: {out}"));
        found.sort();
        assert_eq!(found, *want, "discover --dm broadcast -S '{expr}': {out}");
    }
    let _ = real.kill();
    let _ = real.wait();
}

// ---------------------------------------------------------------------------------------------
// External agents

/// Written against Choria's external-agent documentation: arguments, CHORIA_EXTERNAL_* variables,
/// the activation protocol and the request's field names.
const CHORIA_PY: &str = r#"#!/usr/bin/env python3
import json, os, sys

request_file, reply_file, protocol = sys.argv[1], sys.argv[2], sys.argv[3]
assert os.environ["CHORIA_EXTERNAL_REQUEST"] == request_file
assert os.environ["CHORIA_EXTERNAL_REPLY"] == reply_file
assert os.environ["CHORIA_EXTERNAL_PROTOCOL"] == protocol

if protocol == "io.choria.mcorpc.external.v1.activation_request":
    with open(request_file) as f:
        req = json.load(f)
    with open(reply_file, "w") as f:
        json.dump({"activate": req["agent"] == "choriapy"}, f)
    sys.exit(0)

with open(request_file) as f:
    req = json.load(f)
assert req["protocol"] == "io.choria.mcorpc.external.v1.rpc_request", req
with open(os.environ["CHORIA_EXTERNAL_FACTS"]) as f:
    facts = json.load(f)
if req["action"] == "fail":
    with open(reply_file, "w") as f:
        json.dump({"statuscode": 1, "statusmsg": "it went wrong", "data": {"partial": 7}}, f)
    sys.exit(0)
reply = {
    "statuscode": 0,
    "statusmsg": "OK",
    "data": {
        "callerid": req["callerid"],
        "requestid": req["requestid"],
        "senderid": req["senderid"],
        "collective": req["collective"],
        "agent": req["agent"],
        "action": req["action"],
        "ttl": req["ttl"],
        "msgtime": req["msgtime"],
        "greeting": "hello " + req["data"]["name"],
        "role": facts.get("role", ""),
        "config": os.environ["CHORIA_EXTERNAL_CONFIG"],
    },
}
with open(reply_file, "w") as f:
    json.dump(reply, f)
"#;

const CHORIA_PY_DDL: &str = r#"{
  "$schema": "https://choria.io/schemas/mcorpc/ddl/v1/agent.json",
  "metadata": {"name": "NAME", "description": "Choria protocol probe", "author": "e2e", "license": "Apache-2.0",
               "version": "1.0.0", "url": "https://example.invalid", "timeout": 10, "provider": "external"},
  "actions": [
    {"action": "hello", "description": "Says hello", "display": "always",
     "input": {"name": {"prompt": "Name", "description": "Who", "type": "string", "default": null, "optional": false,
                        "validation": "^[a-z]+$", "maxlength": 20}},
     "output": {"greeting": {"description": "The greeting", "display_as": "Greeting", "default": null}}},
    {"action": "fail", "description": "Fails", "display": "always", "input": {}, "output": {}}
  ]
}"#;

fn install_choria_py(dir: &Path, name: &str) {
    write(&dir.join(format!("{name}.json")), &CHORIA_PY_DDL.replace("NAME", name));
    executable(&dir.join(name), CHORIA_PY);
}

#[test]
fn a_python_agent_written_for_choria_loads_and_sees_its_caller() {
    let hub = Hub::start();
    let agents = tempfile::tempdir().unwrap();
    install_choria_py(agents.path(), "choriapy");
    // The same script under another name answers the activation check with false: not loaded.
    install_choria_py(agents.path(), "declined");
    // An activation reply without "activate" means inactive, as in Choria.
    write(&agents.path().join("noactivate.json"), &CHORIA_PY_DDL.replace("NAME", "noactivate"));
    executable(
        &agents.path().join("noactivate"),
        "#!/bin/sh\ncase \"$3\" in *activation*) echo '{}' > \"$2\"; exit 0;; esac\necho '{\"statuscode\":0,\"data\":{}}' > \"$2\"\n",
    );
    let _node =
        NodeSpec::new(hub.endpoint(), "alpha").facts("role: web\n").arg("--agents-dir").arg(agents.path().display().to_string()).start();
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let reloaded = reload(hub.endpoint(), "alpha");
    let loaded = reloaded["agents"].as_array().unwrap();
    assert!(loaded.contains(&json!("choriapy")), "{reloaded}");
    assert!(!loaded.contains(&json!("declined")) && !loaded.contains(&json!("noactivate")), "{reloaded}");
    assert!(reloaded["skipped"]["noactivate"].as_str().unwrap().contains("not active"), "{reloaded}");

    let out = fleet_with_ddls(hub.endpoint(), agents.path(), &["rpc", "choriapy", "hello", "name=world", "--json"]);
    assert_eq!(out.code, Some(0), "{out}");
    let data = &out.json()["replies"][0]["data"];
    assert_eq!(data["callerid"], TestKeys::get().caller(), "{out}");
    assert_eq!(data["senderid"], "alpha");
    assert_eq!(data["agent"], "choriapy");
    assert_eq!(data["action"], "hello");
    assert_eq!(data["greeting"], "hello world");
    assert_eq!(data["role"], "web", "the facts file");
    assert!(data["requestid"].as_str().is_some_and(|s| !s.is_empty()), "{out}");
    assert!(data["collective"].as_str().is_some_and(|s| !s.is_empty()), "{out}");
    assert!(data["msgtime"].as_u64().is_some_and(|t| t > 1_600_000_000), "seconds since the epoch: {out}");
    assert_eq!(data["config"], agents.path().join("choriapy.cfg").display().to_string());
}

#[test]
fn a_failed_external_reply_keeps_its_data() {
    let hub = Hub::start();
    let agents = tempfile::tempdir().unwrap();
    install_choria_py(agents.path(), "choriapy");
    let _node = NodeSpec::new(hub.endpoint(), "alpha").arg("--agents-dir").arg(agents.path().display().to_string()).start();
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let mut peer = RawPeer::connect(hub.endpoint());
    peer.hello("e2e");
    let r = peer.request(request("choriapy", "fail", Map::new(), &["alpha"]), T);
    assert_eq!(r.status, Status::Aborted);
    assert_eq!(r.status_msg, "it went wrong");
    assert_eq!(r.data["partial"], 7);
}

#[test]
fn fleet_agent_new_writes_agents_a_node_loads_and_that_answer() {
    let hub = Hub::start();
    let agents = tempfile::tempdir().unwrap();
    let dir = agents.path().display().to_string();
    for (name, lang) in [("hello_py", "python"), ("hello_sh", "shell")] {
        let out = fleet(hub.endpoint(), &["agent", "new", name, "--lang", lang, "--dir", &dir]);
        assert_eq!(out.code, Some(0), "{out}");
        let ddl = agents.path().join(format!("{name}.toml")).display().to_string();
        let out = fleet(hub.endpoint(), &["ddl", "check", &ddl]);
        assert_eq!(out.code, Some(0), "{out}");
        assert!(out.stderr.is_empty(), "no warnings: {out}");
    }
    let out = fleet(hub.endpoint(), &["agent", "new", "hello_py", "--dir", &dir]);
    assert_ne!(out.code, Some(0), "no overwrite without --force: {out}");
    let out = fleet(hub.endpoint(), &["ddl", "new", "justddl", "--dir", &dir]);
    assert_eq!(out.code, Some(0), "{out}");
    let out = fleet(hub.endpoint(), &["ddl", "check", &agents.path().join("justddl.toml").display().to_string()]);
    assert_eq!(out.code, Some(0), "{out}");

    let _node = NodeSpec::new(hub.endpoint(), "alpha").arg("--agents-dir").arg(&dir).start();
    wait_for_nodes(hub.endpoint(), &["alpha"], T);
    let reloaded = reload(hub.endpoint(), "alpha");
    for name in ["hello_py", "hello_sh"] {
        assert!(reloaded["agents"].as_array().unwrap().contains(&json!(name)), "{reloaded}");
        let out = fleet_with_ddls(hub.endpoint(), agents.path(), &["rpc", name, "run", "message=hello there", "--json"]);
        assert_eq!(out.code, Some(0), "{name}: {out}");
        let data = &out.json()["replies"][0]["data"];
        assert_eq!(data["message"], "hello there", "{name}: {out}");
        assert_eq!(data["caller"], TestKeys::get().caller(), "{name}: {out}");
        // The DDL's validation is enforced before anything runs.
        let out = fleet_with_ddls(hub.endpoint(), agents.path(), &["rpc", name, "run", "message=say \"hi\""]);
        assert_eq!(out.code, Some(4), "{name}: {out}");
    }
    let mut peer = RawPeer::connect(hub.endpoint());
    peer.hello("e2e");
    let r = peer.request(request("hello_sh", "run", args(json!({"message": "direct"})), &["alpha"]), T);
    assert_eq!(r.status, Status::Ok, "{}", r.status_msg);
    assert_eq!(r.data["message"], "direct");
}
