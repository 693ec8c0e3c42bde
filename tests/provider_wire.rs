//! Provider calls addressed the way Azure OpenAI, OpenRouter or a company gateway want them,
//! and wildcard routes: a fake provider records each call's path, query, headers and model,
//! and the gateway is configured from `keel.toml` text (the `{model}` URL placeholder,
//! `query`, `auth_header`, `headers`, routes named `openai/*` or `*`, weighted chains, a
//! provider's own attempt timeout).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use keel::gateway::{Gateway, Secrets};
use keel::http::ServerState;
use serde_json::{json, Value};

/// Path with query, and headers, of one call the fake provider received.
#[derive(Debug, Clone)]
struct Seen {
    path_and_query: String,
    headers: HashMap<String, String>,
    body: Value,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn record(State(log): State<Log>, req: Request) -> Response {
    let path_and_query = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect::<HashMap<_, _>>();
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let stream = body["stream"].as_bool().unwrap_or(false);
    let model = body["model"].as_str().unwrap_or("").to_string();
    log.lock().unwrap().push(Seen { path_and_query, headers, body });
    if model.starts_with("slow") {
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    }
    if stream {
        let chunk =
            json!({ "object": "chat.completion.chunk", "choices": [{ "index": 0, "delta": { "content": "hi" } }] });
        return ([("content-type", "text/event-stream")], format!("data: {chunk}\n\ndata: [DONE]\n\n")).into_response();
    }
    axum::Json(json!({ "id": "c", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": "hello" }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4 } }))
    .into_response()
}

/// A fake provider answering every path; its base URL and what it received.
async fn start_fake() -> (String, Log) {
    let log = Log::default();
    let app = Router::new().fallback(record).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), log)
}

async fn start_keel(toml: &str, secrets: &[(&str, &str)]) -> SocketAddr {
    let cfg = keel::config::Config::parse(toml, "keel.toml").unwrap();
    let secrets = Secrets(secrets.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let gateway = Arc::new(Gateway::new(&cfg.gateway, &secrets).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = ServerState::proxy_only(1 << 20, gateway);
    tokio::spawn(async move { keel::http::serve(listener, state, std::future::pending()).await.unwrap() });
    addr
}

async fn chat(addr: SocketAddr, model: &str, stream: bool) -> (u16, String) {
    let body = json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }], "stream": stream });
    let res =
        reqwest::Client::new().post(format!("http://{addr}/v1/chat/completions")).json(&body).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn azure_deployments_get_their_path_api_version_and_api_key_header() {
    let (base, log) = start_fake().await;
    let toml = format!(
        "[[providers]]\nname = \"azure\"\nkind = \"openai\"\n\
         base_url = \"{base}/openai/deployments/{{model}}\"\napi_key_env = \"AZURE_OPENAI_KEY\"\n\
         auth_header = \"api-key\"\nquery = {{ \"api-version\" = \"2024-10-21\" }}\n\n\
         [[routes]]\nmodel = \"gpt-4o\"\ntargets = [{{ provider = \"azure\", model = \"prod gpt-4o\" }}]\n"
    );
    let addr = start_keel(&toml, &[("azure", "az-secret")]).await;
    for stream in [false, true] {
        let (status, text) = chat(addr, "gpt-4o", stream).await;
        assert_eq!(status, 200, "{text}");
        assert!(text.contains(if stream { "data: " } else { "hello" }), "{text}");
    }
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        // The deployment is the target's model, percent-encoded into the path.
        assert_eq!(s.path_and_query, "/openai/deployments/prod%20gpt-4o/chat/completions?api-version=2024-10-21");
        assert_eq!(s.headers.get("api-key").map(String::as_str), Some("az-secret"));
        assert!(!s.headers.contains_key("authorization"), "the key goes in api-key only: {:?}", s.headers);
        assert_eq!(s.body["model"], "prod gpt-4o");
    }
}

#[tokio::test]
async fn extra_headers_ride_along_with_the_bearer_key() {
    let (base, log) = start_fake().await;
    let toml = format!(
        "[[providers]]\nname = \"router\"\nkind = \"openai\"\nbase_url = \"{base}/api/v1\"\n\
         api_key_env = \"OPENROUTER_API_KEY\"\n\
         headers = {{ \"HTTP-Referer\" = \"https://keel.example\", \"X-Title\" = \"Keel\" }}\n\n\
         [[routes]]\nmodel = \"m\"\ntargets = [{{ provider = \"router\", model = \"meta/llama\" }}]\n"
    );
    let addr = start_keel(&toml, &[("router", "or-secret")]).await;
    let (status, text) = chat(addr, "m", false).await;
    assert_eq!(status, 200, "{text}");
    let s = log.lock().unwrap()[0].clone();
    assert_eq!(s.path_and_query, "/api/v1/chat/completions", "no placeholder, no query: the URL as configured");
    assert_eq!(s.headers.get("authorization").map(String::as_str), Some("Bearer or-secret"));
    assert_eq!(s.headers.get("http-referer").map(String::as_str), Some("https://keel.example"));
    assert_eq!(s.headers.get("x-title").map(String::as_str), Some("Keel"));
    assert_eq!(s.headers.get("content-type").map(String::as_str), Some("application/json"));
}

#[tokio::test]
async fn wildcard_routes_pass_the_asked_model_through_and_exact_routes_win() {
    let (base, log) = start_fake().await;
    let toml = format!(
        "[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"{base}/v1\"\n\n\
         [[routes]]\nmodel = \"openai/*\"\n\
         targets = [{{ provider = \"p\", model = \"*\", price = {{ input = \"1\", output = \"2\" }} }}]\n\n\
         [[routes]]\nmodel = \"openai/gpt-4o\"\ntargets = [{{ provider = \"p\", model = \"exact-4o\" }}]\n\n\
         [[routes]]\nmodel = \"*\"\ntargets = [{{ provider = \"p\", model = \"local/*\" }}]\n"
    );
    let addr = start_keel(&toml, &[]).await;
    for (asked, stream) in
        [("openai/gpt-4o-mini", false), ("openai/gpt-4o", false), ("mistral-7b", true), ("openai/", false)]
    {
        let (status, text) = chat(addr, asked, stream).await;
        assert_eq!(status, 200, "{asked}: {text}");
    }
    let models: Vec<Value> = log.lock().unwrap().iter().map(|s| s.body["model"].clone()).collect();
    // Longest prefix first; an exact route beats a wildcard; "openai/" alone has nothing after
    // the prefix, so the catch-all serves it.
    assert_eq!(
        models,
        vec![json!("gpt-4o-mini"), json!("exact-4o"), json!("local/mistral-7b"), json!("local/openai/")]
    );
    // The attempt names the model the wildcard target was asked for, and the target's own
    // price applies: 3 prompt tokens at $1/M and 1 completion token at $2/M.
    let body = json!({ "model": "openai/o3", "messages": [{ "role": "user", "content": "hi" }] });
    let res =
        reqwest::Client::new().post(format!("http://{addr}/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(res.headers()["x-keel-target"], "p/o3");
    assert_eq!(res.headers()["x-keel-cost-nanodollars"], "5000");
    let listed: Value = reqwest::get(format!("http://{addr}/v1/models")).await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, vec!["openai/gpt-4o"], "patterns are not model names");

    // Without a catch-all, a model no route matches is still a 404.
    let toml = format!(
        "[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"{base}/v1\"\n\n\
         [[routes]]\nmodel = \"openai/*\"\ntargets = [{{ provider = \"p\", model = \"*\" }}]\n"
    );
    let addr = start_keel(&toml, &[]).await;
    let before = log.lock().unwrap().len();
    for asked in ["mistral-7b", "openai/"] {
        let (status, text) = chat(addr, asked, false).await;
        assert_eq!(status, 404, "{asked}: {text}");
        assert!(text.contains("model_not_found"), "{text}");
    }
    assert_eq!(log.lock().unwrap().len(), before, "no provider call for an unknown model");
}

#[tokio::test]
async fn weighted_chains_spread_first_tries_and_still_fall_back() {
    let (base, log) = start_fake().await;
    // Port 9 (discard) refuses connections: the `down` provider always fails to connect.
    let toml = format!(
        "[gateway]\nmax_attempts = 1\n\n\
         [[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"{base}/v1\"\n\n\
         [[providers]]\nname = \"down\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\n\
         [[routes]]\nmodel = \"spread\"\ntargets = [{{ provider = \"p\", model = \"a\", weight = 3 }}, \
         {{ provider = \"p\", model = \"b\", weight = 1 }}, {{ provider = \"p\", model = \"spare\", weight = 0 }}]\n\n\
         [[routes]]\nmodel = \"flaky\"\ntargets = [{{ provider = \"down\", model = \"x\", weight = 1 }}, \
         {{ provider = \"p\", model = \"spare\", weight = 0 }}]\n"
    );
    let addr = start_keel(&toml, &[]).await;
    let n = 400;
    for _ in 0..n {
        assert_eq!(chat(addr, "spread", false).await.0, 200);
    }
    let count = |m: &str| log.lock().unwrap().iter().filter(|s| s.body["model"] == m).count();
    // 3:1 of 400 is 300 ± 8.7 (one standard deviation); ±45 is over five.
    let (a, b) = (count("a"), count("b"));
    assert!((255..=345).contains(&a) && a + b == n, "a={a} b={b}");
    assert_eq!(count("spare"), 0, "a weight of 0 is never tried first while the others answer");
    // The only weighted target is down: the weight-0 target behind it answers every time.
    for _ in 0..5 {
        let (status, text) = chat(addr, "flaky", false).await;
        assert_eq!(status, 200, "{text}");
    }
    assert_eq!(count("spare"), 5);
}

#[tokio::test]
async fn a_providers_own_attempt_timeout_moves_on_to_the_next_target() {
    let (base, log) = start_fake().await;
    // The gateway waits up to 15 s per attempt; the `local` provider only 100 ms, so its slow
    // model (800 ms) times out and the chain's next target answers.
    let toml = format!(
        "[gateway]\nmax_attempts = 1\n\n\
         [[providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"{base}/v1\"\nattempt_timeout = \"100ms\"\n\n\
         [[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"{base}/v1\"\n\n\
         [[routes]]\nmodel = \"m\"\ntargets = [{{ provider = \"local\", model = \"slow-llama\" }}, \
         {{ provider = \"p\", model = \"fast\" }}]\n\n\
         [[routes]]\nmodel = \"patient\"\ntargets = [{{ provider = \"p\", model = \"slow-but-fine\" }}]\n"
    );
    let addr = start_keel(&toml, &[]).await;
    let body = json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }] });
    let res =
        reqwest::Client::new().post(format!("http://{addr}/v1/chat/completions")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-keel-target"], "p/fast");
    assert_eq!(res.headers()["x-keel-attempts"], "2");
    // The same slow answer from a provider without its own timeout is waited for.
    let (status, text) = chat(addr, "patient", false).await;
    assert_eq!(status, 200, "{text}");
    let models: Vec<Value> = log.lock().unwrap().iter().map(|s| s.body["model"].clone()).collect();
    assert_eq!(models, vec![json!("slow-llama"), json!("fast"), json!("slow-but-fine")]);
}
