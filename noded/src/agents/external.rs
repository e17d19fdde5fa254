//! External agents in any language, speaking Choria's external-agent protocol: for each call the
//! node writes the request as JSON to a file, runs the executable with the request path, the reply
//! path and the protocol name as arguments (and in `CHORIA_EXTERNAL_*` environment variables), and
//! reads the JSON reply the agent wrote. The agents directory holds `NAME` (executable) beside
//! `NAME.toml` or `NAME.json` (its DDL); a Choria agent's Ruby `NAME.ddl` beside them is ignored.
//! An activation check at load decides whether the agent is active on this node. A missing,
//! crashing, hanging or garbage-writing agent gets a clear error reply; the daemon keeps running.
//!
//! As Choria does:
//! - the request file carries `$schema`, `protocol`, `agent`, `action`, `requestid`, `senderid`
//!   (this node), `callerid`, `collective`, `ttl`, `msgtime` (seconds; also as `time`) and `data`
//!   (the validated inputs); fleet's earlier `request_id`, `sender` and `caller` are also kept;
//! - the environment has `CHORIA_EXTERNAL_REQUEST`, `CHORIA_EXTERNAL_REPLY`,
//!   `CHORIA_EXTERNAL_PROTOCOL`, `CHORIA_EXTERNAL_FACTS` (a JSON file of the node's facts) and
//!   `CHORIA_EXTERNAL_CONFIG` (the agent's configuration file, `NAME.cfg` in the agents directory,
//!   fleet's `plugin.d`; the variable is set whether or not the file exists);
//! - an activation reply without `"activate": true` means inactive (an agent that writes no reply
//!   file at all and exits 0 is active, so a plain script needs no activation code);
//! - a failed reply (`statuscode` other than 0) keeps the `data` the agent returned.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use fleet_ddl::Ddl;
use fleet_protocol::Status;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tracing::{info, warn};

use super::{ActionError, ActionFuture, Agent, AgentContext, RequestMeta};

pub const RPC_PROTOCOL: &str = "io.choria.mcorpc.external.v1.rpc_request";
pub const ACTIVATION_PROTOCOL: &str = "io.choria.mcorpc.external.v1.activation_request";

pub struct ExternalAgent {
    ddl: Ddl,
    executable: PathBuf,
    /// `CHORIA_EXTERNAL_CONFIG`: `NAME.cfg` beside the agent.
    config: PathBuf,
}

/// Why an agent in the directory was not loaded.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// Scans `dir` for external agents. Returns the loaded agents and the ones refused, with why.
pub async fn scan(dir: &Path, only: Option<&str>) -> (Vec<Arc<ExternalAgent>>, Vec<Skipped>) {
    let mut loaded = Vec::new();
    let mut skipped = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            skipped.push(Skipped { name: dir.display().to_string(), reason: format!("cannot read agents directory: {e}") });
            return (loaded, skipped);
        }
    };
    let mut ddl_paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("toml") | Some("json")))
        .collect();
    ddl_paths.sort();
    for ddl_path in ddl_paths {
        let Some(stem) = ddl_path.file_stem().and_then(|s| s.to_str()).map(String::from) else { continue };
        if only.is_some_and(|o| o != stem) {
            continue;
        }
        match load_one(&ddl_path, &stem).await {
            Ok(agent) => loaded.push(Arc::new(agent)),
            Err(reason) => {
                warn!(agent = %stem, %reason, "external agent not loaded");
                skipped.push(Skipped { name: stem, reason });
            }
        }
    }
    (loaded, skipped)
}

async fn load_one(ddl_path: &Path, stem: &str) -> Result<ExternalAgent, String> {
    let ddl = Ddl::from_file(ddl_path).map_err(|e| format!("invalid DDL: {e}"))?;
    for w in ddl.warnings() {
        warn!(agent = %stem, file = %ddl_path.display(), "{w}");
    }
    if ddl.metadata.name != stem {
        return Err(format!("DDL {} declares agent '{}', expected '{stem}'", ddl_path.display(), ddl.metadata.name));
    }
    if crate::agents::AgentSet::is_builtin(stem) {
        return Err(format!("'{stem}' is a built-in agent and cannot be replaced"));
    }
    let executable = ddl_path.with_file_name(stem);
    let meta = std::fs::metadata(&executable).map_err(|e| format!("executable {} missing: {e}", executable.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{} is not an executable file", executable.display()));
    }
    let config = ddl_path.with_file_name(format!("{stem}.cfg"));
    let agent = ExternalAgent { ddl, executable, config };
    match agent.activation_check().await {
        Ok(true) => {
            info!(agent = %stem, "external agent loaded");
            Ok(agent)
        }
        Ok(false) => Err("activation check declined: not active on this node".into()),
        Err(e) => Err(format!("activation check failed: {}", e.message)),
    }
}

impl ExternalAgent {
    async fn activation_check(&self) -> Result<bool, ActionError> {
        let request = json!({
            "$schema": "https://choria.io/schemas/mcorpc/external/v1/activation_request.json",
            "protocol": ACTIVATION_PROTOCOL,
            "agent": self.ddl.metadata.name,
        });
        match self.invoke(ACTIVATION_PROTOCOL, &request, Duration::from_secs(5), None).await? {
            // No reply file and a clean exit: an agent without activation code is active.
            None => Ok(true),
            // A reply decides, and without `"activate": true` the agent is inactive, as in Choria.
            Some(reply) => Ok(reply.get("activate").and_then(Value::as_bool).unwrap_or(false)),
        }
    }

    /// Runs the executable once; returns the parsed reply file (None when none was written and
    /// the agent exited cleanly).
    async fn invoke(
        &self,
        protocol: &str,
        request: &Value,
        timeout: Duration,
        facts: Option<&Value>,
    ) -> Result<Option<Value>, ActionError> {
        let name = self.ddl.metadata.name.clone();
        let dir = tempfile::Builder::new()
            .prefix("fleet-ext-")
            .tempdir()
            .map_err(|e| ActionError::new(Status::UnknownError, format!("cannot create a temp dir: {e}")))?;
        let req_path = dir.path().join("request.json");
        let reply_path = dir.path().join("reply.json");
        let facts_path = dir.path().join("facts.json");
        let write = |path: &Path, what: &str, value: &Value| {
            std::fs::write(path, serde_json::to_vec(value).unwrap_or_default())
                .map_err(|e| ActionError::new(Status::UnknownError, format!("cannot write the {what} file: {e}")))
        };
        write(&req_path, "request", request)?;
        write(&facts_path, "facts", facts.unwrap_or(&Value::Object(Map::new())))?;
        let mut cmd = tokio::process::Command::new(&self.executable);
        cmd.arg(&req_path)
            .arg(&reply_path)
            .arg(protocol)
            .current_dir(std::env::temp_dir())
            .env("CHORIA_EXTERNAL_REQUEST", &req_path)
            .env("CHORIA_EXTERNAL_REPLY", &reply_path)
            .env("CHORIA_EXTERNAL_PROTOCOL", protocol)
            .env("CHORIA_EXTERNAL_FACTS", &facts_path)
            .env("CHORIA_EXTERNAL_CONFIG", &self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let mut child =
            cmd.spawn().map_err(|e| ActionError::new(Status::UnknownError, format!("cannot run {}: {e}", self.executable.display())))?;
        // The agent and everything it started share a process group; kill the group if we give up.
        let group = GroupKiller(child.id());
        let mut log_tasks = Vec::new();
        if let Some(out) = child.stdout.take() {
            log_tasks.push(tokio::spawn(log_lines(name.clone(), "stdout", out)));
        }
        let stderr_tail = Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(err) = child.stderr.take() {
            let tail = stderr_tail.clone();
            log_tasks.push(tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    warn!(agent = %name, stream = "stderr", "{line}");
                    let mut t = tail.lock().expect("stderr tail");
                    if t.len() < 2048 {
                        t.push_str(&line);
                        t.push('\n');
                    }
                }
            }));
        }
        let status = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ActionError::new(Status::UnknownError, format!("waiting for the agent failed: {e}"))),
            Err(_) => {
                drop(group); // kills the whole group
                return Err(ActionError::aborted(format!("timed out after {} s", timeout.as_secs())));
            }
        };
        std::mem::forget(group);
        for t in log_tasks {
            let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
        }
        let tail = stderr_tail.lock().expect("stderr tail").trim().to_string();
        let text = match std::fs::read_to_string(&reply_path) {
            Ok(t) => t,
            Err(_) if status.success() => return Ok(None),
            Err(_) => {
                return Err(ActionError::new(
                    Status::UnknownError,
                    format!(
                        "agent exited with {status} without writing a reply{}",
                        if tail.is_empty() { String::new() } else { format!(": {tail}") }
                    ),
                ));
            }
        };
        serde_json::from_str::<Value>(&text).map(Some).map_err(|e| {
            let shown: String = text.chars().take(80).collect();
            ActionError::new(Status::UnknownError, format!("agent wrote an invalid JSON reply ({e}): {shown:?}"))
        })
    }
}

async fn log_lines(agent: String, stream: &'static str, out: impl tokio::io::AsyncRead + Unpin) {
    let mut lines = BufReader::new(out).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        info!(agent = %agent, stream, "{line}");
    }
}

/// Kills a process group when dropped (unless forgotten).
struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

fn status_from_code(code: i64) -> Status {
    match code {
        0 => Status::Ok,
        1 => Status::Aborted,
        2 => Status::UnknownAction,
        3 => Status::MissingData,
        4 => Status::InvalidData,
        _ => Status::UnknownError,
    }
}

impl Agent for ExternalAgent {
    fn ddl(&self) -> &Ddl {
        &self.ddl
    }

    fn call(&self, node: Arc<dyn AgentContext>, meta: RequestMeta, action: &str, args: Map<String, Value>) -> ActionFuture {
        let request = json!({
            "$schema": "https://choria.io/schemas/mcorpc/external/v1/rpc_request.json",
            "protocol": RPC_PROTOCOL,
            "agent": self.ddl.metadata.name,
            "action": action,
            "requestid": meta.id,
            "senderid": node.identity(),
            "callerid": meta.caller,
            "collective": meta.collective,
            "ttl": meta.ttl,
            "msgtime": meta.msgtime / 1000,
            "time": meta.msgtime / 1000,
            "data": Value::Object(args),
            // fleet's earlier names, kept for agents written against them.
            "request_id": meta.id,
            "sender": node.identity(),
            "caller": meta.caller,
        });
        let facts = node.facts();
        let this = ExternalAgent { ddl: self.ddl.clone(), executable: self.executable.clone(), config: self.config.clone() };
        // The node applies the DDL timeout around this future; the inner one is a backstop so a
        // hung agent's process group is killed even if the caller forgets.
        let timeout = Duration::from_secs(self.ddl.metadata.timeout + 1);
        Box::pin(async move {
            let reply = this.invoke(RPC_PROTOCOL, &request, timeout, Some(&facts)).await?.unwrap_or_else(|| Value::Object(Map::new()));
            let code = reply.get("statuscode").and_then(Value::as_i64).unwrap_or(0);
            let msg = reply.get("statusmsg").and_then(Value::as_str).unwrap_or("").to_string();
            let data = reply.get("data").cloned().unwrap_or(Value::Object(Map::new()));
            if code == 0 {
                Ok(data)
            } else {
                let msg = if msg.is_empty() { format!("agent failed with status {code}") } else { msg };
                Err(ActionError::new(status_from_code(code), msg).with_data(data))
            }
        })
    }
}
