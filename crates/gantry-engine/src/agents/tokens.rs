//! Agent tokens (32 random bytes, shown once, stored as SHA-256, compared in constant time)
//! and the server's callback key (made once, kept in the data dir, never logged).

use super::{AgentError, Agents, now_ms};
use crate::ports::AgentToken;
use gantry_core::agents::{same_bytes, token_hash};
use std::path::Path;

/// The prefix of every agent token (so a leaked one is recognisable).
pub const TOKEN_PREFIX: &str = "gat_";

fn random_hex(n: usize) -> Result<String, String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Agents {
    /// The name of the token `plain`, or `Unauthorized` (unknown or revoked).
    pub async fn authenticate(&self, plain: &str) -> Result<String, AgentError> {
        let hash = token_hash(plain);
        let mut found = None;
        for (name, stored) in self.queue.token_hashes().await? {
            if same_bytes(&stored, &hash) {
                found = Some(name);
            }
        }
        let name = found.ok_or(AgentError::Unauthorized)?;
        self.queue.touch_token(&name, now_ms()).await?;
        Ok(name)
    }

    /// Makes a token called `name`: the token, to be shown once.
    pub async fn create_token(&self, name: &str) -> Result<String, AgentError> {
        gantry_core::agents::check_label(name)
            .map_err(|e| AgentError::Invalid(format!("token name: {e}")))?;
        let token = format!(
            "{TOKEN_PREFIX}{}",
            random_hex(32).map_err(AgentError::Invalid)?
        );
        if !self
            .queue
            .create_token(name, &token_hash(&token), now_ms())
            .await?
        {
            return Err(AgentError::Conflict(format!(
                "an agent token named `{name}` exists; revoke it first"
            )));
        }
        tracing::info!(name, "agent token created");
        Ok(token)
    }

    pub async fn list_tokens(&self) -> Result<Vec<AgentToken>, AgentError> {
        Ok(self.queue.list_tokens().await?)
    }

    /// Revokes a token: every request with it is refused from now on, polls included.
    pub async fn revoke_token(&self, name: &str) -> Result<(), AgentError> {
        if !self.queue.revoke_token(name).await? {
            return Err(AgentError::NotFound(format!(
                "no agent token named `{name}`"
            )));
        }
        tracing::info!(name, "agent token revoked");
        self.work.notify_waiters();
        Ok(())
    }
}

/// Reads the callback key at `path`, creating it (mode 0600, 32 random bytes as hex) if it is
/// missing.
pub fn load_or_create_key(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let hex = text.trim();
            if hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("{}: not a callback key", path.display()));
            }
            Ok(hex.as_bytes().to_vec())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let hex = random_hex(32)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            f.write_all(format!("{hex}\n").as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(hex.into_bytes())
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}
