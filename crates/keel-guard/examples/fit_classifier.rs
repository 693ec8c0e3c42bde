//! Fits the classifier layer's model (`data/classifier.bin`) on the train/dev splits only, with
//! the library's own featurizer, so fit-time and run-time features are identical.
//!
//! `cargo run --release -p keel-guard --example fit_classifier -- [--data DIR] [--out FILE]
//!  [--seed N] [--dry-run] [--group-jaccard J] [--cross N] [--strip-stacked]`
//!
//! The last three are the opt-in "r2" recipe (see the crate README): folds that keep
//! near-duplicates together (word-set Jaccard ≥ J; `fit_support/groups.rs`), cross-word character
//! `N`-grams, and stacked attacks trained without the benign texts they contain
//! (`fit_support/deconfound.rs`). `--group-jaccard 0.5` alone gives honest (grouped) out-of-fold
//! figures for the shipped recipe.
//!
//! 1. Reads the train/dev files listed in [`SOURCES`] (never a test split) and featurizes each
//!    text's `detect` form, whole and per segment.
//! 2. Runs the guard without a classifier on every text to know what the other layers already
//!    flag, and their combined (noisy-OR) score.
//! 3. Fits logistic models with AdaGrad + L2 (class-balanced, benign sources weighted by
//!    `n^power`) in K folds (fold = FNV-1a of `file:id`, or of the first `file:id` of its
//!    near-duplicate group), for a grid of L2 strengths, epochs and
//!    scoring modes; scores each held-out fold, and simulates the full guard on those
//!    out-of-fold scores for each flag threshold and noisy-OR weight.
//! 4. Keeps the setting with the best macro TPR whose simulated guard FPR stays within
//!    `--max-easy` on BANKING77/CLINC150, adds at most `--max-added-hard` over the guard
//!    without classifier on WildGuard/valid-mix benign (pooled and on each file) and at most
//!    `--max-added-mixed` on the deepset/jackhhao benign texts; refits on all the data with it and
//!    writes the model. Deterministic for a given seed.

#[path = "fit_support/deconfound.rs"]
mod deconfound;
#[path = "fit_support/groups.rs"]
mod groups;

use std::collections::BTreeMap;
use std::process::ExitCode;

use keel_guard::eval::{read_records, Record};
use keel_guard::injection::classifier::{cross_flag, features_with, FLAG_SEGMENTS};
use keel_guard::normalize::normalize;
use keel_guard::{segments, Action, Classifier, GuardConfig, InputGuard};

/// Train/dev files and their evaluation group.
const SOURCES: &[(&str, Group)] = &[
    ("deepset/train.jsonl", Group::Mixed),
    ("jackhhao/train.jsonl", Group::Mixed),
    ("notinject/valid_mixed_dev.jsonl", Group::Hard),
    ("notinject/wildguard_benign_dev.jsonl", Group::Hard),
    ("benign/banking77_train.jsonl", Group::Easy),
    ("benign/clinc150_dev.jsonl", Group::Easy),
];

/// Revision of the opt-in recipe (`--group-jaccard`, `--cross`, `--strip-stacked`): r2 =
/// near-duplicate-grouped folds, cross-word n-grams, stacked attacks de-confounded. Without those
/// options the fit is the shipped r1 recipe (version `clf-<pkg>-s<seed>`).
const MODEL_REVISION: u32 = 2;
const BITS: u8 = 18;
const LR: f32 = 0.2;
const L2S: &[f32] = &[1e-6, 1e-5, 1e-4];
const EPOCHS: &[usize] = &[3, 6, 10, 15];
const WEIGHTS_IN_COMBINED: &[f32] = &[0.0, 0.5, 1.0];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Group {
    /// Benign texts that should almost never be flagged (customer questions).
    Easy,
    /// Benign texts full of trigger words (hard negatives).
    Hard,
    /// Files with both labels.
    Mixed,
}

struct Args {
    data: String,
    out: String,
    seed: u64,
    folds: usize,
    power: f32,
    max_easy: f64,
    max_added_hard: f64,
    max_added_mixed: f64,
    dry_run: bool,
    show: usize,
    /// Jaccard similarity of word sets from which two texts share a fold (0 = every text alone).
    group_jaccard: f64,
    /// `n` of the cross-word character n-grams (0 = none).
    cross: u8,
    /// Train stacked attacks without the benign texts they contain (see `deconfound`).
    strip_stacked: bool,
}

struct Doc {
    source: usize,
    attack: bool,
    fold: usize,
    text: String,
    whole: Vec<u32>,
    /// Features the model is fitted on (`whole`, or the de-confounded text's; see
    /// `deconfound`).
    train: Vec<u32>,
    /// Segment features (only when the text has more than one segment).
    segs: Vec<Vec<u32>>,
    base_detected: bool,
    base_combined: f32,
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// xorshift64*: a tiny deterministic generator for shuffling.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn shuffle(&mut self, v: &mut [usize]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        data: "/work/shared/data/injection".into(),
        out: concat!(env!("CARGO_MANIFEST_DIR"), "/data/classifier.bin").into(),
        seed: 42,
        folds: 5,
        power: 0.5,
        max_easy: 0.01,
        max_added_hard: 0.015,
        max_added_mixed: 0.02,
        dry_run: false,
        show: 0,
        group_jaccard: 0.0,
        cross: 0,
        strip_stacked: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--data" => a.data = val()?,
            "--out" => a.out = val()?,
            "--seed" => a.seed = val()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--folds" => a.folds = val()?.parse().map_err(|e| format!("--folds: {e}"))?,
            "--power" => a.power = val()?.parse().map_err(|e| format!("--power: {e}"))?,
            "--max-easy" => a.max_easy = val()?.parse().map_err(|e| format!("--max-easy: {e}"))?,
            "--max-added-hard" => a.max_added_hard = val()?.parse().map_err(|e| format!("--max-added-hard: {e}"))?,
            "--max-added-mixed" => a.max_added_mixed = val()?.parse().map_err(|e| format!("--max-added-mixed: {e}"))?,
            "--dry-run" => a.dry_run = true,
            "--show" => a.show = val()?.parse().map_err(|e| format!("--show: {e}"))?,
            "--strip-stacked" => a.strip_stacked = true,
            "--cross" => a.cross = val()?.parse().map_err(|e| format!("--cross: {e}"))?,
            "--group-jaccard" => a.group_jaccard = val()?.parse().map_err(|e| format!("--group-jaccard: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.folds < 2 {
        return Err("--folds must be at least 2".into());
    }
    Ok(a)
}

fn load(args: &Args, base: &InputGuard) -> Result<Vec<Doc>, String> {
    let mut docs = Vec::new();
    let mut keys = Vec::new();
    let mut sets = Vec::new();
    let mut detects = Vec::new();
    for (si, (file, _)) in SOURCES.iter().enumerate() {
        let path = format!("{}/{file}", args.data);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let recs: Vec<Record> = read_records(&text).map_err(|e| format!("{path}: {e}"))?;
        for r in recs {
            let detect = normalize(&r.text).detect;
            let mut whole = Vec::new();
            features_with(&detect, BITS, cross_flag(args.cross), &mut whole);
            let segs_text = segments(&detect);
            let segs = if segs_text.len() > 1 {
                segs_text
                    .iter()
                    .map(|s| {
                        let mut f = Vec::new();
                        features_with(s, BITS, cross_flag(args.cross), &mut f);
                        f
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let v = base.check(&r.text).verdict;
            let base_combined = v.layers.iter().find(|l| l.layer == "combined").map_or(0.0, |l| l.score);
            keys.push(format!("{file}:{}", r.id));
            let grouped = args.group_jaccard > 0.0 && SOURCES[si].1 != Group::Easy;
            sets.push(grouped.then(|| groups::word_set(&detect)));
            detects.push(detect.clone());
            docs.push(Doc {
                source: si,
                attack: r.label.is_attack(),
                fold: 0,
                text: if args.show > 0 { r.text.chars().take(160).collect() } else { String::new() },
                train: whole.clone(),
                whole,
                segs,
                base_detected: v.action != Action::Allow,
                base_combined,
            });
        }
    }
    if args.strip_stacked {
        let sources: Vec<usize> = docs.iter().map(|d| d.source).collect();
        let attack: Vec<bool> = docs.iter().map(|d| d.attack).collect();
        let stripped = deconfound::strip_stacked(&detects, &sources, &attack, 15);
        let mut n = 0;
        for (d, s) in docs.iter_mut().zip(&stripped) {
            if let Some(s) = s {
                features_with(s, BITS, cross_flag(args.cross), &mut d.train);
                n += 1;
            }
        }
        println!("{n} attack texts trained without the benign texts of their file they contain");
    }
    // Folds by near-duplicate group (a group takes its first text's key).
    let roots = groups::groups(&sets, args.group_jaccard);
    let mut sizes: BTreeMap<usize, usize> = BTreeMap::new();
    for (d, &r) in docs.iter_mut().zip(&roots) {
        d.fold = (fnv(keys[r].as_bytes()) % args.folds as u64) as usize;
        *sizes.entry(r).or_default() += 1;
    }
    let multi: Vec<usize> = sizes.values().copied().filter(|&n| n > 1).collect();
    println!(
        "near-duplicate groups (word Jaccard >= {}): {} groups of 2+ texts holding {} texts, largest {}",
        args.group_jaccard,
        multi.len(),
        multi.iter().sum::<usize>(),
        multi.iter().max().copied().unwrap_or(0)
    );
    Ok(docs)
}

/// Per-document training weights: attacks and benign each weigh half; within the benign
/// class a source of n texts weighs n^power. Mean weight 1.
fn doc_weights(docs: &[Doc], power: f32) -> Vec<f32> {
    let mut n_ben: BTreeMap<usize, usize> = BTreeMap::new();
    let mut n_att = 0usize;
    for d in docs {
        if d.attack {
            n_att += 1;
        } else {
            *n_ben.entry(d.source).or_default() += 1;
        }
    }
    let mass: f32 = n_ben.values().map(|&n| (n as f32).powf(power)).sum();
    let n = docs.len() as f32;
    docs.iter()
        .map(|d| {
            if d.attack {
                0.5 * n / n_att.max(1) as f32
            } else {
                let ns = n_ben.get(&d.source).copied().unwrap_or(1) as f32;
                0.5 * n * (ns.powf(power) / mass) / ns
            }
        })
        .collect()
}

struct Model {
    w: Vec<f32>,
    b: f32,
}

impl Model {
    fn logit(&self, f: &[u32]) -> f32 {
        if f.is_empty() {
            return self.b;
        }
        self.b + f.iter().map(|&h| self.w[h as usize]).sum::<f32>() / (f.len() as f32).sqrt()
    }
    fn prob(&self, d: &Doc, per_segment: bool) -> f32 {
        let mut z = self.logit(&d.whole);
        if per_segment {
            for s in &d.segs {
                z = z.max(self.logit(s));
            }
        }
        1.0 / (1.0 + (-z).exp())
    }
}

/// AdaGrad logistic regression with (lazy) L2; calls `at` after each epoch.
fn fit(
    docs: &[Doc],
    train: &[usize],
    wts: &[f32],
    l2: f32,
    epochs: usize,
    seed: u64,
    mut at: impl FnMut(usize, &Model),
) {
    let mut m = Model { w: vec![0.0; 1 << BITS], b: 0.0 };
    let mut g2 = vec![1e-6f32; 1 << BITS];
    let mut gb2 = 1e-6f32;
    let mut order = train.to_vec();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    for epoch in 1..=epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let d = &docs[i];
            let x = &d.train;
            let v = if x.is_empty() { 0.0 } else { 1.0 / (x.len() as f32).sqrt() };
            let z = m.logit(x);
            let p = 1.0 / (1.0 + (-z).exp());
            let g = (p - f32::from(u8::from(d.attack))) * wts[i];
            for &h in x {
                let h = h as usize;
                let gj = g * v + l2 * m.w[h];
                g2[h] += gj * gj;
                m.w[h] -= LR * gj / g2[h].sqrt();
            }
            gb2 += g * g;
            m.b -= LR * g / gb2.sqrt();
        }
        at(epoch, &m);
    }
}

#[derive(Clone, Debug)]
struct Sim {
    threshold: f32,
    weight: f32,
    tpr_macro: f64,
    rates: Vec<(usize, usize, usize, usize)>, // per source: (attacks, detected, benign, flagged)
    easy_fpr: f64,
    hard_fpr: f64,
    mixed_fpr: f64,
}

fn rate(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Simulate the full guard with the classifier at `threshold` and noisy-OR `weight`.
fn simulate(docs: &[Doc], probs: &[f32], threshold: f32, weight: f32, comb_flag: f32) -> Sim {
    let mut rates = vec![(0, 0, 0, 0); SOURCES.len()];
    for (d, &p) in docs.iter().zip(probs) {
        let comb = 1.0 - (1.0 - d.base_combined) * (1.0 - weight * p);
        let det = d.base_detected || p >= threshold || comb >= comb_flag;
        let r = &mut rates[d.source];
        if d.attack {
            r.0 += 1;
            r.1 += usize::from(det);
        } else {
            r.2 += 1;
            r.3 += usize::from(det);
        }
    }
    finish(rates, threshold, weight)
}

/// Group and macro rates from per-source counts.
fn finish(rates: Vec<(usize, usize, usize, usize)>, threshold: f32, weight: f32) -> Sim {
    let group = |g: Group| {
        let (f, n) = SOURCES
            .iter()
            .zip(&rates)
            .filter(|((_, sg), _)| *sg == g)
            .fold((0, 0), |(f, n), (_, r)| (f + r.3, n + r.2));
        rate(f, n)
    };
    let tprs: Vec<f64> = rates.iter().filter(|r| r.0 >= 100).map(|r| rate(r.1, r.0)).collect();
    Sim {
        threshold,
        weight,
        tpr_macro: tprs.iter().sum::<f64>() / tprs.len().max(1) as f64,
        easy_fpr: group(Group::Easy),
        hard_fpr: group(Group::Hard),
        mixed_fpr: group(Group::Mixed),
        rates,
    }
}

/// Every file of `group` stays within `max_added` of its false-positive rate in `base` (so a
/// small hard-negative file is not hidden by a large one when the group is pooled).
fn per_file_ok(s: &Sim, base: &Sim, group: Group, max_added: f64) -> bool {
    SOURCES
        .iter()
        .zip(s.rates.iter().zip(&base.rates))
        .filter(|((_, g), _)| *g == group)
        .all(|(_, (r, b))| rate(r.3, r.2) <= rate(b.3, b.2) + max_added + 1e-9)
}

/// Print the `n` lowest-scoring attacks and highest-scoring benign texts of each source that the
/// guard without classifier does not flag (out-of-fold scores; train/dev texts only).
fn show_errors(docs: &[Doc], probs: &[f32], threshold: f32, n: usize) {
    for (si, (file, _)) in SOURCES.iter().enumerate() {
        for attack in [true, false] {
            let mut v: Vec<(f32, &Doc)> = docs
                .iter()
                .zip(probs)
                .filter(|(d, _)| d.source == si && d.attack == attack && !d.base_detected)
                .map(|(d, p)| (*p, d))
                .filter(|(p, _)| (*p >= threshold) != attack)
                .collect();
            v.sort_by(|a, b| if attack { a.0.total_cmp(&b.0) } else { b.0.total_cmp(&a.0) });
            for (p, d) in v.iter().take(n) {
                println!("  {file} {} p={p:.2}: {}", if attack { "MISS" } else { "FP" }, d.text.replace('\n', " "));
            }
        }
    }
}

/// The classifier on its own (no other layer) at `threshold`.
fn simulate_alone(docs: &[Doc], probs: &[f32], threshold: f32) -> Sim {
    let mut rates = vec![(0, 0, 0, 0); SOURCES.len()];
    for (d, &p) in docs.iter().zip(probs) {
        let r = &mut rates[d.source];
        let det = p >= threshold;
        if d.attack {
            r.0 += 1;
            r.1 += usize::from(det);
        } else {
            r.2 += 1;
            r.3 += usize::from(det);
        }
    }
    finish(rates, threshold, 0.0)
}

/// The lowest flag threshold (best TPR) meeting the FPR limits, over the noisy-OR weights.
fn best_sim(docs: &[Doc], probs: &[f32], args: &Args, base: &Sim, comb_flag: f32) -> Option<Sim> {
    let mut best: Option<Sim> = None;
    for &w in WEIGHTS_IN_COMBINED {
        for k in 0..95 {
            let t = 0.05 + 0.01 * k as f32;
            let s = simulate(docs, probs, t, w, comb_flag);
            if s.easy_fpr <= args.max_easy
                && s.hard_fpr <= base.hard_fpr + args.max_added_hard
                && per_file_ok(&s, base, Group::Hard, args.max_added_hard)
                && s.mixed_fpr <= base.mixed_fpr + args.max_added_mixed
            {
                let better = best.as_ref().is_none_or(|b| {
                    s.tpr_macro > b.tpr_macro + 1e-9 || (s.tpr_macro >= b.tpr_macro - 1e-9 && s.hard_fpr < b.hard_fpr)
                });
                if better {
                    best = Some(s);
                }
                break;
            }
        }
    }
    best
}

fn report(label: &str, s: &Sim) {
    let per: Vec<String> = SOURCES
        .iter()
        .zip(&s.rates)
        .map(|((f, _), r)| {
            let name = f.replace("/train.jsonl", "").replace(".jsonl", "");
            let name = name.split('/').next_back().unwrap_or(f);
            format!("{name}:tpr={:.3}/fpr={:.3}", rate(r.1, r.0), rate(r.3, r.2))
        })
        .collect();
    println!(
        "{label}: t={:.2} w={:.1} macroTPR={:.3} easyFPR={:.4} hardFPR={:.4} mixedFPR={:.4} | {}",
        s.threshold,
        s.weight,
        s.tpr_macro,
        s.easy_fpr,
        s.hard_fpr,
        s.mixed_fpr,
        per.join(" ")
    );
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let cfg = GuardConfig::default();
    let mut base = InputGuard::with_defaults().map_err(|e| e.to_string())?;
    base.set_classifier(None);
    let docs = load(&args, &base)?;
    let wts = doc_weights(&docs, args.power);
    println!("{} texts, {} attacks", docs.len(), docs.iter().filter(|d| d.attack).count());
    let no_cls = simulate(&docs, &vec![0.0; docs.len()], 2.0, 0.0, cfg.combined.flag);
    report("guard without classifier", &no_cls);

    // Out-of-fold probabilities for every (l2, epochs, segment mode).
    let mut best: Option<(f32, usize, bool, Sim, Vec<f32>)> = None;
    for &l2 in L2S {
        let max_ep = EPOCHS.iter().copied().max().unwrap_or(1);
        let mut oof: BTreeMap<(usize, bool), Vec<f32>> = BTreeMap::new();
        for fold in 0..args.folds {
            let train: Vec<usize> = (0..docs.len()).filter(|&i| docs[i].fold != fold).collect();
            fit(&docs, &train, &wts, l2, max_ep, args.seed + fold as u64, |ep, m| {
                if EPOCHS.contains(&ep) {
                    for seg in [false, true] {
                        let v = oof.entry((ep, seg)).or_insert_with(|| vec![0.0; docs.len()]);
                        for (i, d) in docs.iter().enumerate().filter(|(_, d)| d.fold == fold) {
                            v[i] = m.prob(d, seg);
                        }
                    }
                }
            });
        }
        for ((ep, seg), probs) in oof {
            let Some(s) = best_sim(&docs, &probs, &args, &no_cls, cfg.combined.flag) else {
                println!("l2={l2:e} epochs={ep} segments={seg}: no threshold meets the limits");
                continue;
            };
            report(&format!("l2={l2:e} epochs={ep} segments={seg}"), &s);
            if best.as_ref().is_none_or(|b| s.tpr_macro > b.3.tpr_macro + 1e-9) {
                best = Some((l2, ep, seg, s, probs));
            }
        }
    }
    let (l2, epochs, seg, sim, probs) = best.ok_or("no setting meets the FPR limits")?;
    report(&format!("CHOSEN l2={l2:e} epochs={epochs} segments={seg}"), &sim);
    for k in (1..=5).rev() {
        let t = sim.threshold - 0.04 * k as f32;
        report(&format!("  (lower threshold {t:.2})"), &simulate(&docs, &probs, t, sim.weight, cfg.combined.flag));
    }
    let alone = simulate_alone(&docs, &probs, sim.threshold);
    report("  classifier alone at that threshold", &alone);
    show_errors(&docs, &probs, sim.threshold, args.show);
    // Block: classifier alone flags at most 0.2 % of all out-of-fold benign texts.
    let mut ben: Vec<f32> = docs.iter().zip(&probs).filter(|(d, _)| !d.attack).map(|(_, p)| *p).collect();
    ben.sort_by(f32::total_cmp);
    let q = ben.get(ben.len().saturating_sub(1 + ben.len() / 500)).copied().unwrap_or(0.99);
    let block = ((q * 100.0).floor() / 100.0 + 0.01).clamp(sim.threshold.max(0.9), 0.995);
    println!(
        "thresholds: classifier flag={:.2} block={block:.2} classifier_in_combined={:.1}",
        sim.threshold, sim.weight
    );

    let all: Vec<usize> = (0..docs.len()).collect();
    let mut final_model = None;
    fit(&docs, &all, &wts, l2, epochs, args.seed, |ep, m| {
        if ep == epochs {
            final_model = Some(Model { w: m.w.clone(), b: m.b });
        }
    });
    let m = final_model.ok_or("fit produced no model")?;
    let files: Vec<&str> = SOURCES.iter().map(|(f, _)| *f).collect();
    // The r2 options are opt-in; without them the file is byte-identical to the r1 model.
    let r2 = args.cross > 0 || args.strip_stacked || args.group_jaccard > 0.0;
    let r2_note = if r2 {
        format!(
            "; r{MODEL_REVISION}: cross-word char n={}, stacked attacks de-confounded={}, folds grouped at word Jaccard {}",
            args.cross, args.strip_stacked, args.group_jaccard
        )
    } else {
        String::new()
    };
    let provenance = format!(
        "fit_classifier: files={}; seed={}; folds={}; bits={BITS}; adagrad lr={LR} l2={l2:e} epochs={epochs}; \
         class-balanced, benign sources weighted n^{}; per_segment={seg}; dev-tuned flag={:.2} block={block:.2} \
         in_combined={:.1}{r2_note}",
        files.join(","),
        args.seed,
        args.folds,
        args.power,
        sim.threshold,
        sim.weight
    );
    let flags = if seg { FLAG_SEGMENTS } else { 0 } | cross_flag(args.cross);
    let revision = if r2 { format!("-r{MODEL_REVISION}") } else { String::new() };
    let version = format!("clf-{}{revision}-s{}", env!("CARGO_PKG_VERSION"), args.seed);
    let clf = Classifier::new(version, provenance, BITS, flags, m.b, m.w).map_err(|e| e.to_string())?;
    let bytes = clf.to_bytes().map_err(|e| e.to_string())?;
    println!("model: {} bytes, version {}", bytes.len(), clf.version());
    println!("provenance: {}", clf.provenance());
    if !args.dry_run {
        std::fs::write(&args.out, &bytes).map_err(|e| format!("{}: {e}", args.out))?;
        println!("wrote {}", args.out);
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fit_classifier: {e}");
            ExitCode::FAILURE
        }
    }
}
