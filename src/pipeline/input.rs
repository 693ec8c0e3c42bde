//! Stage `input`: normalise the question and enforce its size limit.
//! (The input guard of the guardrails issue extends this stage.)

use async_trait::async_trait;

use super::{Flow, PipelineError, RequestCtx, Stage};

pub struct InputStage {
    pub max_chars: usize,
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
            return Err(PipelineError::InvalidInput {
                field: "question",
                message: format!("the question is {chars} characters long; the limit is {}", self.max_chars),
            });
        }
        let normalized: String = ctx
            .question
            .chars()
            .filter(|c| !c.is_control() || c.is_whitespace())
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if normalized.is_empty() {
            return Err(PipelineError::InvalidInput { field: "question", message: "the question is empty".into() });
        }
        ctx.question = normalized;
        Ok(Flow::Continue)
    }
}
