//! Where the input guard comes from: the signatures shipped with Keel plus the local ones
//! (`<data_dir>/signatures.jsonl`, added with `keel signatures add` or learned from incidents
//! into quarantine), and the guard configuration built from `[guard]`. `output.rs` is the
//! output guard.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use keel_guard::{
    GuardConfig, GuardError, InputGuard, Signature, SignatureEmbeddings, SignatureKind, SignatureStatus, Signatures,
};

pub mod output;
pub mod request;
pub mod review;

use crate::config::Config;
use crate::embedding::Embedder;

#[derive(Debug, thiserror::Error)]
pub enum GuardrailError {
    #[error("{path}: {source}")]
    Signatures { path: String, source: GuardError },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error(transparent)]
    Guard(#[from] GuardError),
    #[error("embedding for the guard: {0}")]
    Embed(String),
}

/// The text whose embedding the guard's embedding classifier reads: the normalised question,
/// the same text the pipeline embeds for approved answers and retrieval (one embedding serves
/// all three).
pub fn embedding_text(input: &str) -> String {
    crate::governance::normalize_question(input)
}

/// The version string of the local signature file.
const LOCAL_VERSION: &str = "local";

pub fn local_path(data_dir: &Path) -> PathBuf {
    data_dir.join("signatures.jsonl")
}

/// The local signatures (none when the file does not exist yet).
pub fn load_local(data_dir: &Path) -> Result<Signatures, GuardrailError> {
    let path = local_path(data_dir);
    let named = |source| GuardrailError::Signatures { path: path.display().to_string(), source };
    match std::fs::read_to_string(&path) {
        Ok(text) => Signatures::from_jsonl(&text).map_err(named),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Signatures::from_jsonl(&format!("{{\"signatures_version\":\"{LOCAL_VERSION}\"}}\n")).map_err(named)
        }
        Err(e) => Err(GuardrailError::Io { path: path.display().to_string(), message: e.to_string() }),
    }
}

/// Writes the local signatures atomically (temporary file, fsync, rename): a crash leaves
/// either the old file or the new one.
pub fn save_local(data_dir: &Path, sigs: &Signatures) -> Result<(), GuardrailError> {
    use std::io::Write;
    let path = local_path(data_dir);
    let io = |e: std::io::Error| GuardrailError::Io { path: path.display().to_string(), message: e.to_string() };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let tmp = path.with_extension("jsonl.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(sigs.to_jsonl()?.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// Learns from incidents: an input that made a model leak its canary is added to the local
/// signatures as a *quarantined* attack, inactive until `keel signatures approve ID`.
pub struct Quarantine {
    data_dir: PathBuf,
    lock: std::sync::Mutex<()>,
}

/// Quarantined texts are cut to this many characters.
const MAX_LEARNED_CHARS: usize = 2000;

impl Quarantine {
    pub fn new(data_dir: &Path) -> Self {
        Self { data_dir: data_dir.to_path_buf(), lock: std::sync::Mutex::new(()) }
    }

    /// Adds `text` (once: a text already there returns the existing id). Blocking file I/O.
    pub fn learn(&self, text: &str, provenance: &str) -> Result<String, GuardrailError> {
        let _one_writer = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut local = load_local(&self.data_dir)?;
        let text: String = text.chars().take(MAX_LEARNED_CHARS).collect();
        if let Some(s) = local.list().iter().find(|s| s.text == text) {
            return Ok(s.id.clone());
        }
        let id = format!("incident-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        local.add(Signature {
            id: id.clone(),
            kind: SignatureKind::Attack,
            category: "incident_canary_leak".into(),
            lang: "en".into(),
            text,
            provenance: provenance.to_string(),
            status: SignatureStatus::Quarantined,
        })?;
        save_local(&self.data_dir, &local)?;
        tracing::warn!(id = %id, "input quarantined as a possible attack; review with `keel signatures list`");
        Ok(id)
    }
}

/// The input guard and, when `[guard] embedding_classifier` is on, the tuned encoder whose
/// vector of each input its embedding classifier scores (the base model with the classifier's
/// LoRA adapter merged in; its vectors are for the guard only, never for retrieval).
#[derive(Clone, Default)]
pub struct Guards {
    pub input: Option<Arc<InputGuard>>,
    pub encoder: Option<Arc<Embedder>>,
}

impl Guards {
    /// The guard of this configuration, and its encoder loaded from `model_dir` when enabled.
    pub fn load(config: &Config, model_dir: &Path) -> Result<Self, GuardrailError> {
        let input = build_guard(config, None)?;
        let encoder = match &input {
            Some(_) if config.guard.embedding_classifier => Some(Arc::new(load_encoder(model_dir)?)),
            _ => None,
        };
        Ok(Self { input, encoder })
    }
}

/// The embedding classifier's encoder: the model in `model_dir` with the shipped adapter.
pub fn load_encoder(model_dir: &Path) -> Result<Embedder, GuardrailError> {
    let classifier = keel_guard::injection::EmbeddingClassifier::builtin()?;
    crate::embedding::load_adapted(model_dir, keel_guard::injection::ADAPTER, classifier.max_tokens())
        .map_err(|e| GuardrailError::Embed(e.to_string()))
}

/// The input guard for this configuration (`None` when `[guard] enabled = false`). With an
/// embedder, the signatures are embedded and the embedding layer is on (the caller then passes
/// each input's vector).
pub fn build_guard(config: &Config, embedder: Option<&Embedder>) -> Result<Option<Arc<InputGuard>>, GuardrailError> {
    build_guard_with(config, GuardConfig { pii: config.guard.pii.clone(), ..GuardConfig::default() }, embedder)
}

/// [`build_guard`] with explicit guard thresholds (`keel redteam --guard-config`).
pub fn build_guard_with(
    config: &Config,
    guard_config: GuardConfig,
    embedder: Option<&Embedder>,
) -> Result<Option<Arc<InputGuard>>, GuardrailError> {
    if !config.guard.enabled {
        return Ok(None);
    }
    let mut sigs = Signatures::builtin()?;
    let local = load_local(&config.data_dir)?;
    sigs.extend(local).map_err(|source| GuardrailError::Signatures {
        path: local_path(&config.data_dir).display().to_string(),
        source,
    })?;
    let mut guard = InputGuard::new(sigs, guard_config)?;
    if let Some(e) = embedder {
        let texts = SignatureEmbeddings::texts_to_embed(guard.signatures());
        let flat = e.embed(&texts).map_err(|err| GuardrailError::Embed(err.to_string()))?;
        let vectors = flat.chunks_exact(e.dim().max(1)).map(<[f32]>::to_vec).collect();
        let embeddings = SignatureEmbeddings::new(guard.signatures(), vectors)?;
        guard.set_embeddings(embeddings);
    }
    Ok(Some(Arc::new(guard)))
}
