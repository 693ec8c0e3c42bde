//! Prompt-injection detection in layers: signatures (n-gram and optional embedding),
//! heuristics, a trained hashed n-gram classifier, decoded payloads, and an optional model
//! judge.

pub mod classifier;
mod embedding_classifier;
mod heuristics;
mod judge;
mod rules;
pub mod signatures;

pub use classifier::Classifier;
pub use embedding_classifier::{EmbeddingClassifier, ADAPTER};
pub use heuristics::{HeuristicScores, Heuristics, Scope};
pub use judge::{combine_judge, consult, parse_judge_reply, JudgeVerdict, ModelJudge, JUDGE_INSTRUCTIONS};
pub use rules::Family;
