//! `keel redteam`, `keel bench grounding` and `keel signatures …`: measuring the input guard
//! and the grounding checker on labelled files, and managing the local signature database.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use keel_guard::eval::{evaluate_with, percentile, read_records, EvalMode, EvalReport, Record};
use keel_guard::{GuardConfig, InputGuard, Signature, SignatureKind, SignatureStatus};
use serde_json::json;

use crate::config::Config;
use crate::guardrails;

fn records(path: &Path, attacks: bool) -> anyhow::Result<Vec<Record>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let all = read_records(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(all.into_iter().filter(|r| r.label.is_attack() == attacks).collect())
}

fn line(name: &str, r: &EvalReport) -> String {
    let cats: Vec<String> = r.per_category.iter().map(|(k, c)| format!("{k}={:.3} ({})", c.rate, c.n)).collect();
    format!(
        "{name}\n  attacks {} tpr {:.3} (blocked {:.3}) | benign {} fpr {:.4} (blocked {:.4}) | p50 {:.3} ms p99 {:.3} ms{}\n  {}",
        r.n_attacks,
        r.tpr,
        r.tpr_block,
        r.n_benign,
        r.fpr,
        r.fpr_block,
        r.p50_ms,
        r.p99_ms,
        if r.timing_runs > 1 { format!(" (fastest of {} runs)", r.timing_runs) } else { String::new() },
        cats.join("  ")
    )
}

fn summary(r: &EvalReport) -> serde_json::Value {
    json!({
        "tpr": r.tpr, "fpr": r.fpr, "n_attacks": r.n_attacks, "n_benign": r.n_benign,
        "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "timing_runs": r.timing_runs, "tpr_block": r.tpr_block, "fpr_block": r.fpr_block,
        "per_category": r.per_category, "signatures_version": r.signatures_version,
    })
}

/// Runs labelled JSONL files through the input guard (or, with `documents`, the document
/// scanner) as configured, and reports detection rates and per-input latency.
pub struct RedteamArgs {
    pub attacks: Vec<PathBuf>,
    pub benign: Vec<PathBuf>,
    pub documents: bool,
    pub json: bool,
    /// Score inputs with the embedding classifier, as `keel serve` does with `[guard]
    /// embedding_classifier = true`: every input goes through the tuned encoder one at a time,
    /// and that time is reported beside the guard's (`encoder_p50_ms`, `encoder_p99_ms`).
    pub embed: bool,
    /// A JSON file of guard thresholds (keel-guard's `GuardConfig`) for tuning on dev data.
    pub guard_config: Option<PathBuf>,
    /// Runs per input for the latency (its fastest is kept).
    pub repeat: usize,
}

pub fn redteam(config: &Config, args: RedteamArgs) -> anyhow::Result<ExitCode> {
    let RedteamArgs { attacks, benign, documents, json: json_out, embed, guard_config, repeat } = args;
    let cfg =
        Config { guard: crate::config::GuardSettings { enabled: true, ..config.guard.clone() }, ..config.clone() };
    let thresholds = match &guard_config {
        Some(p) => serde_json::from_str::<GuardConfig>(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("{}: not a guard configuration", p.display()))?,
        None => GuardConfig { pii: cfg.guard.pii.clone(), ..GuardConfig::default() },
    };
    let encoder = if embed { Some(guardrails::load_encoder(&crate::app::App::model_dir(config))?) } else { None };
    // As in the pipeline: the tuned encoder's vectors feed the embedding classifier (the
    // signature-embedding layer stays off, as it is in `keel serve`).
    let guard: std::sync::Arc<InputGuard> = guardrails::build_guard_with(&cfg, thresholds, None)?
        .context("the input guard is disabled in this configuration")?;
    // One input at a time, as a request embeds its question; the time of each is kept.
    let mut encoder_ms = Vec::new();
    let mut vectors = |recs: &[Record]| -> anyhow::Result<Option<Vec<Vec<f32>>>> {
        let Some(e) = &encoder else { return Ok(None) };
        let mut out = Vec::with_capacity(recs.len());
        for r in recs {
            // The same text the pipeline embeds (`guardrails::embedding_text`).
            let text = guardrails::embedding_text(&r.text);
            let t0 = std::time::Instant::now();
            out.push(e.embed(&[text.as_str()])?);
            encoder_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(Some(out))
    };
    let mode = if documents { EvalMode::Document } else { EvalMode::Input };
    let mut files = Vec::new();
    for p in &attacks {
        files.push((format!("attacks {}", p.display()), records(p, true)?));
    }
    for p in &benign {
        files.push((format!("benign {}", p.display()), records(p, false)?));
    }
    let all: Vec<Record> = files.iter().flat_map(|(_, r)| r.iter().cloned()).collect();
    anyhow::ensure!(!all.is_empty(), "no records: give --attacks and/or --benign JSONL files of {{id,text,label}}");
    let all_vectors = vectors(&all)?;
    let mut per_file = Vec::new();
    let mut offset = 0;
    for (n, r) in &files {
        let v = all_vectors.as_ref().map(|v| &v[offset..offset + r.len()]);
        per_file.push((n.clone(), evaluate_with(&guard, r, mode, v, repeat)));
        offset += r.len();
    }
    let total = evaluate_with(&guard, &all, mode, all_vectors.as_deref(), repeat);
    encoder_ms.sort_by(f64::total_cmp);
    let encoder_p = |q: f64| percentile(&encoder_ms, q);
    if json_out {
        let mut v = summary(&total);
        if embed {
            v["encoder_p50_ms"] = json!(encoder_p(0.50));
            v["encoder_p99_ms"] = json!(encoder_p(0.99));
        }
        v["files"] = per_file.iter().map(|(n, r)| json!({ "file": n, "report": summary(r) })).collect();
        println!("{v}");
    } else {
        for (n, r) in &per_file {
            println!("{}", line(n, r));
        }
        println!("{}", line("all", &total));
        if embed {
            println!("encoder (one input per pass): p50 {:.3} ms p99 {:.3} ms", encoder_p(0.50), encoder_p(0.99));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The grounding checker on `{context, claim_or_answer, label}` JSONL; thresholds fitted on
/// `dev` when given, else the shipped global ones.
pub fn grounding(data: &Path, dev: Option<&Path>, json_out: bool) -> anyhow::Result<ExitCode> {
    use keel_ground::eval::{evaluate, fit_thresholds, load_jsonl, Thresholds};
    let checker = keel_ground::Checker::new()?;
    let records = load_jsonl(data)?;
    anyhow::ensure!(!records.is_empty(), "{}: no records", data.display());
    let thresholds = match dev {
        Some(d) => fit_thresholds(&checker, &load_jsonl(d)?),
        None => Thresholds::shipped(&checker),
    };
    let r = evaluate(&checker, &records, thresholds);
    if json_out {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "{}: n {} | balanced accuracy {:.3} (word-overlap baseline {:.3}) | AUROC {:.3} (baseline {:.3}) | p50 {:.3} ms p99 {:.3} ms",
            data.display(),
            r.n,
            r.balanced_accuracy,
            r.baseline_balanced_accuracy,
            r.auroc,
            r.baseline_auroc,
            r.p50_ms,
            r.p99_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum SignaturesAction {
    /// Every signature: shipped and local, attacks and benign look-alikes, with status.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a local signature (active at once, or quarantined until approved).
    Add {
        #[arg(long)]
        text: String,
        /// e.g. instruction_override, roleplay_jailbreak, system_prompt_extraction, benign_lookalike.
        #[arg(long)]
        category: String,
        /// A benign look-alike rather than an attack.
        #[arg(long)]
        benign: bool,
        #[arg(long, default_value = "en")]
        lang: String,
        #[arg(long, default_value = "added by an operator")]
        provenance: String,
        #[arg(long)]
        quarantine: bool,
    },
    /// Make a quarantined local signature active.
    Approve { id: String },
    /// Remove a local signature.
    Remove { id: String },
}

pub fn signatures(config: &Config, action: SignaturesAction) -> anyhow::Result<ExitCode> {
    let dir = &config.data_dir;
    let mut local = guardrails::load_local(dir)?;
    match action {
        SignaturesAction::List { json: json_out } => {
            let builtin = keel_guard::Signatures::builtin()?;
            let rows = builtin.list().iter().map(|s| ("builtin", s)).chain(local.list().iter().map(|s| ("local", s)));
            for (origin, s) in rows {
                if json_out {
                    let mut v = serde_json::to_value(s)?;
                    v["origin"] = json!(origin);
                    println!("{v}");
                } else {
                    println!("{:<14} {origin:<7} {:?} {:?} {:<26} {}", s.id, s.kind, s.status, s.category, s.text);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        SignaturesAction::Add { text, category, benign, lang, provenance, quarantine } => {
            anyhow::ensure!(!text.trim().is_empty(), "--text must not be empty");
            let id = format!("local-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            let status = if quarantine { SignatureStatus::Quarantined } else { SignatureStatus::Active };
            let kind = if benign { SignatureKind::Benign } else { SignatureKind::Attack };
            local.add(Signature { id: id.clone(), kind, category, lang, text, provenance, status })?;
            guardrails::save_local(dir, &local)?;
            println!("added {id} ({status:?}); restart `keel serve` to load it");
        }
        SignaturesAction::Approve { id } => {
            local.set_status(&id, SignatureStatus::Active)?;
            guardrails::save_local(dir, &local)?;
            println!("approved {id}");
        }
        SignaturesAction::Remove { id } => {
            local.remove(&id)?;
            guardrails::save_local(dir, &local)?;
            println!("removed {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
