//! Command-line harness for the evaluation API (what `keel redteam` will wrap):
//! `cargo run --release -p keel-guard --example redteam -- --attacks A.jsonl --benign B.jsonl [--documents] [--json] [--show N] [--config GUARD.json] [--no-classifier] [--repeat N]`.
//!
//! Each file is reported on its own, then all files together. Attack files contribute their
//! attack-labelled records, benign files their benign ones (a file may be given as both).
//! `--no-classifier` turns the classifier layer off (the guard as it was before that layer).
//! `--show N` prints up to N missed/false-alarm texts: use it on train/dev files only.
//! `--repeat N` times each input N times and keeps its fastest run (the machine is shared).

use std::process::ExitCode;

use keel_guard::eval::{evaluate_with, read_records, EvalMode, EvalReport, Record};
use keel_guard::{GuardConfig, InputGuard, Signatures};

struct Args {
    attacks: Vec<String>,
    benign: Vec<String>,
    mode: EvalMode,
    json: bool,
    show: usize,
    config: Option<String>,
    no_classifier: bool,
    repeat: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        attacks: vec![],
        benign: vec![],
        mode: EvalMode::Input,
        json: false,
        show: 0,
        config: None,
        no_classifier: false,
        repeat: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--attacks" => a.attacks.push(it.next().ok_or("--attacks needs a file")?),
            "--benign" => a.benign.push(it.next().ok_or("--benign needs a file")?),
            "--documents" => a.mode = EvalMode::Document,
            "--json" => a.json = true,
            "--no-classifier" => a.no_classifier = true,
            "--config" => a.config = Some(it.next().ok_or("--config needs a JSON file")?),
            "--repeat" => {
                a.repeat =
                    it.next().and_then(|n| n.parse().ok()).filter(|n| *n >= 1).ok_or("--repeat needs a number ≥ 1")?
            }
            "--show" => a.show = it.next().and_then(|n| n.parse().ok()).ok_or("--show needs a number")?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn load(path: &str, attacks: bool) -> Result<Vec<Record>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let recs = read_records(&text).map_err(|e| format!("{path}: {e}"))?;
    Ok(recs.into_iter().filter(|r| r.label.is_attack() == attacks).collect())
}

fn summary(name: &str, r: &EvalReport) -> String {
    let cats: Vec<String> = r.per_category.iter().map(|(k, c)| format!("{k}={:.3}({})", c.rate, c.n)).collect();
    format!(
        "{name}: attacks={} tpr={:.3} (block {:.3}) | benign={} fpr={:.3} (block {:.3}) | p50={:.3}ms p99={:.3}ms max={:.3}ms | {}",
        r.n_attacks,
        r.tpr,
        r.tpr_block,
        r.n_benign,
        r.fpr,
        r.fpr_block,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        cats.join(" ")
    )
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let config = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?;
            serde_json::from_str::<GuardConfig>(&text).map_err(|e| format!("{p}: {e}"))?
        }
        None => GuardConfig::default(),
    };
    let sigs = Signatures::builtin().map_err(|e| e.to_string())?;
    let mut guard = InputGuard::new(sigs, config).map_err(|e| e.to_string())?;
    if args.no_classifier {
        guard.set_classifier(None);
    }
    let mut files = Vec::new();
    for p in &args.attacks {
        files.push((format!("attacks:{p}"), load(p, true)?));
    }
    for p in &args.benign {
        files.push((format!("benign:{p}"), load(p, false)?));
    }
    let all: Vec<Record> = files.iter().flat_map(|(_, r)| r.iter().cloned()).collect();
    let mut reports = Vec::new();
    for (name, recs) in &files {
        let r = evaluate_with(&guard, recs, args.mode, None, args.repeat);
        if !args.json {
            println!("{}", summary(name, &r));
            for id in r.missed.iter().chain(&r.false_alarms).take(args.show) {
                if let Some(rec) = recs.iter().find(|x| &x.id == id) {
                    let v = guard.check(&rec.text).verdict;
                    let t: String = rec.text.chars().take(200).collect::<String>().replace('\n', " ");
                    println!("  [{:?} {:.2} {:?}] {id}: {t}", v.action, v.score, v.reasons);
                }
            }
        }
        reports.push((name.clone(), r));
    }
    let total = evaluate_with(&guard, &all, args.mode, None, args.repeat);
    if args.json {
        let mut m = serde_json::Map::new();
        for (name, r) in &reports {
            m.insert(name.clone(), serde_json::to_value(r).map_err(|e| e.to_string())?);
        }
        m.insert("all".into(), serde_json::to_value(&total).map_err(|e| e.to_string())?);
        println!("{}", serde_json::to_string_pretty(&m).map_err(|e| e.to_string())?);
    } else {
        println!("{}", summary("ALL", &total));
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redteam: {e}");
            ExitCode::FAILURE
        }
    }
}
