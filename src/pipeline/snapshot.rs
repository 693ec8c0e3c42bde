//! Stage `snapshot` (response versioning): in deterministic mode, a normalised question asked
//! again under the same versions — corpus, prompt, answerer, approved set, configuration —
//! gets the stored answer byte for byte, even from a generative provider at temperature > 0.
//! On a miss the key is left on the context and `record` stores the new answer under it.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{Flow, PipelineError, RequestCtx, Stage};
use crate::answer::{Citation, Draft};
use crate::governance::approved::ApprovedSet;
use crate::governance::normalize_question;
use crate::guardrails::review::ChunkReviews;
use crate::index::Index;
use crate::store::Store;

/// Everything an answer depends on besides the question: the key part shared by snapshots
/// and the semantic cache.
pub struct AnswerVersions {
    pub index: Arc<Index>,
    pub approved: Arc<ApprovedSet>,
    /// The answerer's identity (model and prompt versions).
    pub answerer: Value,
    /// A hash of the configuration that shapes answers.
    pub config_hash: String,
    /// Approved flagged chunks (they change what may be evidence).
    pub reviews: Arc<ChunkReviews>,
}

impl AnswerVersions {
    /// The versions in force now, for a request asking for `top_k` chunks.
    pub fn current(&self, top_k: usize) -> Value {
        json!({
            "corpus": self.index.corpus_version(),
            "answerer": self.answerer,
            "approved": self.approved.fingerprint(),
            "reviewed_chunks": self.reviews.fingerprint(),
            "config": self.config_hash,
            "top_k": top_k,
        })
    }
}

pub struct SnapshotStage {
    pub store: Store,
    pub versions: Arc<AnswerVersions>,
}

/// The key a snapshot is stored under, and where it is written on the context.
pub struct SnapshotKey {
    pub key: String,
    pub question: String,
    pub versions: Value,
}

#[async_trait]
impl Stage for SnapshotStage {
    fn name(&self) -> &'static str {
        "snapshot"
    }

    async fn run(&self, ctx: &mut RequestCtx) -> Result<Flow, PipelineError> {
        let question = normalize_question(&ctx.question);
        let versions = self.versions.current(ctx.top_k);
        let key = crate::digest::sha256_hex(json!({ "q": question, "v": versions }).to_string().as_bytes());
        ctx.trace.attr("key", key.clone());
        if let Some(s) = self.store.snapshots.snapshot(&key).await? {
            ctx.trace.attr("hit", s.id.clone());
            return Ok(Flow::Respond(draft_of(&s.answer, &s.id)?));
        }
        ctx.trace.attr("hit", false);
        ctx.snapshot = Some(SnapshotKey { key, question, versions });
        Ok(Flow::Continue)
    }
}

/// The stored answer back into a draft (only the fields a snapshot fixes).
fn draft_of(answer: &Value, id: &str) -> Result<Draft, PipelineError> {
    let corrupt = |what: &str| PipelineError::Internal(format!("snapshot {id}: {what}"));
    let citations: Vec<Citation> =
        serde_json::from_value(answer["citations"].clone()).map_err(|e| corrupt(&format!("citations: {e}")))?;
    Ok(Draft {
        text: answer["answer"].as_str().ok_or_else(|| corrupt("no answer text"))?.to_string(),
        citations,
        grounded: answer["grounded"].as_bool().unwrap_or(false),
        escalate: answer["escalate"].as_bool().unwrap_or(false),
        reason: answer["reason"].as_str().map(str::to_string),
        model: answer["versions"]["model"].as_str().unwrap_or_default().to_string(),
        approved: None,
        guard: None,
        snapshot: Some(id.to_string()),
        cache: None,
        prompt: answer["versions"]["prompt"].as_str().map(str::to_string),
    })
}
