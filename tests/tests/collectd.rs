//! collectd as a metrics source: the real collectd daemon (Debian's collectd-core), started with
//! its unixsock, load, memory and cpu plugins and a 1 s interval, feeds one real noded through
//! `[metrics] collectd_socket`; its values, named as collectd names them, come back through
//! `fleet metrics` beside noded's own. A missing collectd fails the test: `.ci/run` installs it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fleet_e2e::support::{Hub, NodeSpec, fleet, wait_for, wait_for_nodes};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);
/// The host name collectd is told to use, so its identifiers are known in advance.
const HOST: &str = "collectd-e2e";

fn collectd_bin() -> PathBuf {
    ["/usr/sbin/collectd", "/usr/bin/collectd"].iter().map(PathBuf::from).find(|p| p.exists()).unwrap_or_else(|| {
        panic!("collectd is not installed: apt-get install collectd-core (.ci/run does); this test needs the real daemon")
    })
}

/// A collectd running in the foreground; killed on drop.
struct Collectd(Child);

impl Drop for Collectd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_collectd(dir: &Path) -> (Collectd, PathBuf) {
    let socket = dir.join("collectd.sock");
    let config = format!(
        "Hostname \"{HOST}\"\nFQDNLookup false\nInterval 1\nBaseDir \"{d}\"\nPIDFile \"{d}/collectd.pid\"\n\
         TypesDB \"/usr/share/collectd/types.db\"\n\
         LoadPlugin unixsock\nLoadPlugin load\nLoadPlugin memory\nLoadPlugin cpu\n\
         <Plugin unixsock>\n  SocketFile \"{s}\"\n  SocketPerms \"0600\"\n</Plugin>\n",
        d = dir.display(),
        s = socket.display(),
    );
    let conf = dir.join("collectd.conf");
    std::fs::write(&conf, config).unwrap();
    let log = std::fs::File::create(dir.join("collectd.log")).unwrap();
    let child = Command::new(collectd_bin())
        .arg("-f")
        .arg("-C")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start collectd");
    let mut collectd = Collectd(child);
    wait_for("collectd's socket", T, || {
        assert!(
            collectd.0.try_wait().unwrap().is_none(),
            "collectd exited: {}",
            std::fs::read_to_string(dir.join("collectd.log")).unwrap_or_default()
        );
        socket.exists()
    });
    (collectd, socket)
}

#[test]
fn collectd_values_come_through_fleet_metrics_beside_nodeds_own() {
    let tmp = tempfile::tempdir().unwrap();
    let (_collectd, socket) = start_collectd(tmp.path());
    let hub = Hub::start();
    let config = format!("[metrics]\ninterval = 0.5\ncollectd_socket = {:?}\n", socket.display().to_string());
    let node = NodeSpec::new(hub.endpoint(), "web-01").config(&config).start();
    wait_for_nodes(hub.endpoint(), &["web-01"], T);

    let load = format!("{HOST}/load/load:shortterm");
    let memory = format!("{HOST}/memory/memory-used");
    let mut doc = Value::Null;
    wait_for("collectd's load, memory and cpu values through fleet metrics", T, || {
        doc = fleet(hub.endpoint(), &["metrics", "--json"]).json();
        let m = &doc["hosts"][0]["metrics"];
        m[&load].is_number()
            && m[&memory].is_number()
            && m.as_object().is_some_and(|o| o.keys().any(|k| k.starts_with(&format!("{HOST}/cpu-"))))
    });
    let metrics = &doc["hosts"][0]["metrics"];
    assert!(metrics[&memory].as_f64().unwrap() > 0.0, "{doc:#}");
    // Beside noded's own, from /proc.
    assert!(metrics["load1"].is_number() && metrics["mem_used_pct"].is_number(), "{doc:#}");
    assert_eq!(doc["hosts"][0]["problems"], Value::Null, "no problems reading collectd: {doc:#}\n{}", node.log());

    // Chosen by pattern, in the table, under collectd's names.
    let text = fleet(hub.endpoint(), &["metrics", "-m", &format!("{HOST}/load/*,{HOST}/memory/*")]);
    assert_eq!(text.code, Some(0), "{text}");
    for name in [&load, &memory, &format!("{HOST}/load/load:longterm")] {
        assert!(text.stdout.lines().next().unwrap_or_default().contains(name.as_str()), "{name} not a column: {text}");
    }
    assert!(!text.stdout.contains("cpu-"), "only what -m chose: {text}");
}
