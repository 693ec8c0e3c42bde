//! The built-in deterministic answerer: it composes an answer from the retrieved sentences
//! that best match the question, each carrying its citation. It never writes a word of its
//! own beyond the fixed "not found" message, so everything it says is in a cited chunk.

use std::collections::{HashMap, HashSet};

use unicode_segmentation::UnicodeSegmentation;

use super::{Citation, Draft, REASON_NO_EVIDENCE};
use crate::index::{ChunkMeta, Hit};

pub const MODEL_VERSION: &str = "keel-extractive@1";

pub const NOT_FOUND: &str =
    "I can't find this in the documentation, so I've passed your question on to a person who can help.";

/// A chunk that cleared the relevance floor, in rank order.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub chunk: ChunkMeta,
    pub hit: Hit,
}

const STOP: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for", "with", "from", "about",
    "as", "is", "are", "was", "were", "be", "been", "being", "do", "does", "did", "have", "has", "had", "i", "you",
    "we", "my", "your", "our", "me", "it", "its", "this", "that", "these", "those", "what", "which", "who", "whom",
    "how", "when", "where", "why", "can", "could", "should", "would", "will", "shall", "may", "might", "must", "there",
    "their", "they", "them", "so", "than", "then", "not", "no", "any", "all", "some", "into", "up", "out", "get",
    "much", "many", "s",
];

/// Lower-cased word stems of a text, without stop words.
pub fn terms(text: &str) -> Vec<String> {
    text.unicode_words().map(str::to_lowercase).filter(|w| !STOP.contains(&w.as_str())).map(|w| stem(&w)).collect()
}

/// A light suffix stripper: enough to match "returns"/"returned"/"returning" to "return".
fn stem(w: &str) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if w.len() > suffix.len() + 3 {
            if let Some(s) = w.strip_suffix(suffix) {
                return s.to_string();
            }
        }
    }
    w.to_string()
}

/// Whether the question asks how long, how much, how many or when.
fn asks_for_quantity(question: &str) -> bool {
    let q = question.to_lowercase();
    [
        "how long",
        "how much",
        "how many",
        "how soon",
        "how quickly",
        "when ",
        "what time",
        "cost",
        "price",
        "fee",
        "charge",
        "minimum",
        "maximum",
        "limit",
        "days",
        "hours",
    ]
    .iter()
    .any(|k| q.contains(k))
}

struct Candidate {
    rank: usize,
    position: usize,
    text: String,
    terms: HashSet<String>,
}

fn clean_sentence(s: &str) -> Option<String> {
    let mut t = s.trim();
    if t.starts_with('#') || t.starts_with('|') {
        return None;
    }
    t = t.trim_start_matches(['-', '*', '•', ' ']);
    // Numbered list markers ("3. ") are layout, not content.
    if let Some((num, rest)) = t.split_once(". ") {
        if !num.is_empty() && num.len() <= 3 && num.chars().all(|c| c.is_ascii_digit()) {
            t = rest;
        }
    }
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    (t.split_whitespace().count() >= 3).then_some(t)
}

fn sentences(text: &str) -> Vec<String> {
    text.lines().flat_map(|line| line.unicode_sentences().filter_map(clean_sentence).collect::<Vec<_>>()).collect()
}

/// Composes an answer from the evidence (already filtered by the relevance floor).
pub fn answer(question: &str, evidence: &[Evidence], max_sentences: usize) -> Draft {
    if evidence.is_empty() {
        return Draft::plain(NOT_FOUND, true, REASON_NO_EVIDENCE, MODEL_VERSION);
    }
    let q: HashSet<String> = terms(question).into_iter().collect();
    let wants_quantity = asks_for_quantity(question);
    let mut cands = Vec::new();
    let mut seen = HashSet::new();
    for (rank, e) in evidence.iter().enumerate() {
        for (position, s) in sentences(&e.chunk.text).into_iter().enumerate() {
            // Overlapping chunks repeat sentences; keep the first (best-ranked) copy.
            if seen.insert(s.to_lowercase()) {
                let terms = terms(&s).into_iter().collect();
                cands.push(Candidate { rank, position, text: s, terms });
            }
        }
    }
    let n = cands.len() as f32;
    let mut df: HashMap<&str, f32> = HashMap::new();
    for c in &cands {
        for t in &c.terms {
            *df.entry(t.as_str()).or_default() += 1.0;
        }
    }
    let mut scored: Vec<(f32, usize)> = cands
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let overlap: f32 = q
                .iter()
                .filter(|t| c.terms.contains(*t))
                .map(|t| (1.0 + n / (1.0 + df.get(t.as_str()).copied().unwrap_or(0.0))).ln())
                .sum();
            // A question about an amount, a duration or a time is answered by a sentence with a number.
            let quantity = if wants_quantity && c.text.chars().any(|ch| ch.is_ascii_digit()) { 1.5 } else { 1.0 };
            (quantity * overlap / (1.0 + 0.15 * c.rank as f32), i)
        })
        .filter(|(s, _)| *s > 0.0)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut chosen: Vec<usize> = scored.iter().take(max_sentences).map(|(_, i)| *i).collect();
    if chosen.is_empty() {
        // The best chunk cleared the floor on meaning but shares no words with the question:
        // its opening sentence is the most faithful summary we can give.
        chosen = cands.iter().enumerate().filter(|(_, c)| c.rank == 0).map(|(i, _)| i).take(1).collect();
    }
    chosen.sort_by_key(|&i| (cands[i].rank, cands[i].position));

    let mut citations: Vec<Citation> = Vec::new();
    let mut text = String::new();
    for i in chosen {
        let c = &cands[i];
        let e = &evidence[c.rank];
        let n = match citations.iter().position(|x| x.chunk == e.chunk.id) {
            Some(p) => {
                let cit = &mut citations[p];
                cit.snippet.push(' ');
                cit.snippet.push_str(&c.text);
                cit.n
            }
            None => {
                let n = citations.len() + 1;
                citations.push(Citation {
                    n,
                    doc: e.chunk.doc_id.clone(),
                    chunk: e.chunk.id.clone(),
                    title: e.chunk.title.clone(),
                    heading: e.chunk.heading.clone(),
                    span: [e.chunk.start_char, e.chunk.end_char],
                    snippet: c.text.clone(),
                    score: e.hit.score,
                });
                n
            }
        };
        if !text.is_empty() {
            text.push(' ');
        }
        let body = c.text.trim_end();
        // "[n]" goes before the sentence's final punctuation: "… within 30 days [1]."
        match body.char_indices().last() {
            Some((at, ch)) if matches!(ch, '.' | '!' | '?') => {
                text.push_str(&body[..at]);
                text.push_str(&format!(" [{n}]{ch}"));
            }
            _ => text.push_str(&format!("{body} [{n}]")),
        }
    }
    Draft {
        text,
        citations,
        grounded: true,
        escalate: false,
        reason: None,
        model: MODEL_VERSION.to_string(),
        approved: None,
        guard: None,
        snapshot: None,
        cache: None,
        prompt: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, text: &str, score: f32) -> Evidence {
        Evidence {
            chunk: ChunkMeta {
                id: id.into(),
                doc_id: format!("{id}.md"),
                title: "T".into(),
                heading: "H".into(),
                text: text.into(),
                start_char: 0,
                end_char: text.chars().count() as u64,
            },
            hit: Hit { row: 0, score, cosine: score, bm25: 0.0 },
        }
    }

    #[test]
    fn picks_matching_sentences_and_cites_them() {
        let e = vec![
            ev("a", "## Window\nYou can return items within 30 days of delivery. Our stores open at 9.", 0.9),
            ev("b", "Refunds are issued to the original payment method within 5 business days.", 0.8),
        ];
        let d = answer("How many days do I have to return an item?", &e, 2);
        assert!(d.text.starts_with("You can return items within 30 days of delivery [1]."), "{}", d.text);
        assert!(!d.text.contains("stores open"), "{}", d.text);
        assert!(!d.text.contains("##"));
        assert_eq!(d.citations[0].doc, "a.md");
        assert!(d.grounded && !d.escalate);
    }

    #[test]
    fn no_evidence_means_not_found_and_escalate() {
        let d = answer("What is the CEO's favourite colour?", &[], 3);
        assert_eq!(d.text, NOT_FOUND);
        assert!(d.escalate && !d.grounded);
        assert_eq!(d.reason.as_deref(), Some(REASON_NO_EVIDENCE));
    }

    #[test]
    fn every_answer_sentence_is_verbatim_from_a_cited_chunk() {
        let e = vec![ev(
            "a",
            "1. Sign in to your account. 2. Open Orders and choose the order. Members get free returns.",
            0.9,
        )];
        let d = answer("how do I find my order after I sign in", &e, 3);
        for part in d.text.split(" [1]") {
            let p = part.trim_start_matches(['.', ' ']).trim();
            if !p.is_empty() {
                assert!(e[0].chunk.text.contains(p), "`{p}` is not in the chunk");
            }
        }
    }

    #[test]
    fn same_input_same_bytes() {
        let e = vec![ev("a", "Shipping is free over $75. Express costs $14.95.", 0.9)];
        assert_eq!(answer("express shipping cost", &e, 3), answer("express shipping cost", &e, 3));
    }
}
