//! Data plugins: MCollective's data functions, answered on the node for `-S` discovery filters and
//! for the facts field of action policies (`fstat("/etc/hosts").size>10`, `process("nginx").exists=true`,
//! `puppet().enabled=false`). Each plugin takes at most one argument and returns named fields:
//!
//! | function | argument | fields |
//! |---|---|---|
//! | `fstat(PATH)` | a path | `present`, `output` (`present`/`not present`), `name`, `type` (`file`, `directory`, `symlink`, `socket`, `chardev`, `blockdev`, `fifo`), `size`, `mode` (octal, as MCollective: `100644`), `perms` (`644`), `uid`, `gid`, `md5` (regular files up to 64 MiB), `mtime` (epoch seconds; also `mtime_seconds`), `mtime_age` (seconds ago), and the same for `ctime` and `atime` |
//! | `process(NAME)` / `process("/REGEX/")` | a process name (exact, as `comm` or the basename of argv[0]), or a regex over the command line | `exists`, `count`, `pids` |
//! | `fact(NAME)` | a dotted fact name | `exists`, `value`, `type` |
//! | `agent(NAME)` | an agent name | `present`, `agent`, `description`, `author`, `license`, `version`, `timeout`, `url`, `actions` |
//! | `collective(NAME)` | a collective | `member` |
//! | `puppet()` | none | `present` (the summary file exists), `enabled` (no `agent_disabled.lock` beside it), `disable_message`, `lastrun` (epoch seconds), `since_lastrun` (seconds; also `lastrun_age`), `config_version`, `failed_resources`, `changed_resources`, `failed` (any failed resource or event) |
//!
//! Where the plugins look is configured under `[data]` in noded.toml ([`DataConfig`]): `rootfs`
//! (default `/`) prefixes every path `fstat` and `puppet` read, for a node that watches a host or
//! container mounted elsewhere (as node_exporter's `--path.rootfs`); `procfs` (default `/proc`) is
//! where `process` reads the process table; `puppet_summary` is Puppet's `last_run_summary.yaml`
//! (default `/opt/puppetlabs/puppet/cache/state/last_run_summary.yaml`).

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use fleet_protocol::NodeView;
use fleet_protocol::filter::{DataSource, lookup_fact};
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub mod md5;

/// Where Puppet writes its last run summary (AIO packages).
pub const DEFAULT_PUPPET_SUMMARY: &str = "/opt/puppetlabs/puppet/cache/state/last_run_summary.yaml";

/// `md5` is computed for regular files up to this size.
const MAX_MD5_FILE: u64 = 64 * 1024 * 1024;

/// The data plugins' names and what they take, for help pages and errors.
pub const PLUGINS: &[(&str, &str)] = &[
    ("fstat", "fstat(\"/path\"): present, type, size, mode, md5, mtime, mtime_age, uid, gid, ..."),
    ("process", "process(\"name\") or process(\"/regex/\"): exists, count, pids"),
    ("fact", "fact(\"os.family\"): exists, value, type"),
    ("agent", "agent(\"name\"): present, version, ..."),
    ("collective", "collective(\"name\"): member"),
    ("puppet", "puppet(): enabled, lastrun, since_lastrun, failed, ..."),
];

/// `[data]` in noded.toml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Prefix of every path `fstat` and `puppet` read.
    pub rootfs: PathBuf,
    /// The process table `process` reads.
    pub procfs: PathBuf,
    /// Puppet's last_run_summary.yaml (under `rootfs`).
    pub puppet_summary: PathBuf,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig { rootfs: PathBuf::from("/"), procfs: PathBuf::from("/proc"), puppet_summary: PathBuf::from(DEFAULT_PUPPET_SUMMARY) }
    }
}

/// The data plugins of one node.
#[derive(Debug, Clone, Default)]
pub struct NodeData {
    pub config: DataConfig,
    pub collectives: Vec<String>,
    pub agents_dir: Option<PathBuf>,
}

impl NodeData {
    pub fn for_config(config: &crate::config::NodeConfig) -> NodeData {
        NodeData { config: config.data.clone(), collectives: config.collectives.clone(), agents_dir: config.agents_dir.clone() }
    }

    /// Makes these the data plugins that filters evaluated in this process use.
    pub fn install(config: &crate::config::NodeConfig) {
        fleet_protocol::filter::install_data_source(Arc::new(NodeData::for_config(config)));
    }

    /// The installed plugins, or the defaults (the local host) when none are.
    pub fn current() -> Arc<dyn DataSource> {
        fleet_protocol::filter::installed_data_source().unwrap_or_else(|| Arc::new(NodeData::default()))
    }

    /// `path` under the configured root.
    fn rooted(&self, path: &str) -> PathBuf {
        let relative = path.trim_start_matches('/');
        self.config.rootfs.join(relative)
    }
}

impl DataSource for NodeData {
    fn query(&self, plugin: &str, arg: Option<&str>, node: &NodeView<'_>) -> Result<Map<String, Value>, String> {
        let need = |what: &str| arg.filter(|a| !a.is_empty()).ok_or_else(|| format!("{plugin}() needs {what}"));
        let fields = match plugin {
            "fstat" => fstat(&self.rooted(need("a path")?), need("a path")?),
            "process" => process(&self.config.procfs, need("a process name or /regex/")?)?,
            "fact" => fact(node, need("a fact name")?),
            "agent" => agent(node, self.agents_dir.as_deref(), need("an agent name")?),
            "collective" => {
                let name = need("a collective name")?;
                json!({ "member": self.collectives.iter().any(|c| c == name) })
            }
            "puppet" => puppet(&self.rooted(&self.config.puppet_summary.to_string_lossy())),
            other => {
                let known: Vec<&str> = PLUGINS.iter().map(|(n, _)| *n).collect();
                return Err(format!("unknown data function '{other}' (this node has: {})", known.join(", ")));
            }
        };
        match fields {
            Value::Object(map) => Ok(map),
            _ => Err(format!("{plugin} returned no fields")),
        }
    }
}

fn epoch(t: std::io::Result<SystemTime>) -> Option<i64> {
    let t = t.ok()?;
    Some(match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    })
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// MCollective's fstat data plugin.
pub fn fstat(path: &Path, shown: &str) -> Value {
    let Ok(lmeta) = std::fs::symlink_metadata(path) else {
        return json!({"name": shown, "present": false, "output": "not present"});
    };
    let meta = std::fs::metadata(path).unwrap_or_else(|_| lmeta.clone());
    let ft = lmeta.file_type();
    let kind = if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_file() {
        "file"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "chardev"
    } else if ft.is_block_device() {
        "blockdev"
    } else if ft.is_fifo() {
        "fifo"
    } else {
        "unknown"
    };
    let mut out = Map::new();
    out.insert("name".into(), json!(shown));
    out.insert("present".into(), json!(true));
    out.insert("output".into(), json!("present"));
    out.insert("type".into(), json!(kind));
    out.insert("size".into(), json!(meta.len()));
    out.insert("mode".into(), json!(format!("{:o}", meta.mode())));
    out.insert("perms".into(), json!(format!("{:o}", meta.mode() & 0o7777)));
    out.insert("uid".into(), json!(meta.uid()));
    out.insert("gid".into(), json!(meta.gid()));
    let now = now();
    for (name, t) in [("mtime", epoch(meta.modified())), ("atime", epoch(meta.accessed())), ("ctime", Some(meta.ctime()))] {
        if let Some(t) = t {
            out.insert(name.into(), json!(t));
            out.insert(format!("{name}_seconds"), json!(t));
            out.insert(format!("{name}_age"), json!(now - t));
        }
    }
    if meta.is_file()
        && meta.len() <= MAX_MD5_FILE
        && let Ok(mut f) = std::fs::File::open(path)
    {
        let mut sum = md5::Md5::default();
        let mut buf = vec![0u8; 64 * 1024];
        let mut ok = true;
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => sum.update(&buf[..n]),
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            out.insert("md5".into(), json!(sum.hex()));
        }
    }
    Value::Object(out)
}

/// The process data plugin: by exact name, or by `/regex/` over the command line.
pub fn process(procfs: &Path, pattern: &str) -> Result<Value, String> {
    let regex = match pattern.strip_prefix('/').and_then(|p| p.strip_suffix('/')) {
        Some(re) => Some(regex::RegexBuilder::new(re).size_limit(1 << 20).build().map_err(|e| format!("bad regex /{re}/: {e}"))?),
        None => None,
    };
    let me = std::process::id();
    let mut pids = Vec::new();
    let entries = std::fs::read_dir(procfs).map_err(|e| format!("cannot read {}: {e}", procfs.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let dir = entry.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default().trim().to_string();
        let argv: Vec<String> = std::fs::read(dir.join("cmdline"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let hit = match &regex {
            Some(re) => {
                let line = if argv.is_empty() { comm.clone() } else { argv.join(" ") };
                re.is_match(&line)
            }
            None => comm == pattern || argv.first().and_then(|a| Path::new(a).file_name()).is_some_and(|b| b == pattern),
        };
        if hit {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(json!({"exists": !pids.is_empty(), "count": pids.len(), "pids": pids}))
}

fn fact(node: &NodeView<'_>, name: &str) -> Value {
    match lookup_fact(node.facts, name) {
        None => json!({"exists": false}),
        Some(v) => {
            json!({"exists": true, "value": v, "type": fleet_ddl::json_type(v)})
        }
    }
}

fn agent(node: &NodeView<'_>, agents_dir: Option<&Path>, name: &str) -> Value {
    let present = node.agents.contains(&name);
    let mut out = json!({"agent": name, "present": present});
    if !present {
        return out;
    }
    let ddl = fleet_ddl::builtin::all()
        .into_iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, text)| fleet_ddl::Ddl::from_toml(text, name).ok())
        .or_else(|| {
            let dir = agents_dir?;
            ["toml", "json"].iter().find_map(|ext| fleet_ddl::Ddl::from_path(&dir.join(format!("{name}.{ext}"))).ok())
        });
    if let Some(d) = ddl {
        let md = &d.metadata;
        let obj = out.as_object_mut().expect("object");
        for (k, v) in [
            ("description", json!(md.description)),
            ("author", json!(md.author)),
            ("license", json!(md.license)),
            ("version", json!(md.version)),
            ("timeout", json!(md.timeout)),
            ("url", json!(md.url)),
            ("actions", json!(d.actions.keys().collect::<Vec<_>>())),
        ] {
            obj.insert(k.into(), v);
        }
    }
    out
}

fn puppet(summary: &Path) -> Value {
    let lock = summary.with_file_name("agent_disabled.lock");
    let disabled = std::fs::read_to_string(&lock).ok();
    let mut out = Map::new();
    out.insert("enabled".into(), json!(disabled.is_none()));
    let message = disabled
        .as_deref()
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .and_then(|v| v.get("disabled_message").and_then(Value::as_str).map(String::from))
        .unwrap_or_default();
    out.insert("disable_message".into(), json!(message));
    let parsed: Option<Value> = std::fs::read_to_string(summary).ok().and_then(|t| serde_norway::from_str(&t).ok());
    out.insert("present".into(), json!(parsed.is_some()));
    if let Some(s) = parsed {
        let num = |path: &str| lookup_fact(&s, path).and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|t| t.parse().ok())));
        if let Some(last) = num("time.last_run") {
            let last = last as i64;
            out.insert("lastrun".into(), json!(last));
            out.insert("since_lastrun".into(), json!(now() - last));
            out.insert("lastrun_age".into(), json!(now() - last));
        }
        if let Some(v) = lookup_fact(&s, "version.config") {
            out.insert("config_version".into(), v.clone());
        }
        let failed = num("resources.failed").unwrap_or(0.0);
        out.insert("failed_resources".into(), json!(failed as i64));
        out.insert("changed_resources".into(), json!(num("resources.changed").unwrap_or(0.0) as i64));
        out.insert("failed".into(), json!(failed > 0.0 || num("events.failure").unwrap_or(0.0) > 0.0));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests;
