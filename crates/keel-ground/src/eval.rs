//! The grounding benchmark behind `keel bench grounding`: labelled (context, claim) records in,
//! a serialisable report out (balanced accuracy, AUROC, a word-overlap baseline, latency).

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::{text, Checker, GroundError};

/// Gold label of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Supported,
    Unsupported,
}

/// One labelled example (`/work/shared/data/grounding/*/{dev,test}.jsonl` lines; extra fields ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub context: String,
    pub claim_or_answer: String,
    pub label: Label,
}

/// Reads a JSONL file of [`Record`]s.
pub fn load_jsonl(path: &Path) -> Result<Vec<Record>, GroundError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| GroundError::Io { path: p.clone(), source })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(line).map_err(|e| GroundError::Data {
            path: p.clone(),
            line: i + 1,
            message: e.to_string(),
        })?;
        out.push(r);
    }
    Ok(out)
}

/// Decision thresholds for the checker's probability and the baseline's overlap fraction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub checker: f32,
    pub baseline: f32,
}

impl Thresholds {
    /// The global thresholds shipped with the checker's model (fitted on the pooled dev halves).
    pub fn shipped(checker: &Checker) -> Self {
        Self { checker: checker.threshold(), baseline: checker.model().baseline_threshold }
    }
}

/// The benchmark report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub n: usize,
    pub supported: usize,
    pub balanced_accuracy: f64,
    pub auroc: f64,
    pub threshold: f32,
    pub baseline_balanced_accuracy: f64,
    pub baseline_auroc: f64,
    pub baseline_threshold: f32,
    /// Latency of one `Checker::score` call (context + claim), milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The plain word-overlap baseline: fraction of the claim's content words (lowercased, stop
/// words removed, no stemming) that occur anywhere in the context.
pub fn baseline_score(context: &str, claim: &str) -> f32 {
    let words = |s: &str| -> Vec<String> {
        let mut toks = Vec::new();
        text::tokenize(s, &mut toks);
        toks.iter()
            .filter(|t| t.kind != text::Kind::Punct)
            .map(|t| s[t.start..t.end].to_lowercase())
            .filter(|w| !text::is_stopword(w))
            .collect()
    };
    let claim_words = words(claim);
    if claim_words.is_empty() {
        return 0.0;
    }
    let ctx: HashSet<String> = words(context).into_iter().collect();
    claim_words.iter().filter(|w| ctx.contains(*w)).count() as f32 / claim_words.len() as f32
}

/// Scores, labels (true = supported) and per-record latencies of the checker.
fn checker_scores(checker: &Checker, records: &[Record]) -> (Vec<f32>, Vec<f64>) {
    let mut scores = Vec::with_capacity(records.len());
    let mut ms = Vec::with_capacity(records.len());
    for r in records {
        let t = Instant::now();
        let s = checker.score(&r.context, &r.claim_or_answer);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        scores.push(s);
    }
    (scores, ms)
}

fn labels(records: &[Record]) -> Vec<bool> {
    records.iter().map(|r| r.label == Label::Supported).collect()
}

/// Fits both thresholds on dev records (maximising balanced accuracy).
pub fn fit_thresholds(checker: &Checker, dev: &[Record]) -> Thresholds {
    let y = labels(dev);
    let (s, _) = checker_scores(checker, dev);
    let b: Vec<f32> = dev.iter().map(|r| baseline_score(&r.context, &r.claim_or_answer)).collect();
    Thresholds { checker: best_threshold(&s, &y).0, baseline: best_threshold(&b, &y).0 }
}

/// Runs the checker and the baseline over `records` with the given thresholds.
pub fn evaluate(checker: &Checker, records: &[Record], thresholds: Thresholds) -> Report {
    let y = labels(records);
    let (s, mut ms) = checker_scores(checker, records);
    let b: Vec<f32> = records.iter().map(|r| baseline_score(&r.context, &r.claim_or_answer)).collect();
    ms.sort_by(f64::total_cmp);
    Report {
        n: records.len(),
        supported: y.iter().filter(|v| **v).count(),
        balanced_accuracy: balanced_accuracy(&s, &y, thresholds.checker),
        auroc: auroc(&s, &y),
        threshold: thresholds.checker,
        baseline_balanced_accuracy: balanced_accuracy(&b, &y, thresholds.baseline),
        baseline_auroc: auroc(&b, &y),
        baseline_threshold: thresholds.baseline,
        p50_ms: percentile(&ms, 0.50),
        p99_ms: percentile(&ms, 0.99),
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Balanced accuracy of "supported iff score >= threshold".
pub fn balanced_accuracy(scores: &[f32], y: &[bool], threshold: f32) -> f64 {
    let (mut tp, mut pos, mut tn, mut neg) = (0usize, 0usize, 0usize, 0usize);
    for (s, &l) in scores.iter().zip(y) {
        let pred = *s >= threshold;
        if l {
            pos += 1;
            tp += pred as usize;
        } else {
            neg += 1;
            tn += (!pred) as usize;
        }
    }
    let tpr = if pos == 0 { 0.0 } else { tp as f64 / pos as f64 };
    let tnr = if neg == 0 { 0.0 } else { tn as f64 / neg as f64 };
    (tpr + tnr) / 2.0
}

/// The threshold maximising balanced accuracy (midpoint between adjacent distinct scores).
pub fn best_threshold(scores: &[f32], y: &[bool]) -> (f32, f64) {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let pos = y.iter().filter(|v| **v).count() as f64;
    let neg = y.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return (0.5, 0.5);
    }
    // Threshold below everything: all predicted supported.
    let (mut best_t, mut best_b) = (scores.get(idx[0]).copied().unwrap_or(0.0), 0.5);
    let (mut fn_, mut tn) = (0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let v = scores[idx[i]];
        while i < idx.len() && scores[idx[i]] == v {
            if y[idx[i]] {
                fn_ += 1.0;
            } else {
                tn += 1.0;
            }
            i += 1;
        }
        let bacc = ((pos - fn_) / pos + tn / neg) / 2.0;
        if bacc > best_b {
            best_b = bacc;
            best_t = if i < idx.len() { (v + scores[idx[i]]) / 2.0 } else { v + 1e-6 };
        }
    }
    (best_t, best_b)
}

/// Area under the ROC curve with supported as the positive class (ties count one half).
pub fn auroc(scores: &[f32], y: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let pos = y.iter().filter(|v| **v).count() as f64;
    let neg = y.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    // Sum of positive ranks (average ranks for ties).
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && scores[idx[j]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j + 1) as f64 / 2.0;
        rank_sum += idx[i..j].iter().filter(|&&k| y[k]).count() as f64 * avg;
        i = j;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_and_balanced_accuracy() {
        let s = [0.1, 0.4, 0.35, 0.8];
        let y = [false, false, true, true];
        assert!((auroc(&s, &y) - 0.75).abs() < 1e-9);
        let (t, b) = best_threshold(&s, &y);
        assert!((b - 0.75).abs() < 1e-9, "{t} {b}");
        assert!((balanced_accuracy(&s, &y, 0.9) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn baseline_counts_content_words() {
        assert!((baseline_score("The cat sat on the mat.", "The cat sat on a chair.") - 2.0 / 3.0).abs() < 1e-6);
    }
}
