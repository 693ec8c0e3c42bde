//! Low-rank adapters (LoRA) merged into a loaded encoder: a task-tuned copy of the model (say,
//! an injection classifier's encoder) ships as a few hundred kilobytes of `A`/`B` factors
//! instead of a second 90 MB weight file, and runs at the base model's speed once merged.
//!
//! Adapter format (safetensors, F32 or BF16): for an encoder layer `l` and one of the linear
//! maps below, `lora.{l}.{linear}.a` is `[r, in]` and `lora.{l}.{linear}.b` is `[out, r]`, with
//! the LoRA scale already multiplied into `b`; the merged weight is `W + B·A`.

use safetensors::{Dtype, SafeTensors};

use crate::EmbedError;

/// The linear maps an adapter may touch, by their names in the base model.
pub(crate) const LINEARS: [&str; 6] = [
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
];

/// A weight kept transposed (`[in, out]` row-major with `stride` floats per row), its output
/// columns starting at `col`.
pub(crate) struct Target<'a> {
    pub data: &'a mut [f32],
    pub inputs: usize,
    pub outputs: usize,
    pub stride: usize,
    pub col: usize,
}

/// A factor of the adapter as f32, with its shape.
fn factor(st: &SafeTensors<'_>, name: &str) -> Result<(Vec<f32>, usize, usize), EmbedError> {
    let view = st.tensor(name).map_err(|e| EmbedError::Model(format!("adapter: `{name}`: {e}")))?;
    let shape = view.shape();
    let [rows, cols] = shape[..] else {
        return Err(EmbedError::Model(format!("adapter: `{name}` has shape {shape:?}, expected two dimensions")));
    };
    let data = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::BF16 => {
            data.chunks_exact(2).map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)).collect()
        }
        other => return Err(EmbedError::Model(format!("adapter: `{name}` is {other:?}, expected F32 or BF16"))),
    };
    if values.len() != rows * cols {
        return Err(EmbedError::Model(format!("adapter: `{name}` holds {} values for shape {shape:?}", values.len())));
    }
    Ok((values, rows, cols))
}

/// Adds `B·A` of one adapter entry to its target weight.
pub(crate) fn merge_one(st: &SafeTensors<'_>, key: &str, target: Target<'_>) -> Result<(), EmbedError> {
    let (a, r, a_in) = factor(st, &format!("{key}.a"))?;
    let (b, b_out, b_r) = factor(st, &format!("{key}.b"))?;
    if a_in != target.inputs || b_out != target.outputs || b_r != r {
        return Err(EmbedError::Model(format!(
            "adapter: `{key}` is [{b_out}, {b_r}]·[{r}, {a_in}], the model's weight is [{}, {}]",
            target.outputs, target.inputs
        )));
    }
    for i in 0..target.inputs {
        let row = &mut target.data[i * target.stride + target.col..i * target.stride + target.col + target.outputs];
        for (o, w) in row.iter_mut().enumerate() {
            let mut d = 0.0f32;
            for k in 0..r {
                d += b[o * r + k] * a[k * a_in + i];
            }
            *w += d;
        }
    }
    Ok(())
}

/// The `(layer, linear)` pairs an adapter holds, checked against the model's depth.
pub(crate) fn entries(st: &SafeTensors<'_>, layers: usize) -> Result<Vec<(usize, &'static str)>, EmbedError> {
    let mut out = Vec::new();
    for name in st.names() {
        let Some(rest) = name.strip_prefix("lora.").and_then(|r| r.strip_suffix(".a")) else {
            if name.starts_with("lora.") && name.ends_with(".b") {
                continue;
            }
            return Err(EmbedError::Model(format!(
                "adapter: unexpected tensor `{name}` (expected lora.<layer>.<linear>.a/.b)"
            )));
        };
        let (layer, linear) =
            rest.split_once('.').ok_or_else(|| EmbedError::Model(format!("adapter: `{name}` names no layer")))?;
        let layer: usize = layer
            .parse()
            .map_err(|_| EmbedError::Model(format!("adapter: `{name}`: layer `{layer}` is not a number")))?;
        if layer >= layers {
            return Err(EmbedError::Model(format!("adapter: `{name}`: the model has {layers} layers")));
        }
        let linear = LINEARS
            .iter()
            .find(|l| **l == linear)
            .ok_or_else(|| EmbedError::Model(format!("adapter: `{name}`: unknown linear map `{linear}`")))?;
        out.push((layer, *linear));
    }
    if out.is_empty() {
        return Err(EmbedError::Model("adapter: no lora.<layer>.<linear>.a tensors".into()));
    }
    out.sort_unstable();
    Ok(out)
}

pub(crate) fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>, EmbedError> {
    SafeTensors::deserialize(bytes).map_err(|e| EmbedError::Model(format!("adapter: {e}")))
}
