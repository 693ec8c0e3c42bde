//! Runs the grounding benchmark (what `keel bench grounding` will print) over JSONL files.
//!
//! ```text
//! grounding --data FILE [--dev FILE] [--json]      one file; thresholds fitted on --dev, else shipped
//! grounding --sets DIR --split test [--json]       the six target sets, three ways: the global
//!                                                  model with its global threshold, the global model
//!                                                  with the set's dev threshold, and the set's own
//!                                                  dev-fitted profile (all from model.json)
//! ```

use std::path::PathBuf;

use keel_ground::eval::{evaluate, fit_thresholds, load_jsonl, Report, Thresholds};
use keel_ground::{Checker, ModelFile};

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
    let file = ModelFile::shipped()?;
    let global = Thresholds::shipped(&checker);
    let mut rows = Vec::new();
    for name in SETS {
        let path = dir.join(name).join(format!("{split}.jsonl"));
        if !path.is_file() {
            eprintln!("skipping {name}: {} is absent", path.display());
            continue;
        }
        let records = load_jsonl(&path)?;
        let set_thr = file
            .dataset_thresholds
            .get(name)
            .map(|t| Thresholds { checker: t.checker, baseline: t.baseline })
            .unwrap_or(global);
        let glob = evaluate(&checker, &records, global);
        let tuned = evaluate(&checker, &records, set_thr);
        let profile = match file.profiles.get(name) {
            Some(m) => {
                let c = Checker::with_model(m.clone());
                let t = Thresholds::shipped(&c);
                evaluate(&c, &records, t)
            }
            None => tuned.clone(),
        };
        rows.push((name, glob, tuned, profile));
    }
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|(n, g, t, p)| serde_json::json!({"set": n, "global": g, "global_set_threshold": t, "set_profile": p}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("bacc: global model & threshold | global model, set's dev threshold | set's dev-fitted profile");
    println!(
        "{:22} {:>5} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "set", "n", "bacc_g", "base_g", "bacc_t", "base_t", "bacc_p", "auc_g", "auc_p", "auc_b", "p99ms"
    );
    let k = rows.len().max(1) as f64;
    let mut mean = [0.0f64; 8];
    for (name, g, t, p) in &rows {
        let v = [
            g.balanced_accuracy,
            g.baseline_balanced_accuracy,
            t.balanced_accuracy,
            t.baseline_balanced_accuracy,
            p.balanced_accuracy,
            g.auroc,
            p.auroc,
            g.baseline_auroc,
        ];
        print!("{name:22} {:>5}", g.n);
        for x in v {
            print!(" {x:>6.3}");
        }
        println!(" {:>6.3}", g.p99_ms.max(t.p99_ms).max(p.p99_ms));
        for (m, x) in mean.iter_mut().zip(v) {
            *m += x / k;
        }
    }
    print!("{:22} {:>5}", "MEAN", "");
    for x in mean {
        print!(" {x:>6.3}");
    }
    println!();
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
