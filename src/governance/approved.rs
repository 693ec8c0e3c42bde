//! The approved-answer matcher: the current active approved answers with the embedding of
//! each normalised question, and the rule that picks one — cosine over a threshold **and** a
//! margin over the next approved answer — so a question near two answers gets neither.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use keel_embed::vecmath::dot;

use super::{normalize_question, ApprovedAnswer};
use crate::embedding::Embedder;

/// An approved answer ready to match.
struct Entry {
    answer: ApprovedAnswer,
    vector: Vec<f32>,
}

/// The outcome of matching one question, with the evidence for the trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub best: Option<(ApprovedAnswer, f32)>,
    /// Cosine of the runner-up (another approved answer), 0 when there is none.
    pub runner_up: f32,
    /// Whether `best` clears both the threshold and the margin.
    pub accepted: bool,
}

/// Shared by the pipeline stage and the admin API (which refreshes it after every change).
#[derive(Default)]
pub struct ApprovedSet {
    entries: RwLock<Arc<Vec<Entry>>>,
    /// Answers marked wrong by corrections (id, word set): a generated answer that resembles
    /// one of them is stopped.
    wrong: RwLock<Arc<Vec<WrongAnswer>>>,
}

/// A correction's id and the word set of the answer it marked wrong.
type WrongAnswer = (String, HashSet<String>);

/// Lower-case words of two characters or more (numbers included): what two answers are
/// compared on.
fn word_set(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 1).map(str::to_lowercase).collect()
}

/// Word-set overlap (Jaccard) at which a generated answer counts as repeating a corrected one.
pub const WRONG_ANSWER_SIMILARITY: f32 = 0.6;

/// A hash of the active `(id, version)` pairs: part of every answer snapshot's key, so an
/// approved-answer change yields new snapshots.
fn fingerprint_of(entries: &[Entry]) -> String {
    let ids: Vec<String> = entries.iter().map(|e| format!("{}@{}", e.answer.id, e.answer.version)).collect();
    crate::digest::sha256_hex(ids.join(",").as_bytes())[..16].to_string()
}

impl ApprovedSet {
    /// Remembers the wrong answers of corrections: `(correction id, wrong text)`.
    pub fn set_wrong_answers(&self, wrong: Vec<(String, String)>) {
        let next = Arc::new(wrong.into_iter().map(|(id, text)| (id, word_set(&text))).collect());
        match self.wrong.write() {
            Ok(mut g) => *g = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    /// The correction whose wrong answer `text` repeats, if any.
    pub fn repeats_wrong_answer(&self, text: &str) -> Option<String> {
        let wrong = match self.wrong.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let words = word_set(text);
        wrong.iter().find_map(|(id, w)| {
            let union = words.union(w).count();
            let shared = words.intersection(w).count();
            (union > 0 && shared as f32 / union as f32 >= WRONG_ANSWER_SIMILARITY).then(|| id.clone())
        })
    }

    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.snapshot())
    }

    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn snapshot(&self) -> Arc<Vec<Entry>> {
        match self.entries.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the set with the active answers among `current`, embedding only the
    /// `(id, version)` pairs it has not seen before. CPU work: call from a blocking task.
    pub fn replace(&self, current: Vec<ApprovedAnswer>, embedder: &Embedder) -> Result<(), keel_embed::EmbedError> {
        let old = self.snapshot();
        let mut known: HashMap<(&str, i64, &str), &Vec<f32>> = HashMap::new();
        for e in old.iter() {
            known.insert((e.answer.id.as_str(), e.answer.version, e.answer.question.as_str()), &e.vector);
        }
        let active: Vec<ApprovedAnswer> = current.into_iter().filter(ApprovedAnswer::is_matchable).collect();
        let missing: Vec<String> = active
            .iter()
            .filter(|a| !known.contains_key(&(a.id.as_str(), a.version, a.question.as_str())))
            .map(|a| normalize_question(&a.question))
            .collect();
        let texts: Vec<&str> = missing.iter().map(String::as_str).collect();
        let fresh = if texts.is_empty() { Vec::new() } else { embedder.embed(&texts)? };
        let dim = embedder.dim();
        let mut fresh_rows = fresh.chunks_exact(dim.max(1));
        let mut entries = Vec::with_capacity(active.len());
        for a in active {
            let vector = match known.get(&(a.id.as_str(), a.version, a.question.as_str())) {
                Some(v) => (*v).clone(),
                None => fresh_rows.next().map(<[f32]>::to_vec).unwrap_or_default(),
            };
            entries.push(Entry { answer: a, vector });
        }
        drop(known);
        let next = Arc::new(entries);
        match self.entries.write() {
            Ok(mut g) => *g = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(())
    }

    /// Matches a question vector (of the normalised question) against the set.
    pub fn best(&self, question: &[f32], threshold: f32, margin: f32) -> Match {
        let entries = self.snapshot();
        let mut scored: Vec<(usize, f32)> =
            entries.iter().enumerate().map(|(i, e)| (i, dot(&e.vector, question))).collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        let runner_up = scored.get(1).map_or(0.0, |s| s.1);
        match scored.first() {
            None => Match { best: None, runner_up, accepted: false },
            Some(&(i, cos)) => Match {
                best: entries.get(i).map(|e| (e.answer.clone(), cos)),
                runner_up,
                accepted: cos >= threshold && cos - runner_up.max(0.0) >= margin,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: &str) -> ApprovedAnswer {
        ApprovedAnswer {
            id: id.into(),
            version: 1,
            question: id.into(),
            answer: format!("answer {id}"),
            intent: None,
            cites: vec![],
            status: "active".into(),
            author: "t".into(),
            created_at_ms: 0,
        }
    }

    fn set_with(vectors: Vec<(&str, Vec<f32>)>) -> ApprovedSet {
        let entries = vectors.into_iter().map(|(id, vector)| Entry { answer: answer(id), vector }).collect();
        ApprovedSet { entries: RwLock::new(Arc::new(entries)), wrong: RwLock::default() }
    }

    #[test]
    fn threshold_and_margin_both_decide() {
        let s = set_with(vec![("a", vec![1.0, 0.0]), ("b", vec![0.0, 1.0])]);
        let m = s.best(&[0.95, 0.31], 0.85, 0.05);
        assert!(m.accepted);
        assert_eq!(m.best.as_ref().map(|b| b.0.id.as_str()), Some("a"));
        // Under the threshold.
        assert!(!s.best(&[0.8, 0.6], 0.85, 0.05).accepted);
        // Over the threshold but too close to the runner-up.
        let close = set_with(vec![("a", vec![1.0, 0.0]), ("b", vec![0.96, 0.28])]);
        let m = close.best(&[0.99, 0.14], 0.85, 0.05);
        assert!(m.best.is_some() && !m.accepted, "{m:?}");
    }

    #[test]
    fn a_reworded_wrong_answer_is_recognised_and_a_different_one_is_not() {
        let s = ApprovedSet::default();
        s.set_wrong_answers(vec![(
            "cor_1".into(),
            "Refunds are issued within 30 days of receiving the item [1].".into(),
        )]);
        assert_eq!(
            s.repeats_wrong_answer("Refunds are issued within 30 days after receiving your item."),
            Some("cor_1".into())
        );
        assert_eq!(s.repeats_wrong_answer("Standard shipping to Canada takes 7 business days."), None);
    }

    #[test]
    fn empty_set_matches_nothing() {
        let m = ApprovedSet::default().best(&[1.0], 0.5, 0.0);
        assert!(m.best.is_none() && !m.accepted);
    }
}
