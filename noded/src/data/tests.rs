use std::path::Path;

use fleet_protocol::NodeView;
use fleet_protocol::filter::{DataSource, parse_compound};
use serde_json::json;

use super::*;

fn data(root: &Path, procfs: &Path) -> NodeData {
    NodeData {
        config: DataConfig { rootfs: root.into(), procfs: procfs.into(), puppet_summary: "/state/last_run_summary.yaml".into() },
        collectives: vec!["fleet".into(), "uk".into()],
        agents_dir: None,
    }
}

fn fake_process(procfs: &Path, pid: u32, comm: &str, argv: &[&str]) {
    let dir = procfs.join(pid.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
    std::fs::write(dir.join("cmdline"), argv.iter().map(|a| format!("{a}\0")).collect::<String>()).unwrap();
}

#[test]
fn plugins_answer_under_the_configured_roots() {
    let root = tempfile::tempdir().unwrap();
    let procfs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/motd"), "abc").unwrap();
    std::fs::create_dir_all(root.path().join("state")).unwrap();
    let last = now() - 120;
    std::fs::write(
        root.path().join("state/last_run_summary.yaml"),
        format!(
            "---\nversion:\n  config: 1700000000\nresources:\n  failed: 0\n  changed: 2\ntime:\n  last_run: {last}\nevents:\n  failure: 0\n"
        ),
    )
    .unwrap();
    fake_process(procfs.path(), 10, "nginx", &["nginx: master process /usr/sbin/nginx"]);
    fake_process(procfs.path(), 11, "nginx", &["nginx: worker process"]);
    fake_process(procfs.path(), 12, "python3", &["/usr/bin/python3", "/opt/app/server.py"]);
    let d = data(root.path(), procfs.path());
    let facts = json!({"country": "uk", "os": {"family": "Debian"}});
    let node = NodeView { identity: "n1", facts: &facts, classes: &[], agents: vec!["rpcutil", "echo"] };
    let m = |s: &str| parse_compound(s).unwrap_or_else(|e| panic!("{e}")).matches_with(&node, &d);

    assert!(m(r#"fstat("/etc/motd").present=true and fstat("/etc/motd").size=3 and fstat("/etc/motd").type=file"#));
    assert!(m(r#"fstat("/etc/motd").md5=900150983cd24fb0d6963f7d28e17f72"#));
    assert!(m(r#"fstat("/etc/motd").mtime_age<60 and fstat("/etc/motd").perms=/^6/"#));
    assert!(m(r#"fstat("/etc/nope").present=false and fstat("/etc").type=directory"#));
    assert!(m(r#"process("nginx").exists=true and process("nginx").count=2"#));
    assert!(m(r#"process("/server\.py/").count=1 and process("python3").exists=true"#));
    assert!(m(r#"process("server.py").exists=false"#), "by name is exact");
    assert!(m(r#"fact("os.family").value=Debian and fact("nope").exists=false"#));
    assert!(m(r#"agent("echo").present=true and agent("rpcutil").version=/./ and agent("xen").present=false"#));
    assert!(m(r#"collective("uk").member=true and collective("us").member=false"#));
    assert!(m("puppet().enabled=true and puppet().since_lastrun>=120 and puppet().since_lastrun<200 and puppet().failed=false"));
    std::fs::write(root.path().join("state/agent_disabled.lock"), r#"{"disabled_message":"maintenance"}"#).unwrap();
    assert!(m("puppet().enabled=false and puppet().disable_message=maintenance"));
    assert!(!m(r#"nosuch("x").a=1"#));
    assert!(d.query("nosuch", None, &node).unwrap_err().contains("unknown data function 'nosuch'"));
    assert!(d.query("fstat", None, &node).unwrap_err().contains("needs a path"));
}
