//! process#detail: everything about one process that an admin opens a detail pane for (the full
//! command line, the environment, the working directory, the open file count, the cgroup, the
//! threads and the start time as a date), read on demand from /proc for exactly one
//! `PID@START_TIME`, so a pid the kernel has given to another process is never described.
//!
//! The environment can hold secrets (tokens, passwords). It is returned only to callers whose
//! policy allows `process#detail`: the node checks the action's policy before the agent runs, as
//! for every action, so a policy that should let someone list and kill but not read
//! environments names the actions (`allow alice list,kill * *`) instead of `*`.

use std::sync::Mutex;

use super::{Snapshotter, parse_targets, start_ticks};
use crate::agents::ActionError;
use fleet_protocol::Status;
use serde_json::{Map, Value, json};

/// The one target of a detail request: `PID@START_TIME`.
fn target(args: &Map<String, Value>) -> Result<(u32, u64), ActionError> {
    let text = args.get("target").and_then(Value::as_str).unwrap_or("");
    match parse_targets(text).map_err(ActionError::invalid)?.as_slice() {
        [one] => Ok(*one),
        _ => Err(ActionError::invalid(format!("input 'target' must name exactly one PID@START_TIME, not '{text}'"))),
    }
}

/// A /proc file of `pid` as text, or why it cannot be read (another user's process when noded
/// does not run as root, or a process that just exited).
fn read(pid: u32, file: &str) -> Result<String, String> {
    std::fs::read(format!("/proc/{pid}/{file}")).map(|b| String::from_utf8_lossy(&b).into_owned()).map_err(|e| why(&e))
}

fn why(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::NotFound => "the process has exited".to_string(),
        _ => e.to_string(),
    }
}

/// A NUL-separated /proc list (cmdline, environ) as its items.
fn nul_list(text: &str) -> Vec<String> {
    text.split('\0').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// The environment as `NAME: value`, in name order.
fn environment(text: &str) -> Map<String, Value> {
    nul_list(text)
        .into_iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
            None => (kv, Value::String(String::new())),
        })
        .collect()
}

/// The cgroup a process is in: the v2 path (`0::/system.slice/nginx.service`), else every v1
/// line as it is.
fn cgroup(text: &str) -> String {
    if let Some(path) = text.lines().find_map(|l| l.strip_prefix("0::")) {
        return path.to_string();
    }
    text.lines().collect::<Vec<_>>().join("; ")
}

/// Puts `value` under `key`, or why it could not be read under `key_error`.
fn put(out: &mut Map<String, Value>, key: &str, value: Result<Value, String>) {
    match value {
        Ok(v) => {
            out.insert(key.to_string(), v);
        }
        Err(e) => {
            out.insert(key.to_string(), Value::Null);
            out.insert(format!("{key}_error"), Value::String(e));
        }
    }
}

pub(super) fn detail(snapshot: &Mutex<Snapshotter>, args: &Map<String, Value>) -> Result<Value, ActionError> {
    let (pid, start_time) = target(args)?;
    match start_ticks(pid) {
        Some(t) if t == start_time => {}
        Some(t) => {
            return Err(ActionError::new(
                Status::Aborted,
                format!("pid reused: pid {pid} now started at {t}, not {start_time}; list again"),
            ));
        }
        None => return Err(ActionError::new(Status::Aborted, format!("no such process: pid {pid} has exited"))),
    }
    // What `list` shows for the process, read the same way: user, start date, memory, CPU.
    let mut snap = snapshot.lock().map_err(|_| ActionError::new(Status::UnknownError, "process snapshot lock poisoned"))?;
    let row = snap.row(pid).filter(|r| r.start_time == start_time);
    drop(snap);
    let Some(row) = row else {
        return Err(ActionError::new(Status::Aborted, format!("no such process: pid {pid} has exited")));
    };

    let mut out = Map::new();
    out.insert("pid".into(), json!(pid));
    out.insert("start_time".into(), json!(start_time));
    out.insert("started".into(), json!(row.started));
    out.insert("user".into(), json!(row.user));
    out.insert("state".into(), json!(row.state));
    out.insert("name".into(), json!(row.name));
    out.insert("rss".into(), json!(row.rss));
    out.insert("vsz".into(), json!(row.vsz));
    out.insert("cpu".into(), json!(row.cpu));
    out.insert("ppid".into(), json!(row.ppid));
    out.insert("threads".into(), json!(row.threads));
    let argv = read(pid, "cmdline").map(|c| nul_list(&c));
    out.insert("cmdline".into(), json!(argv.as_ref().map(|a| a.join(" ")).unwrap_or_default()));
    put(&mut out, "argv", argv.map(|a| json!(a)));
    put(&mut out, "environment", read(pid, "environ").map(|e| Value::Object(environment(&e))));
    let link = |what: &str| std::fs::read_link(format!("/proc/{pid}/{what}")).map(|p| json!(p.display().to_string())).map_err(|e| why(&e));
    put(&mut out, "cwd", link("cwd"));
    put(&mut out, "exe", link("exe"));
    put(&mut out, "open_files", std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| json!(d.count())).map_err(|e| why(&e)));
    put(&mut out, "cgroup", read(pid, "cgroup").map(|c| json!(cgroup(&c))));
    tracing::info!(pid, start_time, "detail read");
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(target: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("target".into(), json!(target));
        m
    }

    /// A child with a known command line, environment and working directory, killed on drop.
    struct Child(std::process::Child);

    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn a_child_is_described_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let child = Child(
            std::process::Command::new("sleep")
                .arg("31.5")
                .env("FLEET_DETAIL_TEST", "secret value")
                .current_dir(dir.path())
                .spawn()
                .unwrap(),
        );
        let pid = child.0.id();
        let st = start_ticks(pid).unwrap();
        let snapshot = Mutex::new(Snapshotter::new());
        // Right after the spawn the kernel may not show the new program's command line yet.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let d = loop {
            let d = detail(&snapshot, &args(&format!("{pid}@{st}"))).unwrap();
            if d["cmdline"] != "" || std::time::Instant::now() > deadline {
                break d;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert_eq!(d["pid"], pid);
        assert_eq!(d["start_time"], st);
        assert_eq!(d["cmdline"], "sleep 31.5");
        assert_eq!(d["argv"], json!(["sleep", "31.5"]));
        assert_eq!(d["environment"]["FLEET_DETAIL_TEST"], "secret value");
        assert_eq!(d["cwd"], dir.path().canonicalize().unwrap().display().to_string());
        assert_eq!(d["ppid"], std::process::id());
        assert_eq!(d["threads"], 1);
        assert!(d["open_files"].as_u64().unwrap() >= 3, "stdin, stdout and stderr at least: {d}");
        assert!(d["exe"].as_str().unwrap().ends_with("sleep"), "{d}");
        // Seconds since the epoch, within a minute of now.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert!(d["started"].as_u64().unwrap().abs_diff(now) < 60, "{d}");
        assert!(d["cgroup"].is_string(), "{d}");
        assert_eq!(d["user"].as_str().map(str::is_empty), Some(false));
    }

    #[test]
    fn a_reused_or_gone_pid_and_a_bad_target_are_refused() {
        let snapshot = Mutex::new(Snapshotter::new());
        let me = std::process::id();
        let st = start_ticks(me).unwrap();
        let e = detail(&snapshot, &args(&format!("{me}@{}", st + 1))).unwrap_err();
        assert_eq!(e.status, Status::Aborted);
        assert!(e.message.starts_with(&format!("pid reused: pid {me} now started at {st}")), "{}", e.message);

        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let pid = gone.id();
        gone.wait().unwrap();
        let e = detail(&snapshot, &args(&format!("{pid}@1"))).unwrap_err();
        assert_eq!(e.message, format!("no such process: pid {pid} has exited"));

        let e = detail(&snapshot, &args("1@2,3@4")).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (Status::InvalidData, "input 'target' must name exactly one PID@START_TIME, not '1@2,3@4'")
        );
    }

    #[test]
    fn proc_texts_are_read_as_an_admin_reads_them() {
        assert_eq!(nul_list("a\0b c\0\0"), ["a", "b c"]);
        let env = environment("B=2\0A=1=one\0EMPTY\0");
        assert_eq!(Value::Object(env), json!({"A": "1=one", "B": "2", "EMPTY": ""}));
        assert_eq!(cgroup("0::/system.slice/nginx.service\n"), "/system.slice/nginx.service");
        assert_eq!(cgroup("12:pids:/a\n11:memory:/a\n"), "12:pids:/a; 11:memory:/a");
    }

    #[test]
    fn the_agent_runs_detail_through_its_ddl() {
        let agent = super::super::ProcessAgent::new();
        let act = agent.ddl.action("detail").expect("the DDL declares detail");
        assert!(!act.destructive);
        let mut a = args(&format!("{}@{}", std::process::id(), start_ticks(std::process::id()).unwrap()));
        fleet_ddl::validate_request(&agent.ddl, "detail", &mut a).unwrap();
        let mut bad = args("12");
        assert!(fleet_ddl::validate_request(&agent.ddl, "detail", &mut bad).is_err());
    }
}
