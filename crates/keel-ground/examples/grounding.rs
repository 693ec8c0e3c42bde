//! Runs the grounding benchmark (what `keel bench grounding` will print) over JSONL files.
//!
//! ```text
//! grounding --data FILE [--dev FILE] [--json]      one file; thresholds fitted on --dev, else shipped
//! grounding --sets DIR --split test [--json]       the six target sets: per-set dev thresholds
//!                                                  (from model.json) and the single global one
//! ```

use std::path::PathBuf;

use keel_ground::eval::{evaluate, fit_thresholds, load_jsonl, Report, Thresholds};
use keel_ground::Checker;

const SETS: [&str; 6] =
    ["attributionbench", "wice", "factcheck_gpt_stance", "q2_wow", "begin_v1_true", "faithdial_audit"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut data, mut dev, mut sets, mut split, mut json) = (None, None, None, "test".to_string(), false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => data = Some(PathBuf::from(args.next().ok_or("--data FILE")?)),
            "--dev" => dev = Some(PathBuf::from(args.next().ok_or("--dev FILE")?)),
            "--sets" => sets = Some(PathBuf::from(args.next().ok_or("--sets DIR")?)),
            "--split" => split = args.next().ok_or("--split dev|test")?,
            "--json" => json = true,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let checker = Checker::new()?;
    if let Some(path) = data {
        let records = load_jsonl(&path)?;
        let thresholds = match dev {
            Some(d) => fit_thresholds(&checker, &load_jsonl(&d)?),
            None => Thresholds::shipped(&checker),
        };
        let report = evaluate(&checker, &records, thresholds);
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_row(&path.display().to_string(), &report);
        }
        return Ok(());
    }
    let dir = sets.ok_or("give --data FILE or --sets DIR")?;
    let global = Thresholds::shipped(&checker);
    let mut rows = Vec::new();
    for name in SETS {
        let path = dir.join(name).join(format!("{split}.jsonl"));
        if !path.is_file() {
            eprintln!("skipping {name}: {} is absent", path.display());
            continue;
        }
        let records = load_jsonl(&path)?;
        let per_set = checker
            .model()
            .dataset_thresholds
            .get(name)
            .map(|t| Thresholds { checker: t.checker, baseline: t.baseline })
            .unwrap_or(global);
        let tuned = evaluate(&checker, &records, per_set);
        let glob = evaluate(&checker, &records, global);
        rows.push((name, tuned, glob));
    }
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(n, t, g)| serde_json::json!({"set": n, "per_set_threshold": t, "global_threshold": g}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:22} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7}",
        "set", "n", "bacc", "base", "bacc_gl", "base_gl", "auroc", "p50ms", "p99ms"
    );
    let k = rows.len().max(1) as f64;
    let mut mean = [0.0f64; 5];
    for (name, t, g) in &rows {
        println!(
            "{:22} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>7.3} {:>7.3}",
            name,
            t.n,
            t.balanced_accuracy,
            t.baseline_balanced_accuracy,
            g.balanced_accuracy,
            g.baseline_balanced_accuracy,
            t.auroc,
            t.p50_ms,
            t.p99_ms
        );
        for (m, v) in mean.iter_mut().zip([
            t.balanced_accuracy,
            t.baseline_balanced_accuracy,
            g.balanced_accuracy,
            g.baseline_balanced_accuracy,
            t.auroc,
        ]) {
            *m += v / k;
        }
    }
    println!(
        "{:22} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
        "MEAN", "", mean[0], mean[1], mean[2], mean[3], mean[4]
    );
    Ok(())
}

fn print_row(name: &str, r: &Report) {
    println!(
        "{name}: n {} bacc {:.3} (thr {:.3}) auroc {:.3} | baseline bacc {:.3} (thr {:.3}) auroc {:.3} | p50 {:.3} ms p99 {:.3} ms",
        r.n,
        r.balanced_accuracy,
        r.threshold,
        r.auroc,
        r.baseline_balanced_accuracy,
        r.baseline_threshold,
        r.baseline_auroc,
        r.p50_ms,
        r.p99_ms
    );
}
