//! Governance domain: approved answers, conversations and escalations — the records, the
//! reason codes, and the pure rules (turn limit, idle timeout, asking for a human) that the
//! pipeline stages and the store apply.

pub mod admin;
pub mod approved;
pub mod history;

use serde::{Deserialize, Serialize};

/// Escalation reason codes (documented in ARCHITECTURE.md; stable: dashboards key on them).
pub mod reason {
    pub const NO_EVIDENCE: &str = crate::answer::REASON_NO_EVIDENCE;
    pub const TURN_LIMIT: &str = "turn_limit";
    pub const USER_REQUESTED_HUMAN: &str = "user_requested_human";
    pub const GUARD_BLOCK: &str = "guard_block";
    pub const LOW_GROUNDING: &str = "low_grounding";
    pub const REPEATED_REPHRASING: &str = "repeated_rephrasing";
    /// A generated answer repeated one a correction marked wrong.
    pub const REPEATS_CORRECTION: &str = "repeats_correction";
}

/// One version of an approved answer. Edits append versions; the highest is current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedAnswer {
    pub id: String,
    pub version: i64,
    pub question: String,
    pub answer: String,
    pub intent: Option<String>,
    /// Document ids the answer cites.
    pub cites: Vec<String>,
    /// `active` or `retired`.
    pub status: String,
    pub author: String,
    pub created_at_ms: i64,
}

/// The status of a correction used as evidence (matched, never served verbatim).
pub const EVIDENCE: &str = "evidence";

impl ApprovedAnswer {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    /// Whether the matcher considers it: served verbatim (`active`) or as evidence.
    pub fn is_matchable(&self) -> bool {
        self.is_active() || self.status == EVIDENCE
    }
}

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conversation {
    pub id: String,
    pub tenant: String,
    pub user_turns: u32,
    /// `open` or `closed`.
    pub status: String,
    pub closed_reason: Option<String>,
    pub created_at_ms: i64,
    pub last_at_ms: i64,
}

/// One message of a conversation: the user's, the assistant's, or a human agent's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub seq: i64,
    /// `user`, `assistant` or `human`.
    pub role: String,
    pub text: String,
    pub trace_id: Option<String>,
    pub at_ms: i64,
}

/// What beginning a user turn found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnStart {
    /// The turn is counted; `pending` are human replies not yet delivered (now marked delivered).
    Open { user_turns: u32, pending: Vec<Turn> },
    /// The conversation is closed (`reason`: `idle_timeout`, …); nothing was recorded.
    Closed { reason: String },
}

/// The rule applied (inside the store's transaction) when a user turn begins: a conversation
/// idle for longer than `idle_ms` is closed.
pub fn idle_expired(conv: &Conversation, now_ms: i64, idle_ms: i64) -> bool {
    now_ms.saturating_sub(conv.last_at_ms) > idle_ms
}

/// An escalation: a conversation (or a single question) handed to a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Escalation {
    pub id: String,
    pub conversation_id: Option<String>,
    pub tenant: String,
    pub reason: String,
    /// `open` → `claimed` → `replied` → `resolved`.
    pub status: String,
    pub question: String,
    pub transcript: Vec<Turn>,
    pub trace_ids: Vec<String>,
    pub assignee: Option<String>,
    pub created_at_ms: i64,
    pub claimed_at_ms: Option<i64>,
    pub first_reply_at_ms: Option<i64>,
    pub resolved_at_ms: Option<i64>,
}

impl Escalation {
    /// Milliseconds from opening to the first human reply, once there is one.
    pub fn time_to_first_reply_ms(&self) -> Option<i64> {
        self.first_reply_at_ms.map(|t| t - self.created_at_ms)
    }

    pub fn time_to_resolution_ms(&self) -> Option<i64> {
        self.resolved_at_ms.map(|t| t - self.created_at_ms)
    }
}

/// A stored answer (response versioning): what was answered to a normalised question under
/// one set of versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    /// Hash of the normalised question and every version below.
    pub key: String,
    /// The normalised question.
    pub question: String,
    /// corpus, prompt, model, approved-set and config versions.
    pub versions: serde_json::Value,
    /// The answer as served (JSON of `answer::Answer` minus trace id and per-request fields).
    pub answer: serde_json::Value,
    pub trace_id: String,
    pub created_at_ms: i64,
}

/// An answer marked wrong, with its correction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    pub id: String,
    pub trace_id: String,
    pub question: String,
    pub wrong_answer: String,
    pub correction: String,
    pub reason: String,
    /// The approved-answer variant that now answers matching questions.
    pub approved_id: Option<String>,
    pub author: String,
    pub created_at_ms: i64,
}

/// The question as compared for approved answers and snapshots: lower case, punctuation
/// dropped, whitespace collapsed.
pub fn normalize_question(q: &str) -> String {
    q.chars()
        .map(|c| if c.is_alphanumeric() || c == '$' || c == '%' { c.to_ascii_lowercase() } else { ' ' })
        .collect::<String>()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the last `n` user turns of a transcript ask the same thing again and again (each
/// consecutive pair shares at least `min_overlap` of its content words): the assistant is not
/// helping, and a person should take over.
pub fn repeated_rephrasing(transcript: &[Turn], n: usize, min_overlap: f32) -> bool {
    let words = |t: &str| -> std::collections::HashSet<String> {
        normalize_question(t).split(' ').filter(|w| w.len() > 2).map(str::to_string).collect()
    };
    let asked: Vec<_> = transcript.iter().filter(|t| t.role == "user").map(|t| words(&t.text)).collect();
    if n < 2 || asked.len() < n {
        return false;
    }
    asked[asked.len() - n..].windows(2).all(|w| {
        let union = w[0].union(&w[1]).count();
        union > 0 && w[0].intersection(&w[1]).count() as f32 / union as f32 >= min_overlap
    })
}

/// Whether the user is asking for a person rather than an answer ("talk to a person",
/// "agent please"). Short requests only: a long question that mentions an agent is a question.
pub fn asks_for_human(q: &str) -> bool {
    let n = normalize_question(q);
    let words: Vec<&str> = n.split(' ').collect();
    if words.len() > 12 {
        return false;
    }
    const PHRASES: [&str; 14] = [
        "talk to a person",
        "talk to a human",
        "speak to a person",
        "speak to a human",
        "speak with a person",
        "talk with a person",
        "real person",
        "human agent",
        "live agent",
        "customer service representative",
        "talk to someone",
        "speak to someone",
        "talk to an agent",
        "speak to an agent",
    ];
    if PHRASES.iter().any(|p| n.contains(p)) {
        return true;
    }
    // "agent please", "human please", "representative", "operator" on their own.
    let asks = ["agent", "human", "person", "representative", "operator"];
    let filler = [
        "please", "pls", "a", "an", "i", "want", "need", "now", "get", "me", "give", "connect", "to", "can", "talk",
        "speak", "with", "someone", "the", "real",
    ];
    words.iter().any(|w| asks.contains(w)) && words.iter().all(|w| asks.contains(w) || filler.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_drops_case_punctuation_and_spacing() {
        assert_eq!(normalize_question("  How do I RESET my password?? "), "how do i reset my password");
        assert_eq!(normalize_question("Fee: $25, 3%!"), "fee $25 3%");
    }

    #[test]
    fn requests_for_a_person_are_recognised() {
        for q in ["talk to a person", "Agent please", "I want to speak to a human!", "representative", "human"] {
            assert!(asks_for_human(q), "{q}");
        }
        for q in [
            "How do I add an agent to my account?",
            "what does a human review of my application involve and how long does it take to finish",
            "reset password",
            "Is the travel agent fee refundable?",
        ] {
            assert!(!asks_for_human(q), "{q}");
        }
    }

    #[test]
    fn three_rephrasings_in_a_row_are_recognised() {
        let turn =
            |role: &str, text: &str| Turn { seq: 0, role: role.into(), text: text.into(), trace_id: None, at_ms: 0 };
        let same = vec![
            turn("user", "How do I reset my password?"),
            turn("assistant", "…"),
            turn("user", "how can I reset my password please"),
            turn("assistant", "…"),
            turn("user", "reset my password, how?"),
        ];
        assert!(repeated_rephrasing(&same, 3, 0.4));
        let varied = vec![
            turn("user", "How do I reset my password?"),
            turn("user", "Do you ship to Canada?"),
            turn("user", "What is the return window?"),
        ];
        assert!(!repeated_rephrasing(&varied, 3, 0.4));
        assert!(!repeated_rephrasing(&same[..3], 3, 0.4), "two questions are not a pattern yet");
    }

    #[test]
    fn idle_rule() {
        let c = Conversation {
            id: "c".into(),
            tenant: "t".into(),
            user_turns: 1,
            status: "open".into(),
            closed_reason: None,
            created_at_ms: 0,
            last_at_ms: 1000,
        };
        assert!(!idle_expired(&c, 1000 + 300_000, 300_000));
        assert!(idle_expired(&c, 1001 + 300_000, 300_000));
    }
}
