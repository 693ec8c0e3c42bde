//! `keel documents`: the chunks the document scanner flags (instructions aimed at an AI, i.e.
//! indirect prompt injection), found at ingest and on demand, and their review — approve one
//! exact content back into answers, or revoke the approval.

use std::collections::HashSet;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use crate::config::Config;
use crate::guardrails::review::{self, Flagged};
use crate::store::Store;

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

/// Scans the stored chunks (of `docs` only, when given). Empty when the guard or document
/// scanning is off.
pub async fn scan_flagged(
    config: &Config,
    store: &Store,
    docs: Option<&HashSet<String>>,
) -> anyhow::Result<Vec<Flagged>> {
    if !config.guard.scan_documents {
        return Ok(Vec::new());
    }
    let Some(guard) = crate::guardrails::build_guard(config, None)? else { return Ok(Vec::new()) };
    Ok(review::scan_flagged(&guard, store, docs).await?)
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
            let a = review::approve(&store, &chunk, &by, &note)
                .await
                .with_context(|| format!("in {}; see `keel documents flagged`", config.data_dir.display()))?;
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
