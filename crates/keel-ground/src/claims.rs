//! Claim splitting: an answer becomes a list of claims (sentences, split further on `;` and on
//! coordinated clauses when both halves are long), each with its citation markers, its byte
//! span in the answer and whether it states a fact at all.

use serde::Serialize;

use crate::text::{self, marker_end, sentences, trim_span};

/// One claim of an answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    /// The claim with its citation markers removed.
    pub text: String,
    /// Byte range of the claim in the answer (markers included).
    pub span: (usize, usize),
    /// Cited chunk numbers, 1-based as written (`[2]` cites `chunks[1]`). A clause without its own
    /// markers inherits the markers of its sentence.
    pub citations: Vec<usize>,
    /// False for pleasantries, questions back to the user and text without content words.
    pub factual: bool,
}

/// Splits an answer into claims.
pub fn split_claims(answer: &str) -> Vec<Claim> {
    let mut out = Vec::new();
    for (s, e) in sentences(answer) {
        let sentence_markers = markers_in(&answer[s..e]);
        for (cs, ce) in clauses(answer, s, e) {
            let raw = &answer[cs..ce];
            let own = markers_in(raw);
            let citations = if own.is_empty() { sentence_markers.clone() } else { own };
            let text = strip_markers(raw);
            if text.chars().all(|c| !c.is_alphanumeric()) {
                continue;
            }
            let factual = is_factual(&text);
            out.push(Claim { text, span: (cs, ce), citations, factual });
        }
    }
    out
}

/// Citation numbers in `s`, in order, without duplicates.
fn markers_in(s: &str) -> Vec<usize> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' {
            if let Some(end) = marker_end(b, i) {
                for n in s[i + 1..end - 1].split(',').filter_map(|p| p.trim().parse::<usize>().ok()) {
                    if !out.contains(&n) {
                        out.push(n);
                    }
                }
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// `s` without its citation markers, whitespace collapsed around where they were.
pub(crate) fn strip_markers(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] == b'[' {
            if let Some(end) = marker_end(b, i) {
                out.push_str(&s[last..i]);
                i = end;
                last = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[last..]);
    let collapsed = out.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.replace(" .", ".").replace(" ,", ",").replace(" ;", ";")
}

/// Connectives after which a new clause may start: `, and`, `, but`, `; `.
const CONNECTIVES: &[&str] = &[", and ", ", but ", ", while ", ", whereas ", ", so ", ", yet "];

/// Minimum number of words on each side before a coordinated sentence is split.
const MIN_CLAUSE_WORDS: usize = 4;

/// Clause spans within sentence `[s, e)`.
fn clauses(text: &str, s: usize, e: usize) -> Vec<(usize, usize)> {
    let mut cuts = vec![s];
    let sentence = &text[s..e];
    let lower = sentence.to_ascii_lowercase();
    let mut candidates: Vec<(usize, usize)> = Vec::new(); // (cut position, start of next clause)
    for (p, _) in sentence.match_indices(';') {
        candidates.push((p, p + 1));
    }
    for c in CONNECTIVES {
        for (p, _) in lower.match_indices(c) {
            candidates.push((p, p + 1));
        }
    }
    candidates.sort_unstable();
    let mut prev = 0;
    for (cut, next) in candidates {
        let left_words = sentence[prev..cut].split_whitespace().count();
        let right_words = sentence[next..].split_whitespace().count();
        if left_words >= MIN_CLAUSE_WORDS && right_words > MIN_CLAUSE_WORDS {
            cuts.push(s + next);
            prev = next;
        }
    }
    cuts.push(e);
    cuts.windows(2)
        .map(|w| {
            let (a, b) = trim_span(text, w[0], w[1]);
            // Drop the separator that ends a clause.
            let slice = &text[a..b];
            let trimmed = slice.trim_end_matches([';', ',']);
            (a, a + trimmed.len())
        })
        .filter(|(a, b)| b > a)
        .collect()
}

/// Openings of sentences that are courtesy, not content.
const PLEASANTRIES: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "thanks",
    "thank you",
    "you're welcome",
    "you are welcome",
    "i hope this helps",
    "hope this helps",
    "i hope that helps",
    "hope that helps",
    "let me know",
    "feel free",
    "glad to help",
    "happy to help",
    "great question",
    "good question",
    "sure",
    "of course",
    "certainly",
    "absolutely",
    "i'm sorry",
    "i am sorry",
    "sorry",
    "is there anything else",
    "anything else",
    "have a great",
    "have a nice",
    "here is what i found",
    "here's what i found",
];

/// Whether a claim states something that needs support.
pub fn is_factual(claim: &str) -> bool {
    let t = claim.trim();
    if t.ends_with('?') || t.ends_with(':') {
        return false;
    }
    let lower = t.to_lowercase().replace('’', "'");
    let mut toks = Vec::new();
    text::tokenize(&lower, &mut toks);
    let content = toks
        .iter()
        .filter(|tk| {
            tk.kind == text::Kind::Number
                || (tk.kind == text::Kind::Word && !text::is_stopword(&lower[tk.start..tk.end]))
        })
        .count();
    if content == 0 {
        return false;
    }
    for p in PLEASANTRIES {
        if let Some(rest) = lower.strip_prefix(p) {
            let boundary = rest.chars().next().is_none_or(|c| !c.is_alphanumeric());
            // "Sure, the fee is $5." still states a fact: only short courtesy sentences are exempt.
            let rest_words = rest.split_whitespace().count();
            if boundary
                && (rest_words <= 6 || p.starts_with("i hope") || p.starts_with("hope") || p.starts_with("let me"))
            {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_become_claims_with_markers_and_spans() {
        let a = "Refunds take 14 days [1]. Fees are waived for members [2][3]. Hope this helps!";
        let c = split_claims(a);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].text, "Refunds take 14 days.");
        assert_eq!(c[0].citations, vec![1]);
        assert_eq!(&a[c[0].span.0..c[0].span.1], "Refunds take 14 days [1].");
        assert_eq!(c[1].citations, vec![2, 3]);
        assert!(c[0].factual && c[1].factual);
        assert!(!c[2].factual);
    }

    #[test]
    fn semicolons_and_long_coordinations_split_short_ones_do_not() {
        let c = split_claims("Returns are accepted within 30 days; refunds go to the original card [1].");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].text, "Returns are accepted within 30 days");
        assert_eq!(c[0].citations, vec![1], "a clause inherits its sentence's markers");
        let c = split_claims("Bread and butter are sold here.");
        assert_eq!(c.len(), 1);
        let c = split_claims("The store opens at 9 every weekday, and the cafe closes at 5 on Sundays.");
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn pleasantries_and_questions_are_not_factual() {
        for s in [
            "Hello!",
            "Thanks for asking.",
            "I hope this helps.",
            "Would you like to know more?",
            "Let me know if you need anything else.",
        ] {
            assert!(!is_factual(s), "{s}");
        }
        for s in ["Sure, the fee is $5 and applies to every transfer over the limit.", "Refunds take 14 days."] {
            assert!(is_factual(s), "{s}");
        }
    }
}
