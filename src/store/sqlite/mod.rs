//! The embedded SQLite backend: one file in the data directory, WAL mode, migrations applied
//! at open, and a second file for request traces (`keel.traces.db`: appended by the thousand
//! per second, so kept apart from the store's small durable transactions, in larger pages).

mod approved;
mod conversations;
mod docs;
mod escalations;
mod keys;
mod responses;
mod snapshots;
mod traces;
mod usage;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row};

use super::StoreError;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../../migrations/sqlite/0002_api_keys.sql")),
    (3, include_str!("../../../migrations/sqlite/0003_governance.sql")),
    (4, include_str!("../../../migrations/sqlite/0004_limits.sql")),
    (5, include_str!("../../../migrations/sqlite/0005_snapshots.sql")),
    (6, include_str!("../../../migrations/sqlite/0006_chunk_reviews.sql")),
    (7, include_str!("../../../migrations/sqlite/0007_trace_spans_inline.sql")),
    (8, include_str!("../../../migrations/sqlite/0008_responses.sql")),
];

/// The trace database's schema (one table, created if missing).
const TRACE_SCHEMA: &str = include_str!("../../../migrations/sqlite/traces/0001_traces.sql");

/// Page size of a new trace database. Traces are appended in batches of hundreds of ~1 KiB
/// rows: at 32 concurrent traced requests on two cores, a store with 64 KiB pages against one
/// with 4 KiB pages took p99 from 4.2–4.7 ms to 3.5–3.9 ms and the CPU per request down 2 µs
/// (fewer WAL frames and writes for the same bytes; `bench/README.md`, 2026-12-01).
const TRACE_PAGE_SIZE: u32 = 65536;

pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection to the trace database for trace batches, committed without waiting for
    /// the disk (`synchronous = NORMAL`, per connection under WAL): traces are written after
    /// their response, so no acknowledged write depends on them, and a process crash still
    /// keeps every committed batch.
    traces: SqlitePool,
    /// Readers of the trace database (lists and lookups), apart from the writer's connection.
    trace_reads: SqlitePool,
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
        let trace_opts = opts
            .filename(path.with_extension("traces.db"))
            .page_size(TRACE_PAGE_SIZE)
            // SQLite checkpoints every 1,000 pages by default: 64 MiB of these pages, whose
            // copy stalled the writer long enough to drop traces. The default's 4 MiB instead.
            .pragma("wal_autocheckpoint", ((4 << 20) / TRACE_PAGE_SIZE).to_string())
            .foreign_keys(false)
            .synchronous(SqliteSynchronous::Normal);
        let store = Self {
            pool,
            traces: SqlitePoolOptions::new()
                .max_connections(1)
                // Opened by the trace writer (its only user) and kept for the process's life:
                // its worker thread carries the writer's lower priority.
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_lazy_with(trace_opts.clone()),
            trace_reads: SqlitePoolOptions::new().max_connections(2).connect_lazy_with(trace_opts.clone()),
            ledger: tokio::sync::Mutex::new(()),
        };
        store.migrate().await?;
        prepare_traces(&trace_opts, path).await.map_err(|e| open_err(format!("trace database: {e}")))?;
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

/// Creates the trace database's table on a connection of its own (closed after, so the
/// writer's first batch starts the connection it keeps, at its priority). When the table is
/// new, traces stored in the main database before it existed move into it once.
async fn prepare_traces(opts: &SqliteConnectOptions, main: &Path) -> Result<(), StoreError> {
    let mut conn = SqliteConnection::connect_with(opts).await?;
    let existed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'traces'")
            .fetch_one(&mut conn)
            .await?;
    for stmt in statements(TRACE_SCHEMA) {
        sqlx::query(&stmt).execute(&mut conn).await?;
    }
    if existed == 0 {
        sqlx::query("ATTACH DATABASE ? AS store").bind(main.display().to_string()).execute(&mut conn).await?;
        let cols = "id, created_at, route, status, duration_us, input, output, spans";
        let mut tx = conn.begin().await?;
        sqlx::query(&format!(
            "INSERT OR IGNORE INTO main.traces ({cols}) SELECT {cols} FROM store.traces ORDER BY rowid"
        ))
        .execute(&mut *tx)
        .await?;
        // Their spans of before migration 0007 stay in the store's `spans` table, read from there.
        sqlx::query("DELETE FROM store.traces").execute(&mut *tx).await?;
        tx.commit().await?;
        sqlx::query("DETACH DATABASE store").execute(&mut conn).await?;
    }
    conn.close().await?;
    Ok(())
}

/// Splits a migration file into statements (no `;` inside statements, `--` comments dropped).
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String =
        sql.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
    without_comments.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}
