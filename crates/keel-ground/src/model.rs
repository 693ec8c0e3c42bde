//! The small model that turns support features into a probability: a logistic regression on
//! standardised dense features plus a hashed table of sparse claim cues (and, optionally, boosted
//! trees), its weights fitted on the dev halves by `examples/fit` and shipped
//! as `model.json` beside this file: one global model (what the checker uses) and, for the
//! benchmark, one profile per public dev set (that set's conventions, e.g. dialogue sets that
//! count generic replies as unsupported).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::features::{Features, FEATURE_NAMES};
use crate::GroundError;

/// The shipped model (see `examples/fit/main.rs` for how it was produced).
pub const SHIPPED_MODEL: &str = include_str!("model.json");

/// Logistic-regression weights over standardised features.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    /// Feature names, in order; must equal [`FEATURE_NAMES`].
    pub features: Vec<String>,
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    pub weights: Vec<f32>,
    pub bias: f32,
    /// Decision threshold on the probability, fitted on the pooled dev halves.
    pub threshold: f32,
    /// Threshold of the word-overlap baseline, fitted the same way.
    pub baseline_threshold: f32,
    /// Weights of the hashed sparse cues (`Features::sparse`), if the model uses them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse: Option<SparseWeights>,
    /// Boosted regression trees over the raw dense features, added to the log-odds (they let
    /// one global model learn interactions, e.g. dialogue-style claims vs encyclopaedic ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trees: Vec<Tree>,
}

/// A complete binary regression tree: internal node `n` sends `x` to `2n + 1` when
/// `x[feature[n]] < threshold[n]`, else to `2n + 2`; leaves follow the internal nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tree {
    pub feature: Vec<u16>,
    pub threshold: Vec<f32>,
    pub leaf: Vec<f32>,
}

impl Tree {
    /// The leaf value `x` reaches.
    pub fn value(&self, x: &[f32]) -> f32 {
        let inner = self.feature.len();
        let mut n = 0;
        while n < inner {
            let f = usize::from(self.feature[n]);
            let left = x.get(f).is_none_or(|v| *v < self.threshold[n]);
            n = 2 * n + if left { 1 } else { 2 };
        }
        self.leaf.get(n - inner).copied().unwrap_or(0.0)
    }

    fn validate(&self, n_features: usize) -> bool {
        let inner = self.feature.len();
        (inner + 1).is_power_of_two()
            && self.threshold.len() == inner
            && self.leaf.len() == inner + 1
            && self.feature.iter().all(|f| usize::from(*f) < n_features)
    }
}

/// A hashed table of cue weights, quantised to `i16` (weight = `q * scale`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SparseWeights {
    /// The table has `1 << bits` entries; a cue hash keeps its low `bits` bits.
    pub bits: u32,
    pub scale: f32,
    pub weights: Vec<i16>,
}

impl SparseWeights {
    /// Quantises float weights (`1 << bits` of them).
    pub fn quantise(bits: u32, w: &[f32]) -> Self {
        let max = w.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let scale = if max > 0.0 { max / f32::from(i16::MAX) } else { 1.0 };
        let weights = w.iter().map(|v| (v / scale).round().clamp(-32767.0, 32767.0) as i16).collect();
        Self { bits, scale, weights }
    }

    /// The sum of the weights of `hashes`.
    pub fn sum(&self, hashes: &[u32]) -> f32 {
        let mask = (1u32 << self.bits) - 1;
        let q: i32 =
            hashes.iter().map(|h| i32::from(self.weights.get((h & mask) as usize).copied().unwrap_or(0))).sum();
        q as f32 * self.scale
    }
}

/// The shipped `model.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelFile {
    /// How the weights were produced.
    pub provenance: String,
    /// The model the checker uses, fitted on all target dev halves pooled.
    pub global: Model,
    /// Thresholds for the global model fitted on each set's dev half.
    pub dataset_thresholds: BTreeMap<String, DatasetThresholds>,
    /// Per-set models fitted on that set's dev half alone (benchmark profiles).
    pub profiles: BTreeMap<String, Model>,
}

impl ModelFile {
    pub fn from_json(text: &str) -> Result<Self, GroundError> {
        let m: ModelFile = serde_json::from_str(text).map_err(|e| GroundError::Model(e.to_string()))?;
        m.global.validate()?;
        for p in m.profiles.values() {
            p.validate()?;
        }
        Ok(m)
    }

    /// The file shipped with the crate.
    pub fn shipped() -> Result<Self, GroundError> {
        Self::from_json(SHIPPED_MODEL)
    }
}

/// A dev-fitted threshold pair for one dataset.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct DatasetThresholds {
    pub checker: f32,
    pub baseline: f32,
}

impl Model {
    /// The global model shipped with the crate.
    pub fn shipped() -> Result<Self, GroundError> {
        Ok(ModelFile::shipped()?.global)
    }

    /// A shipped per-set profile (`"wice"`, `"begin_v1_true"`, ...), if there is one.
    pub fn shipped_profile(name: &str) -> Result<Option<Self>, GroundError> {
        Ok(ModelFile::shipped()?.profiles.remove(name))
    }

    /// Checks that the model fits this build's features.
    pub fn validate(&self) -> Result<(), GroundError> {
        let n = FEATURE_NAMES.len();
        if self.features.len() != n || self.features.iter().zip(FEATURE_NAMES).any(|(a, b)| a != b) {
            return Err(GroundError::Model(format!("feature list differs from this build's {n} features")));
        }
        if self.mean.len() != n || self.scale.len() != n || self.weights.len() != n {
            return Err(GroundError::Model("mean, scale and weights must have one entry per feature".into()));
        }
        if self.scale.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(GroundError::Model("scale entries must be positive".into()));
        }
        if let Some(sp) = &self.sparse {
            if sp.bits > 24 || sp.weights.len() != 1usize << sp.bits || !sp.scale.is_finite() {
                return Err(GroundError::Model("sparse table must have 1 << bits (≤ 24) weights".into()));
            }
        }
        if !self.trees.iter().all(|t| t.validate(n)) {
            return Err(GroundError::Model("malformed tree".into()));
        }
        Ok(())
    }

    /// Log-odds of support from the dense features (linear part plus trees).
    pub fn logit(&self, x: &[f32]) -> f32 {
        let mut z = self.bias;
        for (((w, m), s), v) in self.weights.iter().zip(&self.mean).zip(&self.scale).zip(x) {
            z += w * (v - m) / s;
        }
        z + self.trees.iter().map(|t| t.value(x)).sum::<f32>()
    }

    /// Probability of support in `[0, 1]` from the dense features alone (the sparse cues, if
    /// the model has any, count as absent: use [`Model::probability_of`] for the full score).
    pub fn probability(&self, x: &[f32]) -> f32 {
        1.0 / (1.0 + (-self.logit(x)).exp())
    }

    /// Log-odds of support from all the features, dense and sparse.
    pub fn logit_of(&self, f: &Features) -> f32 {
        let sparse = self.sparse.as_ref().map_or(0.0, |sp| sp.sum(&f.sparse));
        self.logit(&f.values) + sparse
    }

    /// Probability of support in `[0, 1]` from all the features.
    pub fn probability_of(&self, f: &Features) -> f32 {
        1.0 / (1.0 + (-self.logit_of(f)).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_model_parses_and_matches_the_features() {
        let m = Model::shipped().unwrap();
        assert_eq!(m.features.len(), FEATURE_NAMES.len());
        assert!(m.threshold > 0.0 && m.threshold < 1.0);
    }
}
