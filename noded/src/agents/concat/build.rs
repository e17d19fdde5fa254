//! Building a target: render the fragments, compare with the file on disk (content, then owner,
//! group and mode), and write only what differs. New content goes through a temp file in the
//! same directory that gets its owner and mode before it is synced and renamed, so a reader (or
//! a crash) sees the old file or the whole new one, never a mix, and never wrong permissions.

use std::fs::{File, Permissions};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::paths::{Refusal, resolved_source};
use super::store::{Fragment, sha256_hex};

/// Longest diff returned, in bytes; the checksum still tells two results apart.
const MAX_DIFF: usize = 64 * 1024;
/// The mode of a new file when the build does not name one.
const NEW_FILE_MODE: u32 = 0o644;

/// The owner, group and mode a build asks for; `None` keeps what the file has.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Wanted {
    pub owner: Option<u32>,
    pub group: Option<u32>,
    pub mode: Option<u32>,
}

/// What a build found: the rendered file and how it differs from the one on disk.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The target with its directory's symbolic links resolved.
    pub path: PathBuf,
    pub content: Vec<u8>,
    pub fragments: usize,
    /// The content differs from the file on disk, or there is no file.
    pub changed: bool,
    pub created: bool,
    /// Owner, group and mode changes of an existing file, as people read them.
    pub attributes: Vec<String>,
    pub diff: String,
    pub checksum: String,
    uid: u32,
    gid: u32,
    mode: u32,
    /// What the file on disk has now (for an existing file).
    current: Option<(u32, u32, u32)>,
}

/// Renders `fragments` in the order given, reading each source file now.
pub fn render(fragments: &[Fragment], roots: &[PathBuf], source_roots: &[PathBuf]) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    for f in fragments {
        match (&f.content, &f.source) {
            (Some(text), _) => out.extend_from_slice(text.as_bytes()),
            (None, Some(source)) => {
                let real = resolved_source(roots, source_roots, source).map_err(|e| format!("fragment '{}': {e}", f.name))?;
                let bytes = std::fs::read(&real)
                    .map_err(|e| format!("fragment '{}': the source {} cannot be read: {e}", f.name, source.display()))?;
                out.extend_from_slice(&bytes);
            }
            (None, None) => return Err(format!("fragment '{}' has neither content nor source", f.name)),
        }
    }
    Ok(out)
}

/// Users or groups: who they are on this node.
#[derive(Debug, Clone, Copy)]
pub enum Ids {
    Users,
    Groups,
}

impl Ids {
    fn word(self) -> &'static str {
        match self {
            Ids::Users => "user",
            Ids::Groups => "group",
        }
    }

    /// Every (name, id) of this node's user or group list.
    fn table(self) -> Result<Vec<(String, u32)>, Refusal> {
        let failed = |e: sysinfo::Error| format!("cannot read the {} list: {e}", self.word());
        Ok(match self {
            Ids::Users => {
                sysinfo::Users::new_with_refreshed_list().map_err(failed)?.iter().map(|u| (u.name().to_string(), **u.id())).collect()
            }
            Ids::Groups => {
                sysinfo::Groups::new_with_refreshed_list().map_err(failed)?.iter().map(|g| (g.name().to_string(), **g.id())).collect()
            }
        })
    }

    /// A name or a number as an id; `None` for an empty string (keep what the file has).
    pub fn id(self, raw: &str) -> Result<Option<u32>, Refusal> {
        if raw.is_empty() {
            return Ok(None);
        }
        if let Ok(n) = raw.parse() {
            return Ok(Some(n));
        }
        let found = self.table()?.into_iter().find(|(name, _)| name == raw);
        found.map(|(_, id)| Some(id)).ok_or_else(|| format!("there is no {} '{raw}' on this node", self.word()))
    }

    /// An id's name, or the number where it has none.
    fn name(self, id: u32) -> String {
        let found = self.table().ok().and_then(|t| t.into_iter().find(|(_, i)| *i == id));
        found.map_or_else(|| id.to_string(), |(name, _)| name)
    }
}

/// An octal mode such as `0644` or `644`.
pub fn mode_bits(raw: &str) -> Result<Option<u32>, Refusal> {
    if raw.is_empty() {
        return Ok(None);
    }
    match u32::from_str_radix(raw, 8) {
        Ok(m) if m <= 0o7777 && (3..=4).contains(&raw.len()) => Ok(Some(m)),
        _ => Err(format!("the mode '{raw}' is not an octal mode such as 0644")),
    }
}

/// The unified diff from `old` to `new`, labelled with `path`; cut at [`MAX_DIFF`] bytes.
fn unified_diff(path: &Path, old: Option<&[u8]>, new: &[u8]) -> String {
    let old_text = String::from_utf8_lossy(old.unwrap_or_default());
    let new_text = String::from_utf8_lossy(new);
    let label = path.display().to_string();
    let old_label = if old.is_some() { label.clone() } else { "/dev/null".to_string() };
    let mut diff = similar::TextDiff::from_lines(old_text.as_ref(), new_text.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&old_label, &label)
        .to_string();
    super::cut(&mut diff, MAX_DIFF, "diff");
    diff
}

/// Compares the rendered `content` with the file at `path` and decides what a build does. The
/// diff is labelled with `target` as the admin typed it, so that nodes whose directories resolve
/// differently still show (and fold into) the same diff.
pub fn plan(target: &Path, path: PathBuf, content: Vec<u8>, fragments: usize, wanted: Wanted) -> Result<Plan, Refusal> {
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot inspect {}: {e}", path.display())),
    };
    if let Some(m) = &meta {
        if m.file_type().is_symlink() {
            return Err(format!("the target {} is a symbolic link; concat replaces regular files only", path.display()));
        }
        if !m.is_file() {
            return Err(format!("the target {} exists and is not a regular file", path.display()));
        }
    }
    let old = match &meta {
        Some(_) => Some(std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?),
        None => None,
    };
    let current = meta.as_ref().map(|m| (m.uid(), m.gid(), m.mode() & 0o7777));
    let (euid, egid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    let uid = wanted.owner.or(current.map(|c| c.0)).unwrap_or(euid);
    let gid = wanted.group.or(current.map(|c| c.1)).unwrap_or(egid);
    let mode = wanted.mode.or(current.map(|c| c.2)).unwrap_or(NEW_FILE_MODE);
    let mut attributes = Vec::new();
    if let Some((cu, cg, cm)) = current {
        if cu != uid {
            attributes.push(format!("owner {} -> {}", Ids::Users.name(cu), Ids::Users.name(uid)));
        }
        if cg != gid {
            attributes.push(format!("group {} -> {}", Ids::Groups.name(cg), Ids::Groups.name(gid)));
        }
        if cm != mode {
            attributes.push(format!("mode {cm:04o} -> {mode:04o}"));
        }
    }
    let changed = old.as_deref() != Some(content.as_slice());
    let diff = if changed { unified_diff(target, old.as_deref(), &content) } else { String::new() };
    let checksum = sha256_hex(&content);
    Ok(Plan { path, content, fragments, changed, created: meta.is_none(), attributes, diff, checksum, uid, gid, mode, current })
}

impl Plan {
    /// Writes what differs: new content atomically with its owner, group and mode, or only the
    /// owner, group and mode of an unchanged file.
    pub fn apply(&self) -> Result<(), Refusal> {
        let failed = |e: std::io::Error| format!("cannot write {}: {e}", self.path.display());
        if self.changed {
            return fleet_protocol::files::write_atomically_with(&self.path, &self.content, self.mode, |f| self.prepare(f)).map_err(failed);
        }
        let Some((cu, cg, cm)) = self.current else { return Ok(()) };
        if (cu, cg) != (self.uid, self.gid) {
            std::os::unix::fs::chown(&self.path, Some(self.uid), Some(self.gid)).map_err(failed)?;
        }
        if cm != self.mode {
            std::fs::set_permissions(&self.path, Permissions::from_mode(self.mode)).map_err(failed)?;
        }
        Ok(())
    }

    /// Gives the written temp file its owner, group and exact mode (the create mode went through
    /// the umask) before it is synced and renamed.
    fn prepare(&self, f: &File) -> std::io::Result<()> {
        let m = f.metadata()?;
        if (m.uid(), m.gid()) != (self.uid, self.gid) {
            std::os::unix::fs::fchown(f, Some(self.uid), Some(self.gid))?;
        }
        f.set_permissions(Permissions::from_mode(self.mode))?;
        #[cfg(test)]
        super::tests::crash_point();
        Ok(())
    }
}
