//! SQLite: API keys (hashes only).

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::store::{KeyRecord, KeyStore, StoreError};

fn record(r: &sqlx::sqlite::SqliteRow) -> KeyRecord {
    KeyRecord {
        id: r.get(0),
        tenant: r.get(1),
        scopes: r.get::<String, _>(2).split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        created_at_ms: r.get(3),
        revoked_at_ms: r.get(4),
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn create_key(&self, key: &KeyRecord, key_hash: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO api_keys (id, tenant, scopes, key_hash, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&key.id)
            .bind(&key.tenant)
            .bind(key.scopes.join(","))
            .bind(key_hash)
            .bind(key.created_at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn key_by_hash(&self, key_hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query("SELECT id, tenant, scopes, created_at, revoked_at FROM api_keys WHERE key_hash = ?")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(record))
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT id, tenant, scopes, created_at, revoked_at FROM api_keys ORDER BY created_at, id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(record).collect())
    }

    async fn revoke_key(&self, id: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(crate::trace::now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }
}
