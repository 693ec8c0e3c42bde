//! Keel's guard library: pure text checks run before and after the model.
//!
//! - [`normalize`]: NFKC, invisible-character stripping (with counts), homoglyph folding for
//!   detection only.
//! - [`pii`]: e-mail, phone, card (Luhn), IBAN (mod-97), SSN, IPv4/IPv6; per-kind policy.
//! - [`injection`]: signature database (n-gram similarity with an attack-vs-benign margin,
//!   optional caller-supplied embeddings), a trained hashed n-gram logistic classifier
//!   ([`Classifier`]), heuristic rules, decoded payloads, model-judge interface.
//! - [`InputGuard`]: all input layers combined into one [`Verdict`]; also scans retrieved
//!   document chunks for indirect injection ([`InputGuard::scan_document`]).
//! - [`output`]: canaries (also in streams and cheap encodings), deny-lists, prompt leaks.
//! - [`eval`]: labelled-record evaluation for `keel redteam`.
//!
//! No async, no I/O besides what the caller passes in, no Keel types.

mod decode;
pub mod error;
pub mod eval;
mod guard;
pub mod injection;
pub mod normalize;
pub mod output;
pub mod pii;
mod regexes;
mod segment;
mod verdict;

pub use decode::{decode_payloads, rot13, Decoded};
pub use error::GuardError;
pub use guard::{DocumentVerdict, GuardConfig, InputGuard, InputReport, LayerThresholds};
pub use injection::signatures::{Signature, SignatureEmbeddings, SignatureKind, SignatureStatus, Signatures};
pub use injection::Classifier;
pub use segment::segments;
pub use verdict::{Action, LayerScore, ReasonCode, Verdict};
