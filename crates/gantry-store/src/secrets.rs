//! The secret store's key and its encryption: each value is encrypted with age to the
//! server's X25519 key, with its scope and name inside the ciphertext. The key lives in the
//! data dir (`secret.key`, mode 0600, created on first start) unless one is supplied
//! (`GANTRY_SECRET_KEY` or a key file). The [`SecretStore`](gantry_engine::ports::SecretStore)
//! itself is in `shared/secrets.rs`, on either backend's database.

use age::secrecy::ExposeSecret;
use gantry_engine::ports::{SecretError, SecretValue};
use std::path::Path;

/// The age identity that encrypts and decrypts secret values.
#[derive(Clone)]
pub struct SecretKey(age::x25519::Identity);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.0.to_public())
    }
}

impl SecretKey {
    /// Parses an `AGE-SECRET-KEY-1…` identity (surrounding whitespace and `#` comment lines
    /// are ignored, as in age key files).
    pub fn parse(text: &str) -> Result<SecretKey, String> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or("");
        line.parse::<age::x25519::Identity>()
            .map(SecretKey)
            .map_err(|_| "the secret key is not an age X25519 identity (AGE-SECRET-KEY-1…)".into())
    }

    /// Reads the key file at `path`, creating it (mode 0600) with a new key if it is missing.
    pub fn load_or_create(path: &Path) -> Result<SecretKey, String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::read_to_string(path) {
            Ok(text) => SecretKey::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                let id = age::x25519::Identity::generate();
                let text = format!(
                    "# Gantry's secret store key: losing it loses every stored secret.\n# public key: {}\n{}\n",
                    id.to_public(),
                    id.to_string().expose_secret()
                );
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                f.write_all(text.as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Ok(SecretKey(id))
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// What is encrypted: scope and name bind the value to its row.
fn plaintext(scope: &str, name: &str, value: &str) -> Vec<u8> {
    format!("{scope}\n{name}\n{value}").into_bytes()
}

impl SecretKey {
    /// `value` encrypted for the row (`scope`, `name`).
    pub(crate) fn encrypt(
        &self,
        scope: &str,
        name: &str,
        value: &str,
    ) -> Result<Vec<u8>, SecretError> {
        age::encrypt(&self.0.to_public(), &plaintext(scope, name, value))
            .map_err(|e| SecretError::Store(format!("cannot encrypt: {e}")))
    }

    /// The value of the row (`scope`, `name`), decrypted and checked to be that row's.
    pub(crate) fn decrypt(
        &self,
        scope: &str,
        name: &str,
        ciphertext: &[u8],
    ) -> Result<SecretValue, SecretError> {
        let plain = age::decrypt(&self.0, ciphertext).map_err(|_| {
            SecretError::Store(format!(
                "secret `{name}` ({scope}) cannot be decrypted with this server's key"
            ))
        })?;
        let text = String::from_utf8(plain)
            .map_err(|_| SecretError::Store(format!("secret `{name}` ({scope}) is corrupt")))?;
        let prefix = format!("{scope}\n{name}\n");
        text.strip_prefix(&prefix)
            .map(|v| SecretValue::new(v.to_string()))
            .ok_or_else(|| {
                SecretError::Store(format!(
                    "secret `{name}` ({scope}) was encrypted for another name or scope"
                ))
            })
    }
}
