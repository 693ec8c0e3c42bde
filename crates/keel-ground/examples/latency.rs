//! Latency of `Checker::score` per record on a shared, loaded machine: each record is scored
//! `--repeat` times and its fastest run kept (interference only ever adds time), then p50/p99.
//!
//! ```text
//! cargo run --release -p keel-ground --example latency -- FILE.jsonl [FILE.jsonl ...] [--repeat 7]
//! ```

use std::time::Instant;

use keel_ground::eval::load_jsonl;
use keel_ground::Checker;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut files = Vec::new();
    let mut repeat = 7usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--repeat" => repeat = args.next().ok_or("--repeat N")?.parse()?,
            _ => files.push(a),
        }
    }
    let t = Instant::now();
    let checker = Checker::new()?;
    println!("Checker::new: {:.1} ms (parses model.json)", t.elapsed().as_secs_f64() * 1e3);
    for f in files {
        let records = load_jsonl(std::path::Path::new(&f))?;
        let mut best: Vec<f64> = Vec::with_capacity(records.len());
        let mut sink = 0.0f32;
        for r in &records {
            let mut b = f64::MAX;
            for _ in 0..repeat.max(1) {
                let t = Instant::now();
                sink += checker.score(&r.context, &r.claim_or_answer);
                b = b.min(t.elapsed().as_secs_f64() * 1e3);
            }
            best.push(b);
        }
        best.sort_by(f64::total_cmp);
        let q = |p: f64| best[((best.len() as f64 - 1.0) * p).round() as usize];
        println!("{f}: n {} p50 {:.3} ms p99 {:.3} ms max {:.3} ms ({sink:.0})", best.len(), q(0.5), q(0.99), q(1.0));
    }
    Ok(())
}
