//! Where fleet keeps its files, and the two ways it writes them: directories only their owner can
//! enter, and files replaced atomically (a reader sees the old file or the whole new one).

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Overrides the daemons' configuration directory (`/etc/fleet` as root).
pub const CONFIG_DIR_ENV: &str = "FLEET_CONFIG_DIR";
/// Overrides the daemons' state directory (`/var/lib/fleet` as root).
pub const STATE_DIR_ENV: &str = "FLEET_STATE_DIR";

/// The daemons' base directories.
///
/// As root: `/etc/fleet` (configuration and keys), `/var/lib/fleet` (enrollment, tokens, job
/// state) and `/var/log/fleet` (audit logs). As anyone else: `$XDG_CONFIG_HOME/fleet`
/// (`~/.config/fleet`) and `$XDG_STATE_HOME/fleet` (`~/.local/state/fleet`), audit logs in the
/// state directory. `FLEET_CONFIG_DIR` and `FLEET_STATE_DIR` move either one (logs follow the
/// state directory then), so several daemons can share one host, as the tests and the README's
/// walkthrough do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    pub config: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
}

impl Dirs {
    /// The directories for this process: from the environment, else by effective user.
    pub fn detect() -> Dirs {
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = rustix::process::geteuid().is_root();
        let home = || env("HOME").unwrap_or_else(|| PathBuf::from("/"));
        let config = env(CONFIG_DIR_ENV).unwrap_or_else(|| {
            if root { PathBuf::from("/etc/fleet") } else { env("XDG_CONFIG_HOME").unwrap_or_else(|| home().join(".config")).join("fleet") }
        });
        let state_env = env(STATE_DIR_ENV);
        let state = state_env.clone().unwrap_or_else(|| {
            if root {
                PathBuf::from("/var/lib/fleet")
            } else {
                env("XDG_STATE_HOME").unwrap_or_else(|| home().join(".local/state")).join("fleet")
            }
        });
        let log = if root && state_env.is_none() { PathBuf::from("/var/log/fleet") } else { state.clone() };
        Dirs { config, state, log }
    }
}

/// Creates `dir` and its missing parents; the directories created are mode 0700. An existing
/// directory keeps its mode.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    // The umask may have taken bits away, never added them; make sure of the last component.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Writes `bytes` to `path` through a temp file (mode `mode`) in the same directory, an fsync, a
/// rename and an fsync of the directory: a reader sees the old file or the whole new one, and a
/// crash leaves one of the two.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    write_atomically_with(path, bytes, mode, |_| Ok(()))
}

/// [`write_atomically`], calling `prepare` on the written temp file before it is synced and
/// renamed: to give it its owner, group and exact mode (the create mode passes through the umask)
/// before any reader can see it.
pub fn write_atomically_with(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    prepare: impl FnOnce(&File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let suffix: u64 = rand::random();
    let tmp = dir.join(format!(".{file_name}.{}.{suffix:016x}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(bytes)?;
        prepare(&f)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// What identifies a directory's contents without reading its files: each entry's name, size,
/// modification time and inode (an atomic replace changes the inode). Empty for a missing one.
pub type DirStamp = Vec<(std::ffi::OsString, u64, Option<std::time::SystemTime>, u64)>;

/// The [`DirStamp`] of `dir` now.
pub fn dir_stamp(dir: &Path) -> DirStamp {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut out: DirStamp = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok().map(|m| (e.file_name(), m.len(), m.modified().ok(), m.ino())))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    #[test]
    fn private_dirs_are_0700_and_writes_are_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let f = dir.join("x.toml");
        write_atomically(&f, b"one", 0o600).unwrap();
        write_atomically(&f, b"two", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "two");
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp file left behind");
    }
}
