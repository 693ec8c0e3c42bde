//! The BERT encoder forward pass (inference only), with sequences packed without padding.
//!
//! Dense layers run on every token of a batch at once (one large matrix product each);
//! attention runs per sequence and head, so no token ever attends to padding and no
//! compute is spent on it.

use rayon::prelude::*;
use safetensors::SafeTensors;

use crate::lora::{self, Target};
use crate::matmul::{matmul, Threads, View};
use crate::EmbedError;

/// Shape constants read from `config.json`.
#[derive(Debug, Clone)]
pub struct BertConfig {
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub max_positions: usize,
    pub vocab: usize,
    pub layer_norm_eps: f32,
}

impl BertConfig {
    pub fn from_json(text: &str) -> Result<Self, EmbedError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| EmbedError::Model(format!("config.json: {e}")))?;
        let get = |key: &str| -> Result<usize, EmbedError> {
            v.get(key)
                .and_then(serde_json::Value::as_u64)
                .map(|n| n as usize)
                .ok_or_else(|| EmbedError::Model(format!("config.json: missing integer `{key}`")))
        };
        let eps = v.get("layer_norm_eps").and_then(serde_json::Value::as_f64).unwrap_or(1e-12) as f32;
        let cfg = Self {
            hidden: get("hidden_size")?,
            heads: get("num_attention_heads")?,
            intermediate: get("intermediate_size")?,
            layers: get("num_hidden_layers")?,
            max_positions: get("max_position_embeddings")?,
            vocab: get("vocab_size")?,
            layer_norm_eps: eps,
        };
        if cfg.heads == 0 || !cfg.hidden.is_multiple_of(cfg.heads) {
            return Err(EmbedError::Model("config.json: hidden_size is not a multiple of num_attention_heads".into()));
        }
        Ok(cfg)
    }
}

/// One attention head's output for one sequence: (sequence, head, `len × head_dim` values).
type HeadContext = (usize, usize, Vec<f32>);

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

struct Layer {
    /// Query, key and value projections stacked: `[3·hidden, hidden]`.
    qkv_w: Vec<f32>,
    qkv_b: Vec<f32>,
    attn_out_w: Vec<f32>,
    attn_out_b: Vec<f32>,
    attn_ln: LayerNorm,
    inter_w: Vec<f32>,
    inter_b: Vec<f32>,
    out_w: Vec<f32>,
    out_b: Vec<f32>,
    out_ln: LayerNorm,
}

/// Loaded BERT weights.
pub struct Bert {
    cfg: BertConfig,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type0: Vec<f32>,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
}

fn tensor(st: &SafeTensors<'_>, name: &str, len: usize) -> Result<Vec<f32>, EmbedError> {
    let view = st.tensor(name).map_err(|e| EmbedError::Model(format!("model.safetensors: `{name}`: {e}")))?;
    if view.dtype() != safetensors::Dtype::F32 {
        return Err(EmbedError::Model(format!("model.safetensors: `{name}` is {:?}, expected F32", view.dtype())));
    }
    let data = view.data();
    if data.len() < len * 4 {
        return Err(EmbedError::Model(format!(
            "model.safetensors: `{name}` has {} values, expected {len}",
            data.len() / 4
        )));
    }
    Ok(data[..len * 4].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major.
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0f32; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

impl Bert {
    pub fn load(cfg: BertConfig, safetensors_bytes: &[u8]) -> Result<Self, EmbedError> {
        let st = SafeTensors::deserialize(safetensors_bytes)
            .map_err(|e| EmbedError::Model(format!("model.safetensors: {e}")))?;
        let (h, i) = (cfg.hidden, cfg.intermediate);
        // Some exports prefix every name with `bert.`; accept both.
        let prefix = if st.names().iter().any(|n| n.starts_with("bert.")) { "bert." } else { "" };
        let t = |name: &str, len: usize| tensor(&st, &format!("{prefix}{name}"), len);
        let ln = |name: &str| -> Result<LayerNorm, EmbedError> {
            Ok(LayerNorm { weight: t(&format!("{name}.weight"), h)?, bias: t(&format!("{name}.bias"), h)? })
        };
        let mut layers = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let p = format!("encoder.layer.{l}");
            let mut qkv_w = t(&format!("{p}.attention.self.query.weight"), h * h)?;
            qkv_w.extend(t(&format!("{p}.attention.self.key.weight"), h * h)?);
            qkv_w.extend(t(&format!("{p}.attention.self.value.weight"), h * h)?);
            let mut qkv_b = t(&format!("{p}.attention.self.query.bias"), h)?;
            qkv_b.extend(t(&format!("{p}.attention.self.key.bias"), h)?);
            qkv_b.extend(t(&format!("{p}.attention.self.value.bias"), h)?);
            // Linear weights are kept transposed (`[in, out]`), the layout gemm consumes
            // without repacking on every call: this is what makes single-query latency low.
            layers.push(Layer {
                qkv_w: transpose(&qkv_w, 3 * h, h),
                qkv_b,
                attn_out_w: transpose(&t(&format!("{p}.attention.output.dense.weight"), h * h)?, h, h),
                attn_out_b: t(&format!("{p}.attention.output.dense.bias"), h)?,
                attn_ln: ln(&format!("{p}.attention.output.LayerNorm"))?,
                inter_w: transpose(&t(&format!("{p}.intermediate.dense.weight"), i * h)?, i, h),
                inter_b: t(&format!("{p}.intermediate.dense.bias"), i)?,
                out_w: transpose(&t(&format!("{p}.output.dense.weight"), h * i)?, h, i),
                out_b: t(&format!("{p}.output.dense.bias"), h)?,
                out_ln: ln(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Self {
            word: t("embeddings.word_embeddings.weight", cfg.vocab * h)?,
            position: t("embeddings.position_embeddings.weight", cfg.max_positions * h)?,
            token_type0: t("embeddings.token_type_embeddings.weight", h)?,
            emb_ln: ln("embeddings.LayerNorm")?,
            layers,
            cfg,
        })
    }

    /// Adds a LoRA adapter's `B·A` to the weights it names (see `lora.rs` for the format).
    pub fn merge_lora(&mut self, adapter: &[u8]) -> Result<(), EmbedError> {
        let st = lora::parse(adapter)?;
        let entries = lora::entries(&st, self.layers.len())?;
        let (h, i) = (self.cfg.hidden, self.cfg.intermediate);
        for &(l, linear) in &entries {
            let layer = &mut self.layers[l];
            let target = match linear {
                "attention.self.query" => {
                    Target { data: &mut layer.qkv_w, inputs: h, outputs: h, stride: 3 * h, col: 0 }
                }
                "attention.self.key" => Target { data: &mut layer.qkv_w, inputs: h, outputs: h, stride: 3 * h, col: h },
                "attention.self.value" => {
                    Target { data: &mut layer.qkv_w, inputs: h, outputs: h, stride: 3 * h, col: 2 * h }
                }
                "attention.output.dense" => {
                    Target { data: &mut layer.attn_out_w, inputs: h, outputs: h, stride: h, col: 0 }
                }
                "intermediate.dense" => Target { data: &mut layer.inter_w, inputs: h, outputs: i, stride: i, col: 0 },
                // "output.dense": `entries` admits only `lora::LINEARS`.
                _ => Target { data: &mut layer.out_w, inputs: i, outputs: h, stride: h, col: 0 },
            };
            lora::merge_one(&st, &format!("lora.{l}.{linear}"), target)?;
        }
        Ok(())
    }

    pub fn max_positions(&self) -> usize {
        self.cfg.max_positions
    }

    pub fn hidden(&self) -> usize {
        self.cfg.hidden
    }

    /// Mean-pooled, L2-normalised sentence vectors, `hidden` floats per sequence.
    pub fn embed_packed(&self, seqs: &[Vec<u32>]) -> Result<Vec<f32>, EmbedError> {
        let h = self.cfg.hidden;
        let mut offsets = Vec::with_capacity(seqs.len() + 1);
        offsets.push(0usize);
        for s in seqs {
            if s.is_empty() || s.len() > self.cfg.max_positions {
                return Err(EmbedError::Input(format!(
                    "sequence of {} tokens (1..={} allowed)",
                    s.len(),
                    self.cfg.max_positions
                )));
            }
            offsets.push(offsets[offsets.len() - 1] + s.len());
        }
        let total = offsets[offsets.len() - 1];

        // Embeddings: word + position + token type 0, then LayerNorm.
        let mut x = vec![0.0f32; total * h];
        for (s, ids) in seqs.iter().enumerate() {
            for (p, &id) in ids.iter().enumerate() {
                let id = id as usize;
                if id >= self.cfg.vocab {
                    return Err(EmbedError::Input(format!("token id {id} outside the vocabulary")));
                }
                let row = &mut x[(offsets[s] + p) * h..(offsets[s] + p + 1) * h];
                let w = &self.word[id * h..(id + 1) * h];
                let pe = &self.position[p * h..(p + 1) * h];
                for j in 0..h {
                    row[j] = w[j] + pe[j] + self.token_type0[j];
                }
            }
        }
        layer_norm(&mut x, h, &self.emb_ln, self.cfg.layer_norm_eps);

        for layer in &self.layers {
            self.layer_forward(layer, &mut x, &offsets)?;
        }

        // Mean pooling per sequence, then L2 normalisation.
        let mut out = vec![0.0f32; seqs.len() * h];
        for s in 0..seqs.len() {
            let dst = &mut out[s * h..(s + 1) * h];
            let n = (offsets[s + 1] - offsets[s]) as f32;
            for row in x[offsets[s] * h..offsets[s + 1] * h].chunks_exact(h) {
                for (d, v) in dst.iter_mut().zip(row) {
                    *d += v;
                }
            }
            let norm = dst.iter().map(|v| (v / n) * (v / n)).sum::<f32>().sqrt().max(1e-12);
            for d in dst.iter_mut() {
                *d = *d / n / norm;
            }
        }
        Ok(out)
    }

    fn layer_forward(&self, layer: &Layer, x: &mut [f32], offsets: &[usize]) -> Result<(), EmbedError> {
        let h = self.cfg.hidden;
        let heads = self.cfg.heads;
        let hd = h / heads;
        let total = x.len() / h;
        let eps = self.cfg.layer_norm_eps;

        let qkv = linear(x, total, h, &layer.qkv_w, &layer.qkv_b, 3 * h)?;

        // Attention, one task per (sequence, head).
        let scale = 1.0 / (hd as f32).sqrt();
        let tasks: Vec<(usize, usize)> =
            (0..offsets.len() - 1).flat_map(|s| (0..heads).map(move |head| (s, head))).collect();
        let parts: Vec<Result<HeadContext, EmbedError>> = tasks
            .par_iter()
            .map(|&(s, head)| {
                let (start, len) = (offsets[s], offsets[s + 1] - offsets[s]);
                let base = &qkv[start * 3 * h..];
                let q = View { data: &base[head * hd..], rows: len, cols: hd, row_stride: 3 * h, col_stride: 1 };
                let k_t = View { data: &base[h + head * hd..], rows: hd, cols: len, row_stride: 1, col_stride: 3 * h };
                let v =
                    View { data: &base[2 * h + head * hd..], rows: len, cols: hd, row_stride: 3 * h, col_stride: 1 };
                let mut scores = vec![0.0f32; len * len];
                if !matmul(&mut scores, len, q, k_t, Threads::One) {
                    return Err(EmbedError::Internal("attention scores shape"));
                }
                for row in scores.chunks_exact_mut(len) {
                    softmax_scaled(row, scale);
                }
                let mut ctx = vec![0.0f32; len * hd];
                if !matmul(&mut ctx, hd, View::row_major(&scores, len, len), v, Threads::One) {
                    return Err(EmbedError::Internal("attention context shape"));
                }
                Ok((s, head, ctx))
            })
            .collect();
        let mut ctx = vec![0.0f32; total * h];
        for part in parts {
            let (s, head, c) = part?;
            for (p, row) in c.chunks_exact(hd).enumerate() {
                let at = (offsets[s] + p) * h + head * hd;
                ctx[at..at + hd].copy_from_slice(row);
            }
        }

        let attn = linear(&ctx, total, h, &layer.attn_out_w, &layer.attn_out_b, h)?;
        add_in_place(x, &attn);
        layer_norm(x, h, &layer.attn_ln, eps);

        let i = self.cfg.intermediate;
        let mut inter = linear(x, total, h, &layer.inter_w, &layer.inter_b, i)?;
        inter.par_chunks_mut(4096).for_each(|c| c.iter_mut().for_each(|v| *v = gelu(*v)));
        let out = linear(&inter, total, i, &layer.out_w, &layer.out_b, h)?;
        add_in_place(x, &out);
        layer_norm(x, h, &layer.out_ln, eps);
        Ok(())
    }
}

/// `x[rows×in] · w + b`, where `w` is `[in, out]` row-major (PyTorch's weight, transposed).
fn linear(x: &[f32], rows: usize, inp: usize, w: &[f32], b: &[f32], out: usize) -> Result<Vec<f32>, EmbedError> {
    let mut y = vec![0.0f32; rows * out];
    if !matmul(&mut y, out, View::row_major(x, rows, inp), View::row_major(w, inp, out), Threads::All) {
        return Err(EmbedError::Internal("linear layer shape"));
    }
    y.par_chunks_mut(out).for_each(|row| row.iter_mut().zip(b).for_each(|(v, b)| *v += b));
    Ok(y)
}

fn add_in_place(x: &mut [f32], y: &[f32]) {
    x.par_chunks_mut(4096).zip(y.par_chunks(4096)).for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a += b));
}

fn layer_norm(x: &mut [f32], h: usize, ln: &LayerNorm, eps: f32) {
    x.par_chunks_mut(h).for_each(|row| {
        let mean = row.iter().sum::<f32>() / h as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, w), b) in row.iter_mut().zip(&ln.weight).zip(&ln.bias) {
            *v = (*v - mean) * inv * w + b;
        }
    });
}

fn softmax_scaled(row: &mut [f32], scale: f32) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v)) * scale;
    row.iter_mut().for_each(|v| *v = fast_exp(*v * scale - max));
    let sum: f32 = row.iter().sum();
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// `e^x` to about 2e-7 relative error, branch-free so loops over slices vectorise
/// (the library `expf` is a call per element and dominated attention time).
#[inline(always)]
pub(crate) fn fast_exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds to the nearest integer and leaves it in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + SHIFTER;
    let n = t - SHIFTER;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let bits = (t.to_bits().wrapping_sub(0x4B40_0000) as i32).wrapping_add(127) << 23;
    p * f32::from_bits(bits as u32)
}

/// erf(x) by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), branch-free.
#[inline(always)]
fn fast_erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * fast_exp(-a * a);
    y.copysign(x)
}

/// The exact (erf) GELU that BERT uses.
#[inline(always)]
fn gelu(v: f32) -> f32 {
    0.5 * v * (1.0 + fast_erf(v * std::f32::consts::FRAC_1_SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::{fast_erf, fast_exp};

    #[test]
    fn fast_exp_is_accurate_over_the_useful_range() {
        let mut x = -80.0f32;
        while x < 80.0 {
            let (got, want) = (fast_exp(x), x.exp());
            assert!(((got - want) / want).abs() < 1e-6, "exp({x}) = {got}, want {want}");
            x += 0.173;
        }
        assert!(fast_exp(-1000.0) < 1e-37);
    }

    #[test]
    fn fast_erf_matches_libm() {
        let mut x = -6.0f32;
        while x < 6.0 {
            assert!((fast_erf(x) - libm::erff(x)).abs() < 5e-7, "erf({x})");
            x += 0.01;
        }
    }
}
