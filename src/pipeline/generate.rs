//! Stage `generate` with the built-in extractive answerer (`[answer] generator = "extractive"`,
//! the default). A model behind the gateway is `generative.rs`, behind the same `Draft`.

use async_trait::async_trait;

use super::{Flow, PipelineError, RequestCtx, Stage};
use crate::answer::extractive;

pub struct ExtractiveStage {
    pub max_sentences: usize,
}

#[async_trait]
impl Stage for ExtractiveStage {
    fn name(&self) -> &'static str {
        "generate"
    }

    async fn run(&self, ctx: &mut RequestCtx) -> Result<Flow, PipelineError> {
        let draft = extractive::answer(&ctx.question, &ctx.evidence, self.max_sentences);
        ctx.trace.attr("model", extractive::MODEL_VERSION);
        ctx.trace.attr("citations", draft.citations.len());
        ctx.trace.attr("escalate", draft.escalate);
        Ok(Flow::Respond(draft))
    }
}
