//! Hybrid retrieval over the current corpus: BM25 (tantivy, on disk) and dense vectors
//! (in memory), fused into one ranking.
//!
//! Invariant: the index is derived from the store. At load, if the BM25 index was committed
//! for another corpus version than the store's, it is rebuilt from the stored chunks.

mod bm25;
mod fusion;

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use crate::config::{Fusion, RetrievalConfig};
use crate::store::{ChunkRecord, CorpusVersion, Store, StoreError};

pub use bm25::Bm25;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("BM25 index: {0}")]
    Bm25(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored chunk {id} has a {got}-dimensional vector, expected {want}")]
    Dimension { id: String, got: usize, want: usize },
}

/// A chunk held in memory for retrieval and answering.
#[derive(Debug, Clone)]
pub struct ChunkMeta {
    pub id: String,
    pub doc_id: String,
    pub title: String,
    pub heading: String,
    pub text: String,
    pub start_char: u64,
    pub end_char: u64,
}

/// One retrieved chunk.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    #[serde(skip)]
    pub row: usize,
    /// Fused score (higher is better; scale depends on the fusion method).
    pub score: f32,
    /// Cosine similarity of query and chunk (the relevance floor applies to this).
    pub cosine: f32,
    /// Raw BM25 score (0 when BM25 did not retrieve the chunk).
    pub bm25: f32,
}

pub struct Index {
    chunks: Vec<ChunkMeta>,
    vectors: Vec<f32>,
    /// The same vectors as `i8` for the full scan; `vectors` re-scores the candidates exactly.
    quantized: keel_embed::vecmath::QuantizedRows,
    dim: usize,
    bm25: Bm25,
    by_key: HashMap<u64, usize>,
    corpus: Option<CorpusVersion>,
}

/// A stable 64-bit key for a chunk id (stored as a BM25 fast field).
pub fn chunk_key(id: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(id.as_bytes());
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Text indexed by BM25 and embedded for dense retrieval: title, heading path, body.
pub fn index_text(title: &str, heading: &str, body: &str) -> String {
    let mut s = String::with_capacity(title.len() + heading.len() + body.len() + 4);
    s.push_str(title);
    if !heading.is_empty() && heading != title {
        s.push_str(". ");
        s.push_str(heading);
    }
    s.push('\n');
    s.push_str(body);
    s
}

impl Index {
    /// Loads every chunk from the store and opens (or rebuilds) the BM25 index in `data_dir`.
    pub async fn load(store: &Store, data_dir: &Path, dim: usize) -> Result<Self, IndexError> {
        let corpus = store.docs.current_corpus().await?;
        let records = store.docs.all_chunks().await?;
        let version = corpus.as_ref().map(|c| c.version.clone()).unwrap_or_default();
        let bm25_dir = data_dir.join("bm25");
        // Opening (or rebuilding) BM25 and laying out the vectors are blocking work; the
        // records move into the task rather than being copied.
        tokio::task::spawn_blocking(move || {
            let bm25 = Bm25::open_or_rebuild(&bm25_dir, &version, &records)?;
            Self::from_records(records, dim, bm25, corpus)
        })
        .await
        .map_err(|e| IndexError::Bm25(e.to_string()))?
    }

    /// Builds an index over `records` with its BM25 part in `bm25_dir` (benchmarks use this to
    /// measure scale without ingesting).
    pub fn build(
        records: Vec<ChunkRecord>,
        dim: usize,
        bm25_dir: &Path,
        corpus: Option<CorpusVersion>,
    ) -> Result<Self, IndexError> {
        let mut bm25 = Bm25::open(bm25_dir)?;
        let version = corpus.as_ref().map(|c| c.version.clone()).unwrap_or_default();
        bm25.rebuild(&version, &records)?;
        Self::from_records(records, dim, bm25, corpus)
    }

    fn from_records(
        records: Vec<ChunkRecord>,
        dim: usize,
        bm25: Bm25,
        corpus: Option<CorpusVersion>,
    ) -> Result<Self, IndexError> {
        let mut vectors = Vec::with_capacity(records.len() * dim);
        let mut chunks = Vec::with_capacity(records.len());
        let mut by_key = HashMap::with_capacity(records.len());
        for r in records {
            if r.embedding.len() != dim {
                return Err(IndexError::Dimension { id: r.id, got: r.embedding.len(), want: dim });
            }
            vectors.extend_from_slice(&r.embedding);
            by_key.insert(chunk_key(&r.id), chunks.len());
            chunks.push(ChunkMeta {
                id: r.id,
                doc_id: r.doc_id,
                title: r.title,
                heading: r.heading,
                text: r.text,
                start_char: r.start_char,
                end_char: r.end_char,
            });
        }
        let quantized = keel_embed::vecmath::QuantizedRows::from_f32(&vectors, dim);
        Ok(Self { chunks, vectors, quantized, dim, bm25, by_key, corpus })
    }

    pub fn corpus(&self) -> Option<&CorpusVersion> {
        self.corpus.as_ref()
    }

    pub fn corpus_version(&self) -> String {
        self.corpus.as_ref().map(|c| c.version.clone()).unwrap_or_else(|| "empty".into())
    }

    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The first chunk of a document (a linear scan: for the rare lookups by document).
    pub fn first_chunk_of(&self, doc_id: &str) -> Option<&ChunkMeta> {
        self.chunks.iter().find(|c| c.doc_id == doc_id)
    }

    pub fn chunk(&self, row: usize) -> Option<&ChunkMeta> {
        self.chunks.get(row)
    }

    /// Ranks chunks for a query: BM25 and dense candidates, fused, best `top` returned.
    pub fn search(
        &self,
        query: &str,
        query_vec: &[f32],
        top: usize,
        cfg: &RetrievalConfig,
    ) -> Result<Vec<Hit>, IndexError> {
        let depth = cfg.candidates.max(top);
        let lexical: Vec<(usize, f32)> = self
            .bm25
            .search(query, depth)?
            .into_iter()
            .filter_map(|(key, score)| self.by_key.get(&key).map(|&row| (row, score)))
            .collect();
        let cosine =
            |row: usize| keel_embed::vecmath::dot(&self.vectors[row * self.dim..(row + 1) * self.dim], query_vec);
        // Scan the quantised rows (a little deeper than needed), then re-score exactly.
        let mut dense: Vec<(usize, f32)> = self
            .quantized
            .top_n(query_vec, depth + depth / 4 + 8)
            .into_iter()
            .map(|(row, _)| (row, cosine(row)))
            .collect();
        dense.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        dense.truncate(depth);
        let fused = match cfg.fusion {
            Fusion::Weighted { dense_weight } => fusion::weighted(&lexical, &dense, cosine, dense_weight),
            Fusion::Rrf { k } => fusion::rrf(&lexical, &dense, cosine, k),
        };
        Ok(fused.into_iter().take(top).collect())
    }
}
