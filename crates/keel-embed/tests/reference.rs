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
