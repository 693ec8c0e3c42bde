//! The request pipeline of DESIGN.md, as code: an ordered list of stages, each a module with
//! one job, run by one runner that opens and closes every stage's span on the trace.
//!
//! # The stage contract
//!
//! A stage reads and writes the [`RequestCtx`] and returns a [`Flow`]:
//! - `Flow::Continue`: the next stage runs;
//! - `Flow::Respond(draft)`: the request is answered now and no later stage runs. A cache hit,
//!   a guard block and an approved answer are all this one mechanism.
//!
//! An `Err` ends the request with that error (mapped to HTTP once, in `http/error.rs`).
//! Stages never time themselves and never read configuration files or environment
//! variables: what they need is given to them at construction.

mod approved;
mod conversation;
mod generate;
mod generative;
mod input;
mod record;
mod retrieve;
mod semantic;
pub mod sink;
mod snapshot;

use std::sync::Arc;

use async_trait::async_trait;
use keel_guard::InputGuard;
use serde_json::{json, Value};

use crate::answer::extractive::Evidence;
use crate::answer::{Answer, ConversationRef, Draft, Versions};
use crate::config::{Config, Generator};
use crate::embedding::Embedder;
use crate::gateway::usage::Usage;
use crate::gateway::{Gateway, GatewayError};
use crate::governance::approved::ApprovedSet;
use crate::guardrails::output::OutputGuard;
use crate::guardrails::review::ChunkReviews;
use crate::guardrails::{Guards, Quarantine};
use crate::index::{Index, IndexError};
use crate::store::{Store, StoreError};
use crate::trace::TraceBuilder;

pub use sink::TraceSink;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The client sent something unusable; `field` names the offending input.
    #[error("{message}")]
    InvalidInput { field: &'static str, message: String },
    #[error("embedding the question: {0}")]
    Embed(#[from] keel_embed::EmbedError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("internal: {0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The conversation can take no more questions (`reason`: `idle_timeout`, …).
    #[error("conversation `{id}` is closed ({reason}); start a new conversation")]
    ConversationClosed { id: String, reason: String },
    /// The generative answerer's model call failed (mapped like the gateway's own errors).
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Ground(#[from] keel_ground::GroundError),
    #[error(transparent)]
    Guardrail(#[from] crate::guardrails::GuardrailError),
}

/// What flows through the stages.
pub struct RequestCtx {
    pub question: String,
    pub top_k: usize,
    pub trace: TraceBuilder,
    pub evidence: Vec<Evidence>,
    pub tenant: String,
    pub conversation: Option<ConversationRef>,
    /// The embedding of the (normalised) question, once a stage has computed it.
    pub query_vector: Option<Vec<f32>>,
    /// A correction matched in evidence mode: `retrieve` puts it first in the evidence.
    pub correction: Option<Evidence>,
    /// Set by `snapshot` on a miss: `record` stores the answer under it.
    pub snapshot: Option<snapshot::SnapshotKey>,
    /// Set by `semantic_cache` on a miss: `record` caches a grounded answer under it.
    pub semantic: Option<semantic::SemanticKey>,
    /// Tokens and cost of the model calls this request made (answerer, repair, judge).
    pub usage: Option<Usage>,
}

impl RequestCtx {
    /// Adds one model call's usage to the request's.
    pub fn add_usage(&mut self, u: Usage) {
        self.usage = Some(self.usage.map_or(u, |t| t.plus(u)));
    }
}

#[expect(clippy::large_enum_variant, reason = "one Flow per stage per request: boxing the draft buys nothing")]
pub enum Flow {
    Continue,
    Respond(Draft),
}

#[async_trait]
pub trait Stage: Send + Sync {
    /// The span name on the trace.
    fn name(&self) -> &'static str;
    async fn run(&self, ctx: &mut RequestCtx) -> Result<Flow, PipelineError>;
}

/// One question to the grounded pipeline.
#[derive(Debug, Clone)]
pub struct Question {
    pub text: String,
    pub top_k: Option<usize>,
    /// Which face asked (`/v1/answer`, `/v1/chat/completions`, `cli`): recorded on the trace.
    pub route: String,
    /// The tenant of the API key that asked (`default` without keys).
    pub tenant: String,
    pub conversation: Option<String>,
}

impl Question {
    pub fn new(text: impl Into<String>, route: &str) -> Self {
        Self { text: text.into(), top_k: None, route: route.to_string(), tenant: "default".into(), conversation: None }
    }

    pub fn top_k(mut self, k: Option<usize>) -> Self {
        self.top_k = k;
        self
    }

    pub fn tenant(mut self, t: impl Into<String>) -> Self {
        self.tenant = t.into();
        self
    }

    pub fn conversation(mut self, c: Option<String>) -> Self {
        self.conversation = c;
        self
    }
}

/// The grounded pipeline, built once from configuration and shared by every request.
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
    index: Arc<Index>,
    default_top_k: usize,
    sink: TraceSink,
    record: record::Recorder,
    reviews: Arc<ChunkReviews>,
    /// The input guard as the document scanner (`[guard] scan_documents`), if on.
    scanner: Option<Arc<InputGuard>>,
}

/// What answers: the answerer's model, prompt and sampling (part of snapshot and cache keys).
fn answerer_identity(config: &Config) -> Value {
    match &config.answer.generator {
        Generator::Extractive => json!({ "model": crate::answer::extractive::MODEL_VERSION }),
        Generator::Route(route) => json!({
            "model": route,
            "prompt": crate::answer::prompt::PROMPT_VERSION,
            "temperature": config.answer.temperature,
            "grounding": format!("{:?}/{:?}", config.answer.grounding_policy, config.answer.grounding_threshold),
        }),
    }
}

impl Pipeline {
    /// Builds the stages; `gateway` serves a generative `[answer] generator` (unused otherwise).
    #[expect(clippy::too_many_arguments, reason = "called from two places, each argument a distinct shared part")]
    pub fn new(
        config: &Config,
        index: Arc<Index>,
        embedder: Arc<Embedder>,
        sink: TraceSink,
        store: Store,
        approved: Arc<ApprovedSet>,
        guards: Guards,
        gateway: Arc<Gateway>,
    ) -> Result<Self, PipelineError> {
        let gov = &config.governance;
        let ans = &config.answer;
        let Guards { input: guard, encoder } = guards;
        let scanner = guard.clone().filter(|_| config.guard.scan_documents);
        let scanner_handle = scanner.clone();
        let reviews = Arc::new(ChunkReviews::default());
        let generate: Box<dyn Stage> = match &ans.generator {
            Generator::Extractive => Box::new(generate::ExtractiveStage { max_sentences: ans.max_sentences }),
            Generator::Route(route) => {
                let mut checker = keel_ground::Checker::new()?;
                if let Some(t) = ans.grounding_threshold {
                    checker = checker.with_threshold(t);
                }
                Box::new(generative::GenerativeStage {
                    gateway: gateway.clone(),
                    route: route.clone(),
                    temperature: ans.temperature,
                    policy: ans.grounding_policy,
                    checker: Arc::new(checker),
                    max_sentences: ans.max_sentences,
                    approved: approved.clone(),
                    output: Arc::new(OutputGuard::new(&config.guard.output)?),
                    quarantine: config.guard.enabled.then(|| Arc::new(Quarantine::new(&config.data_dir))),
                })
            }
        };
        let mut stages: Vec<Box<dyn Stage>> = vec![
            Box::new(input::InputStage {
                max_chars: config.server.max_question_chars,
                guard,
                settings: config.guard.clone(),
                judge: config.guard.judge.as_ref().map(|route| input::Judge {
                    gateway: gateway.clone(),
                    route: route.clone(),
                    always: config.guard.judge_always,
                }),
                encoder,
            }),
            Box::new(conversation::ConversationStage { store: store.clone(), cfg: gov.clone() }),
            Box::new(approved::ApprovedStage::new(approved.clone(), embedder.clone(), index.clone(), gov)),
            Box::new(retrieve::RetrieveStage::new(
                index.clone(),
                embedder.clone(),
                config.retrieval.clone(),
                scanner,
                reviews.clone(),
            )),
            generate,
        ];
        let versions = Arc::new(snapshot::AnswerVersions {
            index: index.clone(),
            approved,
            answerer: answerer_identity(config),
            config_hash: crate::digest::sha256_hex(
                format!("{:?}{:?}{:?}", config.retrieval, config.answer, config.guard).as_bytes(),
            ),
            reviews: reviews.clone(),
        });
        let cache_cfg = &config.gateway.cache;
        let semantic = cache_cfg.semantic.then(|| {
            Arc::new(semantic::SemanticCache::new(
                cache_cfg.ttl,
                cache_cfg.max_entries as usize,
                cache_cfg.semantic_threshold,
            ))
        });
        // Both after `approved`, before `retrieve`: a snapshot first, then the semantic cache.
        if let Some(cache) = &semantic {
            let at = stages.iter().position(|s| s.name() == "retrieve").unwrap_or(stages.len());
            stages.insert(
                at,
                Box::new(semantic::SemanticStage {
                    cache: cache.clone(),
                    embedder: embedder.clone(),
                    versions: versions.clone(),
                }),
            );
        }
        if config.answer.deterministic {
            let at = stages.iter().position(|s| s.name() == "semantic_cache" || s.name() == "retrieve");
            stages.insert(
                at.unwrap_or(stages.len()),
                Box::new(snapshot::SnapshotStage { store: store.clone(), versions: versions.clone() }),
            );
        }
        let record = record::Recorder { store, escalate_on_no_evidence: gov.escalate_on_no_evidence, semantic };
        Ok(Self {
            stages,
            index,
            default_top_k: config.retrieval.top_k,
            sink,
            record,
            reviews,
            scanner: scanner_handle,
        })
    }

    /// The document scanner the retrieve stage uses (`None`: `[guard] scan_documents` off).
    pub fn document_scanner(&self) -> Option<&Arc<InputGuard>> {
        self.scanner.as_ref()
    }

    /// The flagged chunks people approved (refreshed by `App::reload_approved`).
    pub fn reviews(&self) -> &Arc<ChunkReviews> {
        &self.reviews
    }

    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// Runs every stage until one responds; records the trace (without waiting for the write).
    pub async fn run(&self, q: Question) -> Result<Answer, PipelineError> {
        // The question joins the trace's input only once the input stage has redacted it.
        let input = json!({ "top_k": q.top_k, "conversation": q.conversation, "tenant": q.tenant });
        let mut ctx = RequestCtx {
            question: q.text,
            top_k: q.top_k.unwrap_or(self.default_top_k).clamp(1, 100),
            trace: TraceBuilder::new(&q.route, input),
            evidence: Vec::new(),
            tenant: q.tenant,
            conversation: q.conversation.map(|id| ConversationRef { id, user_turns: 0, turn_limit: 0 }),
            query_vector: None,
            correction: None,
            snapshot: None,
            semantic: None,
            usage: None,
        };
        let mut draft = None;
        for stage in &self.stages {
            let start = ctx.trace.elapsed_us();
            let result = stage.run(&mut ctx).await;
            if let Err(e) = &result {
                ctx.trace.attr("error", e.to_string());
            }
            let took = ctx.trace.close_span(stage.name(), start);
            crate::metrics::global().observe(
                "keel_stage_duration_seconds",
                "Time spent in each pipeline stage",
                &[("stage", stage.name())],
                took,
            );
            match result {
                Ok(Flow::Continue) => {}
                Ok(Flow::Respond(d)) => {
                    draft = Some(d);
                    break;
                }
                Err(e) => {
                    let trace = ctx.trace.finish("error", json!({ "error": e.to_string() }));
                    self.sink.record(trace);
                    return Err(e);
                }
            }
        }
        let draft = draft.ok_or_else(|| PipelineError::Internal("no stage produced an answer".into()))?;
        let mut answer = Answer {
            answer: draft.text,
            citations: draft.citations,
            grounded: draft.grounded,
            escalate: draft.escalate,
            reason: draft.reason,
            trace_id: ctx.trace.id().to_string(),
            versions: Versions { corpus: self.index.corpus_version(), model: draft.model, prompt: draft.prompt },
            approved: draft.approved,
            conversation: ctx.conversation.clone(),
            escalation: None,
            guard: draft.guard,
            snapshot: draft.snapshot,
            cache: draft.cache,
            usage: ctx.usage,
        };
        // After the answer: the assistant turn and any escalation are durable before the
        // client hears of them (the escalation id is in the response).
        let start = ctx.trace.elapsed_us();
        let recorded = self.record.record(&mut ctx, &mut answer).await;
        if let Err(e) = &recorded {
            ctx.trace.attr("error", e.to_string());
        }
        ctx.trace.close_span("record", start);
        if let Some(u) = &ctx.usage {
            ctx.trace.attr("usage", serde_json::to_value(u).unwrap_or(Value::Null));
        }
        if let Err(e) = recorded {
            self.sink.record(ctx.trace.finish("error", json!({ "error": e.to_string() })));
            return Err(e);
        }
        let status = if answer.escalate { "escalated" } else { "ok" };
        let output = serde_json::to_value(&answer).unwrap_or(Value::Null);
        self.sink.record(ctx.trace.finish(status, output));
        Ok(answer)
    }
}
