//! Anthropic both ways: the `anthropic` provider against a scripted fake Messages API (plain,
//! streamed, an overloaded 529 retried, an error event mid-stream, a 400 not retried, tool
//! calls and their results, plain and streamed), and
//! Keel's own `/v1/messages` face in front of a route.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code: a panic is a failed test")]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures_util::StreamExt;
use keel::config::gateway::{ProviderConfig, ProviderKind, RouteConfig, TargetConfig};
use keel::config::Config;
use keel::gateway::Gateway;
use keel::http::ServerState;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug)]
enum Play {
    Ok,
    /// The model calls `get_weather` (after a line of text).
    ToolUse,
    /// The model calls the tool a JSON `response_format` was asked through.
    JsonAnswer,
    Status(u16),
    StreamError,
}

/// A request the fake received: its body and its `x-api-key`.
type Seen = (Value, Option<String>);

#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<VecDeque<Play>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

async fn fake_messages(State(f): State<Fake>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let key = headers.get("x-api-key").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(headers.get("anthropic-version").unwrap(), "2023-06-01");
    f.seen.lock().unwrap().push((body.clone(), key));
    let mut play = f.script.lock().unwrap().pop_front().unwrap_or(Play::Ok);
    if body.pointer("/tool_choice/name") == Some(&json!("json_answer")) {
        play = Play::JsonAnswer;
    }
    let model = body["model"].as_str().unwrap_or("").to_string();
    let start = json!({ "type": "message_start", "message": { "id": "msg_up", "type": "message", "role": "assistant",
        "content": [], "model": model, "usage": { "input_tokens": 11, "output_tokens": 1 } } });
    let delta =
        |t: &str| json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": t } });
    match play {
        Play::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            Json(json!({ "type": "error", "error": { "type": "overloaded_error", "message": "scripted" } })),
        )
            .into_response(),
        Play::Ok if body["stream"] == true => {
            let s = [
                event("message_start", start),
                event("ping", json!({ "type": "ping" })),
                event("content_block_start", json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } })),
                event("content_block_delta", delta("Hello")),
                event("content_block_delta", delta(" from claude")),
                event("content_block_stop", json!({ "type": "content_block_stop", "index": 0 })),
                event("message_delta", json!({ "type": "message_delta", "delta": { "stop_reason": "end_turn" }, "usage": { "output_tokens": 4 } })),
                event("message_stop", json!({ "type": "message_stop" })),
            ]
            .concat();
            ([("content-type", "text/event-stream")], s).into_response()
        }
        Play::StreamError => {
            // The error arrives after the first events reached the client.
            let head = [event("message_start", start), event("content_block_delta", delta("half"))].concat();
            let error = event(
                "error",
                json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } }),
            );
            let parts = futures_util::stream::iter([(head, 0u64), (error, 100)]).then(|(s, ms)| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok::<_, std::io::Error>(s)
            });
            ([("content-type", "text/event-stream")], axum::body::Body::from_stream(parts)).into_response()
        }
        Play::ToolUse if body["stream"] == true => {
            let s = [
                event("message_start", start),
                event("content_block_start", json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } })),
                event("content_block_delta", delta("Let me check.")),
                event("content_block_stop", json!({ "type": "content_block_stop", "index": 0 })),
                event("content_block_start", json!({ "type": "content_block_start", "index": 1,
                    "content_block": { "type": "tool_use", "id": "toolu_7", "name": "get_weather", "input": {} } })),
                event("content_block_delta", json!({ "type": "content_block_delta", "index": 1,
                    "delta": { "type": "input_json_delta", "partial_json": "{\"city\": " } })),
                event("content_block_delta", json!({ "type": "content_block_delta", "index": 1,
                    "delta": { "type": "input_json_delta", "partial_json": "\"Paris\"}" } })),
                event("content_block_stop", json!({ "type": "content_block_stop", "index": 1 })),
                event("message_delta", json!({ "type": "message_delta", "delta": { "stop_reason": "tool_use" }, "usage": { "output_tokens": 9 } })),
                event("message_stop", json!({ "type": "message_stop" })),
            ]
            .concat();
            ([("content-type", "text/event-stream")], s).into_response()
        }
        Play::JsonAnswer => Json(json!({ "id": "msg_up", "type": "message", "role": "assistant", "model": model,
            "content": [{ "type": "tool_use", "id": "toolu_j", "name": "json_answer", "input": { "days": 30 } }],
            "stop_reason": "tool_use", "usage": { "input_tokens": 20, "output_tokens": 9 } }))
        .into_response(),
        Play::ToolUse => Json(json!({ "id": "msg_up", "type": "message", "role": "assistant", "model": model,
            "content": [{ "type": "text", "text": "Let me check." },
                        { "type": "tool_use", "id": "toolu_7", "name": "get_weather", "input": { "city": "Paris" } }],
            "stop_reason": "tool_use", "usage": { "input_tokens": 20, "output_tokens": 9 } }))
        .into_response(),
        Play::Ok => Json(json!({ "id": "msg_up", "type": "message", "role": "assistant", "model": model,
            "content": [{ "type": "text", "text": "Hello from claude" }], "stop_reason": "end_turn",
            "usage": { "input_tokens": 11, "output_tokens": 4 } }))
        .into_response(),
    }
}

async fn start_fake() -> (Fake, String) {
    let fake = Fake::default();
    let app = Router::new().route("/v1/messages", post(fake_messages)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, format!("http://{addr}/v1"))
}

async fn start_keel(upstream: &str) -> SocketAddr {
    let mut c = Config::default();
    let g = &mut c.gateway;
    g.backoff_base = Duration::from_millis(5);
    g.backoff_max = Duration::from_millis(20);
    g.max_attempts = 3;
    g.providers = vec![ProviderConfig {
        name: "claude".into(),
        kind: ProviderKind::Anthropic,
        base_url: upstream.into(),
        api_key_env: None,
        stream_usage: true,
        wire: Default::default(),
        timeouts: Default::default(),
    }];
    g.routes = vec![RouteConfig {
        model: "sonnet".into(),
        targets: vec![TargetConfig {
            provider: "claude".into(),
            model: "claude-sonnet-test".into(),
            price: None,
            weight: None,
        }],
        price: None,
        rules: vec![],
        guard: None,
    }];
    let mut secrets = keel::gateway::Secrets::default();
    secrets.0.insert("claude".into(), "sk-ant-test".into());
    let gateway = Arc::new(Gateway::new(&c.gateway, &secrets).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = ServerState::proxy_only(1 << 20, gateway);
    tokio::spawn(async move { keel::http::serve(listener, state, std::future::pending()).await.unwrap() });
    addr
}

async fn send(addr: SocketAddr, path: &str, body: Value) -> (u16, String) {
    let res = reqwest::Client::new().post(format!("http://{addr}{path}")).json(&body).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn the_anthropic_provider_translates_requests_replies_and_streams() {
    let (fake, url) = start_fake().await;
    let keel = start_keel(&url).await;
    let chat = json!({ "model": "sonnet", "messages": [{ "role": "system", "content": "Be brief." },
                                                         { "role": "user", "content": "hi" }] });
    let (status, body) = send(keel, "/v1/chat/completions", chat.clone()).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from claude");
    assert_eq!((v["usage"]["prompt_tokens"].as_u64(), v["usage"]["completion_tokens"].as_u64()), (Some(11), Some(4)));
    {
        let seen = fake.seen.lock().unwrap();
        let (sent, key) = &seen[0];
        assert_eq!(sent["model"], "claude-sonnet-test");
        assert_eq!(sent["system"], "Be brief.");
        assert_eq!(sent["messages"], json!([{ "role": "user", "content": "hi" }]));
        assert_eq!(key.as_deref(), Some("sk-ant-test"), "the credential goes in x-api-key");
    }

    // An overloaded 529 is retried; a 400 is not.
    fake.script.lock().unwrap().extend([Play::Status(529), Play::Ok]);
    let (status, _) = send(keel, "/v1/chat/completions", chat.clone()).await;
    assert_eq!(status, 200);
    fake.script.lock().unwrap().extend([Play::Status(400)]);
    let before = fake.seen.lock().unwrap().len();
    let (status, body) = send(keel, "/v1/chat/completions", chat.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fake.seen.lock().unwrap().len(), before + 1, "no retry on 400");

    // Streams: Anthropic events become chunks ending in [DONE] …
    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);
    let (status, body) = send(keel, "/v1/chat/completions", streamed.clone()).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"content\":\"Hello\"") && body.contains(" from claude"), "{body}");
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    // Anthropic's usage is metered but its chunk reaches only a client that asked for it.
    assert!(!body.contains("completion_tokens"), "{body}");
    let mut asking = streamed.clone();
    asking["stream_options"] = json!({ "include_usage": true });
    let (_, body) = send(keel, "/v1/chat/completions", asking).await;
    assert!(body.contains("\"completion_tokens\":4") && body.trim_end().ends_with("data: [DONE]"), "{body}");
    // … and an error event mid-stream ends it with an error, never [DONE].
    fake.script.lock().unwrap().extend([Play::StreamError]);
    let (_, body) = send(keel, "/v1/chat/completions", streamed).await;
    assert!(body.contains("half") && body.contains("stream_interrupted") && body.contains("Overloaded"), "{body}");
    assert!(!body.contains("[DONE]"), "{body}");
}

#[tokio::test]
async fn tool_calls_cross_the_anthropic_provider_both_ways_plain_and_streamed() {
    let (fake, url) = start_fake().await;
    let keel = start_keel(&url).await;
    let tools = json!([{ "type": "function", "function": { "name": "get_weather", "description": "Weather in a city",
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] } } }]);
    let ask = json!({ "model": "sonnet", "tools": tools, "tool_choice": "auto",
                      "messages": [{ "role": "user", "content": "Weather in Paris?" }] });
    fake.script.lock().unwrap().extend([Play::ToolUse]);
    let (status, body) = send(keel, "/v1/chat/completions", ask.clone()).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Let me check.");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!((call["id"].as_str(), call["type"].as_str()), (Some("toolu_7"), Some("function")));
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({ "city": "Paris" }));
    {
        let seen = fake.seen.lock().unwrap();
        let sent = &seen.last().unwrap().0;
        assert_eq!(sent["tools"][0]["name"], "get_weather");
        assert_eq!(sent["tools"][0]["input_schema"]["required"], json!(["city"]));
        assert_eq!(sent["tool_choice"], json!({ "type": "auto" }));
    }

    // The client runs the tool and sends its result back with the assistant's call.
    let mut answer = ask.clone();
    let history = answer["messages"].as_array_mut().unwrap();
    history.push(choice["message"].clone());
    history.push(json!({ "role": "tool", "tool_call_id": "toolu_7", "content": "18°C, sunny" }));
    let (status, body) = send(keel, "/v1/chat/completions", answer).await;
    assert_eq!(status, 200, "{body}");
    {
        let seen = fake.seen.lock().unwrap();
        let sent = &seen.last().unwrap().0;
        assert_eq!(
            sent["messages"][1]["content"],
            json!([{ "type": "text", "text": "Let me check." },
                   { "type": "tool_use", "id": "toolu_7", "name": "get_weather", "input": { "city": "Paris" } }])
        );
        assert_eq!(
            sent["messages"][2],
            json!({ "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "toolu_7", "content": "18°C, sunny" }] })
        );
    }

    // Streamed: the tool call arrives as deltas a client can assemble.
    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    fake.script.lock().unwrap().extend([Play::ToolUse]);
    let (status, body) = send(keel, "/v1/chat/completions", streamed).await;
    assert_eq!(status, 200, "{body}");
    let chunks: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .collect();
    let calls: Vec<&Value> = chunks.iter().filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0")).collect();
    assert_eq!(calls[0]["id"], "toolu_7");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args: String = calls.iter().filter_map(|c| c["function"]["arguments"].as_str()).collect();
    assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({ "city": "Paris" }));
    assert!(calls.iter().all(|c| c["index"] == 0));
    assert!(chunks.iter().any(|c| c.pointer("/choices/0/finish_reason") == Some(&json!("tool_calls"))));
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");

    // A malformed tool call in the history is the client's error, and no call is made.
    let before = fake.seen.lock().unwrap().len();
    let bad = json!({ "model": "sonnet", "messages": [{ "role": "assistant", "tool_calls": [
        { "id": "c1", "type": "function", "function": { "name": "f", "arguments": "not json" } }] }] });
    let (status, body) = send(keel, "/v1/chat/completions", bad).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("messages[0].tool_calls[0].function.arguments must be a JSON object"), "{body}");
    assert_eq!(fake.seen.lock().unwrap().len(), before);
}

#[tokio::test]
async fn v1_messages_speaks_the_messages_api_plain_streamed_and_in_errors() {
    let (_fake, url) = start_fake().await;
    let keel = start_keel(&url).await;
    let req = json!({ "model": "sonnet", "max_tokens": 64, "system": "Be brief.",
                      "messages": [{ "role": "user", "content": [{ "type": "text", "text": "hi" }] }] });
    let (status, body) = send(keel, "/v1/messages", req.clone()).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["type"].as_str(), v["role"].as_str()), (Some("message"), Some("assistant")));
    assert_eq!(v["content"][0], json!({ "type": "text", "text": "Hello from claude" }));
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!((v["usage"]["input_tokens"].as_u64(), v["usage"]["output_tokens"].as_u64()), (Some(11), Some(4)));

    let mut streamed = req.clone();
    streamed["stream"] = json!(true);
    let (status, body) = send(keel, "/v1/messages", streamed).await;
    assert_eq!(status, 200);
    let order = [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ];
    let mut at = 0;
    for name in order {
        let i = body[at..].find(&format!("event: {name}")).unwrap_or_else(|| panic!("{name} missing in order: {body}"));
        at += i;
    }
    assert!(body.contains("Hello") && body.contains("\"output_tokens\":4"), "{body}");

    let (status, body) = send(keel, "/v1/messages", json!({ "model": "nope", "max_tokens": 5, "messages": [] })).await;
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["type"].as_str(), v["error"]["type"].as_str()), (Some("error"), Some("not_found_error")));
    let (status, body) = send(keel, "/v1/messages", json!({ "model": "sonnet", "messages": [] })).await;
    assert_eq!(status, 422, "max_tokens is required: {body}");
    assert!(body.contains("max_tokens") && body.contains("invalid_request_error"), "{body}");
}

#[tokio::test]
async fn v1_messages_carries_tools_through_a_route_and_back() {
    // The Messages API in, the chat shape inside, the Messages API out to the provider: the
    // tools, the call and its result must come out as they went in.
    let (fake, url) = start_fake().await;
    let keel = start_keel(&url).await;
    let tools = json!([{ "name": "get_weather", "description": "Weather in a city",
        "input_schema": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] } }]);
    let ask = json!({ "model": "sonnet", "max_tokens": 200, "tools": tools, "tool_choice": { "type": "auto" },
                      "messages": [{ "role": "user", "content": "Weather in Paris?" }] });
    fake.script.lock().unwrap().extend([Play::ToolUse]);
    let (status, body) = send(keel, "/v1/messages", ask.clone()).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][0], json!({ "type": "text", "text": "Let me check." }));
    assert_eq!(
        v["content"][1],
        json!({ "type": "tool_use", "id": "toolu_7", "name": "get_weather", "input": { "city": "Paris" } })
    );
    {
        let seen = fake.seen.lock().unwrap();
        let sent = &seen.last().unwrap().0;
        assert_eq!(sent["tools"], tools, "the tools reach the provider as the client sent them");
        assert_eq!(sent["tool_choice"], json!({ "type": "auto" }));
    }

    let mut answer = ask.clone();
    let history = answer["messages"].as_array_mut().unwrap();
    history.push(json!({ "role": "assistant", "content": v["content"] }));
    history.push(json!({ "role": "user", "content": [
        { "type": "tool_result", "tool_use_id": "toolu_7", "content": "18°C" }] }));
    let (status, body) = send(keel, "/v1/messages", answer.clone()).await;
    assert_eq!(status, 200, "{body}");
    {
        let seen = fake.seen.lock().unwrap();
        let sent = &seen.last().unwrap().0;
        assert_eq!(sent["messages"][1], answer["messages"][1], "the assistant's call, unchanged");
        assert_eq!(sent["messages"][2], answer["messages"][2], "the tool result, unchanged");
    }

    // Streamed: a text block, then a tool_use block built from JSON deltas.
    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    fake.script.lock().unwrap().extend([Play::ToolUse]);
    let (status, body) = send(keel, "/v1/messages", streamed).await;
    assert_eq!(status, 200, "{body}");
    let datas: Vec<Value> =
        body.lines().filter_map(|l| l.strip_prefix("data: ")).map(|d| serde_json::from_str(d).unwrap()).collect();
    let start = datas.iter().find(|d| d["type"] == "content_block_start" && d["index"] == 1).unwrap();
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["name"], "get_weather");
    let args: String = datas
        .iter()
        .filter(|d| d["index"] == 1)
        .filter_map(|d| d.pointer("/delta/partial_json").and_then(Value::as_str))
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({ "city": "Paris" }));
    let end = datas.iter().find(|d| d["type"] == "message_delta").unwrap();
    assert_eq!(end["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn a_json_response_format_is_answered_through_a_forced_tool() {
    let (fake, url) = start_fake().await;
    let keel = start_keel(&url).await;
    let schema = json!({ "type": "object", "properties": { "days": { "type": "integer" } }, "required": ["days"] });
    let ask = json!({ "model": "sonnet", "messages": [{ "role": "user", "content": "Return window, as JSON?" }],
        "response_format": { "type": "json_schema", "json_schema": { "name": "policy", "schema": schema } } });
    let (status, body) = send(keel, "/v1/chat/completions", ask).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(content).unwrap(), json!({ "days": 30 }));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
    let seen = fake.seen.lock().unwrap();
    let sent = &seen.last().unwrap().0;
    assert_eq!(sent["tools"][0]["input_schema"], schema);
    assert_eq!(sent["tool_choice"], json!({ "type": "tool", "name": "json_answer" }));
}
