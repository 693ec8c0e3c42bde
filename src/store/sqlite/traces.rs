//! SQLite: request traces and their spans.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::store::{StoreError, TraceFilter, TraceStore, TraceSummary};
use crate::trace::{Span, Trace, TraceRow};

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Traces per INSERT statement (8 bound values each; well under SQLite's variable limit).
const ROWS_PER_INSERT: usize = 64;

#[async_trait]
impl TraceStore for SqliteStore {
    async fn put_traces(&self, traces: &[TraceRow]) -> Result<(), StoreError> {
        let mut tx = self.traces.begin().await?;
        // Many rows per statement: each statement is a round trip to SQLite's worker thread.
        for rows in traces.chunks(ROWS_PER_INSERT) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT OR REPLACE INTO traces (id, created_at, route, status, duration_us, input, output, spans) ",
            );
            q.push_values(rows, |mut b, t| {
                b.push_bind(&t.id)
                    .push_bind(t.created_at_ms)
                    .push_bind(&t.route)
                    .push_bind(&t.status)
                    .push_bind(t.duration_us as i64)
                    .push_bind(&t.input)
                    .push_bind(&t.output)
                    .push_bind(&t.spans);
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_trace(&self, id: &str) -> Result<Option<Trace>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT id, created_at, route, status, duration_us, input, output, spans FROM traces WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.trace_reads)
        .await?
        else {
            return Ok(None);
        };
        let spans = match r.get::<Option<&str>, _>(7) {
            Some(inline) => parse_json("trace spans", inline)?,
            None => self.legacy_spans(id).await?,
        };
        Ok(Some(Trace {
            id: r.get(0),
            created_at_ms: r.get(1),
            route: r.get(2),
            status: r.get(3),
            duration_us: r.get::<i64, _>(4) as u64,
            input: parse_json("trace input", r.get::<&str, _>(5))?,
            output: parse_json("trace output", r.get::<&str, _>(6))?,
            spans,
        }))
    }

    async fn list_traces(&self, f: &TraceFilter) -> Result<Vec<TraceSummary>, StoreError> {
        // Newest first by insertion order (rowid), so no index beyond the primary key is kept.
        let rows = sqlx::query(
            "SELECT id, created_at, route, status, duration_us, \
                    COALESCE(json_extract(input, '$.model'), json_extract(input, '$.question')), \
                    json_extract(input, '$.tenant'), json_extract(output, '$.error'), \
                    json_extract(output, '$.usage.cost_nanodollars') \
             FROM traces \
             WHERE (?1 IS NULL OR route = ?1) AND (?2 IS NULL OR status = ?2) \
               AND (?3 IS NULL OR rowid < (SELECT rowid FROM traces WHERE id = ?3)) \
               AND (?5 IS NULL OR json_extract(input, '$.tenant') = ?5) \
               AND (?6 IS NULL OR json_extract(input, '$.model') = ?6) \
               AND (?7 IS NULL OR created_at >= ?7) AND (?8 IS NULL OR created_at < ?8) \
             ORDER BY rowid DESC LIMIT ?4",
        )
        .bind(&f.route)
        .bind(&f.status)
        .bind(&f.before)
        .bind(i64::from(f.limit))
        .bind(&f.tenant)
        .bind(&f.model)
        .bind(f.since_ms)
        .bind(f.until_ms)
        .fetch_all(&self.trace_reads)
        .await?;
        Ok(rows
            .iter()
            .map(|r| TraceSummary {
                id: r.get(0),
                created_at_ms: r.get(1),
                route: r.get(2),
                status: r.get(3),
                duration_us: r.get::<i64, _>(4) as u64,
                model: r.try_get(5).ok().flatten(),
                tenant: r.try_get(6).ok().flatten(),
                error: r.try_get(7).ok().flatten(),
                cost_nanodollars: r.try_get(8).ok().flatten(),
            })
            .collect())
    }
}

impl SqliteStore {
    /// The spans of a trace written before they were kept in its row (migration 0007).
    async fn legacy_spans(&self, id: &str) -> Result<Vec<Span>, StoreError> {
        sqlx::query("SELECT name, start_us, duration_us, attrs FROM spans WHERE trace_id = ? ORDER BY seq")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|s| {
                Ok(Span {
                    name: s.get(0),
                    start_us: s.get::<i64, _>(1) as u64,
                    duration_us: s.get::<i64, _>(2) as u64,
                    attrs: parse_json("span attrs", s.get::<&str, _>(3))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn traces_stored_before_the_trace_database_move_into_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("keel.db");
        // A store of before the trace database: one trace with its spans inline, one older one
        // whose spans are rows of the `spans` table.
        let s = SqliteStore::open(&main).await.unwrap();
        for (id, spans) in
            [("tr_old", None), ("tr_new", Some(r#"[{"name":"input","start_us":0,"duration_us":5,"attrs":{}}]"#))]
        {
            sqlx::query("INSERT INTO traces (id, created_at, route, status, duration_us, input, output, spans) VALUES (?, 1, 'r', 'ok', 9, '{}', '{}', ?)")
                .bind(id)
                .bind(spans)
                .execute(&s.pool)
                .await
                .unwrap();
        }
        sqlx::query("INSERT INTO spans (trace_id, seq, name, start_us, duration_us, attrs) VALUES ('tr_old', 0, 'retrieve', 1, 2, '{\"k\":3}')")
            .execute(&s.pool)
            .await
            .unwrap();
        s.pool.close().await;
        drop(s);
        for f in ["keel.traces.db", "keel.traces.db-wal", "keel.traces.db-shm"] {
            let _ = std::fs::remove_file(dir.path().join(f));
        }

        let store = Store::open_embedded(dir.path()).await.unwrap();
        let old = store.traces.get_trace("tr_old").await.unwrap().unwrap();
        assert_eq!((old.spans.len(), old.spans[0].name.as_str()), (1, "retrieve"));
        assert_eq!(store.traces.get_trace("tr_new").await.unwrap().unwrap().spans[0].name, "input");
        let listed = store.traces.list_traces(&TraceFilter { limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(listed.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["tr_new", "tr_old"]);
        // Moved, not copied; a second open moves nothing again and loses nothing.
        drop(store);
        let s = SqliteStore::open(&main).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM traces").fetch_one(&s.pool).await.unwrap();
        assert_eq!(left, 0);
        assert!(s.get_trace("tr_old").await.unwrap().is_some());
        let page: u32 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&s.trace_reads).await.unwrap();
        assert_eq!(page, super::super::TRACE_PAGE_SIZE);
    }
}
