//! SQLite: stored Responses (conversation and Response object), per tenant, kept 30 days.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::store::{ResponseStore, StoreError, StoredResponse, RESPONSE_RETENTION_MS};

fn json<T: serde::de::DeserializeOwned>(r: &sqlx::sqlite::SqliteRow, i: usize, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(&r.get::<String, _>(i))
        .map_err(|e| StoreError::Corrupt(format!("stored response {what}: {e}")))
}

#[async_trait]
impl ResponseStore for SqliteStore {
    async fn put_response(&self, r: &StoredResponse) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM responses WHERE created_at < ?")
            .bind(r.created_at_ms - RESPONSE_RETENTION_MS)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT OR REPLACE INTO responses (id, tenant, created_at, messages, response) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&r.id)
        .bind(&r.tenant)
        .bind(r.created_at_ms)
        .bind(
            serde_json::to_string(&r.messages)
                .map_err(|e| StoreError::Corrupt(format!("stored response messages: {e}")))?,
        )
        .bind(r.response.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_response(&self, tenant: &str, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT id, tenant, created_at, messages, response FROM responses WHERE id = ? AND tenant = ? AND created_at >= ?",
        )
        .bind(id)
        .bind(tenant)
        .bind(crate::trace::now_ms() - RESPONSE_RETENTION_MS)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(StoredResponse {
            id: r.get(0),
            tenant: r.get(1),
            created_at_ms: r.get(2),
            messages: json(&r, 3, "messages")?,
            response: json(&r, 4, "response")?,
        }))
    }

    async fn delete_response(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM responses WHERE id = ? AND tenant = ?")
            .bind(id)
            .bind(tenant)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}
