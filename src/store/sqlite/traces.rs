//! SQLite: request traces and their spans.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::store::{StoreError, TraceStore};
use crate::trace::{Span, Trace};

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

#[async_trait]
impl TraceStore for SqliteStore {
    async fn put_traces(&self, traces: &[Trace]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for t in traces {
            sqlx::query("DELETE FROM traces WHERE id = ?").bind(&t.id).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO traces (id, created_at, route, status, duration_us, input, output) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&t.id)
            .bind(t.created_at_ms)
            .bind(&t.route)
            .bind(&t.status)
            .bind(t.duration_us as i64)
            .bind(t.input.to_string())
            .bind(t.output.to_string())
            .execute(&mut *tx)
            .await?;
            for (seq, s) in t.spans.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO spans (trace_id, seq, name, start_us, duration_us, attrs) VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(&t.id)
                .bind(seq as i64)
                .bind(&s.name)
                .bind(s.start_us as i64)
                .bind(s.duration_us as i64)
                .bind(serde_json::Value::Object(s.attrs.clone()).to_string())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_trace(&self, id: &str) -> Result<Option<Trace>, StoreError> {
        let Some(r) =
            sqlx::query("SELECT id, created_at, route, status, duration_us, input, output FROM traces WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let spans = sqlx::query("SELECT name, start_us, duration_us, attrs FROM spans WHERE trace_id = ? ORDER BY seq")
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
            .collect::<Result<Vec<_>, StoreError>>()?;
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
}
