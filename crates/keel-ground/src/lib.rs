//! Keel's hallucination firewall: checks that each claim of a generated answer is supported by
//! the chunk(s) it cites, on the CPU, synchronously, in well under a few milliseconds.
//!
//! The answer is split into claims ([`split_claims`]); each factual claim must cite at least one
//! chunk (`[n]` refers to `chunks[n - 1]`), every number, amount, date and capitalised name it
//! states must appear in the cited chunks, its negations must agree with the best-matching
//! sentence, and a logistic model over lexical support features (fitted on dev halves of public
//! grounding sets, see `examples/fit/main.rs`) must score it at or above the threshold.
//!
//! ```
//! let checker = keel_ground::Checker::new().unwrap();
//! let chunks = ["Refunds are issued within 14 days of the return."];
//! let v = checker.check_answer("Refunds are issued within 30 days [1].", &chunks);
//! assert!(!v.supported);
//! assert!(v.claims[0].missing.iter().any(|m| m == "number 30"));
//! ```
//!
//! The crate knows nothing of Keel's types; `eval` holds the benchmark used by
//! `keel bench grounding`.

mod claims;
pub mod eval;
mod features;
mod idf;
mod lexicon;
mod model;
mod sparse;
mod text;

use serde::Serialize;

pub use claims::{is_factual, split_claims, Claim};
pub use features::{Features, FEATURE_NAMES, MAX_EVIDENCE_BYTES};
pub use idf::{build_idf, IDF_BITS};
pub use model::{DatasetThresholds, Model, ModelFile, SparseWeights, Tree, SHIPPED_MODEL};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum GroundError {
    #[error("grounding model: {0}")]
    Model(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} line {line}: {message}")]
    Data { path: String, line: usize, message: String },
}

/// How many unsupported content words a verdict lists (for repair prompts).
const MISSING_WORDS: usize = 5;

/// The verdict on one claim.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimVerdict {
    /// The claim, citation markers removed.
    pub text: String,
    /// Byte range in the answer, markers included.
    pub span: (usize, usize),
    /// Chunk numbers cited, 1-based.
    pub citations: Vec<usize>,
    /// False for pleasantries and questions; those need no support.
    pub factual: bool,
    pub supported: bool,
    /// Probability of support from the model (1.0 for non-factual claims, 0.0 when uncited).
    pub score: f32,
    /// Why it failed: "uncited", "citation [4] has no chunk", "number 45", "entity Paris",
    /// "negation", "word fee".
    pub missing: Vec<String>,
}

/// The verdict on a whole answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerVerdict {
    /// True when every factual claim is supported.
    pub supported: bool,
    /// The lowest claim score (1.0 when the answer states no fact).
    pub score: f32,
    pub claims: Vec<ClaimVerdict>,
}

impl AnswerVerdict {
    /// The claims that failed, in answer order (what a repair prompt or a stream hold-back needs).
    pub fn unsupported(&self) -> impl Iterator<Item = &ClaimVerdict> {
        self.claims.iter().filter(|c| !c.supported)
    }
}

/// The grounding checker. Cheap to share: immutable after construction, `Send + Sync`.
pub struct Checker {
    model: Model,
    threshold: f32,
    stems: text::Stems,
    /// Inverse document frequencies of stems (`idf.rs`), the shipped table unless replaced.
    idf: std::borrow::Cow<'static, [u8]>,
}

impl Checker {
    /// A checker with the shipped model and its dev-fitted global threshold.
    pub fn new() -> Result<Self, GroundError> {
        Ok(Self::with_model(Model::shipped()?))
    }

    /// A checker with another model (e.g. a shipped profile, or one refitted by `examples/fit/main.rs`).
    pub fn with_model(model: Model) -> Self {
        let threshold = model.threshold;
        Self { model, threshold, stems: text::Stems::new(), idf: std::borrow::Cow::Borrowed(idf::SHIPPED_IDF) }
    }

    /// Replaces the IDF table (`examples/fit/main.rs` computes features with the table it builds).
    pub fn with_idf(mut self, table: Vec<u8>) -> Self {
        self.idf = std::borrow::Cow::Owned(table);
        self
    }

    /// Overrides the decision threshold on the support probability (higher is stricter).
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The support features of `claim` against `evidence` (used by the fitting program).
    pub fn features(&self, evidence: &[&str], claim: &str) -> Features {
        features::features(claim, evidence, &self.stems, &self.idf)
    }

    /// Probability that `claim` (one sentence or a whole answer, citations ignored) is supported
    /// by `context`: the scorer for datasets without citations.
    pub fn score(&self, context: &str, claim: &str) -> f32 {
        let claim = claims::strip_markers(claim);
        self.model.probability_of(&self.features(&[context], &claim))
    }

    /// Checks one claim against its evidence texts (already resolved from its citations).
    pub fn check_claim(&self, claim: &str, evidence: &[&str]) -> (bool, f32, Vec<String>) {
        let f = self.features(evidence, claim);
        let score = self.model.probability_of(&f);
        let mut missing = f.missing;
        let supported = score >= self.threshold && !f.hard_fail;
        if !supported {
            for w in features::missing_words(claim, evidence, &self.stems, MISSING_WORDS) {
                missing.push(format!("word {w}"));
            }
        }
        (supported, score, missing)
    }

    /// Checks every claim of `answer` against the chunks it cites; `[n]` cites `chunks[n - 1]`.
    /// A factual claim without a citation fails as "uncited"; a claim citing only missing chunks
    /// fails too. A true claim citing the wrong chunk fails: only cited chunks are evidence.
    pub fn check_answer(&self, answer: &str, chunks: &[&str]) -> AnswerVerdict {
        let mut claims = Vec::new();
        for c in split_claims(answer) {
            let mut v = ClaimVerdict {
                text: c.text,
                span: c.span,
                citations: c.citations,
                factual: c.factual,
                supported: true,
                score: 1.0,
                missing: Vec::new(),
            };
            if v.factual {
                let mut evidence = Vec::new();
                for &n in &v.citations {
                    match n.checked_sub(1).and_then(|i| chunks.get(i)) {
                        Some(chunk) => evidence.push(*chunk),
                        None => v.missing.push(format!("citation [{n}] has no chunk")),
                    }
                }
                if v.citations.is_empty() {
                    v.missing.push("uncited".to_string());
                }
                if evidence.is_empty() {
                    v.supported = false;
                    v.score = 0.0;
                } else {
                    let (ok, score, missing) = self.check_claim(&v.text, &evidence);
                    v.supported = ok;
                    v.score = score;
                    v.missing.extend(missing);
                }
            }
            claims.push(v);
        }
        let supported = claims.iter().all(|c| c.supported);
        let score = claims.iter().filter(|c| c.factual).map(|c| c.score).fold(1.0f32, f32::min);
        AnswerVerdict { supported, score, claims }
    }
}
