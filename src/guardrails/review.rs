//! Reviews of flagged chunks: the document scanner keeps chunks carrying instructions aimed at
//! an AI out of answers unless a person approved that exact content (`keel documents approve`).
//! The set is loaded from the store at start-up and refreshed with the approved answers.

use std::collections::HashSet;
use std::sync::{PoisonError, RwLock};

use keel_guard::InputGuard;
use serde::Serialize;

use crate::store::{ChunkApproval, Store, StoreError};

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

/// A flagged chunk and its review state.
#[derive(Debug, Serialize)]
pub struct Flagged {
    pub chunk: String,
    pub doc: String,
    pub score: f32,
    pub reasons: Vec<String>,
    pub approved: bool,
    pub excerpt: String,
}

/// Scans the stored chunks (of `docs` only, when given) with the document scanner.
pub async fn scan_flagged(
    guard: &InputGuard,
    store: &Store,
    docs: Option<&HashSet<String>>,
) -> Result<Vec<Flagged>, StoreError> {
    let reviews = ChunkReviews::default();
    reviews.replace(store.docs.chunk_approvals().await?);
    let mut out = Vec::new();
    for c in store.docs.all_chunks().await? {
        if docs.is_some_and(|d| !d.contains(&c.doc_id)) {
            continue;
        }
        let v = guard.scan_document(&c.text);
        if v.flagged {
            out.push(Flagged {
                approved: reviews.is_approved(&c.id, &c.text),
                excerpt: v.segment.unwrap_or_default().chars().take(160).collect(),
                chunk: c.id,
                doc: c.doc_id,
                score: v.score,
                reasons: v.reasons.iter().map(|r| r.as_str().to_string()).collect(),
            });
        }
    }
    Ok(out)
}

/// Approves the current content of `chunk_id`; `NotFound` when no such chunk is stored.
pub async fn approve(store: &Store, chunk_id: &str, by: &str, note: &str) -> Result<ChunkApproval, StoreError> {
    let chunks = store.docs.all_chunks().await?;
    let Some(c) = chunks.iter().find(|c| c.id == chunk_id) else {
        return Err(StoreError::NotFound(format!("no chunk `{chunk_id}`")));
    };
    let a = ChunkApproval {
        chunk_id: c.id.clone(),
        content_hash: content_hash(&c.text),
        approved_by: by.to_string(),
        note: note.to_string(),
        approved_at_ms: crate::trace::now_ms(),
    };
    store.docs.approve_chunk(&a).await?;
    Ok(a)
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
