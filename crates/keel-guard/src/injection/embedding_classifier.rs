//! A logistic regression over an input's vector from a task-tuned encoder: all-MiniLM-L6-v2
//! with a LoRA adapter ([`ADAPTER`], fitted for this task) merged into it, over the normalised
//! input cut at the model's `max_tokens`. The caller computes the vector (Keel merges the
//! adapter into the model it already loads for retrieval); this crate only scores it. It
//! generalises by meaning where the n-gram layers need the words: paraphrased, role-play and
//! translated injections. Fitted on the train/dev files by `scripts/fit_injection_adapter.py`;
//! its thresholds were chosen on a held-out fold of those files and ship with the weights.

use serde::Deserialize;

use crate::error::GuardError;
use crate::guard::LayerThresholds;

/// The model shipped in the crate.
const BUILTIN: &str = include_str!("../../data/embedding_classifier.json");

/// The LoRA adapter the shipped model's vectors come from (safetensors, BF16; the format
/// `keel_embed::Embedder::load_adapted` reads).
pub const ADAPTER: &[u8] = include_bytes!("../../data/injection_adapter.safetensors");

#[derive(Deserialize)]
struct File {
    version: String,
    flag: f32,
    block: f32,
    bias: f32,
    weights: Vec<f32>,
    /// Tokens per input the encoder reads (the length it was tuned at).
    max_tokens: usize,
}

/// Weights, bias and thresholds of the embedding classifier.
#[derive(Debug, Clone)]
pub struct EmbeddingClassifier {
    version: String,
    weights: Vec<f32>,
    bias: f32,
    thresholds: LayerThresholds,
    max_tokens: usize,
}

impl EmbeddingClassifier {
    /// The shipped model.
    pub fn builtin() -> Result<Self, GuardError> {
        Self::from_json(BUILTIN)
    }

    pub fn from_json(text: &str) -> Result<Self, GuardError> {
        let f: File =
            serde_json::from_str(text).map_err(|e| GuardError::Classifier(format!("embedding classifier: {e}")))?;
        if f.weights.is_empty() || !(0.0..=1.0).contains(&f.flag) || f.block < f.flag || f.max_tokens < 2 {
            return Err(GuardError::Classifier("embedding classifier: empty weights or bad thresholds".into()));
        }
        Ok(Self {
            version: f.version,
            weights: f.weights,
            bias: f.bias,
            thresholds: LayerThresholds::new(f.flag, f.block.min(1.0)),
            max_tokens: f.max_tokens,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn thresholds(&self) -> LayerThresholds {
        self.thresholds
    }

    /// The token cap the encoder must apply to reproduce the tuned vectors.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The probability that the input is an attack; `None` when the vector has another
    /// dimension than the model (another embedding model).
    pub fn score(&self, embedding: &[f32]) -> Option<f32> {
        if embedding.len() != self.weights.len() {
            return None;
        }
        let z: f32 = embedding.iter().zip(&self.weights).map(|(a, b)| a * b).sum::<f32>() + self.bias;
        Some(1.0 / (1.0 + (-z).exp()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_model_loads_and_scores_only_its_dimension() {
        let m = EmbeddingClassifier::builtin().expect("builtin model");
        assert!(!m.version().is_empty());
        let t = m.thresholds();
        assert!(t.flag > 0.0 && t.block >= t.flag);
        let v = vec![0.0f32; m.weights.len()];
        let s = m.score(&v).expect("same dimension");
        assert!((0.0..=1.0).contains(&s));
        assert!(m.score(&[0.0; 3]).is_none());
        assert!(EmbeddingClassifier::from_json(
            "{\"version\":\"x\",\"flag\":0.5,\"block\":0.4,\"bias\":0,\"weights\":[1],\"max_tokens\":128}"
        )
        .is_err());
    }
}
