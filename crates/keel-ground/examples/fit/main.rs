//! Fits the shipped grounding model (`src/model.json`) on the dev halves of the target grounding
//! sets, so the weights in the crate can be reproduced:
//!
//! ```text
//! cargo run --release -p keel-ground --example fit -- [--data DIR] [--cv | --cv-per-set] [--out FILE]
//!     [--bits N] [--l2 X] [--l2s X] [--epochs N] [--lr X] [--extra]
//! ```
//!
//! Logistic regression on standardised dense features (Newton steps, L2) plus, with `--bits N`
//! (N > 0), hashed sparse cues fitted jointly by AdaGrad (warm-started from the Newton solution;
//! `--l2s` regularises the cue weights); every dataset weighs the same and both classes weigh
//! the same within a dataset (the metric is balanced accuracy). The global model is fitted on
//! all six dev halves pooled (`--extra` adds the dev halves of the other grounding sets to its
//! training data, never their test halves); each per-set profile on its own dev half.
//! `--cv` / `--cv-per-set` print 5-fold cross-validated dev figures of the global / per-set
//! models instead (for feature work; no test file is ever read).

use std::collections::BTreeMap;
use std::path::PathBuf;

use keel_ground::eval::{auroc, baseline_score, best_threshold, load_jsonl, Label, Record};
use keel_ground::{
    build_idf, Checker, DatasetThresholds, Features, Model, ModelFile, SparseWeights, Tree, FEATURE_NAMES,
};

mod boost;
use boost::{boost, BoostCfg};

const SETS: [&str; 6] =
    ["attributionbench", "wice", "factcheck_gpt_stance", "q2_wow", "begin_v1_true", "faithdial_audit"];
/// Other grounding sets whose dev halves `--extra` adds to the global model's training data.
const EXTRA: [&str; 6] =
    ["summedits", "covidfact", "climate_fever", "fever_dev_sample2000", "qags", "halueval_summarization_sample2000"];

/// Training settings.
#[derive(Clone, Copy)]
struct Cfg {
    l2: f64,
    bits: u32,
    l2s: f64,
    epochs: usize,
    lr: f64,
    /// Weight of each extra set relative to a target set.
    extra_weight: f64,
    /// Boosted trees on top of the linear model (`trees: 0` = none).
    boost: BoostCfg,
    /// Thresholds from in-sample probabilities instead of out-of-fold ones.
    in_sample: bool,
}

struct Set {
    name: String,
    x: Vec<Vec<f64>>,
    sp: Vec<Vec<u32>>,
    y: Vec<bool>,
    baseline: Vec<f32>,
    /// Training only (an `--extra` set): not scored, not thresholded.
    extra: bool,
}

impl Set {
    fn features(&self, i: usize) -> Features {
        Features { values: to_arr(&self.x[i]), sparse: self.sp[i].clone(), ..Features::default() }
    }
}

fn to_arr(x: &[f64]) -> [f32; FEATURE_NAMES.len()] {
    let mut a = [0.0f32; FEATURE_NAMES.len()];
    for (d, s) in a.iter_mut().zip(x) {
        *d = *s as f32;
    }
    a
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut data = PathBuf::from("/work/shared/data/grounding");
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src/model.json"));
    let mut cv = false;
    let mut per_set = false;
    let mut dump: Option<String> = None;
    let mut extra = false;
    let mut no_idf = false;
    let boost = BoostCfg { trees: 0, depth: 3, eta: 0.1, lambda: 1.0, min_hess: 5.0 };
    let mut cfg = Cfg { l2: 1.0, bits: 0, l2s: 0.01, epochs: 10, lr: 0.05, extra_weight: 0.5, boost, in_sample: false };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<f64, Box<dyn std::error::Error>> {
            Ok(args.next().ok_or(format!("{name} VALUE"))?.parse::<f64>()?)
        };
        match a.as_str() {
            "--data" => data = PathBuf::from(args.next().ok_or("--data DIR")?),
            "--out" => out = PathBuf::from(args.next().ok_or("--out FILE")?),
            "--cv" => cv = true,
            "--cv-per-set" => (cv, per_set) = (true, true),
            "--dump" => dump = Some(args.next().ok_or("--dump SET")?),
            "--extra" => extra = true,
            "--no-idf" => no_idf = true,
            "--in-sample-thresholds" => cfg.in_sample = true,
            "--bits" => cfg.bits = num("--bits")? as u32,
            "--l2" => cfg.l2 = num("--l2")?,
            "--l2s" => cfg.l2s = num("--l2s")?,
            "--epochs" => cfg.epochs = num("--epochs")? as usize,
            "--lr" => cfg.lr = num("--lr")?,
            "--extra-weight" => cfg.extra_weight = num("--extra-weight")?,
            "--trees" => cfg.boost.trees = num("--trees")? as usize,
            "--depth" => cfg.boost.depth = num("--depth")? as u32,
            "--eta" => cfg.boost.eta = num("--eta")?,
            "--lambda" => cfg.boost.lambda = num("--lambda")?,
            "--min-hess" => cfg.boost.min_hess = num("--min-hess")?,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    // The IDF table: document frequencies over the unique contexts of every set's dev half.
    let mut all: Vec<(&str, bool, Vec<Record>)> = Vec::new();
    for name in SETS.iter().chain(&EXTRA) {
        let is_extra = EXTRA.contains(name);
        all.push((name, is_extra, load_jsonl(&data.join(name).join("dev.jsonl"))?));
    }
    let contexts: std::collections::BTreeSet<&str> =
        all.iter().flat_map(|(_, _, rs)| rs.iter().map(|r| r.context.as_str())).collect();
    let idf = if no_idf { Vec::new() } else { build_idf(contexts.iter().copied()) };
    eprintln!("idf table from {} unique dev contexts", contexts.len());
    let shipped = Checker::new();
    let checker = Checker::with_model(blank_model()).with_idf(idf.clone());
    let mut sets = Vec::new();
    for (name, is_extra, records) in &all {
        let (name, is_extra) = (*name, *is_extra);
        if is_extra && !extra {
            continue;
        }
        let feats: Vec<Features> =
            records.iter().map(|r| checker.features(&[&r.context], &r.claim_or_answer)).collect();
        let x: Vec<Vec<f64>> = feats.iter().map(|f| f.values.iter().map(|v| f64::from(*v)).collect()).collect();
        let sp: Vec<Vec<u32>> = feats.into_iter().map(|f| f.sparse).collect();
        if dump.as_deref() == Some(name) {
            let shipped = shipped.as_ref().map_err(|e| e.to_string())?;
            let m = shipped.model();
            for r in records {
                let p = m.probability_of(&shipped.features(&[&r.context], &r.claim_or_answer));
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
        sets.push(Set { name: name.to_string(), x, sp, y, baseline, extra: is_extra });
    }
    if dump.is_some() {
        return Ok(());
    }
    if cv {
        cross_validate(&sets, per_set, cfg);
        return Ok(());
    }
    let mut global = to_model(fit(&sets, &|_, _| true, cfg));
    let targets = &sets[..SETS.len()];
    // Thresholds come from out-of-fold probabilities: the cue table fits its own training rows
    // far better than new ones, so in-sample scores would misplace them.
    let probs = if cfg.in_sample {
        targets.iter().map(|s| score_set(&global, s)).collect()
    } else {
        oof(&sets, &|_| true, cfg)
    };
    // Global thresholds maximise the mean balanced accuracy over the sets.
    global.threshold = global_threshold(targets, &probs, &|_| true);
    let base: Vec<Vec<f32>> = targets.iter().map(|s| s.baseline.clone()).collect();
    global.baseline_threshold = global_threshold(targets, &base, &|_| true);
    let mut file = ModelFile {
        provenance: format!(
            "examples/fit/main.rs: logistic regression (L2 {}; hashed cues: bits {}, L2 {}, {} AdaGrad epochs, lr {}) \
             on the dev halves of {}{}; datasets weighted equally, classes balanced; profiles fitted on one \
             set's dev half each",
            cfg.l2,
            cfg.bits,
            cfg.l2s,
            cfg.epochs,
            cfg.lr,
            SETS.join(", "),
            if extra {
                format!(" (global model also on the dev halves of {}, weight {})", EXTRA.join(", "), cfg.extra_weight)
            } else {
                String::new()
            }
        ),
        global,
        dataset_thresholds: BTreeMap::new(),
        profiles: BTreeMap::new(),
    };
    for (k, s) in targets.iter().enumerate() {
        let (t, bacc) = best_threshold(&probs[k], &s.y);
        let (bt, bb) = best_threshold(&s.baseline, &s.y);
        file.dataset_thresholds.insert(s.name.clone(), DatasetThresholds { checker: t, baseline: bt });
        // Profiles stay small: dense features only (the cue table is fitted for the global model).
        let own_cfg = Cfg { bits: 0, boost: BoostCfg { trees: 0, ..cfg.boost }, ..cfg };
        let mut own = to_model(fit(targets, &|j, _| j == k, own_cfg));
        let own_p = score_set(&own, s);
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
    std::fs::write(&out, collapse_numeric_arrays(&serde_json::to_string_pretty(&file)?) + "\n")?;
    let idf_out = out.with_file_name("idf.bin");
    std::fs::write(&idf_out, &idf)?;
    println!("wrote {} ({} bytes)", idf_out.display(), idf.len());
    println!(
        "global threshold {:.3}, baseline {:.3}; wrote {}",
        file.global.threshold,
        file.global.baseline_threshold,
        out.display()
    );
    Ok(())
}

/// Puts every array of plain numbers of pretty-printed JSON on one line (the cue table has
/// tens of thousands of entries).
fn collapse_numeric_arrays(pretty: &str) -> String {
    let lines: Vec<&str> = pretty.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].ends_with('[') {
            let mut j = i + 1;
            let mut items = Vec::new();
            while j < lines.len() {
                let t = lines[j].trim().trim_end_matches(',');
                if t.parse::<f64>().is_err() {
                    break;
                }
                items.push(t);
                j += 1;
            }
            if !items.is_empty() && j < lines.len() && lines[j].trim().starts_with(']') {
                out.push(format!("{}{}{}", lines[i], items.join(","), lines[j].trim()));
                i = j + 1;
                continue;
            }
        }
        out.push(lines[i].to_string());
        i += 1;
    }
    out.join("\n")
}

/// A model that scores nothing (the fitting program only needs the checker's features).
fn blank_model() -> Model {
    let d = FEATURE_NAMES.len();
    to_model(Fitted {
        mean: vec![0.0; d],
        scale: vec![1.0; d],
        w: vec![0.0; d],
        b: 0.0,
        sparse: None,
        trees: Vec::new(),
    })
}

fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|v| *v as f32).collect()
}

fn score_set(m: &Model, s: &Set) -> Vec<f32> {
    (0..s.y.len()).map(|i| m.probability_of(&s.features(i))).collect()
}

fn to_model(f: Fitted) -> Model {
    Model {
        features: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        mean: to_f32(&f.mean),
        scale: to_f32(&f.scale),
        weights: to_f32(&f.w),
        bias: f.b as f32,
        threshold: 0.5,
        baseline_threshold: 0.5,
        sparse: f.sparse.map(|(bits, w)| SparseWeights::quantise(bits, &to_f32(&w))),
        trees: f.trees,
    }
}

/// The threshold maximising the mean balanced accuracy over `sets`, on the rows where `keep(i)`.
fn global_threshold(sets: &[Set], scores: &[Vec<f32>], keep: &dyn Fn(usize) -> bool) -> f32 {
    let mut best = (0.5f32, 0.0f64);
    let kept: Vec<(Vec<f32>, Vec<bool>)> = sets
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let idx: Vec<usize> = (0..s.y.len()).filter(|&i| keep(i)).collect();
            (idx.iter().map(|&i| scores[k][i]).collect(), idx.iter().map(|&i| s.y[i]).collect())
        })
        .collect();
    for step in 1..400 {
        let t = step as f32 / 400.0;
        let mean: f64 =
            kept.iter().map(|(sc, y)| keel_ground::eval::balanced_accuracy(sc, y, t)).sum::<f64>() / sets.len() as f64;
        if mean > best.1 {
            best = (t, mean);
        }
    }
    best.0
}

/// A fitted model: standardisation, dense weights, bias and (with `--bits`) the cue table.
struct Fitted {
    mean: Vec<f64>,
    scale: Vec<f64>,
    w: Vec<f64>,
    b: f64,
    sparse: Option<(u32, Vec<f64>)>,
    trees: Vec<Tree>,
}

/// Fits on the rows where `keep(set, row)` holds.
fn fit(sets: &[Set], keep: &dyn Fn(usize, usize) -> bool, cfg: Cfg) -> Fitted {
    let d = FEATURE_NAMES.len();
    // (set, row, weight): each target set weighs 1000 (extra sets `extra_weight` of that), half per class.
    let mut rows: Vec<(usize, usize, f64)> = Vec::new();
    for (k, s) in sets.iter().enumerate() {
        let idx: Vec<usize> = (0..s.y.len()).filter(|&i| keep(k, i)).collect();
        let pos = idx.iter().filter(|&&i| s.y[i]).count().max(1) as f64;
        let neg = (idx.len() as f64 - pos).max(1.0);
        let set_w = if s.extra { cfg.extra_weight } else { 1.0 };
        for i in idx {
            let w = if s.y[i] { 0.5 / pos } else { 0.5 / neg };
            rows.push((k, i, w * 1000.0 * set_w));
        }
    }
    let x = |r: &(usize, usize, f64)| -> &[f64] { &sets[r.0].x[r.1] };
    let y = |r: &(usize, usize, f64)| sets[r.0].y[r.1];
    let total: f64 = rows.iter().map(|r| r.2).sum();
    let mut mean = vec![0.0; d];
    for r in &rows {
        for (m, v) in mean.iter_mut().zip(x(r)) {
            *m += r.2 * v / total;
        }
    }
    let mut scale = vec![0.0; d];
    for r in &rows {
        for ((s, v), m) in scale.iter_mut().zip(x(r)).zip(&mean) {
            *s += r.2 * (v - m).powi(2) / total;
        }
    }
    for s in &mut scale {
        *s = s.sqrt().max(1e-3);
    }
    let z: Vec<Vec<f64>> =
        rows.iter().map(|r| (0..d).map(|j| (x(r)[j] - mean[j]) / scale[j]).chain([1.0]).collect()).collect();
    let mut beta = vec![0.0; d + 1];
    for _ in 0..25 {
        let mut g = vec![0.0; d + 1];
        let mut h = vec![vec![0.0; d + 1]; d + 1];
        for (r, zi) in rows.iter().zip(&z) {
            let eta: f64 = zi.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-eta).exp());
            let yv = if y(r) { 1.0 } else { 0.0 };
            for a in 0..=d {
                g[a] += r.2 * (p - yv) * zi[a];
                for b in 0..=d {
                    h[a][b] += r.2 * p * (1.0 - p) * zi[a] * zi[b];
                }
            }
        }
        for a in 0..d {
            g[a] += cfg.l2 * beta[a];
            h[a][a] += cfg.l2;
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
    let sparse = (cfg.bits > 0).then(|| {
        let sp: Vec<&[u32]> = rows.iter().map(|r| sets[r.0].sp[r.1].as_slice()).collect();
        let ws: Vec<f64> = rows.iter().map(|r| r.2 * rows.len() as f64 / total).collect();
        let ys: Vec<bool> = rows.iter().map(y).collect();
        (cfg.bits, adagrad(&z, &sp, &ys, &ws, &mut beta, cfg))
    });
    let ws: Vec<f64> = rows.iter().map(|r| r.2 * rows.len() as f64 / total).collect();
    let trees = if cfg.boost.trees == 0 {
        Vec::new()
    } else {
        // Start from the linear model's log-odds, with its sparse table quantised as shipped.
        let q = sparse.as_ref().map(|(bits, w)| SparseWeights::quantise(*bits, &to_f32(w)));
        let base: Vec<f64> = rows
            .iter()
            .zip(&z)
            .map(|(r, zi)| {
                let lin: f64 = zi.iter().zip(&beta).map(|(a, b)| a * b).sum();
                lin + q.as_ref().map_or(0.0, |q| f64::from(q.sum(&sets[r.0].sp[r.1])))
            })
            .collect();
        let xs: Vec<&[f64]> = rows.iter().map(x).collect();
        let ys: Vec<bool> = rows.iter().map(y).collect();
        boost(&xs, &ys, &ws, &base, cfg.boost)
    };
    let b = beta[d];
    beta.truncate(d);
    Fitted { mean, scale, w: beta, b, sparse, trees }
}

/// Joint AdaGrad on the dense weights (`beta`, warm start, bias last) and a hashed cue table;
/// row weights average 1. L2 on the dense weights per step (`l2 / n`), on cue weights when touched.
fn adagrad(z: &[Vec<f64>], sp: &[&[u32]], y: &[bool], w: &[f64], beta: &mut [f64], cfg: Cfg) -> Vec<f64> {
    let n = z.len();
    let mask = (1u32 << cfg.bits) - 1;
    let mut table = vec![0.0f64; 1usize << cfg.bits];
    let mut g_table = vec![0.0f64; table.len()];
    let mut g_beta = vec![0.0f64; beta.len()];
    let mut order: Vec<usize> = (0..n).collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let d = beta.len() - 1;
    for _ in 0..cfg.epochs {
        for i in (1..n).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for &i in &order {
            let mut eta: f64 = z[i].iter().zip(beta.iter()).map(|(a, b)| a * b).sum();
            eta += sp[i].iter().map(|h| table[(h & mask) as usize]).sum::<f64>();
            let p = 1.0 / (1.0 + (-eta).exp());
            let err = w[i] * (p - if y[i] { 1.0 } else { 0.0 });
            for a in 0..=d {
                let g = err * z[i][a] + if a < d { cfg.l2 / n as f64 * beta[a] } else { 0.0 };
                g_beta[a] += g * g;
                beta[a] -= cfg.lr * g / (g_beta[a].sqrt() + 1e-8);
            }
            for h in sp[i] {
                let j = (h & mask) as usize;
                let g = err + cfg.l2s * table[j];
                g_table[j] += g * g;
                table[j] -= cfg.lr * g / (g_table[j].sqrt() + 1e-8);
            }
        }
    }
    table
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

/// Out-of-fold probabilities of the global model on the target sets' rows where `keep(i)`: each
/// is scored by a model fitted on the other four inner folds of the kept rows (other rows: 0).
fn oof(sets: &[Set], keep: &dyn Fn(usize) -> bool, cfg: Cfg) -> Vec<Vec<f32>> {
    const K: usize = 5;
    let targets: Vec<&Set> = sets.iter().filter(|s| !s.extra).collect();
    let mut out: Vec<Vec<f32>> = targets.iter().map(|s| vec![0.0; s.y.len()]).collect();
    for f in 0..K {
        let inner = |i: usize| (i / K) % K == f;
        let m = to_model(fit(sets, &|_, i| keep(i) && !inner(i), cfg));
        for (k, s) in targets.iter().enumerate() {
            for i in (0..s.y.len()).filter(|&i| keep(i) && inner(i)) {
                out[k][i] = m.probability_of(&s.features(i));
            }
        }
    }
    out
}

/// 5-fold cross-validation on the dev halves: each set's fold is scored by a model and
/// thresholds fitted on the other folds (of all sets). `bacc_t` uses a per-set threshold,
/// `bacc_g` one threshold for all sets (what the shipped checker does).
fn cross_validate(sets: &[Set], per_set: bool, cfg: Cfg) {
    const K: usize = 5;
    let targets: Vec<&Set> = sets.iter().filter(|s| !s.extra).collect();
    let mut scores: Vec<Vec<f32>> = targets.iter().map(|s| vec![0.0; s.y.len()]).collect();
    let mut ok_t: Vec<Vec<bool>> = targets.iter().map(|s| vec![false; s.y.len()]).collect();
    let mut ok_g = ok_t.clone();
    let mut base_ok = ok_t.clone();
    let mut base_g = ok_t.clone();
    for fold in 0..K {
        let global = (!per_set).then(|| to_model(fit(sets, &|_, i| i % K != fold, cfg)));
        let mut p_all = Vec::new();
        for (k, s) in targets.iter().enumerate() {
            let model = match &global {
                Some(m) => m.clone(),
                None => to_model(fit(sets, &|j, i| j == k && i % K != fold, cfg)),
            };
            p_all.push(score_set(&model, s));
        }
        // Thresholds are fitted on the training folds' out-of-fold scores (as the final fit does).
        let p_thr = if per_set || cfg.in_sample { p_all.clone() } else { oof(sets, &|i| i % K != fold, cfg) };
        let tg = global_threshold(&sets[..targets.len()], &p_thr, &|i| i % K != fold);
        let base: Vec<Vec<f32>> = targets.iter().map(|s| s.baseline.clone()).collect();
        let tb = global_threshold(&sets[..targets.len()], &base, &|i| i % K != fold);
        for (k, s) in targets.iter().enumerate() {
            let p = &p_all[k];
            let pt = &p_thr[k];
            let train: Vec<usize> = (0..s.y.len()).filter(|i| i % K != fold).collect();
            let tr_p: Vec<f32> = train.iter().map(|&i| pt[i]).collect();
            let tr_y: Vec<bool> = train.iter().map(|&i| s.y[i]).collect();
            let tr_b: Vec<f32> = train.iter().map(|&i| s.baseline[i]).collect();
            let (t, _) = best_threshold(&tr_p, &tr_y);
            let (bt, _) = best_threshold(&tr_b, &tr_y);
            for i in (0..s.y.len()).filter(|i| i % K == fold) {
                scores[k][i] = p[i];
                ok_t[k][i] = (p[i] >= t) == s.y[i];
                ok_g[k][i] = (p[i] >= tg) == s.y[i];
                base_ok[k][i] = (s.baseline[i] >= bt) == s.y[i];
                base_g[k][i] = (s.baseline[i] >= tb) == s.y[i];
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
    let (mut mg, mut mt, mut mb, mut ma, mut mbg) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let n = targets.len() as f64;
    for (k, s) in targets.iter().enumerate() {
        let (g, t, bb, a) =
            (bacc(&ok_g[k], &s.y), bacc(&ok_t[k], &s.y), bacc(&base_ok[k], &s.y), auroc(&scores[k], &s.y));
        let bg = bacc(&base_g[k], &s.y);
        (mg, mt, mb, ma, mbg) = (mg + g / n, mt + t / n, mb + bb / n, ma + a / n, mbg + bg / n);
        println!(
            "{:22} cv bacc_g {g:.3} (base_g {bg:.3}) bacc_t {t:.3} (base_t {bb:.3})  auroc {a:.3} (baseline {:.3})",
            s.name,
            auroc(&s.baseline, &s.y)
        );
    }
    println!("{:22} cv bacc_g {mg:.3} (base_g {mbg:.3}) bacc_t {mt:.3} (base_t {mb:.3})  auroc {ma:.3}", "MEAN");
}
