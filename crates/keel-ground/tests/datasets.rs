//! Guards the dev-half figures of the shipped model against regressions: reads the public
//! grounding sets from `../shared/data` (never copied into the repo) and skips when absent.

use std::path::PathBuf;

use keel_ground::eval::{evaluate, load_jsonl, Thresholds};
use keel_ground::Checker;

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("KEEL_GROUNDING_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/grounding")));
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("SKIP: grounding data not found at {} (set KEEL_GROUNDING_DATA)", dir.display());
        None
    }
}

#[test]
fn dev_halves_beat_the_word_overlap_baseline() {
    let Some(dir) = data_dir() else { return };
    let checker = Checker::new().unwrap();
    // Dev halves only: the test halves are for reported figures, not for tests that gate changes.
    for set in ["wice", "factcheck_gpt_stance", "faithdial_audit"] {
        let path = dir.join(set).join("dev.jsonl");
        if !path.is_file() {
            println!("SKIP: {} absent", path.display());
            continue;
        }
        let records = load_jsonl(&path).unwrap();
        let r = evaluate(&checker, &records, Thresholds::shipped(&checker));
        println!(
            "{set}: bacc {:.3} baseline {:.3} auroc {:.3}",
            r.balanced_accuracy, r.baseline_balanced_accuracy, r.auroc
        );
        assert!(r.auroc > r.baseline_auroc, "{set}: {r:?}");
        assert!(r.balanced_accuracy > 0.7, "{set}: {r:?}");
    }
}
