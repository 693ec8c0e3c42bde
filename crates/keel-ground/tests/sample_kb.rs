//! The shipped model on the repository's sample knowledge base, in the style of the main crate's
//! `tests/hallucination.rs` (which needs the whole workspace): a page sentence copied with its
//! citation must pass, and the fake provider's inventions (a changed number, an invented fee, a
//! wrong duration, a negated rule) must be stopped. Guards refits of `model.json` cheaply.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

use std::path::{Path, PathBuf};

use keel_ground::Checker;

fn kb_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../sample-kb"))
}

fn pages(dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            pages(&p, out);
        } else if p.extension().is_some_and(|e| e == "md" || e == "txt") {
            out.push(std::fs::read_to_string(&p).unwrap());
        }
    }
}

/// Prose sentences of a page with at least six words (no headings, tables or list items).
fn sentences(page: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in page.lines().map(str::trim) {
        if line.is_empty() || line.starts_with(['#', '|', '-', '*', '<']) {
            continue;
        }
        for s in line.split_inclusive(". ") {
            let s = s.trim();
            let ends = s.ends_with('.') && !s.ends_with("a.m.") && !s.ends_with("p.m.");
            if ends && s.split_whitespace().count() >= 6 {
                out.push(s.to_string());
            }
        }
    }
    out
}

fn cite(sentence: &str) -> String {
    format!("{} [1].", sentence.trim_end_matches('.'))
}

fn change_number(s: &str) -> Option<String> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let len = s[start..].find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len() - start);
    let n: u64 = s[start..start + len].parse().ok()?;
    Some(format!("{}{}{}", &s[..start], n + 17, &s[start + len..]))
}

const NEGATIONS: [(&str, &str); 10] = [
    (" cannot ", " can "),
    (" do not ", " do "),
    (" does not ", " does "),
    (" is not ", " is "),
    (" are not ", " are "),
    (" not ", " "),
    (" can ", " cannot "),
    (" must ", " must not "),
    (" is ", " is not "),
    (" are ", " are not "),
];

fn negate(s: &str) -> Option<String> {
    NEGATIONS.iter().find_map(|(from, to)| s.find(from).map(|at| format!("{}{to}{}", &s[..at], &s[at + from.len()..])))
}

#[test]
fn sample_kb_sentences_pass_and_inventions_are_stopped() {
    let dir = kb_dir();
    if !dir.is_dir() {
        println!("SKIP: no sample-kb at {}", dir.display());
        return;
    }
    let mut all = Vec::new();
    pages(&dir, &mut all);
    let c = Checker::new().unwrap();
    let (mut faithful, mut passed, mut invented, mut stopped, mut soft) = (0, 0, 0, 0, 0);
    let mut wrongly_stopped = Vec::new();
    let mut missed = Vec::new();
    for page in &all {
        for s in sentences(page) {
            faithful += 1;
            let v = c.check_answer(&cite(&s), &[page.as_str()]);
            // A failure by the score alone (no number, entity or negation finding): the model's doing.
            let by_score = v.unsupported().all(|c| c.missing.iter().all(|m| m.starts_with("word ")));
            if v.supported {
                passed += 1;
            } else if by_score {
                soft += 1;
                wrongly_stopped
                    .push(format!("{s} {:?}", v.claims.iter().map(|c| (c.score, &c.missing)).collect::<Vec<_>>()));
            }
            let fee = format!("{} A $4.99 processing fee applies to every return and refund [1].", cite(&s));
            let mut bad: Vec<String> = vec![fee];
            bad.extend(change_number(&s).map(|b| cite(&b)));
            bad.extend(negate(&s).map(|b| cite(&b)));
            for b in bad {
                invented += 1;
                if c.check_answer(&b, &[page.as_str()]).supported {
                    missed.push(b);
                } else {
                    stopped += 1;
                }
            }
        }
    }
    println!("faithful {passed}/{faithful} ({soft} stopped by the score alone), invented stopped {stopped}/{invented}");
    assert!(faithful >= 100, "too few sentences found: {faithful}");
    // Copies fail mostly through the hard negation check on clause splits (not the model's
    // doing); the score alone may stop at most 2 % of them.
    assert!(passed as f64 >= 0.94 * faithful as f64, "faithful sentences stopped: {passed}/{faithful}");
    assert!(soft as f64 <= 0.02 * faithful as f64, "stopped by the score: {wrongly_stopped:#?}");
    assert!(stopped as f64 >= 0.95 * invented as f64, "inventions passed: {missed:#?}");
}

#[test]
fn invented_policy_pairs_in_the_sample_kb_style() {
    let c = Checker::new().unwrap();
    let page = "You can return eligible items within 30 days from delivery. Trailhead Club members can \
                return items within 60 days from delivery. Final sale items cannot be returned. Opened \
                electronics carry a 15% restocking fee.";
    let ok = [
        "You can return eligible items within 30 days from delivery [1].",
        "Trailhead Club members can return items within 60 days from delivery [1].",
        "Final sale items cannot be returned [1].",
    ];
    for a in ok {
        assert!(c.check_answer(a, &[page]).supported, "{a}");
    }
    let bad = [
        "You can return eligible items within 47 days from delivery [1].",
        "You can return eligible items within 63 weeks from delivery [1].",
        "Final sale items can be returned [1].",
        "You can return eligible items within 30 days from delivery [1]. A $4.99 processing fee applies to every return and refund [1].",
        "Opened electronics carry a 25% restocking fee [1].",
    ];
    for a in bad {
        assert!(!c.check_answer(a, &[page]).supported, "{a}");
    }
}

/// Inventions with no number, name or negation to catch: only the score can stop them.
#[test]
fn inventions_without_hard_cues_score_low() {
    let dir = kb_dir();
    if !dir.is_dir() {
        return;
    }
    let c = Checker::new().unwrap();
    let cases = [
        ("returns/return-policy.md", "A processing fee applies to every return and refund [1]."),
        (
            "membership/trailhead-club-overview.md",
            "Members receive free overnight delivery and a personal stylist [1].",
        ),
        ("warranty/how-to-file-a-warranty-claim.md", "Warranty claims must be filed in person at a store [1]."),
        ("account/password-reset.md", "Passwords are reset automatically every month by the security team [1]."),
        ("products/bike-sizing-and-assembly.md", "Bikes are delivered by courier fully assembled and tuned [1]."),
        ("products/tent-care.md", "Tents should be bleached and then dried in a tumble dryer [1]."),
    ];
    let mut passed = Vec::new();
    for (page, claim) in cases {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        let v = c.check_answer(claim, &[text.as_str()]);
        println!("{:.3} {}", v.score, claim);
        if v.supported {
            passed.push(claim);
        }
    }
    // The lexical score is weak on these (plausible policy in the page's own words): the model
    // before hashed cues let 3 of the 6 through; a refit must not let more through.
    assert!(passed.len() <= 3, "inventions passed: {passed:?}");
}
