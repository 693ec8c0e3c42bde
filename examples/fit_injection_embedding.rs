//! Fits the input guard's embedding classifier: a logistic regression over the all-MiniLM-L6-v2
//! embedding of an input (the same vector the pipeline computes for retrieval), trained on the
//! train/dev injection files only, thresholds chosen on held-out folds of those files.
//!
//! ```sh
//! cargo run --release --example fit_injection_embedding -- [--data /work/shared/data/injection] [--dry-run]
//! ```
//! Writes `crates/keel-guard/data/embedding_classifier.json`. Embeddings are cached under
//! `$TMPDIR/keel-injection-embeddings/` so refits are quick. Deterministic (fixed seed, fixed
//! fold assignment by record index).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Training files (relative to the data dir): (file, which labels to use, group for FPR limits).
const FILES: &[(&str, &str)] = &[
    ("deepset/train.jsonl", "mixed"),
    ("jackhhao/train.jsonl", "mixed"),
    ("benign/banking77_train.jsonl", "plain"),
    ("benign/clinc150_dev.jsonl", "plain"),
    ("notinject/wildguard_benign_dev.jsonl", "hard"),
    ("notinject/valid_mixed_dev.jsonl", "hard"),
];
/// BANKING77 train is large and uniform: every 3rd record is enough.
const BANKING_STRIDE: usize = 3;
const FOLDS: usize = 5;
const EPOCHS: usize = 60;
const L2: f32 = 1e-4;
const LR: f32 = 0.05;
/// Flag threshold: the lowest with held-out FPR ≤ these (plain benign, hard negatives).
const MAX_FPR_PLAIN: f64 = 0.01;
const MAX_FPR_HARD: f64 = 0.02;

struct Rec {
    text: String,
    attack: bool,
    group: &'static str,
}

fn load(dir: &Path) -> Result<Vec<Rec>> {
    let mut out = Vec::new();
    for (file, group) in FILES {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            if file.starts_with("benign/banking77") && i % BANKING_STRIDE != 0 {
                continue;
            }
            let v: Value = serde_json::from_str(line).with_context(|| format!("{}:{}", path.display(), i + 1))?;
            let attack = v["label"].as_str() != Some("benign");
            let group = if attack { "attack" } else { group };
            out.push(Rec { text: v["text"].as_str().unwrap_or_default().to_string(), attack, group });
        }
    }
    Ok(out)
}

/// Embeds every record's normalised text, through an on-disk cache keyed by the text.
fn embed_all(recs: &[Rec], cache_dir: &Path) -> Result<Vec<Vec<f32>>> {
    std::fs::create_dir_all(cache_dir)?;
    let cache_file = cache_dir.join("vectors.jsonl");
    let mut cache: HashMap<String, Vec<f32>> = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(&cache_file) {
        for line in text.lines() {
            if let Ok((k, v)) = serde_json::from_str::<(String, Vec<f32>)>(line) {
                cache.insert(k, v);
            }
        }
    }
    let texts: Vec<String> = recs.iter().map(|r| keel::guardrails::embedding_text(&r.text)).collect();
    let missing: Vec<&String> = {
        let mut seen = std::collections::HashSet::new();
        texts.iter().filter(|t| !cache.contains_key(*t) && seen.insert(*t)).collect()
    };
    if !missing.is_empty() {
        let config = keel::config::Config::default();
        let embedder =
            keel::app::App::load_embedder(&config).context("the embedding model (run `keel models fetch`)")?;
        let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&cache_file)?;
        eprintln!("embedding {} texts (cached in {})", missing.len(), cache_file.display());
        for (n, batch) in missing.chunks(32).enumerate() {
            let refs: Vec<&str> = batch.iter().map(|s| s.as_str()).collect();
            let flat = embedder.embed(&refs)?;
            for (t, v) in batch.iter().zip(flat.chunks_exact(embedder.dim())) {
                use std::io::Write;
                writeln!(out, "{}", serde_json::to_string(&(t, v))?)?;
                cache.insert((*t).clone(), v.to_vec());
            }
            if n % 20 == 0 {
                eprintln!("  {}/{}", (n + 1) * 32, missing.len());
            }
        }
    }
    texts.iter().map(|t| cache.get(t).cloned().context("a vector is missing from the cache")).collect()
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Plain SGD with L2 and class weights; deterministic order (a fixed permutation per epoch).
fn fit(x: &[&Vec<f32>], y: &[bool]) -> (Vec<f32>, f32) {
    let dim = x.first().map_or(0, |v| v.len());
    let (mut w, mut b) = (vec![0.0f32; dim], 0.0f32);
    let pos = y.iter().filter(|a| **a).count().max(1) as f32;
    let neg = (y.len() as f32 - pos).max(1.0);
    let (wp, wn) = (y.len() as f32 / (2.0 * pos), y.len() as f32 / (2.0 * neg));
    let mut order: Vec<usize> = (0..x.len()).collect();
    let mut seed = 42u64;
    for epoch in 0..EPOCHS {
        for i in (1..order.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let lr = LR / (1.0 + epoch as f32 * 0.1);
        for &i in &order {
            let z: f32 = x[i].iter().zip(&w).map(|(a, b)| a * b).sum::<f32>() + b;
            let g = (sigmoid(z) - if y[i] { 1.0 } else { 0.0 }) * if y[i] { wp } else { wn };
            for (wj, xj) in w.iter_mut().zip(x[i].iter()) {
                *wj -= lr * (g * xj + L2 * *wj);
            }
            b -= lr * g;
        }
    }
    (w, b)
}

fn score(w: &[f32], b: f32, v: &[f32]) -> f32 {
    sigmoid(v.iter().zip(w).map(|(a, c)| a * c).sum::<f32>() + b)
}

fn main() -> Result<()> {
    let mut data = PathBuf::from("/work/shared/data/injection");
    let mut dry = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => data = PathBuf::from(args.next().context("--data needs a folder")?),
            "--dry-run" => dry = true,
            other => bail!("unknown argument {other}"),
        }
    }
    let recs = load(&data)?;
    let vecs = embed_all(&recs, &std::env::temp_dir().join("keel-injection-embeddings"))?;
    // Out-of-fold scores for threshold choice.
    let mut oof = vec![0.0f32; recs.len()];
    for k in 0..FOLDS {
        let train: Vec<usize> = (0..recs.len()).filter(|i| i % FOLDS != k).collect();
        let x: Vec<&Vec<f32>> = train.iter().map(|&i| &vecs[i]).collect();
        let y: Vec<bool> = train.iter().map(|&i| recs[i].attack).collect();
        let (w, b) = fit(&x, &y);
        for i in (0..recs.len()).filter(|i| i % FOLDS == k) {
            oof[i] = score(&w, b, &vecs[i]);
        }
    }
    let rate = |group: &str, t: f32| {
        let g: Vec<usize> = (0..recs.len()).filter(|&i| recs[i].group == group).collect();
        g.iter().filter(|&&i| oof[i] >= t).count() as f64 / g.len().max(1) as f64
    };
    let mut flag = 0.99f32;
    let mut t = 0.99f32;
    while t > 0.3 {
        if rate("plain", t) <= MAX_FPR_PLAIN && rate("hard", t) <= MAX_FPR_HARD && rate("mixed", t) <= MAX_FPR_HARD {
            flag = t;
        } else {
            break;
        }
        t -= 0.01;
    }
    let block = (flag + 0.5 * (1.0 - flag)).min(0.99);
    eprintln!(
        "held-out: flag {flag:.2}: TPR {:.3}, FPR plain {:.4}, hard {:.4}, mixed-benign {:.4}; block {block:.2}: TPR {:.3}",
        rate("attack", flag),
        rate("plain", flag),
        rate("hard", flag),
        rate("mixed", flag),
        rate("attack", block)
    );
    let x: Vec<&Vec<f32>> = vecs.iter().collect();
    let y: Vec<bool> = recs.iter().map(|r| r.attack).collect();
    let (w, b) = fit(&x, &y);
    let model = json!({
        "version": "emb-lr-0.1.0-s42",
        "model": "all-MiniLM-L6-v2 on keel::guardrails::embedding_text(input)",
        "provenance": format!("fitted by examples/fit_injection_embedding.rs on {} (banking77 every {BANKING_STRIDE}rd record), \
            {EPOCHS} epochs, L2 {L2}, seed 42; thresholds from {FOLDS}-fold held-out scores: FPR plain <= {MAX_FPR_PLAIN}, hard <= {MAX_FPR_HARD}",
            FILES.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")),
        "flag": (flag * 100.0).round() / 100.0,
        "block": (block * 100.0).round() / 100.0,
        "bias": b,
        "weights": w.iter().map(|v| (v * 1e5).round() / 1e5).collect::<Vec<f32>>(),
    });
    if !dry {
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/keel-guard/data/embedding_classifier.json");
        std::fs::write(&out, serde_json::to_string(&model)? + "\n")?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}
