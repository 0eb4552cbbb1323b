//! The [`SecretStore`] port on the same SQLite database, each value encrypted with age to the
//! server's X25519 key. The key lives in the data dir (`secret.key`, mode 0600, created on
//! first start) unless one is supplied (`GANTRY_SECRET_KEY` or a key file).

use crate::rows::db;
use crate::sqlite::SqliteStore;
use age::secrecy::ExposeSecret;
use async_trait::async_trait;
use gantry_core::secret::{self, Scope};
use gantry_engine::ports::{
    Clock, Resolved, SecretError, SecretMeta, SecretStore, SecretValue, SystemClock,
};
use sqlx::Row;
use sqlx::sqlite::SqlitePool;
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

/// Secrets in SQLite, encrypted with age.
#[derive(Clone)]
pub struct SqliteSecrets {
    write: SqlitePool,
    read: SqlitePool,
    key: SecretKey,
}

impl SqliteStore {
    pub fn secrets(&self, key: SecretKey) -> SqliteSecrets {
        let (write, read) = self.pools();
        SqliteSecrets { write, read, key }
    }
}

/// What is encrypted: scope and name bind the value to its row.
fn plaintext(scope: &str, name: &str, value: &str) -> Vec<u8> {
    format!("{scope}\n{name}\n{value}").into_bytes()
}

impl SqliteSecrets {
    fn open(&self, scope: &str, name: &str, ciphertext: &[u8]) -> Result<SecretValue, SecretError> {
        let plain = age::decrypt(&self.key.0, ciphertext).map_err(|_| {
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

fn store_err(e: sqlx::Error) -> SecretError {
    SecretError::Store(db(e).to_string())
}

#[async_trait]
impl SecretStore for SqliteSecrets {
    async fn set(&self, scope: &Scope, name: &str, value: &str) -> Result<(), SecretError> {
        secret::check_name(name).map_err(SecretError::Invalid)?;
        secret::check_value(value).map_err(SecretError::Invalid)?;
        let scope = scope.as_string();
        let ciphertext = age::encrypt(&self.key.0.to_public(), &plaintext(&scope, name, value))
            .map_err(|e| SecretError::Store(format!("cannot encrypt: {e}")))?;
        let now = SystemClock.now_ms();
        sqlx::query(
            "INSERT INTO secrets (scope, name, ciphertext, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT(scope, name) DO UPDATE SET ciphertext = ?3, updated_at = ?4",
        )
        .bind(&scope)
        .bind(name)
        .bind(ciphertext)
        .bind(now)
        .execute(&self.write)
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<SecretMeta>, SecretError> {
        let rows = sqlx::query(
            "SELECT scope, name, created_at, updated_at FROM secrets ORDER BY scope, name",
        )
        .fetch_all(&self.read)
        .await
        .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(|r| SecretMeta {
                scope: r.get(0),
                name: r.get(1),
                created_at_ms: r.get(2),
                updated_at_ms: r.get(3),
            })
            .collect())
    }

    async fn delete(&self, scope: &Scope, name: &str) -> Result<bool, SecretError> {
        let done = sqlx::query("DELETE FROM secrets WHERE scope = ?1 AND name = ?2")
            .bind(scope.as_string())
            .bind(name)
            .execute(&self.write)
            .await
            .map_err(store_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn resolve(&self, names: &[String], repo: Option<&str>) -> Result<Resolved, SecretError> {
        let mut out = Resolved::default();
        let repo_scope = repo.map(|r| Scope::Repo(r.to_string()).as_string());
        for name in names {
            let rows = sqlx::query("SELECT scope, ciphertext FROM secrets WHERE name = ?1")
                .bind(name)
                .fetch_all(&self.read)
                .await
                .map_err(store_err)?;
            let pick = |want: &str| rows.iter().find(|r| r.get::<String, _>(0) == want);
            let row = repo_scope
                .as_deref()
                .and_then(pick)
                .or_else(|| pick("global"));
            match row {
                Some(r) => {
                    let scope: String = r.get(0);
                    let ct: Vec<u8> = r.get(1);
                    out.values
                        .push((name.clone(), self.open(&scope, name, &ct)?));
                }
                None => out.missing.push(name.clone()),
            }
        }
        Ok(out)
    }
}
