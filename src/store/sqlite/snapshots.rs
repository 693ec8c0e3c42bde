//! SQLite: answer snapshots (first answer per key wins) and corrections.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::governance::{Correction, Snapshot};
use crate::store::{SnapshotStore, StoreError};

const SNAP: &str = "id, snapshot_key, question, versions, answer, trace_id, created_at";
const CORR: &str = "id, trace_id, question, wrong_answer, correction, reason, approved_id, author, created_at";

fn snapshot(r: &sqlx::sqlite::SqliteRow) -> Result<Snapshot, StoreError> {
    let json = |i: usize, what: &str| -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(&r.get::<String, _>(i)).map_err(|e| StoreError::Corrupt(format!("snapshot {what}: {e}")))
    };
    Ok(Snapshot {
        id: r.get(0),
        key: r.get(1),
        question: r.get(2),
        versions: json(3, "versions")?,
        answer: json(4, "answer")?,
        trace_id: r.get(5),
        created_at_ms: r.get(6),
    })
}

fn correction(r: &sqlx::sqlite::SqliteRow) -> Correction {
    Correction {
        id: r.get(0),
        trace_id: r.get(1),
        question: r.get(2),
        wrong_answer: r.get(3),
        correction: r.get(4),
        reason: r.get(5),
        approved_id: r.get(6),
        author: r.get(7),
        created_at_ms: r.get(8),
    }
}

#[async_trait]
impl SnapshotStore for SqliteStore {
    async fn snapshot(&self, key: &str) -> Result<Option<Snapshot>, StoreError> {
        let row = sqlx::query(&format!("SELECT {SNAP} FROM answer_snapshots WHERE snapshot_key = ?"))
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(snapshot).transpose()
    }

    async fn put_snapshot(&self, s: &Snapshot) -> Result<bool, StoreError> {
        let n = sqlx::query(&format!(
            "INSERT INTO answer_snapshots ({SNAP}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(snapshot_key) DO NOTHING"
        ))
        .bind(&s.id)
        .bind(&s.key)
        .bind(&s.question)
        .bind(s.versions.to_string())
        .bind(s.answer.to_string())
        .bind(&s.trace_id)
        .bind(s.created_at_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn snapshot_history(&self, question: &str) -> Result<Vec<Snapshot>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {SNAP} FROM answer_snapshots WHERE question = ? ORDER BY created_at, id"))
                .bind(question)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(snapshot).collect()
    }

    async fn add_correction(&self, c: &Correction) -> Result<(), StoreError> {
        sqlx::query(&format!("INSERT INTO corrections ({CORR}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"))
            .bind(&c.id)
            .bind(&c.trace_id)
            .bind(&c.question)
            .bind(&c.wrong_answer)
            .bind(&c.correction)
            .bind(&c.reason)
            .bind(&c.approved_id)
            .bind(&c.author)
            .bind(c.created_at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn corrections(&self) -> Result<Vec<Correction>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {CORR} FROM corrections ORDER BY created_at, id"))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(correction).collect())
    }
}
