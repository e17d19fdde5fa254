//! Link-key enrollment on the hub, like salt-key: an unknown key that attempts a handshake is
//! written to `pending/` and refused; an admin accepts it (`noded hub enroll --accept NAME`),
//! which moves it to `accepted/NAME.pub`, or rejects it. Keys are never accepted silently.
//!
//! Layout of the enrollment directory:
//! ```text
//! accepted/<name>.pub     enrolled nodes and consoles; the file name is the peer's proven name
//! pending/<name>.pub      keys that knocked, named after the name they claimed
//! rejected/<name>.pub     keys an admin refused; they stay refused
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use fleet_protocol::keys::PublicKeys;

/// Accepted link keys: X25519 public key -> enrolled name. Re-read when the directory changes.
pub struct Enrollment {
    dir: PathBuf,
    accepted: HashMap<[u8; 32], String>,
    stamp: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted(String),
    /// Unknown key: recorded under pending/ with this name.
    Pending(String),
    Rejected(String),
}

fn dir_stamp(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir).and_then(|m| m.modified()).ok()
}

/// A key file that holds only a link key (what the hub learns from a handshake).
const LINK_ONLY_FORMAT: &str = "fleet-link-key-v1";

fn read_link_only(path: &Path) -> Option<[u8; 32]> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(path).ok()?;
    let v: toml::Table = toml::from_str(&text).ok()?;
    if v.get("format")?.as_str()? != LINK_ONLY_FORMAT {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(v.get("link")?.as_str()?).ok()?;
    bytes.try_into().ok()
}

fn link_only_text(name: &str, link: &[u8; 32]) -> String {
    use base64::Engine as _;
    format!(
        "# link key of {name}, recorded by the hub from a handshake\nformat = \"{LINK_ONLY_FORMAT}\"\nlink = \"{}\"\n",
        base64::engine::general_purpose::STANDARD.encode(link)
    )
}

/// (name, link key) of every key file in `dir`.
fn read_keys(dir: &Path) -> Vec<(String, [u8; 32])> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.extension().is_none_or(|e| e != "pub") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else { continue };
        match PublicKeys::load(&path).map(|k| k.link).or_else(|e| read_link_only(&path).ok_or(e)) {
            Ok(link) => out.push((name.to_string(), link)),
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "ignoring enrollment key"),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A claimed name made safe to use as a file name.
fn safe_name(claimed: &str) -> String {
    let s: String =
        claimed.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '=') { c } else { '_' }).collect();
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() { "unnamed".into() } else { s }
}

impl Enrollment {
    pub fn open(dir: &Path) -> std::io::Result<Enrollment> {
        for sub in ["accepted", "pending", "rejected"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let mut e = Enrollment { dir: dir.to_path_buf(), accepted: HashMap::new(), stamp: None };
        e.refresh();
        Ok(e)
    }

    fn refresh(&mut self) {
        let stamp = dir_stamp(&self.dir.join("accepted"));
        if stamp.is_some() && stamp == self.stamp {
            return;
        }
        self.accepted = read_keys(&self.dir.join("accepted")).into_iter().map(|(n, k)| (k, n)).collect();
        self.stamp = stamp;
    }

    /// Decides on a link key that completed the first half of a handshake.
    pub fn check(&mut self, link_key: &[u8; 32], claimed: &str) -> Verdict {
        self.refresh();
        if !self.accepted.contains_key(link_key) {
            // The directory's mtime may not have moved within its granularity: look again.
            self.stamp = None;
            self.refresh();
        }
        if let Some(name) = self.accepted.get(link_key) {
            return Verdict::Accepted(name.clone());
        }
        if let Some((name, _)) = read_keys(&self.dir.join("rejected")).into_iter().find(|(_, k)| k == link_key) {
            return Verdict::Rejected(name);
        }
        let pending = read_keys(&self.dir.join("pending"));
        if let Some((name, _)) = pending.iter().find(|(_, k)| k == link_key) {
            return Verdict::Pending(name.clone());
        }
        // Record it for an admin to look at. Only the link key is known from the handshake.
        let mut name = safe_name(claimed);
        if pending.iter().any(|(n, _)| *n == name) || self.accepted.values().any(|n| *n == name) {
            name = format!("{name}-{}", hex8(link_key));
        }
        let path = self.dir.join("pending").join(format!("{name}.pub"));
        if let Err(e) = std::fs::write(&path, link_only_text(&name, link_key)) {
            tracing::error!(file = %path.display(), error = %e, "cannot record a pending link key");
        }
        tracing::warn!(claimed, pending = %name, "unknown link key refused; accept it with `noded hub enroll --accept {name}`");
        Verdict::Pending(name)
    }
}

fn hex8(k: &[u8; 32]) -> String {
    k.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// `noded hub enroll --list`: every key and its state.
pub fn list(dir: &Path) -> Vec<(String, &'static str, String)> {
    let mut out = Vec::new();
    for (sub, state) in [("accepted", "accepted"), ("pending", "pending"), ("rejected", "rejected")] {
        for (name, k) in read_keys(&dir.join(sub)) {
            out.push((name, state, hex8(&k)));
        }
    }
    out
}

/// Moves `name` from pending (or rejected) to accepted.
pub fn accept(dir: &Path, name: &str) -> Result<PathBuf, String> {
    move_key(dir, name, &["pending", "rejected"], "accepted")
}

/// Moves `name` from pending (or accepted) to rejected.
pub fn reject(dir: &Path, name: &str) -> Result<PathBuf, String> {
    move_key(dir, name, &["pending", "accepted"], "rejected")
}

/// Enrolls a public key file directly (the admin copied it from the node), as `name`.
pub fn add(dir: &Path, name: &str, pub_file: &Path) -> Result<PathBuf, String> {
    fleet_protocol::keys::check_name(name).map_err(|e| e.to_string())?;
    let keys = PublicKeys::load(pub_file).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.join("accepted")).map_err(|e| e.to_string())?;
    let to = dir.join("accepted").join(format!("{name}.pub"));
    std::fs::write(&to, keys.to_file_text(name)).map_err(|e| format!("{}: {e}", to.display()))?;
    Ok(to)
}

fn move_key(dir: &Path, name: &str, from: &[&str], to: &str) -> Result<PathBuf, String> {
    fleet_protocol::keys::check_name(name).map_err(|e| e.to_string())?;
    for sub in from {
        let src = dir.join(sub).join(format!("{name}.pub"));
        if src.exists() {
            std::fs::create_dir_all(dir.join(to)).map_err(|e| e.to_string())?;
            let dst = dir.join(to).join(format!("{name}.pub"));
            std::fs::rename(&src, &dst).map_err(|e| format!("{} -> {}: {e}", src.display(), dst.display()))?;
            return Ok(dst);
        }
    }
    Err(format!("no key named '{name}' in {} ({})", dir.display(), from.join(" or ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_protocol::keys::KeyPair;

    #[test]
    fn unknown_keys_wait_and_are_never_accepted_silently() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Enrollment::open(dir.path()).unwrap();
        let node = KeyPair::generate().public();
        assert_eq!(e.check(&node.link, "web-01"), Verdict::Pending("web-01".into()));
        assert_eq!(e.check(&node.link, "web-01"), Verdict::Pending("web-01".into()), "still pending");
        assert_eq!(list(dir.path()), vec![("web-01".to_string(), "pending", hex8(&node.link))]);
        accept(dir.path(), "web-01").unwrap();
        assert_eq!(e.check(&node.link, "whatever"), Verdict::Accepted("web-01".into()), "the name comes from enrollment");
        reject(dir.path(), "web-01").unwrap();
        assert_eq!(e.check(&node.link, "web-01"), Verdict::Rejected("web-01".into()));
        assert!(accept(dir.path(), "nope").is_err());
        assert!(accept(dir.path(), "../etc").is_err());
    }
}
