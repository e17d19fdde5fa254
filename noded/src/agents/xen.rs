//! xen: the domUs of a Xen dom0, read and moved with the toolstack CLI `xl` (whose path is the node
//! config key `xl_path`). `list`, `find` and `stat` parse `xl list`; `info` parses `xl info` and the
//! dom0's load average; `migrate` runs `xl migrate DOMAIN HOST`, mapping the destination dom0's
//! name to a migration address through the node's `xen_host_map`.
//!
//! xl always runs directly (never through a shell) with a time limit, and its output is parsed
//! strictly: a line that is not what xl prints is an `UnknownError` that quotes the line, so a
//! changed xl is noticed instead of being misread. The formats are those of `tools/xl/xl_info.c`.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleet_ddl::Ddl;
use fleet_protocol::Status;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tracing::{info, warn};

use super::{ActionError, ActionFuture, Agent, AgentContext, RequestMeta};
use crate::config::NodeConfig;

/// Where the dom0's load average is read. Tests and the demo point `FLEET_XEN_LOADAVG_FILE` at a
/// file the xl stand-in writes, so each simulated dom0 has its own load.
pub const LOADAVG_ENV: &str = "FLEET_XEN_LOADAVG_FILE";
const PROC_LOADAVG: &str = "/proc/loadavg";
/// Set in the environment of a node that runs fleet's xl stand-in instead of the real xl.
pub const STANDIN_ENV: &str = "XL_STANDIN_STATE";
/// `xl list` rows and the name xl gives the control domain, shared with the client through the protocol.
pub use fleet_protocol::{DOMAIN0, DomainRow};

/// How long `xl list` and `xl info` may take; they answer in milliseconds on a healthy dom0.
const QUERY_LIMIT: Duration = Duration::from_secs(20);
/// How long `xl migrate` may take: a little under the DDL timeout (300 s), so the caller gets
/// xl's own output rather than the node's bare timeout.
const MIGRATE_LIMIT: Duration = Duration::from_secs(290);
/// Most output kept from one xl run.
const OUTPUT_CAP: usize = 8 << 20;

pub struct XenAgent {
    ddl: Arc<Ddl>,
    xl: Arc<Xl>,
}

/// The xl CLI of this dom0 and the node's map of migration addresses; shared by running calls.
struct Xl {
    path: PathBuf,
    host_map: HashMap<String, String>,
    /// Set only for the stand-in: the environment its runs get and where its load average is.
    standin: Option<Standin>,
}

struct Standin {
    env: Vec<(String, String)>,
    loadavg: PathBuf,
}

/// Whether the xen agent should be active here: `xl` exists and is executable.
pub fn activation_check(xl_path: &Path) -> bool {
    std::fs::metadata(xl_path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl XenAgent {
    /// The agent on the node's `xl_path` and `xen_host_map`, when that xl passes the activation
    /// check; `None` on a host without Xen.
    pub fn for_config(config: &NodeConfig) -> Option<XenAgent> {
        if !activation_check(&config.xl_path) {
            tracing::debug!(xl = %config.xl_path.display(), "xen agent inactive: no executable xl there");
            return None;
        }
        info!(xl = %config.xl_path.display(), "xen agent active");
        let map: HashMap<String, String> = config.xen_host_map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Some(XenAgent::new(config.xl_path.clone(), map))
    }

    pub fn new(xl_path: PathBuf, host_map: HashMap<String, String>) -> XenAgent {
        XenAgent { ddl: super::builtin_ddl("xen", fleet_ddl::builtin::XEN), xl: Arc::new(Xl { path: xl_path, host_map, standin: None }) }
    }

    /// An agent on fleet's xl stand-in playing dom0 `dom0` over the shared `state_dir`, for nodes
    /// that run in one process (`fleet demo`) and so cannot each have their own environment. The
    /// stand-in gets `XL_STANDIN_STATE` and `XL_STANDIN_HOST` in its own environment, and the load
    /// average comes from `<state_dir>/<dom0>.loadavg`, which the stand-in's `seed` and `load` write.
    pub fn simulated(standin_path: PathBuf, state_dir: &Path, dom0: &str, host_map: HashMap<String, String>) -> XenAgent {
        let env = vec![(STANDIN_ENV.to_string(), state_dir.display().to_string()), ("XL_STANDIN_HOST".to_string(), dom0.to_string())];
        let standin = Standin { env, loadavg: state_dir.join(format!("{dom0}.loadavg")) };
        let xl = Xl { path: standin_path, host_map, standin: Some(standin) };
        XenAgent { ddl: super::builtin_ddl("xen", fleet_ddl::builtin::XEN), xl: Arc::new(xl) }
    }
}

// -------------------------------------------------------------------------------------------------
// Parsing

/// xl output that is not what xl prints: which command, which line, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse `{command}` output line {line_no} ({reason}): {line:?}")]
pub struct ParseError {
    pub command: &'static str,
    pub line_no: usize,
    pub line: String,
    pub reason: String,
}

/// The shutdown reason letters of `xl list`, by libxl's shutdown reason code.
const SHUTDOWN_REASONS: [(char, &str); 6] =
    [('-', ""), ('r', "reboot"), ('s', "suspend"), ('c', "crash"), ('w', "watchdog"), ('S', "soft_reset")];

fn is_list_header(line: &str) -> bool {
    line.starts_with("Name") && line.contains("VCPUs") && line.contains("State")
}

/// Splits off the last whitespace-separated field.
fn pop_field(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_end();
    match s.rsplit_once(char::is_whitespace) {
        Some((rest, last)) if !last.is_empty() => Some((rest, last)),
        _ => None,
    }
}

/// Parses one `xl list` row (`"%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f"`). Read from the right,
/// so a name longer than 40 columns, which pushes the other columns right, still parses.
pub fn parse_list_row(line: &str) -> Result<DomainRow, String> {
    let (rest, time) = pop_field(line).ok_or("expected name, id, memory, vcpus, state and time")?;
    let cpu_time: f64 = time.parse().map_err(|_| format!("time '{time}' is not a number of seconds"))?;
    if !cpu_time.is_finite() || cpu_time < 0.0 {
        return Err(format!("time '{time}' is not a number of seconds"));
    }
    let (rest, state) = pop_field(rest).ok_or("no state column")?;
    let (rest, vcpus) = pop_field(rest).ok_or("no vcpus column")?;
    let (rest, mem) = pop_field(rest).ok_or("no memory column")?;
    let (rest, id) = pop_field(rest).ok_or("no id column")?;
    let name = rest.trim();
    if name.is_empty() {
        return Err("no name column".into());
    }
    let vcpus: u32 = vcpus.parse().map_err(|_| format!("vcpus '{vcpus}' is not a count"))?;
    let mem: u64 = mem.parse().map_err(|_| format!("memory '{mem}' is not a number of MiB"))?;
    let id: u32 = id.parse().map_err(|_| format!("id '{id}' is not a domain id"))?;
    let flags: Vec<char> = state.chars().collect();
    if flags.len() != 6 {
        return Err(format!("state '{state}' is not six flags"));
    }
    let flag = |i: usize, letter: char| -> Result<bool, String> {
        match flags[i] {
            c if c == letter => Ok(true),
            '-' => Ok(false),
            c => Err(format!("state '{state}' has '{c}' where '{letter}' or '-' belongs")),
        }
    };
    let running = flag(0, 'r')?;
    let blocked = flag(1, 'b')?;
    let paused = flag(2, 'p')?;
    let shutdown = flag(3, 's')?;
    let shutdown_reason = SHUTDOWN_REASONS
        .iter()
        .find(|(c, _)| *c == flags[4])
        .map(|(_, r)| r.to_string())
        .ok_or_else(|| format!("state '{state}' has the unknown shutdown reason '{}'", flags[4]))?;
    let dying = flag(5, 'd')?;
    Ok(DomainRow {
        name: name.to_string(),
        id,
        mem,
        vcpus,
        state: state.to_string(),
        running,
        blocked,
        paused,
        shutdown,
        shutdown_reason,
        dying,
        cpu_time,
    })
}

/// Parses the whole of `xl list`: an optional header, then one row per domain.
pub fn parse_xl_list(text: &str) -> Result<Vec<DomainRow>, ParseError> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if rows.is_empty() && is_list_header(line) {
            continue;
        }
        let row =
            parse_list_row(line).map_err(|reason| ParseError { command: "xl list", line_no: i + 1, line: line.to_string(), reason })?;
        rows.push(row);
    }
    Ok(rows)
}

/// What `xl info` says about the host.
#[derive(Debug, Clone, PartialEq)]
pub struct XlInfo {
    pub nr_cpus: u64,
    /// MiB.
    pub total_memory: u64,
    /// MiB.
    pub free_memory: u64,
    pub xen_version: String,
    /// Every field as printed.
    pub fields: BTreeMap<String, String>,
}

/// `xl info` pads each field name to this many columns.
const INFO_NAME_WIDTH: usize = 23;

/// Parses `xl info`: each line is a name padded to 23 columns, then `: value`.
pub fn parse_xl_info(text: &str) -> Result<XlInfo, ParseError> {
    let mut fields = BTreeMap::new();
    let mut lines_of = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: &str| ParseError { command: "xl info", line_no: i + 1, line: line.to_string(), reason: reason.to_string() };
        let (padded, value) = line.split_once(':').ok_or_else(|| bad("no 'name : value'"))?;
        let key = padded.trim_end();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(bad("the field name is not a lowercase word"));
        }
        if padded.len() < INFO_NAME_WIDTH {
            return Err(bad("the field name is not padded to 23 columns"));
        }
        fields.insert(key.to_string(), value.trim().to_string());
        lines_of.insert(key.to_string(), (i + 1, line.to_string()));
    }
    let number = |key: &str| -> Result<u64, ParseError> {
        let Some(v) = fields.get(key) else {
            return Err(ParseError { command: "xl info", line_no: 0, line: String::new(), reason: format!("no {key} field") });
        };
        v.parse().map_err(|_| {
            let (line_no, line) = lines_of[key].clone();
            ParseError { command: "xl info", line_no, line, reason: format!("{key} is not a whole number") }
        })
    };
    let xen_version = match (fields.get("xen_version"), fields.get("xen_major"), fields.get("xen_minor")) {
        (Some(v), _, _) => v.clone(),
        (None, Some(major), Some(minor)) => format!("{major}.{minor}{}", fields.get("xen_extra").map(String::as_str).unwrap_or("")),
        _ => String::new(),
    };
    Ok(XlInfo {
        nr_cpus: number("nr_cpus")?,
        total_memory: number("total_memory")?,
        free_memory: number("free_memory")?,
        xen_version,
        fields,
    })
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg` text.
pub fn parse_loadavg(text: &str) -> Result<[f64; 3], String> {
    let mut parts = text.split_whitespace();
    let mut load = [0.0; 3];
    for slot in &mut load {
        let field = parts.next().ok_or_else(|| format!("load average {:?} has fewer than three numbers", text.trim()))?;
        *slot = field
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("load average field '{field}' is not a number"))?;
    }
    Ok(load)
}

// -------------------------------------------------------------------------------------------------
// Running xl

/// What one xl run printed.
struct XlRun {
    success: bool,
    status: String,
    stdout: String,
    /// stdout and stderr interleaved as the lines came.
    combined: String,
}

fn unknown(message: impl Into<String>) -> ActionError {
    ActionError::new(Status::UnknownError, message)
}

/// The last `n` lines of `text`, for error messages.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

async fn collect_lines(stream: impl AsyncRead + Unpin, into: Option<&Mutex<String>>, combined: &Mutex<String>, log: Option<(&str, &str)>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some((request, stream_name)) = log {
            info!(agent = "xen", request, stream = stream_name, "xl: {line}");
        }
        for buf in into.into_iter().chain(std::iter::once(combined)) {
            let mut b = buf.lock().expect("xl output buffer");
            if b.len() < OUTPUT_CAP {
                b.push_str(&line);
                b.push('\n');
            }
        }
    }
}

impl Xl {
    fn spawn_error(&self, e: std::io::Error) -> ActionError {
        let xl = self.path.display();
        match e.kind() {
            std::io::ErrorKind::NotFound => {
                unknown(format!("xl not found at {xl}: this node has no Xen toolstack there (the node config key xl_path names it)"))
            }
            std::io::ErrorKind::PermissionDenied => unknown(format!("xl at {xl} cannot be run: {e}")),
            _ => unknown(format!("cannot run {xl}: {e}")),
        }
    }

    /// Runs `xl ARGS` without a shell, within `limit`. `log` (request id) streams each output line
    /// to the node's log as it comes, for long runs an operator may want to follow.
    async fn run_xl(&self, args: &[&str], limit: Duration, log: Option<&str>) -> Result<XlRun, ActionError> {
        let shown = format!("xl {}", args.join(" "));
        let mut cmd = tokio::process::Command::new(&self.path);
        if let Some(standin) = &self.standin {
            cmd.envs(standin.env.iter().map(|(k, v)| (k, v)));
        }
        let mut child = cmd
            .args(args)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let stdout = Mutex::new(String::new());
        let combined = Mutex::new(String::new());
        let status = {
            let run = async {
                let (_, _, status) = tokio::join!(
                    collect_lines(out, Some(&stdout), &combined, log.map(|r| (r, "stdout"))),
                    collect_lines(err, None, &combined, log.map(|r| (r, "stderr"))),
                    child.wait(),
                );
                status
            };
            tokio::time::timeout(limit, run).await
        };
        let status = match status {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(unknown(format!("waiting for `{shown}` failed: {e}"))),
            Err(_) => {
                let _ = child.start_kill();
                let so_far = tail(&combined.into_inner().unwrap_or_default(), 5);
                return Err(ActionError::aborted(format!(
                    "`{shown}` did not finish within {} s and was killed{}",
                    limit.as_secs_f64(),
                    if so_far.is_empty() { String::new() } else { format!("; it last said:\n{so_far}") }
                )));
            }
        };
        Ok(XlRun {
            success: status.success(),
            status: status.to_string(),
            stdout: stdout.into_inner().unwrap_or_default(),
            combined: combined.into_inner().unwrap_or_default(),
        })
    }

    /// `xl list`, parsed; a failed run or an unparsable line is an error.
    async fn xl_list(&self) -> Result<Vec<DomainRow>, ActionError> {
        let run = self.run_xl(&["list"], QUERY_LIMIT, None).await?;
        if !run.success {
            return Err(unknown(format!("`xl list` failed ({}): {}", run.status, tail(&run.combined, 5))));
        }
        parse_xl_list(&run.stdout).map_err(|e| unknown(e.to_string()))
    }

    async fn xl_info(&self) -> Result<XlInfo, ActionError> {
        let run = self.run_xl(&["info"], QUERY_LIMIT, None).await?;
        if !run.success {
            return Err(unknown(format!("`xl info` failed ({}): {}", run.status, tail(&run.combined, 5))));
        }
        parse_xl_info(&run.stdout).map_err(|e| unknown(e.to_string()))
    }
}

impl Xl {
    /// Whether this is fleet's stand-in rather than a real hypervisor.
    fn simulated(&self) -> bool {
        self.standin.is_some() || std::env::var_os(STANDIN_ENV).is_some()
    }

    /// The dom0's load average: /proc/loadavg, or the file the stand-in keeps for this dom0.
    async fn load_average(&self) -> Result<[f64; 3], ActionError> {
        let path = match &self.standin {
            Some(s) => s.loadavg.clone(),
            None => std::env::var_os(LOADAVG_ENV).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(PROC_LOADAVG)),
        };
        load_average_from(&path).await
    }
}

async fn load_average_from(path: &Path) -> Result<[f64; 3], ActionError> {
    let text =
        tokio::fs::read_to_string(path).await.map_err(|e| unknown(format!("cannot read the load average from {}: {e}", path.display())))?;
    parse_loadavg(&text).map_err(|e| unknown(format!("{}: {e}", path.display())))
}

fn row_json(row: &DomainRow) -> Value {
    serde_json::to_value(row).unwrap_or(Value::Null)
}

// -------------------------------------------------------------------------------------------------
// Actions

async fn list(agent: &Xl) -> Result<Value, ActionError> {
    let rows = agent.xl_list().await?;
    let (dom0, domus): (Vec<DomainRow>, Vec<DomainRow>) = rows.into_iter().partition(DomainRow::is_dom0);
    let domu_memory: u64 = domus.iter().map(|d| d.mem).sum();
    Ok(json!({
        "domus": domus.iter().map(row_json).collect::<Vec<_>>(),
        "dom0": dom0.first().map(row_json).unwrap_or_else(|| json!({})),
        "domu_count": domus.len(),
        "domu_memory": domu_memory,
    }))
}

async fn info(agent: &Xl) -> Result<Value, ActionError> {
    let info = agent.xl_info().await?;
    let [l1, l5, l15] = agent.load_average().await?;
    Ok(json!({
        "nr_cpus": info.nr_cpus,
        "total_memory": info.total_memory,
        "free_memory": info.free_memory,
        "xen_version": info.xen_version,
        "load_1": l1,
        "load_5": l5,
        "load_15": l15,
        "simulated": agent.simulated(),
        "fields": info.fields,
    }))
}

async fn find(agent: &Xl, args: &Map<String, Value>) -> Result<Value, ActionError> {
    let name = args.get("domain").and_then(Value::as_str).unwrap_or("");
    let rows = agent.xl_list().await?;
    Ok(match rows.iter().find(|r| r.name == name) {
        Some(row) => json!({ "present": true, "domu": row_json(row) }),
        None => json!({ "present": false, "domu": {} }),
    })
}

async fn stat(agent: &Xl) -> Result<Value, ActionError> {
    let rows = agent.xl_list().await?;
    let [l1, l5, l15] = agent.load_average().await?;
    let domus: Vec<Value> = rows.iter().filter(|r| !r.is_dom0()).map(row_json).collect();
    Ok(json!({ "load_1": l1, "load_5": l5, "load_15": l15, "domu_count": domus.len(), "domus": domus }))
}

/// The address xl migrates to: the caller's, else the node's map entry, else the name itself.
pub fn migration_address(destination: &str, address: &str, host_map: &HashMap<String, String>) -> String {
    if !address.is_empty() { address.to_string() } else { host_map.get(destination).cloned().unwrap_or_else(|| destination.to_string()) }
}

async fn migrate(agent: &Xl, node: &dyn AgentContext, meta: &RequestMeta, args: &Map<String, Value>) -> Result<Value, ActionError> {
    let s = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (domain, destination) = (s("domain"), s("destination"));
    let address = migration_address(&destination, &s("address"), &agent.host_map);
    // The DDL already refuses these; a node checks again because xl reads a leading '-' as an option.
    if domain.is_empty() || domain.starts_with('-') {
        return Err(ActionError::invalid(format!("'{domain}' is not a domU name")));
    }
    if address.is_empty() || address.starts_with('-') {
        return Err(ActionError::invalid(format!("'{address}' is not a migration address (destination '{destination}')")));
    }
    if destination == node.identity() {
        return Err(ActionError::invalid(format!("{domain} is to move to {destination}, which is this dom0")));
    }
    let rows = agent.xl_list().await?;
    let Some(row) = rows.iter().find(|r| r.name == domain) else {
        return Err(ActionError::aborted(format!("domU '{domain}' does not run on {}", node.identity())));
    };
    if row.is_dom0() {
        return Err(ActionError::invalid(format!("{} is the control domain and never migrates", row.name)));
    }
    info!(agent = "xen", request = %meta.id, caller = %meta.caller, %domain, %destination, %address, "migrating");
    let started = Instant::now();
    let run = agent.run_xl(&["migrate", &domain, &address], MIGRATE_LIMIT, Some(&meta.id)).await?;
    let elapsed = started.elapsed().as_secs_f64();
    if !run.success {
        warn!(agent = "xen", request = %meta.id, %domain, %destination, status = %run.status, "migration failed");
        return Err(ActionError::aborted(format!(
            "xl migrate {domain} {address} failed ({}) after {elapsed:.1} s:\n{}",
            run.status,
            tail(&run.combined, 12)
        )));
    }
    info!(agent = "xen", request = %meta.id, %domain, %destination, elapsed_s = elapsed, "migration successful");
    Ok(json!({
        "success": true,
        "domain": domain,
        "destination": destination,
        "address": address,
        "output": run.combined,
        "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
    }))
}

impl Agent for XenAgent {
    fn ddl(&self) -> &Ddl {
        &self.ddl
    }

    fn call(&self, node: Arc<dyn AgentContext>, meta: RequestMeta, action: &str, args: Map<String, Value>) -> ActionFuture {
        let agent = self.xl.clone();
        let action = action.to_string();
        Box::pin(async move {
            match action.as_str() {
                "list" => list(&agent).await,
                "info" => info(&agent).await,
                "find" => find(&agent, &args).await,
                "stat" => stat(&agent).await,
                "migrate" => migrate(&agent, &*node, &meta, &args).await,
                other => Err(ActionError::new(Status::UnknownAction, format!("xen has no action '{other}'"))),
            }
        })
    }
}

#[cfg(test)]
mod tests;
