//! The gateway against a scripted fake OpenAI-compatible provider: retries and their cap, no
//! retry on 4xx, fallback order, the total deadline, Retry-After, the circuit breaker, and
//! streams that fail before or after their first byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use keel::config::gateway::{ProviderConfig, ProviderKind, RouteConfig, RuleConfig, TargetConfig, TraceCapture};
use keel::config::Config;
use keel::gateway::Gateway;
use keel::http::ServerState;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
enum Play {
    Ok(&'static str),
    Status(u16, Option<f64>),
    Hang(u64),
    Malformed,
    StreamCut,
    StreamStall,
}

#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<VecDeque<Play>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn push(&self, plays: &[Play]) {
        self.script.lock().unwrap().extend(plays.iter().cloned());
    }
    fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    fn models(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn completion(model: &str, text: &str) -> Value {
    json!({ "id": "cmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5 } })
}

fn sse_chunk(text: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({ "object": "chat.completion.chunk", "choices": [{ "index": 0, "delta": { "content": text } }] })
    )
}

async fn fake_handler(State(f): State<Fake>, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or("").to_string();
    let stream = body["stream"].as_bool().unwrap_or(false);
    f.seen.lock().unwrap().push(model.clone());
    let play = f.script.lock().unwrap().pop_front().unwrap_or(Play::Ok("default"));
    match play {
        Play::Ok(text) if stream => {
            let s = format!("{}{}data: [DONE]\n\n", sse_chunk(text), sse_chunk(" more"));
            ([("content-type", "text/event-stream")], s).into_response()
        }
        Play::Ok(text) => Json(completion(&model, text)).into_response(),
        Play::Status(code, retry_after) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), Json(json!({ "error": { "message": "scripted" } })))
                .into_response();
            if let Some(s) = retry_after {
                r.headers_mut().insert("retry-after", s.to_string().parse().unwrap());
            }
            r
        }
        Play::Hang(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Json(completion(&model, "late")).into_response()
        }
        Play::Malformed => ([("content-type", "application/json")], "{\"choices\": [").into_response(),
        Play::StreamCut => {
            let s = format!("{}{}", sse_chunk("half"), sse_chunk(" way"));
            ([("content-type", "text/event-stream")], s).into_response()
        }
        Play::StreamStall => {
            let first = futures_util::stream::once(async { Ok::<_, std::io::Error>(sse_chunk("stalling")) });
            let never = futures_util::stream::pending::<Result<String, std::io::Error>>();
            use futures_util::StreamExt;
            ([("content-type", "text/event-stream")], Body::from_stream(first.chain(never))).into_response()
        }
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

fn config(a: &str, b: &str) -> Config {
    let mut c = Config::default();
    let g = &mut c.gateway;
    g.deadline = Duration::from_millis(1500);
    g.attempt_timeout = Duration::from_millis(400);
    g.first_token_timeout = Duration::from_millis(400);
    g.idle_timeout = Duration::from_millis(300);
    g.backoff_base = Duration::from_millis(10);
    g.backoff_max = Duration::from_millis(40);
    g.max_attempts = 3;
    g.breaker_min_requests = 100;
    g.providers = vec![
        ProviderConfig {
            name: "a".into(),
            kind: ProviderKind::OpenAi,
            base_url: a.into(),
            api_key_env: None,
            stream_usage: true,
            wire: Default::default(),
            timeouts: Default::default(),
        },
        ProviderConfig {
            name: "b".into(),
            kind: ProviderKind::OpenAi,
            base_url: b.into(),
            api_key_env: None,
            stream_usage: true,
            wire: Default::default(),
            timeouts: Default::default(),
        },
    ];
    g.routes = vec![
        RouteConfig {
            model: "chain".into(),
            targets: vec![
                TargetConfig { provider: "a".into(), model: "a-model".into(), price: None, weight: None },
                TargetConfig { provider: "b".into(), model: "b-model".into(), price: None, weight: None },
            ],
            price: None,
            rules: vec![],
            guard: None,
        },
        RouteConfig {
            model: "solo".into(),
            targets: vec![TargetConfig { provider: "a".into(), model: "a-model".into(), price: None, weight: None }],
            price: None,
            rules: vec![],
            guard: None,
        },
    ];
    c
}

async fn start_keel(cfg: &Config) -> (SocketAddr, Arc<Gateway>) {
    let gateway = Arc::new(Gateway::new(&cfg.gateway, &Default::default()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = ServerState::proxy_only(1 << 20, gateway.clone());
    tokio::spawn(async move { keel::http::serve(listener, state, std::future::pending()).await.unwrap() });
    (addr, gateway)
}

async fn chat(addr: SocketAddr, model: &str, stream: bool) -> (u16, reqwest::header::HeaderMap, String) {
    let body = json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }], "stream": stream });
    let res =
        reqwest::Client::new().post(format!("http://{addr}/v1/chat/completions")).json(&body).send().await.unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, headers, res.text().await.unwrap())
}

#[tokio::test]
async fn transient_errors_are_retried_up_to_the_cap() {
    let (fa, a) = start_fake().await;
    let (_fb, b) = start_fake().await;
    let (keel, _) = start_keel(&config(&a, &b)).await;
    fa.push(&[Play::Status(500, None), Play::Malformed, Play::Ok("third time")]);
    let (status, headers, body) = chat(keel, "solo", false).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("third time"));
    assert_eq!(fa.calls(), 3);
    assert_eq!(headers["x-keel-attempts"], "3");
    assert!(headers.contains_key("x-keel-overhead-ms"));

    fa.push(&[Play::Status(503, None); 10]);
    let (status, _, body) = chat(keel, "solo", false).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(fa.calls(), 3 + 3, "never more than max_attempts per target");
}

#[tokio::test]
async fn client_errors_are_not_retried_and_auth_errors_fall_back() {
    let (fa, a) = start_fake().await;
    let (fb, b) = start_fake().await;
    let (keel, _) = start_keel(&config(&a, &b)).await;
    fa.push(&[Play::Status(400, None)]);
    let (status, _, body) = chat(keel, "chain", false).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("upstream_rejected"));
    assert_eq!((fa.calls(), fb.calls()), (1, 0), "a 400 is neither retried nor sent elsewhere");

    fa.push(&[Play::Status(401, None)]);
    let (status, _, _) = chat(keel, "chain", false).await;
    assert_eq!(status, 200);
    assert_eq!((fa.calls(), fb.calls()), (2, 1), "a 401 skips to the next target without retrying");
}

#[tokio::test]
async fn fallback_keeps_the_chain_order_and_maps_model_names() {
    let (fa, a) = start_fake().await;
    let (fb, b) = start_fake().await;
    let (keel, _) = start_keel(&config(&a, &b)).await;
    fa.push(&[Play::Status(502, None), Play::Status(503, None), Play::Hang(2000)]);
    let (status, headers, body) = chat(keel, "chain", false).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fa.models(), vec!["a-model"; 3]);
    assert_eq!(fb.models(), vec!["b-model"]);
    assert_eq!(headers["x-keel-attempts"], "4");
}

#[tokio::test]
async fn the_total_deadline_is_kept_with_a_clean_504() {
    let (fa, a) = start_fake().await;
    let (fb, b) = start_fake().await;
    let mut cfg = config(&a, &b);
    cfg.gateway.attempt_timeout = Duration::from_secs(10);
    cfg.gateway.deadline = Duration::from_millis(700);
    let (keel, _) = start_keel(&cfg).await;
    fa.push(&[Play::Hang(5000)]);
    fb.push(&[Play::Hang(5000)]);
    let t = Instant::now();
    let (status, _, body) = chat(keel, "chain", false).await;
    let took = t.elapsed();
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("deadline_exceeded"));
    assert!(took < Duration::from_millis(700 + 300), "took {took:?}");
    assert_eq!(fb.calls(), 0, "no time was left for the fallback");
}

#[tokio::test]
async fn retry_after_is_honoured_and_skipped_when_it_passes_the_deadline() {
    let (fa, a) = start_fake().await;
    let (fb, b) = start_fake().await;
    let (keel, _) = start_keel(&config(&a, &b)).await;
    fa.push(&[Play::Status(429, Some(0.3)), Play::Ok("after waiting")]);
    let t = Instant::now();
    let (status, _, body) = chat(keel, "solo", false).await;
    assert_eq!(status, 200, "{body}");
    assert!(t.elapsed() >= Duration::from_millis(300), "waited only {:?}", t.elapsed());

    // A Retry-After beyond the deadline is not waited for: the chain moves on at once.
    fa.push(&[Play::Status(429, Some(30.0))]);
    let t = Instant::now();
    let (status, _, _) = chat(keel, "chain", false).await;
    assert_eq!(status, 200);
    assert!(t.elapsed() < Duration::from_millis(500));
    assert_eq!(fb.calls(), 1);
}

#[tokio::test]
async fn the_breaker_opens_at_its_threshold_fails_fast_and_half_opens() {
    let (fa, a) = start_fake().await;
    let (_fb, b) = start_fake().await;
    let mut cfg = config(&a, &b);
    cfg.gateway.max_attempts = 1;
    cfg.gateway.breaker_min_requests = 4;
    cfg.gateway.breaker_window = 4;
    cfg.gateway.breaker_error_ratio = 0.5;
    cfg.gateway.breaker_cooldown = Duration::from_millis(300);
    let (keel, gateway) = start_keel(&cfg).await;
    // A client's bad requests (400) say nothing about the target: they never open it.
    fa.push(&[Play::Status(400, None); 6]);
    for _ in 0..6 {
        assert_eq!(chat(keel, "solo", false).await.0, 400);
    }
    assert_eq!(gateway.breaker_states()[0].1, "closed", "400s are not the target's failures");
    fa.push(&[Play::Ok("fine"), Play::Ok("fine"), Play::Status(500, None)]);
    for _ in 0..3 {
        chat(keel, "solo", false).await;
    }
    assert_eq!(gateway.breaker_states()[0].1, "closed", "1 error in 3");
    fa.push(&[Play::Status(500, None)]);
    chat(keel, "solo", false).await;
    assert_eq!(gateway.breaker_states()[0].1, "open", "2 errors in 4 reaches 0.5");
    let (status, _, body) = chat(keel, "solo", false).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("all_targets_unavailable"));
    assert_eq!(fa.calls(), 10, "an open breaker sends nothing");
    let admin: Value = reqwest::get(format!("http://{keel}/v1/admin/breakers")).await.unwrap().json().await.unwrap();
    assert_eq!(admin["breakers"][0]["state"], "open");

    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(gateway.breaker_states()[0].1, "half_open");
    let (status, _, _) = chat(keel, "solo", false).await;
    assert_eq!(status, 200, "the probe goes through");
    assert_eq!(gateway.breaker_states()[0].1, "closed");
}

#[tokio::test]
async fn streams_fall_back_before_the_first_byte_and_fail_loudly_after_it() {
    let (fa, a) = start_fake().await;
    let (fb, b) = start_fake().await;
    let (keel, _) = start_keel(&config(&a, &b)).await;

    let (status, headers, body) = chat(keel, "solo", true).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert!(body.contains("default") && body.trim_end().ends_with("data: [DONE]"), "{body}");

    // Before the first byte: a failure falls back to the next target.
    fa.push(&[Play::Status(500, None), Play::Status(500, None), Play::Status(500, None)]);
    let (status, _, body) = chat(keel, "chain", true).await;
    assert_eq!(status, 200);
    assert!(body.contains("[DONE]"));
    assert_eq!(fb.calls(), 1);

    // After the first byte: a cut stream ends with an error event, never [DONE].
    fa.push(&[Play::StreamCut]);
    let (status, _, body) = chat(keel, "solo", true).await;
    assert_eq!(status, 200);
    assert!(body.contains("half") && body.contains("stream_interrupted"), "{body}");
    assert!(!body.contains("data: [DONE]"), "{body}");

    // A stalled stream is ended by the idle timeout with an error event.
    fa.push(&[Play::StreamStall]);
    let t = Instant::now();
    let (_, _, body) = chat(keel, "solo", true).await;
    assert!(body.contains("stalling") && body.contains("stream_interrupted"), "{body}");
    assert!(!body.contains("data: [DONE]"));
    assert!(t.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn unknown_models_are_404_and_the_model_list_shows_routes() {
    let (_fa, a) = start_fake().await;
    let (_fb, b) = start_fake().await;
    let (keel, _) = start_keel(&config(&a, &b)).await;
    let (status, _, body) = chat(keel, "nope", false).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("model_not_found"));
    let models: Value = reqwest::get(format!("http://{keel}/v1/models")).await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["chain", "solo"], "no grounded `keel` model in proxy mode");
}

#[tokio::test]
async fn metrics_count_attempts_and_a_retry_storm_is_raised() {
    let (fa, a) = start_fake().await;
    let (_fb, b) = start_fake().await;
    let (keel, _) = start_keel(&config(&a, &b)).await;
    let m = keel::metrics::global();
    let storms_before = m.counter("keel_retry_storm_total", "");
    for _ in 0..20 {
        fa.push(&[Play::Status(500, None), Play::Ok("second try")]);
        let (status, _, _) = chat(keel, "solo", false).await;
        assert_eq!(status, 200);
    }
    assert!(m.counter("keel_retry_storm_total", "") > storms_before, "1 retry per request over 20 requests is a storm");
    let text = reqwest::get(format!("http://{keel}/metrics")).await.unwrap().text().await.unwrap();
    for needle in [
        "keel_gateway_attempts_total{target=\"a/a-model\",outcome=\"error\"}",
        "keel_gateway_attempts_total{target=\"a/a-model\",outcome=\"ok\"}",
        "keel_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"}",
        "keel_http_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"+Inf\"}",
        "keel_breaker_state{target=\"a/a-model\"}",
        "# TYPE keel_retry_storm_total counter",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test]
async fn routing_rules_pick_a_chain_by_intent_size_and_tenant() {
    let (fa, a) = start_fake().await;
    let (fb, b) = start_fake().await;
    let mut cfg = config(&a, &b);
    let to_b = vec![TargetConfig { provider: "b".into(), model: "b-big".into(), price: None, weight: None }];
    cfg.gateway.routes.push(RouteConfig {
        model: "ruled".into(),
        targets: vec![TargetConfig { provider: "a".into(), model: "a-small".into(), price: None, weight: None }],
        price: None,
        rules: vec![
            RuleConfig { intent: Some("billing".into()), targets: to_b.clone(), ..Default::default() },
            RuleConfig { min_prompt_tokens: Some(200), targets: to_b.clone(), ..Default::default() },
            RuleConfig { tenants: vec!["vip".into()], targets: to_b, ..Default::default() },
        ],
        guard: None,
    });
    let (keel, gateway) = start_keel(&cfg).await;
    let send = |body: Value| async move {
        let res =
            reqwest::Client::new().post(format!("http://{keel}/v1/chat/completions")).json(&body).send().await.unwrap();
        (res.status().as_u16(), res.headers()["x-keel-target"].to_str().unwrap().to_string())
    };
    let short = json!({ "model": "ruled", "messages": [{ "role": "user", "content": "hi" }] });
    assert_eq!(send(short.clone()).await, (200, "a/a-small".to_string()));
    let mut billing = short.clone();
    billing["metadata"] = json!({ "intent": "billing" });
    assert_eq!(send(billing).await, (200, "b/b-big".to_string()));
    let long = json!({ "model": "ruled", "messages": [{ "role": "user", "content": "word ".repeat(400) }] });
    assert_eq!(send(long).await, (200, "b/b-big".to_string()));
    assert_eq!(
        (fa.models(), fb.models()),
        (vec!["a-small".to_string()], vec!["b-big".to_string(), "b-big".to_string()])
    );

    // Tenants (without keys every caller is `default`): asked of the gateway directly.
    let input = |tenant| keel::gateway::RouteInput { tenant, body: &short };
    assert_eq!(gateway.resolve("ruled", &input("vip")), "ruled#3");
    assert_eq!(gateway.resolve("ruled", &input("default")), "ruled");
    assert_eq!(gateway.resolve("solo", &input("vip")), "solo", "a route without rules");
    // Rule chains are not model names clients can ask for.
    assert!(!gateway.has_model("ruled#3") && !gateway.models().iter().any(|m| m.contains('#')));
}

/// A server like `start_keel` whose gateway requests are traced into a store in `dir`.
async fn start_traced(cfg: &Config, dir: &std::path::Path, capture: TraceCapture, sample: f64) -> SocketAddr {
    let gateway = Arc::new(Gateway::new(&cfg.gateway, &Default::default()).unwrap());
    let store = keel::store::Store::open_embedded(dir).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = ServerState::proxy_only(1 << 20, gateway).with_traces(
        keel::pipeline::TraceSink::spawn(store),
        capture,
        sample,
        &cfg.guard.pii,
    );
    tokio::spawn(async move { keel::http::serve(listener, state, std::future::pending()).await.unwrap() });
    addr
}

/// The stored trace of a response (a stream's trace is written when the stream ends, so it is
/// polled for briefly).
async fn stored_trace(addr: SocketAddr, headers: &reqwest::header::HeaderMap) -> Value {
    let id = headers["x-keel-trace-id"].to_str().unwrap().to_string();
    for _ in 0..40 {
        let res = reqwest::get(format!("http://{addr}/v1/traces/{id}")).await.unwrap();
        if res.status() == 200 {
            return res.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("trace {id} was never stored");
}

fn span<'a>(trace: &'a Value, name: &str) -> &'a Value {
    trace["spans"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no {name} span"))
}

#[tokio::test]
async fn gateway_requests_leave_a_trace_with_attempts_usage_and_redacted_text() {
    let (fa, a) = start_fake().await;
    let (_fb, b) = start_fake().await;
    let dir = tempfile::tempdir().unwrap();
    let keel = start_traced(&config(&a, &b), dir.path(), TraceCapture::Messages, 1.0).await;
    let client = reqwest::Client::new();
    let url = format!("http://{keel}/v1/chat/completions");

    // A retried call: both attempts, the serving target, the provider's usage; the e-mail
    // address in the message is not stored, the rest of the text is.
    fa.push(&[Play::Status(503, None), Play::Ok("the reply")]);
    let body = json!({ "model": "solo", "messages": [{ "role": "user", "content": "mail ann@example.com please, key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t" }] });
    let res = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let t = stored_trace(keel, res.headers()).await;
    assert_eq!(t["route"], "gateway");
    assert_eq!(t["status"], "ok");
    assert_eq!(t["input"]["model"], "solo");
    assert_eq!(t["input"]["messages"][0]["content"], "mail [EMAIL] please, key [SECRET]");
    assert!(!t.to_string().contains("ann@example.com") && !t.to_string().contains("sk-proj-"));
    let provider = &span(&t, "provider")["attrs"];
    assert_eq!(provider["calls"], 2);
    assert!(provider["attempts"][0]["outcome"].as_str().unwrap().contains("503"), "{provider}");
    assert_eq!(t["output"]["usage"]["prompt_tokens"], 3);
    assert_eq!(t["output"]["reply"], "the reply");
    assert_eq!(t["output"]["http_status"], 200);

    // A failed call is traced with its error code.
    fa.push(&[Play::Status(400, None)]);
    let res = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let t = stored_trace(keel, res.headers()).await;
    assert_eq!(t["status"], "error");
    assert_eq!(t["output"]["error"], "upstream_rejected");

    // A stream cut half-way: the trace has the text that reached the client and the error.
    fa.push(&[Play::StreamCut]);
    let (status, headers, _) = chat(keel, "solo", true).await;
    assert_eq!(status, 200);
    let t = stored_trace(keel, &headers).await;
    assert_eq!(t["status"], "error");
    assert_eq!(t["output"]["error"], "stream_interrupted");
    assert_eq!(t["output"]["reply"], "half way");
    assert_eq!(t["input"]["stream"], true);
    assert_eq!(span(&t, "stream")["attrs"]["done"], false);
    assert!(t["output"]["usage"]["estimated"].as_bool().unwrap());

    // A clean stream.
    let (_, headers, _) = chat(keel, "solo", true).await;
    let t = stored_trace(keel, &headers).await;
    assert_eq!(t["status"], "ok");
    assert_eq!(t["output"]["reply"], "default more");
    let newest = headers["x-keel-trace-id"].to_str().unwrap().to_string();

    // The list: newest first, filtered by status, paged with `before`.
    let list = |q: &str| {
        let url = format!("http://{keel}/v1/traces?{q}");
        async move { reqwest::get(url).await.unwrap() }
    };
    let all: Value = list("route=gateway").await.json().await.unwrap();
    let ids: Vec<&str> = all["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4, "{all}");
    assert_eq!(ids[0], newest);
    assert_eq!(all["data"][3]["model"], "solo");
    assert_eq!(all["data"][3]["status"], "ok");
    let errors: Value = list("status=error").await.json().await.unwrap();
    let codes: Vec<&str> = errors["data"].as_array().unwrap().iter().map(|t| t["error"].as_str().unwrap()).collect();
    assert_eq!(codes, ["stream_interrupted", "upstream_rejected"]);
    let page: Value = list("limit=2").await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let rest: Value = list(&format!("limit=2&before={}", page["next"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(rest["data"][0]["id"], ids[2]);
    // By model, tenant and time.
    let count = |v: Value| v["data"].as_array().unwrap().len();
    assert_eq!(count(list("model=solo").await.json().await.unwrap()), 4);
    assert_eq!(count(list("model=chain").await.json().await.unwrap()), 0);
    let tenant = all["data"][0]["tenant"].as_str().unwrap().to_string();
    assert_eq!(count(list(&format!("tenant={tenant}")).await.json().await.unwrap()), 4);
    assert_eq!(count(list("tenant=someone-else").await.json().await.unwrap()), 0);
    let created = all["data"][3]["created_at_ms"].as_i64().unwrap();
    let newest_ms = all["data"][0]["created_at_ms"].as_i64().unwrap();
    assert_eq!(count(list(&format!("since={created}")).await.json().await.unwrap()), 4);
    assert_eq!(count(list(&format!("since={}", newest_ms + 1)).await.json().await.unwrap()), 0);
    assert_eq!(count(list(&format!("until={created}")).await.json().await.unwrap()), 0);
    assert_eq!(list("since=yesterday").await.status(), 400);
    assert_eq!(list("limit=0").await.status(), 400);
    assert_eq!(list("colour=red").await.status(), 400);
}

#[tokio::test]
async fn metadata_traces_keep_no_text_and_off_writes_none() {
    let (_fa, a) = start_fake().await;
    let (_fb, b) = start_fake().await;
    let dir = tempfile::tempdir().unwrap();
    let keel = start_traced(&config(&a, &b), dir.path(), TraceCapture::Metadata, 1.0).await;
    let (status, headers, _) = chat(keel, "chain", false).await;
    assert_eq!(status, 200);
    let t = stored_trace(keel, &headers).await;
    assert_eq!(t["input"]["messages_count"], 1);
    assert!(t["input"].get("messages").is_none() && t["output"].get("reply").is_none(), "{t}");
    assert!(t["output"]["target"].as_str().unwrap().contains("a-model"), "{t}");

    let dir = tempfile::tempdir().unwrap();
    let keel = start_traced(&config(&a, &b), dir.path(), TraceCapture::Off, 1.0).await;
    let (status, headers, _) = chat(keel, "chain", false).await;
    assert_eq!(status, 200);
    assert!(headers.get("x-keel-trace-id").is_none());
}

#[tokio::test]
async fn sampled_traces_keep_a_share_of_successes_and_every_failure() {
    let (fa, a) = start_fake().await;
    let (_fb, b) = start_fake().await;
    let dir = tempfile::tempdir().unwrap();
    let keel = start_traced(&config(&a, &b), dir.path(), TraceCapture::Metadata, 0.25).await;
    let mut kept = 0;
    for _ in 0..200 {
        let (status, headers, _) = chat(keel, "solo", false).await;
        assert_eq!(status, 200);
        if headers.get("x-keel-trace-id").is_some() {
            stored_trace(keel, &headers).await;
            kept += 1;
        }
    }
    // 200 draws at 0.25: 50 expected; outside 25..=80 is a broken sampler, not bad luck.
    assert!((25..=80).contains(&kept), "{kept} of 200 kept");
    for _ in 0..10 {
        fa.push(&[Play::Status(400, None)]);
        let (status, headers, _) = chat(keel, "solo", false).await;
        assert_eq!(status, 400);
        let t = stored_trace(keel, &headers).await;
        assert_eq!(t["status"], "error");
        assert_eq!(span(&t, "provider")["attrs"]["calls"], 1, "{t}");
    }
}
