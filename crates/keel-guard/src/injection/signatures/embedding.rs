//! The optional embedding layer: the caller supplies vectors for the signatures (once) and
//! for the input (per request, e.g. the query vector it already computed for retrieval).

use super::matcher::SignatureHit;
use super::store::{SignatureKind, Signatures};
use crate::error::GuardError;

/// Embeddings of the active signatures, in the order of [`Signatures::active`].
pub struct SignatureEmbeddings {
    ids: Vec<String>,
    categories: Vec<String>,
    kinds: Vec<SignatureKind>,
    vectors: Vec<Vec<f32>>,
}

impl SignatureEmbeddings {
    /// Texts to embed, in the order [`SignatureEmbeddings::new`] expects.
    pub fn texts_to_embed(sigs: &Signatures) -> Vec<&str> {
        sigs.active().map(|s| s.text.as_str()).collect()
    }

    /// Pair `vectors` (one per active signature, same order as
    /// [`SignatureEmbeddings::texts_to_embed`]) with the signatures. Vectors need not be
    /// normalised; all must have the same dimension.
    pub fn new(sigs: &Signatures, vectors: Vec<Vec<f32>>) -> Result<Self, GuardError> {
        let active: Vec<_> = sigs.active().collect();
        if active.len() != vectors.len() {
            return Err(GuardError::Embeddings(format!(
                "{} vectors for {} active signatures",
                vectors.len(),
                active.len()
            )));
        }
        let dim = vectors.first().map_or(0, Vec::len);
        if vectors.iter().any(|v| v.len() != dim || dim == 0) {
            return Err(GuardError::Embeddings("vectors must be non-empty and of equal dimension".into()));
        }
        let vectors = vectors.into_iter().map(normalised).collect();
        Ok(Self {
            ids: active.iter().map(|s| s.id.clone()).collect(),
            categories: active.iter().map(|s| s.category.clone()).collect(),
            kinds: active.iter().map(|s| s.kind).collect(),
            vectors,
        })
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.vectors.first().map_or(0, Vec::len)
    }

    /// Nearest attack and benign signatures of the input vector (cosine; negative similarities
    /// count as zero). A vector of the wrong dimension yields an empty hit.
    pub fn nearest(&self, input: &[f32]) -> SignatureHit {
        let mut hit = SignatureHit::default();
        if input.len() != self.dim() {
            return hit;
        }
        let q = normalised(input.to_vec());
        for (i, v) in self.vectors.iter().enumerate() {
            let sim: f32 = v.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>().max(0.0);
            match self.kinds[i] {
                SignatureKind::Attack if sim > hit.attack_sim => {
                    hit.attack_sim = sim;
                    hit.attack_id = Some(self.ids[i].clone());
                    hit.attack_category = Some(self.categories[i].clone());
                }
                SignatureKind::Benign if sim > hit.benign_sim => {
                    hit.benign_sim = sim;
                    hit.benign_id = Some(self.ids[i].clone());
                }
                _ => {}
            }
        }
        hit
    }
}

fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}
