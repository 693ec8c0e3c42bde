//! The input guard: normalisation, PII policy and the injection layers combined into one
//! verdict, plus the document scanner that reuses the same layers.

mod config;
mod document;
mod helper;
mod input;

pub use config::{GuardConfig, LayerThresholds};
pub use document::DocumentVerdict;
pub use input::{InputGuard, InputReport};
