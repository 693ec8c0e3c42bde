//! SQLite: conversations and their turns. A user turn is counted in one write transaction
//! (`BEGIN IMMEDIATE`), so concurrent requests on one conversation never lose a count.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::governance::{idle_expired, Conversation, Turn, TurnStart};
use crate::store::{ConversationStore, StoreError};

fn conversation(r: &sqlx::sqlite::SqliteRow) -> Conversation {
    Conversation {
        id: r.get(0),
        tenant: r.get(1),
        user_turns: r.get::<i64, _>(2).max(0) as u32,
        status: r.get(3),
        closed_reason: r.get(4),
        created_at_ms: r.get(5),
        last_at_ms: r.get(6),
    }
}

fn turn(r: &sqlx::sqlite::SqliteRow) -> Turn {
    Turn { seq: r.get(0), role: r.get(1), text: r.get(2), trace_id: r.get(3), at_ms: r.get(4) }
}

const CONV_COLUMNS: &str = "id, tenant, user_turns, status, closed_reason, created_at, last_at";
const TURN_COLUMNS: &str = "seq, role, text, trace_id, at";

pub(super) async fn append_turn(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    role: &str,
    text: &str,
    trace_id: Option<&str>,
    delivered: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO conversation_turns (conversation_id, seq, role, text, trace_id, delivered, at) VALUES \
         (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM conversation_turns WHERE conversation_id = ?), ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(id)
    .bind(role)
    .bind(text)
    .bind(trace_id)
    .bind(delivered)
    .bind(crate::trace::now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

async fn take_pending_in(conn: &mut sqlx::SqliteConnection, id: &str) -> Result<Vec<Turn>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {TURN_COLUMNS} FROM conversation_turns WHERE conversation_id = ? AND delivered = 0 ORDER BY seq"
    ))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query("UPDATE conversation_turns SET delivered = 1 WHERE conversation_id = ? AND delivered = 0")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(rows.iter().map(turn).collect())
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn begin_user_turn(
        &self,
        id: &str,
        tenant: &str,
        question: &str,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<TurnStart, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(&format!("SELECT {CONV_COLUMNS} FROM conversations WHERE id = ?"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let user_turns = match row.as_ref().map(conversation) {
            Some(c) if c.tenant != tenant => return Err(StoreError::NotFound(format!("no conversation `{id}`"))),
            Some(c) if c.status != "open" => {
                return Ok(TurnStart::Closed { reason: c.closed_reason.unwrap_or_else(|| "closed".into()) });
            }
            Some(c) if idle_expired(&c, now_ms, idle_ms) => {
                sqlx::query("UPDATE conversations SET status = 'closed', closed_reason = 'idle_timeout' WHERE id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(TurnStart::Closed { reason: "idle_timeout".into() });
            }
            Some(c) => {
                sqlx::query("UPDATE conversations SET user_turns = user_turns + 1, last_at = ? WHERE id = ?")
                    .bind(now_ms)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                c.user_turns + 1
            }
            None => {
                sqlx::query(&format!(
                    "INSERT INTO conversations ({CONV_COLUMNS}) VALUES (?, ?, 1, 'open', NULL, ?, ?)"
                ))
                .bind(id)
                .bind(tenant)
                .bind(now_ms)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                1
            }
        };
        let pending = take_pending_in(&mut tx, id).await?;
        append_turn(&mut tx, id, "user", question, None, true).await?;
        tx.commit().await?;
        Ok(TurnStart::Open { user_turns, pending })
    }

    async fn add_turn(&self, id: &str, role: &str, text: &str, trace_id: Option<&str>) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        append_turn(&mut conn, id, role, text, trace_id, true).await
    }

    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let row = sqlx::query(&format!("SELECT {CONV_COLUMNS} FROM conversations WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(conversation))
    }

    async fn transcript(&self, id: &str) -> Result<Vec<Turn>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TURN_COLUMNS} FROM conversation_turns WHERE conversation_id = ? ORDER BY seq"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(turn).collect())
    }

    async fn take_pending(&self, id: &str) -> Result<Vec<Turn>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let pending = take_pending_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(pending)
    }
}
