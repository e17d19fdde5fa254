//! `fleet concat` on three real noded processes: fragments added fleet-wide, a dry run whose
//! identical diffs fold into one, a build that changes two nodes and notifies only those two (the
//! notify writes a marker file next to its node), a second build that changes nothing, a
//! mode-only change that notifies nobody, a canary rollout of a build, and refused targets.
//!
//! Every node builds the same target string, `/proc/self/cwd/app.conf`, which each noded resolves
//! to its own working directory: three nodes on one host, one fleet-wide path, three files.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use fleet_e2e::support::{Hub, Node, NodeSpec, Output, TestKeys, fleet, wait_for_nodes};

const T: Duration = Duration::from_secs(20);
/// The target every node builds: its own working directory's app.conf.
const TARGET: &str = "/proc/self/cwd/app.conf";
/// Appends one byte to `notified` in the node's working directory.
const NOTIFY: &str = "printf x >> notified";

/// A started node has inherited the working directory; one node at a time changes it.
static CWD: Mutex<()> = Mutex::new(());

/// A node whose working directory (and so whose [`TARGET`]) is `dir`, allowed the concat agent
/// for the test caller only, with notify commands on.
fn concat_node(hub: &str, identity: &str, dir: &Path) -> Node {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let caller = TestKeys::get().caller();
    std::fs::write(policies.join("concat.policy"), format!("policy default deny\nallow\t{caller}\t*\t*\t*\n")).unwrap();
    let config = format!(
        "policy_default = \"deny\"\npolicy_dir = {policies:?}\nstate_dir = {state:?}\n\n\
         [concat]\nroots = [\"/proc/self/cwd\"]\nallow_notify_commands = true\nnotify_timeout = 10.0\n",
        state = dir.join("state"),
    );
    let _one_at_a_time = CWD.lock().unwrap_or_else(|e| e.into_inner());
    let before = std::env::current_dir().unwrap();
    std::env::set_current_dir(dir).unwrap();
    let node = NodeSpec::new(hub, identity).config(&config).start();
    std::env::set_current_dir(before).unwrap();
    node
}

struct Fleet {
    hub: Hub,
    _nodes: Vec<Node>,
    dirs: Vec<PathBuf>,
    _tmp: tempfile::TempDir,
}

impl Fleet {
    fn start() -> Fleet {
        let hub = Hub::start();
        let tmp = tempfile::tempdir().unwrap();
        let names = ["web-01", "web-02", "web-03"];
        let dirs: Vec<PathBuf> = names.iter().map(|n| tmp.path().join(n)).collect();
        let nodes = names.iter().zip(&dirs).map(|(n, d)| concat_node(hub.endpoint(), n, d)).collect();
        wait_for_nodes(hub.endpoint(), &names, T);
        Fleet { hub, _nodes: nodes, dirs, _tmp: tmp }
    }

    fn fleet(&self, args: &[&str]) -> Output {
        fleet(self.hub.endpoint(), args)
    }

    /// The target's text on each node ("" where there is none).
    fn contents(&self) -> Vec<String> {
        self.dirs.iter().map(|d| std::fs::read_to_string(d.join("app.conf")).unwrap_or_default()).collect()
    }

    /// How many times each node's notify ran.
    fn notifies(&self) -> Vec<usize> {
        self.dirs.iter().map(|d| std::fs::read_to_string(d.join("notified")).map(|s| s.len()).unwrap_or(0)).collect()
    }

    fn mode(&self, node: usize) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(self.dirs[node].join("app.conf")).unwrap().permissions().mode() & 0o7777
    }
}

const BUILT: &str = "# managed by fleet\nlisten 80\n";

#[test]
fn a_dry_run_folds_diffs_a_build_notifies_only_the_changed_nodes_and_a_rebuild_changes_nothing() {
    let f = Fleet::start();
    // web-01 and web-02 have the same old file; web-03 already has what the fragments build.
    std::fs::write(f.dirs[0].join("app.conf"), "# old\n").unwrap();
    std::fs::write(f.dirs[1].join("app.conf"), "# old\n").unwrap();
    std::fs::write(f.dirs[2].join("app.conf"), BUILT).unwrap();

    let out = f.fleet(&["concat", "add", TARGET, "listen", "--content", "listen 80\n", "--order", "20"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("web-[01-03] (3): fragment listen stored"), "{out}");
    let out = f.fleet(&["concat", "add", TARGET, "header", "--content", "# managed by fleet\n", "--order", "1"]);
    assert_eq!(out.code, Some(0), "{out}");
    let out = f.fleet(&["concat", "list", TARGET]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("web-[01-03] (3): 2 fragment(s)\n"), "{out}");
    let header = out.stdout.find("header").unwrap();
    assert!(header < out.stdout.find("listen").unwrap(), "listed in build order: {out}");

    // The dry run: one diff for the two nodes that would change, nothing written, nobody notified.
    let out = f.fleet(&["concat", "build", TARGET, "--dry-run", "--notify", NOTIFY]);
    assert_eq!(out.code, Some(0), "{out}");
    let folded = format!(
        "web-[01-02] (2): would change\n   --- {TARGET}\n   +++ {TARGET}\n   @@ -1 +1,2 @@\n   -# old\n   +# managed by fleet\n   +listen 80\n"
    );
    assert!(out.stdout.contains(&folded), "{out}");
    assert!(out.stdout.contains("web-03 (1): in sync\n"), "{out}");
    assert!(out.stdout.contains("2 of 3 nodes would change, 1 in sync (dry run: nothing written)"), "{out}");
    assert_eq!(f.contents(), ["# old\n", "# old\n", BUILT]);
    assert_eq!(f.notifies(), [0, 0, 0]);

    // The build: two nodes change and run their notify; web-03 neither.
    let out = f.fleet(&["concat", "build", TARGET, "--notify", NOTIFY]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("web-[01-02] (2): changed, notified (exit 0)\n"), "{out}");
    assert!(out.stdout.contains("2 of 3 nodes changed (2 notified), 1 in sync\n"), "{out}");
    assert_eq!(f.contents(), [BUILT, BUILT, BUILT]);
    assert_eq!(f.notifies(), [1, 1, 0]);

    // Again: nothing changes, nothing is notified.
    let out = f.fleet(&["concat", "build", TARGET, "--notify", NOTIFY]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("web-[01-03] (3): in sync\n"), "{out}");
    assert!(out.stdout.contains("0 of 3 nodes changed, 3 in sync\n"), "{out}");
    assert_eq!(f.notifies(), [1, 1, 0]);

    // A mode-only change is reported and applied, and notifies nobody.
    let out = f.fleet(&["concat", "build", TARGET, "--mode", "0600", "--notify", NOTIFY]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("web-[01-03] (3): owner, group or mode changed\n   mode 0644 -> 0600\n"), "{out}");
    assert_eq!((f.mode(0), f.mode(2)), (0o600, 0o600));
    assert_eq!(f.notifies(), [1, 1, 0]);

    // JSON for scripts: each node's reply data.
    let out = f.fleet(&["concat", "build", TARGET, "--dry-run", "--json"]);
    let doc = out.json();
    let replies = doc["replies"].as_array().unwrap();
    assert_eq!(replies.len(), 3, "{out}");
    assert!(replies.iter().all(|r| r["data"]["changed"] == false && r["data"]["dry_run"] == true), "{out}");
}

#[test]
fn a_build_rolls_out_behind_a_canary_and_refused_targets_say_why() {
    let f = Fleet::start();
    let out = f.fleet(&["concat", "add", TARGET, "only", "--content", "v1\n"]);
    assert_eq!(out.code, Some(0), "{out}");
    let out = f.fleet(&["concat", "build", TARGET, "--notify", NOTIFY, "--canary", "1", "--batch", "1", "--max-failures", "0"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("web-[01-03] (3): changed (new file), notified (exit 0)"), "{out}");
    assert!(out.stdout.contains("Rollout: 3 batches (batch 1: the canary)"), "{out}");
    assert_eq!(f.notifies(), [1, 1, 1]);

    // A failing notify stops the rollout after the canary: the file is written there, and the
    // other nodes are never asked.
    let out = f.fleet(&["concat", "add", TARGET, "only", "--content", "v2\n"]);
    assert_eq!(out.code, Some(0), "{out}");
    let out = f.fleet(&["concat", "build", TARGET, "--notify", "echo no reload; exit 1", "--canary", "1", "--max-failures", "0"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stdout.contains("notify command 'echo no reload; exit 1' exited with status 1"), "{out}");
    assert!(out.stdout.contains("STOPPED in batch 1 of 2"), "{out}");
    assert_eq!(f.contents().iter().filter(|c| c.as_str() == "v2\n").count(), 1, "only the canary was built: {:?}", f.contents());

    // Outside the roots, and traversal: refused by every node, in words.
    let out = f.fleet(&["concat", "add", "/etc/passwd", "x", "--content", "x"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stdout.contains("web-[01-03] (3): failed: InvalidData: the target '/etc/passwd' is outside the allowed roots (/proc/self/cwd)"),
        "{out}"
    );
    let out = f.fleet(&["concat", "build", "/proc/self/cwd/../../etc/passwd"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stdout.contains("contains '..': path traversal is refused"), "{out}");
}
