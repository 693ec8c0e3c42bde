//! The small model that turns support features into a probability: a logistic regression on
//! standardised features, its weights fitted on the dev halves by `examples/fit.rs` and shipped
//! as `model.json` beside this file: one global model (what the checker uses) and, for the
//! benchmark, one profile per public dev set (that set's conventions, e.g. dialogue sets that
//! count generic replies as unsupported).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::features::FEATURE_NAMES;
use crate::GroundError;

/// The shipped model (see `examples/fit.rs` for how it was produced).
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
        Ok(())
    }

    /// Raw linear score (log-odds of support).
    pub fn logit(&self, x: &[f32]) -> f32 {
        let mut z = self.bias;
        for (((w, m), s), v) in self.weights.iter().zip(&self.mean).zip(&self.scale).zip(x) {
            z += w * (v - m) / s;
        }
        z
    }

    /// Probability of support in `[0, 1]`.
    pub fn probability(&self, x: &[f32]) -> f32 {
        1.0 / (1.0 + (-self.logit(x)).exp())
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
