//! The Anthropic-compatible face: `POST /v1/messages`, plain and streaming, so the `anthropic`
//! SDK (and tools built on it) can use Keel. The request becomes a chat request and takes the
//! same path as `/v1/chat/completions` (grounded pipeline or gateway route, limits, cache,
//! headers); the reply, its errors and its stream are translated back.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{parse_value, JsonBody};
use super::ServerState;
use crate::gateway::sse::{write_event, SseParser};

/// The Messages request. Unknown fields are rejected, like on the OpenAI face.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessagesRequest {
    model: String,
    messages: Vec<InMessage>,
    max_tokens: u64,
    #[serde(default)]
    system: Option<InContent>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    stream: bool,
    temperature: Option<f64>,
    top_p: Option<f64>,
    /// Accepted; OpenAI-shaped targets have no equivalent, so it is dropped.
    #[expect(dead_code, reason = "accepted for compatibility; no OpenAI equivalent")]
    top_k: Option<u64>,
    metadata: Option<Value>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    #[expect(dead_code, reason = "accepted for compatibility")]
    service_tier: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InMessage {
    role: InRole,
    content: InContent,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum InRole {
    User,
    Assistant,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum InContent {
    Text(String),
    Blocks(Vec<Block>),
}

/// A content block; extra keys (`cache_control`, `citations`…) are accepted and ignored.
#[derive(Debug, Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

fn invalid(msg: String, param: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "unsupported_value", msg).param(param)
}

impl InContent {
    fn text(&self, at: &str) -> Result<String, ApiError> {
        match self {
            InContent::Text(t) => Ok(t.clone()),
            InContent::Blocks(blocks) => {
                let mut out = Vec::new();
                for (i, b) in blocks.iter().enumerate() {
                    match (b.kind.as_str(), &b.text) {
                        ("text", Some(t)) => out.push(t.as_str()),
                        (kind, _) => {
                            return Err(invalid(
                                format!("`{at}[{i}]`: content blocks of type `{kind}` are not supported (text only)"),
                                &format!("{at}[{i}].type"),
                            ))
                        }
                    }
                }
                Ok(out.join("\n"))
            }
        }
    }
}

/// The Messages request as a chat request.
fn to_chat(req: &MessagesRequest) -> Result<Value, ApiError> {
    if req.tools.as_ref().is_some_and(|t| !t.is_empty()) || req.tool_choice.is_some() {
        return Err(invalid("tools are not supported on /v1/messages".into(), "tools"));
    }
    let mut messages = Vec::new();
    if let Some(s) = &req.system {
        messages.push(json!({ "role": "system", "content": s.text("system")? }));
    }
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role {
            InRole::User => "user",
            InRole::Assistant => "assistant",
        };
        messages.push(json!({ "role": role, "content": m.content.text(&format!("messages[{i}].content"))? }));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("max_tokens".into(), json!(req.max_tokens));
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(s) = req.stop_sequences.as_ref().filter(|s| !s.is_empty()) {
        body.insert("stop".into(), json!(s));
    }
    if let Some(u) = req.metadata.as_ref().and_then(|m| m.get("user_id")).and_then(Value::as_str) {
        body.insert("user".into(), json!(u));
    }
    if req.stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    Ok(Value::Object(body))
}

/// OpenAI `finish_reason` → Anthropic `stop_reason`.
fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

fn usage_of(u: Option<&Value>) -> Value {
    let n = |p: &str| u.and_then(|u| u.pointer(p)).and_then(Value::as_u64).unwrap_or(0);
    let cached = n("/prompt_tokens_details/cached_tokens");
    json!({ "input_tokens": n("/prompt_tokens").saturating_sub(cached), "output_tokens": n("/completion_tokens"),
            "cache_read_input_tokens": cached })
}

fn message_id(v: &Value) -> String {
    let id = v.get("id").and_then(Value::as_str).unwrap_or("");
    format!("msg_{}", id.trim_start_matches("chatcmpl-"))
}

/// A chat completion as a Messages reply (Keel's `keel` extension kept).
fn to_message(v: &Value) -> Value {
    let choice = &v["choices"][0];
    let text = choice.pointer("/message/content").and_then(Value::as_str).unwrap_or("");
    let mut out = json!({
        "id": message_id(v),
        "type": "message",
        "role": "assistant",
        "model": v.get("model").cloned().unwrap_or(Value::Null),
        "content": [{ "type": "text", "text": text }],
        "stop_reason": stop_reason(choice.get("finish_reason").and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": usage_of(v.get("usage")),
    });
    if let Some(k) = v.get("keel") {
        out["keel"] = k.clone();
    }
    out
}

/// Anthropic's error type for a status.
fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

fn error_body(status: u16, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": error_type(status), "message": message } })
}

/// Translates an OpenAI chunk stream into Anthropic's events.
#[derive(Default)]
struct ToAnthropic {
    sse: SseParser,
    started: bool,
    finish: Option<String>,
    usage: Option<Value>,
    keel: Option<Value>,
    ended: bool,
}

impl ToAnthropic {
    fn start(&mut self, out: &mut String, chunk: &Value) {
        if self.started {
            return;
        }
        self.started = true;
        let start = json!({ "type": "message_start", "message": {
            "id": message_id(chunk), "type": "message", "role": "assistant", "content": [],
            "model": chunk.get("model").cloned().unwrap_or(Value::Null), "stop_reason": null, "stop_sequence": null,
            "usage": { "input_tokens": 0, "output_tokens": 0 } } });
        write_event(out, Some("message_start"), &start.to_string());
        let block =
            json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } });
        write_event(out, Some("content_block_start"), &block.to_string());
    }

    fn feed(&mut self, bytes: &[u8]) -> String {
        let mut out = String::new();
        for ev in self.sse.push(bytes) {
            if self.ended {
                break;
            }
            if ev.data.trim() == "[DONE]" {
                self.start(&mut out, &Value::Null);
                write_event(
                    &mut out,
                    Some("content_block_stop"),
                    &json!({ "type": "content_block_stop", "index": 0 }).to_string(),
                );
                let mut delta = json!({ "type": "message_delta",
                    "delta": { "stop_reason": stop_reason(self.finish.as_deref()), "stop_sequence": null },
                    "usage": usage_of(self.usage.as_ref()) });
                if let Some(k) = self.keel.take() {
                    delta["keel"] = k;
                }
                write_event(&mut out, Some("message_delta"), &delta.to_string());
                write_event(&mut out, Some("message_stop"), &json!({ "type": "message_stop" }).to_string());
                self.ended = true;
                continue;
            }
            let Ok(v) = serde_json::from_str::<Value>(&ev.data) else { continue };
            if let Some(e) = v.get("error") {
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("the stream failed");
                write_event(&mut out, Some("error"), &error_body(500, msg).to_string());
                self.ended = true;
                continue;
            }
            self.start(&mut out, &v);
            if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                self.usage = Some(u.clone());
            }
            if let Some(k) = v.get("keel") {
                self.keel = Some(k.clone());
            }
            let choice = &v["choices"][0];
            if let Some(t) = choice.pointer("/delta/content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                let d =
                    json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": t } });
                write_event(&mut out, Some("content_block_delta"), &d.to_string());
            }
            if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish = Some(f.to_string());
            }
        }
        out
    }
}

fn translate_stream(body: Body) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let mut tr = ToAnthropic::default();
    body.into_data_stream()
        .map(move |r| r.map(|b| Bytes::from(tr.feed(&b))).map_err(std::io::Error::other))
        .filter(|r| std::future::ready(!matches!(r, Ok(b) if b.is_empty())))
        .boxed()
}

/// Rebuilds a response around a translated JSON body, keeping status and Keel's headers.
fn with_json(parts: axum::http::response::Parts, v: &Value) -> Response {
    let mut res = Response::from_parts(parts, Body::from(v.to_string()));
    res.headers_mut().remove(header::CONTENT_LENGTH);
    res.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    res
}

/// Translates whatever the chat path answered into the Messages shape.
async fn translate(res: Response) -> Response {
    let status = res.status();
    let (parts, body) = res.into_parts();
    let is_stream = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    if status.is_success() && is_stream {
        let mut res = Response::from_parts(parts, Body::from_stream(translate_stream(body)));
        res.headers_mut().remove(header::CONTENT_LENGTH);
        return res;
    }
    let bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        return with_json(parts, &to_message(&v));
    }
    let msg = v.pointer("/error/message").and_then(Value::as_str).unwrap_or("request failed");
    with_json(parts, &error_body(status.as_u16(), msg))
}

pub async fn messages(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<JsonBody<Value>, ApiError>,
) -> Response {
    let chat = body.and_then(|JsonBody(raw)| parse_value::<MessagesRequest>(&raw)).and_then(|r| to_chat(&r));
    let res = match chat {
        Ok(chat) => {
            match super::openai::chat_completions(State(state), Extension(caller), headers, JsonBody(chat)).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            }
        }
        Err(e) => e.into_response(),
    };
    translate(res).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_chat_requests() {
        let raw = json!({ "model": "m", "max_tokens": 20, "system": [{ "type": "text", "text": "Be brief." }],
            "messages": [{ "role": "user", "content": [{ "type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"} }] }],
            "stop_sequences": ["END"], "metadata": { "user_id": "u1" }, "stream": true, "top_k": 5 });
        let req: MessagesRequest = parse_value(&raw).unwrap();
        let chat = to_chat(&req).unwrap();
        assert_eq!(chat["messages"][0], json!({ "role": "system", "content": "Be brief." }));
        assert_eq!(chat["messages"][1], json!({ "role": "user", "content": "Hi" }));
        assert_eq!((chat["stop"][0].as_str(), chat["user"].as_str()), (Some("END"), Some("u1")));
        assert_eq!(chat["stream_options"]["include_usage"], true);

        let typo = json!({ "model": "m", "max_tokens": 5, "messages": [], "temprature": 1 });
        assert_eq!(parse_value::<MessagesRequest>(&typo).unwrap_err().status, StatusCode::UNPROCESSABLE_ENTITY);
        let image = json!({ "model": "m", "max_tokens": 5, "messages": [{ "role": "user", "content": [{ "type": "image" }] }] });
        let err = to_chat(&parse_value(&image).unwrap()).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0].content[0].type"));
    }

    #[test]
    fn replies_and_errors_take_the_messages_shape() {
        let v = json!({ "id": "chatcmpl-abc", "model": "m", "choices": [{ "message": { "content": "Hello" }, "finish_reason": "length" }],
                        "usage": { "prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": { "cached_tokens": 4 } } });
        let m = to_message(&v);
        assert_eq!((m["id"].as_str(), m["content"][0]["text"].as_str()), (Some("msg_abc"), Some("Hello")));
        assert_eq!(m["stop_reason"], "max_tokens");
        assert_eq!(m["usage"], json!({ "input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 4 }));
        assert_eq!(error_body(429, "slow down")["error"]["type"], "rate_limit_error");
        assert_eq!(error_body(504, "late")["error"]["type"], "api_error");
    }

    #[test]
    fn chunk_streams_become_message_events_and_errors_stay_errors() {
        let src = "data: {\"id\":\"chatcmpl-1\",\"model\":\"m\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
                   data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n\
                   data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
                   data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
        let mut t = ToAnthropic::default();
        let mut out = String::new();
        for piece in src.as_bytes().chunks(11) {
            out.push_str(&t.feed(piece));
        }
        let evs = SseParser::default().push(out.as_bytes());
        let names: Vec<&str> = evs.iter().filter_map(|e| e.event.as_deref()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let delta: Value = serde_json::from_str(&evs[4].data).unwrap();
        assert_eq!(
            (delta["delta"]["stop_reason"].as_str(), delta["usage"]["output_tokens"].as_u64()),
            (Some("end_turn"), Some(1))
        );

        let mut t = ToAnthropic::default();
        let out = t.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"half\"}}]}\n\n\n\ndata: {\"error\":{\"message\":\"cut\"}}\n\n");
        assert!(out.contains("event: error") && !out.contains("message_stop"), "{out}");
    }
}
