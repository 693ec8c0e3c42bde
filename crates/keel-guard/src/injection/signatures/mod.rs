//! The signature database of known attacks and benign look-alikes, and matching against it.

mod embedding;
mod matcher;
mod store;

pub use embedding::SignatureEmbeddings;
pub(crate) use matcher::Nearest;
pub use matcher::{MatchScratch, NgramMatcher, SignatureHit};
pub use store::{Signature, SignatureKind, SignatureStatus, Signatures, BUILTIN_SIGNATURES};
