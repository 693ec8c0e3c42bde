//! Text normalisation: the one place that decides what "the same text" means for every check.

mod homoglyph;
mod normalizer;

pub use homoglyph::fold_homoglyphs;
pub use normalizer::{normalize, Normalized, Stripped};
