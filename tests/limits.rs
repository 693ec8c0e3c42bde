//! Cost controls end to end, against a fake OpenAI-compatible provider: per-key limits under
//! concurrency (exact), budgets that reconciled usage never exceeds, limits that survive a
//! restart, usage and cost (reported or estimated), and the exact cache.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use keel::config::gateway::{ProviderConfig, ProviderKind, RouteConfig, TargetConfig};
use keel::config::limits::{KeyLimits, Price};
use keel::config::Config;
use keel::gateway::Gateway;
use keel::http::ServerState;
use keel::store::Store;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
enum Play {
    Ok(&'static str),
    NoUsage(&'static str),
    /// A stream that sends its usage chunk when the request asks for one.
    Stream(&'static str),
    Status(u16),
}

#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<VecDeque<Play>>>,
    bodies: Arc<Mutex<Vec<Value>>>,
    delay_ms: Arc<AtomicU64>,
}

impl Fake {
    fn push(&self, plays: &[Play]) {
        self.script.lock().unwrap().extend(plays.iter().copied());
    }
    fn calls(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }
    fn last(&self) -> Value {
        self.bodies.lock().unwrap().last().cloned().unwrap()
    }
}

async fn fake_handler(State(f): State<Fake>, Json(body): Json<Value>) -> Response {
    let stream = body["stream"].as_bool().unwrap_or(false);
    let asked = body.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true);
    f.bodies.lock().unwrap().push(body);
    let delay = f.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let play = f.script.lock().unwrap().pop_front().unwrap_or(Play::Ok("default"));
    let message = |text: &str| json!([{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }]);
    match play {
        Play::Status(code) => {
            (StatusCode::from_u16(code).unwrap(), Json(json!({ "error": { "message": "scripted" } }))).into_response()
        }
        Play::Stream(text) if stream => {
            // Like OpenAI: `usage: null` on every chunk and a final usage-only chunk, only when asked.
            let mut chunk =
                json!({ "object": "chat.completion.chunk", "choices": [{ "index": 0, "delta": { "content": text } }] });
            let mut out = String::new();
            if asked {
                chunk["usage"] = Value::Null;
            }
            out.push_str(&format!("data: {chunk}\n\n"));
            if asked {
                let u = json!({ "object": "chat.completion.chunk", "choices": [],
                                "usage": { "prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16 } });
                out.push_str(&format!("data: {u}\n\n"));
            }
            out.push_str("data: [DONE]\n\n");
            ([("content-type", "text/event-stream")], out).into_response()
        }
        Play::NoUsage(text) if stream => {
            let chunk =
                json!({ "object": "chat.completion.chunk", "choices": [{ "index": 0, "delta": { "content": text } }] });
            ([("content-type", "text/event-stream")], format!("data: {chunk}\n\ndata: [DONE]\n\n")).into_response()
        }
        Play::NoUsage(text) | Play::Stream(text) => {
            Json(json!({ "id": "c", "object": "chat.completion", "choices": message(text) })).into_response()
        }
        Play::Ok(text) => Json(json!({ "id": "c", "object": "chat.completion", "choices": message(text),
            "usage": { "prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5 } }))
        .into_response(),
    }
}

async fn start_fake() -> (Fake, String) {
    let fake = Fake::default();
    let app = Router::new().route("/v1/chat/completions", post(fake_handler)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, format!("http://{addr}/v1"))
}

/// One route `m` (priced at $1 / $2 per million tokens) and one unpriced route `free`.
fn config(url: &str, dir: &Path) -> Config {
    let mut c = Config { data_dir: dir.to_path_buf(), ..Config::default() };
    let g = &mut c.gateway;
    g.max_attempts = 1;
    g.breaker_min_requests = 1000;
    g.providers = vec![ProviderConfig {
        name: "p".into(),
        kind: ProviderKind::OpenAi,
        base_url: url.into(),
        api_key_env: None,
        stream_usage: true,
        wire: Default::default(),
        timeouts: Default::default(),
    }];
    let target = vec![TargetConfig { provider: "p".into(), model: "gpt-4o-mini".into(), price: None, weight: None }];
    let price = Price { input: 1_000_000_000, output: 2_000_000_000, cached_input: 500_000_000 };
    g.routes = vec![
        RouteConfig { model: "m".into(), targets: target.clone(), price: Some(price), rules: vec![], guard: None },
        RouteConfig { model: "free".into(), targets: target, price: None, rules: vec![], guard: None },
    ];
    c
}

async fn start_keel(cfg: &Config) -> (SocketAddr, Store) {
    let store = Store::open_embedded(&cfg.data_dir).await.unwrap();
    let gateway = Arc::new(Gateway::new(&cfg.gateway, &Default::default()).unwrap());
    let state = ServerState::proxy_only(1 << 20, gateway).with_auth(store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { keel::http::serve(listener, state, std::future::pending()).await.unwrap() });
    (addr, store)
}

async fn key(store: &Store, limits: KeyLimits) -> (String, String) {
    let (rec, key) = keel::auth::create_key(store, "acme", &["query".into()]).await.unwrap();
    store.usage.set_key_limits(&rec.id, &limits).await.unwrap();
    (rec.id, key)
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn chat(addr: SocketAddr, key: &str, body: Value, cache_control: Option<&str>) -> Reply {
    let mut r = reqwest::Client::new().post(format!("http://{addr}/v1/chat/completions")).bearer_auth(key).json(&body);
    if let Some(cc) = cache_control {
        r = r.header("cache-control", cc);
    }
    let res = r.send().await.unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    let text = res.text().await.unwrap();
    Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

fn hello(model: &str) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }], "max_tokens": 10 })
}

#[tokio::test]
async fn forty_concurrent_requests_against_rpm_10_let_exactly_10_through() {
    let tmp = tempfile::tempdir().unwrap();
    let (fake, url) = start_fake().await;
    let (addr, store) = start_keel(&config(&url, tmp.path())).await;
    let (id, k) = key(&store, KeyLimits { rpm: Some(10), ..Default::default() }).await;
    let rejected_before = keel::metrics::global().counter("keel_limit_rejections_total", "{limit=\"rpm\"}");
    let replies = futures_util::future::join_all((0..40).map(|_| chat(addr, &k, hello("m"), None))).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!((ok, limited.len()), (10, 30));
    assert_eq!(fake.calls(), 10, "a refused request never reaches the provider");
    for r in limited {
        let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with(&format!("key {id}: requests per minute 10/10; retry in")), "{msg}");
        assert_eq!(r.body["error"]["type"], "rate_limit_error");
    }
    let rejected = keel::metrics::global().counter("keel_limit_rejections_total", "{limit=\"rpm\"}");
    assert!(rejected - rejected_before >= 30);
}

#[tokio::test]
async fn concurrent_requests_never_exceed_a_token_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let (fake, url) = start_fake().await;
    fake.delay_ms.store(30, Ordering::SeqCst);
    let (addr, store) = start_keel(&config(&url, tmp.path())).await;
    // Each request reserves its estimated prompt + max_tokens 10 and reconciles to 5 tokens.
    let budget = 100;
    let (_, k) = key(&store, KeyLimits { daily_tokens: Some(budget), ..Default::default() }).await;
    let replies = futures_util::future::join_all((0..40).map(|_| chat(addr, &k, hello("m"), None))).await;
    let ok = replies.iter().filter(|r| r.status == 200).count() as u64;
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert!(ok >= 5 && !refused.is_empty(), "ok {ok}, refused {}", refused.len());
    assert!(refused[0].body["error"]["message"].as_str().unwrap().contains("tokens per day"));
    let totals = store.usage.usage_totals(None).await.unwrap();
    let used: u64 = totals.iter().map(|t| t.prompt_tokens + t.completion_tokens).sum();
    assert_eq!(used, ok * 5);
    assert!(used <= budget, "reconciled usage {used} exceeds the budget {budget}");
    assert_eq!(fake.last()["max_tokens"], 10, "the reserved completion is sent upstream as the cap");

    // A money budget: $1/M input and $2/M output; each call reserves its worst case.
    let (_, k) = key(&store, KeyLimits { daily_budget_nanos: Some(200_000), ..Default::default() }).await;
    let replies = futures_util::future::join_all((0..40).map(|_| chat(addr, &k, hello("m"), None))).await;
    let ok = replies.iter().filter(|r| r.status == 200).count() as u64;
    assert!(ok > 0 && ok < 40);
    let spent: u64 = replies
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.body["keel"]["usage"]["cost_nanodollars"].as_u64().unwrap())
        .sum();
    assert_eq!(spent, ok * 7_000, "3 × 1000 + 2 × 2000 nano-dollars each");
    assert!(spent <= 200_000);
}

#[tokio::test]
async fn limits_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (_fake, url) = start_fake().await;
    let cfg = config(&url, tmp.path());
    let (addr, store) = start_keel(&cfg).await;
    let (_, k) = key(&store, KeyLimits { rpm: Some(3), daily_tokens: Some(1000), ..Default::default() }).await;
    for _ in 0..3 {
        assert_eq!(chat(addr, &k, hello("m"), None).await.status, 200);
    }
    // A second server over the same data directory: a fresh store handle, a fresh process state.
    let (addr2, store2) = start_keel(&cfg).await;
    let r = chat(addr2, &k, hello("m"), None).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    let totals = store2.usage.usage_totals(None).await.unwrap();
    assert_eq!(totals.iter().map(|t| t.requests).sum::<u64>(), 3);
    assert_eq!(totals[0].cost_nanodollars, 3 * 7_000);
}

#[tokio::test]
async fn usage_and_cost_are_reported_or_estimated() {
    let tmp = tempfile::tempdir().unwrap();
    let (fake, url) = start_fake().await;
    let (addr, store) = start_keel(&config(&url, tmp.path())).await;
    let (id, k) = key(&store, KeyLimits::default()).await;
    let cost_before = keel::metrics::global().counter("keel_cost_nanodollars_total", "{model=\"m\"}");

    let r = chat(addr, &k, hello("m"), None).await;
    assert_eq!(r.status, 200);
    let u = &r.body["keel"]["usage"];
    assert_eq!((u["prompt_tokens"].as_u64(), u["completion_tokens"].as_u64()), (Some(3), Some(2)));
    assert_eq!(u["estimated"], false);
    assert_eq!(u["cost_nanodollars"], 7_000);
    assert_eq!(r.headers["x-keel-cost-nanodollars"], "7000");
    assert!(keel::metrics::global().counter("keel_cost_nanodollars_total", "{model=\"m\"}") >= cost_before + 7_000);

    fake.push(&[Play::NoUsage("Paris is the capital of France.")]);
    let r = chat(addr, &k, hello("m"), None).await;
    let u = &r.body["keel"]["usage"];
    assert_eq!(u["estimated"], true, "{u}");
    let expected = keel::gateway::usage::count_text("m", "Paris is the capital of France.");
    assert_eq!(u["completion_tokens"], expected, "tiktoken count of the reply");
    assert!(u["prompt_tokens"].as_u64().unwrap() >= 2);
    assert_eq!(r.headers["x-keel-usage-estimated"], "true");

    // A stream without a usage chunk is estimated when it ends.
    fake.push(&[Play::NoUsage("Streamed words")]);
    let mut body = hello("free");
    body["stream"] = json!(true);
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/v1/chat/completions"))
        .bearer_auth(&k)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("[DONE]"));
    let mut free = None;
    for _ in 0..50 {
        let totals = store.usage.usage_totals(None).await.unwrap();
        free = totals.into_iter().find(|t| t.model == "free");
        if free.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let free = free.expect("the stream's usage was recorded");
    assert_eq!((free.key_id.as_str(), free.tenant.as_str(), free.estimated_requests), (id.as_str(), "acme", 1));
    let expected = keel::gateway::usage::count_text("free", "Streamed words");
    assert_eq!((free.completion_tokens, free.cost_nanodollars), (expected, 0));

    // The admin API shows the same totals.
    let (_, admin) = keel::auth::create_key(&store, "acme", &["admin".into()]).await.unwrap();
    let res =
        reqwest::Client::new().get(format!("http://{addr}/v1/admin/usage")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    let m = v["usage"].as_array().unwrap().iter().find(|t| t["model"] == "m").unwrap().clone();
    assert_eq!((m["requests"].as_u64(), m["key_id"].as_str()), (Some(2), Some(id.as_str())));
    let denied =
        reqwest::Client::new().get(format!("http://{addr}/v1/admin/usage")).bearer_auth(&k).send().await.unwrap();
    assert_eq!(denied.status(), 403, "usage needs the admin scope");

    // A stream whose client did not ask for usage: Keel asks the provider for it, meters the
    // provider's counts (not an estimate), and the client never sees the usage chunk.
    let totals_m = |store: Store| async move {
        store.usage.usage_totals(None).await.unwrap().into_iter().find(|t| t.model == "m").unwrap()
    };
    let before = totals_m(store.clone()).await;
    fake.push(&[Play::Stream("Exact words")]);
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/v1/chat/completions"))
        .bearer_auth(&k)
        .json(&json!({ "model": "m", "stream": true, "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert_eq!(fake.last()["stream_options"]["include_usage"], true, "Keel asked the provider for usage");
    assert!(text.contains("Exact words") && text.contains("[DONE]"), "{text}");
    assert!(!text.contains("prompt_tokens"), "the usage chunk reached a client that did not ask: {text}");
    let mut after = totals_m(store.clone()).await;
    for _ in 0..50 {
        if after.requests > before.requests {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = totals_m(store.clone()).await;
    }
    assert_eq!(after.requests, before.requests + 1, "the stream's usage was recorded");
    assert_eq!(
        (after.prompt_tokens - before.prompt_tokens, after.completion_tokens - before.completion_tokens),
        (11, 5),
        "the provider's counts, not an estimate"
    );
    assert_eq!(after.estimated_requests, before.estimated_requests);

    // A client that asks for usage gets the provider's chunk.
    fake.push(&[Play::Stream("Counted")]);
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/v1/chat/completions"))
        .bearer_auth(&k)
        .json(&json!({ "model": "m", "stream": true, "stream_options": { "include_usage": true },
                       "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(text.contains("\"prompt_tokens\":11") && text.contains("[DONE]"), "{text}");

    // stream_options of the wrong type is the client's error, named.
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/v1/chat/completions"))
        .bearer_auth(&k)
        .json(&json!({ "model": "m", "stream": true, "stream_options": "yes",
                       "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("stream_options"));
}

#[tokio::test]
async fn max_tokens_above_the_key_cap_is_lowered() {
    let tmp = tempfile::tempdir().unwrap();
    let (fake, url) = start_fake().await;
    let (addr, store) = start_keel(&config(&url, tmp.path())).await;
    let (_, k) = key(&store, KeyLimits { max_tokens: Some(5), ..Default::default() }).await;
    let mut body = hello("m");
    body["max_tokens"] = json!(100);
    let r = chat(addr, &k, body, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-keel-max-tokens-capped"], "5");
    assert_eq!(fake.last()["max_tokens"], 5);
}

fn cached_config(url: &str, dir: &Path) -> Config {
    let mut c = config(url, dir);
    c.gateway.cache.enabled = true;
    c
}

#[tokio::test]
async fn the_cache_never_stores_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (fake, url) = start_fake().await;
    let (addr, store) = start_keel(&cached_config(&url, tmp.path())).await;
    let (_, k) = key(&store, KeyLimits::default()).await;
    let hits_before = keel::metrics::global().counter("keel_cache_requests_total", "{result=\"hit\"}");
    fake.push(&[Play::Status(500), Play::Ok("stored")]);
    let r = chat(addr, &k, hello("m"), None).await;
    assert_eq!((r.status, r.headers["x-keel-cache"].to_str().unwrap()), (502, "miss"));
    let r = chat(addr, &k, hello("m"), None).await;
    assert_eq!((r.status, r.headers["x-keel-cache"].to_str().unwrap()), (200, "miss"), "the error was not stored");
    let r = chat(addr, &k, hello("m"), None).await;
    assert_eq!((r.status, r.headers["x-keel-cache"].to_str().unwrap()), (200, "hit"));
    assert_eq!(r.body["choices"][0]["message"]["content"], "stored");
    assert_eq!(r.body["keel"]["usage"]["cost_nanodollars"], 0, "a hit costs nothing");
    assert_eq!(fake.calls(), 2);
    assert!(keel::metrics::global().counter("keel_cache_requests_total", "{result=\"hit\"}") > hits_before);
    // `user` does not change the key; another sampling parameter does.
    let mut with_user = hello("m");
    with_user["user"] = json!("someone");
    assert_eq!(chat(addr, &k, with_user, None).await.headers["x-keel-cache"], "hit");
    let mut hotter = hello("m");
    hotter["temperature"] = json!(1.5);
    assert_eq!(chat(addr, &k, hotter, None).await.headers["x-keel-cache"], "miss");
}

#[tokio::test]
async fn no_store_and_no_cache_are_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let (fake, url) = start_fake().await;
    let (addr, store) = start_keel(&cached_config(&url, tmp.path())).await;
    let (_, k) = key(&store, KeyLimits::default()).await;
    fake.push(&[Play::Ok("not kept"), Play::Ok("first"), Play::Ok("fresh")]);
    let r = chat(addr, &k, hello("m"), Some("no-store")).await;
    assert_eq!(r.headers["x-keel-cache"], "bypass");
    let r = chat(addr, &k, hello("m"), None).await;
    assert_eq!(r.headers["x-keel-cache"], "miss", "no-store stored nothing");
    assert_eq!(r.body["choices"][0]["message"]["content"], "first");
    let r = chat(addr, &k, hello("m"), Some("no-cache")).await;
    assert_eq!(r.headers["x-keel-cache"], "bypass", "no-cache skips the lookup");
    assert_eq!(r.body["choices"][0]["message"]["content"], "fresh");
    let r = chat(addr, &k, hello("m"), None).await;
    assert_eq!(r.headers["x-keel-cache"], "hit");
    assert_eq!(r.body["choices"][0]["message"]["content"], "fresh", "no-cache still stored its reply");
    assert_eq!(fake.calls(), 3);
}

#[tokio::test]
async fn two_store_handles_on_one_file_still_reserve_exactly() {
    // Two handles have two in-process locks: only `BEGIN IMMEDIATE` keeps them exact (as it
    // would two processes).
    let tmp = tempfile::tempdir().unwrap();
    let a = Store::open_embedded(tmp.path()).await.unwrap();
    let b = Store::open_embedded(tmp.path()).await.unwrap();
    let limits = KeyLimits { rpm: Some(7), daily_tokens: Some(1_000), ..Default::default() };
    let now = 1_700_000_000_000;
    let tries = (0..30).map(|i| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { s.usage.reserve("key_t", &limits, 10, 0, now).await.unwrap() }
    });
    let results = futures_util::future::join_all(tries).await;
    let granted: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(granted.len(), 7);
    let denial = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(denial.to_string(), "key key_t: requests per minute 7/7; retry in 60s");
    // Settling releases unused tokens but the requests still count for the minute.
    for r in &granted {
        a.usage.settle(Some(r), None, now).await.unwrap();
    }
    assert!(b.usage.reserve("key_t", &limits, 10, 0, now + 59_000).await.unwrap().is_err());
    assert!(b.usage.reserve("key_t", &limits, 10, 0, now + 60_001).await.unwrap().is_ok(), "the window slid");
}

#[tokio::test]
async fn a_target_is_charged_at_the_price_its_chain_gives_it_and_reservations_assume_the_dearest() {
    let tmp = tempfile::tempdir().unwrap();
    let (fake, url) = start_fake().await;
    let mut cfg = config(&url, tmp.path());
    let dear = Price { input: 10_000_000_000, output: 30_000_000_000, cached_input: 0 };
    let cheap = Price { input: 2_000_000_000, output: 4_000_000_000, cached_input: 0 };
    let gpt4o = |price| TargetConfig { provider: "p".into(), model: "gpt-4o".into(), price: Some(price), weight: None };
    cfg.gateway.routes[0].targets.push(gpt4o(dear));
    // The same target, priced differently by another route: each route's price holds.
    cfg.gateway.routes.push(RouteConfig {
        model: "m2".into(),
        targets: vec![gpt4o(cheap)],
        price: None,
        rules: vec![],
        guard: None,
    });
    let g = Gateway::new(&cfg.gateway, &Default::default()).unwrap();
    let route = *g.price("m").unwrap();
    let worst = g.worst_price("m").unwrap();
    assert_eq!((worst.input, worst.output, worst.cached_input), (dear.input, dear.output, route.cached_input));
    assert_eq!(g.worst_price("m2"), Some(cheap));
    assert_eq!(g.worst_price("free"), None);

    let (addr, store) = start_keel(&cfg).await;
    let (_, k) = key(&store, KeyLimits::default()).await;
    // Each reply uses 3 prompt and 2 completion tokens.
    let cost = |p: Price| (3 * p.input + 2 * p.output) / 1_000_000;
    let r = chat(addr, &k, hello("m"), None).await;
    assert_eq!(r.headers["x-keel-target"], "p/gpt-4o-mini");
    assert_eq!(r.headers["x-keel-cost-nanodollars"], cost(route).to_string().as_str(), "no own price: the route's");
    fake.push(&[Play::Status(500)]);
    let r = chat(addr, &k, hello("m"), None).await;
    assert_eq!(r.headers["x-keel-target"], "p/gpt-4o", "the first target failed");
    assert_eq!(r.headers["x-keel-cost-nanodollars"], cost(dear).to_string().as_str(), "the fallback's own price");
    let r = chat(addr, &k, hello("m2"), None).await;
    assert_eq!(r.headers["x-keel-target"], "p/gpt-4o");
    assert_eq!(r.headers["x-keel-cost-nanodollars"], cost(cheap).to_string().as_str(), "m2's price for it");
    assert_eq!(r.body["keel"]["usage"]["cost_nanodollars"], cost(cheap));
    assert_eq!(fake.calls(), 4);
}
