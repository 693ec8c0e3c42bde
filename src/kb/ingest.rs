//! Keeping the store in step with files: change detection by content hash, replacement of a
//! changed file's chunks, optional pruning, one new corpus version per effective change.
//!
//! Order of writes: the store commit (documents, chunks, corpus version) is atomic and comes
//! first; the BM25 index follows. If the process dies between the two, the BM25 index carries
//! the old version and is rebuilt from the store at the next load.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::digest::sha256_hex;
use serde::Serialize;

use super::{chunk_document, parse_file, DocFormat};
use crate::config::IngestConfig;
use crate::embedding::Embedder;
use crate::index::{index_text, Bm25, IndexError};
use crate::store::{ChunkRecord, DocRecord, IngestBatch, Store, StoreError};

/// Texts embedded per progress-bar step.
const EMBED_STEP: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: no such file or folder")]
    NotFound { path: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("embedding: {0}")]
    Embed(#[from] keel_embed::EmbedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
}

#[derive(Debug, Default, Serialize)]
pub struct IngestReport {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
    pub removed: Vec<String>,
    /// Documents whose file disappeared but were kept because `--prune` was not given.
    pub missing: Vec<String>,
    pub skipped: Vec<Skipped>,
    pub chunks_embedded: usize,
    /// The corpus version after this ingest.
    pub corpus_version: Option<String>,
    /// Whether this ingest created a new corpus version.
    pub new_version: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

pub struct IngestOptions {
    pub prune: bool,
    pub progress: bool,
}

/// A document read from disk, before chunking.
struct Incoming {
    id: String,
    path: String,
    format: DocFormat,
    stem: String,
    text: String,
    hash: String,
    bytes: u64,
    jsonl_title: Option<String>,
}

fn display(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/").trim_start_matches("./").to_string()
}

/// Why a file's bytes cannot be a document, if they cannot.
pub fn reject_reason(bytes: &[u8]) -> Option<String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Some("empty".into());
    }
    if bytes.iter().take(8192).any(|b| *b == 0) {
        return Some("binary (contains NUL bytes)".into());
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Some(format!("not UTF-8 (invalid byte at offset {})", e.valid_up_to()));
    }
    None
}

fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, IngestError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            for entry in walkdir::WalkDir::new(p).sort_by_file_name() {
                let entry = entry.map_err(|e| IngestError::Io { path: display(p), message: e.to_string() })?;
                let name = entry.file_name().to_string_lossy();
                if name.starts_with('.') && entry.depth() > 0 {
                    continue;
                }
                if entry.file_type().is_file() {
                    files.push(entry.into_path());
                }
            }
        } else if p.is_file() {
            files.push(p.clone());
        } else {
            return Err(IngestError::NotFound { path: display(p) });
        }
    }
    Ok(files)
}

fn read_documents(files: &[PathBuf], cfg: &IngestConfig, report: &mut IngestReport) -> Vec<Incoming> {
    let mut docs = Vec::new();
    for f in files {
        let path = display(f);
        let skip =
            |report: &mut IngestReport, reason: String| report.skipped.push(Skipped { path: path.clone(), reason });
        let Some(format) = DocFormat::from_path(f) else {
            let ext =
                f.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_else(|| "no extension".into());
            skip(report, format!("unsupported type ({ext})"));
            continue;
        };
        match std::fs::metadata(f) {
            Ok(m) if m.len() > cfg.max_file_bytes => {
                skip(report, format!("too large ({} bytes, limit {})", m.len(), cfg.max_file_bytes));
                continue;
            }
            Err(e) => {
                skip(report, format!("unreadable ({e})"));
                continue;
            }
            _ => {}
        }
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                skip(report, format!("unreadable ({e})"));
                continue;
            }
        };
        if let Some(reason) = reject_reason(&bytes) {
            skip(report, reason);
            continue;
        }
        let (hash, size) = (sha256_hex(&bytes), bytes.len() as u64);
        // `reject_reason` checked the encoding, so this takes the buffer without copying.
        let Ok(text) = String::from_utf8(bytes) else {
            skip(report, "not UTF-8".into());
            continue;
        };
        let stem = f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if format == DocFormat::Jsonl {
            read_jsonl(&path, &text, report, &mut docs);
            continue;
        }
        docs.push(Incoming {
            id: path.clone(),
            path: path.clone(),
            format,
            stem,
            hash,
            bytes: size,
            text,
            jsonl_title: None,
        });
    }
    docs
}

#[derive(serde::Deserialize)]
struct JsonlDoc {
    #[serde(alias = "_id")]
    id: serde_json::Value,
    #[serde(default)]
    title: String,
    text: String,
}

fn read_jsonl(path: &str, text: &str, report: &mut IngestReport, out: &mut Vec<Incoming>) {
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let where_ = format!("{path}:{}", n + 1);
        let d: JsonlDoc = match serde_json::from_str(line) {
            Ok(d) => d,
            Err(e) => {
                report.skipped.push(Skipped { path: where_, reason: format!("bad JSONL line: {e}") });
                continue;
            }
        };
        let id = match d.id {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        if d.text.trim().is_empty() && d.title.trim().is_empty() {
            report.skipped.push(Skipped { path: where_, reason: "empty".into() });
            continue;
        }
        let body = format!("{}\n{}", d.title, d.text);
        out.push(Incoming {
            hash: sha256_hex(body.as_bytes()),
            bytes: body.len() as u64,
            id,
            path: path.to_string(),
            format: DocFormat::Jsonl,
            stem: String::new(),
            text: d.text,
            jsonl_title: Some(d.title),
        });
    }
}

/// Ingests files and folders into the store and the BM25 index in `data_dir`.
pub async fn ingest(
    paths: &[PathBuf],
    cfg: &IngestConfig,
    store: &Store,
    data_dir: &Path,
    embedder: &Embedder,
    opts: &IngestOptions,
) -> Result<IngestReport, IngestError> {
    let mut report = IngestReport::default();
    let files = collect_files(paths)?;
    let incoming = read_documents(&files, cfg, &mut report);
    let stored: BTreeMap<String, DocRecord> =
        store.docs.documents().await?.into_iter().map(|d| (d.id.clone(), d)).collect();
    let old_version = store.docs.current_corpus().await?.map(|c| c.version).unwrap_or_default();

    let mut batch = IngestBatch::default();
    let mut pending: Vec<(DocRecord, Vec<ChunkRecord>)> = Vec::new();
    let mut seen = HashSet::new();
    for doc in incoming {
        if !seen.insert(doc.id.clone()) {
            report
                .skipped
                .push(Skipped { path: doc.path.clone(), reason: format!("duplicate document id `{}`", doc.id) });
            continue;
        }
        match stored.get(&doc.id) {
            Some(old) if old.content_hash == doc.hash => {
                report.unchanged += 1;
                continue;
            }
            Some(_) => report.changed.push(doc.id.clone()),
            None => report.added.push(doc.id.clone()),
        }
        let parsed = match &doc.jsonl_title {
            Some(title) => {
                let mut p = parse_file(DocFormat::Text, &doc.text, &doc.stem);
                p.title = title.clone();
                p
            }
            None => parse_file(doc.format, &doc.text, &doc.stem),
        };
        let chunks = chunk_document(&parsed, cfg.chunk_tokens, cfg.overlap_tokens);
        let records = chunks
            .into_iter()
            .map(|c| ChunkRecord {
                id: format!("{}#{}", doc.id, c.ordinal),
                doc_id: doc.id.clone(),
                ordinal: c.ordinal,
                title: parsed.title.clone(),
                heading: c.heading_path.join(" > "),
                text: c.text,
                start_char: c.start_char as u64,
                end_char: c.end_char as u64,
                embedding: Vec::new(),
            })
            .collect();
        let record =
            DocRecord { id: doc.id, path: doc.path, title: parsed.title, content_hash: doc.hash, bytes: doc.bytes };
        pending.push((record, records));
    }

    // Documents under the given roots that this walk did not see and that are gone: their file
    // no longer exists, or (JSONL) their file was read and no longer holds their id.
    let roots: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            let r = display(p);
            let prefix = format!("{}/", r.trim_end_matches('/'));
            (r, prefix)
        })
        .collect();
    let read_files: HashSet<String> = files.iter().map(|f| display(f)).collect();
    for (id, d) in &stored {
        if seen.contains(id) || !roots.iter().any(|(r, prefix)| d.path == *r || d.path.starts_with(prefix.as_str())) {
            continue;
        }
        let jsonl_line_gone = d.path != *id && read_files.contains(&d.path);
        if jsonl_line_gone || !Path::new(&d.path).exists() {
            if opts.prune {
                report.removed.push(id.clone());
                batch.removals.push(id.clone());
            } else {
                report.missing.push(id.clone());
            }
        }
    }

    report.chunks_embedded = embed_all(&mut pending, embedder, opts.progress)?;
    batch.added = report.added.len() as u64;
    batch.changed = report.changed.len() as u64;
    let touched: Vec<String> =
        pending.iter().map(|(d, _)| d.id.clone()).chain(batch.removals.iter().cloned()).collect();
    batch.upserts = pending;

    let new = store.docs.apply_ingest(&batch).await?;
    report.new_version = new.as_ref().is_some_and(|n| n.version != old_version);
    let version = match new {
        Some(v) => v.version,
        None => old_version.clone(),
    };
    report.corpus_version = (!version.is_empty()).then(|| version.clone());

    // Bring BM25 in step: a delta if it was in step with the old version, else a rebuild.
    let bm25_dir = data_dir.join("bm25");
    let mut bm25 = Bm25::open(&bm25_dir)?;
    let indexed = bm25.version()?;
    if indexed != version {
        if indexed == old_version && !old_version.is_empty() {
            bm25.apply(&touched, batch.upserts.iter().flat_map(|(_, c)| c), &version)?;
        } else {
            let all = store.docs.all_chunks().await?;
            bm25.rebuild(&version, &all)?;
        }
    }
    Ok(report)
}

fn embed_all(
    pending: &mut [(DocRecord, Vec<ChunkRecord>)],
    embedder: &Embedder,
    progress: bool,
) -> Result<usize, IngestError> {
    let total: usize = pending.iter().map(|(_, c)| c.len()).sum();
    if total == 0 {
        return Ok(0);
    }
    let bar = if progress && std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("embedding {bar:40} {pos}/{len} chunks {per_sec} eta {eta}")
        {
            b.set_style(style);
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut refs: Vec<&mut ChunkRecord> = pending.iter_mut().flat_map(|(_, c)| c.iter_mut()).collect();
    let dim = embedder.dim();
    for group in refs.chunks_mut(EMBED_STEP) {
        let texts: Vec<String> = group.iter().map(|c| index_text(&c.title, &c.heading, &c.text)).collect();
        let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vecs = tokio::task::block_in_place(|| embedder.embed(&text_refs))?;
        for (c, v) in group.iter_mut().zip(vecs.chunks_exact(dim)) {
            c.embedding = v.to_vec();
        }
        bar.inc(group.len() as u64);
    }
    bar.finish_and_clear();
    Ok(total)
}
