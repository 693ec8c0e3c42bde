//! SQLite: the escalation queue. State changes are conditional updates, so a claim or a
//! resolve that lost a race is reported as a conflict, never applied twice.

use async_trait::async_trait;
use sqlx::Row;

use super::conversations::append_turn;
use super::SqliteStore;
use crate::governance::Escalation;
use crate::store::{EscalationStore, StoreError};

const COLUMNS: &str = "id, conversation_id, tenant, reason, status, question, transcript, trace_ids, assignee, \
                       created_at, claimed_at, first_reply_at, resolved_at";

fn record(r: &sqlx::sqlite::SqliteRow) -> Result<Escalation, StoreError> {
    let corrupt = |what: &str, e: serde_json::Error| StoreError::Corrupt(format!("escalation {what}: {e}"));
    Ok(Escalation {
        id: r.get(0),
        conversation_id: r.get(1),
        tenant: r.get(2),
        reason: r.get(3),
        status: r.get(4),
        question: r.get(5),
        transcript: serde_json::from_str(&r.get::<String, _>(6)).map_err(|e| corrupt("transcript", e))?,
        trace_ids: serde_json::from_str(&r.get::<String, _>(7)).map_err(|e| corrupt("trace ids", e))?,
        assignee: r.get(8),
        created_at_ms: r.get(9),
        claimed_at_ms: r.get(10),
        first_reply_at_ms: r.get(11),
        resolved_at_ms: r.get(12),
    })
}

impl SqliteStore {
    async fn fetch_escalation(&self, id: &str) -> Result<Escalation, StoreError> {
        self.escalation(id).await?.ok_or_else(|| StoreError::NotFound(format!("no escalation `{id}`")))
    }
}

#[async_trait]
impl EscalationStore for SqliteStore {
    async fn open_escalation(&self, e: &Escalation) -> Result<Escalation, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(conv) = &e.conversation_id {
            let existing = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM escalations WHERE conversation_id = ? AND status != 'resolved' \
                 ORDER BY created_at LIMIT 1"
            ))
            .bind(conv)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = existing {
                return record(&row);
            }
        }
        sqlx::query(&format!("INSERT INTO escalations ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
            .bind(&e.id)
            .bind(&e.conversation_id)
            .bind(&e.tenant)
            .bind(&e.reason)
            .bind(&e.status)
            .bind(&e.question)
            .bind(to_json(&e.transcript))
            .bind(to_json(&e.trace_ids))
            .bind(&e.assignee)
            .bind(e.created_at_ms)
            .bind(e.claimed_at_ms)
            .bind(e.first_reply_at_ms)
            .bind(e.resolved_at_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(e.clone())
    }

    async fn escalation(&self, id: &str) -> Result<Option<Escalation>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM escalations WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn escalations(&self, status: Option<&str>) -> Result<Vec<Escalation>, StoreError> {
        let rows = match status {
            Some(s) => {
                sqlx::query(&format!("SELECT {COLUMNS} FROM escalations WHERE status = ? ORDER BY created_at, id"))
                    .bind(s)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("SELECT {COLUMNS} FROM escalations ORDER BY created_at, id"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(record).collect()
    }

    async fn claim_escalation(&self, id: &str, assignee: &str, now_ms: i64) -> Result<Escalation, StoreError> {
        let n = sqlx::query(
            "UPDATE escalations SET status = 'claimed', assignee = ?, claimed_at = COALESCE(claimed_at, ?) \
             WHERE id = ? AND status != 'resolved' AND (assignee IS NULL OR assignee = ?)",
        )
        .bind(assignee)
        .bind(now_ms)
        .bind(id)
        .bind(assignee)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let e = self.fetch_escalation(id).await?;
        if n == 0 {
            return Err(StoreError::Conflict(match &e.assignee {
                _ if e.status == "resolved" => format!("escalation `{id}` is resolved"),
                Some(who) => format!("escalation `{id}` is claimed by `{who}`"),
                None => format!("escalation `{id}` cannot be claimed"),
            }));
        }
        Ok(e)
    }

    async fn reply_escalation(&self, id: &str, text: &str, now_ms: i64) -> Result<Escalation, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM escalations WHERE id = ?"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let e = row
            .as_ref()
            .map(record)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("no escalation `{id}`")))?;
        if e.status == "resolved" {
            return Err(StoreError::Conflict(format!("escalation `{id}` is resolved")));
        }
        sqlx::query(
            "UPDATE escalations SET status = 'replied', first_reply_at = COALESCE(first_reply_at, ?) WHERE id = ?",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(conv) = &e.conversation_id {
            append_turn(&mut tx, conv, "human", text, None, false).await?;
        }
        tx.commit().await?;
        self.fetch_escalation(id).await
    }

    async fn resolve_escalation(&self, id: &str, now_ms: i64) -> Result<Escalation, StoreError> {
        let n = sqlx::query(
            "UPDATE escalations SET status = 'resolved', resolved_at = ? WHERE id = ? AND status != 'resolved'",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let e = self.fetch_escalation(id).await?;
        if n == 0 {
            return Err(StoreError::Conflict(format!("escalation `{id}` is already resolved")));
        }
        Ok(e)
    }
}

/// A JSON column (these values always serialise).
fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}
