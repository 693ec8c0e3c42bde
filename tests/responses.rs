//! Stored Responses: `previous_response_id` continues a kept conversation (plain and after a
//! stream), per tenant; `store: false` keeps nothing; `GET` and `DELETE /v1/responses/{id}`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use keel::config::gateway::{ProviderConfig, ProviderKind, RouteConfig, TargetConfig};
use keel::config::Config;
use keel::gateway::Gateway;
use keel::http::ServerState;
use keel::store::Store;
use serde_json::{json, Value};

type Seen = Arc<Mutex<Vec<Value>>>;

/// A chat upstream that answers "reply N" (N = how many messages it got), streamed or not;
/// a last message "echo X" is answered "X".
async fn upstream(State(seen): State<Seen>, Json(body): Json<Value>) -> Response {
    let n = body["messages"].as_array().unwrap().len();
    let stream = body["stream"] == true;
    let last = body["messages"][n - 1]["content"].as_str().unwrap_or("").to_string();
    seen.lock().unwrap().push(body);
    let text = last.strip_prefix("echo ").map_or_else(|| format!("reply {n}"), str::to_string);
    if stream {
        let chunk = |delta: Value, finish: Value| {
            format!(
                "data: {}\n\n",
                json!({ "id": "chatcmpl-s", "model": "up", "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
            )
        };
        let body = [
            chunk(json!({ "role": "assistant", "content": "reply " }), Value::Null),
            chunk(json!({ "content": n.to_string() }), Value::Null),
            chunk(json!({}), json!("stop")),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat();
        return ([("content-type", "text/event-stream")], body).into_response();
    }
    Json(json!({ "id": format!("chatcmpl-{n}x{}", uuid_like()), "object": "chat.completion", "model": "up",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5 } }))
    .into_response()
}

/// A distinct id per reply (the fake's replies must not share a response id).
fn uuid_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

async fn start() -> (SocketAddr, Seen, String, String, tempfile::TempDir) {
    let seen: Seen = Arc::default();
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    let app = Router::new().route("/v1/chat/completions", post(upstream)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(up, app).await.unwrap() });

    let mut cfg = Config::default();
    cfg.gateway.providers = vec![ProviderConfig {
        name: "up".into(),
        kind: ProviderKind::OpenAi,
        base_url: format!("http://{up_addr}/v1"),
        api_key_env: None,
        stream_usage: false,
        wire: Default::default(),
        timeouts: Default::default(),
    }];
    cfg.gateway.routes = vec![RouteConfig {
        model: "m".into(),
        targets: vec![TargetConfig { provider: "up".into(), model: "up".into(), price: None, weight: None }],
        price: None,
        rules: vec![],
        guard: None,
    }];
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_embedded(tmp.path()).await.unwrap();
    let (_, a) = keel::auth::create_key(&store, "tenant-a", &["query".into()]).await.unwrap();
    let (_, b) = keel::auth::create_key(&store, "tenant-b", &["query".into()]).await.unwrap();
    let gateway = Arc::new(Gateway::new(&cfg.gateway, &Default::default()).unwrap());
    let state =
        ServerState::proxy_only(1 << 20, gateway).with_auth(store.clone()).with_responses(&store, &Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { keel::http::serve(listener, state, std::future::pending()).await.unwrap() });
    (addr, seen, a, b, tmp)
}

async fn create(addr: SocketAddr, key: &str, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/v1/responses"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn call(addr: SocketAddr, key: &str, method: reqwest::Method, id: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .request(method, format!("http://{addr}/v1/responses/{id}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn roles_and_texts(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap().to_string(), m["content"].as_str().unwrap_or("").to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_response_is_continued_fetched_and_deleted_by_its_tenant_only() {
    let (addr, seen, a, b, _tmp) = start().await;
    let (s, first) =
        create(addr, &a, json!({ "model": "m", "instructions": "Be brief.", "input": "My name is Ada." })).await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(
        (first["store"].as_bool(), first["output"][0]["content"][0]["text"].as_str()),
        (Some(true), Some("reply 2"))
    );
    let id = first["id"].as_str().unwrap().to_string();

    // Continued: the kept conversation (without the old instructions) before the new input.
    let (s, second) = create(addr, &a, json!({ "model": "m", "input": "What is my name?", "previous_response_id": id, "instructions": "Answer in French." })).await;
    assert_eq!(s, 200, "{second}");
    assert_eq!(second["previous_response_id"], id.as_str());
    let sent = roles_and_texts(seen.lock().unwrap().last().unwrap());
    let expect = [
        ("system", "Answer in French."),
        ("user", "My name is Ada."),
        ("assistant", "reply 2"),
        ("user", "What is my name?"),
    ];
    assert_eq!(sent, expect.map(|(r, t)| (r.to_string(), t.to_string())));

    // Fetched as it was returned, by its tenant only; another tenant cannot see or continue it.
    assert_eq!(call(addr, &a, reqwest::Method::GET, &id).await, (200, first.clone()));
    assert_eq!(call(addr, &b, reqwest::Method::GET, &id).await.0, 404);
    let (s, e) = create(addr, &b, json!({ "model": "m", "input": "x", "previous_response_id": id })).await;
    assert_eq!((s, e["error"]["param"].as_str()), (404, Some("previous_response_id")));

    // A stream is kept before its last event: continuing it at once finds its reply.
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/v1/responses"))
        .bearer_auth(&a)
        .json(&json!({ "model": "m", "input": "Count.", "stream": true, "previous_response_id": second["id"] }))
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    let last: Value =
        serde_json::from_str(text.lines().filter_map(|l| l.strip_prefix("data: ")).next_back().unwrap()).unwrap();
    assert_eq!((last["type"].as_str(), last["response"]["store"].as_bool()), (Some("response.completed"), Some(true)));
    let streamed_id = last["response"]["id"].as_str().unwrap().to_string();
    let (s, _) =
        create(addr, &a, json!({ "model": "m", "input": "Again.", "previous_response_id": streamed_id })).await;
    assert_eq!(s, 200);
    let sent = roles_and_texts(seen.lock().unwrap().last().unwrap());
    assert_eq!(sent.len(), 7, "{sent:?}");
    assert_eq!(sent[5], ("assistant".to_string(), "reply 5".to_string()), "the streamed reply was kept");

    // `store: false` keeps nothing.
    let (_, unkept) = create(addr, &a, json!({ "model": "m", "input": "Forget me.", "store": false })).await;
    assert_eq!(unkept["store"], false);
    assert_eq!(call(addr, &a, reqwest::Method::GET, unkept["id"].as_str().unwrap()).await.0, 404);

    // Deleted: gone for fetching and continuing; another tenant cannot delete it.
    assert_eq!(call(addr, &b, reqwest::Method::DELETE, &id).await.0, 404);
    let (s, d) = call(addr, &a, reqwest::Method::DELETE, &id).await;
    assert_eq!((s, d), (200, json!({ "id": id, "object": "response.deleted", "deleted": true })));
    assert_eq!(call(addr, &a, reqwest::Method::GET, &id).await.0, 404);
    let (s, _) = create(addr, &a, json!({ "model": "m", "input": "x", "previous_response_id": id })).await;
    assert_eq!(s, 404);
}

/// Every file under `dir` (the store and its WAL) as lossy text.
fn files_text(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_conversation_holds_no_personal_data_the_client_still_gets_its_reply() {
    let (addr, seen, a, _b, tmp) = start().await;
    let (s, first) = create(
        addr,
        &a,
        json!({ "model": "m", "input": "echo Mail jane.doe@example.com, card 4111 1111 1111 1111, IP 10.1.2.3." }),
    )
    .await;
    assert_eq!(s, 200, "{first}");
    // The live reply is the model's, untouched (this route has no input guard).
    let live = first["output"][0]["content"][0]["text"].as_str().unwrap();
    assert_eq!(live, "Mail jane.doe@example.com, card 4111 1111 1111 1111, IP 10.1.2.3.");
    let id = first["id"].as_str().unwrap().to_string();

    // What was kept is redacted as traces are (IP addresses are allowed by default).
    let (s, got) = call(addr, &a, reqwest::Method::GET, &id).await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(got["output"][0]["content"][0]["text"], "Mail [EMAIL], card [CARD], IP 10.1.2.3.", "{got}");
    let disk = files_text(tmp.path());
    assert!(!disk.contains("jane.doe") && !disk.contains("4111 1111"), "personal data reached the store");

    // A continuation sends the redacted conversation.
    let (s, _) = create(addr, &a, json!({ "model": "m", "input": "And then?", "previous_response_id": id })).await;
    assert_eq!(s, 200);
    let sent = roles_and_texts(seen.lock().unwrap().last().unwrap());
    assert_eq!(sent[0], ("user".into(), "echo Mail [EMAIL], card [CARD], IP 10.1.2.3.".into()), "{sent:?}");
    assert_eq!(sent[1], ("assistant".into(), "Mail [EMAIL], card [CARD], IP 10.1.2.3.".into()), "{sent:?}");
}
