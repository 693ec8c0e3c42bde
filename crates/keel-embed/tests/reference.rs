//! Our forward pass must reproduce sentence-transformers' embeddings for the same model.
//! The fixture was written by `scripts/reference_embeddings.py` (PyTorch); the model comes
//! from `keel models fetch`. Without the model the test says it skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

use std::path::PathBuf;

fn model_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("KEEL_MODEL_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/keel/models/all-MiniLM-L6-v2")))?;
    dir.join("model.safetensors").is_file().then_some(dir)
}

#[test]
fn embeddings_match_sentence_transformers() {
    let Some(dir) = model_dir() else {
        eprintln!("SKIPPED: no model (run `keel models fetch` or set KEEL_MODEL_DIR)");
        return;
    };
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/reference.json")).expect("fixture is JSON");
    let texts: Vec<&str> = fixture["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let want: Vec<Vec<f32>> = fixture["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect();
    let e = keel_embed::Embedder::load(&dir).expect("model loads");
    let got = e.embed(&texts).expect("embeds");
    let dim = e.dim();
    assert_eq!(dim, 384);
    for (i, w) in want.iter().enumerate() {
        let g = &got[i * dim..(i + 1) * dim];
        let norm_w: f32 = w.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cos: f32 = g.iter().zip(w).map(|(a, b)| a * b).sum::<f32>() / norm_w;
        let max_diff = g.iter().zip(w).map(|(a, b)| (a - b / norm_w).abs()).fold(0.0f32, f32::max);
        assert!(cos > 0.9999, "text {i}: cosine {cos} to the reference");
        assert!(max_diff < 2e-3, "text {i}: max component difference {max_diff}");
    }
    // Batch composition must not change a vector (packing without padding).
    let alone = e.embed(&texts[1..2]).expect("embeds");
    let diff = alone.iter().zip(&got[dim..2 * dim]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "batch vs single differ by {diff}");
}

#[test]
fn a_missing_model_folder_is_named_in_the_error() {
    let err = keel_embed::Embedder::load(std::path::Path::new("/nonexistent/model"))
        .err()
        .unwrap_or_else(|| panic!("loading a missing folder succeeded"));
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/model") && msg.contains("config.json"), "{msg}");
}

/// An adapted model (LoRA factors merged in Rust) must reproduce the vectors PyTorch computes
/// for the same base weights plus `B·A` (fixture written by `scripts/fit_injection_adapter.py
/// export`, from the adapter Keel ships in keel-guard).
#[test]
fn an_adapter_merged_here_matches_pytorch() {
    let Some(dir) = model_dir() else {
        eprintln!("SKIPPED: no model (run `keel models fetch` or set KEEL_MODEL_DIR)");
        return;
    };
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/adapter_reference.json")).expect("fixture is JSON");
    let adapter = include_bytes!("../../keel-guard/data/injection_adapter.safetensors");
    let texts: Vec<&str> = fixture["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let base = keel_embed::Embedder::load(&dir).expect("model loads");
    let tuned =
        keel_embed::Embedder::load_adapted(&dir, adapter).expect("adapter merges").with_max_tokens(128).unwrap();
    let got = tuned.embed(&texts).expect("embeds");
    let plain = base.embed(&texts).expect("embeds");
    for (i, w) in fixture["vectors"].as_array().unwrap().iter().enumerate() {
        let w: Vec<f32> = w.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let g = &got[i * 384..(i + 1) * 384];
        let cos: f32 = g.iter().zip(&w).map(|(a, b)| a * b).sum();
        assert!(cos > 0.9999, "text {i}: cosine {cos} to PyTorch's adapted vector");
        // The adapter changes the model: the base vector is not the adapted one.
        let base_cos: f32 = plain[i * 384..(i + 1) * 384].iter().zip(&w).map(|(a, b)| a * b).sum();
        assert!(base_cos < 0.999, "text {i}: the adapter changed nothing (cosine {base_cos})");
    }
}

#[test]
fn a_broken_adapter_is_refused_with_its_reason() {
    let Some(dir) = model_dir() else {
        eprintln!("SKIPPED: no model (run `keel models fetch` or set KEEL_MODEL_DIR)");
        return;
    };
    let err = |bytes: &[u8]| keel_embed::Embedder::load_adapted(&dir, bytes).err().expect("refused").to_string();
    assert!(err(b"not safetensors").contains("adapter"), "{}", err(b"not safetensors"));
    // A factor whose shape does not fit the layer it names.
    let a = vec![0u8; 4 * 8 * 10];
    let b = vec![0u8; 4 * 384 * 8];
    let tensors = vec![
        (
            "lora.0.attention.self.query.a".to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![8, 10], &a).unwrap(),
        ),
        (
            "lora.0.attention.self.query.b".to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![384, 8], &b).unwrap(),
        ),
    ];
    let bytes = safetensors::serialize(tensors, None).unwrap();
    let msg = err(&bytes);
    assert!(msg.contains("lora.0.attention.self.query") && msg.contains("[384, 384]"), "{msg}");
    // A layer the model does not have.
    let a = vec![0u8; 4 * 8 * 384];
    let tensors = vec![(
        "lora.9.output.dense.a".to_string(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![8, 384], &a).unwrap(),
    )];
    let msg = err(&safetensors::serialize(tensors, None).unwrap());
    assert!(msg.contains("6 layers"), "{msg}");
}
