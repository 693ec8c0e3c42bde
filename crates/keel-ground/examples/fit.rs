//! Fits the shipped grounding model (`src/model.json`) on the dev halves of the target grounding
//! sets, so the weights in the crate can be reproduced:
//!
//! ```text
//! cargo run --release -p keel-ground --example fit -- [--data DIR] [--cv | --cv-per-set] [--out FILE]
//! ```
//!
//! Logistic regression (Newton steps, L2) on standardised features; every dataset weighs the same
//! and both classes weigh the same within a dataset (the metric is balanced accuracy). The global
//! model is fitted on all six dev halves pooled; each per-set profile on its own dev half.
//! `--cv` / `--cv-per-set` print 5-fold cross-validated dev figures of the global / per-set
//! models instead (for feature work; no test file is ever read).

use std::collections::BTreeMap;
use std::path::PathBuf;

use keel_ground::eval::{auroc, baseline_score, best_threshold, load_jsonl, Label, Record};
use keel_ground::{Checker, DatasetThresholds, Model, ModelFile, FEATURE_NAMES};

const SETS: [&str; 6] =
    ["attributionbench", "wice", "factcheck_gpt_stance", "q2_wow", "begin_v1_true", "faithdial_audit"];
const L2: f64 = 1.0;

struct Set {
    name: String,
    x: Vec<Vec<f64>>,
    y: Vec<bool>,
    baseline: Vec<f32>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut data = PathBuf::from("/work/shared/data/grounding");
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src/model.json"));
    let mut cv = false;
    let mut per_set = false;
    let mut dump: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => data = PathBuf::from(args.next().ok_or("--data DIR")?),
            "--out" => out = PathBuf::from(args.next().ok_or("--out FILE")?),
            "--cv" => cv = true,
            "--cv-per-set" => (cv, per_set) = (true, true),
            "--dump" => dump = Some(args.next().ok_or("--dump SET")?),
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let checker = Checker::new()?;
    let mut sets = Vec::new();
    for name in SETS {
        let path = data.join(name).join("dev.jsonl");
        let records: Vec<Record> = load_jsonl(&path)?;
        let x: Vec<Vec<f64>> = records
            .iter()
            .map(|r| checker.features(&[&r.context], &r.claim_or_answer).values.iter().map(|v| f64::from(*v)).collect())
            .collect();
        if dump.as_deref() == Some(name) {
            let m = Model::shipped_profile(name)?.ok_or("no profile")?;
            for (r, x) in records.iter().zip(&x) {
                let p = m.probability(&to_f32(x));
                let ok = (p >= m.threshold) == (r.label == Label::Supported);
                println!(
                    "{}\t{:?}\t{p:.2}\t{}\t{}",
                    if ok { "ok" } else { "ERR" },
                    r.label,
                    r.claim_or_answer,
                    r.context.chars().take(300).collect::<String>()
                );
            }
        }
        let y = records.iter().map(|r| r.label == Label::Supported).collect();
        let baseline = records.iter().map(|r| baseline_score(&r.context, &r.claim_or_answer)).collect();
        eprintln!("{name}: {} dev records", records.len());
        sets.push(Set { name: name.to_string(), x, y, baseline });
    }
    if cv {
        cross_validate(&sets, per_set);
        return Ok(());
    }
    let mut global = to_model(fit(&sets, &|_, _| true));
    let probs: Vec<Vec<f32>> =
        sets.iter().map(|s| s.x.iter().map(|x| global.probability(&to_f32(x))).collect()).collect();
    // Global thresholds maximise the mean balanced accuracy over the sets.
    global.threshold = global_threshold(&sets, &probs);
    let base: Vec<Vec<f32>> = sets.iter().map(|s| s.baseline.clone()).collect();
    global.baseline_threshold = global_threshold(&sets, &base);
    let mut file = ModelFile {
        provenance: format!(
            "examples/fit.rs: logistic regression (L2 {L2}) on the dev halves of {}; datasets weighted equally, \
             classes balanced; profiles fitted on one set's dev half each",
            SETS.join(", ")
        ),
        global,
        dataset_thresholds: BTreeMap::new(),
        profiles: BTreeMap::new(),
    };
    for (k, s) in sets.iter().enumerate() {
        let (t, bacc) = best_threshold(&probs[k], &s.y);
        let (bt, bb) = best_threshold(&s.baseline, &s.y);
        file.dataset_thresholds.insert(s.name.clone(), DatasetThresholds { checker: t, baseline: bt });
        let mut own = to_model(fit(&sets, &|j, _| j == k));
        let own_p: Vec<f32> = s.x.iter().map(|x| own.probability(&to_f32(x))).collect();
        let (ot, ob) = best_threshold(&own_p, &s.y);
        own.threshold = ot;
        own.baseline_threshold = bt;
        file.profiles.insert(s.name.clone(), own);
        println!(
            "{:22} dev bacc {bacc:.3} (own profile {ob:.3}, baseline {bb:.3})  auroc {:.3} (baseline {:.3})  thr {t:.3}",
            s.name,
            auroc(&probs[k], &s.y),
            auroc(&s.baseline, &s.y),
        );
    }
    for (n, w) in FEATURE_NAMES.iter().zip(&file.global.weights) {
        println!("  {n:26} {w:+.3}");
    }
    std::fs::write(&out, serde_json::to_string_pretty(&file)? + "\n")?;
    println!(
        "global threshold {:.3}, baseline {:.3}; wrote {}",
        file.global.threshold,
        file.global.baseline_threshold,
        out.display()
    );
    Ok(())
}

fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|v| *v as f32).collect()
}

fn to_model((mean, scale, w, b): Fitted) -> Model {
    Model {
        features: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        mean: to_f32(&mean),
        scale: to_f32(&scale),
        weights: to_f32(&w),
        bias: b as f32,
        threshold: 0.5,
        baseline_threshold: 0.5,
    }
}

fn global_threshold(sets: &[Set], scores: &[Vec<f32>]) -> f32 {
    let mut best = (0.5f32, 0.0f64);
    for step in 1..200 {
        let t = step as f32 / 200.0;
        let mean: f64 = sets
            .iter()
            .enumerate()
            .map(|(k, s)| keel_ground::eval::balanced_accuracy(&scores[k], &s.y, t))
            .sum::<f64>()
            / sets.len() as f64;
        if mean > best.1 {
            best = (t, mean);
        }
    }
    best.0
}

type Fitted = (Vec<f64>, Vec<f64>, Vec<f64>, f64);

/// Fits on the rows where `keep(set, row)` holds.
fn fit(sets: &[Set], keep: &dyn Fn(usize, usize) -> bool) -> Fitted {
    let d = FEATURE_NAMES.len();
    let mut rows: Vec<(&[f64], bool, f64)> = Vec::new();
    for (k, s) in sets.iter().enumerate() {
        let idx: Vec<usize> = (0..s.y.len()).filter(|&i| keep(k, i)).collect();
        let pos = idx.iter().filter(|&&i| s.y[i]).count().max(1) as f64;
        let neg = (idx.len() as f64 - pos).max(1.0);
        for i in idx {
            let w = if s.y[i] { 0.5 / pos } else { 0.5 / neg };
            rows.push((&s.x[i], s.y[i], w * 1000.0));
        }
    }
    let total: f64 = rows.iter().map(|r| r.2).sum();
    let mut mean = vec![0.0; d];
    for (x, _, w) in &rows {
        for j in 0..d {
            mean[j] += w * x[j] / total;
        }
    }
    let mut scale = vec![0.0; d];
    for (x, _, w) in &rows {
        for j in 0..d {
            scale[j] += w * (x[j] - mean[j]).powi(2) / total;
        }
    }
    for s in &mut scale {
        *s = s.sqrt().max(1e-3);
    }
    let z: Vec<Vec<f64>> =
        rows.iter().map(|(x, _, _)| (0..d).map(|j| (x[j] - mean[j]) / scale[j]).chain([1.0]).collect()).collect();
    let mut beta = vec![0.0; d + 1];
    for _ in 0..25 {
        let mut g = vec![0.0; d + 1];
        let mut h = vec![vec![0.0; d + 1]; d + 1];
        for (r, zi) in rows.iter().zip(&z) {
            let eta: f64 = zi.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-eta).exp());
            let yv = if r.1 { 1.0 } else { 0.0 };
            for a in 0..=d {
                g[a] += r.2 * (p - yv) * zi[a];
                for b in 0..=d {
                    h[a][b] += r.2 * p * (1.0 - p) * zi[a] * zi[b];
                }
            }
        }
        for a in 0..d {
            g[a] += L2 * beta[a];
            h[a][a] += L2;
        }
        h[d][d] += 1e-9;
        let step = solve(h, g);
        let mut delta = 0.0f64;
        for a in 0..=d {
            beta[a] -= step[a];
            delta = delta.max(step[a].abs());
        }
        if delta < 1e-7 {
            break;
        }
    }
    let b = beta[d];
    beta.truncate(d);
    (mean, scale, beta, b)
}

/// Solves `h x = g` by Gaussian elimination with partial pivoting.
fn solve(mut h: Vec<Vec<f64>>, mut g: Vec<f64>) -> Vec<f64> {
    let n = g.len();
    for c in 0..n {
        let p = (c..n).max_by(|&a, &b| h[a][c].abs().total_cmp(&h[b][c].abs())).unwrap_or(c);
        h.swap(c, p);
        g.swap(c, p);
        let piv = if h[c][c].abs() < 1e-12 { 1e-12 } else { h[c][c] };
        for r in c + 1..n {
            let f = h[r][c] / piv;
            let (top, bottom) = h.split_at_mut(r);
            for (dst, src) in bottom[0][c..n].iter_mut().zip(&top[c][c..n]) {
                *dst -= f * src;
            }
            g[r] -= f * g[c];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| h[r][k] * x[k]).sum();
        let piv = if h[r][r].abs() < 1e-12 { 1e-12 } else { h[r][r] };
        x[r] = (g[r] - s) / piv;
    }
    x
}

/// 5-fold cross-validation on the dev halves: each set's fold is scored by a model and
/// thresholds fitted on the other folds (of all sets).
fn cross_validate(sets: &[Set], per_set: bool) {
    const K: usize = 5;
    let mut scores: Vec<Vec<f32>> = sets.iter().map(|s| vec![0.0; s.y.len()]).collect();
    let mut pred_ok: Vec<Vec<bool>> = sets.iter().map(|s| vec![false; s.y.len()]).collect();
    let mut base_ok: Vec<Vec<bool>> = sets.iter().map(|s| vec![false; s.y.len()]).collect();
    for fold in 0..K {
        let global = (!per_set).then(|| to_model(fit(sets, &|_, i| i % K != fold)));
        for (k, s) in sets.iter().enumerate() {
            let model = match &global {
                Some(m) => m.clone(),
                None => to_model(fit(sets, &|j, i| j == k && i % K != fold)),
            };
            let train: Vec<usize> = (0..s.y.len()).filter(|i| i % K != fold).collect();
            let p: Vec<f32> = s.x.iter().map(|x| model.probability(&to_f32(x))).collect();
            let tr_p: Vec<f32> = train.iter().map(|&i| p[i]).collect();
            let tr_y: Vec<bool> = train.iter().map(|&i| s.y[i]).collect();
            let tr_b: Vec<f32> = train.iter().map(|&i| s.baseline[i]).collect();
            let (t, _) = best_threshold(&tr_p, &tr_y);
            let (bt, _) = best_threshold(&tr_b, &tr_y);
            for i in (0..s.y.len()).filter(|i| i % K == fold) {
                scores[k][i] = p[i];
                pred_ok[k][i] = (p[i] >= t) == s.y[i];
                base_ok[k][i] = (s.baseline[i] >= bt) == s.y[i];
            }
        }
    }
    let bacc = |ok: &[bool], y: &[bool]| {
        let (mut tp, mut p, mut tn, mut n) = (0.0, 0.0, 0.0, 0.0);
        for (o, l) in ok.iter().zip(y) {
            if *l {
                p += 1.0;
                tp += *o as u8 as f64;
            } else {
                n += 1.0;
                tn += *o as u8 as f64;
            }
        }
        (tp / p + tn / n) / 2.0
    };
    let (mut m, mut mb) = (0.0, 0.0);
    for (k, s) in sets.iter().enumerate() {
        let a = bacc(&pred_ok[k], &s.y);
        let bb = bacc(&base_ok[k], &s.y);
        m += a;
        mb += bb;
        println!(
            "{:22} cv bacc {:.3} (baseline {:.3})  auroc {:.3} (baseline {:.3})",
            s.name,
            a,
            bb,
            auroc(&scores[k], &s.y),
            auroc(&s.baseline, &s.y)
        );
    }
    println!("{:22} cv bacc {:.3} (baseline {:.3})", "MEAN", m / sets.len() as f64, mb / sets.len() as f64);
}
