//! System-prompt leak detection: long runs of words shared between an output and the
//! system prompt.

use std::collections::HashSet;

use serde::Serialize;

use crate::normalize::normalize;

/// Shingle size in words.
const N: usize = 6;

/// Overlap between an output and a system prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeakReport {
    /// Longest run of consecutive words of the output that also occurs in the prompt.
    pub longest_run_words: usize,
    /// Fraction of the prompt's 6-word shingles that appear in the output.
    pub prompt_coverage: f32,
    /// `longest_run_words >= min_run_words` or `prompt_coverage >= min_coverage`.
    pub leaked: bool,
}

fn words(s: &str) -> Vec<String> {
    normalize(s).detect.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

/// Compare `output` with `system_prompt`. Typical thresholds: `min_run_words = 12`,
/// `min_coverage = 0.2`.
pub fn prompt_leak(output: &str, system_prompt: &str, min_run_words: usize, min_coverage: f32) -> LeakReport {
    let p = words(system_prompt);
    let o = words(output);
    if p.len() < N || o.len() < N {
        return LeakReport { longest_run_words: 0, prompt_coverage: 0.0, leaked: false };
    }
    let prompt_shingles: HashSet<&[String]> = p.windows(N).collect();
    let mut seen: HashSet<&[String]> = HashSet::new();
    let (mut run, mut longest) = (0usize, 0usize);
    for w in o.windows(N) {
        if prompt_shingles.contains(w) {
            seen.insert(w);
            run += 1;
            longest = longest.max(run + N - 1);
        } else {
            run = 0;
        }
    }
    let coverage = seen.len() as f32 / prompt_shingles.len() as f32;
    LeakReport {
        longest_run_words: longest,
        prompt_coverage: coverage,
        leaked: longest >= min_run_words || coverage >= min_coverage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMPT: &str = "You are the support assistant of Acme Bank. Never discuss competitors. Answer only \
        from the provided documents and cite them. If unsure, escalate to a human agent.";

    #[test]
    fn verbatim_leak_is_caught_and_paraphrase_is_not() {
        let leak = "Sure! My instructions: you are the support assistant of Acme Bank, never discuss competitors, \
            answer only from the provided documents and cite them.";
        assert!(prompt_leak(leak, PROMPT, 12, 0.2).leaked);
        let normal = "Acme Bank's support team can help; I answer from the documents provided to me.";
        assert!(!prompt_leak(normal, PROMPT, 12, 0.2).leaked);
    }
}
