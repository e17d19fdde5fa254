//! The policy directory: `<dir>/<agent>.policy` and the groups file, read on first use, cached,
//! re-read when a file changes, with the policies the hub distributed under them.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use fleet_protocol::NodeView;

use super::{Decision, GROUPS_FILE, Groups, MAX_POLICY_FILE, POLICY_EXT, Policy, allow_word};

/// What identifies one version of a file: a rewrite in place changes mtime (and usually the
/// length), an atomic replace changes the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    device: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp { modified: meta.modified().ok(), len: meta.len(), inode: meta.ino(), device: meta.dev() }
    }
}

#[derive(Debug)]
enum Loaded {
    /// No policy file: the node default applies.
    Missing,
    Parsed(Policy),
    /// Unreadable or invalid: everything is denied, and this says why.
    Broken(String),
}

#[derive(Debug, Clone)]
struct Cached {
    stamp: Option<Stamp>,
    loaded: Arc<Loaded>,
}

/// The node's policies: `<dir>/<agent>.policy`, read on first use, cached, and re-read when the
/// file changes (checked with one `stat` per decision). A missing file gives the node default
/// (deny unless configured otherwise); a file that cannot be read or parsed denies everything
/// for its agent, logged once per version of the file.
/// The groups file as read (or why it could not be), and the stamp it was read at.
type GroupsRead = (Option<Stamp>, Arc<Result<Groups, String>>);

#[derive(Debug)]
pub struct PolicySet {
    dir: PathBuf,
    default_allow: bool,
    cache: Mutex<HashMap<String, Cached>>,
    /// The groups file as last read, and the stamp it was read at.
    groups: Mutex<Option<GroupsRead>>,
    /// Policies the hub distributed, for agents that have no local file.
    from_hub: std::sync::RwLock<Arc<HashMap<String, Arc<Loaded>>>>,
}

impl PolicySet {
    /// Nothing is read yet; each agent's file is read when first needed.
    pub fn load(dir: impl Into<PathBuf>, default_allow: bool) -> PolicySet {
        PolicySet {
            dir: dir.into(),
            default_allow,
            cache: Mutex::new(HashMap::new()),
            groups: Mutex::new(None),
            from_hub: Default::default(),
        }
    }

    /// Replaces the policies the hub distributed (agent -> policy text). A local file for the
    /// same agent wins; a text that does not parse denies everything for its agent.
    pub fn set_from_hub(&self, policies: &std::collections::BTreeMap<String, String>) {
        let parsed = policies
            .iter()
            .filter(|(agent, _)| valid_agent_name(agent))
            .map(|(agent, text)| {
                let file = format!("{agent}.{POLICY_EXT} (from the hub)");
                let loaded = match Policy::parse(text, &file) {
                    Ok(p) => Loaded::Parsed(p),
                    Err(e) => Loaded::Broken(format!("policy failed to parse: {e}")),
                };
                (agent.clone(), Arc::new(loaded))
            })
            .collect();
        *self.from_hub.write().expect("policy lock") = Arc::new(parsed);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn default_allow(&self) -> bool {
        self.default_allow
    }

    /// Where `agent`'s policy lives.
    pub fn path_for(&self, agent: &str) -> PathBuf {
        self.dir.join(format!("{agent}.{POLICY_EXT}"))
    }

    /// Decides whether `caller` may run `agent`'s `action` on `node`.
    pub fn decide(&self, agent: &str, caller: &str, action: &str, node: &NodeView<'_>) -> Decision {
        if !valid_agent_name(agent) {
            return Decision::deny(format!("invalid agent name '{}'", agent.escape_debug()));
        }
        let path = self.path_for(agent);
        let mut loaded = self.current(agent, &path);
        if matches!(*loaded, Loaded::Missing)
            && let Some(hub) = self.from_hub.read().expect("policy lock").get(agent)
        {
            loaded = hub.clone();
        }
        match &*loaded {
            Loaded::Missing => Decision {
                allowed: self.default_allow,
                rule: format!("default {} (no {}; node default)", allow_word(self.default_allow), path.display()),
            },
            Loaded::Parsed(policy) => match &*self.groups() {
                Ok(groups) => policy.decide_with(caller, action, node, groups, &*crate::data::NodeData::current()),
                Err(why) => Decision::deny(why.clone()),
            },
            Loaded::Broken(why) => Decision::deny(why.clone()),
        }
    }

    /// Where the caller groups live: `<policy_dir>/groups`.
    pub fn groups_path(&self) -> PathBuf {
        self.dir.join(GROUPS_FILE)
    }

    /// The caller groups, re-read when the file changes. No file is no groups; a file that cannot
    /// be read or parsed is an error that denies every request.
    fn groups(&self) -> Arc<Result<Groups, String>> {
        let path = self.groups_path();
        let stamp = std::fs::metadata(&path).ok().map(|m| Stamp::of(&m));
        if let Some((s, g)) = &*self.groups.lock().expect("groups lock")
            && *s == stamp
        {
            return g.clone();
        }
        let shown = path.display().to_string();
        let loaded = match stamp {
            None => Ok(Groups::default()),
            Some(_) => match std::fs::read_to_string(&path) {
                Ok(text) if text.len() as u64 <= MAX_POLICY_FILE => {
                    Groups::parse(&text, &shown).map_err(|e| format!("caller groups file failed to parse: {e}"))
                }
                Ok(_) => Err(format!("caller groups file cannot be read: {shown}: larger than {MAX_POLICY_FILE} bytes")),
                Err(e) => Err(format!("caller groups file cannot be read: {shown}: {e}")),
            },
        };
        match &loaded {
            Ok(g) if stamp.is_some() => tracing::info!(file = %shown, groups = g.len(), "caller groups loaded"),
            Ok(_) => {}
            Err(why) => tracing::error!(file = %shown, error = %why, "denying every request that a policy decides"),
        }
        let loaded = Arc::new(loaded);
        *self.groups.lock().expect("groups lock") = Some((stamp, loaded.clone()));
        loaded
    }

    /// The cached policy if the file is unchanged, else a fresh read. The lock is never held
    /// across file access.
    fn current(&self, agent: &str, path: &Path) -> Arc<Loaded> {
        let cached = self.cache.lock().expect("policy cache lock").get(agent).cloned();
        let stamp = match std::fs::metadata(path) {
            Ok(meta) => Some(Stamp::of(&meta)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                // Not cached: the cause (a permission, a dying disk) may clear up by itself.
                let why = format!("policy file cannot be read: {}: {e}", path.display());
                tracing::error!(agent, file = %path.display(), error = %e, "policy file cannot be read; denying every request to this agent");
                return Arc::new(Loaded::Broken(why));
            }
        };
        if let Some(c) = cached.filter(|c| c.stamp == stamp) {
            return c.loaded;
        }
        let (stamp, loaded) = match stamp {
            None => (None, Loaded::Missing),
            Some(_) => read_policy(path),
        };
        match &loaded {
            Loaded::Missing => {
                tracing::info!(
                    agent,
                    file = %path.display(),
                    default = allow_word(self.default_allow),
                    "no local policy file; the hub's policy for it applies if it sent one, else the node default"
                )
            }
            Loaded::Parsed(p) => {
                tracing::info!(agent, file = %path.display(), rules = p.len(), default = allow_word(p.default_allow()), "policy loaded")
            }
            Loaded::Broken(why) => {
                tracing::error!(agent, file = %path.display(), error = %why, "denying every request to this agent")
            }
        }
        let loaded = Arc::new(loaded);
        self.cache.lock().expect("policy cache lock").insert(agent.to_string(), Cached { stamp, loaded: loaded.clone() });
        loaded
    }
}

/// Reads and parses one policy file; the stamp is taken from the open file, so it belongs to the
/// bytes read.
fn read_policy(path: &Path) -> (Option<Stamp>, Loaded) {
    let shown = path.display().to_string();
    let unreadable = |e: &dyn fmt::Display| Loaded::Broken(format!("policy file cannot be read: {shown}: {e}"));
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (None, Loaded::Missing),
        Err(e) => return (None, unreadable(&e)),
    };
    let stamp = match file.metadata() {
        Ok(m) if m.is_file() => Stamp::of(&m),
        Ok(_) => return (None, unreadable(&"not a regular file")),
        Err(e) => return (None, unreadable(&e)),
    };
    let mut text = String::new();
    if let Err(e) = file.take(MAX_POLICY_FILE + 1).read_to_string(&mut text) {
        return (Some(stamp), unreadable(&e));
    }
    if text.len() as u64 > MAX_POLICY_FILE {
        return (Some(stamp), unreadable(&format!("larger than {MAX_POLICY_FILE} bytes")));
    }
    let loaded = match Policy::parse(&text, &shown) {
        Ok(p) => Loaded::Parsed(p),
        Err(e) => Loaded::Broken(format!("policy file failed to parse: {e}")),
    };
    (Some(stamp), loaded)
}

/// Agent names become file names: letters, digits, `_`, `-`, `.`, not starting with `.`.
fn valid_agent_name(agent: &str) -> bool {
    !agent.is_empty()
        && agent.len() <= 128
        && !agent.starts_with('.')
        && agent.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
