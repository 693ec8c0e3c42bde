//! `keel documents`: the chunks the document scanner flags (instructions aimed at an AI, i.e.
//! indirect prompt injection), found at ingest and on demand, and their review — approve one
//! exact content back into answers, or revoke the approval.

use std::collections::HashSet;
use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;
use serde_json::json;

use crate::config::Config;
use crate::guardrails::review::{content_hash, ChunkReviews};
use crate::store::{ChunkApproval, Store};

#[derive(Debug, Subcommand)]
pub enum DocumentsAction {
    /// Chunks carrying instructions aimed at an AI: kept out of answers unless approved.
    Flagged {
        #[arg(long)]
        json: bool,
    },
    /// Let a flagged chunk's current content back into answers (a changed chunk needs a new
    /// approval). A running server picks it up within seconds.
    Approve {
        chunk: String,
        #[arg(long, default_value = "operator")]
        by: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Withdraw every approval of a chunk.
    Revoke { chunk: String },
}

/// A flagged chunk and its review state.
#[derive(Debug, Serialize)]
pub struct Flagged {
    pub chunk: String,
    pub doc: String,
    pub score: f32,
    pub reasons: Vec<String>,
    pub approved: bool,
    pub excerpt: String,
}

/// Scans the stored chunks (of `docs` only, when given) with the document scanner. Empty when
/// the guard or document scanning is off.
pub async fn scan_flagged(
    config: &Config,
    store: &Store,
    docs: Option<&HashSet<String>>,
) -> anyhow::Result<Vec<Flagged>> {
    if !config.guard.scan_documents {
        return Ok(Vec::new());
    }
    let Some(guard) = crate::guardrails::build_guard(config, None)? else { return Ok(Vec::new()) };
    let reviews = ChunkReviews::default();
    reviews.replace(store.docs.chunk_approvals().await?);
    let mut out = Vec::new();
    for c in store.docs.all_chunks().await? {
        if docs.is_some_and(|d| !d.contains(&c.doc_id)) {
            continue;
        }
        let v = guard.scan_document(&c.text);
        if v.flagged {
            out.push(Flagged {
                approved: reviews.is_approved(&c.id, &c.text),
                excerpt: v.segment.unwrap_or_default().chars().take(160).collect(),
                chunk: c.id,
                doc: c.doc_id,
                score: v.score,
                reasons: v.reasons.iter().map(|r| r.as_str().to_string()).collect(),
            });
        }
    }
    Ok(out)
}

/// The lines `keel ingest` prints about flagged chunks of what it just added or changed.
pub fn print_flagged(flagged: &[Flagged]) {
    let waiting: Vec<&Flagged> = flagged.iter().filter(|f| !f.approved).collect();
    if waiting.is_empty() {
        return;
    }
    println!(
        "{} chunk(s) carry instructions aimed at an AI and are kept out of answers until approved \
         (`keel documents approve CHUNK`):",
        waiting.len()
    );
    for f in waiting {
        println!("  {}  score {:.2}  {}  \"{}\"", f.chunk, f.score, f.reasons.join(","), f.excerpt);
    }
}

pub async fn documents(config: &Config, action: DocumentsAction) -> anyhow::Result<ExitCode> {
    let store = Store::open_embedded(&config.data_dir).await?;
    match action {
        DocumentsAction::Flagged { json: json_out } => {
            let flagged = scan_flagged(config, &store, None).await?;
            if json_out {
                for f in &flagged {
                    println!("{}", serde_json::to_string(f)?);
                }
            } else if flagged.is_empty() {
                println!("no flagged chunks");
            } else {
                for f in &flagged {
                    let state = if f.approved { "approved" } else { "kept out" };
                    println!("{:<48} {state:<9} {:.2} {}  \"{}\"", f.chunk, f.score, f.reasons.join(","), f.excerpt);
                }
            }
        }
        DocumentsAction::Approve { chunk, by, note } => {
            let chunks = store.docs.all_chunks().await?;
            let Some(c) = chunks.iter().find(|c| c.id == chunk) else {
                anyhow::bail!("no chunk `{chunk}` in {}; see `keel documents flagged`", config.data_dir.display());
            };
            let a = ChunkApproval {
                chunk_id: c.id.clone(),
                content_hash: content_hash(&c.text),
                approved_by: by,
                note,
                approved_at_ms: crate::trace::now_ms(),
            };
            store.docs.approve_chunk(&a).await?;
            println!("{}", json!({ "approved": a.chunk_id, "content_hash": &a.content_hash[..16] }));
        }
        DocumentsAction::Revoke { chunk } => {
            let n = store.docs.revoke_chunk(&chunk).await?;
            anyhow::ensure!(n > 0, "chunk `{chunk}` has no approval");
            println!("revoked {n} approval(s) of {chunk}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
