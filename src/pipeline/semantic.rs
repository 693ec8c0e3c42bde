//! Stage `semantic_cache`: a question close enough in meaning to one answered before — cosine
//! similarity between the normalised questions' embeddings at or above `[cache]
//! semantic_threshold` — under the same tenant and versions (corpus, answerer, approved set,
//! configuration, top_k) gets that answer again, without retrieval or a model call. Only
//! grounded answers that did not escalate are stored (by `record`); a hit is marked on the
//! trace and in the answer's `cache` field (`x-keel-cache: semantic-hit` on the wire).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::snapshot::AnswerVersions;
use super::{Flow, PipelineError, RequestCtx, Stage};
use crate::answer::{Answer, CacheRef, Draft};
use crate::embedding::Embedder;
use crate::governance::normalize_question;

struct Entry {
    vector: Vec<f32>,
    answer: Answer,
    at: Instant,
}

/// The cached answers, per scope (tenant + versions), oldest first.
pub struct SemanticCache {
    scopes: Mutex<HashMap<String, VecDeque<Entry>>>,
    ttl: Duration,
    max_per_scope: usize,
    threshold: f32,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

impl SemanticCache {
    pub fn new(ttl: Duration, max_per_scope: usize, threshold: f32) -> Self {
        Self { scopes: Mutex::new(HashMap::new()), ttl, max_per_scope: max_per_scope.max(1), threshold }
    }

    /// The most similar live answer in `scope` at or above the threshold.
    pub fn lookup(&self, scope: &str, vector: &[f32]) -> Option<(Answer, f32)> {
        let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        let entries = scopes.get_mut(scope)?;
        while entries.front().is_some_and(|e| e.at.elapsed() > self.ttl) {
            entries.pop_front();
        }
        entries
            .iter()
            .map(|e| (e, cosine(&e.vector, vector)))
            .filter(|(_, s)| *s >= self.threshold)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(e, s)| (e.answer.clone(), s))
    }

    /// Stores an answer (the oldest goes when the scope is full).
    pub fn insert(&self, scope: String, vector: Vec<f32>, answer: Answer) {
        let mut scopes = self.scopes.lock().unwrap_or_else(PoisonError::into_inner);
        let entries = scopes.entry(scope).or_default();
        if entries.len() >= self.max_per_scope {
            entries.pop_front();
        }
        entries.push_back(Entry { vector, answer, at: Instant::now() });
    }
}

/// Set by the stage on a miss: `record` stores the answer under it.
pub struct SemanticKey {
    pub scope: String,
    pub vector: Vec<f32>,
}

pub struct SemanticStage {
    pub cache: Arc<SemanticCache>,
    pub embedder: Arc<Embedder>,
    /// The same versions as snapshot keys.
    pub versions: Arc<AnswerVersions>,
}

/// The draft a cached answer replays.
fn draft_of(a: &Answer, similarity: f32) -> Draft {
    Draft {
        text: a.answer.clone(),
        citations: a.citations.clone(),
        grounded: a.grounded,
        escalate: a.escalate,
        reason: a.reason.clone(),
        model: a.versions.model.clone(),
        approved: None,
        guard: None,
        snapshot: None,
        prompt: a.versions.prompt.clone(),
        cache: Some(CacheRef { kind: "semantic", similarity, trace_id: a.trace_id.clone() }),
    }
}

/// Whether an answer may be stored: grounded, not escalating, not itself a replay.
pub fn cacheable(a: &Answer) -> bool {
    a.grounded && !a.escalate && a.cache.is_none() && a.approved.is_none() && a.reason.is_none()
}

#[async_trait]
impl Stage for SemanticStage {
    fn name(&self) -> &'static str {
        "semantic_cache"
    }

    async fn run(&self, ctx: &mut RequestCtx) -> Result<Flow, PipelineError> {
        if ctx.correction.is_some() {
            // A correction in evidence mode shapes this answer: never replay an older one.
            ctx.trace.attr("skipped", "correction");
            return Ok(Flow::Continue);
        }
        let vector = match &ctx.query_vector {
            Some(v) => v.clone(),
            None => {
                let embedder = self.embedder.clone();
                let normalized = normalize_question(&ctx.question);
                let v = tokio::task::spawn_blocking(move || embedder.embed(&[normalized.as_str()]))
                    .await
                    .map_err(|e| PipelineError::Internal(format!("embedding task: {e}")))??;
                ctx.query_vector = Some(v.clone());
                v
            }
        };
        let scope = serde_json::json!({ "tenant": ctx.tenant, "v": self.versions.current(ctx.top_k) });
        let scope = crate::digest::sha256_hex(scope.to_string().as_bytes());
        if let Some((answer, similarity)) = self.cache.lookup(&scope, &vector) {
            ctx.trace.attr("hit", true);
            ctx.trace.attr("similarity", similarity);
            ctx.trace.attr("source_trace", answer.trace_id.as_str());
            crate::metrics::global().inc(
                "keel_semantic_cache_total",
                "Grounded questions by semantic-cache outcome",
                &[("outcome", "hit")],
                1,
            );
            return Ok(Flow::Respond(draft_of(&answer, similarity)));
        }
        ctx.trace.attr("hit", false);
        crate::metrics::global().inc(
            "keel_semantic_cache_total",
            "Grounded questions by semantic-cache outcome",
            &[("outcome", "miss")],
            1,
        );
        ctx.semantic = Some(SemanticKey { scope, vector });
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Versions;

    fn answer(text: &str) -> Answer {
        Answer {
            answer: text.into(),
            citations: vec![],
            grounded: true,
            escalate: false,
            reason: None,
            trace_id: "tr_1".into(),
            versions: Versions { corpus: "c1".into(), model: "m".into(), prompt: None },
            approved: None,
            conversation: None,
            escalation: None,
            guard: None,
            snapshot: None,
            cache: None,
            usage: None,
        }
    }

    #[test]
    fn hits_need_the_threshold_the_scope_and_a_live_entry() {
        let c = SemanticCache::new(Duration::from_secs(60), 2, 0.95);
        c.insert("s".into(), vec![1.0, 0.0], answer("a"));
        assert_eq!(c.lookup("s", &[0.99, 0.05]).map(|(a, _)| a.answer), Some("a".into()));
        assert!(c.lookup("s", &[0.7, 0.7]).is_none(), "below the threshold");
        assert!(c.lookup("other", &[1.0, 0.0]).is_none(), "another tenant or version");
        c.insert("s".into(), vec![0.0, 1.0], answer("b"));
        c.insert("s".into(), vec![0.6, 0.8], answer("c"));
        assert!(c.lookup("s", &[1.0, 0.0]).is_none(), "the oldest entry went when the scope was full");

        let expired = SemanticCache::new(Duration::from_millis(0), 4, 0.95);
        expired.insert("s".into(), vec![1.0], answer("a"));
        std::thread::sleep(Duration::from_millis(2));
        assert!(expired.lookup("s", &[1.0]).is_none());
    }

    #[test]
    fn only_grounded_first_hand_answers_are_cacheable() {
        assert!(cacheable(&answer("a")));
        assert!(!cacheable(&Answer { escalate: true, ..answer("a") }));
        assert!(!cacheable(&Answer { grounded: false, ..answer("a") }));
        let replay =
            Answer { cache: Some(CacheRef { kind: "semantic", similarity: 1.0, trace_id: "t".into() }), ..answer("a") };
        assert!(!cacheable(&replay));
    }
}
