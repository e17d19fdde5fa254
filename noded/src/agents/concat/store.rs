//! Fragments on disk: one private directory per target under `<state_dir>/concat/`, named by the
//! SHA-256 of the target's path (any path fits in a file name), holding a `target` file with the
//! path itself and one `<name>.json` per fragment. Every file is replaced atomically.

use std::io;
use std::path::{Path, PathBuf};

use fleet_protocol::files::{create_private_dir, write_atomically};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The file in a target's directory that names the target.
const TARGET_FILE: &str = "target";
const FRAGMENT_EXT: &str = "json";

/// One fragment: inline content, or a file whose content is read at every build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fragment {
    pub name: String,
    pub order: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
}

/// The fragment store of one node.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// The store under `dir` (`<state_dir>/concat`); created on the first fragment.
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    fn target_dir(&self, target: &Path) -> PathBuf {
        self.dir.join(&sha256_hex(target.as_os_str().as_encoded_bytes())[..32])
    }

    fn fragment_file(&self, target: &Path, name: &str) -> PathBuf {
        self.target_dir(target).join(format!("{name}.{FRAGMENT_EXT}"))
    }

    /// Stores `fragment` for `target`, replacing one of the same name. Returns whether the stored
    /// fragment changed.
    pub fn add(&self, target: &Path, fragment: &Fragment) -> io::Result<bool> {
        let dir = self.target_dir(target);
        create_private_dir(&dir)?;
        let marker = dir.join(TARGET_FILE);
        if !marker.exists() {
            write_atomically(&marker, target.as_os_str().as_encoded_bytes(), 0o600)?;
        }
        let file = self.fragment_file(target, &fragment.name);
        let bytes = serde_json::to_vec_pretty(fragment).map_err(io::Error::other)?;
        if std::fs::read(&file).ok().as_deref() == Some(bytes.as_slice()) {
            return Ok(false);
        }
        write_atomically(&file, &bytes, 0o600)?;
        Ok(true)
    }

    /// Removes `target`'s fragment `name`; the target's directory goes with its last fragment.
    /// Returns whether there was such a fragment.
    pub fn remove(&self, target: &Path, name: &str) -> io::Result<bool> {
        match std::fs::remove_file(self.fragment_file(target, name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        }
        if self.fragments(target)?.is_empty() {
            std::fs::remove_dir_all(self.target_dir(target))?;
        }
        Ok(true)
    }

    /// `target`'s fragments in build order: by order, then by name.
    pub fn fragments(&self, target: &Path) -> io::Result<Vec<Fragment>> {
        let entries = match std::fs::read_dir(self.target_dir(target)) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(FRAGMENT_EXT) {
                continue;
            }
            let bytes = std::fs::read(&path)?;
            let fragment: Fragment = serde_json::from_slice(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("fragment file {} is damaged: {e}", path.display())))?;
            out.push(fragment);
        }
        out.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    /// Every target with fragments, sorted, with its fragment count.
    pub fn targets(&self) -> io::Result<Vec<(String, usize)>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let Ok(target) = std::fs::read_to_string(entry?.path().join(TARGET_FILE)) else { continue };
            let count = self.fragments(Path::new(&target))?.len();
            out.push((target, count));
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(name: &str, order: i64, content: &str) -> Fragment {
        Fragment { name: name.into(), order, content: Some(content.into()), source: None }
    }

    #[test]
    fn fragments_come_back_by_order_then_name_and_go_with_their_target() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("concat"));
        let target = Path::new("/etc/app/app.conf");
        assert!(store.add(target, &inline("b", 10, "B")).unwrap());
        assert!(store.add(target, &inline("a", 10, "A")).unwrap());
        assert!(store.add(target, &inline("z", 1, "Z")).unwrap());
        assert!(!store.add(target, &inline("z", 1, "Z")).unwrap(), "the same fragment again changes nothing");
        let names: Vec<String> = store.fragments(target).unwrap().into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["z", "a", "b"]);
        assert_eq!(store.targets().unwrap(), [("/etc/app/app.conf".to_string(), 3)]);
        assert!(store.remove(target, "a").unwrap());
        assert!(!store.remove(target, "a").unwrap());
        store.remove(target, "b").unwrap();
        store.remove(target, "z").unwrap();
        assert!(store.targets().unwrap().is_empty(), "the last fragment takes the target's directory with it");
    }
}
