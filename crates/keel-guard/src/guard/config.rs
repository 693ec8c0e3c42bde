//! Thresholds and policies of the guard; the caller builds this from Keel's configuration.

use serde::{Deserialize, Serialize};

use crate::pii::PiiPolicy;

/// A layer's thresholds: at `flag` the layer fires (its reasons are reported and the input is
/// flagged), at `block` the input is refused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LayerThresholds {
    pub flag: f32,
    pub block: f32,
}

impl LayerThresholds {
    pub const fn new(flag: f32, block: f32) -> Self {
        Self { flag, block }
    }
}

/// Everything tunable. Defaults were tuned on the train/dev splits only (see the crate docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GuardConfig {
    /// n-gram signature layer.
    pub signatures: LayerThresholds,
    /// Required gap between nearest attack and nearest benign similarity for a full score.
    pub signature_margin: f32,
    /// Hashed n-gram logistic classifier (score = its probability of an attack).
    pub classifier: LayerThresholds,
    /// Weight in [0, 1] of the classifier's score in the combined (noisy-OR) evidence.
    pub classifier_in_combined: f32,
    /// Optional embedding layer (used only when the caller supplies vectors).
    pub embedding: LayerThresholds,
    pub embedding_margin: f32,
    /// Heuristic rules.
    pub heuristics: LayerThresholds,
    /// Rescan of decoded base64/hex/rot13 payloads.
    pub decoded: LayerThresholds,
    /// Noisy-OR of all injection layers (weak evidence from several layers adds up).
    pub combined: LayerThresholds,
    /// Document scanner: flag threshold on its combined score.
    pub document_flag: f32,
    /// Inputs longer than this (in bytes) are scanned only on their first and last part.
    pub max_scan_bytes: usize,
    /// Inputs at least this long (detection form, bytes) run the signature layer on a second
    /// thread beside the other layers; 0 runs every input on the calling thread alone.
    pub parallel_from_bytes: usize,
    pub pii: PiiPolicy,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            signatures: LayerThresholds::new(0.35, 0.7),
            signature_margin: 0.12,
            // Tuned by `examples/fit_classifier.rs` on out-of-fold scores of the train/dev files.
            classifier: LayerThresholds::new(0.76, 0.9),
            classifier_in_combined: 0.0,
            embedding: LayerThresholds::new(0.75, 0.9),
            embedding_margin: 0.05,
            heuristics: LayerThresholds::new(0.3, 0.85),
            decoded: LayerThresholds::new(0.45, 0.7),
            combined: LayerThresholds::new(0.4, 0.9),
            document_flag: 0.5,
            max_scan_bytes: 64 * 1024,
            parallel_from_bytes: 4096,
            pii: PiiPolicy::default(),
        }
    }
}
