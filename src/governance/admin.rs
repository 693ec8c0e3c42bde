//! The operations an administrator performs — on approved answers and on escalations — shared
//! by the CLI and the admin API so both validate and version the same way.

use super::{ApprovedAnswer, Correction, EVIDENCE};
use crate::config::CorrectionMode;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum GovernanceError {
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Changes to an approved answer; `None` keeps the current value.
#[derive(Debug, Default, Clone)]
pub struct ApprovedEdit {
    pub question: Option<String>,
    pub answer: Option<String>,
    pub intent: Option<String>,
    pub cites: Option<Vec<String>>,
}

fn required(field: &'static str, v: &str) -> Result<String, GovernanceError> {
    let t = v.trim();
    if t.is_empty() {
        return Err(GovernanceError::Invalid { field, message: format!("`{field}` must not be empty") });
    }
    if t.chars().count() > 8000 {
        return Err(GovernanceError::Invalid { field, message: format!("`{field}` is longer than 8000 characters") });
    }
    Ok(t.to_string())
}

/// Every cited document must exist in the knowledge base.
async fn known_cites(store: &Store, cites: Vec<String>) -> Result<Vec<String>, GovernanceError> {
    if cites.is_empty() {
        return Ok(cites);
    }
    let docs = store.docs.documents().await?;
    if let Some(unknown) = cites.iter().find(|c| !docs.iter().any(|d| &d.id == *c)) {
        return Err(GovernanceError::Invalid {
            field: "cites",
            message: format!("no document `{unknown}` in the knowledge base (`keel search` shows document ids)"),
        });
    }
    Ok(cites)
}

pub async fn add_approved(
    store: &Store,
    question: &str,
    answer: &str,
    intent: Option<String>,
    cites: Vec<String>,
    author: &str,
) -> Result<ApprovedAnswer, GovernanceError> {
    let a = ApprovedAnswer {
        id: format!("apr_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        version: 1,
        question: required("question", question)?,
        answer: required("answer", answer)?,
        intent: intent.filter(|i| !i.trim().is_empty()),
        cites: known_cites(store, cites).await?,
        status: "active".into(),
        author: author.to_string(),
        created_at_ms: crate::trace::now_ms(),
    };
    store.approved.add_approved(&a).await?;
    Ok(a)
}

/// The current version of one approved answer.
pub async fn current(store: &Store, id: &str) -> Result<ApprovedAnswer, GovernanceError> {
    store
        .approved
        .approved_history(id)
        .await?
        .pop()
        .ok_or_else(|| GovernanceError::Store(StoreError::NotFound(format!("no approved answer `{id}`"))))
}

/// Writes a new version from `expected_version` (the version the editor read); fails with a
/// conflict if someone else wrote one since. `status` changes only through `retire`.
pub async fn edit_approved(
    store: &Store,
    id: &str,
    expected_version: i64,
    edit: ApprovedEdit,
    status: Option<&str>,
    author: &str,
) -> Result<ApprovedAnswer, GovernanceError> {
    let cur = current(store, id).await?;
    if cur.version != expected_version {
        return Err(GovernanceError::Store(StoreError::Conflict(format!(
            "approved answer `{id}` is at version {}, not {expected_version}: re-read it and edit again",
            cur.version
        ))));
    }
    let next = ApprovedAnswer {
        id: cur.id.clone(),
        version: cur.version + 1,
        question: match edit.question {
            Some(q) => required("question", &q)?,
            None => cur.question.clone(),
        },
        answer: match edit.answer {
            Some(a) => required("answer", &a)?,
            None => cur.answer.clone(),
        },
        intent: edit.intent.or(cur.intent.clone()).filter(|i| !i.trim().is_empty()),
        cites: match edit.cites {
            Some(c) => known_cites(store, c).await?,
            None => cur.cites.clone(),
        },
        status: status.unwrap_or(&cur.status).to_string(),
        author: author.to_string(),
        created_at_ms: crate::trace::now_ms(),
    };
    store.approved.edit_approved(&next, expected_version).await?;
    Ok(next)
}

/// Marks the answer of `trace_id` wrong: the correction becomes an approved-answer variant for
/// the traced question (so matching questions get it before retrieval), and the wrong text is
/// kept with it.
pub async fn add_correction(
    store: &Store,
    trace_id: &str,
    text: &str,
    reason: &str,
    author: &str,
    mode: CorrectionMode,
) -> Result<Correction, GovernanceError> {
    let trace = store
        .traces
        .get_trace(trace_id)
        .await?
        .ok_or_else(|| GovernanceError::Store(StoreError::NotFound(format!("no trace `{trace_id}`"))))?;
    let question = trace.input["question"].as_str().map(str::to_string).ok_or_else(|| GovernanceError::Invalid {
        field: "trace_id",
        message: format!("trace `{trace_id}` has no question (only grounded answers can be corrected)"),
    })?;
    let wrong = trace.output["answer"].as_str().unwrap_or_default().to_string();
    let reason = required("reason", reason)?;
    let mut approved = add_approved(store, &question, text, Some("correction".into()), Vec::new(), author).await?;
    if mode == CorrectionMode::Evidence {
        // Matched like an approved answer, but used as evidence rather than served verbatim.
        approved = edit_approved(store, &approved.id, 1, ApprovedEdit::default(), Some(EVIDENCE), author).await?;
    }
    let c = Correction {
        id: format!("cor_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        trace_id: trace_id.to_string(),
        question,
        wrong_answer: wrong,
        correction: approved.answer.clone(),
        reason,
        approved_id: Some(approved.id),
        author: author.to_string(),
        created_at_ms: crate::trace::now_ms(),
    };
    store.snapshots.add_correction(&c).await?;
    Ok(c)
}

/// Every stored answer to a question, oldest first, each with its word diff from the previous.
pub async fn answer_history(store: &Store, question: &str) -> Result<Vec<serde_json::Value>, GovernanceError> {
    let snaps = store.snapshots.snapshot_history(&super::normalize_question(question)).await?;
    let mut out = Vec::new();
    let mut previous: Option<String> = None;
    for s in snaps {
        let text = s.answer["answer"].as_str().unwrap_or_default().to_string();
        let diff = previous.as_deref().filter(|p| *p != text).map(|p| super::history::word_diff(p, &text));
        out.push(serde_json::json!({
            "snapshot": s.id, "created_at_ms": s.created_at_ms, "versions": s.versions,
            "answer": text, "trace_id": s.trace_id, "changed": previous.is_some() && diff.is_some(), "diff": diff,
        }));
        previous = Some(text);
    }
    Ok(out)
}
