//! Where Keel's state lives, behind one small trait per area.
//!
//! Each backend is a folder (`sqlite/` today; `postgres/` mirrors it file for file) with its
//! own migrations under `migrations/<backend>/`. `open` is the single place that picks a
//! backend; everything else holds a [`Store`] and never knows which one it is.

mod sqlite;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::config::limits::KeyLimits;
use crate::governance::{ApprovedAnswer, Conversation, Correction, Escalation, Snapshot, Turn, TurnStart};
use crate::limits::{Denial, Reservation, UsageRecord, UsageTotal};
use crate::trace::{Trace, TraceRow};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("store at {path}: {message}")]
    Open { path: String, message: String },
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A write lost a race: the record changed since the caller read it.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
}

/// A stored document (its chunks are stored separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRecord {
    pub id: String,
    pub path: String,
    pub title: String,
    pub content_hash: String,
    pub bytes: u64,
}

/// A stored chunk with its embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRecord {
    pub id: String,
    pub doc_id: String,
    pub ordinal: u32,
    pub title: String,
    pub heading: String,
    pub text: String,
    pub start_char: u64,
    pub end_char: u64,
    pub embedding: Vec<f32>,
}

/// Everything one ingest changes, applied atomically.
#[derive(Debug, Default)]
pub struct IngestBatch {
    /// New and changed documents with their complete new set of chunks.
    pub upserts: Vec<(DocRecord, Vec<ChunkRecord>)>,
    /// Ids of documents to delete.
    pub removals: Vec<String>,
    pub added: u64,
    pub changed: u64,
}

/// A corpus version: a content hash over every document's id and content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorpusVersion {
    pub version: String,
    pub created_at_ms: i64,
    pub documents: u64,
    pub chunks: u64,
}

/// Documents, chunks and corpus versions.
///
/// Contract: `apply_ingest` is all-or-nothing; when it returns `Ok`, the batch and the new
/// corpus version are durable. A batch that changes nothing creates no version.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    async fn documents(&self) -> Result<Vec<DocRecord>, StoreError>;
    async fn apply_ingest(&self, batch: &IngestBatch) -> Result<Option<CorpusVersion>, StoreError>;
    async fn current_corpus(&self) -> Result<Option<CorpusVersion>, StoreError>;
    async fn all_chunks(&self) -> Result<Vec<ChunkRecord>, StoreError>;
    /// Records a person's approval of one exact content of a flagged chunk (idempotent).
    async fn approve_chunk(&self, a: &ChunkApproval) -> Result<(), StoreError>;
    /// Removes every approval of a chunk; returns how many there were.
    async fn revoke_chunk(&self, chunk_id: &str) -> Result<u64, StoreError>;
    async fn chunk_approvals(&self) -> Result<Vec<ChunkApproval>, StoreError>;
}

/// A flagged chunk a person let back into answers, for this content only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChunkApproval {
    pub chunk_id: String,
    /// SHA-256 of the chunk text approved.
    pub content_hash: String,
    pub approved_by: String,
    pub note: String,
    pub approved_at_ms: i64,
}

/// Request traces.
///
/// Contract: `put_trace` is idempotent per trace id (a second put replaces the first).
#[async_trait]
pub trait TraceStore: Send + Sync {
    /// Writes traces in one transaction (a trace already stored under the same id is replaced).
    async fn put_traces(&self, traces: &[TraceRow]) -> Result<(), StoreError>;
    async fn get_trace(&self, id: &str) -> Result<Option<Trace>, StoreError>;
    /// The newest traces first, filtered; `before` (a trace id) pages back from that trace.
    async fn list_traces(&self, filter: &TraceFilter) -> Result<Vec<TraceSummary>, StoreError>;
}

/// Which traces `list_traces` returns.
#[derive(Debug, Clone, Default)]
pub struct TraceFilter {
    pub route: Option<String>,
    pub status: Option<String>,
    /// The tenant a gateway request's key belongs to.
    pub tenant: Option<String>,
    /// The model a gateway request asked for.
    pub model: Option<String>,
    /// Only traces created at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only traces created before this time (ms since the epoch).
    pub until_ms: Option<i64>,
    /// Only traces written before this one (paging).
    pub before: Option<String>,
    pub limit: u32,
}

/// One line of a trace list: what a person scans for (model, error, cost) without the spans.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceSummary {
    pub id: String,
    pub created_at_ms: i64,
    pub route: String,
    pub status: String,
    pub duration_us: u64,
    /// The model asked for (gateway), or the question (grounded pipeline).
    pub model: Option<String>,
    pub tenant: Option<String>,
    pub error: Option<String>,
    pub cost_nanodollars: Option<i64>,
}

/// An API key as stored (the key itself never is: only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRecord {
    pub id: String,
    pub tenant: String,
    pub scopes: Vec<String>,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// API keys.
///
/// Contract: `key_by_hash` returns revoked keys too (the caller decides); `revoke_key` returns
/// `false` when the id is unknown or already revoked.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn create_key(&self, key: &KeyRecord, key_hash: &str) -> Result<(), StoreError>;
    async fn key_by_hash(&self, key_hash: &str) -> Result<Option<KeyRecord>, StoreError>;
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    async fn revoke_key(&self, id: &str) -> Result<bool, StoreError>;
}

/// Approved answers, versioned.
///
/// Contract: versions of one id are 1, 2, 3…; `edit_approved` writes version
/// `expected_version + 1` only if the current version is `expected_version`, else it fails with
/// `Conflict` naming the current version — two editors never overwrite each other silently.
/// Retiring is an edit whose status is `retired`.
#[async_trait]
pub trait ApprovedStore: Send + Sync {
    async fn add_approved(&self, a: &ApprovedAnswer) -> Result<(), StoreError>;
    async fn edit_approved(&self, next: &ApprovedAnswer, expected_version: i64) -> Result<(), StoreError>;
    /// The current version of every approved answer (retired ones too), oldest id first.
    async fn approved_current(&self) -> Result<Vec<ApprovedAnswer>, StoreError>;
    /// Every version of one answer, oldest first (empty when the id is unknown).
    async fn approved_history(&self, id: &str) -> Result<Vec<ApprovedAnswer>, StoreError>;
}

/// Conversations and their turns.
///
/// Contract: `begin_user_turn` is atomic: it creates an unknown conversation, closes one idle
/// for longer than `idle_ms` (reason `idle_timeout`), and otherwise counts the turn, records
/// the question, and hands back (marking delivered) the human replies not yet delivered. A
/// conversation id of another tenant is `NotFound`.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn begin_user_turn(
        &self,
        id: &str,
        tenant: &str,
        question: &str,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<TurnStart, StoreError>;
    async fn add_turn(&self, id: &str, role: &str, text: &str, trace_id: Option<&str>) -> Result<(), StoreError>;
    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError>;
    async fn transcript(&self, id: &str) -> Result<Vec<Turn>, StoreError>;
    /// Human replies not yet delivered, now marked delivered (the poll of a waiting client).
    async fn take_pending(&self, id: &str) -> Result<Vec<Turn>, StoreError>;
}

/// The escalation queue.
///
/// Contract: `open_escalation` returns the already-open escalation of the same conversation
/// instead of opening a second one. `reply_escalation` records the reply as an undelivered
/// `human` turn of the conversation in the same transaction. Claiming an escalation someone
/// else holds, or changing a resolved one, is a `Conflict`.
#[async_trait]
pub trait EscalationStore: Send + Sync {
    async fn open_escalation(&self, e: &Escalation) -> Result<Escalation, StoreError>;
    async fn escalation(&self, id: &str) -> Result<Option<Escalation>, StoreError>;
    async fn escalations(&self, status: Option<&str>) -> Result<Vec<Escalation>, StoreError>;
    async fn claim_escalation(&self, id: &str, assignee: &str, now_ms: i64) -> Result<Escalation, StoreError>;
    async fn reply_escalation(&self, id: &str, text: &str, now_ms: i64) -> Result<Escalation, StoreError>;
    async fn resolve_escalation(&self, id: &str, now_ms: i64) -> Result<Escalation, StoreError>;
}

/// Answer snapshots and corrections.
///
/// Contract: `put_snapshot` keeps the first answer stored under a key (a second put with the
/// same key is ignored and returns `false`), so concurrent first askers cannot make two
/// answers for one key.
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    async fn snapshot(&self, key: &str) -> Result<Option<Snapshot>, StoreError>;
    async fn put_snapshot(&self, s: &Snapshot) -> Result<bool, StoreError>;
    /// Every snapshot of one normalised question, oldest first.
    async fn snapshot_history(&self, question: &str) -> Result<Vec<Snapshot>, StoreError>;
    async fn add_correction(&self, c: &Correction) -> Result<(), StoreError>;
    async fn corrections(&self) -> Result<Vec<Correction>, StoreError>;
}

/// Per-key limits, the reservation ledger and usage totals.
///
/// Contract: `reserve` is one write transaction that checks every limit against what is
/// reserved or spent and, only if all pass, records the request, its tokens and its money:
/// concurrent reservations (even from several processes) never overshoot a limit. `settle`
/// replaces a reservation's tokens and money by the actual usage (`None`: releases them; the
/// request still counts against requests per minute) and adds the usage to the totals, in one
/// transaction.
#[async_trait]
pub trait UsageStore: Send + Sync {
    async fn key_limits(&self, key_id: &str) -> Result<Option<KeyLimits>, StoreError>;
    async fn set_key_limits(&self, key_id: &str, limits: &KeyLimits) -> Result<(), StoreError>;
    async fn reserve(
        &self,
        key_id: &str,
        limits: &KeyLimits,
        tokens: u64,
        nanos: u64,
        now_ms: i64,
    ) -> Result<Result<Reservation, Denial>, StoreError>;
    async fn settle(
        &self,
        reservation: Option<&Reservation>,
        record: Option<&UsageRecord>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Totals per tenant, key and model, summed over days from `since_day` (`YYYY-MM-DD`) on.
    async fn usage_totals(&self, since_day: Option<&str>) -> Result<Vec<UsageTotal>, StoreError>;
}

/// How long a stored Response can be continued or fetched (30 days, as OpenAI keeps them).
pub const RESPONSE_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// A Response kept for `previous_response_id` and `GET /v1/responses/{id}`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub id: String,
    pub tenant: String,
    pub created_at_ms: i64,
    /// The conversation as chat messages (without the request's `instructions`), the reply
    /// included.
    pub messages: Vec<serde_json::Value>,
    /// The Response object as returned.
    pub response: serde_json::Value,
}

/// Stored Responses, per tenant.
#[async_trait]
pub trait ResponseStore: Send + Sync {
    /// Stores (or replaces) a response, removing those past [`RESPONSE_RETENTION_MS`].
    async fn put_response(&self, r: &StoredResponse) -> Result<(), StoreError>;
    /// The tenant's response `id`, unless it is missing or past retention.
    async fn get_response(&self, tenant: &str, id: &str) -> Result<Option<StoredResponse>, StoreError>;
    /// Whether the tenant's response `id` existed (it does not any more).
    async fn delete_response(&self, tenant: &str, id: &str) -> Result<bool, StoreError>;
}

/// Handles to every area of the store.
#[derive(Clone)]
pub struct Store {
    pub docs: Arc<dyn DocumentStore>,
    pub traces: Arc<dyn TraceStore>,
    pub keys: Arc<dyn KeyStore>,
    pub approved: Arc<dyn ApprovedStore>,
    pub conversations: Arc<dyn ConversationStore>,
    pub escalations: Arc<dyn EscalationStore>,
    pub snapshots: Arc<dyn SnapshotStore>,
    pub usage: Arc<dyn UsageStore>,
    pub responses: Arc<dyn ResponseStore>,
}

impl Store {
    /// Opens (creating and migrating if needed) the embedded store in `data_dir`.
    pub async fn open_embedded(data_dir: &Path) -> Result<Self, StoreError> {
        let db = Arc::new(sqlite::SqliteStore::open(&data_dir.join("keel.db")).await?);
        Ok(Self {
            docs: db.clone(),
            traces: db.clone(),
            keys: db.clone(),
            approved: db.clone(),
            conversations: db.clone(),
            escalations: db.clone(),
            snapshots: db.clone(),
            usage: db.clone(),
            responses: db,
        })
    }
}

/// The corpus version for a set of `(doc id, content hash)` pairs: order-independent.
pub fn corpus_hash(mut docs: Vec<(String, String)>) -> String {
    use sha2::{Digest, Sha256};
    docs.sort();
    let mut h = Sha256::new();
    for (id, hash) in docs {
        h.update(id.as_bytes());
        h.update([0]);
        h.update(hash.as_bytes());
        h.update([0]);
    }
    format!("c_{}", &hex::encode(h.finalize())[..16])
}

/// Little-endian f32 bytes, as stored in `chunks.embedding`.
pub fn vector_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn vector_from_bytes(b: &[u8]) -> Result<Vec<f32>, StoreError> {
    if !b.len().is_multiple_of(4) {
        return Err(StoreError::Corrupt(format!("embedding of {} bytes", b.len())));
    }
    Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}
