//! After the answer (the `record` span): a new answer is stored as the snapshot for its key
//! (and, when grounded, in the semantic cache),
//! the assistant turn goes into the conversation, and an escalating answer opens (or joins) an
//! escalation with the transcript and trace links. All are written before the response, so
//! the ids the client sees are durable.

use super::{PipelineError, RequestCtx};
use crate::answer::Answer;
use crate::governance::{reason, Escalation, Snapshot, Turn};
use crate::store::Store;

pub struct Recorder {
    pub store: Store,
    pub escalate_on_no_evidence: bool,
    pub semantic: Option<std::sync::Arc<super::semantic::SemanticCache>>,
}

impl Recorder {
    pub async fn record(&self, ctx: &mut RequestCtx, answer: &mut Answer) -> Result<(), PipelineError> {
        if let (Some(cache), Some(key)) = (&self.semantic, ctx.semantic.take()) {
            if super::semantic::cacheable(answer) {
                cache.insert(key.scope, key.vector, answer.clone());
            }
        }
        if let Some(key) = &ctx.snapshot {
            let mut stored = serde_json::to_value(&*answer).unwrap_or_default();
            if let Some(m) = stored.as_object_mut() {
                for per_request in ["trace_id", "conversation", "escalation", "snapshot"] {
                    m.remove(per_request);
                }
            }
            let s = Snapshot {
                id: format!("snap_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
                key: key.key.clone(),
                question: key.question.clone(),
                versions: key.versions.clone(),
                answer: stored,
                trace_id: answer.trace_id.clone(),
                created_at_ms: crate::trace::now_ms(),
            };
            if self.store.snapshots.put_snapshot(&s).await? {
                answer.snapshot = Some(s.id);
            }
        }
        let conv = ctx.conversation.as_ref().map(|c| c.id.clone());
        // A delivered human reply is already in the transcript as the human's turn.
        let delivered_human_reply = answer.reason.as_deref() == Some("human_reply");
        if let Some(id) = conv.as_ref().filter(|_| !delivered_human_reply) {
            self.store.conversations.add_turn(id, "assistant", &answer.answer, Some(&answer.trace_id)).await?;
        }
        let reason = answer.reason.clone().unwrap_or_default();
        let wanted = answer.escalate && (reason != reason::NO_EVIDENCE || self.escalate_on_no_evidence);
        if !wanted {
            return Ok(());
        }
        let now = crate::trace::now_ms();
        let transcript = match &conv {
            Some(id) => self.store.conversations.transcript(id).await?,
            None => vec![
                Turn { seq: 1, role: "user".into(), text: ctx.question.clone(), trace_id: None, at_ms: now },
                Turn {
                    seq: 2,
                    role: "assistant".into(),
                    text: answer.answer.clone(),
                    trace_id: Some(answer.trace_id.clone()),
                    at_ms: now,
                },
            ],
        };
        let mut trace_ids: Vec<String> = transcript.iter().filter_map(|t| t.trace_id.clone()).collect();
        if !trace_ids.contains(&answer.trace_id) {
            trace_ids.push(answer.trace_id.clone());
        }
        let e = Escalation {
            id: format!("esc_{}", uuid::Uuid::new_v4().simple()),
            conversation_id: conv,
            tenant: ctx.tenant.clone(),
            reason: if reason.is_empty() { "unspecified".into() } else { reason },
            status: "open".into(),
            question: ctx.question.clone(),
            transcript,
            trace_ids,
            assignee: None,
            created_at_ms: now,
            claimed_at_ms: None,
            first_reply_at_ms: None,
            resolved_at_ms: None,
        };
        let opened = self.store.escalations.open_escalation(&e).await?;
        if opened.id == e.id {
            crate::metrics::global().inc(
                "keel_escalations_opened_total",
                "Escalations opened, by reason code",
                &[("reason", &opened.reason)],
                1,
            );
        }
        answer.escalation = Some(opened.id);
        Ok(())
    }
}
