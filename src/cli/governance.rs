//! `keel approved …` and `keel escalations …`: the administrator's commands, working on the
//! store directly (a running server picks up approved-answer changes within seconds).

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::config::Config;
use crate::governance::admin::{self, ApprovedEdit};
use crate::governance::{ApprovedAnswer, Escalation};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum ApprovedAction {
    /// Add an approved answer (served verbatim to matching questions).
    Add {
        #[arg(long)]
        question: String,
        #[arg(long)]
        answer: String,
        #[arg(long)]
        intent: Option<String>,
        /// A document id the answer cites (repeatable).
        #[arg(long = "cite")]
        cites: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List the current version of every approved answer.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Write a new version. With --expected-version, fails if someone else edited since.
    Edit {
        id: String,
        #[arg(long)]
        question: Option<String>,
        #[arg(long)]
        answer: Option<String>,
        #[arg(long)]
        intent: Option<String>,
        #[arg(long = "cite")]
        cites: Vec<String>,
        #[arg(long)]
        expected_version: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Stop serving an approved answer (a new, retired version; history is kept).
    Retire { id: String },
    /// Every version of one approved answer.
    History {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CorrectionsAction {
    /// Mark the answer of a trace wrong; questions that match it get the correction instead.
    Add {
        trace: String,
        #[arg(long)]
        text: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// Every correction with the wrong answer it replaced.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AnswersAction {
    /// How the answer to a question changed across versions, with word diffs.
    History {
        question: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn corrections(config: Config, action: CorrectionsAction) -> anyhow::Result<ExitCode> {
    let store = Store::open_embedded(&config.data_dir).await?;
    match action {
        CorrectionsAction::Add { trace, text, reason, json } => {
            let mode = config.governance.corrections;
            let c = admin::add_correction(&store, &trace, &text, &reason, &author(), mode).await?;
            if json {
                println!("{}", serde_json::to_string(&c)?);
            } else {
                println!(
                    "{}: questions like \"{}\" now get the correction (approved answer {})",
                    c.id,
                    c.question,
                    c.approved_id.as_deref().unwrap_or("-")
                );
            }
        }
        CorrectionsAction::List { json } => {
            for c in store.snapshots.corrections().await? {
                if json {
                    println!("{}", serde_json::to_string(&c)?);
                } else {
                    println!(
                        "{}  {}  [{}]\n  wrong: {}\n  right: {}",
                        c.id, c.question, c.reason, c.wrong_answer, c.correction
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn answers(config: Config, action: AnswersAction) -> anyhow::Result<ExitCode> {
    let store = Store::open_embedded(&config.data_dir).await?;
    let AnswersAction::History { question, json } = action;
    let history = admin::answer_history(&store, &question).await?;
    if history.is_empty() {
        eprintln!("no stored answers for \"{question}\"");
        return Ok(ExitCode::FAILURE);
    }
    for h in &history {
        if json {
            println!("{h}");
            continue;
        }
        println!(
            "{}  corpus {}  at {}",
            h["snapshot"].as_str().unwrap_or(""),
            h["versions"]["corpus"],
            h["created_at_ms"]
        );
        match h["diff"].as_str() {
            Some(d) => println!("  changed: {d}"),
            None => println!("  {}", h["answer"].as_str().unwrap_or("")),
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum EscalationsAction {
    /// The queue (optionally only one status: open, claimed, replied, resolved).
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One escalation with its transcript and trace links.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Take an escalation.
    Claim {
        id: String,
        #[arg(long)]
        assignee: String,
        #[arg(long)]
        json: bool,
    },
    /// Reply to the user (delivered on their next request or poll).
    Reply {
        id: String,
        #[arg(long)]
        text: String,
        #[arg(long)]
        json: bool,
    },
    /// Close an escalation.
    Resolve {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

fn author() -> String {
    std::env::var("USER").map(|u| format!("cli:{u}")).unwrap_or_else(|_| "cli".into())
}

fn print_approved(a: &ApprovedAnswer, json_out: bool) -> anyhow::Result<()> {
    if json_out {
        println!("{}", serde_json::to_string(a)?);
    } else {
        let intent = a.intent.as_deref().map(|i| format!(" [{i}]")).unwrap_or_default();
        println!("{} v{} {}{}\n  Q: {}\n  A: {}", a.id, a.version, a.status, intent, a.question, a.answer);
        if !a.cites.is_empty() {
            println!("  cites: {}", a.cites.join(", "));
        }
    }
    Ok(())
}

pub async fn approved(config: Config, action: ApprovedAction) -> anyhow::Result<ExitCode> {
    let store = Store::open_embedded(&config.data_dir).await?;
    match action {
        ApprovedAction::Add { question, answer, intent, cites, json } => {
            let a = admin::add_approved(&store, &question, &answer, intent, cites, &author()).await?;
            print_approved(&a, json)?;
        }
        ApprovedAction::List { json } => {
            let list = store.approved.approved_current().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                list.iter().try_for_each(|a| print_approved(a, false))?;
            }
        }
        ApprovedAction::Edit { id, question, answer, intent, cites, expected_version, json } => {
            let expected = match expected_version {
                Some(v) => v,
                None => admin::current(&store, &id).await?.version,
            };
            let cites = (!cites.is_empty()).then_some(cites);
            let edit = ApprovedEdit { question, answer, intent, cites };
            let a = admin::edit_approved(&store, &id, expected, edit, None, &author()).await?;
            print_approved(&a, json)?;
        }
        ApprovedAction::Retire { id } => {
            let cur = admin::current(&store, &id).await?;
            let a = admin::edit_approved(&store, &id, cur.version, ApprovedEdit::default(), Some("retired"), &author())
                .await?;
            println!("retired {} (version {})", a.id, a.version);
        }
        ApprovedAction::History { id, json } => {
            let h = store.approved.approved_history(&id).await?;
            if h.is_empty() {
                eprintln!("no approved answer `{id}`");
                return Ok(ExitCode::FAILURE);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&h)?);
            } else {
                h.iter().try_for_each(|a| print_approved(a, false))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_escalation(e: &Escalation, json_out: bool, full: bool) -> anyhow::Result<()> {
    if json_out {
        let mut v = serde_json::to_value(e)?;
        v["time_to_first_reply_ms"] = json!(e.time_to_first_reply_ms());
        v["time_to_resolution_ms"] = json!(e.time_to_resolution_ms());
        println!("{v}");
        return Ok(());
    }
    let who = e.assignee.as_deref().unwrap_or("-");
    println!("{}  {:<9} {:<22} {:<12} {}", e.id, e.status, e.reason, who, e.question);
    if full {
        for t in &e.transcript {
            println!("  {:>9}: {}", t.role, t.text.replace('\n', "\n             "));
        }
        println!("  traces: {}", e.trace_ids.join(", "));
    }
    Ok(())
}

pub async fn escalations(config: Config, action: EscalationsAction) -> anyhow::Result<ExitCode> {
    let store = Store::open_embedded(&config.data_dir).await?;
    let now = crate::trace::now_ms();
    let (e, json_out) = match action {
        EscalationsAction::List { status, json } => {
            for e in store.escalations.escalations(status.as_deref()).await? {
                print_escalation(&e, json, false)?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        EscalationsAction::Show { id, json } => match store.escalations.escalation(&id).await? {
            Some(e) => (e, json),
            None => {
                eprintln!("no escalation `{id}`");
                return Ok(ExitCode::FAILURE);
            }
        },
        EscalationsAction::Claim { id, assignee, json } => {
            (store.escalations.claim_escalation(&id, &assignee, now).await?, json)
        }
        EscalationsAction::Reply { id, text, json } => {
            (store.escalations.reply_escalation(&id, &text, now).await?, json)
        }
        EscalationsAction::Resolve { id, json } => (store.escalations.resolve_escalation(&id, now).await?, json),
    };
    print_escalation(&e, json_out, true)?;
    Ok(ExitCode::SUCCESS)
}
