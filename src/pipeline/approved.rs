//! Stage `approved`: a question that matches a pre-approved answer (similarity over a
//! threshold and a margin over the next candidate, on the normalised question) gets that
//! answer verbatim, with its id and version, before retrieval or any model call.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{Flow, PipelineError, RequestCtx, Stage};
use crate::answer::{ApprovedRef, Citation, Draft};
use crate::config::GovernanceConfig;
use crate::embedding::Embedder;
use crate::governance::approved::ApprovedSet;
use crate::governance::normalize_question;
use crate::index::Index;

pub struct ApprovedStage {
    set: Arc<ApprovedSet>,
    embedder: Arc<Embedder>,
    index: Arc<Index>,
    threshold: f32,
    margin: f32,
}

impl ApprovedStage {
    pub fn new(set: Arc<ApprovedSet>, embedder: Arc<Embedder>, index: Arc<Index>, cfg: &GovernanceConfig) -> Self {
        Self { set, embedder, index, threshold: cfg.approved_threshold, margin: cfg.approved_margin }
    }
}

#[async_trait]
impl Stage for ApprovedStage {
    fn name(&self) -> &'static str {
        "approved"
    }

    async fn run(&self, ctx: &mut RequestCtx) -> Result<Flow, PipelineError> {
        ctx.trace.attr("candidates", self.set.len());
        if self.set.is_empty() {
            return Ok(Flow::Continue);
        }
        // One embedding per question: the input guard's, when it made one, is reused here and
        // by retrieval.
        let vector = match ctx.query_vector.take() {
            Some(v) => v,
            None => {
                let embedder = self.embedder.clone();
                let normalized = normalize_question(&ctx.question);
                tokio::task::spawn_blocking(move || embedder.embed(&[normalized.as_str()]))
                    .await
                    .map_err(|e| PipelineError::Internal(format!("embedding task: {e}")))??
            }
        };
        let m = self.set.best(&vector, self.threshold, self.margin);
        ctx.query_vector = Some(vector);
        let Some((best, similarity)) = m.best else { return Ok(Flow::Continue) };
        ctx.trace.attr(
            "best",
            json!({ "id": best.id, "version": best.version, "similarity": similarity, "runner_up": m.runner_up }),
        );
        ctx.trace.attr("matched", m.accepted);
        if !m.accepted {
            return Ok(Flow::Continue);
        }
        if best.status == crate::governance::EVIDENCE {
            ctx.trace.attr("correction_as_evidence", best.id.as_str());
            ctx.correction = Some(correction_evidence(&best.id, &best.answer));
            return Ok(Flow::Continue);
        }
        let citations = best
            .cites
            .iter()
            .enumerate()
            .map(|(i, doc)| {
                let chunk = self.index.first_chunk_of(doc);
                Citation {
                    n: i + 1,
                    doc: doc.clone(),
                    chunk: chunk.map(|c| c.id.clone()).unwrap_or_default(),
                    title: chunk.map_or_else(|| doc.clone(), |c| c.title.clone()),
                    heading: String::new(),
                    span: [0, 0],
                    snippet: String::new(),
                    score: 1.0,
                }
            })
            .collect();
        Ok(Flow::Respond(Draft {
            text: best.answer.clone(),
            citations,
            grounded: true,
            escalate: false,
            reason: None,
            model: "approved".into(),
            approved: Some(ApprovedRef { id: best.id, version: best.version, similarity }),
            guard: None,
            snapshot: None,
            cache: None,
            prompt: None,
        }))
    }
}

/// A correction as a piece of evidence the answerers can cite.
fn correction_evidence(id: &str, text: &str) -> crate::answer::extractive::Evidence {
    let chunk = crate::index::ChunkMeta {
        id: format!("correction:{id}"),
        doc_id: format!("correction:{id}"),
        title: "Correction".into(),
        heading: String::new(),
        text: text.to_string(),
        start_char: 0,
        end_char: text.chars().count() as u64,
    };
    let hit = crate::index::Hit { row: usize::MAX, score: 1.0, cosine: 1.0, bm25: 0.0 };
    crate::answer::extractive::Evidence { chunk, hit }
}
