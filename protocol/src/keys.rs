//! Key material: every caller, node and hub holds an ed25519 signing key (request and reply
//! signatures) and an X25519 link key (the static key of its Noise handshakes), plus the
//! [`Keyring`] of trusted callers in which the file name is the caller id.
//!
//! # Files
//! One pair of small TOML files per key holder, the raw 32-byte keys in standard base64:
//!
//! ```text
//! # <name>.key: private, mode 0600, written atomically (temp file + rename)
//! format = "fleet-private-key-v1"
//! signing = "<ed25519 secret key, 32 bytes>"
//! link = "<X25519 private key, 32 bytes>"
//!
//! # <name>.pub: public, mode 0644
//! format = "fleet-public-key-v1"
//! signing = "<ed25519 public key, 32 bytes>"
//! link = "<X25519 public key, 32 bytes>"
//! ```
//!
//! A private file whose mode gives the group or others any access is refused, as ssh does. The
//! raw 32-byte link keys are what `snow`'s `local_private_key` and `remote_public_key` take.
//! A public file carries no name: who it belongs to is the file's name, set by whoever trusted it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::TryRng;
use serde::Deserialize;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

mod batch;
mod memo;
pub use batch::SignedBytes;
use memo::VerifiedMemo;

/// Extension of a private key file.
pub const PRIVATE_EXT: &str = "key";
/// Extension of a public key file.
pub const PUBLIC_EXT: &str = "pub";
/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

const PRIVATE_FORMAT: &str = "fleet-private-key-v1";
const PUBLIC_FORMAT: &str = "fleet-public-key-v1";
/// Largest key file read; real ones are about 200 bytes.
const MAX_KEY_FILE: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write key file {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error(
        "refusing private key file {}: its mode is {mode:04o}, which lets the group or others in (run: chmod 600 {})",
        path.display(),
        path.display()
    )]
    LoosePermissions { path: PathBuf, mode: u32 },
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    #[error("invalid key name '{name}': {why}")]
    InvalidName { name: String, why: &'static str },
    #[error("{} already exists; refusing to overwrite a key (remove it first to replace it)", path.display())]
    Exists { path: PathBuf },
    #[error("cannot read callers directory {}: {source}", path.display())]
    ReadDir { path: PathBuf, source: std::io::Error },
    #[error(
        "refusing {what} in {}: the directory's mode is {mode:04o}, which lets the group or others replace what is in it (run: chmod go-w {})",
        dir.display(),
        dir.display()
    )]
    LooseDirectory { what: &'static str, dir: PathBuf, mode: u32 },
}

/// Refuses a directory that the group or others may write to: whoever can write there can swap
/// a key file, or add one. `what` says what was to be read from it.
pub fn check_dir_not_writable_by_others(dir: &Path, what: &'static str) -> Result<(), KeyError> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let meta = fs::metadata(dir).map_err(|source| KeyError::Read { path: dir.to_path_buf(), source })?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(KeyError::LooseDirectory { what, dir: dir.to_path_buf(), mode });
    }
    Ok(())
}

/// The directory a key file is in.
fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Why a signature was not accepted by a [`Keyring`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("unknown caller '{0}' (no {0}.pub in the callers directory)")]
    UnknownCaller(String),
    #[error("bad signature: it does not verify with the public key of '{0}'")]
    BadSignature(String),
}

/// A private key pair: the ed25519 signing key and the X25519 link key. Both are wiped from
/// memory when dropped.
pub struct KeyPair {
    signing: SigningKey,
    link: x25519_dalek::StaticSecret,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair").field("public", &self.public()).finish_non_exhaustive()
    }
}

/// The public halves of a [`KeyPair`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKeys {
    /// ed25519 verifying key.
    pub signing: [u8; 32],
    /// X25519 public key (the Noise static key).
    pub link: [u8; 32],
}

impl fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKeys").field("signing", &BASE64.encode(self.signing)).field("link", &BASE64.encode(self.link)).finish()
    }
}

/// 32 bytes from the operating system's random source. Long-lived secrets come straight from the
/// OS rather than from a user-space generator, so a snapshotted process cannot repeat them.
fn os_random_32() -> Zeroizing<[u8; 32]> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::SysRng.try_fill_bytes(bytes.as_mut()).expect("the operating system's random source failed");
    bytes
}

impl KeyPair {
    /// Fresh keys from the operating system's random source.
    pub fn generate() -> KeyPair {
        let signing = os_random_32();
        let link = os_random_32();
        KeyPair::from_secret_bytes(&signing, &link)
    }

    /// Builds a pair from raw 32-byte private keys (any 32 bytes are a valid key for both).
    pub fn from_secret_bytes(signing: &[u8; 32], link: &[u8; 32]) -> KeyPair {
        KeyPair { signing: SigningKey::from_bytes(signing), link: x25519_dalek::StaticSecret::from(*link) }
    }

    pub fn public(&self) -> PublicKeys {
        PublicKeys { signing: self.signing.verifying_key().to_bytes(), link: x25519_dalek::PublicKey::from(&self.link).to_bytes() }
    }

    /// Signs `message` (deterministic ed25519, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }

    /// The raw X25519 private key, for `snow::Builder::local_private_key`.
    pub fn link_private(&self) -> &[u8; 32] {
        self.link.as_bytes()
    }

    /// Writes `<dir>/<name>.key` (mode 0600) and `<dir>/<name>.pub` (mode 0644), each atomically.
    /// Creates `dir` (mode 0700) when missing. Refuses to overwrite an existing key.
    pub fn save(&self, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), KeyError> {
        check_name(name)?;
        let private_path = dir.join(format!("{name}.{PRIVATE_EXT}"));
        let public_path = dir.join(format!("{name}.{PUBLIC_EXT}"));
        for p in [&private_path, &public_path] {
            if p.symlink_metadata().is_ok() {
                return Err(KeyError::Exists { path: p.clone() });
            }
        }
        if !dir.exists() {
            crate::files::create_private_dir(dir).map_err(|source| KeyError::Write { path: dir.to_path_buf(), source })?;
        }
        let private_text = Zeroizing::new(format!(
            "# fleet private key \"{name}\": ed25519 signing key and X25519 link key, raw 32 bytes in base64.\n\
             # Keep it secret: fleet refuses this file if the group or others can access it.\n\
             format = \"{PRIVATE_FORMAT}\"\n\
             signing = \"{}\"\n\
             link = \"{}\"\n",
            Zeroizing::new(BASE64.encode(self.signing.as_bytes())).as_str(),
            Zeroizing::new(BASE64.encode(self.link.as_bytes())).as_str(),
        ));
        write_atomically(&private_path, private_text.as_bytes(), 0o600)?;
        write_atomically(&public_path, self.public().to_file_text(name).as_bytes(), 0o644)?;
        Ok((private_path, public_path))
    }

    /// Loads a private key file, refusing it when its mode lets the group or others in.
    pub fn load_private(path: &Path) -> Result<KeyPair, KeyError> {
        let read_err = |source| KeyError::Read { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(read_err)?;
        // The mode is checked on the open descriptor, so a swap between check and read is moot.
        let meta = file.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(format_err(path, "not a regular file"));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::LoosePermissions { path: path.to_path_buf(), mode });
        }
        check_dir_not_writable_by_others(parent_of(path), "a private key")?;
        let text = read_limited(file, path)?;
        let parsed: PrivateFile = toml::from_str(&text).map_err(|e| format_err(path, e.message().trim()))?;
        if parsed.format != PRIVATE_FORMAT {
            return Err(format_err(path, format!("format is '{}', expected '{PRIVATE_FORMAT}'", parsed.format)));
        }
        let signing = decode_key(&parsed.signing, "signing", path)?;
        let link = decode_key(&parsed.link, "link", path)?;
        Ok(KeyPair::from_secret_bytes(&signing, &link))
    }
}

/// Loads a private key file; see [`KeyPair::load_private`].
pub fn load_private(path: &Path) -> Result<KeyPair, KeyError> {
    KeyPair::load_private(path)
}

/// Loads a public key file; see [`PublicKeys::load`].
pub fn load_public(path: &Path) -> Result<PublicKeys, KeyError> {
    PublicKeys::load(path)
}

/// Strict ed25519 verification of `signature` over `message` with the raw verifying key
/// `signing_public`. Anything malformed (wrong length, invalid or weak key, non-canonical
/// signature) is simply `false`.
pub fn verify(signing_public: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(signing_public) else { return false };
    let Ok(sig) = Signature::from_slice(signature) else { return false };
    key.verify_strict(message, &sig).is_ok()
}

impl PublicKeys {
    /// Strict verification with this holder's signing key; see [`verify`].
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        verify(&self.signing, message, signature)
    }

    /// The `.pub` file text; `name` goes only into the comment.
    pub fn to_file_text(&self, name: &str) -> String {
        format!(
            "# fleet public key \"{name}\". On a node, the file name in the callers directory is the caller id.\n\
             format = \"{PUBLIC_FORMAT}\"\n\
             signing = \"{}\"\n\
             link = \"{}\"\n",
            BASE64.encode(self.signing),
            BASE64.encode(self.link),
        )
    }

    /// Parses `.pub` file text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<PublicKeys, KeyError> {
        Self::parse_checked(text, path).map(|(keys, _)| keys)
    }

    /// [`PublicKeys::parse`], also handing back the signing key as the point its check decoded.
    fn parse_checked(text: &str, path: &Path) -> Result<(PublicKeys, VerifyingKey), KeyError> {
        let parsed: PublicFile = toml::from_str(text).map_err(|e| format_err(path, e.message().trim()))?;
        if parsed.format != PUBLIC_FORMAT {
            return Err(format_err(path, format!("format is '{}', expected '{PUBLIC_FORMAT}'", parsed.format)));
        }
        let signing = *decode_key(&parsed.signing, "signing", path)?;
        let link = *decode_key(&parsed.link, "link", path)?;
        let key = VerifyingKey::from_bytes(&signing).map_err(|_| format_err(path, "signing: not a valid ed25519 public key"))?;
        if key.is_weak() {
            return Err(format_err(path, "signing: a weak (small-order) ed25519 key is never trusted"));
        }
        Ok((PublicKeys { signing, link }, key))
    }

    pub fn load(path: &Path) -> Result<PublicKeys, KeyError> {
        Self::load_checked(path).map(|(keys, _)| keys)
    }

    fn load_checked(path: &Path) -> Result<(PublicKeys, VerifyingKey), KeyError> {
        let file = File::open(path).map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
        check_dir_not_writable_by_others(parent_of(path), "a public key")?;
        let text = read_limited(file, path)?;
        PublicKeys::parse_checked(&text, path)
    }
}

/// The callers a node trusts: caller id (the `.pub` file name without its extension) → public
/// keys. A request's caller id is proven by the key its signature verifies with, never taken from
/// what the request says about itself.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    callers: BTreeMap<String, Trusted>,
    skipped: Vec<(PathBuf, String)>,
    /// Signatures this ring and its clones already checked (see memo.rs); only where asked for.
    memo: Option<std::sync::Arc<VerifiedMemo>>,
}

/// A trusted key, with its ed25519 point decompressed once: a verify then skips the
/// decompression, a fifth of its cost, on every request a node checks and every reply a
/// console checks.
#[derive(Debug, Clone)]
struct Trusted {
    keys: PublicKeys,
    verifier: VerifyingKey,
}

impl Trusted {
    fn new(keys: PublicKeys) -> Option<Trusted> {
        VerifyingKey::from_bytes(&keys.signing).ok().filter(|k| !k.is_weak()).map(|verifier| Trusted { keys, verifier })
    }

    /// Strict verification, as [`verify`] does it.
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_slice(signature).is_ok_and(|sig| self.verifier.verify_strict(message, &sig).is_ok())
    }
}

/// What a node calls its [`Keyring`].
pub type TrustedCallers = Keyring;

impl Keyring {
    /// Reads every `*.pub` file in `dir`. A file that does not parse, or whose name is not a valid
    /// caller id, is left out with a warning (see [`Keyring::skipped`]): one bad file must not lock
    /// every caller out. A missing or unreadable directory is an error.
    pub fn load(dir: &Path) -> Result<Keyring, KeyError> {
        let entries = fs::read_dir(dir).map_err(|source| KeyError::ReadDir { path: dir.to_path_buf(), source })?;
        check_dir_not_writable_by_others(dir, "the trusted callers")?;
        let mut ring = Keyring::default();
        let mut paths: Vec<PathBuf> =
            entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == PUBLIC_EXT)).collect();
        paths.sort();
        for path in paths {
            let Some(caller) = path.file_stem().and_then(|s| s.to_str()).map(str::to_string) else {
                ring.skip(path, "the file name is not valid UTF-8".into());
                continue;
            };
            if let Err(e) = check_name(&caller) {
                ring.skip(path, e.to_string());
                continue;
            }
            match PublicKeys::load_checked(&path) {
                Ok((keys, verifier)) => {
                    ring.callers.insert(caller, Trusted { keys, verifier });
                }
                Err(e) => ring.skip(path, e.to_string()),
            }
        }
        Ok(ring)
    }

    fn skip(&mut self, path: PathBuf, why: String) {
        tracing::warn!(file = %path.display(), reason = %why, "ignoring caller key");
        self.skipped.push((path, why));
    }

    /// Trusts `caller` with `keys` (replacing any earlier key of that caller). A signing key that
    /// is not a valid, non-weak ed25519 point is refused.
    pub fn insert(&mut self, caller: &str, keys: PublicKeys) -> Result<(), KeyError> {
        check_name(caller)?;
        let trusted = Trusted::new(keys)
            .ok_or(KeyError::InvalidName { name: caller.to_string(), why: "its signing key is not a usable ed25519 public key" })?;
        self.callers.insert(caller.to_string(), trusted);
        Ok(())
    }

    pub fn get(&self, caller: &str) -> Option<&PublicKeys> {
        self.callers.get(caller).map(|t| &t.keys)
    }

    pub fn callers(&self) -> impl Iterator<Item = &str> {
        self.callers.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.callers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.callers.is_empty()
    }

    /// Files left out by [`Keyring::load`], with the reason.
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }

    /// Checks that `signature` over `message` was made by `caller`'s key. `caller` is only a hint
    /// for which key to try; success is what proves it.
    pub fn verify(&self, caller: &str, message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        let trusted = self.callers.get(caller).ok_or_else(|| VerifyError::UnknownCaller(caller.to_string()))?;
        let Some(memo) = &self.memo else {
            return if trusted.verify(message, signature) { Ok(()) } else { Err(VerifyError::BadSignature(caller.to_string())) };
        };
        let key = VerifiedMemo::key(&trusted.keys.signing, message, signature);
        if memo.contains(&key) {
            return Ok(());
        }
        if !trusted.verify(message, signature) {
            return Err(VerifyError::BadSignature(caller.to_string()));
        }
        memo.insert(key);
        Ok(())
    }

    /// This ring, with its clones sharing one record of the signatures they checked, so a signed
    /// message that many of them verify is checked once. For `noded sim`, whose nodes share a
    /// process; a real node has nobody to share with.
    pub fn sharing_verifications(mut self) -> Keyring {
        self.memo = Some(Default::default());
        self
    }

    /// Which trusted caller made `signature`, trying every key. For when no signer hint is sent.
    pub fn identify(&self, message: &[u8], signature: &[u8]) -> Option<&str> {
        self.callers.iter().find(|(_, k)| k.verify(message, signature)).map(|(c, _)| c.as_str())
    }
}

/// Key and caller names: they become file names, so no separators, no leading dot, no spaces.
pub fn check_name(name: &str) -> Result<(), KeyError> {
    let bad = |why| Err(KeyError::InvalidName { name: name.to_string(), why });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 200 {
        return bad("it is longer than 200 bytes");
    }
    if name.starts_with('.') {
        return bad("it starts with '.'");
    }
    if name.chars().any(|c| c == '/' || c == '\\' || c.is_whitespace() || c.is_control()) {
        return bad("it contains a path separator, a space or a control character");
    }
    Ok(())
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct PrivateFile {
    format: String,
    signing: String,
    link: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicFile {
    format: String,
    signing: String,
    link: String,
}

fn format_err(path: &Path, message: impl Into<String>) -> KeyError {
    KeyError::Format { path: path.to_path_buf(), message: message.into() }
}

fn read_limited(file: File, path: &Path) -> Result<Zeroizing<String>, KeyError> {
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_KEY_FILE + 1).read_to_string(&mut text).map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(format_err(path, format!("larger than {MAX_KEY_FILE} bytes; not a key file")));
    }
    Ok(text)
}

fn decode_key(text: &str, field: &str, path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let bytes = Zeroizing::new(BASE64.decode(text.trim()).map_err(|e| format_err(path, format!("{field}: not valid base64 ({e})")))?);
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(format_err(path, format!("{field}: a key is 32 bytes, this one is {}", bytes.len())));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Writes `bytes` to a temp file created with `mode` next to `path`, syncs it and renames it over
/// `path`, so a reader sees the old file or the whole new one, and a secret is never readable by
/// others even for a moment.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    crate::files::write_atomically(path, bytes, mode).map_err(|source| KeyError::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let pair = KeyPair::generate();
        let (private, public) = pair.save(dir.path(), "alice").unwrap();
        assert_eq!(private, dir.path().join("alice.key"));
        assert_eq!(public, dir.path().join("alice.pub"));
        assert_eq!(fs::metadata(&private).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&public).unwrap().mode() & 0o777, 0o644);

        let loaded = load_private(&private).unwrap();
        assert_eq!(loaded.public(), pair.public());
        assert_eq!(loaded.link_private(), pair.link_private());
        assert_eq!(load_public(&public).unwrap(), pair.public());

        // Deterministic signatures: the loaded key signs exactly as the original.
        let msg = b"request body";
        assert_eq!(loaded.sign(msg), pair.sign(msg));
        assert!(verify(&pair.public().signing, msg, &loaded.sign(msg)));

        // No temp files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn save_refuses_to_overwrite_and_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        KeyPair::generate().save(dir.path(), "node1").unwrap();
        let e = KeyPair::generate().save(dir.path(), "node1").unwrap_err();
        assert!(matches!(e, KeyError::Exists { .. }), "{e}");
        for bad in ["", "../x", "a/b", ".hidden", "with space"] {
            assert!(matches!(KeyPair::generate().save(dir.path(), bad), Err(KeyError::InvalidName { .. })), "{bad}");
        }
    }

    #[test]
    fn save_creates_the_directory_private() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        KeyPair::generate().save(&keys, "hub").unwrap();
        assert_eq!(fs::metadata(&keys).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn keys_in_a_directory_others_may_write_are_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = KeyPair::generate().save(&dir.path().join("keys"), "k").unwrap();
        let keys = dir.path().join("keys");
        for mode in [0o777, 0o775, 0o1777, 0o757] {
            chmod(&keys, mode);
            let e = load_private(&private).unwrap_err();
            assert!(matches!(e, KeyError::LooseDirectory { .. }), "{mode:o}: {e:?}");
            assert!(e.to_string().contains(&keys.display().to_string()) && e.to_string().contains("chmod go-w"), "{e}");
            assert!(matches!(load_public(&public), Err(KeyError::LooseDirectory { .. })));
            assert!(matches!(Keyring::load(&keys), Err(KeyError::LooseDirectory { .. })));
        }
        chmod(&keys, 0o755);
        assert!(load_private(&private).is_ok() && load_public(&public).is_ok() && Keyring::load(&keys).is_ok());
    }

    #[test]
    fn loose_private_file_is_refused_naming_file_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let (private, _) = KeyPair::generate().save(dir.path(), "alice").unwrap();
        chmod(&private, 0o644);
        let e = load_private(&private).unwrap_err();
        assert!(matches!(e, KeyError::LoosePermissions { mode: 0o644, .. }), "{e:?}");
        let shown = e.to_string();
        assert!(shown.contains(&private.display().to_string()) && shown.contains("0644"), "{shown}");
        for mode in [0o640, 0o604, 0o660, 0o601, 0o610] {
            chmod(&private, mode);
            assert!(matches!(load_private(&private), Err(KeyError::LoosePermissions { .. })), "{mode:o}");
        }
        chmod(&private, 0o400);
        assert!(load_private(&private).is_ok());
        chmod(&private, 0o600);
        assert!(load_private(&private).is_ok());
    }

    #[test]
    fn malformed_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str, mode: u32| {
            let p = dir.path().join(name);
            fs::write(&p, text).unwrap();
            chmod(&p, mode);
            p
        };
        let short = write("short.pub", "format = \"fleet-public-key-v1\"\nsigning = \"AAAA\"\nlink = \"AAAA\"\n", 0o644);
        let e = load_public(&short).unwrap_err().to_string();
        assert!(e.contains("short.pub") && e.contains("signing: a key is 32 bytes, this one is 3"), "{e}");

        let unknown = write("extra.pub", &KeyPair::generate().public().to_file_text("x").replace("link", "lnk"), 0o644);
        let e = load_public(&unknown).unwrap_err().to_string();
        assert!(e.contains("extra.pub") && e.contains("lnk"), "{e}");

        let swapped = write("swapped.key", &KeyPair::generate().public().to_file_text("x"), 0o600);
        let e = load_private(&swapped).unwrap_err().to_string();
        assert!(e.contains("format is 'fleet-public-key-v1', expected 'fleet-private-key-v1'"), "{e}");

        let garbage = write("garbage.pub", "format = \"fleet-public-key-v1\"\nsigning = \"!!\"\nlink = \"\"\n", 0o644);
        assert!(load_public(&garbage).unwrap_err().to_string().contains("signing: not valid base64"));

        let missing = dir.path().join("nope.key");
        assert!(matches!(load_private(&missing), Err(KeyError::Read { .. })));
    }

    #[test]
    fn tampered_message_or_signature_fails() {
        let pair = KeyPair::generate();
        let other = KeyPair::generate();
        let msg = b"agent=process action=kill pid=1234";
        let sig = pair.sign(msg);
        let pk = pair.public();
        assert!(pk.verify(msg, &sig));
        assert!(!pk.verify(b"agent=process action=kill pid=1235", &sig));
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(!pk.verify(msg, &bad));
        assert!(!pk.verify(msg, &sig[..63]), "short signature");
        assert!(!pk.verify(msg, &[sig.as_slice(), &[0]].concat()), "long signature");
        assert!(!pk.verify(msg, &[]), "no signature");
        assert!(!other.public().verify(msg, &sig), "someone else's key");
        assert!(!verify(&[0u8; 32], msg, &sig), "weak or invalid key");
    }

    #[test]
    fn keyring_maps_file_names_to_callers() {
        let dir = tempfile::tempdir().unwrap();
        let alice = KeyPair::generate();
        let bob = KeyPair::generate();
        let keys = tempfile::tempdir().unwrap();
        let (_, alice_pub) = alice.save(keys.path(), "alice").unwrap();
        let (_, bob_pub) = bob.save(keys.path(), "bob").unwrap();
        // The trusting side chooses the id: bob's key installed as "robert".
        fs::copy(&alice_pub, dir.path().join("alice.pub")).unwrap();
        fs::copy(&bob_pub, dir.path().join("robert.pub")).unwrap();
        fs::write(dir.path().join("broken.pub"), "nonsense").unwrap();
        fs::write(dir.path().join("README"), "not a key").unwrap();

        let ring = TrustedCallers::load(dir.path()).unwrap();
        assert_eq!(ring.callers().collect::<Vec<_>>(), ["alice", "robert"]);
        assert_eq!(ring.skipped().len(), 1);
        assert!(ring.skipped()[0].0.ends_with("broken.pub"));

        let msg = b"body";
        let sig = bob.sign(msg);
        assert_eq!(ring.verify("robert", msg, &sig), Ok(()));
        // Claiming to be alice with bob's signature fails: the id is proven, not claimed.
        assert_eq!(ring.verify("alice", msg, &sig), Err(VerifyError::BadSignature("alice".into())));
        assert_eq!(ring.verify("bob", msg, &sig), Err(VerifyError::UnknownCaller("bob".into())));
        assert_eq!(ring.identify(msg, &sig), Some("robert"));
        assert_eq!(ring.identify(msg, &KeyPair::generate().sign(msg)), None);

        assert!(matches!(Keyring::load(&dir.path().join("missing")), Err(KeyError::ReadDir { .. })));
    }

    /// The raw link keys work as Noise static keys: an IK handshake where the initiator pins the
    /// responder's public link key, and the responder learns the initiator's.
    #[test]
    fn link_keys_drive_a_noise_ik_handshake() {
        let params: snow::params::NoiseParams = "Noise_IK_25519_ChaChaPoly_BLAKE2s".parse().unwrap();
        let hub = KeyPair::generate();
        let node = KeyPair::generate();
        let hub_pub = hub.public().link;
        let mut initiator = snow::Builder::new(params.clone())
            .local_private_key(node.link_private())
            .unwrap()
            .remote_public_key(&hub_pub)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut responder = snow::Builder::new(params).local_private_key(hub.link_private()).unwrap().build_responder().unwrap();
        let (mut buf, mut payload) = ([0u8; 1024], [0u8; 1024]);
        let n = initiator.write_message(b"", &mut buf).unwrap();
        responder.read_message(&buf[..n], &mut payload).unwrap();
        assert_eq!(responder.get_remote_static().unwrap(), node.public().link);
        let n = responder.write_message(b"", &mut buf).unwrap();
        initiator.read_message(&buf[..n], &mut payload).unwrap();
        let mut node_tx = initiator.into_transport_mode().unwrap();
        let mut hub_rx = responder.into_transport_mode().unwrap();
        let n = node_tx.write_message(b"registration", &mut buf).unwrap();
        let m = hub_rx.read_message(&buf[..n], &mut payload).unwrap();
        assert_eq!(&payload[..m], b"registration");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Flipping any bit of a signed message never verifies.
        #[test]
        fn flipped_message_bit_never_verifies(msg in proptest::collection::vec(any::<u8>(), 1..256), idx in any::<prop::sample::Index>(), bit in 0u8..8) {
            let pair = KeyPair::from_secret_bytes(&[7; 32], &[9; 32]);
            let sig = pair.sign(&msg);
            let mut bad = msg.clone();
            bad[idx.index(msg.len())] ^= 1 << bit;
            prop_assert!(!pair.public().verify(&bad, &sig));
        }

        /// Replacing any byte of a message, or of its signature, with a different value never verifies.
        #[test]
        fn replaced_byte_never_verifies(msg in proptest::collection::vec(any::<u8>(), 1..256), idx in any::<prop::sample::Index>(), delta in 1u8..=255, in_sig in any::<bool>()) {
            let pair = KeyPair::from_secret_bytes(&[3; 32], &[4; 32]);
            let sig = pair.sign(&msg);
            let (mut msg2, mut sig2) = (msg.clone(), sig);
            if in_sig {
                let i = idx.index(SIGNATURE_LEN);
                sig2[i] = sig2[i].wrapping_add(delta);
            } else {
                let i = idx.index(msg.len());
                msg2[i] = msg2[i].wrapping_add(delta);
            }
            prop_assert!(!pair.public().verify(&msg2, &sig2));
        }

        /// Flipping any bit of the signature never verifies.
        #[test]
        fn flipped_signature_bit_never_verifies(msg in proptest::collection::vec(any::<u8>(), 0..256), idx in 0usize..SIGNATURE_LEN, bit in 0u8..8) {
            let pair = KeyPair::from_secret_bytes(&[5; 32], &[6; 32]);
            let mut sig = pair.sign(&msg);
            sig[idx] ^= 1 << bit;
            prop_assert!(!pair.public().verify(&msg, &sig));
        }

        /// Truncating or extending a signed message never verifies.
        #[test]
        fn resized_message_never_verifies(msg in proptest::collection::vec(any::<u8>(), 1..256), cut in any::<prop::sample::Index>(), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
            let pair = KeyPair::from_secret_bytes(&[1; 32], &[2; 32]);
            let sig = pair.sign(&msg);
            prop_assert!(!pair.public().verify(&msg[..cut.index(msg.len())], &sig));
            prop_assert!(!pair.public().verify(&[msg.as_slice(), &extra].concat(), &sig));
        }
    }
}
