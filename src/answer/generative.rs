//! Turning a model's checked reply into an answer: its `[n]` markers (numbered as the prompt's
//! sources) become `Citation`s of evidence chunks, renumbered densely in order of first use,
//! with the markers in the text rewritten to match.

use super::extractive::Evidence;
use super::{Citation, Draft};

/// A marker `[n]` or `[n, m, …]` starting at byte `i` of `s`: its end and its numbers.
fn marker_at(s: &str, i: usize) -> Option<(usize, Vec<usize>)> {
    let rest = s.get(i..)?.strip_prefix('[')?;
    let close = rest.find(']')?;
    let inner = &rest[..close];
    if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_digit() || c == ',' || c == ' ') {
        return None;
    }
    let nums: Option<Vec<usize>> = inner.split(',').map(|p| p.trim().parse::<usize>().ok()).collect();
    Some((i + 1 + close + 1, nums?))
}

/// The cited source numbers of `reply`, in order of first use, without duplicates.
pub fn cited(reply: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, _) in reply.match_indices('[') {
        if let Some((_, nums)) = marker_at(reply, i) {
            for n in nums {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
    }
    out
}

/// The answer for a reply the grounding check supported. `[n]` refers to `evidence[n - 1]`;
/// a number with no evidence behind it is dropped from the text (the check has already
/// failed such a claim, so this only happens to non-factual text).
pub fn draft(reply: &str, evidence: &[Evidence], model: &str, prompt: &str) -> Draft {
    let order: Vec<usize> = cited(reply).into_iter().filter(|n| (1..=evidence.len()).contains(n)).collect();
    let renumber = |n: usize| order.iter().position(|&o| o == n).map(|p| p + 1);
    let mut text = String::with_capacity(reply.len());
    let mut i = 0;
    while i < reply.len() {
        if let Some((end, nums)) = reply[i..].starts_with('[').then(|| marker_at(reply, i)).flatten() {
            let mut new: Vec<usize> = nums.into_iter().filter_map(renumber).collect();
            new.dedup();
            if !new.is_empty() {
                let list: Vec<String> = new.iter().map(usize::to_string).collect();
                text.push_str(&format!("[{}]", list.join(", ")));
            } else if text.ends_with(' ') {
                text.pop();
            }
            i = end;
            continue;
        }
        let Some(ch) = reply[i..].chars().next() else { break };
        text.push(ch);
        i += ch.len_utf8();
    }
    let mut citations: Vec<Citation> = order
        .iter()
        .enumerate()
        .map(|(k, &n)| {
            let e = &evidence[n - 1];
            Citation {
                n: k + 1,
                doc: e.chunk.doc_id.clone(),
                chunk: e.chunk.id.clone(),
                title: e.chunk.title.clone(),
                heading: e.chunk.heading.clone(),
                span: [e.chunk.start_char, e.chunk.end_char],
                snippet: String::new(),
                score: e.hit.score,
            }
        })
        .collect();
    // Each citation's snippet: the answer's claims that cite it.
    for claim in keel_ground::split_claims(&text) {
        for n in claim.citations {
            if let Some(c) = n.checked_sub(1).and_then(|k| citations.get_mut(k)) {
                if !c.snippet.is_empty() {
                    c.snippet.push(' ');
                }
                c.snippet.push_str(&claim.text);
            }
        }
    }
    let grounded = !citations.is_empty();
    Draft {
        text: text.trim().to_string(),
        citations,
        grounded,
        escalate: false,
        reason: None,
        model: model.to_string(),
        approved: None,
        guard: None,
        snapshot: None,
        cache: None,
        prompt: Some(prompt.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{ChunkMeta, Hit};

    fn ev(id: &str) -> Evidence {
        Evidence {
            chunk: ChunkMeta {
                id: id.into(),
                doc_id: format!("{id}.md"),
                title: id.to_uppercase(),
                heading: "H".into(),
                text: "text".into(),
                start_char: 3,
                end_char: 9,
            },
            hit: Hit { row: 0, score: 0.5, cosine: 0.5, bm25: 0.0 },
        }
    }

    #[test]
    fn markers_are_renumbered_in_order_of_first_use() {
        let e = [ev("a"), ev("b"), ev("c")];
        let d = draft("Returns take 30 days [3]. Refunds take 5 days [1, 3]. Again [3].", &e, "m", "p1");
        assert_eq!(d.text, "Returns take 30 days [1]. Refunds take 5 days [2, 1]. Again [1].");
        let docs: Vec<(usize, &str)> = d.citations.iter().map(|c| (c.n, c.doc.as_str())).collect();
        assert_eq!(docs, [(1, "c.md"), (2, "a.md")]);
        assert_eq!(d.citations[1].snippet, "Refunds take 5 days.");
        assert_eq!(d.citations[0].span, [3, 9]);
        assert!(d.grounded && !d.escalate);
        assert_eq!((d.model.as_str(), d.prompt.as_deref()), ("m", Some("p1")));
    }

    #[test]
    fn unknown_numbers_and_non_markers_are_handled() {
        let e = [ev("a")];
        let d = draft("Hello [7]. See [a] and [1].", &e, "m", "p");
        assert_eq!(d.text, "Hello. See [a] and [1].");
        assert_eq!(d.citations.len(), 1);
        assert_eq!(cited("x [2] y [1,2] [z]"), [2, 1]);
        let none = draft("Happy to help!", &e, "m", "p");
        assert!(none.citations.is_empty() && !none.grounded);
    }
}
