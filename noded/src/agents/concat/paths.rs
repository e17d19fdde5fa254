//! Which paths concat may touch: targets under the configured roots, sources under the roots or
//! the source roots, fragment names that are plain file names. Every refusal says what was wrong
//! with which value, because the admin reads it in a reply from a node far away.

use std::path::{Path, PathBuf};

/// Why a path or a name was refused.
pub type Refusal = String;

/// `raw` as an absolute path with no `.` or `..` component, no empty component and no NUL.
/// `what` names the input in the refusal ("target", "source").
pub fn plain_absolute(what: &str, raw: &str) -> Result<PathBuf, Refusal> {
    if raw.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if raw.contains('\0') {
        return Err(format!("the {what} '{}' contains a NUL byte", raw.escape_default()));
    }
    if !raw.starts_with('/') {
        return Err(format!("the {what} '{raw}' is not an absolute path"));
    }
    if raw.ends_with('/') {
        return Err(format!("the {what} '{raw}' ends with '/': it must name a file"));
    }
    // Path::components() would quietly drop '.' and '//': check the text as typed.
    for part in raw[1..].split('/') {
        match part {
            ".." => return Err(format!("the {what} '{raw}' contains '..': path traversal is refused")),
            "." | "" => return Err(format!("the {what} '{raw}' is not a plain path (it has a '{part}' component)")),
            _ => {}
        }
    }
    Ok(PathBuf::from(raw))
}

/// The root of `roots` that `path` lies under (lexically), if any.
fn root_of<'a>(roots: &'a [PathBuf], path: &Path) -> Option<&'a PathBuf> {
    roots.iter().find(|r| path.starts_with(r) && path != r.as_path())
}

fn roots_text(roots: &[PathBuf]) -> String {
    roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// A target as typed, checked lexically: plain, absolute and under one of `roots`. Fragments may
/// be added before the target's directory exists; [`resolved_target`] checks the real directory.
pub fn checked_target(roots: &[PathBuf], raw: &str) -> Result<PathBuf, Refusal> {
    let path = plain_absolute("target", raw)?;
    if roots.is_empty() {
        return Err("this node allows no concat targets: its noded.toml has no [concat] roots".into());
    }
    if root_of(roots, &path).is_none() {
        return Err(format!("the target '{raw}' is outside the allowed roots ({})", roots_text(roots)));
    }
    Ok(path)
}

/// `path` with its directory's symbolic links resolved, refused unless that real directory is
/// still under the real form of one of `roots`: a symlinked directory cannot lead a build out.
pub fn resolved_target(roots: &[PathBuf], path: &Path) -> Result<PathBuf, Refusal> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(format!("the target '{}' has no directory", path.display()));
    };
    let real_dir = dir.canonicalize().map_err(|e| format!("the target's directory {} cannot be used: {e}", dir.display()))?;
    let inside = roots.iter().filter_map(|r| r.canonicalize().ok()).any(|r| real_dir.starts_with(&r));
    if !inside {
        return Err(format!(
            "the target '{}' resolves to {}, outside the allowed roots ({})",
            path.display(),
            real_dir.join(name).display(),
            roots_text(roots)
        ));
    }
    Ok(real_dir.join(name))
}

/// A source file as typed: plain, absolute and under one of `roots` or `source_roots`.
pub fn checked_source(roots: &[PathBuf], source_roots: &[PathBuf], raw: &str) -> Result<PathBuf, Refusal> {
    let path = plain_absolute("source", raw)?;
    let all: Vec<PathBuf> = roots.iter().chain(source_roots).cloned().collect();
    if root_of(&all, &path).is_none() {
        return Err(format!(
            "the source '{raw}' is outside the roots concat may read ({})",
            if all.is_empty() { "none are configured".into() } else { roots_text(&all) }
        ));
    }
    Ok(path)
}

/// `path` with every symbolic link resolved, refused unless it is still under the real form of
/// one of `roots` or `source_roots`: a link in a root cannot expose a file outside them.
pub fn resolved_source(roots: &[PathBuf], source_roots: &[PathBuf], path: &Path) -> Result<PathBuf, Refusal> {
    let real = path.canonicalize().map_err(|e| format!("the source {} cannot be read: {e}", path.display()))?;
    let inside = roots.iter().chain(source_roots).filter_map(|r| r.canonicalize().ok()).any(|r| real.starts_with(&r));
    if !inside {
        return Err(format!("the source '{}' resolves to {}, outside the roots concat may read", path.display(), real.display()));
    }
    Ok(real)
}

/// A fragment name: 1-128 of letters, digits, `.`, `_`, `-`, `@`, `+`, not starting with a dot.
/// It becomes a file name in the target's fragment directory, so nothing else is let through.
pub fn checked_name(raw: &str) -> Result<&str, Refusal> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+');
    if raw.is_empty() || raw.len() > 128 {
        return Err(format!("the fragment name '{raw}' must be 1 to 128 characters long"));
    }
    if raw.contains('/') || raw.starts_with('.') {
        return Err(format!("the fragment name '{raw}' is refused: a name is not a path (no '/', no leading '.')"));
    }
    if let Some(bad) = raw.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "the fragment name '{raw}' has '{}': names use letters, digits, '.', '_', '-', '@' and '+'",
            bad.escape_default()
        ));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Vec<PathBuf> {
        vec![PathBuf::from("/etc/app"), PathBuf::from("/srv/conf")]
    }

    #[test]
    fn targets_must_be_plain_absolute_paths_under_a_root() {
        assert_eq!(checked_target(&roots(), "/etc/app/app.conf").unwrap(), PathBuf::from("/etc/app/app.conf"));
        assert_eq!(checked_target(&roots(), "/srv/conf/a/b.conf").unwrap(), PathBuf::from("/srv/conf/a/b.conf"));
        let refused = |raw: &str| checked_target(&roots(), raw).unwrap_err();
        assert_eq!(refused("/etc/app/../shadow"), "the target '/etc/app/../shadow' contains '..': path traversal is refused");
        assert_eq!(refused("etc/app/x"), "the target 'etc/app/x' is not an absolute path");
        assert_eq!(refused("/etc/app/./x"), "the target '/etc/app/./x' is not a plain path (it has a '.' component)");
        assert_eq!(refused("/etc/app//x"), "the target '/etc/app//x' is not a plain path (it has a '' component)");
        assert_eq!(refused("/etc/app/"), "the target '/etc/app/' ends with '/': it must name a file");
        assert_eq!(refused("/etc/passwd"), "the target '/etc/passwd' is outside the allowed roots (/etc/app, /srv/conf)");
        // A root itself is a directory, not a target; a sibling with the same prefix is outside.
        assert!(refused("/etc/app").contains("outside the allowed roots"));
        assert!(refused("/etc/apple/x").contains("outside the allowed roots"));
        assert_eq!(
            checked_target(&[], "/etc/app/x").unwrap_err(),
            "this node allows no concat targets: its noded.toml has no [concat] roots"
        );
    }

    #[test]
    fn a_symlinked_directory_cannot_lead_a_target_out_of_its_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
        let roots = vec![root.clone()];
        let target = checked_target(&roots, &format!("{}/escape/x.conf", root.display())).unwrap();
        let e = resolved_target(&roots, &target).unwrap_err();
        assert!(e.contains("outside the allowed roots"), "{e}");
        let fine = checked_target(&roots, &format!("{}/x.conf", root.display())).unwrap();
        assert_eq!(resolved_target(&roots, &fine).unwrap(), root.canonicalize().unwrap().join("x.conf"));
    }

    #[test]
    fn sources_may_also_come_from_the_source_roots() {
        let sources = vec![PathBuf::from("/usr/share/app")];
        assert!(checked_source(&roots(), &sources, "/usr/share/app/header").is_ok());
        assert!(checked_source(&roots(), &sources, "/etc/app/part").is_ok());
        assert_eq!(
            checked_source(&roots(), &sources, "/etc/shadow").unwrap_err(),
            "the source '/etc/shadow' is outside the roots concat may read (/etc/app, /srv/conf, /usr/share/app)"
        );
        assert!(checked_source(&roots(), &sources, "/usr/share/app/../../../etc/shadow").unwrap_err().contains("path traversal"));
    }

    #[test]
    fn fragment_names_are_plain_file_names() {
        for ok in ["10_header", "db.conf", "user@host", "a+b", "X-1"] {
            assert_eq!(checked_name(ok), Ok(ok));
        }
        assert_eq!(checked_name("../x").unwrap_err(), "the fragment name '../x' is refused: a name is not a path (no '/', no leading '.')");
        assert!(checked_name("..").unwrap_err().contains("no leading '.'"));
        assert!(checked_name(".hidden").is_err());
        assert!(checked_name("a b").unwrap_err().contains("has ' '"));
        assert!(checked_name("").is_err());
        assert!(checked_name(&"x".repeat(129)).is_err());
    }
}
