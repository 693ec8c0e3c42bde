//! SQLite: per-key limits, the reservation ledger (`rate_events`, `budget_windows`) and usage
//! totals. Ledger writes run under `BEGIN IMMEDIATE`, so a check and its write are atomic.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::config::limits::KeyLimits;
use crate::limits::{self, Counters, Denial, Reservation, UsageRecord, UsageTotal};
use crate::store::{StoreError, UsageStore};

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn opt(r: &sqlx::sqlite::SqliteRow, i: usize) -> Option<u64> {
    r.get::<Option<i64>, _>(i).map(uint)
}

#[async_trait]
impl UsageStore for SqliteStore {
    async fn key_limits(&self, key_id: &str) -> Result<Option<KeyLimits>, StoreError> {
        let row = sqlx::query(
            "SELECT rpm, tpm, daily_tokens, monthly_tokens, daily_budget_nanos, monthly_budget_nanos, max_tokens \
             FROM key_limits WHERE key_id = ?",
        )
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| KeyLimits {
            rpm: opt(&r, 0),
            tpm: opt(&r, 1),
            daily_tokens: opt(&r, 2),
            monthly_tokens: opt(&r, 3),
            daily_budget_nanos: opt(&r, 4),
            monthly_budget_nanos: opt(&r, 5),
            max_tokens: opt(&r, 6),
        }))
    }

    async fn set_key_limits(&self, key_id: &str, l: &KeyLimits) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO key_limits (key_id, rpm, tpm, daily_tokens, monthly_tokens, \
             daily_budget_nanos, monthly_budget_nanos, max_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(key_id)
        .bind(l.rpm.map(int))
        .bind(l.tpm.map(int))
        .bind(l.daily_tokens.map(int))
        .bind(l.monthly_tokens.map(int))
        .bind(l.daily_budget_nanos.map(int))
        .bind(l.monthly_budget_nanos.map(int))
        .bind(l.max_tokens.map(int))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn reserve(
        &self,
        key_id: &str,
        l: &KeyLimits,
        tokens: u64,
        nanos: u64,
        now_ms: i64,
    ) -> Result<Result<Reservation, Denial>, StoreError> {
        let p = limits::periods(now_ms);
        let _held = self.ledger.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM rate_events WHERE key_id = ? AND at_ms <= ?")
            .bind(key_id)
            .bind(now_ms - 60_000)
            .execute(&mut *tx)
            .await?;
        let minute =
            sqlx::query("SELECT COUNT(*), COALESCE(SUM(tokens), 0), MIN(at_ms) FROM rate_events WHERE key_id = ?")
                .bind(key_id)
                .fetch_one(&mut *tx)
                .await?;
        let mut c = Counters {
            minute_requests: uint(minute.get(0)),
            minute_tokens: uint(minute.get(1)),
            minute_oldest_ms: minute.get(2),
            ..Default::default()
        };
        let windows =
            sqlx::query("SELECT period, tokens, nanos FROM budget_windows WHERE key_id = ? AND period IN (?, ?)")
                .bind(key_id)
                .bind(&p.day)
                .bind(&p.month)
                .fetch_all(&mut *tx)
                .await?;
        for w in &windows {
            let (t, n) = (uint(w.get(1)), uint(w.get(2)));
            if w.get::<String, _>(0) == p.day {
                (c.day_tokens, c.day_nanos) = (t, n);
            } else {
                (c.month_tokens, c.month_nanos) = (t, n);
            }
        }
        if let Some(denial) = limits::check(key_id, l, &c, tokens, nanos, now_ms, &p) {
            tx.rollback().await?;
            return Ok(Err(denial));
        }
        let event_id = sqlx::query("INSERT INTO rate_events (key_id, at_ms, tokens) VALUES (?, ?, ?)")
            .bind(key_id)
            .bind(now_ms)
            .bind(int(tokens))
            .execute(&mut *tx)
            .await?
            .last_insert_rowid();
        for period in [&p.day, &p.month] {
            sqlx::query(
                "INSERT INTO budget_windows (key_id, period, tokens, nanos) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (key_id, period) DO UPDATE SET tokens = tokens + excluded.tokens, nanos = nanos + excluded.nanos",
            )
            .bind(key_id)
            .bind(period)
            .bind(int(tokens))
            .bind(int(nanos))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(Reservation { key_id: key_id.to_string(), event_id, day: p.day, month: p.month, tokens, nanos }))
    }

    async fn settle(
        &self,
        r: Option<&Reservation>,
        record: Option<&UsageRecord>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _held = self.ledger.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(r) = r {
            let (tokens, nanos) = record.map_or((0, 0), |u| (u.usage.total_tokens(), u.usage.cost_nanodollars));
            sqlx::query("UPDATE rate_events SET tokens = ? WHERE id = ?")
                .bind(int(tokens))
                .bind(r.event_id)
                .execute(&mut *tx)
                .await?;
            let dt = int(tokens).saturating_sub(int(r.tokens));
            let dn = int(nanos).saturating_sub(int(r.nanos));
            sqlx::query(
                "UPDATE budget_windows SET tokens = MAX(0, tokens + ?), nanos = MAX(0, nanos + ?) \
                 WHERE key_id = ? AND period IN (?, ?)",
            )
            .bind(dt)
            .bind(dn)
            .bind(&r.key_id)
            .bind(&r.day)
            .bind(&r.month)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(u) = record {
            let day = limits::periods(now_ms).day.trim_start_matches("d:").to_string();
            sqlx::query(
                "INSERT INTO usage_totals (tenant, key_id, model, day, requests, prompt_tokens, completion_tokens, \
                 cached_tokens, cost_nanos, estimated, cache_hits) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (tenant, key_id, model, day) DO UPDATE SET requests = requests + 1, \
                 prompt_tokens = prompt_tokens + excluded.prompt_tokens, \
                 completion_tokens = completion_tokens + excluded.completion_tokens, \
                 cached_tokens = cached_tokens + excluded.cached_tokens, cost_nanos = cost_nanos + excluded.cost_nanos, \
                 estimated = estimated + excluded.estimated, cache_hits = cache_hits + excluded.cache_hits",
            )
            .bind(&u.tenant)
            .bind(&u.key_id)
            .bind(&u.model)
            .bind(day)
            .bind(int(u.usage.prompt_tokens))
            .bind(int(u.usage.completion_tokens))
            .bind(int(u.usage.cached_tokens))
            .bind(int(u.usage.cost_nanodollars))
            .bind(i64::from(u.usage.estimated))
            .bind(i64::from(u.cache_hit))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn usage_totals(&self, since_day: Option<&str>) -> Result<Vec<UsageTotal>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant, key_id, model, SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), \
             SUM(cached_tokens), SUM(cost_nanos), SUM(estimated), SUM(cache_hits) FROM usage_totals \
             WHERE day >= ? GROUP BY tenant, key_id, model ORDER BY tenant, key_id, model",
        )
        .bind(since_day.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| UsageTotal {
                tenant: r.get(0),
                key_id: r.get(1),
                model: r.get(2),
                requests: uint(r.get(3)),
                prompt_tokens: uint(r.get(4)),
                completion_tokens: uint(r.get(5)),
                cached_tokens: uint(r.get(6)),
                cost_nanodollars: uint(r.get(7)),
                estimated_requests: uint(r.get(8)),
                cache_hits: uint(r.get(9)),
            })
            .collect())
    }
}
