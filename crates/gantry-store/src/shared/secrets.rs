//! The [`SecretStore`] port on the store's database, each value encrypted with age
//! (`crate::secrets`: the key, and what is encrypted).

use super::Pool;
use crate::SecretKey;
use crate::rows::{Cols, db};
use async_trait::async_trait;
use gantry_core::secret::{self, Scope};
use gantry_engine::ports::{Clock, Resolved, SecretError, SecretMeta, SecretStore, SystemClock};
use sqlx::Row;

/// Secrets in the store's database, encrypted with age.
#[derive(Clone)]
pub struct Secrets {
    pub(crate) write: Pool,
    pub(crate) read: Pool,
    pub(crate) key: SecretKey,
}

fn store_err(e: sqlx::Error) -> SecretError {
    SecretError::Store(db(e).to_string())
}

fn meta_err(e: gantry_engine::ports::StoreError) -> SecretError {
    SecretError::Store(e.to_string())
}

#[async_trait]
impl SecretStore for Secrets {
    async fn set(&self, scope: &Scope, name: &str, value: &str) -> Result<(), SecretError> {
        secret::check_name(name).map_err(SecretError::Invalid)?;
        secret::check_value(value).map_err(SecretError::Invalid)?;
        let scope = scope.as_string();
        let ciphertext = self.key.encrypt(&scope, name, value)?;
        let now = SystemClock.now_ms();
        sqlx::query(
            "INSERT INTO secrets (scope, name, ciphertext, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT(scope, name) DO UPDATE SET ciphertext = $3, updated_at = $4",
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
        rows.iter()
            .map(|r| {
                Ok(SecretMeta {
                    scope: r.text("scope").map_err(meta_err)?,
                    name: r.text("name").map_err(meta_err)?,
                    created_at_ms: r.int("created_at").map_err(meta_err)?,
                    updated_at_ms: r.int("updated_at").map_err(meta_err)?,
                })
            })
            .collect()
    }

    async fn delete(&self, scope: &Scope, name: &str) -> Result<bool, SecretError> {
        let done = sqlx::query("DELETE FROM secrets WHERE scope = $1 AND name = $2")
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
            let rows = sqlx::query("SELECT scope, ciphertext FROM secrets WHERE name = $1")
                .bind(name)
                .fetch_all(&self.read)
                .await
                .map_err(store_err)?;
            let pick = |want: &str| {
                rows.iter()
                    .find(|r| r.text("scope").is_ok_and(|s| s == want))
            };
            let row = repo_scope
                .as_deref()
                .and_then(pick)
                .or_else(|| pick("global"));
            match row {
                Some(r) => {
                    let scope: String = r.try_get("scope").map_err(store_err)?;
                    let ct: Vec<u8> = r.try_get("ciphertext").map_err(store_err)?;
                    out.values
                        .push((name.clone(), self.key.decrypt(&scope, name, &ct)?));
                }
                None => out.missing.push(name.clone()),
            }
        }
        Ok(out)
    }
}
