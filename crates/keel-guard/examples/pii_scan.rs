//! Counts, per file, the records in which the PII detector finds each kind, to measure false
//! alarms on benign text: `cargo run --release -p keel-guard --example pii_scan -- FILE...`
//! (JSONL with a `text` field, or plain text read as one record per non-empty line);
//! `--show KIND` prints the matched spans of that kind (e.g. `--show secret`).

use std::collections::BTreeMap;

use keel_guard::pii::detect_pii;

fn main() {
    let mut show: Option<String> = None;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--show" {
            show = args.next();
        } else {
            files.push(a);
        }
    }
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("pii_scan: {file}: {e}");
                continue;
            }
        };
        let mut records = 0usize;
        let mut with: BTreeMap<&'static str, usize> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let record = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_string))
                .unwrap_or_else(|| line.to_string());
            records += 1;
            let mut kinds: Vec<&'static str> = Vec::new();
            for f in detect_pii(&record) {
                let kind = f.kind.reason_code().trim_start_matches("pii.");
                if show.as_deref() == Some(kind) {
                    println!("{file}: {kind}: {:?}", &record[f.start..f.end]);
                }
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
            for k in kinds {
                *with.entry(k).or_default() += 1;
            }
        }
        let rates: Vec<String> =
            with.iter().map(|(k, n)| format!("{k} {n} ({:.4})", *n as f64 / records as f64)).collect();
        println!(
            "{file}: {records} records; with a finding: {}",
            if rates.is_empty() { "none".into() } else { rates.join(", ") }
        );
    }
}
