//! The embedded SQLite backend: one file in the data directory, WAL mode, migrations applied
//! at open.

mod approved;
mod conversations;
mod docs;
mod escalations;
mod keys;
mod snapshots;
mod traces;
mod usage;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Row;

use super::StoreError;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../../migrations/sqlite/0002_api_keys.sql")),
    (3, include_str!("../../../migrations/sqlite/0003_governance.sql")),
    (4, include_str!("../../../migrations/sqlite/0004_limits.sql")),
    (5, include_str!("../../../migrations/sqlite/0005_snapshots.sql")),
    (6, include_str!("../../../migrations/sqlite/0006_chunk_reviews.sql")),
    (7, include_str!("../../../migrations/sqlite/0007_trace_spans_inline.sql")),
];

pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection for trace batches, committed without waiting for the disk
    /// (`synchronous = NORMAL`, per connection under WAL): traces are written after their
    /// response, so no acknowledged write depends on them, and a process crash still keeps
    /// every committed batch.
    traces: SqlitePool,
    /// Serialises this process's ledger writes (other processes wait on `BEGIN IMMEDIATE`).
    ledger: tokio::sync::Mutex<()>,
}

impl SqliteStore {
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |message: String| StoreError::Open { path: path.display().to_string(), message };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| open_err(e.to_string()))?;
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(|e| open_err(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged write survives a power cut, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.clone())
            .await
            .map_err(|e| open_err(e.to_string()))?;
        let store = Self {
            pool,
            traces: SqlitePoolOptions::new()
                .max_connections(1)
                // Opened by the trace writer (its only user) and kept for the process's life:
                // its worker thread carries the writer's lower priority.
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_lazy_with(opts.synchronous(SqliteSynchronous::Normal)),
            ledger: tokio::sync::Mutex::new(()),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.get::<i64, _>(0))
            .collect();
        for (version, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            let mut tx = self.pool.begin().await?;
            for stmt in statements(sql) {
                sqlx::query(&stmt).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
                .bind(version)
                .bind(crate::trace::now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

/// Splits a migration file into statements (no `;` inside statements, `--` comments dropped).
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String =
        sql.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
    without_comments.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}
