//! The concat agent on real files in a temp directory, through the same dispatch and DDL
//! validation a request gets: ordering, source fragments, notify only on content changes, a
//! mode-only change, refusals, and a writer killed between its temp write and the rename.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::{ConcatAgent, ConcatConfig, dispatch};
use crate::agents::{ActionError, Agent};

/// When set (to a marker file's path), a build stops after writing its temp file and before the
/// rename: it writes the marker and sleeps until it is killed. Read only by test builds.
const PAUSE_ENV: &str = "FLEET_CONCAT_TEST_PAUSE_BEFORE_RENAME";
/// The directory the crash test's child process works in.
const CRASH_DIR_ENV: &str = "FLEET_CONCAT_TEST_CRASH_DIR";

/// The crash point between the temp write and the rename (see [`PAUSE_ENV`]).
pub(super) fn crash_point() {
    let Some(marker) = std::env::var_os(PAUSE_ENV) else { return };
    std::fs::write(&marker, b"paused before the rename\n").expect("pause marker");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// A node's concat agent working in `dir`: targets under `dir/root`, fragments in `dir/state`,
/// sources also from `dir/shared`, notify commands allowed.
struct Fixture {
    dir: PathBuf,
    agent: ConcatAgent,
}

impl Fixture {
    fn new() -> (tempfile::TempDir, Fixture) {
        let tmp = tempfile::tempdir().unwrap();
        let fx = Fixture::in_dir(tmp.path());
        (tmp, fx)
    }

    fn in_dir(dir: &Path) -> Fixture {
        for sub in ["root", "shared"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let config = ConcatConfig {
            roots: vec![dir.join("root")],
            source_roots: vec![dir.join("shared")],
            allow_notify_commands: true,
            notify_timeout: 10.0,
        };
        Fixture { dir: dir.to_path_buf(), agent: ConcatAgent::new(config, dir.join("state/concat")) }
    }

    fn target(&self) -> String {
        self.dir.join("root/app.conf").display().to_string()
    }

    fn marker(&self) -> PathBuf {
        self.dir.join("notified")
    }

    /// How many times the notify command of [`Fixture::build`] ran.
    fn notifies(&self) -> usize {
        std::fs::read_to_string(self.marker()).map(|s| s.len()).unwrap_or(0)
    }

    /// Validates `args` against the DDL (filling defaults), then runs the action.
    async fn call(&self, action: &str, args: Value) -> Result<Value, ActionError> {
        let mut args: Map<String, Value> = args.as_object().cloned().unwrap();
        fleet_ddl::validate_request(self.agent.ddl(), action, &mut args).map_err(|e| ActionError::invalid(e.to_string()))?;
        dispatch(self.agent.inner.clone(), action.to_string(), args).await
    }

    async fn add(&self, name: &str, order: i64, content: &str) -> Value {
        self.call("add_fragment", json!({ "target": self.target(), "name": name, "order": order, "content": content })).await.unwrap()
    }

    /// A build whose notify appends one byte to the marker file.
    async fn build(&self, extra: Value) -> Result<Value, ActionError> {
        let mut args = json!({ "target": self.target(), "notify": format!("printf x >> '{}'", self.marker().display()) });
        args.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap());
        self.call("build", args).await
    }

    fn content(&self) -> String {
        std::fs::read_to_string(self.target()).unwrap()
    }

    fn mode(&self) -> u32 {
        std::fs::metadata(self.target()).unwrap().permissions().mode() & 0o7777
    }
}

#[tokio::test]
async fn fragments_render_by_order_then_name() {
    let (_tmp, fx) = Fixture::new();
    fx.add("footer", 90, "# end\n").await;
    fx.add("b-server", 50, "server b\n").await;
    fx.add("a-server", 50, "server a\n").await;
    fx.add("header", 1, "# managed by fleet\n").await;
    let r = fx.build(json!({})).await.unwrap();
    assert_eq!(fx.content(), "# managed by fleet\nserver a\nserver b\n# end\n");
    assert_eq!((r["changed"].clone(), r["created"].clone(), r["fragments"].clone()), (json!(true), json!(true), json!(4)));
    assert!(r["diff"].as_str().unwrap().contains("--- /dev/null\n"), "{r}");
    assert!(r["diff"].as_str().unwrap().contains("+server a\n+server b\n"), "{r}");
    assert_eq!(r["checksum"], json!(super::store::sha256_hex(fx.content().as_bytes())));
    assert_eq!(fx.mode(), 0o644, "a new file gets 0644 whatever the umask");
    let listed = fx.call("list", json!({ "target": fx.target() })).await.unwrap();
    let names: Vec<&str> = listed["fragments"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["header", "a-server", "b-server", "footer"]);
    let targets = fx.call("list", json!({})).await.unwrap();
    assert_eq!(targets["targets"], json!([{ "target": fx.target(), "fragments": 4 }]));

    // Removing a fragment changes the next build, whose diff shows exactly that.
    assert_eq!(fx.call("remove_fragment", json!({ "target": fx.target(), "name": "b-server" })).await.unwrap()["removed"], json!(true));
    let r = fx.build(json!({})).await.unwrap();
    assert_eq!(fx.content(), "# managed by fleet\nserver a\n# end\n");
    assert!(r["diff"].as_str().unwrap().contains("\n-server b\n"), "{r}");
}

#[tokio::test]
async fn a_source_fragment_is_read_at_every_build() {
    let (_tmp, fx) = Fixture::new();
    let shared = fx.dir.join("shared/upstream.conf");
    std::fs::write(&shared, "upstream 1\n").unwrap();
    fx.add("head", 1, "# head\n").await;
    let args = json!({ "target": fx.target(), "name": "upstream", "order": 5, "source": shared.display().to_string() });
    fx.call("add_fragment", args).await.unwrap();
    fx.build(json!({})).await.unwrap();
    assert_eq!(fx.content(), "# head\nupstream 1\n");

    // The file changes behind concat's back: the next build picks it up, and says so.
    std::fs::write(&shared, "upstream 2\n").unwrap();
    let r = fx.build(json!({ "dry_run": true })).await.unwrap();
    assert_eq!(r["changed"], json!(true));
    assert!(r["diff"].as_str().unwrap().contains("-upstream 1\n+upstream 2\n"), "{r}");
    assert_eq!(fx.content(), "# head\nupstream 1\n", "a dry run writes nothing");
    assert_eq!(fx.notifies(), 1, "a dry run notifies nothing");
    fx.build(json!({})).await.unwrap();
    assert_eq!(fx.content(), "# head\nupstream 2\n");
    assert_eq!(fx.notifies(), 2);

    // A source that is gone fails the build and leaves the file alone.
    std::fs::remove_file(&shared).unwrap();
    let e = fx.build(json!({})).await.unwrap_err();
    assert!(e.message.starts_with("fragment 'upstream': the source "), "{}", e.message);
    assert_eq!(fx.content(), "# head\nupstream 2\n");
}

#[tokio::test]
async fn nothing_changed_means_no_write_and_no_notify() {
    let (_tmp, fx) = Fixture::new();
    fx.add("only", 1, "same\n").await;
    let first = fx.build(json!({})).await.unwrap();
    assert_eq!((first["notified"].clone(), first["notify_status"].clone()), (json!(true), json!(0)));
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(fx.target()).unwrap());
    let again = fx.build(json!({})).await.unwrap();
    assert_eq!(again["changed"], json!(false), "{again}");
    assert_eq!(again["diff"], json!(""));
    assert_eq!(again["notified"], json!(false));
    assert_eq!(again["checksum"], first["checksum"]);
    assert_eq!(fx.notifies(), 1, "the second build ran no notify");
    let same_inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(fx.target()).unwrap());
    assert_eq!(inode, same_inode, "an unchanged file is not rewritten");
}

#[tokio::test]
async fn a_mode_only_change_is_reported_applied_and_never_notifies() {
    let (_tmp, fx) = Fixture::new();
    fx.add("only", 1, "secret = 1\n").await;
    fx.build(json!({ "mode": "0644" })).await.unwrap();
    assert_eq!(fx.notifies(), 1);
    let dry = fx.build(json!({ "mode": "0600", "dry_run": true })).await.unwrap();
    assert_eq!(dry["attributes"], json!(["mode 0644 -> 0600"]));
    assert_eq!(fx.mode(), 0o644, "a dry run changes no mode");
    let r = fx.build(json!({ "mode": "0600" })).await.unwrap();
    assert_eq!((r["changed"].clone(), r["notified"].clone()), (json!(false), json!(false)), "{r}");
    assert_eq!(r["attributes"], json!(["mode 0644 -> 0600"]));
    assert_eq!(fx.mode(), 0o600);
    assert_eq!(fx.notifies(), 1, "a mode change alone never notifies");
    // Content and mode at once: written with the new mode, and notified for the content.
    fx.add("only", 1, "secret = 2\n").await;
    let r = fx.build(json!({ "mode": "0640" })).await.unwrap();
    assert_eq!((r["changed"].clone(), r["notified"].clone()), (json!(true), json!(true)));
    assert_eq!((fx.mode(), fx.notifies()), (0o640, 2));
}

#[tokio::test]
async fn a_failed_notify_fails_the_reply_with_its_status_and_output() {
    let (_tmp, fx) = Fixture::new();
    fx.add("only", 1, "x\n").await;
    let e = fx.call("build", json!({ "target": fx.target(), "notify": "echo reload refused; exit 3" })).await.unwrap_err();
    assert_eq!(e.status, fleet_protocol::Status::Aborted);
    assert!(e.message.ends_with("written, but its notify command 'echo reload refused; exit 3' exited with status 3"), "{}", e.message);
    assert_eq!((e.data["notify_status"].clone(), e.data["notify_output"].clone()), (json!(3), json!("reload refused\n")));
    assert_eq!(fx.content(), "x\n", "the file was written before the notify");
}

#[tokio::test]
async fn traversal_outside_roots_and_unsafe_requests_are_refused() {
    let (_tmp, fx) = Fixture::new();
    let root = fx.dir.join("root").display().to_string();
    let refused = |args: Value, action: &'static str| {
        let fx = &fx;
        async move { fx.call(action, args).await.unwrap_err().message }
    };
    let e = refused(json!({ "target": format!("{root}/../escape.conf"), "name": "a", "content": "x" }), "add_fragment").await;
    assert!(e.contains("contains '..': path traversal is refused"), "{e}");
    let e = refused(json!({ "target": "/etc/passwd", "name": "a", "content": "x" }), "add_fragment").await;
    assert!(e.contains("'/etc/passwd' is outside the allowed roots"), "{e}");
    let e = refused(json!({ "target": fx.target(), "name": "../../x", "content": "x" }), "add_fragment").await;
    assert!(e.contains("a name is not a path"), "{e}");
    let e = refused(json!({ "target": fx.target(), "name": "a", "source": "/etc/shadow" }), "add_fragment").await;
    assert!(e.contains("the source '/etc/shadow' is outside the roots concat may read"), "{e}");
    let e = refused(json!({ "target": fx.target(), "name": "a" }), "add_fragment").await;
    assert!(e.contains("either content or source"), "{e}");
    let e = refused(json!({ "target": "/etc/passwd" }), "build").await;
    assert!(e.contains("outside the allowed roots"), "{e}");
    let e = refused(json!({ "target": format!("{root}/missing-dir/x.conf") }), "build").await;
    assert!(e.contains("cannot be used"), "{e}");
    let e = refused(json!({ "target": fx.target(), "notify": "true", "notify_unit": "nginx" }), "build").await;
    assert_eq!(e, "give notify or notify_unit, not both");
    assert!(std::fs::read_dir(fx.dir.join("root")).unwrap().next().is_none(), "nothing was written");

    // A node without roots refuses everything; one without notify commands refuses those.
    let bare = ConcatAgent::new(ConcatConfig::default(), fx.dir.join("bare"));
    let args = json!({ "target": fx.target(), "name": "a", "content": "x" }).as_object().cloned().unwrap();
    let e = dispatch(bare.inner.clone(), "add_fragment".into(), args).await.unwrap_err();
    assert_eq!(e.message, "this node allows no concat targets: its noded.toml has no [concat] roots");
    let strict = ConcatConfig { roots: vec![fx.dir.join("root")], ..ConcatConfig::default() };
    let strict = ConcatAgent::new(strict, fx.dir.join("strict"));
    let args = json!({ "target": fx.target(), "notify": "reboot" }).as_object().cloned().unwrap();
    let e = dispatch(strict.inner.clone(), "build".into(), args).await.unwrap_err();
    assert!(e.message.starts_with("this node runs no notify commands"), "{}", e.message);
}

#[test]
fn the_config_refuses_relative_roots_and_bad_timeouts() {
    let e = crate::config::NodeConfig::parse("[concat]\nroots = [\"etc/app\"]\n", "n.toml").unwrap_err().to_string();
    assert_eq!(e, "n.toml: concat.roots: 'etc/app' is not a plain absolute directory");
    let e = crate::config::NodeConfig::parse("[concat]\nnotify_timeout = 0\n", "n.toml").unwrap_err().to_string();
    assert_eq!(e, "n.toml: concat.notify_timeout: must be a positive number of seconds (got 0)");
    let e = crate::config::NodeConfig::parse("[concat]\nroot = [\"/etc\"]\n", "n.toml").unwrap_err().to_string();
    assert!(e.starts_with("n.toml:2:") && e.contains("root"), "{e}");
    let ok = crate::config::NodeConfig::parse("[concat]\nroots = [\"/etc/app\"]\nallow_notify_commands = true\n", "n.toml").unwrap();
    assert_eq!(ok.concat.roots, [PathBuf::from("/etc/app")]);
}

#[test]
fn the_documented_concat_table_is_the_default() {
    let example = include_str!("../../../../deploy/noded.toml.example");
    let config = crate::config::NodeConfig::parse(example, "deploy/noded.toml.example").unwrap();
    assert_eq!(config.concat, ConcatConfig::default());
}

/// Runs twice: as the parent (no [`CRASH_DIR_ENV`]), which sets a target up and starts this same
/// test in a child process; and as that child, which builds the target and is killed at the crash
/// point (between the temp file's write and its rename).
#[tokio::test]
async fn a_writer_killed_before_the_rename_leaves_the_old_file_intact() {
    if let Some(dir) = std::env::var_os(CRASH_DIR_ENV) {
        let fx = Fixture::in_dir(Path::new(&dir));
        let _ = fx.build(json!({})).await;
        panic!("the build should have paused at the crash point");
    }
    let (tmp, fx) = Fixture::new();
    fx.add("only", 1, "old content\n").await;
    fx.build(json!({})).await.unwrap();
    fx.add("only", 1, "new content that never lands\n").await;

    let pause = tmp.path().join("paused");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "agents::concat::tests::a_writer_killed_before_the_rename_leaves_the_old_file_intact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CRASH_DIR_ENV, tmp.path())
        .env(PAUSE_ENV, &pause)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pause.exists() {
        assert!(Instant::now() < deadline, "the child never reached the crash point");
        assert!(child.try_wait().unwrap().is_none(), "the child ended before the crash point");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The temp file is complete and in place; kill the writer before it renames it.
    let temps: Vec<PathBuf> = std::fs::read_dir(fx.dir.join("root"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .collect();
    assert_eq!(temps.len(), 1, "{temps:?}");
    assert_eq!(std::fs::read_to_string(&temps[0]).unwrap(), "new content that never lands\n");
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(fx.content(), "old content\n", "the old file is intact");
    assert_eq!(fx.notifies(), 1, "the killed build notified nothing");
    // The next build completes the change.
    let r = fx.build(json!({})).await.unwrap();
    assert!(r["diff"].as_str().unwrap().contains("-old content\n+new content that never lands\n"), "{r}");
    assert_eq!(fx.content(), "new content that never lands\n");
}

#[tokio::test]
async fn owners_and_groups_are_names_or_numbers_and_an_owner_change_never_notifies() {
    use super::build::Ids;
    assert_eq!(Ids::Users.id("0"), Ok(Some(0)));
    assert_eq!(Ids::Users.id("root"), Ok(Some(0)));
    assert_eq!(Ids::Groups.id(""), Ok(None));
    assert_eq!(Ids::Users.id("no-such-user-x").unwrap_err(), "there is no user 'no-such-user-x' on this node");
    assert_eq!(Ids::Groups.id("no-such-group-x").unwrap_err(), "there is no group 'no-such-group-x' on this node");
    if !rustix::process::geteuid().is_root() {
        return; // Giving a file to another user needs root.
    }
    let (_tmp, fx) = Fixture::new();
    fx.add("only", 1, "x\n").await;
    fx.build(json!({ "owner": "0", "group": "0" })).await.unwrap();
    let r = fx.build(json!({ "owner": "65534", "group": "65534" })).await.unwrap();
    let attributes: Vec<&str> = r["attributes"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(attributes.len(), 2, "{r}");
    assert!(attributes[0].starts_with("owner root -> ") && attributes[1].starts_with("group root -> "), "{r}");
    assert_eq!((r["changed"].clone(), r["notified"].clone()), (json!(false), json!(false)));
    let meta = std::fs::metadata(fx.target()).unwrap();
    assert_eq!((std::os::unix::fs::MetadataExt::uid(&meta), std::os::unix::fs::MetadataExt::gid(&meta)), (65534, 65534));
    assert_eq!(fx.notifies(), 1);
}
