//! The node keys a console checks reply signatures with. Reading them costs a file and an ed25519
//! point decompression per node (about 9 µs each, so 9 ms for 1,000 nodes), which a CLI would
//! otherwise pay before it even connects. [`NodeKeys::load_in_background`] reads them on a thread
//! of its own while the links connect and the request goes out; the first reply to be checked
//! waits for them.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use fleet_protocol::keys::Keyring;

/// A shared, possibly still loading, set of trusted node keys.
#[derive(Clone, Debug)]
pub struct NodeKeys(Arc<OnceLock<Keyring>>);

impl Default for NodeKeys {
    /// No node keys: replies are reported as unchecked.
    fn default() -> Self {
        NodeKeys::ready(Keyring::default())
    }
}

/// Fills the cell when the loading thread ends, however it ends: a loader that panicked leaves
/// an empty ring rather than a console waiting for ever.
struct Fill(Arc<OnceLock<Keyring>>);

impl Drop for Fill {
    fn drop(&mut self) {
        let _ = self.0.set(Keyring::default());
    }
}

impl NodeKeys {
    pub fn ready(ring: Keyring) -> NodeKeys {
        NodeKeys(Arc::new(OnceLock::from(ring)))
    }

    /// Starts reading the `*.pub` keys of `dir`. A directory that cannot be read leaves no keys,
    /// and `warn` is told why (from the loading thread).
    pub fn load_in_background(dir: PathBuf, warn: impl FnOnce(String) + Send + 'static) -> NodeKeys {
        let read = |dir: &std::path::Path| Keyring::load(dir).map_err(|e| format!("cannot read node keys in {}: {e}", dir.display()));
        let cell = Arc::new(OnceLock::new());
        let filler = cell.clone();
        let here = dir.clone();
        let spawned = std::thread::Builder::new().name("node-keys".into()).spawn(move || {
            let fill = Fill(filler);
            let _ = fill.0.set(read(&dir).unwrap_or_else(|why| {
                warn(why);
                Keyring::default()
            }));
        });
        if spawned.is_err() {
            // No thread to be had (the closure, and with it `warn`, is gone): read them here.
            let _ = cell.set(read(&here).unwrap_or_else(|why| {
                tracing::warn!("{why}");
                Keyring::default()
            }));
        }
        NodeKeys(cell)
    }

    /// The keys, waiting for them if they are still being read (at most the time the loading
    /// takes, once per process).
    pub fn get(&self) -> &Keyring {
        self.0.wait()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_in_the_background_are_there_when_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let keys_dir = dir.path().join("nodes");
        std::fs::create_dir(&keys_dir).unwrap();
        std::fs::set_permissions(&keys_dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let pair = fleet_protocol::keys::KeyPair::generate();
        pair.save(&keys_dir, "web-01").unwrap();
        let keys = NodeKeys::load_in_background(keys_dir, |why| panic!("{why}"));
        assert!(keys.clone().get().get("web-01").is_some());
        assert_eq!(keys.get().len(), 1);
    }

    #[test]
    fn a_missing_directory_leaves_no_keys_and_says_why() {
        let (tx, rx) = std::sync::mpsc::channel();
        let keys = NodeKeys::load_in_background(PathBuf::from("/nonexistent/fleet-nodes"), move |why| tx.send(why).unwrap());
        assert!(keys.get().is_empty());
        assert!(rx.recv().unwrap().contains("/nonexistent/fleet-nodes"));
        assert!(NodeKeys::default().get().is_empty());
    }
}
