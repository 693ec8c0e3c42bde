//! SQLite: documents, chunks and corpus versions.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::store::{
    corpus_hash, vector_from_bytes, vector_to_bytes, ChunkApproval, ChunkRecord, CorpusVersion, DocRecord,
    DocumentStore, IngestBatch, StoreError,
};

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn approve_chunk(&self, a: &ChunkApproval) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO chunk_approvals (chunk_id, content_hash, approved_by, note, approved_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT(chunk_id, content_hash) DO NOTHING",
        )
        .bind(&a.chunk_id)
        .bind(&a.content_hash)
        .bind(&a.approved_by)
        .bind(&a.note)
        .bind(a.approved_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn revoke_chunk(&self, chunk_id: &str) -> Result<u64, StoreError> {
        let r =
            sqlx::query("DELETE FROM chunk_approvals WHERE chunk_id = ?").bind(chunk_id).execute(&self.pool).await?;
        Ok(r.rows_affected())
    }

    async fn chunk_approvals(&self) -> Result<Vec<ChunkApproval>, StoreError> {
        let rows = sqlx::query(
            "SELECT chunk_id, content_hash, approved_by, note, approved_at FROM chunk_approvals ORDER BY approved_at",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ChunkApproval {
                chunk_id: r.get(0),
                content_hash: r.get(1),
                approved_by: r.get(2),
                note: r.get(3),
                approved_at_ms: r.get(4),
            })
            .collect())
    }

    async fn documents(&self) -> Result<Vec<DocRecord>, StoreError> {
        let rows = sqlx::query("SELECT id, path, title, content_hash, bytes FROM documents ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| DocRecord {
                id: r.get(0),
                path: r.get(1),
                title: r.get(2),
                content_hash: r.get(3),
                bytes: r.get::<i64, _>(4) as u64,
            })
            .collect())
    }

    async fn apply_ingest(&self, batch: &IngestBatch) -> Result<Option<CorpusVersion>, StoreError> {
        if batch.upserts.is_empty() && batch.removals.is_empty() {
            return Ok(None);
        }
        let now = crate::trace::now_ms();
        let mut tx = self.pool.begin().await?;
        let mut removed = 0u64;
        for id in &batch.removals {
            removed +=
                sqlx::query("DELETE FROM documents WHERE id = ?").bind(id).execute(&mut *tx).await?.rows_affected();
        }
        for (doc, chunks) in &batch.upserts {
            sqlx::query("DELETE FROM chunks WHERE doc_id = ?").bind(&doc.id).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO documents (id, path, title, content_hash, bytes, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT(id) DO UPDATE SET path = excluded.path, title = excluded.title,
                 content_hash = excluded.content_hash, bytes = excluded.bytes, updated_at = excluded.updated_at",
            )
            .bind(&doc.id)
            .bind(&doc.path)
            .bind(&doc.title)
            .bind(&doc.content_hash)
            .bind(doc.bytes as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            for c in chunks {
                sqlx::query(
                    "INSERT INTO chunks (id, doc_id, ordinal, title, heading, body, start_char, end_char, embedding)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&c.id)
                .bind(&c.doc_id)
                .bind(c.ordinal as i64)
                .bind(&c.title)
                .bind(&c.heading)
                .bind(&c.text)
                .bind(c.start_char as i64)
                .bind(c.end_char as i64)
                .bind(vector_to_bytes(&c.embedding))
                .execute(&mut *tx)
                .await?;
            }
        }
        let pairs: Vec<(String, String)> = sqlx::query("SELECT id, content_hash FROM documents")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let documents = pairs.len() as u64;
        let version = corpus_hash(pairs);
        let chunks: i64 = sqlx::query("SELECT COUNT(*) FROM chunks").fetch_one(&mut *tx).await?.get(0);
        sqlx::query(
            "INSERT INTO corpus_versions (version, created_at, documents, chunks, added, changed, removed)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(version) DO NOTHING",
        )
        .bind(&version)
        .bind(now)
        .bind(documents as i64)
        .bind(chunks)
        .bind(batch.added as i64)
        .bind(batch.changed as i64)
        .bind(removed as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO meta (key, value) VALUES ('corpus_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(&version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(CorpusVersion { version, created_at_ms: now, documents, chunks: chunks as u64 }))
    }

    async fn current_corpus(&self) -> Result<Option<CorpusVersion>, StoreError> {
        let row = sqlx::query(
            "SELECT v.version, v.created_at, v.documents, v.chunks FROM meta m
             JOIN corpus_versions v ON v.version = m.value WHERE m.key = 'corpus_version'",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| CorpusVersion {
            version: r.get(0),
            created_at_ms: r.get(1),
            documents: r.get::<i64, _>(2) as u64,
            chunks: r.get::<i64, _>(3) as u64,
        }))
    }

    async fn all_chunks(&self) -> Result<Vec<ChunkRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, doc_id, ordinal, title, heading, body, start_char, end_char, embedding FROM chunks
             ORDER BY doc_id, ordinal",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ChunkRecord {
                    id: r.get(0),
                    doc_id: r.get(1),
                    ordinal: r.get::<i64, _>(2) as u32,
                    title: r.get(3),
                    heading: r.get(4),
                    text: r.get(5),
                    start_char: r.get::<i64, _>(6) as u64,
                    end_char: r.get::<i64, _>(7) as u64,
                    embedding: vector_from_bytes(r.get::<&[u8], _>(8))?,
                })
            })
            .collect()
    }
}
