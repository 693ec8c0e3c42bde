//! The signature database of known attacks and benign look-alikes, and matching against it.

mod embedding;
mod matcher;
mod store;

pub use embedding::SignatureEmbeddings;
pub use matcher::{NgramMatcher, SignatureHit};
pub use store::{Signature, SignatureKind, SignatureStatus, Signatures, BUILTIN_SIGNATURES};
