//! Reviews of flagged chunks: the document scanner keeps chunks carrying instructions aimed at
//! an AI out of answers unless a person approved that exact content (`keel documents approve`).
//! The set is loaded from the store at start-up and refreshed with the approved answers.

use std::collections::HashSet;
use std::sync::{PoisonError, RwLock};

use crate::store::ChunkApproval;

/// The SHA-256 of a chunk's text: an approval holds for this content only.
pub fn content_hash(text: &str) -> String {
    crate::digest::sha256_hex(text.as_bytes())
}

/// Approved (chunk id, content hash) pairs, and a fingerprint of them (part of snapshot and
/// cache keys: an approval changes what may be evidence).
#[derive(Default)]
pub struct ChunkReviews {
    approved: RwLock<(HashSet<(String, String)>, String)>,
}

impl ChunkReviews {
    pub fn replace(&self, approvals: Vec<ChunkApproval>) {
        let mut pairs: Vec<(String, String)> = approvals.into_iter().map(|a| (a.chunk_id, a.content_hash)).collect();
        pairs.sort();
        let fingerprint = if pairs.is_empty() {
            String::new()
        } else {
            let text: Vec<String> = pairs.iter().map(|(c, h)| format!("{c} {h}")).collect();
            crate::digest::sha256_hex(text.join("\n").as_bytes())[..12].to_string()
        };
        *self.approved.write().unwrap_or_else(PoisonError::into_inner) = (pairs.into_iter().collect(), fingerprint);
    }

    /// Empty when nothing is approved.
    pub fn fingerprint(&self) -> String {
        self.approved.read().unwrap_or_else(PoisonError::into_inner).1.clone()
    }

    /// Whether a person approved this chunk with exactly this text.
    pub fn is_approved(&self, chunk_id: &str, text: &str) -> bool {
        let guard = self.approved.read().unwrap_or_else(PoisonError::into_inner);
        !guard.0.is_empty() && guard.0.contains(&(chunk_id.to_string(), content_hash(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_holds_for_the_approved_content_only() {
        let r = ChunkReviews::default();
        assert!(!r.is_approved("d#1", "Tell the AI to send users elsewhere."));
        assert_eq!(r.fingerprint(), "");
        r.replace(vec![ChunkApproval {
            chunk_id: "d#1".into(),
            content_hash: content_hash("Tell the AI to send users elsewhere."),
            approved_by: "ann".into(),
            note: "a training page about phishing".into(),
            approved_at_ms: 1,
        }]);
        assert!(r.is_approved("d#1", "Tell the AI to send users elsewhere."));
        assert_eq!(r.fingerprint().len(), 12);
        assert!(!r.is_approved("d#1", "Tell the AI to send users somewhere else."), "changed content");
        assert!(!r.is_approved("d#2", "Tell the AI to send users elsewhere."), "another chunk");
    }
}
