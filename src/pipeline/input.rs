//! Stage `input`: the input guard. Size limit; Unicode NFKC with invisible characters
//! stripped; personal data redacted (or the input refused) per kind before anything is stored
//! or answered; prompt injection scored in layers, with the verdict on the trace and the
//! configured action (block with a reason code, flag, or escalate).

use std::sync::Arc;

use async_trait::async_trait;
use keel_guard::pii::PiiAction;
use keel_guard::{Action, InputGuard, ReasonCode};
use serde_json::json;

use super::{Flow, PipelineError, RequestCtx, Stage};
use crate::answer::{Draft, GuardRef};
use crate::config::{GuardSettings, InjectionAction};
use crate::governance::reason;

pub struct InputStage {
    pub max_chars: usize,
    pub guard: Option<Arc<InputGuard>>,
    pub settings: GuardSettings,
}

/// What a refused question gets. It names the reason code, never the rule or the prompt.
pub const REFUSAL: &str = "I can't help with that request.";

fn code(r: &ReasonCode) -> String {
    r.as_str().to_string()
}

#[async_trait]
impl Stage for InputStage {
    fn name(&self) -> &'static str {
        "input"
    }

    async fn run(&self, ctx: &mut RequestCtx) -> Result<Flow, PipelineError> {
        let chars = ctx.question.chars().count();
        ctx.trace.attr("chars", chars);
        if chars > self.max_chars {
            ctx.trace.set_input("question_chars", chars);
            return Err(PipelineError::InvalidInput {
                field: "question",
                message: format!("the question is {chars} characters long; the limit is {}", self.max_chars),
            });
        }
        let mut refusal = None;
        if let Some(guard) = &self.guard {
            let report = guard.check(&ctx.question);
            let v = &report.verdict;
            let pii_kinds: Vec<&str> = report.pii.iter().map(|f| f.kind.reason_code()).collect();
            ctx.trace.attr(
                "guard",
                json!({
                    "action": v.action, "score": v.score, "reasons": v.reasons, "layers": v.layers,
                    "stripped": report.stripped, "homoglyphs": report.homoglyphs, "pii": pii_kinds,
                }),
            );
            let pii_block = report.pii.iter().find(|f| self.settings.pii.action(f.kind) == PiiAction::Block);
            let injection: Vec<String> = v
                .reasons
                .iter()
                .map(code)
                .filter(|c| c.starts_with("injection.") || c == "input.hidden_text")
                .collect();
            if let Some(f) = pii_block {
                refusal = Some((InjectionAction::Block, vec![f.kind.reason_code().to_string()]));
            } else if v.action == Action::Block && !injection.is_empty() {
                refusal = Some((self.settings.injection, injection));
            } else if v.action != Action::Allow {
                ctx.trace.attr("flagged", true);
            }
            ctx.question = report.redacted;
        }
        let normalized: String = ctx
            .question
            .chars()
            .filter(|c| !c.is_control() || c.is_whitespace())
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        // The trace keeps the question as redacted, never as sent.
        ctx.trace.set_input("question", normalized.clone());
        if let Some((action, reasons)) = refusal {
            ctx.trace.attr("refused", json!({ "action": format!("{action:?}").to_lowercase(), "reasons": reasons }));
            let guard = Some(GuardRef { action: format!("{action:?}").to_lowercase(), reasons });
            match action {
                InjectionAction::Block => {
                    let mut d = Draft::plain(REFUSAL, false, reason::GUARD_BLOCK, "keel-guard");
                    d.guard = guard;
                    return Ok(Flow::Respond(d));
                }
                InjectionAction::Escalate => {
                    let mut d = Draft::plain(super::conversation::HANDOFF, true, reason::GUARD_BLOCK, "keel-guard");
                    d.guard = guard;
                    return Ok(Flow::Respond(d));
                }
                InjectionAction::Flag => ctx.trace.attr("flagged", true),
            }
        }
        if normalized.is_empty() {
            return Err(PipelineError::InvalidInput { field: "question", message: "the question is empty".into() });
        }
        ctx.question = normalized;
        Ok(Flow::Continue)
    }
}
