//! Stage `conversation`: counts the user turn against the conversation's limit and idle
//! timeout (persisted, so a restart resets nothing), delivers a human agent's pending reply,
//! and hands the conversation to a person when the limit is passed or the user asks for one.

use async_trait::async_trait;

use super::{Flow, PipelineError, RequestCtx, Stage};
use crate::answer::Draft;
use crate::config::GovernanceConfig;
use crate::governance::{asks_for_human, reason, repeated_rephrasing, Turn, TurnStart};
use crate::store::Store;

pub struct ConversationStage {
    pub store: Store,
    pub cfg: GovernanceConfig,
}

/// The same question asked this many times in a row (by content-word overlap) hands off.
const REPHRASINGS: usize = 3;
const REPHRASING_OVERLAP: f32 = 0.4;

pub const HANDOFF: &str =
    "I've asked a member of our team to help you; they will reply in this conversation as soon as they can.";

#[async_trait]
impl Stage for ConversationStage {
    fn name(&self) -> &'static str {
        "conversation"
    }

    async fn run(&self, ctx: &mut RequestCtx) -> Result<Flow, PipelineError> {
        if let Some(conv) = ctx.conversation.as_mut() {
            conv.turn_limit = self.cfg.turn_limit;
            let idle_ms = self.cfg.idle_timeout.as_millis() as i64;
            let now = crate::trace::now_ms();
            let start =
                self.store.conversations.begin_user_turn(&conv.id, &ctx.tenant, &ctx.question, now, idle_ms).await?;
            let (user_turns, pending) = match start {
                TurnStart::Closed { reason } => {
                    ctx.trace.attr("closed", reason.clone());
                    return Err(PipelineError::ConversationClosed { id: conv.id.clone(), reason });
                }
                TurnStart::Open { user_turns, pending } => (user_turns, pending),
            };
            conv.user_turns = user_turns;
            ctx.trace.attr("conversation", conv.id.clone());
            ctx.trace.attr("user_turns", user_turns);
            if !pending.is_empty() {
                ctx.trace.attr("human_replies", pending.len());
                let text = pending.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join("\n\n");
                return Ok(Flow::Respond(Draft::plain(text, false, "human_reply", "human")));
            }
            if user_turns > self.cfg.turn_limit {
                let id = conv.id.clone();
                let transcript = self.store.conversations.transcript(&id).await?;
                ctx.trace.attr("turn_limit", self.cfg.turn_limit);
                return Ok(Flow::Respond(Draft::plain(
                    summary(&transcript),
                    true,
                    reason::TURN_LIMIT,
                    "keel-governance",
                )));
            }
            if user_turns >= REPHRASINGS as u32 {
                let transcript = self.store.conversations.transcript(&conv.id).await?;
                if repeated_rephrasing(&transcript, REPHRASINGS, REPHRASING_OVERLAP) {
                    ctx.trace.attr("repeated_rephrasing", REPHRASINGS);
                    return Ok(Flow::Respond(Draft::plain(
                        HANDOFF,
                        true,
                        reason::REPEATED_REPHRASING,
                        "keel-governance",
                    )));
                }
            }
        }
        if asks_for_human(&ctx.question) {
            ctx.trace.attr("handoff", true);
            return Ok(Flow::Respond(Draft::plain(HANDOFF, true, reason::USER_REQUESTED_HUMAN, "keel-governance")));
        }
        Ok(Flow::Continue)
    }
}

/// The short summary given at the turn limit: what was asked and the first sentence of each
/// answer found, then the hand-off.
fn summary(transcript: &[Turn]) -> String {
    let mut found: Vec<String> = Vec::new();
    for t in transcript.iter().filter(|t| t.role == "assistant") {
        let first = t.text.split_inclusive(['.', '!', '?']).next().unwrap_or(&t.text).trim().to_string();
        if !first.is_empty() && first != HANDOFF && !found.contains(&first) {
            found.push(first);
        }
    }
    let asked = transcript.iter().filter(|t| t.role == "user").count();
    let mut s = format!("This conversation has reached its limit of questions ({asked} asked).");
    if found.is_empty() {
        s.push_str(" I could not find answers in our documentation.");
    } else {
        s.push_str(" Here is what I found:");
        for f in found.iter().take(4) {
            s.push_str("\n- ");
            s.push_str(f);
        }
    }
    s.push_str("\n\n");
    s.push_str(HANDOFF);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(role: &str, text: &str) -> Turn {
        Turn { seq: 0, role: role.into(), text: text.into(), trace_id: None, at_ms: 0 }
    }

    #[test]
    fn summary_lists_what_was_found_once() {
        let t = vec![
            turn("user", "a?"),
            turn("assistant", "Refunds take 14 days. More text."),
            turn("user", "b?"),
            turn("assistant", "Refunds take 14 days. Other."),
            turn("user", "c?"),
            turn("assistant", "Passwords reset by e-mail."),
        ];
        let s = summary(&t);
        assert_eq!(s.matches("Refunds take 14 days.").count(), 1, "{s}");
        assert!(s.contains("Passwords reset by e-mail.") && s.contains("3 asked") && s.ends_with(HANDOFF), "{s}");
    }
}
