//! Link-key enrollment on the hub, like salt-key: an unknown key that attempts a handshake is
//! written to `pending/` and refused; an admin accepts it as a node or as a console
//! (`noded hub enroll --accept NAME --role node|console`), or rejects it. Keys are never accepted
//! silently, and never without a role.
//!
//! Layout of the enrollment directory:
//! ```text
//! accepted/<name>.pub     enrolled keys; the file name is the peer's proven name, and the line
//!                         role = "node"     may register as <name> and reply, nothing else
//!                         role = "console"  may send requests signed by caller <name>, discover
//!                                           and read stats, nothing else
//!                         (no role line: enrolled before roles existed; refused until re-enrolled)
//! pending/<name>.pub      keys that knocked, named after the name they claimed
//! rejected/<name>.pub     keys an admin refused; they stay refused
//! forget/<node>           `noded hub forget NODE` asking the running hub to forget a down node
//! ```
//!
//! The hub never touches these files on its routing loop. It looks keys up in an in-memory
//! [`Snapshot`]; a key it has never seen is handed to the enrollment thread ([`Gate`]), which
//! looks on disk, records it under `pending/` (bounded in count and in rate), and answers.
//! The thread rescans the directories once a second, so an admin's accept or reject reaches a
//! running hub within about a second.

mod gate;
mod tokens;

pub use gate::{FORGET_DIR, Gate, GateEvents, request_forget, take_forget_requests};
pub use tokens::{TOKENS_DIR, TokenRequest, create_token};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use fleet_protocol::join::JoinProof;

use crate::limits::RateBucket;
use fleet_protocol::keys::PublicKeys;

/// What an enrolled link may do at the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Registers and replies.
    Node,
    /// Sends requests (signed by the caller it is enrolled as), discovers, reads stats.
    Console,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Console => "console",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "node" => Ok(Role::Node),
            "console" | "caller" => Ok(Role::Console),
            other => Err(format!("unknown role '{other}' (node or console)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted(String, Role),
    /// Unknown key: recorded under pending/ with this name.
    Pending(String),
    Rejected(String),
    /// Enrolled before roles existed (`accepted/<name>.pub`): refused until re-enrolled.
    NoRole(String),
    /// Unknown key not recorded: the pending list is full, or too many new keys knocked lately.
    Refused(String),
}

/// A key file that holds only a link key (what the hub learns from a handshake).
const LINK_ONLY_FORMAT: &str = "fleet-link-key-v1";

fn link_only_text(name: &str, link: &[u8; 32]) -> String {
    use base64::Engine as _;
    format!(
        "# link key of {name}, recorded by the hub from a handshake\nformat = \"{LINK_ONLY_FORMAT}\"\nlink = \"{}\"\n",
        base64::engine::general_purpose::STANDARD.encode(link)
    )
}

/// A key file's link key and role line, whichever key format it holds (a full public key file,
/// or the link-only file the hub writes for a pending key).
fn read_key_file(path: &Path) -> Result<([u8; 32], Option<Role>), String> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    if text.len() > 64 * 1024 {
        return Err("larger than 64 KiB; not a key file".into());
    }
    let v: toml::Table = toml::from_str(&text).map_err(|e| e.message().trim().to_string())?;
    let format = v.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if format != LINK_ONLY_FORMAT && format != "fleet-public-key-v1" {
        return Err(format!("format is '{format}', not a fleet public key"));
    }
    let link = v.get("link").and_then(|l| l.as_str()).ok_or("no link key")?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(link.trim()).map_err(|e| format!("link: {e}"))?;
    let link: [u8; 32] = bytes.try_into().map_err(|_| "link: a key is 32 bytes".to_string())?;
    let role = match v.get("role") {
        None => None,
        Some(r) => Some(r.as_str().ok_or("role: not a string")?.parse::<Role>()?),
    };
    Ok((link, role))
}

/// (name, link key, role) of every key file in `dir`.
fn read_keys(dir: &Path) -> Vec<(String, [u8; 32], Option<Role>)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.extension().is_none_or(|e| e != "pub") || !path.is_file() {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else { continue };
        if name.starts_with('.') {
            continue;
        }
        match read_key_file(&path) {
            Ok((link, role)) => out.push((name.to_string(), link, role)),
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "ignoring enrollment key"),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Key file text with its role line set to `role` (any old role line removed).
fn with_role(text: &str, role: Role) -> String {
    let mut out = without_role(text);
    out.push_str(&format!("role = \"{role}\"\n"));
    out
}

/// Key file text without its role line: a public key file as `noded keygen` wrote it.
fn without_role(text: &str) -> String {
    text.lines().filter(|l| !l.trim_start().starts_with("role")).map(|l| format!("{l}\n")).collect()
}

/// The signing keys of the keys enrolled as nodes in `dir` (its `accepted/` files with
/// `role = "node"`): whom a NATS registry believes a registration from. Link-only files (no
/// signing key) and other roles are left out.
pub fn node_keyring(dir: &Path) -> fleet_protocol::keys::Keyring {
    let accepted = dir.join("accepted");
    let mut ring = fleet_protocol::keys::Keyring::default();
    for (name, _, role) in read_keys(&accepted) {
        if role != Some(Role::Node) {
            continue;
        }
        let path = accepted.join(format!("{name}.pub"));
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        match PublicKeys::parse(&without_role(&text), &path).map(|keys| ring.insert(&name, keys)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(file = %path.display(), error = %e, "ignoring node key"),
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "ignoring node key (no signing key?)"),
        }
    }
    ring
}

/// A claimed name made safe to use as a file name.
fn safe_name(claimed: &str) -> String {
    let s: String =
        claimed.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '=') { c } else { '_' }).collect();
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() { "unnamed".into() } else { s }
}

/// Writes a key or request file atomically (see [`fleet_protocol::files::write_atomically`]).
fn write_text(path: &Path, text: &str) -> std::io::Result<()> {
    fleet_protocol::files::write_atomically(path, text.as_bytes(), 0o644)
}

/// What the hub knows about link keys, in memory: looked up on every handshake.
#[derive(Default, Clone)]
pub struct Snapshot {
    accepted: HashMap<[u8; 32], (String, Role)>,
    legacy: HashMap<[u8; 32], String>,
    rejected: HashMap<[u8; 32], String>,
    pending: HashMap<[u8; 32], String>,
}

impl Snapshot {
    /// The verdict on a key the snapshot knows; `None` for a key never seen.
    pub fn lookup(&self, link_key: &[u8; 32]) -> Option<Verdict> {
        if let Some(name) = self.rejected.get(link_key) {
            return Some(Verdict::Rejected(name.clone()));
        }
        if let Some((name, role)) = self.accepted.get(link_key) {
            return Some(Verdict::Accepted(name.clone(), *role));
        }
        if let Some(name) = self.legacy.get(link_key) {
            return Some(Verdict::NoRole(name.clone()));
        }
        self.pending.get(link_key).map(|name| Verdict::Pending(name.clone()))
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }
}

/// Bounds on keys that knock without being enrolled.
#[derive(Debug, Clone, Copy)]
pub struct KnockLimits {
    /// Most keys kept under `pending/`; further unknown keys are refused without a record.
    pub max_pending: usize,
    /// New pending records per second, over all sources (a burst of twice this is allowed).
    pub per_second: f64,
    /// New pending records per second from one source address (a burst of twice this). A source
    /// over its rate is refused without using the global rate, so one flooding address cannot
    /// crowd out newcomers from others.
    pub per_source_per_second: f64,
    /// Pending keys one source address may have recorded at a time.
    pub max_pending_per_source: usize,
}

impl Default for KnockLimits {
    fn default() -> Self {
        KnockLimits { max_pending: 1000, per_second: 50.0, per_source_per_second: 5.0, max_pending_per_source: 100 }
    }
}

/// Source addresses remembered for their knock rate at most; past it the idle ones are dropped.
const MAX_SOURCES: usize = 4096;

/// The enrollment directory on disk. Used by the enrollment thread and by the unit tests.
pub struct Enrollment {
    dir: PathBuf,
    snapshot: Snapshot,
    stamps: Vec<Option<SystemTime>>,
    limits: KnockLimits,
    bucket: RateBucket,
    /// Knock rate per source address, and which pending keys each source recorded.
    sources: HashMap<std::net::IpAddr, RateBucket>,
    recorded_from: HashMap<[u8; 32], std::net::IpAddr>,
    /// When the pending list was last found full (the warning is logged once a minute).
    full_warned: Option<Instant>,
    /// Where a console that joins with a token gets its caller key (the hub's callers).
    callers_dir: Option<PathBuf>,
}

fn dir_stamp(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir).and_then(|m| m.modified()).ok()
}

const WATCHED: [&str; 3] = ["accepted", "rejected", "pending"];

impl Enrollment {
    pub fn open(dir: &Path) -> std::io::Result<Enrollment> {
        Self::open_with(dir, KnockLimits::default())
    }

    pub fn open_with(dir: &Path, limits: KnockLimits) -> std::io::Result<Enrollment> {
        for sub in WATCHED {
            fleet_protocol::files::create_private_dir(&dir.join(sub))?;
        }
        // Whoever may write under accepted/ may enroll keys: refuse such a directory.
        for d in [dir.to_path_buf(), dir.join("accepted")] {
            fleet_protocol::keys::check_dir_not_writable_by_others(&d, "enrolled link keys")
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string()))?;
        }
        let mut e = Enrollment {
            dir: dir.to_path_buf(),
            snapshot: Snapshot::default(),
            stamps: Vec::new(),
            limits,
            bucket: RateBucket::full(limits.per_second),
            sources: HashMap::new(),
            recorded_from: HashMap::new(),
            full_warned: None,
            callers_dir: None,
        };
        e.rescan(true);
        for name in e.snapshot.legacy.values() {
            tracing::warn!(
                key = %name,
                "link key {name} was enrolled before roles existed and is refused until it is re-enrolled: \
                 run `noded hub enroll --accept {name} --role node` (or --role console)"
            );
        }
        Ok(e)
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Re-reads the directories when one of them changed (or when `force`). A directory changed
    /// in the last two seconds is read again even if its stamp looks the same: two changes within
    /// the file system's timestamp granularity must not hide the second one. True when re-read.
    pub fn rescan(&mut self, force: bool) -> bool {
        let stamps: Vec<Option<SystemTime>> = WATCHED.iter().map(|s| dir_stamp(&self.dir.join(s))).collect();
        let recent = stamps.iter().flatten().any(|t| t.elapsed().map_or(true, |age| age < Duration::from_secs(2)));
        if !force && !recent && stamps == self.stamps {
            return false;
        }
        let mut s = Snapshot::default();
        for (name, key, role) in read_keys(&self.dir.join("accepted")) {
            match role {
                Some(role) => {
                    if let Some((other, _)) = s.accepted.get(&key) {
                        // One key under two names: refuse it rather than guess which.
                        tracing::error!(key = %name, other = %other, "one link key is enrolled under two names; it is refused");
                        s.rejected.insert(key, name.clone());
                    }
                    s.accepted.insert(key, (name, role));
                }
                None => {
                    s.legacy.insert(key, name);
                }
            }
        }
        for (name, key, _) in read_keys(&self.dir.join("rejected")) {
            s.rejected.insert(key, name);
        }
        for (name, key, _) in read_keys(&self.dir.join("pending")) {
            s.pending.insert(key, name);
        }
        self.snapshot = s;
        self.stamps = stamps;
        true
    }

    /// Decides on a key the hub's snapshot did not know: looks on disk again (an admin may have
    /// just enrolled it); else enrolls it when it carries a valid join token (`proof`); else
    /// records it under `pending/`, within the count and rate limits.
    pub fn knock(&mut self, link_key: &[u8; 32], claimed: &str, proof: Option<&JoinProof>) -> Verdict {
        self.knock_from(link_key, claimed, proof, None)
    }

    /// [`Enrollment::knock`] from a known source address (what the hub's front door saw), which
    /// is held to its own rate and pending count as well as the global ones.
    pub fn knock_from(
        &mut self,
        link_key: &[u8; 32],
        claimed: &str,
        proof: Option<&JoinProof>,
        source: Option<std::net::IpAddr>,
    ) -> Verdict {
        self.rescan(false);
        match (self.snapshot.lookup(link_key), proof) {
            (Some(Verdict::Pending(_)) | None, Some(proof)) => return self.redeem(link_key, claimed, proof),
            (Some(v), _) => return v,
            (None, None) => {}
        }
        if self.snapshot.pending.len() >= self.limits.max_pending {
            if self.full_warned.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                self.full_warned = Some(Instant::now());
                tracing::warn!(
                    max = self.limits.max_pending,
                    "the pending enrollment list is full: unknown link keys are refused without a record \
                     (reject or accept some with `noded hub enroll`)"
                );
            }
            return Verdict::Refused("the pending list is full".into());
        }
        if let Some(ip) = source {
            let still_pending = |k: &[u8; 32]| self.snapshot.pending.contains_key(k);
            self.recorded_from.retain(|k, _| still_pending(k));
            if self.recorded_from.values().filter(|s| **s == ip).count() >= self.limits.max_pending_per_source {
                return Verdict::Refused(format!("{ip} already has {} keys waiting", self.limits.max_pending_per_source));
            }
            if self.sources.len() >= MAX_SOURCES {
                // A bucket idle for 2 s is full again: forgetting it changes nothing.
                self.sources.retain(|_, b| b.idle() < Duration::from_secs(2));
                if self.sources.len() >= MAX_SOURCES {
                    self.sources.clear();
                }
            }
            let rate = self.limits.per_source_per_second;
            if !self.sources.entry(ip).or_insert_with(|| RateBucket::full(rate)).take(rate) {
                return Verdict::Refused(format!("too many unknown keys knocking from {ip}"));
            }
        }
        if !self.bucket.take(self.limits.per_second) {
            return Verdict::Refused("too many unknown keys knocking".into());
        }
        // Record it for an admin to look at. Only the link key is known from the handshake.
        let mut name = safe_name(claimed);
        let taken = |n: &str, s: &Snapshot| {
            s.pending.values().any(|p| p == n) || s.accepted.values().any(|(a, _)| a == n) || s.legacy.values().any(|a| a == n)
        };
        if taken(&name, &self.snapshot) {
            name = format!("{name}-{}", hex8(link_key));
        }
        let path = self.dir.join("pending").join(format!("{name}.pub"));
        if let Err(e) = write_text(&path, &link_only_text(&name, link_key)) {
            tracing::error!(file = %path.display(), error = %e, "cannot record a pending link key");
        }
        self.snapshot.pending.insert(*link_key, name.clone());
        if let Some(ip) = source {
            self.recorded_from.insert(*link_key, ip);
        }
        tracing::warn!(claimed, pending = %name, "unknown link key refused; accept it with `noded hub enroll --accept {name} --role node|console`");
        Verdict::Pending(name)
    }
}

fn hex8(k: &[u8; 32]) -> String {
    k.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// One row of `noded hub enroll --list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    /// `accepted`, `no-role` (accepted before roles existed: refused until re-enrolled),
    /// `pending` or `rejected`.
    pub state: &'static str,
    /// `node`, `console`, or `-`.
    pub role: &'static str,
    pub fingerprint: String,
}

/// `noded hub enroll --list`: every key, its state and its role.
pub fn list(dir: &Path) -> Vec<Listed> {
    let mut out = Vec::new();
    for (sub, state) in [("accepted", "accepted"), ("pending", "pending"), ("rejected", "rejected")] {
        for (name, k, role) in read_keys(&dir.join(sub)) {
            let (state, role) = match (state, role) {
                ("accepted", None) => ("no-role", "-"),
                ("accepted", Some(r)) => ("accepted", r.as_str()),
                (s, _) => (s, "-"),
            };
            out.push(Listed { name, state, role, fingerprint: hex8(&k) });
        }
    }
    out
}

/// Accepts `name` as `role`: from pending or rejected, or gives a role to a key accepted before
/// roles existed. A key already accepted under the other role is refused (reject it first).
pub fn accept(dir: &Path, name: &str, role: Role) -> Result<PathBuf, String> {
    fleet_protocol::keys::check_name(name).map_err(|e| e.to_string())?;
    let file = format!("{name}.pub");
    let dst = dir.join("accepted").join(&file);
    if dst.is_file() {
        match read_key_file(&dst).map_err(|e| format!("{}: {e}", dst.display()))?.1 {
            Some(r) if r == role => return Ok(dst),
            Some(r) => return Err(format!("'{name}' is already enrolled as a {r}; reject it first (`noded hub enroll --reject {name}`)")),
            None => {}
        }
    }
    for src in [dst.clone(), dir.join("pending").join(&file), dir.join("rejected").join(&file)] {
        if src.is_file() {
            let text = std::fs::read_to_string(&src).map_err(|e| format!("{}: {e}", src.display()))?;
            std::fs::create_dir_all(dir.join("accepted")).map_err(|e| e.to_string())?;
            write_text(&dst, &with_role(&text, role)).map_err(|e| format!("{}: {e}", dst.display()))?;
            if src != dst {
                std::fs::remove_file(&src).map_err(|e| format!("{}: {e}", src.display()))?;
            }
            return Ok(dst);
        }
    }
    Err(format!("no key named '{name}' in {} (pending, rejected, or accepted without a role)", dir.display()))
}

/// Moves `name` from pending or accepted to rejected.
pub fn reject(dir: &Path, name: &str) -> Result<PathBuf, String> {
    fleet_protocol::keys::check_name(name).map_err(|e| e.to_string())?;
    let file = format!("{name}.pub");
    for sub in ["pending", "accepted"] {
        let src = dir.join(sub).join(&file);
        if src.is_file() {
            std::fs::create_dir_all(dir.join("rejected")).map_err(|e| e.to_string())?;
            let dst = dir.join("rejected").join(&file);
            std::fs::rename(&src, &dst).map_err(|e| format!("{} -> {}: {e}", src.display(), dst.display()))?;
            return Ok(dst);
        }
    }
    Err(format!("no key named '{name}' in {} (pending or accepted)", dir.display()))
}

/// Enrolls public keys directly as `name` with `role`, written atomically.
pub fn enroll_key(dir: &Path, name: &str, keys: &PublicKeys, role: Role) -> Result<PathBuf, String> {
    fleet_protocol::keys::check_name(name).map_err(|e| e.to_string())?;
    let to = dir.join("accepted").join(format!("{name}.pub"));
    if let Ok((_, Some(r))) = read_key_file(&to)
        && r != role
    {
        return Err(format!("'{name}' is already enrolled as a {r}; reject it first (`noded hub enroll --reject {name}`)"));
    }
    std::fs::create_dir_all(dir.join("accepted")).map_err(|e| e.to_string())?;
    write_text(&to, &with_role(&keys.to_file_text(name), role)).map_err(|e| format!("{}: {e}", to.display()))?;
    Ok(to)
}

/// Enrolls a public key file directly (the admin copied it from the node or the operator).
pub fn add(dir: &Path, name: &str, pub_file: &Path, role: Role) -> Result<PathBuf, String> {
    let keys = PublicKeys::load(pub_file).map_err(|e| e.to_string())?;
    enroll_key(dir, name, &keys, role)
}

#[cfg(test)]
mod tests;
