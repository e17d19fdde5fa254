//! Facts and classes: a facts file (YAML, JSON or TOML, facter-style nesting) merged over the
//! built-in facts read from the system, and Puppet's classes.txt.

use std::path::Path;

use serde_json::{Map, Value, json};

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("cannot read {file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
}

/// This host's name, as the `hostname` fact and a node's default identity have it.
pub fn host_name() -> String {
    sysinfo::System::host_name().unwrap_or_else(|_| "localhost".into())
}

/// Facts every node has, read once from the system.
pub fn builtin_facts() -> Value {
    use sysinfo::System;
    let total = match System::new() {
        Ok(mut sys) => {
            sys.refresh_memory();
            sys.total_memory()
        }
        Err(_) => 0,
    };
    let hostname = host_name();
    let distro = System::distribution_id();
    let family = match distro.as_str() {
        "debian" | "ubuntu" | "linuxmint" | "raspbian" => "Debian".to_string(),
        "rhel" | "centos" | "fedora" | "rocky" | "almalinux" | "ol" | "amzn" => "RedHat".to_string(),
        "sles" | "opensuse" | "opensuse-leap" => "Suse".to_string(),
        "arch" | "manjaro" => "Archlinux".to_string(),
        other => capitalize(other),
    };
    let release = System::os_version().unwrap_or_default();
    let major = release.split('.').next().unwrap_or_default().to_string();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    json!({
        "hostname": hostname,
        "kernel": std::env::consts::OS.replace("linux", "Linux"),
        "kernelrelease": System::kernel_version().unwrap_or_default(),
        "os": { "name": System::name().unwrap_or_default(), "family": family, "release": { "full": release, "major": major } },
        "processors": { "count": cpus },
        "memory": { "system": { "total_bytes": total, "total": format!("{:.2} GiB", total as f64 / (1u64 << 30) as f64) } },
        "system_uptime": { "seconds": System::uptime().unwrap_or(0) },
    })
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Reads a facts file; the format follows the extension (.yaml/.yml, .json, .toml).
pub fn load_facts_file(path: &Path) -> Result<Value, FactsError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| FactsError::Read { file: file.clone(), source })?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let parsed: Result<Value, String> = match ext.as_str() {
        "json" => serde_json::from_str(&text).map_err(|e| e.to_string()),
        "toml" => toml::from_str::<Value>(&text).map_err(|e| e.to_string()),
        "yaml" | "yml" => serde_norway::from_str(&text).map_err(|e| e.to_string()),
        other => return Err(FactsError::Parse { file, message: format!("unknown facts format '.{other}' (use .yaml, .json or .toml)") }),
    };
    let v = parsed.map_err(|message| FactsError::Parse { file: file.clone(), message })?;
    match v {
        Value::Object(_) => Ok(v),
        Value::Null => Ok(Value::Object(Map::new())),
        _ => Err(FactsError::Parse { file, message: "facts must be a mapping of names to values".into() }),
    }
}

/// Deep-merges `over` into `base`; values in `over` win.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Reads Puppet's classes.txt: one class per line, blank lines and `#` comments skipped.
pub fn load_classes(path: &Path) -> Result<Vec<String>, FactsError> {
    let text = std::fs::read_to_string(path).map_err(|source| FactsError::Read { file: path.display().to_string(), source })?;
    Ok(parse_classes(&text))
}

pub fn parse_classes(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_each_format_load_and_merge() {
        let dir = tempfile::tempdir().unwrap();
        let y = dir.path().join("f.yaml");
        std::fs::write(&y, "country: uk\nos:\n  family: Custom\n").unwrap();
        let j = dir.path().join("f.json");
        std::fs::write(&j, r#"{"country": "us", "n": 3}"#).unwrap();
        let t = dir.path().join("f.toml");
        std::fs::write(&t, "country = \"de\"\n[os]\nfamily = \"X\"\n").unwrap();
        let mut base = builtin_facts();
        merge(&mut base, load_facts_file(&y).unwrap());
        assert_eq!(base["country"], "uk");
        assert_eq!(base["os"]["family"], "Custom");
        assert!(base["os"]["release"].is_object(), "nested builtin facts survive the merge");
        assert_eq!(load_facts_file(&j).unwrap()["n"], 3);
        assert_eq!(load_facts_file(&t).unwrap()["os"]["family"], "X");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "- a list\n").unwrap();
        assert!(load_facts_file(&bad).unwrap_err().to_string().contains("mapping"));
    }

    #[test]
    fn classes_skip_comments() {
        assert_eq!(parse_classes("# x\nbase\n\n apache \n"), vec!["base", "apache"]);
    }
}
