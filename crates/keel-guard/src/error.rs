//! Typed errors of the guard library (signature files, deny-lists, evaluation input).

use thiserror::Error;

/// Everything that can fail in this crate. Checks themselves never fail: only loading
/// configuration or data can.
#[derive(Debug, Error)]
pub enum GuardError {
    /// A signature JSONL line could not be parsed.
    #[error("signature line {line}: {source}")]
    SignatureParse {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    /// The signature file has no version header or a malformed one.
    #[error("signature file: {0}")]
    SignatureFormat(String),
    /// Two signatures share an id.
    #[error("duplicate signature id `{0}`")]
    DuplicateSignature(String),
    /// No signature with this id.
    #[error("unknown signature id `{0}`")]
    UnknownSignature(String),
    /// Signature embeddings do not line up with the signatures.
    #[error("signature embeddings: {0}")]
    Embeddings(String),
    /// A deny-list could not be compiled.
    #[error("deny-list: {0}")]
    DenyList(String),
    /// A labelled evaluation record could not be parsed.
    #[error("evaluation record line {line}: {source}")]
    RecordParse {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    /// The classifier model could not be read or written.
    #[error("classifier model: {0}")]
    Classifier(String),
    /// Serialising a report or signatures failed.
    #[error("serialise: {0}")]
    Serialise(#[from] serde_json::Error),
}
