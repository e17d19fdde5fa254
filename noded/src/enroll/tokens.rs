//! Join tokens on the hub: `noded hub token` records one under `tokens/` (its role, name, uses
//! left, expiry and the SHA-256 of its secret, never the secret); the enrollment thread redeems
//! it when an unknown key's handshake carries a matching [`JoinProof`].

use std::path::{Path, PathBuf};

use fleet_protocol::join::{JoinProof, JoinToken, secret_hash};
use fleet_protocol::keys::PublicKeys;
use serde::{Deserialize, Serialize};

use super::{Enrollment, Role, Verdict, with_role, write_text};

/// Where tokens are recorded, in the enrollment directory.
pub const TOKENS_DIR: &str = "tokens";

/// What `noded hub token` asks for.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub role: Role,
    /// The enrolled name; required for a console (it is the caller id), a node's own claim when unset.
    pub name: Option<String>,
    /// How many keys may join with it.
    pub uses: u32,
    /// Seconds it stays valid.
    pub ttl_s: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    role: String,
    name: Option<String>,
    uses: u32,
    expires_ms: u64,
    secret_sha256: String,
}

fn record_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(TOKENS_DIR).join(format!("{id}.toml"))
}

/// Records a new token for the hub at `endpoint` with keys `hub`, and returns it.
pub fn create_token(dir: &Path, endpoint: &str, hub: PublicKeys, req: &TokenRequest) -> Result<JoinToken, String> {
    if let Some(name) = &req.name {
        fleet_protocol::keys::check_name(name).map_err(|e| e.to_string())?;
    }
    if req.role == Role::Console && req.name.is_none() {
        return Err("a console token needs --name NAME: the admin's caller id".into());
    }
    if req.uses == 0 {
        return Err("--uses must be at least 1".into());
    }
    let tokens = dir.join(TOKENS_DIR);
    fleet_protocol::files::create_private_dir(&tokens).map_err(|e| format!("{}: {e}", tokens.display()))?;
    let token = JoinToken::generate(endpoint, hub);
    let record = Record {
        role: req.role.to_string(),
        name: req.name.clone(),
        uses: req.uses,
        expires_ms: fleet_protocol::now_ms() + req.ttl_s.saturating_mul(1000),
        secret_sha256: secret_hash(&token.secret),
    };
    let path = record_path(dir, &token.id);
    let text = toml::to_string(&record).map_err(|e| e.to_string())?;
    fleet_protocol::files::write_atomically(&path, text.as_bytes(), 0o600).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(token)
}

impl Enrollment {
    /// Enrolls `link_key` if `proof` redeems a live token: the secret matches, the joiner signed
    /// with the key it names, the name is free. Each use is counted; the last removes the token.
    pub(super) fn redeem(&mut self, link_key: &[u8; 32], claimed: &str, proof: &JoinProof) -> Verdict {
        match self.try_redeem(link_key, claimed, proof) {
            Ok((name, role)) => {
                tracing::info!(name = %name, role = %role, token = %proof.id, "enrolled a key with a join token");
                self.rescan(true);
                Verdict::Accepted(name, role)
            }
            Err(why) => {
                tracing::warn!(token = %proof.id, claimed, reason = %why, "join refused");
                Verdict::Refused(format!("join refused: {why}"))
            }
        }
    }

    fn try_redeem(&mut self, link_key: &[u8; 32], claimed: &str, proof: &JoinProof) -> Result<(String, Role), String> {
        if proof.id.len() != 8 || !proof.id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("malformed token id".into());
        }
        let path = record_path(&self.dir, &proof.id);
        let text = std::fs::read_to_string(&path).map_err(|_| "unknown or used-up token".to_string())?;
        let mut record: Record = toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message().trim()))?;
        if fleet_protocol::now_ms() > record.expires_ms {
            let _ = std::fs::remove_file(&path);
            return Err("the token has expired (make a new one: noded hub token)".into());
        }
        if record.secret_sha256 != proof.secret_hash() {
            return Err("wrong token secret".into());
        }
        if !proof.signed_by_holder_of(link_key) {
            return Err("the joiner's signature does not cover its link key".into());
        }
        let role: Role = record.role.parse()?;
        let name = record.name.clone().unwrap_or_else(|| claimed.to_string());
        fleet_protocol::keys::check_name(&name).map_err(|e| e.to_string())?;
        if self.snapshot.accepted.values().any(|(n, _)| *n == name) || self.snapshot.legacy.values().any(|n| *n == name) {
            return Err(format!("'{name}' is already enrolled with another key (reject it first to replace it)"));
        }
        let keys = PublicKeys { signing: proof.signing, link: *link_key };
        if role == Role::Console
            && let Some(callers) = &self.callers_dir
        {
            let caller = callers.join(format!("{name}.pub"));
            match PublicKeys::load(&caller) {
                Ok(old) if old != keys => return Err(format!("caller '{name}' already has another key in {}", callers.display())),
                Ok(_) => {}
                Err(_) => {
                    fleet_protocol::files::create_private_dir(callers).map_err(|e| format!("{}: {e}", callers.display()))?;
                    write_text(&caller, &keys.to_file_text(&name)).map_err(|e| format!("{}: {e}", caller.display()))?;
                }
            }
        }
        let accepted = self.dir.join("accepted").join(format!("{name}.pub"));
        write_text(&accepted, &with_role(&keys.to_file_text(&name), role)).map_err(|e| format!("{}: {e}", accepted.display()))?;
        let _ = std::fs::remove_file(self.dir.join("pending").join(format!("{name}.pub")));
        record.uses -= 1;
        if record.uses == 0 {
            let _ = std::fs::remove_file(&path);
        } else if let Ok(text) = toml::to_string(&record) {
            let _ = fleet_protocol::files::write_atomically(&path, text.as_bytes(), 0o600);
        }
        Ok((name, role))
    }
}
