//! Prints one line per record (file, id, action, every layer's score and detail) so two
//! builds of the guard can be diffed for identical verdicts, and optionally times each input:
//! `cargo run --release -p keel-guard --example verdicts -- FILE.jsonl ... [--time REPS]`.
//!
//! Use it on train/dev files only: it prints record ids next to verdicts.

use std::process::ExitCode;
use std::time::Instant;

use keel_guard::eval::read_records;
use keel_guard::InputGuard;

fn run() -> Result<(), String> {
    let mut files = Vec::new();
    let mut reps = 0usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--time" {
            reps = it.next().and_then(|n| n.parse().ok()).ok_or("--time needs a number")?;
        } else {
            files.push(a);
        }
    }
    let guard = InputGuard::with_defaults().map_err(|e| e.to_string())?;
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let recs = read_records(&text).map_err(|e| format!("{path}: {e}"))?;
        for r in &recs {
            let v = guard.check(&r.text).verdict;
            if reps > 0 {
                // Best of `reps` runs: the machine is shared, the minimum is the stable figure.
                let mut best = f64::MAX;
                for _ in 0..reps {
                    let t0 = Instant::now();
                    drop(guard.check(&r.text));
                    best = best.min(t0.elapsed().as_secs_f64() * 1e3);
                }
                println!("{path}\t{}\t{}\t{best:.4}", r.id, r.text.len());
                continue;
            }
            let layers: Vec<String> =
                v.layers.iter().map(|l| format!("{}={:.6}[{}]", l.layer, l.score, l.detail.join(","))).collect();
            println!("{path}\t{}\t{:?}\t{:?}\t{}", r.id, v.action, v.reasons, layers.join(" "));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verdicts: {e}");
            ExitCode::FAILURE
        }
    }
}
