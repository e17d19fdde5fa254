//! External agents in any language, speaking Choria's external-agent protocol: for each call the
//! node writes the request as JSON to a file, runs the executable with the request path, the reply
//! path and the protocol name as arguments (and in `CHORIA_EXTERNAL_*` environment variables), and
//! reads the JSON reply the agent wrote. The agents directory holds `NAME` (executable) beside
//! `NAME.toml` or `NAME.json` (its DDL). An activation check at load decides whether the agent is
//! active on this node. A missing, crashing, hanging or garbage-writing agent gets a clear error
//! reply; the daemon keeps running.

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
    let agent = ExternalAgent { ddl, executable };
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
        let reply = self.invoke(ACTIVATION_PROTOCOL, &request, Duration::from_secs(5)).await?;
        // An agent that does not implement the check (writes no reply) is active, as in Choria.
        Ok(reply.get("activate").and_then(Value::as_bool).unwrap_or(true))
    }

    /// Runs the executable once; returns the parsed reply file (an empty object when none was written).
    async fn invoke(&self, protocol: &str, request: &Value, timeout: Duration) -> Result<Value, ActionError> {
        let name = self.ddl.metadata.name.clone();
        let dir = tempfile::Builder::new()
            .prefix("fleet-ext-")
            .tempdir()
            .map_err(|e| ActionError::new(Status::UnknownError, format!("cannot create a temp dir: {e}")))?;
        let req_path = dir.path().join("request.json");
        let reply_path = dir.path().join("reply.json");
        std::fs::write(&req_path, serde_json::to_vec(request).unwrap_or_default())
            .map_err(|e| ActionError::new(Status::UnknownError, format!("cannot write the request file: {e}")))?;
        let mut cmd = tokio::process::Command::new(&self.executable);
        cmd.arg(&req_path)
            .arg(&reply_path)
            .arg(protocol)
            .env("CHORIA_EXTERNAL_REQUEST", &req_path)
            .env("CHORIA_EXTERNAL_REPLY", &reply_path)
            .env("CHORIA_EXTERNAL_PROTOCOL", protocol)
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
            Err(_) if status.success() => return Ok(Value::Object(Map::new())),
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
        serde_json::from_str::<Value>(&text).map_err(|e| {
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
            "request_id": meta.id,
            "sender": node.identity(),
            "caller": meta.caller,
            "collective": meta.collective,
            "ttl": meta.ttl,
            "msgtime": meta.msgtime / 1000,
            "data": Value::Object(args),
        });
        let this = ExternalAgent { ddl: self.ddl.clone(), executable: self.executable.clone() };
        // The node applies the DDL timeout around this future; the inner one is a backstop so a
        // hung agent's process group is killed even if the caller forgets.
        let timeout = Duration::from_secs(self.ddl.metadata.timeout + 1);
        Box::pin(async move {
            let reply = this.invoke(RPC_PROTOCOL, &request, timeout).await?;
            let code = reply.get("statuscode").and_then(Value::as_i64).unwrap_or(0);
            let msg = reply.get("statusmsg").and_then(Value::as_str).unwrap_or("").to_string();
            let data = reply.get("data").cloned().unwrap_or(Value::Object(Map::new()));
            if code == 0 {
                Ok(data)
            } else {
                Err(ActionError::new(status_from_code(code), if msg.is_empty() { format!("agent failed with status {code}") } else { msg }))
            }
        })
    }
}
