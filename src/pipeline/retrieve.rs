//! Stage `retrieve`: hybrid search, top-k cap and relevance floor. What clears the floor is
//! the evidence later stages may use, unless the document scanner finds instructions aimed at
//! an AI in it (indirect injection): such chunks are kept out and listed on the trace, unless
//! a person approved that exact content (`keel documents approve`).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{Flow, PipelineError, RequestCtx, Stage};
use crate::answer::extractive::Evidence;
use crate::config::RetrievalConfig;
use crate::embedding::Embedder;
use crate::guardrails::review::ChunkReviews;
use crate::index::Index;
use keel_guard::InputGuard;

pub struct RetrieveStage {
    index: Arc<Index>,
    embedder: Arc<Embedder>,
    cfg: RetrievalConfig,
    scanner: Option<Arc<InputGuard>>,
    /// The scanner's verdict per chunk id (`Some`: flagged, with what goes on the trace).
    scanned: moka::sync::Cache<String, Option<serde_json::Value>>,
    /// Flagged chunks a person approved (that content only) are used after all.
    reviews: Arc<ChunkReviews>,
}

impl RetrieveStage {
    /// `scanner`: when given, evidence chunks are scanned for indirect injection.
    pub fn new(
        index: Arc<Index>,
        embedder: Arc<Embedder>,
        cfg: RetrievalConfig,
        scanner: Option<Arc<InputGuard>>,
        reviews: Arc<ChunkReviews>,
    ) -> Self {
        Self { index, embedder, cfg, scanner, scanned: moka::sync::Cache::new(100_000), reviews }
    }
}

#[async_trait]
impl Stage for RetrieveStage {
    fn name(&self) -> &'static str {
        "retrieve"
    }

    async fn run(&self, ctx: &mut RequestCtx) -> Result<Flow, PipelineError> {
        let (index, embedder, cfg) = (self.index.clone(), self.embedder.clone(), self.cfg.clone());
        let (question, top, known) = (ctx.question.clone(), ctx.top_k, ctx.query_vector.take());
        // Embedding and scoring are CPU work: keep them off the async workers.
        let (hits, embed_us) = tokio::task::spawn_blocking(move || -> Result<_, PipelineError> {
            let t = std::time::Instant::now();
            let qv = match known {
                Some(v) => v,
                None => embedder.embed(&[question.as_str()])?,
            };
            let embed_us = t.elapsed().as_micros() as u64;
            Ok((index.search(&question, &qv, top, &cfg)?, embed_us))
        })
        .await
        .map_err(|e| PipelineError::Internal(format!("retrieval task: {e}")))??;
        ctx.trace.attr("embed_us", embed_us);
        ctx.trace.attr("relevance_floor", self.cfg.relevance_floor);
        let mut listed = Vec::new();
        let mut kept_out = Vec::new();
        let mut approved_flagged = Vec::new();
        for h in &hits {
            let Some(chunk) = self.index.chunk(h.row) else { continue };
            let mut evidence = h.cosine >= self.cfg.relevance_floor;
            if let (true, Some(scanner)) = (evidence, &self.scanner) {
                // Chunks are immutable within a loaded index: each is scanned once, not per request.
                let verdict = self.scanned.get_with(chunk.id.clone(), || {
                    let v = scanner.scan_document(&chunk.text);
                    v.flagged.then(|| json!({ "chunk": chunk.id, "score": v.score, "reasons": v.reasons }))
                });
                if let Some(v) = verdict {
                    if self.reviews.is_approved(&chunk.id, &chunk.text) {
                        approved_flagged.push(chunk.id.clone());
                    } else {
                        evidence = false;
                        kept_out.push(v);
                    }
                }
            }
            listed.push(json!({ "chunk": chunk.id, "score": h.score, "cosine": h.cosine, "bm25": h.bm25, "evidence": evidence }));
            if evidence {
                ctx.evidence.push(Evidence { chunk: chunk.clone(), hit: h.clone() });
            }
        }
        if let Some(c) = ctx.correction.take() {
            // A correction outranks everything the index found.
            ctx.evidence.insert(0, c);
            ctx.evidence.truncate(ctx.top_k.max(1));
        }
        ctx.trace.attr("hits", listed);
        if !kept_out.is_empty() {
            ctx.trace.attr("kept_out", kept_out);
        }
        if !approved_flagged.is_empty() {
            ctx.trace.attr("flagged_but_approved", approved_flagged);
        }
        ctx.trace.attr("evidence", ctx.evidence.len());
        Ok(Flow::Continue)
    }
}
