//! In-process sentence embeddings for Keel: the all-MiniLM-L6-v2 tokenizer and BERT encoder
//! run on the CPU with no Python and no model server.
//!
//! The crate knows nothing of Keel: it loads a model folder (`config.json`, `tokenizer.json`,
//! `model.safetensors`) and turns texts into L2-normalised vectors, as sentence-transformers
//! does (mean pooling, 256-token cap).

mod bert;
mod lora;
mod matmul;
pub mod vecmath;

use std::path::Path;

use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

pub use bert::BertConfig;

/// The files a model folder must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Default cap on tokens per text (sentence-transformers' `max_seq_length` for this model).
pub const DEFAULT_MAX_TOKENS: usize = 256;

/// Tokens per forward pass; longer batches are split. Sorted-by-length batching keeps
/// sequences of similar sizes together so per-sequence attention tasks are balanced.
const TOKENS_PER_BATCH: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("model folder {path}: {message}")]
    Missing { path: String, message: String },
    #[error("model: {0}")]
    Model(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("input: {0}")]
    Input(String),
    #[error("internal shape error in {0}")]
    Internal(&'static str),
}

/// A loaded sentence-embedding model.
pub struct Embedder {
    tokenizer: Tokenizer,
    bert: bert::Bert,
}

impl Embedder {
    /// Loads a model folder. Fails with [`EmbedError::Missing`] naming the first absent file.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        for f in MODEL_FILES {
            if !dir.join(f).is_file() {
                return Err(EmbedError::Missing { path: dir.display().to_string(), message: format!("no {f}") });
            }
        }
        let read = |f: &str| {
            std::fs::read(dir.join(f))
                .map_err(|e| EmbedError::Missing { path: dir.display().to_string(), message: format!("{f}: {e}") })
        };
        let cfg_text = String::from_utf8(read("config.json")?)
            .map_err(|_| EmbedError::Model("config.json is not UTF-8".into()))?;
        let cfg = BertConfig::from_json(&cfg_text)?;
        let max_tokens = DEFAULT_MAX_TOKENS.min(cfg.max_positions);
        let bert = bert::Bert::load(cfg, &read("model.safetensors")?)?;

        let mut tokenizer =
            Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        // The shipped tokenizer.json pads to 128 and truncates at 128; we pack without padding
        // and truncate where sentence-transformers does.
        tokenizer.with_padding(None::<PaddingParams>);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..Default::default() }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(Self { tokenizer, bert })
    }

    /// Loads a model folder and merges a LoRA adapter into it (format in `lora.rs`): a
    /// task-tuned encoder that shares the base model's files.
    pub fn load_adapted(dir: &Path, adapter: &[u8]) -> Result<Self, EmbedError> {
        let mut e = Self::load(dir)?;
        e.bert.merge_lora(adapter)?;
        Ok(e)
    }

    /// Caps tokens per text at `max_tokens` (at most the model's positions), for a model
    /// tuned on shorter inputs than the default cap.
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Result<Self, EmbedError> {
        let max_length = max_tokens.clamp(2, self.bert.max_positions());
        self.tokenizer
            .with_truncation(Some(TruncationParams { max_length, ..Default::default() }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(self)
    }

    /// Vector length.
    pub fn dim(&self) -> usize {
        self.bert.hidden()
    }

    /// Token ids (with `[CLS]`/`[SEP]`) for each text, truncated to the model's cap.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, EmbedError> {
        let enc =
            self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(enc.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// One L2-normalised vector per text, in input order, `dim()` floats each, concatenated.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<f32>, EmbedError> {
        let ids = self.tokenize(texts)?;
        self.embed_ids(&ids)
    }

    /// Embeds pre-tokenised sequences (see [`Embedder::tokenize`]).
    pub fn embed_ids(&self, ids: &[Vec<u32>]) -> Result<Vec<f32>, EmbedError> {
        let dim = self.dim();
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![0.0f32; ids.len() * dim];
        let mut start = 0;
        while start < order.len() {
            let mut end = start;
            let mut tokens = 0;
            while end < order.len() && (end == start || tokens + ids[order[end]].len() <= TOKENS_PER_BATCH) {
                tokens += ids[order[end]].len();
                end += 1;
            }
            let batch: Vec<Vec<u32>> = order[start..end].iter().map(|&i| ids[i].clone()).collect();
            let vecs = self.bert.embed_packed(&batch)?;
            for (k, &i) in order[start..end].iter().enumerate() {
                out[i * dim..(i + 1) * dim].copy_from_slice(&vecs[k * dim..(k + 1) * dim]);
            }
            start = end;
        }
        Ok(out)
    }
}
