//! Stage `generate` with a model behind the gateway: the versioned grounded prompt, one model
//! call, and the hallucination firewall (keel-ground) on the reply before anything can reach
//! the client. An unsupported reply is replaced according to the grounding policy: the
//! extractive answer, one repair call (through the gateway, so the loop guard counts it), or
//! an escalation. Same `Stage` contract and `Draft` shape as the extractive stage.

use std::sync::Arc;

use async_trait::async_trait;
use keel_ground::{AnswerVerdict, Checker};
use serde_json::{json, Value};

use super::{Flow, PipelineError, RequestCtx, Stage};
use crate::answer::extractive::{self, Evidence};
use crate::answer::prompt::{self, Message, Prompt};
use crate::answer::{generative, Draft};
use crate::config::GroundingPolicy;
use crate::gateway::{chat, CallReport, Gateway, GatewayError};
use crate::governance::approved::ApprovedSet;
use crate::governance::reason;
use crate::guardrails::output::{OutputBlock, OutputGuard};
use crate::guardrails::Quarantine;

pub struct GenerativeStage {
    pub gateway: Arc<Gateway>,
    /// The route (model name) the gateway sends the prompt to.
    pub route: String,
    pub temperature: f32,
    pub policy: GroundingPolicy,
    pub checker: Arc<Checker>,
    /// For the extractive fallback.
    pub max_sentences: usize,
    /// Knows the answers corrections marked wrong.
    pub approved: Arc<ApprovedSet>,
    /// Deny-list and system-prompt leak checks on every reply.
    pub output: Arc<OutputGuard>,
    /// Where an input that made the model leak its canary is learned (quarantined).
    pub quarantine: Option<Arc<Quarantine>>,
}

/// A verdict as trace attributes: the answer's and each claim's.
fn verdict_attr(v: &AnswerVerdict, threshold: f32) -> Value {
    let claims: Vec<Value> = v
        .claims
        .iter()
        .map(|c| {
            json!({ "text": c.text, "citations": c.citations, "factual": c.factual,
                    "supported": c.supported, "score": c.score, "missing": c.missing })
        })
        .collect();
    json!({ "supported": v.supported, "score": v.score, "threshold": threshold, "claims": claims })
}

/// Counts grounding checks by outcome and what the policy did (`keel_grounding_total`), so a
/// rising block rate is visible on `/metrics`.
fn count(outcome: &str) {
    crate::metrics::global().inc(
        "keel_grounding_total",
        "Generated answers by grounding outcome (supported, fallback_extractive, repaired, escalated)",
        &[("outcome", outcome)],
        1,
    );
}

impl GenerativeStage {
    async fn call(
        &self,
        ctx: &mut RequestCtx,
        messages: &[Message],
        report: &mut CallReport,
    ) -> Result<String, GatewayError> {
        let body = chat::body(messages, self.temperature);
        let (reply, usage) = self.gateway.complete_metered(&self.route, body, report).await?;
        ctx.add_usage(usage);
        chat::reply_text(&reply)
            .ok_or_else(|| GatewayError::Exhausted("the model's reply has no message content".into()))
    }

    fn check(&self, reply: &str, evidence: &[Evidence]) -> AnswerVerdict {
        let chunks: Vec<&str> = evidence.iter().map(|e| e.chunk.text.as_str()).collect();
        self.checker.check_answer(reply, &chunks)
    }

    fn accept(&self, reply: &str, evidence: &[Evidence]) -> Draft {
        if prompt::is_dont_know(reply) {
            return Draft::plain(extractive::NOT_FOUND, true, crate::answer::REASON_NO_EVIDENCE, &self.route);
        }
        generative::draft(reply, evidence, &self.route, prompt::PROMPT_VERSION)
    }

    /// The reply carried the system prompt's canary: the prompt leaked (an injection worked).
    /// Nothing of the reply is served; the alarm is raised, and the question goes into the
    /// signature quarantine (inactive until a person approves it).
    async fn canary_leak(&self, ctx: &mut RequestCtx) -> Draft {
        ctx.trace.attr("canary_leak", true);
        if let Some(q) = self.quarantine.clone() {
            let text = ctx.question.clone();
            let provenance = format!("canary leak on route {}, trace {}", self.route, ctx.trace.id());
            match tokio::task::spawn_blocking(move || q.learn(&text, &provenance)).await {
                Ok(Ok(id)) => ctx.trace.attr("quarantined", id),
                Ok(Err(e)) => tracing::warn!(error = %e, "could not quarantine the input of a canary leak"),
                Err(e) => tracing::warn!(error = %e, "quarantine task failed"),
            }
        }
        crate::metrics::global().inc(
            "keel_canary_leaks_total",
            "Generated replies that contained the system prompt's canary (a prompt leak)",
            &[("route", self.route.as_str())],
            1,
        );
        tracing::warn!(route = %self.route, "a model reply contained the system-prompt canary; reply withheld");
        count("canary_leak");
        self.fallback(ctx, "the reply leaked the system prompt's canary")
    }

    /// The output guard withheld the reply (deny-list, system-prompt leak): the extractive
    /// answer is served instead.
    fn output_block(&self, ctx: &mut RequestCtx, block: &OutputBlock) -> Draft {
        block.count();
        ctx.trace.attr("output_block", json!({ "reason": block.reason_code(), "detail": block.to_string() }));
        count("output_block");
        self.fallback(ctx, &block.to_string())
    }

    /// The answer that replaces an unsupported reply (policy `fallback_extractive`, or `repair`
    /// when the repair failed too).
    fn fallback(&self, ctx: &mut RequestCtx, why: &str) -> Draft {
        ctx.trace.attr("grounding_fallback", json!({ "answerer": extractive::MODEL_VERSION, "reason": why }));
        extractive::answer(&ctx.question, &ctx.evidence, self.max_sentences)
    }

    async fn generate(&self, ctx: &mut RequestCtx, report: &mut CallReport) -> Result<Draft, PipelineError> {
        let canary = keel_guard::output::new_canary();
        let p: Prompt = prompt::with_canary(prompt::render(&ctx.question, &ctx.evidence), &canary);
        let reply = self.call(ctx, &p.messages, report).await?;
        if keel_guard::output::canary_in(&reply, &canary) {
            return Ok(self.canary_leak(ctx).await);
        }
        if let Err(block) = self.output.check_text(&reply, Some(&p.messages[0].content)) {
            return Ok(self.output_block(ctx, &block));
        }
        if let Some(correction) = self.approved.repeats_wrong_answer(&reply) {
            // The model said again what a correction marked wrong: stopped, never served.
            ctx.trace.attr("repeats_correction", correction.as_str());
            count("repeats_correction");
            if self.policy == GroundingPolicy::Escalate {
                return Ok(Draft::plain(extractive::NOT_FOUND, true, reason::REPEATS_CORRECTION, &self.route));
            }
            return Ok(self.fallback(ctx, &format!("repeats the answer corrected by {correction}")));
        }
        let verdict = self.check(&reply, &ctx.evidence);
        ctx.trace.attr("grounding", verdict_attr(&verdict, self.checker.threshold()));
        if verdict.supported || prompt::is_dont_know(&reply) {
            count("supported");
            return Ok(self.accept(&reply, &ctx.evidence));
        }
        let unsupported = verdict.unsupported().count();
        match self.policy {
            GroundingPolicy::FallbackExtractive => {
                count("fallback_extractive");
                Ok(self.fallback(ctx, &format!("{unsupported} unsupported claim(s)")))
            }
            GroundingPolicy::Escalate => {
                count("escalated");
                ctx.trace.attr("grounding_escalated", true);
                Ok(Draft::plain(extractive::NOT_FOUND, true, reason::LOW_GROUNDING, &self.route))
            }
            GroundingPolicy::Repair => {
                let named: Vec<(String, Vec<String>)> =
                    verdict.unsupported().map(|c| (c.text.clone(), c.missing.clone())).collect();
                let messages = prompt::repair(&p, &reply, &named);
                let repaired = match self.call(ctx, &messages, report).await {
                    Ok(r) => r,
                    Err(e) => {
                        count("fallback_extractive");
                        ctx.trace.attr("repair_error", e.to_string());
                        return Ok(self.fallback(ctx, &format!("repair call failed: {e}")));
                    }
                };
                if keel_guard::output::canary_in(&repaired, &canary) {
                    return Ok(self.canary_leak(ctx).await);
                }
                if let Err(block) = self.output.check_text(&repaired, Some(&p.messages[0].content)) {
                    return Ok(self.output_block(ctx, &block));
                }
                let again = self.check(&repaired, &ctx.evidence);
                ctx.trace.attr("repair_grounding", verdict_attr(&again, self.checker.threshold()));
                if again.supported || prompt::is_dont_know(&repaired) {
                    count("repaired");
                    return Ok(self.accept(&repaired, &ctx.evidence));
                }
                count("fallback_extractive");
                let left = again.unsupported().count();
                Ok(self.fallback(ctx, &format!("{left} unsupported claim(s) after repair")))
            }
        }
    }
}

#[async_trait]
impl Stage for GenerativeStage {
    fn name(&self) -> &'static str {
        "generate"
    }

    async fn run(&self, ctx: &mut RequestCtx) -> Result<Flow, PipelineError> {
        if ctx.evidence.is_empty() {
            // Nothing to ground an answer in: the same escalation as extractive, no model call.
            let draft = extractive::answer(&ctx.question, &ctx.evidence, self.max_sentences);
            ctx.trace.attr("model", extractive::MODEL_VERSION);
            ctx.trace.attr("escalate", draft.escalate);
            return Ok(Flow::Respond(draft));
        }
        ctx.trace.attr("route", self.route.as_str());
        ctx.trace.attr("prompt", prompt::PROMPT_VERSION);
        ctx.trace.attr("grounding_policy", self.policy.as_str());
        let mut report = CallReport::default();
        let result = self.generate(ctx, &mut report).await;
        ctx.trace.attr("model_calls", report.calls);
        ctx.trace.attr("attempts", serde_json::to_value(&report.attempts).unwrap_or(Value::Null));
        let draft = result?;
        ctx.trace.attr("model", draft.model.as_str());
        ctx.trace.attr("citations", draft.citations.len());
        ctx.trace.attr("escalate", draft.escalate);
        Ok(Flow::Respond(draft))
    }
}
