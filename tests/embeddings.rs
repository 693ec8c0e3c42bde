//! `/v1/embeddings` through the gateway, against fake OpenAI-compatible providers: the reply
//! passes through byte for byte, usage and cost are metered (reported or estimated), a failing
//! target falls back to the next, an Anthropic target is skipped (alone: a clear 400), bad
//! input and unknown models get precise errors, a key's rate limit applies, and a route's
//! input guard redacts personal data before the provider sees it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use keel::config::gateway::{ProviderConfig, ProviderKind, RouteConfig, RouteGuard, RouteInjection, TargetConfig};
use keel::config::limits::{KeyLimits, Price};
use keel::config::Config;
use keel::gateway::Gateway;
use keel::http::ServerState;
use keel::store::Store;
use keel_guard::pii::PiiAction;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
enum Play {
    Ok,
    NoUsage,
    Status(u16),
}

#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<VecDeque<Play>>>,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Fake {
    fn push(&self, plays: &[Play]) {
        self.script.lock().unwrap().extend(plays.iter().copied());
    }
    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

/// The exact bytes of a scripted reply: a field Keel does not know, and odd spacing, so a
/// re-serialised reply would differ.
fn reply_bytes(n: usize, usage: bool) -> String {
    let data: Vec<String> =
        (0..n).map(|i| format!(r#"{{"object":"embedding","index":{i},"embedding":[0.25, -1.5e-3]}}"#)).collect();
    let usage = if usage { r#", "usage": {"prompt_tokens": 7, "total_tokens": 7}"# } else { "" };
    format!(
        r#"{{"object":"list", "data":[{}], "model":"text-emb-1", "x_vendor":{{"region":"eu"}}{usage}}}"#,
        data.join(",")
    )
}

async fn fake_handler(State(f): State<Fake>, Json(body): Json<Value>) -> Response {
    let n = body["input"].as_array().map_or(1, Vec::len);
    f.bodies.lock().unwrap().push(body);
    match f.script.lock().unwrap().pop_front().unwrap_or(Play::Ok) {
        Play::Status(code) => {
            (StatusCode::from_u16(code).unwrap(), Json(json!({ "error": { "message": "scripted" } }))).into_response()
        }
        Play::Ok => ([("content-type", "application/json")], reply_bytes(n, true)).into_response(),
        Play::NoUsage => ([("content-type", "application/json")], reply_bytes(n, false)).into_response(),
    }
}

async fn start_fake() -> (Fake, String) {
    let fake = Fake::default();
    let app = Router::new().route("/v1/embeddings", post(fake_handler)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, format!("http://{addr}/v1"))
}

fn provider(name: &str, kind: ProviderKind, url: &str) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        kind,
        base_url: url.into(),
        api_key_env: None,
        stream_usage: true,
        wire: Default::default(),
        timeouts: Default::default(),
    }
}

fn target(provider: &str, model: &str) -> TargetConfig {
    TargetConfig { provider: provider.into(), model: model.into(), price: None, weight: None }
}

fn route(model: &str, targets: Vec<TargetConfig>, guard: Option<RouteGuard>) -> RouteConfig {
    // $1 per million input tokens: 1,000 nano-dollars a token.
    let price = Price { input: 1_000_000_000, output: 2_000_000_000, cached_input: 500_000_000 };
    RouteConfig { model: model.into(), targets, price: Some(price), rules: vec![], guard }
}

/// `emb`: an Anthropic target (no embeddings endpoint), then fakes `a` and `b`;
/// `claude-only`: the Anthropic target alone; `emb-guarded`: `a` with personal data redacted.
fn config(a: &str, b: &str, dir: &Path) -> Config {
    let mut c = Config { data_dir: dir.to_path_buf(), ..Config::default() };
    let g = &mut c.gateway;
    g.max_attempts = 1;
    g.breaker_min_requests = 1000;
    g.providers = vec![
        provider("claude", ProviderKind::Anthropic, "http://127.0.0.1:9/v1"),
        provider("a", ProviderKind::OpenAi, a),
        provider("b", ProviderKind::OpenAi, b),
    ];
    let redact = RouteGuard { injection: RouteInjection::Off, pii: Some(PiiAction::Redact) };
    g.routes = vec![
        route("emb", vec![target("claude", "claude-x"), target("a", "emb-a"), target("b", "emb-b")], None),
        route("claude-only", vec![target("claude", "claude-x")], None),
        route("emb-guarded", vec![target("a", "emb-a")], Some(redact)),
    ];
    c
}

async fn start_keel(cfg: &Config) -> (SocketAddr, Store) {
    let store = Store::open_embedded(&cfg.data_dir).await.unwrap();
    let gateway = Arc::new(Gateway::new(&cfg.gateway, &Default::default()).unwrap());
    let guard = keel::guardrails::build_guard(cfg, None).unwrap().unwrap();
    let state = ServerState::proxy_only(1 << 20, gateway).with_auth(store.clone()).with_input_guard(guard);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { keel::http::serve(listener, state, std::future::pending()).await.unwrap() });
    (addr, store)
}

/// Two fakes (`a`, `b`) behind Keel, and a key with `limits`.
async fn setup(dir: &Path, limits: KeyLimits) -> (Fake, Fake, SocketAddr, String) {
    let ((fa, a), (fb, b)) = (start_fake().await, start_fake().await);
    let (addr, store) = start_keel(&config(&a, &b, dir)).await;
    (fa, fb, addr, key(&store, limits).await)
}

async fn key(store: &Store, limits: KeyLimits) -> String {
    let (rec, key) = keel::auth::create_key(store, "acme", &["query".into()]).await.unwrap();
    store.usage.set_key_limits(&rec.id, &limits).await.unwrap();
    key
}

async fn embed(addr: SocketAddr, key: &str, body: Value) -> (u16, reqwest::header::HeaderMap, String) {
    let res =
        reqwest::Client::new().post(format!("http://{addr}/v1/embeddings")).bearer_auth(key).json(&body).send().await;
    let res = res.unwrap();
    (res.status().as_u16(), res.headers().clone(), res.text().await.unwrap())
}

fn h<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers.get(name).map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn embeddings_pass_through_metered_with_fallback_past_failing_and_anthropic_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let (fa, fb, addr, k) = setup(tmp.path(), KeyLimits::default()).await;

    // The Anthropic target is skipped; `a` answers; its bytes reach the client unchanged.
    let (status, headers, body) = embed(addr, &k, json!({ "model": "emb", "input": ["one", "two"] })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, reply_bytes(2, true));
    assert_eq!(h(&headers, "content-type"), "application/json");
    assert_eq!((h(&headers, "x-keel-target"), h(&headers, "x-keel-attempts")), ("a/emb-a", "1"));
    assert_eq!((h(&headers, "x-keel-tokens"), h(&headers, "x-keel-cost-nanodollars")), ("7/0", "7000"));
    assert!(h(&headers, "x-keel-overhead-ms").parse::<f64>().is_ok());
    assert_eq!(fa.bodies()[0], json!({ "model": "emb-a", "input": ["one", "two"] }));

    // `a` fails with a 503: `b` answers. No usage in the reply: the input is counted instead.
    fa.push(&[Play::Status(503)]);
    fb.push(&[Play::NoUsage]);
    let (status, headers, body) =
        embed(addr, &k, json!({ "model": "emb", "input": "hello world", "encoding_format": "base64" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((h(&headers, "x-keel-target"), h(&headers, "x-keel-attempts")), ("b/emb-b", "2"));
    assert_eq!((h(&headers, "x-keel-tokens"), h(&headers, "x-keel-usage-estimated")), ("2/0", "true"));
    assert_eq!(fb.bodies()[0]["encoding_format"], "base64", "other fields reach the provider as sent");

    // A client error from the provider is the client's: no fallback.
    fa.push(&[Play::Status(400)]);
    let (status, _, body) = embed(addr, &k, json!({ "model": "emb", "input": "x" })).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fb.bodies().len(), 1, "{body}");

    // A route whose only target has no embeddings endpoint: a 400 that says so.
    let (status, _, body) = embed(addr, &k, json!({ "model": "claude-only", "input": "x" })).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no target of `claude-only` has an embeddings endpoint"), "{body}");
}

#[tokio::test]
async fn bad_requests_are_named_and_never_reach_a_provider() {
    let tmp = tempfile::tempdir().unwrap();
    let (fa, _, addr, k) = setup(tmp.path(), KeyLimits::default()).await;
    for (body, status, param, says) in [
        (json!({ "model": "emb", "input": "" }), 422, Some("input"), "must not be empty"),
        (json!({ "model": "emb", "input": ["a", 2] }), 422, Some("input"), "an array of non-empty strings"),
        (json!({ "model": "emb" }), 422, None, "missing field `input`"),
        (json!({ "model": "emb", "input": "a", "dimensions": "big" }), 422, Some("dimensions"), "expected u32"),
        (json!({ "model": "emb", "input": "a", "encoding_format": "int8" }), 422, Some("encoding_format"), "`int8`"),
        (json!({ "model": "nope", "input": "a" }), 404, Some("model"), "The model `nope` does not exist"),
    ] {
        let (got, _, text) = embed(addr, &k, body.clone()).await;
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!((got, v["error"]["param"].as_str()), (status, param), "{body}: {text}");
        assert!(v["error"]["message"].as_str().unwrap().contains(says), "{body}: {text}");
    }
    // Malformed JSON and a missing key.
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/v1/embeddings"))
        .bearer_auth(&k)
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = reqwest::Client::new().post(format!("http://{addr}/v1/embeddings")).json(&json!({})).send().await;
    assert_eq!(res.unwrap().status(), 401);
    assert!(fa.bodies().is_empty());
}

#[tokio::test]
async fn a_keys_rate_limit_and_a_routes_input_guard_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let (fa, _, addr, k) = setup(tmp.path(), KeyLimits { rpm: Some(2), ..Default::default() }).await;
    let body = json!({ "model": "emb-guarded", "input": ["mail ann@example.com", "card 4111 1111 1111 1111"] });
    let (status, headers, text) = embed(addr, &k, body.clone()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(h(&headers, "x-keel-guard"), "redacted 2");
    assert_eq!(fa.bodies()[0]["input"], json!(["mail [EMAIL]", "card [CARD]"]));
    assert_eq!(embed(addr, &k, body.clone()).await.0, 200);
    let (status, headers, text) = embed(addr, &k, body).await;
    assert_eq!(status, 429, "{text}");
    assert!(text.contains("requests per minute 2/2") && !h(&headers, "retry-after").is_empty(), "{text}");
    assert_eq!(fa.bodies().len(), 2, "a refused request never reaches the provider");
}
