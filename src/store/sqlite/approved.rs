//! SQLite: approved answers, one row per version.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::governance::ApprovedAnswer;
use crate::store::{ApprovedStore, StoreError};

const COLUMNS: &str = "id, version, question, answer, intent, cites, status, author, created_at";

fn record(r: &sqlx::sqlite::SqliteRow) -> Result<ApprovedAnswer, StoreError> {
    let cites: String = r.get(5);
    Ok(ApprovedAnswer {
        id: r.get(0),
        version: r.get(1),
        question: r.get(2),
        answer: r.get(3),
        intent: r.get(4),
        cites: serde_json::from_str(&cites).map_err(|e| StoreError::Corrupt(format!("approved cites: {e}")))?,
        status: r.get(6),
        author: r.get(7),
        created_at_ms: r.get(8),
    })
}

impl SqliteStore {
    async fn insert_approved(&self, a: &ApprovedAnswer) -> Result<(), sqlx::Error> {
        sqlx::query(&format!("INSERT INTO approved_answers ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"))
            .bind(&a.id)
            .bind(a.version)
            .bind(&a.question)
            .bind(&a.answer)
            .bind(&a.intent)
            .bind(serde_json::to_string(&a.cites).unwrap_or_else(|_| "[]".into()))
            .bind(&a.status)
            .bind(&a.author)
            .bind(a.created_at_ms)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn current_version(&self, id: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT MAX(version) FROM approved_answers WHERE id = ?")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get::<Option<i64>, _>(0))
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[async_trait]
impl ApprovedStore for SqliteStore {
    async fn add_approved(&self, a: &ApprovedAnswer) -> Result<(), StoreError> {
        self.insert_approved(a).await.map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("approved answer `{}` already exists", a.id))
            } else {
                e.into()
            }
        })
    }

    async fn edit_approved(&self, next: &ApprovedAnswer, expected_version: i64) -> Result<(), StoreError> {
        let current = self.current_version(&next.id).await?;
        let current = current.ok_or_else(|| StoreError::NotFound(format!("no approved answer `{}`", next.id)))?;
        let conflict = |current: i64| {
            StoreError::Conflict(format!(
                "approved answer `{}` is at version {current}, not {expected_version}: re-read it and edit again",
                next.id
            ))
        };
        if current != expected_version || next.version != expected_version + 1 {
            return Err(conflict(current));
        }
        // A concurrent editor that read the same version inserts the same (id, version):
        // the primary key lets exactly one of them win.
        match self.insert_approved(next).await {
            Ok(()) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(conflict(self.current_version(&next.id).await?.unwrap_or(expected_version + 1)))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn approved_current(&self) -> Result<Vec<ApprovedAnswer>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM approved_answers a WHERE version = \
             (SELECT MAX(version) FROM approved_answers b WHERE b.id = a.id) ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    async fn approved_history(&self, id: &str) -> Result<Vec<ApprovedAnswer>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM approved_answers WHERE id = ? ORDER BY version"))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }
}
