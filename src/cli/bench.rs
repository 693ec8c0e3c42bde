//! Measurements behind `keel bench`: each prints a report (JSON with `--json`) that
//! bench/README.md quotes with the command that produced it. Never used by tests.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};

use crate::app::App;
use crate::config::Config;
use crate::index::Index;
use crate::pipeline::{Pipeline, Question, TraceSink};
use crate::store::Store;

/// Reads `{text}` / `{title,text}` (corpus) or `{id,text}` (queries) lines.
fn read_texts(path: &Path, limit: usize, with_title: bool) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).take(limit) {
        let v: Value = serde_json::from_str(line).with_context(|| format!("{}:{}", path.display(), n + 1))?;
        let body = v.get("text").and_then(|t| t.as_str()).unwrap_or("");
        let title = if with_title { v.get("title").and_then(|t| t.as_str()).unwrap_or("") } else { "" };
        out.push(if title.is_empty() { body.to_string() } else { format!("{title}\n{body}") });
    }
    Ok(out)
}

fn percentile(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    sorted_us[i.min(sorted_us.len() - 1)] as f64 / 1000.0
}

fn latency(mut us: Vec<u64>) -> Value {
    us.sort_unstable();
    json!({ "p50_ms": percentile(&us, 0.5), "p99_ms": percentile(&us, 0.99), "max_ms": percentile(&us, 1.0), "n": us.len() })
}

/// Resident set size of this process, from /proc (Linux).
pub fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn emit(report: &Value, json_out: bool) -> anyhow::Result<()> {
    if json_out {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(report)?);
    }
    Ok(())
}

/// Query latency: embedding + hybrid search, and the whole grounded pipeline, over the stored
/// corpus repeated `replicate` times (to measure scale without ingesting more).
pub async fn query(
    config: Config,
    queries: &Path,
    limit: usize,
    replicate: usize,
    json_out: bool,
) -> anyhow::Result<()> {
    let qs = read_texts(queries, limit, false)?;
    anyhow::ensure!(!qs.is_empty(), "{}: no queries", queries.display());
    let store = Store::open_embedded(&config.data_dir).await?;
    let embedder = App::load_embedder(&config)?;
    let rss_before = rss_mb();
    let load_start = Instant::now();
    let base = store.docs.all_chunks().await?;
    let corpus = store.docs.current_corpus().await?;
    let mut records = Vec::with_capacity(base.len() * replicate.max(1));
    for copy in 0..replicate.max(1) {
        records.extend(base.iter().cloned().map(|mut r| {
            if copy > 0 {
                r.id = format!("{}~{copy}", r.id);
                r.doc_id = format!("{}~{copy}", r.doc_id);
            }
            r
        }));
    }
    drop(base);
    let chunks = records.len();
    let tmp = std::env::temp_dir().join(format!("keel-bench-{}", std::process::id()));
    let index = Arc::new(Index::build(records, embedder.dim(), &tmp.join("bm25"), corpus)?);
    let load_s = load_start.elapsed().as_secs_f64();
    let rss_serving = rss_mb();

    let cfg = config.retrieval.clone();
    for q in qs.iter().take(10) {
        let qv = embedder.embed(&[q.as_str()])?;
        index.search(q, &qv, cfg.top_k, &cfg)?;
    }
    let (mut embed_us, mut search_us, mut total_us) = (Vec::new(), Vec::new(), Vec::new());
    for q in &qs {
        let t0 = Instant::now();
        let qv = embedder.embed(&[q.as_str()])?;
        let t1 = Instant::now();
        index.search(q, &qv, cfg.top_k, &cfg)?;
        let t2 = Instant::now();
        embed_us.push((t1 - t0).as_micros() as u64);
        search_us.push((t2 - t1).as_micros() as u64);
        total_us.push((t2 - t0).as_micros() as u64);
    }

    let sink = TraceSink::spawn(store.clone());
    let approved = std::sync::Arc::new(crate::governance::approved::ApprovedSet::default());
    let guards = crate::guardrails::Guards::load(&config, &crate::app::App::model_dir(&config))?;
    let gateway = Arc::new(crate::gateway::Gateway::new(&config.gateway, &super::commands::answer_secrets(&config)?)?);
    let pipeline = Pipeline::new(
        &config,
        index.clone(),
        embedder.clone(),
        sink.clone(),
        store.clone(),
        approved,
        guards,
        gateway,
    )?;
    let mut answer_us = Vec::new();
    for q in &qs {
        let t = Instant::now();
        pipeline.run(Question::new(q.clone(), "bench")).await?;
        answer_us.push(t.elapsed().as_micros() as u64);
    }
    sink.flush().await;
    let _ = std::fs::remove_dir_all(&tmp);
    let report = json!({
        "chunks": chunks,
        "replicate": replicate.max(1),
        "queries": qs.len(),
        "index_build_s": load_s,
        "rss_mb_before_load": rss_before,
        "rss_mb_serving": rss_serving,
        "embed_query": latency(embed_us),
        "search": latency(search_us),
        "hybrid_query": latency(total_us),
        "grounded_answer": latency(answer_us),
    });
    emit(&report, json_out)
}

pub fn embed(config: &Config, data: &Path, limit: usize, json_out: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(data).with_context(|| format!("{}", data.display()))?;
    let mut texts = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).take(limit) {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{}:{}", data.display(), n + 1))?;
        let body = v.get("text").and_then(|t| t.as_str()).unwrap_or("");
        let title = v.get("title").and_then(|t| t.as_str()).unwrap_or("");
        texts.push(if title.is_empty() { body.to_string() } else { format!("{title}\n{body}") });
    }
    let embedder = App::load_embedder(config)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens: usize = embedder.tokenize(&refs)?.iter().map(Vec::len).sum();
    let start = std::time::Instant::now();
    let vecs = embedder.embed(&refs)?;
    let secs = start.elapsed().as_secs_f64();
    let report = json!({
        "engine": "keel-embed",
        "texts": texts.len(),
        "tokens": tokens,
        "seconds": secs,
        "passages_per_s": texts.len() as f64 / secs,
        "tokens_per_s": tokens as f64 / secs,
        "dim": vecs.len() / texts.len().max(1),
    });
    if json_out {
        println!("{report}");
    } else {
        println!(
            "{} passages ({} tokens) in {:.2} s: {:.1} passages/s, {:.0} tokens/s",
            texts.len(),
            tokens,
            secs,
            texts.len() as f64 / secs,
            tokens as f64 / secs
        );
    }
    Ok(())
}
