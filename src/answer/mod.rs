//! What an answer is (text, citations, verdicts, versions) and the built-in answerers.
//!
//! These are domain types; `http/` maps them to wire formats.

pub mod extractive;
pub mod generative;
pub mod prompt;

use serde::{Deserialize, Serialize};

/// One numbered reference in an answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Citation {
    pub n: usize,
    pub doc: String,
    pub chunk: String,
    pub title: String,
    pub heading: String,
    /// Character offsets of the cited chunk in its document.
    pub span: [u64; 2],
    /// The cited sentences.
    pub snippet: String,
    pub score: f32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Versions {
    pub corpus: String,
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

/// Which approved answer (and version) answered.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApprovedRef {
    pub id: String,
    pub version: i64,
    pub similarity: f32,
}

/// The input guard's decision when it refused or escalated a question.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GuardRef {
    /// `block` or `escalate`.
    pub action: String,
    /// Stable reason codes (`injection.override`, `pii.card`, …).
    pub reasons: Vec<String>,
}

/// The conversation a question belongs to, after this turn.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConversationRef {
    pub id: String,
    pub user_turns: u32,
    pub turn_limit: u32,
}

/// The answer a pipeline returns.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Answer {
    pub answer: String,
    pub citations: Vec<Citation>,
    pub grounded: bool,
    pub escalate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub trace_id: String,
    pub versions: Versions,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved: Option<ApprovedRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationRef>,
    /// The escalation this answer opened (or joined), when it escalated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardRef>,
    /// The snapshot that answered (deterministic mode), or the one this answer was stored as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Set when the semantic cache answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheRef>,
    /// Tokens and cost of the model calls made for this answer (none: no model was called).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::gateway::usage::Usage>,
}

/// A cached answer: how similar the question was, and the trace that first answered it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CacheRef {
    pub kind: &'static str,
    pub similarity: f32,
    pub trace_id: String,
}

/// The answer body before the runner stamps trace id and versions on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub text: String,
    pub citations: Vec<Citation>,
    pub grounded: bool,
    pub escalate: bool,
    pub reason: Option<String>,
    /// Which answerer produced it (its version string).
    pub model: String,
    pub approved: Option<ApprovedRef>,
    pub guard: Option<GuardRef>,
    /// Set when a stored snapshot answered.
    pub snapshot: Option<String>,
    /// The prompt version a generated answer was written with.
    pub prompt: Option<String>,
    pub cache: Option<CacheRef>,
}

impl Draft {
    /// An answer that is not from the knowledge base (a hand-off, a human's reply, a summary).
    pub fn plain(text: impl Into<String>, escalate: bool, reason: &str, model: &str) -> Self {
        Self {
            text: text.into(),
            citations: Vec::new(),
            grounded: false,
            escalate,
            reason: Some(reason.to_string()),
            model: model.to_string(),
            approved: None,
            guard: None,
            snapshot: None,
            prompt: None,
            cache: None,
        }
    }
}

/// Reason code when nothing in the knowledge base clears the relevance floor.
pub const REASON_NO_EVIDENCE: &str = "no_evidence";
