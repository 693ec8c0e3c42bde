//! What an answer is (text, citations, verdicts, versions) and the built-in answerers.
//!
//! These are domain types; `http/` maps them to wire formats.

pub mod extractive;

use serde::Serialize;

/// One numbered reference in an answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
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
}

/// Reason code when nothing in the knowledge base clears the relevance floor.
pub const REASON_NO_EVIDENCE: &str = "no_evidence";
